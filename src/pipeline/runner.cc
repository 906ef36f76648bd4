#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "common/raw_event.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "enrich/enrich.h"
#include "pipeline/bronze.h"
#include "pipeline/compaction.h"
#include "pipeline/erasure.h"
#include "pipeline/gold/gold.h"
#include "pipeline/pipeline.h"

#include "pipeline/compaction.h"
#include "pipeline/silver.h"
#include "pipeline/silver_sessions.h"

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
      {"silver_rows", "long", true},    {"quarantined", "long", true},   {"duplicates", "long", true},
      {"future_dated", "long", true},   {"late_events", "long", true},   {"pii_redactions", "long", true},
      {"quarantine_by_code", "string", true}, {"silver_ms", "double", true},
      {"prop_type_conflicts", "long", true}, {"gold_ms", "double", true},
      {"suppressed", "long", true},
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
                    std::map<int32_t, int64_t>* ends, std::map<int32_t, int64_t>* starts = nullptr) {
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
    int64_t end, start;
    if (value["end"].get(end) || value["start"].get(start)) return false;
    (*ends)[std::stoi(std::string(key))] = end;
    if (starts) (*starts)[std::stoi(std::string(key))] = start;
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
  // DuckDB's memory cap ("" = DuckDB's default, 80% of RAM); beyond it DuckDB
  // spills to <lake>/_clicklake/tmp. A 2GB default was tried: delta's
  // checkpoint writer then fails to allocate 1 GiB, so no default cap yet.
  o.engine_memory_limit = config.GetString("processor.memory_limit", "");
  o.engine_profile_dir = config.GetString("processor.profile_dir", "");
  o.gold = config.GetBool("processor.gold", o.gold);
  o.gold_catch_up_interval_us = config.GetDurationMicros("processor.gold_catch_up_interval", o.gold_catch_up_interval_us);
  o.deletion_vectors = config.GetBool("lake.deletion_vectors", o.deletion_vectors);
  o.compaction = config.GetBool("processor.compaction", o.compaction);
  o.compaction_max_bytes = config.GetInt("processor.compaction_max_bytes", o.compaction_max_bytes);
  o.compaction_min_idle_us = config.GetDurationMicros("processor.compaction_min_idle", o.compaction_min_idle_us);
  o.auto_compaction_bytes = config.GetInt("processor.auto_compaction_bytes", o.auto_compaction_bytes);
  o.config = config;
  return o;
}

std::map<std::string, std::string> PipelineOptions::TableProperties() const {
  if (deletion_vectors) return {{"delta.enableDeletionVectors", "true"}};
  return {{"delta.enableDeletionVectors", "false"}};
}

MicroBatchRunner::MicroBatchRunner(const PipelineOptions& options, log::EventLog* log, FileSystem* fs, Clock* clock)
    : options_(options),
      log_(log),
      fs_(fs),
      clock_(clock),
      gold_attempted_us_(clock->MonotonicMicros()),
      accept_quarantine_(options.accept_quarantine) {
  // Gold reads its settings from the config: the same table protocol.
  options_.config.Set("lake.deletion_vectors", options_.deletion_vectors ? "true" : "false");
  auto* m = MetricsRegistry::Global();
  batches_ = m->GetCounter("clicklake_processor_batches_total", "Micro-batches committed.");
  events_ = m->GetCounter("clicklake_processor_events_total", "Events committed to bronze.events.");
  last_batch_seconds_ = m->GetGauge("clicklake_processor_last_batch_seconds", "Duration of the last micro-batch.");
  last_batch_unix_ =
      m->GetGauge("clicklake_processor_last_batch_timestamp_seconds", "When the last micro-batch committed.");
  silver_rows_ = m->GetCounter("clicklake_silver_events_total", "Rows committed to silver.events.");
  duplicates_ = m->GetCounter("clicklake_silver_duplicates_total", "Events dropped as duplicates (same event_id).");
  future_dated_ =
      m->GetCounter("clicklake_silver_future_dated_total", "Future-dated event times clamped to received_at.");
  late_ = m->GetCounter("clicklake_silver_late_events_total", "Events older than allowed_lateness (kept, flagged).");
  pii_redactions_ = m->GetCounter("clicklake_silver_pii_redactions_total", "PII-looking strings replaced by hashes.");
  prop_type_conflicts_ = m->GetCounter("clicklake_silver_prop_type_conflicts_total",
                                      "Property values kept only in `properties`: their prop_ column has another type.");
  refused_ = m->GetCounter("clicklake_processor_batches_refused_total",
                           "Batch attempts refused because their quarantine rate passed the threshold.");
  refusing_ = m->GetGauge("clicklake_processor_quarantine_refused",
                          "1 while the processor refuses a batch over the quarantine threshold.");
  gold_failures_ = m->GetCounter("clicklake_gold_refresh_failures_total",
                                 "Gold refreshes that failed (the next batch's refresh catches up).");
  gold_deferred_ = m->GetCounter("clicklake_gold_refreshes_deferred_total",
                                 "Batches that left Gold to a later batch while a backlog drained.");
  compactions_ = m->GetCounter("clicklake_processor_compactions_total",
                               "Background compaction commits (small files and deleted rows folded).");
  suppressed_ = m->GetCounter("clicklake_privacy_suppressed_events_total",
                              "Events dropped unstored at processing: their subject is forgotten or suppressed.");
  compaction_seconds_ = m->GetGauge("clicklake_processor_last_compaction_seconds",
                                    "Duration of the last background compaction round between batches.");
}

MicroBatchRunner::~MicroBatchRunner() = default;

Result<std::unique_ptr<MicroBatchRunner>> MicroBatchRunner::Create(const PipelineOptions& options, log::EventLog* log,
                                                                   FileSystem* fs, Clock* clock) {
  std::unique_ptr<MicroBatchRunner> r(new MicroBatchRunner(options, log, fs, clock));
  engine::DatabaseOptions db_options;
  db_options.threads = options.engine_threads;
  db_options.memory_limit = options.engine_memory_limit;
  db_options.temp_directory = JoinPath(options.lake_dir, "_clicklake/tmp");
  if (!options.engine_profile_dir.empty()) {
    RETURN_IF_ERROR(fs->CreateDirs(options.engine_profile_dir));
    db_options.profile_dir = options.engine_profile_dir;
    spdlog::warn("processor: profiling every DuckDB statement into {} (processor.profile_dir; slower, for diagnosis)",
                 options.engine_profile_dir);
  }
  ASSIGN_OR_RETURN(r->db_, engine::Database::Open(db_options));
  RETURN_IF_ERROR(fs->CreateDirs(options.lake_dir));
  // The Silver stage (UA rules, geo DB, dedup state) is opened by the first
  // batch: loading the UA rules takes a few hundred ms that `clicklake up`
  // should not spend before it can handle signals. Contracts are checked now.
  RETURN_IF_ERROR(ContractRegistry::FromConfig(options.config).status());
  if (options.gold) RETURN_IF_ERROR(gold::GoldOptions::FromConfig(options.config).status());
  // The Silver stage's settings are read now too, so that a value of the
  // wrong type is refused at start-up (Config::ReadErrors), not taken as
  // its default when the first batch opens the stage.
  (void)SilverOptions::FromConfig(options.config);
  RETURN_IF_ERROR(enrich::EnrichOptionsFromConfig(options.config).status());
  RETURN_IF_ERROR(options.config.ReadErrors());
  RETURN_IF_ERROR(r->Recover());
  return r;
}

Status MicroBatchRunner::Recover() {
  for (int32_t p = 0; p < log_->num_partitions(); p++) next_offsets_[p] = 0;
  // The last batch each table holds (-1: none).
  auto last_batch = [&](const char* table) -> Result<std::pair<int64_t, std::optional<delta::Snapshot>>> {
    auto t = delta::Table::Open(JoinPath(options_.lake_dir, table), db_.get(), fs_, clock_);
    if (!t.ok()) {
      if (t.status().IsNotFound()) return std::pair<int64_t, std::optional<delta::Snapshot>>(-1, std::nullopt);
      return t.status();
    }
    ASSIGN_OR_RETURN(delta::Snapshot snap, (*t)->LoadSnapshot());
    auto it = snap.app_txn_versions.find(options_.app_id);
    int64_t last = it == snap.app_txn_versions.end() ? -1 : it->second;
    return std::pair<int64_t, std::optional<delta::Snapshot>>(last, std::move(snap));
  };
  ASSIGN_OR_RETURN(auto bronze, last_batch(kBronzeTable));
  int64_t min_last = bronze.first;
  for (const char* table : {kSilverEventsTable, kQuarantineTable, "system/batches"}) {
    ASSIGN_OR_RETURN(auto other, last_batch(table));
    min_last = std::min(min_last, other.first);
  }
  if (bronze.first < 0) return Status::OK();  // a fresh lake
  // Offsets: the end of batch min_last, and the recorded ranges of the batches
  // bronze holds beyond it (they are re-run over exactly the same records).
  const std::string path = JoinPath(options_.lake_dir, kBronzeTable);
  bool found_resume = min_last < 0;
  for (int64_t v = bronze.second->version; v >= 0; v--) {
    ASSIGN_OR_RETURN(std::string info, delta::ReadCommitInfo(path, v, fs_));
    int64_t batch_id = -1;
    std::map<int32_t, int64_t> ends, starts;
    if (!ParseBatchInfo(info, options_.app_id, &batch_id, &ends, &starts)) continue;
    if (batch_id > min_last) recorded_ends_[batch_id] = ends;
    if (batch_id == min_last + 1 && min_last < 0) {
      for (const auto& [p, start] : starts) next_offsets_[p] = start;
    }
    if (batch_id == min_last) {
      for (const auto& [p, end] : ends) next_offsets_[p] = end;
      found_resume = true;
    }
    if (batch_id <= min_last || (min_last < 0 && batch_id == 0)) break;
  }
  if (!found_resume) {
    return Status::Corruption("bronze.events records batch " + std::to_string(min_last) +
                              " in a txn action but no commit carries its offsets");
  }
  next_batch_id_ = min_last + 1;
  spdlog::info("processor: resuming after batch {} (bronze.events holds batch {}; {} batch(es) to re-run)", min_last,
               bronze.first, recorded_ends_.size());
  return Status::OK();
}

Result<int64_t> MicroBatchRunner::CommitUnlessDone(delta::Transaction* txn, int64_t batch_id) {
  const auto& txns = txn->read_snapshot().app_txn_versions;
  auto it = txns.find(options_.app_id);
  if (it != txns.end() && it->second >= batch_id) return -1;
  txn->SetAppTransaction(options_.app_id, batch_id);
  return txn->Commit();
}

Result<BatchResult> MicroBatchRunner::RunOnce() {
  const int64_t batch_id = next_batch_id_;
  Result<BatchResult> r = RunBatch();
  if (!r.ok()) {
    for (const auto& o : options_.observers) o->OnBatchFailed(batch_id, r.status());
  } else if (r->batch_id >= 0) {
    for (const auto& o : options_.observers) o->OnBatchCommitted(*r);
  }
  return r;
}

Result<BatchResult> MicroBatchRunner::RunBatch() {
  BatchResult result;
  const int64_t started_us = clock_->NowMicros();
  const int64_t t0 = clock_->MonotonicMicros();

  // 1. Read what arrived since the last committed batch, fairly across
  //    partitions; a batch that bronze already holds is re-read exactly.
  std::vector<log::LogRecord> records;
  std::map<int32_t, int64_t> ends = next_offsets_;
  const int32_t parts = log_->num_partitions();
  auto recorded = recorded_ends_.find(next_batch_id_);
  if (recorded != recorded_ends_.end()) {
    for (const auto& [p, end] : recorded->second) {
      while (ends[p] < end) {
        size_t want = static_cast<size_t>(std::min<int64_t>(end - ends[p], kReadChunkRecords));
        ASSIGN_OR_RETURN(auto chunk, log_->Read(p, ends[p], want, kReadChunkBytes));
        if (chunk.empty()) {
          return Status::Corruption("re-running batch " + std::to_string(next_batch_id_) + ": partition " +
                                    std::to_string(p) + " no longer holds offsets [" + std::to_string(ends[p]) +
                                    ", " + std::to_string(end) + ") that bronze.events recorded");
        }
        ends[p] = chunk.back().offset + 1;
        std::move(chunk.begin(), chunk.end(), std::back_inserter(records));
      }
      if (ends[p] > next_offsets_[p]) result.offsets[p] = {next_offsets_[p], ends[p]};
    }
  } else {
    int64_t budget = options_.max_batch_events;
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
      result.backlog = result.backlog || ends[p] < targets[p];
    }
  }
  result.read_us = clock_->MonotonicMicros() - t0;
  if (records.empty()) return result;

  result.batch_id = next_batch_id_;
  result.events = static_cast<int64_t>(records.size());
  result.started_us = started_us;
  for (const auto& o : options_.observers) o->OnBatchStarted(result.batch_id, started_us);
  if (!silver_) {
    ASSIGN_OR_RETURN(silver_, SilverStage::Open(options_.config, options_.lake_dir));
  }

  // Privacy: the events of forgotten or suppressed subjects are dropped here,
  // never stored (their offsets still count as processed).
  if (!subject_filter_ || fs_->Exists(privacy::SubjectList::Path(options_.lake_dir))) {
    RETURN_IF_ERROR(LoadSubjectFilter());
  }
  if (!subject_filter_->empty()) {
    RawEvent raw;
    size_t kept = 0;
    for (size_t i = 0; i < records.size(); i++) {
      if (DecodeRawEvent(records[i].value, &raw).ok() && subject_filter_->Drops(raw.payload, raw.received_at_us)) {
        result.suppressed++;
        continue;
      }
      if (kept != i) records[kept] = std::move(records[i]);
      kept++;
    }
    records.resize(kept);
  }

  // 2. Bronze and Silver rows, in memory: nothing is committed before the
  //    batch passes the quarantine threshold.
  const int64_t t1 = clock_->MonotonicMicros();
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  RETURN_IF_ERROR(LoadBronzeBatch(conn.get(), records, &result.undecodable));
  const int64_t t_silver = clock_->MonotonicMicros();
  std::optional<delta::Schema> silver_schema;
  {
    auto table = delta::Table::Open(JoinPath(options_.lake_dir, kSilverEventsTable), db_.get(), fs_, clock_);
    if (table.ok()) {
      ASSIGN_OR_RETURN(delta::Snapshot snap, (*table)->LoadSnapshot());
      silver_schema = snap.schema();
    } else if (!table.status().IsNotFound()) {
      return table.status();
    }
  }
  ASSIGN_OR_RETURN(SilverBatchStats stats, silver_->BuildBatch(conn.get(), records, result.batch_id,
                                                               silver_schema ? &*silver_schema : nullptr));
  result.silver_us = clock_->MonotonicMicros() - t_silver;
  records.clear();
  records.shrink_to_fit();
  result.silver_rows = stats.silver_rows;
  result.quarantined = stats.quarantined;
  result.duplicates = stats.duplicates;
  result.future_dated = stats.future_dated;
  result.late = stats.late;
  result.pii_redactions = stats.pii_redactions;
  result.prop_type_conflicts = stats.prop_type_conflicts;
  result.quarantine_by_code = stats.quarantine_by_code;

  std::ostringstream reasons;
  reasons << "{";
  for (const auto& [code, n] : stats.quarantine_by_code)
    reasons << (reasons.tellp() > 1 ? "," : "") << "\"" << code << "\":" << n;
  reasons << "}";
  const SilverOptions& so = silver_->options();
  const double rate = static_cast<double>(stats.quarantined) / static_cast<double>(result.events);
  if (result.events >= so.quarantine_min_batch && rate > so.quarantine_threshold) {
    if (!accept_quarantine_) {
      refused_->Increment();
      refusing_->Set(1);
      spdlog::error("processor: batch {} REFUSED: {} of {} events ({:.1f}%) failed their contract, over the {:.1f}% "
                    "threshold; reasons {}. Nothing was committed. Inspect the producers, then run `clicklake "
                    "process --accept-quarantine` to commit it anyway.",
                    result.batch_id, stats.quarantined, result.events, rate * 100, so.quarantine_threshold * 100,
                    reasons.str());
      return Status::ResourceExhausted("batch " + std::to_string(result.batch_id) + ": quarantine rate " +
                                       std::to_string(rate) + " over the threshold " +
                                       std::to_string(so.quarantine_threshold) + " (" + reasons.str() +
                                       "); nothing committed; release with clicklake process --accept-quarantine");
    }
    spdlog::warn("processor: batch {}: quarantine rate {:.1f}% over the threshold, committed as accepted",
                 result.batch_id, rate * 100);
  }
  refusing_->Set(0);

  // 3. Dedup state first (consistent on re-run, see dedup.h), then the tables:
  //    bronze, silver + quarantine, system.batches.
  RETURN_IF_ERROR(silver_->CommitState(stats));

  ASSIGN_OR_RETURN(auto count, conn->Query("SELECT count(*) FROM bronze_batch"));
  const int64_t records_in_batch = count.GetInt64(0, 0);
  ASSIGN_OR_RETURN(auto bronze, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, kBronzeTable), BronzeSchema(),
                                                           {"event_date"}, options_.TableProperties(), db_.get(), fs_,
                                                           clock_));
  auto txn = bronze->StartTransaction();
  {
    // A re-run batch that bronze already holds writes no files there.
    const auto& txns = txn->read_snapshot().app_txn_versions;
    auto it = txns.find(options_.app_id);
    if (it == txns.end() || it->second < result.batch_id) {
      ASSIGN_OR_RETURN(auto adds, txn->WriteFiles(conn.get(), "SELECT * FROM bronze_batch"));
      int64_t bytes = 0;
      for (const auto& a : adds) bytes += a.size;
      // Spark's names, so `clicklake table history` and other readers show them.
      txn->SetOperationMetrics({{"numFiles", std::to_string(adds.size())},
                                {"numOutputRows", std::to_string(records_in_batch)},
                                {"numOutputBytes", std::to_string(bytes)}});
    }
  }
  result.write_us = clock_->MonotonicMicros() - t1 - result.silver_us;
  result.bronze_rows = records_in_batch;

  std::map<int32_t, std::pair<int64_t, int64_t>> all_ranges;
  for (const auto& [p, end] : ends) all_ranges[p] = {next_offsets_[p], end};
  const int64_t t2 = clock_->MonotonicMicros();
  const std::string batch_info = "{\"app_id\":\"" + options_.app_id + "\",\"batch_id\":" +
                                 std::to_string(result.batch_id) + ",\"offsets\":" + OffsetsJson(all_ranges) + "}";
  txn->SetBlindAppend(true);
  txn->SetOperation("STREAMING UPDATE", {{"outputMode", "Append"},
                                         {"queryId", options_.app_id},
                                         {"epochId", std::to_string(result.batch_id)}});
  txn->SetCommitInfoField("clicklake", batch_info);
  ASSIGN_OR_RETURN(int64_t version, CommitUnlessDone(txn.get(), result.batch_id));
  if (version >= 0) result.versions["bronze.events"] = version;

  // While a backlog is drained Gold's refreshes are spaced out: each would be
  // superseded by the next batch's, and each recomputes the dates the batch
  // touched, which in a backlog are the same dates again and again.
  result.gold_deferred = options_.gold && result.backlog &&
                         clock_->MonotonicMicros() - gold_attempted_us_ < options_.gold_catch_up_interval_us;
  gold::SilverChange silver_change;
  {
    // silver.events: identities and sessions of the affected users are
    // recomputed from their recent rows (silver_sessions.h); the new rows are
    // added and only the files holding changed rows are rewritten.
    ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, kSilverEventsTable),
                                                            SilverEventsSchema(), {"event_date"}, options_.TableProperties(), db_.get(), fs_,
                                                            clock_));
    if (!stats.new_prop_columns.empty()) {
      // New prop_<path> columns: a schema-evolution commit of their own.
      ASSIGN_OR_RETURN(delta::Snapshot snap, table->LoadSnapshot());
      delta::Schema desired = snap.schema();
      for (const auto& f : stats.new_prop_columns) {
        if (desired.Find(f.name)) continue;
        desired.fields.push_back(f);
        result.new_prop_columns.push_back(f.name + " (" + f.type + ")");
      }
      ASSIGN_OR_RETURN(int64_t evolved, table->EvolveSchema(desired));
      (void)evolved;
    }
    auto stxn = table->StartTransaction();
    const auto& txns = stxn->read_snapshot().app_txn_versions;
    auto it = txns.find(options_.app_id);
    if (it == txns.end() || it->second < result.batch_id) {
      ASSIGN_OR_RETURN(SilverMerge merge, MergeIdentityAndSessions(conn.get(), table->path(), stxn->read_snapshot(),
                                                                   silver_->options().session_timeout_us,
                                                                   silver_->state()));
      // Rows whose key or session changed are marked deleted where they are
      // (deletion vectors) and written again with the new rows; nothing else
      // is rewritten.
      int64_t deleted = 0;
      if (merge.rows_changed > 0) {
        ASSIGN_OR_RETURN(deleted, stxn->DeleteRows(conn.get(), merge.deleted_rows_query));
      }
      if (deleted != merge.rows_changed) {
        return Status::Internal("silver merge: " + std::to_string(merge.rows_changed) + " changed rows, " +
                                std::to_string(deleted) + " deleted");
      }
      const int64_t tw = clock_->MonotonicMicros();
      ASSIGN_OR_RETURN(auto written, WriteSilverOut(stxn.get(), conn.get(), merge));
      spdlog::debug("processor: silver.events files written in {:.0f} ms", (clock_->MonotonicMicros() - tw) / 1000.0);
      result.silver_rewritten = merge.rows_changed;
      stxn->SetOperationMetrics({{"numAddedFiles", std::to_string(written.size())},
                                 {"numOutputRows", std::to_string(result.silver_rows + merge.rows_changed)},
                                 {"numUpdatedRows", std::to_string(merge.rows_changed)},
                                 {"numCopiedRows", "0"},
                                 {"numDeletedRows", std::to_string(deleted)},
                                 {"numFilesWithDeletes", std::to_string(merge.files_changed)}});
      stxn->SetOperation("STREAMING UPDATE", {{"outputMode", "Update"},
                                              {"queryId", options_.app_id},
                                              {"epochId", std::to_string(result.batch_id)}});
      stxn->SetCommitInfoField("clicklake", batch_info);
      ASSIGN_OR_RETURN(int64_t v, CommitUnlessDone(stxn.get(), result.batch_id));
      if (v >= 0) result.versions["silver.events"] = v;
      // What the commit changed, for the Gold refresh below (it need not read
      // it back from the files), unless that refresh is deferred.
      if (v >= 0 && options_.gold && !result.gold_deferred) {
        silver_change.from_version = stxn->read_snapshot().version;
        silver_change.to_version = v;
        silver_change.removed_table = "gold_change_removed";
        silver_change.added_table = "gold_change_added";
        Status made = MaterializeSilverChange(conn.get(), gold::kGoldSilverColumns, silver_change.removed_table,
                                              silver_change.added_table);
        if (!made.ok()) {  // Gold then diffs the files, as it would without it
          spdlog::warn("processor: batch {}: the Silver change for Gold not kept: {}", result.batch_id,
                       made.ToString());
          silver_change = gold::SilverChange{};
        }
      }
    }
  }
  // Gold: brought to silver.events' latest version, same txn (gold/gold.h).
  const int64_t tg = clock_->MonotonicMicros();
  if (result.gold_deferred) {
    gold_deferred_->Increment();
    spdlog::info("processor: batch {}: Gold refresh deferred while the backlog drains (at most every {} s, and after "
                 "the batch that drains the log)",
                 result.batch_id, options_.gold_catch_up_interval_us / 1'000'000);
  } else if (options_.gold) {
    gold_attempted_us_ = tg;
    if (!gold_) {
      auto stage = gold::GoldStage::Open(options_.config, options_.lake_dir, db_.get(), fs_, clock_);
      if (!stage.ok()) return stage.status();  // bad [gold] configuration
      gold_ = std::move(stage).value();
    }
    auto refreshed =
        gold_->Refresh(options_.app_id, result.batch_id, silver_change.to_version >= 0 ? &silver_change : nullptr);
    if (refreshed.ok()) {
      result.gold = std::make_shared<const gold::GoldRefreshResult>(std::move(refreshed).value());
    } else {
      result.gold_error = refreshed.status().ToString();
      gold_failures_->Increment();
      spdlog::error("processor: batch {}: Gold refresh failed (the next batch retries it): {}", result.batch_id,
                    refreshed.status().ToString());
    }
    result.gold_us = clock_->MonotonicMicros() - tg;
  }
  if (silver_change.to_version >= 0) {
    (void)conn->Execute("DROP TABLE IF EXISTS " + silver_change.removed_table + "; DROP TABLE IF EXISTS " +
                        silver_change.added_table);
  }
  {
    ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, kQuarantineTable),
                                                            QuarantineSchema(), {"received_date"}, options_.TableProperties(), db_.get(), fs_,
                                                            clock_));
    auto qtxn = table->StartTransaction();
    const auto& txns = qtxn->read_snapshot().app_txn_versions;
    auto it = txns.find(options_.app_id);
    if (it == txns.end() || it->second < result.batch_id) {
      ASSIGN_OR_RETURN(auto written, qtxn->WriteFiles(conn.get(), "SELECT * FROM quarantine_batch"));
      (void)written;
      qtxn->SetBlindAppend(true);
      qtxn->SetOperation("STREAMING UPDATE", {{"outputMode", "Append"},
                                              {"queryId", options_.app_id},
                                              {"epochId", std::to_string(result.batch_id)}});
      qtxn->SetCommitInfoField("clicklake", batch_info);
      ASSIGN_OR_RETURN(int64_t v, CommitUnlessDone(qtxn.get(), result.batch_id));
      if (v >= 0) result.versions["silver.quarantine"] = v;
    }
  }
  {
    // restricted.pii: raw values of the privacy policy's restricted fields
    // (silver.events holds only their HMAC). Before system.batches, so a crash
    // before it re-runs the batch, which then skips what this table holds.
    ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, kRestrictedPiiTable),
                                                            RestrictedPiiSchema(), {"event_date"}, options_.TableProperties(), db_.get(), fs_,
                                                            clock_));
    // Lakes from before the token column (privacy.tokenize_fields): add it first.
    ASSIGN_OR_RETURN(int64_t evolved, table->EvolveSchema(RestrictedPiiSchema()));
    (void)evolved;
    auto rtxn = table->StartTransaction();
    const auto& txns = rtxn->read_snapshot().app_txn_versions;
    auto it = txns.find(options_.app_id);
    if (it == txns.end() || it->second < result.batch_id) {
      if (stats.restricted_rows > 0) {
        ASSIGN_OR_RETURN(auto written, rtxn->WriteFiles(conn.get(), "SELECT * FROM restricted_batch"));
        (void)written;
      }
      rtxn->SetBlindAppend(true);
      rtxn->SetOperation("STREAMING UPDATE", {{"outputMode", "Append"},
                                              {"queryId", options_.app_id},
                                              {"epochId", std::to_string(result.batch_id)}});
      rtxn->SetCommitInfoField("clicklake", batch_info);
      ASSIGN_OR_RETURN(int64_t v, CommitUnlessDone(rtxn.get(), result.batch_id));
      if (v >= 0) result.versions["restricted.pii"] = v;
    }
  }
  result.commit_us = clock_->MonotonicMicros() - t2 - result.gold_us;

  // 4. system.batches, the last commit of the batch.
  const int64_t finished_us = clock_->NowMicros();
  result.finished_us = finished_us;
  {
    std::ostringstream sql;
    sql << "SELECT " << result.batch_id << "::BIGINT AS batch_id, " << engine::QuoteLiteral(options_.app_id)
        << " AS app_id, make_timestamp(" << started_us << "::BIGINT) AS started_at, make_timestamp(" << finished_us
        << "::BIGINT) AS finished_at, 'committed' AS status, " << result.events << "::BIGINT AS events, "
        << result.bronze_rows << "::BIGINT AS bronze_rows, " << result.undecodable << "::BIGINT AS undecodable, "
        << engine::QuoteLiteral(OffsetsJson(all_ranges)) << " AS offsets, " << result.read_us / 1000.0
        << "::DOUBLE AS read_ms, " << result.write_us / 1000.0 << "::DOUBLE AS write_ms, "
        << result.commit_us / 1000.0 << "::DOUBLE AS commit_ms, " << result.silver_rows
        << "::BIGINT AS silver_rows, " << result.quarantined << "::BIGINT AS quarantined, " << result.duplicates
        << "::BIGINT AS duplicates, " << result.future_dated << "::BIGINT AS future_dated, " << result.late
        << "::BIGINT AS late_events, " << result.pii_redactions << "::BIGINT AS pii_redactions, "
        << engine::QuoteLiteral(reasons.str()) << " AS quarantine_by_code, " << result.silver_us / 1000.0
        << "::DOUBLE AS silver_ms, " << result.prop_type_conflicts << "::BIGINT AS prop_type_conflicts, "
        << (result.gold_deferred ? std::string("NULL") : std::to_string(result.gold_us / 1000.0)) << "::DOUBLE AS gold_ms" << ", " << result.suppressed << "::BIGINT AS suppressed";
    ASSIGN_OR_RETURN(auto batches, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, "system/batches"),
                                                              BatchesSchema(), {}, {}, db_.get(), fs_, clock_));
    // Lakes from before the silver columns: add them (nullable) first.
    ASSIGN_OR_RETURN(int64_t evolved, batches->EvolveSchema(BatchesSchema()));
    (void)evolved;
    auto btxn = batches->StartTransaction();
    const auto& txns = btxn->read_snapshot().app_txn_versions;
    auto it = txns.find(options_.app_id);
    if (it == txns.end() || it->second < result.batch_id) {
      ASSIGN_OR_RETURN(auto written, btxn->WriteFiles(conn.get(), sql.str()));
      (void)written;
      btxn->SetBlindAppend(true);
      btxn->SetOperation("WRITE", {{"mode", "Append"}});
      ASSIGN_OR_RETURN(int64_t v, CommitUnlessDone(btxn.get(), result.batch_id));
      if (v >= 0) result.versions["system.batches"] = v;
    }
  }

  next_offsets_ = ends;
  next_batch_id_ = result.batch_id + 1;
  recorded_ends_.erase(result.batch_id);
  accept_quarantine_ = false;  // --accept-quarantine releases one batch

  // 5. Bookkeeping after the commits: consumer offsets (lag, retention), metrics.
  Status s = log_->CommitOffsets(options_.consumer_group, next_offsets_);
  if (!s.ok()) spdlog::warn("processor: committing consumer offsets: {}", s.ToString());

  batches_->Increment();
  events_->Increment(result.events);
  suppressed_->Increment(result.suppressed);
  silver_rows_->Increment(result.silver_rows);
  duplicates_->Increment(result.duplicates);
  future_dated_->Increment(result.future_dated);
  late_->Increment(result.late);
  pii_redactions_->Increment(result.pii_redactions);
  prop_type_conflicts_->Increment(result.prop_type_conflicts);
  for (const auto& [code, n] : result.quarantine_by_code) {
    MetricsRegistry::Global()
        ->GetCounter("clicklake_silver_quarantined_total", "Events sent to silver.quarantine, by error_code.",
                     {{"error_code", code}})
        ->Increment(n);
  }
  for (const auto& [stage, us] : {std::pair<const char*, int64_t>{"read", result.read_us}, {"bronze", result.write_us},
                                  {"silver", result.silver_us}, {"commit", result.commit_us},
                                  {"gold", result.gold_us}}) {
    MetricsRegistry::Global()
        ->GetGauge("clicklake_processor_stage_seconds", "Duration of each stage of the last micro-batch.",
                   {{"stage", stage}})
        ->Set(us / 1e6);
  }
  last_batch_seconds_->Set((clock_->MonotonicMicros() - t0) / 1e6);
  last_batch_unix_->Set(finished_us / 1e6);
  spdlog::info("processor: batch {} committed: {} events ({} undecodable) → bronze.events{}; silver.events +{}, "
               "quarantine +{} {}, {} duplicates, {} future-dated, {} late, {} PII redactions; read {:.1f} ms, "
               "bronze {:.1f} ms, silver {:.1f} ms, commit {:.1f} ms, gold {:.1f} ms",
               result.batch_id, result.events, result.undecodable,
               version >= 0 ? " v" + std::to_string(version) : " (already committed)", result.silver_rows,
               result.quarantined, reasons.str(), result.duplicates, result.future_dated, result.late,
               result.pii_redactions, result.read_us / 1000.0, result.write_us / 1000.0, result.silver_us / 1000.0,
               result.commit_us / 1000.0, result.gold_us / 1000.0);
  return result;
}

Status MicroBatchRunner::Drain() {
  // Requests first: their linked identifiers join the subject list before
  // the backlog is processed.
  RETURN_IF_ERROR(RunPrivacyRequests());
  while (true) {
    ASSIGN_OR_RETURN(BatchResult r, RunOnce());
    if (r.batch_id < 0) return RunPrivacyRequests();
    std::lock_guard l(mu_);
    if (stop_) return Status::OK();
  }
}

Status MicroBatchRunner::CompactSilver(engine::Connection* conn, int64_t max_input_bytes) {
  const int64_t t0 = clock_->MonotonicMicros();
  auto table = delta::Table::Open(JoinPath(options_.lake_dir, kSilverEventsTable), db_.get(), fs_, clock_);
  if (!table.ok()) return table.status().IsNotFound() ? Status::OK() : table.status();
  ASSIGN_OR_RETURN(CompactionResult r, CompactSilverEvents(table->get(), conn, max_input_bytes));
  if (r.version >= 0) {
    compactions_->Increment();
    for (const auto& o : options_.observers) o->OnCompacted("silver.events", r.version);
    spdlog::info("processor: compacted silver.events v{}: {} files ({} MB, {} deleted rows purged) -> {} files, "
                 "{} rows, {:.0f} ms",
                 r.version, r.files_removed, r.bytes_read >> 20, r.deleted_rows_purged, r.files_added, r.rows,
                 (clock_->MonotonicMicros() - t0) / 1000.0);
  }
  return Status::OK();
}

Status MicroBatchRunner::Compact(int64_t deadline_us) {
  const int64_t t0 = clock_->MonotonicMicros();
  ASSIGN_OR_RETURN(auto conn, db_->Connect());
  RETURN_IF_ERROR(CompactSilver(conn.get(), options_.compaction_max_bytes));
  // The other tables: small files bin-packed per partition, DVs purged.
  for (const char* layer : {"bronze", "silver", "gold", "restricted", "system"}) {
    auto tables = fs_->ListDir(JoinPath(options_.lake_dir, layer));
    if (!tables.ok()) continue;
    for (const auto& entry : *tables) {
      if (clock_->MonotonicMicros() >= deadline_us) break;
      const std::string name = std::string(layer) + "/" + entry.name;
      if (name == kSilverEventsTable || entry.name.empty() || entry.name[0] == '_' || entry.name[0] == '.') continue;
      auto table = delta::Table::Open(JoinPath(options_.lake_dir, name), db_.get(), fs_, clock_);
      if (!table.ok()) continue;  // not a Delta table
      delta::OptimizeOptions o;
      o.max_input_bytes = options_.compaction_max_bytes;
      o.purge_deleted_fraction = kSilverMaxDeletedFraction;
      const int64_t t1 = clock_->MonotonicMicros();
      ASSIGN_OR_RETURN(delta::OptimizeResult r, (*table)->Optimize(o));
      if (r.version >= 0) {
        compactions_->Increment();
        for (const auto& o : options_.observers) o->OnCompacted(std::string(layer) + "." + entry.name, r.version);
        spdlog::info("processor: compacted {} v{}: {} files ({} MB, {} deleted rows purged) -> {} files, {:.0f} ms",
                     name, r.version, r.files_removed, r.bytes_removed >> 20, r.deleted_rows_purged, r.files_added,
                     (clock_->MonotonicMicros() - t1) / 1000.0);
      }
    }
  }
  compaction_seconds_->Set((clock_->MonotonicMicros() - t0) / 1e6);
  return Status::OK();
}

Status MicroBatchRunner::Run() {
  while (true) {
    const int64_t start = clock_->MonotonicMicros();
    if (Status p = RunPrivacyRequests(); !p.ok()) {
      spdlog::error("processor: privacy requests failed (retried before the next batch): {}", p.ToString());
    }
    auto r = RunOnce();
    if (!r.ok()) spdlog::error("processor: batch {} failed: {}", next_batch_id_, r.status().ToString());
    for (const auto& o : options_.observers) o->OnTick(clock_->NowMicros());
    const int64_t deadline = start + options_.trigger_us - options_.compaction_min_idle_us;
    if (options_.compaction && clock_->MonotonicMicros() < deadline) {
      // Background compaction in the time left before the next trigger.
      Status c = Compact(deadline);
      if (!c.ok()) spdlog::warn("processor: compaction failed (retried after the next batch): {}", c.ToString());
    } else if (options_.compaction && options_.auto_compaction_bytes > 0 && r.ok() && r->batch_id >= 0) {
      // No idle time: fold silver.events' small files anyway, bounded.
      auto conn = db_->Connect();
      Status c = conn.ok() ? CompactSilver(conn->get(), options_.auto_compaction_bytes) : conn.status();
      if (!c.ok()) spdlog::warn("processor: compaction failed (retried after the next batch): {}", c.ToString());
    }
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

Status MicroBatchRunner::LoadSubjectFilter() {
  const std::string path = privacy::SubjectList::Path(options_.lake_dir);
  int64_t mtime = -1;
  uint64_t size = 0;
  if (fs_->Exists(path)) {
    ASSIGN_OR_RETURN(FileInfo info, fs_->Stat(path));
    mtime = info.mtime_ms;
    size = info.size;
  }
  if (subject_filter_ && mtime == subject_list_mtime_ms_ && size == subject_list_size_) return Status::OK();
  if (!silver_) {
    ASSIGN_OR_RETURN(silver_, SilverStage::Open(options_.config, options_.lake_dir));
  }
  ASSIGN_OR_RETURN(privacy::SubjectList list, privacy::SubjectList::Load(options_.lake_dir, fs_));
  subject_filter_ = std::make_shared<privacy::SubjectFilter>(std::move(list), silver_->pii_key());
  subject_list_mtime_ms_ = mtime;
  subject_list_size_ = size;
  return Status::OK();
}

Status MicroBatchRunner::RunPrivacyRequests() {
  privacy::RequestQueue queue(options_.lake_dir, fs_);
  ASSIGN_OR_RETURN(auto pending, queue.Pending());
  ASSIGN_OR_RETURN(auto retention, RetentionRulesFromConfig(options_.config));
  const int64_t now = clock_->MonotonicMicros();
  const bool retention_due =
      !retention.empty() && (last_retention_us_ == INT64_MIN ||
                             now - last_retention_us_ >= options_.config.GetDurationMicros("privacy.retention_interval",
                                                                                            86'400'000'000LL));
  if (pending.empty() && !retention_due) return Status::OK();
  if (!silver_) {
    ASSIGN_OR_RETURN(silver_, SilverStage::Open(options_.config, options_.lake_dir));
  }
  ErasureContext ctx;
  ErasureSettingsFromConfig(options_.config, &ctx);
  ctx.lake_dir = options_.lake_dir;
  ctx.gold = options_.gold;
  ctx.db = db_.get();
  ctx.state = silver_->state();
  ctx.pii_key = silver_->pii_key();
  ctx.fs = fs_;
  ctx.clock = clock_;
  ASSIGN_OR_RETURN(auto receipts, ExecutePrivacyRequests(ctx));
  (void)receipts;
  if (retention_due) {
    ASSIGN_OR_RETURN(auto run, RunRetention(ctx, retention));
    (void)run;
    last_retention_us_ = now;
  }
  // The list grew (linked identifiers): reload it before the next batch.
  subject_filter_.reset();
  return Status::OK();
}

void MicroBatchRunner::Stop() {
  std::lock_guard l(mu_);
  stop_ = true;
  cv_.notify_all();
}

}  // namespace clicklake::pipeline
