// Backfill: rebuilds silver.events and silver.quarantine for a range of dates
// from bronze.events, and/or the Gold tables from silver.events, equal to what
// incremental processing produced.
//
// Every bronze row is replayed through a fresh Silver stage (a scratch dedup
// store under <lake>/_clicklake/backfill-<pid>, removed afterwards) in the
// order the processor saw them: by micro-batch (system.batches offsets), then
// log partition and offset, so the same copy of a duplicate wins. Identities
// and sessions are computed over the whole history (MergeIdentityAndSessions
// on an empty table), which equals the incremental result. Then one Delta
// commit per table (commitInfo operation "BACKFILL") replaces the
// silver.events partitions event_date ∈ [from, to] and the silver.quarantine
// partitions received_date ∈ [from, to] with the rebuilt rows.
//
// Concurrency: the backfill holds the processor's dedup state lock
// (<lake>/_clicklake/state/dedup) for its whole run and refuses
// (Unavailable) when a processor holds it. A processor that has not
// processed anything yet does not hold it; its later commits then conflict with
// the backfill's (Delta optimistic concurrency), and one of them fails.
//
// Gold (layers include "gold", after Silver when both): the Gold tables are first
// brought to silver's latest version (an incremental refresh), then every Gold
// partition in [from, to] is recomputed from silver.events and the dimensions
// fully (gold/gold.h, GoldStage::Rebuild), so a funnel configured later covers
// the history in the range. One commit per Gold table (operation WRITE,
// commitInfo clicklake_gold.mode = "rebuild").
//
// Limits: the replay is one in-memory batch (bronze is read whole); records
// the processor kept as undecodable are quarantined again as undecodable, with
// their base64 payload as the record value.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace clicklake::pipeline {

struct BackfillOptions {
  std::string lake_dir = "./lake";
  std::string from_date;  // YYYY-MM-DD, inclusive
  std::string to_date;    // YYYY-MM-DD, inclusive
  // What to rebuild: Silver (from Bronze), Gold (from Silver), or both.
  bool silver = true;
  bool gold = false;
  // silver.*, contracts, enrich.*, privacy.*, gold.* as for the processor.
  Config config;
  // Called with one line per step (may be empty).
  std::function<void(const std::string&)> progress;
};

struct BackfillResult {
  int64_t bronze_rows = 0;        // records replayed
  int64_t silver_rows = 0;        // rows written to silver.events in the range
  int64_t quarantine_rows = 0;    // rows written to silver.quarantine in the range
  int64_t silver_version = -1;    // the BACKFILL commits
  int64_t quarantine_version = -1;
  int64_t gold_rows = 0;          // rows written to the Gold tables (their partitions in the range; dims whole)
  int64_t gold_silver_version = -1;  // the silver.events version Gold was rebuilt from
};

// Rebuilds the range. InvalidArgument on bad dates or neither layer, NotFound without
// bronze.events, Unavailable while a processor holds the state lock or when the
// processor's last batch is not committed to all four tables yet (a crash:
// run `clicklake process --once` first).
Result<BackfillResult> RunBackfill(const BackfillOptions& options);

}  // namespace clicklake::pipeline
