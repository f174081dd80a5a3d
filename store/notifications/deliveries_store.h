/*
 * deliveries_store.h — repository of the `deliveries` collection: one
 * record per (event, channel, recipient) the notifier delivers, which is
 * what makes a delivery happen once.
 *
 * Record: {_id: "<event id>:<channel>:<recipient digest>", event_id,
 * channel ("email"), template, locale, to (the address), state ("sending",
 * "waiting" after a temporary failure, "sent", "failed"), attempts, error,
 * created_at, updated_at}.
 *
 * Invariants:
 *   1. The record is created (an insert on the unique _id, DESIGN §4)
 *      before anything is sent: a redelivered or replayed event finds it
 *      and sends nothing again once it says "sent" or "failed".
 *   2. "sending" means a send was started and its outcome not recorded.
 *      While younger than the caller's lease it is taken to be in progress
 *      (two consumers never send it at once); older, its sender died, and
 *      a crash between the server's acceptance and the record sends once
 *      more (at least once in that window, never lost). The message keeps
 *      its Message-ID, so a receiver can drop the copy.
 *   3. Only the notifier writes here; only state, attempts, error and
 *      updated_at change after the insert.
 */
#ifndef DELIVERIES_STORE_H
#define DELIVERIES_STORE_H

#include "core/mq_arena.h"
#include "store/mq_store.h"

#define MQ_DELIVERIES_COLLECTION "deliveries"

typedef struct mq_delivery {
  const char *id, *event_id, *channel, *template_name, *locale, *to;
  const char *state; /* "sending", "sent", "failed" */
  const char *error;
  int32_t attempts;
} mq_delivery_t;

extern const mq_index_spec_t mq_deliveries_indexes[];
extern const size_t mq_deliveries_n_indexes;

/* "<event id>:<channel>:<16 hex of SHA-256(recipient)>" into out[n]. */
void mq_delivery_id(const char *event_id, const char *channel, const char *recipient, char *out, size_t n);

/* Starts a delivery: inserts the record in state "sending" (*fresh true), or
 * finds the existing one (*fresh false; its state in *state, copied into
 * `a`). "sent"/"failed": nothing to do. "waiting": claimed (back to
 * "sending", counted). "sending": UNAVAILABLE (try later) while touched less
 * than lease_ms ago — another process may be sending it now — and after
 * that an attempt that died: claimed. A claim is conditional on the record
 * being as read, so of two claimers one goes ahead, the other gets
 * UNAVAILABLE. */
mq_code_t mq_delivery_begin(mq_store_t *s, const mq_delivery_t *d, int64_t lease_ms, mq_arena_t *a, bool *fresh,
                            const char **state, mq_error_t *err);
/* Records the outcome: "sent"; "failed" with `error` (for good); or
 * "waiting" with `error` (a temporary failure: the next attempt claims it
 * at once). */
mq_code_t mq_delivery_finish(mq_store_t *s, const char *id, const char *state, const char *error, mq_error_t *err);

#endif
