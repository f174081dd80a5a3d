/*
 * test_log_privacy.c — the logs of the server and of the consumers never
 * contain passwords, tokens, e-mail addresses or names (DESIGN.md §7),
 * even at debug level with every call logged: the identity flows run
 * against a server, marquee-audit and marquee-notifier whose stderr is
 * captured, the notifier mails the reset link, the user pays for a ticket
 * through Stripe (stripe-mock) and a signed webhook (and a forged one)
 * arrives, and then every log is searched for each secret and each piece of
 * personal data — the gateway's API key and webhook secret and the
 * payment's client secret included.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "core/mq_principal.h"
#include "fixtures.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "marquee/payments/v1/payments.mq-client.h"

#define STRIPE_KEY "sk_test_LogPrivacy5f1c2b7e9a"
#define STRIPE_WHSEC "whsec_logprivacy_8d3e6a1f4c"

/* Pays for a paid ticket as `token` through Stripe and delivers the signed
 * success webhook (and one forged); the client secret into `secret`. */
static void pay_with_stripe(mq_client_t *cl, const mq_test_proc_t *srv, const char *token, char *secret, size_t n) {
  char *organizer = mq_test_token("00000000-0000-4000-8000-0000000e0001", MQ_ROLE_ORGANIZER);
  char org[40];
  mq_fx_org(cl, organizer, "logpriv", org);
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.price_minor = 1500, .capacity = 5}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(cl, organizer, org, &o, &ev);
  free(organizer);
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = ev.tt[0];
  item.quantity = 1;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = ev.event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t oo = {.bearer_token = token};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err = {0};
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(cl, &hq, &h, &oo, &err), MQ_OK);
  Marquee__Payments__V1__CreatePaymentRequest pq = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  pq.hold_id = h->hold_id;
  pq.amount = h->total;
  Marquee__Payments__V1__Payment *p = NULL;
  assert_int_equal(marquee__payments__v1__payment_service__create_payment__call(cl, &pq, &p, &oo, &err), MQ_OK);
  snprintf(secret, n, "%s", p->client_secret);
  assert_true(strlen(secret) > 10);
  char body[1024];
  int64_t t = (int64_t)time(NULL);
  snprintf(body, sizeof body,
           "{\"id\":\"evt_lp_%d\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"%s\","
           "\"object\":\"payment_intent\",\"status\":\"succeeded\",\"amount\":1500,\"amount_received\":1500,"
           "\"currency\":\"eur\",\"metadata\":{\"payment_id\":\"%s\"}}}}",
           (int)getpid(), p->gateway_reference, p->payment_id);
  char signed_payload[1100];
  int sn = snprintf(signed_payload, sizeof signed_payload, "%" PRId64 ".%s", t, body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  HMAC(EVP_sha256(), STRIPE_WHSEC, (int)strlen(STRIPE_WHSEC), (unsigned char *)signed_payload, (size_t)sn, mac, &ml);
  char header[300];
  int hn = snprintf(header, sizeof header, "Stripe-Signature: t=%" PRId64 ",v1=", t);
  for (unsigned i = 0; i < ml; i++) hn += snprintf(header + hn, sizeof header - (size_t)hn, "%02x", mac[i]);
  int st = 0;
  char *reply = mq_test_http_post(srv->http, "/webhooks/stripe", "Stripe-Signature: t=1,v1=00", body, &st);
  free(reply);
  assert_int_equal(st, 400);
  reply = mq_test_http_post(srv->http, "/webhooks/stripe", header, body, &st);
  free(reply);
  assert_int_equal(st, 200);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

static void test_no_secrets_in_logs(void **state) {
  (void)state;
  char log_path[96], log_kv[128];
  snprintf(log_path, sizeof log_path, "/tmp/mq-logs-%d.jsonl", (int)getpid());
  snprintf(log_kv, sizeof log_kv, "MARQUEE_TEST_STDERR=%s", log_path);
  char stripe_api[160];
  snprintf(stripe_api, sizeof stripe_api, "MARQUEE_STRIPE_API_BASE=%s", mq_test_stripe());
  const char *env[] = {"MARQUEE_LOG_LEVEL=debug",
                       "MARQUEE_ACCESS_LOG=all",
                       "MARQUEE_ARGON2_MEMORY_KIB=1024",
                       "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_STRIPE_SECRET_KEY=" STRIPE_KEY,
                       "MARQUEE_STRIPE_WEBHOOK_SECRET=" STRIPE_WHSEC,
                       stripe_api,
                       log_kv,
                       NULL};
  mq_test_proc_t srv, audit, notifier;
  assert_int_equal(mq_test_server_start(&srv, NULL, env), 0);
  char audit_path[96], audit_kv[128], notifier_path[96], notifier_kv[128];
  snprintf(audit_path, sizeof audit_path, "/tmp/mq-logs-audit-%d.jsonl", (int)getpid());
  snprintf(audit_kv, sizeof audit_kv, "MARQUEE_TEST_STDERR=%s", audit_path);
  snprintf(notifier_path, sizeof notifier_path, "/tmp/mq-logs-notifier-%d.jsonl", (int)getpid());
  snprintf(notifier_kv, sizeof notifier_kv, "MARQUEE_TEST_STDERR=%s", notifier_path);
  const char *audit_env[] = {"MARQUEE_LOG_LEVEL=debug", audit_kv, NULL};
  const char *notifier_env[] = {"MARQUEE_LOG_LEVEL=debug", notifier_kv, NULL};
  assert_int_equal(mq_test_audit_start(&audit, srv.db, audit_env), 0);
  assert_int_equal(mq_test_notifier_start(&notifier, srv.db, notifier_env), 0);
  mq_client_t *cl = mq_test_client(&srv);
  char email[96];
  snprintf(email, sizeof email, "secret.person.%d@example.com", (int)getpid());
  const char *password = "my very secret passphrase";
  mq_error_t err;

  Marquee__Identity__V1__SignUpRequest su = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  su.email = email;
  su.password = (char *)password;
  su.display_name = (char *)"Private Person";
  Marquee__Identity__V1__AuthResponse *a = NULL;
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(cl, &su, &a, NULL, &err), MQ_OK);
  char access[1024], refresh[64];
  snprintf(access, sizeof access, "%s", a->tokens->access_token);
  snprintf(refresh, sizeof refresh, "%s", a->tokens->refresh_token);
  marquee__identity__v1__auth_response__free_unpacked(a, NULL);

  Marquee__Identity__V1__SignInRequest si = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  si.email = email;
  si.password = (char *)"my very wrong passphrase";
  assert_int_equal(marquee__identity__v1__account_service__sign_in__call(cl, &si, &a, NULL, &err), MQ_UNAUTHENTICATED);
  Marquee__Identity__V1__RefreshTokenRequest rt = MARQUEE__IDENTITY__V1__REFRESH_TOKEN_REQUEST__INIT;
  rt.refresh_token = refresh;
  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(marquee__identity__v1__account_service__refresh_token__call(cl, &rt, &p, NULL, &err), MQ_OK);
  char refresh2[64];
  snprintf(refresh2, sizeof refresh2, "%s", p->refresh_token);
  marquee__identity__v1__token_pair__free_unpacked(p, NULL);
  assert_int_equal(marquee__identity__v1__account_service__refresh_token__call(cl, &rt, &p, NULL, &err),
                   MQ_UNAUTHENTICATED); /* reuse: logged as an error */
  Marquee__Identity__V1__RequestPasswordResetRequest rr = MARQUEE__IDENTITY__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
  rr.email = email;
  Marquee__Identity__V1__RequestPasswordResetResponse *rrr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__request_password_reset__call(cl, &rr, &rrr, NULL, &err),
                   MQ_OK);
  marquee__identity__v1__request_password_reset_response__free_unpacked(rrr, NULL);
  Marquee__Identity__V1__GetMeRequest gm = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  Marquee__Identity__V1__User *me = NULL;
  mq_call_opts_t o = {.bearer_token = access};
  assert_int_equal(marquee__identity__v1__account_service__get_me__call(cl, &gm, &me, &o, &err), MQ_OK);
  marquee__identity__v1__user__free_unpacked(me, NULL);

  /* the reset link the notifier mailed: its token must be in no log */
  char *text = NULL;
  assert_int_equal(mq_test_mail_wait(email, 2, 60000, NULL, &text, NULL), 2); /* welcome, reset */
  const char *t = text ? strstr(text, "?token=") : NULL;
  assert_non_null(t);
  char reset_token[96];
  snprintf(reset_token, sizeof reset_token, "%.*s",
           (int)strspn(t + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), t + 7);
  free(text);
  assert_true(strlen(reset_token) > 40);

  char client_secret[256];
  pay_with_stripe(cl, &srv, access, client_secret, sizeof client_secret);

  mq_client_destroy(cl);
  assert_int_equal(mq_test_proc_stop(&notifier, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  const char *consumer_logs[] = {notifier_path, audit_path};
  for (int i = 0; i < 2; i++) {
    char *clog = mq_test_slurp(consumer_logs[i]);
    assert_non_null(clog);
    if (i == 0) assert_non_null(strstr(clog, "\"event\":\"notifier.sent\"")); /* the log is real */
    assert_null(strstr(clog, email));
    assert_null(strstr(clog, "Private Person"));
    assert_null(strstr(clog, reset_token));
    assert_null(strstr(clog, password));
    assert_null(strstr(clog, client_secret));
    free(clog);
    unlink(consumer_logs[i]);
  }
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0); /* flushes the log */
  char *log = mq_test_slurp(log_path);
  assert_non_null(log);
  /* the log is real: every call was logged */
  assert_non_null(strstr(log, "\"method\":\"/marquee.identity.v1.AccountService/SignIn\""));
  assert_non_null(strstr(log, "\"method\":\"/marquee.identity.v1.AccountService/RefreshToken\""));
  /* and holds none of the secrets */
  assert_null(strstr(log, password));
  assert_null(strstr(log, "my very wrong passphrase"));
  assert_null(strstr(log, refresh));
  assert_null(strstr(log, refresh2));
  assert_null(strstr(log, access));
  assert_null(strstr(log, strchr(access, '.') + 1)); /* not even the claims part */
  assert_null(strstr(log, email));
  assert_null(strstr(log, reset_token));
  /* the payment went through, and no gateway secret is in the log */
  assert_non_null(strstr(log, "\"method\":\"/marquee.payments.v1.PaymentService/CreatePayment\""));
  assert_non_null(strstr(log, "payments.webhook_refused"));
  assert_null(strstr(log, STRIPE_KEY));
  assert_null(strstr(log, STRIPE_WHSEC));
  assert_null(strstr(log, client_secret));
  free(log);
  unlink(log_path);
  mq_test_drop_db(NULL, srv.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_secrets_in_logs)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
