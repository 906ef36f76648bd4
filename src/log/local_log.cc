#include "log/local_log.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"
#include "log/crc32c.h"
#include "log/record_format.h"
#include "log/segment_file.h"

namespace clicklake::log {
namespace {

constexpr char kMetaFile[] = "META";
constexpr char kGroupsDir[] = "groups";
constexpr char kIndexMagic[] = "CLIDX001";
// Bytes read per scan step at recovery, and the floor of a read chunk.
constexpr size_t kScanChunk = 4u << 20;
constexpr size_t kMinReadChunk = 256u << 10;
constexpr size_t kMaxReadChunk = 16u << 20;

std::string SegmentName(int64_t base, const char* ext) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020lld.%s", static_cast<long long>(base), ext);
  return buf;
}

// Parses "<20 digits>.log"; false for anything else.
bool ParseSegmentName(const std::string& name, int64_t* base) {
  if (name.size() != 24 || name.compare(20, 4, ".log") != 0) return false;
  int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + (name[i] - '0');
  }
  *base = v;
  return true;
}

bool ValidGroupName(const std::string& group) {
  if (group.empty() || group.size() > 200 || group[0] == '.') return false;
  return std::all_of(group.begin(), group.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

template <typename T>
void PutFixed(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}
template <typename T>
T GetFixed(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// One AppendAsync call, queued for the committer.
struct Call {
  std::vector<LogEntry> entries;
  std::vector<int32_t> partitions;  // of each entry
  uint64_t framed_bytes = 0;
  AppendCallback done;
};

// One entry of a commit round, routed to its partition.
struct RoundItem {
  uint32_t call;  // index into the round's calls
  const LogEntry* entry;
};

struct IndexEntry {
  int64_t offset;
  uint64_t pos;
};

// One segment file. Immutable fields are set at creation; the rest is guarded by
// the owning Partition's mu_.
struct Segment {
  int64_t base_offset = 0;
  std::string path;
  std::unique_ptr<RandomAccessFile> reader;
  std::vector<IndexEntry> index;  // GUARDED_BY(Partition::mu_)
  uint64_t size = 0;              // visible bytes; GUARDED_BY(Partition::mu_)
  int64_t end_offset = 0;         // next offset after the visible records; GUARDED_BY(Partition::mu_)
  int64_t max_timestamp_ms = 0;   // GUARDED_BY(Partition::mu_)
};

// What a scan of a segment file found.
struct ScanResult {
  uint64_t valid_bytes = 0;
  int64_t end_offset = 0;
  int64_t max_timestamp_ms = 0;
  std::vector<IndexEntry> index;
  bool damaged = false;  // stopped before the end of the file
};

Result<ScanResult> ScanSegment(RandomAccessFile* file, int64_t base_offset, uint32_t index_interval) {
  ScanResult r;
  r.end_offset = base_offset;
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string buf;
  uint64_t pos = 0;
  uint64_t last_indexed = 0;
  bool first = true;
  while (pos < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(size - pos, kScanChunk));
    RETURN_IF_ERROR(file->Read(pos, want, &buf));
    size_t off = 0;
    bool need_more = false;
    while (off < buf.size()) {
      RecordView rec;
      size_t n = 0;
      DecodeStatus ds = DecodeRecord(buf.data() + off, buf.size() - off, &rec, &n);
      if (ds == DecodeStatus::kIncomplete && pos + buf.size() < size) {
        // The frame continues past this chunk: read again from its start, large enough.
        if (off == 0) {
          uint32_t len = GetFixed<uint32_t>(buf.data() + 4);
          want = static_cast<size_t>(std::min<uint64_t>(size - pos, 8 + static_cast<uint64_t>(len)));
          RETURN_IF_ERROR(file->Read(pos, want, &buf));
          continue;
        }
        need_more = true;
        break;
      }
      if (ds != DecodeStatus::kOk || rec.offset != r.end_offset) {
        r.valid_bytes = pos + off;
        r.damaged = true;
        return r;
      }
      uint64_t rec_pos = pos + off;
      if (first || rec_pos - last_indexed >= index_interval) {
        r.index.push_back({rec.offset, rec_pos});
        last_indexed = rec_pos;
        first = false;
      }
      r.end_offset = rec.offset + 1;
      r.max_timestamp_ms = std::max(r.max_timestamp_ms, rec.timestamp_ms);
      off += n;
    }
    pos += off;
    if (!need_more && off == 0) break;
  }
  r.valid_bytes = pos;
  r.damaged = pos < size;
  return r;
}

// True when bytes [from, size) of the file are all zero: the preallocated tail
// of a segment (segment_file.h), not a damaged record.
Result<bool> ZeroFrom(RandomAccessFile* file, uint64_t from, uint64_t size) {
  std::string buf;
  while (from < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(size - from, kScanChunk));
    RETURN_IF_ERROR(file->Read(from, want, &buf));
    if (buf.size() != want) return false;
    if (std::any_of(buf.begin(), buf.end(), [](char c) { return c != 0; })) return false;
    from += want;
  }
  return true;
}

std::string EncodeIndexFile(uint64_t segment_size, int64_t end_offset, int64_t max_ts,
                            const std::vector<IndexEntry>& index) {
  std::string out(kIndexMagic, 8);
  PutFixed<uint64_t>(&out, segment_size);
  PutFixed<int64_t>(&out, end_offset);
  PutFixed<int64_t>(&out, max_ts);
  PutFixed<uint64_t>(&out, index.size());
  for (const auto& e : index) {
    PutFixed<int64_t>(&out, e.offset);
    PutFixed<uint64_t>(&out, e.pos);
  }
  PutFixed<uint32_t>(&out, Crc32c(out));
  return out;
}

bool DecodeIndexFile(const std::string& data, uint64_t segment_size, ScanResult* r) {
  if (data.size() < 44 || data.compare(0, 8, kIndexMagic) != 0) return false;
  if (GetFixed<uint32_t>(data.data() + data.size() - 4) != Crc32c(std::string_view(data).substr(0, data.size() - 4)))
    return false;
  const char* p = data.data() + 8;
  if (GetFixed<uint64_t>(p) != segment_size) return false;
  r->valid_bytes = segment_size;
  r->end_offset = GetFixed<int64_t>(p + 8);
  r->max_timestamp_ms = GetFixed<int64_t>(p + 16);
  uint64_t n = GetFixed<uint64_t>(p + 24);
  if (data.size() != 44 + n * 16) return false;
  p += 32;
  r->index.resize(n);
  for (uint64_t i = 0; i < n; ++i, p += 16) r->index[i] = {GetFixed<int64_t>(p), GetFixed<uint64_t>(p + 8)};
  return true;
}

struct LogMetrics {
  Counter* records;
  Counter* bytes;
  Counter* fsyncs;
  Counter* errors;
  Counter* rejected;
  Histogram* commit_seconds;
};

LogMetrics GetLogMetrics() {
  auto* m = MetricsRegistry::Global();
  return LogMetrics{
      m->GetCounter("clicklake_log_appended_records_total", "Records appended to the local event log"),
      m->GetCounter("clicklake_log_appended_bytes_total", "Framed bytes appended to the local event log"),
      m->GetCounter("clicklake_log_fsyncs_total", "Group-commit fdatasyncs of the local event log"),
      m->GetCounter("clicklake_log_append_errors_total", "Append batches that failed on a storage error"),
      m->GetCounter("clicklake_log_append_rejected_total", "Appends refused because the log was overloaded"),
      m->GetHistogram("clicklake_log_group_commit_seconds", "Write + fdatasync time of one group commit"),
  };
}

class LocalLog;

// One partition: its segments and its active segment's writer (run by the log's committer).
class Partition {
 public:
  Partition(LocalLog* log, int32_t id, std::string dir);
  ~Partition();

  // Opens the segments, truncating a torn tail. Called once before Start().
  Status Recover();
  void Start() { MaybePreallocate(); }
  // Closes the active file. REQUIRES: the committer has stopped.
  Status Stop();

  // A commit round, on the committer thread (LocalLog::CommitRound):
  // Prepare encodes `items` into the pending chunk; a segment that fills up is
  // flushed (written and synced on its own) and rolled on the way. Failures set
  // the status of the items' calls in *call_status. True when a chunk is pending
  // in file(): it is then to be written at the file's end (and synced), and
  // FinishPending told how that went.
  bool Prepare(const std::vector<RoundItem>& items, std::vector<Status>* call_status);
  SegmentFile* file() { return file_.get(); }
  // Publishes the pending chunk (s OK) or fails its calls and repairs the file.
  void FinishPending(const Status& s, int64_t write_micros, const std::vector<RoundItem>& items,
                     std::vector<Status>* call_status);

  Result<std::vector<LogRecord>> Read(int64_t offset, size_t max_records, size_t max_bytes);
  PartitionInfo Info() {
    std::lock_guard l(mu_);
    return PartitionInfo{id_, start_offset_, end_offset_};
  }
  Status EnforceRetention();

 private:
  // Makes the chunk (written and, in fsync mode, synced) the partition's new end.
  void Publish();
  // After a failed write or sync of the chunk: drops it and repairs the file.
  void Discard(const Status& s);
  // After a failed write or sync: cut the file back to its last good size and reopen it.
  Status Repair();
  // Seals the active segment and starts a new one at next_offset_.
  Status Roll();
  // Asks the preallocator to extend the active segment's zero stretch if it runs short.
  void MaybePreallocate();
  Result<std::shared_ptr<Segment>> OpenSegment(int64_t base);

  LocalLog* const log_;
  const int32_t id_;
  const std::string dir_;

  std::mutex mu_;                                         // the visible state, read by readers
  std::map<int64_t, std::shared_ptr<Segment>> segments_;  // GUARDED_BY(mu_)
  int64_t start_offset_ = 0;                              // GUARDED_BY(mu_)
  int64_t end_offset_ = 0;                                // GUARDED_BY(mu_)
  uint64_t total_bytes_ = 0;                              // GUARDED_BY(mu_)

  std::mutex retention_mu_;  // one retention pass at a time

  // Owned by the committer thread (and by Recover/Stop, before/after it runs).
  std::shared_ptr<Segment> active_;
  std::shared_ptr<SegmentFile> file_;  // shared with the preallocator
  uint64_t file_size_ = 0;             // bytes of the active segment known good
  int64_t next_offset_ = 0;
  uint64_t last_indexed_pos_ = 0;
  bool needs_repair_ = false;
  bool needs_roll_ = false;
  uint64_t chunk_bytes_ = 0;               // of the chunk being prepared / written (in file_)
  std::vector<IndexEntry> pending_index_;  // its index entries
  int64_t pending_end_offset_ = 0;         // next offset after it
  int64_t pending_ts_ = 0;                 // its records' timestamp
  size_t pending_begin_ = 0;               // its first item in the round's items

  Gauge* end_gauge_;
};

class LocalLog final : public EventLog {
 public:
  LocalLog(LocalLogOptions options, FileSystem* fs, Clock* clock)
      : options_(std::move(options)), fs_(fs), clock_(clock), metrics_(GetLogMetrics()) {}
  ~LocalLog() override { Close().IgnoreError(); }

  Status Open();

  int32_t num_partitions() const override { return options_.num_partitions; }
  int32_t PartitionFor(std::string_view key) const override { return PartitionForKey(key, options_.num_partitions); }
  void AppendAsync(std::vector<LogEntry> entries, AppendCallback done) override;
  Result<std::vector<LogRecord>> Read(int32_t partition, int64_t offset, size_t max_records, size_t max_bytes) override;
  Result<PartitionInfo> GetPartitionInfo(int32_t partition) override;
  Status CommitOffsets(const std::string& group, const std::map<int32_t, int64_t>& next_offsets) override;
  Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string& group) override;
  Status EnforceRetention() override;
  Status Close() override;

  const LocalLogOptions& options() const { return options_; }
  FileSystem* fs() { return fs_; }
  Clock* clock() { return clock_; }
  const LogMetrics& metrics() const { return metrics_; }
  void ReleasePending(uint64_t bytes) { pending_bytes_.fetch_sub(bytes, std::memory_order_relaxed); }
  // Refreshes the lag gauges of every group for one partition.
  void UpdateLag(int32_t partition, int64_t end_offset);
  SegmentPreallocator* preallocator() { return &preallocator_; }

 private:
  // The committer thread: takes every queued call (up to max_batch_bytes) and commits them in one round.
  void CommitterLoop();
  void CommitRound(std::vector<Call>& calls);

  struct GroupState {
    std::map<int32_t, int64_t> committed;
    std::vector<Gauge*> lag_gauges;  // one per partition
  };
  Status LoadGroups();
  GroupState& GroupFor(const std::string& group);  // REQUIRES: groups_mu_ held
  Status CheckPartition(int32_t partition) const {
    if (partition < 0 || partition >= options_.num_partitions)
      return Status::InvalidArgument("partition " + std::to_string(partition) + " is out of range [0, " +
                                     std::to_string(options_.num_partitions) + ")");
    return Status::OK();
  }

  const LocalLogOptions options_;
  FileSystem* const fs_;
  Clock* const clock_;
  const LogMetrics metrics_;
  SegmentPreallocator preallocator_;  // before partitions_: outlives their files
  std::vector<std::unique_ptr<Partition>> partitions_;
  std::atomic<uint64_t> pending_bytes_{0};

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<Call> queue_;  // GUARDED_BY(q_mu_)
  bool stop_ = false;       // GUARDED_BY(q_mu_)
  std::thread committer_;
  // The committer's, reused across rounds.
  SegmentCommitter segment_committer_;
  std::vector<std::vector<RoundItem>> round_items_;  // per partition
  std::vector<SegmentWrite> round_writes_;
  std::vector<size_t> round_written_;  // the partition of each round_writes_ entry

  std::shared_mutex close_mu_;  // appends hold it shared while enqueuing
  bool closed_ = false;         // GUARDED_BY(close_mu_)
  bool started_ = false;        // GUARDED_BY(close_mu_)

  std::mutex groups_mu_;
  std::map<std::string, GroupState> groups_;  // GUARDED_BY(groups_mu_)
};

// ---------------------------------------------------------------------------
// Partition

Partition::Partition(LocalLog* log, int32_t id, std::string dir) : log_(log), id_(id), dir_(std::move(dir)) {
  end_gauge_ = MetricsRegistry::Global()->GetGauge("clicklake_log_end_offset", "Next offset to be written",
                                                   {{"partition", std::to_string(id)}});
}

Partition::~Partition() { Stop().IgnoreError(); }

Result<std::shared_ptr<Segment>> Partition::OpenSegment(int64_t base) {
  auto seg = std::make_shared<Segment>();
  seg->base_offset = base;
  seg->end_offset = base;
  seg->path = JoinPath(dir_, SegmentName(base, "log"));
  ASSIGN_OR_RETURN(seg->reader, log_->fs()->NewRandomAccessFile(seg->path));
  return seg;
}

Status Partition::Recover() {
  FileSystem* fs = log_->fs();
  const auto& opt = log_->options();
  RETURN_IF_ERROR(fs->CreateDirs(dir_));
  ASSIGN_OR_RETURN(auto entries, fs->ListDir(dir_));
  std::vector<int64_t> bases;
  for (const auto& e : entries) {
    int64_t base;
    if (!e.is_dir && ParseSegmentName(e.name, &base)) bases.push_back(base);
  }
  std::sort(bases.begin(), bases.end());
  if (bases.empty()) {
    std::string path = JoinPath(dir_, SegmentName(0, "log"));
    ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(path));
    RETURN_IF_ERROR(f->Close());
    RETURN_IF_ERROR(fs->SyncDir(dir_));
    bases.push_back(0);
  }
  std::lock_guard l(mu_);
  int64_t expected_base = bases.front();
  for (size_t i = 0; i < bases.size(); ++i) {
    bool last = i + 1 == bases.size();
    ASSIGN_OR_RETURN(auto seg, OpenSegment(bases[i]));
    if (seg->base_offset != expected_base) {
      return Status::Corruption("log partition " + dir_ + " has a gap: segment " + seg->path + " starts at " +
                                std::to_string(seg->base_offset) + " but the previous one ends at " +
                                std::to_string(expected_base) + "; restore the missing segment or remove later ones");
    }
    ASSIGN_OR_RETURN(uint64_t size, seg->reader->Size());
    ScanResult scan;
    std::string idx_path = JoinPath(dir_, SegmentName(seg->base_offset, "idx"));
    bool from_index = false;
    if (!last && fs->Exists(idx_path)) {
      auto data = fs->ReadFile(idx_path);
      from_index = data.ok() && DecodeIndexFile(*data, size, &scan);
    }
    if (!from_index) {
      ASSIGN_OR_RETURN(scan, ScanSegment(seg->reader.get(), seg->base_offset, opt.index_interval_bytes));
      bool zero_tail = false;
      if (scan.damaged) {
        ASSIGN_OR_RETURN(zero_tail, ZeroFrom(seg->reader.get(), scan.valid_bytes, size));
      }
      if (scan.damaged && zero_tail) {
        // A preallocated tail: the writer stopped without cutting it (a crash, or
        // before a seal became durable). Cut it so the segment is exactly its records.
        spdlog::debug("event log: trimming the zero tail of {} from {} to {} bytes", seg->path, size, scan.valid_bytes);
        RETURN_IF_ERROR(fs->Truncate(seg->path, scan.valid_bytes));
        size = scan.valid_bytes;
        if (!last) {
          fs->WriteFile(idx_path, EncodeIndexFile(size, scan.end_offset, scan.max_timestamp_ms, scan.index))
              .IgnoreError();
        }
      } else if (scan.damaged) {
        if (!last) {
          return Status::Corruption("sealed log segment " + seg->path + " is damaged at byte " +
                                    std::to_string(scan.valid_bytes) + " of " + std::to_string(size) +
                                    "; move it (and later segments) away to recover the rest");
        }
        spdlog::warn("event log: truncating torn tail of {} from {} to {} bytes", seg->path, size, scan.valid_bytes);
        RETURN_IF_ERROR(fs->Truncate(seg->path, scan.valid_bytes));
        size = scan.valid_bytes;
      } else if (!last) {
        fs->WriteFile(idx_path, EncodeIndexFile(size, scan.end_offset, scan.max_timestamp_ms, scan.index))
            .IgnoreError();  // only an accelerator; rebuilt next time if missing
      }
    }
    seg->size = size;
    seg->end_offset = scan.end_offset;
    seg->max_timestamp_ms = scan.max_timestamp_ms;
    seg->index = std::move(scan.index);
    total_bytes_ += size;
    expected_base = seg->end_offset;
    segments_[seg->base_offset] = seg;
    if (last) {
      active_ = seg;
      file_size_ = size;
      last_indexed_pos_ = seg->index.empty() ? 0 : seg->index.back().pos;
    }
  }
  start_offset_ = segments_.begin()->first;
  end_offset_ = active_->end_offset;
  next_offset_ = end_offset_;
  ASSIGN_OR_RETURN(file_,
                   OpenSegmentFile(fs, active_->path, /*create=*/false, opt.preallocate_bytes, opt.segment_bytes));
  if (file_->Size() != file_size_) {
    return Status::IOError("log segment " + active_->path + " changed size while opening");
  }
  end_gauge_->Set(static_cast<double>(end_offset_));
  return Status::OK();
}

Status Partition::Stop() {
  Status s;
  if (file_) {
    s = file_->Close();
    file_.reset();
  }
  return s;
}

bool Partition::Prepare(const std::vector<RoundItem>& items, std::vector<Status>* call_status) {
  auto fail_from = [&](size_t i, const Status& s) {
    for (; i < items.size(); ++i) {
      Status& cs = (*call_status)[items[i].call];
      if (cs.ok()) cs = s;
    }
    chunk_bytes_ = 0;
    pending_index_.clear();
    return false;
  };
  if (needs_repair_) {
    Status s = Repair();
    if (!s.ok()) return fail_from(0, s.WithContext("event log partition " + std::to_string(id_) + " is unusable"));
  }
  if (needs_roll_) {
    Status s = Roll();
    if (!s.ok()) return fail_from(0, s);
  }
  const auto& opt = log_->options();
  pending_ts_ = log_->clock()->NowMillis();
  file_->StartChunk();
  chunk_bytes_ = 0;
  pending_index_.clear();
  pending_begin_ = 0;
  int64_t offset = next_offset_;
  for (size_t i = 0; i < items.size(); ++i) {
    const LogEntry& e = *items[i].entry;
    const uint64_t framed = FramedSize(e.key.size(), e.value.size());
    if (file_size_ + chunk_bytes_ > 0 && file_size_ + chunk_bytes_ + framed > opt.segment_bytes) {
      if (chunk_bytes_ > 0) {
        // The records so far close this segment: written and synced on their own.
        pending_end_offset_ = offset;
        int64_t t0 = log_->clock()->MonotonicMicros();
        Status s = file_->AppendChunk();
        if (s.ok() && opt.fsync) s = file_->Sync();
        if (!s.ok()) {
          Discard(s);
          return fail_from(pending_begin_, s);
        }
        if (opt.fsync) log_->metrics().fsyncs->Increment();
        log_->metrics().commit_seconds->Observe(static_cast<double>(log_->clock()->MonotonicMicros() - t0) / 1e6);
        Publish();
      }
      pending_begin_ = i;
      Status s = Roll();
      if (!s.ok()) return fail_from(i, s);
      file_->StartChunk();
    }
    uint64_t pos = file_size_ + chunk_bytes_;
    if (pos == 0 || pos - last_indexed_pos_ >= opt.index_interval_bytes) {
      pending_index_.push_back({offset, pos});
      last_indexed_pos_ = pos;
    }
    EncodeRecordTo(offset++, pending_ts_, e.key, e.value, file_->ExtendChunk(framed));
    chunk_bytes_ += framed;
  }
  pending_end_offset_ = offset;
  return chunk_bytes_ > 0;
}

void Partition::FinishPending(const Status& s, int64_t write_micros, const std::vector<RoundItem>& items,
                              std::vector<Status>* call_status) {
  if (!s.ok()) {
    Discard(s);
    for (size_t i = pending_begin_; i < items.size(); ++i) {
      Status& cs = (*call_status)[items[i].call];
      if (cs.ok()) cs = s;
    }
    return;
  }
  if (log_->options().fsync) log_->metrics().fsyncs->Increment();
  log_->metrics().commit_seconds->Observe(static_cast<double>(write_micros) / 1e6);
  Publish();
}

void Partition::Discard(const Status& s) {
  log_->metrics().errors->Increment();
  spdlog::error("event log partition {}: append of {} bytes failed: {}", id_, chunk_bytes_, s.ToString());
  chunk_bytes_ = 0;
  pending_index_.clear();
  last_indexed_pos_ = 0;
  {
    std::lock_guard l(mu_);
    if (!active_->index.empty()) last_indexed_pos_ = active_->index.back().pos;
  }
  needs_repair_ = true;
  Status r = Repair();
  if (!r.ok()) spdlog::error("event log partition {}: repair failed, will retry: {}", id_, r.ToString());
}

void Partition::Publish() {
  const auto& m = log_->metrics();
  const int64_t end_offset = pending_end_offset_;
  m.records->Increment(end_offset - next_offset_);
  m.bytes->Increment(static_cast<int64_t>(chunk_bytes_));
  file_size_ += chunk_bytes_;
  next_offset_ = end_offset;
  {
    std::lock_guard l(mu_);
    active_->size = file_size_;
    active_->end_offset = end_offset;
    active_->max_timestamp_ms = std::max(active_->max_timestamp_ms, pending_ts_);
    active_->index.insert(active_->index.end(), pending_index_.begin(), pending_index_.end());
    total_bytes_ += chunk_bytes_;
    end_offset_ = end_offset;
  }
  chunk_bytes_ = 0;
  pending_index_.clear();
  end_gauge_->Set(static_cast<double>(end_offset));
  log_->UpdateLag(id_, end_offset);
  MaybePreallocate();
}

void Partition::MaybePreallocate() {
  if (file_ && file_->WantsPreallocation()) log_->preallocator()->Request(file_);
}

Status Partition::Repair() {
  FileSystem* fs = log_->fs();
  if (file_) {
    file_->Close().IgnoreError();
    file_.reset();
  }
  RETURN_IF_ERROR(fs->Truncate(active_->path, file_size_));
  ASSIGN_OR_RETURN(file_, OpenSegmentFile(fs, active_->path, /*create=*/false, log_->options().preallocate_bytes,
                                          log_->options().segment_bytes));
  if (file_->Size() != file_size_) {
    return Status::IOError("log segment " + active_->path + " is " + std::to_string(file_->Size()) +
                           " bytes after truncating it to " + std::to_string(file_size_));
  }
  needs_repair_ = false;
  return Status::OK();
}

Status Partition::Roll() {
  FileSystem* fs = log_->fs();
  needs_roll_ = true;
  // The old segment is fully written and (in fsync mode) synced: seal it. It
  // loses its preallocated tail first, so its index names its final size.
  if (file_) RETURN_IF_ERROR(file_->Seal());
  {
    std::vector<IndexEntry> index;
    int64_t max_ts;
    {
      std::lock_guard l(mu_);
      index = active_->index;
      max_ts = active_->max_timestamp_ms;
    }
    Status s = fs->WriteFile(JoinPath(dir_, SegmentName(active_->base_offset, "idx")),
                             EncodeIndexFile(file_size_, next_offset_, max_ts, index));
    if (!s.ok()) spdlog::warn("event log: could not write segment index (rebuilt on open): {}", s.ToString());
  }
  std::string path = JoinPath(dir_, SegmentName(next_offset_, "log"));
  ASSIGN_OR_RETURN(auto f, OpenSegmentFile(fs, path, /*create=*/true, log_->options().preallocate_bytes,
                                           log_->options().segment_bytes));
  // The new name must be durable before a record in it is acknowledged.
  RETURN_IF_ERROR(fs->SyncDir(dir_));
  ASSIGN_OR_RETURN(auto seg, OpenSegment(next_offset_));
  if (file_) file_->Close().IgnoreError();
  file_ = std::move(f);
  file_size_ = 0;
  last_indexed_pos_ = 0;
  {
    std::lock_guard l(mu_);
    segments_[seg->base_offset] = seg;
  }
  active_ = seg;
  needs_roll_ = false;
  MaybePreallocate();
  Status s = EnforceRetention();
  if (!s.ok()) spdlog::warn("event log partition {}: retention failed: {}", id_, s.ToString());
  return Status::OK();
}

Status Partition::EnforceRetention() {
  std::lock_guard rl(retention_mu_);
  const auto& opt = log_->options();
  const int64_t now = log_->clock()->NowMillis();
  for (;;) {
    std::shared_ptr<Segment> victim;
    {
      std::lock_guard l(mu_);
      if (segments_.size() < 2) break;  // never the active segment
      auto& oldest = segments_.begin()->second;
      bool too_old = opt.retention_ms >= 0 && oldest->max_timestamp_ms < now - opt.retention_ms;
      bool too_big = opt.retention_bytes >= 0 && total_bytes_ > static_cast<uint64_t>(opt.retention_bytes);
      if (!too_old && !too_big) break;
      victim = oldest;
      segments_.erase(segments_.begin());
      total_bytes_ -= victim->size;
      start_offset_ = segments_.begin()->first;
    }
    // Readers holding the segment keep reading through their open descriptor.
    FileSystem* fs = log_->fs();
    std::string idx = JoinPath(dir_, SegmentName(victim->base_offset, "idx"));
    if (fs->Exists(idx)) fs->DeleteFile(idx).IgnoreError();
    RETURN_IF_ERROR(fs->DeleteFile(victim->path));
    spdlog::debug("event log: retention deleted {} (offsets {}..{})", victim->path, victim->base_offset,
                  victim->end_offset);
  }
  return Status::OK();
}

Result<std::vector<LogRecord>> Partition::Read(int64_t offset, size_t max_records, size_t max_bytes) {
  std::vector<LogRecord> out;
  out.reserve(std::min<size_t>(max_records, 4096));
  size_t bytes = 0;
  // Reused by each reading thread (at most kMaxReadChunk): no allocation and
  // zero-filling of a multi-megabyte buffer per call.
  thread_local std::string buf;
  const size_t chunk = std::clamp(std::min(max_bytes, kMaxReadChunk) + log_->options().index_interval_bytes,
                                  kMinReadChunk, kMaxReadChunk);
  int64_t next = offset;
  bool first_segment = true;
  while (out.size() < max_records && (out.empty() || bytes < max_bytes)) {
    std::shared_ptr<Segment> seg;
    uint64_t pos = 0;
    uint64_t limit = 0;
    {
      std::lock_guard l(mu_);
      if (first_segment) {
        if (next < start_offset_) {
          return Status::InvalidArgument("offset " + std::to_string(next) + " of partition " + std::to_string(id_) +
                                         " is below the retained start " + std::to_string(start_offset_));
        }
        if (next > end_offset_) {
          return Status::InvalidArgument("offset " + std::to_string(next) + " of partition " + std::to_string(id_) +
                                         " is beyond the end " + std::to_string(end_offset_));
        }
      }
      if (next >= end_offset_ || next < start_offset_) break;
      auto it = segments_.upper_bound(next);
      --it;
      seg = it->second;
      limit = seg->size;
      if (next >= seg->end_offset) break;  // cannot happen: segments are contiguous
      auto ix = std::upper_bound(seg->index.begin(), seg->index.end(), next,
                                 [](int64_t o, const IndexEntry& e) { return o < e.offset; });
      if (ix != seg->index.begin()) pos = std::prev(ix)->pos;
      // Records before the first index entry at or past next + max_records end
      // before it: read no further than that.
      int64_t last_wanted = next + static_cast<int64_t>(std::min<size_t>(max_records - out.size(), INT32_MAX));
      auto past = std::lower_bound(ix, seg->index.end(), last_wanted,
                                   [](const IndexEntry& e, int64_t o) { return e.offset < o; });
      if (past != seg->index.end()) limit = std::min(limit, past->pos);
    }
    first_segment = false;
    const size_t had = out.size();
    bool segment_done = false;
    while (!segment_done && out.size() < max_records && (out.empty() || bytes < max_bytes)) {
      if (pos >= limit) {
        segment_done = true;
        break;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(limit - pos, chunk));
      RETURN_IF_ERROR(seg->reader->Read(pos, want, &buf));
      if (buf.size() < want) {
        return Status::Corruption("log segment " + seg->path + " is shorter than its committed size " +
                                  std::to_string(limit));
      }
      size_t off = 0;
      while (off < buf.size() && out.size() < max_records && (out.empty() || bytes < max_bytes)) {
        RecordView rec;
        size_t n = 0;
        DecodeStatus ds = DecodeRecord(buf.data() + off, buf.size() - off, &rec, &n);
        if (ds == DecodeStatus::kIncomplete) {
          if (pos + off + 8 <= limit && off == 0) {
            // One record bigger than the chunk: read exactly it.
            uint32_t len = GetFixed<uint32_t>(buf.data() + 4);
            if (pos + 8 + len > limit) return Status::Corruption("truncated record in " + seg->path);
            RETURN_IF_ERROR(seg->reader->Read(pos, 8 + len, &buf));
            continue;
          }
          break;
        }
        if (ds == DecodeStatus::kCorrupt) {
          return Status::Corruption("log segment " + seg->path + " has a damaged record at byte " +
                                    std::to_string(pos + off) + " (checksum mismatch)");
        }
        off += n;
        if (rec.offset < next) continue;  // before the requested offset (sparse index)
        if (rec.offset != next) {
          return Status::Corruption("log segment " + seg->path + " has offset " + std::to_string(rec.offset) +
                                    " where " + std::to_string(next) + " was expected");
        }
        LogRecord& r = out.emplace_back();
        r.partition = id_;
        r.offset = rec.offset;
        r.timestamp_ms = rec.timestamp_ms;
        r.key.assign(rec.key);
        r.value.assign(rec.value);
        bytes += rec.key.size() + rec.value.size();
        ++next;
      }
      if (off == 0 && pos < limit) return Status::Corruption("unreadable record in " + seg->path);
      pos += off;
    }
    if (out.size() == had) {
      // The segment claims offset `next` but holds no record for it.
      return Status::Corruption("log segment " + seg->path + " has no record for offset " + std::to_string(next));
    }
  }
  if (buf.capacity() > 2 * kMaxReadChunk) std::string().swap(buf);  // after a huge record
  return out;
}

// ---------------------------------------------------------------------------
// LocalLog

Status LocalLog::Open() {
  if (options_.num_partitions <= 0 || options_.num_partitions > 4096)
    return Status::InvalidArgument("log.partitions must be in [1, 4096], got " +
                                   std::to_string(options_.num_partitions));
  if (options_.dir.empty()) return Status::InvalidArgument("the local event log needs a directory (log.dir)");
  RETURN_IF_ERROR(fs_->CreateDirs(options_.dir));
  std::string meta_path = JoinPath(options_.dir, kMetaFile);
  std::string meta = "clicklake-log v1 partitions=" + std::to_string(options_.num_partitions) + "\n";
  if (fs_->Exists(meta_path)) {
    ASSIGN_OR_RETURN(std::string existing, fs_->ReadFile(meta_path));
    if (existing != meta) {
      return Status::InvalidArgument("event log " + options_.dir + " was created with a different layout (" +
                                     existing.substr(0, existing.find('\n')) + "), not " +
                                     std::to_string(options_.num_partitions) +
                                     " partitions; set log.partitions to match");
    }
  } else {
    RETURN_IF_ERROR(fs_->WriteFile(meta_path, meta));
  }
  RETURN_IF_ERROR(fs_->CreateDirs(JoinPath(options_.dir, kGroupsDir)));
  for (int32_t p = 0; p < options_.num_partitions; ++p) {
    char name[32];
    std::snprintf(name, sizeof(name), "partition-%04d", p);
    RETURN_IF_ERROR(fs_->CreateDirs(JoinPath(options_.dir, name)));
    partitions_.push_back(std::make_unique<Partition>(this, p, JoinPath(options_.dir, name)));
  }
  // The new partition and group directories' names are durable before anything in them.
  RETURN_IF_ERROR(fs_->SyncDir(options_.dir));
  for (auto& p : partitions_) RETURN_IF_ERROR(p->Recover());
  RETURN_IF_ERROR(LoadGroups());
  {
    std::unique_lock l(close_mu_);
    for (auto& p : partitions_) p->Start();
    round_items_.resize(partitions_.size());
    committer_ = std::thread([this] { CommitterLoop(); });
    started_ = true;
  }
  return Status::OK();
}

void LocalLog::AppendAsync(std::vector<LogEntry> entries, AppendCallback done) {
  if (entries.empty()) return done(Status::OK());
  const int32_t n = options_.num_partitions;
  // Partition of each entry (the committer routes them).
  std::vector<int32_t> pid(entries.size());
  uint64_t total = 0;
  bool single = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    const LogEntry& e = entries[i];
    if (e.key.size() + e.value.size() > kMaxRecordBytes) {
      return done(Status::InvalidArgument("log record of " + std::to_string(e.key.size() + e.value.size()) +
                                          " bytes is larger than the limit of " + std::to_string(kMaxRecordBytes)));
    }
    pid[i] = PartitionForKey(e.key, n);
    single = single && pid[i] == pid[0];
    total += FramedSize(e.key.size(), e.value.size());
  }
  std::shared_lock l(close_mu_);
  if (closed_ || !started_) return done(Status::Unavailable("the event log is closed"));
  uint64_t before = pending_bytes_.fetch_add(total, std::memory_order_relaxed);
  if (before > 0 && before + total > options_.max_pending_bytes) {
    pending_bytes_.fetch_sub(total, std::memory_order_relaxed);
    metrics_.rejected->Increment();
    return done(Status::Unavailable("the event log is overloaded (" + std::to_string(before) +
                                    " bytes waiting for storage); retry later"));
  }
  // Keys of several partitions: the whole call goes to its first key's. Being
  // a function of the content, a retried request lands where its first attempt
  // did, after it, so "first received copy wins" still holds by log order.
  if (!single && options_.keep_calls_together) std::fill(pid.begin(), pid.end(), pid[0]);
  bool was_empty;
  {
    std::lock_guard q(q_mu_);
    was_empty = queue_.empty();
    queue_.push_back(Call{std::move(entries), std::move(pid), total, std::move(done)});
  }
  // The committer only waits on an empty queue: later pushes need no wake-up.
  if (was_empty) q_cv_.notify_one();
}

void LocalLog::CommitterLoop() {
  std::vector<Call> calls;
  for (;;) {
    uint64_t bytes = 0;
    {
      std::unique_lock l(q_mu_);
      q_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stop_ and drained
      while (!queue_.empty() && (calls.empty() || bytes + queue_.front().framed_bytes <= options_.max_batch_bytes)) {
        bytes += queue_.front().framed_bytes;
        calls.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitRound(calls);
    calls.clear();
  }
}

// One group commit for every partition at once: each partition's records of
// the round become one chunk, and all chunks are written (and synced) in
// parallel, so a call whose records span partitions waits for one round, not
// for each partition's commit in turn.
void LocalLog::CommitRound(std::vector<Call>& calls) {
  for (auto& items : round_items_) items.clear();
  for (uint32_t c = 0; c < calls.size(); ++c) {
    const Call& call = calls[c];
    for (size_t i = 0; i < call.entries.size(); ++i)
      round_items_[static_cast<size_t>(call.partitions[i])].push_back({c, &call.entries[i]});
  }
  std::vector<Status> call_status(calls.size());
  round_writes_.clear();
  round_written_.clear();
  for (size_t p = 0; p < partitions_.size(); ++p) {
    if (round_items_[p].empty()) continue;
    if (partitions_[p]->Prepare(round_items_[p], &call_status)) {
      round_writes_.push_back({partitions_[p]->file(), Status()});
      round_written_.push_back(p);
    }
  }
  if (!round_writes_.empty()) {
    const int64_t t0 = clock_->MonotonicMicros();
    segment_committer_.Write(&round_writes_, options_.fsync);
    const int64_t micros = clock_->MonotonicMicros() - t0;
    for (size_t w = 0; w < round_writes_.size(); ++w) {
      const size_t p = round_written_[w];
      partitions_[p]->FinishPending(round_writes_[w].status, micros, round_items_[p], &call_status);
    }
  }
  for (size_t c = 0; c < calls.size(); ++c) {
    ReleasePending(calls[c].framed_bytes);
    calls[c].done(call_status[c]);
  }
}

Result<std::vector<LogRecord>> LocalLog::Read(int32_t partition, int64_t offset, size_t max_records, size_t max_bytes) {
  RETURN_IF_ERROR(CheckPartition(partition));
  if (max_records == 0) return std::vector<LogRecord>{};
  return partitions_[static_cast<size_t>(partition)]->Read(offset, max_records, max_bytes);
}

Result<PartitionInfo> LocalLog::GetPartitionInfo(int32_t partition) {
  RETURN_IF_ERROR(CheckPartition(partition));
  return partitions_[static_cast<size_t>(partition)]->Info();
}

LocalLog::GroupState& LocalLog::GroupFor(const std::string& group) {
  auto it = groups_.find(group);
  if (it != groups_.end()) return it->second;
  GroupState& g = groups_[group];
  for (int32_t p = 0; p < options_.num_partitions; ++p) {
    g.lag_gauges.push_back(MetricsRegistry::Global()->GetGauge("clicklake_log_consumer_lag",
                                                               "Records not yet consumed by a group (end - committed)",
                                                               {{"group", group}, {"partition", std::to_string(p)}}));
  }
  return g;
}

void LocalLog::UpdateLag(int32_t partition, int64_t end_offset) {
  std::lock_guard l(groups_mu_);
  for (auto& [name, g] : groups_) {
    auto it = g.committed.find(partition);
    if (it == g.committed.end()) continue;  // the group does not consume this partition yet
    g.lag_gauges[static_cast<size_t>(partition)]->Set(
        static_cast<double>(std::max<int64_t>(0, end_offset - it->second)));
  }
}

Status LocalLog::LoadGroups() {
  std::string dir = JoinPath(options_.dir, kGroupsDir);
  ASSIGN_OR_RETURN(auto entries, fs_->ListDir(dir));
  std::lock_guard l(groups_mu_);
  for (const auto& e : entries) {
    const std::string suffix = ".offsets";
    std::string path = JoinPath(dir, e.name);
    if (e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".tmp") == 0) {
      fs_->DeleteFile(path).IgnoreError();  // an interrupted commit
      continue;
    }
    if (e.name.size() <= suffix.size() || e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string group = e.name.substr(0, e.name.size() - suffix.size());
    ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(path));
    GroupState& g = GroupFor(group);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos)
        return Status::Corruption("consumer offsets file " + path + " is truncated; delete it to reset the group");
      long long p = 0, o = 0;
      if (std::sscanf(text.c_str() + pos, "%lld %lld", &p, &o) != 2 || p < 0 || p >= options_.num_partitions)
        return Status::Corruption("consumer offsets file " + path + " is malformed; delete it to reset the group");
      g.committed[static_cast<int32_t>(p)] = o;
      pos = eol + 1;
    }
  }
  return Status::OK();
}

Status LocalLog::CommitOffsets(const std::string& group, const std::map<int32_t, int64_t>& next_offsets) {
  if (!ValidGroupName(group))
    return Status::InvalidArgument("consumer group name '" + group + "' must be 1-200 characters of [A-Za-z0-9._-]");
  for (const auto& [p, o] : next_offsets) {
    RETURN_IF_ERROR(CheckPartition(p));
    if (o < 0) return Status::InvalidArgument("committed offset " + std::to_string(o) + " is negative");
  }
  std::lock_guard l(groups_mu_);
  GroupState& g = GroupFor(group);
  std::map<int32_t, int64_t> merged = g.committed;
  for (const auto& [p, o] : next_offsets) merged[p] = o;
  std::string text;
  for (const auto& [p, o] : merged) text += std::to_string(p) + " " + std::to_string(o) + "\n";
  std::string dir = JoinPath(options_.dir, kGroupsDir);
  std::string path = JoinPath(dir, group + ".offsets");
  std::string tmp = path + ".tmp";
  RETURN_IF_ERROR(fs_->WriteFile(tmp, text));  // writes and syncs
  RETURN_IF_ERROR(fs_->Rename(tmp, path));
  RETURN_IF_ERROR(fs_->SyncDir(dir));
  g.committed = std::move(merged);
  for (const auto& [p, o] : g.committed) {
    int64_t end = partitions_[static_cast<size_t>(p)]->Info().end_offset;
    g.lag_gauges[static_cast<size_t>(p)]->Set(static_cast<double>(std::max<int64_t>(0, end - o)));
  }
  return Status::OK();
}

Result<std::map<int32_t, int64_t>> LocalLog::CommittedOffsets(const std::string& group) {
  if (!ValidGroupName(group))
    return Status::InvalidArgument("consumer group name '" + group + "' must be 1-200 characters of [A-Za-z0-9._-]");
  std::lock_guard l(groups_mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return std::map<int32_t, int64_t>{};
  return it->second.committed;
}

Status LocalLog::EnforceRetention() {
  Status first;
  for (auto& p : partitions_) {
    Status s = p->EnforceRetention();
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status LocalLog::Close() {
  {
    std::unique_lock l(close_mu_);
    if (closed_) return Status::OK();
    closed_ = true;
  }
  {
    std::lock_guard l(q_mu_);
    stop_ = true;
  }
  q_cv_.notify_one();
  if (committer_.joinable()) committer_.join();  // drains the queue first
  Status first;
  for (auto& p : partitions_) {
    Status s = p->Stop();
    if (!s.ok() && first.ok()) first = s;
  }
  preallocator_.Stop();
  return first;
}

}  // namespace

Result<LocalLogOptions> LocalLogOptionsFromConfig(const Config& config) {
  LocalLogOptions o;
  o.dir = config.GetString("log.dir", JoinPath(JoinPath(config.lake_dir(), "_clicklake"), "log"));
  o.num_partitions = static_cast<int32_t>(config.GetInt("log.partitions", o.num_partitions));
  std::string durability = config.GetString("log.durability", "fsync");
  if (durability == "fsync") {
    o.fsync = true;
  } else if (durability == "none") {
    o.fsync = false;
  } else {
    return Status::InvalidArgument("log.durability must be \"fsync\" or \"none\", got \"" + durability + "\"");
  }
  std::string partition_by = config.GetString("log.partition_by", "key");
  if (partition_by == "append") {
    o.keep_calls_together = true;
  } else if (partition_by == "key") {
    o.keep_calls_together = false;
  } else {
    return Status::InvalidArgument("log.partition_by must be \"append\" or \"key\", got \"" + partition_by + "\"");
  }
  int64_t seg = config.GetInt("log.segment_bytes", static_cast<int64_t>(o.segment_bytes));
  if (seg < 1024) return Status::InvalidArgument("log.segment_bytes must be at least 1024");
  o.segment_bytes = static_cast<uint64_t>(seg);
  int64_t prealloc = config.GetInt("log.preallocate_bytes", static_cast<int64_t>(o.preallocate_bytes));
  if (prealloc < 0) return Status::InvalidArgument("log.preallocate_bytes must be 0 (off) or positive");
  o.preallocate_bytes = static_cast<uint64_t>(prealloc);
  o.retention_ms = static_cast<int64_t>(config.GetDouble("log.retention_hours", 168) * 3600.0 * 1000.0);
  o.retention_bytes = config.GetInt("log.retention_bytes", -1);
  int64_t pending = config.GetInt("log.max_pending_bytes", static_cast<int64_t>(o.max_pending_bytes));
  if (pending < 1) return Status::InvalidArgument("log.max_pending_bytes must be positive");
  o.max_pending_bytes = static_cast<uint64_t>(pending);
  return o;
}

Result<std::unique_ptr<EventLog>> OpenLocalLog(const LocalLogOptions& options, FileSystem* fs, Clock* clock) {
  auto log = std::make_unique<LocalLog>(options, fs, clock);
  RETURN_IF_ERROR(log->Open().WithContext("open event log " + options.dir));
  return std::unique_ptr<EventLog>(std::move(log));
}

}  // namespace clicklake::log
