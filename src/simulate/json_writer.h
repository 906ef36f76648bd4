// JsonWriter: appends compact JSON to a string, escaping strings per RFC 8259.
//
// Internal to src/simulate. Commas are inserted automatically; Key() must
// precede each value inside an object. Raw() splices already-valid JSON.
// Not thread-safe; one writer per string being built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_string.h"

namespace clicklake::simulate {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  // Shortest round-trip representation; non-finite values become null.
  JsonWriter& Double(double value);
  // Rounded to cents, e.g. 59.97.
  JsonWriter& Money(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Splices a complete JSON value as is.
  JsonWriter& Raw(std::string_view json);

  // Key + value shorthands.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const std::string& value) { return Key(key).String(value); }
  JsonWriter& FieldInt(std::string_view key, int64_t value) { return Key(key).Int(value); }
  JsonWriter& FieldMoney(std::string_view key, double value) { return Key(key).Money(value); }
  JsonWriter& FieldBool(std::string_view key, bool value) { return Key(key).Bool(value); }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void BeforeValue();

  std::string out_;
  // One entry per open container: true until its first element is written.
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace clicklake::simulate
