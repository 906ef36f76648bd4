#include "governance/access/fuzz/fuzz_targets.h"

#include <simdjson.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "governance/access/access.h"

namespace clicklake::access::fuzz {
namespace {

struct Fixture {
  std::unique_ptr<engine::Database> source;
  Fixture() {
    auto db = engine::Database::Open();
    if (!db.ok()) std::abort();
    source = std::move(db).value();
    auto conn = source->Connect();
    if (!conn.ok() || !(*conn)->Execute("CREATE TABLE t AS SELECT range AS id, 'v' || range AS s FROM range(3000)").ok()) {
      std::abort();
    }
  }
};

}  // namespace

int FuzzQueryRequest(const uint8_t* data, size_t size) {
  static Fixture fixture;
  std::string body(reinterpret_cast<const char*>(data), size);
  std::string sql = body;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view text;
  if (!parser.parse(body).get(doc) && !doc["sql"].get(text)) sql = std::string(text);
  auto sandbox = engine::Sandbox::Open(fixture.source.get(), {{"lake", "t", "SELECT id, sha256(s) AS s FROM t"}});
  if (!sandbox.ok()) std::abort();
  auto stream = (*sandbox)->Query(sql);
  if (!stream.ok()) return 0;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return done; })) (*sandbox)->Interrupt();
  });
  for (int i = 0; i < 2; i++) {
    auto chunk = (*stream)->Next();
    if (!chunk.ok() || !chunk->has_value()) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  return 0;
}

int FuzzBasicCredentials(const uint8_t* data, size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  auto credentials = ParseBasicCredentials(header);
  if (credentials.ok()) {
    // What was accepted is a user name and a password without control bytes.
    if (credentials->first.empty()) std::abort();
    for (unsigned char c : credentials->first + credentials->second)
      if (c < 0x20 || c == 0x7f) std::abort();
  }
  return 0;
}

}  // namespace clicklake::access::fuzz
