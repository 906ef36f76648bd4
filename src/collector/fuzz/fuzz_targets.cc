#include "collector/fuzz/fuzz_targets.h"

#include <cstdlib>
#include <string_view>

#include "collector/gzip.h"
#include "collector/json_util.h"
#include "collector/native_parser.h"
#include "collector/segment_parser.h"
#include "collector/snowplow_parser.h"

namespace clicklake::collector::fuzz {
namespace {

// Small limits so the fuzzer reaches the limit paths quickly.
BodyLimits Limits() { return BodyLimits{2048, 64 * 1024}; }

// Every parsed payload must be a JSON object within the event limit (plus the
// merged batch fields) and valid UTF-8; anything else is a parser bug.
void Check(const Status& s, const ParsedBody& body, size_t max_payload) {
  if (!s.ok()) {
    if (!body.events.empty()) std::abort();
    return;
  }
  simdjson::ondemand::parser parser;
  for (const ParsedEvent& e : body.events) {
    if (e.payload.size() < 2 || e.payload.front() != '{' || e.payload.back() != '}') std::abort();
    if (e.payload.size() > max_payload) std::abort();
    if (!IsValidUtf8(e.payload)) std::abort();
    simdjson::padded_string json(e.payload);
    if (!ValidateJson(json, &parser).ok()) std::abort();
  }
}

}  // namespace

int FuzzSegmentBody(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr SegmentCall kCalls[] = {SegmentCall::kBatch, SegmentCall::kTrack, SegmentCall::kPage,
                                           SegmentCall::kIdentify, SegmentCall::kAlias};
  SegmentCall call = kCalls[data[0] % 5];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  ParsedBody out;
  Status s = ParseSegmentBody(body, call, Limits(), &out);
  // A payload is the event plus, at most, the batch's context/integrations/sentAt.
  Check(s, out, 3 * Limits().max_request_bytes);
  return 0;
}

int FuzzSnowplowBody(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  ParsedBody out;
  Status s = (data[0] & 1) ? ParseSnowplowQuery(body, Limits(), &out) : ParseSnowplowPost(body, Limits(), &out);
  Check(s, out, 8 * Limits().max_event_bytes);  // query values grow by JSON escaping
  return 0;
}

int FuzzNativeBody(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  ParsedBody out;
  Status s = ParseNativeBody(body, Limits(), &out);
  Check(s, out, 2 * Limits().max_request_bytes);
  return 0;
}

int FuzzGzipBody(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string inflated;
  Status s = Inflate(in, Limits().max_request_bytes, size > 0 && (data[0] & 0x0f) == 0x08, &inflated);
  if (!s.ok()) {
    if (!inflated.empty()) std::abort();
    return 0;
  }
  if (inflated.size() > Limits().max_request_bytes) std::abort();
  ParsedBody out;
  Status p = ParseSegmentBody(inflated, SegmentCall::kBatch, Limits(), &out);
  Check(p, out, 3 * Limits().max_request_bytes);
  return 0;
}

}  // namespace clicklake::collector::fuzz
