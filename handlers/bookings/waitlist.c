/*
 * waitlist.c — BookingService's waitlist: JoinWaitlist, LeaveWaitlist,
 * GetWaitlistEntry, and the sweeper's pass that turns returned units into
 * time-limited hold offers (bookings issue, item 6; store/bookings/
 * waitlist_store.h for the invariants).
 *
 * Each sweep (every MARQUEE_HOLD_SWEEP_MS, on every server):
 *  1. offered entries follow their hold: confirmed → booked; expired or
 *     released → offer_expired (the next in line is then served);
 *  2. the ticket types with people waiting are remembered in memory, and
 *     CreateHold refuses them (sold out) so returned units go to the line
 *     first;
 *  3. for each such type, the first waiting entry gets a hold of its
 *     quantity if the units are there (W2: the hold id is derived from the
 *     entry and round, so two servers make one offer), and the entry
 *     records it with WaitlistOffered for the notifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "lib/mq_validate.h"
#include "store/bookings/waitlist_store.h"
#include "store/catalog/events_store.h"
#include "store/mq_bson.h"

#define SWEEP_LIMIT 500

typedef Marquee__Bookings__V1__WaitlistEntry entry_pb;

static int state_enum(const char *s) {
  if (!strcmp(s, "waiting")) return MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_WAITING;
  if (!strcmp(s, "offered")) return MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_OFFERED;
  if (!strcmp(s, "booked")) return MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_BOOKED;
  if (!strcmp(s, "offer_expired")) return MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_OFFER_EXPIRED;
  if (!strcmp(s, "left")) return MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_LEFT;
  return 0;
}

static mq_code_t view(mq_call_t *call, const mq_wait_entry_t *w, entry_pb *p, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  marquee__bookings__v1__waitlist_entry__init(p);
  p->entry_id = w->id;
  p->event_id = w->event_id;
  p->ticket_type_id = w->ticket_type_id;
  p->user_id = w->user_id;
  p->quantity = w->quantity;
  p->state = state_enum(w->state);
  p->joined_at = mq_pb_timestamp(a, w->joined_ms);
  p->offer_hold_id = w->offer_hold_id;
  if (w->offer_expires_ms) p->offer_expires_at = mq_pb_timestamp(a, w->offer_expires_ms);
  if (!strcmp(w->state, "waiting")) {
    int64_t pos = 0;
    mq_code_t rc = mq_waitlist_position(app->store, w, &pos, err);
    if (rc != MQ_OK) return rc;
    p->position = (uint32_t)pos;
  }
  return MQ_OK;
}

bool mq_waitlist_has_line(mq_bookings_t *b, const char *tt) {
  bool found = false;
  pthread_mutex_lock(&b->lines_mu);
  for (size_t i = 0; i < b->n_lines && !found; i++) found = !strcasecmp(b->lines[i], tt);
  pthread_mutex_unlock(&b->lines_mu);
  return found;
}

static void remember_line(mq_bookings_t *b, const char *tt) {
  if (mq_waitlist_has_line(b, tt)) return;
  pthread_mutex_lock(&b->lines_mu);
  char(*bigger)[40] = realloc(b->lines, (b->n_lines + 1) * sizeof *b->lines);
  if (bigger) {
    b->lines = bigger;
    snprintf(b->lines[b->n_lines++], sizeof *b->lines, "%s", tt);
  }
  pthread_mutex_unlock(&b->lines_mu);
}

mq_code_t mq_waitlist_join_handler(mq_call_t *call, const Marquee__Bookings__V1__JoinWaitlistRequest *req,
                                   entry_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const char *user = mq_call_principal(call)->subject;
  mq_code_t rc = mq_check_uuid(err, "event_id", req->event_id);
  if (rc == MQ_OK) rc = mq_check_uuid(err, "ticket_type_id", req->ticket_type_id);
  if (rc != MQ_OK) return rc;
  Marquee__Catalog__V1__Event *e;
  rc = mq_events_get(app->store, req->event_id, a, &e, err);
  if (rc == MQ_OK && e->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event on sale");
  if (rc != MQ_OK) return rc;
  if (e->starts_at && mq_pb_timestamp_ms(e->starts_at) <= mq_now_unix_ms())
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event has started");
  const Marquee__Catalog__V1__TicketType *t = NULL;
  for (size_t i = 0; i < e->n_ticket_types; i++)
    if (!strcasecmp(e->ticket_types[i]->ticket_type_id, req->ticket_type_id) && !e->ticket_types[i]->hidden)
      t = e->ticket_types[i];
  if (!t) return mq_error_set(err, MQ_NOT_FOUND, "ticket_type_id", "no such ticket type for this event");
  uint32_t min = t->min_per_order ? t->min_per_order : 1, max = t->max_per_order ? t->max_per_order : 10;
  if (req->quantity < min || req->quantity > max)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "quantity", "must be %u..%u for this ticket type", min, max);
  char pool[MQ_POOL_ID_MAX];
  int64_t taken = 0;
  mq_pool_ticket_type(pool, t->ticket_type_id);
  if ((rc = mq_capacity_count(app->store, pool, t->capacity, &taken, err)) != MQ_OK) return rc;
  if (t->capacity - taken >= (int64_t)req->quantity && !mq_waitlist_has_line(app->bookings, t->ticket_type_id))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_type_id", "tickets are available: book them instead");
  mq_wait_entry_t w = {.event_id = e->event_id,
                       .ticket_type_id = t->ticket_type_id,
                       .user_id = (char *)user,
                       .state = (char *)"waiting",
                       .quantity = req->quantity,
                       .joined_ms = mq_now_unix_ms(),
                       .offer_hold_id = (char *)"",
                       .version = 1};
  w.id = mq_arena_alloc(a, 37);
  mq_bookings_derived_id(t->ticket_type_id, user, w.id);
  rc = mq_waitlist_insert(app->store, &w, err);
  if (rc == MQ_ALREADY_EXISTS) { /* an entry from before: rejoin unless it is live */
    mq_wait_entry_t old;
    if ((rc = mq_waitlist_get(app->store, w.id, a, &old, err)) != MQ_OK) return rc;
    if (!strcmp(old.state, "waiting") || !strcmp(old.state, "offered"))
      return mq_error_set(err, MQ_ALREADY_EXISTS, "ticket_type_id", "you are on this waitlist already (entry %s)",
                          old.id);
    old.state = (char *)"waiting";
    old.quantity = req->quantity;
    old.joined_ms = mq_now_unix_ms();
    old.offer_hold_id = (char *)"";
    old.offer_expires_ms = 0;
    if ((rc = mq_waitlist_save(app->store, &old, NULL, err)) != MQ_OK) return rc;
    w = old;
  } else if (rc != MQ_OK) {
    return rc;
  }
  remember_line(app->bookings, t->ticket_type_id);
  return view(call, &w, resp, err);
}

static mq_code_t load_own(mq_call_t *call, const char *id, mq_wait_entry_t *w, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "entry_id", id);
  if (rc == MQ_OK) rc = mq_waitlist_get(app->store, id, mq_call_arena(call), w, err);
  if (rc == MQ_OK && strcmp(w->user_id, mq_call_principal(call)->subject)) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "entry_id", "no such waitlist entry");
  return rc;
}

mq_code_t mq_waitlist_get_handler(mq_call_t *call, const Marquee__Bookings__V1__WaitlistEntryRequest *req,
                                  entry_pb *resp, mq_error_t *err) {
  mq_wait_entry_t w;
  mq_code_t rc = load_own(call, req->entry_id, &w, err);
  return rc == MQ_OK ? view(call, &w, resp, err) : rc;
}

mq_code_t mq_waitlist_leave_handler(mq_call_t *call, const Marquee__Bookings__V1__WaitlistEntryRequest *req,
                                    entry_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  for (int attempt = 0; attempt < 3; attempt++) {
    mq_wait_entry_t w;
    mq_code_t rc = load_own(call, req->entry_id, &w, err);
    if (rc != MQ_OK) return rc;
    if (strcmp(w.state, "waiting") && strcmp(w.state, "offered"))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "entry_id", "the entry is %s", w.state);
    if (!strcmp(w.state, "offered") && w.offer_hold_id[0]) {
      mq_hold_t h;
      if (mq_holds_get(app->store, w.offer_hold_id, a, &h, err) == MQ_OK && !strcmp(h.state, MQ_HOLD_ACTIVE) &&
          (rc = mq_bookings_release_hold(app->bookings, &h, w.user_id, a, err)) != MQ_OK)
        return rc;
    }
    w.state = (char *)"left";
    rc = mq_waitlist_save(app->store, &w, NULL, err);
    if (rc == MQ_ABORTED) continue;
    if (rc != MQ_OK) return rc;
    return view(call, &w, resp, err);
  }
  return mq_error_set(err, MQ_ABORTED, "entry_id", "the entry keeps changing; retry");
}

/* ---- the sweeper's pass ---- */

static void follow_offers(mq_bookings_t *b, mq_arena_t *a) {
  mq_store_t *s = b->app->store;
  mq_wait_entry_t *v;
  size_t n = 0;
  mq_error_t err = {0};
  if (mq_waitlist_in_state(s, "offered", SWEEP_LIMIT, a, &v, &n, &err) != MQ_OK) return;
  for (size_t i = 0; i < n; i++) {
    mq_hold_t h;
    if (mq_holds_get(s, v[i].offer_hold_id, a, &h, &err) != MQ_OK) continue;
    const char *next = !strcmp(h.state, MQ_HOLD_CONFIRMED)                                       ? "booked"
                       : !strcmp(h.state, MQ_HOLD_EXPIRED) || !strcmp(h.state, MQ_HOLD_RELEASED) ? "offer_expired"
                                                                                                 : NULL;
    if (!next) continue;
    v[i].state = (char *)next;
    mq_waitlist_save(s, &v[i], NULL, &err); /* ABORTED: someone else moved it */
  }
}

static void offer(mq_bookings_t *b, mq_wait_entry_t *w, mq_arena_t *a) {
  mq_app_t *app = b->app;
  mq_error_t err = {0};
  Marquee__Catalog__V1__Event *e;
  if (mq_events_get(app->store, w->event_id, a, &e, &err) != MQ_OK) return;
  if (e->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED ||
      (e->starts_at && mq_pb_timestamp_ms(e->starts_at) <= mq_now_unix_ms()))
    return; /* nothing to offer any more; the entry stays as it is */
  const Marquee__Catalog__V1__TicketType *t = NULL;
  for (size_t i = 0; i < e->n_ticket_types; i++)
    if (!strcmp(e->ticket_types[i]->ticket_type_id, w->ticket_type_id)) t = e->ticket_types[i];
  if (!t) return;
  char round[32], hold_id[37];
  snprintf(round, sizeof round, "offer-%lld", (long long)(w->offer_round + 1));
  mq_bookings_derived_id(w->id, round, hold_id);
  int64_t expires = 0;
  mq_code_t rc = mq_bookings_offer_hold(b, e, t, w->user_id, w->quantity, hold_id, a, &expires, &err);
  if (rc == MQ_ALREADY_EXISTS) { /* another server made this offer; record it if nobody has */
    mq_hold_t h;
    if (mq_holds_get(app->store, hold_id, a, &h, &err) != MQ_OK) return;
    expires = h.expires_ms;
  } else if (rc != MQ_OK) {
    return; /* not enough units yet (RESOURCE_EXHAUSTED) or a store failure: next sweep */
  }
  Marquee__Events__V1__WaitlistOffered *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__waitlist_offered__init(p);
  p->entry_id = w->id;
  p->event_id = w->event_id;
  p->ticket_type_id = w->ticket_type_id;
  p->user_id = w->user_id;
  p->quantity = w->quantity;
  p->hold_id = mq_arena_strdup(a, hold_id);
  p->offer_expires_at = mq_pb_timestamp(a, expires);
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.WaitlistOffered", w->id, "system", NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_WAITLIST_OFFERED;
  ev.env.waitlist_offered = p;
  w->state = (char *)"offered";
  w->offer_hold_id = p->hold_id;
  w->offer_expires_ms = expires;
  w->offer_round++;
  if (mq_waitlist_save(app->store, w, &ev, &err) != MQ_OK) /* the next sweep offers again */
    mq_log(MQ_LOG_WARN, "waitlist.offer_not_saved", "%s: %s", w->id, err.message);
}

void mq_waitlist_sweep(mq_bookings_t *b) {
  mq_arena_t a;
  mq_arena_init(&a);
  follow_offers(b, &a);
  mq_wait_entry_t *v;
  size_t n = 0;
  mq_error_t err = {0};
  if (mq_waitlist_in_state(b->app->store, "waiting", SWEEP_LIMIT, &a, &v, &n, &err) == MQ_OK) {
    /* 2. the line, per ticket type, for CreateHold */
    char(*lines)[40] = n ? calloc(n, sizeof *lines) : NULL;
    size_t n_lines = 0;
    for (size_t i = 0; i < n; i++) {
      bool seen = false;
      for (size_t k = 0; k < n_lines && !seen; k++) seen = !strcmp(lines[k], v[i].ticket_type_id);
      if (seen) continue;
      snprintf(lines[n_lines++], sizeof *lines, "%s", v[i].ticket_type_id);
      offer(b, &v[i], &a); /* 3. the first of each line (v is oldest first) */
    }
    pthread_mutex_lock(&b->lines_mu);
    free(b->lines);
    b->lines = lines;
    b->n_lines = n_lines;
    pthread_mutex_unlock(&b->lines_mu);
  }
  mq_arena_release(&a);
}
