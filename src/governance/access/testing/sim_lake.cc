#include "governance/access/testing/sim_lake.h"

#include "common/config.h"
#include "common/file_system.h"
#include "common/raw_event.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "simulate/simulator.h"

namespace clicklake::access::testing {

Status BuildSimulatedLake(const std::string& lake_dir, const std::string& work_dir, const std::string& key_file,
                          int batches, int users) {
  Config log_config;
  log_config.Set("log.dir", JoinPath(work_dir, "log"));
  log_config.Set("log.partitions", "2");
  ASSIGN_OR_RETURN(auto log, log::OpenEventLog(log_config));
  simulate::SimulatorOptions so;
  so.users = users;
  so.seed = 17;
  so.start_time_us = 1714550400000000LL;  // 2024-05-01
  so.pii_rate = 0.05;
  simulate::TrafficGenerator gen(so);
  for (int b = 0; b < batches; b++) {
    simulate::GeneratedBatch batch = gen.NextBatch();
    const int64_t sent = batch.DefaultSentAtMicros();
    std::vector<log::LogEntry> entries;
    for (const auto& e : batch.events) {
      RawEvent raw;
      raw.received_at_us = sent + 80000;
      raw.source = "web";
      raw.protocol = "segment";
      static const char* kIps[] = {"8.8.8.8", "81.2.69.160", "5.9.0.1", "200.160.2.3", "1.1.1.1"};
      raw.client_ip = kIps[(b + entries.size()) % 5];
      raw.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      raw.payload = batch.EventPayload(e, sent);
      log::LogEntry entry;
      entry.key = "k" + std::to_string(b % 2);
      EncodeRawEvent(raw, &entry.value);
      entries.push_back(std::move(entry));
    }
    RETURN_IF_ERROR(log->Append(std::move(entries)));
  }
  pipeline::PipelineOptions options;
  options.lake_dir = lake_dir;
  options.config.Set("privacy.key_file", key_file);
  options.config.Set("silver.quarantine_min_batch", "1000000");
  options.compaction = false;
  options.engine_threads = 2;
  ASSIGN_OR_RETURN(auto runner, pipeline::MicroBatchRunner::Create(options, log.get()));
  RETURN_IF_ERROR(runner->Drain());
  return log->Close();
}

}  // namespace clicklake::access::testing
