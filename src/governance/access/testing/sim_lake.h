// A small simulated lake for access tests and benchmarks: simulator traffic
// run through the real processor (bronze, silver, restricted.pii, gold).
#pragma once

#include <string>

#include "common/status.h"

namespace clicklake::access::testing {

// Writes `batches` generator batches (seeded) to a local log under
// `work_dir`/log and drains them into the lake at `lake_dir`, with the PII key
// at `key_file`.
Status BuildSimulatedLake(const std::string& lake_dir, const std::string& work_dir, const std::string& key_file,
                          int batches = 30, int users = 60);

}  // namespace clicklake::access::testing
