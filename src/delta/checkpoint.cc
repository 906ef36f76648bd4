// Checkpoint writing (Parquet through the engine) and log cleanup.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "delta/internal.h"

namespace clicklake::delta {
namespace {

constexpr int64_t kDefaultDeletedFileRetentionMs = 7LL * 86400 * 1000;
constexpr int64_t kDefaultLogRetentionMs = 30LL * 86400 * 1000;

// The checkpoint's column types (DuckDB syntax), as Spark writes them. An
// action without a deletion vector has a null deletionVector struct (`offset`
// is quoted: a reserved word).
std::string CheckpointColumns() {
  const std::string dv =
      "STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, \"offset\" INTEGER, sizeInBytes INTEGER, cardinality BIGINT)";
  return "{txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)', "
         "add: 'STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, "
         "dataChange BOOLEAN, tags MAP(VARCHAR, VARCHAR), deletionVector " + dv + ", stats VARCHAR)', "
         "remove: 'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, "
         "partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, deletionVector " + dv + ")', "
         "metaData: 'STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options "
         "MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), "
         "createdTime BIGINT)', "
         "protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], "
         "writerFeatures VARCHAR[])'}";
}

int64_t ConfigMs(const Snapshot& snap, const std::string& key, int64_t fallback) {
  auto it = snap.metadata.configuration.find(key);
  if (it == snap.metadata.configuration.end()) return fallback;
  return internal::ParseIntervalMs(it->second).value_or(fallback);
}

struct ScratchFiles {
  std::vector<std::string> paths;
  ~ScratchFiles() {
    std::error_code ec;
    for (const auto& p : paths) std::filesystem::remove(p, ec);
  }
};

}  // namespace

Status Table::Checkpoint(int64_t version) {
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  ASSIGN_OR_RETURN(Snapshot snap, internal::LoadSnapshotImpl(path_, fs_, conn.get(), version));
  int64_t now = clock_->NowMillis();
  int64_t tombstone_cutoff = now - ConfigMs(snap, "delta.deletedFileRetentionDuration", kDefaultDeletedFileRetentionMs);

  std::string ndjson = internal::SerializeProtocol(snap.protocol) + "\n" + internal::SerializeMetadata(snap.metadata) + "\n";
  int64_t rows = 2;
  for (const auto& [app, v] : snap.app_txn_versions) {
    internal::TxnAction t{app, v, std::nullopt};
    auto it = snap.app_txn_last_updated.find(app);
    if (it != snap.app_txn_last_updated.end()) t.last_updated = it->second;
    ndjson += internal::SerializeTxn(t) + "\n";
    rows++;
  }
  for (AddFile a : snap.files) {
    a.data_change = false;
    ndjson += internal::SerializeAdd(a) + "\n";
    rows++;
  }
  for (delta::RemoveFile r : snap.tombstones) {
    if (r.deletion_timestamp <= tombstone_cutoff) continue;
    r.data_change = false;
    ndjson += internal::SerializeRemove(r) + "\n";
    rows++;
  }

  ScratchFiles scratch;
  std::string base = (std::filesystem::temp_directory_path() / ("clicklake-ckpt-" + internal::NewUuid())).string();
  std::string json_path = base + ".json", parquet_path = base + ".parquet";
  scratch.paths = {json_path, parquet_path};
  {
    std::ofstream out(json_path, std::ios::binary);
    out << ndjson;
    if (!out) return Status::IOError("cannot write scratch file " + json_path);
  }
  // read_json's buffers are sized by maximum_object_size: the longest action
  // here (with room), not a fixed worst case, so that a checkpoint fits in a
  // small memory_limit.
  size_t longest = 0;
  for (size_t start = 0; start < ndjson.size();) {
    size_t end = ndjson.find('\n', start);
    if (end == std::string::npos) end = ndjson.size();
    longest = std::max(longest, end - start);
    start = end + 1;
  }
  const size_t max_object = std::max<size_t>(1 << 20, 2 * longest + 1);
  std::string sql = "COPY (SELECT txn, add, remove, metaData, protocol FROM read_json(" + engine::QuoteLiteral(json_path) +
                    ", format='newline_delimited', maximum_object_size=" + std::to_string(max_object) +
                    ", columns=" + CheckpointColumns() +
                    ")) TO " + engine::QuoteLiteral(parquet_path) + " (FORMAT parquet, COMPRESSION snappy)";
  RETURN_IF_ERROR(conn->Execute(sql).WithContext("writing checkpoint " + std::to_string(version)));
  std::string bytes;
  {
    std::ifstream in(parquet_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
    if (bytes.empty()) return Status::IOError("checkpoint scratch file " + parquet_path + " is empty");
  }
  RETURN_IF_ERROR(internal::WriteAtomically(fs_, JoinPath(log_dir(), internal::CheckpointFileName(version)), bytes));
  std::string last = "{\"version\":" + std::to_string(version) + ",\"size\":" + std::to_string(rows) +
                     ",\"sizeInBytes\":" + std::to_string(bytes.size()) +
                     ",\"numOfAddFiles\":" + std::to_string(snap.files.size()) + "}";
  return internal::WriteAtomically(fs_, JoinPath(log_dir(), "_last_checkpoint"), last);
}

Status Table::CleanupLog(int64_t temp_max_age_ms) {
  ASSIGN_OR_RETURN(internal::LogListing listing, internal::ListLog(fs_, log_dir()));
  int64_t now = clock_->NowMillis();
  Status result;
  for (const auto& t : listing.temp_files) {
    if (t.mtime_ms <= now - temp_max_age_ms) {
      Status st = fs_->DeleteFile(JoinPath(log_dir(), t.name));
      if (!st.ok() && result.ok()) result = st;
    }
  }
  if (listing.checkpoints.empty()) return result;
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  ASSIGN_OR_RETURN(Snapshot snap, internal::LoadSnapshotImpl(path_, fs_, conn.get(), std::nullopt, &listing));
  if (snap.Config("delta.enableExpiredLogCleanup", "true") == "false") return result;
  int64_t cutoff = now - ConfigMs(snap, "delta.logRetentionDuration", kDefaultLogRetentionMs);
  // The newest checkpoint whose commit has expired: everything before it goes.
  int64_t keep_from = -1;
  for (const auto& [v, files] : listing.checkpoints) {
    auto it = listing.commits.find(v);
    int64_t t = it != listing.commits.end() ? it->second.mtime_ms : now;
    if (t <= cutoff) keep_from = v;
  }
  if (keep_from <= 0) return result;
  for (const auto& [v, info] : listing.commits) {
    if (v >= keep_from) break;
    Status st = fs_->DeleteFile(JoinPath(log_dir(), info.name));
    if (!st.ok() && result.ok()) result = st;
  }
  for (const auto& [v, files] : listing.checkpoints) {
    if (v >= keep_from) break;
    for (const auto& name : files) {
      Status st = fs_->DeleteFile(JoinPath(log_dir(), name));
      if (!st.ok() && result.ok()) result = st;
    }
  }
  return result;
}

}  // namespace clicklake::delta
