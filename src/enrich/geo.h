// IP geolocation from a MaxMind DB (.mmdb) file through libmaxminddb.
//
// GeoDb opens any .mmdb: the default country DB from npm
// `@ip-location-db/geo-whois-asn-country-mmdb` (records `{country_code}`),
// GeoLite2/GeoIP2 Country or City, DB-IP lite, or ip-location-db city files.
// The record layouts differ; Lookup() reads, first present wins:
//   country  country_code | country.iso_code | registered_country.iso_code
//   region   subdivisions[0].iso_code | subdivisions[0].names.en | state1
//   city     city.names.en | city (a plain string)
// IPv4 and IPv6 text addresses are accepted (IPv4 also in an IPv6 DB, and
// IPv4-mapped IPv6 "::ffff:a.b.c.d" as the IPv4 address it is); anything
// else, or an address the DB does not cover, gives an empty GeoLocation.
//
// Ownership: GeoDb owns the memory-mapped file and an LRU cache of answers.
// Thread safety: Lookup() may be called concurrently (libmaxminddb lookups are
// read-only on the mapping; the cache is internally synchronized).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clicklake::enrich {

struct GeoLocation {
  std::optional<std::string> country;  // ISO 3166-1 alpha-2, e.g. "US"
  std::optional<std::string> region;   // subdivision code or name, when the DB has one
  std::optional<std::string> city;     // English name, when the DB has one

  bool empty() const { return !country && !region && !city; }
  bool operator==(const GeoLocation&) const = default;
};

struct GeoOptions {
  // .mmdb file; empty → DefaultGeoDbPath().
  std::string db_path;
  // Cached addresses (LRU over shards); 0 disables caching.
  size_t cache_capacity = 100000;
  size_t cache_shards = 16;
};

// `<source>/.deps/npm/geo-country-mmdb/geo-whois-asn-country.mmdb` (IPv4 + IPv6),
// from the CLICKLAKE_DEPS_DIR compile definition, else "".
std::string DefaultGeoDbPath();

class GeoDb {
 public:
  // Errors: NotFound when the file does not exist, Corruption when it is not a
  // valid MaxMind DB.
  static Result<std::unique_ptr<GeoDb>> Open(const GeoOptions& options);

  ~GeoDb();
  GeoDb(const GeoDb&) = delete;
  GeoDb& operator=(const GeoDb&) = delete;

  // The location of `ip` ("8.8.8.8", "2001:db8::1", "::ffff:1.2.3.4"; surrounding
  // whitespace and a zone suffix "%eth0" are ignored). Never fails: invalid or
  // unknown addresses give an empty result.
  GeoLocation Lookup(std::string_view ip) const;
  GeoLocation LookupUncached(std::string_view ip) const;

  // The DB's metadata database_type, e.g. "GeoLite2-City" or "country ipvAll".
  std::string database_type() const;
  int64_t cache_hits() const;
  int64_t cache_misses() const;
  size_t cache_entries() const;

 private:
  struct Impl;
  explicit GeoDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clicklake::enrich
