// SQL over snapshots: ScanSql, file pruning, lake views.

#include <filesystem>
#include <set>

#include <simdjson.h>

#include "delta/internal.h"

namespace clicklake::delta {
namespace {

std::string AbsolutePath(const std::string& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  std::string out = ec ? p : abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The file-system path of a data file of the table at absolute path `table_abs`.
std::string ResolveDataFile(const std::string& table_abs, const std::string& add_path) {
  std::string decoded = DecodePath(add_path);
  if (decoded.rfind("file://", 0) == 0) return decoded.substr(7);
  if (decoded.rfind("file:", 0) == 0) return decoded.substr(5);
  if (!decoded.empty() && decoded[0] == '/') return decoded;
  return table_abs + "/" + decoded;
}

bool IsNumericType(const std::string& t) {
  static const std::set<std::string> kTypes = {"long", "integer", "short", "byte", "float", "double"};
  return kTypes.count(t) || t.rfind("decimal", 0) == 0;
}

// Compares two values of a Delta type: <0, 0, >0; nullopt if incomparable.
std::optional<int> CompareValues(const std::string& type, const std::string& a, const std::string& b) {
  if (IsNumericType(type)) {
    char* ea = nullptr;
    char* eb = nullptr;
    double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    if (ea == a.c_str() || eb == b.c_str()) return std::nullopt;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type == "timestamp" || type == "timestamp_ntz") {
    int64_t x, y;
    if (!ParseTimestampMicros(a, &x) || !ParseTimestampMicros(b, &y)) return std::nullopt;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type == "string" || type == "date") {
    int c = a.compare(b);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return std::nullopt;
}

bool OpHolds(const std::string& op, int cmp) {
  if (op == "=") return cmp == 0;
  if (op == "!=" || op == "<>") return cmp != 0;
  if (op == "<") return cmp < 0;
  if (op == "<=") return cmp <= 0;
  if (op == ">") return cmp > 0;
  if (op == ">=") return cmp >= 0;
  return true;
}

// Whether a file with these min/max could hold a row with `col op lit`.
bool RangeMayMatch(const std::string& type, const std::string& op, const std::string& lit, const std::string& mn,
                   const std::string& mx) {
  auto cmin = CompareValues(type, mn, lit);  // min vs lit
  auto cmax = CompareValues(type, mx, lit);  // max vs lit
  if (!cmin || !cmax) return true;
  if (type == "timestamp" || type == "timestamp_ntz") {
    // A max is truncated to milliseconds: allow it to be up to 1 ms low.
    int64_t x, y;
    if (ParseTimestampMicros(mx, &x) && ParseTimestampMicros(lit, &y)) cmax = x + 1000 < y ? -1 : (x > y ? 1 : 0);
  }
  if (op == "=") return *cmin <= 0 && *cmax >= 0;
  if (op == "<") return *cmin < 0;
  if (op == "<=") return *cmin <= 0;
  if (op == ">") return *cmax > 0;
  if (op == ">=") return *cmax >= 0;
  if (op == "!=" || op == "<>") return !(*cmin == 0 && *cmax == 0);
  return true;
}

std::optional<std::string> StatValue(simdjson::dom::element stats, const char* kind, const std::string& col) {
  simdjson::dom::element v;
  if (stats[kind][col].get(v)) return std::nullopt;
  std::string_view s;
  if (v.is_string() && !v.get_string().get(s)) return std::string(s);
  if (v.is_number()) return simdjson::minify(v);
  return std::nullopt;
}

}  // namespace

std::vector<AddFile> PruneFiles(const Snapshot& snapshot, const std::vector<Predicate>& predicates) {
  std::vector<AddFile> out;
  const Schema& schema = snapshot.schema();
  std::set<std::string> partition_set(snapshot.partition_columns().begin(), snapshot.partition_columns().end());
  simdjson::dom::parser parser;
  for (const AddFile& f : snapshot.files) {
    bool keep = true;
    simdjson::dom::element stats;
    bool have_stats = !f.stats.empty() && !parser.parse(f.stats.data(), f.stats.size()).get(stats);
    for (const Predicate& p : predicates) {
      const Field* field = schema.Find(p.column);
      if (field == nullptr) continue;
      std::string physical = internal::PhysicalName(snapshot.metadata, *field);
      if (partition_set.count(p.column)) {
        auto it = f.partition_values.find(physical);
        if (it == f.partition_values.end()) continue;
        if (!it->second) {
          keep = false;  // NULL never satisfies a comparison
          break;
        }
        auto cmp = CompareValues(field->type, *it->second, p.literal);
        if (cmp && !OpHolds(p.op, *cmp)) {
          keep = false;
          break;
        }
      } else if (have_stats) {
        // With deletion vectors (tightBounds false) min/max may describe
        // deleted rows too: still a superset of the live values.
        auto mn = StatValue(stats, "minValues", physical);
        auto mx = StatValue(stats, "maxValues", physical);
        if (mn && mx && !RangeMayMatch(field->type, p.op, p.literal, *mn, *mx)) {
          keep = false;
          break;
        }
      }
    }
    if (keep) out.push_back(f);
  }
  return out;
}

std::string DataFilePath(const std::string& table_path, const std::string& add_path) {
  return ResolveDataFile(AbsolutePath(table_path), add_path);
}

namespace {

// Deleted positions of one file as SQL text: single positions "3,9,12" and
// runs "100-199,400-420" (inclusive), so that a contiguous deletion costs a
// few bytes of view text however long it is.
struct DeletedRowsText {
  std::string singles;
  std::string runs;
};

DeletedRowsText DeletedRowsAsText(const std::vector<uint64_t>& rows) {
  constexpr size_t kMinRun = 4;  // shorter runs are cheaper as single positions
  DeletedRowsText out;
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) j++;
    if (j - i >= kMinRun) {
      if (!out.runs.empty()) out.runs.push_back(',');
      out.runs += std::to_string(rows[i]) + "-" + std::to_string(rows[j - 1]);
    } else {
      for (size_t k = i; k < j; k++) {
        if (!out.singles.empty()) out.singles.push_back(',');
        out.singles += std::to_string(rows[k]);
      }
    }
    i = j;
  }
  return out;
}

// The relation (__cl_file UBIGINT, __cl_row BIGINT) of every deleted row of
// the scanned files: file_index (position in the read_parquet list) and
// physical row position. "" when no file has a deletion vector.
Result<std::string> DeletedRowsRelation(const std::string& table_path, const std::vector<AddFile>& files,
                                        FileSystem* fs) {
  std::string singles, runs;
  for (size_t i = 0; i < files.size(); i++) {
    if (!files[i].deletion_vector) continue;
    ASSIGN_OR_RETURN(std::vector<uint64_t> rows, ReadDeletedRows(table_path, files[i], fs));
    DeletedRowsText text = DeletedRowsAsText(rows);
    std::string index = std::to_string(i);
    if (!text.singles.empty()) singles += (singles.empty() ? "(" : ", (") + index + ", '" + text.singles + "')";
    if (!text.runs.empty()) runs += (runs.empty() ? "(" : ", (") + index + ", '" + text.runs + "')";
  }
  std::string parts;
  if (!singles.empty()) {
    parts = "SELECT CAST(__cl_f AS UBIGINT) AS __cl_file, unnest(CAST(string_split(__cl_r, ',') AS BIGINT[])) AS __cl_row "
            "FROM (VALUES " + singles + ") AS __cl_dvs(__cl_f, __cl_r)";
  }
  if (!runs.empty()) {
    if (!parts.empty()) parts += " UNION ALL ";
    parts += "SELECT __cl_file, unnest(range(CAST(split_part(__cl_run, '-', 1) AS BIGINT), "
             "CAST(split_part(__cl_run, '-', 2) AS BIGINT) + 1)) AS __cl_row FROM (SELECT CAST(__cl_f AS UBIGINT) AS "
             "__cl_file, unnest(string_split(__cl_r, ',')) AS __cl_run FROM (VALUES " + runs + ") AS __cl_dvr(__cl_f, __cl_r))";
  }
  return parts;
}

// The scan of `files` (a subset of the snapshot's live files) as SQL. Columns
// are read by their physical names and exposed by their logical ones; rows
// that the files' deletion vectors delete are left out by an anti-join on
// (file_index, file_row_number).
Result<std::string> ScanFilesSql(const std::string& table_path, const Snapshot& snapshot,
                                 const std::vector<AddFile>& files, bool row_address, FileSystem* fs) {
  const Schema& schema = snapshot.schema();
  if (schema.fields.empty()) return Status::InvalidArgument("table " + table_path + " has no columns");
  std::string table_abs = AbsolutePath(table_path);
  std::set<std::string> partition_set(snapshot.partition_columns().begin(), snapshot.partition_columns().end());
  std::vector<std::string> types, physical;
  for (const Field& f : schema.fields) {
    ASSIGN_OR_RETURN(std::string t, DuckDbType(f.type));
    types.push_back(t);
    physical.push_back(internal::PhysicalName(snapshot.metadata, f));
  }
  if (files.empty()) {
    std::string sql = "SELECT ";
    for (size_t i = 0; i < schema.fields.size(); i++) {
      sql += (i ? ", " : "") + std::string("CAST(NULL AS ") + types[i] + ") AS " + engine::QuoteIdentifier(schema.fields[i].name);
    }
    if (row_address) sql += ", CAST(NULL AS VARCHAR) AS _delta_file, CAST(NULL AS BIGINT) AS _delta_row";
    return sql + " WHERE false";
  }
  ASSIGN_OR_RETURN(std::string deleted, DeletedRowsRelation(table_path, files, fs));
  bool row_numbers = row_address || !deleted.empty();
  // A typed empty row unioned by name with the files: columns missing from
  // older files (schema evolution) read as NULL.
  std::string empty = "SELECT ";
  for (size_t i = 0; i < schema.fields.size(); i++) {
    if (partition_set.count(schema.fields[i].name)) continue;
    empty += "CAST(NULL AS " + types[i] + ") AS " + engine::QuoteIdentifier(physical[i]) + ", ";
  }
  empty += "CAST(NULL AS UBIGINT) AS file_index";
  if (row_numbers) empty += ", CAST(NULL AS BIGINT) AS file_row_number";
  empty += " WHERE false";
  std::string list = "[";
  for (size_t i = 0; i < files.size(); i++) {
    if (i) list += ", ";
    list += engine::QuoteLiteral(ResolveDataFile(table_abs, files[i].path));
  }
  list += "]";
  std::string data = "(" + empty + " UNION ALL BY NAME SELECT *, file_index FROM read_parquet(" + list +
                     ", union_by_name=true" + (row_numbers ? ", file_row_number=true" : "") + ")) AS __cl_d";
  std::string select = "SELECT ";
  std::map<std::string, std::string> partition_alias;
  int pi = 0;
  for (const auto& p : snapshot.partition_columns()) partition_alias[p] = "__cl_p" + std::to_string(pi++);
  for (size_t i = 0; i < schema.fields.size(); i++) {
    const std::string& name = schema.fields[i].name;
    if (i) select += ", ";
    if (partition_set.count(name)) {
      select += "CAST(__cl_pv." + partition_alias[name] + " AS " + types[i] + ")";
    } else {
      select += "CAST(__cl_d." + engine::QuoteIdentifier(physical[i]) + " AS " + types[i] + ")";
    }
    select += " AS " + engine::QuoteIdentifier(name);
  }
  if (row_address) select += ", __cl_pv.__cl_path AS _delta_file, __cl_d.file_row_number AS _delta_row";
  std::string sql = select + " FROM " + data;
  if (!partition_set.empty() || row_address) {
    // Per file: its add.path and partition values (keyed by physical name).
    std::string values = "(VALUES ";
    for (size_t i = 0; i < files.size(); i++) {
      const AddFile& f = files[i];
      values += (i ? ", (" : "(") + std::to_string(i) + ", " + engine::QuoteLiteral(f.path);
      for (const auto& p : snapshot.partition_columns()) {
        const Field* field = schema.Find(p);
        auto it = f.partition_values.find(field ? internal::PhysicalName(snapshot.metadata, *field) : p);
        values += ", ";
        values += (it != f.partition_values.end() && it->second) ? engine::QuoteLiteral(*it->second) : "NULL::VARCHAR";
      }
      values += ")";
    }
    values += ") AS __cl_pvl(__cl_file, __cl_path";
    for (const auto& p : snapshot.partition_columns()) values += ", " + partition_alias[p];
    values += ")";
    sql += " JOIN (SELECT * REPLACE (CAST(__cl_file AS UBIGINT) AS __cl_file) FROM " + values +
           ") AS __cl_pv ON __cl_d.file_index = __cl_pv.__cl_file";
  }
  if (!deleted.empty()) {
    sql += " ANTI JOIN (" + deleted +
           ") AS __cl_dv ON __cl_d.file_index = __cl_dv.__cl_file AND __cl_d.file_row_number = __cl_dv.__cl_row";
  }
  return sql;
}

}  // namespace

namespace internal {

Result<std::string> ScanSqlImpl(const std::string& table_path, const Snapshot& snapshot, const ScanOptions& options,
                                FileSystem* fs) {
  static const std::set<std::string> kOps = {"=", "!=", "<>", "<", "<=", ">", ">="};
  std::string where;
  for (const Predicate& p : options.predicates) {
    const Field* f = snapshot.schema().Find(p.column);
    if (f == nullptr) return Status::InvalidArgument("no column " + p.column + " in " + table_path);
    if (!kOps.count(p.op)) return Status::InvalidArgument("unsupported operator " + p.op);
    ASSIGN_OR_RETURN(std::string t, DuckDbType(f->type));
    if (!where.empty()) where += " AND ";
    where += engine::QuoteIdentifier(p.column) + " " + p.op + " CAST(" + engine::QuoteLiteral(p.literal) + " AS " + t + ")";
  }
  std::vector<AddFile> pruned;
  if (!options.predicates.empty()) pruned = PruneFiles(snapshot, options.predicates);
  const std::vector<AddFile>& files = options.predicates.empty() ? snapshot.files : pruned;
  ASSIGN_OR_RETURN(std::string sql, ScanFilesSql(table_path, snapshot, files, options.row_address, fs));
  if (where.empty()) return sql;
  return "SELECT * FROM (" + sql + ") WHERE " + where;
}

}  // namespace internal

Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot) {
  return internal::ScanSqlImpl(table_path, snapshot, ScanOptions{}, FileSystem::Default());
}

Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot, const ScanOptions& options) {
  return internal::ScanSqlImpl(table_path, snapshot, options, FileSystem::Default());
}

Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot,
                            const std::vector<Predicate>& predicates) {
  ScanOptions options;
  options.predicates = predicates;
  return internal::ScanSqlImpl(table_path, snapshot, options, FileSystem::Default());
}

Status AttachTable(engine::Connection* conn, const std::string& name, const std::string& path,
                   std::optional<int64_t> version, FileSystem* fs) {
  return AttachTable(conn, name, path, version, {}, fs);
}

Status AttachTable(engine::Connection* conn, const std::string& name, const std::string& path,
                   std::optional<int64_t> version, const std::vector<Predicate>& predicates, FileSystem* fs) {
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  ASSIGN_OR_RETURN(Snapshot snap, internal::LoadSnapshotImpl(path, fs, conn, version));
  // Only prune files here; the query applies its own filters with its own
  // semantics. Predicates on names that are not columns of this table (outer
  // references of a correlated subquery) say nothing about it.
  // A predicate prunes only when its literal is already in the column's canonical
  // form (the cast round-trips): '2024-05-01 10:00' compared with a DATE, or a
  // TIMESTAMP literal against a DATE column, follow DuckDB's own coercions, which
  // file pruning does not model, so they prune nothing.
  std::vector<Predicate> own;
  for (const Predicate& p : predicates) {
    const Field* f = snap.schema().Find(p.column);
    if (f == nullptr) continue;
    auto type = DuckDbType(f->type);
    if (!type.ok() || (!p.literal_type.empty() && p.literal_type != *type)) continue;
    auto canonical = conn->Query("SELECT TRY_CAST(" + engine::QuoteLiteral(p.literal) + " AS " + *type + ")::VARCHAR");
    if (!canonical.ok() || canonical->IsNull(0, 0) || canonical->GetString(0, 0) != p.literal) continue;
    own.push_back(p);
  }
  if (!own.empty()) snap.files = PruneFiles(snap, own);
  ASSIGN_OR_RETURN(std::string sql, internal::ScanSqlImpl(path, snap, ScanOptions{}, fs));
  std::string qualified;
  size_t dot = name.find('.');
  if (dot != std::string::npos) {
    // Fully qualified with the catalog: DuckDB reserves the catalog name `system`, so the lake's
    // system.* views live in <catalog>.system (see engine::QualifySchemaReferences).
    ASSIGN_OR_RETURN(engine::QueryResult db, conn->Query("SELECT current_database()"));
    std::string schema = engine::QuoteIdentifier(db.GetString(0, 0)) + "." + engine::QuoteIdentifier(name.substr(0, dot));
    RETURN_IF_ERROR(conn->Execute("CREATE SCHEMA IF NOT EXISTS " + schema));
    qualified = schema + "." + engine::QuoteIdentifier(name.substr(dot + 1));
  } else {
    qualified = engine::QuoteIdentifier(name);
  }
  return conn->Execute("CREATE OR REPLACE VIEW " + qualified + " AS " + sql);
}

Status RegisterLakeViews(engine::Connection* conn, const std::string& lake_dir, std::optional<int64_t> version,
                         FileSystem* fs) {
  return RegisterLakeViews(conn, lake_dir, version, TablePredicates{}, fs);
}

Status RegisterLakeViews(engine::Connection* conn, const std::string& lake_dir, std::optional<int64_t> version,
                         const TablePredicates& predicates, FileSystem* fs) {
  auto layers = fs->ListDir(lake_dir);
  if (!layers.ok()) {
    if (!fs->Exists(lake_dir)) return Status::OK();  // no lake yet: no tables to show
    return layers.status();
  }
  for (const FileInfo& layer : *layers) {
    if (!layer.is_dir || layer.name.empty() || layer.name[0] == '_' || layer.name[0] == '.') continue;
    std::string layer_dir = JoinPath(lake_dir, layer.name);
    auto tables = fs->ListDir(layer_dir);
    if (!tables.ok()) continue;
    for (const FileInfo& t : *tables) {
      if (!t.is_dir || t.name.empty() || t.name[0] == '_' || t.name[0] == '.') continue;
      std::string table_dir = JoinPath(layer_dir, t.name);
      if (!fs->Exists(JoinPath(table_dir, "_delta_log"))) continue;
      std::string view = layer.name + "." + t.name;
      auto pushed = predicates.find(view);
      Status st = pushed == predicates.end() ? AttachTable(conn, view, table_dir, version, fs)
                                             : AttachTable(conn, view, table_dir, version, pushed->second, fs);
      if (st.IsNotFound()) continue;  // no commit yet, or no such version of this table
      RETURN_IF_ERROR(st.WithContext("table " + layer.name + "." + t.name));
    }
  }
  return Status::OK();
}

namespace {

// Walks json_serialize_sql's AST. Counts base-table references per name and
// collects, per SELECT whose FROM is a single base table, the column-vs-constant
// conjuncts of its WHERE.
class PredicateCollector {
 public:
  void Walk(simdjson::dom::element node) {
    if (node.is_array()) {
      for (auto child : node.get_array()) Walk(child);
      return;
    }
    if (!node.is_object()) return;
    simdjson::dom::object obj = node.get_object();
    std::string_view type;
    if (!obj["type"].get(type)) {
      if (type == "BASE_TABLE") references_[TableName(obj)]++;
      if (type == "SELECT_NODE") CollectSelect(obj);
    }
    for (auto field : obj) Walk(field.value);
  }

  TablePredicates Result() const {
    TablePredicates out;
    for (const auto& [name, preds] : candidates_) {
      auto it = references_.find(name);
      if (it != references_.end() && it->second == 1 && !preds.empty()) out[name] = preds;
    }
    return out;
  }

 private:
  static std::string TableName(simdjson::dom::object table) {
    std::string_view schema, name;
    if (table["schema_name"].get(schema)) schema = "";
    if (table["table_name"].get(name)) name = "";
    return schema.empty() ? std::string(name) : std::string(schema) + "." + std::string(name);
  }

  void CollectSelect(simdjson::dom::object select) {
    simdjson::dom::object from;
    std::string_view from_type;
    if (select["from_table"].get(from) || from["type"].get(from_type) || from_type != "BASE_TABLE") return;
    simdjson::dom::element where;
    if (select["where_clause"].get(where) || !where.is_object()) return;
    std::string name = TableName(from);
    std::string_view alias, table;
    if (from["alias"].get(alias)) alias = "";
    if (from["table_name"].get(table)) table = "";
    std::vector<Predicate> preds;
    Conjuncts(where, alias, table, &preds);
    auto& slot = candidates_[name];
    slot.insert(slot.end(), preds.begin(), preds.end());
  }

  static void Conjuncts(simdjson::dom::element e, std::string_view alias, std::string_view table,
                        std::vector<Predicate>* out) {
    std::string_view type;
    if (e["type"].get(type)) return;
    if (type == "CONJUNCTION_AND") {
      simdjson::dom::array children;
      if (e["children"].get(children)) return;
      for (auto c : children) Conjuncts(c, alias, table, out);
      return;
    }
    static const std::map<std::string_view, std::pair<std::string, std::string>> kOps = {
        {"COMPARE_EQUAL", {"=", "="}},          {"COMPARE_NOTEQUAL", {"!=", "!="}},
        {"COMPARE_LESSTHAN", {"<", ">"}},       {"COMPARE_GREATERTHAN", {">", "<"}},
        {"COMPARE_LESSTHANOREQUALTO", {"<=", ">="}}, {"COMPARE_GREATERTHANOREQUALTO", {">=", "<="}}};
    auto op = kOps.find(type);
    if (op == kOps.end()) return;
    simdjson::dom::element left, right;
    if (e["left"].get(left) || e["right"].get(right)) return;
    std::string column, literal, literal_type;
    if (Column(left, alias, table, &column) && Constant(right, &literal, &literal_type)) {
      out->push_back({column, op->second.first, literal, literal_type});
    } else if (Column(right, alias, table, &column) && Constant(left, &literal, &literal_type)) {
      out->push_back({column, op->second.second, literal, literal_type});  // 5 < x  →  x > 5
    }
  }

  static bool Column(simdjson::dom::element e, std::string_view alias, std::string_view table, std::string* out) {
    std::string_view type;
    simdjson::dom::array names;
    if (e["type"].get(type) || type != "COLUMN_REF" || e["column_names"].get(names)) return false;
    std::vector<std::string_view> parts;
    for (auto n : names) {
      std::string_view part;
      if (n.get(part)) return false;
      parts.push_back(part);
    }
    if (parts.size() == 2 && (parts[0] == alias || (alias.empty() && parts[0] == table))) parts.erase(parts.begin());
    if (parts.size() != 1) return false;
    *out = std::string(parts[0]);
    return true;
  }

  static bool Constant(simdjson::dom::element e, std::string* out, std::string* literal_type) {
    std::string_view type;
    if (e["type"].get(type)) return false;
    if (type == "OPERATOR_CAST") {  // DATE '2024-05-01', '…'::TIMESTAMP
      simdjson::dom::element child;
      std::string_view cast_type;
      if (e["cast_type"]["id"].get(cast_type) || e["child"].get(child)) return false;
      std::string inner_type;
      if (!Constant(child, out, &inner_type) || !inner_type.empty()) return false;  // one cast at most
      *literal_type = std::string(cast_type);
      return true;
    }
    if (type != "VALUE_CONSTANT") return false;
    simdjson::dom::element value;
    bool is_null = true;
    if (e["value"].get(value) || value["is_null"].get(is_null) || is_null) return false;
    simdjson::dom::element v;
    if (value["value"].get(v)) return false;
    if (v.is_string()) {
      *out = std::string(v.get_string().value());
    } else if (v.is_int64()) {
      *out = std::to_string(v.get_int64().value());
    } else if (v.is_uint64()) {
      *out = std::to_string(v.get_uint64().value());
    } else if (v.is_double()) {
      *out = simdjson::to_string(v);
    } else if (v.is_bool()) {
      *out = v.get_bool().value() ? "true" : "false";
    } else {
      return false;
    }
    return true;
  }

  std::map<std::string, int> references_;
  std::map<std::string, std::vector<Predicate>> candidates_;
};

}  // namespace

TablePredicates PushdownPredicates(engine::Connection* conn, const std::string& sql) {
  auto r = conn->Query("SELECT json_serialize_sql(" + engine::QuoteLiteral(sql) + ")");
  if (!r.ok() || r->row_count() != 1 || r->IsNull(0, 0)) return {};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->GetString(0, 0)).get(doc)) return {};
  bool error = true;
  if (doc["error"].get(error) || error) return {};
  simdjson::dom::array statements;
  if (doc["statements"].get(statements) || statements.size() != 1) return {};
  PredicateCollector collector;
  collector.Walk(doc["statements"]);
  return collector.Result();
}

}  // namespace clicklake::delta
