// Identity stitching and sessionization of silver.events (DESIGN.md §6), kept
// equal to a full rebuild whatever the arrival order and batch boundaries.
//
//   user_key   user_id; else the user_id linked to the anonymous_id by the
//              latest event (by event_ts, then event_id) carrying both; else
//              "anon:<anonymous_id>".
//   sessions   per user_key, activity events (track/page/screen) ordered by
//              (event_ts, event_id); a gap > timeout starts a new session;
//              session_id = first 32 hex digits of
//              SHA-256("<user_key>|<session start, epoch µs>"); identify/alias/
//              group take the session whose [start, end + timeout] holds their
//              event_ts, or none. session_event_index numbers the activity
//              events of a session from 1 (NULL for the other calls).
//
// Incremental rule: only anonymous ids carried by the batch's new events can
// gain a link, so the affected user keys K are the keys of the new events and
// the old and new keys of existing rows with those anonymous ids. Every row
// whose key is in K (old or new) is recomputed from the union of the existing
// rows and the new ones, and the event_date partitions holding them are
// rewritten; rows of other keys are copied unchanged. (Correct first: the
// rewrite is not yet narrowed to the allowed lateness.)
//
// Thread safety: stateless functions; a connection is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "delta/table.h"

namespace clicklake::engine {
class Connection;
}

namespace clicklake::pipeline {

struct SilverMerge {
  // event_date partitions to replace ("YYYY-MM-DD"); their new content is the
  // table `silver_out` on the connection.
  std::vector<std::string> partitions;
  int64_t rows_rewritten = 0;  // existing rows recomputed (re-keyed or re-sessioned or copied)
};

// Builds `silver_out` from `silver_batch` (the batch's new rows, user_key and
// session columns to be filled) and the existing table `table_path` at
// `snapshot` (version -1 = empty). Sets the connection's TimeZone to UTC.
Result<SilverMerge> MergeIdentityAndSessions(engine::Connection* conn, const std::string& table_path,
                                             const delta::Snapshot& snapshot, int64_t session_timeout_us);

}  // namespace clicklake::pipeline
