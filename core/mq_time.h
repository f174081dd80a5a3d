/*
 * mq_time.h — every clock Marquee reads, in one place.
 *
 * Two clocks, never mixed:
 * - the wall clock (CLOCK_REALTIME, UTC milliseconds since the epoch) for
 *   anything stored, sent or shown: created_at, expiry instants, event ids'
 *   time, log timestamps. It can jump (NTP); never measure durations with it.
 * - the monotonic clock (CLOCK_MONOTONIC) for durations, timeouts, rate
 *   windows and cache ages. Its zero is arbitrary: never store or send it.
 * mq_time_abs_after() converts a relative timeout into the absolute
 * CLOCK_REALTIME instant pthread_cond_timedwait expects (condition
 * variables here use the default clock).
 *
 * Thread-safe, no allocation, no failure (clock_gettime cannot fail for
 * these clock ids on Linux).
 */
#ifndef MQ_TIME_H
#define MQ_TIME_H

#include <stdint.h>
#include <time.h>

/* Wall clock: UTC milliseconds since 1970-01-01. */
int64_t mq_now_unix_ms(void);
/* Monotonic clock, nanoseconds and milliseconds. */
int64_t mq_now_ns(void);
int64_t mq_now_ms(void);
/* The wall-clock instant `ms` milliseconds from now, for
 * pthread_cond_timedwait. `ms` <= 0 gives now. */
struct timespec mq_time_abs_after(int64_t ms);

#endif
