// Alerts: delivery to local receivers (an Alertmanager-format webhook that
// answers 500 first, Slack, PagerDuty), deduplication, resolution, the rules,
// and system.alerts.
#include "governance/alerts/alerts.h"

#include <httplib.h>
#include <simdjson.h>

#include <set>

#include "common/test_util.h"
#include "governance/testing/local_receiver.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::governance::alerts {
namespace {

using clicklake::testing::TempDir;

using Receiver = governance::testing::LocalReceiver;

std::string Str(simdjson::dom::element e) { return std::string(std::string_view(e)); }

class AlertsTest : public ::testing::Test {
 protected:
  AlertOptions Options() {
    AlertOptions o;
    o.lake_dir = dir_.path();
    o.backoff_us = 1000;
    o.external_url = "http://127.0.0.1:8081/status";
    return o;
  }
  TempDir dir_;
  FakeClock clock_{1765000000000000LL};
};

// The machine's own disk stays out of the tests that count deliveries (a
// nearly full disk would add its alert to them).
std::optional<double> AmpleDisk() { return 0.5; }

TEST_F(AlertsTest, WebhookRetriesA500ThenGetsFiringAndLaterResolvedInAlertmanagerFormat) {
  Receiver hook(/*fail_first=*/1);
  AlertOptions o = Options();
  o.receivers = {{"webhook", hook.url("/hooks/alertmanager"), ""}};
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Alerter> alerter, Alerter::Start(o, &clock_));
  AlertRules rules(alerter, {.disk_free_ratio = AmpleDisk});

  rules.OnBatchFailed(7, Status::IOError("writing silver.events: No space left on device"));
  alerter->Flush();
  ASSERT_EQ(hook.bodies().size(), 1u);
  EXPECT_EQ(hook.requests(), 2);  // 500, then retried
  EXPECT_EQ(hook.posts()[0].path, "/hooks/alertmanager");
  EXPECT_EQ(hook.posts()[0].content_type, "application/json");

  // The same condition again: deduplicated, nothing sent.
  clock_.Advance(60'000'000);
  rules.OnBatchFailed(8, Status::IOError("writing silver.events: No space left on device"));
  alerter->Flush();
  EXPECT_EQ(hook.bodies().size(), 1u);
  ASSERT_EQ(alerter->Firing().size(), 1u);

  // The next batch commits: resolved.
  clock_.Advance(60'000'000);
  pipeline::BatchResult ok;
  ok.batch_id = 8;
  rules.OnBatchCommitted(ok);
  alerter->Flush();
  auto bodies = hook.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_TRUE(alerter->Firing().empty());

  simdjson::dom::parser parser;
  std::string fingerprint;
  for (int i = 0; i < 2; ++i) {
    simdjson::dom::element d = parser.parse(bodies[i]);
    EXPECT_EQ(Str(d["version"]), "4");
    EXPECT_EQ(Str(d["status"]), i == 0 ? "firing" : "resolved");
    EXPECT_EQ(Str(d["groupLabels"]["alertname"]), "ClicklakeBatchFailed");
    EXPECT_EQ(Str(d["externalURL"]), "http://127.0.0.1:8081/status");
    EXPECT_EQ(int64_t(d["truncatedAlerts"]), 0);
    simdjson::dom::array alerts = d["alerts"];
    ASSERT_EQ(alerts.size(), 1u);
    simdjson::dom::element a = alerts.at(0);
    EXPECT_EQ(Str(a["status"]), i == 0 ? "firing" : "resolved");
    EXPECT_EQ(Str(a["labels"]["alertname"]), "ClicklakeBatchFailed");
    EXPECT_EQ(Str(a["labels"]["severity"]), "critical");
    // The resolve carries the latest text of the alert (batch 8 failed too before it cleared).
    EXPECT_NE(Str(a["annotations"]["summary"]).find(i == 0 ? "micro-batch 7 failed" : "micro-batch 8 failed"), std::string::npos);
    EXPECT_EQ(Str(a["annotations"]["runbook_url"]), "docs/runbooks/bad-deploy-and-backfill.md");
    EXPECT_EQ(Str(a["startsAt"]), "2025-12-06T05:46:40.000Z");
    EXPECT_EQ(Str(a["endsAt"]), i == 0 ? "0001-01-01T00:00:00Z" : "2025-12-06T05:48:40.000Z");
    if (i == 0) fingerprint = Str(a["fingerprint"]);
    EXPECT_EQ(Str(a["fingerprint"]), fingerprint);
  }
  EXPECT_EQ(fingerprint.size(), 16u);
  alerter->Stop();

  // system.alerts holds both notifications, with what was delivered and how many attempts.
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  ASSERT_OK_AND_ASSIGN(auto table, delta::Table::Open(dir_.Sub("system/alerts"), db.get()));
  ASSERT_OK_AND_ASSIGN(auto snap, table->LoadSnapshot());
  ASSERT_OK_AND_ASSIGN(std::string scan, delta::ScanSql(dir_.Sub("system/alerts"), snap));
  ASSERT_OK_AND_ASSIGN(auto rows, conn->Query("SELECT status, alertname, delivered, attempts, fingerprint, "
                                               "ends_at IS NULL FROM (" + scan + ") ORDER BY notified_at"));
  ASSERT_EQ(rows.row_count(), 2u);
  EXPECT_EQ(rows.GetString(0, 0), "firing");
  EXPECT_EQ(rows.GetString(1, 0), "resolved");
  EXPECT_EQ(rows.GetString(0, 1), "ClicklakeBatchFailed");
  EXPECT_EQ(rows.GetString(0, 2), "webhook");
  EXPECT_EQ(rows.GetInt64(0, 3), 2);
  EXPECT_EQ(rows.GetInt64(1, 3), 1);
  EXPECT_EQ(rows.GetString(1, 4), fingerprint);
}

TEST_F(AlertsTest, SlackAndPagerDutyGetTheirShapesWithOneDedupKey) {
  Receiver slack, pagerduty;
  AlertOptions o = Options();
  o.receivers = {{"slack", slack.url("/services/T0/B0/XYZ"), ""}, {"pagerduty", pagerduty.url("/v2/enqueue"), "R0UT1NGKEY"}};
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Alerter> alerter, Alerter::Start(o, &clock_));
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> quality = {
      {"null_spike:user_key", "silver.events", "fail", "null rate 0.31 vs baseline 0.01"}};
  AlertRules rules(alerter, {.quality = [&] { return quality; }, .disk_free_ratio = AmpleDisk});
  rules.Evaluate();
  alerter->Flush();
  quality.clear();
  rules.Evaluate();
  alerter->Flush();

  auto s = slack.bodies();
  auto p = pagerduty.bodies();
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(p.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element s0 = parser.parse(s[0]);
  EXPECT_NE(Str(s0["text"]).find("[FIRING] ClicklakeQualityCheck: null_spike:user_key on silver.events: fail"),
            std::string::npos);
  EXPECT_EQ(Str(s0["attachments"].at(0)["color"]), "danger");
  simdjson::dom::element s1 = parser.parse(s[1]);
  EXPECT_EQ(Str(s1["text"]).rfind("[RESOLVED]", 0), 0u);
  EXPECT_EQ(Str(s1["attachments"].at(0)["color"]), "good");

  simdjson::dom::element p0 = parser.parse(p[0]);
  EXPECT_EQ(Str(p0["routing_key"]), "R0UT1NGKEY");
  EXPECT_EQ(Str(p0["event_action"]), "trigger");
  EXPECT_EQ(Str(p0["payload"]["severity"]), "critical");
  EXPECT_EQ(Str(p0["payload"]["source"]), "clicklake");
  EXPECT_NE(Str(p0["payload"]["summary"]).find("null_spike:user_key"), std::string::npos);
  const std::string dedup = Str(p0["dedup_key"]);
  simdjson::dom::element p1 = parser.parse(p[1]);
  EXPECT_EQ(Str(p1["event_action"]), "resolve");
  EXPECT_EQ(Str(p1["dedup_key"]), dedup);
  EXPECT_EQ(dedup, Fingerprint("ClicklakeQualityCheck",
                               {{"check", "null_spike:user_key"}, {"dataset", "silver.events"}, {"status", "fail"}}));
}

TEST_F(AlertsTest, RulesFireAndResolveOnTheirConditions) {
  AlertOptions o = Options();
  o.history = false;
  o.lag_threshold = 1000;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Alerter> alerter, Alerter::Start(o, &clock_));
  int64_t lag = 5000;
  std::pair<int64_t, int64_t> collector{0, 0};
  double free = 0.05;
  std::vector<std::tuple<std::string, std::string, std::string>> readiness = {
      {"gold.fact_session_daily", "LATE", "lag 2h > SLA 1h"}, {"silver.events", "READY", ""}};
  AlertRules rules(alerter, {.consumer_lag = [&] { return lag; },
                             .collector_shed_and_5xx = [&] { return collector; },
                             .readiness = [&] { return readiness; },
                             .disk_free_ratio = [&]() -> std::optional<double> { return free; }});
  auto names = [&] {
    std::set<std::string> n;
    for (const auto& a : alerter->Firing()) n.insert(a.name + (a.labels.count("dataset") ? ":" + a.labels.at("dataset") : ""));
    return n;
  };
  rules.OnTick(0);
  collector = {12, 3};  // shed and 5xx since the first look
  pipeline::BatchResult b;
  b.batch_id = 3;
  b.silver_rows = 150;
  b.quarantined = 50;  // 25% of 200
  b.quarantine_by_code = {{"missing_identity", 50}};
  rules.OnBatchCommitted(b);
  EXPECT_EQ(names(), (std::set<std::string>{"ClicklakeConsumerLagHigh", "ClicklakeCollectorShedding",
                                            "ClicklakeCollector5xx", "ClicklakeDiskNearlyFull",
                                            "ClicklakeDatasetLate:gold.fact_session_daily",
                                            "ClicklakeQuarantineRateHigh:silver.quarantine"}));
  // Everything clears.
  lag = 10;
  free = 0.5;
  readiness = {{"gold.fact_session_daily", "READY", ""}};
  b.quarantined = 1;
  b.batch_id = 4;
  rules.OnBatchCommitted(b);
  EXPECT_TRUE(names().empty());
  // A FAILED dataset is its own, critical alert.
  readiness = {{"gold.fact_events", "FAILED", "error check revenue_consistency failed"}};
  rules.OnTick(0);
  auto firing = alerter->Firing();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].name, "ClicklakeDatasetFailed");
  EXPECT_EQ(firing[0].severity, "critical");
  alerter->Flush();
  // 6 fired + 6 resolved + 1 fired
  EXPECT_EQ(alerter->stats().notifications, 13);
}

TEST_F(AlertsTest, StillFiringIsResentAfterTheRepeatInterval) {
  Receiver hook;
  AlertOptions o = Options();
  o.history = false;
  o.repeat_interval_us = 3600LL * 1000000;
  o.receivers = {{"webhook", hook.url("/"), ""}};
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Alerter> alerter, Alerter::Start(o, &clock_));
  Alert a{.name = "ClicklakeConsumerLagHigh", .summary = "lag"};
  alerter->Update("lag", {a});
  clock_.Advance(1800LL * 1000000);
  alerter->Update("lag", {a});
  alerter->Flush();
  EXPECT_EQ(hook.bodies().size(), 1u);
  clock_.Advance(1801LL * 1000000);
  alerter->Update("lag", {a});
  alerter->Flush();
  EXPECT_EQ(hook.bodies().size(), 2u);
}

TEST_F(AlertsTest, GivesUpAfterItsAttemptsAndOnA4xx) {
  Receiver down(/*fail_first=*/100);
  AlertOptions o = Options();
  o.history = false;
  o.attempts = 3;
  o.receivers = {{"webhook", down.url("/"), ""}};
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Alerter> alerter, Alerter::Start(o, &clock_));
  alerter->Update("x", {{.name = "ClicklakeDiskNearlyFull", .summary = "disk"}});
  alerter->Flush();
  EXPECT_EQ(down.requests(), 3);
  EXPECT_EQ(alerter->stats().given_up, 1);
  EXPECT_EQ(alerter->stats().failed_attempts, 3);
}

TEST(AlertOptionsTest, FromConfig) {
  Config c;
  c.Set("alerts.webhook.url", "http://127.0.0.1:9093/hook");
  c.Set("alerts.pagerduty.routing_key", "abc");
  c.Set("alerts.lag_threshold", "50");
  ASSERT_OK_AND_ASSIGN(AlertOptions o, AlertOptions::FromConfig(c));
  ASSERT_EQ(o.receivers.size(), 2u);
  EXPECT_EQ(o.receivers[1].kind, "pagerduty");
  EXPECT_EQ(o.receivers[1].url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(o.lag_threshold, 50);
  c.Set("alerts.slack.url", "hooks.slack.invalid/x");
  EXPECT_STATUS(AlertOptions::FromConfig(c), kInvalidArgument);
}

}  // namespace
}  // namespace clicklake::governance::alerts
