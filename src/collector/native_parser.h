// Native POST /collect bodies → events (see docs/native-collect.md).
//
// The body is one canonical envelope object, or {"events":[...]} (with an
// optional top-level "writeKey" and "sentAt"). Each event's payload is the
// envelope as received, minus `writeKey`, with the top-level `sentAt` added
// when the event lacks one.
// Thread safety: stateless free function.
#pragma once

#include <string_view>

#include "collector/parsed_body.h"
#include "common/status.h"

namespace clicklake::collector {

// Parses a (decompressed) body. On error *out is left empty.
Status ParseNativeBody(std::string_view body, const BodyLimits& limits, ParsedBody* out);

}  // namespace clicklake::collector
