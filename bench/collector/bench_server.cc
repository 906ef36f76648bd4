// collector_bench_server: the collector with fsync-durable acks, for
// bench/collector/run.sh.
//
//   collector_bench_server --dir DIR [--log local|file] [--threads N] [--partitions N]
//
//   --log local  (default) the real embedded log: log::OpenEventLog with
//                log.kind=local, log.durability=fsync (one group commit round for all partitions).
//   --log file   a single file with group-commit fdatasync (FileEventLog), the
//                stand-in used before LocalLog existed.
//   --log null   acknowledges at once and stores nothing: the collector's own
//                ceiling (HTTP + parsing + encoding), for profiling only.
//   --durability fsync|none  for --log local (default fsync).
//   --partition-by append|key  for --log local (default: the log's default, key).
//   --preallocate BYTES  log.preallocate_bytes for --log local (0 = off).
// Write key: "bench" (source "bench"). Prints "PORT <n>"; stops on SIGTERM/SIGINT.
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>

#include "collector/collector.h"
#include "collector/tests/file_event_log.h"
#include "log/event_log.h"

namespace {
int stop_pipe[2];
void OnSignal(int) {
  char c = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_pipe[1], &c, 1);
}
// Acknowledges every append at once; stores nothing.
class NullLog final : public clicklake::log::EventLog {
 public:
  int32_t num_partitions() const override { return 1; }
  int32_t PartitionFor(std::string_view) const override { return 0; }
  void AppendAsync(std::vector<clicklake::log::LogEntry>, clicklake::log::AppendCallback done) override {
    done(clicklake::Status::OK());
  }
  clicklake::Result<std::vector<clicklake::log::LogRecord>> Read(int32_t, int64_t, size_t, size_t) override {
    return clicklake::Status::Unsupported("null log");
  }
  clicklake::Result<clicklake::log::PartitionInfo> GetPartitionInfo(int32_t) override {
    return clicklake::Status::Unsupported("null log");
  }
  clicklake::Status CommitOffsets(const std::string&, const std::map<int32_t, int64_t>&) override {
    return clicklake::Status::OK();
  }
  clicklake::Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string&) override {
    return std::map<int32_t, int64_t>{};
  }
  clicklake::Status EnforceRetention() override { return clicklake::Status::OK(); }
  clicklake::Status Close() override { return clicklake::Status::OK(); }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace clicklake;
  std::string dir, kind = "local", threads = "2", partitions = "", durability = "fsync", partition_by = "",
              preallocate = "";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--dir")
      dir = v;
    else if (a == "--log")
      kind = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--partitions")
      partitions = v;
    else if (a == "--port")
      port = std::stoi(v);
    else if (a == "--durability")
      durability = v;
    else if (a == "--partition-by")
      partition_by = v;
    else if (a == "--preallocate")
      preallocate = v;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  if (dir.empty()) {
    std::cerr << "usage: collector_bench_server --dir DIR [--log local|file] [--threads N] [--partitions N]\n";
    return 2;
  }
  std::unique_ptr<log::EventLog> log;
  if (kind == "local") {
    Config lc;
    lc.Set("log.kind", "local");
    lc.Set("log.dir", dir + "/log");
    lc.Set("log.durability", durability);
    if (!partitions.empty()) lc.Set("log.partitions", partitions);
    if (!partition_by.empty()) lc.Set("log.partition_by", partition_by);
    if (!preallocate.empty()) lc.Set("log.preallocate_bytes", preallocate);
    auto opened = log::OpenEventLog(lc);
    if (!opened.ok()) {
      std::cerr << opened.status() << "\n";
      return 1;
    }
    log = std::move(opened).value();
  } else if (kind == "file") {
    auto opened =
        collector::testing::FileEventLog::Open(dir + "/events.bin", collector::testing::FileEventLog::Format::kBinary);
    if (!opened.ok()) {
      std::cerr << opened.status() << "\n";
      return 1;
    }
    log = std::move(opened).value();
  } else if (kind == "null") {
    log = std::make_unique<NullLog>();
  } else {
    std::cerr << "--log must be local, file or null\n";
    return 2;
  }
  Config config;
  config.Set("collector.port", std::to_string(port));
  config.Set("collector.threads", threads);
  config.Set("collector.write_keys.bench", "bench");
  auto c = collector::Collector::Create(config, log.get());
  if (!c.ok()) {
    std::cerr << c.status() << "\n";
    return 1;
  }
  Status s = (*c)->Start();
  if (!s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  if (::pipe(stop_pipe) != 0) return 1;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::cout << "PORT " << (*c)->port() << std::endl;
  pollfd p{stop_pipe[0], POLLIN, 0};
  while (::poll(&p, 1, -1) <= 0) {
  }
  s = (*c)->Stop();
  Status closed = log->Close();
  return s.ok() && closed.ok() ? 0 : 1;
}
