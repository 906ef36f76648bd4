#include "collector/gzip.h"

#include <zlib.h>

namespace clicklake::collector {

Status Inflate(std::string_view in, size_t max_output, bool zlib_format, std::string* out) {
  out->clear();
  z_stream zs{};
  // 16 + MAX_WBITS: gzip wrapper; 32 + MAX_WBITS: auto-detect zlib or gzip.
  if (inflateInit2(&zs, zlib_format ? 32 + MAX_WBITS : 16 + MAX_WBITS) != Z_OK) {
    return Status::Internal("zlib inflateInit2 failed");
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  Status status;
  char buffer[16384];
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = sizeof(buffer) - zs.avail_out;
    if (out->size() + produced > max_output) {
      status = Status::ResourceExhausted("decompressed body exceeds the limit of " + std::to_string(max_output) +
                                         " bytes per request (collector.max_request_bytes)");
      break;
    }
    out->append(buffer, produced);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal; continue with the next one.
      if (zs.avail_in > 0) {
        if (inflateReset(&zs) != Z_OK) {
          status = Status::InvalidArgument("corrupt gzip body");
          break;
        }
        continue;
      }
      break;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      status = Status::InvalidArgument("truncated gzip body: the compressed stream ends early");
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status = Status::InvalidArgument(std::string("corrupt gzip body: ") + (zs.msg ? zs.msg : "inflate error"));
      break;
    }
  }
  inflateEnd(&zs);
  if (!status.ok()) out->clear();
  return status;
}

}  // namespace clicklake::collector
