/*
 * mq_breaker.h — a circuit breaker for calls to one remote dependency (a
 * payment gateway), plus the bulkhead and the retry delay that go with it.
 *
 *   CLOSED ──(`failures` failures in a row)──> OPEN
 *   OPEN ──(`open_ms` passed)──> HALF_OPEN: one probe call at a time
 *   HALF_OPEN ──probe succeeded──> CLOSED;  ──probe failed──> OPEN again
 *
 * Only failures of the dependency count (it could not be reached, timed
 * out, answered 5xx or 429) — a refusal of the request itself (a declined
 * card, a bad parameter) is an answer, and records as a success.
 *
 * Invariants:
 *   1. Thread-safe (one mutex, held for a few instructions); no I/O.
 *   2. mq_breaker_allow that returns true must be followed by exactly one
 *      mq_breaker_record: in HALF_OPEN it is the probe's ticket.
 *   3. The bulkhead (mq_breaker_enter/leave) bounds the calls in flight to
 *      the dependency: a slow gateway ties up at most `max_in_flight`
 *      worker threads, and the rest are refused at once.
 *   4. The state is exported as a gauge (0 closed, 1 open, 2 half-open).
 */
#ifndef MQ_BREAKER_H
#define MQ_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { MQ_BREAKER_CLOSED = 0, MQ_BREAKER_OPEN = 1, MQ_BREAKER_HALF_OPEN = 2 } mq_breaker_state_t;

typedef struct mq_breaker mq_breaker_t;

/* `gauge` is the state gauge's name with its labels
 * ("marquee_payment_gateway_breaker_state{gateway=\"stripe\"}"), or NULL
 * for none. */
mq_breaker_t *mq_breaker_new(const char *gauge, int failures, int64_t open_ms, int max_in_flight);
void mq_breaker_free(mq_breaker_t *b);

/* May a call go now? (HALF_OPEN: true for one caller until it records.) */
bool mq_breaker_allow(mq_breaker_t *b, int64_t now_ms);
/* The outcome of an allowed call: ok = the dependency answered. */
void mq_breaker_record(mq_breaker_t *b, bool ok, int64_t now_ms);
mq_breaker_state_t mq_breaker_state(mq_breaker_t *b, int64_t now_ms);
const char *mq_breaker_state_name(mq_breaker_state_t s);

/* The bulkhead: false when max_in_flight calls are already running. */
bool mq_breaker_enter(mq_breaker_t *b);
void mq_breaker_leave(mq_breaker_t *b);

/* Retry delay for attempt `n` (1 = first retry): full jitter over an
 * exponential ceiling, min(cap_ms, base_ms × 2^(n−1)) × uniform[0.5, 1). */
int64_t mq_backoff_ms(int n, int64_t base_ms, int64_t cap_ms);

#endif
