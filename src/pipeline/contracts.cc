#include "pipeline/contracts.h"

#include <re2/re2.h>

#include <cmath>
#include <sstream>

#include "pipeline/silver_parse.h"

namespace clicklake::pipeline {

using simdjson::dom::element;
using simdjson::dom::element_type;

// One compiled schema (a node of the JSON Schema subset).
class SchemaNode {
 public:
  static Result<std::shared_ptr<SchemaNode>> Compile(element e, const std::string& where) {
    auto node = std::make_shared<SchemaNode>();
    if (!e.is_object()) return Status::InvalidArgument(where + ": a schema must be a JSON object");
    element v;
    if (!e["type"].get(v)) {
      std::string_view s;
      if (!v.get(s)) {
        node->types_.emplace_back(s);
      } else if (v.is_array()) {
        for (element t : v.get_array()) {
          if (t.get(s)) return Status::InvalidArgument(where + ": type entries must be strings");
          node->types_.emplace_back(s);
        }
      } else {
        return Status::InvalidArgument(where + ": type must be a string or a list of strings");
      }
      for (const auto& t : node->types_) {
        if (t != "string" && t != "number" && t != "integer" && t != "boolean" && t != "object" && t != "array" &&
            t != "null")
          return Status::InvalidArgument(where + ": unknown type '" + t + "'");
      }
    }
    if (!e["required"].get(v) && v.is_array()) {
      for (element r : v.get_array()) {
        std::string_view s;
        if (!r.get(s)) node->required_.emplace_back(s);
      }
    }
    if (!e["properties"].get(v) && v.is_object()) {
      for (auto [key, sub] : v.get_object()) {
        ASSIGN_OR_RETURN(auto child, Compile(sub, where + "." + std::string(key)));
        node->properties_.emplace(std::string(key), std::move(child));
      }
    }
    if (!e["items"].get(v)) {
      ASSIGN_OR_RETURN(node->items_, Compile(v, where + "[]"));
    }
    if (!e["enum"].get(v) && v.is_array()) {
      node->has_enum_ = true;
      for (element x : v.get_array()) node->enum_.push_back(simdjson::minify(x));
    }
    if (!e["pattern"].get(v)) {
      std::string_view s;
      if (v.get(s)) return Status::InvalidArgument(where + ": pattern must be a string");
      node->pattern_ = std::make_unique<RE2>(std::string(s), RE2::Quiet);
      if (!node->pattern_->ok())
        return Status::InvalidArgument(where + ": pattern " + std::string(s) + ": " + node->pattern_->error());
    }
    double d;
    if (!e["minimum"].get(v) && !v.get(d)) node->minimum_ = d;
    if (!e["maximum"].get(v) && !v.get(d)) node->maximum_ = d;
    int64_t n;
    if (!e["minLength"].get(v) && !v.get(n)) node->min_length_ = n;
    if (!e["maxLength"].get(v) && !v.get(n)) node->max_length_ = n;
    return node;
  }

  // "" when `e` conforms; else the first violation, naming `path`.
  std::string Check(const element* e, const std::string& path) const {
    if (!types_.empty()) {
      bool match = false;
      for (const auto& t : types_) match = match || HasType(e, t);
      if (!match) return path + ": expected " + TypeList() + ", got " + TypeOf(e);
    }
    if (e == nullptr) return "";
    if (has_enum_) {
      std::string text = simdjson::minify(*e);
      bool found = false;
      for (const auto& x : enum_) found = found || x == text;
      if (!found) return path + ": " + Truncate(text) + " is not one of the allowed values";
    }
    if (e->is_string()) {
      std::string_view s = e->get_string().value();
      size_t chars = 0;
      for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
      if (min_length_ && static_cast<int64_t>(chars) < *min_length_)
        return path + ": shorter than " + std::to_string(*min_length_) + " characters";
      if (max_length_ && static_cast<int64_t>(chars) > *max_length_)
        return path + ": longer than " + std::to_string(*max_length_) + " characters";
      if (pattern_ && !RE2::PartialMatch(s, *pattern_))
        return path + ": \"" + Truncate(std::string(s)) + "\" does not match " + pattern_->pattern();
    }
    if (e->is_number()) {
      double d = e->get_double().value();
      if (minimum_ && d < *minimum_) return path + ": " + simdjson::minify(*e) + " is below the minimum " + Num(*minimum_);
      if (maximum_ && d > *maximum_) return path + ": " + simdjson::minify(*e) + " is above the maximum " + Num(*maximum_);
    }
    if (e->is_object()) {
      for (const auto& r : required_) {
        element v;
        if ((*e)[r].get(v)) return path + "." + r + ": required but missing";
      }
      for (const auto& [key, child] : properties_) {
        element v;
        if ((*e)[key].get(v)) continue;
        std::string err = child->Check(&v, path + "." + key);
        if (!err.empty()) return err;
      }
    } else if (!required_.empty() && e->is_null()) {
      return path + "." + required_[0] + ": required but missing";
    }
    if (items_ && e->is_array()) {
      size_t i = 0;
      for (element x : e->get_array()) {
        std::string err = items_->Check(&x, path + "[" + std::to_string(i++) + "]");
        if (!err.empty()) return err;
      }
    }
    return "";
  }

 private:
  static bool HasType(const element* e, const std::string& t) {
    if (e == nullptr || e->is_null()) return t == "null";
    switch (e->type()) {
      case element_type::STRING: return t == "string";
      case element_type::INT64:
      case element_type::UINT64: return t == "integer" || t == "number";
      case element_type::DOUBLE: {
        double d = e->get_double().value();
        return t == "number" || (t == "integer" && std::floor(d) == d);
      }
      case element_type::BOOL: return t == "boolean";
      case element_type::OBJECT: return t == "object";
      case element_type::ARRAY: return t == "array";
      default: return false;
    }
  }
  static std::string TypeOf(const element* e) {
    if (e == nullptr) return "nothing";
    switch (e->type()) {
      case element_type::STRING: return "string";
      case element_type::INT64:
      case element_type::UINT64: return "integer";
      case element_type::DOUBLE: return "number";
      case element_type::BOOL: return "boolean";
      case element_type::OBJECT: return "object";
      case element_type::ARRAY: return "array";
      default: return "null";
    }
  }
  std::string TypeList() const {
    std::string out;
    for (const auto& t : types_) out += (out.empty() ? "" : "|") + t;
    return out;
  }
  static std::string Truncate(std::string s) {
    if (s.size() > 64) s = s.substr(0, 61) + "...";
    return s;
  }
  static std::string Num(double d) {
    std::ostringstream os;
    os << d;
    return os.str();
  }

  std::vector<std::string> types_;
  std::vector<std::string> required_;
  std::map<std::string, std::shared_ptr<SchemaNode>> properties_;
  std::shared_ptr<SchemaNode> items_;
  bool has_enum_ = false;
  std::vector<std::string> enum_;  // minified JSON of each allowed value
  std::unique_ptr<RE2> pattern_;
  std::optional<double> minimum_, maximum_;
  std::optional<int64_t> min_length_, max_length_;
};

Result<ContractRegistry> ContractRegistry::FromConfig(const Config& config) {
  ContractRegistry registry;
  for (const auto& entry_toml : config.GetTableArrayToml("contracts")) {
    ASSIGN_OR_RETURN(Config entry, Config::Parse(entry_toml));
    std::string event = entry.GetString("event", "");
    if (event.empty()) return Status::InvalidArgument("[[contracts]]: every entry needs event = \"<name>\"");
    RETURN_IF_ERROR(registry.Add(event, entry.GetInt("version", 1), entry.GetString("schema", "{}")));
  }
  return registry;
}

Status ContractRegistry::Add(const std::string& event_name, int64_t version, const std::string& schema_json) {
  simdjson::dom::parser parser;
  element root;
  std::string name = CanonicalEventName(event_name);
  if (auto err = parser.parse(schema_json).get(root)) {
    return Status::InvalidArgument("contract for " + name + ": schema is not JSON: " + simdjson::error_message(err));
  }
  ASSIGN_OR_RETURN(auto node, SchemaNode::Compile(root, "contract " + name + " v" + std::to_string(version)));
  contracts_[name] = Contract{name, version, std::move(node)};
  return Status::OK();
}

const Contract* ContractRegistry::Find(const std::string& event_name) const {
  auto it = contracts_.find(event_name);
  return it == contracts_.end() ? nullptr : &it->second;
}

std::string ContractRegistry::Validate(const Contract& contract, const simdjson::dom::element* value) {
  return contract.schema->Check(value, "properties");
}

}  // namespace clicklake::pipeline
