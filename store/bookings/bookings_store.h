/*
 * bookings_store.h — confirmed bookings with their tickets, and check-ins
 * (bookings issue, items 3–5).
 *
 *   bookings {_id (= the hold's id), hold_id, event_id, organization_id,
 *             user_id, state ("confirmed" | "cancelled"), currency, lines[],
 *             total_minor, payment_reference, buyer_name, buyer_email,
 *             search (lower-case buyer name, e-mail and attendee names),
 *             tickets[{ticket_id, ticket_type_id, ticket_type_name,
 *             attendee_name, slot}], created_at, cancelled_at,
 *             cancel_reason, cancelled_by, version, _outbox}
 *   checkins {_id: ticket id, booking_id, event_id, ticket_type_id,
 *             ticket_type_name, attendee_name, gate, by, at, _outbox}
 *   checkin_undos {_id, ticket_id, event_id, by, reason, checked_in_at, at,
 *             _outbox}
 *
 * Invariants:
 *  B1 A booking's _id is its hold's id: the insert that writes it is
 *     idempotent (a second finisher gets ALREADY_EXISTS and reads it), and
 *     BookingConfirmed rides in that insert.
 *  B2 Ticket ids are fresh UUIDs, unique across bookings (found through the
 *     top-level ticket_ids array); each ticket owns one slot of its ticket type's
 *     pool (capacity.h), recorded in `slot`.
 *  B3 A ticket is checked in at most once at a time: the check-in is the
 *     insert of checkins/{ticket id}. Undo writes checkin_undos (with the
 *     event) first, then deletes the check-in, after which the ticket may be
 *     checked in again.
 *  B4 Edits of a booking (attendee names, cancellation state) go through
 *     the per-document lock with the version read (optimistic).
 * Read next: handlers/bookings/bookings.c.
 */
#ifndef MQ_BOOKINGS_STORE_H
#define MQ_BOOKINGS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/bookings/holds_store.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_BOOKINGS_COLLECTION "bookings"
#define MQ_CHECKINS_COLLECTION "checkins"
#define MQ_CHECKIN_UNDOS_COLLECTION "checkin_undos"
#define MQ_BOOKING_CONFIRMED "confirmed"
#define MQ_BOOKING_CANCELLED "cancelled"

extern const mq_index_spec_t mq_bookings_indexes[];
extern const size_t mq_bookings_n_indexes;

typedef struct mq_ticket {
  char *id, *ticket_type_id, *ticket_type_name, *attendee_name, *slot;
} mq_ticket_t;

typedef struct mq_booking {
  char *id, *hold_id, *event_id, *organization_id, *user_id, *state, *currency, *payment_reference;
  char *buyer_name, *buyer_email, *cancel_reason, *cancelled_by;
  mq_hold_line_t *lines;
  size_t n_lines;
  int64_t total_minor;
  mq_price_t price;
  mq_ticket_t *tickets;
  size_t n_tickets;
  int64_t created_ms, cancelled_ms, version;
} mq_booking_t;

/* The stored document of `b` (no outbox), appended to `doc`: what
 * mq_bookings_insert writes (and what a benchmark seeds in bulk). */
void mq_bookings_doc(bson_t *doc, const mq_booking_t *b);
/* B1: ALREADY_EXISTS if written before. */
mq_code_t mq_bookings_insert(mq_store_t *s, const mq_booking_t *b, const mq_event_t *ev, mq_error_t *err);
mq_code_t mq_bookings_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_booking_t *out, mq_error_t *err);
/* The booking holding ticket `ticket_id`; *index = its position. */
mq_code_t mq_bookings_by_ticket(mq_store_t *s, const char *ticket_id, mq_arena_t *a, mq_booking_t *out, size_t *index,
                                mq_error_t *err);
/* Rewrites state, cancellation fields and tickets if the stored version is
 * still b->version (ABORTED otherwise); b->version is bumped. */
mq_code_t mq_bookings_save(mq_store_t *s, mq_booking_t *b, const mq_event_t *evs, size_t n, mq_error_t *err);

typedef struct mq_bookings_query {
  const char *user_id;  /* either … */
  const char *event_id; /* … or */
  const char *state;    /* NULL: any */
  const char *search;   /* substring, any case (Unicode), NULL: none */
  bool has_cursor;      /* strictly after (after_ms, after_id), newest first */
  int64_t after_ms;
  const char *after_id;
  uint32_t limit;
} mq_bookings_query_t;

mq_code_t mq_bookings_list(mq_store_t *s, const mq_bookings_query_t *q, mq_arena_t *a, mq_booking_t **out, size_t *n,
                           mq_error_t *err);

typedef struct mq_checkin {
  char *ticket_id, *booking_id, *event_id, *ticket_type_id, *ticket_type_name, *attendee_name, *gate, *by;
  int64_t at_ms;
} mq_checkin_t;

/* B3: ALREADY_EXISTS if the ticket is checked in. */
mq_code_t mq_checkins_insert(mq_store_t *s, const mq_checkin_t *c, const mq_event_t *ev, mq_error_t *err);
mq_code_t mq_checkins_get(mq_store_t *s, const char *ticket_id, mq_arena_t *a, mq_checkin_t *out, mq_error_t *err);
/* Records the undo with its event, then deletes the check-in. */
mq_code_t mq_checkins_undo(mq_store_t *s, const mq_checkin_t *c, const char *by, const char *reason,
                           const mq_event_t *ev, mq_error_t *err);
/* Check-ins of a booking (for its tickets' state). */
mq_code_t mq_checkins_of_booking(mq_store_t *s, const char *booking_id, mq_arena_t *a, mq_checkin_t **out, size_t *n,
                                 mq_error_t *err);
/* The event's check-ins, most recent first, keyset-paged. */
mq_code_t mq_checkins_list(mq_store_t *s, const char *event_id, bool has_cursor, int64_t after_ms, const char *after_id,
                           uint32_t limit, mq_arena_t *a, mq_checkin_t **out, size_t *n, mq_error_t *err);
/* Calls fn for every check-in / booking (of `state`, NULL: any) of the event. */
mq_code_t mq_checkins_each(mq_store_t *s, const char *event_id, bool (*fn)(const mq_checkin_t *c, void *arg), void *arg,
                           mq_error_t *err);
mq_code_t mq_bookings_each(mq_store_t *s, const char *event_id, const char *state,
                           bool (*fn)(const mq_booking_t *b, void *arg), void *arg, mq_error_t *err);

/* Capacity reclaim's question (capacity.h I3): does booking `booking_id`
 * still refer to `slot_id`? A booking that is not written yet (its
 * confirmation is finishing) or cannot be read owns all its units: true.
 * A cancelled booking owns none. */
bool mq_bookings_owns_slot(mq_store_t *s, const char *booking_id, const char *slot_id);

#endif
