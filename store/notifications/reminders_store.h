/*
 * reminders_store.h — repository of `reminders`: one document per catalog
 * event that has ticket holders, kept by the notifier so that it can remind
 * them before the event and tell them when it moves.
 *
 * Document: {_id: event id, state ("waiting", "sent", "cancelled",
 * "missed"), starts_ms and place (the event's start and venue or online
 * URL as the holders were last told), updated_at}.
 *
 * Invariants:
 *   1. Created once (an insert on the event id) by the first confirmed
 *      booking the notifier handles; later bookings find it.
 *   2. Only the notifier writes here; a state change is conditional on the
 *      state read (update_where), so two sweepers cannot both mark a
 *      reminder sent — and the mails themselves are deliveries
 *      (deliveries_store.h), once per recipient whatever happens here.
 *   3. Read by state only (an equality every store serves from an index).
 */
#ifndef REMINDERS_STORE_H
#define REMINDERS_STORE_H

#include "core/mq_arena.h"
#include "store/mq_store.h"

#define MQ_REMINDERS_COLLECTION "reminders"

typedef struct mq_reminder {
  char *event_id, *state, *place;
  int64_t starts_ms, updated_ms;
} mq_reminder_t;

extern const mq_index_spec_t mq_reminders_indexes[];
extern const size_t mq_reminders_n_indexes;

/* Invariant 1: MQ_OK whether it was created now or before. */
mq_code_t mq_reminder_ensure(mq_store_t *s, const char *event_id, int64_t starts_ms, const char *place,
                             mq_error_t *err);
mq_code_t mq_reminder_get(mq_store_t *s, const char *event_id, mq_arena_t *a, mq_reminder_t *out, mq_error_t *err);
/* Sets state, starts and place if the state is still `from` (NULL: any).
 * MQ_NOT_FOUND when it is not. */
mq_code_t mq_reminder_set(mq_store_t *s, const char *event_id, const char *from, const char *state, int64_t starts_ms,
                          const char *place, mq_error_t *err);
/* Every reminder in `state`. */
mq_code_t mq_reminders_in(mq_store_t *s, const char *state, mq_arena_t *a, mq_reminder_t **out, size_t *n,
                          mq_error_t *err);

#endif
