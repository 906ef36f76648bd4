#include "log/record_format.h"

#include <cstring>

#include "log/crc32c.h"

namespace clicklake::log {
namespace {

template <typename T>
void Put(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

void EncodeRecord(int64_t offset, int64_t timestamp_ms, std::string_view key, std::string_view value,
                  std::string* out) {
  size_t start = out->size();
  out->resize(start + FramedSize(key.size(), value.size()));
  EncodeRecordTo(offset, timestamp_ms, key, value, out->data() + start);
}

void EncodeRecordTo(int64_t offset, int64_t timestamp_ms, std::string_view key, std::string_view value, char* p) {
  uint32_t length = static_cast<uint32_t>(kFrameFixedBody + key.size() + value.size());
  Put<uint32_t>(p + 4, length);
  Put<int64_t>(p + 8, offset);
  Put<int64_t>(p + 16, timestamp_ms);
  Put<uint32_t>(p + 24, static_cast<uint32_t>(key.size()));
  if (!key.empty()) std::memcpy(p + 28, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + 28 + key.size(), value.data(), value.size());
  Put<uint32_t>(p, Crc32cExtend(0, p + 4, 4 + length));
}

DecodeStatus DecodeRecord(const char* data, size_t avail, RecordView* rec, size_t* frame_bytes) {
  if (avail < 8) return DecodeStatus::kIncomplete;
  uint32_t length = Get<uint32_t>(data + 4);
  if (length < kFrameFixedBody || length > kMaxRecordBytes + kFrameFixedBody) return DecodeStatus::kCorrupt;
  size_t total = 8 + static_cast<size_t>(length);
  if (avail < total) return DecodeStatus::kIncomplete;
  if (Crc32cExtend(0, data + 4, 4 + length) != Get<uint32_t>(data)) return DecodeStatus::kCorrupt;
  uint32_t key_len = Get<uint32_t>(data + 24);
  if (key_len > length - kFrameFixedBody) return DecodeStatus::kCorrupt;
  rec->offset = Get<int64_t>(data + 8);
  rec->timestamp_ms = Get<int64_t>(data + 16);
  rec->key = std::string_view(data + 28, key_len);
  rec->value = std::string_view(data + 28 + key_len, length - kFrameFixedBody - key_len);
  *frame_bytes = total;
  return DecodeStatus::kOk;
}

}  // namespace clicklake::log
