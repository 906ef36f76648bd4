// The processor's runs (micro-batches, Gold models, compaction, quality checks)
// as OpenLineage events, and the Gold models' declared column lineage.
#include <chrono>
#include <sstream>

#include "common/logging.h"
#include "governance/lineage/lineage.h"
#include "pipeline/gold/gold.h"

namespace clicklake::governance::lineage {

extern const char* const kGoldColumnsToml;  // gold_columns.toml, embedded at build time

namespace {

struct GoldDeclarations {
  std::map<std::string, std::map<std::string, std::vector<InputField>>> columns;  // "gold.x" → column → inputs
  std::map<std::string, std::vector<std::string>> inputs;                        // "gold.x" → datasets read
};

const GoldDeclarations& Declarations() {
  static const GoldDeclarations decl = [] {
    GoldDeclarations d;
    auto config = Config::Parse(kGoldColumnsToml);
    if (!config.ok()) {
      spdlog::error("lineage: gold_columns.toml: {}", config.status().message());
      return d;
    }
    for (const char* t : pipeline::gold::kGoldTables) {
      const std::string model = std::string(t).substr(std::string(t).find('/') + 1);
      const std::string dataset = "gold." + model;
      d.inputs[dataset] = config->GetStringList(model + ".inputs");
      for (const auto& [column, spec] : config->GetStringMap(model + ".columns")) {
        std::istringstream words(spec);
        std::string kind, ref;
        words >> kind;
        auto& fields = d.columns[dataset][column];
        while (words >> ref) {
          // "layer.table.column"
          const size_t second_dot = ref.find('.', ref.find('.') + 1);
          if (second_dot == std::string::npos) continue;
          InputField f;
          f.dataset = ref.substr(0, second_dot);
          f.field = ref.substr(second_dot + 1);
          f.type = "DIRECT";
          f.subtype = kind;
          fields.push_back(std::move(f));
        }
      }
    }
    return d;
  }();
  return decl;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "gold/fact_events" → "gold.fact_events"
std::string DatasetName(const std::string& table_path) {
  std::string n = table_path;
  auto slash = n.find('/');
  if (slash != std::string::npos) n[slash] = '.';
  return n;
}

DatasetInfo EventLogDataset() {
  DatasetInfo d;
  d.name = "_clicklake.log";
  d.resolve_schema = false;
  d.schema = {{"partition", "integer"}, {"offset", "long"},   {"received_at", "timestamp"},
              {"source", "string"},     {"protocol", "string"}, {"payload", "string"}};
  return d;
}

}  // namespace

const std::map<std::string, std::vector<InputField>>& GoldColumnLineage(const std::string& table) {
  static const std::map<std::string, std::vector<InputField>> empty;
  const auto& decl = Declarations();
  auto it = decl.columns.find(table);
  return it == decl.columns.end() ? empty : it->second;
}

std::map<std::string, std::vector<std::string>> GoldModelInputs() { return Declarations().inputs; }

LineageObserver::LineageObserver(std::shared_ptr<LineageEmitter> emitter) : emitter_(std::move(emitter)) {}

std::string LineageObserver::BatchRunId(int64_t batch_id) const {
  std::lock_guard l(mu_);
  auto it = runs_.find(batch_id);
  return it == runs_.end() ? "" : it->second.first;
}

void LineageObserver::OnBatchStarted(int64_t batch_id, int64_t started_us) {
  RunEvent e;
  e.run_id = NewRunId();
  e.job_name = "microbatch";
  e.event_type = "START";
  e.event_time_us = started_us;
  e.nominal_start_us = started_us;
  e.inputs.push_back(EventLogDataset());
  {
    std::lock_guard l(mu_);
    runs_[batch_id] = {e.run_id, started_us};
    // Keep a few: a quality check may report on a recent batch after the next one starts.
    while (runs_.size() > 16) runs_.erase(runs_.begin());
  }
  emitter_->Emit(std::move(e));
}

void LineageObserver::OnBatchCommitted(const pipeline::BatchResult& result) {
  std::string run_id = BatchRunId(result.batch_id);
  int64_t started_us = result.started_us;
  if (run_id.empty()) {  // started before this observer existed: open and close the run now
    OnBatchStarted(result.batch_id, result.started_us);
    run_id = BatchRunId(result.batch_id);
  }
  RunEvent e;
  e.run_id = run_id;
  e.job_name = "microbatch";
  e.event_type = "COMPLETE";
  e.event_time_us = result.finished_us ? result.finished_us : NowMicros();
  e.nominal_start_us = started_us;
  e.nominal_end_us = e.event_time_us;
  e.inputs.push_back(EventLogDataset());
  for (const auto& [table, version] : result.versions) {
    DatasetInfo d;
    d.name = table;
    d.version = version;
    if (table == "bronze.events") d.row_count = result.bronze_rows;
    if (table == "silver.events") d.row_count = result.silver_rows + result.silver_rewritten;
    if (table == "silver.quarantine") d.row_count = result.quarantined;
    if (table == "system.batches") d.row_count = 1;
    e.outputs.push_back(std::move(d));
  }
  emitter_->Emit(std::move(e));

  // Gold: one run per model the refresh committed, parented by the batch.
  if (!result.gold_error.empty()) {
    RunEvent g;
    g.run_id = NewRunId();
    g.job_name = "gold.refresh";
    g.parent_job = "microbatch";
    g.parent_run_id = run_id;
    g.event_type = "START";
    g.event_time_us = e.nominal_end_us.value_or(NowMicros()) - result.gold_us;
    g.inputs.push_back({.name = "silver.events"});
    emitter_->Emit(g);
    g.event_type = "FAIL";
    g.event_time_us = e.nominal_end_us.value_or(NowMicros());
    g.error_message = result.gold_error;
    emitter_->Emit(std::move(g));
  }
  if (!result.gold) return;
  const auto& inputs = Declarations().inputs;
  int64_t t = e.event_time_us - result.gold->total_us;
  for (const char* table_path : pipeline::gold::kGoldTables) {
    auto it = result.gold->tables.find(table_path);
    if (it == result.gold->tables.end() || it->second.version < 0) continue;
    const auto& refresh = it->second;
    const std::string name = DatasetName(table_path);
    RunEvent g;
    g.run_id = NewRunId();
    g.job_name = name;
    g.job_type = "MODEL";
    g.parent_job = "microbatch";
    g.parent_run_id = run_id;
    g.event_type = "START";
    g.event_time_us = t;
    auto in = inputs.find(name);
    if (in != inputs.end()) {
      for (const auto& input : in->second) {
        DatasetInfo d{.name = input};
        if (input == "silver.events") d.version = result.gold->silver_version;
        // A Gold input (a state table or dimension) was refreshed earlier in this batch.
        std::string input_path = input;
        input_path[input_path.find('.')] = '/';
        if (auto in_table = result.gold->tables.find(input_path);
            in_table != result.gold->tables.end() && in_table->second.version >= 0)
          d.version = in_table->second.version;
        g.inputs.push_back(std::move(d));
      }
    }
    emitter_->Emit(g);
    t += refresh.us;
    g.event_type = "COMPLETE";
    g.event_time_us = t;
    DatasetInfo out{.name = name, .version = refresh.version};
    out.row_count = refresh.rows_written;
    out.column_lineage = GoldColumnLineage(name);
    g.outputs.push_back(std::move(out));
    emitter_->Emit(std::move(g));
  }
}

void LineageObserver::OnBatchFailed(int64_t batch_id, const Status& status) {
  RunEvent e;
  e.run_id = BatchRunId(batch_id);
  if (e.run_id.empty()) e.run_id = NewRunId();
  e.job_name = "microbatch";
  e.event_type = "FAIL";
  e.event_time_us = NowMicros();
  e.error_message = status.ToString();
  e.inputs.push_back(EventLogDataset());
  emitter_->Emit(std::move(e));
}

void LineageObserver::OnCompacted(const std::string& table, int64_t version) {
  RunEvent e;
  e.run_id = NewRunId();
  e.job_name = "compaction." + table;
  e.job_type = "COMMAND";
  e.event_type = "START";
  e.event_time_us = NowMicros();
  e.inputs.push_back({.name = table, .version = version - 1});
  emitter_->Emit(e);
  e.event_type = "COMPLETE";
  e.event_time_us = NowMicros();
  e.outputs.push_back({.name = table, .version = version});
  emitter_->Emit(std::move(e));
}

void LineageObserver::EmitQualityRun(int64_t batch_id, const std::string& check, const std::string& dataset,
                                     std::optional<int64_t> version, const std::vector<Assertion>& assertions,
                                     int64_t started_us, int64_t finished_us, const std::string& error) {
  RunEvent e;
  e.run_id = NewRunId();
  e.job_name = "quality." + dataset + "." + check;
  e.job_type = "TEST";
  e.parent_job = "microbatch";
  e.parent_run_id = BatchRunId(batch_id);
  e.event_type = "START";
  e.event_time_us = started_us;
  e.inputs.push_back({.name = dataset, .version = version});
  emitter_->Emit(e);
  e.event_type = error.empty() ? "COMPLETE" : "FAIL";
  e.error_message = error;
  e.event_time_us = finished_us;
  e.inputs.front().assertions = assertions;
  emitter_->Emit(std::move(e));
}

}  // namespace clicklake::governance::lineage
