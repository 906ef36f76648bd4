// AdmissionQueue: the bounded queue between the HTTP front and the event log.
//
// Every event handed to EventLog::AppendAsync holds a slot (one event, its
// encoded bytes) until the log's callback runs. The queue is bounded in both.
// Past the high-water mark, events whose name matches a low-priority pattern
// ("*debug*", "page_ping", ...) are shed first; a request whose remaining
// events do not fit is refused as a whole (the server answers 503 +
// Retry-After), so nothing is acknowledged that was not stored.
//
// Thread safety: all methods are thread-safe (one mutex; O(1) work per call).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace clicklake::collector {

struct AdmissionOptions {
  int64_t max_events = 100000;            // collector.queue_max_events
  int64_t max_bytes = 256LL << 20;        // collector.queue_max_bytes
  int64_t high_water_events = 80000;      // collector.queue_high_water (events)
  std::vector<std::string> low_priority;  // collector.low_priority_events (glob patterns, case-insensitive)
};

// Case-insensitive glob match: '*' any run, '?' one character.
bool GlobMatch(std::string_view pattern, std::string_view text);

class AdmissionQueue {
 public:
  explicit AdmissionQueue(AdmissionOptions options);

  bool IsLowPriority(std::string_view event_name) const;

  struct Item {
    int64_t bytes = 0;
    bool low_priority = false;
  };
  struct Decision {
    bool admitted = false;   // false: nothing was queued; answer 503
    std::vector<bool> shed;  // per item: dropped as low priority (only when admitted)
    int64_t shed_count = 0;
    int64_t events = 0;  // queued events (release these)
    int64_t bytes = 0;   // queued bytes
  };
  // Reserves slots for the items that are kept.
  Decision Admit(const std::vector<Item>& items);
  // Returns the slots of an admitted batch once the log has answered.
  void Release(int64_t events, int64_t bytes);

  int64_t events() const;
  int64_t bytes() const;
  bool AboveHighWater() const;
  bool Full() const;
  const AdmissionOptions& options() const { return options_; }

 private:
  const AdmissionOptions options_;
  const int64_t high_water_bytes_;
  mutable std::mutex mu_;
  int64_t events_ = 0;  // GUARDED_BY(mu_)
  int64_t bytes_ = 0;   // GUARDED_BY(mu_)
};

}  // namespace clicklake::collector
