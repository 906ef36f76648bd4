// The trust signals around a running processor: lineage (OpenLineage runs),
// alerts (rules + delivery), fed by the quality observer's results and
// readiness. service.cc starts them with the processor and keeps them alive.
#pragma once

#include <memory>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "governance/alerts/alerts.h"
#include "governance/lineage/lineage.h"
#include "governance/quality/quality.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"

namespace clicklake::cli {

class RuleTicker;

struct Signals {
  std::shared_ptr<governance::lineage::LineageEmitter> lineage_emitter;  // null: lineage.enabled = false
  std::shared_ptr<governance::alerts::Alerter> alerter;                  // null: alerts.enabled = false
  // To append to PipelineOptions::observers, after the quality observer.
  std::vector<std::shared_ptr<pipeline::BatchObserver>> observers;
  std::shared_ptr<RuleTicker> ticker;  // collect: evaluates the rules every alerts.interval
  void Stop();  // delivers what is queued (idempotent)
};

// REQUIRES: `log` outlives the returned signals' observers. `quality` may be null.
// `collector_in_process`: the collector's counters are in this process (up).
Result<Signals> StartSignals(const Config& config, const std::string& consumer_group, log::EventLog* log,
                             quality::QualityObserver* quality, bool collector_in_process);

// The alerts of a collector running without the processor (`clicklake collect`):
// ClicklakeCollectorShedding, ClicklakeCollector5xx and ClicklakeDiskNearlyFull,
// evaluated at start and every `alerts.interval` (default 15s) on a thread of their
// own, delivered and recorded like the processor's. Nothing when alerts.enabled = false.
Result<Signals> StartCollectorSignals(const Config& config);

}  // namespace clicklake::cli
