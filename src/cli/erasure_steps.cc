// The erasure steps of components above the pipeline, registered once per
// process before any erasure can run (clicklake forget, and the processor of
// clicklake up/process, which executes queued requests between batches).
#include <mutex>
#include <string>

#include "activate/activate.h"
#include "cli/commands.h"
#include "pipeline/erasure.h"

namespace clicklake::cli {

void RegisterErasureSteps(const Config& config) {
  static std::once_flag once;
  std::call_once(once, [&config] {
    // Reverse-ETL snapshots: the person's rows become markers, and mirror and
    // audience syncs send their removal on the next run.
    pipeline::RegisterErasureStep(
        "activate", [config](const pipeline::ResolvedSubject& subject,
                             const privacy::PrivacyRequest&) -> Result<std::string> {
          ASSIGN_OR_RETURN(activate::ForgetResult r, activate::ForgetUsers(config, subject.user_keys));
          return std::to_string(r.rows_removed) + " snapshot rows removed, " + std::to_string(r.tombstones) +
                 " removals pending downstream in " + std::to_string(r.by_sync.size()) + " syncs";
        });
  });
}

}  // namespace clicklake::cli
