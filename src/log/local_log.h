// LocalLog: the embedded EventLog, partitioned segment files on a FileSystem.
//
// Layout under `dir`:
//   META                        "clicklake-log v1 partitions=N" (a reopen must agree)
//   partition-0003/00000000000000001234.log   segment: record frames (record_format.h)
//   partition-0003/00000000000000001234.idx   sparse index of a sealed segment (rebuildable)
//   groups/<group>.offsets      committed consumer-group offsets
//
// One committer thread does group commit for all partitions: it takes every
// queued append, encodes each partition's records of the round into one chunk,
// writes all chunks in parallel and makes them durable (segment_file.h:
// preallocated segments, O_DIRECT, Linux AIO with RWF_DSYNC; one append +
// fdatasync per partition where that is unavailable), then runs the callbacks.
// Readers see only records whose round completed (durable in "fsync" mode), so
// a read never returns a record that a crash could take back. On open, the last
// segment of each partition is scanned and a torn or corrupt tail (or a
// preallocated zero tail) is truncated.
//
// Ownership: OpenLocalLog returns the log; `fs` and `clock` must outlive it.
// Thread safety: all EventLog methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "log/event_log.h"

namespace clicklake::log {

struct LocalLogOptions {
  std::string dir;
  int32_t num_partitions = 8;
  // true: acknowledge after fdatasync ("fsync"); false: after write ("none").
  bool fsync = true;
  // true ("append"): the records of one AppendAsync call stay together in the
  // partition of its first record's key. false ("key", the default): every
  // record goes to the partition of its own key. Either way a call waits for
  // one commit round (all partitions commit together).
  bool keep_calls_together = false;
  uint64_t segment_bytes = 64ull << 20;
  // The active segment is zero-filled this far ahead of its records (on the
  // POSIX file system; see segment_file.h), so a commit's sync writes data
  // only. 0 turns it off, and with it O_DIRECT and the parallel AIO writes.
  uint64_t preallocate_bytes = 4ull << 20;
  int64_t retention_ms = 168LL * 3600 * 1000;
  int64_t retention_bytes = -1;  // per partition; < 0 means unlimited
  // Appends queued but not yet durable, over all partitions; beyond it
  // AppendAsync fails fast with Unavailable.
  uint64_t max_pending_bytes = 64ull << 20;
  // Bytes of one commit round at most, over all partitions (bounds the chunk buffers).
  uint64_t max_batch_bytes = 8ull << 20;
  // One sparse-index entry per this many segment bytes: a Read from an
  // arbitrary offset scans at most this much extra; the index costs 16 bytes
  // of memory per entry (0.025% of the retained bytes at 64 KiB).
  uint32_t index_interval_bytes = 64u << 10;
};

// Reads the log.* settings (see event_log.h) into options.
Result<LocalLogOptions> LocalLogOptionsFromConfig(const Config& config);

Result<std::unique_ptr<EventLog>> OpenLocalLog(const LocalLogOptions& options, FileSystem* fs, Clock* clock);

}  // namespace clicklake::log
