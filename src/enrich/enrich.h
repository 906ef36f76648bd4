// clicklake enrichment: the public face of src/enrich.
//
// The pipeline calls this once per event of a micro-batch to fill the
// silver.events enrichment columns:
//   user agent → device_type, device_family, browser_family/_version, os_family/_version
//                (uap-core rules through RE2, cached)                      — user_agent.h
//   client IP  → geo_country, geo_region, geo_city (MaxMind DB, cached)   — geo.h
//   page URL   → page_path, utm_*, campaign_id, click ids                 — campaign.h
//   referrer   → referrer_host and its class (search/social/email/...)    — campaign.h
//   event JSON → experiment_id, experiment_variant (configurable paths)   — experiment.h
// Each part can be used alone; Enricher bundles them, built from Config.
//
// Config keys (all optional):
//   enrich.ua_regexes        uap-core regexes.yaml (default: .deps/npm/uap-core/regexes.yaml
//                            of the source tree, see DefaultUaRegexesPath)
//   enrich.ua_cache_size     cached user agents (default 100000; 0 = off)
//   enrich.geoip_db          .mmdb file (default: the ip-location-db country DB, see
//                            DefaultGeoDbPath); "none" turns geo lookups off
//   enrich.geo_cache_size    cached IPs (default 100000; 0 = off)
//   enrich.experiment_paths  ["ID_PATH|VARIANT_PATH", ...] (see experiment.h)
//
// Ownership: an Enricher owns its UaParser and GeoDb.
// Thread safety: a built Enricher is safe to share; Enrich() and every const
// method may run concurrently from any number of threads.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/metrics.h"
#include "common/status.h"
#include "enrich/campaign.h"
#include "enrich/experiment.h"
#include "enrich/geo.h"
#include "enrich/user_agent.h"

namespace clicklake::enrich {

struct EnrichOptions {
  UaParserOptions ua;
  GeoOptions geo;
  bool geo_enabled = true;
  std::vector<ExperimentPath> experiment_paths = DefaultExperimentPaths();
};

// Reads the enrich.* keys above. InvalidArgument for a malformed
// enrich.experiment_paths entry or a negative cache size.
Result<EnrichOptions> EnrichOptionsFromConfig(const Config& config);

// The raw inputs of one event (any may be empty).
struct EventContext {
  std::string_view user_agent;
  std::string_view client_ip;
  std::string_view page_url;
  std::string_view referrer_url;
};

// Everything the enrichers derived from one event.
struct Enrichment {
  UserAgent user_agent;
  GeoLocation geo;
  PageInfo page;
  ReferrerInfo referrer;
  Experiment experiment;
};

class Enricher {
 public:
  // Loads the UA rules and opens the geo DB. Errors are those of
  // UaParser::Open and GeoDb::Open (NotFound: run scripts/setup or configure
  // the path).
  static Result<std::unique_ptr<Enricher>> Open(const EnrichOptions& options);

  // UA, geo, page and referrer (no experiment: that needs the event JSON).
  Enrichment Enrich(const EventContext& event) const;
  // The same plus the experiment from `event_json` (the event object).
  Enrichment Enrich(const EventContext& event, simdjson::dom::element event_json) const;

  // Brings the enrichment metrics in `registry` up to date (call it once per
  // batch, or before a scrape):
  //   clicklake_enrich_cache_hits_total{cache="ua"|"geo"}    counter
  //   clicklake_enrich_cache_misses_total{cache="ua"|"geo"}  counter
  //   clicklake_enrich_cache_entries{cache="ua"|"geo"}       gauge
  // Counters advance by what happened since the previous call. Thread-safe.
  void PublishMetrics(MetricsRegistry* registry) const;

  const UaParser& ua_parser() const { return *ua_; }
  // Null when geo lookups are off.
  const GeoDb* geo_db() const { return geo_.get(); }
  const std::vector<ExperimentPath>& experiment_paths() const { return experiment_paths_; }

 private:
  Enricher(std::unique_ptr<UaParser> ua, std::unique_ptr<GeoDb> geo, std::vector<ExperimentPath> paths);

  std::unique_ptr<UaParser> ua_;
  std::unique_ptr<GeoDb> geo_;
  std::vector<ExperimentPath> experiment_paths_;

  struct Published {
    int64_t hits = 0;
    int64_t misses = 0;
  };
  mutable std::mutex publish_mu_;
  mutable Published published_ua_;   // GUARDED_BY(publish_mu_)
  mutable Published published_geo_;  // GUARDED_BY(publish_mu_)
};

}  // namespace clicklake::enrich
