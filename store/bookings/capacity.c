/*
 * capacity.c — see capacity.h for the invariants. Queries: slot records by
 * _id (insert, delete), by pool (refresh, count, reclaim: index pool_n), by
 * holder (release_holder: index hold); holds by _id (reclaim).
 */
#include "store/bookings/capacity.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_fault.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "store/bookings/bookings_store.h"
#include "store/bookings/holds_store.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_capacity_indexes[] = {
    {MQ_SLOTS_COLLECTION, "pool_n", "{\"pool\": 1, \"n\": 1}", false},
    {MQ_SLOTS_COLLECTION, "hold", "{\"hold\": 1}", false},
};
const size_t mq_capacity_n_indexes = sizeof mq_capacity_indexes / sizeof *mq_capacity_indexes;

#define N_BUCKETS 1024
#define MAX_POOLS 8192 /* hints kept; beyond it the table starts afresh */

typedef struct pool_hint {
  struct pool_hint *next;
  char pool[MQ_POOL_ID_MAX];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t capacity;
  uint64_t *bits; /* bit n set: slot n believed taken */
  size_t words;
  int64_t refreshed_ms; /* last completed refresh (monotonic ms), 0 never */
  bool refreshing;
  bool heard; /* bits set from other servers' events since the last refresh */
} pool_hint_t;

struct mq_capacity {
  pthread_mutex_t mu;
  pool_hint_t *buckets[N_BUCKETS];
  size_t n;
  /* retired tables: freed with the whole object (a thread may still hold a
   * pointer into one; hints are small and a reset is rare) */
  pool_hint_t *retired;
};

static uint64_t rnd(void) {
  static _Thread_local uint64_t x;
  if (!x) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&ts ^ (uint64_t)ts.tv_sec;
    if (!x) x = 0x9E3779B97F4A7C15ull;
  }
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

mq_capacity_t *mq_capacity_new(void) {
  mq_capacity_t *c = calloc(1, sizeof *c);
  if (c) pthread_mutex_init(&c->mu, NULL);
  return c;
}

static void free_chain(pool_hint_t *p) {
  while (p) {
    pool_hint_t *next = p->next;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->bits);
    free(p);
    p = next;
  }
}

void mq_capacity_free(mq_capacity_t *c) {
  if (!c) return;
  for (size_t i = 0; i < N_BUCKETS; i++) free_chain(c->buckets[i]);
  free_chain(c->retired);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The hint of `pool`, created on first use. Never freed while c lives. */
static pool_hint_t *hint_of(mq_capacity_t *c, const char *pool) {
  uint32_t b = hash(pool) % N_BUCKETS;
  pthread_mutex_lock(&c->mu);
  pool_hint_t *p = c->buckets[b];
  while (p && strcmp(p->pool, pool)) p = p->next;
  if (!p) {
    if (c->n >= MAX_POOLS) { /* retire the whole table: hints are only hints */
      for (size_t i = 0; i < N_BUCKETS; i++) {
        pool_hint_t *q = c->buckets[i];
        while (q) {
          pool_hint_t *next = q->next;
          q->next = c->retired;
          c->retired = q;
          q = next;
        }
        c->buckets[i] = NULL;
      }
      c->n = 0;
    }
    p = calloc(1, sizeof *p);
    if (p) {
      snprintf(p->pool, sizeof p->pool, "%s", pool);
      pthread_mutex_init(&p->mu, NULL);
      pthread_cond_init(&p->cv, NULL);
      p->next = c->buckets[b];
      c->buckets[b] = p;
      c->n++;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return p;
}

/* Under p->mu: size the bitmap for `cap` (keeps the bits below it). */
static bool fit(pool_hint_t *p, int64_t cap) {
  size_t words = (size_t)((cap + 63) / 64);
  if (words != p->words) {
    uint64_t *nb = realloc(p->bits, (words ? words : 1) * sizeof *nb);
    if (!nb) return false;
    if (words > p->words) memset(nb + p->words, 0, (words - p->words) * sizeof *nb);
    p->bits = nb;
    p->words = words;
  }
  p->capacity = cap;
  if (cap % 64 && words) p->bits[words - 1] &= (1ull << (cap % 64)) - 1; /* no bits at or above cap */
  return true;
}

static void set_bit(pool_hint_t *p, int64_t n, bool v) {
  if (n < 0 || n >= p->capacity) return;
  if (v)
    p->bits[n / 64] |= 1ull << (n % 64);
  else
    p->bits[n / 64] &= ~(1ull << (n % 64));
}

/* Under p->mu: a slot at or after `from` (wrapping) not believed taken, or -1. */
static int64_t find_free(const pool_hint_t *p, int64_t from) {
  int64_t cap = p->capacity;
  if (cap <= 0) return -1;
  size_t w0 = (size_t)(from / 64);
  for (size_t k = 0; k <= p->words; k++) {
    size_t w = (w0 + k) % p->words;
    uint64_t free_bits = ~p->bits[w];
    if (k == 0) free_bits &= ~0ull << (from % 64); /* first word: from `from` on */
    if (k == p->words) free_bits = ~p->bits[w0] & ((from % 64) ? ((1ull << (from % 64)) - 1) : 0); /* wrapped */
    while (free_bits) {
      int b = __builtin_ctzll(free_bits);
      int64_t n = (int64_t)w * 64 + b;
      if (n < cap) return n;
      free_bits &= free_bits - 1;
    }
  }
  return -1;
}

void mq_pool_ticket_type(char out[MQ_POOL_ID_MAX], const char *ticket_type_id) {
  snprintf(out, MQ_POOL_ID_MAX, "t:%s", ticket_type_id);
}
void mq_pool_event(char out[MQ_POOL_ID_MAX], const char *event_id) {
  snprintf(out, MQ_POOL_ID_MAX, "e:%s", event_id);
}
void mq_pool_user(char out[MQ_POOL_ID_MAX], const char *ticket_type_id, const char *user_id) {
  snprintf(out, MQ_POOL_ID_MAX, "u:%s:%s", ticket_type_id, user_id);
}

bool mq_slot_pool(const char *slot_id, char out[MQ_POOL_ID_MAX], int64_t *n) {
  const char *h = strrchr(slot_id, '#');
  if (!h || h == slot_id || (size_t)(h - slot_id) >= MQ_POOL_ID_MAX || !h[1]) return false;
  char *end;
  long long v = strtoll(h + 1, &end, 10);
  if (*end || v < 0) return false;
  memcpy(out, slot_id, (size_t)(h - slot_id));
  out[h - slot_id] = 0;
  *n = v;
  return true;
}

static void slot_id(char out[MQ_SLOT_ID_MAX], const char *pool, int64_t n) {
  snprintf(out, MQ_SLOT_ID_MAX, "%s#%" PRId64, pool, n);
}

/* Re-reads the pool's records into the hint (single flight: a caller that
 * finds a refresh done after it started uses that one). Orphans are
 * reclaimed on the way. */
static mq_code_t refresh(mq_capacity_t *c, mq_store_t *s, pool_hint_t *p, int64_t asked_ms, mq_error_t *err) {
  pthread_mutex_lock(&p->mu);
  while (p->refreshing) pthread_cond_wait(&p->cv, &p->mu);
  /* hearsay (bits from events, which may arrive after the units were
   * given back) is always checked once before a "sold out" */
  if (p->refreshed_ms >= asked_ms ||
      (!p->heard && p->refreshed_ms && mq_now_ms() - p->refreshed_ms < MQ_SLOT_REFRESH_MIN_MS)) {
    pthread_mutex_unlock(&p->mu);
    return MQ_OK;
  }
  p->refreshing = true;
  pthread_mutex_unlock(&p->mu);

  int64_t reclaimed = 0;
  mq_code_t rc = mq_capacity_reclaim(c, s, p->pool, &reclaimed, err);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "pool", p->pool);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "n", 1);
  bson_append_document_end(&opts, &proj);
  int64_t cap;
  pthread_mutex_lock(&p->mu);
  cap = p->capacity;
  pthread_mutex_unlock(&p->mu);
  size_t words = (size_t)((cap + 63) / 64);
  uint64_t *fresh = calloc(words ? words : 1, sizeof *fresh);
  if (!fresh) rc = mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  if (rc == MQ_OK) {
    mongoc_client_t *cl = mq_store_acquire(s);
    mongoc_collection_t *coll = mq_store_collection(s, cl, MQ_SLOTS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *d;
    while (mongoc_cursor_next(cur, &d)) {
      int64_t n = mq_bson_get_i64(d, "n", -1);
      if (n >= 0 && n < cap) fresh[n / 64] |= 1ull << (n % 64);
    }
    bson_error_t berr;
    if (mongoc_cursor_error(cur, &berr)) rc = mq_store_error(&berr, "capacity refresh", err);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    mq_store_release(s, cl);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);

  pthread_mutex_lock(&p->mu);
  if (rc == MQ_OK && p->capacity == cap) {
    memcpy(p->bits, fresh, words * sizeof *fresh);
    p->refreshed_ms = mq_now_ms();
    p->heard = false;
  }
  p->refreshing = false;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  free(fresh);
  return rc;
}

static mq_code_t insert_slot(mq_store_t *s, const char *id, const char *pool, int64_t n, const char *holder,
                             int64_t until_ms, mq_error_t *err) {
  if (MQ_FAULT("capacity.slot_insert")) /* the store fails this insert */
    return mq_error_set(err, MQ_STORE_UNAVAILABLE, NULL, "fault injected: capacity.slot_insert");
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "pool", pool);
  BSON_APPEND_INT64(&doc, "n", n);
  BSON_APPEND_UTF8(&doc, "hold", holder);
  BSON_APPEND_DATE_TIME(&doc, "until", until_ms);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  mq_code_t rc = mq_store_insert_decision(s, MQ_SLOTS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

/* Takes `units` slots of one pool; appends the ids to got[*n_got]. */
static mq_code_t take_pool(mq_capacity_t *c, mq_store_t *s, const mq_pool_want_t *w, const char *holder,
                           int64_t until_ms, mq_arena_t *a, char **got, size_t *n_got, int64_t *left, mq_error_t *err) {
  pool_hint_t *p = hint_of(c, w->pool);
  if (!p) return mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  int64_t started = mq_now_ms();
  pthread_mutex_lock(&p->mu);
  bool ok = fit(p, w->capacity);
  pthread_mutex_unlock(&p->mu);
  if (!ok) return mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  uint32_t have = 0;
  bool refreshed = false;
  int64_t from = w->capacity > 0 ? (int64_t)(rnd() % (uint64_t)w->capacity) : 0;
  while (have < w->units) {
    pthread_mutex_lock(&p->mu);
    if (p->capacity != w->capacity) fit(p, w->capacity);
    int64_t n = find_free(p, from);
    if (n >= 0) set_bit(p, n, true); /* claimed: no other thread here tries it */
    pthread_mutex_unlock(&p->mu);
    if (n < 0) {
      if (refreshed) break;
      mq_code_t rc = refresh(c, s, p, started, err);
      if (rc != MQ_OK) return rc;
      refreshed = true;
      continue;
    }
    char id[MQ_SLOT_ID_MAX];
    slot_id(id, w->pool, n);
    mq_code_t rc = insert_slot(s, id, w->pool, n, holder, until_ms, err);
    if (rc == MQ_OK) {
      got[(*n_got)++] = mq_arena_strdup(a, id);
      have++;
      from = n + 1 < w->capacity ? n + 1 : 0;
    } else if (rc == MQ_ALREADY_EXISTS) {
      from = n + 1 < w->capacity ? n + 1 : 0; /* someone else's: the bit stays set */
    } else {
      pthread_mutex_lock(&p->mu);
      set_bit(p, n, false);
      pthread_mutex_unlock(&p->mu);
      return rc;
    }
  }
  if (have == w->units) return MQ_OK;
  /* Short: how many are free now, by the (just refreshed) hint. */
  pthread_mutex_lock(&p->mu);
  int64_t taken = 0;
  for (size_t i = 0; i < p->words; i++) taken += __builtin_popcountll(p->bits[i]);
  pthread_mutex_unlock(&p->mu);
  *left = (w->capacity - taken > 0 ? w->capacity - taken : 0) + have; /* ours go back */
  return MQ_RESOURCE_EXHAUSTED;
}

mq_code_t mq_capacity_take(mq_capacity_t *c, mq_store_t *s, const char *holder, int64_t until_ms,
                           const mq_pool_want_t *want, size_t n_want, mq_arena_t *a, char ***slots, size_t *n_slots,
                           size_t *short_at, int64_t *left, mq_error_t *err) {
  size_t total = 0;
  for (size_t i = 0; i < n_want; i++) total += want[i].units;
  char **got = mq_arena_alloc(a, (total ? total : 1) * sizeof *got);
  size_t n_got = 0;
  mq_code_t rc = MQ_OK;
  for (size_t i = 0; i < n_want && rc == MQ_OK; i++) {
    rc = take_pool(c, s, &want[i], holder, until_ms, a, got, &n_got, left, err);
    if (rc == MQ_RESOURCE_EXHAUSTED) *short_at = i;
  }
  if (rc != MQ_OK) {
    mq_error_t e2 = {0};
    bool cleanup_fails = n_got && MQ_FAULT("capacity.cleanup"); /* the store fails the clean-up too */
    if (cleanup_fails) mq_error_set(&e2, MQ_STORE_UNAVAILABLE, NULL, "fault injected: capacity.cleanup");
    if (n_got && (cleanup_fails || mq_capacity_release(c, s, holder, got, n_got, &e2) != MQ_OK))
      mq_log(MQ_LOG_WARN, "capacity.cleanup_failed", "%zu slots of %s left for reclaim: %s", n_got, holder, e2.message);
    return rc;
  }
  *slots = got;
  *n_slots = n_got;
  return MQ_OK;
}

void mq_capacity_hint(mq_capacity_t *c, const char *id, bool taken) {
  char pool[MQ_POOL_ID_MAX];
  int64_t n;
  if (!mq_slot_pool(id, pool, &n)) return;
  pool_hint_t *p = hint_of(c, pool);
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  set_bit(p, n, taken);
  if (taken) p->heard = true;
  pthread_mutex_unlock(&p->mu);
}

mq_code_t mq_capacity_release(mq_capacity_t *c, mq_store_t *s, const char *holder, char *const *slots, size_t n,
                              mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  for (size_t i = 0; i < n; i++) {
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", slots[i]);
    BSON_APPEND_UTF8(&filter, "hold", holder); /* only this holder's record (I4) */
    int64_t deleted = 0;
    mq_code_t r = mq_store_delete(s, MQ_SLOTS_COLLECTION, &filter, false, &deleted, err);
    bson_destroy(&filter);
    if (r != MQ_OK) {
      rc = r;
      continue; /* the record stays; its bit too */
    }
    if (c && deleted) mq_capacity_hint(c, slots[i], false);
  }
  return rc;
}

static bool collect_ids(const bson_t *doc, void *arg) {
  void **ctx = arg;
  mq_arena_t *a = ctx[0];
  char ***ids = ctx[1];
  size_t *n = ctx[2], *cap = ctx[3];
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    char **bigger = mq_arena_alloc(a, nc * sizeof *bigger);
    if (*n) memcpy(bigger, *ids, *n * sizeof *bigger);
    *ids = bigger;
    *cap = nc;
  }
  (*ids)[(*n)++] = mq_bson_get_str(doc, "_id", a);
  return true;
}

mq_code_t mq_capacity_release_holder(mq_capacity_t *c, mq_store_t *s, const char *holder, mq_error_t *err) {
  mq_arena_t arena, *a = &arena;
  mq_arena_init(a);
  char **ids = NULL;
  size_t n = 0, cap = 0;
  void *ctx[4] = {a, &ids, &n, &cap};
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "hold", holder);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_each(s, MQ_SLOTS_COLLECTION, &filter, &opts, collect_ids, ctx, err);
  if (rc == MQ_OK) rc = mq_capacity_release(c, s, holder, ids, n, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mq_arena_release(a);
  return rc;
}

mq_code_t mq_capacity_mark_sold(mq_store_t *s, const char *holder, mq_error_t *err) {
  mongoc_client_t *cl = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, cl, MQ_SLOTS_COLLECTION);
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_UTF8(&filter, "hold", holder);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_DATE_TIME(&set, "until", MQ_SLOT_SOLD_UNTIL_MS);
  bson_append_document_end(&update, &set);
  bson_error_t berr;
  mq_code_t rc = MQ_OK;
  bool ok;
  for (int attempt = 0; !(ok = mongoc_collection_update_many(coll, &filter, &update, NULL, NULL, &berr)) &&
                        mq_store_conflict_retry(&berr, attempt);
       attempt++) {
  }
  if (!ok) rc = mq_store_error(&berr, "capacity mark sold", err);
  bson_destroy(&filter);
  bson_destroy(&update);
  mongoc_collection_destroy(coll);
  mq_store_release(s, cl);
  return rc;
}

mq_code_t mq_capacity_set_until(mq_store_t *s, const char *slot_id, int64_t until_ms, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_DATE_TIME(&set, "until", until_ms);
  bson_append_document_end(&update, &set);
  bson_value_t id = mq_bson_str_value(slot_id);
  mq_code_t rc = mq_store_update_by_id(s, MQ_SLOTS_COLLECTION, &id, &update, err);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_capacity_count(mq_store_t *s, const char *pool, int64_t capacity, int64_t *taken, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, lt;
  BSON_APPEND_UTF8(&filter, "pool", pool);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "n", &lt);
  BSON_APPEND_INT64(&lt, "$lt", capacity);
  bson_append_document_end(&filter, &lt);
  mq_code_t rc = mq_store_count(s, MQ_SLOTS_COLLECTION, &filter, taken, err);
  bson_destroy(&filter);
  return rc;
}

typedef struct {
  mq_arena_t *a;
  char **slot, **holder;
  size_t n, cap;
} suspects_t;

static bool collect_suspect(const bson_t *doc, void *arg) {
  suspects_t *x = arg;
  if (x->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 64;
    char **s2 = mq_arena_alloc(x->a, nc * sizeof *s2), **h2 = mq_arena_alloc(x->a, nc * sizeof *h2);
    if (x->n) {
      memcpy(s2, x->slot, x->n * sizeof *s2);
      memcpy(h2, x->holder, x->n * sizeof *h2);
    }
    x->slot = s2;
    x->holder = h2;
    x->cap = nc;
  }
  x->slot[x->n] = mq_bson_get_str(doc, "_id", x->a);
  x->holder[x->n] = mq_bson_get_str(doc, "hold", x->a);
  x->n++;
  return true;
}

typedef struct {
  mq_arena_t *a;
  char **live;
  bool *confirmed;
  size_t n, cap;
} live_t;

static bool collect_live(const bson_t *doc, void *arg) {
  live_t *x = arg;
  char *state = mq_bson_get_str(doc, "state", x->a);
  if (!mq_hold_state_holds_units(state)) return true;
  if (x->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 64;
    char **l2 = mq_arena_alloc(x->a, nc * sizeof *l2);
    bool *c2 = mq_arena_alloc(x->a, nc * sizeof *c2);
    if (x->n) {
      memcpy(l2, x->live, x->n * sizeof *l2);
      memcpy(c2, x->confirmed, x->n * sizeof *c2);
    }
    x->live = l2;
    x->confirmed = c2;
    x->cap = nc;
  }
  x->confirmed[x->n] = !strcmp(state, MQ_HOLD_CONFIRMED);
  x->live[x->n++] = mq_bson_get_str(doc, "_id", x->a);
  return true;
}

mq_code_t mq_capacity_reclaim(mq_capacity_t *c, mq_store_t *s, const char *pool, int64_t *reclaimed, mq_error_t *err) {
  *reclaimed = 0;
  mq_arena_t arena, *a = &arena;
  mq_arena_init(a);
  suspects_t sus = {.a = a};
  bson_t filter = BSON_INITIALIZER, lt, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "pool", pool);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "until", &lt);
  BSON_APPEND_DATE_TIME(&lt, "$lt", mq_now_unix_ms() - MQ_SLOT_ORPHAN_GRACE_MS);
  bson_append_document_end(&filter, &lt);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "hold", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_each(s, MQ_SLOTS_COLLECTION, &filter, &opts, collect_suspect, &sus, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc != MQ_OK || !sus.n) {
    mq_arena_release(a);
    return rc;
  }
  /* Which holders still hold their units? One read by _id per distinct
   * holder (not one _id $in query: the local store would scan every hold
   * for it; there are few suspects). */
  live_t live = {.a = a};
  bson_t ho = BSON_INITIALIZER, hp;
  BSON_APPEND_DOCUMENT_BEGIN(&ho, "projection", &hp);
  BSON_APPEND_INT32(&hp, "state", 1);
  bson_append_document_end(&ho, &hp);
  for (size_t i = 0; rc == MQ_OK && i < sus.n; i++) {
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++) seen = !strcmp(sus.holder[k], sus.holder[i]);
    if (seen) continue;
    bson_t hf = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&hf, "_id", sus.holder[i]);
    rc = mq_store_find_each(s, MQ_HOLDS_COLLECTION, &hf, &ho, collect_live, &live, err);
    bson_destroy(&hf);
  }
  bson_destroy(&ho);
  for (size_t i = 0; rc == MQ_OK && i < sus.n; i++) {
    bool alive = false;
    for (size_t k = 0; k < live.n && !alive; k++)
      if (!strcmp(live.live[k], sus.holder[i]))
        alive = !live.confirmed[k] || mq_bookings_owns_slot(s, sus.holder[i], sus.slot[i]);
    if (alive) continue;
    if (mq_capacity_release(c, s, sus.holder[i], &sus.slot[i], 1, err) == MQ_OK) (*reclaimed)++;
  }
  if (*reclaimed)
    mq_log(MQ_LOG_INFO, "capacity.reclaimed", "%" PRId64 " orphaned units of %s returned", *reclaimed, pool);
  mq_arena_release(a);
  return rc;
}

typedef struct {
  mq_arena_t *a;
  char **pools;
  size_t n, cap;
} pools_t;

static bool collect_pool(const bson_t *doc, void *arg) {
  pools_t *x = arg;
  char *pool = mq_bson_get_str(doc, "pool", x->a);
  for (size_t i = 0; i < x->n; i++)
    if (!strcmp(x->pools[i], pool)) return true;
  if (x->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 16;
    char **p2 = mq_arena_alloc(x->a, nc * sizeof *p2);
    if (x->n) memcpy(p2, x->pools, x->n * sizeof *p2);
    x->pools = p2;
    x->cap = nc;
  }
  x->pools[x->n++] = pool;
  return true;
}

mq_code_t mq_capacity_reclaim_recent(mq_capacity_t *c, mq_store_t *s, int64_t window_ms, int64_t *reclaimed,
                                     mq_error_t *err) {
  *reclaimed = 0;
  mq_arena_t arena, *a = &arena;
  mq_arena_init(a);
  int64_t now = mq_now_unix_ms();
  pools_t ps = {.a = a};
  bson_t filter = BSON_INITIALIZER, range, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "until", &range);
  BSON_APPEND_DATE_TIME(&range, "$lt", now - MQ_SLOT_ORPHAN_GRACE_MS);
  BSON_APPEND_DATE_TIME(&range, "$gte", now - window_ms);
  bson_append_document_end(&filter, &range);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "pool", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_each(s, MQ_SLOTS_COLLECTION, &filter, &opts, collect_pool, &ps, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  for (size_t i = 0; rc == MQ_OK && i < ps.n; i++) {
    int64_t r = 0;
    rc = mq_capacity_reclaim(c, s, ps.pools[i], &r, err);
    *reclaimed += r;
  }
  mq_arena_release(a);
  return rc;
}
