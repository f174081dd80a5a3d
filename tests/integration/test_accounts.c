/*
 * test_accounts.c — marquee.identity.v1.AccountService end to end on the
 * real stack: sign-up (validation naming fields, duplicate and racing
 * e-mails), sign-in (one answer for unknown e-mail and wrong password),
 * refresh rotation and reuse detection revoking the family, sign-out, sign
 * out everywhere, profile updates with a field mask, password change, and
 * the UserRegistered event reaching the audit log through Kafka.
 * The server runs with cheap Argon2id parameters (tests only).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define PASSWORD "correct horse battery staple"

static mq_test_proc_t srv, audit;
static mq_client_t *cl;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_ARGON2_MEMORY_KIB=1024", "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_SIGNUP_ADDRESS_LIMIT=1000", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  return cl ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return a == 0 && s == 0 ? 0 : -1;
}

static void unique_email(char *out, size_t n, const char *tag) {
  static int k;
  snprintf(out, n, "%s.%d.%d@example.com", tag, (int)getpid(), ++k);
}

static mq_code_t sign_up(const char *email, const char *password, const char *name,
                         Marquee__Identity__V1__AuthResponse **out, mq_error_t *err) {
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = (char *)email;
  req.password = (char *)password;
  req.display_name = (char *)name;
  return marquee__identity__v1__account_service__sign_up__call(cl, &req, out, NULL, err);
}

static mq_code_t sign_in(const char *email, const char *password, Marquee__Identity__V1__AuthResponse **out,
                         mq_error_t *err) {
  Marquee__Identity__V1__SignInRequest req = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  req.email = (char *)email;
  req.password = (char *)password;
  return marquee__identity__v1__account_service__sign_in__call(cl, &req, out, NULL, err);
}

static mq_code_t refresh(const char *token, Marquee__Identity__V1__TokenPair **out, mq_error_t *err) {
  Marquee__Identity__V1__RefreshTokenRequest req = MARQUEE__IDENTITY__V1__REFRESH_TOKEN_REQUEST__INIT;
  req.refresh_token = (char *)token;
  return marquee__identity__v1__account_service__refresh_token__call(cl, &req, out, NULL, err);
}

static mq_code_t get_me(const char *access, Marquee__Identity__V1__User **out, mq_error_t *err) {
  Marquee__Identity__V1__GetMeRequest req = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  mq_call_opts_t o = {.bearer_token = access};
  return marquee__identity__v1__account_service__get_me__call(cl, &req, out, &o, err);
}

static void test_sign_up_sign_in_get_me(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "Ada");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Ada Lovelace", &r, &err), MQ_OK);
  assert_string_equal(r->user->email, email);
  assert_string_equal(r->user->display_name, "Ada Lovelace");
  assert_string_equal(r->user->locale, "en");
  assert_string_equal(r->user->currency, "EUR");
  assert_int_equal(r->user->n_roles, 1);
  assert_int_equal(r->user->roles[0], MARQUEE__IDENTITY__V1__ROLE__ROLE_ATTENDEE);
  assert_int_equal(r->user->status, MARQUEE__IDENTITY__V1__USER_STATUS__USER_STATUS_ACTIVE);
  assert_string_equal(r->tokens->token_type, "Bearer");
  assert_int_equal(strncmp(r->tokens->refresh_token, "mqr_", 4), 0);
  char uid[64];
  snprintf(uid, sizeof uid, "%s", r->user->user_id);

  Marquee__Identity__V1__User *me = NULL;
  assert_int_equal(get_me(r->tokens->access_token, &me, &err), MQ_OK);
  assert_string_equal(me->user_id, uid);
  marquee__identity__v1__user__free_unpacked(me, NULL);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  /* sign in: the e-mail matches case-insensitively */
  for (char *p = email; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  assert_int_equal(sign_in(email, PASSWORD, &r, &err), MQ_OK);
  assert_string_equal(r->user->user_id, uid);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  /* one answer for a wrong password and an unknown e-mail */
  assert_int_equal(sign_in(email, "not the password at all", &r, &err), MQ_UNAUTHENTICATED);
  char msg[256];
  snprintf(msg, sizeof msg, "%s", err.message);
  assert_int_equal(sign_in("nobody.here@example.com", PASSWORD, &r, &err), MQ_UNAUTHENTICATED);
  assert_string_equal(err.message, msg);

  /* the event reached Kafka and the audit log */
  char filter[160];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"users.UserRegistered\"}", uid);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) != 1 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", filter), 1);
  /* only the hash is stored */
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\", \"password_hash\": {\"$regex\": \"^\\\\$argon2id\\\\$\"}}", uid);
  assert_int_equal(mq_test_count(NULL, srv.db, "users", filter), 1);
}

static void test_sign_up_validation(void **state) {
  (void)state;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  char email[96];
  unique_email(email, sizeof email, "val");
  static const struct {
    const char *email, *password, *name, *field;
  } bad[] = {
      {"not-an-email", PASSWORD, "Name", "email"},
      {"a@b", PASSWORD, "Name", "email"},
      {NULL, "short", "Name", "password"},
      {NULL, "password123", "Name", "password"},
      {NULL, "aaaaaaaaaaaaaaaa", "Name", "password"},
      {NULL, PASSWORD, "", "display_name"},
      {NULL, PASSWORD, "bad \xC0\xAF utf8", "display_name"},
      {NULL, PASSWORD, " padded", "display_name"},
      {NULL, PASSWORD,
       "A name that is far too long for anyone to type into a form because it goes on and on and on forever more",
       "display_name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mq_code_t rc = sign_up(bad[i].email ? bad[i].email : email, bad[i].password, bad[i].name, &r, &err);
    assert_int_equal(rc, MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, bad[i].field);
  }
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = email;
  req.password = (char *)PASSWORD;
  req.display_name = (char *)"Name";
  req.currency = (char *)"ABC";
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(cl, &req, &r, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "currency");
  req.currency = NULL;
  req.time_zone = (char *)"Mars/Olympus";
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(cl, &req, &r, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "time_zone");
}

typedef struct {
  const char *email;
  mq_code_t rc;
} racer_t;

static void *race_sign_up(void *arg) {
  racer_t *r = arg;
  Marquee__Identity__V1__AuthResponse *resp = NULL;
  mq_error_t err;
  r->rc = sign_up(r->email, PASSWORD, "Racer", &resp, &err);
  if (resp) marquee__identity__v1__auth_response__free_unpacked(resp, NULL);
  return NULL;
}

static void test_duplicate_and_racing_email(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "race");
  enum { N = 8 };
  racer_t r[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    r[i] = (racer_t){email, MQ_UNKNOWN};
    pthread_create(&th[i], NULL, race_sign_up, &r[i]);
  }
  int ok = 0, exists = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    ok += r[i].rc == MQ_OK;
    exists += r[i].rc == MQ_ALREADY_EXISTS;
  }
  assert_int_equal(ok, 1); /* exactly one wins */
  assert_int_equal(exists, N - 1);
  /* later, in another case */
  for (char *p = email; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  Marquee__Identity__V1__AuthResponse *resp = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Again", &resp, &err), MQ_ALREADY_EXISTS);
  assert_string_equal(err.field, "email");
}

static void test_refresh_rotation_and_reuse(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "rot");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Rotor", &r, &err), MQ_OK);
  char first[64], second[64];
  snprintf(first, sizeof first, "%s", r->tokens->refresh_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(refresh(first, &p, &err), MQ_OK);
  snprintf(second, sizeof second, "%s", p->refresh_token);
  assert_string_not_equal(first, second);
  Marquee__Identity__V1__User *me = NULL;
  assert_int_equal(get_me(p->access_token, &me, &err), MQ_OK); /* the new access token works */
  marquee__identity__v1__user__free_unpacked(me, NULL);
  marquee__identity__v1__token_pair__free_unpacked(p, NULL);

  /* the first token again: reuse → the whole family is revoked */
  assert_int_equal(refresh(first, &p, &err), MQ_UNAUTHENTICATED);
  assert_string_equal(err.field, "refresh_token");
  assert_int_equal(refresh(second, &p, &err), MQ_UNAUTHENTICATED);
  /* garbage */
  assert_int_equal(refresh("mqr_not-a-real-token", &p, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(refresh("", &p, &err), MQ_UNAUTHENTICATED);
}

static void test_sign_out_and_everywhere(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "out");
  Marquee__Identity__V1__AuthResponse *a = NULL, *b = NULL, *c = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Leaver", &a, &err), MQ_OK);
  assert_int_equal(sign_in(email, PASSWORD, &b, &err), MQ_OK);
  assert_int_equal(sign_in(email, PASSWORD, &c, &err), MQ_OK);

  /* sign out ends that session only */
  Marquee__Identity__V1__SignOutRequest so = MARQUEE__IDENTITY__V1__SIGN_OUT_REQUEST__INIT;
  so.refresh_token = a->tokens->refresh_token;
  Marquee__Identity__V1__SignOutResponse *sor = NULL;
  assert_int_equal(marquee__identity__v1__account_service__sign_out__call(cl, &so, &sor, NULL, &err), MQ_OK);
  marquee__identity__v1__sign_out_response__free_unpacked(sor, NULL);
  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(refresh(a->tokens->refresh_token, &p, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(refresh(b->tokens->refresh_token, &p, &err), MQ_OK);
  char b2[64];
  snprintf(b2, sizeof b2, "%s", p->refresh_token);
  marquee__identity__v1__token_pair__free_unpacked(p, NULL);

  /* sign out everywhere (needs an access token) ends all of them */
  Marquee__Identity__V1__SignOutEverywhereRequest se = MARQUEE__IDENTITY__V1__SIGN_OUT_EVERYWHERE_REQUEST__INIT;
  assert_int_equal(marquee__identity__v1__account_service__sign_out_everywhere__call(cl, &se, &sor, NULL, &err),
                   MQ_UNAUTHENTICATED);
  mq_call_opts_t o = {.bearer_token = c->tokens->access_token};
  assert_int_equal(marquee__identity__v1__account_service__sign_out_everywhere__call(cl, &se, &sor, &o, &err), MQ_OK);
  marquee__identity__v1__sign_out_response__free_unpacked(sor, NULL);
  assert_int_equal(refresh(b2, &p, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(refresh(c->tokens->refresh_token, &p, &err), MQ_UNAUTHENTICATED);
  marquee__identity__v1__auth_response__free_unpacked(a, NULL);
  marquee__identity__v1__auth_response__free_unpacked(b, NULL);
  marquee__identity__v1__auth_response__free_unpacked(c, NULL);
}

static void test_update_me_and_change_password(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "upd");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Before", &r, &err), MQ_OK);
  mq_call_opts_t o = {.bearer_token = r->tokens->access_token};

  Marquee__Identity__V1__User u = MARQUEE__IDENTITY__V1__USER__INIT;
  u.display_name = (char *)"After";
  u.locale = (char *)"pt-BR";
  u.time_zone = (char *)"America/Sao_Paulo";
  u.phone = (char *)"+5511912345678";
  char *paths[] = {(char *)"display_name", (char *)"locale", (char *)"time_zone", (char *)"phone"};
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = paths;
  mask.n_paths = 4;
  Marquee__Identity__V1__UpdateMeRequest ur = MARQUEE__IDENTITY__V1__UPDATE_ME_REQUEST__INIT;
  ur.user = &u;
  ur.update_mask = &mask;
  Marquee__Identity__V1__User *me = NULL;
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(cl, &ur, &me, &o, &err), MQ_OK);
  assert_string_equal(me->display_name, "After");
  assert_string_equal(me->locale, "pt-BR");
  assert_string_equal(me->time_zone, "America/Sao_Paulo");
  assert_string_equal(me->phone, "+5511912345678");
  assert_string_equal(me->currency, "EUR"); /* not in the mask: unchanged */
  marquee__identity__v1__user__free_unpacked(me, NULL);

  char *bad_path[] = {(char *)"email"};
  mask.paths = bad_path;
  mask.n_paths = 1;
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(cl, &ur, &me, &o, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  char *tz_path[] = {(char *)"time_zone"};
  mask.paths = tz_path;
  u.time_zone = (char *)"Not/AZone";
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(cl, &ur, &me, &o, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "user.time_zone");
  /* every bad field at once, each named as the request names it; nothing is written */
  char *three[] = {(char *)"time_zone", (char *)"phone", (char *)"email"};
  mask.paths = three;
  mask.n_paths = 3;
  u.phone = (char *)"0612";
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(cl, &ur, &me, &o, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 3);
  assert_string_equal(err.violations[0].field, "user.time_zone");
  assert_string_equal(err.violations[1].field, "user.phone");
  assert_string_equal(err.violations[2].field, "update_mask");
  Marquee__Identity__V1__GetMeRequest gm = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  assert_int_equal(marquee__identity__v1__account_service__get_me__call(cl, &gm, &me, &o, &err), MQ_OK);
  assert_string_equal(me->phone, "+5511912345678");
  marquee__identity__v1__user__free_unpacked(me, NULL);
  mask.paths = tz_path;
  mask.n_paths = 0;
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(cl, &ur, &me, &o, &err),
                   MQ_INVALID_ARGUMENT);

  /* change password */
  Marquee__Identity__V1__ChangePasswordRequest cp = MARQUEE__IDENTITY__V1__CHANGE_PASSWORD_REQUEST__INIT;
  Marquee__Identity__V1__ChangePasswordResponse *cpr = NULL;
  cp.current_password = (char *)"wrong current password";
  cp.new_password = (char *)"a brand new passphrase";
  assert_int_equal(marquee__identity__v1__account_service__change_password__call(cl, &cp, &cpr, &o, &err),
                   MQ_UNAUTHENTICATED);
  assert_string_equal(err.field, "current_password");
  cp.current_password = (char *)PASSWORD;
  cp.new_password = (char *)"1234567890";
  assert_int_equal(marquee__identity__v1__account_service__change_password__call(cl, &cp, &cpr, &o, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "new_password");
  cp.new_password = (char *)"a brand new passphrase";
  assert_int_equal(marquee__identity__v1__account_service__change_password__call(cl, &cp, &cpr, &o, &err), MQ_OK);
  assert_non_null(cpr->tokens);
  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(refresh(r->tokens->refresh_token, &p, &err), MQ_UNAUTHENTICATED); /* old session ended */
  assert_int_equal(refresh(cpr->tokens->refresh_token, &p, &err), MQ_OK);            /* the new one lives */
  marquee__identity__v1__token_pair__free_unpacked(p, NULL);
  marquee__identity__v1__change_password_response__free_unpacked(cpr, NULL);
  Marquee__Identity__V1__AuthResponse *a = NULL;
  assert_int_equal(sign_in(email, PASSWORD, &a, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(sign_in(email, "a brand new passphrase", &a, &err), MQ_OK);
  marquee__identity__v1__auth_response__free_unpacked(a, NULL);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
}

static void test_protected_methods_refuse_bad_tokens(void **state) {
  (void)state;
  Marquee__Identity__V1__User *me = NULL;
  mq_error_t err;
  assert_int_equal(get_me(NULL, &me, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(get_me("garbage", &me, &err), MQ_UNAUTHENTICATED);
  char *tok = mq_test_token("no-such-user", MQ_ROLE_ATTENDEE);
  assert_int_equal(get_me(tok, &me, &err), MQ_NOT_FOUND); /* valid token, deleted account */
  free(tok);
}

/* The token sealed in the newest event of `type` about `uid`, opened as the
 * notifier will: from the event that went through Kafka (here via the audit
 * log, which keeps each event's envelope), with the notifier's key. */
static bool token_from_event(const char *uid, const char *type, char *token, size_t n) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"%s\"}", uid, type);
  void *data = NULL;
  size_t len = 0;
  int64_t until = mq_test_now_ms() + 60000;
  while (!mq_test_find_binary(srv.db, "audit_log", filter, "envelope", &data, &len) && mq_test_now_ms() < until)
    mq_test_sleep_ms(200);
  if (!data) return false;
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  free(data);
  if (!ev) return false;
  const Marquee__Events__V1__SealedSecret *st =
      ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED
          ? ev->email_verification_requested->sealed_token
      : ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED
          ? ev->password_reset_requested->sealed_token
          : NULL;
  token[0] = '\0';
  if (st) mq_test_unseal(st->key_id, st->box.data, st->box.len, token, n); /* as the notifier will */
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
  return token[0] != '\0';
}

static void test_email_verification(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "verify");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Verifier", &r, &err), MQ_OK);
  assert_false(r->user->email_verified);
  mq_call_opts_t o = {.bearer_token = r->tokens->access_token};
  Marquee__Identity__V1__RequestEmailVerificationRequest rq =
      MARQUEE__IDENTITY__V1__REQUEST_EMAIL_VERIFICATION_REQUEST__INIT;
  Marquee__Identity__V1__RequestEmailVerificationResponse *rr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__request_email_verification__call(cl, &rq, &rr, NULL, &err),
                   MQ_UNAUTHENTICATED);
  assert_int_equal(marquee__identity__v1__account_service__request_email_verification__call(cl, &rq, &rr, &o, &err),
                   MQ_OK);
  marquee__identity__v1__request_email_verification_response__free_unpacked(rr, NULL);
  char token[64];
  assert_true(token_from_event(r->user->user_id, "users.EmailVerificationRequested", token, sizeof token));
  assert_int_equal(strncmp(token, "mqv_", 4), 0);

  Marquee__Identity__V1__VerifyEmailRequest vq = MARQUEE__IDENTITY__V1__VERIFY_EMAIL_REQUEST__INIT;
  Marquee__Identity__V1__VerifyEmailResponse *vr = NULL;
  vq.token = (char *)"mqv_this-is-not-a-real-token-at-all-0123456789ab";
  assert_int_equal(marquee__identity__v1__account_service__verify_email__call(cl, &vq, &vr, NULL, &err),
                   MQ_FAILED_PRECONDITION);
  vq.token = token;
  assert_int_equal(marquee__identity__v1__account_service__verify_email__call(cl, &vq, &vr, NULL, &err), MQ_OK);
  assert_true(vr->user->email_verified);
  marquee__identity__v1__verify_email_response__free_unpacked(vr, NULL);
  /* single use */
  assert_int_equal(marquee__identity__v1__account_service__verify_email__call(cl, &vq, &vr, NULL, &err),
                   MQ_FAILED_PRECONDITION);
  assert_int_equal(marquee__identity__v1__account_service__request_email_verification__call(cl, &rq, &rr, &o, &err),
                   MQ_FAILED_PRECONDITION); /* already verified */
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
}

static mq_code_t request_reset(const char *email, mq_error_t *err) {
  Marquee__Identity__V1__RequestPasswordResetRequest q = MARQUEE__IDENTITY__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
  q.email = (char *)email;
  Marquee__Identity__V1__RequestPasswordResetResponse *r = NULL;
  mq_code_t rc = marquee__identity__v1__account_service__request_password_reset__call(cl, &q, &r, NULL, err);
  if (r) marquee__identity__v1__request_password_reset_response__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t reset_password(const char *token, const char *pw, mq_error_t *err) {
  Marquee__Identity__V1__ResetPasswordRequest q = MARQUEE__IDENTITY__V1__RESET_PASSWORD_REQUEST__INIT;
  q.token = (char *)token;
  q.new_password = (char *)pw;
  Marquee__Identity__V1__ResetPasswordResponse *r = NULL;
  mq_code_t rc = marquee__identity__v1__account_service__reset_password__call(cl, &q, &r, NULL, err);
  if (r) marquee__identity__v1__reset_password_response__free_unpacked(r, NULL);
  return rc;
}

static void test_password_reset(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "reset");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Forgetful", &r, &err), MQ_OK);
  char uid[64], old_refresh[64];
  snprintf(uid, sizeof uid, "%s", r->user->user_id);
  snprintf(old_refresh, sizeof old_refresh, "%s", r->tokens->refresh_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  /* the same answer with and without an account */
  assert_int_equal(request_reset("nobody.at.all@example.com", &err), MQ_OK);
  assert_int_equal(request_reset(email, &err), MQ_OK);
  assert_int_equal(request_reset("not an email", &err), MQ_INVALID_ARGUMENT);
  char token[64];
  assert_true(token_from_event(uid, "users.PasswordResetRequested", token, sizeof token));
  assert_int_equal(strncmp(token, "mqp_", 4), 0);

  /* a reset link is not a verification link */
  Marquee__Identity__V1__VerifyEmailRequest vq = MARQUEE__IDENTITY__V1__VERIFY_EMAIL_REQUEST__INIT;
  Marquee__Identity__V1__VerifyEmailResponse *vr = NULL;
  vq.token = token;
  assert_int_equal(marquee__identity__v1__account_service__verify_email__call(cl, &vq, &vr, NULL, &err),
                   MQ_FAILED_PRECONDITION);
  /* a refused password leaves the link usable */
  assert_int_equal(reset_password(token, "1234567890", &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "new_password");
  assert_int_equal(reset_password(token, "a fresh start at last", &err), MQ_OK);
  assert_int_equal(reset_password(token, "a second fresh start", &err), MQ_FAILED_PRECONDITION); /* used */
  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(refresh(old_refresh, &p, &err), MQ_UNAUTHENTICATED); /* sessions ended */
  assert_int_equal(sign_in(email, PASSWORD, &r, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(sign_in(email, "a fresh start at last", &r, &err), MQ_OK);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  /* an expired link */
  assert_int_equal(request_reset(email, &err), MQ_OK);
  mq_test_sleep_ms(50);
  char filter[128];
  snprintf(filter, sizeof filter, "{\"user_id\": \"%s\", \"purpose\": 2}", uid);
  assert_true(mq_test_update(srv.db, "account_tokens", filter, "{\"$set\": {\"expires_at\": {\"$date\": 1000}}}") >= 1);
  char token2[64];
  assert_true(token_from_event(uid, "users.PasswordResetRequested", token2, sizeof token2));
  assert_int_equal(reset_password(token2, "yet another passphrase", &err), MQ_FAILED_PRECONDITION);
}

static mq_code_t admin_call(int which, const char *token, const char *uid, Marquee__Identity__V1__User **out,
                            mq_error_t *err) {
  mq_call_opts_t o = {.bearer_token = token};
  if (which == 0) {
    Marquee__Identity__V1__SuspendUserRequest q = MARQUEE__IDENTITY__V1__SUSPEND_USER_REQUEST__INIT;
    q.user_id = (char *)uid;
    q.reason = (char *)"fraud report #42";
    return marquee__identity__v1__admin_service__suspend_user__call(cl, &q, out, &o, err);
  }
  if (which == 1) {
    Marquee__Identity__V1__ReinstateUserRequest q = MARQUEE__IDENTITY__V1__REINSTATE_USER_REQUEST__INIT;
    q.user_id = (char *)uid;
    return marquee__identity__v1__admin_service__reinstate_user__call(cl, &q, out, &o, err);
  }
  Marquee__Identity__V1__GetUserRequest q = MARQUEE__IDENTITY__V1__GET_USER_REQUEST__INIT;
  q.user_id = (char *)uid;
  return marquee__identity__v1__admin_service__get_user__call(cl, &q, out, &o, err);
}

static void test_admin_roles_suspend_reinstate(void **state) {
  (void)state;
  char email[96];
  unique_email(email, sizeof email, "adm");
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(sign_up(email, PASSWORD, "Managed", &r, &err), MQ_OK);
  char uid[64], refresh_tok[64], user_access[1024];
  snprintf(uid, sizeof uid, "%s", r->user->user_id);
  snprintf(refresh_tok, sizeof refresh_tok, "%s", r->tokens->refresh_token);
  snprintf(user_access, sizeof user_access, "%s", r->tokens->access_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  char *admin = mq_test_token("00000000-0000-4000-8000-000000000001", MQ_ROLE_ADMIN);
  Marquee__Identity__V1__User *u = NULL;

  /* who may call: admins only */
  assert_int_equal(admin_call(2, NULL, uid, &u, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(admin_call(2, user_access, uid, &u, &err), MQ_PERMISSION_DENIED);
  char *organizer = mq_test_token("org-1", MQ_ROLE_ORGANIZER);
  assert_int_equal(admin_call(0, organizer, uid, &u, &err), MQ_PERMISSION_DENIED);
  free(organizer);
  assert_int_equal(admin_call(2, admin, uid, &u, &err), MQ_OK);
  assert_string_equal(u->email, email);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  assert_int_equal(admin_call(2, admin, "7c1e9a40-0000-4000-8000-00000000dead", &u, &err), MQ_NOT_FOUND);
  assert_int_equal(admin_call(2, admin, "not-a-uuid", &u, &err), MQ_INVALID_ARGUMENT);

  /* roles: the next token carries them */
  Marquee__Identity__V1__SetUserRolesRequest sr = MARQUEE__IDENTITY__V1__SET_USER_ROLES_REQUEST__INIT;
  Marquee__Identity__V1__Role roles[] = {MARQUEE__IDENTITY__V1__ROLE__ROLE_ATTENDEE,
                                         MARQUEE__IDENTITY__V1__ROLE__ROLE_ORGANIZER};
  sr.user_id = uid;
  sr.roles = roles;
  sr.n_roles = 2;
  mq_call_opts_t ao = {.bearer_token = admin};
  assert_int_equal(marquee__identity__v1__admin_service__set_user_roles__call(cl, &sr, &u, &ao, &err), MQ_OK);
  assert_int_equal(u->n_roles, 2);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  Marquee__Identity__V1__Role bad[] = {(Marquee__Identity__V1__Role)42};
  sr.roles = bad;
  sr.n_roles = 1;
  assert_int_equal(marquee__identity__v1__admin_service__set_user_roles__call(cl, &sr, &u, &ao, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "roles");
  Marquee__Identity__V1__TokenPair *p = NULL;
  assert_int_equal(refresh(refresh_tok, &p, &err), MQ_OK);
  snprintf(refresh_tok, sizeof refresh_tok, "%s", p->refresh_token);
  assert_int_equal(get_me(p->access_token, &u, &err), MQ_OK);
  assert_int_equal(u->n_roles, 2);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  marquee__identity__v1__token_pair__free_unpacked(p, NULL);

  /* suspension: sign-in and refresh refused at once; reinstating restores sign-in */
  assert_int_equal(admin_call(0, admin, uid, &u, &err), MQ_OK);
  assert_int_equal(u->status, MARQUEE__IDENTITY__V1__USER_STATUS__USER_STATUS_SUSPENDED);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  assert_int_equal(admin_call(0, admin, uid, &u, &err), MQ_FAILED_PRECONDITION); /* already */
  assert_int_equal(refresh(refresh_tok, &p, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(sign_in(email, PASSWORD, &r, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(admin_call(1, admin, uid, &u, &err), MQ_OK);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  assert_int_equal(refresh(refresh_tok, &p, &err), MQ_UNAUTHENTICATED); /* suspension ended those sessions */
  assert_int_equal(sign_in(email, PASSWORD, &r, &err), MQ_OK);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);

  /* the audit trail names the administrator */
  char filter[200];
  snprintf(filter, sizeof filter,
           "{\"aggregate_id\": \"%s\", \"type\": \"users.UserSuspended\", \"actor\": "
           "\"00000000-0000-4000-8000-000000000001\"}",
           uid);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) != 1 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", filter), 1);
  free(admin);
}

static char *new_user(const char *tag, char *uid, size_t n, char *email, size_t en) {
  unique_email(email, en, tag);
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  if (sign_up(email, PASSWORD, tag, &r, &err) != MQ_OK) return NULL;
  snprintf(uid, n, "%s", r->user->user_id);
  char *tok = strdup(r->tokens->access_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return tok;
}

/* Invites `email` as `tok`, then accepts as `invitee` with the token the
 * notifier would e-mail (read from the event in the audit log). */
static mq_code_t add_member(const char *tok, const char *org, const char *email, Marquee__Identity__V1__MemberRole role,
                            const char *invitee, mq_error_t *err) {
  Marquee__Identity__V1__InviteMemberRequest q = MARQUEE__IDENTITY__V1__INVITE_MEMBER_REQUEST__INIT;
  q.organization_id = (char *)org;
  q.email = (char *)email;
  q.role = role;
  Marquee__Identity__V1__Invitation *inv = NULL;
  mq_call_opts_t o = {.bearer_token = tok};
  mq_code_t rc = marquee__identity__v1__organization_service__invite_member__call(cl, &q, &inv, &o, err);
  if (rc != MQ_OK || !invitee) {
    if (inv) marquee__identity__v1__invitation__free_unpacked(inv, NULL);
    return rc;
  }
  assert_string_equal(inv->email, email);
  assert_int_equal(inv->role, role);
  char token[96] = "";
  mq_test_invitation_token(srv.db, org, inv->invitation_id, token, sizeof token);
  marquee__identity__v1__invitation__free_unpacked(inv, NULL);
  assert_true(token[0]);
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = token;
  Marquee__Identity__V1__Member *m = NULL;
  mq_call_opts_t io = {.bearer_token = invitee};
  rc = marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &m, &io, err);
  if (m) marquee__identity__v1__member__free_unpacked(m, NULL);
  if (rc == MQ_OK) /* the token works once */
    assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &m, &io, err),
                     MQ_FAILED_PRECONDITION);
  return rc;
}

static mq_code_t get_org(const char *tok, const char *org, int *my_role, mq_error_t *err) {
  Marquee__Identity__V1__GetOrganizationRequest q = MARQUEE__IDENTITY__V1__GET_ORGANIZATION_REQUEST__INIT;
  q.organization_id = (char *)org;
  Marquee__Identity__V1__Organization *o = NULL;
  mq_call_opts_t co = {.bearer_token = tok};
  mq_code_t rc = marquee__identity__v1__organization_service__get_organization__call(cl, &q, &o, &co, err);
  if (o) {
    *my_role = o->my_role;
    marquee__identity__v1__organization__free_unpacked(o, NULL);
  }
  return rc;
}

static mq_code_t remove_member(const char *tok, const char *org, const char *uid, mq_error_t *err) {
  Marquee__Identity__V1__RemoveMemberRequest q = MARQUEE__IDENTITY__V1__REMOVE_MEMBER_REQUEST__INIT;
  q.organization_id = (char *)org;
  q.user_id = (char *)uid;
  Marquee__Identity__V1__RemoveMemberResponse *r = NULL;
  mq_call_opts_t o = {.bearer_token = tok};
  mq_code_t rc = marquee__identity__v1__organization_service__remove_member__call(cl, &q, &r, &o, err);
  if (r) marquee__identity__v1__remove_member_response__free_unpacked(r, NULL);
  return rc;
}

static void test_organizations_and_member_roles(void **state) {
  (void)state;
  char a_id[64], b_id[64], c_id[64], a_mail[96], b_mail[96], c_mail[96];
  char *a_att = new_user("alice", a_id, sizeof a_id, a_mail, sizeof a_mail);
  char *bob = new_user("bob", b_id, sizeof b_id, b_mail, sizeof b_mail);
  char *carol = new_user("carol", c_id, sizeof c_id, c_mail, sizeof c_mail);
  assert_non_null(a_att);
  char *alice = mq_test_token(a_id, MQ_ROLE_ORGANIZER); /* as if an admin had granted the role */
  mq_error_t err;

  Marquee__Identity__V1__CreateOrganizationRequest cq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "acme-%d", (int)getpid());
  cq.name = (char *)"Acme Events";
  cq.slug = slug;
  Marquee__Identity__V1__Organization *org = NULL;
  mq_call_opts_t ob = {.bearer_token = bob}, oa = {.bearer_token = alice};
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &cq, &org, &ob, &err),
                   MQ_PERMISSION_DENIED); /* attendees cannot create organizations */
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &cq, &org, &oa, &err),
                   MQ_OK);
  assert_int_equal(org->my_role, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_OWNER);
  char oid[64];
  snprintf(oid, sizeof oid, "%s", org->organization_id);
  marquee__identity__v1__organization__free_unpacked(org, NULL);
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &cq, &org, &oa, &err),
                   MQ_ALREADY_EXISTS);
  assert_string_equal(err.field, "slug");
  cq.slug = (char *)"Not A Slug!";
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &cq, &org, &oa, &err),
                   MQ_INVALID_ARGUMENT);
  cq.name = (char *)"";
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &cq, &org, &oa, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 2); /* both bad fields in one answer */
  assert_string_equal(err.violations[0].field, "name");
  assert_string_equal(err.violations[1].field, "slug");
  cq.name = (char *)"Acme Events";

  int role = 0;
  assert_int_equal(get_org(bob, oid, &role, &err), MQ_NOT_FOUND); /* outsiders do not learn it exists */
  assert_int_equal(add_member(alice, oid, b_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, bob, &err),
                   MQ_OK);
  /* a pending invitation to the same address */
  assert_int_equal(add_member(alice, oid, "pending.x@example.com",
                              MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, NULL, &err),
                   MQ_OK); /* an address without an account: the same answer as any other */
  assert_int_equal(add_member(alice, oid, "pending.x@example.com",
                              MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, NULL, &err),
                   MQ_ALREADY_EXISTS);
  /* accepting again as a member: ALREADY_EXISTS */
  assert_int_equal(add_member(alice, oid, b_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, bob, &err),
                   MQ_ALREADY_EXISTS);
  assert_int_equal(add_member(bob, oid, c_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_OWNER, carol, &err),
                   MQ_PERMISSION_DENIED); /* a manager cannot make owners */
  assert_int_equal(
      add_member(bob, oid, c_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF, carol, &err), MQ_OK);
  assert_int_equal(add_member(carol, oid, a_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, NULL, &err),
                   MQ_PERMISSION_DENIED); /* check-in staff cannot manage members */
  /* pending invitations: listed for managers, revocable */
  Marquee__Identity__V1__ListInvitationsRequest li = MARQUEE__IDENTITY__V1__LIST_INVITATIONS_REQUEST__INIT;
  li.organization_id = oid;
  Marquee__Identity__V1__ListInvitationsResponse *lir = NULL;
  mq_call_opts_t obob = {.bearer_token = bob}, ocar = {.bearer_token = carol};
  assert_int_equal(marquee__identity__v1__organization_service__list_invitations__call(cl, &li, &lir, &ocar, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__identity__v1__organization_service__list_invitations__call(cl, &li, &lir, &obob, &err),
                   MQ_OK);
  assert_int_equal(lir->n_invitations, 1);
  assert_string_equal(lir->invitations[0]->email, "pending.x@example.com");
  Marquee__Identity__V1__RevokeInvitationRequest rv = MARQUEE__IDENTITY__V1__REVOKE_INVITATION_REQUEST__INIT;
  rv.organization_id = oid;
  rv.invitation_id = lir->invitations[0]->invitation_id;
  Marquee__Identity__V1__RevokeInvitationResponse *rvr = NULL;
  assert_int_equal(marquee__identity__v1__organization_service__revoke_invitation__call(cl, &rv, &rvr, &obob, &err),
                   MQ_OK);
  marquee__identity__v1__revoke_invitation_response__free_unpacked(rvr, NULL);
  assert_int_equal(marquee__identity__v1__organization_service__revoke_invitation__call(cl, &rv, &rvr, &obob, &err),
                   MQ_NOT_FOUND);
  marquee__identity__v1__list_invitations_response__free_unpacked(lir, NULL);
  /* garbage tokens */
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = (char *)"mqi_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  Marquee__Identity__V1__Member *mm = NULL;
  assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &mm, &obob, &err),
                   MQ_FAILED_PRECONDITION);
  aq.token = (char *)"{\"$gt\": \"\"}";
  assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &mm, &obob, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(get_org(carol, oid, &role, &err), MQ_OK);
  assert_int_equal(role, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF);

  Marquee__Identity__V1__ListMembersRequest lq = MARQUEE__IDENTITY__V1__LIST_MEMBERS_REQUEST__INIT;
  lq.organization_id = oid;
  Marquee__Identity__V1__ListMembersResponse *lr = NULL;
  mq_call_opts_t oc = {.bearer_token = carol};
  assert_int_equal(marquee__identity__v1__organization_service__list_members__call(cl, &lq, &lr, &oc, &err), MQ_OK);
  assert_int_equal(lr->n_members, 3);
  assert_string_equal(lr->next_page_token, "");
  marquee__identity__v1__list_members_response__free_unpacked(lr, NULL);
  /* pages of 2, in the order members were added: alice, bob | carol */
  lq.page_size = 2;
  assert_int_equal(marquee__identity__v1__organization_service__list_members__call(cl, &lq, &lr, &oc, &err), MQ_OK);
  assert_int_equal(lr->n_members, 2);
  assert_string_equal(lr->members[0]->user_id, a_id);
  assert_string_equal(lr->members[1]->user_id, b_id);
  char mtok[200];
  snprintf(mtok, sizeof mtok, "%s", lr->next_page_token);
  assert_true(mtok[0] != 0);
  marquee__identity__v1__list_members_response__free_unpacked(lr, NULL);
  lq.page_token = mtok;
  assert_int_equal(marquee__identity__v1__organization_service__list_members__call(cl, &lq, &lr, &oc, &err), MQ_OK);
  assert_int_equal(lr->n_members, 1);
  assert_string_equal(lr->members[0]->user_id, c_id);
  assert_string_equal(lr->next_page_token, "");
  marquee__identity__v1__list_members_response__free_unpacked(lr, NULL);
  /* a token is bound to its organization */
  lq.organization_id = (char *)"00000000-0000-4000-8000-00000000abcd";
  assert_int_equal(marquee__identity__v1__organization_service__list_members__call(cl, &lq, &lr, &oc, &err),
                   MQ_NOT_FOUND); /* not a member there: refused before the token is read */
  lq.organization_id = oid;
  lq.page_token = (char *)"not-a-token";
  assert_int_equal(marquee__identity__v1__organization_service__list_members__call(cl, &lq, &lr, &oc, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  lq.page_token = (char *)"";
  lq.page_size = 0;

  assert_int_equal(remove_member(bob, oid, a_id, &err), MQ_PERMISSION_DENIED);     /* manager vs owner */
  assert_int_equal(remove_member(alice, oid, a_id, &err), MQ_FAILED_PRECONDITION); /* the last owner */
  assert_int_equal(remove_member(bob, oid, c_id, &err), MQ_OK);
  assert_int_equal(get_org(carol, oid, &role, &err), MQ_NOT_FOUND);

  Marquee__Identity__V1__ListMyOrganizationsRequest mq = MARQUEE__IDENTITY__V1__LIST_MY_ORGANIZATIONS_REQUEST__INIT;
  Marquee__Identity__V1__ListMyOrganizationsResponse *mr = NULL;
  assert_int_equal(marquee__identity__v1__organization_service__list_my_organizations__call(cl, &mq, &mr, &ob, &err),
                   MQ_OK);
  assert_int_equal(mr->n_organizations, 1);
  assert_int_equal(mr->organizations[0]->my_role, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER);
  assert_string_equal(mr->next_page_token, "");
  marquee__identity__v1__list_my_organizations_response__free_unpacked(mr, NULL);
  free(a_att);
  free(alice);
  free(bob);
  free(carol);
}

static void test_admin_list_and_stats(void **state) {
  (void)state;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "lst%d.", (int)getpid());
  char ids[5][64];
  for (int i = 0; i < 5; i++) {
    char email[96];
    snprintf(email, sizeof email, "%s%d@example.com", prefix, i);
    Marquee__Identity__V1__AuthResponse *r = NULL;
    mq_error_t err;
    assert_int_equal(sign_up(email, PASSWORD, "Listed", &r, &err), MQ_OK);
    snprintf(ids[i], sizeof ids[i], "%s", r->user->user_id);
    marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  }
  char *admin = mq_test_token("00000000-0000-4000-8000-000000000002", MQ_ROLE_ADMIN);
  mq_call_opts_t ao = {.bearer_token = admin};
  mq_error_t err;
  /* pages of 2, newest first, no duplicates, nothing missing */
  Marquee__Identity__V1__ListUsersRequest q = MARQUEE__IDENTITY__V1__LIST_USERS_REQUEST__INIT;
  q.email_prefix = prefix;
  q.page_size = 2;
  char token[160] = "", seen[5][64];
  int total = 0, pages = 0;
  do {
    q.page_token = token;
    Marquee__Identity__V1__ListUsersResponse *r = NULL;
    assert_int_equal(marquee__identity__v1__admin_service__list_users__call(cl, &q, &r, &ao, &err), MQ_OK);
    for (size_t i = 0; i < r->n_users; i++) {
      assert_true(total < 5);
      for (int k = 0; k < total; k++) assert_string_not_equal(seen[k], r->users[i]->user_id);
      snprintf(seen[total++], sizeof seen[0], "%s", r->users[i]->user_id);
    }
    snprintf(token, sizeof token, "%s", r->next_page_token);
    pages++;
    marquee__identity__v1__list_users_response__free_unpacked(r, NULL);
  } while (token[0] && pages < 10);
  assert_int_equal(total, 5);
  assert_string_equal(seen[0], ids[4]); /* newest first */
  q.page_token = (char *)"garbage";
  Marquee__Identity__V1__ListUsersResponse *r = NULL;
  assert_int_equal(marquee__identity__v1__admin_service__list_users__call(cl, &q, &r, &ao, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  q.page_token = NULL;
  q.status = MARQUEE__IDENTITY__V1__USER_STATUS__USER_STATUS_SUSPENDED;
  assert_int_equal(marquee__identity__v1__admin_service__list_users__call(cl, &q, &r, &ao, &err), MQ_OK);
  assert_int_equal(r->n_users, 0);
  marquee__identity__v1__list_users_response__free_unpacked(r, NULL);

  Marquee__Identity__V1__GetUserStatsRequest sq = MARQUEE__IDENTITY__V1__GET_USER_STATS_REQUEST__INIT;
  sq.days = 7;
  Marquee__Identity__V1__UserStats *st = NULL;
  assert_int_equal(marquee__identity__v1__admin_service__get_user_stats__call(cl, &sq, &st, &ao, &err), MQ_OK);
  assert_true(st->total >= 5 && st->attendees >= 5 && st->active + st->suspended == st->total);
  assert_int_equal(st->n_sign_ups_per_day, 7);
  assert_true(st->sign_ups_per_day[6]->sign_ups >= 5); /* today */
  marquee__identity__v1__user_stats__free_unpacked(st, NULL);
  char *user = mq_test_token(ids[0], MQ_ROLE_ATTENDEE);
  mq_call_opts_t uo = {.bearer_token = user};
  assert_int_equal(marquee__identity__v1__admin_service__get_user_stats__call(cl, &sq, &st, &uo, &err),
                   MQ_PERMISSION_DENIED);
  free(user);
  free(admin);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_up_sign_in_get_me),
      cmocka_unit_test(test_sign_up_validation),
      cmocka_unit_test(test_duplicate_and_racing_email),
      cmocka_unit_test(test_refresh_rotation_and_reuse),
      cmocka_unit_test(test_sign_out_and_everywhere),
      cmocka_unit_test(test_update_me_and_change_password),
      cmocka_unit_test(test_protected_methods_refuse_bad_tokens),
      cmocka_unit_test(test_email_verification),
      cmocka_unit_test(test_password_reset),
      cmocka_unit_test(test_admin_roles_suspend_reinstate),
      cmocka_unit_test(test_organizations_and_member_roles),
      cmocka_unit_test(test_admin_list_and_stats),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
