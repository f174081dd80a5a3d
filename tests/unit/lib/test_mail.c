/*
 * test_mail.c — cmocka tests for lib/mq_mail.c (the MIME message) and
 * lib/mq_template.c (sections and placeholders).
 *
 * Covers: CRLF line ends only; non-ASCII subjects and names as RFC 2047
 * encoded words that decode back; bodies base64 in lines of at most 76
 * characters that decode back; a CR or LF in a name or subject refused
 * (header injection) with every bad field listed; List-Unsubscribe only
 * when asked; templates: sections parsed, values HTML-escaped only in HTML,
 * a placeholder without a value and an unclosed one refused.
 *
 * Invariant: pure functions, no network. Read next: lib/mq_mail.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/mq_mail.h"
#include "lib/mq_template.h"

/* Decodes standard base64 (ignoring CR/LF) into out; returns the length. */
static size_t b64dec(const char *in, size_t n, char *out) {
  static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = in[i] ? strchr(tb, in[i]) : NULL;
    if (!p) continue;
    acc = (acc << 6) | (unsigned)(p - tb);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xFF);
    }
  }
  out[o] = '\0';
  return o;
}

static mq_mail_t sample(void) {
  return (mq_mail_t){.from_name = "Marquee",
                     .from_addr = "no-reply@marquee.example",
                     .to_name = "Zoë Ångström",
                     .to_addr = "zoe@example.com",
                     .subject = "Réinitialisez votre mot de passe — un très long sujet qui dépasse une ligne",
                     .text = "Bonjour,\nvoici le lien : https://x.example/reset?token=abc\n",
                     .html = "<p>Bonjour</p>",
                     .message_id = "e1.email.abcdef@marquee",
                     .date_ms = 1764777600000LL};
}

static void test_message(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  mq_mail_t m = sample();
  char *out;
  size_t len;
  assert_int_equal(mq_mail_build(&m, &a, &out, &len, &err), MQ_OK);
  assert_int_equal(strlen(out), len);
  for (size_t i = 0; i < len; i++) { /* CRLF only, lines <= 78 */
    if (out[i] == '\n') assert_true(i > 0 && out[i - 1] == '\r');
    if (out[i] == '\r') assert_true(out[i + 1] == '\n');
  }
  size_t col = 0;
  for (size_t i = 0; i < len; i++) {
    col = out[i] == '\n' ? 0 : col + 1;
    assert_true(col <= 78);
  }
  for (size_t i = 0; i < len; i++) assert_true((unsigned char)out[i] < 0x80); /* 7-bit clean */
  assert_non_null(strstr(out, "Date: Wed, 03 Dec 2025 16:00:00 +0000\r\n"));
  assert_non_null(strstr(out, "From: Marquee <no-reply@marquee.example>\r\n"));
  assert_non_null(strstr(out, "Message-ID: <e1.email.abcdef@marquee>\r\n"));
  assert_non_null(strstr(out, "MIME-Version: 1.0\r\n"));
  assert_null(strstr(out, "List-Unsubscribe"));
  /* the subject's encoded words decode back to the subject */
  const char *subj = strstr(out, "Subject: ") + 9;
  char decoded[512] = "", word[256];
  const char *p = subj;
  while ((p = strstr(p, "=?UTF-8?B?")) && p < strstr(subj, "\r\nMessage-ID")) {
    p += 10;
    const char *end = strstr(p, "?=");
    b64dec(p, (size_t)(end - p), word);
    strcat(decoded, word);
    p = end + 2;
  }
  assert_string_equal(decoded, m.subject);
  /* the text part decodes back to the text */
  const char *tp = strstr(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
  assert_non_null(tp);
  tp = strstr(tp, "\r\n\r\n") + 4;
  const char *te = strstr(tp, "--=_mq_");
  char body[512];
  b64dec(tp, (size_t)(te - tp), body);
  assert_string_equal(body, m.text);
  assert_non_null(strstr(out, "Content-Type: text/html; charset=utf-8"));
  /* a one-click unsubscribe when asked */
  m.list_unsubscribe = "https://x.example/u/abc";
  assert_int_equal(mq_mail_build(&m, &a, &out, &len, &err), MQ_OK);
  assert_non_null(strstr(out,
                         "List-Unsubscribe: <https://x.example/u/abc>\r\nList-Unsubscribe-Post: "
                         "List-Unsubscribe=One-Click\r\n"));
  mq_arena_release(&a);
}

static void test_header_injection_refused(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  mq_mail_t m = sample();
  m.to_name = "Eve\r\nBcc: victim@example.com";
  m.subject = "hi\nBcc: x@example.com";
  m.to_addr = "not an address";
  char *out;
  size_t len;
  assert_int_equal(mq_mail_build(&m, &a, &out, &len, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 3);
  assert_string_equal(err.violations[0].field, "to_addr");
  assert_string_equal(err.violations[1].field, "to_name");
  assert_string_equal(err.violations[2].field, "subject");
  /* a display name with specials is quoted, not taken as syntax */
  m = sample();
  m.to_name = "Doe, \"J\" <x>";
  assert_int_equal(mq_mail_build(&m, &a, &out, &len, &err), MQ_OK);
  assert_non_null(strstr(out, "To: \"Doe, \\\"J\\\" <x>\" <zoe@example.com>\r\n"));
  mq_arena_release(&a);
}

static void test_templates(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  mq_template_t t;
  const char *file = "subject: Hi {{name}}\n--- text\nHello {{name}} & co\n--- html\n<p>{{name}}</p>\n";
  assert_int_equal(mq_template_parse(file, &a, &t, &err), MQ_OK);
  assert_string_equal(t.subject, "Hi {{name}}");
  assert_string_equal(t.text, "Hello {{name}} & co\n");
  assert_string_equal(t.html, "<p>{{name}}</p>\n");
  mq_tvar_t v[] = {{"name", "<b>Tom & \"Jerry\"</b>"}};
  char *out;
  assert_int_equal(mq_template_render(t.html, v, 1, true, &a, &out, &err), MQ_OK);
  assert_string_equal(out, "<p>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</p>\n");
  assert_int_equal(mq_template_render(t.text, v, 1, false, &a, &out, &err), MQ_OK);
  assert_string_equal(out, "Hello <b>Tom & \"Jerry\"</b> & co\n");
  assert_int_equal(mq_template_render("{{other}}", v, 1, false, &a, &out, &err), MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "{{other}}"));
  assert_int_equal(mq_template_render("x {{name", v, 1, false, &a, &out, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_template_parse("--- text\nno subject\n--- html\n", &a, &t, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_template_parse("subject: s\n--- html\nx\n--- text\ny\n", &a, &t, &err), MQ_INVALID_ARGUMENT);
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_message),
      cmocka_unit_test(test_header_injection_refused),
      cmocka_unit_test(test_templates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
