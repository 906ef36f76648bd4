#include "cli/regulations_route.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "common/clock.h"
#include "common/json_string.h"
#include "governance/access/access.h"
#include "pipeline/erasure.h"
#include "pipeline/silver.h"
#include "privacy/privacy.h"

namespace clicklake::cli {
namespace {

// The hex SHA-256 the admin token must have ("" = none configured).
Result<std::string> AdminTokenHash(const Config& config) {
  std::string hash = config.GetString("privacy.admin_token_sha256", "");
  const std::string file = config.GetString("privacy.admin_token_file", "");
  if (!file.empty()) {
    ASSIGN_OR_RETURN(std::string token, FileSystem::Default()->ReadFile(file));
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) return Status::InvalidArgument("privacy.admin_token_file " + file + " is empty");
    hash = privacy::Sha256Hex(token);
  }
  std::transform(hash.begin(), hash.end(), hash.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!hash.empty() && hash.size() != 64) {
    return Status::InvalidArgument("privacy.admin_token_sha256 must be 64 hex characters (sha256sum of the token)");
  }
  return hash;
}

// Who presents the request's bearer token, when it may submit regulations;
// otherwise the error answer is sent and nullopt returned (401: no or an
// unknown token; 403: a principal that is not an admin, or no way to tell).
std::optional<access::Principal> Admin(const serve::Request& req, const std::string& hash,
                                       access::QueryService* service, serve::Response& res) {
  if (hash.empty() && service == nullptr) {
    serve::SendError(res, 403, "forbidden",
                     "the regulations API is disabled: give an admin a token in the access policy "
                     "(clicklake access token), or set privacy.admin_token_sha256 / privacy.admin_token_file");
    return std::nullopt;
  }
  const std::string token = serve::BearerToken(req);
  if (token.empty()) {
    serve::SendError(res, 401, "unauthorized", "an admin bearer token is required (Authorization: Bearer <token>)");
    return std::nullopt;
  }
  if (!hash.empty()) {
    const std::string presented = privacy::Sha256Hex(token);
    if (CRYPTO_memcmp(presented.data(), hash.data(), hash.size()) == 0) {
      access::Principal p;
      p.name = "privacy.admin_token";
      p.role = "admin";
      return p;
    }
  }
  if (service == nullptr) {
    serve::SendError(res, 401, "unauthorized", "an admin bearer token is required");
    return std::nullopt;
  }
  auto principal = service->Authenticate(token);
  if (!principal.ok()) {
    serve::SendError(res, 401, "unauthorized", principal.status().message());
    return std::nullopt;
  }
  if (principal->role != "admin") {
    serve::SendError(res, 403, "forbidden",
                     principal->name + " (role " + principal->role + ") may not submit or read privacy regulations: "
                     "admin only");
    // The refusal is audited too (the principal is known).
    access::AuditRecord record;
    record.action = "regulation";
    record.principal = principal->name;
    record.role = principal->role;
    record.outcome = "denied";
    record.error = "admin only";
    record.detail = "{\"method\":" + JsonString(req.method) + ",\"path\":" + JsonString(req.path) + "}";
    if (Status s = access::AppendAuditRecord(service->options().lake_dir, record); !s.ok())
      spdlog::error("privacy: a refused regulations call was not audited: {}", s.ToString());
    return std::nullopt;
  }
  return std::move(principal).value();
}

}  // namespace

Status RegisterRegulationsRoutes(serve::ApiServer* server, const Config& config, access::QueryService* service) {
  ASSIGN_OR_RETURN(std::string hash, AdminTokenHash(config));
  ASSIGN_OR_RETURN(std::string key, pipeline::LoadPiiKey(pipeline::SilverOptions::FromConfig(config)));
  const std::string lake = config.lake_dir();
  server->Post("/api/v1/regulations", [hash, key, lake, service](const serve::Request& req, serve::Response& res) {
    auto admin = Admin(req, hash, service, res);
    if (!admin) return;
    access::AuditRecord record;
    record.action = "regulation";
    record.principal = admin->name;
    record.role = admin->role;
    auto parsed = privacy::ParseRegulation(req.body);
    if (!parsed.ok()) {
      record.outcome = "error";
      record.error = parsed.status().message();
      if (Status s = access::AppendAuditRecord(lake, record); !s.ok())
        spdlog::error("privacy: a rejected regulations call was not audited: {}", s.ToString());
      serve::SendError(res, 400, "bad_request", parsed.status().message());
      return;
    }
    // Audited before anything is queued (ids given now): no record, no request.
    const int64_t now = SystemClock()->NowMicros();
    std::string ids;
    for (auto& r : *parsed) {
      r.received_at_us = now;
      r.id = privacy::NewRequestId(now);
      ids += (ids.empty() ? "" : ",") + JsonString(r.id);
    }
    record.rows = static_cast<int64_t>(parsed->size());
    record.detail = "{\"request_ids\":[" + ids + "],\"regulationType\":" +
                    JsonString(parsed->empty() ? "" : privacy::RegulationTypeName(parsed->front().type)) + "}";
    if (Status s = access::AppendAuditRecord(lake, record); !s.ok()) {
      serve::SendError(res, 500, "internal", "the request could not be audited, so it was not queued: " + s.message());
      return;
    }
    std::string body = "{\"regulations\":[";
    for (size_t i = 0; i < parsed->size(); i++) {
      privacy::PrivacyRequest& r = (*parsed)[i];
      if (Status s = pipeline::SubmitPrivacyRequest(lake, key, &r); !s.ok()) {
        serve::SendError(res, 500, "internal", "queuing the request: " + s.message());
        return;
      }
      spdlog::info("privacy: {} queued from the API ({})", r.id, privacy::RegulationTypeName(r.type));
      body += (i ? "," : "") + std::string("{\"id\":") + JsonString(r.id) + ",\"regulationType\":" +
              JsonString(privacy::RegulationTypeName(r.type)) + ",\"status\":\"queued\"}";
    }
    serve::SendJson(res, body + "]}");
  });
  server->Get(R"(/api/v1/regulations/(rq-[0-9a-f-]+))",
              [hash, lake, service](const serve::Request& req, serve::Response& res) {
    if (!Admin(req, hash, service, res)) return;
    const std::string id = req.matches[1];
    auto receipt = pipeline::ReadReceipt(lake, id);
    if (receipt.ok()) {
      serve::SendJson(res, *receipt);
    } else if (privacy::RequestQueue(lake).IsPending(id)) {
      serve::SendJson(res, "{\"id\":" + JsonString(id) + ",\"status\":\"pending\"}");
    } else {
      serve::SendError(res, 404, "not_found", "no regulation " + id);
    }
  });
  return Status::OK();
}

}  // namespace clicklake::cli
