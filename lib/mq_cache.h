/*
 * mq_cache.h — an in-process read cache of byte values by string key, for
 * hot read paths (the signed-in user's profile; the catalog's public pages).
 *
 * Coherence: the owner invalidates a key after every local write, and every
 * server instance invalidates on the domain events of other instances
 * (server/mq_app.c's invalidator consumes them from Kafka); entries also
 * expire after `ttl_ms`, which bounds staleness when events cannot arrive
 * (Kafka down, a consumer restarting).
 *
 * Fill races: a reader that missed takes a ticket before reading the source
 * and puts with that ticket; if the key's shard saw an invalidation in
 * between, the put is dropped — so a value read before a write can never be
 * stored after that write's invalidation.
 *
 * Switch: a disabled cache misses every get and drops every put (an
 * instance disables its caches while it cannot hear other instances'
 * writes). Switching either way starts a new generation, so a fill that
 * began before the switch is dropped. New caches are enabled.
 *
 * Thread-safe (64 shards, a mutex each). Values are copied in and out.
 */
#ifndef MQ_CACHE_H
#define MQ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"

typedef struct mq_cache mq_cache_t;

typedef struct mq_cache_stats {
  uint64_t hits, misses, puts, dropped_puts, invalidations, evictions;
  size_t entries;
} mq_cache_stats_t;

/* max_entries > 0 (spread over the shards); ttl_ms > 0. */
mq_cache_t *mq_cache_new(size_t max_entries, int64_t ttl_ms);
void mq_cache_free(mq_cache_t *c);

/* On a fresh hit copies the value into `a` (*out, *len) and returns true. */
bool mq_cache_get(mq_cache_t *c, const char *key, mq_arena_t *a, void **out, size_t *len);
/* Take before reading the source of a missed key. */
uint64_t mq_cache_ticket(mq_cache_t *c, const char *key);
/* Stores a copy unless the key's shard was invalidated since `ticket`. */
void mq_cache_put(mq_cache_t *c, const char *key, const void *val, size_t len, uint64_t ticket);
void mq_cache_invalidate(mq_cache_t *c, const char *key);
void mq_cache_clear(mq_cache_t *c);
void mq_cache_set_enabled(mq_cache_t *c, bool on);
bool mq_cache_enabled(mq_cache_t *c);
void mq_cache_get_stats(mq_cache_t *c, mq_cache_stats_t *out);
/* Registers marquee_cache_{hits_total,misses_total,entries,enabled}{cache="name"}
 * gauges (removed by mq_cache_free). */
void mq_cache_export_metrics(mq_cache_t *c, const char *name);

#endif
