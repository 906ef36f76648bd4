// delta: clicklake's Delta Lake table library (the public face of src/delta/).
//
// A Table is a directory holding Parquet data files and a `_delta_log/` of
// commits (see ../shared/delta-lake.md and Delta's PROTOCOL.md). This header
// gives:
//   - Table: open/create, load snapshots (latest, by version, by timestamp),
//     start transactions, and the maintenance operations (history, describe,
//     optimize, vacuum, replace-partitions, delete-where, schema evolution,
//     checkpoints, log cleanup).
//   - Transaction: optimistic, put-if-absent commits with Delta's conflict
//     checks and bounded retries; writes Parquet data files with exact stats.
//   - ScanSql / RegisterLakeViews / AttachTable: SQL over snapshots for DuckDB.
//
// delta knows nothing of layers or models: it depends on common and engine.
//
// Ownership: a Table borrows its engine::Database, FileSystem and Clock; they
// must outlive it. A Transaction borrows its Table.
// Thread safety: Table's methods may be called from several threads at once
// (they share no mutable state besides the FileSystem and Database, both
// thread-safe); a Transaction is used by one thread. Concurrent writers, in
// this process or others, are serialised by the log's put-if-absent commits.
//
// Paths: AddFile::path is the table-relative URI exactly as in the log (it may
// hold %-escapes); use DecodePath() to get the file-system-relative path.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/file_system.h"
#include "common/status.h"
#include "engine/engine.h"

namespace clicklake::delta {

// One column. `type` is a Delta primitive type name ("string", "long",
// "integer", "short", "byte", "float", "double", "boolean", "binary", "date",
// "timestamp", "timestamp_ntz", "decimal(p,s)") or the JSON of a nested type
// ({"type":"struct"|"array"|"map",...}).
struct Field {
  std::string name;
  std::string type;
  bool nullable = true;
  std::string metadata_json = "{}";  // the field's "metadata" object, as JSON
};

struct Schema {
  std::vector<Field> fields;
  // Spark StructType JSON: {"type":"struct","fields":[...]}.
  std::string ToJson() const;
  static Result<Schema> FromJson(std::string_view json);
  const Field* Find(std::string_view name) const;
};

struct Protocol {
  int min_reader_version = 1;
  int min_writer_version = 2;
  std::optional<std::vector<std::string>> reader_features;  // reader version 3 only
  std::optional<std::vector<std::string>> writer_features;  // writer version 7 only
};

struct Metadata {
  std::string id;
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::string format_provider = "parquet";
  std::map<std::string, std::string> format_options;
  std::string schema_string;  // as stored (JSON text)
  Schema schema;              // parsed from schema_string
  std::vector<std::string> partition_columns;
  std::map<std::string, std::string> configuration;
  std::optional<int64_t> created_time;
};

// A deletion vector descriptor (PROTOCOL.md "Deletion Vectors"): which rows of
// one data file are deleted, by 0-based physical row position.
//   storage_type "u": a file <table>/<prefix>/deletion_vector_<uuid>.bin;
//                     path_or_inline_dv = prefix + the UUID in Z85 (20 chars)
//                "i": path_or_inline_dv is the bitmap itself, Z85-encoded
//                "p": path_or_inline_dv is an absolute, URL-encoded path
// offset: where the DV starts in its file (u and p; absent for i).
struct DeletionVector {
  std::string storage_type;
  std::string path_or_inline_dv;
  std::optional<int32_t> offset;
  int32_t size_in_bytes = 0;
  int64_t cardinality = 0;  // rows deleted
  // storageType + pathOrInlineDv (+ "@" + offset): with the path, the key of a
  // file in log replay.
  std::string UniqueId() const;
};

struct AddFile {
  std::string path;  // relative URI as in the log (see DecodePath)
  std::map<std::string, std::optional<std::string>> partition_values;
  int64_t size = 0;
  int64_t modification_time = 0;
  bool data_change = true;
  std::string stats;  // JSON text ("" = none)
  std::map<std::string, std::string> tags;
  std::optional<DeletionVector> deletion_vector;  // rows of the file that are deleted
};

struct RemoveFile {
  std::string path;
  int64_t deletion_timestamp = 0;
  bool data_change = true;
  bool extended_file_metadata = false;
  std::map<std::string, std::optional<std::string>> partition_values;
  std::optional<int64_t> size;
  std::optional<DeletionVector> deletion_vector;  // the DV of the add this removes
};

struct Snapshot {
  int64_t version = -1;
  Protocol protocol;
  Metadata metadata;
  std::vector<AddFile> files;          // live files, sorted by path
  std::vector<RemoveFile> tombstones;  // removes still in the reconciled state
  std::map<std::string, int64_t> app_txn_versions;  // txn appId -> version
  std::map<std::string, int64_t> app_txn_last_updated;
  int64_t timestamp_ms = 0;  // commit time of `version` (see LoadSnapshotAsOf)

  const Schema& schema() const { return metadata.schema; }
  const std::vector<std::string>& partition_columns() const { return metadata.partition_columns; }
  // The configuration value for `key`, or `fallback`.
  std::string Config(const std::string& key, const std::string& fallback) const;
  int64_t TotalBytes() const;
};

// One entry of a table's history (newest first in History()).
struct CommitSummary {
  int64_t version = 0;
  int64_t timestamp_ms = 0;
  std::string operation;
  std::string operation_parameters_json = "{}";
  std::string operation_metrics_json = "{}";
  std::string commit_info_json;  // the whole commitInfo object ("" if none)
};

struct OptimizeOptions {
  int64_t target_size = 256LL * 1024 * 1024;
  // Columns to sort rows by inside each output file; empty = the table's
  // `delta.clicklake.zOrderBy` / `delta.clicklake.sortBy` property (comma-separated).
  std::vector<std::string> sort_by;
  // Only files in partitions with these values (column -> value); empty = all.
  std::map<std::string, std::optional<std::string>> partition_filter;
  // Files at least this big are left alone (default: target_size * 3/4 is "big").
  std::optional<int64_t> min_file_size;
  // A file whose deletion vector deletes more than this fraction of its rows
  // is rewritten without them (purging the DV), however big it is; 0 purges
  // every DV.
  double purge_deleted_fraction = 0.05;
  // Bounds one run's work (background compaction between micro-batches): the
  // rewrites are ranked worst first (most deleted rows, then most small files)
  // and taken while their input stays within this many bytes (the first is
  // always taken); the rest is left for the next run. nullopt = no bound.
  std::optional<int64_t> max_input_bytes;
};

struct OptimizeResult {
  int64_t version = -1;  // -1: nothing to do, no commit
  int64_t files_removed = 0;
  int64_t files_added = 0;
  int64_t bytes_removed = 0;
  int64_t bytes_added = 0;
  int64_t rows = 0;
  int64_t deletion_vectors_purged = 0;  // rewritten files that had a DV
  int64_t deleted_rows_purged = 0;      // rows those DVs deleted (dropped for good)
  bool more_work = false;               // max_input_bytes left candidates for a later run
};

struct VacuumOptions {
  std::optional<double> retain_hours;  // default: delta.deletedFileRetentionDuration (7 days)
  bool force = false;                  // allow retain_hours < 168
  bool dry_run = false;
};

struct VacuumResult {
  std::vector<std::string> deleted;  // table-relative paths (data and DV files)
  int64_t bytes_deleted = 0;
  int64_t deletion_vector_files = 0;  // of `deleted`, DV files (deletion_vector_*.bin)
};

struct TableDescription {
  std::string path;
  int64_t version = 0;
  Protocol protocol;
  Metadata metadata;
  int64_t num_files = 0;
  int64_t size_bytes = 0;
  int64_t num_records = -1;  // -1 if some file has no stats
};

// A simple predicate `column op literal` for ScanSql pruning; op is one of
// = != < <= > >=. `literal` is the value as text (NULL not supported).
struct Predicate {
  std::string column;
  std::string op;
  std::string literal;
  std::string literal_type;  // the SQL type the query cast the literal to ("" = none)
};

class Transaction;

class Table {
 public:
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // Opens an existing table (NotFound if there is no _delta_log).
  static Result<std::unique_ptr<Table>> Open(const std::string& path, engine::Database* db,
                                             FileSystem* fs = FileSystem::Default(),
                                             Clock* clock = SystemClock());
  // Opens, or creates with version 0 (protocol + metaData) if absent. Safe
  // when several processes race to create: the loser opens the winner's table.
  // An existing table's schema is not changed (see EvolveSchema). New tables
  // use deletion vectors: protocol reader 3 / writer 7 with the
  // deletionVectors feature and "delta.enableDeletionVectors":"true" (added to
  // `configuration` when absent); with "delta.enableDeletionVectors":"false"
  // they are reader 1 / writer 2 tables that old readers can read, and row
  // deletes rewrite files (copy-on-write).
  static Result<std::unique_ptr<Table>> OpenOrCreate(
      const std::string& path, const Schema& schema, const std::vector<std::string>& partition_columns,
      const std::map<std::string, std::string>& configuration, engine::Database* db,
      FileSystem* fs = FileSystem::Default(), Clock* clock = SystemClock());

  const std::string& path() const { return path_; }
  std::string log_dir() const;

  // The latest snapshot, or the one at `version` (NotFound if the log no
  // longer/not yet holds it). Unsupported if the protocol needs reader
  // features clicklake lacks.
  Result<Snapshot> LoadSnapshot(std::optional<int64_t> version = std::nullopt);
  // The latest version whose commit time is <= timestamp_ms (InvalidArgument
  // if the timestamp is before the first commit).
  Result<Snapshot> LoadSnapshotAsOf(int64_t timestamp_ms);
  // The newest version in the log (-1 if none), by listing only.
  Result<int64_t> LatestVersion();

  // A transaction reading the latest snapshot. On error (unreadable table) the
  // transaction's Commit() returns that error.
  std::unique_ptr<Transaction> StartTransaction();
  // A transaction reading the given snapshot.
  std::unique_ptr<Transaction> StartTransaction(Snapshot read_snapshot);

  // ---- operations (each is one commit) ----
  Result<std::vector<CommitSummary>> History(std::optional<int64_t> limit = std::nullopt);
  Result<TableDescription> Describe(std::optional<int64_t> version = std::nullopt);
  Result<OptimizeResult> Optimize(const OptimizeOptions& options = {});
  Result<VacuumResult> Vacuum(const VacuumOptions& options = {});
  // Atomically replaces every file whose partition values equal one of
  // `partitions` with the rows of `query` (run on `conn`), which must only hold
  // rows of those partitions. Returns the committed version.
  Result<int64_t> ReplacePartitions(engine::Connection* conn, const std::string& query,
                                    const std::vector<std::map<std::string, std::optional<std::string>>>& partitions);
  // Deletes the rows where the SQL `predicate` is true (over the table's
  // columns) through Transaction::DeleteRows: deletion vectors on tables that
  // enable them, else copy-on-write (files rewritten without those rows).
  // Returns the number of rows deleted (0: nothing matched, no commit).
  Result<int64_t> DeleteWhere(engine::Connection* conn, const std::string& predicate);
  // Adds the nullable fields of `desired` missing from the current schema in a
  // commit of its own (returns its version, or the current version if nothing
  // to add). InvalidArgument if `desired` changes a column's type, drops a
  // column, or adds a non-nullable one.
  Result<int64_t> EvolveSchema(const Schema& desired);

  // Writes a checkpoint of `version` (and _last_checkpoint). Done automatically
  // after commits every delta.checkpointInterval versions.
  Status Checkpoint(int64_t version);
  // Deletes log entries and checkpoints older than delta.logRetentionDuration
  // that no retained version needs, and commit temp files older than
  // `temp_max_age_ms`.
  Status CleanupLog(int64_t temp_max_age_ms = 3600 * 1000);

  engine::Database* db() const { return db_; }
  FileSystem* fs() const { return fs_; }
  Clock* clock() const { return clock_; }

 private:
  friend class Transaction;
  Table(std::string path, engine::Database* db, FileSystem* fs, Clock* clock);
  std::string path_;
  engine::Database* db_;
  FileSystem* fs_;
  Clock* clock_;
};

class Transaction {
 public:
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Snapshot& read_snapshot() const { return read_snapshot_; }
  int64_t read_version() const { return read_snapshot_.version; }

  // Writes the rows of `query` (run on `conn`) as zstd Parquet data files of
  // this table, one per partition (partition columns not stored in the files,
  // Hive-escaped directories, URI-encoded add.path), computes exact per-file
  // stats and stages the adds. Returns them. Columns are matched by name; a
  // schema column missing from the query is written as NULL; a query column
  // not in the schema is InvalidArgument. Sets the connection's TimeZone to UTC.
  Result<std::vector<AddFile>> WriteFiles(engine::Connection* conn, const std::string& query);
  // As above, for rows that all belong to one partition with these values
  // (the query then needs no partition columns and is read in one pass).
  // REQUIRES: every row of `query` has exactly these partition values.
  Result<std::vector<AddFile>> WriteFiles(engine::Connection* conn, const std::string& query,
                                          const std::map<std::string, std::optional<std::string>>& partition_values);
  // As above, for rows split into files by `group_expr`, an integer SQL
  // expression over the query's columns: row r goes to the file of group
  // group_expr(r), whose partition values are groups[group_expr(r)]. One pass
  // over the query, the files written in parallel; a group without rows adds
  // no file. REQUIRES: 0 <= group_expr < groups.size() for every row (else
  // InvalidArgument and nothing staged), each group's rows of its partition.
  Result<std::vector<AddFile>> WriteFileGroups(
      engine::Connection* conn, const std::string& query, const std::string& group_expr,
      const std::vector<std::map<std::string, std::optional<std::string>>>& groups);
  void AddFiles(std::vector<AddFile> files);
  // Marks rows of live files of the read snapshot deleted. `rows_query` (run
  // on `conn`) yields two columns: a file's add.path exactly as in the log
  // (what ScanOptions::row_address exposes as `_delta_file`) and a 0-based
  // physical row position in it (`_delta_row`). Rows already deleted are
  // ignored. With deletion vectors enabled (the default for tables clicklake
  // creates), stages per file remove(old DV) + add(same path, new DV = old ∪
  // rows), writing the new DVs into one DV file now (an orphan if the commit
  // never happens: vacuum deletes it); a file left with no live row is just
  // removed. Without (reader 1 / writer 2 tables), rewrites those files
  // without the rows (copy-on-write). The files' partitions count as read.
  // May be called more than once per transaction (the same file twice: the
  // union). Returns the rows newly deleted. InvalidArgument for a path that is
  // not a live file or a position past its numRecords.
  Result<int64_t> DeleteRows(engine::Connection* conn, const std::string& rows_query);
  // Stages a remove of a live file, with dataChange as set by SetDataChange
  // (call that first). The file's partition counts as read.
  void RemoveFile(const AddFile& file);
  // The txn action (idempotent streaming writes).
  void SetAppTransaction(const std::string& app_id, int64_t version);
  void SetOperation(const std::string& op, std::map<std::string, std::string> params);
  void SetOperationMetrics(std::map<std::string, std::string> metrics);
  // Extra commitInfo field; `json_value` is raw JSON (object, string, number).
  void SetCommitInfoField(const std::string& key, const std::string& json_value);
  // A blind append only adds files and reads nothing: it never conflicts with
  // concurrent file changes.
  void SetBlindAppend(bool blind) { blind_append_ = blind; }
  // dataChange of the staged removes and of the adds WriteFiles makes (false
  // for rearrangements such as optimize).
  void SetDataChange(bool data_change) { data_change_ = data_change; }
  // Declares that the transaction read the whole table / one partition
  // (concurrent changes there then conflict).
  void ReadWholeTable() { read_whole_table_ = true; }
  void ReadPartition(const std::map<std::string, std::optional<std::string>>& values);
  // Stages a new metaData (schema evolution). The commit then conflicts with
  // every concurrent commit.
  void UpdateMetadata(Metadata metadata);

  // Commits; returns the committed version. Conflict if a concurrent commit
  // conflicts (re-read and retry), IOError on storage failure (the commit may
  // or may not have happened: use txn versions to make retries idempotent).
  Result<int64_t> Commit();

  const std::vector<AddFile>& staged_adds() const { return adds_; }

 private:
  friend class Table;
  Transaction(Table* table, Snapshot snapshot, Status read_status);
  Result<std::vector<AddFile>> WriteFilesImpl(
      engine::Connection* conn, const std::string& query,
      const std::optional<std::map<std::string, std::optional<std::string>>>& known_partition);

  Table* table_;
  Snapshot read_snapshot_;
  Status read_status_;
  std::vector<AddFile> adds_;
  std::vector<delta::RemoveFile> removes_;
  std::map<std::string, int64_t> txns_;
  std::string operation_ = "WRITE";
  std::map<std::string, std::string> operation_params_;
  std::map<std::string, std::string> operation_metrics_;
  std::vector<std::pair<std::string, std::string>> extra_commit_info_;
  std::optional<Metadata> new_metadata_;
  bool blind_append_ = false;
  bool data_change_ = true;
  bool read_whole_table_ = false;
  std::vector<std::string> read_partitions_;  // canonical partition keys
  bool committed_ = false;
  // DeleteRows' state per file of the read snapshot it touched (by decoded
  // path): every row deleted so far (old DV included) and the files it wrote.
  struct RowDeletion;
  std::map<std::string, std::shared_ptr<RowDeletion>> row_deletions_;
};

// SQL text scanning `snapshot` of the table at `table_path`: the schema's
// columns in order, typed, partition columns taken from partitionValues. Usable
// as `CREATE VIEW x AS <sql>`. Zero files give an empty result with the right columns.
// Timestamps are TIMESTAMPTZ: run it on a connection whose TimeZone is UTC
// (RegisterLakeViews and AttachTable set that) so naive Parquet timestamps
// and partition values read as UTC.
Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot);
// Options of ScanSql.
struct ScanOptions {
  // Only the files that may hold rows matching all predicates (partition
  // pruning and min/max stats skipping), rows filtered by them too.
  std::vector<Predicate> predicates;
  // Two more columns after the schema's: `_delta_file` (VARCHAR, the file's
  // add.path exactly as in the log) and `_delta_row` (BIGINT, the row's 0-based
  // physical position in the file): the input of Transaction::DeleteRows.
  bool row_address = false;
};
// ScanSql with options. Every scan applies the files' deletion vectors.
Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot, const ScanOptions& options);

// The file-system path of the data file `add_path` (an add/remove action's
// path) of the table at `table_path`: URI-decoded, relative paths resolved
// against the table's absolute directory. It is what read_parquet reports in
// its `filename` column for that file.
std::string DataFilePath(const std::string& table_path, const std::string& add_path);
// As above, scanning only the files that may hold rows matching all
// `predicates` (partition pruning and min/max stats skipping), and filtering
// rows by them too.
Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot,
                            const std::vector<Predicate>& predicates);
// The files of `snapshot` that may hold rows matching all `predicates`.
std::vector<AddFile> PruneFiles(const Snapshot& snapshot, const std::vector<Predicate>& predicates);

// The deleted row positions (sorted) of the data file `file` of the table at
// `table_path`: its deletion vector, or none.
Result<std::vector<uint64_t>> ReadDeletedRows(const std::string& table_path, const AddFile& file,
                                              FileSystem* fs = FileSystem::Default());

// Loads a snapshot of the table at `path` without a Table; `conn` reads
// checkpoints (it may be null for tables without checkpoints).
Result<Snapshot> LoadSnapshotAt(const std::string& path, engine::Connection* conn, std::optional<int64_t> version,
                                FileSystem* fs = FileSystem::Default());

// Reads the commitInfo of commit `version` as JSON text (NotFound if the commit
// or its commitInfo is absent).
Result<std::string> ReadCommitInfo(const std::string& table_path, int64_t version,
                                   FileSystem* fs = FileSystem::Default());

// Creates a schema per layer and a view `layer.table` for every Delta table at
// `<lake_dir>/<layer>/<table>/_delta_log`. With `version`, tables that have no
// such version are skipped. Directories starting with '_' or '.' are ignored;
// a missing lake directory registers nothing (OK).
Status RegisterLakeViews(engine::Connection* conn, const std::string& lake_dir, std::optional<int64_t> version,
                         FileSystem* fs = FileSystem::Default());
// Simple predicates (`column op constant`) that a query applies to every row it
// reads from a table, keyed by the table's name as written ("layer.table" or
// "name"). Extracted by PushdownPredicates; views built with them list only the
// files that may hold matching rows (partition values and file stats).
using TablePredicates = std::map<std::string, std::vector<Predicate>>;

// Parses `sql` with the engine (json_serialize_sql) and returns, for each table
// the query references exactly once as the only relation of a SELECT, the
// top-level AND-ed comparisons of its WHERE between a column and a constant.
// Conservative: anything else (joins, OR, functions, several references)
// contributes nothing. A query that does not parse yields no predicates.
TablePredicates PushdownPredicates(engine::Connection* conn, const std::string& sql);

// RegisterLakeViews, with each view built from only the files `predicates`
// leave for it (see PushdownPredicates).
Status RegisterLakeViews(engine::Connection* conn, const std::string& lake_dir, std::optional<int64_t> version,
                         const TablePredicates& predicates, FileSystem* fs = FileSystem::Default());

// Makes the Delta table at `path` queryable as view `name` ("x" or "schema.x").
Status AttachTable(engine::Connection* conn, const std::string& name, const std::string& path,
                   std::optional<int64_t> version, FileSystem* fs = FileSystem::Default());
// AttachTable over only the files that may match `predicates`.
Status AttachTable(engine::Connection* conn, const std::string& name, const std::string& path,
                   std::optional<int64_t> version, const std::vector<Predicate>& predicates,
                   FileSystem* fs = FileSystem::Default());

// Path encoding helpers (exposed for tests and tools).
std::string HiveEscape(std::string_view value);
std::string UriEncodePath(std::string_view path);
std::string DecodePath(std::string_view uri_path);  // decodes %XX once
// DuckDB type for a Delta type ("long" -> BIGINT, nested JSON -> STRUCT/LIST/MAP).
Result<std::string> DuckDbType(const std::string& delta_type);
// The log file name of a commit: 00000000000000000007.json
std::string CommitFileName(int64_t version);

}  // namespace clicklake::delta
