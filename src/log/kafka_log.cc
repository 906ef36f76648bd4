#include "log/kafka_log.h"

#include "log/append_completion.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"

namespace clicklake::log {
namespace {

// Bytes a queued message counts against max_pending_bytes (payload + overhead).
constexpr uint64_t kMessageOverhead = 64;

uint64_t PendingBytes(size_t key, size_t value) { return key + value + kMessageOverhead; }

Status KafkaError(rd_kafka_resp_err_t err, const std::string& what) {
  std::string msg = what + ": " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")";
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
      return Status::Unavailable(msg + "; retry later");
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return Status::NotFound(msg);
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return Status::InvalidArgument(msg);
    default:
      return Status::IOError(msg);
  }
}


class ConfBuilder {
 public:
  ConfBuilder() : conf_(rd_kafka_conf_new()) {}
  ~ConfBuilder() {
    if (conf_) rd_kafka_conf_destroy(conf_);
  }
  ConfBuilder& Set(const std::string& k, const std::string& v) {
    char err[512];
    if (status_.ok() && rd_kafka_conf_set(conf_, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
      status_ = Status::InvalidArgument("librdkafka setting " + k + "=" + v + ": " + err);
    return *this;
  }
  rd_kafka_conf_t* conf() { return conf_; }
  // Creates the handle; the conf is consumed on success.
  Result<rd_kafka_t*> Create(rd_kafka_type_t type) {
    RETURN_IF_ERROR(status_);
    rd_kafka_conf_set_log_cb(conf_, [](const rd_kafka_t*, int level, const char* fac, const char* buf) {
      if (level <= 3) {
        spdlog::error("librdkafka {}: {}", fac, buf);
      } else if (level <= 4) {
        spdlog::warn("librdkafka {}: {}", fac, buf);
      } else {
        spdlog::debug("librdkafka {}: {}", fac, buf);
      }
    });
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf_, err, sizeof(err));
    if (rk == nullptr) return Status::InvalidArgument(std::string("cannot create Kafka client: ") + err);
    conf_ = nullptr;
    return rk;
  }

 private:
  rd_kafka_conf_t* conf_;
  Status status_;
};

class KafkaLog final : public EventLog {
 public:
  explicit KafkaLog(KafkaLogOptions options) : options_(std::move(options)) {
    for (int32_t p = 0; p < options_.num_partitions; ++p) readers_.push_back(std::make_unique<PartitionReader>());
  }
  ~KafkaLog() override {
    Close().IgnoreError();
    DestroyHandles();
  }

  Status Open();

  int32_t num_partitions() const override { return options_.num_partitions; }
  int32_t PartitionFor(std::string_view key) const override { return PartitionForKey(key, options_.num_partitions); }
  void AppendAsync(std::vector<LogEntry> entries, AppendCallback done) override;
  Result<std::vector<LogRecord>> Read(int32_t partition, int64_t offset, size_t max_records, size_t max_bytes) override;
  Result<PartitionInfo> GetPartitionInfo(int32_t partition) override;
  Status CommitOffsets(const std::string& group, const std::map<int32_t, int64_t>& next_offsets) override;
  Result<std::map<int32_t, int64_t>> CommittedOffsets(const std::string& group) override;
  Status EnforceRetention() override { return Status::OK(); }
  Status Close() override;

 private:
  // Per-partition fetch state of the reader handle.
  struct PartitionReader {
    std::mutex mu;
    bool started = false;            // GUARDED_BY(mu)
    int64_t fetched_next = 0;        // next offset librdkafka will hand out; GUARDED_BY(mu)
    std::deque<LogRecord> buffered;  // fetched, not yet returned; GUARDED_BY(mu)
  };

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);
  Status CheckPartition(int32_t partition) const {
    if (partition < 0 || partition >= options_.num_partitions)
      return Status::InvalidArgument("partition " + std::to_string(partition) + " is out of range [0, " +
                                     std::to_string(options_.num_partitions) + ")");
    return Status::OK();
  }
  Result<rd_kafka_t*> GroupHandle(const std::string& group);
  void DestroyHandles();

  const KafkaLogOptions options_;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_topic_t* producer_topic_ = nullptr;
  rd_kafka_t* reader_ = nullptr;
  rd_kafka_topic_t* reader_topic_ = nullptr;
  std::vector<std::unique_ptr<PartitionReader>> readers_;
  std::atomic<uint64_t> pending_bytes_{0};
  std::atomic<bool> stop_poller_{false};
  std::thread poller_;

  std::shared_mutex close_mu_;  // appends hold it shared while producing
  bool closed_ = false;         // GUARDED_BY(close_mu_)
  bool open_ = false;           // GUARDED_BY(close_mu_)

  std::mutex groups_mu_;
  std::map<std::string, rd_kafka_t*> group_handles_;  // GUARDED_BY(groups_mu_)
};

void KafkaLog::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<KafkaLog*>(opaque);
  self->pending_bytes_.fetch_sub(PendingBytes(msg->key_len, msg->len), std::memory_order_relaxed);
  auto* append = static_cast<AppendCompletion*>(msg->_private);
  // One part per message; the last delivery report runs the callback and frees it.
  if (append->Finish(msg->err ? KafkaError(msg->err, "Kafka delivery to " + self->options_.topic) : Status::OK())) {
    delete append;
  }
}

Status KafkaLog::Open() {
  if (options_.num_partitions <= 0) return Status::InvalidArgument("log.partitions must be positive");
  if (options_.brokers.empty()) return Status::InvalidArgument("log.brokers is empty: list host:port of the brokers");
  const std::string pending_kb = std::to_string(options_.max_pending_bytes / 1024 * 2 + 1024);
  {
    ConfBuilder c;
    c.Set("bootstrap.servers", options_.brokers)
        .Set("client.id", "clicklake-producer")
        .Set("enable.idempotence", "true")
        .Set("acks", "all")
        .Set("compression.type", "zstd")
        .Set("linger.ms", std::to_string(options_.linger_ms))
        .Set("batch.size", "1000000")
        .Set("queue.buffering.max.messages", "2000000")
        .Set("queue.buffering.max.kbytes", pending_kb)
        .Set("message.timeout.ms", std::to_string(options_.message_timeout_ms))
        .Set("allow.auto.create.topics", "false")
        .Set("reconnect.backoff.max.ms", "1000")  // back soon after an outage
        .Set("partitioner", "consistent");        // unused: every message names its partition
    rd_kafka_conf_set_dr_msg_cb(c.conf(), &KafkaLog::OnDelivery);
    rd_kafka_conf_set_opaque(c.conf(), this);
    ASSIGN_OR_RETURN(producer_, c.Create(RD_KAFKA_PRODUCER));
  }
  producer_topic_ = rd_kafka_topic_new(producer_, options_.topic.c_str(), nullptr);
  if (producer_topic_ == nullptr) return KafkaError(rd_kafka_last_error(), "topic " + options_.topic);

  // The topic must exist with the partition count the key mapping assumes.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, 0, producer_topic_, &md, options_.request_timeout_ms);
  if (err) return KafkaError(err, "Kafka metadata from " + options_.brokers);
  Status topic_status;
  if (md->topic_cnt != 1 || md->topics[0].err) {
    topic_status = Status::NotFound("Kafka topic " + options_.topic + " does not exist on " + options_.brokers +
                                    ": create it with " + std::to_string(options_.num_partitions) + " partitions");
  } else if (md->topics[0].partition_cnt != options_.num_partitions) {
    topic_status = Status::InvalidArgument(
        "Kafka topic " + options_.topic + " has " + std::to_string(md->topics[0].partition_cnt) +
        " partitions but log.partitions is " + std::to_string(options_.num_partitions) + "; make them agree");
  }
  rd_kafka_metadata_destroy(md);
  RETURN_IF_ERROR(topic_status);

  {
    ConfBuilder c;
    c.Set("bootstrap.servers", options_.brokers)
        .Set("client.id", "clicklake-reader")
        .Set("group.id", options_.group_prefix + "clicklake-reader")
        .Set("enable.auto.commit", "false")
        .Set("enable.auto.offset.store", "false")
        .Set("enable.partition.eof", "false")
        .Set("fetch.wait.max.ms", "10")
        .Set("fetch.error.backoff.ms", "50")
        .Set("queued.max.messages.kbytes", "65536")
        .Set("allow.auto.create.topics", "false");
    ASSIGN_OR_RETURN(reader_, c.Create(RD_KAFKA_CONSUMER));
  }
  rd_kafka_topic_conf_t* tconf = rd_kafka_topic_conf_new();
  char errbuf[256];
  rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "earliest", errbuf, sizeof(errbuf));
  reader_topic_ = rd_kafka_topic_new(reader_, options_.topic.c_str(), tconf);
  if (reader_topic_ == nullptr) return KafkaError(rd_kafka_last_error(), "topic " + options_.topic);

  poller_ = std::thread([this] {
    while (!stop_poller_.load(std::memory_order_relaxed)) {
      rd_kafka_poll(producer_, 50);  // delivery reports -> append callbacks
      rd_kafka_poll(reader_, 0);     // the reader's error events, so they do not pile up
    }
  });
  std::unique_lock l(close_mu_);
  open_ = true;
  return Status::OK();
}

void KafkaLog::AppendAsync(std::vector<LogEntry> entries, AppendCallback done) {
  if (entries.empty()) return done(Status::OK());
  uint64_t total = 0;
  for (const auto& e : entries) total += PendingBytes(e.key.size(), e.value.size());
  std::shared_lock l(close_mu_);
  if (closed_ || !open_) return done(Status::Unavailable("the event log is closed"));
  uint64_t before = pending_bytes_.fetch_add(total, std::memory_order_relaxed);
  if (before > 0 && before + total > options_.max_pending_bytes) {
    pending_bytes_.fetch_sub(total, std::memory_order_relaxed);
    return done(Status::Unavailable("the Kafka producer buffer is full (" + std::to_string(before) +
                                    " bytes not yet acknowledged by the brokers); retry later"));
  }
  auto* append = new AppendCompletion(static_cast<int>(entries.size()), std::move(done));
  for (size_t i = 0; i < entries.size(); ++i) {
    const LogEntry& e = entries[i];
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_RKT(producer_topic_), RD_KAFKA_V_PARTITION(PartitionFor(e.key)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(e.value.data()), e.value.size()), RD_KAFKA_V_OPAQUE(append), RD_KAFKA_V_END);
    if (err) {
      // Messages before i are in flight and report on their own; fail the rest here.
      Status s = KafkaError(err, "Kafka produce to " + options_.topic);
      for (size_t j = i; j < entries.size(); ++j) {
        pending_bytes_.fetch_sub(PendingBytes(entries[j].key.size(), entries[j].value.size()),
                                 std::memory_order_relaxed);
        if (append->Finish(s)) delete append;
      }
      return;
    }
  }
}

Result<PartitionInfo> KafkaLog::GetPartitionInfo(int32_t partition) {
  RETURN_IF_ERROR(CheckPartition(partition));
  int64_t lo = 0, hi = 0;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(reader_, options_.topic.c_str(), partition, &lo, &hi,
                                                             options_.request_timeout_ms);
  if (err) return KafkaError(err, "Kafka watermarks of " + options_.topic + "/" + std::to_string(partition));
  return PartitionInfo{partition, lo, hi};
}

Result<std::vector<LogRecord>> KafkaLog::Read(int32_t partition, int64_t offset, size_t max_records, size_t max_bytes) {
  RETURN_IF_ERROR(CheckPartition(partition));
  std::vector<LogRecord> out;
  if (max_records == 0) return out;
  PartitionReader& r = *readers_[static_cast<size_t>(partition)];
  std::lock_guard l(r.mu);
  size_t bytes = 0;
  auto take_buffered = [&] {
    while (!r.buffered.empty() && out.size() < max_records && (out.empty() || bytes < max_bytes)) {
      bytes += r.buffered.front().key.size() + r.buffered.front().value.size();
      out.push_back(std::move(r.buffered.front()));
      r.buffered.pop_front();
    }
  };
  if (r.started && !r.buffered.empty() && r.buffered.front().offset == offset) {
    take_buffered();
    return out;
  }
  ASSIGN_OR_RETURN(PartitionInfo info, GetPartitionInfo(partition));
  if (offset < info.start_offset || offset > info.end_offset) {
    return Status::InvalidArgument("offset " + std::to_string(offset) + " of " + options_.topic + "/" +
                                   std::to_string(partition) + " is outside the retained range [" +
                                   std::to_string(info.start_offset) + ", " + std::to_string(info.end_offset) + "]");
  }
  if (offset == info.end_offset) return out;
  if (!r.started || r.fetched_next != offset || !r.buffered.empty()) {
    if (r.started) rd_kafka_consume_stop(reader_topic_, partition);
    r.buffered.clear();
    r.started = false;
    if (rd_kafka_consume_start(reader_topic_, partition, offset) != 0)
      return KafkaError(rd_kafka_last_error(), "Kafka fetch of " + options_.topic + "/" + std::to_string(partition));
    r.started = true;
    r.fetched_next = offset;
  }
  const size_t want =
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(max_records), info.end_offset - offset));
  std::vector<rd_kafka_message_t*> msgs(std::min<size_t>(want, 4096));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
  size_t got = 0;
  while (got < want && std::chrono::steady_clock::now() < deadline) {
    size_t ask = std::min(want - got, msgs.size());
    ssize_t n = rd_kafka_consume_batch(reader_topic_, partition, 100, msgs.data(), ask);
    if (n < 0) return KafkaError(rd_kafka_last_error(), "Kafka fetch of " + options_.topic);
    Status error;
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = msgs[static_cast<size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // nothing more yet
      } else if (m->err) {
        if (error.ok())
          error = KafkaError(m->err, "Kafka fetch of " + options_.topic + "/" + std::to_string(partition));
      } else if (m->offset >= r.fetched_next) {
        LogRecord rec;
        rec.partition = partition;
        rec.offset = m->offset;
        rd_kafka_timestamp_type_t tstype;
        rec.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
        if (m->key) rec.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) rec.value.assign(static_cast<const char*>(m->payload), m->len);
        r.fetched_next = m->offset + 1;
        r.buffered.push_back(std::move(rec));
        ++got;
      }
      rd_kafka_message_destroy(m);
    }
    if (!error.ok()) {
      rd_kafka_consume_stop(reader_topic_, partition);
      r.started = false;
      r.buffered.clear();
      return error;
    }
  }
  if (got == 0) {
    return Status::Unavailable("no records from Kafka " + options_.topic + "/" + std::to_string(partition) +
                               " within " + std::to_string(options_.request_timeout_ms) + " ms; retry later");
  }
  if (!r.buffered.empty() && r.buffered.front().offset != offset) {
    // A gap (compacted topic or transaction markers): records start later.
    spdlog::debug("Kafka {}/{}: requested {}, first record {}", options_.topic, partition, offset,
                  r.buffered.front().offset);
  }
  take_buffered();
  return out;
}

Result<rd_kafka_t*> KafkaLog::GroupHandle(const std::string& group) {
  if (group.empty()) return Status::InvalidArgument("consumer group name is empty");
  auto it = group_handles_.find(group);
  if (it != group_handles_.end()) return it->second;
  ConfBuilder c;
  c.Set("bootstrap.servers", options_.brokers)
      .Set("client.id", "clicklake-offsets")
      .Set("group.id", options_.group_prefix + group)
      .Set("enable.auto.commit", "false")
      .Set("enable.auto.offset.store", "false");
  ASSIGN_OR_RETURN(rd_kafka_t * rk, c.Create(RD_KAFKA_CONSUMER));
  group_handles_[group] = rk;
  return rk;
}

Status KafkaLog::CommitOffsets(const std::string& group, const std::map<int32_t, int64_t>& next_offsets) {
  for (const auto& [p, o] : next_offsets) {
    RETURN_IF_ERROR(CheckPartition(p));
    if (o < 0) return Status::InvalidArgument("committed offset " + std::to_string(o) + " is negative");
  }
  std::lock_guard l(groups_mu_);
  ASSIGN_OR_RETURN(rd_kafka_t * rk, GroupHandle(group));
  if (next_offsets.empty()) return Status::OK();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()));
  for (const auto& [p, o] : next_offsets) {
    rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), p)->offset = o;
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, 0);
  Status s = err ? KafkaError(err, "Kafka offset commit of group " + group) : Status::OK();
  for (int i = 0; s.ok() && i < list->cnt; ++i) {
    if (list->elems[i].err) s = KafkaError(list->elems[i].err, "Kafka offset commit of group " + group);
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (s.ok()) {
    // Lag gauges, as of this commit (the local log also moves them on appends).
    for (const auto& [p, o] : next_offsets) {
      auto info = GetPartitionInfo(p);
      if (!info.ok()) continue;
      MetricsRegistry::Global()
          ->GetGauge("clicklake_log_consumer_lag", "Records not yet consumed by a group (end - committed)",
                     {{"group", group}, {"partition", std::to_string(p)}})
          ->Set(static_cast<double>(std::max<int64_t>(0, info->end_offset - o)));
    }
  }
  return s;
}

Result<std::map<int32_t, int64_t>> KafkaLog::CommittedOffsets(const std::string& group) {
  std::lock_guard l(groups_mu_);
  ASSIGN_OR_RETURN(rd_kafka_t * rk, GroupHandle(group));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(options_.num_partitions);
  for (int32_t p = 0; p < options_.num_partitions; ++p)
    rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), p);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, list, options_.request_timeout_ms);
  std::map<int32_t, int64_t> out;
  Status s = err ? KafkaError(err, "Kafka committed offsets of group " + group) : Status::OK();
  for (int i = 0; s.ok() && i < list->cnt; ++i) {
    if (list->elems[i].err) {
      s = KafkaError(list->elems[i].err, "Kafka committed offsets of group " + group);
    } else if (list->elems[i].offset >= 0) {
      out[list->elems[i].partition] = list->elems[i].offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (!s.ok()) return s;
  return out;
}

Status KafkaLog::Close() {
  {
    std::unique_lock l(close_mu_);
    if (closed_) return Status::OK();
    closed_ = true;
    if (!open_) return Status::OK();
  }
  stop_poller_ = true;
  if (poller_.joinable()) poller_.join();
  // Wait for in-flight appends; what the brokers do not take in time is failed.
  Status s;
  if (rd_kafka_flush(producer_, std::min(options_.message_timeout_ms, 30000)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(producer_, 5000);  // serves the purged messages' delivery reports
    s = Status::Unavailable("closed the Kafka log with appends the brokers had not acknowledged (they failed)");
  }
  for (int32_t p = 0; p < options_.num_partitions; ++p) {
    PartitionReader& r = *readers_[static_cast<size_t>(p)];
    std::lock_guard l(r.mu);
    if (r.started) rd_kafka_consume_stop(reader_topic_, p);
    r.started = false;
  }
  return s;
}

void KafkaLog::DestroyHandles() {
  {
    std::lock_guard l(groups_mu_);
    for (auto& [name, rk] : group_handles_) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
    group_handles_.clear();
  }
  if (reader_topic_) rd_kafka_topic_destroy(reader_topic_);
  if (reader_) rd_kafka_destroy(reader_);
  if (producer_topic_) rd_kafka_topic_destroy(producer_topic_);
  if (producer_) rd_kafka_destroy(producer_);
  reader_topic_ = nullptr;
  reader_ = nullptr;
  producer_topic_ = nullptr;
  producer_ = nullptr;
}

}  // namespace

Result<KafkaLogOptions> KafkaLogOptionsFromConfig(const Config& config) {
  KafkaLogOptions o;
  o.brokers = config.GetString("log.brokers", o.brokers);
  o.topic = config.GetString("log.topic", o.topic);
  o.num_partitions = static_cast<int32_t>(config.GetInt("log.partitions", o.num_partitions));
  o.group_prefix = config.GetString("log.group_prefix", o.group_prefix);
  int64_t pending = config.GetInt("log.max_pending_bytes", static_cast<int64_t>(o.max_pending_bytes));
  if (pending < 1) return Status::InvalidArgument("log.max_pending_bytes must be positive");
  o.max_pending_bytes = static_cast<uint64_t>(pending);
  o.linger_ms = static_cast<int>(config.GetInt("log.linger_ms", o.linger_ms));
  o.message_timeout_ms = static_cast<int>(config.GetInt("log.kafka_message_timeout_ms", o.message_timeout_ms));
  o.request_timeout_ms = static_cast<int>(config.GetInt("log.kafka_request_timeout_ms", o.request_timeout_ms));
  if (o.topic.empty()) return Status::InvalidArgument("log.topic is empty");
  return o;
}

Result<std::unique_ptr<EventLog>> OpenKafkaLog(const KafkaLogOptions& options) {
  auto log = std::make_unique<KafkaLog>(options);
  RETURN_IF_ERROR(log->Open().WithContext("open Kafka event log " + options.topic + " on " + options.brokers));
  return std::unique_ptr<EventLog>(std::move(log));
}

}  // namespace clicklake::log
