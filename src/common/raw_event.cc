#include "common/raw_event.h"

#include <cstring>

namespace clicklake {
namespace {

constexpr char kMagic = 'R';
constexpr char kVersion = 1;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PutField(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

bool GetField(std::string_view* in, std::string* out) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void EncodeRawEvent(const RawEvent& e, std::string* out) {
  out->reserve(out->size() + 32 + e.source.size() + e.protocol.size() + e.client_ip.size() + e.user_agent.size() +
               e.payload.size());
  out->push_back(kMagic);
  out->push_back(kVersion);
  PutVarint(static_cast<uint64_t>(e.received_at_us), out);
  PutField(e.source, out);
  PutField(e.protocol, out);
  PutField(e.client_ip, out);
  PutField(e.user_agent, out);
  PutField(e.payload, out);
}

Status DecodeRawEvent(std::string_view in, RawEvent* e) {
  if (in.size() < 2 || in[0] != kMagic) return Status::Corruption("not a raw event record");
  if (in[1] != kVersion) return Status::Unsupported("raw event version " + std::to_string(in[1]));
  in.remove_prefix(2);
  uint64_t ts;
  if (!GetVarint(&in, &ts) || !GetField(&in, &e->source) || !GetField(&in, &e->protocol) ||
      !GetField(&in, &e->client_ip) || !GetField(&in, &e->user_agent) || !GetField(&in, &e->payload)) {
    return Status::Corruption("truncated raw event record");
  }
  e->received_at_us = static_cast<int64_t>(ts);
  return Status::OK();
}

}  // namespace clicklake
