/*
 * mq_l10n.h — dates and money the way a reader writes them (ICU, Debian's
 * libicu): "samedi 5 décembre 2026, 19:00 UTC+1" for a French reader of an
 * event in Paris, "Sat, Dec 5, 2026, 7:00 PM EST" for an English one of an
 * event in Toronto; "12,50 €" and "€12.50".
 *
 * Invariants:
 *   1. Pure and thread-safe (no shared formatter; each call opens its own).
 *   2. Never fails the caller: an unknown locale falls back to ICU's root
 *      rules, an unknown time zone to UTC, and if ICU cannot format at all
 *      the plain forms are returned ("2026-12-05 18:00 UTC", "12.50 EUR").
 *   3. Amounts are exact: minor units are placed with the currency's ISO
 *      4217 exponent (lib/mq_validate.h) before ICU sees them.
 */
#ifndef MQ_L10N_H
#define MQ_L10N_H

#include <stdint.h>

#include "core/mq_arena.h"

/* The instant ms (unix) as a date and time with the zone, in `locale`
 * (BCP 47, "fr-CA"), in IANA zone `tz` (NULL or "": UTC); in the arena. */
char *mq_l10n_datetime(mq_arena_t *a, int64_t ms, const char *tz, const char *locale);

/* minor units of ISO 4217 `currency` in `locale`; in the arena. */
char *mq_l10n_money(mq_arena_t *a, int64_t minor, const char *currency, const char *locale);

#endif
