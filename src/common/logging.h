// Logging: spdlog, configured once per process.
//
// Components log through spdlog's default logger (spdlog::info(...), with fmt
// formatting). InitLogging picks the level and whether lines go to stderr as
// text (default) or JSON lines, for log shippers.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace clicklake {

// level: trace, debug, info, warn, error, off.
void InitLogging(const std::string& level, bool json = false);

}  // namespace clicklake
