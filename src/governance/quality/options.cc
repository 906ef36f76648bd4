// QualityOptions from the configuration: built-in checks, [[quality.checks]], [[quality.sla]].
#include <algorithm>

#include "governance/quality/quality.h"

namespace clicklake::quality {

const char* ToString(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass: return "pass";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kFail: return "fail";
    case CheckStatus::kError: return "error";
  }
  return "error";
}

const char* ToString(Severity s) { return s == Severity::kError ? "error" : "warn"; }

const char* ToString(ReadinessStatus s) {
  switch (s) {
    case ReadinessStatus::kReady: return "READY";
    case ReadinessStatus::kLate: return "LATE";
    case ReadinessStatus::kFailed: return "FAILED";
    case ReadinessStatus::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

namespace {

std::string FormatDuration(int64_t us) {
  const int64_t s = us / 1000000;
  if (s % 86400 == 0 && s >= 86400) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0 && s >= 3600) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0 && s >= 60) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

const std::vector<std::string> kTypes = {"volume_anomaly",  "null_spike",      "freshness",       "revenue_consistency",
                                         "revenue_daily",   "revenue_present", "unique",          "accepted_values",
                                         "quarantine_rate", "schema_drift",    "sql"};

CheckConfig Make(std::string type, std::string name, std::string dataset = "silver.events") {
  CheckConfig c;
  c.type = std::move(type);
  c.name = std::move(name);
  c.dataset = std::move(dataset);
  return c;
}

bool ValidHhMm(const std::string& s) {
  return s.size() == 5 && s[2] == ':' && isdigit(s[0]) && isdigit(s[1]) && isdigit(s[3]) && isdigit(s[4]) &&
         std::stoi(s.substr(0, 2)) < 24 && std::stoi(s.substr(3, 2)) < 60;
}

}  // namespace

std::string Sla::Describe() const {
  std::string s = "max lag " + FormatDuration(max_lag_us);
  if (!deadline.empty()) s += "; yesterday complete by " + deadline + " " + timezone;
  return s;
}

std::vector<CheckConfig> QualityOptions::DefaultChecks() {
  std::vector<CheckConfig> out;
  out.push_back(Make("volume_anomaly", "volume_anomaly_bronze", "bronze.events"));
  out.push_back(Make("volume_anomaly", "volume_anomaly_silver", "silver.events"));
  CheckConfig nulls = Make("null_spike", "null_spike");
  nulls.columns = {"user_key", "session_id", "page_url", "device_type", "geo_country"};
  out.push_back(nulls);
  for (const char* ds : {"silver.events", "gold.fact_events"}) {
    CheckConfig f = Make("freshness", std::string("freshness_") + (ds[0] == 's' ? "silver" : "gold"), ds);
    f.warn_after_us = 3600LL * 1000000;
    out.push_back(f);
  }
  CheckConfig rev = Make("revenue_consistency", "revenue_consistency", "gold.fact_events");
  rev.severity = Severity::kError;
  out.push_back(rev);
  CheckConfig daily = Make("revenue_daily", "revenue_daily_total", "gold.fact_session_daily");
  daily.severity = Severity::kError;
  daily.interval_us = 15LL * 60 * 1000000;  // it reads whole days: a quarter-hourly reconciliation is plenty
  out.push_back(daily);
  out.push_back(Make("revenue_present", "order_completed_revenue"));
  CheckConfig unique = Make("unique", "unique_event_id");
  unique.column = "event_id";
  unique.severity = Severity::kError;
  out.push_back(unique);
  const std::pair<const char*, std::vector<std::string>> accepted[] = {
      {"event_type", {"track", "page", "screen", "identify", "group", "alias"}},
      {"platform", {"web", "ios", "android", "server", "other"}},
      {"device_type", {"desktop", "mobile", "tablet", "bot", "other"}}};
  for (const auto& [column, values] : accepted) {
    CheckConfig a = Make("accepted_values", std::string("accepted_") + column);
    a.column = column;
    a.values = values;
    out.push_back(a);
  }
  out.push_back(Make("quarantine_rate", "quarantine_rate"));
  out.push_back(Make("schema_drift", "schema_drift"));
  return out;
}

Result<QualityOptions> QualityOptions::FromConfig(const Config& config) {
  QualityOptions o;
  o.enabled = config.GetBool("quality.enabled", true);
  o.defaults = config.GetBool("quality.defaults", true);
  o.max_results_per_batch = config.GetInt("quality.max_results_per_batch", 1000);
  o.readiness_interval_us = config.GetDurationMicros("quality.readiness_interval", o.readiness_interval_us);
  if (o.defaults) o.checks = DefaultChecks();
  int index = 0;
  for (const auto& text : config.GetTableArrayToml("quality.checks")) {
    index++;
    const std::string where = "[[quality.checks]] #" + std::to_string(index);
    ASSIGN_OR_RETURN(auto entry, Config::ParseTableEntry(text));
    const Config& e = entry.first;
    const std::string& p = entry.second;
    CheckConfig c;
    c.type = e.GetString(p + "type", "");
    if (std::find(kTypes.begin(), kTypes.end(), c.type) == kTypes.end()) {
      std::string all;
      for (const auto& t : kTypes) all += (all.empty() ? "" : ", ") + t;
      return Status::InvalidArgument(where + ": type = \"" + c.type + "\" is not one of " + all);
    }
    c.dataset = e.GetString(p + "dataset", "silver.events");
    c.column = e.GetString(p + "column", c.type == "unique" ? "event_id" : "");
    c.name = e.GetString(p + "name", c.type + (c.column.empty() ? "" : "_" + c.column) + "_" + c.dataset);
    const std::string severity = e.GetString(p + "severity", "warn");
    if (severity != "warn" && severity != "error")
      return Status::InvalidArgument(where + " (" + c.name + "): severity must be \"warn\" or \"error\"");
    c.severity = severity == "error" ? Severity::kError : Severity::kWarn;
    c.block = e.GetBool(p + "block", false);
    c.enabled = e.GetBool(p + "enabled", true);
    c.threshold = e.GetDouble(p + "threshold", c.threshold);
    c.training_weeks = static_cast<int>(e.GetInt(p + "training_weeks", c.training_weeks));
    c.min_training_size = static_cast<int>(e.GetInt(p + "min_training_size", c.min_training_size));
    c.min_relative_change = e.GetDouble(p + "min_relative_change", c.min_relative_change);
    c.direction = e.GetString(p + "direction", c.direction);
    c.by_event_name = e.GetBool(p + "by_event_name", c.by_event_name);
    if (c.direction != "up" && c.direction != "down" && c.direction != "both")
      return Status::InvalidArgument(where + " (" + c.name + "): direction must be up, down or both");
    c.columns = e.GetStringList(p + "columns");
    if (c.type == "null_spike" && c.columns.empty()) c.columns = {"user_key", "session_id", "page_url", "device_type",
                                                                  "geo_country"};
    c.min_increase = e.GetDouble(p + "min_increase", c.min_increase);
    c.min_rows = e.GetInt(p + "min_rows", c.min_rows);
    c.warn_after_us = e.GetDurationMicros(p + "warn_after", 0);
    c.error_after_us = e.GetDurationMicros(p + "error_after", 0);
    if (c.type == "freshness" && c.warn_after_us <= 0 && c.error_after_us <= 0)
      return Status::InvalidArgument(where + " (" + c.name + "): freshness needs warn_after and/or error_after");
    c.values = e.GetStringList(p + "values");
    if (c.type == "accepted_values" && (c.column.empty() || c.values.empty()))
      return Status::InvalidArgument(where + " (" + c.name + "): accepted_values needs column and values");
    c.warn_above = e.GetDouble(p + "warn_above", c.warn_above);
    c.error_above = e.GetDouble(p + "error_above", c.error_above);
    c.tolerance = e.GetDouble(p + "tolerance", c.tolerance);
    c.interval_us = e.GetDurationMicros(p + "interval", c.interval_us);
    if (c.interval_us < 0) return Status::InvalidArgument(where + " (" + c.name + "): interval must not be negative");
    c.sql = e.GetString(p + "sql", "");
    if (c.type == "sql" && c.sql.empty())
      return Status::InvalidArgument(where + " (" + c.name + "): a sql check needs sql = \"SELECT … failing rows\"");
    RETURN_IF_ERROR(e.ReadErrors());
    // A configured check replaces a built-in one of the same name.
    o.checks.erase(std::remove_if(o.checks.begin(), o.checks.end(),
                                  [&](const CheckConfig& d) { return d.name == c.name; }),
                   o.checks.end());
    o.checks.push_back(std::move(c));
  }
  index = 0;
  for (const auto& text : config.GetTableArrayToml("quality.sla")) {
    index++;
    const std::string where = "[[quality.sla]] #" + std::to_string(index);
    ASSIGN_OR_RETURN(auto entry, Config::ParseTableEntry(text));
    const Config& e = entry.first;
    const std::string& p = entry.second;
    Sla s;
    s.dataset = e.GetString(p + "dataset", "*");
    s.max_lag_us = e.GetDurationMicros(p + "max_lag", config.GetDurationMicros("quality.max_lag", s.max_lag_us));
    s.deadline = e.GetString(p + "deadline", "");
    s.timezone = e.GetString(p + "timezone", "UTC");
    if (!s.deadline.empty() && !ValidHhMm(s.deadline))
      return Status::InvalidArgument(where + ": deadline = \"" + s.deadline + "\" is not HH:MM (e.g. \"08:00\")");
    if (s.max_lag_us <= 0) return Status::InvalidArgument(where + ": max_lag must be positive");
    RETURN_IF_ERROR(e.ReadErrors());
    o.slas.push_back(std::move(s));
  }
  for (const auto& text : config.GetTableArrayToml("contracts")) {
    auto entry = Config::ParseTableEntry(text);
    if (!entry.ok()) continue;  // the processor reports malformed contracts
    const std::string event = entry->first.GetString(entry->second + "event", "");
    if (!event.empty()) o.contract_versions[event] = entry->first.GetInt(entry->second + "version", 1);
  }
  Sla fallback;
  fallback.max_lag_us = config.GetDurationMicros("quality.max_lag", fallback.max_lag_us);
  o.slas.push_back(fallback);
  return o;
}

const Sla& QualityOptions::SlaFor(const std::string& dataset) const {
  static const Sla kDefault;
  for (const auto& s : slas) {
    if (s.dataset == "*" || s.dataset == dataset) return s;
    if (s.dataset.size() > 1 && s.dataset.back() == '*' &&
        dataset.compare(0, s.dataset.size() - 1, s.dataset, 0, s.dataset.size() - 1) == 0)
      return s;
  }
  return kDefault;
}

}  // namespace clicklake::quality
