// [[activate.syncs]]: parsing and validation of the syncs' settings.
#include <regex>
#include <set>

#include "activate/activate.h"

namespace clicklake::activate {
const char* SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kUpsert: return "upsert";
    case SyncMode::kUpdate: return "update";
    case SyncMode::kMirror: return "mirror";
    case SyncMode::kAudience: return "audience";
  }
  return "?";
}

std::string SnapshotTablePath(const std::string& sync_name) { return "activate/" + sync_name + "_snapshot"; }

Result<std::vector<SyncConfig>> SyncsFromConfig(const Config& config) {
  std::vector<SyncConfig> out;
  std::set<std::string> names;
  static const std::regex kName("[a-z][a-z0-9_]*");
  static const std::regex kIdent("[A-Za-z_][A-Za-z0-9_]*");
  for (const auto& text : config.GetTableArrayToml("activate.syncs")) {
    ASSIGN_OR_RETURN(auto parsed, Config::ParseTableEntry(text));
    const Config& c = parsed.first;
    const std::string& p = parsed.second;
    SyncConfig s;
    s.name = c.GetString(p + "name", "");
    auto bad = [&](const std::string& what) {
      return Status::InvalidArgument("[[activate.syncs]] '" + s.name + "': " + what);
    };
    if (!std::regex_match(s.name, kName)) {
      return Status::InvalidArgument("[[activate.syncs]]: every sync needs a name of [a-z0-9_] starting with a letter"
                                     " (got '" + s.name + "')");
    }
    if (!names.insert(s.name).second) return bad("defined twice");
    s.model = c.GetString(p + "model", "");
    if (s.model.empty()) return bad("model = \"SELECT ...\" is required");
    s.primary_key = c.GetString(p + "primary_key", "");
    if (!std::regex_match(s.primary_key, kIdent)) return bad("primary_key = \"<a column of the model>\" is required");
    s.user_key_column = c.GetString(p + "user_key_column", s.user_key_column);
    for (const auto& [field, column] : c.GetStringMap(p + "mapping")) {
      if (!std::regex_match(column, kIdent)) return bad("mapping." + field + " must name a column of the model");
      s.mapping.emplace_back(field, column);
    }
    const std::string mode = c.GetString(p + "mode", "upsert");
    if (mode == "upsert") s.mode = SyncMode::kUpsert;
    else if (mode == "update") s.mode = SyncMode::kUpdate;
    else if (mode == "mirror") s.mode = SyncMode::kMirror;
    else if (mode == "audience") s.mode = SyncMode::kAudience;
    else return bad("mode '" + mode + "' is not one of upsert, update, mirror, audience");
    s.trigger = c.GetString(p + "trigger", "gold");
    if (s.trigger != "gold" && s.trigger != "manual") {
      if (!ParseDurationMicros(s.trigger, &s.interval_us) || s.interval_us <= 0)
        return bad("trigger '" + s.trigger + "' is not gold, manual or an interval like \"15m\"");
    }
    s.raw_fields = c.GetStringList(p + "raw_fields");

    DestinationConfig& d = s.destination;
    const std::string dp = p + "destination.";
    d.type = c.GetString(dp + "type", "");
    d.base_url = c.GetString(dp + "base_url", "");
    d.path = c.GetString(dp + "path", "/");
    d.token = c.GetString(dp + "token", "");
    d.secret = c.GetString(dp + "secret", "");
    d.batch_size = c.GetInt(dp + "batch_size", 0);
    d.rate_per_s = c.GetDouble(dp + "rate_limit", d.rate_per_s);
    d.burst = c.GetDouble(dp + "burst", d.rate_per_s);
    d.timeout_us = c.GetDurationMicros(dp + "timeout", d.timeout_us);
    d.concurrency = static_cast<int>(c.GetInt(dp + "concurrency", d.concurrency));
    d.max_retries = static_cast<int>(c.GetInt(dp + "max_retries", d.max_retries));
    d.backoff_base_us = c.GetDurationMicros(dp + "backoff_base", d.backoff_base_us);
    d.backoff_max_us = c.GetDurationMicros(dp + "backoff_max", d.backoff_max_us);
    d.object = c.GetString(dp + "object", d.object);
    d.id_property = c.GetString(dp + "id_property", d.id_property);
    d.audience_attribute = c.GetString(dp + "audience_attribute", "");
    d.event_name = c.GetString(dp + "event", "");
    d.customer_id = c.GetString(dp + "customer_id", "");
    d.user_list_id = c.GetString(dp + "user_list_id", "");
    d.developer_token = c.GetString(dp + "developer_token", "");
    d.login_customer_id = c.GetString(dp + "login_customer_id", "");
    d.api_version = c.GetString(dp + "api_version", "");
    d.audience_id = c.GetString(dp + "audience_id", "");
    d.default_country_code = c.GetString(dp + "default_country_code", d.default_country_code);
    if (Status e = c.ReadErrors(); !e.ok()) return bad(e.message());

    if (d.base_url.rfind("http://", 0) != 0 && d.base_url.rfind("https://", 0) != 0)
      return bad("destination.base_url must start with http:// or https://");
    if (d.batch_size < 0 || d.batch_size > d.MaxBatch())
      return bad("destination.batch_size must be at most " + std::to_string(d.MaxBatch()) + " for " + d.type);
    if (d.rate_per_s <= 0 || d.max_retries < 0 || d.timeout_us <= 0 || d.concurrency < 1 || d.concurrency > 64)
      return bad("destination.rate_limit and timeout must be positive, max_retries >= 0, concurrency in 1..64");
    const SyncMode m = s.mode;
    if (d.type == "webhook") {
      if (d.secret.empty()) return bad("destination.secret (whsec_<base64>) is required to sign webhook requests");
    } else if (d.type == "hubspot") {
      if (m == SyncMode::kAudience)
        return bad("HubSpot supports modes upsert, update and mirror (a list of contacts is not an audience sync)");
      if (d.token.empty()) return bad("destination.token (a HubSpot private-app token) is required");
    } else if (d.type == "braze") {
      if (d.token.empty()) return bad("destination.token (a Braze REST API key) is required");
    } else if (d.type == "google_ads" || d.type == "meta") {
      if (m != SyncMode::kAudience) return bad(d.type + " takes audiences: mode = \"audience\"");
      if (d.token.empty()) return bad("destination.token (an OAuth access token) is required");
      if (d.type == "google_ads" && (d.customer_id.empty() || d.user_list_id.empty() || d.developer_token.empty()))
        return bad("google_ads needs destination.customer_id, user_list_id and developer_token");
      if (d.type == "meta" && d.audience_id.empty()) return bad("meta needs destination.audience_id");
      bool identifier = false;
      for (const auto& [field, column] : s.mapping) {
        if (field != "email" && field != "phone")
          return bad(d.type + " mapping takes only email and phone (they are normalized and SHA-256 hashed)");
        identifier = true;
      }
      if (!identifier) return bad(d.type + " needs mapping.email and/or mapping.phone");
    } else {
      return bad("destination.type '" + d.type + "' is not one of webhook, hubspot, braze, google_ads, meta");
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace clicklake::activate
