#include "privacy/privacy.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <simdjson.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/clock.h"
#include "common/json_string.h"

namespace clicklake::privacy {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void AppendStringArray(const std::vector<std::string>& values, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); i++) {
    if (i) out->push_back(',');
    AppendJsonString(values[i], out);
  }
  out->push_back(']');
}

void AddUnique(std::vector<std::string>* v, std::string value) {
  if (std::find(v->begin(), v->end(), value) == v->end()) v->push_back(std::move(value));
}

// The string array `key` of `obj` into *out (absent: nothing).
Status ReadStringArray(const simdjson::dom::object& obj, std::string_view key, std::vector<std::string>* out) {
  simdjson::dom::element e;
  if (obj.at_key(key).get(e)) return Status::OK();
  simdjson::dom::array arr;
  if (e.get(arr)) return Status::InvalidArgument(std::string(key) + " must be an array of strings");
  for (auto item : arr) {
    std::string_view s;
    if (item.get(s)) return Status::InvalidArgument(std::string(key) + " must be an array of strings");
    out->emplace_back(s);
  }
  return Status::OK();
}

}  // namespace

std::string HmacHex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return Hex(md, len);
}

std::string NewToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no entropy: never issue a guessable token
  return "tok_" + Hex(bytes, sizeof bytes);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::vector<std::string> Subject::All() const {
  std::vector<std::string> all;
  for (const auto& u : user_ids) AddUnique(&all, u);
  for (const auto& a : anonymous_ids) AddUnique(&all, a);
  for (const auto& e : emails) AddUnique(&all, Lower(e));
  return all;
}

std::string_view RegulationTypeName(RegulationType t) {
  switch (t) {
    case RegulationType::kDelete:
      return "DELETE";
    case RegulationType::kSuppress:
      return "SUPPRESS";
    case RegulationType::kSuppressWithDelete:
      return "SUPPRESS_WITH_DELETE";
    case RegulationType::kUnsuppress:
      return "UNSUPPRESS";
    case RegulationType::kRetention:
      return "RETENTION";
  }
  return "DELETE";
}

std::optional<RegulationType> ParseRegulationType(std::string_view name) {
  const std::string upper = [&] {
    std::string s(name);
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }();
  for (RegulationType t : {RegulationType::kDelete, RegulationType::kSuppress, RegulationType::kSuppressWithDelete,
                           RegulationType::kUnsuppress}) {
    if (RegulationTypeName(t) == upper) return t;
  }
  return std::nullopt;
}

std::string PrivacyRequest::ToJson() const {
  std::string out = "{\"id\":";
  AppendJsonString(id, &out);
  out += ",\"regulation_type\":";
  AppendJsonString(RegulationTypeName(type), &out);
  out += ",\"mode\":";
  out += mode == ErasureMode::kAnonymize ? "\"anonymize\"" : "\"delete\"";
  out += ",\"user_ids\":";
  AppendStringArray(subject.user_ids, &out);
  out += ",\"anonymous_ids\":";
  AppendStringArray(subject.anonymous_ids, &out);
  out += ",\"emails\":";
  AppendStringArray(subject.emails, &out);
  out += ",\"reason\":";
  AppendJsonString(reason, &out);
  out += ",\"manner\":";
  AppendJsonString(manner, &out);
  out += ",\"received_at_us\":" + std::to_string(received_at_us) + "}";
  return out;
}

Result<PrivacyRequest> PrivacyRequest::FromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(obj)) return Status::Corruption("privacy request: not a JSON object");
  PrivacyRequest r;
  std::string_view s;
  if (obj["id"].get(s)) return Status::Corruption("privacy request: no id");
  r.id = s;
  if (obj["regulation_type"].get(s)) return Status::Corruption("privacy request " + r.id + ": no regulation_type");
  auto type = ParseRegulationType(s);
  if (!type) return Status::Corruption("privacy request " + r.id + ": bad regulation_type");
  r.type = *type;
  if (!obj["mode"].get(s)) r.mode = s == "anonymize" ? ErasureMode::kAnonymize : ErasureMode::kDelete;
  RETURN_IF_ERROR(ReadStringArray(obj, "user_ids", &r.subject.user_ids));
  RETURN_IF_ERROR(ReadStringArray(obj, "anonymous_ids", &r.subject.anonymous_ids));
  RETURN_IF_ERROR(ReadStringArray(obj, "emails", &r.subject.emails));
  if (!obj["reason"].get(s)) r.reason = s;
  if (!obj["manner"].get(s)) r.manner = s;
  int64_t t;
  if (!obj["received_at_us"].get(t)) r.received_at_us = t;
  return r;
}

std::string NewRequestId(int64_t now_us) {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    for (auto& b : bytes) b = static_cast<unsigned char>(now_us >>= 3);
  }
  std::string ts = FormatTimestampMicros(now_us);  // 2024-05-01T12:00:00.123456Z
  std::string compact;
  for (char c : ts.substr(0, 19))
    if (std::isdigit(static_cast<unsigned char>(c))) compact.push_back(c);
  return "rq-" + compact + "-" + Hex(bytes, sizeof bytes);
}

Result<std::vector<PrivacyRequest>> ParseRegulation(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(body.data(), body.size()).get(doc)) {
    return Status::InvalidArgument(std::string("body is not valid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get(obj)) return Status::InvalidArgument("body must be a JSON object");
  std::string_view type_name;
  if (obj["regulationType"].get(type_name)) {
    return Status::InvalidArgument("regulationType (string) is required: SUPPRESS, DELETE, SUPPRESS_WITH_DELETE or UNSUPPRESS");
  }
  auto type = ParseRegulationType(type_name);
  if (!type) {
    return Status::InvalidArgument("regulationType " + std::string(type_name) +
                                   " is not one of SUPPRESS, DELETE, SUPPRESS_WITH_DELETE, UNSUPPRESS");
  }
  std::string reason;
  {
    simdjson::dom::element e;
    if (!obj["reason"].get(e)) {
      std::string_view s;
      if (e.get(s)) return Status::InvalidArgument("reason must be a string");
      reason = s;
    }
  }
  // clicklake's extension to both shapes: "mode": "delete" (default) or
  // "anonymize" (rows kept, identifiers replaced; DELETE and SUPPRESS_WITH_DELETE).
  ErasureMode mode = ErasureMode::kDelete;
  {
    simdjson::dom::element e;
    if (!obj["mode"].get(e)) {
      std::string_view s;
      if (e.get(s) || (s != "delete" && s != "anonymize")) {
        return Status::InvalidArgument("mode must be \"delete\" or \"anonymize\"");
      }
      mode = s == "anonymize" ? ErasureMode::kAnonymize : ErasureMode::kDelete;
    }
  }
  std::vector<PrivacyRequest> out;
  auto make = [&]() {
    PrivacyRequest r;
    r.type = *type;
    r.mode = mode;
    r.reason = reason;
    r.manner = "api";
    return r;
  };
  simdjson::dom::element users;
  if (!obj["users"].get(users)) {
    simdjson::dom::array arr;
    if (users.get(arr)) return Status::InvalidArgument("users must be an array of objects");
    for (auto u : arr) {
      simdjson::dom::object user;
      if (u.get(user)) return Status::InvalidArgument("users must be an array of objects");
      PrivacyRequest r = make();
      for (auto [key, value] : user) {
        std::string_view s;
        if (value.get(s)) return Status::InvalidArgument("users[]." + std::string(key) + " must be a string");
        if (s.empty()) return Status::InvalidArgument("users[]." + std::string(key) + " is empty");
        if (key == "userId") {
          r.subject.user_ids.emplace_back(s);
        } else if (key == "anonymousId") {
          r.subject.anonymous_ids.emplace_back(s);
        } else if (key == "email") {
          r.subject.emails.push_back(Lower(s));
        }
        // Other members (phone, name, ...) identify the user to other tools; ignored here.
      }
      if (r.subject.empty()) return Status::InvalidArgument("users[] entry names no userId, anonymousId or email");
      out.push_back(std::move(r));
      if (out.size() > kMaxSubjectsPerRequest) break;
    }
  } else {
    std::string_view subject_type;
    if (obj["subjectType"].get(subject_type)) {
      return Status::InvalidArgument("subjectType (USER_ID, ANONYMOUS_ID or EMAIL) with subjectIds, or users, is required");
    }
    const std::string st = [&] {
      std::string s(subject_type);
      for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return s;
    }();
    if (st != "USER_ID" && st != "ANONYMOUS_ID" && st != "EMAIL") {
      return Status::InvalidArgument("subjectType " + std::string(subject_type) +
                                     " is not one of USER_ID, ANONYMOUS_ID, EMAIL");
    }
    std::vector<std::string> ids;
    simdjson::dom::element e;
    if (obj["subjectIds"].get(e)) return Status::InvalidArgument("subjectIds (array of strings) is required");
    RETURN_IF_ERROR(ReadStringArray(obj, "subjectIds", &ids));
    for (auto& id : ids) {
      if (id.empty()) return Status::InvalidArgument("subjectIds holds an empty id");
      PrivacyRequest r = make();
      if (st == "USER_ID") {
        r.subject.user_ids.push_back(std::move(id));
      } else if (st == "ANONYMOUS_ID") {
        r.subject.anonymous_ids.push_back(std::move(id));
      } else {
        r.subject.emails.push_back(Lower(id));
      }
      out.push_back(std::move(r));
      if (out.size() > kMaxSubjectsPerRequest) break;
    }
  }
  if (out.empty()) return Status::InvalidArgument("the request names no subject");
  if (out.size() > kMaxSubjectsPerRequest) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxSubjectsPerRequest) + " subjects per request");
  }
  return out;
}

// ---- files ----

Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view data) {
  const std::string dir = DirName(path);
  RETURN_IF_ERROR(fs->CreateDirs(dir));
  const std::string tmp = path + ".tmp";
  RETURN_IF_ERROR(fs->WriteFile(tmp, data));
  RETURN_IF_ERROR(fs->Rename(tmp, path));
  return fs->SyncDir(dir);
}

RequestQueue::RequestQueue(std::string lake_dir, FileSystem* fs) : lake_dir_(std::move(lake_dir)), fs_(fs) {}

std::string RequestQueue::dir() const { return JoinPath(lake_dir_, "restricted/_privacy/requests"); }

Status RequestQueue::Submit(const PrivacyRequest& request) {
  return WriteFileAtomically(fs_, JoinPath(dir(), request.id + ".json"), request.ToJson());
}

Result<std::vector<PrivacyRequest>> RequestQueue::Pending() {
  std::vector<PrivacyRequest> out;
  if (!fs_->Exists(dir())) return out;
  ASSIGN_OR_RETURN(auto entries, fs_->ListDir(dir()));
  std::vector<std::string> names;
  for (const auto& e : entries) {
    if (e.name.size() > 5 && e.name.substr(e.name.size() - 5) == ".json") names.push_back(e.name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(JoinPath(dir(), n)));
    ASSIGN_OR_RETURN(PrivacyRequest r, PrivacyRequest::FromJson(text));
    out.push_back(std::move(r));
  }
  return out;
}

bool RequestQueue::IsPending(const std::string& id) { return fs_->Exists(JoinPath(dir(), id + ".json")); }

Status RequestQueue::Remove(const std::string& id) {
  // The journal first: a request file without a journal restarts cleanly.
  for (const std::string& name : {id + ".journal", id + ".json"}) {
    const std::string path = JoinPath(dir(), name);
    if (fs_->Exists(path)) RETURN_IF_ERROR(fs_->DeleteFile(path));
  }
  return fs_->SyncDir(dir());
}

Status RequestQueue::WriteJournal(const std::string& id, std::string_view content) {
  return WriteFileAtomically(fs_, JoinPath(dir(), id + ".journal"), content);
}

Result<std::optional<std::string>> RequestQueue::ReadJournal(const std::string& id) {
  const std::string path = JoinPath(dir(), id + ".journal");
  if (!fs_->Exists(path)) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(path));
  return std::optional<std::string>(std::move(text));
}

// ---- subject list ----

std::string SubjectList::Path(const std::string& lake_dir) {
  return JoinPath(lake_dir, "_clicklake/privacy/subjects.json");
}

Result<SubjectList> SubjectList::Load(const std::string& lake_dir, FileSystem* fs) {
  SubjectList list;
  const std::string path = Path(lake_dir);
  if (!fs->Exists(path)) return list;
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path));
  simdjson::dom::parser parser;
  simdjson::dom::object subjects;
  if (parser.parse(text).at_key("subjects").get(subjects)) {
    return Status::Corruption(path + ": not a subject list ({\"subjects\":{...}})");
  }
  for (auto [hmac, value] : subjects) {
    SubjectEntry e;
    bool b;
    if (!value["suppressed"].get(b)) e.suppressed = b;
    int64_t t;
    if (!value["forgotten_until_us"].get(t)) e.forgotten_until_us = t;
    std::vector<std::string> requests;
    simdjson::dom::object o;
    if (!value.get(o)) RETURN_IF_ERROR(ReadStringArray(o, "requests", &requests));
    e.requests.insert(requests.begin(), requests.end());
    list.entries_[std::string(hmac)] = std::move(e);
  }
  return list;
}

std::string SubjectList::ToJson() const {
  std::string out = "{\"subjects\":{";
  bool first = true;
  for (const auto& [hmac, e] : entries_) {
    if (!first) out += ",";
    first = false;
    AppendJsonString(hmac, &out);
    out += ":{\"suppressed\":";
    out += e.suppressed ? "true" : "false";
    if (e.forgotten_until_us) out += ",\"forgotten_until_us\":" + std::to_string(*e.forgotten_until_us);
    out += ",\"requests\":";
    AppendStringArray(std::vector<std::string>(e.requests.begin(), e.requests.end()), &out);
    out += "}";
  }
  out += "}}\n";
  return out;
}

Status SubjectList::Save(const std::string& lake_dir, FileSystem* fs) const {
  return WriteFileAtomically(fs, Path(lake_dir), ToJson());
}

Status SubjectList::Update(const std::string& lake_dir, const std::function<void(SubjectList*)>& change,
                           FileSystem* fs) {
  const std::string lock_path = JoinPath(lake_dir, "_clicklake/privacy/subjects.lock");
  RETURN_IF_ERROR(fs->CreateDirs(DirName(lock_path)));
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("open", lock_path, errno);
  if (::flock(fd, LOCK_EX) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno("flock", lock_path, err);
  }
  Status s = [&]() -> Status {
    ASSIGN_OR_RETURN(SubjectList list, Load(lake_dir, fs));
    change(&list);
    return list.Save(lake_dir, fs);
  }();
  ::close(fd);  // releases the lock
  return s;
}

void SubjectList::Apply(const PrivacyRequest& request, const std::vector<std::string>& identifiers,
                        std::string_view key) {
  for (const auto& id : identifiers) {
    const std::string h = HmacHex(key, id);
    if (request.type == RegulationType::kUnsuppress) {
      auto it = entries_.find(h);
      if (it == entries_.end()) continue;
      it->second.suppressed = false;
      it->second.requests.insert(request.id);
      if (!it->second.forgotten_until_us) entries_.erase(it);
      continue;
    }
    SubjectEntry& e = entries_[h];
    e.requests.insert(request.id);
    if (request.suppresses()) e.suppressed = true;
    if (request.deletes()) {
      e.forgotten_until_us = std::max(e.forgotten_until_us.value_or(INT64_MIN), request.received_at_us);
    }
  }
}

// Year 2286 in milliseconds: larger epoch values are not times (and would overflow in micros).
constexpr int64_t kMaxEpochMs = 10'000'000'000'000LL;

bool SubjectFilter::Drops(std::string_view payload, int64_t received_at_us) const {
  if (list_.empty()) return false;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(payload.data(), payload.size()).get(obj)) return false;
  std::vector<std::string> ids;
  auto take = [&](simdjson::dom::element e, bool lower) {
    std::string_view s;
    if (!e.get(s) && !s.empty()) ids.push_back(lower ? Lower(s) : std::string(s));
  };
  simdjson::dom::element e;
  for (const char* k : {"userId", "anonymousId", "user_id", "anonymous_id", "uid", "duid"}) {
    if (!obj[k].get(e)) take(e, false);
  }
  for (const char* path : {"/traits/email", "/context/traits/email", "/properties/email"}) {
    if (!obj.at_pointer(path).get(e)) take(e, true);
  }
  if (ids.empty()) return false;
  // Event time: the client's timestamp when it parses, else the arrival.
  int64_t event_us = received_at_us;
  for (const char* k : {"timestamp", "originalTimestamp"}) {
    std::string_view s;
    int64_t t;
    if (!obj[k].get(s) && ParseTimestampMicros(s, &t)) {
      event_us = t;
      break;
    }
  }
  {
    std::string_view dtm;  // Snowplow: epoch milliseconds as text
    int64_t ms;
    if (!obj["dtm"].get(dtm) && std::from_chars(dtm.data(), dtm.data() + dtm.size(), ms).ec == std::errc() &&
        ms > -kMaxEpochMs && ms < kMaxEpochMs) {
      event_us = ms * 1000;
    }
  }
  for (const auto& id : ids) {
    auto it = list_.entries().find(HmacHex(key_, id));
    if (it == list_.entries().end()) continue;
    const SubjectEntry& s = it->second;
    if (s.suppressed) return true;
    if (s.forgotten_until_us && (event_us <= *s.forgotten_until_us || received_at_us <= *s.forgotten_until_us)) {
      return true;
    }
  }
  return false;
}

std::string ErasureReceipt::ToJson() const {
  std::string out = "{\"request_id\":";
  AppendJsonString(request.id, &out);
  out += ",\"subject_hmac\":";
  AppendJsonString(subject_hmac, &out);
  out += ",\"request\":{\"date\":";
  AppendJsonString(FormatTimestampMicros(request.received_at_us), &out);
  out += ",\"nature\":";
  AppendJsonString(RegulationTypeName(request.type), &out);
  out += ",\"mode\":";
  out += request.mode == ErasureMode::kAnonymize ? "\"anonymize\"" : "\"delete\"";
  out += ",\"manner\":";
  AppendJsonString(request.manner, &out);
  out += ",\"reason\":";
  AppendJsonString(request.reason, &out);
  out += ",\"identifiers_named\":" + std::to_string(request.subject.All().size());
  out += "},\"response\":{\"date\":";
  AppendJsonString(FormatTimestampMicros(completed_at_us), &out);
  out += ",\"nature\":";
  std::string nature;
  if (request.deletes()) nature = request.mode == ErasureMode::kAnonymize ? "anonymized" : "deleted";
  if (request.suppresses()) nature += nature.empty() ? "suppressed" : " and suppressed";
  if (request.type == RegulationType::kUnsuppress) nature = "suppression lifted";
  if (request.type == RegulationType::kRetention) nature = "expired partitions deleted";
  AppendJsonString(nature, &out);
  out += ",\"status\":";
  AppendJsonString(status, &out);
  out += ",\"identifiers_resolved\":" + std::to_string(identifiers_resolved);
  out += ",\"state_entries_removed\":" + std::to_string(state_entries_removed);
  out += ",\"files_purged\":" + std::to_string(files_purged);
  if (purge_due_us) {
    out += ",\"purge_due\":";
    AppendJsonString(FormatTimestampMicros(*purge_due_us), &out);
  }
  out += ",\"tables\":{";
  bool first = true;
  for (const auto& [name, t] : tables) {
    if (!first) out += ",";
    first = false;
    AppendJsonString(name, &out);
    out += ":{\"rows_removed\":" + std::to_string(t.rows_removed);
    if (request.mode == ErasureMode::kAnonymize) out += ",\"rows_anonymized\":" + std::to_string(t.rows_anonymized);
    out += ",\"versions_written\":[";
    for (size_t i = 0; i < t.versions_written.size(); i++) {
      out += (i ? "," : "") + std::to_string(t.versions_written[i]);
    }
    out += "],\"files_rewritten\":" + std::to_string(t.files_rewritten) +
           ",\"files_purged\":" + std::to_string(t.files_purged) + ",\"files_read\":" + std::to_string(t.files_read) +
           "}";
  }
  out += "},\"notes\":";
  AppendStringArray(notes, &out);
  out += "}}\n";
  return out;
}

}  // namespace clicklake::privacy
