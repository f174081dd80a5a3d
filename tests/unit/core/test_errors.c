/*
 * test_errors.c — cmocka tests for core/mq_error.c, the one error
 * vocabulary (MQ_CODES in mq_error.h).
 *
 * Covers: every MQ_CODES row maps to the gRPC status written in its row (the
 * table is expanded here a second time, independently of mq_error.c, and a few
 * domain-specific rows are also checked by hand against the literal status so
 * a wrong row in the table itself fails); mq_code_name and mq_code_message per
 * row; mq_code_from_grpc round trip for every generic code (the first row for
 * each status); unknown codes map to INTERNAL; mq_error_set with and without
 * a field, with a NULL fmt (row default message) and with a NULL err;
 * silent truncation of long fields and messages; mq_error_format output
 * ("field: message", message only, default message for an empty error);
 * violations: one per set outside collecting, every bad field between
 * mq_error_collect and mq_error_collected (first message kept, one entry
 * per field, overflow counted, a non-violation failure wins and keeps
 * winning), and an error that was never initialised.
 *
 * Invariant: pure functions, no network, no global state.
 * Read next: core/mq_error.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/mq_error.h"

typedef struct {
  mq_code_t code;
  grpc_status_code grpc;
  const char *name;
  const char *msg;
} row_t;

static const row_t rows[] = {
#define ROW(name, grpc, msg) {MQ_##name, grpc, #name, msg},
    MQ_CODES(ROW)
#undef ROW
};
#define NROWS (sizeof rows / sizeof rows[0])

/* ---- table ------------------------------------------------------------------ */

static void test_every_row_maps_to_its_status(void **state) {
  (void)state;
  assert_int_equal(NROWS, MQ_CODE_COUNT_);
  for (size_t i = 0; i < NROWS; i++) {
    assert_int_equal(rows[i].code, (mq_code_t)i); /* enum follows table order */
    assert_int_equal(mq_code_to_grpc(rows[i].code), rows[i].grpc);
    assert_string_equal(mq_code_name(rows[i].code), rows[i].name);
    assert_string_equal(mq_code_message(rows[i].code), rows[i].msg);
    assert_true(strlen(rows[i].msg) > 0);
  }
}

static void test_domain_rows_explicit(void **state) {
  (void)state;
  /* Literal statuses, so a wrong entry in MQ_CODES itself fails here. */
  assert_int_equal(mq_code_to_grpc(MQ_OK), GRPC_STATUS_OK);
  assert_int_equal(mq_code_to_grpc(MQ_MALFORMED_MESSAGE), GRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(mq_code_to_grpc(MQ_STORE_UNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(mq_code_to_grpc(MQ_RATE_LIMITED), GRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(mq_code_to_grpc(MQ_SHUTTING_DOWN), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(mq_code_to_grpc(MQ_OVERLOADED), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(mq_code_to_grpc(MQ_ABORTED), GRPC_STATUS_ABORTED);
  assert_int_equal(mq_code_to_grpc(MQ_FAILED_PRECONDITION), GRPC_STATUS_FAILED_PRECONDITION);
  assert_int_equal(mq_code_to_grpc(MQ_UNAUTHENTICATED), GRPC_STATUS_UNAUTHENTICATED);
  assert_int_equal(mq_code_to_grpc(MQ_PERMISSION_DENIED), GRPC_STATUS_PERMISSION_DENIED);
  assert_int_equal(mq_code_to_grpc(MQ_NOT_FOUND), GRPC_STATUS_NOT_FOUND);
  assert_int_equal(mq_code_to_grpc(MQ_DATA_LOSS), GRPC_STATUS_DATA_LOSS);
  assert_string_equal(mq_code_name(MQ_MALFORMED_MESSAGE), "MALFORMED_MESSAGE");
  assert_string_equal(mq_code_name(MQ_STORE_UNAVAILABLE), "STORE_UNAVAILABLE");
  assert_string_equal(mq_code_name(MQ_RATE_LIMITED), "RATE_LIMITED");
  assert_string_equal(mq_code_name(MQ_SHUTTING_DOWN), "SHUTTING_DOWN");
  assert_string_equal(mq_code_name(MQ_INVALID_ARGUMENT), "INVALID_ARGUMENT");
  assert_string_equal(mq_code_name(MQ_PENDING), "PENDING");
}

static void test_unknown_code_is_internal(void **state) {
  (void)state;
  assert_int_equal(mq_code_to_grpc(MQ_CODE_COUNT_), GRPC_STATUS_INTERNAL);
  assert_int_equal(mq_code_to_grpc((mq_code_t)999), GRPC_STATUS_INTERNAL);
  assert_int_equal(mq_code_to_grpc((mq_code_t)-1), GRPC_STATUS_INTERNAL);
  /* MQ_PENDING is not a status: if it ever leaks to the wire it is INTERNAL. */
  assert_int_equal(mq_code_to_grpc(MQ_PENDING), GRPC_STATUS_INTERNAL);
  assert_string_equal(mq_code_name((mq_code_t)999), "INTERNAL");
  assert_string_equal(mq_code_message((mq_code_t)999), "internal error");
}

/* ---- inverse mapping ---------------------------------------------------------- */

static void test_from_grpc_round_trip(void **state) {
  (void)state;
  /* Every gRPC status 0..16 has a row; the first row for it is the generic code. */
  for (int s = GRPC_STATUS_OK; s <= GRPC_STATUS_UNAUTHENTICATED; s++) {
    mq_code_t generic = MQ_CODE_COUNT_;
    for (size_t i = 0; i < NROWS && generic == MQ_CODE_COUNT_; i++)
      if ((int)rows[i].grpc == s) generic = rows[i].code;
    assert_int_not_equal(generic, MQ_CODE_COUNT_);
    mq_code_t back = mq_code_from_grpc((grpc_status_code)s);
    assert_int_equal(back, generic);
    assert_int_equal(mq_code_to_grpc(back), s);
  }
  /* Explicit: generic codes, never the specialised rows. */
  assert_int_equal(mq_code_from_grpc(GRPC_STATUS_INVALID_ARGUMENT), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_code_from_grpc(GRPC_STATUS_UNAVAILABLE), MQ_UNAVAILABLE);
  assert_int_equal(mq_code_from_grpc(GRPC_STATUS_RESOURCE_EXHAUSTED), MQ_RESOURCE_EXHAUSTED);
  assert_int_equal(mq_code_from_grpc(GRPC_STATUS_OK), MQ_OK);
  assert_int_equal(mq_code_from_grpc(GRPC_STATUS_UNAUTHENTICATED), MQ_UNAUTHENTICATED);
  /* A status outside the table is UNKNOWN. */
  assert_int_equal(mq_code_from_grpc((grpc_status_code)42), MQ_UNKNOWN);
}

/* ---- mq_error_set ------------------------------------------------------------- */

static void test_set_with_field(void **state) {
  (void)state;
  mq_error_t e;
  memset(&e, 0x55, sizeof e);
  mq_code_t rc = mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "must contain '@', got %d chars", 7);
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_int_equal(e.code, MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "email");
  assert_string_equal(e.message, "must contain '@', got 7 chars");
}

static void test_set_without_field(void **state) {
  (void)state;
  mq_error_t e;
  memset(&e, 0x55, sizeof e);
  mq_code_t rc = mq_error_set(&e, MQ_NOT_FOUND, NULL, "event %s does not exist", "ev-1");
  assert_int_equal(rc, MQ_NOT_FOUND);
  assert_int_equal(e.code, MQ_NOT_FOUND);
  assert_string_equal(e.field, "");
  assert_string_equal(e.message, "event ev-1 does not exist");
}

static void test_set_null_fmt_uses_row_default(void **state) {
  (void)state;
  mq_error_t e;
  memset(&e, 0x55, sizeof e);
  assert_int_equal(mq_error_set(&e, MQ_STORE_UNAVAILABLE, NULL, NULL), MQ_STORE_UNAVAILABLE);
  assert_string_equal(e.message, "the database is unavailable; retry with backoff");
  assert_string_equal(e.field, "");
  assert_int_equal(mq_error_set(&e, MQ_RATE_LIMITED, "login", NULL), MQ_RATE_LIMITED);
  assert_string_equal(e.message, mq_code_message(MQ_RATE_LIMITED));
  assert_string_equal(e.field, "login");
}

static void test_set_null_err_returns_code(void **state) {
  (void)state;
  assert_int_equal(mq_error_set(NULL, MQ_ABORTED, "x", "y %d", 1), MQ_ABORTED);
  assert_int_equal(mq_error_set(NULL, MQ_OK, NULL, NULL), MQ_OK);
  mq_error_clear(NULL); /* must not crash */
}

static void test_set_truncates(void **state) {
  (void)state;
  char big[1000];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char bigfield[200];
  memset(bigfield, 'f', sizeof bigfield - 1);
  bigfield[sizeof bigfield - 1] = '\0';

  mq_error_t e;
  mq_error_set(&e, MQ_INVALID_ARGUMENT, bigfield, "%s", big);
  assert_int_equal(strlen(e.message), MQ_ERROR_MESSAGE_MAX - 1);
  assert_int_equal(strlen(e.field), MQ_ERROR_FIELD_MAX - 1);
  assert_int_equal(e.message[0], 'm');
  assert_int_equal(e.message[MQ_ERROR_MESSAGE_MAX - 2], 'm');
  assert_int_equal(e.field[MQ_ERROR_FIELD_MAX - 2], 'f');
}

static void test_clear(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_set(&e, MQ_INTERNAL, "f", "m");
  mq_error_clear(&e);
  assert_int_equal(e.code, MQ_OK);
  assert_string_equal(e.field, "");
  assert_string_equal(e.message, "");
}

/* ---- mq_error_format ----------------------------------------------------------- */

static void test_format(void **state) {
  (void)state;
  mq_error_t e;
  char buf[512];

  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "must contain '@'");
  mq_error_format(&e, buf, sizeof buf);
  assert_string_equal(buf, "email: must contain '@'");

  mq_error_set(&e, MQ_NOT_FOUND, NULL, "no such event");
  mq_error_format(&e, buf, sizeof buf);
  assert_string_equal(buf, "no such event");

  /* Field but empty message: the row's default message after the field. */
  mq_error_clear(&e);
  e.code = MQ_INVALID_ARGUMENT;
  snprintf(e.field, sizeof e.field, "%s", "name");
  mq_error_format(&e, buf, sizeof buf);
  assert_string_equal(buf, "name: invalid argument");

  /* Nothing at all: the code's default message. */
  mq_error_clear(&e);
  e.code = MQ_UNAVAILABLE;
  mq_error_format(&e, buf, sizeof buf);
  assert_string_equal(buf, "temporarily unavailable; retry with backoff");

  /* NULL error: internal. */
  mq_error_format(NULL, buf, sizeof buf);
  assert_string_equal(buf, "internal error");
}

static void test_format_truncates_and_zero_len(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "must contain '@'");
  char small[8];
  mq_error_format(&e, small, sizeof small);
  assert_string_equal(small, "email: "); /* 7 chars + NUL */

  char untouched[4] = {'x', 'y', 'z', '\0'};
  mq_error_format(&e, untouched, 0);
  assert_string_equal(untouched, "xyz");
}

static void test_one_violation_outside_collecting(void **state) {
  (void)state;
  mq_error_t e;
  memset(&e, 0xA5, sizeof e); /* never initialised: set must not trust it */
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "bad");
  assert_int_equal(e.n_violations, 1);
  assert_string_equal(e.violations[0].field, "email");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "password", "short");
  assert_int_equal(e.n_violations, 1); /* replaced, not appended */
  assert_string_equal(e.violations[0].field, "password");
  mq_error_set(&e, MQ_NOT_FOUND, "user_id", "no such user");
  assert_int_equal(e.n_violations, 0); /* not a bad field */
  mq_error_set(&e, MQ_INVALID_ARGUMENT, NULL, "no field");
  assert_int_equal(e.n_violations, 0);
}

static void test_collect_every_violation(void **state) {
  (void)state;
  mq_error_t e;
  memset(&e, 0x5A, sizeof e);
  mq_error_collect(&e);
  assert_int_equal(e.code, MQ_OK);
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "must be a valid e-mail address");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "password", "must be at least 10 characters");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "a second reason for the same field");
  mq_error_set(&e, MQ_OUT_OF_RANGE, "capacity", "too large");
  assert_int_equal(mq_error_collected(&e), MQ_INVALID_ARGUMENT);
  assert_int_equal(e.n_violations, 3);
  assert_string_equal(e.violations[0].field, "email");
  assert_string_equal(e.violations[0].description, "must be a valid e-mail address");
  assert_string_equal(e.violations[1].field, "password");
  assert_string_equal(e.violations[2].field, "capacity");
  assert_string_equal(e.field, "email"); /* the first one is the message */
  char buf[512];
  mq_error_format(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, "email: must be a valid e-mail address"));
  assert_non_null(strstr(buf, "2 more invalid fields"));
  /* collecting ended: the next set replaces again */
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "title", "is required");
  assert_int_equal(e.n_violations, 1);
}

static void test_collect_nothing_wrong(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_collect(&e);
  assert_int_equal(mq_error_collected(&e), MQ_OK);
  assert_int_equal(e.n_violations, 0);
}

static void test_collect_failure_wins(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_collect(&e);
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "title", "is required");
  mq_error_set(&e, MQ_STORE_UNAVAILABLE, NULL, "the database is down");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "tags", "too many");
  mq_error_set(&e, MQ_FAILED_PRECONDITION, "currency", "later failure does not replace the first");
  assert_int_equal(mq_error_collected(&e), MQ_STORE_UNAVAILABLE);
  assert_string_equal(e.message, "the database is down");
  char buf[512];
  mq_error_format(&e, buf, sizeof buf);
  assert_null(strstr(buf, "more invalid"));
}

static void test_collect_translated_lookup(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_collect(&e);
  mq_error_set(&e, MQ_NOT_FOUND, NULL, "not found"); /* deep inside a lookup */
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "venue_id", "not a venue of this organization");
  mq_error_set(&e, MQ_FAILED_PRECONDITION, "currency", "a refusal after a bad field does not replace it");
  assert_int_equal(mq_error_collected(&e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "venue_id");
  assert_int_equal(e.n_violations, 1);
  /* a refusal alone is reported */
  mq_error_collect(&e);
  mq_error_set(&e, MQ_FAILED_PRECONDITION, "currency", "priced in EUR");
  assert_int_equal(mq_error_collected(&e), MQ_FAILED_PRECONDITION);
  assert_string_equal(e.message, "priced in EUR");
}

static void test_collect_overflow_counted(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_collect(&e);
  char f[16];
  for (int i = 0; i < MQ_ERROR_VIOLATIONS_MAX + 3; i++) {
    snprintf(f, sizeof f, "f%d", i);
    mq_error_set(&e, MQ_INVALID_ARGUMENT, f, "bad");
  }
  assert_int_equal(mq_error_collected(&e), MQ_INVALID_ARGUMENT);
  assert_int_equal(e.n_violations, MQ_ERROR_VIOLATIONS_MAX);
  assert_int_equal(e.more_violations, 3);
  char buf[512];
  mq_error_format(&e, buf, sizeof buf);
  snprintf(f, sizeof f, "%d more", MQ_ERROR_VIOLATIONS_MAX - 1 + 3);
  assert_non_null(strstr(buf, f));
}

static void test_rename_field(void **state) {
  (void)state;
  mq_error_t e;
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "name", "is required");
  mq_error_rename_field(&e, "venue.name");
  assert_string_equal(e.field, "venue.name");
  assert_int_equal(e.n_violations, 1);
  assert_string_equal(e.violations[0].field, "venue.name"); /* the BadRequest says the same */
  mq_error_set(&e, MQ_NOT_FOUND, "event_id", "no such event");
  mq_error_rename_field(&e, "metadata.event_id");
  assert_string_equal(e.field, "metadata.event_id");
  assert_int_equal(e.n_violations, 0);
}

static void test_grpc_status_names(void **state) {
  (void)state;
  assert_string_equal(mq_grpc_status_name(GRPC_STATUS_OK), "OK");
  assert_string_equal(mq_grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  assert_string_equal(mq_grpc_status_name(GRPC_STATUS_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  assert_string_equal(mq_grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
  assert_string_equal(mq_grpc_status_name((grpc_status_code)99), "UNKNOWN");
  /* every generic row's name is its status's name */
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
    if (mq_code_from_grpc(rows[i].grpc) == rows[i].code)
      assert_string_equal(mq_grpc_status_name(rows[i].grpc), rows[i].name);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_row_maps_to_its_status),
      cmocka_unit_test(test_domain_rows_explicit),
      cmocka_unit_test(test_unknown_code_is_internal),
      cmocka_unit_test(test_from_grpc_round_trip),
      cmocka_unit_test(test_set_with_field),
      cmocka_unit_test(test_set_without_field),
      cmocka_unit_test(test_set_null_fmt_uses_row_default),
      cmocka_unit_test(test_set_null_err_returns_code),
      cmocka_unit_test(test_set_truncates),
      cmocka_unit_test(test_clear),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_truncates_and_zero_len),
      cmocka_unit_test(test_one_violation_outside_collecting),
      cmocka_unit_test(test_collect_every_violation),
      cmocka_unit_test(test_collect_nothing_wrong),
      cmocka_unit_test(test_collect_failure_wins),
      cmocka_unit_test(test_collect_overflow_counted),
      cmocka_unit_test(test_collect_translated_lookup),
      cmocka_unit_test(test_grpc_status_names),
      cmocka_unit_test(test_rename_field),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
