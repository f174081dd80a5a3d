/*
 * mq_ticket_code.c — Ed25519 ticket codes (see mq_ticket_code.h). Signing,
 * verification and the strict base64url codec all come from libsodium
 * (sodium_base642bin with no ignore set and no end pointer refuses padding,
 * foreign characters and non-zero trailing bits). sodium_init runs once per
 * process under pthread_once.
 */
#include "lib/mq_ticket_code.h"
#include "core/mq_xmalloc.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "MQT1."
#define PREFIX_LEN 5
#define VERSION 1
#define PAYLOAD_LEN 49                  /* version + 3 UUIDs */
#define BODY_BIN_LEN (PAYLOAD_LEN + 64) /* payload || signature = 113 */
#define BODY_TEXT_LEN 151               /* base64url, unpadded, of 113 bytes */
#define SIGNED_MAX (PREFIX_LEN + MQ_TICKET_KID_MAX + 1 + PAYLOAD_LEN)
#define FIELD "MARQUEE_TICKET_KEYS"

_Static_assert(BODY_TEXT_LEN == (BODY_BIN_LEN * 4 + 2) / 3, "body length");
_Static_assert(MQ_TICKET_CODE_MAX == PREFIX_LEN + MQ_TICKET_KID_MAX + 1 + BODY_TEXT_LEN + 1, "code length");
_Static_assert(crypto_sign_BYTES == 64 && crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SEEDBYTES == 32,
               "Ed25519 sizes");

typedef struct {
  char kid[MQ_TICKET_KID_MAX + 1];
  size_t kid_len;
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || pk, libsodium's layout */
} tkey_t;

struct mq_ticket_keys {
  tkey_t keys[MQ_TICKET_KEYS_MAX];
  size_t n;
};

/* ---- libsodium init ----------------------------------------------------------------- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc = -1;

static void sodium_init_once(void) {
  sodium_rc = sodium_init() < 0 ? -1 : 0;
}

static bool sodium_ready(void) {
  pthread_once(&sodium_once, sodium_init_once);
  return sodium_rc == 0;
}

/* ---- keys ------------------------------------------------------------------------------ */

static bool kid_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool kid_ok(const char *s, size_t n) {
  if (n < 1 || n > MQ_TICKET_KID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!kid_char(s[i])) return false;
  return true;
}

static mq_code_t refuse_spec(mq_ticket_keys_t *k, mq_error_t *err, size_t entry, const char *why) {
  mq_ticket_keys_free(k);
  return mq_error_set(err, MQ_INVALID_ARGUMENT, FIELD, "entry %zu: %s", entry, why);
}

mq_code_t mq_ticket_keys_parse(const char *spec, mq_ticket_keys_t **out, mq_error_t *err) {
  *out = NULL;
  if (!sodium_ready()) return mq_error_set(err, MQ_INTERNAL, NULL, "libsodium failed to initialise");
  mq_ticket_keys_t *k = mq_xcalloc(1, sizeof *k);
  const char *p = spec ? spec : "";
  for (size_t entry = 1; *p; entry++) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    if (k->n == MQ_TICKET_KEYS_MAX) return refuse_spec(k, err, entry, "at most 8 keys");
    if (!colon) return refuse_spec(k, err, entry, "entries must be kid:seed");
    size_t kl = (size_t)(colon - p), sl = len - kl - 1;
    if (!kid_ok(p, kl)) return refuse_spec(k, err, entry, "a kid must be 1-16 chars of [A-Za-z0-9_-]");
    for (size_t i = 0; i < k->n; i++)
      if (k->keys[i].kid_len == kl && memcmp(k->keys[i].kid, p, kl) == 0) {
        mq_ticket_keys_free(k);
        return mq_error_set(err, MQ_INVALID_ARGUMENT, FIELD, "entry %zu: duplicate kid \"%.*s\"", entry, (int)kl, p);
      }
    uint8_t seed[crypto_sign_SEEDBYTES];
    size_t seed_len = 0;
    bool seed_ok = sl == MQ_TICKET_SEED_TEXT_LEN &&
                   sodium_base642bin(seed, sizeof seed, colon + 1, sl, NULL, &seed_len, NULL,
                                     sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
                   seed_len == sizeof seed;
    if (!seed_ok) {
      sodium_memzero(seed, sizeof seed);
      return refuse_spec(k, err, entry, "a seed must be 32 bytes as 43 chars of unpadded base64url");
    }
    tkey_t *e = &k->keys[k->n++];
    memcpy(e->kid, p, kl);
    e->kid[kl] = '\0';
    e->kid_len = kl;
    int rc = crypto_sign_seed_keypair(e->pk, e->sk, seed);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
      mq_ticket_keys_free(k);
      return mq_error_set(err, MQ_INTERNAL, FIELD, "entry %zu: key derivation failed", entry);
    }
    p += len;
    if (*p == ',') p++;
  }
  *out = k;
  return MQ_OK;
}

void mq_ticket_keys_free(mq_ticket_keys_t *k) {
  if (!k) return;
  sodium_memzero(k, sizeof *k);
  free(k);
}

size_t mq_ticket_keys_count(const mq_ticket_keys_t *k) {
  return k ? k->n : 0;
}

bool mq_ticket_keys_public(const mq_ticket_keys_t *k, size_t i, const char **kid, uint8_t pub[32]) {
  if (!k || i >= k->n) return false;
  if (kid) *kid = k->keys[i].kid;
  if (pub) memcpy(pub, k->keys[i].pk, sizeof k->keys[i].pk);
  return true;
}

void mq_ticket_keys_new_seed(char out[MQ_TICKET_SEED_TEXT_LEN + 1]) {
  if (!sodium_ready()) mq_die("libsodium cannot start: no safe randomness for a ticket key");
  uint8_t seed[crypto_sign_SEEDBYTES];
  randombytes_buf(seed, sizeof seed);
  sodium_bin2base64(out, MQ_TICKET_SEED_TEXT_LEN + 1, seed, sizeof seed, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(seed, sizeof seed);
}

/* ---- UUIDs -------------------------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool mq_uuid_parse(const char *text, uint8_t out[16]) {
  if (!text) return false;
  uint8_t b[16] = {0};
  size_t nibble = 0;
  for (size_t i = 0; i < 36; i++) { /* stops at the first wrong char, so never reads past a NUL */
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
      continue;
    }
    int v = hexval(text[i]);
    if (v < 0) return false;
    b[nibble / 2] |= (uint8_t)(nibble % 2 ? v : v << 4);
    nibble++;
  }
  if (text[36] != '\0') return false;
  memcpy(out, b, sizeof b);
  return true;
}

void mq_uuid_format(const uint8_t in[16], char out[37]) {
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hx[in[i] >> 4];
    out[o++] = hx[in[i] & 15];
  }
  out[o] = '\0';
}

/* ---- sign ----------------------------------------------------------------------------------- */

/* "MQT1.<kid>." || payload into m; returns its length. */
static size_t signed_bytes(const char *kid, size_t kid_len, const uint8_t payload[PAYLOAD_LEN], uint8_t m[SIGNED_MAX]) {
  size_t n = 0;
  memcpy(m, PREFIX, PREFIX_LEN);
  n += PREFIX_LEN;
  memcpy(m + n, kid, kid_len);
  n += kid_len;
  m[n++] = '.';
  memcpy(m + n, payload, PAYLOAD_LEN);
  return n + PAYLOAD_LEN;
}

mq_code_t mq_ticket_code_sign(const mq_ticket_keys_t *k, const mq_ticket_claims_t *c, char *out, size_t cap,
                              mq_error_t *err) {
  if (out && cap > 0) out[0] = '\0';
  if (!k || k->n == 0) return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "no ticket signing key configured");
  if (!c || !out) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing claims or output buffer");
  const tkey_t *key = &k->keys[0];
  size_t need = PREFIX_LEN + key->kid_len + 1 + BODY_TEXT_LEN + 1;
  if (cap < need) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "output buffer too small (%zu < %zu)", cap, need);

  uint8_t body[BODY_BIN_LEN];
  body[0] = VERSION;
  memcpy(body + 1, c->ticket_id, 16);
  memcpy(body + 17, c->booking_id, 16);
  memcpy(body + 33, c->event_id, 16);
  uint8_t m[SIGNED_MAX];
  size_t mlen = signed_bytes(key->kid, key->kid_len, body, m);
  if (crypto_sign_detached(body + PAYLOAD_LEN, NULL, m, mlen, key->sk) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "ticket code signing failed");

  size_t n = (size_t)snprintf(out, cap, PREFIX "%s.", key->kid);
  sodium_bin2base64(out + n, cap - n, body, sizeof body, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return MQ_OK;
}

/* ---- verify --------------------------------------------------------------------------------- */

static mq_ticket_code_status_t verify_code(const mq_ticket_keys_t *k, const char *code, size_t len,
                                           mq_ticket_claims_t *out) {
  if (len >= MQ_TICKET_CODE_MAX || len < PREFIX_LEN || memcmp(code, PREFIX, PREFIX_LEN) != 0)
    return MQ_TICKET_CODE_MALFORMED;
  const char *kid = code + PREFIX_LEN;
  const char *dot = memchr(kid, '.', len - PREFIX_LEN);
  if (!dot) return MQ_TICKET_CODE_MALFORMED;
  size_t kid_len = (size_t)(dot - kid);
  if (!kid_ok(kid, kid_len)) return MQ_TICKET_CODE_MALFORMED;
  const char *b64 = dot + 1;
  size_t b64_len = len - (size_t)(b64 - code);
  if (b64_len != BODY_TEXT_LEN) return MQ_TICKET_CODE_MALFORMED;

  uint8_t body[BODY_BIN_LEN];
  size_t body_len = 0;
  if (sodium_base642bin(body, sizeof body, b64, b64_len, NULL, &body_len, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      body_len != sizeof body || body[0] != VERSION)
    return MQ_TICKET_CODE_MALFORMED;

  const tkey_t *key = NULL;
  for (size_t i = 0; k && i < k->n && !key; i++)
    if (k->keys[i].kid_len == kid_len && memcmp(k->keys[i].kid, kid, kid_len) == 0) key = &k->keys[i];
  if (!key) return MQ_TICKET_CODE_UNKNOWN_KEY;

  uint8_t m[SIGNED_MAX];
  size_t mlen = signed_bytes(key->kid, key->kid_len, body, m);
  if (crypto_sign_verify_detached(body + PAYLOAD_LEN, m, mlen, key->pk) != 0) return MQ_TICKET_CODE_BAD_SIGNATURE;
  if (out) {
    memcpy(out->ticket_id, body + 1, 16);
    memcpy(out->booking_id, body + 17, 16);
    memcpy(out->event_id, body + 33, 16);
  }
  return MQ_TICKET_CODE_OK;
}

mq_ticket_code_status_t mq_ticket_code_verify(const mq_ticket_keys_t *k, const char *code, size_t len,
                                              mq_ticket_claims_t *out) {
  mq_ticket_code_status_t s = code ? verify_code(k, code, len, out) : MQ_TICKET_CODE_MALFORMED;
  if (s != MQ_TICKET_CODE_OK && out) memset(out, 0, sizeof *out);
  return s;
}

const char *mq_ticket_code_status_name(mq_ticket_code_status_t s) {
  switch (s) {
    case MQ_TICKET_CODE_OK:
      return "OK";
    case MQ_TICKET_CODE_MALFORMED:
      return "MALFORMED";
    case MQ_TICKET_CODE_UNKNOWN_KEY:
      return "UNKNOWN_KEY";
    case MQ_TICKET_CODE_BAD_SIGNATURE:
      return "BAD_SIGNATURE";
  }
  return "MALFORMED";
}
