// Experiment id and variant from configurable JSON paths of an event.
//
// Trackers put A/B test assignments in different places; clicklake reads them
// from a list of (id path, variant path) pairs, the first pair whose id is
// present winning. The list comes from config `enrich.experiment_paths`, one
// string per pair, "ID_PATH|VARIANT_PATH" (the variant part optional), paths
// dotted from the event root. Default:
//   ["context.experiment.id|context.experiment.variant",
//    "properties.experiment_id|properties.experiment_variant"]
// A value counts as present when it is a non-empty string or an integer
// (rendered in decimal); objects, arrays, floats, booleans and null do not.
//
// Thread safety: JsonPath and ExperimentPath are immutable values; the lookup
// functions are pure (the simdjson document/element is the caller's).
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clicklake::enrich {

// A dotted path from a JSON object root, e.g. "context.experiment.id".
class JsonPath {
 public:
  // REQUIRES: `dotted` has no empty segment (use ParseJsonPath to validate).
  explicit JsonPath(std::string_view dotted);

  const std::vector<std::string>& keys() const { return keys_; }
  // RFC 6901 pointer, e.g. "/context/experiment/id", for simdjson at_pointer.
  const std::string& pointer() const { return pointer_; }
  const std::string& dotted() const { return dotted_; }

 private:
  std::string dotted_;
  std::vector<std::string> keys_;
  std::string pointer_;
};

// InvalidArgument for "", ".a", "a..b", "a.".
Result<JsonPath> ParseJsonPath(std::string_view dotted);

struct ExperimentPath {
  JsonPath id;
  std::optional<JsonPath> variant;
};

// The default pairs above.
std::vector<ExperimentPath> DefaultExperimentPaths();
// Parses config entries "ID_PATH|VARIANT_PATH" (or "ID_PATH").
Result<std::vector<ExperimentPath>> ParseExperimentPaths(const std::vector<std::string>& entries);

// The value at the first of `paths` that holds a present value (see above).
std::optional<std::string> FirstStringAt(const std::vector<JsonPath>& paths, simdjson::dom::element root);
// Same over an On-Demand document (each lookup rewinds it; REQUIRES the
// document to be an object or the paths to miss).
std::optional<std::string> FirstStringAt(const std::vector<JsonPath>& paths, simdjson::ondemand::document& doc);

struct Experiment {
  std::optional<std::string> experiment_id;
  std::optional<std::string> experiment_variant;
  bool operator==(const Experiment&) const = default;
};

// The first pair whose id is present gives both id and variant (the variant
// from the same pair, absent if it is not there).
Experiment ExtractExperiment(const std::vector<ExperimentPath>& paths, simdjson::dom::element root);
Experiment ExtractExperiment(const std::vector<ExperimentPath>& paths, simdjson::ondemand::document& doc);

}  // namespace clicklake::enrich
