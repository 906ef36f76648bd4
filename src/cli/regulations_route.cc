#include "cli/regulations_route.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/json_string.h"
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

bool IsAdmin(const serve::Request& req, const std::string& hash, serve::Response& res) {
  if (hash.empty()) {
    serve::SendError(res, 403, "forbidden",
                     "the regulations API is disabled: set privacy.admin_token_sha256 or privacy.admin_token_file");
    return false;
  }
  const std::string token = serve::BearerToken(req);
  const std::string presented = privacy::Sha256Hex(token);
  if (token.empty() || CRYPTO_memcmp(presented.data(), hash.data(), hash.size()) != 0) {
    serve::SendError(res, 401, "unauthorized", "an admin bearer token is required");
    return false;
  }
  return true;
}

}  // namespace

Status RegisterRegulationsRoutes(serve::ApiServer* server, const Config& config) {
  ASSIGN_OR_RETURN(std::string hash, AdminTokenHash(config));
  ASSIGN_OR_RETURN(std::string key, pipeline::LoadPiiKey(pipeline::SilverOptions::FromConfig(config)));
  const std::string lake = config.lake_dir();
  server->Post("/api/v1/regulations", [hash, key, lake](const serve::Request& req, serve::Response& res) {
    if (!IsAdmin(req, hash, res)) return;
    auto parsed = privacy::ParseRegulation(req.body);
    if (!parsed.ok()) {
      serve::SendError(res, 400, "bad_request", parsed.status().message());
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
  server->Get(R"(/api/v1/regulations/(rq-[0-9a-f-]+))", [hash, lake](const serve::Request& req, serve::Response& res) {
    if (!IsAdmin(req, hash, res)) return;
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
