// The policy file: principals, roles, rules, masks (see access.h).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "common/logging.h"
#include "governance/access/access.h"

namespace clicklake::access {
namespace {

const char kDefaultPolicy[] = R"toml(# clicklake access policy: principals → roles; rules per role and table.
# Rules are tried in order; the first whose role and table pattern match
# decides ('*' matches any run of characters); no match = no access.
# A rule: privileges (["select"], or [] to deny), columns (allowed; absent =
# all), deny_columns, masks = { column = "redact|null|hash|email_sha256|last4|
# truncate_ip|year_only" }, row_filter (SQL over the table's columns;
# ${attr} expands to the principal's attribute values as a list of literals).
#
# Principals:
# [[principals]]
# name = "mia"
# role = "marketing"
# token_sha256 = ["<sha256 hex of the token>"]   # clicklake access token
# password = "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
# attributes = { regions = "US,CA" }
# disabled = false

# admin: everything.
[[rules]]
role = "admin"
table = "*"

# The PII service: the restricted zone (reverse ETL, detokenisation).
[[rules]]
role = "pii_service"
table = "restricted.*"

# Nobody else reads restricted.* raw; the audit trail is admin's.
[[rules]]
role = "data_engineer"
table = "restricted.*"
privileges = []

[[rules]]
role = "data_engineer"
table = "system.audit"
privileges = []

# Data engineers run the pipeline: every layer, raw payloads redacted, IPs truncated.
[[rules]]
role = "data_engineer"
table = "bronze.*"
masks = { payload = "redact", client_ip = "truncate_ip" }

[[rules]]
role = "data_engineer"
table = "silver.quarantine"
masks = { payload = "redact", client_ip = "truncate_ip" }

[[rules]]
role = "data_engineer"
table = "*"

# Analysts: Silver and Gold with identities pseudonymised; no raw layer.
[[rules]]
role = "analyst"
table = "silver.events"
masks = { user_id = "hash", anonymous_id = "hash", user_key = "hash" }
deny_columns = ["ip_hash", "properties"]

[[rules]]
role = "analyst"
table = "gold.*"
masks = { user_key = "hash" }

[[rules]]
role = "analyst"
table = "system.batches"

# Marketing: campaigns and traffic in its regions; people only as hashed emails.
[[rules]]
role = "marketing"
table = "silver.events"
columns = ["event_id", "event_type", "event_name", "event_ts", "event_date", "user_id", "session_id",
           "platform", "page_path", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term",
           "utm_content", "campaign_id", "experiment_id", "experiment_variant", "device_type", "geo_country",
           "geo_region", "revenue", "currency"]
masks = { user_id = "hash" }
row_filter = "geo_country IN (${regions})"

[[rules]]
role = "marketing"
table = "restricted.pii"
columns = ["user_key", "field", "value", "event_date"]
masks = { user_key = "hash", value = "email_sha256" }
row_filter = "field = 'traits.email'"

[[rules]]
role = "marketing"
table = "gold.fact_session_daily"
masks = { user_key = "hash" }
row_filter = "geo_country IN (${regions})"

[[rules]]
role = "marketing"
table = "gold.fact_funnel_daily"

[[rules]]
role = "marketing"
table = "gold.dim_campaign"

# Finance: revenue, no PII.
[[rules]]
role = "finance"
table = "silver.events"
columns = ["event_id", "event_name", "event_ts", "event_date", "platform", "geo_country", "revenue",
           "currency", "campaign_id", "utm_source", "utm_medium", "utm_campaign"]

[[rules]]
role = "finance"
table = "gold.fact_session_daily"
deny_columns = ["user_key", "entry_path", "exit_path"]

[[rules]]
role = "finance"
table = "gold.fact_funnel_daily"

# Data science: features and events, identities pseudonymised, location coarse.
[[rules]]
role = "data_science"
table = "silver.events"
masks = { user_id = "hash", anonymous_id = "hash", user_key = "hash", geo_city = "null", original_ts = "year_only" }
deny_columns = ["ip_hash", "properties"]

[[rules]]
role = "data_science"
table = "gold.*"
masks = { user_key = "hash" }
)toml";

const std::set<std::string>& KnownRoles() {
  static const std::set<std::string> k = {"admin",   "pii_service", "data_engineer", "analyst",
                                          "marketing", "finance",   "data_science"};
  return k;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = std::min(s.find(',', start), s.size());
    std::string item = s.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

// Glob match with '*' only.
bool Matches(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      p++;
      t++;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') p++;
  return p == pattern.size();
}

std::string Hex(const unsigned char* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; i++) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

std::string Base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(len);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// The SCRAM keys of a password: "<StoredKey b64>:<ServerKey b64>".
std::string ScramKeys(std::string_view password, std::string_view salt, int iterations) {
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                    EVP_sha256(), sizeof(salted), salted);
  const std::string salted_str(reinterpret_cast<char*>(salted), sizeof(salted));
  const std::string client_key = HmacSha256(salted_str, "Client Key");
  unsigned char stored[32];
  unsigned int stored_len = 0;
  EVP_Digest(client_key.data(), client_key.size(), stored, &stored_len, EVP_sha256(), nullptr);
  const std::string server_key = HmacSha256(salted_str, "Server Key");
  return Base64(stored, stored_len) + ":" +
         Base64(reinterpret_cast<const unsigned char*>(server_key.data()), server_key.size());
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<Mask> ParseMask(std::string_view name) {
  static const std::pair<const char*, Mask> kMasks[] = {
      {"redact", Mask::kRedact}, {"null", Mask::kNull},   {"hash", Mask::kHash},         {"email_sha256", Mask::kEmailSha256},
      {"last4", Mask::kLast4},   {"truncate_ip", Mask::kTruncateIp}, {"year_only", Mask::kYearOnly}};
  for (const auto& [n, m] : kMasks)
    if (name == n) return m;
  return Status::InvalidArgument("unknown mask '" + std::string(name) +
                                 "' (redact, null, hash, email_sha256, last4, truncate_ip, year_only)");
}

const char* MaskName(Mask mask) {
  switch (mask) {
    case Mask::kRedact: return "redact";
    case Mask::kNull: return "null";
    case Mask::kHash: return "hash";
    case Mask::kEmailSha256: return "email_sha256";
    case Mask::kLast4: return "last4";
    case Mask::kTruncateIp: return "truncate_ip";
    case Mask::kYearOnly: return "year_only";
  }
  return "?";
}

std::string MaskSql(Mask mask, const std::string& c) {
  const std::string text = "CAST(" + c + " AS VARCHAR)";
  switch (mask) {
    case Mask::kRedact: return "CASE WHEN " + c + " IS NULL THEN NULL ELSE '[redacted]' END";
    case Mask::kNull: return "CASE WHEN false THEN " + c + " END";
    case Mask::kHash: return "clicklake_pii_hmac(" + text + ")";
    case Mask::kEmailSha256: return "sha256(lower(trim(" + text + ")))";
    case Mask::kLast4: return "right(" + text + ", 4)";
    case Mask::kTruncateIp:
      return "CASE WHEN " + c + " IS NULL THEN NULL WHEN contains(" + text + ", ':') THEN regexp_extract(" + text +
             ", '^([0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F]*)', 1) || '::' ELSE regexp_replace(" + text +
             ", '\\.[0-9]+$', '.0') END";
    case Mask::kYearOnly: return "CAST(year(" + c + ") AS INTEGER)";
  }
  return "NULL";
}

std::string MaskedType(Mask mask, const std::string& column_type) {
  switch (mask) {
    case Mask::kNull: return column_type;
    case Mask::kYearOnly: return "INTEGER";
    default: return "VARCHAR";
  }
}

const std::string& Policy::DefaultToml() {
  static const std::string k = kDefaultPolicy;
  return k;
}

Result<Policy> Policy::Parse(const std::string& toml_text) {
  ASSIGN_OR_RETURN(Config file, Config::Parse(toml_text));
  Policy policy;
  std::set<std::string> roles(KnownRoles());
  int n = 0;
  for (const std::string& entry : file.GetTableArrayToml("rules")) {
    n++;
    const std::string where = "policy rule " + std::to_string(n);
    ASSIGN_OR_RETURN(Config c, Config::Parse(entry));
    Rule rule;
    rule.role = c.GetString("role", "");
    rule.table = c.GetString("table", "");
    if (rule.role.empty() || rule.table.empty()) return Status::InvalidArgument(where + ": needs role and table");
    if (c.Has("privileges")) {
      auto privileges = c.GetStringList("privileges");
      for (const auto& p : privileges) {
        if (p != "select") {
          return Status::InvalidArgument(where + ": unknown privilege '" + p + "' (only select: queries read)");
        }
      }
      rule.select = !privileges.empty();
    }
    rule.columns = c.GetStringList("columns");
    rule.deny_columns = c.GetStringList("deny_columns");
    for (const auto& [column, mask] : c.GetStringMap("masks")) {
      auto m = ParseMask(mask);
      if (!m.ok()) return m.status().WithContext(where + " (" + rule.role + ", " + rule.table + ")");
      rule.masks[column] = *m;
    }
    rule.row_filter = c.GetString("row_filter", "");
    RETURN_IF_ERROR(c.ReadErrors().WithContext(where));
    roles.insert(rule.role);
    policy.rules_.push_back(std::move(rule));
  }
  n = 0;
  for (const std::string& entry : file.GetTableArrayToml("principals")) {
    n++;
    ASSIGN_OR_RETURN(Config c, Config::Parse(entry));
    Principal p;
    p.name = c.GetString("name", "");
    p.role = c.GetString("role", "");
    const std::string where = "policy principal " + (p.name.empty() ? std::to_string(n) : p.name);
    if (p.name.empty() || p.role.empty()) return Status::InvalidArgument(where + ": needs name and role");
    if (!roles.count(p.role)) return Status::InvalidArgument(where + ": unknown role '" + p.role + "'");
    p.token_sha256 = c.GetStringList("token_sha256");
    for (auto& t : p.token_sha256) {
      std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (t.size() != 64 || t.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return Status::InvalidArgument(where + ": token_sha256 entries are 64 hex digits (clicklake access token)");
      }
    }
    p.password_scram = c.GetString("password", "");
    if (!p.password_scram.empty() && p.password_scram.rfind("SCRAM-SHA-256$", 0) != 0) {
      return Status::InvalidArgument(where + ": password must be a SCRAM-SHA-256 verifier, never plain text");
    }
    for (const auto& [k, v] : c.GetStringMap("attributes")) p.attributes[k] = SplitList(v);
    p.disabled = c.GetBool("disabled", false);
    RETURN_IF_ERROR(c.ReadErrors().WithContext(where));
    if (policy.FindByName(p.name)) return Status::InvalidArgument(where + ": defined twice");
    policy.principals_.push_back(std::move(p));
  }
  policy.roles_.assign(roles.begin(), roles.end());
  return policy;
}

Result<Policy> Policy::LoadFile(const std::string& path) {
  auto text = FileSystem::Default()->ReadFile(path);
  if (!text.ok()) return text.status();
  auto policy = Parse(*text);
  if (!policy.ok()) return policy.status().WithContext("policy file " + path);
  return policy;
}

const Principal* Policy::FindByToken(std::string_view token) const {
  if (token.empty()) return nullptr;
  const std::string h = Sha256Hex(token);
  for (const auto& p : principals_)
    for (const auto& t : p.token_sha256)
      if (ConstantTimeEquals(t, h)) return &p;
  return nullptr;
}

const Principal* Policy::FindByName(std::string_view name) const {
  for (const auto& p : principals_)
    if (p.name == name) return &p;
  return nullptr;
}

bool Policy::CheckPassword(const Principal& principal, std::string_view password) const {
  // SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
  const std::string& v = principal.password_scram;
  if (principal.disabled || v.empty()) return false;
  const size_t dollar1 = v.find('$'), colon1 = v.find(':', dollar1), dollar2 = v.find('$', colon1 + 1);
  if (dollar1 == std::string::npos || colon1 == std::string::npos || dollar2 == std::string::npos) return false;
  const int iterations = std::atoi(v.substr(dollar1 + 1, colon1 - dollar1 - 1).c_str());
  const std::string salt = Base64Decode(v.substr(colon1 + 1, dollar2 - colon1 - 1));
  if (iterations <= 0 || salt.empty()) return false;
  return ConstantTimeEquals(ScramKeys(password, salt, iterations), v.substr(dollar2 + 1));
}

bool Policy::HasRole(const std::string& role) const {
  return std::find(roles_.begin(), roles_.end(), role) != roles_.end();
}

const Rule* Policy::Match(const std::string& role, const std::string& table) const {
  for (const auto& r : rules_)
    if (r.role == role && Matches(r.table, table)) return &r;
  return nullptr;
}

Result<std::optional<TableView>> ViewFor(const Policy& policy, const Principal& principal, const std::string& table,
                                         const std::vector<std::string>& columns) {
  const Rule* rule = policy.Match(principal.role, table);
  if (rule == nullptr || !rule->select) return std::optional<TableView>();
  auto known = [&](const std::string& c) { return std::find(columns.begin(), columns.end(), c) != columns.end(); };
  const std::string where = "policy rule (" + rule->role + ", " + rule->table + ")";
  TableView view;
  view.table = table;
  // A rule naming a column the table lacks is an error only for exact table
  // rules (a pattern may cover tables without that column).
  const bool exact = rule->table.find('*') == std::string::npos;
  for (const auto& c : rule->columns)
    if (exact && !known(c)) return Status::InvalidArgument(where + ": " + table + " has no column " + c);
  for (const auto& c : columns) {
    if (!rule->columns.empty() && std::find(rule->columns.begin(), rule->columns.end(), c) == rule->columns.end()) continue;
    if (std::find(rule->deny_columns.begin(), rule->deny_columns.end(), c) != rule->deny_columns.end()) continue;
    view.columns.push_back(c);
    auto m = rule->masks.find(c);
    if (m == rule->masks.end()) {
      view.expressions.push_back(engine::QuoteIdentifier(c));
    } else {
      view.masks[c] = m->second;
      view.expressions.push_back(MaskSql(m->second, engine::QuoteIdentifier(c)) + " AS " + engine::QuoteIdentifier(c));
    }
  }
  // ${attr}: the principal's values as literals (none: NULL, matching nothing).
  std::string filter = rule->row_filter;
  for (size_t at = filter.find("${"); at != std::string::npos; at = filter.find("${", at)) {
    const size_t end = filter.find('}', at);
    if (end == std::string::npos) return Status::InvalidArgument(where + ": unterminated ${ in row_filter");
    const std::string attr = filter.substr(at + 2, end - at - 2);
    std::string list;
    auto it = principal.attributes.find(attr);
    if (it != principal.attributes.end())
      for (const auto& v : it->second) list += (list.empty() ? "" : ", ") + engine::QuoteLiteral(v);
    if (list.empty()) list = "NULL";
    filter.replace(at, end - at + 1, list);
    at += list.size();
  }
  view.row_filter = filter;
  if (view.columns.empty()) return std::optional<TableView>();
  return std::optional<TableView>(std::move(view));
}

std::string MakeScramVerifier(std::string_view password, std::string_view salt, int iterations) {
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" +
         Base64(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$" +
         ScramKeys(password, salt, iterations);
}

std::string NewToken() {
  unsigned char bytes[32];
  RAND_bytes(bytes, sizeof(bytes));
  return Hex(bytes, sizeof(bytes));
}

// ---- PolicyStore ----

PolicyStore::PolicyStore(std::string path) : path_(std::move(path)) {}

std::shared_ptr<const Policy> PolicyStore::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st;
  const bool exists = !path_.empty() && ::stat(path_.c_str(), &st) == 0;
  const std::string stamp = exists ? std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                                         "/" + std::to_string(st.st_size)
                                   : "defaults";
  if (policy_ && stamp == stamp_) return policy_;
  auto loaded = exists ? Policy::LoadFile(path_) : Policy::Parse(Policy::DefaultToml());
  if (!loaded.ok()) {
    error_ = loaded.status().message();
    spdlog::warn("access: {} (keeping the previous policy)", error_);
    if (!policy_) {
      // No good policy yet: deny everything rather than fall back to defaults.
      policy_ = std::make_shared<Policy>();
    }
    stamp_ = stamp;
    return policy_;
  }
  error_.clear();
  stamp_ = stamp;
  policy_ = std::make_shared<Policy>(std::move(loaded).value());
  return policy_;
}

std::string PolicyStore::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace clicklake::access
