// SegmentFile: a partition's handle on its active segment, used by the log's committer.
//
// Records are encoded straight into the file's chunk buffer (StartChunk,
// ExtendChunk) and the chunk is written at the logical end (Size()) by
// AppendChunk or, in parallel with other files, by SegmentCommitter. On the
// POSIX file system the chunk buffer is page-aligned and written with O_DIRECT
// (no copy into the page cache, nothing for fdatasync to write back), and the file
// keeps a zero-filled, synced stretch ahead of the logical end (preallocated by
// a background thread, see SegmentPreallocator), so a group commit overwrites
// blocks the file system has already allocated and sized, and fdatasync flushes
// data only instead of also committing the journal for a new size and new
// extents: 0.35 vs 0.71 ms for eight files committing 26 KB each in parallel on
// the benchmark VM (bench/collector/README.md). Readers never look past the
// logical size (Segment::size); recovery takes a zero tail as the end of the
// records. Seal() cuts the zero tail off durably, so a sealed segment is exactly
// its records.
//
// Any other FileSystem (the fault-injection one in tests) gets a plain
// append-only WritableFile: no preallocation, the same contract.
//
// Internal to src/log. Thread safety: everything but Preallocate belongs to the
// log's committer thread; Preallocate may run on another thread at the same time
// (it only ever writes zeros past everything the committer wrote).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "common/status.h"

namespace clicklake::log {

class SegmentFile {
 public:
  virtual ~SegmentFile() = default;
  // Starts an empty chunk (dropping any unwritten one).
  virtual void StartChunk() = 0;
  // Grows the chunk by n bytes and returns where they go (valid until the next call).
  virtual char* ExtendChunk(size_t n) = 0;
  // The chunk's bytes so far.
  virtual std::string_view chunk() const = 0;
  // Writes the chunk at the logical end; on success the logical end moves past
  // it and the chunk is empty.
  virtual Status AppendChunk() = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  // Cuts the file to Size() and makes that durable. No Append after it.
  virtual Status Seal() = 0;
  // Cuts a preallocated tail (not synced: recovery trims a zero tail anyway).
  // No Append after it; the descriptor closes with the object.
  virtual Status Close() = 0;
  // Bytes of records in the file (the logical end).
  virtual uint64_t Size() const = 0;

  // For SegmentCommitter: prepares an asynchronous write of the chunk at the
  // logical end and says what to write where (*fd, *buf, *len, *pos), or returns
  // false when this file cannot take one (then AppendChunk + Sync). Nothing
  // changes until CommitStaged().
  virtual bool StageChunk(int* fd, const char** buf, size_t* len, uint64_t* pos) { return false; }
  // The staged write completed: as after AppendChunk.
  virtual void CommitStaged() {}

  // True when the zero stretch ahead of Size() is getting short (writer thread).
  virtual bool WantsPreallocation() const { return false; }
  // Zero-fills and syncs the next stretch; a no-op after Seal/Close (any thread).
  virtual Status Preallocate() { return Status::OK(); }
};

// Opens `path` for appending. `create`: create or truncate it; else open the
// existing file, whose records end at its current size (recovery cut any tail).
// `preallocate_bytes` > 0 enables the zero-filled stretch on the POSIX file
// system; it never reaches past `segment_bytes` (the size at which the log rolls)
// unless the records themselves do.
Result<std::shared_ptr<SegmentFile>> OpenSegmentFile(FileSystem* fs, const std::string& path, bool create,
                                                     uint64_t preallocate_bytes, uint64_t segment_bytes);

// One file's share of a group commit.
struct SegmentWrite {
  SegmentFile* file = nullptr;  // its chunk is to be written
  Status status;                // the outcome, set by SegmentCommitter::Write
};

// Writes a group commit's data to several segment files at once. Files that
// allow it (O_DIRECT, inside the zero stretch) are written in parallel with one
// io_submit (Linux native AIO, RWF_DSYNC when syncing), so a round that touches
// eight partitions waits for about one device round trip, on one thread. The
// others are written with AppendChunk (+ Sync), in parallel on helper threads
// (started the first time a round needs them), since one fdatasync after the
// other costs a device round trip each.
//
// Thread safety: Write is called by one thread at a time (the log's committer).
class SegmentCommitter {
 public:
  SegmentCommitter() = default;
  ~SegmentCommitter();  // stops the helpers
  SegmentCommitter(const SegmentCommitter&) = delete;
  SegmentCommitter& operator=(const SegmentCommitter&) = delete;

  // Writes the chunk of every w.file at its logical end and, with `sync`, makes
  // it durable. Each write succeeds or fails on its own; a failed one leaves its
  // file's logical end where it was (the caller repairs the file).
  void Write(std::vector<SegmentWrite>* writes, bool sync);

 private:
  // Runs AppendChunk (+ Sync) for each of `writes`, the caller and helper threads taking them in turn.
  void WriteBlocking(const std::vector<SegmentWrite*>& writes, bool sync);
  void HelperLoop();

  uint64_t aio_ = 0;              // aio_context_t; 0 until first used
  bool aio_unavailable_ = false;  // io_setup or the first io_submit failed: blocking writes only

  std::mutex mu_;
  std::condition_variable work_cv_;   // helpers wait for a new batch
  std::condition_variable done_cv_;   // Write waits for the batch to finish
  std::vector<SegmentWrite*> batch_;  // GUARDED_BY(mu_)
  bool batch_sync_ = false;           // GUARDED_BY(mu_)
  size_t next_ = 0;                   // next write of batch_ to take; GUARDED_BY(mu_)
  size_t finished_ = 0;               // writes of batch_ done; GUARDED_BY(mu_)
  bool stop_ = false;                 // GUARDED_BY(mu_)
  std::vector<std::thread> helpers_;  // the committer's
};

// One background thread that runs SegmentFile::Preallocate for the writers, so
// zero-filling (and its journal commit) stays off the group commits' path.
// Thread-safe.
class SegmentPreallocator {
 public:
  SegmentPreallocator();
  ~SegmentPreallocator();
  // Queues `file` unless it is already queued.
  void Request(std::shared_ptr<SegmentFile> file);
  // Finishes the running step and stops; later requests are ignored. Idempotent.
  void Stop();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<SegmentFile>> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;                               // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace clicklake::log
