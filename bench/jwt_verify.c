/*
 * jwt_verify.c — cost of verifying one access token (identity issue: the
 * auth interceptor must verify in microseconds, with no database call).
 * Measures mq_jwt_verify on real signed tokens against, in the same run,
 * the bare HMAC-SHA256 of the same signing input (the cryptographic floor).
 * verify_ns is a full verification (64 distinct tokens in turn, so the
 * per-thread memo of verified tokens never hits); memo_ns is the same token
 * again and again, as one client's calls are (a memo hit).
 * Prints one JSON line: {"verify_ns":…,"memo_ns":…,"hmac_ns":…,"ratio":…,"iterations":…}.
 * Usage: mq-jwt-bench [ITERATIONS]   (median of 5 batches)
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/mq_call.h"
#include "lib/mq_jwt.h"

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
  enum { NTOK = 64 };
  char *toks[NTOK];
  size_t lens[NTOK];
  for (int i = 0; i < NTOK; i++) { /* distinct jti: distinct tokens */
    toks[i] = mq_jwt_sign(keys, "2f1c9a6e-5b7d-4c1a-9e3f-8d2b6a4c0e11", MQ_ROLE_ATTENDEE | MQ_ROLE_ORGANIZER, 900);
    lens[i] = strlen(toks[i]);
  }
  char *tok = toks[0];
  size_t len = lens[0];
  const char *sig = strrchr(tok, '.');
  double verify[5], memo[5], hmac[5];
  volatile unsigned sink = 0;
  for (int b = 0; b < 5; b++) {
    mq_principal_t p;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      if (mq_jwt_verify(keys, toks[i % NTOK], lens[i % NTOK], &p, &err) != MQ_OK) return 1;
      sink += p.roles;
    }
    verify[b] = (double)(now_ns() - t0) / (double)iters;
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      if (mq_jwt_verify(keys, tok, len, &p, &err) != MQ_OK) return 1;
      sink += p.roles;
    }
    memo[b] = (double)(now_ns() - t0) / (double)iters;
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
  qsort(memo, 5, sizeof *memo, cmp);
  printf("{\"verify_ns\":%.0f,\"memo_ns\":%.0f,\"hmac_ns\":%.0f,\"ratio\":%.2f,\"iterations\":%ld}\n", verify[2],
         memo[2], hmac[2], verify[2] / hmac[2], iters);
  for (int i = 0; i < NTOK; i++) free(toks[i]);
  mq_jwt_keys_free(keys);
  return sink == 0xFFFFFFFFu; /* keep the loops */
}
