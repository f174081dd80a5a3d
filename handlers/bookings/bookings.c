/*
 * bookings.c — marquee.bookings.v1.BookingService, the booking half:
 * GetBooking, ListMyBookings, ListEventBookings, CancelBooking; and the
 * views shared with tickets.c (bookings issue, item 3).
 *
 * Who may see a booking: its owner, and members of the event's
 * organization (any role: check-in staff need attendee names). Anyone else
 * gets NOT_FOUND, exactly as for an unknown id. Cancelling: the owner until
 * the event's cutoff (Event.attendee_cancel_cutoff_hours before the start,
 * never when attendee_cancel_disabled), an owner or manager always.
 *
 * A cancellation is decided once ("<booking>:cancel" in hold_decisions,
 * carrying BookingCancelled), then finished: the units go back, the
 * booking's state changes, and what was paid is refunded in full (the
 * payments module's app->refund_booking: the event's rules allowed this
 * cancellation, or the organizer made it). The decision says done=false
 * until all that happened, so a crash or an unreachable gateway in between
 * is finished by the sweeper (holds.c).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "handlers/identity/identity.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/bookings/v1/bookings.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define PAGE_DEFAULT 20
#define PAGE_MAX 100

typedef Marquee__Bookings__V1__Booking booking_pb;

static const mq_checkin_t *checkin_of(const char *ticket_id, const mq_checkin_t *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(c[i].ticket_id, ticket_id)) return &c[i];
  return NULL;
}

Marquee__Bookings__V1__Ticket *mq_ticket_view(mq_call_t *call, mq_bookings_t *b, const mq_booking_t *bk, size_t i,
                                              const mq_checkin_t *checkins, size_t n_checkins, bool with_codes) {
  mq_arena_t *a = mq_call_arena(call);
  const mq_ticket_t *t = &bk->tickets[i];
  Marquee__Bookings__V1__Ticket *p = mq_arena_alloc(a, sizeof *p);
  marquee__bookings__v1__ticket__init(p);
  p->ticket_id = t->id;
  p->booking_id = bk->id;
  p->event_id = bk->event_id;
  p->ticket_type_id = t->ticket_type_id;
  p->ticket_type_name = t->ticket_type_name;
  p->attendee_name = t->attendee_name;
  p->cancelled = !strcmp(bk->state, MQ_BOOKING_CANCELLED);
  p->code = (char *)"";
  if (with_codes && !p->cancelled) {
    mq_ticket_claims_t c;
    char *code = mq_arena_alloc(a, MQ_TICKET_CODE_MAX);
    mq_error_t ignored = {0};
    if (mq_uuid_parse(t->id, c.ticket_id) && mq_uuid_parse(bk->id, c.booking_id) &&
        mq_uuid_parse(bk->event_id, c.event_id) &&
        mq_ticket_code_sign(b->keys, &c, code, MQ_TICKET_CODE_MAX, &ignored) == MQ_OK)
      p->code = code;
  }
  const mq_checkin_t *ci = checkin_of(t->id, checkins, n_checkins);
  if (ci) {
    p->checked_in_at = mq_pb_timestamp(a, ci->at_ms);
    p->checked_in_gate = ci->gate;
  }
  return p;
}

booking_pb *mq_booking_view(mq_call_t *call, mq_bookings_t *b, const mq_booking_t *bk, const mq_checkin_t *checkins,
                            size_t n_checkins, bool with_codes) {
  mq_arena_t *a = mq_call_arena(call);
  booking_pb *p = mq_arena_alloc(a, sizeof *p);
  marquee__bookings__v1__booking__init(p);
  p->booking_id = bk->id;
  p->hold_id = bk->hold_id;
  p->event_id = bk->event_id;
  p->organization_id = bk->organization_id;
  p->user_id = bk->user_id;
  p->state = !strcmp(bk->state, MQ_BOOKING_CANCELLED) ? MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED
                                                      : MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CONFIRMED;
  p->lines = mq_price_lines(a, bk->lines, bk->n_lines, bk->currency);
  p->n_lines = bk->n_lines;
  p->total = mq_money(a, bk->total_minor, bk->currency);
  p->subtotal = mq_money(a, bk->price.subtotal_minor, bk->currency);
  p->taxes = mq_tax_lines(a, &bk->price, bk->currency);
  p->n_taxes = bk->price.n_taxes;
  p->tax_included = bk->price.tax_included;
  if (bk->price.fee_minor) p->service_fee = mq_money(a, bk->price.fee_minor, bk->currency);
  p->tickets = mq_arena_alloc(a, (bk->n_tickets ? bk->n_tickets : 1) * sizeof *p->tickets);
  for (size_t i = 0; i < bk->n_tickets; i++)
    p->tickets[p->n_tickets++] = mq_ticket_view(call, b, bk, i, checkins, n_checkins, with_codes);
  p->payment_reference = bk->payment_reference;
  p->buyer_name = bk->buyer_name;
  p->buyer_email = bk->buyer_email;
  p->created_at = mq_pb_timestamp(a, bk->created_ms);
  if (bk->cancelled_ms) p->cancelled_at = mq_pb_timestamp(a, bk->cancelled_ms);
  p->cancel_reason = bk->cancel_reason;
  p->cancelled_by = bk->cancelled_by;
  return p;
}

mq_code_t mq_booking_load_for(mq_call_t *call, const char *booking_id, int weakest_member_role, mq_booking_t *out,
                              bool *is_member, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  const mq_principal_t *who = mq_call_principal(call);
  *is_member = false;
  mq_code_t rc = mq_check_uuid(err, "booking_id", booking_id);
  if (rc == MQ_OK) rc = mq_bookings_get(app->store, booking_id, mq_call_arena(call), out, err);
  if (rc == MQ_OK) {
    if (who && !strcmp(out->user_id, who->subject)) {
      mq_call_authorized(call);
      return MQ_OK;
    }
    if (weakest_member_role < 0) return mq_error_set(err, MQ_NOT_FOUND, "booking_id", "no such booking");
    rc = mq_org_require(call, out->organization_id, weakest_member_role, NULL, err);
    if (rc == MQ_OK) *is_member = true;
    if (rc == MQ_NOT_FOUND) rc = MQ_NOT_FOUND;
  }
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "booking_id", "no such booking");
  return rc;
}

mq_code_t mq_booking_get_handler(mq_call_t *call, const Marquee__Bookings__V1__GetBookingRequest *req, booking_pb *resp,
                                 mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_booking_t bk;
  bool member;
  mq_code_t rc = mq_booking_load_for(call, req->booking_id, MQ_ORG_CHECKIN, &bk, &member, err);
  if (rc != MQ_OK) return rc;
  mq_checkin_t *ci = NULL;
  size_t n = 0;
  if ((rc = mq_checkins_of_booking(app->store, bk.id, mq_call_arena(call), &ci, &n, err)) != MQ_OK) return rc;
  *resp = *mq_booking_view(call, app->bookings, &bk, ci, n, true);
  return MQ_OK;
}

static void reply_page(mq_call_t *call, const ProtobufCMessage *req, mq_booking_t *v, size_t n, uint32_t limit,
                       Marquee__Bookings__V1__ListBookingsResponse *resp) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  resp->bookings = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->bookings);
  for (size_t i = 0; i < n; i++)
    resp->bookings[resp->n_bookings++] = mq_booking_view(call, app->bookings, &v[i], NULL, 0, false);
  resp->next_page_token = (char *)"";
  if (n == limit && n) resp->next_page_token = mq_page_token_make_key(a, req, v[n - 1].created_ms, v[n - 1].id);
}

/* page tokens (lib/mq_page.h): the cursor is "<created ms>.<booking id>" */
static mq_code_t page_of(mq_call_t *call, const ProtobufCMessage *req, uint32_t page_size, const char *page_token,
                         mq_bookings_query_t *q, mq_error_t *err) {
  mq_code_t rc = mq_check_page_size(err, "page_size", page_size, PAGE_DEFAULT, PAGE_MAX, &q->limit);
  if (rc == MQ_OK)
    rc = mq_page_token_read_key(mq_call_arena(call), req, "page_token", page_token, &q->has_cursor, &q->after_ms,
                                &q->after_id, err);
  return rc;
}

mq_code_t mq_booking_list_mine_handler(mq_call_t *call, const Marquee__Bookings__V1__ListMyBookingsRequest *req,
                                       Marquee__Bookings__V1__ListBookingsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_query_t q = {.user_id = mq_call_principal(call)->subject};
  mq_code_t rc = page_of(call, &req->base, req->page_size, req->page_token, &q, err);
  mq_booking_t *v;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_bookings_list(app->store, &q, mq_call_arena(call), &v, &n, err);
  if (rc != MQ_OK) return rc;
  reply_page(call, &req->base, v, n, q.limit, resp);
  return MQ_OK;
}

/* The event, for an organization member of at least `role` (else NOT_FOUND
 * "event_id", as for an unknown event). */
static mq_code_t event_for_member(mq_call_t *call, const char *event_id, int role, Marquee__Catalog__V1__Event **e,
                                  mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "event_id", event_id);
  if (rc == MQ_OK) rc = mq_events_get(app->store, event_id, mq_call_arena(call), e, err);
  if (rc == MQ_OK) rc = mq_org_require(call, (*e)->organization_id, role, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  return rc;
}

mq_code_t mq_bookings_event_for_member(mq_call_t *call, const char *event_id, int role, Marquee__Catalog__V1__Event **e,
                                       mq_error_t *err) {
  return event_for_member(call, event_id, role, e, err);
}

mq_code_t mq_booking_list_event_handler(mq_call_t *call, const Marquee__Bookings__V1__ListEventBookingsRequest *req,
                                        Marquee__Bookings__V1__ListBookingsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = event_for_member(call, req->event_id, MQ_ORG_CHECKIN, &e, err);
  if (rc != MQ_OK) return rc;
  mq_bookings_query_t q = {.event_id = e->event_id};
  if ((rc = page_of(call, &req->base, req->page_size, req->page_token, &q, err)) != MQ_OK) return rc;
  if (req->state) {
    if ((rc = mq_check_enum(err, "state", (int)req->state, &marquee__bookings__v1__booking_state__descriptor, true)))
      return rc;
    q.state = req->state == MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED ? MQ_BOOKING_CANCELLED
                                                                                          : MQ_BOOKING_CONFIRMED;
  }
  if (req->query && req->query[0]) {
    if ((rc = mq_check_text(err, "query", req->query, 1, 100, MQ_TEXT_SINGLE_LINE))) return rc;
    char *lower = mq_arena_strdup(a, req->query);
    for (char *c = lower; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    q.search = lower;
  }
  mq_booking_t *v;
  size_t n = 0;
  if ((rc = mq_bookings_list(app->store, &q, a, &v, &n, err)) != MQ_OK) return rc;
  reply_page(call, &req->base, v, n, q.limit, resp);
  return MQ_OK;
}

mq_code_t mq_bookings_finish_cancel(mq_bookings_t *b, const char *booking_id, mq_arena_t *a, mq_booking_t *out,
                                    mq_error_t *err) {
  mq_store_t *s = b->app->store;
  mq_decision_t d;
  mq_code_t rc = mq_decision_get(s, booking_id, "cancel", a, &d, err);
  if (rc != MQ_OK) return rc;
  for (int attempt = 0; attempt < 3; attempt++) {
    if ((rc = mq_bookings_get(s, booking_id, a, out, err)) != MQ_OK) return rc;
    if (!strcmp(out->state, MQ_BOOKING_CANCELLED)) break;
    out->state = (char *)MQ_BOOKING_CANCELLED;
    out->cancelled_ms = d.at_ms;
    out->cancel_reason = d.reason;
    out->cancelled_by = d.outcome; /* "attendee" | "organizer" */
    rc = mq_bookings_save(s, out, NULL, 0, err);
    if (rc == MQ_OK) break;
    if (rc != MQ_ABORTED) return rc;
  }
  if (rc != MQ_OK) return rc;
  if ((rc = mq_capacity_release_holder(b->capacity, s, booking_id, err)) != MQ_OK) return rc;
  mq_availability_changed(b->app, out->event_id);
  /* what was paid goes back (payments module); a gateway that cannot be
   * reached leaves the decision open, and the sweeper tries again */
  if (!d.done && out->payment_reference && *out->payment_reference && b->app->refund_booking &&
      (rc = b->app->refund_booking(b->app, booking_id, d.reason, err)) != MQ_OK)
    return rc;
  return d.done ? MQ_OK : mq_decision_done(s, booking_id, "cancel", err);
}

/* BookingCancelled for `bk` into `ev` (payload in `a`): what a refund needs. */
static void cancelled_event(mq_event_t *ev, mq_arena_t *a, const mq_booking_t *bk, const char *by, const char *reason,
                            const char *actor, const char *trace_id, const char *request_id) {
  Marquee__Events__V1__BookingCancelled *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__booking_cancelled__init(p);
  p->booking_id = bk->id;
  p->event_id = bk->event_id;
  p->organization_id = bk->organization_id;
  p->user_id = bk->user_id;
  p->units = mq_booked_units(a, bk->lines, bk->n_lines);
  p->n_units = bk->n_lines;
  p->total_minor = bk->total_minor;
  p->currency = bk->currency;
  p->payment_reference = bk->payment_reference;
  p->cancelled_by = (char *)by;
  p->reason = (char *)reason;
  mq_bookings_event(ev, "bookings.BookingCancelled", bk->id, actor, trace_id, request_id);
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED;
  ev->env.booking_cancelled = p;
}

mq_code_t mq_booking_cancel_handler(mq_call_t *call, const Marquee__Bookings__V1__CancelBookingRequest *req,
                                    booking_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_arena_t *a = mq_call_arena(call);
  mq_booking_t bk;
  bool member;
  mq_code_t rc = mq_booking_load_for(call, req->booking_id, MQ_ORG_MANAGER, &bk, &member, err);
  if (rc == MQ_PERMISSION_DENIED) /* check-in staff who are not the owner */
    return rc;
  if (rc != MQ_OK) return rc;
  if (req->reason && (rc = mq_check_text(err, "reason", req->reason, 0, 500, MQ_TEXT_MULTILINE))) return rc;
  const char *by = "organizer";
  const mq_principal_t *who = mq_call_principal(call);
  if (!member) { /* the owner: the event's policy applies, unless they also manage it */
    by = "attendee";
    if (mq_catalog_is_member(call, bk.organization_id)) {
      int role;
      mq_error_t ignored;
      if ((who->roles & MQ_ROLE_ADMIN) ||
          (mq_orgs_role(app->store, bk.organization_id, who->subject, &role, &ignored) == MQ_OK &&
           role <= MQ_ORG_MANAGER))
        by = "organizer";
    }
  }
  if (!strcmp(bk.state, MQ_BOOKING_CONFIRMED) && !strcmp(by, "attendee")) {
    Marquee__Catalog__V1__Event *e;
    if ((rc = mq_events_get(app->store, bk.event_id, a, &e, err)) != MQ_OK) return rc;
    if (e->attendee_cancel_disabled)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "booking_id",
                          "this event does not allow attendees to cancel; contact the organizer");
    int64_t cutoff =
        (e->starts_at ? mq_pb_timestamp_ms(e->starts_at) : 0) - (int64_t)e->attendee_cancel_cutoff_hours * 3600000;
    if (mq_now_unix_ms() >= cutoff)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "booking_id",
                          "cancellation closed %u hours before the event starts; contact the organizer",
                          e->attendee_cancel_cutoff_hours);
  }
  mq_event_t ev;
  const char *reason = req->reason ? req->reason : "";
  cancelled_event(&ev, a, &bk, by, reason, who->subject, mq_call_trace_id(call), mq_call_request_id(call));
  rc = mq_decide(app->store, bk.id, "cancel", by, who->subject, NULL, reason, true, &ev, 1, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc; /* ALREADY_EXISTS: a retry; finish and answer */
  if ((rc = mq_bookings_finish_cancel(b, bk.id, a, &bk, err)) != MQ_OK) return rc;
  *resp = *mq_booking_view(call, b, &bk, NULL, 0, false);
  return MQ_OK;
}

/* ---- CSV export ---- */

typedef struct {
  mq_call_t *call;
  mq_checkin_t *checkins; /* sorted by ticket id */
  size_t n_checkins;
  char *buf;
  size_t len, cap;
  mq_code_t rc;
  mq_error_t *err;
} export_t;

#define EXPORT_CHUNK 32768

static int by_ticket(const void *x, const void *y) {
  return strcmp(((const mq_checkin_t *)x)->ticket_id, ((const mq_checkin_t *)y)->ticket_id);
}

static bool add_checkin(const mq_checkin_t *c, void *arg) {
  export_t *x = arg;
  mq_arena_t *a = mq_call_arena(x->call);
  if ((x->n_checkins & (x->n_checkins - 1)) == 0) { /* grow at powers of two */
    size_t nc = x->n_checkins ? x->n_checkins * 2 : 64;
    mq_checkin_t *v = mq_arena_alloc(a, nc * sizeof *v);
    if (x->n_checkins) memcpy(v, x->checkins, x->n_checkins * sizeof *v);
    x->checkins = v;
  }
  mq_checkin_t *d = &x->checkins[x->n_checkins++];
  d->ticket_id = mq_arena_strdup(a, c->ticket_id);
  d->gate = mq_arena_strdup(a, c->gate);
  d->at_ms = c->at_ms;
  return true;
}

static void put(export_t *x, const char *s, size_t n) {
  if (x->len + n + 1 > x->cap) {
    size_t nc = x->cap * 2 > x->len + n + 1 ? x->cap * 2 : x->len + n + 1;
    char *b = mq_xrealloc(x->buf, nc);
    x->buf = b;
    x->cap = nc;
  }
  memcpy(x->buf + x->len, s, n);
  x->len += n;
  x->buf[x->len] = 0;
}

/* One RFC 4180 cell; formula-looking text is defused with a leading '. */
static void cell(export_t *x, const char *v, bool last) {
  v = v ? v : "";
  bool quote = strpbrk(v, ",\"\r\n") != NULL || strchr("=+-@\t", v[0]) != NULL;
  if (quote) put(x, "\"", 1);
  if (v[0] && strchr("=+-@\t", v[0])) put(x, "'", 1);
  for (const char *p = v; *p; p++) {
    if (*p == '"') put(x, "\"", 1);
    put(x, p, 1);
  }
  if (quote) put(x, "\"", 1);
  put(x, last ? "\r\n" : ",", last ? 2 : 1);
}

static void cell_time(export_t *x, int64_t ms, bool last) {
  char t[32];
  mq_bookings_iso_time(ms, t);
  cell(x, t, last);
}

static mq_code_t flush(export_t *x, bool force) {
  if (!x->len || (!force && x->len < EXPORT_CHUNK)) return MQ_OK;
  Marquee__Bookings__V1__CsvChunk ch = MARQUEE__BOOKINGS__V1__CSV_CHUNK__INIT;
  ch.text = x->buf;
  mq_code_t rc = marquee__bookings__v1__booking_service__export_event_bookings__send(x->call, &ch, x->err);
  x->len = 0;
  return rc;
}

static bool export_booking(const mq_booking_t *b, void *arg) {
  export_t *x = arg;
  char total[48];
  snprintf(total, sizeof total, "%" PRId64, b->total_minor);
  for (size_t i = 0; i < b->n_tickets; i++) {
    const mq_ticket_t *t = &b->tickets[i];
    mq_checkin_t key = {.ticket_id = t->id};
    const mq_checkin_t *ci = x->n_checkins ? bsearch(&key, x->checkins, x->n_checkins, sizeof key, by_ticket) : NULL;
    cell(x, b->id, false);
    cell(x, t->id, false);
    cell(x, b->state, false);
    cell(x, t->ticket_type_name, false);
    cell(x, t->attendee_name, false);
    cell(x, b->buyer_name, false);
    cell(x, b->buyer_email, false);
    cell(x, total, false);
    cell(x, b->currency, false);
    cell(x, b->payment_reference, false);
    cell_time(x, b->created_ms, false);
    cell_time(x, b->cancelled_ms, false);
    cell_time(x, ci ? ci->at_ms : 0, false);
    cell(x, ci ? ci->gate : "", true);
  }
  x->rc = flush(x, false);
  return x->rc == MQ_OK;
}

static mq_code_t booking_export(mq_call_t *call, const Marquee__Bookings__V1__ExportEventBookingsRequest *req,
                                mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = event_for_member(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc == MQ_OK && req->state)
    rc = mq_check_enum(err, "state", (int)req->state, &marquee__bookings__v1__booking_state__descriptor, true);
  if (rc != MQ_OK) return rc;
  const char *state = NULL;
  if (req->state)
    state = req->state == MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED ? MQ_BOOKING_CANCELLED
                                                                                        : MQ_BOOKING_CONFIRMED;
  export_t x = {.call = call, .err = err, .cap = EXPORT_CHUNK + 4096};
  x.buf = mq_xmalloc(x.cap);
  rc = mq_checkins_each(app->store, e->event_id, add_checkin, &x, err);
  if (rc == MQ_OK) {
    if (x.n_checkins) qsort(x.checkins, x.n_checkins, sizeof *x.checkins, by_ticket);
    static const char header[] =
        "booking_id,ticket_id,state,ticket_type,attendee_name,buyer_name,buyer_email,"
        "booking_total_minor,currency,payment_reference,booked_at,cancelled_at,"
        "checked_in_at,gate\r\n";
    put(&x, header, sizeof header - 1);
    rc = mq_bookings_each(app->store, e->event_id, state, export_booking, &x, err);
    if (rc == MQ_OK) rc = x.rc;
    if (rc == MQ_OK) rc = flush(&x, true);
  }
  free(x.buf);
  return rc;
}

/* ---- moving a ticket to another ticket type ---- */

static mq_code_t booking_change_tt(mq_call_t *call, const Marquee__Bookings__V1__ChangeTicketTypeRequest *req,
                                   booking_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_t *b = app->bookings;
  mq_arena_t *a = mq_call_arena(call);
  mq_booking_t bk;
  bool member;
  mq_code_t rc = mq_booking_load_for(call, req->booking_id, MQ_ORG_MANAGER, &bk, &member, err);
  if (rc != MQ_OK) return rc;
  if (!member && !mq_catalog_is_member(call, bk.organization_id))
    return mq_error_set(err, MQ_PERMISSION_DENIED, "booking_id", "only the organizer can change ticket types");
  if (!member) { /* the owner is also in the organization: needs manager */
    rc = mq_org_require(call, bk.organization_id, MQ_ORG_MANAGER, NULL, err);
    if (rc != MQ_OK) return rc;
  }
  if ((rc = mq_check_uuid(err, "ticket_id", req->ticket_id)) != MQ_OK) return rc;
  if ((rc = mq_check_uuid(err, "ticket_type_id", req->ticket_type_id)) != MQ_OK) return rc;
  if (strcmp(bk.state, MQ_BOOKING_CONFIRMED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "booking_id", "the booking is cancelled");
  size_t ti = SIZE_MAX;
  for (size_t i = 0; i < bk.n_tickets; i++)
    if (!strcasecmp(bk.tickets[i].id, req->ticket_id)) ti = i;
  if (ti == SIZE_MAX) return mq_error_set(err, MQ_NOT_FOUND, "ticket_id", "not a ticket of this booking");
  mq_ticket_t *t = &bk.tickets[ti];
  if (!strcasecmp(t->ticket_type_id, req->ticket_type_id))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "ticket_type_id", "is the ticket's type already");
  mq_checkin_t ci;
  rc = mq_checkins_get(app->store, t->id, a, &ci, err);
  if (rc == MQ_OK)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_id", "the ticket is checked in; undo the check-in first");
  if (rc != MQ_NOT_FOUND) return rc;
  Marquee__Catalog__V1__Event *e;
  if ((rc = mq_events_get(app->store, bk.event_id, a, &e, err)) != MQ_OK) return rc;
  const Marquee__Catalog__V1__TicketType *to = NULL;
  for (size_t i = 0; i < e->n_ticket_types; i++)
    if (!strcasecmp(e->ticket_types[i]->ticket_type_id, req->ticket_type_id)) to = e->ticket_types[i];
  if (!to) return mq_error_set(err, MQ_NOT_FOUND, "ticket_type_id", "no such ticket type for this event");
  /* 1. a unit of the new type (a reclaim suspect until the booking refers to it) */
  mq_pool_want_t w = {.capacity = to->capacity, .units = 1};
  mq_pool_ticket_type(w.pool, to->ticket_type_id);
  char **got;
  size_t n_got, short_at;
  int64_t left;
  rc = mq_capacity_take(b->capacity, app->store, bk.id, mq_now_unix_ms() + 60000, &w, 1, a, &got, &n_got, &short_at,
                        &left, err);
  if (rc == MQ_RESOURCE_EXHAUSTED)
    return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, "ticket_type_id", "\"%s\" is sold out", to->name);
  if (rc != MQ_OK) return rc;
  /* 2. the unit left behind becomes a suspect too, 3. the booking switches */
  char *old_slot = t->slot, *old_tt = t->ticket_type_id;
  mq_error_t ignored = {0};
  if (old_slot && old_slot[0]) mq_capacity_set_until(app->store, old_slot, mq_now_unix_ms(), &ignored);
  t->ticket_type_id = to->ticket_type_id;
  t->ticket_type_name = to->name;
  t->slot = got[0];
  Marquee__Events__V1__TicketTypeMoved *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__ticket_type_moved__init(p);
  p->ticket_id = t->id;
  p->booking_id = bk.id;
  p->event_id = bk.event_id;
  p->from_ticket_type_id = old_tt;
  p->to_ticket_type_id = to->ticket_type_id;
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.TicketTypeMoved", bk.id, mq_call_principal(call)->subject, mq_call_trace_id(call),
                    mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_TYPE_MOVED;
  ev.env.ticket_type_moved = p;
  rc = mq_bookings_save(app->store, &bk, &ev, 1, err);
  if (rc != MQ_OK) {
    mq_capacity_release(b->capacity, app->store, bk.id, got, 1, &ignored);
    if (old_slot && old_slot[0]) mq_capacity_set_until(app->store, old_slot, MQ_SLOT_SOLD_UNTIL_MS, &ignored);
    return rc;
  }
  /* 4. the old unit goes back, the new one is sold */
  if (old_slot && old_slot[0]) mq_capacity_release(b->capacity, app->store, bk.id, &old_slot, 1, &ignored);
  mq_capacity_mark_sold(app->store, bk.id, &ignored);
  mq_availability_changed(app, bk.event_id);
  *resp = *mq_booking_view(call, b, &bk, NULL, 0, true);
  return MQ_OK;
}

mq_code_t mq_booking_export_handler(mq_call_t *call, const Marquee__Bookings__V1__ExportEventBookingsRequest *req,
                                    mq_error_t *err) {
  return booking_export(call, req, err);
}

mq_code_t mq_booking_change_tt_handler(mq_call_t *call, const Marquee__Bookings__V1__ChangeTicketTypeRequest *req,
                                       booking_pb *resp, mq_error_t *err) {
  return booking_change_tt(call, req, resp, err);
}

/* ---- an event's cancellation reaches its bookings ---- */

#define EVENT_CANCEL_BATCH 200
#define EVENT_CANCEL_STALE_MS 60000 /* a trigger whose event never got cancelled */

mq_code_t mq_bookings_finish_event_cancel(mq_bookings_t *b, const mq_decision_t *trigger, mq_error_t *err) {
  mq_store_t *s = b->app->store;
  mq_arena_t arena, *a = &arena;
  mq_arena_init(a);
  const char *event_id = trigger->hold; /* the decision's subject: the event */
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_events_get(s, event_id, a, &e, err);
  bool cancelled = rc == MQ_OK && e->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_CANCELLED;
  if (rc == MQ_NOT_FOUND || (rc == MQ_OK && !cancelled)) {
    /* the cancel this trigger announced did not happen (its save failed):
     * nothing to do once it is clearly over */
    rc = mq_now_unix_ms() - trigger->at_ms > EVENT_CANCEL_STALE_MS ? mq_decision_done(s, event_id, "event_cancel", err)
                                                                   : MQ_OK;
    mq_arena_release(a);
    return rc;
  }
  size_t left = 0;
  if (rc == MQ_OK) { /* active holds: released (their units are of no use now) */
    mq_hold_t *hs;
    size_t n = 0;
    rc = mq_holds_active_of_event(s, event_id, EVENT_CANCEL_BATCH, a, &hs, &n, err);
    for (size_t i = 0; rc == MQ_OK && i < n; i++) rc = mq_bookings_release_hold(b, &hs[i], "system", a, err);
    left += n;
  }
  if (rc == MQ_OK) { /* confirmed bookings: cancelled by the organizer, refunds follow */
    mq_bookings_query_t q = {.event_id = event_id, .state = MQ_BOOKING_CONFIRMED, .limit = EVENT_CANCEL_BATCH};
    mq_booking_t *v;
    size_t n = 0;
    rc = mq_bookings_list(s, &q, a, &v, &n, err);
    const char *reason = mq_arena_sprintf(a, "event cancelled: %s", trigger->reason);
    for (size_t i = 0; rc == MQ_OK && i < n; i++) {
      mq_event_t ev;
      cancelled_event(&ev, a, &v[i], "organizer", reason, trigger->actor, NULL, NULL);
      rc = mq_decide(s, v[i].id, "cancel", "organizer", trigger->actor, NULL, reason, true, &ev, 1, err);
      if (rc == MQ_OK || rc == MQ_ALREADY_EXISTS) {
        mq_booking_t done;
        rc = mq_bookings_finish_cancel(b, v[i].id, a, &done, err);
      }
    }
    left += n;
  }
  if (rc == MQ_OK && left == 0) rc = mq_decision_done(s, event_id, "event_cancel", err);
  mq_arena_release(a);
  return rc;
}

mq_code_t mq_bookings_event_cancelling(mq_store_t *s, const char *event_id, const char *actor, const char *reason,
                                       mq_error_t *err) {
  mq_code_t rc = mq_decide(s, event_id, "event_cancel", "cancel", actor, NULL, reason, true, NULL, 0, err);
  if (rc == MQ_ALREADY_EXISTS) rc = mq_decision_reopen(s, event_id, "event_cancel", err);
  return rc;
}
