// Readiness of every dataset, from the lake's tables plus the current time.
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/clock.h"
#include "common/json_string.h"
#include "common/metrics.h"
#include "governance/quality/internal.h"
#include "pipeline/gold/gold.h"

namespace clicklake::quality {

namespace {

delta::Field Str(const char* n) { return delta::Field{n, "string", true}; }
delta::Field Long(const char* n) { return delta::Field{n, "long", true}; }
delta::Field Dbl(const char* n) { return delta::Field{n, "double", true}; }
delta::Field Ts(const char* n) { return delta::Field{n, "timestamp", true}; }
delta::Field Bool(const char* n) { return delta::Field{n, "boolean", true}; }

// The newest value of a timestamp column over the files' Delta stats (maxValues).
Result<std::optional<int64_t>> NewestFromStats(const delta::Snapshot& snap, const char* column) {
  std::optional<int64_t> newest;
  simdjson::dom::parser parser;
  for (const auto& f : snap.files) {
    if (f.stats.empty()) continue;
    simdjson::dom::element root;
    if (parser.parse(f.stats).get(root)) continue;
    std::string_view v;
    if (root["maxValues"][column].get_string().get(v)) continue;
    int64_t us;
    if (!ParseTimestampMicros(v, &us)) continue;
    if (!newest || us > *newest) newest = us;
  }
  return newest;
}

std::string Sq(const std::string& s) { return engine::QuoteLiteral(s); }

}  // namespace

delta::Schema ResultsSchema() {
  delta::Schema s;
  s.fields = {{"check_name", "string", false}, Str("check_type"), Str("dataset"), Str("series"), Long("batch_id"),
              Ts("window_start"), Ts("window_end"), Str("status"), Dbl("observed"), Dbl("expected_min"),
              Dbl("expected_max"), Str("severity"), Bool("blocking"), Str("detail"), Ts("checked_at")};
  return s;
}

delta::Schema ReadinessSchema() {
  delta::Schema s;
  s.fields = {{"dataset", "string", false}, Str("status"), Ts("last_refresh_at"), Ts("newest_event_at"),
              Dbl("lag_seconds"), Long("last_batch_id"), Dbl("sla_max_lag_seconds"), Str("sla_deadline"),
              Str("sla_timezone"), Str("sla"), Str("reason"), Ts("computed_at")};
  return s;
}

delta::Schema StateSchema() {
  delta::Schema s;
  s.fields = {Ts("hour"), Str("dataset"), Str("source"), Str("event_name"), Str("metric"), Long("value")};
  return s;
}

std::vector<std::string> ReadinessDatasets() {
  std::vector<std::string> out = {"bronze.events", "silver.events"};
  for (const char* t : pipeline::gold::kGoldTables) {
    std::string name = t;
    std::replace(name.begin(), name.end(), '/', '.');
    out.push_back(name);
  }
  return out;
}

std::string TimestampSql(std::optional<int64_t> us) {
  return us ? "make_timestamp(" + std::to_string(*us) + "::BIGINT)" : std::string("NULL::TIMESTAMP");
}

std::string DoubleSql(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "NULL::DOUBLE";
  std::ostringstream o;
  o.precision(17);
  o << *v << "::DOUBLE";
  return o.str();
}

std::string FormatLag(int64_t us) {
  int64_t s = std::max<int64_t>(0, us / 1000000);
  char buf[64];
  if (s >= 86400) {
    snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400), static_cast<long long>(s % 86400 / 3600));
  } else if (s >= 3600) {
    snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  }
  return buf;
}

Result<LakeFacts> GatherFacts(engine::Connection* conn, const std::string& lake_dir, FileSystem* fs,
                              int64_t now_us, const LakeFacts* known_results) {
  LakeFacts facts;
  auto snapshot = [&](const std::string& rel) -> Result<std::optional<delta::Snapshot>> {
    const std::string path = JoinPath(lake_dir, rel);
    if (!fs->Exists(JoinPath(path, "_delta_log"))) return std::optional<delta::Snapshot>();
    ASSIGN_OR_RETURN(delta::Snapshot s, delta::LoadSnapshotAt(path, conn, std::nullopt, fs));
    return std::optional<delta::Snapshot>(std::move(s));
  };
  auto attach = [&](const std::string& view, const std::string& rel,
                    const std::vector<delta::Predicate>& predicates = {}) -> Result<bool> {
    const std::string path = JoinPath(lake_dir, rel);
    if (!fs->Exists(JoinPath(path, "_delta_log"))) return false;
    RETURN_IF_ERROR(delta::AttachTable(conn, view, path, std::nullopt, predicates, fs));
    return true;
  };
  for (const auto& ds : ReadinessDatasets()) {
    std::string rel = ds;
    std::replace(rel.begin(), rel.end(), '.', '/');
    if (fs->Exists(JoinPath(JoinPath(lake_dir, rel), "_delta_log"))) facts.existing.insert(ds);
  }
  ASSIGN_OR_RETURN(auto bronze, snapshot("bronze/events"));
  if (bronze) {
    ASSIGN_OR_RETURN(facts.bronze_newest_us, NewestFromStats(*bronze, "received_at"));
    facts.bronze_commit_us = bronze->timestamp_ms * 1000;
  }
  ASSIGN_OR_RETURN(auto silver, snapshot("silver/events"));
  if (silver) {
    ASSIGN_OR_RETURN(facts.silver_newest_us, NewestFromStats(*silver, "event_ts"));
    facts.silver_commit_us = silver->timestamp_ms * 1000;
  }

  ASSIGN_OR_RETURN(bool has_batches, attach("q_batches", "system/batches"));
  if (has_batches) {
    ASSIGN_OR_RETURN(auto r, conn->Query("SELECT max(batch_id), epoch_us(max(finished_at)) FROM q_batches"));
    if (!r.IsNull(0, 0)) {
      facts.last_batch_id = r.GetInt64(0, 0);
      facts.last_batch_finished_us = r.GetInt64(0, 1);
    }
  }
  // Checks run every batch: the results of the last kResultsHorizon say what holds now, and
  // reading only their files keeps this cheap however long the lake has run.
  if (known_results) {  // the caller wrote every result since it read them: no need to read them again
    for (const auto& c : known_results->latest_results)
      if (c.checked_at_us >= now_us - kResultsHorizonUs) facts.latest_results.push_back(c);
    facts.blocked_batches = known_results->blocked_batches;
    facts.block_reasons = known_results->block_reasons;
  }
  bool has_results = false;
  if (!known_results) {
    ASSIGN_OR_RETURN(has_results,
                     attach("q_results", kResultsTable,
                            {delta::Predicate{"checked_at", ">=", FormatTimestampMicros(now_us - kResultsHorizonUs), ""}}));
  }
  if (has_results) {
    ASSIGN_OR_RETURN(auto r, conn->Query(
                                 "SELECT check_name, check_type, dataset, coalesce(series, ''), batch_id, "
                                 "epoch_us(window_start), epoch_us(window_end), status, observed, expected_min, "
                                 "expected_max, severity, blocking, detail, epoch_us(checked_at) FROM q_results "
                                 "QUALIFY row_number() OVER (PARTITION BY check_name, dataset, coalesce(series, '') "
                                 "ORDER BY checked_at DESC, batch_id DESC) = 1"));
    for (size_t i = 0; i < r.row_count(); i++) {
      CheckResult c;
      c.check = r.GetString(i, 0);
      c.check_type = r.GetString(i, 1);
      c.dataset = r.GetString(i, 2);
      c.series = r.GetString(i, 3);
      c.batch_id = r.GetInt64(i, 4, -1);
      c.window_start_us = r.GetInt64(i, 5);
      c.window_end_us = r.GetInt64(i, 6);
      const std::string st = r.GetString(i, 7);
      c.status = st == "pass" ? CheckStatus::kPass : st == "warn" ? CheckStatus::kWarn
                                                   : st == "fail" ? CheckStatus::kFail : CheckStatus::kError;
      if (!r.IsNull(i, 8)) c.observed = r.GetDouble(i, 8);
      if (!r.IsNull(i, 9)) c.expected_min = r.GetDouble(i, 9);
      if (!r.IsNull(i, 10)) c.expected_max = r.GetDouble(i, 10);
      c.severity = r.GetString(i, 11) == "error" ? Severity::kError : Severity::kWarn;
      c.blocking = r.GetString(i, 12) == "true";
      c.detail = r.GetString(i, 13);
      c.checked_at_us = r.GetInt64(i, 14);
      facts.latest_results.push_back(std::move(c));
    }
    ASSIGN_OR_RETURN(auto b, conn->Query("SELECT batch_id, first(check_name || ': ' || coalesce(detail, '')) "
                                         "FROM q_results WHERE blocking AND batch_id IS NOT NULL GROUP BY batch_id"));
    for (size_t i = 0; i < b.row_count(); i++) {
      facts.blocked_batches.insert(b.GetInt64(i, 0));
      facts.block_reasons[b.GetInt64(i, 0)] = b.GetString(i, 1);
    }
  }
  ASSIGN_OR_RETURN(bool has_refreshes, attach("q_refreshes", pipeline::gold::kGoldRefreshesTable));
  if (has_refreshes) {
    std::string blocked = "[";
    for (int64_t b : facts.blocked_batches) blocked += (blocked.size() > 1 ? "," : "") + std::to_string(b);
    blocked += "]::BIGINT[]";
    ASSIGN_OR_RETURN(auto r, conn->Query(
                                 "SELECT table_name, epoch_us(refreshed_at), epoch_us(newest_event_ts), batch_id, "
                                 "batch_id IS NOT NULL AND list_contains(" + blocked + ", batch_id) AS held "
                                 "FROM q_refreshes QUALIFY row_number() OVER (PARTITION BY table_name, held "
                                 "ORDER BY refreshed_at DESC) = 1"));
    for (size_t i = 0; i < r.row_count(); i++) {
      LakeFacts::Refresh f;
      f.refreshed_us = r.GetInt64(i, 1);
      if (!r.IsNull(i, 2)) f.newest_us = r.GetInt64(i, 2);
      if (!r.IsNull(i, 3)) f.batch_id = r.GetInt64(i, 3);
      const bool held = r.GetString(i, 4) == "true";
      if (!facts.gold_latest || f.refreshed_us > facts.gold_latest->refreshed_us) facts.gold_latest = f;
      if (held) continue;
      facts.gold_published[r.GetString(i, 0)] = f;
      if (!facts.gold_latest_published || f.refreshed_us > facts.gold_latest_published->refreshed_us)
        facts.gold_latest_published = f;
    }
  }
  return facts;
}

void OverlayResults(LakeFacts* facts, const std::vector<CheckResult>& results) {
  for (const auto& c : results) {
    bool replaced = false;
    for (auto& old : facts->latest_results) {
      if (old.check == c.check && old.dataset == c.dataset && old.series == c.series) {
        old = c;
        replaced = true;
      }
    }
    if (!replaced) facts->latest_results.push_back(c);
    if (c.blocking && c.batch_id >= 0) {
      facts->blocked_batches.insert(c.batch_id);
      facts->block_reasons.emplace(c.batch_id, c.check + ": " + c.detail);
    }
  }
}

std::vector<DatasetReadiness> DeriveReadiness(const LakeFacts& facts, const QualityOptions& options, int64_t now_us,
                                              engine::Connection* conn) {
  std::vector<DatasetReadiness> out;
  for (const auto& ds : ReadinessDatasets()) {
    DatasetReadiness r;
    r.dataset = ds;
    r.sla = options.SlaFor(ds);
    r.computed_at_us = now_us;
    const bool gold = ds.rfind("gold.", 0) == 0;
    if (!facts.existing.count(ds)) {
      r.status = ReadinessStatus::kUnknown;
      r.reason = "no table yet (nothing processed)";
      out.push_back(std::move(r));
      continue;
    }
    std::vector<std::string> reasons;
    bool failed = false;
    if (gold) {
      auto own = facts.gold_published.find(ds);
      if (own != facts.gold_published.end()) r.last_refresh_us = own->second.refreshed_us;
      if (facts.gold_latest_published) {
        r.newest_event_us = facts.gold_latest_published->newest_us;
        r.last_batch_id = facts.gold_latest_published->batch_id;
        if (!r.last_refresh_us) r.last_refresh_us = facts.gold_latest_published->refreshed_us;
      }
      if (facts.gold_latest && facts.gold_latest->batch_id && facts.blocked_batches.count(*facts.gold_latest->batch_id)) {
        failed = true;
        reasons.push_back("Gold refresh of batch " + std::to_string(*facts.gold_latest->batch_id) +
                          " held back by a blocking check (" + facts.block_reasons.at(*facts.gold_latest->batch_id) +
                          ")");
      }
    } else {
      // The processor's last batch; a table written by other means: its last commit.
      r.last_refresh_us = facts.last_batch_finished_us;
      if (!r.last_refresh_us) r.last_refresh_us = ds == "bronze.events" ? facts.bronze_commit_us : facts.silver_commit_us;
      r.last_batch_id = facts.last_batch_id;
      r.newest_event_us = ds == "bronze.events" ? facts.bronze_newest_us : facts.silver_newest_us;
    }
    for (const auto& c : facts.latest_results) {
      if (c.dataset != ds || c.status != CheckStatus::kFail) continue;
      failed = true;
      reasons.push_back("check " + c.check + (c.series.empty() ? "" : " [" + c.series + "]") + " failed" +
                        (c.batch_id >= 0 ? " in batch " + std::to_string(c.batch_id) : "") + ": " + c.detail);
    }
    bool late = false;
    if (r.newest_event_us) {
      r.lag_us = now_us - *r.newest_event_us;
      if (*r.lag_us > r.sla.max_lag_us) {
        late = true;
        reasons.push_back("lag " + FormatLag(*r.lag_us) + " exceeds the SLA's max lag " +
                          FormatLag(r.sla.max_lag_us) + " (newest event " + FormatTimestampMicros(*r.newest_event_us) +
                          ")");
      }
    }
    if (!r.sla.deadline.empty()) {
      // From the deadline (local time) on, the dataset must cover the previous local day.
      const std::string local = "timezone(" + Sq(r.sla.timezone) + ", make_timestamp(" + std::to_string(now_us) +
                                "::BIGINT)::TIMESTAMPTZ)";
      auto q = conn->Query("SELECT " + local + " >= date_trunc('day', " + local + ") + " + Sq(r.sla.deadline + ":00") +
                           "::INTERVAL, epoch_us(timezone(" + Sq(r.sla.timezone) + ", date_trunc('day', " + local +
                           "))), strftime(date_trunc('day', " + local + ") - INTERVAL 1 DAY, '%Y-%m-%d')");
      if (!q.ok()) {
        reasons.push_back("SLA deadline not evaluated: " + q.status().message());
      } else if (q->GetString(0, 0) == "true" && (!r.newest_event_us || *r.newest_event_us < q->GetInt64(0, 1))) {
        late = true;
        reasons.push_back(q->GetString(0, 2) + " (" + r.sla.timezone + ") not complete by " + r.sla.deadline);
      }
    }
    if (failed) {
      r.status = ReadinessStatus::kFailed;
    } else if (late) {
      r.status = ReadinessStatus::kLate;
    } else if (!r.newest_event_us || !r.last_refresh_us) {
      r.status = ReadinessStatus::kUnknown;
      reasons.push_back(gold ? "no Gold refresh published yet" : "no events yet");
    } else {
      r.status = ReadinessStatus::kReady;
    }
    for (const auto& s : reasons) r.reason += (r.reason.empty() ? "" : "; ") + s;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<DatasetReadiness>> ComputeReadiness(const std::string& lake_dir, const QualityOptions& options,
                                                       int64_t now_us, engine::Database* db, FileSystem* fs) {
  std::unique_ptr<engine::Database> own;
  if (!db) {
    engine::DatabaseOptions o;
    o.threads = 1;
    ASSIGN_OR_RETURN(own, engine::Database::Open(o));
    db = own.get();
  }
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  ASSIGN_OR_RETURN(LakeFacts facts, GatherFacts(conn.get(), lake_dir, fs, now_us));
  return DeriveReadiness(facts, options, now_us, conn.get());
}

namespace {
void JsonTime(std::string* out, const char* key, std::optional<int64_t> us) {
  *out += ",\"";
  *out += key;
  *out += "\":";
  *out += us ? JsonString(FormatTimestampMicros(*us)) : "null";
}
std::string Num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}
}  // namespace

std::string ReadinessJson(const std::vector<DatasetReadiness>& rows, int64_t now_us) {
  std::string out = "{\"computed_at\":" + JsonString(FormatTimestampMicros(now_us)) + ",\"datasets\":[";
  bool first = true;
  for (const auto& r : rows) {
    out += first ? "{" : ",{";
    first = false;
    out += "\"dataset\":" + JsonString(r.dataset) + ",\"status\":" + JsonString(ToString(r.status));
    JsonTime(&out, "last_refresh", r.last_refresh_us);
    JsonTime(&out, "newest_event", r.newest_event_us);
    out += ",\"lag_seconds\":" + (r.lag_us ? Num(*r.lag_us / 1e6) : std::string("null"));
    out += ",\"last_batch_id\":" + (r.last_batch_id ? std::to_string(*r.last_batch_id) : std::string("null"));
    out += ",\"sla\":{\"max_lag_seconds\":" + Num(r.sla.max_lag_us / 1e6) + ",\"deadline\":" +
           (r.sla.deadline.empty() ? std::string("null") : JsonString(r.sla.deadline)) +
           ",\"timezone\":" + JsonString(r.sla.timezone) + ",\"text\":" + JsonString(r.sla.Describe()) + "}";
    out += ",\"reason\":" + JsonString(r.reason) + "}";
  }
  out += "]}";
  return out;
}

std::string ReadinessTable(const std::vector<DatasetReadiness>& rows) {
  std::vector<std::vector<std::string>> cells = {{"dataset", "status", "last refresh", "newest event", "lag", "sla", "reason"}};
  for (const auto& r : rows) {
    cells.push_back({r.dataset, ToString(r.status), r.last_refresh_us ? FormatTimestampMicros(*r.last_refresh_us).substr(0, 19) + "Z" : "-",
                     r.newest_event_us ? FormatTimestampMicros(*r.newest_event_us).substr(0, 19) + "Z" : "-",
                     r.lag_us ? FormatLag(*r.lag_us) : "-", r.sla.Describe(), r.reason});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i + 1 < row.size(); i++) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); i++) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  return out;
}

std::string ResultsJson(const std::vector<CheckResult>& results) {
  std::string out = "[";
  for (size_t i = 0; i < results.size(); i++) {
    const CheckResult& c = results[i];
    out += i ? ",{" : "{";
    out += "\"check\":" + JsonString(c.check) + ",\"check_type\":" + JsonString(c.check_type) +
           ",\"dataset\":" + JsonString(c.dataset) + ",\"series\":" + JsonString(c.series) +
           ",\"batch_id\":" + std::to_string(c.batch_id);
    JsonTime(&out, "window_start", c.window_start_us);
    JsonTime(&out, "window_end", c.window_end_us);
    out += ",\"status\":" + JsonString(ToString(c.status));
    out += ",\"observed\":" + (c.observed && std::isfinite(*c.observed) ? Num(*c.observed) : std::string("null"));
    out += ",\"expected_min\":" + (c.expected_min ? Num(*c.expected_min) : std::string("null"));
    out += ",\"expected_max\":" + (c.expected_max ? Num(*c.expected_max) : std::string("null"));
    out += ",\"severity\":" + JsonString(ToString(c.severity)) + ",\"blocking\":" + (c.blocking ? "true" : "false") +
           ",\"detail\":" + JsonString(c.detail);
    JsonTime(&out, "checked_at", c.checked_at_us);
    out += "}";
  }
  return out + "]";
}

std::string ReadinessRowSql(const DatasetReadiness& r) {
  return "SELECT " + Sq(r.dataset) + " AS dataset, " + Sq(ToString(r.status)) + " AS status, " +
         TimestampSql(r.last_refresh_us) + " AS last_refresh_at, " + TimestampSql(r.newest_event_us) +
         " AS newest_event_at, " + DoubleSql(r.lag_us ? std::optional<double>(*r.lag_us / 1e6) : std::nullopt) +
         " AS lag_seconds, " + (r.last_batch_id ? std::to_string(*r.last_batch_id) : "NULL") +
         "::BIGINT AS last_batch_id, " + DoubleSql(r.sla.max_lag_us / 1e6) + " AS sla_max_lag_seconds, " +
         (r.sla.deadline.empty() ? "NULL" : Sq(r.sla.deadline)) + "::VARCHAR AS sla_deadline, " + Sq(r.sla.timezone) +
         " AS sla_timezone, " + Sq(r.sla.Describe()) + " AS sla, " + Sq(r.reason) + " AS reason, " +
         TimestampSql(r.computed_at_us) + " AS computed_at";
}

const char* kResultColumns =
    "check_name, check_type, dataset, series, batch_id, window_start, window_end, status, observed, expected_min, "
    "expected_max, severity, blocking, detail, checked_at";

std::string ResultValuesSql(const CheckResult& c) {
  return "(" + Sq(c.check) + ", " + Sq(c.check_type) + ", " + Sq(c.dataset) + ", " + Sq(c.series) + ", " +
         std::to_string(c.batch_id) + "::BIGINT, " + TimestampSql(c.window_start_us) + ", " +
         TimestampSql(c.window_end_us) + ", " + Sq(ToString(c.status)) + ", " + DoubleSql(c.observed) + ", " +
         DoubleSql(c.expected_min) + ", " + DoubleSql(c.expected_max) + ", " + Sq(ToString(c.severity)) + ", " +
         (c.blocking ? "true" : "false") + ", " + Sq(c.detail) + ", " + TimestampSql(c.checked_at_us) + ")";
}

std::string ValuesQuery(const std::vector<std::string>& rows, const char* columns) {
  std::string sql = "SELECT * FROM (VALUES ";
  for (size_t i = 0; i < rows.size(); i++) sql += (i ? ", " : "") + rows[i];
  return sql + ") t(" + columns + ")";
}

void ExportReadinessMetrics(const std::vector<DatasetReadiness>& rows) {
  auto* m = MetricsRegistry::Global();
  for (const auto& r : rows) {
    for (ReadinessStatus s : {ReadinessStatus::kReady, ReadinessStatus::kLate, ReadinessStatus::kFailed,
                              ReadinessStatus::kUnknown}) {
      m->GetGauge("clicklake_dataset_status", "1 for the dataset's current readiness status, 0 for the others.",
                  {{"dataset", r.dataset}, {"status", ToString(s)}})
          ->Set(r.status == s ? 1 : 0);
    }
    m->GetGauge("clicklake_dataset_lag_seconds",
                "Now minus the newest event time the dataset covers (freshness); -1 when unknown.",
                {{"dataset", r.dataset}})
        ->Set(r.lag_us ? *r.lag_us / 1e6 : -1);
    m->GetGauge("clicklake_dataset_last_refresh_timestamp_seconds",
                "Unix time of the dataset's last published refresh; 0 when none.", {{"dataset", r.dataset}})
        ->Set(r.last_refresh_us ? *r.last_refresh_us / 1e6 : 0);
    m->GetGauge("clicklake_dataset_sla_max_lag_seconds", "The dataset's SLA: the maximum lag.",
                {{"dataset", r.dataset}})
        ->Set(r.sla.max_lag_us / 1e6);
  }
}

}  // namespace clicklake::quality
