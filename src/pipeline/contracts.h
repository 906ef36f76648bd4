// Data contracts: per-event-name schemas for the free-form part of an event
// (track/page/screen properties, identify/group traits), from config:
//
//   [[contracts]]
//   event = "order_completed"       # canonical name (any spelling is canonicalised)
//   version = 3
//   schema = '''{"type":"object","required":["order_id"],
//                "properties":{"revenue":{"type":"number","minimum":0}}}'''
//
// The schema language is a JSON Schema subset: type (string, number, integer,
// boolean, object, array, null, or a list of them), required, properties,
// items, enum, pattern (RE2, unanchored as in JSON Schema), minimum, maximum,
// minLength, maxLength. Unknown keywords are ignored. A violation sends the
// event to silver.quarantine with error_code `schema_violation` and the
// contract's version.
//
// Ownership: a ContractRegistry owns its compiled schemas.
// Thread safety: a built registry is immutable; Validate may run concurrently.
#pragma once

#include <simdjson.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace clicklake::pipeline {

class SchemaNode;

struct Contract {
  std::string event_name;  // canonical
  int64_t version = 1;
  std::shared_ptr<const SchemaNode> schema;
};

class ContractRegistry {
 public:
  ContractRegistry() = default;

  // The [[contracts]] entries of `config`. InvalidArgument for an entry without
  // `event`, with schema text that is not JSON, or with a bad pattern.
  static Result<ContractRegistry> FromConfig(const Config& config);
  // Adds (or replaces) the contract for `event_name`.
  Status Add(const std::string& event_name, int64_t version, const std::string& schema_json);

  // The contract for a canonical event name, or null.
  const Contract* Find(const std::string& event_name) const;

  // Checks `value` (the event's properties, or null when it has none) against
  // `contract`. Returns "" when it conforms, else the first violation
  // ("properties.revenue: -1 is below the minimum 0").
  static std::string Validate(const Contract& contract, const simdjson::dom::element* value);

  size_t size() const { return contracts_.size(); }

 private:
  std::map<std::string, Contract> contracts_;
};

}  // namespace clicklake::pipeline
