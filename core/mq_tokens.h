/*
 * mq_tokens.h — opaque bearer secrets (refresh tokens, e-mail verification
 * and password-reset tokens): a short prefix naming the kind, then
 * base64url of 32 random bytes from getrandom(2) (256 bits). Only the
 * SHA-256 of a token is ever stored; the token itself goes to its holder.
 */
#ifndef MQ_TOKENS_H
#define MQ_TOKENS_H

#include <stddef.h>

#define MQ_TOKEN_PREFIX_LEN 4                   /* e.g. "mqr_" */
#define MQ_TOKEN_LEN (MQ_TOKEN_PREFIX_LEN + 43) /* 47 */

/* Writes `prefix` (4 chars) + 43 base64url chars + NUL into out[MQ_TOKEN_LEN + 1]. */
void mq_token_new(const char *prefix, char *out);
/* Lower-case hex SHA-256 of `token` into out[65]. */
void mq_token_hash(const char *token, char out[65]);
/* True if `t` has the shape of a token of this prefix (no I/O). */
int mq_token_shape_ok(const char *t, const char *prefix);

#endif
