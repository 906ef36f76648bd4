// clicklake backfill: rebuild silver.events and silver.quarantine for a range of
// dates from bronze.events, and/or the Gold tables from silver.events
// (pipeline/backfill.h).
#include <iostream>
#include <sstream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "governance/lineage/lineage.h"
#include "common/logging.h"
#include "pipeline/pipeline.h"

namespace clicklake::cli {

int RunBackfillCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake backfill", "clicklake backfill");
  ServiceFlags flags;
  std::string from, to, layers = "silver";
  app.add_option("--from", from, "first event date to rebuild, YYYY-MM-DD")->required();
  app.add_option("--to", to, "last event date to rebuild, YYYY-MM-DD (inclusive)")->required();
  app.add_option("--layers", layers, "layers to rebuild: silver, gold or silver,gold (default silver)");
  app.add_option("--config", flags.config_path, "TOML configuration file");
  app.add_option("--lake", flags.lake, "lake directory (default ./lake)");
  app.add_option("--set", flags.settings, "override any setting: KEY=VALUE (repeatable)");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;
  bool silver = false, gold = false;
  {
    std::stringstream list(layers);
    std::string layer;
    while (std::getline(list, layer, ',')) {
      if (layer == "silver") {
        silver = true;
      } else if (layer == "gold") {
        gold = true;
      } else {
        err << "clicklake backfill: --layers " << layers << ": layers are silver and gold (e.g. --layers silver,gold)\n";
        return 2;
      }
    }
    if (!silver && !gold) {
      err << "clicklake backfill: --layers: name silver, gold or both\n";
      return 2;
    }
  }
  InitLogging(flags.log_level);
  auto config = LoadConfig(flags);
  if (!config.ok()) {
    err << "clicklake backfill: " << config.status().message() << "\n";
    return 2;
  }
  pipeline::BackfillOptions options;
  options.lake_dir = config->lake_dir();
  options.from_date = from;
  options.to_date = to;
  options.silver = silver;
  options.gold = gold;
  options.config = *config;
  options.progress = [&err](const std::string& line) { err << line << std::endl; };
  // Lineage: one "backfill" run (START, then COMPLETE or FAIL) with the tables it rewrote.
  namespace lineage = governance::lineage;
  std::unique_ptr<lineage::LineageEmitter> emitter;
  if (auto e = lineage::LineageEmitter::Start(lineage::LineageOptions::FromConfig(*config)); e.ok()) {
    if (e.value()->options().enabled) emitter = std::move(e).value();
  } else {
    err << "clicklake backfill: lineage: " << e.status().message() << "\n";
  }
  std::vector<lineage::DatasetInfo> inputs;
  if (silver) inputs.push_back({.name = "bronze.events"});
  if (gold || silver) inputs.push_back({.name = "silver.events"});
  lineage::CommandRun run(emitter.get(), "backfill", inputs, {});
  run.Begin();
  auto result = pipeline::RunBackfill(options);
  {
    std::vector<lineage::DatasetInfo> outputs;
    if (result.ok() && silver) {
      outputs.push_back({.name = "silver.events", .version = result->silver_version});
      outputs.back().row_count = result->silver_rows;
      outputs.push_back({.name = "silver.quarantine", .version = result->quarantine_version});
      outputs.back().row_count = result->quarantine_rows;
    }
    if (result.ok() && gold) {
      for (const auto& [table, inputs_of] : lineage::GoldModelInputs()) {
        outputs.push_back({.name = table});
        outputs.back().column_lineage = lineage::GoldColumnLineage(table);
      }
    }
    run.End(result.status(), std::move(outputs));
  }
  if (!result.ok()) {
    err << "clicklake backfill: " << result.status().ToString() << "\n";
    return result.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  out << "backfilled " << from << ".." << to << ":";
  if (silver) {
    out << " " << result->silver_rows << " silver.events rows (version " << result->silver_version << "), "
        << result->quarantine_rows << " silver.quarantine rows (version " << result->quarantine_version << ") from "
        << result->bronze_rows << " bronze rows" << (gold ? ";" : "");
  }
  if (gold) {
    out << " " << result->gold_rows << " Gold rows from silver.events version " << result->gold_silver_version;
  }
  out << "\n";
  return 0;
}

}  // namespace clicklake::cli
