/*
 * mq_fx.h — exchange rates, to SHOW a price approximately in the viewer's
 * currency. Never to charge: a charge is always in the event's currency
 * (docs/PAYMENTS.md).
 *
 * The rates are text, one row per line ('#' comments, blank lines):
 *
 *     BASE  QUOTE  RATE         FROM
 *     EUR   USD    1.0842       2026-12-01T00:00:00Z
 *     EUR   CAD    1.5121       2026-12-01
 *
 * meaning 1 BASE = RATE QUOTE from FROM (UTC; a date alone is its
 * midnight) until a later row of the same pair. RATE is a positive decimal
 * with at most 9 digits after the point and 12 before. A conversion uses,
 * at the time asked, the pair's latest row not after it: directly, or the
 * inverse pair, or through a base that has rows for both currencies (EUR →
 * CAD through USD). Rounding: half even (banker's: sums of many displayed
 * prices do not drift), to the target currency's minor unit.
 *
 * Invariants: rows naming a currency that is not money (lib/mq_validate.h),
 * a pair of one currency, or a bad rate or time are refused at load with
 * their line, and a refused load leaves the previous table in place.
 * Thread-safe: loads replace the table under a write lock; conversions
 * read it under a read lock. No I/O here (the caller reads the file or URL).
 */
#ifndef MQ_FX_H
#define MQ_FX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_error.h"

typedef struct mq_fx mq_fx_t;

mq_fx_t *mq_fx_new(void);
void mq_fx_free(mq_fx_t *fx);
/* Replaces the table with `text`'s rows; INVALID_ARGUMENT "rates" naming the
 * row otherwise (and the old table stays). *rows (optional) gets the count. */
mq_code_t mq_fx_load(mq_fx_t *fx, const char *text, size_t *rows, mq_error_t *err);
/* amount_minor of `from` in `to` at at_ms: true and *out when a rate is
 * known (*as_of_ms: when the rate used took effect); false otherwise.
 * from == to is the amount itself. */
bool mq_fx_convert(mq_fx_t *fx, int64_t amount_minor, const char *from, const char *to, int64_t at_ms, int64_t *out,
                   int64_t *as_of_ms);

#endif
