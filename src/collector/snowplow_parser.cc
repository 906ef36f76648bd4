#include "collector/snowplow_parser.h"

#include <simdjson.h>

#include <utility>
#include <vector>

#include "collector/json_util.h"

namespace clicklake::collector {
namespace {

namespace od = simdjson::ondemand;

Status Malformed(simdjson::error_code e) {
  return Status::InvalidArgument("invalid JSON: " + std::string(simdjson::error_message(e)));
}

Status EventTooLarge(size_t size, const BodyLimits& limits) {
  return Status::ResourceExhausted("event of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_event_bytes) +
                                   " bytes per event (collector.max_event_bytes)");
}

Status RequestTooLarge(size_t size, const BodyLimits& limits) {
  return Status::ResourceExhausted("request body of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_request_bytes) +
                                   " bytes per request (collector.max_request_bytes)");
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Fills partition key, name and app id from the event's fields.
void Describe(std::string_view e, std::string_view se_action, std::string uid, std::string duid, std::string aid,
              ParsedEvent* event) {
  event->partition_key = !uid.empty() ? std::move(uid) : std::move(duid);
  event->event_name = SnowplowEventName(e, se_action);
  event->app_id = std::move(aid);
}

}  // namespace

std::string SnowplowEventName(std::string_view e, std::string_view se_action) {
  if (e == "pp") return "page_ping";
  if (e == "pv") return "page_view";
  if (e == "se" && !se_action.empty()) return std::string(se_action);
  if (e == "ue") return "unstruct";
  if (e == "tr") return "transaction";
  if (e == "ti") return "transaction_item";
  return std::string(e);
}

bool DecodeQueryComponent(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = Hex(in[i + 1]), lo = Hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(c);
    }
  }
  return true;
}

Status ParseSnowplowPost(std::string_view body, const BodyLimits& limits, ParsedBody* out) {
  out->events.clear();
  out->write_key.clear();
  if (body.size() > limits.max_request_bytes) return RequestTooLarge(body.size(), limits);
  simdjson::padded_string json(body);
  const char* buffer_end = json.data() + json.size() + simdjson::SIMDJSON_PADDING;
  thread_local od::parser parser;  // reused: its buffers grow to the largest body seen
  RETURN_IF_ERROR(ValidateJson(json, &parser));

  std::vector<JsonMember> top;
  if (!ReadJsonMembers(std::string_view(json.data(), json.size()), buffer_end, &parser, &top).ok()) {
    return Status::InvalidArgument("the body must be a payload_data JSON object");
  }
  std::string schema;
  std::string_view data_raw;
  for (const JsonMember& m : top) {
    if (m.key == "schema") DecodeJsonScalar(m.raw, &schema);
    if (m.key == "data") data_raw = m.raw;
  }
  if (schema.find("payload_data") == std::string::npos) {
    return Status::InvalidArgument(
        "expected a self-describing payload_data envelope (\"schema\": "
        "\"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\")");
  }
  if (data_raw.empty() || data_raw.front() != '[') {
    return Status::InvalidArgument("payload_data needs a \"data\" array of events");
  }
  std::vector<std::string_view> items;
  {
    od::document doc;
    if (auto e = parser.iterate(data_raw.data(), data_raw.size(), buffer_end - data_raw.data()).get(doc)) {
      return Malformed(e);
    }
    od::array arr;
    if (auto e = doc.get_array().get(arr)) return Malformed(e);
    for (auto element : arr) {
      od::value v;
      std::string_view raw;
      if (auto e = element.get(v)) return Malformed(e);
      if (auto e = RawJson(v, &raw)) return Malformed(e);
      items.push_back(raw);
    }
  }
  Status result;
  for (std::string_view raw : items) {
    if (raw.size() > limits.max_event_bytes) {
      result = EventTooLarge(raw.size(), limits);
      break;
    }
    std::vector<JsonMember> fields;
    if (raw.empty() || raw.front() != '{' || !ReadJsonMembers(raw, buffer_end, &parser, &fields).ok()) {
      result = Status::InvalidArgument("each item of \"data\" must be an event object");
      break;
    }
    std::string e, se_ac, uid, duid, aid;
    for (const JsonMember& f : fields) {
      if (f.key == "e")
        DecodeJsonScalar(f.raw, &e);
      else if (f.key == "se_ac")
        DecodeJsonScalar(f.raw, &se_ac);
      else if (f.key == "uid")
        DecodeJsonScalar(f.raw, &uid);
      else if (f.key == "duid")
        DecodeJsonScalar(f.raw, &duid);
      else if (f.key == "aid")
        DecodeJsonScalar(f.raw, &aid);
    }
    ParsedEvent event;
    event.payload.assign(raw);
    Describe(e, se_ac, std::move(uid), std::move(duid), std::move(aid), &event);
    out->events.push_back(std::move(event));
  }
  if (!result.ok()) out->events.clear();
  return result;
}

Status ParseSnowplowQuery(std::string_view query, const BodyLimits& limits, ParsedBody* out) {
  out->events.clear();
  out->write_key.clear();
  if (query.size() > limits.max_event_bytes) return EventTooLarge(query.size(), limits);
  ParsedEvent event;
  std::string& payload = event.payload;
  payload.push_back('{');
  bool first = true;
  std::string key, value, e, se_ac, uid, duid, aid;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!DecodeQueryComponent(k, &key) || !DecodeQueryComponent(v, &value)) {
      return Status::InvalidArgument("malformed percent-encoding in the query string");
    }
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return Status::InvalidArgument("query parameters must be UTF-8 text");
    }
    if (!first) payload.push_back(',');
    first = false;
    AppendJsonString(key, &payload);
    payload.push_back(':');
    AppendJsonString(value, &payload);
    if (key == "e")
      e = value;
    else if (key == "se_ac")
      se_ac = value;
    else if (key == "uid")
      uid = value;
    else if (key == "duid")
      duid = value;
    else if (key == "aid")
      aid = value;
  }
  payload.push_back('}');
  if (first) return Status::InvalidArgument("GET /i needs tracker-protocol query parameters (e, tv, ...)");
  Describe(e, se_ac, std::move(uid), std::move(duid), std::move(aid), &event);
  out->events.push_back(std::move(event));
  return Status::OK();
}

}  // namespace clicklake::collector
