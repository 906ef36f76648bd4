// Deletion vectors, the writing half: Z85 encoding, RoaringBitmapArray
// serialisation (CRoaring's portable Roaring64Map layout after the magic) and
// DV files. The reading half is deletion_vector.cc.

#include <roaring/roaring64map.hh>
#include <zlib.h>

#include <cstring>

#include "delta/deletion_vector.h"
#include "delta/internal.h"

namespace clicklake::delta::internal {
namespace {

constexpr std::string_view kZ85Chars =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// Little endian at the start of every bitmap (Delta's RoaringBitmapArray).
constexpr uint32_t kBitmapMagic = 1681511377;
// The only DV file format version.
constexpr char kDvFileVersion = 1;

void PutBigEndian32(uint32_t v, std::string* out) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

// The 16 bytes of a canonical UUID text, most significant first (the order
// Delta's readers rebuild the file name from).
std::string UuidBytes(const std::string& uuid) {
  std::string bytes;
  for (size_t i = 0; i + 1 < uuid.size();) {
    if (uuid[i] == '-') {
      i++;
      continue;
    }
    bytes.push_back(static_cast<char>(std::stoi(uuid.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return bytes;
}

}  // namespace

std::string Z85Encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() / 4 * 5);
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t v = 0;
    for (size_t j = 0; j < 4; j++) v = (v << 8) | static_cast<unsigned char>(bytes[i + j]);
    char group[5];
    for (int j = 4; j >= 0; j--) {
      group[j] = kZ85Chars[v % 85];
      v /= 85;
    }
    out.append(group, 5);
  }
  return out;
}

std::string SerializeRowPositions(const std::vector<uint64_t>& sorted_positions) {
  Roaring64Map bitmap;
  bitmap.addMany(sorted_positions.size(), sorted_positions.data());
  bitmap.runOptimize();  // runs of deleted rows become run containers
  std::string out(4 + bitmap.getSizeInBytes(/*portable=*/true), '\0');
  for (int i = 0; i < 4; i++) out[i] = static_cast<char>((kBitmapMagic >> (8 * i)) & 0xff);
  size_t written = bitmap.write(out.data() + 4, /*portable=*/true);
  out.resize(4 + written);
  return out;
}

Result<std::vector<DeletionVector>> WriteDeletionVectorFile(FileSystem* fs, const std::string& table_path,
                                                            const std::vector<std::vector<uint64_t>>& positions) {
  const std::string uuid = NewUuid();
  std::string content(1, kDvFileVersion);
  std::vector<DeletionVector> out;
  out.reserve(positions.size());
  const std::string id = Z85Encode(UuidBytes(uuid));
  for (const auto& rows : positions) {
    if (rows.empty()) return Status::InvalidArgument("a deletion vector must delete at least one row");
    std::string bitmap = SerializeRowPositions(rows);
    if (content.size() > static_cast<size_t>(INT32_MAX) - bitmap.size() - 8) {
      return Status::InvalidArgument("deletion vectors of one file would pass 2 GB");
    }
    DeletionVector dv;
    dv.storage_type = "u";
    dv.path_or_inline_dv = id;
    dv.offset = static_cast<int32_t>(content.size());
    dv.size_in_bytes = static_cast<int32_t>(bitmap.size());
    dv.cardinality = static_cast<int64_t>(rows.size());
    PutBigEndian32(static_cast<uint32_t>(bitmap.size()), &content);
    content += bitmap;
    PutBigEndian32(static_cast<uint32_t>(
                       ::crc32(0L, reinterpret_cast<const Bytef*>(bitmap.data()), static_cast<uInt>(bitmap.size()))),
                   &content);
    out.push_back(std::move(dv));
  }
  // A visible temp name (not a hidden one): if a crash leaves it, vacuum
  // deletes it once it is older than the retention.
  const std::string path = JoinPath(table_path, "deletion_vector_" + uuid + ".bin");
  const std::string temp = path + ".tmp";
  RETURN_IF_ERROR(WriteSyncedFile(fs, temp, content));
  if (Status st = fs->Rename(temp, path); !st.ok()) {
    fs->DeleteFile(temp).IgnoreError();
    return st;
  }
  RETURN_IF_ERROR(fs->SyncDir(table_path));
  return out;
}

DeletionVector InlineDeletionVector(const std::vector<uint64_t>& sorted_positions) {
  std::string bitmap = SerializeRowPositions(sorted_positions);
  DeletionVector dv;
  dv.storage_type = "i";
  dv.size_in_bytes = static_cast<int32_t>(bitmap.size());
  dv.cardinality = static_cast<int64_t>(sorted_positions.size());
  bitmap.resize((bitmap.size() + 3) / 4 * 4, '\0');  // Z85 takes whole 4-byte groups
  dv.path_or_inline_dv = Z85Encode(bitmap);
  return dv;
}

}  // namespace clicklake::delta::internal
