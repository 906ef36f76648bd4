// The status page: readiness badges and server-rendered SVG charts.
#include "serve/status_page.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "common/file_system.h"
#include "common/json_string.h"
#include "common/logging.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::serve {
namespace {

std::string Html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Utc(int64_t us, const char* fmt = "%Y-%m-%d %H:%M:%S UTC") {
  time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

std::string Duration(int64_t us) {
  if (us < 0) us = 0;
  int64_t s = us / 1000000;
  char buf[64];
  if (s < 120) std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 2 * 3600) std::snprintf(buf, sizeof buf, "%lldm %llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else if (s < 2 * 86400) std::snprintf(buf, sizeof buf, "%lldh %lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else std::snprintf(buf, sizeof buf, "%lldd %lldh", static_cast<long long>(s / 86400), static_cast<long long>(s / 3600 % 24));
  return buf;
}

std::string Num(double v) {
  char buf[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Runs `sql` over the attached tables; rows of (time micros, value...) or empty when a table is missing.
Result<engine::QueryResult> Query(engine::Connection* conn, const std::string& sql) { return conn->Query(sql); }

}  // namespace

StatusPageOptions StatusPageOptions::FromConfig(const Config& config, const quality::QualityOptions& quality) {
  StatusPageOptions o;
  o.lake_dir = config.lake_dir();
  o.refresh_seconds = static_cast<int>(config.GetInt("api.status_refresh", o.refresh_seconds));
  if (o.refresh_seconds < 1) o.refresh_seconds = 1;
  o.quality = quality;
  return o;
}

Result<std::vector<Chart>> LoadCharts(const std::string& lake_dir, int64_t from_us, int64_t to_us) {
  std::vector<Chart> charts = {
      {"events_per_minute", "Events per minute by layer", "events/min",
       {{"bronze", "#8c6d31", {}}, {"silver", "#7f7f7f", {}}, {"quarantine", "#d62728", {}}, {"gold", "#e7ba52", {}}}},
      {"lag", "Freshness of Gold at each refresh (lag)", "s", {{"gold.fact_events", "#1f77b4", {}}}},
      {"batch_duration", "Micro-batch duration", "s", {{"batch", "#2ca02c", {}}}},
      {"quarantine_rate", "Quarantine rate per batch", "%", {{"quarantined / events", "#d62728", {}}}},
  };
  static engine::Database* db = [] {
    engine::DatabaseOptions o;
    o.threads = 1;
    o.memory_limit = "256MB";
    auto d = engine::Database::Open(o);
    return d.ok() ? d->release() : nullptr;
  }();
  if (db == nullptr) return Status::Internal("status page: cannot open the engine");
  ASSIGN_OR_RETURN(auto conn, db->Connect());
  RETURN_IF_ERROR(conn->Execute("SET TimeZone = 'UTC'"));
  const std::string batches = JoinPath(lake_dir, "system/batches");
  const std::string refreshes = JoinPath(lake_dir, "system/gold_refreshes");
  const std::string window = " BETWEEN make_timestamp(" + std::to_string(from_us) + "::BIGINT) AND make_timestamp(" +
                             std::to_string(to_us) + "::BIGINT)";
  auto add = [](ChartSeries* s, const engine::QueryResult& r, size_t col, double scale) {
    for (size_t i = 0; i < r.row_count(); ++i)
      if (!r.IsNull(i, col)) s->points.emplace_back(r.GetInt64(i, 0), r.GetDouble(i, col) * scale);
  };
  if (FileSystem::Default()->Exists(JoinPath(batches, "_delta_log"))) {
    RETURN_IF_ERROR(delta::AttachTable(conn.get(), "cl_batches", batches, std::nullopt));
    ASSIGN_OR_RETURN(auto per_minute,
                     Query(conn.get(), "SELECT epoch_us(date_trunc('minute', finished_at::TIMESTAMP)) AS m, "
                                       "sum(bronze_rows)::DOUBLE, sum(silver_rows)::DOUBLE, sum(quarantined)::DOUBLE "
                                       "FROM cl_batches WHERE finished_at::TIMESTAMP" + window + " GROUP BY 1 ORDER BY 1"));
    add(&charts[0].series[0], per_minute, 1, 1);
    add(&charts[0].series[1], per_minute, 2, 1);
    add(&charts[0].series[2], per_minute, 3, 1);
    ASSIGN_OR_RETURN(auto per_batch,
                     Query(conn.get(), "SELECT epoch_us(finished_at::TIMESTAMP), "
                                       "(epoch_us(finished_at::TIMESTAMP) - epoch_us(started_at::TIMESTAMP)) / 1e6, "
                                       "quarantined / greatest(events, 1) "
                                       "FROM cl_batches WHERE finished_at::TIMESTAMP" + window + " ORDER BY 1"));
    add(&charts[2].series[0], per_batch, 1, 1);
    add(&charts[3].series[0], per_batch, 2, 100);
  }
  if (FileSystem::Default()->Exists(JoinPath(refreshes, "_delta_log"))) {
    RETURN_IF_ERROR(delta::AttachTable(conn.get(), "cl_refreshes", refreshes, std::nullopt));
    const std::string fact = "(table_name = 'gold/fact_events' OR table_name = 'gold.fact_events' OR table_name = 'fact_events')";
    ASSIGN_OR_RETURN(auto gold_rows,
                     Query(conn.get(), "SELECT epoch_us(date_trunc('minute', refreshed_at::TIMESTAMP)), "
                                       "sum(rows_written)::DOUBLE FROM cl_refreshes WHERE " + fact +
                                       " AND refreshed_at::TIMESTAMP" + window + " GROUP BY 1 ORDER BY 1"));
    add(&charts[0].series[3], gold_rows, 1, 1);
    ASSIGN_OR_RETURN(auto lag, Query(conn.get(), "SELECT epoch_us(refreshed_at::TIMESTAMP), "
                                                 "(epoch_us(refreshed_at::TIMESTAMP) - epoch_us(newest_event_ts::TIMESTAMP)) / 1e6 "
                                                 "FROM cl_refreshes WHERE " + fact +
                                                 " AND newest_event_ts IS NOT NULL AND refreshed_at::TIMESTAMP" + window +
                                                 " ORDER BY 1"));
    add(&charts[1].series[0], lag, 1, 1);
  }
  return charts;
}

std::string RenderSvgChart(const Chart& chart, int64_t from_us, int64_t to_us) {
  const int w = 560, h = 200, left = 56, right = 12, top = 12, bottom = 28;
  const int pw = w - left - right, ph = h - top - bottom;
  double ymax = 0;
  size_t points = 0;
  for (const auto& s : chart.series)
    for (const auto& [t, v] : s.points) {
      ymax = std::max(ymax, v);
      ++points;
    }
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  const double span = static_cast<double>(std::max<int64_t>(1, to_us - from_us));
  auto x = [&](int64_t t) { return left + pw * (static_cast<double>(t - from_us) / span); };
  auto y = [&](double v) { return top + ph * (1 - v / ymax); };
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(1);
  o << "<svg class=\"chart\" id=\"chart-" << chart.id << "\" data-points=\"" << points << "\" viewBox=\"0 0 " << w << " "
    << h << "\" width=\"" << w << "\" height=\"" << h << "\" role=\"img\" aria-label=\"" << Html(chart.title)
    << "\" xmlns=\"http://www.w3.org/2000/svg\">";
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"#fafafa\" stroke=\"#ccc\"/>";
  for (int i = 0; i <= 4; ++i) {  // gridlines and y labels
    const double v = ymax * i / 4;
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << y(v) << "\" y2=\"" << y(v)
      << "\" stroke=\"#eee\"/><text x=\"" << left - 4 << "\" y=\"" << y(v) + 4
      << "\" font-size=\"10\" text-anchor=\"end\">" << Num(v) << "</text>";
  }
  for (int i = 0; i <= 4; ++i) {  // time labels, every 6 hours of the window
    const int64_t t = from_us + static_cast<int64_t>(span * i / 4);
    o << "<text x=\"" << x(t) << "\" y=\"" << h - 10 << "\" font-size=\"10\" text-anchor=\"middle\">"
      << Utc(t, "%H:%M") << "</text>";
  }
  o << "<text x=\"" << left + 4 << "\" y=\"" << top + 12 << "\" font-size=\"10\" fill=\"#555\">" << Html(chart.unit)
    << "</text>";
  int legend_x = left + 60;
  for (const auto& s : chart.series) {
    if (!s.points.empty()) {
      o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"";
      for (const auto& [t, v] : s.points) o << x(t) << "," << y(v) << " ";
      o << "\"><title>" << Html(s.name) << "</title></polyline>";
      if (s.points.size() == 1)
        o << "<circle cx=\"" << x(s.points[0].first) << "\" cy=\"" << y(s.points[0].second) << "\" r=\"2.5\" fill=\""
          << s.color << "\"/>";
    }
    o << "<rect x=\"" << legend_x << "\" y=\"" << top + 4 << "\" width=\"10\" height=\"10\" fill=\"" << s.color
      << "\"/><text x=\"" << legend_x + 14 << "\" y=\"" << top + 13 << "\" font-size=\"10\">" << Html(s.name)
      << "</text>";
    legend_x += 24 + 7 * static_cast<int>(s.name.size());
  }
  if (points == 0)
    o << "<text x=\"" << left + pw / 2 << "\" y=\"" << top + ph / 2 << "\" text-anchor=\"middle\" fill=\"#999\">"
      << "no data in the last 24 hours</text>";
  o << "</svg>";
  return o.str();
}

std::string RenderStatusPage(const std::vector<quality::DatasetReadiness>& readiness, const std::vector<Chart>& charts,
                             int64_t now_us, const StatusPageOptions& options) {
  std::ostringstream o;
  int counts[4] = {0, 0, 0, 0};
  for (const auto& r : readiness) ++counts[static_cast<int>(r.status)];
  const char* overall = counts[2] ? "FAILED" : counts[1] ? "LATE" : counts[3] == static_cast<int>(readiness.size()) ? "UNKNOWN" : "READY";
  o << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta http-equiv=\"refresh\" content=\"" << options.refresh_seconds << "\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>clicklake status: " << overall << "</title><style>"
    << "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    << "table{border-collapse:collapse;margin-bottom:24px}th,td{padding:6px 10px;border-bottom:1px solid #ddd;"
       "text-align:left;font-size:14px}"
    << ".badge{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}"
    << ".READY{background:#2e7d32}.LATE{background:#ef6c00}.FAILED{background:#c62828}.UNKNOWN{background:#757575}"
    << ".charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}"
    << ".muted{color:#777;font-size:13px}</style></head><body>\n";
  o << "<h1>clicklake status <span id=\"overall\" class=\"badge " << overall << "\">" << overall << "</span></h1>\n";
  o << "<p class=\"muted\">As of <time id=\"as-of\" datetime=\"" << Utc(now_us, "%Y-%m-%dT%H:%M:%SZ") << "\">"
    << Utc(now_us) << "</time>; this page reloads every " << options.refresh_seconds
    << " s. READY: fresh within its SLA and its checks pass; LATE: past its SLA; FAILED: an error check failed; "
       "UNKNOWN: never refreshed.</p>\n";
  o << "<table id=\"datasets\"><thead><tr><th>dataset</th><th>status</th><th>SLA</th><th>last refresh</th>"
       "<th>newest event</th><th>freshness (lag)</th><th>reason</th></tr></thead><tbody>\n";
  for (const auto& r : readiness) {
    const char* status = quality::ToString(r.status);
    o << "<tr data-dataset=\"" << Html(r.dataset) << "\" data-status=\"" << status << "\"><td>" << Html(r.dataset)
      << "</td><td><span class=\"badge " << status << "\">" << status << "</span></td><td>" << Html(r.sla.Describe())
      << "</td><td>" << (r.last_refresh_us ? Utc(*r.last_refresh_us) : "never") << "</td><td>"
      << (r.newest_event_us ? Utc(*r.newest_event_us) : "-") << "</td><td>"
      << (r.lag_us ? Duration(*r.lag_us) : "-") << "</td><td>" << Html(r.reason) << "</td></tr>\n";
  }
  o << "</tbody></table>\n<h2>Last 24 hours</h2>\n<div class=\"charts\">\n";
  const int64_t from = now_us - options.window_us;
  for (const auto& c : charts) {
    o << "<figure><figcaption>" << Html(c.title) << "</figcaption>" << RenderSvgChart(c, from, now_us)
      << "</figure>\n";
  }
  o << "</div>\n<p class=\"muted\">Readiness as JSON: <a href=\"/api/v1/readiness\">/api/v1/readiness</a>; "
       "chart data: <a href=\"/api/v1/status/charts\">/api/v1/status/charts</a>; metrics: "
       "<a href=\"/metrics\">/metrics</a>.</p>\n</body></html>\n";
  return o.str();
}

void AddStatusPage(ApiServer* server, const StatusPageOptions& options, Clock* clock) {
  server->Get("/status", [options, clock](const Request&, Response& res) {
    const int64_t now = clock->NowMicros();
    auto readiness = quality::ComputeReadiness(options.lake_dir, options.quality, now);
    if (!readiness.ok()) {
      SendError(res, 500, "readiness_unavailable", readiness.status().ToString());
      return;
    }
    auto charts = LoadCharts(options.lake_dir, now - options.window_us, now);
    if (!charts.ok()) {
      spdlog::warn("status page: charts: {}", charts.status().ToString());
      charts = std::vector<Chart>{};
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(RenderStatusPage(*readiness, *charts, now, options), "text/html; charset=utf-8");
  });
  server->Get("/api/v1/status/charts", [options, clock](const Request&, Response& res) {
    const int64_t now = clock->NowMicros();
    auto charts = LoadCharts(options.lake_dir, now - options.window_us, now);
    if (!charts.ok()) {
      SendError(res, 500, "charts_unavailable", charts.status().ToString());
      return;
    }
    std::string out = "{\"from_us\":" + std::to_string(now - options.window_us) + ",\"to_us\":" + std::to_string(now) +
                      ",\"charts\":[";
    for (size_t i = 0; i < charts->size(); ++i) {
      const Chart& c = (*charts)[i];
      if (i) out += ',';
      out += "{\"id\":" + JsonString(c.id) + ",\"title\":" + JsonString(c.title) + ",\"unit\":" + JsonString(c.unit) +
             ",\"series\":[";
      for (size_t j = 0; j < c.series.size(); ++j) {
        if (j) out += ',';
        out += "{\"name\":" + JsonString(c.series[j].name) + ",\"points\":[";
        for (size_t k = 0; k < c.series[j].points.size(); ++k) {
          if (k) out += ',';
          std::ostringstream v;
          v.precision(10);
          v << c.series[j].points[k].second;
          out += "[" + std::to_string(c.series[j].points[k].first) + "," + v.str() + "]";
        }
        out += "]}";
      }
      out += "]}";
    }
    SendJson(res, out + "]}");
  });
}

}  // namespace clicklake::serve
