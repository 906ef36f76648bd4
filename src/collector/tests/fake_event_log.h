// FakeEventLog: an in-memory EventLog for the collector's tests (test code only).
//
// Appends are stored in a vector and acknowledged from a worker thread, like a
// real log. Tests can hold acknowledgements (to fill the collector's queue or to
// test draining), fail the next appends with a chosen status, and read back the
// stored RawEvents. Only what the collector uses is implemented.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/raw_event.h"
#include "log/event_log.h"

namespace clicklake::collector::testing {

class FakeEventLog final : public log::EventLog {
 public:
  FakeEventLog() : worker_([this] { Run(); }) {}
  ~FakeEventLog() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
      done_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  int32_t num_partitions() const override { return 4; }
  int32_t PartitionFor(std::string_view key) const override {
    return static_cast<int32_t>(std::hash<std::string_view>()(key) % 4);
  }

  void AppendAsync(std::vector<log::LogEntry> entries, log::AppendCallback done) override {
    Status inline_failure;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++append_calls_;
      inline_failure = fail_inline_;
    }
    if (!inline_failure.ok()) {  // like LocalLog when its buffer is full: on the caller's thread
      done(inline_failure);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back({std::move(entries), std::move(done)});
    }
    cv_.notify_all();
  }

  Result<std::vector<log::LogRecord>> Read(int32_t, int64_t, size_t, size_t) override {
    return Status::Unsupported("fake");
  }
  Result<log::PartitionInfo> GetPartitionInfo(int32_t) override { return Status::Unsupported("fake"); }
  Status CommitOffsets(const std::string&, const std::map<int32_t, int64_t>&) override { return Status::OK(); }
  Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string&) override {
    return std::map<int32_t, int64_t>{};
  }
  Status EnforceRetention() override { return Status::OK(); }
  Status Close() override { return Status::OK(); }

  // While held, appends wait (neither stored nor acknowledged).
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    cv_.notify_all();
  }
  // Appends fail with `status` (nothing stored) until cleared with OK.
  void FailWith(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  // Appends fail with `status` inline (before AppendAsync returns) until cleared with OK.
  void FailInline(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_inline_ = std::move(status);
  }
  // Appends waiting while held.
  size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  int append_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return append_calls_;
  }

  std::vector<log::LogEntry> entries() {
    std::lock_guard<std::mutex> lock(mu_);
    return stored_;
  }
  std::vector<RawEvent> events() {
    std::vector<RawEvent> out;
    for (const auto& e : entries()) {
      RawEvent r;
      if (DecodeRawEvent(e.value, &r).ok()) out.push_back(std::move(r));
    }
    return out;
  }

 private:
  struct Pending {
    std::vector<log::LogEntry> entries;
    log::AppendCallback done;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return done_ || (!hold_ && !queue_.empty()); });
      if (queue_.empty() && done_) return;
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      Status status = fail_;
      if (status.ok()) {
        for (auto& e : p.entries) stored_.push_back(std::move(e));
      }
      lock.unlock();
      p.done(status);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;          // GUARDED_BY(mu_)
  std::vector<log::LogEntry> stored_;  // GUARDED_BY(mu_)
  Status fail_;                        // GUARDED_BY(mu_)
  Status fail_inline_;                 // GUARDED_BY(mu_)
  bool hold_ = false;                  // GUARDED_BY(mu_)
  bool done_ = false;                  // GUARDED_BY(mu_)
  int append_calls_ = 0;               // GUARDED_BY(mu_)
  std::thread worker_;
};

}  // namespace clicklake::collector::testing
