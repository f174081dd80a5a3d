/*
 * test_dispatch.c — cmocka tests for the method tables: the descriptors
 * protoc-gen-marquee generates (gen/marquee/system/v1/system.mq.c) and
 * service registration in server/transport.c (mq_server_add_service, reached
 * through the generated <service>__mq_register).
 *
 * Covers: DiagnosticsService and SystemService rows carry the right call kind
 * (Echo UNARY, EchoStream SERVER_STREAMING, EchoCollect CLIENT_STREAMING,
 * EchoChat BIDI_STREAMING, the rest UNARY), full paths, names, indices, the
 * back pointer to their service, and the protobuf-c input/output descriptors;
 * and on a real (never started) server object: a complete SystemService table
 * is accepted and listed by mq_server_services; a table with a missing
 * handler, with an MQ_POLICY_UNSET row, with an out-of-range policy, a client-
 * streaming row missing on_end, a second registration of the same service,
 * and one hand-built table naming the same method twice are all refused (-1)
 * and leave the registered-service list unchanged; two different services
 * register side by side, listed in registration order.
 *
 * Invariant: the server is created with mq_server_create from a config loaded
 * by mq_config_load (MARQUEE_LISTEN=127.0.0.1:0, MARQUEE_WORKERS=2) and is
 * never started: nothing binds a port. Refusals log an error line to stderr.
 * Read next: core/mq_service.h, server/mq_server.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/mq_config.h"
#include "marquee/system/v1/system.mq-server.h"
#include "marquee/system/v1/system.mq.h"
#include "marquee/system/v1/system.pb-c.h"
#include "server/mq_server.h"

/* ---- generated descriptors ------------------------------------------------------------ */

typedef struct {
  const char *name;
  mq_method_kind_t kind;
  const ProtobufCMessageDescriptor *in, *out;
} expect_row_t;

static void check_service(const mq_service_desc_t *svc, const char *full_name, const expect_row_t *rows, unsigned n) {
  assert_string_equal(svc->full_name, full_name);
  assert_int_equal(svc->n_methods, n);
  for (unsigned i = 0; i < n; i++) {
    const mq_method_desc_t *m = &svc->methods[i];
    char path[256];
    snprintf(path, sizeof path, "/%s/%s", full_name, rows[i].name);
    assert_string_equal(m->path, path);
    assert_string_equal(m->name, rows[i].name);
    if (m->kind != rows[i].kind) fail_msg("%s: kind %d, want %d", m->path, (int)m->kind, (int)rows[i].kind);
    assert_ptr_equal(m->input, rows[i].in);
    assert_ptr_equal(m->output, rows[i].out);
    assert_int_equal(m->index, i);
    assert_ptr_equal(m->service, svc);
  }
}

static void test_diagnostics_descriptors(void **state) {
  (void)state;
  const expect_row_t rows[] = {
      {"Echo", MQ_KIND_UNARY, &marquee__system__v1__echo_request__descriptor,
       &marquee__system__v1__echo_response__descriptor},
      {"EchoStream", MQ_KIND_SERVER_STREAMING, &marquee__system__v1__echo_request__descriptor,
       &marquee__system__v1__echo_response__descriptor},
      {"EchoCollect", MQ_KIND_CLIENT_STREAMING, &marquee__system__v1__echo_request__descriptor,
       &marquee__system__v1__echo_collect_response__descriptor},
      {"EchoChat", MQ_KIND_BIDI_STREAMING, &marquee__system__v1__echo_request__descriptor,
       &marquee__system__v1__echo_response__descriptor},
      {"WhoAmI", MQ_KIND_UNARY, &marquee__system__v1__who_am_irequest__descriptor,
       &marquee__system__v1__who_am_iresponse__descriptor},
      {"AdminPing", MQ_KIND_UNARY, &marquee__system__v1__ping_request__descriptor,
       &marquee__system__v1__ping_response__descriptor},
      {"RecordNote", MQ_KIND_UNARY, &marquee__system__v1__record_note_request__descriptor,
       &marquee__system__v1__note__descriptor},
      {"GetNote", MQ_KIND_UNARY, &marquee__system__v1__get_note_request__descriptor,
       &marquee__system__v1__note__descriptor},
  };
  assert_int_equal(MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_N_METHODS, 8);
  check_service(&marquee__system__v1__diagnostics_service__mq_desc, "marquee.system.v1.DiagnosticsService", rows, 8);

  /* literal spot checks, independent of the loop above */
  const mq_method_desc_t *m = marquee__system__v1__diagnostics_service__mq_desc.methods;
  assert_string_equal(m[MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_ECHO].path,
                      "/marquee.system.v1.DiagnosticsService/Echo");
  assert_int_equal(m[MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_ECHO].kind, MQ_KIND_UNARY);
  assert_int_equal(m[MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_ECHO_STREAM].kind, MQ_KIND_SERVER_STREAMING);
  assert_int_equal(m[MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_ECHO_COLLECT].kind, MQ_KIND_CLIENT_STREAMING);
  assert_int_equal(m[MARQUEE__SYSTEM__V1__DIAGNOSTICS_SERVICE__MQ_ECHO_CHAT].kind, MQ_KIND_BIDI_STREAMING);
  assert_string_equal(m[0].input->name, "marquee.system.v1.EchoRequest");
  assert_string_equal(m[0].input->short_name, "EchoRequest");
  assert_string_equal(m[0].input->package_name, "marquee.system.v1");
  assert_string_equal(m[2].output->short_name, "EchoCollectResponse");
}

static void test_system_descriptors(void **state) {
  (void)state;
  const expect_row_t rows[] = {
      {"GetServerInfo", MQ_KIND_UNARY, &marquee__system__v1__get_server_info_request__descriptor,
       &marquee__system__v1__server_info__descriptor},
      {"Ping", MQ_KIND_UNARY, &marquee__system__v1__ping_request__descriptor,
       &marquee__system__v1__ping_response__descriptor},
  };
  assert_int_equal(MARQUEE__SYSTEM__V1__SYSTEM_SERVICE__MQ_N_METHODS, 2);
  check_service(&marquee__system__v1__system_service__mq_desc, "marquee.system.v1.SystemService", rows, 2);
}

/* ---- registration on a real server object --------------------------------------------- */

typedef struct {
  mq_config_t cfg;
  mq_server_t *srv;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f) return -1;
  char *envp[] = {"MARQUEE_LISTEN=127.0.0.1:0", "MARQUEE_WORKERS=2", NULL};
  mq_error_t err;
  if (mq_config_load(&f->cfg, envp, &err) != MQ_OK) {
    free(f);
    return -1;
  }
  mq_server_opts_t opts;
  memset(&opts, 0, sizeof opts);
  opts.cfg = &f->cfg;
  f->srv = mq_server_create(&opts, &err);
  if (!f->srv) {
    mq_config_free(&f->cfg);
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mq_server_destroy(f->srv);
  mq_config_free(&f->cfg);
  free(f);
  return 0;
}

static mq_code_t dummy_info(mq_call_t *call, const Marquee__System__V1__GetServerInfoRequest *req,
                            Marquee__System__V1__ServerInfo *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_ping(mq_call_t *call, const Marquee__System__V1__PingRequest *req,
                            Marquee__System__V1__PingResponse *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_echo(mq_call_t *call, const Marquee__System__V1__EchoRequest *req,
                            Marquee__System__V1__EchoResponse *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_stream(mq_call_t *call, const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_on_msg(mq_call_t *call, const Marquee__System__V1__EchoRequest *req, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_collect_end(mq_call_t *call, Marquee__System__V1__EchoCollectResponse *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_chat_end(mq_call_t *call, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_whoami(mq_call_t *call, const Marquee__System__V1__WhoAmIRequest *req,
                              Marquee__System__V1__WhoAmIResponse *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_note(mq_call_t *call, const Marquee__System__V1__RecordNoteRequest *req,
                            Marquee__System__V1__Note *resp, mq_error_t *err) {
  return MQ_OK;
}
static mq_code_t dummy_get_note(mq_call_t *call, const Marquee__System__V1__GetNoteRequest *req,
                                Marquee__System__V1__Note *resp, mq_error_t *err) {
  return MQ_OK;
}

/* Tables must outlive the server: static storage. */
static const marquee__system__v1__system_service_handlers_t system_complete = {
    .get_server_info = {dummy_info, MQ_POLICY_PUBLIC, 0},
    .ping = {dummy_ping, MQ_POLICY_PUBLIC, MQ_RUN_INLINE},
};
static const marquee__system__v1__system_service_handlers_t system_missing_handler = {
    .get_server_info = {dummy_info, MQ_POLICY_PUBLIC, 0},
    .ping = {NULL, MQ_POLICY_PUBLIC, 0},
};
static const marquee__system__v1__system_service_handlers_t system_unset_policy = {
    .get_server_info = {dummy_info, MQ_POLICY_UNSET, 0},
    .ping = {dummy_ping, MQ_POLICY_PUBLIC, 0},
};
static const marquee__system__v1__system_service_handlers_t system_bad_policy = {
    .get_server_info = {dummy_info, MQ_POLICY_PUBLIC, 0},
    .ping = {dummy_ping, MQ_POLICY_COUNT_, 0},
};
static const marquee__system__v1__diagnostics_service_handlers_t diag_complete = {
    .echo = {dummy_echo, MQ_POLICY_PUBLIC, 0},
    .echo_stream = {dummy_stream, MQ_POLICY_PUBLIC, 0},
    .echo_collect = {dummy_on_msg, dummy_collect_end, MQ_POLICY_PUBLIC, 0},
    .echo_chat = {dummy_on_msg, dummy_chat_end, MQ_POLICY_PUBLIC, 0},
    .who_am_i = {dummy_whoami, MQ_POLICY_AUTHENTICATED, 0},
    .admin_ping = {dummy_ping, MQ_POLICY_ADMIN, 0},
    .record_note = {dummy_note, MQ_POLICY_AUTHENTICATED, 0},
    .get_note = {dummy_get_note, MQ_POLICY_AUTHENTICATED, 0},
};
static const marquee__system__v1__diagnostics_service_handlers_t diag_collect_no_end = {
    .echo = {dummy_echo, MQ_POLICY_PUBLIC, 0},
    .echo_stream = {dummy_stream, MQ_POLICY_PUBLIC, 0},
    .echo_collect = {dummy_on_msg, NULL, MQ_POLICY_PUBLIC, 0},
    .echo_chat = {dummy_on_msg, dummy_chat_end, MQ_POLICY_PUBLIC, 0},
    .who_am_i = {dummy_whoami, MQ_POLICY_AUTHENTICATED, 0},
    .admin_ping = {dummy_ping, MQ_POLICY_ADMIN, 0},
    .record_note = {dummy_note, MQ_POLICY_AUTHENTICATED, 0},
    .get_note = {dummy_get_note, MQ_POLICY_AUTHENTICATED, 0},
};

static unsigned services(const mq_server_t *srv, const mq_service_desc_t *const **out) {
  const mq_service_desc_t *const *list = NULL;
  unsigned n = mq_server_services(srv, &list);
  if (out) *out = list;
  return n;
}

static void test_register_complete(void **state) {
  fixture_t *f = *state;
  assert_int_equal(services(f->srv, NULL), 0);
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), 0);
  const mq_service_desc_t *const *list = NULL;
  assert_int_equal(services(f->srv, &list), 1);
  assert_ptr_equal(list[0], &marquee__system__v1__system_service__mq_desc);
}

static void test_register_missing_handler(void **state) {
  fixture_t *f = *state;
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_missing_handler), -1);
  assert_int_equal(services(f->srv, NULL), 0);
  /* nothing half-registered: the complete table is still accepted afterwards */
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), 0);
  assert_int_equal(services(f->srv, NULL), 1);
}

static void test_register_unset_policy(void **state) {
  fixture_t *f = *state;
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_unset_policy), -1);
  assert_int_equal(services(f->srv, NULL), 0);
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_bad_policy), -1);
  assert_int_equal(services(f->srv, NULL), 0);
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), 0);
}

static void test_register_twice(void **state) {
  fixture_t *f = *state;
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), 0);
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), -1);
  assert_int_equal(services(f->srv, NULL), 1);
}

static void test_register_streaming_tables(void **state) {
  fixture_t *f = *state;
  assert_int_equal(marquee__system__v1__diagnostics_service__mq_register(f->srv, &diag_collect_no_end), -1);
  assert_int_equal(services(f->srv, NULL), 0);
  assert_int_equal(marquee__system__v1__diagnostics_service__mq_register(f->srv, &diag_complete), 0);
  assert_int_equal(marquee__system__v1__system_service__mq_register(f->srv, &system_complete), 0);
  const mq_service_desc_t *const *list = NULL;
  assert_int_equal(services(f->srv, &list), 2);
  assert_ptr_equal(list[0], &marquee__system__v1__diagnostics_service__mq_desc);
  assert_ptr_equal(list[1], &marquee__system__v1__system_service__mq_desc);
  assert_int_equal(marquee__system__v1__diagnostics_service__mq_register(f->srv, &diag_complete), -1);
  assert_int_equal(services(f->srv, NULL), 2);
}

/* Same method twice inside ONE table (hand-built rows, not via the generator). */
static void test_register_duplicate_row_in_one_table(void **state) {
  fixture_t *f = *state;
  const mq_method_desc_t *ping = &marquee__system__v1__system_service__mq_desc.methods[1];
  mq_method_binding_t rows[2];
  memset(rows, 0, sizeof rows);
  for (int i = 0; i < 2; i++) {
    rows[i].method = ping;
    rows[i].impl = &system_complete;
    rows[i].present = true;
    rows[i].policy = MQ_POLICY_PUBLIC;
  }
  assert_int_equal(mq_server_add_service(f->srv, &marquee__system__v1__system_service__mq_desc, rows, 2), -1);
  assert_int_equal(services(f->srv, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_diagnostics_descriptors),
      cmocka_unit_test(test_system_descriptors),
      cmocka_unit_test_setup_teardown(test_register_complete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_missing_handler, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_unset_policy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_streaming_tables, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_duplicate_row_in_one_table, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
