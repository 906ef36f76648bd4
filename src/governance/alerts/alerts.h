// alerts: tells on-call when the lake needs them — a failed batch, a late
// dataset, a quality check that warns or fails, consumer lag or a quarantine
// rate over threshold, a collector shedding load or answering 5xx, a disk
// nearly full — and again when the condition clears.
//
//   AlertRules   turns what the processor reports (BatchObserver) and what the
//                process can see (lag, collector counters, disk, readiness,
//                quality results) into the set of alerts active per rule.
//   Alerter      keeps the state of every alert (by fingerprint): a new active
//                alert fires once (deduplicated; re-sent after repeat_interval),
//                an alert no longer active resolves. Notifications go, on its
//                own thread and with retries and exponential backoff, to every
//                configured receiver: a generic webhook in the Alertmanager
//                webhook format (version "4"), Slack incoming webhooks, and the
//                PagerDuty Events API v2 (trigger/resolve with dedup_key). Each
//                notification is recorded in system.alerts.
//
// Thread safety: Alerter's methods may be called from any thread; AlertRules is
// a BatchObserver, called on the runner's thread.
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
#include "common/metrics.h"
#include "common/status.h"
#include "governance/delivery_queue.h"
#include "pipeline/pipeline.h"

namespace clicklake::governance::alerts {

struct Receiver {
  std::string kind;         // "webhook" | "slack" | "pagerduty"
  std::string url;
  std::string routing_key;  // pagerduty: the integration's routing key
};

struct AlertOptions {
  bool enabled = true;                         // alerts.enabled
  std::string lake_dir = "./lake";             // lake.dir: system.alerts lives here
  bool history = true;                         // alerts.history: record notifications in system.alerts
  std::vector<Receiver> receivers;             // alerts.webhook.url, alerts.slack.url, alerts.pagerduty.{routing_key,url}
  int attempts = 5;                            // alerts.attempts per receiver and notification
  int64_t backoff_us = 1'000'000;              // alerts.backoff: first retry delay, doubled per attempt
  int64_t max_backoff_us = 60'000'000;         // alerts.max_backoff
  int64_t timeout_us = 5'000'000;              // alerts.timeout per HTTP request
  int64_t repeat_interval_us = 4LL * 3600 * 1000000;  // alerts.repeat_interval: re-send a still-firing alert
  std::string source = "clicklake";            // alerts.source: PagerDuty payload.source, Alertmanager instance label
  std::string external_url;                    // alerts.external_url: the status page, linked from alerts

  // Rule thresholds.
  int64_t lag_threshold = 1'000'000;           // alerts.lag_threshold: events not yet processed
  double quarantine_rate = 0.05;               // alerts.quarantine_rate: of a batch's valid + quarantined rows
  int64_t quarantine_min_events = 100;         // alerts.quarantine_min_events
  double disk_free_ratio = 0.10;               // alerts.disk_free_ratio: alert below this free fraction

  static Result<AlertOptions> FromConfig(const Config& config);
};

struct Alert {
  std::string name;                            // alertname: "ClicklakeBatchFailed", ...
  std::string severity = "warning";            // critical | warning | info
  std::map<std::string, std::string> labels;   // besides alertname and severity (dataset, check, ...)
  std::string summary;                         // one line
  std::string description;
  std::string runbook;                         // docs/runbooks/<file>.md
  // Filled by the Alerter.
  std::string fingerprint;                     // stable id of (name, labels): dedup_key, Alertmanager fingerprint
  int64_t starts_at_us = 0;
  int64_t ends_at_us = 0;                      // resolved: when it cleared
};

// The stable identity of an alert: the first 16 hex digits of SHA-256 over its
// name and sorted labels.
std::string Fingerprint(const std::string& name, const std::map<std::string, std::string>& labels);

// Request bodies, one alert per notification (exposed for tests).
std::string AlertmanagerPayload(const Alert& a, bool firing, const AlertOptions& options);
std::string SlackPayload(const Alert& a, bool firing, const AlertOptions& options);
std::string PagerDutyPayload(const Alert& a, bool firing, const Receiver& receiver, const AlertOptions& options);

class Alerter {
 public:
  static Result<std::unique_ptr<Alerter>> Start(const AlertOptions& options, Clock* clock = SystemClock());
  ~Alerter();

  // The alerts of `rule` that are active now. Those not firing yet fire; firing
  // ones of the rule missing from `active` resolve; the rest stay as they are
  // (re-sent after repeat_interval).
  void Update(const std::string& rule, std::vector<Alert> active);

  std::vector<Alert> Firing() const;           // what is firing now, by fingerprint
  void Flush();                                // waits until every queued notification is delivered or given up
  void Stop();                                 // delivers what is queued, then stops
  const AlertOptions& options() const { return options_; }

  struct Stats {
    int64_t notifications = 0, delivered = 0, failed_attempts = 0, given_up = 0;
  };
  Stats stats() const;

 private:
  Alerter(const AlertOptions& options, Clock* clock);
  struct Notification {
    Alert alert;
    bool firing = true;
  };
  void Deliver(const Notification& n);          // the queue's thread
  bool Send(const Receiver& r, const std::string& body, int* attempts);
  Status Record(const Notification& n, const std::string& delivered, int attempts);
  void Enqueue(const Alert& a, bool firing);   // REQUIRES: mu_ held

  AlertOptions options_;
  Clock* clock_;
  struct History;
  std::unique_ptr<History> history_;           // the queue's thread only
  mutable std::mutex mu_;
  std::map<std::string, std::string> rule_of_;  // GUARDED_BY(mu_): fingerprint → rule
  std::map<std::string, Alert> firing_;         // GUARDED_BY(mu_): by fingerprint
  std::map<std::string, int64_t> last_sent_us_;  // GUARDED_BY(mu_)
  Stats stats_;                                 // GUARDED_BY(mu_)
  Gauge* firing_gauge_ = nullptr;
  Counter* notifications_ = nullptr;
  Counter* delivery_failures_ = nullptr;
  std::unique_ptr<DeliveryQueue<Notification>> queue_;  // last: its thread uses the members above
};

// What the rules can see besides the batches (each optional; service.cc wires them).
struct AlertInputs {
  std::function<int64_t()> consumer_lag;                     // events in the log not yet processed
  // Collector counters in this process (clicklake up/collect): events shed, 5xx answers.
  std::function<std::pair<int64_t, int64_t>()> collector_shed_and_5xx;
  // Readiness per dataset: (dataset, status READY|LATE|FAILED|UNKNOWN, reason).
  std::function<std::vector<std::tuple<std::string, std::string, std::string>>()> readiness;
  // The latest quality results that did not pass: (check, dataset, status warn|fail|error, detail).
  std::function<std::vector<std::tuple<std::string, std::string, std::string, std::string>>()> quality;
  // Free fraction of the lake's file system (default: statvfs on lake_dir).
  std::function<std::optional<double>()> disk_free_ratio;
};

// The rules (names are the alertname; the Prometheus rules in deploy/ use the same):
//   ClicklakeBatchFailed (critical)        a batch failed; resolves with the next committed batch
//   ClicklakeConsumerLagHigh (warning)     lag > lag_threshold
//   ClicklakeQuarantineRateHigh (warning)  a batch's quarantine rate > quarantine_rate
//   ClicklakeCollectorShedding (warning)   the collector shed events since the last evaluation
//   ClicklakeCollector5xx (critical)       the collector answered 5xx since the last evaluation
//   ClicklakeDiskNearlyFull (critical)     the lake's file system has < disk_free_ratio free
//   ClicklakeDatasetLate (warning)         a dataset is LATE (freshness past its SLA), per dataset
//   ClicklakeDatasetFailed (critical)      a dataset is FAILED, per dataset
//   ClicklakeQualityCheck (warning|critical)  a check warns (warning) or fails/errors (critical), per check and dataset
class AlertRules : public pipeline::BatchObserver {
 public:
  AlertRules(std::shared_ptr<Alerter> alerter, AlertInputs inputs);
  void OnBatchCommitted(const pipeline::BatchResult& result) override;
  void OnBatchFailed(int64_t batch_id, const Status& status) override;
  void OnTick(int64_t now_us) override;
  // Re-evaluates the rules that read state rather than batches (lag, collector,
  // disk, readiness, quality). Called by the hooks above.
  void Evaluate();

 private:
  std::shared_ptr<Alerter> alerter_;
  AlertInputs inputs_;
  std::optional<std::pair<int64_t, int64_t>> last_collector_;
};

}  // namespace clicklake::governance::alerts
