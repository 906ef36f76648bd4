#include "serve/query_api.h"

#include <simdjson.h>

#include <memory>

#include "common/json_string.h"

namespace clicklake::serve {
namespace {

// Status of a refused or failed query → HTTP status and stable code.
std::pair<int, const char*> Classify(const Status& s) {
  const std::string& m = s.message();
  if (m.rfind("audit:", 0) == 0) return {503, "audit_unavailable"};
  if (m.find("permission denied") != std::string::npos) return {403, "permission_denied"};
  if (m.rfind("timeout:", 0) == 0) return {408, "timeout"};
  return {400, "query_error"};
}

std::string ErrorJson(const Status& s) {
  std::string out = "{\"code\":";
  AppendJsonString(Classify(s).second, &out);
  out += ",\"message\":";
  AppendJsonString(s.message(), &out);
  return out + "}";
}

// One streamed query: its state across the content provider's calls.
struct Stream {
  std::unique_ptr<access::GovernedQuery> query;
  std::optional<engine::QueryResult> pending;  // the first chunk, read before the response started
  bool csv = false;
  bool started = false;
  bool first_row = true;
};

}  // namespace

void RegisterQueryApi(ApiServer* server, access::QueryService* service) {
  server->Post("/api/v1/query", [service](const Request& req, Response& res) {
    // A bearer token, or a user's password (HTTP Basic, RFC 7617).
    const std::string authorization = req.get_header_value("Authorization");
    const bool basic = authorization.size() >= 6 && (authorization.compare(0, 6, "Basic ") == 0 ||
                                                     authorization.compare(0, 6, "basic ") == 0);
    Result<access::Principal> principal = Status::Internal("unauthenticated");
    if (basic) {
      auto credentials = access::ParseBasicCredentials(authorization);
      principal = credentials.ok() ? service->AuthenticatePassword(credentials->first, credentials->second)
                                   : Result<access::Principal>(Status::InvalidArgument(
                                         "unauthorized: " + credentials.status().message()));
    } else {
      principal = service->Authenticate(BearerToken(req));
    }
    if (!principal.ok()) {
      const Status& s = principal.status();
      if (s.message().rfind("audit:", 0) == 0) {
        SendError(res, 503, "audit_unavailable", s.message());
        return;
      }
      const char* code = basic ? (s.IsNotFound() ? "invalid_credentials"
                                  : s.IsConflict() ? "user_revoked"
                                                   : "bad_credentials")
                               : (s.IsNotFound() ? "invalid_token"
                                  : s.IsConflict() ? "token_revoked"
                                                   : "missing_token");
      res.set_header("WWW-Authenticate", "Bearer, Basic realm=\"clicklake\", charset=\"UTF-8\"");
      SendError(res, 401, code, s.message());
      return;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element body;
    std::string_view sql, body_format;
    if (parser.parse(req.body).get(body) || body["sql"].get(sql)) {
      SendError(res, 400, "bad_request", "expected a JSON body {\"sql\": \"...\", \"format\": \"json\"|\"csv\"}");
      return;
    }
    std::string format = body["format"].get(body_format) ? "json" : std::string(body_format);
    if (req.has_param("format")) format = req.get_param_value("format");
    else if (req.get_header_value("Accept").find("text/csv") != std::string::npos) format = "csv";
    if (format != "json" && format != "csv") {
      SendError(res, 400, "bad_request", "format must be json or csv");
      return;
    }
    auto stream = std::make_shared<Stream>();
    stream->csv = format == "csv";
    auto query = service->Start(*principal, std::string(sql), /*audit_start=*/true);
    if (!query.ok()) {
      auto [status, code] = Classify(query.status());
      SendError(res, status, code, query.status().message());
      return;
    }
    stream->query = std::move(query).value();
    // The first chunk decides the status: a failure before any row is a plain error.
    auto first = stream->query->Next();
    if (!first.ok()) {
      Status audited = stream->query->Finish(first.status());
      const Status& shown = audited.ok() ? first.status() : audited;
      auto [status, code] = Classify(shown);
      SendError(res, status, code, shown.message());
      return;
    }
    if (first->has_value()) stream->pending = std::move(*first);
    res.set_chunked_content_provider(
        stream->csv ? "text/csv; charset=utf-8" : "application/json",
        [stream](size_t, httplib::DataSink& sink) {
          std::string out;
          const engine::QueryResult& header = stream->query->header();
          if (!stream->started) {
            stream->started = true;
            if (stream->csv) {
              header.AppendCsvHeader(&out);
            } else {
              out = "{\"columns\":[";
              for (size_t c = 0; c < header.column_count(); c++) {
                out += c ? ",{\"name\":" : "{\"name\":";
                AppendJsonString(header.column_name(c), &out);
                out += ",\"type\":";
                AppendJsonString(header.column_type_name(c), &out);
                out += "}";
              }
              out += "],\"rows\":[";
            }
          }
          std::optional<engine::QueryResult> chunk;
          Status failure;
          if (stream->pending) {
            chunk = std::move(stream->pending);
            stream->pending.reset();
          } else {
            auto next = stream->query->Next();
            if (next.ok()) chunk = std::move(*next);
            else failure = next.status();
          }
          if (chunk) {
            if (stream->csv) chunk->AppendCsvRows(&out);
            else chunk->AppendJsonRows(&out, &stream->first_row);
            return sink.write(out.data(), out.size());
          }
          // The end, or a failure: audit first; nothing more is sent unless recorded.
          Status audited = stream->query->Finish(failure);
          if (!audited.ok() || (!failure.ok() && stream->csv)) return false;  // aborts the transfer
          if (!stream->csv) {
            out += "],\"row_count\":" + std::to_string(stream->query->rows()) +
                   ",\"truncated\":" + (stream->query->truncated() ? "true" : "false");
            if (!failure.ok()) out += ",\"error\":" + ErrorJson(failure);
            out += "}\n";
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          sink.done();
          return true;
        },
        [stream](bool success) {
          if (!success) stream->query->Cancel();
          (void)stream->query->Finish(success ? Status::OK() : Status::Unavailable("the client went away"));
        });
  });
}

}  // namespace clicklake::serve
