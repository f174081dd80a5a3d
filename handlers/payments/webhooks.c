/*
 * webhooks.c — POST /webhooks/<gateway> on the side HTTP port: a gateway
 * tells Marquee what happened to a payment or a refund.
 *
 * Each delivery is verified by the gateway's own scheme before anything is
 * read (gateway.h, contract 4): a bad signature, a timestamp outside the
 * tolerance or a body that is not an event is answered 400 and changes
 * nothing. A verified event is recorded once by its id
 * (payment_webhooks), then applied (mq_payments_apply): applying is itself
 * idempotent (the outcome records of payments.h P3), so a redelivery — or
 * ten at once, on any number of servers — changes nothing twice, and an
 * older event arriving after a newer one cannot undo it (a final state is
 * never left). Answers: 200 applied, duplicate, or not ours (an event about
 * a payment Marquee does not know is acknowledged so the gateway stops
 * sending it); 400 untrusted; 503 when the store is down, so the gateway
 * retries later. The body is at most 256 KiB. (The module's other side-port
 * route, GET /receipts/{payment}.pdf, is receipts.c's.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "handlers/payments/payments.h"
#include "lib/mq_http.h"

#define MAX_BODY (256 * 1024)

static void answer(mq_http_response_t *r, int status, const char *body) {
  r->status = status;
  r->content_type = "application/json";
  size_t n = strlen(body) + 32;
  r->body = malloc(n);
  r->body_len = r->body ? (size_t)snprintf(r->body, n, "{\"result\":\"%s\"}\n", body) : 0;
}

static const char *header_of(void *arg, const char *name) {
  return mq_http_request_header(arg, name);
}

static void webhook_route(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  (void)method;
  mq_payments_t *ps = arg;
  const char *name = path + strlen("/webhooks/");
  mq_pay_gateway_t *g = mq_payments_gateway(ps, name);
  if (!g || !g->gw->ops->parse_webhook) return answer(r, 404, "no such gateway");
  mq_gw_event_t ev;
  mq_error_t err = {0};
  mq_code_t rc =
      g->gw->ops->parse_webhook(g->gw, header_of, r, r->request_body, r->request_body_len, mq_now_unix_ms(), &ev, &err);
  if (rc != MQ_OK) {
    atomic_fetch_add(&ps->webhooks_rejected_total, 1);
    mq_log(MQ_LOG_WARN, "payments.webhook_refused", "%s: %s%s%s", name, err.field, err.field[0] ? ": " : "",
           err.message);
    return answer(r, rc == MQ_INVALID_ARGUMENT ? 400 : 503, "refused");
  }
  atomic_fetch_add(&ps->webhooks_total, 1);
  mq_app_t *app = ps->app;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_payment_t p;
  const char *pref = ev.kind == MQ_GW_EVENT_PAYMENT ? ev.intent.ref : ev.refund_payment_ref;
  rc = MQ_NOT_FOUND;
  if (ev.kind == MQ_GW_EVENT_PAYMENT && ev.intent.payment_id[0])
    rc = mq_payments_get(app->store, ev.intent.payment_id, &a, &p, &err);
  if (rc == MQ_NOT_FOUND && ev.kind != MQ_GW_EVENT_OTHER && pref[0])
    rc = mq_payments_by_ref(app->store, name, pref, &a, &p, &err);
  if (rc == MQ_OK && strcmp(p.gateway, name)) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND || ev.kind == MQ_GW_EVENT_OTHER) {
    mq_arena_release(&a);
    return answer(r, 200, "ignored");
  }
  if (rc == MQ_OK) {
    rc = mq_payment_webhook_record(app->store, name, ev.id, ev.type, p.id, &err);
    if (rc == MQ_ALREADY_EXISTS) {
      bool applied = false;
      rc = mq_payment_webhook_applied(app->store, name, ev.id, &applied, false, &err);
      if (rc == MQ_OK && applied) {
        atomic_fetch_add(&ps->webhook_duplicates_total, 1);
        mq_arena_release(&a);
        return answer(r, 200, "duplicate");
      }
    }
  }
  if (rc == MQ_OK) {
    if (ev.kind == MQ_GW_EVENT_PAYMENT)
      rc = mq_payments_apply(ps, &p, &ev.intent, "webhook", "system", NULL, &a, &err);
    else
      rc = mq_payments_refund_update(ps, &p, &ev.refund, &a, &err);
    if (rc == MQ_FAILED_PRECONDITION) { /* a state it cannot take (logged): acknowledge, nothing to retry */
      mq_log(MQ_LOG_WARN, "payments.webhook_not_applied", "%s %s for payment %s: %s", name, ev.type, p.id, err.message);
      rc = MQ_OK;
    }
  }
  if (rc == MQ_OK) mq_payment_webhook_applied(app->store, name, ev.id, NULL, true, &err);
  mq_arena_release(&a);
  if (rc != MQ_OK) {
    mq_log(MQ_LOG_WARN, "payments.webhook_failed", "%s %s: %s", name, ev.type, err.message);
    return answer(r, 503, "retry");
  }
  answer(r, 200, "applied");
}

/* Declared in payments.h. */
void mq_payments_routes(mq_app_t *app, mq_http_t *http) {
  mq_payments_t *ps = app->payments;
  for (size_t i = 0; i < ps->n_gateways; i++) {
    if (!ps->gateways[i].gw->ops->parse_webhook) continue;
    char path[96];
    snprintf(path, sizeof path, "/webhooks/%s", ps->gateways[i].gw->ops->name);
    mq_http_route_post(http, path, webhook_route, ps, MAX_BODY);
  }
  mq_receipts_routes(app, http);
}
