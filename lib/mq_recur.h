/*
 * mq_recur.h — event series: a subset of RFC 5545 recurrence rules
 * (RRULE), expanded from a first occurrence given as LOCAL wall-clock time
 * in an IANA time zone into UTC instants; plus the local <-> UTC conversions
 * the catalog service uses for every event start and end.
 *
 * Wall-clock semantics: every occurrence has the first occurrence's local
 * time of day. "19:30 in Europe/Berlin" is 18:30Z in winter and 17:30Z in
 * summer; the series never drifts across DST changes. Resolution of local
 * times that do not map to exactly one instant (the same rule everywhere):
 *   - In a gap (spring forward: 02:30 on the last Sunday of March in
 *     Berlin does not exist) the time is shifted forward by the length of
 *     the gap: it is read with the offset in effect before the transition
 *     (02:30 CET = 01:30Z, shown as 03:30 CEST).
 *   - In an overlap (fall back: 02:30 on the last Sunday of October in
 *     Berlin happens twice) the earlier instant is taken (02:30 CEST =
 *     00:30Z, not 02:30 CET = 01:30Z).
 *
 * Supported RRULE subset (names and values case-insensitive, parts in any
 * order, separated by ';', an optional leading "RRULE:"; at most
 * MQ_RRULE_TEXT_MAX bytes):
 *   FREQ=DAILY|WEEKLY|MONTHLY   required
 *   INTERVAL=1..366             default 1
 *   BYDAY=                      WEEKLY: list of MO,TU,WE,TH,FR,SA,SU.
 *                               MONTHLY: list of weekdays each with an
 *                               optional ordinal 1..5 or -5..-1 (1FR = first
 *                               Friday, -1SU = last Sunday; plain FR = every
 *                               Friday of the month). Not with DAILY.
 *   BYMONTHDAY=                 MONTHLY only: list of 1..31 or -31..-1 (-1 =
 *                               last day). Months without that day are
 *                               skipped, not clamped (RFC 5545): 31 gives
 *                               Jan 31, Mar 31, May 31, ...
 *   COUNT=1..MQ_RRULE_COUNT_MAX or UNTIL=  exactly one of them.
 *   UNTIL=YYYYMMDD              inclusive: occurrences on that local date
 *        |YYYYMMDDTHHMMSS       inclusive, local wall-clock time in the tz
 *        |YYYYMMDDTHHMMSSZ      inclusive, a UTC instant (RFC 5545's form)
 *   WKST=MO..SU                 default MO; matters only for WEEKLY with
 *                               INTERVAL > 1 and several BYDAY days.
 * Everything else (FREQ=YEARLY/HOURLY/..., BYSETPOS, BYMONTH, BYHOUR, ...,
 * BYDAY together with BYMONTHDAY) is refused. Without BYDAY/BYMONTHDAY a
 * WEEKLY rule repeats the first occurrence's weekday and a MONTHLY rule its
 * day of month (so a series starting on the 31st skips short months).
 *
 * Expansion: the first occurrence is always the first element (even if it
 * does not match BYDAY/BYMONTHDAY, RFC 5545 counts DTSTART) and counts
 * towards COUNT; every later occurrence is a date the rule generates that is
 * after the first occurrence's date. No occurrence after 9999-12-31 is ever
 * produced (a rule that cannot match again before then simply ends).
 *
 * Errors (mq_error.h conventions): a bad rule is MQ_INVALID_ARGUMENT with
 * field "recurrence" and a precise message ("unsupported RRULE part
 * BYSETPOS", "COUNT and UNTIL both given", "INTERVAL must be 1..366", ...);
 * a bad local date-time names "start" (mq_recur_expand) or "local_time"
 * (mq_local_to_utc) — callers converting another field (an event's end)
 * copy their own name into err->field; an unknown time zone names
 * "time_zone" (mq_check_timezone's rules and messages, mq_validate.h).
 * Caller bugs (NULL outputs) are MQ_INTERNAL.
 *
 * Time zones: read from the TZif files of the tzdata package ($TZDIR or
 * /usr/share/zoneinfo, as mq_check_timezone), version 1 to 4: the 64-bit
 * transition table, and for instants after its last transition the footer's
 * POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3", quoted names "<-03>3",
 * Jn/n/Mm.w.d dates, transition times -167..167 h as RFC 8536 allows), so
 * 2040 and later still follow DST. Zones with leap seconds ("right/") are
 * not supported. Thread-safe: no setenv("TZ")/tzset/localtime; each zone
 * is parsed once into an immutable table kept in a mutex-protected cache
 * (at most 512 zones; more are parsed per call) for the process lifetime —
 * a tzdata upgrade takes effect at the next restart.
 *
 * Ownership: strings are borrowed; out[] belongs to the caller.
 * Read next: tests/unit/lib/test_recur.c (expected instants checked against
 * `TZ=... date` and recomputed from the EU/US DST rules in the test).
 */
#ifndef MQ_RECUR_H
#define MQ_RECUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

#define MQ_RRULE_TEXT_MAX 512
#define MQ_RRULE_COUNT_MAX 10000
#define MQ_RRULE_INTERVAL_MAX 366
#define MQ_RRULE_BYDAY_MAX 32
#define MQ_RRULE_BYMONTHDAY_MAX 31

typedef enum mq_rrule_freq { MQ_RRULE_DAILY = 1, MQ_RRULE_WEEKLY, MQ_RRULE_MONTHLY } mq_rrule_freq_t;

typedef enum mq_rrule_until_kind {
  MQ_RRULE_UNTIL_NONE = 0, /* COUNT is used */
  MQ_RRULE_UNTIL_DATE,     /* until = days since 1970-01-01 (a local date) */
  MQ_RRULE_UNTIL_LOCAL,    /* until = local wall-clock seconds since 1970-01-01T00:00:00 (no zone) */
  MQ_RRULE_UNTIL_UTC       /* until = unix seconds */
} mq_rrule_until_kind_t;

/* Weekdays are 0 = MO ... 6 = SU (ISO 8601 order). */
typedef struct mq_rrule_day {
  int8_t ordinal; /* 0 = every such weekday; MONTHLY only: 1..5 or -5..-1 */
  uint8_t weekday;
} mq_rrule_day_t;

typedef struct mq_rrule {
  mq_rrule_freq_t freq;
  uint32_t interval; /* 1..MQ_RRULE_INTERVAL_MAX */
  uint8_t wkst;      /* week start, 0 = MO */
  size_t n_byday;
  mq_rrule_day_t byday[MQ_RRULE_BYDAY_MAX];
  size_t n_bymonthday;
  int8_t bymonthday[MQ_RRULE_BYMONTHDAY_MAX]; /* 1..31 or -31..-1 */
  uint32_t count;                             /* 1..MQ_RRULE_COUNT_MAX, or 0 when UNTIL is used */
  mq_rrule_until_kind_t until_kind;
  int64_t until;
} mq_rrule_t;

/* Parses an RRULE string into *out (zeroed first; unspecified on error).
 * s NULL or "" → "is required". */
mq_code_t mq_rrule_parse(const char *s, mq_rrule_t *out, mq_error_t *err);

/* Expands the series whose first occurrence starts at `first_local`
 * ("YYYY-MM-DDTHH:MM" or "YYYY-MM-DDTHH:MM:SS", years 1900..9999) in `tz`.
 * Writes at most max_out UTC start instants (unix seconds, strictly
 * increasing) to out[0..*n_out), the first occurrence first. Stops at COUNT,
 * UNTIL or the year 9999. If the series has more occurrences than max_out,
 * returns MQ_OK with the first max_out of them and *truncated = true;
 * otherwise *truncated = false. The service passes its cap (e.g. 500) as
 * max_out and refuses a truncated series with MQ_INVALID_ARGUMENT ("a series
 * has at most 500 occurrences"): truncation is reported, never an error
 * here, so a caller may also preview the first N of a long series. max_out may be 0
 * (out may then be NULL). The rule is re-checked (a hand-built mq_rrule_t is
 * refused like a parsed one); UNTIL before the first occurrence is refused.
 * On error *n_out = 0 and *truncated = false. */
mq_code_t mq_recur_expand(const mq_rrule_t *r, const char *first_local, const char *tz, size_t max_out, int64_t *out,
                          size_t *n_out, bool *truncated, mq_error_t *err);

/* Local wall time "YYYY-MM-DDTHH:MM[:SS]" in tz → unix seconds (gap and
 * overlap resolved as above). */
mq_code_t mq_local_to_utc(const char *local, const char *tz, int64_t *out, mq_error_t *err);

/* Unix seconds → local wall time in tz as "YYYY-MM-DDTHH:MM:SS" (19 chars +
 * NUL) into buf[n]. Returns 19, or -1 (buf set to "" when n > 0) for an
 * unknown tz, n < 20, or a year outside 1..9999. */
int mq_utc_to_local(int64_t t, const char *tz, char *buf, size_t n);

/* The UTC offset in seconds (east positive) of tz at instant t: 3600 for
 * Europe/Berlin in winter. MQ_INVALID_ARGUMENT ("time_zone") for an unknown
 * zone. */
mq_code_t mq_tz_offset(const char *tz, int64_t t, int32_t *offset, mq_error_t *err);

/* Calendar windows as people say them, in tz from the instant now_ms, as
 * unix ms [*from, *to). A window that has begun starts at now_ms:
 *   TODAY      now → the next local midnight
 *   TOMORROW   the next local midnight → the one after
 *   WEEKEND    this week's Friday 17:00 (or now, if later) → Monday 00:00
 *              (on a Saturday or Sunday: now → the coming Monday 00:00)
 *   THIS_WEEK  now → the next Monday 00:00
 *   NEXT_WEEK  the next Monday 00:00 → the Monday after
 *   THIS_MONTH now → the 1st of next month 00:00
 * Local times are converted with the zone's rules (a DST change inside the
 * window is handled; a midnight that does not exist resolves as
 * mq_local_to_utc does). INVALID_ARGUMENT ("time_zone") for an unknown zone. */
typedef enum {
  MQ_WINDOW_TODAY = 1,
  MQ_WINDOW_TOMORROW,
  MQ_WINDOW_WEEKEND,
  MQ_WINDOW_THIS_WEEK,
  MQ_WINDOW_NEXT_WEEK,
  MQ_WINDOW_THIS_MONTH
} mq_window_t;
mq_code_t mq_local_window(mq_window_t w, int64_t now_ms, const char *tz, int64_t *from, int64_t *to, mq_error_t *err);
/* The starts (unix ms) of n consecutive local months in tz, the first the one
 * containing now_ms, and their labels "YYYY-MM" (labels may be NULL). */
mq_code_t mq_local_months(int64_t now_ms, const char *tz, size_t n, int64_t *starts, char (*labels)[8],
                          mq_error_t *err);

#endif
