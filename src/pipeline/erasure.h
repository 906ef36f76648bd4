// Erasure: removes a person from every table of the lake, the state store and
// the files of older table versions (`clicklake forget`, `POST
// /api/v1/regulations`; DESIGN.md §7, docs/privacy.md).
//
// A request (privacy::PrivacyRequest) is first submitted: written to the
// request queue (restricted zone) and applied to the subject list, so from
// that moment the processor drops the person's unprocessed, in-flight and late
// events (privacy::SubjectFilter). It is then executed by whoever holds the
// processor's state lock: the processor between micro-batches
// (MicroBatchRunner::RunPrivacyRequests), or `clicklake forget` itself when no
// processor runs. Execution, step by step (each idempotent, so a rerun after a
// crash completes the request; progress is journaled beside the request):
//   1. resolve: every identifier linked to the named ones (identity links both
//      ways through silver.events, bronze.events payloads, restricted.pii
//      emails and the state store's links), the person's user keys, event ids
//      and session ids — journaled before anything is removed, with per table
//      the version read and the files holding their rows. The plain-column
//      tables and the state converge first; the payloads (the costly read) are
//      scanned only then, usually twice;
//   2. subject list: every resolved identifier forgotten (and suppressed);
//   3. state store: dedup ids, links, row ranges, session keys removed, and
//      their key range compacted (no SST or WAL keeps them);
//   4. extra steps registered by other components (RegisterErasureStep: the
//      reverse-ETL snapshots, whose rows become markers that still let the
//      next sync send the removal downstream), before the rows go;
//   5. delete: one DELETE commit per table holding the person's rows
//      (bronze.events, silver.events, silver.quarantine, restricted.pii, ...)
//      through deletion vectors (copy-on-write on tables without them),
//      reading only the files resolution found while the table is unchanged;
//   6. Gold: refreshed incrementally from silver.events (the person's sessions,
//      users, campaigns and funnels are recomputed as in any batch), then any
//      Gold row still keyed by them deleted;
//   7. purge (when privacy.erasure_sla has passed, default immediately): in
//      every table, the data files of any retained version that physically
//      hold the person's rows are found by reading every file not known clean
//      (clean: live at resolution's version, no deletion vector, no hit); live ones are
//      rewritten without the deleted rows (one OPTIMIZE commit,
//      dataChange=false), then all of them are deleted from storage at once,
//      overriding the vacuum retention for those files only;
//   8. receipt: system.erasures row (txn per request, so once) and the JSON
//      receipt under <lake>/restricted/_privacy/receipts/.
//
// Thread safety: one executor at a time per lake (the state lock).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"
#include "privacy/privacy.h"

namespace clicklake::engine {
class Database;
}

namespace clicklake::pipeline {

class DedupStore;

// Everything known to identify one person, after resolution.
struct ResolvedSubject {
  std::vector<std::string> user_ids;
  std::vector<std::string> anonymous_ids;
  std::vector<std::string> emails;  // lower-cased
  std::vector<std::string> user_keys;  // user ids and anon:<anonymous id>
  std::vector<std::string> event_ids;
  std::vector<std::string> session_ids;
  std::vector<std::string> Identifiers() const;  // user ids, anonymous ids, emails
};

// An extra erasure step another component contributes (the hook point for
// reverse-ETL snapshots: the CLI registers activate::ForgetUsers here). It
// must be idempotent; its result is a line for the receipt's notes.
using ErasureStep = std::function<Result<std::string>(const ResolvedSubject& subject,
                                                      const privacy::PrivacyRequest& request)>;
// Registers `step` for every erasure of this process (thread-safe).
void RegisterErasureStep(const std::string& name, ErasureStep step);

// Told of every receipt this process finishes (erasures and retention runs),
// after ErasureContext::on_receipt: the audit chain's hook (the CLI registers
// access::AppendAuditRecord here). It must not throw; a failure is its own to
// report, the erasure is complete either way.
using ReceiptListener = std::function<void(const privacy::ErasureReceipt& receipt, const std::string& json)>;
void RegisterReceiptListener(ReceiptListener listener);  // thread-safe

struct ErasureContext {
  std::string lake_dir;
  Config config;                 // lake.deletion_vectors, gold.*, silver.session_timeout, privacy.*
  engine::Database* db = nullptr;
  DedupStore* state = nullptr;   // REQUIRES: held by the caller (the state lock)
  std::string pii_key;
  FileSystem* fs = FileSystem::Default();
  Clock* clock = SystemClock();
  bool gold = true;              // processor.gold
  int64_t erasure_sla_us = 0;    // privacy.erasure_sla
  // Called with each finished receipt and its JSON (the audit chain's hook).
  std::function<void(const privacy::ErasureReceipt&, const std::string& json)> on_receipt;
  // Test hook: called before each step with its name; a crash test kills the process there.
  std::function<void(const std::string& step)> before_step;
};

// Puts `request` in the queue and applies it to the subject list (from now on
// the processor drops the named identifiers' events). Gives it an id and
// received_at when it has none.
Status SubmitPrivacyRequest(const std::string& lake_dir, const std::string& pii_key, privacy::PrivacyRequest* request,
                            FileSystem* fs = FileSystem::Default(), Clock* clock = SystemClock());

// Executes every pending request whose work is due (in id order) and returns
// the receipts of those that finished (a request waiting for its purge SLA
// stays queued with status purge_pending).
Result<std::vector<privacy::ErasureReceipt>> ExecutePrivacyRequests(const ErasureContext& context);

// ExecutePrivacyRequests in a process without a processor (`clicklake
// forget`): opens the state store (its lock), a database and the PII key from
// `config`. Unavailable when a running processor holds the state lock: it
// executes the queued requests itself between batches.
Result<std::vector<privacy::ErasureReceipt>> ExecutePrivacyRequestsStandalone(
    const Config& config, const std::function<void(const std::string& step)>& before_step = nullptr);

// The receipt of a finished request (NotFound while it is pending).
Result<std::string> ReadReceipt(const std::string& lake_dir, const std::string& request_id,
                                FileSystem* fs = FileSystem::Default());

// ErasureContext settings from the configuration (privacy.erasure_sla, processor.gold).
void ErasureSettingsFromConfig(const Config& config, ErasureContext* context);

inline const char* kErasuresTable = "system/erasures";

// ---- the tokenization vault ----

// The raw values behind vault tokens (privacy.tokenize_fields; restricted.pii
// rows carrying a token): token → (field, value). Unknown or forgotten tokens
// are absent. The caller audits the access (`clicklake pii detokenize`).
Result<std::map<std::string, std::pair<std::string, std::string>>> Detokenize(const std::string& lake_dir,
                                                                              engine::Database* db,
                                                                              const std::vector<std::string>& tokens);

// ---- retention ----

// One per-table TTL: [retention.<layer>] <table> = "<duration>", e.g.
//   [retention.bronze]     events = "400d"
//   [retention.silver]     quarantine = "30d"
//   [retention.restricted] pii = "90d"
struct RetentionRule {
  std::string table;  // "bronze/events"
  int64_t ttl_us = 0;
};
// InvalidArgument for a TTL that is not a duration.
Result<std::vector<RetentionRule>> RetentionRulesFromConfig(const Config& config);

// A maintenance run: for each rule, deletes the table's partitions whose date
// (its first partition column, a date) is before today − TTL (one DELETE
// commit; whole files go), refreshes Gold when silver.events changed, deletes
// those partitions' data files of every version from storage (overriding the
// vacuum retention for them only), vacuums the table with its usual
// retention, and records the run in system.erasures (RETENTION) with a
// receipt. Nothing expired: no commit, no record (the receipt lists no table).
Result<privacy::ErasureReceipt> RunRetention(const ErasureContext& context, const std::vector<RetentionRule>& rules);
// RunRetention without a processor (`clicklake retention`); Unavailable while
// a processor holds the state lock (it runs retention itself).
Result<privacy::ErasureReceipt> RunRetentionStandalone(const Config& config, const std::vector<RetentionRule>& rules);

}  // namespace clicklake::pipeline
