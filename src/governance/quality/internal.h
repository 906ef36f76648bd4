// Internals of the quality library shared by its files (not part of quality.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "delta/table.h"
#include "engine/engine.h"
#include "governance/quality/quality.h"

namespace clicklake::quality {

inline constexpr const char* kResultsTable = "system/quality_results";
inline constexpr const char* kReadinessTable = "system/readiness";
inline constexpr const char* kStateTable = "system/quality_state";

delta::Schema ResultsSchema();
delta::Schema ReadinessSchema();
delta::Schema StateSchema();

// The datasets readiness reports on: bronze.events, silver.events, gold.* (kGoldTables).
std::vector<std::string> ReadinessDatasets();

// What readiness is derived from, read from the lake's tables.
struct LakeFacts {
  std::set<std::string> existing;                // datasets whose table exists
  std::optional<int64_t> last_batch_id, last_batch_finished_us;
  std::optional<int64_t> bronze_newest_us, silver_newest_us;  // Delta stats: max received_at / event_ts
  std::optional<int64_t> bronze_commit_us, silver_commit_us;  // their latest commit's time
  struct Refresh {
    int64_t refreshed_us = 0;
    std::optional<int64_t> newest_us;
    std::optional<int64_t> batch_id;
  };
  std::map<std::string, Refresh> gold_published;  // per gold table: its last refresh not held back
  std::optional<Refresh> gold_latest_published;   // the newest published refresh of any Gold table
  std::optional<Refresh> gold_latest;             // the newest refresh, published or not
  std::set<int64_t> blocked_batches;              // batches a blocking check failed
  std::map<int64_t, std::string> block_reasons;   // batch → "check X: detail"
  // The latest result per (check, dataset, series).
  std::vector<CheckResult> latest_results;
};

// Check results older than this (by checked_at) no longer count.
inline constexpr int64_t kResultsHorizonUs = 8LL * 24 * 3600 * 1000000;
// With `known_results` (the latest results and blocked batches of an earlier GatherFacts,
// with every result written since folded in by OverlayResults), system.quality_results is
// not read: its 8 days of results are what makes this call grow with a lake's age.
Result<LakeFacts> GatherFacts(engine::Connection* conn, const std::string& lake_dir, FileSystem* fs, int64_t now_us,
                              const LakeFacts* known_results = nullptr);
// Folds results not yet committed into facts.latest_results / blocked batches.
// REQUIRES: no result is blocking (a blocked batch unpublishes its Gold refresh:
// gather the facts again after committing the results instead).
void OverlayResults(LakeFacts* facts, const std::vector<CheckResult>& results);
// REQUIRES: conn's TimeZone is UTC (deadlines are converted with DuckDB's ICU).
std::vector<DatasetReadiness> DeriveReadiness(const LakeFacts& facts, const QualityOptions& options, int64_t now_us,
                                              engine::Connection* conn);

// The SQL of one row of system.readiness (a SELECT), of system.quality_results
// (a VALUES tuple of kResultColumns), and a query over such tuples (VALUES
// keeps thousands of rows flat, where UNION ALL would nest too deep).
std::string ReadinessRowSql(const DatasetReadiness& r);
extern const char* kResultColumns;
inline constexpr const char* kStateColumns = "hour, dataset, source, event_name, metric, value";
std::string ResultValuesSql(const CheckResult& r);
std::string ValuesQuery(const std::vector<std::string>& rows, const char* columns);

// Helpers.
std::string TimestampSql(std::optional<int64_t> us);  // make_timestamp(us) or NULL::TIMESTAMP
std::string DoubleSql(std::optional<double> v);
std::string FormatLag(int64_t us);                    // "1h05m", "42s"

// Volume anomaly (Elementary's method) of one bucket against its training set.
struct VolumeVerdict {
  bool training = false;  // fewer than min_training_size buckets: no verdict
  bool anomaly = false;
  double mean = 0, stddev = 0, z = 0;
  double expected_min = 0, expected_max = 0;
  int training_size = 0;
};
VolumeVerdict EvaluateVolume(double observed, const std::vector<double>& training, const CheckConfig& check);

}  // namespace clicklake::quality
