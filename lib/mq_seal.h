/*
 * mq_seal.h — bearer secrets sealed to the notifier, so that no usable
 * secret ever travels on the bus or rests in the audit log.
 *
 * A password-reset, e-mail-verification or invitation token must reach the
 * one process that e-mails it. The server seals it with libsodium's sealed
 * box (X25519 + XSalsa20-Poly1305, an ephemeral sender key per box) to the
 * notifier's public key; only the holder of the matching secret key can
 * open it. Kafka, the audit log and anyone reading them see ciphertext.
 *
 * Keys are lists "kid:base64url(32 bytes)[,kid:...]": public keys on the
 * server (MARQUEE_NOTIFY_KEYS; the first seals, so rotation is: add the
 * new key first, keep the old secret on the notifier until the old boxes
 * have expired), secret keys on the notifier (it opens with the key the box
 * names). `marquee keygen notify` prints a new pair.
 *
 * Invariants:
 *   1. A box names its key id; opening with any other key fails.
 *   2. mq_seal_open never writes past `cap` and NUL-terminates on success;
 *      on failure the output buffer is zeroed.
 *   3. Parsed key lists own their memory (mq_seal_keys_free); secret keys
 *      are wiped when freed.
 */
#ifndef MQ_SEAL_H
#define MQ_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

typedef struct mq_seal_keys mq_seal_keys_t;

/* Parses a key list; `secret` says which kind it holds. INVALID_ARGUMENT
 * naming `field` (the configuration key) when malformed. */
mq_code_t mq_seal_keys_parse(const char *spec, bool secret, const char *field, mq_seal_keys_t **out, mq_error_t *err);
void mq_seal_keys_free(mq_seal_keys_t *k);

/* Seals `secret` to the first public key of `k`; the key id and the box
 * (*len bytes) are allocated in `a`. INTERNAL only if libsodium fails. */
mq_code_t mq_seal(const mq_seal_keys_t *k, const char *secret, mq_arena_t *a, char **kid, uint8_t **box, size_t *len,
                  mq_error_t *err);

/* Opens a box sealed to key `kid` with the secret keys `k`: true and the
 * secret in out[cap] (NUL-terminated), or false (unknown key, a box that
 * does not open, or a secret longer than cap - 1). */
bool mq_seal_open(const mq_seal_keys_t *k, const char *kid, const uint8_t *box, size_t len, char *out, size_t cap);

/* A key id: 1-32 of A-Z a-z 0-9 - _. */
bool mq_seal_kid_ok(const char *kid);

/* The public list "kid:public,..." of a parsed list (of either kind). */
void mq_seal_public_spec(const mq_seal_keys_t *k, char *out, size_t n);

/* A new key pair, as the two list entries "kid:public" and "kid:secret". */
void mq_seal_keygen(const char *kid, char *pub_spec, size_t pub_n, char *sec_spec, size_t sec_n);

#endif
