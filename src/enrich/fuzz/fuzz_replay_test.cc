// Replays the fuzz seed corpus (and seeded random mutations of it) through
// the same entry functions the libFuzzer targets call, in every build.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "enrich/fuzz/fuzz_entry.h"

namespace clicklake::enrich::fuzz {
namespace {

std::vector<std::string> LoadSeeds(const std::string& kind) {
  std::filesystem::path dir = std::filesystem::path(clicklake::testing::SourceDir()) / "src/enrich/fuzz/seeds" / kind;
  std::vector<std::string> seeds;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    seeds.push_back(buf.str());
  }
  EXPECT_FALSE(ec) << dir << ": " << ec.message();
  return seeds;
}

// Byte flips, inserts, deletes and splices of the seeds, deterministic.
std::vector<std::string> Mutations(const std::vector<std::string>& seeds, int count) {
  std::mt19937 rng(1234);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 4) {
        case 0:
          if (!s.empty()) s[pos] = static_cast<char>(rng());
          break;
        case 1:
          s.insert(pos, 1, "%?&=#/:@;()\xff"[rng() % 12]);
          break;
        case 2:
          if (!s.empty()) s.erase(pos, 1 + rng() % 8);
          break;
        default:
          s += seeds[rng() % seeds.size()];
      }
    }
    out.push_back(s);
  }
  return out;
}

TEST(FuzzReplayTest, UrlSeedsAndMutations) {
  std::vector<std::string> seeds = LoadSeeds("url");
  ASSERT_GE(seeds.size(), 5u) << "URL seed corpus missing";
  for (const std::string& s : seeds) FuzzUrl(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  for (const std::string& s : Mutations(seeds, 3000)) FuzzUrl(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(FuzzReplayTest, UserAgentSeedsAndMutations) {
  std::vector<std::string> seeds = LoadSeeds("ua");
  ASSERT_GE(seeds.size(), 5u) << "UA seed corpus missing";
  UaParserOptions options;
  options.cache_capacity = 64;
  auto parser = UaParser::Open(options);
  ASSERT_TRUE(parser.ok()) << parser.status().ToString();
  for (const std::string& s : seeds) FuzzUserAgent(**parser, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  for (const std::string& s : Mutations(seeds, 300)) {
    FuzzUserAgent(**parser, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
}

}  // namespace
}  // namespace clicklake::enrich::fuzz
