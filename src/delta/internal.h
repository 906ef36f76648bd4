// Internal helpers of src/delta (not for other components): JSON writing,
// action parsing and serialisation, log listing, protocol checks.
//
// Everything here is stateless; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_string.h"
#include "delta/table.h"

namespace clicklake::delta::internal {

inline constexpr int kMaxCommitAttempts = 15;
inline constexpr const char* kEngineInfo = "clicklake/0.1";

// ---- JSON writing ----
std::string JsonStringMap(const std::map<std::string, std::string>& m);
std::string JsonOptStringMap(const std::map<std::string, std::optional<std::string>>& m);
std::string JsonStringArray(const std::vector<std::string>& v);

// ---- actions ----
struct TxnAction {
  std::string app_id;
  int64_t version = 0;
  std::optional<int64_t> last_updated;
};

// The actions of one commit file (or of a checkpoint).
struct CommitActions {
  std::optional<Protocol> protocol;
  std::optional<Metadata> metadata;
  std::vector<TxnAction> txns;
  std::vector<AddFile> adds;
  std::vector<RemoveFile> removes;
  std::optional<std::string> commit_info;  // raw JSON object
  std::optional<int64_t> in_commit_timestamp;
  std::optional<bool> is_blind_append;
  std::optional<int64_t> commit_timestamp;  // commitInfo.timestamp
};

// Parses newline-delimited actions; unknown actions and fields are ignored.
Status ParseActions(std::string_view ndjson, CommitActions* out);

std::string SerializeProtocol(const Protocol& p);
std::string SerializeMetadata(const Metadata& m);
std::string SerializeAdd(const AddFile& a);
std::string SerializeRemove(const RemoveFile& r);
std::string SerializeTxn(const TxnAction& t);
// The deletionVector object of an add or remove.
std::string SerializeDeletionVector(const DeletionVector& dv);

// ---- column mapping ----
// Whether the table maps logical column names to physical ones
// (delta.columnMapping.mode = name or id).
bool ColumnMappingEnabled(const Metadata& metadata);
// The name of `field` in data files, partitionValues and stats: its
// delta.columnMapping.physicalName under column mapping, else its name.
std::string PhysicalName(const Metadata& metadata, const Field& field);
// The Parquet field id of `field` in column mapping mode `id`
// (delta.columnMapping.id); nullopt in other modes or without one.
std::optional<int64_t> ColumnMappingId(const Metadata& metadata, const Field& field);

// ---- log files ----
enum class LogFileKind { kCommit, kCheckpoint, kMultiPartCheckpoint, kOther };
struct LogFileName {
  LogFileKind kind = LogFileKind::kOther;
  int64_t version = -1;
  int part = 0;
  int parts = 0;
};
LogFileName ParseLogFileName(std::string_view name);
std::string CheckpointFileName(int64_t version);

struct LogListing {
  std::map<int64_t, FileInfo> commits;                          // version -> commit file
  std::map<int64_t, std::vector<std::string>> checkpoints;      // version -> complete set of files
  std::vector<FileInfo> temp_files;                             // our commit temp files
};
Result<LogListing> ListLog(FileSystem* fs, const std::string& log_dir);

// Commit time of every listed commit: file mtimes made strictly increasing.
std::map<int64_t, int64_t> CommitTimestamps(const LogListing& listing);

// ---- protocol ----
Status CheckReadable(const Protocol& protocol, const Metadata* metadata);
Status CheckWritable(const Protocol& protocol, const Metadata& metadata);
// Whether writers may add deletion vectors: the protocol has the
// deletionVectors writer feature and delta.enableDeletionVectors is "true".
bool DeletionVectorsEnabled(const Protocol& protocol, const Metadata& metadata);
// The protocol of new tables: reader 3 / writer 7 with deletionVectors, or
// reader 1 / writer 2 when `configuration` switches DVs off.
Protocol NewTableProtocol(const std::map<std::string, std::string>& configuration);
// The Delta stats of a data file of a table with `metadata`, computed by
// reading the file back (the reference for the stats writes take from the
// Parquet writer; tests compare the two).
Result<std::string> ReadBackStats(engine::Connection* conn, const std::string& file, const Metadata& metadata);
// stats.numRecords of an add (physical rows), nullopt when absent.
std::optional<int64_t> StatsNumRecords(const std::string& stats);

// ---- committing ----
// Writes `content` to a temp file in `log_dir`, syncs it, links it to the
// commit file of `version`, unlinks the temp and syncs the directory.
// AlreadyExists if that version exists (a concurrent writer won).
Status PutIfAbsent(FileSystem* fs, const std::string& log_dir, int64_t version, std::string_view content);
// Creates (or truncates) `path` with `content` and syncs it; on failure the
// file is deleted. The name is not durable until its directory is synced.
Status WriteSyncedFile(FileSystem* fs, const std::string& path, std::string_view content);
// Writes `content` to `path` atomically (temp + sync + rename + SyncDir); for
// files that may be overwritten (_last_checkpoint, checkpoints).
Status WriteAtomically(FileSystem* fs, const std::string& path, std::string_view content);
// The commitInfo line.
std::string CommitInfoJson(int64_t timestamp_ms, const std::string& operation,
                           const std::map<std::string, std::string>& params, int64_t read_version,
                           const std::string& isolation_level, bool blind_append,
                           const std::map<std::string, std::string>& metrics,
                           const std::vector<std::pair<std::string, std::string>>& extra);
// Syncs a file written outside the FileSystem (by DuckDB) through it.
Status SyncExternalFile(FileSystem* fs, const std::string& path);

// ---- misc ----
std::string NewUuid();
// A canonical text key of a partition-values map (for sets and comparisons).
std::string PartitionKey(const std::map<std::string, std::optional<std::string>>& values);
// Full snapshot loading (the engine connection reads checkpoints). The newest
// snapshot of each table is cached process-wide; a later load replays only
// the commits after it, when that version's commit file is unchanged.
Result<Snapshot> LoadSnapshotImpl(const std::string& table_path, FileSystem* fs, engine::Connection* conn,
                                  std::optional<int64_t> version, const LogListing* listing = nullptr);
// ScanSql reading deletion vectors through `fs`.
Result<std::string> ScanSqlImpl(const std::string& table_path, const Snapshot& snapshot, const ScanOptions& options,
                                FileSystem* fs);
// Forgets every cached snapshot (tests and benchmarks).
void ClearSnapshotCache();
// Parses "interval 7 days"-style durations (Delta's calendar-interval strings)
// into milliseconds; nullopt if unparseable.
std::optional<int64_t> ParseIntervalMs(std::string_view text);

}  // namespace clicklake::delta::internal
