/*
 * loadgen.c — closed-loop gRPC load generator on the C core for bench/run.sh.
 * One thread, one completion queue, one channel; keeps exactly N unary calls
 * in flight (each completion immediately starts the next), records every
 * latency in a 1 µs-resolution histogram, and after a warm-up measures for a
 * fixed duration. The request is a marquee.system.v1.PingRequest with a
 * 16-byte payload (or any method/bytes: see flags).
 *
 * Usage: mq-loadgen --target HOST:PORT [--concurrency 64] [--seconds 5]
 *                   [--warmup 1] [--method /pkg.Svc/M] [--token T]
 * Output: one JSON line {"qps":…,"p50_us":…,"p99_us":…,"ok":…,"errors":…}
 * (errors are counted, not timed: latency percentiles are of OK calls).
 */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "marquee/system/v1/system.pb-c.h"

#define HIST_US 2000000 /* 2 s at 1 µs resolution */

typedef struct {
  grpc_call *call;
  grpc_metadata_array init_md, trail_md;
  grpc_byte_buffer *recv, *sent;
  grpc_status_code status;
  grpc_slice details;
  int64_t start_ns;
} slot_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static grpc_channel *ch;
static grpc_completion_queue *cq;
static void *method_handle;
static grpc_slice req_slice;
static grpc_metadata auth_md;
static size_t n_md;

static void start(slot_t *s) {
  memset(s, 0, sizeof *s);
  grpc_metadata_array_init(&s->init_md);
  grpc_metadata_array_init(&s->trail_md);
  s->start_ns = now_ns();
  s->call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_handle,
                                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_byte_buffer *bb = s->sent = grpc_raw_byte_buffer_create(&req_slice, 1);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = n_md;
  ops[0].data.send_initial_metadata.metadata = n_md ? &auth_md : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &s->recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &s->trail_md;
  ops[5].data.recv_status_on_client.status = &s->status;
  ops[5].data.recv_status_on_client.status_details = &s->details;
  if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
    fprintf(stderr, "start_batch failed\n");
    exit(1);
  }
}

static void finish(slot_t *s) {
  grpc_metadata_array_destroy(&s->init_md);
  grpc_metadata_array_destroy(&s->trail_md);
  if (s->recv) grpc_byte_buffer_destroy(s->recv);
  grpc_byte_buffer_destroy(s->sent); /* only after the batch completed */
  grpc_slice_unref(s->details);
  grpc_call_unref(s->call);
}

static uint64_t percentile(const uint32_t *hist, uint64_t total, double p) {
  uint64_t want = (uint64_t)(p * (double)total), acc = 0;
  for (uint64_t i = 0; i < HIST_US; i++) {
    acc += hist[i];
    if (acc > want) return i;
  }
  return HIST_US;
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *method = "/marquee.system.v1.SystemService/Ping", *token = NULL;
  int conc = 64;
  double secs = 5, warm = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--target"))
      target = argv[i + 1];
    else if (!strcmp(argv[i], "--concurrency"))
      conc = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds"))
      secs = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--warmup"))
      warm = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--method"))
      method = argv[i + 1];
    else if (!strcmp(argv[i], "--token"))
      token = argv[i + 1];
    else {
      fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (conc < 1 || conc > 10000) return 2;
  grpc_init();
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  cq = grpc_completion_queue_create_for_next(NULL);
  method_handle = grpc_channel_register_call(ch, method, NULL, NULL);
  Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  uint8_t payload[16] = "marquee-loadgen!";
  req.payload.data = payload;
  req.payload.len = sizeof payload;
  req_slice = grpc_slice_malloc(marquee__system__v1__ping_request__get_packed_size(&req));
  marquee__system__v1__ping_request__pack(&req, GRPC_SLICE_START_PTR(req_slice));
  char *auth = NULL;
  if (token) {
    size_t n = strlen(token) + 8;
    auth = malloc(n);
    snprintf(auth, n, "Bearer %s", token);
    auth_md.key = grpc_slice_from_static_string("authorization");
    auth_md.value = grpc_slice_from_static_string(auth);
    n_md = 1;
  }
  uint32_t *hist = calloc(HIST_US + 1, sizeof *hist);
  slot_t *slots = calloc((size_t)conc, sizeof *slots);
  int64_t t0 = now_ns(), measure_from = t0 + (int64_t)(warm * 1e9), end = measure_from + (int64_t)(secs * 1e9);
  for (int i = 0; i < conc; i++) start(&slots[i]);
  uint64_t ok = 0, errors = 0;
  int active = conc;
  while (active > 0) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    slot_t *s = ev.tag;
    int64_t t = now_ns();
    if (s->start_ns >= measure_from && t <= end) {
      if (ev.success && s->status == GRPC_STATUS_OK) {
        uint64_t us = (uint64_t)(t - s->start_ns) / 1000;
        hist[us < HIST_US ? us : HIST_US]++;
        ok++;
      } else {
        errors++;
      }
    }
    finish(s);
    if (t < end)
      start(s);
    else
      active--;
  }
  double qps = (double)(ok + errors) / secs;
  printf("{\"qps\":%.0f,\"p50_us\":%llu,\"p99_us\":%llu,\"ok\":%llu,\"errors\":%llu,\"concurrency\":%d}\n", qps,
         (unsigned long long)percentile(hist, ok, 0.50), (unsigned long long)percentile(hist, ok, 0.99),
         (unsigned long long)ok, (unsigned long long)errors, conc);
  free(hist);
  free(slots);
  free(auth);
  grpc_slice_unref(req_slice);
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  grpc_shutdown();
  return 0;
}
