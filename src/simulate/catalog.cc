#include "simulate/catalog.h"

namespace clicklake::simulate::catalog {

namespace {

constexpr Product kProducts[] = {
    {"prod_1001", "SKU-RUN-001", "Shoes", "Trail Runner 2", "Northpeak", "trail-runner-2", 129.99},
    {"prod_1002", "SKU-RUN-002", "Shoes", "Road Racer Lite", "Northpeak", "road-racer-lite", 89.50},
    {"prod_1003", "SKU-RUN-003", "Shoes", "Everyday Sneaker", "Urbanfield", "everyday-sneaker", 64.00},
    {"prod_1004", "SKU-APP-001", "Apparel", "Merino Base Layer", "Woolhaus", "merino-base-layer", 74.95},
    {"prod_1005", "SKU-APP-002", "Apparel", "Rain Shell Jacket", "Northpeak", "rain-shell-jacket", 159.00},
    {"prod_1006", "SKU-APP-003", "Apparel", "Running Socks 3-Pack", "Urbanfield", "running-socks-3-pack", 19.99},
    {"prod_1007", "SKU-APP-004", "Apparel", "Cap Classic", "Urbanfield", "cap-classic", 24.50},
    {"prod_1008", "SKU-ELE-001", "Electronics", "GPS Watch Pro", "Tempo", "gps-watch-pro", 349.00},
    {"prod_1009", "SKU-ELE-002", "Electronics", "Wireless Earbuds", "Tempo", "wireless-earbuds", 99.99},
    {"prod_1010", "SKU-ELE-003", "Electronics", "Heart Rate Strap", "Tempo", "heart-rate-strap", 49.90},
    {"prod_1011", "SKU-GEA-001", "Gear", "Hydration Vest 5L", "Northpeak", "hydration-vest-5l", 84.00},
    {"prod_1012", "SKU-GEA-002", "Gear", "Trekking Poles", "Northpeak", "trekking-poles", 119.00},
    {"prod_1013", "SKU-GEA-003", "Gear", "Headlamp 400", "Lumen", "headlamp-400", 39.95},
    {"prod_1014", "SKU-GEA-004", "Gear", "Water Bottle 750ml", "Urbanfield", "water-bottle-750ml", 14.99},
    {"prod_1015", "SKU-NUT-001", "Nutrition", "Energy Gel 12-Pack", "Fuelwise", "energy-gel-12-pack", 21.60},
    {"prod_1016", "SKU-NUT-002", "Nutrition", "Electrolyte Tabs", "Fuelwise", "electrolyte-tabs", 9.99},
    {"prod_1017", "SKU-BOO-001", "Books", "Marathon Training Plan", "Pace Press", "marathon-training-plan", 27.00},
    {"prod_1018", "SKU-APP-005", "Apparel", "Thermal Gloves", "Woolhaus", "thermal-gloves", 34.00},
};

constexpr UserAgent kWebUserAgents[] = {
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
     "desktop", "web", "Windows", "10", 22},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
     "desktop", "web", "Windows", "10", 6},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36",
     "desktop", "web", "Mac OS X", "10.15.7", 10},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Safari/605.1.15",
     "desktop", "web", "Mac OS X", "10.15.7", 8},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "desktop", "web", "Windows",
     "10", 5},
    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "desktop", "web", "Ubuntu", "",
     2},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "desktop",
     "web", "Linux", "", 2},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
     "Edg/120.0.2210.91",
     "desktop", "web", "Windows", "10", 6},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Mobile/15E148 Safari/604.1",
     "mobile", "web", "iOS", "17.2.1", 14},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
     "Mobile/15E148 Safari/604.1",
     "mobile", "web", "iOS", "16.6", 5},
    {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile "
     "Safari/537.36",
     "mobile", "web", "Android", "14", 6},
    {"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile "
     "Safari/537.36",
     "mobile", "web", "Android", "13", 7},
    {"Mozilla/5.0 (Linux; Android 13; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
     "Chrome/115.0.0.0 Mobile Safari/537.36",
     "mobile", "web", "Android", "13", 3},
    {"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Mobile/15E148 "
     "Safari/604.1",
     "tablet", "web", "iOS", "17.2", 3},
    {"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
     "Safari/537.36",
     "tablet", "web", "Android", "13", 1},
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "web", "Other", "", 2},
    {"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.6045.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot", "web", "Android", "6.0.1", 1},
    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", "web", "Other", "", 1},
};

constexpr MobileDevice kMobileDevices[] = {
    {"ios", "Apple", "iPhone15,2", "17.2.1",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"ios", "Apple", "iPhone14,5", "16.7.4",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"ios", "Apple", "iPhone16,1", "17.1.2",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"},
    {"android", "Google", "Pixel 7", "14",
     "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36"},
    {"android", "samsung", "SM-G991B", "13",
     "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36"},
    {"android", "samsung", "SM-S918B", "14",
     "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/120.0.6099.210 Mobile Safari/537.36"},
};

constexpr std::string_view kUsV4[] = {"73.15", "73.162", "24.4", "98.207", "68.83", "71.202"};
constexpr std::string_view kUsV6[] = {"2601:0645", "2601:0282", "2600:1700", "2600:6c50"};
constexpr std::string_view kDeV4[] = {"79.200", "91.20", "87.123", "93.199"};
constexpr std::string_view kDeV6[] = {"2003:00e2", "2003:00c5", "2a02:8108"};
constexpr std::string_view kGbV4[] = {"86.150", "81.154", "2.24", "90.206"};
constexpr std::string_view kGbV6[] = {"2a02:0c7f", "2a00:23c5", "2a01:4b00"};
constexpr std::string_view kFrV4[] = {"90.10", "86.245", "82.64", "78.192"};
constexpr std::string_view kFrV6[] = {"2a01:0cb0", "2a01:0e0a"};
constexpr std::string_view kNlV4[] = {"77.160", "84.24", "145.53"};
constexpr std::string_view kNlV6[] = {"2a02:a440", "2001:1c00"};
constexpr std::string_view kEsV4[] = {"83.32", "88.0", "79.148"};
constexpr std::string_view kEsV6[] = {"2a0c:5a80"};
constexpr std::string_view kCaV4[] = {"99.230", "24.114", "142.113"};
constexpr std::string_view kCaV6[] = {"2607:fea8", "2607:f2c0"};
constexpr std::string_view kBrV4[] = {"177.10", "189.6", "187.64"};
constexpr std::string_view kBrV6[] = {"2804:14c0", "2804:0d59"};
constexpr std::string_view kInV4[] = {"49.36", "117.199", "106.208"};
constexpr std::string_view kInV6[] = {"2409:4042", "2405:0201"};
constexpr std::string_view kJpV4[] = {"126.10", "60.67", "153.212"};
constexpr std::string_view kJpV6[] = {"240b:0010", "2400:4051"};
constexpr std::string_view kAuV4[] = {"1.120", "101.160", "110.144"};
constexpr std::string_view kAuV6[] = {"2001:8003", "2403:5800"};

constexpr Country kCountries[] = {
    {"US", "en-US", "America/New_York", "USD", kUsV4, kUsV6, 34},
    {"DE", "de-DE", "Europe/Berlin", "EUR", kDeV4, kDeV6, 10},
    {"GB", "en-GB", "Europe/London", "USD", kGbV4, kGbV6, 10},
    {"FR", "fr-FR", "Europe/Paris", "EUR", kFrV4, kFrV6, 7},
    {"NL", "nl-NL", "Europe/Amsterdam", "EUR", kNlV4, kNlV6, 4},
    {"ES", "es-ES", "Europe/Madrid", "EUR", kEsV4, kEsV6, 4},
    {"CA", "en-CA", "America/Toronto", "USD", kCaV4, kCaV6, 7},
    {"BR", "pt-BR", "America/Sao_Paulo", "USD", kBrV4, kBrV6, 6},
    {"IN", "en-IN", "Asia/Kolkata", "USD", kInV4, kInV6, 8},
    {"JP", "ja-JP", "Asia/Tokyo", "USD", kJpV4, kJpV6, 5},
    {"AU", "en-AU", "Australia/Sydney", "USD", kAuV4, kAuV6, 5},
};

constexpr Campaign kCampaigns[] = {
    {"google", "cpc", "black_friday_2026", "running shoes", "ad_group_shoes", "https://www.google.com/",
     "/category/shoes"},
    {"google", "cpc", "brand_search", "clicklake shop", "", "https://www.google.com/", "/"},
    {"bing", "cpc", "black_friday_2026", "gps watch", "ad_group_watches", "https://www.bing.com/",
     "/product/gps-watch-pro"},
    {"facebook", "paid_social", "retargeting_q4", "", "carousel_v2", "https://www.facebook.com/", "/category/apparel"},
    {"instagram", "social", "influencer_fall", "", "story_link", "https://l.instagram.com/", "/product/trail-runner-2"},
    {"newsletter", "email", "weekly_digest_48", "", "hero_banner", "", "/category/gear"},
    {"newsletter", "email", "cart_reminder", "", "cta_button", "", "/cart"},
    {"linkedin", "paid_social", "team_wellness_b2b", "", "sponsored_post", "https://www.linkedin.com/", "/pricing"},
    {"partner_blog", "referral", "spring_affiliates", "", "review_link", "https://www.runnersworld.com/",
     "/product/road-racer-lite"},
};

constexpr std::string_view kSearchReferrers[] = {
    "https://www.google.com/", "https://www.google.de/",  "https://www.google.co.uk/",
    "https://www.bing.com/",   "https://duckduckgo.com/", "https://search.yahoo.com/",
};
constexpr std::string_view kSocialReferrers[] = {
    "https://www.facebook.com/", "https://t.co/", "https://www.linkedin.com/", "https://www.reddit.com/r/running/",
    "https://l.instagram.com/",
};
constexpr std::string_view kOtherReferrers[] = {
    "https://www.runnersworld.com/gear/best-trail-shoes",
    "https://news.ycombinator.com/",
    "https://www.strava.com/",
    "https://medium.com/@coach/training-gear",
};

constexpr std::string_view kTwoVariants[] = {"control", "treatment"};
constexpr std::string_view kPricingVariants[] = {"control", "annual_first", "monthly_first"};
constexpr std::string_view kHeroVariants[] = {"control", "video_hero"};
constexpr Experiment kExperiments[] = {
    {"exp_checkout_button", "Checkout Button Color", "/checkout", kTwoVariants},
    {"exp_pricing_layout", "Pricing Page Layout", "/pricing", kPricingVariants},
    {"exp_home_hero", "Home Hero", "/", kHeroVariants},
};

constexpr ContentPage kContentPages[] = {
    {"/", "Clicklake Shop - Gear for Runners", "Home"},
    {"/pricing", "Membership Pricing - Clicklake Shop", "Pricing"},
    {"/blog/how-to-choose-trail-shoes", "How to Choose Trail Shoes", "Blog Post"},
    {"/blog/marathon-nutrition-101", "Marathon Nutrition 101", "Blog Post"},
    {"/about", "About Us - Clicklake Shop", "About"},
    {"/help/shipping", "Shipping & Returns", "Help"},
    {"/stores", "Find a Store", "Stores"},
};

constexpr std::string_view kFirstNames[] = {
    "Emma",   "Liam",  "Olivia", "Noah", "Ava",    "Lucas", "Mia",  "Leon", "Sofia", "Mateo", "Chloe", "Hugo",
    "Hannah", "Arjun", "Priya",  "Yuki", "Haruto", "Ana",   "Joao", "Lena", "Finn",  "Zoe",   "Omar",  "Amelia",
};
constexpr std::string_view kLastNames[] = {
    "Smith", "Müller", "Johnson", "Martin", "Garcia",   "Brown",     "Schmidt", "Dubois", "Silva",    "Patel",
    "Sato",  "Tanaka", "Jones",   "Wilson", "de Vries", "Fernández", "O'Brien", "Nguyen", "Kowalski", "Rossi",
};
constexpr std::string_view kSearchQueries[] = {
    "trail shoes",   "waterproof jacket", "gps watch",    "socks",  "headlamp",      "gel",
    "marathon plan", "earbuds",           "running vest", "gloves", "size 44 shoes", "gift card",
};
constexpr std::string_view kButtons[] = {
    "Add to Wishlist", "Size Guide", "Subscribe Newsletter", "Filter: Price",
    "Sort: Popular",   "Share",      "Chat with Us",         "Load More",
};
constexpr std::string_view kCompanies[] = {
    "Acme Running Club", "Globex Sports", "Initech Wellness", "Umbrella Outdoor", "Stark Fitness",
};

}  // namespace

std::span<const Product> Products() { return kProducts; }
std::span<const UserAgent> WebUserAgents() { return kWebUserAgents; }
std::span<const MobileDevice> MobileDevices() { return kMobileDevices; }
std::span<const Country> Countries() { return kCountries; }
std::span<const Campaign> Campaigns() { return kCampaigns; }
std::span<const std::string_view> SearchReferrers() { return kSearchReferrers; }
std::span<const std::string_view> SocialReferrers() { return kSocialReferrers; }
std::span<const std::string_view> OtherReferrers() { return kOtherReferrers; }
std::span<const Experiment> Experiments() { return kExperiments; }
std::span<const ContentPage> ContentPages() { return kContentPages; }
std::span<const std::string_view> FirstNames() { return kFirstNames; }
std::span<const std::string_view> LastNames() { return kLastNames; }
std::span<const std::string_view> SearchQueries() { return kSearchQueries; }
std::span<const std::string_view> Buttons() { return kButtons; }
std::span<const std::string_view> Companies() { return kCompanies; }

}  // namespace clicklake::simulate::catalog
