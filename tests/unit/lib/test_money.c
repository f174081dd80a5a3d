/*
 * test_money.c — lib/mq_money (integer money arithmetic and rounding) and
 * lib/mq_breaker (the circuit breaker, bulkhead and backoff the payment
 * gateways use). Pure logic: no store, no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/mq_breaker.h"
#include "lib/mq_money.h"

static void test_rounding(void **state) {
  (void)state;
  int64_t v;
  /* 13% of 25.00 = 3.25 exactly */
  assert_true(mq_money_ppm(2500, 130000, &v));
  assert_int_equal(v, 325);
  /* 9.975% of 10.00 = 0.9975 → 1.00 (half up) */
  assert_true(mq_money_ppm(1000, 99750, &v));
  assert_int_equal(v, 100);
  /* exactly half: 5% of 0.10 = 0.005 → 0.01 half up; half even keeps 0.00 */
  assert_true(mq_money_mul_div(10, 50000, 1000000, MQ_ROUND_HALF_UP, &v));
  assert_int_equal(v, 1);
  assert_true(mq_money_mul_div(10, 50000, 1000000, MQ_ROUND_HALF_EVEN, &v));
  assert_int_equal(v, 0);
  assert_true(mq_money_mul_div(30, 50000, 1000000, MQ_ROUND_HALF_EVEN, &v)); /* 0.015 → 0.02 */
  assert_int_equal(v, 2);
  /* negative amounts round away from zero, symmetrically */
  assert_true(mq_money_mul_div(-10, 50000, 1000000, MQ_ROUND_HALF_UP, &v));
  assert_int_equal(v, -1);
  /* VAT included: 119.00 gross at 19% holds 19.00 of VAT */
  assert_true(mq_money_ppm_included(11900, 190000, &v));
  assert_int_equal(v, 1900);
  /* 10.00 gross at 20%: net 8.333… → 8.33, VAT 1.67 */
  assert_true(mq_money_ppm_included(1000, 200000, &v));
  assert_int_equal(v, 167);
}

static void test_overflow_is_reported(void **state) {
  (void)state;
  int64_t v;
  assert_false(mq_money_add(INT64_MAX, 1, &v));
  assert_false(mq_money_mul(INT64_MAX / 2, 3, &v));
  assert_true(mq_money_mul(1000, 3, &v));
  assert_int_equal(v, 3000);
  /* the intermediate product may exceed int64: the result does not */
  assert_true(mq_money_mul_div(INT64_MAX / 2, 2, 4, MQ_ROUND_HALF_UP, &v));
  assert_false(mq_money_mul_div(INT64_MAX, 3, 1, MQ_ROUND_HALF_UP, &v));
  assert_false(mq_money_mul_div(1, 1, 0, MQ_ROUND_HALF_UP, &v));
}

static void test_format_by_minor_unit(void **state) {
  (void)state;
  char b[64];
  mq_money_format(b, sizeof b, 2500, "CAD");
  assert_string_equal(b, "25.00 CAD");
  mq_money_format(b, sizeof b, 2500, "JPY");
  assert_string_equal(b, "2500 JPY");
  mq_money_format(b, sizeof b, 1250, "KWD");
  assert_string_equal(b, "1.250 KWD");
  mq_money_format(b, sizeof b, -5, "EUR");
  assert_string_equal(b, "-0.05 EUR");
  mq_money_format(b, sizeof b, 7, "XOF");
  assert_string_equal(b, "7 XOF");
}

static void test_breaker_cycle(void **state) {
  (void)state;
  mq_breaker_t *b = mq_breaker_new(NULL, 3, 1000, 2);
  int64_t t = 1000000;
  /* two failures: still closed; a success resets the count */
  for (int i = 0; i < 2; i++) {
    assert_true(mq_breaker_allow(b, t));
    mq_breaker_record(b, false, t);
  }
  assert_int_equal(mq_breaker_state(b, t), MQ_BREAKER_CLOSED);
  assert_true(mq_breaker_allow(b, t));
  mq_breaker_record(b, true, t);
  for (int i = 0; i < 3; i++) {
    assert_true(mq_breaker_allow(b, t));
    mq_breaker_record(b, false, t);
  }
  /* the third failure in a row opens it */
  assert_int_equal(mq_breaker_state(b, t), MQ_BREAKER_OPEN);
  assert_false(mq_breaker_allow(b, t + 999));
  /* after open_ms: half-open, one probe at a time */
  assert_int_equal(mq_breaker_state(b, t + 1000), MQ_BREAKER_HALF_OPEN);
  assert_true(mq_breaker_allow(b, t + 1000));
  assert_false(mq_breaker_allow(b, t + 1001));
  /* the probe fails: open again, for another open_ms */
  mq_breaker_record(b, false, t + 1002);
  assert_int_equal(mq_breaker_state(b, t + 1500), MQ_BREAKER_OPEN);
  assert_true(mq_breaker_allow(b, t + 2002));
  mq_breaker_record(b, true, t + 2003);
  assert_int_equal(mq_breaker_state(b, t + 2003), MQ_BREAKER_CLOSED);
  assert_string_equal(mq_breaker_state_name(MQ_BREAKER_HALF_OPEN), "half-open");
  /* the bulkhead */
  assert_true(mq_breaker_enter(b));
  assert_true(mq_breaker_enter(b));
  assert_false(mq_breaker_enter(b));
  mq_breaker_leave(b);
  assert_true(mq_breaker_enter(b));
  mq_breaker_leave(b);
  mq_breaker_leave(b);
  mq_breaker_free(b);
}

static void test_backoff_grows_with_jitter(void **state) {
  (void)state;
  for (int i = 0; i < 100; i++) {
    int64_t d1 = mq_backoff_ms(1, 100, 10000), d4 = mq_backoff_ms(4, 100, 10000), d20 = mq_backoff_ms(20, 100, 10000);
    assert_true(d1 >= 50 && d1 < 100);
    assert_true(d4 >= 400 && d4 < 800);
    assert_true(d20 >= 5000 && d20 < 10000);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rounding),
      cmocka_unit_test(test_overflow_is_reported),
      cmocka_unit_test(test_format_by_minor_unit),
      cmocka_unit_test(test_breaker_cycle),
      cmocka_unit_test(test_backoff_grows_with_jitter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
