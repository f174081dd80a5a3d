/*
 * waitlist_store.h — people waiting for a sold-out ticket type (bookings
 * issue, item 6).
 *
 *   waitlist {_id: entry id (derived from ticket type + user: one entry per
 *             user and type), event_id, ticket_type_id, user_id, quantity,
 *             state ("waiting" | "offered" | "booked" | "offer_expired" |
 *             "left"), joined_at, offer_hold_id, offer_expires_at,
 *             offer_round, version, _outbox}
 *
 * Invariants:
 *  W1 The line is ordered by (joined_at, _id) among "waiting" entries.
 *  W2 An offer is a hold whose id is derived from (entry id, round): two
 *     sweepers offering the same entry at once insert the same hold id, so
 *     one offer exists (holds_store.h H1); the entry then records it.
 *  W3 Entry changes are optimistic on `version` (per-document lock).
 */
#ifndef MQ_WAITLIST_STORE_H
#define MQ_WAITLIST_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_WAITLIST_COLLECTION "waitlist"

extern const mq_index_spec_t mq_waitlist_indexes[];
extern const size_t mq_waitlist_n_indexes;

typedef struct mq_wait_entry {
  char *id, *event_id, *ticket_type_id, *user_id, *state, *offer_hold_id;
  uint32_t quantity;
  int64_t joined_ms, offer_expires_ms, offer_round, version;
} mq_wait_entry_t;

/* ALREADY_EXISTS if the user has an entry for the type (any state). */
mq_code_t mq_waitlist_insert(mq_store_t *s, const mq_wait_entry_t *w, mq_error_t *err);
mq_code_t mq_waitlist_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wait_entry_t *out, mq_error_t *err);
/* Rewrites the mutable fields if the stored version is still w->version
 * (ABORTED otherwise); bumps w->version. */
mq_code_t mq_waitlist_save(mq_store_t *s, mq_wait_entry_t *w, const mq_event_t *ev, mq_error_t *err);
/* 1 + the waiting entries ahead of `w` (W1). */
mq_code_t mq_waitlist_position(mq_store_t *s, const mq_wait_entry_t *w, int64_t *pos, mq_error_t *err);
/* Entries in `state`, oldest first (at most `limit`). */
mq_code_t mq_waitlist_in_state(mq_store_t *s, const char *state, uint32_t limit, mq_arena_t *a, mq_wait_entry_t **out,
                               size_t *n, mq_error_t *err);

#endif
