#include "enrich/user_agent.h"

#include <re2/re2.h>
#include <re2/set.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "enrich/lru_cache.h"
#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

// Rules per RE2::Set. One set over a whole list (628 device rules, many with
// `.{0,200}`-style counters) grows a DFA that keeps hitting its memory budget
// on new inputs; smaller shards keep each DFA small while a miss still costs
// only a few scans (8 UA, 5 OS and 14 device shards for uap-core 0.18.0).
// Measured: 48 costs the same as 96 on the uap-core test UAs (~23 us per miss)
// and ~30% less on never-seen, randomly mutated ones.
constexpr size_t kRulesPerSet = 48;
constexpr int kMaxGroups = 10;  // $0..$9

// One rule of a list. `fields` are the replacement templates in output order
// (e.g. family, major, minor, patch, patch_minor); absent = take the default
// capture group.
struct Rule {
  std::unique_ptr<RE2> re;
  std::array<std::optional<std::string>, 5> fields;
  int groups = 0;  // capture groups in `re`, capped at kMaxGroups - 1
  // Groups the output actually uses (0 = none: a DFA-only match suffices,
  // which for the big crawler rules is ~10x cheaper than extracting groups).
  int needed_groups = 0;
};

// Highest $N referenced by `tmpl`.
int MaxReference(const std::string& tmpl) {
  int max_ref = 0;
  for (size_t i = 0; i + 1 < tmpl.size(); ++i) {
    if (tmpl[i] == '$' && tmpl[i + 1] >= '1' && tmpl[i + 1] <= '9') max_ref = std::max(max_ref, tmpl[i + 1] - '0');
  }
  return max_ref;
}

// Rewrites the PCRE-only constructs that RE2 rejects but can approximate:
//   (?>...)  atomic group           → (?:...)
//   X*+ X++ X?+ X{n,m}+ possessive  → greedy
// The rewrite matches a superset of the original: it differs only on inputs
// where PCRE, refusing to backtrack into the group, gives up a match. UA rule
// files use these constructs to bound backtracking, which RE2 never needs.
// (uap-core 0.18.0 needs none of this.) Returns false when there was nothing
// to rewrite.
bool RewritePcre(const std::string& in, std::string* out) {
  out->clear();
  bool changed = false;
  bool in_class = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\' && i + 1 < in.size()) {
      out->push_back(c);
      out->push_back(in[++i]);
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out->push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out->push_back(c);
      if (i + 1 < in.size() && in[i + 1] == '^') out->push_back(in[++i]);
      if (i + 1 < in.size() && in[i + 1] == ']') out->push_back(in[++i]);
      continue;
    }
    if (c == '(' && in.compare(i, 3, "(?>") == 0) {
      out->append("(?:");
      i += 2;
      changed = true;
      continue;
    }
    if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < in.size() && in[i + 1] == '+') {
      out->push_back(c);
      ++i;  // drop the possessive '+'
      changed = true;
      continue;
    }
    out->push_back(c);
  }
  return changed;
}

// A pattern matching a superset of what `pattern` matches, cheaper for the
// prefilter DFA: every bounded repetition X{m,n} becomes X{m,} (X* / X+ for m
// of 0 / 1). uap-core's crawler rules use `^.{0,200}?` and `[...]{0,50}` to keep
// backtracking engines bounded; in a DFA those counters multiply states until
// RE2 gives up and falls back to its NFA (~100x slower). Dropping the upper
// bounds only widens the language, and every prefilter hit is confirmed with
// the exact rule, so the first-match-wins answer is unchanged.
std::string RelaxForPrefilter(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  bool in_class = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\' && i + 1 < in.size()) {
      out.push_back(c);
      out.push_back(in[++i]);
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      if (i + 1 < in.size() && in[i + 1] == '^') out.push_back(in[++i]);
      if (i + 1 < in.size() && in[i + 1] == ']') out.push_back(in[++i]);
      continue;
    }
    if (c == '{') {
      // {m,n} with both bounds: parse it, else copy the brace literally.
      size_t j = i + 1;
      size_t m_begin = j;
      while (j < in.size() && in[j] >= '0' && in[j] <= '9') ++j;
      size_t m_end = j;
      if (m_end > m_begin && j < in.size() && in[j] == ',') {
        ++j;
        size_t n_begin = j;
        while (j < in.size() && in[j] >= '0' && in[j] <= '9') ++j;
        if (j > n_begin && j < in.size() && in[j] == '}') {
          std::string m = in.substr(m_begin, m_end - m_begin);
          if (m == "0") {
            out.push_back('*');
          } else if (m == "1") {
            out.push_back('+');
          } else {
            out += "{" + m + ",}";
          }
          i = j;
          continue;
        }
      }
    }
    out.push_back(c);
  }
  return out;
}

// One of the three rule lists, compiled, with its prefilter shards.
// Immutable after BuildPrefilter(); FirstMatch() is thread-safe (RE2 and
// RE2::Set are).
class RuleList {
 public:
  explicit RuleList(int64_t max_mem) : max_mem_(max_mem) {}

  // Compiles one rule; returns false (with a reason) if RE2 rejects it even
  // after RewritePcre. `default_groups[f]` is the capture group field f takes
  // when the rule has no template for it (0 = none).
  bool Add(const std::string& pattern, bool case_insensitive, std::array<std::optional<std::string>, 5> fields,
           const std::array<int, 5>& default_groups, bool* rewritten, std::string* error) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(max_mem_);
    options.set_case_sensitive(!case_insensitive);
    std::string effective = pattern;
    auto re = std::make_unique<RE2>(effective, options);
    *rewritten = false;
    if (!re->ok()) {
      std::string alt;
      if (RewritePcre(pattern, &alt)) {
        auto re2 = std::make_unique<RE2>(alt, options);
        if (re2->ok()) {
          re = std::move(re2);
          effective = alt;
          *rewritten = true;
        }
      }
    }
    if (!re->ok()) {
      *error = re->error();
      return false;
    }
    Rule rule;
    rule.groups = std::min(re->NumberOfCapturingGroups(), kMaxGroups - 1);
    for (size_t f = 0; f < fields.size(); ++f) {
      int uses = fields[f].has_value() ? MaxReference(*fields[f]) : default_groups[f];
      rule.needed_groups = std::max(rule.needed_groups, std::min(uses, rule.groups));
    }
    rule.re = std::move(re);
    rule.fields = std::move(fields);
    rules_.push_back(std::move(rule));
    std::string relaxed = RelaxForPrefilter(effective);
    if (!RE2(relaxed, options).ok()) relaxed = effective;
    patterns_.push_back(case_insensitive ? "(?i)" + relaxed : relaxed);
    return true;
  }

  // Builds the RE2::Set shards. Returns the number of sets built.
  int BuildPrefilter() {
    sets_.clear();
    for (size_t begin = 0; begin < rules_.size(); begin += kRulesPerSet) {
      size_t end = std::min(rules_.size(), begin + kRulesPerSet);
      RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(max_mem_);
      auto set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
      bool ok = true;
      for (size_t i = begin; i < end && ok; ++i) {
        ok = set->Add(patterns_[i], nullptr) == static_cast<int>(i - begin);
      }
      ok = ok && set->Compile();
      Shard shard;
      shard.begin = begin;
      shard.end = end;
      if (ok) shard.set = std::move(set);
      sets_.push_back(std::move(shard));
    }
    patterns_.clear();
    patterns_.shrink_to_fit();
    return static_cast<int>(sets_.size());
  }

  // Finds the first rule matching `text`; fills groups[0..kMaxGroups) and
  // returns the rule, or nullptr when no rule matches.
  const Rule* FirstMatch(std::string_view text, re2::StringPiece* groups, bool use_prefilter) const {
    re2::StringPiece input(text.data(), text.size());
    if (!use_prefilter || sets_.empty()) return Sequential(input, 0, rules_.size(), groups);
    std::vector<int> hits;
    for (const Shard& shard : sets_) {
      if (shard.set == nullptr) {
        if (const Rule* r = Sequential(input, shard.begin, shard.end, groups)) return r;
        continue;
      }
      hits.clear();
      RE2::Set::ErrorInfo info;
      if (!shard.set->Match(input, &hits, &info)) {
        if (info.kind == RE2::Set::kNoError) continue;  // nothing in this shard matches
        // DFA out of memory (or similar): answer this shard the slow way.
        if (const Rule* r = Sequential(input, shard.begin, shard.end, groups)) return r;
        continue;
      }
      std::sort(hits.begin(), hits.end());
      for (int h : hits) {
        const Rule& rule = rules_[shard.begin + static_cast<size_t>(h)];
        if (MatchRule(rule, input, groups)) return &rule;
      }
    }
    return nullptr;
  }

  size_t size() const { return rules_.size(); }

 private:
  struct Shard {
    size_t begin = 0;
    size_t end = 0;
    std::unique_ptr<RE2::Set> set;  // null when the set could not be built
  };

  static bool MatchRule(const Rule& rule, const re2::StringPiece& input, re2::StringPiece* groups) {
    for (int i = 0; i < kMaxGroups; ++i) groups[i] = re2::StringPiece();
    if (rule.needed_groups == 0) return rule.re->Match(input, 0, input.size(), RE2::UNANCHORED, nullptr, 0);
    return rule.re->Match(input, 0, input.size(), RE2::UNANCHORED, groups, rule.needed_groups + 1);
  }

  const Rule* Sequential(const re2::StringPiece& input, size_t begin, size_t end, re2::StringPiece* groups) const {
    for (size_t i = begin; i < end; ++i) {
      if (MatchRule(rules_[i], input, groups)) return &rules_[i];
    }
    return nullptr;
  }

  const int64_t max_mem_;
  std::vector<Rule> rules_;
  std::vector<std::string> patterns_;  // only until BuildPrefilter
  std::vector<Shard> sets_;
};

// Expands $1..$9 in `tmpl` with the capture groups (a group that did not take
// part expands to nothing).
std::string Substitute(const std::string& tmpl, const re2::StringPiece* groups, int ngroups) {
  std::string out;
  out.reserve(tmpl.size() + 16);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c == '$' && i + 1 < tmpl.size() && tmpl[i + 1] >= '1' && tmpl[i + 1] <= '9') {
      int g = tmpl[i + 1] - '0';
      if (g <= ngroups && groups[g].data() != nullptr) out.append(groups[g].data(), groups[g].size());
      ++i;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Trimmed, valid UTF-8, absent when empty.
std::optional<std::string> Finish(std::string_view value) {
  std::string_view t = TrimWhitespace(value);
  if (t.empty()) return std::nullopt;
  return SanitizeUtf8(t);
}

// The value of field `f` of a matched rule: its replacement template if the
// rule has one, else capture group `default_group` (0 = none).
std::optional<std::string> Field(const Rule& rule, int f, int default_group, const re2::StringPiece* groups) {
  if (rule.fields[f].has_value()) return Finish(Substitute(*rule.fields[f], groups, rule.groups));
  if (default_group == 0 || default_group > rule.groups) return std::nullopt;
  const re2::StringPiece& g = groups[default_group];
  if (g.data() == nullptr) return std::nullopt;
  return Finish(std::string_view(g.data(), g.size()));
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

bool OneOf(const std::optional<std::string>& v, std::initializer_list<std::string_view> options) {
  if (!v) return false;
  for (std::string_view o : options) {
    if (*v == o) return true;
  }
  return false;
}

std::optional<std::string> JoinVersion(const std::optional<std::string>& a, const std::optional<std::string>& b,
                                       const std::optional<std::string>& c) {
  if (!a) return std::nullopt;
  std::string out = *a;
  if (b) {
    out += "." + *b;
    if (c) out += "." + *c;
  }
  return out;
}

}  // namespace

std::string_view DeviceTypeName(DeviceType type) {
  switch (type) {
    case DeviceType::kDesktop:
      return "desktop";
    case DeviceType::kMobile:
      return "mobile";
    case DeviceType::kTablet:
      return "tablet";
    case DeviceType::kBot:
      return "bot";
    case DeviceType::kOther:
      return "other";
  }
  return "other";
}

std::optional<std::string> UserAgent::BrowserVersion() const { return JoinVersion(ua_major, ua_minor, ua_patch); }
std::optional<std::string> UserAgent::OsVersion() const { return JoinVersion(os_major, os_minor, os_patch); }

DeviceType ClassifyDeviceType(const UserAgent& ua, std::string_view raw_ua) {
  const std::string family = ua.device_family.value_or("Other");
  const std::string model = ua.device_model.value_or("");
  const std::string ua_family = ua.ua_family.value_or("Other");
  const std::string os = ua.os_family.value_or("Other");

  // 1. Bots: uap-core gives crawlers the "Spider" device family; some UA rules
  // name bots without a device rule.
  if (family == "Spider") return DeviceType::kBot;
  {
    std::string lower = ua_family;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if ((lower.size() >= 3 && lower.compare(lower.size() - 3, 3, "bot") == 0) ||
        lower.find("crawler") != std::string::npos || lower.find("spider") != std::string::npos) {
      return DeviceType::kBot;
    }
  }

  // 2. Devices named as tablets.
  if (family.rfind("iPad", 0) == 0 || family.rfind("Kindle", 0) == 0 || family == "Generic Tablet" ||
      family == "HP TouchPad" || os == "BlackBerry Tablet OS" || ContainsIgnoreCase(family, "tablet") ||
      ContainsIgnoreCase(model, "tablet") || family.find("Galaxy Tab") != std::string::npos ||
      model.rfind("Nexus 7", 0) == 0 || model == "Nexus 9" || model == "Nexus 10" ||
      ContainsIgnoreCase(ua_family, "Silk")) {
    return DeviceType::kTablet;
  }

  // 3. TVs, consoles, cars and headsets.
  for (std::string_view other : {"TV", "PlayStation", "Xbox", "Nintendo", "Wii", "Inettv", "Tesla", "Quest"}) {
    if (ContainsIgnoreCase(family, other)) return DeviceType::kOther;
  }
  if (os == "tvOS" || os == "Web0S" || ContainsIgnoreCase(os, "TV")) return DeviceType::kOther;

  // 4. Mobile operating systems. An Android *browser* without "Mobile" in its
  // UA is a tablet (the convention Chrome and Google's guidance follow); app
  // UAs (no "Safari") say nothing either way and count as phones.
  if (os == "Android" && family != "Generic Smartphone" && raw_ua.find("Safari") != std::string_view::npos &&
      raw_ua.find("Mobile") == std::string_view::npos) {
    return DeviceType::kTablet;
  }
  if (OneOf(ua.os_family,
            {"iOS",          "Android",    "Windows Phone", "Windows Mobile",  "Windows CE",      "BlackBerry OS",
             "KaiOS",        "Symbian OS", "Symbian^3",     "Symbian^3 Anna",  "Symbian^3 Belle", "Tizen",
             "Firefox OS",   "webOS",      "Bada",          "MeeGo",           "Maemo",           "Sailfish",
             "Ubuntu Touch", "HarmonyOS",  "WatchOS",       "Nokia Series 40", "Series 60"})) {
    return DeviceType::kMobile;
  }

  // 5. Any other device uap-core recognised is a phone (its device rules name
  // phones, tablets and bots; desktops stay "Other"), except Macs.
  if (family == "Mac") return DeviceType::kDesktop;
  if (family != "Other") return DeviceType::kMobile;

  // 6. Desktop operating systems.
  if (OneOf(ua.os_family, {"Windows",   "Mac OS X", "Mac OS", "macOS",   "Linux",    "Ubuntu",    "Debian",
                           "Fedora",    "Red Hat",  "Mint",   "SUSE",    "openSUSE", "Gentoo",    "Arch Linux",
                           "Slackware", "Mandriva", "CentOS", "Kubuntu", "Xubuntu",  "Chrome OS", "ChromeOS",
                           "FreeBSD",   "OpenBSD",  "NetBSD", "BSD",     "Solaris",  "SunOS"})) {
    return DeviceType::kDesktop;
  }
  return DeviceType::kOther;
}

std::string DefaultUaRegexesPath() {
#ifdef CLICKLAKE_DEPS_DIR
  return std::string(CLICKLAKE_DEPS_DIR) + "/npm/uap-core/regexes.yaml";
#else
  return "";
#endif
}

struct UaParser::Impl {
  UaParserOptions options;
  RuleList ua;
  RuleList os;
  RuleList device;
  UaRuleStats stats;
  mutable ShardedLruCache<UserAgent> cache;

  explicit Impl(const UaParserOptions& o)
      : options(o),
        ua(o.regex_max_mem),
        os(o.regex_max_mem),
        device(o.regex_max_mem),
        cache(o.cache_capacity, o.cache_shards) {}

  Status Load(std::string_view yaml_text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument(std::string("regexes.yaml is not valid YAML: ") + e.what());
    }
    if (!root.IsMap() || !root["user_agent_parsers"] || !root["os_parsers"] || !root["device_parsers"]) {
      return Status::InvalidArgument(
          "not a uap-core regexes.yaml: expected user_agent_parsers, os_parsers and device_parsers");
    }
    RETURN_IF_ERROR(
        LoadList(root["user_agent_parsers"], "user_agent_parsers",
                 {"family_replacement", "v1_replacement", "v2_replacement", "v3_replacement", "v4_replacement"},
                 kVersionedGroups, &ua));
    RETURN_IF_ERROR(
        LoadList(root["os_parsers"], "os_parsers",
                 {"os_replacement", "os_v1_replacement", "os_v2_replacement", "os_v3_replacement", "os_v4_replacement"},
                 kVersionedGroups, &os));
    RETURN_IF_ERROR(LoadList(root["device_parsers"], "device_parsers",
                             {"device_replacement", "brand_replacement", "model_replacement", "", ""}, kDeviceGroups,
                             &device));
    stats.ua_rules = static_cast<int>(ua.size());
    stats.os_rules = static_cast<int>(os.size());
    stats.device_rules = static_cast<int>(device.size());
    if (options.use_prefilter) {
      stats.prefilter_sets = ua.BuildPrefilter() + os.BuildPrefilter() + device.BuildPrefilter();
    }
    return Status::OK();
  }

  // Default capture group per output field: family, major, minor, patch,
  // patch_minor = $1..$5; device family = $1, brand = none, model = $1.
  static constexpr std::array<int, 5> kVersionedGroups = {1, 2, 3, 4, 5};
  static constexpr std::array<int, 5> kDeviceGroups = {1, 0, 1, 0, 0};

  Status LoadList(const YAML::Node& list, std::string_view name, std::array<const char*, 5> keys,
                  const std::array<int, 5>& default_groups, RuleList* out) {
    if (!list.IsSequence()) {
      return Status::InvalidArgument("regexes.yaml: " + std::string(name) + " is not a list");
    }
    size_t index = 0;
    for (const YAML::Node& entry : list) {
      ++index;
      std::string where = std::string(name) + "[" + std::to_string(index - 1) + "]";
      try {
        if (!entry.IsMap() || !entry["regex"]) {
          return Status::InvalidArgument("regexes.yaml: " + where + " has no regex");
        }
        std::string pattern = entry["regex"].as<std::string>();
        bool icase = false;
        if (entry["regex_flag"]) icase = entry["regex_flag"].as<std::string>() == "i";
        std::array<std::optional<std::string>, 5> fields;
        for (size_t f = 0; f < keys.size(); ++f) {
          if (keys[f][0] != '\0' && entry[keys[f]] && !entry[keys[f]].IsNull()) {
            fields[f] = entry[keys[f]].as<std::string>();
          }
        }
        bool rewritten = false;
        std::string error;
        if (!out->Add(pattern, icase, std::move(fields), default_groups, &rewritten, &error)) {
          ++stats.rejected;
          spdlog::warn("uap-core rule {} rejected by RE2 ({}): {}", where, error, pattern);
          continue;
        }
        if (rewritten) ++stats.rewritten;
      } catch (const YAML::Exception& e) {
        return Status::InvalidArgument("regexes.yaml: " + where + ": " + e.what());
      }
    }
    return Status::OK();
  }

  UserAgent ParseUncached(std::string_view text) const {
    if (text.size() > options.max_length) text = text.substr(0, options.max_length);
    // RE2 matches UTF-8 code points and `.` never matches an invalid byte; the
    // reference parsers see a decoded header where such bytes became U+FFFD.
    // Do the same, so `^(.{0,200})/...` style rules still match.
    std::string repaired;
    if (!IsValidUtf8(text)) {
      repaired = SanitizeUtf8(text);
      text = repaired;
    }
    UserAgent out;
    std::array<re2::StringPiece, kMaxGroups> g;
    bool prefilter = options.use_prefilter;
    if (const Rule* r = ua.FirstMatch(text, g.data(), prefilter)) {
      out.ua_family = Field(*r, 0, 1, g.data());
      out.ua_major = Field(*r, 1, 2, g.data());
      out.ua_minor = Field(*r, 2, 3, g.data());
      out.ua_patch = Field(*r, 3, 4, g.data());
      out.ua_patch_minor = Field(*r, 4, 5, g.data());
    }
    if (!out.ua_family) out.ua_family = "Other";
    if (const Rule* r = os.FirstMatch(text, g.data(), prefilter)) {
      out.os_family = Field(*r, 0, 1, g.data());
      out.os_major = Field(*r, 1, 2, g.data());
      out.os_minor = Field(*r, 2, 3, g.data());
      out.os_patch = Field(*r, 3, 4, g.data());
      out.os_patch_minor = Field(*r, 4, 5, g.data());
    }
    if (!out.os_family) out.os_family = "Other";
    if (const Rule* r = device.FirstMatch(text, g.data(), prefilter)) {
      out.device_family = Field(*r, 0, 1, g.data());
      out.device_brand = Field(*r, 1, 0, g.data());
      out.device_model = Field(*r, 2, 1, g.data());
    }
    if (!out.device_family) out.device_family = "Other";
    out.device_type = ClassifyDeviceType(out, text);
    return out;
  }
};

UaParser::UaParser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UaParser::~UaParser() = default;

Result<std::unique_ptr<UaParser>> UaParser::Open(const UaParserOptions& options) {
  std::string path = options.regexes_path.empty() ? DefaultUaRegexesPath() : options.regexes_path;
  if (path.empty()) {
    return Status::NotFound("no uap-core regexes.yaml configured: set enrich.ua_regexes or run scripts/setup");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot open uap-core regexes " + path +
                            ": set enrich.ua_regexes to a regexes.yaml or run scripts/setup");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto result = FromYaml(buffer.str(), options);
  if (!result.ok()) return result.status().WithContext(path);
  return result;
}

Result<std::unique_ptr<UaParser>> UaParser::FromYaml(std::string_view yaml_text, const UaParserOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  RETURN_IF_ERROR(impl->Load(yaml_text));
  return std::unique_ptr<UaParser>(new UaParser(std::move(impl)));
}

UserAgent UaParser::Parse(std::string_view user_agent) const {
  if (user_agent.size() > impl_->options.max_length) user_agent = user_agent.substr(0, impl_->options.max_length);
  UserAgent out;
  if (impl_->cache.Get(user_agent, &out)) return out;
  out = impl_->ParseUncached(user_agent);
  impl_->cache.Put(user_agent, out);
  return out;
}

UserAgent UaParser::ParseUncached(std::string_view user_agent) const { return impl_->ParseUncached(user_agent); }

const UaRuleStats& UaParser::rule_stats() const { return impl_->stats; }
int64_t UaParser::cache_hits() const { return impl_->cache.hits(); }
int64_t UaParser::cache_misses() const { return impl_->cache.misses(); }
size_t UaParser::cache_entries() const { return impl_->cache.size(); }

}  // namespace clicklake::enrich
