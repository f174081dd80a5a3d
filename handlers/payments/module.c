/*
 * module.c — the payments module: PaymentService (payments.c), the
 * gateways it pays through (gateway_*.c) with a circuit breaker each, the
 * routes that pick them (MARQUEE_PAYMENT_ROUTES), the webhook route of the
 * side HTTP port (webhooks.c), the payments repository, and a sweeper
 * thread that ends payments past their deadline and refreshes the exchange
 * rates of display prices (app->fx, MARQUEE_FX_RATES_FILE at start,
 * MARQUEE_FX_RATES_URL every MARQUEE_FX_REFRESH_S). See handlers/mq_module.h.
 *
 * Routes: "CUR=gw,gw;CUR=gw;*=gw" — for a currency its own entry, else
 * "*"; within an entry the gateways in order of preference. A gateway a
 * route names but this server has not configured (Stripe without a key) is
 * left out of that route at start-up, with a log line; an unknown name is
 * a configuration error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "handlers/mq_module.h"
#include "handlers/payments/payments.h"
#include "lib/mq_file.h"
#include "lib/mq_fx.h"
#include "lib/mq_httpc.h"

static double gauge_webhooks(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->webhooks_total);
}
static double gauge_duplicates(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->webhook_duplicates_total);
}
static double gauge_rejected(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->webhooks_rejected_total);
}
static double gauge_fallbacks(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->fallbacks_total);
}
static double gauge_retries(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->retries_total);
}
static double gauge_late_rebooked(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->late_rebooked_total);
}
static double gauge_auto_refunds(void *arg) {
  return (double)atomic_load(&((mq_payments_t *)arg)->auto_refunds_total);
}

mq_pay_gateway_t *mq_payments_gateway(mq_payments_t *ps, const char *name) {
  for (size_t i = 0; ps && name && i < ps->n_gateways; i++)
    if (!strcmp(ps->gateways[i].gw->ops->name, name)) return &ps->gateways[i];
  return NULL;
}

void mq_payments_route(mq_payments_t *ps, const char *currency, const char *country, const char *prefer,
                       char *const *org_order, size_t n_org, mq_pay_gateway_t **out, size_t *n) {
  *n = 0;
  const mq_pay_route_t *r = NULL;
  for (size_t i = 0; i < ps->n_routes && !r; i++)
    if (!strcmp(ps->routes[i].currency, currency)) r = &ps->routes[i];
  for (size_t i = 0; i < ps->n_routes && !r; i++)
    if (!strcmp(ps->routes[i].currency, "*")) r = &ps->routes[i];
  if (!r) return;
  mq_pay_gateway_t *cand[MQ_MAX_GATEWAYS];
  size_t k = 0;
  for (size_t i = 0; i < r->n; i++) {
    mq_pay_gateway_t *g = &ps->gateways[r->gw[i]];
    if (prefer && *prefer && strcmp(g->gw->ops->name, prefer)) continue;
    if (!g->gw->ops->supports(g->gw, currency, country)) continue;
    cand[k++] = g;
  }
  if (!n_org) { /* the route's order */
    for (size_t i = 0; i < k; i++) out[(*n)++] = cand[i];
    return;
  }
  for (size_t o = 0; o < n_org; o++) /* the organization's order, among the route's */
    for (size_t i = 0; i < k; i++)
      if (!strcmp(cand[i]->gw->ops->name, org_order[o])) out[(*n)++] = cand[i];
}

static mq_code_t add_gateway(mq_payments_t *ps, mq_gateway_t *g) {
  const mq_config_t *cfg = ps->app->cfg;
  mq_pay_gateway_t *pg = &ps->gateways[ps->n_gateways++];
  pg->gw = g;
  char gauge[160];
  snprintf(gauge, sizeof gauge, "marquee_payment_gateway_breaker_state{gateway=\"%s\"}", g->ops->name);
  pg->breaker = mq_breaker_new(gauge, (int)cfg->payment_breaker_failures, cfg->payment_breaker_open_ms,
                               (int)cfg->payment_gateway_concurrency);
  return MQ_OK;
}

static mq_code_t parse_routes(mq_payments_t *ps, const char *spec, mq_error_t *err) {
  char *copy = strdup(spec), *save = NULL;
  mq_code_t rc = MQ_OK;
  for (char *entry = strtok_r(copy, ";", &save); entry && rc == MQ_OK; entry = strtok_r(NULL, ";", &save)) {
    while (*entry == ' ') entry++;
    if (!*entry) continue;
    char *eq = strchr(entry, '=');
    if (!eq || ps->n_routes >= MQ_MAX_ROUTES) {
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_PAYMENT_ROUTES", "'%s' is not CUR=gateway,...", entry);
      break;
    }
    *eq = '\0';
    mq_pay_route_t *r = &ps->routes[ps->n_routes];
    memset(r, 0, sizeof *r);
    if (strcmp(entry, "*") && (strlen(entry) != 3)) {
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_PAYMENT_ROUTES", "'%s' is not a currency code or *", entry);
      break;
    }
    snprintf(r->currency, sizeof r->currency, "%s", entry);
    char *s2 = NULL;
    for (char *name = strtok_r(eq + 1, ",", &s2); name; name = strtok_r(NULL, ",", &s2)) {
      while (*name == ' ') name++;
      if (!strcmp(name, "stripe") || !strcmp(name, "manual")) {
        mq_pay_gateway_t *g = mq_payments_gateway(ps, name);
        if (!g) {
          mq_log(MQ_LOG_INFO, "payments.gateway_off", "route %s names %s, which is not configured: left out",
                 r->currency, name);
          continue;
        }
        if (r->n < MQ_MAX_GATEWAYS) r->gw[r->n++] = (int)(g - ps->gateways);
      } else {
        rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_PAYMENT_ROUTES",
                          "'%s' is not a gateway (stripe or manual; free holds need no route)", name);
        break;
      }
    }
    ps->n_routes++;
  }
  free(copy);
  return rc;
}

mq_code_t mq_payments_open(mq_app_t *app, mq_error_t *err) {
  mq_payments_t *ps = calloc(1, sizeof *ps);
  if (!ps) return mq_error_set(err, MQ_INTERNAL, NULL, "out of memory");
  ps->app = app;
  pthread_mutex_init(&ps->mu, NULL);
  pthread_cond_init(&ps->cv, NULL);
  app->payments = ps;
  app->refund_booking = mq_payments_refund_booking;
  mq_error_t e = {0};
  mq_gateway_t *stripe = mq_gateway_stripe_new(app->cfg, &e);
  if (!stripe && e.code != MQ_OK) {
    *err = e;
    return e.code;
  }
  if (stripe) add_gateway(ps, stripe);
  add_gateway(ps, mq_gateway_manual_new(app->cfg, err));
  add_gateway(ps, mq_gateway_free_new(app->cfg, err));
  mq_code_t rc = parse_routes(ps, app->cfg->payment_routes, err);
  if (rc != MQ_OK) return rc;
  app->fx = mq_fx_new(); /* display prices; empty until loaded */
  if (app->cfg->fx_rates_file && *app->cfg->fx_rates_file) {
    char *text;
    size_t rows = 0;
    if ((rc = mq_file_read(app->cfg->fx_rates_file, 1 << 24, "MARQUEE_FX_RATES_FILE", &text, NULL, err)) != MQ_OK)
      return rc;
    rc = mq_fx_load(app->fx, text, &rows, err);
    free(text);
    if (rc != MQ_OK) {
      char why[sizeof err->message];
      snprintf(why, sizeof why, "%s", err->message);
      return mq_error_set(err, rc, "MARQUEE_FX_RATES_FILE", "%s: %s", app->cfg->fx_rates_file, why);
    }
    mq_log(MQ_LOG_INFO, "payments.fx_loaded", "%zu exchange rates from %s", rows, app->cfg->fx_rates_file);
  }
  mq_metrics_gauge("marquee_payment_webhooks_total", "Gateway webhook deliveries accepted", gauge_webhooks, ps);
  mq_metrics_gauge("marquee_payment_webhook_duplicates_total", "Webhook deliveries of an event already applied",
                   gauge_duplicates, ps);
  mq_metrics_gauge("marquee_payment_webhooks_rejected_total", "Webhook deliveries refused (signature, age, body)",
                   gauge_rejected, ps);
  mq_metrics_gauge("marquee_payment_fallbacks_total", "Payments that went to a later gateway of their route",
                   gauge_fallbacks, ps);
  mq_metrics_gauge("marquee_payment_gateway_retries_total",
                   "Gateway calls retried after a transient failure (with backoff and jitter)", gauge_retries, ps);
  mq_metrics_gauge("marquee_payment_late_rebooked_total",
                   "Payments that succeeded after their hold ended and got its tickets again", gauge_late_rebooked, ps);
  mq_metrics_gauge("marquee_payment_auto_refunds_total", "Payments refunded because their hold ended first",
                   gauge_auto_refunds, ps);
  return MQ_OK;
}

/* MARQUEE_FX_RATES_URL, when due: a bad answer keeps the table there is. */
static void refresh_fx(mq_payments_t *ps) {
  const mq_config_t *cfg = ps->app->cfg;
  int64_t now = mq_now_unix_ms();
  if (!cfg->fx_rates_url || !*cfg->fx_rates_url || now < ps->fx_due_ms) return;
  ps->fx_due_ms = now + cfg->fx_refresh_s * 1000;
  mq_httpc_request_t req = {
      .url = cfg->fx_rates_url, .timeout_ms = (int)cfg->payment_gateway_timeout_ms, .max_bytes = 1 << 22};
  mq_httpc_response_t resp = {0};
  mq_error_t err = {0};
  size_t rows = 0;
  mq_code_t rc = mq_httpc_do(&req, "exchange rates", &resp, &err);
  if (rc == MQ_OK && resp.status != 200) rc = mq_error_set(&err, MQ_UNAVAILABLE, NULL, "HTTP %ld", resp.status);
  if (rc == MQ_OK) rc = mq_fx_load(ps->app->fx, resp.body ? resp.body : "", &rows, &err);
  mq_httpc_response_clear(&resp);
  if (rc != MQ_OK)
    mq_log(MQ_LOG_WARN, "payments.fx_refresh_failed", "%s (the previous rates stay)", err.message);
  else
    mq_log(MQ_LOG_INFO, "payments.fx_loaded", "%zu exchange rates from the rates URL", rows);
}

static void *sweeper_main(void *arg) {
  mq_payments_t *ps = arg;
  pthread_mutex_lock(&ps->mu);
  while (!ps->stop) {
    pthread_mutex_unlock(&ps->mu);
    refresh_fx(ps);
    if (atomic_load(&ps->app->indexes_ready)) mq_payments_sweep(ps);
    pthread_mutex_lock(&ps->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (int64_t)ps->app->cfg->hold_sweep_ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    if (!ps->stop) pthread_cond_timedwait(&ps->cv, &ps->mu, &ts);
  }
  pthread_mutex_unlock(&ps->mu);
  return NULL;
}

mq_code_t mq_payments_start(mq_app_t *app, mq_error_t *err) {
  mq_payments_t *ps = app->payments;
  if (pthread_create(&ps->sweeper, NULL, sweeper_main, ps) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the payments sweeper");
  ps->running = true;
  return MQ_OK;
}

void mq_payments_stop(mq_app_t *app) {
  mq_payments_t *ps = app->payments;
  if (!ps || !ps->running) return;
  pthread_mutex_lock(&ps->mu);
  ps->stop = true;
  pthread_cond_broadcast(&ps->cv);
  pthread_mutex_unlock(&ps->mu);
  pthread_join(ps->sweeper, NULL);
  ps->running = false;
}

void mq_payments_close(mq_app_t *app) {
  mq_payments_t *ps = app->payments;
  if (!ps) return;
  mq_metrics_gauge_remove(ps);
  mq_fx_free(app->fx);
  app->fx = NULL;
  for (size_t i = 0; i < ps->n_gateways; i++) {
    mq_breaker_free(ps->gateways[i].breaker);
    ps->gateways[i].gw->ops->destroy(ps->gateways[i].gw);
  }
  pthread_mutex_destroy(&ps->mu);
  pthread_cond_destroy(&ps->cv);
  free(ps);
  app->payments = NULL;
  app->refund_booking = NULL;
}

static const mq_service_row_t services[] = {
    {"marquee.payments.v1.PaymentService", payment_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_payments_indexes, &mq_payments_n_indexes},
};

const mq_module_t mq_payments_module = {
    .name = "payments",
    MQ_MODULE_TABLES(services, indexes),
    .open = mq_payments_open,
    .routes = mq_payments_routes,
    .start = mq_payments_start,
    .stop = mq_payments_stop,
    .close = mq_payments_close,
};
