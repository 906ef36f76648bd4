// Wires lineage and alerts to the processor and to the quality observer.
#include "cli/signals.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"

namespace clicklake::cli {
namespace {

namespace lineage = governance::lineage;
namespace alerts = governance::alerts;

// Hears the quality observer: each check run of a batch becomes its own OpenLineage
// test run (job quality.<dataset>.<check>); the latest results and readiness feed the alert rules.
class QualitySignals : public quality::QualityListener {
 public:
  explicit QualitySignals(std::shared_ptr<lineage::LineageObserver> lineage) : lineage_(std::move(lineage)) {}

  void OnCheckResults(int64_t batch_id, const std::vector<quality::CheckResult>& results) override {
    {
      std::lock_guard l(mu_);
      results_ = results;
    }
    if (!lineage_ || results.empty()) return;
    // One test run per check (and dataset): its results, one per series, are its assertions.
    struct CheckRun {
      std::vector<lineage::Assertion> assertions;
      int64_t first = INT64_MAX, last = 0;
      std::string error;  // the check could not run
    };
    std::map<std::pair<std::string, std::string>, CheckRun> runs;  // (dataset, check) → run, in a stable order
    for (const auto& r : results) {
      lineage::Assertion a;
      a.name = r.series.empty() ? r.check : r.check + " [" + r.series + "]";
      a.assertion = r.check_type;
      a.success = r.status == quality::CheckStatus::kPass;
      a.severity = quality::ToString(r.severity);
      a.observed = r.observed;
      if (r.observed) a.actual = std::to_string(*r.observed);
      if (r.expected_min || r.expected_max)
        a.expected = "[" + (r.expected_min ? std::to_string(*r.expected_min) : std::string("-inf")) + ", " +
                     (r.expected_max ? std::to_string(*r.expected_max) : std::string("inf")) + "]";
      CheckRun& run = runs[{r.dataset, r.check}];
      run.assertions.push_back(std::move(a));
      run.first = std::min(run.first, r.checked_at_us);
      run.last = std::max(run.last, r.checked_at_us);
      if (r.status == quality::CheckStatus::kError)
        run.error += (run.error.empty() ? "" : "; ") + r.detail;
    }
    for (const auto& [key, run] : runs)
      lineage_->EmitQualityRun(batch_id, key.second, key.first, std::nullopt, run.assertions, run.first, run.last,
                               run.error);
  }

  void OnReadiness(const std::vector<quality::DatasetReadiness>& readiness) override {
    std::lock_guard l(mu_);
    readiness_ = readiness;
  }

  std::vector<std::tuple<std::string, std::string, std::string>> Readiness() {
    std::lock_guard l(mu_);
    std::vector<std::tuple<std::string, std::string, std::string>> out;
    for (const auto& r : readiness_) out.emplace_back(r.dataset, quality::ToString(r.status), r.reason);
    return out;
  }
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> FailingChecks() {
    std::lock_guard l(mu_);
    std::vector<std::tuple<std::string, std::string, std::string, std::string>> out;
    for (const auto& r : results_)
      if (r.status != quality::CheckStatus::kPass) out.emplace_back(r.check, r.dataset, quality::ToString(r.status), r.detail);
    return out;
  }

 private:
  std::shared_ptr<lineage::LineageObserver> lineage_;
  std::mutex mu_;
  std::vector<quality::CheckResult> results_;            // GUARDED_BY(mu_)
  std::vector<quality::DatasetReadiness> readiness_;     // GUARDED_BY(mu_)
};

// Events shed and 5xx answers of a collector in this process (collector/request_handler.cc
// registers these families in the process's registry).
std::pair<int64_t, int64_t> CollectorShedAnd5xx() {
  auto* m = MetricsRegistry::Global();
  int64_t shed = 0;
  for (const char* reason : {"low_priority", "queue_full", "log_unavailable", "log_error"})
    shed += m->GetCounter("clicklake_collector_shed_events_total", "Events refused by load shedding, by reason.",
                          {{"reason", reason}})
                ->value();
  const int64_t errors =
      m->GetCounter("clicklake_collector_errors_total", "Collector error responses by class.", {{"class", "5xx"}})
          ->value();
  return {shed, errors};
}

}  // namespace

// Evaluates the alert rules now and then every `interval_us` on a thread of its own:
// a collector without a processor has no batches or trigger ticks to do it.
class RuleTicker {
 public:
  RuleTicker(std::shared_ptr<alerts::AlertRules> rules, int64_t interval_us)
      : rules_(std::move(rules)), interval_us_(interval_us), thread_([this] { Loop(); }) {}
  ~RuleTicker() { Stop(); }
  void Stop() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock l(mu_);
    while (!stop_) {
      l.unlock();
      rules_->Evaluate();
      l.lock();
      cv_.wait_for(l, std::chrono::microseconds(interval_us_), [this] { return stop_; });
    }
  }
  std::shared_ptr<alerts::AlertRules> rules_;
  const int64_t interval_us_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;  // last: runs Loop over the members above
};

void Signals::Stop() {
  if (ticker) ticker->Stop();
  if (alerter) alerter->Stop();
  if (lineage_emitter) lineage_emitter->Stop();
}

Result<Signals> StartCollectorSignals(const Config& config) {
  Signals s;
  ASSIGN_OR_RETURN(alerts::AlertOptions options, alerts::AlertOptions::FromConfig(config));
  if (!options.enabled) return s;
  const int64_t interval_us = config.GetDurationMicros("alerts.interval", 15'000'000);
  if (interval_us <= 0) return Status::InvalidArgument("alerts.interval must be a positive duration, e.g. 15s");
  ASSIGN_OR_RETURN(auto alerter, alerts::Alerter::Start(options));
  s.alerter = std::move(alerter);
  alerts::AlertInputs inputs;
  inputs.collector_shed_and_5xx = CollectorShedAnd5xx;  // + the disk of the lake (AlertRules' default)
  s.ticker = std::make_shared<RuleTicker>(std::make_shared<alerts::AlertRules>(s.alerter, std::move(inputs)),
                                          interval_us);
  return s;
}

Result<Signals> StartSignals(const Config& config, const std::string& consumer_group, log::EventLog* log,
                             quality::QualityObserver* quality, bool collector_in_process) {
  Signals s;
  std::shared_ptr<lineage::LineageObserver> lineage_observer;
  const lineage::LineageOptions lineage_options = lineage::LineageOptions::FromConfig(config);
  if (lineage_options.enabled) {
    ASSIGN_OR_RETURN(auto emitter, lineage::LineageEmitter::Start(lineage_options));
    s.lineage_emitter = std::move(emitter);
    lineage_observer = std::make_shared<lineage::LineageObserver>(s.lineage_emitter);
    s.observers.push_back(lineage_observer);
  }
  auto listener = std::make_shared<QualitySignals>(lineage_observer);
  if (quality) quality->AddListener(listener);

  ASSIGN_OR_RETURN(alerts::AlertOptions alert_options, alerts::AlertOptions::FromConfig(config));
  if (!alert_options.enabled) return s;
  ASSIGN_OR_RETURN(auto alerter, alerts::Alerter::Start(alert_options));
  s.alerter = std::move(alerter);
  alerts::AlertInputs inputs;
  inputs.consumer_lag = [log, consumer_group]() -> int64_t {
    auto committed = log->CommittedOffsets(consumer_group);
    if (!committed.ok()) return 0;
    int64_t lag = 0;
    for (int32_t p = 0; p < log->num_partitions(); p++) {
      auto info = log->GetPartitionInfo(p);
      if (!info.ok()) continue;
      auto it = committed->find(p);
      lag += std::max<int64_t>(0, info->end_offset - (it == committed->end() ? info->start_offset : it->second));
    }
    return lag;
  };
  if (collector_in_process) inputs.collector_shed_and_5xx = CollectorShedAnd5xx;
  if (quality) {
    inputs.readiness = [listener] { return listener->Readiness(); };
    inputs.quality = [listener] { return listener->FailingChecks(); };
  }
  s.observers.push_back(std::make_shared<alerts::AlertRules>(s.alerter, std::move(inputs)));
  return s;
}

}  // namespace clicklake::cli
