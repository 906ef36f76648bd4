#include "common/metrics.h"

#include <gtest/gtest.h>

namespace clicklake {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  MetricsRegistry r;
  r.GetCounter("clicklake_events_total", "Events accepted.", {{"source", "web"}})->Increment(3);
  r.GetCounter("clicklake_events_total", "Events accepted.", {{"source", "web"}})->Increment();
  r.GetGauge("clicklake_lag", "Log lag.", {{"partition", "0"}})->Set(12);
  auto* h = r.GetHistogram("clicklake_latency_seconds", "Latency.", {}, {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(5);
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE clicklake_events_total counter\nclicklake_events_total{source=\"web\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("clicklake_lag{partition=\"0\"} 12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("clicklake_latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("clicklake_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("clicklake_latency_seconds_count 3\n"), std::string::npos) << text;
}

TEST(MetricsTest, EscapesLabelValues) {
  MetricsRegistry r;
  r.GetCounter("c", "h", {{"k", "a\"b\\c\nd"}})->Increment();
  EXPECT_NE(r.RenderPrometheus().find(R"(c{k="a\"b\\c\nd"} 1)"), std::string::npos);
}

TEST(MetricsTest, HistogramQuantile) {
  Histogram h({1, 2, 3, 4});
  for (int i = 0; i < 100; i++) h.Observe(0.5 + (i % 4));
  EXPECT_NEAR(h.Quantile(0.5), 2.0, 0.01);
  EXPECT_LE(h.Quantile(0.99), 4.0);
}

}  // namespace
}  // namespace clicklake
