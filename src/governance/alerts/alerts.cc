// Alert state, payloads, delivery with retries, and the system.alerts history.
#include "governance/alerts/alerts.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "common/file_system.h"
#include "common/json_string.h"
#include "common/logging.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::governance::alerts {
namespace {

std::string Rfc3339(int64_t us) {
  time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((us % 1000000) / 1000));
  return buf;
}

std::string JsonObject(const std::map<std::string, std::string>& kv) {
  std::string out = "{";
  for (const auto& [k, v] : kv) {
    if (out.size() > 1) out += ',';
    AppendJsonString(k, &out);
    out += ':';
    AppendJsonString(v, &out);
  }
  return out + "}";
}

std::map<std::string, std::string> AllLabels(const Alert& a, const AlertOptions& o) {
  auto labels = a.labels;
  labels["alertname"] = a.name;
  labels["severity"] = a.severity;
  labels["instance"] = o.source;
  return labels;
}

std::map<std::string, std::string> Annotations(const Alert& a) {
  std::map<std::string, std::string> ann;
  ann["summary"] = a.summary;
  if (!a.description.empty()) ann["description"] = a.description;
  if (!a.runbook.empty()) ann["runbook_url"] = a.runbook;
  return ann;
}

delta::Schema HistorySchema() {
  delta::Schema s;
  auto f = [](const char* n, const char* t) { return delta::Field{n, t, true, "{}"}; };
  s.fields = {f("notified_at", "timestamp"), f("fingerprint", "string"), f("alertname", "string"),
              f("severity", "string"),       f("status", "string"),      f("labels", "string"),
              f("summary", "string"),        f("description", "string"), f("starts_at", "timestamp"),
              f("ends_at", "timestamp"),     f("receivers", "string"),   f("delivered", "string"),
              f("attempts", "integer")};
  return s;
}

}  // namespace

std::string Fingerprint(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string text = name;
  for (const auto& [k, v] : labels) text += '\x1f' + k + '\x1e' + v;  // std::map: sorted by key
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Result<AlertOptions> AlertOptions::FromConfig(const Config& c) {
  AlertOptions o;
  o.enabled = c.GetBool("alerts.enabled", o.enabled);
  o.lake_dir = c.lake_dir();
  o.history = c.GetBool("alerts.history", o.history);
  if (std::string url = c.GetString("alerts.webhook.url", ""); !url.empty()) o.receivers.push_back({"webhook", url, ""});
  if (std::string url = c.GetString("alerts.slack.url", ""); !url.empty()) o.receivers.push_back({"slack", url, ""});
  if (std::string key = c.GetString("alerts.pagerduty.routing_key", ""); !key.empty()) {
    o.receivers.push_back(
        {"pagerduty", c.GetString("alerts.pagerduty.url", "https://events.pagerduty.com/v2/enqueue"), key});
  }
  for (const auto& r : o.receivers) {
    if (r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0)
      return Status::InvalidArgument("alerts." + r.kind + ".url = '" + r.url + "': expected an http(s):// URL");
  }
  o.attempts = static_cast<int>(c.GetInt("alerts.attempts", o.attempts));
  if (o.attempts < 1) return Status::InvalidArgument("alerts.attempts must be at least 1");
  o.backoff_us = c.GetDurationMicros("alerts.backoff", o.backoff_us);
  o.max_backoff_us = c.GetDurationMicros("alerts.max_backoff", o.max_backoff_us);
  o.timeout_us = c.GetDurationMicros("alerts.timeout", o.timeout_us);
  o.repeat_interval_us = c.GetDurationMicros("alerts.repeat_interval", o.repeat_interval_us);
  o.source = c.GetString("alerts.source", o.source);
  o.external_url = c.GetString("alerts.external_url", o.external_url);
  o.lag_threshold = c.GetInt("alerts.lag_threshold", o.lag_threshold);
  o.quarantine_rate = c.GetDouble("alerts.quarantine_rate", o.quarantine_rate);
  o.quarantine_min_events = c.GetInt("alerts.quarantine_min_events", o.quarantine_min_events);
  o.disk_free_ratio = c.GetDouble("alerts.disk_free_ratio", o.disk_free_ratio);
  return o;
}

std::string AlertmanagerPayload(const Alert& a, bool firing, const AlertOptions& o) {
  const auto labels = AllLabels(a, o);
  const std::string status = firing ? "firing" : "resolved";
  std::string out = "{\"version\":\"4\",\"groupKey\":";
  AppendJsonString("{}:{alertname=\"" + a.name + "\"}", &out);
  out += ",\"truncatedAlerts\":0,\"status\":\"" + status + "\",\"receiver\":";
  AppendJsonString(o.source, &out);
  out += ",\"groupLabels\":" + JsonObject({{"alertname", a.name}});
  out += ",\"commonLabels\":" + JsonObject(labels);
  out += ",\"commonAnnotations\":" + JsonObject(Annotations(a));
  out += ",\"externalURL\":";
  AppendJsonString(o.external_url, &out);
  out += ",\"alerts\":[{\"status\":\"" + status + "\",\"labels\":" + JsonObject(labels) +
         ",\"annotations\":" + JsonObject(Annotations(a)) + ",\"startsAt\":\"" + Rfc3339(a.starts_at_us) +
         "\",\"endsAt\":\"" + (firing ? std::string("0001-01-01T00:00:00Z") : Rfc3339(a.ends_at_us)) +
         "\",\"generatorURL\":";
  AppendJsonString(o.external_url, &out);
  out += ",\"fingerprint\":\"" + a.fingerprint + "\"}]}";
  return out;
}

std::string SlackPayload(const Alert& a, bool firing, const AlertOptions& o) {
  std::string title = std::string(firing ? "[FIRING] " : "[RESOLVED] ") + a.name + ": " + a.summary;
  std::string out = "{\"text\":";
  AppendJsonString(title, &out);
  out += ",\"attachments\":[{\"color\":\"";
  out += firing ? (a.severity == "critical" ? "danger" : "warning") : "good";
  out += "\",\"title\":";
  AppendJsonString(title, &out);
  std::string text = a.description;
  if (!a.runbook.empty()) text += (text.empty() ? "" : "\n") + std::string("Runbook: ") + a.runbook;
  out += ",\"text\":";
  AppendJsonString(text, &out);
  out += ",\"fields\":[";
  bool first = true;
  for (const auto& [k, v] : AllLabels(a, o)) {
    if (!first) out += ',';
    first = false;
    out += "{\"title\":";
    AppendJsonString(k, &out);
    out += ",\"value\":";
    AppendJsonString(v, &out);
    out += ",\"short\":true}";
  }
  out += "],\"ts\":" + std::to_string((firing ? a.starts_at_us : a.ends_at_us) / 1000000) + "}]}";
  return out;
}

std::string PagerDutyPayload(const Alert& a, bool firing, const Receiver& r, const AlertOptions& o) {
  std::string out = "{\"routing_key\":";
  AppendJsonString(r.routing_key, &out);
  out += std::string(",\"event_action\":\"") + (firing ? "trigger" : "resolve") + "\",\"dedup_key\":";
  AppendJsonString(a.fingerprint, &out);
  if (firing) {
    // PagerDuty severities: critical, error, warning, info.
    const std::string severity = a.severity == "critical" || a.severity == "warning" ? a.severity : "info";
    out += ",\"payload\":{\"summary\":";
    AppendJsonString((a.name + ": " + a.summary).substr(0, 1024), &out);
    out += ",\"source\":";
    AppendJsonString(o.source, &out);
    out += ",\"severity\":\"" + severity + "\",\"timestamp\":\"" + Rfc3339(a.starts_at_us) +
           "\",\"component\":\"clicklake\",\"class\":";
    AppendJsonString(a.name, &out);
    out += ",\"custom_details\":" + JsonObject(AllLabels(a, o)) + "}";
    if (!o.external_url.empty()) {
      out += ",\"links\":[{\"href\":";
      AppendJsonString(o.external_url, &out);
      out += ",\"text\":\"clicklake status\"}]";
    }
  }
  return out + "}";
}

struct Alerter::History {
  std::unique_ptr<engine::Database> db;
};

Alerter::Alerter(const AlertOptions& options, Clock* clock) : options_(options), clock_(clock) {
  auto* reg = MetricsRegistry::Global();
  firing_gauge_ = reg->GetGauge("clicklake_alerts_firing", "Alerts firing now.");
  notifications_ = reg->GetCounter("clicklake_alert_notifications_total", "Alert notifications (firing and resolved).");
  delivery_failures_ =
      reg->GetCounter("clicklake_alert_delivery_failures_total", "Failed attempts to deliver an alert notification.");
}

Result<std::unique_ptr<Alerter>> Alerter::Start(const AlertOptions& options, Clock* clock) {
  std::unique_ptr<Alerter> a(new Alerter(options, clock));
  a->history_ = std::make_unique<History>();
  if (options.history) {
    engine::DatabaseOptions db_options;
    db_options.threads = 1;
    db_options.memory_limit = "128MB";
    ASSIGN_OR_RETURN(a->history_->db, engine::Database::Open(db_options));
  }
  a->queue_ = std::make_unique<DeliveryQueue<Notification>>(
      100000, [p = a.get()](Notification& n) { p->Deliver(n); });
  return a;
}

Alerter::~Alerter() { Stop(); }

void Alerter::Stop() {
  if (queue_) queue_->Stop();
}

void Alerter::Enqueue(const Alert& a, bool firing) {
  last_sent_us_[a.fingerprint] = clock_->NowMicros();
  ++stats_.notifications;
  notifications_->Increment();
  if (!queue_->Push(Notification{a, firing})) {
    ++stats_.given_up;
    spdlog::error("alerts: {} {} not delivered: the delivery queue is full or stopping", a.name,
                  firing ? "FIRING" : "resolved");
  }
}

void Alerter::Update(const std::string& rule, std::vector<Alert> active) {
  std::lock_guard l(mu_);
  const int64_t now = clock_->NowMicros();
  std::map<std::string, Alert> now_active;
  for (auto& a : active) {
    a.fingerprint = Fingerprint(a.name, a.labels);
    now_active[a.fingerprint] = std::move(a);
  }
  // Resolve what this rule had firing and no longer reports.
  for (auto it = firing_.begin(); it != firing_.end();) {
    if (rule_of_[it->first] == rule && !now_active.count(it->first)) {
      it->second.ends_at_us = now;
      Enqueue(it->second, false);
      last_sent_us_.erase(it->first);
      rule_of_.erase(it->first);
      it = firing_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [fp, a] : now_active) {
    auto it = firing_.find(fp);
    if (it == firing_.end()) {
      a.starts_at_us = now;
      rule_of_[fp] = rule;
      firing_[fp] = a;
      Enqueue(a, true);
    } else {
      // Still firing: keep its start, take the newest text; re-send after repeat_interval.
      a.starts_at_us = it->second.starts_at_us;
      it->second = a;
      if (now - last_sent_us_[fp] >= options_.repeat_interval_us) Enqueue(a, true);
    }
  }
  firing_gauge_->Set(static_cast<double>(firing_.size()));
}

std::vector<Alert> Alerter::Firing() const {
  std::lock_guard l(mu_);
  std::vector<Alert> out;
  for (const auto& [fp, a] : firing_) out.push_back(a);
  return out;
}

void Alerter::Flush() { queue_->Flush(); }

Alerter::Stats Alerter::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

void Alerter::Deliver(const Notification& n) {
  std::string delivered;
  int total_attempts = 0;
  for (const Receiver& r : options_.receivers) {
    std::string body = r.kind == "slack"       ? SlackPayload(n.alert, n.firing, options_)
                       : r.kind == "pagerduty" ? PagerDutyPayload(n.alert, n.firing, r, options_)
                                               : AlertmanagerPayload(n.alert, n.firing, options_);
    int attempts = 0;
    bool ok = Send(r, body, &attempts);
    total_attempts += attempts;
    if (ok) delivered += (delivered.empty() ? "" : ",") + r.kind;
    std::lock_guard l(mu_);
    if (ok) {
      ++stats_.delivered;
    } else {
      ++stats_.given_up;
    }
  }
  spdlog::log(n.firing ? spdlog::level::warn : spdlog::level::info, "alert {} {}: {} (delivered to: {})",
              n.alert.name, n.firing ? "FIRING" : "resolved", n.alert.summary,
              delivered.empty() ? "no receiver" : delivered);
  if (options_.history) {
    if (Status s = Record(n, delivered, total_attempts); !s.ok())
      spdlog::warn("alerts: recording in system.alerts: {}", s.ToString());
  }
}

bool Alerter::Send(const Receiver& r, const std::string& body, int* attempts) {
  const size_t host_start = r.url.find("://") + 3;
  const size_t path_start = r.url.find('/', host_start);
  const std::string origin = path_start == std::string::npos ? r.url : r.url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : r.url.substr(path_start);
  httplib::Client client(origin);
  const time_t secs = static_cast<time_t>(options_.timeout_us / 1000000);
  const time_t usecs = static_cast<time_t>(options_.timeout_us % 1000000);
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  int64_t backoff = options_.backoff_us;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    *attempts = attempt;
    auto res = client.Post(path, body, "application/json");
    if (res && res->status >= 200 && res->status < 300) return true;
    delivery_failures_->Increment();
    {
      std::lock_guard l(mu_);
      ++stats_.failed_attempts;
    }
    const int status = res ? res->status : 0;
    spdlog::warn("alerts: {} {} attempt {}/{}: {}", r.kind, origin, attempt, options_.attempts,
                 res ? "HTTP " + std::to_string(status) : httplib::to_string(res.error()));
    // A 4xx other than 408/429 is a configuration problem; retrying will not help.
    if (status >= 400 && status < 500 && status != 408 && status != 429) return false;
    if (attempt < options_.attempts) {
      queue_->SleepUnlessStopping(backoff);  // Stop() cuts it short (the remaining attempts still run)
      backoff = std::min(backoff * 2, options_.max_backoff_us);
    }
  }
  return false;
}

Status Alerter::Record(const Notification& n, const std::string& delivered, int attempts) {
  using engine::QuoteLiteral;
  std::string receivers;
  for (const auto& r : options_.receivers) receivers += (receivers.empty() ? "" : ",") + r.kind;
  std::ostringstream sql;
  sql << "SELECT make_timestamp(" << clock_->NowMicros() << "::BIGINT) AS notified_at, "
      << QuoteLiteral(n.alert.fingerprint) << " AS fingerprint, " << QuoteLiteral(n.alert.name) << " AS alertname, "
      << QuoteLiteral(n.alert.severity) << " AS severity, " << QuoteLiteral(n.firing ? "firing" : "resolved")
      << " AS status, " << QuoteLiteral(JsonObject(n.alert.labels)) << " AS labels, " << QuoteLiteral(n.alert.summary)
      << " AS summary, " << QuoteLiteral(n.alert.description) << " AS description, make_timestamp("
      << n.alert.starts_at_us << "::BIGINT) AS starts_at, "
      << (n.firing ? std::string("NULL::TIMESTAMP") : "make_timestamp(" + std::to_string(n.alert.ends_at_us) + "::BIGINT)")
      << " AS ends_at, " << QuoteLiteral(receivers) << " AS receivers, " << QuoteLiteral(delivered)
      << " AS delivered, " << attempts << "::INTEGER AS attempts";
  ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(options_.lake_dir, "system/alerts"), HistorySchema(),
                                                          {}, {}, history_->db.get()));
  ASSIGN_OR_RETURN(auto conn, history_->db->Connect());
  auto txn = table->StartTransaction();
  ASSIGN_OR_RETURN(auto files, txn->WriteFiles(conn.get(), sql.str()));
  (void)files;
  txn->SetBlindAppend(true);
  txn->SetOperation("WRITE", {{"mode", "Append"}});
  ASSIGN_OR_RETURN(int64_t v, txn->Commit());
  (void)v;
  return Status::OK();
}

// ---- rules ----

AlertRules::AlertRules(std::shared_ptr<Alerter> alerter, AlertInputs inputs)
    : alerter_(std::move(alerter)), inputs_(std::move(inputs)) {
  if (!inputs_.disk_free_ratio) {
    const std::string dir = alerter_->options().lake_dir;
    inputs_.disk_free_ratio = [dir]() -> std::optional<double> {
      struct statvfs st;
      if (::statvfs(dir.c_str(), &st) != 0 || st.f_blocks == 0) return std::nullopt;
      return static_cast<double>(st.f_bavail) / static_cast<double>(st.f_blocks);
    };
  }
}

void AlertRules::OnBatchCommitted(const pipeline::BatchResult& r) {
  alerter_->Update("batch_failed", {});
  const AlertOptions& o = alerter_->options();
  const int64_t checked = r.silver_rows + r.quarantined;
  std::vector<Alert> quarantine;
  if (checked >= o.quarantine_min_events) {
    const double rate = static_cast<double>(r.quarantined) / static_cast<double>(checked);
    if (rate > o.quarantine_rate) {
      std::ostringstream s;
      s.precision(3);
      s << "batch " << r.batch_id << " quarantined " << r.quarantined << " of " << checked << " events (" << rate * 100
        << "% > " << o.quarantine_rate * 100 << "%)";
      std::string codes;
      for (const auto& [code, n] : r.quarantine_by_code) codes += (codes.empty() ? "" : ", ") + code + " " + std::to_string(n);
      quarantine.push_back({.name = "ClicklakeQuarantineRateHigh", .severity = "warning", .labels = {{"dataset", "silver.quarantine"}},
                            .summary = s.str(), .description = "by error code: " + codes,
                            .runbook = "docs/runbooks/schema-drift-and-quarantine.md"});
    }
    alerter_->Update("quarantine_rate", std::move(quarantine));
  }
  Evaluate();
}

void AlertRules::OnBatchFailed(int64_t batch_id, const Status& status) {
  alerter_->Update("batch_failed",
                   {{.name = "ClicklakeBatchFailed", .severity = "critical", .labels = {},
                     .summary = "micro-batch " + std::to_string(batch_id) + " failed: " + status.message(),
                     .description = status.ToString() + " — the next run retries it from its recorded offsets",
                     .runbook = "docs/runbooks/bad-deploy-and-backfill.md"}});
  Evaluate();
}

void AlertRules::OnTick(int64_t) { Evaluate(); }

void AlertRules::Evaluate() {
  const AlertOptions& o = alerter_->options();
  if (inputs_.consumer_lag) {
    const int64_t lag = inputs_.consumer_lag();
    std::vector<Alert> v;
    if (lag > o.lag_threshold)
      v.push_back({.name = "ClicklakeConsumerLagHigh", .severity = "warning", .labels = {},
                   .summary = std::to_string(lag) + " events wait in the log (threshold " +
                              std::to_string(o.lag_threshold) + ")",
                   .runbook = "docs/runbooks/consumer-lag.md"});
    alerter_->Update("consumer_lag", std::move(v));
  }
  if (inputs_.collector_shed_and_5xx) {
    auto now = inputs_.collector_shed_and_5xx();
    std::vector<Alert> shed, errors;
    if (last_collector_) {
      if (now.first > last_collector_->first)
        shed.push_back({.name = "ClicklakeCollectorShedding", .severity = "warning", .labels = {},
                        .summary = "the collector shed " + std::to_string(now.first - last_collector_->first) +
                                   " events since the last check",
                        .runbook = "docs/runbooks/collector-down-or-shedding.md"});
      if (now.second > last_collector_->second)
        errors.push_back({.name = "ClicklakeCollector5xx", .severity = "critical", .labels = {},
                          .summary = "the collector answered " + std::to_string(now.second - last_collector_->second) +
                                     " requests with 5xx since the last check",
                          .runbook = "docs/runbooks/collector-down-or-shedding.md"});
      alerter_->Update("collector_shedding", std::move(shed));
      alerter_->Update("collector_5xx", std::move(errors));
    }
    last_collector_ = now;
  }
  if (auto free = inputs_.disk_free_ratio ? inputs_.disk_free_ratio() : std::nullopt) {
    std::vector<Alert> v;
    if (*free < o.disk_free_ratio) {
      std::ostringstream s;
      s.precision(3);
      s << "the lake's file system has " << *free * 100 << "% free (< " << o.disk_free_ratio * 100 << "%)";
      v.push_back({.name = "ClicklakeDiskNearlyFull", .severity = "critical", .labels = {{"path", o.lake_dir}},
                   .summary = s.str(), .runbook = "docs/runbooks/disk-full.md"});
    }
    alerter_->Update("disk", std::move(v));
  }
  if (inputs_.readiness) {
    std::vector<Alert> late, failed;
    for (const auto& [dataset, status, reason] : inputs_.readiness()) {
      if (status == "LATE")
        late.push_back({.name = "ClicklakeDatasetLate", .severity = "warning", .labels = {{"dataset", dataset}},
                        .summary = dataset + " is LATE: " + reason, .runbook = "docs/runbooks/consumer-lag.md"});
      if (status == "FAILED")
        failed.push_back({.name = "ClicklakeDatasetFailed", .severity = "critical", .labels = {{"dataset", dataset}},
                          .summary = dataset + " is FAILED: " + reason, .runbook = "docs/runbooks/quality-failure.md"});
    }
    alerter_->Update("dataset_late", std::move(late));
    alerter_->Update("dataset_failed", std::move(failed));
  }
  if (inputs_.quality) {
    std::vector<Alert> v;
    for (const auto& [check, dataset, status, detail] : inputs_.quality()) {
      if (status == "pass") continue;
      v.push_back({.name = "ClicklakeQualityCheck", .severity = status == "warn" ? "warning" : "critical",
                   .labels = {{"check", check}, {"dataset", dataset}, {"status", status}},
                   .summary = check + " on " + dataset + ": " + status + (detail.empty() ? "" : " — " + detail),
                   .runbook = "docs/runbooks/quality-failure.md"});
    }
    alerter_->Update("quality", std::move(v));
  }
}

}  // namespace clicklake::governance::alerts
