#include "collector/segment_parser.h"

#include <simdjson.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "collector/json_util.h"

namespace clicklake::collector {
namespace {

namespace od = simdjson::ondemand;

// The body is validated first (ValidateJson), then read in one On-Demand pass
// that records, per event, its members as (key, raw value text) — the event's
// own context object as its members — so that payloads are assembled from
// slices of the body without re-parsing or reformatting any value.
//
// Fast path: an event without a top-level "writeKey" (nearly all) is copied as
// one slice of the body, with the batch context's members spliced in before its
// context's closing brace and the missing batch members before its own closing
// brace — a few appends per event instead of one per member. Keys are views of
// the parser's unescaped strings (valid while the document lives).

Status Malformed(simdjson::error_code e) {
  return Status::InvalidArgument("invalid JSON: " + std::string(simdjson::error_message(e)));
}

// A member of an object: unescaped key (a view into the parser), raw value text.
struct Member {
  std::string_view key;
  std::string_view raw;
};

struct EventSlice {
  size_t members_begin = 0, members_end = 0;  // into Reader::members
  size_t context_begin = 0, context_end = 0;  // into Reader::context_members (when context_is_object)
  bool context_is_object = false;
  bool has_write_key = false;   // a top-level "writeKey" member (must be removed: slow path)
  const char* start = nullptr;  // the event's '{' in the body
  const char* close = nullptr;  // the event's closing '}'
  const char* context_close = nullptr;  // the closing '}' of its (first object) context
  size_t bytes = 0;  // size of the event's text in the body
};

struct Reader {
  std::vector<Member> members;
  std::vector<Member> context_members;
  std::vector<EventSlice> events;
  // Batch level.
  std::vector<Member> batch_context;
  bool has_batch_context = false;
  std::string_view integrations, sent_at;
  bool saw_batch = false;

  // Forgets the previous body, keeping the vectors' capacity.
  void Clear() {
    members.clear();
    context_members.clear();
    events.clear();
    batch_context.clear();
    has_batch_context = false;
    integrations = sent_at = std::string_view();
    saw_batch = false;
  }
};

// End of a raw value's text: for objects/arrays RawJson gives the whole text.
const char* EndOf(std::string_view raw) { return raw.data() + raw.size(); }

// The closing brace of an object whose last value (or opening brace) ends at
// `p`: the body is valid JSON, so only whitespace lies between.
const char* ClosingBrace(const char* p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  return p;
}

// Reads the members of object `obj` into *out; *end is the end of the last value.
simdjson::error_code ReadMembers(od::object obj, std::vector<Member>* out, const char** end) {
  for (auto field : obj) {
    Member m;
    if (auto e = field.unescaped_key().get(m.key)) return e;
    od::value v;
    if (auto e = field.value().get(v)) return e;
    if (auto e = RawJson(v, &m.raw)) return e;
    *end = std::max(*end, EndOf(m.raw));
    out->push_back(std::move(m));
  }
  return simdjson::SUCCESS;
}

// Reads one event object (the value `v`) into reader->events.
Status ReadEvent(od::value v, Reader* r) {
  od::json_type type;
  if (auto e = v.type().get(type)) return Malformed(e);
  if (type != od::json_type::object) return Status::InvalidArgument("each event must be a JSON object");
  const char* start = v.raw_json_token().data();
  const char* end = start + 1;  // past the last value (or the opening brace)
  od::object obj;
  if (auto e = v.get_object().get(obj)) return Malformed(e);
  EventSlice slice;
  slice.start = start;
  slice.members_begin = r->members.size();
  for (auto field : obj) {
    Member m;
    if (auto e = field.unescaped_key().get(m.key)) return Malformed(e);
    od::value value;
    if (auto e = field.value().get(value)) return Malformed(e);
    od::json_type vt;
    if (auto e = value.type().get(vt)) return Malformed(e);
    if (m.key == "context" && vt == od::json_type::object && !slice.context_is_object) {
      slice.context_is_object = true;
      slice.context_begin = r->context_members.size();
      const char* ctx_end = value.raw_json_token().data() + 1;
      od::object ctx;
      if (auto e = value.get_object().get(ctx)) return Malformed(e);
      if (auto e = ReadMembers(ctx, &r->context_members, &ctx_end)) return Malformed(e);
      slice.context_end = r->context_members.size();
      slice.context_close = ClosingBrace(ctx_end);
      end = slice.context_close + 1;
      m.raw = std::string_view();  // marker: rebuilt from context_members
    } else {
      if (auto e = RawJson(value, &m.raw)) return Malformed(e);
      end = EndOf(m.raw);
      if (m.key == "writeKey") slice.has_write_key = true;
    }
    r->members.push_back(m);
  }
  slice.members_end = r->members.size();
  slice.close = ClosingBrace(end);
  slice.bytes = static_cast<size_t>(slice.close - start) + 1;
  r->events.push_back(slice);
  return Status::OK();
}

void AppendMember(std::string_view key, std::string_view raw, bool* first, std::string* out) {
  if (!*first) out->push_back(',');
  *first = false;
  AppendJsonString(key, out);
  out->push_back(':');
  out->append(raw);
}

void AppendObject(const Member* begin, const Member* end, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const Member* m = begin; m != end; ++m) AppendMember(m->key, m->raw, &first, out);
  out->push_back('}');
}

Status TooLarge(size_t size, const BodyLimits& limits) {
  return Status::ResourceExhausted("event of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_event_bytes) +
                                   " bytes per event (collector.max_event_bytes)");
}

// What an event's own top-level members say about it.
struct EventFacts {
  bool has_context = false, has_integrations = false, has_sent_at = false, has_type = false;
  std::string user_id, anonymous_id, name, type;

  void Note(const Member& m) {
    if (m.key.size() < 4 || m.key.size() > 12) return;  // none of the keys below
    if (m.key == "context") {
      has_context = true;
    } else if (m.key == "integrations") {
      has_integrations = true;
    } else if (m.key == "sentAt") {
      has_sent_at = true;
    } else if (m.key == "type") {
      has_type = true;
      DecodeJsonScalar(m.raw, &type);
    } else if (m.key == "userId") {
      if (m.raw != "null") DecodeJsonScalar(m.raw, &user_id);
    } else if (m.key == "anonymousId") {
      if (m.raw != "null") DecodeJsonScalar(m.raw, &anonymous_id);
    } else if (m.key == "event") {
      DecodeJsonScalar(m.raw, &name);
    }
  }
};

// Appends the batch context's members that the event's own context lacks.
void AppendBatchContextMembers(const Reader& r, const EventSlice& slice, bool* first, std::string* out) {
  for (const Member& c : r.batch_context) {
    bool shadowed = false;
    for (size_t k = slice.context_begin; k < slice.context_end && !shadowed; ++k) {
      shadowed = r.context_members[k].key == c.key;
    }
    if (!shadowed) AppendMember(c.key, c.raw, first, out);
  }
}

// Appends the batch members the event lacks (context, integrations, sentAt,
// the endpoint's type), closes the object and fills the event's routing fields.
void FinishEvent(const Reader& r, std::string_view default_type, EventFacts* facts, bool* first,
                 ParsedEvent* event) {
  std::string& out = event->payload;
  if (!facts->has_context && r.has_batch_context) {
    std::string context;
    AppendObject(r.batch_context.data(), r.batch_context.data() + r.batch_context.size(), &context);
    AppendMember("context", context, first, &out);
  }
  if (!facts->has_integrations && !r.integrations.empty()) AppendMember("integrations", r.integrations, first, &out);
  if (!facts->has_sent_at && !r.sent_at.empty()) AppendMember("sentAt", r.sent_at, first, &out);
  if (!facts->has_type && !default_type.empty()) {
    std::string quoted;
    AppendJsonString(default_type, &quoted);
    AppendMember("type", quoted, first, &out);
    facts->type.assign(default_type);
  }
  out.push_back('}');
  event->partition_key = !facts->user_id.empty() ? std::move(facts->user_id) : std::move(facts->anonymous_id);
  event->event_name = !facts->name.empty() ? std::move(facts->name) : std::move(facts->type);
}

// Assembles one event's payload member by member (see segment_parser.h for
// the rules); the path for events that carry a "writeKey" to drop.
void RebuildEvent(const Reader& r, const EventSlice& slice, std::string_view default_type, ParsedEvent* event) {
  std::string& out = event->payload;
  out.reserve(slice.bytes + 256);
  out.push_back('{');
  bool first = true;
  EventFacts facts;
  for (size_t i = slice.members_begin; i < slice.members_end; ++i) {
    const Member& m = r.members[i];
    if (m.key == "writeKey") continue;
    facts.Note(m);
    if (m.key == "context" && m.raw.empty()) {  // an object: merge the batch context under it
      std::string merged;
      const Member* own = r.context_members.data();
      AppendObject(own + slice.context_begin, own + slice.context_end, &merged);
      if (r.has_batch_context) {
        merged.pop_back();
        bool mfirst = slice.context_begin == slice.context_end;
        AppendBatchContextMembers(r, slice, &mfirst, &merged);
        merged.push_back('}');
      }
      AppendMember(m.key, merged, &first, &out);
      continue;
    }
    AppendMember(m.key, m.raw, &first, &out);
  }
  FinishEvent(r, default_type, &facts, &first, event);
}

// The same payload as RebuildEvent, spliced from the body: the event's text up
// to its context's closing brace, the batch context's members it lacks, the rest
// of its text, then the batch members it lacks. REQUIRES: !slice.has_write_key.
void SpliceEvent(const Reader& r, const EventSlice& slice, std::string_view default_type, ParsedEvent* event) {
  std::string& out = event->payload;
  out.reserve(slice.bytes + 256);
  EventFacts facts;
  for (size_t i = slice.members_begin; i < slice.members_end; ++i) facts.Note(r.members[i]);
  const char* from = slice.start;
  if (slice.context_is_object && r.has_batch_context) {
    out.append(from, slice.context_close);
    bool first = slice.context_begin == slice.context_end;
    AppendBatchContextMembers(r, slice, &first, &out);
    from = slice.context_close;
  }
  out.append(from, slice.close);
  bool first = slice.members_begin == slice.members_end;
  FinishEvent(r, default_type, &facts, &first, event);
}

void BuildEvent(const Reader& r, const EventSlice& slice, std::string_view default_type, ParsedEvent* event) {
  if (slice.has_write_key) return RebuildEvent(r, slice, default_type, event);
  SpliceEvent(r, slice, default_type, event);
}

Status ReadBatch(od::object root, Reader* r, std::string* write_key) {
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Malformed(e);
    od::value v;
    if (auto e = field.value().get(v)) return Malformed(e);
    if (key == "batch") {
      od::json_type type;
      if (auto e = v.type().get(type)) return Malformed(e);
      if (type != od::json_type::array)
        return Status::InvalidArgument("a batch body needs a \"batch\" array of events");
      r->saw_batch = true;
      od::array items;
      if (auto e = v.get_array().get(items)) return Malformed(e);
      for (auto item : items) {
        od::value iv;
        if (auto e = item.get(iv)) return Malformed(e);
        Status s = ReadEvent(iv, r);
        if (!s.ok()) return Status::InvalidArgument("each item of \"batch\" must be an event object");
      }
    } else if (key == "context") {
      od::json_type type;
      if (auto e = v.type().get(type)) return Malformed(e);
      if (type != od::json_type::object) continue;
      r->has_batch_context = true;
      r->batch_context.clear();
      od::object ctx;
      const char* end = nullptr;
      if (auto e = v.get_object().get(ctx)) return Malformed(e);
      if (auto e = ReadMembers(ctx, &r->batch_context, &end)) return Malformed(e);
    } else if (key == "integrations" || key == "sentAt" || key == "writeKey") {
      bool is_integrations = key == "integrations", is_sent_at = key == "sentAt";
      std::string_view raw;
      if (auto e = RawJson(v, &raw)) return Malformed(e);
      if (raw == "null") continue;
      if (is_integrations)
        r->integrations = raw;
      else if (is_sent_at)
        r->sent_at = raw;
      else if (raw.front() == '"')
        DecodeJsonScalar(raw, write_key);
    }
  }
  if (!r->saw_batch) return Status::InvalidArgument("a batch body needs a \"batch\" array of events");
  return Status::OK();
}

}  // namespace

std::optional<SegmentCall> SegmentCallForPath(std::string_view path) {
  static const std::pair<std::string_view, SegmentCall> kRoutes[] = {
      {"/v1/batch", SegmentCall::kBatch},   {"/v1/import", SegmentCall::kImport},
      {"/v1/track", SegmentCall::kTrack},   {"/v1/page", SegmentCall::kPage},
      {"/v1/screen", SegmentCall::kScreen}, {"/v1/identify", SegmentCall::kIdentify},
      {"/v1/group", SegmentCall::kGroup},   {"/v1/alias", SegmentCall::kAlias},
      {"/v1/b", SegmentCall::kBatch},       {"/v1/t", SegmentCall::kTrack},
      {"/v1/p", SegmentCall::kPage},        {"/v1/i", SegmentCall::kIdentify},
      {"/v1/g", SegmentCall::kGroup},       {"/v1/a", SegmentCall::kAlias},
  };
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  for (const auto& [p, call] : kRoutes) {
    if (p == path) return call;
  }
  return std::nullopt;
}

std::string_view SegmentCallName(SegmentCall call) {
  switch (call) {
    case SegmentCall::kBatch:
      return "batch";
    case SegmentCall::kImport:
      return "import";
    case SegmentCall::kTrack:
      return "track";
    case SegmentCall::kPage:
      return "page";
    case SegmentCall::kScreen:
      return "screen";
    case SegmentCall::kIdentify:
      return "identify";
    case SegmentCall::kGroup:
      return "group";
    case SegmentCall::kAlias:
      return "alias";
  }
  return "unknown";
}

Status ParseSegmentBody(std::string_view body, SegmentCall call, const BodyLimits& limits, ParsedBody* out) {
  out->events.clear();
  out->write_key.clear();
  if (body.size() > limits.max_request_bytes) {
    return Status::ResourceExhausted("request body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                                     std::to_string(limits.max_request_bytes) +
                                     " bytes per request (collector.max_request_bytes)");
  }
  simdjson::padded_string json(body);
  thread_local od::parser parser;  // reused: its buffers grow to the largest body seen
  RETURN_IF_ERROR(ValidateJson(json, &parser));

  od::document doc;
  if (auto e = parser.iterate(json).get(doc)) return Malformed(e);
  od::json_type type;
  if (auto e = doc.type().get(type)) return Malformed(e);
  if (type != od::json_type::object) return Status::InvalidArgument("the body must be a JSON object");
  thread_local Reader r;  // reused: no vector regrowth per request; views into this body only
  r.Clear();
  bool batch = call == SegmentCall::kBatch || call == SegmentCall::kImport;
  if (batch) {
    od::object root;
    if (auto e = doc.get_object().get(root)) return Malformed(e);
    RETURN_IF_ERROR(ReadBatch(root, &r, &out->write_key));
  } else {
    od::value root;
    if (auto e = doc.get_value().get(root)) return Malformed(e);
    RETURN_IF_ERROR(ReadEvent(root, &r));
  }
  for (const EventSlice& slice : r.events) {
    if (slice.bytes > limits.max_event_bytes) return TooLarge(slice.bytes, limits);
  }
  if (!batch) {
    for (size_t i = r.events[0].members_begin; i < r.events[0].members_end; ++i) {
      const Member& m = r.members[i];
      if (m.key == "writeKey" && !m.raw.empty() && m.raw.front() == '"') DecodeJsonScalar(m.raw, &out->write_key);
    }
  }
  std::string_view default_type = batch ? std::string_view() : SegmentCallName(call);
  out->events.resize(r.events.size());
  for (size_t i = 0; i < r.events.size(); ++i) BuildEvent(r, r.events[i], default_type, &out->events[i]);
  return Status::OK();
}

}  // namespace clicklake::collector
