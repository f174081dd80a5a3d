/*
 * mq_metrics.h — process metrics rendered in the Prometheus text format.
 *
 * Per method (registered once at start-up, then updated lock-free with
 * relaxed atomics on the hot path): calls started, calls by gRPC status
 * code, a latency histogram and in-flight calls — rendered both as
 * Marquee's own marquee_rpc_* families and as the standard
 * grpc_server_started_total / grpc_server_handled_total /
 * grpc_server_handling_seconds families (labels grpc_service, grpc_method,
 * grpc_type, grpc_code) that stock gRPC dashboards expect. Anything else is
 * a value read through a callback at scrape time (worker-pool depth,
 * MongoDB/Kafka up, outbox lag); a callback family whose name ends in
 * _total is a counter, any other a gauge. Each family has exactly one HELP
 * and TYPE line and its samples together (`promtool check metrics` clean);
 * marquee_build_info and the standard process_* families come last.
 * The registry is process-global and append-only: entries live until exit.
 */
#ifndef MQ_METRICS_H
#define MQ_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MQ_METRICS_BUCKETS 16

typedef struct mq_method_stats {
  char path[160];
  atomic_uint_fast64_t by_status[17];
  atomic_uint_fast64_t bucket[MQ_METRICS_BUCKETS + 1]; /* last is +Inf */
  atomic_uint_fast64_t count;
  atomic_uint_fast64_t sum_us;
  atomic_int_fast64_t in_flight;
  atomic_uint_fast64_t started;
  int kind; /* mq_method_kind_t: the grpc_type label */
} mq_method_stats_t;

/* Returns the (shared) stats of `path`, creating them. Never NULL: past the
 * table's capacity every further method shares an "other" row. */
mq_method_stats_t *mq_metrics_method(const char *path, int kind); /* kind: mq_method_kind_t */
void mq_metrics_call_start(mq_method_stats_t *s);
void mq_metrics_call_end(mq_method_stats_t *s, int grpc_status, int64_t duration_us);

typedef double (*mq_gauge_fn)(void *arg);
/* Registers a gauge `name` (with optional labels, e.g. "marquee_up{dep=\"mongodb\"}"). */
void mq_metrics_gauge(const char *name, const char *help, mq_gauge_fn fn, void *arg);
/* Removes every gauge whose callback argument is `arg` (before freeing it). */
void mq_metrics_gauge_remove(void *arg);

/* Prometheus text; caller frees. */
char *mq_metrics_render(size_t *len);

#endif
