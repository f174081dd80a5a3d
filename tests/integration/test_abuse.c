/*
 * test_abuse.c — rate limits and lockout of the identity service on the real
 * stack, with tight limits so the test is quick: an account locks after its
 * failed sign-ins (even the right password is refused while locked, and an
 * unknown e-mail locks the same way, so lockout reveals nothing), sign-ups
 * and reset requests are limited, and each refusal is RESOURCE_EXHAUSTED
 * with a `retry-after-ms` hint.
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

#define PASSWORD "correct horse battery staple"

static mq_test_proc_t srv;
static mq_client_t *cl;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_ARGON2_MEMORY_KIB=1024", "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_SIGNIN_FAILURE_LIMIT=3", "MARQUEE_SIGNUP_ADDRESS_LIMIT=4",
                       "MARQUEE_RESET_ACCOUNT_LIMIT=2",  NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  cl = mq_test_client(&srv);
  return cl ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  int rc = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return rc == 0 ? 0 : -1;
}

static mq_code_t sign_up(const char *email, mq_error_t *err) {
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = (char *)email;
  req.password = (char *)PASSWORD;
  req.display_name = (char *)"Limited";
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_code_t rc = marquee__identity__v1__account_service__sign_up__call(cl, &req, &r, NULL, err);
  if (r) marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t sign_in(const char *email, const char *pw, mq_error_t *err) {
  Marquee__Identity__V1__SignInRequest req = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  req.email = (char *)email;
  req.password = (char *)pw;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_code_t rc = marquee__identity__v1__account_service__sign_in__call(cl, &req, &r, NULL, err);
  if (r) marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return rc;
}

static void test_signin_lockout(void **state) {
  (void)state;
  char email[96];
  snprintf(email, sizeof email, "lock.%d@example.com", (int)getpid());
  mq_error_t err;
  assert_int_equal(sign_up(email, &err), MQ_OK);
  assert_int_equal(sign_in(email, PASSWORD, &err), MQ_OK);
  for (int i = 0; i < 3; i++) assert_int_equal(sign_in(email, "a wrong password!", &err), MQ_UNAUTHENTICATED);
  /* locked: even the right password is refused, with a hint */
  assert_int_equal(sign_in(email, PASSWORD, &err), MQ_RESOURCE_EXHAUSTED);
  assert_true(err.retry_after_ms > 0 && err.retry_after_ms <= 30000);
  assert_non_null(strstr(err.message, "retry in"));

  /* an unknown e-mail locks exactly the same way */
  char ghost[96];
  snprintf(ghost, sizeof ghost, "ghost.%d@example.com", (int)getpid());
  for (int i = 0; i < 3; i++) assert_int_equal(sign_in(ghost, "a wrong password!", &err), MQ_UNAUTHENTICATED);
  assert_int_equal(sign_in(ghost, PASSWORD, &err), MQ_RESOURCE_EXHAUSTED);
  assert_true(err.retry_after_ms > 0);
}

static void test_signup_and_reset_limits(void **state) {
  (void)state;
  mq_error_t err;
  /* one sign-up was spent by the lockout test; the limit is 4 per address */
  int ok = 0, limited = 0;
  for (int i = 0; i < 5; i++) {
    char email[96];
    snprintf(email, sizeof email, "many.%d.%d@example.com", (int)getpid(), i);
    mq_code_t rc = sign_up(email, &err);
    ok += rc == MQ_OK;
    limited += rc == MQ_RESOURCE_EXHAUSTED;
  }
  assert_int_equal(ok, 3);
  assert_int_equal(limited, 2);
  assert_true(err.retry_after_ms > 0);

  Marquee__Identity__V1__RequestPasswordResetRequest q = MARQUEE__IDENTITY__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
  q.email = (char *)"reset.limit@example.com";
  Marquee__Identity__V1__RequestPasswordResetResponse *r = NULL;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(marquee__identity__v1__account_service__request_password_reset__call(cl, &q, &r, NULL, &err),
                     MQ_OK);
    marquee__identity__v1__request_password_reset_response__free_unpacked(r, NULL);
  }
  assert_int_equal(marquee__identity__v1__account_service__request_password_reset__call(cl, &q, &r, NULL, &err),
                   MQ_RESOURCE_EXHAUSTED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signin_lockout),
      cmocka_unit_test(test_signup_and_reset_limits),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
