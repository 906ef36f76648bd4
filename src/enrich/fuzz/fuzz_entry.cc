#include "enrich/fuzz/fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "enrich/campaign.h"
#include "enrich/parse_ua_tool.h"
#include "enrich/text_util.h"

namespace clicklake::enrich::fuzz {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

void CheckText(const std::optional<std::string>& v, size_t max, const char* what) {
  if (!v) return;
  Check(IsValidUtf8(*v), what);
  Check(v->size() <= max, what);
}

}  // namespace

void FuzzUrl(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  UrlParts parts = SplitUrl(in);
  Check(parts.path.size() <= size && parts.query.size() <= size, "SplitUrl parts within input");
  Check(IsValidUtf8(parts.host) && parts.host.size() <= kMaxHostLength * 3, "SplitUrl host");
  for (const auto& [k, v] : ParseQuery(in)) {
    Check(IsValidUtf8(k) && IsValidUtf8(v), "ParseQuery output is UTF-8");
  }
  Check(IsValidUtf8(PercentDecode(in, true)), "PercentDecode output is UTF-8");
  PageInfo page = ParsePageUrl(in);
  CheckText(page.page_path, kMaxPathLength, "page_path");
  for (const auto* f : {&page.utm_source, &page.utm_medium, &page.utm_campaign, &page.utm_term, &page.utm_content,
                        &page.gclid, &page.fbclid, &page.msclkid}) {
    CheckText(*f, kMaxParamLength, "utm/click id");
  }
  if (page.campaign_id) Check(page.campaign_id->size() == 16, "campaign_id has 16 hex digits");
  // The input as referrer, and split in two as referrer + page.
  ReferrerInfo r = ClassifyReferrer(in, page.host.value_or(""), page.utm_medium);
  CheckText(r.referrer_host, kMaxHostLength * 3, "referrer_host");
  size_t half = size / 2;
  ReferrerInfo r2 = ClassifyReferrer(in.substr(0, half), in.substr(half));
  CheckText(r2.referrer_host, kMaxHostLength * 3, "referrer_host (split)");
}

void FuzzUserAgent(const UaParser& parser, const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  UserAgent cached = parser.Parse(in);
  UserAgent again = parser.Parse(in);
  UserAgent uncached = parser.ParseUncached(in);
  Check(cached == again && cached == uncached, "cached and uncached parses agree");
  Check(cached.ua_family.has_value() && cached.os_family.has_value() && cached.device_family.has_value(),
        "families are never absent");
  for (const auto* f : {&cached.ua_family, &cached.ua_major, &cached.ua_minor, &cached.ua_patch, &cached.os_family,
                        &cached.os_major, &cached.os_minor, &cached.os_patch, &cached.os_patch_minor,
                        &cached.device_family, &cached.device_brand, &cached.device_model}) {
    CheckText(*f, 64 * 1024, "UA field");
  }
  std::string json = UserAgentToJson(cached);
  Check(IsValidUtf8(json) && json.front() == '{' && json.back() == '}', "JSON line");
  Check(json.find('\n') == std::string::npos, "JSON line has no newline");
}

}  // namespace clicklake::enrich::fuzz
