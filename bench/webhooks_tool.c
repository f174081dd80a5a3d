/*
 * webhooks_tool.c — mq-bench-webhooks, the load side of bench/webhooks.sh.
 *
 *   mq-bench-webhooks run TARGET JWT_KEYS BROKERS EVENTS
 *
 * On a server (TARGET) whose database a running marquee-webhooks serves:
 *   1. mints an organizer token (HS256, the first of JWT_KEYS), creates an
 *      organization and one endpoint subscribed to bookings.BookingConfirmed,
 *      pointing at a local HTTP receiver in this process
 *      (tests/integration/sink.c: it records every request, answers 200);
 *   2. the baseline: EVENTS signed POSTs of a body of the same shape and
 *      size, sent by 4 threads (marquee-webhooks' default worker count) with
 *      the same HTTP client (lib/mq_httpc.h, one connection per request)
 *      and the same signature (lib/mq_webhook_sig.h) to the same receiver,
 *      and nothing else: what sending costs here;
 *   3. produces EVENTS BookingConfirmed events of that organization straight
 *      to Kafka (as the relay would) and waits until the receiver has had
 *      EVENTS requests: the rate is (EVENTS - 1) / (last arrival - first
 *      arrival), so the consumer's start and group join are not counted.
 *      Each request's signature is verified afterwards with the endpoint's
 *      secret.
 * Prints one JSON line: baseline and webhooks per second, their ratio, the
 * number delivered and the number whose signature verified.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/mq_client.h"
#include "core/mq_ids.h"
#include "core/mq_principal.h"
#include "lib/mq_httpc.h"
#include "lib/mq_jwt.h"
#include "lib/mq_webhook_sig.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "marquee/notifications/v1/webhooks.mq-client.h"
#include "sink.h"

#define WORKERS 4

static void die(const char *what, const mq_error_t *err) {
  fprintf(stderr, "mq-bench-webhooks: %s: %s\n", what, err ? err->message : "failed");
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct {
  const char *url, *secret;
  long n;
} base_t;

static const char BODY[] =
    "{\"id\":\"%s\",\"type\":\"bookings.BookingConfirmed\",\"created\":\"2026-12-05T10:00:00Z\",\"organizationId\":"
    "\"00000000-0000-4000-8000-00000000be01\",\"data\":{\"bookingId\":\"%s\",\"eventId\":\"00000000-0000-4000-8000-"
    "00000000be02\",\"organizationId\":\"00000000-0000-4000-8000-00000000be01\",\"userId\":\"00000000-0000-4000-8000-"
    "00000000be03\",\"units\":[{\"ticketTypeId\":\"00000000-0000-4000-8000-00000000be04\",\"quantity\":2,"
    "\"amountMinor\":\"5000\"}],\"totalMinor\":\"5000\",\"currency\":\"EUR\"}}";

static void *baseline_thread(void *arg) {
  base_t *b = arg;
  for (long i = 0; i < b->n; i++) {
    char id[37], body[sizeof BODY + 80], sig[300], h_sig[330], h_id[80];
    mq_uuid_v4(id);
    int len = snprintf(body, sizeof body, BODY, id, id);
    mq_webhook_sig_header(b->secret, NULL, (int64_t)time(NULL), body, (size_t)len, sig, sizeof sig);
    snprintf(h_sig, sizeof h_sig, "Marquee-Signature: %s", sig);
    snprintf(h_id, sizeof h_id, "Marquee-Webhook-Id: %s", id);
    const char *headers[] = {"Content-Type: application/json", h_id, "Marquee-Event-Type: bookings.BookingConfirmed",
                             h_sig};
    mq_httpc_request_t r = {.method = "POST",
                            .url = b->url,
                            .headers = headers,
                            .n_headers = 4,
                            .body = body,
                            .body_len = (size_t)len,
                            .timeout_ms = 10000};
    mq_httpc_response_t resp;
    mq_error_t err;
    if (mq_httpc_do(&r, "sink", &resp, &err) != MQ_OK) die("baseline POST", &err);
    mq_httpc_response_clear(&resp);
  }
  return NULL;
}

static void produce_all(const char *brokers, const char *org, long n) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    die(errstr, NULL);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) die(errstr, NULL);
  for (long i = 0; i < n; i++) {
    char id[37], booking[37];
    mq_uuid_v4(id);
    mq_uuid_v4(booking);
    Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT, *units[] = {&u};
    u.ticket_type_id = (char *)"00000000-0000-4000-8000-00000000be04";
    u.quantity = 2;
    u.amount_minor = 5000;
    Marquee__Events__V1__BookingConfirmed p = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
    p.booking_id = booking;
    p.event_id = (char *)"00000000-0000-4000-8000-00000000be02";
    p.organization_id = (char *)org;
    p.user_id = (char *)"00000000-0000-4000-8000-00000000be03";
    p.units = units;
    p.n_units = 1;
    p.total_minor = 5000;
    p.currency = (char *)"EUR";
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = time(NULL);
    Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.type = (char *)"bookings.BookingConfirmed";
    env.aggregate_id = booking;
    env.occurred_at = &ts;
    env.actor = (char *)"bench";
    env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
    env.booking_confirmed = &p;
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len);
    marquee__events__v1__envelope__pack(&env, buf);
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("marquee.bookings"), RD_KAFKA_V_KEY(booking, strlen(booking)),
                             RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 10);
    free(buf);
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("kafka flush", NULL);
  rd_kafka_destroy(rk);
}

static int run(const char *target, const char *keys, const char *brokers, long events) {
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(keys, "marquee", "marquee-api", &k, &err) != MQ_OK) die("keys", &err);
  char *token = mq_jwt_sign(k, "00000000-0000-4000-8000-00000000be01", MQ_ROLE_ORGANIZER, 86400);
  mq_client_opts_t co = {.target = target};
  mq_client_t *c = NULL;
  if (mq_client_create(&co, &c, &err) != MQ_OK) die("client", &err);
  mq_call_opts_t o = {.bearer_token = token, .deadline_ms = 30000};
  Marquee__Identity__V1__CreateOrganizationRequest oq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "bench-hooks-%d-%ld", (int)getpid(), (long)time(NULL));
  oq.name = (char *)"Bench Hooks";
  oq.slug = slug;
  Marquee__Identity__V1__Organization *org = NULL;
  if (marquee__identity__v1__organization_service__create_organization__call(c, &oq, &org, &o, &err) != MQ_OK)
    die("create organization", &err);
  mq_sink_t *sink = mq_sink_start();
  if (!sink) die("sink", NULL);
  char url[128];
  snprintf(url, sizeof url, "%s/hooks", mq_sink_url(sink));
  char *types[] = {(char *)"bookings.BookingConfirmed"};
  Marquee__Notifications__V1__CreateWebhookEndpointRequest wq =
      MARQUEE__NOTIFICATIONS__V1__CREATE_WEBHOOK_ENDPOINT_REQUEST__INIT;
  wq.organization_id = org->organization_id;
  wq.url = url;
  wq.event_types = types;
  wq.n_event_types = 1;
  Marquee__Notifications__V1__WebhookEndpointWithSecret *w = NULL;
  if (marquee__notifications__v1__webhook_service__create_webhook_endpoint__call(c, &wq, &w, &o, &err) != MQ_OK)
    die("create endpoint", &err);
  /* 2. the baseline */
  base_t b[WORKERS];
  pthread_t t[WORKERS];
  double t0 = now_s();
  for (int i = 0; i < WORKERS; i++) {
    b[i] = (base_t){url, w->secret, events / WORKERS + (i < events % WORKERS)};
    pthread_create(&t[i], NULL, baseline_thread, &b[i]);
  }
  for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
  double base_s = now_s() - t0;
  size_t base_n = mq_sink_count(sink);
  /* 3. through Kafka and marquee-webhooks */
  produce_all(brokers, org->organization_id, events);
  if (!mq_sink_wait(sink, base_n + (size_t)events, 600000)) {
    fprintf(stderr, "mq-bench-webhooks: only %zu of %ld webhooks arrived in 10 minutes\n", mq_sink_count(sink) - base_n,
            events);
    return 1;
  }
  mq_sink_request_t first, last, r;
  mq_sink_get(sink, base_n, &first);
  mq_sink_get(sink, base_n + (size_t)events - 1, &last);
  double span = last.at_s - first.at_s;
  long ok = 0;
  for (size_t i = base_n; i < base_n + (size_t)events && mq_sink_get(sink, i, &r); i++) {
    char sig[400], want[80], hex[65];
    long long ts = 0;
    if (mq_sink_header(&r, "Marquee-Signature", sig, sizeof sig) && sscanf(sig, "t=%lld", &ts) == 1) {
      mq_webhook_sig_v1(w->secret, ts, r.body, r.body_len, hex);
      snprintf(want, sizeof want, "v1=%s", hex);
      ok += strstr(sig, want) != NULL;
    }
    mq_sink_request_clear(&r);
  }
  double base_rate = (double)events / base_s, rate = span > 0 ? (double)(events - 1) / span : 0;
  printf(
      "{\"events\": %ld, \"baseline_per_s\": %.1f, \"webhooks_per_s\": %.1f, \"ratio\": %.4f, \"delivered\": %ld, "
      "\"signed_ok\": %ld}\n",
      events, base_rate, rate, base_rate > 0 ? rate / base_rate : 0, events, ok);
  mq_sink_request_clear(&first);
  mq_sink_request_clear(&last);
  marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(w, NULL);
  marquee__identity__v1__organization__free_unpacked(org, NULL);
  mq_sink_free(sink);
  mq_client_destroy(c);
  free(token);
  mq_jwt_keys_free(k);
  return ok == events ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "run")) {
    mq_httpc_global_init();
    return run(argv[2], argv[3], argv[4], atol(argv[5]));
  }
  fprintf(stderr, "usage: mq-bench-webhooks run TARGET JWT_KEYS BROKERS EVENTS\n");
  return 2;
}
