#include "common/status.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x));
  return Status::OK();
}

TEST(StatusTest, OkAndCodes) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  Status s = Status::Conflict("lost the race");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsConflict());
  EXPECT_EQ(s.ToString(), "CONFLICT: lost the race");
  EXPECT_EQ(s.WithContext("commit 3").message(), "commit 3: lost the race");
}

TEST(StatusTest, FromErrnoMapsCommonErrors) {
  EXPECT_STATUS(Status::FromErrno("open", "/x", ENOENT), kNotFound);
  EXPECT_STATUS(Status::FromErrno("link", "/x", EEXIST), kAlreadyExists);
  EXPECT_STATUS(Status::FromErrno("write", "/x", ENOSPC), kIOError);
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_OK(CheckEven(4));
  EXPECT_STATUS(CheckEven(5), kInvalidArgument);
  EXPECT_EQ(Quarter(3).value_or(-1), -1);
}

}  // namespace
}  // namespace clicklake

#include "common/raw_event.h"

namespace clicklake {
namespace {

TEST(RawEventTest, RoundTripsAndRejectsGarbage) {
  RawEvent in{1714564800123456, "web", "segment", "203.0.113.9", "Mozilla/5.0", R"({"type":"track"})"};
  std::string buf;
  EncodeRawEvent(in, &buf);
  RawEvent out;
  ASSERT_OK(DecodeRawEvent(buf, &out));
  EXPECT_EQ(out.received_at_us, in.received_at_us);
  EXPECT_EQ(out.source, "web");
  EXPECT_EQ(out.protocol, "segment");
  EXPECT_EQ(out.client_ip, in.client_ip);
  EXPECT_EQ(out.user_agent, in.user_agent);
  EXPECT_EQ(out.payload, in.payload);
  for (size_t cut = 0; cut < buf.size(); cut++) {
    EXPECT_FALSE(DecodeRawEvent(std::string_view(buf).substr(0, cut), &out).ok()) << cut;
  }
  EXPECT_STATUS(DecodeRawEvent("{\"json\":1}", &out), kCorruption);
}

}  // namespace
}  // namespace clicklake
