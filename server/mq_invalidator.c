/*
 * mq_invalidator.c — see mq_invalidator.h. One thread: until assigned, read
 * the topics' partition counts and assign every partition at its end; then
 * poll. A partition added later is picked up at the next re-assignment
 * (every 60 s).
 */
#include "mq_invalidator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq_kafka.h"
#include "mq_log.h"

struct mq_invalidator {
  rd_kafka_t *rk;
  pthread_t th;
  atomic_bool stop;
  atomic_uint_fast64_t seen;
  char **topics;
  size_t n_topics;
  mq_invalidate_fn fn;
  void *arg;
};

static bool assign_all(mq_invalidator_t *iv) {
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
  bool ok = true;
  for (size_t i = 0; i < iv->n_topics && ok; i++) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(iv->rk, iv->topics[i], NULL);
    const struct rd_kafka_metadata *md = NULL;
    ok = rd_kafka_metadata(iv->rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
         md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0;
    if (ok)
      for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(parts, iv->topics[i], md->topics[0].partitions[p].id)->offset =
            RD_KAFKA_OFFSET_END;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
  }
  if (ok) ok = rd_kafka_assign(iv->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_topic_partition_list_destroy(parts);
  return ok;
}

static void *run(void *arg) {
  mq_invalidator_t *iv = arg;
  bool assigned = false;
  int64_t next_assign = 0;
  while (!atomic_load(&iv->stop)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= next_assign && !assigned) {
      assigned = assign_all(iv);
      next_assign = now + (assigned ? 60000 : 1000);
      if (assigned) mq_log(MQ_LOG_DEBUG, "invalidator.assigned", "listening for other instances' writes");
    } else if (assigned && now >= next_assign) {
      assigned = false; /* re-read partition counts now and then */
      continue;
    }
    if (!assigned) {
      struct timespec d = {0, 200 * 1000000L};
      nanosleep(&d, NULL);
      continue;
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

mq_invalidator_t *mq_invalidator_start(const mq_config_t *cfg, const char *instance_id, const char *const *topics,
                                       mq_invalidate_fn fn, void *arg) {
  if (!cfg->kafka_brokers[0]) return NULL;
  mq_invalidator_t *iv = calloc(1, sizeof *iv);
  if (!iv) abort();
  for (const char *const *t = topics; *t; t++) iv->n_topics++;
  iv->topics = calloc(iv->n_topics + 1, sizeof *iv->topics);
  if (!iv->topics) abort();
  for (size_t i = 0; i < iv->n_topics; i++) iv->topics[i] = strdup(topics[i]);
  iv->fn = fn;
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
    free(iv);
    return NULL;
  }
  if (pthread_create(&iv->th, NULL, run, iv) != 0) abort();
  pthread_setname_np(iv->th, "mq-invalidate");
  return iv;
}

uint64_t mq_invalidator_seen(mq_invalidator_t *iv) {
  return iv ? atomic_load(&iv->seen) : 0;
}

void mq_invalidator_stop(mq_invalidator_t *iv) {
  if (!iv) return;
  atomic_store(&iv->stop, true);
  pthread_join(iv->th, NULL);
  rd_kafka_consumer_close(iv->rk);
  rd_kafka_destroy(iv->rk);
  for (size_t i = 0; i < iv->n_topics; i++) free(iv->topics[i]);
  free(iv->topics);
  free(iv);
}
