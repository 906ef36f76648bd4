// lineage: OpenLineage run events for everything that writes the lake — each
// micro-batch, each Gold model's refresh, background compaction, backfills,
// table maintenance — and each quality check run as a test job.
//
// Events follow the OpenLineage 2-0-2 spec (../shared/data/openlineage/): a run
// emits START, then COMPLETE or FAIL; datasets carry the schema, dataSource,
// datasetVersion (the Delta version) and, for outputs, outputStatistics; Gold
// models' outputs carry columnLineage (declared in gold_columns.toml, checked
// against the real tables by lineage_test); test runs carry
// dataQualityAssertions and dataQualityMetrics on the dataset they checked.
//
// Transports (LineageEmitter): JSON lines in the lake (default,
// <lake>/_clicklake/lineage/events.jsonl) and/or HTTP POST {url}/api/v1/lineage
// (what Marquez accepts), retried with backoff. Emit() only queues: a background
// thread fills in the schemas (from the Delta log), serializes and sends, so a
// batch never waits on lineage. An event the HTTP endpoint does not take after
// its retries (or that finds the queue full) is spilled to the lake file, never
// dropped.
//
// Thread safety: LineageEmitter's methods may be called from any thread. A
// LineageObserver is called on the runner's thread (BatchObserver contract).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"
#include "governance/delivery_queue.h"
#include "pipeline/pipeline.h"

namespace clicklake::governance::lineage {

struct LineageOptions {
  bool enabled = true;                   // lineage.enabled
  std::string lake_dir = "./lake";       // lake.dir
  std::string file;                      // lineage.file: "" = <lake>/_clicklake/lineage/events.jsonl; "none" = no file
  std::string url;                       // lineage.url: OpenLineage HTTP base (Marquez); "" = file only
  std::string api_key;                   // lineage.api_key: sent as "Authorization: Bearer <key>"
  std::string job_namespace = "clicklake";  // lineage.namespace
  std::string dataset_namespace;         // lineage.dataset_namespace: "" = file://<absolute lake dir>
  int queue_capacity = 10000;            // lineage.queue_capacity
  int http_attempts = 4;                 // lineage.http_attempts
  int64_t http_backoff_us = 200'000;     // lineage.http_backoff (doubles after each failed attempt)
  int64_t http_timeout_us = 5'000'000;   // lineage.http_timeout

  static LineageOptions FromConfig(const Config& config);
  std::string FilePath() const;          // "" when there is no file transport
  std::string DatasetNamespace() const;
};

// One input column of an output column (columnLineage facet).
struct InputField {
  std::string dataset;                   // "silver.events"
  std::string field;
  std::string type = "DIRECT";           // DIRECT | INDIRECT
  std::string subtype = "TRANSFORMATION";  // IDENTITY | TRANSFORMATION | AGGREGATION | FILTER | JOIN | ...
};

// One quality check's outcome on a dataset (dataQualityAssertions + TestRunFacet).
struct Assertion {
  std::string name;                      // the check ("volume_anomaly", "null_spike:user_key", ...)
  std::string assertion;                 // its kind ("volume", "not_null", "freshness", "unique", "custom_sql")
  std::string column;                    // "" = the whole dataset
  bool success = true;
  std::string severity = "warn";         // warn | error
  std::string expected, actual;          // the threshold / range and the observed value, as text
  std::optional<double> observed;        // dataQualityMetrics (column metrics: the observed value)
  std::optional<int64_t> row_count;
};

struct DatasetInfo {
  std::string name;                      // "layer.table"
  std::optional<int64_t> version;        // the Delta version read or written
  // The schema facet. Empty and `resolve_schema`: the sender reads it from the
  // Delta table at `version` (or its latest).
  std::vector<std::pair<std::string, std::string>> schema;  // (name, type)
  bool resolve_schema = true;
  std::optional<int64_t> row_count;      // outputStatistics.rowCount (outputs)
  std::optional<int64_t> bytes;          // outputStatistics.size
  std::optional<int64_t> file_count;     // outputStatistics.fileCount
  std::map<std::string, std::vector<InputField>> column_lineage;  // output column → its inputs
  std::vector<Assertion> assertions;     // inputs of a test job
};

struct RunEvent {
  std::string event_type = "START";      // START | COMPLETE | FAIL | ABORT
  int64_t event_time_us = 0;             // UTC micros
  std::string run_id;                    // a UUID (NewRunId)
  std::string job_name;                  // "microbatch", "gold.fact_events", "backfill", ...
  std::string job_type = "JOB";          // jobType facet: JOB | TEST | COMMAND
  std::string parent_job;                // parent facet (a Gold model's batch, a check's batch)
  std::string parent_run_id;
  std::string error_message;             // FAIL: errorMessage facet
  std::optional<int64_t> nominal_start_us, nominal_end_us;  // nominalTime facet
  std::vector<DatasetInfo> inputs, outputs;
};

// A random (version 4) UUID from OpenSSL's generator.
std::string NewRunId();

// The event as one line of JSON (no newline), per the OpenLineage spec.
std::string ToJson(const RunEvent& event, const LineageOptions& options);

// The background sender. Stop() (or the destructor) drains the queue.
class LineageEmitter {
 public:
  static Result<std::unique_ptr<LineageEmitter>> Start(const LineageOptions& options);
  ~LineageEmitter();

  void Emit(RunEvent event);             // never blocks on I/O
  void Flush();                          // returns once everything emitted so far is written or sent
  void Stop();
  const LineageOptions& options() const { return options_; }

  struct Stats {
    int64_t emitted = 0, written = 0, posted = 0, spilled = 0, http_failures = 0;
  };
  Stats stats() const;

 private:
  explicit LineageEmitter(const LineageOptions& options);
  void Deliver(RunEvent& event);         // the queue's thread
  void WriteLine(const std::string& line);
  bool Post(const std::string& json);
  void ResolveSchemas(RunEvent& event);

  LineageOptions options_;
  struct Resolver;
  std::unique_ptr<Resolver> resolver_;   // the queue's thread only
  mutable std::mutex mu_;
  Stats stats_;                          // GUARDED_BY(mu_)
  std::mutex file_mu_;                   // serializes appends to the lake file
  Counter* emitted_ = nullptr;
  Counter* spilled_ = nullptr;
  Counter* http_failures_ = nullptr;
  std::unique_ptr<DeliveryQueue<RunEvent>> queue_;  // last: its thread uses the members above
};

// The column lineage of a Gold model's output table ("gold.fact_session_daily"),
// from gold_columns.toml; empty for a table it does not declare.
const std::map<std::string, std::vector<InputField>>& GoldColumnLineage(const std::string& table);
// The Gold tables gold_columns.toml declares, with the datasets each reads.
std::map<std::string, std::vector<std::string>> GoldModelInputs();

// Emits runs for what the processor does: a "microbatch" run per batch (input:
// the event log; outputs: the tables it committed), a "gold.<model>" run per
// Gold model the batch refreshed (parented by the batch run), a
// "compaction.<table>" run per background compaction.
class LineageObserver : public pipeline::BatchObserver {
 public:
  explicit LineageObserver(std::shared_ptr<LineageEmitter> emitter);
  void OnBatchStarted(int64_t batch_id, int64_t started_us) override;
  void OnBatchCommitted(const pipeline::BatchResult& result) override;
  void OnBatchFailed(int64_t batch_id, const Status& status) override;
  void OnCompacted(const std::string& table, int64_t version) override;

  // One quality check's run on a batch, as its own test job ("quality.<dataset>.<check>",
  // jobType TEST), parented by that batch's run: one assertion per series the check
  // judged (a volume check's source and event name, a null check's column). COMPLETE
  // whether the assertions pass or not; FAIL with `error` when the check could not run.
  void EmitQualityRun(int64_t batch_id, const std::string& check, const std::string& dataset,
                      std::optional<int64_t> version, const std::vector<Assertion>& assertions, int64_t started_us,
                      int64_t finished_us, const std::string& error = "");

  // The run id of a batch (the last started one is remembered; -1: none).
  std::string BatchRunId(int64_t batch_id) const;

 private:
  std::shared_ptr<LineageEmitter> emitter_;
  mutable std::mutex mu_;
  std::map<int64_t, std::pair<std::string, int64_t>> runs_;  // GUARDED_BY(mu_): batch → (run id, started)
};

// A run around a command (backfill, table optimize/vacuum): START on Begin,
// COMPLETE or FAIL on End. Flushes before End returns (the command exits next).
class CommandRun {
 public:
  CommandRun(LineageEmitter* emitter, std::string job_name, std::vector<DatasetInfo> inputs,
             std::vector<DatasetInfo> outputs);
  void Begin();
  void End(const Status& status, std::vector<DatasetInfo> outputs);

 private:
  LineageEmitter* emitter_;
  RunEvent event_;
};

}  // namespace clicklake::governance::lineage
