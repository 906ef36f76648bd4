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

// A value a typed getter cannot read gives the fallback and is reported by
// ReadErrors (shared by copies), so a service can refuse it at start-up.
TEST(ConfigTest, ValuesOfTheWrongTypeAreReported) {
  Config c;
  EXPECT_OK(c.ReadErrors());
  c.Set("processor.max_batch_events", "lots");
  c.Set("processor.trigger", "6o s");
  c.Set("processor.gold", "sometimes");
  c.Set("silver.quarantine_threshold", "ten percent");
  c.Set("log.partitions", "99999999999999999999");
  c.Set("collector.port", "8080");
  const Config copy = c;  // a component's copy
  EXPECT_EQ(copy.GetInt("processor.max_batch_events", 500), 500);
  EXPECT_EQ(copy.GetDurationMicros("processor.trigger", 7), 7);
  EXPECT_TRUE(copy.GetBool("processor.gold", true));
  EXPECT_EQ(copy.GetDouble("silver.quarantine_threshold", 0.1), 0.1);
  EXPECT_EQ(copy.GetInt("log.partitions", 8), 8);
  EXPECT_EQ(c.GetInt("collector.port", 0), 8080);
  Status s = c.ReadErrors();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  for (const char* part : {"processor.max_batch_events = 'lots' is not an integer", "processor.trigger = '6o s' is not a duration",
                           "processor.gold = 'sometimes' is not true or false",
                           "silver.quarantine_threshold = 'ten percent' is not a number", "log.partitions"}) {
    EXPECT_NE(s.message().find(part), std::string::npos) << part << " in " << s.message();
  }
  EXPECT_EQ(s.message().find("collector.port"), std::string::npos) << s.message();
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
