/*
 * availability.c — marquee.bookings.v1.AvailabilityService: remaining
 * units per ticket type, once or as a live stream (bookings issue, item 7).
 *
 * One entry per watched event holds the latest snapshot (packed) and the
 * event's watchers. Changes mark the entry dirty (mq_availability_changed:
 * from this server's writes at once, from every server's marquee.bookings
 * and catalog events through the invalidator); the availability thread
 * recounts dirty entries at most every TICK_MS (and every REFRESH_MS
 * regardless, in case an event was missed) and sends the new snapshot to
 * every watcher whose last one differs. A slow watcher whose send queue is
 * full just misses intermediate snapshots: it is sent the newest on a
 * later tick. Entries without watchers are dropped.
 *
 * Who may watch: anyone for a published event, members for other states.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "lib/mq_validate.h"
#include "marquee/bookings/v1/availability.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/mq_bson.h"

#define TICK_MS 250
#define REFRESH_MS 30000
#define FRESH_MS 1000 /* a snapshot this young is sent to new watchers as it is */

typedef Marquee__Bookings__V1__Availability avail_pb;

typedef struct watcher {
  struct watcher *next;
  mq_call_t *call;
  uint64_t sent; /* version last sent */
  bool done;
  struct entry *entry;
} watcher_t;

typedef struct entry {
  struct entry *next;
  char event_id[40];
  watcher_t *watchers;
  size_t n_watchers;
  bool dirty;
  int64_t computed_ms;
  uint8_t *packed; /* latest snapshot */
  size_t packed_len;
  uint64_t version;
} entry_t;

struct mq_availability {
  mq_app_t *app;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  entry_t *entries;
  size_t n_watchers;
  pthread_t thread;
  bool running, stop, closing;
};

/* The snapshot of `e`, built in `a`. */
static mq_code_t snapshot(mq_app_t *app, const Marquee__Catalog__V1__Event *e, mq_arena_t *a, avail_pb **out,
                          mq_error_t *err) {
  avail_pb *p = mq_arena_alloc(a, sizeof *p);
  marquee__bookings__v1__availability__init(p);
  p->event_id = e->event_id;
  int64_t now = mq_now_unix_ms();
  p->as_of = mq_pb_timestamp(a, now);
  int64_t event_left = INT64_MAX;
  mq_code_t rc = MQ_OK;
  if (e->capacity > 0) {
    char pool[MQ_POOL_ID_MAX];
    int64_t taken = 0;
    mq_pool_event(pool, e->event_id);
    if ((rc = mq_capacity_count(app->store, pool, e->capacity, &taken, err)) != MQ_OK) return rc;
    p->event_capacity = e->capacity;
    p->event_remaining = event_left = e->capacity > taken ? e->capacity - taken : 0;
  }
  p->ticket_types = mq_arena_alloc(a, (e->n_ticket_types ? e->n_ticket_types : 1) * sizeof *p->ticket_types);
  for (size_t i = 0; i < e->n_ticket_types; i++) {
    const Marquee__Catalog__V1__TicketType *t = e->ticket_types[i];
    if (t->hidden) continue;
    char pool[MQ_POOL_ID_MAX];
    int64_t taken = 0;
    mq_pool_ticket_type(pool, t->ticket_type_id);
    if ((rc = mq_capacity_count(app->store, pool, t->capacity, &taken, err)) != MQ_OK) return rc;
    Marquee__Bookings__V1__TicketTypeAvailability *x = mq_arena_alloc(a, sizeof *x);
    marquee__bookings__v1__ticket_type_availability__init(x);
    x->ticket_type_id = t->ticket_type_id;
    x->name = t->name;
    x->capacity = t->capacity;
    x->remaining = t->capacity > taken ? t->capacity - taken : 0;
    if (x->remaining > event_left) x->remaining = event_left;
    x->sold_out = x->remaining == 0;
    int64_t start = t->sales_start ? mq_pb_timestamp_ms(t->sales_start) : 0;
    int64_t end = t->sales_end   ? mq_pb_timestamp_ms(t->sales_end)
                  : e->starts_at ? mq_pb_timestamp_ms(e->starts_at)
                                 : INT64_MAX;
    x->on_sale = e->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED && now >= start && now < end;
    p->ticket_types[p->n_ticket_types++] = x;
  }
  *out = p;
  return MQ_OK;
}

mq_code_t mq_availability_snapshot(mq_app_t *app, const Marquee__Catalog__V1__Event *e, mq_arena_t *a,
                                   Marquee__Bookings__V1__Availability **out, mq_error_t *err) {
  return snapshot(app, e, a, out, err);
}

/* The event if the caller may see its availability. */
static mq_code_t load_event(mq_call_t *call, const char *event_id, Marquee__Catalog__V1__Event **e, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "event_id", event_id);
  if (rc == MQ_OK) rc = mq_events_get(app->store, event_id, mq_call_arena(call), e, err);
  if (rc == MQ_OK && (*e)->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED &&
      !mq_catalog_is_member(call, (*e)->organization_id))
    rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  return rc;
}

static mq_code_t avail_get(mq_call_t *call, const Marquee__Bookings__V1__GetAvailabilityRequest *req, avail_pb *resp,
                           mq_error_t *err) {
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = load_event(call, req->event_id, &e, err);
  avail_pb *p;
  if (rc == MQ_OK) rc = snapshot(mq_call_app(call), e, mq_call_arena(call), &p, err);
  if (rc != MQ_OK) return rc;
  *resp = *p;
  return MQ_OK;
}

/* ---- watchers ---- */

static entry_t *find_entry(mq_availability_t *av, const char *event_id) {
  for (entry_t *x = av->entries; x; x = x->next)
    if (!strcmp(x->event_id, event_id)) return x;
  return NULL;
}

/* Stores `p` as the entry's snapshot if it differs (under av->mu). */
static void store_snapshot(entry_t *x, const avail_pb *p) {
  /* as_of changes every time: compare without it */
  avail_pb copy = *p;
  copy.as_of = NULL;
  size_t n = protobuf_c_message_get_packed_size(&copy.base);
  uint8_t *bytes = mq_xmalloc(n ? n : 1);
  protobuf_c_message_pack(&copy.base, bytes);
  if (x->packed && x->packed_len == n && !memcmp(x->packed, bytes, n)) {
    free(bytes);
    return;
  }
  free(x->packed);
  x->packed = bytes;
  x->packed_len = n;
  x->version++;
}

static void send_latest(entry_t *x, watcher_t *w) {
  if (!x->packed || w->sent == x->version) return;
  avail_pb *m = marquee__bookings__v1__availability__unpack(NULL, x->packed_len, x->packed);
  if (!m) return;
  mq_error_t err;
  if (mq_call_try_send(w->call, &m->base, &err) == MQ_OK) w->sent = x->version; /* else: next tick */
  marquee__bookings__v1__availability__free_unpacked(m, NULL);
}

/* Removes `w` from its entry if still there (under av->mu); true if this
 * caller did. */
static bool take(mq_availability_t *av, watcher_t *w) {
  if (w->done) return false;
  entry_t *x = w->entry;
  for (watcher_t **pp = &x->watchers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  x->n_watchers--;
  av->n_watchers--;
  w->done = true;
  return true;
}

static void watcher_release(void *state, mq_code_t final_code) {
  (void)final_code;
  free(state);
}

static void on_cancel(mq_call_t *call, void *arg) {
  mq_availability_t *av = ((mq_app_t *)mq_call_app(call))->bookings->availability;
  watcher_t *w = arg;
  pthread_mutex_lock(&av->mu);
  bool took = take(av, w);
  pthread_mutex_unlock(&av->mu);
  if (took) {
    mq_call_finish(call, MQ_CANCELLED, NULL);
    mq_call_unref(call);
  }
}

static mq_code_t avail_watch(mq_call_t *call, const Marquee__Bookings__V1__GetAvailabilityRequest *req,
                             mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_availability_t *av = app->bookings->availability;
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = load_event(call, req->event_id, &e, err);
  if (rc != MQ_OK) return rc;
  /* a snapshot that is fresh serves every new watcher: opening many
   * streams at once costs one recount, not one each */
  pthread_mutex_lock(&av->mu);
  entry_t *known = find_entry(av, e->event_id);
  bool fresh = known && known->packed && !known->dirty && mq_now_ms() - known->computed_ms < FRESH_MS;
  pthread_mutex_unlock(&av->mu);
  avail_pb *p = NULL;
  if (!fresh && (rc = snapshot(app, e, mq_call_arena(call), &p, err)) != MQ_OK) return rc;
  watcher_t *w = mq_xcalloc(1, sizeof *w);
  w->call = call;
  mq_call_set_state(call, w, watcher_release);
  mq_call_ref(call);
  pthread_mutex_lock(&av->mu);
  if (av->closing) {
    pthread_mutex_unlock(&av->mu);
    w->done = true;
    mq_call_unref(call);
    return mq_error_set(err, MQ_SHUTTING_DOWN, NULL, NULL);
  }
  entry_t *x = find_entry(av, e->event_id);
  if (!x) {
    x = mq_xcalloc(1, sizeof *x);
    snprintf(x->event_id, sizeof x->event_id, "%s", e->event_id);
    x->computed_ms = mq_now_ms();
    x->next = av->entries;
    av->entries = x;
  }
  if (p) {
    store_snapshot(x, p); /* the freshest count wins: everyone gets it */
    x->computed_ms = mq_now_ms();
  } else if (!x->packed) { /* the shared snapshot went away meanwhile: count soon */
    x->dirty = true;
    pthread_cond_signal(&av->cv);
  }
  w->entry = x;
  w->next = x->watchers;
  x->watchers = w;
  x->n_watchers++;
  av->n_watchers++;
  for (watcher_t *o = x->watchers; o; o = o->next) send_latest(x, o);
  pthread_mutex_unlock(&av->mu);
  mq_call_on_cancel(call, on_cancel, w);
  return MQ_PENDING;
}

void mq_availability_changed(mq_app_t *app, const char *event_id) {
  mq_availability_t *av = app->bookings ? app->bookings->availability : NULL;
  if (!av || !event_id) return;
  pthread_mutex_lock(&av->mu);
  entry_t *x = find_entry(av, event_id);
  if (x && !x->dirty) {
    x->dirty = true;
    pthread_cond_signal(&av->cv);
  }
  pthread_mutex_unlock(&av->mu);
}

/* One pass: recount what is dirty or old, push, drop unwatched entries. */
static void tick(mq_availability_t *av) {
  char ids[64][40];
  size_t n = 0;
  int64_t now = mq_now_ms();
  pthread_mutex_lock(&av->mu);
  for (entry_t **pp = &av->entries; *pp;) {
    entry_t *x = *pp;
    if (!x->n_watchers) {
      *pp = x->next;
      free(x->packed);
      free(x);
      continue;
    }
    if ((x->dirty || now - x->computed_ms >= REFRESH_MS) && n < sizeof ids / sizeof *ids) {
      snprintf(ids[n++], sizeof ids[0], "%s", x->event_id);
      x->dirty = false;
    }
    pp = &x->next;
  }
  pthread_mutex_unlock(&av->mu);
  for (size_t i = 0; i < n; i++) {
    mq_arena_t a;
    mq_arena_init(&a);
    Marquee__Catalog__V1__Event *e;
    avail_pb *p = NULL;
    mq_error_t err = {0};
    mq_code_t rc = mq_events_get(av->app->store, ids[i], &a, &e, &err);
    if (rc == MQ_OK) rc = snapshot(av->app, e, &a, &p, &err);
    pthread_mutex_lock(&av->mu);
    entry_t *x = find_entry(av, ids[i]);
    if (x) {
      if (rc == MQ_OK) {
        x->computed_ms = mq_now_ms();
        store_snapshot(x, p);
        for (watcher_t *w = x->watchers; w; w = w->next) send_latest(x, w);
      } else {
        x->dirty = true; /* try again next tick */
      }
    }
    pthread_mutex_unlock(&av->mu);
    if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "availability.recount_failed", "event %s: %s", ids[i], err.message);
    mq_arena_release(&a);
  }
  /* watchers that missed a snapshot (full queue) get the newest */
  pthread_mutex_lock(&av->mu);
  for (entry_t *x = av->entries; x; x = x->next)
    for (watcher_t *w = x->watchers; w; w = w->next) send_latest(x, w);
  pthread_mutex_unlock(&av->mu);
}

static void *thread_main(void *arg) {
  mq_availability_t *av = arg;
  pthread_mutex_lock(&av->mu);
  while (!av->stop) {
    pthread_mutex_unlock(&av->mu);
    tick(av);
    pthread_mutex_lock(&av->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (int64_t)TICK_MS * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    if (!av->stop) pthread_cond_timedwait(&av->cv, &av->mu, &ts);
    /* coalesce: a burst of changes within one tick is one recount */
    if (!av->stop) {
      pthread_mutex_unlock(&av->mu);
      struct timespec pause = {0, (long)TICK_MS * 1000000L};
      nanosleep(&pause, NULL);
      pthread_mutex_lock(&av->mu);
    }
  }
  pthread_mutex_unlock(&av->mu);
  return NULL;
}

/* Server shutdown: every watcher's stream ends UNAVAILABLE (reconnect). */
static void on_server_shutdown(void *arg) {
  mq_availability_t *av = arg;
  pthread_mutex_lock(&av->mu);
  av->closing = true;
  watcher_t *list = NULL;
  for (entry_t *x = av->entries; x; x = x->next) {
    while (x->watchers) {
      watcher_t *w = x->watchers;
      x->watchers = w->next;
      w->done = true;
      w->next = list;
      list = w;
    }
    x->n_watchers = 0;
  }
  av->n_watchers = 0;
  pthread_mutex_unlock(&av->mu);
  while (list) {
    watcher_t *next = list->next;
    mq_call_t *call = list->call;
    mq_error_t err;
    mq_error_set(&err, MQ_SHUTTING_DOWN, NULL, NULL);
    mq_call_finish(call, MQ_SHUTTING_DOWN, &err);
    mq_call_unref(call);
    list = next;
  }
}

static double gauge_watchers(void *arg) {
  mq_availability_t *av = arg;
  pthread_mutex_lock(&av->mu);
  double n = (double)av->n_watchers;
  pthread_mutex_unlock(&av->mu);
  return n;
}

mq_availability_t *mq_availability_new(mq_app_t *app) {
  mq_availability_t *av = mq_xcalloc(1, sizeof *av);
  av->app = app;
  pthread_mutex_init(&av->mu, NULL);
  pthread_cond_init(&av->cv, NULL);
  mq_metrics_gauge("marquee_availability_watchers", "Live availability streams open on this server", gauge_watchers,
                   av);
  return av;
}

mq_code_t mq_availability_start(mq_availability_t *av, mq_error_t *err) {
  if (pthread_create(&av->thread, NULL, thread_main, av) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the availability thread");
  av->running = true;
  return MQ_OK;
}

void mq_availability_free(mq_availability_t *av) {
  if (!av) return;
  pthread_mutex_lock(&av->mu);
  av->stop = true;
  pthread_cond_broadcast(&av->cv);
  pthread_mutex_unlock(&av->mu);
  if (av->running) pthread_join(av->thread, NULL);
  mq_metrics_gauge_remove(av);
  while (av->entries) {
    entry_t *x = av->entries;
    av->entries = x->next;
    free(x->packed);
    free(x);
  }
  pthread_mutex_destroy(&av->mu);
  pthread_cond_destroy(&av->cv);
  free(av);
}

static const marquee__bookings__v1__availability_service_handlers_t handlers = {
    .get_availability = {avail_get, MQ_POLICY_PUBLIC, 0},
    .watch_availability = {avail_watch, MQ_POLICY_PUBLIC, 0},
};

int availability_service_register(mq_app_t *app, mq_server_t *srv) {
  mq_server_on_shutdown(srv, on_server_shutdown, app->bookings->availability);
  return marquee__bookings__v1__availability_service__mq_register(srv, &handlers);
}
