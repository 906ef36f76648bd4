#include "common/config.h"

#include <toml++/toml.h>

#include <cstdlib>
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

int64_t Config::GetInt(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  return (end && *end == '\0' && !it->second.empty()) ? v : fallback;
}

double Config::GetDouble(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  return (end && *end == '\0' && !it->second.empty()) ? v : fallback;
}

bool Config::GetBool(const std::string& key, bool fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  if (it->second == "true" || it->second == "1" || it->second == "yes") return true;
  if (it->second == "false" || it->second == "0" || it->second == "no") return false;
  return fallback;
}

int64_t Config::GetDurationMicros(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  int64_t v;
  return ParseDurationMicros(it->second, &v) ? v : fallback;
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
  return R"(# clicklake configuration. Every setting can also be given as a flag.

[lake]
# Where tables, the embedded log and state live.
dir = "./lake"

[collector]
port = 8080
# Write keys map to sources: the Basic-auth user name (or writeKey in the body) picks the source.
[collector.write_keys]
# "my-write-key" = "web"

[processor]
# How often a micro-batch runs.
trigger = "60s"
# Upper bound on events in one micro-batch.
max_batch_events = 500000

[log]
# "local" (embedded segment files under <lake>/_clicklake/log) or "kafka".
kind = "local"
partitions = 8
# "fsync": acknowledge an event only after its fsync (group commit).
durability = "fsync"

[api]
port = 8081
)";
}

}  // namespace clicklake
