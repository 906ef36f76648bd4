// JSON helpers shared by the collector's body parsers.
//
// The parsers validate a body completely (syntax, UTF-8, nesting depth) before
// they take anything from it, then slice the raw text of each event out of it so
// that the stored payload is the event as received (no number reformatting, big
// integers kept). Built on simdjson (DOM for validation, On-Demand for slicing).
//
// Thread safety: free functions; a JsonDocument is used by one thread at a time.
#pragma once

#include "common/json_string.h"

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clicklake::collector {

// Deepest array/object nesting accepted in a body. Real events are a few levels
// deep; this keeps validation cheap and bounded (no deep recursion on hostile input).
inline constexpr int kMaxJsonDepth = 64;


// True if `s` is valid UTF-8.
bool IsValidUtf8(std::string_view s);

// Checks that `json` (padded) is one complete, valid JSON value: syntax, UTF-8,
// string escapes, nesting no deeper than kMaxJsonDepth, nothing after it.
// InvalidArgument naming the problem otherwise. One SIMD pass of simdjson's DOM
// parser (thread-local, reused); only a body with an integer beyond 64 bits (valid
// JSON that DOM refuses) is walked again with On-Demand via `parser`.
Status ValidateJson(const simdjson::padded_string& json, simdjson::ondemand::parser* parser);

// The raw JSON text of `value` (an object/array with its brackets, a scalar
// token), trailing whitespace removed. The value is consumed.
simdjson::error_code RawJson(simdjson::ondemand::value value, std::string_view* out);

// Decodes a raw JSON string token ("..." with escapes) into UTF-8 text.
// A number/true/false/null token is returned as is. False if malformed.
bool DecodeJsonScalar(std::string_view raw, std::string* out);

// A member of a JSON object: unescaped key, raw value text.
struct JsonMember {
  std::string key;
  std::string_view raw;
};

// Iterates the object whose raw text is `raw` — a slice of a padded buffer that
// ends (padding included) at `buffer_end` — and appends its members to *out.
// InvalidArgument if it is not an object.
Status ReadJsonMembers(std::string_view raw, const char* buffer_end, simdjson::ondemand::parser* parser,
                       std::vector<JsonMember>* out);

// Returns `raw` without trailing JSON whitespace.
std::string_view TrimJsonWhitespace(std::string_view raw);

// A JSON string value's text, or for a number its token; "" for anything else.
// Used for partition keys (userId may be a number in some SDKs).
std::string ScalarAsKey(simdjson::ondemand::value value);

}  // namespace clicklake::collector
