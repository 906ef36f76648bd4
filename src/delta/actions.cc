// Delta actions: JSON parsing (simdjson) and serialisation, schemas, path encoding.

#include <simdjson.h>

#include <cctype>
#include <cstdio>
#include <random>

#include <unistd.h>

#include "delta/internal.h"

namespace clicklake::delta {
namespace internal {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

bool GetInt(element e, int64_t* out) {
  switch (e.type()) {
    case element_type::INT64: {
      int64_t v;
      if (e.get_int64().get(v)) return false;
      *out = v;
      return true;
    }
    case element_type::UINT64: {
      uint64_t v;
      if (e.get_uint64().get(v)) return false;
      *out = static_cast<int64_t>(v);
      return true;
    }
    case element_type::DOUBLE: {
      double v;
      if (e.get_double().get(v)) return false;
      *out = static_cast<int64_t>(v);
      return true;
    }
    case element_type::STRING: {  // some writers quote numbers
      std::string_view s;
      if (e.get_string().get(s)) return false;
      char* end = nullptr;
      std::string tmp(s);
      long long v = std::strtoll(tmp.c_str(), &end, 10);
      if (end == tmp.c_str()) return false;
      *out = v;
      return true;
    }
    default:
      return false;
  }
}

bool GetString(element e, std::string* out) {
  std::string_view s;
  if (e.type() != element_type::STRING || e.get_string().get(s)) return false;
  out->assign(s);
  return true;
}

bool GetBool(element e, bool* out) {
  bool b;
  if (e.type() != element_type::BOOL || e.get_bool().get(b)) return false;
  *out = b;
  return true;
}

std::map<std::string, std::optional<std::string>> GetOptStringMap(element e) {
  std::map<std::string, std::optional<std::string>> out;
  object o;
  if (e.get_object().get(o)) return out;
  for (auto [k, v] : o) {
    std::string s;
    if (GetString(v, &s)) {
      out[std::string(k)] = s;
    } else if (v.is_null()) {
      out[std::string(k)] = std::nullopt;
    } else {
      out[std::string(k)] = simdjson::minify(v);
    }
  }
  return out;
}

std::map<std::string, std::string> GetStringMap(element e) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : GetOptStringMap(e)) {
    if (v) out[k] = *v;
  }
  return out;
}

std::optional<std::vector<std::string>> GetStringArray(element e) {
  simdjson::dom::array a;
  if (e.get_array().get(a)) return std::nullopt;
  std::vector<std::string> out;
  for (element x : a) {
    std::string s;
    if (GetString(x, &s)) out.push_back(s);
  }
  return out;
}

Status ParseProtocol(object o, Protocol* p) {
  for (auto [k, v] : o) {
    int64_t i = 0;
    if (k == "minReaderVersion" && GetInt(v, &i)) p->min_reader_version = static_cast<int>(i);
    if (k == "minWriterVersion" && GetInt(v, &i)) p->min_writer_version = static_cast<int>(i);
    if (k == "readerFeatures") p->reader_features = GetStringArray(v);
    if (k == "writerFeatures") p->writer_features = GetStringArray(v);
  }
  return Status::OK();
}

Status ParseMetadata(object o, Metadata* m) {
  for (auto [k, v] : o) {
    if (k == "id") {
      GetString(v, &m->id);
    } else if (k == "name") {
      std::string s;
      if (GetString(v, &s)) m->name = s;
    } else if (k == "description") {
      std::string s;
      if (GetString(v, &s)) m->description = s;
    } else if (k == "format") {
      object f;
      if (!v.get_object().get(f)) {
        for (auto [fk, fv] : f) {
          if (fk == "provider") GetString(fv, &m->format_provider);
          if (fk == "options") m->format_options = GetStringMap(fv);
        }
      }
    } else if (k == "schemaString") {
      GetString(v, &m->schema_string);
    } else if (k == "partitionColumns") {
      m->partition_columns = GetStringArray(v).value_or(std::vector<std::string>{});
    } else if (k == "configuration") {
      m->configuration = GetStringMap(v);
    } else if (k == "createdTime") {
      int64_t t;
      if (GetInt(v, &t)) m->created_time = t;
    }
  }
  if (m->schema_string.empty()) return Status::Corruption("metaData without schemaString");
  ASSIGN_OR_RETURN(m->schema, Schema::FromJson(m->schema_string));
  return Status::OK();
}

// A deletionVector object; null (checkpoints) and absent are the same.
Status ParseDeletionVector(element e, std::optional<DeletionVector>* out) {
  if (e.is_null()) return Status::OK();
  object o;
  if (e.get_object().get(o)) return Status::Corruption("deletionVector is not an object");
  DeletionVector dv;
  bool has_type = false, has_path = false, has_size = false, has_cardinality = false;
  for (auto [k, v] : o) {
    int64_t i = 0;
    if (k == "storageType") {
      has_type = GetString(v, &dv.storage_type);
    } else if (k == "pathOrInlineDv") {
      has_path = GetString(v, &dv.path_or_inline_dv);
    } else if (k == "offset" && GetInt(v, &i)) {
      dv.offset = static_cast<int32_t>(i);
    } else if (k == "sizeInBytes" && GetInt(v, &i)) {
      dv.size_in_bytes = static_cast<int32_t>(i);
      has_size = true;
    } else if (k == "cardinality" && GetInt(v, &i)) {
      dv.cardinality = i;
      has_cardinality = true;
    }
  }
  // A struct of nulls is how some checkpoint writers spell "no DV".
  if (!has_type && !has_path && !has_size && !has_cardinality) return Status::OK();
  if (!has_type || !has_path || !has_size || !has_cardinality) {
    return Status::Corruption("deletionVector without storageType, pathOrInlineDv, sizeInBytes or cardinality");
  }
  if (dv.storage_type != "u" && dv.storage_type != "i" && dv.storage_type != "p") {
    return Status::Corruption("deletionVector with unknown storageType '" + dv.storage_type + "'");
  }
  *out = std::move(dv);
  return Status::OK();
}

Status ParseAdd(object o, AddFile* a) {
  bool has_path = false;
  for (auto [k, v] : o) {
    if (k == "path") {
      has_path = GetString(v, &a->path);
    } else if (k == "partitionValues") {
      a->partition_values = GetOptStringMap(v);
    } else if (k == "size") {
      GetInt(v, &a->size);
    } else if (k == "modificationTime") {
      GetInt(v, &a->modification_time);
    } else if (k == "dataChange") {
      GetBool(v, &a->data_change);
    } else if (k == "stats") {
      GetString(v, &a->stats);
    } else if (k == "tags") {
      a->tags = GetStringMap(v);
    } else if (k == "deletionVector") {
      RETURN_IF_ERROR(ParseDeletionVector(v, &a->deletion_vector).WithContext("add " + a->path));
    }
  }
  if (!has_path) return Status::Corruption("add action without path");
  return Status::OK();
}

Status ParseRemove(object o, RemoveFile* r) {
  bool has_path = false;
  for (auto [k, v] : o) {
    if (k == "path") {
      has_path = GetString(v, &r->path);
    } else if (k == "deletionTimestamp") {
      GetInt(v, &r->deletion_timestamp);
    } else if (k == "dataChange") {
      GetBool(v, &r->data_change);
    } else if (k == "extendedFileMetadata") {
      GetBool(v, &r->extended_file_metadata);
    } else if (k == "partitionValues") {
      r->partition_values = GetOptStringMap(v);
    } else if (k == "size") {
      int64_t s;
      if (GetInt(v, &s)) r->size = s;
    } else if (k == "deletionVector") {
      RETURN_IF_ERROR(ParseDeletionVector(v, &r->deletion_vector).WithContext("remove " + r->path));
    }
  }
  if (!has_path) return Status::Corruption("remove action without path");
  return Status::OK();
}

}  // namespace

std::string SerializeDeletionVector(const DeletionVector& dv) {
  std::string out = "{\"storageType\":" + JsonString(dv.storage_type) +
                    ",\"pathOrInlineDv\":" + JsonString(dv.path_or_inline_dv);
  if (dv.offset) out += ",\"offset\":" + std::to_string(*dv.offset);
  out += ",\"sizeInBytes\":" + std::to_string(dv.size_in_bytes) + ",\"cardinality\":" + std::to_string(dv.cardinality) + "}";
  return out;
}

bool ColumnMappingEnabled(const Metadata& metadata) {
  auto it = metadata.configuration.find("delta.columnMapping.mode");
  return it != metadata.configuration.end() && (it->second == "name" || it->second == "id");
}

std::string PhysicalName(const Metadata& metadata, const Field& field) {
  if (!ColumnMappingEnabled(metadata) || field.metadata_json.empty()) return field.name;
  simdjson::dom::parser parser;
  element md;
  std::string_view physical;
  if (parser.parse(field.metadata_json).get(md) || md["delta.columnMapping.physicalName"].get_string().get(physical)) {
    return field.name;
  }
  return std::string(physical);
}

std::string JsonStringMap(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(k, &out);
    out.push_back(':');
    AppendJsonString(v, &out);
  }
  out.push_back('}');
  return out;
}

std::string JsonOptStringMap(const std::map<std::string, std::optional<std::string>>& m) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(k, &out);
    out.push_back(':');
    if (v) {
      AppendJsonString(*v, &out);
    } else {
      out.append("null");
    }
  }
  out.push_back('}');
  return out;
}

std::string JsonStringArray(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); i++) {
    if (i) out.push_back(',');
    AppendJsonString(v[i], &out);
  }
  out.push_back(']');
  return out;
}

Status ParseActions(std::string_view ndjson, CommitActions* out) {
  simdjson::dom::parser parser;
  size_t pos = 0;
  int line_no = 0;
  while (pos < ndjson.size()) {
    size_t nl = ndjson.find('\n', pos);
    if (nl == std::string_view::npos) nl = ndjson.size();
    std::string_view line = ndjson.substr(pos, nl - pos);
    pos = nl + 1;
    line_no++;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    element doc;
    if (auto err = parser.parse(line.data(), line.size()).get(doc)) {
      return Status::Corruption("invalid JSON on line " + std::to_string(line_no) + ": " +
                                simdjson::error_message(err));
    }
    object action;
    if (doc.get_object().get(action)) {
      return Status::Corruption("line " + std::to_string(line_no) + " is not a JSON object");
    }
    for (auto [name, body] : action) {
      if (body.is_null()) continue;  // e.g. to_json of a checkpoint row
      object o;
      if (body.get_object().get(o)) continue;
      if (name == "add") {
        AddFile a;
        RETURN_IF_ERROR(ParseAdd(o, &a));
        out->adds.push_back(std::move(a));
      } else if (name == "remove") {
        delta::RemoveFile r;
        RETURN_IF_ERROR(ParseRemove(o, &r));
        out->removes.push_back(std::move(r));
      } else if (name == "metaData") {
        Metadata m;
        RETURN_IF_ERROR(ParseMetadata(o, &m));
        out->metadata = std::move(m);
      } else if (name == "protocol") {
        Protocol p;
        RETURN_IF_ERROR(ParseProtocol(o, &p));
        out->protocol = std::move(p);
      } else if (name == "txn") {
        TxnAction t;
        for (auto [k, v] : o) {
          if (k == "appId") GetString(v, &t.app_id);
          if (k == "version") GetInt(v, &t.version);
          int64_t lu;
          if (k == "lastUpdated" && GetInt(v, &lu)) t.last_updated = lu;
        }
        out->txns.push_back(std::move(t));
      } else if (name == "commitInfo") {
        out->commit_info = simdjson::minify(body);
        for (auto [k, v] : o) {
          int64_t t;
          if (k == "inCommitTimestamp" && GetInt(v, &t)) out->in_commit_timestamp = t;
          if (k == "timestamp" && GetInt(v, &t)) out->commit_timestamp = t;
          bool b;
          if (k == "isBlindAppend" && GetBool(v, &b)) out->is_blind_append = b;
        }
      }
    }
  }
  return Status::OK();
}

std::string SerializeProtocol(const Protocol& p) {
  std::string out = "{\"protocol\":{\"minReaderVersion\":" + std::to_string(p.min_reader_version) +
                    ",\"minWriterVersion\":" + std::to_string(p.min_writer_version);
  if (p.reader_features) out += ",\"readerFeatures\":" + JsonStringArray(*p.reader_features);
  if (p.writer_features) out += ",\"writerFeatures\":" + JsonStringArray(*p.writer_features);
  out += "}}";
  return out;
}

std::string SerializeMetadata(const Metadata& m) {
  std::string out = "{\"metaData\":{\"id\":" + JsonString(m.id);
  if (m.name) out += ",\"name\":" + JsonString(*m.name);
  if (m.description) out += ",\"description\":" + JsonString(*m.description);
  out += ",\"format\":{\"provider\":" + JsonString(m.format_provider) +
         ",\"options\":" + JsonStringMap(m.format_options) + "}";
  out += ",\"schemaString\":" + JsonString(m.schema_string);
  out += ",\"partitionColumns\":" + JsonStringArray(m.partition_columns);
  out += ",\"configuration\":" + JsonStringMap(m.configuration);
  if (m.created_time) out += ",\"createdTime\":" + std::to_string(*m.created_time);
  out += "}}";
  return out;
}

std::string SerializeAdd(const AddFile& a) {
  std::string out = "{\"add\":{\"path\":" + JsonString(a.path) +
                    ",\"partitionValues\":" + JsonOptStringMap(a.partition_values) +
                    ",\"size\":" + std::to_string(a.size) +
                    ",\"modificationTime\":" + std::to_string(a.modification_time) +
                    ",\"dataChange\":" + (a.data_change ? "true" : "false");
  if (!a.stats.empty()) out += ",\"stats\":" + JsonString(a.stats);
  if (!a.tags.empty()) out += ",\"tags\":" + JsonStringMap(a.tags);
  if (a.deletion_vector) out += ",\"deletionVector\":" + SerializeDeletionVector(*a.deletion_vector);
  out += "}}";
  return out;
}

std::string SerializeRemove(const RemoveFile& r) {
  std::string out = "{\"remove\":{\"path\":" + JsonString(r.path) +
                    ",\"deletionTimestamp\":" + std::to_string(r.deletion_timestamp) +
                    ",\"dataChange\":" + (r.data_change ? "true" : "false") +
                    ",\"extendedFileMetadata\":" + (r.extended_file_metadata ? "true" : "false") +
                    ",\"partitionValues\":" + JsonOptStringMap(r.partition_values);
  if (r.size) out += ",\"size\":" + std::to_string(*r.size);
  if (r.deletion_vector) out += ",\"deletionVector\":" + SerializeDeletionVector(*r.deletion_vector);
  out += "}}";
  return out;
}

std::string SerializeTxn(const TxnAction& t) {
  std::string out = "{\"txn\":{\"appId\":" + JsonString(t.app_id) + ",\"version\":" + std::to_string(t.version);
  if (t.last_updated) out += ",\"lastUpdated\":" + std::to_string(*t.last_updated);
  out += "}}";
  return out;
}

std::string NewUuid() {
  // Reseeded after fork(): a child must not repeat its parent's sequence
  // (two processes would then pick the same file and temp names).
  thread_local std::mt19937_64 rng;
  thread_local pid_t seeded_for = -1;
  if (seeded_for != ::getpid()) {
    std::random_device rd;
    seeded_for = ::getpid();
    rng.seed((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ (static_cast<uint64_t>(seeded_for) << 16));
  }
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string PartitionKey(const std::map<std::string, std::optional<std::string>>& values) {
  return JsonOptStringMap(values);
}

std::optional<int64_t> ParseIntervalMs(std::string_view text) {
  // "interval 7 days", "interval 30 days", "interval 1 hour", "7 days", "168 hours".
  std::string s(text);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t p = 0;
  if (s.rfind("interval", 0) == 0) p = 8;
  int64_t total = 0;
  bool any = false;
  while (p < s.size()) {
    while (p < s.size() && s[p] == ' ') p++;
    if (p >= s.size()) break;
    char* end = nullptr;
    double n = std::strtod(s.c_str() + p, &end);
    if (end == s.c_str() + p) return std::nullopt;
    p = end - s.c_str();
    while (p < s.size() && s[p] == ' ') p++;
    size_t q = p;
    while (q < s.size() && std::isalpha(static_cast<unsigned char>(s[q]))) q++;
    std::string unit = s.substr(p, q - p);
    p = q;
    if (!unit.empty() && unit.back() == 's') unit.pop_back();
    double ms;
    if (unit == "millisecond") ms = 1;
    else if (unit == "second") ms = 1000;
    else if (unit == "minute") ms = 60e3;
    else if (unit == "hour") ms = 3600e3;
    else if (unit == "day") ms = 86400e3;
    else if (unit == "week") ms = 7 * 86400e3;
    else return std::nullopt;
    total += static_cast<int64_t>(n * ms);
    any = true;
  }
  if (!any) return std::nullopt;
  return total;
}

}  // namespace internal

// ---- Schema ----

namespace {

bool IsNestedType(const std::string& type) { return !type.empty() && type[0] == '{'; }

}  // namespace

std::string Schema::ToJson() const {
  std::string out = "{\"type\":\"struct\",\"fields\":[";
  for (size_t i = 0; i < fields.size(); i++) {
    const Field& f = fields[i];
    if (i) out.push_back(',');
    out += "{\"name\":" + JsonString(f.name) + ",\"type\":";
    out += IsNestedType(f.type) ? f.type : JsonString(f.type);
    out += std::string(",\"nullable\":") + (f.nullable ? "true" : "false");
    out += ",\"metadata\":" + (f.metadata_json.empty() ? std::string("{}") : f.metadata_json) + "}";
  }
  out += "]}";
  return out;
}

Result<Schema> Schema::FromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc)) {
    return Status::Corruption(std::string("invalid schema JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::array fields;
  if (doc["fields"].get_array().get(fields)) return Status::Corruption("schema JSON has no fields array");
  Schema schema;
  for (simdjson::dom::element fe : fields) {
    Field f;
    std::string_view name;
    if (fe["name"].get_string().get(name)) return Status::Corruption("schema field without a name");
    f.name = std::string(name);
    simdjson::dom::element type;
    if (fe["type"].get(type)) return Status::Corruption("schema field " + f.name + " without a type");
    std::string_view ts;
    if (type.is_string() && !type.get_string().get(ts)) {
      f.type = std::string(ts);
    } else {
      f.type = simdjson::minify(type);
    }
    bool nullable = true;
    if (!fe["nullable"].get_bool().get(nullable)) f.nullable = nullable;
    simdjson::dom::element md;
    if (!fe["metadata"].get(md)) f.metadata_json = simdjson::minify(md);
    schema.fields.push_back(std::move(f));
  }
  return schema;
}

const Field* Schema::Find(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Snapshot::Config(const std::string& key, const std::string& fallback) const {
  auto it = metadata.configuration.find(key);
  return it == metadata.configuration.end() ? fallback : it->second;
}

int64_t Snapshot::TotalBytes() const {
  int64_t total = 0;
  for (const auto& f : files) total += f.size;
  return total;
}

// ---- types ----

namespace {

Result<std::string> DuckDbTypeOfElement(simdjson::dom::element e);

Result<std::string> DuckDbPrimitive(std::string_view t) {
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {"string", "VARCHAR"},   {"long", "BIGINT"},     {"integer", "INTEGER"}, {"short", "SMALLINT"},
      {"byte", "TINYINT"},     {"float", "FLOAT"},     {"double", "DOUBLE"},   {"boolean", "BOOLEAN"},
      {"binary", "BLOB"},      {"date", "DATE"},       {"timestamp", "TIMESTAMPTZ"},
      {"timestamp_ntz", "TIMESTAMP"}};
  auto it = kTypes.find(t);
  if (it != kTypes.end()) return it->second;
  if (t.rfind("decimal", 0) == 0) {
    int p = 10, s = 0;
    std::string tmp(t);
    if (std::sscanf(tmp.c_str(), "decimal(%d,%d)", &p, &s) == 2 || std::sscanf(tmp.c_str(), "decimal(%d, %d)", &p, &s) == 2) {
      if (p < 1 || p > 38 || s < 0 || s > p) return Status::Unsupported("decimal precision out of range: " + tmp);
      return "DECIMAL(" + std::to_string(p) + "," + std::to_string(s) + ")";
    }
    if (tmp == "decimal") return std::string("DECIMAL(10,0)");
  }
  return Status::Unsupported("unsupported Delta type: " + std::string(t));
}

Result<std::string> DuckDbTypeOfElement(simdjson::dom::element e) {
  std::string_view s;
  if (e.is_string() && !e.get_string().get(s)) return DuckDbPrimitive(s);
  std::string_view kind;
  if (e["type"].get_string().get(kind)) return Status::Corruption("nested type without a type name");
  if (kind == "array") {
    simdjson::dom::element et;
    if (e["elementType"].get(et)) return Status::Corruption("array type without elementType");
    ASSIGN_OR_RETURN(std::string inner, DuckDbTypeOfElement(et));
    return inner + "[]";
  }
  if (kind == "map") {
    simdjson::dom::element kt, vt;
    if (e["keyType"].get(kt) || e["valueType"].get(vt)) return Status::Corruption("map type without key/value types");
    ASSIGN_OR_RETURN(std::string k, DuckDbTypeOfElement(kt));
    ASSIGN_OR_RETURN(std::string v, DuckDbTypeOfElement(vt));
    return "MAP(" + k + ", " + v + ")";
  }
  if (kind == "struct") {
    simdjson::dom::array fields;
    if (e["fields"].get_array().get(fields)) return Status::Corruption("struct type without fields");
    std::string out = "STRUCT(";
    bool first = true;
    for (simdjson::dom::element f : fields) {
      std::string_view name;
      simdjson::dom::element ft;
      if (f["name"].get_string().get(name) || f["type"].get(ft)) return Status::Corruption("bad struct field");
      ASSIGN_OR_RETURN(std::string t, DuckDbTypeOfElement(ft));
      if (!first) out += ", ";
      first = false;
      out += engine::QuoteIdentifier(name) + " " + t;
    }
    return out + ")";
  }
  return Status::Unsupported("unsupported nested Delta type: " + std::string(kind));
}

}  // namespace

Result<std::string> DuckDbType(const std::string& delta_type) {
  if (!IsNestedType(delta_type)) return DuckDbPrimitive(delta_type);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(delta_type.data(), delta_type.size()).get(doc)) {
    return Status::Corruption("invalid nested type JSON: " + delta_type);
  }
  return DuckDbTypeOfElement(doc);
}

// ---- paths ----

std::string HiveEscape(std::string_view value) {
  static const std::string_view kSpecial = "\"#%'*/:=?\\{[]^";
  std::string out;
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f || kSpecial.find(static_cast<char>(c)) != std::string_view::npos) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string UriEncodePath(std::string_view path) {
  static const std::string_view kKeep = "-._~/!$&'()*+,;=:@";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || kKeep.find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string DecodePath(std::string_view uri_path) {
  std::string out;
  for (size_t i = 0; i < uri_path.size(); i++) {
    char c = uri_path[i];
    if (c == '%' && i + 2 < uri_path.size() && std::isxdigit(static_cast<unsigned char>(uri_path[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(uri_path[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(uri_path.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string CommitFileName(int64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld.json", static_cast<long long>(version));
  return buf;
}

}  // namespace clicklake::delta
