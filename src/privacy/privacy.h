// privacy: erasure and suppression requests, the subject list the processor
// consults, and receipts (DESIGN.md §7; docs/privacy.md).
//
// This component sits below the pipeline: it knows requests, identifiers and
// files under the lake, not the pipeline's tables or state. The orchestration
// that removes a person from the tables and the state store is
// pipeline/erasure.h, which uses what is here.
//
//   - PrivacyRequest: one request (who, what: delete / suppress / both /
//     unsuppress, why, how it arrived), with ParseRegulation for the
//     `POST /api/v1/regulations` body (Segment's and RudderStack's shapes) and
//     JSON (de)serialisation for the request queue.
//   - RequestQueue: pending requests under <lake>/restricted/_privacy/requests
//     (they hold raw identifiers, so they live in the restricted zone), executed
//     by whoever holds the processor's state lock (the processor between
//     batches, or `clicklake forget` when no processor runs).
//   - SubjectList: the durable list of forgotten and suppressed subjects, as
//     HMAC-SHA256 of each identifier only (no raw PII), at
//     <lake>/_clicklake/privacy/subjects.json. SubjectFilter decides, per raw
//     event, whether the processor drops it.
//   - ErasureReceipt: what a completed request did, as the JSON receipt
//     (CCPA §7101(b): date, nature and manner of the request, date and nature
//     of the response).
//
// Thread safety: the types are values; files are written atomically (temp +
// fsync + rename + directory sync), one writer at a time per lake (the holder
// of the state lock writes the list; a submitter adds to it under
// <lake>/_clicklake/privacy/subjects.lock, see SubjectList::Update).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"
#include "common/status.h"

namespace clicklake::privacy {

// Lower-case hex HMAC-SHA256 of `data` under `key` (OpenSSL).
std::string HmacHex(std::string_view key, std::string_view data);
// A fresh random token for a tokenized value: "tok_" + 32 hex digits (OpenSSL RAND_bytes).
std::string NewToken();
// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// The identifiers a request names. Emails are matched case-insensitively
// (stored lower-cased).
struct Subject {
  std::vector<std::string> user_ids;
  std::vector<std::string> anonymous_ids;
  std::vector<std::string> emails;
  bool empty() const { return user_ids.empty() && anonymous_ids.empty() && emails.empty(); }
  // Every identifier, for hashing.
  std::vector<std::string> All() const;
};

// kRetention: a maintenance run expiring old partitions (never sent by a client).
enum class RegulationType { kDelete, kSuppress, kSuppressWithDelete, kUnsuppress, kRetention };
std::string_view RegulationTypeName(RegulationType t);  // "DELETE", "SUPPRESS", ...
// The four client types, case-insensitive (not RETENTION).
std::optional<RegulationType> ParseRegulationType(std::string_view name);

// delete: rows removed; anonymize: identifiers replaced (see pipeline/erasure.h).
enum class ErasureMode { kDelete, kAnonymize };

struct PrivacyRequest {
  std::string id;  // "rq-<utc compact time>-<random hex>"
  RegulationType type = RegulationType::kDelete;
  ErasureMode mode = ErasureMode::kDelete;
  Subject subject;
  std::string reason;
  std::string manner = "cli";  // cli | api | retention
  int64_t received_at_us = 0;

  bool deletes() const { return type == RegulationType::kDelete || type == RegulationType::kSuppressWithDelete; }
  bool suppresses() const { return type == RegulationType::kSuppress || type == RegulationType::kSuppressWithDelete; }

  std::string ToJson() const;
  static Result<PrivacyRequest> FromJson(std::string_view json);
};

// A fresh request id for a request received at `now_us`.
std::string NewRequestId(int64_t now_us);

// Parses a `POST /api/v1/regulations` body into requests (not yet given ids or
// times). Accepted shapes:
//   Segment:     {"regulationType":"SUPPRESS_WITH_DELETE","subjectType":"USER_ID",
//                 "subjectIds":["u1","u2"]}   (subjectType USER_ID,
//                 ANONYMOUS_ID or EMAIL; one request per subject id)
//   RudderStack: {"regulationType":"suppress_with_delete",
//                 "users":[{"userId":"u1","anonymousId":"a1","email":"x@y"}]}
//                (one request per user, with every identifier it names)
// Optional "reason" (string). InvalidArgument with a message naming the
// offending member for anything else (bad JSON, unknown type, no subjects,
// non-string ids, more than kMaxSubjectsPerRequest subjects, empty ids).
inline constexpr size_t kMaxSubjectsPerRequest = 5000;
Result<std::vector<PrivacyRequest>> ParseRegulation(std::string_view body);

// Pending requests, one JSON file each, executed in id order.
class RequestQueue {
 public:
  RequestQueue(std::string lake_dir, FileSystem* fs = FileSystem::Default());
  std::string dir() const;
  // Writes the request durably.
  Status Submit(const PrivacyRequest& request);
  Result<std::vector<PrivacyRequest>> Pending();
  bool IsPending(const std::string& id);
  // Replaces the stored request (progress an executor journals).
  Status Update(const PrivacyRequest& request) { return Submit(request); }
  Status Remove(const std::string& id);
  // A journal file of the request (e.g. its resolved identifiers): written
  // atomically beside it and removed with Remove().
  Status WriteJournal(const std::string& id, std::string_view content);
  Result<std::optional<std::string>> ReadJournal(const std::string& id);

 private:
  std::string lake_dir_;
  FileSystem* fs_;
};

// Writes `data` to `path` atomically: temp file, fsync, rename, directory fsync.
Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view data);

// One entry of the subject list: events carrying an identifier with this HMAC
// are dropped when `suppressed`, or when their event time (else arrival) is
// at or before `forgotten_until_us` (a forgotten person's events that were in
// flight or arrive late).
struct SubjectEntry {
  bool suppressed = false;
  std::optional<int64_t> forgotten_until_us;
  std::set<std::string> requests;  // request ids that set it
};

class SubjectList {
 public:
  static std::string Path(const std::string& lake_dir);
  // Loads the list (empty when the file does not exist).
  static Result<SubjectList> Load(const std::string& lake_dir, FileSystem* fs = FileSystem::Default());
  Status Save(const std::string& lake_dir, FileSystem* fs = FileSystem::Default()) const;
  // Load, apply `change`, save, all under an exclusive lock file, so that two
  // submitters never lose each other's entries.
  static Status Update(const std::string& lake_dir, const std::function<void(SubjectList*)>& change,
                       FileSystem* fs = FileSystem::Default());

  // Applies a request: forgets (deleting types) and/or suppresses the
  // subject's identifiers (hashed with `key`); UNSUPPRESS clears `suppressed`.
  void Apply(const PrivacyRequest& request, const std::vector<std::string>& identifiers, std::string_view key);

  const std::map<std::string, SubjectEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  std::string ToJson() const;

 private:
  std::map<std::string, SubjectEntry> entries_;  // HMAC hex → entry
};

// Decides, per raw event, whether the processor drops it (see SubjectEntry).
// Identifiers looked at: userId, anonymousId, traits.email,
// context.traits.email (Segment and native payloads), uid/duid (Snowplow);
// the event time is timestamp / originalTimestamp / dtm, else the arrival.
class SubjectFilter {
 public:
  SubjectFilter() = default;
  SubjectFilter(SubjectList list, std::string key) : list_(std::move(list)), key_(std::move(key)) {}
  bool empty() const { return list_.empty(); }
  // True when the event with this JSON payload, received at `received_at_us`,
  // must be dropped. A payload that does not parse is never dropped here (it
  // is quarantined downstream, where the identifiers are unknown anyway).
  bool Drops(std::string_view payload, int64_t received_at_us) const;

 private:
  SubjectList list_;
  std::string key_;
};

// Per table: what an erasure did there.
struct TableErasure {
  int64_t rows_removed = 0;
  std::vector<int64_t> versions_written;
  int64_t files_rewritten = 0;
  int64_t files_purged = 0;  // data files deleted from storage
  int64_t rows_anonymized = 0;  // --mode anonymize: rows kept with their identifiers replaced
  int64_t files_read = 0;       // data files the purge read to find the rows (the others were known clean)
};

struct ErasureReceipt {
  PrivacyRequest request;
  std::string subject_hmac;  // HMAC of the sorted identifiers of the request
  int64_t identifiers_resolved = 0;  // linked identifiers found (including the named ones)
  std::map<std::string, TableErasure> tables;  // "silver.events" → ...
  int64_t state_entries_removed = 0;
  int64_t files_purged = 0;
  std::optional<int64_t> purge_due_us;  // set while the purge waits for the SLA
  int64_t completed_at_us = 0;
  std::string status = "completed";  // completed | purge_pending
  std::vector<std::string> notes;    // extra steps' outcomes

  // The receipt JSON (stable member order).
  std::string ToJson() const;
};

}  // namespace clicklake::privacy
