/*
 * test_status.c — cmocka tests for server/mq_status.c: the google.rpc.Status
 * a refusal carries in grpc-status-details-bin, decoded back with the
 * generated protobuf-c code (independently of how it was built).
 *
 * Covers: code and message equal the call's; ErrorInfo on every refusal
 * (reason = the code's name, domain "marquee", field/retry/method
 * metadata); BadRequest with every collected violation for
 * INVALID_ARGUMENT and none for other statuses; RetryInfo from
 * retry_after_ms; PreconditionFailure for FAILED_PRECONDITION (STATE) and
 * ABORTED on "version" (VERSION).
 *
 * Invariant: pure functions, no network. Read next: server/mq_status.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "server/mq_status.h"

static Google__Rpc__Status *decode(mq_arena_t *a, const mq_error_t *e, grpc_status_code st, const char *msg) {
  uint8_t *bytes;
  size_t len = mq_status_details_pack(a, e, st, msg, "/marquee.identity.v1.AccountService/SignUp", &bytes);
  assert_true(len > 0);
  Google__Rpc__Status *s = google__rpc__status__unpack(NULL, len, bytes);
  assert_non_null(s);
  assert_int_equal(s->code, (int)st);
  assert_string_equal(s->message, msg);
  return s;
}

/* The detail of type `name`, unpacked with `desc` (caller frees), or NULL. */
static ProtobufCMessage *detail(const Google__Rpc__Status *s, const ProtobufCMessageDescriptor *desc) {
  char url[128];
  snprintf(url, sizeof url, "type.googleapis.com/%s", desc->name);
  for (size_t i = 0; i < s->n_details; i++)
    if (!strcmp(s->details[i]->type_url, url))
      return protobuf_c_message_unpack(desc, NULL, s->details[i]->value.len, s->details[i]->value.data);
  return NULL;
}

static const char *meta(const Google__Rpc__ErrorInfo *info, const char *key) {
  for (size_t i = 0; i < info->n_metadata; i++)
    if (!strcmp(info->metadata[i]->key, key)) return info->metadata[i]->value;
  return NULL;
}

static void test_bad_request_lists_every_violation(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t e;
  mq_error_collect(&e);
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "email", "must be a valid e-mail address");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "password", "must be at least 10 characters");
  mq_error_set(&e, MQ_INVALID_ARGUMENT, "display_name", "is required");
  assert_int_equal(mq_error_collected(&e), MQ_INVALID_ARGUMENT);
  Google__Rpc__Status *s = decode(&a, &e, GRPC_STATUS_INVALID_ARGUMENT, "email: must be ...");
  Google__Rpc__BadRequest *br = (Google__Rpc__BadRequest *)detail(s, &google__rpc__bad_request__descriptor);
  assert_non_null(br);
  assert_int_equal(br->n_field_violations, 3);
  assert_string_equal(br->field_violations[0]->field, "email");
  assert_string_equal(br->field_violations[1]->field, "password");
  assert_string_equal(br->field_violations[1]->description, "must be at least 10 characters");
  assert_string_equal(br->field_violations[2]->field, "display_name");
  Google__Rpc__ErrorInfo *info = (Google__Rpc__ErrorInfo *)detail(s, &google__rpc__error_info__descriptor);
  assert_non_null(info);
  assert_string_equal(info->reason, "INVALID_ARGUMENT");
  assert_string_equal(info->domain, "marquee");
  assert_string_equal(meta(info, "field"), "email");
  assert_string_equal(meta(info, "method"), "/marquee.identity.v1.AccountService/SignUp");
  assert_null(detail(s, &google__rpc__retry_info__descriptor));
  assert_null(detail(s, &google__rpc__precondition_failure__descriptor));
  protobuf_c_message_free_unpacked(&br->base, NULL);
  protobuf_c_message_free_unpacked(&info->base, NULL);
  google__rpc__status__free_unpacked(s, NULL);
  mq_arena_release(&a);
}

static void test_retry_info_for_rate_limits(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t e;
  mq_error_set(&e, MQ_RATE_LIMITED, NULL, "too many attempts; retry in 30 s");
  e.retry_after_ms = 30500;
  Google__Rpc__Status *s = decode(&a, &e, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many attempts; retry in 30 s");
  Google__Rpc__RetryInfo *ri = (Google__Rpc__RetryInfo *)detail(s, &google__rpc__retry_info__descriptor);
  assert_non_null(ri);
  assert_non_null(ri->retry_delay);
  assert_int_equal(ri->retry_delay->seconds, 30);
  assert_int_equal(ri->retry_delay->nanos, 500000000);
  Google__Rpc__ErrorInfo *info = (Google__Rpc__ErrorInfo *)detail(s, &google__rpc__error_info__descriptor);
  assert_string_equal(info->reason, "RATE_LIMITED");
  assert_string_equal(meta(info, "retry_after_ms"), "30500");
  assert_null(detail(s, &google__rpc__bad_request__descriptor));
  protobuf_c_message_free_unpacked(&ri->base, NULL);
  protobuf_c_message_free_unpacked(&info->base, NULL);
  google__rpc__status__free_unpacked(s, NULL);
  mq_arena_release(&a);
}

static void test_precondition_failure(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t e;
  mq_error_set(&e, MQ_ABORTED, "version", "the venue changed since you read it (version 4 now)");
  Google__Rpc__Status *s = decode(&a, &e, GRPC_STATUS_ABORTED, "version: the venue changed");
  Google__Rpc__PreconditionFailure *pf =
      (Google__Rpc__PreconditionFailure *)detail(s, &google__rpc__precondition_failure__descriptor);
  assert_non_null(pf);
  assert_int_equal(pf->n_violations, 1);
  assert_string_equal(pf->violations[0]->type, "VERSION");
  assert_string_equal(pf->violations[0]->subject, "version");
  protobuf_c_message_free_unpacked(&pf->base, NULL);
  google__rpc__status__free_unpacked(s, NULL);

  mq_error_set(&e, MQ_FAILED_PRECONDITION, "venue_id", "events refer to this venue");
  s = decode(&a, &e, GRPC_STATUS_FAILED_PRECONDITION, "venue_id: events refer to this venue");
  pf = (Google__Rpc__PreconditionFailure *)detail(s, &google__rpc__precondition_failure__descriptor);
  assert_non_null(pf);
  assert_string_equal(pf->violations[0]->type, "STATE");
  assert_string_equal(pf->violations[0]->subject, "venue_id");
  assert_string_equal(pf->violations[0]->description, "events refer to this venue");
  protobuf_c_message_free_unpacked(&pf->base, NULL);
  google__rpc__status__free_unpacked(s, NULL);
  mq_arena_release(&a);
}

static void test_plain_refusal_has_error_info_only(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t e;
  mq_error_set(&e, MQ_NOT_FOUND, "event_id", "no such event");
  Google__Rpc__Status *s = decode(&a, &e, GRPC_STATUS_NOT_FOUND, "event_id: no such event");
  assert_int_equal(s->n_details, 1);
  Google__Rpc__ErrorInfo *info = (Google__Rpc__ErrorInfo *)detail(s, &google__rpc__error_info__descriptor);
  assert_string_equal(info->reason, "NOT_FOUND");
  protobuf_c_message_free_unpacked(&info->base, NULL);
  google__rpc__status__free_unpacked(s, NULL);
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_request_lists_every_violation),
      cmocka_unit_test(test_retry_info_for_rate_limits),
      cmocka_unit_test(test_precondition_failure),
      cmocka_unit_test(test_plain_refusal_has_error_info_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
