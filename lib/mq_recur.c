/*
 * mq_recur.c — RRULE parsing and expansion, and the TZif reader behind the
 * local <-> UTC conversions (mq_recur.h).
 *
 * Layout: civil-date arithmetic (days since 1970-01-01, proleptic
 * Gregorian, Howard Hinnant's algorithms), the POSIX TZ footer rule, the
 * TZif parser, the zone cache, local <-> UTC, the RRULE parser, expansion.
 *
 * Invariants:
 *   - A tz_zone_t is immutable once parsed; the cache only ever adds zones
 *     (it never frees or replaces one), so a pointer taken under the mutex
 *     stays valid without it. Lookups hold the mutex for a scan of at most
 *     TZ_CACHE_MAX entries; parsing happens outside it (two threads may
 *     parse the same zone; the loser frees its copy).
 *   - "Local seconds" are wall-clock seconds since 1970-01-01T00:00:00 read
 *     as if the zone were UTC; an instant is local seconds minus the UTC
 *     offset in effect at that instant.
 *   - Every read of TZif data is bounds-checked against the file size (the
 *     file is trusted only as far as being a file: a corrupt one is refused
 *     with MQ_INTERNAL, never read out of bounds).
 *   - Client text reaches messages only through quote() (printable ASCII,
 *     at most 32 bytes), as in mq_validate.c.
 *
 * Read next: tests/unit/lib/test_recur.c.
 */
#include "lib/mq_recur.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mq_validate.h"

#define FIELD_RULE "recurrence"
#define FIELD_TZ "time_zone"
#define DAY 86400
#define QUOTE_MAX 32
#define TZ_CACHE_MAX 512
#define TZ_FILE_MAX (1 << 20)

/* ---- civil dates --------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday). */
static unsigned iso_weekday(int64_t days) {
  return (unsigned)(((days % 7) + 7 + 3) % 7);
}

/* The first and last day we ever produce or accept. */
#define YEAR_MIN 1900
#define YEAR_MAX 9999
static int64_t last_day(void) {
  return days_from_civil(YEAR_MAX, 12, 31);
}

/* ---- POSIX TZ rule (the TZif footer) ------------------------------------------------------------ */

typedef struct {
  char kind; /* 'J' Julian 1..365 without Feb 29, 'N' zero-based 0..365, 'M' month.week.day */
  int n, m, w, d;
  int32_t time; /* seconds after local midnight, -167h..167h */
} tz_date_rule_t;

typedef struct {
  int32_t std_off, dst_off; /* seconds east of UTC */
  bool has_dst;
  tz_date_rule_t start, end;
} tz_posix_t;

static bool parse_num(const char **pp, int lo, int hi, int *out) {
  const char *p = *pp;
  int v = 0, digits = 0;
  while (isdigit((unsigned char)*p) && digits < 4) v = v * 10 + (*p++ - '0'), digits++;
  if (!digits || isdigit((unsigned char)*p) || v < lo || v > hi) return false;
  *pp = p;
  *out = v;
  return true;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h; POSIX sign: positive is west of UTC. */
static bool parse_hms(const char **pp, int max_h, int32_t *out) {
  const char *p = *pp;
  int sign = 1, h, m = 0, s = 0;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  if (!parse_num(&p, 0, max_h, &h)) return false;
  if (*p == ':') {
    p++;
    if (!parse_num(&p, 0, 59, &m)) return false;
    if (*p == ':') {
      p++;
      if (!parse_num(&p, 0, 59, &s)) return false;
    }
  }
  *pp = p;
  *out = sign * (h * 3600 + m * 60 + s);
  return true;
}

static bool parse_tzname(const char **pp) {
  const char *p = *pp;
  size_t n = 0;
  if (*p == '<') {
    for (p++; isalnum((unsigned char)*p) || *p == '+' || *p == '-'; p++) n++;
    if (*p++ != '>') return false;
  } else {
    for (; isalpha((unsigned char)*p); p++) n++;
  }
  if (n < 3) return false;
  *pp = p;
  return true;
}

static bool parse_date_rule(const char **pp, tz_date_rule_t *r) {
  const char *p = *pp;
  memset(r, 0, sizeof *r);
  if (*p == 'J') {
    p++;
    r->kind = 'J';
    if (!parse_num(&p, 1, 365, &r->n)) return false;
  } else if (*p == 'M') {
    p++;
    r->kind = 'M';
    if (!parse_num(&p, 1, 12, &r->m) || *p++ != '.' || !parse_num(&p, 1, 5, &r->w) || *p++ != '.' ||
        !parse_num(&p, 0, 6, &r->d))
      return false;
  } else {
    r->kind = 'N';
    if (!parse_num(&p, 0, 365, &r->n)) return false;
  }
  r->time = 2 * 3600;
  if (*p == '/') {
    p++;
    if (!parse_hms(&p, 167, &r->time)) return false;
  }
  *pp = p;
  return true;
}

/* "STDoff[DST[off],start[/time],end[/time]]" (RFC 8536 §3.3). */
static bool parse_posix_tz(const char *s, tz_posix_t *tz) {
  const char *p = s;
  int32_t off;
  memset(tz, 0, sizeof *tz);
  if (!parse_tzname(&p) || !parse_hms(&p, 24, &off)) return false;
  tz->std_off = -off;
  if (!*p) return true;
  if (!parse_tzname(&p)) return false;
  tz->has_dst = true;
  tz->dst_off = tz->std_off + 3600;
  if (*p != ',') {
    if (!parse_hms(&p, 24, &off)) return false;
    tz->dst_off = -off;
  }
  /* A DST name without rules would need the implementation-defined default: refuse. */
  if (*p++ != ',' || !parse_date_rule(&p, &tz->start) || *p++ != ',' || !parse_date_rule(&p, &tz->end)) return false;
  return *p == '\0';
}

/* Local seconds (in the offset then in effect) at which rule r fires in year y. */
static int64_t rule_local(const tz_date_rule_t *r, int64_t y) {
  int64_t days;
  if (r->kind == 'J') {
    days = days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
  } else if (r->kind == 'N') {
    days = days_from_civil(y, 1, 1) + r->n;
  } else {
    int64_t first = days_from_civil(y, (unsigned)r->m, 1);
    unsigned first_wd = (iso_weekday(first) + 1) % 7; /* POSIX: 0 = Sunday */
    unsigned dom = 1 + (unsigned)((r->d - (int)first_wd + 7) % 7) + (unsigned)(r->w - 1) * 7;
    while (dom > days_in_month(y, (unsigned)r->m)) dom -= 7;
    days = first + dom - 1;
  }
  return days * DAY + r->time;
}

/* Instants beyond about a million years either way have no meaningful DST;
 * refusing them here keeps the year arithmetic below far from overflow. */
#define POSIX_T_LIMIT ((int64_t)1 << 45)

static int32_t posix_offset(const tz_posix_t *tz, int64_t t) {
  if (!tz->has_dst || t > POSIX_T_LIMIT || t < -POSIX_T_LIMIT) return tz->std_off;
  int64_t y0, yy;
  unsigned m, d;
  civil_from_days(floor_div(t, DAY), &y0, &m, &d);
  /* DST runs from start(y) (in standard time) to end(y) (in DST), or to end(y+1)
   * when the end comes first in the year (southern hemisphere). */
  for (yy = y0 - 1; yy <= y0 + 1; yy++) {
    int64_t s = rule_local(&tz->start, yy) - tz->std_off;
    int64_t e = rule_local(&tz->end, yy) - tz->dst_off;
    if (e <= s) e = rule_local(&tz->end, yy + 1) - tz->dst_off;
    if (s <= t && t < e) return tz->dst_off;
  }
  return tz->std_off;
}

/* ---- TZif ------------------------------------------------------------------------------------------ */

typedef struct tz_zone {
  char *key; /* the file's path */
  size_t ntrans;
  int64_t *trans;
  uint8_t *trans_type;
  size_t ntypes;
  int32_t utoff[256];
  bool has_footer;
  tz_posix_t footer;
} tz_zone_t;

static void zone_free(tz_zone_t *z) {
  if (!z) return;
  free(z->key);
  free(z->trans);
  free(z->trans_type);
  free(z);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64s(const uint8_t *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct {
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts_t;

static bool tzif_header(const uint8_t *b, size_t n, size_t off, tzif_counts_t *c) {
  if (n < 44 || off > n - 44 || memcmp(b + off, "TZif", 4) != 0) return false;
  const uint8_t *h = b + off + 20;
  c->isutcnt = be32(h), c->isstdcnt = be32(h + 4), c->leapcnt = be32(h + 8);
  c->timecnt = be32(h + 12), c->typecnt = be32(h + 16), c->charcnt = be32(h + 20);
  return c->typecnt >= 1 && c->typecnt <= 256 && c->timecnt <= 100000 && c->charcnt <= 100000 && c->leapcnt <= 100000 &&
         c->isutcnt <= 256 && c->isstdcnt <= 256;
}

static uint64_t tzif_block_size(const tzif_counts_t *c, unsigned tsize) {
  return (uint64_t)c->timecnt * (tsize + 1) + (uint64_t)c->typecnt * 6 + c->charcnt +
         (uint64_t)c->leapcnt * (tsize + 4) + c->isstdcnt + c->isutcnt;
}

/* Parses a whole TZif file into z (allocations owned by z). */
static bool tzif_parse(const uint8_t *b, size_t n, tz_zone_t *z) {
  tzif_counts_t c;
  if (!tzif_header(b, n, 0, &c)) return false;
  uint8_t version = b[4];
  size_t off = 44;
  unsigned tsize = 4;
  if (version >= '2') {
    uint64_t skip = tzif_block_size(&c, 4);
    if (skip > n - off) return false;
    off += (size_t)skip;
    if (!tzif_header(b, n, off, &c)) return false;
    off += 44;
    tsize = 8;
  } else if (version != 0) {
    return false;
  }
  if (c.leapcnt) return false; /* "right/" zones: leap seconds are not supported */
  uint64_t size = tzif_block_size(&c, tsize);
  if (size > n - off) return false;
  const uint8_t *times = b + off, *idx = times + (size_t)c.timecnt * tsize, *types = idx + c.timecnt;
  z->ntrans = c.timecnt;
  z->ntypes = c.typecnt;
  if (c.timecnt) {
    z->trans = malloc(sizeof *z->trans * c.timecnt);
    z->trans_type = malloc(c.timecnt);
    if (!z->trans || !z->trans_type) return false;
  }
  for (size_t i = 0; i < c.timecnt; i++) {
    z->trans[i] = tsize == 8 ? be64s(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
    if (i && z->trans[i] <= z->trans[i - 1]) return false;
    if (idx[i] >= c.typecnt) return false;
    z->trans_type[i] = idx[i];
  }
  for (size_t i = 0; i < c.typecnt; i++) {
    int32_t u = (int32_t)be32(types + i * 6);
    if (u < -26 * 3600 || u > 26 * 3600) return false;
    z->utoff[i] = u;
  }
  off += (size_t)size;
  if (tsize == 8) {
    /* Footer: "\n" TZ-string "\n". */
    if (off >= n || b[off] != '\n') return false;
    const uint8_t *nl = memchr(b + off + 1, '\n', n - off - 1);
    if (!nl) return false;
    size_t len = (size_t)(nl - (b + off + 1));
    if (len > 0) {
      char tzs[128];
      if (len >= sizeof tzs) return false;
      memcpy(tzs, b + off + 1, len);
      tzs[len] = '\0';
      if (!parse_posix_tz(tzs, &z->footer)) return false;
      z->has_footer = true;
    }
  }
  return true;
}

static int32_t zone_offset(const tz_zone_t *z, int64_t t) {
  if (z->ntrans == 0) return z->has_footer ? posix_offset(&z->footer, t) : z->utoff[0];
  if (t < z->trans[0]) return z->utoff[0];
  if (t >= z->trans[z->ntrans - 1] && z->has_footer) return posix_offset(&z->footer, t);
  size_t lo = 0, hi = z->ntrans; /* the last i with trans[i] <= t is in [lo, hi) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (z->trans[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return z->utoff[z->trans_type[lo]];
}

/* ---- zone cache -------------------------------------------------------------------------------------- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static tz_zone_t *cache[TZ_CACHE_MAX];
static size_t cache_n;

static tz_zone_t *cache_find(const char *key) {
  for (size_t i = 0; i < cache_n; i++)
    if (strcmp(cache[i]->key, key) == 0) return cache[i];
  return NULL;
}

static tz_zone_t *zone_read(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  tz_zone_t *z = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > TZ_FILE_MAX) goto out;
  size_t n = (size_t)st.st_size, got = 0;
  buf = malloc(n);
  if (!buf) goto out;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) goto out;
    got += (size_t)r;
  }
  z = calloc(1, sizeof *z);
  if (!z) goto out;
  z->key = strdup(path);
  if (!z->key || !tzif_parse(buf, n, z)) {
    zone_free(z);
    z = NULL;
  }
out:
  free(buf);
  close(fd);
  return z;
}

static const char *quote(const char *s, char out[QUOTE_MAX + 4]) {
  size_t i = 0;
  for (; i < QUOTE_MAX && s[i]; i++) out[i] = (s[i] >= 0x20 && s[i] < 0x7F) ? s[i] : '?';
  if (i == QUOTE_MAX && s[i]) out[i++] = '.', out[i++] = '.', out[i++] = '.';
  out[i] = '\0';
  return out;
}

/* The zone for `name`. *owned is set when the zone is not cached: the caller
 * frees it with zone_free. Errors name FIELD_TZ. */
static mq_code_t zone_get(const char *name, const tz_zone_t **zone, tz_zone_t **owned, mq_error_t *err) {
  *zone = NULL;
  *owned = NULL;
  const char *dir = getenv("TZDIR");
  if (!dir || dir[0] != '/') dir = "/usr/share/zoneinfo";
  char path[4096];
  int len = snprintf(path, sizeof path, "%s/%s", dir, name ? name : "");
  if (len > 0 && (size_t)len < sizeof path) {
    /* Only names that passed mq_check_timezone are ever cached, so a hit is valid. */
    pthread_mutex_lock(&cache_mu);
    *zone = cache_find(path);
    pthread_mutex_unlock(&cache_mu);
    if (*zone) return MQ_OK;
  }
  mq_code_t rc = mq_check_timezone(err, FIELD_TZ, name);
  if (rc != MQ_OK) return rc;
  char q[QUOTE_MAX + 4];
  tz_zone_t *z = len > 0 && (size_t)len < sizeof path ? zone_read(path) : NULL;
  if (!z) return mq_error_set(err, MQ_INTERNAL, FIELD_TZ, "the time zone data for '%s' is unreadable", quote(name, q));
  pthread_mutex_lock(&cache_mu);
  tz_zone_t *have = cache_find(path);
  if (have) {
    *zone = have;
  } else if (cache_n < TZ_CACHE_MAX) {
    cache[cache_n++] = z;
    *zone = z;
    z = NULL;
  } else {
    *zone = z;
    *owned = z;
    z = NULL;
  }
  pthread_mutex_unlock(&cache_mu);
  zone_free(z);
  return MQ_OK;
}

/* ---- local <-> UTC ------------------------------------------------------------------------------------- */

/* Local seconds → instant: the earlier instant in an overlap; in a gap, read
 * with the offset before the transition (= shifted forward by the gap). */
static int64_t zone_local_to_utc(const tz_zone_t *z, int64_t local) {
  int32_t before = zone_offset(z, local - DAY), after = zone_offset(z, local + DAY);
  int64_t t1 = local - before, t2 = local - after;
  bool ok1 = zone_offset(z, t1) == before, ok2 = zone_offset(z, t2) == after;
  if (ok1 && ok2) return t1 < t2 ? t1 : t2;
  if (ok2) return t2;
  return t1; /* valid, or a gap */
}

/* "YYYY-MM-DDTHH:MM[:SS]" → local seconds. */
static bool parse_local(const char *s, int64_t *out) {
  if (!s) return false;
  size_t n = strlen(s);
  if (n != 16 && n != 19) return false;
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < n; i++)
    if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i]) return false;
#define D2(i) ((s[i] - '0') * 10 + (s[i + 1] - '0'))
  int y = D2(0) * 100 + D2(2), mo = D2(5), d = D2(8), h = D2(11), mi = D2(14), sec = n == 19 ? D2(17) : 0;
#undef D2
  if (y < YEAR_MIN || y > YEAR_MAX || mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo) ||
      h > 23 || mi > 59 || sec > 59)
    return false;
  *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * DAY + h * 3600 + mi * 60 + sec;
  return true;
}

mq_code_t mq_local_to_utc(const char *local, const char *tz, int64_t *out, mq_error_t *err) {
  if (!out) return mq_error_set(err, MQ_INTERNAL, "local_time", "mq_local_to_utc: out is NULL");
  int64_t l;
  if (!parse_local(local, &l))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "local_time",
                        "must be a local date-time YYYY-MM-DDTHH:MM[:SS] (years %d..%d)", YEAR_MIN, YEAR_MAX);
  const tz_zone_t *z;
  tz_zone_t *owned;
  mq_code_t rc = zone_get(tz, &z, &owned, err);
  if (rc != MQ_OK) return rc;
  *out = zone_local_to_utc(z, l);
  zone_free(owned);
  return MQ_OK;
}

int mq_utc_to_local(int64_t t, const char *tz, char *buf, size_t n) {
  if (!buf || n == 0) return -1;
  buf[0] = '\0';
  /* Years 1..9999 (with a day of slack for the offset). */
  if (n < 20 || t < -62135596800LL + DAY || t > 253402300799LL - DAY) return -1;
  const tz_zone_t *z;
  tz_zone_t *owned;
  if (zone_get(tz, &z, &owned, NULL) != MQ_OK) return -1;
  int64_t l = t + zone_offset(z, t);
  zone_free(owned);
  int64_t y, days = floor_div(l, DAY), secs = l - days * DAY;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 1 || y > 9999) return -1;
  snprintf(buf, n, "%04d-%02u-%02uT%02d:%02d:%02d", (int)y, m, d, (int)(secs / 3600), (int)(secs / 60 % 60),
           (int)(secs % 60));
  return 19;
}

mq_code_t mq_tz_offset(const char *tz, int64_t t, int32_t *offset, mq_error_t *err) {
  if (!offset) return mq_error_set(err, MQ_INTERNAL, FIELD_TZ, "mq_tz_offset: offset is NULL");
  const tz_zone_t *z;
  tz_zone_t *owned;
  mq_code_t rc = zone_get(tz, &z, &owned, err);
  if (rc != MQ_OK) return rc;
  *offset = zone_offset(z, t);
  zone_free(owned);
  return MQ_OK;
}

/* ---- RRULE parsing ------------------------------------------------------------------------------------ */

static mq_code_t rule_error(mq_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static mq_code_t rule_error(mq_error_t *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mq_code_t rc = mq_error_setv(err, MQ_INVALID_ARGUMENT, FIELD_RULE, fmt, ap);
  va_end(ap);
  return rc;
}

static const char WEEKDAYS[7][3] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};

static int weekday_code(const char *v, size_t n) {
  if (n != 2) return -1;
  for (int i = 0; i < 7; i++)
    if (toupper((unsigned char)v[0]) == WEEKDAYS[i][0] && toupper((unsigned char)v[1]) == WEEKDAYS[i][1]) return i;
  return -1;
}

static bool token_is(const char *v, size_t n, const char *word) {
  return strlen(word) == n && strncasecmp(v, word, n) == 0;
}

/* [+-]digits (1..5 digits) → *out; false if anything else. */
static bool parse_int(const char *v, size_t n, bool allow_sign, long *out) {
  size_t i = 0;
  long sign = 1, x = 0;
  if (allow_sign && n > 0 && (v[0] == '+' || v[0] == '-')) sign = v[i++] == '-' ? -1 : 1;
  if (i == n || n - i > 5) return false;
  for (; i < n; i++) {
    if (!isdigit((unsigned char)v[i])) return false;
    x = x * 10 + (v[i] - '0');
  }
  *out = sign * x;
  return true;
}

static int digits_at(const char *v, size_t n) {
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)v[i])) return -1;
    x = x * 10 + (v[i] - '0');
  }
  return x;
}

static mq_code_t parse_until(const char *v, size_t n, mq_rrule_t *r, mq_error_t *err) {
  const char *bad =
      "UNTIL must be a date YYYYMMDD, a local date-time YYYYMMDDTHHMMSS or a UTC date-time "
      "YYYYMMDDTHHMMSSZ";
  if (n != 8 && n != 15 && n != 16) return rule_error(err, "%s", bad);
  int y = digits_at(v, 4), mo = digits_at(v + 4, 2), d = digits_at(v + 6, 2);
  if (y < YEAR_MIN || y > YEAR_MAX || mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
    return rule_error(err, "%s", bad);
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  if (n == 8) {
    r->until_kind = MQ_RRULE_UNTIL_DATE;
    r->until = days;
    return MQ_OK;
  }
  int h = digits_at(v + 9, 2), mi = digits_at(v + 11, 2), s = digits_at(v + 13, 2);
  if ((v[8] != 'T' && v[8] != 't') || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 ||
      (n == 16 && v[15] != 'Z' && v[15] != 'z'))
    return rule_error(err, "%s", bad);
  r->until_kind = n == 16 ? MQ_RRULE_UNTIL_UTC : MQ_RRULE_UNTIL_LOCAL;
  r->until = days * DAY + h * 3600 + mi * 60 + s;
  return MQ_OK;
}

static mq_code_t parse_byday(const char *v, size_t n, mq_rrule_t *r, mq_error_t *err) {
  const char *bad =
      "BYDAY must be a list of MO, TU, WE, TH, FR, SA, SU (with FREQ=MONTHLY optionally preceded by "
      "an ordinal, as in 1FR or -1SU)";
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < n && v[j] != ',') j++;
    size_t len = j - i;
    if (len < 2) return rule_error(err, "%s", bad);
    int wd = weekday_code(v + j - 2, 2);
    long ord = 0;
    if (wd < 0 || (len > 2 && !parse_int(v + i, len - 2, true, &ord))) return rule_error(err, "%s", bad);
    if (len > 2 && (ord == 0 || ord < -5 || ord > 5)) return rule_error(err, "BYDAY ordinal must be 1..5 or -5..-1");
    if (r->n_byday == MQ_RRULE_BYDAY_MAX) return rule_error(err, "BYDAY has more than %d entries", MQ_RRULE_BYDAY_MAX);
    r->byday[r->n_byday++] = (mq_rrule_day_t){(int8_t)ord, (uint8_t)wd};
    if (j == n) return MQ_OK;
    i = j + 1;
  }
}

static mq_code_t parse_bymonthday(const char *v, size_t n, mq_rrule_t *r, mq_error_t *err) {
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < n && v[j] != ',') j++;
    long x;
    if (!parse_int(v + i, j - i, true, &x) || x == 0 || x < -31 || x > 31)
      return rule_error(err, "BYMONTHDAY must be a list of days 1..31 or -31..-1 (-1 is the last day)");
    if (r->n_bymonthday == MQ_RRULE_BYMONTHDAY_MAX)
      return rule_error(err, "BYMONTHDAY has more than %d entries", MQ_RRULE_BYMONTHDAY_MAX);
    r->bymonthday[r->n_bymonthday++] = (int8_t)x;
    if (j == n) return MQ_OK;
    i = j + 1;
  }
}

/* The checks that do not depend on the order of the parts; also applied to
 * hand-built rules by mq_recur_expand. */
static mq_code_t rule_check(const mq_rrule_t *r, mq_error_t *err) {
  if (r->freq < MQ_RRULE_DAILY || r->freq > MQ_RRULE_MONTHLY) return rule_error(err, "FREQ is required");
  if (r->interval < 1 || r->interval > MQ_RRULE_INTERVAL_MAX)
    return rule_error(err, "INTERVAL must be 1..%d", MQ_RRULE_INTERVAL_MAX);
  if (r->wkst > 6) return rule_error(err, "WKST must be one of MO, TU, WE, TH, FR, SA, SU");
  if (r->count && r->until_kind != MQ_RRULE_UNTIL_NONE) return rule_error(err, "COUNT and UNTIL both given");
  if (!r->count && r->until_kind == MQ_RRULE_UNTIL_NONE)
    return rule_error(err, "COUNT or UNTIL is required (a series must end)");
  if (r->count > MQ_RRULE_COUNT_MAX) return rule_error(err, "COUNT must be 1..%d", MQ_RRULE_COUNT_MAX);
  if (r->until_kind > MQ_RRULE_UNTIL_UTC) return rule_error(err, "UNTIL is invalid");
  if (r->n_byday > MQ_RRULE_BYDAY_MAX || r->n_bymonthday > MQ_RRULE_BYMONTHDAY_MAX)
    return rule_error(err, "BYDAY or BYMONTHDAY has too many entries");
  if (r->n_byday && r->freq == MQ_RRULE_DAILY) return rule_error(err, "BYDAY is not supported with FREQ=DAILY");
  if (r->n_bymonthday && r->freq != MQ_RRULE_MONTHLY)
    return rule_error(err, "BYMONTHDAY is only allowed with FREQ=MONTHLY");
  if (r->n_byday && r->n_bymonthday) return rule_error(err, "BYDAY and BYMONTHDAY cannot be combined");
  for (size_t i = 0; i < r->n_byday; i++) {
    if (r->byday[i].weekday > 6) return rule_error(err, "BYDAY has an invalid weekday");
    if (r->byday[i].ordinal < -5 || r->byday[i].ordinal > 5)
      return rule_error(err, "BYDAY ordinal must be 1..5 or -5..-1");
    if (r->byday[i].ordinal && r->freq != MQ_RRULE_MONTHLY)
      return rule_error(err, "BYDAY ordinals such as 1FR are only allowed with FREQ=MONTHLY");
  }
  for (size_t i = 0; i < r->n_bymonthday; i++)
    if (r->bymonthday[i] == 0 || r->bymonthday[i] < -31 || r->bymonthday[i] > 31)
      return rule_error(err, "BYMONTHDAY must be a list of days 1..31 or -31..-1 (-1 is the last day)");
  return MQ_OK;
}

enum { P_FREQ, P_INTERVAL, P_COUNT, P_UNTIL, P_BYDAY, P_BYMONTHDAY, P_WKST, P_N };
static const char *const PART_NAMES[P_N] = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"};
static const char *const UNSUPPORTED[] = {"BYSECOND", "BYMINUTE", "BYHOUR", "BYWEEKNO", "BYYEARDAY",
                                          "BYMONTH",  "BYSETPOS", "RSCALE", "SKIP"};

static mq_code_t parse_part(int part, const char *v, size_t n, mq_rrule_t *r, mq_error_t *err) {
  long x;
  switch (part) {
    case P_FREQ:
      if (token_is(v, n, "DAILY"))
        r->freq = MQ_RRULE_DAILY;
      else if (token_is(v, n, "WEEKLY"))
        r->freq = MQ_RRULE_WEEKLY;
      else if (token_is(v, n, "MONTHLY"))
        r->freq = MQ_RRULE_MONTHLY;
      else {
        static const char *const other[] = {"YEARLY", "HOURLY", "MINUTELY", "SECONDLY"};
        for (size_t k = 0; k < sizeof other / sizeof other[0]; k++)
          if (token_is(v, n, other[k]))
            return rule_error(err, "FREQ=%s is not supported (use DAILY, WEEKLY or MONTHLY)", other[k]);
        return rule_error(err, "FREQ must be DAILY, WEEKLY or MONTHLY");
      }
      return MQ_OK;
    case P_INTERVAL:
      if (!parse_int(v, n, false, &x) || x < 1 || x > MQ_RRULE_INTERVAL_MAX)
        return rule_error(err, "INTERVAL must be 1..%d", MQ_RRULE_INTERVAL_MAX);
      r->interval = (uint32_t)x;
      return MQ_OK;
    case P_COUNT:
      if (!parse_int(v, n, false, &x) || x < 1 || x > MQ_RRULE_COUNT_MAX)
        return rule_error(err, "COUNT must be 1..%d", MQ_RRULE_COUNT_MAX);
      r->count = (uint32_t)x;
      return MQ_OK;
    case P_UNTIL:
      return parse_until(v, n, r, err);
    case P_BYDAY:
      return parse_byday(v, n, r, err);
    case P_BYMONTHDAY:
      return parse_bymonthday(v, n, r, err);
    default: {
      int wd = weekday_code(v, n);
      if (wd < 0) return rule_error(err, "WKST must be one of MO, TU, WE, TH, FR, SA, SU");
      r->wkst = (uint8_t)wd;
      return MQ_OK;
    }
  }
}

mq_code_t mq_rrule_parse(const char *s, mq_rrule_t *out, mq_error_t *err) {
  if (!out) return mq_error_set(err, MQ_INTERNAL, FIELD_RULE, "mq_rrule_parse: out is NULL");
  memset(out, 0, sizeof *out);
  out->interval = 1;
  if (!s || !s[0]) return rule_error(err, "is required");
  size_t total = strlen(s);
  if (total > MQ_RRULE_TEXT_MAX) return rule_error(err, "must be at most %d bytes", MQ_RRULE_TEXT_MAX);
  if (strncasecmp(s, "RRULE:", 6) == 0) s += 6, total -= 6;
  bool seen[P_N] = {false};
  char q[QUOTE_MAX + 4];
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < total && s[j] != ';') j++;
    if (j == i) return rule_error(err, "empty RRULE part (stray ';')");
    const char *part = s + i, *eq = memchr(part, '=', j - i);
    if (!eq) {
      char name[2 * QUOTE_MAX];
      snprintf(name, sizeof name, "%.*s", (int)(j - i), part);
      return rule_error(err, "RRULE part '%s' is not NAME=VALUE", quote(name, q));
    }
    size_t nlen = (size_t)(eq - part), vlen = j - i - nlen - 1;
    const char *v = eq + 1;
    int which = -1;
    for (int k = 0; k < P_N; k++)
      if (token_is(part, nlen, PART_NAMES[k])) which = k;
    if (which < 0) {
      for (size_t k = 0; k < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; k++)
        if (token_is(part, nlen, UNSUPPORTED[k])) return rule_error(err, "unsupported RRULE part %s", UNSUPPORTED[k]);
      char name[2 * QUOTE_MAX];
      snprintf(name, sizeof name, "%.*s", (int)nlen, part);
      return rule_error(err, "unknown RRULE part '%s'", quote(name, q));
    }
    if (seen[which]) return rule_error(err, "RRULE part %s is given twice", PART_NAMES[which]);
    seen[which] = true;
    if (vlen == 0) return rule_error(err, "RRULE part %s has no value", PART_NAMES[which]);
    mq_code_t rc = parse_part(which, v, vlen, out, err);
    if (rc != MQ_OK) return rc;
    if (j == total) break;
    i = j + 1;
    if (i == total) return rule_error(err, "empty RRULE part (stray ';')");
  }
  return rule_check(out, err);
}

/* ---- expansion ------------------------------------------------------------------------------------------- */

typedef struct {
  const mq_rrule_t *r;
  const tz_zone_t *z;
  int64_t tod; /* seconds after local midnight */
  size_t max_out, n;
  int64_t *out;
  bool truncated;
} expand_t;

/* Adds the occurrence on local date `day`; false when the series has ended. */
static bool emit(expand_t *x, int64_t day) {
  const mq_rrule_t *r = x->r;
  int64_t local = day * DAY + x->tod;
  if (r->until_kind == MQ_RRULE_UNTIL_DATE && day > r->until) return false;
  if (r->until_kind == MQ_RRULE_UNTIL_LOCAL && local > r->until) return false;
  int64_t t = zone_local_to_utc(x->z, local);
  if (r->until_kind == MQ_RRULE_UNTIL_UTC && t > r->until) return false;
  if (r->count && x->n >= r->count) return false;
  if (x->n >= x->max_out) {
    x->truncated = true;
    return false;
  }
  x->out[x->n++] = t;
  return true;
}

/* The last local date the rule could reach. */
static int64_t horizon(const mq_rrule_t *r) {
  int64_t h = last_day();
  if (r->until_kind == MQ_RRULE_UNTIL_DATE && r->until < h) h = r->until;
  if (r->until_kind == MQ_RRULE_UNTIL_LOCAL && floor_div(r->until, DAY) < h) h = floor_div(r->until, DAY);
  if (r->until_kind == MQ_RRULE_UNTIL_UTC && floor_div(r->until, DAY) + 2 < h) h = floor_div(r->until, DAY) + 2;
  return h;
}

static void expand_daily(expand_t *x, int64_t d0, int64_t end) {
  for (int64_t day = d0 + x->r->interval; day <= end; day += x->r->interval)
    if (!emit(x, day)) return;
}

static void expand_weekly(expand_t *x, int64_t d0, int64_t end) {
  const mq_rrule_t *r = x->r;
  unsigned mask = 0;
  for (size_t i = 0; i < r->n_byday; i++) mask |= 1u << r->byday[i].weekday;
  if (!mask) mask = 1u << iso_weekday(d0);
  int64_t week = d0 - (int64_t)((iso_weekday(d0) + 7 - r->wkst) % 7);
  for (; week <= end; week += 7 * (int64_t)r->interval)
    for (int64_t day = week; day < week + 7; day++) {
      if (day > end) return;
      if (day > d0 && (mask & (1u << iso_weekday(day))) && !emit(x, day)) return;
    }
}

/* Marks the days of month (1..dim) that the MONTHLY rule selects. */
static void month_days(const mq_rrule_t *r, int64_t y, unsigned m, unsigned d0_dom, bool mark[32]) {
  memset(mark, 0, 32 * sizeof mark[0]);
  unsigned dim = days_in_month(y, m);
  for (size_t i = 0; i < r->n_bymonthday; i++) {
    int v = r->bymonthday[i], dom = v > 0 ? v : (int)dim + 1 + v;
    if (dom >= 1 && dom <= (int)dim) mark[dom] = true;
  }
  unsigned first_wd = iso_weekday(days_from_civil(y, m, 1));
  for (size_t i = 0; i < r->n_byday; i++) {
    int first = 1 + (int)((r->byday[i].weekday + 7 - first_wd) % 7); /* first such weekday */
    int last = first + 7 * (((int)dim - first) / 7);                 /* last such weekday */
    int ord = r->byday[i].ordinal;
    if (ord == 0) {
      for (int dom = first; dom <= (int)dim; dom += 7) mark[dom] = true;
    } else {
      int dom = ord > 0 ? first + 7 * (ord - 1) : last + 7 * (ord + 1);
      if (dom >= 1 && dom <= (int)dim) mark[dom] = true;
    }
  }
  if (!r->n_bymonthday && !r->n_byday && d0_dom <= dim) mark[d0_dom] = true;
}

static void expand_monthly(expand_t *x, int64_t d0, int64_t end) {
  const mq_rrule_t *r = x->r;
  int64_t y0;
  unsigned m0, dom0;
  civil_from_days(d0, &y0, &m0, &dom0);
  for (int64_t mi = y0 * 12 + (m0 - 1);; mi += r->interval) {
    int64_t y = mi / 12;
    unsigned m = (unsigned)(mi % 12) + 1;
    int64_t first = days_from_civil(y, m, 1);
    if (first > end) return;
    bool mark[32];
    month_days(r, y, m, dom0, mark);
    for (unsigned dom = 1; dom <= 31; dom++)
      if (mark[dom] && first + dom - 1 > d0 && !emit(x, first + dom - 1)) return;
  }
}

mq_code_t mq_recur_expand(const mq_rrule_t *r, const char *first_local, const char *tz, size_t max_out, int64_t *out,
                          size_t *n_out, bool *truncated, mq_error_t *err) {
  if (!r || !n_out || !truncated || (max_out && !out))
    return mq_error_set(err, MQ_INTERNAL, FIELD_RULE, "mq_recur_expand: NULL argument");
  *n_out = 0;
  *truncated = false;
  mq_code_t rc = rule_check(r, err);
  if (rc != MQ_OK) return rc;
  int64_t first;
  if (!parse_local(first_local, &first))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "start",
                        "must be a local date-time YYYY-MM-DDTHH:MM[:SS] (years %d..%d)", YEAR_MIN, YEAR_MAX);
  const tz_zone_t *z;
  tz_zone_t *owned;
  rc = zone_get(tz, &z, &owned, err);
  if (rc != MQ_OK) return rc;
  int64_t d0 = floor_div(first, DAY);
  if ((r->until_kind == MQ_RRULE_UNTIL_DATE && r->until < d0) ||
      (r->until_kind == MQ_RRULE_UNTIL_LOCAL && r->until < first) ||
      (r->until_kind == MQ_RRULE_UNTIL_UTC && r->until < zone_local_to_utc(z, first))) {
    zone_free(owned);
    return rule_error(err, "UNTIL is before the first occurrence");
  }
  expand_t x = {.r = r, .z = z, .tod = first - d0 * DAY, .max_out = max_out, .out = out};
  if (emit(&x, d0)) {
    int64_t end = horizon(r);
    if (r->freq == MQ_RRULE_DAILY)
      expand_daily(&x, d0, end);
    else if (r->freq == MQ_RRULE_WEEKLY)
      expand_weekly(&x, d0, end);
    else
      expand_monthly(&x, d0, end);
  }
  zone_free(owned);
  *n_out = x.n;
  *truncated = x.truncated;
  return MQ_OK;
}

/* ---- calendar windows ------------------------------------------------------------------------ */

/* Local midnight (plus `hour`) of day number `days` in tz, in unix ms. */
static mq_code_t local_day_ms(int64_t days, int hour, const char *tz, int64_t *out, mq_error_t *err) {
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char s[32];
  snprintf(s, sizeof s, "%04d-%02u-%02uT%02d:00", (int)y, m, d, hour);
  int64_t t;
  mq_code_t rc = mq_local_to_utc(s, tz, &t, err);
  if (rc == MQ_OK) *out = t * 1000;
  return rc;
}

/* Today's local day number and weekday (Monday 1 … Sunday 7) at now_ms. */
static mq_code_t local_today(int64_t now_ms, const char *tz, int64_t *day, int *wd, mq_error_t *err) {
  char local[24];
  if (mq_utc_to_local(floor_div(now_ms, 1000), tz, local, sizeof local) < 0)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, FIELD_TZ, "is not a known IANA time zone");
  *day = days_from_civil(atoi(local), (unsigned)atoi(local + 5), (unsigned)atoi(local + 8));
  *wd = (int)(((*day % 7) + 7 + 3) % 7) + 1; /* 1970-01-01 was a Thursday */
  return MQ_OK;
}

mq_code_t mq_local_window(mq_window_t w, int64_t now_ms, const char *tz, int64_t *from, int64_t *to, mq_error_t *err) {
  int64_t today;
  int wd;
  mq_code_t rc = local_today(now_ms, tz, &today, &wd, err);
  if (rc != MQ_OK) return rc;
  int64_t monday_next = today + (8 - wd);
  *from = now_ms;
  switch (w) {
    case MQ_WINDOW_TODAY:
      return local_day_ms(today + 1, 0, tz, to, err);
    case MQ_WINDOW_TOMORROW:
      if ((rc = local_day_ms(today + 1, 0, tz, from, err)) != MQ_OK) return rc;
      return local_day_ms(today + 2, 0, tz, to, err);
    case MQ_WINDOW_WEEKEND: { /* this week's Friday 17:00 (already past on a weekend) to Monday 00:00 */
      int64_t friday = today + (5 - wd), start;
      if ((rc = local_day_ms(friday, 17, tz, &start, err)) != MQ_OK) return rc;
      if (start > now_ms) *from = start;
      return local_day_ms(friday + 3, 0, tz, to, err);
    }
    case MQ_WINDOW_THIS_WEEK:
      return local_day_ms(monday_next, 0, tz, to, err);
    case MQ_WINDOW_NEXT_WEEK:
      if ((rc = local_day_ms(monday_next, 0, tz, from, err)) != MQ_OK) return rc;
      return local_day_ms(monday_next + 7, 0, tz, to, err);
    case MQ_WINDOW_THIS_MONTH: {
      int64_t y;
      unsigned m, d;
      civil_from_days(today, &y, &m, &d);
      return local_day_ms(days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1), 0, tz, to, err);
    }
  }
  return mq_error_set(err, MQ_INTERNAL, NULL, "mq_local_window: unknown window %d", (int)w);
}

mq_code_t mq_local_months(int64_t now_ms, const char *tz, size_t n, int64_t *starts, char (*labels)[8],
                          mq_error_t *err) {
  int64_t today;
  int wd;
  mq_code_t rc = local_today(now_ms, tz, &today, &wd, err);
  if (rc != MQ_OK) return rc;
  int64_t y;
  unsigned m, d;
  civil_from_days(today, &y, &m, &d);
  for (size_t i = 0; i < n; i++) {
    if ((rc = local_day_ms(days_from_civil(y, m, 1), 0, tz, &starts[i], err)) != MQ_OK) return rc;
    if (labels) snprintf(labels[i], 8, "%04u-%02u", (unsigned)(y % 10000) % 10000u, m % 100u);
    if (++m == 13) m = 1, y++;
  }
  return MQ_OK;
}
