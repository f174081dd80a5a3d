/*
 * test_buckets.c — ranges cut into local hours and days (lib/mq_buckets.h):
 * a sale at 23:30 in Toronto is on the Toronto day and the next UTC day;
 * Asia/Kolkata's days start at 18:30 UTC; the day clocks go forward in
 * Toronto has 23 hours and the day they go back 25; a range that starts
 * mid-hour cuts its first bucket there; instants outside the range belong
 * to no bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/mq_buckets.h"

static int64_t utc(const char *s) { /* "YYYY-MM-DDTHH:MM" UTC -> unix ms */
  struct tm tm = {0};
  strptime(s, "%Y-%m-%dT%H:%M", &tm);
  return (int64_t)timegm(&tm) * 1000;
}

static const char *label_at(const mq_buckets_t *b, const char *when) {
  long i = mq_buckets_index(b, utc(when));
  return i < 0 ? "(none)" : b->label[i];
}

static void test_toronto_2330(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_buckets_t b;
  mq_error_t err;
  /* 2026-03-06 23:30 in Toronto (EST, UTC-5) is 2026-03-07 04:30 UTC */
  assert_int_equal(mq_buckets_make(utc("2026-03-05T05:00"), utc("2026-03-09T04:00"), "America/Toronto", false,
                                   "time_zone", &a, &b, &err),
                   MQ_OK);
  assert_string_equal(label_at(&b, "2026-03-07T04:30"), "2026-03-06");
  assert_int_equal(b.n, 4); /* the 5th to the 8th, Toronto days */
  assert_int_equal(b.start[0], utc("2026-03-05T05:00"));
  assert_int_equal(b.start[1], utc("2026-03-06T05:00"));
  assert_int_equal(b.start[3], utc("2026-03-08T05:00")); /* the 8th: clocks go forward at 2:00 */
  assert_int_equal(mq_buckets_index(&b, utc("2026-03-09T04:00")), -1);
  assert_int_equal(mq_buckets_index(&b, utc("2026-03-05T04:45")), -1);
  assert_int_equal(
      mq_buckets_make(utc("2026-03-05T00:00"), utc("2026-03-09T00:00"), "UTC", false, "time_zone", &a, &b, &err),
      MQ_OK);
  assert_string_equal(label_at(&b, "2026-03-07T04:30"), "2026-03-07");
  /* hourly in Toronto: the 23:00 bucket */
  assert_int_equal(mq_buckets_make(utc("2026-03-06T05:00"), utc("2026-03-08T05:00"), "America/Toronto", true,
                                   "time_zone", &a, &b, &err),
                   MQ_OK);
  assert_string_equal(label_at(&b, "2026-03-07T04:30"), "2026-03-06T23");
  assert_int_equal(b.n, 48);
  mq_arena_release(&a);
}

static void test_half_hour_zone_and_dst_days(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_buckets_t b;
  mq_error_t err;
  /* Kolkata (+05:30): its days start at 18:30 UTC */
  assert_int_equal(mq_buckets_make(utc("2026-06-01T18:30"), utc("2026-06-03T18:30"), "Asia/Kolkata", false, "time_zone",
                                   &a, &b, &err),
                   MQ_OK);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.label[0], "2026-06-02");
  assert_string_equal(label_at(&b, "2026-06-02T18:15"), "2026-06-02");
  assert_string_equal(label_at(&b, "2026-06-02T18:30"), "2026-06-03");
  /* hours in Kolkata are cut at :30 UTC */
  assert_int_equal(mq_buckets_make(utc("2026-06-01T18:30"), utc("2026-06-01T20:30"), "Asia/Kolkata", true, "time_zone",
                                   &a, &b, &err),
                   MQ_OK);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.label[1], "2026-06-02T01");
  assert_int_equal(b.start[1], utc("2026-06-01T19:30"));
  /* Toronto's DST days: 23 hours on 2026-03-08, 25 on 2026-11-01 */
  assert_int_equal(mq_buckets_make(utc("2026-03-08T05:00"), utc("2026-03-10T04:00"), "America/Toronto", false,
                                   "time_zone", &a, &b, &err),
                   MQ_OK);
  assert_int_equal(b.n, 2);
  assert_int_equal(b.start[1] - b.start[0], 23LL * 3600 * 1000);
  assert_int_equal(mq_buckets_make(utc("2026-11-01T04:00"), utc("2026-11-03T05:00"), "America/Toronto", false,
                                   "time_zone", &a, &b, &err),
                   MQ_OK);
  assert_int_equal(b.n, 2);
  assert_int_equal(b.start[1] - b.start[0], 25LL * 3600 * 1000);
  /* hourly on the day clocks go back: 1:00-2:00 happens twice, one bucket of two hours */
  assert_int_equal(mq_buckets_make(utc("2026-11-01T04:00"), utc("2026-11-02T05:00"), "America/Toronto", true,
                                   "time_zone", &a, &b, &err),
                   MQ_OK);
  assert_int_equal(b.n, 24);
  assert_string_equal(label_at(&b, "2026-11-01T05:30"), "2026-11-01T01");
  assert_string_equal(label_at(&b, "2026-11-01T06:30"), "2026-11-01T01");
  mq_arena_release(&a);
}

static void test_cut_and_refusals(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_buckets_t b;
  mq_error_t err;
  /* a range starting at 10:07 starts its first hour there, and counts its quarter */
  assert_int_equal(
      mq_buckets_make(utc("2026-01-01T10:07"), utc("2026-01-01T12:00"), "UTC", true, "time_zone", &a, &b, &err), MQ_OK);
  assert_int_equal(b.n, 2);
  assert_int_equal(b.start[0], utc("2026-01-01T10:07"));
  assert_int_equal(mq_buckets_index(&b, utc("2026-01-01T10:00")), 0);
  assert_int_equal(
      mq_buckets_make(utc("2026-01-02T00:00"), utc("2026-01-01T00:00"), "UTC", false, "time_zone", &a, &b, &err),
      MQ_INVALID_ARGUMENT);
  assert_int_equal(
      mq_buckets_make(utc("2026-01-01T00:00"), utc("2026-01-02T00:00"), "Mars/Base", false, "range.tz", &a, &b, &err),
      MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "range.tz");
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toronto_2330),
      cmocka_unit_test(test_half_hour_zone_and_dst_days),
      cmocka_unit_test(test_cut_and_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
