// RawEvent: one event as the collector accepted it, the record format of the event log.
//
// The collector writes one RawEvent per event (a Segment batch of 20 becomes 20
// records); the processor decodes them into bronze.events rows. The encoding is
// a small binary frame (version byte + length-prefixed fields) so that neither
// side pays for JSON re-serialisation of the envelope; `payload` is the event's
// JSON text.
//
// Payload rules (the contract with the processor):
//   - segment: the event object as received, with the batch's top-level
//     `context` (shallow-merged per key, the event's own keys win),
//     `integrations` and `sentAt` folded in when the event lacks them.
//   - snowplow: one tracker-protocol event as a JSON object of string values
//     (a tp2 `data` element, or the query parameters of GET /i).
//   - native: the canonical envelope object (see docs/native-collect.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clicklake {

struct RawEvent {
  int64_t received_at_us = 0;  // collector clock, UTC micros
  std::string source;          // from the write key
  std::string protocol;        // segment | snowplow | native
  std::string client_ip;
  std::string user_agent;
  std::string payload;         // JSON text
};

// Appends the encoding of `event` to *out.
void EncodeRawEvent(const RawEvent& event, std::string* out);
// Decodes one record value. Corruption if it is not a RawEvent frame.
Status DecodeRawEvent(std::string_view data, RawEvent* event);

}  // namespace clicklake
