// POST /api/v1/regulations (Segment's and RudderStack's shape; privacy.h
// ParseRegulation) and GET /api/v1/regulations/<request id> on the API server.
//
// A POST queues one request per subject (pipeline/erasure.h
// SubmitPrivacyRequest: the subject list takes effect at once) and answers
// 200 {"regulations":[{"id":"rq-...","regulationType":"...","status":"queued"}]};
// the running processor executes them between batches. A GET answers the
// receipt once done, else {"id":...,"status":"pending"}.
//
// Admin only. Until the access-control policy (issue 17) lands, the admin is
// whoever presents `Authorization: Bearer <token>` whose SHA-256 equals
// privacy.admin_token_sha256 (hex), or whose value equals the content of
// privacy.admin_token_file; with neither set the routes answer 403.
#pragma once

#include <string>

#include "common/config.h"
#include "common/status.h"
#include "serve/api_server.h"

namespace clicklake::cli {

// Adds the routes. REQUIRES: before server->Start().
Status RegisterRegulationsRoutes(serve::ApiServer* server, const Config& config);

}  // namespace clicklake::cli
