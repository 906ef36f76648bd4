// Parsers of what sync destinations answer (internal to src/activate).
//
// Every function takes the bytes a destination sent (untrusted: anything at
// all) and returns what the sender needs: per-record refusals, record ids, a
// job name, a wait. Malformed answers never crash: a body that is not JSON
// is an InvalidArgument, members of the wrong type are skipped. simdjson does
// the parsing. Depends only on common/status and simdjson, so the fuzz
// targets (fuzz/) build it alone with clang.
//
// Thread safety: stateless.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clicklake::activate {

// Generic webhook receiver, optional per-record refusals:
// {"errors":[{"key":"k","message":"why"}]} → key → message ("refused" when
// absent). An empty body or one without "errors" refuses nothing.
Result<std::map<std::string, std::string>> ParseWebhookErrors(std::string_view body);

// HubSpot CRM v3 batch answers (upsert, update, read): 200, or 207 multi-status.
//   {"status":"COMPLETE","results":[{"id":"51","properties":{"email":"a@x.com"}}],
//    "numErrors":1,"errors":[{"status":"error","category":"VALIDATION_ERROR",
//    "message":"…","context":{"ids":["b@x.com"]}}]}
struct HubSpotError {
  std::string category;          // e.g. VALIDATION_ERROR, OBJECT_NOT_FOUND ("" when absent)
  std::string message;           // "error" when absent
  std::vector<std::string> ids;  // the inputs it names (context.ids or context.id); may be empty
  std::string Text() const { return "HubSpot " + category + ": " + message; }
};
struct HubSpotBatchResult {
  // properties.<id_property> of each result → HubSpot's record id ("" when absent).
  std::map<std::string, std::string> records;
  std::vector<HubSpotError> errors;
};
Result<HubSpotBatchResult> ParseHubSpotBatchResult(std::string_view body, const std::string& id_property);

// Braze /users/track: {"message":"success","errors":[{"type":"…","input_array":"attributes","index":3}]}.
struct BrazeError {
  std::string array;  // attributes | events | purchases ("attributes" when absent)
  int64_t index = 0;  // >= 0 (errors without a usable index are left out)
  std::string type;   // "error" when absent
};
struct BrazeResult {
  std::string message;  // "" when absent; anything but "success" means the request failed
  std::vector<BrazeError> errors;
};
Result<BrazeResult> ParseBrazeResult(std::string_view body);

// Google Ads offlineUserDataJobs:create → {"resourceName":"customers/1/offlineUserDataJobs/2"}.
// InvalidArgument unless resourceName is a non-empty path of printable ASCII
// without "..", "?" or "#" (it becomes part of the next request's path).
Result<std::string> ParseGoogleAdsJobName(std::string_view body);

// Google Ads addOperations with enablePartialFailure: operation index → message,
// from partialFailureError.details[].errors[].location.fieldPathElements
// [{fieldName:"operations",index:i}]. Indexes are >= 0 (the caller checks the upper bound).
Result<std::map<int64_t, std::string>> ParseGoogleAdsPartialFailures(std::string_view body);

// Meta custom audience users: {"invalid_entry_samples":{"<hashed value>":"reason"}} → value → reason.
Result<std::map<std::string, std::string>> ParseMetaInvalidEntries(std::string_view body);

// A Retry-After header (RFC 9110): delta-seconds (a decimal number is accepted
// too) or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Returns the wait in
// microseconds from now_us (0 for a date in the past), capped at one day;
// nullopt when the value is neither.
std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_us);
constexpr int64_t kMaxRetryAfterUs = 86'400'000'000LL;

}  // namespace clicklake::activate
