// CollectorOptions::FromConfig: the collector.* settings.
#include "collector/collector.h"

namespace clicklake::collector {

Result<CollectorOptions> CollectorOptions::FromConfig(const Config& config) {
  CollectorOptions o;
  o.host = config.GetString("collector.host", o.host);
  o.port = static_cast<int>(config.GetInt("collector.port", o.port));
  o.threads = static_cast<int>(config.GetInt("collector.threads", o.threads));
  o.write_keys = config.GetStringMap("collector.write_keys");
  o.trusted_proxies = config.GetStringList("collector.trusted_proxies");
  o.max_event_bytes =
      static_cast<size_t>(config.GetInt("collector.max_event_bytes", static_cast<int64_t>(o.max_event_bytes)));
  o.max_request_bytes =
      static_cast<size_t>(config.GetInt("collector.max_request_bytes", static_cast<int64_t>(o.max_request_bytes)));
  o.queue_max_events = config.GetInt("collector.queue_max_events", o.queue_max_events);
  o.queue_max_bytes = config.GetInt("collector.queue_max_bytes", o.queue_max_bytes);
  o.queue_high_water =
      config.GetInt("collector.queue_high_water",
                    config.Has("collector.queue_max_events") ? o.queue_max_events * 8 / 10 : o.queue_high_water);
  if (config.Has("collector.low_priority_events"))
    o.low_priority_events = config.GetStringList("collector.low_priority_events");
  o.tls_cert = config.GetString("collector.tls_cert", "");
  o.tls_key = config.GetString("collector.tls_key", "");
  o.read_timeout_us = config.GetDurationMicros("collector.read_timeout", o.read_timeout_us);
  o.idle_timeout_us = config.GetDurationMicros("collector.idle_timeout", o.idle_timeout_us);
  o.retry_after_s =
      static_cast<int>(config.GetDurationMicros("collector.retry_after", o.retry_after_s * 1'000'000LL) / 1'000'000);
  o.snowplow_app_ids = config.GetStringMap("collector.snowplow_app_ids");
  o.snowplow_default_source = config.GetString("collector.snowplow_default_source", o.snowplow_default_source);

  if (o.port < 0 || o.port > 65535) return Status::InvalidArgument("collector.port must be 0..65535");
  if (o.threads < 1) return Status::InvalidArgument("collector.threads must be at least 1");
  if (o.max_event_bytes == 0 || o.max_request_bytes == 0) {
    return Status::InvalidArgument("collector.max_event_bytes and collector.max_request_bytes must be positive");
  }
  if (o.queue_max_events < 1 || o.queue_max_bytes < 1 || o.queue_high_water < 0 ||
      o.queue_high_water > o.queue_max_events) {
    return Status::InvalidArgument(
        "collector.queue_max_events/queue_max_bytes must be positive and queue_high_water <= queue_max_events");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Status::InvalidArgument("set both collector.tls_cert and collector.tls_key (or neither)");
  }
  if (o.retry_after_s < 1) o.retry_after_s = 1;
  return o;
}

}  // namespace clicklake::collector
