#include "pipeline/silver_parse.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "common/json_string.h"
#include "common/clock.h"

namespace clicklake::pipeline {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::optional<element> Get(element e, std::string_view key) {
  element v;
  if (!e.is_object() || e[key].get(v) || v.is_null()) return std::nullopt;
  return v;
}

std::optional<element> GetPath(element e, std::initializer_list<std::string_view> path) {
  std::optional<element> cur = e;
  for (auto key : path) {
    if (!cur) return std::nullopt;
    cur = Get(*cur, key);
  }
  return cur;
}

// A non-empty string value, or a number rendered as text (ids are sometimes numbers).
std::optional<std::string> Text(std::optional<element> v) {
  if (!v) return std::nullopt;
  std::string_view s;
  if (!v->get(s)) {
    if (s.empty()) return std::nullopt;
    return std::string(s);
  }
  int64_t i;
  if (!v->get(i)) return std::to_string(i);
  uint64_t u;
  if (!v->get(u)) return std::to_string(u);
  return std::nullopt;
}

std::optional<double> Number(std::optional<element> v) {
  if (!v) return std::nullopt;
  double d;
  if (!v->get(d)) return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
  std::string_view s;
  if (!v->get(s) && !s.empty()) {
    double out;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(out)) return out;
  }
  return std::nullopt;
}

// A timestamp field: absent (nullopt, true), parsed (value, true) or present
// but unparseable (false).
bool IsoTimestamp(std::optional<element> v, std::optional<int64_t>* out) {
  out->reset();
  if (!v) return true;
  std::string_view s;
  if (v->get(s)) return false;  // a timestamp must be an ISO 8601 string
  int64_t us;
  if (!ParseTimestampMicros(s, &us)) return false;
  *out = us;
  return true;
}

// Snowplow epoch-millisecond timestamps ("1714564800123").
bool MillisTimestamp(std::optional<std::string> v, std::optional<int64_t>* out) {
  out->reset();
  if (!v) return true;
  int64_t ms;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), ms);
  if (ec != std::errc() || p != v->data() + v->size() || ms < 0 || ms > 32503680000000LL) return false;
  *out = ms * 1000;
  return true;
}

bool Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || c == '\n' || c == '\r') continue;
    else return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}


std::string PlatformFromUserAgent(const std::optional<std::string>& ua) {
  if (!ua) return "other";
  if (ua->find("Android") != std::string::npos) return "android";
  if (ua->find("iPhone") != std::string::npos || ua->find("iPad") != std::string::npos ||
      ua->find("iOS") != std::string::npos || ua->find("CFNetwork") != std::string::npos)
    return "ios";
  return "other";
}

bool IsServerLibrary(std::string_view lib) {
  for (std::string_view s : {"analytics-node", "analytics-python", "analytics-ruby", "analytics-go", "analytics-java",
                             "analytics-php", "analytics.net", "analytics-dotnet", "rudder-sdk-node", "server"}) {
    if (lib.size() >= s.size()) {
      std::string lower(lib);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower.find(s) != std::string::npos) return true;
    }
  }
  return false;
}

void ApplyEventTime(const ParseOptions& options, CanonicalEvent* out) {
  if (out->event_ts > out->received_at + options.future_tolerance_us) {
    out->event_ts = out->received_at;
    out->future_dated = true;
  }
}

}  // namespace

ParseOptions ParseOptions::FromConfig(const Config& config) {
  ParseOptions o;
  for (const auto& [from, to] : config.GetStringMap("silver.event_aliases")) {
    o.event_aliases[CanonicalEventName(from)] = CanonicalEventName(to);
  }
  o.future_tolerance_us = config.GetDurationMicros("silver.future_tolerance", o.future_tolerance_us);
  o.allowed_lateness_us = config.GetDurationMicros("silver.allowed_lateness", o.allowed_lateness_us);
  return o;
}

std::string CanonicalEventName(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 4);
  bool pending_sep = false;
  char prev = 0;
  for (char ch : name) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      // camelCase boundary: a capital after a lower-case letter or digit.
      bool boundary = std::isupper(c) && prev != 0 && (std::islower(static_cast<unsigned char>(prev)) ||
                                                       std::isdigit(static_cast<unsigned char>(prev)));
      if ((pending_sep || boundary) && !out.empty()) out.push_back('_');
      pending_sep = false;
      out.push_back(static_cast<char>(std::tolower(c)));
      prev = ch;
    } else if (c >= 0x80) {
      if (pending_sep && !out.empty()) out.push_back('_');
      pending_sep = false;
      out.push_back(ch);  // keep non-ASCII letters as they are
      prev = 0;
    } else {
      pending_sep = true;
      prev = 0;
    }
  }
  return out;
}

std::string EventParser::Alias(std::string name) const {
  auto it = options_.event_aliases.find(name);
  return it == options_.event_aliases.end() ? name : it->second;
}

bool EventParser::Parse(const RawEvent& raw, std::string_view ingest_id, CanonicalEvent* out, ParseError* error) {
  *out = CanonicalEvent{};
  out->received_at = raw.received_at_us;
  payload_ = simdjson::padded_string(raw.payload);
  element root;
  if (auto err = parser_.parse(payload_).get(root)) {
    *error = {"invalid_json", std::string("payload is not valid JSON: ") + simdjson::error_message(err)};
    return false;
  }
  if (!root.is_object()) {
    *error = {"invalid_json", "payload is not a JSON object"};
    return false;
  }
  out->root = root;
  bool ok;
  if (raw.protocol == "segment" || raw.protocol == "native") {
    ok = ParseSegment(root, raw, out, error);
  } else if (raw.protocol == "snowplow") {
    ok = ParseSnowplow(root, raw, out, error);
  } else {
    *error = {"unknown_protocol", "protocol '" + raw.protocol + "' is not segment, snowplow or native"};
    return false;
  }
  if (!ok) return false;
  if (out->event_id.empty()) out->event_id = "ingest:" + std::string(ingest_id);
  if (!out->user_id && !out->anonymous_id) {
    *error = {"no_identity", "the event has neither a user id nor an anonymous id"};
    return false;
  }
  ApplyEventTime(options_, out);
  return true;
}

bool EventParser::ParseSegment(element root, const RawEvent& raw, CanonicalEvent* out, ParseError* error) {
  auto type = Text(Get(root, "type"));
  if (!type) {
    *error = {"missing_type", "the event has no type"};
    return false;
  }
  std::string t = *type;
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t != "track" && t != "page" && t != "screen" && t != "identify" && t != "group" && t != "alias") {
    *error = {"unknown_type", "type '" + *type + "' is not track, page, screen, identify, group or alias"};
    return false;
  }
  out->event_type = t;
  if (t == "track") {
    auto event = Text(Get(root, "event"));
    if (!event || CanonicalEventName(*event).empty()) {
      *error = {"missing_event", "a track call needs a non-empty event name"};
      return false;
    }
    out->event_name = Alias(CanonicalEventName(*event));
  } else if (t == "page") {
    out->event_name = "page_viewed";
  } else if (t == "screen") {
    out->event_name = "screen_viewed";
  } else {
    out->event_name = t;
  }

  out->event_id = Text(Get(root, "messageId")).value_or("");
  out->user_id = Text(Get(root, "userId"));
  out->anonymous_id = Text(Get(root, "anonymousId"));
  if (t == "alias" && !out->anonymous_id) out->anonymous_id = Text(Get(root, "previousId"));
  out->group_id = Text(Get(root, "groupId"));

  // Event time (DESIGN.md §6): received_at − (sent_at − original_ts) when both exist.
  std::optional<int64_t> ts, original, sent;
  if (!IsoTimestamp(Get(root, "timestamp"), &ts) || !IsoTimestamp(Get(root, "originalTimestamp"), &original) ||
      !IsoTimestamp(Get(root, "sentAt"), &sent)) {
    *error = {"bad_timestamp", "timestamp, originalTimestamp or sentAt is present but not an ISO 8601 time"};
    return false;
  }
  out->original_ts = original ? original : ts;
  out->sent_at = sent;
  if (out->original_ts && out->sent_at) {
    out->event_ts = out->received_at - (*out->sent_at - *out->original_ts);
  } else if (out->original_ts) {
    out->event_ts = *out->original_ts;
  } else {
    out->event_ts = out->received_at;
  }

  std::optional<element> context = Get(root, "context");
  std::optional<element> props = Get(root, (t == "identify" || t == "group") ? "traits" : "properties");
  if (!props && t == "identify" && context) props = Get(*context, "traits");
  if (props && props->is_object()) {
    out->properties = *props;
    out->has_properties = true;
  }

  // Platform: server libraries, then the mobile SDKs' device/os, then the browser.
  std::optional<std::string> library = context ? Text(GetPath(*context, {"library", "name"})) : std::nullopt;
  std::optional<std::string> explicit_platform = Text(Get(root, "platform"));
  std::optional<std::string> device_type = context ? Text(GetPath(*context, {"device", "type"})) : std::nullopt;
  std::optional<std::string> os_name = context ? Text(GetPath(*context, {"os", "name"})) : std::nullopt;
  auto lower = [](std::optional<std::string> s) {
    if (s) for (auto& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  device_type = lower(device_type);
  os_name = lower(os_name);
  explicit_platform = lower(explicit_platform);
  if (explicit_platform && (*explicit_platform == "web" || *explicit_platform == "ios" ||
                            *explicit_platform == "android" || *explicit_platform == "server" ||
                            *explicit_platform == "other")) {
    out->platform = *explicit_platform;
  } else if (library && IsServerLibrary(*library)) {
    out->platform = "server";
  } else if (device_type == "ios" || os_name == "ios" || os_name == "ipados") {
    out->platform = "ios";
  } else if (device_type == "android" || os_name == "android") {
    out->platform = "android";
  } else if ((context && (Get(*context, "userAgent") || Get(*context, "page"))) || t == "page" ||
             !raw.user_agent.empty()) {
    out->platform = "web";
  } else {
    out->platform = "other";
  }

  if (context) {
    out->user_agent = Text(Get(*context, "userAgent"));
    out->ip = Text(Get(*context, "ip"));
    if (auto page = Get(*context, "page")) {
      out->page_url = Text(Get(*page, "url"));
      out->page_path = Text(Get(*page, "path"));
      out->page_title = Text(Get(*page, "title"));
      out->referrer_url = Text(Get(*page, "referrer"));
    }
    if (auto c = Get(*context, "campaign")) {
      out->campaign_source = Text(Get(*c, "source"));
      out->campaign_medium = Text(Get(*c, "medium"));
      out->campaign_name = Text(Get(*c, "name"));
      out->campaign_term = Text(Get(*c, "term"));
      out->campaign_content = Text(Get(*c, "content"));
    }
  }
  if (t == "page" && out->has_properties) {
    // A page call's own properties describe the page better than the context.
    if (auto v = Text(Get(out->properties, "url"))) out->page_url = v;
    if (auto v = Text(Get(out->properties, "path"))) out->page_path = v;
    if (auto v = Text(Get(out->properties, "title"))) out->page_title = v;
    if (auto v = Text(Get(out->properties, "referrer"))) out->referrer_url = v;
  }
  if (out->platform != "server") {
    if (!out->user_agent && !raw.user_agent.empty()) out->user_agent = raw.user_agent;
    if (!out->ip && !raw.client_ip.empty()) out->ip = raw.client_ip;
  }
  if (out->has_properties && (t == "track" || t == "page" || t == "screen")) {
    out->currency = Text(Get(out->properties, "currency"));
    if (out->event_name == "order_completed") {
      out->revenue = Number(Get(out->properties, "revenue"));
      if (!out->revenue) out->revenue = Number(Get(out->properties, "total"));
    }
  }
  return true;
}

bool EventParser::ParseSnowplow(element root, const RawEvent& raw, CanonicalEvent* out, ParseError* error) {
  auto field = [&](std::string_view key) { return Text(Get(root, key)); };
  auto e = field("e");
  if (!e) {
    *error = {"missing_type", "the tracker-protocol event has no 'e' parameter"};
    return false;
  }
  // Properties are built as JSON text and parsed into props_parser_.
  props_json_ = "{";
  bool first = true;
  auto add = [&](std::string_view key, const std::optional<std::string>& value, bool raw_json = false) {
    if (!value) return;
    if (!first) props_json_.push_back(',');
    first = false;
    AppendJsonString(key, &props_json_);
    props_json_.push_back(':');
    if (raw_json) props_json_ += *value;
    else AppendJsonString(*value, &props_json_);
  };
  auto add_number = [&](std::string_view key, const std::optional<std::string>& value) {
    if (!value) return;
    double d;
    auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), d);
    bool numeric = ec == std::errc() && p == value->data() + value->size() && std::isfinite(d);
    add(key, value, numeric);
  };

  out->event_type = "track";
  if (*e == "pv") {
    out->event_type = "page";
    out->event_name = "page_viewed";
  } else if (*e == "pp") {
    out->event_name = "page_ping";
    add_number("pp_mix", field("pp_mix"));
    add_number("pp_max", field("pp_max"));
    add_number("pp_miy", field("pp_miy"));
    add_number("pp_may", field("pp_may"));
  } else if (*e == "se") {
    auto action = field("se_ac");
    if (!action || CanonicalEventName(*action).empty()) {
      *error = {"missing_event", "a structured event needs se_ac (its action)"};
      return false;
    }
    out->event_name = Alias(CanonicalEventName(*action));
    add("category", field("se_ca"));
    add("action", action);
    add("label", field("se_la"));
    add("property", field("se_pr"));
    add_number("value", field("se_va"));
  } else if (*e == "ue") {
    std::string ue_json;
    if (auto pr = field("ue_pr")) {
      ue_json = *pr;
    } else if (auto px = field("ue_px")) {
      if (!Base64Decode(*px, &ue_json)) {
        *error = {"invalid_json", "ue_px is not base64"};
        return false;
      }
    } else {
      *error = {"missing_event", "a self-describing event needs ue_pr or ue_px"};
      return false;
    }
    simdjson::padded_string padded(ue_json);
    simdjson::dom::parser p;
    element ue;
    std::optional<std::string> schema;
    std::optional<element> data;
    if (!p.parse(padded).get(ue)) {
      data = GetPath(ue, {"data", "data"});
      schema = Text(GetPath(ue, {"data", "schema"}));
    }
    if (!schema || !data) {
      *error = {"invalid_json", "the self-describing event is not {schema, data:{schema, data}}"};
      return false;
    }
    // iglu:com.acme/link_click/jsonschema/1-0-0 → link_click
    std::string name = *schema;
    if (auto slash = name.find('/'); slash != std::string::npos) {
      name = name.substr(slash + 1);
      name = name.substr(0, name.find('/'));
    }
    out->event_name = Alias(CanonicalEventName(name));
    if (out->event_name.empty()) {
      *error = {"missing_event", "the self-describing event's schema has no name: " + *schema};
      return false;
    }
    if (!first) props_json_.push_back(',');
    first = false;
    // Merge the data object's members into the properties.
    std::string data_json = simdjson::minify(*data);
    if (data->is_object() && data_json.size() > 2) {
      props_json_ += data_json.substr(1, data_json.size() - 2);
    } else {
      first = true;
      if (props_json_.back() == ',') props_json_.pop_back();
    }
  } else if (*e == "tr") {
    out->event_name = Alias("order_completed");
    add("order_id", field("tr_id"));
    add("affiliation", field("tr_af"));
    add_number("total", field("tr_tt"));
    add_number("revenue", field("tr_tt"));
    add_number("tax", field("tr_tx"));
    add_number("shipping", field("tr_sh"));
    add("currency", field("tr_cu"));
  } else if (*e == "ti") {
    out->event_name = Alias("transaction_item");
    add("order_id", field("ti_id"));
    add("sku", field("ti_sk"));
    add("name", field("ti_nm"));
    add("category", field("ti_ca"));
    add_number("price", field("ti_pr"));
    add_number("quantity", field("ti_qu"));
    add("currency", field("ti_cu"));
  } else {
    *error = {"unknown_type", "tracker-protocol event type e=" + *e + " is not pv, pp, se, ue, tr or ti"};
    return false;
  }
  // Contexts (co = JSON, cx = base64 JSON): {schema, data: [{schema, data}...]} → properties.contexts.
  std::string contexts;
  if (auto co = field("co")) {
    contexts = *co;
  } else if (auto cx = field("cx")) {
    if (!Base64Decode(*cx, &contexts)) contexts.clear();
  }
  if (!contexts.empty()) {
    simdjson::padded_string padded(contexts);
    simdjson::dom::parser p;
    element c;
    if (!p.parse(padded).get(c)) {
      if (auto data = Get(c, "data"); data && data->is_array()) add("contexts", simdjson::minify(*data), true);
    }
  }
  props_json_.push_back('}');
  if (props_parser_.parse(props_json_).get(out->properties)) {
    *error = {"invalid_json", "the tracker-protocol event's properties are not valid JSON"};
    return false;
  }
  out->has_properties = true;

  out->event_id = field("eid").value_or("");
  out->user_id = field("uid");
  out->anonymous_id = field("duid");
  if (!out->anonymous_id) out->anonymous_id = field("nuid");
  if (!out->anonymous_id) out->anonymous_id = field("tnuid");

  std::optional<int64_t> dtm, stm, ttm;
  if (!MillisTimestamp(field("dtm"), &dtm) || !MillisTimestamp(field("stm"), &stm) ||
      !MillisTimestamp(field("ttm"), &ttm)) {
    *error = {"bad_timestamp", "dtm, stm or ttm is present but not epoch milliseconds"};
    return false;
  }
  out->original_ts = dtm;
  out->sent_at = stm;
  // derived_tstamp: the true timestamp when the tracker knows it; else the
  // collector time corrected by the device's send delay; else the device time.
  if (ttm) out->event_ts = *ttm;
  else if (dtm && stm) out->event_ts = out->received_at - (*stm - *dtm);
  else if (dtm) out->event_ts = *dtm;
  else out->event_ts = out->received_at;

  out->user_agent = field("ua");
  out->ip = field("ip");
  out->page_url = field("url");
  out->page_title = field("page");
  out->referrer_url = field("refr");

  auto p = field("p").value_or("web");
  if (p == "web") out->platform = "web";
  else if (p == "srv") out->platform = "server";
  else if (p == "mob" || p == "app" || p == "tv") out->platform = PlatformFromUserAgent(out->user_agent);
  else out->platform = "other";
  if (out->platform != "server") {
    if (!out->user_agent && !raw.user_agent.empty()) out->user_agent = raw.user_agent;
    if (!out->ip && !raw.client_ip.empty()) out->ip = raw.client_ip;
  }
  out->currency = Text(Get(out->properties, "currency"));
  if (out->event_name == "order_completed") {
    out->revenue = Number(Get(out->properties, "revenue"));
    if (!out->revenue) out->revenue = Number(Get(out->properties, "total"));
  }
  return true;
}

}  // namespace clicklake::pipeline
