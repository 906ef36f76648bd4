#include "common/clock.h"

#include <gtest/gtest.h>

namespace clicklake {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(1000);
  EXPECT_EQ(clock.NowMicros(), 1000);
  clock.SleepForMicros(500);
  EXPECT_EQ(clock.NowMicros(), 1500);
  clock.Advance(1);
  EXPECT_EQ(clock.NowMicros(), 1501);
}

TEST(ClockTest, SystemClockIsRecent) {
  EXPECT_GT(SystemClock()->NowMicros(), 1700000000LL * 1000000);
}

TEST(TimestampTest, ParsesRfc3339Variants) {
  int64_t t;
  ASSERT_TRUE(ParseTimestampMicros("2024-05-01T12:00:00Z", &t));
  EXPECT_EQ(t, 1714564800LL * 1000000);
  ASSERT_TRUE(ParseTimestampMicros("2024-05-01T12:00:00.123456Z", &t));
  EXPECT_EQ(t, 1714564800LL * 1000000 + 123456);
  ASSERT_TRUE(ParseTimestampMicros("2024-05-01T14:00:00.5+02:00", &t));
  EXPECT_EQ(t, 1714564800LL * 1000000 + 500000);
  ASSERT_TRUE(ParseTimestampMicros("2024-05-01 12:00:00", &t));
  EXPECT_EQ(t, 1714564800LL * 1000000);
  ASSERT_TRUE(ParseTimestampMicros("2024-05-01", &t));
  EXPECT_EQ(t, 1714521600LL * 1000000);
  ASSERT_TRUE(ParseTimestampMicros("1969-12-31T23:59:59Z", &t));
  EXPECT_EQ(t, -1000000);
}

TEST(TimestampTest, RejectsGarbage) {
  int64_t t;
  for (const char* bad : {"", "yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01T12:00:00Zjunk",
                          "2024-05-01T12", "2024-05-01T12:00:00.Z", "20240501"}) {
    EXPECT_FALSE(ParseTimestampMicros(bad, &t)) << bad;
  }
}

TEST(TimestampTest, FormatsRoundTrip) {
  EXPECT_EQ(FormatTimestampMicros(1714564800LL * 1000000 + 7), "2024-05-01T12:00:00.000007Z");
  EXPECT_EQ(FormatTimestampMicros(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatDate(0), "1970-01-01");
  EXPECT_EQ(FormatDate(19844), "2024-05-01");
  EXPECT_EQ(MicrosToDays(-1), -1);
}

}  // namespace
}  // namespace clicklake
