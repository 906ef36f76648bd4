// RequestHandler: the collector's request logic, independent of the HTTP stack.
//
// The Beast server (collector.cc) reads a request, hands it here as an
// HttpRequest, and writes whatever HttpReply comes back. Handle() answers
// synchronously for errors and non-ingest routes, and asynchronously — from the
// log's callback thread — once the EventLog acknowledged an ingest request.
//
// Owns the write-key map, the admission queue and the collector's metrics.
// Thread safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/admission.h"
#include "collector/collector.h"
#include "collector/parsed_body.h"
#include "common/metrics.h"

namespace clicklake::collector {

struct HttpRequest {
  std::string method;  // "GET", "POST", "OPTIONS", ...
  std::string target;  // path + optional ?query
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  std::string origin;
  std::string user_agent;
  std::string forwarded_for;  // X-Forwarded-For
  std::string access_control_request_headers;
  std::string body;
  std::string peer_ip;  // the socket's remote address
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using ReplyFn = std::function<void(HttpReply)>;

// Trusted-proxy list: exact addresses or CIDR blocks (IPv4 and IPv6).
class ProxyList {
 public:
  static Result<ProxyList> Parse(const std::vector<std::string>& entries);
  bool Contains(const std::string& ip) const;

 private:
  struct Net {
    int family = 0;  // AF_INET / AF_INET6
    unsigned char addr[16] = {};
    int prefix = 0;
  };
  std::vector<Net> nets_;
};

// The client's address: the socket peer, or — when the peer is a trusted proxy —
// the right-most X-Forwarded-For entry that is not itself a trusted proxy.
std::string ClientIp(const std::string& peer_ip, const std::string& forwarded_for, const ProxyList& proxies);

class RequestHandler {
 public:
  RequestHandler(CollectorOptions options, ProxyList proxies, log::EventLog* log, Clock* clock);

  // Calls `reply` exactly once (maybe before returning, maybe from a log thread).
  void Handle(HttpRequest request, ReplyFn reply);

  void AddWriteKey(const std::string& key, const std::string& source);
  void RevokeWriteKey(const std::string& key);

  // New requests are answered 503 (the server is draining).
  void SetStopping() { stopping_.store(true); }
  // Requests handed to Handle() whose reply has not been produced yet.
  int64_t pending() const { return pending_.load(); }

  const AdmissionQueue& admission() const { return admission_; }

 private:
  enum class Protocol { kSegment, kSnowplow, kNative };
  struct Route;

  void Ingest(const Route& route, HttpRequest request, ReplyFn reply);
  void Finish(const std::string& route, int64_t start_us, ReplyFn& reply, HttpReply r);
  bool Ready(std::string* why) const;
  bool LookupWriteKey(const std::string& key, std::string* source) const;
  std::string SnowplowSource(const std::string& app_id, bool* ok) const;
  Counter* RequestCounter(const std::string& route, int code);
  Counter* EventCounter(const std::string& source, std::string_view protocol);
  HttpReply Overloaded(const std::string& why) const;

  const CollectorOptions options_;
  const ProxyList proxies_;
  const BodyLimits limits_;
  log::EventLog* const log_;
  Clock* const clock_;
  AdmissionQueue admission_;

  mutable std::shared_mutex keys_mu_;
  std::unordered_map<std::string, std::string> write_keys_;  // GUARDED_BY(keys_mu_)

  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> log_failed_at_us_{-1};  // monotonic time of the last failed append, -1 if none since the last OK

  // Metrics (owned by MetricsRegistry::Global()).
  MetricsRegistry* const metrics_;
  std::mutex metrics_mu_;
  std::map<std::pair<std::string, int>, Counter*> request_counters_;        // GUARDED_BY(metrics_mu_)
  std::map<std::pair<std::string, std::string>, Counter*> event_counters_;  // GUARDED_BY(metrics_mu_)
  std::map<std::string, Histogram*> latency_;                               // GUARDED_BY(metrics_mu_)
  Counter* bytes_received_;
  Counter* shed_low_priority_;
  Counter* shed_queue_full_;
  Counter* failed_log_unavailable_;
  Counter* failed_log_error_;
  Counter* errors_4xx_;
  Counter* errors_5xx_;
  Gauge* queue_events_;
  Gauge* queue_bytes_;
};

}  // namespace clicklake::collector
