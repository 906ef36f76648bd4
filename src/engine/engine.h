// engine: clicklake's embedded SQL engine (DuckDB through its C API).
//
// This is the only component that includes duckdb.h. Everything else runs SQL,
// reads and writes Parquet through these types, and gets DuckDB's errors back
// as Status values.
//
//   Database    one DuckDB instance (in-memory or a file). Thread-safe.
//   Connection  a session on a Database. Not thread-safe: one per thread.
//   QueryResult a fully materialised result: column names, types, and values as
//               text (NULL kept distinct), with renderers for the CLI formats.
//   Appender    fast row-wise bulk insert into a table.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clicklake::engine {

struct DatabaseOptions {
  std::string path;            // "" = in-memory
  int threads = 0;             // 0 = DuckDB's default (all cores)
  std::string memory_limit;    // e.g. "2GB"; "" = DuckDB's default
  bool allow_external_access = true;  // false: no file reads/writes, ATTACH, extensions
  std::string temp_directory;  // spill location; "" = DuckDB's default
  // Non-empty: every statement of every connection is profiled by DuckDB
  // into <profile_dir>/<n>.json (its operator tree, timings and row counts;
  // DuckDB writes none for statements without a plan, e.g. SET or CREATE TABLE),
  // and <profile_dir>/queries.tsv gets one line per statement: n, wall ms,
  // the start of its SQL (for a statement of a multi-statement Execute, which
  // then run one by one: "statement i of k in: " and the start of the whole
  // text; the JSON's query_name has the statement's own). For finding slow
  // steps: `sort -t$'\t' -k2 -rn queries.tsv`.
  std::string profile_dir;
};

// Logical column types as clicklake cares about them (for formatting).
enum class ColumnKind { kBoolean, kInteger, kFloat, kDecimal, kString, kDate, kTimestamp, kBlob, kNested, kOther };

class QueryResult {
 public:
  size_t column_count() const { return names_.size(); }
  size_t row_count() const { return rows_; }
  const std::string& column_name(size_t col) const { return names_[col]; }
  ColumnKind column_kind(size_t col) const { return kinds_[col]; }
  const std::string& column_type_name(size_t col) const { return type_names_[col]; }
  bool IsNull(size_t row, size_t col) const { return !cells_[col][row].has_value(); }
  // The value as text ("" for NULL; check IsNull).
  const std::string& GetString(size_t row, size_t col) const;
  // The value as an integer/double; fallback when NULL or not numeric.
  int64_t GetInt64(size_t row, size_t col, int64_t fallback = 0) const;
  double GetDouble(size_t row, size_t col, double fallback = 0) const;
  const std::optional<std::string>& Cell(size_t row, size_t col) const { return cells_[col][row]; }

  // A header row then RFC 4180 rows (CRLF line ends, quotes doubled).
  std::string ToCsv() const;
  // A JSON array of objects, numbers and booleans unquoted, NULL as null.
  std::string ToJson() const;
  // An aligned text table for terminals.
  std::string ToTable() const;
  // Pieces of ToCsv / ToJson for results streamed chunk by chunk: the CSV
  // header line, the rows as CSV lines, and the rows as JSON objects each
  // preceded by a comma unless `*first` (which the call clears).
  void AppendCsvHeader(std::string* out) const;
  void AppendCsvRows(std::string* out) const;
  void AppendJsonRows(std::string* out, bool* first) const;
  // Keeps the first `rows` rows (a row cap).
  void Truncate(size_t rows);
  // Appends the rows of `other`, a result with the same columns (chunks of one stream).
  void Append(const QueryResult& other);

 private:
  friend class Connection;
  friend class ResultStream;
  friend class Sandbox;
  std::vector<std::string> names_;
  std::vector<ColumnKind> kinds_;
  std::vector<std::string> type_names_;
  std::vector<std::vector<std::optional<std::string>>> cells_;  // [col][row]
  size_t rows_ = 0;
};

class Appender {
 public:
  ~Appender();
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  // Each Append* fills the next column of the current row; EndRow() finishes it.
  Status AppendNull();
  Status AppendBool(bool v);
  Status AppendInt32(int32_t v);
  Status AppendInt64(int64_t v);
  Status AppendDouble(double v);
  Status AppendString(std::string_view v);
  Status AppendTimestampMicros(int64_t micros_since_epoch);
  Status AppendDate(int32_t days_since_epoch);
  Status EndRow();
  Status Flush();
  // Flushes and releases; further appends fail.
  Status Close();

 private:
  friend class Connection;
  struct Impl;
  explicit Appender(std::unique_ptr<Impl> impl);
  Status Check(bool failed);
  std::unique_ptr<Impl> impl_;
};

// A Parquet file written by Connection::WriteParquetFiles.
struct WrittenParquetFile {
  std::string path;
  int64_t rows = 0;
  int64_t size_bytes = 0;
  // Per leaf column, keyed by its double-quoted path ("\"a\"", nested
  // "\"s\".\"f\""), the writer's statistics as DuckDB renders them: "min"
  // and "max" (absent when the writer kept none; strings longer than 256 bytes
  // are cut, a cut max raised to stay an upper bound), "null_count",
  // "has_nan" (floating point), "column_size_bytes".
  std::map<std::string, std::map<std::string, std::string>> column_stats;
};

class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements, discarding results.
  Status Execute(const std::string& sql);
  // Runs a statement and materialises its result.
  Result<QueryResult> Query(const std::string& sql);
  // A bulk appender into schema.table (schema "" = main).
  Result<std::unique_ptr<Appender>> CreateAppender(const std::string& schema, const std::string& table);
  // COPY (query) TO path as Parquet, zstd-compressed. Returns rows written.
  // With partition_column: path is a new directory, and each value v of that
  // column gets the files of its rows (without the column) in path/<column>=v/.
  Result<int64_t> WriteParquet(const std::string& query, const std::string& path, int64_t row_group_size = 122880,
                               const std::string& partition_column = "");
  // WriteParquet, and for each file written, what the Parquet writer recorded
  // while writing it (COPY … RETURN_STATS): no second read of the files.
  Result<std::vector<WrittenParquetFile>> WriteParquetFiles(const std::string& query, const std::string& path,
                                                            int64_t row_group_size = 122880,
                                                            const std::string& partition_column = "");

 private:
  friend class Database;
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Database {
 public:
  friend class Sandbox;
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  static Result<std::unique_ptr<Database>> Open(const DatabaseOptions& options = {});
  Result<std::unique_ptr<Connection>> Connect();
  // Registers `name(VARCHAR) -> VARCHAR` for every connection of this
  // database, computed by `fn` (NULL in, NULL out). `fn` is called from
  // several threads at once.
  Status RegisterStringFunction(const std::string& name, std::function<std::string(std::string_view)> fn);

 private:
  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Sandbox: untrusted SQL over rows clicklake chooses ----
//
// A Sandbox is a second, locked-down DuckDB database: external access off,
// the local file system disabled, no extension loading, configuration locked.
// Its only data are the tables it is opened with, each a view over the
// table function `clicklake_scan(name)` that streams the rows of a query
// (`source_sql`) run on an unrestricted source Database. The query may read
// the lake's files and apply masks and filters; the sandboxed SQL sees only
// its result, with projection pushdown (only the columns it needs are asked
// of the source) and zero-copy hand-over of the source's vectors.
//
// Query() accepts one SELECT or EXPLAIN statement whose table functions are
// only range/generate_series/unnest and that names no system catalog, no
// settings function and no file; anything else is refused before it runs.
//
// Thread safety: Query() from one thread at a time; Interrupt() from any.

struct SandboxTable {
  std::string schema;      // "" = main
  std::string name;
  std::string source_sql;  // a SELECT run on the source database; its columns are the table's
  // The source's columns and their DuckDB SQL types ("VARCHAR", "TIMESTAMPTZ",
  // "STRUCT(a INTEGER)"...), when the caller knows them (e.g. from a Delta
  // schema): the source is then bound only once, when it is scanned. The
  // source must produce exactly these columns and types (cast them). Empty:
  // they are learnt by preparing source_sql.
  std::vector<std::string> column_names;
  std::vector<std::string> column_types;
};

struct SandboxOptions {
  int threads = 2;                   // per sandbox and per source scan
  std::string memory_limit = "2GB";  // of the sandbox database
};

// A query's result read chunk by chunk (about 2048 rows each), so a huge
// result is never held in memory whole.
class ResultStream {
 public:
  ~ResultStream();
  ResultStream(const ResultStream&) = delete;
  ResultStream& operator=(const ResultStream&) = delete;
  // The columns, as an empty QueryResult (names and kinds).
  const QueryResult& header() const { return header_; }
  // The next chunk, or nullopt at the end.
  Result<std::optional<QueryResult>> Next();
  // Rows returned by Next() so far.
  int64_t rows() const { return rows_; }

 private:
  friend class Sandbox;
  struct Impl;
  explicit ResultStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  QueryResult header_;
  int64_t rows_ = 0;
};

class Sandbox {
 public:
  // REQUIRES: `source` outlives the Sandbox. Each table's source_sql is
  // prepared here (a broken one fails Open).
  static Result<std::unique_ptr<Sandbox>> Open(Database* source, const std::vector<SandboxTable>& tables,
                                               const SandboxOptions& options = {});
  // A sandbox without an engine of its own, for a statement that will run on
  // `source` through QuerySource(): Check() parses on the source (nothing
  // runs), Query() and AddTables() fail. Costs no DuckDB instance.
  static Result<std::unique_ptr<Sandbox>> OpenSourceOnly(Database* source);
  // Adds tables after Open (e.g. once Check() said which a statement reads).
  Status AddTables(const std::vector<SandboxTable>& tables);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // A catalog statement found by Check(): the caller answers it (e.g. from
  // its policy), the sandbox's own catalog is never listed.
  struct Listing {
    enum class Kind { kNone, kDescribe, kShowTables, kShowAllTables };
    Kind kind = Kind::kNone;
    std::string relation;  // kDescribe: the table, "schema.name" or "name" as written
    std::string schema;    // kShowTables: SHOW TABLES FROM schema ("" = all)
  };
  // What a statement reads, without running it: InvalidArgument (with the
  // reason) for anything but one SELECT/EXPLAIN of allowed shape; else the
  // relation names it references ("schema.name" or "name", as written; CTE
  // names included). `DESCRIBE t` / `SHOW t`, `SHOW TABLES [FROM s]`, `SHOW
  // ALL TABLES` (and `DESCRIBE` alone) fill `listing` when given (else they
  // are refused); DESCRIBE of a query and SUMMARIZE are checked like the
  // query they wrap. SHOW/DESCRIBE inside another query is refused.
  Result<std::vector<std::string>> Check(const std::string& sql, Listing* listing = nullptr);
  // Check(), then runs the statement (a listing is refused: answer it). A
  // failure to read a source (or an interrupt) surfaces from Next().
  Result<std::unique_ptr<ResultStream>> Query(const std::string& sql);
  // Runs `sql` on the source database (with its file access), streamed like
  // Query()'s results (values as text; Interrupt() stops it). Nothing is
  // checked here: `sql` must be one the caller built from validated parts,
  // never text a user wrote (see access's source plans).
  Result<std::unique_ptr<ResultStream>> QuerySource(const std::string& sql);
  // Stops the running query (its Next() then fails with "INTERRUPT").
  void Interrupt();
  // The columns each table's scans read so far ("schema.name" → columns).
  std::map<std::string, std::vector<std::string>> ColumnsRead() const;

  struct Impl;

 private:
  explicit Sandbox(std::unique_ptr<Impl> impl);
  // Prepares and starts `sql` on the stream's source connection, or on the
  // sandbox's own.
  Result<std::unique_ptr<ResultStream>> Stream(const std::string& sql, std::unique_ptr<ResultStream::Impl> stream);
  std::unique_ptr<Impl> impl_;
};

// SQL quoting: 'it''s' and "a""b".
std::string QuoteLiteral(std::string_view s);
std::string QuoteIdentifier(std::string_view s);

// DuckDB reserves the catalog name `system`, so a schema of that name (the lake's
// system.* tables) cannot be referenced as `system.x`. This rewrites unquoted
// references `<schema>.` (case-insensitive, not already qualified, outside string
// literals, quoted identifiers and comments) to `<catalog>.<schema>.`.
std::string QualifySchemaReferences(std::string_view sql, std::string_view schema, std::string_view catalog);

// The DuckDB library version, e.g. "v1.4.4".
std::string EngineVersion();

}  // namespace clicklake::engine
