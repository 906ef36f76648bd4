// process_bench_prepare: fills a lake's embedded event log with N simulated Segment
// events (TrafficGenerator, with duplicates, late, out-of-order, malformed and PII
// faults) as the collector would (sentAt merged, one RawEvent per event), and
// writes the same payloads as newline-delimited JSON for the DuckDB scripts:
// NDJSON_OUT holds the payloads (pipeline.sql); ENVELOPES_OUT, when given, one
// object per event with what the log holds besides the payload (received_at_us,
// source, protocol, client_ip, user_agent) and the payload as a nested object
// (bronze_silver.sql).
//
// usage: process_bench_prepare LAKE_DIR EVENTS NDJSON_OUT [ENVELOPES_OUT]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/raw_event.h"
#include "log/event_log.h"
#include "simulate/simulator.h"

int main(int argc, char** argv) {
  using namespace clicklake;
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: process_bench_prepare LAKE_DIR EVENTS NDJSON_OUT [ENVELOPES_OUT]\n";
    return 2;
  }
  const std::string lake = argv[1];
  const int64_t want = std::atoll(argv[2]);
  Config config;
  config.Set("lake.dir", lake);
  auto log = log::OpenEventLog(config);
  if (!log.ok()) {
    std::cerr << "opening the log: " << log.status().ToString() << "\n";
    return 1;
  }
  std::ofstream ndjson(argv[3], std::ios::binary);
  std::ofstream envelopes;
  if (argc == 5) envelopes.open(argv[4], std::ios::binary);
  simulate::SimulatorOptions so;
  so.users = 20000;
  so.seed = 42;
  so.start_time_us = 1714550400000000LL;
  so.duplicate_rate = 0.02;
  so.late_rate = 0.01;
  so.out_of_order_rate = 0.02;
  so.malformed_rate = 0.005;
  so.pii_rate = 0.01;
  so.rate = 5000;
  simulate::TrafficGenerator gen(so);
  int64_t written = 0;
  std::vector<log::LogEntry> entries;
  std::string line;
  while (written < want) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    const int64_t sent = batch.DefaultSentAtMicros();
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      raw.client_ip = "203.0.113." + std::to_string(written % 250 + 1);
      raw.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      raw.payload = batch.EventPayload(e, sent);  // the collector's merge
      ndjson << raw.payload << '\n';
      if (envelopes.is_open()) {
        // The generator's IPs and the user agent need no JSON escaping.
        envelopes << "{\"received_at_us\":" << raw.received_at_us << ",\"source\":\"" << raw.source
                  << "\",\"protocol\":\"" << raw.protocol << "\",\"client_ip\":\"" << raw.client_ip
                  << "\",\"user_agent\":\"" << raw.user_agent << "\",\"payload\":" << raw.payload << "}\n";
      }
      log::LogEntry entry;
      entry.key = e.message_id;
      EncodeRawEvent(raw, &entry.value);
      entries.push_back(std::move(entry));
      written++;
    }
    if (entries.size() >= 20000) {
      if (auto s = (*log)->Append(std::move(entries)); !s.ok()) {
        std::cerr << "append: " << s.ToString() << "\n";
        return 1;
      }
      entries.clear();
    }
  }
  if (!entries.empty()) {
    if (auto s = (*log)->Append(std::move(entries)); !s.ok()) {
      std::cerr << "append: " << s.ToString() << "\n";
      return 1;
    }
  }
  if (auto s = (*log)->Close(); !s.ok()) {
    std::cerr << "close: " << s.ToString() << "\n";
    return 1;
  }
  std::cout << written << "\n";
  return 0;
}
