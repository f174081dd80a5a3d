/*
 * mq_fault.h — named fault points, so recovery paths are tested in-process
 * (SQLite style) instead of by killing processes at the right moment.
 *
 * Code on a path whose failure must be survivable asks
 *
 *     if (MQ_FAULT("capacity.slot_insert")) return <the failure>;
 *
 * at the place where a real failure could happen, and behaves exactly as if
 * it had. A test arms a point by name: mq_fault_arm(name, skip, times) lets
 * the first `skip` hits pass and fails the next `times`. Nothing is armed in
 * production, and then MQ_FAULT costs one relaxed atomic load; there is no
 * configuration key and no way to arm a point from outside the process.
 *
 * The points (grep MQ_FAULT): capacity.slot_insert, capacity.cleanup
 * (store/bookings/capacity.c); relay.ledger_write (server/mq_relay.c: after
 * Kafka acknowledged an event, before the ledger records it).
 *
 * Thread-safe; at most MQ_FAULT_MAX points armed at once.
 */
#ifndef MQ_FAULT_H
#define MQ_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>

#define MQ_FAULT_MAX 8

extern atomic_int mq_fault_armed; /* points armed now; 0 in production */

#define MQ_FAULT(name) \
  (__builtin_expect(atomic_load_explicit(&mq_fault_armed, memory_order_relaxed) != 0, 0) && mq_fault_hit(name))

/* True when `name` is armed and this hit is one to fail (counts the hit). */
bool mq_fault_hit(const char *name);
/* Arms `name`: the next `skip` hits pass, the `times` after them fail. */
void mq_fault_arm(const char *name, int skip, int times);
/* How many times `name` has failed since it was armed. */
int mq_fault_fired(const char *name);
/* Disarms every point. */
void mq_fault_clear(void);

#endif
