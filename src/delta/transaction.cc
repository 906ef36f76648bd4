// Transaction: data file writing with exact stats, optimistic commits, conflict checks.

#include <algorithm>
#include <cctype>
#include <set>

#include <simdjson.h>

#include <spdlog/spdlog.h>
#include "common/clock.h"
#include "delta/deletion_vector.h"
#include "delta/internal.h"

namespace clicklake::delta {
namespace {

// Appended to a cut string max so that it stays >= every value with that
// prefix (U+FFFF, as UTF-8).
constexpr std::string_view kTieBreaker = "\xEF\xBF\xBF";
constexpr size_t kStringPrefixChars = 32;

// The first `n` UTF-8 code points of `s`; *cut tells whether anything was dropped.
std::string Utf8Prefix(const std::string& s, size_t n, bool* cut) {
  size_t chars = 0, i = 0;
  while (i < s.size()) {
    if (chars == n) {
      *cut = true;
      return s.substr(0, i);
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    i += len;
    chars++;
  }
  *cut = false;
  return s;
}

std::string FormatMillis(int64_t micros) {
  int64_t ms = micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000);
  int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86400000 - 1) / 86400000);
  int64_t rem = ms - days * 86400000;
  std::string date = FormatDate(days);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%sT%02lld:%02lld:%02lld.%03lldZ", date.c_str(), static_cast<long long>(rem / 3600000),
                static_cast<long long>(rem / 60000 % 60), static_cast<long long>(rem / 1000 % 60),
                static_cast<long long>(rem % 1000));
  return buf;
}

// A leaf column of the stats: its path and Delta type.
struct Leaf {
  std::vector<std::string> path;
  std::string type;  // primitive name, or "" for array/map (nullCount only)
};

void CollectLeaves(const std::vector<std::string>& prefix, const std::string& type, std::vector<Leaf>* out) {
  if (!type.empty() && type[0] == '{') {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view kind;
    if (parser.parse(type.data(), type.size()).get(doc) || doc["type"].get_string().get(kind)) return;
    if (kind == "struct") {
      simdjson::dom::array fields;
      if (doc["fields"].get_array().get(fields)) return;
      for (simdjson::dom::element f : fields) {
        std::string_view name;
        simdjson::dom::element ft;
        if (f["name"].get_string().get(name) || f["type"].get(ft)) continue;
        std::string_view ts;
        std::string t = ft.is_string() && !ft.get_string().get(ts) ? std::string(ts) : simdjson::minify(ft);
        auto p = prefix;
        p.emplace_back(name);
        CollectLeaves(p, t, out);
      }
      return;
    }
    out->push_back({prefix, ""});
    return;
  }
  out->push_back({prefix, type});
}

bool HasMinMax(const std::string& t) {
  static const std::set<std::string> kTypes = {"string", "long",  "integer",   "short",        "byte", "float",
                                               "double", "date", "timestamp", "timestamp_ntz"};
  return kTypes.count(t) || t.rfind("decimal", 0) == 0;
}

std::string LeafExpr(const Leaf& leaf) {
  std::string e = engine::QuoteIdentifier(leaf.path[0]);
  for (size_t i = 1; i < leaf.path.size(); i++) e = "struct_extract(" + e + ", " + engine::QuoteLiteral(leaf.path[i]) + ")";
  return e;
}

// A JSON object tree for nested stats.
struct JsonTree {
  std::map<std::string, JsonTree> children;
  std::vector<std::string> order;
  std::optional<std::string> value;
  void Set(const std::vector<std::string>& path, size_t i, std::string v) {
    if (i == path.size()) {
      value = std::move(v);
      return;
    }
    if (!children.count(path[i])) order.push_back(path[i]);
    children[path[i]].Set(path, i + 1, std::move(v));
  }
  std::string ToJson() const {
    if (value) return *value;
    std::string out = "{";
    for (size_t i = 0; i < order.size(); i++) {
      if (i) out.push_back(',');
      AppendJsonString(order[i], &out);
      out.push_back(':');
      out += children.at(order[i]).ToJson();
    }
    return out + "}";
  }
};

// The aggregates Delta stats need over the leaves: count(*), then per leaf its
// null count and, for types with them, min and max.
std::string StatsAggregates(const std::vector<Leaf>& leaves) {
  std::string sql = "count(*)";
  for (const Leaf& l : leaves) {
    std::string e = LeafExpr(l);
    sql += ", count(*) - count(" + e + ")";
    if (HasMinMax(l.type)) {
      if (l.type == "timestamp" || l.type == "timestamp_ntz") {
        sql += ", epoch_us(min(" + e + ")), epoch_us(max(" + e + "))";
      } else if (l.type == "float" || l.type == "double") {
        sql += ", min(" + e + ") FILTER (WHERE NOT isnan(" + e + "))::VARCHAR, max(" + e + ") FILTER (WHERE NOT isnan(" +
               e + "))::VARCHAR";
      } else {
        sql += ", min(" + e + ")::VARCHAR, max(" + e + ")::VARCHAR";
      }
    }
  }
  return sql;
}

// One leaf's stats in one file: its null count, and min/max as text (numbers
// and dates as DuckDB casts them to VARCHAR, timestamps as epoch
// microseconds, strings whole); no min/max when every value is NULL (or NaN).
struct LeafStats {
  bool known = false;
  int64_t null_count = 0;
  std::optional<std::string> min, max;
};

// Delta stats of data files: the JSON, its numRecords, and the non-nullable
// columns holding NULLs.
struct FileStats {
  std::string json;
  int64_t num_records = 0;
  std::vector<std::string> non_null_violations;
};

// The stats JSON of a file from its leaves' stats (all known).
FileStats StatsJson(int64_t num_records, const std::vector<Leaf>& leaves, const std::vector<LeafStats>& stats,
                    const Schema& schema) {
  FileStats out;
  out.num_records = num_records;
  JsonTree mins, maxs, nulls;
  for (size_t i = 0; i < leaves.size(); i++) {
    const Leaf& l = leaves[i];
    const LeafStats& ls = stats[i];
    nulls.Set(l.path, 0, std::to_string(ls.null_count));
    if (ls.null_count > 0 && l.path.size() == 1) {
      const Field* f = schema.Find(l.path[0]);
      if (f && !f->nullable) out.non_null_violations.push_back(l.path[0]);
    }
    if (!HasMinMax(l.type) || !ls.min || !ls.max) continue;
    const std::string& mn = *ls.min;
    const std::string& mx = *ls.max;
    std::string jmin, jmax;
    if (l.type == "string") {
      bool cut = false;
      jmin = JsonString(Utf8Prefix(mn, kStringPrefixChars, &cut));
      std::string p = Utf8Prefix(mx, kStringPrefixChars, &cut);
      if (cut) p += kTieBreaker;
      jmax = JsonString(p);
    } else if (l.type == "timestamp" || l.type == "timestamp_ntz") {
      jmin = JsonString(FormatMillis(std::stoll(mn)));
      jmax = JsonString(FormatMillis(std::stoll(mx)));
    } else if (l.type == "date") {
      jmin = JsonString(mn);
      jmax = JsonString(mx);
    } else {
      auto finite = [](const std::string& v) { return v.find("inf") == std::string::npos && v.find("nan") == std::string::npos; };
      if (!finite(mn) || !finite(mx)) continue;
      jmin = mn;
      jmax = mx;
    }
    mins.Set(l.path, 0, jmin);
    maxs.Set(l.path, 0, jmax);
  }
  out.json = "{\"numRecords\":" + std::to_string(num_records) + ",\"minValues\":" + mins.ToJson() +
             ",\"maxValues\":" + maxs.ToJson() + ",\"nullCount\":" + nulls.ToJson() + "}";
  return out;
}

// Reads back the files' stats for the leaves `which` (indexes into `leaves`),
// in one parallel pass over all of them that reads only those columns: row
// counts into `rows`, leaf stats into `stats[file][leaf]`.
Status ReadLeafStats(engine::Connection* conn, const std::vector<std::string>& files, const std::vector<Leaf>& leaves,
                     const std::vector<size_t>& which, std::vector<int64_t>* rows,
                     std::vector<std::vector<LeafStats>>* stats) {
  std::string list;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < files.size(); i++) {
    list += (i ? ", " : "") + engine::QuoteLiteral(files[i]);
    index[files[i]] = i;
  }
  std::vector<Leaf> subset;
  for (size_t w : which) subset.push_back(leaves[w]);
  ASSIGN_OR_RETURN(engine::QueryResult r,
                   conn->Query("SELECT filename, " + StatsAggregates(subset) + " FROM read_parquet([" + list +
                               "], filename = true) GROUP BY filename"));
  std::vector<bool> seen(files.size(), false);
  for (size_t row = 0; row < r.row_count(); row++) {
    auto it = index.find(r.GetString(row, 0));
    if (it == index.end()) return Status::Internal("stats of an unexpected file " + r.GetString(row, 0));
    seen[it->second] = true;
    size_t col = 1;
    (*rows)[it->second] = r.GetInt64(row, col++);
    for (size_t w : which) {
      LeafStats& ls = (*stats)[it->second][w];
      ls.known = true;
      ls.null_count = r.GetInt64(row, col++);
      if (!HasMinMax(leaves[w].type)) continue;
      ls.min = r.Cell(row, col++);
      ls.max = r.Cell(row, col++);
    }
  }
  // A file without rows has no group: its stats are those of no rows.
  for (size_t i = 0; i < files.size(); i++) {
    if (!seen[i]) return Status::Internal("no stats for " + files[i] + " (an empty data file)");
  }
  return Status::OK();
}

// Delta stats of data files just written, read back from them (exactly what
// readers will see), in one parallel pass over all of them.
Result<std::vector<FileStats>> ComputeFileStats(engine::Connection* conn, const std::vector<std::string>& files,
                                                const std::vector<Leaf>& leaves, const Schema& schema) {
  std::vector<size_t> all(leaves.size());
  for (size_t i = 0; i < all.size(); i++) all[i] = i;
  std::vector<int64_t> rows(files.size(), 0);
  std::vector<std::vector<LeafStats>> stats(files.size(), std::vector<LeafStats>(leaves.size()));
  RETURN_IF_ERROR(ReadLeafStats(conn, files, leaves, all, &rows, &stats));
  std::vector<FileStats> out;
  for (size_t i = 0; i < files.size(); i++) out.push_back(StatsJson(rows[i], leaves, stats[i], schema));
  return out;
}

// A top-level leaf's stats from what the Parquet writer recorded (COPY …
// RETURN_STATS), in ComputeFileStats' terms; unknown when the writer kept
// none that give the exact answer (nested and list/map leaves, a min/max
// missing while non-NULL values exist, a timestamp it renders unusually).
LeafStats LeafStatsFromWriter(const Leaf& leaf, const engine::WrittenParquetFile& file) {
  LeafStats ls;
  if (leaf.path.size() != 1 || leaf.type.empty()) return ls;
  std::string key = "\"";
  for (char c : leaf.path[0]) key += c == '"' ? std::string("\"\"") : std::string(1, c);
  key += "\"";
  auto col = file.column_stats.find(key);
  if (col == file.column_stats.end()) return ls;
  const auto& m = col->second;
  auto nulls = m.find("null_count");
  if (nulls == m.end()) return ls;
  ls.null_count = std::strtoll(nulls->second.c_str(), nullptr, 10);
  if (!HasMinMax(leaf.type) || ls.null_count >= file.rows) {
    ls.known = true;  // no min/max: not kept, or no non-NULL value
    return ls;
  }
  auto mn = m.find("min"), mx = m.find("max");
  if (mn == m.end() || mx == m.end()) return ls;  // e.g. only NaN, or strings it could not cut
  if (leaf.type == "timestamp" || leaf.type == "timestamp_ntz") {
    int64_t lo = 0, hi = 0;
    if (!ParseTimestampMicros(mn->second, &lo) || !ParseTimestampMicros(mx->second, &hi)) return ls;
    ls.min = std::to_string(lo);
    ls.max = std::to_string(hi);
  } else {
    ls.min = mn->second;
    ls.max = mx->second;
  }
  ls.known = true;
  return ls;
}

// Delta stats of data files from what the Parquet writer recorded while
// writing them, equal to ComputeFileStats' re-read: only leaves whose writer
// stats cannot give the exact answer are read back (their columns alone).
// `paths` are the files' current paths (the writer's may be a staging path).
Result<std::vector<FileStats>> FileStatsFromWriter(engine::Connection* conn,
                                                   const std::vector<engine::WrittenParquetFile>& written,
                                                   const std::vector<std::string>& paths,
                                                   const std::vector<Leaf>& leaves, const Schema& schema) {
  std::vector<int64_t> rows(written.size(), 0);
  std::vector<std::vector<LeafStats>> stats(written.size());
  std::set<size_t> unknown;
  for (size_t f = 0; f < written.size(); f++) {
    rows[f] = written[f].rows;
    for (const Leaf& l : leaves) {
      stats[f].push_back(LeafStatsFromWriter(l, written[f]));
      if (!stats[f].back().known) unknown.insert(stats[f].size() - 1);
    }
  }
  spdlog::debug("delta: stats of {} files from the Parquet writer; {} of {} leaves read back", written.size(),
                unknown.size(), leaves.size());
  if (!unknown.empty() && !written.empty()) {
    std::vector<int64_t> reread_rows(written.size(), 0);
    RETURN_IF_ERROR(
        ReadLeafStats(conn, paths, leaves, std::vector<size_t>(unknown.begin(), unknown.end()), &reread_rows, &stats));
    for (size_t f = 0; f < written.size(); f++) {
      if (reread_rows[f] != rows[f]) {
        return Status::Internal("the writer counted " + std::to_string(rows[f]) + " rows in " + paths[f] + " but it has " +
                                std::to_string(reread_rows[f]));
      }
    }
  }
  std::vector<FileStats> out;
  for (size_t f = 0; f < written.size(); f++) out.push_back(StatsJson(rows[f], leaves, stats[f], schema));
  return out;
}

// OK when the files' stats show `rows` rows in all and no NULL in a
// non-nullable column.
Status CheckFileStats(const std::vector<FileStats>& stats, int64_t rows, const std::string& table_path) {
  int64_t counted = 0;
  for (const FileStats& f : stats) {
    if (!f.non_null_violations.empty()) {
      return Status::InvalidArgument("NULL values in non-nullable column " + f.non_null_violations[0] + " of " +
                                     table_path);
    }
    counted += f.num_records;
  }
  if (counted != rows) {
    return Status::Internal("wrote " + std::to_string(rows) + " rows but counted " + std::to_string(counted));
  }
  return Status::OK();
}

// The SQL expression giving a partition column's value as Delta's partition-value text.
std::string PartitionValueExpr(const Field& f, const std::string& duck_type) {
  std::string c = engine::QuoteIdentifier(f.name);
  if (f.type == "timestamp") return "CAST(CAST(CAST(" + c + " AS TIMESTAMPTZ) AS TIMESTAMP) AS VARCHAR)";
  return "CAST(CAST(" + c + " AS " + duck_type + ") AS VARCHAR)";
}

// Whether `query` is `SELECT * FROM <name>`: the rows of a table, the same each
// time they are read.
bool IsTableScan(std::string_view query) {
  constexpr std::string_view kPrefix = "SELECT * FROM ";
  if (query.substr(0, kPrefix.size()) != kPrefix || query.size() == kPrefix.size()) return false;
  std::string_view name = query.substr(kPrefix.size());
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Drops a temp table when it goes out of scope.
struct TempTable {
  TempTable(engine::Connection* c, std::string n) : conn(c), name(std::move(n)) {}
  ~TempTable() { conn->Execute("DROP TABLE IF EXISTS " + name).IgnoreError(); }
  TempTable(const TempTable&) = delete;
  TempTable& operator=(const TempTable&) = delete;
  engine::Connection* conn;
  std::string name;
};

// What a write of a query's rows to a table needs: the data columns (schema
// order, typed as the schema says) and the leaves that get stats.
struct WritePlan {
  std::string select;
  std::vector<Leaf> leaves;
  std::set<std::string> present;  // the query's columns
};

// The leaves that get stats: the first delta.dataSkippingNumIndexedCols (32)
// leaf columns, partition columns excluded.
std::vector<Leaf> StatsLeaves(const Metadata& md) {
  std::set<std::string> partition_set(md.partition_columns.begin(), md.partition_columns.end());
  int64_t max_indexed = 32;
  auto it = md.configuration.find("delta.dataSkippingNumIndexedCols");
  if (it != md.configuration.end()) max_indexed = std::strtoll(it->second.c_str(), nullptr, 10);
  std::vector<Leaf> leaves;
  for (const Field& f : md.schema.fields) {
    if (!partition_set.count(f.name)) CollectLeaves({f.name}, f.type, &leaves);
  }
  if (max_indexed >= 0 && static_cast<int64_t>(leaves.size()) > max_indexed) leaves.resize(max_indexed);
  return leaves;
}

Result<WritePlan> PlanWrite(engine::Connection* conn, const std::string& query, const Metadata& md,
                            const std::string& table_path, bool partition_values_known) {
  const Schema& schema = md.schema;
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  WritePlan plan;
  ASSIGN_OR_RETURN(engine::QueryResult desc, conn->Query("DESCRIBE SELECT * FROM (" + query + ")"));
  for (size_t r = 0; r < desc.row_count(); r++) {
    const std::string& name = desc.GetString(r, 0);
    if (schema.Find(name) == nullptr) {
      return Status::InvalidArgument("column " + name + " is not in the schema of " + table_path +
                                     " (evolve the schema first)");
    }
    plan.present.insert(name);
  }
  std::set<std::string> partition_set(md.partition_columns.begin(), md.partition_columns.end());
  if (!partition_values_known) {
    for (const auto& p : md.partition_columns) {
      if (!plan.present.count(p)) return Status::InvalidArgument("the rows to write lack partition column " + p);
    }
  }
  for (const Field& f : schema.fields) {
    if (partition_set.count(f.name)) continue;
    ASSIGN_OR_RETURN(std::string t, DuckDbType(f.type));
    if (!plan.select.empty()) plan.select += ", ";
    if (plan.present.count(f.name)) {
      plan.select += "CAST(" + engine::QuoteIdentifier(f.name) + " AS " + t + ") AS " + engine::QuoteIdentifier(f.name);
    } else {
      if (!f.nullable) return Status::InvalidArgument("non-nullable column " + f.name + " missing from the rows to write");
      plan.select += "CAST(NULL AS " + t + ") AS " + engine::QuoteIdentifier(f.name);
    }
  }
  plan.leaves = StatsLeaves(md);
  if (plan.select.empty()) return Status::InvalidArgument("table " + table_path + " has only partition columns");
  return plan;
}

// The stats of a file whose rows a DV now partly deletes: the same numbers
// (numRecords stays physical) with "tightBounds":false, since min/max may
// describe deleted rows.
std::string LooseBoundsStats(const std::string& stats, int64_t num_records) {
  if (stats.empty() || stats.front() != '{' || stats.back() != '}') {
    return "{\"numRecords\":" + std::to_string(num_records) + ",\"tightBounds\":false}";
  }
  std::string out = stats;
  if (size_t pos = out.find("\"tightBounds\":true"); pos != std::string::npos) {
    out.replace(pos, 18, "\"tightBounds\":false");
  } else if (out.find("\"tightBounds\":false") == std::string::npos) {
    out.insert(out.size() - 1, out.size() > 2 ? ",\"tightBounds\":false" : "\"tightBounds\":false");
  }
  return out;
}

// Sorted, distinct positions from "1,5,9".
std::vector<uint64_t> ParsePositions(const std::string& text) {
  std::vector<uint64_t> out;
  const char* p = text.c_str();
  while (*p) {
    char* end = nullptr;
    out.push_back(std::strtoull(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

// The key of a remove in conflict checks: the file and which version of it
// (its DV) the remove ends.
std::string RemoveKey(const std::string& path, const std::optional<DeletionVector>& dv) {
  std::string key = DecodePath(path);
  key.push_back('\0');
  if (dv) {
    key += dv->storage_type + dv->path_or_inline_dv;
    if (dv->offset) key += "@" + std::to_string(*dv->offset);
  }
  return key;
}

}  // namespace

namespace internal {

bool DeletionVectorsEnabled(const Protocol& protocol, const Metadata& metadata) {
  if (!protocol.writer_features) return false;
  const auto& features = *protocol.writer_features;
  if (std::find(features.begin(), features.end(), "deletionVectors") == features.end()) return false;
  auto it = metadata.configuration.find("delta.enableDeletionVectors");
  return it != metadata.configuration.end() && it->second == "true";
}

Protocol NewTableProtocol(const std::map<std::string, std::string>& configuration) {
  Protocol p;
  auto it = configuration.find("delta.enableDeletionVectors");
  if (it != configuration.end() && it->second == "false") return p;  // reader 1 / writer 2
  p.min_reader_version = 3;
  p.min_writer_version = 7;
  p.reader_features = std::vector<std::string>{"deletionVectors"};
  p.writer_features = std::vector<std::string>{"deletionVectors"};
  return p;
}

Result<std::string> ReadBackStats(engine::Connection* conn, const std::string& file, const Metadata& metadata) {
  RETURN_IF_ERROR(conn->Execute("SET TimeZone='UTC'"));
  ASSIGN_OR_RETURN(std::vector<FileStats> stats, ComputeFileStats(conn, {file}, StatsLeaves(metadata), metadata.schema));
  return stats[0].json;
}

std::optional<int64_t> StatsNumRecords(const std::string& stats) {
  size_t pos = stats.find("\"numRecords\":");
  if (pos == std::string::npos) return std::nullopt;
  return std::strtoll(stats.c_str() + pos + 13, nullptr, 10);
}

}  // namespace internal

// What DeleteRows did to one file of the read snapshot so far.
struct Transaction::RowDeletion {
  AddFile original;                // as in the read snapshot
  int64_t num_records = 0;         // physical rows
  int64_t old_deleted = 0;         // rows its DV deleted before this transaction
  std::vector<uint64_t> deleted;   // sorted: the old DV's rows and this transaction's
  bool with_dv = false;            // the new state is a DV (else copy-on-write)
  std::vector<std::string> staged_adds;  // add.paths this transaction staged for it
};

Transaction::Transaction(Table* table, Snapshot snapshot, Status read_status)
    : table_(table), read_snapshot_(std::move(snapshot)), read_status_(std::move(read_status)) {}
Transaction::~Transaction() = default;

void Transaction::AddFiles(std::vector<AddFile> files) {
  for (auto& f : files) adds_.push_back(std::move(f));
}

void Transaction::RemoveFile(const AddFile& file) {
  delta::RemoveFile r;
  r.path = file.path;
  r.deletion_timestamp = table_->clock()->NowMillis();
  r.data_change = data_change_;
  r.extended_file_metadata = true;
  r.partition_values = file.partition_values;
  r.size = file.size;
  r.deletion_vector = file.deletion_vector;
  removes_.push_back(std::move(r));
  ReadPartition(file.partition_values);
}

void Transaction::ReadPartition(const std::map<std::string, std::optional<std::string>>& values) {
  read_partitions_.push_back(internal::PartitionKey(values));
}

void Transaction::SetAppTransaction(const std::string& app_id, int64_t version) { txns_[app_id] = version; }

void Transaction::SetOperation(const std::string& op, std::map<std::string, std::string> params) {
  operation_ = op;
  operation_params_ = std::move(params);
}

void Transaction::SetOperationMetrics(std::map<std::string, std::string> metrics) {
  operation_metrics_ = std::move(metrics);
}

void Transaction::SetCommitInfoField(const std::string& key, const std::string& json_value) {
  for (auto& [k, v] : extra_commit_info_) {
    if (k == key) {
      v = json_value;
      return;
    }
  }
  extra_commit_info_.emplace_back(key, json_value);
}

void Transaction::UpdateMetadata(Metadata metadata) { new_metadata_ = std::move(metadata); }

Result<std::vector<AddFile>> Transaction::WriteFiles(engine::Connection* conn, const std::string& query) {
  return WriteFilesImpl(conn, query, std::nullopt);
}

Result<std::vector<AddFile>> Transaction::WriteFiles(
    engine::Connection* conn, const std::string& query,
    const std::map<std::string, std::optional<std::string>>& partition_values) {
  return WriteFilesImpl(conn, query, partition_values);
}

Result<std::vector<AddFile>> Transaction::WriteFilesImpl(
    engine::Connection* conn, const std::string& query,
    const std::optional<std::map<std::string, std::optional<std::string>>>& known_partition) {
  RETURN_IF_ERROR(read_status_);
  const Metadata& md = new_metadata_ ? *new_metadata_ : read_snapshot_.metadata;
  RETURN_IF_ERROR(internal::CheckWritable(read_snapshot_.protocol, md));
  const Schema& schema = md.schema;
  if (known_partition) {
    for (const auto& p : md.partition_columns) {
      if (!known_partition->count(p)) return Status::InvalidArgument("no value given for partition column " + p);
    }
  }
  ASSIGN_OR_RETURN(WritePlan plan, PlanWrite(conn, query, md, table_->path(), known_partition.has_value()));
  const std::string& select = plan.select;
  const std::vector<Leaf>& leaves = plan.leaves;

  // Where the rows come from: the query itself when there is a single known
  // partition (one pass), else a temp table split by distinct partition values.
  std::string source;
  std::optional<TempTable> temp;
  std::vector<std::vector<std::optional<std::string>>> partitions;
  std::vector<std::string> pexprs;
  if (known_partition || md.partition_columns.empty()) {
    source = "(" + query + ")";
    std::vector<std::optional<std::string>> values;
    for (const auto& p : md.partition_columns) values.push_back(known_partition->at(p));
    partitions.push_back(values);
  } else {
    // When the rows are a table's (`SELECT * FROM t`: reading it twice gives
    // the same rows), the distinct partition values come first, from the
    // partition columns alone, and rows of one partition (the usual case)
    // are written straight from the table. Otherwise, and for several
    // partitions, the rows are split from a temp table of the query's result.
    const bool table_scan = IsTableScan(query);
    std::string sql = "SELECT DISTINCT ";
    for (size_t i = 0; i < md.partition_columns.size(); i++) {
      const Field* f = schema.Find(md.partition_columns[i]);
      ASSIGN_OR_RETURN(std::string t, DuckDbType(f->type));
      pexprs.push_back(PartitionValueExpr(*f, t));
      sql += (i ? ", " : "") + pexprs.back();
    }
    auto read_partitions = [&](const std::string& from) -> Status {
      ASSIGN_OR_RETURN(engine::QueryResult r, conn->Query(sql + " FROM " + from));
      partitions.clear();
      for (size_t row = 0; row < r.row_count(); row++) {
        std::vector<std::optional<std::string>> values;
        for (size_t c = 0; c < r.column_count(); c++) values.push_back(r.Cell(row, c));
        partitions.push_back(std::move(values));
      }
      return Status::OK();
    };
    if (table_scan) RETURN_IF_ERROR(read_partitions("(" + query + ")"));
    if (table_scan && partitions.size() <= 1) {
      source = "(" + query + ")";
      pexprs.clear();  // no filter: every row is of that partition
    } else {
      std::string uuid = internal::NewUuid();
      std::string name = "__clicklake_delta_write_";
      for (char c : uuid) name.push_back(c == '-' ? '_' : c);
      RETURN_IF_ERROR(conn->Execute("CREATE TEMP TABLE " + name + " AS " + query));
      temp.emplace(conn, name);
      source = name;
      RETURN_IF_ERROR(read_partitions(source));
    }
  }

  std::vector<AddFile> written;
  auto cleanup = [&](const std::string& extra) {
    if (!extra.empty()) table_->fs()->DeleteFile(extra).IgnoreError();
    for (const auto& a : written) table_->fs()->DeleteFile(JoinPath(table_->path(), DecodePath(a.path))).IgnoreError();
  };
  for (const auto& values : partitions) {
    std::string dir, where;
    AddFile add;
    for (size_t i = 0; i < values.size(); i++) {
      const std::string& col = md.partition_columns[i];
      dir += HiveEscape(col) + "=" + (values[i] ? HiveEscape(*values[i]) : "__HIVE_DEFAULT_PARTITION__") + "/";
      if (!pexprs.empty()) {
        if (!where.empty()) where += " AND ";
        where += values[i] ? "(" + pexprs[i] + ") = " + engine::QuoteLiteral(*values[i]) : "(" + pexprs[i] + ") IS NULL";
      }
      add.partition_values[col] = values[i];
      if (!values[i]) {
        const Field* f = schema.Find(col);
        if (f && !f->nullable) {
          cleanup("");
          return Status::InvalidArgument("NULL in non-nullable partition column " + col);
        }
      }
    }
    std::string rel = dir + "part-00000-" + internal::NewUuid() + ".c000.zstd.parquet";
    std::string abs = JoinPath(table_->path(), rel);
    if (!dir.empty()) RETURN_IF_ERROR(table_->fs()->CreateDirs(DirName(abs)));
    int64_t t0 = table_->clock()->MonotonicMicros();
    auto files = conn->WriteParquetFiles("SELECT " + select + " FROM " + source + (where.empty() ? "" : " WHERE " + where),
                                         abs);
    int64_t t1 = table_->clock()->MonotonicMicros();
    if (!files.ok()) {
      cleanup(abs);
      return files.status();
    }
    const int64_t rows = files->size() == 1 ? (*files)[0].rows : 0;
    if (rows == 0) {  // an empty result adds no file
      table_->fs()->DeleteFile(abs).IgnoreError();
      continue;
    }
    // Stats as the writer recorded them (exactly what a re-read would give).
    auto stats = FileStatsFromWriter(conn, *files, {abs}, leaves, schema);
    Status checked = stats.ok() ? CheckFileStats(*stats, rows, table_->path()) : stats.status();
    if (!checked.ok()) {
      cleanup(abs);
      return checked;
    }
    add.stats = std::move((*stats)[0].json);
    int64_t t2 = table_->clock()->MonotonicMicros();
    RETURN_IF_ERROR(internal::SyncExternalFile(table_->fs(), abs));
    spdlog::debug("delta: wrote {} rows to {}: parquet {:.0f} ms, stats {:.0f} ms, sync {:.0f} ms", rows, rel,
                  (t1 - t0) / 1000.0, (t2 - t1) / 1000.0, (table_->clock()->MonotonicMicros() - t2) / 1000.0);
    ASSIGN_OR_RETURN(FileInfo info, table_->fs()->Stat(abs));
    add.path = UriEncodePath(rel);
    add.size = static_cast<int64_t>(info.size);
    add.modification_time = info.mtime_ms;
    add.data_change = data_change_;
    written.push_back(add);
  }
  // Make the new directory entries durable before any commit refers to them.
  std::set<std::string> dirs;
  for (const auto& a : written) dirs.insert(DirName(JoinPath(table_->path(), DecodePath(a.path))));
  for (const auto& d : dirs) RETURN_IF_ERROR(table_->fs()->SyncDir(d));
  for (const auto& a : written) adds_.push_back(a);
  return written;
}

Result<std::vector<AddFile>> Transaction::WriteFileGroups(
    engine::Connection* conn, const std::string& query, const std::string& group_expr,
    const std::vector<std::map<std::string, std::optional<std::string>>>& groups) {
  RETURN_IF_ERROR(read_status_);
  const Metadata& md = new_metadata_ ? *new_metadata_ : read_snapshot_.metadata;
  RETURN_IF_ERROR(internal::CheckWritable(read_snapshot_.protocol, md));
  const Schema& schema = md.schema;
  std::vector<std::string> dirs;  // each group's partition directory ("" unpartitioned)
  for (const auto& values : groups) {
    std::string dir;
    for (const auto& col : md.partition_columns) {
      auto v = values.find(col);
      if (v == values.end()) return Status::InvalidArgument("no value given for partition column " + col);
      if (!v->second) {
        const Field* f = schema.Find(col);
        if (f && !f->nullable) return Status::InvalidArgument("NULL in non-nullable partition column " + col);
      }
      dir += HiveEscape(col) + "=" + (v->second ? HiveEscape(*v->second) : "__HIVE_DEFAULT_PARTITION__") + "/";
    }
    dirs.push_back(dir);
  }
  ASSIGN_OR_RETURN(WritePlan plan, PlanWrite(conn, query, md, table_->path(), true));
  if (groups.empty()) return std::vector<AddFile>{};

  // One COPY writes every group's file (in parallel) under a staging
  // directory, one subdirectory per group; the files then move into place.
  // The staging directory is not hidden: VACUUM removes what a crash leaves.
  FileSystem* fs = table_->fs();
  const std::string staging = JoinPath(table_->path(), "clicklake-staging-" + internal::NewUuid());
  const std::string kGroupColumn = "__clicklake_file";
  std::vector<std::string> moved;
  auto fail = [&](Status s) {
    fs->DeleteTree(staging).IgnoreError();
    for (const auto& m : moved) fs->DeleteFile(m).IgnoreError();
    return s;
  };
  const int64_t t0 = table_->clock()->MonotonicMicros();
  auto copied = conn->WriteParquetFiles("SELECT " + plan.select + ", CAST(" + group_expr + " AS INTEGER) AS " +
                                            kGroupColumn + " FROM (" + query + ")",
                                        staging, 122880, kGroupColumn);
  if (!copied.ok()) return fail(copied.status());
  const int64_t t1 = table_->clock()->MonotonicMicros();
  // The writer's record of each file, by "<group dir>/<file name>".
  std::map<std::string, const engine::WrittenParquetFile*> by_name;
  int64_t rows = 0;
  for (const auto& w : *copied) {
    const std::string dir = DirName(w.path);
    by_name[BaseName(dir) + "/" + BaseName(w.path)] = &w;
    rows += w.rows;
  }
  std::vector<engine::WrittenParquetFile> records;  // in the order of `moved`
  std::vector<AddFile> written;
  auto entries = fs->ListDir(staging);
  if (!entries.ok()) return fail(entries.status());
  const std::string prefix = kGroupColumn + "=";
  for (const auto& e : *entries) {
    char* end = nullptr;
    const long group = e.name.rfind(prefix, 0) == 0 ? std::strtol(e.name.c_str() + prefix.size(), &end, 10) : -1;
    if (!e.is_dir || end == nullptr || *end != '\0' || group < 0 || group >= static_cast<long>(groups.size())) {
      return fail(Status::InvalidArgument("rows outside every group of the write (" + e.name + "): " + group_expr));
    }
    auto files = fs->ListDir(JoinPath(staging, e.name));
    if (!files.ok()) return fail(files.status());
    for (const auto& f : *files) {
      auto record = by_name.find(e.name + "/" + f.name);
      if (record == by_name.end()) return fail(Status::Internal("the writer did not report " + e.name + "/" + f.name));
      records.push_back(*record->second);
      std::string rel = dirs[group] + "part-00000-" + internal::NewUuid() + ".c000.zstd.parquet";
      std::string abs = JoinPath(table_->path(), rel);
      Status s = dirs[group].empty() ? Status::OK() : fs->CreateDirs(DirName(abs));
      if (s.ok()) s = fs->Rename(JoinPath(JoinPath(staging, e.name), f.name), abs);
      if (!s.ok()) return fail(s);
      moved.push_back(abs);
      AddFile add;
      for (const auto& col : md.partition_columns) add.partition_values[col] = groups[group].at(col);
      add.path = UriEncodePath(rel);
      add.size = static_cast<int64_t>(f.size);
      add.data_change = data_change_;
      written.push_back(std::move(add));
    }
  }
  fs->DeleteTree(staging).IgnoreError();
  // Stats as the writer recorded them (exactly what a re-read would give).
  if (!moved.empty()) {
    auto stats = FileStatsFromWriter(conn, records, moved, plan.leaves, schema);
    Status checked = stats.ok() ? CheckFileStats(*stats, rows, table_->path()) : stats.status();
    if (!checked.ok()) return fail(checked);
    for (size_t i = 0; i < written.size(); i++) written[i].stats = std::move((*stats)[i].json);
  } else if (rows != 0) {
    return fail(Status::Internal("wrote " + std::to_string(rows) + " rows but found no file"));
  }
  const int64_t t2 = table_->clock()->MonotonicMicros();
  std::set<std::string> sync_dirs;
  for (size_t i = 0; i < moved.size(); i++) {
    Status s = internal::SyncExternalFile(fs, moved[i]);
    auto info = s.ok() ? fs->Stat(moved[i]) : Result<FileInfo>(s);
    if (!info.ok()) return fail(info.status());
    written[i].modification_time = info->mtime_ms;
    sync_dirs.insert(DirName(moved[i]));
  }
  for (const auto& d : sync_dirs) {
    if (Status s = fs->SyncDir(d); !s.ok()) return fail(s);
  }
  spdlog::debug("delta: wrote {} rows in {} files of {} groups: parquet {:.0f} ms, stats {:.0f} ms, sync {:.0f} ms",
                rows, written.size(), groups.size(), (t1 - t0) / 1000.0, (t2 - t1) / 1000.0,
                (table_->clock()->MonotonicMicros() - t2) / 1000.0);
  for (const auto& a : written) adds_.push_back(a);
  return written;
}

Result<int64_t> Transaction::DeleteRows(engine::Connection* conn, const std::string& rows_query) {
  RETURN_IF_ERROR(read_status_);
  if (committed_) return Status::InvalidArgument("transaction already committed");
  const Metadata& md = new_metadata_ ? *new_metadata_ : read_snapshot_.metadata;
  RETURN_IF_ERROR(internal::CheckWritable(read_snapshot_.protocol, md));
  const bool with_dv = internal::DeletionVectorsEnabled(read_snapshot_.protocol, md);
  FileSystem* fs = table_->fs();

  // The rows per file, deduplicated and sorted by the engine.
  ASSIGN_OR_RETURN(engine::QueryResult grouped,
                   conn->Query("SELECT f, count(*) FILTER (WHERE r IS NULL), min(r), max(r), "
                               "string_agg(r::VARCHAR, ',' ORDER BY r) FROM (SELECT DISTINCT CAST(c0 AS VARCHAR) AS f, "
                               "CAST(c1 AS BIGINT) AS r FROM (" + rows_query + ") AS q(c0, c1)) GROUP BY f ORDER BY f"));
  std::map<std::string, const AddFile*> live;
  if (grouped.row_count() > 0) {
    for (const auto& f : read_snapshot_.files) {
      live[f.path] = &f;
      live[DecodePath(f.path)] = &f;
    }
  }
  std::set<std::string> removed_otherwise;
  for (const auto& r : removes_) {
    std::string key = DecodePath(r.path);
    if (!row_deletions_.count(key)) removed_otherwise.insert(key);
  }
  // Validate everything first: an error leaves the transaction as it was.
  struct Change {
    std::shared_ptr<RowDeletion> state;
    bool is_new = false;
    std::vector<uint64_t> deleted;  // the new union
  };
  std::vector<Change> changes;
  std::map<std::string, size_t> change_of;  // decoded path -> index in changes
  for (size_t row = 0; row < grouped.row_count(); row++) {
    if (grouped.IsNull(row, 0)) return Status::InvalidArgument("DeleteRows: a row has no file path");
    const std::string& path = grouped.GetString(row, 0);
    if (grouped.GetInt64(row, 1) > 0) return Status::InvalidArgument("DeleteRows: a row of " + path + " has no position");
    auto it = live.find(path);
    if (it == live.end()) {
      return Status::InvalidArgument("DeleteRows: " + path + " is not a live file of " + table_->path() + " at version " +
                                     std::to_string(read_snapshot_.version));
    }
    const AddFile& file = *it->second;
    const std::string key = DecodePath(file.path);
    if (removed_otherwise.count(key)) {
      return Status::InvalidArgument("DeleteRows: " + path + " is already removed by this transaction");
    }
    Change change;
    auto existing = row_deletions_.find(key);
    if (existing != row_deletions_.end()) {
      change.state = existing->second;
    } else {
      change.state = std::make_shared<RowDeletion>();
      change.is_new = true;
      change.state->original = file;
      std::optional<int64_t> n = internal::StatsNumRecords(file.stats);
      if (!n) {
        ASSIGN_OR_RETURN(engine::QueryResult meta,
                         conn->Query("SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(" +
                                     engine::QuoteLiteral(DataFilePath(table_->path(), file.path)) + ")"));
        n = meta.GetInt64(0, 0);
      }
      change.state->num_records = *n;
      if (file.deletion_vector) {
        ASSIGN_OR_RETURN(change.state->deleted, internal::LoadDeletionVector(fs, table_->path(), *file.deletion_vector));
      }
      change.state->old_deleted = static_cast<int64_t>(change.state->deleted.size());
    }
    const int64_t min_row = grouped.GetInt64(row, 2), max_row = grouped.GetInt64(row, 3);
    if (min_row < 0 || max_row >= change.state->num_records) {
      return Status::InvalidArgument("DeleteRows: row " + std::to_string(min_row < 0 ? min_row : max_row) + " of " +
                                     path + ", which has " + std::to_string(change.state->num_records) + " rows");
    }
    std::vector<uint64_t> rows = ParsePositions(grouped.GetString(row, 4));
    if (auto seen = change_of.find(key); seen != change_of.end()) {
      // The same file named twice (its path encoded and decoded): one change.
      std::vector<uint64_t> merged;
      std::set_union(changes[seen->second].deleted.begin(), changes[seen->second].deleted.end(), rows.begin(),
                     rows.end(), std::back_inserter(merged));
      changes[seen->second].deleted = std::move(merged);
      continue;
    }
    std::set_union(change.state->deleted.begin(), change.state->deleted.end(), rows.begin(), rows.end(),
                   std::back_inserter(change.deleted));
    if (change.deleted.size() == change.state->deleted.size()) continue;  // all already deleted
    change_of[key] = changes.size();
    changes.push_back(std::move(change));
  }
  if (changes.empty()) return 0;

  // With DVs, every new DV of this call goes into one DV file.
  std::vector<DeletionVector> dvs;
  if (with_dv) {
    std::vector<std::vector<uint64_t>> bitmaps;
    for (const auto& c : changes) {
      if (static_cast<int64_t>(c.deleted.size()) < c.state->num_records) bitmaps.push_back(c.deleted);
    }
    if (!bitmaps.empty()) {
      ASSIGN_OR_RETURN(dvs, internal::WriteDeletionVectorFile(fs, table_->path(), bitmaps));
    }
  }
  auto unstage = [&](RowDeletion& state) {
    std::set<std::string> paths(state.staged_adds.begin(), state.staged_adds.end());
    adds_.erase(std::remove_if(adds_.begin(), adds_.end(), [&](const AddFile& a) { return paths.count(a.path) > 0; }),
                adds_.end());
    if (!state.with_dv) {  // this transaction's rewritten files: nothing refers to them
      for (const auto& p : state.staged_adds) fs->DeleteFile(DataFilePath(table_->path(), p)).IgnoreError();
    }
    state.staged_adds.clear();
  };
  int64_t newly_deleted = 0;
  size_t next_dv = 0;
  const bool saved_data_change = data_change_;
  data_change_ = true;
  Status status;
  for (auto& c : changes) {
    RowDeletion& state = *c.state;
    const AddFile& original = state.original;
    const bool whole_file = static_cast<int64_t>(c.deleted.size()) >= state.num_records;
    std::vector<AddFile> added;
    if (!whole_file && with_dv) {
      AddFile a = original;
      a.data_change = true;
      a.stats = LooseBoundsStats(original.stats, state.num_records);
      a.deletion_vector = dvs[next_dv++];
      added.push_back(std::move(a));
    } else if (!whole_file) {
      // Copy-on-write: the file's live rows, minus the deleted ones, into a new file.
      Snapshot one;
      one.version = read_snapshot_.version;
      one.protocol = read_snapshot_.protocol;
      one.metadata = md;
      one.files = {original};
      ScanOptions options;
      options.row_address = true;
      auto scan = ScanSql(table_->path(), one, options);
      if (!scan.ok()) {
        status = scan.status();
        break;
      }
      std::string list;
      for (uint64_t r : c.deleted) list += (list.empty() ? "" : ",") + std::to_string(r);
      // WriteFiles stages the adds itself; they are moved into `added` below.
      auto files = WriteFiles(conn,
                              "SELECT * EXCLUDE (_delta_file, _delta_row) FROM (" + *scan +
                                  ") WHERE _delta_row NOT IN (SELECT unnest([" + list + "]::BIGINT[]))",
                              original.partition_values);
      if (!files.ok()) {
        status = files.status();
        break;
      }
      adds_.resize(adds_.size() - files->size());
      added = std::move(*files);
    }
    unstage(state);
    if (c.is_new) {
      RemoveFile(original);  // dataChange true (set above), the old DV, its partition read
      row_deletions_[DecodePath(original.path)] = c.state;
    }
    newly_deleted += static_cast<int64_t>(c.deleted.size() - state.deleted.size());
    state.deleted = std::move(c.deleted);
    state.with_dv = with_dv && !whole_file;
    for (auto& a : added) {
      state.staged_adds.push_back(a.path);
      adds_.push_back(std::move(a));
    }
  }
  data_change_ = saved_data_change;
  RETURN_IF_ERROR(status);
  return newly_deleted;
}

Result<int64_t> Transaction::Commit() {
  RETURN_IF_ERROR(read_status_);
  if (committed_) return Status::InvalidArgument("transaction already committed");
  const Metadata& md = new_metadata_ ? *new_metadata_ : read_snapshot_.metadata;
  RETURN_IF_ERROR(internal::CheckWritable(read_snapshot_.protocol, md));
  bool any_data_change = new_metadata_.has_value();
  // Removes are keyed by (path, DV): which version of a file they end.
  std::set<std::string> my_removed_paths, my_removed, my_added;
  for (const auto& r : removes_) {
    if (!my_removed_paths.insert(DecodePath(r.path)).second) {
      return Status::InvalidArgument("file " + r.path + " removed twice in one commit");
    }
    my_removed.insert(RemoveKey(r.path, r.deletion_vector));
    any_data_change |= r.data_change;
  }
  for (const auto& a : adds_) {
    if (a.deletion_vector && !internal::DeletionVectorsEnabled(read_snapshot_.protocol, md)) {
      return Status::InvalidArgument("file " + a.path + " has a deletion vector, but table " + table_->path() +
                                     " does not enable them (deletionVectors feature and "
                                     "delta.enableDeletionVectors=true)");
    }
  }
  // DeleteRows' metrics (Delta's names), unless the caller set them.
  if (!row_deletions_.empty()) {
    int64_t deleted_rows = 0, dvs_added = 0, dvs_removed = 0, dvs_updated = 0, files_removed = 0, files_added = 0,
            copied_rows = 0;
    for (const auto& [key, d] : row_deletions_) {
      deleted_rows += static_cast<int64_t>(d->deleted.size()) - d->old_deleted;
      const bool had_dv = d->original.deletion_vector.has_value();
      dvs_removed += had_dv;
      dvs_added += d->with_dv;
      dvs_updated += had_dv && d->with_dv;
      if (!d->with_dv) {
        files_removed++;
        files_added += static_cast<int64_t>(d->staged_adds.size());
        if (!d->staged_adds.empty()) copied_rows += d->num_records - static_cast<int64_t>(d->deleted.size());
      }
    }
    const std::pair<const char*, int64_t> metrics[] = {
        {"numDeletedRows", deleted_rows},        {"numDeletionVectorsAdded", dvs_added},
        {"numDeletionVectorsRemoved", dvs_removed}, {"numDeletionVectorsUpdated", dvs_updated},
        {"numRemovedFiles", files_removed},      {"numAddedFiles", files_added},
        {"numCopiedRows", copied_rows}};
    for (const auto& [name, value] : metrics) operation_metrics_.emplace(name, std::to_string(value));
  }
  for (const auto& a : adds_) {
    if (!my_added.insert(DecodePath(a.path)).second) {
      return Status::InvalidArgument("file " + a.path + " added twice in one commit");
    }
    any_data_change |= a.data_change;
  }
  if (read_snapshot_.Config("delta.appendOnly", "false") == "true") {
    for (const auto& r : removes_) {
      if (r.data_change) {
        return Status::InvalidArgument("table " + table_->path() + " is append-only (delta.appendOnly=true): " +
                                       "cannot remove data");
      }
    }
  }
  bool blind = blind_append_ && removes_.empty() && !new_metadata_ && !read_whole_table_ && read_partitions_.empty();
  std::string isolation = any_data_change ? "WriteSerializable" : "SnapshotIsolation";
  std::set<std::string> read_keys(read_partitions_.begin(), read_partitions_.end());
  std::set<std::string> read_files;
  if (!blind) {
    for (const auto& f : read_snapshot_.files) {
      if (read_whole_table_ || read_keys.count(internal::PartitionKey(f.partition_values))) {
        read_files.insert(DecodePath(f.path));
      }
    }
  }

  std::string body;
  if (new_metadata_) body += internal::SerializeMetadata(*new_metadata_) + "\n";
  int64_t now = table_->clock()->NowMillis();
  for (const auto& [app, v] : txns_) body += internal::SerializeTxn({app, v, now}) + "\n";
  for (const auto& r : removes_) body += internal::SerializeRemove(r) + "\n";
  for (const auto& a : adds_) body += internal::SerializeAdd(a) + "\n";

  std::string log_dir = table_->log_dir();
  int64_t version = read_snapshot_.version + 1;
  for (int attempt = 1;; attempt++) {
    std::string content = internal::CommitInfoJson(table_->clock()->NowMillis(), operation_, operation_params_,
                                                   read_snapshot_.version, isolation, blind, operation_metrics_,
                                                   extra_commit_info_) +
                          "\n" + body;
    Status st = internal::PutIfAbsent(table_->fs(), log_dir, version, content);
    if (st.ok()) break;
    if (!st.IsAlreadyExists()) return st;
    if (attempt >= internal::kMaxCommitAttempts) {
      return Status::Conflict("gave up committing to " + table_->path() + " after " + std::to_string(attempt) +
                              " attempts lost to concurrent writers");
    }
    // Check every winning commit since our read version.
    ASSIGN_OR_RETURN(int64_t latest, table_->LatestVersion());
    for (int64_t v = version; v <= latest; v++) {
      ASSIGN_OR_RETURN(std::string text, table_->fs()->ReadFile(JoinPath(log_dir, CommitFileName(v))));
      internal::CommitActions w;
      RETURN_IF_ERROR(internal::ParseActions(text, &w).WithContext("commit " + std::to_string(v)));
      std::string where = "concurrent commit " + std::to_string(v) + " of " + table_->path();
      if (w.protocol) return Status::Conflict(where + " changed the protocol; re-read the table and retry");
      if (w.metadata) return Status::Conflict(where + " changed the table metadata; re-read the table and retry");
      if (new_metadata_) return Status::Conflict(where + " raced a metadata change; re-read the table and retry");
      for (const auto& t : w.txns) {
        if (txns_.count(t.app_id)) {
          return Status::Conflict(where + " committed for application " + t.app_id + " (txn version " +
                                  std::to_string(t.version) + "); re-read the txn version before retrying");
        }
      }
      if (!blind && isolation != "SnapshotIsolation") {
        bool winner_blind = w.is_blind_append.value_or(false);
        for (const auto& a : w.adds) {
          if (!a.data_change || winner_blind) continue;
          if (read_whole_table_ || read_keys.count(internal::PartitionKey(a.partition_values))) {
            return Status::Conflict(where + " added files to data this transaction read; re-read and retry");
          }
        }
      }
      for (const auto& r : w.removes) {
        if (my_removed.count(RemoveKey(r.path, r.deletion_vector))) {
          return Status::Conflict(where + " also removed " + r.path + "; re-read and retry");
        }
        // At snapshot isolation (optimize) only the files it removes matter.
        if (isolation != "SnapshotIsolation" && read_files.count(DecodePath(r.path))) {
          return Status::Conflict(where + " removed " + r.path + ", which this transaction read; re-read and retry");
        }
      }
    }
    version = latest + 1;
  }
  committed_ = true;

  // Post-commit: checkpoint every delta.checkpointInterval versions. A failure
  // here does not undo the commit.
  int64_t interval = std::strtoll(md.configuration.count("delta.checkpointInterval")
                                      ? md.configuration.at("delta.checkpointInterval").c_str()
                                      : "10",
                                  nullptr, 10);
  if (interval <= 0) interval = 10;
  if (version != 0 && version % interval == 0) {
    Status st = table_->Checkpoint(version);
    if (!st.ok()) {
      spdlog::warn("delta: checkpoint {} of {} failed (the commit stands): {}", version, table_->path(), st.ToString());
    } else {
      Status c = table_->CleanupLog();
      if (!c.ok()) spdlog::warn("delta: log cleanup of {} failed: {}", table_->path(), c.ToString());
    }
  }
  return version;
}

}  // namespace clicklake::delta
