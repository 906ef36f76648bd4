// Config: clicklake's settings, from one TOML file plus command-line overrides.
//
// Settings are addressed by dotted keys ("collector.port", "log.partitions").
// Each component reads the keys it owns, with its own default; flags override
// file values through Set(). `clicklake init` writes DefaultConfigToml(), a
// commented file listing every setting with its default.
//
// Not thread-safe for mutation; read-only sharing after start-up is fine.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clicklake {

class Config {
 public:
  Config();

  static Result<Config> LoadFile(const std::string& path);
  static Result<Config> Parse(const std::string& toml_text);

  // Overrides (or adds) a setting; `value` is parsed as a TOML value when it
  // looks like one (numbers, true/false), else kept as a string.
  void Set(const std::string& key, const std::string& value);

  bool Has(const std::string& key) const;
  // The typed getters below return `fallback` for a value that is not of
  // their type, and remember it: ReadErrors() then names every such setting
  // read so far (each component reads its settings when it is created, so a
  // service checks this once it has created them). Copies share the record.
  std::string GetString(const std::string& key, const std::string& fallback) const;
  int64_t GetInt(const std::string& key, int64_t fallback) const;
  double GetDouble(const std::string& key, double fallback) const;
  bool GetBool(const std::string& key, bool fallback) const;
  // A duration: an integer of seconds or a string like "500ms", "60s", "5m", "72h", "7d".
  int64_t GetDurationMicros(const std::string& key, int64_t fallback_micros) const;
  std::vector<std::string> GetStringList(const std::string& key) const;
  // Key/value pairs of a table, e.g. "collector.write_keys" → {key: source}.
  std::map<std::string, std::string> GetStringMap(const std::string& key) const;
  // Names of sub-tables or array-of-table entries under `key`, raw TOML text of each.
  std::vector<std::string> GetTableArrayToml(const std::string& key) const;
  // Parses one entry GetTableArrayToml returned: a standard table's text is a
  // TOML document, an inline table's is "{ ... }". Returns it and the prefix of
  // its keys ("" or "entry.").
  static Result<std::pair<Config, std::string>> ParseTableEntry(const std::string& text);

  // InvalidArgument naming each setting a typed getter could not read as its
  // type ("processor.max_batch_events = 'lots' is not an integer"), else OK.
  Status ReadErrors() const;

  // Where the lake lives (lake.dir, default "./lake").
  std::string lake_dir() const { return GetString("lake.dir", "./lake"); }

 private:
  // Flattened view: dotted key → TOML value text, e.g. "collector.port" → "8080".
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> lists_;
  std::map<std::string, std::vector<std::string>> table_arrays_;
  struct ReadErrorLog;
  // Returns `fallback` after recording that `key` is not a `what`.
  template <typename T>
  T Malformed(const std::string& key, const std::string& value, const char* what, T fallback) const;
  std::shared_ptr<ReadErrorLog> read_errors_;
};

// Parses "500ms", "60s", "5m", "72h", "7d" or plain seconds.
bool ParseDurationMicros(const std::string& text, int64_t* micros);

// The commented TOML that `clicklake init` writes.
std::string DefaultConfigToml();

}  // namespace clicklake
