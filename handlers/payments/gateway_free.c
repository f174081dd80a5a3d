/*
 * gateway_free.c — the gateway of a hold that costs nothing: it "succeeds"
 * at once, so a client pays for every hold the same way (CreatePayment)
 * and every booking has a payment record. Refuses any amount above zero:
 * the routing only ever gives it free holds. See gateway.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"
#include "handlers/payments/gateway.h"
#include "lib/mq_validate.h"

static bool free_supports(const mq_gateway_t *g, const char *currency, const char *country) {
  (void)g, (void)country;
  return mq_currency_minor_units(currency) >= 0;
}

static mq_code_t free_create(mq_gateway_t *g, const mq_gw_intent_req_t *r, mq_gw_intent_t *out, mq_error_t *err) {
  (void)g;
  if (r->amount_minor != 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "the free gateway takes no money");
  memset(out, 0, sizeof *out);
  snprintf(out->ref, sizeof out->ref, "free-%s", r->payment_id);
  snprintf(out->currency, sizeof out->currency, "%s", r->currency);
  snprintf(out->payment_id, sizeof out->payment_id, "%s", r->payment_id);
  out->status = MQ_GW_SUCCEEDED;
  return MQ_OK;
}

static mq_code_t free_retrieve(mq_gateway_t *g, const char *ref, mq_gw_intent_t *out, mq_error_t *err) {
  (void)g, (void)err;
  memset(out, 0, sizeof *out);
  snprintf(out->ref, sizeof out->ref, "%s", ref);
  out->status = MQ_GW_SUCCEEDED;
  return MQ_OK;
}

static mq_code_t free_cancel(mq_gateway_t *g, const char *ref, const char *idem, mq_gw_intent_t *out, mq_error_t *err) {
  (void)g, (void)ref, (void)idem, (void)out;
  return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id", "a free payment succeeds at once");
}

static mq_code_t free_refund(mq_gateway_t *g, const char *ref, int64_t amount_minor, const char *currency,
                             const char *idem, mq_gw_refund_t *out, mq_error_t *err) {
  (void)g, (void)ref, (void)amount_minor, (void)currency, (void)idem, (void)out;
  return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id", "nothing was paid");
}

static void free_destroy(mq_gateway_t *g) {
  free(g);
}

static const mq_gateway_ops_t ops = {
    .name = "free",
    .supports = free_supports,
    .create_intent = free_create,
    .retrieve = free_retrieve,
    .cancel = free_cancel,
    .refund = free_refund,
    .destroy = free_destroy,
};

mq_gateway_t *mq_gateway_free_new(const mq_config_t *cfg, mq_error_t *err) {
  (void)cfg, (void)err;
  mq_gateway_t *g = mq_xcalloc(1, sizeof *g);
  g->ops = &ops;
  return g;
}
