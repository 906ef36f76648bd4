// TLS: the collector serves HTTPS when collector.tls_cert/tls_key are set. The
// certificate is self-signed, generated here with the openssl CLI.
#define CPPHTTPLIB_OPENSSL_SUPPORT
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>

#include "collector/collector.h"
#include "collector/tests/fake_event_log.h"
#include "collector/tests/http_test_client.h"
#include "common/test_util.h"

namespace clicklake::collector {
namespace {

TEST(CollectorTlsTest, ServesSegmentOverTls) {
  clicklake::testing::TempDir dir;
  std::string cert, key;
  ASSERT_TRUE(clicklake::testing::MakeSelfSignedCertificate(dir, &cert, &key));

  testing::FakeEventLog log;
  CollectorOptions options;
  options.port = 0;
  options.tls_cert = cert;
  options.tls_key = key;
  options.write_keys["wk"] = "web";
  auto created = Collector::Create(options, &log);
  ASSERT_TRUE(created.ok()) << created.status();
  auto collector = std::move(created).value();
  ASSERT_OK(collector->Start());

  httplib::SSLClient client("127.0.0.1", collector->port());
  client.enable_server_certificate_verification(true);
  client.set_ca_cert_path(cert.c_str());
  client.set_basic_auth("wk", "");
  auto res = client.Post("/v1/track", R"({"userId":"u","event":"tls"})", "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"success":true})");
  // Keep-alive over TLS.
  res = client.Post("/v1/track", R"({"userId":"u","event":"tls2"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto events = log.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].payload.find("\"tls\""), std::string::npos);

  // Plain HTTP to the TLS port gets no HTTP answer.
  auto plain = testing::Request(collector->port(), "GET", "/health", "", {}, 2000);
  EXPECT_EQ(plain.status, 0);
  EXPECT_OK(collector->Stop());
}

TEST(CollectorTlsTest, BadCertificateFailsStart) {
  clicklake::testing::TempDir dir;
  std::string cert = dir.Sub("cert.pem");
  FILE* f = std::fopen(cert.c_str(), "w");
  std::fputs("not a certificate", f);
  std::fclose(f);
  testing::FakeEventLog log;
  CollectorOptions options;
  options.port = 0;
  options.tls_cert = cert;
  options.tls_key = cert;
  auto collector = Collector::Create(options, &log);
  ASSERT_TRUE(collector.ok());
  EXPECT_STATUS((*collector)->Start(), kInvalidArgument);
}

}  // namespace
}  // namespace clicklake::collector
