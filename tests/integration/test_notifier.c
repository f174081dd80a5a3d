/*
 * test_notifier.c — marquee-notifier against the real stack: events from a
 * real server through Kafka, mail through SMTP into mailpit, read back
 * through mailpit's API (the receiving system).
 *
 *  - Links work end to end: the welcome mail arrives; the verification,
 *    password-reset and invitation mails carry a link whose token verifies
 *    the address, resets the password and joins the organization; a French
 *    speaker gets the French template.
 *  - Values are inert in HTML: a display name "<script>…" arrives escaped.
 *  - Once: a second notifier of another consumer group on the same database
 *    replays the same events and sends nothing again (the delivery records).
 *  - SMTP away: with mailpit stopped the mail waits (the delivery is retried,
 *    the lag shows it) and arrives once when mailpit returns.
 *  - Refused for good: an SMTP server that rejects one recipient (a private
 *    mailpit allowing only some) — that delivery is recorded "failed" with
 *    the server's reply, and the next one goes out.
 *  - Events that name their reader by id: a password change, and a booking
 *    confirmed then cancelled, reach the account's address with the
 *    event's title, in the account's language.
 *  - Ticket holders: an event moved in time reaches every holder once (one
 *    with two bookings too), a title change reaches nobody, and the reminder
 *    goes out once per holder when the event starts within the window (in
 *    the holder's language), the organizer without a booking gets neither.
 *  - SIGKILL in the middle of 1,000 confirmations, then a restart: all
 *    1,000 arrive, each Message-ID once (at most one copy more: the message
 *    in flight at the kill, same Message-ID).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mq_principal.h"
#include "fixtures.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "marquee/payments/v1/payments.mq-client.h"

#define PASSWORD "correct horse battery staple"

static mq_test_proc_t srv, notifier;
static mq_client_t *cl;

static int setup(void **state) {
  (void)state;
  if (mq_test_server_start(&srv, NULL, NULL) != 0) return -1;
  if (mq_test_notifier_start(&notifier, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  mq_test_proc_stop(&notifier, SIGTERM, 20000);
  mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return 0;
}

/* The token of the link "…?token=<token>" in text, into out[n]. */
static bool link_token(const char *text, char *out, size_t n) {
  const char *p = text ? strstr(text, "?token=") : NULL;
  if (!p) return false;
  p += 7;
  size_t len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
  if (len == 0 || len >= n) return false;
  memcpy(out, p, len);
  out[len] = '\0';
  return true;
}

static char *sign_up(const char *tag, const char *name, const char *locale, char *uid, size_t un, char *email,
                     size_t en) {
  static int seq;
  snprintf(email, en, "%s.%d.%d@notify.example", tag, (int)getpid(), ++seq);
  Marquee__Identity__V1__SignUpRequest q = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  q.email = email;
  q.password = (char *)PASSWORD;
  q.display_name = (char *)name;
  q.locale = (char *)locale;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(cl, &q, &r, NULL, &err), MQ_OK);
  snprintf(uid, un, "%s", r->user->user_id);
  char *tok = strdup(r->tokens->access_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return tok;
}

static void request_reset(const char *email) {
  Marquee__Identity__V1__RequestPasswordResetRequest q = MARQUEE__IDENTITY__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
  q.email = (char *)email;
  Marquee__Identity__V1__RequestPasswordResetResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__account_service__request_password_reset__call(cl, &q, &r, NULL, &err), MQ_OK);
  marquee__identity__v1__request_password_reset_response__free_unpacked(r, NULL);
}

static void test_links_arrive_and_work(void **state) {
  (void)state;
  char uid[64], email[128], bob_id[64], bob_mail[128];
  char *tok = sign_up("ada", "Ada Lovelace", "fr-CA", uid, sizeof uid, email, sizeof email);
  char *bob = sign_up("bob", "Bob", "en", bob_id, sizeof bob_id, bob_mail, sizeof bob_mail);
  char *subject = NULL, *text = NULL, *html = NULL;

  /* welcome, in French (fr-CA falls back to fr) */
  assert_int_equal(mq_test_mail_wait(email, 1, 60000, &subject, &text, NULL), 1);
  assert_string_equal(subject, "Bienvenue sur Marquee, Ada Lovelace");
  assert_non_null(strstr(text, "https://tickets.test"));
  free(subject);
  free(text);

  /* e-mail verification: the link's token verifies the address */
  mq_call_opts_t o = {.bearer_token = tok};
  mq_error_t err;
  Marquee__Identity__V1__RequestEmailVerificationRequest vq =
      MARQUEE__IDENTITY__V1__REQUEST_EMAIL_VERIFICATION_REQUEST__INIT;
  Marquee__Identity__V1__RequestEmailVerificationResponse *vr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__request_email_verification__call(cl, &vq, &vr, &o, &err),
                   MQ_OK);
  marquee__identity__v1__request_email_verification_response__free_unpacked(vr, NULL);
  assert_int_equal(mq_test_mail_wait(email, 2, 60000, &subject, &text, NULL), 2);
  assert_string_equal(subject, "Confirmez votre adresse e-mail");
  assert_non_null(strstr(text, "https://tickets.test/verify-email?token=mqv_"));
  char token[128];
  assert_true(link_token(text, token, sizeof token));
  free(subject);
  free(text);
  Marquee__Identity__V1__VerifyEmailRequest ve = MARQUEE__IDENTITY__V1__VERIFY_EMAIL_REQUEST__INIT;
  ve.token = token;
  Marquee__Identity__V1__VerifyEmailResponse *ver = NULL;
  assert_int_equal(marquee__identity__v1__account_service__verify_email__call(cl, &ve, &ver, NULL, &err), MQ_OK);
  assert_true(ver->user->email_verified);
  marquee__identity__v1__verify_email_response__free_unpacked(ver, NULL);

  /* password reset: the link's token sets a new password */
  request_reset(email);
  assert_int_equal(mq_test_mail_wait(email, 3, 60000, &subject, &text, &html), 3);
  assert_string_equal(subject, "Réinitialisez votre mot de passe Marquee");
  assert_true(link_token(text, token, sizeof token));
  assert_non_null(strstr(html, "reset-password?token="));
  free(subject);
  free(text);
  free(html);
  Marquee__Identity__V1__ResetPasswordRequest rp = MARQUEE__IDENTITY__V1__RESET_PASSWORD_REQUEST__INIT;
  rp.token = token;
  rp.new_password = (char *)"a completely new passphrase";
  Marquee__Identity__V1__ResetPasswordResponse *rpr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__reset_password__call(cl, &rp, &rpr, NULL, &err), MQ_OK);
  marquee__identity__v1__reset_password_response__free_unpacked(rpr, NULL);
  assert_int_equal(mq_test_mail_wait(email, 4, 60000, &subject, NULL, NULL), 4); /* and the change is notified */
  assert_string_equal(subject, "Le mot de passe de votre compte Marquee a été changé");
  free(subject);

  /* an invitation: the link's token joins the organization */
  char *organizer = mq_test_token(uid, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "mail", org);
  char invitation[40];
  mq_fx_invite(cl, organizer, org, bob_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, invitation);
  assert_int_equal(mq_test_mail_wait(bob_mail, 2, 60000, &subject, &text, NULL), 2); /* welcome + invitation */
  assert_non_null(strstr(subject, "You are invited to join"));
  assert_non_null(strstr(text, "as manager"));
  assert_true(link_token(text, token, sizeof token));
  free(subject);
  free(text);
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = token;
  Marquee__Identity__V1__Member *m = NULL;
  mq_call_opts_t ob = {.bearer_token = bob};
  assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &m, &ob, &err), MQ_OK);
  assert_string_equal(m->organization_id, org);
  marquee__identity__v1__member__free_unpacked(m, NULL);

  /* once: another group replays every event of this database, and sends nothing again */
  mq_test_proc_t again;
  char group[160];
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-notifier-replay-%s", srv.db);
  const char *env[] = {group, NULL};
  assert_int_equal(mq_test_notifier_start(&again, srv.db, env), 0);
  const char *lag = "marquee_consumer_lag{consumer=\"notifier\",topic=\"marquee.users\"}";
  int64_t until = mq_test_now_ms() + 60000;
  const char *handled = "marquee_consumer_events_total{consumer=\"notifier\",outcome=\"handled\"}";
  while ((mq_test_metric(&again, lag) != 0 || mq_test_metric(&again, handled) < 6) && mq_test_now_ms() < until)
    mq_test_sleep_ms(200);
  assert_true(mq_test_metric(&again, handled) >= 6); /* 2 welcomes, verification, reset, change, invitation */
  assert_int_equal(mq_test_proc_stop(&again, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_mail_wait(email, 5, 1000, NULL, NULL, NULL), 4);
  assert_int_equal(mq_test_mail_wait(bob_mail, 3, 1000, NULL, NULL, NULL), 2);
  free(tok);
  free(bob);
  free(organizer);
}

static void test_values_are_inert_in_html(void **state) {
  (void)state;
  char uid[64], email[128];
  char *tok = sign_up("xss", "<script>alert(1)</script>", "en", uid, sizeof uid, email, sizeof email);
  char *subject = NULL, *html = NULL;
  assert_int_equal(mq_test_mail_wait(email, 1, 60000, &subject, NULL, &html), 1);
  assert_string_equal(subject, "Welcome to Marquee, <script>alert(1)</script>"); /* a subject is text */
  assert_null(strstr(html, "<script>"));
  assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  free(subject);
  free(html);
  free(tok);
}

static void test_mail_waits_while_smtp_is_away(void **state) {
  (void)state;
  char uid[64], email[128];
  char *tok = sign_up("away", "Away", "en", uid, sizeof uid, email, sizeof email);
  assert_int_equal(mq_test_mail_wait(email, 1, 60000, NULL, NULL, NULL), 1);
  assert_int_equal(mq_test_stack("stop", "mailpit"), 0);
  double retries = mq_test_metric(&notifier, "marquee_consumer_retries_total{consumer=\"notifier\"}");
  request_reset(email);
  /* the delivery is retried while the SMTP server is away, and the event waits */
  bool retried =
      mq_test_wait_metric(&notifier, "marquee_consumer_retries_total{consumer=\"notifier\"}", retries + 2, 30000);
  char filter[256];
  snprintf(filter, sizeof filter, /* "waiting" between attempts, "sending" during one */
           "{\"to\": \"%s\", \"template\": \"reset_password\", \"state\": {\"$in\": [\"waiting\", \"sending\"]}}",
           email);
  int64_t waiting = mq_test_count(NULL, srv.db, "deliveries", filter);
  int start_rc = mq_test_stack("start", "mailpit"); /* back before any assertion: other tests need it */
  assert_true(retried);
  assert_int_equal(waiting, 1);
  assert_int_equal(start_rc, 0);
  char *subject = NULL;
  assert_int_equal(mq_test_mail_wait(email, 2, 60000, &subject, NULL, NULL), 2);
  assert_string_equal(subject, "Reset your Marquee password");
  free(subject);
  snprintf(filter, sizeof filter, "{\"to\": \"%s\", \"template\": \"reset_password\", \"state\": \"sent\"}", email);
  int64_t until = mq_test_now_ms() + 10000;
  while (mq_test_count(NULL, srv.db, "deliveries", filter) != 1 && mq_test_now_ms() < until) mq_test_sleep_ms(100);
  assert_int_equal(mq_test_count(NULL, srv.db, "deliveries", filter), 1);
  mq_test_sleep_ms(1000);
  assert_int_equal(mq_test_mail_wait(email, 3, 500, NULL, NULL, NULL), 2); /* once */
  free(tok);
}

static void test_password_change_and_booking_mails(void **state) {
  (void)state;
  char uid[64], email[128], org_owner[64], owner_mail[128];
  char *tok = sign_up("buyer", "Bea Buyer", "fr", uid, sizeof uid, email, sizeof email);
  char *owner_tok = sign_up("owner", "Olga", "en", org_owner, sizeof org_owner, owner_mail, sizeof owner_mail);
  assert_int_equal(mq_test_mail_wait(email, 1, 60000, NULL, NULL, NULL), 1); /* welcome */
  mq_error_t err;
  mq_call_opts_t o = {.bearer_token = tok};

  /* a password change: a notice to the account's address */
  Marquee__Identity__V1__ChangePasswordRequest cp = MARQUEE__IDENTITY__V1__CHANGE_PASSWORD_REQUEST__INIT;
  cp.current_password = (char *)PASSWORD;
  cp.new_password = (char *)"another long passphrase";
  Marquee__Identity__V1__ChangePasswordResponse *cpr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__change_password__call(cl, &cp, &cpr, &o, &err), MQ_OK);
  marquee__identity__v1__change_password_response__free_unpacked(cpr, NULL);
  char *subject = NULL, *text = NULL;
  assert_int_equal(mq_test_mail_wait(email, 2, 60000, &subject, &text, NULL), 2);
  assert_string_equal(subject, "Le mot de passe de votre compte Marquee a été changé");
  assert_non_null(strstr(text, "Bonjour Bea Buyer"));
  free(subject);
  free(text);

  /* a free booking, confirmed, then cancelled */
  char *organizer = mq_test_token(org_owner, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "mailbook", org);
  mq_fx_event_opts_t eo = {.n_tt = 1, .tt = {{.capacity = 10}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(cl, organizer, org, &eo, &ev);
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = ev.tt[0];
  item.quantity = 2;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = ev.event_id;
  hq.items = items;
  hq.n_items = 1;
  Marquee__Bookings__V1__Hold *h = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(cl, &hq, &h, &o, &err), MQ_OK);
  Marquee__Bookings__V1__ConfirmHoldRequest cq = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
  cq.hold_id = h->hold_id;
  Marquee__Bookings__V1__Booking *b = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__confirm_hold__call(cl, &cq, &b, &o, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  assert_int_equal(mq_test_mail_wait(email, 3, 60000, &subject, &text, NULL), 3);
  assert_non_null(strstr(subject, "Vos billets pour "));
  assert_non_null(strstr(text, "Billets :    2"));
  assert_non_null(strstr(text, "Total :      free"));
  char link[200];
  snprintf(link, sizeof link, "https://tickets.test/bookings/%s", b->booking_id);
  assert_non_null(strstr(text, link));
  free(subject);
  free(text);
  Marquee__Bookings__V1__CancelBookingRequest xq = MARQUEE__BOOKINGS__V1__CANCEL_BOOKING_REQUEST__INIT;
  xq.booking_id = b->booking_id;
  xq.reason = (char *)"cannot come";
  Marquee__Bookings__V1__Booking *xb = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__cancel_booking__call(cl, &xq, &xb, &o, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(xb, NULL);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  assert_int_equal(mq_test_mail_wait(email, 4, 60000, &subject, &text, NULL), 4);
  assert_non_null(strstr(subject, "Votre réservation pour "));
  assert_non_null(strstr(text, "cannot come"));
  free(subject);
  free(text);
  free(tok);
  free(owner_tok);
  free(organizer);
}

/* A bank-transfer payment: the buyer is told how to pay; the organizer
 * marks it received (the booking confirmation follows); a refund is told. */
static void test_payment_mails(void **state) {
  (void)state;
  char uid[64], email[128], owner[64], owner_mail[128];
  char *tok = sign_up("payer", "Pat Payer", "en", uid, sizeof uid, email, sizeof email);
  char *owner_tok = sign_up("seller", "Sam", "en", owner, sizeof owner, owner_mail, sizeof owner_mail);
  assert_int_equal(mq_test_mail_wait(email, 1, 60000, NULL, NULL, NULL), 1); /* welcome */
  char *organizer = mq_test_token(owner, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "mailpay", org);
  mq_fx_event_opts_t eo = {.n_tt = 1, .tt = {{.price_minor = 1500, .capacity = 10}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(cl, organizer, org, &eo, &ev);
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = ev.tt[0];
  item.quantity = 1;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = ev.event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t o = {.bearer_token = tok}, oo = {.bearer_token = organizer};
  mq_error_t err;
  Marquee__Bookings__V1__Hold *h = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(cl, &hq, &h, &o, &err), MQ_OK);
  Marquee__Payments__V1__CreatePaymentRequest pq = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  pq.hold_id = h->hold_id;
  pq.amount = h->total;
  pq.gateway = (char *)"manual";
  Marquee__Payments__V1__Payment *p = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__create_payment__call(cl, &pq, &p, &o, &err), MQ_OK);
  char *subject = NULL, *text = NULL;
  assert_int_equal(mq_test_mail_wait(email, 2, 60000, &subject, &text, NULL), 2);
  assert_string_equal(subject, "How to pay for Fixture Event");
  assert_non_null(strstr(text, "€15.00"));             /* English writes euros so (ICU) */
  assert_non_null(strstr(text, p->gateway_reference)); /* the reference to quote */
  free(subject);
  free(text);
  Marquee__Payments__V1__MarkPaymentReceivedRequest mq = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
  mq.payment_id = p->payment_id;
  Marquee__Payments__V1__Payment *x = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__mark_payment_received__call(cl, &mq, &x, &oo, &err), MQ_OK);
  marquee__payments__v1__payment__free_unpacked(x, NULL);
  assert_int_equal(mq_test_mail_wait(email, 3, 60000, &subject, NULL, NULL), 3); /* the tickets */
  assert_non_null(strstr(subject, "Fixture Event"));
  free(subject);
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = 500;
  m.currency = (char *)"EUR";
  Marquee__Payments__V1__RefundPaymentRequest rq = MARQUEE__PAYMENTS__V1__REFUND_PAYMENT_REQUEST__INIT;
  rq.payment_id = p->payment_id;
  rq.amount = &m;
  rq.reason = (char *)"goodwill";
  Marquee__Payments__V1__Refund *r = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__refund_payment__call(cl, &rq, &r, &oo, &err), MQ_OK);
  marquee__payments__v1__refund__free_unpacked(r, NULL);
  assert_int_equal(mq_test_mail_wait(email, 4, 60000, &subject, &text, NULL), 4);
  assert_string_equal(subject, "Refund of €5.00 for Fixture Event");
  assert_non_null(strstr(text, "goodwill"));
  free(subject);
  free(text);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  free(tok);
  free(owner_tok);
  free(organizer);
}

/* A notifier holding another key cannot open the link token: the event is
 * dead-lettered at once (no retries: it would fail the same way every time),
 * and the consumer goes on. */
static void test_unopenable_token_is_dead_lettered_at_once(void **state) {
  (void)state;
  char other[200], group[160];
  snprintf(other, sizeof other, "MARQUEE_NOTIFY_SECRET_KEYS=itest:%s", "b3RoZXItbm90aWZpZXItc2VjcmV0LWtleS0wMTIzNDU");
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-notifier-wrongkey-%s", srv.db);
  const char *env[] = {other, group, "MARQUEE_CONSUMER_MAX_ATTEMPTS=50", NULL};
  mq_test_proc_t wrong;
  assert_int_equal(mq_test_notifier_start(&wrong, srv.db, env), 0);
  char uid[64], email[128];
  char *tok = sign_up("wrongkey", "Wrong Key", "en", uid, sizeof uid, email, sizeof email);
  request_reset(email);
  bool dead = mq_test_wait_metric(
      &wrong, "marquee_consumer_events_total{consumer=\"notifier\",outcome=\"dead_lettered\"}", 1, 30000);
  double retries = mq_test_metric(&wrong, "marquee_consumer_retries_total{consumer=\"notifier\"}");
  mq_test_proc_stop(&wrong, SIGTERM, 20000);
  assert_true(dead);
  assert_true(retries == 0); /* with 50 attempts allowed, none was spent on it */
  free(tok);
}

static void test_refused_for_good_is_recorded(void **state) {
  (void)state;
  /* a private mailpit that accepts only "ok-…" recipients */
  int smtp_port = 21000 + (int)(getpid() % 4000), api_port = smtp_port + 5000;
  char bin[600], smtp[64], api[64], db_path[128];
  snprintf(bin, sizeof bin, "%s/bin/mailpit", mq_test_stack_dir());
  snprintf(smtp, sizeof smtp, "127.0.0.1:%d", smtp_port);
  snprintf(api, sizeof api, "127.0.0.1:%d", api_port);
  snprintf(db_path, sizeof db_path, "/tmp/mq-mailpit-%d.db", (int)getpid());
  pid_t mp = fork();
  assert_true(mp >= 0);
  if (mp == 0) {
    execl(bin, bin, "--smtp", smtp, "--listen", api, "--database", db_path, "--disable-version-check",
          "--smtp-disable-rdns", "--smtp-allowed-recipients", "^ok-", (char *)NULL);
    _exit(127);
  }
  int64_t until = mq_test_now_ms() + 30000;
  int status = 0;
  char *info = NULL;
  while (mq_test_now_ms() < until) {
    info = mq_test_http_get(api, "/api/v1/info", &status);
    if (info && status == 200) break;
    free(info);
    info = NULL;
    mq_test_sleep_ms(100);
  }
  free(info);
  assert_int_equal(status, 200);

  /* this test's notifier sends there (the shared one stops: one sender per database) */
  mq_test_proc_stop(&notifier, SIGTERM, 20000);
  char smtp_url[96], group[160];
  snprintf(smtp_url, sizeof smtp_url, "MARQUEE_SMTP_URL=smtp://%s", smtp);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-notifier-refuse-%s", srv.db);
  const char *env[] = {smtp_url, group, NULL};
  mq_test_proc_t n;
  assert_int_equal(mq_test_notifier_start(&n, srv.db, env), 0);

  char uid[64], no_mail[128], ok_mail[128], uid2[64];
  char *t1 = sign_up("no-refused", "Refused", "en", uid, sizeof uid, no_mail, sizeof no_mail);
  char *t2 = sign_up("ok-accepted", "Accepted", "en", uid2, sizeof uid2, ok_mail, sizeof ok_mail);
  char filter[320];
  snprintf(filter, sizeof filter, "{\"to\": \"%s\", \"state\": \"failed\", \"error\": {\"$regex\": \"5[0-9][0-9]\"}}",
           no_mail);
  until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "deliveries", filter) != 1 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  int64_t failed = mq_test_count(NULL, srv.db, "deliveries", filter);
  int arrived = mq_test_mail_wait_at(api, ok_mail, 1, 60000, NULL, NULL, NULL); /* the next one goes out */
  int refused_arrived = mq_test_mail_wait_at(api, no_mail, 1, 500, NULL, NULL, NULL);
  mq_test_proc_stop(&n, SIGTERM, 20000);
  kill(mp, SIGTERM);
  waitpid(mp, NULL, 0);
  unlink(db_path);
  assert_int_equal(failed, 1);
  assert_int_equal(arrived, 1);
  assert_int_equal(refused_arrived, 0);
  free(t1);
  free(t2);
}

/* Books `qty` of ev's first ticket type for the token's user (free: confirmed at once). */
static void book_free(const char *token, const mq_fx_event_t *ev, uint32_t qty) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)ev->tt[0];
  item.quantity = qty;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = (char *)ev->event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t o = {.bearer_token = token};
  mq_error_t err;
  Marquee__Bookings__V1__Hold *h = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(cl, &hq, &h, &o, &err), MQ_OK);
  Marquee__Bookings__V1__ConfirmHoldRequest cq = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
  cq.hold_id = h->hold_id;
  Marquee__Bookings__V1__Booking *b = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__confirm_hold__call(cl, &cq, &b, &o, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static Marquee__Catalog__V1__Event *get_event(const char *token, const char *id) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = token};
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(cl, &q, &e, &o, &err), MQ_OK);
  return e;
}

/* Sets the event's start (and end, an hour later) to `starts_s`, or only its title when title != NULL. */
static void update_event(const char *token, const char *id, int64_t starts_s, const char *title) {
  Marquee__Catalog__V1__Event *e = get_event(token, id);
  Marquee__Catalog__V1__Event in = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, en = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  char *starts[] = {(char *)"starts_at", (char *)"ends_at"}, *titles[] = {(char *)"title"};
  Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  if (title) {
    in.title = (char *)title;
    m.paths = titles;
    m.n_paths = 1;
  } else {
    s.seconds = starts_s;
    en.seconds = starts_s + 3600;
    in.starts_at = &s;
    in.ends_at = &en;
    m.paths = starts;
    m.n_paths = 2;
  }
  Marquee__Catalog__V1__UpdateEventRequest q = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  q.event = &in;
  q.update_mask = &m;
  q.version = e->version;
  mq_call_opts_t o = {.bearer_token = token};
  Marquee__Catalog__V1__Event *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &q, &r, &o, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(r, NULL);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
}

/* Deliveries of `template` sent to `to` (the notifier's own records). */
static int64_t sent_count(const char *db, const char *to, const char *template_name) {
  char f[300];
  snprintf(f, sizeof f, "{\"to\": \"%s\", \"template\": \"%s\", \"state\": \"sent\"}", to, template_name);
  return mq_test_count(NULL, db, "deliveries", f);
}

static bool sent_wait(const char *db, const char *to, const char *template_name, int64_t n, int timeout_ms) {
  for (int64_t until = mq_test_now_ms() + timeout_ms; mq_test_now_ms() < until; mq_test_sleep_ms(200))
    if (sent_count(db, to, template_name) >= n) return true;
  return sent_count(db, to, template_name) >= n;
}

/* Ticket holders: told once each when the event moves (not when only its
 * title changes), reminded once each when it starts within the reminder
 * window — whatever their number of bookings — and a moved event is
 * reminded at its new time. */
static void test_holders_told_of_changes_and_reminded(void **state) {
  (void)state;
  mq_test_proc_t n2, s2;
  /* a server and a notifier of their own: reminders every 300 ms, 2 hours ahead */
  assert_int_equal(mq_test_server_start(&s2, NULL, NULL), 0);
  const char *nenv[] = {"MARQUEE_REMINDER_SWEEP_MS=300", "MARQUEE_REMINDER_HOURS=2", NULL};
  assert_int_equal(mq_test_notifier_start(&n2, s2.db, nenv), 0);
  mq_client_t *saved = cl;
  cl = mq_test_client(&s2);
  char a_id[64], a_mail[128], b_id[64], b_mail[128], o_id[64], o_mail[128];
  char *alice = sign_up("ann", "Ann Holder", "en", a_id, sizeof a_id, a_mail, sizeof a_mail);
  char *bob = sign_up("bruno", "Bruno Holder", "fr", b_id, sizeof b_id, b_mail, sizeof b_mail);
  char *owner = sign_up("owner", "Oona", "en", o_id, sizeof o_id, o_mail, sizeof o_mail);
  char *organizer = mq_test_token(o_id, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "holders", org);
  /* starts in 3 hours: outside the 2-hour window */
  mq_fx_event_opts_t eo = {.n_tt = 1, .tt = {{.capacity = 20}}, .starts_in_s = 3 * 3600, .title = "Holders Night"};
  mq_fx_event_t ev = {0};
  mq_fx_event(cl, organizer, org, &eo, &ev);
  book_free(alice, &ev, 1);
  book_free(alice, &ev, 2); /* two bookings: still one mail each time */
  book_free(bob, &ev, 1);
  /* the confirmations (two for Ann), then nothing more while the event is 3 hours away */
  assert_true(sent_wait(s2.db, a_mail, "booking_confirmed", 2, 60000));
  assert_true(sent_wait(s2.db, b_mail, "booking_confirmed", 1, 60000));
  mq_test_sleep_ms(1500);
  assert_int_equal(sent_count(s2.db, a_mail, "event_reminder"), 0);
  /* only the title: nobody is told */
  update_event(organizer, ev.event_id, 0, "Holders Night (renamed)");
  mq_test_sleep_ms(1500);
  assert_int_equal(sent_count(s2.db, a_mail, "event_changed"), 0);
  /* moved to 90 minutes from now: told of the change, and reminded (now inside the 2-hour window) */
  int64_t moved = (int64_t)time(NULL) + 90 * 60;
  update_event(organizer, ev.event_id, moved, NULL);
  assert_true(sent_wait(s2.db, a_mail, "event_changed", 1, 60000));
  assert_true(sent_wait(s2.db, a_mail, "event_reminder", 1, 60000));
  assert_true(sent_wait(s2.db, b_mail, "event_changed", 1, 60000));
  assert_true(sent_wait(s2.db, b_mail, "event_reminder", 1, 60000));
  mq_test_sleep_ms(2000); /* several sweeps later: still once each */
  assert_int_equal(sent_count(s2.db, a_mail, "event_changed"), 1);
  assert_int_equal(sent_count(s2.db, a_mail, "event_reminder"), 1);
  assert_int_equal(sent_count(s2.db, b_mail, "event_reminder"), 1);
  /* what arrived: Bruno's in French, with the new title */
  char *subject = NULL, *text = NULL;
  assert_true(mq_test_mail_wait(b_mail, 4, 30000, &subject, &text, NULL) >= 4);
  assert_true(strstr(subject, "Demain : Holders Night (renamed)") ||
              strstr(subject, "Holders Night (renamed) a changé"));
  free(subject);
  free(text);
  char f[300];
  snprintf(f, sizeof f, "{\"to\": \"%s\", \"template\": \"event_reminder\", \"locale\": \"fr\"}", b_mail);
  assert_int_equal(mq_test_count(NULL, s2.db, "deliveries", f), 1);
  snprintf(f, sizeof f, "{\"_id\": \"%s\", \"state\": \"sent\"}", ev.event_id);
  assert_int_equal(mq_test_count(NULL, s2.db, "reminders", f), 1);
  /* the organizer (no booking) got neither */
  assert_int_equal(sent_count(s2.db, o_mail, "event_changed") + sent_count(s2.db, o_mail, "event_reminder"), 0);
  mq_client_destroy(cl);
  cl = saved;
  free(alice);
  free(bob);
  free(owner);
  free(organizer);
  mq_test_proc_stop(&n2, SIGTERM, 20000);
  mq_test_proc_stop(&s2, SIGTERM, 20000);
  mq_test_drop_db(NULL, s2.db);
}

/* SIGKILL in the middle of 1,000 booking confirmations, then a restart:
 * every confirmation arrives, each under its own Message-ID, and nothing
 * twice except — at most — the one message whose acceptance by the SMTP
 * server the killed process had not yet recorded (the documented window:
 * deliveries_store.h; it carries the same Message-ID, so a receiver drops
 * it). The confirmations are produced to Kafka as the relay would, for one
 * buyer and one event, so that the test measures the notifier alone. */
#define BURST 1000
static void test_sigkill_during_a_burst_of_confirmations(void **state) {
  (void)state;
  mq_test_proc_t s2, n2;
  assert_int_equal(mq_test_server_start(&s2, NULL, NULL), 0);
  mq_client_t *saved = cl;
  cl = mq_test_client(&s2);
  char uid[64], email[128], o_id[64], o_mail[128];
  char *buyer = sign_up("burst", "Burst Buyer", "en", uid, sizeof uid, email, sizeof email);
  char *owner = sign_up("burstowner", "Owen", "en", o_id, sizeof o_id, o_mail, sizeof o_mail);
  char *organizer = mq_test_token(o_id, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "burst", org);
  mq_fx_event_opts_t eo = {.n_tt = 1, .tt = {{.capacity = 10}}, .title = "Burst Night"};
  mq_fx_event_t ev = {0};
  mq_fx_event(cl, organizer, org, &eo, &ev);
  /* a notifier of its own, in a group that starts at the end of the log: only the burst is read */
  char group[160];
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-notifier-burst-%s", s2.db);
  static const char *const topics[] = {"marquee.users", "marquee.bookings", "marquee.payments", "marquee.events", NULL};
  assert_true(mq_test_group_at_end(strchr(group, '=') + 1, topics));
  const char *nenv[] = {group, NULL};
  for (int i = 0; i < BURST; i++) {
    char id[37], booking[37];
    snprintf(id, sizeof id, "00000000-0000-4000-8%03d-%012d", getpid() % 1000, i);
    snprintf(booking, sizeof booking, "00000000-0000-4000-9%03d-%012d", getpid() % 1000, i);
    Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT, *units[] = {&u};
    u.ticket_type_id = ev.tt[0];
    u.quantity = 1;
    Marquee__Events__V1__BookingConfirmed p = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
    p.booking_id = booking;
    p.event_id = ev.event_id;
    p.organization_id = org;
    p.user_id = uid;
    p.units = units;
    p.n_units = 1;
    p.currency = (char *)"EUR";
    Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.type = (char *)"bookings.BookingConfirmed";
    env.aggregate_id = booking;
    env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
    env.booking_confirmed = &p;
    assert_true(mq_test_produce("marquee.bookings", booking, &env));
  }
  assert_int_equal(mq_test_notifier_start(&n2, s2.db, nenv), 0);
  /* kill it with roughly a third sent */
  char f[300];
  snprintf(f, sizeof f, "{\"to\": \"%s\", \"state\": \"sent\"}", email);
  for (int64_t until = mq_test_now_ms() + 120000; mq_test_now_ms() < until; mq_test_sleep_ms(20))
    if (mq_test_count(NULL, s2.db, "deliveries", f) >= BURST / 3) break;
  int64_t at_kill = mq_test_count(NULL, s2.db, "deliveries", f);
  if (at_kill < BURST / 3 || at_kill >= BURST) {
    snprintf(f, sizeof f, "{\"to\": \"%s\"}", email);
    print_message("at the kill: %lld sent, %lld deliveries in all\n", (long long)at_kill,
                  (long long)mq_test_count(NULL, s2.db, "deliveries", f));
  }
  assert_true(at_kill >= BURST / 3 && at_kill < BURST);
  mq_test_proc_stop(&n2, SIGKILL, 5000);
  print_message("killed with %lld of %d recorded sent\n", (long long)at_kill, BURST);
  assert_int_equal(mq_test_notifier_start(&n2, s2.db, nenv), 0);
  for (int64_t until = mq_test_now_ms() + 180000; mq_test_now_ms() < until; mq_test_sleep_ms(200))
    if (mq_test_count(NULL, s2.db, "deliveries", f) >= BURST) break;
  assert_int_equal(mq_test_count(NULL, s2.db, "deliveries", f), BURST);
  int total = 0, distinct = 0;
  for (int64_t until = mq_test_now_ms() + 30000; mq_test_now_ms() < until; mq_test_sleep_ms(200))
    if ((total = mq_test_mail_ids(email, &distinct)) >= BURST && distinct >= BURST) break;
  mq_test_sleep_ms(500); /* anything still arriving */
  total = mq_test_mail_ids(email, &distinct);
  /* the welcome: sent by this test program's shared notifier too (it mails UserRegistered to the address the
   * event carries, whatever the database), or by this one if it reached the bus after the group's start */
  snprintf(f, sizeof f, "{\"to\": \"%s\", \"template\": \"welcome\"}", email);
  mq_test_sleep_ms(1000);
  int welcome = (int)(mq_test_count(NULL, s2.db, "deliveries", f) + mq_test_count(NULL, srv.db, "deliveries", f));
  total = mq_test_mail_ids(email, &distinct);
  print_message("mailpit holds %d messages for the buyer, %d distinct Message-IDs (%d welcome)\n", total, distinct,
                welcome);
  assert_int_equal(distinct, BURST + welcome);
  assert_true(total == BURST + welcome || total == BURST + welcome + 1);
  mq_test_proc_stop(&n2, SIGTERM, 20000);
  mq_client_destroy(cl);
  cl = saved;
  free(buyer);
  free(owner);
  free(organizer);
  mq_test_proc_stop(&s2, SIGTERM, 20000);
  mq_test_drop_db(NULL, s2.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_links_arrive_and_work), cmocka_unit_test(test_values_are_inert_in_html),
      cmocka_unit_test(test_mail_waits_while_smtp_is_away), cmocka_unit_test(test_password_change_and_booking_mails),
      cmocka_unit_test(test_payment_mails), cmocka_unit_test(test_holders_told_of_changes_and_reminded),
      /* before the burst: a notifier it starts reads the last minute of the bus, which must not hold 1,000 more
       * events for it to wade through while its retries are counted */
      cmocka_unit_test(test_unopenable_token_is_dead_lettered_at_once),
      cmocka_unit_test(test_sigkill_during_a_burst_of_confirmations),
      cmocka_unit_test(test_refused_for_good_is_recorded), /* last: it stops the shared notifier */
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
