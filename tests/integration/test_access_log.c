/*
 * test_access_log.c — the access log tells the truth (real marquee-server,
 * its JSON log captured): a call ended by its deadline is logged as
 * DEADLINE_EXCEEDED (what the client got), not as the handler's late
 * answer; `code` is a gRPC status name, with the application reason beside
 * it; business refusals log at info and client mistakes at warn.
 *
 * Read next: server/mq_interceptors.c (mq_access_log_level), docs/ERRORS.md.
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
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/system/v1/system.mq-client.h"

/* The log line of the access log for `method` whose request id is `rid`
 * (a copy, caller frees), or NULL. */
static char *rpc_line(const char *log, const char *rid) {
  char needle[96];
  snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", rid);
  for (const char *p = log; p && *p;) {
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char *line = strndup(p, n);
    if (strstr(line, "\"event\":\"rpc\"") && strstr(line, needle)) return line;
    free(line);
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

static void test_access_log_truth(void **state) {
  (void)state;
  char log_path[96], log_kv[128];
  snprintf(log_path, sizeof log_path, "/tmp/mq-access-%d.jsonl", (int)getpid());
  snprintf(log_kv, sizeof log_kv, "MARQUEE_TEST_STDERR=%s", log_path);
  const char *env[] = {"MARQUEE_LOG_LEVEL=info", "MARQUEE_ACCESS_LOG=all", log_kv, NULL};
  mq_test_proc_t srv;
  assert_int_equal(mq_test_server_start(&srv, NULL, env), 0);
  mq_client_t *cl = mq_test_client(&srv);
  mq_error_t err;

  /* 1. the deadline passes while the handler sleeps */
  Marquee__System__V1__EchoRequest slow = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  slow.message = (char *)"slow";
  slow.delay_ms = 1500;
  Marquee__System__V1__EchoResponse *resp = NULL;
  mq_call_opts_t o1 = {.deadline_ms = 200, .request_id = "al-deadline"};
  assert_int_equal(marquee__system__v1__diagnostics_service__echo__call(cl, &slow, &resp, &o1, &err),
                   MQ_DEADLINE_EXCEEDED);
  /* 2. a bad request */
  Marquee__System__V1__EchoRequest bad = MARQUEE__SYSTEM__V1__ECHO_REQUEST__INIT;
  bad.message = (char *)"x";
  bad.delay_ms = 999999;
  mq_call_opts_t o2 = {.request_id = "al-invalid"};
  assert_int_equal(marquee__system__v1__diagnostics_service__echo__call(cl, &bad, &resp, &o2, &err),
                   MQ_INVALID_ARGUMENT);
  /* 3. a business refusal: no such event */
  Marquee__Catalog__V1__GetEventRequest ge = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  ge.event_id = (char *)"6f1c1b7e-8a55-4d6a-9a55-0a1e5a1e5a1e";
  Marquee__Catalog__V1__Event *ev = NULL;
  mq_call_opts_t o3 = {.request_id = "al-notfound"};
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(cl, &ge, &ev, &o3, &err), MQ_NOT_FOUND);

  mq_test_sleep_ms(2000); /* the slow handler finishes after its deadline */
  mq_client_destroy(cl);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 15000), 0);
  char *log = mq_test_slurp(log_path);
  assert_non_null(log);

  char *l = rpc_line(log, "al-deadline");
  assert_non_null(l);
  assert_non_null(strstr(l, "\"code\":\"DEADLINE_EXCEEDED\""));
  assert_non_null(strstr(l, "\"grpc_status\":4"));
  assert_non_null(strstr(l, "\"level\":\"warn\""));
  free(l);

  l = rpc_line(log, "al-invalid");
  assert_non_null(l);
  assert_non_null(strstr(l, "\"code\":\"INVALID_ARGUMENT\""));
  assert_non_null(strstr(l, "\"level\":\"warn\""));
  free(l);

  l = rpc_line(log, "al-notfound");
  assert_non_null(l);
  assert_non_null(strstr(l, "\"code\":\"NOT_FOUND\""));
  assert_non_null(strstr(l, "\"reason\":\"NOT_FOUND\""));
  assert_non_null(strstr(l, "\"level\":\"info\"")); /* expected, not a warning */
  free(l);

  /* no line names an application code where the gRPC status name belongs */
  assert_null(strstr(log, "\"code\":\"RATE_LIMITED\""));
  assert_null(strstr(log, "\"code\":\"STORE_UNAVAILABLE\""));
  free(log);
  unlink(log_path);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_access_log_truth)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
