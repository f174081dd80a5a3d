/*
 * account_tokens_store.h — single-use, expiring tokens sent by e-mail:
 * e-mail verification ("mqv_") and password reset ("mqp_").
 *
 *   account_tokens      {_id: sha256(token), user_id, purpose, created_at,
 *                        expires_at, _outbox}  — issued (the insert carries
 *                        the EmailVerificationRequested / PasswordResetRequested
 *                        event, so the notifier learns of exactly the tokens
 *                        that exist)
 *   account_token_uses  {_id: sha256(token)}  — "used": a second insert is
 *                        ALREADY_EXISTS, so a token works once even when two
 *                        requests race on several servers
 * Read next: handlers/identity/accounts.c.
 */
#ifndef ACCOUNT_TOKENS_STORE_H
#define ACCOUNT_TOKENS_STORE_H

#include <stdint.h>

#include "core/mq_tokens.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_ACCOUNT_TOKENS_COLLECTION "account_tokens"

typedef enum { MQ_TOKEN_VERIFY_EMAIL = 1, MQ_TOKEN_RESET_PASSWORD = 2 } mq_account_token_purpose_t;

extern const mq_index_spec_t mq_account_tokens_indexes[];
extern const size_t mq_account_tokens_n_indexes;

/* Prefix of a purpose's tokens ("mqv_" / "mqp_"). */
const char *mq_account_token_prefix(mq_account_token_purpose_t purpose);
/* Issues a token (written to token[MQ_TOKEN_LEN + 1]) with its event. The
 * caller fills the event's payload after this call put the token in it:
 * `fill(ev, token, expires_ms, arg)` runs before the write. */
mq_code_t mq_account_tokens_issue(mq_store_t *s, const char *user_id, mq_account_token_purpose_t purpose,
                                  int64_t ttl_ms, char *token, mq_event_t *ev,
                                  void (*fill)(mq_event_t *ev, const char *token, int64_t expires_ms, void *arg),
                                  void *arg, mq_error_t *err);
/* Uses a token once: MQ_OK with *user_id_out[40] for a valid, unused,
 * unexpired token of `purpose`; FAILED_PRECONDITION for an unknown, used,
 * expired or other-purpose token (one answer: no oracle). */
mq_code_t mq_account_tokens_consume(mq_store_t *s, const char *token, mq_account_token_purpose_t purpose,
                                    char user_id_out[40], mq_error_t *err);

#endif
