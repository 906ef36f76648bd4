// Destinations of reverse-ETL syncs (internal to src/activate).
//
// A Destination turns a batch of diff records into the requests one API
// documents and reports, per record, whether it was accepted. All HTTP goes
// through HttpSender: a per-destination token bucket, 429 + Retry-After,
// retries of 5xx and timeouts with exponential backoff and jitter.
//
// Thread safety: a Destination is used by one run (one thread); the token
// buckets are shared process-wide per destination (type + base URL + account)
// and are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "activate/activate.h"
#include "common/clock.h"
#include "common/status.h"
#include "privacy/privacy.h"

namespace clicklake::activate {

// One row of a run's diff, as sent.
struct OutRecord {
  std::string key;       // the primary key's value
  std::string user_key;  // may be empty
  std::string op;        // add | change | remove
  std::string fields;    // JSON object text (ad platforms: hashed identifiers)
  // Ad-platform audiences, op "change": the fields the destination holds now;
  // identifiers in them but not in `fields` are removed from the audience.
  std::string old_fields;
};

struct RecordOutcome {
  bool ok = false;
  std::string error;  // when !ok
};

struct SendStats {
  int64_t requests = 0;
  int64_t retries = 0;
  int64_t retry_wait_us = 0;  // slept before retries (backoff and Retry-After)
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Requests with rate limiting and retries. REQUIRES: clock outlives it.
class HttpSender {
 public:
  HttpSender(const DestinationConfig& config, std::string bucket_key, Clock* clock, SendStats* stats);
  ~HttpSender();
  // method: POST | DELETE. A response other than 429/5xx is returned as is
  // (2xx, 207, 4xx); Unavailable after max_retries retries.
  Result<HttpResponse> Send(const std::string& method, const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Destination {
 public:
  virtual ~Destination() = default;
  // Records per request for this op ("remove" may differ).
  virtual size_t BatchSize(const std::string& op) const = 0;
  // Sends `batch` (records of one op) and fills one outcome per record. A
  // non-OK status means the batch could not be delivered (every record failed);
  // its message is the error recorded for them.
  virtual Status Send(const std::vector<OutRecord>& batch, std::vector<RecordOutcome>* outcomes) = 0;
};

// REQUIRES: sync.destination validated by SyncsFromConfig; clock and stats outlive it.
Result<std::unique_ptr<Destination>> MakeDestination(const SyncConfig& sync, Clock* clock, SendStats* stats);

// Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
// the key being the base64 after "whsec_" in `secret`. InvalidArgument for a malformed secret.
Result<std::string> WebhookSignature(const std::string& secret, const std::string& id, int64_t timestamp_s,
                                     const std::string& body);
// Hex SHA-256 (the privacy library's) and base64, for idempotency keys and tests.
using privacy::Sha256Hex;
std::string Base64Encode(const std::string& data);
Result<std::string> Base64Decode(const std::string& text);

}  // namespace clicklake::activate
