/*
 * mq_validate.h — input validation shared by every handler (DESIGN.md §7:
 * "size limits on every string and list").
 *
 * What it does: small, pure checks for the shapes that requests carry —
 * UTF-8 text, ids, UUIDs, e-mail addresses, URLs, ISO 4217 currencies,
 * ISO 3166-1 countries, BCP 47 language tags, IANA time zones, protobuf enum
 * values, numeric ranges, list sizes, coordinates and page sizes.
 *
 * Invariants and conventions (the same for every mq_check_* function):
 *   - Argument order is always (err, field, value..., limits/flags).
 *   - Success returns MQ_OK and leaves `err` untouched.
 *   - A refusal of client input returns MQ_INVALID_ARGUMENT through
 *     mq_error_set(): err->field is exactly the `field` the caller passed (the
 *     request field name, e.g. "event.title"), err->message tells a client
 *     developer what a valid value looks like ("must be at most 200 bytes of
 *     UTF-8"). Messages never quote e-mail addresses, URLs or free text; short
 *     codes (currency, country, ...) are quoted sanitized (printable ASCII
 *     only) and cut to 32 bytes.
 *   - A misuse by the caller (NULL descriptor, def > max, ...) returns
 *     MQ_INTERNAL: it is a bug in the handler, not the client's fault.
 *   - `err` may be NULL (the code is still returned). String values may be
 *     NULL, which is treated as "" (protobuf-c gives "" for unset strings).
 *   - Except mq_check_text (which has min_bytes), every check of a string
 *     refuses "" with "is required". An optional field is checked only when
 *     it is set: `if (req->url[0]) rc = mq_check_url(...)`.
 *   - No allocation, no global mutable state, thread-safe. The only I/O is
 *     mq_check_timezone (one open/read of a tzdata file).
 *
 * Ownership: nothing taken or returned is owned by this module; strings are
 * borrowed for the duration of the call.
 *
 * Read next: mq_validate.c (the tables: ISO 4217, ISO 3166-1, and the
 * judgment calls they embody), mq_error.h (the error vocabulary), and any
 * handler in handlers/ for the calling pattern.
 */
#ifndef MQ_VALIDATE_H
#define MQ_VALIDATE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

/* ---- UTF-8 ------------------------------------------------------------------
 * Strict UTF-8 (RFC 3629, Unicode Table 3-7): no overlong forms, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequences. U+0000 is valid UTF-8 (mq_check_text refuses it as a control
 * character). s may be NULL only when n == 0. */
bool mq_utf8_valid(const char *s, size_t n);
/* Number of code points in s[0..n), or (size_t)-1 if it is not valid UTF-8. */
size_t mq_utf8_length(const char *s, size_t n);

/* ---- Text -------------------------------------------------------------------
 * Flags for mq_check_text. SINGLE_LINE and MULTILINE choose which control
 * characters are allowed; with neither, SINGLE_LINE applies; with both, the
 * stricter SINGLE_LINE applies.
 *   MQ_TEXT_SINGLE_LINE  no control characters at all: C0 (U+0000..U+001F),
 *                        DEL (U+007F), C1 (U+0080..U+009F), and no
 *                        U+2028/U+2029 line/paragraph separators.
 *   MQ_TEXT_MULTILINE    as SINGLE_LINE, but \n, \r and \t are allowed (and
 *                        U+2028/U+2029).
 *   MQ_TEXT_TRIMMED      no leading or trailing whitespace (ASCII space,
 *                        \t \n \v \f \r, and Unicode spaces such as U+00A0,
 *                        U+2000..U+200A, U+3000, U+FEFF).
 */
#define MQ_TEXT_SINGLE_LINE 0x1u
#define MQ_TEXT_MULTILINE 0x2u
#define MQ_TEXT_TRIMMED 0x4u

/* Checks, in this order: required (s empty and min_bytes > 0 → "is
 * required"), at most max_bytes bytes, at least min_bytes bytes, valid UTF-8,
 * control characters per flags, whitespace per flags. Lengths are in bytes
 * (what storage and wire limits care about), not code points. Never quotes s. */
mq_code_t mq_check_text(mq_error_t *err, const char *field, const char *s, size_t min_bytes, size_t max_bytes,
                        unsigned flags);

/* ---- Identifiers --------------------------------------------------------------
 * mq_check_id: 1..MQ_ID_MAX bytes of [A-Za-z0-9_-] (UUIDs and similar).
 * mq_check_uuid: the 36-character 8-4-4-4-12 hex form; hex digits of either
 * case (RFC 4122 §3: case-insensitive on input); any version. No braces, no
 * "urn:uuid:" prefix. */
#define MQ_ID_MAX 64
mq_code_t mq_check_id(mq_error_t *err, const char *field, const char *s);
mq_code_t mq_check_uuid(mq_error_t *err, const char *field, const char *s);

/* ---- E-mail -------------------------------------------------------------------
 * Pragmatic address syntax (what mail providers actually accept, not all of
 * RFC 5322): at most 254 bytes; exactly one '@'; local part 1..64 bytes of
 * RFC 5322 atext (A-Z a-z 0-9 ! # $ % & ' * + / = ? ^ _ ` { | } ~ -) and
 * dots, no leading, trailing or double dot, no quoted strings; domain of at
 * least two dot-separated labels, each 1..63 bytes of [A-Za-z0-9-] not
 * starting or ending with '-'; the last label (TLD) is 2+ letters or an IDN
 * A-label ("xn--..."). No IP literals, no trailing dot. ASCII only: clients
 * send internationalized domains in punycode. Messages never quote the
 * address (PII). */
#define MQ_EMAIL_MAX 254
mq_code_t mq_check_email(mq_error_t *err, const char *field, const char *s);
/* Copies `in` to out[cap] with the domain (after the last '@') lower-cased;
 * the local part is kept as is (it is case-sensitive per RFC 5321). Always
 * NUL-terminates when cap > 0, truncating like snprintf; cap >=
 * MQ_EMAIL_MAX + 1 holds any address mq_check_email accepts. `in` may equal
 * `out` (in place). NULL `in` gives "". Does not validate. */
void mq_email_normalize(const char *in, char *out, size_t cap);

/* ---- URLs -----------------------------------------------------------------------
 * Absolute http(s) URLs: scheme "http" or "https" (any case) then "://", a
 * host (DNS name, IPv4, or bracketed IPv6), optional port 1..65535, then an
 * optional path/query/fragment. At most MQ_URL_MAX bytes, ASCII only, no
 * whitespace or control characters, no userinfo ("user:pass@"), no
 * backslash, only RFC 3986 characters, and every '%' followed by two hex
 * digits. This is syntax only: it is no SSRF guard (a server that fetches a
 * URL must still refuse private addresses). Messages never quote the URL
 * (query strings carry tokens). */
#define MQ_URL_HTTPS_ONLY 0x1u
#define MQ_URL_MAX 2048
mq_code_t mq_check_url(mq_error_t *err, const char *field, const char *s, unsigned flags);

/* ---- Currencies (ISO 4217) ----------------------------------------------------
 * The ISO 4217 exponent of an active currency code ("EUR" 2, "JPY" 0, "XOF" 0,
 * "KWD" 3, "CLF" 4), or -1 for anything else: unknown or withdrawn codes,
 * lower case, and the active codes whose minor unit ISO lists as "N.A."
 * (XXX "no currency", XTS "testing", precious metals XAU/XAG/XPD/XPT, bond
 * units XBA..XBD, XDR, XSU, XUA) — a price in int64 minor units (DESIGN.md §4)
 * cannot be expressed in those. NULL gives -1. */
int mq_currency_minor_units(const char *code);
/* Accepts exactly the codes for which mq_currency_minor_units() >= 0. */
mq_code_t mq_check_currency(mq_error_t *err, const char *field, const char *code);

/* ---- Countries (ISO 3166-1 alpha-2) -----------------------------------------
 * One of the 249 officially assigned codes, upper case only ("DE", not "de").
 * User-assigned (XK), exceptionally reserved (UK, EU) and withdrawn codes are
 * refused. */
mq_code_t mq_check_country(mq_error_t *err, const char *field, const char *code);

/* ---- Languages (BCP 47 subset) ------------------------------------------------
 * language ["-" script] ["-" region]: language = 2..3 lower-case letters;
 * script = 4 letters, Title case ("Hant"); region = 2 upper-case letters or 3
 * digits. Examples: "en", "pt-BR", "zh-Hant-TW", "es-419". Exact case is
 * required (send the canonical form). Subtags are not checked against the
 * IANA registry. */
mq_code_t mq_check_language(mq_error_t *err, const char *field, const char *tag);

/* ---- Time zones (IANA) -----------------------------------------------------------
 * 1..64 bytes of [A-Za-z0-9/_+-], no leading or trailing '/', no empty path
 * segment, no "..", and a TZif file must exist at <TZDIR>/<name>, where
 * TZDIR is $TZDIR if set to an absolute path (as glibc does), else
 * /usr/share/zoneinfo. The tzdata package must therefore be installed on
 * every server (Debian: `apt-get install tzdata`); without it every zone,
 * including "UTC", is refused. The tzdata trees "posix/" and "right/" and
 * the non-zones "localtime", "posixrules" and "Factory" are refused. Case
 * matters ("utc" is refused). Does one open()+read() of 4 bytes. */
#define MQ_TIMEZONE_MAX 64
mq_code_t mq_check_timezone(mq_error_t *err, const char *field, const char *name);

/* ---- Enums ----------------------------------------------------------------------
 * `value` must be one of the values declared in `d` (proto3 enums are open:
 * protobuf-c hands unknown numbers through unchanged), and must not be 0 (the
 * *_UNSPECIFIED convention) unless allow_zero. d == NULL → MQ_INTERNAL. */
mq_code_t mq_check_enum(mq_error_t *err, const char *field, int value, const ProtobufCEnumDescriptor *d,
                        bool allow_zero);

/* ---- Numbers and lists -----------------------------------------------------------
 * lo <= v <= hi (lo > hi → MQ_INTERNAL). */
mq_code_t mq_check_range_i64(mq_error_t *err, const char *field, int64_t v, int64_t lo, int64_t hi);
/* n <= max: "must have at most <max> items". */
mq_code_t mq_check_count(mq_error_t *err, const char *field, size_t n, size_t max);

/* Both finite, lat in [-90, 90], lng in [-180, 180]. A refusal names
 * field_lat or field_lng, whichever is wrong (latitude checked first). */
mq_code_t mq_check_lat_lng(mq_error_t *err, const char *field_lat, const char *field_lng, double lat, double lng);

/* ---- Pagination ----------------------------------------------------------------
 * *out = requested == 0 ? def : min(requested, max). Never refuses client
 * input: a page size above max is CLAMPED, not refused (Google AIP-158: the
 * server may return fewer results than asked for). If the proto field is a
 * signed int32, refuse negatives before calling. Caller bugs (out == NULL,
 * max == 0, def == 0, def > max) → MQ_INTERNAL with *out untouched. */
mq_code_t mq_check_page_size(mq_error_t *err, const char *field, uint32_t requested, uint32_t def, uint32_t max,
                             uint32_t *out);

/* Keyset page tokens "<ms>.<uuid>" (the last item's sort key and id): opaque
 * to clients, checked strictly. An empty token is no cursor (*has = false).
 * *id points into `t`. */
mq_code_t mq_check_page_token(mq_error_t *err, const char *field, const char *t, bool *has, int64_t *ms,
                              const char **id);

#endif
