// Lineage around the commands that write tables outside the processor:
// `clicklake table optimize|vacuum` (table maintenance) runs as an OpenLineage
// "maintenance.<op>" job with START and COMPLETE/FAIL events in the lake's
// lineage file (governance/lineage/lineage.h).
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/table_command.h"
#include "common/logging.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "governance/lineage/lineage.h"

namespace clicklake::cli {
namespace {

namespace lineage = governance::lineage;

std::optional<int64_t> LatestVersion(const std::string& path) {
  auto db = engine::Database::Open();
  if (!db.ok()) return std::nullopt;
  auto t = delta::Table::Open(path, db->get());
  if (!t.ok()) return std::nullopt;
  auto v = (*t)->LatestVersion();
  return v.ok() ? std::optional<int64_t>(*v) : std::nullopt;
}

}  // namespace

int RunTableCommandWithLineage(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const bool writes = !args.empty() && (args[0] == "optimize" || args[0] == "vacuum") &&
                      std::find(args.begin(), args.end(), "--dry-run") == args.end() && args.size() >= 2;
  if (!writes) return RunTableCommand(args, out, err);
  // The table: layer.table under --lake (default ./lake), or a table directory <lake>/<layer>/<table>.
  std::string lake = "lake";
  for (size_t i = 1; i + 1 < args.size(); ++i)
    if (args[i] == "--lake") lake = args[i + 1];
  const std::string& target = args[1];
  std::string dataset, path;
  namespace fs = std::filesystem;
  if (target.find('/') == std::string::npos && std::count(target.begin(), target.end(), '.') == 1) {
    dataset = target;
    path = lake + "/" + target.substr(0, target.find('.')) + "/" + target.substr(target.find('.') + 1);
  } else {
    fs::path p = fs::absolute(target).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    path = p.string();
    dataset = p.parent_path().filename().string() + "." + p.filename().string();
    lake = p.parent_path().parent_path().string();
  }
  lineage::LineageOptions options;
  options.lake_dir = lake;
  std::unique_ptr<lineage::LineageEmitter> emitter;
  if (fs::is_directory(fs::path(path) / "_delta_log")) {
    auto e = lineage::LineageEmitter::Start(options);
    if (e.ok()) emitter = std::move(e).value();
    else spdlog::warn("lineage: {}", e.status().ToString());
  }
  lineage::CommandRun run(emitter.get(), "maintenance." + args[0] + "." + dataset,
                          {{.name = dataset, .version = LatestVersion(path)}}, {});
  run.Begin();
  const int rc = RunTableCommand(args, out, err);
  lineage::DatasetInfo output{.name = dataset, .version = LatestVersion(path)};
  run.End(rc == 0 ? Status::OK() : Status::Internal("clicklake table " + args[0] + " exited with " + std::to_string(rc)),
          {output});
  return rc;
}

}  // namespace clicklake::cli
