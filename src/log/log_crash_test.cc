// Kill -9 test: a helper process appends under load and prints each acknowledged
// key; it is killed with SIGKILL at a random moment; after recovery every
// acknowledged record must be present exactly once with intact content.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "common/test_util.h"
#include "log/local_log.h"
#include "log/log_crash_common.h"

namespace clicklake::log {
namespace {

// Runs the helper for `run_ms`, kills it, and returns the keys it acknowledged
// (complete lines only).
std::vector<std::string> RunAndKill(const std::string& dir, const std::string& prefix, int run_ms) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(LOG_CRASH_HELPER, LOG_CRASH_HELPER, dir.c_str(), prefix.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  std::thread reader([&] {
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(run_ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  reader.join();
  ::close(fds[0]);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the helper exited on its own (status " << status << "): see its stderr";
  std::vector<std::string> keys;
  size_t pos = 0;
  for (;;) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) break;  // a partial last line is ignored
    keys.push_back(out.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return keys;
}

TEST(LogCrashTest, KillNineLosesNoAcknowledgedRecord) {
  auto test_start = std::chrono::steady_clock::now();
  clicklake::testing::TempDir dir;
  std::mt19937 rng(std::random_device{}());
  std::set<std::string> acked;
  size_t total_records = 0;
  for (int round = 0; round < 6; ++round) {
    int run_ms = 200 + static_cast<int>(rng() % 800);
    auto t0 = std::chrono::steady_clock::now();
    auto keys = RunAndKill(dir.path(), "r" + std::to_string(round), run_ms);
    auto t1 = std::chrono::steady_clock::now();
    EXPECT_GT(keys.size(), 0u) << "round " << round << ": nothing was acknowledged in " << run_ms << " ms";
    acked.insert(keys.begin(), keys.end());

    LocalLogOptions options;
    options.dir = dir.path();
    options.num_partitions = 4;
    options.segment_bytes = 1 << 20;
    ASSERT_OK_AND_ASSIGN(auto log, OpenLocalLog(options, FileSystem::Default(), SystemClock()));
    std::set<std::string> seen;
    for (int32_t p = 0; p < log->num_partitions(); ++p) {
      ASSERT_OK_AND_ASSIGN(PartitionInfo info, log->GetPartitionInfo(p));
      int64_t off = info.start_offset;
      while (off < info.end_offset) {
        ASSERT_OK_AND_ASSIGN(auto recs, log->Read(p, off, 5000, 4 << 20));
        ASSERT_FALSE(recs.empty());
        for (const auto& r : recs) {
          ASSERT_EQ(r.offset, off) << "offsets must be dense";
          ASSERT_EQ(r.value, CrashTestValue(r.key)) << "damaged record at " << p << "/" << r.offset;
          ASSERT_TRUE(seen.insert(r.key).second) << "record " << r.key << " is present twice";
          ++off;
        }
      }
    }
    size_t missing = 0;
    for (const auto& k : acked) missing += seen.count(k) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "round " << round << ": acknowledged records lost";
    total_records = seen.size();
    ASSERT_OK(log->Close());
    auto t2 = std::chrono::steady_clock::now();
    std::printf(
        "round %d: ran %d ms (%lld ms with start-up), %zu acknowledged, %zu records in the log, "
        "recovered + verified in %lld ms\n",
        round, run_ms, static_cast<long long>((t1 - t0) / std::chrono::milliseconds(1)), keys.size(), total_records,
        static_cast<long long>((t2 - t1) / std::chrono::milliseconds(1)));
    std::fflush(stdout);
  }
  std::printf("rounds done after %lld ms\n",
              static_cast<long long>((std::chrono::steady_clock::now() - test_start) / std::chrono::milliseconds(1)));
}

}  // namespace
}  // namespace clicklake::log
