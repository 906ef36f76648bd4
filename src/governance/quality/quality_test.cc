#include "governance/quality/quality.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/metrics.h"
#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "governance/quality/internal.h"
#include "log/event_log.h"
#include "pipeline/gold/gold.h"
#include "serve/readiness_api.h"
#include "simulate/simulator.h"

namespace clicklake::quality {
namespace {

using clicklake::testing::TempDir;

constexpr int64_t kSec = 1000000;
constexpr int64_t kHour = 3600 * kSec;
constexpr int64_t kWeek = 168 * kHour;
// Saturday 2026-11-07 14:00:00 UTC: a weekend afternoon, quieter than the weekdays before it.
constexpr int64_t kT0 = 1794060000LL * kSec;

// ---- the volume method on its own ----

CheckConfig VolumeCheck() {
  CheckConfig c;
  c.type = "volume_anomaly";
  return c;
}

TEST(VolumeTest, NeedsTheMinimumTrainingSize) {
  VolumeVerdict v = EvaluateVolume(10, {100, 100, 100}, VolumeCheck());
  EXPECT_TRUE(v.training);
  EXPECT_FALSE(v.anomaly);
}

TEST(VolumeTest, DropBeyondThreeSigmaIsAnAnomalyInItsDirectionOnly) {
  const std::vector<double> training = {100, 104, 97, 101, 99, 103};
  CheckConfig c = VolumeCheck();
  VolumeVerdict v = EvaluateVolume(40, training, c);
  EXPECT_TRUE(v.anomaly);
  EXPECT_LT(v.z, -3);
  EXPECT_GT(v.expected_min, 40);
  c.direction = "up";
  EXPECT_FALSE(EvaluateVolume(40, training, c).anomaly);
  c.direction = "down";
  EXPECT_TRUE(EvaluateVolume(40, training, c).anomaly);
  EXPECT_FALSE(EvaluateVolume(160, training, c).anomaly);
}

TEST(VolumeTest, SmallRelativeChangesNeverAlarmEvenWithATightHistory) {
  // sd 0.5: 110 is z = 19, but only 10% off the mean.
  VolumeVerdict v = EvaluateVolume(110, {100, 100, 101, 100, 101, 100}, VolumeCheck());
  EXPECT_GT(v.z, 3);
  EXPECT_FALSE(v.anomaly);
  EXPECT_TRUE(EvaluateVolume(150, {100, 100, 101, 100, 101, 100}, VolumeCheck()).anomaly);
}

// ---- checks on crafted lakes ----

delta::Schema CraftedSilverSchema() {
  delta::Schema s;
  for (const char* n : {"event_id", "event_type", "event_name", "source", "user_key", "session_id", "page_url",
                        "device_type", "geo_country", "platform", "currency"})
    s.fields.push_back({n, "string", true});
  s.fields.push_back({"event_ts", "timestamp", true});
  s.fields.push_back({"received_at", "timestamp", true});
  s.fields.push_back({"event_date", "date", true});
  s.fields.push_back({"revenue", "double", true});
  return s;
}

// The default columns of a crafted event; a test's SELECT overrides some.
constexpr const char* kRowDefaults =
    "'track' AS event_type, 'web' AS source, 'u1' AS user_key, 's1' AS session_id, NULL::VARCHAR AS page_url, "
    "'desktop' AS device_type, 'DE' AS geo_country, 'web' AS platform, NULL::VARCHAR AS currency, "
    "NULL::DOUBLE AS revenue";

class QualityLakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open());
    ASSERT_OK_AND_ASSIGN(conn_, db_->Connect());
    ASSERT_OK(conn_->Execute("SET TimeZone = 'UTC'"));
  }

  std::string lake() const { return dir_.path(); }

  // Appends rows to a crafted table; returns the committed version.
  int64_t Append(const std::string& rel, const delta::Schema& schema, const std::string& sql,
                 const std::vector<std::string>& partitions = {}) {
    auto t = delta::Table::OpenOrCreate(JoinPath(lake(), rel), schema, partitions, {}, db_.get(),
                                        FileSystem::Default(), &clock_);
    EXPECT_TRUE(t.ok()) << t.status();
    auto txn = (*t)->StartTransaction();
    auto adds = txn->WriteFiles(conn_.get(), sql);
    EXPECT_TRUE(adds.ok()) << adds.status() << "\n" << sql;
    auto v = txn->Commit();
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : -1;
  }

  // Silver rows: `select` yields event_id, event_name, event_ts, received_at and
  // any override of kRowDefaults (later columns win by name).
  int64_t AppendSilver(const std::string& select) {
    return Append("silver/events", CraftedSilverSchema(),
                  "SELECT * EXCLUDE (event_ts, received_at), CAST(event_ts AS DATE) AS event_date, "
                  "event_ts::TIMESTAMPTZ AS event_ts, received_at::TIMESTAMPTZ AS received_at FROM ("
                  // the defaults' copies of columns `select` has come second, renamed x_1: dropped
                  "SELECT COLUMNS(c -> NOT suffix(c, '_1')) FROM (SELECT * FROM (" + select + ") x, (SELECT " +
                      std::string(kRowDefaults) + ") d))");
  }

  pipeline::BatchResult Batch(int64_t batch_id, int64_t silver_version, int64_t rows, int64_t started_us) {
    pipeline::BatchResult r;
    r.batch_id = batch_id;
    r.events = rows;
    r.bronze_rows = rows;
    r.silver_rows = rows;
    r.versions["silver.events"] = silver_version;
    r.started_us = started_us;
    r.finished_us = started_us + 2 * kSec;
    return r;
  }

  std::shared_ptr<QualityObserver> Observer(const std::string& toml = "") {
    auto config = Config::Parse(toml);
    EXPECT_TRUE(config.ok()) << config.status();
    auto options = QualityOptions::FromConfig(*config);
    EXPECT_TRUE(options.ok()) << options.status();
    auto o = QualityObserver::Create(*options, lake(), "g", nullptr, FileSystem::Default(), &clock_);
    EXPECT_TRUE(o.ok()) << o.status();
    return *o;
  }

  QualityOptions Options(const std::string& toml) {
    auto config = Config::Parse(toml);
    EXPECT_TRUE(config.ok());
    auto options = QualityOptions::FromConfig(*config);
    EXPECT_TRUE(options.ok()) << options.status();
    return *options;
  }

  // Runs a batch through the observer as the runner would, at `now`.
  std::vector<CheckResult> Observe(QualityObserver* o, const pipeline::BatchResult& r) {
    clock_.Set(r.finished_us);
    o->OnBatchCommitted(r);
    return o->LastResults();
  }

  static std::vector<CheckResult> Named(const std::vector<CheckResult>& results, const std::string& check) {
    std::vector<CheckResult> out;
    for (const auto& r : results)
      if (r.check == check) out.push_back(r);
    return out;
  }

  static const DatasetReadiness& Find(const std::vector<DatasetReadiness>& rows, const std::string& ds) {
    for (const auto& r : rows)
      if (r.dataset == ds) return r;
    static DatasetReadiness none;
    ADD_FAILURE() << "no readiness row for " << ds;
    return none;
  }

  std::vector<DatasetReadiness> Readiness(const QualityOptions& options, int64_t now) {
    auto r = ComputeReadiness(lake(), options, now);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<DatasetReadiness>{};
  }

  TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Connection> conn_;
};

// Hourly rows of `hours` hours from `from_us`, with a weekly rhythm: weekdays
// busy in office hours, weekends at a third, ±5% deterministic noise. `scale`
// multiplies every count. Event names: page_viewed and product_viewed (1 in 4).
std::string SeasonalTraffic(int64_t from_us, int hours, double scale, const std::string& prefix) {
  std::ostringstream s;
  s << "SELECT '" << prefix << "' || h.i || '-' || r.range AS event_id, "
    << "CASE WHEN r.range % 4 = 0 THEN 'product_viewed' ELSE 'page_viewed' END AS event_name, "
    << "h.hr + INTERVAL 1 SECOND * (r.range % 3000) AS event_ts, h.hr + INTERVAL 1 SECOND * (r.range % 3000) AS received_at "
    << "FROM (SELECT i, make_timestamp(" << from_us << "::BIGINT + i * " << kHour << "::BIGINT) AS hr FROM range(0, "
    << hours << ") t(i)) h, "
    << "LATERAL (SELECT range FROM range(CAST(" << scale
    << " * (CASE WHEN dayofweek(h.hr) IN (0, 6) THEN 40 ELSE 120 END) * (CASE WHEN hour(h.hr) BETWEEN 9 AND 18 "
       "THEN 2.5 ELSE 1 END) * (1 + ((hash(h.hr) % 11)::INTEGER - 5) / 100.0) AS BIGINT))) r";
  return s.str();
}

TEST_F(QualityLakeTest, VolumeOneHourDropFailsAWeeklyRhythmDoesNotAndBaselinesSurviveARestart) {
  const std::string toml =
      "[[quality.checks]]\nname = \"volume_anomaly_silver\"\ntype = \"volume_anomaly\"\nseverity = \"error\"\n"
      "[[quality.sla]]\nmax_lag = \"3h\"\n";
  auto observer = Observer(toml);
  // Five weeks of history, then the hour from kT0 (Saturday 14:00) at its usual level.
  const int64_t start = kT0 - 5 * kWeek;
  int64_t v = AppendSilver(SeasonalTraffic(start, 5 * 168 + 1, 1.0, "h"));
  // The weekly rhythm is strong: Saturday 14:00 has well under half of Friday 14:00.
  ASSERT_OK_AND_ASSIGN(auto hours, conn_->Query(
      "SELECT count(*) FILTER (WHERE received_at >= make_timestamp(" + std::to_string(kT0) + "::BIGINT) AND received_at < make_timestamp(" + std::to_string(kT0 + kHour) + "::BIGINT)), "
      "count(*) FILTER (WHERE received_at >= make_timestamp(" + std::to_string(kT0 - 24 * kHour) + "::BIGINT) AND received_at < make_timestamp(" + std::to_string(kT0 - 23 * kHour) + "::BIGINT)) "
      "FROM read_parquet('" + lake() + "/silver/events/**/*.parquet')"));
  ASSERT_LT(hours.GetInt64(0, 0) * 2, hours.GetInt64(0, 1));

  auto results = Named(Observe(observer.get(), Batch(0, v, 1000, kT0 + kHour + 60 * kSec)), "volume_anomaly_silver");
  ASSERT_EQ(results.size(), 2u) << ResultsJson(observer->LastResults());  // two event names, the hour from kT0
  for (const auto& r : results) {
    EXPECT_EQ(r.status, CheckStatus::kPass) << r.detail;
    EXPECT_EQ(r.window_start_us, kT0);
    EXPECT_NE(r.detail.find("over 5 same hour-of-week"), std::string::npos) << r.detail;
  }
  // The next hour drops to a tenth: a failure, the dataset FAILED.
  v = AppendSilver(SeasonalTraffic(kT0 + kHour, 1, 0.1, "d"));
  results = Named(Observe(observer.get(), Batch(1, v, 20, kT0 + 2 * kHour + 60 * kSec)), "volume_anomaly_silver");
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.status, CheckStatus::kFail) << r.detail;
    EXPECT_EQ(r.window_start_us, kT0 + kHour);
    EXPECT_NE(r.detail.find("volume drop"), std::string::npos) << r.detail;
    EXPECT_LT(*r.observed, *r.expected_min);
  }
  const QualityOptions options = Options(toml);
  auto silver = Find(Readiness(options, clock_.NowMicros()), "silver.events");
  EXPECT_EQ(silver.status, ReadinessStatus::kFailed);
  EXPECT_NE(silver.reason.find("volume_anomaly_silver"), std::string::npos) << silver.reason;
  // system.readiness holds the same verdict.
  ASSERT_OK(delta::AttachTable(conn_.get(), "readiness", JoinPath(lake(), "system/readiness"), std::nullopt));
  ASSERT_OK_AND_ASSIGN(auto stored, conn_->Query("SELECT status FROM readiness WHERE dataset = 'silver.events'"));
  ASSERT_EQ(stored.row_count(), 1u);
  EXPECT_EQ(stored.GetString(0, 0), "FAILED");

  // A new observer (a restarted processor) judges the next, normal hour from
  // the baselines in system.quality_state: a pass, not "training".
  observer = Observer(toml);
  v = AppendSilver(SeasonalTraffic(kT0 + 2 * kHour, 1, 1.0, "n"));
  results = Named(Observe(observer.get(), Batch(2, v, 100, kT0 + 3 * kHour + 60 * kSec)), "volume_anomaly_silver");
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.status, CheckStatus::kPass) << r.detail;
    EXPECT_EQ(r.window_start_us, kT0 + 2 * kHour);
  }
  EXPECT_EQ(Find(Readiness(options, clock_.NowMicros()), "silver.events").status, ReadinessStatus::kReady);
}

TEST_F(QualityLakeTest, NullSpikeInAKeyDimensionAgainstItsBaseline) {
  auto observer = Observer();
  const auto page = [](const std::string& prefix, int n, int null_every, int64_t at) {
    return "SELECT '" + prefix + "' || range AS event_id, 'page_viewed' AS event_name, make_timestamp(" +
           std::to_string(at) + "::BIGINT) AS event_ts, make_timestamp(" + std::to_string(at) +
           "::BIGINT) AS received_at, 'https://shop.example/p' AS page_url, CASE WHEN range % " +
           std::to_string(null_every) + " = 0 THEN NULL ELSE 'DE' END AS geo_country FROM range(" + std::to_string(n) +
           ")";
  };
  // Baseline: 1 in 20 events without a country.
  int64_t v = AppendSilver(page("a", 2000, 20, kT0 + 60 * kSec));
  auto results = Named(Observe(observer.get(), Batch(0, v, 2000, kT0 + 2 * 60 * kSec)), "null_spike");
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_EQ(r.status, CheckStatus::kPass) << r.series << ": " << r.detail;
  // Then half of a batch has none: geo_country spikes; the other columns do not.
  v = AppendSilver(page("b", 400, 2, kT0 + 5 * 60 * kSec));
  results = Named(Observe(observer.get(), Batch(1, v, 400, kT0 + 6 * 60 * kSec)), "null_spike");
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) {
    if (r.series == "column=geo_country") {
      EXPECT_EQ(r.status, CheckStatus::kWarn) << r.detail;
      EXPECT_NEAR(*r.observed, 0.5, 1e-9);
      EXPECT_NE(r.detail.find("null spike"), std::string::npos) << r.detail;
    } else {
      EXPECT_EQ(r.status, CheckStatus::kPass) << r.series << ": " << r.detail;
    }
  }
}

TEST_F(QualityLakeTest, RevenueMismatchBetweenGoldAndSilverFailsAndBlockHoldsGoldBack) {
  const std::string toml =
      "[[quality.checks]]\nname = \"revenue_consistency\"\ntype = \"revenue_consistency\"\n"
      "dataset = \"gold.fact_events\"\nseverity = \"error\"\nblock = true\n[[quality.sla]]\nmax_lag = \"1h\"\n";
  auto observer = Observer(toml);
  const QualityOptions options = Options(toml);
  delta::Schema fact;
  fact.fields = {{"event_id", "string", true}, {"event_date", "date", true}, {"event_ts", "timestamp", true},
                 {"revenue", "double", true}};
  delta::Schema refreshes;
  refreshes.fields = {{"table_name", "string", false}, {"batch_id", "long", true}, {"refreshed_at", "timestamp", true},
                      {"newest_event_ts", "timestamp", true}};
  const std::string ts = "make_timestamp(" + std::to_string(kT0) + "::BIGINT)";
  auto orders = [&](const std::string& prefix, int n) {
    return "SELECT '" + prefix + "' || range AS event_id, 'order_completed' AS event_name, " + ts +
           " AS event_ts, " + ts + " AS received_at, 10.0 + range AS revenue, 'EUR' AS currency FROM range(" +
           std::to_string(n) + ")";
  };
  // Gold's copy of the same orders; `lost` loses its revenue.
  auto gold_orders = [&](const std::string& prefix, int n, int lost) {
    Append("gold/fact_events", fact,
           "SELECT '" + prefix + "' || range AS event_id, DATE '2026-11-07' AS event_date, " + ts +
               "::TIMESTAMPTZ AS event_ts, CASE WHEN range = " + std::to_string(lost) +
               " THEN NULL ELSE 10.0 + range END AS revenue FROM range(" + std::to_string(n) + ")");
  };
  auto refresh = [&](int64_t batch, int64_t silver_version) {
    Append("system/gold_refreshes", refreshes,
           "SELECT 'gold.fact_events' AS table_name, " + std::to_string(batch) + "::BIGINT AS batch_id, make_timestamp(" +
               std::to_string(clock_.NowMicros()) + "::BIGINT)::TIMESTAMPTZ AS refreshed_at, " + ts +
               "::TIMESTAMPTZ AS newest_event_ts");
    pipeline::BatchResult r = Batch(batch, silver_version, 5, clock_.NowMicros());
    auto gold = std::make_shared<pipeline::gold::GoldRefreshResult>();
    gold->silver_version = silver_version;
    gold->base_version = silver_version - 1;
    r.gold = gold;
    return r;
  };
  // Batch 0: Gold holds Silver's orders.
  int64_t v = AppendSilver(orders("a", 5));
  gold_orders("a", 5, -1);
  clock_.Set(kT0 + 60 * kSec);
  auto results = Named(Observe(observer.get(), refresh(0, v)), "revenue_consistency");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kPass) << results[0].detail;
  EXPECT_NEAR(*results[0].observed, 60.0, 1e-9);
  EXPECT_EQ(Find(Readiness(options, clock_.NowMicros()), "gold.fact_events").status, ReadinessStatus::kReady);

  // Batch 1: Gold lost one order's revenue.
  v = AppendSilver(orders("b", 5));
  gold_orders("b", 5, 0);
  clock_.Set(kT0 + 120 * kSec);
  results = Named(Observe(observer.get(), refresh(1, v)), "revenue_consistency");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kFail) << results[0].detail;
  EXPECT_TRUE(results[0].blocking);
  EXPECT_NEAR(*results[0].observed, 50.0, 1e-9);
  EXPECT_NEAR(*results[0].expected_max, 60.01, 1e-9);
  EXPECT_NE(results[0].detail.find("2026-11-07: 0 of 5 rows missing in gold, 1 differ; revenue silver 60.00, gold "
                                   "50.00 (b0)"),
            std::string::npos)
      << results[0].detail;
  auto readiness = Readiness(options, clock_.NowMicros());
  const auto& gold = Find(readiness, "gold.fact_events");
  EXPECT_EQ(gold.status, ReadinessStatus::kFailed);
  EXPECT_NE(gold.reason.find("Gold refresh of batch 1 held back"), std::string::npos) << gold.reason;
  // The published refresh is still batch 0's.
  ASSERT_TRUE(gold.last_batch_id.has_value());
  EXPECT_EQ(*gold.last_batch_id, 0);
  EXPECT_EQ(Find(observer->LastReadiness(), "gold.fact_events").status, ReadinessStatus::kFailed);

  // Batch 2 is consistent again: READY, batch 2's refresh published.
  v = AppendSilver(orders("c", 3));
  gold_orders("c", 3, -1);
  clock_.Set(kT0 + 180 * kSec);
  results = Named(Observe(observer.get(), refresh(2, v)), "revenue_consistency");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kPass) << results[0].detail;
  readiness = Readiness(options, clock_.NowMicros());
  EXPECT_EQ(Find(readiness, "gold.fact_events").status, ReadinessStatus::kReady) << Find(readiness, "gold.fact_events").reason;
  EXPECT_EQ(*Find(readiness, "gold.fact_events").last_batch_id, 2);
}

// Gold's daily revenue (gold.fact_session_daily by session date) against the order revenue
// of Silver's sessions that start that day, for the dates the batch touched.
TEST_F(QualityLakeTest, DailyRevenueTotalGoldAgainstSilverPerSessionDate) {
  const std::string toml =
      "[[quality.checks]]\nname = \"revenue_daily_total\"\ntype = \"revenue_daily\"\n"
      "dataset = \"gold.fact_session_daily\"\nseverity = \"error\"\n";
  auto observer = Observer(toml);
  delta::Schema silver = CraftedSilverSchema();
  silver.fields.push_back({"session_event_index", "long", true});
  delta::Schema sessions;
  sessions.fields = {{"session_id", "string", true}, {"session_date", "date", true}, {"revenue", "double", true}};
  // Silver rows: (event_id, session_id, session_event_index, event_name, event_ts, revenue).
  auto silver_rows = [&](const std::string& values) {
    return Append("silver/events", silver,
                  "SELECT event_id, 'track' AS event_type, event_name, 'web' AS source, 'u1' AS user_key, "
                  "session_id, NULL::VARCHAR AS page_url, 'desktop' AS device_type, 'DE' AS geo_country, "
                  "'web' AS platform, 'EUR' AS currency, ts::TIMESTAMPTZ AS event_ts, ts::TIMESTAMPTZ AS received_at, "
                  "CAST(ts AS DATE) AS event_date, revenue::DOUBLE AS revenue, idx::BIGINT AS session_event_index "
                  "FROM (VALUES " + values +
                      ") t(event_id, session_id, idx, event_name, ts, revenue)",
                  {"event_date"});
  };
  auto gold_rows = [&](const std::string& values) {
    Append("gold/fact_session_daily", sessions,
           "SELECT session_id, session_date::DATE AS session_date, revenue::DOUBLE AS revenue FROM (VALUES " + values +
               ") t(session_id, session_date, revenue)",
           {"session_date"});
  };
  auto batch = [&](int64_t id, int64_t silver_version, int64_t rows, std::vector<std::string> gold_dates) {
    pipeline::BatchResult r = Batch(id, silver_version, rows, kT0 + (id + 1) * 60 * kSec);
    auto gold = std::make_shared<pipeline::gold::GoldRefreshResult>();
    gold->silver_version = silver_version;
    gold->tables["gold/fact_session_daily"].dates = std::move(gold_dates);
    r.gold = gold;
    return r;
  };
  // Batch 0: s1 starts before midnight and orders after it (its revenue is 2026-11-06's, the
  // date of the session); s2 starts and orders on 2026-11-07. Gold agrees: both dates pass.
  int64_t v = silver_rows(
      "('a1', 's1', 1, 'page_viewed', TIMESTAMP '2026-11-06 23:50:00', NULL), "
      "('a2', 's1', 2, 'order_completed', TIMESTAMP '2026-11-07 00:10:00', 30.0), "
      "('a3', 's2', 1, 'page_viewed', TIMESTAMP '2026-11-07 10:00:00', NULL), "
      "('a4', 's2', 2, 'order_completed', TIMESTAMP '2026-11-07 10:05:00', 12.5), "
      "('a5', NULL, NULL, 'identify', TIMESTAMP '2026-11-07 10:06:00', NULL)");
  gold_rows("('s1', '2026-11-06', 30.0), ('s2', '2026-11-07', 12.5)");
  auto results = Named(Observe(observer.get(), batch(0, v, 5, {"2026-11-06", "2026-11-07"})), "revenue_daily_total");
  ASSERT_EQ(results.size(), 2u) << ResultsJson(observer->LastResults());
  EXPECT_EQ(results[0].series, "date=2026-11-06");
  EXPECT_EQ(results[1].series, "date=2026-11-07");
  for (const auto& r : results) EXPECT_EQ(r.status, CheckStatus::kPass) << r.series << ": " << r.detail;
  EXPECT_NEAR(*results[0].observed, 30.0, 1e-9);
  EXPECT_NEAR(*results[1].observed, 12.5, 1e-9);
  EXPECT_NE(results[1].detail.find("silver.events order_completed revenue 12.50 over 1 sessions"), std::string::npos)
      << results[1].detail;

  // Batch 1: s2 orders again, but Gold's 2026-11-07 still has the old total: a failure,
  // only for the date the batch touched.
  v = silver_rows("('b1', 's2', 3, 'order_completed', TIMESTAMP '2026-11-07 10:20:00', 7.5)");
  results = Named(Observe(observer.get(), batch(1, v, 1, {})), "revenue_daily_total");
  ASSERT_EQ(results.size(), 1u) << ResultsJson(observer->LastResults());
  EXPECT_EQ(results[0].series, "date=2026-11-07");
  EXPECT_EQ(results[0].status, CheckStatus::kFail) << results[0].detail;
  EXPECT_NEAR(*results[0].observed, 12.5, 1e-9);
  EXPECT_NEAR(*results[0].expected_min, 19.99, 1e-9);
  EXPECT_NE(results[0].detail.find("daily revenue differs by -7.50"), std::string::npos) << results[0].detail;
  EXPECT_EQ(Find(Readiness(Options(toml), clock_.NowMicros()), "gold.fact_session_daily").status,
            ReadinessStatus::kFailed);

  // Batch 2: Gold has caught up (equal totals): the date passes again.
  v = silver_rows("('c1', 's3', 1, 'page_viewed', TIMESTAMP '2026-11-07 12:00:00', NULL)");
  gold_rows("('s2-late-order', '2026-11-07', 7.5), ('s3', '2026-11-07', 0.0)");
  results = Named(Observe(observer.get(), batch(2, v, 1, {"2026-11-07"})), "revenue_daily_total");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kPass) << results[0].detail;
  EXPECT_NEAR(*results[0].observed, 20.0, 1e-9);
  EXPECT_NE(Find(Readiness(Options(toml), clock_.NowMicros()), "gold.fact_session_daily").status,
            ReadinessStatus::kFailed);

  // With an interval, dates touched in between wait for the next run and are judged then.
  const std::string hourly = toml + "interval = \"1h\"\n";
  observer = Observer(hourly);
  v = silver_rows("('d1', 's4', 1, 'page_viewed', TIMESTAMP '2026-11-08 09:00:00', NULL)");
  gold_rows("('s4', '2026-11-08', 0.0)");
  EXPECT_EQ(Named(Observe(observer.get(), batch(3, v, 1, {"2026-11-08"})), "revenue_daily_total").size(), 1u);
  v = silver_rows("('e1', 's5', 1, 'page_viewed', TIMESTAMP '2026-11-09 09:00:00', NULL)");
  gold_rows("('s5', '2026-11-09', 0.0)");
  EXPECT_TRUE(Named(Observe(observer.get(), batch(4, v, 1, {"2026-11-09"})), "revenue_daily_total").empty());
  v = silver_rows("('f1', 's4', 2, 'page_viewed', TIMESTAMP '2026-11-08 09:10:00', NULL)");
  pipeline::BatchResult later = batch(5, v, 1, {"2026-11-08"});
  later.started_us += kHour;
  later.finished_us += kHour;
  results = Named(Observe(observer.get(), later), "revenue_daily_total");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].series, "date=2026-11-08");
  EXPECT_EQ(results[1].series, "date=2026-11-09");
}

// Bronze volume per source and per event name as the tracker sent it.
TEST_F(QualityLakeTest, BronzeVolumePerEventName) {
  const std::string toml =
      "[[quality.checks]]\nname = \"volume_anomaly_bronze\"\ntype = \"volume_anomaly\"\ndataset = \"bronze.events\"\n"
      "severity = \"error\"\n";
  auto observer = Observer(toml);
  delta::Schema bronze;
  bronze.fields = {{"source", "string", true}, {"received_at", "timestamp", false}, {"payload", "string", true}};
  // Page views as Segment page calls, products as track calls; `keep` thins the product views.
  auto append = [&](const std::string& traffic, const std::string& keep, const std::string& more = "") {
    return Append("bronze/events", bronze,
                  "SELECT 'web' AS source, received_at::TIMESTAMPTZ AS received_at, CASE WHEN event_name = "
                  "'page_viewed' THEN '{\"type\":\"page\",\"name\":\"Home\"}' ELSE "
                  "'{\"type\":\"track\",\"event\":\"Product Viewed\"}' END AS payload FROM (" + traffic + ") WHERE " +
                      keep + more);
  };
  auto batch = [&](int64_t id, int64_t version, int64_t started_us) {
    pipeline::BatchResult r;
    r.batch_id = id;
    r.events = r.bronze_rows = 100;
    r.versions["bronze.events"] = version;
    r.started_us = started_us;
    r.finished_us = started_us + 2 * kSec;
    return r;
  };
  const int64_t start = kT0 - 5 * kWeek;
  int64_t v = append(SeasonalTraffic(start, 5 * 168 + 1, 1.0, "h"), "true");
  auto results = Named(Observe(observer.get(), batch(0, v, kT0 + kHour + 60 * kSec)), "volume_anomaly_bronze");
  std::map<std::string, CheckStatus> by_series;
  for (const auto& r : results) by_series[r.series] = r.status;
  EXPECT_EQ(by_series, (std::map<std::string, CheckStatus>{{"source=web", CheckStatus::kPass},
                                                           {"source=web event_name=page", CheckStatus::kPass},
                                                           {"source=web event_name=Product Viewed", CheckStatus::kPass}}))
      << ResultsJson(results);
  // The next hour, product views drop to a tenth (page views as usual), and one payload is not JSON.
  v = append(SeasonalTraffic(kT0 + kHour, 1, 1.0, "d"), "event_name = 'page_viewed' OR hash(event_id) % 10 = 0",
             " UNION ALL SELECT 'web', make_timestamp(" + std::to_string(kT0 + kHour + 5 * kSec) +
                 "::BIGINT)::TIMESTAMPTZ, 'not json'");
  results = Named(Observe(observer.get(), batch(1, v, kT0 + 2 * kHour + 60 * kSec)), "volume_anomaly_bronze");
  by_series.clear();
  for (const auto& r : results) by_series[r.series] = r.status;
  EXPECT_EQ(by_series.at("source=web event_name=Product Viewed"), CheckStatus::kFail) << ResultsJson(results);
  EXPECT_EQ(by_series.at("source=web event_name=page"), CheckStatus::kPass) << ResultsJson(results);
  EXPECT_EQ(by_series.at("source=web event_name=(unparsed)"), CheckStatus::kPass) << ResultsJson(results);  // training

  // by_event_name = false: per source only, the payloads unread (and the named series of before not judged).
  observer = Observer(toml + "by_event_name = false\n");
  v = append(SeasonalTraffic(kT0 + 2 * kHour, 1, 1.0, "n"), "true");
  results = Named(Observe(observer.get(), batch(2, v, kT0 + 3 * kHour + 60 * kSec)), "volume_anomaly_bronze");
  ASSERT_EQ(results.size(), 1u) << ResultsJson(results);
  EXPECT_EQ(results[0].series, "source=web");
  EXPECT_EQ(results[0].status, CheckStatus::kPass) << results[0].detail;
}

TEST_F(QualityLakeTest, BatchRowChecksFindDuplicatesUnknownValuesAndOrdersWithoutRevenue) {
  auto observer = Observer();
  const std::string ts = "make_timestamp(" + std::to_string(kT0) + "::BIGINT)";
  int64_t v = AppendSilver(
      "SELECT * FROM (VALUES ('e1', 'order_completed', 25.0, 'desktop'), ('e2', 'order_completed', NULL, 'desktop'), "
      "('e2', 'page_viewed', NULL, 'toaster'), ('e3', 'page_viewed', NULL, NULL)) t(event_id, event_name, revenue, "
      "device_type), LATERAL (SELECT " + ts + " AS event_ts, " + ts + " AS received_at)");
  auto results = Observe(observer.get(), Batch(0, v, 4, kT0 + 60 * kSec));
  auto unique = Named(results, "unique_event_id");
  ASSERT_EQ(unique.size(), 1u);
  EXPECT_EQ(unique[0].status, CheckStatus::kFail);  // severity error by default
  EXPECT_EQ(*unique[0].observed, 1);
  EXPECT_NE(unique[0].detail.find("e2"), std::string::npos) << unique[0].detail;
  auto device = Named(results, "accepted_device_type");
  ASSERT_EQ(device.size(), 1u);
  EXPECT_EQ(device[0].status, CheckStatus::kWarn);
  EXPECT_NE(device[0].detail.find("toaster"), std::string::npos) << device[0].detail;
  auto revenue = Named(results, "order_completed_revenue");
  ASSERT_EQ(revenue.size(), 1u);
  EXPECT_EQ(revenue[0].status, CheckStatus::kWarn);
  EXPECT_NE(revenue[0].detail.find("e2"), std::string::npos) << revenue[0].detail;
  EXPECT_EQ(Named(results, "accepted_event_type")[0].status, CheckStatus::kPass);
  // Quarantine rate and schema drift come from the batch's counts.
  pipeline::BatchResult b = Batch(1, AppendSilver("SELECT 'e9' AS event_id, 'page_viewed' AS event_name, " + ts +
                                                  " AS event_ts, " + ts + " AS received_at"),
                                  1, kT0 + 120 * kSec);
  b.events = 20;
  b.quarantined = 3;
  b.quarantine_by_code["missing_identity"] = 3;
  b.prop_type_conflicts = 2;
  b.new_prop_columns = {"prop_color (string)"};
  results = Observe(observer.get(), b);
  auto q = Named(results, "quarantine_rate");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].status, CheckStatus::kFail);  // 15% > error_above 10%
  EXPECT_NEAR(*q[0].observed, 0.15, 1e-9);
  EXPECT_NE(q[0].detail.find("missing_identity 3"), std::string::npos);
  auto drift = Named(results, "schema_drift");
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_EQ(drift[0].status, CheckStatus::kWarn);
  EXPECT_NE(drift[0].detail.find("2 property values conflict"), std::string::npos) << drift[0].detail;
  EXPECT_NE(drift[0].detail.find("new column prop_color (string)"), std::string::npos) << drift[0].detail;
  EXPECT_EQ(*drift[0].observed, 2);
}

TEST_F(QualityLakeTest, ReadinessGoesLateWithTimeFailedOnAnErrorCheckAndBackToReady) {
  const std::string toml =
      "[[quality.checks]]\nname = \"no_negative_revenue\"\ntype = \"sql\"\nseverity = \"error\"\n"
      "sql = \"SELECT event_id, revenue FROM batch_events WHERE revenue < 0\"\n"
      "[[quality.sla]]\ndataset = \"silver.*\"\nmax_lag = \"30m\"\n";
  const QualityOptions options = Options(toml);
  auto observer = Observer(toml);
  auto row = [&](const std::string& id, int64_t at, double revenue) {
    return "SELECT '" + id + "' AS event_id, 'order_completed' AS event_name, make_timestamp(" + std::to_string(at) +
           "::BIGINT) AS event_ts, make_timestamp(" + std::to_string(at) + "::BIGINT) AS received_at, " +
           std::to_string(revenue) + "::DOUBLE AS revenue";
  };
  // Nothing yet: UNKNOWN.
  EXPECT_EQ(Find(Readiness(options, kT0), "silver.events").status, ReadinessStatus::kUnknown);
  int64_t v = AppendSilver(row("a", kT0, 5));
  auto results = Named(Observe(observer.get(), Batch(0, v, 1, kT0 + 60 * kSec)), "no_negative_revenue");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kPass) << results[0].detail;
  auto silver = Find(Readiness(options, kT0 + 10 * 60 * kSec), "silver.events");
  EXPECT_EQ(silver.status, ReadinessStatus::kReady) << silver.reason;
  EXPECT_EQ(*silver.lag_us, 10 * 60 * kSec);
  EXPECT_EQ(silver.sla.max_lag_us, 30 * 60 * kSec);
  // Time passes with no processing (the processor is stopped): LATE.
  silver = Find(Readiness(options, kT0 + 45 * 60 * kSec), "silver.events");
  EXPECT_EQ(silver.status, ReadinessStatus::kLate);
  EXPECT_NE(silver.reason.find("exceeds the SLA's max lag 30m"), std::string::npos) << silver.reason;
  // bronze.events has no table here: UNKNOWN; Gold likewise.
  EXPECT_EQ(Find(Readiness(options, kT0), "bronze.events").status, ReadinessStatus::kUnknown);
  // A batch with a failing error check: FAILED (it outranks LATE).
  v = AppendSilver(row("b", kT0 + 50 * 60 * kSec, -3));
  results = Named(Observe(observer.get(), Batch(1, v, 1, kT0 + 51 * 60 * kSec)), "no_negative_revenue");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, CheckStatus::kFail);
  EXPECT_NE(results[0].detail.find("\"event_id\":\"b\""), std::string::npos) << results[0].detail;
  silver = Find(Readiness(options, kT0 + 52 * 60 * kSec), "silver.events");
  EXPECT_EQ(silver.status, ReadinessStatus::kFailed);
  EXPECT_NE(silver.reason.find("no_negative_revenue failed in batch 1"), std::string::npos) << silver.reason;
  // The next batch is clean: READY again.
  v = AppendSilver(row("c", kT0 + 55 * 60 * kSec, 7));
  results = Named(Observe(observer.get(), Batch(2, v, 1, kT0 + 56 * 60 * kSec)), "no_negative_revenue");
  ASSERT_EQ(results[0].status, CheckStatus::kPass);
  silver = Find(Readiness(options, kT0 + 57 * 60 * kSec), "silver.events");
  EXPECT_EQ(silver.status, ReadinessStatus::kReady) << silver.reason;
  EXPECT_EQ(Find(observer->LastReadiness(), "silver.events").status, ReadinessStatus::kReady);
}

TEST_F(QualityLakeTest, DailyDeadlineInATimeZone) {
  // "yesterday complete by 08:00 Europe/Berlin" (CET, UTC+1 in November).
  const QualityOptions options = Options(
      "[[quality.sla]]\ndataset = \"silver.events\"\nmax_lag = \"1d\"\ndeadline = \"08:00\"\n"
      "timezone = \"Europe/Berlin\"\n");
  EXPECT_EQ(options.SlaFor("silver.events").Describe(), "max lag 1d; yesterday complete by 08:00 Europe/Berlin");
  const int64_t nov8 = 1794096000LL * kSec;  // 2026-11-08 00:00 UTC = 01:00 Berlin
  // Newest event 22:30 UTC on the 7th = 23:30 Berlin: the Berlin day of the 7th is not complete.
  AppendSilver("SELECT 'a' AS event_id, 'page_viewed' AS event_name, make_timestamp(" +
               std::to_string(nov8 - 90 * 60 * kSec) + "::BIGINT) AS event_ts, make_timestamp(" +
               std::to_string(nov8 - 90 * 60 * kSec) + "::BIGINT) AS received_at");
  // 06:30 UTC = 07:30 Berlin: before the deadline.
  auto r = Find(Readiness(options, nov8 + 6 * kHour + 30 * 60 * kSec), "silver.events");
  EXPECT_EQ(r.status, ReadinessStatus::kReady) << r.reason;
  // 07:30 UTC = 08:30 Berlin: past it, and the 7th (Berlin) is not covered.
  r = Find(Readiness(options, nov8 + 7 * kHour + 30 * 60 * kSec), "silver.events");
  EXPECT_EQ(r.status, ReadinessStatus::kLate);
  EXPECT_NE(r.reason.find("2026-11-07 (Europe/Berlin) not complete by 08:00"), std::string::npos) << r.reason;
  // Once an event past Berlin midnight (23:00 UTC) is covered, the deadline is met.
  AppendSilver("SELECT 'b' AS event_id, 'page_viewed' AS event_name, make_timestamp(" +
               std::to_string(nov8 - 30 * 60 * kSec) + "::BIGINT) AS event_ts, make_timestamp(" +
               std::to_string(nov8 - 30 * 60 * kSec) + "::BIGINT) AS received_at");
  r = Find(Readiness(options, nov8 + 7 * kHour + 30 * 60 * kSec), "silver.events");
  EXPECT_EQ(r.status, ReadinessStatus::kReady) << r.reason;
}

TEST_F(QualityLakeTest, AnEmptyBatchCostsNothing) {
  auto observer = Observer();
  pipeline::BatchResult r;
  r.batch_id = 7;
  r.started_us = kT0;
  r.finished_us = kT0 + kSec;
  Observe(observer.get(), r);
  EXPECT_EQ(observer->last_run().batch_id, 7);
  EXPECT_EQ(observer->last_run().queries, 0);
  EXPECT_EQ(observer->last_run().checks_run, 0);
  EXPECT_FALSE(FileSystem::Default()->Exists(JoinPath(lake(), "system/quality_results")));
  // A re-run after a crash whose tables all held the batch: no version changed, nothing to judge.
  r.events = 50;
  r.bronze_rows = 50;
  Observe(observer.get(), r);
  EXPECT_EQ(observer->last_run().queries, 0);
  EXPECT_FALSE(FileSystem::Default()->Exists(JoinPath(lake(), "system/quality_results")));
  // The same batch with its silver commit does run the checks (the counter above can move).
  r.versions["silver.events"] = AppendSilver("SELECT 'x' AS event_id, 'page_viewed' AS event_name, make_timestamp(" +
                                             std::to_string(kT0) + "::BIGINT) AS event_ts, make_timestamp(" +
                                             std::to_string(kT0) + "::BIGINT) AS received_at");
  r.silver_rows = 1;
  Observe(observer.get(), r);
  EXPECT_GT(observer->last_run().queries, 0);
  EXPECT_GT(observer->last_run().results, 0);
  EXPECT_TRUE(FileSystem::Default()->Exists(JoinPath(lake(), "system/quality_results")));
}

TEST(QualityOptionsTest, ConfiguredChecksAndErrors) {
  auto config = Config::Parse(
      "[[quality.checks]]\ntype = \"accepted_values\"\ncolumn = \"currency\"\nvalues = [\"EUR\", \"USD\"]\n"
      "severity = \"error\"\nblock = true\n");
  ASSERT_TRUE(config.ok());
  ASSERT_OK_AND_ASSIGN(auto o, QualityOptions::FromConfig(*config));
  const CheckConfig& c = o.checks.back();
  EXPECT_EQ(c.name, "accepted_values_currency_silver.events");
  EXPECT_EQ(c.severity, Severity::kError);
  EXPECT_TRUE(c.block);
  EXPECT_EQ(o.checks.size(), QualityOptions::DefaultChecks().size() + 1);
  for (const char* bad : {"[[quality.checks]]\ntype = \"nope\"\n",
                          "[[quality.checks]]\ntype = \"sql\"\n",
                          "[[quality.checks]]\ntype = \"freshness\"\n",
                          "[[quality.checks]]\ntype = \"unique\"\nseverity = \"fatal\"\n",
                          "[[quality.sla]]\ndeadline = \"8am\"\n"}) {
    auto c2 = Config::Parse(bad);
    ASSERT_TRUE(c2.ok()) << bad;
    auto r = QualityOptions::FromConfig(*c2);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto off = Config::Parse("[quality]\ndefaults = false\n");
  ASSERT_OK_AND_ASSIGN(auto none, QualityOptions::FromConfig(*off));
  EXPECT_TRUE(none.checks.empty());
}

// ---- clicklake status and GET /api/v1/readiness ----

TEST_F(QualityLakeTest, StatusCommandExitCodesAndJson) {
  const int64_t now = SystemClock()->NowMicros();
  const std::string at = "make_timestamp(" + std::to_string(now - 60 * kSec) + "::BIGINT)";
  clock_.Set(now);
  int64_t v = AppendSilver("SELECT 'a' AS event_id, 'page_viewed' AS event_name, " + at + " AS event_ts, " + at +
                           " AS received_at");
  const std::string toml_path = JoinPath(lake(), "q.toml");
  {
    std::ofstream f(toml_path);
    f << "[[quality.checks]]\nname = \"no_pages\"\ntype = \"sql\"\nseverity = \"error\"\n"
         "sql = \"SELECT * FROM batch_events WHERE event_name = 'page_viewed'\"\n";
  }
  std::ostringstream out, err;
  EXPECT_EQ(cli::RunStatusCommand({"--lake", lake()}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("silver.events"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("READY"), std::string::npos) << out.str();
  // An error check fails: exit 1, FAILED in the JSON.
  auto observer = Observer("[[quality.checks]]\nname = \"no_pages\"\ntype = \"sql\"\nseverity = \"error\"\n"
                           "sql = \"SELECT * FROM batch_events WHERE event_name = 'page_viewed'\"\n");
  Observe(observer.get(), Batch(0, v, 1, now));
  out.str("");
  EXPECT_EQ(cli::RunStatusCommand({"--lake", lake(), "--config", toml_path, "--json"}, out, err), 1) << err.str();
  EXPECT_NE(out.str().find("\"dataset\":\"silver.events\",\"status\":\"FAILED\""), std::string::npos) << out.str();
  EXPECT_EQ(cli::RunStatusCommand({"--lake", lake(), "--bogus"}, out, err), 2);
  EXPECT_EQ(cli::RunStatusCommand({"--lake", lake(), "--set", "quality.max_lag=soon"}, out, err), 2);
}

TEST_F(QualityLakeTest, ReadinessApi) {
  const int64_t now = SystemClock()->NowMicros();
  const std::string at = "make_timestamp(" + std::to_string(now - 60 * kSec) + "::BIGINT)";
  AppendSilver("SELECT 'a' AS event_id, 'page_viewed' AS event_name, " + at + " AS event_ts, " + at +
               " AS received_at");
  serve::ApiServerOptions o;
  o.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, serve::ApiServer::Create(o));
  serve::AddReadinessRoutes(server.get(), lake(), Options(""));
  ASSERT_OK(server->Start());
  httplib::Client client("127.0.0.1", server->port());
  auto res = client.Get("/api/v1/readiness");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"dataset\":\"silver.events\",\"status\":\"READY\""), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("\"dataset\":\"gold.fact_events\",\"status\":\"UNKNOWN\""), std::string::npos);
  res = client.Get("/api/v1/readiness?dataset=silver.events");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body.find("bronze.events"), std::string::npos) << res->body;
  res = client.Get("/api/v1/readiness?dataset=gold.nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(res->body.find("\"code\":\"not_found\""), std::string::npos);
  server->Stop();
}

// ---- the real pipeline, with the observer registered ----

TEST(QualityPipelineTest, SimulatedTrafficPassesTheDefaultChecksAndMetricsPassPromtool) {
  TempDir dir, key_dir;
  Config config;
  config.Set("lake.dir", dir.path());
  config.Set("log.partitions", "2");
  ASSERT_OK_AND_ASSIGN(auto log, log::OpenEventLog(config));
  simulate::SimulatorOptions so;
  so.users = 60;
  so.seed = 3;
  so.start_time_us = SystemClock()->NowMicros() - 20 * 60 * kSec;
  simulate::TrafficGenerator gen(so);
  std::vector<log::LogEntry> entries;
  while (entries.size() < 1500) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    const int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113.7";
      raw.payload = batch.EventPayload(e, sent);
      log::LogEntry entry;
      entry.key = e.anonymous_id;
      EncodeRawEvent(raw, &entry.value);
      entries.push_back(std::move(entry));
    }
  }
  pipeline::PipelineOptions options;
  options.lake_dir = dir.path();
  options.config.Set("privacy.key_file", JoinPath(key_dir.path(), "pii.key"));
  options.max_batch_events = 600;
  options.gold_catch_up_interval_us = 0;
  ASSERT_OK_AND_ASSIGN(auto qopts, QualityOptions::FromConfig(Config()));
  ASSERT_OK_AND_ASSIGN(auto observer, QualityObserver::Create(qopts, dir.path(), options.consumer_group, log.get()));
  options.observers.push_back(observer);
  ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options, log.get()));
  ASSERT_OK(log->Append(std::move(entries)));
  ASSERT_OK(runner->Drain());
  EXPECT_GT(observer->last_run().results, 0);

  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  ASSERT_OK_AND_ASSIGN(auto conn, db->Connect());
  ASSERT_OK(delta::RegisterLakeViews(conn.get(), dir.path(), std::nullopt));
  ASSERT_OK_AND_ASSIGN(auto bad, conn->Query(engine::QualifySchemaReferences(
      "SELECT check_name, status, detail FROM system.quality_results WHERE status <> 'pass' AND check_type NOT IN "
      "('volume_anomaly', 'null_spike', 'schema_drift')", "system", "memory")));
  EXPECT_EQ(bad.row_count(), 0u) << bad.ToTable();
  ASSERT_OK_AND_ASSIGN(auto ran, conn->Query(engine::QualifySchemaReferences(
      "SELECT count(DISTINCT batch_id), count(*) FILTER (WHERE check_name = 'revenue_consistency' AND status = 'pass'), "
      "count(*) FILTER (WHERE check_name = 'unique_event_id') FROM system.quality_results", "system", "memory")));
  EXPECT_GE(ran.GetInt64(0, 0), 3);
  EXPECT_GE(ran.GetInt64(0, 1), 3);
  EXPECT_GE(ran.GetInt64(0, 2), 3);
  auto readiness = ComputeReadiness(dir.path(), qopts, SystemClock()->NowMicros());
  ASSERT_TRUE(readiness.ok()) << readiness.status();
  for (const auto& r : *readiness) {
    if (r.dataset == "bronze.events" || r.dataset == "silver.events" || r.dataset == "gold.fact_events" ||
        r.dataset == "gold.fact_session_daily") {
      EXPECT_EQ(r.status, ReadinessStatus::kReady) << r.dataset << ": " << r.reason;
    }
  }
  ASSERT_OK_AND_ASSIGN(auto stored, conn->Query(engine::QualifySchemaReferences(
      "SELECT count(*), count(DISTINCT dataset) FROM system.readiness", "system", "memory")));
  EXPECT_EQ(stored.GetInt64(0, 0), static_cast<int64_t>(readiness->size()));
  EXPECT_EQ(stored.GetInt64(0, 0), stored.GetInt64(0, 1));

  // The processor's metrics, as /metrics serves them, pass promtool.
  const std::string text = MetricsRegistry::Global()->RenderPrometheus();
  for (const char* name : {"clicklake_processor_consumer_lag_events{partition=\"0\"} 0",
                           "clicklake_processor_batch_duration_seconds_bucket", "clicklake_table_rows_written_total{table=\"gold.fact_events\"}",
                           "clicklake_processor_quarantine_ratio", "clicklake_dataset_lag_seconds{dataset=\"silver.events\"}",
                           "clicklake_dataset_status{dataset=\"silver.events\",status=\"READY\"} 1",
                           "clicklake_quality_check_results_total{check=\"unique_event_id\""}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  const std::string path = JoinPath(dir.path(), "metrics.txt");
  {
    std::ofstream f(path);
    f << text;
  }
  const std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream report(path + ".out");
  std::string lines((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << lines;
  EXPECT_EQ(lines, "") << lines;
}

}  // namespace
}  // namespace clicklake::quality
