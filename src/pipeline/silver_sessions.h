// Identity stitching and sessionization of silver.events (DESIGN.md §6), kept
// equal to a full rebuild whatever the arrival order and batch boundaries.
//
//   user_key   user_id; else the user_id linked to the anonymous_id by the
//              latest event (by event_ts, then event_id) carrying both; else
//              "anon:<anonymous_id>".
//   sessions   per user_key, the activity events (track/page/screen) that are
//              not is_late, ordered by (event_ts, event_id); a gap > timeout
//              starts a new session; session_id = first 32 hex digits of
//              SHA-256("<user_key>|<session start, epoch µs>"); identify/alias/
//              group take the session whose [start, end + timeout] holds their
//              event_ts, or none. session_event_index numbers the activity
//              events of a session from 1 (NULL for the other calls).
//   late       an is_late event (older than allowed_lateness behind the newest
//              event time seen when it arrived, see silver.h) joins no session
//              and moves none: an activity event is a session of its own
//              (index 1), another call has no session.
//
// Incremental rule (what makes a batch cheap). Only anonymous ids carried by
// the batch's new events can gain a link; the existing rows of those whose
// link changed move to the new key (all of them, as a rebuild would). For each
// affected key k let c_k be the earliest event_ts among its new non-late rows
// and the non-late rows moving in or out of it. Rows of k before c_k keep
// their user_key, session_id and index: sessions before c_k keep their start,
// and the session active at c_k continues from its last activity row before
// c_k (the "seed"), which is found within one timeout before c_k. So only rows
// of k with event_ts >= c_k - timeout are read (files pruned by their
// event_ts stats), rows from c_k on are recomputed from the seed, and only the
// rows whose values actually changed are written again: the commit marks them
// deleted in their files (deletion vectors, delta::Transaction::DeleteRows)
// and appends their new versions with the batch's new rows. Unchanged rows
// are never rewritten (DESIGN.md §6 "Cost follows the change"); files are
// compacted in the background (CompactSilver).
//
// Thread safety: stateless functions; a connection is used by one thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "delta/table.h"

namespace clicklake::engine {
class Connection;
}

namespace clicklake::pipeline {

class DedupStore;

// silver.events data files hold the rows of one event_date and one
// kSilverFileBucketUs-wide slice of event_ts, so that a rewrite touches only
// the slices holding changed rows (mostly the newest ones).
inline constexpr int64_t kSilverFileBucketUs = 4LL * 3600 * 1000000;
// Background compaction (compaction.h) folds a slice's files with fewer live
// rows than this, or with more than kSilverMaxDeletedFraction of their rows
// deleted, into new files of the slice.
inline constexpr int64_t kSilverSmallFileRows = 50000;
inline constexpr double kSilverMaxDeletedFraction = 0.1;
// A slice's small files (none of them with many deleted rows) are folded once
// the live rows outside the largest of them reach kSilverFoldRatio of its
// own, or once there are kSilverMaxSmallFiles of them. A slice that gains a
// few late rows every batch is then rewritten every few batches rather than
// after each one, and a row is rewritten a logarithmic number of times as its
// slice fills (measured at 10K events/s: every batch rewrote 15 slices' small
// files, 45K-373K rows, 0.4-5 s between batches).
inline constexpr double kSilverFoldRatio = 0.5;
inline constexpr size_t kSilverMaxSmallFiles = 16;
// A slice with more rows than this is written as several files, each a range
// of event_ts, so that a change near the end of a busy slice (a session
// continued, a late event) rewrites one of them rather than the whole slice.
inline constexpr int64_t kSilverFileMaxRows = 100000;

struct SilverMerge {
  // Existing rows to mark deleted: a query yielding (_delta_file, _delta_row)
  // for delta::Transaction::DeleteRows. Their new versions are in `silver_out`,
  // together with the batch's new rows.
  std::string deleted_rows_query;
  int64_t rows_changed = 0;    // existing rows whose user_key or session changed (deleted and written again)
  int64_t files_changed = 0;   // files holding them
  int64_t files_scanned = 0;   // files read for the keys' recent rows
  // The event_ts slices of `silver_out` (floor(epoch µs / kSilverFileBucketUs),
  // the event_date holding it, its rows): WriteSilverOut writes each.
  struct Slice {
    int64_t bucket = 0;
    std::string event_date;
    int64_t rows = 0;
  };
  std::vector<Slice> slices;
};

// Stages `silver_out`'s rows as data files of `txn`: per slice one file, or
// consecutive event_ts ranges of about kSilverFileMaxRows rows each. Returns
// the files added.
Result<std::vector<delta::AddFile>> WriteSilverOut(delta::Transaction* txn, engine::Connection* conn,
                                                   const SilverMerge& merge);
// The same for the rows of any silver.events-shaped `view` (compaction):
// its slices, then its files.
Result<std::vector<SilverMerge::Slice>> SilverSlicesOf(engine::Connection* conn, const std::string& view);
Result<std::vector<delta::AddFile>> WriteSilverSlices(delta::Transaction* txn, engine::Connection* conn,
                                                      const std::string& view,
                                                      const std::vector<SilverMerge::Slice>& slices);
// A silver.events data file's physical rows and event_ts range (epoch µs;
// the maximum as stored, truncated to milliseconds) from its stats; false
// when the stats do not say.
struct SilverFileRange {
  int64_t rows = 0;
  int64_t min_ts_us = 0;
  int64_t max_ts_us = 0;
};
bool ReadSilverFileRange(simdjson::dom::parser* parser, const delta::AddFile& file, SilverFileRange* out);
// The event_ts slice of an epoch-µs time (floor division by kSilverFileBucketUs).
inline int64_t SilverBucketOf(int64_t us) {
  return us >= 0 ? us / kSilverFileBucketUs : -((-us - 1) / kSilverFileBucketUs) - 1;
}

// Builds `silver_out` from `silver_batch` (the batch's new rows, user_key and
// session columns to be filled) and the existing table `table_path` at
// `snapshot` (version -1 = empty). Sets the connection's TimeZone to UTC.
// `silver_out` is a view (the changed rows' old versions are read once, by
// the write) over temp tables of the merge: valid until the next merge on `conn`.
// `state`: the identity state (dedup.h) the links before this batch and the
// rows to re-key are looked up in, and this batch's links are persisted to
// (before the silver commit; a re-run reads what its first run read). Null:
// links are found by scanning the table (backfill, which starts empty).
Result<SilverMerge> MergeIdentityAndSessions(engine::Connection* conn, const std::string& table_path,
                                             const delta::Snapshot& snapshot, int64_t session_timeout_us,
                                             DedupStore* state = nullptr);

// After MergeIdentityAndSessions on `conn`: what the merge changes in
// silver.events, as tables of the database (visible to its other
// connections), `columns` (a SELECT list over silver.events rows) of
//   removed_table  the old versions of the existing rows it changes;
//   added_table    every row of `silver_out` (new rows, changed rows' new versions).
// Gold takes them instead of diffing the commit's files (gold::SilverChange).
Status MaterializeSilverChange(engine::Connection* conn, const std::string& columns, const std::string& removed_table,
                               const std::string& added_table);

}  // namespace clicklake::pipeline
