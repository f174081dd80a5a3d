/*
 * mq_invalidator.h — how a server instance hears about writes made by other
 * instances: a Kafka consumer of the domain topics, reading from the end of
 * every partition (no consumer group coordination, no committed offsets:
 * each process only needs what happens while it runs), calling `fn` for
 * every event. Used to invalidate in-process read caches (mq_cache.h).
 *
 * "Live" once every topic has all its partitions assigned at concrete
 * offsets (their high watermarks when first seen): from then on every event
 * published is delivered, across broker reconnects, as long as Kafka keeps
 * it. Before that (Kafka unreachable at start, topics not created yet) the
 * owner must not cache — mq_app keeps its caches disabled until `live_fn`
 * reports true. While Kafka is down events are delayed, not lost, so caches
 * also expire by TTL, which bounds how stale a read can be meanwhile.
 */
#ifndef MQ_INVALIDATOR_H
#define MQ_INVALIDATOR_H

#include <stdbool.h>
#include "marquee/events/v1/envelope.pb-c.h"

#include "core/mq_config.h"

typedef struct mq_invalidator mq_invalidator_t;
typedef void (*mq_invalidate_fn)(void *arg, const char *topic, const Marquee__Events__V1__Envelope *ev);
/* Called once, from the consumer thread, when the consumer becomes live. */
typedef void (*mq_invalidator_live_fn)(void *arg, bool live);

/* Starts the consumer thread on `topics` (NULL-terminated). NULL if Kafka is
 * not configured (empty MARQUEE_KAFKA_BROKERS). */
mq_invalidator_t *mq_invalidator_start(const mq_config_t *cfg, const char *instance_id, const char *const *topics,
                                       mq_invalidate_fn fn, mq_invalidator_live_fn live_fn, void *arg);
bool mq_invalidator_live(mq_invalidator_t *iv);
/* Events seen so far (for tests and metrics). */
uint64_t mq_invalidator_seen(mq_invalidator_t *iv);
/* Ends the reader thread: no callback runs after it returns, and
 * mq_invalidator_live answers false; the object stays valid for readers of
 * mq_invalidator_live until mq_invalidator_stop. */
void mq_invalidator_halt(mq_invalidator_t *iv);
/* Halts (if not yet) and frees. */
void mq_invalidator_stop(mq_invalidator_t *iv);

#endif
