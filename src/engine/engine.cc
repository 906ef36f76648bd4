#include "engine/engine.h"

#include <duckdb.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>

#include "common/clock.h"
#include "common/json_string.h"
#include "engine/internal.h"

namespace clicklake::engine {

Status ErrorStatus(const char* what, const char* detail) {
  std::string msg = detail ? detail : "unknown error";
  // DuckDB prefixes its messages with the error class ("Parser Error: ...").
  if (msg.rfind("Parser Error", 0) == 0 || msg.rfind("Binder Error", 0) == 0 ||
      msg.rfind("Catalog Error", 0) == 0 || msg.rfind("Conversion Error", 0) == 0 ||
      msg.rfind("Invalid Input Error", 0) == 0 || msg.rfind("Permission Error", 0) == 0 ||
      msg.rfind("Constraint Error", 0) == 0 || msg.rfind("Not implemented Error", 0) == 0) {
    return Status::InvalidArgument(std::string(what) + ": " + msg);
  }
  if (msg.rfind("IO Error", 0) == 0) return Status::IOError(std::string(what) + ": " + msg);
  if (msg.rfind("Out of Memory Error", 0) == 0) return Status::ResourceExhausted(std::string(what) + ": " + msg);
  if (msg.rfind("TransactionContext Error", 0) == 0) return Status::Conflict(std::string(what) + ": " + msg);
  return Status::InvalidArgument(std::string(what) + ": " + msg);
}

ColumnKind KindOf(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return ColumnKind::kBoolean;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT: return ColumnKind::kInteger;
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE: return ColumnKind::kFloat;
    case DUCKDB_TYPE_DECIMAL: return ColumnKind::kDecimal;
    case DUCKDB_TYPE_VARCHAR: return ColumnKind::kString;
    case DUCKDB_TYPE_DATE: return ColumnKind::kDate;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: return ColumnKind::kTimestamp;
    case DUCKDB_TYPE_BLOB: return ColumnKind::kBlob;
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_MAP:
    case DUCKDB_TYPE_ARRAY: return ColumnKind::kNested;
    default: return ColumnKind::kOther;
  }
}

namespace {

// "2024-05-01 11:59:50.25+00": DuckDB's text form of a TIMESTAMPTZ in UTC.
std::string FormatTimestampTz(int64_t micros) {
  std::string iso = FormatTimestampMicros(micros);  // 2024-05-01T11:59:50.250000Z
  iso[10] = ' ';
  iso.pop_back();  // Z
  while (iso.back() == '0') iso.pop_back();
  if (iso.back() == '.') iso.pop_back();
  return iso + "+00";
}

}  // namespace

// ---- QueryResult ----

const std::string& QueryResult::GetString(size_t row, size_t col) const {
  static const std::string kEmpty;
  const auto& c = cells_[col][row];
  return c ? *c : kEmpty;
}

int64_t QueryResult::GetInt64(size_t row, size_t col, int64_t fallback) const {
  const auto& c = cells_[col][row];
  if (!c) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(c->c_str(), &end, 10);
  return end == c->c_str() ? fallback : v;
}

double QueryResult::GetDouble(size_t row, size_t col, double fallback) const {
  const auto& c = cells_[col][row];
  if (!c) return fallback;
  char* end = nullptr;
  double v = std::strtod(c->c_str(), &end);
  return end == c->c_str() ? fallback : v;
}

namespace {

void AppendCsvField(std::string_view s, std::string* out) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace

void QueryResult::AppendCsvHeader(std::string* out) const {
  for (size_t c = 0; c < names_.size(); c++) {
    if (c) out->push_back(',');
    AppendCsvField(names_[c], out);
  }
  out->append("\r\n");
}

void QueryResult::AppendCsvRows(std::string* out) const {
  for (size_t r = 0; r < rows_; r++) {
    for (size_t c = 0; c < names_.size(); c++) {
      if (c) out->push_back(',');
      if (cells_[c][r]) AppendCsvField(*cells_[c][r], out);
    }
    out->append("\r\n");
  }
}

std::string QueryResult::ToCsv() const {
  std::string out;
  AppendCsvHeader(&out);
  AppendCsvRows(&out);
  return out;
}

void QueryResult::AppendJsonRows(std::string* out, bool* first) const {
  for (size_t r = 0; r < rows_; r++) {
    out->append(*first ? "{" : ",{");
    *first = false;
    for (size_t c = 0; c < names_.size(); c++) {
      if (c) out->push_back(',');
      AppendJsonString(names_[c], out);
      out->push_back(':');
      const auto& v = cells_[c][r];
      if (!v) {
        out->append("null");
      } else if (kinds_[c] == ColumnKind::kInteger || kinds_[c] == ColumnKind::kDecimal ||
                 kinds_[c] == ColumnKind::kBoolean ||
                 (kinds_[c] == ColumnKind::kFloat && *v != "nan" && *v != "inf" && *v != "-inf")) {
        out->append(*v);
      } else {
        AppendJsonString(*v, out);
      }
    }
    out->push_back('}');
  }
}

void QueryResult::Truncate(size_t rows) {
  if (rows >= rows_) return;
  for (auto& column : cells_) column.resize(rows);
  rows_ = rows;
}

void QueryResult::Append(const QueryResult& other) {
  for (size_t c = 0; c < cells_.size() && c < other.cells_.size(); c++) {
    cells_[c].insert(cells_[c].end(), other.cells_[c].begin(), other.cells_[c].end());
  }
  rows_ += other.rows_;
}

std::string QueryResult::ToJson() const {
  std::string out = "[";
  bool first = true;
  AppendJsonRows(&out, &first);
  out.append("]\n");
  return out;
}

std::string QueryResult::ToTable() const {
  std::vector<size_t> width(names_.size());
  for (size_t c = 0; c < names_.size(); c++) {
    width[c] = names_[c].size();
    for (size_t r = 0; r < rows_; r++) width[c] = std::max(width[c], cells_[c][r] ? cells_[c][r]->size() : 4);
  }
  std::ostringstream os;
  auto line = [&] {
    for (size_t c = 0; c < names_.size(); c++) os << (c ? "-+-" : "") << std::string(width[c], '-');
    os << "\n";
  };
  for (size_t c = 0; c < names_.size(); c++) {
    os << (c ? " | " : "") << names_[c] << std::string(width[c] - names_[c].size(), ' ');
  }
  os << "\n";
  line();
  for (size_t r = 0; r < rows_; r++) {
    for (size_t c = 0; c < names_.size(); c++) {
      const std::string& v = cells_[c][r] ? *cells_[c][r] : std::string("NULL");
      bool right = kinds_[c] == ColumnKind::kInteger || kinds_[c] == ColumnKind::kFloat ||
                   kinds_[c] == ColumnKind::kDecimal;
      std::string pad(width[c] - v.size(), ' ');
      os << (c ? " | " : "") << (right ? pad + v : v + pad);
    }
    os << "\n";
  }
  os << "(" << rows_ << (rows_ == 1 ? " row)\n" : " rows)\n");
  return os.str();
}

// ---- Appender ----
//
// Values go straight into the vectors of a data chunk (one per
// duckdb_vector_size() rows), appended with duckdb_append_data_chunk: the
// per-value C API converts every value through a Value object, which cost
// more than the rest of the processor's per-event work.

struct Appender::Impl {
  duckdb_appender appender = nullptr;
  duckdb_data_chunk chunk = nullptr;
  std::vector<duckdb_type> types;
  std::vector<duckdb_vector> vectors;
  std::vector<void*> data;
  std::vector<uint64_t*> validity;
  idx_t capacity = 0;
  idx_t rows = 0;    // complete rows in the chunk
  idx_t column = 0;  // the next column of the current row

  void Bind() {
    for (size_t c = 0; c < types.size(); c++) {
      vectors[c] = duckdb_data_chunk_get_vector(chunk, c);
      duckdb_vector_ensure_validity_writable(vectors[c]);
      data[c] = duckdb_vector_get_data(vectors[c]);
      validity[c] = duckdb_vector_get_validity(vectors[c]);
    }
  }
  // Appends the chunk's complete rows to the table.
  bool AppendChunk() {
    if (rows == 0) return true;
    duckdb_data_chunk_set_size(chunk, rows);
    bool ok = duckdb_append_data_chunk(appender, chunk) != DuckDBError;
    duckdb_data_chunk_reset(chunk);
    rows = 0;
    Bind();
    return ok;
  }
  // Moves to the next column of the row after checking there is one and that
  // its type is one of `accepted` (any type for an empty list).
  Status Next(const char* what, std::initializer_list<duckdb_type> accepted);
  // The column Next() just moved past: its type, and its value in the row.
  duckdb_type type() const { return types[column - 1]; }
  template <typename T>
  T& value() {
    return static_cast<T*>(data[column - 1])[rows];
  }
  // Takes back a Next() whose value turned out invalid.
  Status Reject(const std::string& why) {
    column--;
    return Status::InvalidArgument("append: " + why + " for column " + std::to_string(column + 1));
  }
  void Destroy() {
    if (chunk) duckdb_destroy_data_chunk(&chunk);
    if (appender) duckdb_appender_destroy(&appender);
    chunk = nullptr;
    appender = nullptr;
  }
};

namespace {

const char* TypeName(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return "BOOLEAN";
    case DUCKDB_TYPE_INTEGER: return "INTEGER";
    case DUCKDB_TYPE_BIGINT: return "BIGINT";
    case DUCKDB_TYPE_DOUBLE: return "DOUBLE";
    case DUCKDB_TYPE_VARCHAR: return "VARCHAR";
    case DUCKDB_TYPE_BLOB: return "BLOB";
    case DUCKDB_TYPE_DATE: return "DATE";
    case DUCKDB_TYPE_TIMESTAMP: return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "TIMESTAMPTZ";
    default: return "another type";
  }
}

}  // namespace

Status Appender::Impl::Next(const char* what, std::initializer_list<duckdb_type> accepted) {
  if (!appender) return Status::InvalidArgument("append: the appender is closed");
  if (column >= types.size()) {
    return Status::InvalidArgument("append: Too many appends for a row of " + std::to_string(types.size()) + " columns");
  }
  if (accepted.size() > 0 && std::find(accepted.begin(), accepted.end(), types[column]) == accepted.end()) {
    return Status::InvalidArgument("append: column " + std::to_string(column + 1) + " is " + TypeName(types[column]) +
                                   ", not " + what);
  }
  column++;
  return Status::OK();
}

Appender::Appender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Appender::~Appender() {
  if (impl_->appender) impl_->AppendChunk();  // as duckdb_appender_destroy flushes
  impl_->Destroy();
}

Status Appender::Check(bool failed) {
  if (!failed) return Status::OK();
  duckdb_error_data err = duckdb_appender_error_data(impl_->appender);
  Status s = ErrorStatus("append", duckdb_error_data_message(err));
  duckdb_destroy_error_data(&err);
  return s;
}

Status Appender::AppendNull() {
  RETURN_IF_ERROR(impl_->Next("NULL", {}));
  duckdb_validity_set_row_invalid(impl_->validity[impl_->column - 1], impl_->rows);
  return Status::OK();
}
Status Appender::AppendBool(bool v) {
  RETURN_IF_ERROR(impl_->Next("a boolean", {DUCKDB_TYPE_BOOLEAN}));
  impl_->value<bool>() = v;
  return Status::OK();
}
Status Appender::AppendInt32(int32_t v) { return AppendInt64(v); }
Status Appender::AppendInt64(int64_t v) {
  RETURN_IF_ERROR(impl_->Next("an integer", {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_INTEGER}));
  if (impl_->type() == DUCKDB_TYPE_BIGINT) {
    impl_->value<int64_t>() = v;
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    impl_->value<int32_t>() = static_cast<int32_t>(v);
  } else {
    return impl_->Reject(std::to_string(v) + " is out of range for INTEGER");
  }
  return Status::OK();
}
Status Appender::AppendDouble(double v) {
  RETURN_IF_ERROR(impl_->Next("a double", {DUCKDB_TYPE_DOUBLE}));
  impl_->value<double>() = v;
  return Status::OK();
}
Status Appender::AppendString(std::string_view v) {
  RETURN_IF_ERROR(impl_->Next("a string", {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BLOB}));
  if (impl_->type() == DUCKDB_TYPE_VARCHAR && !simdjson::validate_utf8(v.data(), v.size())) {
    return impl_->Reject("invalid UTF-8 in a string");
  }
  duckdb_vector_assign_string_element_len(impl_->vectors[impl_->column - 1], impl_->rows, v.data(), v.size());
  return Status::OK();
}
Status Appender::AppendTimestampMicros(int64_t micros) {
  RETURN_IF_ERROR(impl_->Next("a timestamp", {DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_TIMESTAMP_TZ}));
  impl_->value<int64_t>() = micros;
  return Status::OK();
}
Status Appender::AppendDate(int32_t days) {
  RETURN_IF_ERROR(impl_->Next("a date", {DUCKDB_TYPE_DATE}));
  impl_->value<int32_t>() = days;
  return Status::OK();
}

Status Appender::EndRow() {
  if (!impl_->appender) return Status::InvalidArgument("append: the appender is closed");
  if (impl_->column != impl_->types.size()) {
    return Status::InvalidArgument("append: a row of " + std::to_string(impl_->column) + " values for " +
                                   std::to_string(impl_->types.size()) + " columns");
  }
  impl_->column = 0;
  if (++impl_->rows == impl_->capacity) return Check(!impl_->AppendChunk());
  return Status::OK();
}
Status Appender::Flush() {
  if (!impl_->appender) return Status::InvalidArgument("append: the appender is closed");
  RETURN_IF_ERROR(Check(!impl_->AppendChunk()));
  return Check(duckdb_appender_flush(impl_->appender) == DuckDBError);
}
Status Appender::Close() {
  if (!impl_->appender) return Status::OK();
  Status s = Check(!impl_->AppendChunk());
  if (s.ok()) s = Check(duckdb_appender_close(impl_->appender) == DuckDBError);
  impl_->Destroy();
  return s;
}

// ---- Connection ----

// DatabaseOptions::profile_dir: numbers the statements of all connections and
// keeps the index of their profiles.
struct QueryProfiler {
  std::string dir;
  std::atomic<int64_t> next{0};
  std::mutex mu;  // guards the index file's appends

  // Points the connection's profile output at the next file; returns its
  // number. DuckDB fails the statement if it cannot write its profile, so a
  // file that cannot be created here (the directory gone, no space) turns
  // profiling off for the statement instead; `*enabled` is the connection's state.
  int64_t Begin(duckdb_connection conn, bool* enabled) {
    const int64_t n = next++;
    const std::string path = dir + "/" + std::to_string(n) + ".json";
    FILE* probe = std::fopen(path.c_str(), "w");
    const bool writable = probe != nullptr && std::fclose(probe) == 0;
    std::string sql;
    if (writable) sql = (*enabled ? "" : "SET enable_profiling = 'json'; ") + ("SET profiling_output = " + QuoteLiteral(path));
    if (!writable && *enabled) sql = "PRAGMA disable_profiling";
    if (!sql.empty()) {
      duckdb_result r;
      duckdb_query(conn, sql.c_str(), &r);
      duckdb_destroy_result(&r);
      *enabled = writable;
    }
    return n;
  }
  void End(int64_t n, int64_t started_us, const std::string& sql, const std::string& part) {
    std::string head = sql.substr(0, 200);
    std::replace_if(head.begin(), head.end(), [](char c) { return c == '\n' || c == '\t' || c == '\r'; }, ' ');
    const double ms = static_cast<double>(SystemClock()->MonotonicMicros() - started_us) / 1000.0;
    std::lock_guard<std::mutex> lock(mu);
    if (FILE* f = std::fopen((dir + "/queries.tsv").c_str(), "a")) {
      std::fprintf(f, "%lld\t%.1f\t%s%s\n", static_cast<long long>(n), ms, part.c_str(), head.c_str());
      std::fclose(f);
    }
  }
};

struct Connection::Impl {
  duckdb_connection conn = nullptr;
  std::shared_ptr<QueryProfiler> profiler;  // null unless profiling
  bool profiling = true;                    // with a profiler: DuckDB's enable_profiling is on

  // Runs `sql` (one or more statements); on success `result` holds the last
  // one's result (the caller destroys it), on failure nothing is left to free.
  // Profiled: statement by statement, each timed and written to its own file.
  Status Run(const std::string& sql, duckdb_result* result) {
    // (A failure that leaves no result, as DuckDB does for some errors after
    // the statement ran, has no message to read.)
    std::memset(result, 0, sizeof(*result));
    auto failed = [&](duckdb_result* r) {
      if (r->internal_data == nullptr) return Status::Internal("query failed: DuckDB gave no error message");
      Status s = ErrorStatus("query failed", duckdb_result_error(r));
      duckdb_destroy_result(r);
      return s;
    };
    if (!profiler) return duckdb_query(conn, sql.c_str(), result) == DuckDBError ? failed(result) : Status::OK();
    duckdb_extracted_statements extracted = nullptr;
    const idx_t count = duckdb_extract_statements(conn, sql.c_str(), &extracted);
    if (count <= 1) {  // one statement, or a parse error that duckdb_query reports
      duckdb_destroy_extracted(&extracted);
      const int64_t n = profiler->Begin(conn, &profiling), t0 = SystemClock()->MonotonicMicros();
      const duckdb_state state = duckdb_query(conn, sql.c_str(), result);
      profiler->End(n, t0, sql, "");
      return state == DuckDBError ? failed(result) : Status::OK();
    }
    Status status;
    for (idx_t i = 0; i < count && status.ok(); i++) {
      duckdb_prepared_statement prepared = nullptr;
      const int64_t n = profiler->Begin(conn, &profiling), t0 = SystemClock()->MonotonicMicros();
      if (duckdb_prepare_extracted_statement(conn, extracted, i, &prepared) == DuckDBError) {
        status = ErrorStatus("query failed", duckdb_prepare_error(prepared));
      } else if (duckdb_execute_prepared(prepared, result) == DuckDBError) {
        status = failed(result);
      } else if (i + 1 < count) {
        duckdb_destroy_result(result);
      }
      duckdb_destroy_prepare(&prepared);
      profiler->End(n, t0, sql, "statement " + std::to_string(i + 1) + " of " + std::to_string(count) + " in: ");
    }
    duckdb_destroy_extracted(&extracted);
    return status;
  }
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() { duckdb_disconnect(&impl_->conn); }

Status Connection::Execute(const std::string& sql) {
  duckdb_result result;
  RETURN_IF_ERROR(impl_->Run(sql, &result));
  duckdb_destroy_result(&result);
  return Status::OK();
}

Result<QueryResult> Connection::Query(const std::string& sql) {
  duckdb_result result;
  RETURN_IF_ERROR(impl_->Run(sql, &result));
  QueryResult out;
  idx_t cols = duckdb_column_count(&result);
  idx_t rows = duckdb_row_count(&result);
  out.rows_ = rows;
  out.cells_.resize(cols);
  for (idx_t c = 0; c < cols; c++) {
    out.names_.emplace_back(duckdb_column_name(&result, c));
    duckdb_type t = duckdb_column_type(&result, c);
    out.kinds_.push_back(KindOf(t));
    duckdb_logical_type lt = duckdb_column_logical_type(&result, c);
    char* tn = duckdb_logical_type_get_alias(lt);
    if (tn) {
      out.type_names_.emplace_back(tn);
      duckdb_free(tn);
    } else {
      static const char* kNames[] = {"BOOLEAN", "INTEGER", "FLOAT", "DECIMAL", "VARCHAR", "DATE",
                                     "TIMESTAMP", "BLOB", "NESTED", "OTHER"};
      out.type_names_.emplace_back(kNames[static_cast<int>(out.kinds_.back())]);
    }
    duckdb_destroy_logical_type(&lt);
    auto& column = out.cells_[c];
    column.reserve(rows);
    if (t == DUCKDB_TYPE_TIMESTAMP_TZ) {
      // The row-wise accessors render TIMESTAMPTZ as "" / 0, and a result's
      // chunks and its row-wise accessors cannot be mixed: read the instants from
      // the materialised column and format them ourselves, in UTC, as DuckDB does
      // with TimeZone=UTC.
      const auto* data = static_cast<const int64_t*>(duckdb_column_data(&result, c));
      const bool* nulls = duckdb_nullmask_data(&result, c);
      for (idx_t r = 0; r < rows; r++) {
        if ((nulls && nulls[r]) || data == nullptr) {
          column.emplace_back(std::nullopt);
        } else {
          column.emplace_back(FormatTimestampTz(data[r]));
        }
      }
      continue;
    }
    for (idx_t r = 0; r < rows; r++) {
      if (duckdb_value_is_null(&result, c, r)) {
        column.emplace_back(std::nullopt);
        continue;
      }
      char* v = duckdb_value_varchar(&result, c, r);
      column.emplace_back(v ? std::string(v) : std::string());
      duckdb_free(v);
    }
  }
  duckdb_destroy_result(&result);
  return out;
}

Result<std::unique_ptr<Appender>> Connection::CreateAppender(const std::string& schema, const std::string& table) {
  auto impl = std::make_unique<Appender::Impl>();
  if (duckdb_appender_create(impl_->conn, schema.empty() ? nullptr : schema.c_str(), table.c_str(),
                             &impl->appender) == DuckDBError) {
    std::string msg = impl->appender ? duckdb_appender_error(impl->appender) : "cannot create appender";
    if (impl->appender) duckdb_appender_destroy(&impl->appender);
    return Status::InvalidArgument("appender for " + table + ": " + msg);
  }
  const idx_t n = duckdb_appender_column_count(impl->appender);
  std::vector<duckdb_logical_type> types(n);
  for (idx_t c = 0; c < n; c++) {
    types[c] = duckdb_appender_column_type(impl->appender, c);
    impl->types.push_back(duckdb_get_type_id(types[c]));
  }
  impl->chunk = duckdb_create_data_chunk(types.data(), n);
  for (auto& t : types) duckdb_destroy_logical_type(&t);
  impl->capacity = duckdb_vector_size();
  impl->vectors.resize(n);
  impl->data.resize(n);
  impl->validity.resize(n);
  impl->Bind();
  return std::unique_ptr<Appender>(new Appender(std::move(impl)));
}

namespace {

std::string ParquetCopySql(const std::string& query, const std::string& path, int64_t row_group_size,
                           const std::string& partition_column, bool return_stats) {
  return "COPY (" + query + ") TO " + QuoteLiteral(path) + " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " +
         std::to_string(row_group_size) +
         (partition_column.empty() ? "" : ", PARTITION_BY (" + QuoteIdentifier(partition_column) + ")") +
         (return_stats ? ", RETURN_STATS)" : ")");
}

}  // namespace

Result<int64_t> Connection::WriteParquet(const std::string& query, const std::string& path, int64_t row_group_size,
                                         const std::string& partition_column) {
  ASSIGN_OR_RETURN(QueryResult r, Query(ParquetCopySql(query, path, row_group_size, partition_column, false)));
  return r.row_count() > 0 ? r.GetInt64(0, 0) : 0;
}

namespace {

std::string StringAt(duckdb_vector vector, idx_t row) {
  auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(vector));
  return std::string(duckdb_string_t_data(&data[row]), duckdb_string_t_length(data[row]));
}

bool ValidAt(duckdb_vector vector, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(vector);
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

}  // namespace

Result<std::vector<WrittenParquetFile>> Connection::WriteParquetFiles(const std::string& query, const std::string& path,
                                                                      int64_t row_group_size,
                                                                      const std::string& partition_column) {
  duckdb_result result;
  RETURN_IF_ERROR(impl_->Run(ParquetCopySql(query, path, row_group_size, partition_column, true), &result));
  // filename, count, file_size_bytes, footer_size_bytes,
  // column_statistics MAP(VARCHAR, MAP(VARCHAR, VARCHAR)), partition_keys.
  std::vector<WrittenParquetFile> files;
  Status status;
  if (duckdb_column_count(&result) < 5) status = Status::Internal("COPY … RETURN_STATS: unexpected result");
  while (status.ok()) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(result);
    if (chunk == nullptr) break;
    const idx_t n = duckdb_data_chunk_get_size(chunk);
    duckdb_vector names = duckdb_data_chunk_get_vector(chunk, 0);
    auto* counts = static_cast<uint64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 1)));
    auto* sizes = static_cast<uint64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 2)));
    // A MAP is a LIST of STRUCT(key, value).
    duckdb_vector columns = duckdb_data_chunk_get_vector(chunk, 4);
    auto* column_entries = static_cast<duckdb_list_entry*>(duckdb_vector_get_data(columns));
    duckdb_vector column_kv = duckdb_list_vector_get_child(columns);
    duckdb_vector column_names = duckdb_struct_vector_get_child(column_kv, 0);
    duckdb_vector column_maps = duckdb_struct_vector_get_child(column_kv, 1);
    auto* stat_entries = static_cast<duckdb_list_entry*>(duckdb_vector_get_data(column_maps));
    duckdb_vector stat_kv = duckdb_list_vector_get_child(column_maps);
    duckdb_vector stat_names = duckdb_struct_vector_get_child(stat_kv, 0);
    duckdb_vector stat_values = duckdb_struct_vector_get_child(stat_kv, 1);
    for (idx_t row = 0; row < n; row++) {
      WrittenParquetFile file;
      file.path = StringAt(names, row);
      file.rows = static_cast<int64_t>(counts[row]);
      file.size_bytes = static_cast<int64_t>(sizes[row]);
      if (ValidAt(columns, row)) {
        const duckdb_list_entry& cols = column_entries[row];
        for (idx_t c = cols.offset; c < cols.offset + cols.length; c++) {
          auto& stats = file.column_stats[StringAt(column_names, c)];
          if (!ValidAt(column_maps, c)) continue;
          const duckdb_list_entry& kv = stat_entries[c];
          for (idx_t k = kv.offset; k < kv.offset + kv.length; k++) {
            if (ValidAt(stat_values, k)) stats[StringAt(stat_names, k)] = StringAt(stat_values, k);
          }
        }
      }
      files.push_back(std::move(file));
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_destroy_result(&result);
  RETURN_IF_ERROR(status);
  return files;
}

// ---- Database ----

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::~Database() { duckdb_close(&impl_->db); }

Result<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options) {
  duckdb_config config;
  if (duckdb_create_config(&config) == DuckDBError) return Status::Internal("cannot create DuckDB config");
  auto set = [&](const char* k, const std::string& v) { return duckdb_set_config(config, k, v.c_str()) != DuckDBError; };
  bool ok = true;
  if (options.threads > 0) ok &= set("threads", std::to_string(options.threads));
  if (!options.memory_limit.empty()) ok &= set("memory_limit", options.memory_limit);
  if (!options.temp_directory.empty()) ok &= set("temp_directory", options.temp_directory);
  ok &= set("autoinstall_known_extensions", "false");
  ok &= set("autoload_known_extensions", "false");
  if (!options.allow_external_access) ok &= set("enable_external_access", "false");
  if (!ok) {
    duckdb_destroy_config(&config);
    return Status::InvalidArgument("invalid DuckDB setting");
  }
  auto impl = std::make_unique<Impl>();
  char* err = nullptr;
  const char* path = options.path.empty() ? nullptr : options.path.c_str();
  if (duckdb_open_ext(path, &impl->db, config, &err) == DuckDBError) {
    Status s = Status::IOError("open database " + options.path + ": " + (err ? err : "unknown error"));
    if (err) duckdb_free(err);
    duckdb_destroy_config(&config);
    return s;
  }
  duckdb_destroy_config(&config);
  if (!options.profile_dir.empty()) {
    impl->profiler = std::make_shared<QueryProfiler>();
    impl->profiler->dir = options.profile_dir;
  }
  return std::unique_ptr<Database>(new Database(std::move(impl)));
}

Result<std::unique_ptr<Connection>> Database::Connect() {
  auto impl = std::make_unique<Connection::Impl>();
  if (duckdb_connect(impl_->db, &impl->conn) == DuckDBError) return Status::Internal("cannot connect to DuckDB");
  std::unique_ptr<Connection> conn(new Connection(std::move(impl)));
  if (impl_->profiler) {
    // Enabled before the profiler is attached: this statement is not profiled.
    RETURN_IF_ERROR(conn->Execute("SET enable_profiling = 'json'"));
    conn->impl_->profiler = impl_->profiler;
  }
  return conn;
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string QuoteIdentifier(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string QualifySchemaReferences(std::string_view sql, std::string_view schema, std::string_view catalog) {
  auto ident_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; };
  auto iequals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++)
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
  };
  std::string out;
  out.reserve(sql.size() + 16);
  size_t i = 0;
  char prev_sig = 0;  // last non-space character emitted outside literals
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // literal or quoted identifier: copy through the closing quote
      size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      size_t end = std::min(sql.size(), j + 1);
      out.append(sql.substr(i, end - i));
      prev_sig = c;
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      j = j == std::string_view::npos ? sql.size() : j;
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t j = sql.find("*/", i + 2);
      j = j == std::string_view::npos ? sql.size() : j + 2;
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (ident_char(c)) {
      size_t j = i;
      while (j < sql.size() && ident_char(sql[j])) j++;
      std::string_view word = sql.substr(i, j - i);
      size_t k = j;
      while (k < sql.size() && std::isspace(static_cast<unsigned char>(sql[k]))) k++;
      if (prev_sig != '.' && k < sql.size() && sql[k] == '.' && iequals(word, schema)) {
        out.append(catalog).append(".");
      }
      out.append(word);
      prev_sig = word.back();
      i = j;
    } else {
      out.push_back(c);
      if (!std::isspace(static_cast<unsigned char>(c))) prev_sig = c;
      i++;
    }
  }
  return out;
}

std::string EngineVersion() { return duckdb_library_version(); }

}  // namespace clicklake::engine
