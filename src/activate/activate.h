// activate: reverse ETL — audiences and user traits synced from the lake's
// Gold/Silver tables to CRMs and ad platforms (the public face of src/activate/).
//
// A sync ([[activate.syncs]] in the TOML) is a SQL model over the lake, a
// primary key, a field mapping, a destination and a mode:
//   upsert    create or update the destination's records
//   update    update records the destination already has, never create
//   mirror    upsert, and delete the records that left the model
//   audience  add members that entered the model, remove those that left
// Each run diffs the model against the sync's last delivered state, kept as
// the Delta table activate.<sync>_snapshot, and sends only the added, changed
// and removed rows. A row the destination refused (or that could not be sent)
// stays pending in the snapshot and is sent again by the next run. What the
// destination confirmed is appended, batch by batch, to a journal
// (<lake>/_clicklake/activate/<sync>.journal, fsynced) before the next batch is
// sent; the run's end folds the journal into the snapshot in one commit
// (txn(clicklake-activate, run id)) and appends its row to system.syncs. A run
// killed mid-way is folded by the next one first, so nothing it confirmed is
// sent again.
//
// Destinations (destinations.h, internal): a signed generic webhook (Standard
// Webhooks), HubSpot CRM v3 batch upsert/update, Braze /users/track, Google
// Ads Customer Match and Meta Custom Audiences (identifiers normalized and
// SHA-256 hashed before they leave). Each has a token-bucket rate limit,
// honors 429 + Retry-After, retries 5xx and timeouts with exponential backoff
// and jitter, and records per-record errors from partial failures.
//
// Thread safety: the free functions may be called from several threads for
// different syncs; two runs of the same sync at once are serialised by the
// snapshot's Delta commits (the loser fails with Conflict and is retried by
// its next trigger). A SyncScheduler is driven by its own thread; its
// Notify*/Stop may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"
#include "pipeline/pipeline.h"

namespace clicklake::activate {

enum class SyncMode { kUpsert, kUpdate, kMirror, kAudience };
const char* SyncModeName(SyncMode mode);

// Where and how a sync's rows are delivered ([activate.syncs.destination]).
struct DestinationConfig {
  std::string type;      // webhook | hubspot | braze | google_ads | meta
  std::string base_url;  // scheme://host[:port], e.g. http://127.0.0.1:9000 in tests
  std::string path;      // webhook: the request path (default "/")
  std::string token;     // hubspot private-app token, braze REST API key, google/meta OAuth access token
  std::string secret;    // webhook: signing secret, "whsec_" + base64 of the key bytes
  int64_t batch_size = 0;  // records per request (0 = the destination's maximum)
  double rate_per_s = 10;  // token bucket: requests per second
  double burst = 10;       // and bucket size
  int concurrency = 4;     // requests in flight at once (each on its own connection)
  int64_t timeout_us = 30'000'000;
  int max_retries = 5;                  // retries of a request after a 429, 5xx or timeout
  int64_t backoff_base_us = 500'000;    // first retry delay (doubles, with jitter)
  int64_t backoff_max_us = 60'000'000;  // cap of a delay, Retry-After included
  // hubspot
  std::string object = "contacts";
  std::string id_property = "email";
  // braze
  std::string audience_attribute;  // audience mode: boolean custom attribute (default: the sync's name)
  std::string event_name;          // optional: an event sent for every added/changed record
  // google_ads
  std::string customer_id, user_list_id, developer_token, login_customer_id;
  std::string api_version;  // google default "v17", meta default "v19.0"
  // meta
  std::string audience_id;
  // google_ads, meta: the country calling code for phones without one ("1").
  std::string default_country_code = "1";

  // The most records one request may carry for this type (100 HubSpot, 75 Braze,
  // 10,000 Google/Meta, 1,000 webhook).
  int64_t MaxBatch() const;
  bool IsAdPlatform() const { return type == "google_ads" || type == "meta"; }
};

struct SyncConfig {
  std::string name;          // [a-z0-9_]+; also the snapshot table's prefix
  std::string model;         // SQL over the lake's tables (gold.x, silver.x, system.x)
  std::string primary_key;   // a column of the model, unique per row
  std::string user_key_column = "user_key";  // the column ForgetUsers matches (when the model has it)
  // destination field → model column. Empty: every model column but the key
  // columns, under its own name. google_ads/meta: fields `email` and/or `phone`.
  std::vector<std::pair<std::string, std::string>> mapping;
  SyncMode mode = SyncMode::kUpsert;
  std::string trigger = "gold";  // gold (after each Gold refresh) | manual | an interval like "15m"
  int64_t interval_us = 0;       // trigger given as an interval
  // Raw fields of restricted.pii the model may read ("traits.email"); empty: the
  // model sees no restricted.* table at all.
  std::vector<std::string> raw_fields;
  DestinationConfig destination;
};

// [[activate.syncs]] and activate.* settings. InvalidArgument naming the sync
// and setting for a malformed entry (unknown mode or destination, a mode the
// destination cannot do, a missing key, a duplicate name).
Result<std::vector<SyncConfig>> SyncsFromConfig(const Config& config);

struct SyncRunOptions {
  bool dry_run = false;     // compute the diff, send nothing, write nothing
  std::string trigger = "manual";
  size_t sample_rows = 5;   // diff rows kept in SyncRunResult::sample
};

struct SyncRunResult {
  std::string sync;
  int64_t run_id = -1;
  std::string status;  // success | partial (some rows failed) | failed | dry_run
  int64_t model_rows = 0;
  int64_t skipped_rows = 0;  // model rows without a key (or, ad platforms, without any identifier)
  int64_t unchanged = 0;
  // Planned by the diff (dry run) or confirmed by the destination (a run).
  int64_t added = 0, changed = 0, removed = 0;
  int64_t failed = 0;   // rows the destination refused or that could not be sent (pending)
  int64_t resumed = 0;  // rows an interrupted earlier run had confirmed, folded first
  int64_t requests = 0, retries = 0;
  int64_t diff_us = 0, send_us = 0, duration_us = 0;
  std::string error_summary;  // the distinct errors, with counts
  std::vector<std::string> sample;  // "add <key> {fields}", ...
};

// Runs (or dry-runs) the sync `name` of `config` over the lake at config.lake_dir().
// NotFound for an unknown sync. The returned status is OK when the run got as far as
// recording itself; its rows' failures are in the result.
Result<SyncRunResult> RunSync(const Config& config, const std::string& name, const SyncRunOptions& options = {},
                              FileSystem* fs = FileSystem::Default(), Clock* clock = SystemClock());

// One line per configured sync: its last run (system.syncs) and the rows its
// snapshot holds, synced and pending. For `clicklake sync status`.
struct SyncStatusRow {
  std::string sync, mode, destination, trigger;
  int64_t snapshot_rows = 0, pending_rows = 0;
  int64_t last_run_id = -1;
  std::string last_status, last_finished_at, last_error;
  int64_t last_added = 0, last_changed = 0, last_removed = 0, last_failed = 0;
};
Result<std::vector<SyncStatusRow>> SyncStatus(const Config& config, FileSystem* fs = FileSystem::Default());

// Right to be forgotten (called by `clicklake forget`, after or with the
// erasure of Gold): removes the rows of these users (matched on the snapshot's
// user_key, or its primary key) from every sync's snapshot, leaving a
// forgotten marker per row that holds the key alone. In mirror and audience
// modes a row the destination holds becomes a pending removal carrying only
// what the delete call needs (for ad platforms the hashed identifiers), so the
// next run deletes it downstream. While the model still returns a forgotten
// key (Gold not yet erased) nothing is sent for it; once it no longer does,
// the marker is dropped. An interrupted run's journal is folded first (it may
// hold their fields).
struct ForgetResult {
  int64_t rows_removed = 0;   // rows reduced to a marker, nothing to delete downstream
  int64_t tombstones = 0;     // markers whose removal the next run sends downstream
  std::map<std::string, int64_t> by_sync;  // rows affected per sync
};
Result<ForgetResult> ForgetUsers(const Config& config, const std::vector<std::string>& user_keys,
                                 FileSystem* fs = FileSystem::Default(), Clock* clock = SystemClock());

// Runs the syncs of a long-running service: the `gold` ones after each Gold
// refresh (NotifyGoldRefreshed; it only signals),
// the interval ones on their schedule, one at a time on the scheduler's own
// thread, so a slow or failing sync never blocks or fails a micro-batch. The
// pipeline tells it of Gold refreshes through GoldObserver().
class SyncScheduler {
 public:
  // nullptr when the config has no syncs with a gold or interval trigger.
  static Result<std::unique_ptr<SyncScheduler>> Create(const Config& config);
  ~SyncScheduler();  // Stop()s

  void Start();
  // Waits for the run in progress (its journal makes an interruption safe, but
  // a clean stop lets it record itself), then ends the thread.
  void Stop();
  void NotifyGoldRefreshed();
  // For PipelineOptions::observers: NotifyGoldRefreshed after each batch whose
  // Gold refresh changed something. REQUIRES: the scheduler outlives the runner.
  std::shared_ptr<pipeline::BatchObserver> GoldObserver();
  int64_t runs_completed() const;

 private:
  explicit SyncScheduler(Config config, std::vector<SyncConfig> syncs);
  void Loop();

  Config config_;
  std::vector<SyncConfig> syncs_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;           // GUARDED_BY(mu_)
  bool gold_pending_ = false;   // GUARDED_BY(mu_)
  int64_t runs_completed_ = 0;  // GUARDED_BY(mu_)
  std::map<std::string, int64_t> next_due_us_;  // interval syncs; scheduler thread only
};

// Table names relative to the lake.
inline constexpr const char* kSyncsTable = "system/syncs";
std::string SnapshotTablePath(const std::string& sync_name);  // "activate/<name>_snapshot"

}  // namespace clicklake::activate
