/*
 * mq_jwks.h — OIDC ID token verification against a provider's JWKS ("Sign in
 * with Google / Microsoft / Apple"). Pure CPU, no network: the caller fetches
 * the JWKS document (jwks_uri) over HTTP and hands the JSON text to
 * mq_jwks_parse; tokens are then checked with mq_oidc_verify_id_token.
 *
 * Keys: kty RSA (n, e; 2048..8192-bit modulus) and kty EC (P-256 / ES256,
 * P-384 / ES384, x and y at full length), each with a kid. Keys meant for
 * something else ("use" other than "sig", "key_ops" without "verify", an "alg"
 * that does not fit the key), of another kty/crv, without a kid, or failing
 * OpenSSL's public-key check are ignored and counted (mq_jwks_ignored), so one
 * odd key never breaks sign-in for everybody.
 *
 * Tokens: JWS compact serialization only. The header's alg must be RS256,
 * RS384, RS512, PS256, ES256 or ES384 and fit the key named by its kid (and
 * that key's own "alg", if it has one); "none", HS*, a missing or unknown kid
 * and any "crit" header are refused, and jku/x5u/jwk/x5c in the header are
 * never used — keys come only from the JWKS. Then the claims: iss, aud/azp,
 * exp, nbf, iat, nonce, sub (see mq_oidc_verify_id_token).
 *
 * Every verification failure is UNAUTHENTICATED with a fixed message a client
 * developer can act on ("id token expired", "id token audience mismatch",
 * ...); the token and the values inside it are never echoed.
 *
 * Threads: a parsed mq_jwks_t is immutable (OpenSSL keys are only read), so
 * one set may be used by any number of threads at once; replace it on key
 * rotation by parsing the new document and swapping the pointer (freeing the
 * old one once no thread uses it).
 */
#ifndef MQ_JWKS_H
#define MQ_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

typedef struct mq_jwks mq_jwks_t;

/* Largest JWKS document and ID token accepted. */
#define MQ_JWKS_MAX_JSON (256u * 1024u)
#define MQ_OIDC_MAX_TOKEN (16u * 1024u)

/* Parses a JWKS JSON document ({"keys":[...]}). Unusable keys are ignored
 * and counted. Returns INVALID_ARGUMENT if the JSON is malformed, has no
 * "keys" array, or no usable key remains; *out is NULL then. */
mq_code_t mq_jwks_parse(const char *json, size_t len, mq_jwks_t **out, mq_error_t *err);
void mq_jwks_free(mq_jwks_t *jwks);
/* Usable keys. */
size_t mq_jwks_count(const mq_jwks_t *jwks);
/* Keys present in the document but ignored. */
size_t mq_jwks_ignored(const mq_jwks_t *jwks);
/* True if a usable key has this kid: on false, the caller may refetch the
 * JWKS (key rotation) before verifying again. */
bool mq_jwks_has_kid(const mq_jwks_t *jwks, const char *kid);

typedef struct {
  const char *issuer;           /* required: exact match of "iss" */
  const char *const *audiences; /* required (n_audiences >= 1): our client ids */
  size_t n_audiences;           /* "aud" (string or array) must contain one of them; if
                                   aud is an array with > 1 entries and "azp" is present,
                                   azp must be one of them too */
  const char *nonce;            /* if non-NULL, "nonce" must equal it exactly */
  int64_t now;                  /* unix seconds */
  int64_t leeway_s;             /* clock skew allowance, e.g. 60 (negative = 0) */
  int64_t max_age_s;            /* if > 0: iat >= now - max_age_s - leeway_s */
} mq_oidc_expect_t;

/* Claims copied out on success: NUL-terminated heap strings, NULL when absent
 * (or not a string, longer than 2048 bytes, or containing NUL). Release with
 * mq_oidc_claims_clear. */
typedef struct {
  char *sub; /* always set on success (1..255 bytes) */
  char *email, *name, *given_name, *family_name, *picture, *locale;
  bool email_verified; /* JSON true or the string "true" (Apple sends a string) */
  int64_t iat, exp;
} mq_oidc_claims_t;

/* Verifies `token` (len bytes, need not be NUL-terminated) against `jwks`:
 * structure and size, header (alg/kid/crit as above), signature, then
 *   iss   == expect->issuer
 *   aud   contains one of expect->audiences (azp rule above)
 *   exp   required, exp > now - leeway
 *   nbf   optional, nbf <= now + leeway
 *   iat   required, iat <= now + leeway (and the max_age_s rule)
 *   nonce == expect->nonce when that is non-NULL
 *   sub   required string of 1..255 bytes without NUL.
 * *out is zeroed first and only filled on success (nothing to clear after a
 * failure). Returns UNAUTHENTICATED for every verification failure, INTERNAL
 * if jwks, expect or out is NULL or `expect` lacks an issuer or audiences. */
mq_code_t mq_oidc_verify_id_token(const mq_jwks_t *jwks, const char *token, size_t len, const mq_oidc_expect_t *expect,
                                  mq_oidc_claims_t *out, mq_error_t *err);
/* Frees the strings and zeroes *c; safe on a zeroed or already-cleared value. */
void mq_oidc_claims_clear(mq_oidc_claims_t *c);

#endif
