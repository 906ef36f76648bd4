// Sandbox: a locked-down DuckDB database fed by queries on an unrestricted
// one (see engine.h). The locked database never opens a file: its tables are
// views over `clicklake_scan(name)`, a C API table function whose scans pull
// chunks from a streaming query on the source database and hand the source's
// vectors over by reference.
#include <duckdb.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <atomic>
#include <chrono>
#include <thread>
#include <mutex>
#include <set>

#include "engine/engine.h"
#include "engine/internal.h"

namespace clicklake::engine {

namespace {

constexpr const char* kScanFunction = "clicklake_scan";

// Table functions a sandboxed statement may call: generators over its own
// arguments, nothing that reads a file, the catalog or the settings.
const std::set<std::string>& AllowedTableFunctions() {
  static const std::set<std::string> k = {"range", "generate_series", "unnest"};
  return k;
}

// Scalar functions that reveal the process or the engine's configuration, or
// run SQL text: refused wherever they appear.
const std::set<std::string>& DeniedFunctions() {
  static const std::set<std::string> k = {
      "current_setting", "getenv", "query", "query_table", "json_serialize_sql", "json_deserialize_sql",
      "json_serialize_plan", "json_execute_serialized_sql", "current_database", "current_schemas",
      "duckdb_settings", "duckdb_extensions", "sniff_csv", "read_text", "read_blob", "glob", "parquet_metadata",
      "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata", "read_csv", "read_csv_auto", "read_json",
      "read_json_auto", "read_parquet", "read_ndjson", "pg_catalog", "which_secret", "enum_range_boundary"};
  return k;
}

// DuckDB's C API returns NULL for "no message".
std::string Text(const char* s) { return s ? s : ""; }

// A prepared statement's column name: the C API hands over a copy the caller frees.
std::string ColumnName(duckdb_prepared_statement p, idx_t c) {
  const char* name = duckdb_prepared_statement_column_name(p, c);
  std::string out = Text(name);
  if (name) duckdb_free(const_cast<char*>(name));
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The statement after a leading EXPLAIN [ANALYZE] (comments and blanks
// skipped), or "" when it does not start with EXPLAIN.
std::string AfterExplain(const std::string& sql) {
  size_t i = 0;
  auto skip = [&] {
    for (;;) {
      while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) i++;
      if (sql.compare(i, 2, "--") == 0) {
        i = sql.find('\n', i);
        if (i == std::string::npos) i = sql.size();
      } else if (sql.compare(i, 2, "/*") == 0) {
        i = sql.find("*/", i + 2);
        i = i == std::string::npos ? sql.size() : i + 2;
      } else {
        return;
      }
    }
  };
  auto word = [&](const char* w) {
    skip();
    const size_t n = std::strlen(w);
    if (i + n > sql.size() || Lower(sql.substr(i, n)) != w) return false;
    if (i + n < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i + n])) || sql[i + n] == '_')) return false;
    i += n;
    return true;
  };
  if (!word("explain")) return "";
  word("analyze");
  return sql.substr(i);
}

// Walks json_serialize_sql's AST of a SELECT: refuses table functions outside
// the allow-list, denied scalar functions and system relations; collects the
// relations referenced.
class StatementChecker {
 public:
  Status Walk(simdjson::dom::element node) {
    if (node.is_array()) {
      for (auto child : node.get_array()) RETURN_IF_ERROR(Walk(child));
      return Status::OK();
    }
    if (!node.is_object()) return Status::OK();
    simdjson::dom::object obj = node.get_object();
    std::string_view type, fname;
    if (!obj["function_name"].get(fname)) {
      std::string name = Lower(std::string(fname));
      if (DeniedFunctions().count(name) || name.rfind("duckdb_", 0) == 0 || name.rfind("pragma_", 0) == 0) {
        return Status::InvalidArgument("permission denied: function " + name + "() is not available to queries");
      }
    }
    if (!obj["type"].get(type)) {
      if (type == "SHOW_REF") {
        if (shows_allowed == 0) {
          return Status::InvalidArgument(
              "permission denied: DESCRIBE, SHOW and SUMMARIZE run only as statements of their own");
        }
        shows_allowed--;
      } else if (type == "TABLE_FUNCTION") {
        std::string_view tf;
        if (obj["function"]["function_name"].get(tf)) {
          return Status::InvalidArgument("permission denied: this table expression is not available to queries");
        }
        std::string name = Lower(std::string(tf));
        if (!AllowedTableFunctions().count(name)) {
          return Status::InvalidArgument("permission denied: table function " + name +
                                         "() is not available to queries (only the lake's tables are)");
        }
      } else if (type == "BASE_TABLE") {
        RETURN_IF_ERROR(CheckRelation(obj));
      }
    }
    for (auto field : obj) RETURN_IF_ERROR(Walk(field.value));
    return Status::OK();
  }
  std::vector<std::string> relations;
  int shows_allowed = 0;  // SHOW_REF nodes still accepted (the statement's own, at the top)

  // The statement's top node when it is `SELECT * FROM <show>` exactly as
  // DuckDB writes DESCRIBE/SHOW/SUMMARIZE: fills `listing` for the catalog
  // listings, allows the SHOW_REF for the others (checked as their query).
  Status TopLevel(simdjson::dom::element statement, Sandbox::Listing* listing) {
    simdjson::dom::object node, from;
    std::string_view from_type;
    if (statement["node"].get(node) || node["from_table"].get(from) || from["type"].get(from_type) ||
        from_type != "SHOW_REF") {
      return Status::OK();
    }
    simdjson::dom::array select_list, modifiers, groups;
    simdjson::dom::object star;
    std::string_view star_class;
    const bool plain = !node["select_list"].get(select_list) && select_list.size() == 1 &&
                       !select_list.at(0).get(star) && !star["class"].get(star_class) && star_class == "STAR" &&
                       (node["where_clause"].is_null() || node["where_clause"].error()) &&
                       (node["modifiers"].get(modifiers) || modifiers.size() == 0) &&
                       (node["group_expressions"].get(groups) || groups.size() == 0) &&
                       (node["having"].is_null() || node["having"].error()) &&
                       (node["qualify"].is_null() || node["qualify"].error());
    if (!plain) return Status::OK();  // a SHOW_REF inside a query: refused by Walk
    std::string_view show_type, table_name, schema_name;
    if (from["show_type"].get(show_type)) show_type = {};
    if (from["table_name"].get(table_name)) table_name = {};
    if (from["schema_name"].get(schema_name)) schema_name = {};
    auto listed = [&](Sandbox::Listing::Kind kind) -> Status {
      if (listing == nullptr) {
        return Status::InvalidArgument("permission denied: catalog listings are answered by the access policy");
      }
      listing->kind = kind;
      return Status::OK();
    };
    if (show_type == "SHOW_FROM") {
      RETURN_IF_ERROR(listed(Sandbox::Listing::Kind::kShowTables));
      listing->schema = Lower(std::string(schema_name));
      return Status::OK();
    }
    if (table_name == "\"tables\"") return listed(Sandbox::Listing::Kind::kShowTables);
    if (table_name == "__show_tables_expanded") return listed(Sandbox::Listing::Kind::kShowAllTables);
    if (!table_name.empty()) {
      return Status::InvalidArgument("permission denied: SHOW " + std::string(table_name) +
                                     " is not available to queries (SHOW TABLES and DESCRIBE are)");
    }
    simdjson::dom::object query, base;
    std::string_view base_type;
    if (show_type == "DESCRIBE" && !from["query"].get(query) && !query["from_table"].get(base) &&
        !base["type"].get(base_type) && base_type == "BASE_TABLE") {
      const size_t before = relations.size();
      RETURN_IF_ERROR(CheckRelation(base));
      RETURN_IF_ERROR(listed(Sandbox::Listing::Kind::kDescribe));
      listing->relation = relations.back();
      relations.resize(before);
      return Status::OK();
    }
    shows_allowed = 1;  // DESCRIBE <query> / SUMMARIZE: checked as the query they wrap
    return Status::OK();
  }

 private:
  Status CheckRelation(simdjson::dom::object obj) {
    std::string_view catalog, schema, table;
    if (obj["catalog_name"].get(catalog)) catalog = {};
    if (obj["schema_name"].get(schema)) schema = {};
    if (obj["table_name"].get(table)) table = {};
    const std::string c = Lower(std::string(catalog)), s = Lower(std::string(schema)), t = Lower(std::string(table));
    const std::string shown = (s.empty() ? "" : s + ".") + t;
    if (t.find_first_of("/\\:.'") != std::string::npos) {
      return Status::InvalidArgument("permission denied: files cannot be read by name ('" + std::string(table) + "')");
    }
    if ((!c.empty() && c != "memory") || s == "information_schema" || s == "pg_catalog" ||
        t.rfind("duckdb_", 0) == 0 || t.rfind("pragma_", 0) == 0 || t.rfind("sqlite_", 0) == 0 ||
        t.rfind("pg_", 0) == 0) {
      return Status::InvalidArgument("permission denied: " + (c.empty() ? "" : c + ".") + shown +
                                     " is not a table of the lake");
    }
    relations.push_back(shown);
    return Status::OK();
  }
};

Result<std::vector<std::string>> CheckStatement(duckdb_connection conn, const std::string& sql,
                                                Sandbox::Listing* listing);

struct SourceTable {
  std::string key;  // "schema.name" or "name"
  std::string source_sql;
  std::vector<std::string> names;
  std::vector<duckdb_logical_type> types;
};

}  // namespace

struct Sandbox::Impl {
  duckdb_database source = nullptr;  // borrowed
  duckdb_database db = nullptr;
  duckdb_connection conn = nullptr;
  duckdb_connection parse = nullptr;  // OpenSourceOnly: parses statements on the source
  std::vector<SourceTable> tables;
  int threads = 2;
  // Interrupt() was called: streaming results ignore duckdb_interrupt, so
  // the stream's task loop, its fetches and the scans check this themselves.
  std::atomic<bool> cancelled{false};
  mutable std::mutex mu;
  std::map<std::string, std::set<std::string>> columns_read;  // GUARDED_BY(mu)
  std::set<duckdb_connection> active_sources;                 // GUARDED_BY(mu)

  ~Impl() {
    if (conn) duckdb_disconnect(&conn);
    if (parse) duckdb_disconnect(&parse);
    if (db) duckdb_close(&db);
    for (auto& t : tables)
      for (auto& ty : t.types) duckdb_destroy_logical_type(&ty);
  }
};

namespace {

struct ScanBind {
  Sandbox::Impl* sandbox;
  size_t table;
};

struct ScanState {
  Sandbox::Impl* sandbox = nullptr;
  duckdb_connection conn = nullptr;
  duckdb_prepared_statement prepared = nullptr;
  duckdb_result result;
  bool have_result = false;
  bool done = false;
  size_t columns = 0;
  std::mutex mu;  // the streaming result is read by one thread at a time

  ~ScanState() {
    if (have_result) duckdb_destroy_result(&result);
    if (prepared) duckdb_destroy_prepare(&prepared);
    if (conn) {
      std::lock_guard<std::mutex> lock(sandbox->mu);
      sandbox->active_sources.erase(conn);
      duckdb_disconnect(&conn);
    }
  }
};

// Whether two logical types are the same (ids, decimal width and scale,
// nested children, recursively).
bool SameType(duckdb_logical_type a, duckdb_logical_type b) {
  const duckdb_type ta = duckdb_get_type_id(a), tb = duckdb_get_type_id(b);
  if (ta != tb) return false;
  auto same_child = [](duckdb_logical_type ca, duckdb_logical_type cb) {
    const bool same = SameType(ca, cb);
    duckdb_destroy_logical_type(&ca);
    duckdb_destroy_logical_type(&cb);
    return same;
  };
  switch (ta) {
    case DUCKDB_TYPE_DECIMAL:
      return duckdb_decimal_width(a) == duckdb_decimal_width(b) && duckdb_decimal_scale(a) == duckdb_decimal_scale(b);
    case DUCKDB_TYPE_LIST:
      return same_child(duckdb_list_type_child_type(a), duckdb_list_type_child_type(b));
    case DUCKDB_TYPE_ARRAY:
      return duckdb_array_type_array_size(a) == duckdb_array_type_array_size(b) &&
             same_child(duckdb_array_type_child_type(a), duckdb_array_type_child_type(b));
    case DUCKDB_TYPE_MAP:
      return same_child(duckdb_map_type_key_type(a), duckdb_map_type_key_type(b)) &&
             same_child(duckdb_map_type_value_type(a), duckdb_map_type_value_type(b));
    case DUCKDB_TYPE_STRUCT: {
      const idx_t n = duckdb_struct_type_child_count(a);
      if (n != duckdb_struct_type_child_count(b)) return false;
      for (idx_t i = 0; i < n; i++)
        if (!same_child(duckdb_struct_type_child_type(a, i), duckdb_struct_type_child_type(b, i))) return false;
      return true;
    }
    default:
      return true;
  }
}

void ScanBindFn(duckdb_bind_info info) {
  auto* sb = static_cast<Sandbox::Impl*>(duckdb_bind_get_extra_info(info));
  duckdb_value v = duckdb_bind_get_parameter(info, 0);
  char* name = duckdb_get_varchar(v);
  duckdb_destroy_value(&v);
  std::string key = name ? name : "";
  if (name) duckdb_free(name);
  for (size_t i = 0; i < sb->tables.size(); i++) {
    if (sb->tables[i].key != key) continue;
    for (size_t c = 0; c < sb->tables[i].names.size(); c++) {
      duckdb_bind_add_result_column(info, sb->tables[i].names[c].c_str(), sb->tables[i].types[c]);
    }
    duckdb_bind_set_bind_data(info, new ScanBind{sb, i}, [](void* p) { delete static_cast<ScanBind*>(p); });
    return;
  }
  duckdb_bind_set_error(info, ("no table " + key + " in this session").c_str());
}

void ScanInitFn(duckdb_init_info info) {
  auto* bind = static_cast<ScanBind*>(duckdb_init_get_bind_data(info));
  Sandbox::Impl* sb = bind->sandbox;
  const SourceTable& table = sb->tables[bind->table];
  auto state = std::make_unique<ScanState>();
  state->sandbox = sb;
  std::string select;
  std::set<std::string> read;
  const idx_t n = duckdb_init_get_column_count(info);
  for (idx_t i = 0; i < n; i++) {
    const idx_t idx = duckdb_init_get_column_index(info, i);
    if (!select.empty()) select += ", ";
    if (idx < table.names.size()) {
      select += QuoteIdentifier(table.names[idx]);
      read.insert(table.names[idx]);
    } else {
      select += "CAST(NULL AS BIGINT)";  // the row id DuckDB asks for when it needs no column
    }
  }
  state->columns = n;
  const std::string sql =
      "SELECT " + (select.empty() ? std::string("1") : select) + " FROM (\n" + table.source_sql + "\n) AS _clicklake_source";
  if (duckdb_connect(sb->source, &state->conn) == DuckDBError) {
    duckdb_init_set_error(info, "cannot connect to the source database");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(sb->mu);
    sb->active_sources.insert(state->conn);
    sb->columns_read[table.key].insert(read.begin(), read.end());
  }
  duckdb_result setup;
  duckdb_query(state->conn, "SET TimeZone = 'UTC'", &setup);
  duckdb_destroy_result(&setup);
  if (duckdb_prepare(state->conn, sql.c_str(), &state->prepared) == DuckDBError) {
    duckdb_init_set_error(info, (table.key + ": " + Text(duckdb_prepare_error(state->prepared))).c_str());
    return;
  }
  // The source's vectors are handed over as they are: each must have the
  // type the view declared (a declared type the source does not produce is
  // an error, never a misread vector).
  for (idx_t i = 0; i < n; i++) {
    const idx_t idx = duckdb_init_get_column_index(info, i);
    if (idx >= table.names.size()) continue;
    duckdb_logical_type got = duckdb_prepared_statement_column_logical_type(state->prepared, i);
    const bool same = SameType(got, table.types[idx]);
    duckdb_destroy_logical_type(&got);
    if (!same) {
      duckdb_init_set_error(info, (table.key + ": column " + table.names[idx] +
                                   " does not have the type its view declares").c_str());
      return;
    }
  }
  std::memset(&state->result, 0, sizeof(state->result));
  if (duckdb_execute_prepared_streaming(state->prepared, &state->result) == DuckDBError) {
    const char* e = state->result.internal_data ? duckdb_result_error(&state->result) : "cannot run the scan";
    duckdb_init_set_error(info, (table.key + ": " + (e ? e : "cannot run the scan")).c_str());
    if (state->result.internal_data) duckdb_destroy_result(&state->result);
    return;
  }
  state->have_result = true;
  duckdb_init_set_max_threads(info, std::max(1, sb->threads));
  duckdb_init_set_init_data(info, state.release(), [](void* p) { delete static_cast<ScanState*>(p); });
}

void ScanFn(duckdb_function_info info, duckdb_data_chunk output) {
  auto* state = static_cast<ScanState*>(duckdb_function_get_init_data(info));
  std::lock_guard<std::mutex> lock(state->mu);
  while (!state->done) {
    if (state->sandbox->cancelled) {
      state->done = true;
      duckdb_function_set_error(info, "INTERRUPT Error: Interrupted!");
      break;
    }
    duckdb_data_chunk chunk = duckdb_fetch_chunk(state->result);
    if (chunk == nullptr) {
      state->done = true;
      const char* e = duckdb_result_error(&state->result);
      if (e != nullptr && *e != '\0') duckdb_function_set_error(info, e);
      break;
    }
    const idx_t rows = duckdb_data_chunk_get_size(chunk);
    if (rows == 0) {
      duckdb_destroy_data_chunk(&chunk);
      continue;
    }
    for (size_t c = 0; c < state->columns; c++) {
      duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, c), duckdb_data_chunk_get_vector(chunk, c));
    }
    duckdb_data_chunk_set_size(output, rows);
    duckdb_destroy_data_chunk(&chunk);
    return;
  }
  duckdb_data_chunk_set_size(output, 0);
}

Status RunOn(duckdb_connection conn, const std::string& sql) {
  duckdb_result r;
  std::memset(&r, 0, sizeof(r));
  if (duckdb_query(conn, sql.c_str(), &r) == DuckDBError) {
    Status s = ErrorStatus("sandbox setup", r.internal_data ? duckdb_result_error(&r) : "failed");
    if (r.internal_data) duckdb_destroy_result(&r);
    return s;
  }
  duckdb_destroy_result(&r);
  return Status::OK();
}

}  // namespace

// ---- ResultStream ----

struct ResultStream::Impl {
  Sandbox::Impl* sandbox = nullptr;
  duckdb_prepared_statement prepared = nullptr;
  duckdb_pending_result pending = nullptr;  // until its first chunk can be fetched
  duckdb_result result;
  bool have_result = false;
  bool done = false;
  duckdb_connection source = nullptr;  // QuerySource: the stream's own connection
  ~Impl() {
    if (have_result) duckdb_destroy_result(&result);
    if (pending) duckdb_destroy_pending(&pending);
    if (prepared) duckdb_destroy_prepare(&prepared);
    if (source) {
      std::lock_guard<std::mutex> lock(sandbox->mu);
      sandbox->active_sources.erase(source);
      duckdb_disconnect(&source);
    }
  }
  Status Interrupted() {
    done = true;
    return Status::Unavailable("query failed: INTERRUPT Error: Interrupted!");
  }
  // Runs the pending query task by task (checking for Interrupt) until its
  // result can be streamed.
  Status Execute() {
    int idle_us = 0;
    for (;;) {
      if (sandbox->cancelled) return Interrupted();
      const duckdb_pending_state state = duckdb_pending_execute_task(pending);
      if (state == DUCKDB_PENDING_NO_TASKS_AVAILABLE) {
        // The engine's threads are busy or blocked (e.g. on a source scan):
        // wait instead of spinning on a core they need.
        idle_us = std::min(1000, idle_us + 50);
        std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
        continue;
      }
      idle_us = 0;
      if (state == DUCKDB_PENDING_ERROR) {
        done = true;
        const char* e = duckdb_pending_error(pending);
        return sandbox->cancelled ? Interrupted() : ErrorStatus("query failed", e ? e : "the query failed");
      }
      if (duckdb_pending_execution_is_finished(state)) break;
    }
    std::memset(&result, 0, sizeof(result));
    if (duckdb_execute_pending(pending, &result) == DuckDBError) {
      done = true;
      const char* e = result.internal_data ? duckdb_result_error(&result) : nullptr;
      Status s = ErrorStatus("query failed", e ? e : "the query failed");
      if (result.internal_data) duckdb_destroy_result(&result);
      return sandbox->cancelled ? Interrupted() : s;
    }
    have_result = true;
    duckdb_destroy_pending(&pending);
    return Status::OK();
  }
};

ResultStream::ResultStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ResultStream::~ResultStream() = default;

Result<std::optional<QueryResult>> ResultStream::Next() {
  if (impl_->done) return std::optional<QueryResult>();
  if (!impl_->have_result) RETURN_IF_ERROR(impl_->Execute());
  if (impl_->sandbox->cancelled) return impl_->Interrupted();
  duckdb_data_chunk chunk = duckdb_fetch_chunk(impl_->result);
  if (chunk == nullptr) {
    impl_->done = true;
    const char* e = duckdb_result_error(&impl_->result);
    if (impl_->sandbox->cancelled) return impl_->Interrupted();
    if (e != nullptr && *e != '\0') return ErrorStatus("query failed", e);
    return std::optional<QueryResult>();
  }
  QueryResult out = header_;
  const idx_t rows = duckdb_data_chunk_get_size(chunk);
  out.rows_ = rows;
  for (size_t c = 0; c < header_.column_count(); c++) {
    duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
    auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(vec));
    uint64_t* validity = duckdb_vector_get_validity(vec);
    auto& column = out.cells_[c];
    column.reserve(rows);
    for (idx_t r = 0; r < rows; r++) {
      if (validity != nullptr && !duckdb_validity_row_is_valid(validity, r)) {
        column.emplace_back(std::nullopt);
      } else {
        column.emplace_back(std::string(duckdb_string_t_data(&data[r]), duckdb_string_t_length(data[r])));
      }
    }
  }
  duckdb_destroy_data_chunk(&chunk);
  rows_ += static_cast<int64_t>(rows);
  return std::optional<QueryResult>(std::move(out));
}

// ---- Sandbox ----

Sandbox::Sandbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sandbox::~Sandbox() = default;

Result<std::unique_ptr<Sandbox>> Sandbox::Open(Database* source, const std::vector<SandboxTable>& tables,
                                               const SandboxOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->source = source->impl_->db;
  impl->threads = std::max(1, options.threads);
  duckdb_config config;
  if (duckdb_create_config(&config) == DuckDBError) return Status::Internal("cannot create DuckDB config");
  bool ok = true;
  auto set = [&](const char* k, const std::string& v) { ok &= duckdb_set_config(config, k, v.c_str()) != DuckDBError; };
  set("threads", std::to_string(impl->threads));
  if (!options.memory_limit.empty()) set("memory_limit", options.memory_limit);
  set("enable_external_access", "false");
  set("autoinstall_known_extensions", "false");
  set("autoload_known_extensions", "false");
  set("allow_community_extensions", "false");
  set("allow_unsigned_extensions", "false");
  set("max_temp_directory_size", "0B");
  if (!ok) {
    duckdb_destroy_config(&config);
    return Status::InvalidArgument("invalid sandbox setting");
  }
  char* err = nullptr;
  if (duckdb_open_ext(nullptr, &impl->db, config, &err) == DuckDBError) {
    Status s = Status::Internal(std::string("open sandbox: ") + (err ? err : "unknown error"));
    if (err) duckdb_free(err);
    duckdb_destroy_config(&config);
    return s;
  }
  duckdb_destroy_config(&config);
  if (duckdb_connect(impl->db, &impl->conn) == DuckDBError) return Status::Internal("cannot connect to the sandbox");

  duckdb_table_function fn = duckdb_create_table_function();
  duckdb_table_function_set_name(fn, kScanFunction);
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_add_parameter(fn, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_table_function_set_extra_info(fn, impl.get(), nullptr);
  duckdb_table_function_set_bind(fn, ScanBindFn);
  duckdb_table_function_set_init(fn, ScanInitFn);
  duckdb_table_function_set_function(fn, ScanFn);
  duckdb_table_function_supports_projection_pushdown(fn, true);
  const bool registered = duckdb_register_table_function(impl->conn, fn) != DuckDBError;
  duckdb_destroy_table_function(&fn);
  if (!registered) return Status::Internal("cannot register the sandbox scan");
  // Nothing can change a setting after this (external access stays off).
  RETURN_IF_ERROR(RunOn(impl->conn,
                        "SET TimeZone = 'UTC'; SET disabled_filesystems = 'LocalFileSystem'; "
                        "SET lock_configuration = true;"));
  std::unique_ptr<Sandbox> sandbox(new Sandbox(std::move(impl)));
  RETURN_IF_ERROR(sandbox->AddTables(tables));
  return sandbox;
}

Status Sandbox::AddTables(const std::vector<SandboxTable>& tables) {
  if (tables.empty()) return Status::OK();
  if (impl_->conn == nullptr) return Status::Internal("a source-only sandbox has no tables");
  std::vector<SourceTable> added;
  // Columns the caller declared: their logical types from one prepared
  // `SELECT CAST(NULL AS type)...` in the sandbox itself (nothing is read).
  std::string declared;
  for (const SandboxTable& t : tables) {
    const std::string key = t.schema.empty() ? t.name : t.schema + "." + t.name;
    if (t.column_names.size() != t.column_types.size()) {
      return Status::InvalidArgument("source of " + key + ": column names and types differ in number");
    }
    for (size_t c = 0; c < t.column_types.size(); c++) {
      declared += std::string(declared.empty() ? "SELECT " : ", ") + "CAST(NULL AS " + t.column_types[c] + ")";
    }
  }
  std::vector<duckdb_logical_type> declared_types;
  if (!declared.empty()) {
    duckdb_prepared_statement p = nullptr;
    if (duckdb_prepare(impl_->conn, declared.c_str(), &p) == DuckDBError) {
      Status s = ErrorStatus("sandbox column types", duckdb_prepare_error(p));
      duckdb_destroy_prepare(&p);
      return s;
    }
    for (idx_t c = 0; c < duckdb_prepared_statement_column_count(p); c++) {
      declared_types.push_back(duckdb_prepared_statement_column_logical_type(p, c));
    }
    duckdb_destroy_prepare(&p);
  }
  size_t next_declared = 0;
  // The other sources' columns, from their prepared statements.
  duckdb_connection probe = nullptr;
  Status status;
  for (const SandboxTable& t : tables) {
    if (!status.ok()) break;
    SourceTable st;
    st.key = t.schema.empty() ? t.name : t.schema + "." + t.name;
    st.source_sql = t.source_sql;
    if (!t.column_names.empty()) {
      st.names = t.column_names;
      for (size_t c = 0; c < t.column_names.size(); c++) st.types.push_back(declared_types[next_declared++]);
      added.push_back(std::move(st));
      continue;
    }
    if (probe == nullptr) {
      if (duckdb_connect(impl_->source, &probe) == DuckDBError) {
        status = Status::Internal("cannot connect to DuckDB");
        break;
      }
      status = RunOn(probe, "SET TimeZone = 'UTC'");
      if (!status.ok()) break;
    }
    duckdb_prepared_statement p = nullptr;
    if (duckdb_prepare(probe, t.source_sql.c_str(), &p) == DuckDBError) {
      status = ErrorStatus(("source of " + st.key).c_str(), duckdb_prepare_error(p));
    } else {
      for (idx_t c = 0; c < duckdb_prepared_statement_column_count(p); c++) {
        st.names.emplace_back(ColumnName(p, c));
        st.types.push_back(duckdb_prepared_statement_column_logical_type(p, c));
      }
    }
    duckdb_destroy_prepare(&p);
    added.push_back(std::move(st));
  }
  if (probe != nullptr) duckdb_disconnect(&probe);
  // Types not handed to a table yet (an early failure) are freed here.
  for (size_t i = next_declared; i < declared_types.size(); i++) duckdb_destroy_logical_type(&declared_types[i]);
  for (auto& st : added) impl_->tables.push_back(std::move(st));
  RETURN_IF_ERROR(status);
  std::string setup;
  for (const SandboxTable& t : tables) {
    std::string view = "memory.";
    if (!t.schema.empty()) {
      setup += "CREATE SCHEMA IF NOT EXISTS memory." + QuoteIdentifier(t.schema) + ";";
      view += QuoteIdentifier(t.schema) + ".";
    } else {
      view += "main.";
    }
    const std::string key = t.schema.empty() ? t.name : t.schema + "." + t.name;
    setup += "CREATE VIEW " + view + QuoteIdentifier(t.name) + " AS SELECT * FROM " + kScanFunction + "(" +
             QuoteLiteral(key) + ");";
  }
  return RunOn(impl_->conn, setup);
}

Result<std::vector<std::string>> Sandbox::Check(const std::string& sql, Listing* listing) {
  // A source-only sandbox parses on its own connection to the source (nothing runs).
  return CheckStatement(impl_->conn ? impl_->conn : impl_->parse, sql, listing);
}

Result<std::unique_ptr<Sandbox>> Sandbox::OpenSourceOnly(Database* source) {
  auto impl = std::make_unique<Impl>();
  impl->source = source->impl_->db;
  if (duckdb_connect(impl->source, &impl->parse) == DuckDBError) return Status::Internal("cannot connect to DuckDB");
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(impl)));
}

namespace {

Result<std::vector<std::string>> CheckStatement(duckdb_connection conn, const std::string& sql,
                                                Sandbox::Listing* listing) {
  using Listing = Sandbox::Listing;
  if (listing != nullptr) *listing = Listing();
  duckdb_extracted_statements extracted = nullptr;
  const idx_t count = duckdb_extract_statements(conn, sql.c_str(), &extracted);
  if (count == 0) {
    std::string e = extracted ? Text(duckdb_extract_statements_error(extracted)) : "";
    duckdb_destroy_extracted(&extracted);
    return Status::InvalidArgument(e.empty() ? "empty query" : "query failed: " + e);
  }
  duckdb_destroy_extracted(&extracted);
  if (count > 1) {
    return Status::InvalidArgument("permission denied: one statement per query (got " + std::to_string(count) + ")");
  }
  const std::string explained = AfterExplain(sql);
  const std::string& select = explained.empty() ? sql : explained;
  // The AST of the statement, parsed by DuckDB (nothing runs).
  duckdb_prepared_statement p = nullptr;
  duckdb_result r;
  std::memset(&r, 0, sizeof(r));
  std::string json;
  if (duckdb_prepare(conn, "SELECT json_serialize_sql($1::VARCHAR)", &p) == DuckDBError ||
      duckdb_bind_varchar_length(p, 1, select.data(), select.size()) == DuckDBError ||
      duckdb_execute_prepared(p, &r) == DuckDBError) {
    duckdb_destroy_prepare(&p);
    if (r.internal_data) duckdb_destroy_result(&r);
    return Status::Internal("cannot parse the query");
  }
  char* v = duckdb_value_varchar(&r, 0, 0);
  json = v ? v : "";
  duckdb_free(v);
  duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return Status::Internal("cannot read the query's syntax tree");
  bool error = false;
  if (doc["error"].get(error)) error = {};
  if (error) {
    std::string_view message;
    if (doc["error_message"].get(message)) message = {};
    std::string m(message);
    if (m.find("Only SELECT") != std::string::npos) {
      return Status::InvalidArgument("permission denied: only SELECT and EXPLAIN statements are allowed");
    }
    return Status::InvalidArgument("query failed: " + m);
  }
  StatementChecker checker;
  simdjson::dom::array statements;
  if (!doc["statements"].get(statements) && statements.size() == 1) {
    RETURN_IF_ERROR(checker.TopLevel(statements.at(0).value(), listing));
    if (listing != nullptr && listing->kind != Listing::Kind::kNone) {
      if (!explained.empty()) return Status::InvalidArgument("permission denied: EXPLAIN of a catalog listing");
      return std::vector<std::string>();
    }
  }
  RETURN_IF_ERROR(checker.Walk(doc["statements"].value()));
  return checker.relations;
}

}  // namespace

Result<std::unique_ptr<ResultStream>> Sandbox::Query(const std::string& sql) {
  if (impl_->conn == nullptr) return Status::Internal("a source-only sandbox runs no user query");
  RETURN_IF_ERROR(Check(sql).status());
  auto stream_impl = std::make_unique<ResultStream::Impl>();
  stream_impl->sandbox = impl_.get();
  return Stream(sql, std::move(stream_impl));
}

Result<std::unique_ptr<ResultStream>> Sandbox::QuerySource(const std::string& sql) {
  auto stream_impl = std::make_unique<ResultStream::Impl>();
  stream_impl->sandbox = impl_.get();
  if (duckdb_connect(impl_->source, &stream_impl->source) == DuckDBError) {
    return Status::Internal("cannot connect to the source database");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->active_sources.insert(stream_impl->source);
  }
  RETURN_IF_ERROR(RunOn(stream_impl->source, "SET TimeZone = 'UTC'"));
  return Stream(sql, std::move(stream_impl));
}

Result<std::unique_ptr<ResultStream>> Sandbox::Stream(const std::string& sql,
                                                      std::unique_ptr<ResultStream::Impl> stream_impl) {
  const duckdb_connection conn = stream_impl->source ? stream_impl->source : impl_->conn;
  duckdb_prepared_statement user = nullptr;
  if (duckdb_prepare(conn, sql.c_str(), &user) == DuckDBError) {
    Status s = ErrorStatus("query failed", duckdb_prepare_error(user));
    duckdb_destroy_prepare(&user);
    return s;
  }
  const duckdb_statement_type type = duckdb_prepared_statement_type(user);
  if (type != DUCKDB_STATEMENT_TYPE_SELECT && type != DUCKDB_STATEMENT_TYPE_EXPLAIN) {
    duckdb_destroy_prepare(&user);
    return Status::InvalidArgument("permission denied: only SELECT and EXPLAIN statements are allowed");
  }
  QueryResult header;
  bool all_text = true;
  const idx_t cols = duckdb_prepared_statement_column_count(user);
  std::string casts, aliases;
  for (idx_t c = 0; c < cols; c++) {
    header.names_.emplace_back(ColumnName(user, c));
    const duckdb_type t = duckdb_prepared_statement_column_type(user, c);
    header.kinds_.push_back(KindOf(t));
    static const char* kNames[] = {"BOOLEAN", "INTEGER", "FLOAT", "DECIMAL", "VARCHAR",
                                   "DATE",    "TIMESTAMP", "BLOB", "NESTED", "OTHER"};
    header.type_names_.emplace_back(kNames[static_cast<int>(header.kinds_.back())]);
    all_text &= t == DUCKDB_TYPE_VARCHAR;
    const std::string alias = QuoteIdentifier("c" + std::to_string(c));
    casts += std::string(c ? ", " : "") + "CAST(" + alias + " AS VARCHAR)";
    aliases += std::string(c ? ", " : "") + alias;
  }
  header.cells_.resize(cols);
  if (all_text || type == DUCKDB_STATEMENT_TYPE_EXPLAIN) {
    stream_impl->prepared = user;
  } else {
    // Values reach the caller as DuckDB's own text: the statement is read
    // through a projection casting each column to VARCHAR.
    duckdb_destroy_prepare(&user);
    std::string body = sql;
    while (!body.empty() && (std::isspace(static_cast<unsigned char>(body.back())) || body.back() == ';')) body.pop_back();
    const std::string wrapped = "SELECT " + casts + " FROM (\n" + body + "\n) AS _clicklake_result(" + aliases + ")";
    if (duckdb_prepare(conn, wrapped.c_str(), &stream_impl->prepared) == DuckDBError ||
        duckdb_prepared_statement_type(stream_impl->prepared) != DUCKDB_STATEMENT_TYPE_SELECT) {
      return Status::InvalidArgument("query failed: this statement cannot be run as a query (end it without a comment)");
    }
  }
  impl_->cancelled = false;
  if (duckdb_pending_prepared_streaming(stream_impl->prepared, &stream_impl->pending) == DuckDBError) {
    const char* e = stream_impl->pending ? duckdb_pending_error(stream_impl->pending) : nullptr;
    return ErrorStatus("query failed", e ? e : "the query could not run");
  }
  auto stream = std::unique_ptr<ResultStream>(new ResultStream(std::move(stream_impl)));
  stream->header_ = std::move(header);
  return stream;
}

void Sandbox::Interrupt() {
  impl_->cancelled = true;
  if (impl_->conn) duckdb_interrupt(impl_->conn);
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (duckdb_connection c : impl_->active_sources) duckdb_interrupt(c);
}

std::map<std::string, std::vector<std::string>> Sandbox::ColumnsRead() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [k, cols] : impl_->columns_read) out[k] = std::vector<std::string>(cols.begin(), cols.end());
  return out;
}

}  // namespace clicklake::engine

// ---- Database::RegisterStringFunction ----

namespace clicklake::engine {
namespace {

using StringFunction = std::function<std::string(std::string_view)>;

void StringFunctionFn(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  auto* fn = static_cast<StringFunction*>(duckdb_scalar_function_get_extra_info(info));
  const idx_t rows = duckdb_data_chunk_get_size(input);
  duckdb_vector in = duckdb_data_chunk_get_vector(input, 0);
  auto* data = static_cast<duckdb_string_t*>(duckdb_vector_get_data(in));
  uint64_t* in_validity = duckdb_vector_get_validity(in);
  duckdb_vector_ensure_validity_writable(output);
  uint64_t* out_validity = duckdb_vector_get_validity(output);
  for (idx_t r = 0; r < rows; r++) {
    if (in_validity != nullptr && !duckdb_validity_row_is_valid(in_validity, r)) {
      duckdb_validity_set_row_invalid(out_validity, r);
      continue;
    }
    const std::string v = (*fn)(std::string_view(duckdb_string_t_data(&data[r]), duckdb_string_t_length(data[r])));
    duckdb_vector_assign_string_element_len(output, r, v.data(), v.size());
  }
}

}  // namespace

Status Database::RegisterStringFunction(const std::string& name, std::function<std::string(std::string_view)> fn) {
  duckdb_connection conn = nullptr;
  if (duckdb_connect(impl_->db, &conn) == DuckDBError) return Status::Internal("cannot connect to DuckDB");
  duckdb_scalar_function f = duckdb_create_scalar_function();
  duckdb_scalar_function_set_name(f, name.c_str());
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_scalar_function_add_parameter(f, varchar);
  duckdb_scalar_function_set_return_type(f, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_scalar_function_set_extra_info(f, new StringFunction(std::move(fn)),
                                        [](void* p) { delete static_cast<StringFunction*>(p); });
  duckdb_scalar_function_set_function(f, StringFunctionFn);
  const bool ok = duckdb_register_scalar_function(conn, f) != DuckDBError;
  duckdb_destroy_scalar_function(&f);
  duckdb_disconnect(&conn);
  return ok ? Status::OK() : Status::InvalidArgument("cannot register function " + name);
}

}  // namespace clicklake::engine
