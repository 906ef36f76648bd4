// Background compaction of the processor's tables (Delta's auto-compaction is
// the model): micro-batches append small files and mark changed rows deleted
// with deletion vectors; between batches the runner folds small files and
// files with many deleted rows into large ones, purging their deletion
// vectors. Each call does a bounded amount of work (max_input_bytes) in one
// commit per table, dataChange=false, so readers and Gold see no change and
// the next call continues where it stopped.
//
// silver.events keeps its layout: files are compacted within their 4-hour
// event_ts slice (silver_sessions.h), so the Silver merge's pruning by
// event_ts stays as tight as before. Other tables are bin-packed per
// partition by delta::Table::Optimize.
//
// Thread safety: run on the runner's thread between batches (a compaction
// commit racing a batch's DeleteRows on the same file would make one of them
// conflict; between batches nothing races).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "delta/table.h"

namespace clicklake::engine {
class Connection;
}

namespace clicklake::pipeline {

struct CompactionResult {
  int64_t version = -1;  // -1: nothing to do, no commit
  int64_t files_removed = 0;
  int64_t files_added = 0;
  int64_t bytes_read = 0;
  int64_t rows = 0;      // live rows written again
  int64_t deleted_rows_purged = 0;
};

// Compacts silver.events: per 4-hour slice, the files with fewer than
// kSilverSmallFileRows live rows or more than kSilverMaxDeletedFraction of
// their rows deleted, when one of them has that many deleted rows, or when
// there are kSilverMaxSmallFiles of them, or two or more whose live rows
// outside the largest reach kSilverFoldRatio of its (silver_sessions.h);
// slices with the most such files first, until `max_input_bytes` of input.
Result<CompactionResult> CompactSilverEvents(delta::Table* table, engine::Connection* conn, int64_t max_input_bytes);

}  // namespace clicklake::pipeline
