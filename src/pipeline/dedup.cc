#include "pipeline/dedup.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "common/clock.h"

namespace clicklake::pipeline {
namespace {

constexpr int64_t kExpireEveryBatches = 50;

std::string Encode(int64_t batch_id, int64_t event_ts) {
  std::string v(16, '\0');
  std::memcpy(v.data(), &batch_id, 8);
  std::memcpy(v.data() + 8, &event_ts, 8);
  return v;
}

bool Decode(const std::string& v, int64_t* batch_id, int64_t* event_ts) {
  if (v.size() != 16) return false;
  std::memcpy(batch_id, v.data(), 8);
  std::memcpy(event_ts, v.data() + 8, 8);
  return true;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption("dedup state " + what + ": " + s.ToString());
  return Status::IOError("dedup state " + what + ": " + s.ToString());
}

// A link: event_ts (8), then event_id and user_id, each a 4-byte length and bytes.
void AppendLink(const DedupStore::Link& l, std::string* out) {
  auto put = [out](const void* p, size_t n) { out->append(static_cast<const char*>(p), n); };
  put(&l.event_ts_us, 8);
  for (const std::string* s : {&l.event_id, &l.user_id}) {
    const uint32_t n = static_cast<uint32_t>(s->size());
    put(&n, 4);
    out->append(*s);
  }
}

bool ReadLink(std::string_view* in, DedupStore::Link* l) {
  if (in->size() < 8) return false;
  std::memcpy(&l->event_ts_us, in->data(), 8);
  in->remove_prefix(8);
  for (std::string* s : {&l->event_id, &l->user_id}) {
    uint32_t n;
    if (in->size() < 4) return false;
    std::memcpy(&n, in->data(), 4);
    in->remove_prefix(4);
    if (in->size() < n) return false;
    s->assign(in->data(), n);
    in->remove_prefix(n);
  }
  return true;
}

// "l<anonymous id>" → batch id (8), has-before (1), [before link], after link.
std::string EncodeLinkEntry(int64_t batch_id, const std::optional<DedupStore::Link>& before,
                            const DedupStore::Link& after) {
  std::string v(8, '\0');
  std::memcpy(v.data(), &batch_id, 8);
  v.push_back(before ? 1 : 0);
  if (before) AppendLink(*before, &v);
  AppendLink(after, &v);
  return v;
}

bool DecodeLinkEntry(std::string_view v, int64_t* batch_id, std::optional<DedupStore::Link>* before,
                     DedupStore::Link* after) {
  if (v.size() < 9) return false;
  std::memcpy(batch_id, v.data(), 8);
  const bool has_before = v[8] != 0;
  v.remove_prefix(9);
  before->reset();
  if (has_before) {
    DedupStore::Link b;
    if (!ReadLink(&v, &b)) return false;
    *before = std::move(b);
  }
  return ReadLink(&v, after) && v.empty();
}

constexpr const char* kIdentityInitializedKey = "L";

// "k<user_key>" → max_ts (8), has_seed (1), [seed_ts (8), seed_index (8),
// event_id and session_id (4-byte length + bytes each)].
std::string EncodeKeyState(const DedupStore::KeyState& k) {
  std::string v(8, '\0');
  std::memcpy(v.data(), &k.max_ts_us, 8);
  v.push_back(k.has_seed ? 1 : 0);
  if (k.has_seed) {
    v.append(reinterpret_cast<const char*>(&k.seed_ts_us), 8);
    v.append(reinterpret_cast<const char*>(&k.seed_index), 8);
    for (const std::string* s : {&k.seed_event_id, &k.seed_session_id}) {
      const uint32_t n = static_cast<uint32_t>(s->size());
      v.append(reinterpret_cast<const char*>(&n), 4);
      v.append(*s);
    }
  }
  return v;
}

bool DecodeKeyState(std::string_view v, DedupStore::KeyState* k) {
  if (v.size() < 9) return false;
  std::memcpy(&k->max_ts_us, v.data(), 8);
  k->has_seed = v[8] != 0;
  v.remove_prefix(9);
  if (!k->has_seed) return v.empty();
  if (v.size() < 16) return false;
  std::memcpy(&k->seed_ts_us, v.data(), 8);
  std::memcpy(&k->seed_index, v.data() + 8, 8);
  v.remove_prefix(16);
  for (std::string* s : {&k->seed_event_id, &k->seed_session_id}) {
    uint32_t n;
    if (v.size() < 4) return false;
    std::memcpy(&n, v.data(), 4);
    v.remove_prefix(4);
    if (v.size() < n) return false;
    s->assign(v.data(), n);
    v.remove_prefix(n);
  }
  return v.empty();
}

}  // namespace

DedupStore::DedupStore(std::unique_ptr<rocksdb::DB> db, int64_t window_us) : db_(std::move(db)), window_us_(window_us) {}

DedupStore::~DedupStore() = default;

Result<std::unique_ptr<DedupStore>> DedupStore::Open(const std::string& dir, int64_t window_us) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Bounded memory: a 16 MB write buffer (2 of them) and a 32 MB block cache.
  options.write_buffer_size = 16 << 20;
  options.max_write_buffer_number = 2;
  options.max_open_files = 256;
  options.keep_log_file_num = 2;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(32 << 20);
  // Almost every lookup is of a new event id: a Bloom filter per file (about
  // 1.2 bytes per remembered id) answers those without reading the files.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.optimize_filters_for_memory = true;
  // The same for the memtables (the last batches' ids): a lookup of a new id
  // skips the skip-list search (~1.6 MB of filter for the 16 MB buffer).
  options.memtable_prefix_bloom_size_ratio = 0.1;
  options.memtable_whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &raw), "open " + dir));
  return std::unique_ptr<DedupStore>(new DedupStore(std::unique_ptr<rocksdb::DB>(raw), window_us));
}

void DedupStore::BeginBatch(int64_t batch_id) {
  batch_id_ = batch_id;
  pending_.clear();
  watermark_before_ = watermark_ = INT64_MIN;
}

// "w" → (batch id, watermark before that batch, watermark after it).
Status DedupStore::LoadWatermark() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "w", &value);
  int64_t w = INT64_MIN;
  if (s.ok()) {
    if (value.size() != 24) return Status::Corruption("dedup state: bad watermark entry");
    int64_t batch, before, after;
    std::memcpy(&batch, value.data(), 8);
    std::memcpy(&before, value.data() + 8, 8);
    std::memcpy(&after, value.data() + 16, 8);
    w = batch < batch_id_ ? after : before;  // a re-run starts where its first run did
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read watermark");
  }
  watermark_before_ = watermark_ = w;
  return Status::OK();
}

Result<bool> DedupStore::CheckAndAdd(std::string_view event_id, int64_t event_ts_us) {
  std::string key(event_id);
  if (pending_.count(key)) return true;  // seen earlier in this batch
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), "e" + key, &value);
  if (s.ok()) {
    int64_t first_batch, ts;
    if (Decode(value, &first_batch, &ts) && first_batch < batch_id_) return true;
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read");
  }
  pending_.emplace(std::move(key), event_ts_us);
  return false;
}

Status DedupStore::CommitBatch(int64_t newest_received_at_us) {
  const int64_t t0 = SystemClock()->MonotonicMicros();
  // In key order: the memtable's skip list then inserts each key next to the
  // previous one instead of searching from the top for a random one.
  std::vector<const std::pair<const std::string, int64_t>*> ids;
  ids.reserve(pending_.size());
  for (const auto& entry : pending_) ids.push_back(&entry);
  std::sort(ids.begin(), ids.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  rocksdb::WriteBatch batch;
  for (const auto* entry : ids) {
    RETURN_IF_ERROR(FromRocks(batch.Put("e" + entry->first, Encode(batch_id_, entry->second)), "stage"));
  }
  if (watermark_ != INT64_MIN) {
    std::string w(24, '\0');
    std::memcpy(w.data(), &batch_id_, 8);
    std::memcpy(w.data() + 8, &watermark_before_, 8);
    std::memcpy(w.data() + 16, &watermark_, 8);
    RETURN_IF_ERROR(FromRocks(batch.Put("w", w), "stage watermark"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "write"));
  spdlog::debug("dedup: {} new event ids committed in {:.0f} ms", ids.size(),
                (SystemClock()->MonotonicMicros() - t0) / 1000.0);
  if (++batches_since_expiry_ >= kExpireEveryBatches) {
    batches_since_expiry_ = 0;
    ASSIGN_OR_RETURN(int64_t expired, Expire(newest_received_at_us - window_us_));
    if (expired > 0) spdlog::info("processor: expired {} event ids from the dedup state", expired);
  }
  return Status::OK();
}

Result<bool> DedupStore::IdentityInitialized() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kIdentityInitializedKey, &value);
  if (s.IsNotFound()) return false;
  RETURN_IF_ERROR(FromRocks(s, "read identity marker"));
  return true;
}

Result<std::vector<DedupStore::AnonState>> DedupStore::LookupAnons(const std::vector<std::string>& anonymous_ids) {
  std::vector<AnonState> out(anonymous_ids.size());
  std::vector<std::string> keys;
  keys.reserve(anonymous_ids.size() * 2);
  for (const auto& a : anonymous_ids) keys.push_back("l" + a);
  for (const auto& a : anonymous_ids) keys.push_back("r" + a);
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  const size_t n = anonymous_ids.size();
  for (size_t i = 0; i < n; i++) {
    if (statuses[i].ok()) {
      int64_t batch;
      std::optional<Link> before;
      Link after;
      if (!DecodeLinkEntry(values[i], &batch, &before, &after))
        return Status::Corruption("identity state: bad link entry for anonymous id " + anonymous_ids[i]);
      // A re-run of the batch that set it reads the value its first run read.
      if (batch < batch_id_) {
        out[i].link = std::move(after);
      } else {
        out[i].link = std::move(before);
      }
    } else if (!statuses[i].IsNotFound()) {
      return FromRocks(statuses[i], "read link");
    }
    if (statuses[n + i].ok()) {
      if (values[n + i].size() != 16) return Status::Corruption("identity state: bad range entry");
      std::memcpy(&out[i].min_ts_us, values[n + i].data(), 8);
      std::memcpy(&out[i].max_ts_us, values[n + i].data() + 8, 8);
    } else if (!statuses[n + i].IsNotFound()) {
      return FromRocks(statuses[n + i], "read range");
    }
  }
  return out;
}

Result<std::vector<std::optional<DedupStore::KeyState>>> DedupStore::LookupKeys(
    const std::vector<std::string>& user_keys) {
  std::vector<std::string> keys;
  keys.reserve(user_keys.size());
  for (const auto& k : user_keys) keys.push_back("k" + k);
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  std::vector<std::optional<KeyState>> out(user_keys.size());
  for (size_t i = 0; i < user_keys.size(); i++) {
    if (statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[i], "read key state"));
    KeyState k;
    if (!DecodeKeyState(values[i], &k)) return Status::Corruption("session state: bad entry for " + user_keys[i]);
    out[i] = std::move(k);
  }
  return out;
}

Status DedupStore::WriteIdentity(const std::vector<AnonUpdate>& updates, const std::vector<KeyUpdate>& keys,
                                 bool bootstrap) {
  std::vector<std::string> ids;
  ids.reserve(updates.size());
  for (const auto& u : updates) ids.push_back(u.anonymous_id);
  // The values before this batch (kept with each new link) and the current ranges.
  ASSIGN_OR_RETURN(std::vector<AnonState> current, LookupAnons(ids));
  std::vector<size_t> order(updates.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
  rocksdb::WriteBatch batch;
  for (size_t i : order) {
    const AnonUpdate& u = updates[i];
    if (u.link) {
      // A bootstrap describes the state before this batch, as if an earlier
      // batch had set it.
      const std::string entry = bootstrap ? EncodeLinkEntry(batch_id_ - 1, std::nullopt, *u.link)
                                          : EncodeLinkEntry(batch_id_, current[i].link, *u.link);
      RETURN_IF_ERROR(FromRocks(batch.Put("l" + u.anonymous_id, entry), "stage"));
    }
    const int64_t lo = std::min(u.min_ts_us, current[i].min_ts_us);
    const int64_t hi = std::max(u.max_ts_us, current[i].max_ts_us);
    if (lo <= hi && (lo != current[i].min_ts_us || hi != current[i].max_ts_us)) {
      std::string v(16, '\0');
      std::memcpy(v.data(), &lo, 8);
      std::memcpy(v.data() + 8, &hi, 8);
      RETURN_IF_ERROR(FromRocks(batch.Put("r" + u.anonymous_id, v), "stage"));
    }
  }
  std::vector<const KeyUpdate*> sorted_keys;
  for (const auto& k : keys) sorted_keys.push_back(&k);
  std::sort(sorted_keys.begin(), sorted_keys.end(),
            [](const KeyUpdate* a, const KeyUpdate* b) { return a->user_key < b->user_key; });
  for (const KeyUpdate* k : sorted_keys) {
    if (k->state) {
      RETURN_IF_ERROR(FromRocks(batch.Put("k" + k->user_key, EncodeKeyState(*k->state)), "stage"));
    } else {
      RETURN_IF_ERROR(FromRocks(batch.Delete("k" + k->user_key), "stage"));
    }
  }
  if (bootstrap) RETURN_IF_ERROR(FromRocks(batch.Put(kIdentityInitializedKey, "1"), "stage"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &batch), "write identity");
}

Result<int64_t> DedupStore::Expire(int64_t cutoff_us) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  rocksdb::WriteBatch batch;
  int64_t n = 0;
  for (it->Seek("e"); it->Valid() && it->key().starts_with("e"); it->Next()) {
    int64_t first_batch, ts;
    if (Decode(it->value().ToString(), &first_batch, &ts) && ts < cutoff_us) {
      RETURN_IF_ERROR(FromRocks(batch.Delete(it->key()), "stage delete"));
      n++;
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  if (n > 0) RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "expire"));
  return n;
}

Result<std::vector<std::pair<std::string, std::string>>> DedupStore::LinkedIdentities(
    const std::vector<std::string>& anonymous_ids, const std::vector<std::string>& user_ids) {
  const std::set<std::string> anons(anonymous_ids.begin(), anonymous_ids.end());
  const std::set<std::string> users(user_ids.begin(), user_ids.end());
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("l"); it->Valid() && it->key().starts_with("l"); it->Next()) {
    int64_t batch;
    std::optional<Link> before;
    Link after;
    const std::string anon = it->key().ToString().substr(1);
    if (!DecodeLinkEntry(it->value().ToString(), &batch, &before, &after)) {
      return Status::Corruption("identity state: bad link entry for anonymous id " + anon);
    }
    if (anons.count(anon) || users.count(after.user_id) || (before && users.count(before->user_id))) {
      out.emplace_back(anon, after.user_id);
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan links"));
  return out;
}

Result<int64_t> DedupStore::Forget(const std::vector<std::string>& event_ids,
                                   const std::vector<std::string>& anonymous_ids,
                                   const std::vector<std::string>& user_keys) {
  std::vector<std::string> keys;
  for (const auto& e : event_ids) keys.push_back("e" + e);
  for (const auto& a : anonymous_ids) {
    keys.push_back("l" + a);
    keys.push_back("r" + a);
  }
  for (const auto& k : user_keys) keys.push_back("k" + k);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  rocksdb::WriteBatch batch;
  int64_t n = 0;
  for (size_t i = 0; i < keys.size(); i++) {
    if (statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[i], "read"));
    RETURN_IF_ERROR(FromRocks(batch.Delete(keys[i]), "stage delete"));
    n++;
  }
  if (n == 0) return n;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "forget"));
  // A delete only adds tombstones: the ids stay in the SST files (and the
  // write-ahead log) until a compaction rewrites them. Compact the deleted
  // range now, down to the bottommost level, so they are physically gone
  // (the memtable is flushed first, which retires the log holding them).
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  const rocksdb::Slice first(keys.front()), last(keys.back());
  RETURN_IF_ERROR(FromRocks(db_->CompactRange(compact, &first, &last), "compact the forgotten range"));
  return n;
}

}  // namespace clicklake::pipeline
