// log_crash_helper: appends to a LocalLog under load until it is killed.
//
//   log_crash_helper <log-dir> <key-prefix>
//
// Prints "<key>\n" on stdout for every record whose append was acknowledged
// (durable). log_crash_test kills it with SIGKILL at a random moment and checks
// the acknowledged records against what recovery finds.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "log/local_log.h"
#include "log/log_crash_common.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <log-dir> <key-prefix>\n", argv[0]);
    return 2;
  }
  clicklake::log::LocalLogOptions options;
  options.dir = argv[1];
  options.num_partitions = 4;
  options.segment_bytes = 1 << 20;  // roll now and then
  auto log = clicklake::log::OpenLocalLog(options, clicklake::FileSystem::Default(), clicklake::SystemClock());
  if (!log.ok()) {
    std::fprintf(stderr, "open: %s\n", log.status().ToString().c_str());
    return 1;
  }
  std::mutex out_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t seq = 0;; seq += 16) {
        std::vector<clicklake::log::LogEntry> batch;
        std::string lines;
        int n = 1 + static_cast<int>((seq / 16 * 7 + t) % 16);
        for (int j = 0; j < n; ++j) {
          std::string key = std::string(argv[2]) + "-" + std::to_string(t) + "-" + std::to_string(seq + j);
          batch.push_back({key, clicklake::log::CrashTestValue(key)});
          lines += key + "\n";
        }
        clicklake::Status s = (*log)->Append(std::move(batch));
        if (!s.ok()) {
          std::fprintf(stderr, "append: %s\n", s.ToString().c_str());
          std::_Exit(1);
        }
        std::lock_guard l(out_mu);
        const char* p = lines.data();
        size_t left = lines.size();
        while (left > 0) {
          ssize_t w = ::write(1, p, left);
          if (w <= 0) std::_Exit(1);
          p += w;
          left -= static_cast<size_t>(w);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
