/*
 * mq_metrics.c — fixed-size registry behind mq_metrics.h. Method rows are
 * appended under a mutex at start-up and never move, so the hot path holds a
 * plain pointer and touches only atomics.
 */
#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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

mq_method_stats_t *mq_metrics_method(const char *path, int kind) {
  pthread_mutex_lock(&mu);
  mq_method_stats_t *s = NULL;
  for (size_t i = 0; i < n_methods && !s; i++)
    if (strcmp(methods[i].path, path) == 0) s = &methods[i];
  if (!s) {
    if (n_methods < MAX_METHODS - 1) {
      s = &methods[n_methods++];
      snprintf(s->path, sizeof s->path, "%s", path);
      s->kind = kind;
    } else {
      s = &methods[MAX_METHODS - 1];
      snprintf(s->path, sizeof s->path, "%s", "other");
    }
  }
  pthread_mutex_unlock(&mu);
  return s;
}

void mq_metrics_call_start(mq_method_stats_t *s) {
  atomic_fetch_add_explicit(&s->started, 1, memory_order_relaxed);
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

/* "/pkg.Svc/Method" -> service "pkg.Svc" (svc_len chars) and method. */
static void split_path(const char *path, int *svc_len, const char **method) {
  const char *p = path[0] == '/' ? path + 1 : path;
  const char *slash = strchr(p, '/');
  *svc_len = slash ? (int)(slash - p) : (int)strlen(p);
  *method = slash ? slash + 1 : "";
}

static const char *const kind_names[] = {"unary", "server_stream", "client_stream", "bidi_stream"};

/* The standard gRPC server families (the names and labels of the Go and
 * Java gRPC Prometheus interceptors), so stock dashboards work. */
static void render_grpc_families(buf_t *b) {
  bp(b,
     "# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
     "# TYPE grpc_server_started_total counter\n");
  for (size_t i = 0; i < n_methods; i++) {
    if (methods[i].path[0] != '/') continue; /* "unknown" and "other" are not methods */
    int sl;
    const char *m;
    split_path(methods[i].path, &sl, &m);
    bp(b, "grpc_server_started_total{grpc_service=\"%.*s\",grpc_method=\"%s\",grpc_type=\"%s\"} %llu\n", sl,
       methods[i].path + 1, m, kind_names[methods[i].kind & 3],
       (unsigned long long)atomic_load_explicit(&methods[i].started, memory_order_relaxed));
  }
  bp(b,
     "# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or "
     "failure.\n# TYPE grpc_server_handled_total counter\n");
  for (size_t i = 0; i < n_methods; i++) {
    if (methods[i].path[0] != '/') continue;
    int sl;
    const char *m;
    split_path(methods[i].path, &sl, &m);
    for (int c = 0; c < 17; c++) {
      uint64_t v = atomic_load_explicit(&methods[i].by_status[c], memory_order_relaxed);
      if (v || c == 0)
        bp(b,
           "grpc_server_handled_total{grpc_service=\"%.*s\",grpc_method=\"%s\",grpc_type=\"%s\",grpc_code=\"%s\"} "
           "%llu\n",
           sl, methods[i].path + 1, m, kind_names[methods[i].kind & 3], status_names[c], (unsigned long long)v);
    }
  }
  bp(b,
     "# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had been "
     "application-level handled by the server.\n# TYPE grpc_server_handling_seconds histogram\n");
  for (size_t i = 0; i < n_methods; i++) {
    if (methods[i].path[0] != '/') continue;
    int sl;
    const char *m;
    split_path(methods[i].path, &sl, &m);
    char labels[256];
    snprintf(labels, sizeof labels, "grpc_service=\"%.*s\",grpc_method=\"%s\",grpc_type=\"%s\"", sl,
             methods[i].path + 1, m, kind_names[methods[i].kind & 3]);
    uint64_t cum = 0;
    for (int k = 0; k <= MQ_METRICS_BUCKETS; k++) {
      cum += atomic_load_explicit(&methods[i].bucket[k], memory_order_relaxed);
      if (k < MQ_METRICS_BUCKETS)
        bp(b, "grpc_server_handling_seconds_bucket{%s,le=\"%g\"} %llu\n", labels, bucket_le_s[k],
           (unsigned long long)cum);
      else
        bp(b, "grpc_server_handling_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels, (unsigned long long)cum);
    }
    bp(b, "grpc_server_handling_seconds_sum{%s} %.6f\n", labels,
       (double)atomic_load_explicit(&methods[i].sum_us, memory_order_relaxed) / 1e6);
    bp(b, "grpc_server_handling_seconds_count{%s} %llu\n", labels, (unsigned long long)cum);
  }
}

/* The standard process families (Prometheus client libraries' names), from
 * /proc: CPU time, memory, file descriptors, start time; and the build. */
static void render_process(buf_t *b) {
  bp(b,
     "# HELP marquee_build_info The running build: version and git commit (always 1).\n"
     "# TYPE marquee_build_info gauge\nmarquee_build_info{version=\"%s\",commit=\"%s\"} 1\n",
     MQ_VERSION, MQ_GIT_COMMIT);
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/stat", "r");
  char line[1024];
  if (f && fgets(line, sizeof line, f) && tick > 0) {
    const char *p = strrchr(line, ')'); /* the command name may hold spaces */
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) */
    if (p &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) == 5) {
      double boot = 0;
      FILE *st = fopen("/proc/stat", "r");
      char l2[256];
      while (st && fgets(l2, sizeof l2, st))
        if (!strncmp(l2, "btime ", 6)) boot = strtod(l2 + 6, NULL);
      if (st) fclose(st);
      bp(b,
         "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
         "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
         (double)(utime + stime) / (double)tick);
      bp(b,
         "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
         "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n",
         rss * (long long)page);
      bp(b,
         "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
         "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
         vsize);
      if (boot > 0)
        bp(b,
           "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
           "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
           boot + (double)start / (double)tick);
    }
  }
  if (f) fclose(f);
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    long n = -1; /* the directory stream's own descriptor */
    while (readdir(d)) n++;
    closedir(d);
    n -= 2; /* "." and ".." */
    bp(b,
       "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n"
       "process_open_fds %ld\n",
       n > 0 ? n : 0);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    bp(b,
       "# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\n"
       "process_max_fds %llu\n",
       (unsigned long long)rl.rlim_cur);
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
  render_grpc_families(&b);
  /* one HELP/TYPE per family, its samples together whatever order they
   * were registered in; a family ending in _total is a counter */
  for (size_t i = 0; i < n_gauges; i++) {
    size_t bl = base_name_len(gauges[i].name);
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++)
      seen = base_name_len(gauges[k].name) == bl && !strncmp(gauges[k].name, gauges[i].name, bl);
    if (seen) continue;
    bool counter = bl > 6 && !strncmp(gauges[i].name + bl - 6, "_total", 6);
    bp(&b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)bl, gauges[i].name, gauges[i].help, (int)bl, gauges[i].name,
       counter ? "counter" : "gauge");
    for (size_t k = i; k < n_gauges; k++)
      if (base_name_len(gauges[k].name) == bl && !strncmp(gauges[k].name, gauges[i].name, bl))
        bp(&b, "%s %.17g\n", gauges[k].name, gauges[k].fn(gauges[k].arg));
  }
  render_process(&b);
  pthread_mutex_unlock(&mu);
  if (len) *len = b.len;
  return b.p;
}
