/*
 * mq_jwt.c — HS256 JWT verification and signing (see mq_jwt.h). JSON is
 * parsed with libbson's JSON reader; HMAC comes from OpenSSL. Every refusal
 * is UNAUTHENTICATED with a reason safe to show the client (never the key).
 */
#include "lib/mq_jwt.h"

#include <bson/bson.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_ids.h"
#include "core/mq_xmalloc.h"

#define MAX_KEYS 8
#define LEEWAY_S 30

typedef struct {
  char kid[33];
  unsigned char secret[256];
  size_t secret_len;
} key_t_;

struct mq_jwt_keys {
  key_t_ keys[MAX_KEYS];
  size_t n;
  char issuer[128];
  char audience[128];
  uint64_t generation; /* unique per parsed set: the verify memo's key */
};

static _Atomic uint64_t next_generation = 1;

/* ---- base64url ------------------------------------------------------------ */

/* ---- keys ----------------------------------------------------------------- */

mq_code_t mq_jwt_keys_parse(const char *spec, const char *issuer, const char *audience, mq_jwt_keys_t **out,
                            mq_error_t *err) {
  *out = NULL;
  mq_jwt_keys_t *k = mq_xcalloc(1, sizeof *k);
  k->generation = next_generation++;
  snprintf(k->issuer, sizeof k->issuer, "%s", issuer ? issuer : "");
  snprintf(k->audience, sizeof k->audience, "%s", audience ? audience : "");
  const char *p = spec ? spec : "";
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (!colon || k->n == MAX_KEYS) {
      bool too_many = k->n == MAX_KEYS;
      mq_jwt_keys_free(k);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_JWT_KEYS",
                          too_many ? "at most 8 keys" : "entries must be kid:secret");
    }
    size_t kl = (size_t)(colon - p), sl = len - kl - 1;
    bool kid_ok = kl >= 1 && kl <= 32;
    for (size_t i = 0; kid_ok && i < kl; i++)
      kid_ok = isalnum((unsigned char)p[i]) || p[i] == '.' || p[i] == '_' || p[i] == '-';
    if (!kid_ok || sl < 32 || sl > sizeof k->keys[0].secret) {
      mq_jwt_keys_free(k);
      return mq_error_set(
          err, MQ_INVALID_ARGUMENT, "MARQUEE_JWT_KEYS",
          !kid_ok ? "a kid must be 1-32 chars of [A-Za-z0-9._-]" : "each secret must be 32 to 256 bytes");
    }
    key_t_ *e = &k->keys[k->n++];
    memcpy(e->kid, p, kl);
    e->kid[kl] = '\0';
    memcpy(e->secret, colon + 1, sl);
    e->secret_len = sl;
    p += len;
    if (*p == ',') p++;
  }
  *out = k;
  return MQ_OK;
}

void mq_jwt_keys_free(mq_jwt_keys_t *k) {
  if (!k) return;
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
}

size_t mq_jwt_keys_count(const mq_jwt_keys_t *k) {
  return k ? k->n : 0;
}

/* ---- verify --------------------------------------------------------------- */

static mq_code_t refuse(mq_error_t *err, const char *why) {
  return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "invalid access token: %s", why);
}

static bool iter_utf8(bson_iter_t *it, const bson_t *doc, const char *key, const char **val, uint32_t *len) {
  return bson_iter_init_find(it, doc, key) && BSON_ITER_HOLDS_UTF8(it) && (*val = bson_iter_utf8(it, len));
}

static bool iter_num(const bson_t *doc, const char *key, int64_t *out) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return false;
  if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
    *out = bson_iter_as_int64(&it);
    return true;
  }
  if (BSON_ITER_HOLDS_DOUBLE(&it)) {
    double d = bson_iter_double(&it);
    if (!(d > -9.2e18 && d < 9.2e18)) return false; /* NaN or out of int64 range: not a time */
    *out = (int64_t)d;
    return true;
  }
  return false;
}

static mq_code_t verify_uncached(const mq_jwt_keys_t *k, const char *token, size_t len, mq_principal_t *out,
                                 mq_error_t *err);

/* Per-thread memo of recently verified tokens: a client sends the same access
 * token with every call for its lifetime, so the HMAC and JSON work is done
 * once per token per thread. A hit needs the identical bytes, the same key
 * set, and a token not yet expired; only successes are remembered, so a
 * refusal is always decided afresh. Thread-local: no locks, no sharing. */
#define MEMO_SLOTS 16
#define MEMO_TOKEN_MAX 384
typedef struct {
  uint64_t generation;
  size_t len;
  char token[MEMO_TOKEN_MAX];
  mq_principal_t principal;
} memo_t;
static __thread memo_t memo[MEMO_SLOTS];

mq_code_t mq_jwt_verify(void *self, const char *token, size_t len, mq_principal_t *out, mq_error_t *err) {
  const mq_jwt_keys_t *k = self;
  unsigned h = 2166136261u; /* FNV-1a over the signature's tail */
  for (size_t i = len > 16 ? len - 16 : 0; i < len; i++) h = (h ^ (unsigned char)token[i]) * 16777619u;
  memo_t *m = &memo[h % MEMO_SLOTS];
  if (m->generation == k->generation && m->len == len && len <= MEMO_TOKEN_MAX && memcmp(m->token, token, len) == 0 &&
      (int64_t)time(NULL) < m->principal.expires_at) {
    *out = m->principal;
    return MQ_OK;
  }
  mq_code_t rc = verify_uncached(k, token, len, out, err);
  if (rc == MQ_OK && len <= MEMO_TOKEN_MAX) {
    m->generation = k->generation;
    m->len = len;
    memcpy(m->token, token, len);
    m->principal = *out;
  }
  return rc;
}

static mq_code_t verify_uncached(const mq_jwt_keys_t *k, const char *token, size_t len, mq_principal_t *out,
                                 mq_error_t *err) {
  if (len > 4096) return refuse(err, "too long");
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return refuse(err, "not a JWS compact token");
  unsigned char hdr[512], pay[3072], sig[64];
  long hl = mq_base64url_decode(token, (size_t)(d1 - token), hdr, sizeof hdr);
  long pl = mq_base64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pay, sizeof pay);
  long sl = mq_base64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig);
  if (hl <= 0 || pl <= 0 || sl < 0) return refuse(err, "bad base64url");

  bson_t h, p;
  bson_error_t berr;
  if (!bson_init_from_json(&h, (const char *)hdr, hl, &berr)) return refuse(err, "header is not JSON");
  bson_iter_t it;
  const char *alg = NULL, *kid = NULL;
  uint32_t alg_len = 0, kid_len = 0;
  bool have_alg = iter_utf8(&it, &h, "alg", &alg, &alg_len);
  bool alg_ok = have_alg && alg_len == 5 && memcmp(alg, "HS256", 5) == 0;
  bool have_kid = iter_utf8(&it, &h, "kid", &kid, &kid_len);
  const key_t_ *key = NULL;
  for (size_t i = 0; have_kid && i < k->n && !key; i++)
    if (strlen(k->keys[i].kid) == kid_len && memcmp(k->keys[i].kid, kid, kid_len) == 0) key = &k->keys[i];
  bool crit = bson_iter_init_find(&it, &h, "crit");
  bson_destroy(&h);
  if (!alg_ok) return refuse(err, "alg must be HS256");
  if (crit) return refuse(err, "unsupported critical header");
  if (!have_kid) return refuse(err, "missing kid");
  if (!key) return refuse(err, "unknown signing key");

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key->secret, (int)key->secret_len, (const unsigned char *)token, (size_t)(d2 - token), mac,
            &mac_len) ||
      sl != (long)mac_len || CRYPTO_memcmp(mac, sig, mac_len) != 0)
    return refuse(err, "bad signature");

  if (!bson_init_from_json(&p, (const char *)pay, pl, &berr)) return refuse(err, "claims are not JSON");
  mq_code_t rc = MQ_OK;
  int64_t now = (int64_t)time(NULL), exp = 0, nbf = 0, iat = 0;
  const char *s = NULL;
  uint32_t sl2 = 0;
  memset(out, 0, sizeof *out);
  if (!iter_num(&p, "exp", &exp))
    rc = refuse(err, "missing exp");
  else if (exp < now - LEEWAY_S)
    rc = mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "access token expired; refresh it");
  else if (iter_num(&p, "nbf", &nbf) && nbf > now + LEEWAY_S)
    rc = refuse(err, "not valid yet");
  else if (iter_num(&p, "iat", &iat) && iat > now + LEEWAY_S)
    rc = refuse(err, "issued in the future");
  else if (k->issuer[0] &&
           (!iter_utf8(&it, &p, "iss", &s, &sl2) || strlen(k->issuer) != sl2 || memcmp(s, k->issuer, sl2) != 0))
    rc = refuse(err, "wrong issuer");
  else if (k->audience[0] &&
           (!iter_utf8(&it, &p, "aud", &s, &sl2) || strlen(k->audience) != sl2 || memcmp(s, k->audience, sl2) != 0))
    rc = refuse(err, "wrong audience");
  else if (!iter_utf8(&it, &p, "sub", &s, &sl2) || sl2 == 0 || sl2 >= sizeof out->subject)
    rc = refuse(err, "missing or over-long sub");
  if (rc == MQ_OK && sl2 < sizeof out->subject) {
    memcpy(out->subject, s, sl2);
    out->subject[sl2] = '\0';
    out->expires_at = exp;
    if (iter_utf8(&it, &p, "jti", &s, &sl2) && sl2 < sizeof out->token_id) {
      memcpy(out->token_id, s, sl2);
      out->token_id[sl2] = '\0';
    }
    bson_iter_t arr;
    if (bson_iter_init_find(&it, &p, "roles") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_UTF8(&arr)) continue;
        const char *r = bson_iter_utf8(&arr, NULL);
        if (!strcmp(r, "attendee")) out->roles |= MQ_ROLE_ATTENDEE;
        if (!strcmp(r, "organizer")) out->roles |= MQ_ROLE_ORGANIZER;
        if (!strcmp(r, "admin")) out->roles |= MQ_ROLE_ADMIN;
      }
    }
  }
  bson_destroy(&p);
  return rc;
}

/* ---- sign ----------------------------------------------------------------- */

char *mq_jwt_sign_raw(const char *header_json, const char *payload_json, const void *secret, size_t secret_len) {
  size_t hl = strlen(header_json), pl = strlen(payload_json);
  size_t cap = (hl + pl) * 4 / 3 + 128;
  char *out = mq_xmalloc(cap);
  size_t n = mq_base64url_encode((const unsigned char *)header_json, hl, out);
  out[n++] = '.';
  n += mq_base64url_encode((const unsigned char *)payload_json, pl, out + n);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)out, n, mac, &mac_len);
  out[n++] = '.';
  mq_base64url_encode(mac, mac_len, out + n);
  return out;
}

char *mq_jwt_sign(const mq_jwt_keys_t *k, const char *subject, uint32_t roles, int64_t ttl_seconds) {
  if (!k || k->n == 0 || !subject || !subject[0] || strlen(subject) > 63) return NULL;
  for (const char *c = subject; *c; c++) /* ids only: nothing that needs JSON escaping */
    if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.' && *c != ':' && *c != '@') return NULL;
  const key_t_ *key = &k->keys[0];
  char header[96], payload[1024], jti[33];
  snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key->kid);
  mq_random_hex(jti, 32);
  int64_t now = (int64_t)time(NULL);
  snprintf(
      payload, sizeof payload,
      "{\"sub\":\"%s\",\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\",\"roles\":[%s%s%s%s%s]}",
      subject, k->issuer, k->audience, (long long)now, (long long)(now + ttl_seconds), jti,
      (roles & MQ_ROLE_ATTENDEE) ? "\"attendee\"" : "",
      (roles & MQ_ROLE_ATTENDEE) && (roles & (MQ_ROLE_ORGANIZER | MQ_ROLE_ADMIN)) ? "," : "",
      (roles & MQ_ROLE_ORGANIZER) ? "\"organizer\"" : "",
      (roles & MQ_ROLE_ORGANIZER) && (roles & MQ_ROLE_ADMIN) ? "," : "", (roles & MQ_ROLE_ADMIN) ? "\"admin\"" : "");
  return mq_jwt_sign_raw(header, payload, key->secret, key->secret_len);
}
