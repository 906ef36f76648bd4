#include "pipeline/silver.h"
#include "privacy/privacy.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <re2/re2.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>
#include <variant>

#include "common/json_string.h"
#include "common/clock.h"
#include "common/file_system.h"
#include "common/raw_event.h"
#include "engine/engine.h"
#include "enrich/enrich.h"

namespace clicklake::pipeline {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

const char kHex[] = "0123456789abcdef";

// Records per unit of BuildBatch's parallel phase: large enough that handing
// chunks out costs nothing, small enough that a few in flight stay a few MB.
constexpr size_t kPrepareChunkRecords = 1024;

std::string ToHex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; i++) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool LuhnValid(std::string_view digits) {
  int sum = 0;
  bool dbl = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

const RE2& EmailPattern() {
  static const RE2 re("([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,})");
  return re;
}


// Identify/group traits whose whole value is personal data.
bool IsPersonalTrait(std::string_view key) {
  static const char* kKeys[] = {"email", "phone", "name", "first_name", "last_name", "firstName", "lastName",
                                "address", "street", "birthday", "mobile"};
  for (const char* k : kKeys)
    if (key == k) return true;
  return false;
}

// Writes `e` as JSON with string values scrubbed; `traits` hashes personal
// traits whole, and so are the values of members named in `restricted` (the
// policy's restricted fields of this kind of event, whose raw values go to
// restricted.pii only).
void WriteScrubbed(element e, const std::string& key, bool traits, std::string_view member, std::string* out,
                   int64_t* redactions, const std::vector<std::string>& restricted) {
  const bool whole = std::find(restricted.begin(), restricted.end(), member) != restricted.end();
  switch (e.type()) {
    case element_type::OBJECT: {
      out->push_back('{');
      bool first = true;
      for (auto [k, v] : e.get_object()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(k, out);
        out->push_back(':');
        WriteScrubbed(v, key, traits, k, out, redactions, restricted);
      }
      out->push_back('}');
      return;
    }
    case element_type::ARRAY: {
      out->push_back('[');
      bool first = true;
      for (element v : e.get_array()) {
        if (!first) out->push_back(',');
        first = false;
        WriteScrubbed(v, key, traits, member, out, redactions, restricted);
      }
      out->push_back(']');
      return;
    }
    case element_type::STRING: {
      std::string_view s = e.get_string().value();
      if (((traits && IsPersonalTrait(member)) || whole) && !s.empty()) {
        AppendJsonString("hmac:" + HmacSha256Hex(key, s), out);
        ++*redactions;
        return;
      }
      std::string scrubbed;
      int n = ScrubPii(s, key, &scrubbed);
      *redactions += n;
      AppendJsonString(n > 0 ? std::string_view(scrubbed) : s, out);
      return;
    }
    default:
      if (whole && !e.is_null()) {
        AppendJsonString("hmac:" + HmacSha256Hex(key, simdjson::minify(e)), out);
        ++*redactions;
        return;
      }
      *out += simdjson::minify(e);
  }
}

using PropValue = std::variant<std::string, double, bool>;

// A scalar leaf of `properties`: its prop_<snake_path> column, JSON path, type
// (string, double or boolean) and value.
struct PropLeaf {
  std::string column;
  std::string path;
  const char* type;
  PropValue value;
};

// Collects the scalar leaves of `e` (arrays and nulls stay in `properties`).
void CollectLeaves(element e, const std::string& column, const std::string& json_path, int depth,
                   std::vector<PropLeaf>* out) {
  switch (e.type()) {
    case element_type::OBJECT:
      if (depth >= 4) return;
      for (auto [k, v] : e.get_object()) {
        if (depth == 0) {
          static const char* kKnown[] = {"revenue", "currency", "url", "path", "title", "referrer",
                                         "experiment_id", "experiment_variant"};
          bool known = false;
          for (const char* kk : kKnown) known = known || k == kk;
          if (known) continue;
        }
        if (k.find('"') != std::string_view::npos || k.find('\\') != std::string_view::npos) continue;
        std::string part = CanonicalEventName(k);
        if (part.empty()) continue;
        CollectLeaves(v, column + "_" + part, json_path + ".\"" + std::string(k) + "\"", depth + 1, out);
      }
      return;
    case element_type::STRING:
      out->push_back({column, json_path, "string", std::string(e.get_string().value())});
      return;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: out->push_back({column, json_path, "double", e.get_double().value()}); return;
    case element_type::BOOL: out->push_back({column, json_path, "boolean", e.get_bool().value()}); return;
    default: return;
  }
}

// A flattened column in this batch: the JSON path its values come from (the
// first one seen in the batch), whether silver.events already has it, and its
// values by silver row (ascending rows; for a column the table has, only the
// current row's, appended with the row).
struct BatchPropColumn {
  std::string path;
  bool in_table = false;
  std::vector<std::pair<int64_t, PropValue>> values;
};

Status AppendPropValue(engine::Appender* app, const PropValue& v) {
  if (const auto* text = std::get_if<std::string>(&v)) return app->AppendString(*text);
  if (const auto* number = std::get_if<double>(&v)) return app->AppendDouble(*number);
  return app->AppendBool(std::get<bool>(v));
}

const char* PropSqlType(const std::string& type) {
  return type == "string" ? "VARCHAR" : type == "double" ? "DOUBLE" : "BOOLEAN";
}

std::string DefaultKeyPath() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.clicklake/pii.key";
}

// Appender helpers for optional values.
Status AppendOpt(engine::Appender* app, const std::optional<std::string>& v) {
  return v ? app->AppendString(*v) : app->AppendNull();
}
Status AppendOptTs(engine::Appender* app, const std::optional<int64_t>& v) {
  return v ? app->AppendTimestampMicros(*v) : app->AppendNull();
}

// `s` if it is valid UTF-8 (what DuckDB accepts), else a copy in `*scratch`
// with '?' for its non-ASCII bytes.
std::string_view ValidUtf8(std::string_view s, std::string* scratch) {
  if (simdjson::validate_utf8(s.data(), s.size())) return s;
  scratch->clear();
  for (unsigned char c : s) scratch->push_back(c < 0x80 ? static_cast<char>(c) : '?');
  return *scratch;
}


// ---- BuildBatch, phase 1: each record on its own, on any thread ----

// What phase 1 made of one log record: everything phase 2 needs, owned
// (nothing points into the parsers of the thread that prepared it).
struct PreparedRecord {
  bool decoded = false;  // a RawEvent; else quarantined as undecodable
  int64_t received_at_us = 0;
  // Non-empty: the event belongs in quarantine (a parse error or its contract).
  std::string error_code;
  std::string error_detail;
  std::optional<int64_t> contract_version;

  // A valid event. ev.properties and ev.root are cleared (they pointed into
  // the parser).
  CanonicalEvent ev;
  std::string source;
  enrich::Enrichment en;  // with context.campaign as the fallback for UTM parameters
  std::optional<std::string> page_path;
  std::optional<std::string> referrer_host;
  std::optional<std::string> user_key;
  std::optional<std::string> ip_hash;
  std::string props;  // `properties` as stored: JSON with PII scrubbed
  int64_t redactions = 0;
  // The raw values of the restricted fields: "traits.<name>" or "properties.<name>", value;
  // and per entry the token that replaced it in `props` ("" when hashed).
  std::vector<std::pair<std::string, std::string>> restricted;
  std::vector<std::string> restricted_tokens;
  // When `properties` is an object: its scalar leaves as received (they decide
  // the columns), and, when scrubbing replaced something, those of the stored
  // JSON (they give the values; scrubbed_ok = false if it does not parse).
  bool properties_object = false;
  std::vector<PropLeaf> leaves;
  bool scrubbed_ok = false;
  std::vector<PropLeaf> scrubbed_leaves;
};

// One thread's parsers and scratch space for phase 1.
struct PrepareWorkspace {
  explicit PrepareWorkspace(const ParseOptions& options) : parser(options) {}
  EventParser parser;
  simdjson::dom::parser scrubbed_parser;
  RawEvent raw;
  CanonicalEvent ev;
  ParseError error;
};

// Phase 1 of one record: decode, parse, contract, enrichment, PII scrubbing
// and flattening. Reads only immutable state, so any number of threads may
// call Prepare at once (each with its own workspace).
struct RecordPreparer {
  const ContractRegistry& contracts;
  const enrich::Enricher& enricher;
  const std::string& pii_key;
  const std::vector<std::string>& restricted_traits;
  const std::vector<std::string>& restricted_properties;
  const std::set<std::string>& tokenized;

  void Prepare(const log::LogRecord& r, PrepareWorkspace* ws, PreparedRecord* p) const {
    *p = PreparedRecord{};
    if (!DecodeRawEvent(r.value, &ws->raw).ok()) return;
    p->decoded = true;
    p->received_at_us = ws->raw.received_at_us;
    CanonicalEvent& ev = ws->ev;
    std::string ingest_id = std::to_string(r.partition) + "-" + std::to_string(r.offset);
    if (!ws->parser.Parse(ws->raw, ingest_id, &ev, &ws->error)) {
      p->error_code = std::move(ws->error.code);
      p->error_detail = std::move(ws->error.detail);
      return;
    }
    if (const Contract* contract = contracts.Find(ev.event_name)) {
      std::string violation = ContractRegistry::Validate(*contract, ev.has_properties ? &ev.properties : nullptr);
      if (!violation.empty()) {
        p->error_code = "schema_violation";
        p->error_detail = std::move(violation);
        p->contract_version = contract->version;
        return;
      }
    }

    enrich::EventContext ctx;
    if (ev.user_agent) ctx.user_agent = *ev.user_agent;
    if (ev.ip) ctx.client_ip = *ev.ip;
    if (ev.page_url) ctx.page_url = *ev.page_url;
    if (ev.referrer_url) ctx.referrer_url = *ev.referrer_url;
    enrich::Enrichment& en = p->en;
    en = enricher.Enrich(ctx, ev.root);
    // Snowplow and other flat payloads: experiments in the properties.
    if (!en.experiment.experiment_id && ev.has_properties)
      en.experiment = enrich::ExtractExperiment(enricher.experiment_paths(), ev.properties);

    const bool traits = ev.event_type == "identify" || ev.event_type == "group";
    const std::vector<std::string>& restricted_keys = traits ? restricted_traits : restricted_properties;
    if (ev.has_properties) {
      WriteScrubbed(ev.properties, pii_key, traits, "", &p->props, &p->redactions, restricted_keys);
      // Raw values the policy keeps: restricted.pii only.
      for (const auto& name : restricted_keys) {
        element v;
        if (!ev.properties.is_object() || ev.properties[name].get(v) || v.is_null()) continue;
        std::string_view text;
        std::string value = v.get_string().get(text) ? simdjson::minify(v) : std::string(text);
        if (value.empty()) continue;
        std::string field = (traits ? "traits." : "properties.") + name;
        std::string token;
        if (tokenized.count(field) && !v.get_string().get(text)) {
          // Tokenized: the stored JSON holds a random token instead of the hash.
          const std::string hashed = JsonString("hmac:" + HmacSha256Hex(pii_key, value));
          token = privacy::NewToken();
          for (size_t at = p->props.find(hashed); at != std::string::npos; at = p->props.find(hashed, at + 1)) {
            p->props.replace(at, hashed.size(), JsonString(token));
          }
        }
        p->restricted.emplace_back(std::move(field), std::move(value));
        p->restricted_tokens.push_back(std::move(token));
      }
    }
    if (ev.has_properties && ev.properties.is_object()) {
      p->properties_object = true;
      CollectLeaves(ev.properties, "prop", "$", 0, &p->leaves);
      // The column values are those of `properties` as stored (scrubbed). Only
      // when scrubbing replaced something do they differ from the leaves above.
      element scrubbed;
      if (!p->leaves.empty() && p->redactions > 0) {
        p->scrubbed_ok = !ws->scrubbed_parser.parse(p->props).get(scrubbed);
        if (p->scrubbed_ok) CollectLeaves(scrubbed, "prop", "$", 0, &p->scrubbed_leaves);
      }
    }

    // Campaign: the page URL's UTM parameters, else context.campaign.
    enrich::PageInfo& page = en.page;
    if (!page.utm_source && !page.utm_medium && !page.utm_campaign &&
        (ev.campaign_source || ev.campaign_medium || ev.campaign_name)) {
      page.utm_source = ev.campaign_source;
      page.utm_medium = ev.campaign_medium;
      page.utm_campaign = ev.campaign_name;
      page.utm_term = ev.campaign_term;
      page.utm_content = ev.campaign_content;
      page.campaign_id = enrich::CampaignId(page.utm_source, page.utm_medium, page.utm_campaign);
    }
    p->page_path = ev.page_path ? ev.page_path : page.page_path;
    if (ev.referrer_url) {
      p->referrer_host =
          enrich::ClassifyReferrer(*ev.referrer_url, page.host.value_or(""), page.utm_medium).referrer_host;
    }
    p->user_key = ev.user_id ? ev.user_id : std::optional<std::string>("anon:" + *ev.anonymous_id);
    if (ev.ip) p->ip_hash = HmacSha256Hex(pii_key, *ev.ip);
    p->source = ws->raw.source;
    ev.properties = element();
    ev.root = element();
    p->ev = std::move(ev);
  }
};

// Runs phase 1 over a batch in chunks of records on `threads` threads:
// threads − 1 workers, and the consumer, which prepares chunks itself while
// the one it needs next is not ready. Chunks are claimed in order, and at most
// `slots` of them are prepared ahead of the consumer, which bounds memory.
//
// Thread safety: Next and Release are for the one consumer thread; the
// destructor stops the workers (each finishes its chunk) and joins them.
class ChunkPreparer {
 public:
  // Fills `out` with the prepared records of chunk `chunk`, using workspace
  // `workspace` (0 for the consumer, 1.. for the workers).
  using PrepareFn = std::function<void(size_t chunk, int workspace, std::vector<PreparedRecord>* out)>;

  ChunkPreparer(size_t chunks, int threads, PrepareFn prepare)
      : chunks_(chunks), prepare_(std::move(prepare)), slots_(std::max(2, 2 * threads)) {
    for (int i = 1; i < threads; i++) {
      try {
        workers_.emplace_back([this, i] { RunWorker(i); });
      } catch (const std::system_error& e) {  // fewer workers; the consumer does the rest
        spdlog::warn("silver build: cannot start a worker thread ({}); going on with {}", e.what(), i);
        break;
      }
    }
  }

  ~ChunkPreparer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    changed_.notify_all();
    for (auto& t : workers_) t.join();
  }

  ChunkPreparer(const ChunkPreparer&) = delete;
  ChunkPreparer& operator=(const ChunkPreparer&) = delete;

  // Chunk `k`'s records, prepared, or the error preparing them met. Valid
  // until Release(k). REQUIRES: k = 0, 1, 2, … in turn, each released before the next.
  Result<std::vector<PreparedRecord>*> Next(size_t k) {
    std::unique_lock<std::mutex> lock(mu_);
    Slot& slot = slots_[k % slots_.size()];
    while (!slot.ready) {
      if (CanClaim()) {
        Prepare(next_claim_++, 0, &lock);
      } else {
        changed_.wait(lock);
      }
    }
    if (!slot.status.ok()) return slot.status;
    return &slot.records;
  }

  void Release(size_t k) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      slots_[k % slots_.size()].ready = false;
      released_ = k + 1;
    }
    changed_.notify_all();
  }

 private:
  struct Slot {
    std::vector<PreparedRecord> records;  // written by the thread that claimed the chunk, then by the consumer
    Status status;
    bool ready = false;  // GUARDED_BY(mu_)
  };

  bool CanClaim() const { return next_claim_ < chunks_ && next_claim_ < released_ + slots_.size(); }  // REQUIRES: mu_

  // Prepares `chunk` outside the lock. REQUIRES: *lock holds mu_, and `chunk` was just claimed.
  void Prepare(size_t chunk, int workspace, std::unique_lock<std::mutex>* lock) {
    Slot& slot = slots_[chunk % slots_.size()];
    lock->unlock();
    Status status;
    try {
      prepare_(chunk, workspace, &slot.records);
    } catch (const std::exception& e) {  // e.g. bad_alloc: an error of the batch, not a crash of the process
      status = Status::Internal(std::string("silver build: preparing records failed: ") + e.what());
    }
    lock->lock();
    slot.status = std::move(status);
    slot.ready = true;
    changed_.notify_all();
  }

  void RunWorker(int workspace) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_ && next_claim_ < chunks_) {
      if (CanClaim()) {
        Prepare(next_claim_++, workspace, &lock);
      } else {
        changed_.wait(lock);
      }
    }
  }

  const size_t chunks_;
  const PrepareFn prepare_;
  std::mutex mu_;
  std::condition_variable changed_;
  size_t next_claim_ = 0;  // GUARDED_BY(mu_): chunks below it are claimed
  size_t released_ = 0;    // GUARDED_BY(mu_): chunks below it are consumed
  bool stop_ = false;      // GUARDED_BY(mu_)
  std::vector<Slot> slots_;
  std::vector<std::thread> workers_;
};

}  // namespace

delta::Schema SilverEventsSchema() {
  delta::Schema s;
  auto str = [](const char* n) { return delta::Field{n, "string", true}; };
  s.fields = {
      {"event_id", "string", false},
      {"event_type", "string", false},
      {"event_name", "string", false},
      {"event_ts", "timestamp", false},
      {"original_ts", "timestamp", true},
      {"sent_at", "timestamp", true},
      {"received_at", "timestamp", false},
      {"event_date", "date", false},
      str("user_id"),
      str("anonymous_id"),
      str("user_key"),
      str("session_id"),
      {"session_event_index", "long", true},
      str("platform"),
      str("page_url"),
      str("page_path"),
      str("page_title"),
      str("referrer_url"),
      str("referrer_host"),
      str("utm_source"),
      str("utm_medium"),
      str("utm_campaign"),
      str("utm_term"),
      str("utm_content"),
      str("campaign_id"),
      str("experiment_id"),
      str("experiment_variant"),
      str("device_type"),
      str("device_family"),
      str("browser_family"),
      str("browser_version"),
      str("os_family"),
      str("os_version"),
      str("geo_country"),
      str("geo_region"),
      str("geo_city"),
      str("ip_hash"),
      {"revenue", "double", true},
      str("currency"),
      str("properties"),
      str("source"),
      {"log_partition", "integer", false},
      {"log_offset", "long", false},
      {"is_future_dated", "boolean", true},
      {"is_late", "boolean", true},
  };
  return s;
}

delta::Schema RestrictedPiiSchema() {
  delta::Schema s;
  s.fields = {
      {"event_id", "string", false}, {"user_key", "string", true},       {"event_date", "date", false},
      {"field", "string", false},    {"value", "string", true},          {"received_at", "timestamp", false},
      {"token", "string", true},  // privacy.tokenize_fields: the token Silver holds instead of the value
  };
  return s;
}

delta::Schema QuarantineSchema() {
  delta::Schema s;
  s.fields = {
      {"ingest_id", "string", false},  {"received_at", "timestamp", false}, {"event_date", "date", false},
      {"source", "string", true},      {"protocol", "string", true},        {"client_ip", "string", true},
      {"user_agent", "string", true},  {"payload", "string", true},         {"log_partition", "integer", false},
      {"log_offset", "long", false},   {"received_date", "date", false},    {"error_code", "string", false},
      {"error_detail", "string", true}, {"contract_version", "long", true},
  };
  return s;
}

SilverOptions SilverOptions::FromConfig(const Config& config) {
  SilverOptions o;
  o.parse = ParseOptions::FromConfig(config);
  o.dedup_window_us = config.GetDurationMicros("silver.dedup_window", o.dedup_window_us);
  o.session_timeout_us = config.GetDurationMicros("silver.session_timeout", o.session_timeout_us);
  o.quarantine_threshold = config.GetDouble("silver.quarantine_threshold", o.quarantine_threshold);
  o.quarantine_min_batch = config.GetInt("silver.quarantine_min_batch", o.quarantine_min_batch);
  o.pii_key_file = config.GetString("privacy.key_file", "");
  o.max_prop_columns = config.GetInt("silver.max_prop_columns", o.max_prop_columns);
  o.threads = static_cast<int>(config.GetInt("processor.threads", o.threads));
  if (config.Has("privacy.restricted_fields")) {
    o.restricted_fields.clear();
    for (const auto& f : config.GetStringList("privacy.restricted_fields"))
      if (!f.empty() && f != "none") o.restricted_fields.push_back(f);
  }
  for (const auto& f : config.GetStringList("privacy.tokenize_fields"))
    if (!f.empty() && f != "none") o.tokenize_fields.push_back(f);
  return o;
}

std::string HmacSha256Hex(const std::string& key, std::string_view data) {
  // A keyed context per thread, copied for each message: the one-shot HMAC()
  // looks the algorithm up and sets the key up again on every call (3x the
  // cost for an IP address).
  struct Keyed {
    std::string key;
    EVP_MAC* mac = nullptr;
    EVP_MAC_CTX* ctx = nullptr;
    ~Keyed() {
      EVP_MAC_CTX_free(ctx);
      EVP_MAC_free(mac);
    }
  };
  thread_local Keyed keyed;
  if (!keyed.ctx || keyed.key != key) {
    EVP_MAC_CTX_free(keyed.ctx);
    keyed.ctx = nullptr;
    if (!keyed.mac) keyed.mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* ctx = keyed.mac ? EVP_MAC_CTX_new(keyed.mac) : nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (ctx && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params)) {
      keyed.ctx = ctx;
      keyed.key = key;
    } else {
      EVP_MAC_CTX_free(ctx);
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t len = 0;
  EVP_MAC_CTX* c = keyed.ctx ? EVP_MAC_CTX_dup(keyed.ctx) : nullptr;
  const bool ok = c && EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(data.data()), data.size()) &&
                  EVP_MAC_final(c, md, &len, sizeof md);
  EVP_MAC_CTX_free(c);
  if (!ok) {  // the one-shot function, which has no way to report a failure either
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), md, &n);
    len = n;
  }
  return ToHex(md, len);
}

int ScrubPii(std::string_view text, const std::string& key, std::string* out) {
  out->clear();
  int replaced = 0;
  // Most values have neither an '@' nor a digit: nothing to look for.
  const bool has_at = text.find('@') != std::string_view::npos;
  if (!has_at && std::none_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    out->assign(text);
    return 0;
  }
  // Pass 1: emails (RE2).
  std::string pass1;
  if (!has_at) {
    pass1.assign(text);
  } else {
    re2::StringPiece input(text.data(), text.size());
    re2::StringPiece match;
    size_t pos = 0;
    while (pos < text.size() &&
           EmailPattern().Match(input, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
      size_t start = static_cast<size_t>(match.data() - text.data());
      pass1.append(text.substr(pos, start - pos));
      std::string lower(match.data(), match.size());
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      pass1 += "hmac:" + HmacSha256Hex(key, lower);
      replaced++;
      pos = start + match.size();
    }
    if (replaced == 0) pass1.assign(text);
    else pass1.append(text.substr(std::min(pos, text.size())));
  }
  // Pass 2: digit runs (cards, phones) that do not touch a word character.
  const std::string& s = pass1;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    bool starts = (std::isdigit(static_cast<unsigned char>(c)) ||
                   ((c == '+' || c == '(') && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) &&
                  (i == 0 || !IsWordChar(s[i - 1]));
    if (!starts) {
      out->push_back(c);
      i++;
      continue;
    }
    size_t j = i;
    std::string digits;
    bool separators = false;
    while (j < s.size()) {
      char d = s[j];
      if (std::isdigit(static_cast<unsigned char>(d))) {
        digits.push_back(d);
      } else if (d == ' ' || d == '-' || d == '.' || d == '(' || d == ')' || (d == '+' && j == i)) {
        // A separator only continues the run when a digit follows soon.
        if (!(j + 1 < s.size() && (std::isdigit(static_cast<unsigned char>(s[j + 1])) || s[j + 1] == '(' ||
                                   (d == ')' && s[j + 1] == ' ')))) break;
        separators = separators || d != '+';
      } else {
        break;
      }
      j++;
    }
    size_t end = j;
    while (end > i && !std::isdigit(static_cast<unsigned char>(s[end - 1]))) end--;
    bool word_after = end < s.size() && IsWordChar(s[end]);
    bool card = digits.size() >= 13 && digits.size() <= 19 && LuhnValid(digits);
    bool phone = digits.size() >= 10 && digits.size() <= 15 && (separators || s[i] == '+');
    if (!word_after && (card || phone)) {
      *out += "hmac:" + HmacSha256Hex(key, digits);
      replaced++;
      i = end;
    } else {
      out->append(s, i, end - i);
      i = end == i ? i + 1 : end;
    }
  }
  return replaced;
}

Result<std::string> LoadPiiKey(const SilverOptions& options) {
  return LoadOrCreatePiiKey(options.pii_key_file.empty() ? DefaultKeyPath() : options.pii_key_file);
}

Result<std::string> LoadOrCreatePiiKey(const std::string& path) {
  FileSystem* fs = FileSystem::Default();
  if (!fs->Exists(path)) {
    spdlog::warn("privacy: no PII key at {}; creating one (0600). Keep it outside the lake and back it up: "
                 "hashed identifiers cannot be matched without it",
                 path);
    RETURN_IF_ERROR(fs->CreateDirs(DirName(path)));
    ::chmod(DirName(path).c_str(), 0700);
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) return Status::Internal("no randomness for the PII key");
    mode_t old = ::umask(077);
    Status s = fs->WriteFile(path, ToHex(key, sizeof key) + "\n");
    ::umask(old);
    RETURN_IF_ERROR(s);
    if (::chmod(path.c_str(), 0600) != 0) return Status::FromErrno("chmod", path, errno);
  }
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty()) return Status::InvalidArgument("PII key file " + path + " is empty");
  bool hex = text.size() % 2 == 0;
  for (char c : text) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
  if (!hex) return text;
  std::string key;
  for (size_t i = 0; i < text.size(); i += 2) key.push_back(static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16)));
  return key;
}

SilverStage::~SilverStage() = default;

Result<std::unique_ptr<SilverStage>> SilverStage::Open(const Config& config, const std::string& lake_dir) {
  std::unique_ptr<SilverStage> s(new SilverStage());
  s->options_ = SilverOptions::FromConfig(config);
  for (const auto& f : s->options_.tokenize_fields) {
    s->tokenized_.insert(f);
    // Tokenized values are kept like restricted ones (raw only in restricted.pii).
    if (std::find(s->options_.restricted_fields.begin(), s->options_.restricted_fields.end(), f) ==
        s->options_.restricted_fields.end()) {
      s->options_.restricted_fields.push_back(f);
    }
  }
  for (const auto& f : s->options_.restricted_fields) {
    if (f.rfind("traits.", 0) == 0 && f.size() > 7) {
      s->restricted_traits_.push_back(f.substr(7));
    } else if (f.rfind("properties.", 0) == 0 && f.size() > 11) {
      s->restricted_properties_.push_back(f.substr(11));
    } else {
      return Status::InvalidArgument("privacy.restricted_fields: '" + f +
                                     "' is not traits.<name> or properties.<name>");
    }
  }
  ASSIGN_OR_RETURN(s->contracts_, ContractRegistry::FromConfig(config));
  ASSIGN_OR_RETURN(enrich::EnrichOptions eo, enrich::EnrichOptionsFromConfig(config));
  ASSIGN_OR_RETURN(s->enricher_, enrich::Enricher::Open(eo));
  ASSIGN_OR_RETURN(s->pii_key_, LoadOrCreatePiiKey(s->options_.pii_key_file.empty() ? DefaultKeyPath()
                                                                                     : s->options_.pii_key_file));
  std::string state_dir = JoinPath(lake_dir, "_clicklake/state");
  RETURN_IF_ERROR(FileSystem::Default()->CreateDirs(state_dir));
  ASSIGN_OR_RETURN(s->dedup_, DedupStore::Open(JoinPath(state_dir, "dedup"), s->options_.dedup_window_us));
  return s;
}

Result<SilverBatchStats> SilverStage::BuildBatch(engine::Connection* conn, const std::vector<log::LogRecord>& records,
                                                 int64_t batch_id, const delta::Schema* silver_schema) {
  SilverBatchStats stats;
  // prop columns: name → type, existing ones from the table; batch_props: used by this batch → JSON path.
  std::map<std::string, std::string> prop_types;
  int64_t prop_count = 0;
  if (silver_schema) {
    for (const auto& f : silver_schema->fields) {
      if (f.name.rfind("prop_", 0) == 0) {
        prop_types[f.name] = f.type;
        prop_count++;
      }
    }
  }
  std::map<std::string, BatchPropColumn> batch_props;
  // silver_rows: the batch's rows with the prop_ columns silver.events has
  // (appended with each row); columns new in this batch are collected and
  // added at the end (silver_props), when the batch's set of them is known.
  std::vector<BatchPropColumn*> table_columns;
  std::string table_columns_ddl;
  for (const auto& [column, type] : prop_types) {
    BatchPropColumn& col = batch_props[column];
    col.in_table = true;
    table_columns.push_back(&col);
    table_columns_ddl += ", " + engine::QuoteIdentifier(column) + " " + PropSqlType(type);
  }
  const int64_t started_us = SystemClock()->MonotonicMicros();
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE silver_rows (event_id VARCHAR, event_type VARCHAR, event_name VARCHAR, "
      "event_ts TIMESTAMP, original_ts TIMESTAMP, sent_at TIMESTAMP, received_at TIMESTAMP, event_date DATE, "
      "user_id VARCHAR, anonymous_id VARCHAR, user_key VARCHAR, session_id VARCHAR, session_event_index BIGINT, "
      "platform VARCHAR, page_url VARCHAR, page_path VARCHAR, page_title VARCHAR, referrer_url VARCHAR, "
      "referrer_host VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR, utm_term VARCHAR, "
      "utm_content VARCHAR, campaign_id VARCHAR, experiment_id VARCHAR, experiment_variant VARCHAR, "
      "device_type VARCHAR, device_family VARCHAR, browser_family VARCHAR, browser_version VARCHAR, "
      "os_family VARCHAR, os_version VARCHAR, geo_country VARCHAR, geo_region VARCHAR, geo_city VARCHAR, "
      "ip_hash VARCHAR, revenue DOUBLE, currency VARCHAR, properties VARCHAR, source VARCHAR, "
      "log_partition INTEGER, log_offset BIGINT, is_future_dated BOOLEAN, is_late BOOLEAN" + table_columns_ddl + ");"
      "CREATE OR REPLACE TABLE quarantine_reasons (log_partition INTEGER, log_offset BIGINT, "
      "error_code VARCHAR, error_detail VARCHAR, contract_version BIGINT);"
      "CREATE OR REPLACE TABLE restricted_batch (event_id VARCHAR, user_key VARCHAR, event_date DATE, "
      "field VARCHAR, value VARCHAR, received_at TIMESTAMP, token VARCHAR);"));
  ASSIGN_OR_RETURN(auto rows, conn->CreateAppender("", "silver_rows"));
  ASSIGN_OR_RETURN(auto restricted, conn->CreateAppender("", "restricted_batch"));
  ASSIGN_OR_RETURN(auto reasons, conn->CreateAppender("", "quarantine_reasons"));
  dedup_->BeginBatch(batch_id);
  RETURN_IF_ERROR(dedup_->LoadWatermark());

  std::string utf8_scratch;
  auto valid = [&](std::string_view text) { return ValidUtf8(text, &utf8_scratch); };
  auto quarantine = [&](const log::LogRecord& r, const std::string& code, const std::string& detail,
                        std::optional<int64_t> version) -> Status {
    stats.quarantined++;
    stats.quarantine_by_code[code]++;
    RETURN_IF_ERROR(reasons->AppendInt32(r.partition));
    RETURN_IF_ERROR(reasons->AppendInt64(r.offset));
    RETURN_IF_ERROR(reasons->AppendString(code));
    RETURN_IF_ERROR(reasons->AppendString(valid(detail)));
    RETURN_IF_ERROR(version ? reasons->AppendInt64(*version) : reasons->AppendNull());
    return reasons->EndRow();
  };

  // Phase 1 (ChunkPreparer, any thread): each record on its own. Phase 2
  // (here, in log order): all that depends on the records before — dedup
  // (the first received wins), the watermark, prop_ columns and their types —
  // and the rows, in the order of a single-threaded pass.
  int threads = options_.threads > 0 ? options_.threads : static_cast<int>(std::thread::hardware_concurrency());
  const size_t chunks = (records.size() + kPrepareChunkRecords - 1) / kPrepareChunkRecords;
  threads = static_cast<int>(std::min<size_t>(std::max(threads, 1), std::max<size_t>(chunks, 1)));
  std::vector<std::unique_ptr<PrepareWorkspace>> workspaces;
  for (int i = 0; i < threads; i++) workspaces.push_back(std::make_unique<PrepareWorkspace>(options_.parse));
  const RecordPreparer preparer{contracts_, *enricher_, pii_key_, restricted_traits_, restricted_properties_,
                                tokenized_};
  ChunkPreparer prepared(chunks, threads, [&](size_t chunk, int workspace, std::vector<PreparedRecord>* out) {
    const size_t begin = chunk * kPrepareChunkRecords;
    const size_t end = std::min(records.size(), begin + kPrepareChunkRecords);
    out->resize(end - begin);
    for (size_t i = begin; i < end; i++) preparer.Prepare(records[i], workspaces[workspace].get(), &(*out)[i - begin]);
  });

  for (size_t chunk = 0; chunk < chunks; chunk++) {
    ASSIGN_OR_RETURN(std::vector<PreparedRecord>* chunk_records, prepared.Next(chunk));
    const size_t begin = chunk * kPrepareChunkRecords;
    for (size_t i = 0; i < chunk_records->size(); i++) {
      const log::LogRecord& r = records[begin + i];
      PreparedRecord& p = (*chunk_records)[i];
      if (!p.decoded) {
        RETURN_IF_ERROR(quarantine(r, "undecodable", "the log record is not a RawEvent", std::nullopt));
        continue;
      }
      stats.newest_received_at_us = std::max(stats.newest_received_at_us, p.received_at_us);
      if (!p.error_code.empty()) {
        RETURN_IF_ERROR(quarantine(r, p.error_code, p.error_detail, p.contract_version));
        continue;
      }
      CanonicalEvent& ev = p.ev;
      ASSIGN_OR_RETURN(bool duplicate, dedup_->CheckAndAdd(ev.event_id, ev.event_ts));
      if (duplicate) {
        stats.duplicates++;
        continue;
      }
      // Late: older than allowed_lateness behind the newest event time seen so
      // far (over the committed batches, then this batch in log order).
      ev.late = dedup_->watermark() != INT64_MIN &&
                ev.event_ts < dedup_->watermark() - options_.parse.allowed_lateness_us;
      dedup_->AdvanceWatermark(ev.event_ts);

      for (size_t ri = 0; ri < p.restricted.size(); ri++) {
        const auto& [field, value] = p.restricted[ri];
        RETURN_IF_ERROR(restricted->AppendString(valid(ev.event_id)));
        RETURN_IF_ERROR(restricted->AppendString(
            valid(ev.user_id ? *ev.user_id : "anon:" + ev.anonymous_id.value_or(""))));
        RETURN_IF_ERROR(restricted->AppendDate(static_cast<int32_t>(MicrosToDays(ev.event_ts))));
        RETURN_IF_ERROR(restricted->AppendString(field));
        RETURN_IF_ERROR(restricted->AppendString(valid(value)));
        RETURN_IF_ERROR(restricted->AppendTimestampMicros(ev.received_at));
        const std::string& token = p.restricted_tokens[ri];
        RETURN_IF_ERROR(token.empty() ? restricted->AppendNull() : restricted->AppendString(token));
        RETURN_IF_ERROR(restricted->EndRow());
        stats.restricted_rows++;
      }
      stats.pii_redactions += p.redactions;
      if (p.properties_object) {
        bool any = false;
        for (const PropLeaf& leaf : p.leaves) {
          if (leaf.column.size() > 128) continue;
          auto it = prop_types.find(leaf.column);
          if (it == prop_types.end()) {
            if (prop_count >= options_.max_prop_columns) continue;
            it = prop_types.emplace(leaf.column, leaf.type).first;
            prop_count++;
            stats.new_prop_columns.push_back({leaf.column, leaf.type, true});
          }
          if (it->second != leaf.type) {
            stats.prop_type_conflicts++;
            continue;
          }
          BatchPropColumn& col = batch_props[leaf.column];
          if (col.path.empty()) col.path = leaf.path;
          any = true;
        }
        // The values: a value at the column's path whose JSON type is the
        // column's, in `properties` as stored.
        bool take_values = any;
        std::vector<PropLeaf>* value_leaves = &p.leaves;
        if (any && p.redactions > 0) {
          take_values = p.scrubbed_ok;
          value_leaves = &p.scrubbed_leaves;
        }
        if (take_values) {
          for (PropLeaf& leaf : *value_leaves) {
            auto col = batch_props.find(leaf.column);
            if (col == batch_props.end() || col->second.path != leaf.path ||
                prop_types.at(leaf.column) != leaf.type) {
              continue;
            }
            auto& values = col->second.values;
            if (!values.empty() && values.back().first == stats.silver_rows) continue;  // the first of duplicate keys
            values.emplace_back(stats.silver_rows, std::move(leaf.value));
          }
        }
      }
      if (ev.future_dated) stats.future_dated++;
      if (ev.late) stats.late++;

      const enrich::Enrichment& en = p.en;
      const enrich::PageInfo& page = en.page;
      const enrich::UserAgent& ua = en.user_agent;
      auto* a = rows.get();
      RETURN_IF_ERROR(a->AppendString(valid(ev.event_id)));
      RETURN_IF_ERROR(a->AppendString(ev.event_type));
      RETURN_IF_ERROR(a->AppendString(valid(ev.event_name)));
      RETURN_IF_ERROR(a->AppendTimestampMicros(ev.event_ts));
      RETURN_IF_ERROR(AppendOptTs(a, ev.original_ts));
      RETURN_IF_ERROR(AppendOptTs(a, ev.sent_at));
      RETURN_IF_ERROR(a->AppendTimestampMicros(ev.received_at));
      RETURN_IF_ERROR(a->AppendDate(static_cast<int32_t>(MicrosToDays(ev.event_ts))));
      RETURN_IF_ERROR(AppendOpt(a, ev.user_id));
      RETURN_IF_ERROR(AppendOpt(a, ev.anonymous_id));
      RETURN_IF_ERROR(AppendOpt(a, p.user_key));
      RETURN_IF_ERROR(a->AppendNull());  // session_id
      RETURN_IF_ERROR(a->AppendNull());  // session_event_index
      RETURN_IF_ERROR(a->AppendString(ev.platform));
      RETURN_IF_ERROR(AppendOpt(a, ev.page_url));
      RETURN_IF_ERROR(AppendOpt(a, p.page_path));
      RETURN_IF_ERROR(AppendOpt(a, ev.page_title));
      RETURN_IF_ERROR(AppendOpt(a, ev.referrer_url));
      RETURN_IF_ERROR(AppendOpt(a, p.referrer_host));
      RETURN_IF_ERROR(AppendOpt(a, page.utm_source));
      RETURN_IF_ERROR(AppendOpt(a, page.utm_medium));
      RETURN_IF_ERROR(AppendOpt(a, page.utm_campaign));
      RETURN_IF_ERROR(AppendOpt(a, page.utm_term));
      RETURN_IF_ERROR(AppendOpt(a, page.utm_content));
      RETURN_IF_ERROR(AppendOpt(a, page.campaign_id));
      RETURN_IF_ERROR(AppendOpt(a, en.experiment.experiment_id));
      RETURN_IF_ERROR(AppendOpt(a, en.experiment.experiment_variant));
      bool has_ua = ev.user_agent.has_value();
      RETURN_IF_ERROR(has_ua ? a->AppendString(enrich::DeviceTypeName(ua.device_type)) : a->AppendNull());
      RETURN_IF_ERROR(has_ua ? AppendOpt(a, ua.device_family) : a->AppendNull());
      RETURN_IF_ERROR(has_ua ? AppendOpt(a, ua.ua_family) : a->AppendNull());
      RETURN_IF_ERROR(has_ua ? AppendOpt(a, ua.BrowserVersion()) : a->AppendNull());
      RETURN_IF_ERROR(has_ua ? AppendOpt(a, ua.os_family) : a->AppendNull());
      RETURN_IF_ERROR(has_ua ? AppendOpt(a, ua.OsVersion()) : a->AppendNull());
      RETURN_IF_ERROR(AppendOpt(a, en.geo.country));
      RETURN_IF_ERROR(AppendOpt(a, en.geo.region));
      RETURN_IF_ERROR(AppendOpt(a, en.geo.city));
      RETURN_IF_ERROR(AppendOpt(a, p.ip_hash));
      RETURN_IF_ERROR(ev.revenue ? a->AppendDouble(*ev.revenue) : a->AppendNull());
      RETURN_IF_ERROR(AppendOpt(a, ev.currency));
      RETURN_IF_ERROR(ev.has_properties ? a->AppendString(valid(p.props)) : a->AppendNull());
      RETURN_IF_ERROR(a->AppendString(valid(p.source)));
      RETURN_IF_ERROR(a->AppendInt32(r.partition));
      RETURN_IF_ERROR(a->AppendInt64(r.offset));
      RETURN_IF_ERROR(a->AppendBool(ev.future_dated));
      RETURN_IF_ERROR(a->AppendBool(ev.late));
      for (BatchPropColumn* col : table_columns) {
        if (col->values.empty()) {
          RETURN_IF_ERROR(a->AppendNull());
          continue;
        }
        RETURN_IF_ERROR(AppendPropValue(a, col->values.back().second));
        col->values.clear();
      }
      RETURN_IF_ERROR(a->EndRow());
      stats.silver_rows++;
    }
    prepared.Release(chunk);
  }
  RETURN_IF_ERROR(rows->Close());
  RETURN_IF_ERROR(reasons->Close());
  RETURN_IF_ERROR(restricted->Close());
  const int64_t parsed_us = SystemClock()->MonotonicMicros();
  // silver_batch: a view of silver_rows; with columns new in this batch,
  // silver_props holds them row by row as silver_rows, and silver_batch is a
  // view of the two side by side (a positional join: no copy of the rows).
  std::vector<std::pair<const std::string*, const BatchPropColumn*>> new_columns;
  for (const auto& [column, col] : batch_props) {
    if (!col.in_table && !col.path.empty()) new_columns.emplace_back(&column, &col);
  }
  if (new_columns.empty()) {
    RETURN_IF_ERROR(conn->Execute(
        "CREATE OR REPLACE VIEW silver_batch AS SELECT * FROM silver_rows; DROP TABLE IF EXISTS silver_props"));
  } else {
    // Only the rows holding a value of a new column, keyed by their row
    // number in silver_rows (its rowid: the table is new and only appended
    // to, in this order): joined by hash, the view scans in parallel, which a
    // positional join does not (nor tells DuckDB its size).
    std::string ddl = "silver_row BIGINT";
    for (const auto& [column, col] : new_columns) {
      ddl += ", " + engine::QuoteIdentifier(*column) + " " + PropSqlType(prop_types[*column]);
    }
    RETURN_IF_ERROR(conn->Execute("CREATE OR REPLACE TABLE silver_props (" + ddl + ")"));
    ASSIGN_OR_RETURN(auto props_app, conn->CreateAppender("", "silver_props"));
    std::vector<size_t> next(new_columns.size(), 0);
    for (int64_t row = 0; row < stats.silver_rows; row++) {
      bool any = false;
      for (size_t i = 0; i < new_columns.size() && !any; i++) {
        const auto& values = new_columns[i].second->values;
        any = next[i] < values.size() && values[next[i]].first == row;
      }
      if (!any) continue;
      RETURN_IF_ERROR(props_app->AppendInt64(row));
      for (size_t i = 0; i < new_columns.size(); i++) {
        const auto& values = new_columns[i].second->values;
        size_t& k = next[i];
        if (k < values.size() && values[k].first == row) {
          RETURN_IF_ERROR(AppendPropValue(props_app.get(), values[k++].second));
        } else {
          RETURN_IF_ERROR(props_app->AppendNull());
        }
      }
      RETURN_IF_ERROR(props_app->EndRow());
    }
    RETURN_IF_ERROR(props_app->Close());
    RETURN_IF_ERROR(conn->Execute(
        "CREATE OR REPLACE VIEW silver_batch AS SELECT r.*, p.* EXCLUDE (silver_row) "
        "FROM silver_rows r LEFT JOIN silver_props p ON r.rowid = p.silver_row"));
  }
  const int64_t props_us = SystemClock()->MonotonicMicros();
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE quarantine_batch AS SELECT b.*, b.event_date AS received_date, q.error_code, "
      "q.error_detail, q.contract_version FROM bronze_batch b JOIN quarantine_reasons q "
      "USING (log_partition, log_offset)"));
  enricher_->PublishMetrics(MetricsRegistry::Global());
  spdlog::info("silver build: {} rows, {} new prop columns; parse+enrich {:.0f} ms, new prop columns {:.0f} ms, "
               "quarantine {:.0f} ms",
               stats.silver_rows, new_columns.size(), (parsed_us - started_us) / 1000.0, (props_us - parsed_us) / 1000.0,
               (SystemClock()->MonotonicMicros() - props_us) / 1000.0);
  return stats;
}

Status SilverStage::CommitState(const SilverBatchStats& stats) { return dedup_->CommitBatch(stats.newest_received_at_us); }

}  // namespace clicklake::pipeline
