// DeliveryQueue: a bounded FIFO drained by one background thread, for work
// that talks to the outside (HTTP with retries) and so must never hold up the
// caller — the processor's thread. Shared by lineage (OpenLineage events) and
// alerts (notifications).
//
//   DeliveryQueue<Event> q(capacity, [](Event& e) { Send(e); });
//   if (!q.Push(std::move(e))) Spill(e);   // full or stopped: the caller decides
//   q.Flush();                             // everything pushed so far is delivered
//   q.Stop();                              // delivers what is queued, then joins
//
// Thread safety: every method may be called from any thread; `deliver` runs on
// the queue's thread only, one item at a time, in order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace clicklake::governance {

template <typename T>
class DeliveryQueue {
 public:
  DeliveryQueue(size_t capacity, std::function<void(T&)> deliver)
      : capacity_(capacity), deliver_(std::move(deliver)), thread_([this] { Loop(); }) {}
  ~DeliveryQueue() { Stop(); }
  DeliveryQueue(const DeliveryQueue&) = delete;
  DeliveryQueue& operator=(const DeliveryQueue&) = delete;

  // False (and `item` left as it was) when the queue is full or stopping.
  bool Push(T&& item) {
    std::lock_guard l(mu_);
    if (stop_ || queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(item));
    cv_.notify_all();
    return true;
  }

  void Flush() {
    std::unique_lock l(mu_);
    idle_cv_.wait(l, [&] { return queue_.empty() && !busy_; });
  }

  void Stop() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // For `deliver`'s retry backoff: sleeps `micros`, cut short by Stop() (the
  // queue is then draining and should not wait out long backoffs).
  void SleepUnlessStopping(int64_t micros) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, std::chrono::microseconds(micros), [&] { return stop_; });
  }

 private:
  void Loop() {
    while (true) {
      T item;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, and drained
        item = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      deliver_(item);
      std::lock_guard l(mu_);
      busy_ = false;
      idle_cv_.notify_all();
    }
    std::lock_guard l(mu_);
    idle_cv_.notify_all();
  }

  const size_t capacity_;
  const std::function<void(T&)> deliver_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<T> queue_;  // GUARDED_BY(mu_)
  bool busy_ = false;    // GUARDED_BY(mu_): `deliver_` holds an item
  bool stop_ = false;    // GUARDED_BY(mu_)
  std::thread thread_;   // last: starts once the members above exist
};

}  // namespace clicklake::governance
