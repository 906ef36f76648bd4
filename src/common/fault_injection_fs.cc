#include "common/fault_injection_fs.h"

#include <algorithm>

namespace clicklake {

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionFileSystem* fs, std::string path, std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    Status s = fs_->MaybeFail(FaultOp::kAppend, path_);
    if (!s.ok()) {
      if (fs_->ShouldTear() && data.size() > 1) base_->Append(data.substr(0, data.size() / 2)).IgnoreError();
      return s;
    }
    return base_->Append(data);
  }

  Status Sync() override {
    RETURN_IF_ERROR(fs_->MaybeFail(FaultOp::kSync, path_));
    RETURN_IF_ERROR(base_->Sync());
    fs_->RecordSynced(path_, base_->Size());
    return Status::OK();
  }

  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectionFileSystem* fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}

void FaultInjectionFileSystem::FailNext(FaultOp op, int count) {
  std::lock_guard l(mu_);
  fail_next_[op] += count;
}

void FaultInjectionFileSystem::FailAfter(int64_t n) {
  std::lock_guard l(mu_);
  fail_after_ = ops_ + n;
}

void FaultInjectionFileSystem::ClearFaults() {
  std::lock_guard l(mu_);
  fail_next_.clear();
  fail_after_ = -1;
}

Status FaultInjectionFileSystem::MaybeFail(FaultOp op, const std::string& path) {
  std::lock_guard l(mu_);
  ops_++;
  if (fail_after_ >= 0 && ops_ > fail_after_) return Status::IOError("injected fault (crashed) at " + path);
  auto it = fail_next_.find(op);
  if (it != fail_next_.end() && it->second > 0) {
    it->second--;
    return Status::IOError("injected fault at " + path);
  }
  return Status::OK();
}

void FaultInjectionFileSystem::RecordSynced(const std::string& path, uint64_t size) {
  std::lock_guard l(mu_);
  synced_size_[path] = size;
}

void FaultInjectionFileSystem::RecordCreate(const std::string& path, uint64_t synced_size) {
  std::lock_guard l(mu_);
  synced_size_[path] = synced_size;
  pending_[DirName(path)].push_back({NamespaceOp::kCreate, "", path});
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(const std::string& path) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kCreate, path));
  bool existed = base_->Exists(path);
  ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path));
  if (existed) {
    std::lock_guard l(mu_);
    synced_size_[path] = 0;  // truncation is unsynced data loss too
  } else {
    RecordCreate(path, 0);
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(file)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewAppendableFile(const std::string& path) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kCreate, path));
  bool existed = base_->Exists(path);
  ASSIGN_OR_RETURN(auto file, base_->NewAppendableFile(path));
  if (!existed) {
    RecordCreate(path, 0);
  } else {
    std::lock_guard l(mu_);
    // Whatever is on disk now counts as synced unless we saw it written unsynced.
    if (synced_size_.find(path) == synced_size_.end()) synced_size_[path] = file->Size();
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(file)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionFileSystem::NewRandomAccessFile(const std::string& path) {
  return base_->NewRandomAccessFile(path);
}

Status FaultInjectionFileSystem::DeleteFile(const std::string& path) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kDelete, path));
  RETURN_IF_ERROR(base_->DeleteFile(path));
  std::lock_guard l(mu_);
  synced_size_.erase(path);
  return Status::OK();
}

Status FaultInjectionFileSystem::DeleteTree(const std::string& dir) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kDelete, dir));
  RETURN_IF_ERROR(base_->DeleteTree(dir));
  std::lock_guard l(mu_);
  std::string prefix = dir + "/";
  for (auto it = synced_size_.begin(); it != synced_size_.end();) {
    it = it->first.rfind(prefix, 0) == 0 ? synced_size_.erase(it) : std::next(it);
  }
  return Status::OK();
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kRename, to));
  RETURN_IF_ERROR(base_->Rename(from, to));
  std::lock_guard l(mu_);
  auto it = synced_size_.find(from);
  if (it != synced_size_.end()) {
    synced_size_[to] = it->second;
    synced_size_.erase(from);
  }
  pending_[DirName(to)].push_back({NamespaceOp::kRename, from, to});
  return Status::OK();
}

Status FaultInjectionFileSystem::Link(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kLink, to));
  RETURN_IF_ERROR(base_->Link(from, to));
  std::lock_guard l(mu_);
  auto it = synced_size_.find(from);
  if (it != synced_size_.end()) synced_size_[to] = it->second;
  pending_[DirName(to)].push_back({NamespaceOp::kLink, from, to});
  return Status::OK();
}

Status FaultInjectionFileSystem::Truncate(const std::string& path, uint64_t size) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kTruncate, path));
  RETURN_IF_ERROR(base_->Truncate(path, size));
  std::lock_guard l(mu_);
  auto it = synced_size_.find(path);
  if (it != synced_size_.end()) it->second = std::min(it->second, size);
  return Status::OK();
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  RETURN_IF_ERROR(MaybeFail(FaultOp::kSyncDir, dir));
  RETURN_IF_ERROR(base_->SyncDir(dir));
  std::lock_guard l(mu_);
  pending_.erase(dir);
  return Status::OK();
}

Status FaultInjectionFileSystem::DropUnsyncedData() {
  std::lock_guard l(mu_);
  // Content first: every file we know shrinks to what was synced.
  for (const auto& [path, size] : synced_size_) {
    if (!base_->Exists(path)) continue;
    auto st = base_->Stat(path);
    if (st.ok() && st->size > size) RETURN_IF_ERROR(base_->Truncate(path, size));
  }
  // Then the namespace: undo unsynced changes, newest first.
  for (auto& [dir, ops] : pending_) {
    for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
      switch (it->kind) {
        case NamespaceOp::kCreate:
        case NamespaceOp::kLink:
          if (base_->Exists(it->to)) RETURN_IF_ERROR(base_->DeleteFile(it->to));
          break;
        case NamespaceOp::kRename:
          if (base_->Exists(it->to)) RETURN_IF_ERROR(base_->Rename(it->to, it->from));
          break;
      }
    }
  }
  pending_.clear();
  synced_size_.clear();
  fail_next_.clear();
  fail_after_ = -1;
  return Status::OK();
}

}  // namespace clicklake
