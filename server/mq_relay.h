/*
 * mq_relay.h — the outbox relay: moves domain events from MongoDB to Kafka.
 *
 * A thread in every server process publishes the outbox journal's entries
 * (mq_outbox.h) with librdkafka's idempotent producer (acks=all) keyed by
 * aggregate id, and only after the broker acknowledged one records it in the
 * ledger and removes it from the journal. Entries this process journals are
 * handed over in memory and published at once; a catch-up scan of the
 * journal every MARQUEE_OUTBOX_POLL_MS picks up the rest (this process's
 * entries that could not go out yet, and other processes' entries older
 * than 10 s). If Kafka is down, entries wait in MongoDB and writes keep
 * succeeding; they go out when Kafka returns. Two processes can still
 * publish one entry (a slow relay overtaken by the catch-up, a crash before
 * the ledger write); consumers dedupe by event id. Topics are created on
 * start-up (retried until Kafka answers).
 *
 * A second thread, the sweeper, reads the watched collections' embedded
 * outbox entries at start and every MARQUEE_OUTBOX_SWEEP_S and journals any
 * that a crash left unjournaled (older than 30 s, within a day, and not in
 * the ledger).
 */
#ifndef MQ_RELAY_H
#define MQ_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_config.h"
#include "store/mq_store.h"

typedef struct mq_relay mq_relay_t;

mq_code_t mq_relay_create(const mq_config_t *cfg, mq_store_t *store, const char *client_id, mq_relay_t **out,
                          mq_error_t *err);
/* Adds a collection for the sweeper; before mq_relay_start. `name` is copied. */
void mq_relay_watch(mq_relay_t *r, const char *collection);
mq_code_t mq_relay_start(mq_relay_t *r, mq_error_t *err);
/* Wakes the relay now (mq_store's journal hook already does after every
 * journaled write). */
void mq_relay_kick(mq_relay_t *r);
bool mq_relay_kafka_up(const mq_relay_t *r);
/* Age in seconds of the oldest pending event seen by the last scan (0 if none). */
double mq_relay_lag_seconds(const mq_relay_t *r);
uint64_t mq_relay_published(const mq_relay_t *r);
/* Events the sweeper journaled after finding them only in their documents. */
uint64_t mq_relay_recovered(const mq_relay_t *r);
/* Stops the thread, waits up to 5 s for in-flight deliveries, frees. */
void mq_relay_destroy(mq_relay_t *r);

#endif
