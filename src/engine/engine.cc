#include "engine/engine.h"

#include <duckdb.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "common/clock.h"
#include "common/json_string.h"

namespace clicklake::engine {
namespace {

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

std::string QueryResult::ToCsv() const {
  std::string out;
  auto field = [&out](std::string_view s) {
    bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
    if (!quote) {
      out.append(s);
      return;
    }
    out.push_back('"');
    for (char c : s) {
      if (c == '"') out.push_back('"');
      out.push_back(c);
    }
    out.push_back('"');
  };
  for (size_t c = 0; c < names_.size(); c++) {
    if (c) out.push_back(',');
    field(names_[c]);
  }
  out.append("\r\n");
  for (size_t r = 0; r < rows_; r++) {
    for (size_t c = 0; c < names_.size(); c++) {
      if (c) out.push_back(',');
      if (cells_[c][r]) field(*cells_[c][r]);
    }
    out.append("\r\n");
  }
  return out;
}

std::string QueryResult::ToJson() const {
  std::string out = "[";
  for (size_t r = 0; r < rows_; r++) {
    out.append(r ? ",{" : "{");
    for (size_t c = 0; c < names_.size(); c++) {
      if (c) out.push_back(',');
      AppendJsonString(names_[c], &out);
      out.push_back(':');
      const auto& v = cells_[c][r];
      if (!v) {
        out.append("null");
      } else if (kinds_[c] == ColumnKind::kInteger || kinds_[c] == ColumnKind::kDecimal ||
                 kinds_[c] == ColumnKind::kBoolean ||
                 (kinds_[c] == ColumnKind::kFloat && *v != "nan" && *v != "inf" && *v != "-inf")) {
        out.append(*v);
      } else {
        AppendJsonString(*v, &out);
      }
    }
    out.push_back('}');
  }
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

struct Appender::Impl {
  duckdb_appender appender = nullptr;
};

Appender::Appender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Appender::~Appender() {
  if (impl_->appender) {
    duckdb_appender_destroy(&impl_->appender);
  }
}

Status Appender::Check(bool failed) {
  if (!failed) return Status::OK();
  duckdb_error_data err = duckdb_appender_error_data(impl_->appender);
  Status s = ErrorStatus("append", duckdb_error_data_message(err));
  duckdb_destroy_error_data(&err);
  return s;
}

Status Appender::AppendNull() { return Check(duckdb_append_null(impl_->appender) == DuckDBError); }
Status Appender::AppendBool(bool v) { return Check(duckdb_append_bool(impl_->appender, v) == DuckDBError); }
Status Appender::AppendInt32(int32_t v) { return Check(duckdb_append_int32(impl_->appender, v) == DuckDBError); }
Status Appender::AppendInt64(int64_t v) { return Check(duckdb_append_int64(impl_->appender, v) == DuckDBError); }
Status Appender::AppendDouble(double v) { return Check(duckdb_append_double(impl_->appender, v) == DuckDBError); }
Status Appender::AppendString(std::string_view v) {
  return Check(duckdb_append_varchar_length(impl_->appender, v.data(), v.size()) == DuckDBError);
}
Status Appender::AppendTimestampMicros(int64_t micros) {
  duckdb_timestamp ts{micros};
  return Check(duckdb_append_timestamp(impl_->appender, ts) == DuckDBError);
}
Status Appender::AppendDate(int32_t days) {
  duckdb_date d{days};
  return Check(duckdb_append_date(impl_->appender, d) == DuckDBError);
}
Status Appender::EndRow() { return Check(duckdb_appender_end_row(impl_->appender) == DuckDBError); }
Status Appender::Flush() { return Check(duckdb_appender_flush(impl_->appender) == DuckDBError); }
Status Appender::Close() {
  if (!impl_->appender) return Status::OK();
  Status s = Check(duckdb_appender_close(impl_->appender) == DuckDBError);
  duckdb_appender_destroy(&impl_->appender);
  impl_->appender = nullptr;
  return s;
}

// ---- Connection ----

struct Connection::Impl {
  duckdb_connection conn = nullptr;
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() { duckdb_disconnect(&impl_->conn); }

Status Connection::Execute(const std::string& sql) {
  duckdb_result result;
  if (duckdb_query(impl_->conn, sql.c_str(), &result) == DuckDBError) {
    Status s = ErrorStatus("query failed", duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return s;
  }
  duckdb_destroy_result(&result);
  return Status::OK();
}

Result<QueryResult> Connection::Query(const std::string& sql) {
  duckdb_result result;
  if (duckdb_query(impl_->conn, sql.c_str(), &result) == DuckDBError) {
    Status s = ErrorStatus("query failed", duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return s;
  }
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
  return std::unique_ptr<Appender>(new Appender(std::move(impl)));
}

Result<int64_t> Connection::WriteParquet(const std::string& query, const std::string& path, int64_t row_group_size) {
  std::string sql = "COPY (" + query + ") TO " + QuoteLiteral(path) +
                    " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " + std::to_string(row_group_size) + ")";
  ASSIGN_OR_RETURN(QueryResult r, Query(sql));
  return r.row_count() > 0 ? r.GetInt64(0, 0) : 0;
}

// ---- Database ----

struct Database::Impl {
  duckdb_database db = nullptr;
};

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
  return std::unique_ptr<Database>(new Database(std::move(impl)));
}

Result<std::unique_ptr<Connection>> Database::Connect() {
  auto impl = std::make_unique<Connection::Impl>();
  if (duckdb_connect(impl_->db, &impl->conn) == DuckDBError) return Status::Internal("cannot connect to DuckDB");
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
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
