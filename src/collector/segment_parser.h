// Segment HTTP Tracking API bodies → events
// (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/).
//
// /v1/batch and /v1/import take {"batch":[...], "context":{}, "integrations":{},
// "sentAt":..., "writeKey":...}; the single-event routes take one event object.
// Each event's payload is the event object as received, with:
//   - the batch `context` shallow-merged into the event's (the event's keys win),
//   - batch `integrations` and `sentAt` added when the event lacks them,
//   - `type` added from the route when a single-event call lacks it,
//   - `writeKey` removed (it is a credential, not event data).
// Thread safety: stateless free functions.
#pragma once

#include <optional>
#include <string_view>

#include "collector/parsed_body.h"
#include "common/status.h"

namespace clicklake::collector {

enum class SegmentCall { kBatch, kImport, kTrack, kPage, kScreen, kIdentify, kGroup, kAlias };

// "/v1/track" → kTrack, ...; nullopt for other paths.
std::optional<SegmentCall> SegmentCallForPath(std::string_view path);
// "track", "page", ...; "batch"/"import" for the batch calls.
std::string_view SegmentCallName(SegmentCall call);

// Parses a (decompressed) body. On error *out is left empty.
Status ParseSegmentBody(std::string_view body, SegmentCall call, const BodyLimits& limits, ParsedBody* out);

}  // namespace clicklake::collector
