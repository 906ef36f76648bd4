#include "log/local_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/fault_injection_fs.h"
#include "common/metrics.h"
#include "common/test_util.h"
#include "log/crc32c.h"
#include "log/event_log_conformance.h"
#include "log/record_format.h"

namespace clicklake::log {
namespace {

using clicklake::testing::TempDir;
using testing::ConformanceParam;
using testing::EventLogConformanceTest;
using testing::LogUnderTest;

class LocalLogUnderTest final : public LogUnderTest {
 public:
  explicit LocalLogUnderTest(std::string partition_by) : partition_by_(std::move(partition_by)) {}
  Result<std::unique_ptr<EventLog>> Open(const std::map<std::string, std::string>& settings) override {
    Config config;
    config.Set("lake.dir", dir_.path());
    if (!partition_by_.empty()) config.Set("log.partition_by", partition_by_);
    for (const auto& [k, v] : settings) config.Set(k, v);
    return OpenEventLog(config);
  }
  bool enforces_retention() const override { return true; }
  bool keeps_calls_together() const override { return partition_by_ == "append"; }

 private:
  const std::string partition_by_;  // "" = the default ("key")
  TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(
    Local, EventLogConformanceTest,
    ::testing::Values(
        ConformanceParam{"local", [] { return std::unique_ptr<LogUnderTest>(new LocalLogUnderTest("")); }},
        ConformanceParam{"local_by_append",
                         [] { return std::unique_ptr<LogUnderTest>(new LocalLogUnderTest("append")); }}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// Format

TEST(Crc32cTest, KnownVectorsAndIncremental) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
  std::string text = "the quick brown fox jumps over the lazy dog, repeatedly and at length";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, text.data(), cut), text.data() + cut, text.size() - cut), Crc32c(text));
  }
}

TEST(Crc32cTest, LongInputsMatchTheBitwiseDefinition) {
  // Long enough for the three-stream path (3 x 256 bytes per step), at every alignment of the tail.
  auto bitwise = [](const std::string& d) {
    uint32_t c = ~0u;
    for (unsigned char b : d) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
  };
  std::mt19937 rng(7);
  for (size_t n : {767u, 768u, 769u, 1536u, 2000u, 4099u, 20000u}) {
    std::string d(n, '\0');
    for (auto& ch : d) ch = static_cast<char>(rng());
    EXPECT_EQ(Crc32c(d), bitwise(d)) << n;
    size_t cut = n / 3 + 1;
    EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, d.data(), cut), d.data() + cut, n - cut), bitwise(d)) << n;
  }
}

TEST(RecordFormatTest, RoundTripAndDamage) {
  std::string buf;
  EncodeRecord(7, 1234, "key", "value", &buf);
  ASSERT_EQ(buf.size(), FramedSize(3, 5));
  RecordView rec;
  size_t n = 0;
  ASSERT_EQ(DecodeRecord(buf.data(), buf.size(), &rec, &n), DecodeStatus::kOk);
  EXPECT_EQ(n, buf.size());
  EXPECT_EQ(rec.offset, 7);
  EXPECT_EQ(rec.timestamp_ms, 1234);
  EXPECT_EQ(rec.key, "key");
  EXPECT_EQ(rec.value, "value");
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    EXPECT_EQ(DecodeRecord(buf.data(), cut, &rec, &n), DecodeStatus::kIncomplete) << cut;
  }
  for (size_t i = 0; i < buf.size(); ++i) {
    std::string bad = buf;
    bad[i] ^= 0x10;
    EXPECT_NE(DecodeRecord(bad.data(), bad.size(), &rec, &n), DecodeStatus::kOk) << i;
  }
}

// ---------------------------------------------------------------------------
// LocalLog specifics

LocalLogOptions SmallOptions(const std::string& dir) {
  LocalLogOptions o;
  o.dir = dir;
  o.num_partitions = 4;
  o.segment_bytes = 8192;
  o.index_interval_bytes = 512;
  return o;
}

std::string ValueFor(const std::string& key) {
  std::string v = "value-of-" + key + "-";
  v.append(40 + (Crc32c(key) % 200), static_cast<char>('a' + Crc32c(key) % 26));
  return v;
}

// Reads every record of every partition; fails the test on any error.
std::vector<LogRecord> ReadEverything(EventLog* log) {
  std::vector<LogRecord> all;
  for (int32_t p = 0; p < log->num_partitions(); ++p) {
    auto info = log->GetPartitionInfo(p);
    EXPECT_TRUE(info.ok());
    int64_t off = info->start_offset;
    while (off < info->end_offset) {
      auto recs = log->Read(p, off, 1000, 1 << 20);
      EXPECT_TRUE(recs.ok()) << recs.status().ToString();
      if (!recs.ok() || recs->empty()) break;
      for (auto& r : *recs) all.push_back(std::move(r));
      off = all.back().offset + 1;
    }
  }
  return all;
}

TEST(LocalLogTest, ReadsAcrossSegmentsFromAnyOffset) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  std::vector<LogEntry> entries;
  for (int i = 0; i < 2000; ++i) entries.push_back({"k", "v" + std::to_string(i) + std::string(i % 50, 'x')});
  for (int i = 0; i < 2000; i += 100) {
    ASSERT_OK(log->Append(std::vector<LogEntry>(entries.begin() + i, entries.begin() + i + 100)));
  }
  int32_t p = log->PartitionFor("k");
  std::mt19937 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    int64_t from = rng() % 2000;
    size_t n = 1 + rng() % 300;
    ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, from, n, 1 << 20));
    ASSERT_EQ(recs.size(), std::min<size_t>(n, 2000 - from));
    for (size_t i = 0; i < recs.size(); ++i) {
      ASSERT_EQ(recs[i].offset, from + static_cast<int64_t>(i));
      ASSERT_EQ(recs[i].value, entries[from + i].value);
    }
  }
  ASSERT_OK(log->Close());
  // Sealed segments have an index file; reopening uses it and reads the same.
  ASSERT_OK_AND_ASSIGN(auto files, FileSystem::Default()->ListDir(dir.path() + "/partition-000" + std::to_string(p)));
  int idx = 0;
  for (const auto& f : files) idx += f.name.ends_with(".idx") ? 1 : 0;
  EXPECT_GT(idx, 3);
  ASSERT_OK_AND_ASSIGN(log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 1234, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 10u);
  EXPECT_EQ(recs[0].value, entries[1234].value);
}

TEST(LocalLogTest, RecordLargerThanTheReadChunk) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  std::string big(5 << 20, 'B');  // larger than a read chunk and a recovery scan step
  big[12345] = 'x';
  ASSERT_OK(log->Append({{"big", "small-1"}, {"big", big}, {"big", "small-2"}}));
  int32_t p = log->PartitionFor("big");
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);  // the byte budget ends after the big one
  EXPECT_EQ(recs[0].value, "small-1");
  EXPECT_EQ(recs[1].value, big);
  ASSERT_OK_AND_ASSIGN(recs, log->Read(p, 1, 10, 100));
  ASSERT_EQ(recs.size(), 1u);  // at least one record, however large
  EXPECT_EQ(recs[0].value, big);
  ASSERT_OK_AND_ASSIGN(recs, log->Read(p, 2, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "small-2");
  ASSERT_OK(log->Close());
  ASSERT_OK_AND_ASSIGN(log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  ASSERT_OK_AND_ASSIGN(recs, log->Read(p, 0, 10, 64 << 20));
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].value, big);
}

TEST(LocalLogTest, TailingReaderSeesOnlyWholeRecordsInOrder) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  constexpr int kRecords = 3000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kRecords; i += 10) {
      std::vector<LogEntry> batch;
      for (int j = i; j < i + 10; ++j) batch.push_back({"tail", ValueFor("tail-" + std::to_string(j))});
      EXPECT_OK(log->Append(std::move(batch)));
    }
    done = true;
  });
  int32_t p = log->PartitionFor("tail");
  int64_t next = 0;
  while (next < kRecords) {
    auto recs = log->Read(p, next, 77, 1 << 20);
    ASSERT_TRUE(recs.ok()) << recs.status().ToString();
    for (const auto& r : *recs) {
      ASSERT_EQ(r.offset, next);
      ASSERT_EQ(r.value, ValueFor("tail-" + std::to_string(next)));
      ++next;
    }
    if (recs->empty() && done && next < kRecords) {
      ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
      ASSERT_LT(next, info.end_offset) << "records missing at the end";
    }
  }
  writer.join();
}

TEST(LocalLogTest, DurabilityNoneAcknowledgesWithoutSync) {
  TempDir dir;
  FaultInjectionFileSystem fs(FileSystem::Default());
  auto o = SmallOptions(dir.path());
  o.fsync = false;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, &fs, SystemClock()));
  fs.FailNext(FaultOp::kSync, 1000);  // would fail every append in fsync mode
  for (int i = 0; i < 20; ++i) ASSERT_OK(log->Append({{"n", "v" + std::to_string(i)}}));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(log->PartitionFor("n"), 0, 100, 1 << 20));
  EXPECT_EQ(recs.size(), 20u);
  ASSERT_OK(log->Close());
  // A machine crash may lose them, but what survives is a clean prefix.
  fs.ClearFaults();
  ASSERT_OK(fs.DropUnsyncedData());
  ASSERT_OK_AND_ASSIGN(log, OpenLocalLog(o, &fs, SystemClock()));
  ASSERT_OK_AND_ASSIGN(recs, log->Read(log->PartitionFor("n"), 0, 100, 1 << 20));
  for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].value, "v" + std::to_string(i));
}

// The POSIX file system preallocates the active segment (zeros ahead of the
// records, segment_file.h): a crash leaves that zero tail behind, in the active
// segment or, between a roll and its seal becoming durable, in a sealed one.
TEST(LocalLogTest, PreallocatedZeroTailsAreTrimmedOnRecovery) {
  TempDir dir;
  LocalLogOptions o = SmallOptions(dir.path());
  o.segment_bytes = 64 << 10;
  o.preallocate_bytes = 16 << 10;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, fs, SystemClock()));
  const int32_t p = log->PartitionFor("z");
  const std::string pdir = dir.path() + "/partition-000" + std::to_string(p);
  const std::string first = pdir + "/00000000000000000000.log";
  std::vector<std::string> values;
  for (int i = 0; i < 40; ++i) {
    values.push_back(ValueFor("z" + std::to_string(i)) + std::string(i * 37, 'q'));
    ASSERT_OK(log->Append({{"z", values.back()}}));
  }
  // The preallocator runs in the background: the file grows past its records.
  uint64_t records = 0;
  for (const auto& v : values) records += FramedSize(1, v.size());
  bool grown = false;
  for (int i = 0; i < 2000 && !grown; ++i) {
    ASSERT_OK_AND_ASSIGN(FileInfo st, fs->Stat(first));
    grown = st.size > records;
    if (!grown) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(grown) << "the active segment was not preallocated";
  ASSERT_OK(log->Close());
  ASSERT_OK_AND_ASSIGN(FileInfo closed, fs->Stat(first));
  EXPECT_EQ(closed.size, records);  // Close cuts the zero tail

  // A crash: the zero tail is still there.
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs->NewAppendableFile(first));
    ASSERT_OK(f->Append(std::string(20000, '\0')));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(log, OpenLocalLog(o, fs, SystemClock()));
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  EXPECT_EQ(info.end_offset, 40);
  ASSERT_OK(log->Append({{"z", "after-crash"}}));
  values.push_back("after-crash");
  // Fill past a roll; then give the sealed first segment a zero tail and drop
  // its index, as if the seal's truncation had not reached the disk.
  for (int i = 0; i < 60; ++i) {
    values.push_back(std::string(2000, static_cast<char>('a' + i % 26)));
    ASSERT_OK(log->Append({{"z", values.back()}}));
  }
  ASSERT_OK(log->Close());
  ASSERT_OK_AND_ASSIGN(FileInfo sealed, fs->Stat(first));
  ASSERT_TRUE(fs->Exists(pdir + "/00000000000000000000.idx"));
  ASSERT_OK(fs->DeleteFile(pdir + "/00000000000000000000.idx"));
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs->NewAppendableFile(first));
    ASSERT_OK(f->Append(std::string(8192, '\0')));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(log, OpenLocalLog(o, fs, SystemClock()));
  ASSERT_OK_AND_ASSIGN(FileInfo trimmed, fs->Stat(first));
  EXPECT_EQ(trimmed.size, sealed.size);
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 0, 1000, 64 << 20));
  ASSERT_EQ(recs.size(), values.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(recs[i].value, values[i]) << i;
  }
  ASSERT_OK(log->Close());
}

// Non-zero bytes after the last record of a sealed segment are damage, not a
// preallocated tail.
TEST(LocalLogTest, GarbageAfterASealedSegmentIsStillCorruption) {
  TempDir dir;
  LocalLogOptions o = SmallOptions(dir.path());
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, fs, SystemClock()));
  for (int i = 0; i < 6; ++i) ASSERT_OK(log->Append({{"g", std::string(3000, 'g')}}));
  const std::string pdir = dir.path() + "/partition-000" + std::to_string(log->PartitionFor("g"));
  ASSERT_OK(log->Close());
  ASSERT_OK(fs->DeleteFile(pdir + "/00000000000000000000.idx"));
  {
    ASSERT_OK_AND_ASSIGN(auto f, fs->NewAppendableFile(pdir + "/00000000000000000000.log"));
    ASSERT_OK(f->Append(std::string(100, '\0') + "x" + std::string(100, '\0')));
    ASSERT_OK(f->Close());
  }
  EXPECT_STATUS(OpenLocalLog(o, fs, SystemClock()), kCorruption);
}

TEST(LocalLogTest, ReopenWithOtherPartitionCountIsRefused) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  ASSERT_OK(log->Close());
  auto o = SmallOptions(dir.path());
  o.num_partitions = 8;
  EXPECT_STATUS(OpenLocalLog(o, FileSystem::Default(), SystemClock()), kInvalidArgument);
}

TEST(LocalLogTest, ConfigIsValidated) {
  Config c;
  c.Set("log.durability", "sometimes");
  EXPECT_STATUS(LocalLogOptionsFromConfig(c), kInvalidArgument);
  Config k;
  k.Set("log.kind", "carrier-pigeon");
  EXPECT_STATUS(OpenEventLog(k), kInvalidArgument);
  Config d;
  d.Set("lake.dir", "/some/lake");
  ASSERT_OK_AND_ASSIGN(auto o, LocalLogOptionsFromConfig(d));
  EXPECT_EQ(o.dir, "/some/lake/_clicklake/log");
  EXPECT_EQ(o.num_partitions, 8);
  EXPECT_TRUE(o.fsync);
  d.Set("log.dir", "/elsewhere");
  d.Set("log.retention_hours", "2");
  d.Set("log.retention_bytes", "1000000");
  d.Set("log.partitions", "3");
  d.Set("log.durability", "none");
  ASSERT_OK_AND_ASSIGN(o, LocalLogOptionsFromConfig(d));
  EXPECT_EQ(o.dir, "/elsewhere");
  EXPECT_EQ(o.retention_ms, 2 * 3600 * 1000);
  EXPECT_EQ(o.retention_bytes, 1000000);
  EXPECT_EQ(o.num_partitions, 3);
  EXPECT_FALSE(o.fsync);
  EXPECT_FALSE(o.keep_calls_together);  // the default is "key"
  d.Set("log.partition_by", "append");
  ASSERT_OK_AND_ASSIGN(o, LocalLogOptionsFromConfig(d));
  EXPECT_TRUE(o.keep_calls_together);
  d.Set("log.partition_by", "key");
  ASSERT_OK_AND_ASSIGN(o, LocalLogOptionsFromConfig(d));
  EXPECT_FALSE(o.keep_calls_together);
  d.Set("log.partition_by", "user");
  EXPECT_STATUS(LocalLogOptionsFromConfig(d), kInvalidArgument);
  d.Set("log.partition_by", "append");
  d.Set("log.segment_bytes", "10");
  EXPECT_STATUS(LocalLogOptionsFromConfig(d), kInvalidArgument);
}

TEST(LocalLogTest, PartitionByAppendKeepsACallTogether) {
  for (bool together : {true, false}) {
    TempDir dir;
    LocalLogOptions o = SmallOptions(dir.path());
    o.keep_calls_together = together;
    ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, FileSystem::Default(), SystemClock()));
    std::vector<LogEntry> call;
    for (int i = 0; i < 40; ++i) call.push_back({"user-" + std::to_string(i), "v" + std::to_string(i)});
    ASSERT_OK(log->Append(call));
    auto all = ReadEverything(log.get());
    ASSERT_EQ(all.size(), 40u);
    std::set<int32_t> used;
    for (const auto& r : all) {
      used.insert(r.partition);
      EXPECT_EQ(r.partition, log->PartitionFor(together ? "user-0" : r.key)) << r.key;
    }
    EXPECT_EQ(used.size(), together ? 1u : 4u);
    if (together) {
      // One call, one partition: the records keep the call's order at dense offsets.
      for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].value, "v" + std::to_string(i));
      // A retry of the same call lands after its first attempt; a call led by
      // another key goes to that key's partition.
      const int32_t p0 = log->PartitionFor("user-0");
      ASSERT_OK(log->Append(call));
      ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p0));
      EXPECT_EQ(info.end_offset, 80);
      std::rotate(call.begin(), call.begin() + 1, call.end());
      ASSERT_OK(log->Append(call));
      const int32_t p1 = log->PartitionFor("user-1");
      ASSERT_OK_AND_ASSIGN(info, log->GetPartitionInfo(p1));
      EXPECT_EQ(info.end_offset, p1 == p0 ? 120 : 40);
    }
    ASSERT_OK(log->Close());
  }
}

TEST(LocalLogTest, InvalidGroupNamesAreRefused) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  EXPECT_STATUS(log->CommitOffsets("../escape", {{0, 1}}), kInvalidArgument);
  EXPECT_STATUS(log->CommitOffsets("", {{0, 1}}), kInvalidArgument);
  EXPECT_STATUS(log->CommitOffsets("ok", {{99, 1}}), kInvalidArgument);
  EXPECT_STATUS(log->CommittedOffsets("a/b"), kInvalidArgument);
}

TEST(LocalLogTest, LagGaugesFollowAppendsAndCommits) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(SmallOptions(dir.path()), FileSystem::Default(), SystemClock()));
  int32_t p = log->PartitionFor("lagkey");
  ASSERT_OK(log->CommitOffsets("lag-group", {{p, 0}}));
  ASSERT_OK(log->Append({{"lagkey", "1"}, {"lagkey", "2"}, {"lagkey", "3"}}));
  Gauge* g = MetricsRegistry::Global()->GetGauge("clicklake_log_consumer_lag", "",
                                                 {{"group", "lag-group"}, {"partition", std::to_string(p)}});
  EXPECT_EQ(g->value(), 3);
  ASSERT_OK(log->CommitOffsets("lag-group", {{p, 2}}));
  EXPECT_EQ(g->value(), 1);
  ASSERT_OK_AND_ASSIGN(auto lag, log->Lag("lag-group"));
  EXPECT_EQ(lag.at(p), 1);
  EXPECT_NE(MetricsRegistry::Global()->RenderPrometheus().find("clicklake_log_consumer_lag"), std::string::npos);
}

TEST(LocalLogTest, RetentionByAgeUsesTheClock) {
  TempDir dir;
  FakeClock clock(1'700'000'000'000'000);
  auto o = SmallOptions(dir.path());
  o.retention_ms = 3600 * 1000;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, FileSystem::Default(), &clock));
  std::string big(300, 'o');
  for (int i = 0; i < 100; ++i) ASSERT_OK(log->Append({{"aged", big}}));  // old segments
  clock.Advance(2LL * 3600 * 1000 * 1000);
  for (int i = 0; i < 10; ++i) ASSERT_OK(log->Append({{"aged", big}}));  // new segment(s)
  ASSERT_OK(log->EnforceRetention());
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(log->PartitionFor("aged")));
  EXPECT_GE(info.start_offset, 90);  // everything from before the jump is gone
  EXPECT_LE(info.start_offset, 100);
  EXPECT_EQ(info.end_offset, 110);
}

// A file system whose Sync blocks until released, to hold the writer busy.
class GatedFileSystem final : public FileSystem {
 public:
  explicit GatedFileSystem(FileSystem* base) : base_(base) {}
  void Close() {
    std::lock_guard l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void WaitForBlockedSync() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return blocked_ > 0; });
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    ASSIGN_OR_RETURN(auto f, base_->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    ASSIGN_OR_RETURN(auto f, base_->NewAppendableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    return base_->NewRandomAccessFile(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Result<FileInfo> Stat(const std::string& path) override { return base_->Stat(path); }
  Result<std::vector<FileInfo>> ListDir(const std::string& dir) override { return base_->ListDir(dir); }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status DeleteFile(const std::string& path) override { return base_->DeleteFile(path); }
  Status DeleteTree(const std::string& dir) override { return base_->DeleteTree(dir); }
  Status Rename(const std::string& from, const std::string& to) override { return base_->Rename(from, to); }
  Status Link(const std::string& from, const std::string& to) override { return base_->Link(from, to); }
  Status Truncate(const std::string& path, uint64_t size) override { return base_->Truncate(path, size); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }

 private:
  class File final : public WritableFile {
   public:
    File(GatedFileSystem* fs, std::unique_ptr<WritableFile> base) : fs_(fs), base_(std::move(base)) {}
    Status Append(std::string_view data) override { return base_->Append(data); }
    Status Sync() override {
      {
        std::unique_lock l(fs_->mu_);
        fs_->blocked_++;
        fs_->cv_.notify_all();
        fs_->cv_.wait(l, [&] { return fs_->open_; });
        fs_->blocked_--;
      }
      return base_->Sync();
    }
    Status Close() override { return base_->Close(); }
    uint64_t Size() const override { return base_->Size(); }

   private:
    GatedFileSystem* fs_;
    std::unique_ptr<WritableFile> base_;
  };

  FileSystem* base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;  // GUARDED_BY(mu_)
  int blocked_ = 0;   // GUARDED_BY(mu_)
};

TEST(LocalLogTest, OverloadFailsFastWithUnavailableAndAckOnlyAfterSync) {
  TempDir dir;
  GatedFileSystem fs(FileSystem::Default());
  auto o = SmallOptions(dir.path());
  o.max_pending_bytes = 4096;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(o, &fs, SystemClock()));
  fs.Close();
  std::atomic<int> acked{0};
  std::mutex mu;
  Status first_status = Status::Internal("not called");
  log->AppendAsync({{"a", std::string(3000, 'x')}}, [&](Status s) {
    std::lock_guard l(mu);
    first_status = s;
    acked++;
  });
  fs.WaitForBlockedSync();
  EXPECT_EQ(acked.load(), 0);  // written but not synced: not acknowledged
  // Not visible to readers before it is durable.
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(log->PartitionFor("a")));
  EXPECT_EQ(info.end_offset, 0);
  // The queue holds 3000 bytes: 2000 more do not fit.
  EXPECT_STATUS(log->Append({{"b", std::string(2000, 'y')}}), kUnavailable);
  fs.Open();
  for (int i = 0; i < 5000 && acked.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_OK(log->Append({{"b", std::string(2000, 'y')}}));
  {
    std::lock_guard l(mu);
    EXPECT_EQ(acked.load(), 1);
    EXPECT_OK(first_status);
  }
  ASSERT_OK(log->Close());
}

// ---------------------------------------------------------------------------
// Faults

class LocalLogFaultTest : public ::testing::Test {
 protected:
  LocalLogFaultTest() : fs_(FileSystem::Default()) {}

  Result<std::unique_ptr<EventLog>> Open() { return OpenLocalLog(SmallOptions(dir_.path()), &fs_, SystemClock()); }

  // Appends `n` records with unique keys from `threads` threads; returns the
  // keys whose append was acknowledged OK.
  std::set<std::string> AppendConcurrently(EventLog* log, const std::string& prefix, int threads, int n,
                                           std::atomic<int>* errors) {
    std::mutex mu;
    std::set<std::string> acked;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < n; i += 5) {
          std::vector<LogEntry> batch;
          std::vector<std::string> keys;
          for (int j = i; j < i + 5; ++j) {
            std::string key = prefix + "-" + std::to_string(t) + "-" + std::to_string(j);
            keys.push_back(key);
            batch.push_back({key, ValueFor(key)});
          }
          Status s = log->Append(std::move(batch));
          std::lock_guard l(mu);
          if (s.ok()) {
            acked.insert(keys.begin(), keys.end());
          } else {
            EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
            if (errors) (*errors)++;
          }
        }
      });
    }
    for (auto& th : ts) th.join();
    return acked;
  }

  // Every record is intact and appears once; every acked key is present.
  void ExpectAckedPresent(EventLog* log, const std::set<std::string>& acked) {
    std::set<std::string> seen;
    for (const auto& r : ReadEverything(log)) {
      EXPECT_EQ(r.value, ValueFor(r.key)) << "damaged record " << r.key;
      EXPECT_TRUE(seen.insert(r.key).second) << "duplicate " << r.key;
    }
    for (const auto& k : acked) EXPECT_TRUE(seen.count(k)) << "acknowledged record lost: " << k;
  }

  TempDir dir_;
  FaultInjectionFileSystem fs_;
};

TEST_F(LocalLogFaultTest, DropUnsyncedDataKeepsEveryAckedRecord) {
  std::set<std::string> acked;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(auto log, Open());
    auto got = AppendConcurrently(log.get(), "r" + std::to_string(round), 4, 100, nullptr);
    EXPECT_EQ(got.size(), 400u);
    acked.insert(got.begin(), got.end());
    ASSERT_OK(log->Close());
    ASSERT_OK(fs_.DropUnsyncedData());
    ASSERT_OK_AND_ASSIGN(log, Open());
    ExpectAckedPresent(log.get(), acked);
    ASSERT_OK(log->Close());
  }
}

TEST_F(LocalLogFaultTest, CrashAtEveryStepLosesNoAckedRecord) {
  // Crash (every later mutating op fails) after k operations, for many k, then
  // drop unsynced data and recover.
  std::set<std::string> acked;
  for (int k = 1; k < 120; k += 7) {
    ASSERT_OK_AND_ASSIGN(auto log, Open());
    fs_.FailAfter(k);
    std::atomic<int> errors{0};
    auto got = AppendConcurrently(log.get(), "k" + std::to_string(k), 3, 40, &errors);
    acked.insert(got.begin(), got.end());
    log->Close().IgnoreError();
    ASSERT_OK(fs_.DropUnsyncedData());
    ASSERT_OK_AND_ASSIGN(log, Open());
    ExpectAckedPresent(log.get(), acked);
    ASSERT_OK(log->Close());
  }
}

TEST_F(LocalLogFaultTest, FailedWriteFailsTheCallbackAndLaterAppendsWork) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  ASSERT_OK(log->Append({{"w", "before"}}));
  fs_.set_torn_writes(true);
  fs_.FailNext(FaultOp::kAppend);
  EXPECT_STATUS(log->Append({{"w", "torn"}, {"w", "torn2"}}), kIOError);
  ASSERT_OK(log->Append({{"w", "after"}}));
  int32_t p = log->PartitionFor("w");
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].value, "before");
  EXPECT_EQ(recs[1].value, "after");
  EXPECT_EQ(recs[1].offset, 1);
  ASSERT_OK(log->Close());
  ASSERT_OK_AND_ASSIGN(log, Open());
  ASSERT_OK_AND_ASSIGN(recs, log->Read(p, 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].value, "after");
}

TEST_F(LocalLogFaultTest, FailedSyncFailsTheCallbackAndTheRecordsStayInvisible) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  ASSERT_OK(log->Append({{"s", "one"}}));
  fs_.FailNext(FaultOp::kSync);
  EXPECT_STATUS(log->Append({{"s", "unsynced"}}), kIOError);
  int32_t p = log->PartitionFor("s");
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  EXPECT_EQ(info.end_offset, 1);
  ASSERT_OK(log->Append({{"s", "two"}}));
  ASSERT_OK(log->Close());
  ASSERT_OK(fs_.DropUnsyncedData());
  ASSERT_OK_AND_ASSIGN(log, Open());
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].value, "one");
  EXPECT_EQ(recs[1].value, "two");
}

TEST_F(LocalLogFaultTest, PersistentFailureFailsCleanlyUntilStorageRecovers) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  ASSERT_OK(log->Append({{"p", "ok"}}));
  fs_.FailNext(FaultOp::kAppend);
  fs_.FailNext(FaultOp::kTruncate, 3);  // the repair fails too, three times
  EXPECT_STATUS(log->Append({{"p", "x1"}}), kIOError);
  EXPECT_STATUS(log->Append({{"p", "x2"}}), kIOError);
  EXPECT_STATUS(log->Append({{"p", "x3"}}), kIOError);
  ASSERT_OK(log->Append({{"p", "healed"}}));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(log->PartitionFor("p"), 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].value, "healed");
  EXPECT_EQ(recs[1].offset, 1);
}

TEST_F(LocalLogFaultTest, FailedSegmentRollFailsAppendsThenRecovers) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  std::string big(3000, 'b');
  ASSERT_OK(log->Append({{"r", big}, {"r", big}}));
  fs_.FailNext(FaultOp::kSyncDir);
  EXPECT_STATUS(log->Append({{"r", big}, {"r", big}, {"r", big}}), kIOError);
  ASSERT_OK(log->Append({{"r", big}}));
  ASSERT_OK(log->Close());
  ASSERT_OK(fs_.DropUnsyncedData());
  ASSERT_OK_AND_ASSIGN(log, Open());
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(log->PartitionFor("r"), 0, 10, 1 << 20));
  EXPECT_EQ(recs.size(), 3u);
}

TEST_F(LocalLogFaultTest, TornTailIsTruncatedOnRecovery) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  ASSERT_OK(log->Append({{"t", "a"}, {"t", "b"}, {"t", "c"}}));
  ASSERT_OK(log->Close());
  int32_t p = PartitionForKey("t", 4);
  std::string seg = dir_.path() + "/partition-000" + std::to_string(p) + "/00000000000000000000.log";
  ASSERT_OK_AND_ASSIGN(FileInfo before, FileSystem::Default()->Stat(seg));
  // A torn frame: half of a valid record.
  std::string frame;
  EncodeRecord(3, 1, "t", "partial-record", &frame);
  {
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->NewAppendableFile(seg));
    ASSERT_OK(f->Append(frame.substr(0, frame.size() / 2)));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(log, Open());
  ASSERT_OK_AND_ASSIGN(FileInfo after, FileSystem::Default()->Stat(seg));
  EXPECT_EQ(after.size, before.size);
  ASSERT_OK(log->Append({{"t", "d"}}));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, 0, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[3].value, "d");
  EXPECT_EQ(recs[3].offset, 3);
  ASSERT_OK(log->Close());

  // Garbage (a full frame with a bad checksum) is cut the same way.
  {
    std::string bad;
    EncodeRecord(4, 1, "t", "bit-rot", &bad);
    bad[bad.size() - 1] ^= 1;
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->NewAppendableFile(seg));
    ASSERT_OK(f->Append(bad));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(log, Open());
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  EXPECT_EQ(info.end_offset, 4);
}

TEST_F(LocalLogFaultTest, DamagedSealedSegmentIsReportedAsCorruption) {
  ASSERT_OK_AND_ASSIGN(auto log, Open());
  std::string big(3000, 'z');
  for (int i = 0; i < 6; ++i) ASSERT_OK(log->Append({{"d", big}}));
  ASSERT_OK(log->Close());
  int32_t p = PartitionForKey("d", 4);
  std::string pdir = dir_.path() + "/partition-000" + std::to_string(p);
  std::string seg = pdir + "/00000000000000000000.log";
  ASSERT_OK(FileSystem::Default()->DeleteFile(pdir + "/00000000000000000000.idx"));
  ASSERT_OK(FileSystem::Default()->Truncate(seg, 100));
  EXPECT_STATUS(Open(), kCorruption);
}

}  // namespace
}  // namespace clicklake::log
