/*
 * payments_tool.c — the helper of bench/payments.sh (mq-bench-payments).
 *
 *   mq-bench-payments run MODE TARGET HTTP WHSEC TOKEN EVENT_ID TICKET_TYPE_ID CONCURRENCY SECONDS
 *       CONCURRENCY threads, each with its own channel, loop for SECONDS
 *       (after a 1 s warm-up that is not counted):
 *         MODE holds: CreateHold of one unit — the baseline;
 *         MODE paid:  CreateHold, CreatePayment through Stripe (the server
 *                     calls stripe-mock), then the webhook Stripe would send
 *                     (payment_intent.succeeded, signed with WHSEC by Stripe's
 *                     scheme) POSTed to HTTP/webhooks/stripe, whose answer
 *                     "applied" means the booking is confirmed — one paid
 *                     booking end to end.
 *       Prints {"per_s":…,"p50_us":…,"p99_us":…,"errors":…} (latency of one
 *       whole iteration).
 *   mq-bench-payments tax N
 *       N price breakdowns with lib/mq_tax (a mix of jurisdictions, with and
 *       without tax included) and the same loop doing only the arithmetic
 *       of one rate; prints {"ns_per_breakdown":…,"ns_per_baseline":…}.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/mq_client.h"
#include "lib/mq_httpc.h"
#include "lib/mq_money.h"
#include "lib/mq_tax.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/payments/v1/payments.mq-client.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct {
  const char *mode, *target, *http, *whsec, *token, *event, *tt;
  atomic_bool *measuring, *stop;
  int64_t *lat_us;
  size_t n_lat, cap_lat;
  long errors;
  int id;
} worker_t;

static bool one_hold(mq_client_t *c, worker_t *w, Marquee__Bookings__V1__Hold **out) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)w->tt;
  item.quantity = 1;
  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = (char *)w->event;
  q.items = items;
  q.n_items = 1;
  mq_call_opts_t oo = {.bearer_token = w->token, .deadline_ms = 120000};
  mq_error_t err = {0};
  Marquee__Bookings__V1__Hold *h = NULL;
  if (marquee__bookings__v1__booking_service__create_hold__call(c, &q, &h, &oo, &err) != MQ_OK) return false;
  if (out)
    *out = h;
  else
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return true;
}

static bool one_paid(mq_client_t *c, worker_t *w, long seq) {
  Marquee__Bookings__V1__Hold *h = NULL;
  if (!one_hold(c, w, &h)) return false;
  Marquee__Payments__V1__CreatePaymentRequest pq = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  pq.hold_id = h->hold_id;
  pq.amount = h->total;
  pq.gateway = (char *)"stripe";
  mq_call_opts_t oo = {.bearer_token = w->token, .deadline_ms = 120000};
  mq_error_t err = {0};
  Marquee__Payments__V1__Payment *p = NULL;
  bool ok = marquee__payments__v1__payment_service__create_payment__call(c, &pq, &p, &oo, &err) == MQ_OK;
  if (ok) {
    char body[1024];
    int64_t t = (int64_t)time(NULL);
    int bl = snprintf(body, sizeof body,
                      "{\"id\":\"evt_bench_%d_%d_%ld\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":"
                      "{\"id\":\"%s\",\"object\":\"payment_intent\",\"status\":\"succeeded\",\"amount\":%" PRId64
                      ",\"amount_received\":%" PRId64 ",\"currency\":\"eur\",\"metadata\":{\"payment_id\":\"%s\"}}}}",
                      (int)getpid(), w->id, seq, p->gateway_reference, p->amount->amount_minor, p->amount->amount_minor,
                      p->payment_id);
    char payload[1100];
    int pl = snprintf(payload, sizeof payload, "%" PRId64 ".%s", t, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    HMAC(EVP_sha256(), w->whsec, (int)strlen(w->whsec), (unsigned char *)payload, (size_t)pl, mac, &ml);
    char sig[300];
    int sn = snprintf(sig, sizeof sig, "Stripe-Signature: t=%" PRId64 ",v1=", t);
    for (unsigned i = 0; i < ml; i++) sn += snprintf(sig + sn, sizeof sig - (size_t)sn, "%02x", mac[i]);
    char url[128];
    snprintf(url, sizeof url, "http://%s/webhooks/stripe", w->http);
    const char *headers[] = {sig, "Content-Type: application/json"};
    mq_httpc_request_t r = {.method = "POST",
                            .url = url,
                            .headers = headers,
                            .n_headers = 2,
                            .body = body,
                            .body_len = (size_t)bl,
                            .timeout_ms = 120000};
    mq_httpc_response_t resp = {0};
    ok = mq_httpc_do(&r, "webhook", &resp, &err) == MQ_OK && resp.status == 200 && resp.body &&
         strstr(resp.body, "applied");
    mq_httpc_response_clear(&resp);
    marquee__payments__v1__payment__free_unpacked(p, NULL);
  }
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  return ok;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  mq_client_opts_t o = {.target = w->target};
  mq_client_t *c = NULL;
  mq_error_t err;
  if (mq_client_create(&o, &c, &err) != MQ_OK) return NULL;
  bool paid = !strcmp(w->mode, "paid");
  for (long seq = 0; !atomic_load(w->stop); seq++) {
    int64_t t0 = now_ns();
    bool ok = paid ? one_paid(c, w, seq) : one_hold(c, w, NULL);
    int64_t us = (now_ns() - t0) / 1000;
    if (!atomic_load(w->measuring)) continue;
    if (!ok) {
      w->errors++;
      continue;
    }
    if (w->n_lat == w->cap_lat) w->lat_us = realloc(w->lat_us, (w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 4096) * 8);
    w->lat_us[w->n_lat++] = us;
  }
  mq_client_destroy(c);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int run(char **argv) {
  int conc = atoi(argv[9]), secs = atoi(argv[10]);
  atomic_bool measuring = false, stop = false;
  worker_t *ws = calloc((size_t)conc, sizeof *ws);
  pthread_t *th = calloc((size_t)conc, sizeof *th);
  for (int i = 0; i < conc; i++) {
    ws[i] = (worker_t){.mode = argv[2],
                       .target = argv[3],
                       .http = argv[4],
                       .whsec = argv[5],
                       .token = argv[6],
                       .event = argv[7],
                       .tt = argv[8],
                       .measuring = &measuring,
                       .stop = &stop,
                       .id = i};
    pthread_create(&th[i], NULL, worker, &ws[i]);
  }
  sleep(1);
  atomic_store(&measuring, true);
  int64_t t0 = now_ns();
  sleep((unsigned)secs);
  atomic_store(&measuring, false);
  double wall = (double)(now_ns() - t0) / 1e9;
  atomic_store(&stop, true);
  size_t n = 0;
  long errors = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(th[i], NULL);
    n += ws[i].n_lat;
    errors += ws[i].errors;
  }
  int64_t *all = malloc((n ? n : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < conc; i++) {
    if (ws[i].n_lat) memcpy(all + k, ws[i].lat_us, ws[i].n_lat * sizeof *all);
    k += ws[i].n_lat;
    free(ws[i].lat_us);
  }
  qsort(all, n, sizeof *all, cmp_i64);
  printf("{\"per_s\":%.1f,\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64 ",\"errors\":%ld,\"done\":%zu}\n",
         (double)n / wall, n ? all[n / 2] : 0, n ? all[(n * 99) / 100] : 0, errors, n);
  free(all);
  free(ws);
  free(th);
  return 0;
}

static int tax(long n) {
  mq_tax_table_t *t = NULL;
  mq_error_t err = {0};
  if (mq_tax_table_parse(mq_tax_default_rows, &t, &err) != MQ_OK) {
    fprintf(stderr, "tax table: %s\n", err.message);
    return 1;
  }
  static const char *const places[] = {"CA-QC", "CA-ON", "DE", "GB", "JP", "US-NY", "CA-BC", "NG"};
  int64_t at = (int64_t)time(NULL) * 1000, sink = 0;
  int64_t t0 = now_ns();
  for (long i = 0; i < n; i++) {
    mq_tax_result_t r;
    mq_tax_compute(t, places[i & 7], at, MQ_SUPPLY_ADMISSION, 1000 + (i & 1023), i & 1, 0, NULL, &r, &err);
    sink += r.total_minor;
  }
  int64_t t1 = now_ns();
  for (long i = 0; i < n; i++) {
    int64_t v;
    mq_money_ppm(1000 + (i & 1023), 130000, &v);
    sink += v;
  }
  int64_t t2 = now_ns();
  printf("{\"ns_per_breakdown\":%.1f,\"ns_per_baseline\":%.1f,\"sink\":%" PRId64 "}\n", (double)(t1 - t0) / (double)n,
         (double)(t2 - t1) / (double)n, sink % 10);
  mq_tax_table_free(t);
  return 0;
}

int main(int argc, char **argv) {
  mq_httpc_global_init();
  if (argc == 11 && !strcmp(argv[1], "run") && (!strcmp(argv[2], "holds") || !strcmp(argv[2], "paid")))
    return run(argv);
  if (argc == 3 && !strcmp(argv[1], "tax")) return tax(atol(argv[2]));
  fprintf(
      stderr,
      "usage: mq-bench-payments run holds|paid TARGET HTTP WHSEC TOKEN EVENT_ID TICKET_TYPE_ID CONCURRENCY SECONDS\n"
      "       mq-bench-payments tax N\n");
  return 2;
}
