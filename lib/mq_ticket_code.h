/*
 * mq_ticket_code.h — signed ticket codes (the text inside a ticket's QR) that
 * a door scanner can verify offline, with nothing but the public keys that
 * GetTicketKeys publishes.
 *
 * Keys. MARQUEE_TICKET_KEYS is "kid:SEED[,kid:SEED...]": kid is 1..16 chars
 * of [A-Za-z0-9_-], SEED a 32-byte Ed25519 seed in unpadded base64url (exactly
 * 43 chars). At most 8 keys, kids unique, one trailing comma tolerated. The
 * FIRST key signs; every key verifies. Rotation: put the new key first, keep
 * the old ones after it until no code they signed can still be scanned (the
 * event is over). An empty spec is a ring with no keys: signing answers
 * FAILED_PRECONDITION, every code verifies as UNKNOWN_KEY. Parse errors are
 * INVALID_ARGUMENT naming MARQUEE_TICKET_KEYS; messages never contain a seed.
 *
 * Wire format (version 1), for third-party scanners:
 *
 *   code      = "MQT1." kid "." body
 *   body      = base64url(payload || signature)   RFC 4648 §5, no '=' padding
 *   payload   = 0x01 ticket_id booking_id event_id   49 bytes: version byte 1,
 *               then the three UUIDs as 16 raw bytes each (RFC 4122 byte order,
 *               i.e. the order the hex digits are written in)
 *   signature = Ed25519 (RFC 8032, pure, no context) over the ASCII bytes of
 *               "MQT1." kid "." immediately followed by the 49 payload bytes
 *               (so the key id and version are bound by the signature)
 *
 * payload || signature is 113 bytes, so body is always exactly 151 chars and
 * its last char encodes 4 data bits followed by 2 zero bits. A code is at most
 * 5 + 16 + 1 + 151 = 173 chars; it is pure ASCII (safe for QR byte mode, URLs
 * and logs). Example shape: "MQT1.k2025.AeH3...".
 *
 * Verification is strict; a scanner should do the same, in this order:
 *   MALFORMED     longer than 173 chars, prefix not exactly "MQT1.", no second
 *                 '.', kid not 1..16 chars of [A-Za-z0-9_-], body not exactly
 *                 151 chars, body not canonical unpadded base64url (padding,
 *                 '+', '/', whitespace or non-zero trailing bits), version
 *                 byte not 1
 *   UNKNOWN_KEY   kid not in the ring
 *   BAD_SIGNATURE Ed25519 verification fails (libsodium also refuses
 *                 non-canonical signatures and small-order public keys)
 * Only OK fills the claims; any other answer zeroes them.
 *
 * Test vector (checked by the unit test, computed with an independent
 * Ed25519 implementation): seed = bytes 0x00..0x1f
 * ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", public key
 * 03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8), kid "k1",
 * ticket 00112233-4455-6677-8899-aabbccddeeff, booking
 * 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0, event
 * c0ffee00-1234-4abc-9def-0123456789ab give
 *   MQT1.k1.AQARIjNEVWZ3iJmqu8zd7v8PHi08S1ppeIeWpbTD0uHwwP_uABI0Sryd7wEjRWeJq23O
 *   xxKqNWRraHG7PtcXAy7DTSEu_PpmI6r81mJVwd5mq5ECHCZTn_DPRNKrWYUFIOHtZbHGOL55hf1s
 *   bIJ2oAQ                                      (one line, no spaces)
 * The code carries
 * identities only: whether the ticket is still valid (not refunded, not yet
 * scanned) is the scanner's or server's business.
 *
 * Thread-safety: the ring is immutable after mq_ticket_keys_parse, so sign and
 * verify may run concurrently on one ring. Secret keys are wiped
 * (sodium_memzero) by mq_ticket_keys_free. Verification never reads code
 * bytes at or past `len` (no NUL needed) and does not allocate.
 *
 * Read next: tests/unit/lib/test_ticket_code.c, mq_ticket_render.h (the QR).
 */
#ifndef MQ_TICKET_CODE_H
#define MQ_TICKET_CODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

#define MQ_TICKET_KEYS_MAX 8
#define MQ_TICKET_KID_MAX 16
#define MQ_TICKET_SEED_TEXT_LEN 43 /* unpadded base64url of 32 bytes */
/* Longest code text including its NUL (173 chars + NUL). */
#define MQ_TICKET_CODE_MAX 174

typedef struct mq_ticket_keys mq_ticket_keys_t;

/* Parses the spec (NULL or "" = no keys). On error *out is NULL. INTERNAL if
 * libsodium cannot initialise. */
mq_code_t mq_ticket_keys_parse(const char *spec, mq_ticket_keys_t **out, mq_error_t *err);
/* Wipes and frees; NULL is a no-op. */
void mq_ticket_keys_free(mq_ticket_keys_t *k);
/* 0 for NULL. */
size_t mq_ticket_keys_count(const mq_ticket_keys_t *k);
/* The i-th key (0 = signing key): its kid (borrowed, valid until free) and its
 * 32-byte Ed25519 public key. false if i is out of range. */
bool mq_ticket_keys_public(const mq_ticket_keys_t *k, size_t i, const char **kid, uint8_t pub[32]);
/* A fresh random seed as 43 chars of base64url + NUL, for dev setups:
 * MARQUEE_TICKET_KEYS="dev:<seed>". */
void mq_ticket_keys_new_seed(char out[MQ_TICKET_SEED_TEXT_LEN + 1]);

/* UUIDs as 16 raw bytes. */
typedef struct {
  uint8_t ticket_id[16], booking_id[16], event_id[16];
} mq_ticket_claims_t;

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (NUL-terminated, exactly 36 chars,
 * hex digits in either case, dashes at 8, 13, 18, 23) → 16 bytes. Any other
 * text (braces, "urn:uuid:", missing dashes, surrounding spaces) is refused.
 * out is untouched on failure. */
bool mq_uuid_parse(const char *text, uint8_t out[16]);
/* 16 bytes → canonical lower-case text + NUL into out[37]. */
void mq_uuid_format(const uint8_t in[16], char out[37]);

/* Signs the claims with the ring's first key and writes the NUL-terminated
 * code into out[0..cap) (cap >= MQ_TICKET_CODE_MAX always suffices).
 * FAILED_PRECONDITION if the ring has no key; INVALID_ARGUMENT if c/out is NULL
 * or cap is too small (out is then "" when cap > 0). */
mq_code_t mq_ticket_code_sign(const mq_ticket_keys_t *k, const mq_ticket_claims_t *c, char *out, size_t cap,
                              mq_error_t *err);

typedef enum {
  MQ_TICKET_CODE_OK,
  MQ_TICKET_CODE_MALFORMED,
  MQ_TICKET_CODE_UNKNOWN_KEY,
  MQ_TICKET_CODE_BAD_SIGNATURE
} mq_ticket_code_status_t;

/* Verifies code[0..len) (see the order above). k may be NULL (no keys); code
 * may be NULL only with len 0; out may be NULL. */
mq_ticket_code_status_t mq_ticket_code_verify(const mq_ticket_keys_t *k, const char *code, size_t len,
                                              mq_ticket_claims_t *out);
/* "OK", "MALFORMED", "UNKNOWN_KEY", "BAD_SIGNATURE". */
const char *mq_ticket_code_status_name(mq_ticket_code_status_t s);

#endif
