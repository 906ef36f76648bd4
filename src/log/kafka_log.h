// KafkaLog: the EventLog on a Kafka topic, through librdkafka's C API.
//
// Producer: idempotent (acks=all, no reordering or duplicates on retry), zstd,
// batched (linger.ms, batch.size). Each record goes to the partition
// PartitionForKey(key) gives, so the key -> partition mapping is the same as the
// local log's. librdkafka's delivery reports drive the AppendAsync callbacks.
// Appends not yet delivered are bounded by log.max_pending_bytes: beyond it
// AppendAsync fails fast with Unavailable (the collector answers 503 +
// Retry-After), e.g. while the brokers are down.
//
// Consumer: one reader handle with explicit per-partition fetch (no group
// membership, no rebalancing); Read() restarts the fetch only when asked for an
// offset other than where the previous Read stopped. Committed offsets are Kafka
// group offsets (OffsetCommit of group "<log.group_prefix><group>"), written by
// the processor after its Delta commit. They serve lag reporting and tooling:
// on restart the offsets recorded in the Delta log are the source of truth.
//
// Retention is the brokers' (retention.ms / retention.bytes of the topic);
// EnforceRetention() does nothing. The topic must exist with log.partitions
// partitions (clicklake does not create it).
//
// Only src/log includes rdkafka.h. Ownership: OpenKafkaLog returns the log.
// Thread safety: all EventLog methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/config.h"
#include "log/event_log.h"

namespace clicklake::log {

struct KafkaLogOptions {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "clicklake-events";
  int32_t num_partitions = 8;
  std::string group_prefix;
  // Appends queued in the producer and not yet acknowledged by the brokers.
  uint64_t max_pending_bytes = 64ull << 20;
  int linger_ms = 5;
  // How long the producer retries one message before failing its append.
  int message_timeout_ms = 300000;
  // How long Read / metadata / offset requests wait for the brokers.
  int request_timeout_ms = 10000;
};

Result<KafkaLogOptions> KafkaLogOptionsFromConfig(const Config& config);

Result<std::unique_ptr<EventLog>> OpenKafkaLog(const KafkaLogOptions& options);

}  // namespace clicklake::log
