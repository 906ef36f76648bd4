#include "collector/admission.h"

#include <cctype>
#include <utility>

namespace clicklake::collector {

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with single backtrack point: linear-ish, no recursion.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  auto eq = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && eq(pattern[p], text[t])))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

AdmissionQueue::AdmissionQueue(AdmissionOptions options)
    : options_(std::move(options)),
      high_water_bytes_(options_.max_events > 0 ? static_cast<int64_t>(static_cast<double>(options_.max_bytes) *
                                                                       static_cast<double>(options_.high_water_events) /
                                                                       static_cast<double>(options_.max_events))
                                                : options_.max_bytes) {}

bool AdmissionQueue::IsLowPriority(std::string_view event_name) const {
  if (event_name.empty()) return false;
  for (const std::string& p : options_.low_priority) {
    if (GlobMatch(p, event_name)) return true;
  }
  return false;
}

AdmissionQueue::Decision AdmissionQueue::Admit(const std::vector<Item>& items) {
  Decision d;
  d.shed.assign(items.size(), false);
  std::lock_guard<std::mutex> lock(mu_);
  bool shedding = events_ >= options_.high_water_events || bytes_ >= high_water_bytes_;
  int64_t n = 0, b = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (shedding && items[i].low_priority) {
      d.shed[i] = true;
      ++d.shed_count;
      continue;
    }
    ++n;
    b += items[i].bytes;
  }
  // Past the high-water mark the kept events must still fit; an empty batch always "fits".
  if (n > 0 && (events_ + n > options_.max_events || bytes_ + b > options_.max_bytes)) {
    d.shed.assign(items.size(), false);
    d.shed_count = 0;
    return d;
  }
  if (n == 0 && d.shed_count > 0) return d;  // everything shed: nothing queued, answer 503
  events_ += n;
  bytes_ += b;
  d.admitted = true;
  d.events = n;
  d.bytes = b;
  return d;
}

void AdmissionQueue::Release(int64_t events, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  events_ -= events;
  bytes_ -= bytes;
}

int64_t AdmissionQueue::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

int64_t AdmissionQueue::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

bool AdmissionQueue::AboveHighWater() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_ >= options_.high_water_events || bytes_ >= high_water_bytes_;
}

bool AdmissionQueue::Full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_ >= options_.max_events || bytes_ >= options_.max_bytes;
}

}  // namespace clicklake::collector
