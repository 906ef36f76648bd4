// Deletion vectors and column mapping, read side: every table of
// ../shared/data/delta-golden-dv (written by Spark, Databricks and
// delta-kernel-rs) at every version against its EXPECTED.md, plus the codec
// (Z85, RoaringBitmapArray), damaged DVs, inline DVs, row addresses and
// checkpoints carrying DVs.

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>
#include <numeric>

#include "common/test_util.h"
#include "delta/deletion_vector.h"
#include "delta/internal.h"
#include "delta/table.h"
#include "delta/testing/golden_table_test.h"

namespace clicklake::delta {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> Range(int64_t from, int64_t to) {  // [from, to)
  std::vector<int64_t> out(static_cast<size_t>(to - from));
  std::iota(out.begin(), out.end(), from);
  return out;
}

// Little-endian writing for hand-built bitmaps.
void PutLE32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A RoaringBitmapArray of positions < 2^32 with one array container per
// 16-bit chunk, built by hand from the portable Roaring layout (cookie 12346,
// container count, per container key + cardinality-1, then offsets and the
// 16-bit values), independent of the code under test.
std::string HandBuiltBitmap(const std::vector<uint32_t>& sorted) {
  std::map<uint16_t, std::vector<uint16_t>> chunks;
  for (uint32_t p : sorted) chunks[static_cast<uint16_t>(p >> 16)].push_back(static_cast<uint16_t>(p & 0xffff));
  std::string out;
  PutLE32(1681511377, &out);
  PutLE32(1, &out);  // one 32-bit bitmap (count is 8 bytes LE)
  PutLE32(0, &out);
  PutLE32(0, &out);  // its key: high 32 bits = 0
  PutLE32(12346, &out);
  PutLE32(static_cast<uint32_t>(chunks.size()), &out);
  for (auto& [key, values] : chunks) {
    out.push_back(static_cast<char>(key & 0xff));
    out.push_back(static_cast<char>(key >> 8));
    uint16_t card = static_cast<uint16_t>(values.size() - 1);
    out.push_back(static_cast<char>(card & 0xff));
    out.push_back(static_cast<char>(card >> 8));
  }
  uint32_t offset = static_cast<uint32_t>(8 + 8 * chunks.size());
  for (auto& [key, values] : chunks) {
    PutLE32(offset, &out);
    offset += static_cast<uint32_t>(2 * values.size());
  }
  for (auto& [key, values] : chunks) {
    for (uint16_t v : values) {
      out.push_back(static_cast<char>(v & 0xff));
      out.push_back(static_cast<char>(v >> 8));
    }
  }
  return out;
}

// Z85 by hand (RFC 32), for building inline descriptors in tests.
std::string TestZ85Encode(std::string bytes) {
  static const char* kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  while (bytes.size() % 4) bytes.push_back('\0');
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t v = 0;
    for (int j = 0; j < 4; j++) v = (v << 8) | static_cast<unsigned char>(bytes[i + j]);
    char group[5];
    for (int j = 4; j >= 0; j--) {
      group[j] = kAlphabet[v % 85];
      v /= 85;
    }
    out.append(group, 5);
  }
  return out;
}

class DvGoldenTest : public test::GoldenTableTest {
 protected:
  DvGoldenTest() : GoldenTableTest("delta-golden-dv") {}

  // One column of the scan (ScanSql with `options`), sorted, as integers.
  std::vector<int64_t> Column(const std::string& path, const Snapshot& snap, const std::string& column,
                              const ScanOptions& options = {}) {
    auto sql = ScanSql(path, snap, options);
    EXPECT_OK(sql.status());
    if (!sql.ok()) return {};
    auto r = Query("SELECT " + engine::QuoteIdentifier(column) + "::BIGINT FROM (" + *sql + ") ORDER BY 1");
    std::vector<int64_t> out;
    for (size_t i = 0; i < r.row_count(); i++) out.push_back(r.GetInt64(i, 0));
    return out;
  }

  // How many rows the snapshot's DVs delete.
  int64_t DeletedRows(const std::string& path, const Snapshot& snap) {
    int64_t n = 0;
    for (const AddFile& f : snap.files) {
      auto rows = ReadDeletedRows(path, f);
      EXPECT_OK(rows.status());
      if (rows.ok()) n += static_cast<int64_t>(rows->size());
    }
    return n;
  }
};

// ---- codec ----

TEST(Z85Test, DecodesTheRfcVector) {
  auto bytes = internal::Z85Decode("HelloWorld");
  ASSERT_OK(bytes.status());
  EXPECT_EQ(*bytes, std::string("\x86\x4F\xD2\x6F\xB5\x59\xF7\x5B", 8));
  EXPECT_EQ(TestZ85Encode(*bytes), "HelloWorld");
}

TEST(Z85Test, RefusesBadInput) {
  EXPECT_STATUS(internal::Z85Decode("Hello").status(), kOk);
  EXPECT_STATUS(internal::Z85Decode("Hell").status(), kInvalidArgument);  // not a multiple of 5
  EXPECT_STATUS(internal::Z85Decode("Hel\"o").status(), kInvalidArgument);  // '"' is not Z85
  EXPECT_STATUS(internal::Z85Decode("#####").status(), kInvalidArgument);  // 85^5-1 > 2^32-1
  auto max = internal::Z85Decode("%nSc0");  // 0xffffffff
  ASSERT_OK(max.status());
  EXPECT_EQ(*max, std::string(4, '\xff'));
}

TEST(DeletionVectorCodecTest, DeserializesHandBuiltBitmaps) {
  std::vector<uint32_t> rows = {0, 7, 14, 65535, 65536, 200000};
  auto got = internal::DeserializeRowPositions(HandBuiltBitmap(rows));
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, std::vector<uint64_t>(rows.begin(), rows.end()));
  // Bad magic, truncation, trailing bytes.
  std::string bad = HandBuiltBitmap(rows);
  bad[0] ^= 1;
  EXPECT_STATUS(internal::DeserializeRowPositions(bad).status(), kCorruption);
  std::string cut = HandBuiltBitmap(rows);
  cut.resize(cut.size() - 3);
  EXPECT_STATUS(internal::DeserializeRowPositions(cut).status(), kCorruption);
  EXPECT_STATUS(internal::DeserializeRowPositions(HandBuiltBitmap(rows) + "x").status(), kCorruption);
  EXPECT_STATUS(internal::DeserializeRowPositions("").status(), kCorruption);
}

TEST(DeletionVectorCodecTest, UniqueIdAndFilePath) {
  DeletionVector dv{"u", "ab^-aqEH.-t@S}K{vb[*k^", 4, 40, 6};
  EXPECT_EQ(dv.UniqueId(), "uab^-aqEH.-t@S}K{vb[*k^@4");
  dv.offset.reset();
  EXPECT_EQ(dv.UniqueId(), "uab^-aqEH.-t@S}K{vb[*k^");
  // Prefix "ab", then the UUID's 16 bytes in Z85.
  auto path = internal::DeletionVectorFilePath("/t", dv);
  ASSERT_OK(path.status());
  auto uuid = internal::Z85Decode("^-aqEH.-t@S}K{vb[*k^");
  ASSERT_OK(uuid.status());
  ASSERT_EQ(uuid->size(), 16u);
  char hex[40];
  const auto* b = reinterpret_cast<const unsigned char*>(uuid->data());
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  EXPECT_EQ(*path, std::string("/t/ab/deletion_vector_") + hex + ".bin");
  DeletionVector abs{"p", "file:///data/x%20y.bin", 1, 40, 6};
  EXPECT_EQ(*internal::DeletionVectorFilePath("/t", abs), "/data/x y.bin");
  DeletionVector inl{"i", "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", std::nullopt, 40, 6};
  EXPECT_STATUS(internal::DeletionVectorFilePath("/t", inl).status(), kInvalidArgument);
  EXPECT_EQ(inl.UniqueId(), "iwi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L");
}

TEST_F(DvGoldenTest, GoldenDvFileNamesMatchTheirDescriptors) {
  // basic-dv-no-checkpoint v1: "IjB3V2d3#qUP%s94R0WF" names deletion_vector_899cef78-...bin.
  DeletionVector dv{"u", "IjB3V2d3#qUP%s94R0WF", 1, 36, 2};
  auto path = internal::DeletionVectorFilePath(Path("basic-dv-no-checkpoint"), dv);
  ASSERT_OK(path.status());
  EXPECT_EQ(fs::path(*path).filename(), "deletion_vector_899cef78-06b3-4c14-b024-03860e62cd40.bin");
  EXPECT_TRUE(fs::exists(*path)) << *path;
  auto rows = internal::LoadDeletionVector(FileSystem::Default(), Path("basic-dv-no-checkpoint"), dv);
  ASSERT_OK(rows.status());
  EXPECT_EQ(*rows, (std::vector<uint64_t>{0, 1}));
}

// ---- log replay ----

TEST_F(DvGoldenTest, EveryVersionLoadsAndEveryDvDecodes) {
  int tables = 0, dvs = 0;
  for (auto& e : fs::directory_iterator(golden_)) {
    if (!e.is_directory()) continue;
    tables++;
    std::string path = e.path().string(), name = e.path().filename().string();
    auto table = Table::Open(path, db_.get());
    ASSERT_OK(table.status());
    auto latest = (*table)->LatestVersion();
    ASSERT_OK(latest.status());
    for (int64_t v = 0; v <= *latest; v++) {
      internal::ClearSnapshotCache();
      auto snap = (*table)->LoadSnapshot(v);
      // Versions before the oldest checkpoint of a cleaned log may be gone.
      if (!snap.ok() && snap.status().IsNotFound()) continue;
      ASSERT_TRUE(snap.ok()) << name << " v" << v << ": " << snap.status();
      for (const AddFile& f : snap->files) {
        auto rows = ReadDeletedRows(path, f);
        ASSERT_TRUE(rows.ok()) << name << " v" << v << " " << f.path << ": " << rows.status();
        if (!f.deletion_vector) {
          EXPECT_TRUE(rows->empty());
          continue;
        }
        dvs++;
        EXPECT_EQ(static_cast<int64_t>(rows->size()), f.deletion_vector->cardinality) << name << " v" << v;
        EXPECT_TRUE(std::is_sorted(rows->begin(), rows->end()));
      }
    }
  }
  EXPECT_EQ(tables, 6);
  EXPECT_GT(dvs, 50);
}

TEST_F(DvGoldenTest, ReplayKeysFilesByPathAndDv) {
  // v1 holds add(P, DV) before remove(P, no DV): P is live with the DV.
  std::string path = Path("basic-dv-no-checkpoint");
  Snapshot v0 = Load(path, 0), v1 = Load(path, 1);
  ASSERT_EQ(v0.files.size(), 2u);
  EXPECT_FALSE(v0.files[0].deletion_vector);
  ASSERT_EQ(v1.files.size(), 2u);
  ASSERT_TRUE(v1.files[0].deletion_vector);
  EXPECT_EQ(v1.files[0].deletion_vector->storage_type, "u");
  EXPECT_EQ(v1.files[0].deletion_vector->cardinality, 2);
  EXPECT_EQ(v1.files[0].deletion_vector->offset, 1);
  EXPECT_FALSE(v1.files[1].deletion_vector);
  ASSERT_EQ(v1.tombstones.size(), 1u);
  EXPECT_FALSE(v1.tombstones[0].deletion_vector);

  // Each commit adds the new DV before removing the old one.
  std::string cases = Path("log-replay-dv-key-cases");
  for (int64_t v = 0; v <= 3; v++) {
    Snapshot s = Load(cases, v);
    ASSERT_EQ(s.files.size(), 1u) << "v" << v;
    EXPECT_EQ(s.files[0].deletion_vector ? s.files[0].deletion_vector->cardinality : 0, v) << "v" << v;
    EXPECT_EQ(DeletedRows(cases, s), v) << "v" << v;
  }
  auto rows = ReadDeletedRows(cases, Load(cases).files[0]);
  ASSERT_OK(rows.status());
  EXPECT_EQ(*rows, (std::vector<uint64_t>{0, 7, 14}));
}

TEST_F(DvGoldenTest, SameCommitRemoveOldAddNewInEitherOrder) {
  // A hand-written log: v1 replaces the DV of P; in one order the remove of
  // the old DV comes first, in the other last. Both leave P with DV2 live.
  for (bool remove_first : {true, false}) {
    std::string dir = tmp_.Sub(remove_first ? "rf" : "af");
    fs::create_directories(dir + "/_delta_log");
    AddFile a;
    a.path = "p.parquet";
    a.size = 10;
    DeletionVector dv1{"i", "a", std::nullopt, 1, 1}, dv2{"i", "b", std::nullopt, 1, 2};
    Protocol proto{3, 7, std::vector<std::string>{"deletionVectors"}, std::vector<std::string>{"deletionVectors"}};
    Metadata md;
    md.id = "x";
    md.schema_string = R"({"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]})";
    AddFile a1 = a, a2 = a;
    a1.deletion_vector = dv1;
    a2.deletion_vector = dv2;
    RemoveFile r1;
    r1.path = a.path;
    r1.deletion_vector = dv1;
    std::ofstream(dir + "/_delta_log/" + CommitFileName(0))
        << internal::SerializeProtocol(proto) << "\n" << internal::SerializeMetadata(md) << "\n"
        << internal::SerializeAdd(a1) << "\n";
    std::string add2 = internal::SerializeAdd(a2), rem1 = internal::SerializeRemove(r1);
    std::ofstream(dir + "/_delta_log/" + CommitFileName(1))
        << (remove_first ? rem1 : add2) << "\n" << (remove_first ? add2 : rem1) << "\n";
    auto snap = LoadSnapshotAt(dir, conn_.get(), std::nullopt);
    ASSERT_OK(snap.status());
    ASSERT_EQ(snap->files.size(), 1u);
    ASSERT_TRUE(snap->files[0].deletion_vector);
    EXPECT_EQ(snap->files[0].deletion_vector->UniqueId(), "ib");
    ASSERT_EQ(snap->tombstones.size(), 1u);
    EXPECT_EQ(snap->tombstones[0].deletion_vector->UniqueId(), "ia");
    // The DV survives serialisation of both actions.
    internal::CommitActions back;
    ASSERT_OK(internal::ParseActions(add2 + "\n" + rem1, &back));
    ASSERT_EQ(back.adds.size(), 1u);
    ASSERT_EQ(back.removes.size(), 1u);
    EXPECT_EQ(back.adds[0].deletion_vector->cardinality, 2);
    EXPECT_EQ(back.removes[0].deletion_vector->UniqueId(), "ia");
  }
}

TEST_F(DvGoldenTest, ProtocolChecks) {
  Protocol dv{3, 7, std::vector<std::string>{"deletionVectors", "columnMapping"},
              std::vector<std::string>{"deletionVectors", "columnMapping"}};
  Metadata md;
  md.configuration["delta.columnMapping.mode"] = "name";
  EXPECT_OK(internal::CheckReadable(dv, &md));
  md.configuration["delta.columnMapping.mode"] = "id";
  EXPECT_OK(internal::CheckReadable(dv, &md));
  md.configuration["delta.columnMapping.mode"] = "bogus";
  EXPECT_STATUS(internal::CheckReadable(dv, &md), kUnsupported);
  Protocol unknown{3, 7, std::vector<std::string>{"deletionVectors", "v2Checkpoint"}, std::nullopt};
  EXPECT_STATUS(internal::CheckReadable(unknown, nullptr), kUnsupported);
  internal::CommitActions actions;
  EXPECT_STATUS(internal::ParseActions(
                    R"({"add":{"path":"x","deletionVector":{"storageType":"z","pathOrInlineDv":"a","sizeInBytes":1,"cardinality":1}}})",
                    &actions),
                kCorruption);
  EXPECT_STATUS(internal::ParseActions(R"({"add":{"path":"x","deletionVector":{"storageType":"u","sizeInBytes":1}}})",
                                       &actions),
                kCorruption);
}

// ---- scans: row sets against EXPECTED.md ----

std::vector<int64_t> Without(std::vector<int64_t> v, const std::set<int64_t>& drop) {
  v.erase(std::remove_if(v.begin(), v.end(), [&](int64_t x) { return drop.count(x) > 0; }), v.end());
  return v;
}

TEST_F(DvGoldenTest, BasicDvNoCheckpoint) {
  std::string path = Path("basic-dv-no-checkpoint");
  EXPECT_EQ(Column(path, Load(path, 0), "id"), Range(0, 10));
  EXPECT_EQ(Column(path, Load(path, 1), "id"), Range(2, 10));
  EXPECT_EQ(Column(path, Load(path), "id"), Range(2, 10));
}

TEST_F(DvGoldenTest, BasicDvWithCheckpointEveryVersion) {
  // Version v has deleted ids 11*k for k < v (one single-row DELETE per
  // commit); v10..v40 start from the checkpoints, the rest replay JSON.
  std::string path = Path("basic-dv-with-checkpoint");
  for (int64_t v = 0; v <= 46; v++) {
    internal::ClearSnapshotCache();
    std::set<int64_t> deleted;
    for (int64_t k = 0; k < v; k++) deleted.insert(11 * k);
    Snapshot s = Load(path, v);
    ASSERT_EQ(s.version, v);
    EXPECT_EQ(Column(path, s, "id"), Without(Range(0, 500), deleted)) << "v" << v;
  }
  auto latest = Column(path, Load(path), "id");
  EXPECT_EQ(latest.size(), 454u);
  for (int64_t id : latest) EXPECT_NE(id % 11, 0) << id;
}

TEST_F(DvGoldenTest, LogReplayDvKeyCases) {
  std::string path = Path("log-replay-dv-key-cases");
  const std::vector<std::set<int64_t>> deleted = {{}, {0}, {0, 7}, {0, 7, 14}};
  for (int64_t v = 0; v <= 3; v++) {
    EXPECT_EQ(Column(path, Load(path, v), "id"), Without(Range(0, 50), deleted[v])) << "v" << v;
  }
}

TEST_F(DvGoldenTest, TableWithDvLargeTimeTravel) {
  std::string path = Path("table-with-dv-large");
  const std::vector<size_t> counts = {2000, 1995, 1997, 1991, 1993};
  for (int64_t v = 0; v <= 4; v++) {
    EXPECT_EQ(Column(path, Load(path, v), "value").size(), counts[v]) << "v" << v;
  }
  EXPECT_EQ(Column(path, Load(path, 0), "value"), Range(0, 2000));
  // v1: five DVs packed in one DV file (offsets 1, 43, 85, 127, 169).
  EXPECT_EQ(Column(path, Load(path, 1), "value"), Without(Range(0, 2000), {0, 180, 300, 700, 1800}));
  // v2 appends 300 and 700 again; v3's DELETE also hits the new 300; v4
  // appends 900 and 1567 again.
  auto with = [](std::vector<int64_t> v, std::vector<int64_t> more) {
    v.insert(v.end(), more.begin(), more.end());
    std::sort(v.begin(), v.end());
    return v;
  };
  auto v1 = Without(Range(0, 2000), {0, 180, 300, 700, 1800});
  EXPECT_EQ(Column(path, Load(path, 2), "value"), with(v1, {300, 700}));
  auto v3 = with(Without(v1, {250, 350, 900, 1353, 1567}), {700});
  EXPECT_EQ(Column(path, Load(path, 3), "value"), v3);
  EXPECT_EQ(Column(path, Load(path, 4), "value"), with(v3, {900, 1567}));
  auto v4 = Column(path, Load(path, 4), "value");
  EXPECT_EQ(std::accumulate(v4.begin(), v4.end(), int64_t{0}), 1994767);
  // Also through a view, as `clicklake sql --attach` builds it.
  ASSERT_OK(AttachTable(conn_.get(), "dvl", path, 4));
  EXPECT_EQ(Query("SELECT sum(value)::BIGINT, count(*) FROM dvl").GetInt64(0, 0), 1994767);
  EXPECT_EQ(Query("SELECT count(*) FROM dvl").GetInt64(0, 0), 1993);
  ASSERT_OK(AttachTable(conn_.get(), "dvl1", path, 1));
  EXPECT_EQ(Query("SELECT count(*) FROM dvl1").GetInt64(0, 0), 1995);
}

TEST_F(DvGoldenTest, ColumnMappingByLogicalNames) {
  std::string path = Path("table-with-dv-small-columnmapping");
  Snapshot v0 = Load(path, 0), v1 = Load(path, 1);
  ASSERT_EQ(v0.schema().fields.size(), 1u);
  EXPECT_EQ(internal::PhysicalName(v0.metadata, v0.schema().fields[0]), "col-4f064e48-f371-433a-b851-9e73c78fa9fc");
  EXPECT_EQ(Column(path, v0, "value"), Range(0, 10));
  EXPECT_EQ(Column(path, v1, "value"), Range(1, 9));
  auto sql = ScanSql(path, v1);
  ASSERT_OK(sql.status());
  auto r = Query("SELECT * FROM (" + *sql + ") LIMIT 0");
  ASSERT_EQ(r.column_count(), 1u);
  EXPECT_EQ(r.column_name(0), "value");
  // Stats are keyed by physical name: pruning by the logical one still works.
  EXPECT_EQ(PruneFiles(v1, {{"value", ">", "20", ""}}).size(), 0u);
  EXPECT_EQ(PruneFiles(v1, {{"value", "<", "5", ""}}).size(), 1u);
  EXPECT_EQ(Column(path, v1, "value", ScanOptions{{{"value", "<", "5", ""}}, false}), Range(1, 5));
}

TEST_F(DvGoldenTest, WithShortDv) {
  std::string path = Path("with-short-dv");
  Snapshot s = Load(path);
  EXPECT_EQ(Column(path, s, "id"), Range(3, 10));
  auto sql = ScanSql(path, s);
  ASSERT_OK(sql.status());
  auto r = Query("SELECT string_agg(value, ',' ORDER BY id), count(timestamp), count(rand) FROM (" + *sql + ")");
  EXPECT_EQ(r.GetString(0, 0), "3,4,5,6,7,8,9");
  EXPECT_EQ(r.GetInt64(0, 1), 7);
  EXPECT_EQ(r.GetInt64(0, 2), 7);
}

// ---- checkpoints carrying DVs ----

TEST_F(DvGoldenTest, CheckpointWithDvsEqualsReplay) {
  for (const std::string name : {"basic-dv-with-checkpoint", "table-with-dv-large", "log-replay-dv-key-cases"}) {
    // Replay from version 0 only: a copy without checkpoints.
    std::string replay_path = Copy(name, name + "-replay");
    for (auto& e : fs::directory_iterator(replay_path + "/_delta_log")) {
      if (e.path().filename().string().find("checkpoint") != std::string::npos) fs::remove(e.path());
    }
    Snapshot replayed = Load(replay_path);
    // A checkpoint written here at the latest version, and the commits
    // before it deleted, so that loading must read it.
    std::string path = Copy(name, name + "-checkpointed");
    auto table = Table::Open(path, db_.get());
    ASSERT_OK(table.status());
    ASSERT_OK((*table)->Checkpoint(replayed.version));
    for (int64_t v = 0; v < replayed.version; v++) fs::remove(path + "/_delta_log/" + CommitFileName(v));
    for (auto& e : fs::directory_iterator(path + "/_delta_log")) {
      std::string f = e.path().filename().string();
      if (f.find("checkpoint.parquet") != std::string::npos && f != internal::CheckpointFileName(replayed.version)) {
        fs::remove(e.path());
      }
    }
    internal::ClearSnapshotCache();
    Snapshot read = Load(path);
    ASSERT_EQ(read.version, replayed.version) << name;
    ASSERT_EQ(read.files.size(), replayed.files.size()) << name;
    int with_dv = 0;
    for (size_t i = 0; i < read.files.size(); i++) {
      const AddFile &a = read.files[i], &b = replayed.files[i];
      EXPECT_EQ(a.path, b.path);
      EXPECT_EQ(a.size, b.size);
      EXPECT_EQ(a.stats, b.stats);
      EXPECT_EQ(a.partition_values, b.partition_values);
      ASSERT_EQ(a.deletion_vector.has_value(), b.deletion_vector.has_value()) << name << " " << a.path;
      if (!a.deletion_vector) continue;
      with_dv++;
      EXPECT_EQ(a.deletion_vector->UniqueId(), b.deletion_vector->UniqueId());
      EXPECT_EQ(a.deletion_vector->size_in_bytes, b.deletion_vector->size_in_bytes);
      EXPECT_EQ(a.deletion_vector->cardinality, b.deletion_vector->cardinality);
    }
    EXPECT_GT(with_dv, 0) << name;
    EXPECT_EQ(read.protocol.reader_features, replayed.protocol.reader_features);
    const std::string column = read.schema().fields[0].name;  // id or value
    EXPECT_EQ(Column(path, read, column), Column(replay_path, replayed, column)) << name;
    // Files without a DV have a null deletionVector struct, not a struct of nulls.
    auto r = Query("SELECT count(*) FILTER (add.deletionVector IS NULL), count(*) FILTER (add.deletionVector IS NOT "
                   "NULL AND add.deletionVector.storageType IS NOT NULL) FROM read_parquet(" +
                   engine::QuoteLiteral(path + "/_delta_log/" + internal::CheckpointFileName(read.version)) +
                   ") WHERE add IS NOT NULL");
    EXPECT_EQ(r.GetInt64(0, 0), static_cast<int64_t>(read.files.size()) - with_dv) << name;
    EXPECT_EQ(r.GetInt64(0, 1), with_dv) << name;
  }
}

// ---- damaged deletion vectors ----

TEST_F(DvGoldenTest, DamagedDvsAreErrorsNotCrashes) {
  const std::string dv_file = "deletion_vector_899cef78-06b3-4c14-b024-03860e62cd40.bin";
  auto scan_status = [&](const std::string& path) {
    internal::ClearSnapshotCache();
    Snapshot s = Load(path);
    Status st = ScanSql(path, s).status();
    Status attach = AttachTable(conn_.get(), "damaged", path, std::nullopt);
    EXPECT_EQ(st.code(), attach.code()) << st << " / " << attach;
    Status rows = ReadDeletedRows(path, s.files[0]).status();
    EXPECT_EQ(st.code(), rows.code()) << st << " / " << rows;
    return st;
  };
  {
    // A flipped bit in the bitmap: the CRC no longer matches.
    std::string path = Copy("basic-dv-no-checkpoint", "damaged1");
    std::fstream f(path + "/" + dv_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1 + 4 + 20);
    f.put('\x7f');
    f.close();
    Status st = scan_status(path);
    EXPECT_STATUS(st, kCorruption);
    EXPECT_NE(st.message().find("CRC-32"), std::string::npos) << st;
  }
  {
    // The descriptor's sizeInBytes disagrees with the stored size.
    std::string path = Copy("basic-dv-no-checkpoint", "damaged2");
    std::string log = path + "/_delta_log/" + CommitFileName(1);
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string size36 = "\"sizeInBytes\":36";
    size_t at = text.find(size36);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, size36.size(), "\"sizeInBytes\":40");
    std::ofstream(log, std::ios::trunc) << text;
    Status st = scan_status(path);
    EXPECT_STATUS(st, kCorruption);
    EXPECT_NE(st.message().find("sizeInBytes 40"), std::string::npos) << st;
  }
  {
    // A file cut short.
    std::string path = Copy("basic-dv-no-checkpoint", "damaged3");
    fs::resize_file(path + "/" + dv_file, 20);
    EXPECT_STATUS(scan_status(path), kCorruption);
  }
  {
    // The DV file is gone.
    std::string path = Copy("basic-dv-no-checkpoint", "damaged4");
    fs::remove(path + "/" + dv_file);
    Status st = scan_status(path);
    EXPECT_STATUS(st, kNotFound);
    EXPECT_NE(st.message().find(dv_file), std::string::npos) << st;
  }
  {
    // The cardinality in the log disagrees with the bitmap.
    DeletionVector dv{"u", "IjB3V2d3#qUP%s94R0WF", 1, 36, 3};
    EXPECT_STATUS(internal::LoadDeletionVector(FileSystem::Default(), Path("basic-dv-no-checkpoint"), dv).status(),
                  kCorruption);
  }
}

// ---- inline DVs, partitions and row addresses on a table written here ----

class DvTableTest : public DvGoldenTest {
 protected:
  // A table partitioned by `day` (ids 0..9 on 2024-01-01, 10..19 on
  // 2024-01-02; one file each), then a commit that upgrades the protocol and
  // gives the first day's file an inline DV deleting `rows`.
  void Build(const std::vector<uint32_t>& rows) {
    path_ = tmp_.Sub("t");
    Schema schema;
    schema.fields = {{"id", "long"}, {"day", "date"}};
    auto table = Table::OpenOrCreate(path_, schema, {"day"}, {}, db_.get());
    ASSERT_OK(table.status());
    auto tx = (*table)->StartTransaction();
    ASSERT_OK(tx->WriteFiles(conn_.get(), "SELECT range AS id, DATE '2024-01-01' + (range // 10)::INTEGER AS day "
                                          "FROM range(20) ORDER BY id")
                  .status());
    ASSERT_OK(tx->Commit().status());
    Snapshot s = Load(path_);
    ASSERT_EQ(s.files.size(), 2u);
    AddFile file = s.files[0].partition_values.at("day") == "2024-01-01" ? s.files[0] : s.files[1];
    RemoveFile remove;
    remove.path = file.path;
    remove.deletion_timestamp = 1;
    remove.partition_values = file.partition_values;
    remove.size = file.size;
    std::string bitmap = HandBuiltBitmap(rows);
    file.deletion_vector = DeletionVector{"i", TestZ85Encode(bitmap), std::nullopt, static_cast<int32_t>(bitmap.size()),
                                          static_cast<int64_t>(rows.size())};
    Protocol proto{3, 7, std::vector<std::string>{"deletionVectors"}, std::vector<std::string>{"deletionVectors"}};
    std::ofstream(path_ + "/_delta_log/" + CommitFileName(2))
        << internal::SerializeProtocol(proto) << "\n" << internal::SerializeAdd(file) << "\n"
        << internal::SerializeRemove(remove) << "\n";
    internal::ClearSnapshotCache();
    dv_file_ = file.path;
  }

  std::string path_, dv_file_;
};

TEST_F(DvTableTest, InlineDvWithPartitions) {
  Build({0, 3, 9});
  Snapshot s = Load(path_);
  ASSERT_EQ(s.version, 2);
  std::vector<int64_t> want = Without(Range(0, 20), {0, 3, 9});
  EXPECT_EQ(Column(path_, s, "id"), want);
  // Partition values still line up with their files' rows.
  auto sql = ScanSql(path_, s);
  ASSERT_OK(sql.status());
  auto r = Query("SELECT count(*) FROM (" + *sql + ") WHERE day <> DATE '2024-01-01' + (id // 10)::INTEGER");
  EXPECT_EQ(r.GetInt64(0, 0, -1), 0);
  // Pruning to the other partition leaves the DV out of the plan; to this one keeps it applied.
  EXPECT_EQ(Column(path_, s, "id", ScanOptions{{{"day", "=", "2024-01-02", ""}}, false}), Range(10, 20));
  EXPECT_EQ(Column(path_, s, "id", ScanOptions{{{"day", "=", "2024-01-01", ""}}, false}), Without(Range(0, 10), {0, 3, 9}));
  EXPECT_EQ(Column(path_, Load(path_, 1), "id"), Range(0, 20));  // before the DV
}

TEST_F(DvTableTest, InlineDvWithRuns) {
  // A long run (0..7) and singles: both forms of the scan's deleted-row list.
  Build({0, 1, 2, 3, 4, 5, 6, 7, 9});
  EXPECT_EQ(Column(path_, Load(path_), "id"), (std::vector<int64_t>{8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
}

TEST_F(DvTableTest, RowAddresses) {
  Build({1, 2});
  Snapshot s = Load(path_);
  ScanOptions options;
  options.row_address = true;
  auto sql = ScanSql(path_, s, options);
  ASSERT_OK(sql.status());
  auto r = Query("SELECT id, _delta_file, _delta_row, typeof(_delta_row) FROM (" + *sql + ") ORDER BY id");
  ASSERT_EQ(r.row_count(), 18u);
  ASSERT_EQ(r.column_count(), 4u);
  std::map<std::string, std::string> path_of_day;
  for (const AddFile& f : s.files) path_of_day[*f.partition_values.at("day")] = f.path;
  for (size_t i = 0; i < r.row_count(); i++) {
    int64_t id = r.GetInt64(i, 0);
    // Rows were written in id order: position = id % 10 in its day's file.
    EXPECT_EQ(r.GetString(i, 1), path_of_day[id < 10 ? "2024-01-01" : "2024-01-02"]) << id;
    EXPECT_EQ(r.GetInt64(i, 2), id % 10) << id;
    EXPECT_EQ(r.GetString(i, 3), "BIGINT");
  }
  EXPECT_EQ(r.GetInt64(0, 0), 0);
  EXPECT_EQ(r.GetInt64(1, 0), 3);  // 1 and 2 deleted
  // The golden column-mapped table, with a DV and a sub-folder path.
  std::string cm = Path("table-with-dv-small-columnmapping");
  auto cm_sql = ScanSql(cm, Load(cm), options);
  ASSERT_OK(cm_sql.status());
  auto c = Query("SELECT value, _delta_file, _delta_row FROM (" + *cm_sql + ") ORDER BY value");
  ASSERT_EQ(c.row_count(), 8u);
  EXPECT_EQ(c.GetString(0, 1), "r4/part-00000-5521fc5e-6e49-4437-8b2d-ce6a1a94a34a-c000.snappy.parquet");
  EXPECT_EQ(c.GetInt64(0, 2), 1);
  // With no files: the same columns, no rows.
  Snapshot empty = s;
  empty.files.clear();
  auto none = ScanSql(path_, empty, options);
  ASSERT_OK(none.status());
  auto n = Query("SELECT * FROM (" + *none + ")");
  EXPECT_EQ(n.row_count(), 0u);
  EXPECT_EQ(n.column_count(), 4u);
}

}  // namespace
}  // namespace clicklake::delta
