// quality: is the data safe to use? Quality checks after each micro-batch and
// the readiness of every dataset (the public face of src/governance/quality/).
//
//   - QualityObserver, a pipeline::BatchObserver: after each committed batch it
//     runs the configured checks ([[quality.checks]], plus built-in defaults that
//     need no configuration) on what the batch changed (the Delta versions in
//     BatchResult.versions), appends one row per check result to
//     system.quality_results, rewrites system.readiness, and updates the
//     processor's Prometheus metrics (common/metrics.h). Listeners
//     (QualityListener: lineage, alerts) hear of every result and readiness.
//   - ComputeReadiness: READY / LATE / FAILED / UNKNOWN per dataset, computed
//     from the lake's tables (system.batches, system.gold_refreshes,
//     system.quality_results, the tables' Delta stats) plus the current time, so
//     it needs no running processor: a stopped processor turns datasets LATE
//     once their SLA passes. `clicklake status` and GET /api/v1/readiness use it.
//
// Tables (Delta, under <lake>/system/):
//   quality_results — check, check_type, dataset, batch_id, window_start,
//       window_end, status (pass|warn|fail|error), observed, expected_min,
//       expected_max, severity (warn|error), blocking, detail, checked_at.
//   readiness — one row per dataset (see DatasetReadiness), replaced per batch.
//   quality_state — hourly counts per (dataset, source, event_name, metric):
//       the volume and null-rate baselines, so no check rescans history.
//
// Ownership: a QualityObserver owns its engine::Database; it borrows the
// FileSystem and Clock (they must outlive it). Thread safety: the observer's
// hooks are called from the runner's thread; LastReadiness(), LastResults() and
// AddListener() may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"
#include "pipeline/pipeline.h"

namespace clicklake::engine {
class Database;
class Connection;
}  // namespace clicklake::engine
namespace clicklake::log {
class EventLog;
}

namespace clicklake::quality {

enum class CheckStatus { kPass, kWarn, kFail, kError };
enum class Severity { kWarn, kError };
const char* ToString(CheckStatus s);  // "pass" | "warn" | "fail" | "error"
const char* ToString(Severity s);     // "warn" | "error"

// One check of [[quality.checks]] (or a built-in default). `type` is one of:
//   volume_anomaly  hourly row counts per (dataset, source, event_name) against
//                   the same hour-of-week in the trailing training_weeks
//                   (z-score; completed hours only)
//   null_spike      null rate of `columns` in the batch against its baseline
//   freshness       lag of `dataset` (warn_after / error_after)
//   revenue_consistency  Gold (fact_events) against Silver: every row the batch
//                   wrote to Silver is in gold.fact_events once, with its revenue
//   revenue_daily   Gold's daily revenue (gold.fact_session_daily by session_date)
//                   against the order_completed revenue of Silver's sessions that
//                   start that day, for the dates the batch touched (at most every
//                   `interval`; dates touched meanwhile wait for the next run)
//   revenue_present order_completed events without revenue
//   unique          `column` (default event_id) unique among the batch's new rows
//   accepted_values `column` in `values`
//   quarantine_rate the batch's quarantined / events (dataset silver.events)
//   schema_drift    new prop_ columns, property type conflicts, contract versions
//   sql             a custom assertion: `sql` returns the failing rows (views:
//                   the lake's layer.table and batch_events = the batch's new
//                   silver rows)
struct CheckConfig {
  std::string name;      // unique; default: type (+ "_" + dataset/column)
  std::string type;
  std::string dataset = "silver.events";
  Severity severity = Severity::kWarn;
  bool block = false;    // an error result holds the batch's Gold refresh back from READY
  bool enabled = true;
  // volume_anomaly (Elementary's method)
  double threshold = 3.0;           // |z| above this is an anomaly
  int training_weeks = 8;           // trailing same hour-of-week buckets
  int min_training_size = 4;        // fewer buckets: pass ("training")
  double min_relative_change = 0.2; // |observed - mean| / mean below this never alarms
  std::string direction = "both";   // up | down | both
  bool by_event_name = true;        // bronze.events: per event name too (reads each payload's name)
  // null_spike
  std::vector<std::string> columns;
  double min_increase = 0.05;       // absolute rate increase that may alarm
  int64_t min_rows = 100;           // batch rows per event_name below this: skipped
  // freshness (micros)
  int64_t warn_after_us = 0;
  int64_t error_after_us = 0;
  // unique / accepted_values
  std::string column;
  std::vector<std::string> values;
  // quarantine_rate (fractions)
  double warn_above = 0.02;
  double error_above = 0.10;
  // revenue_consistency, revenue_daily
  double tolerance = 0.01;          // currency units
  int64_t interval_us = 0;          // revenue_daily: at most one run per interval (0: every batch)
  // sql
  std::string sql;
};

// A dataset's SLA: a maximum lag, and optionally a daily deadline ("yesterday
// complete by 08:00 Europe/Berlin": from 08:00 local time on, the dataset must
// cover events up to local midnight).
struct Sla {
  std::string dataset = "*";        // exact, "*", or a prefix pattern "gold.*"
  int64_t max_lag_us = 30LL * 60 * 1000000;
  std::string deadline;             // "HH:MM" local time, "" = none
  std::string timezone = "UTC";     // IANA name (DuckDB ICU)
  std::string Describe() const;     // "max lag 30m; yesterday complete by 08:00 Europe/Berlin"
};

struct QualityOptions {
  bool enabled = true;              // quality.enabled: checks + readiness after each batch
  bool defaults = true;             // quality.defaults: the built-in checks
  std::vector<CheckConfig> checks;  // defaults (unless off) + [[quality.checks]]
  std::vector<Sla> slas;            // [[quality.sla]]; the last entry is the default (`*`)
  int64_t max_results_per_batch = 1000;  // quality.max_results_per_batch (passes dropped first)
  // quality.readiness_interval: between batches, readiness (and its metrics) is
  // recomputed on the processor's ticks at most this often.
  int64_t readiness_interval_us = 60'000'000;
  // [[contracts]] event → version (schema_drift reports version changes).
  std::map<std::string, int64_t> contract_versions;

  // quality.enabled, quality.defaults, [[quality.checks]], [[quality.sla]],
  // quality.max_lag (the default SLA). InvalidArgument naming the bad entry.
  static Result<QualityOptions> FromConfig(const Config& config);
  static std::vector<CheckConfig> DefaultChecks();
  // The SLA of `dataset`: the first matching entry of `slas`.
  const Sla& SlaFor(const std::string& dataset) const;
};

struct CheckResult {
  std::string check;                // CheckConfig::name
  std::string check_type;           // CheckConfig::type
  std::string dataset;              // "silver.events", "gold.fact_events", …
  int64_t batch_id = -1;
  int64_t window_start_us = 0, window_end_us = 0;  // what was checked (hour, batch span, …)
  CheckStatus status = CheckStatus::kPass;
  std::optional<double> observed;
  std::optional<double> expected_min, expected_max;
  Severity severity = Severity::kWarn;
  bool blocking = false;            // block = true and failed
  std::string detail;
  int64_t checked_at_us = 0;
  // "source=web event_name=page_viewed" for per-series checks (volume), else "".
  std::string series;
};

enum class ReadinessStatus { kReady, kLate, kFailed, kUnknown };
const char* ToString(ReadinessStatus s);  // "READY" | "LATE" | "FAILED" | "UNKNOWN"

struct DatasetReadiness {
  std::string dataset;
  ReadinessStatus status = ReadinessStatus::kUnknown;
  std::optional<int64_t> last_refresh_us;   // last successful (published) refresh
  std::optional<int64_t> newest_event_us;   // newest event time covered
  std::optional<int64_t> lag_us;            // now - newest_event_us
  std::optional<int64_t> last_batch_id;     // the batch of the last refresh
  Sla sla;
  std::string reason;                       // why not READY ("" when READY)
  int64_t computed_at_us = 0;
};

// Readiness of bronze.events, silver.events and every Gold table, from the
// lake's tables and `now_us`. A missing lake yields UNKNOWN rows. `db` may be
// null (a private in-memory engine is opened).
Result<std::vector<DatasetReadiness>> ComputeReadiness(const std::string& lake_dir, const QualityOptions& options,
                                                       int64_t now_us, engine::Database* db = nullptr,
                                                       FileSystem* fs = FileSystem::Default());
// {"computed_at": "...", "datasets": [{"dataset":…, "status":…, "last_refresh":…,
//  "newest_event":…, "lag_seconds":…, "sla": {"max_lag_seconds":…, "deadline":…,
//  "timezone":…, "text":…}, "reason":…, "last_batch_id":…}, …]}
std::string ReadinessJson(const std::vector<DatasetReadiness>& rows, int64_t now_us);
// An aligned text table for terminals.
std::string ReadinessTable(const std::vector<DatasetReadiness>& rows);
// The results as a JSON array (for APIs and listeners).
std::string ResultsJson(const std::vector<CheckResult>& results);

// Hears what the QualityObserver found (lineage: test jobs; alerts). Called on
// the runner's thread after system.quality_results is committed: must be quick.
class QualityListener {
 public:
  virtual ~QualityListener() = default;
  virtual void OnCheckResults(int64_t batch_id, const std::vector<CheckResult>& results) {}
  virtual void OnReadiness(const std::vector<DatasetReadiness>& readiness) {}
};

// What the last OnBatchCommitted did (tests, benchmarks).
struct ObserverRunStats {
  int64_t batch_id = -1;
  int64_t checks_run = 0;      // checks evaluated (0: nothing changed)
  int64_t results = 0;         // rows appended to system.quality_results
  int64_t queries = 0;         // SQL statements run
  int64_t us = 0;              // wall time in the observer
};

class QualityObserver : public pipeline::BatchObserver {
 public:
  // `log` (optional, borrowed) gives consumer lag per partition for /metrics.
  static Result<std::shared_ptr<QualityObserver>> Create(const QualityOptions& options, const std::string& lake_dir,
                                                         const std::string& consumer_group = "clicklake-processor",
                                                         log::EventLog* log = nullptr,
                                                         FileSystem* fs = FileSystem::Default(),
                                                         Clock* clock = SystemClock());
  ~QualityObserver() override;

  void OnBatchStarted(int64_t batch_id, int64_t started_us) override;
  void OnBatchCommitted(const pipeline::BatchResult& result) override;
  void OnBatchFailed(int64_t batch_id, const Status& status) override;
  void OnTick(int64_t now_us) override;

  void AddListener(std::shared_ptr<QualityListener> listener);
  std::vector<DatasetReadiness> LastReadiness() const;
  std::vector<CheckResult> LastResults() const;
  ObserverRunStats last_run() const;

  // Runs the checks for `result` and returns them without committing
  // (OnBatchCommitted = RunChecks + commit + readiness + metrics).
  Result<std::vector<CheckResult>> RunChecks(const pipeline::BatchResult& result);

 private:
  struct Impl;
  explicit QualityObserver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Registers the Prometheus families the processor exports (so /metrics lists
// them before the first batch) and updates the dataset gauges from `rows`.
void ExportReadinessMetrics(const std::vector<DatasetReadiness>& rows);

}  // namespace clicklake::quality
