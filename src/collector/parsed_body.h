// ParsedBody: what a body parser hands the collector — one entry per event.
//
// Parsers (segment_parser.h, snowplow_parser.h, native_parser.h) turn a request
// body into events whose `payload` already follows the payload rules of
// common/raw_event.h; the server adds source, client IP, user agent and
// receivedAt. Parsers never touch sockets or the log, so they are fuzzable.
//
// Errors: InvalidArgument → HTTP 400, ResourceExhausted → HTTP 413 (the message
// names the limit).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace clicklake::collector {

struct BodyLimits {
  size_t max_event_bytes = 32 * 1024;     // collector.max_event_bytes
  size_t max_request_bytes = 500 * 1024;  // collector.max_request_bytes (after decompression)
};

struct ParsedEvent {
  std::string payload;        // JSON text for RawEvent::payload
  std::string partition_key;  // userId, else anonymousId (Snowplow: uid, else duid)
  std::string event_name;     // what shedding patterns match ("page_ping", a track event's name, ...)
  std::string app_id;         // Snowplow `aid` (selects the source); empty otherwise
};

struct ParsedBody {
  std::vector<ParsedEvent> events;
  std::string write_key;  // `writeKey` found in the body, if any
};

}  // namespace clicklake::collector
