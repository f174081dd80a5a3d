/*
 * mq_tax.h — sales taxes as data: a table of rates by jurisdiction with
 * effective dates, and the computation of a price's tax lines from it.
 *
 * The table (text, one row per line, tab- or space-separated, '#' starts a
 * comment):
 *
 *     JURISDICTION  TAX  RATE%  FROM        [TO]        [SUPPLY]
 *     CA-QC         QST  9.975  2013-01-01
 *     CA-NS         HST  15     2010-07-01  2025-03-31
 *     CA-NS         HST  14     2025-04-01
 *     CA-BC         PST  7      2013-04-01  -           other
 *
 * JURISDICTION is an ISO 3166-1 country ("DE") or one of the subdivisions
 * Marquee knows ("CA-ON": Canada's provinces and territories, "US-CA": the
 * United States' states); TAX a short name shown on the breakdown ("GST",
 * "HST", "QST", "VAT"); RATE a percentage with at most 4 decimals; FROM and
 * TO (inclusive; "-" or absent: open) dates in UTC; SUPPLY "all" (default)
 * or "other" (not on admission tickets: British Columbia's PST, Manitoba's
 * RST). Every row that applies to a jurisdiction at a time becomes one line,
 * so Québec's GST and QST are two lines and a province with HST has one.
 *
 * Load-time invariants (a row breaking one is refused with its line number):
 *   T1 the jurisdiction is known; T2 the rate is a number in [0, 100) with
 *   at most 4 decimals; T3 FROM ≤ TO; T4 two rows of one jurisdiction and
 *   tax never cover the same day.
 *
 * Computation (mq_tax_compute), all in integer minor units
 * (lib/mq_money.h), rounded half up per line:
 *   exclusive: each tax = round(base × rate); total = base + Σ taxes.
 *   inclusive: the price is the total; net = round(total / (1 + Σ rates)),
 *     each tax = round(net × rate), and the last line takes the rounding
 *     residue so that net + Σ taxes = total exactly.
 * A base of zero has no tax lines. A jurisdiction without rows (the United
 * States by default) has none either; an extra rate (an organization's own
 * US sales tax) is added as one more line.
 */
#ifndef MQ_TAX_H
#define MQ_TAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

#define MQ_TAX_MAX_LINES 6

typedef enum { MQ_SUPPLY_ADMISSION, MQ_SUPPLY_OTHER } mq_supply_t;

typedef struct mq_tax_table mq_tax_table_t;

typedef struct mq_tax_line {
  char name[16];        /* "GST" */
  char jurisdiction[8]; /* "CA-QC" */
  int64_t ppm;          /* rate in parts per million */
  int64_t amount_minor;
} mq_tax_line_t;

typedef struct mq_tax_result {
  int64_t net_minor;   /* the price without tax */
  int64_t tax_minor;   /* Σ lines */
  int64_t total_minor; /* what is charged */
  mq_tax_line_t lines[MQ_TAX_MAX_LINES];
  size_t n_lines;
} mq_tax_result_t;

/* Parses a table; INVALID_ARGUMENT naming the row ("row 12: …") for a bad
 * one (T1-T4). The built-in table is mq_tax_default_rows. */
mq_code_t mq_tax_table_parse(const char *text, mq_tax_table_t **out, mq_error_t *err);
void mq_tax_table_free(mq_tax_table_t *t);
extern const char mq_tax_default_rows[];

/* The jurisdiction of a place: "CA-QC" for ("CA", "Québec" or "QC"),
 * "US-NY" for ("US", "NY" or "New York"), else the country. */
void mq_tax_jurisdiction(const char *country, const char *region, char out[8]);
/* Whether prices are usually shown with tax included there (the default
 * when an organization has not chosen): not in Canada or the United
 * States, yes elsewhere. */
bool mq_tax_inclusive_by_default(const char *country);

/* The tax lines of `amount_minor` sold in `jurisdiction` at `at_ms`:
 * `inclusive` says whether the amount already includes them; `extra_ppm`
 * (with extra_name) is one more rate, 0 for none. INVALID_ARGUMENT on
 * overflow or a negative amount. */
mq_code_t mq_tax_compute(const mq_tax_table_t *t, const char *jurisdiction, int64_t at_ms, mq_supply_t supply,
                         int64_t amount_minor, bool inclusive, int64_t extra_ppm, const char *extra_name,
                         mq_tax_result_t *out, mq_error_t *err);

#endif
