/*
 * test_reflection.c — the server reflection index and answers
 * (handlers/system/reflection.c) without a server: symbol, file and extension
 * lookups over the embedded descriptor set and over small synthetic sets,
 * dependency closures, and the responses built for each request kind
 * (packed with the v1 and v1alpha descriptors and decoded back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "handlers/system/reflection.h"

static const char *const SYSTEM_PROTO = "marquee/system/v1/system.proto";
static const char *const TIMESTAMP_PROTO = "google/protobuf/timestamp.proto";

static int setup(void **state) {
  mq_error_t err;
  mq_reflection_t *r = NULL;
  if (mq_reflection_init(&r, &err) != MQ_OK) {
    fail_msg("mq_reflection_init: %s", err.message);
    return -1;
  }
  *state = r;
  return 0;
}

static int teardown(void **state) {
  mq_reflection_free(*state);
  return 0;
}

static const char *file_of(const mq_reflection_t *r, const char *symbol) {
  return mq_reflection_file_name(r, mq_reflection_find_symbol(r, symbol));
}

/* ---- lookups over the embedded set ------------------------------------------------ */

static void test_message_symbol(void **state) {
  const mq_reflection_t *r = *state;
  assert_string_equal(file_of(r, "marquee.system.v1.EchoRequest"), SYSTEM_PROTO);
  assert_string_equal(file_of(r, "marquee.system.v1.PingRequest"), SYSTEM_PROTO);
  assert_string_equal(file_of(r, "google.protobuf.Timestamp"), TIMESTAMP_PROTO);
  assert_string_equal(file_of(r, "marquee.common.v1.Money"), "marquee/common/v1/common.proto");
  /* fields are symbols too */
  assert_string_equal(file_of(r, "marquee.system.v1.EchoRequest.delay_ms"), SYSTEM_PROTO);
}

static void test_nested_symbol(void **state) {
  const mq_reflection_t *r = *state;
  /* a nested enum and its values (scoped as siblings of the enum) */
  assert_string_equal(file_of(r, "grpc.health.v1.HealthCheckResponse.ServingStatus"), "grpc/health/v1/health.proto");
  assert_string_equal(file_of(r, "grpc.health.v1.HealthCheckResponse.SERVING"), "grpc/health/v1/health.proto");
  assert_int_equal(mq_reflection_find_symbol(r, "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING"), -1);
  /* a oneof */
  assert_string_equal(file_of(r, "grpc.reflection.v1alpha.ServerReflectionRequest.message_request"),
                      "grpc/reflection/v1alpha/reflection.proto");
}

static void test_service_and_method(void **state) {
  const mq_reflection_t *r = *state;
  assert_string_equal(file_of(r, "marquee.system.v1.SystemService"), SYSTEM_PROTO);
  assert_string_equal(file_of(r, "marquee.system.v1.SystemService.Ping"), SYSTEM_PROTO);
  assert_string_equal(file_of(r, "marquee.system.v1.DiagnosticsService.EchoChat"), SYSTEM_PROTO);
  assert_string_equal(file_of(r, "grpc.reflection.v1.ServerReflection"), "grpc/reflection/v1/reflection.proto");
  assert_string_equal(file_of(r, "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo"),
                      "grpc/reflection/v1alpha/reflection.proto");
}

static void test_file_by_name(void **state) {
  const mq_reflection_t *r = *state;
  int i = mq_reflection_find_file(r, SYSTEM_PROTO);
  assert_true(i >= 0);
  assert_string_equal(mq_reflection_file_name(r, i), SYSTEM_PROTO);
  assert_true(mq_reflection_find_file(r, TIMESTAMP_PROTO) >= 0);
  assert_true(mq_reflection_find_file(r, "grpc/health/v1/health.proto") >= 0);
  /* every file finds itself */
  for (size_t k = 0; k < mq_reflection_file_count(r); k++)
    assert_int_equal(mq_reflection_find_file(r, mq_reflection_file_name(r, (int)k)), (int)k);
}

static void test_transitive_deps(void **state) {
  const mq_reflection_t *r = *state;
  int sys = mq_reflection_find_file(r, SYSTEM_PROTO), ts = mq_reflection_find_file(r, TIMESTAMP_PROTO);
  const int *files;
  size_t n = mq_reflection_file_closure(r, sys, &files);
  assert_true(n >= 2);
  assert_int_equal(files[0], sys); /* the requested file first */
  bool has_ts = false;
  for (size_t i = 0; i < n; i++) {
    if (files[i] == ts) has_ts = true;
    for (size_t j = i + 1; j < n; j++) assert_int_not_equal(files[i], files[j]); /* each once */
  }
  assert_true(has_ts);
  /* a file without imports is its own closure */
  n = mq_reflection_file_closure(r, ts, &files);
  assert_int_equal(n, 1);
  assert_int_equal(files[0], ts);
  assert_int_equal(mq_reflection_file_closure(r, -1, &files), 0);
  assert_int_equal(mq_reflection_file_closure(r, (int)mq_reflection_file_count(r), &files), 0);
}

static void test_unknown_not_found(void **state) {
  const mq_reflection_t *r = *state;
  assert_int_equal(mq_reflection_find_symbol(r, "marquee.system.v1.NoSuchMessage"), -1);
  assert_int_equal(mq_reflection_find_symbol(r, "marquee.system.v1.SystemService.Nope"), -1);
  assert_int_equal(mq_reflection_find_symbol(r, "marquee.system"), -1); /* packages are not symbols here */
  assert_int_equal(mq_reflection_find_symbol(r, ".marquee.system.v1.EchoRequest"), -1);
  assert_int_equal(mq_reflection_find_symbol(r, ""), -1);
  assert_int_equal(mq_reflection_find_symbol(r, NULL), -1);
  assert_int_equal(mq_reflection_find_file(r, "marquee/system/v1/nope.proto"), -1);
  assert_int_equal(mq_reflection_find_file(r, ""), -1);
  assert_int_equal(mq_reflection_find_extension(r, "marquee.system.v1.EchoRequest", 100), -1);
  assert_null(mq_reflection_file_name(r, -1));
}

/* ---- answers ------------------------------------------------------------------------ */

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse resp_t;

static const mq_service_desc_t svc_a = {"marquee.system.v1.SystemService", 0, NULL};
static const mq_service_desc_t svc_b = {"grpc.reflection.v1alpha.ServerReflection", 0, NULL};
static const mq_service_desc_t *const svcs[] = {&svc_a, &svc_b};

/* Answers `req` with the v1alpha descriptors, packs, and decodes it back. */
static resp_t *roundtrip(const mq_reflection_t *r, const req_t *req) {
  mq_arena_t a;
  mq_arena_init(&a);
  resp_t resp;
  mq_reflection_answer(r, &mq_reflection_v1alpha_descs, svcs, 2, req, &resp, &a);
  size_t len = protobuf_c_message_get_packed_size(&resp.base);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  protobuf_c_message_pack(&resp.base, buf);
  mq_arena_release(&a);
  resp_t *out = grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, len, buf);
  free(buf);
  assert_non_null(out);
  return out;
}

static void test_answer_list_services(void **state) {
  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.host = "localhost:1";
  req.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "*";
  resp_t *resp = roundtrip(*state, &req);
  assert_string_equal(resp->valid_host, "localhost:1");
  assert_non_null(resp->original_request);
  assert_string_equal(resp->original_request->list_services, "*");
  assert_int_equal(resp->message_response_case,
                   GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  assert_int_equal(resp->list_services_response->n_service, 2);
  assert_string_equal(resp->list_services_response->service[0]->name, "marquee.system.v1.SystemService");
  assert_string_equal(resp->list_services_response->service[1]->name, "grpc.reflection.v1alpha.ServerReflection");
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_answer_symbol_files(void **state) {
  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "marquee.system.v1.SystemService.Ping";
  resp_t *resp = roundtrip(*state, &req);
  assert_int_equal(resp->message_response_case,
                   GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  Grpc__Reflection__V1alpha__FileDescriptorResponse *f = resp->file_descriptor_response;
  assert_true(f->n_file_descriptor_proto >= 2);
  bool has_ts = false;
  for (size_t i = 0; i < f->n_file_descriptor_proto; i++) {
    Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
        NULL, f->file_descriptor_proto[i].len, f->file_descriptor_proto[i].data);
    assert_non_null(fd);
    if (i == 0) {
      assert_string_equal(fd->name, SYSTEM_PROTO);
      assert_int_equal(fd->n_service, 2);
    }
    if (strcmp(fd->name, TIMESTAMP_PROTO) == 0) has_ts = true;
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
  assert_true(has_ts);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_answer_file_by_name(void **state) {
  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  req.file_by_filename = (char *)TIMESTAMP_PROTO;
  resp_t *resp = roundtrip(*state, &req);
  assert_int_equal(resp->message_response_case,
                   GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 1);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
}

static void expect_error(const mq_reflection_t *r, const req_t *req, int code, const char *substr) {
  resp_t *resp = roundtrip(r, req);
  assert_int_equal(resp->message_response_case,
                   GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  assert_int_equal(resp->error_response->error_code, code);
  assert_non_null(strstr(resp->error_response->error_message, substr));
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_answer_errors(void **state) {
  const mq_reflection_t *r = *state;
  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "no.such.Symbol";
  expect_error(r, &req, 5, "no.such.Symbol");

  req.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  req.file_by_filename = "no/such.proto";
  expect_error(r, &req, 5, "no/such.proto");

  Grpc__Reflection__V1alpha__ExtensionRequest x = GRPC__REFLECTION__V1ALPHA__EXTENSION_REQUEST__INIT;
  x.containing_type = "marquee.system.v1.EchoRequest";
  x.extension_number = 100;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  req.file_containing_extension = &x;
  expect_error(r, &req, 5, "extension");

  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  req.all_extension_numbers_of_type = "marquee.system.v1.SystemService"; /* a service, not a message */
  expect_error(r, &req, 5, "not found");

  req.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET;
  expect_error(r, &req, 12, "no known reflection query");
}

static void test_answer_extension_numbers_empty(void **state) {
  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  req.all_extension_numbers_of_type = "marquee.system.v1.EchoRequest";
  resp_t *resp = roundtrip(*state, &req);
  assert_int_equal(
      resp->message_response_case,
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
  assert_string_equal(resp->all_extension_numbers_response->base_type_name, "marquee.system.v1.EchoRequest");
  assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 0);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);
}

/* The v1 answer packs with v1 descriptors (sub-messages included) and is
 * byte-identical to the v1alpha one. */
static void test_answer_v1_wire_identical(void **state) {
  const mq_reflection_t *r = *state;
  Grpc__Reflection__V1__ServerReflectionRequest req1 = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req1.host = "h";
  req1.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req1.file_containing_symbol = "marquee.system.v1.EchoRequest";
  req_t req0 = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req0.host = "h";
  req0.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req0.file_containing_symbol = "marquee.system.v1.EchoRequest";

  mq_arena_t a;
  mq_arena_init(&a);
  resp_t *r0 = mq_arena_alloc(&a, sizeof *r0), *r1 = mq_arena_alloc(&a, sizeof *r1);
  mq_reflection_answer(r, &mq_reflection_v1alpha_descs, svcs, 2, &req0, r0, &a);
  mq_reflection_answer(r, &mq_reflection_v1_descs, svcs, 2, (const req_t *)(const void *)&req1, r1, &a);
  assert_ptr_equal(r1->base.descriptor, &grpc__reflection__v1__server_reflection_response__descriptor);
  assert_ptr_equal(r1->file_descriptor_response->base.descriptor,
                   &grpc__reflection__v1__file_descriptor_response__descriptor);
  size_t n0 = protobuf_c_message_get_packed_size(&r0->base), n1 = protobuf_c_message_get_packed_size(&r1->base);
  assert_int_equal(n0, n1);
  uint8_t *b0 = malloc(n0), *b1 = malloc(n1);
  protobuf_c_message_pack(&r0->base, b0);
  protobuf_c_message_pack(&r1->base, b1);
  assert_memory_equal(b0, b1, n0);
  Grpc__Reflection__V1__ServerReflectionResponse *u =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, n1, b1);
  assert_non_null(u);
  assert_string_equal(u->original_request->file_containing_symbol, "marquee.system.v1.EchoRequest");
  assert_string_equal(u->valid_host, "h");
  grpc__reflection__v1__server_reflection_response__free_unpacked(u, NULL);
  free(b0);
  free(b1);
  mq_arena_release(&a);
}

/* ---- synthetic sets: extensions, broken input ---------------------------------------- */

/* Packs a set of `n` files into a malloc'd buffer. */
static uint8_t *pack_set(Google__Protobuf__FileDescriptorProto **files, size_t n, size_t *len) {
  Google__Protobuf__FileDescriptorSet set = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_SET__INIT;
  set.n_file = n;
  set.file = files;
  *len = google__protobuf__file_descriptor_set__get_packed_size(&set);
  uint8_t *buf = malloc(*len ? *len : 1);
  assert_non_null(buf);
  google__protobuf__file_descriptor_set__pack(&set, buf);
  return buf;
}

static void test_synthetic_extensions(void **state) {
  (void)state;
  /* base.proto: package t; message Base { message Inner {} }
   * ext.proto:  package t.x; import base.proto; extend t.Base { int32 a = 100; }
   *             message Holder { extend t.Base { int32 b = 101; } } */
  Google__Protobuf__DescriptorProto inner = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
  inner.name = "Inner";
  Google__Protobuf__DescriptorProto *inner_p = &inner;
  Google__Protobuf__DescriptorProto base = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
  base.name = "Base";
  base.n_nested_type = 1;
  base.nested_type = &inner_p;
  Google__Protobuf__DescriptorProto *base_p = &base;
  Google__Protobuf__FileDescriptorProto f0 = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
  f0.name = "base.proto";
  f0.package = "t";
  f0.n_message_type = 1;
  f0.message_type = &base_p;

  Google__Protobuf__FieldDescriptorProto ea = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
  ea.name = "a";
  ea.has_number = 1;
  ea.number = 100;
  ea.extendee = ".t.Base";
  Google__Protobuf__FieldDescriptorProto eb = ea;
  eb.name = "b";
  eb.number = 101;
  Google__Protobuf__FieldDescriptorProto *ea_p = &ea, *eb_p = &eb;
  Google__Protobuf__DescriptorProto holder = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
  holder.name = "Holder";
  holder.n_extension = 1;
  holder.extension = &eb_p;
  Google__Protobuf__DescriptorProto *holder_p = &holder;
  char *deps[] = {"base.proto"};
  Google__Protobuf__FileDescriptorProto f1 = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
  f1.name = "ext.proto";
  f1.package = "t.x";
  f1.n_dependency = 1;
  f1.dependency = deps;
  f1.n_extension = 1;
  f1.extension = &ea_p;
  f1.n_message_type = 1;
  f1.message_type = &holder_p;

  Google__Protobuf__FileDescriptorProto *files[] = {&f1, &f0};
  size_t len;
  uint8_t *buf = pack_set(files, 2, &len);
  mq_reflection_t *r;
  mq_error_t err;
  assert_int_equal(mq_reflection_init_from(buf, len, &r, &err), MQ_OK);
  assert_int_equal(mq_reflection_find_symbol(r, "t.Base.Inner"), 1);
  assert_int_equal(mq_reflection_find_symbol(r, "t.x.a"), 0);
  assert_int_equal(mq_reflection_find_symbol(r, "t.x.Holder.b"), 0);
  assert_int_equal(mq_reflection_find_extension(r, "t.Base", 100), 0);
  assert_int_equal(mq_reflection_find_extension(r, "t.Base", 101), 0);
  assert_int_equal(mq_reflection_find_extension(r, "t.Base", 102), -1);
  const int *cl;
  assert_int_equal(mq_reflection_file_closure(r, 0, &cl), 2);
  assert_int_equal(cl[0], 0);
  assert_int_equal(cl[1], 1);

  req_t req = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  req.all_extension_numbers_of_type = "t.Base";
  resp_t *resp = roundtrip(r, &req);
  assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 2);
  assert_int_equal(resp->all_extension_numbers_response->extension_number[0], 100);
  assert_int_equal(resp->all_extension_numbers_response->extension_number[1], 101);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

  Grpc__Reflection__V1alpha__ExtensionRequest x = GRPC__REFLECTION__V1ALPHA__EXTENSION_REQUEST__INIT;
  x.containing_type = "t.Base";
  x.extension_number = 101;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  req.file_containing_extension = &x;
  resp = roundtrip(r, &req);
  assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 2);
  /* served bytes are the original slices, byte for byte */
  Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
      NULL, resp->file_descriptor_response->file_descriptor_proto[0].len,
      resp->file_descriptor_response->file_descriptor_proto[0].data);
  assert_string_equal(fd->name, "ext.proto");
  google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp, NULL);

  mq_reflection_free(r);
  free(buf);
}

static void test_broken_sets(void **state) {
  (void)state;
  mq_reflection_t *r = (mq_reflection_t *)(uintptr_t)1;
  mq_error_t err;
  static const uint8_t garbage[] = {0x0a, 0x7f, 0x01};
  assert_int_equal(mq_reflection_init_from(garbage, sizeof garbage, &r, &err), MQ_INTERNAL);
  assert_null(r);

  char *deps[] = {"missing.proto"};
  Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
  f.name = "a.proto";
  f.n_dependency = 1;
  f.dependency = deps;
  Google__Protobuf__FileDescriptorProto *files[] = {&f};
  size_t len;
  uint8_t *buf = pack_set(files, 1, &len);
  assert_int_equal(mq_reflection_init_from(buf, len, &r, &err), MQ_INTERNAL);
  assert_null(r);
  assert_non_null(strstr(err.message, "missing.proto"));
  free(buf);

  /* an empty set is valid and knows nothing */
  assert_int_equal(mq_reflection_init_from((const uint8_t *)"", 0, &r, &err), MQ_OK);
  assert_int_equal(mq_reflection_file_count(r), 0);
  assert_int_equal(mq_reflection_find_symbol(r, "a.B"), -1);
  assert_int_equal(mq_reflection_find_file(r, "a.proto"), -1);
  mq_reflection_free(r);
  mq_reflection_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_message_symbol),
      cmocka_unit_test(test_nested_symbol),
      cmocka_unit_test(test_service_and_method),
      cmocka_unit_test(test_file_by_name),
      cmocka_unit_test(test_transitive_deps),
      cmocka_unit_test(test_unknown_not_found),
      cmocka_unit_test(test_answer_list_services),
      cmocka_unit_test(test_answer_symbol_files),
      cmocka_unit_test(test_answer_file_by_name),
      cmocka_unit_test(test_answer_errors),
      cmocka_unit_test(test_answer_extension_numbers_empty),
      cmocka_unit_test(test_answer_v1_wire_identical),
  };
  const struct CMUnitTest standalone[] = {
      cmocka_unit_test(test_synthetic_extensions),
      cmocka_unit_test(test_broken_sets),
  };
  int failed = cmocka_run_group_tests_name("reflection (embedded set)", tests, setup, teardown);
  failed += cmocka_run_group_tests_name("reflection (synthetic sets)", standalone, NULL, NULL);
  return failed;
}
