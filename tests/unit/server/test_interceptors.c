/*
 * test_interceptors.c — cmocka tests for the pure parts of the interceptor
 * chain in server/mq_interceptors.c: the metadata parsers and the access
 * policy table.
 *
 * Covers: mq_md_valid_request_id (accepted alphabet, empty, 64 vs 65 chars,
 * bad characters, NULL); mq_md_parse_traceparent (the W3C example, the trace
 * id copied lower-case and NUL-terminated, all-zero trace id, wrong lengths,
 * wrong separators, upper-case hex, version ff, non-hex); mq_md_parse_bearer
 * (ok, scheme case-insensitive, token pointer/length into the input, other
 * schemes, empty token, double or embedded space, control and non-ASCII
 * bytes); and mq_policy_check for every policy x {anonymous, attendee,
 * organizer, admin} against an expected table, plus UNSET and out-of-range
 * policies → INTERNAL, with the refusal message filled in.
 *
 * Invariant: no server, no network; the parsers take (pointer, length) and
 * must not read past the length (inputs are sliced from larger buffers here).
 * Read next: server/mq_interceptors.h, core/mq_service.h (policies).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "server/mq_interceptors.h"

/* Copies `s` to an exact-size heap buffer (no NUL) so ASan catches over-reads. */
static char *exact(const char *s, size_t *n) {
  *n = strlen(s);
  char *p = malloc(*n ? *n : 1);
  assert_non_null(p);
  memcpy(p, s, *n);
  return p;
}

/* ---- x-request-id ------------------------------------------------------------------ */

static bool req_id_ok(const char *s) {
  size_t n;
  char *p = exact(s, &n);
  bool ok = mq_md_valid_request_id(p, n);
  free(p);
  return ok;
}

static void test_request_id(void **state) {
  (void)state;
  assert_true(req_id_ok("a"));
  assert_true(req_id_ok("req-123_abc.DEF:9"));
  assert_true(req_id_ok("550e8400-e29b-41d4-a716-446655440000"));
  char s64[65], s65[66];
  memset(s64, 'x', 64);
  s64[64] = '\0';
  memset(s65, 'x', 65);
  s65[65] = '\0';
  assert_true(req_id_ok(s64));
  assert_false(req_id_ok(s65));
  assert_false(req_id_ok(""));
  assert_false(mq_md_valid_request_id(NULL, 3));
  assert_false(req_id_ok("has space"));
  assert_false(req_id_ok("semi;colon"));
  assert_false(req_id_ok("quote\""));
  assert_false(req_id_ok("slash/"));
  assert_false(req_id_ok("new\nline"));
  assert_false(req_id_ok("caf\xc3\xa9"));
  /* The length is what counts: a valid prefix of an invalid string is valid. */
  assert_true(mq_md_valid_request_id("abc def", 3));
  assert_false(mq_md_valid_request_id("abc def", 4));
}

/* ---- traceparent -------------------------------------------------------------------- */

#define W3C_EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool tp(const char *s, char out[33]) {
  size_t n;
  char *p = exact(s, &n);
  bool ok = mq_md_parse_traceparent(p, n, out);
  free(p);
  return ok;
}

static void test_traceparent_valid(void **state) {
  (void)state;
  char out[33];
  memset(out, 'Z', sizeof out);
  assert_true(tp(W3C_EXAMPLE, out));
  assert_string_equal(out, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_int_equal(out[32], '\0');
  /* unsampled flags and another id */
  assert_true(tp("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", out));
  assert_string_equal(out, "0af7651916cd43dd8448eb211c80319c");
}

static void test_traceparent_invalid(void **state) {
  (void)state;
  char out[33];
  strcpy(out, "untouched");
  /* all-zero trace id */
  assert_false(tp("00-00000000000000000000000000000000-00f067aa0ba902b7-01", out));
  /* wrong lengths */
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", out));
  assert_false(tp(W3C_EXAMPLE "0", out));
  assert_false(tp("", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e4736", out));
  /* upper-case hex is not allowed by W3C trace-context */
  assert_false(tp("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", out));
  /* version ff is forbidden */
  assert_false(tp("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
  /* separators and non-hex */
  assert_false(tp("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", out));
  assert_false(tp("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
  assert_false(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z", out));
  assert_false(mq_md_parse_traceparent(NULL, 55, out));
  /* a refusal never writes the output */
  assert_string_equal(out, "untouched");
}

/* ---- authorization: Bearer ------------------------------------------------------------ */

static bool bearer(const char *s, char *tok_out, size_t cap) {
  size_t n;
  char *p = exact(s, &n);
  const char *tok = NULL;
  size_t tl = 0;
  bool ok = mq_md_parse_bearer(p, n, &tok, &tl);
  if (ok) {
    assert_ptr_equal(tok, p + 7); /* points into the input */
    assert_true(tl < cap);
    memcpy(tok_out, tok, tl);
    tok_out[tl] = '\0';
  }
  free(p);
  return ok;
}

static void test_bearer_ok(void **state) {
  (void)state;
  char tok[256];
  assert_true(bearer("Bearer abc.def.ghi", tok, sizeof tok));
  assert_string_equal(tok, "abc.def.ghi");
  assert_true(bearer("bearer xyz", tok, sizeof tok));
  assert_string_equal(tok, "xyz");
  assert_true(bearer("BEARER t", tok, sizeof tok));
  assert_string_equal(tok, "t");
  assert_true(bearer("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-_~+/=", tok, sizeof tok));
  assert_string_equal(tok, "eyJhbGciOiJIUzI1NiJ9.e30.sig-_~+/=");
}

static void test_bearer_refused(void **state) {
  (void)state;
  char tok[256];
  assert_false(bearer("Basic dXNlcjpwYXNz", tok, sizeof tok));
  assert_false(bearer("Bearer ", tok, sizeof tok));
  assert_false(bearer("Bearer", tok, sizeof tok));
  assert_false(bearer("", tok, sizeof tok));
  assert_false(bearer("Bearer  abc", tok, sizeof tok)); /* two spaces */
  assert_false(bearer("Bearer abc def", tok, sizeof tok));
  assert_false(bearer("Bearer abc ", tok, sizeof tok));
  assert_false(bearer("Bearer\tabc", tok, sizeof tok));
  assert_false(bearer("Bearer abc\tdef", tok, sizeof tok));
  assert_false(bearer("Bearer abc\x7f", tok, sizeof tok));
  assert_false(bearer("Bearer t\xc3\xa9st", tok, sizeof tok)); /* non-ASCII */
  assert_false(bearer("Bearerabc", tok, sizeof tok));
  assert_false(bearer("Token abcdefg", tok, sizeof tok));
  const char *t = NULL;
  size_t tl = 0;
  assert_false(mq_md_parse_bearer(NULL, 10, &t, &tl));
  /* embedded NUL inside the declared length */
  assert_false(mq_md_parse_bearer("Bearer a\0b", 10, &t, &tl));
}

/* ---- access policy ---------------------------------------------------------------------- */

enum { WHO_ANON, WHO_ATTENDEE, WHO_ORGANIZER, WHO_ADMIN, WHO_N };

static void test_policy_table(void **state) {
  (void)state;
  mq_principal_t attendee = {.subject = "u-attendee", .roles = MQ_ROLE_ATTENDEE};
  mq_principal_t organizer = {.subject = "u-org", .roles = MQ_ROLE_ATTENDEE | MQ_ROLE_ORGANIZER};
  mq_principal_t admin = {.subject = "u-admin", .roles = MQ_ROLE_ADMIN};
  const mq_principal_t *who[WHO_N] = {NULL, &attendee, &organizer, &admin};

  static const struct {
    mq_policy_t policy;
    mq_code_t expect[WHO_N];
  } table[] = {
      {MQ_POLICY_UNSET, {MQ_INTERNAL, MQ_INTERNAL, MQ_INTERNAL, MQ_INTERNAL}},
      {MQ_POLICY_PUBLIC, {MQ_OK, MQ_OK, MQ_OK, MQ_OK}},
      {MQ_POLICY_AUTHENTICATED, {MQ_UNAUTHENTICATED, MQ_OK, MQ_OK, MQ_OK}},
      {MQ_POLICY_ORGANIZER, {MQ_UNAUTHENTICATED, MQ_PERMISSION_DENIED, MQ_OK, MQ_OK}},
      {MQ_POLICY_ADMIN, {MQ_UNAUTHENTICATED, MQ_PERMISSION_DENIED, MQ_PERMISSION_DENIED, MQ_OK}},
      {MQ_POLICY_RESOURCE, {MQ_UNAUTHENTICATED, MQ_OK, MQ_OK, MQ_OK}},
  };
  /* every policy has a row here */
  assert_int_equal(sizeof table / sizeof table[0], MQ_POLICY_COUNT_);

  for (size_t p = 0; p < sizeof table / sizeof table[0]; p++) {
    for (int w = 0; w < WHO_N; w++) {
      mq_error_t err;
      memset(&err, 0, sizeof err);
      err.code = MQ_OK;
      mq_code_t rc = mq_policy_check(table[p].policy, who[w], &err);
      if (rc != table[p].expect[w])
        fail_msg("policy %s, caller %d: got %s, want %s", mq_policy_name(table[p].policy), w, mq_code_name(rc),
                 mq_code_name(table[p].expect[w]));
      if (rc != MQ_OK) {
        assert_int_equal(err.code, rc);
        assert_true(strlen(err.message) > 0);
      }
    }
  }
}

static void test_policy_messages(void **state) {
  (void)state;
  mq_principal_t attendee = {.subject = "u", .roles = MQ_ROLE_ATTENDEE};
  mq_error_t err;
  assert_int_equal(mq_policy_check(MQ_POLICY_AUTHENTICATED, NULL, &err), MQ_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "Bearer"));
  assert_int_equal(mq_policy_check(MQ_POLICY_ORGANIZER, &attendee, &err), MQ_PERMISSION_DENIED);
  assert_non_null(strstr(err.message, "organizer"));
  assert_int_equal(mq_policy_check(MQ_POLICY_ADMIN, &attendee, &err), MQ_PERMISSION_DENIED);
  assert_non_null(strstr(err.message, "admin"));
  /* no roles at all is still a signed-in user */
  mq_principal_t nobody = {.subject = "u0", .roles = 0};
  assert_int_equal(mq_policy_check(MQ_POLICY_AUTHENTICATED, &nobody, &err), MQ_OK);
  assert_int_equal(mq_policy_check(MQ_POLICY_ORGANIZER, &nobody, &err), MQ_PERMISSION_DENIED);
  /* out-of-range policy values are a programming error */
  assert_int_equal(mq_policy_check(MQ_POLICY_COUNT_, &attendee, &err), MQ_INTERNAL);
  assert_int_equal(mq_policy_check((mq_policy_t)77, NULL, &err), MQ_INTERNAL);
  /* err may be NULL */
  assert_int_equal(mq_policy_check(MQ_POLICY_ADMIN, NULL, NULL), MQ_UNAUTHENTICATED);
}

static void test_access_log_levels(void **state) {
  (void)state;
  assert_int_equal(mq_access_log_level(MQ_OK, GRPC_STATUS_OK), MQ_LOG_INFO);
  /* business refusals a working system gives every day */
  assert_int_equal(mq_access_log_level(MQ_NOT_FOUND, GRPC_STATUS_NOT_FOUND), MQ_LOG_INFO);
  assert_int_equal(mq_access_log_level(MQ_RESOURCE_EXHAUSTED, GRPC_STATUS_RESOURCE_EXHAUSTED), MQ_LOG_INFO);
  assert_int_equal(mq_access_log_level(MQ_FAILED_PRECONDITION, GRPC_STATUS_FAILED_PRECONDITION), MQ_LOG_INFO);
  assert_int_equal(mq_access_log_level(MQ_ABORTED, GRPC_STATUS_ABORTED), MQ_LOG_INFO);
  assert_int_equal(mq_access_log_level(MQ_OK, GRPC_STATUS_CANCELLED), MQ_LOG_INFO);
  /* what someone should look at */
  assert_int_equal(mq_access_log_level(MQ_RATE_LIMITED, GRPC_STATUS_RESOURCE_EXHAUSTED), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_INVALID_ARGUMENT, GRPC_STATUS_INVALID_ARGUMENT), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_UNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_PERMISSION_DENIED, GRPC_STATUS_PERMISSION_DENIED), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_OK, GRPC_STATUS_DEADLINE_EXCEEDED), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_STORE_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE), MQ_LOG_WARN);
  assert_int_equal(mq_access_log_level(MQ_INTERNAL, GRPC_STATUS_INTERNAL), MQ_LOG_ERROR);
  assert_int_equal(mq_access_log_level(MQ_DATA_LOSS, GRPC_STATUS_DATA_LOSS), MQ_LOG_ERROR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_id),          cmocka_unit_test(test_traceparent_valid),
      cmocka_unit_test(test_traceparent_invalid), cmocka_unit_test(test_bearer_ok),
      cmocka_unit_test(test_bearer_refused),      cmocka_unit_test(test_policy_table),
      cmocka_unit_test(test_policy_messages),     cmocka_unit_test(test_access_log_levels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
