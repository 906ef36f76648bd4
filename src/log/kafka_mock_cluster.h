// KafkaMockCluster: librdkafka's built-in mock cluster (rdkafka_mock.h), a real
// Kafka-protocol server on 127.0.0.1 ephemeral ports, for tests of KafkaLog and
// of anything that talks Kafka (kcat included).
//
// Start() creates the cluster; the destructor stops it. Topics must be created
// with CreateTopic (the mock does not implement the CreateTopics admin API).
// SetBrokerDown/Up disconnect a broker and refuse/allow connections, to test
// outages. Test code only. Thread-safe (librdkafka serialises mock operations).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace clicklake::log {

class KafkaMockCluster {
 public:
  static Result<std::unique_ptr<KafkaMockCluster>> Start(int num_brokers = 1);
  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers / log.brokers / kcat -b.
  const std::string& bootstraps() const { return bootstraps_; }
  Status CreateTopic(const std::string& topic, int partitions, int replication = 1);
  // broker_id 1..num_brokers, or -1 for all.
  Status SetBrokerDown(int32_t broker_id);
  Status SetBrokerUp(int32_t broker_id);

 private:
  KafkaMockCluster() = default;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mcluster_ = nullptr;
  std::string bootstraps_;
};

}  // namespace clicklake::log
