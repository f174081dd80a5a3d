/*
 * mq_jwks.c — JWKS parsing and OIDC ID token verification (see mq_jwks.h).
 * JSON is read with libbson's JSON reader (as in mq_jwt.c); keys are built
 * with OpenSSL 3's EVP_PKEY_fromdata and signatures checked with
 * EVP_DigestVerify. A parsed set is never modified, hence shareable across
 * threads. Every refusal is UNAUTHENTICATED with a fixed message.
 */
#include "lib/mq_jwks.h"
#include "core/mq_ids.h"
#include "core/mq_xmalloc.h"

#include <bson/bson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 64
#define MAX_KID 256
#define MAX_SUB 255
#define MAX_CLAIM 2048
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

typedef enum { KTY_RSA, KTY_EC } kty_t;

typedef enum { ALG_ANY = 0, ALG_RS256, ALG_RS384, ALG_RS512, ALG_PS256, ALG_ES256, ALG_ES384 } alg_t;

static const struct {
  const char *name;
  alg_t alg;
  kty_t kty;
  size_t ec_coord; /* EC: bytes per coordinate (32 = P-256, 48 = P-384) */
} ALGS[] = {
    {"RS256", ALG_RS256, KTY_RSA, 0}, {"RS384", ALG_RS384, KTY_RSA, 0}, {"RS512", ALG_RS512, KTY_RSA, 0},
    {"PS256", ALG_PS256, KTY_RSA, 0}, {"ES256", ALG_ES256, KTY_EC, 32}, {"ES384", ALG_ES384, KTY_EC, 48},
};
#define N_ALGS (sizeof ALGS / sizeof ALGS[0])

typedef struct {
  char *kid; /* NUL-free, 1..MAX_KID bytes */
  size_t kid_len;
  kty_t kty;
  alg_t alg;       /* the JWK's own "alg", or ALG_ANY */
  size_t ec_coord; /* EC only */
  EVP_PKEY *pkey;  /* public key; only read after parse */
} jwk_t;

struct mq_jwks {
  jwk_t keys[MAX_KEYS];
  size_t n;
  size_t ignored;
};

/* ---- small helpers ---------------------------------------------------------- */

/* Decodes unpadded, canonical base64url into a fresh buffer (caller frees);
 * NULL on bad input. */
static unsigned char *b64url_decode(const char *in, size_t n, size_t *out_len) {
  unsigned char *out = mq_xmalloc(n / 4 * 3 + 3);
  long got = mq_base64url_decode(in, n, out, n / 4 * 3 + 3);
  if (got < 0) {
    free(out);
    return NULL;
  }
  *out_len = (size_t)got;
  return out;
}

static bool eq_lit(const char *s, uint32_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* 1: string (in *s, *n); 0: absent; -1: present but not a string. */
static int get_str(const bson_t *doc, const char *key, const char **s, uint32_t *n) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return 0;
  if (!BSON_ITER_HOLDS_UTF8(&it)) return -1;
  *s = bson_iter_utf8(&it, n);
  return 1;
}

/* 1: a number that fits int64 (in *v); 0: absent; -1: present but not one. */
static int get_num(const bson_t *doc, const char *key, int64_t *v) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return 0;
  if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
    *v = bson_iter_as_int64(&it);
    return 1;
  }
  if (BSON_ITER_HOLDS_DOUBLE(&it)) {
    double d = bson_iter_double(&it);
    if (!(d > -9.2e18 && d < 9.2e18)) return -1; /* NaN or out of int64 range */
    *v = (int64_t)d;
    return 1;
  }
  return -1;
}

static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

static int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? INT64_MIN : INT64_MAX;
  return r;
}

static const EVP_MD *alg_md(alg_t alg) {
  switch (alg) {
    case ALG_RS384:
    case ALG_ES384:
      return EVP_sha384();
    case ALG_RS512:
      return EVP_sha512();
    default:
      return EVP_sha256();
  }
}

static int alg_index(const char *s, uint32_t n) {
  for (size_t i = 0; i < N_ALGS; i++)
    if (eq_lit(s, n, ALGS[i].name)) return (int)i;
  return -1;
}

/* ---- keys ----------------------------------------------------------------- */

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (pkey) { /* on-curve point, odd modulus, sane exponent, ... */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
      EVP_PKEY_free(pkey);
      pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
  }
  return pkey;
}

static EVP_PKEY *rsa_key(const bson_t *jwk) {
  const char *ns = NULL, *es = NULL;
  uint32_t nn = 0, en = 0;
  if (get_str(jwk, "n", &ns, &nn) != 1 || get_str(jwk, "e", &es, &en) != 1) return NULL;
  if (nn > (RSA_MAX_BITS / 8 + 2) * 4 / 3 + 4 || en > 16) return NULL;
  size_t nl = 0, el = 0;
  unsigned char *nb = b64url_decode(ns, nn, &nl), *eb = b64url_decode(es, en, &el);
  BIGNUM *n = nb && nl ? BN_bin2bn(nb, (int)nl, NULL) : NULL;
  BIGNUM *e = eb && el ? BN_bin2bn(eb, (int)el, NULL) : NULL;
  free(nb);
  free(eb);
  EVP_PKEY *pkey = NULL;
  if (n && e && BN_num_bits(n) >= RSA_MIN_BITS && BN_num_bits(n) <= RSA_MAX_BITS && BN_is_odd(e) &&
      BN_num_bits(e) > 1 && BN_num_bits(e) <= 64) {
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
      pkey = pkey_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
  }
  BN_free(n);
  BN_free(e);
  return pkey;
}

static EVP_PKEY *ec_key(const bson_t *jwk, const char *group, size_t coord) {
  const char *xs = NULL, *ys = NULL;
  uint32_t xn = 0, yn = 0;
  if (get_str(jwk, "x", &xs, &xn) != 1 || get_str(jwk, "y", &ys, &yn) != 1) return NULL;
  if (xn > 128 || yn > 128) return NULL;
  size_t xl = 0, yl = 0;
  unsigned char *xb = b64url_decode(xs, xn, &xl), *yb = b64url_decode(ys, yn, &yl);
  EVP_PKEY *pkey = NULL;
  if (xb && yb && xl == coord && yl == coord) { /* RFC 7518 §6.2.1.2: full length */
    unsigned char pt[1 + 2 * 48];
    pt[0] = 0x04; /* uncompressed x || y */
    memcpy(pt + 1, xb, coord);
    memcpy(pt + 1 + coord, yb, coord);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * coord))
      pkey = pkey_from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
  }
  free(xb);
  free(yb);
  return pkey;
}

/* Fills *k from one JWK, or returns false (the key is ignored). */
static bool parse_key(const bson_t *jwk, jwk_t *k) {
  const char *s = NULL;
  uint32_t n = 0;
  memset(k, 0, sizeof *k);

  int r = get_str(jwk, "use", &s, &n);
  if (r < 0 || (r == 1 && !eq_lit(s, n, "sig"))) return false;
  bson_iter_t it, ops;
  if (bson_iter_init_find(&it, jwk, "key_ops")) {
    bool verify = false;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ops)) return false;
    while (bson_iter_next(&ops))
      if (BSON_ITER_HOLDS_UTF8(&ops)) {
        uint32_t on = 0;
        const char *op = bson_iter_utf8(&ops, &on);
        verify = verify || eq_lit(op, on, "verify");
      }
    if (!verify) return false;
  }
  const char *kid = NULL;
  uint32_t kid_len = 0;
  if (get_str(jwk, "kid", &kid, &kid_len) != 1 || kid_len == 0 || kid_len > MAX_KID || memchr(kid, '\0', kid_len))
    return false;
  r = get_str(jwk, "alg", &s, &n);
  if (r < 0) return false;
  int ai = r == 1 ? alg_index(s, n) : -1;
  if (r == 1 && ai < 0) return false; /* an alg we do not verify with (or an encryption alg) */
  k->alg = ai >= 0 ? ALGS[ai].alg : ALG_ANY;

  if (get_str(jwk, "kty", &s, &n) != 1) return false;
  if (eq_lit(s, n, "RSA")) {
    if (ai >= 0 && ALGS[ai].kty != KTY_RSA) return false;
    k->kty = KTY_RSA;
    k->pkey = rsa_key(jwk);
  } else if (eq_lit(s, n, "EC")) {
    const char *crv = NULL;
    uint32_t cn = 0;
    if (get_str(jwk, "crv", &crv, &cn) != 1) return false;
    const char *group = NULL;
    if (eq_lit(crv, cn, "P-256")) {
      group = "prime256v1";
      k->ec_coord = 32;
    } else if (eq_lit(crv, cn, "P-384")) {
      group = "secp384r1";
      k->ec_coord = 48;
    } else {
      return false;
    }
    if (ai >= 0 && (ALGS[ai].kty != KTY_EC || ALGS[ai].ec_coord != k->ec_coord)) return false;
    k->kty = KTY_EC;
    k->pkey = ec_key(jwk, group, k->ec_coord);
  }
  if (!k->pkey) {
    ERR_clear_error();
    return false;
  }
  k->kid = mq_xmalloc((size_t)kid_len + 1);
  memcpy(k->kid, kid, kid_len);
  k->kid[kid_len] = '\0';
  k->kid_len = kid_len;
  return true;
}

static mq_code_t jwks_bad(mq_error_t *err, const char *why) {
  return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "jwks: %s", why);
}

mq_code_t mq_jwks_parse(const char *json, size_t len, mq_jwks_t **out, mq_error_t *err) {
  if (!out) return mq_error_set(err, MQ_INTERNAL, NULL, "jwks: no output");
  *out = NULL;
  if (!json || len == 0) return jwks_bad(err, "empty document");
  if (len > MQ_JWKS_MAX_JSON) return jwks_bad(err, "document larger than 256 KiB");
  bson_error_t berr;
  bson_t *doc = bson_new_from_json((const uint8_t *)json, (ssize_t)len, &berr);
  if (!doc) return jwks_bad(err, "not valid JSON");
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, doc, "keys") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) {
    bson_destroy(doc);
    return jwks_bad(err, "no \"keys\" array");
  }
  mq_jwks_t *s = mq_xcalloc(1, sizeof *s);
  while (bson_iter_next(&arr)) {
    const uint8_t *data = NULL;
    uint32_t dlen = 0;
    bson_t jwk;
    if (s->n == MAX_KEYS || !BSON_ITER_HOLDS_DOCUMENT(&arr)) {
      s->ignored++;
      continue;
    }
    bson_iter_document(&arr, &dlen, &data);
    if (bson_init_static(&jwk, data, dlen) && parse_key(&jwk, &s->keys[s->n]))
      s->n++;
    else
      s->ignored++;
  }
  bson_destroy(doc);
  if (s->n == 0) {
    size_t ignored = s->ignored;
    mq_jwks_free(s);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "jwks: no usable signing key (%zu ignored)", ignored);
  }
  *out = s;
  return MQ_OK;
}

void mq_jwks_free(mq_jwks_t *jwks) {
  if (!jwks) return;
  for (size_t i = 0; i < jwks->n; i++) {
    EVP_PKEY_free(jwks->keys[i].pkey);
    free(jwks->keys[i].kid);
  }
  free(jwks);
}

size_t mq_jwks_count(const mq_jwks_t *jwks) {
  return jwks ? jwks->n : 0;
}

size_t mq_jwks_ignored(const mq_jwks_t *jwks) {
  return jwks ? jwks->ignored : 0;
}

static const jwk_t *find_kid(const mq_jwks_t *jwks, const char *kid, size_t len, size_t from) {
  for (size_t i = from; i < jwks->n; i++)
    if (jwks->keys[i].kid_len == len && memcmp(jwks->keys[i].kid, kid, len) == 0) return &jwks->keys[i];
  return NULL;
}

bool mq_jwks_has_kid(const mq_jwks_t *jwks, const char *kid) {
  return jwks && kid && find_kid(jwks, kid, strlen(kid), 0) != NULL;
}

/* ---- signatures ----------------------------------------------------------- */

static bool key_fits(const jwk_t *k, int ai) {
  if (ALGS[ai].kty != k->kty) return false;
  if (k->alg != ALG_ANY && k->alg != ALGS[ai].alg) return false;
  return k->kty != KTY_EC || ALGS[ai].ec_coord == k->ec_coord;
}

/* JWS ECDSA signatures are r || s (RFC 7518 §3.4); OpenSSL wants DER. */
static unsigned char *ecdsa_raw_to_der(const unsigned char *sig, size_t half, size_t *der_len) {
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
  if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return NULL;
  }
  unsigned char *der = NULL;
  int n = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es); /* frees r and s */
  if (n <= 0) return NULL;
  *der_len = (size_t)n;
  return der;
}

/* 1 = valid, 0 = invalid signature, -1 = wrong signature length. */
static int verify_sig(const jwk_t *k, alg_t alg, const unsigned char *msg, size_t mlen, const unsigned char *sig,
                      size_t slen) {
  unsigned char *der = NULL;
  if (k->kty == KTY_EC) {
    if (slen != 2 * k->ec_coord) return -1;
    der = ecdsa_raw_to_der(sig, k->ec_coord, &slen);
    if (!der) return 0;
    sig = der;
  } else if (slen != (size_t)EVP_PKEY_get_size(k->pkey)) {
    return -1;
  }
  int ok = 0;
  EVP_MD_CTX *mctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL; /* owned by mctx */
  const EVP_MD *md = alg_md(alg);
  if (mctx && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, k->pkey) == 1 &&
      (alg != ALG_PS256 || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
                            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1)))
    ok = EVP_DigestVerify(mctx, sig, slen, msg, mlen) == 1;
  EVP_MD_CTX_free(mctx);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

/* ---- verify --------------------------------------------------------------- */

static mq_code_t refuse(mq_error_t *err, const char *why) {
  return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "%s", why);
}

/* A copy of a string claim, or NULL if absent, not a string, too long or
 * holding a NUL. */
static char *dup_claim(const bson_t *doc, const char *key, size_t max) {
  const char *s = NULL;
  uint32_t n = 0;
  if (get_str(doc, key, &s, &n) != 1 || n > max || memchr(s, '\0', n)) return NULL;
  char *c = mq_xmalloc((size_t)n + 1);
  memcpy(c, s, n);
  c[n] = '\0';
  return c;
}

static bool is_ours(const char *s, uint32_t n, const mq_oidc_expect_t *e) {
  for (size_t i = 0; i < e->n_audiences; i++)
    if (e->audiences[i] && eq_lit(s, n, e->audiences[i])) return true;
  return false;
}

/* NULL if aud/azp are acceptable, else the reason. */
static const char *check_aud(const bson_t *p, const mq_oidc_expect_t *e) {
  bson_iter_t it, arr;
  const char *s = NULL;
  uint32_t n = 0;
  if (!bson_iter_init_find(&it, p, "aud")) return "id token has no audience";
  if (BSON_ITER_HOLDS_UTF8(&it)) {
    s = bson_iter_utf8(&it, &n);
    return is_ours(s, n, e) ? NULL : "id token audience mismatch";
  }
  if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) return "id token audience mismatch";
  size_t entries = 0;
  bool found = false;
  while (bson_iter_next(&arr)) {
    entries++;
    if (BSON_ITER_HOLDS_UTF8(&arr)) {
      s = bson_iter_utf8(&arr, &n);
      found = found || is_ours(s, n, e);
    }
  }
  if (!found) return "id token audience mismatch";
  if (entries > 1) {
    int r = get_str(p, "azp", &s, &n);
    if (r < 0 || (r == 1 && !is_ours(s, n, e))) return "id token authorized party (azp) mismatch";
  }
  return NULL;
}

/* NULL if the claims pass, else the reason. Fills iat/exp. */
static const char *check_claims(const bson_t *p, const mq_oidc_expect_t *e, int64_t *iat, int64_t *exp) {
  const char *s = NULL;
  uint32_t n = 0;
  int64_t nbf = 0;
  int64_t leeway = e->leeway_s > 0 ? e->leeway_s : 0;
  int64_t late = sat_add(e->now, leeway), early = sat_sub(e->now, leeway);

  if (get_str(p, "iss", &s, &n) != 1 || !eq_lit(s, n, e->issuer)) return "id token issuer mismatch";
  const char *why = check_aud(p, e);
  if (why) return why;
  if (get_num(p, "exp", exp) != 1) return "id token has no valid exp";
  if (*exp <= early) return "id token expired";
  int r = get_num(p, "nbf", &nbf);
  if (r < 0) return "id token has an invalid nbf";
  if (r == 1 && nbf > late) return "id token not yet valid";
  if (get_num(p, "iat", iat) != 1) return "id token has no valid iat";
  if (*iat > late) return "id token issued in the future";
  if (e->max_age_s > 0 && *iat < sat_sub(sat_sub(e->now, e->max_age_s), leeway)) return "id token too old";
  if (e->nonce) {
    r = get_str(p, "nonce", &s, &n);
    if (r != 1) return "id token nonce missing";
    size_t want = strlen(e->nonce);
    if (n != want || CRYPTO_memcmp(s, e->nonce, want) != 0) return "id token nonce mismatch";
  }
  if (get_str(p, "sub", &s, &n) != 1 || n == 0 || n > MAX_SUB || memchr(s, '\0', n)) return "id token has no valid sub";
  return NULL;
}

static void copy_claims(const bson_t *p, mq_oidc_claims_t *out) {
  out->sub = dup_claim(p, "sub", MAX_SUB);
  out->email = dup_claim(p, "email", MAX_CLAIM);
  out->name = dup_claim(p, "name", MAX_CLAIM);
  out->given_name = dup_claim(p, "given_name", MAX_CLAIM);
  out->family_name = dup_claim(p, "family_name", MAX_CLAIM);
  out->picture = dup_claim(p, "picture", MAX_CLAIM);
  out->locale = dup_claim(p, "locale", MAX_CLAIM);
  bson_iter_t it;
  if (bson_iter_init_find(&it, p, "email_verified")) {
    if (BSON_ITER_HOLDS_BOOL(&it)) {
      out->email_verified = bson_iter_bool(&it);
    } else if (BSON_ITER_HOLDS_UTF8(&it)) {
      uint32_t n = 0;
      const char *s = bson_iter_utf8(&it, &n);
      out->email_verified = eq_lit(s, n, "true");
    }
  }
}

mq_code_t mq_oidc_verify_id_token(const mq_jwks_t *jwks, const char *token, size_t len, const mq_oidc_expect_t *expect,
                                  mq_oidc_claims_t *out, mq_error_t *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!jwks || !expect || !expect->issuer || !expect->audiences || expect->n_audiences == 0 || !out)
    return mq_error_set(err, MQ_INTERNAL, NULL, "id token verifier is not configured");
  if (!token || len == 0) return refuse(err, "id token missing");
  if (len > MQ_OIDC_MAX_TOKEN) return refuse(err, "id token too long");
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  /* header.payload.signature; an empty signature gets as far as the alg check
   * (so "alg":"none" is refused as such) and then fails on its length */
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) || d1 == token || d2 == d1 + 1)
    return refuse(err, "id token is not a JWS compact serialization");

  mq_code_t rc = MQ_OK;
  const char *why = NULL;
  size_t hl = 0, pl = 0, sl = 0;
  bson_t *h = NULL, *p = NULL;
  bson_error_t berr;
  unsigned char *hdr = b64url_decode(token, (size_t)(d1 - token), &hl);
  unsigned char *pay = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  unsigned char *sig = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), &sl);
  if (!hdr || !pay || !sig) {
    rc = refuse(err, "id token is not valid base64url");
    goto done;
  }
  if (!(h = bson_new_from_json(hdr, (ssize_t)hl, &berr))) {
    rc = refuse(err, "id token header is not JSON");
    goto done;
  }

  const char *s = NULL;
  uint32_t n = 0;
  int ai = -1;
  bson_iter_t it;
  if (get_str(h, "alg", &s, &n) != 1)
    why = "id token header has no alg";
  else if (eq_lit(s, n, "none"))
    why = "id token is not signed (alg none)";
  else if ((ai = alg_index(s, n)) < 0)
    why = "id token alg not allowed";
  else if (bson_iter_init_find(&it, h, "crit"))
    why = "id token has an unsupported critical header";
  else if (get_str(h, "kid", &s, &n) != 1 || n == 0)
    why = "id token header has no kid";
  if (why) {
    rc = refuse(err, why);
    goto done;
  }
  const jwk_t *key = find_kid(jwks, s, n, 0);
  if (!key) {
    rc = refuse(err, "id token signed with unknown key");
    goto done;
  }
  while (key && !key_fits(key, ai)) key = find_kid(jwks, s, n, (size_t)(key - jwks->keys) + 1);
  if (!key) {
    rc = refuse(err, "id token alg does not match its key");
    goto done;
  }
  int v = verify_sig(key, ALGS[ai].alg, (const unsigned char *)token, (size_t)(d2 - token), sig, sl);
  if (v != 1) {
    rc = refuse(err, v < 0 ? "id token signature has the wrong length" : "id token signature invalid");
    goto done;
  }

  if (!(p = bson_new_from_json(pay, (ssize_t)pl, &berr))) {
    rc = refuse(err, "id token claims are not JSON");
    goto done;
  }
  int64_t iat = 0, exp = 0;
  if ((why = check_claims(p, expect, &iat, &exp))) {
    rc = refuse(err, why);
    goto done;
  }
  copy_claims(p, out);
  out->iat = iat;
  out->exp = exp;

done:
  if (h) bson_destroy(h);
  if (p) bson_destroy(p);
  free(hdr);
  free(pay);
  free(sig);
  return rc;
}

void mq_oidc_claims_clear(mq_oidc_claims_t *c) {
  if (!c) return;
  free(c->sub);
  free(c->email);
  free(c->name);
  free(c->given_name);
  free(c->family_name);
  free(c->picture);
  free(c->locale);
  memset(c, 0, sizeof *c);
}
