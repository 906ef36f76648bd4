#include "log/event_log.h"

#include <future>

#include "log/kafka_log.h"
#include "log/local_log.h"

namespace clicklake::log {

Status EventLog::Append(std::vector<LogEntry> entries) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  AppendAsync(std::move(entries), [promise](Status s) { promise->set_value(std::move(s)); });
  return future.get();
}

Result<std::map<int32_t, int64_t>> EventLog::Lag(const std::string& group) {
  ASSIGN_OR_RETURN(auto committed, CommittedOffsets(group));
  std::map<int32_t, int64_t> lag;
  for (int32_t p = 0; p < num_partitions(); ++p) {
    ASSIGN_OR_RETURN(PartitionInfo info, GetPartitionInfo(p));
    auto it = committed.find(p);
    int64_t from = it == committed.end() ? info.start_offset : std::max(it->second, info.start_offset);
    lag[p] = std::max<int64_t>(0, info.end_offset - from);
  }
  return lag;
}

int32_t PartitionForKey(std::string_view key, int32_t num_partitions) {
  if (num_partitions <= 1) return 0;
  // FNV-1a 64: stable across platforms, releases and implementations.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return static_cast<int32_t>(h % static_cast<uint64_t>(num_partitions));
}

Result<std::unique_ptr<EventLog>> OpenEventLog(const Config& config, FileSystem* fs, Clock* clock) {
  std::string kind = config.GetString("log.kind", "local");
  if (kind == "local") {
    ASSIGN_OR_RETURN(LocalLogOptions options, LocalLogOptionsFromConfig(config));
    return OpenLocalLog(options, fs, clock);
  }
  if (kind == "kafka") {
    ASSIGN_OR_RETURN(KafkaLogOptions options, KafkaLogOptionsFromConfig(config));
    return OpenKafkaLog(options);
  }
  return Status::InvalidArgument("log.kind must be \"local\" or \"kafka\", got \"" + kind + "\"");
}

}  // namespace clicklake::log
