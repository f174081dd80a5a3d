/*
 * test_jwks.c — cmocka tests for lib/mq_jwks.c: JWKS parsing and OIDC ID
 * token verification.
 *
 * Keys are generated here with OpenSSL (RSA 2048, RSA 1024, EC P-256 twice,
 * EC P-384), exported as JWK JSON (base64url n/e, x/y) and tokens are signed
 * here with EVP_DigestSign (ECDSA DER signatures converted to raw r || s, as
 * JWS wants). Claims use a fixed clock (NOW), so nothing depends on the time.
 *
 * Covers: JWKS parsing (usable and ignored keys counted: use=enc, key_ops
 * without verify, kty oct, P-521, missing kid, EC key with a foreign alg,
 * off-curve point, short coordinates, 1024-bit RSA; malformed JSON, no keys
 * array, only unusable keys → INVALID_ARGUMENT; has_kid); valid RS256, RS384,
 * RS512, PS256, ES256, ES384 tokens with claims copied out (email_verified as
 * bool, as "true"/"false" strings); duplicate kids; and refusals, each
 * UNAUTHENTICATED with the exact message: tampered payload and signature,
 * another key under a known kid, alg none, HS256 keyed with the RSA public
 * key (alg confusion), other algs, alg/key mismatches (including a JWK's own
 * alg), unknown and missing kid, crit, exp/nbf/iat around the leeway, max
 * age, iss, aud/azp, nonce, sub, ES256 signatures of the wrong length (and
 * DER), garbage and oversized tokens, non-JSON header/claims. Finally a
 * multi-threaded check that one set serves several threads at once.
 * Read next: lib/mq_jwks.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <inttypes.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "lib/mq_jwks.h"

#define ISS "https://accounts.example.com"
#define AUD "client-123.apps.example.com"
#define AUD2 "client-456.apps.example.com"
#define NONCE "n-0S6_WzA2Mj"
#define NOW ((int64_t)1700000000)
#define LEEWAY 60

static EVP_PKEY *g_rsa, *g_rsa_small, *g_ec, *g_ec_other, *g_ec384;
static mq_jwks_t *g_jwks;

/* ---- helpers --------------------------------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  return s;
}

static char *b64(const unsigned char *in, size_t n) {
  char *out = malloc(n / 3 * 4 + 5);
  if (!out) abort();
  mq_base64url_encode(in, n, out);
  return out;
}

/* Big-endian bytes of bn, left-padded to `pad` bytes (0 = minimal); a pad
 * shorter than the number keeps only its low `pad` bytes (a truncated key). */
static char *b64_bn(const BIGNUM *bn, int pad) {
  int full = BN_num_bytes(bn);
  int n = pad ? pad : full;
  int room = n > full ? n : full;
  unsigned char *buf = malloc((size_t)room);
  if (!buf || BN_bn2binpad(bn, buf, room) != room) abort();
  char *s = b64(buf + (room - n), (size_t)n);
  free(buf);
  return s;
}

/* {"kty":"RSA",<members>,"n":...,"e":...} */
static char *jwk_rsa(EVP_PKEY *k, const char *members) {
  BIGNUM *n = NULL, *e = NULL;
  if (!EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) || !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e))
    abort();
  char *nb = b64_bn(n, 0), *eb = b64_bn(e, 0);
  char *s = xasprintf("{\"kty\":\"RSA\",%s,\"n\":\"%s\",\"e\":\"%s\"}", members, nb, eb);
  free(nb);
  free(eb);
  BN_free(n);
  BN_free(e);
  return s;
}

/* {"kty":"EC",<members>,"x":...,"y":...}; `coord` bytes per coordinate (0 =
 * the key's size); off_curve nudges y so the point leaves the curve. */
static char *jwk_ec(EVP_PKEY *k, const char *members, int coord, bool off_curve) {
  BIGNUM *x = NULL, *y = NULL;
  if (!EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
      !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
    abort();
  if (off_curve) BN_add_word(y, 1);
  if (!coord) coord = (EVP_PKEY_get_bits(k) + 7) / 8;
  char *xb = b64_bn(x, coord), *yb = b64_bn(y, coord);
  char *s = xasprintf("{\"kty\":\"EC\",%s,\"x\":\"%s\",\"y\":\"%s\"}", members, xb, yb);
  free(xb);
  free(yb);
  BN_free(x);
  BN_free(y);
  return s;
}

/* Signs msg as JWS alg `how` ("RS256", "PS256", "ES256", ...). ECDSA gives raw
 * r || s unless `der`. Returns the signature length. */
static size_t sign_bytes(EVP_PKEY *key, const char *how, const char *msg, size_t n, unsigned char *sig, size_t cap,
                         bool der) {
  const EVP_MD *md = strstr(how, "384") ? EVP_sha384() : strstr(how, "512") ? EVP_sha512() : EVP_sha256();
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  unsigned char buf[1024];
  size_t bl = sizeof buf;
  assert_int_equal(EVP_DigestSignInit(m, &pc, md, NULL, key), 1);
  if (how[0] == 'P') {
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
  }
  assert_int_equal(EVP_DigestSign(m, buf, &bl, (const unsigned char *)msg, n), 1);
  EVP_MD_CTX_free(m);
  if (how[0] != 'E' || der) {
    assert_true(bl <= cap);
    memcpy(sig, buf, bl);
    return bl;
  }
  const unsigned char *p = buf;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)bl);
  assert_non_null(es);
  int coord = (EVP_PKEY_get_bits(key) + 7) / 8;
  assert_true((size_t)coord * 2 <= cap);
  assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, coord), coord);
  assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + coord, coord), coord);
  ECDSA_SIG_free(es);
  return (size_t)coord * 2;
}

/* header.payload (base64url), without the signature. */
static char *signing_input(const char *header, const char *payload) {
  char *h = b64((const unsigned char *)header, strlen(header));
  char *p = b64((const unsigned char *)payload, strlen(payload));
  char *s = xasprintf("%s.%s", h, p);
  free(h);
  free(p);
  return s;
}

static char *with_sig(char *input, const unsigned char *sig, size_t sl) {
  char *sb = b64(sig, sl);
  char *t = xasprintf("%s.%s", input, sb);
  free(sb);
  free(input);
  return t;
}

/* A token with `header` and `payload` signed by `key` as `how`; key NULL =
 * empty signature. Caller frees. */
static char *sign_tok(EVP_PKEY *key, const char *how, const char *header, const char *payload) {
  char *in = signing_input(header, payload);
  unsigned char sig[1024];
  size_t sl = key ? sign_bytes(key, how, in, strlen(in), sig, sizeof sig, false) : 0;
  return with_sig(in, sig, sl);
}

/* HS256 with an arbitrary secret (for the alg-confusion attack). */
static char *hs256_tok(const char *header, const char *payload, const void *secret, size_t slen) {
  char *in = signing_input(header, payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)in, strlen(in), mac, &ml));
  return with_sig(in, mac, ml);
}

/* Valid claims with `extra` JSON members appended (may be ""). */
static char *claims(const char *extra) {
  return xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                   "\",\"sub\":\"10769150350006150715113082367\",\"nonce\":\"" NONCE "\",\"iat\":%" PRId64
                   ",\"exp\":%" PRId64 "%s%s}",
                   NOW - 10, NOW + 3590, extra[0] ? "," : "", extra);
}

/* Claims built entirely by the caller (printf format). */
#define CLAIMS_F(...) xasprintf(__VA_ARGS__)

/* header {"alg":alg,"kid":kid,"typ":"JWT"}, signed by key as `how`. */
static char *tok_with(EVP_PKEY *key, const char *how, const char *alg, const char *kid, char *payload) {
  char *h = xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
  char *t = sign_tok(key, how, h, payload);
  free(h);
  free(payload);
  return t;
}

static char *rs256(const char *extra) {
  return tok_with(g_rsa, "RS256", "RS256", "rsa1", claims(extra));
}

static char *es256(const char *extra) {
  return tok_with(g_ec, "ES256", "ES256", "ec1", claims(extra));
}

static const char *const AUDS[] = {AUD, AUD2};

static mq_oidc_expect_t expect_default(void) {
  mq_oidc_expect_t e = {.issuer = ISS,
                        .audiences = AUDS,
                        .n_audiences = 2,
                        .nonce = NONCE,
                        .now = NOW,
                        .leeway_s = LEEWAY,
                        .max_age_s = 0};
  return e;
}

static mq_code_t verify_e(const mq_jwks_t *jwks, const char *tok, const mq_oidc_expect_t *e, mq_oidc_claims_t *c,
                          mq_error_t *err) {
  memset(err, 0, sizeof *err);
  return mq_oidc_verify_id_token(jwks, tok, tok ? strlen(tok) : 0, e, c, err);
}

static void assert_claims_zero(const mq_oidc_claims_t *c) {
  mq_oidc_claims_t zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(c, &zero, sizeof zero);
}

/* Frees `tok`; asserts an UNAUTHENTICATED refusal with exactly `why`. */
static void refused_e(const mq_jwks_t *jwks, char *tok, const mq_oidc_expect_t *e, const char *why) {
  mq_oidc_claims_t c;
  mq_error_t err;
  memset(&c, 0x5a, sizeof c); /* must be cleared even on failure */
  mq_code_t rc = verify_e(jwks, tok, e, &c, &err);
  if (rc != MQ_UNAUTHENTICATED)
    fail_msg("want refusal '%s', got %s (%s)", why, mq_code_name(rc), rc == MQ_OK ? "accepted" : err.message);
  assert_int_equal(err.code, MQ_UNAUTHENTICATED);
  assert_string_equal(err.message, why);
  assert_null(strstr(err.message, "eyJ")); /* no token fragment in the message */
  assert_claims_zero(&c);
  free(tok);
}

static void refused(char *tok, const char *why) {
  mq_oidc_expect_t e = expect_default();
  refused_e(g_jwks, tok, &e, why);
}

/* Frees `tok`; asserts acceptance and returns the claims (caller clears). */
static mq_oidc_claims_t accepted_e(const mq_jwks_t *jwks, char *tok, const mq_oidc_expect_t *e) {
  mq_oidc_claims_t c;
  mq_error_t err;
  mq_code_t rc = verify_e(jwks, tok, e, &c, &err);
  if (rc != MQ_OK) fail_msg("refused: %s %s", mq_code_name(rc), err.message);
  assert_non_null(c.sub);
  free(tok);
  return c;
}

static void accepted(char *tok) {
  mq_oidc_expect_t e = expect_default();
  mq_oidc_claims_t c = accepted_e(g_jwks, tok, &e);
  mq_oidc_claims_clear(&c);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static char *g_jwks_json;

static int group_setup(void **state) {
  (void)state;
  g_rsa = EVP_RSA_gen(2048);
  g_rsa_small = EVP_RSA_gen(1024);
  g_ec = EVP_EC_gen("P-256");
  g_ec_other = EVP_EC_gen("P-256");
  g_ec384 = EVP_EC_gen("P-384");
  if (!g_rsa || !g_rsa_small || !g_ec || !g_ec_other || !g_ec384) return -1;

  char *k[] = {
      /* usable (5) */
      jwk_rsa(g_rsa, "\"kid\":\"rsa1\",\"use\":\"sig\",\"alg\":\"RS256\""),
      jwk_rsa(g_rsa, "\"kid\":\"rsa2\",\"key_ops\":[\"verify\"]"),
      jwk_ec(g_ec, "\"kid\":\"ec1\",\"use\":\"sig\",\"alg\":\"ES256\",\"crv\":\"P-256\"", 0, false),
      jwk_ec(g_ec384, "\"kid\":\"ec384\",\"crv\":\"P-384\"", 0, false),
      jwk_ec(g_ec, "\"kid\":\"dup\",\"crv\":\"P-256\"", 0, false),
      /* ignored (10) */
      jwk_rsa(g_rsa_small, "\"kid\":\"small\",\"use\":\"sig\",\"alg\":\"RS256\""),
      jwk_rsa(g_rsa, "\"kid\":\"enc1\",\"use\":\"enc\""),
      jwk_rsa(g_rsa, "\"kid\":\"ops1\",\"key_ops\":[\"encrypt\"]"),
      jwk_rsa(g_rsa, "\"kid\":\"oaep\",\"alg\":\"RSA-OAEP\""),
      jwk_rsa(g_rsa, "\"use\":\"sig\""), /* no kid */
      jwk_ec(g_ec, "\"kid\":\"p521\",\"crv\":\"P-521\"", 0, false),
      jwk_ec(g_ec, "\"kid\":\"ec-wrong-alg\",\"crv\":\"P-256\",\"alg\":\"ES384\"", 0, false),
      jwk_ec(g_ec, "\"kid\":\"off-curve\",\"crv\":\"P-256\"", 0, true),
      jwk_ec(g_ec, "\"kid\":\"short\",\"crv\":\"P-256\"", 31, false),
      xasprintf("{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"}"),
  };
  /* a second "dup": the RSA key, after the EC one */
  char *dup_rsa = jwk_rsa(g_rsa, "\"kid\":\"dup\"");
  g_jwks_json = xasprintf("{\"keys\":[%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,42]}", k[0], k[1], k[2], k[3],
                          k[4], dup_rsa, k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14]);
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) free(k[i]);
  free(dup_rsa);
  mq_error_t err;
  if (mq_jwks_parse(g_jwks_json, strlen(g_jwks_json), &g_jwks, &err) != MQ_OK) {
    fprintf(stderr, "jwks: %s\n", err.message);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  mq_jwks_free(g_jwks);
  free(g_jwks_json);
  EVP_PKEY_free(g_rsa);
  EVP_PKEY_free(g_rsa_small);
  EVP_PKEY_free(g_ec);
  EVP_PKEY_free(g_ec_other);
  EVP_PKEY_free(g_ec384);
  return 0;
}

/* ---- JWKS ---------------------------------------------------------------------------------- */

static void test_jwks_parse_counts(void **state) {
  (void)state;
  assert_int_equal(mq_jwks_count(g_jwks), 6);    /* rsa1 rsa2 ec1 ec384 dup(EC) dup(RSA) */
  assert_int_equal(mq_jwks_ignored(g_jwks), 11); /* 10 unusable keys + the number 42 */
  assert_true(mq_jwks_has_kid(g_jwks, "rsa1"));
  assert_true(mq_jwks_has_kid(g_jwks, "ec384"));
  assert_false(mq_jwks_has_kid(g_jwks, "small"));
  assert_false(mq_jwks_has_kid(g_jwks, "enc1"));
  assert_false(mq_jwks_has_kid(g_jwks, "off-curve"));
  assert_false(mq_jwks_has_kid(g_jwks, "rsa"));
  assert_false(mq_jwks_has_kid(g_jwks, ""));
  assert_false(mq_jwks_has_kid(g_jwks, NULL));
  assert_false(mq_jwks_has_kid(NULL, "rsa1"));
  assert_int_equal(mq_jwks_count(NULL), 0);
  mq_jwks_free(NULL);
}

static void jwks_refused(const char *json, size_t len, const char *why) {
  mq_jwks_t *j = (mq_jwks_t *)0x1;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_jwks_parse(json, len, &j, &err), MQ_INVALID_ARGUMENT);
  assert_null(j);
  assert_int_equal(err.code, MQ_INVALID_ARGUMENT);
  assert_string_equal(err.message, why);
}

static void test_jwks_malformed(void **state) {
  (void)state;
  const char *bad[] = {"{", "{\"keys\":[", "not json", "{\"keys\":[{\"kty\":\"RSA\",}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) jwks_refused(bad[i], strlen(bad[i]), "jwks: not valid JSON");
  jwks_refused("{}", 2, "jwks: no \"keys\" array");
  jwks_refused("{\"keys\":{}}", 11, "jwks: no \"keys\" array");
  jwks_refused("{\"keys\":\"x\"}", 12, "jwks: no \"keys\" array");
  jwks_refused("{\"keys\":[]}", 11, "jwks: no usable signing key (0 ignored)");
  jwks_refused(NULL, 0, "jwks: empty document");
  jwks_refused("{}", 0, "jwks: empty document");
  size_t big = MQ_JWKS_MAX_JSON + 1;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, ' ', big);
  jwks_refused(huge, big, "jwks: document larger than 256 KiB");
  free(huge);
  /* only the first len bytes are read */
  jwks_refused("{\"keys\":[]}garbage", 11, "jwks: no usable signing key (0 ignored)");
}

static void test_jwks_only_unusable(void **state) {
  (void)state;
  char *small = jwk_rsa(g_rsa_small, "\"kid\":\"small\"");
  char *enc = jwk_rsa(g_rsa, "\"kid\":\"enc1\",\"use\":\"enc\"");
  char *nokid = jwk_ec(g_ec, "\"crv\":\"P-256\"", 0, false);
  char *json =
      xasprintf("{\"keys\":[%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"AAAA\"},\"str\"]}", small, enc, nokid);
  jwks_refused(json, strlen(json), "jwks: no usable signing key (5 ignored)");
  free(json);
  /* an even RSA modulus (fails OpenSSL's public-key check) */
  BIGNUM *n = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
  assert_int_equal(BN_sub_word(n, 1), 1);
  char *nb = b64_bn(n, 0);
  json = xasprintf("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"even\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", nb);
  jwks_refused(json, strlen(json), "jwks: no usable signing key (1 ignored)");
  free(json);
  free(nb);
  BN_free(n);
  /* RSA n/e that are not base64url, or missing */
  jwks_refused(
      "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"!!\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"kid\":\"b\"}]}",
      strlen("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"!!\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"kid\":"
             "\"b\"}]}"),
      "jwks: no usable signing key (2 ignored)");
  free(small);
  free(enc);
  free(nokid);
}

static void test_rsa_1024_ignored(void **state) {
  (void)state;
  char *small = jwk_rsa(g_rsa_small, "\"kid\":\"small\",\"use\":\"sig\"");
  char *big = jwk_rsa(g_rsa, "\"kid\":\"big\",\"use\":\"sig\"");
  char *json = xasprintf("{\"keys\":[%s,%s]}", small, big);
  mq_jwks_t *j = NULL;
  mq_error_t err;
  assert_int_equal(mq_jwks_parse(json, strlen(json), &j, &err), MQ_OK);
  assert_int_equal(mq_jwks_count(j), 1);
  assert_int_equal(mq_jwks_ignored(j), 1);
  assert_false(mq_jwks_has_kid(j, "small"));
  assert_true(mq_jwks_has_kid(j, "big"));
  mq_oidc_expect_t e = expect_default();
  refused_e(j, tok_with(g_rsa_small, "RS256", "RS256", "small", claims("")), &e, "id token signed with unknown key");
  mq_oidc_claims_t c = accepted_e(j, tok_with(g_rsa, "RS256", "RS256", "big", claims("")), &e);
  mq_oidc_claims_clear(&c);
  mq_jwks_free(j);
  free(json);
  free(small);
  free(big);
}

/* ---- accepted ------------------------------------------------------------------------------ */

static void test_valid_rs256(void **state) {
  (void)state;
  mq_oidc_expect_t e = expect_default();
  mq_oidc_claims_t c = accepted_e(
      g_jwks,
      rs256("\"email\":\"ada@example.com\",\"email_verified\":true,\"name\":\"Ada Lovelace\",\"given_name\":\"Ada\","
            "\"family_name\":\"Lovelace\",\"picture\":\"https://img.example.com/a.png\",\"locale\":\"en-GB\","
            "\"azp\":\"someone-else\",\"at_hash\":\"x\""),
      &e);
  assert_string_equal(c.sub, "10769150350006150715113082367");
  assert_string_equal(c.email, "ada@example.com");
  assert_true(c.email_verified);
  assert_string_equal(c.name, "Ada Lovelace");
  assert_string_equal(c.given_name, "Ada");
  assert_string_equal(c.family_name, "Lovelace");
  assert_string_equal(c.picture, "https://img.example.com/a.png");
  assert_string_equal(c.locale, "en-GB");
  assert_int_equal(c.iat, NOW - 10);
  assert_int_equal(c.exp, NOW + 3590);
  mq_oidc_claims_clear(&c);
  assert_claims_zero(&c);
  mq_oidc_claims_clear(&c); /* twice is fine */
  mq_oidc_claims_clear(NULL);

  /* only len bytes are read: the token need not be NUL-terminated */
  char *t = rs256("");
  char *padded = xasprintf("%s.garbage", t);
  mq_error_t err;
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, padded, strlen(t), &e, &c, &err), MQ_OK);
  mq_oidc_claims_clear(&c);
  free(padded);
  free(t);
}

static void test_valid_es256(void **state) {
  (void)state;
  mq_oidc_expect_t e = expect_default();
  /* Apple: email_verified is a string, no name */
  mq_oidc_claims_t c =
      accepted_e(g_jwks, es256("\"email\":\"x@privaterelay.example.com\",\"email_verified\":\"true\""), &e);
  assert_string_equal(c.email, "x@privaterelay.example.com");
  assert_true(c.email_verified);
  assert_null(c.name);
  assert_null(c.picture);
  mq_oidc_claims_clear(&c);

  c = accepted_e(g_jwks, es256("\"email\":\"y@example.com\",\"email_verified\":\"false\""), &e);
  assert_false(c.email_verified);
  mq_oidc_claims_clear(&c);
  c = accepted_e(g_jwks, es256("\"email_verified\":\"TRUE\""), &e);
  assert_false(c.email_verified);
  mq_oidc_claims_clear(&c);
  c = accepted_e(g_jwks, es256("\"email_verified\":1"), &e);
  assert_false(c.email_verified);
  mq_oidc_claims_clear(&c);
  c = accepted_e(g_jwks, es256(""), &e);
  assert_false(c.email_verified);
  assert_null(c.email);
  mq_oidc_claims_clear(&c);

  /* a NUL inside an optional claim: dropped, never truncated */
  c = accepted_e(g_jwks, es256("\"email\":\"v@example.com\\u0000@evil.example\",\"name\":7"), &e);
  assert_null(c.email);
  assert_null(c.name);
  mq_oidc_claims_clear(&c);

  /* times as JSON doubles */
  c = accepted_e(g_jwks,
                 tok_with(g_ec, "ES256", "ES256", "ec1",
                          CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"s\",\"nonce\":\"" NONCE
                                   "\",\"iat\":1699999990.0,\"exp\":1700000100.5}")),
                 &e);
  assert_int_equal(c.iat, 1699999990);
  assert_int_equal(c.exp, 1700000100);
  mq_oidc_claims_clear(&c);
}

static void test_valid_other_algs(void **state) {
  (void)state;
  accepted(tok_with(g_rsa, "RS384", "RS384", "rsa2", claims("")));
  accepted(tok_with(g_rsa, "RS512", "RS512", "rsa2", claims("")));
  accepted(tok_with(g_rsa, "PS256", "PS256", "rsa2", claims("")));
  accepted(tok_with(g_rsa, "RS256", "RS256", "rsa2", claims("")));
  accepted(tok_with(g_ec384, "ES384", "ES384", "ec384", claims("")));
  /* "dup" names an EC and an RSA key: each alg finds its own */
  accepted(tok_with(g_ec, "ES256", "ES256", "dup", claims("")));
  accepted(tok_with(g_rsa, "RS256", "RS256", "dup", claims("")));
  refused(tok_with(g_ec384, "ES384", "ES384", "dup", claims("")), "id token alg does not match its key");
  /* PS256 signed but labelled RS256 (and the reverse): padding differs */
  refused(tok_with(g_rsa, "PS256", "RS256", "rsa2", claims("")), "id token signature invalid");
  refused(tok_with(g_rsa, "RS256", "PS256", "rsa2", claims("")), "id token signature invalid");
  refused(tok_with(g_rsa, "RS256", "RS384", "rsa2", claims("")), "id token signature invalid");
}

/* ---- signature and header refusals ------------------------------------------------------------ */

static void test_tampered_payload(void **state) {
  (void)state;
  char *a = rs256("");
  char *b = tok_with(g_rsa, "RS256", "RS256", "rsa1",
                     CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"admin\",\"nonce\":\"" NONCE
                              "\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
                              NOW, NOW + 600));
  /* b's header.payload with a's signature */
  char *sig_a = strrchr(a, '.');
  char *dot_b = strrchr(b, '.');
  *dot_b = '\0';
  refused(xasprintf("%s%s", b, sig_a), "id token signature invalid");
  /* the same for ES256 */
  char *c = es256("");
  char *d = es256("\"email\":\"evil@example.com\"");
  *strrchr(d, '.') = '\0';
  refused(xasprintf("%s%s", d, strrchr(c, '.')), "id token signature invalid");
  free(a);
  free(b);
  free(c);
  free(d);
}

static void flip_sig_char(char *t) {
  char *s = strrchr(t, '.') + 5; /* well inside the signature: no padding-bit issues */
  *s = *s == 'A' ? 'B' : 'A';
}

static void test_tampered_signature(void **state) {
  (void)state;
  char *t = rs256("");
  flip_sig_char(t);
  refused(t, "id token signature invalid");
  t = es256("");
  flip_sig_char(t);
  refused(t, "id token signature invalid");
  t = tok_with(g_ec384, "ES384", "ES384", "ec384", claims(""));
  flip_sig_char(t);
  refused(t, "id token signature invalid");
  t = tok_with(g_rsa, "PS256", "PS256", "rsa2", claims(""));
  flip_sig_char(t);
  refused(t, "id token signature invalid");
  /* RSA signatures one byte short and one byte long */
  char *p = claims("");
  char *in = signing_input("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", p);
  unsigned char sig[1024];
  size_t sl = sign_bytes(g_rsa, "RS256", in, strlen(in), sig, sizeof sig, false);
  assert_int_equal(sl, 256);
  refused(with_sig(xasprintf("%s", in), sig, sl - 1), "id token signature has the wrong length");
  sig[sl] = 0;
  refused(with_sig(xasprintf("%s", in), sig, sl + 1), "id token signature has the wrong length");
  accepted(with_sig(in, sig, sl));
  free(p);
  /* another key of the right type under a known kid */
  refused(tok_with(g_ec_other, "ES256", "ES256", "ec1", claims("")), "id token signature invalid");
  refused(tok_with(g_rsa_small, "RS256", "RS256", "rsa1", claims("")), "id token signature has the wrong length");
}

static void test_alg_none(void **state) {
  (void)state;
  char *p = claims("");
  refused(sign_tok(NULL, "none", "{\"alg\":\"none\",\"kid\":\"rsa1\"}", p), "id token is not signed (alg none)");
  refused(sign_tok(NULL, "none", "{\"alg\":\"none\"}", p), "id token is not signed (alg none)");
  /* with an RSA signature still attached */
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"none\",\"kid\":\"rsa1\"}", p), "id token is not signed (alg none)");
  /* an empty signature with a real alg */
  refused(sign_tok(NULL, "none", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", p), "id token signature has the wrong length");
  refused(sign_tok(NULL, "none", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", p), "id token signature has the wrong length");
  refused(sign_tok(g_rsa, "RS256", "{\"kid\":\"rsa1\"}", p), "id token header has no alg");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":256,\"kid\":\"rsa1\"}", p), "id token header has no alg");
  const char *other[] = {"None", "NONE", "rs256", "RS256 ", "PS384", "PS512", "ES512", "EdDSA", "RSA-OAEP", ""};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
    char *h = xasprintf("{\"alg\":\"%s\",\"kid\":\"rsa1\"}", other[i]);
    refused(sign_tok(g_rsa, "RS256", h, p), "id token alg not allowed");
    free(h);
  }
  free(p);
}

static void test_alg_confusion_hs256(void **state) {
  (void)state;
  char *p = claims("");
  /* the RSA public key as an attacker would find it: PEM SPKI, DER SPKI, raw n */
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, g_rsa), 1);
  char *pem = NULL;
  long pem_len = BIO_get_mem_data(bio, &pem);
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY(g_rsa, &der);
  assert_true(der_len > 0);
  BIGNUM *n = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
  unsigned char nb[512];
  int nl = BN_bn2bin(n, nb);
  const char *kids[] = {"rsa1", "rsa2", "dup"};
  for (size_t i = 0; i < 3; i++) {
    char *h = xasprintf("{\"alg\":\"HS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kids[i]);
    refused(hs256_tok(h, p, pem, (size_t)pem_len), "id token alg not allowed");
    refused(hs256_tok(h, p, der, (size_t)der_len), "id token alg not allowed");
    refused(hs256_tok(h, p, nb, (size_t)nl), "id token alg not allowed");
    free(h);
  }
  refused(hs256_tok("{\"alg\":\"HS512\",\"kid\":\"rsa1\"}", p, pem, (size_t)pem_len), "id token alg not allowed");
  refused(hs256_tok("{\"alg\":\"HS384\",\"kid\":\"hmac\"}", p, "secret", 6), "id token alg not allowed");
  BN_free(n);
  OPENSSL_free(der);
  BIO_free(bio);
  free(p);
}

static void test_alg_key_mismatch(void **state) {
  (void)state;
  const char *why = "id token alg does not match its key";
  /* RS256 header, kid of an EC key (signed with RSA, and with the EC key) */
  refused(tok_with(g_rsa, "RS256", "RS256", "ec1", claims("")), why);
  refused(tok_with(g_ec, "ES256", "RS256", "ec1", claims("")), why);
  /* ES256 header, kid of an RSA key */
  refused(tok_with(g_ec, "ES256", "ES256", "rsa2", claims("")), why);
  /* curve/alg mismatches */
  refused(tok_with(g_ec384, "ES384", "ES384", "ec1", claims("")), why);
  refused(tok_with(g_ec, "ES256", "ES384", "ec1", claims("")), why);
  refused(tok_with(g_ec384, "ES384", "ES256", "ec384", claims("")), why);
  /* the JWK's own "alg":"RS256" pins the key */
  refused(tok_with(g_rsa, "PS256", "PS256", "rsa1", claims("")), why);
  refused(tok_with(g_rsa, "RS512", "RS512", "rsa1", claims("")), why);
}

static void test_kid(void **state) {
  (void)state;
  char *p = claims("");
  refused(tok_with(g_rsa, "RS256", "RS256", "rsa3", claims("")), "id token signed with unknown key");
  refused(tok_with(g_rsa, "RS256", "RS256", "RSA1", claims("")), "id token signed with unknown key");
  refused(tok_with(g_rsa, "RS256", "RS256", "rsa1 ", claims("")), "id token signed with unknown key");
  refused(tok_with(g_rsa_small, "RS256", "RS256", "small", claims("")), "id token signed with unknown key");
  refused(tok_with(g_rsa, "RS256", "RS256", "enc1", claims("")), "id token signed with unknown key");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\\u0000x\"}", p),
          "id token signed with unknown key");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\"}", p), "id token header has no kid");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"\"}", p), "id token header has no kid");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":1}", p), "id token header has no kid");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":null}", p), "id token header has no kid");
  /* embedded keys are never trusted: a jwk header does not stand in for kid */
  char *jwk = jwk_rsa(g_rsa, "\"use\":\"sig\"");
  char *h = xasprintf("{\"alg\":\"RS256\",\"jwk\":%s}", jwk);
  refused(sign_tok(g_rsa, "RS256", h, p), "id token header has no kid");
  free(h);
  free(jwk);
  free(p);
}

static void test_crit(void **state) {
  (void)state;
  char *p = claims("");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"],\"exp\":1}", p),
          "id token has an unsupported critical header");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"b64\"],\"b64\":false}", p),
          "id token has an unsupported critical header");
  refused(sign_tok(g_ec, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[]}", p),
          "id token has an unsupported critical header");
  free(p);
}

static void test_es256_signature_length(void **state) {
  (void)state;
  char *p = claims("");
  char *in = signing_input("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", p);
  unsigned char sig[1024];
  size_t sl = sign_bytes(g_ec, "ES256", in, strlen(in), sig, sizeof sig, false);
  assert_int_equal(sl, 64);
  accepted(with_sig(xasprintf("%s", in), sig, 64));
  refused(with_sig(xasprintf("%s", in), sig, 63), "id token signature has the wrong length");
  sig[64] = 0;
  refused(with_sig(xasprintf("%s", in), sig, 65), "id token signature has the wrong length");
  memset(sig + 64, 0, 32);
  refused(with_sig(xasprintf("%s", in), sig, 96), "id token signature has the wrong length");
  /* the DER form OpenSSL produces is not a JWS signature */
  size_t dl = sign_bytes(g_ec, "ES256", in, strlen(in), sig, sizeof sig, true);
  assert_int_not_equal(dl, 64);
  refused(with_sig(xasprintf("%s", in), sig, dl), "id token signature has the wrong length");
  /* r = s = 0 */
  memset(sig, 0, 64);
  refused(with_sig(xasprintf("%s", in), sig, 64), "id token signature invalid");
  free(in);
  /* ES384 wants 96 */
  in = signing_input("{\"alg\":\"ES384\",\"kid\":\"ec384\"}", p);
  sl = sign_bytes(g_ec384, "ES384", in, strlen(in), sig, sizeof sig, false);
  assert_int_equal(sl, 96);
  refused(with_sig(xasprintf("%s", in), sig, 64), "id token signature has the wrong length");
  accepted(with_sig(in, sig, 96));
  free(p);
}

/* ---- claims ------------------------------------------------------------------------------------ */

/* Claims with iat/exp given and an optional extra member list. */
static char *timed(int64_t iat, int64_t exp, const char *extra) {
  return tok_with(g_rsa, "RS256", "RS256", "rsa1",
                  CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u1\",\"nonce\":\"" NONCE
                           "\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "%s%s}",
                           iat, exp, extra[0] ? "," : "", extra));
}

static void test_exp(void **state) {
  (void)state;
  refused(timed(NOW - 7200, NOW - 3600, ""), "id token expired");
  refused(timed(NOW - 7200, NOW - LEEWAY - 1, ""), "id token expired");
  refused(timed(NOW - 7200, NOW - LEEWAY, ""), "id token expired"); /* exp must be > now - leeway */
  accepted(timed(NOW - 7200, NOW - LEEWAY + 1, ""));                /* expired, but within the leeway */
  accepted(timed(NOW - 7200, NOW - 1, ""));
  accepted(timed(NOW - 10, INT64_MAX, ""));
  refused(timed(NOW - 10, INT64_MIN, ""), "id token expired");
  /* leeway 0 */
  mq_oidc_expect_t e = expect_default();
  e.leeway_s = 0;
  refused_e(g_jwks, timed(NOW - 7200, NOW, ""), &e, "id token expired");
  mq_oidc_claims_t c = accepted_e(g_jwks, timed(NOW - 7200, NOW + 1, ""), &e);
  mq_oidc_claims_clear(&c);
  e.leeway_s = -100; /* negative: treated as 0 */
  refused_e(g_jwks, timed(NOW - 7200, NOW, ""), &e, "id token expired");
  c = accepted_e(g_jwks, timed(NOW - 7200, NOW + 50, ""), &e);
  mq_oidc_claims_clear(&c);
  /* missing or not a number */
  char *t = tok_with(
      g_rsa, "RS256", "RS256", "rsa1",
      CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"nonce\":\"" NONCE "\",\"iat\":%" PRId64 "}",
               NOW));
  refused(t, "id token has no valid exp");
  t = tok_with(g_rsa, "RS256", "RS256", "rsa1",
               CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"nonce\":\"" NONCE
                        "\",\"iat\":%" PRId64 ",\"exp\":\"%" PRId64 "\"}",
                        NOW, NOW + 600));
  refused(t, "id token has no valid exp");
  t = tok_with(g_rsa, "RS256", "RS256", "rsa1",
               CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"nonce\":\"" NONCE
                        "\",\"iat\":%" PRId64 ",\"exp\":1e300}",
                        NOW));
  refused(t, "id token has no valid exp");
}

static void test_iat(void **state) {
  (void)state;
  refused(timed(NOW + LEEWAY + 1, NOW + 3600, ""), "id token issued in the future");
  refused(timed(NOW + 86400, NOW + 90000, ""), "id token issued in the future");
  accepted(timed(NOW + LEEWAY, NOW + 3600, "")); /* within the leeway */
  char *t = tok_with(
      g_rsa, "RS256", "RS256", "rsa1",
      CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"nonce\":\"" NONCE "\",\"exp\":%" PRId64 "}",
               NOW + 600));
  refused(t, "id token has no valid iat");
  t = tok_with(g_rsa, "RS256", "RS256", "rsa1",
               CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"nonce\":\"" NONCE
                        "\",\"iat\":true,\"exp\":%" PRId64 "}",
                        NOW + 600));
  refused(t, "id token has no valid iat");
  /* max age */
  mq_oidc_expect_t e = expect_default();
  e.max_age_s = 300;
  refused_e(g_jwks, timed(NOW - 300 - LEEWAY - 1, NOW + 600, ""), &e, "id token too old");
  mq_oidc_claims_t c = accepted_e(g_jwks, timed(NOW - 300 - LEEWAY, NOW + 600, ""), &e);
  mq_oidc_claims_clear(&c);
  e.max_age_s = 0; /* off */
  c = accepted_e(g_jwks, timed(NOW - 86400 * 365, NOW + 600, ""), &e);
  mq_oidc_claims_clear(&c);
}

static void test_nbf(void **state) {
  (void)state;
  refused(timed(NOW, NOW + 600, "\"nbf\":1700000061"), "id token not yet valid");
  refused(timed(NOW, NOW + 600, "\"nbf\":1800000000"), "id token not yet valid");
  accepted(timed(NOW, NOW + 600, "\"nbf\":1700000060")); /* within the leeway */
  accepted(timed(NOW, NOW + 600, "\"nbf\":1699999000"));
  refused(timed(NOW, NOW + 600, "\"nbf\":\"soon\""), "id token has an invalid nbf");
}

/* A token with the standard claims but `iss_aud` (JSON members for iss, aud,
 * azp...) instead of iss and aud. */
static char *with_iss_aud(const char *iss_aud) {
  return tok_with(g_ec, "ES256", "ES256", "ec1",
                  CLAIMS_F("{%s%s\"sub\":\"u1\",\"nonce\":\"" NONCE "\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
                           iss_aud, iss_aud[0] ? "," : "", NOW, NOW + 600));
}

static void test_iss(void **state) {
  (void)state;
  const char *why = "id token issuer mismatch";
  refused(with_iss_aud("\"iss\":\"https://evil.example.com\",\"aud\":\"" AUD "\""), why);
  refused(with_iss_aud("\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\""), why);
  refused(with_iss_aud("\"iss\":\"accounts.example.com\",\"aud\":\"" AUD "\""), why);
  refused(with_iss_aud("\"iss\":\"https://accounts.example.co\",\"aud\":\"" AUD "\""), why);
  refused(with_iss_aud("\"aud\":\"" AUD "\""), why);
  refused(with_iss_aud("\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\""), why);
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""));
}

static void test_aud(void **state) {
  (void)state;
  const char *why = "id token audience mismatch";
  const char *azp = "id token authorized party (azp) mismatch";
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"someone-else\""), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"client-123\""), why); /* prefix */
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD "x\""), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[]"), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"]"), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[1,{\"x\":\"" AUD "\"}]"), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":7"), why);
  refused(with_iss_aud("\"iss\":\"" ISS "\""), "id token has no audience");
  /* the second configured audience */
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD2 "\""));
  /* arrays */
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\"]"));
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"]")); /* no azp */
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"azp\":\"" AUD "\""));
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"azp\":\"" AUD2 "\""));
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"azp\":\"other\""), azp);
  refused(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",\"other\"],\"azp\":7"), azp);
  /* one audience: azp may name another client of ours (Android / server flows) */
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\"],\"azp\":\"android-client\""));
  accepted(with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"azp\":\"android-client\""));
  /* audiences with a NULL entry and a single audience */
  const char *const auds[] = {NULL, AUD2};
  mq_oidc_expect_t e = expect_default();
  e.audiences = auds;
  refused_e(g_jwks, with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""), &e, why);
  mq_oidc_claims_t c = accepted_e(g_jwks, with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD2 "\""), &e);
  mq_oidc_claims_clear(&c);
  e = expect_default();
  e.n_audiences = 1;
  refused_e(g_jwks, with_iss_aud("\"iss\":\"" ISS "\",\"aud\":\"" AUD2 "\""), &e, why);
}

static char *with_nonce(const char *nonce_member) {
  return tok_with(
      g_rsa, "RS256", "RS256", "rsa1",
      CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u1\"%s%s,\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
               nonce_member[0] ? "," : "", nonce_member, NOW, NOW + 600));
}

static void test_nonce(void **state) {
  (void)state;
  refused(with_nonce("\"nonce\":\"other\""), "id token nonce mismatch");
  refused(with_nonce("\"nonce\":\"n-0S6_WzA2Mk\""), "id token nonce mismatch"); /* same length */
  refused(with_nonce("\"nonce\":\"" NONCE "x\""), "id token nonce mismatch");
  refused(with_nonce("\"nonce\":\"n-0S6_WzA2M\""), "id token nonce mismatch"); /* prefix */
  refused(with_nonce("\"nonce\":\"\""), "id token nonce mismatch");
  refused(with_nonce(""), "id token nonce missing");
  refused(with_nonce("\"nonce\":42"), "id token nonce missing");
  accepted(with_nonce("\"nonce\":\"" NONCE "\""));
  /* not expected: any nonce, or none, is fine */
  mq_oidc_expect_t e = expect_default();
  e.nonce = NULL;
  mq_oidc_claims_t c = accepted_e(g_jwks, with_nonce(""), &e);
  mq_oidc_claims_clear(&c);
  c = accepted_e(g_jwks, with_nonce("\"nonce\":\"whatever\""), &e);
  mq_oidc_claims_clear(&c);
}

static char *with_sub(const char *sub_member) {
  return tok_with(g_ec, "ES256", "ES256", "ec1",
                  CLAIMS_F("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"%s%s,\"nonce\":\"" NONCE "\",\"iat\":%" PRId64
                           ",\"exp\":%" PRId64 "}",
                           sub_member[0] ? "," : "", sub_member, NOW, NOW + 600));
}

static void test_sub(void **state) {
  (void)state;
  const char *why = "id token has no valid sub";
  refused(with_sub(""), why);
  refused(with_sub("\"sub\":\"\""), why);
  refused(with_sub("\"sub\":12345"), why);
  refused(with_sub("\"sub\":null"), why);
  refused(with_sub("\"sub\":\"victim\\u0000suffix\""), why); /* never truncated */
  char s255[256], s256[257];
  memset(s255, 'a', 255);
  s255[255] = '\0';
  memset(s256, 'a', 256);
  s256[256] = '\0';
  char *m = xasprintf("\"sub\":\"%s\"", s256);
  refused(with_sub(m), why);
  free(m);
  m = xasprintf("\"sub\":\"%s\"", s255);
  mq_oidc_expect_t e = expect_default();
  mq_oidc_claims_t c = accepted_e(g_jwks, with_sub(m), &e);
  assert_string_equal(c.sub, s255);
  mq_oidc_claims_clear(&c);
  free(m);
  c = accepted_e(g_jwks, with_sub("\"sub\":\"x\""), &e);
  assert_string_equal(c.sub, "x");
  mq_oidc_claims_clear(&c);
}

/* ---- structure -------------------------------------------------------------------------------- */

static void test_garbage(void **state) {
  (void)state;
  const char *shape = "id token is not a JWS compact serialization";
  const char *b64bad = "id token is not valid base64url";
  refused(xasprintf("abc"), shape);
  refused(xasprintf("abc.def"), shape);
  refused(xasprintf("a.b.c.d"), shape);
  refused(xasprintf(".."), shape);
  refused(xasprintf("eyJhbGciOiJSUzI1NiJ9..c2ln"), shape);
  refused(xasprintf(".eyJhIjoxfQ.c2ln"), shape);
  refused(xasprintf("e30.e30."), "id token header has no alg");
  char *t = rs256("");
  refused(xasprintf("%s.", t), shape);
  refused(xasprintf("%s.abc", t), shape);
  refused(xasprintf(" %s", t), b64bad);
  refused(xasprintf("%s ", t), b64bad);
  refused(xasprintf("%s=", t), b64bad); /* padding */
  char *plus = xasprintf("%s", t);
  plus[3] = '+'; /* base64, not base64url */
  refused(plus, b64bad);
  free(t);
  refused(xasprintf("e30.e30.!!!!"), b64bad);
  refused(xasprintf("e.e30.c2ln"), b64bad);   /* 1 char: impossible length */
  refused(xasprintf("e31.e30.c2ln"), b64bad); /* non-canonical trailing bits */
  /* header or claims not JSON (claims are only parsed after the signature) */
  char *h = b64((const unsigned char *)"not json", 8);
  refused(xasprintf("%s.e30.c2ln", h), "id token header is not JSON");
  free(h);
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "{\"sub\":"),
          "id token claims are not JSON");
  refused(sign_tok(g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "[]"), "id token issuer mismatch");
  /* empty, NULL */
  refused(xasprintf("%s", ""), "id token missing");
  mq_oidc_expect_t e = expect_default();
  mq_oidc_claims_t c;
  mq_error_t err;
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, NULL, 0, &e, &c, &err), MQ_UNAUTHENTICATED);
  assert_string_equal(err.message, "id token missing");
  /* huge: refused on length before anything else */
  size_t big = MQ_OIDC_MAX_TOKEN + 1;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memset(huge, 'A', big);
  huge[big] = '\0';
  huge[100] = '.';
  huge[200] = '.';
  refused(huge, "id token too long");
  /* a real token padded with a huge claim */
  char *pad = malloc(MQ_OIDC_MAX_TOKEN);
  assert_non_null(pad);
  memset(pad, 'x', MQ_OIDC_MAX_TOKEN - 1);
  pad[MQ_OIDC_MAX_TOKEN - 1] = '\0';
  char *extra = xasprintf("\"pad\":\"%s\"", pad);
  refused(rs256(extra), "id token too long");
  free(extra);
  free(pad);
}

static void test_misconfigured(void **state) {
  (void)state;
  mq_oidc_claims_t c;
  mq_error_t err;
  char *t = rs256("");
  mq_oidc_expect_t e = expect_default();
  e.issuer = NULL;
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t), &e, &c, &err), MQ_INTERNAL);
  assert_claims_zero(&c);
  e = expect_default();
  e.n_audiences = 0;
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t), &e, &c, &err), MQ_INTERNAL);
  e = expect_default();
  assert_int_equal(mq_oidc_verify_id_token(NULL, t, strlen(t), &e, &c, &err), MQ_INTERNAL);
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t), NULL, &c, &err), MQ_INTERNAL);
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t), &e, NULL, &err), MQ_INTERNAL);
  /* err may be NULL */
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t) - 1, &e, &c, NULL), MQ_UNAUTHENTICATED);
  assert_int_equal(mq_oidc_verify_id_token(g_jwks, t, strlen(t), &e, &c, NULL), MQ_OK);
  mq_oidc_claims_clear(&c);
  free(t);
}

/* ---- threads ---------------------------------------------------------------------------------- */

typedef struct {
  const char *tokens[3];
  int failures;
} thread_arg_t;

static void *verify_many(void *p) {
  thread_arg_t *a = p;
  mq_oidc_expect_t e = expect_default();
  for (int i = 0; i < 30; i++) {
    const char *t = a->tokens[i % 3];
    mq_oidc_claims_t c;
    mq_error_t err;
    if (mq_oidc_verify_id_token(g_jwks, t, strlen(t), &e, &c, &err) != MQ_OK || !c.sub) a->failures++;
    mq_oidc_claims_clear(&c);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  char *t[3] = {rs256(""), es256(""), tok_with(g_rsa, "PS256", "PS256", "rsa2", claims(""))};
  pthread_t th[4];
  thread_arg_t args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (thread_arg_t){.tokens = {t[0], t[1], t[2]}, .failures = 0};
    assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(args[i].failures, 0);
  }
  for (int i = 0; i < 3; i++) free(t[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jwks_parse_counts),
      cmocka_unit_test(test_jwks_malformed),
      cmocka_unit_test(test_jwks_only_unusable),
      cmocka_unit_test(test_rsa_1024_ignored),
      cmocka_unit_test(test_valid_rs256),
      cmocka_unit_test(test_valid_es256),
      cmocka_unit_test(test_valid_other_algs),
      cmocka_unit_test(test_tampered_payload),
      cmocka_unit_test(test_tampered_signature),
      cmocka_unit_test(test_alg_none),
      cmocka_unit_test(test_alg_confusion_hs256),
      cmocka_unit_test(test_alg_key_mismatch),
      cmocka_unit_test(test_kid),
      cmocka_unit_test(test_crit),
      cmocka_unit_test(test_es256_signature_length),
      cmocka_unit_test(test_exp),
      cmocka_unit_test(test_iat),
      cmocka_unit_test(test_nbf),
      cmocka_unit_test(test_iss),
      cmocka_unit_test(test_aud),
      cmocka_unit_test(test_nonce),
      cmocka_unit_test(test_sub),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_misconfigured),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
