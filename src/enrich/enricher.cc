#include "enrich/enrich.h"

namespace clicklake::enrich {

Result<EnrichOptions> EnrichOptionsFromConfig(const Config& config) {
  EnrichOptions options;
  options.ua.regexes_path = config.GetString("enrich.ua_regexes", "");
  int64_t ua_cache = config.GetInt("enrich.ua_cache_size", static_cast<int64_t>(options.ua.cache_capacity));
  int64_t geo_cache = config.GetInt("enrich.geo_cache_size", static_cast<int64_t>(options.geo.cache_capacity));
  if (ua_cache < 0 || geo_cache < 0) {
    return Status::InvalidArgument("enrich.ua_cache_size and enrich.geo_cache_size must be >= 0 (0 turns caching off)");
  }
  options.ua.cache_capacity = static_cast<size_t>(ua_cache);
  options.geo.cache_capacity = static_cast<size_t>(geo_cache);
  std::string geo = config.GetString("enrich.geoip_db", "");
  if (geo == "none") {
    options.geo_enabled = false;
  } else {
    options.geo.db_path = geo;
  }
  if (config.Has("enrich.experiment_paths")) {
    auto paths = ParseExperimentPaths(config.GetStringList("enrich.experiment_paths"));
    if (!paths.ok()) return paths.status().WithContext("enrich.experiment_paths");
    options.experiment_paths = std::move(paths).value();
  }
  return options;
}

Enricher::Enricher(std::unique_ptr<UaParser> ua, std::unique_ptr<GeoDb> geo, std::vector<ExperimentPath> paths)
    : ua_(std::move(ua)), geo_(std::move(geo)), experiment_paths_(std::move(paths)) {}

Result<std::unique_ptr<Enricher>> Enricher::Open(const EnrichOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<UaParser> ua, UaParser::Open(options.ua));
  std::unique_ptr<GeoDb> geo;
  if (options.geo_enabled) {
    ASSIGN_OR_RETURN(geo, GeoDb::Open(options.geo));
  }
  return std::unique_ptr<Enricher>(new Enricher(std::move(ua), std::move(geo), options.experiment_paths));
}

Enrichment Enricher::Enrich(const EventContext& event) const {
  Enrichment out;
  out.user_agent = ua_->Parse(event.user_agent);
  if (geo_) out.geo = geo_->Lookup(event.client_ip);
  out.page = ParsePageUrl(event.page_url);
  std::optional<std::string_view> medium;
  if (out.page.utm_medium) medium = *out.page.utm_medium;
  out.referrer = ClassifyReferrer(event.referrer_url, out.page.host.value_or(""), medium);
  return out;
}

void Enricher::PublishMetrics(MetricsRegistry* registry) const {
  auto publish = [&](const std::string& cache, int64_t hits, int64_t misses, size_t entries, Published* last) {
    Labels labels{{"cache", cache}};
    registry->GetCounter("clicklake_enrich_cache_hits_total", "Enrichment cache hits", labels)
        ->Increment(hits - last->hits);
    registry->GetCounter("clicklake_enrich_cache_misses_total", "Enrichment cache misses", labels)
        ->Increment(misses - last->misses);
    registry->GetGauge("clicklake_enrich_cache_entries", "Entries in the enrichment caches", labels)
        ->Set(static_cast<double>(entries));
    last->hits = hits;
    last->misses = misses;
  };
  std::lock_guard<std::mutex> lock(publish_mu_);
  publish("ua", ua_->cache_hits(), ua_->cache_misses(), ua_->cache_entries(), &published_ua_);
  if (geo_) publish("geo", geo_->cache_hits(), geo_->cache_misses(), geo_->cache_entries(), &published_geo_);
}

Enrichment Enricher::Enrich(const EventContext& event, simdjson::dom::element event_json) const {
  Enrichment out = Enrich(event);
  out.experiment = ExtractExperiment(experiment_paths_, event_json);
  return out;
}

}  // namespace clicklake::enrich
