/*
 * test_transport.c — the gRPC platform end to end, against a real
 * marquee-server process on the real local stack (FerretDB + Kafka), driven
 * through the C client library: every call kind, metadata, deadlines,
 * unknown methods, size limits, malformed messages, authentication and
 * policy refusals, health, metrics, a second server on a busy port, and a
 * graceful SIGTERM drain. One server serves the shared group; tests that
 * need their own server start one.
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

#include "grpc/health/v1/health.mq-client.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/system/v1/system.mq-client.h"

static mq_test_proc_t srv;
static mq_client_t *cl;

static int group_setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_MAX_RECV_BYTES=65536", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  cl = mq_test_client(&srv);
  return cl ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  int rc = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  if (rc != 0) fprintf(stderr, "marquee-server exited with %d (non-zero: leak or crash)\n", rc);
  return rc == 0 ? 0 : -1;
}

static void test_unary_ping_and_metadata(void **state) {
  (void)state;
  Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  req.payload.data = (uint8_t *)"hello";
  req.payload.len = 5;
  Marquee__System__V1__PingResponse *resp = NULL;
  char rid[80] = "", tid[80] = "";
  mq_call_opts_t o = {.request_id = "test-req-42",
                      .out_request_id = rid,
                      .out_request_id_len = sizeof rid,
                      .out_trace_id = tid,
                      .out_trace_id_len = sizeof tid};
  mq_error_t err;
  assert_int_equal(marquee__system__v1__system_service__ping__call(cl, &req, &resp, &o, &err), MQ_OK);
  assert_int_equal(resp->payload.len, 5);
  assert_memory_equal(resp->payload.data, "hello", 5);
  assert_string_equal(rid, "test-req-42"); /* echoed */
  assert_int_equal(strlen(tid), 32);       /* generated trace id */
  marquee__system__v1__ping_response__free_unpacked(resp, NULL);

  /* a traceparent's trace id is adopted */
  mq_md_kv_t md[] = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0}};
  mq_call_opts_t o2 = {.metadata = md, .n_metadata = 1, .out_trace_id = tid, .out_trace_id_len = sizeof tid};
  assert_int_equal(marquee__system__v1__system_service__ping__call(cl, &req, &resp, &o2, &err), MQ_OK);
  assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
  marquee__system__v1__ping_response__free_unpacked(resp, NULL);
}

static void test_server_info(void **state) {
  (void)state;
  Marquee__System__V1__GetServerInfoRequest req = MARQUEE__SYSTEM__V1__GET_SERVER_INFO_REQUEST__INIT;
  Marquee__System__V1__ServerInfo *info = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__system_service__get_server_info__call(cl, &req, &info, NULL, &err), MQ_OK);
  assert_string_equal(info->version, MQ_VERSION);
  bool has_health = false;
  for (size_t i = 0; i < info->n_services; i++) has_health |= !strcmp(info->services[i], "grpc.health.v1.Health");
  assert_true(has_health);
  marquee__system__v1__server_info__free_unpacked(info, NULL);
}

static void test_server_streaming(void **state) {
  (void)state;
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_stream__open(cl, NULL, &st, &err), MQ_OK);
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"tick";
  req.repeat = 200; /* more than the server's stream queue: exercises backpressure */
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_stream__send(st, &req, &err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  uint32_t n = 0;
  for (;;) {
    Marquee__System__V1__EchoResponse *m = NULL;
    mq_code_t rc = marquee__system__v1__diagnostics_service__echo_stream__recv(st, &m, &err);
    if (!m) {
      assert_int_equal(rc, MQ_OK);
      break;
    }
    n++;
    assert_int_equal(m->sequence, n);
    assert_string_equal(m->message, "tick");
    marquee__system__v1__echo_response__free_unpacked(m, NULL);
  }
  assert_int_equal(n, 200);
  mq_client_stream_free(st);
}

static void test_client_streaming(void **state) {
  (void)state;
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_collect__open(cl, NULL, &st, &err), MQ_OK);
  const char *parts[] = {"al", "pha", "bet"};
  for (int i = 0; i < 3; i++) {
    Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
    req.message = (char *)parts[i];
    assert_int_equal(mq_client_stream_send(st, &req.base, &err), MQ_OK);
  }
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  Marquee__System__V1__EchoCollectResponse *resp = NULL;
  assert_int_equal(mq_client_stream_recv(st, (ProtobufCMessage **)&resp, &err), MQ_OK);
  assert_non_null(resp);
  assert_string_equal(resp->joined, "alphabet");
  assert_int_equal(resp->count, 3);
  marquee__system__v1__echo_collect_response__free_unpacked(resp, NULL);
  assert_int_equal(mq_client_stream_finish(st, &err), MQ_OK);
  mq_client_stream_free(st);
}

static void test_bidi_streaming(void **state) {
  (void)state;
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_chat__open(cl, NULL, &st, &err), MQ_OK);
  for (uint32_t i = 1; i <= 5; i++) {
    char text[16];
    snprintf(text, sizeof text, "m%u", i);
    Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
    req.message = text;
    assert_int_equal(marquee__system__v1__diagnostics_service__echo_chat__send(st, &req, &err), MQ_OK);
    Marquee__System__V1__EchoResponse *m = NULL;
    assert_int_equal(marquee__system__v1__diagnostics_service__echo_chat__recv(st, &m, &err), MQ_OK);
    assert_non_null(m);
    assert_string_equal(m->message, text); /* answered before the next message is sent */
    assert_int_equal(m->sequence, i);
    marquee__system__v1__echo_response__free_unpacked(m, NULL);
  }
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  assert_int_equal(mq_client_stream_finish(st, &err), MQ_OK);
  mq_client_stream_free(st);
}

static void test_deadline_exceeded(void **state) {
  (void)state;
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"slow";
  req.delay_ms = 3000;
  Marquee__System__V1__EchoResponse *resp = NULL;
  mq_call_opts_t o = {.deadline_ms = 300};
  mq_error_t err;
  int64_t t0 = mq_test_now_ms();
  assert_int_equal(marquee__system__v1__diagnostics_service__echo__call(cl, &req, &resp, &o, &err),
                   MQ_DEADLINE_EXCEEDED);
  assert_null(resp);
  assert_true(mq_test_now_ms() - t0 < 2500); /* ended by the deadline, not by the delay */
}

static void test_unknown_method_unimplemented(void **state) {
  (void)state;
  void *out = NULL;
  size_t len = 0;
  mq_error_t err;
  mq_code_t rc = mq_client_unary_raw(cl, "/marquee.nothing.v1.Nope/Missing", "", 0, &out, &len, NULL, &err);
  assert_int_equal(rc, MQ_UNIMPLEMENTED);
  assert_non_null(strstr(err.message, "Missing"));
  free(out);
}

static void test_oversized_message_resource_exhausted(void **state) {
  (void)state;
  size_t n = 100 * 1024; /* server limit in this suite: 64 KiB */
  Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  req.payload.data = calloc(1, n);
  req.payload.len = n;
  Marquee__System__V1__PingResponse *resp = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__system_service__ping__call(cl, &req, &resp, NULL, &err), MQ_RESOURCE_EXHAUSTED);
  free(req.payload.data);
}

static void test_malformed_protobuf_invalid_argument(void **state) {
  (void)state;
  /* field 1 declared as a 100-byte length-delimited value with 2 bytes present */
  const unsigned char garbage[] = {0x0a, 0x64, 0x41, 0x42};
  void *out = NULL;
  size_t len = 0;
  mq_error_t err;
  mq_code_t rc =
      mq_client_unary_raw(cl, "/marquee.system.v1.SystemService/Ping", garbage, sizeof garbage, &out, &len, NULL, &err);
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "PingRequest"));
  free(out);
}

static void test_validation_names_field(void **state) {
  (void)state;
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"x";
  req.delay_ms = 999999;
  Marquee__System__V1__EchoResponse *resp = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__echo__call(cl, &req, &resp, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "delay_ms");
  req.delay_ms = 0;
  req.message = (char *)"bad \xC0\xAF utf8";
  assert_int_equal(marquee__system__v1__diagnostics_service__echo__call(cl, &req, &resp, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "message");
}

static void test_auth_and_policy(void **state) {
  (void)state;
  Marquee__System__V1__WhoAmIRequest req = MARQUEE__SYSTEM__V1__WHO_AM_IREQUEST__INIT;
  Marquee__System__V1__WhoAmIResponse *me = NULL;
  mq_error_t err;
  /* no token */
  assert_int_equal(marquee__system__v1__diagnostics_service__who_am_i__call(cl, &req, &me, NULL, &err),
                   MQ_UNAUTHENTICATED);
  /* garbage and tampered tokens */
  mq_call_opts_t bad = {.bearer_token = "not-a-jwt"};
  assert_int_equal(marquee__system__v1__diagnostics_service__who_am_i__call(cl, &req, &me, &bad, &err),
                   MQ_UNAUTHENTICATED);
  char *tok = mq_test_token("user-1", MQ_ROLE_ATTENDEE);
  char *tampered = strdup(tok);
  char *dot = strchr(tampered, '.');
  dot[2] = dot[2] == 'A' ? 'B' : 'A';
  mq_call_opts_t t = {.bearer_token = tampered};
  assert_int_equal(marquee__system__v1__diagnostics_service__who_am_i__call(cl, &req, &me, &t, &err),
                   MQ_UNAUTHENTICATED);
  /* a malformed authorization header */
  mq_md_kv_t md[] = {{"authorization", "Basic dXNlcjpwYXNz", 0}};
  mq_call_opts_t basic = {.metadata = md, .n_metadata = 1};
  assert_int_equal(marquee__system__v1__diagnostics_service__who_am_i__call(cl, &req, &me, &basic, &err),
                   MQ_UNAUTHENTICATED);
  /* a valid token */
  mq_call_opts_t good = {.bearer_token = tok};
  assert_int_equal(marquee__system__v1__diagnostics_service__who_am_i__call(cl, &req, &me, &good, &err), MQ_OK);
  assert_string_equal(me->subject, "user-1");
  assert_int_equal(me->n_roles, 1);
  assert_string_equal(me->roles[0], "attendee");
  marquee__system__v1__who_am_iresponse__free_unpacked(me, NULL);

  /* admin-only method: attendee refused, admin allowed, anonymous unauthenticated */
  Marquee__System__V1__PingRequest p = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  Marquee__System__V1__PingResponse *pr = NULL;
  assert_int_equal(marquee__system__v1__diagnostics_service__admin_ping__call(cl, &p, &pr, &good, &err),
                   MQ_PERMISSION_DENIED);
  assert_int_equal(marquee__system__v1__diagnostics_service__admin_ping__call(cl, &p, &pr, NULL, &err),
                   MQ_UNAUTHENTICATED);
  char *admin = mq_test_token("admin-1", MQ_ROLE_ADMIN);
  mq_call_opts_t ao = {.bearer_token = admin};
  assert_int_equal(marquee__system__v1__diagnostics_service__admin_ping__call(cl, &p, &pr, &ao, &err), MQ_OK);
  marquee__system__v1__ping_response__free_unpacked(pr, NULL);
  free(tok);
  free(tampered);
  free(admin);
}

static void test_health_check_and_watch(void **state) {
  (void)state;
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Grpc__Health__V1__HealthCheckResponse *resp = NULL;
  mq_error_t err;
  /* the server reports SERVING once its probe saw MongoDB */
  int64_t until = mq_test_now_ms() + 10000;
  Grpc__Health__V1__HealthCheckResponse__ServingStatus st = 0;
  while (mq_test_now_ms() < until) {
    assert_int_equal(grpc__health__v1__health__check__call(cl, &req, &resp, NULL, &err), MQ_OK);
    st = resp->status;
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    if (st == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) break;
    mq_test_sleep_ms(200);
  }
  assert_int_equal(st, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  req.service = (char *)"no.such.Service";
  assert_int_equal(grpc__health__v1__health__check__call(cl, &req, &resp, NULL, &err), MQ_NOT_FOUND);

  req.service = (char *)"marquee.system.v1.SystemService";
  mq_client_stream_t *ws = NULL;
  mq_call_opts_t o = {.deadline_ms = 5000};
  assert_int_equal(grpc__health__v1__health__watch__open(cl, &o, &ws, &err), MQ_OK);
  assert_int_equal(grpc__health__v1__health__watch__send(ws, &req, &err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(ws, &err), MQ_OK);
  assert_int_equal(grpc__health__v1__health__watch__recv(ws, &resp, &err), MQ_OK);
  assert_non_null(resp);
  assert_int_equal(resp->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
  mq_client_stream_cancel(ws);
  mq_client_stream_free(ws);
}

static void test_metrics_and_probes(void **state) {
  (void)state;
  int status = 0;
  char *body = mq_test_http_get(srv.http, "/metrics", &status);
  assert_non_null(body);
  assert_int_equal(status, 200);
  assert_non_null(
      strstr(body, "marquee_rpc_requests_total{method=\"/marquee.system.v1.SystemService/Ping\",code=\"OK\"}"));
  assert_non_null(strstr(body, "marquee_rpc_duration_seconds_bucket{method=\"/marquee.system.v1.SystemService/Ping\""));
  assert_non_null(strstr(body, "code=\"UNAUTHENTICATED\""));
  assert_non_null(strstr(body, "marquee_worker_queue_depth"));
  assert_non_null(strstr(body, "marquee_dependency_up{dependency=\"mongodb\"} 1"));
  assert_non_null(strstr(body, "marquee_outbox_lag_seconds"));
  free(body);
  body = mq_test_http_get(srv.http, "/healthz", &status);
  assert_int_equal(status, 200);
  free(body);
  body = mq_test_http_get(srv.http, "/readyz", &status);
  assert_int_equal(status, 200);
  assert_non_null(strstr(body, "\"mongodb\":true"));
  free(body);
  body = mq_test_http_get(srv.http, "/nope", &status);
  assert_int_equal(status, 404);
  free(body);
}

static void test_second_server_on_busy_port_fails(void **state) {
  (void)state;
  char listen[96];
  snprintf(listen, sizeof listen, "MARQUEE_LISTEN=%s", srv.grpc);
  const char *env[] = {listen, NULL};
  mq_test_proc_t second;
  assert_int_not_equal(mq_test_server_start(&second, NULL, env), 0); /* never READY */
}

/* ---- graceful shutdown ------------------------------------------------------ */

typedef struct {
  mq_client_t *cl;
  mq_code_t rc;
  char message[64];
} slow_call_t;

static void *slow_call(void *arg) {
  slow_call_t *s = arg;
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"drained";
  req.delay_ms = 1500;
  Marquee__System__V1__EchoResponse *resp = NULL;
  mq_call_opts_t o = {.deadline_ms = 10000};
  mq_error_t err;
  s->rc = marquee__system__v1__diagnostics_service__echo__call(s->cl, &req, &resp, &o, &err);
  if (resp) {
    snprintf(s->message, sizeof s->message, "%s", resp->message);
    marquee__system__v1__echo_response__free_unpacked(resp, NULL);
  }
  return NULL;
}

static void test_sigterm_drains_in_flight_call(void **state) {
  (void)state;
  mq_test_proc_t s2;
  assert_int_equal(mq_test_server_start(&s2, NULL, NULL), 0);
  mq_client_t *c2 = mq_test_client(&s2);
  slow_call_t sc = {c2, MQ_UNKNOWN, ""};
  pthread_t th;
  pthread_create(&th, NULL, slow_call, &sc);
  mq_test_sleep_ms(400); /* the call is in its delay */
  int64_t t0 = mq_test_now_ms();
  int exit_code = mq_test_proc_stop(&s2, SIGTERM, 20000);
  pthread_join(th, NULL);
  assert_int_equal(sc.rc, MQ_OK); /* completed, not cancelled */
  assert_string_equal(sc.message, "drained");
  assert_int_equal(exit_code, 0);
  assert_true(mq_test_now_ms() - t0 < 6000);
  mq_client_destroy(c2);
  mq_test_drop_db(NULL, s2.db);
}

/* ---- cancellation and overload ---------------------------------------------- */

static double metric_value(const char *hostport, const char *name) {
  int status = 0;
  char *body = mq_test_http_get(hostport, "/metrics", &status);
  double v = -1;
  char *p = body ? strstr(body, name) : NULL;
  if (p && p[strlen(name)] == ' ') v = atof(p + strlen(name) + 1);
  free(body);
  return v;
}

static void test_client_cancels_server_stream(void **state) {
  (void)state;
  mq_client_stream_t *st = NULL;
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_stream__open(cl, NULL, &st, &err), MQ_OK);
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"long";
  req.repeat = 10000;
  req.delay_ms = 10; /* would take 100 s */
  assert_int_equal(marquee__system__v1__diagnostics_service__echo_stream__send(st, &req, &err), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(st, &err), MQ_OK);
  for (int i = 0; i < 3; i++) {
    Marquee__System__V1__EchoResponse *m = NULL;
    assert_int_equal(marquee__system__v1__diagnostics_service__echo_stream__recv(st, &m, &err), MQ_OK);
    assert_non_null(m);
    marquee__system__v1__echo_response__free_unpacked(m, NULL);
  }
  mq_client_stream_cancel(st);
  mq_client_stream_free(st);
  /* the server notices, stops the handler and frees the call */
  int64_t until = mq_test_now_ms() + 5000;
  double live = -1;
  while (mq_test_now_ms() < until && (live = metric_value(srv.http, "marquee_live_calls")) != 0) mq_test_sleep_ms(50);
  assert_true(live == 0);
}

typedef struct {
  mq_client_t *cl;
  mq_code_t rc;
} busy_call_t;

static void *busy_call(void *arg) {
  busy_call_t *b = arg;
  Marquee__System__V1__EchoRequest req = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  req.message = (char *)"busy";
  req.delay_ms = 1000;
  Marquee__System__V1__EchoResponse *resp = NULL;
  mq_error_t err;
  b->rc = marquee__system__v1__diagnostics_service__echo__call(b->cl, &req, &resp, NULL, &err);
  if (resp) marquee__system__v1__echo_response__free_unpacked(resp, NULL);
  return NULL;
}

static void test_overload_answers_unavailable(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_WORKERS=1", "MARQUEE_WORKER_QUEUE=1", NULL};
  mq_test_proc_t s4;
  assert_int_equal(mq_test_server_start(&s4, NULL, env), 0);
  mq_client_t *c4 = mq_test_client(&s4);
  enum { N = 4 };
  busy_call_t b[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    b[i] = (busy_call_t){c4, MQ_UNKNOWN};
    pthread_create(&th[i], NULL, busy_call, &b[i]);
  }
  int ok = 0, overloaded = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    ok += b[i].rc == MQ_OK;
    overloaded += b[i].rc == MQ_UNAVAILABLE;
  }
  /* at most one runs and one waits (1 worker, queue of 1); every other call is
   * refused at once with UNAVAILABLE ("overloaded; retry with backoff") */
  assert_int_equal(ok + overloaded, N);
  assert_true(ok >= 1 && ok <= 2);
  assert_true(overloaded >= N - 2);
  mq_client_destroy(c4);
  assert_int_equal(mq_test_proc_stop(&s4, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, s4.db);
}

/* ---- TLS --------------------------------------------------------------------- */

static void test_tls_when_configured(void **state) {
  (void)state;
  char dir[64], cmd[512], cert[96], key[96], cert_kv[128], key_kv[128];
  snprintf(dir, sizeof dir, "/tmp/mq-tls-%d", (int)getpid());
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
           "-subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1",
           dir, key, cert);
  assert_int_equal(system(cmd), 0);
  snprintf(cert_kv, sizeof cert_kv, "MARQUEE_TLS_CERT=%s", cert);
  snprintf(key_kv, sizeof key_kv, "MARQUEE_TLS_KEY=%s", key);
  const char *env[] = {cert_kv, key_kv, NULL};
  mq_test_proc_t s3;
  assert_int_equal(mq_test_server_start(&s3, NULL, env), 0);

  mq_client_opts_t o = {.target = s3.grpc, .tls_ca_file = cert, .tls_server_name = "localhost"};
  mq_client_t *tls = NULL;
  mq_error_t err;
  assert_int_equal(mq_client_create(&o, &tls, &err), MQ_OK);
  Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  Marquee__System__V1__PingResponse *resp = NULL;
  assert_int_equal(marquee__system__v1__system_service__ping__call(tls, &req, &resp, NULL, &err), MQ_OK);
  marquee__system__v1__ping_response__free_unpacked(resp, NULL);
  mq_client_destroy(tls);

  /* a plaintext client cannot talk to the TLS port */
  mq_client_t *plain = mq_test_client(&s3);
  mq_call_opts_t co = {.deadline_ms = 2000};
  assert_int_equal(marquee__system__v1__system_service__ping__call(plain, &req, &resp, &co, &err), MQ_UNAVAILABLE);
  mq_client_destroy(plain);
  assert_int_equal(mq_test_proc_stop(&s3, SIGTERM, 20000), 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  mq_test_drop_db(NULL, s3.db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_ping_and_metadata),
      cmocka_unit_test(test_server_info),
      cmocka_unit_test(test_server_streaming),
      cmocka_unit_test(test_client_streaming),
      cmocka_unit_test(test_bidi_streaming),
      cmocka_unit_test(test_deadline_exceeded),
      cmocka_unit_test(test_unknown_method_unimplemented),
      cmocka_unit_test(test_oversized_message_resource_exhausted),
      cmocka_unit_test(test_malformed_protobuf_invalid_argument),
      cmocka_unit_test(test_validation_names_field),
      cmocka_unit_test(test_auth_and_policy),
      cmocka_unit_test(test_health_check_and_watch),
      cmocka_unit_test(test_metrics_and_probes),
      cmocka_unit_test(test_second_server_on_busy_port_fails),
      cmocka_unit_test(test_sigterm_drains_in_flight_call),
      cmocka_unit_test(test_client_cancels_server_stream),
      cmocka_unit_test(test_overload_answers_unavailable),
      cmocka_unit_test(test_tls_when_configured),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
