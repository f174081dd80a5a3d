/*
 * users_store.h — repository of the `users` collection (identity issue).
 *
 * One document per account, _id = user id (UUIDv4). `email_key` (the
 * e-mail lower-cased) has a unique index: two sign-ups racing for one
 * address both insert, the index lets exactly one win (the other gets
 * ALREADY_EXISTS) on MongoDB and FerretDB alike. `sessions_revoked_at`
 * invalidates every refresh-token family created before it (sign out
 * everywhere, password change). Events ride in the same write (_outbox).
 * Passwords are stored only as Argon2id PHC strings (lib/mq_password.h).
 */
#ifndef USERS_STORE_H
#define USERS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_USERS_COLLECTION "users"

enum { MQ_USER_ACTIVE = 1, MQ_USER_SUSPENDED = 2 };

typedef struct mq_user {
  const char *id;
  const char *email;         /* as given */
  const char *email_key;     /* lower-cased: the unique key */
  const char *password_hash; /* NULL: none (signed up through a provider) */
  const char *display_name, *locale, *time_zone, *currency, *phone, *avatar_ref;
  bool email_verified;
  uint32_t roles; /* MQ_ROLE_* bits */
  int status;     /* MQ_USER_* */
  bool notify_email_reminders, notify_email_marketing, notify_push, notify_sms;
  int64_t created_ms, updated_ms, sessions_revoked_ms;
} mq_user_t;

extern const mq_index_spec_t mq_users_indexes[];
extern const size_t mq_users_n_indexes;

/* Lower-cases `email` into out (the uniqueness key). */
void mq_users_email_key(const char *email, char *out, size_t cap);

/* Inserts the account with its events. ALREADY_EXISTS if the e-mail is taken. */
mq_code_t mq_users_insert(mq_store_t *s, const mq_user_t *u, const mq_event_t *evs, size_t n, mq_error_t *err);
/* Reads one account; strings copied into `a`. NOT_FOUND if absent. */
mq_code_t mq_users_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_user_t *out, mq_error_t *err);
mq_code_t mq_users_get_by_email(mq_store_t *s, const char *email_key, mq_arena_t *a, mq_user_t *out, mq_error_t *err);
/* Applies `set` ({field: value, …}, built by the caller from validated values)
 * plus updated_at, with the events, in one update. NOT_FOUND if absent. */
mq_code_t mq_users_update(mq_store_t *s, const char *id, const bson_t *set, const mq_event_t *evs, size_t n,
                          mq_error_t *err);

typedef struct mq_users_query {
  const char *email_prefix;                    /* lower-cased; NULL/"" = any */
  uint32_t role;                               /* one MQ_ROLE_* bit; 0 = any */
  int status;                                  /* MQ_USER_*; 0 = any */
  int64_t created_after_ms, created_before_ms; /* 0 = unbounded */
  /* cursor: strictly older than (after_created_ms, after_id) */
  int64_t after_created_ms;
  const char *after_id;
  uint32_t limit;
} mq_users_query_t;

/* Newest first by (created_at, _id). Up to q->limit users into out[]. */
mq_code_t mq_users_list(mq_store_t *s, const mq_users_query_t *q, mq_arena_t *a, mq_user_t *out, size_t *n,
                        mq_error_t *err);
/* Count of accounts matching `filter` (built by the caller). */
mq_code_t mq_users_count(mq_store_t *s, const bson_t *filter, int64_t *n, mq_error_t *err);
/* created_at of accounts created since `since_ms` (for per-day statistics). */
mq_code_t mq_users_created_since(mq_store_t *s, int64_t since_ms, void (*each)(int64_t created_ms, void *arg),
                                 void *arg, mq_error_t *err);

#endif
