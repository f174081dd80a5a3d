/*
 * holds.c — marquee.bookings.v1.BookingService, the hold half: CreateHold,
 * GetHold, ReleaseHold, ConfirmHold, StartHoldPayment, CompleteHoldPayment;
 * the finishing steps shared with bookings.c and sweeper.c; holds made for
 * the waitlist. The service's method table is booking_service.c; the
 * sweeper that ends expired holds is sweeper.c.
 *
 * Who may call what: holds belong to the user who made them (another
 * user's hold is NOT_FOUND); the payment steps are for the payments service,
 * which calls with the platform admin role (MQ_POLICY_ADMIN).
 *
 * How a hold is made (store/bookings/capacity.h and holds_store.h):
 *   validate → read the event → price → take the units (all pools, all or
 *   nothing) → insert the hold with HoldCreated. With an idempotency key the
 *   hold's id is derived from (user, key): a retry finds the stored hold
 *   before taking anything, and a concurrent twin loses the insert and gives
 *   its units back.
 * How a hold ends: one decision record ("<hold>:fate", then for paid holds
 * "<hold>:payment") decides; finishing (booking, units back, state) follows
 * and is repeated by whoever finds it undone: a client's retry or the
 * sweeper.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "handlers/identity/identity.h"
#include "lib/mq_cache.h"
#include "lib/mq_money.h"
#include "lib/mq_validate.h"
#include "marquee/bookings/v1/bookings.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

#define MAX_ITEMS 20

typedef Marquee__Bookings__V1__Hold hold_pb;

/* ---- shared helpers ---- */

Marquee__Common__V1__Money *mq_money(mq_arena_t *a, int64_t minor, const char *currency) {
  Marquee__Common__V1__Money *m = mq_arena_alloc(a, sizeof *m);
  marquee__common__v1__money__init(m);
  m->amount_minor = minor;
  m->currency = (char *)currency;
  return m;
}

Marquee__Bookings__V1__PriceLine **mq_price_lines(mq_arena_t *a, const mq_hold_line_t *lines, size_t n,
                                                  const char *currency) {
  Marquee__Bookings__V1__PriceLine **out = mq_arena_alloc(a, (n ? n : 1) * sizeof *out);
  for (size_t i = 0; i < n; i++) {
    Marquee__Bookings__V1__PriceLine *l = mq_arena_alloc(a, sizeof *l);
    marquee__bookings__v1__price_line__init(l);
    l->ticket_type_id = lines[i].ticket_type_id;
    l->ticket_type_name = lines[i].name;
    l->quantity = lines[i].quantity;
    l->unit_price = mq_money(a, lines[i].unit_minor, currency);
    l->subtotal = mq_money(a, lines[i].unit_minor * (int64_t)lines[i].quantity, currency);
    out[i] = l;
  }
  return out;
}

Marquee__Bookings__V1__TaxLine **mq_tax_lines(mq_arena_t *a, const mq_price_t *p, const char *currency) {
  Marquee__Bookings__V1__TaxLine **out = mq_arena_alloc(a, (p->n_taxes ? p->n_taxes : 1) * sizeof *out);
  for (size_t i = 0; i < p->n_taxes; i++) {
    Marquee__Bookings__V1__TaxLine *l = mq_arena_alloc(a, sizeof *l);
    marquee__bookings__v1__tax_line__init(l);
    l->name = p->taxes[i].name;
    l->jurisdiction = p->taxes[i].jurisdiction;
    l->rate_ppm = (uint32_t)p->taxes[i].ppm;
    l->amount = mq_money(a, p->taxes[i].amount_minor, currency);
    out[i] = l;
  }
  return out;
}

/* The pricing part of an organization's settings, flat (cached as bytes). */
typedef struct {
  int tax_display;
  int64_t fee_ppm, fee_per_ticket_minor, own_tax_ppm;
  bool fee_passed_on;
  char fee_currency[4], own_tax_name[16], home_country[4], home_region[101];
} pricing_t;

/* Declared in bookings.h. */
mq_code_t mq_bookings_pay_settings(mq_bookings_t *b, const char *org_id, mq_arena_t *a, mq_pay_settings_t *out,
                                   mq_error_t *err) {
  return mq_pay_settings_get(b->app->store, org_id, a, out, err);
}

static mq_code_t pricing_of(mq_bookings_t *b, const char *org_id, mq_arena_t *a, pricing_t *out, mq_error_t *err) {
  mq_app_t *app = b->app;
  bool cached = b->pricing && atomic_load(&app->events_live);
  char key[48];
  snprintf(key, sizeof key, "p:%s", org_id);
  void *bytes;
  size_t len;
  if (cached && mq_cache_get(b->pricing, key, a, &bytes, &len) && len == sizeof *out) {
    memcpy(out, bytes, sizeof *out);
    return MQ_OK;
  }
  uint64_t ticket = cached ? mq_cache_ticket(b->pricing, key) : 0;
  mq_pay_settings_t st;
  mq_code_t rc = mq_bookings_pay_settings(b, org_id, a, &st, err);
  if (rc != MQ_OK) return rc;
  memset(out, 0, sizeof *out);
  out->tax_display = st.tax_display;
  out->fee_ppm = st.fee_ppm;
  out->fee_per_ticket_minor = st.fee_per_ticket_minor;
  out->own_tax_ppm = st.own_tax_ppm;
  out->fee_passed_on = st.fee_passed_on;
  snprintf(out->fee_currency, sizeof out->fee_currency, "%s", st.fee_currency);
  snprintf(out->own_tax_name, sizeof out->own_tax_name, "%s", st.own_tax_name);
  snprintf(out->home_country, sizeof out->home_country, "%s", st.home_country);
  snprintf(out->home_region, sizeof out->home_region, "%s", st.home_region);
  if (cached) mq_cache_put(b->pricing, key, out, sizeof *out, ticket);
  return MQ_OK;
}

/* Declared in bookings.h. */
void mq_bookings_pay_settings_changed(mq_app_t *app, const char *org_id) {
  mq_bookings_t *b = app->bookings;
  if (!b || !b->pricing || !org_id) return;
  char key[48];
  snprintf(key, sizeof key, "p:%s", org_id);
  mq_cache_invalidate(b->pricing, key);
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_price(mq_bookings_t *b, const Marquee__Catalog__V1__Event *e, mq_hold_t *h, int64_t at_ms,
                            mq_arena_t *a, mq_error_t *err) {
  pricing_t pr;
  mq_code_t rc = pricing_of(b, e->organization_id, a, &pr, err);
  if (rc != MQ_OK) return rc;
  int64_t subtotal = 0, units = 0;
  for (size_t i = 0; i < h->n_lines; i++) {
    subtotal += h->lines[i].unit_minor * (int64_t)h->lines[i].quantity;
    units += h->lines[i].quantity;
  }
  /* the service fee: nothing on free tickets */
  int64_t fee = 0;
  if (subtotal > 0) {
    int64_t pct = 0;
    if (!mq_money_ppm(subtotal, pr.fee_ppm, &pct)) pct = 0;
    fee = pct + (!strcmp(pr.fee_currency, e->currency ? e->currency : "") ? pr.fee_per_ticket_minor * units : 0);
  }
  const char *country = e->country, *region = e->region;
  bool online = !e->venue_id || !*e->venue_id;
  if (online) { /* an online event is taxed where the organization says it is, if it says */
    country = pr.home_country;
    region = pr.home_region;
  } else if ((!region || !*region) && country && (!strcmp(country, "CA") || !strcmp(country, "US"))) {
    mq_venue_t v; /* an event saved before events carried their venue's region */
    mq_error_t ignored = {0};
    if (mq_venues_get(b->app->store, e->venue_id, a, &v, &ignored) == MQ_OK) region = v.region;
  }
  char j[8];
  mq_tax_jurisdiction(country ? country : "", region, j);
  bool included = pr.tax_display == MQ_TAX_DISPLAY_DEFAULT ? mq_tax_inclusive_by_default(country)
                                                           : pr.tax_display == MQ_TAX_DISPLAY_INCLUDED;
  int64_t base = subtotal + (pr.fee_passed_on ? fee : 0);
  mq_tax_result_t r;
  rc =
      mq_tax_compute(b->taxes, j, at_ms, MQ_SUPPLY_ADMISSION, base, included, pr.own_tax_ppm, pr.own_tax_name, &r, err);
  if (rc != MQ_OK) return rc;
  h->price.subtotal_minor = subtotal;
  h->price.fee_minor = pr.fee_passed_on ? fee : 0;
  h->price.tax_included = included && r.n_lines > 0;
  h->price.n_taxes = r.n_lines;
  h->price.taxes = mq_arena_alloc(a, (r.n_lines ? r.n_lines : 1) * sizeof *h->price.taxes);
  for (size_t i = 0; i < r.n_lines; i++) {
    h->price.taxes[i].name = mq_arena_strdup(a, r.lines[i].name);
    h->price.taxes[i].jurisdiction = mq_arena_strdup(a, r.lines[i].jurisdiction);
    h->price.taxes[i].ppm = r.lines[i].ppm;
    h->price.taxes[i].amount_minor = r.lines[i].amount_minor;
  }
  h->total_minor = r.total_minor;
  return MQ_OK;
}

void mq_bookings_event(mq_event_t *ev, const char *type, const char *aggregate_id, const char *actor,
                       const char *trace_id, const char *request_id) {
  mq_event_init(ev, MQ_BOOKINGS_TOPIC, type, aggregate_id, actor ? actor : "system", trace_id ? trace_id : "",
                request_id ? request_id : "");
}

Marquee__Events__V1__BookedUnits **mq_booked_units(mq_arena_t *a, const mq_hold_line_t *lines, size_t n) {
  Marquee__Events__V1__BookedUnits **u = mq_arena_alloc(a, (n ? n : 1) * sizeof *u);
  for (size_t i = 0; i < n; i++) {
    u[i] = mq_arena_alloc(a, sizeof **u);
    marquee__events__v1__booked_units__init(u[i]);
    u[i]->ticket_type_id = lines[i].ticket_type_id;
    u[i]->quantity = lines[i].quantity;
    u[i]->amount_minor = lines[i].unit_minor * (int64_t)lines[i].quantity;
  }
  return u;
}

static int state_enum(const char *s) {
  if (!strcmp(s, MQ_HOLD_ACTIVE)) return MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_ACTIVE;
  if (!strcmp(s, MQ_HOLD_PAYMENT_PENDING)) return MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_PAYMENT_PENDING;
  if (!strcmp(s, MQ_HOLD_CONFIRMED)) return MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_CONFIRMED;
  if (!strcmp(s, MQ_HOLD_RELEASED)) return MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED;
  if (!strcmp(s, MQ_HOLD_EXPIRED)) return MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_EXPIRED;
  return 0;
}

static hold_pb *hold_view(mq_arena_t *a, const mq_hold_t *h) {
  hold_pb *p = mq_arena_alloc(a, sizeof *p);
  marquee__bookings__v1__hold__init(p);
  p->hold_id = h->id;
  p->event_id = h->event_id;
  p->user_id = h->user_id;
  p->state = state_enum(h->state);
  p->lines = mq_price_lines(a, h->lines, h->n_lines, h->currency);
  p->n_lines = h->n_lines;
  p->total = mq_money(a, h->total_minor, h->currency);
  p->subtotal = mq_money(a, h->price.subtotal_minor, h->currency);
  p->taxes = mq_tax_lines(a, &h->price, h->currency);
  p->n_taxes = h->price.n_taxes;
  p->tax_included = h->price.tax_included;
  if (h->price.fee_minor) p->service_fee = mq_money(a, h->price.fee_minor, h->currency);
  p->expires_at = mq_pb_timestamp(a, h->expires_ms);
  p->created_at = mq_pb_timestamp(a, h->created_ms);
  if (!strcmp(h->state, MQ_HOLD_CONFIRMED)) p->booking_id = h->id;
  p->payment_reference = h->payment_reference ? h->payment_reference : (char *)"";
  p->requires_payment = h->total_minor > 0;
  if (h->payment_deadline_ms) p->payment_deadline = mq_pb_timestamp(a, h->payment_deadline_ms);
  return p;
}

static const char *actor_of(mq_call_t *call) {
  const mq_principal_t *p = mq_call_principal(call);
  return p ? p->subject : "system";
}

/* The caller's hold; someone else's is NOT_FOUND. */
static mq_code_t load_own(mq_call_t *call, const char *hold_id, mq_hold_t *h, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "hold_id", hold_id);
  if (rc == MQ_OK) rc = mq_holds_get(app->store, hold_id, mq_call_arena(call), h, err);
  if (rc == MQ_OK && strcmp(h->user_id, actor_of(call))) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "hold_id", "no such hold");
  return rc;
}

/* ---- finishing (holds_store.h H3) ---- */

/* Units back and the state set, after a decision that ends the hold without
 * a booking. */
static mq_code_t finish_return(mq_bookings_t *b, const mq_hold_t *h, const char *state, mq_error_t *err) {
  mq_store_t *s = b->app->store;
  mq_code_t rc = mq_capacity_release(b->capacity, s, h->id, h->slots, h->n_slots, err);
  if (rc == MQ_OK) rc = mq_capacity_release_holder(b->capacity, s, h->id, err); /* any a crash left unlisted */
  if (rc == MQ_OK && strcmp(h->state, state)) rc = mq_holds_set_state(s, h->id, state, NULL, 0, err);
  mq_availability_changed(b->app, h->event_id);
  return rc;
}

mq_code_t mq_bookings_finish_confirm(mq_bookings_t *b, const mq_hold_t *h, const char *payment_reference,
                                     const char *actor, const char *trace_id, mq_arena_t *a, mq_booking_t *out,
                                     mq_error_t *err) {
  mq_store_t *s = b->app->store;
  mq_code_t rc = mq_bookings_get(s, h->id, a, out, err);
  if (rc == MQ_NOT_FOUND) {
    mq_booking_t *bk = out;
    memset(bk, 0, sizeof *bk);
    bk->id = h->id;
    bk->hold_id = h->id;
    bk->event_id = h->event_id;
    bk->organization_id = h->organization_id;
    bk->user_id = h->user_id;
    bk->state = (char *)MQ_BOOKING_CONFIRMED;
    bk->currency = h->currency;
    bk->payment_reference = (char *)(payment_reference ? payment_reference : "");
    bk->lines = h->lines;
    bk->n_lines = h->n_lines;
    bk->total_minor = h->total_minor;
    bk->price = h->price;
    bk->created_ms = mq_now_unix_ms();
    bk->version = 1;
    mq_user_t u;
    mq_error_t ignored = {0};
    if (mq_users_get(s, h->user_id, a, &u, &ignored) == MQ_OK) {
      bk->buyer_name = (char *)(u.display_name ? u.display_name : "");
      bk->buyer_email = (char *)(u.email ? u.email : "");
    }
    size_t n = 0;
    for (size_t i = 0; i < h->n_lines; i++) n += h->lines[i].quantity;
    bk->tickets = mq_arena_alloc(a, (n ? n : 1) * sizeof *bk->tickets);
    for (size_t i = 0; i < h->n_lines; i++) {
      char pool[MQ_POOL_ID_MAX];
      mq_pool_ticket_type(pool, h->lines[i].ticket_type_id);
      size_t used = 0; /* the line's slots, in the order they were taken */
      for (uint32_t q = 0; q < h->lines[i].quantity; q++) {
        mq_ticket_t *t = &bk->tickets[bk->n_tickets++];
        t->id = mq_arena_alloc(a, 37);
        mq_uuid_v4(t->id);
        t->ticket_type_id = h->lines[i].ticket_type_id;
        t->ticket_type_name = h->lines[i].name;
        t->attendee_name = bk->buyer_name ? bk->buyer_name : (char *)"";
        t->slot = (char *)"";
        for (size_t k = 0, seen = 0; k < h->n_slots; k++) {
          char sp[MQ_POOL_ID_MAX];
          int64_t sn;
          if (!mq_slot_pool(h->slots[k], sp, &sn) || strcmp(sp, pool)) continue;
          if (seen++ == used) {
            t->slot = h->slots[k];
            used++;
            break;
          }
        }
      }
    }
    Marquee__Events__V1__BookingConfirmed *p = mq_arena_alloc(a, sizeof *p);
    marquee__events__v1__booking_confirmed__init(p);
    p->booking_id = bk->id;
    p->event_id = bk->event_id;
    p->organization_id = bk->organization_id;
    p->user_id = bk->user_id;
    p->units = mq_booked_units(a, h->lines, h->n_lines);
    p->n_units = h->n_lines;
    p->total_minor = bk->total_minor;
    p->currency = bk->currency;
    p->payment_reference = bk->payment_reference;
    p->fee_minor = h->price.fee_minor;
    for (size_t i = 0; i < h->price.n_taxes; i++) p->tax_minor += h->price.taxes[i].amount_minor;
    p->ticket_ids = mq_arena_alloc(a, (bk->n_tickets ? bk->n_tickets : 1) * sizeof *p->ticket_ids);
    for (size_t i = 0; i < bk->n_tickets; i++) p->ticket_ids[i] = bk->tickets[i].id;
    p->n_ticket_ids = bk->n_tickets;
    mq_event_t ev;
    mq_bookings_event(&ev, "bookings.BookingConfirmed", bk->id, actor, trace_id, NULL);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
    ev.env.booking_confirmed = p;
    rc = mq_bookings_insert(s, bk, &ev, err);
    if (rc == MQ_OK) atomic_fetch_add(&b->confirmed_total, 1);
    if (rc == MQ_ALREADY_EXISTS) rc = mq_bookings_get(s, h->id, a, out, err);
  }
  if (rc != MQ_OK) return rc;
  mq_error_t e2 = {0};
  if (mq_capacity_mark_sold(s, h->id, &e2) != MQ_OK)
    mq_log(MQ_LOG_WARN, "bookings.mark_sold_failed", "hold %s: %s", h->id, e2.message);
  if (strcmp(h->state, MQ_HOLD_CONFIRMED)) rc = mq_holds_set_state(s, h->id, MQ_HOLD_CONFIRMED, NULL, 0, err);
  return rc;
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_finish_decided(mq_bookings_t *b, mq_hold_t *h, const mq_decision_t *fate, const char *trace_id,
                                     mq_arena_t *a, mq_booking_t *out, mq_error_t *err) {
  mq_booking_t tmp;
  if (!out) out = &tmp;
  if (!strcmp(fate->outcome, "confirmed"))
    return mq_bookings_finish_confirm(b, h, NULL, fate->actor, trace_id, a, out, err);
  if (!strcmp(fate->outcome, "released")) return finish_return(b, h, MQ_HOLD_RELEASED, err);
  if (!strcmp(fate->outcome, "expired")) return finish_return(b, h, MQ_HOLD_EXPIRED, err);
  if (strcmp(fate->outcome, "payment")) return mq_error_set(err, MQ_INTERNAL, NULL, "unknown hold outcome");
  mq_decision_t pay;
  mq_code_t rc = mq_decision_get(b->app->store, h->id, "payment", a, &pay, err);
  if (rc == MQ_NOT_FOUND) {
    if (!strcmp(h->state, MQ_HOLD_PAYMENT_PENDING)) return MQ_OK;
    return mq_holds_set_state(
        b->app->store, h->id, MQ_HOLD_PAYMENT_PENDING, fate->payment_reference,
        fate->deadline_ms ? fate->deadline_ms : fate->at_ms + (int64_t)b->app->cfg->payment_window_s * 1000, err);
  }
  if (rc != MQ_OK) return rc;
  if (!strcmp(pay.outcome, "succeeded"))
    return mq_bookings_finish_confirm(b, h, pay.payment_reference, pay.actor, trace_id, a, out, err);
  return finish_return(b, h, !strcmp(pay.outcome, "timeout") ? MQ_HOLD_EXPIRED : MQ_HOLD_RELEASED, err);
}

/* ---- CreateHold ---- */

/* A UUID-shaped digest of (a, b): the hold id for an idempotency key, a
 * waitlist entry's id, a waitlist offer's hold id. */
void mq_bookings_derived_id(const char *user, const char *key, char out[37]) {
  size_t n = strlen(user) + strlen(key) + 2;
  char *buf = malloc(n);
  char hex[65];
  snprintf(buf, n, "%s\n%s", user, key);
  mq_token_hash(buf, hex);
  free(buf);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* The request's own fields, every bad one reported (the caller collects). */
static void check_items(const Marquee__Bookings__V1__CreateHoldRequest *req, mq_error_t *err) {
  if (req->n_items == 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "items", "name at least one ticket type");
  if (req->n_items > MAX_ITEMS)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "items", "at most %d ticket types per hold", MAX_ITEMS);
  for (size_t i = 0; i < req->n_items && i < MAX_ITEMS; i++) {
    const Marquee__Bookings__V1__HoldItem *it = req->items[i];
    char field[48];
    snprintf(field, sizeof field, "items[%zu].ticket_type_id", i);
    if (mq_check_uuid(err, field, it->ticket_type_id) == MQ_OK)
      for (size_t k = 0; k < i; k++)
        if (!strcasecmp(req->items[k]->ticket_type_id, it->ticket_type_id)) {
          mq_error_set(err, MQ_INVALID_ARGUMENT, field, "names the same ticket type as items[%zu]", k);
          break;
        }
    snprintf(field, sizeof field, "items[%zu].quantity", i);
    if (it->quantity == 0) mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at least 1");
  }
  if (req->access_code && strlen(req->access_code) > 64)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "access_code", "at most 64 bytes");
  if (req->idempotency_key && req->idempotency_key[0]) {
    size_t n = strlen(req->idempotency_key);
    bool printable = true;
    for (size_t i = 0; i < n; i++) printable &= req->idempotency_key[i] >= 0x21 && req->idempotency_key[i] <= 0x7e;
    if (n > 128)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "idempotency_key", "at most 128 characters");
    else if (!printable)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "idempotency_key", "printable ASCII without spaces only");
  }
}

void mq_bookings_iso_time(int64_t ms, char out[32]) {
  if (!ms) {
    out[0] = 0;
    return;
  }
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The event on sale? Drafts look absent to outsiders. */
static mq_code_t check_event(mq_call_t *call, const Marquee__Catalog__V1__Event *e, int64_t now, mq_error_t *err) {
  switch (e->state) {
    case MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED:
      break;
    case MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_CANCELLED:
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event is cancelled");
    case MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_COMPLETED:
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event has ended");
    default:
      if (mq_catalog_is_member(call, e->organization_id))
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event is a draft: publish it first");
      return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  }
  if (e->starts_at && mq_pb_timestamp_ms(e->starts_at) <= now)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event has started: sales are closed");
  return MQ_OK;
}

static const Marquee__Catalog__V1__TicketType *find_tt(const Marquee__Catalog__V1__Event *e, const char *id) {
  for (size_t i = 0; i < e->n_ticket_types; i++)
    if (!strcasecmp(e->ticket_types[i]->ticket_type_id, id)) return e->ticket_types[i];
  return NULL;
}

static mq_code_t check_item(const Marquee__Catalog__V1__Event *e, const Marquee__Catalog__V1__TicketType *t,
                            const char *code_hash, uint32_t qty, size_t i, int64_t now, mq_error_t *err) {
  char f[48];
  snprintf(f, sizeof f, "items[%zu].ticket_type_id", i);
  if (!t || (t->hidden && (!code_hash || !t->access_code || !t->access_code[0] || strcmp(code_hash, t->access_code))))
    return mq_error_set(err, MQ_NOT_FOUND, f, "no such ticket type for this event%s",
                        t ? " (hidden types need their access code)" : "");
  char when[32];
  if (t->sales_start && mq_pb_timestamp_ms(t->sales_start) > now) {
    mq_bookings_iso_time(mq_pb_timestamp_ms(t->sales_start), when);
    return mq_error_set(err, MQ_FAILED_PRECONDITION, f, "sales for \"%s\" open at %s", t->name, when);
  }
  if (t->sales_end && mq_pb_timestamp_ms(t->sales_end) <= now) {
    mq_bookings_iso_time(mq_pb_timestamp_ms(t->sales_end), when);
    return mq_error_set(err, MQ_FAILED_PRECONDITION, f, "sales for \"%s\" closed at %s", t->name, when);
  }
  (void)e;
  snprintf(f, sizeof f, "items[%zu].quantity", i);
  uint32_t min = t->min_per_order ? t->min_per_order : 1, max = t->max_per_order ? t->max_per_order : 10;
  if (qty < min) return mq_error_set(err, MQ_INVALID_ARGUMENT, f, "at least %u of \"%s\" per order", min, t->name);
  if (qty > max) return mq_error_set(err, MQ_INVALID_ARGUMENT, f, "at most %u of \"%s\" per order", max, t->name);
  if ((int64_t)qty > t->capacity)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, f, "more than the %" PRId64 " \"%s\" there are", t->capacity,
                        t->name);
  return MQ_OK;
}

/* A stored hold answering a retry: the same request, or INVALID_ARGUMENT. */
static mq_code_t answer_retry(mq_call_t *call, const char *id, const char *request_hash, hold_pb *resp,
                              mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_hold_t h;
  mq_code_t rc = mq_holds_get(app->store, id, mq_call_arena(call), &h, err);
  if (rc != MQ_OK) return rc;
  if (strcmp(h.request_hash, request_hash))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "idempotency_key",
                        "was used for a different request; use a new key for a new request");
  *resp = *hold_view(mq_call_arena(call), &h);
  return MQ_OK;
}

/* The event as CreateHold needs it (ticket types with capacities, windows
 * and access-code hashes): from app->sale_events when cached (invalidated by
 * every change of the event, here and through Kafka; at most 2 s old when
 * such news cannot arrive), else from the store. On FerretDB a read of an
 * event by _id scans the events collection (2.8 ms measured with few
 * events), so a miss is single-flight: when the entry expires under load,
 * one caller reads and the others wait for its result instead of all
 * reading at once. A hold that reads a capacity a moment old is like one
 * taken a moment earlier (capacity.h I2). */
typedef struct mq_sale_fill {
  struct mq_sale_fill *next;
  char key[80];
} mq_sale_fill_t;

static bool sale_event_cached(mq_app_t *app, const char *key, mq_arena_t *a, Marquee__Catalog__V1__Event **out) {
  void *bytes = NULL;
  size_t len = 0;
  if (!mq_cache_get(app->sale_events, key, a, &bytes, &len)) return false;
  ProtobufCAllocator al = mq_arena_allocator(a);
  *out = marquee__catalog__v1__event__unpack(&al, len, bytes);
  return *out != NULL;
}

static mq_code_t sale_event(mq_app_t *app, const char *id, mq_arena_t *a, Marquee__Catalog__V1__Event **out,
                            mq_error_t *err) {
  if (!app->sale_events || !mq_cache_enabled(app->sale_events)) return mq_events_get(app->store, id, a, out, err);
  char key[80];
  snprintf(key, sizeof key, "e:%s", id);
  if (sale_event_cached(app, key, a, out)) return MQ_OK;
  mq_bookings_t *b = app->bookings;
  mq_sale_fill_t me = {0};
  snprintf(me.key, sizeof me.key, "%s", key);
  pthread_mutex_lock(&b->fill_mu);
  bool waited = false;
  for (;;) {
    mq_sale_fill_t *f = b->fills;
    while (f && strcmp(f->key, key)) f = f->next;
    if (!f) break;
    pthread_cond_wait(&b->fill_cv, &b->fill_mu); /* someone is reading it */
    waited = true;
  }
  if (waited) { /* its read is done: use it, or (failed, invalidated meanwhile) read without waiting again */
    pthread_mutex_unlock(&b->fill_mu);
    if (sale_event_cached(app, key, a, out)) return MQ_OK;
    return mq_events_get(app->store, id, a, out, err);
  }
  me.next = b->fills;
  b->fills = &me;
  pthread_mutex_unlock(&b->fill_mu);
  uint64_t ticket = mq_cache_ticket(app->sale_events, key);
  mq_code_t rc = mq_events_get(app->store, id, a, out, err);
  if (rc == MQ_OK) {
    size_t n = marquee__catalog__v1__event__get_packed_size(*out);
    uint8_t *buf = mq_arena_alloc(a, n ? n : 1);
    marquee__catalog__v1__event__pack(*out, buf);
    mq_cache_put(app->sale_events, key, buf, n, ticket);
  }
  pthread_mutex_lock(&b->fill_mu);
  mq_sale_fill_t **pp = &b->fills;
  while (*pp != &me) pp = &(*pp)->next;
  *pp = me.next;
  pthread_cond_broadcast(&b->fill_cv);
  pthread_mutex_unlock(&b->fill_mu);
  return rc;
}

mq_code_t mq_hold_create_handler(mq_call_t *call, const Marquee__Bookings__V1__CreateHoldRequest *req, hold_pb *resp,
                                 mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_arena_t *a = mq_call_arena(call);
  const char *user = actor_of(call);
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_uuid(err, "event_id", req->event_id);
  check_items(req, err);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  Marquee__Catalog__V1__Event *e;
  rc = sale_event(app, req->event_id, a, &e, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc != MQ_OK) return rc;
  int64_t now = mq_now_unix_ms();
  if ((rc = check_event(call, e, now, err)) != MQ_OK) return rc;

  char code_hash[65] = "";
  if (req->access_code && req->access_code[0]) mq_token_hash(req->access_code, code_hash);
  mq_hold_t h = {0};
  h.lines = mq_arena_alloc(a, req->n_items * sizeof *h.lines);
  /* pools: per-user limits first (cheap to fail), then ticket types, then the event */
  mq_pool_want_t *want = mq_arena_alloc(a, (2 * req->n_items + 1) * sizeof *want);
  size_t n_want = 0, n_user = 0;
  uint32_t units = 0;
  size_t req_len = 64 + req->n_items * 48;
  char *req_text = mq_arena_alloc(a, req_len);
  size_t used = (size_t)snprintf(req_text, req_len, "%s|%s", e->event_id, code_hash);
  for (size_t i = 0; i < req->n_items; i++) {
    const Marquee__Bookings__V1__HoldItem *it = req->items[i];
    const Marquee__Catalog__V1__TicketType *t = find_tt(e, it->ticket_type_id);
    if ((rc = check_item(e, t, code_hash[0] ? code_hash : NULL, it->quantity, i, now, err)) != MQ_OK) return rc;
    mq_hold_line_t *l = &h.lines[h.n_lines++];
    l->ticket_type_id = t->ticket_type_id;
    l->name = t->name;
    l->quantity = it->quantity;
    l->unit_minor = t->price ? t->price->amount_minor : 0;
    h.total_minor += l->unit_minor * (int64_t)l->quantity;
    units += it->quantity;
    used += (size_t)snprintf(req_text + used, req_len - used, "|%s:%u", t->ticket_type_id, it->quantity);
    if (t->max_per_user) {
      mq_pool_want_t *w = &want[n_want++];
      mq_pool_user(w->pool, t->ticket_type_id, user);
      w->capacity = t->max_per_user;
      w->units = it->quantity;
      n_user++;
    }
  }
  if ((rc = mq_bookings_price(b, e, &h, now, a, err)) != MQ_OK) return rc; /* subtotal, taxes, total */
  for (size_t i = 0; i < h.n_lines; i++) {
    mq_pool_want_t *w = &want[n_want++];
    mq_pool_ticket_type(w->pool, h.lines[i].ticket_type_id);
    w->capacity = find_tt(e, h.lines[i].ticket_type_id)->capacity;
    w->units = h.lines[i].quantity;
  }
  if (e->capacity > 0) {
    mq_pool_want_t *w = &want[n_want++];
    mq_pool_event(w->pool, e->event_id);
    w->capacity = e->capacity;
    w->units = units;
  }
  char request_hash[65] = "";
  char *id = mq_arena_alloc(a, 37);
  bool keyed = req->idempotency_key && req->idempotency_key[0];
  if (keyed) { /* only a keyed hold can be retried: only it keeps its request's hash */
    mq_token_hash(req_text, request_hash);
    mq_bookings_derived_id(user, req->idempotency_key, id);
    rc = answer_retry(call, id, request_hash, resp, err); /* a plain retry takes nothing */
    if (rc != MQ_NOT_FOUND) return rc;
  } else {
    mq_uuid_v4(id);
  }
  h.id = id;
  h.user_id = (char *)user;
  h.event_id = e->event_id;
  h.organization_id = e->organization_id;
  h.currency = e->currency;
  h.state = (char *)MQ_HOLD_ACTIVE;
  h.request_hash = request_hash;
  h.created_ms = now;
  h.expires_ms = now + (int64_t)app->cfg->hold_ttl_s * 1000;

  for (size_t i = 0; i < h.n_lines; i++) /* the line goes first (waitlist.c) */
    if (mq_waitlist_has_line(b, h.lines[i].ticket_type_id)) {
      char f[48];
      snprintf(f, sizeof f, "items[%zu].quantity", i);
      return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, f, "sold out: people are on the waitlist (JoinWaitlist)");
    }
  size_t short_at = 0;
  int64_t left = 0;
  rc = mq_capacity_take(b->capacity, app->store, id, h.expires_ms, want, n_want, a, &h.slots, &h.n_slots, &short_at,
                        &left, err);
  if (rc == MQ_RESOURCE_EXHAUSTED) {
    const mq_pool_want_t *w = &want[short_at];
    const char *tt = w->pool + 2; /* "t:<id>" or "u:<id>:<user>" */
    size_t item = 0;
    for (size_t i = 0; i < req->n_items; i++)
      if (!strncasecmp(req->items[i]->ticket_type_id, tt, 36)) item = i;
    char f[48];
    snprintf(f, sizeof f, "items[%zu].quantity", item);
    if (short_at < n_user)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, f,
                          "at most %" PRId64 " of this ticket type per person; you can add %" PRId64, w->capacity,
                          left);
    if (w->pool[0] == 'e') {
      if (left == 0) return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, "items", "sold out: the event is full");
      return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, "items", "only %" PRId64 " places left at this event", left);
    }
    if (left == 0) return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, f, "sold out");
    return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, f, "only %" PRId64 " left", left);
  }
  if (rc != MQ_OK) return rc;

  Marquee__Events__V1__HoldCreated *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__hold_created__init(p);
  p->hold_id = h.id;
  p->event_id = h.event_id;
  p->organization_id = h.organization_id;
  p->user_id = h.user_id;
  p->units = mq_booked_units(a, h.lines, h.n_lines);
  p->n_units = h.n_lines;
  p->total_minor = h.total_minor;
  p->currency = h.currency;
  p->expires_at = mq_pb_timestamp(a, h.expires_ms);
  p->slots = h.slots;
  p->n_slots = h.n_slots;
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.HoldCreated", h.id, user, mq_call_trace_id(call), mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED;
  ev.env.hold_created = p;
  rc = mq_holds_insert(app->store, &h, &ev, err);
  if (rc != MQ_OK) {
    mq_error_t e2 = {0};
    if (mq_capacity_release(b->capacity, app->store, h.id, h.slots, h.n_slots, &e2) != MQ_OK)
      mq_log(MQ_LOG_WARN, "bookings.cleanup_failed", "hold %s: units left for reclaim: %s", h.id, e2.message);
    if (rc == MQ_ALREADY_EXISTS && keyed) return answer_retry(call, id, request_hash, resp, err);
    return rc;
  }
  atomic_fetch_add(&b->holds_total, 1);
  mq_availability_changed(app, h.event_id);
  mq_bookings_due_at(b, h.id, h.expires_ms);
  *resp = *hold_view(a, &h);
  return MQ_OK;
}

mq_code_t mq_hold_get_handler(mq_call_t *call, const Marquee__Bookings__V1__GetHoldRequest *req, hold_pb *resp,
                              mq_error_t *err) {
  mq_hold_t h;
  mq_code_t rc = load_own(call, req->hold_id, &h, err);
  if (rc != MQ_OK) return rc;
  *resp = *hold_view(mq_call_arena(call), &h);
  return MQ_OK;
}

/* Reads the fate decision after losing the insert. */
static mq_code_t decided_before(mq_call_t *call, mq_hold_t *h, mq_decision_t *fate, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_decision_get(app->store, h->id, "fate", mq_call_arena(call), fate, err);
  if (rc == MQ_NOT_FOUND) /* cannot be: the insert said it exists */
    return mq_error_set(err, MQ_UNAVAILABLE, "hold_id", "the hold's outcome is being recorded; retry");
  return rc;
}

static const char *fate_words(const char *outcome) {
  if (!strcmp(outcome, "confirmed")) return "already confirmed";
  if (!strcmp(outcome, "released")) return "released";
  if (!strcmp(outcome, "expired")) return "expired";
  if (!strcmp(outcome, "payment")) return "in payment";
  return outcome;
}

/* HoldReleased for `h` into `ev` (in place; the payload lives in `a`). */
static void released_event(mq_event_t *ev, mq_arena_t *a, const mq_hold_t *h, const char *reason, const char *actor,
                           const char *trace_id, const char *request_id) {
  Marquee__Events__V1__HoldReleased *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__hold_released__init(p);
  p->hold_id = h->id;
  p->event_id = h->event_id;
  p->units = mq_booked_units(a, h->lines, h->n_lines);
  p->n_units = h->n_lines;
  p->reason = (char *)reason;
  mq_bookings_event(ev, "bookings.HoldReleased", h->id, actor, trace_id, request_id);
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED;
  ev->env.hold_released = p;
}

mq_code_t mq_hold_release_handler(mq_call_t *call, const Marquee__Bookings__V1__ReleaseHoldRequest *req, hold_pb *resp,
                                  mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_arena_t *a = mq_call_arena(call);
  mq_hold_t h;
  mq_code_t rc = load_own(call, req->hold_id, &h, err);
  if (rc != MQ_OK) return rc;
  if (strcmp(h.state, MQ_HOLD_ACTIVE) && strcmp(h.state, MQ_HOLD_RELEASED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s, not active", h.state);
  mq_event_t ev;
  released_event(&ev, a, &h, "released", actor_of(call), mq_call_trace_id(call), mq_call_request_id(call));
  rc = mq_decide(app->store, h.id, "fate", "released", actor_of(call), NULL, NULL, false, &ev, 1, err);
  mq_decision_t fate = {.outcome = (char *)"released"};
  if (rc == MQ_ALREADY_EXISTS) {
    if ((rc = decided_before(call, &h, &fate, err)) != MQ_OK) return rc;
    if (strcmp(fate.outcome, "released")) {
      mq_bookings_finish_decided(b, &h, &fate, mq_call_trace_id(call), a, NULL,
                                 err); /* help it along; the answer stands */
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s", fate_words(fate.outcome));
    }
  } else if (rc != MQ_OK) {
    return rc;
  } else {
  }
  if ((rc = finish_return(b, &h, MQ_HOLD_RELEASED, err)) != MQ_OK) return rc;
  h.state = (char *)MQ_HOLD_RELEASED;
  *resp = *hold_view(a, &h);
  return MQ_OK;
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_confirm_free(mq_bookings_t *b, mq_hold_t *h, const char *actor, const char *trace_id,
                                   mq_arena_t *a, mq_booking_t *bk, mq_error_t *err) {
  mq_app_t *app = b->app;
  mq_code_t rc;
  if (!strcmp(h->state, MQ_HOLD_ACTIVE)) {
    if (h->total_minor > 0)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id",
                          "payment required: this hold costs %" PRId64
                          " (minor units of %s); pay with PaymentService.CreatePayment, which confirms it",
                          h->total_minor, h->currency);
    if (mq_now_unix_ms() >= h->expires_ms)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold has expired; make a new one");
    rc = mq_decide(app->store, h->id, "fate", "confirmed", actor, NULL, NULL, false, NULL, 0, err);
    if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  }
  mq_decision_t fate;
  rc = mq_decision_get(app->store, h->id, "fate", a, &fate, err);
  if (rc == MQ_NOT_FOUND) /* cannot be: the insert said it exists */
    return mq_error_set(err, MQ_UNAVAILABLE, "hold_id", "the hold's outcome is being recorded; retry");
  if (rc != MQ_OK) return rc;
  if (strcmp(fate.outcome, "confirmed") && strcmp(fate.outcome, "payment")) {
    mq_bookings_finish_decided(b, h, &fate, trace_id, a, NULL, err);
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s", fate_words(fate.outcome));
  }
  if ((rc = mq_bookings_finish_decided(b, h, &fate, trace_id, a, bk, err)) != MQ_OK) return rc;
  if (!strcmp(fate.outcome, "payment")) {
    mq_hold_t now_h;
    if (mq_holds_get(app->store, h->id, a, &now_h, err) == MQ_OK && strcmp(now_h.state, MQ_HOLD_CONFIRMED))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s", now_h.state);
  }
  return MQ_OK;
}

mq_code_t mq_hold_confirm_handler(mq_call_t *call, const Marquee__Bookings__V1__ConfirmHoldRequest *req,
                                  Marquee__Bookings__V1__Booking *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_hold_t h;
  mq_booking_t bk;
  mq_code_t rc = load_own(call, req->hold_id, &h, err);
  if (rc == MQ_OK)
    rc = mq_bookings_confirm_free(b, &h, actor_of(call), mq_call_trace_id(call), mq_call_arena(call), &bk, err);
  if (rc != MQ_OK) return rc;
  *resp = *mq_booking_view(call, b, &bk, NULL, 0, true);
  return MQ_OK;
}

/* ---- the payment steps (payments service) ---- */

static mq_code_t check_reference(const char *ref, mq_error_t *err) {
  mq_code_t rc = mq_check_text(err, "payment_reference", ref, 1, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  return rc;
}

static mq_code_t load_any(mq_call_t *call, const char *hold_id, mq_hold_t *h, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "hold_id", hold_id);
  if (rc == MQ_OK) rc = mq_holds_get(app->store, hold_id, mq_call_arena(call), h, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "hold_id", "no such hold");
  return rc;
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_start_payment(mq_bookings_t *b, mq_hold_t *h, const char *reference, int64_t deadline_ms,
                                    const char *actor, const char *trace_id, const char *request_id, mq_arena_t *a,
                                    mq_error_t *err) {
  mq_app_t *app = b->app;
  if (h->total_minor == 0)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is free: its owner confirms it");
  int64_t now = mq_now_unix_ms();
  int64_t deadline = deadline_ms ? deadline_ms : now + (int64_t)app->cfg->payment_window_s * 1000;
  if (!strcmp(h->state, MQ_HOLD_ACTIVE) && now >= h->expires_ms)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold has expired");
  Marquee__Events__V1__HoldPaymentStarted *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__hold_payment_started__init(p);
  p->hold_id = h->id;
  p->event_id = h->event_id;
  p->payment_reference = (char *)reference;
  p->payment_deadline = mq_pb_timestamp(a, deadline);
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.HoldPaymentStarted", h->id, actor, trace_id, request_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_PAYMENT_STARTED;
  ev.env.hold_payment_started = p;
  mq_code_t rc =
      mq_decide_until(app->store, h->id, "fate", "payment", actor, reference, NULL, deadline, false, &ev, 1, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  mq_decision_t fate;
  if ((rc = mq_decision_get(app->store, h->id, "fate", a, &fate, err)) != MQ_OK) return rc;
  if (strcmp(fate.outcome, "payment")) {
    mq_bookings_finish_decided(b, h, &fate, trace_id, a, NULL, err);
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s", fate_words(fate.outcome));
  }
  if (strcmp(fate.payment_reference, reference))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_reference",
                        "the hold is already in payment under another reference");
  if ((rc = mq_bookings_finish_decided(b, h, &fate, trace_id, a, NULL, err)) != MQ_OK) return rc;
  if ((rc = mq_holds_get(app->store, h->id, a, h, err)) != MQ_OK) return rc;
  if (h->payment_deadline_ms) mq_bookings_due_at(b, h->id, h->payment_deadline_ms);
  return MQ_OK;
}

mq_code_t mq_hold_start_payment_handler(mq_call_t *call, const Marquee__Bookings__V1__StartHoldPaymentRequest *req,
                                        hold_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_hold_t h;
  mq_code_t rc = load_any(call, req->hold_id, &h, err);
  if (rc == MQ_OK) rc = check_reference(req->payment_reference, err);
  if (rc == MQ_OK)
    rc = mq_bookings_start_payment(app->bookings, &h, req->payment_reference, 0, actor_of(call), mq_call_trace_id(call),
                                   mq_call_request_id(call), a, err);
  if (rc != MQ_OK) return rc;
  *resp = *hold_view(a, &h);
  return MQ_OK;
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_complete_payment(mq_bookings_t *b, mq_hold_t *h, const char *reference, bool succeeded,
                                       const char *actor, const char *trace_id, const char *request_id, mq_arena_t *a,
                                       mq_booking_t *bk, mq_error_t *err) {
  mq_app_t *app = b->app;
  mq_decision_t fate;
  mq_code_t rc = mq_decision_get(app->store, h->id, "fate", a, &fate, err);
  if (rc == MQ_NOT_FOUND || (rc == MQ_OK && strcmp(fate.outcome, "payment")))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is not in payment (StartHoldPayment first)");
  if (rc != MQ_OK) return rc;
  if (strcmp(fate.payment_reference, reference))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_reference",
                        "is not the reference the payment started with");
  const char *outcome = succeeded ? "succeeded" : "failed";
  mq_event_t ev;
  size_t n_ev = 0;
  if (!succeeded) { /* the units go back: HoldReleased rides in the decision */
    released_event(&ev, a, h, "payment_failed", actor, trace_id, request_id);
    n_ev = 1;
  }
  rc = mq_decide(app->store, h->id, "payment", outcome, actor, reference, NULL, false, &ev, n_ev, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  mq_decision_t pay;
  if ((rc = mq_decision_get(app->store, h->id, "payment", a, &pay, err)) != MQ_OK) return rc;
  if ((rc = mq_bookings_finish_decided(b, h, &fate, trace_id, a, bk, err)) != MQ_OK) return rc;
  if (strcmp(pay.outcome, outcome)) {
    if (!strcmp(pay.outcome, "timeout"))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id",
                          "the payment window closed first and the hold was released: refund the payment");
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "succeeded", "the payment was already recorded as %s",
                        pay.outcome);
  }
  return mq_holds_get(app->store, h->id, a, h, err);
}

mq_code_t mq_hold_complete_payment_handler(mq_call_t *call,
                                           const Marquee__Bookings__V1__CompleteHoldPaymentRequest *req,
                                           Marquee__Bookings__V1__CompleteHoldPaymentResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_arena_t *a = mq_call_arena(call);
  mq_hold_t h;
  mq_code_t rc = load_any(call, req->hold_id, &h, err);
  if (rc == MQ_OK) rc = check_reference(req->payment_reference, err);
  if (rc != MQ_OK) return rc;
  mq_booking_t bk;
  rc = mq_bookings_complete_payment(b, &h, req->payment_reference, req->succeeded, actor_of(call),
                                    mq_call_trace_id(call), mq_call_request_id(call), a, &bk, err);
  if (rc != MQ_OK) return rc;
  resp->hold = hold_view(a, &h);
  if (req->succeeded) resp->booking = mq_booking_view(call, b, &bk, NULL, 0, true);
  return MQ_OK;
}

void mq_bookings_slots_taken(mq_app_t *app, char *const *slots, size_t n) {
  if (!app->bookings) return;
  for (size_t i = 0; i < n; i++) mq_capacity_hint(app->bookings->capacity, slots[i], true);
}

/* ---- holds made for the waitlist ---- */

/* Takes the units of h's lines (per-user limits, ticket types, the event)
 * and inserts h as an ACTIVE hold with HoldCreated: h has its id, user,
 * lines and price; the rest is filled in here. RESOURCE_EXHAUSTED when the
 * units are not there, ALREADY_EXISTS when the id is taken. */
static mq_code_t place_hold(mq_bookings_t *b, const Marquee__Catalog__V1__Event *e, mq_hold_t *h, mq_arena_t *a,
                            mq_error_t *err) {
  mq_app_t *app = b->app;
  int64_t now = mq_now_unix_ms();
  mq_pool_want_t *want = mq_arena_alloc(a, (2 * h->n_lines + 1) * sizeof *want);
  size_t n_want = 0;
  uint32_t units = 0;
  for (size_t i = 0; i < h->n_lines; i++) {
    const Marquee__Catalog__V1__TicketType *t = find_tt(e, h->lines[i].ticket_type_id);
    if (!t) return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_type_id", "the ticket type is gone");
    if (t->max_per_user) {
      mq_pool_user(want[n_want].pool, t->ticket_type_id, h->user_id);
      want[n_want].capacity = t->max_per_user;
      want[n_want++].units = h->lines[i].quantity;
    }
    units += h->lines[i].quantity;
  }
  for (size_t i = 0; i < h->n_lines; i++) {
    mq_pool_ticket_type(want[n_want].pool, h->lines[i].ticket_type_id);
    want[n_want].capacity = find_tt(e, h->lines[i].ticket_type_id)->capacity;
    want[n_want++].units = h->lines[i].quantity;
  }
  if (e->capacity > 0) {
    mq_pool_event(want[n_want].pool, e->event_id);
    want[n_want].capacity = e->capacity;
    want[n_want++].units = units;
  }
  h->event_id = e->event_id;
  h->organization_id = e->organization_id;
  h->currency = e->currency;
  h->state = (char *)MQ_HOLD_ACTIVE;
  h->created_ms = now;
  h->expires_ms = now + (int64_t)app->cfg->hold_ttl_s * 1000;
  size_t short_at;
  int64_t left;
  mq_code_t rc = mq_capacity_take(b->capacity, app->store, h->id, h->expires_ms, want, n_want, a, &h->slots,
                                  &h->n_slots, &short_at, &left, err);
  if (rc != MQ_OK) return rc;
  Marquee__Events__V1__HoldCreated *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__hold_created__init(p);
  p->hold_id = h->id;
  p->event_id = h->event_id;
  p->organization_id = h->organization_id;
  p->user_id = h->user_id;
  p->units = mq_booked_units(a, h->lines, h->n_lines);
  p->n_units = h->n_lines;
  p->total_minor = h->total_minor;
  p->currency = h->currency;
  p->expires_at = mq_pb_timestamp(a, h->expires_ms);
  p->slots = h->slots;
  p->n_slots = h->n_slots;
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.HoldCreated", h->id, "system", NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED;
  ev.env.hold_created = p;
  rc = mq_holds_insert(app->store, h, &ev, err);
  if (rc != MQ_OK) {
    mq_error_t e2 = {0};
    mq_capacity_release(b->capacity, app->store, h->id, h->slots, h->n_slots, &e2);
    return rc;
  }
  mq_availability_changed(app, h->event_id);
  mq_bookings_due_at(b, h->id, h->expires_ms);
  return MQ_OK;
}

mq_code_t mq_bookings_offer_hold(mq_bookings_t *b, const Marquee__Catalog__V1__Event *e,
                                 const Marquee__Catalog__V1__TicketType *t, const char *user, uint32_t qty,
                                 const char *id, mq_arena_t *a, int64_t *expires_ms, mq_error_t *err) {
  mq_hold_t h = {0};
  h.lines = mq_arena_alloc(a, sizeof *h.lines);
  h.lines[0] = (mq_hold_line_t){.ticket_type_id = t->ticket_type_id,
                                .name = t->name,
                                .quantity = qty,
                                .unit_minor = t->price ? t->price->amount_minor : 0};
  h.n_lines = 1;
  mq_code_t rc = mq_bookings_price(b, e, &h, mq_now_unix_ms(), a, err);
  if (rc != MQ_OK) return rc;
  h.id = (char *)id;
  h.user_id = (char *)user;
  h.request_hash = (char *)"waitlist-offer";
  if ((rc = place_hold(b, e, &h, a, err)) == MQ_OK) *expires_ms = h.expires_ms;
  return rc;
}

/* Declared in bookings.h. */
mq_code_t mq_bookings_retake(mq_bookings_t *b, const mq_hold_t *old, const char *new_id, mq_arena_t *a, mq_hold_t *out,
                             mq_error_t *err) {
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_events_get(b->app->store, old->event_id, a, &e, err);
  if (rc != MQ_OK) return rc;
  if (e->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event is no longer on sale");
  memset(out, 0, sizeof *out);
  out->id = (char *)new_id;
  out->user_id = old->user_id;
  out->lines = old->lines;
  out->n_lines = old->n_lines;
  out->price = old->price; /* what was paid */
  out->total_minor = old->total_minor;
  out->request_hash = (char *)"retake";
  return place_hold(b, e, out, a, err);
}

mq_code_t mq_bookings_release_hold(mq_bookings_t *b, mq_hold_t *h, const char *actor, mq_arena_t *a, mq_error_t *err) {
  mq_event_t ev;
  released_event(&ev, a, h, "released", actor, NULL, NULL);
  mq_code_t rc = mq_decide(b->app->store, h->id, "fate", "released", actor, NULL, NULL, false, &ev, 1, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  mq_decision_t fate;
  if ((rc = mq_decision_get(b->app->store, h->id, "fate", a, &fate, err)) != MQ_OK) return rc;
  return mq_bookings_finish_decided(b, h, &fate, NULL, a, NULL, err);
}
