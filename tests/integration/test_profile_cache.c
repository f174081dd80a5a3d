/*
 * test_profile_cache.c — GetMe's warm path (the in-process profile cache)
 * stays coherent: a write on the same instance is visible at once, and a
 * write on another instance becomes visible through its users event (Kafka →
 * the invalidator) well before the cache's TTL, which this test sets to a
 * minute so that only the event can explain the change.
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

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/identity/v1/identity.mq-client.h"

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_ARGON2_MEMORY_KIB=1024", "MARQUEE_ARGON2_ITERATIONS=1", "MARQUEE_CACHE_TTL_MS=60000",
                       NULL};
  return mq_test_pair_start(&a_srv, &b_srv, &a, &b, env);
}

static int teardown(void **state) {
  (void)state;
  return mq_test_pair_stop(&a_srv, &b_srv, a, b);
}

static char *display_name(mq_client_t *c, const char *token) {
  Marquee__Identity__V1__GetMeRequest req = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  Marquee__Identity__V1__User *u = NULL;
  mq_call_opts_t o = {.bearer_token = token};
  mq_error_t err;
  if (marquee__identity__v1__account_service__get_me__call(c, &req, &u, &o, &err) != MQ_OK) return NULL;
  char *n = strdup(u->display_name);
  marquee__identity__v1__user__free_unpacked(u, NULL);
  return n;
}

static void rename_me(mq_client_t *c, const char *token, const char *name) {
  Marquee__Identity__V1__UpdateMeRequest req = MARQUEE__IDENTITY__V1__UPDATE_ME_REQUEST__INIT;
  Marquee__Identity__V1__User in = MARQUEE__IDENTITY__V1__USER__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)"display_name"};
  mask.n_paths = 1;
  mask.paths = paths;
  in.display_name = (char *)name;
  req.user = &in;
  req.update_mask = &mask;
  Marquee__Identity__V1__User *u = NULL;
  mq_call_opts_t o = {.bearer_token = token};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__account_service__update_me__call(c, &req, &u, &o, &err), MQ_OK);
  marquee__identity__v1__user__free_unpacked(u, NULL);
}

static void test_coherent_across_instances(void **state) {
  (void)state;
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  char email[96];
  snprintf(email, sizeof email, "cache.%d@example.com", (int)getpid());
  req.email = email;
  req.password = (char *)"correct horse battery staple";
  req.display_name = (char *)"First Name";
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(a, &req, &r, NULL, &err), MQ_OK);
  const char *tok = r->tokens->access_token;
  /* both instances cache the profile */
  double hits = mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"profiles\"}");
  for (int i = 0; i < 3; i++) {
    char *na = display_name(a, tok), *nb = display_name(b, tok);
    assert_string_equal(na, "First Name");
    assert_string_equal(nb, "First Name");
    free(na);
    free(nb);
  }
  /* B answers from its cache (the sign-up's own events, arriving now, may
   * empty it a few times first) */
  int64_t until = mq_test_now_ms() + 10000;
  while (mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"profiles\"}") < hits + 2) {
    assert_true(mq_test_now_ms() < until);
    char *nb = display_name(b, tok);
    assert_string_equal(nb, "First Name");
    free(nb);
  }
  /* a write on A: A answers the new value at once */
  rename_me(a, tok, "Second Name");
  char *n = display_name(a, tok);
  assert_string_equal(n, "Second Name");
  free(n);
  /* B hears of it through Kafka, well within the 60 s TTL */
  int64_t t0 = mq_test_now_ms();
  until = t0 + 20000;
  for (;;) {
    n = display_name(b, tok);
    assert_non_null(n);
    bool fresh = !strcmp(n, "Second Name");
    free(n);
    if (fresh) break;
    assert_true(mq_test_now_ms() < until);
    mq_test_sleep_ms(50);
  }
  printf("instance B saw the change after %lld ms\n", (long long)(mq_test_now_ms() - t0));
  /* and the other way round */
  rename_me(b, tok, "Third Name");
  until = mq_test_now_ms() + 20000;
  for (;;) {
    n = display_name(a, tok);
    bool fresh = n && !strcmp(n, "Third Name");
    free(n);
    if (fresh) break;
    assert_true(mq_test_now_ms() < until);
    mq_test_sleep_ms(50);
  }
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_coherent_across_instances)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
