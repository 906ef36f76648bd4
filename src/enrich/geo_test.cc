#include "enrich/geo.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/test_util.h"

namespace clicklake::enrich {
namespace {

std::string DepsFile(const std::string& name) {
  return std::filesystem::path(DefaultGeoDbPath()).parent_path().string() + "/" + name;
}

class GeoDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = GeoDb::Open(GeoOptions{});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }
  std::unique_ptr<GeoDb> db_;
};

// Expected countries are what the shipped DB says (checked with mmdblookup).
TEST_F(GeoDbTest, WellKnownResolversHaveTheirCountry) {
  EXPECT_EQ(db_->Lookup("8.8.8.8").country, "US");      // Google Public DNS
  EXPECT_EQ(db_->Lookup("1.1.1.1").country, "AU");      // Cloudflare (APNIC research prefix)
  EXPECT_EQ(db_->Lookup("9.9.9.9").country, "US");      // Quad9
  EXPECT_EQ(db_->Lookup("77.88.8.8").country, "RU");    // Yandex DNS
  EXPECT_EQ(db_->Lookup("193.0.6.139").country, "NL");  // RIPE NCC
  EXPECT_EQ(db_->Lookup("2001:4860:4860::8888").country, "US");
  EXPECT_EQ(db_->Lookup("2606:4700:4700::1111").country, "US");
  EXPECT_EQ(db_->Lookup("2a02:6b8::feed:0ff").country, "RU");
  // The country DB has no region or city.
  GeoLocation g = db_->Lookup("8.8.8.8");
  EXPECT_EQ(g.region, std::nullopt);
  EXPECT_EQ(g.city, std::nullopt);
  EXPECT_EQ(db_->database_type(), "country ipvAll");
}

TEST_F(GeoDbTest, AddressSpellings) {
  EXPECT_EQ(db_->Lookup(" 8.8.8.8\n").country, "US");
  EXPECT_EQ(db_->Lookup("::ffff:8.8.8.8").country, "US");  // IPv4-mapped, as dual-stack sockets report
  EXPECT_EQ(db_->Lookup("[2001:4860:4860::8888]").country, "US");
  EXPECT_EQ(db_->Lookup("fe80::1%eth0").country, std::nullopt);
  EXPECT_EQ(db_->Lookup("2001:4860:4860:0:0:0:0:8888").country, "US");
}

TEST_F(GeoDbTest, InvalidAndUnknownAddressesAreEmpty) {
  for (const char* ip : {"", " ", "not an ip", "8.8.8", "8.8.8.8.8", "256.1.1.1", "1.2.3.-4", "8.8.8.8:53", "::g",
                         "1::2::3", "dns.google", "10.0.0.1", "127.0.0.1", "::1", "0.0.0.0", "\xff\xfe\x00"}) {
    EXPECT_TRUE(db_->Lookup(ip).empty()) << ip;
  }
  EXPECT_TRUE(db_->Lookup(std::string(100000, '1')).empty());
  EXPECT_TRUE(db_->Lookup(std::string("8.8.8.8\0junk", 12)).empty());
}

TEST_F(GeoDbTest, CacheAndConcurrency) {
  GeoOptions options;
  options.cache_capacity = 8;
  auto db = GeoDb::Open(options);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->Lookup("8.8.8.8").country, "US");
  EXPECT_EQ((*db)->Lookup("8.8.8.8").country, "US");
  EXPECT_EQ((*db)->cache_hits(), 1);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        const char* ip = (i % 3 == 0) ? "8.8.8.8" : (i % 3 == 1) ? "77.88.8.8" : "1.1.1.1";
        const char* want = (i % 3 == 0) ? "US" : (i % 3 == 1) ? "RU" : "AU";
        if ((*db)->Lookup(ip).country != want) wrong.fetch_add(1);
        (void)(*db)->Lookup("10.1.2." + std::to_string(i % 50));  // evictions
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(GeoDbOpenTest, SeparateIpv4AndIpv6Files) {
  GeoOptions v4;
  v4.db_path = DepsFile("geo-whois-asn-country-ipv4.mmdb");
  auto db4 = GeoDb::Open(v4);
  ASSERT_TRUE(db4.ok()) << db4.status().ToString();
  EXPECT_EQ((*db4)->Lookup("8.8.8.8").country, "US");
  // An IPv6 address in an IPv4-only DB is no answer, not an error.
  EXPECT_TRUE((*db4)->Lookup("2001:4860:4860::8888").empty());
  GeoOptions v6;
  v6.db_path = DepsFile("geo-whois-asn-country-ipv6.mmdb");
  auto db6 = GeoDb::Open(v6);
  ASSERT_TRUE(db6.ok()) << db6.status().ToString();
  EXPECT_EQ((*db6)->Lookup("2001:4860:4860::8888").country, "US");
  EXPECT_TRUE((*db6)->Lookup("8.8.8.8").empty());
}

TEST(GeoDbOpenTest, MissingOrCorruptFiles) {
  GeoOptions missing;
  missing.db_path = "/nonexistent/geo.mmdb";
  EXPECT_STATUS(GeoDb::Open(missing), kNotFound);
  clicklake::testing::TempDir dir;
  std::string bogus = dir.Sub("bogus.mmdb");
  std::ofstream(bogus) << "this is not a MaxMind DB";
  GeoOptions corrupt;
  corrupt.db_path = bogus;
  EXPECT_STATUS(GeoDb::Open(corrupt), kCorruption);
}

}  // namespace
}  // namespace clicklake::enrich
