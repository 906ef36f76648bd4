// gold: the Gold layer (DESIGN.md §5) — facts, dimensions, funnels and
// point-in-time user features computed from silver.events, kept equal to a full
// rebuild from Silver by an incremental refresh after each micro-batch.
//
// Tables (Delta, <lake>/gold/<table>/; columns and metric definitions in
// README.md): fact_events, fact_session_daily, fact_funnel_daily, dim_user
// (SCD2), dim_campaign, dim_device, user_activity_daily (per user and day, the
// input of the feature windows), user_features_daily; the state the others are
// folded from (user_identifies, session_funnels, session_days, campaign_groups,
// device_groups);
// and system.gold_refreshes (one row per table per refresh).
//
// The models are SQL files (src/pipeline/gold/*.sql, embedded at build time)
// reading input views the stage sets up (silver_scope, sessions_scope, …).
//
// Incremental rule: each Gold commit records the silver.events version it
// covers. Refresh() diffs silver.events between that version and the latest
// (only the files and rows that changed), derives the touched events, sessions,
// users, (user, date)s, campaigns and devices, recomputes only their rows and
// swaps them in: one commit per table deleting the touched keys' old rows and
// appending the new ones, with txn(app_id, batch_id) when app_id is set (a
// table that already holds the batch skips its commit).
//
// Ownership: a GoldStage borrows the Database, FileSystem and Clock (they must
// outlive it). Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/status.h"

namespace clicklake::engine {
class Database;
class Connection;
}  // namespace clicklake::engine

namespace clicklake::pipeline::gold {

// One funnel step: an event name and optional property filters (JSON path
// relative to properties, e.g. "category" or "product.brand" → value as text).
struct FunnelStep {
  std::string event;
  std::string name;  // step_name; default = event
  std::map<std::string, std::string> where;
};

struct Funnel {
  std::string name;
  std::vector<FunnelStep> steps;
};

struct GoldOptions {
  // [[gold.funnels]]; default: the `purchase` funnel
  // product_viewed → product_added → checkout_started → order_completed.
  std::vector<Funnel> funnels;
  // gold.user_traits: identify traits tracked by dim_user (default plan, country, created_at).
  std::vector<std::string> user_traits;
  // lake.deletion_vectors: Gold tables are created with deletion vectors
  // (reader 3 / writer 7); false: reader 1 / writer 2, deletes copy-on-write.
  bool deletion_vectors = true;

  static std::vector<Funnel> DefaultFunnels();
  // gold.funnels, gold.user_traits. InvalidArgument on a malformed funnel or trait.
  static Result<GoldOptions> FromConfig(const Config& config);
};

// Table names, "<layer>/<table>" relative to the lake.
// user_identifies, campaign_groups, device_groups, session_funnels and
// session_days are the state the dimensions, the daily funnel rows and the
// feature windows are computed from (README.md). In commit order: each after the tables it reads.
inline constexpr const char* kGoldTables[] = {
    "gold/user_identifies",   "gold/dim_user",            "gold/campaign_groups",     "gold/device_groups",
    "gold/dim_campaign",      "gold/dim_device",          "gold/fact_events",
    "gold/fact_session_daily", "gold/session_funnels",    "gold/session_days",
    "gold/fact_funnel_daily", "gold/user_activity_daily", "gold/user_features_daily"};
inline constexpr const char* kGoldRefreshesTable = "system/gold_refreshes";

struct GoldTableRefresh {
  int64_t version = -1;                // the commit (-1: skipped, the table already holds the batch)
  std::vector<std::string> dates;      // partitions written to (YYYY-MM-DD); dims: empty
  bool replaced_all = false;           // every partition / the whole dim was rewritten
  int64_t rows_written = 0;            // new rows appended
  int64_t rows_deleted = 0;            // rows deleted (a refresh deletes the touched keys' old rows)
  int64_t rows_rewritten = 0;          // unchanged rows copied into new files (copy-on-write deletes)
  int64_t us = 0;                      // time spent on this table
};

// The silver.events columns Gold reads (a SELECT list over silver.events rows,
// event_ts as a naive UTC TIMESTAMP). The incremental diff compares rows on
// exactly these, so a change in any of them reaches every model that reads it.
inline constexpr const char* kGoldSilverColumns =
    "event_id, event_type, event_name, CAST(event_ts AS TIMESTAMP) AS event_ts, event_date, user_key, session_id, "
    "session_event_index, page_path, referrer_host, utm_source, utm_medium, utm_campaign, campaign_id, platform, "
    "device_type, device_family, browser_family, os_family, geo_country, revenue, currency, properties, source, "
    "log_partition, log_offset";

// What one silver.events commit of the processor changed, handed to the
// refresh that follows it so that it need not diff the two snapshots' files:
// tables of the shared database holding kGoldSilverColumns of the rows the
// commit deleted (their old versions, each different from its new version on
// one of these columns) and of every row it added. A refresh
// takes them when it brings Gold from a base from which only compactions
// (OPTIMIZE: no row changes) and schema evolutions (ADD COLUMNS) lead to
// `from_version`, to exactly `to_version`; otherwise it diffs as usual.
struct SilverChange {
  int64_t from_version = -1;  // the commit's read snapshot
  int64_t to_version = -1;    // the commit
  std::string removed_table;
  std::string added_table;
};

struct GoldRefreshResult {
  int64_t silver_version = -1;     // the silver.events version Gold now covers
  int64_t base_version = -1;       // the version it covered before (-1: none, full compute)
  bool noop = false;               // nothing to do (already covered)
  int64_t changed_rows = 0;        // silver rows that differ between the two versions
  std::optional<int64_t> newest_event_us;  // newest silver event_ts covered
  // Touched sessions of an incremental refresh: folded from Gold's row and their
  // new rows (they only grew), new (every row new), or recomputed from Silver.
  int64_t sessions_folded = 0;
  int64_t sessions_new = 0;
  int64_t sessions_recomputed = 0;
  // silver.events compactions since the base whose moved rows the diff did
  // not read (their files stood in for the files they folded).
  int64_t compactions_skipped = 0;
  // The diff was the batch's own change (SilverChange), not read from files.
  bool diff_from_batch = false;
  std::map<std::string, GoldTableRefresh> tables;  // by table name ("gold/fact_events")
  int64_t total_us = 0;
};

class GoldStage {
 public:
  // REQUIRES: db, fs, clock outlive the stage.
  static Result<std::unique_ptr<GoldStage>> Open(const Config& config, const std::string& lake_dir,
                                                 engine::Database* db, FileSystem* fs = FileSystem::Default(),
                                                 Clock* clock = SystemClock());
  ~GoldStage();

  // Incremental: brings every Gold table to silver.events' latest version.
  // With a non-empty app_id each commit carries txn(app_id, batch_id) and a
  // table that already holds batch_id skips its commit. No silver table: no-op.
  // `change`, when given, describes the silver.events commit just made (see
  // SilverChange; ignored when it does not lead from Gold's base to the latest).
  Result<GoldRefreshResult> Refresh(const std::string& app_id, int64_t batch_id, const SilverChange* change = nullptr);

  // Full recompute from silver's latest version: every partition, or with
  // date_range = {from, to} (YYYY-MM-DD, inclusive) only the partitions in it;
  // dimensions are always recomputed fully. A partial rebuild does not advance
  // the covered silver version unless Gold already covered the latest one.
  Result<GoldRefreshResult> Rebuild(std::optional<std::pair<std::string, std::string>> date_range = std::nullopt);

  const GoldOptions& options() const { return options_; }

 private:
  GoldStage(GoldOptions options, std::string lake_dir, engine::Database* db, FileSystem* fs, Clock* clock);
  struct Plan;
  Result<GoldRefreshResult> Run(Plan* plan);

  GoldOptions options_;
  std::string lake_dir_;
  engine::Database* db_;
  FileSystem* fs_;
  Clock* clock_;
  int64_t session_timeout_us_ = 30LL * 60 * 1000000;  // silver.session_timeout
};

}  // namespace clicklake::pipeline::gold
