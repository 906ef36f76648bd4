#include "enrich/experiment.h"

#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

std::vector<std::string_view> SplitDots(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t dot = s.find('.', pos);
    out.push_back(s.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return out;
}

std::optional<std::string> PresentValue(simdjson::dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) {
    if (s.empty()) return std::nullopt;
    return SanitizeUtf8(s);
  }
  int64_t i = 0;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
  uint64_t u = 0;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return std::to_string(u);
  return std::nullopt;
}

std::optional<std::string> ValueAt(const JsonPath& path, simdjson::dom::element root) {
  simdjson::dom::element cur = root;
  for (const std::string& key : path.keys()) {
    simdjson::dom::object obj;
    if (cur.get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
    if (obj.at_key(key).get(cur) != simdjson::SUCCESS) return std::nullopt;
  }
  return PresentValue(cur);
}

std::optional<std::string> ValueAt(const JsonPath& path, simdjson::ondemand::document& doc) {
  simdjson::ondemand::value v;
  if (doc.at_pointer(path.pointer()).get(v) != simdjson::SUCCESS) return std::nullopt;
  simdjson::ondemand::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return std::nullopt;
  if (type == simdjson::ondemand::json_type::string) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS || s.empty()) return std::nullopt;
    return SanitizeUtf8(s);
  }
  if (type == simdjson::ondemand::json_type::number) {
    int64_t i = 0;
    if (v.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
    uint64_t u = 0;
    if (v.get_uint64().get(u) == simdjson::SUCCESS) return std::to_string(u);
  }
  return std::nullopt;
}

template <typename Root>
Experiment Extract(const std::vector<ExperimentPath>& paths, Root& root) {
  Experiment out;
  for (const ExperimentPath& p : paths) {
    out.experiment_id = ValueAt(p.id, root);
    if (!out.experiment_id) continue;
    if (p.variant) out.experiment_variant = ValueAt(*p.variant, root);
    return out;
  }
  return out;
}

}  // namespace

JsonPath::JsonPath(std::string_view dotted) : dotted_(dotted) {
  for (std::string_view key : SplitDots(dotted)) {
    keys_.emplace_back(key);
    pointer_.push_back('/');
    for (char c : key) {
      if (c == '~') {
        pointer_ += "~0";
      } else if (c == '/') {
        pointer_ += "~1";
      } else {
        pointer_.push_back(c);
      }
    }
  }
}

Result<JsonPath> ParseJsonPath(std::string_view dotted) {
  std::string_view trimmed = TrimWhitespace(dotted);
  if (trimmed.empty()) return Status::InvalidArgument("empty JSON path");
  for (std::string_view key : SplitDots(trimmed)) {
    if (key.empty()) {
      return Status::InvalidArgument("JSON path '" + std::string(dotted) +
                                     "' has an empty segment: write keys separated by single dots");
    }
  }
  return JsonPath(trimmed);
}

std::vector<ExperimentPath> DefaultExperimentPaths() {
  return {
      {JsonPath("context.experiment.id"), JsonPath("context.experiment.variant")},
      {JsonPath("properties.experiment_id"), JsonPath("properties.experiment_variant")},
  };
}

Result<std::vector<ExperimentPath>> ParseExperimentPaths(const std::vector<std::string>& entries) {
  std::vector<ExperimentPath> out;
  for (const std::string& entry : entries) {
    std::string_view e = entry;
    size_t bar = e.find('|');
    ASSIGN_OR_RETURN(JsonPath id, ParseJsonPath(e.substr(0, bar)));
    std::optional<JsonPath> variant;
    if (bar != std::string_view::npos) {
      ASSIGN_OR_RETURN(JsonPath v, ParseJsonPath(e.substr(bar + 1)));
      variant = std::move(v);
    }
    out.push_back({std::move(id), std::move(variant)});
  }
  return out;
}

std::optional<std::string> FirstStringAt(const std::vector<JsonPath>& paths, simdjson::dom::element root) {
  for (const JsonPath& p : paths) {
    if (auto v = ValueAt(p, root)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> FirstStringAt(const std::vector<JsonPath>& paths, simdjson::ondemand::document& doc) {
  for (const JsonPath& p : paths) {
    if (auto v = ValueAt(p, doc)) return v;
  }
  return std::nullopt;
}

Experiment ExtractExperiment(const std::vector<ExperimentPath>& paths, simdjson::dom::element root) {
  return Extract(paths, root);
}

Experiment ExtractExperiment(const std::vector<ExperimentPath>& paths, simdjson::ondemand::document& doc) {
  return Extract(paths, doc);
}

}  // namespace clicklake::enrich
