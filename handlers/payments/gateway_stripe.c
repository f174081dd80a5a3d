/*
 * gateway_stripe.c — Stripe, through its REST API over libcurl
 * (lib/mq_httpc.h): PaymentIntents (create, retrieve, capture, cancel),
 * Refunds, and webhook signatures. See gateway.h for the contract.
 *
 * Requests are form-encoded with HTTP Basic auth (the secret key as the
 * user); every POST carries Idempotency-Key. Amounts are sent in the
 * currency's minor unit as Stripe expects (it names ISO's zero-decimal
 * currencies the same way), currencies in lower case. Responses are JSON,
 * read through libbson's JSON parser.
 *
 * Webhooks (Stripe-Signature: t=<unix s>,v1=<hex>[,v1=…]): the expected
 * signature is HMAC-SHA256(webhook secret, "<t>.<raw body>") in hex; the
 * delivery is trusted when any v1 matches (compared in constant time) and
 * t is within MARQUEE_STRIPE_WEBHOOK_TOLERANCE_S of now. Nothing is parsed
 * before that.
 *
 * Configured by MARQUEE_STRIPE_SECRET_KEY (absent: the gateway is off),
 * MARQUEE_STRIPE_API_BASE (https, or http to loopback for stripe-mock),
 * MARQUEE_STRIPE_WEBHOOK_SECRET, MARQUEE_PAYMENT_GATEWAY_TIMEOUT_MS.
 */
#include <bson/bson.h>
#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"
#include "handlers/payments/gateway.h"
#include "lib/mq_httpc.h"
#include "lib/mq_validate.h"

typedef struct {
  char *base, *key, *webhook_secret;
  int timeout_ms;
  int64_t tolerance_s;
} stripe_t;

/* ---- JSON ---- */

static const char *jstr(const bson_t *doc, const char *path) {
  bson_iter_t it, f;
  if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) && BSON_ITER_HOLDS_UTF8(&f))
    return bson_iter_utf8(&f, NULL);
  return NULL;
}

static int64_t jint(const bson_t *doc, const char *path) {
  bson_iter_t it, f;
  if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) &&
      (BSON_ITER_HOLDS_INT32(&f) || BSON_ITER_HOLDS_INT64(&f) || BSON_ITER_HOLDS_DOUBLE(&f)))
    return bson_iter_as_int64(&f);
  return 0;
}

static void copy(char *dst, size_t n, const char *s) {
  snprintf(dst, n, "%s", s ? s : "");
}

static mq_gw_status_t intent_status(const char *s, bool has_error) {
  if (!s) return MQ_GW_PENDING;
  if (!strcmp(s, "succeeded")) return MQ_GW_SUCCEEDED;
  if (!strcmp(s, "canceled")) return MQ_GW_CANCELLED;
  if (!strcmp(s, "processing") || !strcmp(s, "requires_capture")) return MQ_GW_PROCESSING;
  if (!strcmp(s, "requires_action")) return MQ_GW_REQUIRES_ACTION;
  if (!strcmp(s, "requires_payment_method") && has_error) return MQ_GW_FAILED;
  return MQ_GW_PENDING;
}

/* A payment_intent object (at `prefix`, "" for the top) into *out. */
static void read_intent(const bson_t *doc, const char *prefix, mq_gw_intent_t *out) {
  char p[160];
#define AT(f) (snprintf(p, sizeof p, "%s%s", prefix, f), p)
  memset(out, 0, sizeof *out);
  copy(out->ref, sizeof out->ref, jstr(doc, AT("id")));
  copy(out->client_secret, sizeof out->client_secret, jstr(doc, AT("client_secret")));
  const char *err_msg = jstr(doc, AT("last_payment_error.message"));
  const char *err_code = jstr(doc, AT("last_payment_error.code"));
  copy(out->failure, sizeof out->failure, err_msg ? err_msg : err_code);
  out->status = intent_status(jstr(doc, AT("status")), err_msg || err_code);
  out->amount_minor = jint(doc, AT("amount"));
  out->amount_received = jint(doc, AT("amount_received"));
  const char *cur = jstr(doc, AT("currency"));
  for (int i = 0; cur && cur[i] && i < 3; i++) out->currency[i] = (char)toupper((unsigned char)cur[i]);
  copy(out->payment_id, sizeof out->payment_id, jstr(doc, AT("metadata.payment_id")));
#undef AT
}

static void read_refund(const bson_t *doc, const char *prefix, mq_gw_refund_t *out, char *payment_ref, size_t n) {
  char p[160];
  memset(out, 0, sizeof *out);
  snprintf(p, sizeof p, "%sid", prefix);
  copy(out->ref, sizeof out->ref, jstr(doc, p));
  snprintf(p, sizeof p, "%sstatus", prefix);
  const char *st = jstr(doc, p);
  out->status = !st                        ? MQ_GW_PENDING
                : !strcmp(st, "succeeded") ? MQ_GW_SUCCEEDED
                : !strcmp(st, "failed")    ? MQ_GW_FAILED
                : !strcmp(st, "canceled")  ? MQ_GW_FAILED
                                           : MQ_GW_PROCESSING;
  snprintf(p, sizeof p, "%sfailure_reason", prefix);
  copy(out->failure, sizeof out->failure, jstr(doc, p));
  if (payment_ref) {
    snprintf(p, sizeof p, "%spayment_intent", prefix);
    copy(payment_ref, n, jstr(doc, p));
  }
}

/* ---- HTTP ---- */

/* Calls Stripe; on MQ_OK *doc holds the JSON answer (caller destroys). */
static mq_code_t call(stripe_t *st, const char *method, const char *path, const char *form, const char *idempotency_key,
                      bson_t *doc, mq_error_t *err) {
  char url[512], idem[300];
  snprintf(url, sizeof url, "%s%s", st->base, path);
  const char *headers[2];
  size_t nh = 0;
  headers[nh++] = "Stripe-Version: 2024-06-20";
  if (idempotency_key) {
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", idempotency_key);
    headers[nh++] = idem;
  }
  mq_httpc_request_t req = {.method = method,
                            .url = url,
                            .headers = headers,
                            .n_headers = nh,
                            .body = form,
                            .body_len = form ? strlen(form) : 0,
                            .basic_user = st->key,
                            .basic_password = "",
                            .timeout_ms = st->timeout_ms};
  mq_httpc_response_t resp = {0};
  mq_code_t rc = mq_httpc_do(&req, "stripe", &resp, err);
  if (rc != MQ_OK) return rc; /* unreachable or timed out: UNAVAILABLE */
  bson_error_t jerr;
  bool parsed = resp.body && bson_init_from_json(doc, resp.body, (ssize_t)resp.len, &jerr);
  long status = resp.status;
  mq_httpc_response_clear(&resp);
  if (status == 429 || status >= 500) {
    if (parsed) bson_destroy(doc);
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "stripe answered HTTP %ld", status);
  }
  if (!parsed) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "stripe answered something other than JSON");
  if (status >= 200 && status < 300) return MQ_OK;
  if (status == 401 || status == 403) { /* the gateway's words may quote our credentials: never pass them on */
    bson_destroy(doc);
    return mq_error_set(err, MQ_INTERNAL, NULL,
                        "stripe refused Marquee's API key (HTTP %ld): check MARQUEE_STRIPE_SECRET_KEY", status);
  }
  const char *msg = jstr(doc, "error.message");
  const char *code = jstr(doc, "error.code");
  mq_code_t c = status == 402   ? MQ_FAILED_PRECONDITION
                : status == 404 ? MQ_NOT_FOUND
                : status == 409 ? MQ_ABORTED
                                : MQ_INVALID_ARGUMENT;
  mq_error_set(err, c, NULL, "stripe: %s%s%s%s", msg ? msg : "request refused", code ? " (" : "", code ? code : "",
               code ? ")" : "");
  bson_destroy(doc);
  return c;
}

static char *esc(const char *s) {
  return mq_url_escape(s ? s : "");
}

/* ---- the interface ---- */

static bool stripe_supports(const mq_gateway_t *g, const char *currency, const char *country) {
  (void)g, (void)country;
  /* Stripe charges in most ISO currencies; not in these (sanctioned or
   * not offered) — a smaller list than the ones it takes. */
  static const char *const no[] = {"CUP", "IRR", "KPW", "SYP", "VED", "VES", "SDG", "SSP", "CLF", "UYW"};
  if (mq_currency_minor_units(currency) < 0) return false;
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (!strcmp(currency, no[i])) return false;
  return true;
}

static mq_code_t stripe_create(mq_gateway_t *g, const mq_gw_intent_req_t *r, mq_gw_intent_t *out, mq_error_t *err) {
  stripe_t *st = g->impl;
  char cur[4] = {0};
  for (int i = 0; i < 3 && r->currency[i]; i++) cur[i] = (char)tolower((unsigned char)r->currency[i]);
  char *pid = esc(r->payment_id), *hid = esc(r->hold_id), *desc = esc(r->description);
  size_t n = strlen(pid) + strlen(hid) + strlen(desc) + 256;
  char *form = mq_xmalloc(n);
  snprintf(form, n,
           "amount=%" PRId64
           "&currency=%s&automatic_payment_methods%%5Benabled%%5D=true"
           "&metadata%%5Bpayment_id%%5D=%s&metadata%%5Bhold_id%%5D=%s&description=%s",
           r->amount_minor, cur, pid, hid, desc);
  free(pid), free(hid), free(desc);
  bson_t doc;
  mq_code_t rc = call(st, "POST", "/v1/payment_intents", form, r->idempotency_key, &doc, err);
  free(form);
  if (rc != MQ_OK) return rc;
  read_intent(&doc, "", out);
  bson_destroy(&doc);
  if (!out->ref[0]) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "stripe answered a payment intent without an id");
  return MQ_OK;
}

static mq_code_t stripe_retrieve(mq_gateway_t *g, const char *ref, mq_gw_intent_t *out, mq_error_t *err) {
  char path[200];
  char *e = esc(ref);
  snprintf(path, sizeof path, "/v1/payment_intents/%s", e);
  free(e);
  bson_t doc;
  mq_code_t rc = call(g->impl, "GET", path, NULL, NULL, &doc, err);
  if (rc != MQ_OK) return rc;
  read_intent(&doc, "", out);
  bson_destroy(&doc);
  return MQ_OK;
}

static mq_code_t intent_post(mq_gateway_t *g, const char *ref, const char *verb, const char *idem, mq_gw_intent_t *out,
                             mq_error_t *err) {
  char path[240];
  char *e = esc(ref);
  snprintf(path, sizeof path, "/v1/payment_intents/%s/%s", e, verb);
  free(e);
  bson_t doc;
  mq_code_t rc = call(g->impl, "POST", path, "", idem, &doc, err);
  if (rc != MQ_OK) return rc;
  read_intent(&doc, "", out);
  bson_destroy(&doc);
  return MQ_OK;
}

static mq_code_t stripe_capture(mq_gateway_t *g, const char *ref, const char *idem, mq_gw_intent_t *out,
                                mq_error_t *err) {
  return intent_post(g, ref, "capture", idem, out, err);
}

static mq_code_t stripe_cancel(mq_gateway_t *g, const char *ref, const char *idem, mq_gw_intent_t *out,
                               mq_error_t *err) {
  return intent_post(g, ref, "cancel", idem, out, err);
}

static mq_code_t stripe_refund(mq_gateway_t *g, const char *ref, int64_t amount_minor, const char *currency,
                               const char *idem, mq_gw_refund_t *out, mq_error_t *err) {
  (void)currency; /* a refund is in the charge's currency */
  char *e = esc(ref);
  char form[300];
  snprintf(form, sizeof form, "payment_intent=%s&amount=%" PRId64, e, amount_minor);
  free(e);
  bson_t doc;
  mq_code_t rc = call(g->impl, "POST", "/v1/refunds", form, idem, &doc, err);
  if (rc != MQ_OK) return rc;
  read_refund(&doc, "", out, NULL, 0);
  bson_destroy(&doc);
  return MQ_OK;
}

/* Verifies Stripe-Signature over the raw body (see the file's head). */
static mq_code_t verify(stripe_t *st, const char *sig, const char *body, size_t len, int64_t now_ms, mq_error_t *err) {
  if (!st->webhook_secret || !*st->webhook_secret)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "no webhook secret configured");
  if (!sig || !*sig) return mq_error_set(err, MQ_INVALID_ARGUMENT, "Stripe-Signature", "missing");
  int64_t t = -1;
  const char *v1[8];
  size_t v1_len[8], n1 = 0;
  for (const char *p = sig; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 2 && p[0] == 't' && p[1] == '=') {
      char num[24];
      size_t k = n - 2 < sizeof num - 1 ? n - 2 : sizeof num - 1;
      memcpy(num, p + 2, k);
      num[k] = '\0';
      char *e;
      long long v = strtoll(num, &e, 10);
      if (*e == '\0' && e != num) t = v;
    } else if (n > 3 && !strncmp(p, "v1=", 3) && n1 < 8) {
      v1[n1] = p + 3;
      v1_len[n1++] = n - 3;
    }
    p += n;
    if (*p == ',') p++;
  }
  if (t < 0 || n1 == 0)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "Stripe-Signature", "no timestamp or v1 signature");
  int64_t age = now_ms / 1000 - t;
  if (age > st->tolerance_s || age < -st->tolerance_s)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "Stripe-Signature", "timestamp outside the tolerance");
  char ts[24];
  int tn = snprintf(ts, sizeof ts, "%" PRId64 ".", t);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  char *signed_payload = mq_xmalloc((size_t)tn + len + 1);
  memcpy(signed_payload, ts, (size_t)tn);
  memcpy(signed_payload + tn, body, len);
  bool ok = HMAC(EVP_sha256(), st->webhook_secret, (int)strlen(st->webhook_secret),
                 (const unsigned char *)signed_payload, (size_t)tn + len, mac, &mac_len) != NULL;
  free(signed_payload);
  if (!ok) return mq_error_set(err, MQ_INTERNAL, NULL, "HMAC failed");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < mac_len; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  bool match = false;
  for (size_t i = 0; i < n1; i++)
    if (v1_len[i] == 2 * mac_len && CRYPTO_memcmp(v1[i], hex, 2 * mac_len) == 0) match = true;
  if (!match) return mq_error_set(err, MQ_INVALID_ARGUMENT, "Stripe-Signature", "no signature matches");
  return MQ_OK;
}

static mq_code_t stripe_webhook(mq_gateway_t *g, mq_gw_header_fn header, void *arg, const char *body, size_t len,
                                int64_t now_ms, mq_gw_event_t *out, mq_error_t *err) {
  stripe_t *st = g->impl;
  mq_code_t rc = verify(st, header(arg, "Stripe-Signature"), body, len, now_ms, err);
  if (rc != MQ_OK) return rc;
  bson_t doc;
  bson_error_t jerr;
  if (!bson_init_from_json(&doc, body, (ssize_t)len, &jerr))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "body", "not JSON");
  memset(out, 0, sizeof *out);
  copy(out->id, sizeof out->id, jstr(&doc, "id"));
  copy(out->type, sizeof out->type, jstr(&doc, "type"));
  const char *obj = jstr(&doc, "data.object.object");
  if (!out->id[0] || !out->type[0]) {
    bson_destroy(&doc);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "body", "an event needs an id and a type");
  }
  if (obj && !strcmp(obj, "payment_intent")) {
    out->kind = MQ_GW_EVENT_PAYMENT;
    read_intent(&doc, "data.object.", &out->intent);
    /* the event's type is the transition it reports */
    if (!strcmp(out->type, "payment_intent.payment_failed")) out->intent.status = MQ_GW_FAILED;
  } else if (obj && !strcmp(obj, "refund")) {
    out->kind = MQ_GW_EVENT_REFUND;
    read_refund(&doc, "data.object.", &out->refund, out->refund_payment_ref, sizeof out->refund_payment_ref);
  } else {
    out->kind = MQ_GW_EVENT_OTHER;
  }
  bson_destroy(&doc);
  return MQ_OK;
}

static void stripe_destroy(mq_gateway_t *g) {
  stripe_t *st = g->impl;
  free(st->base);
  OPENSSL_cleanse(st->key, strlen(st->key));
  OPENSSL_cleanse(st->webhook_secret, strlen(st->webhook_secret));
  free(st->key);
  free(st->webhook_secret);
  free(st);
  free(g);
}

static const mq_gateway_ops_t ops = {
    .name = "stripe",
    .supports = stripe_supports,
    .create_intent = stripe_create,
    .retrieve = stripe_retrieve,
    .capture = stripe_capture,
    .cancel = stripe_cancel,
    .refund = stripe_refund,
    .parse_webhook = stripe_webhook,
    .destroy = stripe_destroy,
};

mq_gateway_t *mq_gateway_stripe_new(const mq_config_t *cfg, mq_error_t *err) {
  if (!cfg->stripe_secret_key || !*cfg->stripe_secret_key) return NULL;
  if (!mq_url_transport_ok(cfg->stripe_api_base)) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_STRIPE_API_BASE", "must be https:// (http only to loopback)");
    return NULL;
  }
  stripe_t *st = mq_xcalloc(1, sizeof *st);
  st->base = mq_xstrdup(cfg->stripe_api_base);
  size_t bl = strlen(st->base);
  while (bl && st->base[bl - 1] == '/') st->base[--bl] = '\0';
  st->key = mq_xstrdup(cfg->stripe_secret_key);
  st->webhook_secret = mq_xstrdup(cfg->stripe_webhook_secret ? cfg->stripe_webhook_secret : "");
  st->timeout_ms = (int)cfg->payment_gateway_timeout_ms;
  st->tolerance_s = cfg->stripe_webhook_tolerance_s;
  mq_gateway_t *g = mq_xcalloc(1, sizeof *g);
  g->ops = &ops;
  g->impl = st;
  return g;
}
