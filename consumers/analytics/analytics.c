/*
 * analytics.c — marquee-analytics, the consumer that keeps the sales
 * aggregates AnalyticsService reads (store/analytics/analytics_store.h,
 * docs/ANALYTICS.md).
 *
 * Per event (topics marquee.users, marquee.events, marquee.bookings,
 * marquee.payments, marquee.views; one consumer group for the whole platform, scaled by
 * partitions), counters are added to the bucket documents of the event's
 * own time: per event (holds, expiries, releases, bookings, tickets by type,
 * cancellations, refunds, check-ins, page views, revenue by currency), per organization
 * and for the platform (sign-ups, organizations, publications, sales).
 *
 * Batching: contributions collect in memory and are written together —
 * when BATCH of them wait, when the oldest has waited FLUSH_MS, when the
 * partitions are read to their ends, and before a partition changes hands.
 * A flush reads the documents it does not know yet, applies, writes them
 * whole, then writes each partition's position (A1-A3 of the store), so:
 *   - a crash at any point loses nothing (the consumer resumes at the saved
 *     position, not at the group's committed offsets) and doubles nothing
 *     (a document ignores messages at or below its own high-water offset);
 *   - a store outage blocks the loop (nothing is dropped; the flush is
 *     retried until it succeeds or the process is asked to stop).
 * Duplicates the relay publishes (the same event id again after a crash
 * between Kafka's acknowledgement and the relay's ledger, always on the
 * same partition, since the key is the same) are recognised by event id
 * within a window: the last MARQUEE_ANALYTICS_DEDUPE_S seconds of event
 * time (default 3600) and at most DEDUPE_MAX ids, kept in memory; on every
 * assignment the partition is re-read from REWIND messages before its
 * position, which refills the window (the re-read messages change no
 * document: A2). Why bounded, and what falls outside: docs/ANALYTICS.md.
 *
 * `marquee-analytics --rebuild` (in place of the running consumer: stop it
 * first) fills a new generation of collections from the beginning of the
 * log, in a consumer group of its own, and makes it current once it has
 * caught up; readers move to it on their next call and the old generation
 * is dropped.
 *
 * Invariants: aggregates are written only here; no personal data is kept
 * (ids, counts and amounts); input never becomes a field name (ids and
 * currency codes are checked by mq_an_add).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumers/mq_consumer.h"
#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "store/analytics/analytics_store.h"
#include "store/mq_bson.h"

extern char **environ;

#define BATCH 200000       /* contributions that trigger a flush */
#define FLUSH_MS 1000      /* the longest a contribution waits while events keep coming */
#define REWIND 50000       /* messages re-read before a partition's position on assignment */
#define DEDUPE_MAX 2000000 /* ids remembered at most (two generations of half that) */
#define RETRY_MS 500

/* Recently seen event ids: two generations of an open-addressing set of
 * 64-bit hashes; the older is dropped when the newer fills up or spans half
 * the window. (Two different ids sharing a 64-bit hash within the window:
 * about 1 in 10^7 at a million ids — documented.) */
typedef struct idset {
  uint64_t *slots;
  size_t cap, n;
  int64_t first_at_ms;
} idset_t;

typedef struct {
  mq_config_t *cfg;
  mq_store_t *store;
  mq_an_set_t *w;
  int64_t gen;
  bool rebuilding;
  int64_t first_pending_ms; /* 0: nothing waits */
  int64_t window_ms;
  idset_t seen[2]; /* [0] newer */
  uint64_t duplicates, flushes, flush_failures;
  int64_t caught_up_written_ms;
} analytics_t;

/* ---- the dedupe window ---- */

static uint64_t id_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h ? h : 1;
}

static bool idset_has(const idset_t *s, uint64_t h) {
  if (!s->cap) return false;
  for (size_t i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (!s->slots[i]) return false;
    if (s->slots[i] == h) return true;
  }
}

static void idset_put(idset_t *s, uint64_t h) {
  if (!s->cap) {
    s->cap = 1u << 16;
    s->slots = mq_xcalloc(s->cap, sizeof *s->slots);
  }
  if ((s->n + 1) * 2 > s->cap) { /* grow at half full */
    idset_t g = {.cap = s->cap * 2, .first_at_ms = s->first_at_ms};
    g.slots = mq_xcalloc(g.cap, sizeof *g.slots);
    for (size_t i = 0; i < s->cap; i++)
      if (s->slots[i]) idset_put(&g, s->slots[i]);
    free(s->slots);
    *s = g;
  }
  size_t i = (size_t)h & (s->cap - 1);
  while (s->slots[i] && s->slots[i] != h) i = (i + 1) & (s->cap - 1);
  if (!s->slots[i]) {
    s->slots[i] = h;
    s->n++;
  }
}

/* True when `id` was seen within the window (a duplicate); else remembers it. */
static bool seen_before(analytics_t *x, const char *id, int64_t at_ms) {
  uint64_t h = id_hash(id);
  if (idset_has(&x->seen[0], h) || idset_has(&x->seen[1], h)) return true;
  idset_t *cur = &x->seen[0];
  if (cur->n >= DEDUPE_MAX / 2 || (cur->n && at_ms - cur->first_at_ms > x->window_ms / 2)) {
    free(x->seen[1].slots);
    x->seen[1] = *cur;
    memset(cur, 0, sizeof *cur);
  }
  if (!cur->n) cur->first_at_ms = at_ms;
  idset_put(cur, h);
  return false;
}

/* ---- flushing ---- */

static mq_code_t flush_once(analytics_t *x) {
  mq_error_t err = {0};
  size_t pending = mq_an_pending(x->w);
  int64_t t0 = mq_now_ms();
  mq_code_t rc = mq_an_flush(x->w, x->store, &err);
  int64_t took = mq_now_ms() - t0;
  if (took >= 1000)
    mq_log(MQ_LOG_INFO, "analytics.slow_flush", "%zu contributions written in %lld ms", pending, (long long)took);
  if (rc == MQ_OK) {
    x->flushes++;
    x->first_pending_ms = 0;
  } else {
    x->flush_failures++;
    mq_log(MQ_LOG_WARN, "analytics.flush", "%s (kept in memory; retrying)", err.message);
  }
  return rc;
}

/* Flushes until it succeeds (backpressure: the loop waits for the store). */
static void flush_hard(analytics_t *x) {
  while (flush_once(x) != MQ_OK && !mq_consumer_stopping()) {
    struct timespec ts = {0, RETRY_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* ---- events into contributions ---- */

typedef struct {
  analytics_t *x;
  char src[96];
  int64_t offset, at_ms;
} msg_ctx_t;

static void add(msg_ctx_t *m, char scope, const char *key, const char *org, const char *name, int64_t delta) {
  if (!key || !*key) return;
  if (!mq_an_add(m->x->w, scope, key, org, m->at_ms, m->src, m->offset, name, delta))
    mq_log(MQ_LOG_WARN, "analytics.skipped", "%s@%lld: %c/%s/%s not a valid key or name", m->src, (long long)m->offset,
           scope, key, name);
}

static void add_at(msg_ctx_t *m, int64_t at_ms, char scope, const char *key, const char *name, int64_t delta) {
  int64_t keep = m->at_ms;
  m->at_ms = at_ms;
  add(m, scope, key, NULL, name, delta);
  m->at_ms = keep;
}

static void named(char *buf, size_t n, const char *prefix, const char *a, const char *b) {
  if (b)
    snprintf(buf, n, "%s:%s:%s", prefix, a ? a : "", b);
  else
    snprintf(buf, n, "%s:%s", prefix, a ? a : "");
}

/* The same counter for an event, its organization and the platform. */
static void add3(msg_ctx_t *m, const char *event, const char *org, const char *name, int64_t delta) {
  add(m, 'e', event, org, name, delta);
  if (org && *org) add(m, 'o', org, NULL, name, delta);
  add(m, 'p', "all", NULL, name, delta);
}

static void money3(msg_ctx_t *m, const char *event, const char *org, const char *prefix, const char *cur,
                   int64_t amount) {
  if (!cur || !*cur || !amount) return;
  char n[MQ_AN_NAME_MAX];
  named(n, sizeof n, prefix, cur, NULL);
  add3(m, event, org, n, amount);
}

static void fold(msg_ctx_t *m, const Marquee__Events__V1__Envelope *ev) {
  char n[MQ_AN_NAME_MAX];
  switch (ev->payload_case) {
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REGISTERED:
      add(m, 'p', "all", NULL, MQ_AN_SIGNUPS, 1);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_CREATED:
      add(m, 'p', "all", NULL, MQ_AN_ORGS, 1);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_PUBLISHED: {
      const Marquee__Events__V1__EventPublished *p = ev->event_published;
      if (p->organization_id && *p->organization_id) add(m, 'o', p->organization_id, NULL, MQ_AN_PUBLISHED, 1);
      add(m, 'p', "all", NULL, MQ_AN_PUBLISHED, 1);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED: {
      const Marquee__Events__V1__HoldCreated *p = ev->hold_created;
      add(m, 'e', p->event_id, p->organization_id, MQ_AN_HOLDS, 1);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_EXPIRED:
      add(m, 'e', ev->hold_expired->event_id, NULL, MQ_AN_HOLDS_EXPIRED, 1);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED:
      add(m, 'e', ev->hold_released->event_id, NULL, MQ_AN_HOLDS_RELEASED, 1);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED: {
      const Marquee__Events__V1__BookingConfirmed *p = ev->booking_confirmed;
      int64_t tickets = 0;
      for (size_t i = 0; i < p->n_units; i++) {
        const Marquee__Events__V1__BookedUnits *u = p->units[i];
        tickets += u->quantity;
        named(n, sizeof n, MQ_AN_TICKETS, u->ticket_type_id, NULL);
        add(m, 'e', p->event_id, p->organization_id, n, u->quantity);
        if (u->amount_minor && p->currency && *p->currency) {
          named(n, sizeof n, MQ_AN_TYPE_GROSS, u->ticket_type_id, p->currency);
          add(m, 'e', p->event_id, p->organization_id, n, u->amount_minor);
        }
      }
      add3(m, p->event_id, p->organization_id, MQ_AN_BOOKINGS, 1);
      add3(m, p->event_id, p->organization_id, MQ_AN_TICKETS, tickets);
      money3(m, p->event_id, p->organization_id, MQ_AN_GROSS, p->currency, p->total_minor);
      money3(m, p->event_id, p->organization_id, MQ_AN_FEES, p->currency, p->fee_minor);
      money3(m, p->event_id, p->organization_id, MQ_AN_TAX, p->currency, p->tax_minor);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED: {
      const Marquee__Events__V1__BookingCancelled *p = ev->booking_cancelled;
      int64_t tickets = 0;
      for (size_t i = 0; i < p->n_units; i++) {
        tickets += p->units[i]->quantity;
        named(n, sizeof n, MQ_AN_TICKETS_CANCELLED, p->units[i]->ticket_type_id, NULL);
        add(m, 'e', p->event_id, p->organization_id, n, p->units[i]->quantity);
      }
      add3(m, p->event_id, p->organization_id, MQ_AN_CANCELLATIONS, 1);
      add3(m, p->event_id, p->organization_id, MQ_AN_TICKETS_CANCELLED, tickets);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_CHECKED_IN: {
      const Marquee__Events__V1__TicketCheckedIn *p = ev->ticket_checked_in;
      add(m, 'e', p->event_id, NULL, MQ_AN_CHECKINS, 1);
      named(n, sizeof n, MQ_AN_CHECKINS, p->ticket_type_id, NULL);
      if (p->ticket_type_id && *p->ticket_type_id) add(m, 'e', p->event_id, NULL, n, 1);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_CHECK_IN_UNDONE: {
      /* taken off the quarter of the check-in it undoes */
      const Marquee__Events__V1__TicketCheckInUndone *p = ev->ticket_check_in_undone;
      int64_t at = p->checked_in_at ? mq_pb_timestamp_ms(p->checked_in_at) : m->at_ms;
      add_at(m, at, 'e', p->event_id, MQ_AN_CHECKINS, -1);
      named(n, sizeof n, MQ_AN_CHECKINS, p->ticket_type_id, NULL);
      if (p->ticket_type_id && *p->ticket_type_id) add_at(m, at, 'e', p->event_id, n, -1);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_VIEWED:
      add(m, 'e', ev->event_viewed->event_id, NULL, MQ_AN_VIEWS, ev->event_viewed->count ? ev->event_viewed->count : 1);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFUND_ISSUED: {
      const Marquee__Events__V1__RefundIssued *p = ev->refund_issued;
      add3(m, p->event_id, p->organization_id, MQ_AN_REFUNDS, 1);
      money3(m, p->event_id, p->organization_id, MQ_AN_REFUNDED, p->currency, p->amount_minor);
      break;
    }
    default:
      break;
  }
}

static mq_code_t apply(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                       mq_error_t *err) {
  (void)err;
  analytics_t *x = ctx;
  msg_ctx_t m = {.x = x, .offset = msg->offset};
  snprintf(m.src, sizeof m.src, "%s/%d", msg->topic, (int)msg->partition);
  m.at_ms = ev->occurred_at ? mq_pb_timestamp_ms(ev->occurred_at) : mq_now_unix_ms();
  if (mq_an_pending(x->w) >= BATCH) flush_hard(x);
  if (ev->event_id && *ev->event_id && seen_before(x, ev->event_id, m.at_ms)) {
    x->duplicates++;
  } else {
    fold(&m, ev);
  }
  mq_an_read_upto(x->w, m.src, msg->offset, m.at_ms);
  int64_t now = mq_now_ms();
  if (!x->first_pending_ms) x->first_pending_ms = now;
  if (now - x->first_pending_ms >= FLUSH_MS) flush_once(x); /* a failure retries at the next message or idle */
  return MQ_OK;
}

/* On (re)assignment: write what waits, forget the partition's cached
 * documents, and resume REWIND messages before its saved position. */
static int64_t start_offset(void *ctx, const char *topic, int32_t partition) {
  analytics_t *x = ctx;
  if (x->first_pending_ms) flush_hard(x);
  char src[96];
  snprintf(src, sizeof src, "%s/%d", topic, (int)partition);
  int64_t next = -1, at = 0;
  mq_error_t err;
  while (mq_an_position(x->store, x->gen, src, &next, &at, &err) != MQ_OK && !mq_consumer_stopping()) {
    mq_log(MQ_LOG_WARN, "analytics.position", "%s: %s; retrying", src, err.message);
    struct timespec ts = {0, RETRY_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  mq_an_assign(x->w, src, next, at);
  if (next < 0) return -1;
  return next > REWIND ? next - REWIND : 0;
}

static void idle(void *ctx, bool caught_up) {
  analytics_t *x = ctx;
  if (x->first_pending_ms && flush_once(x) != MQ_OK) return;
  int64_t now = mq_now_unix_ms();
  if (!caught_up || now - x->caught_up_written_ms < 1000) return;
  mq_an_caught_up(x->w, now);
  if (flush_once(x) != MQ_OK) return;
  x->caught_up_written_ms = now;
  if (x->rebuilding) {
    mq_error_t err;
    if (mq_an_set_current(x->store, x->gen, &err) != MQ_OK) {
      mq_log(MQ_LOG_ERROR, "analytics.rebuild", "%s; retrying", err.message);
      return;
    }
    mq_log(MQ_LOG_INFO, "analytics.rebuilt", "generation %lld is now current", (long long)x->gen);
    printf("REBUILT generation=%lld\n", (long long)x->gen);
    fflush(stdout);
    x->rebuilding = false;
  }
}

static double gauge_duplicates(void *arg) {
  return (double)((analytics_t *)arg)->duplicates;
}
static double gauge_flushes(void *arg) {
  return (double)((analytics_t *)arg)->flushes;
}
static double gauge_failures(void *arg) {
  return (double)((analytics_t *)arg)->flush_failures;
}
static double gauge_gen(void *arg) {
  return (double)((analytics_t *)arg)->gen;
}

static const mq_event_route_t routes[] = {
    {"users.UserRegistered", apply},      {"organizations.OrganizationCreated", apply},
    {"catalog.EventPublished", apply},    {"bookings.HoldCreated", apply},
    {"bookings.HoldExpired", apply},      {"bookings.HoldReleased", apply},
    {"bookings.BookingConfirmed", apply}, {"bookings.BookingCancelled", apply},
    {"bookings.TicketCheckedIn", apply},  {"bookings.TicketCheckInUndone", apply},
    {"payments.RefundIssued", apply},     {"analytics.EventViewed", apply},
};

static const char *const topics[] = {"marquee.users",    "marquee.events", "marquee.bookings",
                                     "marquee.payments", "marquee.views",  NULL};

int main(int argc, char **argv) {
  bool rebuild = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--version")) {
      printf("marquee-analytics %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
      return 0;
    }
    if (!strcmp(argv[i], "--rebuild")) {
      rebuild = true;
    } else {
      fprintf(stderr, "usage: marquee-analytics [--rebuild]\n");
      return 2;
    }
  }
  mq_config_t cfg;
  mq_error_t err;
  if (!mq_config_start("marquee-analytics", &cfg, environ)) return 2;
  int rc = 1;
  analytics_t x = {.cfg = &cfg, .rebuilding = rebuild};
  x.window_ms = cfg.analytics_dedupe_s * 1000LL;
  if (mq_store_open(cfg.mongo_uri, cfg.mongo_db, (uint32_t)cfg.mongo_pool_max, &x.store, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "analytics.start", "%s: %s", err.field, err.message);
    goto cleanup;
  }
  int64_t current = 0;
  for (;;) { /* the store may still be starting */
    if (mq_an_current(x.store, &current, &err) == MQ_OK) break;
    mq_log(MQ_LOG_WARN, "analytics.start", "%s; retrying", err.message);
    sleep(1);
  }
  x.gen = rebuild || !current ? current + 1 : current;
  if (rebuild && mq_an_drop(x.store, x.gen, &err) != MQ_OK) { /* what an interrupted rebuild left */
    mq_log(MQ_LOG_ERROR, "analytics.start", "%s", err.message);
    goto cleanup;
  }
  if (mq_an_ensure_indexes(x.store, x.gen, &err) != MQ_OK ||
      (!current && !rebuild && mq_an_set_current(x.store, x.gen, &err) != MQ_OK)) {
    mq_log(MQ_LOG_ERROR, "analytics.start", "%s", err.message);
    goto cleanup;
  }
  if (rebuild) { /* a group of its own: no departed member of the live group can hold partitions while it reads
                  * (it would look caught up on the rest and swap too early); positions live in the store, so
                  * the group's name changes nothing else */
    size_t len = strlen(cfg.consumer_group) + 64;
    char *g = mq_xmalloc(len);
    snprintf(g, len, "%s-rebuild-g%lld", cfg.consumer_group[0] ? cfg.consumer_group : "marquee-analytics",
             (long long)x.gen);
    free(cfg.consumer_group);
    cfg.consumer_group = g;
  }
  x.w = mq_an_set_new(x.gen);
  mq_metrics_gauge("marquee_analytics_duplicates_total", "Events recognised as relay duplicates and skipped",
                   gauge_duplicates, &x);
  mq_metrics_gauge("marquee_analytics_flushes_total", "Batches written to the store", gauge_flushes, &x);
  mq_metrics_gauge("marquee_analytics_flush_failures_total", "Batch writes that failed and were retried",
                   gauge_failures, &x);
  mq_metrics_gauge("marquee_analytics_generation", "The generation of aggregates this consumer writes", gauge_gen, &x);
  mq_log(MQ_LOG_INFO, "analytics.start", "%s generation %lld",
         rebuild ? "rebuilding from the beginning of the log into" : "aggregating into", (long long)x.gen);
  mq_consumer_opts_t o = {.cfg = &cfg,
                          .name = "analytics",
                          .topics = topics,
                          .routes = routes,
                          .n_routes = sizeof routes / sizeof *routes,
                          .ctx = &x,
                          .store = x.store,
                          .dedupe = false, /* positions, high-water offsets and the id window are the dedupe */
                          .start_offset = start_offset,
                          .idle = idle};
  rc = mq_consumer_run(&o);
  if (x.first_pending_ms) flush_once(&x); /* whatever was read before the stop */
cleanup:
  mq_metrics_gauge_remove(&x);
  mq_an_set_free(x.w);
  free(x.seen[0].slots);
  free(x.seen[1].slots);
  mq_store_close(x.store);
  mq_config_free(&cfg);
  mq_log_stop();
  return rc;
}
