/*
 * mq_l10n.c — see mq_l10n.h.
 */
#include "lib/mq_l10n.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/udat.h>
#include <unicode/udatpg.h>
#include <unicode/unum.h>
#include <unicode/ustring.h>

#include "lib/mq_money.h"
#include "lib/mq_validate.h"

/* "fr-CA" -> "fr_CA" (ICU reads both; underscores are its canonical form). */
static void icu_locale(const char *in, char *out, size_t n) {
  snprintf(out, n, "%s", in && *in ? in : "en");
  for (char *p = out; *p; p++)
    if (*p == '-') *p = '_';
}

static char *utf8_of(mq_arena_t *a, const UChar *s, int32_t len) {
  UErrorCode st = U_ZERO_ERROR;
  int32_t need = 0;
  u_strToUTF8(NULL, 0, &need, s, len, &st);
  st = U_ZERO_ERROR;
  char *out = mq_arena_alloc(a, (size_t)need + 1);
  u_strToUTF8(out, need + 1, NULL, s, len, &st);
  if (U_FAILURE(st)) return NULL;
  out[need] = '\0';
  return out;
}

static char *plain_datetime(mq_arena_t *a, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char *out = mq_arena_alloc(a, 32);
  strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm);
  return out;
}

char *mq_l10n_datetime(mq_arena_t *a, int64_t ms, const char *tz, const char *locale) {
  char loc[64];
  icu_locale(locale, loc, sizeof loc);
  UChar zone[96], skeleton[32], pattern[128], out[256];
  u_uastrncpy(zone, tz && *tz ? tz : "UTC", 95);
  zone[95] = 0;
  /* is it a zone ICU knows? (an unknown one would silently be GMT under another name) */
  UErrorCode st = U_ZERO_ERROR;
  UChar canon[96];
  UBool system = false;
  ucal_getCanonicalTimeZoneID(zone, -1, canon, 96, &system, &st);
  if (U_FAILURE(st) || !system) u_uastrcpy(zone, "UTC");
  st = U_ZERO_ERROR;
  u_uastrcpy(skeleton, "yMMMdEEEjmz"); /* weekday, date, hour:minute as the locale writes them, zone */
  UDateTimePatternGenerator *g = udatpg_open(loc, &st);
  int32_t pl = U_SUCCESS(st) ? udatpg_getBestPattern(g, skeleton, -1, pattern, 128, &st) : 0;
  if (g) udatpg_close(g);
  char *res = NULL;
  if (U_SUCCESS(st) && pl > 0) {
    UDateFormat *f = udat_open(UDAT_PATTERN, UDAT_PATTERN, loc, zone, -1, pattern, pl, &st);
    int32_t ol = U_SUCCESS(st) ? udat_format(f, (UDate)ms, out, 256, NULL, &st) : 0;
    if (f) udat_close(f);
    if (U_SUCCESS(st) && ol > 0 && ol < 256) res = utf8_of(a, out, ol);
  }
  return res ? res : plain_datetime(a, ms);
}

char *mq_l10n_money(mq_arena_t *a, int64_t minor, const char *currency, const char *locale) {
  int digits = mq_currency_minor_units(currency);
  char plain[64];
  mq_money_format(plain, sizeof plain, minor, currency);
  if (digits < 0) return mq_arena_strdup(a, plain);
  char loc[64];
  icu_locale(locale, loc, sizeof loc);
  /* exact: the decimal string of the amount, which ICU formats without binary rounding */
  char dec[48];
  int64_t unit = 1;
  for (int i = 0; i < digits; i++) unit *= 10;
  int64_t whole = minor / unit, frac = minor % unit;
  if (frac < 0) frac = -frac;
  int k = snprintf(dec, sizeof dec, "%s%lld", minor < 0 && whole == 0 ? "-" : "", (long long)whole);
  if (digits > 0 && k > 0 && (size_t)k + 1 + (size_t)digits < sizeof dec) {
    dec[k++] = '.';
    for (int i = digits - 1; i >= 0; i--, frac /= 10) dec[k + i] = (char)('0' + frac % 10);
    dec[k + digits] = '\0';
  }
  UErrorCode st = U_ZERO_ERROR;
  UNumberFormat *f = unum_open(UNUM_CURRENCY, NULL, 0, loc, NULL, &st);
  UChar cur[4], out[128];
  u_uastrncpy(cur, currency, 3);
  cur[3] = 0;
  if (U_SUCCESS(st)) unum_setTextAttribute(f, UNUM_CURRENCY_CODE, cur, 3, &st);
  if (U_SUCCESS(st)) unum_setAttribute(f, UNUM_MIN_FRACTION_DIGITS, digits);
  if (U_SUCCESS(st)) unum_setAttribute(f, UNUM_MAX_FRACTION_DIGITS, digits);
  int32_t ol = U_SUCCESS(st) ? unum_formatDecimal(f, dec, -1, out, 128, NULL, &st) : 0;
  if (f) unum_close(f);
  char *res = U_SUCCESS(st) && ol > 0 && ol < 128 ? utf8_of(a, out, ol) : NULL;
  return res ? res : mq_arena_strdup(a, plain);
}
