// Bronze: bronze.events, exactly what arrived, one row per accepted event.
//
// Rows come from RawEvent log records. bronze.events is partitioned by
// event_date, which at this layer is the UTC date the collector received the
// event (event time is derived in Silver; Bronze is organised by arrival so a
// replay or backfill by date reads whole partitions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "delta/table.h"
#include "log/event_log.h"

namespace clicklake::engine {
class Connection;
}

namespace clicklake::pipeline {

// The Delta schema of bronze.events (DESIGN.md §5).
delta::Schema BronzeSchema();
inline const char* kBronzeTable = "bronze/events";

// Loads log records into the table `bronze_batch` of the runner's in-memory database (replacing it) on `conn`.
// Records that are not RawEvents are kept with protocol "unknown" and payload
// {"undecodable_base64": "<their bytes>"}; *undecodable counts them.
Status LoadBronzeBatch(engine::Connection* conn, const std::vector<log::LogRecord>& records, int64_t* undecodable);

}  // namespace clicklake::pipeline
