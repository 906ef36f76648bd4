// The simulator's world: the shop's products and pages, marketing campaigns,
// referrers, real user-agent strings, public IP blocks by country, names.
//
// Internal to src/simulate. Static, immutable data; safe from any thread.
// IP blocks are real public ranges of large ISPs in each country so geo
// enrichment has something to resolve; they only ever appear as data in a JSON
// field, nothing is sent to them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace clicklake::simulate::catalog {

struct Product {
  std::string_view product_id;
  std::string_view sku;
  std::string_view category;
  std::string_view name;
  std::string_view brand;
  std::string_view slug;
  double price;
};
std::span<const Product> Products();

// device_class: desktop|mobile|tablet|bot; platform: web|ios|android.
struct UserAgent {
  std::string_view ua;
  std::string_view device_class;
  std::string_view platform;
  std::string_view os_name;
  std::string_view os_version;
  int weight;  // relative frequency
};
std::span<const UserAgent> WebUserAgents();
struct MobileDevice {
  std::string_view platform;  // ios|android
  std::string_view manufacturer;
  std::string_view model;
  std::string_view os_version;
  std::string_view user_agent;  // the shop app's in-app WebView on this device
};
std::span<const MobileDevice> MobileDevices();

struct Country {
  std::string_view code;  // ISO 3166-1 alpha-2
  std::string_view locale;
  std::string_view timezone;
  std::string_view currency;  // the shop charges USD or EUR
  // Public IPv4 /16 prefixes ("73.15") and IPv6 /32 prefixes ("2601:0645").
  std::span<const std::string_view> ipv4_prefixes;
  std::span<const std::string_view> ipv6_prefixes;
  int weight;
};
std::span<const Country> Countries();

struct Campaign {
  std::string_view source;
  std::string_view medium;
  std::string_view name;
  std::string_view term;      // "" when none
  std::string_view content;   // "" when none
  std::string_view referrer;  // where the click came from ("" = none, e.g. email)
  std::string_view landing_path;
};
std::span<const Campaign> Campaigns();

std::span<const std::string_view> SearchReferrers();
std::span<const std::string_view> SocialReferrers();
std::span<const std::string_view> OtherReferrers();

struct Experiment {
  std::string_view id;
  std::string_view name;
  std::string_view page_path;  // where it is shown
  std::span<const std::string_view> variants;
};
std::span<const Experiment> Experiments();

struct ContentPage {
  std::string_view path;
  std::string_view title;
  std::string_view name;
};
std::span<const ContentPage> ContentPages();

std::span<const std::string_view> FirstNames();
std::span<const std::string_view> LastNames();
std::span<const std::string_view> SearchQueries();
std::span<const std::string_view> Buttons();
std::span<const std::string_view> Companies();

inline constexpr std::string_view kSiteHost = "shop.clicklake.dev";
inline constexpr std::string_view kAppName = "Clicklake Shop";

}  // namespace clicklake::simulate::catalog
