#include "pipeline/dedup.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <cstring>
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

}  // namespace clicklake::pipeline
