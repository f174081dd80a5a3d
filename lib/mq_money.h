/*
 * mq_money.h — money as int64 minor units plus an ISO 4217 code
 * (DESIGN.md §4), and the only arithmetic Marquee does on it.
 *
 * Which codes are money, and their minor units (JPY, KRW, XOF: none; BHD,
 * KWD: three), is lib/mq_validate.h's ISO 4217 table
 * (mq_currency_minor_units); codes without a minor unit in the standard
 * (metals, testing codes) are not money here.
 *
 * Invariants:
 *   1. Integer arithmetic only: no amount ever passes through a double.
 *      Every operation reports overflow instead of wrapping (a sum of
 *      tickets cannot silently turn negative).
 *   2. Rounding is named at each call. Marquee uses MQ_ROUND_HALF_UP (half
 *      away from zero, "commercial rounding") for every tax and fee line:
 *      it is what the Canada Revenue Agency, HMRC and most EU member states
 *      prescribe for a line's tax, and it is what receipts show.
 *      MQ_ROUND_HALF_EVEN (banker's) exists for displayed conversions,
 *      where sums of many rounded amounts should not drift upward.
 *   3. Rates are parts per million (ppm): 13% is 130000, Québec's 9.975% is
 *      99750; a rate never needs more precision than that.
 */
#ifndef MQ_MONEY_H
#define MQ_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MQ_ROUND_HALF_UP, MQ_ROUND_HALF_EVEN } mq_rounding_t;

/* *out = a + b; false on overflow. */
bool mq_money_add(int64_t a, int64_t b, int64_t *out);
/* *out = a * n; false on overflow. */
bool mq_money_mul(int64_t a, int64_t n, int64_t *out);
/* *out = round(amount * num / den) with the given rounding; den > 0; false
 * on overflow. */
bool mq_money_mul_div(int64_t amount, int64_t num, int64_t den, mq_rounding_t mode, int64_t *out);
/* amount × ppm / 1,000,000, rounded half up: a tax or fee on an amount. */
bool mq_money_ppm(int64_t amount, int64_t ppm, int64_t *out);
/* The part of a tax-inclusive `gross` that is tax at `ppm`:
 * gross − round(gross × 1e6 / (1e6 + ppm)), rounded half up. */
bool mq_money_ppm_included(int64_t gross, int64_t ppm, int64_t *out);

/* "25.00 CAD", "2500 JPY", "1.250 KWD" into buf (always NUL-terminated);
 * returns the length it needed. Unknown codes print with two decimals. */
size_t mq_money_format(char *buf, size_t n, int64_t minor, const char *currency);

#endif
