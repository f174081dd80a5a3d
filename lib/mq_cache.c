/*
 * mq_cache.c — see mq_cache.h. Each shard is a chained hash table with a
 * FIFO of insertion order for eviction (the oldest entry goes first when the
 * shard is full) and a generation counter bumped by every invalidation.
 */
#include "lib/mq_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"

#define SHARDS 64
#define BUCKETS 256 /* per shard */

typedef struct entry {
  struct entry *next;                  /* bucket chain */
  struct entry *fifo_prev, *fifo_next; /* insertion order */
  uint64_t hash;
  int64_t expires_ms;
  size_t len;
  char *key;
  unsigned char *val;
} entry_t;

typedef struct shard {
  pthread_mutex_t mu;
  entry_t *buckets[BUCKETS];
  entry_t *oldest, *newest;
  size_t n;
  uint64_t gen;
  mq_cache_stats_t st;
} shard_t;

struct mq_cache {
  shard_t shards[SHARDS];
  size_t per_shard;
  int64_t ttl_ms;
  atomic_bool enabled;
};

static uint64_t hash_key(const char *k) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)k; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return h;
}

mq_cache_t *mq_cache_new(size_t max_entries, int64_t ttl_ms) {
  mq_cache_t *c = mq_xcalloc(1, sizeof *c);
  c->per_shard = max_entries / SHARDS ? max_entries / SHARDS : 1;
  c->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
  for (int i = 0; i < SHARDS; i++) pthread_mutex_init(&c->shards[i].mu, NULL);
  atomic_init(&c->enabled, true);
  return c;
}

static void entry_free(entry_t *e) {
  free(e->key);
  free(e->val);
  free(e);
}

static void unlink_entry(shard_t *s, entry_t *e) {
  entry_t **pp = &s->buckets[e->hash % BUCKETS];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  if (e->fifo_prev)
    e->fifo_prev->fifo_next = e->fifo_next;
  else
    s->oldest = e->fifo_next;
  if (e->fifo_next)
    e->fifo_next->fifo_prev = e->fifo_prev;
  else
    s->newest = e->fifo_prev;
  s->n--;
  entry_free(e);
}

static entry_t *find(shard_t *s, uint64_t h, const char *key) {
  for (entry_t *e = s->buckets[h % BUCKETS]; e; e = e->next)
    if (e->hash == h && !strcmp(e->key, key)) return e;
  return NULL;
}

static shard_t *shard_of(mq_cache_t *c, uint64_t h) {
  return &c->shards[(h >> 32) % SHARDS];
}

void mq_cache_clear(mq_cache_t *c) {
  for (int i = 0; i < SHARDS; i++) {
    shard_t *s = &c->shards[i];
    pthread_mutex_lock(&s->mu);
    while (s->oldest) unlink_entry(s, s->oldest);
    s->gen++;
    pthread_mutex_unlock(&s->mu);
  }
}

bool mq_cache_enabled(mq_cache_t *c) {
  return atomic_load(&c->enabled);
}

void mq_cache_set_enabled(mq_cache_t *c, bool on) {
  atomic_store(&c->enabled, on);
  mq_cache_clear(c); /* new generation either way: fills begun before the switch are dropped */
}

static double g_hits(void *arg) {
  mq_cache_stats_t st;
  mq_cache_get_stats(arg, &st);
  return (double)st.hits;
}
static double g_misses(void *arg) {
  mq_cache_stats_t st;
  mq_cache_get_stats(arg, &st);
  return (double)st.misses;
}
static double g_entries(void *arg) {
  mq_cache_stats_t st;
  mq_cache_get_stats(arg, &st);
  return (double)st.entries;
}
static double g_enabled(void *arg) {
  return atomic_load(&((mq_cache_t *)arg)->enabled) ? 1 : 0;
}

void mq_cache_export_metrics(mq_cache_t *c, const char *name) {
  char n[128];
  snprintf(n, sizeof n, "marquee_cache_hits_total{cache=\"%s\"}", name);
  mq_metrics_gauge(n, "Reads answered from the in-process cache", g_hits, c);
  snprintf(n, sizeof n, "marquee_cache_misses_total{cache=\"%s\"}", name);
  mq_metrics_gauge(n, "Reads the in-process cache could not answer", g_misses, c);
  snprintf(n, sizeof n, "marquee_cache_entries{cache=\"%s\"}", name);
  mq_metrics_gauge(n, "Entries held by the in-process cache", g_entries, c);
  snprintf(n, sizeof n, "marquee_cache_enabled{cache=\"%s\"}", name);
  mq_metrics_gauge(n, "1 while the cache may answer (other instances' writes can be heard)", g_enabled, c);
}

void mq_cache_free(mq_cache_t *c) {
  if (!c) return;
  mq_metrics_gauge_remove(c);
  mq_cache_clear(c);
  for (int i = 0; i < SHARDS; i++) pthread_mutex_destroy(&c->shards[i].mu);
  free(c);
}

bool mq_cache_get(mq_cache_t *c, const char *key, mq_arena_t *a, void **out, size_t *len) {
  if (!atomic_load(&c->enabled)) return false;
  uint64_t h = hash_key(key);
  shard_t *s = shard_of(c, h);
  pthread_mutex_lock(&s->mu);
  entry_t *e = find(s, h, key);
  bool hit = false;
  if (e && e->expires_ms <= mq_now_ms()) {
    unlink_entry(s, e);
    e = NULL;
  }
  if (e) {
    *out = mq_arena_alloc(a, e->len ? e->len : 1);
    memcpy(*out, e->val, e->len);
    *len = e->len;
    hit = true;
    s->st.hits++;
  } else {
    s->st.misses++;
  }
  pthread_mutex_unlock(&s->mu);
  return hit;
}

uint64_t mq_cache_ticket(mq_cache_t *c, const char *key) {
  shard_t *s = shard_of(c, hash_key(key));
  pthread_mutex_lock(&s->mu);
  uint64_t g = s->gen;
  pthread_mutex_unlock(&s->mu);
  return g;
}

void mq_cache_put(mq_cache_t *c, const char *key, const void *val, size_t len, uint64_t ticket) {
  uint64_t h = hash_key(key);
  shard_t *s = shard_of(c, h);
  entry_t *n = mq_xcalloc(1, sizeof *n);
  n->hash = h;
  n->key = mq_xstrdup(key);
  n->val = mq_xmalloc(len);
  memcpy(n->val, val, len);
  n->len = len;
  n->expires_ms = mq_now_ms() + c->ttl_ms;
  pthread_mutex_lock(&s->mu);
  /* invalidated (or the cache switched on or off) while the caller read the source */
  if (s->gen != ticket || !atomic_load(&c->enabled)) {
    s->st.dropped_puts++;
    pthread_mutex_unlock(&s->mu);
    entry_free(n);
    return;
  }
  entry_t *old = find(s, h, key);
  if (old) unlink_entry(s, old);
  while (s->n >= c->per_shard && s->oldest) {
    unlink_entry(s, s->oldest);
    s->st.evictions++;
  }
  n->next = s->buckets[h % BUCKETS];
  s->buckets[h % BUCKETS] = n;
  n->fifo_prev = s->newest;
  if (s->newest)
    s->newest->fifo_next = n;
  else
    s->oldest = n;
  s->newest = n;
  s->n++;
  s->st.puts++;
  pthread_mutex_unlock(&s->mu);
}

void mq_cache_invalidate(mq_cache_t *c, const char *key) {
  uint64_t h = hash_key(key);
  shard_t *s = shard_of(c, h);
  pthread_mutex_lock(&s->mu);
  entry_t *e = find(s, h, key);
  if (e) unlink_entry(s, e);
  s->gen++;
  s->st.invalidations++;
  pthread_mutex_unlock(&s->mu);
}

void mq_cache_get_stats(mq_cache_t *c, mq_cache_stats_t *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < SHARDS; i++) {
    shard_t *s = &c->shards[i];
    pthread_mutex_lock(&s->mu);
    out->hits += s->st.hits;
    out->misses += s->st.misses;
    out->puts += s->st.puts;
    out->dropped_puts += s->st.dropped_puts;
    out->invalidations += s->st.invalidations;
    out->evictions += s->st.evictions;
    out->entries += s->n;
    pthread_mutex_unlock(&s->mu);
  }
}
