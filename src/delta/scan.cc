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

// The file-system path of a data file.
std::string DataFilePath(const std::string& table_abs, const std::string& add_path) {
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
      if (partition_set.count(p.column)) {
        auto it = f.partition_values.find(p.column);
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
        auto mn = StatValue(stats, "minValues", p.column);
        auto mx = StatValue(stats, "maxValues", p.column);
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

Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot) {
  const Schema& schema = snapshot.schema();
  if (schema.fields.empty()) return Status::InvalidArgument("table " + table_path + " has no columns");
  std::string table_abs = AbsolutePath(table_path);
  std::set<std::string> partition_set(snapshot.partition_columns().begin(), snapshot.partition_columns().end());
  std::vector<std::string> types;
  for (const Field& f : schema.fields) {
    ASSIGN_OR_RETURN(std::string t, DuckDbType(f.type));
    types.push_back(t);
  }
  if (snapshot.files.empty()) {
    std::string sql = "SELECT ";
    for (size_t i = 0; i < schema.fields.size(); i++) {
      sql += (i ? ", " : "") + std::string("CAST(NULL AS ") + types[i] + ") AS " + engine::QuoteIdentifier(schema.fields[i].name);
    }
    return sql + " WHERE false";
  }
  // A typed empty row unioned by name with the files: columns missing from
  // older files (schema evolution) read as NULL.
  std::string empty = "SELECT ";
  for (size_t i = 0; i < schema.fields.size(); i++) {
    if (partition_set.count(schema.fields[i].name)) continue;
    empty += "CAST(NULL AS " + types[i] + ") AS " + engine::QuoteIdentifier(schema.fields[i].name) + ", ";
  }
  empty += "CAST(NULL AS VARCHAR) AS filename WHERE false";
  std::string files = "[";
  for (size_t i = 0; i < snapshot.files.size(); i++) {
    if (i) files += ", ";
    files += engine::QuoteLiteral(DataFilePath(table_abs, snapshot.files[i].path));
  }
  files += "]";
  std::string data = "(" + empty + " UNION ALL BY NAME SELECT * FROM read_parquet(" + files +
                     ", filename=true, union_by_name=true)) AS __cl_d";
  std::string select = "SELECT ";
  int pi = 0;
  std::map<std::string, std::string> partition_alias;
  for (const auto& p : snapshot.partition_columns()) partition_alias[p] = "__cl_p" + std::to_string(pi++);
  for (size_t i = 0; i < schema.fields.size(); i++) {
    const std::string& name = schema.fields[i].name;
    if (i) select += ", ";
    if (partition_set.count(name)) {
      select += "CAST(__cl_pv." + partition_alias[name] + " AS " + types[i] + ")";
    } else {
      select += "CAST(__cl_d." + engine::QuoteIdentifier(name) + " AS " + types[i] + ")";
    }
    select += " AS " + engine::QuoteIdentifier(name);
  }
  if (partition_set.empty()) return select + " FROM " + data;
  std::string values = "(VALUES ";
  for (size_t i = 0; i < snapshot.files.size(); i++) {
    const AddFile& f = snapshot.files[i];
    values += (i ? ", (" : "(") + engine::QuoteLiteral(DataFilePath(table_abs, f.path));
    for (const auto& p : snapshot.partition_columns()) {
      auto it = f.partition_values.find(p);
      values += ", ";
      values += (it != f.partition_values.end() && it->second) ? engine::QuoteLiteral(*it->second) : "NULL::VARCHAR";
    }
    values += ")";
  }
  values += ") AS __cl_pv(__cl_file";
  for (const auto& p : snapshot.partition_columns()) values += ", " + partition_alias[p];
  values += ")";
  return select + " FROM " + data + " JOIN " + values + " ON __cl_d.filename = __cl_pv.__cl_file";
}

Result<std::string> ScanSql(const std::string& table_path, const Snapshot& snapshot,
                            const std::vector<Predicate>& predicates) {
  static const std::set<std::string> kOps = {"=", "!=", "<>", "<", "<=", ">", ">="};
  std::string where;
  for (const Predicate& p : predicates) {
    const Field* f = snapshot.schema().Find(p.column);
    if (f == nullptr) return Status::InvalidArgument("no column " + p.column + " in " + table_path);
    if (!kOps.count(p.op)) return Status::InvalidArgument("unsupported operator " + p.op);
    ASSIGN_OR_RETURN(std::string t, DuckDbType(f->type));
    if (!where.empty()) where += " AND ";
    where += engine::QuoteIdentifier(p.column) + " " + p.op + " CAST(" + engine::QuoteLiteral(p.literal) + " AS " + t + ")";
  }
  Snapshot pruned = snapshot;
  pruned.files = PruneFiles(snapshot, predicates);
  ASSIGN_OR_RETURN(std::string sql, ScanSql(table_path, pruned));
  if (where.empty()) return sql;
  return "SELECT * FROM (" + sql + ") WHERE " + where;
}

Status AttachTable(engine::Connection* conn, const std::string& name, const std::string& path,
                   std::optional<int64_t> version, FileSystem* fs) {
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  ASSIGN_OR_RETURN(Snapshot snap, internal::LoadSnapshotImpl(path, fs, conn, version));
  ASSIGN_OR_RETURN(std::string sql, ScanSql(path, snap));
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
      Status st = AttachTable(conn, layer.name + "." + t.name, table_dir, version, fs);
      if (st.IsNotFound()) continue;  // no commit yet, or no such version of this table
      RETURN_IF_ERROR(st.WithContext("table " + layer.name + "." + t.name));
    }
  }
  return Status::OK();
}

}  // namespace clicklake::delta
