/*
 * mq_tax.c — see mq_tax.h. The built-in table below holds the standard
 * rates published by each tax authority as far as they were known when it
 * was written (the changes of 2024 and 2025 included; nothing later). Rates
 * change: an operator loads their own table with MARQUEE_TAX_RATES_FILE
 * (same format), and docs/PAYMENTS.md says what the table does not model.
 */
#include "lib/mq_tax.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_xmalloc.h"
#include "lib/mq_file.h"
#include "lib/mq_money.h"
#include "lib/mq_validate.h"

const char mq_tax_default_rows[] =
    "# jurisdiction  tax    rate%   from        to          supply\n"
    "# Canada: GST everywhere, HST instead of it in the Atlantic provinces and Ontario,\n"
    "# provincial taxes beside it in BC, MB, QC and SK\n"
    "CA-AB  GST    5       2008-01-01\n"
    "CA-BC  GST    5       2013-04-01\n"
    "CA-BC  PST    7       2013-04-01  -           other\n"
    "CA-MB  GST    5       2008-01-01\n"
    "CA-MB  RST    7       2019-07-01  -           other\n"
    "CA-NB  HST    15      2016-07-01\n"
    "CA-NL  HST    15      2016-07-01\n"
    "CA-NS  HST    15      2010-07-01  2025-03-31\n"
    "CA-NS  HST    14      2025-04-01\n"
    "CA-NT  GST    5       2008-01-01\n"
    "CA-NU  GST    5       2008-01-01\n"
    "CA-ON  HST    13      2010-07-01\n"
    "CA-PE  HST    15      2016-10-01\n"
    "CA-QC  GST    5       2008-01-01\n"
    "CA-QC  QST    9.975   2013-01-01\n"
    "CA-SK  GST    5       2008-01-01\n"
    "CA-SK  PST    6       2022-10-01\n"
    "CA-YT  GST    5       2008-01-01\n"
    "# European Union: standard VAT rates by member state\n"
    "AT  VAT  20      2016-01-01\n"
    "BE  VAT  21      1996-01-01\n"
    "BG  VAT  20      2007-01-01\n"
    "CY  VAT  19      2014-01-13\n"
    "CZ  VAT  21      2013-01-01\n"
    "DE  VAT  19      2021-01-01\n"
    "DK  VAT  25      1992-01-01\n"
    "EE  VAT  22      2024-01-01  2025-06-30\n"
    "EE  VAT  24      2025-07-01\n"
    "ES  VAT  21      2012-09-01\n"
    "FI  VAT  24      2013-01-01  2024-08-31\n"
    "FI  VAT  25.5    2024-09-01\n"
    "FR  VAT  20      2014-01-01\n"
    "GR  VAT  24      2016-06-01\n"
    "HR  VAT  25      2012-03-01\n"
    "HU  VAT  27      2012-01-01\n"
    "IE  VAT  23      2021-03-01\n"
    "IT  VAT  22      2013-10-01\n"
    "LT  VAT  21      2009-09-01\n"
    "LU  VAT  17      2024-01-01\n"
    "LV  VAT  21      2011-07-01\n"
    "MT  VAT  18      2004-01-01\n"
    "NL  VAT  21      2012-10-01\n"
    "PL  VAT  23      2011-01-01\n"
    "PT  VAT  23      2011-01-01\n"
    "RO  VAT  19      2017-01-01  2025-07-31\n"
    "RO  VAT  21      2025-08-01\n"
    "SE  VAT  25      1990-07-01\n"
    "SI  VAT  22      2013-07-01\n"
    "SK  VAT  20      2011-01-01  2024-12-31\n"
    "SK  VAT  23      2025-01-01\n"
    "# elsewhere\n"
    "GB  VAT  20      2011-01-04\n"
    "AU  GST  10      2000-07-01\n"
    "JP  JCT  10      2019-10-01\n"
    "IN  GST  18      2017-07-01\n"
    "NG  VAT  7.5     2020-02-01\n"
    "GH  VAT  15      2023-01-01\n"
    "GH  NHIL 2.5     2023-01-01\n"
    "GH  GETFL 2.5    2023-01-01\n"
    "# United States: no row (no tax unless the organization sets its own rate)\n";

typedef struct {
  char jurisdiction[8], name[16];
  int64_t ppm, from_ms, to_ms; /* [from, to) */
  bool admission;              /* applies to admission tickets */
  int line;
} row_t;

struct mq_tax_table {
  row_t *rows;
  size_t n;
};

static const char *const CA_SUB[][3] = {
    {"AB", "alberta", ""},
    {"BC", "british columbia", "colombie-britannique"},
    {"MB", "manitoba", ""},
    {"NB", "new brunswick", "nouveau-brunswick"},
    {"NL", "newfoundland and labrador", "terre-neuve-et-labrador"},
    {"NS", "nova scotia",
     "nouvelle-\xc3\xa9"
     "cosse"},
    {"NT", "northwest territories", "territoires du nord-ouest"},
    {"NU", "nunavut", ""},
    {"ON", "ontario", ""},
    {"PE", "prince edward island",
     "\xc3\xaele-du-prince-\xc3\xa9"
     "douard"},
    {"QC", "quebec",
     "qu\xc3\xa9"
     "bec"},
    {"SK", "saskatchewan", ""},
    {"YT", "yukon", ""},
};

static const char US_SUB[][3] = {"AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA",
                                 "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS",
                                 "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA",
                                 "PR", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY"};

static bool known_jurisdiction(const char *j) {
  if (strlen(j) == 2) {
    mq_error_t e = {0};
    return mq_check_country(&e, "j", j) == MQ_OK;
  }
  if (strlen(j) != 5 || j[2] != '-') return false;
  if (!strncmp(j, "CA", 2)) {
    for (size_t i = 0; i < sizeof CA_SUB / sizeof *CA_SUB; i++)
      if (!strcmp(j + 3, CA_SUB[i][0])) return true;
  } else if (!strncmp(j, "US", 2)) {
    for (size_t i = 0; i < sizeof US_SUB / sizeof *US_SUB; i++)
      if (!strcmp(j + 3, US_SUB[i])) return true;
  }
  return false;
}

void mq_tax_jurisdiction(const char *country, const char *region, char out[8]) {
  snprintf(out, 8, "%s", country ? country : "");
  if (!country || !region || !*region) return;
  char r[64];
  size_t n = 0;
  for (const char *p = region; *p && n + 1 < sizeof r; p++) r[n++] = (char)tolower((unsigned char)*p);
  r[n] = '\0';
  while (n && r[n - 1] == ' ') r[--n] = '\0';
  if (!strcmp(country, "CA")) {
    for (size_t i = 0; i < sizeof CA_SUB / sizeof *CA_SUB; i++)
      if (!strcasecmp(r, CA_SUB[i][0]) || !strcmp(r, CA_SUB[i][1]) || (CA_SUB[i][2][0] && !strcmp(r, CA_SUB[i][2]))) {
        snprintf(out, 8, "CA-%.2s", CA_SUB[i][0]);
        return;
      }
  } else if (!strcmp(country, "US")) {
    for (size_t i = 0; i < sizeof US_SUB / sizeof *US_SUB; i++)
      if (!strcasecmp(r, US_SUB[i])) {
        snprintf(out, 8, "US-%.2s", US_SUB[i]);
        return;
      }
  }
}

bool mq_tax_inclusive_by_default(const char *country) {
  return !(country && (!strcmp(country, "CA") || !strcmp(country, "US")));
}

/* "2025-04-01" → unix ms of its midnight UTC; -1 if not a date. */
static int64_t day_ms(const char *s) {
  int y, m, d;
  char tail;
  if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
  time_t t = timegm(&tm);
  if (tm.tm_mday != d) return -1; /* 2025-02-30 */
  return (int64_t)t * 1000;
}

/* "9.975" → 99750 ppm; -1 if not a rate in [0, 100) with <= 4 decimals. */
static int64_t rate_ppm(const char *s) {
  int64_t whole = 0, frac = 0;
  int digits = 0, fdigits = 0;
  const char *p = s;
  for (; isdigit((unsigned char)*p) && digits < 3; p++, digits++) whole = whole * 10 + (*p - '0');
  if (!digits) return -1;
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, fdigits++) {
      if (fdigits == 4) return -1;
      frac = frac * 10 + (*p - '0');
    }
    if (!fdigits) return -1;
  }
  if (*p || whole >= 100) return -1;
  for (int i = fdigits; i < 4; i++) frac *= 10;
  return whole * 10000 + frac; /* percent × 10^4 = ppm */
}

mq_code_t mq_tax_table_parse(const char *text, mq_tax_table_t **out, mq_error_t *err) {
  mq_tax_table_t *t = mq_xcalloc(1, sizeof *t);
  size_t cap = 0;
  mq_rows_t rows;
  mq_rows_init(&rows, text);
  for (int got; (got = mq_rows_next(&rows)) != 0;) {
    int line = rows.line, nf = rows.nf;
    char **f = rows.f;
    if (got < 0) {
      mq_tax_table_free(t);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "tax table", "row %d: longer than %d bytes", line, MQ_ROW_MAX);
    }
    if (nf < 4 || nf > 6) {
      mq_tax_table_free(t);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "tax table",
                          "row %d: expected JURISDICTION TAX RATE FROM [TO] [SUPPLY]", line);
    }
    row_t r = {.line = line, .admission = true};
    const char *why = NULL;
    if (strlen(f[0]) >= sizeof r.jurisdiction || !known_jurisdiction(f[0]))
      why = "is not a known jurisdiction (a country such as DE, or CA-ON, US-NY)";
    else if (strlen(f[1]) >= sizeof r.name)
      why = "has a tax name longer than 15 bytes";
    else if ((r.ppm = rate_ppm(f[2])) < 0)
      why = "has a rate that is not a percentage below 100 with at most 4 decimals";
    else if ((r.from_ms = day_ms(f[3])) < 0)
      why = "has a FROM that is not a YYYY-MM-DD date";
    else if (nf >= 5 && strcmp(f[4], "-") && (r.to_ms = day_ms(f[4])) < 0)
      why = "has a TO that is not a YYYY-MM-DD date or -";
    else if (nf == 6 && strcmp(f[5], "all") && strcmp(f[5], "other"))
      why = "has a SUPPLY other than all or other";
    if (!why) {
      r.to_ms = nf >= 5 && strcmp(f[4], "-") ? r.to_ms + 86400000 : INT64_MAX;
      if (r.to_ms <= r.from_ms) why = "ends before it starts";
      r.admission = !(nf == 6 && !strcmp(f[5], "other"));
      snprintf(r.jurisdiction, sizeof r.jurisdiction, "%s", f[0]);
      snprintf(r.name, sizeof r.name, "%s", f[1]);
    }
    for (size_t i = 0; !why && i < t->n; i++) {
      const row_t *o = &t->rows[i];
      if (!strcmp(o->jurisdiction, r.jurisdiction) && !strcmp(o->name, r.name) && r.from_ms < o->to_ms &&
          o->from_ms < r.to_ms) {
        int other = o->line;
        mq_tax_table_free(t);
        return mq_error_set(err, MQ_INVALID_ARGUMENT, "tax table", "row %d: %s %s overlaps the dates of row %d", line,
                            r.jurisdiction, r.name, other);
      }
    }
    if (why) {
      mq_tax_table_free(t);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "tax table", "row %d: '%s' %s", line, f[0], why);
    }
    if (t->n == cap) t->rows = mq_xrealloc(t->rows, (cap = cap ? cap * 2 : 64) * sizeof *t->rows);
    t->rows[t->n++] = r;
  }
  *out = t;
  return MQ_OK;
}

void mq_tax_table_free(mq_tax_table_t *t) {
  if (!t) return;
  free(t->rows);
  free(t);
}

mq_code_t mq_tax_compute(const mq_tax_table_t *t, const char *jurisdiction, int64_t at_ms, mq_supply_t supply,
                         int64_t amount_minor, bool inclusive, int64_t extra_ppm, const char *extra_name,
                         mq_tax_result_t *out, mq_error_t *err) {
  memset(out, 0, sizeof *out);
  if (amount_minor < 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "must not be negative");
  out->net_minor = out->total_minor = amount_minor;
  if (amount_minor == 0) return MQ_OK;
  int64_t sum_ppm = 0;
  for (size_t i = 0; t && i < t->n && out->n_lines < MQ_TAX_MAX_LINES; i++) {
    const row_t *r = &t->rows[i];
    if (strcmp(r->jurisdiction, jurisdiction) || at_ms < r->from_ms || at_ms >= r->to_ms) continue;
    if (supply == MQ_SUPPLY_ADMISSION && !r->admission) continue;
    if (r->ppm == 0) continue;
    mq_tax_line_t *l = &out->lines[out->n_lines++];
    snprintf(l->name, sizeof l->name, "%s", r->name);
    snprintf(l->jurisdiction, sizeof l->jurisdiction, "%s", r->jurisdiction);
    l->ppm = r->ppm;
    sum_ppm += r->ppm;
  }
  if (extra_ppm > 0 && out->n_lines < MQ_TAX_MAX_LINES) {
    mq_tax_line_t *l = &out->lines[out->n_lines++];
    snprintf(l->name, sizeof l->name, "%s", extra_name && *extra_name ? extra_name : "Sales tax");
    snprintf(l->jurisdiction, sizeof l->jurisdiction, "%s", jurisdiction);
    l->ppm = extra_ppm;
    sum_ppm += extra_ppm;
  }
  if (out->n_lines == 0) return MQ_OK;
  int64_t net = amount_minor;
  if (inclusive && !mq_money_mul_div(amount_minor, 1000000, 1000000 + sum_ppm, MQ_ROUND_HALF_UP, &net))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "too large");
  int64_t tax = 0;
  for (size_t i = 0; i < out->n_lines; i++) {
    if (!mq_money_ppm(net, out->lines[i].ppm, &out->lines[i].amount_minor) ||
        !mq_money_add(tax, out->lines[i].amount_minor, &tax))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "too large");
  }
  if (inclusive) { /* the residue of rounding goes to the last line: net + taxes = the price */
    out->lines[out->n_lines - 1].amount_minor += amount_minor - net - tax;
    tax = amount_minor - net;
  }
  out->net_minor = net;
  out->tax_minor = tax;
  if (!mq_money_add(net, tax, &out->total_minor)) return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "too large");
  return MQ_OK;
}
