/*
 * sweeper.c — the bookings module's own thread and life cycle: the heap of
 * this server's holds by due time, the sweep that ends them, the
 * store-wide scans that finish what crashed or other servers left, and
 * open/start/close of the module state (mq_bookings_t).
 *
 * Invariants:
 * 1. A hold this server made or moved is in its heap (mq_bookings_due_at)
 *    until it is read at its due time: one store read per hold, not a scan.
 *    A heap that cannot grow (memory, DUE_MAX) drops the entry; the full
 *    scan below still finds the hold.
 * 2. Every FULL_EVERY_SWEEPS sweeps the store is scanned for everyone's due
 *    holds and for decisions left unfinished for FINISH_GRACE_MS (crashed
 *    servers, cancellations): on FerretDB every query reads the whole
 *    collection, so the scans are rare and the heap does the common work.
 * 3. Ending a hold is a decision record (holds_store.h H3) whoever finishes
 *    it; the sweeper and a client's retry can race and both are right.
 * 4. Units a crash left taken are returned every RECLAIM_EVERY_SWEEPS
 *    sweeps (capacity.h I3).
 * Read next: holds.c (how a hold is made and finished), capacity.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "handlers/bookings/bookings.h"
#include "lib/mq_cache.h"
#include "lib/mq_file.h"
#include "lib/mq_ticket_code.h"

#define SWEEP_BATCH 200
#define FINISH_GRACE_MS 10000                  /* a decision not finished after this is the sweeper's */
#define FULL_EVERY_SWEEPS 12                   /* the store-wide scans for due holds and open decisions */
#define DUE_GRACE_MS 2000                      /* the full scan leaves a server's own holds to its heap for a moment */
#define RECLAIM_EVERY_SWEEPS 12                /* on FerretDB every query scans: crash leftovers are rare */
#define RECLAIM_WINDOW_MS (2 * 86400 * 1000LL) /* older crash leftovers: the sold-out refresh reclaims them */

/* ---- the sweeper ---- */

typedef struct mq_due {
  int64_t at_ms;
  char hold_id[37];
} due_t;

#define DUE_MAX 1000000 /* beyond it the periodic full scan finds them */

void mq_bookings_due_at(mq_bookings_t *b, const char *hold_id, int64_t at_ms) {
  pthread_mutex_lock(&b->due_mu);
  if (b->n_due == b->cap_due && b->cap_due < DUE_MAX) {
    size_t nc = b->cap_due ? b->cap_due * 2 : 1024;
    due_t *bigger = realloc(b->due, nc * sizeof *bigger);
    if (bigger) {
      b->due = bigger;
      b->cap_due = nc;
    }
  }
  if (b->n_due < b->cap_due) { /* sift up */
    size_t i = b->n_due++;
    due_t x = {.at_ms = at_ms};
    snprintf(x.hold_id, sizeof x.hold_id, "%s", hold_id);
    while (i && b->due[(i - 1) / 2].at_ms > x.at_ms) {
      b->due[i] = b->due[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    b->due[i] = x;
  }
  pthread_mutex_unlock(&b->due_mu);
}

/* Pops the earliest entry if due by `now`. */
static bool pop_due(mq_bookings_t *b, int64_t now, due_t *out) {
  pthread_mutex_lock(&b->due_mu);
  bool got = b->n_due && b->due[0].at_ms <= now;
  if (got) {
    *out = b->due[0];
    due_t last = b->due[--b->n_due];
    size_t i = 0;
    for (;;) { /* sift down */
      size_t l = 2 * i + 1, m = i;
      if (l < b->n_due && b->due[l].at_ms < (m == i ? last.at_ms : b->due[m].at_ms)) m = l;
      if (l + 1 < b->n_due && b->due[l + 1].at_ms < (m == i ? last.at_ms : b->due[m].at_ms)) m = l + 1;
      if (m == i) break;
      b->due[i] = b->due[m];
      i = m;
    }
    if (b->n_due) b->due[i] = last;
  }
  pthread_mutex_unlock(&b->due_mu);
  return got;
}

static void end_due(mq_bookings_t *b, mq_hold_t *h, mq_arena_t *a) {
  mq_store_t *s = b->app->store;
  bool in_payment = !strcmp(h->state, MQ_HOLD_PAYMENT_PENDING);
  Marquee__Events__V1__HoldExpired *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__hold_expired__init(p);
  p->hold_id = h->id;
  p->event_id = h->event_id;
  p->units = mq_booked_units(a, h->lines, h->n_lines);
  p->n_units = h->n_lines;
  p->reason = (char *)(in_payment ? "payment_timeout" : "expired");
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.HoldExpired", h->id, "system", NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_EXPIRED;
  ev.env.hold_expired = p;
  mq_error_t err = {0};
  /* a timeout names the reference it ends, as a payment's outcome does */
  mq_code_t rc =
      in_payment ? mq_decide(s, h->id, "payment", "timeout", "system", h->payment_reference, NULL, false, &ev, 1, &err)
                 : mq_decide(s, h->id, "fate", "expired", "system", NULL, NULL, false, &ev, 1, &err);
  if (rc == MQ_OK) {
    atomic_fetch_add(&b->expired_total, 1);
  } else if (rc != MQ_ALREADY_EXISTS) {
    mq_log(MQ_LOG_WARN, "bookings.expire_failed", "hold %s: %s", h->id, err.message);
    return;
  }
  mq_decision_t fate;
  rc = mq_decision_get(s, h->id, "fate", a, &fate, &err);
  if (rc == MQ_OK) rc = mq_bookings_finish_decided(b, h, &fate, NULL, a, NULL, &err);
  if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "bookings.finish_failed", "hold %s: %s", h->id, err.message);
}

void mq_bookings_sweep(mq_bookings_t *b) {
  mq_store_t *s = b->app->store;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_hold_t *due;
  size_t n = 0;
  mq_error_t err = {0};
  /* this server's holds that fell due: one read each */
  due_t d;
  for (int k = 0; k < SWEEP_BATCH && !b->stop && pop_due(b, mq_now_unix_ms(), &d); k++) {
    mq_hold_t h;
    if (mq_holds_get(s, d.hold_id, &a, &h, &err) != MQ_OK) continue;
    if (!strcmp(h.state, MQ_HOLD_ACTIVE) && h.expires_ms <= mq_now_unix_ms())
      end_due(b, &h, &a);
    else if (!strcmp(h.state, MQ_HOLD_PAYMENT_PENDING) && h.payment_deadline_ms > mq_now_unix_ms())
      mq_bookings_due_at(b, h.id, h.payment_deadline_ms);
    else if (!strcmp(h.state, MQ_HOLD_PAYMENT_PENDING))
      end_due(b, &h, &a);
  }
  /* everyone's (other servers', crashed or not): full scans, every 12
   * sweeps — on FerretDB every query reads the whole collection */
  int64_t start = mq_now_unix_ms();
  bool full = start - b->last_full_ms >= FULL_EVERY_SWEEPS * (int64_t)b->app->cfg->hold_sweep_ms;
  if (full) b->last_full_ms = start;
  if (full && mq_holds_due(s, mq_now_unix_ms() - DUE_GRACE_MS, SWEEP_BATCH, &a, &due, &n, &err) == MQ_OK)
    for (size_t i = 0; i < n && !b->stop; i++) end_due(b, &due[i], &a);
  mq_decision_t *open;
  n = 0;
  if (full && mq_decisions_unfinished(s, mq_now_unix_ms() - FINISH_GRACE_MS, SWEEP_BATCH, &a, &open, &n, &err) == MQ_OK)
    for (size_t i = 0; i < n && !b->stop; i++) {
      mq_booking_t bk;
      if (!strcmp(open[i].kind, "cancel") && mq_bookings_finish_cancel(b, open[i].hold, &a, &bk, &err) == MQ_OK)
        atomic_fetch_add(&b->finished_total, 1);
      if (!strcmp(open[i].kind, "event_cancel") && mq_bookings_finish_event_cancel(b, &open[i], &err) != MQ_OK)
        mq_log(MQ_LOG_WARN, "bookings.event_cancel_failed", "event %s: %s (will retry)", open[i].hold, err.message);
    }
  mq_waitlist_sweep(b);
  int64_t now = mq_now_unix_ms();
  if (now - b->last_reclaim_ms >=
      RECLAIM_EVERY_SWEEPS * (int64_t)b->app->cfg->hold_sweep_ms) { /* crash leftovers (capacity.h I3) */
    b->last_reclaim_ms = now;
    int64_t r = 0;
    if (mq_capacity_reclaim_recent(b->capacity, s, RECLAIM_WINDOW_MS, &r, &err) == MQ_OK && r)
      atomic_fetch_add(&b->reclaimed_total, r);
  }
  mq_arena_release(&a);
}

static void *sweeper_main(void *arg) {
  mq_bookings_t *b = arg;
  pthread_mutex_lock(&b->mu);
  while (!b->stop) {
    pthread_mutex_unlock(&b->mu);
    if (atomic_load(&b->app->indexes_ready)) mq_bookings_sweep(b);
    pthread_mutex_lock(&b->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (int64_t)b->app->cfg->hold_sweep_ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    if (!b->stop) pthread_cond_timedwait(&b->cv, &b->mu, &ts);
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* ---- the module's state: open, start, close ---- */

/* The tax table: `path`'s, or the built-in one; a bad row stops start-up,
 * named (lib/mq_tax.h T1-T4). */
static mq_code_t load_taxes(const char *path, mq_tax_table_t **out, mq_error_t *err) {
  if (!path || !*path) return mq_tax_table_parse(mq_tax_default_rows, out, err);
  char *text;
  mq_code_t rc = mq_file_read(path, 1 << 24, "MARQUEE_TAX_RATES_FILE", &text, NULL, err);
  if (rc != MQ_OK) return rc;
  rc = mq_tax_table_parse(text, out, err);
  free(text);
  if (rc != MQ_OK) {
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    mq_error_set(err, rc, "MARQUEE_TAX_RATES_FILE", "%s: %s", path, why);
  }
  return rc;
}

static double gauge_holds(void *arg) {
  return (double)atomic_load(&((mq_bookings_t *)arg)->holds_total);
}
static double gauge_confirmed(void *arg) {
  return (double)atomic_load(&((mq_bookings_t *)arg)->confirmed_total);
}

static double gauge_expired(void *arg) {
  return (double)atomic_load(&((mq_bookings_t *)arg)->expired_total);
}
static double gauge_reclaimed(void *arg) {
  return (double)atomic_load(&((mq_bookings_t *)arg)->reclaimed_total);
}

mq_code_t mq_bookings_open(mq_app_t *app, mq_error_t *err) {
  mq_bookings_t *b = calloc(1, sizeof *b);
  if (!b) return mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  b->app = app;
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  pthread_mutex_init(&b->lines_mu, NULL);
  pthread_mutex_init(&b->due_mu, NULL);
  pthread_mutex_init(&b->fill_mu, NULL);
  pthread_cond_init(&b->fill_cv, NULL);
  b->capacity = mq_capacity_new();
  const char *spec = app->cfg->ticket_keys ? app->cfg->ticket_keys : "";
  char dev[64];
  if (!spec[0]) { /* one process only: codes die with it */
    char seed[44];
    mq_ticket_keys_new_seed(seed);
    snprintf(dev, sizeof dev, "local:%s", seed);
    spec = dev;
    mq_log(MQ_LOG_WARN, "bookings.ephemeral_ticket_key",
           "MARQUEE_TICKET_KEYS is empty: ticket codes are signed with a key of this process only");
  }
  mq_code_t rc = mq_ticket_keys_parse(spec, &b->keys, err);
  memset(dev, 0, sizeof dev);
  if (rc != MQ_OK || !b->capacity) {
    mq_capacity_free(b->capacity);
    free(b);
    return rc != MQ_OK ? rc : mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  }
  if ((rc = load_taxes(app->cfg->tax_rates_file, &b->taxes, err)) != MQ_OK) {
    mq_ticket_keys_free(b->keys);
    mq_capacity_free(b->capacity);
    free(b);
    return rc;
  }
  app->bookings = b;
  if (app->cfg->cache_ttl_ms > 0) b->pricing = mq_cache_new((size_t)app->cfg->cache_entries, app->cfg->cache_ttl_ms);
  b->availability = mq_availability_new(app);
  mq_metrics_gauge("marquee_holds_expired_total", "Holds this process's sweeper ended", gauge_expired, b);
  mq_metrics_gauge("marquee_holds_created_total", "Holds this process created", gauge_holds, b);
  mq_metrics_gauge("marquee_bookings_confirmed_total", "Bookings this process confirmed", gauge_confirmed, b);
  mq_metrics_gauge("marquee_capacity_reclaimed_total", "Units a crash left held, returned by this process",
                   gauge_reclaimed, b);
  return MQ_OK;
}

mq_code_t mq_bookings_start(mq_app_t *app, mq_error_t *err) {
  mq_bookings_t *b = app->bookings;
  if (!b || b->running) return MQ_OK;
  if (pthread_create(&b->sweeper, NULL, sweeper_main, b) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the hold sweeper");
  b->running = true;
  return mq_availability_start(b->availability, err);
}

void mq_bookings_close(mq_app_t *app) {
  mq_bookings_t *b = app->bookings;
  if (!b) return;
  pthread_mutex_lock(&b->mu);
  b->stop = true;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  if (b->running) pthread_join(b->sweeper, NULL);
  mq_availability_free(b->availability);
  mq_metrics_gauge_remove(b);
  mq_capacity_free(b->capacity);
  mq_ticket_keys_free(b->keys);
  mq_tax_table_free(b->taxes);
  mq_cache_free(b->pricing);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->lines_mu);
  pthread_mutex_destroy(&b->due_mu);
  pthread_mutex_destroy(&b->fill_mu);
  pthread_cond_destroy(&b->fill_cv);
  free(b->due);
  free(b->lines);
  free(b);
  app->bookings = NULL;
}
