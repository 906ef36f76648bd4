#include "log/segment_file.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/logging.h"

namespace clicklake::log {
namespace {

// Over any FileSystem: an append-only WritableFile.
class PlainSegmentFile final : public SegmentFile {
 public:
  explicit PlainSegmentFile(std::unique_ptr<WritableFile> file) : file_(std::move(file)) {}
  void StartChunk() override { chunk_.clear(); }
  char* ExtendChunk(size_t n) override {
    chunk_.resize(chunk_.size() + n);
    return chunk_.data() + chunk_.size() - n;
  }
  std::string_view chunk() const override { return chunk_; }
  Status AppendChunk() override {
    RETURN_IF_ERROR(file_->Append(chunk_));
    chunk_.clear();
    return Status::OK();
  }
  Status Sync() override { return file_->Sync(); }
  Status Seal() override { return Status::OK(); }  // never longer than its records
  Status Close() override { return file_->Close(); }
  uint64_t Size() const override { return file_->Size(); }

 private:
  std::unique_ptr<WritableFile> file_;
  std::string chunk_;
};

constexpr size_t kZeroBlock = 64u << 10;
constexpr uint64_t kPageBytes = 4096;
alignas(kPageBytes) const char kZeros[kZeroBlock] = {};

uint64_t RoundUpToPage(uint64_t n) { return (n + kPageBytes - 1) / kPageBytes * kPageBytes; }
uint64_t RoundDownToPage(uint64_t n) { return n / kPageBytes * kPageBytes; }

struct FreeAligned {
  void operator()(char* p) const { std::free(p); }
};

// POSIX: positional writes of whole pages into a zero-filled stretch kept
// ahead of size_.
class PreallocatedSegmentFile final : public SegmentFile {
 public:
  // `direct_fd`: the same file opened with O_DIRECT, or -1 (then every write is
  // buffered). `tail`: the file's bytes from the start of its last page to `size`.
  PreallocatedSegmentFile(std::string path, int fd, int direct_fd, uint64_t size, std::string_view tail, uint64_t step,
                          uint64_t limit)
      : path_(std::move(path)),
        fd_(fd),
        direct_fd_(direct_fd),
        size_(size),
        step_(RoundUpToPage(step)),
        limit_(limit),
        zeroed_end_(RoundUpToPage(size)),
        data_end_(RoundUpToPage(size)) {
    std::memcpy(tail_, tail.data(), tail.size());
  }
  ~PreallocatedSegmentFile() override {
    ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  // The buffer holds [RoundDownToPage(size_), size_) (the kept tail), then the
  // chunk, then room for the zero padding to the next page end.
  void StartChunk() override {
    head_ = static_cast<size_t>(size_ - RoundDownToPage(size_));
    chunk_len_ = 0;
    Reserve(head_);
    std::memcpy(buf_.get(), tail_, head_);
  }

  char* ExtendChunk(size_t n) override {
    Reserve(head_ + chunk_len_ + n);
    char* p = buf_.get() + head_ + chunk_len_;
    chunk_len_ += n;
    return p;
  }

  std::string_view chunk() const override { return std::string_view(buf_.get() + head_, chunk_len_); }

  Status AppendChunk() override {
    const uint64_t end = size_ + chunk_len_;
    if (end <= zeroed_end_.load(std::memory_order_acquire)) {
      // Inside the zero stretch (page-aligned, so the padding is too): the
      // preallocator only writes past it.
      RETURN_IF_ERROR(WritePages());
    } else {
      // Past it (the preallocator is behind): an ordinary extending write,
      // serialised with the preallocator so neither overwrites the other.
      std::lock_guard l(mu_);
      RETURN_IF_ERROR(WritePages());
      data_end_ = std::max(data_end_, RoundUpToPage(end));
    }
    CommitStaged();
    return Status::OK();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno("fdatasync", path_, errno);
    return Status::OK();
  }

  Status Seal() override {
    {
      std::lock_guard l(mu_);
      done_ = true;
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return Status::FromErrno("ftruncate", path_, errno);
      zeroed_end_.store(size_, std::memory_order_release);
      data_end_ = size_;
    }
    return Sync();
  }

  Status Close() override {
    std::lock_guard l(mu_);
    if (done_) return Status::OK();
    done_ = true;
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return Status::FromErrno("ftruncate", path_, errno);
    return Status::OK();
  }

  uint64_t Size() const override { return size_; }

  bool StageChunk(int* fd, const char** buf, size_t* len, uint64_t* pos) override {
    // Past the zero stretch the write extends the file: not for the parallel path
    // (it is serialised with the preallocator).
    if (direct_fd_ < 0 || size_ + chunk_len_ > zeroed_end_.load(std::memory_order_acquire)) return false;
    *fd = direct_fd_;
    *buf = buf_.get();
    *len = Pad();
    *pos = RoundDownToPage(size_);
    return true;
  }

  void CommitStaged() override {
    const uint64_t base = RoundDownToPage(size_);
    const uint64_t end = size_ + chunk_len_;
    const uint64_t new_base = RoundDownToPage(end);
    std::memcpy(tail_, buf_.get() + (new_base - base), static_cast<size_t>(end - new_base));
    size_ = end;
    head_ = static_cast<size_t>(end - new_base);
    chunk_len_ = 0;
  }

  bool WantsPreallocation() const override {
    uint64_t zeroed = zeroed_end_.load(std::memory_order_relaxed);
    return zeroed < size_ + step_ / 2 && zeroed < limit_;
  }

  Status Preallocate() override {
    uint64_t to;
    {
      std::lock_guard l(mu_);
      if (done_) return Status::OK();
      uint64_t from = std::max(zeroed_end_.load(std::memory_order_relaxed), data_end_);
      to = RoundUpToPage(std::min(from + step_, std::max(from, limit_)));
      if (to <= from) return Status::OK();
      RETURN_IF_ERROR(WriteZeros(from, to));
    }
    // Sync before publishing: a commit into the stretch then flushes data only.
    // (The descriptor lives as long as this object, so syncing after a
    // concurrent Seal/Close is harmless.)
    RETURN_IF_ERROR(Sync());
    std::lock_guard l(mu_);
    if (!done_) zeroed_end_.store(std::max(zeroed_end_.load(std::memory_order_relaxed), to), std::memory_order_release);
    return Status::OK();
  }

 private:
  // Makes buf_ big enough for n bytes plus the padding to a page end.
  void Reserve(size_t n) {
    const size_t need = static_cast<size_t>(RoundUpToPage(n + 1));
    if (need <= buf_cap_) return;
    const size_t cap = std::max(need, 2 * buf_cap_);
    std::unique_ptr<char, FreeAligned> bigger(static_cast<char*>(std::aligned_alloc(kPageBytes, cap)));
    if (!bigger) throw std::bad_alloc();
    if (buf_) std::memcpy(bigger.get(), buf_.get(), head_ + chunk_len_);
    buf_ = std::move(bigger);
    buf_cap_ = cap;
  }

  // Zero-fills the buffer from the chunk's end to its page end; returns the
  // bytes to write from buf_ (whole pages).
  size_t Pad() {
    const size_t used = head_ + chunk_len_;
    const size_t total = static_cast<size_t>(RoundUpToPage(used));
    std::memset(buf_.get() + used, 0, total - used);
    return total;
  }

  // Writes the chunk followed by zeros to the end of its last page. O_DIRECT:
  // the whole pages of the buffer (it starts with the kept tail of the last
  // page), so nothing goes through the page cache. Buffered: from size_; the
  // padding keeps the last page whole in the cache, since the zero fills bypass
  // it and a partial write into an uncached page would read it from disk first.
  Status WritePages() {
    const size_t total = Pad();
    if (direct_fd_ >= 0) {
      iovec iov = {buf_.get(), total};
      return WriteVec(direct_fd_, RoundDownToPage(size_), &iov, 1);
    }
    iovec iov = {buf_.get() + head_, total - head_};
    return WriteVec(fd_, size_, &iov, 1);
  }

  // REQUIRES: from and to are page-aligned.
  Status WriteZeros(uint64_t from, uint64_t to) {
    constexpr int kIov = 64;
    iovec iov[kIov];
    int n = 0;
    for (uint64_t p = from; p < to && n < kIov; p += kZeroBlock)
      iov[n++] = {const_cast<char*>(kZeros), static_cast<size_t>(std::min<uint64_t>(kZeroBlock, to - p))};
    // O_DIRECT: no copy into the page cache (buffered, zero-filling cost a
    // fifth of the collector's CPU).
    while (from < to) {
      int used = 0;
      uint64_t bytes = 0;
      for (; used < n && bytes < to - from; ++used) bytes += iov[used].iov_len;
      iovec last = iov[used - 1];
      if (bytes > to - from) iov[used - 1].iov_len -= static_cast<size_t>(bytes - (to - from));
      Status s = WriteVec(direct_fd_ >= 0 ? direct_fd_ : fd_, from, iov, used);
      iov[used - 1] = last;
      RETURN_IF_ERROR(s);
      from += std::min(bytes, to - from);
    }
    return Status::OK();
  }

  // Writes all of iov[0, n) at `pos` (modifies iov).
  Status WriteVec(int fd, uint64_t pos, iovec* iov, int n) {
    while (n > 0) {
      ssize_t w = ::pwritev(fd, iov, n, static_cast<off_t>(pos));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("pwritev", path_, errno);
      }
      if (w == 0) return Status::IOError("pwritev wrote nothing to " + path_);
      pos += static_cast<uint64_t>(w);
      size_t left = static_cast<size_t>(w);
      while (n > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --n;
      }
      if (n > 0) {
        iov->iov_base = static_cast<char*>(iov->iov_base) + left;
        iov->iov_len -= left;
      }
    }
    return Status::OK();
  }

  const std::string path_;
  const int fd_;
  const int direct_fd_;
  // The committer's:
  uint64_t size_;                           // the logical end: bytes of records
  char tail_[kPageBytes];                   // bytes [RoundDownToPage(size_), size_)
  std::unique_ptr<char, FreeAligned> buf_;  // page-aligned: tail, chunk, padding
  size_t buf_cap_ = 0;
  size_t head_ = 0;       // tail bytes at the start of buf_
  size_t chunk_len_ = 0;  // chunk bytes after them
  const uint64_t step_;
  const uint64_t limit_;  // the segment size at which the log rolls

  std::mutex mu_;  // serialises writes past zeroed_end_, Seal/Close and the preallocator
  // [RoundUpToPage(size_), zeroed_end_) holds zeros, synced. Raised by the
  // preallocator; the writer reads it without the lock to take the fast path.
  std::atomic<uint64_t> zeroed_end_;
  uint64_t data_end_;  // page end of the writer's writes past zeroed_end_; GUARDED_BY(mu_)
  bool done_ = false;  // sealed or closed; GUARDED_BY(mu_)
};

}  // namespace

Result<std::shared_ptr<SegmentFile>> OpenSegmentFile(FileSystem* fs, const std::string& path, bool create,
                                                     uint64_t preallocate_bytes, uint64_t segment_bytes) {
  if (preallocate_bytes == 0 || fs != FileSystem::Default()) {
    std::unique_ptr<WritableFile> f;
    if (create) {
      ASSIGN_OR_RETURN(f, fs->NewWritableFile(path));
    } else {
      ASSIGN_OR_RETURN(f, fs->NewAppendableFile(path));
    }
    return std::shared_ptr<SegmentFile>(new PlainSegmentFile(std::move(f)));
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (create ? O_TRUNC : 0), 0644);
  if (fd < 0) return Status::FromErrno("open", path, errno);
  auto fail = [&](const char* op) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno(op, path, err);
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail("fstat");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  char tail[kPageBytes];
  const size_t head = static_cast<size_t>(size - RoundDownToPage(size));
  if (head > 0 && ::pread(fd, tail, head, static_cast<off_t>(size - head)) != static_cast<ssize_t>(head))
    return fail("pread");
  // Without O_DIRECT (some file systems refuse it) every write is buffered.
  int direct_fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  return std::shared_ptr<SegmentFile>(
      new PreallocatedSegmentFile(path, fd, direct_fd, size, std::string_view(tail, head),
                                  std::min(preallocate_bytes, segment_bytes), segment_bytes));
}

SegmentCommitter::~SegmentCommitter() {
  if (aio_ != 0) ::syscall(SYS_io_destroy, static_cast<aio_context_t>(aio_));
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : helpers_) t.join();
}

void SegmentCommitter::WriteBlocking(const std::vector<SegmentWrite*>& writes, bool sync) {
  auto run = [sync](SegmentWrite* w) {
    w->status = w->file->AppendChunk();
    if (w->status.ok() && sync) w->status = w->file->Sync();
  };
  if (writes.size() == 1) return run(writes[0]);
  constexpr size_t kMaxHelpers = 15;
  while (helpers_.size() < std::min(writes.size() - 1, kMaxHelpers)) helpers_.emplace_back([this] { HelperLoop(); });
  std::unique_lock l(mu_);
  batch_ = writes;
  batch_sync_ = sync;
  next_ = 0;
  finished_ = 0;
  work_cv_.notify_all();
  while (next_ < batch_.size()) {
    SegmentWrite* w = batch_[next_++];
    l.unlock();
    run(w);
    l.lock();
    ++finished_;
  }
  done_cv_.wait(l, [&] { return finished_ == batch_.size(); });
  batch_.clear();
}

void SegmentCommitter::HelperLoop() {
  std::unique_lock l(mu_);
  for (;;) {
    work_cv_.wait(l, [&] { return stop_ || next_ < batch_.size(); });
    if (stop_) return;
    SegmentWrite* w = batch_[next_++];
    const bool sync = batch_sync_;
    l.unlock();
    w->status = w->file->AppendChunk();
    if (w->status.ok() && sync) w->status = w->file->Sync();
    l.lock();
    if (++finished_ == batch_.size()) done_cv_.notify_one();
  }
}

void SegmentCommitter::Write(std::vector<SegmentWrite>* writes, bool sync) {
  constexpr unsigned kMaxInFlight = 256;
  std::vector<iocb> cbs;
  std::vector<size_t> async_of;  // cbs[i] belongs to (*writes)[async_of[i]]
  if (!aio_unavailable_ && !writes->empty()) {
    if (aio_ == 0) {
      aio_context_t ctx = 0;
      if (::syscall(SYS_io_setup, kMaxInFlight, &ctx) == 0) {
        aio_ = ctx;
      } else {
        aio_unavailable_ = true;
        spdlog::warn("event log: no Linux AIO ({}); segment writes block, on helper threads", std::strerror(errno));
      }
    }
    for (size_t i = 0; aio_ != 0 && i < writes->size() && cbs.size() < kMaxInFlight; ++i) {
      SegmentWrite& w = (*writes)[i];
      int fd;
      const char* buf;
      size_t len;
      uint64_t pos;
      if (!w.file->StageChunk(&fd, &buf, &len, &pos)) continue;
      iocb cb{};
      cb.aio_data = i;
      cb.aio_lio_opcode = IOCB_CMD_PWRITE;
      cb.aio_fildes = static_cast<uint32_t>(fd);
      cb.aio_buf = reinterpret_cast<uint64_t>(buf);
      cb.aio_nbytes = len;
      cb.aio_offset = static_cast<int64_t>(pos);
      cb.aio_rw_flags = sync ? RWF_DSYNC : 0;
      cbs.push_back(cb);
      async_of.push_back(i);
    }
  }
  std::vector<bool> submitted(writes->size(), false);
  size_t in_flight = 0;
  if (!cbs.empty()) {
    std::vector<iocb*> ptrs;
    for (auto& cb : cbs) ptrs.push_back(&cb);
    while (in_flight < ptrs.size()) {
      long n = ::syscall(SYS_io_submit, static_cast<aio_context_t>(aio_), static_cast<long>(ptrs.size() - in_flight),
                         ptrs.data() + in_flight);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // Not supported here (e.g. RWF_DSYNC on an old kernel): the rest go one by one.
        if (in_flight == 0) {
          aio_unavailable_ = true;
          spdlog::warn("event log: io_submit failed ({}); segment writes block from now on, on helper threads",
                       n < 0 ? std::strerror(errno) : "nothing submitted");
        }
        break;
      }
      in_flight += static_cast<size_t>(n);
    }
    for (size_t i = 0; i < in_flight; ++i) submitted[async_of[i]] = true;
  }
  // The others, blocking, while the submitted ones are in flight.
  std::vector<SegmentWrite*> blocking;
  for (size_t i = 0; i < writes->size(); ++i) {
    if (!submitted[i]) blocking.push_back(&(*writes)[i]);
  }
  if (!blocking.empty()) WriteBlocking(blocking, sync);
  std::vector<io_event> events(in_flight);
  size_t done = 0;
  while (done < in_flight) {
    long n = ::syscall(SYS_io_getevents, static_cast<aio_context_t>(aio_), static_cast<long>(in_flight - done),
                       static_cast<long>(in_flight - done), events.data() + done, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Cannot happen with a valid context; the writes' fate is unknown, so fail them.
      Status s = Status::FromErrno("io_getevents", "", errno);
      for (size_t i = 0; i < writes->size(); ++i) {
        if (submitted[i]) (*writes)[i].status = s;
      }
      return;
    }
    done += static_cast<size_t>(n);
  }
  for (const io_event& ev : events) {
    SegmentWrite& w = (*writes)[ev.data];
    const iocb& cb = cbs[std::find(async_of.begin(), async_of.end(), ev.data) - async_of.begin()];
    if (ev.res == static_cast<int64_t>(cb.aio_nbytes)) {
      w.file->CommitStaged();
      w.status = Status::OK();
    } else if (ev.res < 0) {
      w.status = Status::FromErrno(sync ? "pwrite (O_DIRECT|O_DSYNC)" : "pwrite (O_DIRECT)", "a log segment",
                                   static_cast<int>(-ev.res));
    } else {
      w.status = Status::IOError("short asynchronous write to a log segment (" + std::to_string(ev.res) + " of " +
                                 std::to_string(cb.aio_nbytes) + " bytes)");
    }
  }
}

SegmentPreallocator::SegmentPreallocator() : thread_([this] { Loop(); }) {}

SegmentPreallocator::~SegmentPreallocator() { Stop(); }

void SegmentPreallocator::Request(std::shared_ptr<SegmentFile> file) {
  {
    std::lock_guard l(mu_);
    if (stop_) return;
    for (const auto& f : queue_) {
      if (f == file) return;
    }
    queue_.push_back(std::move(file));
  }
  cv_.notify_one();
}

void SegmentPreallocator::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void SegmentPreallocator::Loop() {
  for (;;) {
    std::shared_ptr<SegmentFile> file;
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      file = queue_.front();
    }
    // Still queued while it runs, so a writer asking again meanwhile adds nothing.
    Status s = file->Preallocate();
    if (!s.ok()) {
      spdlog::warn("event log: could not preallocate a segment (commits stay correct, only slower): {}", s.ToString());
    }
    std::lock_guard l(mu_);
    if (!queue_.empty() && queue_.front() == file) queue_.pop_front();
  }
}

}  // namespace clicklake::log
