/*
 * mq_seal.c — see mq_seal.h. crypto_box_seal / crypto_box_seal_open;
 * a secret key's public half is derived with crypto_scalarmult_base.
 */
#include "lib/mq_seal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_xmalloc.h"

#define MAX_KEYS 8
#define KID_MAX 32

typedef struct {
  char kid[KID_MAX + 1];
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  unsigned char sk[crypto_box_SECRETKEYBYTES]; /* zero for a public-only list */
} seal_key_t;

struct mq_seal_keys {
  seal_key_t k[MAX_KEYS];
  size_t n;
  bool secret;
};

static bool kid_ok(const char *s, size_t n) {
  if (n == 0 || n > KID_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  }
  return true;
}

bool mq_seal_kid_ok(const char *kid) {
  return kid && kid_ok(kid, strlen(kid));
}

mq_code_t mq_seal_keys_parse(const char *spec, bool secret, const char *field, mq_seal_keys_t **out, mq_error_t *err) {
  *out = NULL;
  if (sodium_init() < 0) return mq_error_set(err, MQ_INTERNAL, NULL, "libsodium could not be initialised");
  mq_seal_keys_t *k = mq_xcalloc(1, sizeof *k);
  k->secret = secret;
  const char *p = spec ? spec : "";
  while (*p) {
    size_t len = strcspn(p, ",");
    const char *colon = memchr(p, ':', len);
    unsigned char raw[64];
    long got = -1;
    if (colon && kid_ok(p, (size_t)(colon - p)) && k->n < MAX_KEYS)
      got = mq_base64url_decode(colon + 1, len - (size_t)(colon + 1 - p), raw, sizeof raw);
    if (got != 32) {
      sodium_memzero(raw, sizeof raw);
      mq_seal_keys_free(k);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, field,
                          "must be kid:key[,kid:key...] with a 32-byte base64url key (marquee keygen notify)");
    }
    seal_key_t *e = &k->k[k->n++];
    memcpy(e->kid, p, (size_t)(colon - p));
    if (secret) {
      memcpy(e->sk, raw, sizeof e->sk);
      crypto_scalarmult_base(e->pk, e->sk);
    } else {
      memcpy(e->pk, raw, sizeof e->pk);
    }
    sodium_memzero(raw, sizeof raw);
    p += len;
    if (*p == ',') p++;
  }
  if (k->n == 0) {
    mq_seal_keys_free(k);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "names no key");
  }
  *out = k;
  return MQ_OK;
}

void mq_seal_keys_free(mq_seal_keys_t *k) {
  if (!k) return;
  sodium_memzero(k, sizeof *k);
  free(k);
}

mq_code_t mq_seal(const mq_seal_keys_t *k, const char *secret, mq_arena_t *a, char **kid, uint8_t **box, size_t *len,
                  mq_error_t *err) {
  size_t n = strlen(secret);
  *kid = mq_arena_strdup(a, k->k[0].kid);
  *len = n + crypto_box_SEALBYTES;
  *box = mq_arena_alloc(a, *len);
  if (crypto_box_seal(*box, (const unsigned char *)secret, n, k->k[0].pk) != 0) { /* no secret leaves unsealed */
    sodium_memzero(*box, *len);
    return mq_error_set(err, MQ_INTERNAL, NULL, "the secret could not be sealed");
  }
  return MQ_OK;
}

bool mq_seal_open(const mq_seal_keys_t *k, const char *kid, const uint8_t *box, size_t len, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  if (!k || !k->secret || !kid || !box || len < crypto_box_SEALBYTES || len - crypto_box_SEALBYTES >= cap) return false;
  for (size_t i = 0; i < k->n; i++) {
    if (strcmp(k->k[i].kid, kid)) continue;
    if (crypto_box_seal_open((unsigned char *)out, box, len, k->k[i].pk, k->k[i].sk) != 0) break;
    out[len - crypto_box_SEALBYTES] = '\0';
    return true;
  }
  sodium_memzero(out, cap);
  return false;
}

void mq_seal_public_spec(const mq_seal_keys_t *k, char *out, size_t n) {
  size_t used = 0;
  if (n) out[0] = '\0';
  for (size_t i = 0; k && i < k->n && used < n; i++) {
    char b[64];
    mq_base64url_encode(k->k[i].pk, sizeof k->k[i].pk, b);
    int w = snprintf(out + used, n - used, "%s%s:%s", i ? "," : "", k->k[i].kid, b);
    if (w < 0) break;
    used += (size_t)w;
  }
}

void mq_seal_keygen(const char *kid, char *pub_spec, size_t pub_n, char *sec_spec, size_t sec_n) {
  if (sodium_init() < 0) mq_die("libsodium could not be initialised");
  unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk, sk);
  char b[64];
  mq_base64url_encode(pk, sizeof pk, b);
  snprintf(pub_spec, pub_n, "%s:%s", kid, b);
  mq_base64url_encode(sk, sizeof sk, b);
  snprintf(sec_spec, sec_n, "%s:%s", kid, b);
  sodium_memzero(sk, sizeof sk);
  sodium_memzero(b, sizeof b);
}
