// `clicklake tools parse-ua`: user agents on stdin → one JSON object per line.
//
//   clicklake tools parse-ua [--regexes FILE] [--config FILE]
//
// Each input line (a trailing '\r' dropped) gives one output line with exactly
// the keys ua_family ua_major ua_minor ua_patch os_family os_major os_minor
// os_patch os_patch_minor device_family device_brand device_model, in that
// order, null where absent. The rules come from --regexes, else the config's
// enrich.ua_regexes, else the regexes.yaml that scripts/setup unpacked.
//
// Thread safety: none needed; each call is independent.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "enrich/user_agent.h"

namespace clicklake::enrich {

// `args` are the arguments after `parse-ua` (no program name). Returns the
// process exit code: 0 on success, 1 when the rules cannot be loaded, CLI11's
// code for a usage error (message on `err`; --help prints to `out` and gives 0).
int RunParseUaTool(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// One output line (without the newline) for a parsed user agent.
std::string UserAgentToJson(const UserAgent& ua);

}  // namespace clicklake::enrich
