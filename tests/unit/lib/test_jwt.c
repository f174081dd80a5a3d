/*
 * test_jwt.c — cmocka tests for lib/mq_jwt.c: HS256 access tokens.
 *
 * Covers: key-spec parsing (one and several keys; short secret, bad kid,
 * over-long kid, empty kid, missing colon, more than 8 keys → INVALID_ARGUMENT
 * naming MARQUEE_JWT_KEYS without echoing the secret; empty spec = no keys,
 * nothing verifies, nothing signs); sign + verify round trip (subject, role
 * bits for every combination, expires_at, jti); rotation (a token signed by
 * the second configured kid verifies, and a signer holding only the new key
 * is accepted by a verifier holding old+new); and refusals, each
 * UNAUTHENTICATED with the reason checked: tampered payload, tampered or
 * truncated signature, a token signed with another secret under a known kid,
 * expired beyond the 30 s leeway (and accepted inside it), missing exp,
 * "alg":"none" with an empty signature, "alg":"HS512", missing alg, missing
 * kid, unknown kid, "crit" header, wrong iss, wrong aud, missing/empty/
 * over-long sub, nbf and iat in the future, not three segments, garbage
 * base64, padded base64, non-JSON header, over-long token. Unknown and
 * non-string roles are ignored.
 *
 * The last test signs exp = INT64_MAX: it must be handled without undefined
 * behaviour (accepted or refused). No timing assertions here.
 *
 * Invariant: tokens are minted with mq_jwt_sign / mq_jwt_sign_raw and the
 * claims use the current time, so the tests do not depend on the clock.
 * Read next: lib/mq_jwt.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/mq_jwt.h"

#define SECRET1 "s1-0123456789abcdef0123456789abcdef"
#define SECRET2 "s2-fedcba9876543210fedcba9876543210"
#define ISS "marquee"
#define AUD "marquee-api"
#define HDR1 "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

typedef struct {
  mq_jwt_keys_t *keys; /* k1 (signing) + k2 */
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f) return -1;
  mq_error_t err;
  if (mq_jwt_keys_parse("k1:" SECRET1 ",k2:" SECRET2, ISS, AUD, &f->keys, &err) != MQ_OK) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mq_jwt_keys_free(f->keys);
  free(f);
  return 0;
}

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

/* Verifies `tok`; returns the code, fills err/out. */
static mq_code_t verify(const mq_jwt_keys_t *k, const char *tok, mq_principal_t *out, mq_error_t *err) {
  memset(err, 0, sizeof *err);
  return mq_jwt_verify((void *)k, tok, strlen(tok), out, err);
}

/* Expects a refusal whose message contains `why`. */
static void expect_refused(const mq_jwt_keys_t *k, const char *tok, const char *why) {
  mq_principal_t p;
  mq_error_t err;
  mq_code_t rc = verify(k, tok, &p, &err);
  if (rc != MQ_UNAUTHENTICATED) fail_msg("token accepted (rc %s), want refusal '%s'", mq_code_name(rc), why);
  assert_int_equal(err.code, MQ_UNAUTHENTICATED);
  if (!strstr(err.message, why)) fail_msg("message '%s' does not say '%s'", err.message, why);
  assert_null(strstr(err.message, SECRET1));
  assert_null(strstr(err.message, SECRET2));
}

/* Payload with valid claims, with `extra` JSON members appended (may be ""). */
static char *payload(const char *extra) {
  char *p = NULL;
  int64_t now = now_s();
  assert_true(asprintf(&p,
                       "{\"sub\":\"user-1\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%" PRId64
                       ",\"exp\":%" PRId64 "%s%s}",
                       now, now + 600, extra[0] ? "," : "", extra) > 0);
  return p;
}

static char *sign1(const char *hdr, const char *pay) {
  return mq_jwt_sign_raw(hdr, pay, SECRET1, strlen(SECRET1));
}

/* ---- keys -------------------------------------------------------------------------- */

static void expect_keys_refused(const char *spec, const char *why) {
  mq_jwt_keys_t *k = (mq_jwt_keys_t *)0x1;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_jwt_keys_parse(spec, ISS, AUD, &k, &err), MQ_INVALID_ARGUMENT);
  assert_null(k);
  assert_string_equal(err.field, "MARQUEE_JWT_KEYS");
  if (!strstr(err.message, why)) fail_msg("message '%s' does not say '%s'", err.message, why);
  assert_null(strstr(err.message, "0123456789abcdef")); /* the secret is never echoed */
}

static void test_keys_parse(void **state) {
  (void)state;
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  assert_int_equal(mq_jwt_keys_parse("k1:" SECRET1, ISS, AUD, &k, &err), MQ_OK);
  assert_int_equal(mq_jwt_keys_count(k), 1);
  mq_jwt_keys_free(k);

  assert_int_equal(mq_jwt_keys_parse("a.b_c-D9:" SECRET1 ",k2:" SECRET2 ",", ISS, AUD, &k, &err), MQ_OK);
  assert_int_equal(mq_jwt_keys_count(k), 2); /* trailing comma tolerated */
  mq_jwt_keys_free(k);

  /* secrets may contain ':' (only the first colon splits) */
  assert_int_equal(mq_jwt_keys_parse("k1:abc:def:0123456789abcdef0123456789", ISS, AUD, &k, &err), MQ_OK);
  assert_int_equal(mq_jwt_keys_count(k), 1);
  mq_jwt_keys_free(k);

  /* exactly 32 bytes is the minimum */
  assert_int_equal(mq_jwt_keys_parse("k1:0123456789abcdef0123456789abcdef", ISS, AUD, &k, &err), MQ_OK);
  mq_jwt_keys_free(k);
}

static void test_keys_refused(void **state) {
  (void)state;
  expect_keys_refused("k1:0123456789abcdef0123456789abcde", "32");                                    /* 31 bytes */
  expect_keys_refused("bad kid:0123456789abcdef0123456789abcdef", "kid");                             /* space */
  expect_keys_refused("k/1:0123456789abcdef0123456789abcdef", "kid");                                 /* slash */
  expect_keys_refused(":0123456789abcdef0123456789abcdef", "kid");                                    /* empty kid */
  expect_keys_refused("k1234567890123456789012345678901234:0123456789abcdef0123456789abcdef", "kid"); /* 33 */
  expect_keys_refused("k1-0123456789abcdef0123456789abcdef", "kid:secret");                           /* no colon */
  expect_keys_refused("k1:0123456789abcdef0123456789abcdef,,", "kid:secret");
  expect_keys_refused("k1:0123456789abcdef0123456789abcdef,k2", "kid:secret");

  char many[1024] = "";
  for (int i = 0; i < 9; i++) {
    size_t l = strlen(many);
    snprintf(many + l, sizeof many - l, "%sk%d:0123456789abcdef0123456789abcdef", i ? "," : "", i);
  }
  expect_keys_refused(many, "8");
}

static void test_no_keys(void **state) {
  (void)state;
  mq_jwt_keys_t *none = NULL;
  mq_error_t err;
  assert_int_equal(mq_jwt_keys_parse("", ISS, AUD, &none, &err), MQ_OK);
  assert_non_null(none);
  assert_int_equal(mq_jwt_keys_count(none), 0);
  assert_null(mq_jwt_sign(none, "user-1", MQ_ROLE_ATTENDEE, 60));
  char *pay = payload("");
  char *tok = sign1(HDR1, pay);
  expect_refused(none, tok, "unknown signing key");
  free(tok);
  free(pay);
  mq_jwt_keys_free(none);
  assert_int_equal(mq_jwt_keys_count(NULL), 0);
  mq_jwt_keys_free(NULL);
}

/* ---- round trip ----------------------------------------------------------------------- */

static void test_sign_verify_round_trip(void **state) {
  fixture_t *f = *state;
  for (uint32_t roles = 0; roles < 8; roles++) {
    char *tok = mq_jwt_sign(f->keys, "user-42", roles, 900);
    assert_non_null(tok);
    size_t dots = 0;
    for (const char *c = tok; *c; c++) dots += *c == '.';
    assert_int_equal(dots, 2); /* header.payload.signature */
    mq_principal_t p;
    mq_error_t err;
    int64_t before = now_s();
    mq_code_t rc = verify(f->keys, tok, &p, &err);
    if (rc != MQ_OK) fail_msg("roles %u: %s", roles, err.message);
    assert_string_equal(p.subject, "user-42");
    assert_int_equal(p.roles, roles);
    assert_true(p.expires_at >= before + 900 - 2 && p.expires_at <= now_s() + 900);
    assert_int_equal(strlen(p.token_id), 32); /* random jti */
    free(tok);
  }
}

static void test_sign_refuses_bad_subject(void **state) {
  fixture_t *f = *state;
  assert_null(mq_jwt_sign(f->keys, "", 0, 60));
  assert_null(mq_jwt_sign(f->keys, NULL, 0, 60));
  assert_null(mq_jwt_sign(f->keys, "has\"quote", 0, 60));
  char longsub[65];
  memset(longsub, 'a', 64);
  longsub[64] = '\0';
  assert_null(mq_jwt_sign(f->keys, longsub, 0, 60));
  longsub[63] = '\0';
  char *tok = mq_jwt_sign(f->keys, longsub, 0, 60);
  assert_non_null(tok);
  mq_principal_t p;
  mq_error_t err;
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_string_equal(p.subject, longsub);
  free(tok);
}

static void test_jti_distinct(void **state) {
  fixture_t *f = *state;
  char *a = mq_jwt_sign(f->keys, "u", 0, 60), *b = mq_jwt_sign(f->keys, "u", 0, 60);
  mq_principal_t pa, pb;
  mq_error_t err;
  assert_int_equal(verify(f->keys, a, &pa, &err), MQ_OK);
  assert_int_equal(verify(f->keys, b, &pb, &err), MQ_OK);
  assert_string_not_equal(pa.token_id, pb.token_id);
  free(a);
  free(b);
}

static void test_rotation(void **state) {
  fixture_t *f = *state;
  /* Signed by the second configured kid. */
  char *pay = payload("\"roles\":[\"admin\"]");
  char *tok = mq_jwt_sign_raw("{\"alg\":\"HS256\",\"kid\":\"k2\"}", pay, SECRET2, strlen(SECRET2));
  mq_principal_t p;
  mq_error_t err;
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_string_equal(p.subject, "user-1");
  assert_int_equal(p.roles, MQ_ROLE_ADMIN);
  free(tok);
  free(pay);

  /* The new signer (k2 first) is accepted by old+new verifiers. */
  mq_jwt_keys_t *signer = NULL;
  assert_int_equal(mq_jwt_keys_parse("k2:" SECRET2 ",k1:" SECRET1, ISS, AUD, &signer, &err), MQ_OK);
  tok = mq_jwt_sign(signer, "user-7", MQ_ROLE_ORGANIZER, 60);
  assert_non_null(tok);
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_string_equal(p.subject, "user-7");
  assert_int_equal(p.roles, MQ_ROLE_ORGANIZER);
  free(tok);
  mq_jwt_keys_free(signer);

  /* After the old kid is dropped, its tokens are refused. */
  mq_jwt_keys_t *only2 = NULL;
  assert_int_equal(mq_jwt_keys_parse("k2:" SECRET2, ISS, AUD, &only2, &err), MQ_OK);
  tok = mq_jwt_sign(f->keys, "user-1", 0, 60); /* signed with k1 */
  expect_refused(only2, tok, "unknown signing key");
  free(tok);
  mq_jwt_keys_free(only2);
}

/* The per-thread memo of verified tokens never outlives its key set, and
 * never turns a refusal into an acceptance. */
static void test_memo(void **state) {
  fixture_t *f = *state;
  mq_principal_t p;
  mq_error_t err;
  char *tok = mq_jwt_sign(f->keys, "user-9", MQ_ROLE_ATTENDEE, 60);
  for (int i = 0; i < 3; i++) { /* first a full verification, then memo hits */
    assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
    assert_string_equal(p.subject, "user-9");
  }
  /* a key set parsed later (maybe at the same address) without k1 refuses it */
  for (int i = 0; i < 4; i++) {
    mq_jwt_keys_t *other = NULL;
    assert_int_equal(mq_jwt_keys_parse("k2:" SECRET2, ISS, AUD, &other, &err), MQ_OK);
    expect_refused(other, tok, "unknown signing key");
    mq_jwt_keys_free(other);
  }
  /* a one-byte change of a memoized token is verified afresh and refused */
  size_t n = strlen(tok);
  tok[n - 1] = tok[n - 1] == 'A' ? 'B' : 'A';
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_UNAUTHENTICATED);
  free(tok);
}

/* ---- tampering ------------------------------------------------------------------------ */

static char flip(char c) {
  return c == 'A' ? 'B' : 'A';
}

static void test_tampered_payload(void **state) {
  fixture_t *f = *state;
  char *tok = mq_jwt_sign(f->keys, "user-1", MQ_ROLE_ATTENDEE, 60);
  char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
  char *mid = d1 + 1 + (d2 - d1 - 1) / 2;
  *mid = flip(*mid);
  expect_refused(f->keys, tok, "bad signature");
  free(tok);

  /* Re-encoded payload (escalated roles) with the original signature. */
  char *pay = payload("\"roles\":[\"attendee\"]");
  char *good = sign1(HDR1, pay);
  char *evil_pay = payload("\"roles\":[\"admin\"]");
  char *evil = sign1(HDR1, evil_pay);
  char *gsig = strrchr(good, '.');
  char *esig = strrchr(evil, '.');
  assert_int_equal(strlen(gsig), strlen(esig));
  memcpy(esig, gsig, strlen(gsig));
  expect_refused(f->keys, evil, "bad signature");
  free(pay);
  free(good);
  free(evil_pay);
  free(evil);
}

static void test_tampered_signature(void **state) {
  fixture_t *f = *state;
  char *tok = mq_jwt_sign(f->keys, "user-1", 0, 60);
  char *sig = strrchr(tok, '.') + 1;
  sig[0] = flip(sig[0]);
  expect_refused(f->keys, tok, "bad signature");
  strcpy(sig, "AAAA"); /* a well-formed but 3-byte signature */
  expect_refused(f->keys, tok, "bad signature");
  sig[0] = '\0'; /* empty signature */
  expect_refused(f->keys, tok, "bad signature");
  free(tok);

  /* A known kid with a different secret. */
  char *pay = payload("");
  char *forged = mq_jwt_sign_raw(HDR1, pay, SECRET2, strlen(SECRET2));
  expect_refused(f->keys, forged, "bad signature");
  free(forged);
  free(pay);
}

/* ---- time claims ------------------------------------------------------------------- */

static void test_expired(void **state) {
  fixture_t *f = *state;
  char pay[256];
  int64_t now = now_s();
  snprintf(pay, sizeof pay, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now - 120);
  char *tok = sign1(HDR1, pay);
  mq_principal_t p;
  mq_error_t err;
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "expired"));
  free(tok);

  /* 10 s past exp is inside the 30 s leeway. */
  snprintf(pay, sizeof pay, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now - 10);
  tok = sign1(HDR1, pay);
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_int_equal(p.expires_at, now - 10);
  free(tok);

  /* A token minted with a negative ttl by mq_jwt_sign is expired too. */
  tok = mq_jwt_sign(f->keys, "u", 0, -3600);
  expect_refused(f->keys, tok, "expired");
  free(tok);
}

static void test_missing_exp(void **state) {
  fixture_t *f = *state;
  char *tok = sign1(HDR1, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}");
  expect_refused(f->keys, tok, "missing exp");
  free(tok);
  tok = sign1(HDR1, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"soon\"}");
  expect_refused(f->keys, tok, "missing exp");
  free(tok);
}

static void test_nbf_iat_future(void **state) {
  fixture_t *f = *state;
  char extra[64];
  snprintf(extra, sizeof extra, "\"nbf\":%" PRId64, now_s() + 600);
  char *pay = payload(extra);
  char *tok = sign1(HDR1, pay);
  expect_refused(f->keys, tok, "not valid yet");
  free(tok);
  free(pay);

  /* nbf slightly in the future is inside the leeway */
  snprintf(extra, sizeof extra, "\"nbf\":%" PRId64, now_s() + 5);
  pay = payload(extra);
  tok = sign1(HDR1, pay);
  mq_principal_t p;
  mq_error_t err;
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  free(tok);
  free(pay);

  char buf[256];
  int64_t now = now_s();
  snprintf(buf, sizeof buf,
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", now + 600,
           now + 1200);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "issued in the future");
  free(tok);
}

/* ---- header ------------------------------------------------------------------------- */

static void test_alg_none(void **state) {
  fixture_t *f = *state;
  char *pay = payload("");
  char *tok = sign1("{\"alg\":\"none\",\"kid\":\"k1\"}", pay);
  strrchr(tok, '.')[1] = '\0'; /* "header.payload." */
  expect_refused(f->keys, tok, "alg must be HS256");
  free(tok);
  /* even with a valid HS256 MAC attached */
  tok = sign1("{\"alg\":\"none\",\"kid\":\"k1\"}", pay);
  expect_refused(f->keys, tok, "alg must be HS256");
  free(tok);
  free(pay);
}

static void test_alg_other(void **state) {
  fixture_t *f = *state;
  char *pay = payload("");
  static const char *hdrs[] = {
      "{\"alg\":\"HS512\",\"kid\":\"k1\"}",
      "{\"alg\":\"RS256\",\"kid\":\"k1\"}",
      "{\"alg\":\"hs256\",\"kid\":\"k1\"}",
      "{\"alg\":\"HS2566\",\"kid\":\"k1\"}",
      "{\"kid\":\"k1\"}",
      "{\"alg\":256,\"kid\":\"k1\"}",
  };
  for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
    char *tok = sign1(hdrs[i], pay); /* correct HS256 MAC, wrong declared alg */
    expect_refused(f->keys, tok, "alg must be HS256");
    free(tok);
  }
  free(pay);
}

static void test_kid(void **state) {
  fixture_t *f = *state;
  char *pay = payload("");
  char *tok = sign1("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pay);
  expect_refused(f->keys, tok, "missing kid");
  free(tok);
  tok = sign1("{\"alg\":\"HS256\",\"kid\":\"k3\"}", pay);
  expect_refused(f->keys, tok, "unknown signing key");
  free(tok);
  tok = sign1("{\"alg\":\"HS256\",\"kid\":\"k\"}", pay); /* prefix of a kid */
  expect_refused(f->keys, tok, "unknown signing key");
  free(tok);
  tok = sign1("{\"alg\":\"HS256\",\"kid\":\"k1x\"}", pay);
  expect_refused(f->keys, tok, "unknown signing key");
  free(tok);
  tok = sign1("{\"alg\":\"HS256\",\"kid\":1}", pay);
  expect_refused(f->keys, tok, "missing kid");
  free(tok);
  tok = sign1("{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", pay);
  expect_refused(f->keys, tok, "critical");
  free(tok);
  free(pay);
}

/* ---- claims ------------------------------------------------------------------------ */

static void test_issuer_audience(void **state) {
  fixture_t *f = *state;
  int64_t now = now_s();
  char buf[256];
  snprintf(buf, sizeof buf, "{\"sub\":\"u\",\"iss\":\"evil\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  char *tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "wrong issuer");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"u\",\"iss\":\"marque\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "wrong issuer");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "wrong issuer");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"other-api\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "wrong audience");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "wrong audience");
  free(tok);
}

static void test_subject(void **state) {
  fixture_t *f = *state;
  int64_t now = now_s();
  char buf[512];
  snprintf(buf, sizeof buf, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  char *tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "sub");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "sub");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":42,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", now + 60);
  tok = sign1(HDR1, buf);
  expect_refused(f->keys, tok, "sub");
  free(tok);
  snprintf(buf, sizeof buf, "{\"sub\":\"%064d\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%" PRId64 "}", 7,
           now + 60);
  tok = sign1(HDR1, buf); /* 64 chars: one too many */
  expect_refused(f->keys, tok, "sub");
  free(tok);
}

static void test_roles_parsing(void **state) {
  fixture_t *f = *state;
  char *pay = payload("\"roles\":[\"root\",1,\"organizer\",{\"x\":1},\"attendee\",\"ADMIN\"]");
  char *tok = sign1(HDR1, pay);
  mq_principal_t p;
  mq_error_t err;
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_int_equal(p.roles, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  assert_string_equal(p.token_id, ""); /* no jti */
  free(tok);
  free(pay);

  pay = payload("\"roles\":\"admin\""); /* not an array: no roles */
  tok = sign1(HDR1, pay);
  assert_int_equal(verify(f->keys, tok, &p, &err), MQ_OK);
  assert_int_equal(p.roles, 0);
  free(tok);
  free(pay);
}

/* ---- shape ---------------------------------------------------------------------------- */

static void test_shape(void **state) {
  fixture_t *f = *state;
  char *tok = mq_jwt_sign(f->keys, "user-1", 0, 60);
  char *last = strrchr(tok, '.');

  /* two segments */
  char *two = strndup(tok, (size_t)(last - tok));
  expect_refused(f->keys, two, "not a JWS compact token");
  free(two);
  /* four segments */
  char *four = NULL;
  assert_true(asprintf(&four, "%s.abc", tok) > 0);
  expect_refused(f->keys, four, "not a JWS compact token");
  free(four);
  expect_refused(f->keys, "", "not a JWS compact token");
  expect_refused(f->keys, "abc", "not a JWS compact token");
  expect_refused(f->keys, "..", "bad base64url");
  /* garbage base64 */
  expect_refused(f->keys, "!!!!.####.$$$$", "bad base64url");
  expect_refused(f->keys, "eyJhbGciOiJIUzI1NiJ9.e30.a", "bad base64url"); /* 1 mod 4 */
  /* standard base64 '+' or padding '=' is not base64url */
  char *padded = NULL;
  assert_true(asprintf(&padded, "%s=", tok) > 0);
  expect_refused(f->keys, padded, "bad base64url");
  free(padded);
  /* header that decodes but is not JSON ("hello" = aGVsbG8) */
  expect_refused(f->keys, "aGVsbG8.e30.AAAA", "header is not JSON");
  free(tok);

  /* over-long token */
  char *huge = malloc(5000);
  memset(huge, 'A', 4999);
  huge[4999] = '\0';
  huge[100] = '.';
  huge[200] = '.';
  expect_refused(f->keys, huge, "too long");
  free(huge);
}

/* ---- robustness ------------------------------------------------------------------------ */

/* exp near INT64_MAX must not overflow `exp + leeway` (undefined behaviour;
 * UBSan aborts this test if it does). Accepting or refusing are both fine. */
static void test_exp_int64_max(void **state) {
  fixture_t *f = *state;
  char *tok = sign1(HDR1, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":9223372036854775807}");
  mq_principal_t p;
  mq_error_t err;
  mq_code_t rc = verify(f->keys, tok, &p, &err);
  assert_true(rc == MQ_OK || rc == MQ_UNAUTHENTICATED);
  free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_parse),
      cmocka_unit_test(test_keys_refused),
      cmocka_unit_test(test_no_keys),
      cmocka_unit_test_setup_teardown(test_sign_verify_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sign_refuses_bad_subject, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jti_distinct, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_payload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_signature, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_exp, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nbf_iat_future, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alg_none, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alg_other, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_issuer_audience, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subject, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roles_parsing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shape, setup, teardown),
      /* last: aborts the binary under UBSan while mq_jwt.c overflows exp + leeway */
      cmocka_unit_test_setup_teardown(test_exp_int64_max, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
