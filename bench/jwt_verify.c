/*
 * jwt_verify.c — cost of verifying one access token (identity issue: the
 * auth interceptor must verify in microseconds, with no database call).
 * Measures mq_jwt_verify on a real signed token against, in the same run,
 * the bare HMAC-SHA256 of the same signing input (the cryptographic floor).
 * Prints one JSON line: {"verify_ns":…,"hmac_ns":…,"ratio":…,"iterations":…}.
 * Usage: mq-jwt-bench [ITERATIONS]   (median of 5 batches)
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mq_call.h"
#include "mq_jwt.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 200000;
  if (iters < 1000) iters = 1000;
  const char *secret = "bench-secret-0123456789abcdefghijklmnop";
  char spec[128];
  snprintf(spec, sizeof spec, "k1:%s", secret);
  mq_jwt_keys_t *keys = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(spec, "marquee", "marquee-api", &keys, &err) != MQ_OK) return 1;
  char *tok = mq_jwt_sign(keys, "2f1c9a6e-5b7d-4c1a-9e3f-8d2b6a4c0e11", MQ_ROLE_ATTENDEE | MQ_ROLE_ORGANIZER, 900);
  size_t len = strlen(tok);
  const char *sig = strrchr(tok, '.');
  double verify[5], hmac[5];
  volatile unsigned sink = 0;
  for (int b = 0; b < 5; b++) {
    mq_principal_t p;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      if (mq_jwt_verify(keys, tok, len, &p, &err) != MQ_OK) return 1;
      sink += p.roles;
    }
    verify[b] = (double)(now_ns() - t0) / (double)iters;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml;
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, (size_t)(sig - tok), mac, &ml);
      sink += mac[0];
    }
    hmac[b] = (double)(now_ns() - t0) / (double)iters;
  }
  qsort(verify, 5, sizeof *verify, cmp);
  qsort(hmac, 5, sizeof *hmac, cmp);
  printf("{\"verify_ns\":%.0f,\"hmac_ns\":%.0f,\"ratio\":%.2f,\"iterations\":%ld}\n", verify[2], hmac[2],
         verify[2] / hmac[2], iters);
  free(tok);
  mq_jwt_keys_free(keys);
  return sink == 0xFFFFFFFFu; /* keep the loops */
}
