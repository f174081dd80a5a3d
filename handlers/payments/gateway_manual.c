/*
 * gateway_manual.c — offline payments: a bank transfer, or paying at the
 * door. Nothing is charged by Marquee: the buyer gets instructions with a
 * short reference to quote, the hold stays reserved until the payment's
 * deadline (MARQUEE_MANUAL_PAYMENT_WINDOW_S), and an owner or manager of
 * the organization marks the money received (MarkPaymentReceived), which
 * confirms the booking. A refund is recorded at once: the organizer returns
 * the money the way it came. See gateway.h for the contract.
 *
 * The reference ("MQ-" and 10 characters of Crockford base 32, derived from
 * the payment id) is stable: a retry of CreatePayment gets the same one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"
#include "handlers/payments/gateway.h"
#include "lib/mq_money.h"
#include "lib/mq_validate.h"

typedef struct {
  char *instructions; /* template: {reference}, {amount} */
} manual_t;

static bool manual_supports(const mq_gateway_t *g, const char *currency, const char *country) {
  (void)g, (void)country;
  return mq_currency_minor_units(currency) >= 0;
}

/* "MQ-" + 10 base-32 characters of the id's hex digits. */
static void reference_of(const char *payment_id, char out[16]) {
  static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  uint64_t v = 1469598103934665603ULL; /* FNV-1a over the id */
  for (const char *p = payment_id; *p; p++) v = (v ^ (unsigned char)*p) * 1099511628211ULL;
  memcpy(out, "MQ-", 3);
  for (int i = 0; i < 10; i++, v >>= 5) out[3 + i] = b32[v & 31];
  out[13] = '\0';
}

/* The template with {reference} and {amount} filled in. */
static void fill(const char *tmpl, const char *ref, const char *amount, char *out, size_t n) {
  size_t o = 0;
  for (const char *p = tmpl; *p && o + 1 < n;) {
    const char *val = NULL;
    size_t skip = 0;
    if (!strncmp(p, "{reference}", 11)) val = ref, skip = 11;
    if (!strncmp(p, "{amount}", 8)) val = amount, skip = 8;
    if (val) {
      o += (size_t)snprintf(out + o, n - o, "%s", val);
      if (o >= n) o = n - 1;
      p += skip;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
}

static mq_code_t manual_create(mq_gateway_t *g, const mq_gw_intent_req_t *r, mq_gw_intent_t *out, mq_error_t *err) {
  (void)err;
  manual_t *m = g->impl;
  memset(out, 0, sizeof *out);
  char ref[16], amount[64];
  reference_of(r->payment_id, ref);
  mq_money_format(amount, sizeof amount, r->amount_minor, r->currency);
  snprintf(out->ref, sizeof out->ref, "%s", ref);
  fill(m->instructions, ref, amount, out->instructions, sizeof out->instructions);
  out->status = MQ_GW_REQUIRES_ACTION;
  out->amount_minor = r->amount_minor;
  snprintf(out->currency, sizeof out->currency, "%s", r->currency);
  snprintf(out->payment_id, sizeof out->payment_id, "%s", r->payment_id);
  return MQ_OK;
}

static mq_code_t manual_retrieve(mq_gateway_t *g, const char *ref, mq_gw_intent_t *out, mq_error_t *err) {
  (void)g, (void)err;
  memset(out, 0, sizeof *out);
  snprintf(out->ref, sizeof out->ref, "%s", ref);
  out->status = MQ_GW_REQUIRES_ACTION; /* only an organizer knows the money arrived */
  return MQ_OK;
}

static mq_code_t manual_cancel(mq_gateway_t *g, const char *ref, const char *idem, mq_gw_intent_t *out,
                               mq_error_t *err) {
  (void)idem;
  mq_code_t rc = manual_retrieve(g, ref, out, err);
  out->status = MQ_GW_CANCELLED;
  return rc;
}

static mq_code_t manual_refund(mq_gateway_t *g, const char *ref, int64_t amount_minor, const char *currency,
                               const char *idem, mq_gw_refund_t *out, mq_error_t *err) {
  (void)g, (void)amount_minor, (void)currency, (void)err;
  memset(out, 0, sizeof *out);
  snprintf(out->ref, sizeof out->ref, "%s/%s", ref, idem ? idem : "refund");
  out->status = MQ_GW_SUCCEEDED; /* recorded: the organizer pays it back */
  return MQ_OK;
}

static void manual_destroy(mq_gateway_t *g) {
  manual_t *m = g->impl;
  free(m->instructions);
  free(m);
  free(g);
}

static const mq_gateway_ops_t ops = {
    .name = "manual",
    .supports = manual_supports,
    .create_intent = manual_create,
    .retrieve = manual_retrieve,
    .cancel = manual_cancel,
    .refund = manual_refund,
    .destroy = manual_destroy,
};

mq_gateway_t *mq_gateway_manual_new(const mq_config_t *cfg, mq_error_t *err) {
  (void)err;
  manual_t *m = mq_xcalloc(1, sizeof *m);
  m->instructions = mq_xstrdup(cfg->manual_payment_instructions);
  mq_gateway_t *g = mq_xcalloc(1, sizeof *g);
  g->ops = &ops;
  g->impl = m;
  return g;
}
