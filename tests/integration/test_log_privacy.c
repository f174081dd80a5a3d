/*
 * test_log_privacy.c — the logs of the server and of the consumers never
 * contain passwords, tokens, e-mail addresses or names (DESIGN.md §7),
 * even at debug level with every call logged: the identity flows run
 * against a server, marquee-audit and marquee-notifier whose stderr is
 * captured, the notifier mails the reset link, and then every log is
 * searched for each secret and each piece of personal data.
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

#include "harness.h"
#include "marquee/identity/v1/identity.mq-client.h"

static void test_no_secrets_in_logs(void **state) {
  (void)state;
  char log_path[96], log_kv[128];
  snprintf(log_path, sizeof log_path, "/tmp/mq-logs-%d.jsonl", (int)getpid());
  snprintf(log_kv, sizeof log_kv, "MARQUEE_TEST_STDERR=%s", log_path);
  const char *env[] = {"MARQUEE_LOG_LEVEL=debug",
                       "MARQUEE_ACCESS_LOG=all",
                       "MARQUEE_ARGON2_MEMORY_KIB=1024",
                       "MARQUEE_ARGON2_ITERATIONS=1",
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
  free(log);
  unlink(log_path);
  mq_test_drop_db(NULL, srv.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_secrets_in_logs)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
