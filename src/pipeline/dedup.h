// Deduplication state: event_id → (first batch id, event_ts) in RocksDB under
// <lake>/_clicklake/state/dedup.
//
// Consistency with the Delta commits (a crash between the state write and the
// commit must neither lose nor double an event): when batch N is processed, an
// event is a duplicate iff the store holds its id with a batch id < N, or it
// was seen earlier in the same batch. A re-run of batch N after a crash thus
// finds its own entries (batch id N) and treats them as first copies again.
// Entries whose event_ts is older than the window (relative to the newest
// received_at seen) are expired.
//
// The store also keeps the event-time watermark (the newest event time seen
// over the committed batches, DESIGN.md §6 allowed lateness) with the batch
// that set it and the value before that batch, so a re-run of batch N starts
// from the same watermark as its first run. Memory is bounded by RocksDB's options (a
// small block cache and write buffer), not by the number of ids.
//
// It is also the Silver merge's identity state (DESIGN.md §6 Identity), so a
// batch looks up what it needs instead of scanning silver.events: per
// anonymous id, its latest identity link (the event carrying both ids that is
// latest by (event_ts, event_id)) and the event_ts range of its rows that have
// no user_id (the rows a new link re-keys). Links are written with the batch
// that set them and their value before it, like the watermark, so a re-run of
// batch N reads what its first run read.
//
// Thread safety: a DedupStore is used by the runner's thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace rocksdb {
class DB;
}

namespace clicklake::pipeline {

class DedupStore {
 public:
  // Opens (creating) the store in `dir`. IOError when RocksDB cannot open it
  // (e.g. another processor holds its lock).
  static Result<std::unique_ptr<DedupStore>> Open(const std::string& dir, int64_t window_us);
  ~DedupStore();

  // Starts batch `batch_id` (forgets the previous batch's pending ids).
  void BeginBatch(int64_t batch_id);
  // True when `event_id` is a duplicate for the current batch; otherwise
  // records it as first seen in this batch (pending until CommitBatch).
  Result<bool> CheckAndAdd(std::string_view event_id, int64_t event_ts_us);
  // The watermark before the current batch (INT64_MIN: none yet); call after
  // BeginBatch. Then AdvanceWatermark with each new event's time.
  Status LoadWatermark();
  int64_t watermark() const { return watermark_; }
  void AdvanceWatermark(int64_t event_ts_us) { watermark_ = std::max(watermark_, event_ts_us); }
  // Persists this batch's new ids and the watermark (synced, atomically) and,
  // now and then, expires entries with event_ts < newest_received_at − window.
  Status CommitBatch(int64_t newest_received_at_us);
  // Deletes entries older than `cutoff_us` (event_ts); returns how many.
  Result<int64_t> Expire(int64_t cutoff_us);

  int64_t window_us() const { return window_us_; }

  // ---- identity state ----
  struct Link {
    int64_t event_ts_us = 0;
    std::string event_id;
    std::string user_id;
  };
  struct AnonState {
    std::optional<Link> link;  // the latest link before the current batch
    // event_ts range of its rows without user_id (min > max: none known).
    int64_t min_ts_us = INT64_MAX;
    int64_t max_ts_us = INT64_MIN;
  };
  // True once the identity state covers every row silver.events held before
  // the current batch (MarkIdentityInitialized).
  Result<bool> IdentityInitialized();
  // The state of each of `anonymous_ids` as of before the current batch.
  Result<std::vector<AnonState>> LookupAnons(const std::vector<std::string>& anonymous_ids);
  struct AnonUpdate {
    std::string anonymous_id;
    std::optional<Link> link;         // its latest link after this batch (nullopt: unchanged)
    int64_t min_ts_us = INT64_MAX;    // widen its range to hold [min, max]
    int64_t max_ts_us = INT64_MIN;
  };
  // Per user_key, what the Silver merge needs to continue its sessions without
  // reading silver.events: the newest event_ts of its non-late rows and its
  // last non-late activity row (the seed of a session that may continue). A
  // batch whose rows of the key all come after max_ts changes none of its
  // existing rows. The entry may run ahead of silver.events (written before
  // the commit): a re-run then finds its rows not after max_ts and reads the
  // table, which is always correct.
  struct KeyState {
    int64_t max_ts_us = INT64_MIN;
    bool has_seed = false;
    int64_t seed_ts_us = 0;
    std::string seed_event_id;
    std::string seed_session_id;
    int64_t seed_index = 0;
  };
  Result<std::vector<std::optional<KeyState>>> LookupKeys(const std::vector<std::string>& user_keys);
  struct KeyUpdate {
    std::string user_key;
    std::optional<KeyState> state;  // nullopt: the key has no rows any more
  };

  // ---- privacy erasure (pipeline/erasure.h) ----
  // Pairs (anonymous id, user id) of the current links (their latest value)
  // whose anonymous id is in `anonymous_ids` or whose user id is in
  // `user_ids`: a scan of the links.
  Result<std::vector<std::pair<std::string, std::string>>> LinkedIdentities(
      const std::vector<std::string>& anonymous_ids, const std::vector<std::string>& user_ids);
  // Removes (synced, atomically) every entry of these event ids (dedup),
  // anonymous ids (links, row ranges) and user keys (session state), then
  // compacts the key range they span (RocksDB CompactRange, bottommost level
  // included) so no SST or write-ahead log file keeps them; returns how many
  // existed.
  Result<int64_t> Forget(const std::vector<std::string>& event_ids, const std::vector<std::string>& anonymous_ids,
                         const std::vector<std::string>& user_keys);

  // Persists (synced, atomically) the current batch's identity changes.
  // REQUIRES: BeginBatch; call once per batch.
  Status CommitIdentity(const std::vector<AnonUpdate>& updates, const std::vector<KeyUpdate>& keys) {
    return WriteIdentity(updates, keys, false);
  }
  // Persists the state of every row silver.events held before the current
  // batch (computed from the table once, for a lake that predates the state)
  // and marks the state initialized.
  Status BootstrapIdentity(const std::vector<AnonUpdate>& updates, const std::vector<KeyUpdate>& keys) {
    return WriteIdentity(updates, keys, true);
  }

 private:
  DedupStore(std::unique_ptr<rocksdb::DB> db, int64_t window_us);
  Status WriteIdentity(const std::vector<AnonUpdate>& updates, const std::vector<KeyUpdate>& keys, bool bootstrap);

  std::unique_ptr<rocksdb::DB> db_;
  int64_t window_us_;
  int64_t batch_id_ = -1;
  int64_t batches_since_expiry_ = 0;
  int64_t watermark_before_ = INT64_MIN;  // at the start of the current batch
  int64_t watermark_ = INT64_MIN;
  std::unordered_map<std::string, int64_t> pending_;  // event_id → event_ts, new in this batch
};

}  // namespace clicklake::pipeline
