/*
 * test_recur.c — cmocka tests for lib/mq_recur.c: RRULE parsing, series
 * expansion at a constant local wall-clock time across DST changes, and the
 * TZif/POSIX-rule time-zone reader behind mq_local_to_utc/mq_utc_to_local.
 *
 * Where the expected instants come from:
 *   - hard-coded values were produced with `TZ=<zone> date -d '<local>' +%s`
 *     and `zdump -v` (glibc and tzcode, not this code) from tzdata 2025b;
 *   - the long series are also recomputed here from the rules themselves
 *     (EU: last Sunday of March/October at 01:00 UTC; US: second Sunday of
 *     March at 07:00 UTC / first Sunday of November at 06:00 UTC for New
 *     York; India: +05:30 all year) with civil-date code of this file's own.
 * Synthetic zones (a TZif footer only, version 1 files, broken files) are
 * written to a temporary $TZDIR by a small TZif writer in this file.
 *
 * Invariant: needs tzdata in /usr/share/zoneinfo (as the server does); no
 * network. The fuzz of truncated and mutated TZif files runs under ASan.
 * Read next: lib/mq_recur.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mq_recur.h"

/* ---- independent civil-date helpers ------------------------------------------------------------ */

static int t_is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
static int t_dim(int y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && t_is_leap(y) ? 29 : dim[m - 1];
}
/* Days since 1970-01-01 by counting (years >= 1970). */
static int64_t t_days(int y, int m, int d) {
  int64_t n = 0;
  for (int yy = 1970; yy < y; yy++) n += t_is_leap(yy) ? 366 : 365;
  for (int mm = 1; mm < m; mm++) n += t_dim(y, mm);
  return n + d - 1;
}
/* 0 = Sunday (1970-01-01 was a Thursday). */
static int t_wday(int y, int m, int d) {
  return (int)((t_days(y, m, d) + 4) % 7);
}
static int64_t t_utc(int y, int m, int d, int h, int mi) {
  return t_days(y, m, d) * 86400 + h * 3600 + mi * 60;
}
static int last_sunday(int y, int m) {
  int d = t_dim(y, m);
  while (t_wday(y, m, d) != 0) d--;
  return d;
}
static int nth_sunday(int y, int m, int n) {
  int d = 1;
  while (t_wday(y, m, d) != 0) d++;
  return d + 7 * (n - 1);
}
/* Central European Time offset at instant t (EU rule since 1996). */
static int eu_offset(int64_t t, int y) {
  int64_t s = t_utc(y, 3, last_sunday(y, 3), 1, 0), e = t_utc(y, 10, last_sunday(y, 10), 1, 0);
  return t >= s && t < e ? 7200 : 3600;
}
/* New York offset at instant t (US rule since 2007). */
static int ny_offset(int64_t t, int y) {
  int64_t s = t_utc(y, 3, nth_sunday(y, 3, 2), 7, 0), e = t_utc(y, 11, nth_sunday(y, 11, 1), 6, 0);
  return t >= s && t < e ? -14400 : -18000;
}
/* Advances (y, m, d) by n days. */
static void t_add_days(int *y, int *m, int *d, int n) {
  while (n-- > 0)
    if (++*d > t_dim(*y, *m)) {
      *d = 1;
      if (++*m > 12) *m = 1, ++*y;
    }
}

/* ---- helpers -------------------------------------------------------------------------------------- */

static mq_error_t fresh_error(void) {
  mq_error_t e;
  memset(&e, 0, sizeof e);
  return e;
}

#define MAXN 1200
typedef struct {
  int64_t t[MAXN];
  size_t n;
  bool truncated;
} series_t;

/* Parses `rule` and expands it; fails the test on any error. */
static series_t expand(const char *rule, const char *first, const char *tz, size_t max_out) {
  series_t s;
  memset(&s, 0, sizeof s);
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  if (mq_rrule_parse(rule, &r, &e) != MQ_OK) fail_msg("rule \"%s\": %s: %s", rule, e.field, e.message);
  assert_true(max_out <= MAXN);
  mq_code_t rc = mq_recur_expand(&r, first, tz, max_out, s.t, &s.n, &s.truncated, &e);
  if (rc != MQ_OK) fail_msg("expand \"%s\" %s %s: %s: %s", rule, first, tz, e.field, e.message);
  for (size_t i = 1; i < s.n; i++) assert_true(s.t[i] > s.t[i - 1]);
  return s;
}

static void expect_local(int64_t t, const char *tz, const char *want) {
  char buf[32];
  assert_int_equal(mq_utc_to_local(t, tz, buf, sizeof buf), 19);
  assert_string_equal(buf, want);
}

static void expect_series(const series_t *s, const int64_t *want, size_t n) {
  if (s->n != n) fail_msg("%zu occurrences, expected %zu", s->n, n);
  for (size_t i = 0; i < n; i++)
    if (s->t[i] != want[i]) fail_msg("occurrence %zu: %lld, expected %lld", i, (long long)s->t[i], (long long)want[i]);
}

static void expect_rule_error(const char *rule, const char *needle) {
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  mq_code_t rc = mq_rrule_parse(rule, &r, &e);
  if (rc != MQ_INVALID_ARGUMENT) fail_msg("rule \"%s\": code %d, expected INVALID_ARGUMENT", rule, (int)rc);
  assert_string_equal(e.field, "recurrence");
  if (!strstr(e.message, needle)) fail_msg("rule \"%s\": message \"%s\" lacks \"%s\"", rule, e.message, needle);
}

/* ---- RRULE parsing -------------------------------------------------------------------------------- */

static void test_parse_accepts(void **state) {
  (void)state;
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  assert_int_equal(mq_rrule_parse("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=10", &r, &e), MQ_OK);
  assert_int_equal(r.freq, MQ_RRULE_WEEKLY);
  assert_int_equal(r.interval, 2);
  assert_int_equal(r.n_byday, 2);
  assert_int_equal(r.byday[0].weekday, 1);
  assert_int_equal(r.byday[1].weekday, 3);
  assert_int_equal(r.count, 10);
  assert_int_equal(r.until_kind, MQ_RRULE_UNTIL_NONE);
  assert_int_equal(r.wkst, 0);

  /* Case-insensitive, "RRULE:" prefix, any order, signed ordinals. */
  assert_int_equal(mq_rrule_parse("rrule:count=4;byday=+1fr,-1Su,2TU,we;freq=monthly", &r, &e), MQ_OK);
  assert_int_equal(r.freq, MQ_RRULE_MONTHLY);
  assert_int_equal(r.interval, 1);
  assert_int_equal(r.n_byday, 4);
  assert_int_equal(r.byday[0].ordinal, 1);
  assert_int_equal(r.byday[0].weekday, 4);
  assert_int_equal(r.byday[1].ordinal, -1);
  assert_int_equal(r.byday[1].weekday, 6);
  assert_int_equal(r.byday[2].ordinal, 2);
  assert_int_equal(r.byday[3].ordinal, 0);
  assert_int_equal(r.byday[3].weekday, 2);

  assert_int_equal(mq_rrule_parse("FREQ=MONTHLY;BYMONTHDAY=1,15,-1;UNTIL=20271231", &r, &e), MQ_OK);
  assert_int_equal(r.n_bymonthday, 3);
  assert_int_equal(r.bymonthday[2], -1);
  assert_int_equal(r.until_kind, MQ_RRULE_UNTIL_DATE);
  assert_int_equal(r.until, t_days(2027, 12, 31));
  assert_int_equal(mq_rrule_parse("UNTIL=20270305T193000;FREQ=DAILY", &r, &e), MQ_OK);
  assert_int_equal(r.until_kind, MQ_RRULE_UNTIL_LOCAL);
  assert_int_equal(r.until, t_utc(2027, 3, 5, 19, 30));
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;UNTIL=20270305T183000Z", &r, &e), MQ_OK);
  assert_int_equal(r.until_kind, MQ_RRULE_UNTIL_UTC);
  assert_int_equal(r.until, t_utc(2027, 3, 5, 18, 30));
  assert_int_equal(mq_rrule_parse("FREQ=WEEKLY;WKST=SU;INTERVAL=366;COUNT=10000", &r, &e), MQ_OK);
  assert_int_equal(r.wkst, 6);
  assert_int_equal(r.interval, 366);
  assert_int_equal(r.count, 10000);
  assert_int_equal(e.code, MQ_OK);
}

static void test_parse_refuses(void **state) {
  (void)state;
  static const struct {
    const char *rule, *needle;
  } cases[] = {
      {"", "is required"},
      {"FREQ=YEARLY;COUNT=3", "FREQ=YEARLY is not supported"},
      {"FREQ=hourly;COUNT=3", "FREQ=HOURLY is not supported"},
      {"FREQ=FORTNIGHTLY;COUNT=3", "FREQ must be DAILY, WEEKLY or MONTHLY"},
      {"COUNT=3", "FREQ is required"},
      {"FREQ=DAILY", "COUNT or UNTIL is required"},
      {"FREQ=DAILY;COUNT=3;UNTIL=20270101", "COUNT and UNTIL both given"},
      {"FREQ=DAILY;INTERVAL=0;COUNT=3", "INTERVAL must be 1..366"},
      {"FREQ=DAILY;INTERVAL=367;COUNT=3", "INTERVAL must be 1..366"},
      {"FREQ=DAILY;INTERVAL=-1;COUNT=3", "INTERVAL must be 1..366"},
      {"FREQ=DAILY;INTERVAL=2x;COUNT=3", "INTERVAL must be 1..366"},
      {"FREQ=DAILY;COUNT=0", "COUNT must be 1..10000"},
      {"FREQ=DAILY;COUNT=10001", "COUNT must be 1..10000"},
      {"FREQ=DAILY;COUNT=99999999999999999999", "COUNT must be 1..10000"},
      {"FREQ=MONTHLY;BYSETPOS=1;BYDAY=MO;COUNT=3", "unsupported RRULE part BYSETPOS"},
      {"FREQ=MONTHLY;bymonth=3;COUNT=3", "unsupported RRULE part BYMONTH"},
      {"FREQ=DAILY;BYHOUR=10;COUNT=3", "unsupported RRULE part BYHOUR"},
      {"FREQ=DAILY;BYYEARDAY=10;COUNT=3", "unsupported RRULE part BYYEARDAY"},
      {"FREQ=DAILY;X-FOO=1;COUNT=2", "unknown RRULE part 'X-FOO'"},
      {"FREQ=DAILY;FREQ=WEEKLY;COUNT=2", "RRULE part FREQ is given twice"},
      {"FREQ=DAILY;;COUNT=2", "empty RRULE part"},
      {"FREQ=DAILY;COUNT=2;", "empty RRULE part"},
      {";FREQ=DAILY;COUNT=2", "empty RRULE part"},
      {"FREQ=DAILY;COUNT", "RRULE part 'COUNT' is not NAME=VALUE"},
      {"FREQ=DAILY;COUNT=", "RRULE part COUNT has no value"},
      {"FREQ=WEEKLY;BYDAY=1FR;COUNT=2", "ordinals such as 1FR are only allowed with FREQ=MONTHLY"},
      {"FREQ=DAILY;BYDAY=MO;COUNT=2", "BYDAY is not supported with FREQ=DAILY"},
      {"FREQ=WEEKLY;BYMONTHDAY=1;COUNT=2", "BYMONTHDAY is only allowed with FREQ=MONTHLY"},
      {"FREQ=DAILY;BYMONTHDAY=1;COUNT=2", "BYMONTHDAY is only allowed with FREQ=MONTHLY"},
      {"FREQ=MONTHLY;BYDAY=6FR;COUNT=2", "BYDAY ordinal must be 1..5 or -5..-1"},
      {"FREQ=MONTHLY;BYDAY=0FR;COUNT=2", "BYDAY ordinal must be 1..5 or -5..-1"},
      {"FREQ=MONTHLY;BYDAY=-6FR;COUNT=2", "BYDAY ordinal must be 1..5 or -5..-1"},
      {"FREQ=MONTHLY;BYDAY=FX;COUNT=2", "BYDAY must be a list of MO, TU"},
      {"FREQ=WEEKLY;BYDAY=MO,,TU;COUNT=2", "BYDAY must be a list"},
      {"FREQ=WEEKLY;BYDAY=MO,;COUNT=2", "BYDAY must be a list"},
      {"FREQ=WEEKLY;BYDAY=MON;COUNT=2", "BYDAY must be a list"},
      {"FREQ=MONTHLY;BYDAY=+FR;COUNT=2", "BYDAY must be a list"},
      {"FREQ=MONTHLY;BYMONTHDAY=32;COUNT=2", "BYMONTHDAY must be a list of days 1..31 or -31..-1"},
      {"FREQ=MONTHLY;BYMONTHDAY=0;COUNT=2", "BYMONTHDAY must be a list"},
      {"FREQ=MONTHLY;BYMONTHDAY=-32;COUNT=2", "BYMONTHDAY must be a list"},
      {"FREQ=MONTHLY;BYMONTHDAY=1,,2;COUNT=2", "BYMONTHDAY must be a list"},
      {"FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;COUNT=2", "BYDAY and BYMONTHDAY cannot be combined"},
      {"FREQ=DAILY;UNTIL=2027-01-01", "UNTIL must be a date YYYYMMDD"},
      {"FREQ=DAILY;UNTIL=20270229", "UNTIL must be"},
      {"FREQ=DAILY;UNTIL=20270101T250000", "UNTIL must be"},
      {"FREQ=DAILY;UNTIL=20270101T1200", "UNTIL must be"},
      {"FREQ=DAILY;UNTIL=20270101T120000X", "UNTIL must be"},
      {"FREQ=DAILY;UNTIL=20270101X120000", "UNTIL must be"},
      {"FREQ=DAILY;UNTIL=18991231", "UNTIL must be"},
      {"FREQ=DAILY;COUNT=2;WKST=XX", "WKST must be one of MO"},
      {"FREQ=DAILY;COUNT=2;\x01\x02"
       "BAD=1",
       "unknown RRULE part '??BAD'"},
      {"FREQ DAILY", "is not NAME=VALUE"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_rule_error(cases[i].rule, cases[i].needle);

  /* Too long; too many list entries. */
  char big[700];
  memset(big, 'A', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  expect_rule_error(big, "must be at most 512 bytes");
  char many[400] = "FREQ=MONTHLY;COUNT=2;BYDAY=";
  for (int i = 0; i < 33; i++) strcat(many, i ? ",1MO" : "1MO");
  expect_rule_error(many, "BYDAY has more than 32 entries");
  char days[400] = "FREQ=MONTHLY;COUNT=2;BYMONTHDAY=";
  for (int i = 0; i < 32; i++) strcat(days, i ? ",1" : "1");
  expect_rule_error(days, "BYMONTHDAY has more than 31 entries");
  /* NULL input and caller bugs. */
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  assert_int_equal(mq_rrule_parse(NULL, &r, &e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.message, "is required");
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;COUNT=1", NULL, &e), MQ_INTERNAL);
  assert_int_equal(mq_rrule_parse("FREQ=DAILY", &r, NULL), MQ_INVALID_ARGUMENT);
}

/* ---- local <-> UTC ---------------------------------------------------------------------------------- */

static void test_local_utc_basics(void **state) {
  (void)state;
  int64_t t = 0;
  mq_error_t e = fresh_error();
  /* India: +05:30 all year (date: 1805551200). */
  assert_int_equal(mq_local_to_utc("2027-03-20T19:30", "Asia/Kolkata", &t, &e), MQ_OK);
  assert_int_equal(t, 1805551200);
  assert_int_equal(t, t_utc(2027, 3, 20, 19, 30) - 19800);
  expect_local(t, "Asia/Kolkata", "2027-03-20T19:30:00");
  expect_local(t, "UTC", "2027-03-20T14:00:00");
  assert_int_equal(mq_local_to_utc("2027-03-20T14:00:00", "UTC", &t, &e), MQ_OK);
  assert_int_equal(t, 1805551200);
  assert_int_equal(mq_local_to_utc("2027-07-01T12:00:59", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 7, 1, 10, 0) + 59);
  expect_local(t, "Europe/Berlin", "2027-07-01T12:00:59");
  expect_local(0, "UTC", "1970-01-01T00:00:00");
  expect_local(-1, "America/New_York", "1969-12-31T18:59:59");
  int32_t off = 0;
  assert_int_equal(mq_tz_offset("Europe/Berlin", t, &off, &e), MQ_OK);
  assert_int_equal(off, 7200);
  assert_int_equal(mq_tz_offset("Australia/Sydney", t, &off, &e), MQ_OK);
  assert_int_equal(off, 36000);
  assert_int_equal(e.code, MQ_OK);

  /* mq_utc_to_local refusals. */
  char buf[32] = "x";
  assert_int_equal(mq_utc_to_local(t, "Europe/Berlin", buf, 19), -1);
  assert_string_equal(buf, "");
  assert_int_equal(mq_utc_to_local(t, "Mars/Olympus", buf, sizeof buf), -1);
  assert_int_equal(mq_utc_to_local(t, NULL, buf, sizeof buf), -1);
  assert_int_equal(mq_utc_to_local(INT64_MAX, "UTC", buf, sizeof buf), -1);
  assert_int_equal(mq_utc_to_local(INT64_MIN, "UTC", buf, sizeof buf), -1);
  assert_int_equal(mq_utc_to_local(t, "UTC", NULL, 0), -1);
  expect_local(253402300799LL - 86400, "UTC", "9999-12-30T23:59:59");
}

static void test_local_time_refusals(void **state) {
  (void)state;
  static const char *const bad[] = {"2027-02-29T10:00",  "2027-03-20 19:30",    "2027-03-20T24:00",
                                    "1899-12-31T10:00",  "2027-03-20T19:30:60", "2027-3-20T19:30",
                                    "2027-03-20T19:30Z", "2027-03-20",          "",
                                    "2027-13-01T00:00",  "2027-00-10T00:00",    "2027-04-31T00:00",
                                    "x027-03-20T19:30"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t t = 42;
    mq_error_t e = fresh_error();
    assert_int_equal(mq_local_to_utc(bad[i], "Europe/Berlin", &t, &e), MQ_INVALID_ARGUMENT);
    assert_string_equal(e.field, "local_time");
    assert_non_null(strstr(e.message, "YYYY-MM-DDTHH:MM[:SS]"));
    assert_int_equal(t, 42);
  }
  mq_error_t e = fresh_error();
  int64_t t;
  assert_int_equal(mq_local_to_utc(NULL, "UTC", &t, &e), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_local_to_utc("2028-02-29T10:00", "UTC", &t, &e), MQ_OK); /* a leap day */
  assert_int_equal(t, t_utc(2028, 2, 29, 10, 0));
  assert_int_equal(mq_local_to_utc("2027-03-20T19:30", "UTC", NULL, &e), MQ_INTERNAL);
}

static void test_unknown_time_zone(void **state) {
  (void)state;
  static const char *const bad[] = {"Mars/Olympus",
                                    "",
                                    "utc",
                                    "posix/Europe/Berlin",
                                    "right/Europe/Berlin",
                                    "Europe/../Europe/Berlin",
                                    "/etc/passwd",
                                    "Europe/Berlin/",
                                    "localtime",
                                    "Europe/Berlin\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t t;
    mq_error_t e = fresh_error();
    if (mq_local_to_utc("2027-03-20T19:30", bad[i], &t, &e) != MQ_INVALID_ARGUMENT) fail_msg("tz %zu accepted", i);
    assert_string_equal(e.field, "time_zone");
    e = fresh_error();
    mq_rrule_t r;
    assert_int_equal(mq_rrule_parse("FREQ=DAILY;COUNT=3", &r, &e), MQ_OK);
    int64_t out[4];
    size_t n = 9;
    bool trunc = true;
    assert_int_equal(mq_recur_expand(&r, "2027-03-20T19:30", bad[i], 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
    assert_string_equal(e.field, "time_zone");
    assert_int_equal(n, 0);
    assert_false(trunc);
    int32_t off;
    assert_int_equal(mq_tz_offset(bad[i], 0, &off, &e), MQ_INVALID_ARGUMENT);
  }
  mq_error_t e = fresh_error();
  int64_t t;
  assert_int_equal(mq_local_to_utc("2027-03-20T19:30", NULL, &t, &e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "time_zone");
  assert_non_null(strstr(e.message, "is required"));
}

/* Spring-forward gaps shift forward; fall-back overlaps take the earlier instant. */
static void test_gap_and_overlap(void **state) {
  (void)state;
  int64_t t;
  mq_error_t e = fresh_error();
  /* Berlin 2027-03-28 02:30 does not exist → 03:30 CEST = 01:30Z (date: 1806197400 for 03:30). */
  assert_int_equal(mq_local_to_utc("2027-03-28T02:30", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, 1806197400);
  expect_local(t, "Europe/Berlin", "2027-03-28T03:30:00");
  /* The edges of the gap: 01:59:59 CET and 03:00 CEST exist, 02:00 becomes 03:00. */
  assert_int_equal(mq_local_to_utc("2027-03-28T01:59:59", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 3, 28, 0, 59) + 59);
  assert_int_equal(mq_local_to_utc("2027-03-28T02:00", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 3, 28, 1, 0));
  assert_int_equal(mq_local_to_utc("2027-03-28T03:00", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 3, 28, 1, 0));
  /* Berlin 2027-10-31 02:30 happens twice → the first, CEST (date: 1824942600, CET would be 1824946200). */
  assert_int_equal(mq_local_to_utc("2027-10-31T02:30", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, 1824942600);
  expect_local(t, "Europe/Berlin", "2027-10-31T02:30:00");
  expect_local(t + 3600, "Europe/Berlin", "2027-10-31T02:30:00");
  assert_int_equal(mq_local_to_utc("2027-10-31T03:00", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 10, 31, 2, 0));
  /* New York: 2027-03-14 02:30 → 03:30 EDT (date: 1805009400); 2027-11-07 01:30 → EDT (date: 1825565400). */
  assert_int_equal(mq_local_to_utc("2027-03-14T02:30", "America/New_York", &t, &e), MQ_OK);
  assert_int_equal(t, 1805009400);
  assert_int_equal(mq_local_to_utc("2027-11-07T01:30", "America/New_York", &t, &e), MQ_OK);
  assert_int_equal(t, 1825565400);
  /* Sydney (southern): 2027-10-03 02:30 does not exist; 2027-04-04 02:30 happens twice. */
  assert_int_equal(mq_local_to_utc("2027-10-03T02:30", "Australia/Sydney", &t, &e), MQ_OK);
  expect_local(t, "Australia/Sydney", "2027-10-03T03:30:00");
  assert_int_equal(t, t_utc(2027, 10, 2, 16, 30));
  assert_int_equal(mq_local_to_utc("2027-04-04T02:30", "Australia/Sydney", &t, &e), MQ_OK);
  assert_int_equal(t, t_utc(2027, 4, 3, 15, 30)); /* AEDT, +11 */

  /* A daily 02:30 series through both changes keeps 02:30 except on the gap day. */
  series_t s = expand("FREQ=DAILY;COUNT=3", "2027-03-27T02:30", "Europe/Berlin", 10);
  const int64_t spring[] = {t_utc(2027, 3, 27, 1, 30), 1806197400, t_utc(2027, 3, 29, 0, 30)};
  expect_series(&s, spring, 3);
  s = expand("FREQ=DAILY;COUNT=3", "2027-10-30T02:30", "Europe/Berlin", 10);
  const int64_t fall[] = {t_utc(2027, 10, 30, 0, 30), 1824942600, t_utc(2027, 11, 1, 1, 30)};
  expect_series(&s, fall, 3);
}

/* ---- expansion across DST ------------------------------------------------------------------------------- */

static void test_berlin_weekly_keeps_wall_time(void **state) {
  (void)state;
  series_t s = expand("FREQ=WEEKLY;COUNT=34", "2027-03-20T19:30", "Europe/Berlin", 100);
  assert_int_equal(s.n, 34);
  assert_false(s.truncated);
  int y = 2027, m = 3, d = 20;
  for (size_t i = 0; i < s.n; i++, t_add_days(&y, &m, &d, 7)) {
    /* 19:30 local is 17:30Z or 18:30Z, far from the 01:00Z changes: either offset finds the state. */
    int64_t local = t_utc(y, m, d, 19, 30), want = local - eu_offset(local - 7200, y);
    if (s.t[i] != want)
      fail_msg("occurrence %zu (%d-%02d-%02d): %lld, expected %lld", i, y, m, d, (long long)s.t[i], (long long)want);
    char exp[32];
    snprintf(exp, sizeof exp, "%04d-%02d-%02dT19:30:00", y, m, d);
    expect_local(s.t[i], "Europe/Berlin", exp);
  }
  /* Spot checks from `date`: 18:30Z in winter, 17:30Z in summer. */
  assert_int_equal(s.t[0], 1805567400);  /* 2027-03-20 CET */
  assert_int_equal(s.t[1], 1806172200);  /* 2027-03-27 CET, the day before the change */
  assert_int_equal(s.t[2], 1806773400);  /* 2027-04-03 CEST */
  assert_int_equal(s.t[32], 1824917400); /* 2027-10-30 CEST, the day before the change */
  assert_int_equal(s.t[33], 1825525800); /* 2027-11-06 CET */
}

static void test_new_york_and_kolkata(void **state) {
  (void)state;
  series_t s = expand("FREQ=WEEKLY;COUNT=40", "2027-03-07T09:00", "America/New_York", 100);
  assert_int_equal(s.n, 40);
  int y = 2027, m = 3, d = 7;
  for (size_t i = 0; i < s.n; i++, t_add_days(&y, &m, &d, 7)) {
    int64_t local = t_utc(y, m, d, 9, 0), want = local - ny_offset(local + 18000, y);
    if (s.t[i] != want) fail_msg("NY occurrence %zu: %lld, expected %lld", i, (long long)s.t[i], (long long)want);
  }
  assert_int_equal(s.t[0], t_utc(2027, 3, 7, 14, 0));  /* EST */
  assert_int_equal(s.t[1], t_utc(2027, 3, 14, 13, 0)); /* EDT from that morning */

  s = expand("FREQ=DAILY;COUNT=800", "2027-03-20T19:30", "Asia/Kolkata", MAXN);
  assert_int_equal(s.n, 800);
  for (size_t i = 0; i < s.n; i++) assert_int_equal(s.t[i], 1805551200 + (int64_t)i * 86400);
}

static void test_sydney_southern_dst(void **state) {
  (void)state;
  /* 20:00 on the 15th: AEDT (+11) Jan-Mar and Oct-Dec, AEST (+10) Apr-Sep (values from `date`). */
  series_t s = expand("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=12", "2027-01-15T20:00", "Australia/Sydney", 20);
  static const int64_t want[] = {1800003600, 1802682000, 1805101200, 1807783200, 1810375200, 1813053600,
                                 1815645600, 1818324000, 1821002400, 1823590800, 1826269200, 1828861200};
  expect_series(&s, want, 12);
  for (int m = 1; m <= 12; m++) {
    char exp[32];
    snprintf(exp, sizeof exp, "2027-%02d-15T20:00:00", m);
    expect_local(s.t[m - 1], "Australia/Sydney", exp);
    assert_int_equal(s.t[m - 1], t_utc(2027, m, 15, 20, 0) - (m <= 3 || m >= 10 ? 39600 : 36000));
  }
}

/* ---- rule shapes ------------------------------------------------------------------------------------- */

static void test_weekly_byday_interval(void **state) {
  (void)state;
  /* Every other week on Tuesday and Thursday from Tue 2027-03-02 18:00 Berlin. */
  series_t s = expand("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=10", "2027-03-02T18:00", "Europe/Berlin", 20);
  static const int dates[10][2] = {{3, 2}, {3, 4},  {3, 16}, {3, 18}, {3, 30},
                                   {4, 1}, {4, 13}, {4, 15}, {4, 27}, {4, 29}};
  int64_t want[10];
  for (int i = 0; i < 10; i++) {
    int64_t local = t_utc(2027, dates[i][0], dates[i][1], 18, 0);
    want[i] = local - eu_offset(local - 7200, 2027);
  }
  expect_series(&s, want, 10);
  assert_int_equal(s.t[4], t_utc(2027, 3, 30, 16, 0)); /* after the change: CEST */

  /* RFC 5545 §3.8.5.3's WKST example (DTSTART 1997-08-05 09:00 New York, EDT). */
  s = expand("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", "1997-08-05T09:00", "America/New_York", 10);
  static const int64_t mo[] = {870786000, 871218000, 871995600, 872427600}; /* Aug 5, 10, 19, 24 */
  expect_series(&s, mo, 4);
  s = expand("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", "1997-08-05T09:00", "America/New_York", 10);
  static const int64_t su[] = {870786000, 871822800, 871995600, 873032400}; /* Aug 5, 17, 19, 31 */
  expect_series(&s, su, 4);

  /* No BYDAY: the first occurrence's weekday. */
  s = expand("FREQ=WEEKLY;INTERVAL=3;COUNT=3", "2027-01-06T10:00", "UTC", 10);
  const int64_t plain[] = {t_utc(2027, 1, 6, 10, 0), t_utc(2027, 1, 27, 10, 0), t_utc(2027, 2, 17, 10, 0)};
  expect_series(&s, plain, 3);
  /* A first occurrence that does not match BYDAY is still the first (and counts). */
  s = expand("FREQ=WEEKLY;BYDAY=TU;COUNT=3", "2027-03-01T10:00", "UTC", 10);
  const int64_t offrule[] = {t_utc(2027, 3, 1, 10, 0), t_utc(2027, 3, 2, 10, 0), t_utc(2027, 3, 9, 10, 0)};
  expect_series(&s, offrule, 3);
}

static void test_monthly_byday(void **state) {
  (void)state;
  /* First Friday (from Fri 2027-01-01) and last Sunday (from Sun 2027-01-31), 19:00 UTC. */
  series_t s = expand("FREQ=MONTHLY;BYDAY=1FR;COUNT=6", "2027-01-01T19:00", "UTC", 10);
  static const int fr[6] = {1, 5, 5, 2, 7, 4};
  for (int i = 0; i < 6; i++) assert_int_equal(s.t[i], t_utc(2027, i + 1, fr[i], 19, 0));
  assert_int_equal(s.n, 6);
  s = expand("FREQ=MONTHLY;BYDAY=-1SU;COUNT=6", "2027-01-31T19:00", "UTC", 10);
  static const int su[6] = {31, 28, 28, 25, 30, 27};
  for (int i = 0; i < 6; i++) assert_int_equal(s.t[i], t_utc(2027, i + 1, su[i], 19, 0));
  /* -1SU in Berlin: 2027-03-28 is the DST change day; 19:00 is after it (CEST). */
  s = expand("FREQ=MONTHLY;BYDAY=-1SU;COUNT=3", "2027-01-31T19:00", "Europe/Berlin", 10);
  const int64_t berlin[] = {t_utc(2027, 1, 31, 18, 0), t_utc(2027, 2, 28, 18, 0), t_utc(2027, 3, 28, 17, 0)};
  expect_series(&s, berlin, 3);
  /* 2TU and the first Friday together, every 2 months. */
  s = expand("FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU,1FR;COUNT=5", "2027-01-01T08:00", "UTC", 10);
  const int64_t mixed[] = {t_utc(2027, 1, 1, 8, 0), t_utc(2027, 1, 12, 8, 0), t_utc(2027, 3, 5, 8, 0),
                           t_utc(2027, 3, 9, 8, 0), t_utc(2027, 5, 7, 8, 0)};
  expect_series(&s, mixed, 5);
  /* 5FR: only months with five Fridays (2027: Jan, Apr, Jul, Oct). */
  s = expand("FREQ=MONTHLY;BYDAY=5FR;COUNT=4", "2027-01-29T12:00", "UTC", 10);
  const int64_t fifth[] = {t_utc(2027, 1, 29, 12, 0), t_utc(2027, 4, 30, 12, 0), t_utc(2027, 7, 30, 12, 0),
                           t_utc(2027, 10, 29, 12, 0)};
  expect_series(&s, fifth, 4);
  /* Plain FR with MONTHLY: every Friday of the month. */
  s = expand("FREQ=MONTHLY;BYDAY=FR;COUNT=7", "2027-01-01T12:00", "UTC", 10);
  static const int fridays[7][2] = {{1, 1}, {1, 8}, {1, 15}, {1, 22}, {1, 29}, {2, 5}, {2, 12}};
  for (int i = 0; i < 7; i++) assert_int_equal(s.t[i], t_utc(2027, fridays[i][0], fridays[i][1], 12, 0));
  /* -2MO: the second-to-last Monday. */
  s = expand("FREQ=MONTHLY;BYDAY=-2MO;COUNT=2", "2027-01-18T12:00", "UTC", 10);
  const int64_t m2[] = {t_utc(2027, 1, 18, 12, 0), t_utc(2027, 2, 15, 12, 0)};
  expect_series(&s, m2, 2);
}

static void test_monthly_bymonthday(void **state) {
  (void)state;
  /* 31 skips the months without a 31st (not clamped). */
  series_t s = expand("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=7", "2027-01-31T10:00", "UTC", 10);
  static const int m31[7] = {1, 3, 5, 7, 8, 10, 12};
  for (int i = 0; i < 7; i++) assert_int_equal(s.t[i], t_utc(2027, m31[i], 31, 10, 0));
  /* Same without BYMONTHDAY: the first occurrence's day of month. */
  series_t s2 = expand("FREQ=MONTHLY;COUNT=7", "2027-01-31T10:00", "UTC", 10);
  expect_series(&s2, s.t, 7);
  /* 30 from January: February is skipped, 2028 leap year too. */
  s = expand("FREQ=MONTHLY;BYMONTHDAY=30;COUNT=3", "2028-01-30T10:00", "UTC", 10);
  const int64_t m30[] = {t_utc(2028, 1, 30, 10, 0), t_utc(2028, 3, 30, 10, 0), t_utc(2028, 4, 30, 10, 0)};
  expect_series(&s, m30, 3);
  /* -1: the last day of every month, Feb 28 and Feb 29 included. */
  s = expand("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=14", "2027-01-31T10:00", "UTC", 20);
  assert_int_equal(s.n, 14);
  for (int i = 0; i < 14; i++) {
    int y = 2027 + i / 12, m = i % 12 + 1;
    assert_int_equal(s.t[i], t_utc(y, m, t_dim(y, m), 10, 0));
  }
  assert_int_equal(s.t[13], t_utc(2028, 2, 29, 10, 0));
  /* Several days, ascending within each month, duplicates merged. */
  s = expand("FREQ=MONTHLY;BYMONTHDAY=15,1,-1,15;COUNT=5", "2027-02-01T10:00", "UTC", 10);
  const int64_t multi[] = {t_utc(2027, 2, 1, 10, 0), t_utc(2027, 2, 15, 10, 0), t_utc(2027, 2, 28, 10, 0),
                           t_utc(2027, 3, 1, 10, 0), t_utc(2027, 3, 15, 10, 0)};
  expect_series(&s, multi, 5);
  /* A rule that can never match again ends instead of looping: 30 Feb every 12 months. */
  s = expand("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30;COUNT=3", "2027-02-10T10:00", "UTC", 10);
  assert_int_equal(s.n, 1);
  assert_false(s.truncated);
}

static void test_until_and_count(void **state) {
  (void)state;
  /* UNTIL as a date is inclusive of that local date. */
  series_t s = expand("FREQ=DAILY;UNTIL=20270305", "2027-03-01T10:00", "Europe/Berlin", 20);
  assert_int_equal(s.n, 5);
  assert_int_equal(s.t[4], t_utc(2027, 3, 5, 9, 0));
  /* UNTIL as a local date-time is inclusive to the second. */
  s = expand("FREQ=DAILY;UNTIL=20270305T100000", "2027-03-01T10:00", "Europe/Berlin", 20);
  assert_int_equal(s.n, 5);
  s = expand("FREQ=DAILY;UNTIL=20270305T095959", "2027-03-01T10:00", "Europe/Berlin", 20);
  assert_int_equal(s.n, 4);
  /* UNTIL in UTC (10:00 CET = 09:00Z), inclusive. */
  s = expand("FREQ=DAILY;UNTIL=20270305T090000Z", "2027-03-01T10:00", "Europe/Berlin", 20);
  assert_int_equal(s.n, 5);
  s = expand("FREQ=DAILY;UNTIL=20270305T085959Z", "2027-03-01T10:00", "Europe/Berlin", 20);
  assert_int_equal(s.n, 4);
  /* UNTIL on the first occurrence's date: just the first. */
  s = expand("FREQ=WEEKLY;UNTIL=20270301", "2027-03-01T10:00", "UTC", 20);
  assert_int_equal(s.n, 1);
  /* UNTIL before the first occurrence is refused. */
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  int64_t out[4];
  size_t n = 7;
  bool trunc = true;
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;UNTIL=20270228", &r, &e), MQ_OK);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "recurrence");
  assert_non_null(strstr(e.message, "UNTIL is before the first occurrence"));
  assert_int_equal(n, 0);
  assert_false(trunc);
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;UNTIL=20270301T095959", &r, &e), MQ_OK);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);

  /* COUNT and max_out: truncated only when an occurrence did not fit. */
  s = expand("FREQ=DAILY;COUNT=10", "2027-03-01T10:00", "UTC", 5);
  assert_int_equal(s.n, 5);
  assert_true(s.truncated);
  s = expand("FREQ=DAILY;COUNT=10", "2027-03-01T10:00", "UTC", 10);
  assert_int_equal(s.n, 10);
  assert_false(s.truncated);
  s = expand("FREQ=DAILY;COUNT=10", "2027-03-01T10:00", "UTC", 11);
  assert_int_equal(s.n, 10);
  assert_false(s.truncated);
  s = expand("FREQ=DAILY;UNTIL=99991231", "2027-03-01T10:00", "UTC", 500);
  assert_int_equal(s.n, 500);
  assert_true(s.truncated);
  s = expand("FREQ=DAILY;UNTIL=20270305", "2027-03-01T10:00", "UTC", 5);
  assert_int_equal(s.n, 5);
  assert_false(s.truncated);
  s = expand("FREQ=DAILY;COUNT=1", "2027-03-01T10:00", "UTC", 0); /* max_out 0 */
  assert_int_equal(s.n, 0);
  assert_true(s.truncated);
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;COUNT=3", &r, &e), MQ_OK);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 0, NULL, &n, &trunc, &e), MQ_OK);
  assert_true(trunc);
  /* The year 9999 ends every series. */
  s = expand("FREQ=DAILY;COUNT=5", "9999-12-30T10:00", "UTC", 10);
  assert_int_equal(s.n, 2);
  assert_false(s.truncated);
  s = expand("FREQ=WEEKLY;COUNT=5", "9999-12-25T10:00", "UTC", 10);
  assert_int_equal(s.n, 1);
  s = expand("FREQ=MONTHLY;COUNT=5", "9999-11-30T10:00", "UTC", 10);
  assert_int_equal(s.n, 2);
  /* Long series: 10000 daily occurrences fit in a buffer of 10000. */
  int64_t *big = malloc(sizeof *big * 10000);
  assert_non_null(big);
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;COUNT=10000", &r, &e), MQ_OK);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "Europe/Berlin", 10000, big, &n, &trunc, &e), MQ_OK);
  assert_int_equal(n, 10000);
  assert_false(trunc);
  expect_local(big[9999], "Europe/Berlin", "2054-07-16T10:00:00");
  free(big);
}

static void test_expand_refusals(void **state) {
  (void)state;
  mq_rrule_t r;
  mq_error_t e = fresh_error();
  int64_t out[4];
  size_t n;
  bool trunc;
  assert_int_equal(mq_rrule_parse("FREQ=DAILY;COUNT=3", &r, &e), MQ_OK);
  /* A bad first occurrence names "start". */
  static const char *const bad[] = {"2027-02-29T10:00", "2027-03-20T19:30Z", "tomorrow", "", "1899-06-01T10:00"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    e = fresh_error();
    assert_int_equal(mq_recur_expand(&r, bad[i], "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
    assert_string_equal(e.field, "start");
  }
  assert_int_equal(mq_recur_expand(&r, NULL, "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  /* A hand-built rule is checked like a parsed one. */
  mq_rrule_t h = r;
  h.interval = 0;
  e = fresh_error();
  assert_int_equal(mq_recur_expand(&h, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "recurrence");
  assert_non_null(strstr(e.message, "INTERVAL"));
  h = r;
  h.until_kind = MQ_RRULE_UNTIL_DATE;
  assert_int_equal(mq_recur_expand(&h, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(e.message, "COUNT and UNTIL both given"));
  h = r;
  h.freq = (mq_rrule_freq_t)9;
  assert_int_equal(mq_recur_expand(&h, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  h = r;
  h.n_byday = 1;
  h.byday[0] = (mq_rrule_day_t){0, 9};
  h.freq = MQ_RRULE_WEEKLY;
  assert_int_equal(mq_recur_expand(&h, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INVALID_ARGUMENT);
  /* Caller bugs. */
  assert_int_equal(mq_recur_expand(NULL, "2027-03-01T10:00", "UTC", 4, out, &n, &trunc, &e), MQ_INTERNAL);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 4, NULL, &n, &trunc, &e), MQ_INTERNAL);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 4, out, NULL, &trunc, &e), MQ_INTERNAL);
  assert_int_equal(mq_recur_expand(&r, "2027-03-01T10:00", "UTC", 4, out, &n, NULL, &e), MQ_INTERNAL);
}

/* ---- after the last TZif transition: the footer rule ------------------------------------------------------------ */

static void test_far_future_footer(void **state) {
  (void)state;
  /* Berlin 2040 (zdump: CEST from 2040-03-25 01:00Z to 2040-10-28 01:00Z). */
  series_t s = expand("FREQ=WEEKLY;COUNT=3", "2040-03-17T19:30", "Europe/Berlin", 10);
  static const int64_t spring[] = {2215621800, 2216226600, 2216827800};
  expect_series(&s, spring, 3);
  s = expand("FREQ=WEEKLY;COUNT=3", "2040-10-20T19:30", "Europe/Berlin", 10);
  static const int64_t autumn[] = {2234367000, 2234971800, 2235580200};
  expect_series(&s, autumn, 3);
  int64_t t;
  mq_error_t e = fresh_error();
  assert_int_equal(mq_local_to_utc("2040-03-25T02:30", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, 2216251800); /* the gap: = 03:30 CEST */
  assert_int_equal(mq_local_to_utc("2040-10-28T02:30", "Europe/Berlin", &t, &e), MQ_OK);
  assert_int_equal(t, 2234997000); /* the overlap: the CEST one */
  /* New York 2045, Sydney 2040 (date). */
  s = expand("FREQ=WEEKLY;COUNT=2", "2045-03-05T09:00", "America/New_York", 10);
  static const int64_t ny1[] = {2372335200, 2372936400};
  expect_series(&s, ny1, 2);
  s = expand("FREQ=WEEKLY;COUNT=2", "2045-10-29T09:00", "America/New_York", 10);
  static const int64_t ny2[] = {2392894800, 2393503200};
  expect_series(&s, ny2, 2);
  s = expand("FREQ=WEEKLY;COUNT=2", "2040-03-25T20:00", "Australia/Sydney", 10);
  static const int64_t syd1[] = {2216278800, 2216887200};
  expect_series(&s, syd1, 2);
  s = expand("FREQ=WEEKLY;COUNT=2", "2040-09-30T20:00", "Australia/Sydney", 10);
  static const int64_t syd2[] = {2232612000, 2233213200};
  expect_series(&s, syd2, 2);
  /* Footers with unusual rules (date): Nuuk "<-02>2<-01>,M3.5.0/-1,M10.5.0/0" (negative
   * time, quoted names), Jerusalem "IST-2IDT,M3.4.4/26,M10.5.0" (hour 26), Dublin
   * "IST-1GMT0,M10.5.0,M3.5.0/1" (negative DST: winter is the "DST" period). */
  static const struct {
    const char *tz, *local;
    int64_t want;
  } odd[] = {
      {"America/Nuuk", "2040-03-24T12:00", 2216210400},   {"America/Nuuk", "2040-03-25T12:00", 2216293200},
      {"America/Nuuk", "2040-10-27T12:00", 2234955600},   {"America/Nuuk", "2040-10-28T12:00", 2235045600},
      {"Asia/Jerusalem", "2040-03-22T12:00", 2216023200}, {"Asia/Jerusalem", "2040-03-23T12:00", 2216106000},
      {"Asia/Jerusalem", "2040-10-27T12:00", 2234941200}, {"Asia/Jerusalem", "2040-10-28T12:00", 2235031200},
      {"Europe/Dublin", "2040-03-24T12:00", 2216203200},  {"Europe/Dublin", "2040-03-25T12:00", 2216286000},
      {"Europe/Dublin", "2040-10-27T12:00", 2234948400},  {"Europe/Dublin", "2040-10-28T12:00", 2235038400},
      {"Europe/Berlin", "2100-07-01T12:00", 4118119200},  {"Europe/Berlin", "2399-12-01T12:00", 13566826800},
  };
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    assert_int_equal(mq_local_to_utc(odd[i].local, odd[i].tz, &t, &e), MQ_OK);
    if (t != odd[i].want)
      fail_msg("%s %s: %lld, expected %lld", odd[i].tz, odd[i].local, (long long)t, (long long)odd[i].want);
  }
  /* The EU rule, recomputed here, over 2038..2100 at 19:30 on each last Sunday and the days around it. */
  for (int y = 2038; y <= 2100; y++) {
    for (int k = 0; k < 2; k++)
      for (int dd = 0; dd < 3; dd++) {
        char local[32];
        int yy = y, m = k ? 10 : 3, d = last_sunday(y, m) - 1;
        t_add_days(&yy, &m, &d, dd); /* the Saturday, the Sunday, the Monday (maybe in April/November) */
        snprintf(local, sizeof local, "%04d-%02d-%02dT19:30", yy, m, d);
        assert_int_equal(mq_local_to_utc(local, "Europe/Berlin", &t, &e), MQ_OK);
        int64_t l = t_utc(yy, m, d, 19, 30);
        assert_int_equal(t, l - eu_offset(l - 7200, y));
      }
  }
}

/* ---- synthetic TZif files in a temporary $TZDIR ------------------------------------------------------------ */

typedef struct {
  uint8_t b[8192];
  size_t n;
} blob_t;

static void b_put(blob_t *b, const void *p, size_t n) {
  if (!n) return;
  assert_true(b->n + n <= sizeof b->b);
  memcpy(b->b + b->n, p, n);
  b->n += n;
}
static void b_be32(blob_t *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  b_put(b, x, 4);
}
static void b_be64(blob_t *b, int64_t v) {
  b_be32(b, (uint32_t)((uint64_t)v >> 32));
  b_be32(b, (uint32_t)v);
}

/* A TZif file: version '\0' (32-bit data only) or '2'..'4' (a minimal v1 block,
 * then 64-bit data and the footer). Types are (utoff, isdst) with one "X" name. */
static blob_t tzif_make(char version, const int64_t *trans, const uint8_t *idx, size_t ntrans, const int32_t *utoff,
                        size_t ntypes, const char *footer) {
  blob_t b = {.n = 0};
  int pass_count = version ? 2 : 1;
  for (int pass = 0; pass < pass_count; pass++) {
    bool real = pass == pass_count - 1, wide = version && pass == 1;
    size_t nt = real ? ntrans : 0, nty = real ? ntypes : 1;
    b_put(&b, "TZif", 4);
    b_put(&b, &version, 1);
    b_put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
    b_be32(&b, 0);             /* isutcnt */
    b_be32(&b, 0);             /* isstdcnt */
    b_be32(&b, 0);             /* leapcnt */
    b_be32(&b, (uint32_t)nt);  /* timecnt */
    b_be32(&b, (uint32_t)nty); /* typecnt */
    b_be32(&b, 2);             /* charcnt */
    for (size_t i = 0; i < nt; i++) {
      if (wide)
        b_be64(&b, trans[i]);
      else
        b_be32(&b, (uint32_t)trans[i]);
    }
    if (nt) b_put(&b, idx, nt);
    for (size_t i = 0; i < nty; i++) {
      b_be32(&b, (uint32_t)(real ? utoff[i] : 0));
      b_put(&b, "\0\0", 2); /* isdst, desigidx */
    }
    b_put(&b, "X", 2);
  }
  if (version) {
    b_put(&b, "\n", 1);
    b_put(&b, footer, strlen(footer));
    b_put(&b, "\n", 1);
  }
  return b;
}

static char tzdir[256];

static void write_zone(const char *name, const void *p, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tzdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}
static void remove_zone(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tzdir, name);
  unlink(path);
}

static int tzdir_setup(void **state) {
  (void)state;
  snprintf(tzdir, sizeof tzdir, "%s/mq-recur-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tzdir)) return -1;
  char sub[300];
  snprintf(sub, sizeof sub, "%s/Test", tzdir);
  if (mkdir(sub, 0700) != 0) return -1;
  return setenv("TZDIR", tzdir, 1);
}
/* Also runs after a failed test: removes whatever zone files it left. */
static int tzdir_teardown(void **state) {
  (void)state;
  char sub[300];
  snprintf(sub, sizeof sub, "%s/Test", tzdir);
  DIR *d = opendir(sub);
  if (d) {
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      char path[600];
      if (de->d_name[0] == '.') continue;
      snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(sub);
  rmdir(tzdir);
  return unsetenv("TZDIR");
}

static int32_t offset_of(const char *tz, int64_t t) {
  int32_t off = INT32_MIN;
  mq_error_t e = fresh_error();
  if (mq_tz_offset(tz, t, &off, &e) != MQ_OK) fail_msg("%s: %s: %s", tz, e.field, e.message);
  return off;
}

static void test_footer_only_zones(void **state) {
  (void)state;
  /* A slim-style zone: no transitions, only the footer. It must agree with the
   * real (fat) Europe/Berlin at, and one second before, every hour of 1997..2037. */
  const int32_t cet[] = {3600};
  blob_t z = tzif_make('2', NULL, NULL, 0, cet, 1, "CET-1CEST,M3.5.0,M10.5.0/3");
  write_zone("Test/SlimBerlin", z.b, z.n);
  char link[512];
  snprintf(link, sizeof link, "%s/Test/RealBerlin", tzdir);
  assert_int_equal(symlink("/usr/share/zoneinfo/Europe/Berlin", link), 0);
  for (int64_t t = t_utc(1997, 1, 1, 0, 0); t < t_utc(2037, 12, 31, 0, 0); t += 3600) {
    assert_int_equal(offset_of("Test/SlimBerlin", t), offset_of("Test/RealBerlin", t));
    assert_int_equal(offset_of("Test/SlimBerlin", t - 1), offset_of("Test/RealBerlin", t - 1));
  }
  for (int y = 1997; y <= 2037; y += 8) {
    int64_t t = t_utc(y, 3, last_sunday(y, 3), 1, 0);
    assert_int_equal(offset_of("Test/SlimBerlin", t - 1), 3600);
    assert_int_equal(offset_of("Test/SlimBerlin", t), 7200);
  }
  /* Extreme instants (the footer's year arithmetic must not overflow: UBSan). */
  assert_int_equal(offset_of("Test/SlimBerlin", INT64_MAX), 3600);
  assert_int_equal(offset_of("Test/SlimBerlin", INT64_MIN), 3600);
  assert_int_equal(offset_of("Test/RealBerlin", INT64_MAX), 3600);
  (void)offset_of("Test/RealBerlin", INT64_MIN); /* LMT: before the first transition */
  mq_error_t e = fresh_error();
  int64_t a, b;
  assert_int_equal(mq_local_to_utc("2027-03-28T02:30", "Test/SlimBerlin", &a, &e), MQ_OK);
  assert_int_equal(mq_local_to_utc("2027-03-28T02:30", "Test/RealBerlin", &b, &e), MQ_OK);
  assert_int_equal(a, 1806197400);
  assert_int_equal(b, 1806197400);
  remove_zone("Test/RealBerlin");

  /* Permanent DST written as a rule (RFC 8536 §3.3.1): EDT all year. */
  const int32_t est[] = {-18000};
  z = tzif_make('3', NULL, NULL, 0, est, 1, "EST5EDT,0/0,J365/25");
  write_zone("Test/AllYearDST", z.b, z.n);
  static const int md[][2] = {{1, 1}, {3, 15}, {6, 30}, {11, 10}, {12, 31}};
  for (int y = 2030; y <= 2033; y++)
    for (size_t i = 0; i < sizeof md / sizeof md[0]; i++) {
      assert_int_equal(offset_of("Test/AllYearDST", t_utc(y, md[i][0], md[i][1], 0, 30)), -14400);
      assert_int_equal(offset_of("Test/AllYearDST", t_utc(y, md[i][0], md[i][1], 23, 30)), -14400);
    }
  /* Julian-day rules: J60 is always March 1, 60 (zero-based) is Feb 29 or Mar 1. */
  const int32_t zero[] = {0};
  z = tzif_make('2', NULL, NULL, 0, zero, 1, "AAA0BBB,J60/0,J305/0");
  write_zone("Test/Julian", z.b, z.n);
  assert_int_equal(offset_of("Test/Julian", t_utc(2028, 2, 29, 23, 59)), 0);
  assert_int_equal(offset_of("Test/Julian", t_utc(2028, 3, 1, 0, 0)), 3600);
  assert_int_equal(offset_of("Test/Julian", t_utc(2027, 3, 1, 0, 0)), 3600);
  z = tzif_make('2', NULL, NULL, 0, zero, 1, "AAA0BBB,59/0,J305/0");
  write_zone("Test/ZeroBased", z.b, z.n);
  assert_int_equal(offset_of("Test/ZeroBased", t_utc(2028, 2, 28, 23, 59)), 0);
  assert_int_equal(offset_of("Test/ZeroBased", t_utc(2028, 2, 29, 0, 0)), 3600);
  assert_int_equal(offset_of("Test/ZeroBased", t_utc(2027, 3, 1, 0, 0)), 3600);
  /* No DST, a quoted name with minutes and seconds. */
  z = tzif_make('2', NULL, NULL, 0, zero, 1, "<+0545>-5:45");
  write_zone("Test/Quoted", z.b, z.n);
  assert_int_equal(offset_of("Test/Quoted", 0), 20700);
  /* An empty footer: the last transition's type forever. */
  const int64_t tr[] = {1000000000};
  const uint8_t ix[] = {1};
  const int32_t two[] = {0, 7200};
  z = tzif_make('2', tr, ix, 1, two, 2, "");
  write_zone("Test/NoFooter", z.b, z.n);
  assert_int_equal(offset_of("Test/NoFooter", 999999999), 0);
  assert_int_equal(offset_of("Test/NoFooter", 1000000000), 7200);
  assert_int_equal(offset_of("Test/NoFooter", INT64_MAX / 4), 7200);
  /* A version 1 file (32-bit data, no footer). */
  z = tzif_make('\0', tr, ix, 1, two, 2, NULL);
  write_zone("Test/Version1", z.b, z.n);
  assert_int_equal(offset_of("Test/Version1", 999999999), 0);
  assert_int_equal(offset_of("Test/Version1", 1000000000), 7200);

  /* Footers this reader refuses: the zone is then unreadable (MQ_INTERNAL), never guessed. */
  static const char *const bad_footers[] = {"CET-1CEST",
                                            "CET-1CEST,M3.5.0",
                                            "CET-1CEST,M13.5.0,M10.5.0",
                                            "CET-1CEST,M3.6.0,M10.5.0",
                                            "CET-1CEST,M3.5.7,M10.5.0",
                                            "CE-1",
                                            "CET",
                                            "CET-25",
                                            "<CET-1",
                                            "CET-1CEST,J0,J365",
                                            "CET-1CEST,366,J365",
                                            "CET-1CEST,M3.5.0/168,M10.5.0",
                                            "CET-1CEST,M3.5.0,M10.5.0x"};
  for (size_t i = 0; i < sizeof bad_footers / sizeof bad_footers[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "Test/BadFooter%zu", i);
    z = tzif_make('2', NULL, NULL, 0, cet, 1, bad_footers[i]);
    write_zone(name, z.b, z.n);
    int64_t t;
    e = fresh_error();
    if (mq_local_to_utc("2030-01-01T00:00", name, &t, &e) != MQ_INTERNAL) fail_msg("footer %zu accepted", i);
    assert_string_equal(e.field, "time_zone");
    assert_non_null(strstr(e.message, "unreadable"));
    remove_zone(name);
  }
  remove_zone("Test/SlimBerlin");
  remove_zone("Test/AllYearDST");
  remove_zone("Test/Julian");
  remove_zone("Test/ZeroBased");
  remove_zone("Test/Quoted");
  remove_zone("Test/NoFooter");
  remove_zone("Test/Version1");
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 32);
}

/* Every truncation and random mutations of the real Europe/Berlin file: loading
 * either works or fails with MQ_INTERNAL/INVALID_ARGUMENT; nothing is read out of bounds. */
static void test_corrupt_tzif(void **state) {
  (void)state;
  static uint8_t real[65536];
  FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
  assert_non_null(f);
  size_t n = fread(real, 1, sizeof real, f);
  fclose(f);
  assert_true(n > 1000 && n < sizeof real);
  size_t ok = 0;
  for (size_t k = 0; k <= n; k++) {
    char name[64];
    snprintf(name, sizeof name, "Test/Cut%zu", k);
    write_zone(name, real, k);
    int32_t off;
    mq_error_t e = fresh_error();
    mq_code_t rc = mq_tz_offset(name, 1820000000, &off, &e); /* 2027-09-01: CEST */
    if (k == n) {
      assert_int_equal(rc, MQ_OK);
      assert_int_equal(off, 7200);
      ok++;
    } else if (rc != MQ_INTERNAL && rc != MQ_INVALID_ARGUMENT) {
      fail_msg("a file cut at %zu bytes gave %d", k, (int)rc);
    }
    remove_zone(name);
  }
  static uint8_t m[65536];
  for (int round = 0; round < 700; round++) { /* > 512: the uncached path is used too */
    memcpy(m, real, n);
    int edits = 1 + (int)(rnd() % 3);
    for (int i = 0; i < edits; i++) m[rnd() % n] = (uint8_t)rnd();
    if (round % 7 == 0)
      memcpy(m + n - 28,
             "\n"
             "CET-1CEST,M3.5.0,M10.5.0/3"
             "\n",
             28); /* keep the footer */
    char name[64];
    snprintf(name, sizeof name, "Test/Mut%d", round);
    write_zone(name, m, n);
    int32_t off;
    int64_t t;
    char buf[32];
    mq_error_t e = fresh_error();
    mq_code_t rc = mq_tz_offset(name, (int64_t)(rnd() % 4000000000u), &off, &e);
    if (rc == MQ_OK) {
      ok++;
      assert_true(off >= -26 * 3600 && off <= 26 * 3600);
      assert_int_equal(mq_local_to_utc("2027-10-31T02:30", name, &t, &e), MQ_OK);
      assert_true(mq_utc_to_local(t, name, buf, sizeof buf) == 19);
    } else {
      /* A damaged magic number makes it "not a time zone" (mq_check_timezone); anything else "unreadable". */
      assert_true(rc == MQ_INTERNAL || (rc == MQ_INVALID_ARGUMENT && memcmp(m, "TZif", 4) != 0));
    }
    remove_zone(name);
  }
  print_message("corrupt TZif: %zu of %zu files loaded\n", ok, n + 1 + 700);
}

/* ---- threads ---------------------------------------------------------------------------------------------- */

static const char *const THREAD_ZONES[] = {"Europe/Berlin",     "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                                           "America/Sao_Paulo", "Pacific/Chatham",  "Europe/London",    "Asia/Tokyo"};
#define N_THREAD_ZONES (sizeof THREAD_ZONES / sizeof THREAD_ZONES[0])
static int64_t thread_expected[N_THREAD_ZONES][200];

/* Zones no test loads before the threads start: their first loads race. */
static const char *const FRESH_ZONES[] = {"Europe/Paris", "America/Chicago",  "Asia/Singapore",
                                          "Africa/Cairo", "America/Santiago", "Pacific/Auckland"};

static void *thread_main(void *arg) {
  size_t id = (size_t)(uintptr_t)arg;
  int bad = 0;
  for (size_t i = 0; i < sizeof FRESH_ZONES / sizeof FRESH_ZONES[0]; i++) {
    int64_t t;
    char buf[32];
    if (mq_local_to_utc("2027-07-01T12:00", FRESH_ZONES[i], &t, NULL) != MQ_OK ||
        mq_utc_to_local(t, FRESH_ZONES[i], buf, sizeof buf) != 19 || strcmp(buf, "2027-07-01T12:00:00") != 0)
      bad++;
  }
  for (int round = 0; round < 20; round++)
    for (size_t zi = 0; zi < N_THREAD_ZONES; zi++) {
      size_t z = (zi + id) % N_THREAD_ZONES;
      mq_rrule_t r;
      int64_t out[200];
      size_t n = 0;
      bool trunc;
      if (mq_rrule_parse("FREQ=WEEKLY;BYDAY=MO,FR;COUNT=200", &r, NULL) != MQ_OK ||
          mq_recur_expand(&r, "2026-01-02T19:30", THREAD_ZONES[z], 200, out, &n, &trunc, NULL) != MQ_OK || n != 200 ||
          memcmp(out, thread_expected[z], sizeof out) != 0)
        bad++;
      char buf[32];
      if (mq_utc_to_local(out[round], THREAD_ZONES[z], buf, sizeof buf) != 19 || strcmp(buf + 10, "T19:30:00") != 0)
        bad++;
    }
  return (void *)(uintptr_t)bad;
}

static void test_threads(void **state) {
  (void)state;
  for (size_t z = 0; z < N_THREAD_ZONES; z++) {
    series_t s = expand("FREQ=WEEKLY;BYDAY=MO,FR;COUNT=200", "2026-01-02T19:30", THREAD_ZONES[z], 200);
    assert_int_equal(s.n, 200);
    memcpy(thread_expected[z], s.t, sizeof thread_expected[z]);
  }
  pthread_t th[8];
  for (size_t i = 0; i < 8; i++) assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)i), 0);
  for (size_t i = 0; i < 8; i++) {
    void *bad;
    assert_int_equal(pthread_join(th[i], &bad), 0);
    assert_int_equal((uintptr_t)bad, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_accepts),
      cmocka_unit_test(test_parse_refuses),
      cmocka_unit_test(test_local_utc_basics),
      cmocka_unit_test(test_local_time_refusals),
      cmocka_unit_test(test_unknown_time_zone),
      cmocka_unit_test(test_gap_and_overlap),
      cmocka_unit_test(test_berlin_weekly_keeps_wall_time),
      cmocka_unit_test(test_new_york_and_kolkata),
      cmocka_unit_test(test_sydney_southern_dst),
      cmocka_unit_test(test_weekly_byday_interval),
      cmocka_unit_test(test_monthly_byday),
      cmocka_unit_test(test_monthly_bymonthday),
      cmocka_unit_test(test_until_and_count),
      cmocka_unit_test(test_expand_refusals),
      cmocka_unit_test(test_far_future_footer),
      cmocka_unit_test(test_threads),
      cmocka_unit_test_setup_teardown(test_footer_only_zones, tzdir_setup, tzdir_teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_tzif, tzdir_setup, tzdir_teardown),
  };
  return cmocka_run_group_tests_name("recur", tests, NULL, NULL);
}
