/*
 * test_webhooks.c — webhooks to an organization's own systems, on the real
 * stack: marquee-server (WebhookService), marquee-webhooks (the consumer and
 * its dispatcher), Kafka, the store, and a local HTTP sink (sink.h) as the
 * receiving system.
 *
 * Proves: an endpoint with a bad URL (cloud metadata, private ranges, plain
 * http to a public host, credentials in the URL), unknown event types and a
 * bad description is refused with every violation listed; outsiders see
 * NOT_FOUND, anonymous callers UNAUTHENTICATED; a published event reaches
 * the subscribed endpoint once, signed (HMAC-SHA256 over "<t>.<body>", the
 * secret returned at creation verifies it), as JSON with the payload, and
 * an unsubscribed type does not; the same event produced again (as a relay
 * does after a crash) sends nothing twice; an endpoint that fails 5 times
 * then answers 200 gets the delivery once more, with 6 attempts logged; a redelivery by hand is
 * sent with the same Marquee-Webhook-Id; after a secret rotation both
 * secrets sign for the grace period; a deleted endpoint gets nothing; an
 * endpoint that keeps failing opens its breaker: no attempt while open,
 * one probe after.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/notifications/v1/webhooks.mq-client.h"
#include "sink.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000e0001"
#define OUTSIDER "00000000-0000-4000-8000-0000000e0002"

typedef Marquee__Notifications__V1__WebhookEndpointWithSecret with_secret_t;
typedef Marquee__Notifications__V1__WebhookDelivery delivery_t;

static mq_test_proc_t srv, hooks;
static mq_client_t *c;
static char *organizer, *outsider;
static char org[40];
static mq_sink_t *sink;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  const char *henv[] = {"MARQUEE_WEBHOOK_BREAKER_FAILURES=8", NULL};
  if (mq_test_webhooks_start(&hooks, srv.db, henv) != 0) return -1;
  c = mq_test_client(&srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  outsider = mq_test_token(OUTSIDER, MQ_ROLE_ORGANIZER);
  mq_fx_org(c, organizer, "webhooks", org);
  sink = mq_sink_start();
  return c && sink ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(c);
  free(organizer);
  free(outsider);
  mq_test_proc_stop(&hooks, SIGTERM, 15000);
  mq_test_proc_stop(&srv, SIGTERM, 10000);
  mq_test_drop_db(NULL, srv.db);
  mq_sink_free(sink);
  return 0;
}

static mq_code_t create(mq_client_t *cl, const char *token, const char *org_id, const char *url,
                        const char *const *types, size_t n, const char *description, with_secret_t **out,
                        mq_error_t *err) {
  Marquee__Notifications__V1__CreateWebhookEndpointRequest q =
      MARQUEE__NOTIFICATIONS__V1__CREATE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  q.organization_id = (char *)org_id;
  q.url = (char *)url;
  q.event_types = (char **)types;
  q.n_event_types = n;
  if (description) q.description = (char *)description;
  mq_call_opts_t o = {.bearer_token = token};
  with_secret_t *r = NULL;
  mq_code_t rc = marquee__notifications__v1__webhook_service__create_webhook_endpoint__call(cl, &q, &r, &o, err);
  if (out)
    *out = r;
  else if (r)
    marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(r, NULL);
  return rc;
}

static with_secret_t *endpoint(mq_client_t *cl, mq_sink_t *to, const char *org_id, const char *type) {
  char url[160];
  snprintf(url, sizeof url, "%s/hooks/marquee?token=receiver-own-token", mq_sink_url(to));
  const char *types[] = {type};
  with_secret_t *w = NULL;
  mq_error_t err;
  assert_int_equal(create(cl, organizer, org_id, url, types, 1, "test receiver", &w, &err), MQ_OK);
  assert_non_null(strstr(w->secret, "whsec_"));
  assert_int_equal(strlen(w->endpoint->secret_hint), 4);
  return w;
}

/* Deletes an endpoint (its sink is about to go away). */
static void drop(mq_client_t *cl, const char *org_id, const char *id) {
  Marquee__Notifications__V1__DeleteWebhookEndpointRequest q =
      MARQUEE__NOTIFICATIONS__V1__DELETE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  q.organization_id = (char *)org_id;
  q.endpoint_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = organizer};
  Marquee__Notifications__V1__DeleteWebhookEndpointResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__notifications__v1__webhook_service__delete_webhook_endpoint__call(cl, &q, &r, &o, &err),
                   MQ_OK);
  marquee__notifications__v1__delete_webhook_endpoint_response__free_unpacked(r, NULL);
}

static void publish(mq_client_t *cl, const char *org_id, mq_fx_event_t *ev) {
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = 0, .capacity = 10}}, .title = "Webhook <b>night</b>"};
  mq_fx_event(cl, organizer, org_id, &o, ev);
}

/* Is one of the v1 values of the signature header the HMAC of "<t>.<body>" under `secret`? */
static bool signed_by(const mq_sink_request_t *r, const char *secret) {
  char sig[600];
  if (!mq_sink_header(r, "Marquee-Signature", sig, sizeof sig)) return false;
  long long t = 0;
  if (sscanf(sig, "t=%lld", &t) != 1) return false;
  char head[32];
  int hl = snprintf(head, sizeof head, "%lld.", t);
  size_t n = (size_t)hl + r->body_len;
  unsigned char *msg = malloc(n);
  memcpy(msg, head, (size_t)hl);
  memcpy(msg + hl, r->body, r->body_len);
  unsigned char mac[32];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, n, mac, &ml);
  free(msg);
  char hex[65];
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", mac[i]);
  char want[80];
  snprintf(want, sizeof want, "v1=%s", hex);
  return strstr(sig, want) != NULL && llabs((long long)time(NULL) - t) < 300;
}

static delivery_t *get_delivery(const char *id) {
  Marquee__Notifications__V1__GetWebhookDeliveryRequest q =
      MARQUEE__NOTIFICATIONS__V1__GET_WEBHOOK_DELIVERY_REQUEST__INIT;
  q.organization_id = org;
  q.delivery_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = organizer};
  delivery_t *d = NULL;
  mq_error_t err;
  assert_int_equal(marquee__notifications__v1__webhook_service__get_webhook_delivery__call(c, &q, &d, &o, &err), MQ_OK);
  return d;
}

/* Waits until the delivery is in `state` (up to timeout_ms). */
static delivery_t *wait_delivery(const char *id, int state, int timeout_ms) {
  for (int64_t until = mq_test_now_ms() + timeout_ms;;) {
    delivery_t *d = get_delivery(id);
    if ((int)d->state == state || mq_test_now_ms() > until) return d;
    marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
    mq_test_sleep_ms(100);
  }
}

static void test_bad_input_and_who(void **state) {
  (void)state;
  mq_error_t err;
  const char *bad_types[] = {"catalog.Nope", "*"};
  assert_int_equal(
      create(c, organizer, org, "http://169.254.169.254/latest/meta-data", bad_types, 2, "two\nlines", NULL, &err),
      MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 4); /* url, event_types[0], event_types[1], description */
  bool saw_url = false;
  for (unsigned i = 0; i < err.n_violations; i++) saw_url |= !strcmp(err.violations[i].field, "url");
  assert_true(saw_url);
  const char *types[] = {"bookings.BookingConfirmed"};
  const char *refused[] = {"https://10.1.2.3/hook",      "https://169.254.169.254/", "http://example.com/hook",
                           "https://u:p@example.com/x",  "ftp://example.com/",       "https://[::ffff:10.0.0.1]/",
                           "https://192.168.1.20:8443/", "https://[fe80::1]/",       "not a url",
                           "https://100.64.0.1/"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    assert_int_equal(create(c, organizer, org, refused[i], types, 1, NULL, NULL, &err), MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, "url");
  }
  const char *none[] = {NULL};
  assert_int_equal(create(c, organizer, org, "https://hooks.example.com/x", none, 0, NULL, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "event_types");
  /* outsiders do not learn the organization exists; anonymous callers are refused */
  assert_int_equal(create(c, outsider, org, "https://hooks.example.com/x", types, 1, NULL, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(create(c, NULL, org, "https://hooks.example.com/x", types, 1, NULL, NULL, &err), MQ_UNAUTHENTICATED);
  Marquee__Notifications__V1__ListWebhookEndpointsRequest lq =
      MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_ENDPOINTS_REQUEST__INIT;
  lq.organization_id = org;
  mq_call_opts_t oo = {.bearer_token = outsider};
  Marquee__Notifications__V1__ListWebhookEndpointsResponse *lr = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__list_webhook_endpoints__call(c, &lq, &lr, &oo, &err),
                   MQ_NOT_FOUND);
  /* a public host name is accepted when saved (its addresses are checked at each call) */
  with_secret_t *w = NULL;
  assert_int_equal(create(c, organizer, org, "https://hooks.example.com/x", types, 1, NULL, &w, &err), MQ_OK);
  /* a change: every bad field at once, an unknown field in the mask, a stale version */
  mq_call_opts_t ou = {.bearer_token = organizer};
  Marquee__Notifications__V1__WebhookEndpoint in = MARQUEE__NOTIFICATIONS__V1__WEBHOOK_ENDPOINT__INIT;
  in.id = w->endpoint->id;
  in.url = (char *)"https://10.0.0.7/hook";
  char *bad_type[] = {(char *)"users.PasswordResetRequested"};
  in.event_types = bad_type;
  in.n_event_types = 1;
  char *paths[] = {(char *)"url", (char *)"event_types", (char *)"secret"};
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = paths;
  mask.n_paths = 3;
  Marquee__Notifications__V1__UpdateWebhookEndpointRequest uq =
      MARQUEE__NOTIFICATIONS__V1__UPDATE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  uq.organization_id = org;
  uq.endpoint = &in;
  uq.update_mask = &mask;
  Marquee__Notifications__V1__WebhookEndpoint *ur = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__update_webhook_endpoint__call(c, &uq, &ur, &ou, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 3); /* update_mask ("secret"), endpoint.url, endpoint.event_types[0] */
  char *enabled_path[] = {(char *)"enabled"};
  mask.paths = enabled_path;
  mask.n_paths = 1;
  in.version = 7; /* it is at 1 */
  assert_int_equal(marquee__notifications__v1__webhook_service__update_webhook_endpoint__call(c, &uq, &ur, &ou, &err),
                   MQ_ABORTED);
  assert_string_equal(err.field, "endpoint.version");
  /* the log: a bad state, a forged page token, an unknown or malformed delivery */
  Marquee__Notifications__V1__ListWebhookDeliveriesRequest ldq =
      MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_DELIVERIES_REQUEST__INIT;
  ldq.organization_id = org;
  ldq.state = 99;
  Marquee__Notifications__V1__ListWebhookDeliveriesResponse *ldr = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__list_webhook_deliveries__call(c, &ldq, &ldr, &ou, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "state");
  ldq.state = 0;
  ldq.page_token = (char *)"not-a-token";
  assert_int_equal(marquee__notifications__v1__webhook_service__list_webhook_deliveries__call(c, &ldq, &ldr, &ou, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  Marquee__Notifications__V1__GetWebhookDeliveryRequest gq =
      MARQUEE__NOTIFICATIONS__V1__GET_WEBHOOK_DELIVERY_REQUEST__INIT;
  gq.organization_id = org;
  Marquee__Notifications__V1__WebhookDelivery *gd = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__get_webhook_delivery__call(c, &gq, &gd, &ou, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "delivery_id");
  gq.delivery_id = (char *)"no-such-event:no-such-endpoint";
  assert_int_equal(marquee__notifications__v1__webhook_service__get_webhook_delivery__call(c, &gq, &gd, &ou, &err),
                   MQ_NOT_FOUND);
  /* an outsider cannot rotate the secret */
  Marquee__Notifications__V1__RotateWebhookSecretRequest rq =
      MARQUEE__NOTIFICATIONS__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
  rq.organization_id = org;
  rq.endpoint_id = w->endpoint->id;
  with_secret_t *rw = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__rotate_webhook_secret__call(c, &rq, &rw, &oo, &err),
                   MQ_NOT_FOUND);
  Marquee__Notifications__V1__DeleteWebhookEndpointRequest dq =
      MARQUEE__NOTIFICATIONS__V1__DELETE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  dq.organization_id = org;
  dq.endpoint_id = w->endpoint->id;
  mq_call_opts_t o = {.bearer_token = organizer};
  Marquee__Notifications__V1__DeleteWebhookEndpointResponse *dr = NULL;
  assert_int_equal(marquee__notifications__v1__webhook_service__delete_webhook_endpoint__call(c, &dq, &dr, &o, &err),
                   MQ_OK);
  marquee__notifications__v1__delete_webhook_endpoint_response__free_unpacked(dr, NULL);
  /* nothing listed shows a secret */
  mq_call_opts_t og = {.bearer_token = organizer};
  assert_int_equal(marquee__notifications__v1__webhook_service__list_webhook_endpoints__call(c, &lq, &lr, &og, &err),
                   MQ_OK);
  assert_int_equal(lr->n_endpoints, 0); /* the deleted one is gone */
  marquee__notifications__v1__list_webhook_endpoints_response__free_unpacked(lr, NULL);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
}

static void test_delivered_once_signed_and_duplicate_sends_nothing(void **state) {
  (void)state;
  mq_sink_t *s = mq_sink_start();
  with_secret_t *w = endpoint(c, s, org, "catalog.EventPublished");
  mq_fx_event_t ev = {0};
  publish(c, org, &ev);
  /* the first of the program: the consumer's group may still be joining (a minute on a Kafka just started) */
  assert_true(mq_sink_wait(s, 1, 90000));
  mq_sink_request_t r;
  assert_true(mq_sink_get(s, 0, &r));
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.path, "/hooks/marquee?token=receiver-own-token");
  char v[200];
  assert_true(mq_sink_header(&r, "Marquee-Event-Type", v, sizeof v));
  assert_string_equal(v, "catalog.EventPublished");
  assert_true(mq_sink_header(&r, "Content-Type", v, sizeof v));
  assert_string_equal(v, "application/json");
  char hook_id[100];
  assert_true(mq_sink_header(&r, "Marquee-Webhook-Id", hook_id, sizeof hook_id));
  assert_true(signed_by(&r, w->secret));
  assert_false(signed_by(&r, "whsec_someone_elses_secret"));
  assert_non_null(strstr(r.body, "\"type\":\"catalog.EventPublished\""));
  assert_non_null(strstr(r.body, ev.event_id));
  assert_non_null(strstr(r.body, "\"organizationId\":\""));
  assert_null(strstr(r.body, w->secret));
  mq_sink_request_clear(&r);
  /* EventCreated came first and is not subscribed: still one request */
  mq_test_sleep_ms(1500);
  assert_int_equal(mq_sink_count(s), 1);
  char did[200];
  snprintf(did, sizeof did, "%s:%s", hook_id, w->endpoint->id);
  delivery_t *d =
      wait_delivery(did, MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED, 5000);
  assert_int_equal(d->attempts, 1);
  assert_int_equal(d->n_attempt_log, 1);
  assert_int_equal(d->attempt_log[0]->http_status, 200);
  marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
  /* the same event on the bus again (what a relay re-publishing it after a crash sends): handled, nothing sent */
  const char *handled = "marquee_consumer_events_total{consumer=\"webhooks\",outcome=\"handled\"}";
  double h0 = mq_test_metric(&hooks, handled), c0 = mq_test_metric(&hooks, "marquee_webhook_deliveries_created_total");
  Marquee__Events__V1__EventPublished p = MARQUEE__EVENTS__V1__EVENT_PUBLISHED__INIT;
  p.event_id = ev.event_id;
  p.organization_id = org;
  Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  env.event_id = hook_id;
  env.type = (char *)"catalog.EventPublished";
  env.aggregate_id = ev.event_id;
  env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_PUBLISHED;
  env.event_published = &p;
  assert_true(mq_test_produce("marquee.events", ev.event_id, &env));
  assert_true(mq_test_wait_metric(&hooks, handled, h0 + 1, 30000));
  mq_test_sleep_ms(1500);
  assert_true(mq_test_metric(&hooks, "marquee_webhook_deliveries_created_total") == c0);
  assert_int_equal(mq_sink_count(s), 1);
  /* by hand: sent again, same id */
  Marquee__Notifications__V1__RedeliverWebhookRequest rq = MARQUEE__NOTIFICATIONS__V1__REDELIVER_WEBHOOK_REQUEST__INIT;
  rq.organization_id = org;
  rq.delivery_id = did;
  mq_call_opts_t o = {.bearer_token = organizer}, oo = {.bearer_token = outsider};
  mq_error_t err;
  assert_int_equal(marquee__notifications__v1__webhook_service__redeliver_webhook__call(c, &rq, &d, &oo, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(marquee__notifications__v1__webhook_service__redeliver_webhook__call(c, &rq, &d, &o, &err), MQ_OK);
  marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
  assert_true(mq_sink_wait(s, 2, 15000));
  assert_true(mq_sink_get(s, 1, &r));
  assert_true(mq_sink_header(&r, "Marquee-Webhook-Id", v, sizeof v));
  assert_string_equal(v, hook_id);
  mq_sink_request_clear(&r);
  d = wait_delivery(did, MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED, 5000);
  assert_int_equal(d->attempts, 2);
  marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
  drop(c, org, w->endpoint->id);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
  mq_sink_free(s);
}

static void test_fails_five_times_then_delivered_once(void **state) {
  (void)state;
  mq_sink_t *s = mq_sink_start();
  mq_sink_fail_next(s, 5, 500);
  with_secret_t *w = endpoint(c, s, org, "catalog.EventPublished");
  mq_fx_event_t ev = {0};
  publish(c, org, &ev);
  assert_true(mq_sink_wait(s, 6, 60000));
  mq_test_sleep_ms(1500);
  assert_int_equal(mq_sink_count(s), 6);
  char first[100], v[100];
  mq_sink_request_t r;
  for (size_t i = 0; i < 6; i++) {
    assert_true(mq_sink_get(s, i, &r));
    assert_true(mq_sink_header(&r, "Marquee-Webhook-Id", v, sizeof v));
    if (i == 0) snprintf(first, sizeof first, "%s", v);
    assert_string_equal(v, first);
    assert_int_equal(r.status, i < 5 ? 500 : 200);
    mq_sink_request_clear(&r);
  }
  char did[200];
  snprintf(did, sizeof did, "%s:%s", first, w->endpoint->id);
  delivery_t *d =
      wait_delivery(did, MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED, 5000);
  assert_int_equal(d->state, MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED);
  assert_int_equal(d->attempts, 6);
  assert_int_equal(d->n_attempt_log, 6);
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(d->attempt_log[i]->number, i + 1);
    assert_int_equal(d->attempt_log[i]->http_status, i < 5 ? 500 : 200);
    if (i < 5) assert_non_null(strstr(d->attempt_log[i]->error, "500"));
  }
  assert_non_null(strstr(d->body, ev.event_id));
  marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
  /* the log lists it, filtered by endpoint */
  Marquee__Notifications__V1__ListWebhookDeliveriesRequest lq =
      MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_DELIVERIES_REQUEST__INIT;
  lq.organization_id = org;
  lq.endpoint_id = w->endpoint->id;
  mq_call_opts_t o = {.bearer_token = organizer};
  Marquee__Notifications__V1__ListWebhookDeliveriesResponse *lr = NULL;
  mq_error_t err;
  assert_int_equal(marquee__notifications__v1__webhook_service__list_webhook_deliveries__call(c, &lq, &lr, &o, &err),
                   MQ_OK);
  assert_int_equal(lr->n_deliveries, 1);
  assert_string_equal(lr->deliveries[0]->id, did);
  assert_string_equal(lr->deliveries[0]->body, ""); /* bodies only one at a time */
  marquee__notifications__v1__list_webhook_deliveries_response__free_unpacked(lr, NULL);
  drop(c, org, w->endpoint->id);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
  mq_sink_free(s);
}

static void test_rotation_signs_with_both_and_deleted_gets_nothing(void **state) {
  (void)state;
  mq_sink_t *s = mq_sink_start();
  with_secret_t *w = endpoint(c, s, org, "*");
  Marquee__Notifications__V1__RotateWebhookSecretRequest q =
      MARQUEE__NOTIFICATIONS__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
  q.organization_id = org;
  q.endpoint_id = w->endpoint->id;
  mq_call_opts_t o = {.bearer_token = organizer};
  with_secret_t *w2 = NULL;
  mq_error_t err;
  assert_int_equal(marquee__notifications__v1__webhook_service__rotate_webhook_secret__call(c, &q, &w2, &o, &err),
                   MQ_OK);
  assert_string_not_equal(w2->secret, w->secret);
  assert_int_equal(w2->endpoint->version, 2);
  mq_fx_event_t ev = {0};
  publish(c, org, &ev);
  /* the first of the program: the consumer's group may still be joining (a minute on a Kafka just started) */
  assert_true(mq_sink_wait(s, 1, 90000));
  mq_sink_request_t r;
  assert_true(mq_sink_get(s, 0, &r));
  assert_true(signed_by(&r, w2->secret));
  assert_true(signed_by(&r, w->secret));
  mq_sink_request_clear(&r);
  /* deleted: the next events reach nobody */
  Marquee__Notifications__V1__DeleteWebhookEndpointRequest dq =
      MARQUEE__NOTIFICATIONS__V1__DELETE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  dq.organization_id = org;
  dq.endpoint_id = w->endpoint->id;
  Marquee__Notifications__V1__DeleteWebhookEndpointResponse *dr = NULL;
  assert_true(mq_sink_wait(s, 2, 10000)); /* "*": EventCreated and EventPublished */
  mq_test_sleep_ms(1000);
  size_t before = mq_sink_count(s);
  assert_int_equal(marquee__notifications__v1__webhook_service__delete_webhook_endpoint__call(c, &dq, &dr, &o, &err),
                   MQ_OK);
  marquee__notifications__v1__delete_webhook_endpoint_response__free_unpacked(dr, NULL);
  mq_fx_event_t ev2 = {0};
  publish(c, org, &ev2);
  mq_test_sleep_ms(3000);
  assert_int_equal(mq_sink_count(s), before);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w2, NULL);
  mq_sink_free(s);
}

/* Its own database and consumer, with a breaker that opens after 3 failures for 4 s. */
static void test_breaker_spares_a_failing_endpoint(void **state) {
  (void)state;
  mq_test_proc_t s2, h2;
  const char *env[] = {"MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8", NULL};
  assert_int_equal(mq_test_server_start(&s2, NULL, env), 0);
  const char *henv[] = {"MARQUEE_WEBHOOK_BACKOFF_MS=1", "MARQUEE_WEBHOOK_BREAKER_FAILURES=3",
                        "MARQUEE_WEBHOOK_BREAKER_OPEN_MS=4000", NULL};
  assert_int_equal(mq_test_webhooks_start(&h2, s2.db, henv), 0);
  mq_client_t *c2 = mq_test_client(&s2);
  char org2[40];
  mq_fx_org(c2, organizer, "breaker", org2);
  mq_sink_t *s = mq_sink_start();
  mq_sink_fail_next(s, 1000, 503);
  with_secret_t *w = endpoint(c2, s, org2, "catalog.EventPublished");
  mq_fx_event_t ev = {0};
  publish(c2, org2, &ev);
  assert_true(mq_sink_wait(s, 3, 30000));
  int64_t opened = mq_test_now_ms();
  mq_test_sleep_ms(2500); /* open: nothing is sent, the delivery is postponed */
  assert_int_equal(mq_sink_count(s), 3);
  assert_true(mq_test_wait_metric(&h2, "marquee_webhook_postponed_total", 1, 5000));
  assert_true(mq_sink_wait(s, 4, 15000)); /* then one probe */
  assert_true(mq_test_now_ms() - opened >= 3000);
  mq_test_sleep_ms(1500);
  assert_int_equal(mq_sink_count(s), 4); /* it failed: open again */
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
  mq_sink_free(s);
  mq_client_destroy(c2);
  mq_test_proc_stop(&h2, SIGTERM, 15000);
  mq_test_proc_stop(&s2, SIGTERM, 10000);
  mq_test_drop_db(NULL, s2.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_input_and_who),
      cmocka_unit_test(test_delivered_once_signed_and_duplicate_sends_nothing),
      cmocka_unit_test(test_fails_five_times_then_delivered_once),
      cmocka_unit_test(test_rotation_signs_with_both_and_deleted_gets_nothing),
      cmocka_unit_test(test_breaker_spares_a_failing_endpoint),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
