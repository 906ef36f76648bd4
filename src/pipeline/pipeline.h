// pipeline: the micro-batch processor, from the event log to the lake's tables.
//
// A MicroBatchRunner repeatedly takes the records that arrived in the EventLog
// since the last committed batch, decodes them, and commits them to
// bronze.events, silver.events, silver.quarantine and system.batches (in that
// order) with exactly-once semantics: each table's commit carries txn(appId =
// pipeline, version = batch id), and bronze's commitInfo records the batch's
// source offsets. A restart resumes after the minimum last-committed batch over
// those tables, re-reading exactly the recorded offsets of a batch that some
// tables already hold and skipping the commits of the tables that hold it.
// The log's consumer-group offsets are committed after the Delta commits, for
// lag reporting and retention only.
//
// Silver is built before anything is committed: a batch whose quarantine rate
// passes the threshold is refused (ResourceExhausted; nothing committed
// anywhere) until a runner created with accept_quarantine commits it.
//
// Right after silver.events, the Gold tables are refreshed (gold/gold.h) with
// the same txn; a failed Gold refresh is logged and counted, and the next batch's
// refresh catches up (Gold diffs from the silver version it last covered).
//
// RunBackfill (backfill.h, included here) rebuilds Silver and/or Gold for a
// range of dates, equal to what the runner produced.
//
// Thread safety: a runner is driven by one thread (RunOnce / Run); Stop() may be
// called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/metrics.h"
#include "common/status.h"
#include "delta/table.h"
#include "log/event_log.h"
#include "pipeline/backfill.h"
#include "privacy/privacy.h"

namespace clicklake::engine {
class Database;
}
namespace clicklake::pipeline::gold {
class GoldStage;
struct GoldRefreshResult;
}

namespace clicklake::pipeline {

class SilverStage;
class BatchObserver;

struct PipelineOptions {
  std::string lake_dir = "./lake";
  std::string app_id = "clicklake-pipeline";
  std::string consumer_group = "clicklake-processor";
  int64_t trigger_us = 60'000'000;
  int64_t max_batch_events = 500'000;
  int engine_threads = 0;
  std::string engine_memory_limit;
  std::string engine_profile_dir;  // processor.profile_dir: DuckDB profiles of every statement (engine.h)
  // Everything else (silver.*, contracts, enrich.*, privacy.*).
  Config config;
  // Commit the next batch even if its quarantine rate passes the threshold.
  bool accept_quarantine = false;
  // Refresh the Gold tables after each batch (processor.gold).
  bool gold = true;
  // While a backlog is drained (a batch hit max_batch_events and more waits in
  // the log), Gold is refreshed at most this often; the batch that drains the
  // log always refreshes it (processor.gold_catch_up_interval; 0: every batch).
  int64_t gold_catch_up_interval_us = 300'000'000;
  // lake.deletion_vectors: tables the processor creates use Delta deletion
  // vectors (reader 3 / writer 7); false keeps reader 1 / writer 2
  // copy-on-write tables for old readers (changed rows then rewrite their files).
  bool deletion_vectors = true;
  // processor.compaction: between batches, while the next trigger is at least
  // compaction_min_idle away, compact small files and files with many deleted
  // rows (compaction.h), at most compaction_max_bytes of input per table and run.
  bool compaction = true;
  int64_t compaction_max_bytes = 256LL << 20;
  int64_t compaction_min_idle_us = 5'000'000;
  // processor.auto_compaction_bytes: when a batch leaves no such idle time (the
  // processor is busy every trigger), silver.events' small files are still
  // folded after the batch, at most this much input (Delta's auto compaction
  // after a write), so files and the merge's per-file work do not pile up
  // while it is busy. 0 turns it off.
  int64_t auto_compaction_bytes = 64LL << 20;
  // Told about every batch, Gold refresh and compaction (quality checks,
  // lineage, readiness, alerts, reverse ETL): see BatchObserver.
  std::vector<std::shared_ptr<BatchObserver>> observers;

  static PipelineOptions FromConfig(const Config& config);
  // The Delta configuration of the tables the processor creates.
  std::map<std::string, std::string> TableProperties() const;
};

// What one micro-batch did.
struct BatchResult {
  int64_t batch_id = -1;          // -1: nothing to do
  int64_t events = 0;             // records read from the log
  int64_t bronze_rows = 0;
  int64_t undecodable = 0;        // records that were not RawEvents (counted, kept in bronze as-is)
  int64_t silver_rows = 0;        // rows added to silver.events
  int64_t quarantined = 0;        // rows added to silver.quarantine
  int64_t duplicates = 0;         // valid events dropped as duplicates
  int64_t silver_rewritten = 0;   // existing silver rows written again (re-keyed/re-sessioned; their old versions marked deleted)
  int64_t future_dated = 0;       // event times clamped to received_at
  int64_t late = 0;               // events older than allowed_lateness (kept, flagged)
  int64_t pii_redactions = 0;     // PII-looking strings replaced in properties
  int64_t prop_type_conflicts = 0;  // property values left only in `properties`
  int64_t suppressed = 0;         // records dropped unstored: their subject is forgotten or suppressed (privacy)
  std::vector<std::string> new_prop_columns;  // prop_<path> columns this batch added to silver.events
  std::map<std::string, int64_t> quarantine_by_code;
  std::map<int32_t, std::pair<int64_t, int64_t>> offsets;  // partition → [start, end)
  int64_t read_us = 0, write_us = 0, silver_us = 0, commit_us = 0;
  int64_t gold_us = 0;            // the Gold refresh (0 when off or deferred)
  bool backlog = false;           // the batch hit max_batch_events and more waited in the log
  bool gold_deferred = false;     // Gold not refreshed: backlog within gold_catch_up_interval
  int64_t started_us = 0, finished_us = 0;  // wall clock (SystemClock/FakeClock micros)
  // The versions this batch committed, by table ("bronze.events", "silver.events",
  // "silver.quarantine", "restricted.pii", "system.batches"); a table that already
  // held the batch (a re-run after a crash) is absent.
  std::map<std::string, int64_t> versions;
  // The Gold refresh of this batch (null when off or deferred), and its error
  // when it failed (the next batch retries it; the batch itself still committed).
  std::shared_ptr<const gold::GoldRefreshResult> gold;
  std::string gold_error;
};

// Hooks for what watches the processor: quality checks, lineage, readiness,
// alerts, reverse ETL. Called on the runner's thread, in order, after the
// commits they describe. An observer must neither fail nor hold up a batch:
// it catches its own errors, and slow work (HTTP, retries) goes to its own thread.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  // A batch with records begins (nothing committed yet).
  virtual void OnBatchStarted(int64_t batch_id, int64_t started_us) {}
  // Every table of the batch is committed (system.batches last).
  virtual void OnBatchCommitted(const BatchResult& result) {}
  // The batch stopped with an error; the next RunOnce retries it from the
  // recorded offsets (tables that committed it keep it, exactly once).
  virtual void OnBatchFailed(int64_t batch_id, const Status& status) {}
  // Background compaction committed `version` of `table` ("silver.events").
  virtual void OnCompacted(const std::string& table, int64_t version) {}
  // Once per trigger interval in Run(), batch or not (freshness, alert timers).
  virtual void OnTick(int64_t now_us) {}
};

class MicroBatchRunner {
 public:
  static Result<std::unique_ptr<MicroBatchRunner>> Create(const PipelineOptions& options, log::EventLog* log,
                                                          FileSystem* fs = FileSystem::Default(),
                                                          Clock* clock = SystemClock());
  ~MicroBatchRunner();

  // Runs one micro-batch over what is in the log now (up to max_batch_events).
  Result<BatchResult> RunOnce();  // observers hear of it (BatchObserver)
  // RunOnce until a batch finds nothing new.
  Status Drain();
  // RunOnce every trigger interval until Stop(); runs a final drain on stop.
  Status Run();
  void Stop();
  // One round of background compaction (compaction.h) over the processor's
  // tables; Run() calls it between batches. Stops starting new tables after
  // `deadline_us` (monotonic clock).
  Status Compact(int64_t deadline_us);
  // Only silver.events, at most max_input_bytes (see auto_compaction_bytes).
  Status CompactSilver(engine::Connection* conn, int64_t max_input_bytes);

  // Executes the pending privacy requests (pipeline/erasure.h) with this
  // runner's state store, and the [retention] run every
  // privacy.retention_interval (default 1d); Run() and Drain() call it
  // between batches, so an erasure never interleaves with a batch's commits.
  Status RunPrivacyRequests();
  // The id the next batch will get and the offsets it will start from.
  int64_t next_batch_id() const { return next_batch_id_; }
  const std::map<int32_t, int64_t>& next_offsets() const { return next_offsets_; }

 private:
  MicroBatchRunner(const PipelineOptions& options, log::EventLog* log, FileSystem* fs, Clock* clock);
  Result<BatchResult> RunBatch();  // RunOnce without the observers' failure notice
  // Reads the last committed batch of every table and the offsets to resume from.
  Status Recover();
  // Commits `txn` unless the table already holds batch `batch_id` (txn version
  // >= batch_id); returns the version, or -1 when skipped.
  Result<int64_t> CommitUnlessDone(delta::Transaction* txn, int64_t batch_id);
  // (Re)loads the privacy subject list when its file changed.
  Status LoadSubjectFilter();

  PipelineOptions options_;
  log::EventLog* log_;
  FileSystem* fs_;
  Clock* clock_;
  std::unique_ptr<engine::Database> db_;

  std::unique_ptr<SilverStage> silver_;
  std::unique_ptr<gold::GoldStage> gold_;
  int64_t gold_attempted_us_ = 0;  // monotonic: the last Gold refresh (or the runner's start)
  bool accept_quarantine_ = false;

  int64_t next_batch_id_ = 0;
  std::map<int32_t, int64_t> next_offsets_;
  // Offset ranges of batches bronze.events already holds but other tables do
  // not (re-run after a crash): batch id → partition → end offset.
  std::map<int64_t, std::map<int32_t, int64_t>> recorded_ends_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)

  Counter* batches_ = nullptr;
  Counter* events_ = nullptr;
  Gauge* last_batch_seconds_ = nullptr;
  Gauge* last_batch_unix_ = nullptr;
  Counter* silver_rows_ = nullptr;
  Counter* duplicates_ = nullptr;
  Counter* future_dated_ = nullptr;
  Counter* late_ = nullptr;
  Counter* pii_redactions_ = nullptr;
  Counter* prop_type_conflicts_ = nullptr;
  Counter* refused_ = nullptr;
  Gauge* refusing_ = nullptr;
  Counter* gold_failures_ = nullptr;
  Counter* gold_deferred_ = nullptr;
  Counter* compactions_ = nullptr;
  Counter* suppressed_ = nullptr;
  // The privacy subject list (privacy/privacy.h), reloaded when its file changes.
  std::shared_ptr<const privacy::SubjectFilter> subject_filter_;
  int64_t subject_list_mtime_ms_ = -1;
  uint64_t subject_list_size_ = 0;
  int64_t last_retention_us_ = INT64_MIN;  // monotonic: the last [retention] run (privacy.retention_interval)
  Gauge* compaction_seconds_ = nullptr;
};

}  // namespace clicklake::pipeline
