// Snowplow tracker protocol bodies → events
// (https://docs.snowplow.io/docs/sources/trackers/snowplow-tracker-protocol/).
//
// POST /com.snowplowanalytics.snowplow/tp2 carries a self-describing
// payload_data envelope {"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/...",
// "data":[{...}, ...]}; each `data` element is one event whose payload is the
// element as received (a JSON object of string values; `ue_pr`/`ue_px`,
// `co`/`cx` stay as the tracker encoded them for the processor to decode).
// GET /i carries one event as query parameters; its payload is a JSON object of
// the decoded parameters.
// Thread safety: stateless free functions.
#pragma once

#include <string>
#include <string_view>

#include "collector/parsed_body.h"
#include "common/status.h"

namespace clicklake::collector {

// Parses a (decompressed) tp2 POST body. On error *out is left empty.
Status ParseSnowplowPost(std::string_view body, const BodyLimits& limits, ParsedBody* out);

// Parses the query string of GET /i (without the '?'). On error *out is left empty.
Status ParseSnowplowQuery(std::string_view query, const BodyLimits& limits, ParsedBody* out);

// The name shedding patterns see: "page_ping" for e=pp, "page_view" for e=pv,
// the structured event action for e=se, else the `e` value.
std::string SnowplowEventName(std::string_view e, std::string_view se_action);

// Decodes %XX escapes and '+' (a space) of a query component. False if malformed.
bool DecodeQueryComponent(std::string_view in, std::string* out);

}  // namespace clicklake::collector
