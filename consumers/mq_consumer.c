/*
 * mq_consumer.c — see mq_consumer.h. One thread: poll, handle, store
 * offset. The dead-letter producer is idempotent and each dead-lettered
 * message is flushed before its offset is stored, so a message is never
 * both lost from the source and missing from the DLQ. The HTTP thread
 * reads the metrics: counters are relaxed atomics; the table of next
 * offsets per partition is guarded by its mutex, and librdkafka's calls
 * (assignment, watermarks, committed offsets) are thread-safe.
 */
#include "consumers/mq_consumer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_http.h"
#include "lib/mq_kafka.h"

#define PROCESSED_COLLECTION "consumer_processed"

static volatile sig_atomic_t g_stop;

bool mq_consumer_stopping(void) {
  return g_stop != 0;
}

void mq_consumer_stop(void) {
  g_stop = 1;
}
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

bool mq_consumer_is_transient(mq_code_t code) {
  return code == MQ_UNAVAILABLE || code == MQ_STORE_UNAVAILABLE || code == MQ_DEADLINE_EXCEEDED || code == MQ_ABORTED ||
         code == MQ_OVERLOADED;
}

bool mq_consumer_is_permanent(mq_code_t code) {
  return code == MQ_INVALID_ARGUMENT || code == MQ_FAILED_PRECONDITION;
}

const mq_event_route_t *mq_consumer_route(const mq_event_route_t *routes, size_t n, const char *type) {
  const mq_event_route_t *any = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(routes[i].type, type)) return &routes[i];
    if (!strcmp(routes[i].type, "*")) any = &routes[i];
  }
  return any;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static bool already_processed(mq_store_t *store, const char *key) {
  bson_t filter = BSON_INITIALIZER, out;
  BSON_APPEND_UTF8(&filter, "_id", key);
  mq_error_t err;
  mq_code_t rc = mq_store_find_one(store, PROCESSED_COLLECTION, &filter, NULL, &out, &err);
  bson_destroy(&filter);
  if (rc == MQ_OK) bson_destroy(&out);
  return rc == MQ_OK;
}

static mq_code_t mark_processed(mq_store_t *store, const char *key, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", key);
  BSON_APPEND_DATE_TIME(&doc, "at", (int64_t)time(NULL) * 1000);
  mq_code_t rc = mq_store_insert_decision(store, PROCESSED_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc == MQ_ALREADY_EXISTS ? MQ_OK : rc;
}

/* Sends `m` to the DLQ and waits for the broker's ack (retrying while Kafka
 * is down, until stop). True once acknowledged. */
static bool dead_letter(rd_kafka_t *dlq, const char *dlq_topic, const char *group, const rd_kafka_message_t *m,
                        const char *reason) {
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", (int)m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  const char *src = rd_kafka_topic_name(m->rkt);
  while (!g_stop) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        dlq, RD_KAFKA_V_TOPIC(dlq_topic), RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("source-topic", src, -1),
        RD_KAFKA_V_HEADER("source-partition", part, -1), RD_KAFKA_V_HEADER("source-offset", off, -1),
        RD_KAFKA_V_HEADER("consumer-group", group, -1), RD_KAFKA_V_HEADER("error", reason, -1), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_flush(dlq, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_outq_len(dlq) == 0)
      return true;
    mq_log(MQ_LOG_WARN, "consumer.dlq_retry", "dead-letter publish not acknowledged yet; retrying");
    sleep_ms(1000);
  }
  return false;
}

/* ---- metrics ------------------------------------------------------------------ */

enum { OUT_HANDLED, OUT_SKIPPED, OUT_DUPLICATE, OUT_DEAD_LETTERED, OUT_N };
static const char *const outcome_names[OUT_N] = {"handled", "skipped", "duplicate", "dead_lettered"};
static atomic_uint_fast64_t g_outcomes[OUT_N], g_retries;

#define LAG_MAX_PARTS 1024
typedef struct {
  char topic[160];
  int32_t partition;
  int64_t next; /* the next offset to handle */
} lag_part_t;
static struct {
  pthread_mutex_t mu;
  rd_kafka_t *rk;
  lag_part_t parts[LAG_MAX_PARTS];
  size_t n;
} g_lag = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void count(int outcome) {
  atomic_fetch_add_explicit(&g_outcomes[outcome], 1, memory_order_relaxed);
}

static void lag_note(const char *topic, int32_t partition, int64_t next) {
  pthread_mutex_lock(&g_lag.mu);
  size_t i = 0;
  while (i < g_lag.n && (g_lag.parts[i].partition != partition || strcmp(g_lag.parts[i].topic, topic))) i++;
  if (i == g_lag.n && g_lag.n < LAG_MAX_PARTS) {
    snprintf(g_lag.parts[i].topic, sizeof g_lag.parts[i].topic, "%s", topic);
    g_lag.parts[i].partition = partition;
    g_lag.n++;
  }
  if (i < g_lag.n) g_lag.parts[i].next = next;
  pthread_mutex_unlock(&g_lag.mu);
}

/* The next offset to handle on (topic, partition), or -1 if none handled yet. */
static int64_t lag_next(const char *topic, int32_t partition) {
  int64_t next = -1;
  pthread_mutex_lock(&g_lag.mu);
  for (size_t i = 0; i < g_lag.n; i++)
    if (g_lag.parts[i].partition == partition && !strcmp(g_lag.parts[i].topic, topic)) next = g_lag.parts[i].next;
  pthread_mutex_unlock(&g_lag.mu);
  return next;
}

static double gauge_outcome(void *arg) {
  return (double)atomic_load_explicit((atomic_uint_fast64_t *)arg, memory_order_relaxed);
}

/* marquee_consumer_lag for the topic named by arg: over the partitions of it
 * assigned to this process, high watermark minus the next offset to handle
 * (for a partition not handled yet: minus its committed offset, or minus
 * the low watermark when the group has none). Runs on the HTTP thread. */
static double gauge_lag(void *arg) {
  const char *topic = arg;
  rd_kafka_t *rk = g_lag.rk;
  rd_kafka_topic_partition_list_t *asg = NULL;
  if (!rk || rd_kafka_assignment(rk, &asg) != RD_KAFKA_RESP_ERR_NO_ERROR || !asg) return 0;
  double lag = 0;
  for (int i = 0; i < asg->cnt; i++) {
    const rd_kafka_topic_partition_t *tp = &asg->elems[i];
    if (strcmp(tp->topic, topic)) continue;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(rk, topic, tp->partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
      if (rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &lo, &hi, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        continue;
    int64_t next = lag_next(topic, tp->partition);
    if (next < 0) {
      rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(one, topic, tp->partition);
      if (rd_kafka_committed(rk, one, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) next = one->elems[0].offset;
      rd_kafka_topic_partition_list_destroy(one);
      if (next < 0) next = lo; /* nothing committed: auto.offset.reset=earliest reads it all */
    }
    if (hi > next) lag += (double)(hi - next);
  }
  rd_kafka_topic_partition_list_destroy(asg);
  return lag;
}

/* Registers the families; returns the topic names the lag gauges point at
 * (freed by metrics_stop). */
static char **metrics_start(const char *name, const char *const *topics, size_t nt) {
  char family[320];
  for (int i = 0; i < OUT_N; i++) {
    snprintf(family, sizeof family, "marquee_consumer_events_total{consumer=\"%s\",outcome=\"%s\"}", name,
             outcome_names[i]);
    mq_metrics_gauge(family, "Events this consumer process finished with, by outcome", gauge_outcome, &g_outcomes[i]);
  }
  snprintf(family, sizeof family, "marquee_consumer_retries_total{consumer=\"%s\"}", name);
  mq_metrics_gauge(family, "Handler attempts that failed and were retried", gauge_outcome, &g_retries);
  char **args = mq_xcalloc(nt + 1, sizeof *args);
  for (size_t i = 0; i < nt; i++) {
    args[i] = mq_xstrdup(topics[i]);
    snprintf(family, sizeof family, "marquee_consumer_lag{consumer=\"%s\",topic=\"%s\"}", name, topics[i]);
    mq_metrics_gauge(family, "Messages on the assigned partitions not yet handled by this consumer", gauge_lag,
                     args[i]);
  }
  return args;
}

static void metrics_stop(char **args) {
  for (size_t i = 0; args && args[i]; i++) {
    mq_metrics_gauge_remove(args[i]);
    free(args[i]);
  }
  free(args);
  for (int i = 0; i < OUT_N; i++) mq_metrics_gauge_remove(&g_outcomes[i]);
  mq_metrics_gauge_remove(&g_retries);
}

static volatile int g_dlq_failed;
static void dlq_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk, (void)opaque;
  if (m->err) g_dlq_failed = 1;
}

/* Where each assigned partition started (an explicit offset), for caught_up:
 * before its first message, a partition's position is unknown. */
static struct {
  char topic[64];
  int32_t partition;
  int64_t offset;
} g_starts[256];
static int g_n_starts;

static void start_note(const char *topic, int32_t partition, int64_t offset) {
  int i = 0;
  while (i < g_n_starts && (g_starts[i].partition != partition || strcmp(g_starts[i].topic, topic))) i++;
  if (i == g_n_starts) {
    if (g_n_starts == (int)(sizeof g_starts / sizeof *g_starts) || strlen(topic) >= sizeof g_starts[0].topic) return;
    snprintf(g_starts[i].topic, sizeof g_starts[i].topic, "%s", topic);
    g_starts[i].partition = partition;
    g_n_starts++;
  }
  g_starts[i].offset = offset;
}

static int64_t start_of(const char *topic, int32_t partition) {
  for (int i = 0; i < g_n_starts; i++)
    if (g_starts[i].partition == partition && !strcmp(g_starts[i].topic, topic)) return g_starts[i].offset;
  return -1;
}

/* Assignment with offsets from the consumer's own data (opts.start_offset)
 * or the group's committed offsets; a partition with neither starts at
 * MARQUEE_CONSUMER_SKIP_BEFORE_MS when that is set (the first message
 * produced at or after it, looked up by time) instead of at its beginning,
 * so passing over old messages costs nothing. Eager and cooperative
 * protocols alike. */
static const mq_consumer_opts_t *g_opts;
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts, void *opaque) {
  (void)opaque;
  bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
  if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    int64_t skip = g_opts->cfg->consumer_skip_before_ms;
    if (!g_opts->start_offset && rd_kafka_committed(rk, parts, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < parts->cnt; i++) parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_topic_partition_list_t *by_time = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
      int64_t next = g_opts->start_offset
                         ? g_opts->start_offset(g_opts->ctx, parts->elems[i].topic, parts->elems[i].partition)
                         : parts->elems[i].offset;
      parts->elems[i].offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
      if (next < 0 && skip > 0)
        rd_kafka_topic_partition_list_add(by_time, parts->elems[i].topic, parts->elems[i].partition)->offset = skip;
      mq_log(MQ_LOG_INFO, "consumer.assign", "%s[%d] resumes at %s", parts->elems[i].topic,
             (int)parts->elems[i].partition,
             next >= 0  ? (g_opts->start_offset ? "the offset its data records" : "the committed offset")
             : skip > 0 ? "the first message produced since MARQUEE_CONSUMER_SKIP_BEFORE_MS"
                        : "the beginning");
    }
    if (by_time->cnt && rd_kafka_offsets_for_times(rk, by_time, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int k = 0; k < by_time->cnt; k++)
        for (int i = 0; i < parts->cnt; i++)
          if (!strcmp(parts->elems[i].topic, by_time->elems[k].topic) &&
              parts->elems[i].partition == by_time->elems[k].partition && !by_time->elems[k].err) {
            int64_t off = by_time->elems[k].offset, lo = 0, hi = 0;
            /* none produced since: the high watermark now (not "the end", which is resolved later and
             * would miss what is produced meanwhile) */
            if (off < 0 && rd_kafka_query_watermark_offsets(rk, parts->elems[i].topic, parts->elems[i].partition, &lo,
                                                            &hi, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
              off = hi;
            if (off >= 0) parts->elems[i].offset = off;
          }
    } /* else: from the beginning, skipping by time as the loop always does */
    rd_kafka_topic_partition_list_destroy(by_time);
    for (int i = 0; i < parts->cnt; i++)
      start_note(parts->elems[i].topic, parts->elems[i].partition, parts->elems[i].offset);
    if (coop) {
      rd_kafka_error_t *x = rd_kafka_incremental_assign(rk, parts);
      if (x) rd_kafka_error_destroy(x);
    } else {
      rd_kafka_assign(rk, parts);
    }
  } else {
    if (coop) {
      rd_kafka_error_t *x = rd_kafka_incremental_unassign(rk, parts);
      if (x) rd_kafka_error_destroy(x);
    } else {
      rd_kafka_assign(rk, NULL);
    }
  }
}

/* Every assigned partition read up to its last known high watermark. */
static bool caught_up(rd_kafka_t *rk) {
  rd_kafka_topic_partition_list_t *asg = NULL;
  if (rd_kafka_assignment(rk, &asg) != RD_KAFKA_RESP_ERR_NO_ERROR || !asg) return false;
  bool ok = asg->cnt > 0 && rd_kafka_position(rk, asg) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; ok && i < asg->cnt; i++) {
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(rk, asg->elems[i].topic, asg->elems[i].partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0)
      ok = false;
    else if (hi > lo && (asg->elems[i].offset >= 0 ? asg->elems[i].offset
                                                   : start_of(asg->elems[i].topic, asg->elems[i].partition)) < hi)
      ok = false; /* behind, or nothing read yet from a start that is not known to be the end */
  }
  rd_kafka_topic_partition_list_destroy(asg);
  return ok;
}

int mq_consumer_run(const mq_consumer_opts_t *o) {
  char group[160], dlq_topic[160], client_id[200];
  if (o->cfg->consumer_group[0])
    snprintf(group, sizeof group, "%s", o->cfg->consumer_group);
  else
    snprintf(group, sizeof group, "marquee-%s", o->name);
  snprintf(dlq_topic, sizeof dlq_topic, "marquee.dlq.%s", o->name);
  snprintf(client_id, sizeof client_id, "%s-%s", group, o->cfg->instance_id[0] ? o->cfg->instance_id : "1");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  char errstr[256];
  rd_kafka_conf_t *cc = mq_kafka_conf(o->cfg, client_id);
  mq_kafka_set(cc, "group.id", group);
  mq_kafka_set(cc, "enable.auto.commit", "true");
  mq_kafka_set(cc, "auto.commit.interval.ms", "1000");
  mq_kafka_set(cc, "enable.auto.offset.store", "false");
  mq_kafka_set(cc, "auto.offset.reset", "earliest");
  mq_kafka_set(cc, "session.timeout.ms", "10000");
  if (o->start_offset || o->cfg->consumer_skip_before_ms > 0) {
    g_opts = o;
    rd_kafka_conf_set_rebalance_cb(cc, rebalance);
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
  if (!rk) {
    mq_log(MQ_LOG_ERROR, "consumer.create", "%s", errstr);
    rd_kafka_conf_destroy(cc);
    return 1;
  }
  rd_kafka_conf_t *pc = mq_kafka_conf(o->cfg, client_id);
  mq_kafka_set(pc, "enable.idempotence", "true");
  mq_kafka_set(pc, "message.timeout.ms", "10000");
  rd_kafka_conf_set_dr_msg_cb(pc, dlq_dr);
  rd_kafka_t *dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
  if (!dlq) {
    mq_log(MQ_LOG_ERROR, "consumer.create", "%s", errstr);
    rd_kafka_conf_destroy(pc);
    rd_kafka_destroy(rk);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  g_lag.rk = rk;

  /* The topics must exist before subscribing (auto-creation is off). */
  size_t nt = 0;
  while (o->topics[nt]) nt++;
  const char **all = calloc(nt + 2, sizeof *all);
  for (size_t i = 0; i < nt; i++) all[i] = o->topics[i];
  all[nt] = dlq_topic;
  while (!g_stop) {
    mq_error_t err;
    if (mq_kafka_create_topics(rk, o->cfg, all, 5000, &err) == MQ_OK) break;
    mq_log(MQ_LOG_WARN, "consumer.topics", "%s; retrying", err.message);
    sleep_ms(1000);
  }
  free(all);
  char **lag_args = metrics_start(o->name, o->topics, nt);
  mq_http_t *http = NULL;
  char http_ep[96] = "";
  if (o->cfg->consumer_http_listen[0]) {
    mq_error_t err;
    http = mq_http_create(NULL);
    if (mq_http_start(http, o->cfg->consumer_http_listen, &err) != MQ_OK) {
      mq_log(MQ_LOG_ERROR, "consumer.http", "%s: %s", err.field, err.message);
      g_stop = 1;
    } else {
      const char *colon = strrchr(o->cfg->consumer_http_listen, ':');
      int hl = colon ? (int)(colon - o->cfg->consumer_http_listen) : 0;
      snprintf(http_ep, sizeof http_ep, "%.*s:%d", hl, o->cfg->consumer_http_listen, mq_http_port(http));
    }
  }
  rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)nt);
  for (size_t i = 0; i < nt; i++) rd_kafka_topic_partition_list_add(subs, o->topics[i], RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t serr = rd_kafka_subscribe(rk, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (serr) {
    mq_log(MQ_LOG_ERROR, "consumer.subscribe", "%s", rd_kafka_err2str(serr));
    g_stop = 1;
  } else {
    mq_log(MQ_LOG_INFO, "consumer.ready", "group %s consuming %zu topics; HTTP on %s", group, nt,
           http_ep[0] ? http_ep : "(none)");
    printf("READY consumer=%s http=%s\n", o->name, http_ep);
    fflush(stdout);
  }

  int max_attempts = (int)o->cfg->consumer_max_attempts;
  while (!g_stop) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (o->idle) o->idle(o->ctx, caught_up(rk));
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        mq_log(MQ_LOG_DEBUG, "consumer.poll", "%s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    mq_consumer_msg_t cm = {rd_kafka_topic_name(m->rkt), m->partition, m->offset, m->payload, m->len};
    rd_kafka_timestamp_type_t tst;
    int64_t produced_ms = rd_kafka_message_timestamp(m, &tst);
    bool skip =
        o->cfg->consumer_skip_before_ms > 0 && produced_ms >= 0 && produced_ms < o->cfg->consumer_skip_before_ms;
    Marquee__Events__V1__Envelope *ev = skip ? NULL : marquee__events__v1__envelope__unpack(NULL, m->len, m->payload);
    bool done = false;
    if (skip) { /* older than this consumer cares about (tests on shared topics) */
      done = true;
      count(OUT_SKIPPED);
    } else if (!ev || !ev->event_id || !ev->event_id[0]) {
      mq_log(MQ_LOG_ERROR, "consumer.poison", "%s[%d]@%lld is not an event envelope: dead-lettered", cm.topic,
             (int)cm.partition, (long long)cm.offset);
      done = dead_letter(dlq, dlq_topic, group, m, "undecodable envelope");
      if (done) count(OUT_DEAD_LETTERED);
    } else {
      const mq_event_route_t *route = mq_consumer_route(o->routes, o->n_routes, ev->type ? ev->type : "");
      char key[200];
      snprintf(key, sizeof key, "%s/%s", group, ev->event_id);
      if (!route) {
        done = true;
        count(OUT_SKIPPED);
      } else if (o->dedupe && already_processed(o->store, key)) {
        done = true;
        count(OUT_DUPLICATE);
      } else {
        int attempts = 0;
        int64_t backoff = 100;
        while (!g_stop) {
          mq_error_t err;
          mq_error_clear(&err);
          mq_code_t rc = route->fn(o->ctx, ev, &cm, &err);
          if (rc == MQ_OK && o->dedupe) rc = mark_processed(o->store, key, &err);
          if (rc == MQ_OK) {
            done = true;
            count(OUT_HANDLED);
            break;
          }
          if (mq_consumer_is_permanent(rc) || (!mq_consumer_is_transient(rc) && ++attempts >= max_attempts)) {
            char reason[320];
            snprintf(reason, sizeof reason, "%s: %s", mq_code_name(rc), err.message);
            mq_log(MQ_LOG_ERROR, "consumer.dead_letter", "event %s (%s) failed %d times: %s", ev->event_id,
                   ev->type ? ev->type : "", attempts, reason);
            done = dead_letter(dlq, dlq_topic, group, m, reason);
            if (done) count(OUT_DEAD_LETTERED);
            break;
          }
          atomic_fetch_add_explicit(&g_retries, 1, memory_order_relaxed);
          mq_log(MQ_LOG_WARN, "consumer.retry", "event %s: %s (%s); retrying in %lld ms", ev->event_id,
                 mq_code_name(rc), err.message, (long long)backoff);
          sleep_ms(backoff);
          backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
      }
    }
    if (done) {
      rd_kafka_topic_partition_list_t *off = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(off, cm.topic, cm.partition)->offset = cm.offset + 1;
      rd_kafka_offsets_store(rk, off);
      rd_kafka_topic_partition_list_destroy(off);
      lag_note(cm.topic, cm.partition, cm.offset + 1);
    }
    if (ev) marquee__events__v1__envelope__free_unpacked(ev, NULL);
    rd_kafka_message_destroy(m);
  }
  mq_log(MQ_LOG_INFO, "consumer.stop", "committing offsets and leaving the group");
  mq_http_destroy(http); /* no scrape runs past here: the lag gauges use rk */
  metrics_stop(lag_args);
  g_lag.rk = NULL;
  rd_kafka_commit(rk, NULL, 0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  rd_kafka_flush(dlq, 5000);
  rd_kafka_destroy(dlq);
  return 0;
}
