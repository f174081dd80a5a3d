/*
 * test_log.c — cmocka tests for core/mq_log.c: PII redaction and the JSON
 * line builder.
 *
 * Covers: mq_redact_email (first letter + domain, last '@' wins, no '@' or
 * nothing before it → "[redacted]", NULL, truncation to the buffer);
 * mq_redact_peer (IPv4 last octet zeroed and port dropped, IPv6 reduced to
 * its /48, unix sockets → "unix", NULL → "", anything else → "[redacted]"),
 * including the peer format gRPC 1.51 really produces for IPv6
 * ("ipv6:%5B::1%5D:35026", percent-encoded brackets) and addresses whose "::"
 * falls inside the first three groups; and the line builder, inspected in
 * l.buf before mq_log_end: header fields, quote/backslash escapes, control
 * characters as \u00XX, valid UTF-8 kept, invalid UTF-8 (stray bytes,
 * truncated sequences, C0/C1 overlongs, UTF-16 surrogates, 3-byte overlongs,
 * code points above U+10FFFF) replaced by U+FFFD (EF BF BD), escaped keys,
 * NULL values as null, ints and bools, mq_log_email/mq_log_peer, level
 * filtering (skip), and that the finished line parses as JSON even when a
 * value overflows the 2 KiB line buffer.
 *
 * Invariant: the async flusher is never started, so mq_log_end writes each
 * finished line to stderr at once (that output is expected noise).
 * Read next: core/mq_log.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"

/* ---- helpers ------------------------------------------------------------------------- */

static const char *find_in(const mq_logline_t *l, const char *needle, size_t n) {
  return memmem(l->buf, l->len, needle, n);
}

/* The line must contain `,"key":` immediately followed by `expect` (raw bytes). */
static void expect_member(const mq_logline_t *l, const char *key, const char *expect, size_t expect_len) {
  char pat[128];
  int pl = snprintf(pat, sizeof pat, ",\"%s\":", key);
  const char *p = find_in(l, pat, (size_t)pl);
  if (!p) fail_msg("no member %s in %.*s", key, (int)l->len, l->buf);
  p += pl;
  size_t room = (size_t)(l->buf + l->len - p);
  if (room < expect_len || memcmp(p, expect, expect_len) != 0)
    fail_msg("member %s: got %.*s, want %.*s", key, (int)(room < expect_len + 8 ? room : expect_len + 8), p,
             (int)expect_len, expect);
}
#define EXPECT_MEMBER(l, key, lit) expect_member((l), (key), (lit), sizeof(lit) - 1)

/* Parses the finished line (buf + "}") as JSON with libbson's reader. */
static bool line_is_json(const mq_logline_t *l) {
  char tmp[sizeof l->buf + 2];
  memcpy(tmp, l->buf, l->len);
  tmp[l->len] = '}';
  bson_error_t berr;
  bson_t *b = bson_new_from_json((const uint8_t *)tmp, (ssize_t)l->len + 1, &berr);
  if (!b) return false;
  bson_destroy(b);
  return true;
}

/* Builds a line with one member s=<val, n bytes>; returns it (not ended). */
static void line_with(mq_logline_t *l, const char *val, size_t n) {
  mq_log_begin(l, MQ_LOG_INFO, "test");
  assert_false(l->skip);
  mq_log_strn(l, "s", val, n);
}

/* True if `s`..`s+n` is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF)
      len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* ---- e-mail ------------------------------------------------------------------------------ */

static void test_redact_email(void **state) {
  (void)state;
  char out[64];
  mq_redact_email("alice@example.com", out, sizeof out);
  assert_string_equal(out, "a***@example.com");
  mq_redact_email("b@x.io", out, sizeof out);
  assert_string_equal(out, "b***@x.io");
  mq_redact_email("odd@local@example.org", out, sizeof out); /* last '@' is the domain's */
  assert_string_equal(out, "o***@example.org");
  mq_redact_email("no-at-sign", out, sizeof out);
  assert_string_equal(out, "[redacted]");
  mq_redact_email("@example.com", out, sizeof out);
  assert_string_equal(out, "[redacted]");
  mq_redact_email("", out, sizeof out);
  assert_string_equal(out, "[redacted]");
  mq_redact_email(NULL, out, sizeof out);
  assert_string_equal(out, "[redacted]");
  /* the local part never survives */
  mq_redact_email("secretname@example.com", out, sizeof out);
  assert_null(strstr(out, "secretname"));
  /* truncation, always terminated */
  char small[6];
  mq_redact_email("alice@example.com", small, sizeof small);
  assert_string_equal(small, "a***@");
  char untouched[2] = {'z', '\0'};
  mq_redact_email("alice@example.com", untouched, 0);
  assert_int_equal(untouched[0], 'z');
}

/* ---- peer -------------------------------------------------------------------------------- */

static void redact(const char *peer, const char *want) {
  char out[80];
  memset(out, 'Q', sizeof out);
  mq_redact_peer(peer, out, sizeof out);
  if (strcmp(out, want) != 0) fail_msg("mq_redact_peer(%s) = '%s', want '%s'", peer ? peer : "NULL", out, want);
}

static void test_redact_peer(void **state) {
  (void)state;
  redact("ipv4:192.168.1.77:5000", "192.168.1.0");
  redact("ipv4:10.0.0.255:1", "10.0.0.0");
  redact("ipv4:127.0.0.1:65535", "127.0.0.0");
  redact("ipv6:[2001:db8:85a3:8d3:1319:8a2e:370:7348]:443", "2001:db8:85a3::");
  redact("unix:/run/marquee.sock", "unix");
  redact(NULL, "");
  redact("ipv4:not-an-address", "[redacted]");
  redact("fd:12", "[redacted]");
  redact("", "[redacted]");
  /* the port never survives */
  char out[80];
  mq_redact_peer("ipv4:203.0.113.9:54321", out, sizeof out);
  assert_null(strstr(out, "54321"));
  assert_null(strstr(out, ".9"));
  /* truncation, always terminated */
  char small[4];
  mq_redact_peer("ipv4:192.168.1.77:5000", small, sizeof small);
  assert_string_equal(small, "192");
}

/* What gRPC 1.51 core really returns for IPv6 peers (grpc_call_get_peer;
 * checked here with Debian's python3-grpcio 1.51.1 on the same core):
 * the brackets are percent-encoded. */
static void test_redact_peer_ipv6_grpc_encoded(void **state) {
  (void)state;
  redact("ipv6:%5B2001:db8:85a3:8d3:1319:8a2e:370:7348%5D:443", "2001:db8:85a3::");
  redact("ipv6:%5B::1%5D:35026", "::");
}

/* "::" inside the first three groups: the /48 is still the first 48 bits,
 * never groups from the interface id. */
static void test_redact_peer_ipv6_compressed(void **state) {
  (void)state;
  redact("ipv6:[fe80::1234:5678:9abc:def0]:1", "fe80::");
  redact("ipv6:[2001:db8::1]:443", "2001:db8::");
  redact("ipv6:[::1]:5", "::");
}

/* ---- line building --------------------------------------------------------------------- */

static void test_line_header_and_types(void **state) {
  (void)state;
  mq_logline_t l;
  mq_log_begin(&l, MQ_LOG_WARN, "rpc");
  assert_false(l.skip);
  assert_int_equal(l.level, MQ_LOG_WARN);
  assert_int_equal(memcmp(l.buf, "{\"ts\":\"", 7), 0);
  assert_int_equal(l.buf[7 + 23], 'Z'); /* 2026-01-02T03:04:05.678Z */
  assert_non_null(find_in(&l, ",\"level\":\"warn\"", 15));
  EXPECT_MEMBER(&l, "event", "\"rpc\"");
  mq_log_str(&l, "method", "/a.B/C");
  mq_log_int(&l, "n", -42);
  mq_log_int(&l, "big", INT64_MAX);
  mq_log_bool(&l, "t", true);
  mq_log_bool(&l, "f", false);
  mq_log_str(&l, "nothing", NULL);
  mq_log_email(&l, "email", "alice@example.com");
  mq_log_peer(&l, "peer", "ipv4:192.168.1.77:5000");
  EXPECT_MEMBER(&l, "method", "\"/a.B/C\"");
  EXPECT_MEMBER(&l, "n", "-42");
  EXPECT_MEMBER(&l, "big", "9223372036854775807");
  EXPECT_MEMBER(&l, "t", "true");
  EXPECT_MEMBER(&l, "f", "false");
  EXPECT_MEMBER(&l, "nothing", "null");
  EXPECT_MEMBER(&l, "email", "\"a***@example.com\"");
  EXPECT_MEMBER(&l, "peer", "\"192.168.1.0\"");
  assert_null(find_in(&l, "alice", 5));
  assert_null(find_in(&l, "168.1.77", 8)); /* not ".77": the timestamp may hold it (ms 770-779) */
  assert_true(line_is_json(&l));
  size_t len = l.len;
  mq_log_end(&l);
  assert_int_equal(l.len, len + 2);
  assert_int_equal(memcmp(l.buf + len, "}\n", 2), 0);
}

static void test_escape_quotes_backslash_controls(void **state) {
  (void)state;
  mq_logline_t l;
  static const char v[] = "say \"hi\" \\ back";
  line_with(&l, v, strlen(v));
  EXPECT_MEMBER(&l, "s", "\"say \\\"hi\\\" \\\\ back\"");
  assert_true(line_is_json(&l));
  mq_log_end(&l);

  static const char c[] =
      "a\nb\tc\rd\x01"
      "e\x1f"
      "f\x7f";
  line_with(&l, c, sizeof c - 1);
  EXPECT_MEMBER(&l, "s", "\"a\\u000ab\\u0009c\\u000dd\\u0001e\\u001ff\\u007f\"");
  assert_null(find_in(&l, "\n", 1)); /* one line, always */
  assert_true(line_is_json(&l));
  mq_log_end(&l);

  /* an embedded NUL inside the given length is escaped, not a terminator */
  line_with(&l, "x\0y", 3);
  EXPECT_MEMBER(&l, "s", "\"x\\u0000y\"");
  mq_log_end(&l);

  /* keys are escaped too */
  mq_log_begin(&l, MQ_LOG_INFO, "test");
  mq_log_str(&l, "we\"ird", "v");
  assert_non_null(find_in(&l, ",\"we\\\"ird\":\"v\"", 14));
  assert_true(line_is_json(&l));
  mq_log_end(&l);
}

static void test_utf8_valid_kept(void **state) {
  (void)state;
  mq_logline_t l;
  static const char v[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"; /* é € 😀 U+10FFFF */
  line_with(&l, v, sizeof v - 1);
  EXPECT_MEMBER(&l, "s", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
  assert_null(find_in(&l, "\xEF\xBF\xBD", 3));
  mq_log_end(&l);
}

static void test_utf8_invalid_replaced(void **state) {
  (void)state;
  mq_logline_t l;
  line_with(&l,
            "a\xff"
            "b",
            3); /* never valid */
  EXPECT_MEMBER(&l, "s",
                "\"a\xEF\xBF\xBD"
                "b\"");
  mq_log_end(&l);

  line_with(&l, "\x80x", 2); /* lone continuation byte */
  EXPECT_MEMBER(&l, "s", "\"\xEF\xBF\xBDx\"");
  mq_log_end(&l);

  line_with(&l, "ab\xc3", 3); /* truncated at the end */
  EXPECT_MEMBER(&l, "s", "\"ab\xEF\xBF\xBD\"");
  mq_log_end(&l);

  line_with(&l, "\xe2\x82z", 3); /* truncated in the middle */
  EXPECT_MEMBER(&l, "s", "\"\xEF\xBF\xBD\xEF\xBF\xBDz\"");
  mq_log_end(&l);

  line_with(&l, "\xc0\xaf", 2); /* 2-byte overlong '/' */
  EXPECT_MEMBER(&l, "s", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  mq_log_end(&l);

  line_with(&l, "\xc1\xbf", 2);
  EXPECT_MEMBER(&l, "s", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  mq_log_end(&l);
}

/* The remaining ill-formed sequences of RFC 3629: each must come out as
 * well-formed UTF-8 (replaced), never copied through. */
static void test_utf8_surrogates_overlongs_out_of_range(void **state) {
  (void)state;
  static const struct {
    const char *what, *bytes;
  } bad[] = {
      {"UTF-16 surrogate U+D800", "\xed\xa0\x80"},    {"UTF-16 surrogate U+DFFF", "\xed\xbf\xbf"},
      {"3-byte overlong '/'", "\xe0\x80\xaf"},        {"4-byte overlong", "\xf0\x80\x80\xaf"},
      {"above U+10FFFF (F4 90)", "\xf4\x90\x80\x80"}, {"lead byte F5", "\xf5\x80\x80\x80"},
      {"lead byte F8", "\xf8\x88\x80\x80\x80"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mq_logline_t l;
    line_with(&l, bad[i].bytes, strlen(bad[i].bytes));
    if (!utf8_valid((const unsigned char *)l.buf, l.len))
      fail_msg("%s: copied into the log line as ill-formed UTF-8", bad[i].what);
    assert_non_null(find_in(&l, "\xEF\xBF\xBD", 3));
    mq_log_end(&l);
  }
}

/* A value longer than the 2 KiB line still yields one valid JSON object. */
static void test_long_value_stays_valid_json(void **state) {
  (void)state;
  static char big[3000];
  memset(big, 'a', sizeof big - 1);
  mq_logline_t l;
  line_with(&l, big, sizeof big - 1);
  assert_true(l.len <= sizeof l.buf - 2);
  bool ok = line_is_json(&l);
  mq_log_end(&l);
  if (!ok) fail_msg("a truncated line is not valid JSON (value cut before its closing quote)");

  /* truncation must not split an escape either */
  static char quotes[1500];
  memset(quotes, '"', sizeof quotes - 1);
  line_with(&l, quotes, sizeof quotes - 1);
  ok = line_is_json(&l);
  mq_log_end(&l);
  if (!ok) fail_msg("a truncated line of escapes is not valid JSON");
}

static void test_level_filter(void **state) {
  (void)state;
  mq_logline_t l;
  mq_log_set_level(MQ_LOG_WARN);
  assert_false(mq_log_enabled(MQ_LOG_INFO));
  assert_true(mq_log_enabled(MQ_LOG_ERROR));
  mq_log_begin(&l, MQ_LOG_INFO, "quiet");
  assert_true(l.skip);
  assert_int_equal(l.len, 0);
  mq_log_str(&l, "k", "v");
  mq_log_int(&l, "n", 1);
  assert_int_equal(l.len, 0);
  mq_log_end(&l); /* no-op */
  assert_int_equal(l.len, 0);
  mq_log_set_level(MQ_LOG_INFO);
  assert_true(mq_log_enabled(MQ_LOG_INFO));
  assert_false(mq_log_enabled(MQ_LOG_DEBUG));

  mq_log_level_t lvl = MQ_LOG_ERROR;
  assert_true(mq_log_parse_level("debug", &lvl));
  assert_int_equal(lvl, MQ_LOG_DEBUG);
  assert_true(mq_log_parse_level("error", &lvl));
  assert_int_equal(lvl, MQ_LOG_ERROR);
  assert_false(mq_log_parse_level("Info", &lvl));
  assert_false(mq_log_parse_level(NULL, &lvl));
  assert_int_equal(lvl, MQ_LOG_ERROR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_redact_email),
      cmocka_unit_test(test_redact_peer),
      cmocka_unit_test(test_redact_peer_ipv6_grpc_encoded),
      cmocka_unit_test(test_redact_peer_ipv6_compressed),
      cmocka_unit_test(test_line_header_and_types),
      cmocka_unit_test(test_escape_quotes_backslash_controls),
      cmocka_unit_test(test_utf8_valid_kept),
      cmocka_unit_test(test_utf8_invalid_replaced),
      cmocka_unit_test(test_utf8_surrogates_overlongs_out_of_range),
      cmocka_unit_test(test_long_value_stays_valid_json),
      cmocka_unit_test(test_level_filter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
