#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace clicklake {

void InitLogging(const std::string& level, bool json) {
  auto logger = spdlog::stderr_color_mt("clicklake");
  if (json) {
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})", spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace clicklake
