// EventLog: the durable, partitioned log between the collector and the processor.
//
// The collector appends events; an append is acknowledged (its callback runs
// with OK) only once the records are durable by the log's configured durability.
// The processor reads partitions from offsets, and after committing a
// micro-batch to Delta records its consumer-group offsets here (the Delta log is
// the source of truth on restart; the group offsets serve lag reporting and
// retention).
//
// Offsets are per partition, dense, starting at 0, and never reused. Records of
// one partition are read back in append order. Partitioning: with
// log.partition_by = "key" (the default; KafkaLog always) every record goes to the partition
// of its key (PartitionFor); with "append" (LocalLog only) the records of
// one AppendAsync call stay together in the partition of its first record's key,
// so one call costs one durable write. Either way placement is a function of the
// call's keys (an identical retry lands where its first attempt did), a call
// whose records share a key lands in PartitionFor(key), and a key's records keep
// their append order within each partition.
//
// Implementations: LocalLog (segment files under a directory; the embedded
// default) and KafkaLog (librdkafka). Open them with OpenEventLog().
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"

namespace clicklake::log {

// One record to append. `key` chooses the partition (hash of the user identity).
struct LogEntry {
  std::string key;
  std::string value;
};

// One record read back.
struct LogRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // when the log stored it
  std::string key;
  std::string value;
};

struct PartitionInfo {
  int32_t partition = 0;
  int64_t start_offset = 0;  // oldest offset still retained
  int64_t end_offset = 0;    // next offset to be written
};

// Called once per AppendAsync, from a log thread, when the whole batch is durable
// (OK) or has failed (Unavailable when the log is overloaded or its backend is
// down; IOError on a storage fault). Must not block (nor call Close()).
// A failure known at once (overloaded: the bounded buffer is full; closed;
// invalid) is reported inline, on the caller's thread, before AppendAsync
// returns, so a caller must not hold a lock its callback takes. A call whose
// entries span partitions may fail in one partition and succeed in another; the
// callback then gets the error (a retry may duplicate the others, which the
// processor's event_id dedup absorbs).
using AppendCallback = std::function<void(Status)>;

class EventLog {
 public:
  virtual ~EventLog() = default;

  virtual int32_t num_partitions() const = 0;
  // The partition a key maps to (stable across restarts and implementations).
  virtual int32_t PartitionFor(std::string_view key) const = 0;

  // Appends entries; `done` runs once all of them are durable or one failed.
  // Entries of one call may land in several partitions (log.partition_by = "key").
  virtual void AppendAsync(std::vector<LogEntry> entries, AppendCallback done) = 0;
  // Blocking convenience wrapper around AppendAsync.
  Status Append(std::vector<LogEntry> entries);

  // Up to max_records / about max_bytes records of `partition` from `offset`
  // (inclusive). Empty when offset == end offset. OutOfRange-like requests (below
  // the retained start) return InvalidArgument.
  virtual Result<std::vector<LogRecord>> Read(int32_t partition, int64_t offset, size_t max_records,
                                              size_t max_bytes) = 0;
  virtual Result<PartitionInfo> GetPartitionInfo(int32_t partition) = 0;

  // Consumer-group offsets: the next offset the group will read, per partition.
  virtual Status CommitOffsets(const std::string& group, const std::map<int32_t, int64_t>& next_offsets) = 0;
  virtual Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string& group) = 0;

  // Lag of a consumer group per partition: end offset - committed offset (a
  // partition the group never committed counts from the retained start).
  // Implemented on top of GetPartitionInfo + CommittedOffsets.
  Result<std::map<int32_t, int64_t>> Lag(const std::string& group);

  // Applies retention (age/size); returns after deleting what it may.
  virtual Status EnforceRetention() = 0;

  // Waits for in-flight appends and releases resources. Idempotent.
  virtual Status Close() = 0;
};

// The partition for a key: a stable hash (the same for every implementation).
int32_t PartitionForKey(std::string_view key, int32_t num_partitions);

// Opens the log configured in `config` ("log.kind" = "local" | "kafka").
// The local log lives in <lake>/_clicklake/log unless "log.dir" says otherwise.
//
// Settings (defaults in brackets):
//   log.kind ["local"], log.partitions [8]
//   local: log.dir, log.durability ["fsync" | "none"], log.partition_by ["key" | "append"],
//          log.segment_bytes [64 MiB], log.preallocate_bytes [4 MiB; 0 = off],
//          log.retention_hours [168], log.retention_bytes [-1 = unlimited, per partition],
//          log.max_pending_bytes [64 MiB: beyond it AppendAsync fails with Unavailable]
//   kafka: log.brokers ["127.0.0.1:9092"], log.topic ["clicklake-events"],
//          log.group_prefix [""], log.max_pending_bytes [64 MiB], log.linger_ms [5]
// `fs` and `clock` are used by the local log only.
Result<std::unique_ptr<EventLog>> OpenEventLog(const Config& config, FileSystem* fs = FileSystem::Default(),
                                               Clock* clock = SystemClock());

}  // namespace clicklake::log
