/*
 * mq_webhook_sig.h — the signature of a Marquee webhook (docs/WEBHOOKS.md):
 * HMAC-SHA256 with the endpoint's secret over "<t>.<body>", where t is the
 * unix time in seconds written in the header, in lower-case hex:
 *
 *   Marquee-Signature: t=<t>,v1=<hex>[,v1=<hex with the previous secret>]
 *
 * Pure; the secret is used as its UTF-8 bytes (the whole "whsec_…" string).
 */
#ifndef MQ_WEBHOOK_SIG_H
#define MQ_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

/* The 64 hex digits of HMAC-SHA256(secret, "<t>.<body>") into out. */
void mq_webhook_sig_v1(const char *secret, int64_t t, const void *body, size_t len, char out[65]);

/* The whole header value: "t=<t>,v1=<hex>", then ",v1=<hex>" for
 * `previous` when it is not NULL or empty. Truncated to n - 1. */
void mq_webhook_sig_header(const char *secret, const char *previous, int64_t t, const void *body, size_t len, char *out,
                           size_t n);

#endif
