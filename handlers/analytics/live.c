/*
 * live.c — AnalyticsService.WatchEventSales: an on-sale's live counters
 * (what sold in the last minute, what remains per ticket type), pushed to
 * organizers' streams.
 *
 * Fed from the bus: the server's invalidator hands every marquee.bookings
 * event to mq_live_on_event, which adds it to its event's ring of 60
 * one-second slots (by the event's occurred_at). One thread (TICK_MS)
 * rebuilds the snapshot of each watched event that changed — or at least
 * once a second while its window holds sales, so "the last minute" slides —
 * and sends it to every watcher whose last one differs. Remaining units come
 * from the bookings module's availability snapshot (capacity records), read
 * only for events with watchers and at most once per tick.
 *
 * Invariants: one entry per event with activity in the last minute or with
 * watchers (others are dropped on the next tick); a slow watcher whose queue
 * is full misses intermediate snapshots and gets the newest; the bus
 * callback never blocks on the store. The window is what this process has
 * heard since it started (another server's window may differ by its start).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/analytics/live.h"
#include "handlers/bookings/bookings.h"
#include "handlers/identity/identity.h"
#include "lib/mq_validate.h"
#include "marquee/analytics/v1/analytics.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define TICK_MS 250
#define WINDOW_S 60
#define MAX_TYPES 32

typedef Marquee__Analytics__V1__LiveSales live_pb;

typedef struct slot {
  int64_t second; /* unix seconds this slot counts; 0: empty */
  int64_t tickets, bookings, holds, cancelled;
  struct {
    char id[40];
    int64_t tickets;
  } types[8];
  int n_types;
} slot_t;

typedef struct watcher {
  struct watcher *next;
  mq_call_t *call;
  uint64_t sent;
  bool done;
  struct entry *entry;
} watcher_t;

typedef struct entry {
  struct entry *next;
  char event_id[40];
  slot_t ring[WINDOW_S];
  int64_t last_sale_ms;
  bool dirty;
  int64_t sent_window_ms; /* when the window was last recomputed for watchers */
  watcher_t *watchers;
  uint8_t *packed;
  size_t packed_len;
  uint64_t version;
} entry_t;

struct mq_live {
  mq_app_t *app;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  entry_t *entries;
  size_t n_entries, n_watchers;
  pthread_t thread;
  bool running, stop;
};

static entry_t *find(mq_live_t *lv, const char *event_id) {
  for (entry_t *x = lv->entries; x; x = x->next)
    if (!strcmp(x->event_id, event_id)) return x;
  return NULL;
}

static entry_t *find_or_add(mq_live_t *lv, const char *event_id) {
  entry_t *x = find(lv, event_id);
  if (x || strlen(event_id) >= sizeof x->event_id) return x;
  x = mq_xcalloc(1, sizeof *x);
  snprintf(x->event_id, sizeof x->event_id, "%s", event_id);
  x->next = lv->entries;
  lv->entries = x;
  lv->n_entries++;
  return x;
}

static slot_t *slot_for(entry_t *x, int64_t second) {
  slot_t *s = &x->ring[second % WINDOW_S];
  if (s->second != second) {
    memset(s, 0, sizeof *s);
    s->second = second;
  }
  return s;
}

void mq_live_on_event(mq_live_t *lv, const Marquee__Events__V1__Envelope *ev) {
  if (!lv) return;
  const char *event_id = NULL;
  switch (ev->payload_case) {
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED:
      event_id = ev->booking_confirmed->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED:
      event_id = ev->hold_created->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED:
      event_id = ev->booking_cancelled->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_EXPIRED:
      event_id = ev->hold_expired->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED:
      event_id = ev->hold_released->event_id;
      break;
    default:
      return;
  }
  if (!event_id || !*event_id) return;
  int64_t at_ms = ev->occurred_at ? mq_pb_timestamp_ms(ev->occurred_at) : mq_now_unix_ms();
  int64_t now_s = mq_now_unix_ms() / 1000, second = at_ms / 1000;
  bool in_window = second > now_s - WINDOW_S && second <= now_s + 5;
  pthread_mutex_lock(&lv->mu);
  entry_t *x = in_window ? find_or_add(lv, event_id) : find(lv, event_id);
  if (x) {
    if (in_window) {
      slot_t *s = slot_for(x, second);
      if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED) {
        const Marquee__Events__V1__BookingConfirmed *p = ev->booking_confirmed;
        s->bookings++;
        for (size_t i = 0; i < p->n_units; i++) {
          s->tickets += p->units[i]->quantity;
          int k = 0;
          while (k < s->n_types && strcmp(s->types[k].id, p->units[i]->ticket_type_id)) k++;
          if (k == s->n_types && k < (int)(sizeof s->types / sizeof *s->types) &&
              strlen(p->units[i]->ticket_type_id) < sizeof s->types[0].id) {
            snprintf(s->types[k].id, sizeof s->types[k].id, "%s", p->units[i]->ticket_type_id);
            s->n_types++;
          }
          if (k < s->n_types) s->types[k].tickets += p->units[i]->quantity;
        }
        if (at_ms > x->last_sale_ms) x->last_sale_ms = at_ms;
      } else if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED) {
        s->holds++;
      } else if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED) {
        for (size_t i = 0; i < ev->booking_cancelled->n_units; i++)
          s->cancelled += ev->booking_cancelled->units[i]->quantity;
      }
    }
    x->dirty = true; /* remaining units changed either way */
    if (x->watchers) pthread_cond_signal(&lv->cv);
  }
  pthread_mutex_unlock(&lv->mu);
}

/* ---- snapshots ---- */

/* The window's sums (under lv->mu) into `p`; true if it holds any sale. */
static bool window_into(const entry_t *x, int64_t now_s, live_pb *p, int64_t *type_sold, const char **type_ids,
                        size_t *n_type) {
  bool any = false;
  for (int i = 0; i < WINDOW_S; i++) {
    const slot_t *s = &x->ring[i];
    if (!s->second || s->second <= now_s - WINDOW_S || s->second > now_s + 5) continue;
    p->tickets_last_minute += s->tickets;
    p->bookings_last_minute += s->bookings;
    p->holds_last_minute += s->holds;
    p->cancelled_last_minute += s->cancelled;
    any = any || s->tickets || s->holds || s->cancelled;
    for (int k = 0; k < s->n_types; k++) {
      size_t j = 0;
      while (j < *n_type && strcmp(type_ids[j], s->types[k].id)) j++;
      if (j == *n_type && j < MAX_TYPES) type_ids[(*n_type)++] = s->types[k].id;
      if (j < *n_type) type_sold[j] += s->types[k].tickets;
    }
  }
  return any;
}

/* Packs `p` without as_of into the entry if it differs (under lv->mu). */
static void store(entry_t *x, live_pb *p) {
  Google__Protobuf__Timestamp *as_of = p->as_of;
  p->as_of = NULL;
  size_t n = protobuf_c_message_get_packed_size(&p->base);
  uint8_t *bytes = mq_xmalloc(n ? n : 1);
  protobuf_c_message_pack(&p->base, bytes);
  p->as_of = as_of;
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
  live_pb *m = marquee__analytics__v1__live_sales__unpack(NULL, x->packed_len, x->packed);
  if (!m) return;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  int64_t now = mq_now_unix_ms();
  ts.seconds = now / 1000;
  ts.nanos = (int32_t)(now % 1000) * 1000000;
  m->as_of = &ts;
  mq_error_t err;
  if (mq_call_try_send(w->call, &m->base, &err) == MQ_OK) w->sent = x->version;
  m->as_of = NULL;
  marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
}

/* A fresh snapshot of `event_id` into the entry (takes and releases lv->mu). */
static mq_code_t refresh(mq_live_t *lv, const char *event_id, mq_error_t *err) {
  mq_arena_t arena, *a = &arena;
  mq_arena_init(a);
  Marquee__Catalog__V1__Event *e;
  Marquee__Bookings__V1__Availability *av = NULL;
  mq_code_t rc = mq_events_get(lv->app->store, event_id, a, &e, err);
  if (rc == MQ_OK) rc = mq_availability_snapshot(lv->app, e, a, &av, err);
  if (rc != MQ_OK) {
    mq_arena_release(a);
    return rc;
  }
  live_pb p = MARQUEE__ANALYTICS__V1__LIVE_SALES__INIT;
  p.event_id = (char *)event_id;
  p.event_capacity = av->event_capacity;
  p.event_remaining = av->event_remaining;
  int64_t sold[MAX_TYPES] = {0};
  const char *ids[MAX_TYPES];
  size_t n_ids = 0;
  int64_t now = mq_now_unix_ms();
  pthread_mutex_lock(&lv->mu);
  entry_t *x = find(lv, event_id);
  if (x) {
    window_into(x, now / 1000, &p, sold, ids, &n_ids);
    if (x->last_sale_ms) p.last_sale_at = mq_pb_timestamp(a, x->last_sale_ms);
    p.ticket_types = mq_arena_alloc(a, (av->n_ticket_types ? av->n_ticket_types : 1) * sizeof *p.ticket_types);
    for (size_t i = 0; i < av->n_ticket_types; i++) {
      const Marquee__Bookings__V1__TicketTypeAvailability *t = av->ticket_types[i];
      Marquee__Analytics__V1__LiveTicketType *lt = mq_arena_alloc(a, sizeof *lt);
      marquee__analytics__v1__live_ticket_type__init(lt);
      lt->ticket_type_id = t->ticket_type_id;
      lt->name = t->name;
      lt->capacity = t->capacity;
      lt->remaining = t->remaining;
      lt->sold_out = t->sold_out;
      for (size_t j = 0; j < n_ids; j++)
        if (!strcmp(ids[j], t->ticket_type_id)) lt->sold_last_minute = sold[j];
      p.ticket_types[p.n_ticket_types++] = lt;
    }
    p.as_of = mq_pb_timestamp(a, now);
    store(x, &p);
    x->sent_window_ms = mq_now_ms();
    for (watcher_t *w = x->watchers; w; w = w->next) send_latest(x, w);
  }
  pthread_mutex_unlock(&lv->mu);
  mq_arena_release(a);
  return MQ_OK;
}

/* ---- the thread ---- */

static bool window_busy(const entry_t *x, int64_t now_s) {
  for (int i = 0; i < WINDOW_S; i++)
    if (x->ring[i].second > now_s - WINDOW_S - 1 && (x->ring[i].tickets || x->ring[i].holds || x->ring[i].cancelled))
      return true;
  return false;
}

static void tick(mq_live_t *lv) {
  char ids[64][40];
  size_t n = 0;
  int64_t now_ms = mq_now_ms(), now_s = mq_now_unix_ms() / 1000;
  pthread_mutex_lock(&lv->mu);
  for (entry_t **pp = &lv->entries; *pp;) {
    entry_t *x = *pp;
    bool busy = window_busy(x, now_s);
    if (!x->watchers && !busy) { /* nothing to show and nobody looking */
      *pp = x->next;
      free(x->packed);
      free(x);
      lv->n_entries--;
      continue;
    }
    /* a change, or a busy window sliding (once a second) */
    bool due = x->dirty || (busy && now_ms - x->sent_window_ms >= 1000) || (!x->packed);
    if (x->watchers && due && n < sizeof ids / sizeof *ids) {
      snprintf(ids[n++], sizeof ids[0], "%s", x->event_id);
      x->dirty = false;
    }
    pp = &x->next;
  }
  pthread_mutex_unlock(&lv->mu);
  for (size_t i = 0; i < n; i++) {
    mq_error_t err = {0};
    if (refresh(lv, ids[i], &err) != MQ_OK) {
      mq_log(MQ_LOG_WARN, "live.refresh_failed", "event %s: %s", ids[i], err.message);
      pthread_mutex_lock(&lv->mu);
      entry_t *x = find(lv, ids[i]);
      if (x) x->dirty = true;
      pthread_mutex_unlock(&lv->mu);
    }
  }
  pthread_mutex_lock(&lv->mu); /* watchers that missed one (full queue) get the newest */
  for (entry_t *x = lv->entries; x; x = x->next)
    for (watcher_t *w = x->watchers; w; w = w->next) send_latest(x, w);
  pthread_mutex_unlock(&lv->mu);
}

static void *thread_main(void *arg) {
  mq_live_t *lv = arg;
  pthread_mutex_lock(&lv->mu);
  while (!lv->stop) {
    pthread_mutex_unlock(&lv->mu);
    tick(lv);
    pthread_mutex_lock(&lv->mu);
    if (lv->stop) break;
    struct timespec ts = mq_time_abs_after(TICK_MS);
    pthread_cond_timedwait(&lv->cv, &lv->mu, &ts);
  }
  pthread_mutex_unlock(&lv->mu);
  return NULL;
}

/* ---- watchers ---- */

static bool take(mq_live_t *lv, watcher_t *w) {
  if (w->done) return false;
  for (watcher_t **pp = &w->entry->watchers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  lv->n_watchers--;
  w->done = true;
  return true;
}

static void watcher_release(void *state, mq_code_t final_code) {
  (void)final_code;
  free(state);
}

static void on_cancel(mq_call_t *call, void *arg) {
  mq_live_t *lv = ((mq_app_t *)mq_call_app(call))->live;
  watcher_t *w = arg;
  pthread_mutex_lock(&lv->mu);
  bool took = take(lv, w);
  pthread_mutex_unlock(&lv->mu);
  if (took) {
    mq_call_finish(call, MQ_CANCELLED, NULL);
    mq_call_unref(call);
  }
}

mq_code_t mq_live_watch(mq_call_t *call, const Marquee__Analytics__V1__WatchEventSalesRequest *req, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_live_t *lv = app->live;
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_check_uuid(err, "event_id", req->event_id);
  if (rc == MQ_OK) rc = mq_events_get(app->store, req->event_id, mq_call_arena(call), &e, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc == MQ_OK) rc = mq_org_require(call, e->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc != MQ_OK) return rc;
  if (!lv) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "live sales need Kafka, which this server is not given");
  watcher_t *w = mq_xcalloc(1, sizeof *w);
  w->call = call;
  mq_call_set_state(call, w, watcher_release);
  mq_call_ref(call);
  pthread_mutex_lock(&lv->mu);
  if (lv->stop) {
    pthread_mutex_unlock(&lv->mu);
    w->done = true;
    mq_call_unref(call);
    return mq_error_set(err, MQ_SHUTTING_DOWN, NULL, NULL);
  }
  entry_t *x = find_or_add(lv, e->event_id);
  w->entry = x;
  w->next = x->watchers;
  x->watchers = w;
  lv->n_watchers++;
  x->dirty = true; /* the first message: computed by the thread at once */
  pthread_cond_signal(&lv->cv);
  pthread_mutex_unlock(&lv->mu);
  mq_call_on_cancel(call, on_cancel, w);
  return MQ_PENDING;
}

static double gauge_watchers(void *arg) {
  mq_live_t *lv = arg;
  pthread_mutex_lock(&lv->mu);
  double n = (double)lv->n_watchers;
  pthread_mutex_unlock(&lv->mu);
  return n;
}

mq_live_t *mq_live_new(mq_app_t *app) {
  mq_live_t *lv = mq_xcalloc(1, sizeof *lv);
  lv->app = app;
  pthread_mutex_init(&lv->mu, NULL);
  pthread_cond_init(&lv->cv, NULL);
  return lv;
}

mq_code_t mq_live_start(mq_live_t *lv, mq_error_t *err) {
  if (pthread_create(&lv->thread, NULL, thread_main, lv) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the live sales thread");
  lv->running = true;
  mq_metrics_gauge("marquee_live_sales_watchers", "WatchEventSales streams open on this server", gauge_watchers, lv);
  return MQ_OK;
}

void mq_live_stop(mq_live_t *lv) {
  if (!lv) return;
  pthread_mutex_lock(&lv->mu);
  lv->stop = true;
  pthread_cond_broadcast(&lv->cv);
  pthread_mutex_unlock(&lv->mu);
  if (lv->running) pthread_join(lv->thread, NULL);
  lv->running = false;
  mq_metrics_gauge_remove(lv);
  /* streams still open end with UNAVAILABLE: reconnect to another server */
  pthread_mutex_lock(&lv->mu);
  for (entry_t *x = lv->entries; x; x = x->next)
    while (x->watchers) {
      watcher_t *w = x->watchers;
      take(lv, w);
      mq_error_t e = {0};
      mq_error_set(&e, MQ_UNAVAILABLE, NULL, "the server is shutting down; reconnect");
      mq_call_finish(w->call, MQ_UNAVAILABLE, &e);
      mq_call_unref(w->call);
    }
  pthread_mutex_unlock(&lv->mu);
}

void mq_live_free(mq_live_t *lv) {
  if (!lv) return;
  for (entry_t *x = lv->entries, *n; x; x = n) {
    n = x->next;
    free(x->packed);
    free(x);
  }
  pthread_mutex_destroy(&lv->mu);
  pthread_cond_destroy(&lv->cv);
  free(lv);
}
