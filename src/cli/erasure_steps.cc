// The erasure steps and receipt listeners of components above the pipeline,
// registered once per process before any erasure can run (clicklake forget, and the processor of
// clicklake up/process, which executes queued requests between batches).
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>

#include "activate/activate.h"
#include "cli/commands.h"
#include "common/json_string.h"
#include "governance/access/access.h"
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
    // The audit chain: each receipt's SHA-256 (the receipt itself stays in the
    // restricted zone), so an edited or removed receipt shows against the chain.
    pipeline::RegisterReceiptListener([lake = config.lake_dir()](const privacy::ErasureReceipt& receipt,
                                                                  const std::string& json) {
      access::AuditRecord record;
      record.action = "erasure_receipt";
      record.principal = "privacy";
      record.role = "admin";
      record.outcome = receipt.status == "completed" ? "ok" : receipt.status;
      record.detail = "{\"request_id\":" + JsonString(receipt.request.id) +
                      ",\"receipt_sha256\":" + JsonString(access::Sha256Hex(json)) + "}";
      if (Status s = access::AppendAuditRecord(lake, record); !s.ok())
        spdlog::error("privacy: receipt {} not added to the audit chain: {}", receipt.request.id, s.ToString());
    });
  });
}

}  // namespace clicklake::cli
