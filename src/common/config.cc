#include "common/config.h"

#include <toml++/toml.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <sstream>

namespace clicklake {
namespace {

std::string ScalarText(const toml::node& node) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) {
    std::ostringstream os;
    os << f->get();
    return os.str();
  }
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  std::ostringstream os;
  node.visit([&os](const auto& n) { os << n; });
  return os.str();
}

void Flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>* values,
             std::map<std::string, std::vector<std::string>>* lists,
             std::map<std::string, std::vector<std::string>>* table_arrays) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = node.as_table()) {
      Flatten(*sub, key, values, lists, table_arrays);
    } else if (auto arr = node.as_array()) {
      if (arr->is_array_of_tables()) {
        auto& out = (*table_arrays)[key];
        for (const auto& el : *arr) {
          std::ostringstream os;
          os << *el.as_table();
          out.push_back(os.str());
        }
      } else {
        auto& out = (*lists)[key];
        for (const auto& el : *arr) out.push_back(ScalarText(el));
      }
    } else {
      (*values)[key] = ScalarText(node);
    }
  }
}

}  // namespace

Result<Config> Config::Parse(const std::string& text) {
  try {
    toml::table table = toml::parse(text);
    Config c;
    Flatten(table, "", &c.values_, &c.lists_, &c.table_arrays_);
    return c;
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "invalid config: " << e.description() << " at line " << e.source().begin.line;
    return Status::InvalidArgument(os.str());
  }
}

Result<Config> Config::LoadFile(const std::string& path) {
  try {
    toml::table table = toml::parse_file(path);
    Config c;
    Flatten(table, "", &c.values_, &c.lists_, &c.table_arrays_);
    return c;
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config " << path << ": " << e.description() << " at line " << e.source().begin.line;
    return Status::InvalidArgument(os.str());
  }
}

void Config::Set(const std::string& key, const std::string& value) { values_[key] = value; }

bool Config::Has(const std::string& key) const {
  return values_.count(key) > 0 || lists_.count(key) > 0 || table_arrays_.count(key) > 0;
}

std::string Config::GetString(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

struct Config::ReadErrorLog {
  std::mutex mu;
  std::map<std::string, std::string> errors;  // GUARDED_BY(mu): key → what is wrong
};

Config::Config() : read_errors_(std::make_shared<ReadErrorLog>()) {}

template <typename T>
T Config::Malformed(const std::string& key, const std::string& value, const char* what, T fallback) const {
  if (!read_errors_) return fallback;
  std::lock_guard<std::mutex> lock(read_errors_->mu);
  read_errors_->errors[key] = key + " = '" + value + "' is not " + what;
  return fallback;
}

Status Config::ReadErrors() const {
  if (!read_errors_) return Status::OK();
  std::lock_guard<std::mutex> lock(read_errors_->mu);
  if (read_errors_->errors.empty()) return Status::OK();
  std::string message = "invalid settings: ";
  bool first = true;
  for (const auto& [key, error] : read_errors_->errors) {
    message += (first ? "" : "; ") + error;
    first = false;
  }
  return Status::InvalidArgument(message);
}

int64_t Config::GetInt(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (end && *end == '\0' && !it->second.empty() && errno != ERANGE) return v;
  return Malformed(key, it->second, "an integer", fallback);
}

double Config::GetDouble(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (end && *end == '\0' && !it->second.empty()) return v;
  return Malformed(key, it->second, "a number", fallback);
}

bool Config::GetBool(const std::string& key, bool fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  if (it->second == "true" || it->second == "1" || it->second == "yes") return true;
  if (it->second == "false" || it->second == "0" || it->second == "no") return false;
  return Malformed(key, it->second, "true or false", fallback);
}

int64_t Config::GetDurationMicros(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  int64_t v;
  if (ParseDurationMicros(it->second, &v)) return v;
  return Malformed(key, it->second, "a duration (like 500ms, 60s, 5m, 72h, 7d)", fallback);
}

std::vector<std::string> Config::GetStringList(const std::string& key) const {
  auto it = lists_.find(key);
  if (it != lists_.end()) return it->second;
  auto v = values_.find(key);
  if (v != values_.end()) return {v->second};
  return {};
}

std::map<std::string, std::string> Config::GetStringMap(const std::string& key) const {
  std::map<std::string, std::string> out;
  std::string prefix = key + ".";
  for (auto it = values_.lower_bound(prefix); it != values_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    std::string sub = it->first.substr(prefix.size());
    if (sub.find('.') == std::string::npos) out[sub] = it->second;
  }
  return out;
}

std::vector<std::string> Config::GetTableArrayToml(const std::string& key) const {
  auto it = table_arrays_.find(key);
  return it == table_arrays_.end() ? std::vector<std::string>{} : it->second;
}

Result<std::pair<Config, std::string>> Config::ParseTableEntry(const std::string& text) {
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i != std::string::npos && text[i] == '{') {
    ASSIGN_OR_RETURN(Config c, Config::Parse("entry = " + text));
    return std::make_pair(std::move(c), std::string("entry."));
  }
  ASSIGN_OR_RETURN(Config c, Config::Parse(text));
  return std::make_pair(std::move(c), std::string());
}

bool ParseDurationMicros(const std::string& text, int64_t* micros) {
  if (text.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v < 0) return false;
  std::string unit(end);
  double scale;
  if (unit.empty() || unit == "s") scale = 1e6;
  else if (unit == "ms") scale = 1e3;
  else if (unit == "us") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60e6;
  else if (unit == "h") scale = 3600e6;
  else if (unit == "d") scale = 86400e6;
  else return false;
  *micros = static_cast<int64_t>(v * scale);
  return true;
}

std::string DefaultConfigToml() {
  return R"(# clicklake configuration. Every setting can also be given as a flag; commented
# lines show the default.

[lake]
# Where tables, the embedded log and state live.
dir = "./lake"

[collector]
port = 8080
# host = "127.0.0.1"
# threads = 2                    # I/O threads
# max_event_bytes = 32768        # 413 beyond it
# max_request_bytes = 512000     # 413 beyond it (compressed and decompressed)
# queue_max_events = 100000      # events awaiting the log's acknowledgement; 503 + Retry-After beyond
# queue_max_bytes = 268435456
# queue_high_water = 80000       # past it, low-priority events are shed (and counted)
# low_priority_events = ["*debug*", "*diagnostic*", "*heartbeat*", "page_ping"]
# read_timeout = "10s"           # a request must arrive within it
# idle_timeout = "60s"           # idle keep-alive connections are closed
# retry_after = "1s"
# trusted_proxies = []           # peers whose X-Forwarded-For is believed
# tls_cert = ""                  # serve HTTPS when both are set
# tls_key = ""
# snowplow_default_source = "snowplow"

# Write keys map to sources: the Basic-auth user name (or writeKey in the body) picks the source.
[collector.write_keys]
# "my-write-key" = "web"

# Snowplow trackers send no write key: their app id (aid) picks the source.
[collector.snowplow_app_ids]
# "shop-web" = "web"

[processor]
# How often a micro-batch runs.
trigger = "60s"
# Upper bound on events in one micro-batch.
max_batch_events = 500000
# gold = true                    # refresh the Gold tables after each micro-batch
# gold_catch_up_interval = "5m"  # while a backlog drains, refresh Gold at most this often (and when it is drained)
# threads = 0                    # DuckDB threads, and Silver's parse + enrich threads (0 = all cores)
# memory_limit = ""              # e.g. "2GB"

[silver]
# session_timeout = "30m"        # a longer gap between a user's activity starts a new session
# dedup_window = "7d"            # the same event id again within it is a duplicate (first received wins)
# allowed_lateness = "72h"       # later events are kept, flagged is_late, and counted
# future_tolerance = "10m"       # event times further ahead are clamped to received_at and flagged
# quarantine_threshold = 0.10    # a batch quarantining more than this share is refused ...
# quarantine_min_batch = 100     # ... if it has at least this many events (release: process --accept-quarantine)
# max_prop_columns = 200         # flattened prop_<path> columns in silver.events at most

# Canonical event names for other spellings (after snake_casing).
[silver.event_aliases]
# "order_placed" = "order_completed"

# Data contracts: a JSON Schema subset per canonical event name (type, required, properties,
# items, enum, pattern, minimum, maximum, minLength, maxLength). Violations go to silver.quarantine.
# [[contracts]]
# event = "order_completed"
# version = 1
# schema = '''{"type":"object","required":["order_id"],"properties":{"revenue":{"type":"number","minimum":0}}}'''

[gold]
# Identify traits tracked by gold.dim_user (SCD type 2): a new version when their merged value
# changes (traits absent from an identify keep their previous value).
# user_traits = ["plan", "country", "created_at"]

# Funnels for gold.fact_funnel_daily: ordered steps (canonical snake_case event names), each with
# optional filters on top-level properties (compared as text). Without any, the `purchase` funnel
# below is used. A funnel added later covers history after `clicklake backfill --layers gold`.
# [[gold.funnels]]
# name = "purchase"
# steps = [{event = "product_viewed"}, {event = "product_added"}, {event = "checkout_started"},
#          {event = "order_completed"}]
# [[gold.funnels]]
# name = "shoes"
# steps = [{event = "product_viewed", where = {category = "shoes"}}, {event = "order_completed", name = "bought"}]

[quality]
# Checks after each micro-batch (system.quality_results) and readiness per dataset
# (system.readiness, `clicklake status`); built-in checks need no configuration.
# See src/governance/quality/README.md for every check type and field.
# enabled = true
# defaults = true
# max_lag = "30m"                 # the default SLA of every dataset
# [[quality.checks]]
# name = "no_negative_revenue"
# type = "sql"                    # returns the failing rows; views: layer.table, batch_events
# sql = "SELECT event_id FROM batch_events WHERE revenue < 0"
# severity = "error"              # warn | error (error: the dataset is FAILED)
# block = true                    # a failure holds the batch's Gold refresh back from READY
# [[quality.sla]]
# dataset = "gold.*"
# max_lag = "2h"
# deadline = "08:00"              # yesterday complete by 08:00 in timezone
# timezone = "Europe/Berlin"

[lineage]
# OpenLineage run events (START/COMPLETE/FAIL) for batches, Gold models, backfills, maintenance
# and quality checks. See src/governance/lineage/README.md.
# enabled = true
# file = "<lake>/_clicklake/lineage/events.jsonl"   # "none" = HTTP only
# url = "http://127.0.0.1:5000"      # POST {url}/api/v1/lineage (Marquez); retried, spilled to the file
# api_key = ""
# namespace = "clicklake"

[alerts]
# Alerts (failed batch, lag, late/failed datasets, quality, quarantine, collector, disk), recorded
# in system.alerts. See src/governance/alerts/README.md.
# webhook.url = "http://127.0.0.1:9093/hook"          # Alertmanager webhook format (version 4)
# slack.url = "https://hooks.slack.com/services/…"     # Slack incoming webhook
# pagerduty.routing_key = "…"                           # PagerDuty Events API v2
# lag_threshold = 1000000
# quarantine_rate = 0.05
# disk_free_ratio = 0.10
# repeat_interval = "4h"

[enrich]
# ua_regexes = "<deps>/npm/uap-core/regexes.yaml"   # uap-core rules
# geoip_db = "<deps>/npm/geo-country-mmdb/…mmdb"    # any GeoLite2/DB-IP/ip-location-db .mmdb; "none" = off
# experiment_paths = ["context.experiment.id|context.experiment.variant",
#                     "properties.experiment_id|properties.experiment_variant"]

[privacy]
# HMAC-SHA256 key for hashing PII (ip_hash, emails/phones/cards in properties). Keep it outside
# the lake; `clicklake init` creates one (0600). Default: $HOME/.clicklake/pii.key.
# key_file = "/etc/clicklake/pii.key"

[access]
# Governed queries (clicklake sql --as/--token, POST /api/v1/query): see docs/access.md.
# policy_file: principals, roles, masks, row filters (default: policy.toml beside this file,
# else the shipped defaults). Reloaded when it changes.
# policy_file = "/etc/clicklake/policy.toml"
# Every query is appended to the hash-chained system.audit.
audit = true
query_timeout = "60s"
max_rows = 1000000
memory_limit = "2GB"
threads = 2

[log]
# "local" (embedded segment files under <lake>/_clicklake/log) or "kafka".
kind = "local"
partitions = 8
# "fsync": acknowledge an event only after its fsync (group commit); "none": after the write.
durability = "fsync"
# dir = "<lake>/_clicklake/log"
# "key": each event in its user's partition; "append": the events of one request share a
# partition (one group commit each; copies of one event sent in different requests may then be
# read out of order within a micro-batch, so "first received copy wins" is not guaranteed).
# partition_by = "key"
# segment_bytes = 67108864
# retention_hours = 168
# retention_bytes = -1           # per partition; -1 = unlimited
# max_pending_bytes = 67108864   # appends beyond it fail fast (the collector answers 503)
# Kafka (kind = "kafka"): the topic must exist with `partitions` partitions.
# brokers = "127.0.0.1:9092"
# topic = "clicklake-events"
# group_prefix = ""
# linger_ms = 5
)";
}

}  // namespace clicklake
