/*
 * auth_attempts_store.h — the record behind rate limits and lockout
 * (identity issue, abuse protection). Every counted attempt is one insert
 * {key, at} — no counter is ever updated in place, so concurrent attempts on
 * several servers are all counted, on MongoDB and FerretDB alike. A limit is
 * a count over a time window, served by the {key, at} index. Keys name what
 * is limited: "signin:<email key>", "signin-ip:<address>",
 * "signup-ip:<address>", "reset:<email key>", "reset-ip:<address>" — unknown
 * e-mails are counted like known ones, so limits reveal nothing. Records older
 * than a day are swept (mq_attempts_sweep; no TTL indexes, DESIGN.md §4).
 */
#ifndef AUTH_ATTEMPTS_STORE_H
#define AUTH_ATTEMPTS_STORE_H

#include <stdint.h>

#include "store/mq_store.h"

#define MQ_AUTH_ATTEMPTS_COLLECTION "auth_attempts"

extern const mq_index_spec_t mq_attempts_indexes[];
extern const size_t mq_attempts_n_indexes;

mq_code_t mq_attempts_record(mq_store_t *s, const char *key, mq_error_t *err);
/* Attempts of `key` since `since_ms`: *count, and *last_ms (0 if none). */
mq_code_t mq_attempts_recent(mq_store_t *s, const char *key, int64_t since_ms, int64_t *count, int64_t *last_ms,
                             mq_error_t *err);
/* Deletes records older than `before_ms`. */
mq_code_t mq_attempts_sweep(mq_store_t *s, int64_t before_ms, mq_error_t *err);

#endif
