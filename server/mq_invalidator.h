/*
 * mq_invalidator.h — how a server instance hears about writes made by other
 * instances: a Kafka consumer of the domain topics, reading from the end of
 * every partition (no consumer group coordination, no committed offsets:
 * each process only needs what happens while it runs), calling `fn` for
 * every event. Used to invalidate in-process read caches (mq_cache.h).
 *
 * Delivery is best effort by design: events published while the consumer
 * is (re)connecting are not replayed, so caches also expire by TTL, which
 * bounds how stale a read can be when Kafka is down.
 */
#ifndef MQ_INVALIDATOR_H
#define MQ_INVALIDATOR_H

#include "marquee/events/v1/envelope.pb-c.h"
#include "mq_config.h"

typedef struct mq_invalidator mq_invalidator_t;
typedef void (*mq_invalidate_fn)(void *arg, const char *topic, const Marquee__Events__V1__Envelope *ev);

/* Starts the consumer thread on `topics` (NULL-terminated). NULL if Kafka is
 * not configured (empty MARQUEE_KAFKA_BROKERS). */
mq_invalidator_t *mq_invalidator_start(const mq_config_t *cfg, const char *instance_id, const char *const *topics,
                                       mq_invalidate_fn fn, void *arg);
/* Events seen so far (for tests and metrics). */
uint64_t mq_invalidator_seen(mq_invalidator_t *iv);
void mq_invalidator_stop(mq_invalidator_t *iv);

#endif
