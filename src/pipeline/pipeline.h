// pipeline: the micro-batch processor, from the event log to the lake's tables.
//
// A MicroBatchRunner repeatedly takes the records that arrived in the EventLog
// since the last committed batch, decodes them, and commits them to
// bronze.events (and, as later stages land, silver and gold) with exactly-once
// semantics: each batch's Delta commit carries txn(appId = pipeline, version =
// batch id) and the batch's source offsets in commitInfo, so a restart resumes
// exactly after the last committed batch whatever the log's own consumer
// offsets say. The log's consumer-group offsets are committed after the Delta
// commit, for lag reporting and retention only.
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

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/metrics.h"
#include "common/status.h"
#include "log/event_log.h"

namespace clicklake::engine {
class Database;
}

namespace clicklake::pipeline {

struct PipelineOptions {
  std::string lake_dir = "./lake";
  std::string app_id = "clicklake-pipeline";
  std::string consumer_group = "clicklake-processor";
  int64_t trigger_us = 60'000'000;
  int64_t max_batch_events = 500'000;
  int engine_threads = 0;
  std::string engine_memory_limit;

  static PipelineOptions FromConfig(const Config& config);
};

// What one micro-batch did.
struct BatchResult {
  int64_t batch_id = -1;          // -1: nothing to do
  int64_t events = 0;             // records read from the log
  int64_t bronze_rows = 0;
  int64_t undecodable = 0;        // records that were not RawEvents (counted, kept in bronze as-is)
  std::map<int32_t, std::pair<int64_t, int64_t>> offsets;  // partition → [start, end)
  int64_t read_us = 0, write_us = 0, commit_us = 0;
};

class MicroBatchRunner {
 public:
  static Result<std::unique_ptr<MicroBatchRunner>> Create(const PipelineOptions& options, log::EventLog* log,
                                                          FileSystem* fs = FileSystem::Default(),
                                                          Clock* clock = SystemClock());
  ~MicroBatchRunner();

  // Runs one micro-batch over what is in the log now (up to max_batch_events).
  Result<BatchResult> RunOnce();
  // RunOnce until a batch finds nothing new.
  Status Drain();
  // RunOnce every trigger interval until Stop(); runs a final drain on stop.
  Status Run();
  void Stop();

  // The id the next batch will get and the offsets it will start from.
  int64_t next_batch_id() const { return next_batch_id_; }
  const std::map<int32_t, int64_t>& next_offsets() const { return next_offsets_; }

 private:
  MicroBatchRunner(const PipelineOptions& options, log::EventLog* log, FileSystem* fs, Clock* clock);
  // Reads the last committed batch id and offsets from the Delta log.
  Status Recover();

  PipelineOptions options_;
  log::EventLog* log_;
  FileSystem* fs_;
  Clock* clock_;
  std::unique_ptr<engine::Database> db_;

  int64_t next_batch_id_ = 0;
  std::map<int32_t, int64_t> next_offsets_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)

  Counter* batches_ = nullptr;
  Counter* events_ = nullptr;
  Gauge* last_batch_seconds_ = nullptr;
  Gauge* last_batch_unix_ = nullptr;
};

}  // namespace clicklake::pipeline
