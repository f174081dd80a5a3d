/*
 * mq_tokens.c — see mq_tokens.h.
 */
#include "core/mq_tokens.h"

#include "core/mq_ids.h"
#include "core/mq_xmalloc.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void mq_token_new(const char *prefix, char *out) {
  unsigned char raw[32];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n <= 0) mq_die("getrandom failed: no entropy (refusing is safer than a guessable token)");
    got += (size_t)n;
  }
  memcpy(out, prefix, MQ_TOKEN_PREFIX_LEN);
  mq_base64url_encode(raw, sizeof raw, out + MQ_TOKEN_PREFIX_LEN);
}

void mq_token_hash(const char *token, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int mq_token_shape_ok(const char *t, const char *prefix) {
  if (!t || strlen(t) != MQ_TOKEN_LEN || strncmp(t, prefix, MQ_TOKEN_PREFIX_LEN) != 0) return 0;
  for (const char *p = t + MQ_TOKEN_PREFIX_LEN; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
      return 0;
  return 1;
}
