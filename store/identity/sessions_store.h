/*
 * sessions_store.h — refresh tokens (identity issue), decided with inserts.
 *
 * A refresh token is 32 random bytes (base64url, prefix "mqr_"); only its
 * SHA-256 is stored. Collections and the decision each one records:
 *   refresh_tokens          {_id: hash, user_id, family_id, family_created_at,
 *                            created_at, expires_at}  — issued tokens
 *   refresh_token_uses      {_id: hash}  — "this token was exchanged": a
 *                            second insert (ALREADY_EXISTS) is a reuse
 *   refresh_families_revoked {_id: family_id, reason, _outbox}  — "this
 *                            sign-in is over" (sign-out, reuse detected)
 * Invariants: a token is exchanged at most once, even with concurrent
 * refreshes on several servers (the unique _id of refresh_token_uses decides);
 * a family, once revoked, stays revoked; nothing here is ever updated in
 * place, so FerretDB's non-atomic updates cannot lose a decision.
 * Read next: handlers/identity/accounts.c (the flows).
 */
#ifndef SESSIONS_STORE_H
#define SESSIONS_STORE_H

#include <stdint.h>

#include "core/mq_tokens.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_REFRESH_TOKEN_LEN MQ_TOKEN_LEN /* "mqr_" + 43 base64url chars */
#define MQ_REVOCATIONS_COLLECTION "refresh_families_revoked"

typedef struct mq_session {
  char user_id[40];
  char family_id[40];
  int64_t family_created_ms, created_ms, expires_ms;
} mq_session_t;

extern const mq_index_spec_t mq_sessions_indexes[];
extern const size_t mq_sessions_n_indexes;

/* Issues a token for `user_id` in `family_id` (NULL: a new family, created
 * now); writes it to token_out[MQ_REFRESH_TOKEN_LEN + 1] and the session to
 * *out (optional). */
mq_code_t mq_sessions_issue(mq_store_t *s, const char *user_id, const char *family_id, int64_t family_created_ms,
                            int64_t ttl_ms, char *token_out, mq_session_t *out, mq_error_t *err);
/* Finds the session of a presented token. NOT_FOUND for unknown tokens. */
mq_code_t mq_sessions_lookup(mq_store_t *s, const char *token, mq_session_t *out, mq_error_t *err);
/* Records the exchange of `token`: MQ_OK the first time, MQ_ALREADY_EXISTS
 * if it was exchanged before (reuse). */
mq_code_t mq_sessions_consume(mq_store_t *s, const char *token, mq_error_t *err);
/* Revokes a family (idempotent), with events. */
mq_code_t mq_sessions_revoke_family(mq_store_t *s, const char *family_id, const char *reason, const mq_event_t *evs,
                                    size_t n, mq_error_t *err);
/* MQ_OK and *revoked. */
mq_code_t mq_sessions_family_revoked(mq_store_t *s, const char *family_id, bool *revoked, mq_error_t *err);

#endif
