// Replays the query fuzz seed corpus (corpus/query), every prefix of each seed
// and hostile inputs through FuzzQueryRequest, so `make test` exercises the
// entry point without clang's libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_util.h"
#include "governance/access/fuzz/fuzz_targets.h"

namespace clicklake::access::fuzz {
namespace {

void Feed(const std::string& input) {
  FuzzQueryRequest(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(AccessFuzzReplayTest, SeedCorpusAndPrefixes) {
  const std::string dir = clicklake::testing::SourceDir() + "/src/governance/access/fuzz/corpus/query";
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    Feed(data);
    for (size_t len = 0; len < data.size(); len += 1 + data.size() / 16) Feed(data.substr(0, len));
    n++;
  }
  EXPECT_GE(n, 5u);
}

TEST(AccessFuzzReplayTest, HostileInputs) {
  const std::string hostile[] = {
      std::string(20000, '('),
      "SELECT " + std::string(5000, '(') + "1" + std::string(5000, ')'),
      std::string("SELECT '\0'", 10),
      "SELECT '\xff\xfe'",
      "EXPLAIN",
      "EXPLAIN ANALYZE",
      "explain/**/analyze select 1",
      "/* unterminated",
      "-- only a comment",
      ";;;;",
      "{\"sql\":\"\\ud800\"}",
      "{\"sql\":" + std::string(1000, '[') + "}",
      "SELECT count(*) FROM range(1000000000000)",
      "SELECT * FROM lake.t, lake.t b, lake.t c",
  };
  for (const std::string& h : hostile) Feed(h);
}

TEST(AccessFuzzReplayTest, BasicCredentialsSeedsPrefixesAndHostileInputs) {
  const std::string dir = clicklake::testing::SourceDir() + "/src/governance/access/fuzz/corpus/basic";
  std::vector<std::string> inputs = {std::string("Basic \0\0\0\0", 10), "Basic " + std::string(100000, 'A'),
                                     "Basic ====", "Basic =", "basic", "BASIC  dTpw  ", "Basic dTpw\r\n",
                                     "Basic \xff\xfe\xfd\xfc", "Basic " + std::string(4096, '/')};
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    inputs.push_back(ss.str());
  }
  EXPECT_GE(inputs.size(), 12u);
  for (const std::string& input : inputs) {
    for (size_t len = 0; len <= input.size(); len += 1 + input.size() / 32) {
      FuzzBasicCredentials(reinterpret_cast<const uint8_t*>(input.data()), len);
    }
  }
}

}  // namespace
}  // namespace clicklake::access::fuzz
