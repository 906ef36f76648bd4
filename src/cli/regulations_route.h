// POST /api/v1/regulations (Segment's and RudderStack's shape; privacy.h
// ParseRegulation) and GET /api/v1/regulations/<request id> on the API server.
//
// A POST queues one request per subject (pipeline/erasure.h
// SubmitPrivacyRequest: the subject list takes effect at once) and answers
// 200 {"regulations":[{"id":"rq-...","regulationType":"...","status":"queued"}]};
// the running processor executes them between batches. A GET answers the
// receipt once done, else {"id":...,"status":"pending"}.
//
// Admin only, through the access policy (governance/access): the bearer token
// of a principal whose role is `admin` is accepted; a token of any other
// principal answers 403, no or an unknown token 401. Every POST (accepted or
// refused) is appended to the audit chain (system.audit, action
// `regulation`: principal, role, request ids and type, never the subject).
// The older setting still works beside the policy: a token whose SHA-256 equals
// privacy.admin_token_sha256 (hex), or whose value equals the content of
// privacy.admin_token_file, is an admin (principal `privacy.admin_token`).
// With neither a policy (no `access` service) nor that setting, 403.
#pragma once

#include <string>

#include "common/config.h"
#include "common/status.h"
#include "serve/api_server.h"

namespace clicklake::access {
class QueryService;
}

namespace clicklake::cli {

// Adds the routes. `access` authenticates tokens against the access policy
// (nullptr: only the privacy.admin_token_* setting). REQUIRES: before
// server->Start(); `access` outlives the server.
Status RegisterRegulationsRoutes(serve::ApiServer* server, const Config& config,
                                 access::QueryService* access = nullptr);

}  // namespace clicklake::cli
