// Snapshot reading: log listing, checkpoints, replay, protocol checks, time travel.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include <simdjson.h>

#include "delta/internal.h"

namespace clicklake::delta {
namespace internal {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Reads the checkpoint files (absolute paths) into `out` with the engine.
Status ReadCheckpoint(engine::Connection* conn, const std::vector<std::string>& files, CommitActions* out) {
  if (conn == nullptr) return Status::Internal("reading a checkpoint needs an engine connection");
  std::string list = "[";
  for (size_t i = 0; i < files.size(); i++) {
    if (i) list += ",";
    list += engine::QuoteLiteral(files[i]);
  }
  list += "]";
  std::string source = "read_parquet(" + list + ", union_by_name=true)";
  ASSIGN_OR_RETURN(engine::QueryResult cols, conn->Query("DESCRIBE SELECT * FROM " + source));
  std::set<std::string> present;
  for (size_t r = 0; r < cols.row_count(); r++) present.insert(cols.GetString(r, 0));
  std::string select;
  for (const char* action : {"protocol", "metaData", "txn", "add", "remove"}) {
    if (!present.count(action)) continue;
    if (!select.empty()) select += ", ";
    select += engine::QuoteIdentifier(action);
  }
  if (select.empty()) return Status::Corruption("checkpoint has none of the action columns");
  // DuckDB writes the rows as JSON lines ({"add":{...},"remove":null,...}),
  // which the commit parser reads (null actions are skipped).
  std::string scratch = (std::filesystem::temp_directory_path() / ("clicklake-ckpt-read-" + NewUuid() + ".json")).string();
  struct Remover {
    std::string path;
    ~Remover() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remover{scratch};
  RETURN_IF_ERROR(conn->Execute("COPY (SELECT " + select + " FROM " + source + ") TO " + engine::QuoteLiteral(scratch) +
                                " (FORMAT json)"));
  std::ifstream in(scratch, std::ios::binary);
  std::string ndjson((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseActions(ndjson, out);
}

}  // namespace

LogFileName ParseLogFileName(std::string_view name) {
  LogFileName out;
  if (name.size() < 21 || !AllDigits(name.substr(0, 20)) || name[20] != '.') return out;
  std::string_view rest = name.substr(21);
  int64_t version = std::stoll(std::string(name.substr(0, 20)));
  if (rest == "json") {
    out.kind = LogFileKind::kCommit;
  } else if (rest == "checkpoint.parquet") {
    out.kind = LogFileKind::kCheckpoint;
  } else if (rest.size() == std::string_view("checkpoint.0000000001.0000000002.parquet").size() &&
             rest.rfind("checkpoint.", 0) == 0 && AllDigits(rest.substr(11, 10)) && rest[21] == '.' &&
             AllDigits(rest.substr(22, 10)) && rest.substr(32) == ".parquet") {
    out.kind = LogFileKind::kMultiPartCheckpoint;
    out.part = std::stoi(std::string(rest.substr(11, 10)));
    out.parts = std::stoi(std::string(rest.substr(22, 10)));
    if (out.part < 1 || out.part > out.parts) out.kind = LogFileKind::kOther;
  } else {
    return out;
  }
  out.version = version;
  return out;
}

std::string CheckpointFileName(int64_t version) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%020lld.checkpoint.parquet", static_cast<long long>(version));
  return buf;
}

Result<LogListing> ListLog(FileSystem* fs, const std::string& log_dir) {
  auto entries = fs->ListDir(log_dir);
  if (!entries.ok()) {
    if (!fs->Exists(log_dir)) return Status::NotFound("no Delta table: " + log_dir + " does not exist");
    return entries.status();
  }
  LogListing out;
  // version -> parts -> set of part numbers (multi-part checkpoints)
  std::map<int64_t, std::map<int, std::map<int, std::string>>> multi;
  for (const FileInfo& e : *entries) {
    if (e.is_dir) continue;
    LogFileName n = ParseLogFileName(e.name);
    switch (n.kind) {
      case LogFileKind::kCommit:
        out.commits[n.version] = e;
        break;
      case LogFileKind::kCheckpoint:
        out.checkpoints[n.version] = {e.name};
        break;
      case LogFileKind::kMultiPartCheckpoint:
        multi[n.version][n.parts][n.part] = e.name;
        break;
      case LogFileKind::kOther:
        if (e.name.size() > 5 && e.name[0] == '.' && e.name.ends_with(".tmp")) out.temp_files.push_back(e);
        break;
    }
  }
  for (auto& [version, by_parts] : multi) {
    if (out.checkpoints.count(version)) continue;  // prefer the single-file one
    for (auto& [parts, files] : by_parts) {
      if (static_cast<int>(files.size()) != parts) continue;  // incomplete set
      std::vector<std::string> names;
      for (auto& [part, name] : files) names.push_back(name);
      out.checkpoints[version] = names;
      break;
    }
  }
  return out;
}

std::map<int64_t, int64_t> CommitTimestamps(const LogListing& listing) {
  std::map<int64_t, int64_t> out;
  int64_t prev = INT64_MIN;
  for (const auto& [version, info] : listing.commits) {
    int64_t t = info.mtime_ms;
    if (prev != INT64_MIN && t <= prev) t = prev + 1;
    out[version] = t;
    prev = t;
  }
  return out;
}

Status CheckReadable(const Protocol& protocol, const Metadata* metadata) {
  static const std::set<std::string> kReaderFeatures = {"timestampNtz",  "vacuumProtocolCheck", "appendOnly",
                                                         "invariants",    "deletionVectors",     "columnMapping"};
  if (protocol.min_reader_version > 3) {
    return Status::Unsupported("table needs Delta reader version " + std::to_string(protocol.min_reader_version) +
                               "; clicklake reads versions 1 to 3");
  }
  if (protocol.min_reader_version == 3) {
    for (const auto& f : protocol.reader_features.value_or(std::vector<std::string>{})) {
      if (!kReaderFeatures.count(f)) {
        return Status::Unsupported("table uses the Delta reader feature '" + f +
                                   "', which clicklake does not support; read it with Spark or delta-rs");
      }
    }
  }
  if (metadata != nullptr) {
    auto it = metadata->configuration.find("delta.columnMapping.mode");
    if (it != metadata->configuration.end() && it->second != "none" && it->second != "name" && it->second != "id") {
      return Status::Unsupported("table uses column mapping mode '" + it->second +
                                 "'; clicklake reads the modes none, name and id");
    }
  }
  return Status::OK();
}

Status CheckWritable(const Protocol& protocol, const Metadata& metadata) {
  RETURN_IF_ERROR(CheckReadable(protocol, &metadata));
  static const std::set<std::string> kWriterFeatures = {"appendOnly", "invariants", "deletionVectors"};
  if (protocol.min_writer_version > 7 || (protocol.min_writer_version > 2 && protocol.min_writer_version < 7)) {
    return Status::Unsupported("table needs Delta writer version " + std::to_string(protocol.min_writer_version) +
                               "; clicklake writes versions 1, 2 and 7 (appendOnly, invariants, deletionVectors)");
  }
  // Reading column-mapped tables is supported; writing them is not (files,
  // partition folders and stats would need the physical names).
  auto mode = metadata.configuration.find("delta.columnMapping.mode");
  if (mode != metadata.configuration.end() && mode->second != "none") {
    return Status::Unsupported("table uses column mapping (delta.columnMapping.mode=" + mode->second +
                               "), which clicklake can read but not write");
  }
  if (protocol.min_writer_version == 7) {
    for (const auto& f : protocol.writer_features.value_or(std::vector<std::string>{})) {
      if (!kWriterFeatures.count(f)) {
        return Status::Unsupported("table uses the Delta writer feature '" + f + "', which clicklake cannot write");
      }
    }
  }
  for (const Field& f : metadata.schema.fields) {
    if (f.metadata_json.find("delta.invariants") != std::string::npos) {
      return Status::Unsupported("column " + f.name + " has a Delta invariant, which clicklake cannot enforce");
    }
  }
  return Status::OK();
}

namespace {

// A file's identity in log replay: its decoded path and its deletion
// vector's id ("" without one). Changing a file's DV is a remove of the old
// (path, DV) and an add of the new one.
std::string FileKey(const std::string& path, const std::optional<DeletionVector>& dv) {
  std::string key = DecodePath(path);
  key.push_back('\0');
  if (dv) key += dv->UniqueId();
  return key;
}

// Log replay state: files keyed by (decoded path, DV id), first-wins
// semantics realised by applying commits oldest to newest.
class Replay {
 public:
  explicit Replay(int64_t target) { snap_.version = target; }

  void Start(const Snapshot& base) {
    protocol_ = base.protocol;
    metadata_ = base.metadata;
    snap_.app_txn_versions = base.app_txn_versions;
    snap_.app_txn_last_updated = base.app_txn_last_updated;
    live_.reserve(base.files.size());
    for (const auto& f : base.files) live_[FileKey(f.path, f.deletion_vector)] = f;
    for (const auto& r : base.tombstones) tombstones_[FileKey(r.path, r.deletion_vector)] = r;
  }

  void Apply(CommitActions& a) {
    if (a.protocol) protocol_ = std::move(a.protocol);
    if (a.metadata) metadata_ = std::move(a.metadata);
    for (auto& t : a.txns) {
      snap_.app_txn_versions[t.app_id] = t.version;
      if (t.last_updated) snap_.app_txn_last_updated[t.app_id] = *t.last_updated;
    }
    // Actions within a commit are unordered. One commit never adds and
    // removes the same (path, DV), so applying its removes before its adds
    // gives the same state whatever order they appear in: a remove of
    // (P, DV1) with an add of (P, DV2) leaves P with DV2 live.
    for (auto& r : a.removes) {
      std::string key = FileKey(r.path, r.deletion_vector);
      live_.erase(key);
      tombstones_[key] = std::move(r);
    }
    for (auto& f : a.adds) {
      std::string key = FileKey(f.path, f.deletion_vector);
      tombstones_.erase(key);
      live_[key] = std::move(f);
    }
  }

  // Applies commits from..to (inclusive). Unsupported protocols are reported
  // before anything else of their commit.
  Status ApplyCommits(FileSystem* fs, const std::string& log_dir, int64_t from, int64_t to) {
    for (int64_t v = from; v <= to; v++) {
      ASSIGN_OR_RETURN(std::string text, fs->ReadFile(JoinPath(log_dir, CommitFileName(v))));
      CommitActions a;
      RETURN_IF_ERROR(ParseActions(text, &a).WithContext("commit " + std::to_string(v)));
      if (a.protocol) {
        RETURN_IF_ERROR(CheckReadable(*a.protocol, a.metadata ? &*a.metadata : (metadata_ ? &*metadata_ : nullptr)));
      }
      Apply(a);
    }
    return Status::OK();
  }

  Result<Snapshot> Finish(const std::string& table_path, const LogListing& listing) {
    if (!protocol_) return Status::Corruption("table " + table_path + " has no protocol action");
    if (!metadata_) return Status::Corruption("table " + table_path + " has no metaData action");
    RETURN_IF_ERROR(CheckReadable(*protocol_, &*metadata_));
    Snapshot snap = std::move(snap_);
    snap.protocol = std::move(*protocol_);
    snap.metadata = std::move(*metadata_);
    snap.files.reserve(live_.size());
    for (auto& [k, f] : live_) snap.files.push_back(std::move(f));
    // By path, then DV id (a path's older DVs may linger as tombstones).
    auto by_key = [](const auto& a, const auto& b) {
      if (a.path != b.path) return a.path < b.path;
      return (a.deletion_vector ? a.deletion_vector->UniqueId() : std::string()) <
             (b.deletion_vector ? b.deletion_vector->UniqueId() : std::string());
    };
    std::sort(snap.files.begin(), snap.files.end(), by_key);
    for (auto& [k, r] : tombstones_) snap.tombstones.push_back(std::move(r));
    std::sort(snap.tombstones.begin(), snap.tombstones.end(), by_key);
    // Commit time: the file's mtime made strictly increasing over the listing.
    auto times = CommitTimestamps(listing);
    auto it = times.find(snap.version);
    snap.timestamp_ms = it != times.end() ? it->second : 0;
    return snap;
  }

 private:
  Snapshot snap_;
  std::unordered_map<std::string, AddFile> live_;
  std::unordered_map<std::string, delta::RemoveFile> tombstones_;
  std::optional<Protocol> protocol_;
  std::optional<Metadata> metadata_;
};

// A process-wide cache of each table's newest loaded snapshot, so that the
// next load replays only the commits after it instead of a checkpoint. An
// entry is used only if its version's commit file still holds the same bytes
// (a crash may have dropped it and another writer reused the version).
struct CachedSnapshot {
  Snapshot snapshot;
  std::string commit_bytes;
};
constexpr size_t kMaxCachedTables = 64;
std::mutex cache_mu;
std::map<std::string, std::shared_ptr<const CachedSnapshot>>& Cache() {
  static auto* cache = new std::map<std::string, std::shared_ptr<const CachedSnapshot>>();  // GUARDED_BY(cache_mu)
  return *cache;
}

std::string CacheKey(FileSystem* fs, const std::string& table_path) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p|", static_cast<void*>(fs));
  return buf + table_path;
}

std::shared_ptr<const CachedSnapshot> CacheLookup(const std::string& key) {
  std::lock_guard l(cache_mu);
  auto it = Cache().find(key);
  return it == Cache().end() ? nullptr : it->second;
}

void CacheStore(const std::string& key, std::shared_ptr<const CachedSnapshot> entry) {
  std::lock_guard l(cache_mu);
  auto& cache = Cache();
  if (cache.size() >= kMaxCachedTables && !cache.count(key)) cache.erase(cache.begin());
  cache[key] = std::move(entry);
}

}  // namespace

void ClearSnapshotCache() {
  std::lock_guard l(cache_mu);
  Cache().clear();
}

Result<Snapshot> LoadSnapshotImpl(const std::string& table_path, FileSystem* fs, engine::Connection* conn,
                                  std::optional<int64_t> version, const LogListing* given_listing) {
  std::string log_dir = JoinPath(table_path, "_delta_log");
  LogListing own_listing;
  if (given_listing == nullptr) {
    ASSIGN_OR_RETURN(own_listing, ListLog(fs, log_dir));
    given_listing = &own_listing;
  }
  const LogListing& listing = *given_listing;
  if (listing.commits.empty() && listing.checkpoints.empty()) {
    return Status::NotFound("no Delta table at " + table_path + ": _delta_log holds no commits");
  }
  int64_t latest = -1;
  if (!listing.commits.empty()) latest = listing.commits.rbegin()->first;
  if (!listing.checkpoints.empty()) latest = std::max(latest, listing.checkpoints.rbegin()->first);
  int64_t target = version.value_or(latest);
  if (target < 0) return Status::InvalidArgument("negative table version " + std::to_string(target));
  if (target > latest) {
    return Status::NotFound("version " + std::to_string(target) + " of " + table_path + " does not exist (latest is " +
                            std::to_string(latest) + ")");
  }
  auto contiguous = [&](int64_t from, int64_t to) {
    for (int64_t v = from; v <= to; v++) {
      if (!listing.commits.count(v)) return false;
    }
    return true;
  };
  // Remembers the newest snapshot for the next load of this table.
  std::string key = CacheKey(fs, table_path);
  auto remember = [&](const Snapshot& snap) {
    if (snap.version != latest || !listing.commits.count(snap.version)) return;
    auto bytes = fs->ReadFile(JoinPath(log_dir, CommitFileName(snap.version)));
    if (!bytes.ok()) return;
    CacheStore(key, std::make_shared<const CachedSnapshot>(CachedSnapshot{snap, std::move(*bytes)}));
  };

  // 1. From the cached snapshot, if it is still part of this log.
  if (auto cached = CacheLookup(key); cached && cached->snapshot.version <= target &&
                                      contiguous(cached->snapshot.version, target)) {
    auto bytes = fs->ReadFile(JoinPath(log_dir, CommitFileName(cached->snapshot.version)));
    if (bytes.ok() && *bytes == cached->commit_bytes) {
      if (cached->snapshot.version == target) {
        Snapshot snap = cached->snapshot;
        auto times = CommitTimestamps(listing);
        auto it = times.find(target);
        if (it != times.end()) snap.timestamp_ms = it->second;
        return snap;
      }
      Replay replay(target);
      replay.Start(cached->snapshot);
      Status st = replay.ApplyCommits(fs, log_dir, cached->snapshot.version + 1, target);
      if (st.code() == StatusCode::kUnsupported) return st;
      if (st.ok()) {
        auto snap = replay.Finish(table_path, listing);
        if (snap.ok()) remember(*snap);
        return snap;
      }
    }
  }

  // 2. From the newest complete checkpoint <= target that works, else from
  // version 0. _last_checkpoint is only a hint: the listing of a local
  // directory is complete, so a missing or corrupt one changes nothing.
  std::vector<int64_t> bases;
  for (auto it = listing.checkpoints.rbegin(); it != listing.checkpoints.rend(); ++it) {
    if (it->first <= target) bases.push_back(it->first);
  }
  if (listing.commits.count(0)) bases.push_back(-1);  // replay from the start

  Status last_error = Status::NotFound("version " + std::to_string(target) + " of " + table_path +
                                       " can no longer be reconstructed: its log entries were cleaned up");
  for (int64_t base : bases) {
    if (!contiguous(base + 1, target)) {
      last_error = Status::Corruption("a commit between " + std::to_string(base + 1) + " and " + std::to_string(target) +
                                      " of " + table_path + " is missing: the log is not contiguous");
      continue;
    }
    Replay replay(target);
    if (base >= 0) {
      CommitActions cp;
      std::vector<std::string> files;
      for (const auto& name : listing.checkpoints.at(base)) files.push_back(JoinPath(log_dir, name));
      Status st = ReadCheckpoint(conn, files, &cp);
      if (!st.ok()) {
        last_error = st.WithContext("checkpoint " + std::to_string(base));
        continue;
      }
      if (cp.protocol) RETURN_IF_ERROR(CheckReadable(*cp.protocol, cp.metadata ? &*cp.metadata : nullptr));
      replay.Apply(cp);
    }
    Status st = replay.ApplyCommits(fs, log_dir, base + 1, target);
    if (!st.ok()) {
      if (st.code() == StatusCode::kUnsupported) return st;
      last_error = st;
      continue;
    }
    auto snap = replay.Finish(table_path, listing);
    if (snap.ok()) remember(*snap);
    return snap;
  }
  return last_error;
}

}  // namespace internal

Result<Snapshot> LoadSnapshotAt(const std::string& path, engine::Connection* conn, std::optional<int64_t> version,
                                FileSystem* fs) {
  return internal::LoadSnapshotImpl(path, fs, conn, version);
}

Result<std::string> ReadCommitInfo(const std::string& table_path, int64_t version, FileSystem* fs) {
  auto text = fs->ReadFile(JoinPath(JoinPath(table_path, "_delta_log"), CommitFileName(version)));
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound || !fs->Exists(JoinPath(JoinPath(table_path, "_delta_log"), CommitFileName(version)))) {
      return Status::NotFound("commit " + std::to_string(version) + " of " + table_path + " does not exist");
    }
    return text.status();
  }
  internal::CommitActions a;
  RETURN_IF_ERROR(internal::ParseActions(*text, &a));
  if (!a.commit_info) return Status::NotFound("commit " + std::to_string(version) + " has no commitInfo");
  return *a.commit_info;
}

}  // namespace clicklake::delta
