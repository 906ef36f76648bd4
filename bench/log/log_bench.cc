// log_bench: LocalLog append and read throughput against the device's ceiling.
//
// Measures, in one run on the same file system:
//   1. ceiling  - the same bytes the log writes (framed records), written
//                 sequentially to one file in 1 MiB writes with ONE fdatasync at the end;
//   2. append   - LocalLog with durability "fsync" (group commit), many concurrent
//                 appenders, each AppendAsync acknowledged only after its fsync;
//   3. read     - sequential Read() of every partition from offset 0.
// and prints a table plus the append/ceiling ratio.
//
//   log_bench [--dir DIR] [--records N] [--value-bytes B] [--appenders T]
//             [--batch N] [--inflight-mb M] [--partitions P] [--read-passes K]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "common/metrics.h"
#include "log/local_log.h"
#include "log/record_format.h"

namespace {

using clicklake::FileSystem;
using clicklake::Status;
using namespace clicklake::log;

struct Args {
  std::string dir;
  int64_t records = 2'000'000;
  size_t value_bytes = 500;
  int appenders = 8;
  int batch = 20;  // a typical Segment batch: one collector request
  int64_t inflight_mb = 32;
  int partitions = 8;
  int read_passes = 3;
};

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "log_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

std::string KeyFor(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "user-%08lld", static_cast<long long>(i % 100000));
  return buf;
}

// The device ceiling: `bytes` written sequentially, one fdatasync at the end.
double CeilingSeconds(const std::string& path, uint64_t bytes) {
  auto file = FileSystem::Default()->NewWritableFile(path);
  if (!file.ok()) Die(file.status(), "create ceiling file");
  std::string chunk(1 << 20, 'c');
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t left = bytes; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    Status s = (*file)->Append(std::string_view(chunk).substr(0, n));
    if (!s.ok()) Die(s, "ceiling write");
    left -= n;
  }
  Status s = (*file)->Sync();
  if (!s.ok()) Die(s, "ceiling fdatasync");
  auto t1 = std::chrono::steady_clock::now();
  (*file)->Close().IgnoreError();
  FileSystem::Default()->DeleteFile(path).IgnoreError();
  return Seconds(t0, t1);
}

double AppendSeconds(EventLog* log, const Args& args) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t inflight_bytes = 0;  // GUARDED_BY(mu)
  std::atomic<int64_t> failures{0};
  const int64_t window = args.inflight_mb << 20;
  const std::string value(args.value_bytes, 'v');
  std::atomic<int64_t> next{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < args.appenders; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        int64_t first = next.fetch_add(args.batch);
        if (first >= args.records) break;
        int64_t n = std::min<int64_t>(args.batch, args.records - first);
        std::vector<LogEntry> entries;
        entries.reserve(static_cast<size_t>(n));
        int64_t bytes = 0;
        for (int64_t i = first; i < first + n; ++i) {
          entries.push_back({KeyFor(i), value});
          bytes += static_cast<int64_t>(FramedSize(entries.back().key.size(), value.size()));
        }
        {
          std::unique_lock l(mu);
          cv.wait(l, [&] { return inflight_bytes + bytes <= window || inflight_bytes == 0; });
          inflight_bytes += bytes;
        }
        log->AppendAsync(std::move(entries), [&, bytes](Status s) {
          if (!s.ok()) {
            failures++;
            std::fprintf(stderr, "append failed: %s\n", s.ToString().c_str());
          }
          {
            std::lock_guard l(mu);
            inflight_bytes -= bytes;
          }
          cv.notify_all();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return inflight_bytes == 0; });
  }
  auto t1 = std::chrono::steady_clock::now();
  if (failures.load() > 0) {
    std::fprintf(stderr, "log_bench: %lld appends failed\n", static_cast<long long>(failures.load()));
    std::exit(1);
  }
  return Seconds(t0, t1);
}

double ReadSeconds(EventLog* log, int64_t* records_out, uint64_t* bytes_out) {
  int64_t records = 0;
  uint64_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int32_t p = 0; p < log->num_partitions(); ++p) {
    auto info = log->GetPartitionInfo(p);
    if (!info.ok()) Die(info.status(), "partition info");
    for (int64_t off = info->start_offset; off < info->end_offset;) {
      auto recs = log->Read(p, off, 10000, 8 << 20);
      if (!recs.ok()) Die(recs.status(), "read");
      if (recs->empty()) break;
      for (const auto& r : *recs) bytes += r.key.size() + r.value.size();
      records += static_cast<int64_t>(recs->size());
      off = recs->back().offset + 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  *records_out = records;
  *bytes_out = bytes;
  return Seconds(t0, t1);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--dir")
      args.dir = v;
    else if (k == "--records")
      args.records = std::atoll(v);
    else if (k == "--value-bytes")
      args.value_bytes = static_cast<size_t>(std::atoll(v));
    else if (k == "--appenders")
      args.appenders = std::atoi(v);
    else if (k == "--batch")
      args.batch = std::atoi(v);
    else if (k == "--inflight-mb")
      args.inflight_mb = std::atoll(v);
    else if (k == "--partitions")
      args.partitions = std::atoi(v);
    else if (k == "--read-passes")
      args.read_passes = std::max(1, std::atoi(v));
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  bool own_dir = args.dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "clicklake-log-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return 1;
    args.dir = tmpl;
  }
  const uint64_t framed = FramedSize(KeyFor(0).size(), args.value_bytes);
  const uint64_t total_bytes = framed * static_cast<uint64_t>(args.records);

  std::printf(
      "log_bench: %lld records of %zu-byte values (%llu bytes framed), %d partitions, %d appenders x %d "
      "records per append, %lld MiB in flight, dir %s\n",
      static_cast<long long>(args.records), args.value_bytes, static_cast<unsigned long long>(framed), args.partitions,
      args.appenders, args.batch, static_cast<long long>(args.inflight_mb), args.dir.c_str());

  double ceil1 = CeilingSeconds(args.dir + "/ceiling.bin", total_bytes);

  LocalLogOptions options;
  options.dir = args.dir + "/log";
  options.num_partitions = args.partitions;
  options.fsync = true;
  options.max_pending_bytes = static_cast<uint64_t>(args.inflight_mb + 16) << 20;
  auto log = OpenLocalLog(options, FileSystem::Default(), clicklake::SystemClock());
  if (!log.ok()) Die(log.status(), "open log");
  double append_s = AppendSeconds(log->get(), args);
  // Reads: several full passes (the machine is shared); the median counts.
  int64_t read_records = 0;
  uint64_t read_bytes = 0;
  std::vector<double> passes;
  for (int i = 0; i < args.read_passes; ++i) passes.push_back(ReadSeconds(log->get(), &read_records, &read_bytes));
  std::vector<double> sorted = passes;
  std::sort(sorted.begin(), sorted.end());
  double read_s = sorted[sorted.size() / 2];
  (*log)->Close().IgnoreError();

  double ceil2 = CeilingSeconds(args.dir + "/ceiling.bin", total_bytes);
  double ceil = std::min(ceil1, ceil2);  // the better of the two ceiling runs

  const double mb = static_cast<double>(total_bytes) / 1e6;
  std::printf("\n%-34s %12s %12s %10s\n", "phase", "records/s", "MB/s", "seconds");
  std::printf("%-34s %12.0f %12.1f %10.3f\n", "ceiling: sequential + 1 fdatasync", args.records / ceil, mb / ceil,
              ceil);
  std::printf("%-34s %12s %12.1f %10.3f\n", "  (ceiling runs: before / after)", "", mb / ceil1, ceil1);
  std::printf("%-34s %12s %12.1f %10.3f\n", "", "", mb / ceil2, ceil2);
  std::printf("%-34s %12.0f %12.1f %10.3f\n", "LocalLog append (fsync, group)", args.records / append_s, mb / append_s,
              append_s);
  std::printf("%-34s %12.0f %12.1f %10.3f\n", "LocalLog read (sequential, median)", read_records / read_s,
              static_cast<double>(read_bytes) / 1e6 / read_s, read_s);
  for (size_t i = 0; i < passes.size(); ++i) {
    std::printf("%-34s %12.0f %12.1f %10.3f\n", ("  read pass " + std::to_string(i + 1)).c_str(),
                read_records / passes[i], static_cast<double>(read_bytes) / 1e6 / passes[i], passes[i]);
  }
  const int64_t fsyncs = clicklake::MetricsRegistry::Global()->GetCounter("clicklake_log_fsyncs_total", "")->value();
  const int64_t calls = (args.records + args.batch - 1) / args.batch;
  std::printf("\ngroup commit: %lld fdatasyncs for %lld AppendAsync calls (%.1f records per fdatasync)\n",
              static_cast<long long>(fsyncs), static_cast<long long>(calls),
              fsyncs > 0 ? static_cast<double>(args.records) / static_cast<double>(fsyncs) : 0.0);
  std::printf("append / ceiling ratio: %.2f (target >= 0.70)\n", ceil / append_s);
  std::printf("read records/s: %.0f (target >= 1000000)\n", read_records / read_s);
  if (read_records != args.records) {
    std::fprintf(stderr, "log_bench: read %lld records, expected %lld\n", static_cast<long long>(read_records),
                 static_cast<long long>(args.records));
    return 1;
  }
  if (own_dir) std::filesystem::remove_all(args.dir);
  return 0;
}
