/*
 * mq_metrics.c — fixed-size registry behind mq_metrics.h. Method rows are
 * appended under a mutex at start-up and never move, so the hot path holds a
 * plain pointer and touches only atomics.
 */
#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METHODS 512
#define MAX_GAUGES 64

static const double bucket_le_s[MQ_METRICS_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
static const char *status_names[17] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mq_method_stats_t methods[MAX_METHODS];
static size_t n_methods;

typedef struct {
  char name[160];
  char help[160];
  mq_gauge_fn fn;
  void *arg;
} gauge_t;
static gauge_t gauges[MAX_GAUGES];
static size_t n_gauges;

mq_method_stats_t *mq_metrics_method(const char *path) {
  pthread_mutex_lock(&mu);
  mq_method_stats_t *s = NULL;
  for (size_t i = 0; i < n_methods && !s; i++)
    if (strcmp(methods[i].path, path) == 0) s = &methods[i];
  if (!s) {
    if (n_methods < MAX_METHODS - 1) {
      s = &methods[n_methods++];
      snprintf(s->path, sizeof s->path, "%s", path);
    } else {
      s = &methods[MAX_METHODS - 1];
      snprintf(s->path, sizeof s->path, "%s", "other");
    }
  }
  pthread_mutex_unlock(&mu);
  return s;
}

void mq_metrics_call_start(mq_method_stats_t *s) {
  atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
}

void mq_metrics_call_end(mq_method_stats_t *s, int grpc_status, int64_t duration_us) {
  atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
  if (grpc_status < 0 || grpc_status > 16) grpc_status = 2;
  atomic_fetch_add_explicit(&s->by_status[grpc_status], 1, memory_order_relaxed);
  if (duration_us < 0) duration_us = 0;
  double secs = (double)duration_us / 1e6;
  size_t b = 0;
  while (b < MQ_METRICS_BUCKETS && secs > bucket_le_s[b]) b++;
  atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->sum_us, (uint64_t)duration_us, memory_order_relaxed);
}

void mq_metrics_gauge(const char *name, const char *help, mq_gauge_fn fn, void *arg) {
  pthread_mutex_lock(&mu);
  if (n_gauges < MAX_GAUGES) {
    gauge_t *g = &gauges[n_gauges++];
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->help, sizeof g->help, "%s", help);
    g->fn = fn;
    g->arg = arg;
  }
  pthread_mutex_unlock(&mu);
}

void mq_metrics_gauge_remove(void *arg) {
  pthread_mutex_lock(&mu);
  size_t j = 0;
  for (size_t i = 0; i < n_gauges; i++)
    if (gauges[i].arg != arg) gauges[j++] = gauges[i];
  n_gauges = j;
  pthread_mutex_unlock(&mu);
}

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void bp(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bp(buf_t *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
    char *np = mq_xrealloc(b->p, b->cap);
    b->p = np;
  }
}

static size_t base_name_len(const char *name) {
  const char *brace = strchr(name, '{');
  return brace ? (size_t)(brace - name) : strlen(name);
}

char *mq_metrics_render(size_t *len) {
  buf_t b = {mq_xmalloc(16384), 0, 16384};
  b.p[0] = '\0';
  pthread_mutex_lock(&mu);
  bp(&b,
     "# HELP marquee_rpc_requests_total Completed gRPC calls by method and status code.\n"
     "# TYPE marquee_rpc_requests_total counter\n");
  for (size_t i = 0; i < n_methods; i++)
    for (int c = 0; c < 17; c++) {
      uint64_t v = atomic_load_explicit(&methods[i].by_status[c], memory_order_relaxed);
      if (v)
        bp(&b, "marquee_rpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n", methods[i].path, status_names[c],
           (unsigned long long)v);
    }
  bp(&b,
     "# HELP marquee_rpc_duration_seconds Call latency from arrival to status sent.\n"
     "# TYPE marquee_rpc_duration_seconds histogram\n");
  for (size_t i = 0; i < n_methods; i++) {
    uint64_t count = atomic_load_explicit(&methods[i].count, memory_order_relaxed);
    if (!count) continue;
    uint64_t cum = 0;
    for (int k = 0; k <= MQ_METRICS_BUCKETS; k++) {
      cum += atomic_load_explicit(&methods[i].bucket[k], memory_order_relaxed);
      if (k < MQ_METRICS_BUCKETS)
        bp(&b, "marquee_rpc_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n", methods[i].path, bucket_le_s[k],
           (unsigned long long)cum);
      else
        bp(&b, "marquee_rpc_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n", methods[i].path,
           (unsigned long long)cum);
    }
    bp(&b, "marquee_rpc_duration_seconds_sum{method=\"%s\"} %.6f\n", methods[i].path,
       (double)atomic_load_explicit(&methods[i].sum_us, memory_order_relaxed) / 1e6);
    bp(&b, "marquee_rpc_duration_seconds_count{method=\"%s\"} %llu\n", methods[i].path, (unsigned long long)count);
  }
  bp(&b, "# HELP marquee_rpc_in_flight Calls being processed now.\n# TYPE marquee_rpc_in_flight gauge\n");
  for (size_t i = 0; i < n_methods; i++) {
    int64_t v = atomic_load_explicit(&methods[i].in_flight, memory_order_relaxed);
    if (v || atomic_load_explicit(&methods[i].count, memory_order_relaxed))
      bp(&b, "marquee_rpc_in_flight{method=\"%s\"} %lld\n", methods[i].path, (long long)v);
  }
  const char *last = "";
  size_t last_len = 0;
  for (size_t i = 0; i < n_gauges; i++) {
    size_t bl = base_name_len(gauges[i].name);
    if (bl != last_len || strncmp(last, gauges[i].name, bl) != 0) {
      bp(&b, "# HELP %.*s %s\n# TYPE %.*s gauge\n", (int)bl, gauges[i].name, gauges[i].help, (int)bl, gauges[i].name);
      last = gauges[i].name;
      last_len = bl;
    }
    bp(&b, "%s %g\n", gauges[i].name, gauges[i].fn(gauges[i].arg));
  }
  pthread_mutex_unlock(&mu);
  if (len) *len = b.len;
  return b.p;
}
