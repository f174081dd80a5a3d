/*
 * mq_buckets.c — local hours and days over 15-minute UTC quarters
 * (mq_buckets.h).
 */
#include "lib/mq_buckets.h"

#include <string.h>

#include "lib/mq_recur.h"

mq_code_t mq_buckets_make(int64_t from_ms, int64_t to_ms, const char *tz, bool hourly, const char *tz_field,
                          mq_arena_t *a, mq_buckets_t *out, mq_error_t *err) {
  memset(out, 0, sizeof *out);
  if (from_ms < 0 || to_ms <= from_ms)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "range",
                        "the range must start at or after 1970 and end after it starts");
  out->from_ms = from_ms;
  out->to_ms = to_ms;
  out->q0_ms = from_ms / MQ_QUARTER_MS * MQ_QUARTER_MS;
  out->n_quarters = (size_t)((to_ms - out->q0_ms + MQ_QUARTER_MS - 1) / MQ_QUARTER_MS);
  out->bucket_of = mq_arena_alloc(a, out->n_quarters * sizeof *out->bucket_of);
  /* hours: at most one per quarter; days: a day has at least 92 quarters (23 hours) */
  size_t cap = hourly ? out->n_quarters : out->n_quarters / 92 + 2;
  out->start = mq_arena_alloc(a, cap * sizeof *out->start);
  out->label = mq_arena_alloc(a, cap * sizeof *out->label);
  size_t keep = hourly ? 13 : 10;
  for (size_t i = 0; i < out->n_quarters; i++) {
    int64_t t = out->q0_ms + (int64_t)i * MQ_QUARTER_MS;
    char local[24];
    if (mq_utc_to_local(t / 1000, tz, local, sizeof local) < 0)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, tz_field, "cannot express the range in %s", tz);
    local[keep] = 0;
    if (!out->n || strcmp(local, out->label[out->n - 1])) {
      if (out->n == cap) return mq_error_set(err, MQ_INTERNAL, "range", "more buckets than a range can have");
      out->start[out->n] = t < from_ms ? from_ms : t;
      memcpy(out->label[out->n], local, keep + 1);
      out->n++;
    }
    out->bucket_of[i] = (uint32_t)(out->n - 1);
  }
  return MQ_OK;
}

long mq_buckets_index(const mq_buckets_t *b, int64_t at_ms) {
  if (at_ms < b->q0_ms || at_ms >= b->to_ms) return -1;
  size_t q = (size_t)((at_ms - b->q0_ms) / MQ_QUARTER_MS);
  return q < b->n_quarters ? (long)b->bucket_of[q] : -1;
}
