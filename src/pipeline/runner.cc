#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/bronze.h"
#include "pipeline/pipeline.h"

namespace clicklake::pipeline {
namespace {

constexpr size_t kReadChunkRecords = 20000;
constexpr size_t kReadChunkBytes = 32 << 20;

delta::Schema BatchesSchema() {
  delta::Schema s;
  s.fields = {
      {"batch_id", "long", false},      {"app_id", "string", false},     {"started_at", "timestamp", false},
      {"finished_at", "timestamp", false}, {"status", "string", false},  {"events", "long", false},
      {"bronze_rows", "long", false},   {"undecodable", "long", false},  {"offsets", "string", false},
      {"read_ms", "double", true},      {"write_ms", "double", true},    {"commit_ms", "double", true},
  };
  return s;
}

std::string OffsetsJson(const std::map<int32_t, std::pair<int64_t, int64_t>>& ranges) {
  std::ostringstream os;
  os << "{";
  bool first = true;
  for (const auto& [p, range] : ranges) {
    os << (first ? "" : ",") << "\"" << p << "\":{\"start\":" << range.first << ",\"end\":" << range.second << "}";
    first = false;
  }
  os << "}";
  return os.str();
}

// Parses {"batch_id":N,"offsets":{"p":{"start":a,"end":b},...}} out of a commitInfo.
bool ParseBatchInfo(const std::string& commit_info, const std::string& app_id, int64_t* batch_id,
                    std::map<int32_t, int64_t>* ends) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(commit_info).get(doc)) return false;
  simdjson::dom::element info;
  if (doc["clicklake"].get(info)) return false;
  std::string_view app;
  if (info["app_id"].get(app) || app != app_id) return false;
  int64_t id;
  if (info["batch_id"].get(id)) return false;
  simdjson::dom::object offsets;
  if (info["offsets"].get(offsets)) return false;
  for (auto [key, value] : offsets) {
    int64_t end;
    if (value["end"].get(end)) return false;
    (*ends)[std::stoi(std::string(key))] = end;
  }
  *batch_id = id;
  return true;
}

}  // namespace

PipelineOptions PipelineOptions::FromConfig(const Config& config) {
  PipelineOptions o;
  o.lake_dir = config.lake_dir();
  o.app_id = config.GetString("processor.app_id", o.app_id);
  o.consumer_group = config.GetString("processor.consumer_group", o.consumer_group);
  o.trigger_us = config.GetDurationMicros("processor.trigger", o.trigger_us);
  o.max_batch_events = config.GetInt("processor.max_batch_events", o.max_batch_events);
  o.engine_threads = static_cast<int>(config.GetInt("processor.threads", 0));
  o.engine_memory_limit = config.GetString("processor.memory_limit", "");
  return o;
}

MicroBatchRunner::MicroBatchRunner(const PipelineOptions& options, log::EventLog* log, FileSystem* fs, Clock* clock)
    : options_(options), log_(log), fs_(fs), clock_(clock) {
  auto* m = MetricsRegistry::Global();
  batches_ = m->GetCounter("clicklake_processor_batches_total", "Micro-batches committed.");
  events_ = m->GetCounter("clicklake_processor_events_total", "Events committed to bronze.events.");
  last_batch_seconds_ = m->GetGauge("clicklake_processor_last_batch_seconds", "Duration of the last micro-batch.");
  last_batch_unix_ =
      m->GetGauge("clicklake_processor_last_batch_timestamp_seconds", "When the last micro-batch committed.");
}

MicroBatchRunner::~MicroBatchRunner() = default;

Result<std::unique_ptr<MicroBatchRunner>> MicroBatchRunner::Create(const PipelineOptions& options, log::EventLog* log,
                                                                   FileSystem* fs, Clock* clock) {
  std::unique_ptr<MicroBatchRunner> r(new MicroBatchRunner(options, log, fs, clock));
  engine::DatabaseOptions db_options;
  db_options.threads = options.engine_threads;
  db_options.memory_limit = options.engine_memory_limit;
  ASSIGN_OR_RETURN(r->db_, engine::Database::Open(db_options));
  RETURN_IF_ERROR(fs->CreateDirs(options.lake_dir));
  RETURN_IF_ERROR(r->Recover());
  return r;
}

Status MicroBatchRunner::Recover() {
  for (int32_t p = 0; p < log_->num_partitions(); p++) next_offsets_[p] = 0;
  std::string path = JoinPath(options_.lake_dir, kBronzeTable);
  auto table = delta::Table::Open(path, db_.get(), fs_, clock_);
  if (!table.ok()) {
    if (table.status().IsNotFound()) return Status::OK();  // a fresh lake
    return table.status();
  }
  ASSIGN_OR_RETURN(delta::Snapshot snap, (*table)->LoadSnapshot());
  auto it = snap.app_txn_versions.find(options_.app_id);
  if (it == snap.app_txn_versions.end()) return Status::OK();
  int64_t last_batch = it->second;
  // The commit carrying that txn is normally the newest; table maintenance may have added a few after it.
  for (int64_t v = snap.version; v >= 0; v--) {
    ASSIGN_OR_RETURN(std::string info, delta::ReadCommitInfo(path, v, fs_));
    int64_t batch_id;
    std::map<int32_t, int64_t> ends;
    if (ParseBatchInfo(info, options_.app_id, &batch_id, &ends) && batch_id == last_batch) {
      for (const auto& [p, end] : ends) next_offsets_[p] = end;
      next_batch_id_ = last_batch + 1;
      spdlog::info("processor: resuming after batch {} (bronze.events version {})", last_batch, v);
      return Status::OK();
    }
  }
  return Status::Corruption("bronze.events records batch " + std::to_string(last_batch) +
                            " in a txn action but no commit carries its offsets");
}

Result<BatchResult> MicroBatchRunner::RunOnce() {
  BatchResult result;
  const int64_t started_us = clock_->NowMicros();
  const int64_t t0 = clock_->MonotonicMicros();

  // 1. Read what arrived since the last committed batch, fairly across partitions.
  std::vector<log::LogRecord> records;
  std::map<int32_t, int64_t> ends = next_offsets_;
  int64_t budget = options_.max_batch_events;
  const int32_t parts = log_->num_partitions();
  std::map<int32_t, int64_t> targets;
  for (int32_t p = 0; p < parts; p++) {
    ASSIGN_OR_RETURN(log::PartitionInfo info, log_->GetPartitionInfo(p));
    if (ends[p] < info.start_offset) {
      spdlog::error("processor: partition {} retained from offset {} but the next batch starts at {}: {} events "
                    "expired from the log before processing",
                    p, info.start_offset, ends[p], info.start_offset - ends[p]);
      ends[p] = info.start_offset;
    }
    targets[p] = info.end_offset;
  }
  const int64_t per_partition = std::max<int64_t>(1, budget / std::max(1, parts));
  for (int32_t p = 0; p < parts && budget > 0; p++) {
    int64_t start = ends[p];
    int64_t limit = std::min(targets[p], start + std::max(per_partition, budget - per_partition * (parts - 1 - p)));
    limit = std::min(limit, start + budget);
    while (ends[p] < limit) {
      size_t want = static_cast<size_t>(std::min<int64_t>(limit - ends[p], kReadChunkRecords));
      ASSIGN_OR_RETURN(auto chunk, log_->Read(p, ends[p], want, kReadChunkBytes));
      if (chunk.empty()) break;
      ends[p] = chunk.back().offset + 1;
      budget -= static_cast<int64_t>(chunk.size());
      std::move(chunk.begin(), chunk.end(), std::back_inserter(records));
    }
    if (ends[p] > next_offsets_[p]) result.offsets[p] = {next_offsets_[p], ends[p]};
  }
  result.read_us = clock_->MonotonicMicros() - t0;
  if (records.empty()) return result;

  result.batch_id = next_batch_id_;
  result.events = static_cast<int64_t>(records.size());

  // 2. Bronze: one Delta commit with txn(app, batch) and the offsets.
  const int64_t t1 = clock_->MonotonicMicros();
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  RETURN_IF_ERROR(LoadBronzeBatch(conn.get(), records, &result.undecodable));
  records.clear();
  records.shrink_to_fit();

  ASSIGN_OR_RETURN(auto bronze, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, kBronzeTable), BronzeSchema(),
                                                           {"event_date"}, {}, db_.get(), fs_, clock_));
  auto txn = bronze->StartTransaction();
  ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn.get(), "SELECT * FROM bronze_batch"));
  result.write_us = clock_->MonotonicMicros() - t1;
  for (const auto& a : adds) (void)a;
  ASSIGN_OR_RETURN(auto count, conn->Query("SELECT count(*) FROM bronze_batch"));
  result.bronze_rows = count.GetInt64(0, 0);

  std::map<int32_t, std::pair<int64_t, int64_t>> all_ranges;
  for (const auto& [p, end] : ends) all_ranges[p] = {next_offsets_[p], end};
  const int64_t t2 = clock_->MonotonicMicros();
  txn->SetAppTransaction(options_.app_id, result.batch_id);
  txn->SetBlindAppend(true);
  txn->SetOperation("STREAMING UPDATE", {{"outputMode", "Append"},
                                         {"queryId", options_.app_id},
                                         {"epochId", std::to_string(result.batch_id)}});
  txn->SetCommitInfoField("clicklake", "{\"app_id\":\"" + options_.app_id + "\",\"batch_id\":" +
                                           std::to_string(result.batch_id) +
                                           ",\"offsets\":" + OffsetsJson(all_ranges) + "}");
  ASSIGN_OR_RETURN(int64_t version, txn->Commit());
  result.commit_us = clock_->MonotonicMicros() - t2;

  next_offsets_ = ends;
  next_batch_id_ = result.batch_id + 1;

  // 3. Bookkeeping after the commit: consumer offsets (lag, retention) and system.batches.
  Status s = log_->CommitOffsets(options_.consumer_group, next_offsets_);
  if (!s.ok()) spdlog::warn("processor: committing consumer offsets: {}", s.ToString());
  const int64_t finished_us = clock_->NowMicros();
  {
    std::ostringstream sql;
    sql << "SELECT " << result.batch_id << "::BIGINT AS batch_id, " << engine::QuoteLiteral(options_.app_id)
        << " AS app_id, make_timestamp(" << started_us << "::BIGINT) AS started_at, make_timestamp(" << finished_us
        << "::BIGINT) AS finished_at, 'committed' AS status, " << result.events << "::BIGINT AS events, "
        << result.bronze_rows << "::BIGINT AS bronze_rows, " << result.undecodable << "::BIGINT AS undecodable, "
        << engine::QuoteLiteral(OffsetsJson(all_ranges)) << " AS offsets, " << result.read_us / 1000.0
        << "::DOUBLE AS read_ms, " << result.write_us / 1000.0 << "::DOUBLE AS write_ms, "
        << result.commit_us / 1000.0 << "::DOUBLE AS commit_ms";
    auto batches = delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, "system/batches"), BatchesSchema(), {}, {},
                                              db_.get(), fs_, clock_);
    Status bs = batches.status();
    if (bs.ok()) {
      auto btxn = (*batches)->StartTransaction();
      auto written = btxn->WriteFiles(conn.get(), sql.str());
      bs = written.status();
      if (bs.ok()) {
        btxn->SetAppTransaction(options_.app_id, result.batch_id);
        btxn->SetBlindAppend(true);
        btxn->SetOperation("WRITE", {{"mode", "Append"}});
        bs = btxn->Commit().status();
      }
    }
    if (!bs.ok()) spdlog::warn("processor: recording batch {} in system.batches: {}", result.batch_id, bs.ToString());
  }

  batches_->Increment();
  events_->Increment(result.events);
  last_batch_seconds_->Set((clock_->MonotonicMicros() - t0) / 1e6);
  last_batch_unix_->Set(finished_us / 1e6);
  spdlog::info("processor: batch {} committed: {} events ({} undecodable) → bronze.events v{}; read {:.1f} ms, "
               "write {:.1f} ms, commit {:.1f} ms",
               result.batch_id, result.events, result.undecodable, version, result.read_us / 1000.0,
               result.write_us / 1000.0, result.commit_us / 1000.0);
  return result;
}

Status MicroBatchRunner::Drain() {
  while (true) {
    ASSIGN_OR_RETURN(BatchResult r, RunOnce());
    if (r.batch_id < 0) return Status::OK();
    std::lock_guard l(mu_);
    if (stop_) return Status::OK();
  }
}

Status MicroBatchRunner::Run() {
  while (true) {
    const int64_t start = clock_->MonotonicMicros();
    auto r = RunOnce();
    if (!r.ok()) spdlog::error("processor: batch {} failed: {}", next_batch_id_, r.status().ToString());
    std::unique_lock l(mu_);
    if (stop_) break;
    int64_t wait = options_.trigger_us - (clock_->MonotonicMicros() - start);
    if (wait > 0) cv_.wait_for(l, std::chrono::microseconds(wait), [this] { return stop_; });
    if (stop_) break;
  }
  // Final drain so that what was acknowledged before shutdown is in the lake.
  while (true) {
    ASSIGN_OR_RETURN(BatchResult r, RunOnce());
    if (r.batch_id < 0) return Status::OK();
  }
}

void MicroBatchRunner::Stop() {
  std::lock_guard l(mu_);
  stop_ = true;
  cv_.notify_all();
}

}  // namespace clicklake::pipeline
