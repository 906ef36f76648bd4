// collector_e2e_server: runs the Collector on an ephemeral loopback port with a
// file-backed log (one JSON line per stored event, fsynced before the ack), for
// the end-to-end tests with real tracker SDKs (tests/e2e/collector_*.mjs).
//
//   collector_e2e_server --out FILE [--write-key KEY=SOURCE]... [--set collector.KEY=VALUE]...
//
// Prints "PORT <n>" on stdout once listening; stops cleanly (draining) on
// SIGTERM/SIGINT or when stdin closes.
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "collector/collector.h"
#include "collector/tests/file_event_log.h"

namespace {

int stop_pipe[2];

void OnSignal(int) {
  char c = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_pipe[1], &c, 1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clicklake;
  std::string out;
  Config config;
  config.Set("collector.port", "0");
  config.Set("collector.host", "127.0.0.1");
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--out") {
      out = value;
      ++i;
    } else if (arg == "--write-key") {
      size_t eq = value.find('=');
      config.Set("collector.write_keys." + value.substr(0, eq),
                 eq == std::string::npos ? "default" : value.substr(eq + 1));
      ++i;
    } else if (arg == "--set") {
      size_t eq = value.find('=');
      config.Set(value.substr(0, eq), value.substr(eq + 1));
      ++i;
    } else {
      std::cerr << "unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (out.empty()) {
    std::cerr << "usage: collector_e2e_server --out FILE [--write-key KEY=SOURCE]... [--set key=value]...\n";
    return 2;
  }
  auto log = collector::testing::FileEventLog::Open(out, collector::testing::FileEventLog::Format::kJsonLines);
  if (!log.ok()) {
    std::cerr << log.status() << "\n";
    return 1;
  }
  auto c = collector::Collector::Create(config, log->get());
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
  // Wait for a signal or stdin EOF.
  pollfd fds[2] = {{stop_pipe[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
  while (true) {
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents) break;
    if (fds[1].revents) {
      char buf[256];
      if (::read(STDIN_FILENO, buf, sizeof(buf)) <= 0) break;
    }
  }
  s = (*c)->Stop();
  Status closed = (*log)->Close();
  return s.ok() && closed.ok() ? 0 : 1;
}
