// The status page: GET /status on the API server (`clicklake up --api-port`),
// for on-call and for business users asking "can I use today's numbers?".
//
// One server-rendered HTML page, no script: each dataset's readiness badge
// (READY / LATE / FAILED / UNKNOWN, quality::ComputeReadiness from the lake's
// tables and the current time, so a stopped processor shows LATE once the SLA
// passes), its SLA, last refresh, newest event and freshness, and SVG charts of
// the last 24 hours read from system.batches and system.gold_refreshes: events
// per minute by layer, Gold freshness at each refresh (lag), batch duration and
// quarantine rate. The page reloads itself every api.status_refresh seconds.
// GET /api/v1/status/charts serves the charts' data as JSON.
//
// Lives in its own library (cl_status_page) so cl_serve stays free of the
// pipeline. Thread safety: the handlers run on the server's threads; each
// request opens its own engine connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "governance/quality/quality.h"
#include "serve/api_server.h"

namespace clicklake::serve {

struct StatusPageOptions {
  std::string lake_dir = "./lake";
  int refresh_seconds = 15;                    // api.status_refresh: the page reloads itself this often
  int64_t window_us = 24LL * 3600 * 1000000;   // the charts' span
  quality::QualityOptions quality;             // the SLAs readiness is judged by

  static StatusPageOptions FromConfig(const Config& config, const quality::QualityOptions& quality);
};

// One line of a chart.
struct ChartSeries {
  std::string name;
  std::string color;                           // CSS color
  std::vector<std::pair<int64_t, double>> points;  // (time in micros, value), by time
};

struct Chart {
  std::string id;                              // "events_per_minute", "lag", "batch_duration", "quarantine_rate"
  std::string title;
  std::string unit;                            // "events/min", "s", "%"
  std::vector<ChartSeries> series;
};

// The four charts over [now - window, now] from the lake (empty series when the
// tables do not exist yet).
Result<std::vector<Chart>> LoadCharts(const std::string& lake_dir, int64_t from_us, int64_t to_us);

// An SVG line chart (self-contained markup, no script).
std::string RenderSvgChart(const Chart& chart, int64_t from_us, int64_t to_us);

// The whole page.
std::string RenderStatusPage(const std::vector<quality::DatasetReadiness>& readiness, const std::vector<Chart>& charts,
                             int64_t now_us, const StatusPageOptions& options);

// Registers GET /status and GET /api/v1/status/charts.
// REQUIRES: called before server->Start(); `clock` outlives the server.
void AddStatusPage(ApiServer* server, const StatusPageOptions& options, Clock* clock = SystemClock());

}  // namespace clicklake::serve
