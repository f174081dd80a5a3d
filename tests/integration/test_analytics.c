/*
 * test_analytics.c — sales aggregates end to end on the real stack:
 * marquee-server and marquee-analytics on one database, FerretDB and Kafka
 * between them.
 *
 * A scripted day (paid bookings in CAD and EUR through the manual gateway,
 * a partial refund, a cancellation refunded in full, a released hold,
 * check-ins and an undone one, page views) gives the event and organization
 * dashboards exactly what the bookings and payments say; a relay duplicate
 * (the same event id twice on the bus) counts once; the consumer SIGKILLed
 * and its saved positions wound back re-reads and doubles nothing, and
 * SIGKILLed in the middle of a burst of 60,000 it loses and doubles nothing;
 * `marquee-analytics --rebuild` yields identical aggregates; an organizer
 * watching an on-sale sees a sale pushed from the bus; a sale at
 * 23:30 in Toronto lands on the Toronto day; outsiders get NOT_FOUND,
 * non-admins PERMISSION_DENIED for the platform; bad ranges get
 * INVALID_ARGUMENT naming the field.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/mq_principal.h"
#include "fixtures.h"
#include "harness.h"
#include "lib/mq_recur.h"
#include "marquee/analytics/v1/analytics.mq-client.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/bookings/v1/tickets.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/payments/v1/payments.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000000e1"
#define ALICE "00000000-0000-4000-8000-0000000000e2"
#define BOB "00000000-0000-4000-8000-0000000000e3"
#define ADMIN "00000000-0000-4000-8000-0000000000e4"
#define STRANGER "00000000-0000-4000-8000-0000000000e5"

typedef Marquee__Analytics__V1__EventStats stats_t;

static mq_test_proc_t srv, an;
static mq_client_t *c;
static char *organizer, *alice, *bob, *admin, *stranger;
static char org[40], venue[40];
static mq_fx_event_t e_cad, e_eur;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_PAYMENT_ROUTES=*=manual", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_analytics_start(&an, srv.db, false, NULL) != 0) return -1;
  c = mq_test_client(&srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  alice = mq_test_token(ALICE, MQ_ROLE_ATTENDEE);
  bob = mq_test_token(BOB, MQ_ROLE_ATTENDEE);
  admin = mq_test_token(ADMIN, MQ_ROLE_ADMIN);
  stranger = mq_test_token(STRANGER, MQ_ROLE_ORGANIZER);
  mq_fx_org(c, organizer, "analytics", org);
  mq_fx_venue(c, organizer, org, "Toronto", "ON", "CA", "America/Toronto", venue);
  mq_fx_event_opts_t o = {.currency = "CAD", .venue_id = venue, .title = "Analytics Night", .n_tt = 2};
  o.tt[0].price_minor = 2500, o.tt[0].capacity = 50;
  o.tt[1].price_minor = 4000, o.tt[1].capacity = 50;
  mq_fx_event(c, organizer, org, &o, &e_cad);
  mq_fx_event_opts_t o2 = {.currency = "EUR", .title = "Analytics Online", .n_tt = 1};
  o2.tt[0].price_minor = 1500, o2.tt[0].capacity = 50;
  mq_fx_event(c, organizer, org, &o2, &e_eur);
  return c ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(c);
  free(organizer), free(alice), free(bob), free(admin), free(stranger);
  int rc = mq_test_proc_stop(&an, SIGTERM, 20000);
  rc |= mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return rc;
}

/* ---- the scripted day ---- */

/* Holds qty of type tt of ev for `token`, pays it by bank transfer and has
 * the organizer mark it received: the booking (caller frees) and its payment id. */
static Marquee__Bookings__V1__Booking *buy(const char *token, const mq_fx_event_t *ev, int tt, uint32_t qty,
                                           char payment_id[40]) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)ev->tt[tt];
  item.quantity = qty;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = (char *)ev->event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t ob = {.bearer_token = token}, oo = {.bearer_token = organizer};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(c, &hq, &h, &ob, &err), MQ_OK);
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = h->total->amount_minor;
  m.currency = h->total->currency;
  Marquee__Payments__V1__CreatePaymentRequest pq = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  pq.hold_id = h->hold_id;
  pq.amount = &m;
  Marquee__Payments__V1__Payment *p = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__create_payment__call(c, &pq, &p, &ob, &err), MQ_OK);
  snprintf(payment_id, 40, "%s", p->payment_id);
  Marquee__Payments__V1__MarkPaymentReceivedRequest rq = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
  rq.payment_id = p->payment_id;
  Marquee__Payments__V1__Payment *x = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &rq, &x, &oo, &err), MQ_OK);
  Marquee__Bookings__V1__GetBookingRequest bq = MARQUEE__BOOKINGS__V1__GET_BOOKING_REQUEST__INIT;
  bq.booking_id = x->booking_id;
  Marquee__Bookings__V1__Booking *b = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__get_booking__call(c, &bq, &b, &ob, &err), MQ_OK);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return b;
}

static void refund(const char *payment_id, int64_t amount, const char *currency) {
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = amount;
  m.currency = (char *)currency;
  Marquee__Payments__V1__RefundPaymentRequest q = MARQUEE__PAYMENTS__V1__REFUND_PAYMENT_REQUEST__INIT;
  q.payment_id = (char *)payment_id;
  q.amount = &m;
  mq_call_opts_t oo = {.bearer_token = organizer};
  Marquee__Payments__V1__Refund *r = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__payments__v1__payment_service__refund_payment__call(c, &q, &r, &oo, &err), MQ_OK);
  marquee__payments__v1__refund__free_unpacked(r, NULL);
}

static mq_code_t event_stats(const char *token, const char *event_id, const char *tz, int64_t from_ms, int64_t to_ms,
                             int granularity, stats_t **out, mq_error_t *err) {
  Google__Protobuf__Timestamp f = GOOGLE__PROTOBUF__TIMESTAMP__INIT, t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Marquee__Analytics__V1__TimeRange r = MARQUEE__ANALYTICS__V1__TIME_RANGE__INIT;
  if (from_ms) f.seconds = from_ms / 1000, r.start_time = &f;
  if (to_ms) t.seconds = to_ms / 1000, r.end_time = &t;
  r.time_zone = (char *)(tz ? tz : "");
  r.granularity = granularity;
  Marquee__Analytics__V1__GetEventStatsRequest q = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
  q.event_id = (char *)event_id;
  q.range = &r;
  mq_call_opts_t oo = {.bearer_token = token};
  memset(err, 0, sizeof *err);
  *out = NULL;
  return marquee__analytics__v1__analytics_service__get_event_stats__call(c, &q, out, &oo, err);
}

static const Marquee__Analytics__V1__Revenue *revenue_in(const Marquee__Analytics__V1__Counters *k, const char *cur) {
  for (size_t i = 0; i < k->n_revenue; i++)
    if (!strcmp(k->revenue[i]->currency, cur)) return k->revenue[i];
  return NULL;
}

/* What the source says about an event, from its bookings and payments. */
typedef struct truth {
  int64_t bookings, tickets, cancellations, tickets_cancelled, gross, fees, tax, refunded, refunds, check_ins;
} truth_t;

static void add_booking(truth_t *t, const Marquee__Bookings__V1__Booking *b) {
  t->bookings++;
  t->tickets += (int64_t)b->n_tickets;
  t->gross += b->total->amount_minor;
  if (b->service_fee) t->fees += b->service_fee->amount_minor;
  for (size_t i = 0; i < b->n_taxes; i++) t->tax += b->taxes[i]->amount->amount_minor;
}

/* Waits until the event's all-time totals show `bookings` bookings,
 * `refunds` refunds, `check_ins` check-ins… (everything the caller
 * compares, since partitions arrive in any order); the stats (caller frees). */
static stats_t *wait_stats(const char *event_id, int64_t bookings, int64_t refunds, int64_t check_ins,
                           int64_t cancellations, int64_t holds, int64_t released) {
  int64_t until = mq_test_now_ms() + 30000;
  stats_t *s = NULL;
  for (;;) {
    mq_error_t err;
    assert_int_equal(event_stats(organizer, event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
    const Marquee__Analytics__V1__Counters *k = s->totals;
    if (k->bookings == bookings && k->refunds == refunds && k->check_ins == check_ins &&
        k->cancellations == cancellations && k->holds == holds && k->holds_released == released &&
        s->complete_until) /* positions are written just after the documents */
      return s;
    if (mq_test_now_ms() > until)
      fail_msg("stats of %s: bookings %lld/%lld refunds %lld/%lld check-ins %lld/%lld cancellations %lld/%lld",
               event_id, (long long)k->bookings, (long long)bookings, (long long)k->refunds, (long long)refunds,
               (long long)k->check_ins, (long long)check_ins, (long long)k->cancellations, (long long)cancellations);
    marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
    mq_test_sleep_ms(200);
  }
}

static void assert_matches(const stats_t *s, const truth_t *t, const char *cur) {
  const Marquee__Analytics__V1__Counters *k = s->totals;
  assert_int_equal(k->bookings, t->bookings);
  assert_int_equal(k->tickets_sold, t->tickets);
  assert_int_equal(k->cancellations, t->cancellations);
  assert_int_equal(k->tickets_cancelled, t->tickets_cancelled);
  assert_int_equal(k->refunds, t->refunds);
  assert_int_equal(k->check_ins, t->check_ins);
  const Marquee__Analytics__V1__Revenue *r = revenue_in(k, cur);
  assert_non_null(r);
  assert_int_equal(r->gross_minor, t->gross);
  assert_int_equal(r->fees_minor, t->fees);
  assert_int_equal(r->tax_minor, t->tax);
  assert_int_equal(r->refunded_minor, t->refunded);
  assert_int_equal(r->net_minor, t->gross - t->fees - t->tax - t->refunded);
  assert_int_equal(k->n_revenue, 1);
  /* the series adds up to the totals */
  int64_t b = 0, g = 0;
  for (size_t i = 0; i < s->n_series; i++) {
    b += s->series[i]->counters->bookings;
    const Marquee__Analytics__V1__Revenue *x = revenue_in(s->series[i]->counters, cur);
    if (x) g += x->gross_minor;
  }
  assert_int_equal(b, t->bookings);
  assert_int_equal(g, t->gross);
}

static truth_t cad, eur;

static void test_scripted_day(void **state) {
  (void)state;
  char pa[40], pb[40], pc[40];
  /* CAD: Alice 2 x 25.00, Bob 1 x 40.00 (refunded 10.00 later), a released hold */
  Marquee__Bookings__V1__Booking *ba = buy(alice, &e_cad, 0, 2, pa);
  Marquee__Bookings__V1__Booking *bb = buy(bob, &e_cad, 1, 1, pb);
  add_booking(&cad, ba);
  add_booking(&cad, bb);
  assert_true(cad.tax > 0); /* Ontario's HST is in the price */
  refund(pb, 1000, "CAD");
  cad.refunds = 1, cad.refunded = 1000;
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = e_cad.tt[0];
  item.quantity = 1;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = e_cad.event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t ob = {.bearer_token = bob}, oo = {.bearer_token = organizer};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(c, &hq, &h, &ob, &err), MQ_OK);
  Marquee__Bookings__V1__ReleaseHoldRequest rq = MARQUEE__BOOKINGS__V1__RELEASE_HOLD_REQUEST__INIT;
  rq.hold_id = h->hold_id;
  Marquee__Bookings__V1__Hold *rh = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__release_hold__call(c, &rq, &rh, &ob, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(rh, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  /* check-ins: both of Alice's tickets, then one undone */
  for (size_t i = 0; i < ba->n_tickets; i++) {
    Marquee__Bookings__V1__CheckInRequest q = MARQUEE__BOOKINGS__V1__CHECK_IN_REQUEST__INIT;
    q.event_id = e_cad.event_id;
    q.code = ba->tickets[i]->code;
    q.gate = (char *)"North";
    Marquee__Bookings__V1__CheckInRecord *r = NULL;
    assert_int_equal(marquee__bookings__v1__check_in_service__check_in__call(c, &q, &r, &oo, &err), MQ_OK);
    marquee__bookings__v1__check_in_record__free_unpacked(r, NULL);
  }
  Marquee__Bookings__V1__UndoCheckInRequest uq = MARQUEE__BOOKINGS__V1__UNDO_CHECK_IN_REQUEST__INIT;
  uq.event_id = e_cad.event_id;
  uq.ticket_id = ba->tickets[1]->ticket_id;
  uq.reason = (char *)"scanned the wrong ticket";
  Marquee__Bookings__V1__UndoCheckInResponse *ur = NULL;
  assert_int_equal(marquee__bookings__v1__check_in_service__undo_check_in__call(c, &uq, &ur, &oo, &err), MQ_OK);
  marquee__bookings__v1__undo_check_in_response__free_unpacked(ur, NULL);
  cad.check_ins = 1;
  /* EUR: Alice 3 x 15.00, then she cancels (refunded in full by the cancellation) */
  Marquee__Bookings__V1__Booking *bc = buy(alice, &e_eur, 0, 3, pc);
  add_booking(&eur, bc);
  Marquee__Bookings__V1__CancelBookingRequest cq = MARQUEE__BOOKINGS__V1__CANCEL_BOOKING_REQUEST__INIT;
  cq.booking_id = bc->booking_id;
  cq.reason = (char *)"cannot come";
  mq_call_opts_t oa = {.bearer_token = alice};
  Marquee__Bookings__V1__Booking *cb = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__cancel_booking__call(c, &cq, &cb, &oa, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(cb, NULL);
  eur.cancellations = 1, eur.tickets_cancelled = 3, eur.refunds = 1, eur.refunded = bc->total->amount_minor;

  /* page views: anyone outside the organization reading the event (the second read comes from the cache) */
  for (int i = 0; i < 3; i++) {
    Marquee__Catalog__V1__GetEventRequest gq = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
    gq.event_id = e_cad.event_id;
    Marquee__Catalog__V1__Event *ge = NULL;
    mq_call_opts_t *as = i == 2 ? &ob : NULL;
    assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &gq, &ge, as, &err), MQ_OK);
    marquee__catalog__v1__event__free_unpacked(ge, NULL);
  }
  Marquee__Catalog__V1__GetEventRequest gq = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  gq.event_id = e_cad.event_id;
  Marquee__Catalog__V1__Event *ge = NULL; /* the organizer's own read is not a page view */
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &gq, &ge, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(ge, NULL);
  int64_t until = mq_test_now_ms() + 30000;
  stats_t *s = NULL;
  for (;;) {
    s = wait_stats(e_cad.event_id, 2, 1, 1, 0, 3, 1);
    if (s->totals->page_views >= 3 || mq_test_now_ms() > until) break;
    marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
    mq_test_sleep_ms(200);
  }
  assert_int_equal(s->totals->page_views, 3);
  assert_int_equal(s->conversion->page_views, 3);
  assert_true(s->conversion->view_to_hold == 1.0); /* 3 holds for 3 views */
  assert_matches(s, &cad, "CAD");
  assert_int_equal(s->totals->holds, 3);
  assert_int_equal(s->totals->holds_released, 1);
  assert_string_equal(s->time_zone, "America/Toronto"); /* the event's zone by default */
  assert_int_equal(s->conversion->holds, 3);
  assert_int_equal(s->conversion->bookings, 2);
  assert_int_equal(s->check_in->tickets, 3);
  assert_int_equal(s->check_in->checked_in, 1);
  assert_non_null(s->complete_until);
  /* by ticket type */
  assert_int_equal(s->n_ticket_types, 2);
  for (size_t i = 0; i < s->n_ticket_types; i++) {
    const Marquee__Analytics__V1__TicketTypeStats *t = s->ticket_types[i];
    bool first = !strcmp(t->ticket_type_id, e_cad.tt[0]);
    assert_int_equal(t->tickets_sold, first ? 2 : 1);
    assert_int_equal(t->check_ins, first ? 1 : 0);
    assert_int_equal(t->n_revenue, 1);
    assert_int_equal(t->revenue[0]->gross_minor, first ? 5000 : 4000);
  }
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  s = wait_stats(e_eur.event_id, 1, 1, 0, 1, 1, 0);
  assert_matches(s, &eur, "EUR");
  assert_int_equal(s->check_in->tickets, 0);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);

  /* the organization: both events, both currencies */
  Marquee__Analytics__V1__GetOrganizationStatsRequest oq = MARQUEE__ANALYTICS__V1__GET_ORGANIZATION_STATS_REQUEST__INIT;
  oq.organization_id = org;
  Marquee__Analytics__V1__OrganizationStats *os = NULL;
  /* the organization's documents are written in the same batches as the events', but a batch is not one
   * transaction: the scopes may differ for a moment, so wait for this one too */
  until = mq_test_now_ms() + 30000;
  for (;;) {
    assert_int_equal(marquee__analytics__v1__analytics_service__get_organization_stats__call(c, &oq, &os, &oo, &err),
                     MQ_OK);
    if ((os->totals->bookings == 3 && os->totals->n_revenue == 2 && os->totals->events_published == 2 &&
         os->totals->refunds == 2) ||
        mq_test_now_ms() > until)
      break;
    marquee__analytics__v1__organization_stats__free_unpacked(os, NULL);
    mq_test_sleep_ms(200);
  }
  assert_int_equal(os->totals->bookings, 3);
  assert_int_equal(os->totals->tickets_sold, 6);
  assert_int_equal(os->totals->events_published, 2);
  assert_int_equal(os->totals->n_revenue, 2);
  assert_int_equal(revenue_in(os->totals, "CAD")->gross_minor, cad.gross);
  assert_int_equal(revenue_in(os->totals, "EUR")->refunded_minor, eur.refunded);
  assert_int_equal(os->n_events, 2);
  bool listed = false;
  for (size_t i = 0; i < os->n_events; i++)
    if (!strcmp(os->events[i]->event_id, e_cad.event_id)) {
      listed = true;
      assert_string_equal(os->events[i]->title, "Analytics Night");
      assert_int_equal(os->events[i]->totals->tickets_sold, 3);
    }
  assert_true(listed);
  marquee__analytics__v1__organization_stats__free_unpacked(os, NULL);

  /* the event's CSV: one row per day, and its columns add up to the totals */
  Marquee__Analytics__V1__GetEventStatsRequest xq = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
  xq.event_id = e_cad.event_id;
  mq_client_stream_t *st = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__export_event_stats__open(c, &oo, &st, &err), MQ_OK);
  assert_int_equal(marquee__analytics__v1__analytics_service__export_event_stats__send(st, &xq, &err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  char csv[65536] = "";
  for (;;) {
    Marquee__Analytics__V1__CsvChunk *ch = NULL;
    mq_code_t rc = marquee__analytics__v1__analytics_service__export_event_stats__recv(st, &ch, &err);
    if (!ch) {
      assert_int_equal(rc, MQ_OK);
      break;
    }
    strncat(csv, ch->text, sizeof csv - strlen(csv) - 1);
    marquee__analytics__v1__csv_chunk__free_unpacked(ch, NULL);
  }
  mq_client_stream_free(st);
  assert_true(!strncmp(csv, "bucket,start_time,holds,", 24));
  assert_non_null(strstr(csv, ",gross_minor_CAD,"));
  int64_t csv_bookings = 0, csv_gross = 0;
  for (char *line = strstr(csv, "\r\n") + 2; line && *line;) {
    char *next = strstr(line, "\r\n");
    long long col[20] = {0};
    int k = 0;
    for (char *f = line; f && k < 20 && f < next; k++) {
      col[k] = atoll(f);
      f = strchr(f, ',');
      if (f) f++;
    }
    csv_bookings += col[5];
    csv_gross += col[12];
    line = next ? next + 2 : NULL;
  }
  assert_int_equal(csv_bookings, 2);
  assert_int_equal(csv_gross, cad.gross);

  /* the platform, for admins: at least this test's activity (other tests share the bus) */
  Marquee__Analytics__V1__GetPlatformStatsRequest pq = MARQUEE__ANALYTICS__V1__GET_PLATFORM_STATS_REQUEST__INIT;
  Marquee__Analytics__V1__PlatformStats *ps = NULL;
  mq_call_opts_t oad = {.bearer_token = admin};
  assert_int_equal(marquee__analytics__v1__analytics_service__get_platform_stats__call(c, &pq, &ps, &oad, &err), MQ_OK);
  assert_true(ps->totals->bookings >= 3);
  assert_true(ps->totals->events_published >= 2);
  assert_true(ps->active_organizers >= 1);
  marquee__analytics__v1__platform_stats__free_unpacked(ps, NULL);
  marquee__bookings__v1__booking__free_unpacked(ba, NULL);
  marquee__bookings__v1__booking__free_unpacked(bb, NULL);
  marquee__bookings__v1__booking__free_unpacked(bc, NULL);
}

/* ---- the log, replayed ---- */

/* The event's stats packed without complete_until: equal bytes, equal aggregates. */
static char *packed(const char *event_id, int64_t to_ms, size_t *len) {
  stats_t *s = NULL;
  mq_error_t err;
  int64_t from_s = 0;
  assert_int_equal(mq_local_to_utc("2026-03-01T00:00", "UTC", &from_s, &err), MQ_OK);
  assert_int_equal(event_stats(organizer, event_id, "UTC", from_s * 1000, to_ms, 2, &s, &err), MQ_OK);
  if (s->totals->bookings != 3)
    for (size_t i = 0; i < s->n_series; i++)
      if (s->series[i]->counters->bookings)
        print_message("  %s: %lld\n", s->series[i]->label, (long long)s->series[i]->counters->bookings);
  assert_int_equal(s->totals->bookings, 3); /* the two bought and the synthetic sale of March */
  Google__Protobuf__Timestamp *complete = s->complete_until;
  s->complete_until = NULL;
  *len = marquee__analytics__v1__event_stats__get_packed_size(s);
  char *buf = malloc(*len + 1);
  marquee__analytics__v1__event_stats__pack(s, (uint8_t *)buf);
  s->complete_until = complete; /* freed with the message */
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  return buf;
}

/* The Kafka timestamp of what this test puts on the bus itself: just after
 * the instant its own consumers start from, so that the consumers of test
 * programs started later (a minute after their own start) pass over these
 * hundreds of thousands of messages instead of handling them. */
static int64_t bus_stamp(void) {
  return mq_test_since_ms() + 1000;
}

static void produce(const char *topic, const char *key, const Marquee__Events__V1__Envelope *env) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", mq_test_kafka(), errstr, sizeof errstr),
                   RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(rk);
  size_t n = marquee__events__v1__envelope__get_packed_size(env);
  uint8_t *buf = malloc(n);
  marquee__events__v1__envelope__pack(env, buf);
  assert_int_equal(
      rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, n),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(bus_stamp()), RD_KAFKA_V_END),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  free(buf);
  rd_kafka_destroy(rk);
}

/* A confirmed booking of e_cad as the bookings service would publish it, at `at_s`. */
static void synthetic_sale(const char *event_uuid, int64_t at_s) {
  Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT, *units[1] = {&u};
  u.ticket_type_id = e_cad.tt[0];
  u.quantity = 1;
  u.amount_minor = 2500;
  Marquee__Events__V1__BookingConfirmed p = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
  p.booking_id = (char *)"00000000-0000-4000-8000-00000000b001";
  p.event_id = e_cad.event_id;
  p.organization_id = org;
  p.user_id = (char *)ALICE;
  p.units = units;
  p.n_units = 1;
  p.total_minor = 2825;
  p.tax_minor = 325;
  p.currency = (char *)"CAD";
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = at_s;
  Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  env.event_id = (char *)event_uuid;
  env.type = (char *)"bookings.BookingConfirmed";
  env.aggregate_id = p.booking_id;
  env.occurred_at = &ts;
  env.actor = (char *)ALICE;
  env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
  env.booking_confirmed = &p;
  produce("marquee.bookings", p.booking_id, &env);
}

/* A sale at 23:30 in Toronto is on the Toronto day (and the next UTC day);
 * the relay's duplicate of it (the same event id) counts once. */
static void test_time_zone_boundary_and_duplicates(void **state) {
  (void)state;
  int64_t at_s = 0, from_s = 0, to_s = 0;
  mq_error_t err;
  assert_int_equal(mq_local_to_utc("2026-03-06T23:30", "America/Toronto", &at_s, &err), MQ_OK);
  assert_int_equal(mq_local_to_utc("2026-03-05T00:00", "America/Toronto", &from_s, &err), MQ_OK);
  assert_int_equal(mq_local_to_utc("2026-03-09T00:00", "America/Toronto", &to_s, &err), MQ_OK);
  char id[40]; /* fresh per run: the bus keeps earlier runs' events */
  snprintf(id, sizeof id, "%08x-0000-4000-8000-%012llx", (unsigned)getpid(), (unsigned long long)time(NULL));
  synthetic_sale(id, at_s);
  synthetic_sale(id, at_s); /* the relay published it again */
  stats_t *s = NULL;
  int64_t until = mq_test_now_ms() + 30000;
  for (;;) {
    assert_int_equal(event_stats(organizer, e_cad.event_id, "America/Toronto", from_s * 1000, to_s * 1000, 2, &s, &err),
                     MQ_OK);
    if (s->totals->bookings >= 1 || mq_test_now_ms() > until) break;
    marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
    mq_test_sleep_ms(200);
  }
  assert_int_equal(s->totals->bookings, 1); /* once, not twice */
  assert_int_equal(s->n_series, 4);
  assert_string_equal(s->series[1]->label, "2026-03-06");
  assert_int_equal(s->series[1]->counters->bookings, 1);
  assert_int_equal(s->series[2]->counters->bookings, 0);
  assert_int_equal(s->series[0]->start_time->seconds, from_s);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  /* in UTC the same sale is on the 7th */
  assert_int_equal(event_stats(organizer, e_cad.event_id, "UTC", from_s * 1000, to_s * 1000, 2, &s, &err), MQ_OK);
  for (size_t i = 0; i < s->n_series; i++)
    assert_int_equal(s->series[i]->counters->bookings, !strcmp(s->series[i]->label, "2026-03-07") ? 1 : 0);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  /* hourly in Toronto: the 23:00 bucket of the 6th */
  assert_int_equal(event_stats(organizer, e_cad.event_id, "America/Toronto", from_s * 1000, to_s * 1000, 1, &s, &err),
                   MQ_OK);
  int64_t n = 0;
  for (size_t i = 0; i < s->n_series; i++)
    if (s->series[i]->counters->bookings) {
      assert_string_equal(s->series[i]->label, "2026-03-06T23");
      n++;
    }
  assert_int_equal(n, 1);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
}

/* SIGKILL, then the saved positions wound back to the start (what a crash
 * before they were written would leave): everything is read again and
 * nothing doubles. Then a rebuild from the log gives identical aggregates. */
static void test_redelivery_and_rebuild_identical(void **state) {
  (void)state;
  size_t n0, n1, n2;
  int64_t to_ms = ((int64_t)time(NULL) / 86400 + 2) * 86400000; /* one fixed range for every comparison */
  char *before = packed(e_cad.event_id, to_ms, &n0);
  mq_test_proc_stop(&an, SIGKILL, 5000); /* its exit status is the signal's */
  /* every partition back to its first offset: all of it is read again */
  assert_true(mq_test_update(srv.db, "analytics_pos_g1", "{}", "{\"$set\": {\"next\": 0, \"hw\": 0}}") > 0);
  assert_int_equal(mq_test_analytics_start(&an, srv.db, false, NULL), 0);
  mq_test_sleep_ms(3000);
  stats_t *s = wait_stats(e_cad.event_id, 2, 1, 1, 0, 3, 1); /* since the event's creation */
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  char *after = packed(e_cad.event_id, to_ms, &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0);
  /* the rebuild, in place of the running consumer */
  assert_int_equal(mq_test_proc_stop(&an, SIGTERM, 20000), 0);
  mq_test_proc_t rb;
  assert_int_equal(mq_test_analytics_start(&rb, srv.db, true, NULL), 0);
  int64_t t0 = mq_test_now_ms(); /* generation 2 becomes current once it has caught up */
  while (mq_test_count(NULL, srv.db, "analytics_meta", "{\"_id\": \"current\", \"gen\": 2}") != 1 &&
         mq_test_now_ms() - t0 < 60000)
    mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "analytics_meta", "{\"_id\": \"current\", \"gen\": 2}"), 1);
  assert_int_equal(mq_test_count(NULL, srv.db, "analytics_g1", "{}"), 0); /* the old generation is dropped */
  char *rebuilt = packed(e_cad.event_id, to_ms, &n2);
  if (n0 != n2 || memcmp(before, rebuilt, n0)) {
    stats_t *x = marquee__analytics__v1__event_stats__unpack(NULL, n0, (uint8_t *)before);
    stats_t *y = marquee__analytics__v1__event_stats__unpack(NULL, n2, (uint8_t *)rebuilt);
    const Marquee__Analytics__V1__Counters *a = x->totals, *b = y->totals;
    print_message("before: h %lld hx %lld hr %lld b %lld t %lld c %lld ci %lld; conv %f %f; ci %lld/%lld\n",
                  (long long)a->holds, (long long)a->holds_expired, (long long)a->holds_released,
                  (long long)a->bookings, (long long)a->tickets_sold, (long long)a->cancellations,
                  (long long)a->check_ins, x->conversion->hold_to_booking, x->conversion->view_to_booking,
                  (long long)x->check_in->checked_in, (long long)x->check_in->tickets);
    print_message("after:  h %lld hx %lld hr %lld b %lld t %lld c %lld ci %lld; conv %f %f; ci %lld/%lld\n",
                  (long long)b->holds, (long long)b->holds_expired, (long long)b->holds_released,
                  (long long)b->bookings, (long long)b->tickets_sold, (long long)b->cancellations,
                  (long long)b->check_ins, y->conversion->hold_to_booking, y->conversion->view_to_booking,
                  (long long)y->check_in->checked_in, (long long)y->check_in->tickets);
  }
  assert_int_equal(n0, n2);
  assert_memory_equal(before, rebuilt, n0);
  an = rb;
  free(before), free(after), free(rebuilt);
}

/* `n` confirmed bookings of one ticket of `ev` at 10.00 EUR, straight onto marquee.bookings (keys spread them over
 * every partition). */
static void burst(const mq_fx_event_t *evp, long n, uint32_t tag) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", mq_test_kafka(), errstr, sizeof errstr),
                   RD_KAFKA_CONF_OK);
  assert_int_equal(rd_kafka_conf_set(conf, "queue.buffering.max.messages", "200000", errstr, sizeof errstr),
                   RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(rk);
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = time(NULL);
  for (long i = 0; i < n; i++) {
    char id[37], booking[37];
    snprintf(id, sizeof id, "%08x-%04x-4000-8000-%012lx", (unsigned)getpid() ^ tag, (unsigned)(ts.seconds & 0xffff), i);
    snprintf(booking, sizeof booking, "%08x-%04x-4000-9000-%012lx", (unsigned)getpid(), (unsigned)(ts.seconds & 0xffff),
             i);
    Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT, *units[1] = {&u};
    u.ticket_type_id = (char *)evp->tt[0];
    u.quantity = 1;
    u.amount_minor = 1000;
    Marquee__Events__V1__BookingConfirmed p = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
    p.booking_id = booking, p.event_id = (char *)evp->event_id, p.organization_id = org, p.user_id = (char *)BOB;
    p.units = units, p.n_units = 1, p.total_minor = 1000, p.currency = (char *)"EUR";
    Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
    env.event_id = id, env.type = (char *)"bookings.BookingConfirmed", env.aggregate_id = booking;
    env.occurred_at = &ts, env.actor = (char *)BOB;
    env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
    env.booking_confirmed = &p;
    uint8_t buf[512];
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    marquee__events__v1__envelope__pack(&env, buf);
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("marquee.bookings"), RD_KAFKA_V_KEY(booking, strlen(booking)),
                             RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_TIMESTAMP(bus_stamp()), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 10);
  }
  assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

/* The bookings of `ev` counted now (all time). */
static int64_t bookings_of(const mq_fx_event_t *ev) {
  stats_t *s = NULL;
  mq_error_t err;
  assert_int_equal(event_stats(organizer, ev->event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
  int64_t b = s->totals->bookings;
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  return b;
}

/* A burst of bookings on the bus, and the consumer SIGKILLed while it
 * aggregates them: restarted, it ends with every booking counted once. */
static void test_sigkill_mid_stream(void **state) {
  (void)state;
  mq_fx_event_opts_t o = {.currency = "EUR", .title = "Analytics Burst", .n_tt = 1};
  o.tt[0].price_minor = 1000, o.tt[0].capacity = 10;
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);
  const long n = 60000;
  burst(&ev, n, 1);
  /* kill it as soon as some, not all, are counted */
  int64_t until = mq_test_now_ms() + 60000, at_kill = -1;
  while (mq_test_now_ms() < until) {
    stats_t *s = NULL;
    mq_error_t err;
    assert_int_equal(event_stats(organizer, ev.event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
    int64_t b = s->totals->bookings;
    marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
    if (b > 0) {
      mq_test_proc_stop(&an, SIGKILL, 5000);
      at_kill = b;
      break;
    }
    mq_test_sleep_ms(20);
  }
  print_message("  SIGKILLed with %lld of %ld bookings counted\n", (long long)at_kill, n);
  assert_true(at_kill > 0);
  assert_true(at_kill < n); /* mid-stream, or the test proves nothing */
  assert_int_equal(mq_test_analytics_start(&an, srv.db, false, NULL), 0);
  stats_t *s = NULL;
  until = mq_test_now_ms() + 120000;
  int64_t b = 0;
  while (mq_test_now_ms() < until) {
    mq_error_t err;
    assert_int_equal(event_stats(organizer, ev.event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
    b = s->totals->bookings;
    marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
    if (b >= n) break;
    mq_test_sleep_ms(200);
  }
  assert_int_equal(b, n);
  mq_test_sleep_ms(2000); /* and nothing more arrives */
  mq_error_t err;
  assert_int_equal(event_stats(organizer, ev.event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
  assert_int_equal(s->totals->bookings, n);
  assert_int_equal(s->totals->tickets_sold, n);
  assert_int_equal(revenue_in(s->totals, "EUR")->gross_minor, n * 1000);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
}

/* Two consumers in one group: a second joins in the middle of a burst of
 * 200,000 and the first leaves before it ends; partitions change hands
 * twice, and each booking is counted once. */
static void test_rebalance_mid_stream(void **state) {
  (void)state;
  mq_fx_event_opts_t o = {.currency = "EUR", .title = "Analytics Rebalance", .n_tt = 1};
  o.tt[0].price_minor = 1000, o.tt[0].capacity = 10;
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);
  const long n = 200000;
  burst(&ev, n, 2);
  int64_t until = mq_test_now_ms() + 60000;
  while (bookings_of(&ev) == 0 && mq_test_now_ms() < until) mq_test_sleep_ms(20);
  mq_test_proc_t second;
  assert_int_equal(mq_test_analytics_start(&second, srv.db, false, NULL), 0); /* joins: a rebalance */
  int64_t joined_at = bookings_of(&ev);
  mq_test_sleep_ms(500);
  int64_t left_at = bookings_of(&ev);
  assert_int_equal(mq_test_proc_stop(&an, SIGTERM, 20000), 0); /* leaves: another */
  an = second;
  print_message("  the first consumer left at %lld\n", (long long)left_at);
  assert_true(left_at < n); /* both changes of hands in the middle of the burst, or the test proves less */
  int64_t b = 0;
  until = mq_test_now_ms() + 120000;
  while ((b = bookings_of(&ev)) < n && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  print_message("  a second consumer joined at %lld of %ld bookings\n", (long long)joined_at, n);
  assert_int_equal(b, n);
  mq_test_sleep_ms(3000); /* nothing more arrives (a stale writer's late flush would show here) */
  assert_int_equal(bookings_of(&ev), n);
}

/* ---- live counters ---- */

/* Opens WatchEventSales for `token`; the stream (caller frees). */
static mq_client_stream_t *watch(const char *token, const char *event_id, mq_error_t *err) {
  mq_call_opts_t o = {.bearer_token = token, .deadline_ms = 30000};
  Marquee__Analytics__V1__WatchEventSalesRequest q = MARQUEE__ANALYTICS__V1__WATCH_EVENT_SALES_REQUEST__INIT;
  q.event_id = (char *)event_id;
  mq_client_stream_t *st = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__watch_event_sales__open(c, &o, &st, err), MQ_OK);
  assert_int_equal(marquee__analytics__v1__analytics_service__watch_event_sales__send(st, &q, err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(st, err), MQ_OK);
  return st;
}

/* An organizer watching an on-sale sees a sale within the last minute and
 * the units left, pushed from the bus; outsiders are refused. */
static void test_live_sales(void **state) {
  (void)state;
  mq_fx_event_opts_t o = {.currency = "EUR", .title = "Analytics On-sale", .n_tt = 1};
  o.tt[0].price_minor = 1000, o.tt[0].capacity = 10;
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);
  mq_error_t err = {0};
  mq_client_stream_t *st = watch(organizer, ev.event_id, &err);
  Marquee__Analytics__V1__LiveSales *m = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err), MQ_OK);
  assert_non_null(m);
  assert_int_equal(m->tickets_last_minute, 0);
  assert_int_equal(m->n_ticket_types, 1);
  assert_int_equal(m->ticket_types[0]->remaining, 10);
  marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
  char pay[40];
  Marquee__Bookings__V1__Booking *b = buy(alice, &ev, 0, 2, pay);
  int64_t t0 = mq_test_now_ms(), lag = -1;
  for (;;) {
    m = NULL;
    mq_code_t rc = marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err);
    if (rc != MQ_OK || !m) break;
    bool seen = m->tickets_last_minute == 2;
    if (seen) {
      lag = mq_test_now_ms() - t0;
      assert_int_equal(m->bookings_last_minute, 1);
      assert_int_equal(m->ticket_types[0]->remaining, 8);
      assert_int_equal(m->ticket_types[0]->sold_last_minute, 2);
      assert_non_null(m->last_sale_at);
    }
    marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
    if (seen) break;
  }
  assert_true(lag >= 0);
  print_message("  booking confirmed -> live counter in %lld ms\n", (long long)lag);
  mq_client_stream_free(st);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  /* someone outside the organization */
  st = watch(stranger, ev.event_id, &err);
  m = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err), MQ_NOT_FOUND);
  assert_null(m);
  mq_client_stream_free(st);
}

/* ---- who may see what, and bad input ---- */

static void test_permissions(void **state) {
  (void)state;
  stats_t *s = NULL;
  mq_error_t err;
  assert_int_equal(event_stats(stranger, e_cad.event_id, NULL, 0, 0, 0, &s, &err), MQ_NOT_FOUND);
  assert_int_equal(event_stats(alice, e_cad.event_id, NULL, 0, 0, 0, &s, &err), MQ_NOT_FOUND);
  assert_int_equal(event_stats(admin, e_cad.event_id, NULL, 0, 0, 0, &s, &err), MQ_OK);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  Marquee__Analytics__V1__GetOrganizationStatsRequest oq = MARQUEE__ANALYTICS__V1__GET_ORGANIZATION_STATS_REQUEST__INIT;
  oq.organization_id = org;
  Marquee__Analytics__V1__OrganizationStats *os = NULL;
  mq_call_opts_t ost = {.bearer_token = stranger}, oo = {.bearer_token = organizer};
  assert_int_equal(marquee__analytics__v1__analytics_service__get_organization_stats__call(c, &oq, &os, &ost, &err),
                   MQ_NOT_FOUND);
  Marquee__Analytics__V1__GetPlatformStatsRequest pq = MARQUEE__ANALYTICS__V1__GET_PLATFORM_STATS_REQUEST__INIT;
  Marquee__Analytics__V1__PlatformStats *ps = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__get_platform_stats__call(c, &pq, &ps, &oo, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__analytics__v1__analytics_service__get_platform_stats__call(c, &pq, &ps, NULL, &err),
                   MQ_UNAUTHENTICATED);
}

static bool names(const mq_error_t *err, const char *field) {
  for (unsigned i = 0; i < err->n_violations; i++)
    if (!strcmp(err->violations[i].field, field)) return true;
  return !strcmp(err->field, field);
}

static void test_bad_ranges(void **state) {
  (void)state;
  stats_t *s = NULL;
  mq_error_t err;
  int64_t now = (int64_t)time(NULL) * 1000;
  /* reversed, and an unknown zone: both listed */
  Google__Protobuf__Timestamp f = GOOGLE__PROTOBUF__TIMESTAMP__INIT, t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  f.seconds = now / 1000, t.seconds = now / 1000 - 3600;
  Marquee__Analytics__V1__TimeRange r = MARQUEE__ANALYTICS__V1__TIME_RANGE__INIT;
  r.start_time = &f, r.end_time = &t, r.time_zone = (char *)"Mars/Olympus_Mons";
  Marquee__Analytics__V1__GetEventStatsRequest q = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
  q.event_id = e_cad.event_id;
  q.range = &r;
  mq_call_opts_t oo = {.bearer_token = organizer};
  assert_int_equal(marquee__analytics__v1__analytics_service__get_event_stats__call(c, &q, &s, &oo, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "range.end_time"));
  assert_true(names(&err, "range.time_zone"));
  /* longer than the maximum */
  assert_int_equal(event_stats(organizer, e_cad.event_id, NULL, now - 1200LL * 86400000, now, 2, &s, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "range.end_time"));
  /* hours over a whole year: finer than allowed for the range */
  assert_int_equal(event_stats(organizer, e_cad.event_id, NULL, now - 365LL * 86400000, now, 1, &s, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "range.granularity"));
  assert_non_null(strstr(err.message, "DAY"));
  /* a malformed id */
  assert_int_equal(event_stats(organizer, "not-an-id", NULL, 0, 0, 0, &s, &err), MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "event_id"));
  /* the same year by day is fine */
  assert_int_equal(event_stats(organizer, e_cad.event_id, NULL, now - 365LL * 86400000, now, 2, &s, &err), MQ_OK);
  assert_true(s->n_series >= 365 && s->n_series <= 367);
  marquee__analytics__v1__event_stats__free_unpacked(s, NULL);
  /* the platform and the organization check their ranges the same way (an admin, a reversed range) */
  Marquee__Analytics__V1__GetPlatformStatsRequest pq = MARQUEE__ANALYTICS__V1__GET_PLATFORM_STATS_REQUEST__INIT;
  pq.range = &r;
  r.time_zone = (char *)"UTC";
  Marquee__Analytics__V1__PlatformStats *ps = NULL;
  mq_call_opts_t oad = {.bearer_token = admin};
  assert_int_equal(marquee__analytics__v1__analytics_service__get_platform_stats__call(c, &pq, &ps, &oad, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "range.end_time"));
  Marquee__Analytics__V1__GetOrganizationStatsRequest oq = MARQUEE__ANALYTICS__V1__GET_ORGANIZATION_STATS_REQUEST__INIT;
  oq.organization_id = org;
  oq.range = &r;
  Marquee__Analytics__V1__OrganizationStats *os = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__get_organization_stats__call(c, &oq, &os, &oo, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(names(&err, "range.end_time"));
  /* the live stream and the CSV refuse a malformed id on their first message */
  mq_client_stream_t *st = watch(organizer, "not-an-id", &err);
  Marquee__Analytics__V1__LiveSales *m = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err),
                   MQ_INVALID_ARGUMENT);
  assert_null(m);
  assert_true(names(&err, "event_id"));
  mq_client_stream_free(st);
  Marquee__Analytics__V1__GetEventStatsRequest xq = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
  xq.event_id = (char *)"not-an-id";
  assert_int_equal(marquee__analytics__v1__analytics_service__export_event_stats__open(c, &oo, &st, &err), MQ_OK);
  assert_int_equal(marquee__analytics__v1__analytics_service__export_event_stats__send(st, &xq, &err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  Marquee__Analytics__V1__CsvChunk *ch = NULL;
  assert_int_equal(marquee__analytics__v1__analytics_service__export_event_stats__recv(st, &ch, &err),
                   MQ_INVALID_ARGUMENT);
  assert_null(ch);
  mq_client_stream_free(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scripted_day),
      cmocka_unit_test(test_time_zone_boundary_and_duplicates),
      cmocka_unit_test(test_redelivery_and_rebuild_identical),
      cmocka_unit_test(test_sigkill_mid_stream),
      cmocka_unit_test(test_rebalance_mid_stream),
      cmocka_unit_test(test_live_sales),
      cmocka_unit_test(test_permissions),
      cmocka_unit_test(test_bad_ranges),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
