// Small text helpers shared by the enrichment parsers: trimming, ASCII case,
// UTF-8 repair and JSON string escaping.
//
// Everything the enrichers emit ends up in Parquet strings and JSON, both of
// which require valid UTF-8, while their inputs (user agents, URLs after
// percent-decoding) are arbitrary bytes. SanitizeUtf8 is the one place that
// turns bytes into valid text.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace clicklake::enrich {

// Without leading/trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view TrimWhitespace(std::string_view s);

// ASCII lower-case copy (other bytes unchanged).
std::string ToLowerAscii(std::string_view s);

// True when `s` is valid UTF-8 (RFC 3629).
bool IsValidUtf8(std::string_view s);

// `s` with every invalid UTF-8 sequence (including overlongs, surrogates and
// code points above U+10FFFF) replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Appends `s` as a JSON string literal (quotes included) to `out`; control
// characters are escaped and invalid UTF-8 becomes U+FFFD.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace clicklake::enrich
