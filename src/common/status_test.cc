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
