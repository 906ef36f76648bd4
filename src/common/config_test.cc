#include "common/config.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake {
namespace {

TEST(ConfigTest, ReadsNestedKeysWithDefaults) {
  ASSERT_OK_AND_ASSIGN(Config c, Config::Parse(R"(
[lake]
dir = "/data/lake"
[collector]
port = 9000
trusted_proxies = ["10.0.0.1", "10.0.0.2"]
[collector.write_keys]
abc = "web"
def = "ios"
[processor]
trigger = "5s"
fsync = false
[[funnels]]
name = "signup"
steps = ["page_viewed", "signed_up"]
)"));
  EXPECT_EQ(c.lake_dir(), "/data/lake");
  EXPECT_EQ(c.GetInt("collector.port", 1), 9000);
  EXPECT_EQ(c.GetInt("collector.missing", 7), 7);
  EXPECT_FALSE(c.GetBool("processor.fsync", true));
  EXPECT_EQ(c.GetDurationMicros("processor.trigger", 0), 5000000);
  EXPECT_EQ(c.GetStringList("collector.trusted_proxies").size(), 2u);
  auto keys = c.GetStringMap("collector.write_keys");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys["def"], "ios");
  auto funnels = c.GetTableArrayToml("funnels");
  ASSERT_EQ(funnels.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Config f, Config::Parse(funnels[0]));
  EXPECT_EQ(f.GetString("name", ""), "signup");
}

TEST(ConfigTest, FlagsOverrideFile) {
  ASSERT_OK_AND_ASSIGN(Config c, Config::Parse("[collector]\nport = 9000\n"));
  c.Set("collector.port", "8088");
  EXPECT_EQ(c.GetInt("collector.port", 0), 8088);
}

TEST(ConfigTest, ParseErrorsNameTheLine) {
  auto r = Config::Parse("[lake]\ndir = \n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status();
}

TEST(ConfigTest, DefaultConfigParses) {
  ASSERT_OK_AND_ASSIGN(Config c, Config::Parse(DefaultConfigToml()));
  EXPECT_EQ(c.GetInt("log.partitions", 0), 8);
  EXPECT_EQ(c.GetDurationMicros("processor.trigger", 0), 60000000);
}

TEST(DurationTest, Units) {
  int64_t v;
  ASSERT_TRUE(ParseDurationMicros("500ms", &v));
  EXPECT_EQ(v, 500000);
  ASSERT_TRUE(ParseDurationMicros("72h", &v));
  EXPECT_EQ(v, 72LL * 3600 * 1000000);
  ASSERT_TRUE(ParseDurationMicros("7d", &v));
  ASSERT_TRUE(ParseDurationMicros("30", &v));
  EXPECT_EQ(v, 30000000);
  EXPECT_FALSE(ParseDurationMicros("fast", &v));
  EXPECT_FALSE(ParseDurationMicros("5 parsecs", &v));
}

}  // namespace
}  // namespace clicklake
