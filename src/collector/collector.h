// Collector: clicklake's HTTP ingestion endpoint (DESIGN.md §2).
//
// Accepts events from existing trackers — the Segment HTTP API (/v1/batch,
// /v1/track, ...), the Snowplow tracker protocol (POST .../tp2, GET /i) and the
// native POST /collect — validates and authenticates them, and appends one
// RawEvent per event to the EventLog. A request is answered 200 only after the
// log acknowledged (made durable) every one of its events. The collector never
// touches tables.
//
// Also serves /health, /ready and /metrics (Prometheus text from
// MetricsRegistry::Global()). TLS when collector.tls_cert/tls_key are set.
//
// Ownership: the caller owns the EventLog and the Clock; both must outlive the
// Collector. Thread safety: Start/Stop from one controlling thread;
// AddWriteKey/RevokeWriteKey/port are thread-safe at any time. Requests are
// served on `threads` background I/O threads (async Boost.Beast, keep-alive).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/status.h"
#include "log/event_log.h"

namespace clicklake::collector {

struct CollectorOptions {
  std::string host = "127.0.0.1";                 // collector.host
  int port = 8080;                                // collector.port; 0 = ephemeral (see Collector::port())
  int threads = 2;                                // collector.threads: I/O threads
  std::map<std::string, std::string> write_keys;  // collector.write_keys: key → source
  std::vector<std::string> trusted_proxies;  // collector.trusted_proxies: IPs or CIDRs allowed to set X-Forwarded-For
  size_t max_event_bytes = 32 * 1024;        // collector.max_event_bytes
  size_t max_request_bytes = 500 * 1024;     // collector.max_request_bytes (compressed and decompressed)
  int64_t queue_max_events = 100000;         // collector.queue_max_events: events awaiting the log's ack
  int64_t queue_max_bytes = 256LL << 20;     // collector.queue_max_bytes
  int64_t queue_high_water = 80000;          // collector.queue_high_water: shed low-priority events past it
  std::vector<std::string> low_priority_events = {  // collector.low_priority_events (glob patterns)
      "*debug*", "*diagnostic*", "*heartbeat*", "page_ping"};
  std::string tls_cert;                  // collector.tls_cert (PEM chain file)
  std::string tls_key;                   // collector.tls_key (PEM private key file)
  int64_t read_timeout_us = 10'000'000;  // collector.read_timeout: a request must arrive within it
  int64_t idle_timeout_us = 60'000'000;  // collector.idle_timeout: keep-alive connections idle longer are closed
  int retry_after_s = 1;                 // collector.retry_after: Retry-After on 503
  std::map<std::string, std::string> snowplow_app_ids;  // collector.snowplow_app_ids: aid → source
  // collector.snowplow_default_source: source for Snowplow events whose aid is not
  // mapped. Default "snowplow"; set it to "" to refuse unmapped app ids (401).
  std::string snowplow_default_source = "snowplow";

  // Reads the collector.* settings (defaults above for absent ones).
  static Result<CollectorOptions> FromConfig(const Config& config);
};

class Collector {
 public:
  static Result<std::unique_ptr<Collector>> Create(const Config& config, log::EventLog* log,
                                                   Clock* clock = SystemClock());
  static Result<std::unique_ptr<Collector>> Create(CollectorOptions options, log::EventLog* log,
                                                   Clock* clock = SystemClock());
  ~Collector();  // Stops if running.

  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Binds host:port and serves on background threads. InvalidArgument for a bad
  // TLS configuration; IOError when the address cannot be bound.
  Status Start();
  // The bound port (after Start); 0 before.
  int port() const;

  // Live write-key changes; take effect for the next request.
  void AddWriteKey(const std::string& key, const std::string& source);
  void RevokeWriteKey(const std::string& key);

  // Stops accepting, answers requests that arrive meanwhile with 503, waits for
  // in-flight requests (their log acks and responses), then closes every
  // connection and joins the threads. Idempotent.
  Status Stop();

  class Impl;

 private:
  explicit Collector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clicklake::collector
