// Fuzz entry points of the query API's input (see build.sh, fuzz_replay_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace clicklake::access::fuzz {

// A POST /api/v1/query body as received: parsed as JSON (its "sql"; anything
// else is taken as SQL text), checked by engine::Sandbox and, when allowed,
// run over a small table for at most two chunks and 200 ms. Never crashes;
// every outcome is a Status. Returns 0 (libFuzzer's convention).
int FuzzQueryRequest(const uint8_t* data, size_t size);

// An `Authorization` header value as received, through
// access::ParseBasicCredentials (the password login of POST /api/v1/query).
int FuzzBasicCredentials(const uint8_t* data, size_t size);

}  // namespace clicklake::access::fuzz
