// TrafficGenerator: a population of users living sessions in simulated time.
//
// Each user has one or two devices (a browser or a mobile app, each with a
// persistent anonymousId), a country (IP, locale, timezone, currency), maybe an
// account (userId + traits), experiment assignments and maybe a skewed clock.
// A whole session is scripted at once when its start is the earliest thing
// pending; its events go into a time-ordered stream, so batches come out in
// simulated-time order across users. Faults are applied while batches are
// assembled. Randomness comes from one mt19937_64 with distributions written
// here, so a seed gives the same traffic everywhere.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "simulate/catalog.h"
#include "simulate/json_writer.h"
#include "simulate/simulator.h"

namespace clicklake::simulate {

namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
// Sessions of one user are at least this far apart (the pipeline's timeout is 30 min).
constexpr int64_t kMinSessionGap = 31 * kMinute;
// Events inside a session are at most this far apart.
constexpr int64_t kMaxEventGap = 25 * kMinute;

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t Bits() { return gen_(); }
  // [0, 1)
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return p > 0 && Uniform() < p; }
  // [lo, hi]
  int64_t Int(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(gen_() % static_cast<uint64_t>(hi - lo + 1)); }
  double Range(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  double Exp(double mean) { return -mean * std::log1p(-Uniform()); }
  // Micros: exponential with the given mean, clamped to [lo, hi].
  int64_t Gap(int64_t mean, int64_t lo, int64_t hi) {
    return std::clamp(static_cast<int64_t>(Exp(static_cast<double>(mean))), lo, hi);
  }
  template <typename T>
  const T& Pick(std::span<const T> items) {
    return items[static_cast<size_t>(Int(0, static_cast<int64_t>(items.size()) - 1))];
  }
  template <typename T>
  const T& PickWeighted(std::span<const T> items) {
    int total = 0;
    for (const T& it : items) total += it.weight;
    int64_t r = Int(0, total - 1);
    for (const T& it : items) {
      r -= it.weight;
      if (r < 0) return it;
    }
    return items.back();
  }
  std::string Hex(int n) {
    static const char kHex[] = "0123456789abcdef";
    std::string s;
    uint64_t bits = 0;
    for (int i = 0; i < n; ++i) {
      if (i % 16 == 0) bits = gen_();
      s.push_back(kHex[bits & 0xf]);
      bits >>= 4;
    }
    return s;
  }
  // A version-4-shaped UUID.
  std::string Uuid() {
    std::string h = Hex(32);
    h[12] = '4';
    h[16] = "89ab"[h[16] % 4];
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
           h.substr(20, 12);
  }
  template <typename T>
  void Shuffle(std::vector<T>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[static_cast<size_t>(Int(0, i - 1))]);
  }

 private:
  std::mt19937_64 gen_;
};

std::string Slugify(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Device {
  std::string anonymous_id;
  std::string platform;      // web|ios|android
  std::string device_class;  // desktop|mobile|tablet|bot
  std::string user_agent;
  const catalog::MobileDevice* mobile = nullptr;  // apps only
  std::string device_id;                          // apps only
  std::string ip;
  std::string app_version;
  int app_build = 0;
  bool logged_in = false;  // the SDK on this device knows the userId
};

struct User {
  int index = 0;
  const catalog::Country* country = nullptr;
  std::vector<Device> devices;
  bool is_bot = false;
  bool has_account = false;   // an account exists (userId known to the shop)
  bool will_sign_up = false;  // will create an account during the run
  std::string user_id;
  std::string first_name, last_name, email, phone, plan;
  int64_t created_at_us = 0;
  int traits_version = 0;
  std::string group_id;
  const std::string_view* company = nullptr;
  std::vector<int> variants;  // per catalog::Experiments() entry
  int64_t clock_offset_us = 0;
  double activity = 1.0;  // multiplies the gap between sessions
  int sessions = 0;
};

// An event waiting in the stream.
struct Pending {
  int64_t ts_us = 0;
  int64_t seq = 0;
  int user = 0;
  int device = 0;
  bool session_end = false;
  bool server = false;  // sent by the shop's backend: never skewed, no fault extras
  EventRecord rec;
};

struct PendingLater {
  bool operator()(const Pending& a, const Pending& b) const {
    return a.ts_us != b.ts_us ? a.ts_us > b.ts_us : a.seq > b.seq;
  }
};

// Where the user is while a session is scripted.
struct PageState {
  std::string url, path, title, referrer, search, name;
  std::string category;                         // page properties.category ("" = none)
  const catalog::Campaign* campaign = nullptr;  // set on the landing page of a campaign visit
  const catalog::Experiment* experiment = nullptr;
  std::string variant;
};

struct CartLine {
  const catalog::Product* product;
  int quantity;
};

}  // namespace

std::string FormatIsoMillis(int64_t micros) {
  int64_t days = micros >= 0 ? micros / kDay : -((-micros + kDay - 1) / kDay);
  int64_t rem = micros - days * kDay;
  // civil_from_days (Howard Hinnant).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  int64_t secs = rem / kSecond;
  int64_t millis = (rem % kSecond) / 1000;
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(secs / 3600),
                static_cast<long long>((secs / 60) % 60), static_cast<long long>(secs % 60),
                static_cast<long long>(millis));
  return buf;
}

std::string GeneratedBatch::Body(int64_t sent_at_us) const {
  std::string body;
  size_t size = 40;
  for (const EventRecord& e : events) size += e.json.size() + 1;
  body.reserve(size);
  body.append("{\"batch\":[");
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) body.push_back(',');
    body.append(events[i].json);
  }
  body.append("],\"sentAt\":\"");
  body.append(FormatIsoMillis(sent_at_us + clock_offset_us));
  body.append("\"}");
  return body;
}

std::string GeneratedBatch::EventPayload(const EventRecord& e, int64_t sent_at_us) const {
  return "{\"sentAt\":\"" + FormatIsoMillis(sent_at_us + clock_offset_us) + "\"," + e.json.substr(1);
}

int64_t GeneratedBatch::DefaultSentAtMicros() const {
  int64_t latest = 0;
  for (const EventRecord& e : events) latest = std::max(latest, e.true_time_us);
  return latest + kSecond;
}

std::string OutRecordJson(const EventRecord& r, const std::string& sent_at, int64_t batch) {
  JsonWriter w;
  w.BeginObject();
  w.Field("messageId", r.message_id);
  w.Field("type", r.type);
  w.Key("event");
  r.event.empty() ? w.Null() : w.String(r.event);
  w.Key("userId");
  r.user_id.empty() ? w.Null() : w.String(r.user_id);
  w.Key("anonymousId");
  r.anonymous_id.empty() ? w.Null() : w.String(r.anonymous_id);
  w.Field("timestamp", r.timestamp);
  w.Field("sentAt", sent_at);
  w.Field("true_time", FormatIsoMillis(r.true_time_us));
  w.FieldInt("batch", batch);
  if (!r.duplicate_of.empty()) w.Field("duplicate_of", r.duplicate_of);
  w.Key("fault").BeginArray();
  for (const std::string& f : r.faults) w.String(f);
  w.EndArray();
  w.Key("properties").BeginObject();
  if (r.has_revenue) {
    w.FieldMoney("revenue", r.revenue);
    w.Field("currency", r.currency);
  }
  if (!r.order_id.empty()) w.Field("order_id", r.order_id);
  w.EndObject();
  w.FieldBool("acked", true);
  w.Key("payload").Raw(r.json);
  w.EndObject();
  return w.Take();
}

class TrafficGenerator::Impl {
 public:
  explicit Impl(const SimulatorOptions& options) : opt_(options), rng_(options.seed * 0x9E3779B97F4A7C15ULL + 17) {
    opt_.users = std::max(1, opt_.users);
    opt_.batch_size = std::max(1, opt_.batch_size);
    if (opt_.rate <= 0) opt_.rate = 1;
    if (opt_.time_scale <= 0) opt_.time_scale = 1;
    PlanGaps();
    for (int i = 0; i < opt_.users; ++i) users_.push_back(MakeUser(i));
    for (User& u : users_) {
      int64_t first = opt_.start_time_us + static_cast<int64_t>(rng_.Uniform() * static_cast<double>(cycle_us_));
      sessions_.push({first, u.index});
    }
    sim_now_us_ = opt_.start_time_us;
  }

  double EffectiveTimeScale() const { return effective_scale_; }
  int64_t SimulatedNowMicros() const { return sim_now_us_; }

  GeneratedBatch NextBatch() {
    GeneratedBatch batch;
    batch.sequence = next_batch_seq_++;
    if (!skew_ready_.empty()) {
      batch.events = std::move(skew_ready_.front().events);
      batch.clock_offset_us = skew_ready_.front().clock_offset_us;
      skew_ready_.pop_front();
      return batch;
    }
    std::vector<EventRecord>& out = batch.events;
    // Held-back (out-of-order) events whose time has come.
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->first <= batch.sequence) {
        out.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    // Duplicates due now.
    for (auto it = dups_due_.begin(); it != dups_due_.end() && it->first <= batch.sequence;) {
      for (auto& [orig_batch, rec] : it->second) {
        out.push_back(std::move(rec));
        if (std::find(batch.after_batches.begin(), batch.after_batches.end(), orig_batch) ==
            batch.after_batches.end()) {
          batch.after_batches.push_back(orig_batch);
        }
      }
      it = dups_due_.erase(it);
    }
    size_t first_fresh = out.size();
    int guard = 0;
    while (static_cast<int>(out.size()) < opt_.batch_size) {
      if (++guard > opt_.batch_size * 50 && (!out.empty() || !skew_ready_.empty())) break;
      Pending p = PopStream();
      User& u = users_[p.user];
      if (u.clock_offset_us != 0 && !p.server) {
        AddSkewed(p);
        continue;
      }
      if (!p.server) AddFaultExtras(p, &out);
      if (rng_.Chance(opt_.out_of_order_rate)) {
        p.rec.faults.push_back("out_of_order");
        held_.emplace_back(batch.sequence + rng_.Int(1, 3), std::move(p.rec));
        continue;
      }
      out.push_back(std::move(p.rec));
    }
    if (out.empty()) {  // every user's clock is skewed: send one of theirs
      batch.events = std::move(skew_ready_.front().events);
      batch.clock_offset_us = skew_ready_.front().clock_offset_us;
      skew_ready_.pop_front();
      return batch;
    }
    if (opt_.out_of_order_rate > 0 && rng_.Chance(std::min(1.0, opt_.out_of_order_rate * 5))) {
      rng_.Shuffle(&out);
      first_fresh = 0;
    }
    // Schedule duplicates of fresh, non-duplicate events.
    if (opt_.duplicate_rate > 0) {
      for (size_t i = first_fresh; i < out.size(); ++i) {
        const EventRecord& e = out[i];
        if (!e.duplicate_of.empty() || !rng_.Chance(opt_.duplicate_rate)) continue;
        EventRecord copy = e;
        copy.duplicate_of = e.message_id;
        copy.faults.push_back("duplicate");
        int64_t due = batch.sequence + rng_.Int(2, 10);
        dups_due_[due].emplace_back(batch.sequence, std::move(copy));
      }
    }
    return batch;
  }

 private:
  struct SessionStart {
    int64_t ts_us;
    int user;
    bool operator>(const SessionStart& o) const { return ts_us != o.ts_us ? ts_us > o.ts_us : user > o.user; }
  };
  struct SkewBuffer {
    std::vector<EventRecord> events;
    int64_t clock_offset_us = 0;
  };

  // The gap between a user's sessions such that `users` users produce `rate`
  // events per real second at `time_scale`; never below kMinSessionGap.
  void PlanGaps() {
    const double kEventsPerSession = 11.0;
    const double kSessionSeconds = 480.0;
    double sim_events_per_s = opt_.rate / opt_.time_scale;
    double cycle_s = opt_.users * kEventsPerSession / sim_events_per_s;
    double min_cycle_s = kSessionSeconds + static_cast<double>(kMinSessionGap + 2 * kMinute) / kSecond;
    cycle_s = std::max(cycle_s, min_cycle_s);
    cycle_us_ = static_cast<int64_t>(cycle_s * kSecond);
    extra_gap_mean_us_ =
        std::max<int64_t>(2 * kMinute, cycle_us_ - kMinSessionGap - static_cast<int64_t>(kSessionSeconds * kSecond));
    effective_scale_ = opt_.rate * cycle_s / (opt_.users * kEventsPerSession);
  }

  std::string MakeIp(const catalog::Country& c, bool v6) {
    char buf[64];
    if (v6 && !c.ipv6_prefixes.empty()) {
      std::string_view p = rng_.Pick(c.ipv6_prefixes);
      std::snprintf(buf, sizeof(buf), "%.*s:%x:%x:%x:%x:%x:%x", static_cast<int>(p.size()), p.data(),
                    static_cast<unsigned>(rng_.Int(0, 0xffff)), static_cast<unsigned>(rng_.Int(0, 0xffff)),
                    static_cast<unsigned>(rng_.Int(1, 0xffff)), static_cast<unsigned>(rng_.Int(1, 0xffff)),
                    static_cast<unsigned>(rng_.Int(1, 0xffff)), static_cast<unsigned>(rng_.Int(1, 0xffff)));
    } else {
      std::string_view p = rng_.Pick(c.ipv4_prefixes);
      std::snprintf(buf, sizeof(buf), "%.*s.%d.%d", static_cast<int>(p.size()), p.data(),
                    static_cast<int>(rng_.Int(0, 255)), static_cast<int>(rng_.Int(1, 254)));
    }
    return buf;
  }

  Device MakeDevice(const User& u, bool allow_app) {
    Device d;
    d.anonymous_id = rng_.Uuid();
    d.ip = MakeIp(*u.country, rng_.Chance(0.25));
    double r = rng_.Uniform();
    if (allow_app && r < 0.3) {
      bool ios = rng_.Chance(0.55);
      std::vector<const catalog::MobileDevice*> devs;
      for (const auto& m : catalog::MobileDevices()) {
        if ((m.platform == "ios") == ios) devs.push_back(&m);
      }
      d.mobile = devs[static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(devs.size()) - 1))];
      d.platform = std::string(d.mobile->platform);
      d.device_class = "mobile";
      d.user_agent = std::string(d.mobile->user_agent);
      d.device_id = ios ? LowerAscii(rng_.Uuid()) : rng_.Hex(16);
      d.app_build = static_cast<int>(rng_.Int(410, 431));
      d.app_version = "4." + std::to_string(d.app_build / 10 - 40) + "." + std::to_string(d.app_build % 10);
      return d;
    }
    d.platform = "web";
    const catalog::UserAgent* ua = nullptr;
    while (ua == nullptr || ua->device_class == "bot") ua = &rng_.PickWeighted(catalog::WebUserAgents());
    d.user_agent = std::string(ua->ua);
    d.device_class = std::string(ua->device_class);
    return d;
  }

  User MakeUser(int index) {
    User u;
    u.index = index;
    u.country = &rng_.PickWeighted(catalog::Countries());
    u.is_bot = rng_.Chance(0.02);
    u.activity = std::array<double, 4>{0.35, 0.8, 1.2, 2.5}[static_cast<size_t>(rng_.Int(0, 3))];
    for (const auto& e : catalog::Experiments()) {
      u.variants.push_back(static_cast<int>(rng_.Int(0, static_cast<int64_t>(e.variants.size()) - 1)));
    }
    if (u.is_bot) {
      const catalog::UserAgent* bot = nullptr;
      while (bot == nullptr || bot->device_class != "bot") bot = &rng_.PickWeighted(catalog::WebUserAgents());
      Device d;
      d.anonymous_id = rng_.Uuid();
      d.platform = "web";
      d.device_class = "bot";
      d.user_agent = std::string(bot->ua);
      // Crawlers come from their operators' networks in the US.
      d.ip = bot->ua.find("bingbot") != std::string_view::npos ? "157.55.39." + std::to_string(rng_.Int(1, 254))
                                                               : "66.249.66." + std::to_string(rng_.Int(1, 254));
      u.devices.push_back(d);
      return u;
    }
    u.devices.push_back(MakeDevice(u, true));
    double r = rng_.Uniform();
    u.has_account = r < 0.35;
    u.will_sign_up = !u.has_account && r < 0.65;
    u.first_name = std::string(rng_.Pick(catalog::FirstNames()));
    u.last_name = std::string(rng_.Pick(catalog::LastNames()));
    static constexpr std::string_view kDomains[] = {"example.com", "example.org", "mail.example.net"};
    u.email = Slugify(u.first_name) + "." + Slugify(u.last_name) + std::to_string(rng_.Int(1, 99)) + "@" +
              std::string(rng_.Pick(std::span<const std::string_view>(kDomains)));
    u.phone = "+1 415-555-01" + std::to_string(rng_.Int(10, 99));
    u.user_id = "usr_" + rng_.Hex(12);
    u.plan = rng_.Chance(0.7) ? "free" : "plus";
    u.created_at_us = opt_.start_time_us - rng_.Int(2, 700) * kDay - rng_.Int(0, kDay - 1);
    if ((u.has_account || u.will_sign_up) && rng_.Chance(0.25)) u.devices.push_back(MakeDevice(u, true));
    if (u.has_account && rng_.Chance(0.2)) {
      u.company = &rng_.Pick(catalog::Companies());
      u.group_id = "grp_" + Slugify(*u.company);
    }
    if (rng_.Chance(opt_.clock_skew_rate)) {
      int64_t off = rng_.Int(5 * kMinute, 6 * kHour);
      u.clock_offset_us = rng_.Chance(0.5) ? off : -off;
    }
    return u;
  }

  // ---- the stream ----

  Pending PopStream() {
    while (events_.empty() || (!sessions_.empty() && sessions_.top().ts_us <= events_.top().ts_us)) {
      SessionStart s = sessions_.top();
      sessions_.pop();
      ScriptSession(users_[s.user], s.ts_us);
    }
    Pending p = events_.top();
    events_.pop();
    p.session_end = session_last_seq_.erase(p.seq) > 0;
    sim_now_us_ = std::max(sim_now_us_, p.ts_us);
    return p;
  }

  void AddSkewed(Pending& p) {
    User& u = users_[p.user];
    SkewBuffer& buf = skew_buffers_[p.user];
    buf.clock_offset_us = u.clock_offset_us;
    buf.events.push_back(std::move(p.rec));
    if (p.session_end || static_cast<int>(buf.events.size()) >= opt_.batch_size) {
      skew_ready_.push_back(std::move(buf));
      skew_buffers_.erase(p.user);
    }
  }

  // ---- event building ----

  struct Ctx {
    User* user;
    int device;
    int64_t t;
    PageState page;
    std::set<std::string_view> exposed;  // experiments already shown this session
  };

  void Context(JsonWriter& w, const Ctx& c, bool with_page) {
    const User& u = *c.user;
    const Device& d = u.devices[static_cast<size_t>(c.device)];
    w.Key("context").BeginObject();
    if (d.mobile != nullptr) {
      w.Key("library").BeginObject();
      w.Field("name", d.platform == "ios" ? "analytics-ios" : "analytics-android");
      w.Field("version", d.platform == "ios" ? "4.1.8" : "4.11.3");
      w.EndObject();
      w.Key("app").BeginObject();
      w.Field("name", catalog::kAppName).Field("version", d.app_version).Field("build", std::to_string(d.app_build));
      w.Field("namespace", "dev.clicklake.shop");
      w.EndObject();
      w.Key("device").BeginObject();
      w.Field("id", d.device_id).Field("manufacturer", d.mobile->manufacturer).Field("model", d.mobile->model);
      w.Field("type", d.platform);
      w.EndObject();
      w.Key("os").BeginObject();
      w.Field("name", d.platform == "ios" ? "iOS" : "Android").Field("version", d.mobile->os_version);
      w.EndObject();
      w.Key("network").BeginObject().FieldBool("wifi", (c.t / kMinute) % 3 != 0).EndObject();
    } else {
      w.Key("library").BeginObject().Field("name", "analytics.js").Field("version", "next-1.64.0").EndObject();
      if (with_page && !c.page.url.empty()) {
        w.Key("page").BeginObject();
        w.Field("path", c.page.path).Field("referrer", c.page.referrer).Field("search", c.page.search);
        w.Field("title", c.page.title).Field("url", c.page.url);
        w.EndObject();
      }
      if (c.page.campaign != nullptr) {
        const catalog::Campaign& k = *c.page.campaign;
        w.Key("campaign").BeginObject();
        w.Field("source", k.source).Field("medium", k.medium).Field("name", k.name);
        if (!k.term.empty()) w.Field("term", k.term);
        if (!k.content.empty()) w.Field("content", k.content);
        w.EndObject();
      }
    }
    w.Field("userAgent", d.user_agent);
    w.Field("ip", d.ip);
    w.Field("locale", u.country->locale);
    w.Field("timezone", u.country->timezone);
    w.EndObject();
  }

  // Starts an event object; the caller adds type-specific fields, then Finish().
  JsonWriter Begin(const Ctx& c, std::string_view type, EventRecord* rec) {
    const User& u = *c.user;
    const Device& d = u.devices[static_cast<size_t>(c.device)];
    StartRecord(c, type, rec);
    rec->anonymous_id = d.anonymous_id;
    if (d.logged_in) rec->user_id = u.user_id;
    return OpenEvent(*rec);
  }

  // Fills everything but the identity.
  void StartRecord(const Ctx& c, std::string_view type, EventRecord* rec) {
    rec->message_id = rng_.Uuid();
    rec->type = std::string(type);
    rec->true_time_us = c.t;
    rec->timestamp = FormatIsoMillis(c.t + c.user->clock_offset_us);
    if (c.user->clock_offset_us != 0) rec->faults.push_back("skewed");
  }

  // The envelope: type, ids, timestamp (absent ids are left out).
  static JsonWriter OpenEvent(const EventRecord& rec) {
    JsonWriter w;
    w.BeginObject();
    w.Field("type", rec.type).Field("messageId", rec.message_id).Field("timestamp", rec.timestamp);
    if (!rec.user_id.empty()) w.Field("userId", rec.user_id);
    if (!rec.anonymous_id.empty()) w.Field("anonymousId", rec.anonymous_id);
    return w;
  }

  void Push(const Ctx& c, EventRecord rec) {
    Pending p;
    p.ts_us = c.t;
    p.seq = next_event_seq_++;
    p.user = c.user->index;
    p.device = c.device;
    p.rec = std::move(rec);
    events_.push(std::move(p));
  }

  void Page(Ctx& c) {
    EventRecord rec;
    JsonWriter w = Begin(c, "page", &rec);
    rec.event = c.page.name;
    w.Field("name", c.page.name);
    w.Key("properties").BeginObject();
    w.Field("name", c.page.name).Field("path", c.page.path).Field("referrer", c.page.referrer);
    w.Field("search", c.page.search).Field("title", c.page.title).Field("url", c.page.url);
    if (!c.page.category.empty()) w.Field("category", c.page.category);
    if (c.page.experiment != nullptr) {
      w.Field("experiment_id", c.page.experiment->id).Field("experiment_variant", c.page.variant);
    }
    w.EndObject();
    Context(w, c, true);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void Screen(Ctx& c, std::string_view name, const std::function<void(JsonWriter&)>& props = nullptr) {
    EventRecord rec;
    JsonWriter w = Begin(c, "screen", &rec);
    rec.event = std::string(name);
    w.Field("name", name);
    w.Key("properties").BeginObject();
    if (props) props(w);
    w.EndObject();
    Context(w, c, false);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void Track(Ctx& c, std::string_view name, const std::function<void(JsonWriter&)>& props,
             EventRecord rec = EventRecord()) {
    JsonWriter w = Begin(c, "track", &rec);
    rec.event = std::string(name);
    w.Field("event", name);
    w.Key("properties").BeginObject();
    if (props) props(w);
    w.EndObject();
    Context(w, c, true);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void Traits(JsonWriter& w, const User& u) {
    w.Key("traits").BeginObject();
    w.Field("email", u.email).Field("name", u.first_name + " " + u.last_name);
    w.Field("first_name", u.first_name).Field("last_name", u.last_name);
    w.Field("plan", u.plan).Field("country", u.country->code);
    w.Field("created_at", FormatIsoMillis(u.created_at_us));
    if (u.traits_version % 2 == 1) w.Field("phone", u.phone);
    w.EndObject();
  }

  void Identify(Ctx& c) {
    User& u = *c.user;
    u.devices[static_cast<size_t>(c.device)].logged_in = true;
    EventRecord rec;
    JsonWriter w = Begin(c, "identify", &rec);
    Traits(w, u);
    Context(w, c, true);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void Alias(Ctx& c) {
    User& u = *c.user;
    EventRecord rec;
    JsonWriter w = Begin(c, "alias", &rec);
    w.Field("previousId", u.devices[static_cast<size_t>(c.device)].anonymous_id);
    Context(w, c, true);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void Group(Ctx& c) {
    User& u = *c.user;
    EventRecord rec;
    JsonWriter w = Begin(c, "group", &rec);
    w.Field("groupId", u.group_id);
    w.Key("traits").BeginObject();
    w.Field("name", *u.company).Field("industry", "Sports & Fitness").FieldInt("employees", 10 + (u.index * 37) % 900);
    w.Field("plan", "team");
    w.EndObject();
    Context(w, c, true);
    w.EndObject();
    rec.json = w.Take();
    Push(c, std::move(rec));
  }

  void ProductProps(JsonWriter& w, const catalog::Product& p, int quantity, const User& u, int position) {
    w.Field("product_id", p.product_id).Field("sku", p.sku).Field("category", p.category);
    w.Field("name", p.name).Field("brand", p.brand).FieldMoney("price", p.price);
    w.FieldInt("quantity", quantity).Field("currency", u.country->currency);
    if (position > 0) w.FieldInt("position", position);
    w.Field("url", "https://" + std::string(catalog::kSiteHost) + "/product/" + std::string(p.slug));
  }

  // The shop's backend reports the shipment later with analytics-node: userId
  // only, no browser context (platform "server").
  void OrderShipped(const Ctx& c, const std::string& order_id, int64_t t) {
    Pending p;
    p.ts_us = t;
    p.seq = next_event_seq_++;
    p.user = c.user->index;
    p.device = c.device;
    p.server = true;
    EventRecord& rec = p.rec;
    rec.message_id = rng_.Uuid();
    rec.type = "track";
    rec.event = "Order Shipped";
    rec.user_id = c.user->user_id;
    rec.true_time_us = t;
    rec.timestamp = FormatIsoMillis(t);
    rec.order_id = order_id;
    static constexpr std::string_view kCarriers[] = {"UPS", "DHL", "FedEx", "USPS"};
    JsonWriter w;
    w.BeginObject();
    w.Field("type", "track").Field("messageId", rec.message_id).Field("timestamp", rec.timestamp);
    w.Field("userId", rec.user_id).Field("event", rec.event);
    w.Key("properties").BeginObject();
    w.Field("order_id", order_id).Field("carrier", rng_.Pick(std::span<const std::string_view>(kCarriers)));
    w.Field("tracking_number", "1Z" + rng_.Hex(16));
    w.EndObject();
    w.Key("context").BeginObject();
    w.Key("library").BeginObject().Field("name", "analytics-node").Field("version", "2.1.0").EndObject();
    w.EndObject();
    w.EndObject();
    rec.json = w.Take();
    events_.push(std::move(p));
  }

  // ---- navigation ----

  void GoTo(Ctx& c, std::string path, std::string title, std::string name, const std::string& referrer_override = {},
            bool first = false) {
    PageState next;
    next.referrer = first ? referrer_override : c.page.url;
    next.path = std::move(path);
    next.title = std::move(title);
    next.name = std::move(name);
    size_t q = next.path.find('?');
    if (q != std::string::npos) {
      next.search = next.path.substr(q);
      next.path.resize(q);
    }
    next.url = "https://" + std::string(catalog::kSiteHost) + next.path + next.search;
    for (size_t i = 0; i < catalog::Experiments().size(); ++i) {
      const auto& e = catalog::Experiments()[i];
      if (e.page_path == next.path) {
        next.experiment = &e;
        next.variant = std::string(e.variants[static_cast<size_t>(c.user->variants[i])]);
      }
    }
    c.page = std::move(next);
  }

  void Advance(Ctx& c, int64_t mean) { c.t += rng_.Gap(mean, kSecond, kMaxEventGap); }

  // Shows the page (web) or screen (apps), and the experiment exposure if any.
  void View(Ctx& c, std::string_view screen_name, const catalog::Product* product = nullptr) {
    const Device& d = c.user->devices[static_cast<size_t>(c.device)];
    if (d.mobile != nullptr) {
      Screen(c, screen_name, [&](JsonWriter& w) {
        if (product != nullptr) w.Field("product_id", product->product_id);
      });
    } else {
      Page(c);
    }
    if (c.page.experiment != nullptr && !c.user->is_bot && c.exposed.insert(c.page.experiment->id).second) {
      const catalog::Experiment* e = c.page.experiment;
      std::string variant = c.page.variant;
      Advance(c, 2 * kSecond);
      Track(c, "Experiment Viewed", [&](JsonWriter& w) {
        w.Field("experiment_id", e->id).Field("experiment_name", e->name).Field("experiment_variant", variant);
      });
    }
  }

  void ViewProduct(Ctx& c, const catalog::Product& p, int position) {
    GoTo(c, "/product/" + std::string(p.slug), std::string(p.name) + " - Clicklake Shop", "Product");
    c.page.category = std::string(p.category);
    View(c, "Product Detail", &p);
    if (c.user->is_bot) return;
    Advance(c, 3 * kSecond);
    Track(c, "Product Viewed", [&](JsonWriter& w) { ProductProps(w, p, 1, *c.user, position); });
  }

  void ViewCategory(Ctx& c, std::string_view category) {
    std::string slug = Slugify(category);
    GoTo(c, "/category/" + slug, std::string(category) + " - Clicklake Shop", "Category");
    c.page.category = std::string(category);
    View(c, "Category");
    if (!c.user->is_bot && rng_.Chance(0.5)) {
      Advance(c, 10 * kSecond);
      Track(c, "Product List Viewed",
            [&](JsonWriter& w) { w.Field("list_id", slug + "_list").Field("category", category); });
    }
  }

  std::string OrderId() { return "ord_" + rng_.Hex(10); }

  // ---- sessions ----

  void Landing(Ctx& c) {
    const Device& d = c.user->devices[static_cast<size_t>(c.device)];
    double r = rng_.Uniform();
    if (c.user->is_bot) {
      GoTo(c, "/", "Clicklake Shop - Gear for Runners", "Home", "", true);
      View(c, "Home");
      return;
    }
    if (d.mobile != nullptr) {
      const catalog::Campaign* campaign = r < 0.15 ? &rng_.Pick(catalog::Campaigns()) : nullptr;
      Track(c, "Application Opened", [&](JsonWriter& w) {
        w.FieldBool("from_background", rng_.Chance(0.4)).Field("version", d.app_version);
        w.Field("build", std::to_string(d.app_build));
        if (campaign != nullptr) {
          w.Field("url", "clicklakeshop://open?utm_source=" + std::string(campaign->source) + "&utm_medium=" +
                             std::string(campaign->medium) + "&utm_campaign=" + std::string(campaign->name));
        }
      });
      GoTo(c, "/", "Home", "Home", "", true);
      Advance(c, 2 * kSecond);
      View(c, "Home");
      return;
    }
    std::string path, referrer;
    const catalog::Campaign* campaign = nullptr;
    if (r < 0.35) {
      campaign = &rng_.Pick(catalog::Campaigns());
      path = std::string(campaign->landing_path);
      referrer = std::string(campaign->referrer);
      std::string q = "?utm_source=" + UrlEncode(campaign->source) + "&utm_medium=" + UrlEncode(campaign->medium) +
                      "&utm_campaign=" + UrlEncode(campaign->name);
      if (!campaign->term.empty()) q += "&utm_term=" + UrlEncode(campaign->term);
      if (!campaign->content.empty()) q += "&utm_content=" + UrlEncode(campaign->content);
      path += q;
    } else {
      if (r < 0.60) {
        referrer = std::string(rng_.Pick(catalog::SearchReferrers()));
      } else if (r < 0.70) {
        referrer = std::string(rng_.Pick(catalog::SocialReferrers()));
      } else if (r < 0.75) {
        referrer = std::string(rng_.Pick(catalog::OtherReferrers()));
      }
      double p = rng_.Uniform();
      if (p < 0.5) {
        path = "/";
      } else if (p < 0.7) {
        const auto& prod = rng_.Pick(catalog::Products());
        path = "/product/" + std::string(prod.slug);
      } else if (p < 0.85) {
        path = "/category/" + Slugify(rng_.Pick(catalog::Products()).category);
      } else {
        path = std::string(rng_.Pick(catalog::ContentPages()).path);
      }
    }
    // Landing on a product page counts as a product view, like any other.
    std::string base = path.substr(0, path.find('?'));
    if (base.rfind("/product/", 0) == 0) {
      for (const auto& prod : catalog::Products()) {
        if (base == "/product/" + std::string(prod.slug)) {
          GoTo(c, path, std::string(prod.name) + " - Clicklake Shop", "Product", referrer, true);
          c.page.category = std::string(prod.category);
          c.page.campaign = campaign;
          View(c, "Product Detail", &prod);
          Advance(c, 3 * kSecond);
          Track(c, "Product Viewed", [&](JsonWriter& w) { ProductProps(w, prod, 1, *c.user, 0); });
          viewed_.push_back(&prod);
          return;
        }
      }
    }
    std::string title = "Clicklake Shop", name = "Landing";
    for (const auto& cp : catalog::ContentPages()) {
      if (cp.path == base) title = std::string(cp.title), name = std::string(cp.name);
    }
    std::string category;
    if (base.rfind("/category/", 0) == 0) {
      for (const auto& prod : catalog::Products()) {
        if ("/category/" + Slugify(prod.category) == base) category = std::string(prod.category);
      }
      name = "Category";
      title = category + " - Clicklake Shop";
    }
    if (base == "/cart") name = "Cart", title = "Your Cart - Clicklake Shop";
    GoTo(c, path, title, name, referrer, true);
    c.page.campaign = campaign;
    c.page.category = category;
    View(c, name);
  }

  void ScriptSession(User& u, int64_t start) {
    Ctx c{&u, 0, start, {}, {}};
    if (u.devices.size() > 1 && rng_.Chance(0.35)) c.device = 1;
    Device& d = u.devices[static_cast<size_t>(c.device)];
    if (u.is_bot) d.anonymous_id = rng_.Uuid();  // crawlers keep no cookies
    size_t first_event = next_event_seq_;
    viewed_.clear();
    Landing(c);
    const bool app = d.mobile != nullptr;
    if (!u.is_bot) {
      // Existing customers log in on a device the SDK does not know yet.
      if (u.has_account && !d.logged_in && rng_.Chance(0.5)) {
        Advance(c, 20 * kSecond);
        if (!app) {
          GoTo(c, "/login", "Log In - Clicklake Shop", "Login");
          View(c, "Login");
        }
        Advance(c, 15 * kSecond);
        Identify(c);
        Advance(c, 1 * kSecond);
        Track(c, "Signed In", [&](JsonWriter& w) { w.Field("method", app ? "app" : "password"); });
      } else if (u.has_account && d.logged_in && rng_.Chance(0.08)) {
        // Traits change now and then: a new plan (an SCD2 version in dim_user).
        u.plan = u.plan == "free" ? "plus" : (u.plan == "plus" ? "premium" : "plus");
        ++u.traits_version;
        Advance(c, 10 * kSecond);
        Identify(c);
      }
      if (u.has_account && d.logged_in && !u.group_id.empty() && rng_.Chance(0.25)) {
        Advance(c, 3 * kSecond);
        Group(c);
      }
    }
    int steps = u.is_bot ? static_cast<int>(rng_.Int(3, 12)) : 1 + static_cast<int>(rng_.Exp(3.0));
    steps = std::min(steps, 15);
    for (int i = 0; i < steps; ++i) {
      Advance(c, 40 * kSecond);
      Browse(c);
    }
    if (!u.is_bot) Funnel(c);
    if (!u.is_bot && !u.has_account && u.will_sign_up && rng_.Chance(0.12)) SignUp(c);
    if (!app && d.logged_in && rng_.Chance(0.05)) {
      // Logging out calls analytics.reset(): the browser gets a fresh anonymousId
      // and stays anonymous until the next login.
      Advance(c, 20 * kSecond);
      Track(c, "Signed Out", nullptr);
      d.logged_in = false;
      d.anonymous_id = rng_.Uuid();
    }
    if (app && !u.is_bot) {
      Advance(c, 30 * kSecond);
      Track(c, "Application Backgrounded", nullptr);
    }
    // Mark the last event of the session (for skewed clients' batches).
    MarkSessionEnd(first_event);
    ++u.sessions;
    int64_t gap = kMinSessionGap + static_cast<int64_t>(rng_.Exp(static_cast<double>(extra_gap_mean_us_) * u.activity));
    sessions_.push({c.t + gap, u.index});
  }

  void MarkSessionEnd(size_t first_event) {
    // The session's events were pushed with seq >= first_event; the last one has
    // the largest seq. The heap cannot be edited in place, so remember it.
    if (next_event_seq_ > static_cast<int64_t>(first_event)) session_last_seq_.insert(next_event_seq_ - 1);
  }

  void Browse(Ctx& c) {
    User& u = *c.user;
    double r = rng_.Uniform();
    if (u.is_bot) {
      if (r < 0.6) {
        ViewProduct(c, rng_.Pick(catalog::Products()), 0);
      } else if (r < 0.85) {
        ViewCategory(c, rng_.Pick(catalog::Products()).category);
      } else {
        const auto& cp = rng_.Pick(catalog::ContentPages());
        GoTo(c, std::string(cp.path), std::string(cp.title), std::string(cp.name));
        View(c, cp.name);
      }
      return;
    }
    if (r < 0.40) {
      const auto& p = rng_.Pick(catalog::Products());
      ViewProduct(c, p, static_cast<int>(rng_.Int(1, 12)));
      viewed_.push_back(&p);
    } else if (r < 0.60) {
      ViewCategory(c, rng_.Pick(catalog::Products()).category);
    } else if (r < 0.72) {
      std::string_view q = rng_.Pick(catalog::SearchQueries());
      Track(c, "Products Searched", [&](JsonWriter& w) { w.Field("query", q); });
      Advance(c, 3 * kSecond);
      GoTo(c, "/search?q=" + UrlEncode(q), "Search: " + std::string(q), "Search Results");
      View(c, "Search Results");
    } else if (r < 0.84) {
      const auto& cp = rng_.Pick(catalog::ContentPages());
      GoTo(c, std::string(cp.path), std::string(cp.title), std::string(cp.name));
      View(c, cp.name);
    } else {
      std::string_view b = rng_.Pick(catalog::Buttons());
      Track(c, "Button Clicked", [&](JsonWriter& w) {
        w.Field("button_name", b).Field("button_id", Slugify(b)).Field("page_path", c.page.path);
      });
    }
  }

  void SignUp(Ctx& c) {
    User& u = *c.user;
    const bool app = u.devices[static_cast<size_t>(c.device)].mobile != nullptr;
    Advance(c, 20 * kSecond);
    GoTo(c, "/signup", "Create Account - Clicklake Shop", "Sign Up");
    View(c, "Sign Up");
    Advance(c, 45 * kSecond);
    u.has_account = true;
    u.created_at_us = c.t;
    Identify(c);
    Advance(c, 1 * kSecond);
    Track(c, "Signed Up", [&](JsonWriter& w) {
      w.Field("method", app ? "app" : (rng_.Chance(0.3) ? "google" : "email")).Field("plan", u.plan);
    });
    if (rng_.Chance(0.3)) {
      Advance(c, 1 * kSecond);
      Alias(c);
    }
  }

  void Funnel(Ctx& c) {
    User& u = *c.user;
    const bool app = u.devices[static_cast<size_t>(c.device)].mobile != nullptr;
    if (viewed_.empty()) {
      if (!rng_.Chance(0.5)) return;
      Advance(c, 30 * kSecond);
      const auto& p = rng_.Pick(catalog::Products());
      ViewProduct(c, p, static_cast<int>(rng_.Int(1, 12)));
      viewed_.push_back(&p);
    }
    if (!rng_.Chance(0.45)) return;
    std::vector<CartLine> cart;
    std::string cart_id = "cart_" + rng_.Hex(8);
    int adds = rng_.Chance(0.3) ? 2 : 1;
    for (int i = 0; i < adds; ++i) {
      const catalog::Product* p = viewed_[static_cast<size_t>(rng_.Int(0, static_cast<int64_t>(viewed_.size()) - 1))];
      if (i > 0) {
        // A second product: view it, then add it.
        p = &rng_.Pick(catalog::Products());
        Advance(c, 30 * kSecond);
        ViewProduct(c, *p, 0);
      }
      int qty = rng_.Chance(0.8) ? 1 : static_cast<int>(rng_.Int(2, 3));
      Advance(c, 20 * kSecond);
      Track(c, "Product Added", [&](JsonWriter& w) {
        w.Field("cart_id", cart_id);
        ProductProps(w, *p, qty, u, 0);
      });
      cart.push_back({p, qty});
    }
    if (rng_.Chance(0.7)) {
      Advance(c, 15 * kSecond);
      GoTo(c, "/cart", "Your Cart - Clicklake Shop", "Cart");
      View(c, "Cart");
    }
    if (!rng_.Chance(0.55)) return;
    if (!u.has_account && u.will_sign_up && rng_.Chance(0.6)) SignUp(c);
    double subtotal = 0;
    for (const CartLine& l : cart) subtotal += l.product->price * l.quantity;
    subtotal = std::round(subtotal * 100) / 100;
    double shipping = subtotal >= 100 ? 0.0 : 5.95;
    double tax = std::round(subtotal * 0.08 * 100) / 100;
    double total = std::round((subtotal + shipping + tax) * 100) / 100;
    std::string order_id = OrderId();
    std::string currency(u.country->currency);
    auto products = [&](JsonWriter& w) {
      w.Key("products").BeginArray();
      int pos = 1;
      for (const CartLine& l : cart) {
        w.BeginObject();
        ProductProps(w, *l.product, l.quantity, u, pos++);
        w.EndObject();
      }
      w.EndArray();
    };
    Advance(c, 20 * kSecond);
    GoTo(c, "/checkout", "Checkout - Clicklake Shop", "Checkout");
    View(c, "Checkout");
    Advance(c, 5 * kSecond);
    const catalog::Experiment* exp = c.page.experiment;
    std::string variant = c.page.variant;
    Track(c, "Checkout Started", [&](JsonWriter& w) {
      w.Field("order_id", order_id).Field("cart_id", cart_id).FieldMoney("value", subtotal);
      w.FieldMoney("revenue", subtotal).Field("currency", currency);
      if (exp != nullptr && !app) w.Field("experiment_id", exp->id).Field("experiment_variant", variant);
      products(w);
    });
    // The checkout button experiment: treatment converts a little better.
    double complete = 0.6;
    if (exp != nullptr && variant != "control") complete = 0.68;
    if (!rng_.Chance(complete)) return;
    Advance(c, 60 * kSecond);
    bool total_only = rng_.Chance(0.1);  // some clients send only `total`
    EventRecord rec;
    rec.has_revenue = true;
    rec.revenue = total_only ? total : subtotal;
    rec.currency = currency;
    rec.order_id = order_id;
    Track(
        c, "Order Completed",
        [&](JsonWriter& w) {
          w.Field("order_id", order_id).Field("checkout_id", "chk_" + order_id.substr(4));
          w.FieldMoney("total", total);
          if (!total_only) w.FieldMoney("revenue", subtotal);
          w.FieldMoney("shipping", shipping).FieldMoney("tax", tax).Field("currency", currency);
          if (rng_.Chance(0.15)) w.Field("coupon", "WELCOME10").FieldMoney("discount", 0);
          if (exp != nullptr && !app) w.Field("experiment_id", exp->id).Field("experiment_variant", variant);
          products(w);
        },
        rec);
    if (c.user->devices[static_cast<size_t>(c.device)].logged_in && rng_.Chance(0.5)) {
      OrderShipped(c, order_id, c.t + rng_.Int(2 * kHour, 30 * kHour));
    }
    Advance(c, 3 * kSecond);
    GoTo(c, "/order-confirmation?order=" + order_id, "Thank You - Clicklake Shop", "Order Confirmation");
    View(c, "Order Confirmation");
  }

  // ---- faults ----

  // Context of a fault event: the same user and device as `p`, at its time.
  Ctx FaultCtx(const Pending& p) {
    User& u = users_[p.user];
    Ctx c{&u, p.device, p.ts_us, {}, {}};
    return c;
  }

  // Builds an extra event outside the stream (identity as in `p`).
  EventRecord Extra(const Pending& p, std::string_view type, std::string_view name, int64_t t,
                    const std::function<void(JsonWriter&)>& props, bool omit_event_name = false) {
    Ctx c = FaultCtx(p);
    c.t = t;
    EventRecord rec;
    StartRecord(c, type, &rec);
    // Identity as the stream event had it (the device may have logged in since).
    rec.user_id = p.rec.user_id;
    rec.anonymous_id = p.rec.anonymous_id;
    JsonWriter w = OpenEvent(rec);
    rec.event = std::string(name);
    if (type == "track" && !omit_event_name) w.Field("event", name);
    if (type == "page" || type == "screen") w.Field("name", name);
    w.Key("properties").BeginObject();
    if (props) props(w);
    w.EndObject();
    Context(w, c, false);
    w.EndObject();
    rec.json = w.Take();
    return rec;
  }

  void AddFaultExtras(const Pending& p, std::vector<EventRecord>* out) {
    User& u = users_[p.user];
    if (u.is_bot) return;
    const bool app = u.devices[static_cast<size_t>(p.device)].mobile != nullptr;
    if (rng_.Chance(opt_.late_rate)) {
      // Something that happened hours ago (an offline app, a tab left open),
      // delivered only now. One in ten is older than the 72 h allowed lateness.
      int64_t back = rng_.Chance(0.1) ? rng_.Int(73 * kHour, 96 * kHour) : rng_.Int(1 * kHour, 30 * kHour);
      EventRecord rec;
      if (app) {
        rec = Extra(p, "screen", "Home", p.ts_us - back, nullptr);
      } else {
        std::string_view b = rng_.Pick(catalog::Buttons());
        rec = Extra(p, "track", "Button Clicked", p.ts_us - back,
                    [&](JsonWriter& w) { w.Field("button_name", b).Field("button_id", Slugify(b)); });
      }
      rec.faults.push_back("late");
      out->push_back(std::move(rec));
    }
    if (rng_.Chance(opt_.malformed_rate)) out->push_back(Malformed(p));
    if (rng_.Chance(opt_.pii_rate)) out->push_back(Pii(p));
  }

  EventRecord Malformed(const Pending& p) {
    static constexpr std::string_view kKinds[] = {"no_identity", "missing_event", "bad_timestamp", "wrong_types"};
    std::string_view kind = kKinds[static_cast<size_t>(rng_.Int(0, 3))];
    EventRecord rec;
    if (kind == "no_identity") {
      Pending anon = p;
      anon.rec.user_id.clear();
      anon.rec.anonymous_id.clear();
      rec = Extra(anon, "track", "Button Clicked", p.ts_us + 1000,
                  [](JsonWriter& w) { w.Field("button_name", "Share").Field("button_id", "share"); });
    } else if (kind == "missing_event") {
      // A track call that forgot its `event`.
      rec = Extra(
          p, "track", "", p.ts_us + 1000, [](JsonWriter& w) { w.Field("button_name", "Load More"); },
          /*omit_event_name=*/true);
    } else if (kind == "bad_timestamp") {
      static constexpr std::string_view kBad[] = {"not-a-timestamp", "2026-13-45T25:61:00Z", "yesterday 10:00",
                                                  "31/12/2025 10:00:00"};
      rec = Extra(p, "track", "Button Clicked", p.ts_us + 1000,
                  [](JsonWriter& w) { w.Field("button_name", "Size Guide").Field("button_id", "size-guide"); });
      std::string bad(kBad[static_cast<size_t>(rng_.Int(0, 3))]);
      std::string good = "\"timestamp\":\"" + rec.timestamp + "\"";
      std::string repl;
      AppendJsonString(bad, &repl);
      rec.json.replace(rec.json.find(good), good.size(), "\"timestamp\":" + repl);
      rec.timestamp = bad;
    } else {
      // Segment's e-commerce spec types: price number, quantity integer, product_id string.
      rec = Extra(p, "track", "Product Added", p.ts_us + 1000, [](JsonWriter& w) {
        w.FieldInt("product_id", 1001).Field("price", "nineteen ninety-nine").Field("quantity", "two");
      });
    }
    rec.faults.push_back("malformed:" + std::string(kind));
    return rec;
  }

  EventRecord Pii(const Pending& p) {
    User& u = users_[p.user];
    static constexpr std::string_view kCards[] = {"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"};
    int kind = static_cast<int>(rng_.Int(0, 3));
    EventRecord rec;
    std::string email = u.email, phone = u.phone;
    switch (kind) {
      case 0:
        rec = Extra(p, "track", "Form Submitted", p.ts_us + 1000, [&](JsonWriter& w) {
          w.Field("form_id", "contact").Field("message", "Hi, please call me back at " + phone + ", thanks!");
        });
        break;
      case 1:
        rec = Extra(p, "track", "Products Searched", p.ts_us + 1000,
                    [&](JsonWriter& w) { w.Field("query", email + " order status"); });
        break;
      case 2: {
        std::string card(kCards[static_cast<size_t>(rng_.Int(0, 2))]);
        rec = Extra(p, "track", "Support Chat Message", p.ts_us + 1000, [&](JsonWriter& w) {
          w.Field("topic", "billing").Field("text", "my card " + card + " was charged twice, reach me at " + email);
        });
        break;
      }
      default:
        rec = Extra(p, "track", "Form Submitted", p.ts_us + 1000, [&](JsonWriter& w) {
          w.Field("form_id", "newsletter").Field("comment", "send it to " + email + " or text " + phone);
        });
    }
    rec.faults.push_back("pii");
    return rec;
  }

  SimulatorOptions opt_;
  Rng rng_;
  std::vector<User> users_;
  std::priority_queue<SessionStart, std::vector<SessionStart>, std::greater<SessionStart>> sessions_;
  std::priority_queue<Pending, std::vector<Pending>, PendingLater> events_;
  std::set<int64_t> session_last_seq_;
  std::vector<const catalog::Product*> viewed_;  // products viewed in the session being scripted
  std::map<int, SkewBuffer> skew_buffers_;
  std::deque<SkewBuffer> skew_ready_;
  std::vector<std::pair<int64_t, EventRecord>> held_;                         // release batch → event
  std::map<int64_t, std::vector<std::pair<int64_t, EventRecord>>> dups_due_;  // due batch → (original batch, copy)
  int64_t next_event_seq_ = 0;
  int64_t next_batch_seq_ = 0;
  int64_t sim_now_us_ = 0;
  int64_t cycle_us_ = 0;
  int64_t extra_gap_mean_us_ = 0;
  double effective_scale_ = 1;
};

TrafficGenerator::TrafficGenerator(const SimulatorOptions& options) : impl_(std::make_unique<Impl>(options)) {}
TrafficGenerator::~TrafficGenerator() = default;
GeneratedBatch TrafficGenerator::NextBatch() { return impl_->NextBatch(); }
double TrafficGenerator::EffectiveTimeScale() const { return impl_->EffectiveTimeScale(); }
int64_t TrafficGenerator::SimulatedNowMicros() const { return impl_->SimulatedNowMicros(); }

}  // namespace clicklake::simulate
