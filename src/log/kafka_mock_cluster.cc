#include "log/kafka_mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace clicklake::log {

Result<std::unique_ptr<KafkaMockCluster>> KafkaMockCluster::Start(int num_brokers) {
  std::unique_ptr<KafkaMockCluster> c(new KafkaMockCluster());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // The handle only hosts the cluster; keep it quiet.
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
  c->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (c->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::Internal(std::string("mock cluster handle: ") + err);
  }
  c->mcluster_ = rd_kafka_mock_cluster_new(c->rk_, num_brokers);
  if (c->mcluster_ == nullptr) return Status::Internal("rd_kafka_mock_cluster_new failed");
  c->bootstraps_ = rd_kafka_mock_cluster_bootstraps(c->mcluster_);
  return c;
}

KafkaMockCluster::~KafkaMockCluster() {
  if (mcluster_) rd_kafka_mock_cluster_destroy(mcluster_);
  if (rk_) rd_kafka_destroy(rk_);
}

Status KafkaMockCluster::CreateTopic(const std::string& topic, int partitions, int replication) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster_, topic.c_str(), partitions, replication);
  if (err) return Status::Internal("mock topic " + topic + ": " + rd_kafka_err2str(err));
  return Status::OK();
}

Status KafkaMockCluster::SetBrokerDown(int32_t broker_id) {
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_down(mcluster_, broker_id);
  if (err) return Status::Internal(std::string("mock broker down: ") + rd_kafka_err2str(err));
  return Status::OK();
}

Status KafkaMockCluster::SetBrokerUp(int32_t broker_id) {
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_up(mcluster_, broker_id);
  if (err) return Status::Internal(std::string("mock broker up: ") + rd_kafka_err2str(err));
  return Status::OK();
}

}  // namespace clicklake::log
