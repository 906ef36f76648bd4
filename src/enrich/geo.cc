#include "enrich/geo.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <filesystem>

#include "enrich/lru_cache.h"
#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

// Parses a textual IPv4/IPv6 address into `storage`. Only numeric forms are
// accepted (no name resolution, unlike MMDB_lookup_string's getaddrinfo).
bool ParseIp(std::string_view text, sockaddr_storage* storage) {
  text = TrimWhitespace(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (size_t pct = text.find('%'); pct != std::string_view::npos) text = text.substr(0, pct);
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return false;
  for (char c : text) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;  // also stops embedded NULs reaching inet_pton
  }
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::memset(storage, 0, sizeof(*storage));
  auto* v4 = reinterpret_cast<sockaddr_in*>(storage);
  if (inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(storage);
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) == 1) {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; look those
    // up as the IPv4 address they are (DBs need not alias the mapped range).
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      v4->sin_family = AF_INET;
      std::memcpy(&v4->sin_addr, &a6.s6_addr[12], 4);
      return true;
    }
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = a6;
    return true;
  }
  return false;
}

// The UTF-8 string at `path` (a null-terminated list) in `entry`, if any.
std::optional<std::string> StringAt(MMDB_entry_s* entry, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS) return std::nullopt;
  if (!data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size == 0) return std::nullopt;
  return SanitizeUtf8(std::string_view(data.utf8_string, data.data_size));
}

template <size_t N>
std::optional<std::string> FirstStringAt(MMDB_entry_s* entry, const char* const (&paths)[N][5]) {
  for (const auto& path : paths) {
    if (auto v = StringAt(entry, path)) return v;
  }
  return std::nullopt;
}

constexpr const char* kCountryPaths[][5] = {
    {"country_code", nullptr},
    {"country", "iso_code", nullptr},
    {"registered_country", "iso_code", nullptr},
};
constexpr const char* kRegionPaths[][5] = {
    {"subdivisions", "0", "iso_code", nullptr},
    {"subdivisions", "0", "names", "en", nullptr},
    {"state1", nullptr},
};
constexpr const char* kCityPaths[][5] = {
    {"city", "names", "en", nullptr},
    {"city", nullptr},
};

}  // namespace

std::string DefaultGeoDbPath() {
#ifdef CLICKLAKE_DEPS_DIR
  return std::string(CLICKLAKE_DEPS_DIR) + "/npm/geo-country-mmdb/geo-whois-asn-country.mmdb";
#else
  return "";
#endif
}

struct GeoDb::Impl {
  MMDB_s mmdb{};
  bool open = false;
  mutable ShardedLruCache<GeoLocation> cache;

  explicit Impl(const GeoOptions& o) : cache(o.cache_capacity, o.cache_shards) {}
  ~Impl() {
    if (open) MMDB_close(&mmdb);
  }

  GeoLocation LookupUncached(std::string_view ip) const {
    GeoLocation out;
    sockaddr_storage addr;
    if (!ParseIp(ip, &addr)) return out;
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s result = MMDB_lookup_sockaddr(&mmdb, reinterpret_cast<const sockaddr*>(&addr), &mmdb_error);
    // An IPv6 address in an IPv4-only DB is an error, not a crash: no result.
    if (mmdb_error != MMDB_SUCCESS || !result.found_entry) return out;
    out.country = FirstStringAt(&result.entry, kCountryPaths);
    out.region = FirstStringAt(&result.entry, kRegionPaths);
    // "city" is an object in GeoLite2 and a string in ip-location-db: StringAt
    // checks the type, so the plain-string path only answers for the latter.
    out.city = FirstStringAt(&result.entry, kCityPaths);
    return out;
  }
};

GeoDb::GeoDb(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GeoDb::~GeoDb() = default;

Result<std::unique_ptr<GeoDb>> GeoDb::Open(const GeoOptions& options) {
  std::string path = options.db_path.empty() ? DefaultGeoDbPath() : options.db_path;
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("geo database " + (path.empty() ? std::string("(none)") : path) +
                            " not found: set enrich.geoip_db to a .mmdb file or run scripts/setup");
  }
  auto impl = std::make_unique<Impl>(options);
  int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &impl->mmdb);
  if (rc != MMDB_SUCCESS) {
    if (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) {
      return Status::IOError("cannot open geo database " + path + ": " + MMDB_strerror(rc));
    }
    return Status::Corruption("geo database " + path + " is not a valid MaxMind DB: " + MMDB_strerror(rc));
  }
  impl->open = true;
  return std::unique_ptr<GeoDb>(new GeoDb(std::move(impl)));
}

GeoLocation GeoDb::Lookup(std::string_view ip) const {
  GeoLocation out;
  if (ip.size() > 64) return out;  // no address is this long; keep garbage out of the cache
  if (impl_->cache.Get(ip, &out)) return out;
  out = impl_->LookupUncached(ip);
  impl_->cache.Put(ip, out);
  return out;
}

GeoLocation GeoDb::LookupUncached(std::string_view ip) const { return impl_->LookupUncached(ip); }

std::string GeoDb::database_type() const {
  const char* t = impl_->mmdb.metadata.database_type;
  return t == nullptr ? "" : t;
}
int64_t GeoDb::cache_hits() const { return impl_->cache.hits(); }
int64_t GeoDb::cache_misses() const { return impl_->cache.misses(); }
size_t GeoDb::cache_entries() const { return impl_->cache.size(); }

}  // namespace clicklake::enrich
