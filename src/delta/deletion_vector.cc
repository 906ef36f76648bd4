// Deletion vectors, the reading half: Z85 decoding, RoaringBitmapArray
// deserialisation, DV file location and loading (size and CRC checks).
// The writing half (Z85Encode, SerializeRowPositions, DV files) lives in
// deletion_vector_write.cc.

#include "delta/deletion_vector.h"

#include <roaring/roaring.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>

namespace clicklake::delta {

std::string DeletionVector::UniqueId() const {
  std::string id = storage_type + path_or_inline_dv;
  if (offset) id += "@" + std::to_string(*offset);
  return id;
}

namespace internal {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// RoaringBitmapArray's magic number (little endian at the start of a bitmap).
constexpr uint32_t kRoaringBitmapArrayMagic = 1681511377;
constexpr size_t kUuidZ85Length = 20;  // 16 bytes

// Z85 character -> digit value, -1 for characters outside the alphabet.
const std::array<int8_t, 256>& Z85Digits() {
  static const std::array<int8_t, 256> digits = [] {
    std::array<int8_t, 256> d;
    d.fill(-1);
    for (size_t i = 0; i < kZ85Alphabet.size(); i++) d[static_cast<unsigned char>(kZ85Alphabet[i])] = static_cast<int8_t>(i);
    return d;
  }();
  return digits;
}

uint32_t LoadLittleEndian32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

uint32_t LoadBigEndian32(const unsigned char* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) |
         static_cast<uint32_t>(p[3]);
}

// 16 bytes as a canonical UUID: 8-4-4-4-12 lowercase hex digits.
std::string FormatUuid(std::string_view bytes) {
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(bytes[i]));
    out += buf;
  }
  return out;
}

struct RoaringDeleter {
  void operator()(roaring_bitmap_t* r) const { roaring_bitmap_free(r); }
};

}  // namespace

Result<std::string> Z85Decode(std::string_view text) {
  if (text.size() % 5 != 0) {
    return Status::InvalidArgument("Z85 text of " + std::to_string(text.size()) + " characters: not a multiple of 5");
  }
  const auto& digits = Z85Digits();
  std::string out;
  out.reserve(text.size() / 5 * 4);
  for (size_t i = 0; i < text.size(); i += 5) {
    uint64_t value = 0;
    for (size_t j = 0; j < 5; j++) {
      int d = digits[static_cast<unsigned char>(text[i + j])];
      if (d < 0) {
        return Status::InvalidArgument("character '" + std::string(1, text[i + j]) + "' at " + std::to_string(i + j) +
                                       " is not Z85");
      }
      value = value * 85 + static_cast<uint64_t>(d);
    }
    if (value > 0xffffffffULL) {
      return Status::InvalidArgument("Z85 group at " + std::to_string(i) + " exceeds 32 bits");
    }
    out.push_back(static_cast<char>((value >> 24) & 0xff));
    out.push_back(static_cast<char>((value >> 16) & 0xff));
    out.push_back(static_cast<char>((value >> 8) & 0xff));
    out.push_back(static_cast<char>(value & 0xff));
  }
  return out;
}

// RoaringBitmapArray: the magic, then the portable 64-bit Roaring layout: a
// count (8 bytes LE) of 32-bit bitmaps, each as a key (4 bytes LE, the high
// 32 bits of its positions) and a portable 32-bit Roaring bitmap.
Result<std::vector<uint64_t>> DeserializeRowPositions(std::string_view bitmap) {
  const auto* p = reinterpret_cast<const unsigned char*>(bitmap.data());
  size_t left = bitmap.size();
  if (left < 4 + 8) {
    return Status::Corruption("deletion vector bitmap of " + std::to_string(left) + " bytes is too short");
  }
  uint32_t magic = LoadLittleEndian32(p);
  if (magic != kRoaringBitmapArrayMagic) {
    return Status::Corruption("deletion vector bitmap has magic " + std::to_string(magic) + ", expected " +
                              std::to_string(kRoaringBitmapArrayMagic) + " (RoaringBitmapArray)");
  }
  p += 4;
  left -= 4;
  uint64_t count = static_cast<uint64_t>(LoadLittleEndian32(p)) | (static_cast<uint64_t>(LoadLittleEndian32(p + 4)) << 32);
  p += 8;
  left -= 8;
  if (count > left / 4) {
    return Status::Corruption("deletion vector bitmap claims " + std::to_string(count) + " 32-bit bitmaps in " +
                              std::to_string(left) + " bytes");
  }
  std::vector<uint64_t> positions;
  int64_t previous_key = -1;
  for (uint64_t i = 0; i < count; i++) {
    if (left < 4) return Status::Corruption("deletion vector bitmap truncated before key " + std::to_string(i));
    uint32_t key = LoadLittleEndian32(p);
    p += 4;
    left -= 4;
    if (static_cast<int64_t>(key) <= previous_key) {
      return Status::Corruption("deletion vector bitmap keys are not ascending");
    }
    previous_key = key;
    const char* buf = reinterpret_cast<const char*>(p);
    size_t used = roaring_bitmap_portable_deserialize_size(buf, left);
    if (used == 0) {
      return Status::Corruption("deletion vector bitmap " + std::to_string(i) + " is not a valid portable Roaring bitmap");
    }
    std::unique_ptr<roaring_bitmap_t, RoaringDeleter> r(roaring_bitmap_portable_deserialize_safe(buf, used));
    if (r == nullptr) {
      return Status::Corruption("deletion vector bitmap " + std::to_string(i) + " cannot be deserialised");
    }
    p += used;
    left -= used;
    uint64_t n = roaring_bitmap_get_cardinality(r.get());
    std::vector<uint32_t> low(n);
    roaring_bitmap_to_uint32_array(r.get(), low.data());
    positions.reserve(positions.size() + n);
    for (uint32_t v : low) positions.push_back((static_cast<uint64_t>(key) << 32) | v);
  }
  if (left != 0) {
    return Status::Corruption("deletion vector bitmap has " + std::to_string(left) + " trailing bytes");
  }
  return positions;
}

Result<std::string> DeletionVectorFilePath(const std::string& table_path, const DeletionVector& dv) {
  if (dv.storage_type == "u") {
    const std::string& s = dv.path_or_inline_dv;
    if (s.size() < kUuidZ85Length) {
      return Status::Corruption("deletion vector pathOrInlineDv '" + s + "' is shorter than a Z85 UUID");
    }
    std::string prefix = s.substr(0, s.size() - kUuidZ85Length);
    auto uuid = Z85Decode(std::string_view(s).substr(s.size() - kUuidZ85Length));
    if (!uuid.ok()) {
      return Status::Corruption("deletion vector pathOrInlineDv '" + s + "': " + uuid.status().message());
    }
    std::string name = "deletion_vector_" + FormatUuid(*uuid) + ".bin";
    std::string relative = prefix.empty() ? name : JoinPath(prefix, name);
    return DataFilePath(table_path, UriEncodePath(relative));
  }
  if (dv.storage_type == "p") return DataFilePath(table_path, dv.path_or_inline_dv);
  if (dv.storage_type == "i") return Status::InvalidArgument("an inline deletion vector has no file");
  return Status::Corruption("unknown deletion vector storage type '" + dv.storage_type + "'");
}

Result<std::vector<uint64_t>> LoadDeletionVector(FileSystem* fs, const std::string& table_path,
                                                 const DeletionVector& dv) {
  std::string bitmap;
  std::string where;
  if (dv.storage_type == "i") {
    auto bytes = Z85Decode(dv.path_or_inline_dv);
    if (!bytes.ok()) return Status::Corruption("inline deletion vector: " + bytes.status().message());
    // Z85 needs a multiple of 4 bytes: the writer pads, sizeInBytes is the
    // bitmap's own length.
    if (dv.size_in_bytes < 0 || static_cast<size_t>(dv.size_in_bytes) > bytes->size()) {
      return Status::Corruption("inline deletion vector of " + std::to_string(bytes->size()) +
                                " bytes, but sizeInBytes is " + std::to_string(dv.size_in_bytes));
    }
    bytes->resize(static_cast<size_t>(dv.size_in_bytes));
    bitmap = std::move(*bytes);
    where = "inline deletion vector";
  } else {
    ASSIGN_OR_RETURN(std::string path, DeletionVectorFilePath(table_path, dv));
    // Without an offset the DV is the file's only one, after the version byte.
    uint64_t offset = static_cast<uint64_t>(dv.offset.value_or(1));
    where = "deletion vector file " + path + " at offset " + std::to_string(offset);
    auto file = fs->NewRandomAccessFile(path);
    if (!file.ok()) {
      if (file.status().IsNotFound() || !fs->Exists(path)) {
        return Status::NotFound("deletion vector file " + path + " does not exist (the table is damaged)");
      }
      return file.status();
    }
    if (dv.size_in_bytes < 0 || (dv.offset && *dv.offset < 0)) {
      return Status::Corruption(where + ": negative sizeInBytes or offset");
    }
    std::string header;
    RETURN_IF_ERROR((*file)->Read(offset, 4, &header).WithContext(where));
    if (header.size() != 4) return Status::Corruption(where + ": the file ends before the DV's size");
    uint32_t stored_size = LoadBigEndian32(reinterpret_cast<const unsigned char*>(header.data()));
    if (stored_size != static_cast<uint32_t>(dv.size_in_bytes)) {
      return Status::Corruption(where + ": stored size " + std::to_string(stored_size) +
                                " differs from the descriptor's sizeInBytes " + std::to_string(dv.size_in_bytes));
    }
    std::string raw;
    RETURN_IF_ERROR((*file)->Read(offset + 4, stored_size + 4, &raw).WithContext(where));
    if (raw.size() != stored_size + 4) {
      return Status::Corruption(where + ": the file ends after " + std::to_string(raw.size()) + " of the DV's " +
                                std::to_string(stored_size + 4) + " bytes (bitmap and CRC)");
    }
    bitmap = raw.substr(0, stored_size);
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    uint32_t stored_crc = LoadBigEndian32(p + stored_size);
    uint32_t crc = static_cast<uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(bitmap.data()), static_cast<uInt>(bitmap.size())));
    if (crc != stored_crc) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ": CRC-32 %08x differs from the stored %08x", crc, stored_crc);
      return Status::Corruption(where + buf);
    }
  }
  auto positions = DeserializeRowPositions(bitmap);
  if (!positions.ok()) return positions.status().WithContext(where);
  if (static_cast<int64_t>(positions->size()) != dv.cardinality) {
    return Status::Corruption(where + ": holds " + std::to_string(positions->size()) +
                              " rows, the descriptor's cardinality is " + std::to_string(dv.cardinality));
  }
  return positions;
}

}  // namespace internal

Result<std::vector<uint64_t>> ReadDeletedRows(const std::string& table_path, const AddFile& file, FileSystem* fs) {
  if (!file.deletion_vector) return std::vector<uint64_t>{};
  auto rows = internal::LoadDeletionVector(fs, table_path, *file.deletion_vector);
  if (!rows.ok()) return rows.status().WithContext("data file " + file.path);
  return rows;
}

}  // namespace clicklake::delta
