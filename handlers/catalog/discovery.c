/*
 * discovery.c — see discovery.h. Entries live in a chained hash table by
 * event id (also remembering the version of events that left the index);
 * the listed ones are also in two arrays sorted ascending by (starts_ms, id)
 * and (published_ms, id). "Newest first" walks the second from its end.
 */
#include "handlers/catalog/discovery.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"
#include "store/mq_bson.h"

#define BUCKETS (1u << 17)

typedef Marquee__Catalog__V1__Event event_pb;

typedef struct entry {
  struct entry *next; /* hash chain */
  char id[37];
  int64_t version;
  bool listed;
  char org[37], category[37], country[8], currency[8];
  char city_key[128];
  int64_t starts_ms, published_ms, min_price;
  int mode;
  uint8_t *packed;
  size_t len;
} entry_t;

typedef struct {
  entry_t **v;
  size_t n, cap;
} order_t;

struct mq_discovery {
  pthread_rwlock_t lock;
  entry_t **buckets;
  order_t by_start, by_published;
  size_t listed;
  atomic_bool ready, stale, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t loader;
  bool loader_running;
  mq_store_t *store; /* refreshes: the server's pool */
  mq_store_t *bulk;  /* loads: one connection with a long socket timeout */
  bool (*gate)(void *arg);
  void *gate_arg;
};

static unsigned hash_id(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h & (BUCKETS - 1);
}

static entry_t *find(mq_discovery_t *d, const char *id) {
  for (entry_t *e = d->buckets[hash_id(id)]; e; e = e->next)
    if (!strcmp(e->id, id)) return e;
  return NULL;
}

static int64_t key_of(const entry_t *e, bool published) {
  return published ? e->published_ms : e->starts_ms;
}

/* (key, id) of e compared with (k, id) */
static int cmp_key(const entry_t *e, bool published, int64_t k, const char *id) {
  int64_t ek = key_of(e, published);
  if (ek != k) return ek < k ? -1 : 1;
  return strcmp(e->id, id);
}

/* first position whose (key, id) >= (k, id) */
static size_t lower_bound(const order_t *o, bool published, int64_t k, const char *id) {
  size_t lo = 0, hi = o->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp_key(o->v[mid], published, k, id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void order_insert(order_t *o, bool published, entry_t *e) {
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 1024;
    o->v = mq_xrealloc(o->v, o->cap * sizeof *o->v);
  }
  size_t at = lower_bound(o, published, key_of(e, published), e->id);
  memmove(o->v + at + 1, o->v + at, (o->n - at) * sizeof *o->v);
  o->v[at] = e;
  o->n++;
}

static void order_remove(order_t *o, bool published, entry_t *e) {
  size_t at = lower_bound(o, published, key_of(e, published), e->id);
  if (at < o->n && o->v[at] == e) {
    memmove(o->v + at, o->v + at + 1, (o->n - at - 1) * sizeof *o->v);
    o->n--;
  }
}

static void unlist(mq_discovery_t *d, entry_t *e) {
  if (!e->listed) return;
  order_remove(&d->by_start, false, e);
  order_remove(&d->by_published, true, e);
  e->listed = false;
  d->listed--;
  free(e->packed);
  e->packed = NULL;
}

static void copy_str(char *dst, size_t n, const char *src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < n; i++) dst[i] = src[i];
  dst[i] = '\0';
}

/* Applies the store's current state of one event (called with the write
 * lock held); an older version than the one known is ignored. */
static void put(mq_discovery_t *d, const event_pb *ev) {
  entry_t *e = find(d, ev->event_id);
  if (e && ev->version < e->version) return;
  if (!e) {
    e = mq_xcalloc(1, sizeof *e);
    copy_str(e->id, sizeof e->id, ev->event_id);
    unsigned h = hash_id(e->id);
    e->next = d->buckets[h];
    d->buckets[h] = e;
  }
  unlist(d, e);
  e->version = ev->version;
  if (ev->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED ||
      ev->visibility != MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC)
    return; /* remembered by version only */
  copy_str(e->org, sizeof e->org, ev->organization_id);
  copy_str(e->category, sizeof e->category, ev->category_id);
  copy_str(e->country, sizeof e->country, ev->country);
  copy_str(e->currency, sizeof e->currency, ev->currency);
  mq_events_city_key(ev->city, e->city_key); /* the key the store derives */
  e->starts_ms = ev->starts_at ? mq_pb_timestamp_ms(ev->starts_at) : 0;
  e->published_ms = ev->published_at ? mq_pb_timestamp_ms(ev->published_at) : 0;
  e->min_price = ev->min_price_minor;
  e->mode = (int)ev->attendance_mode;
  e->len = marquee__catalog__v1__event__get_packed_size(ev);
  e->packed = mq_xmalloc(e->len ? e->len : 1);
  marquee__catalog__v1__event__pack(ev, e->packed);
  order_insert(&d->by_start, false, e);
  order_insert(&d->by_published, true, e);
  e->listed = true;
  d->listed++;
}

mq_discovery_t *mq_discovery_new(void) {
  mq_discovery_t *d = mq_xcalloc(1, sizeof *d);
  d->buckets = mq_xcalloc(BUCKETS, sizeof *d->buckets);
  pthread_rwlock_init(&d->lock, NULL);
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  return d;
}

static bool load_one(const event_pb *ev, void *arg) {
  mq_discovery_t *d = arg;
  pthread_rwlock_wrlock(&d->lock);
  put(d, ev);
  pthread_rwlock_unlock(&d->lock);
  return !atomic_load(&d->stop);
}

static void sleep_until_stop(mq_discovery_t *d, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&d->mu);
  if (!atomic_load(&d->stop) && !atomic_load(&d->stale)) pthread_cond_timedwait(&d->cv, &d->mu, &ts);
  pthread_mutex_unlock(&d->mu);
}

static void *loader_main(void *arg) {
  mq_discovery_t *d = arg;
  while (!atomic_load(&d->stop)) {
    if (atomic_load(&d->ready) || (d->gate && !d->gate(d->gate_arg))) {
      sleep_until_stop(d, atomic_load(&d->ready) ? 60000 : 200);
      continue;
    }
    atomic_store(&d->stale, false); /* refreshes failing from now on ask for another pass */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mq_error_t err;
    mq_code_t rc = mq_events_each_public(d->bulk ? d->bulk : d->store, load_one, d, &err);
    if (atomic_load(&d->stop)) break;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == MQ_OK && !atomic_load(&d->stale)) {
      atomic_store(&d->ready, true);
      mq_log(MQ_LOG_INFO, "discovery.ready", "%zu published events indexed in %lld ms", mq_discovery_size(d),
             (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    } else {
      if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "discovery.load_failed", "%s (retrying)", err.message);
      sleep_until_stop(d, 1000);
    }
  }
  return NULL;
}

static double g_ready(void *arg) {
  return mq_discovery_ready(arg) ? 1 : 0;
}
static double g_events(void *arg) {
  return (double)mq_discovery_size(arg);
}

void mq_discovery_start(mq_discovery_t *d, mq_store_t *store, const char *uri, const char *db, bool (*gate)(void *arg),
                        void *arg) {
  /* A load reads every published event; on FerretDB one batch is a scan of
   * the collection that can outlast the pool's 10 s socket timeout (measured
   * at 100,000 events), so loads get their own connection, allowed 10
   * minutes per reply. The URI's own socketTimeoutMS wins if it has one. */
  char *bulk_uri = mq_xmalloc(strlen(uri) + 40);
  const char *hosts = strstr(uri, "://");
  const char *sep = strchr(uri, '?') ? "&" : (hosts && strchr(hosts + 3, '/') ? "?" : "/?");
  sprintf(bulk_uri, "%s%ssocketTimeoutMS=600000", uri, sep);
  mq_error_t err;
  if (!strstr(uri, "socketTimeoutMS") && mq_store_open(bulk_uri, db, 1, &d->bulk, &err) != MQ_OK) d->bulk = NULL;
  free(bulk_uri);
  mq_metrics_gauge("marquee_discovery_ready", "1 while public ListEvents is answered from the discovery index", g_ready,
                   d);
  mq_metrics_gauge("marquee_discovery_events", "Published public events in the discovery index", g_events, d);
  d->store = store;
  d->gate = gate;
  d->gate_arg = arg;
  if (pthread_create(&d->loader, NULL, loader_main, d) != 0) mq_die("cannot start the discovery loader thread");
  pthread_setname_np(d->loader, "mq-discovery");
  d->loader_running = true;
}

void mq_discovery_free(mq_discovery_t *d) {
  if (!d) return;
  pthread_mutex_lock(&d->mu);
  atomic_store(&d->stop, true);
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  if (d->loader_running) pthread_join(d->loader, NULL);
  mq_metrics_gauge_remove(d);
  mq_store_close(d->bulk);
  for (unsigned i = 0; i < BUCKETS; i++) {
    entry_t *e = d->buckets[i];
    while (e) {
      entry_t *n = e->next;
      free(e->packed);
      free(e);
      e = n;
    }
  }
  free(d->buckets);
  free(d->by_start.v);
  free(d->by_published.v);
  pthread_rwlock_destroy(&d->lock);
  pthread_mutex_destroy(&d->mu);
  pthread_cond_destroy(&d->cv);
  free(d);
}

bool mq_discovery_ready(mq_discovery_t *d) {
  return d && atomic_load(&d->ready);
}

size_t mq_discovery_size(mq_discovery_t *d) {
  pthread_rwlock_rdlock(&d->lock);
  size_t n = d->listed;
  pthread_rwlock_unlock(&d->lock);
  return n;
}

void mq_discovery_refresh(mq_discovery_t *d, mq_store_t *store, const char *event_id) {
  if (!d || !event_id) return;
  mq_arena_t a;
  mq_arena_init(&a);
  event_pb *ev = NULL;
  mq_error_t err;
  mq_code_t rc = mq_events_get(store, event_id, &a, &ev, &err);
  pthread_rwlock_wrlock(&d->lock);
  if (rc == MQ_OK) {
    put(d, ev);
  } else if (rc == MQ_NOT_FOUND) {
    entry_t *e = find(d, event_id);
    if (e) {
      unlist(d, e); /* deleted (only drafts are): it can never come back */
      e->version = INT64_MAX;
    }
  }
  pthread_rwlock_unlock(&d->lock);
  mq_arena_release(&a);
  if (rc != MQ_OK && rc != MQ_NOT_FOUND) {
    /* the entry may now be stale: stop answering until a reload */
    mq_log(MQ_LOG_WARN, "discovery.refresh_failed", "event %s: %s; reloading the index", event_id, err.message);
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->ready, false);
    atomic_store(&d->stale, true);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
  }
}

event_pb *mq_discovery_get(mq_discovery_t *d, const char *event_id, mq_arena_t *a) {
  if (!mq_discovery_ready(d) || !event_id) return NULL;
  ProtobufCAllocator al = mq_arena_allocator(a);
  event_pb *ev = NULL;
  pthread_rwlock_rdlock(&d->lock);
  const entry_t *e = find(d, event_id);
  if (e && e->listed) ev = marquee__catalog__v1__event__unpack(&al, e->len, e->packed);
  pthread_rwlock_unlock(&d->lock);
  return ev;
}

static bool matches(const entry_t *e, const mq_events_query_t *q) {
  if (q->organization_id && strcmp(e->org, q->organization_id)) return false;
  if (q->category_id && strcmp(e->category, q->category_id)) return false;
  if (q->city_key && strcmp(e->city_key, q->city_key)) return false;
  if (q->country && strcmp(e->country, q->country)) return false;
  if (q->attendance_mode && e->mode != q->attendance_mode) return false;
  if (q->currency && strcmp(e->currency, q->currency)) return false;
  if (q->free_only) {
    if (e->min_price != 0) return false;
  } else {
    if (q->min_price_minor > 0 && e->min_price < q->min_price_minor) return false;
    if (q->max_price_minor > 0 && e->min_price > q->max_price_minor) return false;
  }
  if (q->starts_after_ms && e->starts_ms < q->starts_after_ms) return false;
  if (q->starts_before_ms && e->starts_ms >= q->starts_before_ms) return false;
  return true;
}

bool mq_discovery_list(mq_discovery_t *d, const mq_events_query_t *q, mq_arena_t *a, event_pb ***out, size_t *n) {
  if (!mq_discovery_ready(d) || !q->public_only) return false;
  *n = 0;
  *out = mq_arena_alloc(a, (q->limit ? q->limit : 1) * sizeof **out);
  ProtobufCAllocator al = mq_arena_allocator(a);
  pthread_rwlock_rdlock(&d->lock);
  if (!q->newest) {
    const order_t *o = &d->by_start;
    size_t i = q->starts_after_ms ? lower_bound(o, false, q->starts_after_ms, "") : 0;
    if (q->has_cursor) {
      /* strictly after (after_ms, after_id) */
      size_t c = lower_bound(o, false, q->after_ms, q->after_id);
      if (c < o->n && !cmp_key(o->v[c], false, q->after_ms, q->after_id)) c++;
      if (c > i) i = c;
    }
    for (; i < o->n && *n < q->limit; i++) {
      const entry_t *e = o->v[i];
      if (q->starts_before_ms && e->starts_ms >= q->starts_before_ms) break; /* sorted: nothing later matches */
      if (!matches(e, q)) continue;
      (*out)[(*n)++] = marquee__catalog__v1__event__unpack(&al, e->len, e->packed);
    }
  } else {
    const order_t *o = &d->by_published;
    /* walk down from the end, or from strictly before the cursor */
    size_t i = q->has_cursor ? lower_bound(o, true, q->after_ms, q->after_id) : o->n;
    while (i > 0 && *n < q->limit) {
      const entry_t *e = o->v[--i];
      if (!matches(e, q)) continue;
      (*out)[(*n)++] = marquee__catalog__v1__event__unpack(&al, e->len, e->packed);
    }
  }
  pthread_rwlock_unlock(&d->lock);
  /* a packed entry always unpacks; drop any that did not rather than crash */
  size_t k = 0;
  for (size_t i = 0; i < *n; i++)
    if ((*out)[i]) (*out)[k++] = (*out)[i];
  *n = k;
  return true;
}
