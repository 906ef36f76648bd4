// Enrichment throughput: user agents (cache hits, misses, a realistic mix),
// URLs and referrers, geo lookups, and a whole event. Items/s = events/s.
//
//   enrich_bench --benchmark_filter=UserAgent
//
// Inputs: the user agents of ../shared/data/uap-core/test_ua.yaml and
// test_os.yaml (1,892 distinct strings, many of them rare bots and apps: a
// harsh miss workload), and a "traffic" mix where 90% of events carry one of
// 20 common browser UAs and 10% a UA from the test files.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "enrich/enrich.h"

namespace clicklake::enrich {
namespace {

std::string SharedDir() {
  if (const char* d = std::getenv("CLICKLAKE_SHARED_DIR")) return d;  // NOLINT(concurrency-mt-unsafe): read at start-up
  return CLICKLAKE_SHARED_DIR;
}

const std::vector<std::string>& TestUserAgents() {
  static const std::vector<std::string> uas = [] {
    std::vector<std::string> out;
    for (const char* f : {"test_ua.yaml", "test_os.yaml"}) {
      for (const YAML::Node& c : YAML::LoadFile(SharedDir() + "/data/uap-core/" + f)["test_cases"]) {
        out.push_back(c["user_agent_string"].as<std::string>());
      }
    }
    return out;
  }();
  return uas;
}

const std::vector<std::string>& CommonUserAgents() {
  // clang-format off
  static const std::vector<std::string> uas = {
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
      "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
      "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  };
  // clang-format on
  return uas;
}

std::unique_ptr<UaParser> OpenParser(size_t cache_capacity, bool prefilter = true) {
  UaParserOptions options;
  options.cache_capacity = cache_capacity;
  options.use_prefilter = prefilter;
  auto parser = UaParser::Open(options);
  if (!parser.ok()) {
    std::fprintf(stderr, "%s\n", parser.status().ToString().c_str());
    std::abort();
  }
  return std::move(parser).value();
}

// Every call a miss: no cache, the test-file UAs in turn (DFAs warmed first).
void BM_UserAgentMiss(benchmark::State& state) {
  static auto parser = OpenParser(0);
  const auto& uas = TestUserAgents();
  for (const auto& ua : uas) benchmark::DoNotOptimize(parser->ParseUncached(ua));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser->ParseUncached(uas[i]));
    if (++i == uas.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UserAgentMiss)->UseRealTime();

// Misses on common browser UAs only.
void BM_UserAgentMissCommonBrowsers(benchmark::State& state) {
  static auto parser = OpenParser(0);
  const auto& uas = CommonUserAgents();
  for (const auto& ua : uas) benchmark::DoNotOptimize(parser->ParseUncached(ua));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser->ParseUncached(uas[i]));
    if (++i == uas.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UserAgentMissCommonBrowsers)->UseRealTime();

// The reference order without the RE2::Set prefilter, for comparison.
void BM_UserAgentMissSequential(benchmark::State& state) {
  static auto parser = OpenParser(0, /*prefilter=*/false);
  const auto& uas = TestUserAgents();
  for (const auto& ua : uas) benchmark::DoNotOptimize(parser->ParseUncached(ua));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser->ParseUncached(uas[i]));
    if (++i == uas.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UserAgentMissSequential)->UseRealTime();

// Every call a hit: the test-file UAs, all cached. Threads share one parser.
void BM_UserAgentHit(benchmark::State& state) {
  static auto parser = OpenParser(100000);
  const auto& uas = TestUserAgents();
  if (state.thread_index() == 0) {
    for (const auto& ua : uas) benchmark::DoNotOptimize(parser->Parse(ua));
  }
  size_t i = static_cast<size_t>(state.thread_index()) * 101;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser->Parse(uas[i % uas.size()]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UserAgentHit)->UseRealTime()->Threads(1)->Threads(2);

// Realistic traffic in steady state: 90% common browsers, 9% the long tail of
// the test files, 1% never seen before (a tail UA with a unique suffix: always
// a miss). 10k-entry cache, warmed before timing.
void BM_UserAgentTrafficMix(benchmark::State& state) {
  static auto parser = OpenParser(10000);
  const auto& common = CommonUserAgents();
  const auto& tail = TestUserAgents();
  std::mt19937 rng(7 + state.thread_index());
  std::vector<const std::string*> events;
  events.reserve(100000);
  for (int i = 0; i < 100000; ++i) {
    events.push_back(rng() % 10 == 0 ? &tail[rng() % tail.size()] : &common[rng() % common.size()]);
  }
  for (const std::string* e : events) benchmark::DoNotOptimize(parser->Parse(*e));
  int64_t hits0 = parser->cache_hits();
  int64_t misses0 = parser->cache_misses();
  size_t i = 0;
  uint64_t unique = static_cast<uint64_t>(state.thread_index()) << 40;
  std::string fresh;
  for (auto _ : state) {
    if (i % 100 == 0) {
      fresh = tail[i % tail.size()] + " u/" + std::to_string(unique++);
      benchmark::DoNotOptimize(parser->Parse(fresh));
    } else {
      benchmark::DoNotOptimize(parser->Parse(*events[i]));
    }
    if (++i == events.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  double hits = static_cast<double>(parser->cache_hits() - hits0);
  double misses = static_cast<double>(parser->cache_misses() - misses0);
  state.counters["hit_ratio"] = benchmark::Counter(hits / (hits + misses), benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_UserAgentTrafficMix)->UseRealTime()->Threads(1)->Threads(2);

const std::vector<std::string>& Urls() {
  // clang-format off
  static const std::vector<std::string> urls = {
      "https://shop.example.com/products/42?utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale&gclid=EAIaIQobChMI",
      "https://shop.example.com/",
      "https://shop.example.com/cart?step=2&session=abcdef0123456789",
      "https://blog.example.com/posts/how-we-built-it?utm_source=newsletter&utm_medium=email&utm_campaign=2024-01",
      "https://shop.example.com/search?q=red+shoes&page=3&sort=price_asc&filter%5Bcolor%5D=red",
      "https://shop.example.com/p/9?fbclid=IwAR0abcdefghijklmnopqrstuvwxyz&utm_source=facebook&utm_medium=social",
  };
  // clang-format on
  return urls;
}

void BM_PageUrl(benchmark::State& state) {
  const auto& urls = Urls();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ParsePageUrl(urls[i]));
    if (++i == urls.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PageUrl);

void BM_Referrer(benchmark::State& state) {
  const std::vector<std::string> refs = {"https://www.google.com/",
                                         "https://shop.example.com/cart",
                                         "",
                                         "https://t.co/abc",
                                         "https://www.bing.com/search?q=x",
                                         "https://some.blog.org/post/1",
                                         "android-app://com.google.android.gm"};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ClassifyReferrer(refs[i], "shop.example.com"));
    if (++i == refs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Referrer);

void BM_GeoLookup(benchmark::State& state) {
  GeoOptions options;
  options.cache_capacity = static_cast<size_t>(state.range(0));
  auto db = GeoDb::Open(options);
  if (!db.ok()) {
    state.SkipWithError(db.status().ToString().c_str());
    return;
  }
  std::mt19937 rng(3);
  std::vector<std::string> ips;
  ips.reserve(5000);
  for (int i = 0; i < 5000; ++i) {
    ips.push_back(std::to_string(rng() % 223 + 1) + "." + std::to_string(rng() % 256) + "." +
                  std::to_string(rng() % 256) + "." + std::to_string(rng() % 256));
  }
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize((*db)->Lookup(ips[i]));
    if (++i == ips.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GeoLookup)->Arg(0)->Arg(100000);

// A whole event in steady state: UA (90% common, 10% tail, cached) + geo
// (cached) + page URL + referrer.
void BM_EnrichEvent(benchmark::State& state) {
  static std::unique_ptr<Enricher> enricher = [] {
    EnrichOptions options;
    options.ua.cache_capacity = 10000;
    auto e = Enricher::Open(options);
    if (!e.ok()) std::abort();
    return std::move(e).value();
  }();
  const auto& common = CommonUserAgents();
  const auto& tail = TestUserAgents();
  const auto& urls = Urls();
  std::mt19937 rng(11 + state.thread_index());
  struct Event {
    std::string ua, ip, url, ref;
  };
  std::vector<Event> events;
  events.reserve(20000);
  for (int i = 0; i < 20000; ++i) {
    events.push_back({rng() % 10 == 0 ? tail[rng() % tail.size()] : common[rng() % common.size()],
                      "81.2." + std::to_string(rng() % 64) + "." + std::to_string(rng() % 256),
                      urls[rng() % urls.size()], rng() % 2 ? "https://www.google.com/" : ""});
  }
  for (const Event& e : events) benchmark::DoNotOptimize(enricher->Enrich(EventContext{e.ua, e.ip, e.url, e.ref}));
  size_t i = 0;
  for (auto _ : state) {
    const Event& e = events[i];
    benchmark::DoNotOptimize(enricher->Enrich(EventContext{e.ua, e.ip, e.url, e.ref}));
    if (++i == events.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnrichEvent)->UseRealTime()->Threads(1)->Threads(2);

}  // namespace
}  // namespace clicklake::enrich

BENCHMARK_MAIN();
