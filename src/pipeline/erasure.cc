#include "pipeline/erasure.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "common/json_string.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "pipeline/dedup.h"
#include "pipeline/gold/gold.h"
#include "pipeline/silver.h"

namespace clicklake::pipeline {
namespace {

using privacy::ErasureReceipt;
using privacy::PrivacyRequest;
using privacy::TableErasure;

std::mutex& StepsMutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::pair<std::string, ErasureStep>>& Steps() {
  static std::vector<std::pair<std::string, ErasureStep>> steps;
  return steps;
}
std::vector<ReceiptListener>& ReceiptListeners() {  // GUARDED_BY(StepsMutex())
  static std::vector<ReceiptListener> listeners;
  return listeners;
}

void NotifyReceiptListeners(const ErasureReceipt& receipt, const std::string& json) {
  std::vector<ReceiptListener> listeners;
  {
    std::lock_guard l(StepsMutex());
    listeners = ReceiptListeners();
  }
  for (const auto& listener : listeners) listener(receipt, json);
}

// The layers whose tables can hold a person's rows (system.* holds none:
// batches count events, erasures keep only HMACs).
constexpr int64_t kDayMicros = 86'400'000'000LL;

constexpr const char* kPersonalLayers[] = {"bronze", "silver", "restricted", "activate", "gold"};

std::string InList(const std::vector<std::string>& values) {
  std::string out = "(";
  for (size_t i = 0; i < values.size(); i++) {
    if (i) out += ",";
    out += engine::QuoteLiteral(values[i]);
  }
  return out + ")";
}

void AddAll(std::vector<std::string>* to, const std::set<std::string>& from) { to->assign(from.begin(), from.end()); }

// Up to this many event ids, a payload is tested for each as a substring
// before its JSON is parsed.
constexpr size_t kMaxEventIdSubstringTests = 16;

// The SQL condition (never NULL) that a row of a table with this schema
// belongs to the person: every identifying column the table has.
std::string PersonPredicate(const delta::Schema& schema, const ResolvedSubject& s) {
  std::vector<std::string> parts;
  auto has = [&](const char* c) { return schema.Find(c) != nullptr; };
  auto add = [&](const std::string& expr, const std::vector<std::string>& values) {
    if (!values.empty()) parts.push_back(expr + " IN " + InList(values));
  };
  if (has("user_id")) add("user_id", s.user_ids);
  if (has("anonymous_id")) add("anonymous_id", s.anonymous_ids);
  if (has("user_key")) add("user_key", s.user_keys);
  if (has("event_id")) add("event_id", s.event_ids);
  if (has("session_id")) add("session_id", s.session_ids);
  if (has("payload")) {
    // bronze.events / silver.quarantine: the raw event (Segment, native, Snowplow).
    // A substring test first: parsing every payload's JSON for a dozen paths
    // costs far more than finding that none of the identifiers occurs in it.
    // But each substring test reads the whole payload: past a few event ids
    // (a person with hundreds of events), testing the event-id paths of every
    // payload costs less than that many tests.
    // An identifier JSON may spell differently (escaped quotes, backslashes,
    // non-ASCII as \\u escapes) cannot be found by substring: no pre-test then.
    bool plain = true;
    for (const auto* values : {&s.user_ids, &s.anonymous_ids, &s.event_ids, &s.emails}) {
      for (const auto& v : *values) {
        for (unsigned char c : v) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
      }
    }
    const bool events_apart = plain && s.event_ids.size() > kMaxEventIdSubstringTests;
    std::vector<std::string> json_parts, event_parts;
    auto add_json = [&](std::vector<std::string>* to, const std::string& path, const std::vector<std::string>& values,
                        bool lower) {
      if (values.empty()) return;
      const std::string e = "json_extract_string(payload, '" + path + "')";
      to->push_back((lower ? "lower(" + e + ")" : e) + " IN " + InList(values));
    };
    for (const char* p : {"$.userId", "$.user_id", "$.uid"}) add_json(&json_parts, p, s.user_ids, false);
    for (const char* p : {"$.anonymousId", "$.anonymous_id", "$.duid"})
      add_json(&json_parts, p, s.anonymous_ids, false);
    for (const char* p : {"$.traits.email", "$.context.traits.email", "$.properties.email"}) {
      add_json(&json_parts, p, s.emails, true);
    }
    for (const char* p : {"$.messageId", "$.event_id", "$.eid"}) {
      add_json(events_apart ? &event_parts : &json_parts, p, s.event_ids, false);
    }
    std::vector<std::string> contains;
    for (const auto* values : {&s.user_ids, &s.anonymous_ids, &s.event_ids}) {
      if (values == &s.event_ids && events_apart) continue;
      for (const auto& v : *values) contains.push_back("contains(payload, " + engine::QuoteLiteral(v) + ")");
    }
    for (const auto& e : s.emails) contains.push_back("payload ILIKE " + engine::QuoteLiteral("%" + e + "%"));
    if (!plain) contains = {"true"};
    if (!json_parts.empty()) {
      std::string pre, json;
      for (size_t i = 0; i < contains.size(); i++) pre += (i ? " OR " : "") + contains[i];
      for (size_t i = 0; i < json_parts.size(); i++) json += (i ? " OR " : "") + json_parts[i];
      parts.push_back("((" + pre + ") AND (" + json + "))");
    }
    for (const auto& e : event_parts) parts.push_back(e);
  }
  if (has("value") && has("field")) add("lower(value)", s.emails);  // restricted.pii
  if (parts.empty()) return "false";
  std::string out = "coalesce((";
  for (size_t i = 0; i < parts.size(); i++) out += (i ? " OR " : "") + parts[i];
  return out + "), false)";
}

// ---- the journal: resolved identifiers and progress, beside the request ----

struct Journal {
  ResolvedSubject subject;
  std::set<std::string> done;  // finished steps
  std::map<std::string, TableErasure> tables;
  int64_t state_entries_removed = 0;
  std::optional<int64_t> purge_due_us;
  std::vector<std::string> notes;
  // --mode anonymize: the person's pseudonym and the secret their event and
  // session ids are re-derived with (random; kept here only until the request
  // completes, so a rerun after a crash stays coherent), and the raw values
  // the vault held for them (scrubbed from free text).
  std::string pseudonym, salt;
  std::vector<std::string> pii_values;
  // Per non-Gold table, from resolution's last scan (the complete subject):
  // the version it read and the live files holding the person's rows then
  // (add paths as in the log). The delete reads only those while the table is
  // still at that version; the purge knows every other file live then
  // without a deletion vector holds none of the person's rows. `rows`: the
  // positions of their rows in each of those files (the delete marks them
  // without reading anything while the version holds; absent in journals
  // written before they were kept).
  struct TableHits {
    int64_t version = -1;
    std::vector<std::string> files;
    std::optional<std::map<std::string, std::vector<int64_t>>> rows;
  };
  std::map<std::string, TableHits> hits;

  std::string ToJson() const {
    std::string out = "{\"subject\":{";
    auto arr = [&](const char* name, const std::vector<std::string>& v, bool last = false) {
      AppendJsonString(name, &out);
      out += ":[";
      for (size_t i = 0; i < v.size(); i++) {
        if (i) out += ",";
        AppendJsonString(v[i], &out);
      }
      out += last ? "]" : "],";
    };
    arr("user_ids", subject.user_ids);
    arr("anonymous_ids", subject.anonymous_ids);
    arr("emails", subject.emails);
    arr("user_keys", subject.user_keys);
    arr("event_ids", subject.event_ids);
    arr("session_ids", subject.session_ids, true);
    out += "},";
    arr("done", std::vector<std::string>(done.begin(), done.end()));
    arr("notes", notes);
    arr("pii_values", pii_values);
    out += "\"pseudonym\":" + JsonString(pseudonym) + ",\"salt\":" + JsonString(salt) + ",";
    out += "\"state_entries_removed\":" + std::to_string(state_entries_removed);
    if (purge_due_us) out += ",\"purge_due_us\":" + std::to_string(*purge_due_us);
    out += ",\"tables\":{";
    bool first = true;
    for (const auto& [name, t] : tables) {
      if (!first) out += ",";
      first = false;
      AppendJsonString(name, &out);
      out += ":{\"rows_removed\":" + std::to_string(t.rows_removed) +
             ",\"rows_anonymized\":" + std::to_string(t.rows_anonymized) + ",\"files_rewritten\":" +
             std::to_string(t.files_rewritten) + ",\"files_purged\":" + std::to_string(t.files_purged) +
             ",\"files_read\":" + std::to_string(t.files_read) + ",\"versions\":[";
      for (size_t i = 0; i < t.versions_written.size(); i++) out += (i ? "," : "") + std::to_string(t.versions_written[i]);
      out += "]}";
    }
    out += "},\"hits\":{";
    first = true;
    for (const auto& [name, h] : hits) {
      if (!first) out += ",";
      first = false;
      AppendJsonString(name, &out);
      out += ":{\"version\":" + std::to_string(h.version) + ",";
      arr("files", h.files);
      out += "\"rows\":";
      if (!h.rows) {
        out += "null";
      } else {
        out += "{";
        bool first_file = true;
        for (const auto& [file, positions] : *h.rows) {
          if (!first_file) out += ",";
          first_file = false;
          AppendJsonString(file, &out);
          out += ":[";
          for (size_t i = 0; i < positions.size(); i++) out += (i ? "," : "") + std::to_string(positions[i]);
          out += "]";
        }
        out += "}";
      }
      out += "}";
    }
    return out + "}}";
  }

  static Result<Journal> FromJson(const std::string& text) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parser.parse(text).get(obj)) return Status::Corruption("erasure journal is not a JSON object");
    Journal j;
    auto strings = [](simdjson::dom::element e, std::vector<std::string>* out) {
      simdjson::dom::array a;
      if (e.get(a)) return;
      for (auto v : a) {
        std::string_view s;
        if (!v.get(s)) out->emplace_back(s);
      }
    };
    simdjson::dom::object s;
    if (obj["subject"].get(s)) return Status::Corruption("erasure journal has no subject");
    strings(s["user_ids"].value_unsafe(), &j.subject.user_ids);
    strings(s["anonymous_ids"].value_unsafe(), &j.subject.anonymous_ids);
    strings(s["emails"].value_unsafe(), &j.subject.emails);
    strings(s["user_keys"].value_unsafe(), &j.subject.user_keys);
    strings(s["event_ids"].value_unsafe(), &j.subject.event_ids);
    strings(s["session_ids"].value_unsafe(), &j.subject.session_ids);
    std::vector<std::string> done;
    strings(obj["done"].value_unsafe(), &done);
    j.done.insert(done.begin(), done.end());
    strings(obj["notes"].value_unsafe(), &j.notes);
    strings(obj["pii_values"].value_unsafe(), &j.pii_values);
    std::string_view text_value;
    if (!obj["pseudonym"].get(text_value)) j.pseudonym = text_value;
    if (!obj["salt"].get(text_value)) j.salt = text_value;
    int64_t n;
    if (!obj["state_entries_removed"].get(n)) j.state_entries_removed = n;
    if (!obj["purge_due_us"].get(n)) j.purge_due_us = n;
    simdjson::dom::object tables;
    if (!obj["tables"].get(tables)) {
      for (auto [name, t] : tables) {
        TableErasure te;
        if (!t["rows_removed"].get(n)) te.rows_removed = n;
        if (!t["rows_anonymized"].get(n)) te.rows_anonymized = n;
        if (!t["files_rewritten"].get(n)) te.files_rewritten = n;
        if (!t["files_purged"].get(n)) te.files_purged = n;
        if (!t["files_read"].get(n)) te.files_read = n;
        simdjson::dom::array versions;
        if (!t["versions"].get(versions)) {
          for (auto v : versions) {
            if (!v.get(n)) te.versions_written.push_back(n);
          }
        }
        j.tables[std::string(name)] = std::move(te);
      }
    }
    simdjson::dom::object hits;
    if (!obj["hits"].get(hits)) {
      for (auto [name, h] : hits) {
        TableHits th;
        if (!h["version"].get(n)) th.version = n;
        strings(h["files"].value_unsafe(), &th.files);
        simdjson::dom::object rows;
        if (!h["rows"].get(rows)) {
          th.rows.emplace();
          for (auto [file, positions] : rows) {
            auto& to = (*th.rows)[std::string(file)];
            simdjson::dom::array a;
            if (positions.get(a)) continue;
            for (auto p : a) {
              if (!p.get(n)) to.push_back(n);
            }
          }
        }
        j.hits[std::string(name)] = std::move(th);
      }
    }
    return j;
  }
};

// system.erasures: one row per request (txn per request id: written once).
Status AppendErasureRow(const ErasureContext& ctx, engine::Connection* conn, const ErasureReceipt& receipt,
                        const std::string& receipt_json) {
  const PrivacyRequest& request = receipt.request;
  delta::Schema schema;
  schema.fields = {{"request_id", "string", false},    {"regulation_type", "string", false},
                   {"mode", "string", false},          {"subject_hmac", "string", false},
                   {"manner", "string", true},         {"reason", "string", true},
                   {"received_at", "timestamp", false}, {"completed_at", "timestamp", false},
                   {"status", "string", false},        {"identifiers_resolved", "long", true},
                   {"rows_removed", "long", true},     {"tables", "string", true},
                   {"files_purged", "long", true},     {"state_entries_removed", "long", true},
                   {"receipt_sha256", "string", true}};
  std::map<std::string, std::string> props = {
      {"delta.enableDeletionVectors", ctx.config.GetBool("lake.deletion_vectors", true) ? "true" : "false"}};
  ASSIGN_OR_RETURN(auto table, delta::Table::OpenOrCreate(JoinPath(ctx.lake_dir, kErasuresTable), schema, {}, props,
                                                          ctx.db, ctx.fs, ctx.clock));
  auto txn = table->StartTransaction();
  const std::string app = "clicklake-privacy:" + request.id;
  if (txn->read_snapshot().app_txn_versions.count(app)) return Status::OK();
  int64_t rows = 0;
  std::string tables_json = "{";
  for (const auto& [name, t] : receipt.tables) {
    rows += t.rows_removed;
    tables_json += (tables_json.size() > 1 ? "," : "") + JsonString(name) + ":{\"rows_removed\":" +
                   std::to_string(t.rows_removed) + ",\"rows_anonymized\":" + std::to_string(t.rows_anonymized) +
                   ",\"versions_written\":" +
                   std::to_string(t.versions_written.size()) + ",\"files_purged\":" + std::to_string(t.files_purged) + "}";
  }
  tables_json += "}";
  auto q = engine::QuoteLiteral;
  const std::string mode = request.manner == "retention"                          ? "retention"
                           : request.mode == privacy::ErasureMode::kAnonymize ? "anonymize"
                                                                               : "delete";
  const std::string sql =
      "SELECT " + q(request.id) + " AS request_id, " + q(std::string(privacy::RegulationTypeName(request.type))) +
      " AS regulation_type, " + q(mode) + " AS mode, " + q(receipt.subject_hmac) + " AS subject_hmac, " +
      q(request.manner) + " AS manner, " + q(request.reason) + " AS reason, make_timestamp(" +
      std::to_string(request.received_at_us) + "::BIGINT) AS received_at, make_timestamp(" +
      std::to_string(receipt.completed_at_us) + "::BIGINT) AS completed_at, " + q(receipt.status) + " AS status, " +
      std::to_string(receipt.identifiers_resolved) + "::BIGINT AS identifiers_resolved, " + std::to_string(rows) +
      "::BIGINT AS rows_removed, " + q(tables_json) + " AS tables, " + std::to_string(receipt.files_purged) +
      "::BIGINT AS files_purged, " + std::to_string(receipt.state_entries_removed) +
      "::BIGINT AS state_entries_removed, " + q(privacy::Sha256Hex(receipt_json)) + " AS receipt_sha256";
  ASSIGN_OR_RETURN(auto written, txn->WriteFiles(conn, sql));
  (void)written;
  txn->SetBlindAppend(true);
  txn->SetAppTransaction(app, 0);
  txn->SetOperation("WRITE", {{"mode", "\"Append\""}});
  return txn->Commit().status();
}

// Brings Gold to silver.events' latest version (the sessions, users, funnels
// and dimensions the removed rows touched are recomputed, as in any batch) and
// counts what it deleted per Gold table.
Status RefreshGoldAfterErasure(const ErasureContext& ctx, std::map<std::string, TableErasure>* tables) {
  if (!ctx.gold || !ctx.fs->Exists(JoinPath(ctx.lake_dir, "silver/events/_delta_log"))) return Status::OK();
  ASSIGN_OR_RETURN(auto stage, gold::GoldStage::Open(ctx.config, ctx.lake_dir, ctx.db, ctx.fs, ctx.clock));
  ASSIGN_OR_RETURN(gold::GoldRefreshResult r, stage->Refresh("", 0));
  for (const auto& [name, t] : r.tables) {
    if (t.version < 0 || t.rows_deleted == 0) continue;
    std::string display = name;
    std::replace(display.begin(), display.end(), '/', '.');
    TableErasure& te = (*tables)[display];
    te.rows_removed += t.rows_deleted - std::min(t.rows_deleted, t.rows_written);
    te.versions_written.push_back(t.version);
  }
  return Status::OK();
}

class Eraser {
 public:
  Eraser(const ErasureContext& ctx, PrivacyRequest request) : ctx_(ctx), request_(std::move(request)) {}

  // Runs (or continues) the request; returns the receipt when it finished,
  // nullopt when its purge waits for the SLA.
  Result<std::optional<ErasureReceipt>> Run();

 private:
  struct LakeTable {
    std::string name;  // "silver.events"
    std::unique_ptr<delta::Table> table;
    bool gold = false;
  };

  Status Step(const std::string& name, const std::function<Status()>& body) {
    if (journal_.done.count(name)) return Status::OK();
    if (ctx_.before_step) ctx_.before_step(name);
    const int64_t t0 = ctx_.clock->MonotonicMicros();
    RETURN_IF_ERROR(body());
    spdlog::info("privacy: {} {}: {:.0f} ms", request_.id, name, (ctx_.clock->MonotonicMicros() - t0) / 1000.0);
    journal_.done.insert(name);
    return queue_.WriteJournal(request_.id, journal_.ToJson());
  }
  Result<std::vector<LakeTable>> OpenTables();
  Status Resolve();
  // One commit deleting the person's rows of `t`; with `anonymize`, adding
  // in the same commit their copies whose identifiers are the pseudonym, ids
  // re-derived with the secret salt, and IP/email/phone/free-text PII nulled
  // or redacted. Returns the rows changed.
  Result<int64_t> ChangeRows(LakeTable* t, bool anonymize);
  Status PrepareAnonymize();
  std::string AnonymizedColumn(const delta::Field& field) const;
  std::string Scrub(const std::string& expr) const;
  bool anonymize() const { return request_.mode == privacy::ErasureMode::kAnonymize; }
  // Rewrites the live files that physically hold the person's rows; returns
  // every data file (live or not) that does, to delete afterwards.
  Result<std::vector<std::string>> RewriteFiles(LakeTable* t);
  Status RefreshGold();
  Status Purge(std::vector<LakeTable>* tables);
  Result<ErasureReceipt> Finish();

  const ErasureContext& ctx_;
  PrivacyRequest request_;
  privacy::RequestQueue queue_{ctx_.lake_dir, ctx_.fs};
  Journal journal_;
  std::unique_ptr<engine::Connection> conn_;
};

Result<std::vector<Eraser::LakeTable>> Eraser::OpenTables() {
  std::vector<LakeTable> out;
  for (const char* layer : kPersonalLayers) {
    const std::string dir = JoinPath(ctx_.lake_dir, layer);
    if (!ctx_.fs->Exists(dir)) continue;
    ASSIGN_OR_RETURN(auto entries, ctx_.fs->ListDir(dir));
    std::vector<std::string> names;
    for (const auto& e : entries) {
      if (e.is_dir && !e.name.empty() && e.name[0] != '_' && e.name[0] != '.') names.push_back(e.name);
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      auto t = delta::Table::Open(JoinPath(dir, name), ctx_.db, ctx_.fs, ctx_.clock);
      if (!t.ok()) {
        if (t.status().IsNotFound()) continue;
        return t.status();
      }
      out.push_back({std::string(layer) + "." + name, std::move(t).value(), std::string(layer) == "gold"});
    }
  }
  return out;
}

Status Eraser::Resolve() {
  std::set<std::string> users(request_.subject.user_ids.begin(), request_.subject.user_ids.end());
  std::set<std::string> anons(request_.subject.anonymous_ids.begin(), request_.subject.anonymous_ids.end());
  std::set<std::string> emails;
  for (const auto& e : request_.subject.emails) emails.insert(privacy::Subject{{}, {}, {e}}.All()[0]);
  std::set<std::string> events, sessions;
  ASSIGN_OR_RETURN(auto tables, OpenTables());
  // One query per table yields, from the rows that are theirs, every kind of
  // identifier the table holds and the file holding the row: (user id,
  // anonymous id, email, event id, session id, file).
  struct Source {
    std::string name;
    int64_t version = -1;
    std::string view;
    delta::Schema schema;
    bool payload = false;  // bronze.events, silver.quarantine: the raw payloads
    std::string select;
  };
  std::vector<Source> sources;
  for (auto& t : tables) {
    if (t.gold) continue;
    ASSIGN_OR_RETURN(delta::Snapshot snap, t.table->LoadSnapshot());
    delta::ScanOptions options;
    options.row_address = true;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(t.table->path(), snap, options));
    Source src;
    src.name = t.name;
    src.version = snap.version;
    src.view = t.name;
    std::replace(src.view.begin(), src.view.end(), '.', '_');
    src.schema = snap.schema();
    const auto has = [&](const char* c) { return src.schema.Find(c) != nullptr; };
    std::string user = "NULL", anon = "NULL", email = "NULL", event = "NULL", session = "NULL";
    if (has("payload")) {
      src.payload = true;
      auto json = [](std::initializer_list<const char*> paths) {
        std::string out = "coalesce(";
        bool first = true;
        for (const char* p : paths) {
          out += std::string(first ? "" : ", ") + "json_extract_string(payload, '" + p + "')";
          first = false;
        }
        return out + ")";
      };
      user = json({"$.userId", "$.user_id", "$.uid"});
      anon = json({"$.anonymousId", "$.anonymous_id", "$.duid"});
      email = "lower(" + json({"$.traits.email", "$.context.traits.email"}) + ")";
      event = json({"$.messageId", "$.event_id", "$.eid"});
    } else if (has("user_id") && has("anonymous_id")) {
      user = "user_id";
      anon = "anonymous_id";
    } else if (has("user_key")) {
      user = "CASE WHEN user_key LIKE 'anon:%' THEN NULL ELSE user_key END";
      anon = "CASE WHEN user_key LIKE 'anon:%' THEN substr(user_key, 6) END";
      if (has("field") && has("value")) email = "CASE WHEN field LIKE '%email' THEN lower(value) END";
    }
    if (!src.payload && has("event_id")) event = "event_id";
    if (has("session_id")) session = "session_id";
    if (user == "NULL" && event == "NULL") continue;  // nothing that identifies anyone
    src.select = "SELECT " + user + ", " + anon + ", " + email + ", " + event + ", " + session +
                 ", _delta_file, _delta_row FROM " + src.view + " WHERE ";
    RETURN_IF_ERROR(conn_->Execute("CREATE OR REPLACE TEMP VIEW " + src.view + " AS " + scan));
    sources.push_back(std::move(src));
  }
  ResolvedSubject& s = journal_.subject;
  auto refresh = [&] {
    AddAll(&s.user_ids, users);
    AddAll(&s.anonymous_ids, anons);
    AddAll(&s.emails, emails);
    std::set<std::string> keys = users;
    for (const auto& a : anons) keys.insert("anon:" + a);
    AddAll(&s.user_keys, keys);
    AddAll(&s.event_ids, events);
    AddAll(&s.session_ids, sessions);
  };
  refresh();
  // Per table, from its latest scan: the files and row positions of their rows.
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> rows;
  // Scans the tables of one kind with the subject as it stands; true when
  // anything new turned up.
  auto scan = [&](bool payload) -> Result<bool> {
    bool changed = false;
    for (const auto& src : sources) {
      if (src.payload != payload) continue;
      const std::string pred = PersonPredicate(src.schema, s);
      if (pred == "false") continue;
      ASSIGN_OR_RETURN(auto r, conn_->Query(src.select + pred));
      auto& found = rows[src.name];
      found.clear();
      for (size_t i = 0; i < r.row_count(); i++) {
        size_t col = 0;
        for (std::set<std::string>* to : {&users, &anons, &emails, &events, &sessions}) {
          if (!r.IsNull(i, col) && !r.GetString(i, col).empty()) {
            changed = to->insert(r.GetString(i, col)).second || changed;
          }
          col++;
        }
        found[r.GetString(i, 5)].push_back(r.GetInt64(i, 6));
      }
    }
    ASSIGN_OR_RETURN(auto links, ctx_.state->LinkedIdentities(s.anonymous_ids, s.user_ids));
    for (const auto& [anon, user] : links) {
      changed = anons.insert(anon).second || changed;
      if (!user.empty()) changed = users.insert(user).second || changed;
    }
    refresh();
    return changed;
  };
  // Identity links both ways (and the event and session ids of the person's
  // rows, which widen other tables' predicates), until nothing new turns up.
  // The tables with plain identifier columns (only those columns are read)
  // and the state store's links converge first; the raw payloads, the
  // costliest read by far, are scanned only then, usually twice (the second
  // scan confirms nothing new turned up).
  for (int round = 0;; round++) {
    if (round >= 50) return Status::Internal("identity resolution did not converge in 50 rounds");
    ASSIGN_OR_RETURN(bool changed, scan(false));
    if (changed) continue;
    ASSIGN_OR_RETURN(changed, scan(true));
    if (!changed) break;
  }
  // The last scan of every table used the final subject: its files are all
  // the live files holding the person's rows.
  for (const auto& src : sources) {
    Journal::TableHits& h = journal_.hits[src.name];
    h.version = src.version;
    h.rows = std::move(rows[src.name]);
    h.files.clear();
    for (auto& [file, positions] : *h.rows) {
      h.files.push_back(file);
      std::sort(positions.begin(), positions.end());
    }
  }
  for (const auto& src : sources) RETURN_IF_ERROR(conn_->Execute("DROP VIEW IF EXISTS " + src.view));
  return Status::OK();
}

// Past this many, the delete finds the rows again rather than list them in a statement.
constexpr int64_t kMaxKnownRows = 200'000;

int64_t KnownRows(const std::map<std::string, std::vector<int64_t>>& rows) {
  int64_t n = 0;
  for (const auto& [file, positions] : rows) n += static_cast<int64_t>(positions.size());
  return n;
}

Result<int64_t> Eraser::ChangeRows(LakeTable* t, bool anonymize) {
  for (int attempt = 0;; attempt++) {
    auto txn = t->table->StartTransaction();
    const delta::Snapshot& snap = txn->read_snapshot();
    const std::string pred = PersonPredicate(snap.schema(), journal_.subject);
    if (pred == "false") return 0;
    delta::ScanOptions options;
    options.row_address = true;
    // Resolution found the files holding their rows; while the table is still
    // at the version it read, only those are read (else all of them).
    delta::Snapshot scanned = snap;
    auto hits = journal_.hits.find(t->name);
    const bool unchanged = hits != journal_.hits.end() && hits->second.version == snap.version;
    if (unchanged) {
      const std::set<std::string> holding(hits->second.files.begin(), hits->second.files.end());
      std::erase_if(scanned.files, [&](const delta::AddFile& f) { return !holding.count(f.path); });
      if (scanned.files.empty()) return 0;
    }
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(t->table->path(), scanned, options));
    // A delete at that version needs no read at all: the rows are known.
    std::string rows_query = "SELECT _delta_file, _delta_row FROM (" + scan + ") WHERE " + pred;
    if (unchanged && !anonymize && hits->second.rows && KnownRows(*hits->second.rows) <= kMaxKnownRows) {
      rows_query = "SELECT * FROM (VALUES ";
      bool first = true;
      for (const auto& [file, positions] : *hits->second.rows) {
        for (int64_t p : positions) {
          rows_query += std::string(first ? "" : ", ") + "(" + engine::QuoteLiteral(file) + ", " + std::to_string(p) +
                        "::BIGINT)";
          first = false;
        }
      }
      rows_query += ") AS t(_delta_file, _delta_row)";
    }
    if (anonymize) {
      // The anonymized copies first (read from the snapshot), then the
      // originals marked deleted, in the same commit.
      ASSIGN_OR_RETURN(auto count, conn_->Query("SELECT count(*) FROM (" + scan + ") WHERE " + pred));
      if (count.GetInt64(0, 0) == 0) return 0;
      std::string projection;
      for (const auto& f : snap.schema().fields) projection += (projection.empty() ? "" : ", ") + AnonymizedColumn(f);
      ASSIGN_OR_RETURN(auto written,
                       txn->WriteFiles(conn_.get(), "SELECT " + projection + " FROM (" + scan + ") WHERE " + pred));
      (void)written;
    }
    ASSIGN_OR_RETURN(int64_t n, txn->DeleteRows(conn_.get(), rows_query));
    if (n == 0) return 0;
    // The commit names the request, never the identifiers.
    txn->SetOperation(anonymize ? "UPDATE" : "DELETE",
                      {{"predicate", "[" + JsonString((anonymize ? "privacy anonymization " : "privacy erasure ") +
                                                      request_.id) + "]"}});
    txn->SetCommitInfoField("clicklake_privacy", "{\"request_id\":" + JsonString(request_.id) + "}");
    auto v = txn->Commit();
    if (v.ok()) {
      TableErasure& te = journal_.tables[t->name];
      (anonymize ? te.rows_anonymized : te.rows_removed) += n;
      te.versions_written.push_back(*v);
      return n;
    }
    if (!v.status().IsConflict() || attempt >= 5) return v.status();
  }
}

Status Eraser::PrepareAnonymize() {
  journal_.pseudonym = "anon-" + privacy::NewToken().substr(4);
  journal_.salt = privacy::NewToken().substr(4) + privacy::NewToken().substr(4);
  // The raw values the vault holds for them (phones, names...): free text may repeat them.
  auto table = delta::Table::Open(JoinPath(ctx_.lake_dir, kRestrictedPiiTable), ctx_.db, ctx_.fs, ctx_.clock);
  if (!table.ok()) return table.status().IsNotFound() ? Status::OK() : table.status();
  ASSIGN_OR_RETURN(delta::Snapshot snap, (*table)->LoadSnapshot());
  if (!snap.schema().Find("value")) return Status::OK();
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql((*table)->path(), snap));
  ASSIGN_OR_RETURN(auto r, conn_->Query("SELECT DISTINCT value FROM (" + scan + ") WHERE value IS NOT NULL AND length(value) >= 4 AND " +
                                        PersonPredicate(snap.schema(), journal_.subject) + " ORDER BY length(value) DESC"));
  for (size_t i = 0; i < r.row_count(); i++) journal_.pii_values.push_back(r.GetString(i, 0));
  return Status::OK();
}

std::string Eraser::Scrub(const std::string& expr) const {
  // Longest first, so no identifier is left half-replaced inside a longer one.
  std::vector<std::pair<std::string, std::string>> literals;
  for (const auto& v : journal_.pii_values) literals.emplace_back(v, "[redacted]");
  for (const auto& v : journal_.subject.emails) literals.emplace_back(v, "[redacted]");
  for (const auto& v : journal_.subject.user_ids) literals.emplace_back(v, journal_.pseudonym);
  for (const auto& v : journal_.subject.anonymous_ids) literals.emplace_back(v, journal_.pseudonym);
  std::stable_sort(literals.begin(), literals.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out = expr;
  for (const auto& [from, to] : literals) {
    if (from.empty()) continue;
    out = "replace(" + out + ", " + engine::QuoteLiteral(from) + ", " + engine::QuoteLiteral(to) + ")";
  }
  // Silver's HMACs of emails/phones/cards in free text (linkable through the
  // key), then any email address left.
  out = "regexp_replace(" + out + ", 'hmac:[0-9a-f]{16,}', '[redacted]', 'g')";
  return "regexp_replace(" + out + ", '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+', '[redacted]', 'g')";
}

std::string Eraser::AnonymizedColumn(const delta::Field& f) const {
  const std::string c = engine::QuoteIdentifier(f.name);
  const std::string as = " AS " + c;
  if (f.type != "string") return c + as;
  auto q = engine::QuoteLiteral;
  const std::string pseudonym = q(journal_.pseudonym);
  auto rederived = [&](const std::string& e) { return "'anon-' || substr(sha256(" + q(journal_.salt) + " || " + e + "), 1, 32)"; };
  auto ends_with = [&](const std::string& suffix) {
    return f.name.size() >= suffix.size() && f.name.compare(f.name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const std::string& n = f.name;
  if (n == "user_id" || n == "anonymous_id" || n == "user_key") {
    return "CASE WHEN " + c + " IS NULL THEN NULL ELSE " + pseudonym + " END" + as;
  }
  if (n == "event_id" || n == "session_id" || ends_with("_event_id") || ends_with("_session_id")) {
    return "CASE WHEN " + c + " IS NULL THEN NULL ELSE " + rederived(c) + " END" + as;
  }
  if (n == "ip" || n.rfind("ip_", 0) == 0 || ends_with("_ip") || n.find("email") != std::string::npos ||
      n.find("phone") != std::string::npos) {
    return std::string(f.nullable ? "CAST(NULL AS VARCHAR)" : "'[redacted]'") + as;
  }
  if (n == "payload") {
    // The raw event: identifier members replaced, traits and IPs removed (a
    // JSON merge patch: null removes a member), then the free text scrubbed.
    // A payload that is not a JSON object (quarantined garbage) is only scrubbed.
    auto member = [&](const char* key, const std::string& value) {
      return std::string(q(key)) + ", CASE WHEN json_extract(" + c + ", " + q(std::string("$.") + key) +
             ") IS NOT NULL THEN " + value + " END";
    };
    std::string patch = "json_object(";
    for (const char* k : {"userId", "user_id", "uid", "anonymousId", "anonymous_id", "duid"}) patch += member(k, pseudonym) + ", ";
    for (const char* k : {"messageId", "event_id", "eid"}) {
      patch += member(k, rederived("json_extract_string(" + c + ", " + q(std::string("$.") + k) + ")")) + ", ";
    }
    patch += "'traits', NULL, 'ip', NULL, 'context', json_object('ip', NULL, 'traits', NULL))";
    return "CASE WHEN " + c + " IS NULL THEN NULL WHEN json_valid(" + c + ") AND json_type(" + c +
           ") = 'OBJECT' THEN " + Scrub("CAST(json_merge_patch(" + c + ", " + patch + ") AS VARCHAR)") + " ELSE " +
           Scrub(c) + " END" + as;
  }
  return Scrub(c) + as;
}

// How long a file without a footer may be some writer's work in progress.
constexpr int64_t kUnfinishedWriteGraceMs = 10 * 60 * 1000;

// Whether `path` ends (and starts) as a Parquet file does; a write killed
// mid-way leaves a file that does not.
bool HasParquetFooter(FileSystem* fs, const std::string& path) {
  auto file = fs->NewRandomAccessFile(path);
  if (!file.ok()) return false;
  auto size = (*file)->Size();
  if (!size.ok() || *size < 12) return false;
  std::string head, tail;
  if (!(*file)->Read(0, 4, &head).ok() || !(*file)->Read(*size - 4, 4, &tail).ok()) return false;
  return head == "PAR1" && tail == "PAR1";
}

// The data files commits `versions` of `table` added (paths as the purge
// lists them); a commit whose previous version is gone from the log adds none.
Result<std::set<std::string>> FilesWrittenBy(delta::Table* table, const std::vector<int64_t>& versions) {
  std::set<std::string> out;
  for (int64_t v : versions) {
    auto after = table->LoadSnapshot(v);
    auto before = table->LoadSnapshot(v - 1);
    if (after.status().IsNotFound() || before.status().IsNotFound()) continue;
    RETURN_IF_ERROR(after.status());
    RETURN_IF_ERROR(before.status());
    std::set<std::string> had;
    for (const auto& f : before->files) had.insert(f.path);
    for (const auto& f : after->files) {
      if (!had.count(f.path)) out.insert(delta::DataFilePath(table->path(), f.path));
    }
  }
  return out;
}

Result<std::vector<std::string>> Eraser::RewriteFiles(LakeTable* t) {
  const int64_t t0 = ctx_.clock->MonotonicMicros();
  ASSIGN_OR_RETURN(delta::Snapshot snap, t->table->LoadSnapshot());
  const std::string pred = PersonPredicate(snap.schema(), journal_.subject);
  if (pred == "false") return std::vector<std::string>{};
  // Every data file in storage, whichever versions name it: the rows of older
  // versions are what time travel would bring back.
  std::vector<std::string> files;
  std::vector<std::string> dirs = {t->table->path()};
  while (!dirs.empty()) {
    const std::string dir = dirs.back();
    dirs.pop_back();
    ASSIGN_OR_RETURN(auto entries, ctx_.fs->ListDir(dir));
    for (const auto& e : entries) {
      if (e.name == "_delta_log") continue;
      const std::string path = JoinPath(dir, e.name);
      if (e.is_dir) {
        dirs.push_back(path);
      } else if (e.name.size() > 8 && e.name.substr(e.name.size() - 8) == ".parquet") {
        files.push_back(path);
      }
    }
  }
  // The files live at the version resolution read, with no deletion vector
  // and none of the person's rows then, hold none physically: only the
  // others (the files holding their rows, files with deleted rows, older
  // versions' files, files written since) are read. The files live then
  // that resolution found holding their rows hold them still (files never
  // change): they are not read either.
  std::set<std::string> known_holding;
  auto known = journal_.hits.find(t->name);
  if (known != journal_.hits.end() && known->second.version >= 0) {
    auto then = t->table->LoadSnapshot(known->second.version);
    if (then.ok()) {
      const std::set<std::string> hit(known->second.files.begin(), known->second.files.end());
      std::set<std::string> clean;
      for (const auto& f : then->files) {
        const std::string path = delta::DataFilePath(t->table->path(), f.path);
        if (hit.count(f.path)) {
          known_holding.insert(path);
        } else if (!f.deletion_vector) {
          clean.insert(path);
        }
      }
      std::erase_if(files, [&](const std::string& f) { return clean.count(f) > 0 || known_holding.count(f) > 0; });
    } else if (!then.status().IsNotFound()) {
      return then.status();
    }
  }
  // So are the files this request's own commits wrote to a Bronze, Silver
  // or restricted table: the rows it kept (`NOT <person>`) or their
  // anonymized copies.
  if (!t->gold) {
    ASSIGN_OR_RETURN(auto own, FilesWrittenBy(t->table.get(), journal_.tables[t->name].versions_written));
    std::erase_if(files, [&](const std::string& f) { return own.count(f) > 0; });
  }
  // A file a killed write left behind has no Parquet footer: no version
  // names it and no reader can open it, but its pages may hold the person's
  // bytes. Past a grace period its writer is gone and it is deleted with the
  // files that hold their rows; a fresher one may still be being written
  // (vacuum removes it later) and is noted.
  std::vector<std::string> torn;
  int64_t unfinished = 0;
  const int64_t now_ms = ctx_.clock->NowMicros() / 1000;
  std::erase_if(files, [&](const std::string& f) {
    if (HasParquetFooter(ctx_.fs, f)) return false;
    auto info = ctx_.fs->Stat(f);
    if (!info.ok()) return true;  // gone since the listing
    if (now_ms - info->mtime_ms >= kUnfinishedWriteGraceMs) {
      torn.push_back(f);
    } else {
      unfinished++;
    }
    return true;
  });
  if (unfinished > 0) {
    journal_.notes.push_back(t->name + ": " + std::to_string(unfinished) +
                             " file(s) without a Parquet footer written in the last minutes were left to their writer "
                             "(vacuum removes them if it never commits them)");
  }
  std::set<std::string> holding(torn.begin(), torn.end());
  holding.insert(known_holding.begin(), known_holding.end());
  if (!files.empty()) {
    journal_.tables[t->name].files_read += static_cast<int64_t>(files.size());
    std::sort(files.begin(), files.end());
    ASSIGN_OR_RETURN(auto hits,
                     conn_->Query("SELECT DISTINCT filename FROM read_parquet(" +
                                  [&] {
                                    std::string list = "[";
                                    for (size_t i = 0; i < files.size(); i++)
                                      list += (i ? "," : "") + engine::QuoteLiteral(files[i]);
                                    return list + "]";
                                  }() +
                                  ", filename = true, union_by_name = true, hive_partitioning = false) WHERE " + pred));
    for (size_t i = 0; i < hits.row_count(); i++) holding.insert(hits.GetString(i, 0));
  }
  if (holding.empty()) return std::vector<std::string>{};
  std::vector<delta::AddFile> live;
  for (const auto& f : snap.files) {
    if (holding.count(delta::DataFilePath(t->table->path(), f.path))) live.push_back(f);
  }
  if (!live.empty()) {
    for (int attempt = 0;; attempt++) {
      ASSIGN_OR_RETURN(delta::Snapshot current, t->table->LoadSnapshot());
      std::vector<delta::AddFile> still;
      for (const auto& f : current.files) {
        if (holding.count(delta::DataFilePath(t->table->path(), f.path))) still.push_back(f);
      }
      if (still.empty()) break;
      delta::Snapshot sub = current;
      sub.files = still;
      ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(t->table->path(), sub));
      auto txn = t->table->StartTransaction(current);
      txn->SetDataChange(false);
      // The DV-deleted rows are dropped (the live rows are the same, so no data change).
      ASSIGN_OR_RETURN(auto written, txn->WriteFiles(conn_.get(), "SELECT * FROM (" + scan + ") WHERE NOT " + pred));
      for (const auto& f : still) txn->RemoveFile(f);
      txn->SetOperation("OPTIMIZE", {{"predicate", "[" + JsonString("privacy purge " + request_.id) + "]"}});
      txn->SetCommitInfoField("clicklake_privacy", "{\"request_id\":" + JsonString(request_.id) + "}");
      auto v = txn->Commit();
      if (v.ok()) {
        TableErasure& te = journal_.tables[t->name];
        te.files_rewritten += static_cast<int64_t>(still.size());
        te.versions_written.push_back(*v);
        (void)written;
        break;
      }
      if (!v.status().IsConflict() || attempt >= 5) return v.status();
    }
  }
  spdlog::info("privacy: {} purge {}: {} files in storage read, {} hold their rows ({} live), {:.0f} ms", request_.id,
               t->name, files.size(), holding.size(), live.size(), (ctx_.clock->MonotonicMicros() - t0) / 1000.0);
  return std::vector<std::string>(holding.begin(), holding.end());
}

Status Eraser::RefreshGold() { return RefreshGoldAfterErasure(ctx_, &journal_.tables); }

Status Eraser::Purge(std::vector<LakeTable>* tables) {
  // Rewrite first (every table, Gold refreshed over the rewritten Silver
  // while the old files can still be read), delete the old files last.
  std::vector<std::pair<LakeTable*, std::vector<std::string>>> doomed;
  for (bool gold_pass : {false, true}) {
    if (gold_pass) RETURN_IF_ERROR(RefreshGold());
    for (auto& t : *tables) {
      if (t.gold != gold_pass) continue;
      ASSIGN_OR_RETURN(auto files, RewriteFiles(&t));
      if (!files.empty()) doomed.emplace_back(&t, std::move(files));
    }
  }
  if (ctx_.before_step) ctx_.before_step("purge:delete-files");
  for (auto& [t, files] : doomed) {
    for (const auto& f : files) {
      Status s = ctx_.fs->DeleteFile(f);
      if (!s.ok() && !s.IsNotFound()) return s;
      if (s.ok()) journal_.tables[t->name].files_purged++;
    }
  }
  return Status::OK();
}

Result<ErasureReceipt> Eraser::Finish() {
  ErasureReceipt receipt;
  receipt.request = request_;
  std::vector<std::string> named = request_.subject.All();
  std::sort(named.begin(), named.end());
  std::string joined;
  for (const auto& n : named) joined += n + "\n";
  receipt.subject_hmac = privacy::HmacHex(ctx_.pii_key, joined);
  receipt.identifiers_resolved = static_cast<int64_t>(journal_.subject.Identifiers().size());
  receipt.tables = journal_.tables;
  receipt.state_entries_removed = journal_.state_entries_removed;
  for (const auto& [name, t] : journal_.tables) receipt.files_purged += t.files_purged;
  receipt.notes = journal_.notes;
  receipt.completed_at_us = ctx_.clock->NowMicros();
  const std::string json = receipt.ToJson();
  const std::string receipt_path = JoinPath(ctx_.lake_dir, "restricted/_privacy/receipts/" + request_.id + ".json");
  // A rerun after a crash past this point keeps the first receipt.
  std::string final_json = json;
  if (ctx_.fs->Exists(receipt_path)) {
    ASSIGN_OR_RETURN(final_json, ctx_.fs->ReadFile(receipt_path));
  } else {
    RETURN_IF_ERROR(privacy::WriteFileAtomically(ctx_.fs, receipt_path, json));
  }
  RETURN_IF_ERROR(AppendErasureRow(ctx_, conn_.get(), receipt, final_json));
  if (ctx_.on_receipt) ctx_.on_receipt(receipt, final_json);
  NotifyReceiptListeners(receipt, final_json);
  RETURN_IF_ERROR(queue_.Remove(request_.id));  // the journal (raw identifiers) goes with it
  return receipt;
}

Result<std::optional<ErasureReceipt>> Eraser::Run() {
  ASSIGN_OR_RETURN(conn_, ctx_.db->Connect());
  RETURN_IF_ERROR(conn_->Execute("SET TimeZone = 'UTC'"));
  ASSIGN_OR_RETURN(auto journal_text, queue_.ReadJournal(request_.id));
  if (journal_text) {
    ASSIGN_OR_RETURN(journal_, Journal::FromJson(*journal_text));
  } else {
    // 1. Resolve, journaled before anything is removed (a rerun could no
    //    longer find the links once the rows are gone).
    if (ctx_.before_step) ctx_.before_step("resolve");
    const int64_t t0 = ctx_.clock->MonotonicMicros();
    RETURN_IF_ERROR(Resolve());
    spdlog::info("privacy: {} resolve: {} identifiers, {} events, {:.0f} ms", request_.id,
                 journal_.subject.Identifiers().size(), journal_.subject.event_ids.size(),
                 (ctx_.clock->MonotonicMicros() - t0) / 1000.0);
    RETURN_IF_ERROR(queue_.WriteJournal(request_.id, journal_.ToJson()));
  }
  // 2. The subject list: every linked identifier, not only the named ones.
  RETURN_IF_ERROR(Step("subjects", [&] {
    return privacy::SubjectList::Update(
        ctx_.lake_dir, [&](privacy::SubjectList* l) { l->Apply(request_, journal_.subject.Identifiers(), ctx_.pii_key); },
        ctx_.fs);
  }));
  if (request_.deletes()) {
    // 3. State store.
    RETURN_IF_ERROR(Step("state", [&]() -> Status {
      ASSIGN_OR_RETURN(int64_t n, ctx_.state->Forget(journal_.subject.event_ids, journal_.subject.anonymous_ids,
                                                     journal_.subject.user_keys));
      journal_.state_entries_removed += n;
      return Status::OK();
    }));
    // 4. Other components' steps (reverse-ETL snapshots), before the rows go:
    //    activate::ForgetUsers turns a snapshot row into a marker that still lets
    //    the next sync send the removal downstream (a plain delete would lose it).
    std::vector<std::pair<std::string, ErasureStep>> steps;
    {
      std::lock_guard l(StepsMutex());
      steps = Steps();
    }
    for (const auto& [name, step] : steps) {
      RETURN_IF_ERROR(Step("extra:" + name, [&, &step = step, &name = name]() -> Status {
        ASSIGN_OR_RETURN(std::string note, step(journal_.subject, request_));
        journal_.notes.push_back(name + ": " + note);
        return Status::OK();
      }));
    }
    // 5. Rows of every non-Gold table; 6. Gold recomputed, then what is left keyed by them.
    if (anonymize()) {
      RETURN_IF_ERROR(Step("anonymize-prepare", [&] { return PrepareAnonymize(); }));
    }
    ASSIGN_OR_RETURN(auto tables, OpenTables());
    for (bool gold_pass : {false, true}) {
      if (gold_pass) RETURN_IF_ERROR(Step("gold-refresh", [&] { return RefreshGold(); }));
      for (auto& t : tables) {
        if (t.gold != gold_pass) continue;
        // Anonymize keeps the rows of the event tables and Gold; the vault
        // (restricted.*) and the reverse-ETL snapshots lose theirs either way.
        const bool keep = anonymize() && t.name.rfind("restricted.", 0) != 0 && t.name.rfind("activate.", 0) != 0;
        RETURN_IF_ERROR(Step((keep ? "anonymize:" : "delete:") + t.name, [&] { return ChangeRows(&t, keep).status(); }));
      }
    }
    // 7. Purge, when the SLA says so.
    if (!journal_.purge_due_us) {
      journal_.purge_due_us = request_.received_at_us + ctx_.erasure_sla_us;
      RETURN_IF_ERROR(queue_.WriteJournal(request_.id, journal_.ToJson()));
    }
    if (ctx_.clock->NowMicros() < *journal_.purge_due_us) {
      if (!journal_.done.count("purge-pending-receipt")) {
        ErasureReceipt pending;
        pending.request = request_;
        pending.tables = journal_.tables;
        pending.status = "purge_pending";
        pending.purge_due_us = journal_.purge_due_us;
        pending.completed_at_us = ctx_.clock->NowMicros();
        RETURN_IF_ERROR(privacy::WriteFileAtomically(
            ctx_.fs, JoinPath(ctx_.lake_dir, "restricted/_privacy/receipts/" + request_.id + ".pending.json"),
            pending.ToJson()));
        journal_.done.insert("purge-pending-receipt");
        RETURN_IF_ERROR(queue_.WriteJournal(request_.id, journal_.ToJson()));
      }
      return std::optional<ErasureReceipt>();
    }
    ASSIGN_OR_RETURN(tables, OpenTables());
    RETURN_IF_ERROR(Step("purge", [&] { return Purge(&tables); }));
  }
  if (ctx_.before_step) ctx_.before_step("receipt");
  ASSIGN_OR_RETURN(ErasureReceipt receipt, Finish());
  ctx_.fs->DeleteFile(JoinPath(ctx_.lake_dir, "restricted/_privacy/receipts/" + request_.id + ".pending.json"))
      .IgnoreError();
  spdlog::info("privacy: request {} ({}) done: {} identifiers, {} state entries, {} files purged", request_.id,
               privacy::RegulationTypeName(request_.type), receipt.identifiers_resolved,
               receipt.state_entries_removed, receipt.files_purged);
  return std::optional<ErasureReceipt>(std::move(receipt));
}

}  // namespace

std::vector<std::string> ResolvedSubject::Identifiers() const {
  std::vector<std::string> out = user_ids;
  out.insert(out.end(), anonymous_ids.begin(), anonymous_ids.end());
  out.insert(out.end(), emails.begin(), emails.end());
  return out;
}

void RegisterReceiptListener(ReceiptListener listener) {
  std::lock_guard l(StepsMutex());
  ReceiptListeners().push_back(std::move(listener));
}

void RegisterErasureStep(const std::string& name, ErasureStep step) {
  std::lock_guard l(StepsMutex());
  for (auto& [n, s] : Steps()) {
    if (n == name) {
      s = std::move(step);
      return;
    }
  }
  Steps().emplace_back(name, std::move(step));
}

Status SubmitPrivacyRequest(const std::string& lake_dir, const std::string& pii_key, privacy::PrivacyRequest* request,
                            FileSystem* fs, Clock* clock) {
  if (request->subject.empty()) return Status::InvalidArgument("a privacy request needs a user id, anonymous id or email");
  if (request->received_at_us == 0) request->received_at_us = clock->NowMicros();
  if (request->id.empty()) request->id = privacy::NewRequestId(request->received_at_us);
  // The list first: from now on the processor drops the person's events.
  RETURN_IF_ERROR(privacy::SubjectList::Update(
      lake_dir, [&](privacy::SubjectList* l) { l->Apply(*request, request->subject.All(), pii_key); }, fs));
  return privacy::RequestQueue(lake_dir, fs).Submit(*request);
}

Result<std::vector<ErasureReceipt>> ExecutePrivacyRequests(const ErasureContext& context) {
  if (context.state == nullptr || context.db == nullptr) {
    return Status::InvalidArgument("privacy requests need the state store and a database");
  }
  privacy::RequestQueue queue(context.lake_dir, context.fs);
  ASSIGN_OR_RETURN(auto pending, queue.Pending());
  std::vector<ErasureReceipt> done;
  for (auto& request : pending) {
    Eraser eraser(context, request);
    ASSIGN_OR_RETURN(auto receipt, eraser.Run());
    if (receipt) done.push_back(std::move(*receipt));
  }
  return done;
}

namespace {

// Runs `work` with what a process without a processor needs: the PII key, the
// state store (its lock: Unavailable while a processor holds it) and a database.
template <typename T>
Result<T> WithStandaloneContext(const Config& config, const std::function<void(const std::string&)>& before_step,
                                const std::function<Result<T>(const ErasureContext&)>& work) {
  const SilverOptions silver = SilverOptions::FromConfig(config);
  ErasureContext ctx;
  ErasureSettingsFromConfig(config, &ctx);
  ctx.before_step = before_step;
  ASSIGN_OR_RETURN(ctx.pii_key, LoadPiiKey(silver));
  const std::string state_dir = JoinPath(ctx.lake_dir, "_clicklake/state");
  RETURN_IF_ERROR(ctx.fs->CreateDirs(state_dir));
  auto state = DedupStore::Open(JoinPath(state_dir, "dedup"), silver.dedup_window_us);
  if (!state.ok()) {
    return Status::Unavailable("the state store is in use (" + state.status().message() +
                               "): a running processor executes queued privacy requests and retention itself");
  }
  ctx.state = state->get();
  engine::DatabaseOptions db_options;
  db_options.temp_directory = JoinPath(ctx.lake_dir, "_clicklake/tmp");
  ASSIGN_OR_RETURN(auto db, engine::Database::Open(db_options));
  ctx.db = db.get();
  return work(ctx);
}

}  // namespace

Result<std::vector<ErasureReceipt>> ExecutePrivacyRequestsStandalone(
    const Config& config, const std::function<void(const std::string& step)>& before_step) {
  return WithStandaloneContext<std::vector<ErasureReceipt>>(config, before_step, ExecutePrivacyRequests);
}

Result<ErasureReceipt> RunRetentionStandalone(const Config& config, const std::vector<RetentionRule>& rules) {
  return WithStandaloneContext<ErasureReceipt>(
      config, nullptr, [&](const ErasureContext& ctx) { return RunRetention(ctx, rules); });
}

Result<std::string> ReadReceipt(const std::string& lake_dir, const std::string& request_id, FileSystem* fs) {
  const std::string path = JoinPath(lake_dir, "restricted/_privacy/receipts/" + request_id + ".json");
  if (!fs->Exists(path)) return Status::NotFound("no receipt yet for " + request_id);
  return fs->ReadFile(path);
}

Result<std::vector<RetentionRule>> RetentionRulesFromConfig(const Config& config) {
  std::vector<RetentionRule> rules;
  for (const char* layer : kPersonalLayers) {
    for (const auto& [table, ttl] : config.GetStringMap(std::string("retention.") + layer)) {
      RetentionRule rule;
      rule.table = std::string(layer) + "/" + table;
      if (!ParseDurationMicros(ttl, &rule.ttl_us) || rule.ttl_us <= 0) {
        return Status::InvalidArgument("retention." + std::string(layer) + "." + table + " = \"" + ttl +
                                       "\": a TTL is a duration such as \"400d\"");
      }
      rules.push_back(std::move(rule));
    }
  }
  return rules;
}

Result<ErasureReceipt> RunRetention(const ErasureContext& ctx, const std::vector<RetentionRule>& rules) {
  ErasureReceipt receipt;
  PrivacyRequest& run = receipt.request;
  run.received_at_us = ctx.clock->NowMicros();
  run.id = privacy::NewRequestId(run.received_at_us);
  run.type = privacy::RegulationType::kRetention;
  run.manner = "retention";
  ASSIGN_OR_RETURN(auto conn, ctx.db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  struct Expired {
    std::string path, column, cutoff;
  };
  std::vector<Expired> expired;
  bool silver_changed = false;
  for (const auto& rule : rules) {
    const std::string ttl = rule.ttl_us % kDayMicros == 0 ? std::to_string(rule.ttl_us / kDayMicros) + "d"
                                                           : std::to_string(rule.ttl_us / 3'600'000'000LL) + "h";
    run.reason += (run.reason.empty() ? "" : ", ") + rule.table + " " + ttl;
    const std::string path = JoinPath(ctx.lake_dir, rule.table);
    auto table = delta::Table::Open(path, ctx.db, ctx.fs, ctx.clock);
    if (!table.ok()) {
      if (table.status().IsNotFound()) continue;
      return table.status();
    }
    auto txn = (*table)->StartTransaction();
    const delta::Snapshot& snap = txn->read_snapshot();
    const delta::Field* column =
        snap.partition_columns().empty() ? nullptr : snap.schema().Find(snap.partition_columns()[0]);
    if (column == nullptr || column->type != "date") {
      return Status::InvalidArgument("retention of " + rule.table + ": the table is not partitioned by a date");
    }
    // Partitions strictly before the cut-off date expire.
    const std::string cutoff = FormatDate(MicrosToDays(run.received_at_us - rule.ttl_us));
    expired.push_back({path, column->name, cutoff});
    delta::ScanOptions options;
    options.row_address = true;
    ASSIGN_OR_RETURN(std::string scan, delta::ScanSql(path, snap, options));
    const std::string pred = engine::QuoteIdentifier(column->name) + " < DATE " + engine::QuoteLiteral(cutoff);
    ASSIGN_OR_RETURN(int64_t n, txn->DeleteRows(conn.get(), "SELECT _delta_file, _delta_row FROM (" + scan +
                                                                 ") WHERE " + pred));
    if (n == 0) continue;
    txn->SetOperation("DELETE", {{"predicate", "[" + JsonString(pred + " (retention)") + "]"}});
    txn->SetCommitInfoField("clicklake_privacy", "{\"request_id\":" + JsonString(run.id) + "}");
    ASSIGN_OR_RETURN(int64_t version, txn->Commit());
    std::string name = rule.table;
    std::replace(name.begin(), name.end(), '/', '.');
    receipt.tables[name].rows_removed += n;
    receipt.tables[name].versions_written.push_back(version);
    silver_changed = silver_changed || rule.table == "silver/events";
  }
  if (receipt.tables.empty()) {
    receipt.completed_at_us = ctx.clock->NowMicros();
    return receipt;
  }
  // Gold first, while the old files can still be read (its refresh diffs them).
  if (silver_changed) RETURN_IF_ERROR(RefreshGoldAfterErasure(ctx, &receipt.tables));
  // The expired partitions' files of every version, then the usual vacuum.
  for (const auto& e : expired) {
    ASSIGN_OR_RETURN(auto entries, ctx.fs->ListDir(e.path));
    std::string name = e.path.substr(ctx.lake_dir.size() + 1);
    std::replace(name.begin(), name.end(), '/', '.');
    for (const auto& entry : entries) {
      const std::string prefix = e.column + "=";
      if (!entry.is_dir || entry.name.rfind(prefix, 0) != 0) continue;
      const std::string value = delta::DecodePath(entry.name.substr(prefix.size()));
      if (value.size() != 10 || value >= e.cutoff) continue;  // __HIVE_DEFAULT_PARTITION__ (NULL) stays
      ASSIGN_OR_RETURN(auto files, ctx.fs->ListDir(JoinPath(e.path, entry.name)));
      for (const auto& f : files) {
        if (!f.is_dir) receipt.tables[name].files_purged++;
      }
      RETURN_IF_ERROR(ctx.fs->DeleteTree(JoinPath(e.path, entry.name)));
    }
    auto table = delta::Table::Open(e.path, ctx.db, ctx.fs, ctx.clock);
    if (table.ok()) {
      ASSIGN_OR_RETURN(delta::VacuumResult v, (*table)->Vacuum());
      receipt.tables[name].files_purged += static_cast<int64_t>(v.deleted.size());
    }
  }
  for (const auto& [name, t] : receipt.tables) receipt.files_purged += t.files_purged;
  receipt.completed_at_us = ctx.clock->NowMicros();
  const std::string json = receipt.ToJson();
  RETURN_IF_ERROR(privacy::WriteFileAtomically(
      ctx.fs, JoinPath(ctx.lake_dir, "restricted/_privacy/receipts/" + run.id + ".json"), json));
  RETURN_IF_ERROR(AppendErasureRow(ctx, conn.get(), receipt, json));
  if (ctx.on_receipt) ctx.on_receipt(receipt, json);
  NotifyReceiptListeners(receipt, json);
  spdlog::info("privacy: retention run {}: {} tables, {} files purged", run.id, receipt.tables.size(),
               receipt.files_purged);
  return receipt;
}

Result<std::map<std::string, std::pair<std::string, std::string>>> Detokenize(const std::string& lake_dir,
                                                                              engine::Database* db,
                                                                              const std::vector<std::string>& tokens) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (tokens.empty()) return out;
  auto table = delta::Table::Open(JoinPath(lake_dir, kRestrictedPiiTable), db);
  if (!table.ok()) {
    if (table.status().IsNotFound()) return out;
    return table.status();
  }
  ASSIGN_OR_RETURN(delta::Snapshot snap, (*table)->LoadSnapshot());
  if (!snap.schema().Find("token")) return out;
  ASSIGN_OR_RETURN(std::string scan, delta::ScanSql((*table)->path(), snap));
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  ASSIGN_OR_RETURN(auto r, conn->Query("SELECT token, field, value FROM (" + scan + ") WHERE token IN " + InList(tokens)));
  for (size_t i = 0; i < r.row_count(); i++) out[r.GetString(i, 0)] = {r.GetString(i, 1), r.GetString(i, 2)};
  return out;
}

void ErasureSettingsFromConfig(const Config& config, ErasureContext* context) {
  context->config = config;
  context->lake_dir = config.lake_dir();
  context->erasure_sla_us = config.GetDurationMicros("privacy.erasure_sla", 0);
  context->gold = config.GetBool("processor.gold", true);
}

}  // namespace clicklake::pipeline
