// Test helpers shared by the unit tests of every component (test code only).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "common/status.h"

namespace clicklake::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "clicklake-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A self-signed EC certificate for 127.0.0.1 made with the openssl CLI, as
// `dir`/cert.pem and `dir`/key.pem; false if openssl failed.
inline bool MakeSelfSignedCertificate(const TempDir& dir, std::string* cert, std::string* key) {
  *cert = dir.Sub("cert.pem");
  *key = dir.Sub("key.pem");
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
      *key + " -out " + *cert + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// ../shared (test data), from the environment ctest sets, else relative to the source tree.
inline std::string SharedDir() {
  if (const char* d = std::getenv("CLICKLAKE_SHARED_DIR")) return d;
  return "../shared";
}

inline std::string SourceDir() {
  if (const char* d = std::getenv("CLICKLAKE_SOURCE_DIR")) return d;
  return ".";
}

// Feeds every file of a fuzz seed corpus (`dir`, relative to the source tree),
// and every prefix of it (truncation is the commonest malformation), to a
// libFuzzer-style entry point. Returns the number of files.
inline size_t ReplayFuzzCorpus(const std::string& dir, int (*fn)(const uint8_t*, size_t)) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SourceDir() + "/" + dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t len = 0; len <= data.size(); len++) {
      // An exactly-sized copy, so ASan sees a read past the end.
      std::unique_ptr<uint8_t[]> buf(new uint8_t[len]);
      std::copy(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(len), buf.get());
      fn(buf.get(), len);
    }
    ++n;
  }
  return n;
}

}  // namespace clicklake::testing

#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    ::clicklake::Status _s = ::clicklake::internal::ToStatus(expr);     \
    ASSERT_TRUE(_s.ok()) << _s.ToString();                              \
  } while (0)
#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    ::clicklake::Status _s = ::clicklake::internal::ToStatus(expr);     \
    EXPECT_TRUE(_s.ok()) << _s.ToString();                              \
  } while (0)
// Asserts a specific error code.
#define EXPECT_STATUS(expr, status_code)                                \
  do {                                                                  \
    ::clicklake::Status _s = ::clicklake::internal::ToStatus(expr);     \
    EXPECT_EQ(_s.code(), ::clicklake::StatusCode::status_code) << _s.ToString(); \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) ASSERT_OK_AND_ASSIGN_IMPL(CL_CONCAT(_cl_r_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).value()
