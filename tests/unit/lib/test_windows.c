/*
 * test_windows.c — calendar windows in a time zone (lib/mq_recur.h:
 * mq_local_window, mq_local_months): "this weekend" from a Thursday, a
 * Saturday and late on a Sunday; a weekend across the start of daylight
 * saving time (53 hours, not 54); today, tomorrow, this and next week, this
 * month across a year end; months and their labels; an unknown zone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/mq_recur.h"

/* UTC "YYYY-MM-DDTHH:MM" → unix ms */
static int64_t utc(const char *s) {
  struct tm tm = {0};
  strptime(s, "%Y-%m-%dT%H:%M", &tm);
  return (int64_t)timegm(&tm) * 1000;
}

static void window(mq_window_t w, const char *now, const char *tz, const char *from, const char *to) {
  int64_t f, t;
  mq_error_t err;
  assert_int_equal(mq_local_window(w, utc(now), tz, &f, &t, &err), MQ_OK);
  if (f != utc(from) || t != utc(to))
    fail_msg("window %d at %s in %s: got [%lld, %lld), want [%s, %s)", (int)w, now, tz, (long long)f, (long long)t,
             from, to);
}

static void test_weekend(void **state) {
  (void)state;
  /* Thursday 2027-05-06 10:00 in Toronto (EDT, UTC-4) */
  window(MQ_WINDOW_WEEKEND, "2027-05-06T14:00", "America/Toronto", "2027-05-07T21:00", "2027-05-10T04:00");
  /* Friday 18:00 local: already begun, from now */
  window(MQ_WINDOW_WEEKEND, "2027-05-07T22:00", "America/Toronto", "2027-05-07T22:00", "2027-05-10T04:00");
  /* Saturday noon, and Sunday 23:30 local */
  window(MQ_WINDOW_WEEKEND, "2027-05-08T16:00", "America/Toronto", "2027-05-08T16:00", "2027-05-10T04:00");
  window(MQ_WINDOW_WEEKEND, "2027-05-10T03:30", "America/Toronto", "2027-05-10T03:30", "2027-05-10T04:00");
  /* across the start of DST (Sunday 2027-03-14): Friday 17:00 EST to Monday 00:00 EDT, 53 hours */
  window(MQ_WINDOW_WEEKEND, "2027-03-11T17:00", "America/Toronto", "2027-03-12T22:00", "2027-03-15T04:00");
  /* the same instant is another weekday in Tokyo: Friday 02:00 there */
  window(MQ_WINDOW_WEEKEND, "2027-03-11T17:00", "Asia/Tokyo", "2027-03-12T08:00", "2027-03-14T15:00");
}

static void test_days_weeks_months(void **state) {
  (void)state;
  const char *now = "2027-05-06T14:00", *tz = "America/Toronto";
  window(MQ_WINDOW_TODAY, now, tz, now, "2027-05-07T04:00");
  window(MQ_WINDOW_TOMORROW, now, tz, "2027-05-07T04:00", "2027-05-08T04:00");
  window(MQ_WINDOW_THIS_WEEK, now, tz, now, "2027-05-10T04:00");
  window(MQ_WINDOW_NEXT_WEEK, now, tz, "2027-05-10T04:00", "2027-05-17T04:00");
  window(MQ_WINDOW_THIS_MONTH, now, tz, now, "2027-06-01T04:00");
  /* December in Berlin: the month ends at the new year, CET (UTC+1) */
  window(MQ_WINDOW_THIS_MONTH, "2027-12-15T12:00", "Europe/Berlin", "2027-12-15T12:00", "2027-12-31T23:00");
  /* a Sunday: this week ends at midnight, next week is the following one */
  window(MQ_WINDOW_THIS_WEEK, "2027-05-09T12:00", "UTC", "2027-05-09T12:00", "2027-05-10T00:00");
  window(MQ_WINDOW_NEXT_WEEK, "2027-05-09T12:00", "UTC", "2027-05-10T00:00", "2027-05-17T00:00");
}

static void test_months_and_errors(void **state) {
  (void)state;
  int64_t starts[3];
  char labels[3][8];
  mq_error_t err;
  assert_int_equal(mq_local_months(utc("2027-12-15T12:00"), "Europe/Berlin", 3, starts, labels, &err), MQ_OK);
  assert_int_equal(starts[0], utc("2027-11-30T23:00"));
  assert_int_equal(starts[1], utc("2027-12-31T23:00"));
  assert_int_equal(starts[2], utc("2028-01-31T23:00"));
  assert_string_equal(labels[0], "2027-12");
  assert_string_equal(labels[1], "2028-01");
  assert_string_equal(labels[2], "2028-02");
  int64_t f, t;
  assert_int_equal(mq_local_window(MQ_WINDOW_TODAY, utc("2027-05-06T14:00"), "Mars/Olympus", &f, &t, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_local_months(0, "Nowhere/Else", 1, starts, NULL, &err), MQ_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weekend),
      cmocka_unit_test(test_days_weeks_months),
      cmocka_unit_test(test_months_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
