/*
 * discovery.c — see discovery.h. Entries live in a chained hash table by
 * event id (also remembering the version of events that left the index);
 * the listed ones are also in two arrays sorted ascending by (starts_ms, id)
 * and (published_ms, id). "Newest first" walks the second from its end.
 *
 * Invariants: while the index is not ready the arrays are not kept
 * (`sorted` false: a load only fills the table, and the arrays are built
 * and sorted once, before `ready` is set — inserting 100,000 entries one by
 * one into sorted arrays moved gigabytes); readers check `sorted` under the
 * lock. Every entry records the full pass that last confirmed it (`seen`):
 * at the end of a pass, a listed entry that the pass did not see and no
 * refresh touched is gone from the store and is unlisted.
 *
 * Snapshot file (native byte order; a cache of this host, checked whole):
 *   "MQDISC01" u32 0x01020304 | u32 n, database name | i64 taken (unix ms)
 *   | u64 count | count x (u8 n, id | i64 version | u32 n, packed Event)
 *   | u64 FNV-1a of everything before.
 */
#include "handlers/catalog/discovery.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "store/mq_bson.h"

#define BUCKETS (1u << 17)

typedef Marquee__Catalog__V1__Event event_pb;

typedef struct entry {
  struct entry *next; /* hash chain */
  char id[37];
  int64_t version;
  uint32_t seen; /* the full pass (gen) that last confirmed it, or a refresh during it */
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
  bool sorted;  /* the two orders are kept (see the file head) */
  uint32_t gen; /* the current full pass */
  atomic_bool ready, stale, stop;
  atomic_bool heard;                           /* the gate was open at the loader's last look (at most a minute ago) */
  atomic_uint_fast64_t changes;                /* puts and unlistings since start */
  char *snap_path, *db;                        /* snapshot: NULL when not kept */
  uint64_t snap_changes;                       /* `changes` when the last snapshot was taken */
  int64_t snap_at_ms;                          /* when, monotonic; 0: none taken by this process */
  size_t pass_changed;                         /* entries the current full pass added or changed */
  atomic_uint_fast64_t snap_loaded, corrected; /* for /metrics */
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

static void order_push(order_t *o, entry_t *e) {
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 1024;
    o->v = mq_xrealloc(o->v, o->cap * sizeof *o->v);
  }
  o->v[o->n++] = e;
}

static int cmp_start(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  return cmp_key(x, false, y->starts_ms, y->id);
}
static int cmp_published(const void *a, const void *b) {
  const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
  return cmp_key(x, true, y->published_ms, y->id);
}

/* Builds both orders from the table (write lock held). */
static void rebuild_orders(mq_discovery_t *d) {
  d->by_start.n = d->by_published.n = 0;
  for (unsigned i = 0; i < BUCKETS; i++)
    for (entry_t *e = d->buckets[i]; e; e = e->next)
      if (e->listed) {
        order_push(&d->by_start, e);
        order_push(&d->by_published, e);
      }
  /* qsort's array must not be null, even with no element (an empty index). */
  if (d->by_start.n > 1) qsort(d->by_start.v, d->by_start.n, sizeof *d->by_start.v, cmp_start);
  if (d->by_published.n > 1) qsort(d->by_published.v, d->by_published.n, sizeof *d->by_published.v, cmp_published);
  d->sorted = true;
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
  atomic_fetch_add(&d->changes, 1);
  if (d->sorted) {
    order_remove(&d->by_start, false, e);
    order_remove(&d->by_published, true, e);
  }
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

static bool is_listed(const event_pb *ev) {
  return ev->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED &&
         ev->visibility == MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC;
}

/* Applies the store's state of one event (called with the write lock
 * held). A refresh (pass == false) ignores an older version than the one
 * known. A full pass is the store's word on an entry it has not yet seen
 * in this pass (a snapshot older than the store, or a store restored to
 * an older state); once a refresh or the pass itself has confirmed the
 * entry, the version rule holds for the pass too. */
static void put(mq_discovery_t *d, const event_pb *ev, bool pass) {
  entry_t *e = find(d, ev->event_id);
  if (e) {
    bool first_in_pass = pass && e->seen != d->gen;
    if (!first_in_pass && ev->version < e->version) return;
    e->seen = d->gen;
    if (ev->version == e->version && e->listed == is_listed(ev)) return; /* nothing new */
    if (first_in_pass) d->pass_changed++;
  } else if (pass) {
    d->pass_changed++;
  }
  atomic_fetch_add(&d->changes, 1);
  if (!e) {
    e = mq_xcalloc(1, sizeof *e);
    copy_str(e->id, sizeof e->id, ev->event_id);
    unsigned h = hash_id(e->id);
    e->next = d->buckets[h];
    d->buckets[h] = e;
    e->seen = d->gen;
  }
  unlist(d, e);
  e->version = ev->version;
  if (!is_listed(ev)) return; /* remembered by version only */
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
  if (d->sorted) {
    order_insert(&d->by_start, false, e);
    order_insert(&d->by_published, true, e);
  }
  e->listed = true;
  d->listed++;
}

mq_discovery_t *mq_discovery_new(void) {
  mq_discovery_t *d = mq_xcalloc(1, sizeof *d);
  d->buckets = mq_xcalloc(BUCKETS, sizeof *d->buckets);
  d->sorted = true; /* empty */
  d->gen = 1;
  pthread_rwlock_init(&d->lock, NULL);
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  return d;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- snapshot ---------------------------------------------------------- */

#define SNAP_MAGIC "MQDISC01"
#define SNAP_BOM 0x01020304u
/* Older snapshots are not caught up hour by hour: a full load instead. */
#define SNAP_MAX_AGE_MS (30LL * 24 * MQ_OUTBOX_HOUR_MS)
/* Hours read before the snapshot's own: writers' clocks and the lag
 * between a write and the refresh that brought it into the index. */
#define SNAP_MARGIN_HOURS 2

typedef struct {
  uint8_t *p;
  size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *src, size_t n) {
  if (n == 0) return; /* src may be null then; memcpy's may not */
  if (b->n + n > b->cap) {
    while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 1 << 20;
    b->p = mq_xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

static uint64_t fnv64(const uint8_t *p, size_t n) {
  uint64_t h = 14695981039346656037ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/* Writes the listed entries to d->snap_path (a temporary file renamed over
 * it, so a reader never sees half a file); skipped when nothing changed
 * since the last one. The entries are copied under the read lock and
 * written outside it. */
static void snapshot_save(mq_discovery_t *d) {
  if (!d->snap_path || !atomic_load(&d->ready)) return;
  uint64_t changes = atomic_load(&d->changes);
  if (d->snap_at_ms && changes == d->snap_changes) return;
  int64_t t0 = mono_ms(), taken = mq_now_unix_ms();
  buf_t b = {0};
  uint32_t bom = SNAP_BOM, dblen = (uint32_t)strlen(d->db);
  buf_put(&b, SNAP_MAGIC, 8);
  buf_put(&b, &bom, 4);
  buf_put(&b, &dblen, 4);
  buf_put(&b, d->db, dblen);
  buf_put(&b, &taken, 8);
  pthread_rwlock_rdlock(&d->lock);
  uint64_t count = d->by_start.n;
  buf_put(&b, &count, 8);
  for (size_t i = 0; i < d->by_start.n; i++) {
    const entry_t *e = d->by_start.v[i];
    uint8_t idlen = (uint8_t)strlen(e->id);
    uint32_t len = (uint32_t)e->len;
    buf_put(&b, &idlen, 1);
    buf_put(&b, e->id, idlen);
    buf_put(&b, &e->version, 8);
    buf_put(&b, &len, 4);
    buf_put(&b, e->packed, len);
  }
  pthread_rwlock_unlock(&d->lock);
  uint64_t sum = fnv64(b.p, b.n);
  buf_put(&b, &sum, 8);
  size_t plen = strlen(d->snap_path) + 32;
  char *tmp = mq_xmalloc(plen);
  snprintf(tmp, plen, "%s.%d.tmp", d->snap_path, (int)getpid());
  bool ok = false;
  FILE *f = fopen(tmp, "wb");
  if (f) {
    ok = fwrite(b.p, 1, b.n, f) == b.n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, d->snap_path) == 0;
    if (!ok) unlink(tmp);
  }
  if (ok) {
    d->snap_changes = changes;
    d->snap_at_ms = mono_ms();
    mq_log(MQ_LOG_INFO, "discovery.snapshot_saved", "%llu events, %zu bytes in %lld ms", (unsigned long long)count, b.n,
           (long long)(mono_ms() - t0));
  } else {
    d->snap_at_ms = mono_ms(); /* try again at the next interval, not at once */
    mq_log(MQ_LOG_WARN, "discovery.snapshot_failed", "%s: %s", d->snap_path, strerror(errno));
  }
  free(tmp);
  free(b.p);
}

typedef struct {
  const uint8_t *p, *end;
} rd_t;

static bool rd(rd_t *r, void *dst, size_t n) {
  if ((size_t)(r->end - r->p) < n) return false;
  memcpy(dst, r->p, n);
  r->p += n;
  return true;
}

/* Fills the table from the snapshot (index not ready, orders not kept).
 * Returns the time it was taken, or -1 with the reason logged when there
 * is none to use (absent, another database's, too old, damaged). */
static int64_t snapshot_load(mq_discovery_t *d) {
  FILE *f = fopen(d->snap_path, "rb");
  if (!f) {
    if (errno != ENOENT) mq_log(MQ_LOG_WARN, "discovery.snapshot_unread", "%s: %s", d->snap_path, strerror(errno));
    return -1;
  }
  buf_t b = {0};
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&b, chunk, got);
  bool read_ok = !ferror(f);
  fclose(f);
  const char *why = NULL;
  int64_t taken = -1;
  uint64_t sum = 0, count = 0;
  rd_t r = {b.p, b.p + b.n};
  char magic[8];
  uint32_t bom = 0, dblen = 0;
  if (!read_ok || b.n < 8 + 4 + 4 + 8 + 8 + 8) {
    why = "truncated";
  } else if (memcpy(&sum, b.p + b.n - 8, 8), sum != fnv64(b.p, b.n - 8)) {
    why = "checksum mismatch";
  } else {
    r.end -= 8;
    rd(&r, magic, 8);
    rd(&r, &bom, 4);
    if (memcmp(magic, SNAP_MAGIC, 8) || bom != SNAP_BOM)
      why = "not a snapshot of this format";
    else if (!rd(&r, &dblen, 4) || dblen != strlen(d->db) || (size_t)(r.end - r.p) < dblen || memcmp(r.p, d->db, dblen))
      why = "taken of another database";
    else {
      r.p += dblen;
      if (!rd(&r, &taken, 8) || !rd(&r, &count, 8))
        why = "truncated";
      else if (taken > mq_now_unix_ms() + MQ_OUTBOX_HOUR_MS || mq_now_unix_ms() - taken > SNAP_MAX_AGE_MS)
        why = "too old (or from the future)";
    }
  }
  if (why) {
    mq_log(MQ_LOG_WARN, "discovery.snapshot_ignored", "%s: %s; loading from the store", d->snap_path, why);
    free(b.p);
    return -1;
  }
  mq_arena_t a;
  mq_arena_init(&a);
  ProtobufCAllocator al = mq_arena_allocator(&a);
  uint64_t used = 0, bad = 0;
  pthread_rwlock_wrlock(&d->lock);
  for (uint64_t i = 0; i < count; i++) {
    uint8_t idlen;
    char id[256];
    int64_t version;
    uint32_t len;
    if (!rd(&r, &idlen, 1) || !rd(&r, id, idlen) || !rd(&r, &version, 8) || !rd(&r, &len, 4) ||
        (size_t)(r.end - r.p) < len) {
      bad += count - i;
      break;
    }
    id[idlen] = '\0';
    event_pb *ev = marquee__catalog__v1__event__unpack(&al, len, r.p);
    r.p += len;
    if (!ev || !ev->event_id || strcmp(ev->event_id, id) || ev->version != version || !is_listed(ev)) {
      bad++; /* left to the catch-up and the full pass */
      continue;
    }
    put(d, ev, false);
    used++;
    if (used % 1024 == 0) {
      mq_arena_release(&a);
      mq_arena_init(&a);
      al = mq_arena_allocator(&a);
    }
  }
  pthread_rwlock_unlock(&d->lock);
  mq_arena_release(&a);
  free(b.p);
  atomic_store(&d->snap_loaded, used);
  mq_log(MQ_LOG_INFO, "discovery.snapshot_loaded", "%llu events from %s, taken %lld s ago%s", (unsigned long long)used,
         d->snap_path, (long long)((mq_now_unix_ms() - taken) / 1000),
         bad ? " (some entries unreadable: the full pass restores them)" : "");
  return taken;
}

/* ---- loads ------------------------------------------------------------- */

static bool load_one(const event_pb *ev, void *arg) {
  mq_discovery_t *d = arg;
  pthread_rwlock_wrlock(&d->lock);
  put(d, ev, true);
  pthread_rwlock_unlock(&d->lock);
  return !atomic_load(&d->stop);
}

static bool catch_up_one(const event_pb *ev, void *arg) {
  mq_discovery_t *d = arg;
  pthread_rwlock_wrlock(&d->lock);
  put(d, ev, false);
  pthread_rwlock_unlock(&d->lock);
  return !atomic_load(&d->stop);
}

static void forget(mq_discovery_t *d, const char *event_id) {
  entry_t *e = find(d, event_id);
  if (e) {
    unlist(d, e); /* deleted (only drafts are): it can never come back */
    e->version = INT64_MAX;
    e->seen = d->gen;
  }
}

/* Re-reads every event written since the snapshot was taken (by outbox
 * hour, from SNAP_MARGIN_HOURS before it). Deletions need nothing: only
 * drafts are deleted, and the snapshot holds listed events only. */
static mq_code_t catch_up(mq_discovery_t *d, mq_store_t *s, int64_t taken, mq_error_t *err) {
  int64_t last = mq_now_unix_ms() / MQ_OUTBOX_HOUR_MS;
  for (int64_t h = taken / MQ_OUTBOX_HOUR_MS - SNAP_MARGIN_HOURS; h <= last && !atomic_load(&d->stop); h++) {
    mq_code_t rc = mq_events_each_written_in_hour(s, h, catch_up_one, d, err);
    if (rc != MQ_OK) return rc;
  }
  return MQ_OK;
}

/* Stops keeping the orders (a load is about to fill the table). */
static void begin_load(mq_discovery_t *d) {
  pthread_rwlock_wrlock(&d->lock);
  d->sorted = false;
  d->by_start.n = d->by_published.n = 0;
  pthread_rwlock_unlock(&d->lock);
}

/* Builds the orders and answers from the index again. */
static void become_ready(mq_discovery_t *d, int64_t t0, const char *how) {
  pthread_rwlock_wrlock(&d->lock);
  rebuild_orders(d);
  pthread_rwlock_unlock(&d->lock);
  atomic_store(&d->ready, true);
  mq_log(MQ_LOG_INFO, "discovery.ready", "%zu published events indexed in %lld ms (%s)", mq_discovery_size(d),
         (long long)(mono_ms() - t0), how);
}

/* One read of every published public event, the store's word over what
 * the index holds: entries it did not see (and no refresh touched) are
 * unlisted at the end. *changed: the entries it added, changed or dropped. */
static mq_code_t full_pass(mq_discovery_t *d, mq_store_t *s, size_t *changed, mq_error_t *err) {
  pthread_rwlock_wrlock(&d->lock);
  uint32_t gen = ++d->gen;
  d->pass_changed = 0;
  pthread_rwlock_unlock(&d->lock);
  mq_code_t rc = mq_events_each_public(s, load_one, d, err);
  *changed = 0;
  if (rc != MQ_OK || atomic_load(&d->stop)) return rc;
  pthread_rwlock_wrlock(&d->lock);
  for (unsigned i = 0; i < BUCKETS; i++)
    for (entry_t *e = d->buckets[i]; e; e = e->next)
      if (e->listed && e->seen != gen) {
        unlist(d, e);
        d->pass_changed++;
      }
  *changed = d->pass_changed;
  pthread_rwlock_unlock(&d->lock);
  return MQ_OK;
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

/* A snapshot is only as good as the refreshes behind it: taken while other
 * instances' writes are heard (the gate), at most every interval. */
#define SNAP_EVERY_MS 300000

static void *loader_main(void *arg) {
  mq_discovery_t *d = arg;
  /* the file needs no store: read it while Kafka is being joined */
  begin_load(d);
  int64_t taken = d->snap_path ? snapshot_load(d) : -1;
  while (!atomic_load(&d->stop)) {
    bool gate = !d->gate || d->gate(d->gate_arg);
    atomic_store(&d->heard, gate);
    if (atomic_load(&d->ready) || !gate) {
      if (atomic_load(&d->ready) && gate && (!d->snap_at_ms || mono_ms() - d->snap_at_ms >= SNAP_EVERY_MS))
        snapshot_save(d);
      sleep_until_stop(d, atomic_load(&d->ready) ? 60000 : 200);
      continue;
    }
    atomic_store(&d->stale, false); /* refreshes failing from now on ask for another pass */
    int64_t t0 = mono_ms();
    mq_store_t *s = d->bulk ? d->bulk : d->store;
    mq_error_t err;
    mq_code_t rc;
    size_t changed = 0;
    begin_load(d);
    if (taken >= 0) {
      /* ready once caught up; then the store's word, read in the background */
      rc = catch_up(d, s, taken, &err);
      if (atomic_load(&d->stop)) break;
      if (rc == MQ_OK && !atomic_load(&d->stale)) {
        become_ready(d, t0, "from the snapshot, caught up by outbox hour");
        int64_t t1 = mono_ms();
        rc = full_pass(d, s, &changed, &err);
        if (atomic_load(&d->stop)) break;
        if (rc == MQ_OK) atomic_fetch_add(&d->corrected, changed);
        if (rc == MQ_OK)
          mq_log(changed ? MQ_LOG_WARN : MQ_LOG_INFO, "discovery.verified",
                 "full read of the store in %lld ms: %zu entries differed from the snapshot caught up",
                 (long long)(mono_ms() - t1), changed);
        else
          mq_log(MQ_LOG_WARN, "discovery.verify_failed", "%s (the next full pass is after a failed refresh)",
                 err.message);
        snapshot_save(d);
        taken = -1;
        continue;
      }
      if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "discovery.catch_up_failed", "%s (loading from the store)", err.message);
      atomic_store(&d->stale, false);
      taken = -1;
    }
    rc = full_pass(d, s, &changed, &err);
    if (atomic_load(&d->stop)) break;
    if (rc == MQ_OK && !atomic_load(&d->stale)) {
      become_ready(d, t0, "from the store");
      snapshot_save(d);
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
static double g_snap_loaded(void *arg) {
  return (double)atomic_load(&((mq_discovery_t *)arg)->snap_loaded);
}
static double g_corrected(void *arg) {
  return (double)atomic_load(&((mq_discovery_t *)arg)->corrected);
}

void mq_discovery_start(mq_discovery_t *d, mq_store_t *store, const char *uri, const char *db, const char *snapshot,
                        bool (*gate)(void *arg), void *arg) {
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
  mq_metrics_gauge("marquee_discovery_snapshot_events",
                   "Events the discovery index took from its snapshot file at start (0: none used)", g_snap_loaded, d);
  mq_metrics_gauge("marquee_discovery_corrected_total",
                   "Entries the full read after a snapshot load found missing, stale or gone (0 when the snapshot "
                   "and its catch-up were right)",
                   g_corrected, d);
  d->store = store;
  if (snapshot && snapshot[0]) {
    d->snap_path = mq_xstrdup(snapshot);
    d->db = mq_xstrdup(db);
  }
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
  /* What a restart would otherwise re-read. The gate has closed by now (the
   * server stops hearing events first); the loader saw it open at most a
   * minute ago, well inside the catch-up's margin. */
  if (atomic_load(&d->heard) && !atomic_load(&d->stale)) snapshot_save(d);
  free(d->snap_path);
  free(d->db);
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
  if (rc == MQ_OK)
    put(d, ev, false);
  else if (rc == MQ_NOT_FOUND)
    forget(d, event_id);
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
  if (!d->sorted) { /* a load began after the check above */
    pthread_rwlock_unlock(&d->lock);
    return false;
  }
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
