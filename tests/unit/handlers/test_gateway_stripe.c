/*
 * test_gateway_stripe.c — the Stripe gateway's webhook check
 * (handlers/payments/gateway_stripe.c): Stripe's signature scheme
 * (HMAC-SHA256 over "<t>.<raw body>"), the timestamp tolerance, several v1
 * signatures (secret rotation), and the parse of a verified event.
 *
 * The expected signature below was computed independently of Marquee with
 *   printf '%s' "1492774577.$BODY" | openssl dgst -sha256 -hmac whsec_test_secret
 * (1492774577 is the timestamp of the example header in Stripe's webhook
 * documentation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/mq_config.h"
#include "handlers/payments/gateway.h"

#define BODY                                                                                                      \
  "{\"id\":\"evt_test_webhook\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":" \
  "{\"id\":\"pi_123\",\"object\":\"payment_intent\",\"status\":\"succeeded\",\"amount\":2500,\"amount_"           \
  "received\":2500,\"currency\":\"cad\",\"metadata\":{\"payment_id\":\"p-1\"}}}}"
#define SIG "b5e62549f4394e2ce1c77872db81c971459cd77353aed69ba8480a34b367dc83"
#define T 1492774577LL

static const char *header_value;

static const char *header(void *arg, const char *name) {
  (void)arg;
  return strcmp(name, "Stripe-Signature") ? NULL : header_value;
}

static mq_gateway_t *stripe(void) {
  mq_config_t cfg;
  mq_error_t err = {0};
  char *const env[] = {"MARQUEE_STRIPE_SECRET_KEY=sk_test_unit", "MARQUEE_STRIPE_API_BASE=http://127.0.0.1:1",
                       "MARQUEE_STRIPE_WEBHOOK_SECRET=whsec_test_secret", "MARQUEE_STRIPE_WEBHOOK_TOLERANCE_S=300",
                       NULL};
  assert_int_equal(mq_config_load(&cfg, env, &err), MQ_OK);
  mq_gateway_t *g = mq_gateway_stripe_new(&cfg, &err);
  assert_non_null(g);
  mq_config_free(&cfg);
  return g;
}

static mq_code_t check(mq_gateway_t *g, const char *hdr, const char *body, int64_t now_s, mq_gw_event_t *ev) {
  header_value = hdr;
  mq_error_t err = {0};
  return g->ops->parse_webhook(g, header, NULL, body, strlen(body), now_s * 1000, ev, &err);
}

static void test_signature_scheme(void **state) {
  (void)state;
  mq_gateway_t *g = stripe();
  mq_gw_event_t ev;
  char h[300];
  snprintf(h, sizeof h, "t=%lld,v1=%s", T, SIG);
  assert_int_equal(check(g, h, BODY, T + 10, &ev), MQ_OK);
  assert_string_equal(ev.id, "evt_test_webhook");
  assert_string_equal(ev.type, "payment_intent.succeeded");
  assert_int_equal(ev.kind, MQ_GW_EVENT_PAYMENT);
  assert_string_equal(ev.intent.ref, "pi_123");
  assert_int_equal(ev.intent.status, MQ_GW_SUCCEEDED);
  assert_int_equal(ev.intent.amount_received, 2500);
  assert_string_equal(ev.intent.currency, "CAD");
  assert_string_equal(ev.intent.payment_id, "p-1");
  /* a rotated secret: any v1 may match; v0 is ignored */
  snprintf(h, sizeof h, "t=%lld,v1=%064d,v0=%s,v1=%s", T, 0, SIG, SIG);
  assert_int_equal(check(g, h, BODY, T, &ev), MQ_OK);
  /* one byte of the body changed */
  char body[sizeof BODY];
  memcpy(body, BODY, sizeof BODY);
  body[strlen(body) - 5] = '2';
  snprintf(h, sizeof h, "t=%lld,v1=%s", T, SIG);
  assert_int_equal(check(g, h, body, T, &ev), MQ_INVALID_ARGUMENT);
  /* the timestamp is signed too */
  snprintf(h, sizeof h, "t=%lld,v1=%s", T + 1, SIG);
  assert_int_equal(check(g, h, BODY, T, &ev), MQ_INVALID_ARGUMENT);
  /* only v0 */
  snprintf(h, sizeof h, "t=%lld,v0=%s", T, SIG);
  assert_int_equal(check(g, h, BODY, T, &ev), MQ_INVALID_ARGUMENT);
  /* no header, garbage */
  assert_int_equal(check(g, NULL, BODY, T, &ev), MQ_INVALID_ARGUMENT);
  assert_int_equal(check(g, "v1=,t=", BODY, T, &ev), MQ_INVALID_ARGUMENT);
  g->ops->destroy(g);
}

static void test_tolerance(void **state) {
  (void)state;
  mq_gateway_t *g = stripe();
  mq_gw_event_t ev;
  char h[300];
  snprintf(h, sizeof h, "t=%lld,v1=%s", T, SIG);
  assert_int_equal(check(g, h, BODY, T + 300, &ev), MQ_OK);
  assert_int_equal(check(g, h, BODY, T + 301, &ev), MQ_INVALID_ARGUMENT);
  assert_int_equal(check(g, h, BODY, T - 301, &ev), MQ_INVALID_ARGUMENT);
  g->ops->destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signature_scheme),
      cmocka_unit_test(test_tolerance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
