#include "activate/destinations.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "activate/responses.h"
#include "common/json_string.h"
#include "common/metrics.h"

namespace clicklake::activate {
namespace {

// ---- token buckets, shared per destination account ----

class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_) {}
  // Microseconds to wait before one request may go (0: take it now).
  int64_t Take(int64_t now_us) {
    std::lock_guard l(mu_);
    if (last_us_ == 0) last_us_ = now_us;
    tokens_ = std::min(burst_, tokens_ + (now_us - last_us_) / 1e6 * rate_);
    last_us_ = now_us;
    tokens_ -= 1;
    if (tokens_ >= 0 || rate_ <= 0) return 0;
    return static_cast<int64_t>(-tokens_ / rate_ * 1e6);
  }

 private:
  std::mutex mu_;
  const double rate_;
  const double burst_;
  double tokens_;       // GUARDED_BY(mu_); negative: requests already promised
  int64_t last_us_ = 0;  // GUARDED_BY(mu_)
};

TokenBucket* BucketFor(const std::string& key, double rate, double burst) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<TokenBucket>> buckets;  // GUARDED_BY(mu)
  std::lock_guard l(mu);
  auto& b = buckets[key + "|" + std::to_string(rate) + "|" + std::to_string(burst)];
  if (!b) b = std::make_unique<TokenBucket>(rate, burst);
  return b.get();
}


std::string Truncated(const std::string& s, size_t n = 300) { return s.size() <= n ? s : s.substr(0, n) + "…"; }

// An error for every record of a batch from one HTTP answer.
Status BatchError(const std::string& what, const HttpResponse& r) {
  return Status::InvalidArgument(what + " answered HTTP " + std::to_string(r.status) + ": " + Truncated(r.body));
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

// A destination speaking HTTP: its sync, clock and sender; batches as configured
// (SyncsFromConfig caps destination.batch_size at the API's maximum).
class HttpDestination : public Destination {
 public:
  // `account` tells rate-limit buckets apart: syncs to the same account share one.
  HttpDestination(const SyncConfig& sync, const std::string& account, Clock* clock, SendStats* stats)
      : sync_(sync), clock_(clock),
        http_(sync.destination, sync.destination.type + "|" + sync.destination.base_url + "|" + account, clock,
              stats) {}
  size_t BatchSize(const std::string&) const override { return ConfiguredBatch(); }

 protected:
  size_t ConfiguredBatch() const {
    const DestinationConfig& d = sync_.destination;
    return static_cast<size_t>(d.batch_size > 0 ? d.batch_size : d.MaxBatch());
  }
  const SyncConfig& sync_;
  Clock* clock_;
  HttpSender http_;
};

// ---- webhook ----

class WebhookDestination final : public HttpDestination {
 public:
  WebhookDestination(const SyncConfig& sync, Clock* clock, SendStats* stats)
      : HttpDestination(sync, sync.destination.path, clock, stats) {}
  Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) override {
    std::string body = "{\"type\":\"clicklake.sync.batch\",\"sync\":" + JsonString(sync_.name) +
                       ",\"mode\":" + JsonString(SyncModeName(sync_.mode)) + ",\"records\":[";
    // The id is derived from the content: a batch sent again (a retry, or the
    // same rows after a crash) carries the same webhook-id, for receivers to dedupe.
    std::string content;
    for (size_t i = 0; i < batch.size(); i++) {
      const OutRecord& r = batch[i];
      body += (i ? "," : "");
      body += "{\"op\":" + JsonString(WireOp(r.op)) + ",\"key\":" + JsonString(r.key);
      if (!r.user_key.empty()) body += ",\"user_key\":" + JsonString(r.user_key);
      if (r.op != "remove") body += ",\"fields\":" + r.fields;
      body += "}";
      content += r.op + '\x1f' + r.key + '\x1f' + r.fields + '\x1e';
    }
    body += "]}";
    const std::string id = "msg_" + Sha256Hex(sync_.name + '\x1d' + content).substr(0, 32);
    const int64_t ts = clock_->NowMicros() / 1'000'000;
    ASSIGN_OR_RETURN(std::string signature, WebhookSignature(sync_.destination.secret, id, ts, body));
    ASSIGN_OR_RETURN(HttpResponse r, http_.Send("POST", sync_.destination.path.empty() ? "/" : sync_.destination.path,
                                                {{"webhook-id", id},
                                                 {"webhook-timestamp", std::to_string(ts)},
                                                 {"webhook-signature", signature}},
                                                body));
    if (!Is2xx(r.status)) return BatchError("webhook", r);
    outcomes->assign(batch.size(), RecordOutcome{true, ""});
    // Optional per-record refusals; a 2xx answer that is not JSON refuses nothing.
    auto refused = ParseWebhookErrors(r.body);
    if (!refused.ok()) return Status::OK();
    for (size_t i = 0; i < batch.size(); i++) {
      auto it = refused->find(batch[i].key);
      if (it != refused->end()) (*outcomes)[i] = {false, "webhook: " + it->second};
    }
    return Status::OK();
  }

 private:
  std::string WireOp(const std::string& op) const {
    switch (sync_.mode) {
      case SyncMode::kUpdate: return "update";
      case SyncMode::kAudience: return op == "remove" ? "remove" : "add";
      default: return op == "remove" ? "delete" : "upsert";
    }
  }
};

// ---- HubSpot CRM v3 ----

// Looks a key up among HubSpot's answer's keys: exactly, else (fold_case)
// lower-cased: HubSpot stores emails lower-cased.
template <typename V>
const V* FindKey(const std::map<std::string, V>& m, const std::string& key, bool fold_case) {
  auto it = m.find(key);
  if (it == m.end() && fold_case) {
    std::string lower = key;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    it = m.find(lower);
  }
  return it == m.end() ? nullptr : &it->second;
}

class HubSpotDestination final : public HttpDestination {
 public:
  HubSpotDestination(const SyncConfig& sync, Clock* clock, SendStats* stats)
      : HttpDestination(sync, Sha256Hex(sync.destination.token), clock, stats) {}
  Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) override {
    if (batch[0].op == "remove") return Archive(batch, outcomes);
    const DestinationConfig& d = sync_.destination;
    std::string body = "{\"inputs\":[";
    for (size_t i = 0; i < batch.size(); i++) {
      body += (i ? "," : "");
      body += "{\"idProperty\":" + JsonString(d.id_property) + ",\"id\":" + JsonString(batch[i].key) +
              ",\"properties\":" + batch[i].fields + "}";
    }
    body += "]}";
    const std::string verb = sync_.mode == SyncMode::kUpdate ? "update" : "upsert";
    ASSIGN_OR_RETURN(HttpResponse r, Post(verb, body));
    if (!Is2xx(r.status)) return BatchError("HubSpot", r);
    outcomes->assign(batch.size(), RecordOutcome{true, ""});
    auto parsed = ParseHubSpotBatchResult(r.body, d.id_property);
    if (!parsed.ok() || parsed->errors.empty()) return Status::OK();
    // 207 multi-status: each error names the inputs it concerns; an error
    // naming none fails the inputs absent from results.
    std::map<std::string, std::string> refused;
    const HubSpotError* unattributed = nullptr;
    for (const HubSpotError& e : parsed->errors) {
      for (const std::string& id : e.ids) refused[id] = e.Text();
      if (e.ids.empty()) unattributed = &e;
    }
    for (size_t i = 0; i < batch.size(); i++) {
      if (const std::string* why = FindKey(refused, batch[i].key, FoldCase())) (*outcomes)[i] = {false, *why};
      else if (unattributed && !FindKey(parsed->records, batch[i].key, FoldCase())) (*outcomes)[i] = {false, unattributed->Text()};
    }
    return Status::OK();
  }

 private:
  bool FoldCase() const { return sync_.destination.id_property == "email"; }
  Result<HttpResponse> Post(const std::string& verb, const std::string& body) {
    const DestinationConfig& d = sync_.destination;
    return http_.Send("POST", "/crm/v3/objects/" + d.object + "/batch/" + verb,
                      {{"Authorization", "Bearer " + d.token}}, body);
  }

  // Mirror deletes: batch archive takes HubSpot's record ids, so the keys
  // (id_property values) are resolved with batch read first. A key HubSpot
  // does not know (OBJECT_NOT_FOUND, or simply absent from the results) is
  // already gone: confirmed without an archive.
  Status Archive(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) {
    const DestinationConfig& d = sync_.destination;
    std::string body = "{\"idProperty\":" + JsonString(d.id_property) + ",\"properties\":[" +
                       JsonString(d.id_property) + "],\"inputs\":[";
    for (size_t i = 0; i < batch.size(); i++) body += (i ? "," : "") + std::string("{\"id\":") + JsonString(batch[i].key) + "}";
    body += "]}";
    ASSIGN_OR_RETURN(HttpResponse read, Post("read", body));
    if (!Is2xx(read.status)) return BatchError("HubSpot batch/read", read);
    ASSIGN_OR_RETURN(HubSpotBatchResult found, ParseHubSpotBatchResult(read.body, d.id_property));
    std::map<std::string, std::string> refused;  // key → error, other than not found
    const HubSpotError* unattributed = nullptr;
    for (const HubSpotError& e : found.errors) {
      if (e.category == "OBJECT_NOT_FOUND") continue;
      for (const std::string& id : e.ids) refused[id] = e.Text();
      if (e.ids.empty()) unattributed = &e;
    }
    outcomes->assign(batch.size(), RecordOutcome{true, ""});
    std::vector<size_t> to_archive;
    std::string inputs;
    std::set<std::string> ids;
    for (size_t i = 0; i < batch.size(); i++) {
      const std::string* id = FindKey(found.records, batch[i].key, FoldCase());
      if (const std::string* why = FindKey(refused, batch[i].key, FoldCase())) {
        (*outcomes)[i] = {false, *why};
      } else if (id && !id->empty()) {
        to_archive.push_back(i);
        if (ids.insert(*id).second) inputs += (inputs.empty() ? "" : ",") + std::string("{\"id\":") + JsonString(*id) + "}";
      } else if (id || unattributed) {
        (*outcomes)[i] = {false, id ? "HubSpot batch/read: no record id for the key" : unattributed->Text()};
      }
    }
    if (to_archive.empty()) return Status::OK();
    auto archived = Post("archive", "{\"inputs\":[" + inputs + "]}");
    std::string error;
    if (!archived.ok()) error = archived.status().message();
    else if (!Is2xx(archived->status)) error = BatchError("HubSpot batch/archive", *archived).message();
    if (!error.empty()) {
      for (size_t i : to_archive) (*outcomes)[i] = {false, error};
    }
    return Status::OK();
  }
};

// ---- Braze /users/track, /users/delete ----

class BrazeDestination final : public HttpDestination {
 public:
  BrazeDestination(const SyncConfig& sync, Clock* clock, SendStats* stats)
      : HttpDestination(sync, Sha256Hex(sync.destination.token), clock, stats) {}
  size_t BatchSize(const std::string& op) const override {
    // /users/track: 75 attributes (and 75 events) per request; /users/delete: 50 ids.
    return op == "remove" && sync_.mode == SyncMode::kMirror ? std::min<size_t>(50, ConfiguredBatch())
                                                             : ConfiguredBatch();
  }
  Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) override {
    const DestinationConfig& d = sync_.destination;
    const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + d.token}};
    if (sync_.mode == SyncMode::kMirror && batch[0].op == "remove") {
      std::string body = "{\"external_ids\":[";
      for (size_t i = 0; i < batch.size(); i++) body += (i ? "," : "") + JsonString(batch[i].key);
      body += "]}";
      ASSIGN_OR_RETURN(HttpResponse r, http_.Send("POST", "/users/delete", auth, body));
      if (!Is2xx(r.status)) return BatchError("Braze /users/delete", r);
      outcomes->assign(batch.size(), RecordOutcome{true, ""});
      return Status::OK();
    }
    const std::string attribute = d.audience_attribute.empty() ? sync_.name : d.audience_attribute;
    std::string attributes, events;
    const std::string now = FormatTimestampMicros(clock_->NowMicros());
    for (size_t i = 0; i < batch.size(); i++) {
      const OutRecord& r = batch[i];
      std::string obj = "{\"external_id\":" + JsonString(r.key);
      if (sync_.mode == SyncMode::kAudience) {
        obj += "," + JsonString(attribute) + ":" + (r.op == "remove" ? "false" : "true");
      } else if (r.fields.size() > 2) {
        obj += "," + r.fields.substr(1, r.fields.size() - 2);  // the mapped attributes, inline
      }
      if (sync_.mode == SyncMode::kUpdate) obj += ",\"_update_existing_only\":true";
      obj += "}";
      attributes += (i ? "," : "") + obj;
      if (!d.event_name.empty() && r.op != "remove") {
        events += (events.empty() ? "" : ",") + std::string("{\"external_id\":") + JsonString(r.key) +
                  ",\"name\":" + JsonString(d.event_name) + ",\"time\":" + JsonString(now) + "}";
      }
    }
    std::string body = "{\"attributes\":[" + attributes + "]";
    if (!events.empty()) body += ",\"events\":[" + events + "]";
    body += "}";
    ASSIGN_OR_RETURN(HttpResponse r, http_.Send("POST", "/users/track", auth, body));
    if (!Is2xx(r.status)) return BatchError("Braze /users/track", r);
    outcomes->assign(batch.size(), RecordOutcome{true, ""});
    // Non-fatal errors: {"message":"success","errors":[{"type":..,"input_array":"attributes","index":i}]}.
    auto parsed = ParseBrazeResult(r.body);
    if (!parsed.ok()) return Status::OK();
    if (!parsed->message.empty() && parsed->message != "success") {
      return Status::InvalidArgument("Braze /users/track: " + parsed->message);
    }
    for (const BrazeError& e : parsed->errors) {
      if (static_cast<size_t>(e.index) >= batch.size()) continue;
      // An event's index is its record's only when every record has an event.
      if (e.array == "events" && d.event_name.empty()) continue;
      (*outcomes)[static_cast<size_t>(e.index)] = {false, "Braze " + e.array + ": " + e.type};
    }
    return Status::OK();
  }

};

// Hashed identifiers of an ad-platform record: {"email": hex, "phone": hex}.
struct Identifiers {
  std::string email, phone;
  bool empty() const { return email.empty() && phone.empty(); }
};
Identifiers ParseIdentifiers(const std::string& fields) {
  Identifiers out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(fields).get(doc)) return out;
  std::string_view v;
  if (!doc["email"].get(v)) out.email = std::string(v);
  if (!doc["phone"].get(v)) out.phone = std::string(v);
  return out;
}

// One audience operation: add or remove a member's identifiers, for record `record` of a batch.
struct Member {
  size_t record;
  bool remove;
  Identifiers ids;
};

// The operations of a batch: each record's member, and separately the removal
// of the identifiers a changed member no longer has (its old email or phone).
void BatchMembers(const std::vector<OutRecord>& batch, std::vector<Member>* members, std::vector<Member>* stale) {
  for (size_t i = 0; i < batch.size(); i++) {
    const OutRecord& r = batch[i];
    members->push_back({i, r.op == "remove", ParseIdentifiers(r.fields)});
    if (r.op != "change" || r.old_fields.empty()) continue;
    const Identifiers now = members->back().ids, before = ParseIdentifiers(r.old_fields);
    Identifiers gone;
    if (before.email != now.email) gone.email = before.email;
    if (before.phone != now.phone) gone.phone = before.phone;
    if (!gone.empty()) stale->push_back({i, true, gone});
  }
}

// Sends `stale` removals, then `members`: a record whose stale removal fails
// stays failed (and pending, with its old identifiers) even if its add went through.
template <typename SendFn>
Status SendAudienceBatch(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes, SendFn send) {
  std::vector<Member> members, stale;
  BatchMembers(batch, &members, &stale);
  outcomes->assign(batch.size(), RecordOutcome{true, ""});
  if (!stale.empty()) {
    std::vector<RecordOutcome> removed(batch.size(), RecordOutcome{true, ""});
    Status s = send(stale, &removed);
    for (const Member& m : stale) {
      if (!s.ok()) (*outcomes)[m.record] = {false, "removing old identifiers: " + s.message()};
      else if (!removed[m.record].ok) (*outcomes)[m.record] = {false, "removing old identifiers: " + removed[m.record].error};
    }
  }
  std::vector<RecordOutcome> sent(batch.size(), RecordOutcome{true, ""});
  RETURN_IF_ERROR(send(members, &sent));
  for (size_t i = 0; i < batch.size(); i++)
    if (!sent[i].ok) (*outcomes)[i] = sent[i];
  return Status::OK();
}

// ---- Google Ads Customer Match (OfflineUserDataJobService) ----

class GoogleAdsDestination final : public HttpDestination {
 public:
  GoogleAdsDestination(const SyncConfig& sync, Clock* clock, SendStats* stats)
      : HttpDestination(sync, sync.destination.customer_id, clock, stats) {}
  Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) override {
    return SendAudienceBatch(batch, outcomes, [this](const std::vector<Member>& m, std::vector<RecordOutcome>* o) {
      return RunJob(m, o);
    });
  }

 private:
  // One job: create, addOperations, run. The operations are confirmed once the
  // job runs; a job interrupted before that never applies anything.
  Status RunJob(const std::vector<Member>& members, std::vector<RecordOutcome>* outcomes) {
    const DestinationConfig& d = sync_.destination;
    const std::string version = d.api_version.empty() ? "v17" : d.api_version;
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + d.token},
                                                                {"developer-token", d.developer_token}};
    if (!d.login_customer_id.empty()) headers.push_back({"login-customer-id", d.login_customer_id});
    const std::string create_body =
        "{\"job\":{\"type\":\"CUSTOMER_MATCH_USER_LIST\",\"customerMatchUserListMetadata\":{\"userList\":" +
        JsonString("customers/" + d.customer_id + "/userLists/" + d.user_list_id) + "}}}";
    ASSIGN_OR_RETURN(HttpResponse created, http_.Send("POST", "/" + version + "/customers/" + d.customer_id +
                                                                  "/offlineUserDataJobs:create",
                                                      headers, create_body));
    if (!Is2xx(created.status)) return BatchError("Google Ads offlineUserDataJobs:create", created);
    auto job_name = ParseGoogleAdsJobName(created.body);
    if (!job_name.ok()) return Status::InvalidArgument(job_name.status().message() + ": " + Truncated(created.body));
    const std::string job = *job_name;
    std::string body = "{\"enablePartialFailure\":true,\"operations\":[";
    for (size_t i = 0; i < members.size(); i++) {
      const Identifiers& ids = members[i].ids;
      std::string list;
      if (!ids.email.empty()) list += "{\"hashedEmail\":" + JsonString(ids.email) + "}";
      if (!ids.phone.empty()) list += (list.empty() ? "" : ",") + std::string("{\"hashedPhoneNumber\":") +
                                      JsonString(ids.phone) + "}";
      body += (i ? "," : "");
      body += std::string("{\"") + (members[i].remove ? "remove" : "create") + "\":{\"userIdentifiers\":[" + list +
              "]}}";
    }
    body += "]}";
    ASSIGN_OR_RETURN(HttpResponse added, http_.Send("POST", "/" + version + "/" + job + ":addOperations", headers, body));
    if (!Is2xx(added.status)) return BatchError("Google Ads addOperations", added);
    if (auto failures = ParseGoogleAdsPartialFailures(added.body); failures.ok()) {
      for (const auto& [index, message] : *failures) {
        if (static_cast<size_t>(index) < members.size())
          (*outcomes)[members[static_cast<size_t>(index)].record] = {false, "Google Ads: " + message};
      }
    }
    ASSIGN_OR_RETURN(HttpResponse ran, http_.Send("POST", "/" + version + "/" + job + ":run", headers, "{}"));
    if (!Is2xx(ran.status)) return BatchError("Google Ads offlineUserDataJobs:run", ran);
    return Status::OK();
  }
};

// ---- Meta Custom Audiences ----

class MetaDestination final : public HttpDestination {
 public:
  MetaDestination(const SyncConfig& sync, Clock* clock, SendStats* stats)
      : HttpDestination(sync, sync.destination.audience_id, clock, stats) {}
  Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) override {
    return SendAudienceBatch(batch, outcomes, [this](const std::vector<Member>& m, std::vector<RecordOutcome>* o) {
      return SendUsers(m, o);
    });
  }

 private:
  // POST adds, DELETE removes (the members of one call are all one or the other).
  Status SendUsers(const std::vector<Member>& members, std::vector<RecordOutcome>* outcomes) {
    const DestinationConfig& d = sync_.destination;
    std::string data, content;
    std::map<std::string, std::vector<size_t>> by_hash;
    for (size_t i = 0; i < members.size(); i++) {
      const Identifiers& ids = members[i].ids;
      data += (i ? "," : "") + std::string("[") + JsonString(ids.email) + "," + JsonString(ids.phone) + "]";
      content += (members[i].remove ? "remove" : "add") + ids.email + ids.phone;
      if (!ids.email.empty()) by_hash[ids.email].push_back(members[i].record);
      if (!ids.phone.empty()) by_hash[ids.phone].push_back(members[i].record);
    }
    // session_id from the content: the same batch sent again is the same session.
    const uint64_t session = std::stoull(Sha256Hex(sync_.name + content).substr(0, 15), nullptr, 16);
    const std::string body = "{\"payload\":{\"schema\":[\"EMAIL\",\"PHONE\"],\"data\":[" + data +
                             "]},\"session\":{\"session_id\":" + std::to_string(session) +
                             ",\"batch_seq\":1,\"last_batch_flag\":true,\"estimated_num_total\":" +
                             std::to_string(members.size()) + "}}";
    const std::string version = d.api_version.empty() ? "v19.0" : d.api_version;
    ASSIGN_OR_RETURN(HttpResponse r, http_.Send(members[0].remove ? "DELETE" : "POST",
                                                "/" + version + "/" + d.audience_id + "/users",
                                                {{"Authorization", "Bearer " + d.token}}, body));
    if (!Is2xx(r.status)) return BatchError("Meta custom audience", r);
    // invalid_entry_samples: {"<hashed value>": "reason", ...}
    auto samples = ParseMetaInvalidEntries(r.body);
    if (!samples.ok()) return Status::OK();
    for (const auto& [value, why] : *samples) {
      auto it = by_hash.find(value);
      if (it == by_hash.end()) continue;
      for (size_t i : it->second) (*outcomes)[i] = {false, "Meta: " + why};
    }
    return Status::OK();
  }
};

}  // namespace

// ---- HttpSender ----

struct HttpSender::Impl {
  DestinationConfig config;
  Clock* clock;
  SendStats* stats;
  TokenBucket* bucket;
  std::unique_ptr<httplib::Client> client;
  std::mt19937_64 rng{std::random_device{}()};
  Counter* requests_ok = nullptr;
};

HttpSender::HttpSender(const DestinationConfig& config, std::string bucket_key, Clock* clock, SendStats* stats)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->clock = clock;
  impl_->stats = stats;
  impl_->bucket = BucketFor(bucket_key, config.rate_per_s, config.burst);
  impl_->client = std::make_unique<httplib::Client>(config.base_url);
  const int64_t t = config.timeout_us;
  impl_->client->set_connection_timeout(t / 1'000'000, t % 1'000'000);
  impl_->client->set_read_timeout(t / 1'000'000, t % 1'000'000);
  impl_->client->set_write_timeout(t / 1'000'000, t % 1'000'000);
  impl_->client->set_keep_alive(true);
  impl_->client->set_tcp_nodelay(true);  // else Nagle + delayed ACKs cost ~40 ms a request
}

HttpSender::~HttpSender() = default;

Result<HttpResponse> HttpSender::Send(const std::string& method, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      const std::string& body) {
  Impl& s = *impl_;
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  h.emplace("User-Agent", "clicklake-activate");
  std::string last_error;
  for (int attempt = 0;; attempt++) {
    if (int64_t wait = s.bucket->Take(s.clock->MonotonicMicros()); wait > 0) s.clock->SleepForMicros(wait);
    s.stats->requests++;
    httplib::Result res = method == "DELETE" ? s.client->Delete(path, h, body, "application/json")
                                             : s.client->Post(path, h, body, "application/json");
    int64_t wait_us = -1;
    if (!res) {
      last_error = "request failed (" + httplib::to_string(res.error()) + ")";
    } else {
      MetricsRegistry::Global()
          ->GetCounter("clicklake_activate_requests_total", "Requests sent to sync destinations, by answer.",
                       {{"destination", s.config.type}, {"code", std::to_string(res->status)}})
          ->Increment();
      if (res->status != 429 && res->status < 500) return HttpResponse{res->status, res->body};
      last_error = "HTTP " + std::to_string(res->status) + ": " + Truncated(res->body, 200);
      if ((res->status == 429 || res->status == 503) && res->has_header("Retry-After")) {
        wait_us = ParseRetryAfter(res->get_header_value("Retry-After"), s.clock->NowMicros()).value_or(-1);
      }
    }
    if (attempt >= s.config.max_retries) {
      return Status::Unavailable(s.config.type + " " + path + ": gave up after " + std::to_string(attempt + 1) +
                                 " attempts; last: " + last_error);
    }
    if (wait_us < 0) {
      // Exponential backoff with full jitter in [delay/2, delay].
      const double delay = std::min<double>(static_cast<double>(s.config.backoff_max_us),
                                            static_cast<double>(s.config.backoff_base_us) * std::pow(2.0, attempt));
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      wait_us = static_cast<int64_t>(delay * jitter(s.rng));
    }
    wait_us = std::min(wait_us, s.config.backoff_max_us);
    s.stats->retries++;
    s.stats->retry_wait_us += wait_us;
    spdlog::warn("activate: {} {}: {}; retry {} in {} ms", s.config.type, path, last_error, attempt + 1,
                 wait_us / 1000);
    s.clock->SleepForMicros(wait_us);
  }
}

int64_t DestinationConfig::MaxBatch() const {
  if (type == "hubspot") return 100;
  if (type == "braze") return 75;
  if (type == "google_ads" || type == "meta") return 10000;
  return 1000;
}

Result<std::unique_ptr<Destination>> MakeDestination(const SyncConfig& sync, Clock* clock, SendStats* stats) {
  const std::string& t = sync.destination.type;
  if (t == "webhook") return std::unique_ptr<Destination>(new WebhookDestination(sync, clock, stats));
  if (t == "hubspot") return std::unique_ptr<Destination>(new HubSpotDestination(sync, clock, stats));
  if (t == "braze") return std::unique_ptr<Destination>(new BrazeDestination(sync, clock, stats));
  if (t == "google_ads") return std::unique_ptr<Destination>(new GoogleAdsDestination(sync, clock, stats));
  if (t == "meta") return std::unique_ptr<Destination>(new MetaDestination(sync, clock, stats));
  return Status::InvalidArgument("unknown destination type '" + t + "'");
}

std::string Base64Encode(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return Status::InvalidArgument("not base64 (length)");
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return Status::InvalidArgument("not base64");
  size_t pad = 0;
  if (text.back() == '=') pad++;
  if (text.size() > 1 && text[text.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<std::string> WebhookSignature(const std::string& secret, const std::string& id, int64_t timestamp_s,
                                     const std::string& body) {
  if (secret.rfind("whsec_", 0) != 0) {
    return Status::InvalidArgument("webhook secret must be \"whsec_\" followed by base64 of the key");
  }
  auto key = Base64Decode(secret.substr(6));
  if (!key.ok() || key->empty()) return Status::InvalidArgument("webhook secret: the part after whsec_ is not base64");
  const std::string content = id + "." + std::to_string(timestamp_s) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &len);
  return "v1," + Base64Encode(std::string(reinterpret_cast<char*>(mac), len));
}

}  // namespace clicklake::activate
