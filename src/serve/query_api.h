// POST /api/v1/query: SQL over the lake for the principal of the request's
// bearer token, governed by the access policy (access::QueryService: masks,
// row filters, the locked-down engine, limits, the audit trail).
//
// Authentication: `Authorization: Bearer <token>`, or `Authorization: Basic
// <base64 user:password>` checked against the user's SCRAM-SHA-256 verifier
// (failures audited; serve the API over TLS when passwords are used).
// Request: a JSON body {"sql": "...", "format": "json" | "csv"} (format also
// from ?format= or an Accept of text/csv; default json).
// Response, streamed chunk by chunk (never the whole result in memory):
//   json: {"columns":[{"name":..,"type":..}],"rows":[{..},..],"row_count":N,"truncated":b}
//         a failure after rows were sent ends it with "error":{"code","message"}
//   csv:  a header line then RFC 4180 rows; a failure after rows were sent
//         aborts the transfer (the client sees an incomplete response)
// Errors before any row: JSON {"error":{"code","message"}} with
//   401 missing_token | invalid_token | token_revoked (bearer),
//       bad_credentials | invalid_credentials | user_revoked (basic)
//   400 bad_request | query_error,  403 permission_denied,
//   408 timeout,  503 audit_unavailable
#pragma once

#include "governance/access/access.h"
#include "serve/api_server.h"

namespace clicklake::serve {

// Registers the route on `server` (before Start). `service` outlives the server.
void RegisterQueryApi(ApiServer* server, access::QueryService* service);

}  // namespace clicklake::serve
