/*
 * loadgen.c — closed-loop gRPC load generator on the C core for bench/run.sh.
 * One thread, one completion queue, one channel; keeps exactly N unary calls
 * in flight (each completion immediately starts the next), records every
 * latency in a histogram (1 µs resolution up to 2 s, 1 ms up to 120 s), and
 * after a warm-up measures for a fixed duration: the calls that complete
 * inside the measured window are counted (the throughput of a closed loop),
 * whenever they started, so slow calls (SignIn at 64 in flight takes > 1 s)
 * are not undercounted. The request is a marquee.system.v1.PingRequest with a
 * 16-byte payload (or any method/bytes: see flags).
 *
 * Usage: mq-loadgen --target HOST:PORT [--concurrency 64] [--seconds 5]
 *                   [--warmup 1] [--method /pkg.Svc/M] [--token T]
 *                   [--request-file PATH]... [--metadata KEY:VALUE]...
 *   --method        full method name; the request bytes must match it
 *   --token T       sends "authorization: Bearer T"
 *   --request-file  raw serialized protobuf request sent instead of the
 *                   PingRequest (an empty file is an empty message, e.g.
 *                   GetMeRequest); repeat it to cycle through several
 *                   requests round-robin, one per call (e.g. one SignIn per
 *                   user)
 *   --metadata K:V  extra request metadata (repeatable; K lower-case, as
 *                   gRPC requires; the value is everything after the first ':')
 * Output: one JSON line {"qps":…,"p50_us":…,"p95_us":…,"p99_us":…,"ok":…,"errors":…,
 * "concurrency":…,"codes":{"UNAVAILABLE":…}} — qps counts OK and failed calls,
 * errors are counted, not timed (latency percentiles are of OK calls), and
 * codes breaks the errors down by gRPC status (empty when there were none).
 * The first status message seen for each failing code goes to stderr.
 */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "marquee/system/v1/system.pb-c.h"

#define HIST_US 2000000       /* 2 s at 1 µs resolution, */
#define HIST_COARSE_MS 118000 /* then 1 ms buckets up to 120 s */
#define HIST_BUCKETS (HIST_US + HIST_COARSE_MS)
#define MAX_MD 32
#define MAX_REQ 4096
#define N_CODES 17 /* GRPC_STATUS_OK .. GRPC_STATUS_UNAUTHENTICATED */

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
static grpc_slice req_slices[MAX_REQ];
static size_t n_req, next_req;
static grpc_metadata md[MAX_MD];
static size_t n_md;

static void start(slot_t *s) {
  memset(s, 0, sizeof *s);
  grpc_metadata_array_init(&s->init_md);
  grpc_metadata_array_init(&s->trail_md);
  s->start_ns = now_ns();
  s->call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_handle,
                                                gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_byte_buffer *bb = s->sent = grpc_raw_byte_buffer_create(&req_slices[next_req], 1);
  next_req = (next_req + 1) % n_req;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = n_md;
  ops[0].data.send_initial_metadata.metadata = n_md ? md : NULL;
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

static const char *const code_names[N_CODES] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

/* The whole file as one slice (empty file: empty slice). */
static bool read_request_file(const char *path, grpc_slice *out) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "mq-loadgen: %s: %s\n", path, strerror(errno));
    return false;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (!bigger) free(buf);
      buf = bigger;
    }
  }
  bool ok = buf && !ferror(f);
  fclose(f);
  if (!ok) {
    fprintf(stderr, "mq-loadgen: cannot read %s\n", path);
    free(buf);
    return false;
  }
  *out = grpc_slice_from_copied_buffer(buf, len);
  free(buf);
  return true;
}

/* "key:value" -> one metadata element (key must be a legal lower-case key). */
static bool add_metadata(const char *kv) {
  const char *colon = strchr(kv, ':');
  if (!colon || colon == kv) {
    fprintf(stderr, "mq-loadgen: --metadata needs KEY:VALUE, got '%s'\n", kv);
    return false;
  }
  if (n_md == MAX_MD) {
    fprintf(stderr, "mq-loadgen: at most %d metadata elements\n", MAX_MD);
    return false;
  }
  grpc_slice key = grpc_slice_from_copied_buffer(kv, (size_t)(colon - kv));
  grpc_slice value = grpc_slice_from_copied_string(colon + 1);
  bool bin = grpc_is_binary_header(key);
  if (!grpc_header_key_is_legal(key) || (!bin && !grpc_header_nonbin_value_is_legal(value))) {
    fprintf(stderr, "mq-loadgen: illegal metadata '%s' (keys are lower-case [0-9a-z_.-])\n", kv);
    grpc_slice_unref(key);
    grpc_slice_unref(value);
    return false;
  }
  md[n_md].key = key;
  md[n_md].value = value;
  n_md++;
  return true;
}

static uint64_t bucket_of(uint64_t us) {
  if (us < HIST_US) return us;
  uint64_t b = HIST_US + (us - HIST_US) / 1000;
  return b < HIST_BUCKETS ? b : HIST_BUCKETS; /* the last bucket: >= 120 s */
}

static uint64_t bucket_us(uint64_t b) {
  return b < HIST_US ? b : HIST_US + (b - HIST_US) * 1000;
}

/* In µs; 0 when there was no OK call. */
static uint64_t percentile(const uint32_t *hist, uint64_t total, double p) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(p * (double)total), acc = 0;
  for (uint64_t i = 0; i < HIST_BUCKETS; i++) {
    acc += hist[i];
    if (acc > want) return bucket_us(i);
  }
  return bucket_us(HIST_BUCKETS);
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *method = "/marquee.system.v1.SystemService/Ping", *token = NULL;
  const char *req_files[MAX_REQ];
  const char *md_args[MAX_MD];
  size_t n_files = 0, n_md_args = 0;
  int conc = 64;
  double secs = 5, warm = 1;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 == argc) {
      fprintf(stderr, "flag %s needs a value\n", argv[i]);
      return 2;
    }
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
    else if (!strcmp(argv[i], "--request-file")) {
      if (n_files == MAX_REQ) {
        fprintf(stderr, "at most %d request files\n", MAX_REQ);
        return 2;
      }
      req_files[n_files++] = argv[i + 1];
    } else if (!strcmp(argv[i], "--metadata")) {
      if (n_md_args == MAX_MD - 1) { /* one slot is the token's */
        fprintf(stderr, "at most %d metadata elements\n", MAX_MD - 1);
        return 2;
      }
      md_args[n_md_args++] = argv[i + 1];
    } else {
      fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (conc < 1 || conc > 10000 || secs <= 0 || warm < 0) return 2;
  grpc_init();
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  cq = grpc_completion_queue_create_for_next(NULL);
  method_handle = grpc_channel_register_call(ch, method, NULL, NULL);
  if (n_files == 0) {
    Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
    uint8_t payload[16] = "marquee-loadgen!";
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    req_slices[0] = grpc_slice_malloc(marquee__system__v1__ping_request__get_packed_size(&req));
    marquee__system__v1__ping_request__pack(&req, GRPC_SLICE_START_PTR(req_slices[0]));
    n_req = 1;
  }
  for (size_t i = 0; i < n_files; i++, n_req++)
    if (!read_request_file(req_files[i], &req_slices[i])) return 2;
  if (token) {
    size_t n = strlen(token) + 8;
    char *auth = malloc(n);
    snprintf(auth, n, "Bearer %s", token);
    md[0].key = grpc_slice_from_static_string("authorization");
    md[0].value = grpc_slice_from_copied_string(auth);
    free(auth);
    n_md = 1;
  }
  for (size_t i = 0; i < n_md_args; i++)
    if (!add_metadata(md_args[i])) return 2;
  uint32_t *hist = calloc(HIST_BUCKETS + 1, sizeof *hist);
  slot_t *slots = calloc((size_t)conc, sizeof *slots);
  int64_t t0 = now_ns(), measure_from = t0 + (int64_t)(warm * 1e9), end = measure_from + (int64_t)(secs * 1e9);
  for (int i = 0; i < conc; i++) start(&slots[i]);
  uint64_t ok = 0, errors = 0, codes[N_CODES + 1] = {0}; /* [N_CODES]: batch failed or unknown code */
  char *first_detail[N_CODES + 1] = {0};
  int active = conc;
  while (active > 0) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    slot_t *s = ev.tag;
    int64_t t = now_ns();
    if (t >= measure_from && t <= end) {
      if (ev.success && s->status == GRPC_STATUS_OK) {
        uint64_t us = (uint64_t)(t - s->start_ns) / 1000;
        hist[bucket_of(us)]++;
        ok++;
      } else {
        errors++;
        int c = ev.success && (int)s->status > 0 && (int)s->status < N_CODES ? (int)s->status : N_CODES;
        if (codes[c]++ == 0) first_detail[c] = grpc_slice_to_c_string(s->details);
      }
    }
    finish(s);
    if (t < end)
      start(s);
    else
      active--;
  }
  double qps = (double)(ok + errors) / secs;
  printf(
      "{\"qps\":%.0f,\"p50_us\":%llu,\"p95_us\":%llu,\"p99_us\":%llu,\"ok\":%llu,\"errors\":%llu,"
      "\"concurrency\":%d,\"codes\":{",
      qps, (unsigned long long)percentile(hist, ok, 0.50), (unsigned long long)percentile(hist, ok, 0.95),
      (unsigned long long)percentile(hist, ok, 0.99), (unsigned long long)ok, (unsigned long long)errors, conc);
  const char *sep = "";
  for (int c = 1; c <= N_CODES; c++) {
    if (!codes[c]) continue;
    const char *name = c < N_CODES ? code_names[c] : "CALL_FAILED";
    printf("%s\"%s\":%llu", sep, name, (unsigned long long)codes[c]);
    sep = ",";
    fprintf(stderr, "mq-loadgen: %s x%llu, first: %s\n", name, (unsigned long long)codes[c],
            first_detail[c] ? first_detail[c] : "");
    gpr_free(first_detail[c]);
  }
  printf("}}\n");
  free(hist);
  free(slots);
  for (size_t i = 0; i < n_req; i++) grpc_slice_unref(req_slices[i]);
  for (size_t i = 0; i < n_md; i++) {
    grpc_slice_unref(md[i].key);
    grpc_slice_unref(md[i].value);
  }
  grpc_channel_destroy(ch);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  grpc_shutdown();
  return 0;
}
