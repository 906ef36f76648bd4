// CRC32C (Castagnoli), the checksum of every log record.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at start-up;
// three interleaved streams over inputs of 768 bytes and more) and a
// slicing-by-8 table otherwise; all give the same values (RFC 3720).
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace clicklake::log {

// Extends `crc` (the value of a previous call, or 0 to start) over data[0, n).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data.data(), data.size()); }

}  // namespace clicklake::log
