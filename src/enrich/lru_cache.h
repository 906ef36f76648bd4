// ShardedLruCache: a bounded, thread-safe string-keyed LRU cache for the
// enrichment lookups (user agent → parsed fields, IP → geo).
//
// Traffic repeats the same user agents and IPs over and over, so a cache in
// front of the expensive lookup turns most calls into one hash + one short
// critical section. The key space is split into shards, each with its own
// mutex, LRU list and index, so concurrent callers rarely contend.
//
// Ownership: the cache owns copies of keys and values; Get() copies the value
// out, so no reference into the cache outlives the shard lock.
// Thread safety: all methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clicklake::enrich {

template <typename V>
class ShardedLruCache {
 public:
  // `capacity` is the total number of entries, spread evenly over `shards`
  // (rounded up so every shard holds at least one). capacity 0 disables the
  // cache: Get() always misses and Put() does nothing.
  explicit ShardedLruCache(size_t capacity, size_t shards = 16)
      : enabled_(capacity > 0), shards_(shards == 0 ? 1 : shards) {
    size_t per_shard = (capacity + shards_.size() - 1) / shards_.size();
    for (Shard& s : shards_) s.capacity = per_shard == 0 ? 1 : per_shard;
  }

  ShardedLruCache(const ShardedLruCache&) = delete;
  ShardedLruCache& operator=(const ShardedLruCache&) = delete;

  // Copies the cached value for `key` into `*out` and marks it most recently
  // used. Returns false on a miss.
  bool Get(std::string_view key, V* out) {
    if (!enabled_) return false;
    size_t h = std::hash<std::string_view>{}(key);
    Shard& s = ShardFor(h);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) {
      ++s.misses;
      return false;
    }
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    *out = it->second->second;
    ++s.hits;
    return true;
  }

  // Inserts or replaces `key`, evicting the shard's least recently used entry
  // when the shard is full.
  void Put(std::string_view key, V value) {
    if (!enabled_) return;
    size_t h = std::hash<std::string_view>{}(key);
    Shard& s = ShardFor(h);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) {
      it->second->second = std::move(value);
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return;
    }
    if (s.index.size() >= s.capacity) {
      auto last = std::prev(s.lru.end());
      s.index.erase(std::string_view(last->first));
      s.lru.pop_back();
    }
    s.lru.emplace_front(std::string(key), std::move(value));
    // The index keys view the list node's string, which std::list keeps stable.
    s.index.emplace(std::string_view(s.lru.front().first), s.lru.begin());
  }

  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      n += s.index.size();
    }
    return n;
  }
  // Totals since construction (summed over the shards).
  int64_t hits() const { return Sum(&Shard::hits); }
  int64_t misses() const { return Sum(&Shard::misses); }

 private:
  using Entry = std::pair<std::string, V>;
  // Counted per shard under its lock: a process-wide atomic would bounce its
  // cache line between every core on every lookup.
  struct Shard {
    mutable std::mutex mu;
    size_t capacity = 1;
    int64_t hits = 0;      // GUARDED_BY(mu)
    int64_t misses = 0;    // GUARDED_BY(mu)
    std::list<Entry> lru;  // GUARDED_BY(mu); front = most recently used
    std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index;  // GUARDED_BY(mu)
  };

  int64_t Sum(int64_t Shard::*counter) const {
    int64_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      n += s.*counter;
    }
    return n;
  }

  Shard& ShardFor(size_t hash) {
    // Mix the high bits in: std::hash of a string may leave low bits weak.
    return shards_[(hash ^ (hash >> 29)) % shards_.size()];
  }

  const bool enabled_;
  std::vector<Shard> shards_;
};

}  // namespace clicklake::enrich
