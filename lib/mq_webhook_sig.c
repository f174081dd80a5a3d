/*
 * mq_webhook_sig.c — see mq_webhook_sig.h.
 */
#include "lib/mq_webhook_sig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void mq_webhook_sig_v1(const char *secret, int64_t t, const void *body, size_t len, char out[65]) {
  char head[32];
  int hl = snprintf(head, sizeof head, "%lld.", (long long)t);
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)head, (unsigned long long)hl);
  crypto_auth_hmacsha256_update(&st, body, len);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_bin2hex(out, 65, mac, sizeof mac);
  sodium_memzero(&st, sizeof st);
}

void mq_webhook_sig_header(const char *secret, const char *previous, int64_t t, const void *body, size_t len, char *out,
                           size_t n) {
  char a[65], b[65];
  mq_webhook_sig_v1(secret, t, body, len, a);
  if (previous && *previous) {
    mq_webhook_sig_v1(previous, t, body, len, b);
    snprintf(out, n, "t=%lld,v1=%s,v1=%s", (long long)t, a, b);
  } else {
    snprintf(out, n, "t=%lld,v1=%s", (long long)t, a);
  }
}
