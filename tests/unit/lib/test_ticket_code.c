/*
 * test_ticket_code.c — cmocka tests for lib/mq_ticket_code.c: Ed25519
 * ticket codes verified offline by door scanners.
 *
 * Covers: key-ring parsing (one and several keys, trailing comma, 16-char kid
 * with '_' and '-', the RFC 8032 test-1 seed gives the RFC's public key;
 * refused with INVALID_ARGUMENT naming MARQUEE_TICKET_KEYS: short/long seed,
 * bad base64url ('+', '/', '=', '!', space), non-zero trailing bits, bad kid
 * (space, '.', 17 chars, empty), duplicate kid, missing colon, empty entry,
 * more than 8 keys — and no message ever contains a seed); an empty or NULL
 * spec (zero keys: signing is FAILED_PRECONDITION, verifying UNKNOWN_KEY);
 * fresh dev seeds; UUID text <-> bytes (round trip, upper case accepted and
 * formatted lower, every malformed shape refused).
 * Codes: a golden vector computed independently (Python `cryptography`) is
 * reproduced byte for byte and verifies, so the wire format documented in the
 * header is what the code does; a second check rebuilds the signed bytes from
 * the documented format and verifies with the published public key; sign/
 * verify round trips; output buffer too small; rotation (signed by A,
 * verified by ring "B,A"; ring "B" alone says UNKNOWN_KEY; a different key
 * under the same kid is BAD_SIGNATURE); every single-character substitution
 * of a valid code with another base64url char is refused and zeroes the
 * claims; re-labelling with another known kid; every truncation; padding;
 * over-long; empty and NULL; wrong prefix "MQT2."/"mqt1."; whitespace;
 * standard-base64 '+' and '/'; non-zero trailing bits; a correctly signed
 * payload with version byte 2; embedded NUL; verification of a buffer with
 * no NUL after `len` (ASan catches any over-read); concurrent sign+verify on
 * one ring from several threads.
 *
 * Invariant: everything is deterministic except the round-trip claims and
 * dev seeds, which come from randombytes_buf. Read next:
 * lib/mq_ticket_code.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mq_ticket_code.h"

/* bytes 0..31, 100..131, 0xa5 x 32, 200..231 */
#define SEED_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define SEED_B "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM"
#define SEED_C "paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU"
#define SEED_D "yMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5uc"
/* RFC 8032 §7.1 TEST 1 */
#define RFC_SEED "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define RFC_PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

#define UUID_T "00112233-4455-6677-8899-aabbccddeeff"
#define UUID_B "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#define UUID_E "c0ffee00-1234-4abc-9def-0123456789ab"
/* Ed25519(SEED_A) over "MQT1.k1." || 01 UUID_T UUID_B UUID_E, computed with
 * Python's `cryptography` package, not with this module. */
#define GOLDEN                                                                                            \
  "MQT1.k1.AQARIjNEVWZ3iJmqu8zd7v8PHi08S1ppeIeWpbTD0uHwwP_uABI0Sryd7wEjRWeJq23OxxKqNWRraHG7PtcXAy7DTSEu_" \
  "PpmI6r81mJVwd5mq5ECHCZTn_DPRNKrWYUFIOHtZbHGOL55hf1sbIJ2oAQ"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static mq_ticket_keys_t *parse_ok(const char *spec) {
  mq_ticket_keys_t *k = NULL;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_ticket_keys_parse(spec, &k, &err);
  if (rc != MQ_OK) fail_msg("parse '%s': %s %s", spec, mq_code_name(rc), err.message);
  assert_non_null(k);
  return k;
}

static mq_ticket_code_status_t verify_str(const mq_ticket_keys_t *k, const char *code, mq_ticket_claims_t *out) {
  return mq_ticket_code_verify(k, code, strlen(code), out);
}

static void expect_status(const mq_ticket_keys_t *k, const char *code, mq_ticket_code_status_t want) {
  mq_ticket_claims_t c;
  memset(&c, 0xEE, sizeof c);
  mq_ticket_code_status_t got = verify_str(k, code, &c);
  if (got != want)
    fail_msg("'%s': got %s, want %s", code, mq_ticket_code_status_name(got), mq_ticket_code_status_name(want));
  if (want != MQ_TICKET_CODE_OK) {
    static const mq_ticket_claims_t zero;
    assert_memory_equal(&c, &zero, sizeof c); /* refused: claims zeroed */
  }
}

static mq_ticket_claims_t golden_claims(void) {
  mq_ticket_claims_t c = {{0}};
  assert_true(mq_uuid_parse(UUID_T, c.ticket_id));
  assert_true(mq_uuid_parse(UUID_B, c.booking_id));
  assert_true(mq_uuid_parse(UUID_E, c.event_id));
  return c;
}

static mq_ticket_claims_t random_claims(void) {
  mq_ticket_claims_t c;
  randombytes_buf(&c, sizeof c);
  return c;
}

static void sign_ok(const mq_ticket_keys_t *k, const mq_ticket_claims_t *c, char out[MQ_TICKET_CODE_MAX]) {
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_ticket_code_sign(k, c, out, MQ_TICKET_CODE_MAX, &err);
  if (rc != MQ_OK) fail_msg("sign: %s %s", mq_code_name(rc), err.message);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_keys_parse(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A);
  assert_int_equal(mq_ticket_keys_count(k), 1);
  mq_ticket_keys_free(k);

  k = parse_ok("Ab_-9:" SEED_A ",0123456789abcdef:" SEED_B ",k3:" SEED_D ",");
  assert_int_equal(mq_ticket_keys_count(k), 3); /* trailing comma tolerated */
  const char *kid = NULL;
  uint8_t pub[32], pub2[32];
  assert_true(mq_ticket_keys_public(k, 0, &kid, pub));
  assert_string_equal(kid, "Ab_-9");
  assert_true(mq_ticket_keys_public(k, 1, &kid, pub2));
  assert_string_equal(kid, "0123456789abcdef"); /* 16 chars: the maximum */
  assert_memory_not_equal(pub, pub2, 32);
  assert_true(mq_ticket_keys_public(k, 2, &kid, pub));
  assert_string_equal(kid, "k3");
  assert_false(mq_ticket_keys_public(k, 3, &kid, pub));
  mq_ticket_keys_free(k);

  /* the seed is an RFC 8032 secret key: test vector 1 */
  k = parse_ok("rfc:" RFC_SEED);
  assert_true(mq_ticket_keys_public(k, 0, &kid, pub));
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, pub, sizeof pub);
  assert_string_equal(hex, RFC_PUB);
  mq_ticket_keys_free(k);

  /* exactly 8 keys */
  char spec[1024] = "";
  for (int i = 0; i < 8; i++) {
    size_t l = strlen(spec);
    snprintf(spec + l, sizeof spec - l, "%sk%d:%s", i ? "," : "", i, i % 2 ? SEED_A : SEED_B);
  }
  k = parse_ok(spec);
  assert_int_equal(mq_ticket_keys_count(k), 8);
  mq_ticket_keys_free(k);
}

static void expect_keys_refused(const char *spec, const char *why) {
  mq_ticket_keys_t *k = (mq_ticket_keys_t *)0x1;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_ticket_keys_parse(spec, &k, &err), MQ_INVALID_ARGUMENT);
  assert_null(k);
  assert_int_equal(err.code, MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "MARQUEE_TICKET_KEYS");
  if (!strstr(err.message, why)) fail_msg("message '%s' does not say '%s'", err.message, why);
  /* no seed, nor any 12-char piece of one, is echoed */
  static const char *seeds[] = {SEED_A, SEED_B, SEED_C, SEED_D};
  for (size_t s = 0; s < 4; s++)
    for (size_t off = 0; off + 12 <= strlen(seeds[s]); off++) {
      char piece[13];
      memcpy(piece, seeds[s] + off, 12);
      piece[12] = '\0';
      if (strstr(err.message, piece)) fail_msg("message '%s' echoes a seed", err.message);
    }
}

static void test_keys_refused(void **state) {
  (void)state;
  /* seed shape */
  expect_keys_refused("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", "43");         /* 42 chars */
  expect_keys_refused("k1:" SEED_A "A", "43");                                        /* 44 chars */
  expect_keys_refused("k1:" SEED_A "AAAA", "43");                                     /* 47 chars */
  expect_keys_refused("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "43");       /* padded */
  expect_keys_refused("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", "43");        /* trailing bits set */
  expect_keys_refused("k1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM", "base64url"); /* '+' */
  expect_keys_refused("k1:yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5uc", "base64url"); /* '/' */
  expect_keys_refused("k1:AAECAwQFBgcICQoLDA0ODxAR!hMUFRYXGBkaGxwdHh8", "base64url");
  expect_keys_refused("k1:AAECAwQFBgcICQoLDA0ODxAR hMUFRYXGBkaGxwdHh8", "base64url");
  expect_keys_refused("k1: " SEED_A, "base64url");
  expect_keys_refused("k1:", "seed");
  /* kid */
  expect_keys_refused("bad kid:" SEED_A, "kid");
  expect_keys_refused("k.1:" SEED_A, "kid");
  expect_keys_refused(":" SEED_A, "kid");
  expect_keys_refused("0123456789abcdefg:" SEED_A, "kid"); /* 17 chars */
  expect_keys_refused("k1:" SEED_A ",k1:" SEED_B, "duplicate kid \"k1\"");
  expect_keys_refused("k1:" SEED_A ",k2:" SEED_B ",k1:" SEED_A, "entry 3");
  /* entries */
  expect_keys_refused(SEED_A, "kid:seed");
  expect_keys_refused("k1:" SEED_A ",,", "kid:seed");
  expect_keys_refused("k1:" SEED_A ",k2", "entry 2");
  expect_keys_refused(",k1:" SEED_A, "entry 1");

  char many[1024] = "";
  for (int i = 0; i < 9; i++) {
    size_t l = strlen(many);
    snprintf(many + l, sizeof many - l, "%sk%d:%s", i ? "," : "", i, i % 2 ? SEED_C : SEED_D);
  }
  expect_keys_refused(many, "at most 8");
}

static void test_no_keys(void **state) {
  (void)state;
  static const char *specs[] = {"", NULL};
  for (size_t i = 0; i < 2; i++) {
    mq_ticket_keys_t *k = NULL;
    mq_error_t err;
    assert_int_equal(mq_ticket_keys_parse(specs[i], &k, &err), MQ_OK);
    assert_non_null(k);
    assert_int_equal(mq_ticket_keys_count(k), 0);
    assert_false(mq_ticket_keys_public(k, 0, NULL, NULL));
    mq_ticket_claims_t c = golden_claims();
    char out[MQ_TICKET_CODE_MAX] = "junk";
    memset(&err, 0, sizeof err);
    assert_int_equal(mq_ticket_code_sign(k, &c, out, sizeof out, &err), MQ_FAILED_PRECONDITION);
    assert_string_equal(err.message, "no ticket signing key configured");
    assert_string_equal(out, "");
    expect_status(k, GOLDEN, MQ_TICKET_CODE_UNKNOWN_KEY);
    mq_ticket_keys_free(k);
  }
  /* a NULL ring behaves as an empty one */
  assert_int_equal(mq_ticket_keys_count(NULL), 0);
  expect_status(NULL, GOLDEN, MQ_TICKET_CODE_UNKNOWN_KEY);
  mq_ticket_claims_t c = golden_claims();
  char out[MQ_TICKET_CODE_MAX];
  assert_int_equal(mq_ticket_code_sign(NULL, &c, out, sizeof out, NULL), MQ_FAILED_PRECONDITION);
  mq_ticket_keys_free(NULL);
}

static void test_new_seed(void **state) {
  (void)state;
  char s1[MQ_TICKET_SEED_TEXT_LEN + 1], s2[MQ_TICKET_SEED_TEXT_LEN + 1];
  mq_ticket_keys_new_seed(s1);
  mq_ticket_keys_new_seed(s2);
  assert_int_equal(strlen(s1), 43);
  assert_string_not_equal(s1, s2);
  char spec[128];
  snprintf(spec, sizeof spec, "dev:%s,dev2:%s", s1, s2);
  mq_ticket_keys_t *k = parse_ok(spec);
  assert_int_equal(mq_ticket_keys_count(k), 2);
  mq_ticket_keys_free(k);
}

/* ---- UUIDs ---------------------------------------------------------------------------------- */

static void test_uuid(void **state) {
  (void)state;
  uint8_t b[16];
  char text[37];
  static const char *ok[] = {UUID_T, UUID_B, UUID_E, "00000000-0000-0000-0000-000000000000",
                             "ffffffff-ffff-ffff-ffff-ffffffffffff"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_true(mq_uuid_parse(ok[i], b));
    mq_uuid_format(b, text);
    assert_string_equal(text, ok[i]);
  }
  assert_true(mq_uuid_parse(UUID_T, b));
  static const uint8_t want[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  assert_memory_equal(b, want, 16); /* text order = byte order */

  /* upper case is accepted and formatted lower */
  assert_true(mq_uuid_parse("C0FFEE00-1234-4ABC-9DEF-0123456789AB", b));
  mq_uuid_format(b, text);
  assert_string_equal(text, UUID_E);

  /* random round trips */
  for (int i = 0; i < 1000; i++) {
    uint8_t r[16], back[16];
    randombytes_buf(r, sizeof r);
    mq_uuid_format(r, text);
    assert_int_equal(strlen(text), 36);
    assert_true(mq_uuid_parse(text, back));
    assert_memory_equal(r, back, 16);
  }

  static const char *bad[] = {
      "",
      "00112233-4455-6677-8899-aabbccddeef",   /* 35 */
      "00112233-4455-6677-8899-aabbccddeeff0", /* 37 */
      "00112233445566778899aabbccddeeff",      /* no dashes */
      "0011223-34455-6677-8899-aabbccddeeff",  /* dash misplaced */
      "00112233-4455-6677-8899_aabbccddeeff",
      "00112233-4455-6677-8899-aabbccddeefg",
      "g0112233-4455-6677-8899-aabbccddeeff",
      "{00112233-4455-6677-8899-aabbccddeeff}",
      "urn:uuid:00112233-4455-6677-8899-aabbccddeeff",
      " 00112233-4455-6677-8899-aabbccddeeff",
      "00112233-4455-6677-8899-aabbccddeeff ",
      "00112233-4455-6677-8899-aabbccddee\n",
      "00112233-4455-6677-8899--abbccddeeff",
      "+0112233-4455-6677-8899-aabbccddeeff",
      "00112233-4455-6677-8899-aabbccddee-f",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(b, 0x5a, sizeof b);
    if (mq_uuid_parse(bad[i], b)) fail_msg("accepted '%s'", bad[i]);
    for (size_t j = 0; j < 16; j++) assert_int_equal(b[j], 0x5a); /* untouched */
  }
  assert_false(mq_uuid_parse(NULL, b));
  /* a short string in an exactly-sized heap buffer: no over-read (ASan) */
  char *shortie = strdup("0011");
  assert_false(mq_uuid_parse(shortie, b));
  free(shortie);
}

/* ---- the wire format ------------------------------------------------------------------------ */

static void test_golden_vector(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A);
  mq_ticket_claims_t c = golden_claims(), got;
  char out[MQ_TICKET_CODE_MAX];
  sign_ok(k, &c, out);
  assert_string_equal(out, GOLDEN);
  assert_int_equal(strlen(GOLDEN), 5 + 2 + 1 + 151);
  assert_int_equal(verify_str(k, GOLDEN, &got), MQ_TICKET_CODE_OK);
  assert_memory_equal(&got, &c, sizeof c);
  char text[37];
  mq_uuid_format(got.event_id, text);
  assert_string_equal(text, UUID_E);
  uint8_t pub[32];
  char hex[65];
  assert_true(mq_ticket_keys_public(k, 0, NULL, pub));
  sodium_bin2hex(hex, sizeof hex, pub, sizeof pub);
  assert_string_equal(hex, "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"); /* as in the header */
  mq_ticket_keys_free(k);
}

/* Rebuilds the signed bytes from the format documented in the header, as a
 * third-party scanner would, and checks the signature with the public key. */
static void test_documented_format(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("gate_7-b:" SEED_D ",k1:" SEED_A);
  const char *kid = NULL;
  uint8_t pub[32];
  assert_true(mq_ticket_keys_public(k, 0, &kid, pub));
  for (int i = 0; i < 50; i++) {
    mq_ticket_claims_t c = random_claims();
    char code[MQ_TICKET_CODE_MAX];
    sign_ok(k, &c, code);
    assert_int_equal(strncmp(code, "MQT1.gate_7-b.", 14), 0);
    const char *body = code + 14;
    assert_int_equal(strlen(body), 151);
    uint8_t bin[113];
    size_t bin_len = 0;
    assert_int_equal(sodium_base642bin(bin, sizeof bin, body, strlen(body), NULL, &bin_len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(bin_len, 113);
    assert_int_equal(bin[0], 1);
    assert_memory_equal(bin + 1, c.ticket_id, 16);
    assert_memory_equal(bin + 17, c.booking_id, 16);
    assert_memory_equal(bin + 33, c.event_id, 16);
    uint8_t m[14 + 49];
    memcpy(m, "MQT1.gate_7-b.", 14);
    memcpy(m + 14, bin, 49);
    assert_int_equal(crypto_sign_verify_detached(bin + 49, m, sizeof m, pub), 0);
  }
  mq_ticket_keys_free(k);
}

/* ---- round trip ------------------------------------------------------------------------------ */

static void test_round_trip(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A ",k2:" SEED_B);
  for (int i = 0; i < 200; i++) {
    mq_ticket_claims_t c = random_claims(), got;
    char code[MQ_TICKET_CODE_MAX];
    sign_ok(k, &c, code);
    assert_int_equal(strlen(code), 159);
    assert_int_equal(verify_str(k, code, &got), MQ_TICKET_CODE_OK);
    assert_memory_equal(&got, &c, sizeof c);
    assert_int_equal(verify_str(k, code, NULL), MQ_TICKET_CODE_OK); /* out may be NULL */
  }
  mq_ticket_keys_free(k);

  /* the longest kid gives the longest code: MQ_TICKET_CODE_MAX - 1 */
  k = parse_ok("0123456789abcdef:" SEED_C);
  mq_ticket_claims_t c = golden_claims();
  char code[MQ_TICKET_CODE_MAX];
  sign_ok(k, &c, code);
  assert_int_equal(strlen(code), MQ_TICKET_CODE_MAX - 1);
  expect_status(k, code, MQ_TICKET_CODE_OK);

  /* output buffer: exactly enough works, one less is refused */
  char small[MQ_TICKET_CODE_MAX];
  mq_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(mq_ticket_code_sign(k, &c, small, MQ_TICKET_CODE_MAX - 1, &err), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "too small"));
  assert_string_equal(small, "");
  assert_int_equal(mq_ticket_code_sign(k, &c, small, MQ_TICKET_CODE_MAX, &err), MQ_OK);
  assert_string_equal(small, code); /* Ed25519 is deterministic */
  assert_int_equal(mq_ticket_code_sign(k, NULL, small, sizeof small, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_ticket_code_sign(k, &c, NULL, 0, &err), MQ_INVALID_ARGUMENT);
  mq_ticket_keys_free(k);
}

static void test_rotation(void **state) {
  (void)state;
  mq_ticket_keys_t *a = parse_ok("a:" SEED_A);
  mq_ticket_keys_t *ba = parse_ok("b:" SEED_B ",a:" SEED_A);
  mq_ticket_keys_t *b = parse_ok("b:" SEED_B);
  mq_ticket_keys_t *a_other = parse_ok("a:" SEED_C); /* same kid, another key */
  mq_ticket_claims_t c = random_claims(), got;
  char by_a[MQ_TICKET_CODE_MAX], by_ba[MQ_TICKET_CODE_MAX];
  sign_ok(a, &c, by_a);
  sign_ok(ba, &c, by_ba);
  assert_int_equal(strncmp(by_ba, "MQT1.b.", 7), 0); /* the first key signs */

  assert_int_equal(verify_str(ba, by_a, &got), MQ_TICKET_CODE_OK); /* old codes still scan */
  assert_memory_equal(&got, &c, sizeof c);
  assert_int_equal(verify_str(ba, by_ba, &got), MQ_TICKET_CODE_OK);
  expect_status(b, by_a, MQ_TICKET_CODE_UNKNOWN_KEY); /* old key dropped */
  expect_status(b, by_ba, MQ_TICKET_CODE_OK);
  expect_status(a, by_ba, MQ_TICKET_CODE_UNKNOWN_KEY); /* scanner not yet updated */
  expect_status(a_other, by_a, MQ_TICKET_CODE_BAD_SIGNATURE);
  mq_ticket_keys_free(a);
  mq_ticket_keys_free(ba);
  mq_ticket_keys_free(b);
  mq_ticket_keys_free(a_other);
}

/* ---- refusals -------------------------------------------------------------------------------- */

static void test_every_substitution_refused(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A ",k2:" SEED_B ",kA:" SEED_C);
  size_t len = strlen(GOLDEN);
  expect_status(k, GOLDEN, MQ_TICKET_CODE_OK);
  size_t counts[4] = {0};
  char code[MQ_TICKET_CODE_MAX];
  for (size_t pos = 0; pos < len; pos++) {
    for (size_t j = 0; j < 64; j++) {
      if (B64URL[j] == GOLDEN[pos]) continue;
      memcpy(code, GOLDEN, len + 1);
      code[pos] = B64URL[j];
      mq_ticket_claims_t got;
      memset(&got, 0xEE, sizeof got);
      mq_ticket_code_status_t s = mq_ticket_code_verify(k, code, len, &got);
      if (s == MQ_TICKET_CODE_OK) fail_msg("altered code accepted: pos %zu char %c: %s", pos, B64URL[j], code);
      static const mq_ticket_claims_t zero;
      assert_memory_equal(&got, &zero, sizeof got);
      /* in the body, a change is either a bad signature or not canonical */
      if (pos >= 8) assert_true(s == MQ_TICKET_CODE_BAD_SIGNATURE || s == MQ_TICKET_CODE_MALFORMED);
      counts[s]++;
    }
  }
  print_message("substitutions: %zu malformed, %zu unknown key, %zu bad signature\n", counts[MQ_TICKET_CODE_MALFORMED],
                counts[MQ_TICKET_CODE_UNKNOWN_KEY], counts[MQ_TICKET_CODE_BAD_SIGNATURE]);
  assert_true(counts[MQ_TICKET_CODE_BAD_SIGNATURE] > counts[MQ_TICKET_CODE_MALFORMED]);
  assert_true(counts[MQ_TICKET_CODE_UNKNOWN_KEY] > 0);
  mq_ticket_keys_free(k);
}

static void test_relabelled(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A ",k2:" SEED_B ",longer-kid:" SEED_C);
  char code[MQ_TICKET_CODE_MAX + 16];
  memcpy(code, GOLDEN, sizeof GOLDEN);
  code[6] = '2'; /* "MQT1.k2." + k1's body */
  expect_status(k, code, MQ_TICKET_CODE_BAD_SIGNATURE);
  snprintf(code, sizeof code, "MQT1.longer-kid.%s", GOLDEN + 8);
  expect_status(k, code, MQ_TICKET_CODE_BAD_SIGNATURE);
  snprintf(code, sizeof code, "MQT1.k3.%s", GOLDEN + 8);
  expect_status(k, code, MQ_TICKET_CODE_UNKNOWN_KEY);
  mq_ticket_keys_free(k);
}

/* Signs "MQT1.k1." || payload with SEED_A by hand (payload may be anything). */
static void hand_signed(const uint8_t payload[49], char out[MQ_TICKET_CODE_MAX]) {
  uint8_t seed[32], pk[32], sk[64], body[113], m[8 + 49];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
  assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
  memcpy(body, payload, 49);
  memcpy(m, "MQT1.k1.", 8);
  memcpy(m + 8, payload, 49);
  assert_int_equal(crypto_sign_detached(body + 49, NULL, m, sizeof m, sk), 0);
  memcpy(out, "MQT1.k1.", 8);
  sodium_bin2base64(out + 8, MQ_TICKET_CODE_MAX - 8, body, sizeof body, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void test_malformed(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k1:" SEED_A);
  size_t len = strlen(GOLDEN);
  char code[512];

  /* every truncation */
  for (size_t n = 0; n < len; n++) {
    memcpy(code, GOLDEN, n);
    code[n] = '\0';
    expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
    /* and the same bytes with a shorter len than the string */
    assert_int_equal(mq_ticket_code_verify(k, GOLDEN, n, NULL), MQ_TICKET_CODE_MALFORMED);
  }
  assert_int_equal(mq_ticket_code_verify(k, NULL, 0, NULL), MQ_TICKET_CODE_MALFORMED);
  expect_status(k, "", MQ_TICKET_CODE_MALFORMED);

  /* padding, extra chars, over-long */
  static const char *suffixes[] = {"=", "==", "A", "AA", "AAAA", " ", "\n", "."};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    snprintf(code, sizeof code, "%s%s", GOLDEN, suffixes[i]);
    expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  }
  memset(code, 'A', sizeof code - 1);
  code[sizeof code - 1] = '\0';
  memcpy(code, GOLDEN, len);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  /* whitespace before or inside */
  snprintf(code, sizeof code, " %s", GOLDEN);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  snprintf(code, sizeof code, "%s", GOLDEN);
  code[50] = ' ';
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  /* wrong prefix / version in the text */
  static const char *prefixes[] = {"MQT2.", "mqt1.", "MQT1:", "MQT.", "MQT10", "XMQT1."};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    snprintf(code, sizeof code, "%s%s", prefixes[i], GOLDEN + 5);
    expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  }
  /* no kid, kid with a bad char, no second dot */
  snprintf(code, sizeof code, "MQT1..%s", GOLDEN + 8);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  snprintf(code, sizeof code, "MQT1.k+.%s", GOLDEN + 8);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  snprintf(code, sizeof code, "MQT1.k1%s", GOLDEN + 8);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  snprintf(code, sizeof code, "MQT1.0123456789abcdefg.%s", GOLDEN + 8); /* 17-char kid */
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);

  /* standard base64 for the url-safe chars */
  snprintf(code, sizeof code, "%s", GOLDEN);
  char *u = strchr(code + 8, '_');
  assert_non_null(u);
  *u = '/';
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  snprintf(code, sizeof code, "%s", GOLDEN);
  u = strchr(code + 8, '_');
  *u = '+';
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);

  /* non-zero trailing bits: the last char carries 4 data bits + 2 zero bits */
  snprintf(code, sizeof code, "%s", GOLDEN);
  assert_int_equal(code[len - 1], 'Q'); /* 010000 */
  code[len - 1] = 'R';                  /* 010001 */
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  code[len - 1] = 'S';
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);

  /* embedded NUL: the length says it is there */
  memcpy(code, GOLDEN, len + 1);
  code[40] = '\0';
  assert_int_equal(mq_ticket_code_verify(k, code, len, NULL), MQ_TICKET_CODE_MALFORMED);

  /* a correctly signed payload with version byte 2 (and 0) is not a v1 code */
  uint8_t payload[49];
  mq_ticket_claims_t c = golden_claims();
  memcpy(payload + 1, &c, 48);
  payload[0] = 1;
  hand_signed(payload, code);
  expect_status(k, code, MQ_TICKET_CODE_OK); /* sanity: the hand signer matches */
  assert_string_equal(code, GOLDEN);
  payload[0] = 2;
  hand_signed(payload, code);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);
  payload[0] = 0;
  hand_signed(payload, code);
  expect_status(k, code, MQ_TICKET_CODE_MALFORMED);

  /* a signature over the payload without the prefix is not accepted */
  uint8_t seed[32], pk[32], sk[64], body[113];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
  crypto_sign_seed_keypair(pk, sk, seed);
  payload[0] = 1;
  memcpy(body, payload, 49);
  crypto_sign_detached(body + 49, NULL, payload, 49, sk);
  memcpy(code, "MQT1.k1.", 8);
  sodium_bin2base64(code + 8, sizeof code - 8, body, sizeof body, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  expect_status(k, code, MQ_TICKET_CODE_BAD_SIGNATURE);

  /* exactly `len` bytes on the heap, no NUL after them: ASan flags any over-read */
  char *exact = malloc(len);
  memcpy(exact, GOLDEN, len);
  mq_ticket_claims_t got;
  assert_int_equal(mq_ticket_code_verify(k, exact, len, &got), MQ_TICKET_CODE_OK);
  assert_memory_equal(&got, &c, sizeof c);
  exact[len - 1] = 'R';
  assert_int_equal(mq_ticket_code_verify(k, exact, len, &got), MQ_TICKET_CODE_MALFORMED);
  memcpy(exact, "MQT1.k1", 7);
  memset(exact + 7, 'x', len - 7); /* no second dot anywhere */
  assert_int_equal(mq_ticket_code_verify(k, exact, len, &got), MQ_TICKET_CODE_MALFORMED);
  free(exact);

  assert_string_equal(mq_ticket_code_status_name(MQ_TICKET_CODE_OK), "OK");
  assert_string_equal(mq_ticket_code_status_name(MQ_TICKET_CODE_UNKNOWN_KEY), "UNKNOWN_KEY");
  assert_string_equal(mq_ticket_code_status_name(MQ_TICKET_CODE_BAD_SIGNATURE), "BAD_SIGNATURE");
  mq_ticket_keys_free(k);
}

/* ---- threads ------------------------------------------------------------------------------- */

static void *worker(void *arg) {
  const mq_ticket_keys_t *k = arg;
  for (int i = 0; i < 200; i++) {
    mq_ticket_claims_t c, got;
    randombytes_buf(&c, sizeof c);
    char code[MQ_TICKET_CODE_MAX];
    if (mq_ticket_code_sign(k, &c, code, sizeof code, NULL) != MQ_OK) return (void *)1;
    if (mq_ticket_code_verify(k, code, strlen(code), &got) != MQ_TICKET_CODE_OK) return (void *)1;
    if (memcmp(&got, &c, sizeof c) != 0) return (void *)1;
    if (mq_ticket_code_verify(k, GOLDEN, strlen(GOLDEN), &got) != MQ_TICKET_CODE_OK) return (void *)1;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  mq_ticket_keys_t *k = parse_ok("k2:" SEED_B ",k1:" SEED_A);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, k), 0);
  for (int i = 0; i < 4; i++) {
    void *r = (void *)1;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  mq_ticket_keys_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_parse),
      cmocka_unit_test(test_keys_refused),
      cmocka_unit_test(test_no_keys),
      cmocka_unit_test(test_new_seed),
      cmocka_unit_test(test_uuid),
      cmocka_unit_test(test_golden_vector),
      cmocka_unit_test(test_documented_format),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rotation),
      cmocka_unit_test(test_every_substitution_refused),
      cmocka_unit_test(test_relabelled),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
