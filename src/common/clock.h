// Clock: wall time and sleeping, behind an interface so tests control time.
//
// SystemClock() is the real clock. FakeClock starts at a given time and moves
// only when told (Advance) or when someone sleeps on it (Sleep advances it
// instead of blocking), so micro-batch triggers, session timeouts and freshness
// are tested without waiting. Both are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace clicklake {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch, UTC.
  virtual int64_t NowMicros() = 0;
  // Monotonic microseconds, for measuring durations.
  virtual int64_t MonotonicMicros() = 0;
  virtual void SleepForMicros(int64_t micros) = 0;

  int64_t NowMillis() { return NowMicros() / 1000; }
};

// The process-wide real clock.
Clock* SystemClock();

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros) : now_(start_micros) {}
  int64_t NowMicros() override { return now_.load(); }
  int64_t MonotonicMicros() override { return now_.load(); }
  void SleepForMicros(int64_t micros) override { now_ += micros; }
  void Advance(int64_t micros) { now_ += micros; }
  void Set(int64_t micros) { now_ = micros; }

 private:
  std::atomic<int64_t> now_;
};

// Formats microseconds since the epoch as ISO 8601 UTC: 2024-05-01T12:00:00.123456Z
std::string FormatTimestampMicros(int64_t micros);
// Parses ISO 8601 / RFC 3339 timestamps ("2024-05-01T12:00:00Z", fractional seconds,
// offsets like +02:00, a space instead of 'T'). Returns false if it is not one.
bool ParseTimestampMicros(std::string_view text, int64_t* micros);
// Days since the epoch → "YYYY-MM-DD".
std::string FormatDate(int64_t days_since_epoch);
inline int64_t MicrosToDays(int64_t micros) {
  return micros >= 0 ? micros / 86400000000LL : -((-micros + 86400000000LL - 1) / 86400000000LL);
}

}  // namespace clicklake
