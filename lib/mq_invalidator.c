/*
 * mq_invalidator.c — see mq_invalidator.h. One thread: assign every
 * partition of the topics at its high watermark as soon as the topic exists
 * (retried every second), then poll; partition counts are re-read every
 * minute and partitions added since are read from their beginning.
 */
#include "lib/mq_invalidator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_kafka.h"

struct mq_invalidator {
  rd_kafka_t *rk;
  pthread_t th;
  atomic_bool stop;
  atomic_bool live;
  atomic_uint_fast64_t seen;
  char **topics;
  int *assigned; /* partitions of each topic already assigned */
  size_t n_topics;
  mq_invalidate_fn fn;
  mq_invalidator_live_fn live_fn;
  void *arg;
  bool halted; /* the thread is joined (owner's thread only) */
};

/* Adds the topic's partitions not yet assigned. The first time a topic is
 * seen, each partition starts at its current high watermark (a concrete
 * offset, so nothing produced after this call can be skipped, unlike
 * OFFSET_END, which is resolved later); partitions that appear afterwards
 * were created while we listened and are read from their beginning.
 * Returns true when the topic has at least one partition assigned. */
static bool assign_topic(mq_invalidator_t *iv, size_t i) {
  rd_kafka_topic_t *t = rd_kafka_topic_new(iv->rk, iv->topics[i], NULL);
  const struct rd_kafka_metadata *md = NULL;
  bool ok = rd_kafka_metadata(iv->rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->topic_cnt == 1 &&
            md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
  int have = iv->assigned[i];
  int count = ok && md ? md->topics[0].partition_cnt : 0;
  if (ok && count > have) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(count - have);
    for (int p = have; p < count && ok; p++) {
      int64_t lo = 0, hi = 0;
      if (have == 0) /* a leader must answer: a topic still being created is retried later */
        ok = rd_kafka_query_watermark_offsets(iv->rk, iv->topics[i], p, &lo, &hi, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR;
      rd_kafka_topic_partition_list_add(parts, iv->topics[i], p)->offset = have == 0 ? hi : RD_KAFKA_OFFSET_BEGINNING;
    }
    if (ok) {
      rd_kafka_error_t *e = rd_kafka_incremental_assign(iv->rk, parts);
      if (e) {
        mq_log(MQ_LOG_WARN, "invalidator.assign_failed", "%s: %s", iv->topics[i], rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      } else {
        iv->assigned[i] = count;
      }
    }
    rd_kafka_topic_partition_list_destroy(parts);
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  return iv->assigned[i] > 0;
}

static void *run(void *arg) {
  mq_invalidator_t *iv = arg;
  int64_t next_check = 0;
  while (!atomic_load(&iv->stop)) {
    int64_t now = mq_now_ms();
    if (now >= next_check) {
      bool all = true;
      for (size_t i = 0; i < iv->n_topics && !atomic_load(&iv->stop); i++) all = assign_topic(iv, i) && all;
      /* pending topics are retried every second; then partition counts every minute */
      next_check = now + (all ? 60000 : 1000);
      if (all && !atomic_load(&iv->live)) {
        atomic_store(&iv->live, true);
        mq_log(MQ_LOG_DEBUG, "invalidator.live", "listening for other instances' writes");
        if (iv->live_fn) iv->live_fn(iv->arg, true);
      }
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(iv->rk, 200);
    if (!m) continue;
    if (!m->err && m->payload) {
      Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, m->len, m->payload);
      if (ev) {
        iv->fn(iv->arg, rd_kafka_topic_name(m->rkt), ev);
        marquee__events__v1__envelope__free_unpacked(ev, NULL);
        atomic_fetch_add(&iv->seen, 1);
      }
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

static double g_live(void *arg) {
  return atomic_load(&((mq_invalidator_t *)arg)->live) ? 1 : 0;
}
static double g_seen(void *arg) {
  return (double)atomic_load(&((mq_invalidator_t *)arg)->seen);
}

mq_invalidator_t *mq_invalidator_start(const mq_config_t *cfg, const char *instance_id, const char *const *topics,
                                       mq_invalidate_fn fn, mq_invalidator_live_fn live_fn, void *arg) {
  if (!cfg->kafka_brokers[0]) return NULL;
  mq_invalidator_t *iv = mq_xcalloc(1, sizeof *iv);
  for (const char *const *t = topics; *t; t++) iv->n_topics++;
  iv->topics = mq_xcalloc(iv->n_topics + 1, sizeof *iv->topics);
  for (size_t i = 0; i < iv->n_topics; i++) iv->topics[i] = strdup(topics[i]);
  iv->assigned = mq_xcalloc(iv->n_topics, sizeof *iv->assigned);
  iv->fn = fn;
  iv->live_fn = live_fn;
  iv->arg = arg;
  char client[160], group[200];
  snprintf(client, sizeof client, "marquee-invalidator-%s", instance_id);
  snprintf(group, sizeof group, "marquee-cache-%s", instance_id); /* never committed to */
  rd_kafka_conf_t *conf = mq_kafka_conf(cfg, client);
  mq_kafka_set(conf, "group.id", group);
  mq_kafka_set(conf, "enable.auto.commit", "false");
  mq_kafka_set(conf, "enable.auto.offset.store", "false");
  mq_kafka_set(conf, "enable.partition.eof", "false");
  char errstr[256];
  iv->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!iv->rk) {
    rd_kafka_conf_destroy(conf);
    mq_log(MQ_LOG_WARN, "invalidator.failed", "cannot create the Kafka consumer: %s", errstr);
    for (size_t i = 0; i < iv->n_topics; i++) free(iv->topics[i]);
    free(iv->topics);
    free(iv->assigned);
    free(iv);
    return NULL;
  }
  mq_metrics_gauge("marquee_invalidator_live", "1 once this instance hears every write made by other instances", g_live,
                   iv);
  mq_metrics_gauge("marquee_invalidator_events_total", "Domain events read to invalidate caches", g_seen, iv);
  if (pthread_create(&iv->th, NULL, run, iv) != 0) mq_die("cannot start the invalidator thread");
  pthread_setname_np(iv->th, "mq-invalidate");
  return iv;
}

uint64_t mq_invalidator_seen(mq_invalidator_t *iv) {
  return iv ? atomic_load(&iv->seen) : 0;
}

void mq_invalidator_halt(mq_invalidator_t *iv) {
  if (!iv || iv->halted) return;
  atomic_store(&iv->stop, true);
  pthread_join(iv->th, NULL);
  atomic_store(&iv->live, false);
  iv->halted = true;
}

void mq_invalidator_stop(mq_invalidator_t *iv) {
  if (!iv) return;
  mq_invalidator_halt(iv);
  mq_metrics_gauge_remove(iv);
  rd_kafka_consumer_close(iv->rk);
  rd_kafka_destroy(iv->rk);
  for (size_t i = 0; i < iv->n_topics; i++) free(iv->topics[i]);
  free(iv->topics);
  free(iv->assigned);
  free(iv);
}

bool mq_invalidator_live(mq_invalidator_t *iv) {
  return iv && atomic_load(&iv->live);
}
