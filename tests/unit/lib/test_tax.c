/*
 * test_tax.c — lib/mq_tax: the built-in table loads; bad rows are refused
 * with their line; and the worked examples below, each done by hand in its
 * comment (amounts in minor units, rounding half up per line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "lib/mq_tax.h"

static mq_tax_table_t *table;

static int64_t at(int y, int m, int d, int hh, int mm, int ss) {
  struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
  return (int64_t)timegm(&tm) * 1000;
}

static int setup(void **state) {
  (void)state;
  mq_error_t err = {0};
  return mq_tax_table_parse(mq_tax_default_rows, &table, &err) == MQ_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_tax_table_free(table);
  return 0;
}

typedef struct {
  const char *what, *country, *region;
  int64_t amount;
  bool inclusive;
  int64_t net, tax, total;
  int n_lines;
  const char *l1;
  int64_t a1;
  const char *l2;
  int64_t a2;
} example_t;

static const example_t examples[] = {
    /* Toronto, 50.00 CAD before tax: HST 13% of 50.00 = 6.50 → 56.50 */
    {"Toronto", "CA", "Ontario", 5000, false, 5000, 650, 5650, 1, "HST", 650, NULL, 0},
    /* Montréal, 50.00 CAD: GST 5% = 2.50; QST 9.975% = 4.9875 → 4.99; 50.00 + 2.50 + 4.99 = 57.49 */
    {"Montreal", "CA",
     "Qu\xc3\xa9"
     "bec",
     5000, false, 5000, 749, 5749, 2, "GST", 250, "QST", 499},
    /* Vancouver, 50.00 CAD admission: GST 5% = 2.50; BC's PST is not charged on admissions → 52.50 */
    {"Vancouver", "CA", "BC", 5000, false, 5000, 250, 5250, 1, "GST", 250, NULL, 0},
    /* Berlin, 119.00 EUR with VAT: net = 119.00 / 1.19 = 100.00, VAT 19% = 19.00 */
    {"Berlin", "DE", "", 11900, true, 10000, 1900, 11900, 1, "VAT", 1900, NULL, 0},
    /* London, 25.00 GBP with VAT: net = 25.00 / 1.2 = 20.8333 → 20.83; VAT = 25.00 − 20.83 = 4.17
     * (20% of 20.83 = 4.166 → 4.17: no residue) */
    {"London", "GB", "", 2500, true, 2083, 417, 2500, 1, "VAT", 417, NULL, 0},
    /* Tokyo, 5500 JPY with consumption tax (no minor unit): net = 5500 / 1.1 = 5000, tax 500 */
    {"Tokyo", "JP", "", 5500, true, 5000, 500, 5500, 1, "JCT", 500, NULL, 0},
    /* Mumbai, 1000.00 INR before tax: GST 18% = 180.00 → 1180.00 */
    {"Mumbai", "IN", "", 100000, false, 100000, 18000, 118000, 1, "GST", 18000, NULL, 0},
    /* Lagos, 10,000.00 NGN before tax: VAT 7.5% = 750.00 → 10,750.00 */
    {"Lagos", "NG", "", 1000000, false, 1000000, 75000, 1075000, 1, "VAT", 75000, NULL, 0},
    /* a free ticket: no tax line at all */
    {"free", "CA", "QC", 0, false, 0, 0, 0, 0, NULL, 0, NULL, 0},
    /* New York: no US sales tax by default */
    {"New York", "US", "NY", 4000, false, 4000, 0, 4000, 0, NULL, 0, NULL, 0},
};

static void test_worked_examples(void **state) {
  (void)state;
  int64_t when = at(2026, 6, 1, 12, 0, 0);
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
    const example_t *x = &examples[i];
    char j[8];
    mq_tax_jurisdiction(x->country, x->region, j);
    mq_tax_result_t r;
    mq_error_t err = {0};
    print_message("%s (%s)\n", x->what, j);
    assert_int_equal(mq_tax_compute(table, j, when, MQ_SUPPLY_ADMISSION, x->amount, x->inclusive, 0, NULL, &r, &err),
                     MQ_OK);
    assert_int_equal(r.net_minor, x->net);
    assert_int_equal(r.tax_minor, x->tax);
    assert_int_equal(r.total_minor, x->total);
    assert_int_equal(r.n_lines, x->n_lines);
    assert_int_equal(r.net_minor + r.tax_minor, r.total_minor);
    if (x->l1) {
      assert_string_equal(r.lines[0].name, x->l1);
      assert_int_equal(r.lines[0].amount_minor, x->a1);
    }
    if (x->l2) {
      assert_string_equal(r.lines[1].name, x->l2);
      assert_int_equal(r.lines[1].amount_minor, x->a2);
    }
  }
}

static void test_rate_change_at_midnight(void **state) {
  (void)state;
  /* Nova Scotia's HST went from 15% to 14% on 2025-04-01: 100.00 CAD */
  mq_tax_result_t r;
  mq_error_t err = {0};
  assert_int_equal(
      mq_tax_compute(table, "CA-NS", at(2025, 3, 31, 23, 59, 59), MQ_SUPPLY_ADMISSION, 10000, false, 0, NULL, &r, &err),
      MQ_OK);
  assert_int_equal(r.tax_minor, 1500);
  assert_int_equal(
      mq_tax_compute(table, "CA-NS", at(2025, 4, 1, 0, 0, 0), MQ_SUPPLY_ADMISSION, 10000, false, 0, NULL, &r, &err),
      MQ_OK);
  assert_int_equal(r.tax_minor, 1400);
  /* BC's PST applies to what is not an admission: 50.00 → GST 2.50 + PST 3.50 */
  assert_int_equal(
      mq_tax_compute(table, "CA-BC", at(2026, 1, 1, 0, 0, 0), MQ_SUPPLY_OTHER, 5000, false, 0, NULL, &r, &err), MQ_OK);
  assert_int_equal(r.n_lines, 2);
  assert_int_equal(r.tax_minor, 600);
}

static void test_inclusive_residue_and_extra_rate(void **state) {
  (void)state;
  mq_tax_result_t r;
  mq_error_t err = {0};
  /* Montréal, 10.00 CAD with both taxes included: net = 10.00 / 1.14975 = 8.6975 → 8.70;
   * GST 5% of 8.70 = 0.435 → 0.44; QST 9.975% of 8.70 = 0.8678 → 0.87; 8.70 + 0.44 + 0.87 = 10.01,
   * so the last line gives back the cent: QST 0.86, and 8.70 + 0.44 + 0.86 = 10.00 */
  assert_int_equal(
      mq_tax_compute(table, "CA-QC", at(2026, 1, 1, 0, 0, 0), MQ_SUPPLY_ADMISSION, 1000, true, 0, NULL, &r, &err),
      MQ_OK);
  assert_int_equal(r.net_minor, 870);
  assert_int_equal(r.lines[0].amount_minor, 44);
  assert_int_equal(r.lines[1].amount_minor, 86);
  assert_int_equal(r.total_minor, 1000);
  /* an organization's own US rate: 8.875% on 40.00 = 3.55 */
  assert_int_equal(mq_tax_compute(table, "US-NY", at(2026, 1, 1, 0, 0, 0), MQ_SUPPLY_ADMISSION, 4000, false, 88750,
                                  "NY sales tax", &r, &err),
                   MQ_OK);
  assert_int_equal(r.n_lines, 1);
  assert_string_equal(r.lines[0].name, "NY sales tax");
  assert_int_equal(r.tax_minor, 355);
}

static void test_bad_rows_are_refused_with_their_line(void **state) {
  (void)state;
  static const struct {
    const char *text, *says;
  } bad[] = {
      {"# ok\nCA-ON HST 13 2010-07-01\nXX VAT 10 2020-01-01\n", "row 3: 'XX' is not a known jurisdiction"},
      {"CA-ZZ GST 5 2008-01-01\n", "row 1: 'CA-ZZ' is not a known jurisdiction"},
      {"DE VAT 19 2021-01-01\nDE VAT 16 2020-07-01 2021-01-01\n", "row 2: DE VAT overlaps the dates of row 1"},
      {"DE VAT 19.12345 2021-01-01\n", "row 1: 'DE' has a rate"},
      {"DE VAT 100 2021-01-01\n", "row 1: 'DE' has a rate"},
      {"DE VAT 19 2021-02-30\n", "row 1: 'DE' has a FROM"},
      {"DE VAT 19 2021-02-01 2021-01-01\n", "row 1: 'DE' ends before it starts"},
      {"DE VAT 19 2021-02-01 - some\n", "row 1: 'DE' has a SUPPLY"},
      {"DE VAT\n", "row 1: expected"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mq_tax_table_t *t = NULL;
    mq_error_t err = {0};
    assert_int_equal(mq_tax_table_parse(bad[i].text, &t, &err), MQ_INVALID_ARGUMENT);
    assert_null(t);
    if (!strstr(err.message, bad[i].says)) fail_msg("'%s' does not say '%s'", err.message, bad[i].says);
  }
  /* consecutive periods touching at a day are fine */
  mq_tax_table_t *t = NULL;
  mq_error_t err = {0};
  assert_int_equal(mq_tax_table_parse("DE VAT 16 2020-07-01 2020-12-31\nDE VAT 19 2021-01-01\n", &t, &err), MQ_OK);
  mq_tax_table_free(t);
}

static void test_jurisdictions(void **state) {
  (void)state;
  char j[8];
  mq_tax_jurisdiction("CA", "quebec", j);
  assert_string_equal(j, "CA-QC");
  mq_tax_jurisdiction("CA", "Colombie-Britannique", j);
  assert_string_equal(j, "CA-BC");
  mq_tax_jurisdiction("CA", "", j);
  assert_string_equal(j, "CA");
  mq_tax_jurisdiction("US", "ny", j);
  assert_string_equal(j, "US-NY");
  mq_tax_jurisdiction("FR", "Île-de-France", j);
  assert_string_equal(j, "FR");
  assert_false(mq_tax_inclusive_by_default("CA"));
  assert_true(mq_tax_inclusive_by_default("DE"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_worked_examples),
      cmocka_unit_test(test_rate_change_at_midnight),
      cmocka_unit_test(test_inclusive_residue_and_extra_rate),
      cmocka_unit_test(test_bad_rows_are_refused_with_their_line),
      cmocka_unit_test(test_jurisdictions),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
