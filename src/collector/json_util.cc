#include "collector/json_util.h"

namespace clicklake::collector {
namespace {

namespace od = simdjson::ondemand;

std::string_view ErrorText(simdjson::error_code e) { return simdjson::error_message(e); }

Status Invalid(simdjson::error_code e) {
  if (e == simdjson::UTF8_ERROR) return Status::InvalidArgument("invalid JSON: body is not valid UTF-8");
  if (e == simdjson::DEPTH_ERROR) {
    return Status::InvalidArgument("invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  return Status::InvalidArgument("invalid JSON: " + std::string(ErrorText(e)));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (IsDigit(s[i])) {
    while (i < n && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  return i == n;
}

// Walks every value below `v` so that On-Demand checks all of it.
simdjson::error_code Walk(od::value v, int depth) {
  if (depth > kMaxJsonDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case od::json_type::object: {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto field : obj) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        od::value child;
        if (auto e = field.value().get(child)) return e;
        if (auto e = Walk(child, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array arr;
      if (auto e = v.get_array().get(arr)) return e;
      for (auto element : arr) {
        od::value child;
        if (auto e = element.get(child)) return e;
        if (auto e = Walk(child, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::number:
      // Checked on the token's text: integers beyond 64 bits are valid JSON and
      // the payload keeps their text.
      return IsJsonNumber(TrimJsonWhitespace(v.raw_json_token())) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

}  // namespace


bool IsValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

Status ValidateJsonSlow(const simdjson::padded_string& json, od::parser* parser);

Status ValidateJson(const simdjson::padded_string& json, od::parser* parser) {
  // Fast path: the DOM parser validates everything (syntax, strings, UTF-8,
  // depth, trailing content) in one runtime-dispatched SIMD pass. It refuses
  // integers beyond 64 bits, which are valid JSON: only then walk with On-Demand.
  thread_local simdjson::dom::parser dom;
  thread_local bool allocated = false;
  if (!allocated) {
    if (dom.allocate(64 * 1024, kMaxJsonDepth)) return Status::Internal("simdjson: cannot allocate a parser");
    allocated = true;
  }
  simdjson::dom::element root;
  auto dom_error = dom.parse(json).get(root);
  if (!dom_error) return Status::OK();
  if (dom_error != simdjson::NUMBER_ERROR) return Invalid(dom_error);
  return ValidateJsonSlow(json, parser);
}

Status ValidateJsonSlow(const simdjson::padded_string& json, od::parser* parser) {
  // On-Demand accepts a scalar document but not as a value; handle the common case.
  od::document doc;
  if (auto e = parser->iterate(json).get(doc)) return Invalid(e);
  od::json_type type;
  if (auto e = doc.type().get(type)) return Invalid(e);
  if (type == od::json_type::object || type == od::json_type::array) {
    od::value root;
    if (auto e = doc.get_value().get(root)) return Invalid(e);
    if (auto e = Walk(root, 1)) return Invalid(e);
  } else {
    // A scalar at the top level: only its syntax matters (callers reject it anyway).
    std::string_view token;
    if (auto e = doc.raw_json_token().get(token)) return Invalid(e);
  }
  // On-Demand stops after the first value; make sure nothing but whitespace follows it.
  std::string_view whole = TrimJsonWhitespace(std::string_view(json.data(), json.size()));
  std::string_view root_raw;
  od::document again;
  if (auto e = parser->iterate(json).get(again)) return Invalid(e);
  if (type == od::json_type::object) {
    od::object obj;
    if (auto e = again.get_object().get(obj)) return Invalid(e);
    if (auto e = obj.raw_json().get(root_raw)) return Invalid(e);
  } else if (type == od::json_type::array) {
    od::array arr;
    if (auto e = again.get_array().get(arr)) return Invalid(e);
    if (auto e = arr.raw_json().get(root_raw)) return Invalid(e);
  } else {
    return Status::OK();  // scalar documents: simdjson already refuses trailing content
  }
  root_raw = TrimJsonWhitespace(root_raw);
  if (root_raw.data() + root_raw.size() != whole.data() + whole.size()) {
    return Status::InvalidArgument("invalid JSON: trailing content after the value");
  }
  return Status::OK();
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ReadHex4(std::string_view s, size_t i, uint32_t* v) {
  if (i + 4 > s.size()) return false;
  *v = 0;
  for (size_t k = 0; k < 4; ++k) {
    int h = HexValue(s[i + k]);
    if (h < 0) return false;
    *v = (*v << 4) | static_cast<uint32_t>(h);
  }
  return true;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool DecodeJsonScalar(std::string_view raw, std::string* out) {
  out->clear();
  raw = TrimJsonWhitespace(raw);
  if (raw.empty() || raw.front() != '"') {
    out->assign(raw);
    return true;
  }
  if (raw.size() < 2 || raw.back() != '"') return false;
  std::string_view s = raw.substr(1, raw.size() - 2);
  if (s.find('\\') == std::string_view::npos) {  // no escapes (the common case): one copy
    out->assign(s);
    return true;
  }
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        uint32_t cp;
        if (!ReadHex4(s, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low;
          if (i + 2 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u' && ReadHex4(s, i + 3, &low) && low >= 0xDC00 &&
              low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        AppendUtf8(cp, out);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

std::string_view TrimJsonWhitespace(std::string_view raw) {
  while (!raw.empty()) {
    char c = raw.back();
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      raw.remove_suffix(1);
    } else {
      break;
    }
  }
  return raw;
}

simdjson::error_code RawJson(od::value value, std::string_view* out) {
  od::json_type type;
  if (auto e = value.type().get(type)) return e;
  std::string_view raw;
  if (type == od::json_type::object) {
    od::object obj;
    if (auto e = value.get_object().get(obj)) return e;
    if (auto e = obj.raw_json().get(raw)) return e;
  } else if (type == od::json_type::array) {
    od::array arr;
    if (auto e = value.get_array().get(arr)) return e;
    if (auto e = arr.raw_json().get(raw)) return e;
  } else {
    raw = value.raw_json_token();
  }
  *out = TrimJsonWhitespace(raw);
  return simdjson::SUCCESS;
}

std::string ScalarAsKey(od::value value) {
  od::json_type type;
  if (value.type().get(type)) return "";
  if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return "";
    return std::string(s);
  }
  if (type == od::json_type::number) return std::string(TrimJsonWhitespace(value.raw_json_token()));
  return "";
}

Status ReadJsonMembers(std::string_view raw, const char* buffer_end, od::parser* parser, std::vector<JsonMember>* out) {
  size_t capacity = static_cast<size_t>(buffer_end - raw.data());
  od::document doc;
  if (auto e = parser->iterate(raw.data(), raw.size(), capacity).get(doc)) return Invalid(e);
  od::object obj;
  if (doc.get_object().get(obj)) return Status::InvalidArgument("expected a JSON object");
  for (auto field : obj) {
    JsonMember m;
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Invalid(e);
    m.key.assign(key);
    od::value v;
    if (auto e = field.value().get(v)) return Invalid(e);
    if (auto e = RawJson(v, &m.raw)) return Invalid(e);
    out->push_back(std::move(m));
  }
  return Status::OK();
}

}  // namespace clicklake::collector
