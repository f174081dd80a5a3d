/*
 * mq_kafka.c — see mq_kafka.h.
 */
#include "lib/mq_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"

const char *const mq_kafka_domain_topics[] = {
    "marquee.system",        "marquee.users",    "marquee.events",
    "marquee.bookings",      "marquee.payments", "marquee.privacy",
    "marquee.notifications", "marquee.views",    NULL,
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  /* librdkafka repeats connection failures every retry; the relay and health
   * probe report Kafka state changes, so these stay at debug level. */
  (void)level;
  mq_log(MQ_LOG_DEBUG, "rdkafka", "%s: %s", fac, buf);
}

bool mq_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value) {
  char errstr[256];
  if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    mq_log(MQ_LOG_ERROR, "kafka.config", "%s: %s", key, errstr);
    return false;
  }
  return true;
}

rd_kafka_conf_t *mq_kafka_conf(const mq_config_t *cfg, const char *client_id) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  mq_kafka_set(conf, "bootstrap.servers", cfg->kafka_brokers);
  mq_kafka_set(conf, "client.id", client_id);
  mq_kafka_set(conf, "reconnect.backoff.ms", "100");
  mq_kafka_set(conf, "reconnect.backoff.max.ms", "2000");
  rd_kafka_conf_set_log_cb(conf, log_cb);
  return conf;
}

mq_code_t mq_kafka_create_topics(rd_kafka_t *rk, const mq_config_t *cfg, const char *const *topics, int timeout_ms,
                                 mq_error_t *err) {
  size_t n = 0;
  while (topics[n]) n++;
  if (!n) return MQ_OK;
  char errstr[256];
  rd_kafka_NewTopic_t **nt = calloc(n, sizeof *nt);
  for (size_t i = 0; i < n; i++) {
    nt[i] = rd_kafka_NewTopic_new(topics[i], (int)cfg->kafka_partitions, (int)cfg->kafka_replication, errstr,
                                  sizeof errstr);
    /* the domain topics are the log derived views are rebuilt from (the search
     * index, analytics): kept for good, not the broker's default week */
    if (nt[i] && strncmp(topics[i], "marquee.dlq.", 12)) rd_kafka_NewTopic_set_config(nt[i], "retention.ms", "-1");
  }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof errstr);
  rd_kafka_CreateTopics(rk, nt, n, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
  mq_code_t rc = MQ_OK;
  if (!ev) {
    rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "Kafka did not answer the topic creation request");
  } else if (rd_kafka_event_error(ev)) {
    rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "create topics: %s", rd_kafka_event_error_string(ev));
  } else {
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt && rc == MQ_OK; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                          rd_kafka_err2str(e));
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy_array(nt, n);
  free(nt);
  return rc;
}

bool mq_kafka_ping(rd_kafka_t *rk, int timeout_ms) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
  if (md) rd_kafka_metadata_destroy(md);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}
