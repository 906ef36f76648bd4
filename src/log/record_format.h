// The on-disk frame of one LocalLog record, and its decoder.
//
// Frame (little-endian), kFrameHeaderBytes + key + value bytes:
//   u32 crc32c     of every byte after this field (length included)
//   u32 length     bytes after this field: 20 + key_len + value_len
//   i64 offset     the record's offset in its partition
//   i64 timestamp  ms since the epoch when the log stored it
//   u32 key_len
//   key bytes, value bytes
// A torn or damaged frame fails the length bound, the CRC or the expected offset.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace clicklake::log {

inline constexpr size_t kFrameHeaderBytes = 28;
// Bytes after the length field that are not key or value.
inline constexpr size_t kFrameFixedBody = 20;
// Sanity bound on one record, so a damaged length is never trusted.
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;

struct RecordView {
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string_view key;
  std::string_view value;
};

inline size_t FramedSize(size_t key_bytes, size_t value_bytes) { return kFrameHeaderBytes + key_bytes + value_bytes; }

// Appends one frame to *out.
void EncodeRecord(int64_t offset, int64_t timestamp_ms, std::string_view key, std::string_view value, std::string* out);
// Writes one frame to out[0, FramedSize(key.size(), value.size())).
void EncodeRecordTo(int64_t offset, int64_t timestamp_ms, std::string_view key, std::string_view value, char* out);

enum class DecodeStatus { kOk, kIncomplete, kCorrupt };

// Decodes the frame at data[0, avail). kIncomplete: the buffer ends inside a
// plausible frame (read more, or it is a torn tail). On kOk sets *rec (views into
// data) and *frame_bytes.
DecodeStatus DecodeRecord(const char* data, size_t avail, RecordView* rec, size_t* frame_bytes);

}  // namespace clicklake::log
