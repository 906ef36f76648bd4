// Entry points shared by the libFuzzer targets (fuzz/*_fuzzer.cc) and the
// seed-replay unit test, so the test exercises exactly what the fuzzers do.
//
// Each function feeds arbitrary bytes through a parser and checks the
// invariants that must hold for any input (no crash, valid UTF-8 out, sizes
// bounded); a broken invariant aborts, which libFuzzer and gtest both report.
//
// Thread safety: FuzzUrl is pure; FuzzUserAgent only calls the thread-safe
// UaParser::Parse.
#pragma once

#include <cstddef>
#include <cstdint>

#include "enrich/user_agent.h"

namespace clicklake::enrich::fuzz {

// SplitUrl, ParseQuery, PercentDecode, ParsePageUrl and ClassifyReferrer.
void FuzzUrl(const uint8_t* data, size_t size);

// UaParser::Parse (cached and uncached must agree) and the JSON line of
// `clicklake tools parse-ua`.
void FuzzUserAgent(const UaParser& parser, const uint8_t* data, size_t size);

}  // namespace clicklake::enrich::fuzz
