/*
 * webhooks.c — marquee-webhooks, the consumer that POSTs an organization's
 * domain events to the endpoints it subscribed (WebhookService), signed,
 * retried, logged. The receiver's side is docs/WEBHOOKS.md.
 *
 * Two halves in one process:
 *   1. the consumer loop (group marquee-webhooks; the catalog, bookings,
 *      payments, users and notifications topics): for an event of a type
 *      webhooks offer, find its organization (the payload's
 *      organization_id, else its catalog event's), read the organization's
 *      enabled endpoints, and create one delivery per subscribed endpoint
 *      with the JSON body (store/notifications/webhooks_store.h). The loop
 *      never waits on an endpoint: a slow or failing receiver holds up no
 *      other organization and no partition.
 *   2. the dispatcher: MARQUEE_WEBHOOK_WORKERS threads sending deliveries,
 *      fed by the loop (new deliveries at once) and by a poller reading the
 *      pending deliveries that are due (retries, and whatever a stopped
 *      process left). Per attempt: claim attempt n (an insert: one process
 *      makes it), resolve and check the URL (lib/mq_outbound.h; the
 *      connection is pinned to the checked address), POST with the
 *      signature, record the attempt, then the delivery: delivered on 2xx;
 *      else retried after an exponential backoff with jitter
 *      (MARQUEE_WEBHOOK_BACKOFF_MS doubling, capped at an hour) until
 *      MARQUEE_WEBHOOK_RETRY_HOURS have passed, then failed. A circuit
 *      breaker per endpoint: after MARQUEE_WEBHOOK_BREAKER_FAILURES
 *      failures in a row the endpoint's deliveries are postponed (no
 *      attempt spent) until one probe may go.
 *
 * Invariants:
 *   1. One delivery per (event, endpoint), whatever the redeliveries,
 *      replays or processes (webhooks_store.h invariant 1); one attempt n
 *      per delivery (invariant 2). The one window: a 2xx whose record was
 *      lost (a crash right after it) is sent again; receivers dedupe on
 *      Marquee-Webhook-Id.
 *   2. The secret signs and is never logged; logs name endpoint and event
 *      ids and the URL's host, never its path or query (they may hold the
 *      receiver's own token) nor the body.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mq_consumer.h"
#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_breaker.h"
#include "lib/mq_event_catalog.h"
#include "lib/mq_httpc.h"
#include "lib/mq_outbound.h"
#include "lib/mq_pbjson.h"
#include "lib/mq_webhook_sig.h"
#include "store/catalog/events_store.h"
#include "store/notifications/webhooks_store.h"

extern char **environ;

#define QUEUE_MAX 4096
#define POLL_MS 1000
#define BACKOFF_CAP_MS 3600000LL

typedef struct breaker_row {
  char id[40];
  mq_breaker_t *b;
  struct breaker_row *next;
} breaker_row_t;

typedef struct {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_netlist_t *nets;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *queue[QUEUE_MAX]; /* delivery ids waiting for a worker */
  size_t head, n;
  char **busy; /* ids queued or being sent (the poller does not add them twice) */
  size_t n_busy, cap_busy;
  bool stop;
  breaker_row_t *breakers;
  pthread_t *workers, poller;
  _Atomic long long delivered, failed, retried, postponed, created;
} hooks_t;

/* ---- the queue ---------------------------------------------------------------------- */

static bool busy_has(hooks_t *h, const char *id) {
  for (size_t i = 0; i < h->n_busy; i++)
    if (!strcmp(h->busy[i], id)) return true;
  return false;
}

/* Queues a delivery unless it is queued or being sent already (false when
 * the queue is full: the poller finds it later). */
static bool enqueue(hooks_t *h, const char *id) {
  pthread_mutex_lock(&h->mu);
  bool ok = false;
  if (!busy_has(h, id) && h->n < QUEUE_MAX) {
    char *copy = mq_xmalloc(strlen(id) + 1);
    strcpy(copy, id);
    h->queue[(h->head + h->n++) % QUEUE_MAX] = copy;
    if (h->n_busy == h->cap_busy) {
      h->cap_busy = h->cap_busy ? h->cap_busy * 2 : 64;
      h->busy = mq_xrealloc(h->busy, h->cap_busy * sizeof *h->busy);
    }
    h->busy[h->n_busy++] = copy;
    pthread_cond_signal(&h->cv);
    ok = true;
  }
  pthread_mutex_unlock(&h->mu);
  return ok;
}

static char *dequeue(hooks_t *h) {
  pthread_mutex_lock(&h->mu);
  while (!h->stop && h->n == 0) pthread_cond_wait(&h->cv, &h->mu);
  char *id = NULL;
  if (!h->stop) {
    id = h->queue[h->head];
    h->head = (h->head + 1) % QUEUE_MAX;
    h->n--;
  }
  pthread_mutex_unlock(&h->mu);
  return id;
}

static void done_with(hooks_t *h, char *id) {
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->n_busy; i++)
    if (h->busy[i] == id) {
      h->busy[i] = h->busy[--h->n_busy];
      break;
    }
  pthread_mutex_unlock(&h->mu);
  free(id);
}

static mq_breaker_t *breaker_for(hooks_t *h, const char *endpoint_id) {
  pthread_mutex_lock(&h->mu);
  breaker_row_t *r = h->breakers;
  while (r && strcmp(r->id, endpoint_id)) r = r->next;
  if (!r) {
    r = mq_xcalloc(1, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", endpoint_id);
    r->b = mq_breaker_new(NULL, h->cfg->webhook_breaker_failures, h->cfg->webhook_breaker_open_ms, 1 << 20);
    r->next = h->breakers;
    h->breakers = r;
  }
  pthread_mutex_unlock(&h->mu);
  return r->b;
}

/* ---- one attempt -------------------------------------------------------------------- */

/* The signature header: the current secret, and the previous one during its grace period. */
static void sign(const mq_wh_endpoint_t *e, int64_t now_ms, const char *body, size_t len, char *out, size_t n) {
  const char *previous = e->previous_until_ms > now_ms ? e->previous_secret : NULL;
  mq_webhook_sig_header(e->secret, previous, now_ms / 1000, body, len, out, n);
}

/* The outcome of attempt n: recorded on the attempt, then on the delivery. */
static void outcome(hooks_t *h, const mq_wh_delivery_t *d, int32_t n, bool ok, bool final, int32_t status,
                    const char *why, int32_t duration_ms) {
  mq_error_t err;
  int64_t now = mq_now_unix_ms();
  if (mq_wh_attempt_finish(h->store, d->id, n, status, ok ? "" : why, duration_ms, &err) != MQ_OK)
    mq_log(MQ_LOG_WARN, "webhooks.record", "delivery %s attempt %d: %s", d->id, n, err.message);
  const char *state = "delivered";
  int64_t next = now;
  if (!ok) {
    next = now + mq_backoff_ms(n, h->cfg->webhook_backoff_ms, BACKOFF_CAP_MS);
    state = final || next > d->window_from_ms + (int64_t)h->cfg->webhook_retry_hours * 3600000LL ? "failed" : "pending";
  }
  mq_code_t rc = mq_wh_delivery_record(h->store, d->id, n, state, next, status, ok ? "" : why, &err);
  if (rc != MQ_OK && rc != MQ_NOT_FOUND)
    mq_log(MQ_LOG_WARN, "webhooks.record", "delivery %s attempt %d: %s", d->id, n, err.message);
  if (ok)
    atomic_fetch_add(&h->delivered, 1);
  else if (!strcmp(state, "failed"))
    atomic_fetch_add(&h->failed, 1);
  else
    atomic_fetch_add(&h->retried, 1);
  mq_log(ok ? MQ_LOG_INFO : MQ_LOG_WARN, ok ? "webhooks.delivered" : "webhooks.attempt_failed",
         "delivery %s attempt %d: %s%s%s", d->id, n, ok ? "delivered" : state, ok ? "" : ": ", ok ? "" : why);
}

static void attempt(hooks_t *h, const char *id) {
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  mq_wh_delivery_t d;
  mq_wh_endpoint_t e;
  int64_t now = mq_now_unix_ms();
  if (mq_wh_delivery_get(h->store, id, &a, &d, &err) != MQ_OK || strcmp(d.state, "pending") || d.next_ms > now) {
    mq_arena_release(&a);
    return;
  }
  int32_t n = d.attempts + 1;
  mq_code_t erc = mq_wh_endpoint_get(h->store, d.endpoint_id, &a, &e, &err);
  if (erc != MQ_OK && erc != MQ_NOT_FOUND) { /* the store is away: the poller tries again */
    mq_arena_release(&a);
    return;
  }
  bool gone = erc == MQ_NOT_FOUND || !e.enabled;
  mq_breaker_t *b = gone ? NULL : breaker_for(h, d.endpoint_id);
  if (b && !mq_breaker_allow(b, now)) { /* the endpoint keeps failing: wait without spending an attempt */
    mq_wh_delivery_postpone(h->store, d.id, d.attempts, now + h->cfg->webhook_breaker_open_ms, &err);
    atomic_fetch_add(&h->postponed, 1);
    mq_arena_release(&a);
    return;
  }
  int64_t at = 0;
  bool done = false;
  mq_code_t rc = mq_wh_attempt_begin(h->store, d.id, d.organization_id, n, now, &at, &done, &err);
  if (rc == MQ_ALREADY_EXISTS) {
    int64_t lease = 2LL * h->cfg->webhook_timeout_ms + 5000;
    if (done || now - at >= lease) /* made, or its process died: count it, and go on from n + 1 */
      mq_wh_delivery_record(h->store, d.id, n, "pending", now, 0, "the attempt's outcome was not recorded", &err);
    if (b) mq_breaker_record(b, true, now); /* not this process's call: the probe ticket goes back */
    mq_arena_release(&a);
    return;
  }
  if (rc != MQ_OK) {
    if (b) mq_breaker_record(b, true, now);
    mq_arena_release(&a);
    return;
  }
  if (gone) {
    outcome(h, &d, n, false, true, 0, erc == MQ_NOT_FOUND ? "the endpoint was deleted" : "the endpoint is disabled",
            0); /* nothing more to try: failed now */
    mq_arena_release(&a);
    return;
  }
  char pin[400], why[300] = "";
  int32_t status = 0;
  bool ok = false;
  int64_t t0 = mq_now_ms();
  rc = mq_outbound_pin(e.url, h->nets, pin, sizeof pin, &err);
  if (rc != MQ_OK) {
    snprintf(why, sizeof why, "%s", err.message);
  } else {
    size_t len = strlen(d.body);
    char sig[400], h_id[200], h_type[160], h_sig[440];
    sign(&e, mq_now_unix_ms(), d.body, len, sig, sizeof sig);
    snprintf(h_id, sizeof h_id, "Marquee-Webhook-Id: %s", d.event_id);
    snprintf(h_type, sizeof h_type, "Marquee-Event-Type: %s", d.event_type);
    snprintf(h_sig, sizeof h_sig, "Marquee-Signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", h_id, h_type, h_sig};
    mq_httpc_request_t req = {.method = "POST",
                              .url = e.url,
                              .headers = headers,
                              .n_headers = 4,
                              .body = d.body,
                              .body_len = len,
                              .timeout_ms = h->cfg->webhook_timeout_ms,
                              .max_bytes = 1 << 20,
                              .resolve = pin};
    mq_httpc_response_t resp;
    rc = mq_httpc_do(&req, "the endpoint", &resp, &err);
    if (rc != MQ_OK) {
      snprintf(why, sizeof why, "%s", err.message);
    } else {
      status = (int32_t)resp.status;
      ok = status >= 200 && status < 300;
      if (!ok) snprintf(why, sizeof why, "the endpoint answered HTTP %d", status);
      mq_httpc_response_clear(&resp);
    }
  }
  mq_breaker_record(b, ok, mq_now_unix_ms());
  char host[200];
  if (!ok) {
    mq_url_host(e.url, host, sizeof host);
    mq_log(MQ_LOG_DEBUG, "webhooks.failed_at", "delivery %s: endpoint %s at %s", d.id, e.id, host);
  }
  outcome(h, &d, n, ok, false, status, why, (int32_t)(mq_now_ms() - t0));
  mq_arena_release(&a);
}

static void *worker_main(void *arg) {
  hooks_t *h = arg;
  for (char *id; (id = dequeue(h));) {
    attempt(h, id);
    done_with(h, id);
  }
  return NULL;
}

static void *poller_main(void *arg) {
  hooks_t *h = arg;
  for (;;) {
    pthread_mutex_lock(&h->mu);
    if (!h->stop) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += POLL_MS / 1000;
      pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    bool stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    if (stop) return NULL;
    mq_arena_t a;
    mq_arena_init(&a);
    mq_error_t err;
    mq_wh_delivery_t *v;
    size_t n = 0;
    if (mq_wh_delivery_due(h->store, mq_now_unix_ms(), QUEUE_MAX / 2, &a, &v, &n, &err) == MQ_OK)
      for (size_t i = 0; i < n; i++) enqueue(h, v[i].id);
    mq_arena_release(&a);
  }
}

/* ---- the consumer half -------------------------------------------------------------- */

static const ProtobufCMessage *payload_of(const Marquee__Events__V1__Envelope *ev) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&marquee__events__v1__envelope__descriptor, (unsigned)ev->payload_case);
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE) return NULL;
  return *(ProtobufCMessage *const *)((const char *)ev + f->offset);
}

static const char *string_field(const ProtobufCMessage *m, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
  const char *s = *(char *const *)((const char *)m + f->offset);
  return s && *s ? s : NULL;
}

static bool subscribed(const mq_wh_endpoint_t *e, const char *type) {
  for (size_t i = 0; i < e->n_event_types; i++)
    if (!strcmp(e->event_types[i], "*") || !strcmp(e->event_types[i], type)) return true;
  return false;
}

/* The JSON body: {"id", "type", "created", "organizationId", "data"}. */
static char *body_of(const Marquee__Events__V1__Envelope *ev, const char *org, const ProtobufCMessage *payload) {
  char *buf = NULL, *data = mq_pbjson(payload, NULL);
  size_t len = 0;
  FILE *out = mq_xmemstream(&buf, &len);
  fputs("{\"id\":", out);
  mq_pbjson_string(out, ev->event_id, strlen(ev->event_id));
  fputs(",\"type\":", out);
  mq_pbjson_string(out, ev->type, strlen(ev->type));
  if (ev->occurred_at) {
    char *ts = mq_pbjson(&ev->occurred_at->base, NULL);
    fprintf(out, ",\"created\":%s", ts);
    free(ts);
  }
  fputs(",\"organizationId\":", out);
  mq_pbjson_string(out, org, strlen(org));
  fprintf(out, ",\"data\":%s}", data);
  fclose(out);
  free(data);
  return buf;
}

static mq_code_t on_event(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                          mq_error_t *err) {
  (void)msg;
  hooks_t *h = ctx;
  if (!ev->type || !mq_webhook_event_type_ok(ev->type) || !ev->event_id || !*ev->event_id) return MQ_OK;
  const ProtobufCMessage *payload = payload_of(ev);
  if (!payload) return MQ_OK;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_code_t rc = MQ_OK;
  const char *org = string_field(payload, "organization_id");
  const char *event_id = string_field(payload, "event_id");
  if (!org && event_id) { /* the catalog event's organization */
    Marquee__Catalog__V1__Event *e = NULL;
    rc = mq_events_get(h->store, event_id, &a, &e, err);
    if (rc == MQ_NOT_FOUND) rc = MQ_OK;
    if (rc == MQ_OK && e && e->organization_id && *e->organization_id) org = e->organization_id;
  }
  mq_wh_endpoint_t *eps = NULL;
  size_t n = 0;
  if (rc == MQ_OK && org) rc = mq_wh_endpoint_list(h->store, org, true, &a, &eps, &n, err);
  char *body = NULL;
  for (size_t i = 0; rc == MQ_OK && i < n; i++) {
    if (!subscribed(&eps[i], ev->type)) continue;
    if (!body) body = body_of(ev, org, payload);
    char id[120];
    snprintf(id, sizeof id, "%s:%s", ev->event_id, eps[i].id);
    mq_wh_delivery_t d = {.id = id,
                          .organization_id = (char *)org,
                          .endpoint_id = eps[i].id,
                          .event_id = ev->event_id,
                          .event_type = ev->type,
                          .body = body,
                          .created_ms = mq_now_unix_ms()};
    rc = mq_wh_delivery_create(h->store, &d, err);
    if (rc == MQ_ALREADY_EXISTS) { /* a redelivered or replayed event: made before */
      rc = MQ_OK;
      continue;
    }
    if (rc == MQ_OK) {
      atomic_fetch_add(&h->created, 1);
      enqueue(h, id);
    }
  }
  free(body);
  mq_arena_release(&a);
  return rc;
}

static const mq_event_route_t routes[] = {{"*", on_event}};
static const char *const topics[] = {"marquee.events", "marquee.bookings",      "marquee.payments",
                                     "marquee.users",  "marquee.notifications", NULL};

#define GAUGE(field)                                      \
  static double gauge_##field(void *arg) {                \
    return (double)atomic_load(&((hooks_t *)arg)->field); \
  }
GAUGE(delivered)
GAUGE(failed)
GAUGE(retried)
GAUGE(postponed)
GAUGE(created)

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--version")) {
    printf("marquee-webhooks %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
    return 0;
  }
  mq_httpc_global_init(); /* before any thread */
  if (sodium_init() < 0) return 2;
  mq_config_t cfg;
  mq_error_t err;
  if (!mq_config_start("marquee-webhooks", &cfg, environ)) return 2;
  hooks_t h = {.cfg = &cfg};
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  int rc = 1;
  size_t started = 0;
  bool polling = false;
  if (mq_netlist_parse(cfg.webhook_allowed_nets, "MARQUEE_WEBHOOK_ALLOWED_NETS", &h.nets, &err) != MQ_OK ||
      mq_store_open(cfg.mongo_uri, cfg.mongo_db, (uint32_t)cfg.mongo_pool_max, &h.store, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "webhooks.start", "%s: %s", err.field, err.message);
    goto cleanup;
  }
  if (mq_store_ensure_indexes(h.store, mq_webhooks_indexes, mq_webhooks_n_indexes, &err) != MQ_OK)
    mq_log(MQ_LOG_WARN, "webhooks.indexes", "could not create indexes yet (%s); continuing", err.message);
  mq_metrics_gauge("marquee_webhook_deliveries_created_total",
                   "Webhook deliveries created (one per event and endpoint)", gauge_created, &h);
  mq_metrics_gauge("marquee_webhook_delivered_total", "Webhook attempts answered 2xx", gauge_delivered, &h);
  mq_metrics_gauge("marquee_webhook_retries_total", "Webhook attempts that failed and will be retried", gauge_retried,
                   &h);
  mq_metrics_gauge("marquee_webhook_failed_total", "Webhook deliveries given up after the retry window", gauge_failed,
                   &h);
  mq_metrics_gauge("marquee_webhook_postponed_total", "Webhook deliveries postponed by an open endpoint breaker",
                   gauge_postponed, &h);
  h.workers = mq_xcalloc((size_t)cfg.webhook_workers, sizeof *h.workers);
  for (; started < (size_t)cfg.webhook_workers; started++)
    if (pthread_create(&h.workers[started], NULL, worker_main, &h)) break;
  polling = pthread_create(&h.poller, NULL, poller_main, &h) == 0;
  mq_consumer_opts_t o = {.cfg = &cfg,
                          .name = "webhooks",
                          .topics = topics,
                          .routes = routes,
                          .n_routes = sizeof routes / sizeof *routes,
                          .ctx = &h,
                          .store = h.store,
                          .dedupe = false}; /* the delivery records are the dedupe, per endpoint */
  rc = mq_consumer_run(&o);
cleanup:
  pthread_mutex_lock(&h.mu);
  h.stop = true;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  for (size_t i = 0; i < started; i++) pthread_join(h.workers[i], NULL);
  if (polling) pthread_join(h.poller, NULL);
  for (size_t i = 0; i < h.n; i++) free(h.queue[(h.head + i) % QUEUE_MAX]);
  free(h.busy);
  free(h.workers);
  for (breaker_row_t *r = h.breakers, *next; r; r = next) {
    next = r->next;
    mq_breaker_free(r->b);
    free(r);
  }
  mq_metrics_gauge_remove(&h);
  mq_store_close(h.store);
  mq_netlist_free(h.nets);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
  mq_config_free(&cfg);
  mq_log_stop();
  return rc;
}
