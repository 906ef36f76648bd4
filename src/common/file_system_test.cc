#include "common/file_system.h"

#include <gtest/gtest.h>

#include "common/fault_injection_fs.h"
#include "common/test_util.h"

namespace clicklake {
namespace {

using testing::TempDir;

TEST(PosixFileSystemTest, WriteReadListDelete) {
  TempDir dir;
  FileSystem* fs = FileSystem::Default();
  std::string p = dir.Sub("a/b/file.txt");
  ASSERT_OK(fs->CreateDirs(DirName(p)));
  ASSERT_OK(fs->WriteFile(p, "hello"));
  ASSERT_OK_AND_ASSIGN(std::string data, fs->ReadFile(p));
  EXPECT_EQ(data, "hello");
  ASSERT_OK_AND_ASSIGN(auto entries, fs->ListDir(dir.Sub("a/b")));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "file.txt");
  EXPECT_EQ(entries[0].size, 5u);
  ASSERT_OK_AND_ASSIGN(auto appender, fs->NewAppendableFile(p));
  EXPECT_EQ(appender->Size(), 5u);
  ASSERT_OK(appender->Append(" world"));
  ASSERT_OK(appender->Close());
  EXPECT_EQ(*fs->ReadFile(p), "hello world");
  ASSERT_OK(fs->DeleteFile(p));
  EXPECT_FALSE(fs->Exists(p));
  EXPECT_STATUS(fs->ReadFile(p), kNotFound);
}

TEST(PosixFileSystemTest, LinkIsPutIfAbsent) {
  TempDir dir;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK(fs->WriteFile(dir.Sub("tmp1"), "one"));
  ASSERT_OK(fs->WriteFile(dir.Sub("tmp2"), "two"));
  ASSERT_OK(fs->Link(dir.Sub("tmp1"), dir.Sub("target")));
  EXPECT_STATUS(fs->Link(dir.Sub("tmp2"), dir.Sub("target")), kAlreadyExists);
  EXPECT_EQ(*fs->ReadFile(dir.Sub("target")), "one");
}

TEST(PosixFileSystemTest, ShortReadAtEof) {
  TempDir dir;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK(fs->WriteFile(dir.Sub("f"), "abcdef"));
  ASSERT_OK_AND_ASSIGN(auto f, fs->NewRandomAccessFile(dir.Sub("f")));
  std::string out;
  ASSERT_OK(f->Read(4, 10, &out));
  EXPECT_EQ(out, "ef");
}

TEST(PathTest, JoinDirBase) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("/x/y/z"), "/x/y");
  EXPECT_EQ(BaseName("/x/y/z"), "z");
  EXPECT_EQ(DirName("z"), ".");
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  TempDir dir_;
  FaultInjectionFileSystem fs_{FileSystem::Default()};
};

TEST_F(FaultInjectionTest, DropUnsyncedDataKeepsOnlySyncedBytes) {
  std::string p = dir_.Sub("log");
  ASSERT_OK_AND_ASSIGN(auto f, fs_.NewWritableFile(p));
  ASSERT_OK(f->Append("synced;"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs_.SyncDir(dir_.path()));
  ASSERT_OK(f->Append("lost"));
  ASSERT_OK(f->Close());
  EXPECT_EQ(*fs_.ReadFile(p), "synced;lost");
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_EQ(*fs_.ReadFile(p), "synced;");
}

TEST_F(FaultInjectionTest, UnsyncedCreationAndLinkAreUndone) {
  std::string tmp = dir_.Sub("tmp");
  ASSERT_OK_AND_ASSIGN(auto f, fs_.NewWritableFile(tmp));
  ASSERT_OK(f->Append("x"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Close());
  ASSERT_OK(fs_.Link(tmp, dir_.Sub("committed")));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_FALSE(fs_.Exists(tmp));
  EXPECT_FALSE(fs_.Exists(dir_.Sub("committed")));
}

TEST_F(FaultInjectionTest, SyncedDirKeepsNames) {
  std::string tmp = dir_.Sub("tmp");
  ASSERT_OK(fs_.WriteFile(tmp, "data"));
  ASSERT_OK(fs_.Link(tmp, dir_.Sub("committed")));
  ASSERT_OK(fs_.SyncDir(dir_.path()));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_EQ(*fs_.ReadFile(dir_.Sub("committed")), "data");
}

TEST_F(FaultInjectionTest, UnsyncedRenameIsReversed) {
  ASSERT_OK(fs_.WriteFile(dir_.Sub("a"), "A"));
  ASSERT_OK(fs_.SyncDir(dir_.path()));
  ASSERT_OK(fs_.Rename(dir_.Sub("a"), dir_.Sub("b")));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_TRUE(fs_.Exists(dir_.Sub("a")));
  EXPECT_FALSE(fs_.Exists(dir_.Sub("b")));
}

TEST_F(FaultInjectionTest, FailNextAndTornWrites) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_.NewWritableFile(dir_.Sub("f")));
  fs_.set_torn_writes(true);
  fs_.FailNext(FaultOp::kAppend);
  EXPECT_STATUS(f->Append("abcdefgh"), kIOError);
  EXPECT_EQ(f->Size(), 4u);  // torn: half of it made it
  ASSERT_OK(f->Append("ok"));
  fs_.FailNext(FaultOp::kSync);
  EXPECT_STATUS(f->Sync(), kIOError);
  ASSERT_OK(f->Sync());
  fs_.FailNext(FaultOp::kRename);
  EXPECT_STATUS(fs_.Rename(dir_.Sub("f"), dir_.Sub("g")), kIOError);
  EXPECT_TRUE(fs_.Exists(dir_.Sub("f")));
}

TEST_F(FaultInjectionTest, FailAfterCrashesAtAnExactStep) {
  fs_.FailAfter(2);
  ASSERT_OK_AND_ASSIGN(auto f, fs_.NewWritableFile(dir_.Sub("f")));  // op 1
  ASSERT_OK(f->Append("a"));                                          // op 2
  EXPECT_STATUS(f->Sync(), kIOError);                                 // op 3 fails
  EXPECT_STATUS(fs_.SyncDir(dir_.path()), kIOError);                  // and everything after
  fs_.ClearFaults();
  ASSERT_OK(f->Sync());
}

}  // namespace
}  // namespace clicklake
