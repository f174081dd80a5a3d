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
 * carrying BookingCancelled for refunds), then finished: the units go back
 * and the booking's state changes. The decision says done=false until
 * then, so a crash in between is finished by the sweeper (holds.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bookings.h"
#include "catalog.h"
#include "events_store.h"
#include "identity.h"
#include "mq_bson.h"
#include "mq_log.h"
#include "mq_validate.h"
#include "orgs_store.h"

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

static void reply_page(mq_call_t *call, mq_booking_t *v, size_t n, uint32_t limit,
                       Marquee__Bookings__V1__ListBookingsResponse *resp) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  resp->bookings = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->bookings);
  for (size_t i = 0; i < n; i++)
    resp->bookings[resp->n_bookings++] = mq_booking_view(call, app->bookings, &v[i], NULL, 0, false);
  resp->page = mq_arena_alloc(a, sizeof *resp->page);
  marquee__common__v1__page_info__init(resp->page);
  resp->page->next_page_token = (char *)"";
  if (n == limit && n)
    resp->page->next_page_token = mq_arena_sprintf(a, "%" PRId64 ".%s", v[n - 1].created_ms, v[n - 1].id);
}

static mq_code_t page_of(const Marquee__Common__V1__PageRequest *pg, mq_bookings_query_t *q, mq_error_t *err) {
  mq_code_t rc = mq_check_page_size(err, "page.page_size", pg ? pg->page_size : 0, PAGE_DEFAULT, PAGE_MAX, &q->limit);
  if (rc == MQ_OK && pg)
    rc = mq_check_page_token(err, "page.page_token", pg->page_token, &q->has_cursor, &q->after_ms, &q->after_id);
  return rc;
}

mq_code_t mq_booking_list_mine_handler(mq_call_t *call, const Marquee__Bookings__V1__ListMyBookingsRequest *req,
                                       Marquee__Bookings__V1__ListBookingsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_bookings_query_t q = {.user_id = mq_call_principal(call)->subject};
  mq_code_t rc = page_of(req->page, &q, err);
  mq_booking_t *v;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_bookings_list(app->store, &q, mq_call_arena(call), &v, &n, err);
  if (rc != MQ_OK) return rc;
  reply_page(call, v, n, q.limit, resp);
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
  if ((rc = page_of(req->page, &q, err)) != MQ_OK) return rc;
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
  reply_page(call, v, n, q.limit, resp);
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
  return d.done ? MQ_OK : mq_decision_done(s, booking_id, "cancel", err);
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
  Marquee__Events__V1__BookingCancelled *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__booking_cancelled__init(p);
  p->booking_id = bk.id;
  p->event_id = bk.event_id;
  p->organization_id = bk.organization_id;
  p->user_id = bk.user_id;
  p->units = mq_booked_units(a, bk.lines, bk.n_lines);
  p->n_units = bk.n_lines;
  p->total_minor = bk.total_minor;
  p->currency = bk.currency;
  p->payment_reference = bk.payment_reference;
  p->cancelled_by = (char *)by;
  p->reason = req->reason ? req->reason : (char *)"";
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.BookingCancelled", bk.id, who->subject, mq_call_trace_id(call),
                    mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED;
  ev.env.booking_cancelled = p;
  rc = mq_decide(app->store, bk.id, "cancel", by, who->subject, NULL, p->reason, true, &ev, 1, err);
  if (rc == MQ_OK) mq_app_events_written(app);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc; /* ALREADY_EXISTS: a retry; finish and answer */
  if ((rc = mq_bookings_finish_cancel(b, bk.id, a, &bk, err)) != MQ_OK) return rc;
  *resp = *mq_booking_view(call, b, &bk, NULL, 0, false);
  return MQ_OK;
}
