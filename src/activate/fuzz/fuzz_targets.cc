#include "activate/fuzz/fuzz_targets.h"

#include <array>
#include <cstdlib>
#include <string_view>

#include "activate/responses.h"

namespace clicklake::activate::fuzz {
namespace {

constexpr std::array<std::string_view, 7> kParsers = {"webhook", "hubspot",        "braze",      "google_job",
                                                      "google_partial", "meta", "retry_after"};
constexpr int64_t kNowUs = 1796644800000000LL;  // 2026-12-07T12:00:00Z

void Check(bool promise) {
  if (!promise) std::abort();
}

}  // namespace

int FuzzDestinationAnswer(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t parser = 0;
  std::string_view body = in;
  const size_t nl = in.find('\n');
  bool named = false;
  if (nl != std::string_view::npos) {
    for (size_t i = 0; i < kParsers.size(); i++) {
      if (in.substr(0, nl) == kParsers[i]) {
        parser = i;
        body = in.substr(nl + 1);
        named = true;
      }
    }
  }
  if (!named) {
    if (in.empty()) return 0;
    parser = static_cast<uint8_t>(in[0]) % kParsers.size();
    body = in.substr(1);
  }
  switch (parser) {
    case 0: {
      auto r = ParseWebhookErrors(body);
      if (body.empty()) Check(r.ok() && r->empty());
      break;
    }
    case 1: {
      for (const char* id_property : {"email", "hs_object_id"}) {
        auto r = ParseHubSpotBatchResult(body, id_property);
        if (!r.ok()) continue;
        for (const HubSpotError& e : r->errors) Check(!e.message.empty() && e.Text().rfind("HubSpot ", 0) == 0);
      }
      break;
    }
    case 2: {
      auto r = ParseBrazeResult(body);
      if (r.ok()) {
        for (const BrazeError& e : r->errors) Check(e.index >= 0 && !e.array.empty() && !e.type.empty());
      }
      break;
    }
    case 3: {
      auto r = ParseGoogleAdsJobName(body);
      if (r.ok()) {
        Check(!r->empty() && r->front() != '/' && r->find("..") == std::string::npos);
        for (char c : *r) Check(c > ' ' && c <= '~' && c != '?' && c != '#');
      }
      break;
    }
    case 4: {
      auto r = ParseGoogleAdsPartialFailures(body);
      if (r.ok()) {
        for (const auto& [index, message] : *r) Check(index >= 0);
      }
      break;
    }
    case 5: {
      auto r = ParseMetaInvalidEntries(body);
      (void)r;
      break;
    }
    default: {
      auto wait = ParseRetryAfter(body, kNowUs);
      if (wait) Check(*wait >= 0 && *wait <= kMaxRetryAfterUs);
      break;
    }
  }
  return 0;
}

}  // namespace clicklake::activate::fuzz
