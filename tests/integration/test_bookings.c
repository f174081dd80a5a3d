/*
 * test_bookings.c — holds, bookings, the payment seam, cancellation,
 * tickets and check-in against one real server on FerretDB + Kafka
 * (bookings issue, items 1–5, "bad input and security").
 *
 * The server runs with MARQUEE_HOLD_TTL_S=5 and a 50 ms sweeper so expiry
 * can be observed; MARQUEE_PAYMENT_WINDOW_S=10.
 *
 * Covered: free hold → confirm → booking with one signed ticket per unit;
 * the owner and the organization see it, another user gets NOT_FOUND for
 * the hold, the booking and the ticket; ListMyBookings / ListEventBookings
 * (state filter, search by attendee name); idempotent CreateHold (same key:
 * same hold, units taken once; same key with other items: INVALID_ARGUMENT);
 * every refusal of CreateHold with its status and field (no items, zero
 * quantity, duplicates, unknown/hidden type, over the per-order maximum,
 * draft, cancelled, started, sales not open/closed, per-user limit, sold
 * out with "only N left"); release; expiry by the sweeper returns the units;
 * confirmation racing expiry gives exactly one outcome (20 holds, confirm
 * aimed at the expiry instant); the payment steps (paid hold cannot be
 * confirmed by its owner; attendees cannot call the payment steps; a hold in
 * payment does not expire; success books with the reference; failure
 * releases; a late success after the window is FAILED_PRECONDITION);
 * cancellation by the owner (units back, idempotent), refused when the
 * event disables it, allowed to the organizer; check-in once (second scan
 * ALREADY_EXISTS naming time and gate), forged and altered codes refused,
 * another event's code refused, outsiders refused, undo by a manager then a
 * new check-in, attendee name frozen after check-in, stats and list; two
 * scanners racing for one ticket: one check-in.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/bookings/v1/tickets.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000b0001"
#define ALICE "00000000-0000-4000-8000-0000000b00a1"
#define BOB "00000000-0000-4000-8000-0000000b00b0"
#define ADMIN "00000000-0000-4000-8000-0000000b00ad"

static mq_test_proc_t srv;
static mq_client_t *c;
static char *organizer, *alice, *bob, *admin;
static char org[40];

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_HOLD_TTL_S=5", "MARQUEE_HOLD_SWEEP_MS=50", "MARQUEE_PAYMENT_WINDOW_S=10", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  c = mq_test_client(&srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  alice = mq_test_token(ALICE, MQ_ROLE_ATTENDEE);
  bob = mq_test_token(BOB, MQ_ROLE_ATTENDEE);
  admin = mq_test_token(ADMIN, MQ_ROLE_ADMIN);
  mq_fx_org(c, organizer, "bookings", org);
  return c ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(c);
  free(organizer);
  free(alice);
  free(bob);
  free(admin);
  int rc = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return rc;
}

static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- call helpers ---- */

typedef Marquee__Bookings__V1__Hold hold_t;
typedef Marquee__Bookings__V1__Booking booking_t;

static mq_code_t create_hold(const char *token, const char *event, const char *tt, uint32_t qty, const char *key,
                             const char *code, hold_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)tt;
  item.quantity = qty;
  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = (char *)event;
  q.items = items;
  q.n_items = 1;
  q.idempotency_key = (char *)(key ? key : "");
  q.access_code = (char *)(code ? code : "");
  mq_call_opts_t oo = {.bearer_token = token};
  hold_t *h = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, err);
  if (out)
    *out = h;
  else if (h)
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return rc;
}

static mq_code_t confirm(const char *token, const char *hold_id, booking_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__ConfirmHoldRequest q = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
  q.hold_id = (char *)hold_id;
  mq_call_opts_t oo = {.bearer_token = token};
  booking_t *b = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__confirm_hold__call(c, &q, &b, &oo, err);
  if (out)
    *out = b;
  else if (b)
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
  return rc;
}

static mq_code_t get_hold(const char *token, const char *hold_id, hold_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__GetHoldRequest q = MARQUEE__BOOKINGS__V1__GET_HOLD_REQUEST__INIT;
  q.hold_id = (char *)hold_id;
  mq_call_opts_t oo = {.bearer_token = token};
  hold_t *h = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__get_hold__call(c, &q, &h, &oo, err);
  if (out)
    *out = h;
  else if (h)
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return rc;
}

static mq_code_t get_booking(const char *token, const char *id, booking_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__GetBookingRequest q = MARQUEE__BOOKINGS__V1__GET_BOOKING_REQUEST__INIT;
  q.booking_id = (char *)id;
  mq_call_opts_t oo = {.bearer_token = token};
  booking_t *b = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__get_booking__call(c, &q, &b, &oo, err);
  if (out)
    *out = b;
  else if (b)
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
  return rc;
}

static int64_t slots_of(const char *hold_id) {
  char f[96];
  snprintf(f, sizeof f, "{\"hold\": \"%s\"}", hold_id);
  return mq_test_count(NULL, srv.db, "capacity_slots", f);
}

static int64_t slots_in_pool(const char *tt) {
  char f[96];
  snprintf(f, sizeof f, "{\"pool\": \"t:%s\"}", tt);
  return mq_test_count(NULL, srv.db, "capacity_slots", f);
}

static void one_event(mq_fx_event_t *ev, int64_t price, int64_t cap) {
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = price, .capacity = cap}}};
  mq_fx_event(c, organizer, org, &o, ev);
}

/* ---- tests ---- */

static void test_free_hold_confirm_and_visibility(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 50);
  mq_error_t err;
  hold_t *h = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, &h, &err), MQ_OK);
  assert_int_equal(h->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_ACTIVE);
  assert_int_equal(h->n_lines, 1);
  assert_int_equal(h->lines[0]->quantity, 2);
  assert_int_equal(h->total->amount_minor, 0);
  assert_string_equal(h->total->currency, "EUR");
  assert_false(h->requires_payment);
  int64_t left_s = h->expires_at->seconds - (int64_t)time(NULL);
  assert_true(left_s >= 3 && left_s <= 6);
  assert_int_equal(slots_of(h->hold_id), 2);
  char hold_id[40];
  snprintf(hold_id, sizeof hold_id, "%s", h->hold_id);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);

  /* another user sees nothing */
  assert_int_equal(get_hold(bob, hold_id, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(confirm(bob, hold_id, NULL, &err), MQ_NOT_FOUND);

  booking_t *b = NULL;
  assert_int_equal(confirm(alice, hold_id, &b, &err), MQ_OK);
  assert_string_equal(b->booking_id, hold_id);
  assert_int_equal(b->state, MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CONFIRMED);
  assert_int_equal(b->n_tickets, 2);
  assert_string_not_equal(b->tickets[0]->ticket_id, b->tickets[1]->ticket_id);
  assert_true(strncmp(b->tickets[0]->code, "MQT1.itest.", 11) == 0);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  /* confirming again is idempotent */
  assert_int_equal(confirm(alice, hold_id, &b, &err), MQ_OK);
  assert_int_equal(b->n_tickets, 2);
  char ticket[40];
  snprintf(ticket, sizeof ticket, "%s", b->tickets[0]->ticket_id);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  assert_int_equal(get_hold(alice, hold_id, &h, &err), MQ_OK);
  assert_int_equal(h->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_CONFIRMED);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  /* sold units stay after the hold's expiry */
  mq_test_sleep_ms(6000);
  assert_int_equal(slots_of(hold_id), 2);

  assert_int_equal(get_booking(alice, hold_id, NULL, &err), MQ_OK);
  assert_int_equal(get_booking(organizer, hold_id, NULL, &err), MQ_OK);
  assert_int_equal(get_booking(bob, hold_id, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "booking_id");

  /* tickets: owner edits the attendee name, outsiders cannot see it */
  Marquee__Bookings__V1__SetAttendeeNameRequest nq = MARQUEE__BOOKINGS__V1__SET_ATTENDEE_NAME_REQUEST__INIT;
  nq.ticket_id = ticket;
  nq.attendee_name = (char *)"Zoë Ångström";
  Marquee__Bookings__V1__Ticket *t = NULL;
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_bob = {.bearer_token = bob},
                 as_org = {.bearer_token = organizer};
  assert_int_equal(marquee__bookings__v1__ticket_service__set_attendee_name__call(c, &nq, &t, &as_bob, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__ticket_service__set_attendee_name__call(c, &nq, &t, &as_alice, &err), MQ_OK);
  assert_string_equal(t->attendee_name, "Zoë Ångström");
  marquee__bookings__v1__ticket__free_unpacked(t, NULL);
  nq.attendee_name = (char *)" padded";
  assert_int_equal(marquee__bookings__v1__ticket_service__set_attendee_name__call(c, &nq, &t, &as_alice, &err),
                   MQ_INVALID_ARGUMENT);

  /* lists: mine, the event's (search by attendee, state filter) */
  Marquee__Bookings__V1__ListMyBookingsRequest mq = MARQUEE__BOOKINGS__V1__LIST_MY_BOOKINGS_REQUEST__INIT;
  Marquee__Bookings__V1__ListBookingsResponse *lr = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__list_my_bookings__call(c, &mq, &lr, &as_alice, &err), MQ_OK);
  assert_true(lr->n_bookings >= 1);
  marquee__bookings__v1__list_bookings_response__free_unpacked(lr, NULL);
  assert_int_equal(marquee__bookings__v1__booking_service__list_my_bookings__call(c, &mq, &lr, &as_bob, &err), MQ_OK);
  assert_int_equal(lr->n_bookings, 0);
  marquee__bookings__v1__list_bookings_response__free_unpacked(lr, NULL);
  Marquee__Bookings__V1__ListEventBookingsRequest eq = MARQUEE__BOOKINGS__V1__LIST_EVENT_BOOKINGS_REQUEST__INIT;
  eq.event_id = ev.event_id;
  eq.query = (char *)"ångström";
  assert_int_equal(marquee__bookings__v1__booking_service__list_event_bookings__call(c, &eq, &lr, &as_bob, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__booking_service__list_event_bookings__call(c, &eq, &lr, &as_org, &err),
                   MQ_OK);
  assert_int_equal(lr->n_bookings, 1);
  marquee__bookings__v1__list_bookings_response__free_unpacked(lr, NULL);
  eq.query = (char *)"nobody.*";
  assert_int_equal(marquee__bookings__v1__booking_service__list_event_bookings__call(c, &eq, &lr, &as_org, &err),
                   MQ_OK);
  assert_int_equal(lr->n_bookings, 0);
  marquee__bookings__v1__list_bookings_response__free_unpacked(lr, NULL);
  eq.query = (char *)"";
  eq.state = MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED;
  assert_int_equal(marquee__bookings__v1__booking_service__list_event_bookings__call(c, &eq, &lr, &as_org, &err),
                   MQ_OK);
  assert_int_equal(lr->n_bookings, 0);
  marquee__bookings__v1__list_bookings_response__free_unpacked(lr, NULL);
  eq.state = 0;
  eq.page_token = (char *)"12.not-a-uuid";
  assert_int_equal(marquee__bookings__v1__booking_service__list_event_bookings__call(c, &eq, &lr, &as_org, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
}

static void test_idempotent_retry(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 50);
  mq_error_t err;
  hold_t *h1 = NULL, *h2 = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 3, "cart-42", NULL, &h1, &err), MQ_OK);
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 3, "cart-42", NULL, &h2, &err), MQ_OK);
  assert_string_equal(h1->hold_id, h2->hold_id);
  assert_int_equal(slots_of(h1->hold_id), 3);
  assert_int_equal(slots_in_pool(ev.tt[0]), 3);
  /* the same key for another request */
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 4, "cart-42", NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "idempotency_key");
  /* keys are per user */
  hold_t *hb = NULL;
  assert_int_equal(create_hold(bob, ev.event_id, ev.tt[0], 3, "cart-42", NULL, &hb, &err), MQ_OK);
  assert_string_not_equal(hb->hold_id, h1->hold_id);
  assert_int_equal(slots_in_pool(ev.tt[0]), 6);
  /* ten concurrent retries still take the units once: see test_booking_race */
  marquee__bookings__v1__hold__free_unpacked(h1, NULL);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
  marquee__bookings__v1__hold__free_unpacked(hb, NULL);
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 1, "bad key with spaces", NULL, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "idempotency_key");
}

static void expect(mq_code_t got, mq_code_t want, const mq_error_t *err, const char *field) {
  if (got != want)
    fail_msg("got %s (%s: %s), want %s", mq_code_name(got), err->field, err->message, mq_code_name(want));
  if (field) assert_string_equal(err->field, field);
}

static void test_bad_input(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_opts_t o = {.n_tt = 4,
                          .tt = {{.capacity = 10, .max_per_order = 4, .max_per_user = 5},
                                 {.capacity = 10, .access_code = "VIP-2026"},
                                 {.capacity = 10, .sales_start_in_s = 86400},
                                 {.capacity = 10, .sales_end_in_s = 3}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);

  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = ev.event_id;
  mq_call_opts_t oo = {.bearer_token = alice};
  hold_t *h = NULL;
  expect(marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, &err), MQ_INVALID_ARGUMENT, &err,
         "items");
  Marquee__Bookings__V1__HoldItem i1 = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT,
                                  i2 = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT;
  Marquee__Bookings__V1__HoldItem *two[2] = {&i1, &i2};
  i1.ticket_type_id = i2.ticket_type_id = ev.tt[0];
  i1.quantity = i2.quantity = 1;
  q.items = two;
  q.n_items = 2;
  expect(marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, &err), MQ_INVALID_ARGUMENT, &err,
         "items[1].ticket_type_id");
  /* every bad field in one answer */
  i2.quantity = 0;
  q.event_id = (char *)"not-an-id";
  q.idempotency_key = (char *)"has spaces";
  expect(marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, &err), MQ_INVALID_ARGUMENT, &err,
         "event_id");
  assert_int_equal(err.n_violations, 4);
  assert_string_equal(err.violations[1].field, "items[1].ticket_type_id");
  assert_string_equal(err.violations[2].field, "items[1].quantity");
  assert_string_equal(err.violations[3].field, "idempotency_key");
  q.event_id = ev.event_id;
  q.idempotency_key = (char *)"";
  i2.quantity = 1;

  expect(create_hold(alice, ev.event_id, ev.tt[0], 0, NULL, NULL, NULL, &err), MQ_INVALID_ARGUMENT, &err,
         "items[0].quantity");
  expect(create_hold(alice, ev.event_id, ev.tt[0], 5, NULL, NULL, NULL, &err), MQ_INVALID_ARGUMENT, &err,
         "items[0].quantity");
  assert_non_null(strstr(err.message, "at most 4"));
  expect(create_hold(alice, ev.event_id, "00000000-0000-4000-8000-00000000dead", 1, NULL, NULL, NULL, &err),
         MQ_NOT_FOUND, &err, "items[0].ticket_type_id");
  expect(create_hold(alice, ev.event_id, "not-a-uuid", 1, NULL, NULL, NULL, &err), MQ_INVALID_ARGUMENT, &err,
         "items[0].ticket_type_id");
  expect(create_hold(alice, "00000000-0000-4000-8000-00000000dead", ev.tt[0], 1, NULL, NULL, NULL, &err), MQ_NOT_FOUND,
         &err, "event_id");
  /* hidden type: unknown without its code, fine with it */
  expect(create_hold(alice, ev.event_id, ev.tt[1], 1, NULL, NULL, NULL, &err), MQ_NOT_FOUND, &err,
         "items[0].ticket_type_id");
  expect(create_hold(alice, ev.event_id, ev.tt[1], 1, NULL, "wrong-code", NULL, &err), MQ_NOT_FOUND, &err,
         "items[0].ticket_type_id");
  expect(create_hold(alice, ev.event_id, ev.tt[1], 1, NULL, "VIP-2026", NULL, &err), MQ_OK, &err, NULL);
  /* sales windows */
  expect(create_hold(alice, ev.event_id, ev.tt[2], 1, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err,
         "items[0].ticket_type_id");
  assert_non_null(strstr(err.message, "open at"));
  mq_test_sleep_ms(3500);
  expect(create_hold(alice, ev.event_id, ev.tt[3], 1, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err,
         "items[0].ticket_type_id");
  assert_non_null(strstr(err.message, "closed at"));
  /* per-user maximum (5) across holds */
  expect(create_hold(alice, ev.event_id, ev.tt[0], 4, NULL, NULL, NULL, &err), MQ_OK, &err, NULL);
  expect(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err,
         "items[0].quantity");
  assert_non_null(strstr(err.message, "you can add 1"));
  expect(create_hold(bob, ev.event_id, ev.tt[0], 2, NULL, NULL, NULL, &err), MQ_OK, &err, NULL);
  /* unauthenticated */
  Marquee__Bookings__V1__HoldItem *one[1] = {&i1};
  q.items = one;
  q.n_items = 1;
  expect(marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, NULL, &err), MQ_UNAUTHENTICATED, &err,
         NULL);

  /* draft (outsiders: NOT_FOUND; members: FAILED_PRECONDITION), cancelled, started */
  mq_fx_event_t d = {0};
  mq_fx_event_opts_t od = {.n_tt = 1, .tt = {{.capacity = 5}}, .draft = true};
  mq_fx_event(c, organizer, org, &od, &d);
  expect(create_hold(alice, d.event_id, d.tt[0], 1, NULL, NULL, NULL, &err), MQ_NOT_FOUND, &err, "event_id");
  expect(create_hold(organizer, d.event_id, d.tt[0], 1, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err,
         "event_id");
  mq_fx_event_t k = {0};
  one_event(&k, 0, 5);
  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = k.event_id;
  kq.reason = (char *)"Storm";
  Marquee__Catalog__V1__Event *ke = NULL;
  mq_call_opts_t as_org = {.bearer_token = organizer};
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(c, &kq, &ke, &as_org, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(ke, NULL);
  expect(create_hold(alice, k.event_id, k.tt[0], 1, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err, "event_id");
  assert_non_null(strstr(err.message, "cancelled"));
  mq_fx_event_t s = {0};
  mq_fx_event_opts_t os = {.n_tt = 1, .tt = {{.capacity = 5}}, .starts_in_s = 3};
  mq_fx_event(c, organizer, org, &os, &s);
  mq_test_sleep_ms(3500);
  expect(create_hold(alice, s.event_id, s.tt[0], 1, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION, &err, "event_id");
  assert_non_null(strstr(err.message, "started"));
}

static void test_sold_out_release_and_expiry(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 3);
  mq_error_t err;
  hold_t *h1 = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, &h1, &err), MQ_OK);
  expect(create_hold(bob, ev.event_id, ev.tt[0], 2, NULL, NULL, NULL, &err), MQ_RESOURCE_EXHAUSTED, &err,
         "items[0].quantity");
  assert_non_null(strstr(err.message, "only 1 left"));
  assert_int_equal(slots_in_pool(ev.tt[0]), 2); /* bob's attempt took nothing */
  /* release gives the units back at once */
  Marquee__Bookings__V1__ReleaseHoldRequest rq = MARQUEE__BOOKINGS__V1__RELEASE_HOLD_REQUEST__INIT;
  rq.hold_id = h1->hold_id;
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_bob = {.bearer_token = bob};
  hold_t *r = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_bob, &err), MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_alice, &err), MQ_OK);
  assert_int_equal(r->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED);
  marquee__bookings__v1__hold__free_unpacked(r, NULL);
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_alice, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(r, NULL);
  assert_int_equal(confirm(alice, h1->hold_id, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_int_equal(slots_in_pool(ev.tt[0]), 0);
  marquee__bookings__v1__hold__free_unpacked(h1, NULL);
  /* three units for bob; then nothing is left until his hold expires */
  hold_t *hb = NULL;
  assert_int_equal(create_hold(bob, ev.event_id, ev.tt[0], 3, NULL, NULL, &hb, &err), MQ_OK);
  expect(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, NULL, &err), MQ_RESOURCE_EXHAUSTED, &err,
         "items[0].quantity");
  assert_non_null(strstr(err.message, "sold out"));
  hold_t *g = NULL;
  int64_t deadline = mq_test_now_ms() + 10000;
  int hs = 0;
  while (mq_test_now_ms() < deadline) {
    assert_int_equal(get_hold(bob, hb->hold_id, &g, &err), MQ_OK);
    hs = g->state;
    marquee__bookings__v1__hold__free_unpacked(g, NULL);
    if (hs == MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_EXPIRED) break;
    mq_test_sleep_ms(200);
  }
  assert_int_equal(hs, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_EXPIRED);
  assert_int_equal(slots_in_pool(ev.tt[0]), 0);
  char f[120];
  snprintf(f, sizeof f, "{\"_id\": \"%s:fate\", \"outcome\": \"expired\"}", hb->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "hold_decisions", f), 1);
  assert_int_equal(confirm(bob, hb->hold_id, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_non_null(strstr(err.message, "expired"));
  marquee__bookings__v1__hold__free_unpacked(hb, NULL);
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 3, NULL, NULL, NULL, &err), MQ_OK);
}

/* Confirmation aimed at the expiry instant: each hold ends exactly one way,
 * and the units agree with the way it ended. */
static void test_confirm_races_expiry(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 100);
  mq_error_t err;
  enum { N = 20 };
  char ids[N][40];
  int64_t expires[N];
  for (int i = 0; i < N; i++) {
    hold_t *h = NULL;
    assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, &h, &err), MQ_OK);
    snprintf(ids[i], sizeof ids[i], "%s", h->hold_id);
    expires[i] = h->expires_at->seconds * 1000 + h->expires_at->nanos / 1000000;
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
    mq_test_sleep_ms(60); /* spread the expiry instants over the sweeper's cadence */
  }
  int confirmed = 0, refused = 0;
  for (int i = 0; i < N; i++) {
    int64_t wait = expires[i] - wall_ms() - 40 + (i % 5) * 20; /* -40 .. +40 ms around expiry */
    if (wait > 0) mq_test_sleep_ms((int)wait);
    mq_code_t rc = confirm(alice, ids[i], NULL, &err);
    if (rc == MQ_OK)
      confirmed++;
    else {
      assert_int_equal(rc, MQ_FAILED_PRECONDITION);
      refused++;
    }
  }
  mq_test_sleep_ms(1500); /* let the sweeper finish the rest */
  for (int i = 0; i < N; i++) {
    char f[120];
    snprintf(f, sizeof f, "{\"_id\": \"%s:fate\"}", ids[i]);
    assert_int_equal(mq_test_count(NULL, srv.db, "hold_decisions", f), 1);
    snprintf(f, sizeof f, "{\"_id\": \"%s:fate\", \"outcome\": \"confirmed\"}", ids[i]);
    bool booked = mq_test_count(NULL, srv.db, "hold_decisions", f) == 1;
    snprintf(f, sizeof f, "{\"_id\": \"%s\"}", ids[i]);
    assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), booked ? 1 : 0);
    assert_int_equal(slots_of(ids[i]), booked ? 1 : 0);
  }
  assert_int_equal(slots_in_pool(ev.tt[0]), confirmed);
  print_message("confirm vs expiry: %d confirmed, %d expired first\n", confirmed, refused);
}

static void test_payment_steps(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 2500, 10);
  mq_error_t err;
  hold_t *h = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, &h, &err), MQ_OK);
  assert_true(h->requires_payment);
  assert_int_equal(h->total->amount_minor, 5000);
  assert_int_equal(h->lines[0]->subtotal->amount_minor, 5000);
  expect(confirm(alice, h->hold_id, NULL, &err), MQ_FAILED_PRECONDITION, &err, "hold_id");
  assert_non_null(strstr(err.message, "payment required"));

  Marquee__Bookings__V1__StartHoldPaymentRequest sq = MARQUEE__BOOKINGS__V1__START_HOLD_PAYMENT_REQUEST__INIT;
  sq.hold_id = h->hold_id;
  sq.payment_reference = (char *)"pi_test_123";
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_admin = {.bearer_token = admin};
  hold_t *p = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_alice, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_OK);
  assert_int_equal(p->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_PAYMENT_PENDING);
  assert_non_null(p->payment_deadline);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  /* idempotent with the same reference, refused with another */
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  sq.payment_reference = (char *)"pi_other";
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_FAILED_PRECONDITION);
  /* in payment, the hold outlives its expiry */
  mq_test_sleep_ms(6000);
  assert_int_equal(get_hold(alice, h->hold_id, &p, &err), MQ_OK);
  assert_int_equal(p->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_PAYMENT_PENDING);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  assert_int_equal(slots_of(h->hold_id), 2);
  Marquee__Bookings__V1__CompleteHoldPaymentRequest cq = MARQUEE__BOOKINGS__V1__COMPLETE_HOLD_PAYMENT_REQUEST__INIT;
  cq.hold_id = h->hold_id;
  cq.payment_reference = (char *)"pi_wrong";
  cq.succeeded = true;
  Marquee__Bookings__V1__CompleteHoldPaymentResponse *cr = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__complete_hold_payment__call(c, &cq, &cr, &as_admin, &err),
                   MQ_FAILED_PRECONDITION);
  cq.payment_reference = (char *)"pi_test_123";
  assert_int_equal(marquee__bookings__v1__booking_service__complete_hold_payment__call(c, &cq, &cr, &as_admin, &err),
                   MQ_OK);
  assert_non_null(cr->booking);
  assert_string_equal(cr->booking->payment_reference, "pi_test_123");
  assert_int_equal(cr->booking->n_tickets, 2);
  assert_int_equal(cr->hold->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_CONFIRMED);
  marquee__bookings__v1__complete_hold_payment_response__free_unpacked(cr, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);

  /* a failed payment releases; a success after the window is refused */
  hold_t *f = NULL, *late = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, &f, &err), MQ_OK);
  assert_int_equal(create_hold(bob, ev.event_id, ev.tt[0], 1, NULL, NULL, &late, &err), MQ_OK);
  sq.hold_id = f->hold_id;
  sq.payment_reference = (char *)"pi_fail";
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  sq.hold_id = late->hold_id;
  sq.payment_reference = (char *)"pi_late";
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  cq.hold_id = f->hold_id;
  cq.payment_reference = (char *)"pi_fail";
  cq.succeeded = false;
  assert_int_equal(marquee__bookings__v1__booking_service__complete_hold_payment__call(c, &cq, &cr, &as_admin, &err),
                   MQ_OK);
  assert_int_equal(cr->hold->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED);
  assert_null(cr->booking);
  marquee__bookings__v1__complete_hold_payment_response__free_unpacked(cr, NULL);
  assert_int_equal(slots_of(f->hold_id), 0);
  mq_test_sleep_ms(11000); /* MARQUEE_PAYMENT_WINDOW_S=10 */
  cq.hold_id = late->hold_id;
  cq.payment_reference = (char *)"pi_late";
  cq.succeeded = true;
  expect(marquee__bookings__v1__booking_service__complete_hold_payment__call(c, &cq, &cr, &as_admin, &err),
         MQ_FAILED_PRECONDITION, &err, "hold_id");
  assert_non_null(strstr(err.message, "refund"));
  assert_int_equal(slots_of(late->hold_id), 0);
  marquee__bookings__v1__hold__free_unpacked(f, NULL);
  marquee__bookings__v1__hold__free_unpacked(late, NULL);
}

static void book(const char *token, const mq_fx_event_t *ev, uint32_t qty, booking_t **out) {
  mq_error_t err;
  hold_t *h = NULL;
  assert_int_equal(create_hold(token, ev->event_id, ev->tt[0], qty, NULL, NULL, &h, &err), MQ_OK);
  assert_int_equal(confirm(token, h->hold_id, out, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static mq_code_t cancel(const char *token, const char *id, booking_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__CancelBookingRequest q = MARQUEE__BOOKINGS__V1__CANCEL_BOOKING_REQUEST__INIT;
  q.booking_id = (char *)id;
  q.reason = (char *)"plans changed";
  mq_call_opts_t oo = {.bearer_token = token};
  booking_t *b = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__cancel_booking__call(c, &q, &b, &oo, err);
  if (out)
    *out = b;
  else if (b)
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
  return rc;
}

static void test_cancellation(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 10);
  booking_t *b = NULL, *x = NULL;
  book(alice, &ev, 2, &b);
  assert_int_equal(slots_in_pool(ev.tt[0]), 2);
  assert_int_equal(cancel(bob, b->booking_id, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(cancel(alice, b->booking_id, &x, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED);
  assert_string_equal(x->cancelled_by, "attendee");
  assert_string_equal(x->tickets[0]->code, "");
  marquee__bookings__v1__booking__free_unpacked(x, NULL);
  assert_int_equal(slots_in_pool(ev.tt[0]), 0);
  assert_int_equal(cancel(alice, b->booking_id, NULL, &err), MQ_OK); /* idempotent */
  char f[120];
  snprintf(f, sizeof f, "{\"_id\": \"%s:cancel\", \"done\": true}", b->booking_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "hold_decisions", f), 1);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);

  mq_fx_event_t strict = {0};
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.capacity = 10}}, .cancel_disabled = true};
  mq_fx_event(c, organizer, org, &o, &strict);
  book(alice, &strict, 1, &b);
  expect(cancel(alice, b->booking_id, NULL, &err), MQ_FAILED_PRECONDITION, &err, "booking_id");
  assert_int_equal(cancel(organizer, b->booking_id, &x, &err), MQ_OK);
  assert_string_equal(x->cancelled_by, "organizer");
  marquee__bookings__v1__booking__free_unpacked(x, NULL);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  assert_int_equal(slots_in_pool(strict.tt[0]), 0);
}

typedef struct {
  const char *event, *code, *gate;
  mq_code_t rc;
} scan_t;

static mq_code_t scan(const char *token, const char *event, const char *code, const char *gate, mq_error_t *err) {
  Marquee__Bookings__V1__CheckInRequest q = MARQUEE__BOOKINGS__V1__CHECK_IN_REQUEST__INIT;
  q.event_id = (char *)event;
  q.code = (char *)code;
  q.gate = (char *)gate;
  mq_call_opts_t oo = {.bearer_token = token};
  Marquee__Bookings__V1__CheckInRecord *r = NULL;
  mq_code_t rc = marquee__bookings__v1__check_in_service__check_in__call(c, &q, &r, &oo, err);
  if (r) marquee__bookings__v1__check_in_record__free_unpacked(r, NULL);
  return rc;
}

static void *scanner(void *arg) {
  scan_t *s = arg;
  mq_error_t err;
  s->rc = scan(organizer, s->event, s->code, s->gate, &err);
  return NULL;
}

/* The whole export as one string (NULL on error, err set). */
static char *export_all(const char *token, Marquee__Bookings__V1__ExportEventBookingsRequest *q, mq_error_t *err) {
  mq_call_opts_t oo = {.bearer_token = token};
  mq_client_stream_t *st = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__export_event_bookings__open(c, &oo, &st, err);
  if (rc == MQ_OK) rc = marquee__bookings__v1__booking_service__export_event_bookings__send(st, q, err);
  if (rc == MQ_OK) rc = mq_client_stream_close_send(st, err);
  size_t len = 0;
  char *out = calloc(1, 1);
  while (rc == MQ_OK) {
    Marquee__Bookings__V1__CsvChunk *ch = NULL;
    rc = marquee__bookings__v1__booking_service__export_event_bookings__recv(st, &ch, err);
    if (!ch) break;
    size_t n = strlen(ch->text);
    char *bigger = realloc(out, len + n + 1);
    assert_non_null(bigger);
    out = bigger;
    memcpy(out + len, ch->text, n + 1);
    len += n;
    marquee__bookings__v1__csv_chunk__free_unpacked(ch, NULL);
  }
  if (st) mq_client_stream_free(st);
  if (rc != MQ_OK) {
    free(out);
    return NULL;
  }
  return out;
}

static void test_check_in(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_t ev = {0}, other = {0};
  one_event(&ev, 0, 10);
  one_event(&other, 0, 10);
  booking_t *b = NULL, *ob = NULL;
  book(alice, &ev, 3, &b);
  book(alice, &other, 1, &ob);
  const char *code = b->tickets[0]->code;
  expect(scan(bob, ev.event_id, code, "North", &err), MQ_NOT_FOUND, &err, "event_id");
  expect(scan(organizer, ev.event_id, code, "", &err), MQ_INVALID_ARGUMENT, &err, "gate");
  expect(scan(organizer, ev.event_id, code, "North", &err), MQ_OK, &err, NULL);
  expect(scan(organizer, ev.event_id, code, "South", &err), MQ_ALREADY_EXISTS, &err, "code");
  assert_non_null(strstr(err.message, "gate \"North\""));
  assert_non_null(strstr(err.message, "checked in at 20"));
  /* forged and altered codes */
  char *bad = strdup(b->tickets[1]->code);
  size_t n = strlen(bad);
  bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
  expect(scan(organizer, ev.event_id, bad, "North", &err), MQ_INVALID_ARGUMENT, &err, "code");
  bad[n - 5] = b->tickets[1]->code[n - 5];
  bad[12] = bad[12] == 'A' ? 'B' : 'A'; /* in the payload: another ticket id */
  expect(scan(organizer, ev.event_id, bad, "North", &err), MQ_INVALID_ARGUMENT, &err, "code");
  free(bad);
  expect(scan(organizer, ev.event_id, "MQT1.other.AAAA", "North", &err), MQ_INVALID_ARGUMENT, &err, "code");
  expect(scan(organizer, ev.event_id, "hello", "North", &err), MQ_INVALID_ARGUMENT, &err, "code");
  expect(scan(organizer, ev.event_id, ob->tickets[0]->code, "North", &err), MQ_FAILED_PRECONDITION, &err, "code");
  /* attendee name frozen after check-in */
  Marquee__Bookings__V1__SetAttendeeNameRequest nq = MARQUEE__BOOKINGS__V1__SET_ATTENDEE_NAME_REQUEST__INIT;
  nq.ticket_id = b->tickets[0]->ticket_id;
  nq.attendee_name = (char *)"Someone Else";
  Marquee__Bookings__V1__Ticket *t = NULL;
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_org = {.bearer_token = organizer},
                 as_bob = {.bearer_token = bob};
  assert_int_equal(marquee__bookings__v1__ticket_service__set_attendee_name__call(c, &nq, &t, &as_alice, &err),
                   MQ_FAILED_PRECONDITION);
  Marquee__Bookings__V1__GetTicketRequest gq = MARQUEE__BOOKINGS__V1__GET_TICKET_REQUEST__INIT;
  gq.ticket_id = b->tickets[0]->ticket_id;
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket__call(c, &gq, &t, &as_bob, &err), MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket__call(c, &gq, &t, &as_alice, &err), MQ_OK);
  assert_non_null(t->checked_in_at);
  assert_string_equal(t->checked_in_gate, "North");
  marquee__bookings__v1__ticket__free_unpacked(t, NULL);
  /* undo by a manager, then a new check-in */
  Marquee__Bookings__V1__UndoCheckInRequest uq = MARQUEE__BOOKINGS__V1__UNDO_CHECK_IN_REQUEST__INIT;
  uq.event_id = ev.event_id;
  uq.ticket_id = b->tickets[0]->ticket_id;
  uq.reason = (char *)"scanned the wrong person";
  Marquee__Bookings__V1__UndoCheckInResponse *ur = NULL;
  assert_int_equal(marquee__bookings__v1__check_in_service__undo_check_in__call(c, &uq, &ur, &as_alice, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__check_in_service__undo_check_in__call(c, &uq, &ur, &as_org, &err), MQ_OK);
  marquee__bookings__v1__undo_check_in_response__free_unpacked(ur, NULL);
  assert_int_equal(marquee__bookings__v1__check_in_service__undo_check_in__call(c, &uq, &ur, &as_org, &err),
                   MQ_NOT_FOUND);
  expect(scan(organizer, ev.event_id, code, "South", &err), MQ_OK, &err, NULL);

  /* two scanners at once on one ticket: one check-in */
  for (int round = 1; round < 3; round++) {
    scan_t s1 = {ev.event_id, b->tickets[round]->code, "Gate A", 0},
           s2 = {ev.event_id, b->tickets[round]->code, "Gate B", 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, scanner, &s1);
    pthread_create(&t2, NULL, scanner, &s2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_true((s1.rc == MQ_OK && s2.rc == MQ_ALREADY_EXISTS) || (s2.rc == MQ_OK && s1.rc == MQ_ALREADY_EXISTS));
  }
  char f[96];
  snprintf(f, sizeof f, "{\"event_id\": \"%s\"}", ev.event_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "checkins", f), 3);

  Marquee__Bookings__V1__GetCheckInStatsRequest stq = MARQUEE__BOOKINGS__V1__GET_CHECK_IN_STATS_REQUEST__INIT;
  stq.event_id = ev.event_id;
  Marquee__Bookings__V1__CheckInStats *st = NULL;
  assert_int_equal(marquee__bookings__v1__check_in_service__get_check_in_stats__call(c, &stq, &st, &as_org, &err),
                   MQ_OK);
  assert_int_equal(st->sold, 3);
  assert_int_equal(st->checked_in, 3);
  assert_int_equal(st->n_ticket_types, 1);
  marquee__bookings__v1__check_in_stats__free_unpacked(st, NULL);
  Marquee__Bookings__V1__ListCheckInsRequest lq = MARQUEE__BOOKINGS__V1__LIST_CHECK_INS_REQUEST__INIT;
  lq.event_id = ev.event_id;
  lq.page_size = 2;
  Marquee__Bookings__V1__ListCheckInsResponse *lr = NULL;
  assert_int_equal(marquee__bookings__v1__check_in_service__list_check_ins__call(c, &lq, &lr, &as_org, &err), MQ_OK);
  assert_int_equal(lr->n_check_ins, 2);
  char token[200];
  snprintf(token, sizeof token, "%s", lr->next_page_token);
  marquee__bookings__v1__list_check_ins_response__free_unpacked(lr, NULL);
  lq.page_token = token;
  assert_int_equal(marquee__bookings__v1__check_in_service__list_check_ins__call(c, &lq, &lr, &as_org, &err), MQ_OK);
  assert_int_equal(lr->n_check_ins, 1);
  marquee__bookings__v1__list_check_ins_response__free_unpacked(lr, NULL);

  /* a cancelled booking's ticket is refused at the gate */
  booking_t *gone = NULL;
  book(bob, &ev, 1, &gone);
  char gone_code[300];
  snprintf(gone_code, sizeof gone_code, "%s", gone->tickets[0]->code);
  assert_int_equal(cancel(bob, gone->booking_id, NULL, &err), MQ_OK);
  expect(scan(organizer, ev.event_id, gone_code, "North", &err), MQ_FAILED_PRECONDITION, &err, "code");
  marquee__bookings__v1__booking__free_unpacked(gone, NULL);

  /* public keys verify offline */
  Marquee__Bookings__V1__GetTicketKeysRequest kq = MARQUEE__BOOKINGS__V1__GET_TICKET_KEYS_REQUEST__INIT;
  Marquee__Bookings__V1__GetTicketKeysResponse *kr = NULL;
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket_keys__call(c, &kq, &kr, NULL, &err), MQ_OK);
  assert_int_equal(kr->n_keys, 1);
  assert_string_equal(kr->keys[0]->kid, "itest");
  assert_int_equal(kr->keys[0]->ed25519_public_key.len, 32);
  marquee__bookings__v1__get_ticket_keys_response__free_unpacked(kr, NULL);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  marquee__bookings__v1__booking__free_unpacked(ob, NULL);
}

static void test_images_export_and_move(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_t ev = {0};
  mq_fx_event_opts_t o = {.n_tt = 2, .tt = {{.capacity = 10}, {.capacity = 1}}};
  mq_fx_event(c, organizer, org, &o, &ev);
  booking_t *b = NULL, *moved = NULL;
  book(alice, &ev, 2, &b);
  Marquee__Bookings__V1__SetAttendeeNameRequest nq = MARQUEE__BOOKINGS__V1__SET_ATTENDEE_NAME_REQUEST__INIT;
  nq.ticket_id = b->tickets[1]->ticket_id;
  nq.attendee_name = (char *)"=HYPERLINK(\"x\"), \"Bo\"";
  Marquee__Bookings__V1__Ticket *t = NULL;
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_org = {.bearer_token = organizer},
                 as_bob = {.bearer_token = bob};
  assert_int_equal(marquee__bookings__v1__ticket_service__set_attendee_name__call(c, &nq, &t, &as_alice, &err), MQ_OK);
  marquee__bookings__v1__ticket__free_unpacked(t, NULL);

  /* images through the RPC */
  Marquee__Bookings__V1__GetTicketImageRequest iq = MARQUEE__BOOKINGS__V1__GET_TICKET_IMAGE_REQUEST__INIT;
  iq.ticket_id = b->tickets[0]->ticket_id;
  Marquee__Bookings__V1__TicketImage *img = NULL;
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket_image__call(c, &iq, &img, &as_bob, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket_image__call(c, &iq, &img, &as_alice, &err), MQ_OK);
  assert_string_equal(img->content_type, "image/png");
  assert_true(img->data.len > 100 && !memcmp(img->data.data, "\x89PNG\r\n\x1a\n", 8));
  marquee__bookings__v1__ticket_image__free_unpacked(img, NULL);
  iq.format = MARQUEE__BOOKINGS__V1__TICKET_IMAGE_FORMAT__TICKET_IMAGE_FORMAT_PDF;
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket_image__call(c, &iq, &img, &as_org, &err), MQ_OK);
  assert_string_equal(img->content_type, "application/pdf");
  assert_true(img->data.len > 1000 && !memcmp(img->data.data, "%PDF-", 5));
  marquee__bookings__v1__ticket_image__free_unpacked(img, NULL);
  iq.scale = 99;
  assert_int_equal(marquee__bookings__v1__ticket_service__get_ticket_image__call(c, &iq, &img, &as_alice, &err),
                   MQ_INVALID_ARGUMENT);
  /* and on the side HTTP port */
  char path[128];
  snprintf(path, sizeof path, "/tickets/%s.pdf", b->tickets[0]->ticket_id);
  int status = 0;
  char *body = mq_test_http_get(srv.http, path, &status);
  assert_int_equal(status, 401);
  free(body);
  char bearer[1024];
  snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", alice);
  body = mq_test_http_get_with(srv.http, path, bearer, &status);
  assert_int_equal(status, 200);
  assert_true(body && !memcmp(body, "%PDF-", 5));
  free(body);
  snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", bob);
  body = mq_test_http_get_with(srv.http, path, bearer, &status);
  assert_int_equal(status, 404);
  free(body);

  /* CSV export: managers only; one row per ticket, formula cells defused */
  Marquee__Bookings__V1__ExportEventBookingsRequest xq = MARQUEE__BOOKINGS__V1__EXPORT_EVENT_BOOKINGS_REQUEST__INIT;
  xq.event_id = ev.event_id;
  char *csv = export_all(alice, &xq, &err);
  assert_null(csv);
  assert_int_equal(err.code, MQ_NOT_FOUND);
  csv = export_all(organizer, &xq, &err);
  assert_non_null(csv);
  assert_true(strncmp(csv, "booking_id,ticket_id,state,", 27) == 0);
  int rows = 0;
  for (char *p = csv; (p = strstr(p, "\r\n")); p += 2) rows++;
  assert_int_equal(rows, 3);
  assert_non_null(strstr(csv, "\"'=HYPERLINK(\"\"x\"\"), \"\"Bo\"\"\""));
  free(csv);

  /* move ticket 0 to the one-unit type; a second move finds it sold out */
  Marquee__Bookings__V1__ChangeTicketTypeRequest mq = MARQUEE__BOOKINGS__V1__CHANGE_TICKET_TYPE_REQUEST__INIT;
  mq.booking_id = b->booking_id;
  mq.ticket_id = b->tickets[0]->ticket_id;
  mq.ticket_type_id = ev.tt[1];
  assert_int_equal(marquee__bookings__v1__booking_service__change_ticket_type__call(c, &mq, &moved, &as_alice, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__bookings__v1__booking_service__change_ticket_type__call(c, &mq, &moved, &as_org, &err),
                   MQ_OK);
  assert_string_equal(moved->tickets[0]->ticket_type_id, ev.tt[1]);
  assert_string_equal(moved->tickets[0]->code, b->tickets[0]->code); /* still valid */
  marquee__bookings__v1__booking__free_unpacked(moved, NULL);
  assert_int_equal(slots_in_pool(ev.tt[0]), 1);
  assert_int_equal(slots_in_pool(ev.tt[1]), 1);
  mq.ticket_id = b->tickets[1]->ticket_id;
  expect(marquee__bookings__v1__booking_service__change_ticket_type__call(c, &mq, &moved, &as_org, &err),
         MQ_RESOURCE_EXHAUSTED, &err, "ticket_type_id");
  assert_int_equal(slots_in_pool(ev.tt[0]), 1);
  /* the moved unit survives reclaim passes (the booking refers to it), the freed one is gone */
  mq_test_sleep_ms(11000);
  assert_int_equal(slots_in_pool(ev.tt[0]), 1);
  assert_int_equal(slots_in_pool(ev.tt[1]), 1);
  expect(scan(organizer, ev.event_id, b->tickets[0]->code, "North", &err), MQ_OK, &err, NULL);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
}

typedef Marquee__Bookings__V1__WaitlistEntry entry_t;

static mq_code_t join(const char *token, const mq_fx_event_t *ev, uint32_t qty, entry_t **out, mq_error_t *err) {
  Marquee__Bookings__V1__JoinWaitlistRequest q = MARQUEE__BOOKINGS__V1__JOIN_WAITLIST_REQUEST__INIT;
  q.event_id = (char *)ev->event_id;
  q.ticket_type_id = (char *)ev->tt[0];
  q.quantity = qty;
  mq_call_opts_t oo = {.bearer_token = token};
  entry_t *e = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__join_waitlist__call(c, &q, &e, &oo, err);
  if (out)
    *out = e;
  else if (e)
    marquee__bookings__v1__waitlist_entry__free_unpacked(e, NULL);
  return rc;
}

/* Waits until the entry reaches `state` (10 s). */
static entry_t *entry_in(const char *token, const char *id, int state) {
  Marquee__Bookings__V1__WaitlistEntryRequest q = MARQUEE__BOOKINGS__V1__WAITLIST_ENTRY_REQUEST__INIT;
  q.entry_id = (char *)id;
  mq_call_opts_t oo = {.bearer_token = token};
  for (int i = 0; i < 100; i++) {
    entry_t *e = NULL;
    mq_error_t err;
    assert_int_equal(marquee__bookings__v1__booking_service__get_waitlist_entry__call(c, &q, &e, &oo, &err), MQ_OK);
    if ((int)e->state == state) return e;
    marquee__bookings__v1__waitlist_entry__free_unpacked(e, NULL);
    mq_test_sleep_ms(100);
  }
  fail_msg("waitlist entry %s never reached state %d", id, state);
  return NULL;
}

static void test_waitlist(void **state) {
  (void)state;
  mq_error_t err;
  char *carol = mq_test_token("00000000-0000-4000-8000-0000000b00c0", MQ_ROLE_ATTENDEE);
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 2);
  expect(join(bob, &ev, 1, NULL, &err), MQ_FAILED_PRECONDITION, &err, "ticket_type_id"); /* not sold out */
  hold_t *h = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, &h, &err), MQ_OK);
  entry_t *eb = NULL, *ec = NULL;
  expect(join(bob, &ev, 0, NULL, &err), MQ_INVALID_ARGUMENT, &err, "quantity");
  assert_int_equal(join(bob, &ev, 1, &eb, &err), MQ_OK);
  assert_int_equal(eb->state, MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_WAITING);
  assert_int_equal(eb->position, 1);
  assert_int_equal(join(carol, &ev, 1, &ec, &err), MQ_OK);
  assert_int_equal(ec->position, 2);
  expect(join(bob, &ev, 1, NULL, &err), MQ_ALREADY_EXISTS, &err, "ticket_type_id");
  /* another user's entry is not visible */
  Marquee__Bookings__V1__WaitlistEntryRequest wq = MARQUEE__BOOKINGS__V1__WAITLIST_ENTRY_REQUEST__INIT;
  wq.entry_id = eb->entry_id;
  mq_call_opts_t as_carol = {.bearer_token = carol};
  entry_t *x = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__get_waitlist_entry__call(c, &wq, &x, &as_carol, &err),
                   MQ_NOT_FOUND);
  /* units come back: the line is served in order, in front of newcomers */
  Marquee__Bookings__V1__ReleaseHoldRequest rq = MARQUEE__BOOKINGS__V1__RELEASE_HOLD_REQUEST__INIT;
  rq.hold_id = h->hold_id;
  mq_call_opts_t as_alice = {.bearer_token = alice}, as_bob = {.bearer_token = bob};
  hold_t *r = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_alice, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(r, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  entry_t *ob = entry_in(bob, eb->entry_id, MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_OFFERED);
  entry_t *oc = entry_in(carol, ec->entry_id, MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_OFFERED);
  assert_string_not_equal(ob->offer_hold_id, "");
  assert_non_null(ob->offer_expires_at);
  expect(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, NULL, &err), MQ_RESOURCE_EXHAUSTED, &err,
         "items[0].quantity");
  /* bob confirms his offer; carol leaves (her offer goes back) */
  hold_t *bh = NULL;
  assert_int_equal(get_hold(bob, ob->offer_hold_id, &bh, &err), MQ_OK);
  assert_int_equal(bh->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_ACTIVE);
  assert_int_equal(bh->lines[0]->quantity, 1);
  marquee__bookings__v1__hold__free_unpacked(bh, NULL);
  assert_int_equal(confirm(bob, ob->offer_hold_id, NULL, &err), MQ_OK);
  entry_t *done = entry_in(bob, eb->entry_id, MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_BOOKED);
  marquee__bookings__v1__waitlist_entry__free_unpacked(done, NULL);
  wq.entry_id = ec->entry_id;
  assert_int_equal(marquee__bookings__v1__booking_service__leave_waitlist__call(c, &wq, &x, &as_bob, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__bookings__v1__booking_service__leave_waitlist__call(c, &wq, &x, &as_carol, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__BOOKINGS__V1__WAITLIST_STATE__WAITLIST_STATE_LEFT);
  marquee__bookings__v1__waitlist_entry__free_unpacked(x, NULL);
  assert_int_equal(slots_of(oc->offer_hold_id), 0);
  /* with nobody waiting, the freed unit is for anyone again */
  mq_test_sleep_ms(300);
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, NULL, &err), MQ_OK);
  char f[160];
  snprintf(f, sizeof f, "{\"_id\": \"%s\", \"_outbox.type\": \"bookings.WaitlistOffered\"}", eb->entry_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "waitlist", f), 1);
  (void)as_bob;
  marquee__bookings__v1__waitlist_entry__free_unpacked(ob, NULL);
  marquee__bookings__v1__waitlist_entry__free_unpacked(oc, NULL);
  marquee__bookings__v1__waitlist_entry__free_unpacked(eb, NULL);
  marquee__bookings__v1__waitlist_entry__free_unpacked(ec, NULL);
  free(carol);
}

/* CancelEvent reaches the bookings: confirmed ones are cancelled by the
 * organizer (refund events), active holds released, units returned. */
static void test_event_cancel_cascades(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_t ev = {0};
  one_event(&ev, 1500, 10);
  hold_t *paid = NULL, *open_hold = NULL;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 2, NULL, NULL, &paid, &err), MQ_OK);
  Marquee__Bookings__V1__StartHoldPaymentRequest sq = MARQUEE__BOOKINGS__V1__START_HOLD_PAYMENT_REQUEST__INIT;
  sq.hold_id = paid->hold_id;
  sq.payment_reference = (char *)"pi_cascade";
  mq_call_opts_t as_admin = {.bearer_token = admin}, as_org = {.bearer_token = organizer};
  hold_t *p = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__start_hold_payment__call(c, &sq, &p, &as_admin, &err),
                   MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(p, NULL);
  Marquee__Bookings__V1__CompleteHoldPaymentRequest cq = MARQUEE__BOOKINGS__V1__COMPLETE_HOLD_PAYMENT_REQUEST__INIT;
  cq.hold_id = paid->hold_id;
  cq.payment_reference = (char *)"pi_cascade";
  cq.succeeded = true;
  Marquee__Bookings__V1__CompleteHoldPaymentResponse *cr = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__complete_hold_payment__call(c, &cq, &cr, &as_admin, &err),
                   MQ_OK);
  marquee__bookings__v1__complete_hold_payment_response__free_unpacked(cr, NULL);
  assert_int_equal(create_hold(bob, ev.event_id, ev.tt[0], 1, NULL, NULL, &open_hold, &err), MQ_OK);
  assert_int_equal(slots_in_pool(ev.tt[0]), 3);

  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = ev.event_id;
  kq.reason = (char *)"Venue flooded";
  Marquee__Catalog__V1__Event *ke = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(c, &kq, &ke, &as_org, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(ke, NULL);
  /* the sweeper takes over unfinished triggers after 10 s */
  booking_t *b = NULL;
  int bs = 0;
  for (int i = 0; i < 150 && bs != MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED; i++) {
    mq_test_sleep_ms(200);
    assert_int_equal(get_booking(alice, paid->hold_id, &b, &err), MQ_OK);
    bs = b->state;
    if (bs != MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED)
      marquee__bookings__v1__booking__free_unpacked(b, NULL);
  }
  assert_int_equal(bs, MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED);
  assert_non_null(b);
  assert_string_equal(b->cancelled_by, "organizer");
  assert_non_null(strstr(b->cancel_reason, "Venue flooded"));
  assert_string_equal(b->payment_reference, "pi_cascade");
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  hold_t *g = NULL;
  for (int i = 0; i < 50; i++) {
    assert_int_equal(get_hold(bob, open_hold->hold_id, &g, &err), MQ_OK);
    int hs = g->state;
    marquee__bookings__v1__hold__free_unpacked(g, NULL);
    if (hs == MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED) break;
    mq_test_sleep_ms(200);
  }
  assert_int_equal(slots_in_pool(ev.tt[0]), 0);
  char f[160];
  snprintf(f, sizeof f, "{\"_id\": \"%s:event_cancel\", \"done\": true}", ev.event_id);
  int64_t done = 0;
  for (int i = 0; i < 50 && done == 0; i++) {
    done = mq_test_count(NULL, srv.db, "hold_decisions", f);
    if (!done) mq_test_sleep_ms(200);
  }
  assert_int_equal(done, 1);
  snprintf(f, sizeof f, "{\"_id\": \"%s:cancel\", \"outcome\": \"organizer\"}", paid->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "hold_decisions", f), 1);
  marquee__bookings__v1__hold__free_unpacked(paid, NULL);
  marquee__bookings__v1__hold__free_unpacked(open_hold, NULL);
}

/* A hold released twice must not free the unit someone else took in
 * between: the second release used to delete the slot record by its id
 * alone, handing the last ticket out twice. */
static void test_release_again_keeps_the_next_holders_unit(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev, 0, 1);
  hold_t *ha = NULL, *hb = NULL, *hc = NULL;
  mq_error_t err;
  assert_int_equal(create_hold(alice, ev.event_id, ev.tt[0], 1, NULL, NULL, &ha, &err), MQ_OK);
  Marquee__Bookings__V1__ReleaseHoldRequest rq = MARQUEE__BOOKINGS__V1__RELEASE_HOLD_REQUEST__INIT;
  rq.hold_id = ha->hold_id;
  mq_call_opts_t as_alice = {.bearer_token = alice};
  hold_t *r = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_alice, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(r, NULL);
  assert_int_equal(create_hold(bob, ev.event_id, ev.tt[0], 1, NULL, NULL, &hb, &err), MQ_OK); /* the unit again */
  /* alice's release, retried */
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &r, &as_alice, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(r, NULL);
  assert_int_equal(slots_of(hb->hold_id), 1);
  assert_int_equal(create_hold(admin, ev.event_id, ev.tt[0], 1, NULL, NULL, &hc, &err), MQ_RESOURCE_EXHAUSTED);
  assert_int_equal(slots_in_pool(ev.tt[0]), 1);
  marquee__bookings__v1__hold__free_unpacked(ha, NULL);
  marquee__bookings__v1__hold__free_unpacked(hb, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_free_hold_confirm_and_visibility),
      cmocka_unit_test(test_release_again_keeps_the_next_holders_unit),
      cmocka_unit_test(test_idempotent_retry),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_sold_out_release_and_expiry),
      cmocka_unit_test(test_confirm_races_expiry),
      cmocka_unit_test(test_payment_steps),
      cmocka_unit_test(test_cancellation),
      cmocka_unit_test(test_check_in),
      cmocka_unit_test(test_images_export_and_move),
      cmocka_unit_test(test_waitlist),
      cmocka_unit_test(test_event_cancel_cascades),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
