/*
 * oauth_store.h — OAuth/OIDC sign-in state (identity issue).
 *
 *   oauth_flows       {_id: SHA-256 hex of the state, provider, intent,
 *                      user_id (LINK flows), nonce, code_verifier,
 *                      redirect_uri, created_at, expires_at} — one started
 *                      sign-in; taken (read and deleted in one
 *                      findAndModify) by CompleteOAuth, so a state works
 *                      once; expired ones are swept by the probe thread.
 *                      The state itself is never stored.
 *   oauth_identities  {_id: "<provider>:<subject>", provider, subject,
 *                      user_id, email, linked_at, _outbox} — the link of an
 *                      external identity to an account. The _id makes an
 *                      identity belong to at most one account (insert
 *                      decides), and the insert carries OAuthIdentityLinked.
 *   oauth_unlinks     {_id, provider, subject, user_id, at, _outbox} — the
 *                      record (and event) of an unlink, written before the
 *                      delete (as membership_removals).
 * Read next: handlers/identity/oauth.c.
 */
#ifndef OAUTH_STORE_H
#define OAUTH_STORE_H

#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

enum { MQ_OAUTH_SIGN_IN = 1, MQ_OAUTH_LINK = 2 };

typedef struct mq_oauth_flow {
  const char *state_hash; /* 64 hex */
  const char *provider, *user_id, *nonce, *code_verifier, *redirect_uri;
  int intent;
  int64_t created_ms, expires_ms;
} mq_oauth_flow_t;

typedef struct mq_oauth_identity {
  const char *provider, *subject, *user_id, *email;
  int64_t linked_ms;
} mq_oauth_identity_t;

extern const mq_index_spec_t mq_oauth_indexes[];
extern const size_t mq_oauth_n_indexes;

mq_code_t mq_oauth_flow_insert(mq_store_t *s, const mq_oauth_flow_t *f, mq_error_t *err);
/* Reads and deletes the flow in one step. FAILED_PRECONDITION if it does not
 * exist (never started, already used) or has expired. */
mq_code_t mq_oauth_flow_take(mq_store_t *s, const char *state_hash, mq_arena_t *a, mq_oauth_flow_t *out,
                             mq_error_t *err);
/* Deletes flows that expired before now_ms; returns how many (or -1). */
int64_t mq_oauth_flows_sweep(mq_store_t *s, int64_t now_ms);

/* ALREADY_EXISTS if the identity is linked (to this or another account). */
mq_code_t mq_oauth_identity_insert(mq_store_t *s, const mq_oauth_identity_t *id, const mq_event_t *ev, mq_error_t *err);
mq_code_t mq_oauth_identity_get(mq_store_t *s, const char *provider, const char *subject, mq_arena_t *a,
                                mq_oauth_identity_t *out, mq_error_t *err);
/* The account's identities (at most 32) into *out (arena array). */
mq_code_t mq_oauth_identities_of(mq_store_t *s, const char *user_id, mq_arena_t *a, mq_oauth_identity_t **out,
                                 size_t *n, mq_error_t *err);
/* Records the unlink with its event, then deletes the link. */
mq_code_t mq_oauth_identity_unlink(mq_store_t *s, const mq_oauth_identity_t *id, const mq_event_t *ev, mq_error_t *err);

#endif
