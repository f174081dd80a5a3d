/*
 * mq_buckets.h — a time range cut into local calendar hours or days of an
 * IANA time zone, for series stored in 15-minute UTC quarters (the
 * analytics aggregates).
 *
 * The quarters of the range are walked once, each labelled with its local
 * hour ("YYYY-MM-DDTHH") or day ("YYYY-MM-DD"); consecutive quarters with
 * one label make one bucket. Every real zone's offset is a multiple of 15
 * minutes, so this is exact for zones such as Asia/Kolkata (+05:30) or
 * Asia/Kathmandu (+05:45), and a day of 23 or 25 hours (a DST change) is
 * one bucket. In the hour repeated when clocks go back, the two UTC hours
 * share one bucket, as they share one label.
 *
 * Invariants: buckets are in time order and cover [from_ms, to_ms) without
 * gaps; the first starts at from_ms (a partial hour or day is cut there);
 * a quarter belongs to exactly one bucket. Pure: no I/O, arrays in the
 * caller's arena.
 */
#ifndef MQ_BUCKETS_H
#define MQ_BUCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

#define MQ_QUARTER_MS (15LL * 60 * 1000)

typedef struct mq_buckets {
  int64_t from_ms, to_ms;
  int64_t q0_ms;       /* the first quarter: from_ms rounded down to 15 minutes */
  size_t n_quarters;   /* quarters from q0_ms up to to_ms */
  uint32_t *bucket_of; /* quarter index -> bucket index */
  size_t n;            /* buckets */
  int64_t *start;      /* each bucket's start, unix ms (the first cut at from_ms) */
  char (*label)[14];   /* each bucket's local label */
} mq_buckets_t;

/* Cuts [from_ms, to_ms) (from_ms < to_ms, both >= 0) in `tz`.
 * INVALID_ARGUMENT naming `tz_field` for a zone the range cannot be
 * expressed in. */
mq_code_t mq_buckets_make(int64_t from_ms, int64_t to_ms, const char *tz, bool hourly, const char *tz_field,
                          mq_arena_t *a, mq_buckets_t *out, mq_error_t *err);
/* The bucket holding instant at_ms (by its quarter), or -1 outside the range. */
long mq_buckets_index(const mq_buckets_t *b, int64_t at_ms);

#endif
