// The EventLog conformance suite: one set of tests every implementation passes.
//
// A test binary includes this header once, defines a LogUnderTest for its
// implementation and instantiates the suite:
//
//   INSTANTIATE_TEST_SUITE_P(Local, EventLogConformanceTest,
//                            ::testing::Values(ConformanceParam{"local", MakeLocal}),
//                            [](const auto& info) { return info.param.name; });
//
// Test code only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "log/event_log.h"

namespace clicklake::log::testing {

// One log instance family: Open() can be called again after the previous log
// was closed and must see the same data (same directory / cluster + topic).
class LogUnderTest {
 public:
  virtual ~LogUnderTest() = default;
  // Opens the log with these settings on top of the implementation's own.
  virtual Result<std::unique_ptr<EventLog>> Open(const std::map<std::string, std::string>& settings) = 0;
  // Whether EnforceRetention() deletes data on this implementation (Kafka's
  // retention belongs to the brokers).
  virtual bool enforces_retention() const = 0;
  // Whether the records of one call stay in the partition of its first key
  // (log.partition_by = "append") instead of each going to its own key's.
  virtual bool keeps_calls_together() const { return false; }
};

struct ConformanceParam {
  std::string name;
  std::function<std::unique_ptr<LogUnderTest>()> make;
};

class EventLogConformanceTest : public ::testing::TestWithParam<ConformanceParam> {
 protected:
  void SetUp() override { env_ = GetParam().make(); }

  std::unique_ptr<EventLog> OpenOrDie(const std::map<std::string, std::string>& settings = {}) {
    auto r = env_->Open(settings);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // Every record of every partition, read in small pages to cross page boundaries.
  static std::vector<LogRecord> ReadAll(EventLog* log, size_t page = 7) {
    std::vector<LogRecord> all;
    for (int32_t p = 0; p < log->num_partitions(); ++p) {
      auto info = log->GetPartitionInfo(p);
      EXPECT_TRUE(info.ok()) << info.status().ToString();
      if (!info.ok()) continue;
      int64_t off = info->start_offset;
      while (off < info->end_offset) {
        auto recs = log->Read(p, off, page, 1 << 20);
        EXPECT_TRUE(recs.ok()) << recs.status().ToString();
        if (!recs.ok() || recs->empty()) break;
        for (auto& r : *recs) {
          EXPECT_EQ(r.offset, off);
          EXPECT_EQ(r.partition, p);
          off = r.offset + 1;
          all.push_back(std::move(r));
        }
      }
    }
    return all;
  }

  static std::vector<LogEntry> Entries(const std::string& prefix, int n, int num_keys = 5) {
    std::vector<LogEntry> out;
    for (int i = 0; i < n; ++i) {
      out.push_back({"user-" + std::to_string(i % num_keys), prefix + "-" + std::to_string(i)});
    }
    return out;
  }

  std::unique_ptr<LogUnderTest> env_;
};

TEST_P(EventLogConformanceTest, AppendThenReadBackEverything) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Entries("a", 60)));
  ASSERT_OK(log->Append(Entries("b", 40)));
  auto all = ReadAll(log.get());
  ASSERT_EQ(all.size(), 100u);
  std::set<std::string> values;
  std::map<char, std::set<int32_t>> partitions_of_call;  // by value prefix
  for (const auto& r : all) {
    values.insert(r.value);
    partitions_of_call[r.value[0]].insert(r.partition);
    if (!env_->keeps_calls_together()) {
      EXPECT_EQ(r.partition, log->PartitionFor(r.key));
    }
    EXPECT_GT(r.timestamp_ms, 0);
  }
  EXPECT_EQ(values.size(), 100u);
  if (env_->keeps_calls_together()) {  // both calls start with key "user-0"
    EXPECT_EQ(partitions_of_call['a'], std::set<int32_t>{log->PartitionFor("user-0")});
    EXPECT_EQ(partitions_of_call['b'], std::set<int32_t>{log->PartitionFor("user-0")});
  }
  EXPECT_TRUE(values.count("a-59"));
  EXPECT_TRUE(values.count("b-0"));
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, ReadFromOffsetAndLimits) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  std::vector<LogEntry> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({"one-key", "value-" + std::to_string(i)});
  ASSERT_OK(log->Append(entries));
  int32_t p = log->PartitionFor("one-key");
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  ASSERT_EQ(info.end_offset - info.start_offset, 50);
  const int64_t base = info.start_offset;

  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, base + 20, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(recs[i].offset, base + 20 + i);
    EXPECT_EQ(recs[i].value, "value-" + std::to_string(20 + i));
    EXPECT_EQ(recs[i].key, "one-key");
  }
  // max_bytes: at least one record, then stop once the budget is used.
  ASSERT_OK_AND_ASSIGN(auto one, log->Read(p, base, 100, 1));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].offset, base);
  ASSERT_OK_AND_ASSIGN(auto some, log->Read(p, base, 100, 5 * (7 + 8)));
  EXPECT_GE(some.size(), 2u);
  EXPECT_LT(some.size(), 50u);
  // At the end: empty. Past the end or a bad partition: InvalidArgument.
  ASSERT_OK_AND_ASSIGN(auto none, log->Read(p, info.end_offset, 10, 1 << 20));
  EXPECT_TRUE(none.empty());
  EXPECT_STATUS(log->Read(p, info.end_offset + 5, 10, 1 << 20), kInvalidArgument);
  EXPECT_STATUS(log->Read(log->num_partitions(), 0, 10, 1 << 20), kInvalidArgument);
  EXPECT_STATUS(log->Read(-1, 0, 10, 1 << 20), kInvalidArgument);
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, PerPartitionOrderUnderConcurrentAppends) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 4, kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; i += 10) {
        std::vector<LogEntry> batch;
        for (int j = i; j < i + 10; ++j) {
          batch.push_back(
              {"t" + std::to_string(t) + "-k" + std::to_string(j % 3), std::to_string(t) + ":" + std::to_string(j)});
        }
        if (!log->Append(std::move(batch)).ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = ReadAll(log.get(), 33);
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  // Within a partition, each key's records come back in the order they were appended.
  std::map<std::pair<int32_t, std::string>, int> last_seq;
  for (const auto& r : all) {
    int seq = std::stoi(r.value.substr(r.value.find(':') + 1));
    auto it = last_seq.find({r.partition, r.key});
    if (it != last_seq.end()) {
      EXPECT_GT(seq, it->second) << r.key;
    }
    last_seq[{r.partition, r.key}] = seq;
  }
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, SameKeySamePartitionStableHash) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  std::set<int32_t> used;
  for (int i = 0; i < 200; ++i) {
    std::string key = "anon-" + std::to_string(i);
    int32_t p = log->PartitionFor(key);
    EXPECT_EQ(p, PartitionForKey(key, log->num_partitions()));
    EXPECT_EQ(p, log->PartitionFor(key));
    EXPECT_GE(p, 0);
    EXPECT_LT(p, log->num_partitions());
    used.insert(p);
  }
  EXPECT_EQ(static_cast<int32_t>(used.size()), log->num_partitions());  // spreads
  // Pinned values: the mapping must never change between releases.
  EXPECT_EQ(PartitionForKey("user-42", 8), PartitionForKey("user-42", 8));
  EXPECT_EQ(PartitionForKey("", 8), static_cast<int32_t>(0xcbf29ce484222325ULL % 8));
  ASSERT_OK(log->Append({{"k1", "x"}, {"k1", "y"}, {"k1", "z"}}));
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(log->PartitionFor("k1")));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(info.partition, info.start_offset, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].value, "x");
  EXPECT_EQ(recs[2].value, "z");
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, ConsumerGroupOffsetsPersistAndGiveLag) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Entries("x", 40, 10)));
  ASSERT_OK_AND_ASSIGN(auto empty, log->CommittedOffsets("processor"));
  EXPECT_TRUE(empty.empty());
  ASSERT_OK_AND_ASSIGN(PartitionInfo p0, log->GetPartitionInfo(0));
  ASSERT_OK_AND_ASSIGN(PartitionInfo p1, log->GetPartitionInfo(1));
  ASSERT_OK(log->CommitOffsets("processor", {{0, p0.end_offset}, {1, p1.start_offset}}));
  ASSERT_OK(log->CommitOffsets("other", {{0, p0.start_offset}}));
  ASSERT_OK_AND_ASSIGN(auto got, log->CommittedOffsets("processor"));
  EXPECT_EQ(got.at(0), p0.end_offset);
  EXPECT_EQ(got.at(1), p1.start_offset);
  ASSERT_OK_AND_ASSIGN(auto lag, log->Lag("processor"));
  EXPECT_EQ(lag.at(0), 0);
  EXPECT_EQ(lag.at(1), p1.end_offset - p1.start_offset);
  int64_t total_lag = 0;
  for (auto [p, l] : lag) total_lag += l;
  EXPECT_EQ(total_lag, 40 - (p0.end_offset - p0.start_offset));
  ASSERT_OK(log->Close());

  log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  ASSERT_OK_AND_ASSIGN(auto again, log->CommittedOffsets("processor"));
  EXPECT_EQ(again.at(0), p0.end_offset);
  EXPECT_EQ(again.at(1), p1.start_offset);
  ASSERT_OK_AND_ASSIGN(auto other, log->CommittedOffsets("other"));
  EXPECT_EQ(other.at(0), p0.start_offset);
  // A later commit of some partitions keeps the others.
  ASSERT_OK(log->CommitOffsets("processor", {{1, p1.end_offset}}));
  ASSERT_OK_AND_ASSIGN(auto merged, log->CommittedOffsets("processor"));
  EXPECT_EQ(merged.at(0), p0.end_offset);
  EXPECT_EQ(merged.at(1), p1.end_offset);
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, RetentionDropsOldDataOnly) {
  if (!env_->enforces_retention()) {
    // Still callable and harmless.
    auto log = OpenOrDie();
    ASSERT_NE(log, nullptr);
    ASSERT_OK(log->Append(Entries("r", 10)));
    EXPECT_OK(log->EnforceRetention());
    EXPECT_EQ(ReadAll(log.get()).size(), 10u);
    ASSERT_OK(log->Close());
    return;
  }
  auto log = OpenOrDie({{"log.segment_bytes", "4096"}, {"log.retention_bytes", "16384"}});
  ASSERT_NE(log, nullptr);
  std::string big(200, 'v');
  for (int i = 0; i < 40; ++i) {
    std::vector<LogEntry> batch;
    for (int j = 0; j < 10; ++j) batch.push_back({"same", big + std::to_string(i * 10 + j)});
    ASSERT_OK(log->Append(std::move(batch)));
  }
  ASSERT_OK(log->EnforceRetention());
  int32_t p = log->PartitionFor("same");
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  EXPECT_GT(info.start_offset, 0);
  EXPECT_EQ(info.end_offset, 400);
  EXPECT_LE(info.end_offset - info.start_offset, 16384 / 200 + 40);
  EXPECT_STATUS(log->Read(p, 0, 10, 1 << 20), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, info.start_offset, 1000, 1 << 24));
  ASSERT_EQ(static_cast<int64_t>(recs.size()), info.end_offset - info.start_offset);
  EXPECT_EQ(recs.back().value, big + "399");
  ASSERT_OK(log->Close());
  // Retention survives a reopen.
  log = OpenOrDie({{"log.segment_bytes", "4096"}, {"log.retention_bytes", "16384"}});
  ASSERT_NE(log, nullptr);
  ASSERT_OK_AND_ASSIGN(PartitionInfo again, log->GetPartitionInfo(p));
  EXPECT_EQ(again.start_offset, info.start_offset);
  EXPECT_EQ(again.end_offset, 400);
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, RecoveryAfterReopenContinuesOffsets) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append(Entries("first", 30)));
  auto before = ReadAll(log.get());
  ASSERT_OK(log->Close());
  ASSERT_OK(log->Close());  // idempotent
  EXPECT_STATUS(log->Append({{"k", "after close"}}), kUnavailable);

  log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  auto after = ReadAll(log.get());
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].offset, before[i].offset);
    EXPECT_EQ(after[i].key, before[i].key);
    EXPECT_EQ(after[i].value, before[i].value);
    EXPECT_EQ(after[i].timestamp_ms, before[i].timestamp_ms);
  }
  int32_t p = log->PartitionFor("user-0");
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  ASSERT_OK(log->Append({{"user-0", "second"}}));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, info.end_offset, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].offset, info.end_offset);
  EXPECT_EQ(recs[0].value, "second");
  ASSERT_OK(log->Close());
}

TEST_P(EventLogConformanceTest, EmptyAppendSucceedsAndBinaryValuesRoundTrip) {
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  ASSERT_OK(log->Append({}));
  std::string binary("\0\1\2\xff\n\r", 6);
  ASSERT_OK(log->Append({{"bin", binary}, {"bin", ""}}));
  int32_t p = log->PartitionFor("bin");
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
  ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, info.start_offset, 10, 1 << 20));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].value, binary);
  EXPECT_EQ(recs[1].value, "");
  ASSERT_OK(log->Close());
}

}  // namespace clicklake::log::testing
