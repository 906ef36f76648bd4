#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace clicklake {
namespace {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string RenderLabels(const Labels& labels, const std::string& extra_key = "", const std::string& extra = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + EscapeLabel(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out += ",";
    out += extra_key + "=\"" + extra + "\"";
  }
  out += "}";
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); i++) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) i++;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::vector<int64_t> Histogram::CumulativeCounts() const {
  std::vector<int64_t> out(bounds_.size() + 1);
  int64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); i++) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::Quantile(double q) const {
  auto cum = CumulativeCounts();
  int64_t total = cum.back();
  if (total == 0) return 0;
  double rank = q * static_cast<double>(total);
  for (size_t i = 0; i < cum.size(); i++) {
    if (static_cast<double>(cum[i]) >= rank) {
      if (i == bounds_.size()) return bounds_.empty() ? 0 : bounds_.back();
      double lo = i == 0 ? 0 : bounds_[i - 1];
      double prev = i == 0 ? 0 : static_cast<double>(cum[i - 1]);
      double in_bucket = static_cast<double>(cum[i]) - prev;
      if (in_bucket <= 0) return bounds_[i];
      return lo + (bounds_[i] - lo) * ((rank - prev) / in_bucket);
    }
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

std::vector<double> MetricsRegistry::DefaultLatencyBounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

MetricsRegistry* MetricsRegistry::Global() {
  static MetricsRegistry registry;
  return &registry;
}

MetricsRegistry::Family* MetricsRegistry::GetFamily(const std::string& name, const std::string& help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(name, Family{kind, help, {}, {}, {}}).first;
  } else if (it->second.kind != kind) {
    throw std::logic_error("metric " + name + " registered with two kinds");
  }
  return &it->second;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard l(mu_);
  auto& slot = GetFamily(name, help, Kind::kCounter)->counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard l(mu_);
  auto& slot = GetFamily(name, help, Kind::kGauge)->gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                         std::vector<double> bounds) {
  std::lock_guard l(mu_);
  auto& slot = GetFamily(name, help, Kind::kHistogram)->histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard l(mu_);
  std::ostringstream os;
  for (const auto& [name, fam] : families_) {
    os << "# HELP " << name << " " << fam.help << "\n";
    switch (fam.kind) {
      case Kind::kCounter:
        os << "# TYPE " << name << " counter\n";
        for (const auto& [labels, c] : fam.counters) os << name << RenderLabels(labels) << " " << c->value() << "\n";
        break;
      case Kind::kGauge:
        os << "# TYPE " << name << " gauge\n";
        for (const auto& [labels, g] : fam.gauges)
          os << name << RenderLabels(labels) << " " << FormatDouble(g->value()) << "\n";
        break;
      case Kind::kHistogram:
        os << "# TYPE " << name << " histogram\n";
        for (const auto& [labels, h] : fam.histograms) {
          auto cum = h->CumulativeCounts();
          for (size_t i = 0; i < h->bounds().size(); i++)
            os << name << "_bucket" << RenderLabels(labels, "le", FormatDouble(h->bounds()[i])) << " " << cum[i]
               << "\n";
          os << name << "_bucket" << RenderLabels(labels, "le", "+Inf") << " " << cum.back() << "\n";
          os << name << "_sum" << RenderLabels(labels) << " " << FormatDouble(h->sum()) << "\n";
          os << name << "_count" << RenderLabels(labels) << " " << h->count() << "\n";
        }
        break;
    }
  }
  return os.str();
}

}  // namespace clicklake
