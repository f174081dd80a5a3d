/*
 * mq_fx.c — see mq_fx.h. A rate is kept as num / 10^9 (an integer number
 * of billionths), so every conversion is integer arithmetic in 128 bits.
 */
#include "lib/mq_fx.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_xmalloc.h"
#include "lib/mq_file.h"
#include "lib/mq_validate.h"

#define SCALE 1000000000LL /* rates in billionths */

typedef struct {
  char base[4], quote[4];
  int64_t num; /* rate × 10^9 */
  int64_t from_ms;
} rate_t;

struct mq_fx {
  pthread_rwlock_t lock;
  rate_t *rows;
  size_t n;
};

mq_fx_t *mq_fx_new(void) {
  mq_fx_t *fx = mq_xcalloc(1, sizeof *fx);
  pthread_rwlock_init(&fx->lock, NULL);
  return fx;
}

void mq_fx_free(mq_fx_t *fx) {
  if (!fx) return;
  pthread_rwlock_destroy(&fx->lock);
  free(fx->rows);
  free(fx);
}

/* "1.0842" → 1084200000; -1 if not a positive decimal (<= 12 + 9 digits). */
static int64_t parse_rate(const char *s) {
  int64_t whole = 0, frac = 0;
  int wd = 0, fd = 0;
  const char *p = s;
  for (; isdigit((unsigned char)*p); p++) {
    if (++wd > 12) return -1;
    whole = whole * 10 + (*p - '0');
  }
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++) {
      if (++fd > 9) return -1;
      frac = frac * 10 + (*p - '0');
    }
    if (!fd) return -1;
  }
  if (*p || !wd) return -1;
  for (int i = fd; i < 9; i++) frac *= 10;
  int64_t v = whole * SCALE + frac;
  return v > 0 ? v : -1;
}

/* "2026-12-01" or "2026-12-01T08:30:00Z" → unix ms; -1 otherwise. */
static int64_t parse_time(const char *s) {
  int y, mo, d, h = 0, mi = 0, se = 0;
  char tail[4] = "";
  int n = sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%3s", &y, &mo, &d, &h, &mi, &se, tail);
  if (n == 3 && strlen(s) != 10) return -1;
  if (n != 3 && (n != 7 || strcmp(tail, "Z"))) return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se};
  time_t t = timegm(&tm);
  if (tm.tm_mday != d) return -1;
  return (int64_t)t * 1000;
}

mq_code_t mq_fx_load(mq_fx_t *fx, const char *text, size_t *rows, mq_error_t *err) {
  rate_t *v = NULL;
  size_t n = 0, cap = 0;
  mq_rows_t rr;
  mq_rows_init(&rr, text);
  for (int got; (got = mq_rows_next(&rr)) != 0;) {
    int line = rr.line, nf = rr.nf;
    char **f = rr.f;
    if (got < 0) {
      free(v);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "rates", "row %d: longer than %d bytes", line, MQ_ROW_MAX);
    }
    const char *why = NULL;
    rate_t r = {0};
    if (nf != 4)
      why = "expected BASE QUOTE RATE FROM";
    else if (mq_currency_minor_units(f[0]) < 0 || mq_currency_minor_units(f[1]) < 0)
      why = "names a currency that is not an ISO 4217 currency with a minor unit";
    else if (!strcmp(f[0], f[1]))
      why = "converts a currency into itself";
    else if ((r.num = parse_rate(f[2])) < 0)
      why = "has a RATE that is not a positive decimal (at most 9 decimals)";
    else if ((r.from_ms = parse_time(f[3])) < 0)
      why = "has a FROM that is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ";
    if (why) {
      free(v);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "rates", "row %d: %s", line, why);
    }
    snprintf(r.base, sizeof r.base, "%s", f[0]);
    snprintf(r.quote, sizeof r.quote, "%s", f[1]);
    if (n == cap) v = mq_xrealloc(v, (cap = cap ? cap * 2 : 32) * sizeof *v);
    v[n++] = r;
  }
  pthread_rwlock_wrlock(&fx->lock);
  free(fx->rows);
  fx->rows = v;
  fx->n = n;
  pthread_rwlock_unlock(&fx->lock);
  if (rows) *rows = n;
  return MQ_OK;
}

/* Under the read lock: the latest row base→quote not after `at`, or NULL. */
static const rate_t *latest(const mq_fx_t *fx, const char *base, const char *quote, int64_t at) {
  const rate_t *best = NULL;
  for (size_t i = 0; i < fx->n; i++) {
    const rate_t *r = &fx->rows[i];
    if (r->from_ms > at || strcmp(r->base, base) || strcmp(r->quote, quote)) continue;
    if (!best || r->from_ms > best->from_ms) best = r;
  }
  return best;
}

/* x = a × b / c, rounded half even; false on overflow or c == 0. */
static bool mul_div(__int128 a, __int128 b, __int128 c, int64_t *x) {
  __int128 p;
  if (c == 0 || __builtin_mul_overflow(a, b, &p)) return false;
  bool neg = (p < 0) != (c < 0);
  if (p < 0) p = -p;
  if (c < 0) c = -c;
  __int128 q = p / c, r = p % c;
  if (2 * r > c || (2 * r == c && (q & 1))) q++;
  if (neg) q = -q;
  if (q > INT64_MAX || q < INT64_MIN) return false;
  *x = (int64_t)q;
  return true;
}

static __int128 pow10i(int e) {
  __int128 v = 1;
  while (e-- > 0) v *= 10;
  return v;
}

bool mq_fx_convert(mq_fx_t *fx, int64_t amount_minor, const char *from, const char *to, int64_t at_ms, int64_t *out,
                   int64_t *as_of_ms) {
  int ef = mq_currency_minor_units(from), et = mq_currency_minor_units(to);
  if (ef < 0 || et < 0) return false;
  if (!strcmp(from, to)) {
    *out = amount_minor;
    if (as_of_ms) *as_of_ms = at_ms;
    return true;
  }
  /* to/from as a fraction num/den of rates (each × 10^9) */
  __int128 num = 0, den = 0;
  int64_t as_of = 0;
  pthread_rwlock_rdlock(&fx->lock);
  const rate_t *d = latest(fx, from, to, at_ms), *inv = d ? NULL : latest(fx, to, from, at_ms);
  if (d) {
    num = d->num, den = SCALE, as_of = d->from_ms;
  } else if (inv) {
    num = SCALE, den = inv->num, as_of = inv->from_ms;
  } else { /* through a base that has both: to/from = (base→to)/(base→from) */
    for (size_t i = 0; i < fx->n && !den; i++) {
      const rate_t *a = latest(fx, fx->rows[i].base, from, at_ms), *b = latest(fx, fx->rows[i].base, to, at_ms);
      if (a && b) {
        num = b->num, den = a->num;
        as_of = a->from_ms < b->from_ms ? a->from_ms : b->from_ms;
      }
    }
  }
  pthread_rwlock_unlock(&fx->lock);
  if (!den) return false;
  /* minor_to = minor_from × (num/den) × 10^et / 10^ef */
  __int128 n2, d2;
  if (__builtin_mul_overflow(num, pow10i(et), &n2) || __builtin_mul_overflow(den, pow10i(ef), &d2) ||
      !mul_div(amount_minor, n2, d2, out))
    return false;
  if (as_of_ms) *as_of_ms = as_of;
  return true;
}
