/*
 * mq_kafka.h — what the server's outbox relay and the consumer processes
 * share about Kafka: the domain topics, topic creation through librdkafka's
 * admin API (idempotent: an existing topic is success), and a base client
 * configuration with librdkafka's logs routed into our JSON logs.
 */
#ifndef MQ_KAFKA_H
#define MQ_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "core/mq_config.h"
#include "core/mq_error.h"

/* Every domain topic (DESIGN.md §5), NULL-terminated. Keyed by aggregate id. */
extern const char *const mq_kafka_domain_topics[];

/* A conf with bootstrap.servers, client.id and log routing set. Caller owns
 * it (it is consumed by rd_kafka_new on success). */
rd_kafka_conf_t *mq_kafka_conf(const mq_config_t *cfg, const char *client_id);
/* Sets one property; logs and returns false on error (a programming error). */
bool mq_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value);
/* Creates `topics` (NULL-terminated) with the configured partitions and
 * replication, and, except dead-letter topics, retention.ms=-1 (the log is
 * what the search index and analytics are rebuilt from; a topic that exists
 * already keeps its own settings); MQ_OK when each exists afterwards; UNAVAILABLE if the broker
 * did not answer within timeout_ms. */
mq_code_t mq_kafka_create_topics(rd_kafka_t *rk, const mq_config_t *cfg, const char *const *topics, int timeout_ms,
                                 mq_error_t *err);
/* True if a broker answered a metadata request within timeout_ms. */
bool mq_kafka_ping(rd_kafka_t *rk, int timeout_ms);

#endif
