// User-agent parsing by the uap-core rules (regexes.yaml), plus a device type.
//
// UaParser loads uap-core's `regexes.yaml` (yaml-cpp), compiles every rule with
// RE2 and applies the uap-core semantics: three independent rule lists
// (user_agent_parsers, os_parsers, device_parsers), the first matching rule of
// each list wins, `*_replacement` strings with $1..$9 substitution, `regex_flag:
// 'i'` for case-insensitive rules, results trimmed, empty results absent, and
// "Other" as the family when no rule matches.
//
// Speed: Parse() first looks in a sharded LRU cache keyed by the UA string. On a
// miss each rule list is prefiltered with RE2::Set (a few DFA scans tell which
// rules match at all), and only the first matching rule is run for its capture
// groups, instead of trying hundreds of regexes one after the other.
//
// Ownership: a UaParser owns its compiled rules and cache; results are values.
// Thread safety: a built UaParser is immutable apart from its internally
// synchronized cache; Parse() may be called concurrently from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clicklake::enrich {

// silver.events `device_type`. Rules (ClassifyDeviceType), first that applies:
//   1. bot     device family "Spider" (uap-core's crawler family), or a UA
//              family ending in "bot" or containing "crawler"/"spider";
//   2. tablet  iPad, Kindle/Silk, "Generic Tablet", HP TouchPad, BlackBerry
//              Tablet OS, families/models naming a tablet (Galaxy Tab, Nexus 7/9/10);
//   3. other   TVs, consoles, cars, headsets (family with TV, PlayStation, Xbox,
//              Nintendo, Wii, Tesla, Quest; tvOS, Web0S);
//   4. tablet  an Android browser UA ("Safari") without "Mobile" (Chrome's
//              convention); mobile: a mobile OS (iOS, Android, Windows Phone,
//              BlackBerry, KaiOS, Symbian, Tizen, Firefox OS, webOS, ...);
//   5. desktop device family "Mac"; mobile: any other device family uap-core
//              recognised (its device rules name phones, tablets and bots;
//              desktops stay "Other");
//   6. desktop Windows, Mac OS X / macOS, Linux distributions, Chrome OS, *BSD, Solaris;
//   7. other   everything else (unknown OS and device, libraries, feeds).
enum class DeviceType { kDesktop, kMobile, kTablet, kBot, kOther };

// "desktop", "mobile", "tablet", "bot", "other".
std::string_view DeviceTypeName(DeviceType type);

// The parsed fields of one user agent. Absent fields are std::nullopt; the
// three families are never absent ("Other" when no rule matched).
struct UserAgent {
  std::optional<std::string> ua_family;
  std::optional<std::string> ua_major;
  std::optional<std::string> ua_minor;
  std::optional<std::string> ua_patch;
  std::optional<std::string> ua_patch_minor;  // uap-core's 5th UA group
  std::optional<std::string> os_family;
  std::optional<std::string> os_major;
  std::optional<std::string> os_minor;
  std::optional<std::string> os_patch;
  std::optional<std::string> os_patch_minor;
  std::optional<std::string> device_family;
  std::optional<std::string> device_brand;
  std::optional<std::string> device_model;
  DeviceType device_type = DeviceType::kOther;

  // "major[.minor[.patch]]" of the browser / OS, absent when major is absent
  // (silver.events browser_version / os_version).
  std::optional<std::string> BrowserVersion() const;
  std::optional<std::string> OsVersion() const;

  bool operator==(const UserAgent&) const = default;
};

// Classifies a parsed user agent (see DeviceType). `raw_ua` is the original
// string; it is used for the Android phone/tablet distinction only.
DeviceType ClassifyDeviceType(const UserAgent& ua, std::string_view raw_ua);

struct UaParserOptions {
  // regexes.yaml to load; empty → DefaultUaRegexesPath().
  std::string regexes_path;
  // Total cached user agents (an LRU spread over shards); 0 disables caching.
  size_t cache_capacity = 100000;
  size_t cache_shards = 16;
  // Prefilter each rule list with RE2::Set. Off = try rules one by one (the
  // reference behaviour; kept for tests and benchmarks).
  bool use_prefilter = true;
  // RE2 memory budget per compiled rule and per prefilter set. RE2 allocates
  // DFA states lazily up to this cap (and starts over when it is full), so it
  // bounds memory, not a fixed cost. uap-core's crawler rules (`^.{0,200}?...`)
  // fall back to RE2's NFA (~50x slower) under RE2's default 8 MB; 16 MB keeps
  // them on the DFA. Measured: ~75 MB RSS after the 1,892 uap-core test UAs;
  // ~180 MB after 60k randomly mutated UAs (adversarial input).
  int64_t regex_max_mem = 16 << 20;
  // Longer user agents are cut to this many bytes before parsing (real ones are
  // under 1 KB; this bounds the cost of garbage).
  size_t max_length = 4096;
};

// The regexes.yaml shipped by scripts/setup: `<source>/.deps/npm/uap-core/regexes.yaml`
// (the CLICKLAKE_DEPS_DIR compile definition), else "" when not built with it.
std::string DefaultUaRegexesPath();

// Counts from loading regexes.yaml. `rewritten` rules used PCRE-only syntax and
// were rewritten to an RE2 equivalent; `rejected` rules could not be compiled
// (they are skipped, and reported here and in the log).
struct UaRuleStats {
  int ua_rules = 0;
  int os_rules = 0;
  int device_rules = 0;
  int rewritten = 0;
  int rejected = 0;
  int prefilter_sets = 0;  // RE2::Set shards built over all three lists
};

class UaParser {
 public:
  // Loads and compiles the rules from options.regexes_path (or the default).
  // Errors: NotFound if the file is missing, InvalidArgument if it is not a
  // uap-core regexes file.
  static Result<std::unique_ptr<UaParser>> Open(const UaParserOptions& options);
  // Same from YAML text (tests, embedded rules).
  static Result<std::unique_ptr<UaParser>> FromYaml(std::string_view yaml_text, const UaParserOptions& options);

  ~UaParser();
  UaParser(const UaParser&) = delete;
  UaParser& operator=(const UaParser&) = delete;

  // Parses `user_agent`, through the cache. Never fails: an empty or garbage
  // string gives the "Other" families. Thread-safe.
  UserAgent Parse(std::string_view user_agent) const;
  // Parses without touching the cache.
  UserAgent ParseUncached(std::string_view user_agent) const;

  const UaRuleStats& rule_stats() const;
  int64_t cache_hits() const;
  int64_t cache_misses() const;
  size_t cache_entries() const;

 private:
  struct Impl;
  explicit UaParser(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clicklake::enrich
