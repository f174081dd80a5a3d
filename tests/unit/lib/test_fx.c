/*
 * test_fx.c — lib/mq_fx: rows refused with their line (and the old table
 * kept), direct, inverse and cross conversions worked by hand, effective
 * times, minor units (JPY, KWD), half-even rounding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "lib/mq_fx.h"

static int64_t at(int y, int m, int d, int hh) {
  struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hh};
  return (int64_t)timegm(&tm) * 1000;
}

static const char TABLE[] =
    "# base quote rate from\n"
    "EUR USD 1.08     2026-11-01\n"
    "EUR USD 1.10     2026-12-01T12:00:00Z\n"
    "EUR CAD 1.50     2026-11-01\n"
    "USD JPY 150      2026-11-01\n"
    "EUR KWD 0.333    2026-11-01\n";

static void test_conversions(void **state) {
  (void)state;
  mq_fx_t *fx = mq_fx_new();
  mq_error_t err = {0};
  size_t rows = 0;
  assert_int_equal(mq_fx_load(fx, TABLE, &rows, &err), MQ_OK);
  assert_int_equal(rows, 5);
  int64_t v, asof;
  /* direct: 25.00 EUR at 1.08 = 27.00 USD */
  assert_true(mq_fx_convert(fx, 2500, "EUR", "USD", at(2026, 12, 1, 11), &v, &asof));
  assert_int_equal(v, 2700);
  assert_int_equal(asof, at(2026, 11, 1, 0));
  /* the newer row from noon on: 25.00 × 1.10 = 27.50 */
  assert_true(mq_fx_convert(fx, 2500, "EUR", "USD", at(2026, 12, 1, 12), &v, NULL));
  assert_int_equal(v, 2750);
  /* before any row: unknown */
  assert_false(mq_fx_convert(fx, 2500, "EUR", "USD", at(2026, 10, 31, 23), &v, NULL));
  /* inverse: 27.50 USD at 1/1.10 = 25.00 EUR */
  assert_true(mq_fx_convert(fx, 2750, "USD", "EUR", at(2026, 12, 2, 0), &v, NULL));
  assert_int_equal(v, 2500);
  /* cross through EUR: 10.00 CAD → USD = 10 × 1.08 / 1.50 = 7.20 */
  assert_true(mq_fx_convert(fx, 1000, "CAD", "USD", at(2026, 11, 15, 0), &v, NULL));
  assert_int_equal(v, 720);
  /* into a currency without minor unit: 10.00 USD × 150 = 1500 JPY */
  assert_true(mq_fx_convert(fx, 1000, "USD", "JPY", at(2026, 11, 15, 0), &v, NULL));
  assert_int_equal(v, 1500);
  /* three decimals: 10.00 EUR × 0.333 = 3.330 KWD = 3330 */
  assert_true(mq_fx_convert(fx, 1000, "EUR", "KWD", at(2026, 11, 15, 0), &v, NULL));
  assert_int_equal(v, 3330);
  /* half even: 0.05 EUR × 1.10 = 0.055 USD → 0.06 (5 is odd: up); 0.15 × 1.10 = 0.165 → 0.16 (6 is even) */
  assert_true(mq_fx_convert(fx, 5, "EUR", "USD", at(2026, 12, 2, 0), &v, NULL));
  assert_int_equal(v, 6);
  assert_true(mq_fx_convert(fx, 15, "EUR", "USD", at(2026, 12, 2, 0), &v, NULL));
  assert_int_equal(v, 16);
  /* no path */
  assert_false(mq_fx_convert(fx, 1000, "JPY", "GBP", at(2026, 12, 2, 0), &v, NULL));
  /* same currency */
  assert_true(mq_fx_convert(fx, 1234, "GBP", "GBP", 0, &v, NULL));
  assert_int_equal(v, 1234);
  mq_fx_free(fx);
}

static void test_bad_rows_keep_the_old_table(void **state) {
  (void)state;
  mq_fx_t *fx = mq_fx_new();
  mq_error_t err = {0};
  assert_int_equal(mq_fx_load(fx, TABLE, NULL, &err), MQ_OK);
  static const struct {
    const char *text, *says;
  } bad[] = {
      {"EUR USD 1.1 2026-01-01\nEUR XXX 1.1 2026-01-01\n", "row 2: names a currency"},
      {"EUR EUR 1 2026-01-01\n", "row 1: converts a currency into itself"},
      {"EUR USD -1 2026-01-01\n", "row 1: has a RATE"},
      {"EUR USD 0 2026-01-01\n", "row 1: has a RATE"},
      {"EUR USD 1.1234567891 2026-01-01\n", "row 1: has a RATE"},
      {"EUR USD 1.1 2026-13-01\n", "row 1: has a FROM"},
      {"EUR USD 1.1 2026-01-01T10:00:00\n", "row 1: has a FROM"},
      {"EUR USD 1.1\n", "row 1: expected"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(mq_fx_load(fx, bad[i].text, NULL, &err), MQ_INVALID_ARGUMENT);
    if (!strstr(err.message, bad[i].says)) fail_msg("'%s' does not say '%s'", err.message, bad[i].says);
  }
  int64_t v;
  assert_true(mq_fx_convert(fx, 2500, "EUR", "USD", at(2026, 11, 15, 0), &v, NULL)); /* the old table */
  assert_int_equal(v, 2700);
  mq_fx_free(fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conversions),
      cmocka_unit_test(test_bad_rows_keep_the_old_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
