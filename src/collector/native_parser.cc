#include "collector/native_parser.h"

#include <simdjson.h>

#include <utility>
#include <vector>

#include "collector/json_util.h"

namespace clicklake::collector {
namespace {

namespace od = simdjson::ondemand;

void AppendMember(std::string_view key, std::string_view raw, bool* first, std::string* out) {
  if (!*first) out->push_back(',');
  *first = false;
  AppendJsonString(key, out);
  out->push_back(':');
  out->append(raw);
}

Status BuildEvent(std::string_view raw, const char* buffer_end, std::string_view sent_at, const BodyLimits& limits,
                  od::parser* parser, ParsedEvent* event) {
  if (raw.size() > limits.max_event_bytes) {
    return Status::ResourceExhausted("event of " + std::to_string(raw.size()) + " bytes exceeds the limit of " +
                                     std::to_string(limits.max_event_bytes) +
                                     " bytes per event (collector.max_event_bytes)");
  }
  std::vector<JsonMember> members;
  if (raw.empty() || raw.front() != '{' || !ReadJsonMembers(raw, buffer_end, parser, &members).ok()) {
    return Status::InvalidArgument("each event must be a JSON object (the canonical envelope)");
  }
  std::string user_id, anonymous_id, name, type;
  bool has_sent_at = false;
  std::string& out = event->payload;
  out.reserve(raw.size() + sent_at.size() + 16);
  out.push_back('{');
  bool first = true;
  for (const JsonMember& m : members) {
    if (m.key == "writeKey") continue;
    if (m.key == "userId" && m.raw != "null")
      DecodeJsonScalar(m.raw, &user_id);
    else if (m.key == "anonymousId" && m.raw != "null")
      DecodeJsonScalar(m.raw, &anonymous_id);
    else if (m.key == "event")
      DecodeJsonScalar(m.raw, &name);
    else if (m.key == "type")
      DecodeJsonScalar(m.raw, &type);
    else if (m.key == "sentAt")
      has_sent_at = true;
    AppendMember(m.key, m.raw, &first, &out);
  }
  if (!has_sent_at && !sent_at.empty()) AppendMember("sentAt", sent_at, &first, &out);
  out.push_back('}');
  event->partition_key = !user_id.empty() ? std::move(user_id) : std::move(anonymous_id);
  event->event_name = !name.empty() ? std::move(name) : std::move(type);
  return Status::OK();
}

}  // namespace

Status ParseNativeBody(std::string_view body, const BodyLimits& limits, ParsedBody* out) {
  out->events.clear();
  out->write_key.clear();
  if (body.size() > limits.max_request_bytes) {
    return Status::ResourceExhausted("request body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                                     std::to_string(limits.max_request_bytes) +
                                     " bytes per request (collector.max_request_bytes)");
  }
  simdjson::padded_string json(body);
  const char* buffer_end = json.data() + json.size() + simdjson::SIMDJSON_PADDING;
  thread_local od::parser parser;  // reused: its buffers grow to the largest body seen
  RETURN_IF_ERROR(ValidateJson(json, &parser));
  std::string_view whole = TrimJsonWhitespace(std::string_view(json.data(), json.size()));
  std::vector<JsonMember> top;
  if (!ReadJsonMembers(whole, buffer_end, &parser, &top).ok()) {
    return Status::InvalidArgument("the body must be an event object or {\"events\": [...]}");
  }
  std::string_view events_raw, sent_at;
  for (const JsonMember& m : top) {
    if (m.key == "writeKey" && !m.raw.empty() && m.raw.front() == '"') DecodeJsonScalar(m.raw, &out->write_key);
    if (m.key == "events") events_raw = m.raw;
    if (m.key == "sentAt" && m.raw != "null") sent_at = m.raw;
  }
  Status result;
  if (events_raw.empty()) {
    ParsedEvent event;
    result = BuildEvent(whole, buffer_end, {}, limits, &parser, &event);
    if (result.ok()) out->events.push_back(std::move(event));
    return result;
  }
  if (events_raw.front() != '[') return Status::InvalidArgument("\"events\" must be an array of event objects");
  std::vector<std::string_view> items;
  {
    od::document doc;
    if (auto e = parser.iterate(events_raw.data(), events_raw.size(), buffer_end - events_raw.data()).get(doc)) {
      return Status::InvalidArgument("invalid JSON: " + std::string(simdjson::error_message(e)));
    }
    od::array arr;
    if (doc.get_array().get(arr)) return Status::InvalidArgument("\"events\" must be an array");
    for (auto element : arr) {
      od::value v;
      std::string_view raw;
      if (element.get(v) || RawJson(v, &raw)) return Status::InvalidArgument("invalid JSON in \"events\"");
      items.push_back(raw);
    }
  }
  for (std::string_view raw : items) {
    ParsedEvent event;
    result = BuildEvent(raw, buffer_end, sent_at, limits, &parser, &event);
    if (!result.ok()) break;
    out->events.push_back(std::move(event));
  }
  if (!result.ok()) out->events.clear();
  return result;
}

}  // namespace clicklake::collector
