// AppendCompletion: joins the parts of one EventLog::AppendAsync (partitions of
// LocalLog, messages of KafkaLog) into its single callback, which runs once, when
// the last part finishes, with the first error if any part failed.
//
// Internal to src/log. Thread-safe: parts may finish on different threads.
#pragma once

#include <atomic>
#include <mutex>

#include "log/event_log.h"

namespace clicklake::log {

class AppendCompletion {
 public:
  AppendCompletion(int parts, AppendCallback cb) : remaining_(parts), cb_(std::move(cb)) {}

  // Records one part's outcome; returns true for the last part, after running the callback.
  bool Finish(const Status& s) {
    if (!s.ok()) {
      std::lock_guard l(mu_);
      if (status_.ok()) status_ = s;
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
    Status final_status;
    {
      std::lock_guard l(mu_);
      final_status = status_;
    }
    cb_(final_status);
    return true;
  }

 private:
  std::atomic<int> remaining_;
  std::mutex mu_;
  Status status_;  // GUARDED_BY(mu_)
  AppendCallback cb_;
};

}  // namespace clicklake::log
