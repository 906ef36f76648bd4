#include "enrich/campaign.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHostChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '.' || c == '-' || c == '_'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of a URL scheme at the start of `s` followed by ':' (0 if none).
size_t SchemeLength(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return 0;
  size_t i = 1;
  while (i < s.size() && (IsAlpha(s[i]) || IsDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) ++i;
  return i < s.size() && s[i] == ':' ? i : 0;
}

// Fills host and port from an authority ("user@host:port").
void SplitAuthority(std::string_view authority, UrlParts* out) {
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) {
      std::string_view rest = host.substr(close + 1);
      host = host.substr(0, close + 1);
      if (!rest.empty() && rest.front() == ':') out->port = std::string(rest.substr(1));
    }
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    out->port = std::string(host.substr(colon + 1));
    host = host.substr(0, colon);
  }
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > kMaxHostLength) return;  // no DNS name is longer: garbage, not a host
  out->host = SanitizeUtf8(ToLowerAscii(host));
}

// "host.tld" or "host.tld:port": a first path segment that is plausibly a host
// when the URL has no scheme.
bool LooksLikeHost(std::string_view segment) {
  if (segment.empty() || segment.size() > 253) return false;
  size_t colon = segment.find(':');
  std::string_view host = segment.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = segment.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!IsDigit(c)) return false;
    }
  }
  if (host.find('.') == std::string_view::npos || host.front() == '.' || host.back() == '.') return false;
  for (char c : host) {
    if (!IsHostChar(c)) return false;
  }
  return true;
}

// Trimmed, valid UTF-8, at most `max_len` bytes (cut at a code point
// boundary), absent when empty.
std::optional<std::string> NonEmpty(std::string_view s, size_t max_len) {
  s = TrimWhitespace(s);
  if (s.empty()) return std::nullopt;
  // Repairing first: each invalid byte becomes a 3-byte U+FFFD.
  std::string out = SanitizeUtf8(s.substr(0, std::min(s.size(), max_len)));
  if (out.size() > max_len) {
    size_t cut = max_len;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view StripWww(std::string_view host) {
  if (host.size() > 4 && host.substr(0, 4) == "www.") host.remove_prefix(4);
  return host;
}

// --- the referrer table -----------------------------------------------------

struct KnownHost {
  std::string_view pattern;  // "bing.com" (and subdomains) or "google.*"
  ReferrerClass klass;
  std::string_view source;
};

// Order matters: the first entry that matches wins, so webmail hosts come
// before the search engines that own them (mail.google.com before google.*).
constexpr KnownHost kKnownHosts[] = {
    // email
    {"mail.google.com", ReferrerClass::kEmail, "Gmail"},
    {"inbox.google.com", ReferrerClass::kEmail, "Gmail"},
    {"outlook.live.com", ReferrerClass::kEmail, "Outlook"},
    {"outlook.office.com", ReferrerClass::kEmail, "Outlook"},
    {"outlook.office365.com", ReferrerClass::kEmail, "Outlook"},
    {"mail.yahoo.com", ReferrerClass::kEmail, "Yahoo! Mail"},
    {"mail.aol.com", ReferrerClass::kEmail, "AOL Mail"},
    {"mail.proton.me", ReferrerClass::kEmail, "Proton Mail"},
    {"mail.yandex.ru", ReferrerClass::kEmail, "Yandex Mail"},
    {"e.mail.ru", ReferrerClass::kEmail, "Mail.ru"},
    // search
    {"google.*", ReferrerClass::kSearch, "Google"},
    {"bing.com", ReferrerClass::kSearch, "Bing"},
    {"duckduckgo.com", ReferrerClass::kSearch, "DuckDuckGo"},
    {"yahoo.*", ReferrerClass::kSearch, "Yahoo!"},
    {"baidu.com", ReferrerClass::kSearch, "Baidu"},
    {"yandex.*", ReferrerClass::kSearch, "Yandex"},
    {"ya.ru", ReferrerClass::kSearch, "Yandex"},
    {"ecosia.org", ReferrerClass::kSearch, "Ecosia"},
    {"ask.com", ReferrerClass::kSearch, "Ask"},
    {"search.aol.com", ReferrerClass::kSearch, "AOL"},
    {"naver.com", ReferrerClass::kSearch, "Naver"},
    {"seznam.cz", ReferrerClass::kSearch, "Seznam"},
    {"qwant.com", ReferrerClass::kSearch, "Qwant"},
    {"startpage.com", ReferrerClass::kSearch, "Startpage"},
    {"search.brave.com", ReferrerClass::kSearch, "Brave"},
    {"sogou.com", ReferrerClass::kSearch, "Sogou"},
    {"so.com", ReferrerClass::kSearch, "360 Search"},
    {"kagi.com", ReferrerClass::kSearch, "Kagi"},
    {"perplexity.ai", ReferrerClass::kSearch, "Perplexity"},
    // social
    {"facebook.com", ReferrerClass::kSocial, "Facebook"},
    {"fb.com", ReferrerClass::kSocial, "Facebook"},
    {"fb.me", ReferrerClass::kSocial, "Facebook"},
    {"messenger.com", ReferrerClass::kSocial, "Facebook"},
    {"t.co", ReferrerClass::kSocial, "Twitter"},
    {"twitter.com", ReferrerClass::kSocial, "Twitter"},
    {"x.com", ReferrerClass::kSocial, "Twitter"},
    {"linkedin.com", ReferrerClass::kSocial, "LinkedIn"},
    {"lnkd.in", ReferrerClass::kSocial, "LinkedIn"},
    {"instagram.com", ReferrerClass::kSocial, "Instagram"},
    {"reddit.com", ReferrerClass::kSocial, "Reddit"},
    {"redd.it", ReferrerClass::kSocial, "Reddit"},
    {"youtube.com", ReferrerClass::kSocial, "YouTube"},
    {"youtu.be", ReferrerClass::kSocial, "YouTube"},
    {"pinterest.*", ReferrerClass::kSocial, "Pinterest"},
    {"pin.it", ReferrerClass::kSocial, "Pinterest"},
    {"tiktok.com", ReferrerClass::kSocial, "TikTok"},
    {"snapchat.com", ReferrerClass::kSocial, "Snapchat"},
    {"tumblr.com", ReferrerClass::kSocial, "Tumblr"},
    {"quora.com", ReferrerClass::kSocial, "Quora"},
    {"vk.com", ReferrerClass::kSocial, "VKontakte"},
    {"weibo.com", ReferrerClass::kSocial, "Weibo"},
    {"threads.net", ReferrerClass::kSocial, "Threads"},
    {"bsky.app", ReferrerClass::kSocial, "Bluesky"},
    {"mastodon.social", ReferrerClass::kSocial, "Mastodon"},
    {"news.ycombinator.com", ReferrerClass::kSocial, "Hacker News"},
    {"discord.com", ReferrerClass::kSocial, "Discord"},
    {"t.me", ReferrerClass::kSocial, "Telegram"},
    {"whatsapp.com", ReferrerClass::kSocial, "WhatsApp"},
};

// Android apps send "android-app://<package>" as referrer.
constexpr KnownHost kKnownApps[] = {
    {"com.google.android.gm", ReferrerClass::kEmail, "Gmail"},
    {"com.microsoft.office.outlook", ReferrerClass::kEmail, "Outlook"},
    {"com.google.android.googlequicksearchbox", ReferrerClass::kSearch, "Google"},
    {"com.google.android.gms", ReferrerClass::kSearch, "Google"},
    {"com.facebook.katana", ReferrerClass::kSocial, "Facebook"},
    {"com.facebook.orca", ReferrerClass::kSocial, "Facebook"},
    {"com.instagram.android", ReferrerClass::kSocial, "Instagram"},
    {"com.twitter.android", ReferrerClass::kSocial, "Twitter"},
    {"com.linkedin.android", ReferrerClass::kSocial, "LinkedIn"},
    {"com.reddit.frontpage", ReferrerClass::kSocial, "Reddit"},
    {"com.pinterest", ReferrerClass::kSocial, "Pinterest"},
    {"com.zhiliaoapp.musically", ReferrerClass::kSocial, "TikTok"},
};

// host == domain or host ends with "." + domain.
bool IsDomainOrSubdomain(std::string_view host, std::string_view domain) {
  if (host == domain) return true;
  return host.size() > domain.size() && host.substr(host.size() - domain.size()) == domain &&
         host[host.size() - domain.size() - 1] == '.';
}

// "name.*": some label equals `name` and at most two short labels follow it
// (google.de, google.co.uk, google.com.br, www.google.com, news.google.fr).
bool MatchesAnyTld(std::string_view host, std::string_view name) {
  size_t pos = 0;
  while (pos < host.size()) {
    size_t end = host.find('.', pos);
    if (end == std::string_view::npos) return false;  // `name` may not be the last label
    if (host.substr(pos, end - pos) == name) {
      std::string_view rest = host.substr(end + 1);
      int labels = 0;
      size_t p = 0;
      bool short_labels = true;
      while (p <= rest.size()) {
        size_t e = rest.find('.', p);
        if (e == std::string_view::npos) e = rest.size();
        size_t len = e - p;
        if (len == 0 || len > 3) short_labels = false;
        ++labels;
        p = e + 1;
      }
      if (short_labels && labels <= 2) return true;
    }
    pos = end + 1;
  }
  return false;
}

const KnownHost* LookupHost(std::string_view host) {
  for (const KnownHost& k : kKnownHosts) {
    std::string_view p = k.pattern;
    if (p.size() > 2 && p.substr(p.size() - 2) == ".*") {
      if (MatchesAnyTld(host, p.substr(0, p.size() - 2))) return &k;
    } else if (IsDomainOrSubdomain(host, p)) {
      return &k;
    }
  }
  if (host.rfind("mail.", 0) == 0 || host.rfind("webmail.", 0) == 0) {
    static constexpr KnownHost kWebmail{"mail.*", ReferrerClass::kEmail, ""};
    return &kWebmail;
  }
  return nullptr;
}

}  // namespace

UrlParts SplitUrl(std::string_view url) {
  UrlParts out;
  url = TrimWhitespace(url);
  // Fragment and query first: they may contain any of the other delimiters.
  if (size_t hash = url.find('#'); hash != std::string_view::npos) {
    out.fragment = std::string(url.substr(hash + 1));
    url = url.substr(0, hash);
  }
  if (size_t q = url.find('?'); q != std::string_view::npos) {
    out.query = std::string(url.substr(q + 1));
    out.has_query = true;
    url = url.substr(0, q);
  }
  if (size_t scheme_len = SchemeLength(url); scheme_len > 0) {
    out.scheme = ToLowerAscii(url.substr(0, scheme_len));
    url.remove_prefix(scheme_len + 1);
  }
  bool has_authority = url.size() >= 2 && url[0] == '/' && url[1] == '/';
  if (has_authority) {
    url.remove_prefix(2);
  } else if (out.scheme.empty()) {
    size_t slash = url.find('/');
    has_authority = LooksLikeHost(url.substr(0, slash));
  }
  if (has_authority) {
    size_t slash = url.find('/');
    SplitAuthority(url.substr(0, slash), &out);
    url = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
  }
  out.path = std::string(url);
  return out;
}

std::string PercentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return IsValidUtf8(out) ? out : SanitizeUtf8(out);
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find_first_of("&;", pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(pos, end - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string_view key = pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      out.emplace_back(PercentDecode(key, true), PercentDecode(value, true));
    }
    pos = end + 1;
  }
  return out;
}

PageInfo ParsePageUrl(std::string_view url) {
  PageInfo info;
  UrlParts parts = SplitUrl(url);
  if (!parts.host.empty()) info.host = parts.host;
  if (!parts.path.empty()) {
    info.page_path = NonEmpty(parts.path, kMaxPathLength);
  } else if (info.host) {
    info.page_path.emplace(1, '/');  // (not = "/": GCC 12 -Wrestrict false positive)
  }
  if (!parts.has_query) return info;

  struct Target {
    std::string_view key;
    std::optional<std::string> PageInfo::*field;
  };
  static constexpr Target kTargets[] = {
      {"utm_source", &PageInfo::utm_source},
      {"utm_medium", &PageInfo::utm_medium},
      {"utm_campaign", &PageInfo::utm_campaign},
      {"utm_term", &PageInfo::utm_term},
      {"utm_content", &PageInfo::utm_content},
      {"gclid", &PageInfo::gclid},
      {"fbclid", &PageInfo::fbclid},
      {"msclkid", &PageInfo::msclkid},
  };
  // Decode only the parameters we keep: page URLs carry arbitrary other ones.
  std::string_view query = parts.query;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find_first_of("&;", pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(pos, end - pos);
    pos = end + 1;
    size_t eq = pair.find('=');
    if (eq > 16) continue;  // no '=' (npos), or a key longer than any we keep, even %-encoded
    std::string_view raw_key = pair.substr(0, eq);
    std::string key = raw_key.find('%') == std::string_view::npos ? std::string(raw_key) : PercentDecode(raw_key, true);
    for (const Target& t : kTargets) {
      if (!EqualsIgnoreCase(key, t.key)) continue;
      std::optional<std::string>& field = info.*(t.field);
      if (!field) field = NonEmpty(PercentDecode(pair.substr(eq + 1), true), kMaxParamLength);
      break;
    }
  }
  info.campaign_id = CampaignId(info.utm_source, info.utm_medium, info.utm_campaign);
  return info;
}

std::optional<std::string> CampaignId(const std::optional<std::string>& utm_source,
                                      const std::optional<std::string>& utm_medium,
                                      const std::optional<std::string>& utm_campaign) {
  auto norm = [](const std::optional<std::string>& v) { return v ? ToLowerAscii(TrimWhitespace(*v)) : std::string(); };
  std::string source = norm(utm_source);
  std::string medium = norm(utm_medium);
  std::string campaign = norm(utm_campaign);
  if (source.empty() && medium.empty() && campaign.empty()) return std::nullopt;
  std::string key = source + "|" + medium + "|" + campaign;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int len = 0;
  // Fetched once: EVP_sha256() goes through OpenSSL 3's locked implicit fetch on every call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (sha256 == nullptr || EVP_Digest(key.data(), key.size(), digest.data(), &len, sha256, nullptr) != 1 || len < 8) {
    return std::nullopt;  // OpenSSL cannot fail here short of memory exhaustion
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(16);
  for (int i = 0; i < 8; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

std::string_view ReferrerClassName(ReferrerClass c) {
  switch (c) {
    case ReferrerClass::kSearch:
      return "search";
    case ReferrerClass::kSocial:
      return "social";
    case ReferrerClass::kEmail:
      return "email";
    case ReferrerClass::kInternal:
      return "internal";
    case ReferrerClass::kDirect:
      return "direct";
    case ReferrerClass::kOther:
      return "other";
  }
  return "other";
}

ReferrerInfo ClassifyReferrer(std::string_view referrer_url, std::string_view page_host,
                              std::optional<std::string_view> utm_medium) {
  ReferrerInfo info;
  std::string_view trimmed = TrimWhitespace(referrer_url);
  if (trimmed.empty() || EqualsIgnoreCase(trimmed, "about:blank")) {
    info.referrer_class = ReferrerClass::kDirect;
    if (utm_medium) {
      std::string_view m = TrimWhitespace(*utm_medium);
      if (EqualsIgnoreCase(m, "email") || EqualsIgnoreCase(m, "e-mail") || EqualsIgnoreCase(m, "newsletter")) {
        info.referrer_class = ReferrerClass::kEmail;
      }
    }
    return info;
  }
  UrlParts parts = SplitUrl(trimmed);
  if (parts.scheme == "android-app" && !parts.host.empty()) {
    info.referrer_host = parts.host;
    info.referrer_class = ReferrerClass::kOther;
    for (const KnownHost& app : kKnownApps) {
      if (parts.host == app.pattern) {
        info.referrer_class = app.klass;
        info.referrer_source = std::string(app.source);
        break;
      }
    }
    return info;
  }
  if (parts.host.empty()) {
    info.referrer_class = ReferrerClass::kOther;
    return info;
  }
  info.referrer_host = parts.host;
  std::string page = ToLowerAscii(TrimWhitespace(page_host));
  while (!page.empty() && page.back() == '.') page.pop_back();
  if (!page.empty() && StripWww(parts.host) == StripWww(page)) {
    info.referrer_class = ReferrerClass::kInternal;
    return info;
  }
  if (const KnownHost* k = LookupHost(parts.host)) {
    info.referrer_class = k->klass;
    if (!k->source.empty()) info.referrer_source = std::string(k->source);
    return info;
  }
  info.referrer_class = ReferrerClass::kOther;
  return info;
}

}  // namespace clicklake::enrich
