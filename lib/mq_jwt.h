/*
 * mq_jwt.h — HS256 access tokens: the verifier plugged into the auth
 * interceptor, and the signer (identity issue issues tokens; tests mint them).
 *
 * Verification is pure CPU (no database): base64url split, header check
 * (alg must be exactly "HS256", `kid` must name a configured key — so
 * "alg":"none", RS/HS confusion and unknown keys are all refused), HMAC-SHA256
 * with a constant-time compare, then claims: exp (required, in the future,
 * 30 s leeway), nbf/iat not in the future, iss and aud equal to the
 * configured values, sub (required, <= 63 chars), roles (array of
 * "attendee"/"organizer"/"admin"; others ignored), jti (optional).
 * Keys rotate without downtime: configure the new kid beside the old one,
 * switch the signer, drop the old kid after the access-token lifetime.
 */
#ifndef MQ_JWT_H
#define MQ_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"
#include "core/mq_principal.h"

typedef struct mq_jwt_keys mq_jwt_keys_t;

/* Parses "kid:secret[,kid:secret...]" (secrets >= 32 bytes, kids 1..32 chars
 * of [A-Za-z0-9._-]). The first key is the signing key. Returns
 * INVALID_ARGUMENT naming MARQUEE_JWT_KEYS on bad input (secret never echoed). */
mq_code_t mq_jwt_keys_parse(const char *spec, const char *issuer, const char *audience, mq_jwt_keys_t **out,
                            mq_error_t *err);
void mq_jwt_keys_free(mq_jwt_keys_t *k);
size_t mq_jwt_keys_count(const mq_jwt_keys_t *k);

/* Verifier for mq_auth_verifier_t (self = mq_jwt_keys_t*). */
mq_code_t mq_jwt_verify(void *self, const char *token, size_t len, mq_principal_t *out, mq_error_t *err);

/* Signs a token with the signing key: sub, roles (MQ_ROLE_* bits), iat=now,
 * exp=now+ttl, iss, aud, jti (random). Caller frees the result. NULL if no key. */
char *mq_jwt_sign(const mq_jwt_keys_t *k, const char *subject, uint32_t roles, int64_t ttl_seconds);
/* Lower level, for tests: sign arbitrary header and payload JSON with
 * `secret`. Caller frees. */
char *mq_jwt_sign_raw(const char *header_json, const char *payload_json, const void *secret, size_t secret_len);

#endif
