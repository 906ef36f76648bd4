// FileEventLog: a file-backed EventLog with group-commit fsync, for the
// collector's end-to-end tests and benchmark (test/bench code only; the real
// embedded log is src/log's LocalLog).
//
// Appends queue up; one writer thread writes everything queued, fsyncs once
// (group commit) and then acknowledges all of it — so an ack means the records
// are on disk. Formats: kJsonLines writes each RawEvent as one JSON object per
// line (e2e checkers read it); kBinary writes length-prefixed record values
// (what a log would store; used by the bench).
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/json_util.h"
#include "common/raw_event.h"
#include "log/event_log.h"

namespace clicklake::collector::testing {

class FileEventLog final : public log::EventLog {
 public:
  enum class Format { kJsonLines, kBinary };

  static Result<std::unique_ptr<FileEventLog>> Open(const std::string& path, Format format) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno("open", path, errno);
    return std::unique_ptr<FileEventLog>(new FileEventLog(fd, format));
  }
  ~FileEventLog() override { Close().IgnoreError(); }

  int32_t num_partitions() const override { return 1; }
  int32_t PartitionFor(std::string_view) const override { return 0; }

  void AppendAsync(std::vector<log::LogEntry> entries, log::AppendCallback done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_) {
        queue_.push_back({std::move(entries), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    done(Status::Unavailable("log closed"));
  }

  Result<std::vector<log::LogRecord>> Read(int32_t, int64_t, size_t, size_t) override {
    return Status::Unsupported("FileEventLog is write-only");
  }
  Result<log::PartitionInfo> GetPartitionInfo(int32_t) override { return Status::Unsupported("write-only"); }
  Status CommitOffsets(const std::string&, const std::map<int32_t, int64_t>&) override { return Status::OK(); }
  Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string&) override {
    return std::map<int32_t, int64_t>{};
  }
  Status EnforceRetention() override { return Status::OK(); }

  Status Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return Status::OK();
      closed_ = true;
    }
    cv_.notify_all();
    writer_.join();
    ::close(fd_);
    return Status::OK();
  }

  int64_t fsyncs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fsyncs_;
  }

 private:
  struct Pending {
    std::vector<log::LogEntry> entries;
    log::AppendCallback done;
  };

  FileEventLog(int fd, Format format) : fd_(fd), format_(format), writer_([this] { Run(); }) {}

  void Encode(const log::LogEntry& entry, std::string* out) {
    if (format_ == Format::kBinary) {
      uint32_t n = static_cast<uint32_t>(entry.value.size());
      out->append(reinterpret_cast<const char*>(&n), sizeof(n));
      out->append(entry.value);
      return;
    }
    RawEvent e;
    if (!DecodeRawEvent(entry.value, &e).ok()) return;
    out->append("{\"received_at_us\":" + std::to_string(e.received_at_us) + ",\"key\":");
    AppendJsonString(entry.key, out);
    out->append(",\"source\":");
    AppendJsonString(e.source, out);
    out->append(",\"protocol\":");
    AppendJsonString(e.protocol, out);
    out->append(",\"client_ip\":");
    AppendJsonString(e.client_ip, out);
    out->append(",\"user_agent\":");
    AppendJsonString(e.user_agent, out);
    out->append(",\"payload\":");
    out->append(e.payload);
    out->append("}\n");
  }

  void Run() {
    std::deque<Pending> batch;
    std::string buffer;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
        if (queue_.empty() && closed_) return;
        batch.swap(queue_);
      }
      buffer.clear();
      for (const Pending& p : batch) {
        for (const auto& e : p.entries) Encode(e, &buffer);
      }
      Status status;
      const char* data = buffer.data();
      size_t left = buffer.size();
      while (left > 0) {
        ssize_t n = ::write(fd_, data, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          status = Status::FromErrno("write", "event file", errno);
          break;
        }
        data += n;
        left -= static_cast<size_t>(n);
      }
      if (status.ok() && ::fdatasync(fd_) != 0) status = Status::FromErrno("fdatasync", "event file", errno);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++fsyncs_;
      }
      for (Pending& p : batch) p.done(status);
      batch.clear();
    }
  }

  const int fd_;
  const Format format_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  bool closed_ = false;        // GUARDED_BY(mu_)
  int64_t fsyncs_ = 0;         // GUARDED_BY(mu_)
  std::thread writer_;
};

}  // namespace clicklake::collector::testing
