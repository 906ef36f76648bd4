// Campaign and referrer parsing: URL splitting, query strings, UTM parameters,
// click ids, campaign_id and the referrer class.
//
// All functions take arbitrary bytes (whatever a tracker sent as page URL or
// referrer) and never fail: garbage gives absent fields. Every string they
// return is valid UTF-8 (invalid sequences become U+FFFD).
//
// Thread safety: pure functions; the built-in host table is immutable.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clicklake::enrich {

// A URL split into its parts (RFC 3986 shape, lenient). Parts are raw (not
// percent-decoded) except `host`, which is lower-cased without userinfo, port
// and trailing dot.
//   "https://User@WWW.Example.com:8443/a/b?x=1#top" → scheme "https",
//   host "www.example.com", port "8443", path "/a/b", query "x=1", fragment "top".
// A host longer than kMaxHostLength (253, the DNS limit) is dropped as garbage.
// Without a scheme: "//host/p" and "host.tld/p" (first segment with a dot and
// only host characters) give a host; anything else is a path ("/p?x", "p").
struct UrlParts {
  std::string scheme;  // lower-case
  std::string host;
  std::string port;
  std::string path;
  std::string query;     // without '?'
  std::string fragment;  // without '#'
  bool has_query = false;
};
inline constexpr size_t kMaxHostLength = 253;
UrlParts SplitUrl(std::string_view url);

// Decodes %XX escapes (an invalid escape stays as it is), and '+' as a space
// when `plus_as_space` (query strings). The result is valid UTF-8.
std::string PercentDecode(std::string_view text, bool plus_as_space);

// key=value pairs of a query string, split on '&' (and ';'), each side decoded
// with PercentDecode(…, true), in order; a key without '=' has an empty value.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// What a page URL tells about the visit (silver.events page_* and utm_*).
// UTM parameter names match case-insensitively; the first non-empty value of
// each wins; values are decoded, trimmed and cut to kMaxParamLength bytes (at a
// code point boundary; page_path to kMaxPathLength).
struct PageInfo {
  std::optional<std::string> host;       // lower-case
  std::optional<std::string> page_path;  // raw path, "/" when the URL has a host but no path
  std::optional<std::string> utm_source;
  std::optional<std::string> utm_medium;
  std::optional<std::string> utm_campaign;
  std::optional<std::string> utm_term;
  std::optional<std::string> utm_content;
  std::optional<std::string> gclid;        // Google Ads click id
  std::optional<std::string> fbclid;       // Meta click id
  std::optional<std::string> msclkid;      // Microsoft Ads click id
  std::optional<std::string> campaign_id;  // CampaignId(utm_source, utm_medium, utm_campaign)

  bool operator==(const PageInfo&) const = default;
};
inline constexpr size_t kMaxParamLength = 1024;
inline constexpr size_t kMaxPathLength = 2048;

PageInfo ParsePageUrl(std::string_view url);

// A stable id for a campaign, the same whatever the case or surrounding
// spaces of its parts: the first 16 hex digits of
// SHA-256(lower(trim(source)) + "|" + lower(trim(medium)) + "|" + lower(trim(campaign))),
// an absent part counting as "". Absent when all three are absent or empty.
std::optional<std::string> CampaignId(const std::optional<std::string>& utm_source,
                                      const std::optional<std::string>& utm_medium,
                                      const std::optional<std::string>& utm_campaign);

enum class ReferrerClass { kSearch, kSocial, kEmail, kInternal, kDirect, kOther };
// "search", "social", "email", "internal", "direct", "other".
std::string_view ReferrerClassName(ReferrerClass c);

struct ReferrerInfo {
  std::optional<std::string> referrer_host;  // lower-case
  ReferrerClass referrer_class = ReferrerClass::kDirect;
  // The well-known source, e.g. "Google", "Facebook", "Gmail", when in the table.
  std::optional<std::string> referrer_source;

  bool operator==(const ReferrerInfo&) const = default;
};

// Classifies a referrer URL for a page on `page_host`, in this order:
//   direct    no referrer (empty, or about:blank) — or email, when utm_medium
//             is "email"/"e-mail"/"newsletter" (mail clients send none);
//   internal  the referrer host equals the page host (a leading "www." ignored);
//   email     webmail hosts (mail.google.com, outlook.live.com, mail.*, webmail.*, ...)
//             and mail apps (android-app://com.google.android.gm, ...);
//   search    google.*, bing.com, duckduckgo.com, yahoo.*, baidu.com, yandex.*, ecosia.org, ...;
//   social    facebook.com, t.co, twitter.com, x.com, linkedin.com, instagram.com,
//             reddit.com, youtube.com, pinterest.*, tiktok.com, ...;
//   other     any other referrer.
// "name.*" entries match name.<tld> and name.<2nd>.<tld> (google.de, google.co.uk);
// the other entries match the host and its subdomains.
ReferrerInfo ClassifyReferrer(std::string_view referrer_url, std::string_view page_host,
                              std::optional<std::string_view> utm_medium = std::nullopt);

}  // namespace clicklake::enrich
