/*
 * test_notifier_compose.c — cmocka tests for consumers/notifier/compose.c:
 * every embedded template renders with its message's variables (a template
 * that uses another variable, or does not parse, fails here and never in a
 * user's inbox); every message has an English template and the same
 * variables in every language; locale fallback; an event's sealed link
 * token becomes the link, and a token no key opens is refused; values are
 * HTML-escaped in the HTML part.
 *
 * Invariant: pure functions, no network. Read next: consumers/notifier/compose.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "consumers/notifier/compose.h"

static void test_every_template_renders(void **state) {
  (void)state;
  mq_notifier_cfg_t c = {.link_base = "https://t.example", .from_name = "Marquee", .from_addr = "n@marquee.example"};
  assert_true(mq_notifier_n_templates >= 8);
  for (size_t i = 0; i < mq_notifier_n_templates; i++) {
    const mq_embedded_template_t *t = &mq_notifier_templates[i];
    const char *const *vars = mq_notice_vars(t->name);
    if (!vars) fail_msg("template %s.%s: no such message in compose.c", t->name, t->locale);
    const char *used;
    assert_non_null(mq_notice_template(t->name, "en", &used)); /* every message speaks English */
    mq_notice_t n = {.template_name = t->name, .locale = t->locale, .to_addr = "a@example.com"};
    for (size_t k = 0; vars[k]; k++) n.vars[n.n_vars++] = (mq_tvar_t){vars[k], "<v&>"};
    mq_arena_t a;
    mq_arena_init(&a);
    mq_error_t err;
    mq_mail_t m;
    if (mq_notice_mail(&c, &n, "id@marquee", 0, &a, &m, &used, &err) != MQ_OK)
      fail_msg("template %s.%s: %s", t->name, t->locale, err.message);
    assert_string_equal(used, t->locale);
    assert_null(strstr(m.html, "<v&>")); /* escaped in HTML */
    assert_non_null(strstr(m.html, "&lt;v&amp;&gt;"));
    assert_non_null(strstr(m.text, "<v&>"));
    char *bytes;
    size_t len;
    if (mq_mail_build(&m, &a, &bytes, &len, &err) != MQ_OK)
      fail_msg("template %s.%s: the mail does not build: %s", t->name, t->locale, err.message);
    /* one variable fewer: refused */
    n.n_vars--;
    assert_int_equal(mq_notice_mail(&c, &n, "id@marquee", 0, &a, &m, &used, &err), MQ_INVALID_ARGUMENT);
    mq_arena_release(&a);
  }
}

/* Every message is written in each language the notifier offers: a message
 * added in one language only fails here, not in a reader's inbox. */
static void test_every_message_in_every_language(void **state) {
  (void)state;
  static const char *const langs[] = {"en", "fr", "es", "de"};
  for (size_t i = 0; i < mq_notifier_n_templates; i++)
    for (size_t k = 0; k < sizeof langs / sizeof *langs; k++) {
      const char *used = NULL;
      if (!mq_notice_template(mq_notifier_templates[i].name, langs[k], &used) || strcmp(used, langs[k]))
        fail_msg("message %s has no %s template", mq_notifier_templates[i].name, langs[k]);
    }
}

static void test_locale_fallback(void **state) {
  (void)state;
  const char *used;
  assert_non_null(mq_notice_template("verify_email", "fr-CA", &used));
  assert_string_equal(used, "fr");
  assert_non_null(mq_notice_template("verify_email", "FR", &used));
  assert_non_null(mq_notice_template("verify_email", "xx-YY", &used));
  assert_string_equal(used, "en");
  assert_non_null(mq_notice_template("verify_email", NULL, &used));
  assert_string_equal(used, "en");
  assert_null(mq_notice_template("no_such_message", "en", &used));
}

static void test_sealed_link(void **state) {
  (void)state;
  char pub[128], sec[128], other_pub[128], other_sec[128];
  mq_seal_keygen("k1", pub, sizeof pub, sec, sizeof sec);
  mq_seal_keygen("k1", other_pub, sizeof other_pub, other_sec, sizeof other_sec);
  mq_seal_keys_t *pk, *sk, *wrong;
  mq_error_t err;
  assert_int_equal(mq_seal_keys_parse(pub, false, "K", &pk, &err), MQ_OK);
  assert_int_equal(mq_seal_keys_parse(sec, true, "K", &sk, &err), MQ_OK);
  assert_int_equal(mq_seal_keys_parse(other_sec, true, "K", &wrong, &err), MQ_OK);
  mq_arena_t a;
  mq_arena_init(&a);
  Marquee__Events__V1__SealedSecret s = MARQUEE__EVENTS__V1__SEALED_SECRET__INIT;
  assert_int_equal(mq_seal(pk, "mqp_TOKEN", &a, &s.key_id, &s.box.data, &s.box.len, &err), MQ_OK);
  Marquee__Events__V1__PasswordResetRequested p = MARQUEE__EVENTS__V1__PASSWORD_RESET_REQUESTED__INIT;
  p.email = (char *)"r@example.com";
  p.locale = (char *)"fr";
  p.sealed_token = &s;
  Marquee__Events__V1__Envelope ev = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  ev.event_id = (char *)"e1";
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED;
  ev.password_reset_requested = &p;
  mq_notifier_cfg_t c = {
      .secret_keys = sk, .link_base = "https://t.example/", .from_name = "M", .from_addr = "n@x.example"};
  mq_notice_t n;
  bool none;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_false(none);
  assert_string_equal(n.template_name, "reset_password");
  assert_string_equal(n.to_addr, "r@example.com");
  assert_string_equal(n.vars[0].value, "https://t.example/reset-password?token=mqp_TOKEN");
  const char *used;
  mq_mail_t m;
  assert_int_equal(mq_notice_mail(&c, &n, "id@marquee", 0, &a, &m, &used, &err), MQ_OK);
  assert_string_equal(used, "fr");
  assert_non_null(strstr(m.text, "https://t.example/reset-password?token=mqp_TOKEN"));
  /* another key, or none: refused, not sent without its link */
  c.secret_keys = wrong;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_FAILED_PRECONDITION);
  c.secret_keys = NULL;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_FAILED_PRECONDITION);
  /* a link past its expiry sends nothing (a notifier catching up does not mail the past) */
  Google__Protobuf__Timestamp exp = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  exp.seconds = 100;
  p.expires_at = &exp;
  c.secret_keys = sk;
  assert_int_equal(mq_notice_for(&c, &ev, 99 * 1000, &a, &n, &none, &err), MQ_OK);
  assert_false(none);
  assert_int_equal(mq_notice_for(&c, &ev, 100 * 1000, &a, &n, &none, &err), MQ_OK);
  assert_true(none);
  /* an event that sends nothing */
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFIED;
  Marquee__Events__V1__EmailVerified v = MARQUEE__EVENTS__V1__EMAIL_VERIFIED__INIT;
  ev.email_verified = &v;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_true(none);
  mq_arena_release(&a);
  mq_seal_keys_free(pk);
  mq_seal_keys_free(sk);
  mq_seal_keys_free(wrong);
}

/* The payments' messages: instructions for a transfer, an expired
 * reservation (and nothing for a payment the buyer cancelled), a refund. */
static void test_payment_messages(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_notifier_cfg_t c = {.link_base = "https://t.example", .from_name = "M", .from_addr = "n@x.example"};
  mq_notice_t n;
  bool none;
  mq_error_t err;
  Google__Protobuf__Timestamp dl = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  dl.seconds = 1800000000;
  Marquee__Events__V1__PaymentRequiresAction ra = MARQUEE__EVENTS__V1__PAYMENT_REQUIRES_ACTION__INIT;
  ra.payment_id = (char *)"p1";
  ra.user_id = (char *)"u1";
  ra.event_id = (char *)"e1";
  ra.instructions = (char *)"Pay 15.00 EUR quoting MQ-ABC";
  ra.amount_minor = 1500;
  ra.currency = (char *)"EUR";
  ra.deadline = &dl;
  Marquee__Events__V1__Envelope ev = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  ev.event_id = (char *)"x1";
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_REQUIRES_ACTION;
  ev.payment_requires_action = &ra;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_false(none);
  assert_string_equal(n.template_name, "payment_instructions");
  assert_string_equal(n.user_id, "u1");
  assert_string_equal(n.event_id, "e1");
  Marquee__Events__V1__PaymentCancelled pc = MARQUEE__EVENTS__V1__PAYMENT_CANCELLED__INIT;
  pc.user_id = (char *)"u1";
  pc.event_id = (char *)"e1";
  pc.reason = (char *)"cancelled by the buyer";
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_CANCELLED;
  ev.payment_cancelled = &pc;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_true(none);
  pc.reason = (char *)"deadline";
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_false(none);
  assert_string_equal(n.template_name, "payment_expired");
  Marquee__Events__V1__RefundIssued ri = MARQUEE__EVENTS__V1__REFUND_ISSUED__INIT;
  ri.payment_id = (char *)"p1";
  ri.user_id = (char *)"u1";
  ri.event_id = (char *)"e1";
  ri.amount_minor = 500;
  ri.refunded_total_minor = 500;
  ri.currency = (char *)"EUR";
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFUND_ISSUED;
  ev.refund_issued = &ri;
  assert_int_equal(mq_notice_for(&c, &ev, 1000, &a, &n, &none, &err), MQ_OK);
  assert_false(none);
  assert_string_equal(n.template_name, "refund_issued");
  mq_notice_resolve_user(&n, "b@example.com", "Bea", "fr");
  Marquee__Catalog__V1__Event e = MARQUEE__CATALOG__V1__EVENT__INIT;
  e.title = (char *)"Jazz";
  e.starts_at = &dl;
  mq_notice_resolve_event(&n, &a, &e);
  const char *used;
  mq_mail_t m;
  mq_code_t rc = mq_notice_mail(&c, &n, "id@marquee", 0, &a, &m, &used, &err);
  if (rc) print_message("%s: %s\n", err.field, err.message);
  assert_int_equal(rc, MQ_OK);
  assert_string_equal(used, "fr");
  assert_non_null(strstr(m.subject, "5,00")); /* the amount as French writes it (ICU): "5,00 €" */
  assert_non_null(strstr(m.subject, "€"));
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_template_renders), cmocka_unit_test(test_every_message_in_every_language),
      cmocka_unit_test(test_locale_fallback),        cmocka_unit_test(test_sealed_link),
      cmocka_unit_test(test_payment_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
