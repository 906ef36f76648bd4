// An independent Delta log validator for tests (test code only).
//
// It shares no code with the writer: it parses the log itself (simdjson),
// checks every action against the protocol notes (../shared/delta-lake.md),
// the schema JSON, partition values against the Hive-escaped, URI-encoded
// paths, and each add's size and stats against the Parquet file (through
// plain DuckDB SQL). Deletion vectors are decoded on their own here too (Z85,
// the DV file layout, CRoaring's portable reader for the bitmaps) and checked
// against their descriptors and files; the protocol against the table's
// configuration. It returns a list of problems; empty means valid.
#pragma once

#include <roaring/roaring64map.hh>
#include <simdjson.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace clicklake::delta::test {

class LogValidator {
 public:
  LogValidator(std::string table, engine::Connection* conn) : table_(std::move(table)), conn_(conn) {}

  // Validates the whole log; returns the problems found.
  std::vector<std::string> Validate() {
    namespace fs = std::filesystem;
    std::string log = table_ + "/_delta_log";
    std::set<long long> versions;
    for (auto& e : fs::directory_iterator(log)) {
      std::string n = e.path().filename().string();
      if (n.size() == 25 && n.substr(20) == ".json") versions.insert(std::stoll(n.substr(0, 20)));
    }
    if (versions.empty() || *versions.begin() != 0) Problem("log does not start at version 0");
    long long expect = 0;
    for (long long v : versions) {
      if (v != expect) Problem("log gap before version " + std::to_string(v));
      expect = v + 1;
      char name[32];
      std::snprintf(name, sizeof name, "%020lld.json", v);
      std::ifstream in(log + "/" + name);
      std::stringstream ss;
      ss << in.rdbuf();
      ValidateCommit(v, ss.str());
    }
    for (const auto& m : missing_) {
      if (live_.count(m)) Problem("live file does not exist: " + m);
    }
    for (const auto& [path, dv] : missing_dvs_) {
      if (live_.count(path) && live_dv_[path] == dv) Problem("deletion vector file of live " + path + " does not exist");
    }
    return problems_;
  }

  // Deleted rows per live file (by decoded path), from the DVs.
  const std::map<std::string, int64_t>& live_deleted_rows() const { return deleted_rows_; }

  const std::set<std::string>& live() const { return live_; }

 private:
  void Problem(const std::string& p) { problems_.push_back(p); }

  static std::string Hive(const std::string& v) {
    std::string out;
    const std::string special = "\"#%'*/:=?\\{[]^";
    for (unsigned char c : v) {
      if (c < 0x20 || c == 0x7f || special.find(static_cast<char>(c)) != std::string::npos) {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        out += b;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    return out;
  }

  static std::string Unescape(const std::string& p) {
    std::string out;
    for (size_t i = 0; i < p.size(); i++) {
      if (p[i] == '%' && i + 2 < p.size()) {
        out.push_back(static_cast<char>(std::stoi(p.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(p[i]);
      }
    }
    return out;
  }

  // Z85 (RFC 32), decoded here without the writer's code; nullopt if invalid.
  static std::optional<std::string> Z85(const std::string& text) {
    static const std::string kChars =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (text.size() % 5 != 0) return std::nullopt;
    std::string out;
    for (size_t i = 0; i < text.size(); i += 5) {
      uint64_t v = 0;
      for (size_t j = 0; j < 5; j++) {
        size_t d = kChars.find(text[i + j]);
        if (d == std::string::npos) return std::nullopt;
        v = v * 85 + d;
      }
      if (v > 0xffffffffULL) return std::nullopt;
      for (int k = 3; k >= 0; k--) out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
    }
    return out;
  }

  static uint32_t BigEndian(const std::string& s, size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
    return v;
  }

  // The DV id of a descriptor (storageType + pathOrInlineDv + @offset), "" for none.
  static std::string DvId(simdjson::dom::object action) {
    simdjson::dom::object dv;
    if (action["deletionVector"].get_object().get(dv)) return "";
    std::string_view type, where;
    int64_t offset = -1;
    if (dv["storageType"].get_string().get(type) || dv["pathOrInlineDv"].get_string().get(where)) return "?";
    std::string id = std::string(type) + std::string(where);
    if (!dv["offset"].get_int64().get(offset)) id += "@" + std::to_string(offset);
    return id;
  }

  // Checks an add's deletion vector against its file; returns the deleted row count.
  int64_t ValidateDeletionVector(const std::string& rel, simdjson::dom::object dv, const std::string& dv_id,
                                 int64_t num_records) {
    std::string_view type, where;
    int64_t size = -1, cardinality = -1, offset = -1;
    if (dv["storageType"].get_string().get(type)) Problem("deletionVector without storageType: " + rel);
    if (dv["pathOrInlineDv"].get_string().get(where)) Problem("deletionVector without pathOrInlineDv: " + rel);
    if (dv["sizeInBytes"].get_int64().get(size) || size < 0) Problem("deletionVector without sizeInBytes: " + rel);
    if (dv["cardinality"].get_int64().get(cardinality)) Problem("deletionVector without cardinality: " + rel);
    bool has_offset = !dv["offset"].get_int64().get(offset);
    if (!problems_.empty() && (size < 0 || cardinality < 0)) return 0;
    std::string bitmap;
    if (type == "u") {
      if (!has_offset || offset < 1) Problem("u deletionVector without a valid offset: " + rel);
      std::string s(where);
      if (s.size() < 20) {
        Problem("u deletionVector path too short: " + rel);
        return 0;
      }
      auto uuid = Z85(s.substr(s.size() - 20));
      if (!uuid || uuid->size() != 16) {
        Problem("u deletionVector UUID is not Z85: " + rel);
        return 0;
      }
      std::string name = "deletion_vector_";
      for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) name.push_back('-');
        char b[3];
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>((*uuid)[i]));
        name += b;
      }
      std::string prefix = s.substr(0, s.size() - 20);
      std::string file = table_ + "/" + (prefix.empty() ? "" : prefix + "/") + name + ".bin";
      if (!std::filesystem::exists(file)) {
        missing_dvs_[rel] = dv_id;
        return cardinality;
      }
      std::ifstream in(file, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (bytes.empty() || bytes[0] != 1) Problem("DV file version is not 1: " + file);
      if (offset < 1 || static_cast<size_t>(offset) + 8 + size > bytes.size()) {
        Problem("DV of " + rel + " lies outside its file");
        return cardinality;
      }
      if (BigEndian(bytes, offset) != static_cast<uint32_t>(size)) Problem("DV size field differs from sizeInBytes: " + rel);
      bitmap = bytes.substr(offset + 4, size);
      uint32_t crc = static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(bitmap.data()),
                                                   static_cast<uInt>(bitmap.size())));
      if (BigEndian(bytes, offset + 4 + size) != crc) Problem("DV CRC-32 mismatch: " + rel);
    } else if (type == "i") {
      auto b = Z85(std::string(where));
      if (!b || static_cast<int64_t>(b->size()) < size) {
        Problem("inline DV is not Z85 of sizeInBytes bytes: " + rel);
        return cardinality;
      }
      bitmap = b->substr(0, size);
    } else {
      Problem("deletionVector storageType '" + std::string(type) + "' (clicklake writes u or i): " + rel);
      return cardinality;
    }
    // The bitmap: magic 1681511377 (LE), then a portable Roaring64Map.
    if (bitmap.size() < 12) {
      Problem("DV bitmap too short: " + rel);
      return cardinality;
    }
    uint32_t magic = 0;
    for (int i = 3; i >= 0; i--) magic = (magic << 8) | static_cast<unsigned char>(bitmap[i]);
    if (magic != 1681511377u) Problem("DV bitmap magic wrong: " + rel);
    try {
      Roaring64Map rows = Roaring64Map::readSafe(bitmap.data() + 4, bitmap.size() - 4 - 8);
      if (rows.getSizeInBytes(true) != bitmap.size() - 4) Problem("DV bitmap has trailing or missing bytes: " + rel);
      if (static_cast<int64_t>(rows.cardinality()) != cardinality) {
        Problem("DV cardinality " + std::to_string(cardinality) + " but the bitmap holds " +
                std::to_string(rows.cardinality()) + ": " + rel);
      }
      if (!rows.isEmpty() && static_cast<int64_t>(rows.maximum()) >= num_records) {
        Problem("DV deletes row " + std::to_string(rows.maximum()) + " past numRecords of " + rel);
      }
    } catch (const std::exception& e) {
      Problem("DV bitmap does not decode (" + std::string(e.what()) + "): " + rel);
    }
    if (cardinality <= 0) Problem("DV deletes no row: " + rel);
    if (cardinality >= num_records) Problem("DV deletes every row (the file should be removed): " + rel);
    return cardinality;
  }

  // Protocol vs configuration, for the state after each commit.
  void ValidateProtocol(long long v) {
    if (reader_ < 0) return;
    bool v12 = reader_ == 1 && writer_ == 2, v37 = reader_ == 3 && writer_ == 7;
    if (!v12 && !v37) Problem("protocol is neither 1/2 nor 3/7 in v" + std::to_string(v));
    if ((reader_ == 3) != has_reader_features_) Problem("readerFeatures present iff reader version 3");
    if ((writer_ == 7) != has_writer_features_) Problem("writerFeatures present iff writer version 7");
    for (const auto& f : reader_features_) {
      if (!writer_features_.count(f)) Problem("reader feature " + f + " not among the writer features");
    }
    bool dv_feature = reader_features_.count("deletionVectors") && writer_features_.count("deletionVectors");
    auto it = configuration_.find("delta.enableDeletionVectors");
    if (it != configuration_.end() && it->second == "true" && !dv_feature) {
      Problem("delta.enableDeletionVectors=true without the deletionVectors feature in v" + std::to_string(v));
    }
    if (dv_feature && it == configuration_.end()) {
      Problem("deletionVectors feature without delta.enableDeletionVectors in v" + std::to_string(v));
    }
  }

  std::string Scalar(const std::string& sql) {
    auto r = conn_->Query(sql);
    if (!r.ok()) {
      Problem("query failed: " + r.status().ToString() + " / " + sql);
      return "";
    }
    return r->IsNull(0, 0) ? "<null>" : r->GetString(0, 0);
  }

  void ValidateSchema(const std::string& schema_string) {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(schema_string).get(doc)) return Problem("schemaString is not JSON");
    std::string_view type;
    if (doc["type"].get_string().get(type) || type != "struct") Problem("schema type is not struct");
    simdjson::dom::array fields;
    if (doc["fields"].get_array().get(fields)) return Problem("schema has no fields");
    columns_.clear();
    for (auto f : fields) {
      std::string_view name;
      bool nullable;
      simdjson::dom::object md;
      simdjson::dom::element t;
      if (f["name"].get_string().get(name)) Problem("field without name");
      if (f["nullable"].get_bool().get(nullable)) Problem("field without nullable");
      if (f["metadata"].get_object().get(md)) Problem("field without metadata object");
      if (f["type"].get(t)) Problem("field without type");
      std::string_view ts;
      columns_.push_back({std::string(name), t.is_string() && !t.get_string().get(ts) ? std::string(ts) : "nested"});
    }
  }

  void ValidateAdd(long long v, simdjson::dom::object add) {
    std::string_view path;
    int64_t size = 0, mtime = 0;
    bool dc;
    simdjson::dom::object pv;
    std::string_view stats;
    if (add["path"].get_string().get(path)) return Problem("add without path in v" + std::to_string(v));
    if (add["size"].get_int64().get(size)) Problem("add without size");
    if (add["modificationTime"].get_int64().get(mtime)) Problem("add without modificationTime");
    if (add["dataChange"].get_bool().get(dc)) Problem("add without dataChange");
    if (add["partitionValues"].get_object().get(pv)) Problem("add without partitionValues");
    std::string p(path);
    if (p.empty() || p[0] == '/') Problem("add path is not relative: " + p);
    std::string rel = Unescape(p);
    std::string file = table_ + "/" + rel;
    if (live_.count(rel)) Problem("file added twice without remove: " + rel);
    live_.insert(rel);
    live_dv_[rel] = DvId(add);
    deleted_rows_.erase(rel);
    simdjson::dom::object dv;
    const bool has_dv = !add["deletionVector"].get_object().get(dv);
    if (has_dv && !(reader_features_.count("deletionVectors") && writer_features_.count("deletionVectors"))) {
      Problem("add with a deletion vector in a table without the deletionVectors feature: " + rel);
    }
    if (has_dv && (!configuration_.count("delta.enableDeletionVectors") ||
                   configuration_.at("delta.enableDeletionVectors") != "true")) {
      Problem("add with a deletion vector while delta.enableDeletionVectors is not true: " + rel);
    }
    // Files removed later may be vacuumed; live ones are checked at the end.
    if (!std::filesystem::exists(file)) {
      missing_.insert(rel);
      return;
    }
    if (static_cast<int64_t>(std::filesystem::file_size(file)) != size) Problem("size mismatch for " + p);
    // Partition values vs directories.
    std::string expect_dir;
    std::set<std::string> seen;
    for (auto [k, val] : pv) seen.insert(std::string(k));
    for (const auto& c : partition_columns_) {
      if (!seen.count(c)) Problem("partitionValues lacks " + c);
      simdjson::dom::element e;
      std::string value = "__HIVE_DEFAULT_PARTITION__";
      std::string_view s;
      if (!pv[c].get(e) && e.is_string() && !e.get_string().get(s)) value = Hive(std::string(s));
      expect_dir += Hive(c) + "=" + value + "/";
    }
    if (seen.size() != partition_columns_.size()) Problem("partitionValues has extra keys in " + p);
    if (rel.substr(0, expect_dir.size()) != expect_dir || rel.find('/', expect_dir.size()) != std::string::npos) {
      Problem("path " + rel + " does not match partition directory " + expect_dir);
    }
    // The file holds no partition columns; timestamps are UTC-adjusted micros.
    auto schema = conn_->Query("SELECT name, converted_type, logical_type FROM parquet_schema(" +
                               engine::QuoteLiteral(file) + ")");
    if (schema.ok()) {
      for (size_t r = 0; r < schema->row_count(); r++) {
        for (const auto& c : partition_columns_) {
          if (schema->GetString(r, 0) == c) Problem("partition column " + c + " stored in " + rel);
        }
        for (const auto& [name, type] : columns_) {
          if (name == schema->GetString(r, 0) && type == "timestamp" &&
              (schema->GetString(r, 1) != "TIMESTAMP_MICROS" ||
               schema->GetString(r, 2).find("isAdjustedToUTC=1") == std::string::npos)) {
            Problem("timestamp column " + name + " not stored as UTC micros in " + rel);
          }
        }
      }
    }
    // Stats vs data.
    if (add["stats"].get_string().get(stats)) return Problem("add without stats: " + rel);
    simdjson::dom::parser sp;
    simdjson::dom::element st;
    std::string stats_copy(stats);
    if (sp.parse(stats_copy).get(st)) return Problem("stats not JSON: " + rel);
    std::string src = "read_parquet(" + engine::QuoteLiteral(file) + ")";
    int64_t n = -1;
    if (st["numRecords"].get_int64().get(n) || std::to_string(n) != Scalar("SELECT count(*) FROM " + src)) {
      Problem("numRecords wrong in " + rel);
    }
    if (has_dv) {
      bool tight = true;
      if (st["tightBounds"].get_bool().get(tight) || tight) Problem("stats of a file with a DV lack tightBounds:false: " + rel);
      deleted_rows_[rel] = ValidateDeletionVector(rel, dv, DvId(add), n);
    }
    for (const auto& c : partition_columns_) {
      simdjson::dom::element e;
      if (!st["nullCount"][c].get(e) || !st["minValues"][c].get(e)) Problem("stats of partition column " + c);
    }
    for (const auto& [name, type] : columns_) {
      bool is_partition = false;
      for (const auto& c : partition_columns_) is_partition |= c == name;
      if (is_partition || type == "nested") continue;
      std::string col = engine::QuoteIdentifier(name);
      int64_t nc = -1;
      if (st["nullCount"][name].get_int64().get(nc) ||
          std::to_string(nc) != Scalar("SELECT count(*) - count(" + col + ") FROM " + src)) {
        Problem("nullCount of " + name + " wrong in " + rel);
      }
      if (type == "boolean" || type == "binary") continue;
      simdjson::dom::element mn, mx;
      bool has = !st["minValues"][name].get(mn) && !st["maxValues"][name].get(mx);
      std::string actual_min = Scalar("SELECT min(" + col + ")::VARCHAR FROM " + src);
      if (actual_min == "<null>") {
        if (has) Problem("min/max for all-null column " + name);
        continue;
      }
      if (!has) {
        Problem("no min/max for " + name + " in " + rel);
        continue;
      }
      std::string smin, smax;
      std::string_view sv;
      if (mn.is_string() && !mn.get_string().get(sv)) smin = std::string(sv); else smin = simdjson::minify(mn);
      if (mx.is_string() && !mx.get_string().get(sv)) smax = std::string(sv); else smax = simdjson::minify(mx);
      if (type == "string") {
        std::string emin = Scalar("SELECT substring(min(" + col + "), 1, 32) FROM " + src);
        std::string full_max = Scalar("SELECT max(" + col + ") FROM " + src);
        std::string emax = Scalar("SELECT CASE WHEN length(max(" + col + ")) > 32 THEN substring(max(" + col +
                                  "), 1, 32) || chr(65535) ELSE max(" + col + ") END FROM " + src);
        if (smin != emin) Problem("string min of " + name + " wrong: " + smin + " vs " + emin);
        if (smax != emax) Problem("string max of " + name + " wrong: " + smax + " vs " + emax);
      } else if (type == "timestamp") {
        std::string fmt = "'%Y-%m-%dT%H:%M:%S.%gZ'";
        std::string emin = Scalar("SELECT strftime(timezone('UTC', min(" + col + ")), " + fmt + ") FROM " + src);
        std::string emax = Scalar("SELECT strftime(timezone('UTC', max(" + col + ")), " + fmt + ") FROM " + src);
        if (smin != emin) Problem("timestamp min of " + name + " wrong: " + smin + " vs " + emin);
        if (smax != emax) Problem("timestamp max of " + name + " wrong: " + smax + " vs " + emax);
      } else if (type == "date") {
        std::string emax = Scalar("SELECT max(" + col + ")::VARCHAR FROM " + src);
        if (smin != actual_min || smax != emax) Problem("date min/max of " + name + " wrong");
      } else {
        // Numbers: exact (compare numerically through DuckDB).
        std::string ok = Scalar("SELECT min(" + col + ") = " + smin + " AND max(" + col + ") = " + smax + " FROM " + src);
        if (ok != "true") Problem("numeric min/max of " + name + " wrong in " + rel + ": " + smin + "/" + smax);
      }
    }
  }

  void ValidateCommit(long long v, const std::string& text) {
    simdjson::dom::parser parser;
    std::istringstream lines(text);
    std::string line;
    int n = 0, protocols = 0, metadatas = 0;
    std::set<std::string> txn_ids, added, removed;
    std::vector<simdjson::dom::object> adds;
    std::vector<std::string> add_lines;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      n++;
      simdjson::dom::element doc;
      if (parser.parse(line).get(doc)) {
        Problem("v" + std::to_string(v) + ": line is not JSON");
        continue;
      }
      simdjson::dom::object o;
      if (doc.get_object().get(o) || o.size() != 1) {
        Problem("v" + std::to_string(v) + ": line is not a single action");
        continue;
      }
      auto [name, body] = *o.begin();
      if (n == 1 && name != "commitInfo") Problem("v" + std::to_string(v) + ": commitInfo is not first");
      if (name == "commitInfo") {
        int64_t ts;
        std::string_view op, iso;
        bool blind;
        simdjson::dom::object params;
        if (body["timestamp"].get_int64().get(ts)) Problem("commitInfo without timestamp");
        if (body["operation"].get_string().get(op)) Problem("commitInfo without operation");
        if (body["isolationLevel"].get_string().get(iso)) Problem("commitInfo without isolationLevel");
        if (body["isBlindAppend"].get_bool().get(blind)) Problem("commitInfo without isBlindAppend");
        if (body["operationParameters"].get_object().get(params)) {
          Problem("commitInfo without operationParameters");
        } else {
          for (auto [k, val] : params) {
            if (!val.is_string()) Problem("operationParameters value is not a string: " + std::string(k));
          }
        }
      } else if (name == "protocol") {
        protocols++;
        int64_t r = -1, w = -1;
        if (body["minReaderVersion"].get_int64().get(r) || body["minWriterVersion"].get_int64().get(w)) {
          Problem("protocol without versions");
        }
        reader_ = r;
        writer_ = w;
        reader_features_.clear();
        writer_features_.clear();
        simdjson::dom::array features;
        has_reader_features_ = !body["readerFeatures"].get_array().get(features);
        if (has_reader_features_) {
          for (auto f : features) {
            std::string_view name;
            if (!f.get_string().get(name)) reader_features_.insert(std::string(name));
          }
        }
        has_writer_features_ = !body["writerFeatures"].get_array().get(features);
        if (has_writer_features_) {
          for (auto f : features) {
            std::string_view name;
            if (!f.get_string().get(name)) writer_features_.insert(std::string(name));
          }
        }
      } else if (name == "metaData") {
        metadatas++;
        std::string_view id, provider, schema;
        if (body["id"].get_string().get(id) || id.size() != 36) Problem("metaData id is not a uuid");
        if (!table_id_.empty() && table_id_ != id) Problem("metaData id changed");
        table_id_ = std::string(id);
        if (body["format"]["provider"].get_string().get(provider) || provider != "parquet") Problem("format not parquet");
        simdjson::dom::object opts, conf;
        if (body["format"]["options"].get_object().get(opts)) Problem("format.options missing");
        if (body["schemaString"].get_string().get(schema)) Problem("schemaString missing");
        ValidateSchema(std::string(schema));
        simdjson::dom::array pcs;
        partition_columns_.clear();
        if (body["partitionColumns"].get_array().get(pcs)) Problem("partitionColumns missing");
        for (auto pc : pcs) {
          std::string_view s;
          if (pc.get_string().get(s)) Problem("partition column not a string");
          partition_columns_.push_back(std::string(s));
          bool found = false;
          for (const auto& [c, t] : columns_) found |= c == s;
          if (!found) Problem("partition column not in schema: " + std::string(s));
        }
        configuration_.clear();
        if (body["configuration"].get_object().get(conf)) {
          Problem("configuration missing");
        } else {
          for (auto [k, val] : conf) {
            std::string_view sv;
            if (!val.is_string() || val.get_string().get(sv)) {
              Problem("configuration value not a string: " + std::string(k));
            } else {
              configuration_[std::string(k)] = std::string(sv);
            }
          }
        }
        int64_t created;
        if (body["createdTime"].get_int64().get(created)) Problem("createdTime missing");
      } else if (name == "txn") {
        std::string_view app;
        int64_t ver;
        if (body["appId"].get_string().get(app) || body["version"].get_int64().get(ver)) Problem("bad txn");
        if (!txn_ids.insert(std::string(app)).second) Problem("two txn with one appId in v" + std::to_string(v));
      } else if (name == "add") {
        add_lines.push_back(line);
      } else if (name == "remove") {
        std::string_view path;
        int64_t ts, size;
        bool dc, ext;
        simdjson::dom::object pv;
        if (body["path"].get_string().get(path)) {
          Problem("remove without path");
          continue;
        }
        if (body["deletionTimestamp"].get_int64().get(ts)) Problem("remove without deletionTimestamp");
        if (body["dataChange"].get_bool().get(dc)) Problem("remove without dataChange");
        if (body["extendedFileMetadata"].get_bool().get(ext) || !ext) Problem("remove without extendedFileMetadata");
        if (body["partitionValues"].get_object().get(pv)) Problem("remove without partitionValues");
        if (body["size"].get_int64().get(size)) Problem("remove without size");
        std::string rel = Unescape(std::string(path));
        if (!removed.insert(rel).second) Problem("duplicate remove in v" + std::to_string(v));
        if (!live_.erase(rel)) {
          Problem("remove of a file that is not live: " + rel);
        } else {
          // (path, DV) identifies a file: a remove names the DV it ends.
          simdjson::dom::object rm;
          std::string id = body.get_object().get(rm) ? "?" : DvId(rm);
          if (live_dv_[rel] != id) Problem("remove of " + rel + " names DV '" + id + "', the live one is '" + live_dv_[rel] + "'");
        }
        deleted_rows_.erase(rel);
      }
    }
    if (protocols > 1 || metadatas > 1) Problem("more than one protocol/metaData in v" + std::to_string(v));
    if (v == 0 && (protocols != 1 || metadatas != 1)) Problem("version 0 lacks protocol or metaData");
    ValidateProtocol(v);
    for (const auto& l : add_lines) {
      simdjson::dom::parser p;
      simdjson::dom::element doc;
      if (p.parse(l).get(doc)) continue;
      simdjson::dom::object add;
      if (doc["add"].get_object().get(add)) continue;
      std::string_view path;
      if (!add["path"].get_string().get(path) && !added.insert(std::string(path)).second) {
        Problem("duplicate add in v" + std::to_string(v));
      }
      ValidateAdd(v, add);
    }
  }

  std::string table_;
  engine::Connection* conn_;
  std::vector<std::string> problems_;
  std::string table_id_;
  std::vector<std::string> partition_columns_;
  std::vector<std::pair<std::string, std::string>> columns_;
  std::set<std::string> live_;
  std::set<std::string> missing_;
  std::map<std::string, std::string> live_dv_;      // live path -> its DV id ("" none)
  std::map<std::string, std::string> missing_dvs_;  // path -> DV id whose file is absent
  std::map<std::string, int64_t> deleted_rows_;     // live path -> rows its DV deletes
  int64_t reader_ = -1, writer_ = -1;
  bool has_reader_features_ = false, has_writer_features_ = false;
  std::set<std::string> reader_features_, writer_features_;
  std::map<std::string, std::string> configuration_;
};

}  // namespace clicklake::delta::test
