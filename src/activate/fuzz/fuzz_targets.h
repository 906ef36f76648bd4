// Fuzz entry point for the parsers of destination answers (activate/responses.h):
// HubSpot batch results, Braze /users/track, Google Ads job names and partial
// failures, Meta invalid entries, webhook refusals and Retry-After. Takes
// arbitrary bytes and must neither crash nor trip a sanitizer; it also checks
// the parsers' promises (indexes >= 0, waits within [0, one day]).
//
// Input: "<parser>\n<answer>" where <parser> is one of webhook, hubspot, braze,
// google_job, google_partial, meta, retry_after; any other first line picks
// the parser by its first byte (so mutations reach every parser).
// Used by fuzz/answer_fuzzer.cc (libFuzzer, fuzz/build.sh) and by
// activate_fuzz_replay_test. Thread safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>

namespace clicklake::activate::fuzz {

int FuzzDestinationAnswer(const uint8_t* data, size_t size);

}  // namespace clicklake::activate::fuzz
