// QualityObserver: the checks after each micro-batch, system.quality_results,
// system.readiness, the hourly baselines (system.quality_state) and the
// processor's metrics.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <tuple>

#include "common/metrics.h"
#include "governance/quality/internal.h"
#include "log/event_log.h"
#include "pipeline/gold/gold.h"  // GoldRefreshResult

namespace clicklake::quality {

namespace {

constexpr int64_t kHourUs = 3600LL * 1000000;
constexpr int64_t kWeekUs = 7 * 24 * kHourUs;
constexpr int kMaxHoursPerRun = 48;  // after a long stop, only the latest hours are judged
constexpr const char* kAppId = "clicklake-quality";
// The silver.events columns the checks read from a batch's change.
constexpr const char* kBaseColumns[] = {"event_id", "event_type", "event_name", "event_ts",  "received_at",
                                        "event_date", "source",   "user_key",   "session_id", "page_url",
                                        "device_type", "geo_country", "platform", "revenue",   "currency"};

int64_t FloorHour(int64_t us) { return us - ((us % kHourUs) + kHourUs) % kHourUs; }

std::string Sq(const std::string& s) { return engine::QuoteLiteral(s); }
std::string Qi(const std::string& s) { return engine::QuoteIdentifier(s); }

std::string Fixed(double v, int digits = 1) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A passing result of `check` for the batch (window: the batch's span).
CheckResult NewResult(const CheckConfig& check, const pipeline::BatchResult& batch, int64_t now_us) {
  CheckResult r;
  r.check = check.name;
  r.check_type = check.type;
  r.dataset = check.dataset;
  r.batch_id = batch.batch_id;
  r.window_start_us = batch.started_us;
  r.window_end_us = batch.finished_us;
  r.severity = check.severity;
  r.checked_at_us = now_us;
  return r;
}

// (dataset, source, event_name, metric) → hour → value.
using SeriesKey = std::tuple<std::string, std::string, std::string, std::string>;

}  // namespace

struct QualityObserver::Impl {
  QualityOptions options;
  std::string lake_dir;
  std::string group;
  log::EventLog* log = nullptr;
  FileSystem* fs = nullptr;
  Clock* clock = nullptr;
  std::unique_ptr<engine::Database> db;

  // Baselines, loaded from system.quality_state on first use (runner thread only).
  bool state_loaded = false;
  std::map<SeriesKey, std::map<int64_t, int64_t>> series;
  int64_t evaluated_through_us = -1;  // volume: hours ending at or before this were judged
  std::map<std::string, int64_t> contract_versions;
  std::vector<std::string> pending_state;  // rows (SQL) to append with this batch
  int64_t queries = 0;
  int64_t last_tick_readiness_us = -1;
  // Where the last run's time went ("diff 12 ms, nulls 3 ms, ..."), for the log line.
  std::string phases;
  int64_t phase_start_us = 0;
  void Phase(const char* name) {
    const int64_t t = clock->MonotonicMicros();
    phases += (phases.empty() ? "" : ", ") + std::string(name) + " " + std::to_string((t - phase_start_us) / 1000) + " ms";
    phase_start_us = t;
  }

  mutable std::mutex mu;
  std::vector<DatasetReadiness> readiness;                  // GUARDED_BY(mu)
  std::vector<CheckResult> results;                         // GUARDED_BY(mu)
  ObserverRunStats stats;                                   // GUARDED_BY(mu)
  std::vector<std::shared_ptr<QualityListener>> listeners;  // GUARDED_BY(mu)

  Histogram* batch_seconds = nullptr;
  Gauge* quarantine_ratio = nullptr;
  Counter* batches_failed = nullptr;
  Counter* observer_errors = nullptr;
  Gauge* observer_seconds = nullptr;

  // The snapshots the checks read, the last two versions per table: a batch reads its
  // version v and v - 1, and the next batch's v - 1 is this one's v (no second log replay).
  std::map<std::string, std::map<int64_t, delta::Snapshot>> snapshots;
  Result<delta::Snapshot> SnapshotAt(engine::Connection* c, const std::string& path, std::optional<int64_t> version) {
    auto& cached = snapshots[path];
    if (version) {
      auto it = cached.find(*version);
      if (it != cached.end()) return it->second;
    }
    ASSIGN_OR_RETURN(delta::Snapshot s, delta::LoadSnapshotAt(path, c, version, fs));
    cached[s.version] = s;
    while (cached.size() > 2) cached.erase(cached.begin());
    return s;
  }

  Result<engine::QueryResult> Query(engine::Connection* c, const std::string& sql) {
    queries++;
    return c->Query(sql);
  }
  Status Exec(engine::Connection* c, const std::string& sql) {
    queries++;
    return c->Execute(sql);
  }

  Status LoadState(engine::Connection* c, int64_t now_us);
  void AddState(int64_t hour, const std::string& dataset, const std::string& source, const std::string& event_name,
                const std::string& metric, int64_t value) {
    if (value == 0) return;
    series[{dataset, source, event_name, metric}][hour] += value;
    pending_state.push_back("(" + TimestampSql(hour) + ", " + Sq(dataset) + ", " + Sq(source) + ", " +
                            Sq(event_name) + ", " + Sq(metric) + ", " + std::to_string(value) + "::BIGINT)");
  }
  Status CommitState(engine::Connection* c, int64_t batch_id);
  Status Append(engine::Connection* c, const char* table, const delta::Schema& schema,
                const std::vector<std::string>& rows, const char* columns, int64_t batch_id);
  Status ReplaceReadiness(engine::Connection* c, const std::vector<DatasetReadiness>& rows);

  Result<std::vector<CheckResult>> Run(const pipeline::BatchResult& result, engine::Connection* c);
  void Volume(const CheckConfig& check, const pipeline::BatchResult& result, int64_t from_us, int64_t to_us,
              std::vector<CheckResult>* out);
  // revenue_daily: judged dates go to `out`; dates waiting for the check's interval are kept.
  Status RevenueDaily(const CheckConfig& check, const pipeline::BatchResult& result, engine::Connection* c,
                      int64_t now, std::vector<CheckResult>* out);
  std::map<std::string, std::set<std::string>> revenue_dates;  // check → session dates touched, not yet judged
  std::map<std::string, int64_t> revenue_last_us;              // check → its last run
  // The latest result per (check, dataset, series) and the blocked batches, read from
  // system.quality_results by the first run and kept since (see GatherFacts).
  std::optional<LakeFacts> known_results;
  const LakeFacts* known() const { return known_results ? &*known_results : nullptr; }
  void UpdateLagMetrics();
  void ExportResultMetrics(const std::vector<CheckResult>& results);
};

Status QualityObserver::Impl::RevenueDaily(const CheckConfig& check, const pipeline::BatchResult& result,
                                           engine::Connection* c, int64_t now, std::vector<CheckResult>* out) {
  // The session dates this batch may have changed: its new rows' event dates (a new row
  // starts or extends a session of its day or, across midnight, of the day before) and
  // the partitions the refresh rewrote in gold.fact_session_daily.
  std::set<std::string>& dates = revenue_dates[check.name];
  ASSIGN_OR_RETURN(auto touched, Query(c, "SELECT DISTINCT strftime(event_date, '%Y-%m-%d') FROM batch_events "
                                          "WHERE event_date IS NOT NULL"));
  for (size_t i = 0; i < touched.row_count(); i++) dates.insert(touched.GetString(i, 0));
  auto sessions = result.gold->tables.find("gold/fact_session_daily");
  if (sessions != result.gold->tables.end())
    for (const auto& d : sessions->second.dates) dates.insert(d);
  // A lake whose Gold has no session table (models switched off): nothing to compare.
  if (!fs->Exists(JoinPath(lake_dir, "gold/fact_session_daily/_delta_log"))) return Status::OK();
  auto last = revenue_last_us.find(check.name);
  if (dates.empty() || (last != revenue_last_us.end() && now - last->second < check.interval_us)) return Status::OK();
  revenue_last_us[check.name] = now;
  std::set<std::string> judging;
  judging.swap(dates);

  auto compare = [&](const std::string& date) -> Result<CheckResult> {
    CheckResult r = NewResult(check, result, now);
    r.series = "date=" + date;
    ASSIGN_OR_RETURN(auto bounds, Query(c, "SELECT epoch_us(DATE " + Sq(date) + "::TIMESTAMP), epoch_us((DATE " +
                                               Sq(date) + " + 1)::TIMESTAMP)"));
    r.window_start_us = bounds.GetInt64(0, 0);
    r.window_end_us = bounds.GetInt64(0, 1);
    // Gold: the day's sessions (session_date = the date of their first activity event).
    const std::string gold_path = JoinPath(lake_dir, "gold/fact_session_daily");
    ASSIGN_OR_RETURN(delta::Snapshot gold, SnapshotAt(c, gold_path, std::nullopt));
    ASSIGN_OR_RETURN(std::string g_scan, delta::ScanSql(gold_path, gold, {{"session_date", "=", date, "DATE"}}));
    // Silver, at the version Gold covers: the sessions whose first activity event is on
    // the date, and their order_completed revenue on that day or after (no midnight split).
    const std::string silver_path = JoinPath(lake_dir, "silver/events");
    ASSIGN_OR_RETURN(delta::Snapshot silver, SnapshotAt(c, silver_path, result.gold->silver_version));
    ASSIGN_OR_RETURN(std::string starts, delta::ScanSql(silver_path, silver, {{"event_date", "=", date, "DATE"}}));
    ASSIGN_OR_RETURN(std::string orders, delta::ScanSql(silver_path, silver, {{"event_date", ">=", date, "DATE"}}));
    ASSIGN_OR_RETURN(auto q, Query(c,
        "WITH g AS (SELECT coalesce(sum(revenue::DECIMAL(38, 6)), 0)::DOUBLE AS revenue, count(*) AS n FROM (" +
            g_scan + ")), "
        "st AS MATERIALIZED (SELECT session_id FROM (" + starts + ") WHERE session_event_index = 1), "
        "o AS (SELECT coalesce(sum(revenue::DECIMAL(38, 6)), 0)::DOUBLE AS revenue FROM (" + orders + ") "
        "WHERE event_name = 'order_completed' AND revenue IS NOT NULL AND session_id IN (SELECT session_id FROM st)) "
        "SELECT g.revenue, g.n, o.revenue, (SELECT count(*) FROM st) FROM g, o"));
    const double gold_total = q.GetDouble(0, 0), silver_total = q.GetDouble(0, 2);
    r.observed = gold_total;
    r.expected_min = silver_total - check.tolerance;
    r.expected_max = silver_total + check.tolerance;
    r.detail = "sessions of " + date + ": gold.fact_session_daily revenue " + Fixed(gold_total, 2) + " over " +
               std::to_string(q.GetInt64(0, 1)) + " sessions, silver.events order_completed revenue " +
               Fixed(silver_total, 2) + " over " + std::to_string(q.GetInt64(0, 3)) + " sessions";
    if (std::abs(gold_total - silver_total) > check.tolerance) {
      r.status = check.severity == Severity::kError ? CheckStatus::kFail : CheckStatus::kWarn;
      r.detail = "daily revenue differs by " + Fixed(gold_total - silver_total, 2) + ": " + r.detail;
    }
    return r;
  };
  for (const auto& date : judging) {
    auto r = compare(date);
    if (r.ok()) {
      out->push_back(std::move(r).value());
    } else {
      CheckResult e = NewResult(check, result, now);
      e.series = "date=" + date;
      e.status = CheckStatus::kError;
      e.detail = "the check could not run: " + r.status().message();
      out->push_back(std::move(e));
    }
  }
  return Status::OK();
}

Status QualityObserver::Impl::LoadState(engine::Connection* c, int64_t now_us) {
  state_loaded = true;
  const std::string path = JoinPath(lake_dir, kStateTable);
  if (!fs->Exists(JoinPath(path, "_delta_log"))) return Status::OK();
  RETURN_IF_ERROR(delta::AttachTable(c, "q_state", path, std::nullopt, fs));
  int weeks = 1;
  for (const auto& ch : options.checks) weeks = std::max(weeks, ch.training_weeks);
  const int64_t since = FloorHour(now_us) - (weeks + 2) * kWeekUs;
  ASSIGN_OR_RETURN(auto r, Query(c, "SELECT epoch_us(hour), dataset, source, event_name, metric, sum(value) "
                                    "FROM q_state WHERE (metric = 'rows' OR metric LIKE 'null:%') "
                                    "AND hour >= " + TimestampSql(since) + " GROUP BY ALL"));
  for (size_t i = 0; i < r.row_count(); i++) {
    if (r.GetInt64(i, 0) < since) continue;
    series[{r.GetString(i, 1), r.GetString(i, 2), r.GetString(i, 3), r.GetString(i, 4)}][r.GetInt64(i, 0)] +=
        r.GetInt64(i, 5);
  }
  ASSIGN_OR_RETURN(auto m, Query(c, "SELECT epoch_us(max(hour)) FROM q_state WHERE metric = 'evaluated_through'"));
  if (!m.IsNull(0, 0)) evaluated_through_us = m.GetInt64(0, 0);
  ASSIGN_OR_RETURN(auto v, Query(c, "SELECT event_name, arg_max(value, hour) FROM q_state "
                                    "WHERE metric = 'contract_version' GROUP BY ALL"));
  for (size_t i = 0; i < v.row_count(); i++) contract_versions[v.GetString(i, 0)] = v.GetInt64(i, 1);
  return Status::OK();
}

Status QualityObserver::Impl::Append(engine::Connection* c, const char* table, const delta::Schema& schema,
                                     const std::vector<std::string>& rows, const char* columns, int64_t batch_id) {
  if (rows.empty()) return Status::OK();
  ASSIGN_OR_RETURN(auto t, delta::Table::OpenOrCreate(JoinPath(lake_dir, table), schema, {}, {}, db.get(), fs, clock));
  auto txn = t->StartTransaction();
  const auto& txns = txn->read_snapshot().app_txn_versions;
  auto it = txns.find(kAppId);
  if (batch_id >= 0 && it != txns.end() && it->second >= batch_id) return Status::OK();  // a re-run: already there
  queries++;
  ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(c, ValuesQuery(rows, columns)));
  (void)adds;
  txn->SetBlindAppend(true);
  txn->SetOperation("WRITE", {{"mode", "Append"}});
  if (batch_id >= 0) txn->SetAppTransaction(kAppId, batch_id);
  ASSIGN_OR_RETURN(int64_t v, txn->Commit());
  (void)v;
  return Status::OK();
}

Status QualityObserver::Impl::CommitState(engine::Connection* c, int64_t batch_id) {
  std::vector<std::string> rows;
  rows.swap(pending_state);
  return Append(c, kStateTable, StateSchema(), rows, kStateColumns, batch_id);
}

Status QualityObserver::Impl::ReplaceReadiness(engine::Connection* c, const std::vector<DatasetReadiness>& rows) {
  ASSIGN_OR_RETURN(auto t, delta::Table::OpenOrCreate(JoinPath(lake_dir, kReadinessTable), ReadinessSchema(), {}, {},
                                                      db.get(), fs, clock));
  auto txn = t->StartTransaction();
  for (const auto& f : txn->read_snapshot().files) txn->RemoveFile(f);
  std::string sql;
  for (const auto& r : rows) sql += (sql.empty() ? "" : " UNION ALL ") + ReadinessRowSql(r);
  queries++;
  ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(c, sql));
  (void)adds;
  txn->ReadWholeTable();
  txn->SetOperation("WRITE", {{"mode", "Overwrite"}});
  ASSIGN_OR_RETURN(int64_t v, txn->Commit());
  (void)v;
  return Status::OK();
}

void QualityObserver::Impl::Volume(const CheckConfig& check, const pipeline::BatchResult& result, int64_t from_us,
                                   int64_t to_us, std::vector<CheckResult>* out) {
  for (const auto& [key, hours] : series) {
    const auto& [dataset, source, event_name, metric] = key;
    if (dataset != check.dataset || metric != "rows" || hours.empty()) continue;
    if (!check.by_event_name && dataset == "bronze.events" && event_name != "*") continue;
    const int64_t first_hour = hours.begin()->first;
    for (int64_t h = from_us; h + kHourUs <= to_us; h += kHourUs) {
      if (first_hour > h) continue;  // the series did not exist yet
      auto at = [&](int64_t hour) {
        auto it = hours.find(hour);
        return it == hours.end() ? 0.0 : static_cast<double>(it->second);
      };
      std::vector<double> training;
      double training_sum = 0;
      for (int k = 1; k <= check.training_weeks; k++) {
        const int64_t hk = h - k * kWeekUs;
        if (hk < first_hour) break;
        training.push_back(at(hk));
        training_sum += training.back();
      }
      const double observed = at(h);
      if (observed == 0 && training_sum == 0) continue;  // a series gone quiet long ago
      VolumeVerdict v = EvaluateVolume(observed, training, check);
      CheckResult r = NewResult(check, result, 0);  // checked_at: set by Run
      r.series = "source=" + source + (event_name == "*" ? "" : " event_name=" + event_name);
      r.window_start_us = h;
      r.window_end_us = h + kHourUs;
      r.observed = observed;
      if (v.training) {
        r.detail = "training: " + std::to_string(v.training_size) + " of " +
                   std::to_string(std::max(2, check.min_training_size)) + " same hour-of-week buckets";
      } else {
        r.expected_min = v.expected_min;
        r.expected_max = v.expected_max;
        r.detail = "rows " + Fixed(observed, 0) + " vs mean " + Fixed(v.mean) + " sd " + Fixed(v.stddev) + " over " +
                   std::to_string(v.training_size) + " same hour-of-week buckets (z " +
                   (std::isfinite(v.z) ? Fixed(v.z, 2) : std::string(v.z > 0 ? "+inf" : "-inf")) + ")";
        if (v.anomaly) {
          r.status = check.severity == Severity::kError ? CheckStatus::kFail : CheckStatus::kWarn;
          r.detail = std::string(observed < v.mean ? "volume drop: " : "volume spike: ") + r.detail;
        }
      }
      out->push_back(std::move(r));
    }
  }
}

Result<std::vector<CheckResult>> QualityObserver::Impl::Run(const pipeline::BatchResult& result,
                                                            engine::Connection* c) {
  std::vector<CheckResult> out;
  const int64_t now = clock->NowMicros();
  // Nothing committed (an empty batch, or a re-run whose tables all held it): nothing to judge.
  if (result.batch_id < 0 || result.versions.empty()) return out;
  if (!state_loaded) RETURN_IF_ERROR(LoadState(c, now));
  phases.clear();
  phase_start_us = clock->MonotonicMicros();
  auto make = [&](const CheckConfig& ch) { return NewResult(ch, result, now); };
  auto judged = [&](const CheckConfig& ch, CheckResult r, bool failing) {
    if (failing) r.status = ch.severity == Severity::kError ? CheckStatus::kFail : CheckStatus::kWarn;
    out.push_back(std::move(r));
  };
  auto errored = [&](const CheckConfig& ch, const Status& s) {
    CheckResult r = make(ch);
    r.status = CheckStatus::kError;
    r.detail = "the check could not run: " + s.message();
    out.push_back(std::move(r));
  };
  auto enabled = [&](const char* type) {
    for (const auto& ch : options.checks)
      if (ch.enabled && ch.type == type) return true;
    return false;
  };

  // ---- silver.events: the rows this batch added ----
  // The files the batch's commit added hold its new rows and the new versions
  // of rows it rewrote (re-keyed, re-sessioned: their old versions marked
  // deleted). The new rows are those read from the batch's own log offsets; a
  // rewritten row came from an earlier batch. Only the added files are read.
  const std::string silver_path = JoinPath(lake_dir, "silver/events");
  auto sv = result.versions.find("silver.events");
  bool have_silver = false;
  std::optional<delta::Snapshot> silver_old;
  std::set<std::string> silver_columns;
  if (sv != result.versions.end() && result.silver_rows > 0) {
    ASSIGN_OR_RETURN(delta::Snapshot snap, SnapshotAt(c, silver_path, sv->second));
    delta::Snapshot old;
    if (sv->second > 0) {
      ASSIGN_OR_RETURN(old, SnapshotAt(c, silver_path, sv->second - 1));
    }
    for (const auto& f : snap.schema().fields) silver_columns.insert(f.name);
    std::set<std::string> wanted(std::begin(kBaseColumns), std::end(kBaseColumns));
    for (const auto& ch : options.checks) {
      for (const auto& col : ch.columns) wanted.insert(col);
      if (!ch.column.empty()) wanted.insert(ch.column);
    }
    std::string select;
    for (const auto& col : wanted) {
      if (!silver_columns.count(col)) continue;
      select += (select.empty() ? "" : ", ");
      select += (col == "event_ts" || col == "received_at") ? "CAST(" + Qi(col) + " AS TIMESTAMP) AS " + Qi(col)
                                                            : Qi(col);
    }
    std::set<std::string> before;
    for (const auto& f : old.files) before.insert(f.path);
    delta::Snapshot added = snap;
    added.files.clear();
    for (const auto& f : snap.files)
      if (!before.count(f.path)) added.files.push_back(f);
    std::string own;  // the batch's offsets (a table without log columns, e.g. a test's: every added row)
    if (silver_columns.count("log_partition") && silver_columns.count("log_offset")) {
      for (const auto& [p, range] : result.offsets)
        own += std::string(own.empty() ? "" : " OR ") + "(log_partition = " + std::to_string(p) +
               " AND log_offset >= " + std::to_string(range.first) + " AND log_offset < " +
               std::to_string(range.second) + ")";
    }
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(silver_path, added));
    RETURN_IF_ERROR(Exec(c, "CREATE OR REPLACE TEMP TABLE batch_events AS SELECT " + select + " FROM (" + scan + ")" +
                                (own.empty() ? "" : " WHERE " + own)));
    have_silver = true;
    Phase("diff");
    silver_old = std::move(old);

    // Baselines: net rows per (source, event_name, hour of arrival); nulls per (event_name, hour).
    std::vector<std::string> null_columns;
    for (const auto& ch : options.checks)
      if (ch.enabled && ch.type == "null_spike")
        for (const auto& col : ch.columns)
          if (silver_columns.count(col) &&
              std::find(null_columns.begin(), null_columns.end(), col) == null_columns.end())
            null_columns.push_back(col);
    std::string nulls;
    for (const auto& col : null_columns) nulls += ", sum(CASE WHEN " + Qi(col) + " IS NULL THEN s ELSE 0 END)";
    ASSIGN_OR_RETURN(auto counts, Query(c, "SELECT coalesce(source, ''), coalesce(event_name, ''), "
                                           "epoch_us(date_trunc('hour', received_at)), sum(s)" + nulls +
                                           " FROM (SELECT *, 1 AS s FROM batch_events) GROUP BY ALL"));
    std::map<std::pair<std::string, int64_t>, std::vector<int64_t>> null_sums;  // (event, hour) → per column
    for (size_t i = 0; i < counts.row_count(); i++) {
      const std::string event = counts.GetString(i, 1);
      const int64_t hour = counts.GetInt64(i, 2);
      auto& sums = null_sums[{event, hour}];
      sums.resize(null_columns.size());
      for (size_t k = 0; k < null_columns.size(); k++) sums[k] += counts.GetInt64(i, 4 + k);
    }
    // The null-spike baseline is what came before this batch: judge first, then record.
    for (const auto& ch : options.checks) {
      if (!ch.enabled || ch.type != "null_spike" || ch.dataset != "silver.events") continue;
      std::string sel;
      for (const auto& col : ch.columns) {
        if (!silver_columns.count(col)) {
          errored(ch, Status::InvalidArgument("column " + col + " is not in silver.events"));
          continue;
        }
        sel += ", count(*) FILTER (WHERE " + Qi(col) + " IS NULL)";
      }
      auto q = Query(c, "SELECT coalesce(event_name, ''), count(*)" + sel + " FROM batch_events GROUP BY ALL");
      if (!q.ok()) {
        errored(ch, q.status());
        continue;
      }
      size_t k = 0;
      for (const auto& col : ch.columns) {
        if (!silver_columns.count(col)) continue;
        CheckResult r = make(ch);
        r.series = "column=" + col;
        bool failing = false;
        double worst = -INFINITY;
        std::string detail = "no event name with at least " + std::to_string(ch.min_rows) + " rows and a baseline";
        for (size_t i = 0; i < q->row_count(); i++) {
          const std::string event = q->GetString(i, 0);
          const double n = static_cast<double>(q->GetInt64(i, 1));
          const double nulls_now = static_cast<double>(q->GetInt64(i, 2 + k));
          if (n < ch.min_rows) continue;
          // Baseline: the trailing week of this event name (all sources).
          double base_rows = 0, base_nulls = 0;
          for (const auto& [key, hours] : series) {
            const auto& [ds, src, ev, metric] = key;
            if (ds != "silver.events" || ev != event) continue;
            const bool is_rows = metric == "rows", is_nulls = metric == "null:" + col;
            if (!is_rows && !is_nulls) continue;
            for (auto it = hours.lower_bound(FloorHour(now) - kWeekUs); it != hours.end(); ++it)
              (is_rows ? base_rows : base_nulls) += it->second;
          }
          if (base_rows < ch.min_rows) continue;
          const double p0 = std::clamp(base_nulls / base_rows, 0.0, 1.0), p = nulls_now / n;
          const double se = std::sqrt(std::max(p0 * (1 - p0), 1e-4) / n);
          const double z = (p - p0) / se;
          const double increase = p - p0;
          if (increase > worst) {
            worst = increase;
            r.observed = p;
            r.expected_min = 0;
            r.expected_max = std::min(1.0, p0 + std::max(ch.min_increase, ch.threshold * se));
            detail = "event " + event + ": null rate " + Fixed(100 * p) + "% of " + Fixed(n, 0) + " rows vs baseline " +
                     Fixed(100 * p0) + "% (z " + Fixed(z, 2) + ")";
          }
          if (increase >= ch.min_increase && z > ch.threshold) failing = true;
        }
        r.detail = (failing ? "null spike: " : "") + detail;
        judged(ch, std::move(r), failing);
        k++;
      }
    }
    for (size_t i = 0; i < counts.row_count(); i++)
      AddState(counts.GetInt64(i, 2), "silver.events", counts.GetString(i, 0), counts.GetString(i, 1), "rows",
               counts.GetInt64(i, 3));
    for (const auto& [ek, sums] : null_sums)
      for (size_t k = 0; k < null_columns.size(); k++)
        AddState(ek.second, "silver.events", "*", ek.first, "null:" + null_columns[k], sums[k]);
  }

  if (have_silver) Phase("silver baselines and nulls");
  // ---- bronze.events: the files this batch appended ----
  auto bv = result.versions.find("bronze.events");
  if (bv != result.versions.end() && result.bronze_rows > 0 && enabled("volume_anomaly")) {
    const std::string bronze_path = JoinPath(lake_dir, "bronze/events");
    ASSIGN_OR_RETURN(delta::Snapshot snap, SnapshotAt(c, bronze_path, bv->second));
    std::set<std::string> before;
    if (bv->second > 0) {
      ASSIGN_OR_RETURN(delta::Snapshot old, SnapshotAt(c, bronze_path, bv->second - 1));
      for (const auto& f : old.files) before.insert(f.path);
    }
    delta::Snapshot added = snap;
    added.files.clear();
    for (const auto& f : snap.files)
      if (!before.count(f.path)) added.files.push_back(f);
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(bronze_path, added));
    // Per source, and per source and event name as the tracker sent it (Bronze is raw):
    // a Segment track call's `event`, else its `type`; a Snowplow event's `e` (DuckDB's JSON; a
    // payload that is not JSON, or has none of them, counts under "(unparsed)").
    // `by_event_name = false` on every Bronze volume check: per source only, payloads unread.
    bool by_name = false;
    for (const auto& ch : options.checks)
      by_name |= ch.enabled && ch.type == "volume_anomaly" && ch.dataset == "bronze.events" && ch.by_event_name;
    const std::string name_sql =
        by_name ? "json_extract_string(CASE WHEN json_valid(payload) THEN payload ELSE '{}' END, "
                  "['$.type', '$.event', '$.e'])"
                : "NULL::VARCHAR[]";
    ASSIGN_OR_RETURN(auto counts, Query(c,
        "SELECT coalesce(source, ''), epoch_us(date_trunc('hour', CAST(received_at AS TIMESTAMP))), "
        "coalesce(n[2], n[1], n[3], '(unparsed)'), count(*) FROM (SELECT source, received_at, " + name_sql +
            " AS n FROM (" + scan + ")) GROUP BY ALL"));
    std::map<std::pair<std::string, int64_t>, int64_t> per_source;
    for (size_t i = 0; i < counts.row_count(); i++) {
      if (by_name)
        AddState(counts.GetInt64(i, 1), "bronze.events", counts.GetString(i, 0), counts.GetString(i, 2), "rows",
                 counts.GetInt64(i, 3));
      per_source[{counts.GetString(i, 0), counts.GetInt64(i, 1)}] += counts.GetInt64(i, 3);
    }
    for (const auto& [key, n] : per_source) AddState(key.second, "bronze.events", key.first, "*", "rows", n);
  }

  Phase("bronze");
  // ---- volume: every hour that completed since the last judgement ----
  // Not while a backlog drains: the hours are then not all in the lake yet.
  if (enabled("volume_anomaly") && result.started_us > 0 && !result.backlog) {
    const int64_t completed = FloorHour(result.started_us);  // the log held all of every earlier hour
    if (evaluated_through_us < 0) evaluated_through_us = completed - kHourUs;
    const int64_t from = std::max(evaluated_through_us, completed - kMaxHoursPerRun * kHourUs);
    if (completed > evaluated_through_us) {
      for (const auto& ch : options.checks)
        if (ch.enabled && ch.type == "volume_anomaly") Volume(ch, result, from, completed, &out);
      evaluated_through_us = completed;
      pending_state.push_back("(" + TimestampSql(completed) + ", 'volume', '', '', 'evaluated_through', 0::BIGINT)");
    }
  }

  Phase("volume");
  // ---- checks on the batch's rows ----
  for (const auto& ch : options.checks) {
    if (!ch.enabled) continue;
    if (ch.type == "quarantine_rate") {
      if (result.events <= 0) continue;
      CheckResult r = make(ch);
      const double rate = static_cast<double>(result.quarantined) / result.events;
      r.observed = rate;
      r.expected_min = 0;
      r.expected_max = ch.warn_above;
      std::string codes;
      for (const auto& [code, n] : result.quarantine_by_code) codes += (codes.empty() ? "" : ", ") + code + " " + std::to_string(n);
      r.detail = std::to_string(result.quarantined) + " of " + std::to_string(result.events) + " events quarantined (" +
                 Fixed(100 * rate, 2) + "%)" + (codes.empty() ? "" : ": " + codes);
      if (rate > ch.error_above) {
        r.status = CheckStatus::kFail;
        r.severity = Severity::kError;
      } else if (rate > ch.warn_above) {
        r.status = CheckStatus::kWarn;
      }
      out.push_back(std::move(r));
      continue;
    }
    if (ch.type == "schema_drift") {
      std::vector<std::string> findings;
      // The columns a table starts with are no drift.
      if (!have_silver || !silver_old->files.empty())
        for (const auto& column : result.new_prop_columns) findings.push_back("new column " + column);
      if (result.prop_type_conflicts > 0)
        findings.push_back(std::to_string(result.prop_type_conflicts) +
                           " property values conflict with their column's type (kept only in properties)");
      for (const auto& [event, version] : options.contract_versions) {
        auto it = contract_versions.find(event);
        if (it != contract_versions.end() && it->second != version)
          findings.push_back("contract " + event + " v" + std::to_string(it->second) + " -> v" + std::to_string(version));
        if (it == contract_versions.end() || it->second != version) {
          contract_versions[event] = version;
          pending_state.push_back("(" + TimestampSql(now) + ", 'contracts', '', " + Sq(event) +
                                  ", 'contract_version', " + std::to_string(version) + "::BIGINT)");
        }
      }
      CheckResult r = make(ch);
      r.observed = static_cast<double>(findings.size());
      r.expected_max = 0;
      for (const auto& f : findings) r.detail += (r.detail.empty() ? "" : "; ") + f;
      if (findings.empty()) r.detail = "no drift";
      judged(ch, std::move(r), !findings.empty());
      continue;
    }
    if (!have_silver || ch.dataset != "silver.events") continue;
    if (ch.type == "unique" || ch.type == "accepted_values" || ch.type == "revenue_present") {
      if (!ch.column.empty() && !silver_columns.count(ch.column)) {
        errored(ch, Status::InvalidArgument("column " + ch.column + " is not in silver.events"));
        continue;
      }
      std::string sql, what;
      if (ch.type == "unique") {
        sql = "SELECT count(*) - count(DISTINCT " + Qi(ch.column) + "), count(*), (SELECT string_agg(v, ', ') FROM (SELECT " +
              Qi(ch.column) + "::VARCHAR AS v FROM batch_events GROUP BY 1 HAVING count(*) > 1 LIMIT 5)) "
              "FROM batch_events";
        what = " duplicate " + ch.column + " values among the batch's ";
      } else if (ch.type == "accepted_values") {
        std::string list;
        for (const auto& v : ch.values) list += (list.empty() ? "" : ", ") + Sq(v);
        sql = "SELECT count(*) FILTER (WHERE " + Qi(ch.column) + " IS NOT NULL AND " + Qi(ch.column) +
              "::VARCHAR NOT IN (" + list + ")), count(*), (SELECT string_agg(DISTINCT " + Qi(ch.column) +
              "::VARCHAR, ', ') FROM (SELECT " + Qi(ch.column) + " FROM batch_events WHERE " + Qi(ch.column) +
              "::VARCHAR NOT IN (" + list + ") LIMIT 5)) FROM batch_events";
        what = " rows with " + ch.column + " outside the accepted values among the batch's ";
      } else {
        sql = "SELECT count(*) FILTER (WHERE event_name = 'order_completed' AND revenue IS NULL), count(*), "
              "(SELECT string_agg(event_id, ', ') FROM (SELECT event_id FROM batch_events WHERE event_name = 'order_completed' "
              "AND revenue IS NULL LIMIT 5)) FROM batch_events";
        what = " order_completed events without revenue among the batch's ";
      }
      auto q = Query(c, sql);
      if (!q.ok()) {
        errored(ch, q.status());
        continue;
      }
      CheckResult r = make(ch);
      const int64_t bad = q->GetInt64(0, 0);
      r.observed = static_cast<double>(bad);
      r.expected_min = 0;
      r.expected_max = 0;
      r.detail = std::to_string(bad) + what + std::to_string(q->GetInt64(0, 1)) + " new rows" +
                 (bad > 0 && !q->IsNull(0, 2) ? ", e.g. " + q->GetString(0, 2) : "");
      judged(ch, std::move(r), bad > 0);
      continue;
    }
    if (ch.type == "sql") {
      auto run = [&]() -> Result<std::pair<int64_t, std::string>> {
        RETURN_IF_ERROR(delta::RegisterLakeViews(c, lake_dir, std::nullopt, fs));
        const std::string sql = engine::QualifySchemaReferences(ch.sql, "system", "memory");
        ASSIGN_OR_RETURN(auto n, Query(c, "SELECT count(*) FROM (" + sql + ")"));
        std::string sample;
        if (n.GetInt64(0, 0) > 0) {
          ASSIGN_OR_RETURN(auto s, Query(c, "SELECT * FROM (" + sql + ") LIMIT 3"));
          sample = s.ToJson();
        }
        return std::make_pair(n.GetInt64(0, 0), sample);
      };
      auto q = run();
      if (!q.ok()) {
        errored(ch, q.status());
        continue;
      }
      CheckResult r = make(ch);
      r.observed = static_cast<double>(q->first);
      r.expected_min = 0;
      r.expected_max = 0;
      r.detail = std::to_string(q->first) + " failing rows" + (q->first > 0 ? ", e.g. " + q->second : "");
      judged(ch, std::move(r), q->first > 0);
    }
  }

  Phase("row checks");
  // ---- Gold against Silver: each row the batch wrote to Silver, as Gold now has it ----
  // Reads only the gold.fact_events files whose event_date and event_ts ranges
  // hold the batch's rows (the refresh just wrote them), never the whole day.
  if (have_silver && result.gold && !result.gold->noop) {
    for (const auto& ch : options.checks) {
      if (!ch.enabled || ch.type != "revenue_consistency") continue;
      auto run = [&]() -> Result<CheckResult> {
        CheckResult r = make(ch);
        ASSIGN_OR_RETURN(auto span, Query(c, "SELECT count(*), strftime(min(event_date), '%Y-%m-%d'), "
                                             "strftime(max(event_date), '%Y-%m-%d'), epoch_us(min(event_ts)), "
                                             "epoch_us(max(event_ts)) FROM batch_events"));
        if (span.GetInt64(0, 0) == 0 || span.IsNull(0, 1) || span.IsNull(0, 3)) {
          r.detail = "no new silver rows to compare";
          return r;
        }
        const std::string gold_path = JoinPath(lake_dir, "gold/fact_events");
        ASSIGN_OR_RETURN(delta::Snapshot gold_snap, SnapshotAt(c, gold_path, std::nullopt));
        // The refresh wrote the touched rows into the files of its commit: when it
        // is known, only those are candidates (a late event's day is not scanned).
        auto refreshed = result.gold->tables.find("gold/fact_events");
        if (refreshed != result.gold->tables.end() && refreshed->second.version > 0 &&
            refreshed->second.version == gold_snap.version) {
          ASSIGN_OR_RETURN(delta::Snapshot before,
                           SnapshotAt(c, gold_path, refreshed->second.version - 1));
          std::set<std::string> old_paths;
          for (const auto& f : before.files) old_paths.insert(f.path);
          std::vector<delta::AddFile> files;
          for (auto& f : gold_snap.files)
            if (!old_paths.count(f.path)) files.push_back(std::move(f));
          gold_snap.files = std::move(files);
        }
        const std::vector<delta::Predicate> range = {
            {"event_date", ">=", span.GetString(0, 1), "DATE"},
            {"event_date", "<=", span.GetString(0, 2), "DATE"},
            {"event_ts", ">=", FormatTimestampMicros(span.GetInt64(0, 3)), ""},
            {"event_ts", "<=", FormatTimestampMicros(span.GetInt64(0, 4)), ""}};
        ASSIGN_OR_RETURN(std::string g_scan, delta::ScanSql(gold_path, gold_snap, range));
        const std::string tol = DoubleSql(ch.tolerance);
        ASSIGN_OR_RETURN(auto q, Query(c,
            "WITH s AS (SELECT event_id, event_date, revenue::DOUBLE AS revenue FROM batch_events), "
            "g AS (SELECT event_id, count(*) AS copies, sum(revenue)::DOUBLE AS revenue FROM (" + g_scan + ") "
            "WHERE event_id IN (SELECT event_id FROM s) GROUP BY 1) "
            "SELECT strftime(s.event_date, '%Y-%m-%d'), count(*), count(g.event_id), coalesce(sum(s.revenue), 0), "
            "coalesce(sum(g.revenue), 0), count(*) FILTER (WHERE g.event_id IS NOT NULL AND (g.copies <> 1 OR "
            "(s.revenue IS NULL) <> (g.revenue IS NULL) OR abs(s.revenue - g.revenue) > " + tol + ")), "
            "string_agg(CASE WHEN g.event_id IS NULL OR g.copies <> 1 OR (s.revenue IS NULL) <> (g.revenue IS NULL) "
            "OR abs(s.revenue - g.revenue) > " + tol + " THEN s.event_id END, ', ') "
            "FROM s LEFT JOIN g USING (event_id) GROUP BY 1 ORDER BY 1"));
        double silver_rev = 0, gold_rev = 0;
        int64_t rows = 0;
        std::string mismatches;
        for (size_t i = 0; i < q.row_count(); i++) {
          rows += q.GetInt64(i, 1);
          silver_rev += q.GetDouble(i, 3);
          gold_rev += q.GetDouble(i, 4);
          const int64_t missing = q.GetInt64(i, 1) - q.GetInt64(i, 2), differ = q.GetInt64(i, 5);
          if (missing == 0 && differ == 0) continue;
          std::string ids = q.GetString(i, 6);
          if (ids.size() > 200) ids = ids.substr(0, 200) + "…";
          mismatches += (mismatches.empty() ? "" : "; ") + q.GetString(i, 0) + ": " + std::to_string(missing) +
                        " of " + std::to_string(q.GetInt64(i, 1)) + " rows missing in gold, " +
                        std::to_string(differ) + " differ; revenue silver " + Fixed(q.GetDouble(i, 3), 2) +
                        ", gold " + Fixed(q.GetDouble(i, 4), 2) + " (" + ids + ")";
        }
        r.observed = gold_rev;
        r.expected_min = silver_rev - ch.tolerance;
        r.expected_max = silver_rev + ch.tolerance;
        r.detail = mismatches.empty() ? "gold.fact_events holds the batch's " + std::to_string(rows) +
                                            " silver rows with their revenue (" + Fixed(silver_rev, 2) + ")"
                                      : "gold.fact_events differs from silver.events: " + mismatches;
        if (!mismatches.empty()) r.status = ch.severity == Severity::kError ? CheckStatus::kFail : CheckStatus::kWarn;
        return r;
      };
      auto r = run();
      if (r.ok()) {
        out.push_back(std::move(r).value());
      } else {
        errored(ch, r.status());
      }
    }
  }
  Phase("gold vs silver");
  // ---- Gold's daily revenue against Silver's, for the session dates the batch touched ----
  if (have_silver && result.gold && !result.gold->noop) {
    for (const auto& ch : options.checks) {
      if (!ch.enabled || ch.type != "revenue_daily") continue;
      RETURN_IF_ERROR(RevenueDaily(ch, result, c, now, &out));
    }
  }
  Phase("daily revenue");
  for (auto& r : out) {
    r.checked_at_us = now;
    if (r.status == CheckStatus::kFail) {
      for (const auto& ch : options.checks)
        if (ch.name == r.check && ch.block) r.blocking = true;
    }
  }
  return out;
}

void QualityObserver::Impl::UpdateLagMetrics() {
  if (!log) return;
  auto committed = log->CommittedOffsets(group);
  if (!committed.ok()) return;
  for (int32_t p = 0; p < log->num_partitions(); p++) {
    auto info = log->GetPartitionInfo(p);
    if (!info.ok()) continue;
    auto it = committed->find(p);
    const int64_t next = it == committed->end() ? info->start_offset : it->second;
    MetricsRegistry::Global()
        ->GetGauge("clicklake_processor_consumer_lag_events",
                   "Records in the event log not yet processed, per partition (end offset - committed offset).",
                   {{"partition", std::to_string(p)}})
        ->Set(static_cast<double>(std::max<int64_t>(0, info->end_offset - next)));
  }
}

void QualityObserver::Impl::ExportResultMetrics(const std::vector<CheckResult>& results) {
  auto* m = MetricsRegistry::Global();
  std::map<std::pair<std::string, std::string>, int> worst;  // (check, dataset) → 0 pass .. 3 error
  for (const auto& r : results) {
    m->GetCounter("clicklake_quality_check_results_total", "Quality check results, by check and status.",
                  {{"check", r.check}, {"dataset", r.dataset}, {"status", ToString(r.status)}})
        ->Increment();
    int& w = worst[{r.check, r.dataset}];
    w = std::max(w, static_cast<int>(r.status));
  }
  for (const auto& [key, w] : worst) {
    m->GetGauge("clicklake_quality_check_status",
                "The latest result of each check: 0 pass, 1 warn, 2 fail, 3 error (the worst over its series).",
                {{"check", key.first}, {"dataset", key.second}})
        ->Set(w);
  }
}

QualityObserver::QualityObserver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QualityObserver::~QualityObserver() = default;

Result<std::shared_ptr<QualityObserver>> QualityObserver::Create(const QualityOptions& options,
                                                                 const std::string& lake_dir,
                                                                 const std::string& consumer_group,
                                                                 log::EventLog* log, FileSystem* fs, Clock* clock) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->lake_dir = lake_dir;
  impl->group = consumer_group;
  impl->log = log;
  impl->fs = fs;
  impl->clock = clock;
  engine::DatabaseOptions o;
  o.threads = 1;  // checks read what one batch changed: small, and the processor owns the cores
  ASSIGN_OR_RETURN(impl->db, engine::Database::Open(o));
  auto* m = MetricsRegistry::Global();
  impl->batch_seconds = m->GetHistogram("clicklake_processor_batch_duration_seconds",
                                        "Wall time of each committed micro-batch, from start to system.batches.", {},
                                        {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300});
  impl->quarantine_ratio = m->GetGauge("clicklake_processor_quarantine_ratio",
                                       "Quarantined / events of the last micro-batch.");
  impl->batches_failed = m->GetCounter("clicklake_processor_batches_failed_total",
                                       "Micro-batches that stopped with an error (retried from their offsets).");
  impl->observer_errors = m->GetCounter("clicklake_quality_observer_errors_total",
                                        "Quality runs that could not complete (logged; the batch is unaffected).");
  impl->observer_seconds = m->GetGauge("clicklake_quality_last_run_seconds",
                                       "Time the quality checks and readiness took after the last batch.");
  for (const char* t : {"bronze.events", "silver.events", "silver.quarantine"})
    m->GetCounter("clicklake_table_rows_written_total", "Rows appended to each table by the processor.", {{"table", t}});
  return std::shared_ptr<QualityObserver>(new QualityObserver(std::move(impl)));
}

void QualityObserver::OnBatchStarted(int64_t batch_id, int64_t started_us) {}

void QualityObserver::OnBatchFailed(int64_t batch_id, const Status& status) { impl_->batches_failed->Increment(); }

Result<std::vector<CheckResult>> QualityObserver::RunChecks(const pipeline::BatchResult& result) {
  ASSIGN_OR_RETURN(auto conn, impl_->db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  return impl_->Run(result, conn.get());
}

void QualityObserver::OnBatchCommitted(const pipeline::BatchResult& result) {
  Impl& d = *impl_;
  // Metrics of the batch itself (no lake reads).
  auto* m = MetricsRegistry::Global();
  if (result.finished_us > result.started_us) d.batch_seconds->Observe((result.finished_us - result.started_us) / 1e6);
  if (result.events > 0) d.quarantine_ratio->Set(static_cast<double>(result.quarantined) / result.events);
  auto rows = [&](const std::string& table, int64_t n) {
    m->GetCounter("clicklake_table_rows_written_total", "Rows appended to each table by the processor.",
                  {{"table", table}})
        ->Increment(n);
  };
  rows("bronze.events", result.bronze_rows);
  rows("silver.events", result.silver_rows);
  rows("silver.quarantine", result.quarantined);
  if (result.gold) {
    for (const auto& [table, t] : result.gold->tables) {
      std::string name = table;
      std::replace(name.begin(), name.end(), '/', '.');
      rows(name, t.rows_written);
    }
  }
  d.UpdateLagMetrics();
  if (!d.options.enabled) return;

  const int64_t t0 = d.clock->MonotonicMicros();
  d.queries = 0;
  ObserverRunStats stats;
  stats.batch_id = result.batch_id;
  auto run = [&]() -> Status {
    ASSIGN_OR_RETURN(auto conn, d.db->Connect());
    engine::Connection* c = conn.get();
    RETURN_IF_ERROR(c->Execute("SET TimeZone = 'UTC'"));
    ASSIGN_OR_RETURN(std::vector<CheckResult> results, d.Run(result, c));
    stats.checks_run = static_cast<int64_t>(results.size());
    if (results.empty() && d.pending_state.empty()) return Status::OK();  // nothing changed: nothing to judge
    // Freshness, from the same facts readiness is derived from.
    d.queries++;
    const int64_t now = d.clock->NowMicros();
    // system.quality_results is read once; from then on this observer, its only writer, keeps
    // the latest results (d.known_results) itself.
    ASSIGN_OR_RETURN(LakeFacts facts, GatherFacts(c, d.lake_dir, d.fs, now, d.known()));
    if (!d.known_results) d.known_results = facts;
    d.Phase("readiness facts");
    {
      std::vector<DatasetReadiness> pre = DeriveReadiness(facts, d.options, now, c);
      for (const auto& ch : d.options.checks) {
        if (!ch.enabled || ch.type != "freshness") continue;
        CheckResult r = NewResult(ch, result, now);
        auto it = std::find_if(pre.begin(), pre.end(), [&](const DatasetReadiness& x) { return x.dataset == ch.dataset; });
        if (it == pre.end() || !it->lag_us) {
          r.detail = it == pre.end() ? "unknown dataset " + ch.dataset : "no events covered yet";
          if (it == pre.end()) r.status = CheckStatus::kError;
        } else {
          r.observed = *it->lag_us / 1e6;
          r.expected_min = 0;
          r.expected_max = (ch.warn_after_us > 0 ? ch.warn_after_us : ch.error_after_us) / 1e6;
          r.detail = "lag " + FormatLag(*it->lag_us) + " (newest event " + FormatTimestampMicros(*it->newest_event_us) + ")";
          if (ch.error_after_us > 0 && *it->lag_us > ch.error_after_us) {
            r.status = CheckStatus::kFail;
            r.severity = Severity::kError;
            r.detail += " > error_after " + FormatLag(ch.error_after_us);
          } else if (ch.warn_after_us > 0 && *it->lag_us > ch.warn_after_us) {
            r.status = CheckStatus::kWarn;
            r.detail += " > warn_after " + FormatLag(ch.warn_after_us);
          }
          if (r.status == CheckStatus::kFail && ch.block) r.blocking = true;
        }
        results.push_back(std::move(r));
      }
    }
    // Keep the table bounded: passes go first when a batch has too many results.
    if (static_cast<int64_t>(results.size()) > d.options.max_results_per_batch) {
      std::stable_partition(results.begin(), results.end(),
                            [](const CheckResult& r) { return r.status != CheckStatus::kPass; });
      results.resize(d.options.max_results_per_batch);
    }
    std::vector<std::string> result_rows;
    for (const auto& r : results) result_rows.push_back(ResultValuesSql(r));
    RETURN_IF_ERROR(d.Append(c, kResultsTable, ResultsSchema(), result_rows, kResultColumns, result.batch_id));
    RETURN_IF_ERROR(d.CommitState(c, result.batch_id));
    d.Phase("commits");
    OverlayResults(&*d.known_results, results);
    if (std::any_of(results.begin(), results.end(), [](const CheckResult& r) { return r.blocking; })) {
      // The refresh this batch published is withdrawn.
      ASSIGN_OR_RETURN(facts, GatherFacts(c, d.lake_dir, d.fs, now, d.known()));
    } else {
      OverlayResults(&facts, results);
    }
    std::vector<DatasetReadiness> readiness = DeriveReadiness(facts, d.options, now, c);
    RETURN_IF_ERROR(d.ReplaceReadiness(c, readiness));
    d.Phase("readiness");
    ExportReadinessMetrics(readiness);
    d.ExportResultMetrics(results);
    stats.results = static_cast<int64_t>(results.size());
    std::vector<std::shared_ptr<QualityListener>> listeners;
    {
      std::lock_guard l(d.mu);
      d.results = results;
      d.readiness = readiness;
      listeners = d.listeners;
    }
    for (const auto& l : listeners) {
      l->OnCheckResults(result.batch_id, results);
      l->OnReadiness(readiness);
    }
    int failing = 0;
    for (const auto& r : results) failing += r.status != CheckStatus::kPass;
    spdlog::info("quality: batch {}: {} check results ({} not passing), {:.0f} ms ({})", result.batch_id,
                 results.size(), failing, (d.clock->MonotonicMicros() - t0) / 1000.0, d.phases);
    return Status::OK();
  };
  Status s;
  try {
    s = run();
  } catch (const std::exception& e) {
    s = Status::Internal(e.what());
  }
  d.pending_state.clear();
  if (!s.ok()) {
    d.observer_errors->Increment();
    spdlog::error("quality: batch {}: checks could not run (the batch is committed; readiness may be stale): {}",
                  result.batch_id, s.ToString());
  }
  stats.queries = d.queries;
  stats.us = d.clock->MonotonicMicros() - t0;
  d.observer_seconds->Set(stats.us / 1e6);
  std::lock_guard l(d.mu);
  d.stats = stats;
}

void QualityObserver::OnTick(int64_t now_us) {
  Impl& d = *impl_;
  d.UpdateLagMetrics();
  if (!d.options.enabled) return;
  // Readiness moves with time alone (LATE): refreshed on ticks, at most every readiness_interval.
  if (d.last_tick_readiness_us >= 0 && now_us - d.last_tick_readiness_us < d.options.readiness_interval_us) return;
  d.last_tick_readiness_us = now_us;
  auto r = [&]() -> Result<std::vector<DatasetReadiness>> {
    ASSIGN_OR_RETURN(auto conn, d.db->Connect());
    RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
    ASSIGN_OR_RETURN(LakeFacts facts, GatherFacts(conn.get(), d.lake_dir, d.fs, now_us, d.known()));
    return DeriveReadiness(facts, d.options, now_us, conn.get());
  }();
  if (!r.ok()) {
    spdlog::warn("quality: readiness: {}", r.status().ToString());
    return;
  }
  ExportReadinessMetrics(*r);
  std::vector<std::shared_ptr<QualityListener>> listeners;
  {
    std::lock_guard l(d.mu);
    d.readiness = *r;
    listeners = d.listeners;
  }
  for (const auto& l : listeners) l->OnReadiness(*r);
}

void QualityObserver::AddListener(std::shared_ptr<QualityListener> listener) {
  std::lock_guard l(impl_->mu);
  impl_->listeners.push_back(std::move(listener));
}

std::vector<DatasetReadiness> QualityObserver::LastReadiness() const {
  std::lock_guard l(impl_->mu);
  return impl_->readiness;
}

std::vector<CheckResult> QualityObserver::LastResults() const {
  std::lock_guard l(impl_->mu);
  return impl_->results;
}

ObserverRunStats QualityObserver::last_run() const {
  std::lock_guard l(impl_->mu);
  return impl_->stats;
}

}  // namespace clicklake::quality
