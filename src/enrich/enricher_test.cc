#include <gtest/gtest.h>

#include <thread>

#include "common/test_util.h"
#include "enrich/enrich.h"

namespace clicklake::enrich {
namespace {

TEST(EnricherTest, EnrichesOneEvent) {
  ASSERT_OK_AND_ASSIGN(auto enricher, Enricher::Open(EnrichOptions{}));
  EventContext ctx;
  ctx.user_agent =
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.1 Mobile/15E148 Safari/604.1";
  ctx.client_ip = "8.8.8.8";
  ctx.page_url = "https://shop.example.com/p/1?utm_source=newsletter&utm_medium=email&utm_campaign=launch";
  ctx.referrer_url = "";
  simdjson::dom::parser parser;
  simdjson::dom::element event;
  ASSERT_EQ(parser.parse(std::string(R"({"properties":{"experiment_id":"e1","experiment_variant":"B"}})")).get(event),
            simdjson::SUCCESS);
  Enrichment e = enricher->Enrich(ctx, event);
  EXPECT_EQ(e.user_agent.ua_family, "Mobile Safari");
  EXPECT_EQ(e.user_agent.device_type, DeviceType::kMobile);
  EXPECT_EQ(e.geo.country, "US");
  EXPECT_EQ(e.page.page_path, "/p/1");
  EXPECT_EQ(e.page.campaign_id, CampaignId("newsletter", "email", "launch"));
  EXPECT_EQ(e.referrer.referrer_class, ReferrerClass::kEmail);
  EXPECT_EQ(e.experiment.experiment_id, "e1");
  EXPECT_EQ(e.experiment.experiment_variant, "B");
}

TEST(EnricherTest, OptionsFromConfig) {
  ASSERT_OK_AND_ASSIGN(Config config, Config::Parse(R"(
[enrich]
ua_cache_size = 10
geoip_db = "none"
experiment_paths = ["context.ab.id|context.ab.arm"]
)"));
  ASSERT_OK_AND_ASSIGN(EnrichOptions options, EnrichOptionsFromConfig(config));
  EXPECT_EQ(options.ua.cache_capacity, 10u);
  EXPECT_FALSE(options.geo_enabled);
  ASSERT_EQ(options.experiment_paths.size(), 1u);
  EXPECT_EQ(options.experiment_paths[0].id.dotted(), "context.ab.id");
  ASSERT_OK_AND_ASSIGN(auto enricher, Enricher::Open(options));
  EXPECT_EQ(enricher->geo_db(), nullptr);
  EXPECT_TRUE(enricher->Enrich(EventContext{"", "8.8.8.8", "", ""}).geo.empty());

  ASSERT_OK_AND_ASSIGN(Config defaults, Config::Parse(""));
  ASSERT_OK_AND_ASSIGN(EnrichOptions d, EnrichOptionsFromConfig(defaults));
  EXPECT_TRUE(d.geo_enabled);
  EXPECT_EQ(d.experiment_paths.size(), 2u);

  ASSERT_OK_AND_ASSIGN(Config bad, Config::Parse("[enrich]\nexperiment_paths = [\"a..b\"]\n"));
  EXPECT_STATUS(EnrichOptionsFromConfig(bad), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(Config missing, Config::Parse("[enrich]\ngeoip_db = \"/nope.mmdb\"\n"));
  ASSERT_OK_AND_ASSIGN(EnrichOptions m, EnrichOptionsFromConfig(missing));
  EXPECT_STATUS(Enricher::Open(m), kNotFound);
}

TEST(EnricherTest, PublishesCacheMetrics) {
  ASSERT_OK_AND_ASSIGN(auto enricher, Enricher::Open(EnrichOptions{}));
  MetricsRegistry registry;
  EventContext ctx{"curl/8.0", "8.8.8.8", "", ""};
  for (int i = 0; i < 3; ++i) (void)enricher->Enrich(ctx);
  enricher->PublishMetrics(&registry);
  enricher->PublishMetrics(&registry);  // idempotent without new lookups
  EXPECT_EQ(registry.GetCounter("clicklake_enrich_cache_hits_total", "", {{"cache", "ua"}})->value(), 2);
  EXPECT_EQ(registry.GetCounter("clicklake_enrich_cache_misses_total", "", {{"cache", "ua"}})->value(), 1);
  EXPECT_EQ(registry.GetCounter("clicklake_enrich_cache_hits_total", "", {{"cache", "geo"}})->value(), 2);
  EXPECT_EQ(registry.GetGauge("clicklake_enrich_cache_entries", "", {{"cache", "geo"}})->value(), 1.0);
  (void)enricher->Enrich(ctx);
  enricher->PublishMetrics(&registry);
  EXPECT_EQ(registry.GetCounter("clicklake_enrich_cache_hits_total", "", {{"cache", "ua"}})->value(), 3);
  EXPECT_NE(registry.RenderPrometheus().find("clicklake_enrich_cache_hits_total{cache=\"ua\"} 3"), std::string::npos)
      << registry.RenderPrometheus();
}

TEST(EnricherTest, SharedAcrossThreads) {
  ASSERT_OK_AND_ASSIGN(auto enricher, Enricher::Open(EnrichOptions{}));
  const char* uas[] = {
      ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
       "Safari/537.36"),
      "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
  };
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        EventContext ctx{uas[i % 3], "1.1.1.1", "https://a.example.com/?utm_source=x", "https://www.google.com/"};
        Enrichment e = enricher->Enrich(ctx);
        DeviceType want = i % 3 == 2 ? DeviceType::kBot : DeviceType::kDesktop;
        if (e.user_agent.device_type != want || e.geo.country != "AU" ||
            e.referrer.referrer_class != ReferrerClass::kSearch || e.page.utm_source != "x") {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace clicklake::enrich
