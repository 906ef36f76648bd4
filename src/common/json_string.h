// JSON string literals: escaping text for JSON that clicklake writes by hand
// (Delta log actions, API answers, generated events). Parsing is simdjson's job.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace clicklake {

// Appends `s` to *out as a quoted JSON string: quotes, backslashes and control
// characters escaped; other bytes (UTF-8) copied as they are.
void AppendJsonString(std::string_view s, std::string* out);

// `s` as a quoted JSON string.
inline std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

}  // namespace clicklake
