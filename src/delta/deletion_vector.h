// Deletion vectors (PROTOCOL.md "Deletion Vectors"), internal to src/delta:
// the Z85 encoding, the RoaringBitmapArray format (magic 1681511377, little
// endian, then CRoaring's portable 64-bit Roaring serialization) and DV files
// (version byte 1, then per DV: size (4 bytes, big endian), bitmap, CRC-32 of
// the bitmap (big endian); a descriptor's offset points at the size).
//
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"
#include "common/status.h"
#include "delta/table.h"

namespace clicklake::delta::internal {

// Z85 (ZeroMQ RFC 32). REQUIRES: bytes.size() % 4 == 0.
std::string Z85Encode(std::string_view bytes);
// InvalidArgument (Corruption for DV payloads) when `text` is not Z85 or its
// length is not a multiple of 5.
Result<std::string> Z85Decode(std::string_view text);

// Sorted, distinct row positions <-> RoaringBitmapArray bytes (with the magic).
std::string SerializeRowPositions(const std::vector<uint64_t>& sorted_positions);
Result<std::vector<uint64_t>> DeserializeRowPositions(std::string_view bitmap);

// The file a `u` or `p` descriptor points at (absolute); InvalidArgument for `i`.
Result<std::string> DeletionVectorFilePath(const std::string& table_path, const DeletionVector& dv);
// The deleted row positions of `dv`, sorted (reads its file for `u`/`p`,
// checks size and CRC: Corruption on mismatch).
Result<std::vector<uint64_t>> LoadDeletionVector(FileSystem* fs, const std::string& table_path,
                                                 const DeletionVector& dv);
// Writes one new DV file `<table>/deletion_vector_<uuid>.bin` (synced) holding
// every bitmap of `positions` (each sorted, distinct, non-empty) and returns
// their `u` descriptors, in order.
Result<std::vector<DeletionVector>> WriteDeletionVectorFile(FileSystem* fs, const std::string& table_path,
                                                            const std::vector<std::vector<uint64_t>>& positions);
// An inline (`i`) descriptor of `positions` (tests and small DVs).
DeletionVector InlineDeletionVector(const std::vector<uint64_t>& sorted_positions);

}  // namespace clicklake::delta::internal
