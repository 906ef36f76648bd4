// The API server: built-in routes, routes added by components, JSON errors,
// bearer tokens, TLS, and refusing a half-configured TLS setup.
#include "serve/api_server.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/metrics.h"
#include "common/test_util.h"

namespace clicklake::serve {
namespace {

std::unique_ptr<ApiServer> StartServer(ApiServerOptions options, const std::function<void(ApiServer&)>& routes = {}) {
  auto created = ApiServer::Create(options);
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return nullptr;
  auto server = std::move(created).value();
  if (routes) routes(*server);
  EXPECT_TRUE(server->Start().ok());
  return server;
}

ApiServerOptions AnyPort() {
  ApiServerOptions o;
  o.port = 0;
  return o;
}

TEST(ApiServerTest, ServesHealthAndMetricsOnLoopback) {
  MetricsRegistry::Global()->GetCounter("clicklake_api_test_total", "a counter this test sets")->Increment(3);
  auto server = StartServer(AnyPort());
  ASSERT_TRUE(server);
  EXPECT_GT(server->port(), 0);
  httplib::Client client("127.0.0.1", server->port());
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("clicklake_api_test_total 3"), std::string::npos) << metrics->body;
  EXPECT_EQ(client.Get("/nowhere")->status, 404);
}

TEST(ApiServerTest, RoutesErrorsAndBearerTokens) {
  auto server = StartServer(AnyPort(), [](ApiServer& s) {
    s.Post("/api/v1/echo", [](const Request& req, Response& res) {
      std::string token = BearerToken(req);
      if (token.empty()) return SendError(res, 401, "unauthorized", "a bearer token is required");
      SendJson(res, "{\"token\":\"" + token + "\",\"body\":\"" + req.body + "\"}");
    });
    s.Get(R"(/api/v1/items/(\w+))", [](const Request& req, Response& res) { SendJson(res, "\"" + std::string(req.matches[1]) + "\""); });
    s.Get("/api/v1/boom", [](const Request&, Response&) { throw std::runtime_error("broken \"handler\""); });
  });
  ASSERT_TRUE(server);
  httplib::Client client("127.0.0.1", server->port());
  auto unauthorized = client.Post("/api/v1/echo", "x", "text/plain");
  ASSERT_TRUE(unauthorized);
  EXPECT_EQ(unauthorized->status, 401);
  EXPECT_EQ(unauthorized->body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"a bearer token is required\"}}\n");
  auto ok = client.Post("/api/v1/echo", {{"Authorization", "Bearer t0k"}}, "x", "text/plain");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, R"({"token":"t0k","body":"x"})");
  EXPECT_EQ(client.Post("/api/v1/echo", {{"Authorization", "Basic t0k"}}, "x", "text/plain")->status, 401);
  EXPECT_EQ(client.Get("/api/v1/items/abc")->body, "\"abc\"");
  auto boom = client.Get("/api/v1/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_NE(boom->body.find(R"("code":"internal")"), std::string::npos) << boom->body;
  EXPECT_NE(boom->body.find(R"(broken \"handler\")"), std::string::npos) << boom->body;
  server->Stop();
  server->Stop();  // idempotent
  EXPECT_FALSE(client.Get("/healthz"));
}

TEST(ApiServerTest, ServesHttpsWhenCertificateAndKeyAreSet) {
  clicklake::testing::TempDir dir;
  std::string cert, key;
  ASSERT_TRUE(clicklake::testing::MakeSelfSignedCertificate(dir, &cert, &key));
  ApiServerOptions options = AnyPort();
  options.tls_cert = cert;
  options.tls_key = key;
  auto server = StartServer(options);
  ASSERT_TRUE(server);
  EXPECT_TRUE(server->tls());
  httplib::SSLClient tls_client("127.0.0.1", server->port());
  tls_client.set_ca_cert_path(cert.c_str());
  tls_client.enable_server_certificate_verification(true);
  auto res = tls_client.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  httplib::Client plain("127.0.0.1", server->port());
  plain.set_read_timeout(2, 0);
  auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST(ApiServerTest, RefusesHalfConfiguredTlsAndMissingFiles) {
  ApiServerOptions only_cert = AnyPort();
  only_cert.tls_cert = "/nonexistent/cert.pem";
  EXPECT_EQ(ApiServer::Create(only_cert).status().code(), StatusCode::kInvalidArgument);
  ApiServerOptions missing = only_cert;
  missing.tls_key = "/nonexistent/key.pem";
  EXPECT_EQ(ApiServer::Create(missing).status().code(), StatusCode::kNotFound);
}

TEST(ApiServerTest, OptionsComeFromConfig) {
  Config config;
  EXPECT_FALSE(ApiServerOptions::FromConfig(config).enabled());
  config.Set("api.port", "8081");
  config.Set("api.host", "0.0.0.0");
  ApiServerOptions o = ApiServerOptions::FromConfig(config);
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.port, 8081);
  EXPECT_EQ(o.host, "0.0.0.0");
}

}  // namespace
}  // namespace clicklake::serve
