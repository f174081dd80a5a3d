/*
 * gateway.h — the payment gateway interface: what Marquee asks of any
 * payment provider, and nothing more. One file per gateway implements it
 * (gateway_stripe.c, gateway_manual.c, gateway_free.c); docs/PAYMENTS.md
 * says how another (PayPal, Adyen, Razorpay) is added as one more file.
 *
 * The contract every gateway keeps:
 *   1. Card data never reaches Marquee. create_intent returns what the
 *      buyer's client needs to pay the gateway directly (Stripe: the
 *      PaymentIntent's client secret), or instructions (manual).
 *   2. Every mutating call carries the idempotency key it is given and
 *      sends it to the gateway (Stripe: the Idempotency-Key header): a
 *      retry after a timeout cannot charge or refund twice.
 *   3. Errors say whose fault: MQ_UNAVAILABLE (or DEADLINE_EXCEEDED) when
 *      the gateway could not be reached, timed out, or answered 5xx/429 —
 *      the routing counts these against the gateway's circuit breaker and
 *      may try the next gateway; any other code is the gateway's answer
 *      about the request itself (a declined card, a bad parameter: an
 *      INVALID_ARGUMENT or FAILED_PRECONDITION with its message), which is
 *      not the gateway failing.
 *   4. parse_webhook verifies the delivery's authenticity (Stripe: its
 *      signature scheme and timestamp tolerance) before it parses anything,
 *      and answers INVALID_ARGUMENT for anything it does not trust.
 *   5. No secret (API key, client secret, webhook secret) is ever logged.
 *   6. Calls block (HTTP): they run on worker threads only, never on the
 *      side port's thread for longer than one call's timeout.
 */
#ifndef MQ_GATEWAY_H
#define MQ_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_config.h"
#include "core/mq_error.h"

/* A gateway's view of a payment or refund. */
typedef enum {
  MQ_GW_PENDING,         /* waiting for the buyer (Stripe: requires_payment_method / requires_confirmation) */
  MQ_GW_REQUIRES_ACTION, /* the buyer must act (3-D Secure, a bank transfer) */
  MQ_GW_PROCESSING,
  MQ_GW_SUCCEEDED,
  MQ_GW_FAILED, /* this attempt failed; the buyer may retry */
  MQ_GW_CANCELLED,
} mq_gw_status_t;

typedef struct mq_gw_intent_req {
  const char *payment_id; /* Marquee's id: metadata at the gateway */
  const char *hold_id;
  int64_t amount_minor;
  const char *currency; /* ISO 4217 upper case */
  const char *description;
  const char *buyer_country; /* may be "" */
  const char *idempotency_key;
  int64_t deadline_ms;
} mq_gw_intent_req_t;

typedef struct mq_gw_intent {
  char ref[128];           /* the gateway's id */
  char client_secret[256]; /* for the buyer's client ("" when none) */
  char instructions[512];  /* what the buyer does (manual) */
  mq_gw_status_t status;
  int64_t amount_minor, amount_received;
  char currency[4];
  char failure[256];   /* the gateway's words for a failure */
  char payment_id[64]; /* the metadata Marquee gave it (webhooks) */
} mq_gw_intent_t;

typedef struct mq_gw_refund {
  char ref[128];
  mq_gw_status_t status; /* SUCCEEDED, PENDING (PROCESSING) or FAILED */
  char failure[256];
} mq_gw_refund_t;

/* One webhook delivery, verified and parsed. */
typedef enum { MQ_GW_EVENT_PAYMENT, MQ_GW_EVENT_REFUND, MQ_GW_EVENT_OTHER } mq_gw_event_kind_t;
typedef struct mq_gw_event {
  char id[128];  /* the gateway's event id: applied once */
  char type[96]; /* "payment_intent.succeeded" */
  mq_gw_event_kind_t kind;
  mq_gw_intent_t intent; /* kind PAYMENT */
  mq_gw_refund_t refund; /* kind REFUND */
  char refund_payment_ref[128];
} mq_gw_event_t;

/* A header of the webhook request, by name (case-insensitive), or NULL. */
typedef const char *(*mq_gw_header_fn)(void *arg, const char *name);

typedef struct mq_gateway mq_gateway_t;

typedef struct mq_gateway_ops {
  const char *name;
  /* Can it take this currency (and buyer country, "" if unknown)? */
  bool (*supports)(const mq_gateway_t *g, const char *currency, const char *country);
  mq_code_t (*create_intent)(mq_gateway_t *g, const mq_gw_intent_req_t *req, mq_gw_intent_t *out, mq_error_t *err);
  mq_code_t (*retrieve)(mq_gateway_t *g, const char *ref, mq_gw_intent_t *out, mq_error_t *err);
  /* Captures an authorized payment (capture_method=manual); NULL if the
   * gateway captures on confirmation. */
  mq_code_t (*capture)(mq_gateway_t *g, const char *ref, const char *idempotency_key, mq_gw_intent_t *out,
                       mq_error_t *err);
  mq_code_t (*cancel)(mq_gateway_t *g, const char *ref, const char *idempotency_key, mq_gw_intent_t *out,
                      mq_error_t *err);
  mq_code_t (*refund)(mq_gateway_t *g, const char *ref, int64_t amount_minor, const char *currency,
                      const char *idempotency_key, mq_gw_refund_t *out, mq_error_t *err);
  /* NULL when the gateway sends no webhooks. */
  mq_code_t (*parse_webhook)(mq_gateway_t *g, mq_gw_header_fn header, void *header_arg, const char *body, size_t len,
                             int64_t now_ms, mq_gw_event_t *out, mq_error_t *err);
  void (*destroy)(mq_gateway_t *g);
} mq_gateway_ops_t;

struct mq_gateway {
  const mq_gateway_ops_t *ops;
  void *impl;
};

/* The gateways Marquee has; each returns NULL with *err set for a bad
 * configuration (and NULL without an error when it is simply not
 * configured, e.g. Stripe without MARQUEE_STRIPE_SECRET_KEY). */
mq_gateway_t *mq_gateway_stripe_new(const mq_config_t *cfg, mq_error_t *err);
mq_gateway_t *mq_gateway_manual_new(const mq_config_t *cfg, mq_error_t *err);
mq_gateway_t *mq_gateway_free_new(const mq_config_t *cfg, mq_error_t *err);

const char *mq_gw_status_name(mq_gw_status_t s);

#endif
