// Silver parsing: one accepted event (a RawEvent payload of any protocol) into
// the canonical fields of silver.events, with its event time (DESIGN.md §6).
//
//   segment  the event object (batch context and sentAt already merged by the
//            collector, see common/raw_event.h)
//   native   the canonical envelope, which is Segment-shaped
//   snowplow one tracker-protocol event: an object of string values (e, eid,
//            dtm, stm, ttm, uid, duid, url, refr, ua, ip, p, se_*, tr_*,
//            ue_pr/ue_px, co/cx ...)
//
// Parsing fails (a ParseError with a quarantine error_code) for input that
// cannot become a canonical event: invalid_json, unknown_protocol,
// missing_type, unknown_type, missing_event, no_identity, bad_timestamp.
// Per-event-name schemas are checked afterwards (contracts.h).
//
// Ownership: a CanonicalEvent's `properties` element points into the
// EventParser's parsers: it is valid until the next Parse() on that parser.
// Thread safety: an EventParser is used by one thread at a time.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/raw_event.h"

namespace clicklake::pipeline {

struct ParseOptions {
  // canonical name → canonical name (keys are canonicalised on load).
  std::map<std::string, std::string> event_aliases;
  // An event time later than received_at + this is clamped to received_at and flagged.
  int64_t future_tolerance_us = 10LL * 60 * 1000000;
  // An event time earlier than the newest event time seen − this is flagged
  // late (kept; decided by the Silver stage, which knows the watermark).
  int64_t allowed_lateness_us = 72LL * 3600 * 1000000;

  // silver.event_aliases (table), silver.future_tolerance, silver.allowed_lateness.
  static ParseOptions FromConfig(const Config& config);
};

struct ParseError {
  std::string code;    // silver.quarantine error_code
  std::string detail;  // human-readable
};

struct CanonicalEvent {
  std::string event_id;
  std::string event_type;  // track|page|screen|identify|group|alias
  std::string event_name;  // canonical snake_case
  int64_t event_ts = 0;
  int64_t received_at = 0;
  std::optional<int64_t> original_ts;
  std::optional<int64_t> sent_at;
  bool future_dated = false;
  bool late = false;  // set by SilverStage (see ParseOptions::allowed_lateness_us)
  std::optional<std::string> user_id;
  std::optional<std::string> anonymous_id;
  std::optional<std::string> group_id;
  std::string platform;  // web|ios|android|server|other
  std::optional<std::string> page_url, page_path, page_title, referrer_url;
  // context.campaign (used where the page URL carries no UTM parameters).
  std::optional<std::string> campaign_source, campaign_medium, campaign_name, campaign_term, campaign_content;
  std::optional<std::string> user_agent;  // payload's, else the request's (not for server events)
  std::optional<std::string> ip;          // payload's, else the request's (not for server events)
  std::optional<double> revenue;
  std::optional<std::string> currency;
  // The free-form part: track/page/screen properties, identify/group traits.
  // An object, or null when the event has none.
  simdjson::dom::element properties;
  bool has_properties = false;
  // The whole event object (experiment paths are resolved against it).
  simdjson::dom::element root;
};

// Canonical snake_case: "Product Viewed" → product_viewed, "productViewed" →
// product_viewed, "Order-Completed!" → order_completed.
std::string CanonicalEventName(std::string_view name);

class EventParser {
 public:
  explicit EventParser(ParseOptions options) : options_(std::move(options)) {}

  // Parses `raw` (ingest_id is "<partition>-<offset>", the fallback event id).
  // Returns false with *error set when the event belongs in quarantine.
  bool Parse(const RawEvent& raw, std::string_view ingest_id, CanonicalEvent* out, ParseError* error);

  const ParseOptions& options() const { return options_; }

 private:
  bool ParseSegment(simdjson::dom::element root, const RawEvent& raw, CanonicalEvent* out, ParseError* error);
  bool ParseSnowplow(simdjson::dom::element root, const RawEvent& raw, CanonicalEvent* out, ParseError* error);
  std::string Alias(std::string name) const;

  ParseOptions options_;
  simdjson::dom::parser parser_;
  simdjson::dom::parser props_parser_;
  simdjson::padded_string payload_;
  std::string props_json_;
};

}  // namespace clicklake::pipeline
