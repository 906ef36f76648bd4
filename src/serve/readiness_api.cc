// GET /api/v1/readiness (readiness_api.h).
#include "serve/readiness_api.h"

namespace clicklake::serve {

void AddReadinessRoutes(ApiServer* server, const std::string& lake_dir, const quality::QualityOptions& options,
                        Clock* clock) {
  server->Get("/api/v1/readiness", [lake_dir, options, clock](const Request& req, Response& res) {
    const int64_t now = clock->NowMicros();
    auto rows = quality::ComputeReadiness(lake_dir, options, now);
    if (!rows.ok()) {
      SendError(res, 500, "readiness_unavailable", "reading the lake's tables: " + rows.status().message());
      return;
    }
    if (req.has_param("dataset")) {
      const std::string want = req.get_param_value("dataset");
      std::vector<quality::DatasetReadiness> one;
      for (auto& r : *rows)
        if (r.dataset == want) one.push_back(std::move(r));
      if (one.empty()) {
        SendError(res, 404, "not_found", "no dataset named '" + want + "' (bronze.events, silver.events, gold.<table>)");
        return;
      }
      *rows = std::move(one);
    }
    SendJson(res, quality::ReadinessJson(*rows, now));
  });
}

}  // namespace clicklake::serve
