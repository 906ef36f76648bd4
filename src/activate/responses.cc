#include "activate/responses.h"

#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

namespace clicklake::activate {
namespace {

// Reads an optional member: `*v` keeps its default when absent or of another type.
template <typename E, typename T>
void TryGet(E&& e, T* v) {
  T got;
  if (!e.get(got)) *v = got;
}

// Parses `body` into `parser`; the InvalidArgument names `what`.
Result<simdjson::dom::element> ParseJson(simdjson::dom::parser& parser, std::string_view body, const char* what) {
  simdjson::dom::element doc;
  if (auto error = parser.parse(body.data(), body.size()).get(doc)) {
    return Status::InvalidArgument(std::string(what) + " answer is not JSON (" + simdjson::error_message(error) + ")");
  }
  return doc;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseWebhookErrors(std::string_view body) {
  std::map<std::string, std::string> refused;
  if (body.empty()) return refused;
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "webhook"));
  simdjson::dom::array errors;
  if (doc["errors"].get(errors)) return refused;
  for (auto e : errors) {
    std::string_view key, message = "refused";
    if (e["key"].get(key)) continue;
    TryGet(e["message"], &message);
    refused[std::string(key)] = std::string(message);
  }
  return refused;
}

Result<HubSpotBatchResult> ParseHubSpotBatchResult(std::string_view body, const std::string& id_property) {
  HubSpotBatchResult out;
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "HubSpot"));
  simdjson::dom::array results;
  if (!doc["results"].get(results)) {
    for (auto res : results) {
      std::string_view value, id;
      if (res["properties"][id_property].get(value)) continue;
      TryGet(res["id"], &id);
      out.records[std::string(value)] = std::string(id);
    }
  }
  simdjson::dom::array errors;
  if (doc["errors"].get(errors)) return out;
  for (auto e : errors) {
    HubSpotError err;
    std::string_view message = "error", category = "";
    TryGet(e["message"], &message);
    TryGet(e["category"], &category);
    err.message = std::string(message);
    err.category = std::string(category);
    simdjson::dom::object context;
    if (!e["context"].get(context)) {
      for (const char* field : {"ids", "id"}) {
        simdjson::dom::array ids;
        if (context[field].get(ids)) continue;
        for (auto id : ids) {
          std::string_view v;
          if (!id.get(v)) err.ids.emplace_back(v);
        }
      }
    }
    out.errors.push_back(std::move(err));
  }
  return out;
}

Result<BrazeResult> ParseBrazeResult(std::string_view body) {
  BrazeResult out;
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "Braze"));
  std::string_view message;
  if (!doc["message"].get(message)) out.message = std::string(message);
  simdjson::dom::array errors;
  if (doc["errors"].get(errors)) return out;
  for (auto e : errors) {
    std::string_view type = "error", array = "attributes";
    int64_t index = -1;
    TryGet(e["type"], &type);
    TryGet(e["input_array"], &array);
    if (e["index"].get(index) || index < 0) continue;
    out.errors.push_back({std::string(array), index, std::string(type)});
  }
  return out;
}

Result<std::string> ParseGoogleAdsJobName(std::string_view body) {
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "Google Ads offlineUserDataJobs:create"));
  std::string_view name;
  if (doc["resourceName"].get(name) || name.empty()) {
    return Status::InvalidArgument("Google Ads offlineUserDataJobs:create: no resourceName in the answer");
  }
  for (char c : name) {
    if (c <= ' ' || c > '~' || c == '?' || c == '#' || c == '%') {
      return Status::InvalidArgument("Google Ads offlineUserDataJobs:create: resourceName is not a resource path");
    }
  }
  if (name.find("..") != std::string_view::npos || name.front() == '/') {
    return Status::InvalidArgument("Google Ads offlineUserDataJobs:create: resourceName is not a resource path");
  }
  return std::string(name);
}

Result<std::map<int64_t, std::string>> ParseGoogleAdsPartialFailures(std::string_view body) {
  std::map<int64_t, std::string> out;
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "Google Ads addOperations"));
  simdjson::dom::array details;
  if (doc["partialFailureError"]["details"].get(details)) return out;
  for (auto detail : details) {
    simdjson::dom::array errors;
    if (detail["errors"].get(errors)) continue;
    for (auto e : errors) {
      std::string_view message = "error";
      TryGet(e["message"], &message);
      simdjson::dom::array path;
      if (e["location"]["fieldPathElements"].get(path)) continue;
      for (auto el : path) {
        std::string_view name;
        int64_t index = -1;
        if (el["fieldName"].get(name) || name != "operations" || el["index"].get(index)) continue;
        if (index >= 0) out.emplace(index, std::string(message));
        break;
      }
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseMetaInvalidEntries(std::string_view body) {
  std::map<std::string, std::string> out;
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(simdjson::dom::element doc, ParseJson(parser, body, "Meta custom audience"));
  simdjson::dom::object samples;
  if (doc["invalid_entry_samples"].get(samples)) return out;
  for (auto [value, reason] : samples) {
    std::string_view why = "invalid entry";
    TryGet(reason, &why);
    out[std::string(value)] = std::string(why);
  }
  return out;
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_us) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty() || value.size() > 64) return std::nullopt;
  const std::string text(value);
  if (text[0] >= '0' && text[0] <= '9') {
    // delta-seconds: digits, and (leniently) a fraction; no exponent, no hex.
    if (text.find_first_not_of("0123456789.") != std::string::npos) return std::nullopt;
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
    return seconds * 1e6 >= static_cast<double>(kMaxRetryAfterUs) ? kMaxRetryAfterUs
                                                                  : static_cast<int64_t>(seconds * 1e6);
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const time_t at = timegm(&tm);
  if (at == static_cast<time_t>(-1)) return std::nullopt;
  const int64_t wait_s = static_cast<int64_t>(at) - now_us / 1'000'000;
  if (wait_s <= 0) return 0;
  return wait_s >= kMaxRetryAfterUs / 1'000'000 ? kMaxRetryAfterUs : wait_s * 1'000'000;
}

}  // namespace clicklake::activate
