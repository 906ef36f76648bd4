#include "enrich/parse_ua_tool.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>

#include "common/test_util.h"

namespace clicklake::enrich {
namespace {

int RunTool(const std::vector<std::string>& args, const std::string& input, std::string* out, std::string* err) {
  std::istringstream in(input);
  std::ostringstream o;
  std::ostringstream e;
  int rc = RunParseUaTool(args, in, o, e);
  *out = o.str();
  *err = e.str();
  return rc;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(ParseUaToolTest, OneJsonObjectPerLineWithExactKeys) {
  std::string out;
  std::string err;
  const std::string input =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 "
      "Safari/537.36\r\n"
      "\n"
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.1 Mobile/15E148 Safari/604.1\n"
      "Quote\"Back\\slash\x01/1.0 CFNetwork/978 Darwin/18\n";
  ASSERT_EQ(RunTool({}, input, &out, &err), 0) << err;
  std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0],
            R"({"ua_family":"Chrome","ua_major":"120","ua_minor":"0","ua_patch":"6099","os_family":"Windows",)"
            R"("os_major":"10","os_minor":null,"os_patch":null,"os_patch_minor":null,"device_family":"Other",)"
            R"("device_brand":null,"device_model":null})");
  EXPECT_EQ(lines[1],
            R"({"ua_family":"Other","ua_major":null,"ua_minor":null,"ua_patch":null,"os_family":"Other",)"
            R"("os_major":null,"os_minor":null,"os_patch":null,"os_patch_minor":null,"device_family":"Other",)"
            R"("device_brand":null,"device_model":null})");
  const std::vector<std::string> keys = {"ua_family",      "ua_major",      "ua_minor",     "ua_patch",
                                         "os_family",      "os_major",      "os_minor",     "os_patch",
                                         "os_patch_minor", "device_family", "device_brand", "device_model"};
  simdjson::dom::parser parser;
  for (const std::string& line : lines) {
    simdjson::dom::object obj;
    ASSERT_EQ(parser.parse(line).get(obj), simdjson::SUCCESS) << line;
    std::vector<std::string> got;
    for (auto field : obj) got.emplace_back(field.key);
    EXPECT_EQ(got, keys);
  }
  simdjson::dom::object iphone;
  ASSERT_EQ(parser.parse(lines[2]).get(iphone), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(iphone["os_family"]), "iOS");
  EXPECT_EQ(std::string_view(iphone["device_family"]), "iPhone");
  simdjson::dom::object escaped;
  ASSERT_EQ(parser.parse(lines[3]).get(escaped), simdjson::SUCCESS) << lines[3];
  EXPECT_EQ(std::string_view(escaped["ua_family"]), "Quote\"Back\\slash\x01");
}

TEST(ParseUaToolTest, ExplicitRegexesAndErrors) {
  std::string out;
  std::string err;
  EXPECT_EQ(RunTool({"--regexes", DefaultUaRegexesPath()}, "curl/8.0\n", &out, &err), 0) << err;
  EXPECT_EQ(Lines(out).size(), 1u);
  EXPECT_EQ(RunTool({"--regexes", "/nonexistent.yaml"}, "x\n", &out, &err), 1);
  EXPECT_NE(err.find("/nonexistent.yaml"), std::string::npos) << err;
  EXPECT_NE(RunTool({"--bogus"}, "", &out, &err), 0);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(RunTool({"--help"}, "", &out, &err), 0);
  EXPECT_NE(out.find("--regexes"), std::string::npos) << out;
}

TEST(ParseUaToolTest, RegexesFromConfig) {
  clicklake::testing::TempDir dir;
  std::string config = dir.Sub("c.toml");
  {
    std::ofstream f(config);
    f << "[enrich]\nua_regexes = \"" << DefaultUaRegexesPath() << "\"\n";
  }
  std::string out;
  std::string err;
  EXPECT_EQ(RunTool({"--config", config}, "curl/8.0\n", &out, &err), 0) << err;
  std::ofstream(dir.Sub("bad.toml")) << "[enrich]\nua_regexes = \"/nope/regexes.yaml\"\n";
  EXPECT_EQ(RunTool({"--config", dir.Sub("bad.toml")}, "curl/8.0\n", &out, &err), 1);
  EXPECT_NE(err.find("/nope/regexes.yaml"), std::string::npos) << err;
}

}  // namespace
}  // namespace clicklake::enrich
