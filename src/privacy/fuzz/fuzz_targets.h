// Fuzz entry points for the privacy parsers fed from the network or the log:
// the `POST /api/v1/regulations` body and the processor's per-event subject
// filter. Each takes arbitrary bytes and must neither crash nor trip a
// sanitizer; a successful parse must round-trip through the request JSON.
// Used by fuzz/regulation_fuzzer.cc (libFuzzer, fuzz/build.sh) and by
// privacy_fuzz_replay_test. Thread safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>

namespace clicklake::privacy::fuzz {

int FuzzRegulationBody(const uint8_t* data, size_t size);
int FuzzSubjectFilter(const uint8_t* data, size_t size);

}  // namespace clicklake::privacy::fuzz
