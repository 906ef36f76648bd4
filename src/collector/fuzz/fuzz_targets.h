// Fuzz entry points for the collector's body parsers (Segment, Snowplow,
// native, gzip). Each takes arbitrary bytes and must neither crash nor leak nor
// trip a sanitizer; they also check invariants (a successful parse yields
// valid-UTF-8 JSON payloads within the size limits).
//
// Used by the libFuzzer binaries (fuzz/*_fuzzer.cc, built by fuzz/build.sh with
// clang) and by fuzz_replay_test (gtest, replays the seed corpus under ASan in
// `make test`). Thread safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>

namespace clicklake::collector::fuzz {

// The first byte picks the route; the rest is the body.
int FuzzSegmentBody(const uint8_t* data, size_t size);
// The first byte picks POST tp2 vs GET /i query; the rest is the body/query.
int FuzzSnowplowBody(const uint8_t* data, size_t size);
int FuzzNativeBody(const uint8_t* data, size_t size);
// Inflates the input, then (if it inflated) parses it as a Segment batch.
int FuzzGzipBody(const uint8_t* data, size_t size);

}  // namespace clicklake::collector::fuzz
