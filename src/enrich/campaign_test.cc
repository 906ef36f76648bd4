#include "enrich/campaign.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

TEST(SplitUrlTest, Parts) {
  UrlParts p = SplitUrl("HTTPS://User:pw@WWW.Example.COM.:8443/a/b%20c?x=1&y=2#frag?not=query");
  EXPECT_EQ(p.scheme, "https");
  EXPECT_EQ(p.host, "www.example.com");
  EXPECT_EQ(p.port, "8443");
  EXPECT_EQ(p.path, "/a/b%20c");
  EXPECT_EQ(p.query, "x=1&y=2");
  EXPECT_EQ(p.fragment, "frag?not=query");

  EXPECT_EQ(SplitUrl("https://" + std::string(254, 'a') + "/x").host, "");
  EXPECT_EQ(SplitUrl("https://" + std::string(253, 'a') + "/x").host, std::string(253, 'a'));
  EXPECT_EQ(SplitUrl("http://[2001:db8::1]:8080/x").host, "[2001:db8::1]");
  EXPECT_EQ(SplitUrl("http://[2001:db8::1]:8080/x").port, "8080");
  EXPECT_EQ(SplitUrl("//cdn.example.com/lib.js").host, "cdn.example.com");
  EXPECT_EQ(SplitUrl("example.com/pricing?plan=pro").host, "example.com");
  EXPECT_EQ(SplitUrl("example.com/pricing?plan=pro").path, "/pricing");
  EXPECT_EQ(SplitUrl("localhost:3000/x").host, "");  // no dot: a path
  EXPECT_EQ(SplitUrl("/checkout?step=2").host, "");
  EXPECT_EQ(SplitUrl("/checkout?step=2").path, "/checkout");
  EXPECT_EQ(SplitUrl("mailto:someone@example.com").host, "");
  EXPECT_EQ(SplitUrl("https://example.com").path, "");
  EXPECT_FALSE(SplitUrl("https://example.com").has_query);
  EXPECT_TRUE(SplitUrl("https://example.com/?").has_query);
}

TEST(PercentDecodeTest, EscapesPlusAndGarbage) {
  EXPECT_EQ(PercentDecode("a%20b+c", true), "a b c");
  EXPECT_EQ(PercentDecode("a%20b+c", false), "a b+c");
  EXPECT_EQ(PercentDecode("caf%C3%A9", true), "caf\xC3\xA9");
  EXPECT_EQ(PercentDecode("100%", true), "100%");
  EXPECT_EQ(PercentDecode("%zz%4", true), "%zz%4");
  EXPECT_EQ(PercentDecode("%%41", true), "%A");
  EXPECT_EQ(PercentDecode("%FF%FE", true), "\xEF\xBF\xBD\xEF\xBF\xBD");  // invalid UTF-8 repaired
  EXPECT_EQ(PercentDecode("%00x", true), std::string("\0x", 2));
}

TEST(ParseQueryTest, PairsInOrder) {
  auto q = ParseQuery("a=1&b=two+words&c&=empty&d=%3D%26;e=5&&");
  ASSERT_EQ(q.size(), 6u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>("a", "1")));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>("b", "two words")));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>("c", "")));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>("", "empty")));
  EXPECT_EQ(q[4], (std::pair<std::string, std::string>("d", "=&")));
  EXPECT_EQ(q[5], (std::pair<std::string, std::string>("e", "5")));
  EXPECT_TRUE(ParseQuery("").empty());
}

TEST(ParsePageUrlTest, UtmAndClickIds) {
  PageInfo p = ParsePageUrl(
      "https://shop.example.com/products/42?utm_source=Google&utm_medium=cpc&utm_campaign=spring%20sale"
      "&utm_term=red+shoes&utm_content=ad%2B1&gclid=abc123&fbclid=fb_1&msclkid=ms-9&other=x#reviews");
  EXPECT_EQ(p.host, "shop.example.com");
  EXPECT_EQ(p.page_path, "/products/42");
  EXPECT_EQ(p.utm_source, "Google");
  EXPECT_EQ(p.utm_medium, "cpc");
  EXPECT_EQ(p.utm_campaign, "spring sale");
  EXPECT_EQ(p.utm_term, "red shoes");
  EXPECT_EQ(p.utm_content, "ad+1");
  EXPECT_EQ(p.gclid, "abc123");
  EXPECT_EQ(p.fbclid, "fb_1");
  EXPECT_EQ(p.msclkid, "ms-9");
  EXPECT_EQ(p.campaign_id, CampaignId("google", "cpc", "spring sale"));
}

TEST(ParsePageUrlTest, EdgeCases) {
  // Keys match case-insensitively; the first non-empty value wins; blank is absent.
  PageInfo p = ParsePageUrl("https://example.com?UTM_SOURCE=&utm_source=%20news%20&utm_source=later&utm_medium=+");
  EXPECT_EQ(p.page_path, "/");
  EXPECT_EQ(p.utm_source, "news");
  EXPECT_EQ(p.utm_medium, std::nullopt);
  // Encoded key.
  EXPECT_EQ(ParsePageUrl("/x?utm%5Fsource=a").utm_source, "a");
  // No query, no campaign.
  PageInfo none = ParsePageUrl("https://example.com/about");
  EXPECT_EQ(none.utm_source, std::nullopt);
  EXPECT_EQ(none.campaign_id, std::nullopt);
  // Relative URL.
  PageInfo rel = ParsePageUrl("/cart?utm_campaign=launch");
  EXPECT_EQ(rel.host, std::nullopt);
  EXPECT_EQ(rel.page_path, "/cart");
  EXPECT_EQ(rel.campaign_id, "b2c9097371453a98");
  // Empty.
  EXPECT_EQ(ParsePageUrl(""), PageInfo{});
}

// Found by url_fuzzer: a path of invalid bytes grew 3x past the limit when
// repaired after cutting. Limits hold in bytes, cut at a code point boundary.
TEST(ParsePageUrlTest, LimitsHoldAfterUtf8Repair) {
  PageInfo p = ParsePageUrl("/" + std::string(3000, '\xa4') + "?utm_source=" + std::string(2000, '\xff') +
                            "&utm_term=" + std::string(1023, 'a') + "%C3%A9");
  ASSERT_TRUE(p.page_path && p.utm_source && p.utm_term);
  EXPECT_LE(p.page_path->size(), kMaxPathLength);
  EXPECT_TRUE(IsValidUtf8(*p.page_path));
  EXPECT_LE(p.utm_source->size(), kMaxParamLength);
  EXPECT_TRUE(IsValidUtf8(*p.utm_source));
  EXPECT_EQ(*p.utm_term, std::string(1023, 'a'));  // "é" would pass the limit: dropped whole
}

TEST(CampaignIdTest, StableAndNormalized) {
  // First 16 hex digits of SHA-256("google|cpc|spring_sale").
  EXPECT_EQ(CampaignId("google", "cpc", "spring_sale"), "e6a5f5f6ee5fcca0");
  EXPECT_EQ(CampaignId(" Google ", "CPC", "Spring_Sale"), "e6a5f5f6ee5fcca0");
  EXPECT_EQ(CampaignId("newsletter", "email", std::nullopt), "ee83cabe83652d80");
  EXPECT_EQ(CampaignId(std::nullopt, std::nullopt, std::nullopt), std::nullopt);
  EXPECT_EQ(CampaignId("", " ", std::nullopt), std::nullopt);
  EXPECT_NE(CampaignId("a", "b", "c"), CampaignId("a|b", "", "c"));
}

struct RefCase {
  const char* referrer;
  const char* page_host;
  ReferrerClass klass;
  const char* host;    // nullptr = absent
  const char* source;  // nullptr = absent
};

TEST(ClassifyReferrerTest, Table) {
  const RefCase cases[] = {
      {"", "example.com", ReferrerClass::kDirect, nullptr, nullptr},
      {"  ", "example.com", ReferrerClass::kDirect, nullptr, nullptr},
      {"about:blank", "example.com", ReferrerClass::kDirect, nullptr, nullptr},
      {"https://www.example.com/cart", "example.com", ReferrerClass::kInternal, "www.example.com", nullptr},
      {"https://example.com/", "EXAMPLE.com", ReferrerClass::kInternal, "example.com", nullptr},
      {"https://www.google.com/", "example.com", ReferrerClass::kSearch, "www.google.com", "Google"},
      {"https://www.google.co.uk/search?q=x", "example.com", ReferrerClass::kSearch, "www.google.co.uk", "Google"},
      {"https://google.de", "example.com", ReferrerClass::kSearch, "google.de", "Google"},
      {"https://mail.google.com/mail/u/0/", "example.com", ReferrerClass::kEmail, "mail.google.com", "Gmail"},
      {"https://www.bing.com/search?q=x", "example.com", ReferrerClass::kSearch, "www.bing.com", "Bing"},
      {"https://duckduckgo.com/", "example.com", ReferrerClass::kSearch, "duckduckgo.com", "DuckDuckGo"},
      {"https://search.yahoo.co.jp/", "example.com", ReferrerClass::kSearch, "search.yahoo.co.jp", "Yahoo!"},
      {"https://yandex.ru/search", "example.com", ReferrerClass::kSearch, "yandex.ru", "Yandex"},
      {"https://www.baidu.com/s?wd=x", "example.com", ReferrerClass::kSearch, "www.baidu.com", "Baidu"},
      {"https://l.facebook.com/l.php?u=x", "example.com", ReferrerClass::kSocial, "l.facebook.com", "Facebook"},
      {"https://t.co/abc", "example.com", ReferrerClass::kSocial, "t.co", "Twitter"},
      {"https://x.com/someone", "example.com", ReferrerClass::kSocial, "x.com", "Twitter"},
      {"https://www.linkedin.com/feed/", "example.com", ReferrerClass::kSocial, "www.linkedin.com", "LinkedIn"},
      {"https://old.reddit.com/r/cpp", "example.com", ReferrerClass::kSocial, "old.reddit.com", "Reddit"},
      {"https://m.youtube.com/watch?v=1", "example.com", ReferrerClass::kSocial, "m.youtube.com", "YouTube"},
      {"https://www.pinterest.fr/pin/1", "example.com", ReferrerClass::kSocial, "www.pinterest.fr", "Pinterest"},
      {"https://outlook.live.com/mail/0/", "example.com", ReferrerClass::kEmail, "outlook.live.com", "Outlook"},
      {"https://webmail.example.org/", "example.com", ReferrerClass::kEmail, "webmail.example.org", nullptr},
      {"android-app://com.google.android.gm", "example.com", ReferrerClass::kEmail, "com.google.android.gm", "Gmail"},
      {"android-app://com.facebook.katana/", "example.com", ReferrerClass::kSocial, "com.facebook.katana", "Facebook"},
      {"https://blog.other.org/post", "example.com", ReferrerClass::kOther, "blog.other.org", nullptr},
      // Look-alikes are not the real thing.
      {"https://notgoogle.com/", "example.com", ReferrerClass::kOther, "notgoogle.com", nullptr},
      {"https://google.example.org/", "example.com", ReferrerClass::kOther, "google.example.org", nullptr},
      {"https://fakebing.com/", "example.com", ReferrerClass::kOther, "fakebing.com", nullptr},
      {"not a url at all", "example.com", ReferrerClass::kOther, nullptr, nullptr},
      {"www.google.com", "example.com", ReferrerClass::kSearch, "www.google.com", "Google"},
  };
  for (const RefCase& c : cases) {
    ReferrerInfo r = ClassifyReferrer(c.referrer, c.page_host);
    EXPECT_EQ(r.referrer_class, c.klass) << c.referrer << " → " << ReferrerClassName(r.referrer_class);
    EXPECT_EQ(r.referrer_host, c.host ? std::optional<std::string>(c.host) : std::nullopt) << c.referrer;
    EXPECT_EQ(r.referrer_source, c.source ? std::optional<std::string>(c.source) : std::nullopt) << c.referrer;
  }
}

TEST(ClassifyReferrerTest, EmailCampaignWithoutReferrer) {
  EXPECT_EQ(ClassifyReferrer("", "example.com", "Email").referrer_class, ReferrerClass::kEmail);
  EXPECT_EQ(ClassifyReferrer("", "example.com", "newsletter").referrer_class, ReferrerClass::kEmail);
  EXPECT_EQ(ClassifyReferrer("", "example.com", "cpc").referrer_class, ReferrerClass::kDirect);
  // A real referrer decides over utm_medium.
  EXPECT_EQ(ClassifyReferrer("https://t.co/x", "example.com", "email").referrer_class, ReferrerClass::kSocial);
}

TEST(ClassifyReferrerTest, Names) {
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kSearch), "search");
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kSocial), "social");
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kEmail), "email");
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kInternal), "internal");
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kDirect), "direct");
  EXPECT_EQ(ReferrerClassName(ReferrerClass::kOther), "other");
}

// Garbage of every kind: never a crash, outputs valid UTF-8, bounded sizes.
TEST(GarbageUrlTest, NeverCrashesAndStaysValid) {
  std::vector<std::string> inputs = {
      "",
      "?",
      "#",
      "://",
      "http://",
      "http://@:/?#",
      "http://[::1",
      "http://[]:/",
      "%",
      "%%%%",
      "?utm_source=%",
      "?utm_source=%G1%1",
      "?utm_source=%E2%82",
      "?=&=&&==&utm_source==",
      std::string("http://a.com/\0?utm_source=x\0y", 29),
      "javascript:alert(1)",
      "data:text/html;base64,PHNjcmlwdD4=",
      "\xff\xfe\xfd://\xc3\x28.com/\xa0?utm_source=\xe2\x28\xa1",
      "http://" + std::string(100000, 'a') + ".com/?utm_source=" + std::string(200000, 'b'),
      "https://x.com/?" + std::string(50000, '&'),
      std::string(300000, '%'),
  };
  std::mt19937 rng(42);
  constexpr std::string_view kAlphabet = "%?&=#/:@.[]+ aZ9\xff\xc3";
  for (int i = 0; i < 500; ++i) {
    std::string s;
    size_t n = rng() % 64;
    for (size_t k = 0; k < n; ++k) s.push_back(kAlphabet[rng() % kAlphabet.size()]);
    inputs.push_back(s);
  }
  for (const std::string& in : inputs) {
    PageInfo p = ParsePageUrl(in);
    for (const auto* f : {&p.host, &p.page_path, &p.utm_source, &p.utm_medium, &p.utm_campaign, &p.utm_term,
                          &p.utm_content, &p.gclid, &p.fbclid, &p.msclkid}) {
      if (f->has_value()) {
        EXPECT_TRUE(IsValidUtf8(**f));
      }
    }
    if (p.utm_source) {
      EXPECT_LE(p.utm_source->size(), kMaxParamLength);
    }
    if (p.page_path) {
      EXPECT_LE(p.page_path->size(), kMaxPathLength);
    }
    ReferrerInfo r = ClassifyReferrer(in, "example.com", p.utm_medium);
    if (r.referrer_host) {
      EXPECT_TRUE(IsValidUtf8(*r.referrer_host));
    }
    for (const auto& [k, v] : ParseQuery(in)) {
      EXPECT_TRUE(IsValidUtf8(k));
      EXPECT_TRUE(IsValidUtf8(v));
    }
    EXPECT_TRUE(IsValidUtf8(PercentDecode(in, true)));
  }
}

TEST(TextUtilTest, Utf8AndJson) {
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_EQ(SanitizeUtf8("a\xE2\x82z"), "a\xEF\xBF\xBD\xEF\xBF\xBDz");
  std::string json;
  AppendJsonString(std::string("q\"b\\s/\n\t\x01\x7f\xff\xC3\xA9", 13), &json);
  EXPECT_EQ(json, "\"q\\\"b\\\\s/\\n\\t\\u0001\\u007f\xEF\xBF\xBD\xC3\xA9\"");
  EXPECT_EQ(TrimWhitespace(" \t x y \r\n"), "x y");
  EXPECT_EQ(ToLowerAscii("AbC\xC3\x89"), "abc\xC3\x89");
}

}  // namespace
}  // namespace clicklake::enrich
