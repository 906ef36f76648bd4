// FaultInjectionFileSystem: a FileSystem for crash tests without killing processes.
//
// It wraps another file system (normally the real one, over a temporary
// directory) and remembers, for every file written through it, how many bytes
// were synced, and for every directory, which names were created, linked or
// renamed into it since its last SyncDir(). DropUnsyncedData() then simulates a
// power loss: files shrink to their synced size and unsynced namespace changes
// are undone (creations and links removed, renames reversed). Deletions are
// taken as immediately durable.
//
// Faults: FailNext(op) makes the next operation of that kind fail with an
// IOError (an Append that fails may write a torn prefix first, see
// set_torn_writes); FailAfter(n) lets n more mutating operations succeed and
// fails every one after that, modelling a crash at an exact step.
//
// Thread-safe. Files opened before DropUnsyncedData() must not be used after it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/file_system.h"

namespace clicklake {

enum class FaultOp { kAppend, kSync, kCreate, kRename, kLink, kDelete, kTruncate, kSyncDir };

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem* base);

  // Fails the next `count` operations of kind `op`.
  void FailNext(FaultOp op, int count = 1);
  // Lets `n` more mutating operations succeed, then fails all of them until Reset().
  void FailAfter(int64_t n);
  // Clears all pending faults.
  void ClearFaults();
  // When an Append is failed, first write this fraction (0..1) of its data.
  void set_torn_writes(bool torn) { std::lock_guard l(mu_); torn_writes_ = torn; }
  // Number of mutating operations performed so far (to enumerate crash points).
  int64_t mutating_ops() const { std::lock_guard l(mu_); return ops_; }

  // Simulates a crash: drops all unsynced data and namespace changes.
  Status DropUnsyncedData();

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Result<FileInfo> Stat(const std::string& path) override { return base_->Stat(path); }
  Result<std::vector<FileInfo>> ListDir(const std::string& dir) override { return base_->ListDir(dir); }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status DeleteFile(const std::string& path) override;
  Status DeleteTree(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Link(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;

 private:
  friend class FaultWritableFile;
  struct NamespaceOp {
    enum Kind { kCreate, kLink, kRename } kind;
    std::string from;  // rename source
    std::string to;    // the new name
  };

  // Counts a mutating op and returns the injected failure for it, if any.
  Status MaybeFail(FaultOp op, const std::string& path);
  bool ShouldTear() const { std::lock_guard l(mu_); return torn_writes_; }
  void RecordSynced(const std::string& path, uint64_t size);
  void RecordCreate(const std::string& path, uint64_t synced_size);

  FileSystem* base_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> synced_size_;        // GUARDED_BY(mu_)
  std::map<std::string, std::vector<NamespaceOp>> pending_;  // dir -> ops; GUARDED_BY(mu_)
  std::map<FaultOp, int> fail_next_;                   // GUARDED_BY(mu_)
  int64_t fail_after_ = -1;                            // GUARDED_BY(mu_)
  int64_t ops_ = 0;                                    // GUARDED_BY(mu_)
  bool torn_writes_ = false;                           // GUARDED_BY(mu_)
};

}  // namespace clicklake
