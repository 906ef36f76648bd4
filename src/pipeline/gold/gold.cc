#include "pipeline/gold/gold.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include "common/json_string.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/gold/models.h"

namespace clicklake::pipeline::gold {
namespace {

constexpr const char* kSilverTable = "silver/events";
constexpr const char* kCommitInfoKey = "clicklake_gold";
// Commits walked back to find a table's covered silver version (optimize,
// vacuum and other commits carry none).
constexpr int kMaxCommitsToWalk = 200;

delta::Field Str(const char* name) { return delta::Field{name, "string", true}; }
delta::Field Long(const char* name) { return delta::Field{name, "long", true}; }
delta::Field Dbl(const char* name) { return delta::Field{name, "double", true}; }
delta::Field Ts(const char* name) { return delta::Field{name, "timestamp", true}; }

delta::Schema FactEventsSchema() {
  delta::Schema s;
  s.fields = {{"event_date", "date", false}, Ts("event_ts"), Str("event_id"), Str("event_type"), Str("event_name"),
              Str("user_key"), Long("user_version"), Str("session_id"), Long("session_event_index"),
              Str("device_key"), Str("campaign_id"), Str("platform"), Str("page_path"), Str("geo_country"),
              Dbl("revenue"), Str("currency"), Str("source"), {"log_partition", "integer", true},
              Long("log_offset")};
  return s;
}

delta::Schema SessionSchema() {
  delta::Schema s;
  s.fields = {Str("session_id"), {"session_date", "date", false}, Str("user_key"), Ts("start_ts"), Ts("end_ts"),
              Dbl("duration_s"), Long("event_count"), Long("page_views"), Str("entry_path"), Str("exit_path"),
              Str("utm_source"), Str("utm_medium"), Str("utm_campaign"), Str("referrer_host"), Str("platform"),
              Str("device_type"), Str("browser_family"), Str("os_family"), Str("geo_country"),
              {"is_bounce", "boolean", true}, {"converted", "boolean", true}, Dbl("revenue")};
  return s;
}

delta::Schema SessionFunnelsSchema() {
  delta::Schema s;
  s.fields = {{"session_date", "date", false}, Str("session_id"), Str("user_key"), Str("funnel"),
              {"steps_reached", "integer", true}};
  return s;
}

delta::Schema SessionDaysSchema() {
  delta::Schema s;
  s.fields = {{"session_date", "date", false}, Str("session_id"), Str("user_key"), Ts("start_ts"),
              {"event_date", "date", true}, Ts("last_ts")};
  return s;
}

delta::Schema FunnelSchema() {
  delta::Schema s;
  s.fields = {{"event_date", "date", false}, Str("funnel"), {"step_index", "integer", true}, Str("step_name"),
              Long("sessions"), Long("users"), Dbl("conversion_from_start"), Dbl("conversion_from_previous")};
  return s;
}

delta::Schema DimUserSchema(const std::vector<std::string>& traits) {
  delta::Schema s;
  s.fields = {Str("user_key"), Long("version")};
  for (const auto& t : traits) s.fields.push_back(delta::Field{t, "string", true});
  for (const auto& f : {Ts("valid_from"), Ts("valid_to"), delta::Field{"is_current", "boolean", true}})
    s.fields.push_back(f);
  return s;
}

delta::Schema DimCampaignSchema() {
  delta::Schema s;
  s.fields = {Str("campaign_id"), Str("utm_source"), Str("utm_medium"), Str("utm_campaign"), Ts("first_seen"),
              Ts("last_seen"), Long("events"), Long("sessions"), Long("users")};
  return s;
}

delta::Schema UserIdentifiesSchema() {
  delta::Schema s;
  s.fields = {Str("user_key"), Ts("event_ts"), Str("event_id"), Str("properties")};
  return s;
}

delta::Schema CampaignGroupsSchema() {
  delta::Schema s;
  s.fields = {Str("campaign_id"), Str("user_key"), Str("session_id"), Str("event_id"), Long("events"),
              Ts("first_ts"), Ts("last_ts"), Str("utm_source"), Str("utm_source_at"), Str("utm_medium"),
              Str("utm_medium_at"), Str("utm_campaign"), Str("utm_campaign_at")};
  return s;
}

delta::Schema DeviceGroupsSchema() {
  delta::Schema s;
  s.fields = {Str("platform"), Str("device_type"), Str("device_family"), Str("browser_family"), Str("os_family"),
              Str("user_key"), Str("session_id"), Str("event_id"), Long("events"), Ts("first_ts"), Ts("last_ts")};
  return s;
}

delta::Schema DimDeviceSchema() {
  delta::Schema s;
  s.fields = {Str("device_key"), Str("platform"), Str("device_type"), Str("device_family"), Str("browser_family"),
              Str("os_family"), Ts("first_seen"), Ts("last_seen"), Long("events"), Long("users")};
  return s;
}

delta::Schema UserActivitySchema() {
  delta::Schema s;
  s.fields = {{"event_date", "date", false}, Str("user_key"), Long("events"), Long("page_views"),
              Long("product_views"), Long("add_to_cart"), Long("checkouts"), Long("purchases"),
              {"revenue", "decimal(38,6)", true}};
  return s;
}

delta::Schema FeaturesSchema() {
  delta::Schema s;
  s.fields = {Str("user_key"), {"feature_date", "date", false}, Long("events_7d"), Long("sessions_7d"),
              Long("active_days_7d"), Long("page_views_7d"), Long("product_views_7d"), Long("add_to_cart_7d"),
              Long("checkouts_7d"), Long("purchases_30d"), Dbl("revenue_30d"), Long("recency_days"),
              Long("frequency_30d"), Dbl("avg_session_duration_7d")};
  return s;
}

delta::Schema RefreshesSchema() {
  delta::Schema s;
  s.fields = {{"table_name", "string", false}, Str("mode"), Str("app_id"), Long("batch_id"), Ts("refreshed_at"),
              Long("silver_version"), Long("base_version"), Ts("newest_event_ts"), Long("table_version"),
              Long("partitions_replaced"), {"replaced_all", "boolean", true}, Long("rows_written"),
              Dbl("duration_ms"), Long("rows_deleted"), Long("rows_rewritten"), Long("silver_rows_changed")};
  return s;
}

// "dim_user" → "gold/dim_user".
std::string Gold(const char* name) { return std::string("gold/") + name; }

// "gold/dim_user" → "gold.dim_user".
std::string SqlName(const std::string& table) {
  std::string s = table;
  std::replace(s.begin(), s.end(), '/', '.');
  return s;
}

// "Product Viewed" / "product-viewed" → "product_viewed" (silver's canonical names are snake_case).
std::string CanonicalEventName(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// "product.brand" → $."product"."brand"
std::string JsonPath(const std::string& key) {
  std::string path = "$";
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    if (dot == std::string::npos) dot = key.size();
    std::string seg = key.substr(start, dot - start);
    std::string escaped;
    for (char c : seg) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    path += ".\"" + escaped + "\"";
    start = dot + 1;
  }
  return path;
}

// A snapshot holding only the files `keep` selects (for scanning a subset).
delta::Snapshot SubSnapshot(const delta::Snapshot& snap, const std::function<bool(const delta::AddFile&)>& keep) {
  delta::Snapshot sub = snap;
  sub.files.clear();
  for (const auto& f : snap.files)
    if (keep(f)) sub.files.push_back(f);
  return sub;
}

std::string PartitionValue(const delta::AddFile& f, const std::string& column) {
  auto it = f.partition_values.find(column);
  return it == f.partition_values.end() || !it->second ? std::string() : *it->second;
}

// Strings of a one-column query (e.g. dates as YYYY-MM-DD).
Result<std::set<std::string>> QuerySet(engine::Connection* conn, const std::string& sql) {
  ASSIGN_OR_RETURN(auto rows, conn->Query(sql));
  std::set<std::string> out;
  for (size_t i = 0; i < rows.row_count(); i++)
    if (!rows.IsNull(i, 0)) out.insert(rows.GetString(i, 0));
  return out;
}

// The silver.events version a Gold table covers (-1: none) and the newest
// Silver event_ts it covered then, from its latest commit that says.
struct Covered {
  int64_t version = -1;
  std::optional<int64_t> newest_event_us;
};
Result<Covered> CoveredVersion(delta::Table* table, int64_t latest, FileSystem* fs) {
  for (int64_t v = latest; v >= 0 && v > latest - kMaxCommitsToWalk; v--) {
    auto info = delta::ReadCommitInfo(table->path(), v, fs);
    if (!info.ok()) {
      if (info.status().IsNotFound()) continue;
      return info.status();
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(*info).get(doc)) continue;
    Covered out;
    if (doc[kCommitInfoKey]["silver_version"].get(out.version)) continue;
    int64_t newest;
    if (!doc[kCommitInfoKey]["newest_event_ts_us"].get(newest)) out.newest_event_us = newest;
    return out;
  }
  return Covered{};
}

// Which partitions of a table a rebuild replaces.
struct Target {
  bool all = false;
  std::set<std::string> dates;

  bool Matches(const std::string& d) const { return all || dates.count(d) > 0; }
};

std::string TimestampJson(std::optional<int64_t> us) {
  if (!us) return "null";
  return std::to_string(*us);
}

// Gaps between changed rows' event times below which their intervals merge
// (fewer, wider file-pruning ranges).
constexpr int64_t kIntervalGapUs = 3600LL * 1000000;

// A closed range of microseconds since the epoch.
struct Interval {
  int64_t lo = 0;
  int64_t hi = 0;
};

// The ranges `ranges_sql` yields (two BIGINT columns, lo and hi in µs) merged
// where they overlap or lie within `gap` of each other, in order.
Result<std::vector<Interval>> MergedIntervals(engine::Connection* c, const std::string& ranges_sql, int64_t gap) {
  ASSIGN_OR_RETURN(auto r, c->Query(
      "WITH r AS (SELECT lo, hi FROM (" + ranges_sql + ") t(lo, hi) WHERE lo IS NOT NULL AND hi IS NOT NULL), "
      "g AS (SELECT lo, hi, CASE WHEN lo > max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND "
      "  1 PRECEDING) + " + std::to_string(gap) + " THEN 1 ELSE 0 END AS brk FROM r), "
      "n AS (SELECT lo, hi, sum(brk) OVER (ORDER BY lo, hi ROWS UNBOUNDED PRECEDING) AS grp FROM g) "
      "SELECT min(lo), max(hi) FROM n GROUP BY grp ORDER BY 1"));
  std::vector<Interval> out;
  for (size_t i = 0; i < r.row_count(); i++) out.push_back({r.GetInt64(i, 0), r.GetInt64(i, 1)});
  return out;
}

// The files of `snap` that may hold a row whose [lo_col, hi_col] (timestamp
// columns) overlaps one of `intervals` widened by `margin` µs on both sides
// (min/max stats; files without stats are kept).
std::vector<delta::AddFile> FilesOverlapping(const delta::Snapshot& snap, const std::string& lo_col,
                                             const std::string& hi_col, const std::vector<Interval>& intervals,
                                             int64_t margin) {
  std::map<std::string, delta::AddFile> out;
  for (const Interval& iv : intervals) {
    for (auto& f : delta::PruneFiles(snap, {delta::Predicate{lo_col, "<=", FormatTimestampMicros(iv.hi + margin), ""},
                                            delta::Predicate{hi_col, ">=", FormatTimestampMicros(iv.lo - margin), ""}}))
      out.emplace(f.path, std::move(f));
  }
  std::vector<delta::AddFile> files;
  for (auto& [path, f] : out) files.push_back(std::move(f));
  return files;
}

// The key of a live entry of a snapshot: its path and deletion vector.
std::string EntryKey(const delta::AddFile& f) {
  return f.path + "\n" + (f.deletion_vector ? f.deletion_vector->UniqueId() : std::string());
}

// Creates the temp tables changed_old (old versions of the rows that differ
// between the two snapshots of silver.events, on the Gold columns),
// changed_new (their new versions) and changed (both). Reads only what
// changed: the rows of entries (path, deletion vector) of the old snapshot that
// the new one dropped — for a file still there with a larger deletion vector,
// only its newly deleted rows — and the rows of files the old snapshot did not
// have. EXCEPT ALL both ways cancels rows that were only moved (compaction).
Status SilverDiff(engine::Connection* c, const std::string& silver_path, const delta::Snapshot& old_snap,
                  const delta::Snapshot& new_snap, FileSystem* fs) {
  std::set<std::string> new_keys, old_paths;
  std::map<std::string, const delta::AddFile*> new_by_path;
  for (const auto& f : new_snap.files) {
    new_keys.insert(EntryKey(f));
    new_by_path[f.path] = &f;
  }
  for (const auto& f : old_snap.files) old_paths.insert(f.path);
  delta::Snapshot gone = old_snap, added = new_snap;
  gone.files.clear();
  added.files.clear();
  std::vector<std::string> removed_parts;
  for (const auto& f : old_snap.files) {
    if (new_keys.count(EntryKey(f))) continue;
    auto same = new_by_path.find(f.path);
    if (same == new_by_path.end()) {
      gone.files.push_back(f);
      continue;
    }
    // The same file with another deletion vector: the rows it newly deletes.
    ASSIGN_OR_RETURN(std::vector<uint64_t> before, delta::ReadDeletedRows(silver_path, f, fs));
    ASSIGN_OR_RETURN(std::vector<uint64_t> after, delta::ReadDeletedRows(silver_path, *same->second, fs));
    std::vector<uint64_t> newly;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(newly));
    if (newly.empty()) continue;
    delta::Snapshot one = old_snap;
    one.files = {f};
    delta::ScanOptions options;
    options.row_address = true;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(silver_path, one, options));
    // An IN list of constants becomes a hash join on the list (DuckDB's
    // in-clause rewrite); list_contains would search the list for every row.
    std::string list;
    for (size_t i = 0; i < newly.size(); i++) list += (i ? "," : "") + std::to_string(newly[i]);
    removed_parts.push_back("SELECT " + std::string(kGoldSilverColumns) + " FROM (" + scan + ") WHERE _delta_row IN (" +
                            list + ")");
  }
  for (const auto& f : new_snap.files)
    if (!old_paths.count(f.path)) added.files.push_back(f);
  ASSIGN_OR_RETURN(std::string gone_scan, delta::ScanSql(silver_path, gone));
  std::string removed = "SELECT " + std::string(kGoldSilverColumns) + " FROM (" + gone_scan + ")";
  for (const auto& part : removed_parts) removed += " UNION ALL " + part;
  ASSIGN_OR_RETURN(std::string added_scan, delta::ScanSql(silver_path, added));
  RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE silver_removed_rows AS " + removed));
  RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE silver_added_rows AS SELECT " +
                             std::string(kGoldSilverColumns) + " FROM (" + added_scan + ")"));
  // Each side holds live rows of one snapshot, unique by (event_id,
  // log_partition, log_offset): a row cancels against the other side's row
  // with that key when every Gold column is equal. (The same as EXCEPT ALL
  // both ways, as a hash join on the key instead of numbering equal rows.)
  std::string same = "r.event_id = a.event_id AND r.log_partition = a.log_partition AND r.log_offset = a.log_offset";
  std::istringstream columns(kGoldSilverColumns);
  for (std::string item; std::getline(columns, item, ',');) {
    std::string col = item.substr(item.find_last_of(' ') + 1);  // the output name ("... AS event_ts" → event_ts)
    if (col != "event_id" && col != "log_partition" && col != "log_offset")
      same += " AND r." + col + " IS NOT DISTINCT FROM a." + col;
  }
  return c->Execute(
      "CREATE OR REPLACE TEMP TABLE changed_old AS "
      "  SELECT r.* FROM silver_removed_rows r ANTI JOIN silver_added_rows a ON " + same + ";"
      "CREATE OR REPLACE TEMP TABLE changed_new AS "
      "  SELECT a.* FROM silver_added_rows a ANTI JOIN silver_removed_rows r ON " + same + ";"
      "CREATE OR REPLACE TEMP VIEW changed AS "
      "  SELECT * FROM changed_old UNION ALL SELECT * FROM changed_new;"
      "DROP TABLE silver_removed_rows; DROP TABLE silver_added_rows;");
}

// `old_snap` with the files that compactions (OPTIMIZE commits) after it moved
// replaced by the files they moved their rows to: the same live rows, so a diff
// against a later snapshot does not read the moved rows on both sides (a busy
// processor compacts silver.events after every batch, between Gold's base and
// the next batch). A compaction that folded a file the old snapshot does not
// hold as it is (added or given a deletion vector since) is left out: the diff
// still cancels its rows, only more slowly. Returns how many were taken in.
Result<int> TakeInCompactions(delta::Table* silver, const delta::Snapshot& new_snap, delta::Snapshot* old_snap,
                              FileSystem* fs) {
  int taken = 0;
  std::optional<delta::Snapshot> before;  // the snapshot at v - 1, when loaded
  std::map<std::string, delta::AddFile> rows_of;  // the virtual old snapshot, by entry key
  for (const auto& f : old_snap->files) rows_of.emplace(EntryKey(f), f);
  for (int64_t v = old_snap->version + 1; v <= new_snap.version; v++) {
    auto info = delta::ReadCommitInfo(silver->path(), v, fs);
    if (!info.ok()) {
      if (info.status().IsNotFound()) {
        before.reset();
        continue;
      }
      return info.status();
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view operation;
    if (parser.parse(*info).get(doc) || doc["operation"].get(operation) || operation != "OPTIMIZE") {
      before.reset();
      continue;
    }
    if (!before) {
      if (v - 1 == old_snap->version) {
        before = *old_snap;
      } else {
        ASSIGN_OR_RETURN(before, silver->LoadSnapshot(v - 1));
      }
    }
    delta::Snapshot after = new_snap;
    if (v != new_snap.version) {
      ASSIGN_OR_RETURN(after, silver->LoadSnapshot(v));
    }
    std::set<std::string> before_keys, after_keys;
    for (const auto& f : before->files) before_keys.insert(EntryKey(f));
    for (const auto& f : after.files) after_keys.insert(EntryKey(f));
    std::vector<std::string> folded;
    bool inputs_held = true;
    for (const auto& f : before->files) {
      const std::string key = EntryKey(f);
      if (after_keys.count(key)) continue;
      inputs_held = inputs_held && rows_of.count(key) > 0;
      folded.push_back(key);
    }
    if (inputs_held && !folded.empty()) {
      for (const auto& key : folded) rows_of.erase(key);
      for (const auto& f : after.files)
        if (!before_keys.count(EntryKey(f))) rows_of.emplace(EntryKey(f), f);
      taken++;
    }
    before = std::move(after);
  }
  if (taken == 0) return 0;
  // Moved-to files a later commit removed must still be readable.
  for (const auto& [key, f] : rows_of)
    if (!fs->Exists(JoinPath(silver->path(), delta::DecodePath(f.path)))) return 0;
  old_snap->files.clear();
  for (auto& [key, f] : rows_of) old_snap->files.push_back(std::move(f));
  std::sort(old_snap->files.begin(), old_snap->files.end(),
            [](const delta::AddFile& a, const delta::AddFile& b) { return a.path < b.path; });
  return taken;
}

// Whether `change` is the whole difference between silver.events at `base`
// and at `latest` on the Gold columns: it ends at `latest`, and every other
// commit after `base` is a compaction (OPTIMIZE: rows moved, none changed) or
// a schema evolution (ADD COLUMNS: new prop_ columns). Returns how many
// compactions it passes over, or nothing when it does not apply.
Result<std::optional<int>> CompactionsBeforeChange(const std::string& silver_path, int64_t base, int64_t latest,
                                                   const SilverChange& change, FileSystem* fs) {
  if (change.to_version != latest || change.from_version < base || change.from_version >= change.to_version ||
      change.removed_table.empty() || change.added_table.empty())
    return std::optional<int>();
  int compactions = 0;
  for (int64_t v = base + 1; v < change.to_version; v++) {
    auto info = delta::ReadCommitInfo(silver_path, v, fs);
    if (!info.ok())
      return info.status().IsNotFound() ? Result<std::optional<int>>(std::optional<int>()) : info.status();
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view operation;
    if (parser.parse(*info).get(doc) || doc["operation"].get(operation)) return std::optional<int>();
    if (operation == "OPTIMIZE") {
      compactions++;
    } else if (operation != "ADD COLUMNS") {  // new prop_ columns: no Gold column, no row changes
      return std::optional<int>();
    }
  }
  return std::optional<int>(compactions);
}

// What DeleteMatchingRows staged.
struct RowDeletion {
  int64_t rows_deleted = 0;
  int64_t rows_rewritten = 0;  // surviving rows copied into new files (tables without deletion vectors)
  int64_t files_touched = 0;
  std::set<std::string> partitions;  // values of `partition_column` of the files touched
};

// Stages in `txn` the deletion of the rows of `candidates` (files of `snap`,
// the transaction's read snapshot) for which `predicate` holds (SQL over the
// table's columns, the row aliased __t): with deletion vectors, only those rows
// are marked deleted; a table without them rewrites the files (copy-on-write).
Result<RowDeletion> DeleteMatchingRows(delta::Transaction* txn, engine::Connection* c, const std::string& table_path,
                                       const delta::Snapshot& snap, const std::vector<delta::AddFile>& candidates,
                                       const std::string& predicate, const std::string& partition_column) {
  RowDeletion out;
  std::map<std::string, const delta::AddFile*> live;
  for (const auto& f : snap.files) live[f.path] = &f;
  delta::Snapshot sub = snap;
  sub.files.clear();
  for (const auto& f : candidates)
    if (live.count(f.path)) sub.files.push_back(*live[f.path]);
  if (sub.files.empty()) return out;
  delta::ScanOptions options;
  options.row_address = true;
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(table_path, sub, options));
  RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE gold_rows_to_delete AS SELECT _delta_file, _delta_row "
                             "FROM (" + scan + ") __t WHERE " + predicate));
  ASSIGN_OR_RETURN(auto files, c->Query("SELECT _delta_file, count(*) FROM gold_rows_to_delete GROUP BY ALL"));
  if (files.row_count() == 0) return out;
  const bool dvs = snap.Config("delta.enableDeletionVectors", "false") == "true";
  for (size_t i = 0; i < files.row_count(); i++) {
    const delta::AddFile* f = live[files.GetString(i, 0)];
    if (f == nullptr) return Status::Internal("gold: a row to delete is in no live file: " + files.GetString(i, 0));
    out.files_touched++;
    if (!partition_column.empty()) out.partitions.insert(PartitionValue(*f, partition_column));
    if (!dvs) {
      // Copy-on-write: the file's other live rows are written again.
      simdjson::dom::parser parser;
      simdjson::dom::element stats;
      int64_t records = 0;
      if (!f->stats.empty() && !parser.parse(f->stats).get(stats) && !stats["numRecords"].get(records)) {
        const int64_t deleted = f->deletion_vector ? f->deletion_vector->cardinality : 0;
        out.rows_rewritten += std::max<int64_t>(0, records - deleted - files.GetInt64(i, 1));
      }
    }
  }
  ASSIGN_OR_RETURN(out.rows_deleted, txn->DeleteRows(c, "SELECT _delta_file, _delta_row FROM gold_rows_to_delete"));
  return out;
}

}  // namespace

// ---- options ----

std::vector<Funnel> GoldOptions::DefaultFunnels() {
  Funnel f;
  f.name = "purchase";
  for (const char* e : {"product_viewed", "product_added", "checkout_started", "order_completed"})
    f.steps.push_back(FunnelStep{e, e, {}});
  return {f};
}

Result<GoldOptions> GoldOptions::FromConfig(const Config& config) {
  GoldOptions o;
  o.deletion_vectors = config.GetBool("lake.deletion_vectors", o.deletion_vectors);
  const std::vector<std::string> funnels = config.GetTableArrayToml("gold.funnels");
  std::set<std::string> names;
  for (const auto& text : funnels) {
    ASSIGN_OR_RETURN(auto parsed, Config::ParseTableEntry(text));
    const Config& fc = parsed.first;
    const std::string& fp = parsed.second;
    Funnel f;
    f.name = fc.GetString(fp + "name", "");
    if (f.name.empty()) return Status::InvalidArgument("[[gold.funnels]]: every funnel needs a name");
    if (!names.insert(f.name).second)
      return Status::InvalidArgument("[[gold.funnels]]: funnel '" + f.name + "' is defined twice");
    for (const auto& step_text : fc.GetTableArrayToml(fp + "steps")) {
      ASSIGN_OR_RETURN(auto step_parsed, Config::ParseTableEntry(step_text));
      const Config& sc = step_parsed.first;
      const std::string& sp = step_parsed.second;
      FunnelStep step;
      step.event = CanonicalEventName(sc.GetString(sp + "event", ""));
      if (step.event.empty())
        return Status::InvalidArgument("[[gold.funnels]] '" + f.name + "': every step needs an event, e.g. "
                                       "steps = [{event = \"product_viewed\"}]");
      step.name = sc.GetString(sp + "name", step.event);
      step.where = sc.GetStringMap(sp + "where");
      f.steps.push_back(std::move(step));
    }
    if (f.steps.empty())
      return Status::InvalidArgument("[[gold.funnels]] '" + f.name + "': steps = [{event = ...}, ...] is required");
    o.funnels.push_back(std::move(f));
  }
  if (o.funnels.empty()) o.funnels = DefaultFunnels();

  static const std::regex kIdent("[a-z_][a-z0-9_]*");
  static const std::set<std::string> kReserved = {"user_key", "version", "valid_from", "valid_to", "is_current",
                                                  "trait_values"};
  if (config.Has("gold.user_traits")) {
    o.user_traits = config.GetStringList("gold.user_traits");
  } else {
    o.user_traits = {"plan", "country", "created_at"};
  }
  std::set<std::string> seen;
  for (const auto& t : o.user_traits) {
    if (!std::regex_match(t, kIdent) || kReserved.count(t) || !seen.insert(t).second)
      return Status::InvalidArgument("gold.user_traits: '" + t +
                                     "' must be a distinct snake_case trait name other than user_key, version, "
                                     "valid_from, valid_to, is_current");
  }
  return o;
}

// ---- stage ----

struct GoldStage::Plan {
  std::string mode;  // "refresh" | "rebuild" | "backfill"
  std::string app_id;
  int64_t batch_id = -1;
  std::optional<std::pair<std::string, std::string>> range;  // rebuild only
  bool full = false;                                         // rebuild without range
  const SilverChange* change = nullptr;                      // refresh only: the batch's own change
};

GoldStage::GoldStage(GoldOptions options, std::string lake_dir, engine::Database* db, FileSystem* fs, Clock* clock)
    : options_(std::move(options)), lake_dir_(std::move(lake_dir)), db_(db), fs_(fs), clock_(clock) {}

GoldStage::~GoldStage() = default;

Result<std::unique_ptr<GoldStage>> GoldStage::Open(const Config& config, const std::string& lake_dir,
                                                   engine::Database* db, FileSystem* fs, Clock* clock) {
  ASSIGN_OR_RETURN(GoldOptions options, GoldOptions::FromConfig(config));
  if (ModelText("fact_events").empty()) return Status::Internal("the Gold models' SQL is not embedded");
  auto stage = std::unique_ptr<GoldStage>(new GoldStage(std::move(options), lake_dir, db, fs, clock));
  // Silver's session timeout bounds where a session's rows lie around its span.
  stage->session_timeout_us_ = config.GetDurationMicros("silver.session_timeout", stage->session_timeout_us_);
  return stage;
}

Result<GoldRefreshResult> GoldStage::Refresh(const std::string& app_id, int64_t batch_id, const SilverChange* change) {
  Plan plan;
  plan.mode = "refresh";
  plan.app_id = app_id;
  plan.batch_id = batch_id;
  plan.change = change;
  return Run(&plan);
}

Result<GoldRefreshResult> GoldStage::Rebuild(std::optional<std::pair<std::string, std::string>> date_range) {
  static const std::regex kDate(R"(\d{4}-\d{2}-\d{2})");
  Plan plan;
  plan.mode = "rebuild";
  if (date_range) {
    if (!std::regex_match(date_range->first, kDate) || !std::regex_match(date_range->second, kDate))
      return Status::InvalidArgument("gold rebuild: dates must look like 2026-05-01, got '" + date_range->first +
                                     "' and '" + date_range->second + "'");
    if (date_range->first > date_range->second)
      return Status::InvalidArgument("gold rebuild: " + date_range->first + " is after " + date_range->second);
    plan.range = date_range;
  } else {
    plan.full = true;
  }
  return Run(&plan);
}

Result<GoldRefreshResult> GoldStage::Run(Plan* plan) {
  GoldRefreshResult result;
  const int64_t t_start = clock_->MonotonicMicros();
  const int64_t refreshed_at_us = clock_->NowMicros();
  const std::string silver_path = JoinPath(lake_dir_, kSilverTable);
  auto silver = delta::Table::Open(silver_path, db_, fs_, clock_);
  if (!silver.ok()) {
    if (silver.status().IsNotFound()) {
      result.noop = true;
      return result;
    }
    return silver.status();
  }
  ASSIGN_OR_RETURN(delta::Snapshot new_snap, (*silver)->LoadSnapshot());
  result.silver_version = new_snap.version;

  // The Gold tables, created on first use, and the silver version each covers.
  // Listed in commit order: a table is committed after the tables it reads
  // (session_funnels before fact_funnel_daily; user_activity_daily and
  // session_days before user_features_daily).
  struct TableInfo {
    std::string name;
    delta::Schema schema;
    std::vector<std::string> partition_columns;
    std::unique_ptr<delta::Table> table;
    std::string sort_by;  // delta.clicklake.sortBy: the order OPTIMIZE keeps
    int64_t covered = -1;
    std::optional<int64_t> covered_newest_us;  // the newest Silver event_ts it covered
    bool holds_batch = false;
  };
  std::vector<TableInfo> tables;
  tables.push_back({Gold("user_identifies"), UserIdentifiesSchema(), {}, nullptr, "event_ts"});
  tables.push_back({Gold("dim_user"), DimUserSchema(options_.user_traits), {}, nullptr});
  tables.push_back({Gold("campaign_groups"), CampaignGroupsSchema(), {}, nullptr, "first_ts"});
  tables.push_back({Gold("device_groups"), DeviceGroupsSchema(), {}, nullptr, "first_ts"});
  tables.push_back({Gold("dim_campaign"), DimCampaignSchema(), {}, nullptr});
  tables.push_back({Gold("dim_device"), DimDeviceSchema(), {}, nullptr});
  tables.push_back({Gold("fact_events"), FactEventsSchema(), {"event_date"}, nullptr, "event_ts,event_id"});
  tables.push_back({Gold("fact_session_daily"), SessionSchema(), {"session_date"}, nullptr, "start_ts,session_id"});
  tables.push_back({Gold("session_funnels"), SessionFunnelsSchema(), {"session_date"}, nullptr, "session_id"});
  tables.push_back({Gold("session_days"), SessionDaysSchema(), {"session_date"}, nullptr, "user_key,session_id"});
  tables.push_back({Gold("fact_funnel_daily"), FunnelSchema(), {"event_date"}, nullptr});
  tables.push_back({Gold("user_activity_daily"), UserActivitySchema(), {"event_date"}, nullptr, "user_key"});
  tables.push_back({Gold("user_features_daily"), FeaturesSchema(), {"feature_date"}, nullptr, "user_key"});
  int64_t base = INT64_MAX;
  bool all_hold_batch = true;
  for (auto& t : tables) {
    const std::string path = JoinPath(lake_dir_, t.name);
    auto existing = delta::Table::Open(path, db_, fs_, clock_);
    if (existing.ok()) {
      t.table = std::move(existing).value();
      ASSIGN_OR_RETURN(delta::Snapshot snap, t.table->LoadSnapshot());
      ASSIGN_OR_RETURN(Covered covered, CoveredVersion(t.table.get(), snap.version, fs_));
      t.covered = covered.version;
      t.covered_newest_us = covered.newest_event_us;
      auto it = snap.app_txn_versions.find(plan->app_id);
      t.holds_batch = !plan->app_id.empty() && it != snap.app_txn_versions.end() && it->second >= plan->batch_id;
      // New trait columns (configuration changed): add them.
      if (t.name == Gold("dim_user")) {
        ASSIGN_OR_RETURN(int64_t evolved, t.table->EvolveSchema(t.schema));
        (void)evolved;
      }
    } else if (existing.status().IsNotFound()) {
      std::map<std::string, std::string> properties;
      if (!t.sort_by.empty()) properties["delta.clicklake.sortBy"] = t.sort_by;
      properties["delta.enableDeletionVectors"] = options_.deletion_vectors ? "true" : "false";
      ASSIGN_OR_RETURN(t.table,
                       delta::Table::OpenOrCreate(path, t.schema, t.partition_columns, properties, db_, fs_, clock_));
    } else {
      return existing.status();
    }
    base = std::min(base, t.covered);
    all_hold_batch = all_hold_batch && t.holds_batch;
  }
  result.base_version = base;
  if (plan->mode == "refresh") {
    if (all_hold_batch || base == new_snap.version) {
      result.noop = true;
      return result;
    }
  }
  // A refresh without a usable base version (first run, or the old snapshot is
  // gone) recomputes everything.
  std::optional<delta::Snapshot> old_snap;
  if (plan->mode == "refresh" && base >= 0) {
    auto s = (*silver)->LoadSnapshot(base);
    if (s.ok()) {
      old_snap = std::move(s).value();
    } else if (!s.status().IsNotFound()) {
      return s.status();
    } else {
      spdlog::warn("gold: silver.events version {} (covered by Gold) is no longer in its log; full recompute", base);
    }
  }
  if (old_snap) {
    // The base version's removed files must still be readable (a vacuum after
    // Gold was off for longer than the retention removes them): else recompute all.
    std::set<std::string> live;
    for (const auto& f : new_snap.files) live.insert(f.path);
    for (const auto& f : old_snap->files) {
      if (!live.count(f.path) && !fs_->Exists(JoinPath(silver_path, delta::DecodePath(f.path)))) {
        spdlog::warn("gold: a silver.events file of version {} is gone ({}); full recompute", base, f.path);
        old_snap.reset();
        break;
      }
    }
  }
  const bool full = plan->full || (plan->mode == "refresh" && !old_snap);
  const bool incremental = plan->mode == "refresh" && !full;
  int64_t diff_us = 0;  // the Silver diff of an incremental refresh

  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  engine::Connection* c = conn.get();
  RETURN_IF_ERROR(c->Execute("SET TimeZone = 'UTC'"));
  RETURN_IF_ERROR(c->Execute(ModelText("macros")));

  auto silver_files_view = [&](const std::string& name, const delta::Snapshot& snap,
                               const std::vector<delta::AddFile>& files) -> Status {
    delta::Snapshot sub = snap;
    sub.files = files;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(silver_path, sub));
    return c->Execute("CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT " + kGoldSilverColumns + " FROM (" + scan +
                      ")");
  };
  // Scans of silver.events (the Gold columns) over a subset of its files.
  auto silver_view = [&](const std::string& name, const delta::Snapshot& snap,
                         const std::function<bool(const delta::AddFile&)>& keep) -> Status {
    return silver_files_view(name, snap, SubSnapshot(snap, keep).files);
  };
  auto all_files = [](const delta::AddFile&) { return true; };
  RETURN_IF_ERROR(silver_view("silver_all", new_snap, all_files));
  auto find_table = [&](const char* name) -> TableInfo& {
    for (auto& t : tables)
      if (t.name == Gold(name)) return t;
    std::abort();  // a name of the list above
  };
  TableInfo& user_identifies = find_table("user_identifies");
  TableInfo& dim_user = find_table("dim_user");
  TableInfo& campaign_groups = find_table("campaign_groups");
  TableInfo& device_groups = find_table("device_groups");
  TableInfo& dim_campaign = find_table("dim_campaign");
  TableInfo& dim_device = find_table("dim_device");
  TableInfo& fact_events = find_table("fact_events");
  TableInfo& fact_sessions = find_table("fact_session_daily");
  TableInfo& session_funnels = find_table("session_funnels");
  TableInfo& session_days = find_table("session_days");
  TableInfo& fact_funnel = find_table("fact_funnel_daily");
  TableInfo& activity = find_table("user_activity_daily");
  TableInfo& features = find_table("user_features_daily");
  std::map<std::string, delta::Snapshot> gold_snaps;
  for (auto& t : tables) {
    ASSIGN_OR_RETURN(gold_snaps[t.name], t.table->LoadSnapshot());
  }
  // A view over some files of a Gold table's snapshot (timestamps as naive UTC).
  auto gold_view = [&](const std::string& name, TableInfo& t, const std::vector<delta::AddFile>& files,
                       const std::string& where = "") -> Status {
    delta::Snapshot sub = gold_snaps[t.name];
    sub.files = files;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(t.table->path(), sub));
    std::string replace;
    for (const auto& f : sub.schema().fields) {
      if (f.type == "timestamp") {
        const std::string q = engine::QuoteIdentifier(f.name);
        replace += (replace.empty() ? "" : ", ") + std::string("CAST(") + q + " AS TIMESTAMP) AS " + q;
      }
    }
    return c->Execute("CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT * " +
                      (replace.empty() ? "" : "REPLACE (" + replace + ") ") + "FROM (" + scan + ") __t" +
                      (where.empty() ? "" : " WHERE " + where));
  };
  auto partition_files = [&](TableInfo& t, const std::function<bool(const std::string&)>& keep) {
    std::vector<delta::AddFile> out;
    for (const auto& f : gold_snaps[t.name].files)
      if (keep(PartitionValue(f, t.partition_columns[0]))) out.push_back(f);
    return out;
  };
  auto dates_files = [&](TableInfo& t, const std::set<std::string>& dates) {
    return partition_files(t, [&](const std::string& d) { return dates.count(d) > 0; });
  };

  // Silver's event dates (partition values) now and at the base version.
  std::set<std::string> new_dates;
  for (const auto& f : new_snap.files) new_dates.insert(PartitionValue(f, "event_date"));
  new_dates.erase("");
  const std::string new_max = new_dates.empty() ? "" : *new_dates.rbegin();
  // The newest Silver event_ts covered: a rebuild (or a lake whose Gold
  // commits do not say) reads it from the newest date; a refresh takes the
  // newer of what the base covered and the changed rows (a running maximum: it
  // does not go back when the newest event is deleted).
  auto scan_newest = [&]() -> Status {
    if (new_max.empty()) return Status::OK();
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(silver_path, SubSnapshot(new_snap, [&](const delta::AddFile& f) {
                                                        return PartitionValue(f, "event_date") == new_max;
                                                      })));
    ASSIGN_OR_RETURN(auto r, c->Query("SELECT epoch_us(max(event_ts)) FROM (" + scan + ")"));
    if (r.row_count() && !r.IsNull(0, 0)) result.newest_event_us = r.GetInt64(0, 0);
    return Status::OK();
  };
  if (!incremental) RETURN_IF_ERROR(scan_newest());
  const std::string new_max_sql = new_max.empty() ? "DATE '0001-01-01'" : "DATE " + engine::QuoteLiteral(new_max);

  std::map<std::string, int64_t> table_us;
  int64_t t0 = clock_->MonotonicMicros();
  // How each table is written: a rebuild replaces partitions (`target`); an
  // incremental refresh deletes the rows `delete_pred` selects among
  // `candidates` (files that may hold them) and appends out_<table>.
  struct Write {
    Target target;
    std::vector<delta::AddFile> candidates;
    std::string delete_pred;  // over the table's columns (alias __t)
  };
  std::map<std::string, Write> writes;

  // Fixed inputs of the models: funnel steps, tracked traits.
  {
    std::string steps = "CREATE OR REPLACE TEMP TABLE funnel_steps (funnel VARCHAR, step_index INTEGER, "
                        "step_name VARCHAR, event_name VARCHAR, n_filters BIGINT);"
                        "CREATE OR REPLACE TEMP TABLE funnel_step_filters (funnel VARCHAR, step_index INTEGER, "
                        "json_path VARCHAR, value VARCHAR);";
    for (const auto& f : options_.funnels) {
      for (size_t i = 0; i < f.steps.size(); i++) {
        const FunnelStep& s = f.steps[i];
        steps += "INSERT INTO funnel_steps VALUES (" + engine::QuoteLiteral(f.name) + ", " + std::to_string(i + 1) +
                 ", " + engine::QuoteLiteral(s.name) + ", " + engine::QuoteLiteral(s.event) + ", " +
                 std::to_string(s.where.size()) + ");";
        for (const auto& [key, value] : s.where) {
          steps += "INSERT INTO funnel_step_filters VALUES (" + engine::QuoteLiteral(f.name) + ", " +
                   std::to_string(i + 1) + ", " + engine::QuoteLiteral(JsonPath(key)) + ", " +
                   engine::QuoteLiteral(value) + ");";
        }
      }
    }
    RETURN_IF_ERROR(c->Execute(steps));
    std::string traits_sql = "SELECT * FROM (VALUES ";
    for (size_t i = 0; i < options_.user_traits.size(); i++) {
      traits_sql += (i ? ", " : "") + std::string("(") + engine::QuoteLiteral(options_.user_traits[i]) + ", " +
                    std::to_string(i + 1) + ", " + engine::QuoteLiteral(JsonPath(options_.user_traits[i])) + ")";
    }
    traits_sql += ") t(trait, position, json_path)";
    if (options_.user_traits.empty())
      traits_sql = "SELECT NULL::VARCHAR AS trait, NULL::INTEGER AS position, NULL::VARCHAR AS json_path WHERE false";
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE tracked_traits AS " + traits_sql));
  }
  // dim_user's rows as `columns` from the model's trait_values list.
  std::string dim_user_columns = "user_key, version";
  std::string trait_list = "[";
  for (size_t i = 0; i < options_.user_traits.size(); i++) {
    const std::string q = engine::QuoteIdentifier(options_.user_traits[i]);
    dim_user_columns += ", trait_values[" + std::to_string(i + 1) + "] AS " + q;
    trait_list += (i ? ", " : "") + q;
  }
  trait_list += "]";
  dim_user_columns += ", valid_from, valid_to, is_current";

  // The session models' seeds: Gold's rows of the sessions that only grew
  // (filled by an incremental refresh; empty for a rebuild).
  RETURN_IF_ERROR(c->Execute(
      "CREATE OR REPLACE TEMP TABLE session_seeds (session_id VARCHAR, user_key VARCHAR, start_ts TIMESTAMP, "
      "end_ts TIMESTAMP, event_count BIGINT, page_views BIGINT, entry_path VARCHAR, exit_path VARCHAR, "
      "utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR, referrer_host VARCHAR, platform VARCHAR, "
      "device_type VARCHAR, browser_family VARCHAR, os_family VARCHAR, geo_country VARCHAR, converted BOOLEAN, "
      "revenue DOUBLE);"
      "CREATE OR REPLACE TEMP TABLE funnel_seeds (session_date DATE, session_id VARCHAR, user_key VARCHAR, "
      "funnel VARCHAR, steps_reached INTEGER);"
      "CREATE OR REPLACE TEMP TABLE session_days_seeds (session_date DATE, session_id VARCHAR, user_key VARCHAR, "
      "start_ts TIMESTAMP, event_date DATE, last_ts TIMESTAMP)"));

  if (!incremental) {
    // ---- rebuild: every partition, or those in the range, from Silver ----
    Target fact_target, session_target, feature_target, activity_target;
    const std::string date_list = "(SELECT DISTINCT event_date AS d FROM silver_all)";
    if (full) {
      fact_target.all = session_target.all = feature_target.all = activity_target.all = true;
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE t_fact_dates AS " + date_list + ";"
          "CREATE OR REPLACE TEMP TABLE t_session_dates AS " + date_list + ";"
          "CREATE OR REPLACE TEMP TABLE t_activity_dates AS " + date_list + ";"
          "CREATE OR REPLACE TEMP TABLE t_feature_dates AS " +
          (new_dates.empty() ? std::string("SELECT NULL::DATE AS d WHERE false")
                             : "SELECT CAST(range AS DATE) AS d FROM range(" +
                                   engine::QuoteLiteral(*new_dates.begin()) + "::TIMESTAMP, " +
                                   engine::QuoteLiteral(new_max) + "::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY)")));
    } else {
      const std::string from = engine::QuoteLiteral(plan->range->first), to = engine::QuoteLiteral(plan->range->second);
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE t_range AS SELECT CAST(range AS DATE) AS d FROM range(" + from +
          "::TIMESTAMP, " + to + "::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY);"
          "CREATE OR REPLACE TEMP TABLE t_fact_dates AS SELECT d FROM t_range;"
          "CREATE OR REPLACE TEMP TABLE t_session_dates AS SELECT d FROM t_range;"
          "CREATE OR REPLACE TEMP TABLE t_feature_dates AS SELECT d FROM t_range WHERE " +
          (new_dates.empty() ? std::string("false")
                             : "d BETWEEN DATE " + engine::QuoteLiteral(*new_dates.begin()) + " AND DATE " +
                                   engine::QuoteLiteral(new_max))));
      ASSIGN_OR_RETURN(auto range_dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_range"));
      fact_target.dates = session_target.dates = feature_target.dates = range_dates;
      // Every date a recomputed feature row windows over, so that none is read
      // from user_activity_daily partitions that may predate Silver's latest.
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE t_activity_dates AS SELECT DISTINCT CAST(d - CAST(r.range AS INTEGER) AS "
          "DATE) AS d FROM t_feature_dates, range(0, 30) r"));
      ASSIGN_OR_RETURN(activity_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_activity_dates"));
    }
    for (TableInfo* t : {&dim_user, &dim_campaign, &dim_device}) writes[t->name].target.all = true;
    writes[fact_events.name].target = fact_target;
    for (TableInfo* t : {&fact_sessions, &session_funnels, &session_days, &fact_funnel})
      writes[t->name].target = session_target;
    writes[activity.name].target = activity_target;
    writes[features.name].target = feature_target;

    // Dimensions: every key, from the whole of Silver.
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE out_user_identifies AS SELECT user_key, event_ts, event_id, properties "
        "FROM silver_all WHERE event_type = 'identify' AND user_key IS NOT NULL ORDER BY event_ts, event_id;"
        "CREATE OR REPLACE TEMP VIEW identify_scope AS SELECT * FROM out_user_identifies"));
    writes[user_identifies.name].target.all = true;
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE dim_user_rows AS " + ModelText("dim_user")));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_user AS SELECT " + dim_user_columns +
                               " FROM dim_user_rows;"
                               "CREATE OR REPLACE TEMP VIEW dim_user_all AS SELECT * FROM out_dim_user"));
    table_us[dim_user.name] = clock_->MonotonicMicros() - t0;
    t0 = clock_->MonotonicMicros();
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW group_scope AS SELECT * FROM silver_all"));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_campaign_groups AS " + ModelText("campaign_groups")));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_device_groups AS " + ModelText("device_groups")));
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP VIEW campaign_groups_scope AS SELECT * FROM out_campaign_groups;"
        "CREATE OR REPLACE TEMP VIEW device_groups_scope AS SELECT * FROM out_device_groups"));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_campaign AS " + ModelText("dim_campaign")));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_device AS " + ModelText("dim_device")));
    for (TableInfo* t : {&campaign_groups, &device_groups}) writes[t->name].target.all = true;
    table_us[dim_campaign.name] = clock_->MonotonicMicros() - t0;

    t0 = clock_->MonotonicMicros();
    {
      std::set<std::string> dates;
      if (!fact_target.all) {
        ASSIGN_OR_RETURN(dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_fact_dates"));
      }
      RETURN_IF_ERROR(silver_view("silver_scope_files", new_snap, [&](const delta::AddFile& f) {
        return fact_target.all || dates.count(PartitionValue(f, "event_date")) > 0;
      }));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW silver_scope AS SELECT * FROM silver_scope_files "
          "WHERE event_date IN (SELECT d FROM t_fact_dates)"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_events AS " + ModelText("fact_events")));
    }
    table_us[fact_events.name] = clock_->MonotonicMicros() - t0;

    t0 = clock_->MonotonicMicros();
    {
      // All events of the sessions that start on the dates being replaced: they
      // lie on or after the earliest such date.
      std::string min_date;
      if (!session_target.all) {
        ASSIGN_OR_RETURN(auto r, c->Query("SELECT strftime(min(d), '%Y-%m-%d') FROM t_session_dates"));
        min_date = r.IsNull(0, 0) ? "9999-12-31" : r.GetString(0, 0);
      }
      RETURN_IF_ERROR(silver_view("sessions_files", new_snap, [&](const delta::AddFile& f) {
        return session_target.all || PartitionValue(f, "event_date") >= min_date;
      }));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE sessions_scope AS SELECT * FROM sessions_files WHERE session_id IN ("
          "  SELECT session_id FROM sessions_files WHERE session_event_index = 1 "
          "  AND event_date IN (SELECT d FROM t_session_dates))"));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_session_daily AS " + ModelText("fact_session_daily")));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_session_funnels AS " + ModelText("session_funnels")));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_session_days AS " + ModelText("session_days")));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW funnel_sessions AS SELECT * FROM out_session_funnels"));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_funnel_daily AS " + ModelText("fact_funnel_daily")));
    }
    table_us[fact_sessions.name] = clock_->MonotonicMicros() - t0;

    t0 = clock_->MonotonicMicros();
    RETURN_IF_ERROR(silver_view("activity_scope", new_snap, [&](const delta::AddFile& f) {
      return activity_target.all || activity_target.dates.count(PartitionValue(f, "event_date")) > 0;
    }));
    RETURN_IF_ERROR(
        c->Execute("CREATE OR REPLACE TEMP TABLE out_user_activity_daily AS " + ModelText("user_activity_daily")));
    table_us[activity.name] = clock_->MonotonicMicros() - t0;

    t0 = clock_->MonotonicMicros();
    {
      // Per-user days: the partitions recomputed above, the others as
      // user_activity_daily holds them (equal to Silver's: their dates did not change).
      ASSIGN_OR_RETURN(auto window30, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), "
                                                  "'%Y-%m-%d') FROM t_feature_dates, range(0, 30) r"));
      ASSIGN_OR_RETURN(auto window7, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), "
                                                 "'%Y-%m-%d') FROM t_feature_dates, range(0, 7) r"));
      std::string user_days = "SELECT * FROM out_user_activity_daily";
      std::string days = "SELECT * FROM out_session_days";
      if (!activity_target.all) {
        RETURN_IF_ERROR(gold_view("gold_activity_kept", activity, partition_files(activity, [&](const std::string& d) {
                                    return window30.count(d) > 0 && !activity_target.dates.count(d);
                                  })));
        user_days += " UNION ALL BY NAME SELECT * FROM gold_activity_kept";
        // Sessions of the 7-day windows that start outside the replaced dates.
        RETURN_IF_ERROR(gold_view("gold_session_days_kept", session_days,
                                  partition_files(session_days, [&](const std::string& d) {
                                    return window7.count(d) > 0 && !session_target.dates.count(d);
                                  })));
        days += " UNION ALL BY NAME SELECT * FROM gold_session_days_kept";
      }
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW user_days AS " + user_days));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW session_days AS " + days));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE feature_keys AS SELECT DISTINCT u.user_key, f.d AS feature_date "
          "FROM t_feature_dates f JOIN user_days u ON u.event_date BETWEEN f.d - 29 AND f.d"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_user_features_daily AS " +
                                 ModelText("user_features_daily")));
    }
    table_us[features.name] = clock_->MonotonicMicros() - t0;
  } else {
    // ---- incremental: the rows that differ between the base version and now ----
    const int64_t t_diff = clock_->MonotonicMicros();
    std::optional<int> from_batch;
    if (plan->change) {
      ASSIGN_OR_RETURN(from_batch,
                       CompactionsBeforeChange(silver_path, old_snap->version, new_snap.version, *plan->change, fs_));
    }
    if (from_batch) {
      // The batch that made the latest version handed over what it changed.
      result.diff_from_batch = true;
      result.compactions_skipped = *from_batch;
      // Every row the batch deleted changed a Gold column (its user_key,
      // session_id or session_event_index: silver_sessions.h), so no row
      // cancels: its tables are read as they are (they outlive the refresh).
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP VIEW changed_old AS SELECT * FROM " + plan->change->removed_table + ";" +
                     "CREATE OR REPLACE TEMP VIEW changed_new AS SELECT * FROM " + plan->change->added_table + ";" +
                     "CREATE OR REPLACE TEMP VIEW changed AS "
                     "SELECT * FROM changed_old UNION ALL SELECT * FROM changed_new"));
    } else {
      ASSIGN_OR_RETURN(result.compactions_skipped, TakeInCompactions(silver->get(), new_snap, &*old_snap, fs_));
      RETURN_IF_ERROR(SilverDiff(c, silver_path, *old_snap, new_snap, fs_));
    }
    diff_us = clock_->MonotonicMicros() - t_diff;
    ASSIGN_OR_RETURN(
        auto n, c->Query("SELECT (SELECT count(*) FROM changed), (SELECT epoch_us(max(event_ts)) FROM changed_new)"));
    result.changed_rows = n.GetInt64(0, 0);
    std::optional<int64_t> base_newest;
    for (const auto& t : tables) {
      if (t.covered == base && t.covered_newest_us)
        base_newest = std::max(base_newest.value_or(INT64_MIN), *t.covered_newest_us);
    }
    if (base_newest) {
      result.newest_event_us = n.IsNull(0, 1) ? *base_newest : std::max(*base_newest, n.GetInt64(0, 1));
    } else {
      RETURN_IF_ERROR(scan_newest());
    }
    std::set<std::string> old_dates;
    for (const auto& f : old_snap->files) old_dates.insert(PartitionValue(f, "event_date"));
    old_dates.erase("");
    const std::string old_max = old_dates.empty() ? "" : *old_dates.rbegin();
    const std::string timeout = std::to_string(session_timeout_us_);

    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE t_users AS "
        "  SELECT DISTINCT user_key FROM changed WHERE event_type = 'identify' AND user_key IS NOT NULL;"
        "CREATE OR REPLACE TEMP TABLE t_campaigns AS "
        "  SELECT DISTINCT campaign_id FROM changed WHERE campaign_id IS NOT NULL;"
        "CREATE OR REPLACE TEMP TABLE t_devices AS "
        "  SELECT *, gold_device_key(platform, device_type, device_family, browser_family, os_family) AS device_key "
        "  FROM (SELECT DISTINCT platform, device_type, device_family, browser_family, os_family FROM changed);"
        "CREATE OR REPLACE TEMP TABLE k_sessions AS "
        "  SELECT DISTINCT session_id FROM changed WHERE session_id IS NOT NULL;"
        "CREATE OR REPLACE TEMP TABLE k_user_days AS SELECT DISTINCT user_key, event_date FROM changed;"));
    auto empty_table = [&](const char* name) -> Result<bool> {
      ASSIGN_OR_RETURN(auto r, c->Query(std::string("SELECT count(*) FROM ") + name));
      return r.GetInt64(0, 0) == 0;
    };
    ASSIGN_OR_RETURN(const bool no_users, empty_table("t_users"));

    // ---- dim_user (SCD2): the affected users' versions, recomputed ----
    t0 = clock_->MonotonicMicros();
    {
      // The touched users' identify history from gold.user_identifies (the
      // identify rows of Silver), with the changed ones replaced: no Silver scan.
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE out_user_identifies AS SELECT user_key, event_ts, event_id, properties "
          "FROM changed_new WHERE event_type = 'identify' AND user_key IS NOT NULL ORDER BY event_ts, event_id"));
      const std::string pred =
          "__t.event_id IN (SELECT event_id FROM changed WHERE event_type = 'identify' AND user_key IS NOT NULL)";
      ASSIGN_OR_RETURN(auto ivs, MergedIntervals(c, "SELECT epoch_us(event_ts), epoch_us(event_ts) FROM changed "
                                                    "WHERE event_type = 'identify' AND user_key IS NOT NULL",
                                                 kIntervalGapUs));
      writes[user_identifies.name] = {
          Target{}, FilesOverlapping(gold_snaps[user_identifies.name], "event_ts", "event_ts", ivs, 0), pred};
      RETURN_IF_ERROR(gold_view("gold_user_identifies", user_identifies,
                                no_users ? std::vector<delta::AddFile>{} : gold_snaps[user_identifies.name].files,
                                "__t.user_key IN (SELECT user_key FROM t_users) AND (" + pred + ") IS NOT TRUE"));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW identify_scope AS SELECT * FROM out_user_identifies "
          "UNION ALL BY NAME SELECT * FROM gold_user_identifies"));
    }
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE dim_user_rows AS " + ModelText("dim_user")));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_user AS SELECT " + dim_user_columns +
                               " FROM dim_user_rows"));
    RETURN_IF_ERROR(gold_view("gold_dim_user_old", dim_user, gold_snaps[dim_user.name].files));
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP VIEW dim_user_all AS SELECT * FROM out_dim_user UNION ALL BY NAME "
        "SELECT * FROM gold_dim_user_old WHERE user_key NOT IN (SELECT user_key FROM t_users)"));
    // The moment from which each affected user's version mapping changed:
    // a version that is new, gone or renumbered changes it from its
    // valid_from; one whose only change is valid_to, from the earlier end.
    const std::string shape = "SELECT user_key, version, to_json(" + trait_list +
                              ")::VARCHAR AS traits, valid_from, valid_to FROM ";
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE dim_user_since AS "
        "WITH o AS (" + shape + "gold_dim_user_old WHERE user_key IN (SELECT user_key FROM t_users)), "
        "n AS (" + shape + "out_dim_user), "
        "od AS (SELECT * FROM o EXCEPT SELECT * FROM n), nd AS (SELECT * FROM n EXCEPT SELECT * FROM o), "
        "pts AS (SELECT a.user_key, CASE WHEN b.user_key IS NULL THEN a.valid_from "
        "    ELSE least(a.valid_to, b.valid_to) END AS t "
        "  FROM od a LEFT JOIN nd b ON a.user_key = b.user_key AND a.version = b.version "
        "    AND a.traits IS NOT DISTINCT FROM b.traits AND a.valid_from = b.valid_from "
        "  UNION ALL SELECT b.user_key, CASE WHEN a.user_key IS NULL THEN b.valid_from "
        "    ELSE least(a.valid_to, b.valid_to) END "
        "  FROM nd b LEFT JOIN od a ON a.user_key = b.user_key AND a.version = b.version "
        "    AND a.traits IS NOT DISTINCT FROM b.traits AND a.valid_from = b.valid_from) "
        "SELECT user_key, min(t) AS since FROM pts GROUP BY user_key"));
    writes[dim_user.name] = {Target{}, gold_snaps[dim_user.name].files,
                             "__t.user_key IN (SELECT user_key FROM t_users)"};
    table_us[dim_user.name] = clock_->MonotonicMicros() - t0;

    // ---- fact_events: the changed events, and the events whose user_version changed ----
    t0 = clock_->MonotonicMicros();
    {
      const delta::Snapshot& fsnap = gold_snaps[fact_events.name];
      // Where the changed events' rows are (old and new event_ts: a table that
      // is ahead of the base version holds the new ones).
      ASSIGN_OR_RETURN(auto ivs, MergedIntervals(c, "SELECT epoch_us(event_ts), epoch_us(event_ts) FROM changed",
                                                 kIntervalGapUs));
      std::map<std::string, delta::AddFile> candidates;
      for (auto& f : FilesOverlapping(fsnap, "event_ts", "event_ts", ivs, 0)) candidates.emplace(f.path, f);
      ASSIGN_OR_RETURN(auto since, c->Query("SELECT epoch_us(min(since)) FROM dim_user_since"));
      std::vector<delta::AddFile> versioned_files;
      if (!since.IsNull(0, 0)) {
        versioned_files = delta::PruneFiles(
            fsnap, {delta::Predicate{"event_ts", ">=", FormatTimestampMicros(since.GetInt64(0, 0) - 1000), ""}});
      }
      for (auto& f : versioned_files) candidates.emplace(f.path, f);
      // Unchanged events of the affected users from the moment their version
      // mapping changed: their Gold rows with the new user_version.
      RETURN_IF_ERROR(gold_view("gold_fact_versioned", fact_events, versioned_files,
                                "EXISTS (SELECT 1 FROM dim_user_since u WHERE u.user_key = __t.user_key "
                                "AND CAST(__t.event_ts AS TIMESTAMP) >= u.since) "
                                "AND __t.event_id NOT IN (SELECT event_id FROM changed)"));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE fact_versioned AS SELECT f.* REPLACE (u.version AS user_version) "
          "FROM gold_fact_versioned f LEFT JOIN dim_user_all u ON u.user_key = f.user_key "
          "AND f.event_ts >= u.valid_from AND f.event_ts < coalesce(u.valid_to, 'infinity'::TIMESTAMP);"
          "CREATE OR REPLACE TEMP TABLE k_events AS SELECT event_id FROM changed "
          "UNION SELECT event_id FROM fact_versioned;"
          "CREATE OR REPLACE TEMP VIEW silver_scope AS SELECT * FROM changed_new"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_events AS SELECT * FROM (" +
                                 ModelText("fact_events") +
                                 ") UNION ALL BY NAME SELECT * FROM fact_versioned ORDER BY event_date, event_ts, "
                                 "event_id"));
      std::vector<delta::AddFile> files;
      for (auto& [p, f] : candidates) files.push_back(f);
      writes[fact_events.name] = {Target{}, files, "__t.event_id IN (SELECT event_id FROM k_events)"};
    }
    table_us[fact_events.name] = clock_->MonotonicMicros() - t0;

    // ---- sessions: the touched sessions, folded or recomputed ----
    // A session that only grew (none of its rows changed or went away, and its
    // new activity rows continue its index after Gold's last one) is folded:
    // Gold's rows as seeds plus its new rows, no Silver read. A fold is not
    // idempotent, so it needs every session table at the base version (a
    // refresh that failed between commits recomputes instead). The other
    // touched sessions are recomputed from their Silver rows.
    t0 = clock_->MonotonicMicros();
    std::set<std::string> funnel_dates;
    const bool fold_sessions = fact_sessions.covered == base && session_funnels.covered == base &&
                               session_days.covered == base && campaign_groups.covered == base &&
                               device_groups.covered == base;
    {
      // A touched session's Gold row spans [start_ts, end_ts]; every changed row
      // of it (old or new) lies within a timeout of that span.
      ASSIGN_OR_RETURN(auto ivs, MergedIntervals(c,
                                                 "SELECT epoch_us(event_ts), epoch_us(event_ts) FROM changed "
                                                 "WHERE session_id IS NOT NULL",
                                                 kIntervalGapUs));
      auto gold_files =
          FilesOverlapping(gold_snaps[fact_sessions.name], "start_ts", "end_ts", ivs, session_timeout_us_);
      auto find_old_sessions = [&]() -> Status {
        RETURN_IF_ERROR(gold_view("gold_sessions_touched", fact_sessions, gold_files,
                                  "__t.session_id IN (SELECT session_id FROM k_sessions)"));
        return c->Execute("CREATE OR REPLACE TEMP TABLE old_sessions AS SELECT * FROM gold_sessions_touched");
      };
      RETURN_IF_ERROR(find_old_sessions());
      // The touched sessions Gold must hold: those whose first event changed
      // (its old version) or did not (it is in both versions). If one was not
      // found where the rule above says (Silver rows that break the session
      // rule), look everywhere.
      ASSIGN_OR_RETURN(
          auto missing,
          c->Query("SELECT count(*) FROM (SELECT session_id FROM changed_old WHERE session_event_index = 1 "
                   "UNION SELECT session_id FROM k_sessions WHERE session_id NOT IN ("
                   "  SELECT session_id FROM changed_new WHERE session_event_index = 1 AND session_id IS NOT NULL)) e "
                   "WHERE session_id NOT IN (SELECT session_id FROM old_sessions)"));
      if (missing.GetInt64(0, 0) > 0) {
        gold_files = gold_snaps[fact_sessions.name].files;
        RETURN_IF_ERROR(find_old_sessions());
      }
      // The sessions that only grew; `seeded`: Gold holds a row of them (else
      // every row of them is new).
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE k_grown AS "
          "WITH n AS (SELECT session_id, count(*) AS k, min(session_event_index) AS lo, "
          "  max(session_event_index) AS hi FROM changed_new WHERE session_id IS NOT NULL GROUP BY session_id) "
          "SELECT n.session_id, o.session_id IS NOT NULL AS seeded FROM n LEFT JOIN old_sessions o USING (session_id) "
          "WHERE " +
          std::string(fold_sessions ? "true" : "false") +
          "  AND n.session_id NOT IN (SELECT session_id FROM changed_old WHERE session_id IS NOT NULL) "
          "  AND n.lo = coalesce(o.event_count, 0) + 1 AND n.hi = coalesce(o.event_count, 0) + n.k;"
          "CREATE OR REPLACE TEMP TABLE k_recomputed AS SELECT session_id FROM k_sessions "
          "WHERE session_id NOT IN (SELECT session_id FROM k_grown);"
          "INSERT INTO session_seeds BY NAME SELECT * EXCLUDE (session_date, duration_s, is_bounce) "
          "FROM old_sessions WHERE session_id IN (SELECT session_id FROM k_grown WHERE seeded)"));
      ASSIGN_OR_RETURN(auto counts, c->Query("SELECT count(*) FILTER (WHERE seeded), count(*) FILTER (WHERE NOT "
                                             "seeded), (SELECT count(*) FROM k_recomputed) FROM k_grown"));
      result.sessions_folded = counts.GetInt64(0, 0);
      result.sessions_new = counts.GetInt64(0, 1);
      result.sessions_recomputed = counts.GetInt64(0, 2);
      ASSIGN_OR_RETURN(auto seed_dates, QuerySet(c,
                                                 "SELECT DISTINCT strftime(session_date, '%Y-%m-%d') FROM "
                                                 "old_sessions WHERE session_id IN (SELECT session_id FROM "
                                                 "session_seeds)"));
      const std::string seeded = "__t.session_id IN (SELECT session_id FROM session_seeds)";
      RETURN_IF_ERROR(
          gold_view("gold_funnel_seeds", session_funnels, dates_files(session_funnels, seed_dates), seeded));
      RETURN_IF_ERROR(gold_view("gold_days_seeds", session_days, dates_files(session_days, seed_dates), seeded));
      RETURN_IF_ERROR(
          c->Execute("INSERT INTO funnel_seeds BY NAME SELECT * FROM gold_funnel_seeds;"
                     "INSERT INTO session_days_seeds BY NAME SELECT * FROM gold_days_seeds"));
      // A recomputed session's Silver rows now: its unchanged rows lie in its
      // old span, the others are changed rows.
      ASSIGN_OR_RETURN(auto silver_ivs,
                       MergedIntervals(c,
                                       "SELECT epoch_us(start_ts), epoch_us(end_ts) + " + timeout +
                                           " FROM old_sessions WHERE session_id IN (SELECT session_id FROM "
                                           "k_recomputed) UNION ALL SELECT epoch_us(event_ts), "
                                           "epoch_us(event_ts) FROM changed_new WHERE session_id IN (SELECT "
                                           "session_id FROM k_recomputed)",
                                       kIntervalGapUs));
      RETURN_IF_ERROR(silver_files_view("sessions_files", new_snap,
                                        FilesOverlapping(new_snap, "event_ts", "event_ts", silver_ivs, 0)));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE sessions_scope AS SELECT * FROM sessions_files "
          "WHERE session_id IN (SELECT session_id FROM k_recomputed) "
          "UNION ALL BY NAME SELECT * FROM changed_new WHERE session_id IN (SELECT session_id FROM k_grown)"));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_session_daily AS " + ModelText("fact_session_daily")));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_session_funnels AS " + ModelText("session_funnels")));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_session_days AS " + ModelText("session_days")));
      ASSIGN_OR_RETURN(funnel_dates, QuerySet(c,
                                              "SELECT strftime(session_date, '%Y-%m-%d') FROM old_sessions UNION "
                                              "SELECT strftime(session_date, '%Y-%m-%d') FROM "
                                              "out_fact_session_daily"));
      const std::string pred = "__t.session_id IN (SELECT session_id FROM k_sessions)";
      writes[fact_sessions.name] = {Target{}, gold_files, pred};
      writes[session_funnels.name] = {Target{}, dates_files(session_funnels, funnel_dates), pred};
      writes[session_days.name] = {Target{}, dates_files(session_days, funnel_dates), pred};
      // fact_funnel_daily: the affected dates' rows from their sessions' funnel rows.
      RETURN_IF_ERROR(gold_view("gold_funnel_sessions", session_funnels, dates_files(session_funnels, funnel_dates),
                                "__t.session_id NOT IN (SELECT session_id FROM k_sessions)"));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP VIEW funnel_sessions AS SELECT * FROM out_session_funnels "
                     "UNION ALL BY NAME SELECT * FROM gold_funnel_sessions"));
      RETURN_IF_ERROR(
          c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_funnel_daily AS " + ModelText("fact_funnel_daily")));
      writes[fact_funnel.name] = {Target{}, dates_files(fact_funnel, funnel_dates), "true"};
    }
    table_us[fact_sessions.name] = clock_->MonotonicMicros() - t0;

    // ---- dim_campaign, dim_device: folded from per-(key, user, session) groups ----
    t0 = clock_->MonotonicMicros();
    {
      // The groups of the touched sessions and sessionless events, from their
      // rows in scope (a session that only grew: its new rows, folded below with
      // Gold's groups); a dimension row from all the groups of its key.
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW group_scope AS SELECT * FROM sessions_scope "
          "UNION ALL BY NAME SELECT * FROM changed_new WHERE session_id IS NULL"));
      const std::string group_pred =
          "(__t.session_id IN (SELECT session_id FROM k_sessions) OR (__t.session_id IS NULL AND __t.event_id IN "
          "(SELECT event_id FROM changed WHERE session_id IS NULL)))";
      // A session's groups lie within its span (old and new), a sessionless
      // event's at its event_ts.
      ASSIGN_OR_RETURN(
          auto ivs,
          MergedIntervals(
              c,
              "SELECT epoch_us(start_ts), epoch_us(end_ts) + " + timeout +
                  " FROM old_sessions "
                  "UNION ALL SELECT epoch_us(start_ts), epoch_us(end_ts) + " +
                  timeout +
                  " FROM out_fact_session_daily "
                  "UNION ALL SELECT epoch_us(event_ts), epoch_us(event_ts) FROM changed WHERE session_id IS NULL",
              kIntervalGapUs));
      writes[campaign_groups.name] = {
          Target{}, FilesOverlapping(gold_snaps[campaign_groups.name], "first_ts", "last_ts", ivs, 0), group_pred};
      writes[device_groups.name] = {
          Target{}, FilesOverlapping(gold_snaps[device_groups.name], "first_ts", "last_ts", ivs, 0), group_pred};
      // The groups of the sessions that only grew: Gold's (their old rows)
      // folded with those of their new rows, as a dimension folds groups.
      const std::string seeded = "__t.session_id IN (SELECT session_id FROM session_seeds)";
      RETURN_IF_ERROR(
          gold_view("gold_campaign_seeds", campaign_groups, writes[campaign_groups.name].candidates, seeded));
      RETURN_IF_ERROR(gold_view("gold_device_seeds", device_groups, writes[device_groups.name].candidates, seeded));
      const std::string utm_fold = [] {
        std::string out;
        for (const char* f : {"utm_source", "utm_medium", "utm_campaign"}) {
          out += std::string(", arg_min(") + f + ", " + f + "_at) AS " + f + ", min(" + f + "_at) AS " + f + "_at";
        }
        return out;
      }();
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE out_campaign_groups AS SELECT campaign_id, user_key, session_id, event_id, "
          "sum(events)::BIGINT AS events, min(first_ts) AS first_ts, max(last_ts) AS last_ts" +
          utm_fold + " FROM (SELECT * FROM (" + ModelText("campaign_groups") +
          ") UNION ALL BY NAME SELECT * FROM gold_campaign_seeds) "
          "GROUP BY ALL ORDER BY campaign_id, user_key, session_id, event_id"));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE out_device_groups AS SELECT platform, device_type, device_family, "
          "browser_family, os_family, user_key, session_id, event_id, sum(events)::BIGINT AS events, "
          "min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM (SELECT * FROM (" +
          ModelText("device_groups") +
          ") UNION ALL BY NAME SELECT * FROM gold_device_seeds) GROUP BY ALL ORDER BY user_key, session_id, event_id"));
      RETURN_IF_ERROR(gold_view("gold_campaign_groups", campaign_groups, gold_snaps[campaign_groups.name].files,
                                "__t.campaign_id IN (SELECT campaign_id FROM t_campaigns) AND " + group_pred +
                                    " IS NOT TRUE"));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW campaign_groups_scope AS SELECT * FROM out_campaign_groups "
          "WHERE campaign_id IN (SELECT campaign_id FROM t_campaigns) "
          "UNION ALL BY NAME SELECT * FROM gold_campaign_groups"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_campaign AS " + ModelText("dim_campaign")));
      writes[dim_campaign.name] = {Target{}, gold_snaps[dim_campaign.name].files,
                                   "__t.campaign_id IN (SELECT campaign_id FROM t_campaigns)"};
      // Profiles matched on their five columns (NULL-safe).
      const std::string profile_match =
          "EXISTS (SELECT 1 FROM t_devices d WHERE g.platform IS NOT DISTINCT FROM d.platform AND "
          "g.device_type IS NOT DISTINCT FROM d.device_type AND g.device_family IS NOT DISTINCT FROM "
          "d.device_family AND g.browser_family IS NOT DISTINCT FROM d.browser_family AND "
          "g.os_family IS NOT DISTINCT FROM d.os_family)";
      RETURN_IF_ERROR(gold_view("gold_device_groups", device_groups, gold_snaps[device_groups.name].files,
                                group_pred + " IS NOT TRUE"));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW device_groups_scope AS SELECT * FROM ("
          "  SELECT * FROM out_device_groups UNION ALL BY NAME SELECT * FROM gold_device_groups) g WHERE " +
          profile_match));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_device AS " + ModelText("dim_device")));
      writes[dim_device.name] = {Target{}, gold_snaps[dim_device.name].files,
                                 "__t.device_key IN (SELECT device_key FROM t_devices)"};
    }
    table_us[dim_campaign.name] = clock_->MonotonicMicros() - t0;

    // ---- user_activity_daily: the touched (user, date) rows ----
    t0 = clock_->MonotonicMicros();
    ASSIGN_OR_RETURN(auto activity_dates, QuerySet(c, "SELECT strftime(event_date, '%Y-%m-%d') FROM k_user_days"));
    const std::string user_day_pred =
        "EXISTS (SELECT 1 FROM k_user_days k WHERE k.user_key IS NOT DISTINCT FROM __t.user_key "
        "AND k.event_date = __t.event_date)";
    {
      if (activity.covered == base) {
        // Sums fold exactly: the rows as Gold holds them (at the base version),
        // plus the new versions of the changed Silver rows, minus the old ones.
        RETURN_IF_ERROR(gold_view("gold_activity_touched", activity, dates_files(activity, activity_dates),
                                  user_day_pred));
        RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW activity_scope AS SELECT * FROM changed_new"));
        RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE activity_plus AS " +
                                   ModelText("user_activity_daily")));
        RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW activity_scope AS SELECT * FROM changed_old"));
        RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE activity_minus AS " +
                                   ModelText("user_activity_daily")));
        RETURN_IF_ERROR(c->Execute(
            "CREATE OR REPLACE TEMP TABLE out_user_activity_daily AS "
            "SELECT event_date, user_key, sum(events)::BIGINT AS events, sum(page_views)::BIGINT AS page_views, "
            "sum(product_views)::BIGINT AS product_views, sum(add_to_cart)::BIGINT AS add_to_cart, "
            "sum(checkouts)::BIGINT AS checkouts, sum(purchases)::BIGINT AS purchases, "
            "sum(revenue)::DECIMAL(38, 6) AS revenue FROM ("
            "  SELECT event_date, user_key, events, page_views, product_views, add_to_cart, checkouts, purchases, "
            "    revenue FROM gold_activity_touched"
            "  UNION ALL SELECT event_date, user_key, events, page_views, product_views, add_to_cart, checkouts, "
            "    purchases, revenue FROM activity_plus"
            "  UNION ALL SELECT event_date, user_key, -events, -page_views, -product_views, -add_to_cart, "
            "    -checkouts, -purchases, -revenue FROM activity_minus) "
            "GROUP BY event_date, user_key HAVING sum(events) > 0 ORDER BY event_date, user_key"));
      } else {
        // The table is not at the base version (a refresh failed between its
        // commits): recompute the touched rows from Silver instead of folding.
        RETURN_IF_ERROR(silver_view("activity_files", new_snap, [&](const delta::AddFile& f) {
          return activity_dates.count(PartitionValue(f, "event_date")) > 0;
        }));
        RETURN_IF_ERROR(c->Execute(
            "CREATE OR REPLACE TEMP VIEW activity_scope AS SELECT * FROM activity_files __t WHERE " + user_day_pred));
        RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_user_activity_daily AS " +
                                   ModelText("user_activity_daily")));
      }
      writes[activity.name] = {Target{}, dates_files(activity, activity_dates), user_day_pred};
    }
    table_us[activity.name] = clock_->MonotonicMicros() - t0;

    // ---- user_features_daily: (user, D) for touched (user, e) and D in [e, e+29];
    // every user of a new newest date; nothing after the newest date ----
    t0 = clock_->MonotonicMicros();
    {
      std::string new_feature_dates = "SELECT NULL::DATE AS d WHERE false";
      if (!new_max.empty() && (old_max.empty() || new_max > old_max)) {
        const std::string lo = old_max.empty() ? *new_dates.begin() : old_max;
        new_feature_dates = "SELECT CAST(range AS DATE) AS d FROM range(" + engine::QuoteLiteral(lo) +
                            "::TIMESTAMP" + (old_max.empty() ? "" : " + INTERVAL 1 DAY") + ", " +
                            engine::QuoteLiteral(new_max) + "::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY)";
      }
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE t_new_feature_dates AS " + new_feature_dates + ";"
          "CREATE OR REPLACE TEMP TABLE t_touched_keys AS SELECT DISTINCT user_key, "
          "  CAST(event_date + CAST(r.range AS INTEGER) AS DATE) AS feature_date "
          "FROM k_user_days, range(0, 30) r WHERE event_date + CAST(r.range AS INTEGER) <= " + new_max_sql + ";"
          "CREATE OR REPLACE TEMP TABLE t_feature_dates AS SELECT d FROM t_new_feature_dates "
          "UNION SELECT DISTINCT feature_date FROM t_touched_keys"));
      ASSIGN_OR_RETURN(auto window30, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), "
                                                  "'%Y-%m-%d') FROM t_feature_dates, range(0, 30) r"));
      ASSIGN_OR_RETURN(auto window7, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), "
                                                 "'%Y-%m-%d') FROM t_feature_dates, range(0, 7) r"));
      RETURN_IF_ERROR(gold_view("gold_activity_window", activity, dates_files(activity, window30),
                                "NOT " + user_day_pred));
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP VIEW activity_now AS SELECT * FROM out_user_activity_daily "
          "UNION ALL BY NAME SELECT * FROM gold_activity_window;"
          "CREATE OR REPLACE TEMP TABLE feature_keys AS SELECT * FROM t_touched_keys "
          "UNION SELECT DISTINCT a.user_key, n.d FROM t_new_feature_dates n "
          "  JOIN activity_now a ON a.event_date BETWEEN n.d - 29 AND n.d;"
          "CREATE OR REPLACE TEMP VIEW user_days AS SELECT * FROM activity_now "
          "WHERE user_key IN (SELECT user_key FROM feature_keys)"));
      RETURN_IF_ERROR(gold_view("gold_session_days_window", session_days, dates_files(session_days, window7),
                                "__t.session_id NOT IN (SELECT session_id FROM k_sessions) "
                                "AND __t.user_key IN (SELECT user_key FROM feature_keys)"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW session_days AS SELECT * FROM out_session_days "
                                 "UNION ALL BY NAME SELECT * FROM gold_session_days_window"));
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_user_features_daily AS " +
                                 ModelText("user_features_daily")));
      ASSIGN_OR_RETURN(auto key_dates, QuerySet(c, "SELECT DISTINCT strftime(feature_date, '%Y-%m-%d') FROM "
                                                   "feature_keys"));
      writes[features.name] = {
          Target{}, partition_files(features, [&](const std::string& d) {
            return key_dates.count(d) > 0 || d > (new_max.empty() ? std::string("0000-00-00") : new_max);
          }),
          "__t.feature_date > " + new_max_sql +
              " OR EXISTS (SELECT 1 FROM feature_keys k WHERE k.user_key IS NOT DISTINCT FROM __t.user_key "
              "AND k.feature_date = __t.feature_date)"};
    }
    table_us[features.name] = clock_->MonotonicMicros() - t0;
  }

  // ---- one commit per table ----
  auto commit_info = [&](int64_t covered) {
    std::ostringstream os;
    os << "{\"mode\":\"" << plan->mode << "\",\"app_id\":" << JsonString(plan->app_id)
       << ",\"batch_id\":" << plan->batch_id << ",\"silver_version\":" << covered
       << ",\"base_version\":" << base << ",\"refreshed_at_us\":" << refreshed_at_us
       << ",\"newest_event_ts_us\":" << TimestampJson(result.newest_event_us) << "}";
    return os.str();
  };
  auto write = [&](TableInfo& t) -> Status {
    const int64_t tw = clock_->MonotonicMicros();
    GoldTableRefresh& out = result.tables[t.name];
    const Write& w = writes[t.name];
    if (t.holds_batch) {
      out.us = table_us[t.name];
      return Status::OK();  // this table already holds the batch (a re-run)
    }
    auto txn = t.table->StartTransaction();
    const bool dim = t.partition_columns.empty();
    const std::string column = dim ? "" : t.partition_columns[0];
    const std::string out_table = "out_" + t.name.substr(5);
    std::set<std::string> dates;
    int64_t removed = 0;
    if (incremental) {
      ASSIGN_OR_RETURN(RowDeletion d, DeleteMatchingRows(txn.get(), c, t.table->path(), txn->read_snapshot(),
                                                         w.candidates, w.delete_pred, column));
      out.rows_deleted = d.rows_deleted;
      out.rows_rewritten = d.rows_rewritten;
      removed = d.files_touched;
      dates = d.partitions;
    } else {
      for (const auto& f : txn->read_snapshot().files) {
        if (dim || w.target.Matches(PartitionValue(f, column))) {
          txn->RemoveFile(f);
          removed++;
        }
      }
    }
    ASSIGN_OR_RETURN(auto n, c->Query("SELECT count(*) FROM " + out_table));
    out.rows_written = n.GetInt64(0, 0);
    if (out.rows_written > 0) {
      ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(c, "SELECT * FROM " + out_table));
      (void)adds;
    }
    out.replaced_all = !incremental && (dim || w.target.all);
    if (!dim) {
      if (incremental || w.target.all) {
        ASSIGN_OR_RETURN(auto written, QuerySet(c, "SELECT DISTINCT strftime(" + column + ", '%Y-%m-%d') FROM " +
                                                       out_table));
        dates.insert(written.begin(), written.end());
      } else {
        dates = w.target.dates;
      }
      out.dates.assign(dates.begin(), dates.end());
    }
    // Covered version: a refresh or full rebuild covers the latest silver; a
    // partial rebuild leaves the table where it was (a later refresh re-diffs).
    const int64_t covered = (plan->mode == "refresh" || full || t.covered == new_snap.version) ? new_snap.version
                                                                                             : t.covered;
    txn->SetOperation(plan->mode == "refresh" ? "STREAMING UPDATE" : "WRITE",
                      {{"mode", plan->mode == "refresh" ? "Update" : "Overwrite"},
                       {"queryId", plan->app_id},
                       {"epochId", std::to_string(plan->batch_id)}});
    txn->SetOperationMetrics({{"numRemovedFiles", std::to_string(removed)},
                              {"numAddedFiles", std::to_string(txn->staged_adds().size())},
                              {"numDeletedRows", std::to_string(out.rows_deleted)},
                              {"numCopiedRows", std::to_string(out.rows_rewritten)},
                              {"numOutputRows", std::to_string(out.rows_written + out.rows_rewritten)}});
    txn->SetCommitInfoField(kCommitInfoKey, commit_info(covered));
    if (!plan->app_id.empty()) txn->SetAppTransaction(plan->app_id, plan->batch_id);
    ASSIGN_OR_RETURN(out.version, txn->Commit());
    out.us = table_us[t.name] + clock_->MonotonicMicros() - tw;
    return Status::OK();
  };
  for (auto& t : tables) RETURN_IF_ERROR(write(t));

  // ---- system.gold_refreshes: one row per table committed ----
  {
    std::ostringstream sql;
    bool first = true;
    for (const auto& t : tables) {
      const GoldTableRefresh& r = result.tables[t.name];
      if (r.version < 0) continue;
      sql << (first ? "" : " UNION ALL ") << "SELECT " << engine::QuoteLiteral(SqlName(t.name))
          << " AS table_name, " << engine::QuoteLiteral(plan->mode) << " AS mode, "
          << (plan->app_id.empty() ? "NULL" : engine::QuoteLiteral(plan->app_id)) << " AS app_id, "
          << (plan->batch_id >= 0 ? std::to_string(plan->batch_id) : "NULL") << "::BIGINT AS batch_id, "
          << "make_timestamp(" << refreshed_at_us << "::BIGINT) AS refreshed_at, " << new_snap.version
          << "::BIGINT AS silver_version, " << base << "::BIGINT AS base_version, "
          << (result.newest_event_us ? "make_timestamp(" + std::to_string(*result.newest_event_us) + "::BIGINT)"
                                     : std::string("NULL::TIMESTAMP"))
          << " AS newest_event_ts, " << r.version << "::BIGINT AS table_version, " << r.dates.size()
          << "::BIGINT AS partitions_replaced, " << (r.replaced_all ? "true" : "false") << " AS replaced_all, "
          << r.rows_written << "::BIGINT AS rows_written, " << r.rows_deleted << "::BIGINT AS rows_deleted, "
          << r.rows_rewritten << "::BIGINT AS rows_rewritten, " << result.changed_rows
          << "::BIGINT AS silver_rows_changed, " << r.us / 1000.0 << "::DOUBLE AS duration_ms";
      first = false;
    }
    if (!first) {
      ASSIGN_OR_RETURN(auto refreshes, delta::Table::OpenOrCreate(JoinPath(lake_dir_, kGoldRefreshesTable),
                                                                  RefreshesSchema(), {}, {}, db_, fs_, clock_));
      ASSIGN_OR_RETURN(int64_t evolved, refreshes->EvolveSchema(RefreshesSchema()));
      (void)evolved;
      auto txn = refreshes->StartTransaction();
      const auto& txns = txn->read_snapshot().app_txn_versions;
      auto it = txns.find(plan->app_id);
      if (plan->app_id.empty() || it == txns.end() || it->second < plan->batch_id) {
        ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(c, sql.str()));
        (void)adds;
        txn->SetBlindAppend(true);
        txn->SetOperation("WRITE", {{"mode", "Append"}});
        if (!plan->app_id.empty()) txn->SetAppTransaction(plan->app_id, plan->batch_id);
        ASSIGN_OR_RETURN(int64_t v, txn->Commit());
        (void)v;
      }
    }
  }
  result.total_us = clock_->MonotonicMicros() - t_start;
  if (incremental) {
    spdlog::info(
        "gold: refreshed from silver.events v{} to v{} in {:.0f} ms (diff {:.0f} ms, {}): {} Silver rows "
        "changed; sessions {} folded, {} new, {} recomputed; {} compaction(s) not re-read",
        result.base_version, result.silver_version, result.total_us / 1000.0, diff_us / 1000.0,
        result.diff_from_batch ? "the batch's change" : "read from the files", result.changed_rows,
        result.sessions_folded, result.sessions_new, result.sessions_recomputed, result.compactions_skipped);
  }
  return result;
}

}  // namespace clicklake::pipeline::gold
