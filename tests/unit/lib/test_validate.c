/*
 * test_validate.c — cmocka tests for lib/mq_validate.c, one group per
 * check: each accepts the values the header promises and refuses the rest
 * with MQ_INVALID_ARGUMENT, the caller's field name in err.field and a
 * message that says what to send (asserted by substring). Caller bugs must
 * give MQ_INTERNAL. The ISO tables are swept (AAA..ZZZ, AA..ZZ) so a broken
 * sort order or a lost row changes a count and fails.
 *
 * Invariant: no test needs a network or a database; the time-zone tests need
 * tzdata in /usr/share/zoneinfo (as the server does) and make their own
 * TZDIR in a temporary directory for the override case.
 *
 * Read next: lib/mq_validate.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mq_validate.h"

/* ---- helpers ---------------------------------------------------------------------- */

static mq_error_t fresh_error(void) {
  mq_error_t e;
  memset(&e, 0, sizeof e);
  e.code = MQ_OK;
  return e;
}

/* rc must be a refusal naming `field`, and the message must contain `needle`. */
static void expect_refused(mq_code_t rc, const mq_error_t *e, const char *field, const char *needle) {
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_int_equal(e->code, MQ_INVALID_ARGUMENT);
  assert_string_equal(e->field, field);
  if (!strstr(e->message, needle)) fail_msg("message \"%s\" lacks \"%s\"", e->message, needle);
}

static void expect_not_in_message(const mq_error_t *e, const char *secret) {
  if (strstr(e->message, secret)) fail_msg("message \"%s\" echoes \"%s\"", e->message, secret);
}

/* A string of n copies of c (n < 4096); static buffer, one at a time. */
static const char *repeat(char c, size_t n) {
  static char buf[4096];
  assert_true(n < sizeof buf);
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

#define ACCEPT(call)                     \
  do {                                   \
    mq_error_t e_ = fresh_error();       \
    mq_error_t *err = &e_;               \
    assert_int_equal((call), MQ_OK);     \
    assert_int_equal(e_.code, MQ_OK);    \
    assert_string_equal(e_.message, ""); \
    (void)err;                           \
  } while (0)

#define REFUSE(call, field, needle)              \
  do {                                           \
    mq_error_t e_ = fresh_error();               \
    mq_error_t *err = &e_;                       \
    mq_code_t rc_ = (call);                      \
    expect_refused(rc_, &e_, (field), (needle)); \
  } while (0)

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static bool u8(const char *s) {
  return mq_utf8_valid(s, strlen(s));
}

static void test_utf8_valid_accepts(void **state) {
  (void)state;
  assert_true(mq_utf8_valid(NULL, 0));
  assert_true(u8(""));
  assert_true(u8("plain ASCII"));
  assert_true(u8("\xC3\xA9"));           /* é U+00E9 */
  assert_true(u8("\xC2\x80"));           /* U+0080, smallest 2-byte */
  assert_true(u8("\xE0\xA0\x80"));       /* U+0800, smallest 3-byte */
  assert_true(u8("\xE2\x82\xAC"));       /* € */
  assert_true(u8("\xED\x9F\xBF"));       /* U+D7FF, just below surrogates */
  assert_true(u8("\xEE\x80\x80"));       /* U+E000, just above */
  assert_true(u8("\xEF\xBF\xBF"));       /* U+FFFF */
  assert_true(u8("\xF0\x90\x80\x80"));   /* U+10000, smallest 4-byte */
  assert_true(u8("\xF0\x9F\x8E\xAB"));   /* 🎫 */
  assert_true(u8("\xF4\x8F\xBF\xBF"));   /* U+10FFFF */
  assert_true(mq_utf8_valid("a\0b", 3)); /* U+0000 is well-formed */
}

static void test_utf8_valid_refuses(void **state) {
  (void)state;
  assert_false(u8("\xC0\xAF"));                 /* overlong '/' */
  assert_false(u8("\xC1\xBF"));                 /* overlong */
  assert_false(u8("\xE0\x80\xAF"));             /* overlong 3-byte */
  assert_false(u8("\xE0\x9F\xBF"));             /* overlong U+07FF */
  assert_false(u8("\xF0\x80\x80\xAF"));         /* overlong 4-byte */
  assert_false(u8("\xF0\x8F\xBF\xBF"));         /* overlong U+FFFF */
  assert_false(u8("\xED\xA0\x80"));             /* U+D800 high surrogate */
  assert_false(u8("\xED\xBF\xBF"));             /* U+DFFF low surrogate */
  assert_false(u8("\xED\xA0\xBD\xED\xB8\x80")); /* CESU-8 surrogate pair */
  assert_false(u8("\xF4\x90\x80\x80"));         /* U+110000 */
  assert_false(u8("\xF5\x80\x80\x80"));         /* lead byte above F4 */
  assert_false(u8("\xFF"));
  assert_false(u8("\xFE"));
  assert_false(u8("\x80")); /* lone continuation */
  assert_false(
      u8("a\xBF"
         "b"));
  assert_false(u8("\xC3"));         /* truncated 2-byte */
  assert_false(u8("\xE2\x82"));     /* truncated 3-byte */
  assert_false(u8("\xF0\x9F\x8E")); /* truncated 4-byte */
  assert_false(
      u8("\xC3"
         "b"));                     /* lead byte then ASCII */
  assert_false(u8("\xE2\x28\xA1")); /* bad second byte */
  assert_false(u8("\xE2\x82\x28")); /* bad third byte */
  /* n cuts a valid sequence: still truncated. */
  assert_false(mq_utf8_valid("\xE2\x82\xAC", 2));
}

static void test_utf8_length(void **state) {
  (void)state;
  assert_int_equal(mq_utf8_length("", 0), 0);
  assert_int_equal(mq_utf8_length("abc", 3), 3);
  const char *s = "h\xC3\xA9llo\xE2\x82\xAC\xF0\x9F\x8E\xAB"; /* héllo€🎫 */
  assert_int_equal(mq_utf8_length(s, strlen(s)), 7);
  assert_int_equal(mq_utf8_length("\xC0\xAF", 2), (size_t)-1);
  assert_int_equal(mq_utf8_length("ab\xED\xA0\x80", 5), (size_t)-1);
}

/* ---- text ------------------------------------------------------------------------------- */

static void test_text_accepts(void **state) {
  (void)state;
  ACCEPT(mq_check_text(err, "title", "Summer Festival", 1, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED));
  ACCEPT(mq_check_text(err, "subtitle", NULL, 0, 200, MQ_TEXT_SINGLE_LINE));
  ACCEPT(mq_check_text(err, "subtitle", "", 0, 200, MQ_TEXT_SINGLE_LINE));
  ACCEPT(mq_check_text(err, "description", "Line 1\nLine 2\r\n\tindented", 0, 2000, MQ_TEXT_MULTILINE));
  ACCEPT(mq_check_text(err, "title", "Caf\xC3\xA9 \xF0\x9F\x8E\xAB", 1, 200, MQ_TEXT_SINGLE_LINE));
  ACCEPT(mq_check_text(err, "title", repeat('x', 200), 1, 200, 0));     /* exactly max */
  ACCEPT(mq_check_text(err, "code", "abc", 3, 3, MQ_TEXT_SINGLE_LINE)); /* exactly min */
  /* 2 bytes each: 100 × é is 200 bytes. */
  char e100[201];
  for (int i = 0; i < 100; i++) memcpy(e100 + 2 * i, "\xC3\xA9", 2);
  e100[200] = '\0';
  ACCEPT(mq_check_text(err, "title", e100, 1, 200, 0));
  ACCEPT(mq_check_text(err, "bio",
                       "a\xE2\x80\xA8"
                       "b",
                       0, 100, MQ_TEXT_MULTILINE)); /* U+2028 */
  ACCEPT(mq_check_text(err, "title", "inner  spaces ok", 1, 100, MQ_TEXT_TRIMMED));
}

static void test_text_refuses(void **state) {
  (void)state;
  REFUSE(mq_check_text(err, "title", NULL, 1, 200, 0), "title", "is required");
  REFUSE(mq_check_text(err, "title", "", 1, 200, 0), "title", "is required");
  REFUSE(mq_check_text(err, "title", repeat('x', 201), 1, 200, 0), "title", "must be at most 200 bytes of UTF-8");
  REFUSE(mq_check_text(err, "code", "ab", 3, 10, 0), "code", "must be at least 3 bytes");
  REFUSE(mq_check_text(err, "title", "bad \xC0\xAF", 0, 200, 0), "title", "must be valid UTF-8");
  REFUSE(mq_check_text(err, "title", "bad \xED\xA0\x80", 0, 200, 0), "title", "must be valid UTF-8");
  REFUSE(mq_check_text(err, "title", "cut \xE2\x82", 0, 200, 0), "title", "must be valid UTF-8");
  REFUSE(mq_check_text(err, "title", "big \xF4\x90\x80\x80", 0, 200, 0), "title", "must be valid UTF-8");
  REFUSE(mq_check_text(err, "title", "two\nlines", 0, 200, MQ_TEXT_SINGLE_LINE), "title", "single line");
  REFUSE(mq_check_text(err, "title", "tab\there", 0, 200, MQ_TEXT_SINGLE_LINE), "title", "U+0009");
  REFUSE(mq_check_text(err, "title", "bell\x07", 0, 200, 0), "title", "U+0007"); /* flags 0 = single line */
  REFUSE(mq_check_text(err, "title", "a\nb", 0, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_MULTILINE), "title",
         "single line"); /* both: stricter */
  REFUSE(mq_check_text(err, "body", "del\x7F", 0, 200, MQ_TEXT_MULTILINE), "body", "U+007F");
  REFUSE(mq_check_text(err, "body", "esc\x1B[31m", 0, 200, MQ_TEXT_MULTILINE), "body", "U+001B");
  REFUSE(mq_check_text(err, "body", "nel\xC2\x85", 0, 200, MQ_TEXT_MULTILINE), "body", "U+0085"); /* C1 */
  REFUSE(mq_check_text(err, "title",
                       "a\xE2\x80\xA8"
                       "b",
                       0, 200, MQ_TEXT_SINGLE_LINE),
         "title", "U+2028");
  REFUSE(mq_check_text(err, "title", " lead", 1, 200, MQ_TEXT_TRIMMED), "title", "whitespace");
  REFUSE(mq_check_text(err, "title", "trail ", 1, 200, MQ_TEXT_TRIMMED), "title", "whitespace");
  REFUSE(mq_check_text(err, "title", "nbsp\xC2\xA0", 1, 200, MQ_TEXT_TRIMMED), "title", "whitespace");
  REFUSE(mq_check_text(err, "title", "\xE3\x80\x80ideographic", 1, 200, MQ_TEXT_TRIMMED), "title", "whitespace");
  REFUSE(mq_check_text(err, "body", "text\n", 1, 200, MQ_TEXT_MULTILINE | MQ_TEXT_TRIMMED), "body", "whitespace");
  /* The value itself is never echoed. */
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_text(&e, "password_hint", "SECRETVALUE\x01", 0, 100, 0), MQ_INVALID_ARGUMENT);
  expect_not_in_message(&e, "SECRETVALUE");
  /* Caller bug. */
  e = fresh_error();
  assert_int_equal(mq_check_text(&e, "title", "x", 10, 5, 0), MQ_INTERNAL);
  assert_int_equal(e.code, MQ_INTERNAL);
}

/* ---- ids ---------------------------------------------------------------------------------- */

static void test_id(void **state) {
  (void)state;
  ACCEPT(mq_check_id(err, "event_id", "a"));
  ACCEPT(mq_check_id(err, "event_id", "Evt_01-xyz"));
  ACCEPT(mq_check_id(err, "event_id", "0f8fad5b-d9cb-469f-a165-70867728950e"));
  ACCEPT(mq_check_id(err, "event_id", repeat('z', 64)));
  REFUSE(mq_check_id(err, "event_id", NULL), "event_id", "is required");
  REFUSE(mq_check_id(err, "event_id", ""), "event_id", "is required");
  REFUSE(mq_check_id(err, "event_id", repeat('z', 65)), "event_id", "at most 64");
  REFUSE(mq_check_id(err, "event_id", "a b"), "event_id", "letters, digits");
  REFUSE(mq_check_id(err, "event_id", "a/b"), "event_id", "letters, digits");
  REFUSE(mq_check_id(err, "event_id", "{\"$gt\":\"\"}"), "event_id", "letters, digits");
  REFUSE(mq_check_id(err, "event_id", "caf\xC3\xA9"), "event_id", "letters, digits");
}

static void test_uuid(void **state) {
  (void)state;
  ACCEPT(mq_check_uuid(err, "note_id", "0f8fad5b-d9cb-469f-a165-70867728950e"));
  ACCEPT(mq_check_uuid(err, "note_id", "0F8FAD5B-D9CB-469F-A165-70867728950E"));
  ACCEPT(mq_check_uuid(err, "note_id", "00000000-0000-0000-0000-000000000000"));
  REFUSE(mq_check_uuid(err, "note_id", ""), "note_id", "is required");
  REFUSE(mq_check_uuid(err, "note_id", NULL), "note_id", "is required");
  REFUSE(mq_check_uuid(err, "note_id", "0f8fad5b-d9cb-469f-a165-70867728950"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "0f8fad5b-d9cb-469f-a165-70867728950ee"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "0f8fad5bd9cb469fa16570867728950e"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "0f8fad5b-d9cb-469f-a165-70867728950g"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "{0f8fad5b-d9cb-469f-a165-70867728950e}"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "0f8fad5-bd9cb-469f-a165-70867728950e"), "note_id", "UUID");
  REFUSE(mq_check_uuid(err, "note_id", "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"), "note_id", "UUID");
}

/* ---- e-mail --------------------------------------------------------------------------------- */

static void test_email_accepts(void **state) {
  (void)state;
  ACCEPT(mq_check_email(err, "email", "a@b.co"));
  ACCEPT(mq_check_email(err, "email", "first.last+tickets@example.com"));
  ACCEPT(mq_check_email(err, "email", "user@mail.sub.example.co.uk"));
  ACCEPT(mq_check_email(err, "email", "o'brien@example.ie"));
  ACCEPT(mq_check_email(err, "email", "x!#$%&'*+/=?^_`{|}~-y@example.org"));
  ACCEPT(mq_check_email(err, "email", "User@Example.COM"));
  ACCEPT(mq_check_email(err, "email", "x@xn--bcher-kva.example"));
  ACCEPT(mq_check_email(err, "email", "x@example.xn--p1ai")); /* punycode TLD */
  ACCEPT(mq_check_email(err, "email", "x@123.example.com"));
  /* local part exactly 64, whole address exactly 254 */
  char buf[300];
  snprintf(buf, sizeof buf, "%s@example.com", repeat('l', 64));
  ACCEPT(mq_check_email(err, "email", buf));
  /* 64 + 1 + 189 = 254: labels of 63 + '.' + 63 + '.' + 57 + ".com" */
  char dom[200];
  snprintf(dom, sizeof dom, "%s.", repeat('a', 63));
  snprintf(dom + strlen(dom), sizeof dom - strlen(dom), "%s.", repeat('b', 63));
  snprintf(dom + strlen(dom), sizeof dom - strlen(dom), "%s.com", repeat('c', 189 - 128 - 4));
  assert_int_equal(strlen(dom), 189);
  snprintf(buf, sizeof buf, "%s@%s", repeat('l', 64), dom);
  assert_int_equal(strlen(buf), 254);
  ACCEPT(mq_check_email(err, "email", buf));
}

static void test_email_refuses(void **state) {
  (void)state;
  REFUSE(mq_check_email(err, "email", ""), "email", "is required");
  REFUSE(mq_check_email(err, "email", NULL), "email", "is required");
  REFUSE(mq_check_email(err, "email", "plainaddress"), "email", "exactly one '@'");
  REFUSE(mq_check_email(err, "email", "a@@example.com"), "email", "exactly one '@'");
  REFUSE(mq_check_email(err, "email", "a@b@example.com"), "email", "exactly one '@'");
  REFUSE(mq_check_email(err, "email", "@example.com"), "email", "before '@' is empty");
  REFUSE(mq_check_email(err, "email", "a@"), "email", "after '@' is empty");
  REFUSE(mq_check_email(err, "email", ".a@example.com"), "email", "'..'");
  REFUSE(mq_check_email(err, "email", "a.@example.com"), "email", "'..'");
  REFUSE(mq_check_email(err, "email", "a..b@example.com"), "email", "'..'");
  REFUSE(mq_check_email(err, "email", "a b@example.com"), "email", "not allowed");
  REFUSE(mq_check_email(err, "email", "\"quoted\"@example.com"), "email", "not allowed");
  REFUSE(mq_check_email(err, "email", "j\xC3\xB6@example.com"), "email", "not allowed");
  REFUSE(mq_check_email(err, "email", "a@localhost"), "email", "needs a dot");
  REFUSE(mq_check_email(err, "email", "a@example.c"), "email", "top-level domain");
  REFUSE(mq_check_email(err, "email", "a@example.123"), "email", "top-level domain");
  REFUSE(mq_check_email(err, "email", "a@example.c0m"), "email", "top-level domain");
  REFUSE(mq_check_email(err, "email", "a@-example.com"), "email", "start or end with '-'");
  REFUSE(mq_check_email(err, "email", "a@example-.com"), "email", "start or end with '-'");
  REFUSE(mq_check_email(err, "email", "a@exa_mple.com"), "email", "letters, digits and '-'");
  REFUSE(mq_check_email(err, "email", "a@example..com"), "email", "empty label");
  REFUSE(mq_check_email(err, "email", "a@.example.com"), "email", "empty label");
  REFUSE(mq_check_email(err, "email", "a@example.com."), "email", "empty label");
  REFUSE(mq_check_email(err, "email", "a@[192.0.2.1]"), "email", "letters, digits and '-'");
  REFUSE(mq_check_email(err, "email",
                        "a@b\xC3\xBC"
                        "cher.de"),
         "email", "letters, digits and '-'");
  char buf[400];
  snprintf(buf, sizeof buf, "%s@example.com", repeat('l', 65));
  REFUSE(mq_check_email(err, "email", buf), "email", "at most 64 bytes");
  snprintf(buf, sizeof buf, "a@%s.com", repeat('d', 64));
  REFUSE(mq_check_email(err, "email", buf), "email", "at most 63 characters");
  snprintf(buf, sizeof buf, "a@%s.%s.%s.%s.com", repeat('d', 63), repeat('d', 63), repeat('d', 63), repeat('d', 60));
  assert_true(strlen(buf) > 254);
  REFUSE(mq_check_email(err, "email", buf), "email", "at most 254 bytes");
  /* The address is never echoed. */
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_email(&e, "contact.email", "jane.doe.private@example..com"), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "contact.email");
  expect_not_in_message(&e, "jane");
  expect_not_in_message(&e, "example");
}

static void test_email_normalize(void **state) {
  (void)state;
  char out[MQ_EMAIL_MAX + 1];
  mq_email_normalize("John.Doe@EXAMPLE.Com", out, sizeof out);
  assert_string_equal(out, "John.Doe@example.com");
  char inplace[64] = "MiXeD@Sub.EXAMPLE.org";
  mq_email_normalize(inplace, inplace, sizeof inplace);
  assert_string_equal(inplace, "MiXeD@sub.example.org");
  mq_email_normalize("no-at-sign-KEPT", out, sizeof out);
  assert_string_equal(out, "no-at-sign-KEPT");
  mq_email_normalize(NULL, out, sizeof out);
  assert_string_equal(out, "");
  char small[8];
  mq_email_normalize("ab@EXAMPLE.COM", small, sizeof small);
  assert_string_equal(small, "ab@exam");
  char untouched[2] = {'q', 'q'};
  mq_email_normalize("A@B.C", untouched, 0); /* cap 0: nothing written */
  assert_int_equal(untouched[0], 'q');
}

/* ---- URLs -------------------------------------------------------------------------------------- */

static void test_url_accepts(void **state) {
  (void)state;
  ACCEPT(mq_check_url(err, "website", "https://example.com", 0));
  ACCEPT(mq_check_url(err, "website", "http://example.com/path/to?q=1&r=a%20b#frag", 0));
  ACCEPT(mq_check_url(err, "website", "HTTPS://Example.COM:8443/A", MQ_URL_HTTPS_ONLY));
  ACCEPT(mq_check_url(err, "website", "https://127.0.0.1/", 0));
  ACCEPT(mq_check_url(err, "website", "https://[::1]:8080/x", 0));
  ACCEPT(mq_check_url(err, "website", "https://[2001:db8::ff00:42:8329]", 0));
  ACCEPT(mq_check_url(err, "website", "https://localhost:65535", 0));
  ACCEPT(mq_check_url(err, "website", "https://example.com?x=1", 0));
  ACCEPT(mq_check_url(err, "website", "https://xn--bcher-kva.example/~user/(a)", 0));
  char buf[MQ_URL_MAX + 2];
  snprintf(buf, sizeof buf, "https://example.com/%s", repeat('p', MQ_URL_MAX - 20));
  assert_int_equal(strlen(buf), MQ_URL_MAX);
  ACCEPT(mq_check_url(err, "website", buf, 0));
}

static void test_url_refuses(void **state) {
  (void)state;
  REFUSE(mq_check_url(err, "website", "", 0), "website", "is required");
  REFUSE(mq_check_url(err, "website", NULL, 0), "website", "is required");
  REFUSE(mq_check_url(err, "website", "ftp://example.com", 0), "website", "http:// or https://");
  REFUSE(mq_check_url(err, "website", "javascript:alert(1)", 0), "website", "http:// or https://");
  REFUSE(mq_check_url(err, "website", "example.com", 0), "website", "http:// or https://");
  REFUSE(mq_check_url(err, "website", "//example.com", 0), "website", "http:// or https://");
  REFUSE(mq_check_url(err, "image_url", "http://example.com", MQ_URL_HTTPS_ONLY), "image_url", "https://");
  REFUSE(mq_check_url(err, "website", "https://", 0), "website", "with a host");
  REFUSE(mq_check_url(err, "website", "https:///path", 0), "website", "with a host");
  REFUSE(mq_check_url(err, "website", "https://:443/", 0), "website", "with a host");
  REFUSE(mq_check_url(err, "website", "https://user:pass@example.com/", 0), "website", "without credentials");
  REFUSE(mq_check_url(err, "website", "https://user@example.com", 0), "website", "without credentials");
  REFUSE(mq_check_url(err, "website", "https://exa mple.com", 0), "website", "without spaces");
  REFUSE(mq_check_url(err, "website", "https://example.com/\n", 0), "website", "control characters");
  REFUSE(mq_check_url(err, "website", "https://example.com/\x7F", 0), "website", "control characters");
  REFUSE(mq_check_url(err, "website", "https://example.com/caf\xC3\xA9", 0), "website", "ASCII");
  REFUSE(mq_check_url(err, "website", "https://example.com\\@evil.com", 0), "website", "'\\'");
  REFUSE(mq_check_url(err, "website", "https://example.com/<script>", 0), "website", "'<' must be percent-encoded");
  REFUSE(mq_check_url(err, "website", "https://example.com/%zz", 0), "website", "two hex digits");
  REFUSE(mq_check_url(err, "website", "https://example.com/%2", 0), "website", "two hex digits");
  REFUSE(mq_check_url(err, "website", "https://example.com:0/", 0), "website", "port");
  REFUSE(mq_check_url(err, "website", "https://example.com:65536/", 0), "website", "port");
  REFUSE(mq_check_url(err, "website", "https://example.com:http/", 0), "website", "port");
  REFUSE(mq_check_url(err, "website", "https://example.com:/", 0), "website", "port");
  REFUSE(mq_check_url(err, "website", "https://-bad.example.com", 0), "website", "start or end with '-'");
  REFUSE(mq_check_url(err, "website", "https://a..b.com", 0), "website", "empty label");
  REFUSE(mq_check_url(err, "website", "https://256.1.1.1/", 0), "website", "IPv4");
  REFUSE(mq_check_url(err, "website", "https://1.2.3/", 0), "website", "IPv4");
  REFUSE(mq_check_url(err, "website", "https://[zz::1]/", 0), "website", "IPv6");
  REFUSE(mq_check_url(err, "website", "https://[::1/", 0), "website", "IPv6");
  char buf[MQ_URL_MAX + 8];
  snprintf(buf, sizeof buf, "https://example.com/%s", repeat('p', MQ_URL_MAX - 19));
  assert_int_equal(strlen(buf), MQ_URL_MAX + 1);
  REFUSE(mq_check_url(err, "website", buf, 0), "website", "at most 2048 bytes");
  /* The URL (which may hold credentials or tokens) is never echoed. */
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_url(&e, "webhook", "https://admin:hunter2@example.com/?token=abc", 0), MQ_INVALID_ARGUMENT);
  expect_not_in_message(&e, "hunter2");
  expect_not_in_message(&e, "admin");
}

/* ---- currencies ----------------------------------------------------------------------------- */

static void test_currency_minor_units(void **state) {
  (void)state;
  assert_int_equal(mq_currency_minor_units("EUR"), 2);
  assert_int_equal(mq_currency_minor_units("USD"), 2);
  assert_int_equal(mq_currency_minor_units("GBP"), 2);
  assert_int_equal(mq_currency_minor_units("JPY"), 0);
  assert_int_equal(mq_currency_minor_units("KRW"), 0);
  assert_int_equal(mq_currency_minor_units("XOF"), 0);
  assert_int_equal(mq_currency_minor_units("XAF"), 0);
  assert_int_equal(mq_currency_minor_units("XPF"), 0);
  assert_int_equal(mq_currency_minor_units("ISK"), 0);
  assert_int_equal(mq_currency_minor_units("UYI"), 0);
  assert_int_equal(mq_currency_minor_units("KWD"), 3);
  assert_int_equal(mq_currency_minor_units("BHD"), 3);
  assert_int_equal(mq_currency_minor_units("TND"), 3);
  assert_int_equal(mq_currency_minor_units("CLF"), 4);
  assert_int_equal(mq_currency_minor_units("UYW"), 4);
  assert_int_equal(mq_currency_minor_units("AED"), 2); /* first row */
  assert_int_equal(mq_currency_minor_units("ZWG"), 2); /* last row, 2024 */
  assert_int_equal(mq_currency_minor_units("XCG"), 2); /* 2025 */
  assert_int_equal(mq_currency_minor_units("SLE"), 2);
  assert_int_equal(mq_currency_minor_units("VED"), 2);
  /* "N.A." minor unit: real ISO codes, but not for prices */
  assert_int_equal(mq_currency_minor_units("XXX"), -1);
  assert_int_equal(mq_currency_minor_units("XTS"), -1);
  assert_int_equal(mq_currency_minor_units("XAU"), -1);
  assert_int_equal(mq_currency_minor_units("XDR"), -1);
  /* withdrawn / superseded */
  assert_int_equal(mq_currency_minor_units("HRK"), -1);
  assert_int_equal(mq_currency_minor_units("DEM"), -1);
  assert_int_equal(mq_currency_minor_units("ZWL"), -1);
  assert_int_equal(mq_currency_minor_units("SLL"), -1);
  assert_int_equal(mq_currency_minor_units("ANG"), -1);
  /* wrong shape */
  assert_int_equal(mq_currency_minor_units("eur"), -1);
  assert_int_equal(mq_currency_minor_units("EURO"), -1);
  assert_int_equal(mq_currency_minor_units("EU"), -1);
  assert_int_equal(mq_currency_minor_units(""), -1);
  assert_int_equal(mq_currency_minor_units(NULL), -1);
  assert_int_equal(mq_currency_minor_units("ABC"), -1);
}

/* Every row is reachable by binary search (so the table is sorted) and the
 * table has the documented size. */
static void test_currency_table_sweep(void **state) {
  (void)state;
  int count = 0, zero = 0, three = 0, four = 0;
  char code[4] = {0};
  for (char a = 'A'; a <= 'Z'; a++)
    for (char b = 'A'; b <= 'Z'; b++)
      for (char c = 'A'; c <= 'Z'; c++) {
        code[0] = a, code[1] = b, code[2] = c;
        int mu = mq_currency_minor_units(code);
        if (mu < 0) continue;
        count++;
        zero += mu == 0;
        three += mu == 3;
        four += mu == 4;
        assert_true(mu == 0 || mu == 2 || mu == 3 || mu == 4);
      }
  assert_int_equal(count, 165);
  assert_int_equal(zero, 17); /* BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF */
  assert_int_equal(three, 7); /* BHD IQD JOD KWD LYD OMR TND */
  assert_int_equal(four, 2);  /* CLF UYW */
}

static void test_check_currency(void **state) {
  (void)state;
  ACCEPT(mq_check_currency(err, "price.currency", "EUR"));
  ACCEPT(mq_check_currency(err, "price.currency", "JPY"));
  ACCEPT(mq_check_currency(err, "price.currency", "CHE"));
  REFUSE(mq_check_currency(err, "price.currency", ""), "price.currency", "is required");
  REFUSE(mq_check_currency(err, "price.currency", NULL), "price.currency", "is required");
  REFUSE(mq_check_currency(err, "price.currency", "eur"), "price.currency",
         "must be an ISO 4217 currency code such as EUR");
  REFUSE(mq_check_currency(err, "price.currency", "EURO"), "price.currency", "three upper-case letters");
  REFUSE(mq_check_currency(err, "price.currency", "E1R"), "price.currency", "three upper-case letters");
  REFUSE(mq_check_currency(err, "price.currency", "ABC"), "price.currency",
         "'ABC' is not an active ISO 4217 currency code");
  REFUSE(mq_check_currency(err, "price.currency", "HRK"), "price.currency", "'HRK' is not an active");
  REFUSE(mq_check_currency(err, "price.currency", "XXX"), "price.currency", "no minor unit");
  REFUSE(mq_check_currency(err, "price.currency", "XTS"), "price.currency", "no minor unit");
  REFUSE(mq_check_currency(err, "price.currency", "XAU"), "price.currency", "no minor unit");
}

/* ---- countries --------------------------------------------------------------------------------- */

static void test_country(void **state) {
  (void)state;
  const char *ok[] = {"AD", "DE", "US", "GB", "FR", "JP", "BR", "AQ", "AX", "BQ", "CW", "SS", "SX", "ZW", "PS", "TW"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) ACCEPT(mq_check_country(err, "country", ok[i]));
  REFUSE(mq_check_country(err, "country", ""), "country", "is required");
  REFUSE(mq_check_country(err, "country", NULL), "country", "is required");
  REFUSE(mq_check_country(err, "address.country", "de"), "address.country", "two upper-case letters");
  REFUSE(mq_check_country(err, "country", "DEU"), "country", "ISO 3166-1 alpha-2");
  REFUSE(mq_check_country(err, "country", "D"), "country", "ISO 3166-1 alpha-2");
  REFUSE(mq_check_country(err, "country", "D1"), "country", "ISO 3166-1 alpha-2");
  REFUSE(mq_check_country(err, "country", "UK"), "country", "'UK' is not an assigned");
  REFUSE(mq_check_country(err, "country", "XK"), "country", "'XK' is not an assigned");
  REFUSE(mq_check_country(err, "country", "EU"), "country", "'EU' is not an assigned");
  REFUSE(mq_check_country(err, "country", "AN"), "country", "'AN' is not an assigned"); /* withdrawn 2010 */
  REFUSE(mq_check_country(err, "country", "ZZ"), "country", "'ZZ' is not an assigned");
  int count = 0;
  char code[3] = {0};
  mq_error_t e = fresh_error();
  for (char a = 'A'; a <= 'Z'; a++)
    for (char b = 'A'; b <= 'Z'; b++) {
      code[0] = a, code[1] = b;
      count += mq_check_country(&e, "country", code) == MQ_OK;
    }
  assert_int_equal(count, 249);
}

/* ---- languages ------------------------------------------------------------------------------------ */

static void test_language(void **state) {
  (void)state;
  const char *ok[] = {"en", "de", "fil", "pt-BR", "zh-Hant", "zh-Hant-TW", "es-419", "sr-Latn-RS", "en-GB", "yue-HK"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) ACCEPT(mq_check_language(err, "locale", ok[i]));
  const char *bad[] = {"EN",       "e",       "engl",       "en_US",   "en-us",      "en-US-",          "en-",
                       "-en",      "english", "zh-hant-TW", "zh-HANT", "zh-Hant-",   "en-1234",         "en-U1",
                       "en--US",   "en-USA",  "en-41",      "es-4190", "zh-TW-Hant", "en-US-x-private", "en US",
                       "\xC3\xA9n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mq_error_t e = fresh_error();
    mq_code_t rc = mq_check_language(&e, "locale", bad[i]);
    if (rc != MQ_INVALID_ARGUMENT) fail_msg("language tag \"%s\" was accepted", bad[i]);
    expect_refused(rc, &e, "locale", "such as en, pt-BR, zh-Hant-TW or es-419");
  }
  REFUSE(mq_check_language(err, "locale", ""), "locale", "is required");
  REFUSE(mq_check_language(err, "locale", NULL), "locale", "is required");
}

/* ---- time zones ------------------------------------------------------------------------------------ */

static void test_timezone_accepts(void **state) {
  (void)state;
  ACCEPT(mq_check_timezone(err, "time_zone", "UTC"));
  ACCEPT(mq_check_timezone(err, "time_zone", "Europe/Paris"));
  ACCEPT(mq_check_timezone(err, "time_zone", "America/New_York"));
  ACCEPT(mq_check_timezone(err, "time_zone", "America/Argentina/Buenos_Aires"));
  ACCEPT(mq_check_timezone(err, "time_zone", "America/Port-au-Prince"));
  ACCEPT(mq_check_timezone(err, "time_zone", "Etc/GMT+5"));
  ACCEPT(mq_check_timezone(err, "time_zone", "Asia/Kolkata"));
}

static void test_timezone_refuses(void **state) {
  (void)state;
  REFUSE(mq_check_timezone(err, "time_zone", ""), "time_zone", "is required");
  REFUSE(mq_check_timezone(err, "time_zone", NULL), "time_zone", "is required");
  REFUSE(mq_check_timezone(err, "time_zone", "utc"), "time_zone", "'utc' is not a known IANA time zone");
  REFUSE(mq_check_timezone(err, "time_zone", "Europe/Nowhere"), "time_zone", "not a known IANA time zone");
  REFUSE(mq_check_timezone(err, "time_zone", "Europe"), "time_zone", "not a known IANA time zone"); /* a directory */
  REFUSE(mq_check_timezone(err, "time_zone", "leapseconds"), "time_zone", "not a known");           /* not TZif */
  REFUSE(mq_check_timezone(err, "time_zone", "zone.tab"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "../../../etc/passwd"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "/etc/passwd"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "Europe//Paris"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "Europe/Paris/"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "Europe/Paris "), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "posix/Europe/Paris"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "right/UTC"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "localtime"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "posixrules"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", "Factory"), "time_zone", "such as Europe/Paris");
  REFUSE(mq_check_timezone(err, "time_zone", repeat('A', 65)), "time_zone", "such as Europe/Paris");
  /* Long unknown names are quoted cut to 32 bytes. */
  mq_error_t e = fresh_error();
  const char *longname = "Abcdefghijklmnopqrstuvwxyz/Abcdefghijklmnopqrstuvwxyz_Zone";
  assert_int_equal(mq_check_timezone(&e, "time_zone", longname), MQ_INVALID_ARGUMENT);
  expect_not_in_message(&e, longname);
  assert_non_null(strstr(e.message, "'Abcdefghijklmnopqrstuvwxyz/Abcde...'"));
}

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

static void test_timezone_tzdir(void **state) {
  (void)state;
  char dir[] = "/tmp/mq_tzdir_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/Mars", dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/Mars/Olympus", dir);
  write_file(path, "TZif2 fake zone");
  snprintf(path, sizeof path, "%s/Mars/Fake", dir);
  write_file(path, "# not a TZif file");

  const char *old = getenv("TZDIR");
  char *saved = old ? strdup(old) : NULL;
  assert_int_equal(setenv("TZDIR", dir, 1), 0);
  ACCEPT(mq_check_timezone(err, "time_zone", "Mars/Olympus"));
  REFUSE(mq_check_timezone(err, "time_zone", "Mars/Fake"), "time_zone", "not a known");
  REFUSE(mq_check_timezone(err, "time_zone", "UTC"), "time_zone", "not a known"); /* not in this TZDIR */
  assert_int_equal(setenv("TZDIR", "relative/dir", 1), 0); /* ignored: falls back to the system tzdata */
  ACCEPT(mq_check_timezone(err, "time_zone", "UTC"));
  if (saved) {
    setenv("TZDIR", saved, 1);
    free(saved);
  } else {
    unsetenv("TZDIR");
  }

  snprintf(path, sizeof path, "%s/Mars/Olympus", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/Mars/Fake", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/Mars", dir);
  rmdir(path);
  rmdir(dir);
}

/* ---- enums ------------------------------------------------------------------------------------------ */

/* What protoc-c generates for
 *   enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; COLOR_GREEN = 2; COLOR_BLUE = 5; }
 *   enum Level { LEVEL_LOW = 1; LEVEL_HIGH = 2; }   (no zero) */
static const ProtobufCEnumValue color_values[] = {
    {"COLOR_UNSPECIFIED", "TEST__COLOR__COLOR_UNSPECIFIED", 0},
    {"COLOR_RED", "TEST__COLOR__COLOR_RED", 1},
    {"COLOR_GREEN", "TEST__COLOR__COLOR_GREEN", 2},
    {"COLOR_BLUE", "TEST__COLOR__COLOR_BLUE", 5},
};
static const ProtobufCIntRange color_ranges[] = {{0, 0}, {5, 3}, {0, 4}};
static const ProtobufCEnumValueIndex color_by_name[] = {
    {"COLOR_BLUE", 3}, {"COLOR_GREEN", 2}, {"COLOR_RED", 1}, {"COLOR_UNSPECIFIED", 0}};
static const ProtobufCEnumDescriptor color_descriptor = {PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
                                                         "test.Color",
                                                         "Color",
                                                         "Test__Color",
                                                         "test",
                                                         4,
                                                         color_values,
                                                         4,
                                                         color_by_name,
                                                         2,
                                                         color_ranges,
                                                         NULL,
                                                         NULL,
                                                         NULL,
                                                         NULL};

static const ProtobufCEnumValue level_values[] = {
    {"LEVEL_LOW", "TEST__LEVEL__LEVEL_LOW", 1},
    {"LEVEL_HIGH", "TEST__LEVEL__LEVEL_HIGH", 2},
};
static const ProtobufCIntRange level_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCEnumValueIndex level_by_name[] = {{"LEVEL_HIGH", 1}, {"LEVEL_LOW", 0}};
static const ProtobufCEnumDescriptor level_descriptor = {PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
                                                         "test.Level",
                                                         "Level",
                                                         "Test__Level",
                                                         "test",
                                                         2,
                                                         level_values,
                                                         2,
                                                         level_by_name,
                                                         1,
                                                         level_ranges,
                                                         NULL,
                                                         NULL,
                                                         NULL,
                                                         NULL};

static void test_enum(void **state) {
  (void)state;
  ACCEPT(mq_check_enum(err, "color", 1, &color_descriptor, false));
  ACCEPT(mq_check_enum(err, "color", 2, &color_descriptor, false));
  ACCEPT(mq_check_enum(err, "color", 5, &color_descriptor, false));
  ACCEPT(mq_check_enum(err, "color", 0, &color_descriptor, true));
  ACCEPT(mq_check_enum(err, "level", 2, &level_descriptor, false));
  REFUSE(mq_check_enum(err, "color", 0, &color_descriptor, false), "color", "is required (COLOR_UNSPECIFIED");
  REFUSE(mq_check_enum(err, "color", 3, &color_descriptor, false), "color", "3 is not a value of test.Color");
  REFUSE(mq_check_enum(err, "color", 6, &color_descriptor, true), "color", "6 is not a value of test.Color");
  REFUSE(mq_check_enum(err, "color", -1, &color_descriptor, true), "color", "-1 is not a value of test.Color");
  REFUSE(mq_check_enum(err, "level", 0, &level_descriptor, true), "level", "0 is not a value of test.Level");
  REFUSE(mq_check_enum(err, "level", 0, &level_descriptor, false), "level", "is required");
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_enum(&e, "color", 1, NULL, false), MQ_INTERNAL);
  assert_int_equal(e.code, MQ_INTERNAL);
}

/* ---- numbers, lists, coordinates, pages ----------------------------------------------------------- */

static void test_range_and_count(void **state) {
  (void)state;
  ACCEPT(mq_check_range_i64(err, "quantity", 1, 1, 100));
  ACCEPT(mq_check_range_i64(err, "quantity", 100, 1, 100));
  ACCEPT(mq_check_range_i64(err, "quantity", 50, 1, 100));
  ACCEPT(mq_check_range_i64(err, "amount", INT64_MIN, INT64_MIN, INT64_MAX));
  ACCEPT(mq_check_range_i64(err, "amount", INT64_MAX, INT64_MIN, INT64_MAX));
  REFUSE(mq_check_range_i64(err, "quantity", 0, 1, 100), "quantity", "must be between 1 and 100");
  REFUSE(mq_check_range_i64(err, "quantity", 101, 1, 100), "quantity", "must be between 1 and 100");
  REFUSE(mq_check_range_i64(err, "amount", -1, 0, INT64_MAX), "amount", "must be between 0 and 9223372036854775807");
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_range_i64(&e, "quantity", 5, 10, 1), MQ_INTERNAL);

  ACCEPT(mq_check_count(err, "tags", 0, 10));
  ACCEPT(mq_check_count(err, "tags", 10, 10));
  REFUSE(mq_check_count(err, "tags", 11, 10), "tags", "must have at most 10 items");
  REFUSE(mq_check_count(err, "tags", SIZE_MAX, 0), "tags", "must have at most 0 items");
}

static void test_lat_lng(void **state) {
  (void)state;
  ACCEPT(mq_check_lat_lng(err, "venue.lat", "venue.lng", 0.0, 0.0));
  ACCEPT(mq_check_lat_lng(err, "venue.lat", "venue.lng", 52.52, 13.405));
  ACCEPT(mq_check_lat_lng(err, "venue.lat", "venue.lng", 90.0, 180.0));
  ACCEPT(mq_check_lat_lng(err, "venue.lat", "venue.lng", -90.0, -180.0));
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 90.0001, 0.0), "venue.lat", "between -90 and 90");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", -91.0, 0.0), "venue.lat", "latitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 0.0, 180.5), "venue.lng", "between -180 and 180");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 0.0, -180.0001), "venue.lng", "longitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", NAN, 0.0), "venue.lat", "latitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 0.0, NAN), "venue.lng", "longitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", INFINITY, 0.0), "venue.lat", "latitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 0.0, -INFINITY), "venue.lng", "longitude");
  REFUSE(mq_check_lat_lng(err, "venue.lat", "venue.lng", 100.0, 200.0), "venue.lat", "latitude"); /* lat first */
}

static void test_page_size(void **state) {
  (void)state;
  uint32_t out = 12345;
  ACCEPT(mq_check_page_size(err, "page_size", 0, 20, 100, &out));
  assert_int_equal(out, 20);
  ACCEPT(mq_check_page_size(err, "page_size", 1, 20, 100, &out));
  assert_int_equal(out, 1);
  ACCEPT(mq_check_page_size(err, "page_size", 100, 20, 100, &out));
  assert_int_equal(out, 100);
  ACCEPT(mq_check_page_size(err, "page_size", 101, 20, 100, &out)); /* clamped, not refused */
  assert_int_equal(out, 100);
  ACCEPT(mq_check_page_size(err, "page_size", UINT32_MAX, 20, 100, &out));
  assert_int_equal(out, 100);
  out = 7;
  mq_error_t e = fresh_error();
  assert_int_equal(mq_check_page_size(&e, "page_size", 5, 200, 100, &out), MQ_INTERNAL); /* def > max */
  assert_int_equal(mq_check_page_size(&e, "page_size", 5, 0, 100, &out), MQ_INTERNAL);   /* def 0 */
  assert_int_equal(mq_check_page_size(&e, "page_size", 5, 1, 0, &out), MQ_INTERNAL);     /* max 0 */
  assert_int_equal(mq_check_page_size(&e, "page_size", 5, 20, 100, NULL), MQ_INTERNAL);
  assert_int_equal(out, 7);
}

/* ---- conventions shared by every check ------------------------------------------------------------ */

static void test_null_err_and_untouched_on_success(void **state) {
  (void)state;
  /* err may be NULL: the code still comes back. */
  assert_int_equal(mq_check_text(NULL, "f", "", 1, 10, 0), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_check_email(NULL, "f", "nope"), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_check_url(NULL, "f", "nope", 0), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_check_currency(NULL, "f", "XXX"), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_check_enum(NULL, "f", 0, NULL, false), MQ_INTERNAL);
  assert_int_equal(mq_check_uuid(NULL, "f", "0f8fad5b-d9cb-469f-a165-70867728950e"), MQ_OK);
  /* Success leaves a previously filled error alone. */
  mq_error_t e;
  mq_error_set(&e, MQ_NOT_FOUND, "earlier", "earlier message");
  assert_int_equal(mq_check_id(&e, "id", "abc"), MQ_OK);
  assert_int_equal(mq_check_country(&e, "country", "FR"), MQ_OK);
  assert_int_equal(e.code, MQ_NOT_FOUND);
  assert_string_equal(e.field, "earlier");
  assert_string_equal(e.message, "earlier message");
  /* A refusal overwrites it, and the formatted text names the field. */
  assert_int_equal(mq_check_country(&e, "billing.country", "de"), MQ_INVALID_ARGUMENT);
  char buf[512];
  mq_error_format(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, "billing.country"));
  assert_non_null(strstr(buf, "such as DE"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_valid_accepts),
      cmocka_unit_test(test_utf8_valid_refuses),
      cmocka_unit_test(test_utf8_length),
      cmocka_unit_test(test_text_accepts),
      cmocka_unit_test(test_text_refuses),
      cmocka_unit_test(test_id),
      cmocka_unit_test(test_uuid),
      cmocka_unit_test(test_email_accepts),
      cmocka_unit_test(test_email_refuses),
      cmocka_unit_test(test_email_normalize),
      cmocka_unit_test(test_url_accepts),
      cmocka_unit_test(test_url_refuses),
      cmocka_unit_test(test_currency_minor_units),
      cmocka_unit_test(test_currency_table_sweep),
      cmocka_unit_test(test_check_currency),
      cmocka_unit_test(test_country),
      cmocka_unit_test(test_language),
      cmocka_unit_test(test_timezone_accepts),
      cmocka_unit_test(test_timezone_refuses),
      cmocka_unit_test(test_timezone_tzdir),
      cmocka_unit_test(test_enum),
      cmocka_unit_test(test_range_and_count),
      cmocka_unit_test(test_lat_lng),
      cmocka_unit_test(test_page_size),
      cmocka_unit_test(test_null_err_and_untouched_on_success),
  };
  return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
