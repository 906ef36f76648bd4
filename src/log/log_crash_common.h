// Shared by log_crash_helper and log_crash_test: the value each key must carry,
// so the test can tell an intact record from a damaged one. Test code only.
#pragma once

#include <string>

#include "log/crc32c.h"

namespace clicklake::log {

inline std::string CrashTestValue(const std::string& key) {
  uint32_t h = Crc32c(key);
  std::string v = "{\"key\":\"" + key + "\",\"pad\":\"";
  v.append(100 + h % 400, static_cast<char>('a' + h % 26));
  v += "\"}";
  return v;
}

}  // namespace clicklake::log
