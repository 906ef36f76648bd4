#include "pipeline/gold/gold.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <functional>
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

// The silver.events columns Gold reads. The incremental diff compares rows on
// exactly these, so a change in any of them reaches every model that reads it.
const char* kSilverColumns =
    "event_id, event_type, event_name, CAST(event_ts AS TIMESTAMP) AS event_ts, event_date, user_key, session_id, "
    "session_event_index, page_path, referrer_host, utm_source, utm_medium, utm_campaign, campaign_id, platform, "
    "device_type, device_family, browser_family, os_family, geo_country, revenue, currency, properties, source, "
    "log_partition, log_offset";

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
              Dbl("duration_ms")};
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

// The silver version recorded by the newest Gold commit of a table (-1: none).
Result<int64_t> CoveredVersion(delta::Table* table, int64_t latest, FileSystem* fs) {
  for (int64_t v = latest; v >= 0 && v > latest - kMaxCommitsToWalk; v--) {
    auto info = delta::ReadCommitInfo(table->path(), v, fs);
    if (!info.ok()) {
      if (info.status().IsNotFound()) continue;
      return info.status();
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(*info).get(doc)) continue;
    int64_t silver_version;
    if (doc[kCommitInfoKey]["silver_version"].get(silver_version)) continue;
    return silver_version;
  }
  return -1;
}

// Which partitions of a table a run replaces.
struct Target {
  bool all = false;
  std::set<std::string> dates;
  std::string after;  // also every partition > after (non-empty only)

  bool Matches(const std::string& d) const { return all || dates.count(d) || (!after.empty() && d > after); }
};

std::string TimestampJson(std::optional<int64_t> us) {
  if (!us) return "null";
  return std::to_string(*us);
}

}  // namespace

// ---- options ----

namespace {

// One entry of an array of tables (Config::GetTableArrayToml): a standard
// table's text is a TOML document; an inline table's is "{ ... }". Returns the
// parsed config and the key prefix of its fields.
Result<std::pair<Config, std::string>> ParseTableEntry(const std::string& text) {
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i != std::string::npos && text[i] == '{') {
    ASSIGN_OR_RETURN(Config c, Config::Parse("entry = " + text));
    return std::make_pair(std::move(c), std::string("entry."));
  }
  ASSIGN_OR_RETURN(Config c, Config::Parse(text));
  return std::make_pair(std::move(c), std::string());
}

}  // namespace

std::vector<Funnel> GoldOptions::DefaultFunnels() {
  Funnel f;
  f.name = "purchase";
  for (const char* e : {"product_viewed", "product_added", "checkout_started", "order_completed"})
    f.steps.push_back(FunnelStep{e, e, {}});
  return {f};
}

Result<GoldOptions> GoldOptions::FromConfig(const Config& config) {
  GoldOptions o;
  const std::vector<std::string> funnels = config.GetTableArrayToml("gold.funnels");
  std::set<std::string> names;
  for (const auto& text : funnels) {
    ASSIGN_OR_RETURN(auto parsed, ParseTableEntry(text));
    const Config& fc = parsed.first;
    const std::string& fp = parsed.second;
    Funnel f;
    f.name = fc.GetString(fp + "name", "");
    if (f.name.empty()) return Status::InvalidArgument("[[gold.funnels]]: every funnel needs a name");
    if (!names.insert(f.name).second)
      return Status::InvalidArgument("[[gold.funnels]]: funnel '" + f.name + "' is defined twice");
    for (const auto& step_text : fc.GetTableArrayToml(fp + "steps")) {
      ASSIGN_OR_RETURN(auto step_parsed, ParseTableEntry(step_text));
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
};

GoldStage::GoldStage(GoldOptions options, std::string lake_dir, engine::Database* db, FileSystem* fs, Clock* clock)
    : options_(std::move(options)), lake_dir_(std::move(lake_dir)), db_(db), fs_(fs), clock_(clock) {}

GoldStage::~GoldStage() = default;

Result<std::unique_ptr<GoldStage>> GoldStage::Open(const Config& config, const std::string& lake_dir,
                                                   engine::Database* db, FileSystem* fs, Clock* clock) {
  ASSIGN_OR_RETURN(GoldOptions options, GoldOptions::FromConfig(config));
  if (ModelText("fact_events").empty()) return Status::Internal("the Gold models' SQL is not embedded");
  return std::unique_ptr<GoldStage>(new GoldStage(std::move(options), lake_dir, db, fs, clock));
}

Result<GoldRefreshResult> GoldStage::Refresh(const std::string& app_id, int64_t batch_id) {
  Plan plan;
  plan.mode = "refresh";
  plan.app_id = app_id;
  plan.batch_id = batch_id;
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
  struct TableInfo {
    std::string name;
    delta::Schema schema;
    std::vector<std::string> partition_columns;
    std::unique_ptr<delta::Table> table;
    std::string sort_by;  // delta.clicklake.sortBy: the order OPTIMIZE keeps
    int64_t covered = -1;
    bool holds_batch = false;
  };
  std::vector<TableInfo> tables;
  tables.push_back({Gold("dim_user"), DimUserSchema(options_.user_traits), {}, nullptr});
  tables.push_back({Gold("dim_campaign"), DimCampaignSchema(), {}, nullptr});
  tables.push_back({Gold("dim_device"), DimDeviceSchema(), {}, nullptr});
  tables.push_back({Gold("fact_events"), FactEventsSchema(), {"event_date"}, nullptr, "event_ts,event_id"});
  tables.push_back({Gold("fact_session_daily"), SessionSchema(), {"session_date"}, nullptr, "start_ts,session_id"});
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
      ASSIGN_OR_RETURN(t.covered, CoveredVersion(t.table.get(), snap.version, fs_));
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

  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  engine::Connection* c = conn.get();
  RETURN_IF_ERROR(c->Execute("SET TimeZone = 'UTC'"));
  RETURN_IF_ERROR(c->Execute(ModelText("macros")));

  // Scans of silver.events (the Gold columns) over a subset of its files.
  auto silver_view = [&](const std::string& name, const delta::Snapshot& snap,
                         const std::function<bool(const delta::AddFile&)>& keep) -> Status {
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(silver_path, SubSnapshot(snap, keep)));
    return c->Execute("CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT " + kSilverColumns + " FROM (" + scan +
                      ")");
  };
  auto all_files = [](const delta::AddFile&) { return true; };
  RETURN_IF_ERROR(silver_view("silver_all", new_snap, all_files));
  auto table_view = [&](const std::string& name, TableInfo& t) -> Status {
    ASSIGN_OR_RETURN(delta::Snapshot snap, t.table->LoadSnapshot());
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(t.table->path(), snap));
    return c->Execute("CREATE OR REPLACE TEMP VIEW " + name + " AS " + scan);
  };
  TableInfo& dim_user = tables[0];
  TableInfo& dim_campaign = tables[1];
  TableInfo& dim_device = tables[2];
  TableInfo& fact_events = tables[3];
  TableInfo& fact_sessions = tables[4];
  TableInfo& fact_funnel = tables[5];
  TableInfo& activity = tables[6];
  TableInfo& features = tables[7];

  // Silver's event dates (partition values) now and at the base version.
  std::set<std::string> new_dates;
  for (const auto& f : new_snap.files) new_dates.insert(PartitionValue(f, "event_date"));
  new_dates.erase("");
  const std::string new_max = new_dates.empty() ? "" : *new_dates.rbegin();
  if (!new_max.empty()) {
    ASSIGN_OR_RETURN(std::string scan,
                     delta::ScanSql(silver_path, SubSnapshot(new_snap, [&](const delta::AddFile& f) {
                                      return PartitionValue(f, "event_date") == new_max;
                                    })));
    ASSIGN_OR_RETURN(auto r, c->Query("SELECT epoch_us(max(event_ts)) FROM (" + scan + ")"));
    if (r.row_count() && !r.IsNull(0, 0)) result.newest_event_us = r.GetInt64(0, 0);
  }

  // ---- 1. What to recompute: date sets per table and key sets per dimension ----
  // Temp tables: t_fact_dates, t_session_dates, t_feature_dates (d DATE);
  // t_activity_dates (d DATE); t_users, t_campaigns, t_devices (keys) unless dims_all.
  Target fact_target, session_target, feature_target, activity_target;
  bool dims_all = false;
  const std::string date_list = "(SELECT DISTINCT event_date AS d FROM silver_all)";
  if (full) {
    fact_target.all = session_target.all = feature_target.all = activity_target.all = true;
    dims_all = true;
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE t_fact_dates AS " + date_list + ";"
        "CREATE OR REPLACE TEMP TABLE t_session_dates AS " + date_list + ";"
        "CREATE OR REPLACE TEMP TABLE t_activity_dates AS " + date_list + ";"
        "CREATE OR REPLACE TEMP TABLE t_feature_dates AS " +
        (new_dates.empty() ? std::string("SELECT NULL::DATE AS d WHERE false")
                           : "SELECT CAST(range AS DATE) AS d FROM range(" + engine::QuoteLiteral(*new_dates.begin()) +
                                 "::TIMESTAMP, " + engine::QuoteLiteral(new_max) +
                                 "::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY)")));
  } else if (plan->range) {
    dims_all = true;
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
        "CREATE OR REPLACE TEMP TABLE t_activity_dates AS SELECT DISTINCT CAST(d - CAST(r.range AS INTEGER) AS DATE) "
        "AS d FROM t_feature_dates, range(0, 30) r"));
    ASSIGN_OR_RETURN(activity_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_activity_dates"));
  } else {
    // Incremental: the rows that differ between the base version and now, from
    // the files removed and added in between (whatever files silver rewrote).
    std::set<std::string> old_paths, new_paths;
    for (const auto& f : old_snap->files) old_paths.insert(f.path);
    for (const auto& f : new_snap.files) new_paths.insert(f.path);
    RETURN_IF_ERROR(silver_view("silver_removed", *old_snap,
                                [&](const delta::AddFile& f) { return !new_paths.count(f.path); }));
    RETURN_IF_ERROR(silver_view("silver_added", new_snap,
                                [&](const delta::AddFile& f) { return !old_paths.count(f.path); }));
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE changed_old AS "
        "  SELECT * FROM silver_removed EXCEPT ALL SELECT * FROM silver_added;"
        "CREATE OR REPLACE TEMP TABLE changed_new AS "
        "  SELECT * FROM silver_added EXCEPT ALL SELECT * FROM silver_removed;"
        "CREATE OR REPLACE TEMP TABLE changed AS "
        "  SELECT * FROM changed_old UNION ALL SELECT * FROM changed_new;"));
    ASSIGN_OR_RETURN(auto n, c->Query("SELECT count(*) FROM changed"));
    result.changed_rows = n.GetInt64(0, 0);
    std::set<std::string> old_dates;
    for (const auto& f : old_snap->files) old_dates.insert(PartitionValue(f, "event_date"));
    old_dates.erase("");
    const std::string old_max = old_dates.empty() ? "" : *old_dates.rbegin();

    RETURN_IF_ERROR(table_view("gold_sessions_old", fact_sessions));
    RETURN_IF_ERROR(table_view("gold_dim_user_old", dim_user));
    RETURN_IF_ERROR(c->Execute(
        // Sessions: the start date of every new or changed session, and the
        // date Gold had for every changed session id.
        "CREATE OR REPLACE TEMP TABLE t_session_dates AS "
        "  SELECT event_date AS d FROM changed_new WHERE session_event_index = 1 "
        "  UNION SELECT session_date FROM gold_sessions_old "
        "    WHERE session_id IN (SELECT session_id FROM changed WHERE session_id IS NOT NULL);"
        "CREATE OR REPLACE TEMP TABLE t_users AS "
        "  SELECT DISTINCT user_key FROM changed WHERE event_type = 'identify' AND user_key IS NOT NULL;"
        "CREATE OR REPLACE TEMP TABLE t_campaigns AS "
        "  SELECT DISTINCT campaign_id FROM changed WHERE campaign_id IS NOT NULL;"
        "CREATE OR REPLACE TEMP TABLE t_devices AS "
        "  SELECT *, gold_device_key(platform, device_type, device_family, browser_family, os_family) AS device_key "
        "  FROM (SELECT DISTINCT platform, device_type, device_family, browser_family, os_family FROM changed);"));
    // Features: a changed event on day e changes the rows of [e, e+29]; and the
    // dates between the old and the new newest event date appear or vanish.
    std::string extra;
    if (!old_max.empty() && !new_max.empty() && old_max != new_max) {
      const std::string lo = engine::QuoteLiteral(std::min(old_max, new_max));
      const std::string hi = engine::QuoteLiteral(std::max(old_max, new_max));
      extra = " UNION SELECT CAST(range AS DATE) FROM range(" + lo + "::TIMESTAMP + INTERVAL 1 DAY, " + hi +
              "::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY)";
    }
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE t_feature_dates AS SELECT DISTINCT d FROM ("
        "  SELECT CAST(e.event_date + CAST(r.range AS INTEGER) AS DATE) AS d "
        "  FROM (SELECT DISTINCT event_date FROM changed) e, range(0, 30) r" + extra +
        ") WHERE " + (new_max.empty() ? std::string("false") : "d <= DATE " + engine::QuoteLiteral(new_max))));
    ASSIGN_OR_RETURN(session_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_session_dates"));
    ASSIGN_OR_RETURN(feature_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_feature_dates"));
    // A user_activity_daily partition depends only on Silver's rows of its date.
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP TABLE t_activity_dates AS SELECT DISTINCT event_date AS d FROM changed"));
    ASSIGN_OR_RETURN(activity_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_activity_dates"));
    feature_target.after = new_max.empty() ? "0000-00-00" : new_max;
  }

  // Key sets that are empty need no Silver scan.
  auto empty_table = [&](const char* name) -> Result<bool> {
    if (dims_all) return false;
    ASSIGN_OR_RETURN(auto r, c->Query(std::string("SELECT count(*) FROM ") + name));
    return r.GetInt64(0, 0) == 0;
  };
  ASSIGN_OR_RETURN(const bool no_users, empty_table("t_users"));
  ASSIGN_OR_RETURN(const bool no_campaigns, empty_table("t_campaigns"));
  ASSIGN_OR_RETURN(const bool no_devices, empty_table("t_devices"));

  // ---- 2. dim_user (SCD2): recompute the affected users, diff the versions ----
  int64_t t0 = clock_->MonotonicMicros();
  std::map<std::string, int64_t> table_us;
  {
    std::string traits_sql = "SELECT * FROM (VALUES ";
    for (size_t i = 0; i < options_.user_traits.size(); i++) {
      traits_sql += (i ? ", " : "") + std::string("(") + engine::QuoteLiteral(options_.user_traits[i]) + ", " +
                    std::to_string(i + 1) + ", " + engine::QuoteLiteral(JsonPath(options_.user_traits[i])) + ")";
    }
    traits_sql += ") t(trait, position, json_path)";
    if (options_.user_traits.empty())
      traits_sql = "SELECT NULL::VARCHAR AS trait, NULL::INTEGER AS position, NULL::VARCHAR AS json_path WHERE false";
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE tracked_traits AS " + traits_sql));
    RETURN_IF_ERROR(c->Execute(
        "CREATE OR REPLACE TEMP VIEW identify_scope AS SELECT user_key, event_ts, event_id, properties "
        "FROM silver_all WHERE event_type = 'identify' AND user_key IS NOT NULL" +
        std::string(dims_all ? "" : no_users ? " AND false" : " AND user_key IN (SELECT user_key FROM t_users)")));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE dim_user_rows AS " + ModelText("dim_user")));
    std::string columns = "user_key, version";
    std::string list = "[";
    for (size_t i = 0; i < options_.user_traits.size(); i++) {
      const std::string q = engine::QuoteIdentifier(options_.user_traits[i]);
      columns += ", trait_values[" + std::to_string(i + 1) + "] AS " + q;
      list += (i ? ", " : "") + q;
    }
    list += "]";
    columns += ", valid_from, valid_to, is_current";
    std::string old_rows;
    if (!dims_all) {
      RETURN_IF_ERROR(table_view("gold_dim_user_old", dim_user));
      old_rows = " UNION ALL BY NAME SELECT * REPLACE (CAST(valid_from AS TIMESTAMP) AS valid_from, "
                 "CAST(valid_to AS TIMESTAMP) AS valid_to) FROM gold_dim_user_old "
                 "WHERE user_key NOT IN (SELECT user_key FROM t_users)";
    }
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE dim_user_all AS SELECT " + columns +
                               " FROM dim_user_rows" + old_rows));
    if (!dims_all) {
      // The moment from which each affected user's version mapping changed:
      // a version that is new, gone or renumbered changes it from its
      // valid_from; one whose only change is valid_to, from the earlier end.
      const std::string shape = "SELECT user_key, version, to_json(" + list +
                                ")::VARCHAR AS traits, CAST(valid_from AS TIMESTAMP) AS valid_from, "
                                "CAST(valid_to AS TIMESTAMP) AS valid_to FROM ";
      RETURN_IF_ERROR(c->Execute(
          "CREATE OR REPLACE TEMP TABLE dim_user_since AS "
          "WITH o AS (" + shape + "gold_dim_user_old WHERE user_key IN (SELECT user_key FROM t_users)), "
          "n AS (" + shape + "dim_user_all WHERE user_key IN (SELECT user_key FROM t_users)), "
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
      // fact_events: the changed event dates, and the dates of the events whose
      // user_version may have changed.
      ASSIGN_OR_RETURN(auto since, c->Query("SELECT strftime(CAST(min(since) AS DATE), '%Y-%m-%d') "
                                            "FROM dim_user_since"));
      std::string versioned;
      if (!since.IsNull(0, 0)) {
        // The events of those users from the earliest such moment on.
        const std::string from = since.GetString(0, 0);
        RETURN_IF_ERROR(silver_view("silver_since", new_snap, [&](const delta::AddFile& f) {
          return PartitionValue(f, "event_date") >= from;
        }));
        versioned = " UNION SELECT DISTINCT s.event_date FROM silver_since s JOIN dim_user_since u "
                    "ON s.user_key = u.user_key AND s.event_ts >= u.since";
      }
      RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE t_fact_dates AS "
                                 "SELECT DISTINCT event_date AS d FROM changed" +
                                 versioned));
      ASSIGN_OR_RETURN(fact_target.dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_fact_dates"));
    }
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_user AS SELECT * FROM dim_user_all"));
  }
  table_us[dim_user.name] = clock_->MonotonicMicros() - t0;

  // ---- 3. the other dimensions ----
  t0 = clock_->MonotonicMicros();
  RETURN_IF_ERROR(c->Execute(
      "CREATE OR REPLACE TEMP VIEW campaign_scope AS SELECT * FROM silver_all WHERE campaign_id IS NOT NULL" +
      std::string(dims_all       ? ""
                  : no_campaigns ? " AND false"
                                 : " AND campaign_id IN (SELECT campaign_id FROM t_campaigns)")));
  RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_campaign AS " + ModelText("dim_campaign")));
  if (!dims_all) {
    RETURN_IF_ERROR(table_view("gold_dim_campaign_old", dim_campaign));
    RETURN_IF_ERROR(c->Execute(
        "INSERT INTO out_dim_campaign BY NAME SELECT * REPLACE (CAST(first_seen AS TIMESTAMP) AS first_seen, "
        "CAST(last_seen AS TIMESTAMP) AS last_seen) FROM gold_dim_campaign_old "
        "WHERE campaign_id NOT IN (SELECT campaign_id FROM t_campaigns)"));
  }
  table_us[dim_campaign.name] = clock_->MonotonicMicros() - t0;
  t0 = clock_->MonotonicMicros();
  // Rows of the affected profiles, matched on the five columns (NULL-safe)
  // rather than on their key: the key would cost a SHA-256 per Silver row.
  RETURN_IF_ERROR(c->Execute(
      "CREATE OR REPLACE TEMP VIEW device_scope AS SELECT * FROM silver_all s" +
      std::string(dims_all     ? ""
                  : no_devices ? " WHERE false"
                               : " WHERE EXISTS (SELECT 1 FROM t_devices d WHERE "
                                 "s.platform IS NOT DISTINCT FROM d.platform AND "
                                 "s.device_type IS NOT DISTINCT FROM d.device_type AND "
                                 "s.device_family IS NOT DISTINCT FROM d.device_family AND "
                                 "s.browser_family IS NOT DISTINCT FROM d.browser_family AND "
                                 "s.os_family IS NOT DISTINCT FROM d.os_family)")));
  RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP TABLE out_dim_device AS " + ModelText("dim_device")));
  if (!dims_all) {
    RETURN_IF_ERROR(table_view("gold_dim_device_old", dim_device));
    RETURN_IF_ERROR(c->Execute(
        "INSERT INTO out_dim_device BY NAME SELECT * REPLACE (CAST(first_seen AS TIMESTAMP) AS first_seen, "
        "CAST(last_seen AS TIMESTAMP) AS last_seen) FROM gold_dim_device_old "
        "WHERE device_key NOT IN (SELECT device_key FROM t_devices)"));
  }
  table_us[dim_device.name] = clock_->MonotonicMicros() - t0;

  // ---- 4. facts ----
  auto date_in = [](const std::set<std::string>& dates, bool all) {
    return [&dates, all](const delta::AddFile& f) { return all || dates.count(PartitionValue(f, "event_date")) > 0; };
  };
  t0 = clock_->MonotonicMicros();
  {
    std::set<std::string> dates;
    if (!fact_target.all) {
      ASSIGN_OR_RETURN(dates, QuerySet(c, "SELECT strftime(d, '%Y-%m-%d') FROM t_fact_dates"));
    }
    RETURN_IF_ERROR(silver_view("silver_scope_files", new_snap, date_in(dates, fact_target.all)));
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
  }
  table_us[fact_sessions.name] = clock_->MonotonicMicros() - t0;

  t0 = clock_->MonotonicMicros();
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
    RETURN_IF_ERROR(
        c->Execute("CREATE OR REPLACE TEMP TABLE out_fact_funnel_daily AS " + ModelText("fact_funnel_daily")));
  }
  table_us[fact_funnel.name] = clock_->MonotonicMicros() - t0;

  t0 = clock_->MonotonicMicros();
  {
    RETURN_IF_ERROR(silver_view("activity_scope", new_snap, date_in(activity_target.dates, activity_target.all)));
    RETURN_IF_ERROR(
        c->Execute("CREATE OR REPLACE TEMP TABLE out_user_activity_daily AS " + ModelText("user_activity_daily")));
  }
  table_us[activity.name] = clock_->MonotonicMicros() - t0;

  t0 = clock_->MonotonicMicros();
  {
    // The dates some feature date's 30-day window (user_days) and 7-day window
    // (sessions, from Silver) read; not every date in between: feature dates
    // can be far apart.
    ASSIGN_OR_RETURN(auto window30, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), '%Y-%m-%d') "
                                                "FROM t_feature_dates, range(0, 30) r"));
    ASSIGN_OR_RETURN(auto window7, QuerySet(c, "SELECT DISTINCT strftime(d - CAST(r.range AS INTEGER), '%Y-%m-%d') "
                                               "FROM t_feature_dates, range(0, 7) r"));
    RETURN_IF_ERROR(silver_view("features_scope", new_snap, [&](const delta::AddFile& f) {
      return window7.count(PartitionValue(f, "event_date")) > 0;
    }));
    // Per-user days: the partitions recomputed above, the others as
    // user_activity_daily holds them (equal to Silver's: their dates did not change).
    std::string user_days = "SELECT * FROM out_user_activity_daily";
    if (!activity_target.all) {
      ASSIGN_OR_RETURN(delta::Snapshot snap, activity.table->LoadSnapshot());
      const delta::Snapshot kept = SubSnapshot(snap, [&](const delta::AddFile& f) {
        const std::string d = PartitionValue(f, "event_date");
        return window30.count(d) > 0 && !activity_target.dates.count(d);
      });
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(activity.table->path(), kept));
      user_days += " UNION ALL BY NAME SELECT * FROM (" + scan +
                   ") WHERE event_date NOT IN (SELECT d FROM t_activity_dates)";
    }
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW user_days AS " + user_days));
    RETURN_IF_ERROR(c->Execute("CREATE OR REPLACE TEMP VIEW feature_dates AS SELECT d AS feature_date "
                               "FROM t_feature_dates"));
    RETURN_IF_ERROR(
        c->Execute("CREATE OR REPLACE TEMP TABLE out_user_features_daily AS " + ModelText("user_features_daily")));
  }
  table_us[features.name] = clock_->MonotonicMicros() - t0;

  // ---- 5. one commit per table ----
  auto commit_info = [&](int64_t covered) {
    std::ostringstream os;
    os << "{\"mode\":\"" << plan->mode << "\",\"app_id\":" << JsonString(plan->app_id)
       << ",\"batch_id\":" << plan->batch_id << ",\"silver_version\":" << covered
       << ",\"base_version\":" << base << ",\"refreshed_at_us\":" << refreshed_at_us
       << ",\"newest_event_ts_us\":" << TimestampJson(result.newest_event_us) << "}";
    return os.str();
  };
  auto write = [&](TableInfo& t, const Target& target, bool dim) -> Status {
    const int64_t tw = clock_->MonotonicMicros();
    GoldTableRefresh& out = result.tables[t.name];
    auto txn = t.table->StartTransaction();
    if (t.holds_batch) {
      out.us = table_us[t.name];
      return Status::OK();  // this table already holds the batch (a re-run)
    }
    const std::string column = t.partition_columns.empty() ? "" : t.partition_columns[0];
    int64_t removed = 0;
    for (const auto& f : txn->read_snapshot().files) {
      if (dim || target.Matches(PartitionValue(f, column))) {
        txn->RemoveFile(f);
        removed++;
      }
    }
    const std::string out_table = "out_" + t.name.substr(5);
    ASSIGN_OR_RETURN(auto n, c->Query("SELECT count(*) FROM " + out_table));
    out.rows_written = n.GetInt64(0, 0);
    if (out.rows_written > 0) {
      ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(c, "SELECT * FROM " + out_table));
      (void)adds;
    }
    out.replaced_all = dim || target.all;
    if (!dim) {
      if (target.all) {
        ASSIGN_OR_RETURN(auto dates, QuerySet(c, "SELECT DISTINCT strftime(" + column + ", '%Y-%m-%d') FROM " +
                                                     out_table));
        out.dates.assign(dates.begin(), dates.end());
      } else {
        out.dates.assign(target.dates.begin(), target.dates.end());
      }
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
                              {"numOutputRows", std::to_string(out.rows_written)}});
    txn->SetCommitInfoField(kCommitInfoKey, commit_info(covered));
    if (!plan->app_id.empty()) txn->SetAppTransaction(plan->app_id, plan->batch_id);
    ASSIGN_OR_RETURN(out.version, txn->Commit());
    out.us = table_us[t.name] + clock_->MonotonicMicros() - tw;
    return Status::OK();
  };
  RETURN_IF_ERROR(write(dim_user, Target{}, true));
  RETURN_IF_ERROR(write(dim_campaign, Target{}, true));
  RETURN_IF_ERROR(write(dim_device, Target{}, true));
  RETURN_IF_ERROR(write(fact_events, fact_target, false));
  RETURN_IF_ERROR(write(fact_sessions, session_target, false));
  RETURN_IF_ERROR(write(fact_funnel, session_target, false));
  RETURN_IF_ERROR(write(activity, activity_target, false));
  RETURN_IF_ERROR(write(features, feature_target, false));

  // ---- 6. system.gold_refreshes: one row per table committed ----
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
          << r.rows_written << "::BIGINT AS rows_written, " << r.us / 1000.0 << "::DOUBLE AS duration_ms";
      first = false;
    }
    if (!first) {
      ASSIGN_OR_RETURN(auto refreshes, delta::Table::OpenOrCreate(JoinPath(lake_dir_, kGoldRefreshesTable),
                                                                  RefreshesSchema(), {}, {}, db_, fs_, clock_));
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
  return result;
}

}  // namespace clicklake::pipeline::gold
