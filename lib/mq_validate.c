/*
 * mq_validate.c — the checks declared in mq_validate.h, and the tables behind
 * them.
 *
 * Invariants: every refusal goes through refuse() (MQ_INVALID_ARGUMENT with
 * the caller's field name); caller bugs go through misuse() (MQ_INTERNAL).
 * Client-supplied values reach a message only through quote() — printable
 * ASCII, at most 32 bytes — and e-mail addresses, URLs and free text never
 * do. UTF-8 is decoded by exactly one function, utf8_decode(), which follows
 * Unicode Table 3-7 (well-formed byte sequences) to the letter.
 *
 * Tables (both sorted, searched with bsearch):
 *   - ISO 4217 (CURRENCIES): the active codes of ISO 4217 List One with
 *     their minor units, built from Debian iso-codes 4.15 and the amendments
 *     since, as of 2026: added XCG (Caribbean guilder, 2025) and ZWG
 *     (Zimbabwe Gold, 2024); left out the codes superseded by a changeover
 *     that has ended: HRK (euro 2023), SLL (→ SLE), ZWL (→ ZWG), ANG (→ XCG,
 *     mid-2025), BGN (euro 2026). CUC is still listed by ISO and kept. The
 *     codes whose minor unit ISO gives as "N.A." (NO_MINOR_UNIT: XXX, XTS,
 *     metals, bond units, XDR, XSU, XUA) are real ISO codes but are refused
 *     with their own message: a price in int64 minor units needs a minor
 *     unit. Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW) have
 *     one and are accepted. When ISO amends the list, edit the table and the
 *     tests in tests/unit/lib/test_validate.c together.
 *   - ISO 3166-1 alpha-2 (COUNTRIES): the 249 officially assigned codes.
 *
 * Read next: tests/unit/lib/test_validate.c (one test group per check).
 */
#include "lib/mq_validate.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define QUOTE_MAX 32

/* ---- helpers ------------------------------------------------------------------ */

static mq_code_t refuse(mq_error_t *err, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static mq_code_t refuse(mq_error_t *err, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mq_error_setv(err, MQ_INVALID_ARGUMENT, field, fmt, ap);
  va_end(ap);
  return MQ_INVALID_ARGUMENT;
}

static mq_code_t misuse(mq_error_t *err, const char *field, const char *what) {
  return mq_error_set(err, MQ_INTERNAL, field, "internal error: invalid validation call (%s)", what);
}

/* A client value made safe to put in a message: printable ASCII other than
 * quote and backslash kept, anything else becomes '?', cut at QUOTE_MAX bytes
 * with "..." appended. out needs QUOTE_MAX + 4 bytes. */
static const char *quote(const char *s, char out[QUOTE_MAX + 4]) {
  size_t i = 0;
  for (; i < QUOTE_MAX && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') ? (char)c : '?';
  }
  if (s[i]) {
    memcpy(out + i, "...", 3);
    i += 3;
  }
  out[i] = '\0';
  return out;
}

static bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
static bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
static bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}
static bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static char to_lower(char c) {
  return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

/* ---- UTF-8 -------------------------------------------------------------------- */

/* Decodes one code point from s[0..n), n >= 1. Returns its length in bytes
 * (1..4) and sets *cp, or 0 if the bytes there are not well-formed UTF-8
 * (Unicode Table 3-7: the second byte's range depends on the first so that
 * overlongs, surrogates and values above U+10FFFF are all ill-formed). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char b0 = s[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  uint32_t v;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    v = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    v = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0; /* overlong */
    if (b0 == 0xED) hi = 0x9F; /* surrogates */
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    v = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90; /* overlong */
    if (b0 == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
  }
  if (n < len) return 0; /* truncated */
  if (s[1] < lo || s[1] > hi) return 0;
  v = (v << 6) | (s[1] & 0x3Fu);
  for (size_t i = 2; i < len; i++) {
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  *cp = v;
  return len;
}

bool mq_utf8_valid(const char *s, size_t n) {
  return mq_utf8_length(s, n) != (size_t)-1;
}

size_t mq_utf8_length(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t count = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_decode(p + i, n - i, &cp);
    if (!len) return (size_t)-1;
    i += len;
    count++;
  }
  return count;
}

/* ---- text ----------------------------------------------------------------------- */

static bool is_space_cp(uint32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000 || cp == 0xFEFF;
}

static bool is_control_cp(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* The code point that ends the valid UTF-8 string s[0..n), n >= 1. */
static uint32_t utf8_last(const unsigned char *s, size_t n) {
  size_t i = n - 1;
  while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
  uint32_t cp = 0;
  (void)utf8_decode(s + i, n - i, &cp);
  return cp;
}

mq_code_t mq_check_text(mq_error_t *err, const char *field, const char *s, size_t min_bytes, size_t max_bytes,
                        unsigned flags) {
  if (!s) s = "";
  if (min_bytes > max_bytes) return misuse(err, field, "min_bytes > max_bytes");
  if (!s[0]) {
    if (min_bytes > 0) return refuse(err, field, "is required");
    return MQ_OK;
  }
  /* strnlen: never walk further than one byte past the limit. */
  size_t n = max_bytes < SIZE_MAX / 2 ? strnlen(s, max_bytes + 1) : strlen(s);
  if (n > max_bytes) return refuse(err, field, "must be at most %zu bytes of UTF-8", max_bytes);
  if (n < min_bytes) return refuse(err, field, "must be at least %zu bytes of UTF-8", min_bytes);

  bool multiline = (flags & MQ_TEXT_MULTILINE) && !(flags & MQ_TEXT_SINGLE_LINE);
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_decode(p + i, n - i, &cp);
    if (!len) return refuse(err, field, "must be valid UTF-8 (invalid byte sequence at byte %zu)", i);
    i += len;
    if (is_control_cp(cp)) {
      if (multiline && (cp == '\n' || cp == '\r' || cp == '\t')) continue;
      return refuse(err, field,
                    multiline ? "must not contain control characters other than newline, carriage "
                                "return and tab (found U+%04X)"
                              : "must be a single line without control characters (found U+%04X)",
                    (unsigned)cp);
    }
    if (!multiline && (cp == 0x2028 || cp == 0x2029))
      return refuse(err, field, "must be a single line (found line or paragraph separator U+%04X)", (unsigned)cp);
  }
  if (flags & MQ_TEXT_TRIMMED) {
    uint32_t first;
    (void)utf8_decode(p, n, &first);
    if (is_space_cp(first) || is_space_cp(utf8_last(p, n)))
      return refuse(err, field, "must not start or end with whitespace");
  }
  return MQ_OK;
}

/* ---- identifiers ------------------------------------------------------------------ */

mq_code_t mq_check_id(mq_error_t *err, const char *field, const char *s) {
  if (!s || !s[0]) return refuse(err, field, "is required");
  size_t i = 0;
  for (; i <= MQ_ID_MAX && s[i]; i++)
    if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-')
      return refuse(err, field, "must be an id of letters, digits, '_' and '-' only");
  if (i > MQ_ID_MAX) return refuse(err, field, "must be an id of at most %d characters", MQ_ID_MAX);
  return MQ_OK;
}

mq_code_t mq_check_uuid(mq_error_t *err, const char *field, const char *s) {
  if (!s || !s[0]) return refuse(err, field, "is required");
  size_t i = 0;
  for (; i < 36; i++) {
    bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
    if (!s[i] || (dash ? s[i] != '-' : !is_hex(s[i]))) break;
  }
  if (i != 36 || s[36])
    return refuse(err, field, "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)");
  return MQ_OK;
}

/* ---- e-mail ------------------------------------------------------------------------ */

static bool is_atext(char c) {
  return is_alnum(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* Domain name labels: [A-Za-z0-9-]{1,63}, no '-' at either end. Checks
 * d[0..n); sets *tld to the last label and *labels to their count. Returns
 * NULL, or a reason that reads after "the domain " / "the host ". */
static const char *check_dns_name(const char *d, size_t n, const char **tld, size_t *tld_len, size_t *labels) {
  *labels = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && d[i] != '.') {
      if (!is_alnum(d[i]) && d[i] != '-') return "labels may contain only letters, digits and '-'";
      continue;
    }
    size_t len = i - start;
    if (len == 0) return "has an empty label (leading, trailing or double dot)";
    if (len > 63) return "labels must be at most 63 characters";
    if (d[start] == '-' || d[i - 1] == '-') return "labels must not start or end with '-'";
    *tld = d + start;
    *tld_len = len;
    (*labels)++;
    start = i + 1;
  }
  return NULL;
}

static bool is_punycode_label(const char *l, size_t n) {
  return n > 4 && to_lower(l[0]) == 'x' && to_lower(l[1]) == 'n' && l[2] == '-' && l[3] == '-';
}

mq_code_t mq_check_email(mq_error_t *err, const char *field, const char *s) {
  static const char bad[] = "must be a valid e-mail address";
  if (!s || !s[0]) return refuse(err, field, "is required");
  size_t n = strnlen(s, MQ_EMAIL_MAX + 1);
  if (n > MQ_EMAIL_MAX) return refuse(err, field, "%s of at most %d bytes", bad, MQ_EMAIL_MAX);
  const char *at = strchr(s, '@');
  if (!at || strchr(at + 1, '@')) return refuse(err, field, "%s: it must contain exactly one '@'", bad);

  size_t local_len = (size_t)(at - s);
  if (local_len == 0) return refuse(err, field, "%s: the part before '@' is empty", bad);
  if (local_len > 64) return refuse(err, field, "%s: the part before '@' must be at most 64 bytes", bad);
  for (size_t i = 0; i < local_len; i++) {
    if (s[i] == '.') {
      if (i == 0 || i == local_len - 1 || s[i + 1] == '.')
        return refuse(err, field, "%s: the part before '@' must not start or end with '.' or contain '..'", bad);
    } else if (!is_atext(s[i])) {
      return refuse(err, field, "%s: the part before '@' contains a character that is not allowed", bad);
    }
  }

  const char *domain = at + 1;
  size_t dn = n - local_len - 1;
  if (dn == 0) return refuse(err, field, "%s: the domain after '@' is empty", bad);
  const char *tld = NULL;
  size_t tld_len = 0, labels = 0;
  const char *why = check_dns_name(domain, dn, &tld, &tld_len, &labels);
  if (why) return refuse(err, field, "%s: the domain %s", bad, why);
  if (labels < 2) return refuse(err, field, "%s: the domain needs a dot, as in example.com", bad);
  bool tld_ok = is_punycode_label(tld, tld_len);
  if (!tld_ok && tld_len >= 2) {
    tld_ok = true;
    for (size_t i = 0; i < tld_len; i++) tld_ok = tld_ok && is_alpha(tld[i]);
  }
  if (!tld_ok) return refuse(err, field, "%s: the top-level domain must be letters (at least two) or punycode", bad);
  return MQ_OK;
}

void mq_email_normalize(const char *in, char *out, size_t cap) {
  if (!out || cap == 0) return;
  if (!in) in = "";
  const char *at = strrchr(in, '@');
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++) out[i] = (at && in + i > at) ? to_lower(in[i]) : in[i];
  out[i] = '\0';
}

/* ---- URLs ------------------------------------------------------------------------------ */

/* RFC 3986 characters allowed in a URL after the scheme (unreserved,
 * reserved, and '%' which is checked separately). */
static bool is_url_char(char c) {
  return is_alnum(c) || (c && strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL);
}

/* IPv4 dotted quad, each part 0..255 without leading zeros. */
static bool is_ipv4(const char *h, size_t n) {
  size_t parts = 0, i = 0;
  while (i < n) {
    size_t start = i;
    unsigned v = 0;
    while (i < n && is_digit(h[i]) && i - start < 4) v = v * 10 + (unsigned)(h[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && h[start] == '0')) return false;
    parts++;
    if (i < n) {
      if (h[i] != '.' || i + 1 == n) return false;
      i++;
    }
  }
  return parts == 4;
}

/* Loose IPv6 literal syntax inside brackets: hex digits, ':' and '.', at
 * least two ':' (the resolver does the rest). */
static bool is_ipv6_literal(const char *h, size_t n) {
  size_t colons = 0;
  for (size_t i = 0; i < n; i++) {
    if (h[i] == ':')
      colons++;
    else if (!is_hex(h[i]) && h[i] != '.')
      return false;
  }
  return n >= 2 && colons >= 2 && colons <= 7;
}

mq_code_t mq_check_url(mq_error_t *err, const char *field, const char *s, unsigned flags) {
  bool https_only = flags & MQ_URL_HTTPS_ONLY;
  const char *want = https_only ? "an absolute https:// URL" : "an absolute http:// or https:// URL";
  if (!s || !s[0]) return refuse(err, field, "is required");
  size_t n = strnlen(s, MQ_URL_MAX + 1);
  if (n > MQ_URL_MAX) return refuse(err, field, "must be a URL of at most %d bytes", MQ_URL_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c == 0x7F) return refuse(err, field, "must be a URL without spaces or control characters");
    if (c >= 0x80) return refuse(err, field, "must be an ASCII URL (percent-encode other characters)");
    if (c == '\\') return refuse(err, field, "must be a URL without '\\' (use '/')");
    if (!is_url_char((char)c)) return refuse(err, field, "must be a URL; character '%c' must be percent-encoded", c);
    if (c == '%' && (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
      return refuse(err, field, "must be a URL; '%%' must be followed by two hex digits");
  }

  size_t scheme_len;
  if (n >= 8 && strncasecmp(s, "https://", 8) == 0) {
    scheme_len = 8;
  } else if (n >= 7 && strncasecmp(s, "http://", 7) == 0) {
    if (https_only) return refuse(err, field, "must be %s (plain http is not accepted)", want);
    scheme_len = 7;
  } else {
    return refuse(err, field, "must be %s", want);
  }

  const char *auth = s + scheme_len;
  size_t an = strcspn(auth, "/?#");
  if (an == 0) return refuse(err, field, "must be %s with a host", want);
  if (memchr(auth, '@', an)) return refuse(err, field, "must be a URL without credentials (user:password@)");

  /* host [":" port] */
  const char *host = auth;
  size_t hn;
  const char *rest;
  if (auth[0] == '[') {
    const char *close = memchr(auth, ']', an);
    if (!close || !is_ipv6_literal(auth + 1, (size_t)(close - auth - 1)))
      return refuse(err, field, "must be a URL whose bracketed host is an IPv6 address");
    hn = (size_t)(close - auth) + 1;
    rest = close + 1;
  } else {
    const char *colon = memchr(auth, ':', an);
    hn = colon ? (size_t)(colon - auth) : an;
    rest = auth + hn;
    if (hn == 0) return refuse(err, field, "must be %s with a host", want);
    if (!is_ipv4(host, hn)) {
      const char *tld = NULL;
      size_t tld_len = 0, labels = 0;
      if (hn > 253) return refuse(err, field, "must be a URL whose host is at most 253 characters");
      const char *why = check_dns_name(host, hn, &tld, &tld_len, &labels);
      if (why) return refuse(err, field, "must be a URL with a valid host: the host %s", why);
      bool numeric = true; /* "256.1.1.1", "1.2.3": a broken IPv4, not a name */
      for (size_t i = 0; i < tld_len; i++) numeric = numeric && is_digit(tld[i]);
      if (numeric) return refuse(err, field, "must be a URL with a valid host: not a valid IPv4 address");
    }
  }
  size_t rn = (size_t)(auth + an - rest);
  if (rn > 0) {
    if (rest[0] != ':' || rn == 1 || rn > 6) return refuse(err, field, "must be a URL with a valid port (1-65535)");
    unsigned long port = 0;
    for (size_t i = 1; i < rn; i++) {
      if (!is_digit(rest[i])) return refuse(err, field, "must be a URL with a valid port (1-65535)");
      port = port * 10 + (unsigned long)(rest[i] - '0');
    }
    if (port == 0 || port > 65535) return refuse(err, field, "must be a URL with a valid port (1-65535)");
  }
  return MQ_OK;
}

/* ---- currencies ------------------------------------------------------------------------ */

typedef struct currency {
  char code[4];
  int minor_units;
} currency_t;

/* Active ISO 4217 codes with a minor unit, sorted. See the file comment. */
static const currency_t CURRENCIES[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"AOA", 2}, {"ARS", 2}, {"AUD", 2}, {"AWG", 2}, {"AZN", 2},
    {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BOV", 2},
    {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHE", 2},
    {"CHF", 2}, {"CHW", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"COU", 2}, {"CRC", 2}, {"CUC", 2},
    {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2},
    {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2},
    {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2},
    {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0}, {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2},
    {"KHR", 2}, {"KMF", 0}, {"KPW", 2}, {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2},
    {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2}, {"MMK", 2},
    {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2}, {"MWK", 2}, {"MXN", 2}, {"MXV", 2}, {"MYR", 2},
    {"MZN", 2}, {"NAD", 2}, {"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2},
    {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RSD", 2},
    {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2}, {"SGD", 2}, {"SHP", 2},
    {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2},
    {"TJS", 2}, {"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2}, {"VED", 2}, {"VES", 2},
    {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2}, {"XCG", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2},
    {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
};

/* Active ISO 4217 codes whose minor unit is "N.A.", sorted. */
static const char NO_MINOR_UNIT[][4] = {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR",
                                        "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"};

static int cmp_code(const void *key, const void *elem) {
  return strcmp(key, elem);
}

static bool is_upper3(const char *c) {
  return c && is_upper(c[0]) && is_upper(c[1]) && is_upper(c[2]) && !c[3];
}

int mq_currency_minor_units(const char *code) {
  if (!is_upper3(code)) return -1;
  const currency_t *c =
      bsearch(code, CURRENCIES, sizeof CURRENCIES / sizeof CURRENCIES[0], sizeof CURRENCIES[0], cmp_code);
  return c ? c->minor_units : -1;
}

mq_code_t mq_check_currency(mq_error_t *err, const char *field, const char *code) {
  char q[QUOTE_MAX + 4];
  if (!code || !code[0]) return refuse(err, field, "is required");
  if (!is_upper3(code))
    return refuse(err, field, "must be an ISO 4217 currency code such as EUR (three upper-case letters)");
  if (mq_currency_minor_units(code) >= 0) return MQ_OK;
  if (bsearch(code, NO_MINOR_UNIT, sizeof NO_MINOR_UNIT / sizeof NO_MINOR_UNIT[0], sizeof NO_MINOR_UNIT[0], cmp_code))
    return refuse(err, field,
                  "'%s' is not a currency prices can be given in (ISO 4217 defines no minor unit for it); "
                  "use a currency code such as EUR",
                  quote(code, q));
  return refuse(err, field, "'%s' is not an active ISO 4217 currency code; use a code such as EUR", quote(code, q));
}

/* ---- countries ------------------------------------------------------------------------- */

/* The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted. */
static const char COUNTRIES[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB",
    "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY",
    "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX",
    "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK",
    "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
    "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR",
    "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE",
    "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
    "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG",
    "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF",
    "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY",
    "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

mq_code_t mq_check_country(mq_error_t *err, const char *field, const char *code) {
  char q[QUOTE_MAX + 4];
  if (!code || !code[0]) return refuse(err, field, "is required");
  if (!is_upper(code[0]) || !is_upper(code[1]) || code[2])
    return refuse(err, field, "must be an ISO 3166-1 alpha-2 country code such as DE (two upper-case letters)");
  if (!bsearch(code, COUNTRIES, sizeof COUNTRIES / sizeof COUNTRIES[0], sizeof COUNTRIES[0], cmp_code))
    return refuse(err, field, "'%s' is not an assigned ISO 3166-1 alpha-2 country code", quote(code, q));
  return MQ_OK;
}

/* ---- languages --------------------------------------------------------------------------- */

mq_code_t mq_check_language(mq_error_t *err, const char *field, const char *tag) {
  if (!tag || !tag[0]) return refuse(err, field, "is required");
  const char *p = tag;
  size_t n = 0;
  while (is_lower(p[n])) n++;
  bool ok = (n == 2 || n == 3);
  p += n;
  /* optional script: -Xxxx */
  if (ok && p[0] == '-' && is_upper(p[1]) && is_lower(p[2]) && is_lower(p[3]) && is_lower(p[4]) &&
      (p[5] == '-' || !p[5]))
    p += 5;
  /* optional region: -XX or -999 */
  if (ok && p[0] == '-') {
    if (is_upper(p[1]) && is_upper(p[2]) && !p[3])
      p += 3;
    else if (is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) && !p[4])
      p += 4;
  }
  if (!ok || *p)
    return refuse(err, field,
                  "must be a language tag such as en, pt-BR, zh-Hant-TW or es-419 (language in lower "
                  "case, optional Script in Title case, optional REGION in upper case or 3 digits)");
  return MQ_OK;
}

/* ---- time zones ---------------------------------------------------------------------------- */

static bool tz_name_shape_ok(const char *name) {
  size_t i = 0;
  for (; name[i]; i++) {
    char c = name[i];
    if (i >= MQ_TIMEZONE_MAX) return false;
    if (!is_alnum(c) && !strchr("/_+-", c)) return false;
    if (c == '/' && (i == 0 || name[i - 1] == '/' || !name[i + 1])) return false;
  }
  /* '.' is not in the set above, so ".." cannot occur; kept explicit. */
  return i > 0 && !strstr(name, "..");
}

static bool tz_name_reserved(const char *name) {
  return strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0 || strcmp(name, "localtime") == 0 ||
         strcmp(name, "posixrules") == 0 || strcmp(name, "Factory") == 0;
}

mq_code_t mq_check_timezone(mq_error_t *err, const char *field, const char *name) {
  char q[QUOTE_MAX + 4];
  if (!name || !name[0]) return refuse(err, field, "is required");
  if (!tz_name_shape_ok(name) || tz_name_reserved(name))
    return refuse(err, field, "must be an IANA time zone name such as Europe/Paris or UTC");
  const char *dir = getenv("TZDIR");
  if (!dir || dir[0] != '/') dir = "/usr/share/zoneinfo";
  char path[4096];
  int len = snprintf(path, sizeof path, "%s/%s", dir, name);
  bool found = false;
  if (len > 0 && (size_t)len < sizeof path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
      char magic[4];
      ssize_t r;
      do r = read(fd, magic, sizeof magic);
      while (r < 0 && errno == EINTR);
      found = r == (ssize_t)sizeof magic && memcmp(magic, "TZif", 4) == 0;
      close(fd);
    }
  }
  if (!found)
    return refuse(err, field, "'%s' is not a known IANA time zone; use a name such as Europe/Paris or UTC",
                  quote(name, q));
  return MQ_OK;
}

/* ---- enums, numbers, lists, coordinates, pages -------------------------------------------- */

mq_code_t mq_check_enum(mq_error_t *err, const char *field, int value, const ProtobufCEnumDescriptor *d,
                        bool allow_zero) {
  if (!d || d->magic != PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC) return misuse(err, field, "enum descriptor");
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
  if (value == 0 && !allow_zero) {
    if (v) return refuse(err, field, "is required (%s, 0, means unspecified)", v->name);
    return refuse(err, field, "is required (0 is not a value of %s)", d->name);
  }
  if (!v) return refuse(err, field, "%d is not a value of %s", value, d->name);
  return MQ_OK;
}

mq_code_t mq_check_range_i64(mq_error_t *err, const char *field, int64_t v, int64_t lo, int64_t hi) {
  if (lo > hi) return misuse(err, field, "lo > hi");
  if (v < lo || v > hi) return refuse(err, field, "must be between %lld and %lld", (long long)lo, (long long)hi);
  return MQ_OK;
}

mq_code_t mq_check_count(mq_error_t *err, const char *field, size_t n, size_t max) {
  if (n > max) return refuse(err, field, "must have at most %zu items", max);
  return MQ_OK;
}

mq_code_t mq_check_lat_lng(mq_error_t *err, const char *field_lat, const char *field_lng, double lat, double lng) {
  if (!isfinite(lat) || lat < -90.0 || lat > 90.0)
    return refuse(err, field_lat, "must be a latitude between -90 and 90 degrees");
  if (!isfinite(lng) || lng < -180.0 || lng > 180.0)
    return refuse(err, field_lng, "must be a longitude between -180 and 180 degrees");
  return MQ_OK;
}

mq_code_t mq_check_page_size(mq_error_t *err, const char *field, uint32_t requested, uint32_t def, uint32_t max,
                             uint32_t *out) {
  if (!out || max == 0 || def == 0 || def > max) return misuse(err, field, "page size limits");
  *out = requested == 0 ? def : (requested > max ? max : requested);
  return MQ_OK;
}

mq_code_t mq_check_page_token(mq_error_t *err, const char *field, const char *t, bool *has, int64_t *ms,
                              const char **id) {
  *has = false;
  if (!t || !t[0]) return MQ_OK;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(t, &end, 10);
  if (errno || !end || end == t || *end != '.' || mq_check_uuid(NULL, NULL, end + 1) != MQ_OK)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is not a page token this method returned");
  *has = true;
  *ms = v;
  *id = end + 1;
  return MQ_OK;
}
