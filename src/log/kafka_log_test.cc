// KafkaLog against librdkafka's mock cluster (a real Kafka-protocol server on
// loopback): the shared conformance suite, a broker outage, and interop with kcat.
#include "log/kafka_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/test_util.h"
#include "log/event_log_conformance.h"
#include "log/kafka_mock_cluster.h"

namespace clicklake::log {
namespace {

using testing::ConformanceParam;
using testing::EventLogConformanceTest;
using testing::LogUnderTest;

std::string UniqueTopic(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

class KafkaUnderTest final : public LogUnderTest {
 public:
  KafkaUnderTest() {
    auto c = KafkaMockCluster::Start(1);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(c).value();
    topic_ = UniqueTopic("conformance");
    EXPECT_OK(cluster_->CreateTopic(topic_, 8));
  }
  Result<std::unique_ptr<EventLog>> Open(const std::map<std::string, std::string>& settings) override {
    Config config;
    config.Set("log.kind", "kafka");
    config.Set("log.brokers", cluster_->bootstraps());
    config.Set("log.topic", topic_);
    config.Set("log.partitions", "8");
    config.Set("log.linger_ms", "1");
    for (const auto& [k, v] : settings) config.Set(k, v);
    return OpenEventLog(config);
  }
  bool enforces_retention() const override { return false; }

 private:
  std::unique_ptr<KafkaMockCluster> cluster_;
  std::string topic_;
};

INSTANTIATE_TEST_SUITE_P(Kafka, EventLogConformanceTest,
                         ::testing::Values(ConformanceParam{
                             "kafka", [] { return std::unique_ptr<LogUnderTest>(new KafkaUnderTest()); }}),
                         [](const auto& info) { return info.param.name; });

class KafkaLogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(cluster_, KafkaMockCluster::Start(1)); }
  KafkaLogOptions Options(const std::string& topic, int partitions) {
    KafkaLogOptions o;
    o.brokers = cluster_->bootstraps();
    o.topic = topic;
    o.num_partitions = partitions;
    o.linger_ms = 1;
    return o;
  }
  std::unique_ptr<KafkaMockCluster> cluster_;
};

TEST_F(KafkaLogTest, WrongPartitionCountIsRefused) {
  ASSERT_OK(cluster_->CreateTopic("three", 3));
  EXPECT_STATUS(OpenKafkaLog(Options("three", 4)), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto log, OpenKafkaLog(Options("three", 3)));
  EXPECT_EQ(log->num_partitions(), 3);
}

TEST_F(KafkaLogTest, BrokerDownBuffersThenFailsFastThenDeliversEverything) {
  const std::string topic = UniqueTopic("outage");
  ASSERT_OK(cluster_->CreateTopic(topic, 4));
  KafkaLogOptions o = Options(topic, 4);
  o.max_pending_bytes = 64 << 10;
  ASSERT_OK_AND_ASSIGN(auto log, OpenKafkaLog(o));
  ASSERT_OK(log->Append({{"warm", "up"}}));

  ASSERT_OK(cluster_->SetBrokerDown(1));
  std::mutex mu;
  std::map<std::string, Status> results;  // key of the first record -> callback status
  std::set<std::string> rejected;
  const std::string value(1000, 'o');
  int calls = 0;
  for (; calls < 1000 && rejected.empty(); ++calls) {
    std::string key = "down-" + std::to_string(calls);
    log->AppendAsync({{key, value}, {key + "-b", value}}, [&, key](Status s) {
      std::lock_guard l(mu);
      if (s.code() == StatusCode::kUnavailable && results.count(key) == 0 && !s.message().empty() &&
          s.message().find("buffer is full") != std::string::npos) {
        rejected.insert(key);
      } else {
        results[key] = s;
      }
    });
  }
  {
    std::lock_guard l(mu);
    ASSERT_EQ(rejected.size(), 1u) << "the bounded buffer never filled while the broker was down";
    EXPECT_TRUE(results.empty()) << "an append completed while its broker was down";
  }
  const int accepted = calls - 1;
  EXPECT_GT(accepted, 10);  // it buffered before refusing
  // Still refused while down (as large as the append that was refused).
  EXPECT_STATUS(log->Append({{"refused", value}, {"refused-b", value}, {"refused-c", value}}), kUnavailable);

  ASSERT_OK(cluster_->SetBrokerUp(1));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    {
      std::lock_guard l(mu);
      if (static_cast<int>(results.size()) == accepted) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "appends not acknowledged after the broker returned";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::set<std::string> acked;
  {
    std::lock_guard l(mu);
    for (const auto& [key, s] : results) {
      EXPECT_OK(s);
      if (s.ok()) {
        acked.insert(key);
        acked.insert(key + "-b");
      }
    }
  }
  ASSERT_OK(log->Append({{"after", "recovery"}}));
  // Every acknowledged record is in the topic exactly once (idempotent producer).
  std::multiset<std::string> seen;
  for (int32_t p = 0; p < 4; ++p) {
    ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
    for (int64_t off = info.start_offset; off < info.end_offset;) {
      ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, off, 500, 1 << 20));
      ASSERT_FALSE(recs.empty());
      for (const auto& r : recs) seen.insert(r.key);
      off = recs.back().offset + 1;
    }
  }
  for (const auto& k : acked) EXPECT_EQ(seen.count(k), 1u) << k;
  EXPECT_EQ(seen.count("after"), 1u);
  ASSERT_OK(log->Close());
}

// ---------------------------------------------------------------------------
// kcat interop

std::string FindKcat() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string candidate = dir + "/kcat";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string RunAndCapture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  int rc = ::pclose(f);
  EXPECT_EQ(rc, 0) << "command failed: " << cmd;
  return out;
}

TEST_F(KafkaLogTest, KcatReadsWhatClicklakeProducedAndViceVersa) {
  const std::string kcat = FindKcat();
  ASSERT_FALSE(kcat.empty()) << "kcat is not installed: run scripts/setup (it installs the Debian package kcat)";

  // clicklake -> kcat
  const std::string out_topic = UniqueTopic("to-kcat");
  ASSERT_OK(cluster_->CreateTopic(out_topic, 4));
  ASSERT_OK_AND_ASSIGN(auto log, OpenKafkaLog(Options(out_topic, 4)));
  std::map<std::string, std::string> produced;
  std::vector<LogEntry> entries;
  for (int i = 0; i < 50; ++i) {
    std::string key = "user-" + std::to_string(i);
    std::string value = "{\"event\":\"page\",\"n\":" + std::to_string(i) + "}";
    produced[key] = value;
    entries.push_back({key, value});
  }
  ASSERT_OK(log->Append(entries));
  std::string text = RunAndCapture(kcat + " -b " + cluster_->bootstraps() + " -C -t " + out_topic +
                                   " -o beginning -e -q -f '%p %k %s\\n' 2>&1");
  std::map<std::string, std::string> consumed;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    int partition = -1;
    std::string key, value;
    fields >> partition >> key;
    std::getline(fields, value);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    EXPECT_EQ(partition, PartitionForKey(key, 4)) << line;
    consumed[key] = value;
  }
  EXPECT_EQ(consumed, produced) << "kcat output:\n" << text;

  // kcat -> clicklake
  const std::string in_topic = UniqueTopic("from-kcat");
  ASSERT_OK(cluster_->CreateTopic(in_topic, 4));
  {
    std::string cmd = kcat + " -b " + cluster_->bootstraps() + " -P -t " + in_topic + " -p 2 -K: -q";
    FILE* f = ::popen(cmd.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 30; ++i) std::fprintf(f, "kkey-%d:{\"i\":%d}\n", i, i);
    ASSERT_EQ(::pclose(f), 0) << cmd;
  }
  ASSERT_OK_AND_ASSIGN(auto in_log, OpenKafkaLog(Options(in_topic, 4)));
  ASSERT_OK_AND_ASSIGN(PartitionInfo info, in_log->GetPartitionInfo(2));
  ASSERT_EQ(info.end_offset, 30);
  ASSERT_OK_AND_ASSIGN(auto recs, in_log->Read(2, 0, 100, 1 << 20));
  ASSERT_EQ(recs.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(recs[i].offset, i);
    EXPECT_EQ(recs[i].key, "kkey-" + std::to_string(i));
    EXPECT_EQ(recs[i].value, "{\"i\":" + std::to_string(i) + "}");
  }
}

}  // namespace
}  // namespace clicklake::log
