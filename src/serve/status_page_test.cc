// The status page over a lake a real pipeline wrote: readiness badges, the
// charts' data from system.batches and system.gold_refreshes, the self-refresh,
// and the routes on a running API server.
#include "serve/status_page.h"

#include <httplib.h>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"

namespace clicklake::serve {
namespace {

using clicklake::testing::TempDir;

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Config config;
    config.Set("lake.dir", dir_.path());
    config.Set("log.partitions", "1");
    auto log = log::OpenEventLog(config);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    pipeline::PipelineOptions options;
    options.lake_dir = dir_.path();
    options.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
    options.compaction = false;
    ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options, log_.get()));
    for (int batch = 0; batch < 2; ++batch) {
      std::vector<log::LogEntry> entries;
      for (int i = 0; i < 20; ++i) {
        RawEvent e;
        e.received_at_us = SystemClock()->NowMicros();
        e.source = "web";
        e.protocol = "segment";
        e.payload = R"({"type":"track","event":"Product Viewed","userId":"u)" + std::to_string(i % 3) +
                    R"(","messageId":"b)" + std::to_string(batch) + "-" + std::to_string(i) + R"("})";
        if (i == 0) e.payload = R"({"type":"track","messageId":"bad)" + std::to_string(batch) + R"("})";  // quarantined
        log::LogEntry entry;
        entry.key = "k";
        EncodeRawEvent(e, &entry.value);
        entries.push_back(std::move(entry));
      }
      ASSERT_OK(log_->Append(std::move(entries)));
      ASSERT_OK_AND_ASSIGN(auto r, runner->RunOnce());
      ASSERT_GE(r.batch_id, 0);
    }
  }
  void TearDown() override { EXPECT_OK(log_->Close()); }

  TempDir dir_, key_dir_;
  std::unique_ptr<log::EventLog> log_;
};

TEST_F(StatusPageTest, ChartsComeFromTheLakesOperationalTables) {
  const int64_t now = SystemClock()->NowMicros();
  ASSERT_OK_AND_ASSIGN(auto charts, LoadCharts(dir_.path(), now - 3600LL * 1000000, now + 1000000));
  ASSERT_EQ(charts.size(), 4u);
  auto total = [](const ChartSeries& s) {
    double t = 0;
    for (const auto& [x, v] : s.points) t += v;
    return t;
  };
  EXPECT_EQ(charts[0].id, "events_per_minute");
  EXPECT_EQ(total(charts[0].series[0]), 40);  // bronze: every record
  EXPECT_EQ(total(charts[0].series[1]), 38);  // silver: all but the two without an event name
  EXPECT_EQ(total(charts[0].series[2]), 2);   // quarantine
  EXPECT_GT(total(charts[0].series[3]), 0);   // gold.fact_events rows
  EXPECT_EQ(charts[2].series[0].points.size(), 2u);  // one duration per batch
  ASSERT_EQ(charts[3].series[0].points.size(), 2u);
  EXPECT_DOUBLE_EQ(charts[3].series[0].points[0].second, 5.0);  // 1 of 20 quarantined, in %
  EXPECT_FALSE(charts[1].series[0].points.empty());  // Gold freshness at each refresh
  // A lake with nothing yet: empty series, no error.
  TempDir empty;
  ASSERT_OK_AND_ASSIGN(auto none, LoadCharts(empty.path(), now - 1000, now));
  EXPECT_TRUE(none[0].series[0].points.empty());
  EXPECT_NE(RenderSvgChart(none[0], now - 1000, now).find("no data in the last 24 hours"), std::string::npos);
}

TEST_F(StatusPageTest, PageShowsBadgesSlaFreshnessAndChartsAndRefreshesItself) {
  StatusPageOptions options;
  options.lake_dir = dir_.path();
  options.refresh_seconds = 7;
  quality::DatasetReadiness late;
  late.dataset = "gold.fact_session_daily";
  late.status = quality::ReadinessStatus::kLate;
  late.lag_us = 7200LL * 1000000;
  late.reason = "lag 2h > SLA <b>30m</b>";
  quality::DatasetReadiness ready;
  ready.dataset = "silver.events";
  ready.status = quality::ReadinessStatus::kReady;
  const int64_t now = SystemClock()->NowMicros();
  ASSERT_OK_AND_ASSIGN(auto charts, LoadCharts(dir_.path(), now - options.window_us, now));
  const std::string html = RenderStatusPage({ready, late}, charts, now, options);
  EXPECT_NE(html.find("<meta http-equiv=\"refresh\" content=\"7\">"), std::string::npos);
  EXPECT_NE(html.find("data-dataset=\"silver.events\" data-status=\"READY\""), std::string::npos);
  EXPECT_NE(html.find("data-dataset=\"gold.fact_session_daily\" data-status=\"LATE\""), std::string::npos);
  EXPECT_NE(html.find("id=\"overall\" class=\"badge LATE\""), std::string::npos);
  EXPECT_NE(html.find("2h 0m"), std::string::npos);             // freshness
  EXPECT_NE(html.find("&lt;b&gt;30m&lt;/b&gt;"), std::string::npos);  // text is escaped
  EXPECT_EQ(html.find("<b>30m</b>"), std::string::npos);
  for (const char* id : {"events_per_minute", "lag", "batch_duration", "quarantine_rate"})
    EXPECT_NE(html.find(std::string("id=\"chart-") + id + "\""), std::string::npos) << id;
  EXPECT_NE(html.find("<polyline"), std::string::npos);
}

TEST_F(StatusPageTest, ServedByTheApiServer) {
  ApiServerOptions api;
  api.port = 0;
  ASSERT_OK_AND_ASSIGN(auto server, ApiServer::Create(api));
  StatusPageOptions options;
  options.lake_dir = dir_.path();
  AddStatusPage(server.get(), options);
  ASSERT_OK(server->Start());
  httplib::Client client("127.0.0.1", server->port());
  auto page = client.Get("/status");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  for (const char* d : {"bronze.events", "silver.events", "gold.fact_session_daily"})
    EXPECT_NE(page->body.find(std::string("data-dataset=\"") + d + "\""), std::string::npos) << d;
  auto data = client.Get("/api/v1/status/charts");
  ASSERT_TRUE(data);
  EXPECT_EQ(data->status, 200);
  EXPECT_NE(data->body.find("\"id\":\"batch_duration\""), std::string::npos);
  server->Stop();
}

}  // namespace
}  // namespace clicklake::serve
