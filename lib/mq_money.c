/*
 * mq_money.c — see mq_money.h. The currencies and their minor units are
 * lib/mq_validate.c's ISO 4217 table (mq_currency_minor_units): one table.
 */
#include "lib/mq_money.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mq_validate.h"

bool mq_money_add(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}

bool mq_money_mul(int64_t a, int64_t n, int64_t *out) {
  return !__builtin_mul_overflow(a, n, out);
}

bool mq_money_mul_div(int64_t amount, int64_t num, int64_t den, mq_rounding_t mode, int64_t *out) {
  if (den <= 0) return false;
  __int128 p = (__int128)amount * num;
  bool neg = p < 0;
  if (neg) p = -p;
  __int128 q = p / den, r = p % den;
  __int128 twice = r * 2;
  if (twice > den || (twice == den && (mode == MQ_ROUND_HALF_UP || (q & 1)))) q++;
  if (neg) q = -q;
  if (q > INT64_MAX || q < INT64_MIN) return false;
  *out = (int64_t)q;
  return true;
}

bool mq_money_ppm(int64_t amount, int64_t ppm, int64_t *out) {
  return mq_money_mul_div(amount, ppm, 1000000, MQ_ROUND_HALF_UP, out);
}

bool mq_money_ppm_included(int64_t gross, int64_t ppm, int64_t *out) {
  int64_t net;
  if (ppm < 0 || !mq_money_mul_div(gross, 1000000, 1000000 + ppm, MQ_ROUND_HALF_UP, &net)) return false;
  *out = gross - net;
  return true;
}

size_t mq_money_format(char *buf, size_t n, int64_t minor, const char *currency) {
  int e = currency ? mq_currency_minor_units(currency) : -1;
  if (e < 0) e = 2;
  const char *cur = currency ? currency : "";
  if (e == 0) return (size_t)snprintf(buf, n, "%" PRId64 " %s", minor, cur);
  uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor, div = 1;
  for (int i = 0; i < e; i++) div *= 10;
  return (size_t)snprintf(buf, n, "%s%" PRIu64 ".%0*" PRIu64 " %s", minor < 0 ? "-" : "", mag / div, e, mag % div, cur);
}
