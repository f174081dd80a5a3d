/*
 * test_payments.c — a paid ticket bought end to end (payments issue, items
 * 1-5 and "bad input and security"), against real servers on FerretDB +
 * Kafka and Stripe's own API mock (stripe-mock) on loopback.
 *
 * stripe-mock is stateless: it answers each call from Stripe's OpenAPI
 * fixtures (a created PaymentIntent gets a fresh pi_ id and reflects the
 * amount and currency; retrieving one always says requires_payment_method).
 * So the gateway's "succeeded" reaches Marquee the way it does in
 * production for most payments: a webhook, which this test signs with
 * Stripe's documented scheme (HMAC-SHA256 over "<t>.<body>" with the
 * endpoint's secret, header "Stripe-Signature: t=…,v1=…").
 *
 * Covered: Stripe payment created for a hold (intent at stripe-mock, client
 * secret for the buyer only, hold in payment, PaymentCreated); the signed
 * webhook succeeds it and confirms the booking (payment_reference
 * "stripe:pi_…"); a redelivery is a duplicate; ten concurrent deliveries
 * split over two servers apply once (one outcome record, one booking);
 * refused webhooks (bad signature, stale timestamp, no header) answer 400
 * and change nothing; amount and currency not the hold's, missing fields
 * (every violation), another user's hold or payment, an idempotency key
 * reused with other parameters; the manual gateway (instructions with a
 * reference, the buyer cannot mark it received, a manager can: booking);
 * the free gateway; CancelPayment releases the hold; refunds through
 * stripe-mock add up and never exceed what was paid (over-refund
 * FAILED_PRECONDITION; five concurrent refunds of 10.00 on 25.00: exactly
 * two succeed); the deadline sweeper cancels an unpaid payment, and a
 * success arriving after it books the same tickets again (a new booking)
 * or, when they were sold meanwhile, is refunded automatically; lists and their
 * refusals; a Stripe endpoint that refuses connections opens the breaker
 * (state in /metrics) and the route falls back to the manual gateway, or
 * answers UNAVAILABLE with RetryInfo when there is no fallback; a
 * cancelled booking is refunded in full, once; an event's cancellation
 * refunds every paid booking even when the server is SIGKILLed half-way
 * (a new server finishes it, and each payment has exactly one refund).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/payments/v1/payments.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000d0001"
#define ALICE "00000000-0000-4000-8000-0000000d00a1"
#define BOB "00000000-0000-4000-8000-0000000d00b0"
#define WHSEC "whsec_marquee_test_secret_0123456789"

static mq_test_proc_t srv, srv2;
static mq_client_t *c, *c2;
static char *organizer, *alice, *bob;
static char org[40];

typedef Marquee__Payments__V1__Payment payment_t;
typedef Marquee__Bookings__V1__Hold hold_t;

static char fx_path[96];

static int setup(void **state) {
  (void)state;
  char api[160], fx[160];
  snprintf(api, sizeof api, "MARQUEE_STRIPE_API_BASE=%s", mq_test_stripe());
  snprintf(fx_path, sizeof fx_path, "/tmp/mq-fx-%d.txt", (int)getpid());
  FILE *f = fopen(fx_path, "w");
  if (!f) return -1;
  fputs("# test rates\nEUR USD 1.10 2020-01-01\nEUR CAD 1.50 2020-01-01\n", f);
  fclose(f);
  snprintf(fx, sizeof fx, "MARQUEE_FX_RATES_FILE=%s", fx_path);
  const char *env[] = {"MARQUEE_STRIPE_SECRET_KEY=sk_test_marquee",
                       "MARQUEE_STRIPE_WEBHOOK_SECRET=" WHSEC,
                       api,
                       "MARQUEE_PAYMENT_ROUTES=*=stripe,manual",
                       "MARQUEE_PAYMENT_WINDOW_S=10",
                       "MARQUEE_HOLD_SWEEP_MS=200",
                       fx,
                       NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_server_start(&srv2, srv.db, env) != 0) return -1;
  c = mq_test_client(&srv);
  c2 = mq_test_client(&srv2);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  alice = mq_test_token(ALICE, MQ_ROLE_ATTENDEE);
  bob = mq_test_token(BOB, MQ_ROLE_ATTENDEE);
  mq_fx_org(c, organizer, "payments", org);
  return c && c2 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(c);
  mq_client_destroy(c2);
  free(organizer);
  free(alice);
  free(bob);
  mq_test_proc_stop(&srv, SIGTERM, 10000);
  mq_test_proc_stop(&srv2, SIGTERM, 10000);
  mq_test_drop_db(NULL, srv.db);
  unlink(fx_path);
  return 0;
}

/* ---- helpers ---- */

static void paid_event(mq_fx_event_t *ev, int64_t price, int64_t cap) {
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = price, .capacity = cap}}};
  mq_fx_event(c, organizer, org, &o, ev);
}

static hold_t *hold_of(const char *token, const mq_fx_event_t *ev, uint32_t qty) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)ev->tt[0];
  item.quantity = qty;
  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = (char *)ev->event_id;
  q.items = items;
  q.n_items = 1;
  mq_call_opts_t oo = {.bearer_token = token};
  hold_t *h = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, &err), MQ_OK);
  return h;
}

static hold_t *get_hold(const char *token, const char *id) {
  Marquee__Bookings__V1__GetHoldRequest q = MARQUEE__BOOKINGS__V1__GET_HOLD_REQUEST__INIT;
  q.hold_id = (char *)id;
  mq_call_opts_t oo = {.bearer_token = token};
  hold_t *h = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__bookings__v1__booking_service__get_hold__call(c, &q, &h, &oo, &err), MQ_OK);
  return h;
}

static mq_code_t create_payment(mq_client_t *cl, const char *token, const char *hold_id, int64_t amount,
                                const char *currency, const char *gateway, const char *key, payment_t **out,
                                mq_error_t *err) {
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = amount;
  m.currency = (char *)currency;
  Marquee__Payments__V1__CreatePaymentRequest q = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  q.hold_id = (char *)hold_id;
  q.amount = currency ? &m : NULL;
  q.gateway = (char *)(gateway ? gateway : "");
  q.idempotency_key = (char *)(key ? key : "");
  mq_call_opts_t oo = {.bearer_token = token};
  payment_t *p = NULL;
  memset(err, 0, sizeof *err);
  mq_code_t rc = marquee__payments__v1__payment_service__create_payment__call(cl, &q, &p, &oo, err);
  if (out)
    *out = p;
  else if (p)
    marquee__payments__v1__payment__free_unpacked(p, NULL);
  return rc;
}

static mq_code_t get_payment(const char *token, const char *id, payment_t **out, mq_error_t *err) {
  Marquee__Payments__V1__GetPaymentRequest q = MARQUEE__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
  q.payment_id = (char *)id;
  mq_call_opts_t oo = {.bearer_token = token};
  payment_t *p = NULL;
  memset(err, 0, sizeof *err);
  mq_code_t rc = marquee__payments__v1__payment_service__get_payment__call(c, &q, &p, &oo, err);
  if (out)
    *out = p;
  else if (p)
    marquee__payments__v1__payment__free_unpacked(p, NULL);
  return rc;
}

static mq_code_t refund(const char *token, const char *id, int64_t amount, const char *currency, const char *key,
                        Marquee__Payments__V1__Refund **out, mq_error_t *err) {
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = amount;
  m.currency = (char *)currency;
  Marquee__Payments__V1__RefundPaymentRequest q = MARQUEE__PAYMENTS__V1__REFUND_PAYMENT_REQUEST__INIT;
  q.payment_id = (char *)id;
  q.amount = amount ? &m : NULL;
  q.idempotency_key = (char *)(key ? key : "");
  mq_call_opts_t oo = {.bearer_token = token};
  Marquee__Payments__V1__Refund *r = NULL;
  memset(err, 0, sizeof *err);
  mq_code_t rc = marquee__payments__v1__payment_service__refund_payment__call(c, &q, &r, &oo, err);
  if (out)
    *out = r;
  else if (r)
    marquee__payments__v1__refund__free_unpacked(r, NULL);
  return rc;
}

static int state_of(const char *id) {
  payment_t *p;
  mq_error_t err;
  assert_int_equal(get_payment(alice, id, &p, &err), MQ_OK);
  int s = p->state;
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  return s;
}

/* A Stripe event about payment intent `ref`, signed at unix time t with
 * `secret` (NULL: the endpoint's), POSTed to `server`; returns the status. */
static int deliver(const mq_test_proc_t *server, const char *evt_id, const char *type, const char *ref,
                   const char *payment_id, const char *status, int64_t amount, const char *currency, int64_t t,
                   const char *secret, char **reply) {
  char body[2048];
  snprintf(body, sizeof body,
           "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\",\"created\":%" PRId64
           ",\"data\":{\"object\":{\"id\":\"%s\",\"object\":\"payment_intent\",\"status\":\"%s\","
           "\"amount\":%" PRId64 ",\"amount_received\":%" PRId64
           ",\"currency\":\"%s\","
           "\"metadata\":{\"payment_id\":\"%s\"}}}}",
           evt_id, type, t, ref, status, amount, !strcmp(status, "succeeded") ? amount : 0, currency, payment_id);
  char ts[32];
  int tn = snprintf(ts, sizeof ts, "%" PRId64 ".", t);
  size_t bl = strlen(body);
  char *signed_payload = malloc((size_t)tn + bl);
  memcpy(signed_payload, ts, (size_t)tn);
  memcpy(signed_payload + tn, body, bl);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  const char *key = secret ? secret : WHSEC;
  HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)signed_payload, (size_t)tn + bl, mac, &ml);
  free(signed_payload);
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < ml; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  char header[400];
  snprintf(header, sizeof header, "Stripe-Signature: t=%" PRId64 ",v1=%s", t, hex);
  int st = 0;
  char *r = mq_test_http_post(server->http, "/webhooks/stripe", header, body, &st);
  if (reply)
    *reply = r;
  else
    free(r);
  return st;
}

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

static int64_t outcomes_of(const char *payment_id) {
  char f[160];
  snprintf(f, sizeof f, "{\"_id\": \"%s:outcome\"}", payment_id);
  return mq_test_count(NULL, srv.db, "payment_decisions", f);
}

/* A Stripe payment for a fresh hold of `qty` × `price` EUR. */
static payment_t *stripe_payment(int64_t price, uint32_t qty, mq_fx_event_t *ev, hold_t **hold) {
  paid_event(ev, price, 50);
  hold_t *h = hold_of(alice, ev, qty);
  payment_t *p = NULL;
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, price * qty, "EUR", NULL, NULL, &p, &err), MQ_OK);
  if (hold)
    *hold = h;
  else
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return p;
}

/* ---- tests ---- */

static void test_stripe_payment_succeeds_by_webhook(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  hold_t *h;
  payment_t *p = stripe_payment(2500, 1, &ev, &h);
  assert_string_equal(p->gateway, "stripe");
  assert_true(!strncmp(p->gateway_reference, "pi_", 3));
  assert_true(p->client_secret[0] != '\0');
  assert_int_equal(p->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING);
  assert_int_equal(p->amount->amount_minor, 2500);
  assert_non_null(p->deadline);
  /* the hold is in payment under the gateway's reference */
  hold_t *h2 = get_hold(alice, h->hold_id);
  assert_int_equal(h2->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_PAYMENT_PENDING);
  char ref[200];
  snprintf(ref, sizeof ref, "stripe:%s", p->gateway_reference);
  assert_string_equal(h2->payment_reference, ref);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
  /* a second CreatePayment is the same payment */
  payment_t *again;
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 2500, "EUR", NULL, NULL, &again, &err), MQ_OK);
  assert_string_equal(again->payment_id, p->payment_id);
  assert_string_equal(again->gateway_reference, p->gateway_reference);
  marquee__payments__v1__payment__free_unpacked(again, NULL);
  /* the organizer sees it without the secret; another user does not see it */
  payment_t *seen;
  assert_int_equal(get_payment(organizer, p->payment_id, &seen, &err), MQ_OK);
  assert_string_equal(seen->client_secret, "");
  marquee__payments__v1__payment__free_unpacked(seen, NULL);
  assert_int_equal(get_payment(bob, p->payment_id, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "payment_id");

  /* the signed webhook succeeds it */
  char *reply = NULL;
  assert_int_equal(deliver(&srv, "evt_ok_1", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 2500, "eur", now_s(), NULL, &reply),
                   200);
  assert_non_null(strstr(reply, "applied"));
  free(reply);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_int_equal(outcomes_of(p->payment_id), 1);
  Marquee__Bookings__V1__GetBookingRequest bq = MARQUEE__BOOKINGS__V1__GET_BOOKING_REQUEST__INIT;
  bq.booking_id = h->hold_id;
  mq_call_opts_t oo = {.bearer_token = alice};
  Marquee__Bookings__V1__Booking *bk = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__get_booking__call(c, &bq, &bk, &oo, &err), MQ_OK);
  assert_string_equal(bk->payment_reference, ref);
  assert_int_equal(bk->n_tickets, 1);
  marquee__bookings__v1__booking__free_unpacked(bk, NULL);
  /* redelivered: a duplicate, nothing changes */
  assert_int_equal(deliver(&srv, "evt_ok_1", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 2500, "eur", now_s(), NULL, &reply),
                   200);
  assert_non_null(strstr(reply, "duplicate"));
  free(reply);
  /* a stale "failed" event arriving afterwards changes nothing */
  assert_int_equal(deliver(&srv, "evt_old_fail", "payment_intent.payment_failed", p->gateway_reference, p->payment_id,
                           "requires_payment_method", 2500, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

typedef struct {
  const mq_test_proc_t *server;
  const char *ref, *pid;
  int status;
} delivery_t;

static void *deliver_thread(void *arg) {
  delivery_t *d = arg;
  d->status = deliver(d->server, "evt_concurrent", "payment_intent.succeeded", d->ref, d->pid, "succeeded", 1800, "eur",
                      now_s(), NULL, NULL);
  return NULL;
}

static void test_webhook_ten_concurrent_deliveries_apply_once(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  payment_t *p = stripe_payment(1800, 1, &ev, NULL);
  pthread_t t[10];
  delivery_t d[10];
  for (int i = 0; i < 10; i++) {
    d[i] = (delivery_t){i % 2 ? &srv2 : &srv, p->gateway_reference, p->payment_id, 0};
    pthread_create(&t[i], NULL, deliver_thread, &d[i]);
  }
  for (int i = 0; i < 10; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(d[i].status, 200);
  }
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_int_equal(outcomes_of(p->payment_id), 1);
  char f[160];
  snprintf(f, sizeof f, "{\"_id\": \"%s\"}", p->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  /* one PaymentSucceeded in the outbox of its decision */
  snprintf(f, sizeof f, "{\"_id\": \"%s:outcome\", \"_outbox.type\": \"payments.PaymentSucceeded\"}", p->payment_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "payment_decisions", f), 1);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
}

static void test_webhook_refusals_change_nothing(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  payment_t *p = stripe_payment(1200, 1, &ev, NULL);
  /* signed with another secret */
  assert_int_equal(deliver(&srv, "evt_bad_sig", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1200, "eur", now_s(), "whsec_someone_else", NULL),
                   400);
  /* outside the 300 s tolerance, either way */
  assert_int_equal(deliver(&srv, "evt_old", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1200, "eur", now_s() - 301, NULL, NULL),
                   400);
  assert_int_equal(deliver(&srv, "evt_future", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1200, "eur", now_s() + 400, NULL, NULL),
                   400);
  /* no signature at all */
  int st = 0;
  char *r = mq_test_http_post(srv.http, "/webhooks/stripe", NULL, "{\"id\":\"evt_x\",\"type\":\"x\"}", &st);
  free(r);
  assert_int_equal(st, 400);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING);
  char f[160];
  snprintf(f, sizeof f, "{\"payment_id\": \"%s\"}", p->payment_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "payment_webhooks", f), 0);
  assert_true(mq_test_metric(&srv, "marquee_payment_webhooks_rejected_total") >= 4);
  /* a verified event that reports another amount is not applied */
  assert_int_equal(deliver(&srv, "evt_wrong_amount", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING);
  /* a decline is recorded; the buyer may still pay */
  assert_int_equal(deliver(&srv, "evt_declined", "payment_intent.payment_failed", p->gateway_reference, p->payment_id,
                           "requires_payment_method", 1200, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_FAILED);
  assert_int_equal(deliver(&srv, "evt_retry_ok", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1200, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
}

static void test_create_payment_bad_input(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  paid_event(&ev, 3000, 10);
  hold_t *h = hold_of(alice, &ev, 1);
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 2999, "EUR", NULL, NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "amount.amount_minor");
  assert_non_null(strstr(err.message, "30.00 EUR"));
  assert_int_equal(create_payment(c, alice, h->hold_id, 3000, "USD", NULL, NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "amount.currency");
  /* every violation at once */
  assert_int_equal(create_payment(c, alice, "not-a-uuid", 0, NULL, "paypal", NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_true(err.n_violations >= 3);
  /* another user's hold looks unknown */
  assert_int_equal(create_payment(c, bob, h->hold_id, 3000, "EUR", NULL, NULL, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "hold_id");
  /* an idempotency key reused with other parameters */
  payment_t *p;
  assert_int_equal(create_payment(c, alice, h->hold_id, 3000, "EUR", NULL, "pay-1", &p, &err), MQ_OK);
  assert_int_equal(create_payment(c, alice, h->hold_id, 3000, "EUR", NULL, "pay-1", NULL, &err), MQ_OK);
  assert_int_equal(create_payment(c, alice, h->hold_id, 3000, "EUR", "manual", "pay-1", NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "idempotency_key");
  /* another user's payment, everywhere */
  Marquee__Payments__V1__ConfirmPaymentRequest cq = MARQUEE__PAYMENTS__V1__CONFIRM_PAYMENT_REQUEST__INIT;
  cq.payment_id = p->payment_id;
  mq_call_opts_t ob = {.bearer_token = bob};
  payment_t *x = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__confirm_payment__call(c, &cq, &x, &ob, &err), MQ_NOT_FOUND);
  assert_int_equal(refund(bob, p->payment_id, 0, NULL, NULL, NULL, &err), MQ_NOT_FOUND);
  /* ConfirmPayment asks stripe-mock, which says requires_payment_method: still pending */
  mq_call_opts_t oa = {.bearer_token = alice};
  assert_int_equal(marquee__payments__v1__payment_service__confirm_payment__call(c, &cq, &x, &oa, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  /* a refund of a payment that was not paid */
  assert_int_equal(refund(organizer, p->payment_id, 0, NULL, NULL, NULL, &err), MQ_FAILED_PRECONDITION);
  /* ids that are not ids, a note too long, a webhook body over 256 KiB */
  assert_int_equal(get_payment(alice, "not-a-payment", NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "payment_id");
  Marquee__Payments__V1__CancelPaymentRequest kq = MARQUEE__PAYMENTS__V1__CANCEL_PAYMENT_REQUEST__INIT;
  kq.payment_id = (char *)"1234";
  assert_int_equal(marquee__payments__v1__payment_service__cancel_payment__call(c, &kq, &x, &oa, &err),
                   MQ_INVALID_ARGUMENT);
  Marquee__Payments__V1__MarkPaymentReceivedRequest mq = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
  mq.payment_id = (char *)"bad";
  char long_note[600];
  memset(long_note, 'n', sizeof long_note - 1);
  long_note[sizeof long_note - 1] = '\0';
  mq.note = long_note;
  mq_call_opts_t oo = {.bearer_token = organizer};
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &mq, &x, &oo, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 2);
  size_t big = 300 * 1024;
  char *body = malloc(big + 1);
  memset(body, ' ', big);
  body[big] = '\0';
  int st = 0;
  char *reply = mq_test_http_post(srv.http, "/webhooks/stripe", "Stripe-Signature: t=1,v1=00", body, &st);
  free(reply);
  free(body);
  assert_int_equal(st, 413);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static void test_manual_payment_marked_received(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  paid_event(&ev, 4000, 10);
  hold_t *h = hold_of(alice, &ev, 1);
  payment_t *p;
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 4000, "EUR", "manual", NULL, &p, &err), MQ_OK);
  assert_string_equal(p->gateway, "manual");
  assert_int_equal(p->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REQUIRES_ACTION);
  assert_non_null(strstr(p->instructions, p->gateway_reference));
  assert_non_null(strstr(p->instructions, "40.00 EUR"));
  assert_true(!strncmp(p->gateway_reference, "MQ-", 3));
  Marquee__Payments__V1__MarkPaymentReceivedRequest q = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
  q.payment_id = p->payment_id;
  q.note = (char *)"transfer seen on the statement";
  mq_call_opts_t oa = {.bearer_token = alice}, oo = {.bearer_token = organizer}, ob = {.bearer_token = bob};
  payment_t *x = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &q, &x, &oa, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &q, &x, &ob, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &q, &x, &oo, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_string_equal(x->booking_id, h->hold_id);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  hold_t *h2 = get_hold(alice, h->hold_id);
  assert_int_equal(h2->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_CONFIRMED);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
  /* a Stripe payment cannot be marked received */
  mq_fx_event_t ev2 = {0};
  payment_t *sp = stripe_payment(1000, 1, &ev2, NULL);
  q.payment_id = sp->payment_id;
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c, &q, &x, &oo, &err),
                   MQ_FAILED_PRECONDITION);
  marquee__payments__v1__payment__free_unpacked(sp, NULL);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static void test_free_gateway_and_cancel(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  paid_event(&ev, 0, 10);
  hold_t *h = hold_of(alice, &ev, 2);
  payment_t *p;
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 0, "EUR", NULL, NULL, &p, &err), MQ_OK);
  assert_string_equal(p->gateway, "free");
  assert_int_equal(p->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_string_equal(p->booking_id, h->hold_id);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);

  /* CancelPayment: the intent is cancelled, the hold released */
  mq_fx_event_t ev2 = {0};
  hold_t *h2;
  payment_t *sp = stripe_payment(1500, 1, &ev2, &h2);
  Marquee__Payments__V1__CancelPaymentRequest q = MARQUEE__PAYMENTS__V1__CANCEL_PAYMENT_REQUEST__INIT;
  q.payment_id = sp->payment_id;
  mq_call_opts_t oa = {.bearer_token = alice};
  payment_t *x = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__cancel_payment__call(c, &q, &x, &oa, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_CANCELLED);
  assert_string_equal(x->client_secret, "");
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  hold_t *h3 = get_hold(alice, h2->hold_id);
  assert_int_equal(h3->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED);
  marquee__bookings__v1__hold__free_unpacked(h3, NULL);
  /* idempotent */
  assert_int_equal(marquee__payments__v1__payment_service__cancel_payment__call(c, &q, &x, &oa, &err), MQ_OK);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  marquee__payments__v1__payment__free_unpacked(sp, NULL);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
}

typedef struct {
  const char *pid;
  mq_code_t rc;
} refund_arg_t;

static void *refund_thread(void *arg) {
  refund_arg_t *r = arg;
  mq_error_t err;
  r->rc = refund(organizer, r->pid, 1000, "EUR", NULL, NULL, &err);
  return NULL;
}

static void test_refunds_add_up(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  payment_t *p = stripe_payment(2500, 1, &ev, NULL);
  assert_int_equal(deliver(&srv, "evt_refundable", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 2500, "eur", now_s(), NULL, NULL),
                   200);
  mq_error_t err;
  Marquee__Payments__V1__Refund *r;
  assert_int_equal(refund(organizer, p->payment_id, 1000, "EUR", "r-1", &r, &err), MQ_OK);
  assert_int_equal(r->state, MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_SUCCEEDED);
  assert_true(!strncmp(r->gateway_reference, "re_", 3));
  assert_int_equal(r->sequence, 1);
  marquee__payments__v1__refund__free_unpacked(r, NULL);
  /* the same key again: the same refund, not a second one */
  assert_int_equal(refund(organizer, p->payment_id, 1000, "EUR", "r-1", &r, &err), MQ_OK);
  assert_int_equal(r->sequence, 1);
  marquee__payments__v1__refund__free_unpacked(r, NULL);
  /* the buyer may not refund; more than remains is refused */
  assert_int_equal(refund(alice, p->payment_id, 100, "EUR", NULL, NULL, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(refund(organizer, p->payment_id, 1501, "EUR", NULL, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_non_null(strstr(err.message, "15.00 EUR"));
  assert_int_equal(refund(organizer, p->payment_id, 100, "USD", NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PARTIALLY_REFUNDED);
  /* the rest */
  assert_int_equal(refund(organizer, p->payment_id, 0, NULL, NULL, &r, &err), MQ_OK);
  assert_int_equal(r->amount->amount_minor, 1500);
  marquee__payments__v1__refund__free_unpacked(r, NULL);
  payment_t *x;
  assert_int_equal(get_payment(organizer, p->payment_id, &x, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REFUNDED);
  assert_int_equal(x->refunded->amount_minor, 2500);
  assert_int_equal(x->n_refunds, 2);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  assert_int_equal(refund(organizer, p->payment_id, 1, "EUR", NULL, NULL, &err), MQ_FAILED_PRECONDITION);
  marquee__payments__v1__payment__free_unpacked(p, NULL);

  /* five concurrent refunds of 10.00 on 25.00: two fit, never more */
  mq_fx_event_t ev2 = {0};
  payment_t *q = stripe_payment(2500, 1, &ev2, NULL);
  assert_int_equal(deliver(&srv, "evt_refundable_2", "payment_intent.succeeded", q->gateway_reference, q->payment_id,
                           "succeeded", 2500, "eur", now_s(), NULL, NULL),
                   200);
  pthread_t t[5];
  refund_arg_t ra[5];
  for (int i = 0; i < 5; i++) {
    ra[i] = (refund_arg_t){q->payment_id, MQ_OK};
    pthread_create(&t[i], NULL, refund_thread, &ra[i]);
  }
  int ok = 0;
  for (int i = 0; i < 5; i++) {
    pthread_join(t[i], NULL);
    if (ra[i].rc == MQ_OK)
      ok++;
    else
      assert_true(ra[i].rc == MQ_FAILED_PRECONDITION || ra[i].rc == MQ_ABORTED);
  }
  assert_int_equal(ok, 2);
  assert_int_equal(get_payment(organizer, q->payment_id, &x, &err), MQ_OK);
  assert_int_equal(x->refunded->amount_minor, 2000);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  marquee__payments__v1__payment__free_unpacked(q, NULL);
}

/* Waits until the payment is CANCELLED by the deadline sweepers (10 s). */
static void wait_cancelled(const char *payment_id) {
  int s = 0;
  for (int i = 0; i < 100; i++) {
    s = state_of(payment_id);
    if (s == MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_CANCELLED) break;
    mq_test_sleep_ms(200);
  }
  assert_int_equal(s, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_CANCELLED);
}

static void test_deadline_cancels_and_late_success_rebooks_or_refunds(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  hold_t *h;
  payment_t *p = stripe_payment(2000, 1, &ev, &h);
  /* MARQUEE_PAYMENT_WINDOW_S=10: the sweepers end it and release the hold */
  wait_cancelled(p->payment_id);
  hold_t *h2 = get_hold(alice, h->hold_id);
  assert_true(h2->state == MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_EXPIRED ||
              h2->state == MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_RELEASED);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
  /* the money arrives anyway, and the tickets are still there: booked again, under a new id */
  assert_int_equal(deliver(&srv, "evt_late", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 2000, "eur", now_s(), NULL, NULL),
                   200);
  payment_t *x;
  mq_error_t err;
  assert_int_equal(get_payment(alice, p->payment_id, &x, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_true(x->booking_id[0] && strcmp(x->booking_id, h->hold_id));
  assert_int_equal(x->refunded->amount_minor, 0);
  char f[200];
  snprintf(f, sizeof f, "{\"_id\": \"%s\", \"state\": \"confirmed\", \"total_minor\": 2000}", x->booking_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  /* delivered again: nothing changes */
  assert_int_equal(deliver(&srv2, "evt_late_again", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 2000, "eur", now_s(), NULL, NULL),
                   200);
  snprintf(f, sizeof f, "{\"event_id\": \"%s\"}", ev.event_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);

  /* the last ticket: its buyer's payment lapses, someone else takes it, then the money arrives: refunded */
  mq_fx_event_t one = {0};
  paid_event(&one, 3000, 1);
  hold_t *ha = hold_of(alice, &one, 1);
  payment_t *q = NULL;
  assert_int_equal(create_payment(c, alice, ha->hold_id, 3000, "EUR", "stripe", NULL, &q, &err), MQ_OK);
  wait_cancelled(q->payment_id);
  hold_t *hb = hold_of(bob, &one, 1); /* the unit came back; bob holds it now */
  double before = mq_test_metric(&srv, "marquee_payment_auto_refunds_total") +
                  mq_test_metric(&srv2, "marquee_payment_auto_refunds_total");
  assert_int_equal(deliver(&srv, "evt_late_soldout", "payment_intent.succeeded", q->gateway_reference, q->payment_id,
                           "succeeded", 3000, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(get_payment(alice, q->payment_id, &x, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REFUNDED);
  assert_int_equal(x->refunded->amount_minor, 3000);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  double after = mq_test_metric(&srv, "marquee_payment_auto_refunds_total") +
                 mq_test_metric(&srv2, "marquee_payment_auto_refunds_total");
  assert_true(after >= before + 1);
  snprintf(f, sizeof f, "{\"event_id\": \"%s\"}", one.event_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 0);
  marquee__payments__v1__payment__free_unpacked(q, NULL);
  marquee__bookings__v1__hold__free_unpacked(ha, NULL);
  marquee__bookings__v1__hold__free_unpacked(hb, NULL);
}

static void test_lists(void **state) {
  (void)state;
  Marquee__Payments__V1__ListMyPaymentsRequest q = MARQUEE__PAYMENTS__V1__LIST_MY_PAYMENTS_REQUEST__INIT;
  q.page_size = 2;
  mq_call_opts_t oa = {.bearer_token = alice};
  Marquee__Payments__V1__ListPaymentsResponse *r = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__payments__v1__payment_service__list_my_payments__call(c, &q, &r, &oa, &err), MQ_OK);
  assert_int_equal(r->n_payments, 2);
  assert_true(r->next_page_token[0] != '\0');
  for (size_t i = 0; i < r->n_payments; i++) {
    assert_string_equal(r->payments[i]->user_id, ALICE);
    assert_string_equal(r->payments[i]->client_secret, "");
  }
  marquee__payments__v1__list_payments_response__free_unpacked(r, NULL);
  /* the event's payments: its managers only */
  mq_fx_event_t ev = {0};
  payment_t *p = stripe_payment(900, 1, &ev, NULL);
  Marquee__Payments__V1__ListEventPaymentsRequest e = MARQUEE__PAYMENTS__V1__LIST_EVENT_PAYMENTS_REQUEST__INIT;
  e.event_id = ev.event_id;
  e.state = MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING;
  mq_call_opts_t oo = {.bearer_token = organizer};
  assert_int_equal(marquee__payments__v1__payment_service__list_event_payments__call(c, &e, &r, &oo, &err), MQ_OK);
  assert_int_equal(r->n_payments, 1);
  assert_string_equal(r->payments[0]->payment_id, p->payment_id);
  marquee__payments__v1__list_payments_response__free_unpacked(r, NULL);
  e.state = MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED;
  assert_int_equal(marquee__payments__v1__payment_service__list_event_payments__call(c, &e, &r, &oo, &err), MQ_OK);
  assert_int_equal(r->n_payments, 0);
  marquee__payments__v1__list_payments_response__free_unpacked(r, NULL);
  assert_int_equal(marquee__payments__v1__payment_service__list_event_payments__call(c, &e, &r, &oa, &err),
                   MQ_NOT_FOUND);
  e.state = 99;
  e.gateway = (char *)"paypal";
  assert_int_equal(marquee__payments__v1__payment_service__list_event_payments__call(c, &e, &r, &oo, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(err.n_violations >= 2);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
}

static void test_breaker_and_fallback(void **state) {
  (void)state;
  /* a Stripe endpoint that refuses connections */
  char api[96];
  snprintf(api, sizeof api, "MARQUEE_STRIPE_API_BASE=http://127.0.0.1:%d", mq_test_free_port());
  const char *env[] = {"MARQUEE_STRIPE_SECRET_KEY=sk_test_marquee",
                       api,
                       "MARQUEE_PAYMENT_ROUTES=EUR=stripe,manual;*=stripe",
                       "MARQUEE_PAYMENT_BREAKER_FAILURES=2",
                       "MARQUEE_PAYMENT_BREAKER_OPEN_MS=60000",
                       NULL};
  mq_test_proc_t s3;
  assert_int_equal(mq_test_server_start(&s3, srv.db, env), 0);
  mq_client_t *c3 = mq_test_client(&s3);
  mq_fx_event_t ev = {0};
  paid_event(&ev, 1000, 20);
  for (int i = 0; i < 3; i++) {
    hold_t *h = hold_of(alice, &ev, 1);
    payment_t *p = NULL;
    mq_error_t err;
    assert_int_equal(create_payment(c3, alice, h->hold_id, 1000, "EUR", NULL, NULL, &p, &err), MQ_OK);
    assert_string_equal(p->gateway, "manual");
    marquee__payments__v1__payment__free_unpacked(p, NULL);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  }
  assert_true(mq_test_metric(&s3, "marquee_payment_gateway_breaker_state{gateway=\"stripe\"}") == 1.0);
  assert_true(mq_test_metric(&s3, "marquee_payment_fallbacks_total") >= 3);
  assert_true(mq_test_metric(&s3, "marquee_payment_gateway_retries_total") >= 1); /* retried once before giving up */
  /* no fallback for this currency: UNAVAILABLE with a retry delay, nothing taken */
  mq_fx_event_opts_t o = {.currency = "CAD", .n_tt = 1, .tt = {{.price_minor = 500, .capacity = 5}}};
  mq_fx_event_t cad = {0};
  mq_fx_event(c, organizer, org, &o, &cad);
  hold_t *h = hold_of(alice, &cad, 1);
  mq_error_t err;
  assert_int_equal(create_payment(c3, alice, h->hold_id, 500, "CAD", NULL, NULL, NULL, &err), MQ_UNAVAILABLE);
  assert_true(err.retry_after_ms > 0);
  hold_t *h2 = get_hold(alice, h->hold_id);
  assert_int_equal(h2->state, MARQUEE__BOOKINGS__V1__HOLD_STATE__HOLD_STATE_ACTIVE);
  marquee__bookings__v1__hold__free_unpacked(h2, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  mq_client_destroy(c3);
  mq_test_proc_stop(&s3, SIGTERM, 10000);
}

static void test_cancelled_booking_is_refunded(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  hold_t *h;
  payment_t *p = stripe_payment(3300, 1, &ev, &h);
  assert_int_equal(deliver(&srv, "evt_cancel_me", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 3300, "eur", now_s(), NULL, NULL),
                   200);
  Marquee__Bookings__V1__CancelBookingRequest q = MARQUEE__BOOKINGS__V1__CANCEL_BOOKING_REQUEST__INIT;
  q.booking_id = h->hold_id;
  q.reason = (char *)"cannot come";
  mq_call_opts_t oa = {.bearer_token = alice};
  Marquee__Bookings__V1__Booking *bk = NULL;
  mq_error_t err;
  assert_int_equal(marquee__bookings__v1__booking_service__cancel_booking__call(c, &q, &bk, &oa, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(bk, NULL);
  /* again: still one refund */
  assert_int_equal(marquee__bookings__v1__booking_service__cancel_booking__call(c2, &q, &bk, &oa, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(bk, NULL);
  payment_t *x;
  assert_int_equal(get_payment(alice, p->payment_id, &x, &err), MQ_OK);
  assert_int_equal(x->state, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REFUNDED);
  assert_int_equal(x->n_refunds, 1);
  assert_int_equal(x->refunds[0]->amount->amount_minor, 3300);
  assert_non_null(strstr(x->refunds[0]->reason, "cannot come"));
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

#define CASCADE 16

static void test_event_cancellation_refunds_everyone_across_a_crash(void **state) {
  (void)state;
  char api[160];
  snprintf(api, sizeof api, "MARQUEE_STRIPE_API_BASE=%s", mq_test_stripe());
  const char *env[] = {"MARQUEE_STRIPE_SECRET_KEY=sk_test_marquee", "MARQUEE_STRIPE_WEBHOOK_SECRET=" WHSEC, api,
                       "MARQUEE_HOLD_SWEEP_MS=100", NULL};
  mq_test_proc_t s4, s5;
  assert_int_equal(mq_test_server_start(&s4, NULL, env), 0); /* its own database */
  mq_client_t *c4 = mq_test_client(&s4);
  char org4[40];
  mq_fx_org(c4, organizer, "cascade", org4);
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = 1000, .capacity = 100}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c4, organizer, org4, &o, &ev);
  char pids[CASCADE][40];
  mq_error_t err;
  for (int i = 0; i < CASCADE; i++) {
    Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
    item.ticket_type_id = ev.tt[0];
    item.quantity = 1;
    Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
    hq.event_id = ev.event_id;
    hq.items = items;
    hq.n_items = 1;
    mq_call_opts_t oa = {.bearer_token = alice}, oo = {.bearer_token = organizer};
    hold_t *h = NULL;
    assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(c4, &hq, &h, &oa, &err), MQ_OK);
    payment_t *p = NULL;
    bool manual = i % 4 != 0; /* most by transfer, every fourth through Stripe */
    assert_int_equal(create_payment(c4, alice, h->hold_id, 1000, "EUR", manual ? "manual" : "stripe", NULL, &p, &err),
                     MQ_OK);
    snprintf(pids[i], sizeof pids[i], "%s", p->payment_id);
    if (manual) {
      Marquee__Payments__V1__MarkPaymentReceivedRequest mq = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
      mq.payment_id = p->payment_id;
      payment_t *x = NULL;
      assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(c4, &mq, &x, &oo, &err),
                       MQ_OK);
      marquee__payments__v1__payment__free_unpacked(x, NULL);
    } else {
      char evt[64];
      snprintf(evt, sizeof evt, "evt_cascade_%d", i);
      assert_int_equal(deliver(&s4, evt, "payment_intent.succeeded", p->gateway_reference, p->payment_id, "succeeded",
                               1000, "eur", now_s(), NULL, NULL),
                       200);
    }
    marquee__payments__v1__payment__free_unpacked(p, NULL);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  }
  /* cancel the event, and kill the server while the refunds are under way */
  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = ev.event_id;
  kq.reason = (char *)"the venue flooded";
  mq_call_opts_t oo = {.bearer_token = organizer};
  Marquee__Catalog__V1__Event *ke = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(c4, &kq, &ke, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(ke, NULL);
  char f[200];
  for (int i = 0; i < 200; i++) {
    if (mq_test_count(NULL, s4.db, "refunds", "{}") > 0) break;
    mq_test_sleep_ms(10);
  }
  mq_client_destroy(c4);
  mq_test_proc_stop(&s4, SIGKILL, 10000);
  int64_t at_kill = mq_test_count(NULL, s4.db, "refunds", "{\"state\": \"succeeded\"}");
  int64_t begun = mq_test_count(NULL, s4.db, "refunds", "{}");
  /* another server finishes the cancellation */
  assert_int_equal(mq_test_server_start(&s5, s4.db, env), 0);
  int64_t done = 0;
  for (int i = 0; i < 300 && done < CASCADE; i++) {
    done = mq_test_count(NULL, s4.db, "refunds", "{\"state\": \"succeeded\"}");
    mq_test_sleep_ms(100);
  }
  print_message("when the server was killed: %lld refunds begun, %lld succeeded, of %d\n", (long long)begun,
                (long long)at_kill, CASCADE);
  assert_int_equal(done, CASCADE);
  for (int i = 0; i < CASCADE; i++) { /* exactly one refund each, of the whole amount */
    snprintf(f, sizeof f, "{\"payment_id\": \"%s\"}", pids[i]);
    assert_int_equal(mq_test_count(NULL, s4.db, "refunds", f), 1);
    snprintf(f, sizeof f, "{\"_id\": \"%s\", \"state\": \"refunded\", \"refunded_minor\": 1000}", pids[i]);
    int64_t ok = 0;
    for (int k = 0; k < 50 && !ok; k++) {
      ok = mq_test_count(NULL, s4.db, "payments", f);
      if (!ok) mq_test_sleep_ms(100);
    }
    assert_int_equal(ok, 1);
  }
  mq_test_proc_stop(&s5, SIGTERM, 10000);
  mq_test_drop_db(NULL, s4.db);
}

static void test_taxes_are_in_the_price_charged(void **state) {
  (void)state;
  /* Montréal, 50.00 CAD before tax: GST 5% = 2.50, QST 9.975% = 4.9875 → 4.99; total 57.49 */
  char venue[40];
  mq_fx_venue(c, organizer, org,
              "Montr\xc3\xa9"
              "al",
              "QC", "CA", "America/Toronto", venue);
  mq_fx_event_opts_t o = {
      .currency = "CAD", .venue_id = venue, .n_tt = 1, .tt = {{.price_minor = 2500, .capacity = 10}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);
  hold_t *h = hold_of(alice, &ev, 2);
  assert_int_equal(h->subtotal->amount_minor, 5000);
  assert_false(h->tax_included);
  assert_int_equal(h->n_taxes, 2);
  assert_string_equal(h->taxes[0]->name, "GST");
  assert_string_equal(h->taxes[0]->jurisdiction, "CA-QC");
  assert_int_equal(h->taxes[0]->amount->amount_minor, 250);
  assert_string_equal(h->taxes[1]->name, "QST");
  assert_int_equal(h->taxes[1]->rate_ppm, 99750);
  assert_int_equal(h->taxes[1]->amount->amount_minor, 499);
  assert_int_equal(h->total->amount_minor, 5749);
  /* the buyer is charged the total with taxes: the subtotal alone is refused */
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 5000, "CAD", "manual", NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "57.49 CAD"));
  payment_t *p;
  assert_int_equal(create_payment(c, alice, h->hold_id, 5749, "CAD", "manual", NULL, &p, &err), MQ_OK);
  assert_int_equal(p->amount->amount_minor, 5749);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  /* Berlin, prices with VAT included: 119.00 EUR holds 19.00 of VAT and costs 119.00 */
  mq_fx_venue(c, organizer, org, "Berlin", "", "DE", "Europe/Berlin", venue);
  mq_fx_event_opts_t d = {
      .currency = "EUR", .venue_id = venue, .n_tt = 1, .tt = {{.price_minor = 11900, .capacity = 10}}};
  mq_fx_event(c, organizer, org, &d, &ev);
  h = hold_of(alice, &ev, 1);
  assert_true(h->tax_included);
  assert_int_equal(h->n_taxes, 1);
  assert_int_equal(h->taxes[0]->amount->amount_minor, 1900);
  assert_int_equal(h->total->amount_minor, 11900);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static mq_code_t update_settings(const char *token, const char *org_id, Marquee__Payments__V1__PaymentSettings *st,
                                 char **paths, size_t n, Marquee__Payments__V1__PaymentSettings **out,
                                 mq_error_t *err) {
  Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  m.paths = paths;
  m.n_paths = n;
  Marquee__Payments__V1__UpdatePaymentSettingsRequest q = MARQUEE__PAYMENTS__V1__UPDATE_PAYMENT_SETTINGS_REQUEST__INIT;
  q.organization_id = (char *)org_id;
  q.settings = st;
  q.update_mask = &m;
  mq_call_opts_t oo = {.bearer_token = token};
  memset(err, 0, sizeof *err);
  Marquee__Payments__V1__PaymentSettings *r = NULL;
  mq_code_t rc = marquee__payments__v1__payment_service__update_payment_settings__call(c, &q, &r, &oo, err);
  if (out)
    *out = r;
  else if (r)
    marquee__payments__v1__payment_settings__free_unpacked(r, NULL);
  return rc;
}

static void test_settings_fee_and_home_country_price_a_hold(void **state) {
  (void)state;
  char org2[40];
  mq_fx_org(c, organizer, "settings", org2);
  Marquee__Payments__V1__PaymentSettings st = MARQUEE__PAYMENTS__V1__PAYMENT_SETTINGS__INIT;
  Marquee__Common__V1__Money per = MARQUEE__COMMON__V1__MONEY__INIT;
  mq_error_t err;
  /* every bad field at once, nothing saved */
  st.service_fee_ppm = 300000;
  st.home_country = (char *)"ZZ";
  per.amount_minor = 50;
  per.currency = (char *)"EURO";
  st.service_fee_per_ticket = &per;
  char *bad_gateways[] = {"paypal"};
  st.gateways = bad_gateways;
  st.n_gateways = 1;
  char *bad_paths[] = {"service_fee_ppm", "home_country", "service_fee_per_ticket", "colour", "gateways"};
  assert_int_equal(update_settings(organizer, org2, &st, bad_paths, 5, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_true(err.n_violations >= 5);
  st.gateways = NULL;
  st.n_gateways = 0;
  /* only an owner changes them; others do not see the organization */
  char *paths[] = {"service_fee_ppm",
                   "service_fee_per_ticket",
                   "service_fee_passed_on",
                   "tax_display",
                   "home_country",
                   "home_region",
                   "tax_id",
                   "legal_name"};
  st.service_fee_ppm = 50000; /* 5% */
  per.currency = (char *)"EUR";
  st.service_fee_passed_on = true;
  st.tax_display = MARQUEE__PAYMENTS__V1__TAX_DISPLAY__TAX_DISPLAY_ADDED;
  st.home_country = (char *)"CA";
  st.home_region = (char *)"Ontario";
  st.tax_id = (char *)"123456789 RT0001";
  st.legal_name = (char *)"Settings Inc.";
  assert_int_equal(update_settings(alice, org2, &st, paths, 8, NULL, &err), MQ_NOT_FOUND);
  Marquee__Payments__V1__PaymentSettings *saved = NULL;
  assert_int_equal(update_settings(organizer, org2, &st, paths, 8, &saved, &err), MQ_OK);
  assert_int_equal(saved->version, 1);
  assert_int_equal(saved->service_fee_per_ticket->amount_minor, 50);
  marquee__payments__v1__payment_settings__free_unpacked(saved, NULL);
  /* a stale version is refused */
  st.version = 7;
  assert_int_equal(update_settings(organizer, org2, &st, paths, 1, NULL, &err), MQ_ABORTED);
  st.version = 0;
  /* an online event of theirs: 2 × 10.00 EUR = 20.00; fee 5% = 1.00 + 2 × 0.50 = 2.00, added;
   * taxed in Ontario (home country and region), HST 13% of 22.00 = 2.86, added: total 24.86 */
  mq_fx_event_opts_t o = {.currency = "EUR", .n_tt = 1, .tt = {{.price_minor = 1000, .capacity = 10}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org2, &o, &ev);
  hold_t *h = hold_of(alice, &ev, 2);
  assert_int_equal(h->subtotal->amount_minor, 2000);
  assert_non_null(h->service_fee);
  assert_int_equal(h->service_fee->amount_minor, 200);
  assert_int_equal(h->n_taxes, 1);
  assert_string_equal(h->taxes[0]->jurisdiction, "CA-ON");
  assert_int_equal(h->taxes[0]->amount->amount_minor, 286);
  assert_false(h->tax_included);
  assert_int_equal(h->total->amount_minor, 2486);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  /* the fee absorbed instead: the buyer pays 20.00 + HST 2.60 */
  char *absorb[] = {"service_fee_passed_on"};
  st.service_fee_passed_on = false;
  assert_int_equal(update_settings(organizer, org2, &st, absorb, 1, NULL, &err), MQ_OK);
  h = hold_of(alice, &ev, 2);
  assert_null(h->service_fee);
  assert_int_equal(h->total->amount_minor, 2260);
  /* the organization takes bank transfers only: its payments go to the manual gateway */
  char *only_manual[] = {"manual"}, *gw_path[] = {"gateways"};
  st.gateways = only_manual;
  st.n_gateways = 1;
  assert_int_equal(update_settings(organizer, org2, &st, gw_path, 1, NULL, &err), MQ_OK);
  payment_t *mp = NULL;
  assert_int_equal(create_payment(c, alice, h->hold_id, 2260, "EUR", NULL, NULL, &mp, &err), MQ_OK);
  assert_string_equal(mp->gateway, "manual");
  marquee__payments__v1__payment__free_unpacked(mp, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  /* what a manager reads back */
  Marquee__Payments__V1__GetPaymentSettingsRequest gq = MARQUEE__PAYMENTS__V1__GET_PAYMENT_SETTINGS_REQUEST__INIT;
  gq.organization_id = org2;
  mq_call_opts_t oo = {.bearer_token = organizer}, oa = {.bearer_token = alice};
  Marquee__Payments__V1__PaymentSettings *got = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__get_payment_settings__call(c, &gq, &got, &oo, &err), MQ_OK);
  assert_int_equal(got->version, 3);
  assert_int_equal(got->n_gateways, 1);
  assert_string_equal(got->tax_id, "123456789 RT0001");
  marquee__payments__v1__payment_settings__free_unpacked(got, NULL);
  assert_int_equal(marquee__payments__v1__payment_service__get_payment_settings__call(c, &gq, &got, &oa, &err),
                   MQ_NOT_FOUND);
}

typedef struct {
  const char *ref, *pid;
  int i, status;
} succeed_arg_t;

static void *succeed_thread(void *arg) {
  succeed_arg_t *x = arg;
  char evt[64];
  snprintf(evt, sizeof evt, "evt_receipt_%d_%d", (int)getpid(), x->i);
  x->status = deliver(x->i % 2 ? &srv2 : &srv, evt, "payment_intent.succeeded", x->ref, x->pid, "succeeded", 1200,
                      "eur", now_s(), NULL, NULL);
  return NULL;
}

#define RECEIPTS 8

static void test_receipts_are_numbered_without_gaps(void **state) {
  (void)state;
  char org3[40];
  mq_fx_org(c, organizer, "receipts", org3);
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = 1200, .capacity = 50}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org3, &o, &ev);
  payment_t *ps[RECEIPTS];
  mq_error_t err;
  for (int i = 0; i < RECEIPTS; i++) {
    hold_t *h = hold_of(alice, &ev, 1);
    assert_int_equal(create_payment(c, alice, h->hold_id, 1200, "EUR", "stripe", NULL, &ps[i], &err), MQ_OK);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  }
  /* no receipt before it is paid */
  Marquee__Payments__V1__GetReceiptRequest rq = MARQUEE__PAYMENTS__V1__GET_RECEIPT_REQUEST__INIT;
  rq.payment_id = ps[0]->payment_id;
  mq_call_opts_t oa = {.bearer_token = alice}, ob = {.bearer_token = bob}, oo = {.bearer_token = organizer};
  Marquee__Payments__V1__GetReceiptResponse *rr = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt__call(c, &rq, &rr, &oa, &err),
                   MQ_FAILED_PRECONDITION);
  /* all succeed at once, on two servers: receipts 1..N, each once */
  pthread_t t[RECEIPTS];
  succeed_arg_t args[RECEIPTS];
  for (int i = 0; i < RECEIPTS; i++) {
    args[i] = (succeed_arg_t){ps[i]->gateway_reference, ps[i]->payment_id, i, 0};
    pthread_create(&t[i], NULL, succeed_thread, &args[i]);
  }
  for (int i = 0; i < RECEIPTS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(args[i].status, 200);
  }
  char f[200];
  snprintf(f, sizeof f, "{\"organization_id\": \"%s\", \"kind\": \"receipt\"}", org3);
  assert_int_equal(mq_test_count(NULL, srv.db, "receipts", f), RECEIPTS);
  bool seen[RECEIPTS + 1] = {false};
  int year = 0;
  for (int i = 0; i < RECEIPTS; i++) {
    rq.payment_id = ps[i]->payment_id;
    assert_int_equal(marquee__payments__v1__payment_service__get_receipt__call(c, &rq, &rr, &oa, &err), MQ_OK);
    int y = 0, n = 0;
    assert_int_equal(sscanf(rr->receipt->number, "R-%d-%d", &y, &n), 2);
    assert_true(n >= 1 && n <= RECEIPTS);
    assert_false(seen[n]);
    seen[n] = true;
    year = y;
    assert_int_equal(rr->receipt->total->amount_minor, 1200);
    assert_true(!strncmp(rr->receipt->payment_method, "stripe pi_", 10));
    assert_int_equal(rr->receipt->n_lines, 1);
    marquee__payments__v1__get_receipt_response__free_unpacked(rr, NULL);
  }
  assert_true(year >= 2026);
  /* a refund gets a credit note naming the receipt */
  assert_int_equal(refund(organizer, ps[0]->payment_id, 500, "EUR", NULL, NULL, &err), MQ_OK);
  rq.payment_id = ps[0]->payment_id;
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt__call(c, &rq, &rr, &oo, &err), MQ_OK);
  assert_int_equal(rr->n_credit_notes, 1);
  assert_string_equal(rr->credit_notes[0]->refers_to, rr->receipt->number);
  assert_int_equal(rr->credit_notes[0]->total->amount_minor, 500);
  assert_true(!strncmp(rr->credit_notes[0]->number, "CN-", 3));
  char refund_id[80];
  snprintf(refund_id, sizeof refund_id, "%s", rr->credit_notes[0]->refund_id);
  marquee__payments__v1__get_receipt_response__free_unpacked(rr, NULL);
  /* others do not see it */
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt__call(c, &rq, &rr, &ob, &err), MQ_NOT_FOUND);
  /* the PDFs */
  Marquee__Payments__V1__GetReceiptPdfRequest pq = MARQUEE__PAYMENTS__V1__GET_RECEIPT_PDF_REQUEST__INIT;
  pq.payment_id = ps[0]->payment_id;
  Marquee__Payments__V1__ReceiptFile *file = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt_pdf__call(c, &pq, &file, &oa, &err), MQ_OK);
  assert_true(file->data.len > 1000 && !memcmp(file->data.data, "%PDF", 4));
  assert_true(!strncmp(file->file_name, "R-", 2));
  marquee__payments__v1__receipt_file__free_unpacked(file, NULL);
  pq.refund_id = refund_id;
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt_pdf__call(c, &pq, &file, &oa, &err), MQ_OK);
  assert_true(!strncmp(file->file_name, "CN-", 3));
  marquee__payments__v1__receipt_file__free_unpacked(file, NULL);
  pq.refund_id = (char *)"someone-else:1";
  assert_int_equal(marquee__payments__v1__payment_service__get_receipt_pdf__call(c, &pq, &file, &oa, &err),
                   MQ_NOT_FOUND);
  char path[96], auth[1200];
  snprintf(path, sizeof path, "/receipts/%s.pdf", ps[1]->payment_id);
  int st = 0;
  char *body = mq_test_http_get(srv.http, path, &st);
  free(body);
  assert_int_equal(st, 401);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", alice);
  body = mq_test_http_get_with(srv.http, path, auth, &st);
  assert_int_equal(st, 200);
  assert_true(body && !strncmp(body, "%PDF", 4));
  free(body);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", bob);
  body = mq_test_http_get_with(srv.http, path, auth, &st);
  free(body);
  assert_int_equal(st, 404);
  for (int i = 0; i < RECEIPTS; i++) marquee__payments__v1__payment__free_unpacked(ps[i], NULL);
}

static void test_display_prices(void **state) {
  (void)state;
  mq_fx_event_opts_t o = {
      .currency = "EUR", .n_tt = 2, .tt = {{.price_minor = 2500, .capacity = 5}, {.price_minor = 4000, .capacity = 5}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(c, organizer, org, &o, &ev);
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = ev.event_id;
  q.display_currency = (char *)"USD";
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  /* anonymous, twice: the second answer comes past the cache of public views */
  for (int round = 0; round < 2; round++) {
    assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &q, &e, NULL, &err), MQ_OK);
    assert_int_equal(e->n_ticket_types, 2);
    /* 25.00 EUR × 1.10 = 27.50 USD; 40.00 × 1.10 = 44.00; the price charged stays in EUR */
    assert_int_equal(e->ticket_types[0]->price->amount_minor, 2500);
    assert_string_equal(e->ticket_types[0]->price->currency, "EUR");
    assert_non_null(e->ticket_types[0]->display_price);
    assert_int_equal(e->ticket_types[0]->display_price->amount_minor, 2750);
    assert_string_equal(e->ticket_types[0]->display_price->currency, "USD");
    assert_int_equal(e->ticket_types[1]->display_price->amount_minor, 4400);
    assert_int_equal(e->display_min_price->amount_minor, 2750);
    assert_non_null(e->display_rates_as_of);
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* without a rate: no display price; without display_currency: none either */
  q.display_currency = (char *)"JPY";
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &q, &e, NULL, &err), MQ_OK);
  assert_null(e->ticket_types[0]->display_price);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  q.display_currency = (char *)"";
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &q, &e, NULL, &err), MQ_OK);
  assert_null(e->display_min_price);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  q.display_currency = (char *)"DOLLARS";
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(c, &q, &e, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "display_currency");
  /* the list too */
  Marquee__Catalog__V1__ListEventsRequest lq = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  lq.organization_id = org;
  lq.display_currency = (char *)"CAD";
  lq.page_size = 100;
  Marquee__Catalog__V1__ListEventsResponse *lr = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(c, &lq, &lr, NULL, &err), MQ_OK);
  bool found = false;
  for (size_t i = 0; i < lr->n_events; i++)
    if (!strcmp(lr->events[i]->event_id, ev.event_id)) {
      found = true;
      assert_int_equal(lr->events[i]->display_min_price->amount_minor, 3750); /* 25.00 × 1.50 */
    }
  assert_true(found);
  marquee__catalog__v1__list_events_response__free_unpacked(lr, NULL);
  /* a rates file with a bad row: the server does not start */
  char bad[96], kv[160];
  snprintf(bad, sizeof bad, "/tmp/mq-fx-bad-%d.txt", (int)getpid());
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fputs("EUR USD 1.10 2020-01-01\nEUR ZZZ 2 2020-01-01\n", f);
  fclose(f);
  snprintf(kv, sizeof kv, "MARQUEE_FX_RATES_FILE=%s", bad);
  const char *env[] = {kv, NULL};
  mq_test_proc_t s6;
  assert_int_not_equal(mq_test_server_start(&s6, NULL, env), 0);
  unlink(bad);
}

/* The state a server SIGKILLed right after the gateway's success leaves: the
 * hold's payment decision says succeeded, and nothing after it was written
 * (no booking, the payment still pending). Built in the real store, then a
 * redelivered webhook, or with none the sweepers at the deadline, finish. */
static void crash_state(const payment_t *p) {
  char doc[600];
  snprintf(
      doc, sizeof doc,
      "{\"_id\": \"%s:payment\", \"hold\": \"%s\", \"kind\": \"payment\", \"outcome\": \"succeeded\", "
      "\"actor\": \"crash-test\", \"payment_reference\": \"stripe:%s\", \"at\": {\"$date\": %lld}, \"done\": true}",
      p->hold_id, p->hold_id, p->gateway_reference, (long long)mq_test_now_ms());
  assert_true(mq_test_insert(srv.db, "hold_decisions", doc));
}

static void test_crash_after_the_gateway_succeeded(void **state) {
  (void)state;
  mq_error_t err;
  mq_fx_event_t ev = {0};
  payment_t *p = stripe_payment(1600, 1, &ev, NULL);
  crash_state(p);
  char f[120];
  snprintf(f, sizeof f, "{\"_id\": \"%s\"}", p->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 0);
  /* Stripe delivers again (the first attempt got no answer): finished */
  assert_int_equal(deliver(&srv2, "evt_after_crash", "payment_intent.succeeded", p->gateway_reference, p->payment_id,
                           "succeeded", 1600, "eur", now_s(), NULL, NULL),
                   200);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  assert_int_equal(state_of(p->payment_id), MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  assert_int_equal(outcomes_of(p->payment_id), 1);
  /* finished from the decision the crash left (not a new one) */
  snprintf(f, sizeof f, "{\"_id\": \"%s:payment\", \"actor\": \"crash-test\"}", p->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "hold_decisions", f), 1);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  /* no webhook at all: at the payment's deadline (10 s) the sweepers confirm it, and never cancel it */
  payment_t *q = stripe_payment(1700, 1, &ev, NULL);
  crash_state(q);
  int s = 0;
  for (int i = 0; i < 100; i++) {
    s = state_of(q->payment_id);
    if (s == MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED) break;
    mq_test_sleep_ms(200);
  }
  if (s != MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED) {
    payment_t *x;
    if (get_payment(alice, q->payment_id, &x, &err) == MQ_OK) {
      for (size_t i = 0; i < x->n_history; i++)
        print_message("history %d %s %s\n", x->history[i]->state, x->history[i]->reason, x->history[i]->source);
      marquee__payments__v1__payment__free_unpacked(x, NULL);
    }
  }
  assert_int_equal(s, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED);
  snprintf(f, sizeof f, "{\"_id\": \"%s\", \"state\": \"confirmed\"}", q->hold_id);
  for (int i = 0; i < 50 && mq_test_count(NULL, srv.db, "bookings", f) == 0; i++) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  marquee__payments__v1__payment__free_unpacked(q, NULL);
}

typedef struct {
  mq_client_t *cl;
  const char *pid;
  mq_code_t rc;
} mark_arg_t;

static void *mark_thread(void *arg) {
  mark_arg_t *m = arg;
  Marquee__Payments__V1__MarkPaymentReceivedRequest q = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
  q.payment_id = (char *)m->pid;
  mq_call_opts_t oo = {.bearer_token = organizer};
  payment_t *x = NULL;
  mq_error_t err = {0};
  m->rc = marquee__payments__v1__payment_service__mark_payment_received__call(m->cl, &q, &x, &oo, &err);
  if (x) marquee__payments__v1__payment__free_unpacked(x, NULL);
  return NULL;
}

static void test_concurrent_confirmations_make_one_booking(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  paid_event(&ev, 2200, 10);
  hold_t *h = hold_of(alice, &ev, 1);
  payment_t *p;
  mq_error_t err;
  assert_int_equal(create_payment(c, alice, h->hold_id, 2200, "EUR", "manual", NULL, &p, &err), MQ_OK);
  pthread_t t[8];
  mark_arg_t m[8];
  for (int i = 0; i < 8; i++) {
    m[i] = (mark_arg_t){i % 2 ? c2 : c, p->payment_id, MQ_OK};
    pthread_create(&t[i], NULL, mark_thread, &m[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(m[i].rc, MQ_OK);
  }
  char f[120];
  snprintf(f, sizeof f, "{\"_id\": \"%s\"}", h->hold_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "bookings", f), 1);
  assert_int_equal(outcomes_of(p->payment_id), 1);
  snprintf(f, sizeof f, "{\"subject\": \"%s\"}", p->payment_id);
  assert_int_equal(mq_test_count(NULL, srv.db, "receipts", f), 1);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stripe_payment_succeeds_by_webhook),
      cmocka_unit_test(test_webhook_ten_concurrent_deliveries_apply_once),
      cmocka_unit_test(test_webhook_refusals_change_nothing),
      cmocka_unit_test(test_create_payment_bad_input),
      cmocka_unit_test(test_manual_payment_marked_received),
      cmocka_unit_test(test_free_gateway_and_cancel),
      cmocka_unit_test(test_refunds_add_up),
      cmocka_unit_test(test_deadline_cancels_and_late_success_rebooks_or_refunds),
      cmocka_unit_test(test_lists),
      cmocka_unit_test(test_breaker_and_fallback),
      cmocka_unit_test(test_cancelled_booking_is_refunded),
      cmocka_unit_test(test_taxes_are_in_the_price_charged),
      cmocka_unit_test(test_settings_fee_and_home_country_price_a_hold),
      cmocka_unit_test(test_receipts_are_numbered_without_gaps),
      cmocka_unit_test(test_display_prices),
      cmocka_unit_test(test_crash_after_the_gateway_succeeded),
      cmocka_unit_test(test_concurrent_confirmations_make_one_booking),
      cmocka_unit_test(test_event_cancellation_refunds_everyone_across_a_crash),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
