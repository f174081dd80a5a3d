/*
 * test_l10n.c — dates and money in the reader's language (lib/mq_l10n.h,
 * ICU): the zone and the locale change the words and the figures, amounts
 * stay exact, and bad input falls back instead of failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/mq_arena.h"
#include "lib/mq_l10n.h"

#define T_MS 1765040400000LL /* 2025-12-06 17:00:00 UTC, a Saturday */

static void has(const char *s, const char *needle) {
  if (!strstr(s, needle)) fail_msg("\"%s\" does not contain \"%s\"", s, needle);
}

static void test_datetime(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  char *en = mq_l10n_datetime(&a, T_MS, "America/Toronto", "en");
  has(en, "Dec");
  has(en, "2025");
  has(en, "12:00"); /* 17:00 UTC is noon in Toronto */
  has(en, "Sat");
  char *fr = mq_l10n_datetime(&a, T_MS, "Europe/Paris", "fr-FR");
  has(fr, "déc");
  has(fr, "18:00"); /* 24-hour clock, an hour ahead of UTC */
  has(fr, "sam");
  char *de = mq_l10n_datetime(&a, T_MS, "Asia/Kolkata", "de");
  has(de, "22:30"); /* +5:30 */
  char *ja = mq_l10n_datetime(&a, T_MS, "Asia/Tokyo", "ja");
  has(ja, "2025");
  has(ja, "12"); /* the month */
  /* an unknown zone is UTC, an unknown locale still formats */
  char *bad = mq_l10n_datetime(&a, T_MS, "Mars/Olympus", "xx-YY");
  has(bad, "17:00");
  char *none = mq_l10n_datetime(&a, T_MS, NULL, NULL);
  has(none, "2025");
  mq_arena_release(&a);
}

static void test_money(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  has(mq_l10n_money(&a, 1250, "EUR", "en"), "€12.50");
  char *fr = mq_l10n_money(&a, 1250, "EUR", "fr");
  has(fr, "12,50");
  has(fr, "€");
  has(mq_l10n_money(&a, 150000, "JPY", "ja"), "150,000");                         /* no minor unit */
  has(mq_l10n_money(&a, 123456789012345LL, "USD", "en"), "1,234,567,890,123.45"); /* exact, no binary rounding */
  has(mq_l10n_money(&a, 5, "KWD", "en"), "0.005");                                /* three decimals */
  has(mq_l10n_money(&a, -250, "CHF", "de-CH"), "2.50");
  has(mq_l10n_money(&a, 1250, "ZZZ", "en"), "ZZZ"); /* not a currency: the plain form */
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_datetime),
      cmocka_unit_test(test_money),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
