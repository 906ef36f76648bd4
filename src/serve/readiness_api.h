// GET /api/v1/readiness: the readiness of every dataset as JSON
// (quality::ReadinessJson), computed on each request from the lake's tables and
// the current time (quality::ComputeReadiness), so a stopped processor shows
// LATE once a dataset's SLA passes. `?dataset=NAME` narrows it to one dataset
// (404 not_found when unknown). Errors reading the lake: 500 readiness_unavailable.
//
// Lives in its own library (cl_readiness_api) so cl_serve stays free of the
// pipeline. Thread safety: the handler is safe to run on the server's threads.
#pragma once

#include <string>

#include "common/clock.h"
#include "governance/quality/quality.h"
#include "serve/api_server.h"

namespace clicklake::serve {

// REQUIRES: called before server->Start(); `clock` outlives the server.
void AddReadinessRoutes(ApiServer* server, const std::string& lake_dir, const quality::QualityOptions& options,
                        Clock* clock = SystemClock());

}  // namespace clicklake::serve
