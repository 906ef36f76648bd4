// Silver: silver.events (one row per unique valid event, DESIGN.md §5) and
// silver.quarantine (events that failed parsing or their contract, with
// reasons) from the records of one micro-batch.
//
// Per record: decode (RawEvent) → parse into canonical fields with the event
// time (silver_parse.h) → contract checks (contracts.h) → deduplication by
// event_id (dedup.h) → enrichment (src/enrich) → PII handling (ip_hash =
// HMAC-SHA256 of the IP, email/phone/card-like strings in properties replaced
// by "hmac:<hex>", no raw IP) → a row of the in-memory view `silver_batch`;
// failures become rows of `quarantine_batch` (bronze columns + received_date,
// error_code, error_detail, contract_version); the raw values of the privacy
// policy's restricted fields become rows of `restricted_batch` (restricted.pii).
// The runner writes these tables to Delta in the batch's commits.
//
// Flattening: scalar leaves of the properties (except the well-known fields
// that have columns) become nullable prop_<snake_path> columns (string, double
// or boolean), added to silver.events by schema evolution; a column keeps its
// first type, and a value of another type stays only in `properties`
// (counted). Arrays stay in `properties`.
//
// The batch's rows carry user_key = user_id, else "anon:<anonymous_id>", and
// no session; silver_sessions.h stitches identities and sessionizes them
// together with the existing rows when silver.events is committed.
//
// Threads: BuildBatch parses, checks, enriches and scrubs the records on
// SilverOptions::threads threads (in chunks, each record on its own), and
// does everything that depends on the log order — deduplication, lateness,
// prop_ column discovery, the rows and the stats — on the calling thread in
// log order, so the result does not depend on the number of threads.
//
// Ownership: a SilverStage owns its contracts, enricher, PII key and dedup
// store. Thread safety: used by the runner's thread only (BuildBatch runs its
// own workers and joins them before it returns).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "delta/table.h"
#include "log/event_log.h"
#include "pipeline/contracts.h"
#include "pipeline/dedup.h"
#include "pipeline/silver_parse.h"

namespace clicklake::engine {
class Connection;
}
namespace clicklake::enrich {
class Enricher;
}

namespace clicklake::pipeline {

inline const char* kSilverEventsTable = "silver/events";
inline const char* kQuarantineTable = "silver/quarantine";
// restricted.pii: the raw values of the policy's restricted fields
// (privacy.restricted_fields), one row per event and field; silver.events
// keeps only their HMAC. Partitioned by event_date.
inline const char* kRestrictedPiiTable = "restricted/pii";

delta::Schema SilverEventsSchema();
delta::Schema QuarantineSchema();
delta::Schema RestrictedPiiSchema();

struct SilverOptions {
  ParseOptions parse;
  int64_t dedup_window_us = 7LL * 86400 * 1000000;
  // A gap longer than this between a user's activity events starts a new session.
  int64_t session_timeout_us = 30LL * 60 * 1000000;
  // A batch of at least quarantine_min_batch events whose quarantined share
  // exceeds quarantine_threshold is refused.
  double quarantine_threshold = 0.10;
  int64_t quarantine_min_batch = 100;
  // At most this many prop_<path> columns in silver.events (others stay in `properties`).
  int64_t max_prop_columns = 200;
  // HMAC key for PII; "" = $HOME/.clicklake/pii.key. Created (0600) when absent.
  std::string pii_key_file;
  // privacy.restricted_fields: "traits.<name>" (identify/group traits) or
  // "properties.<name>" (track/page/screen properties), top-level members whose
  // raw value is kept in restricted.pii (silver.events keeps only the HMAC).
  std::vector<std::string> restricted_fields = {"traits.email", "traits.phone"};
  // privacy.tokenize_fields (same syntax; default none): string values are
  // replaced in Silver by a random token (privacy::NewToken); the token and
  // the raw value go to restricted.pii (the vault), `clicklake pii detokenize`.
  std::vector<std::string> tokenize_fields;
  // processor.threads: threads that parse and enrich a batch's records; 0 =
  // the hardware's concurrency, 1 = all on the calling thread.
  int threads = 0;

  // silver.*, privacy.* and processor.threads.
  static SilverOptions FromConfig(const Config& config);
};

// What the silver stage made of one batch.
struct SilverBatchStats {
  int64_t silver_rows = 0;
  int64_t quarantined = 0;
  int64_t duplicates = 0;
  int64_t future_dated = 0;
  int64_t late = 0;
  int64_t pii_redactions = 0;
  int64_t prop_type_conflicts = 0;  // values left only in `properties` (their column has another type)
  int64_t newest_received_at_us = 0;
  int64_t restricted_rows = 0;  // rows of restricted_batch (restricted.pii)
  std::map<std::string, int64_t> quarantine_by_code;
  // prop_<path> columns of silver_batch that silver.events lacks: add them
  // (EvolveSchema) before writing.
  std::vector<delta::Field> new_prop_columns;
};

// Replaces PII-looking substrings of free text: emails, phone numbers and
// Luhn-valid 13–19 digit card numbers become "hmac:<hex>" (HMAC-SHA256 with
// `key` of the normalised match). Returns the number of replacements.
int ScrubPii(std::string_view text, const std::string& key, std::string* out);
// Lower-case hex HMAC-SHA256 of `data` with `key`.
std::string HmacSha256Hex(const std::string& key, std::string_view data);
// Reads the key file (hex → bytes), creating a fresh random key (0600, parent
// 0700) with a warning when it does not exist.
Result<std::string> LoadOrCreatePiiKey(const std::string& path);
// The key of privacy.key_file (default $HOME/.clicklake/pii.key), as the Silver stage loads it.
Result<std::string> LoadPiiKey(const SilverOptions& options);

class SilverStage {
 public:
  // Loads contracts (config [[contracts]]), the enricher (enrich.*), the PII
  // key and the dedup store at <lake>/_clicklake/state/dedup.
  static Result<std::unique_ptr<SilverStage>> Open(const Config& config, const std::string& lake_dir);
  ~SilverStage();

  // Builds `silver_batch` (a view of a table of the batch's rows) and
  // `quarantine_batch` on `conn` (replacing them) from `records`; `bronze_batch` (see bronze.h) must already hold them.
  // Records dedup decisions for batch `batch_id` (pending until CommitState).
  // `silver_schema` is silver.events' current schema (null: no table yet); it
  // fixes the types of existing prop_<path> columns.
  Result<SilverBatchStats> BuildBatch(engine::Connection* conn, const std::vector<log::LogRecord>& records,
                                      int64_t batch_id, const delta::Schema* silver_schema = nullptr);
  // Persists the batch's dedup decisions. Call before the Delta commits.
  Status CommitState(const SilverBatchStats& stats);

  const SilverOptions& options() const { return options_; }
  // The state store (dedup ids, watermark, identity state).
  DedupStore* state() const { return dedup_.get(); }
  // The HMAC key (privacy: the subject list is keyed by it).
  const std::string& pii_key() const { return pii_key_; }

 private:
  SilverStage() = default;

  SilverOptions options_;
  ContractRegistry contracts_;
  std::unique_ptr<enrich::Enricher> enricher_;
  std::unique_ptr<DedupStore> dedup_;
  std::string pii_key_;
  std::vector<std::string> restricted_traits_;      // member names of privacy.restricted_fields
  std::vector<std::string> restricted_properties_;
  std::set<std::string> tokenized_;  // privacy.tokenize_fields ("traits.<name>", "properties.<name>")
};

}  // namespace clicklake::pipeline
