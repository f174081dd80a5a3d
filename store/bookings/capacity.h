/*
 * capacity.h — units of capacity as decision records (DESIGN.md §4;
 * bookings issue, item 2). The one place where Marquee decides who gets a
 * seat.
 *
 * A capacity POOL is anything with a limit:
 *   "t:<ticket type id>"            the ticket type's capacity
 *   "e:<event id>"                  the event's total (Event.capacity > 0)
 *   "u:<ticket type id>:<user id>"  one user's limit (TicketType.max_per_user)
 * A pool of capacity C has the SLOTS 0..C-1. Taking a unit of a pool means
 * inserting the record
 *   capacity_slots {_id: "<pool>#<n>", pool, n, hold, until, at}
 * whose _id is the unique key (pool, n). Whoever inserts it holds slot n;
 * everybody else gets a duplicate key and tries another slot.
 *
 * Invariants (they hold on MongoDB and on FerretDB, whose only reliable
 * atomic operation is a unique insert, and with any number of processes):
 *  I1 At most one record per (pool, n): the unique _id. A pool never has
 *     more than C live units below C, so nothing is ever oversold.
 *  I2 A taker inserts only n < C for the capacity C it read; when C is
 *     lowered, records at n >= C stay valid for their holders and are not
 *     counted by mq_capacity_count, and no new unit is granted until the
 *     holders below C drop under the new C. CreateHold reads C from a
 *     short-lived cache of the event (at most 2 s old when the change's
 *     event cannot arrive, normally invalidated at once): a unit taken in
 *     that window under the old C is like one taken just before the change.
 *  I3 A hold takes every unit it asked for in every pool, or none: on any
 *     shortfall or failure the records it inserted are deleted before the
 *     call returns. A crash in between leaves records whose holder has no
 *     hold document; they are reclaimed once `until` (the hold's expiry)
 *     is older than MQ_SLOT_ORPHAN_GRACE_MS (mq_capacity_reclaim). A
 *     confirmed booking's records get `until` = MQ_SLOT_SOLD_UNTIL_MS
 *     (mq_capacity_mark_sold), so reclaim never even looks at sold units;
 *     a suspect whose holder is a confirmed booking is kept only while the
 *     booking's tickets refer to it (mq_bookings_owns_slot).
 *  I4 A record is deleted only by the path that returns its holder's units
 *     (release, expiry, failed payment, cancellation, reclaim), each decided
 *     once by a decision record in hold_decisions (holds_store.h).
 *  I5 Availability (mq_capacity_count) is derived: it may lag a concurrent
 *     take, never the other way round, and no answer from it ever grants a
 *     unit — only the insert does.
 *
 * Speed: each process keeps a bitmap per pool of slots it believes taken
 * (its own inserts, and others' learned from duplicate keys and refreshes).
 * A taker claims a candidate bit under the pool's mutex before inserting, so
 * threads of one process never race for the same slot; processes meet only
 * on duplicates. Starting points are random, so contention spreads over the
 * pool. When the bitmap says "full", the pool's records are re-read once
 * (single flight, at most every MQ_SLOT_REFRESH_MIN_MS) before answering
 * "sold out": a unit freed by another process is found then. The bitmap is
 * only a hint: a stale bit costs one refresh, a missing bit one duplicate.
 * Read next: holds_store.h.
 */
#ifndef MQ_CAPACITY_H
#define MQ_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_store.h"

#define MQ_SLOTS_COLLECTION "capacity_slots"
#define MQ_POOL_ID_MAX 96
#define MQ_SLOT_ID_MAX (MQ_POOL_ID_MAX + 24)
#define MQ_SLOT_ORPHAN_GRACE_MS 5000 /* clock skew between servers, no more: `until` is an expiry */
#define MQ_SLOT_REFRESH_MIN_MS 250
#define MQ_SLOT_SOLD_UNTIL_MS 253402300799000LL /* 9999-12-31: a booking's units */

extern const mq_index_spec_t mq_capacity_indexes[];
extern const size_t mq_capacity_n_indexes;

typedef struct mq_capacity mq_capacity_t; /* per-process hints; thread-safe */

mq_capacity_t *mq_capacity_new(void);
void mq_capacity_free(mq_capacity_t *c);

typedef struct mq_pool_want {
  char pool[MQ_POOL_ID_MAX];
  int64_t capacity; /* slots 0..capacity-1 (0: nothing can be taken) */
  uint32_t units;
} mq_pool_want_t;

/* Takes `want[i].units` slots in every pool for `holder` (a hold id),
 * stamped `until_ms` (the hold's expiry). All or nothing (I3).
 * MQ_OK: *slots (in `a`) lists the n taken slot ids, pool by pool in the
 * order of `want`. MQ_RESOURCE_EXHAUSTED: pool *short_at had only *left
 * units free; nothing is held. Any other code: a store failure, nothing
 * held (or orphans left for reclaim if even the clean-up failed). */
mq_code_t mq_capacity_take(mq_capacity_t *c, mq_store_t *s, const char *holder, int64_t until_ms,
                           const mq_pool_want_t *want, size_t n_want, mq_arena_t *a, char ***slots, size_t *n_slots,
                           size_t *short_at, int64_t *left, mq_error_t *err);

/* Deletes the given slot records of `holder` (idempotent) and forgets them
 * locally. A record another holder has taken since (the slot was freed and
 * taken again) is left alone: a hold finished twice must never free units
 * that are someone else's now (I4). */
mq_code_t mq_capacity_release(mq_capacity_t *c, mq_store_t *s, const char *holder, char *const *slots, size_t n,
                              mq_error_t *err);

/* Deletes every slot record of `holder` (idempotent): used when a hold's
 * slot list is unknown (a crash) or as the general "give back". */
mq_code_t mq_capacity_release_holder(mq_capacity_t *c, mq_store_t *s, const char *holder, mq_error_t *err);

/* The holder became a booking: its records are no longer reclaim suspects
 * (a slot whose `until` passed is checked against its hold). Idempotent; a
 * failure only costs a later check. Slot records are written by no one
 * else while their holder lives, so the multi-document update cannot race. */
mq_code_t mq_capacity_mark_sold(mq_store_t *s, const char *holder, mq_error_t *err);

/* Sets one record's `until` (a ticket move: the unit it leaves becomes a
 * reclaim suspect before the booking stops referring to it). */
mq_code_t mq_capacity_set_until(mq_store_t *s, const char *slot_id, int64_t until_ms, mq_error_t *err);

/* Units taken below `capacity` in `pool` (derived, I5). */
mq_code_t mq_capacity_count(mq_store_t *s, const char *pool, int64_t capacity, int64_t *taken, mq_error_t *err);

/* A slot was freed or taken elsewhere (another process's event): keep the
 * local hint in step. Cheap, no I/O. A "taken" heard this way may be stale
 * (the event of a hold already given back, ours included): the pool is
 * then re-read before its next "sold out", whatever MQ_SLOT_REFRESH_MIN_MS
 * says. */
void mq_capacity_hint(mq_capacity_t *c, const char *slot_id, bool taken);

/* Reclaims orphans (I3) of one pool: records whose `until` is older than the
 * grace and whose holder has no hold document, or a hold that has already
 * given its units back. Returns how many were deleted in *reclaimed. */
mq_code_t mq_capacity_reclaim(mq_capacity_t *c, mq_store_t *s, const char *pool, int64_t *reclaimed, mq_error_t *err);

/* Reclaims orphans in every pool with a record whose `until` lies in
 * [now - window_ms, now - grace): the sweeper's periodic pass, so a crash
 * costs capacity only until the hold would have expired. */
mq_code_t mq_capacity_reclaim_recent(mq_capacity_t *c, mq_store_t *s, int64_t window_ms, int64_t *reclaimed,
                                     mq_error_t *err);

/* Pool ids. */
void mq_pool_ticket_type(char out[MQ_POOL_ID_MAX], const char *ticket_type_id);
void mq_pool_event(char out[MQ_POOL_ID_MAX], const char *event_id);
void mq_pool_user(char out[MQ_POOL_ID_MAX], const char *ticket_type_id, const char *user_id);
/* The pool part of a slot id ("t:…#12" → "t:…"); false if malformed. */
bool mq_slot_pool(const char *slot_id, char out[MQ_POOL_ID_MAX], int64_t *n);

#endif
