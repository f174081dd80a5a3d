/*
 * mq_relay.c — see mq_relay.h and mq_outbox.h.
 *
 * The relay thread runs journal scans, produce calls and delivery reports
 * (rd_kafka_poll is only called there), so the in-flight set needs no lock.
 * Invariant: an event id is in `inflight` from its produce until its
 * delivery report; while there, scans skip it (no duplicate produce from
 * this process). A failed delivery (Kafka down past message.timeout.ms)
 * just removes it from the set: the entry is still in the journal and the
 * next scan retries it. The sweeper thread only reads domain collections
 * and inserts into the journal.
 */
#include "mq_relay.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mq_bson.h"
#include "mq_kafka.h"
#include "mq_log.h"
#include "mq_metrics.h"
#include "mq_outbox.h"

#define MAX_COLLECTIONS 32
#define BUCKETS 1024
#define SCAN_LIMIT 1000
#define MIN_SCAN_GAP_MS 20
#define MAX_INFLIGHT 20000
#define SWEEP_WINDOW_MS (24LL * 3600 * 1000) /* a restart within a day recovers every event */
#define SWEEP_GRACE_MS (30LL * 1000)         /* a live writer journals well within this */
#define LEDGER_KEEP_MS (2 * SWEEP_WINDOW_MS) /* longer than the window: nothing sent is re-sent */
#define SWEEP_BATCH 256

typedef struct pending {
  struct pending *next; /* hash chain */
  char id[37];
  char jid[96]; /* the journal entry's _id */
} pending_t;

struct mq_relay {
  const mq_config_t *cfg;
  mq_store_t *store;
  char *colls[MAX_COLLECTIONS];
  int n_colls;
  rd_kafka_t *rk;
  pthread_t thread;
  bool running;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop, kicked;
  pending_t *set[BUCKETS];
  size_t n_inflight;
  pending_t *acked; /* acknowledged, not yet in the ledger (settle) */
  size_t n_acked;
  bool topics_ready;
  atomic_bool kafka_up;
  atomic_int_fast64_t oldest_ms;
  atomic_uint_fast64_t published;
  atomic_uint_fast64_t recovered;
  int64_t next_probe_ms;
  pthread_t sweeper;
  bool sweeper_running;
  int64_t verified_until_ms; /* sweeper: entries older than this were checked */
};

static unsigned hash_id(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h % BUCKETS;
}

static pending_t *set_find(mq_relay_t *r, const char *id) {
  for (pending_t *p = r->set[hash_id(id)]; p; p = p->next)
    if (!strcmp(p->id, id)) return p;
  return NULL;
}

static void set_remove(mq_relay_t *r, pending_t *x) {
  pending_t **pp = &r->set[hash_id(x->id)];
  while (*pp && *pp != x) pp = &(*pp)->next;
  if (*pp) {
    *pp = x->next;
    r->n_inflight--;
  }
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Delivery report: an acknowledged event waits in r->acked for settle(),
 * which records a whole batch in the ledger and drops it from the journal
 * in two writes (per event, that was four round trips and two store
 * transactions: the relay's share of every write's cost). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  mq_relay_t *r = opaque;
  pending_t *p = m->_private;
  if (!p) return;
  set_remove(r, p);
  if (m->err) {
    mq_log(MQ_LOG_WARN, "relay.delivery_failed", "event %s: %s (will retry)", p->id, rd_kafka_err2str(m->err));
    free(p);
    return;
  }
  atomic_fetch_add(&r->published, 1);
  p->next = r->acked;
  r->acked = p;
  r->n_acked++;
}

/* The acknowledged events into the ledger (the sweeper consults it), then
 * out of the journal. A failure leaves them journaled: they are published
 * again and consumers dedupe. Relay thread only. */
static void settle(mq_relay_t *r) {
  if (!r->acked) return;
  pending_t *list = r->acked;
  size_t n = r->n_acked;
  r->acked = NULL;
  r->n_acked = 0;
  bson_t **docs = calloc(n, sizeof *docs);
  if (!docs) abort();
  bson_t filter = BSON_INITIALIZER, in, arr;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
  BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
  int64_t now = mq_now_unix_ms();
  size_t i = 0;
  for (pending_t *p = list; p; p = p->next, i++) {
    docs[i] = bson_new();
    BSON_APPEND_UTF8(docs[i], "_id", p->id);
    BSON_APPEND_DATE_TIME(docs[i], "at", now);
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_UTF8(&arr, k, p->jid);
  }
  bson_append_array_end(&in, &arr);
  bson_append_document_end(&filter, &in);
  mongoc_client_t *c = mq_store_acquire(r->store);
  mongoc_collection_t *ledger = mq_store_collection(r->store, c, MQ_OUTBOX_LEDGER);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  bson_error_t berr;
  /* duplicates (11000: sent before, by us or another relay) are fine */
  bool ok = mongoc_collection_insert_many(ledger, (const bson_t **)docs, n, &opts, NULL, &berr) || berr.code == 11000;
  if (ok) {
    mongoc_collection_t *journal = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
    ok = mongoc_collection_delete_many(journal, &filter, NULL, NULL, &berr);
    mongoc_collection_destroy(journal);
  }
  if (!ok)
    mq_log(MQ_LOG_WARN, "relay.ack_failed",
           "%zu events published but not cleared: %s (they will be republished; consumers dedupe)", n, berr.message);
  mongoc_collection_destroy(ledger);
  mq_store_release(r->store, c);
  bson_destroy(&opts);
  bson_destroy(&filter);
  for (i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  while (list) {
    pending_t *next = list->next;
    free(list);
    list = next;
  }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  mq_relay_t *r = opaque;
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    if (atomic_exchange(&r->kafka_up, false))
      mq_log(MQ_LOG_WARN, "relay.kafka_down", "%s; events wait in MongoDB until Kafka returns", reason);
    return;
  }
  char fatal[256];
  if (rd_kafka_fatal_error(rk, fatal, sizeof fatal))
    mq_log(MQ_LOG_ERROR, "relay.kafka_fatal", "%s", fatal);
  else
    mq_log(MQ_LOG_WARN, "relay.kafka_error", "%s", reason);
}

static double gauge_up(void *arg) {
  return mq_relay_kafka_up(arg) ? 1 : 0;
}
static double gauge_lag(void *arg) {
  return mq_relay_lag_seconds(arg);
}
static double gauge_recovered(void *arg) {
  return (double)mq_relay_recovered(arg);
}
static double gauge_published(void *arg) {
  return (double)mq_relay_published(arg);
}

mq_code_t mq_relay_create(const mq_config_t *cfg, mq_store_t *store, const char *client_id, mq_relay_t **out,
                          mq_error_t *err) {
  mq_relay_t *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->cfg = cfg;
  r->store = store;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  rd_kafka_conf_t *conf = mq_kafka_conf(cfg, client_id);
  bool ok = mq_kafka_set(conf, "enable.idempotence", "true") && mq_kafka_set(conf, "acks", "all") &&
            mq_kafka_set(conf, "linger.ms", "5") && mq_kafka_set(conf, "message.timeout.ms", "15000") &&
            mq_kafka_set(conf, "compression.codec", "lz4");
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, r);
  char errstr[256];
  r->rk = ok ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr) : NULL;
  if (!r->rk) {
    if (ok) mq_log(MQ_LOG_ERROR, "relay.create", "%s", errstr);
    rd_kafka_conf_destroy(conf);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_KAFKA_BROKERS", "cannot create the Kafka producer");
  }
  mq_metrics_gauge("marquee_dependency_up{dependency=\"kafka\"}", "1 if the dependency answered the last probe",
                   gauge_up, r);
  mq_metrics_gauge("marquee_outbox_lag_seconds", "Age of the oldest event not yet published to Kafka", gauge_lag, r);
  mq_metrics_gauge("marquee_outbox_published_total", "Events published by this process's relay", gauge_published, r);
  mq_metrics_gauge("marquee_outbox_recovered_total", "Events the sweeper found stored but never journaled",
                   gauge_recovered, r);
  *out = r;
  return MQ_OK;
}

void mq_relay_watch(mq_relay_t *r, const char *collection) {
  for (int i = 0; i < r->n_colls; i++)
    if (!strcmp(r->colls[i], collection)) return;
  if (r->n_colls < MAX_COLLECTIONS) r->colls[r->n_colls++] = strdup(collection);
}

/* Produces one journal entry unless already in flight. False when the
 * producer queue is full (stop this scan). */
static bool produce_entry(mq_relay_t *r, const bson_t *e, int64_t *oldest) {
  bson_iter_t it;
  const char *jid = NULL, *id = NULL, *topic = NULL, *key = NULL, *type = NULL;
  const uint8_t *data = NULL;
  uint32_t data_len = 0, key_len = 0;
  bson_subtype_t st;
  int64_t at = 0;
  if (bson_iter_init(&it, e)) {
    while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (!strcmp(k, "_id") && BSON_ITER_HOLDS_UTF8(&it))
        jid = bson_iter_utf8(&it, NULL);
      else if (!strcmp(k, "id") && BSON_ITER_HOLDS_UTF8(&it))
        id = bson_iter_utf8(&it, NULL);
      else if (!strcmp(k, "topic") && BSON_ITER_HOLDS_UTF8(&it))
        topic = bson_iter_utf8(&it, NULL);
      else if (!strcmp(k, "key") && BSON_ITER_HOLDS_UTF8(&it))
        key = bson_iter_utf8(&it, &key_len);
      else if (!strcmp(k, "type") && BSON_ITER_HOLDS_UTF8(&it))
        type = bson_iter_utf8(&it, NULL);
      else if (!strcmp(k, "at") && BSON_ITER_HOLDS_DATE_TIME(&it))
        at = bson_iter_date_time(&it);
      else if (!strcmp(k, "data") && BSON_ITER_HOLDS_BINARY(&it))
        bson_iter_binary(&it, &st, &data_len, &data);
    }
  }
  if (!jid || !id || !topic || !key || !data || strlen(id) > 36 || strlen(jid) >= sizeof((pending_t *)0)->jid) {
    mq_log(MQ_LOG_ERROR, "relay.bad_entry", "malformed journal entry skipped");
    return true;
  }
  if (at && (*oldest == 0 || at < *oldest)) *oldest = at;
  if (set_find(r, id)) return true;
  if (r->n_inflight >= MAX_INFLIGHT) return false;
  pending_t *p = calloc(1, sizeof *p);
  if (!p) abort();
  snprintf(p->id, sizeof p->id, "%s", id);
  snprintf(p->jid, sizeof p->jid, "%s", jid);
  rd_kafka_resp_err_t perr = rd_kafka_producev(
      r->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)data, data_len),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("event-id", id, -1),
      RD_KAFKA_V_HEADER("event-type", type ? type : "", -1), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
  if (perr) {
    free(p);
    if (perr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      mq_log(MQ_LOG_WARN, "relay.produce_failed", "event %s: %s", id, rd_kafka_err2str(perr));
    return false;
  }
  unsigned h = hash_id(p->id);
  p->next = r->set[h];
  r->set[h] = p;
  r->n_inflight++;
  return true;
}

/* One pass over the journal, oldest first. */
static void scan(mq_relay_t *r) {
  int64_t oldest = 0;
  bool more = true;
  mongoc_client_t *c = mq_store_acquire(r->store);
  mongoc_collection_t *coll = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", SCAN_LIMIT);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc;
  while (more && mongoc_cursor_next(cur, &doc)) more = produce_entry(r, doc, &oldest);
  bson_error_t berr;
  if (mongoc_cursor_error(cur, &berr)) mq_log(MQ_LOG_DEBUG, "relay.scan_failed", "%s", berr.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mq_store_release(r->store, c);
  atomic_store(&r->oldest_ms, oldest);
}

/* ---- the sweeper: events a crash left in their documents only ---- */

typedef struct candidate {
  char id[37];
  int coll;
  bson_value_t doc_id;
  bson_t *entry;
} candidate_t;

static void candidates_free(candidate_t *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    bson_value_destroy(&c[i].doc_id);
    bson_destroy(c[i].entry);
  }
}

/* Journals the candidates the ledger does not know (one $in read per batch). */
static void recover(mq_relay_t *r, mongoc_client_t *c, candidate_t *cand, size_t n) {
  if (!n) return;
  mongoc_collection_t *ledger = mq_store_collection(r->store, c, MQ_OUTBOX_LEDGER);
  mongoc_collection_t *journal = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
  bson_t filter = BSON_INITIALIZER, cond, in, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &cond);
  BSON_APPEND_ARRAY_BEGIN(&cond, "$in", &in);
  for (size_t i = 0; i < n; i++) {
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    BSON_APPEND_UTF8(&in, k, cand[i].id);
  }
  bson_append_array_end(&cond, &in);
  bson_append_document_end(&filter, &cond);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 1);
  bson_append_document_end(&opts, &proj);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(ledger, &filter, &opts, NULL);
  bool *sent = calloc(n, sizeof *sent);
  if (!sent) abort();
  const bson_t *doc;
  bson_iter_t it;
  while (mongoc_cursor_next(cur, &doc))
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
      for (size_t i = 0; i < n; i++)
        if (!strcmp(cand[i].id, bson_iter_utf8(&it, NULL))) sent[i] = true;
  bson_error_t berr;
  bool ok = !mongoc_cursor_error(cur, &berr);
  if (!ok) mq_log(MQ_LOG_WARN, "relay.sweep_failed", "ledger: %s", berr.message);
  for (size_t i = 0; ok && i < n; i++) {
    if (sent[i]) continue;
    mq_error_t err;
    if (mq_outbox_journal_entry(journal, r->colls[cand[i].coll], &cand[i].doc_id, cand[i].entry, &err) == MQ_OK) {
      atomic_fetch_add(&r->recovered, 1);
      mq_log(MQ_LOG_WARN, "relay.recovered", "event %s was stored but never journaled; journaled now", cand[i].id);
    }
  }
  free(sent);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_collection_destroy(ledger);
  mongoc_collection_destroy(journal);
  mq_relay_kick(r);
}

static bool sweep_collection(mq_relay_t *r, mongoc_client_t *c, int ci, int64_t from, int64_t to) {
  mongoc_collection_t *coll = mq_store_collection(r->store, c, r->colls[ci]);
  bson_t filter = BSON_INITIALIZER, cond, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, MQ_OUTBOX_FIELD ".at", &cond);
  BSON_APPEND_DATE_TIME(&cond, "$gte", from);
  bson_append_document_end(&filter, &cond);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 1);
  bson_append_document_end(&opts, &proj);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  candidate_t batch[SWEEP_BATCH];
  size_t n = 0;
  const bson_t *doc;
  while (mongoc_cursor_next(cur, &doc)) {
    bson_iter_t it, arr, f;
    if (!bson_iter_init_find(&it, doc, "_id")) continue;
    const bson_value_t *doc_id = bson_iter_value(&it);
    if (!bson_iter_init_find(&arr, doc, MQ_OUTBOX_FIELD) || !BSON_ITER_HOLDS_ARRAY(&arr) ||
        !bson_iter_recurse(&arr, &it))
      continue;
    while (bson_iter_next(&it)) {
      const uint8_t *d;
      uint32_t len;
      bson_t e;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
      bson_iter_document(&it, &len, &d);
      if (!bson_init_static(&e, d, len)) continue;
      int64_t at = bson_iter_init_find(&f, &e, "at") && BSON_ITER_HOLDS_DATE_TIME(&f) ? bson_iter_date_time(&f) : 0;
      if (at < from || at >= to) continue;
      if (!bson_iter_init_find(&f, &e, "id") || !BSON_ITER_HOLDS_UTF8(&f) || strlen(bson_iter_utf8(&f, NULL)) > 36)
        continue;
      candidate_t *k = &batch[n++];
      snprintf(k->id, sizeof k->id, "%s", bson_iter_utf8(&f, NULL));
      k->coll = ci;
      bson_value_copy(doc_id, &k->doc_id);
      k->entry = bson_copy(&e);
      if (n == SWEEP_BATCH) {
        recover(r, c, batch, n);
        candidates_free(batch, n);
        n = 0;
      }
    }
  }
  recover(r, c, batch, n);
  candidates_free(batch, n);
  bson_error_t berr;
  bool ok = !mongoc_cursor_error(cur, &berr);
  if (!ok) mq_log(MQ_LOG_WARN, "relay.sweep_failed", "%s: %s", r->colls[ci], berr.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  return ok;
}

/* Entries written in [verified_until, now - grace) are checked against the
 * ledger; the first sweep looks back a whole window. Then old ledger
 * records go. */
static void sweep(mq_relay_t *r) {
  int64_t now = mq_now_unix_ms(), to = now - SWEEP_GRACE_MS;
  int64_t from = r->verified_until_ms ? r->verified_until_ms : now - SWEEP_WINDOW_MS;
  if (to <= from) return;
  mongoc_client_t *c = mq_store_acquire(r->store);
  bool ok = true;
  for (int i = 0; i < r->n_colls; i++) ok = sweep_collection(r, c, i, from, to) && ok;
  mq_store_release(r->store, c);
  if (ok) r->verified_until_ms = to;
  bson_t old = BSON_INITIALIZER, cond;
  BSON_APPEND_DOCUMENT_BEGIN(&old, "at", &cond);
  BSON_APPEND_DATE_TIME(&cond, "$lt", now - LEDGER_KEEP_MS);
  bson_append_document_end(&old, &cond);
  mq_error_t err;
  mq_store_delete(r->store, MQ_OUTBOX_LEDGER, &old, true, NULL, &err);
  bson_destroy(&old);
}

static void *sweeper_main(void *arg) {
  mq_relay_t *r = arg;
  int64_t next = 0;
  pthread_mutex_lock(&r->mu);
  while (!r->stop) {
    int64_t now = mono_ms();
    if (now >= next) {
      pthread_mutex_unlock(&r->mu);
      sweep(r);
      pthread_mutex_lock(&r->mu);
      /* until the first full sweep succeeded, retry soon */
      next = mono_ms() + (r->verified_until_ms ? r->cfg->outbox_sweep_s * 1000LL : 2000);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait = next - now;
    if (wait > 1000) wait = 1000;
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void *relay_main(void *arg) {
  mq_relay_t *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    bool stop = r->stop;
    r->kicked = false;
    pthread_mutex_unlock(&r->mu);
    if (stop) break;
    int64_t now = mono_ms();
    if (now >= r->next_probe_ms) {
      bool up = mq_kafka_ping(r->rk, 1000);
      if (up && !atomic_exchange(&r->kafka_up, true)) mq_log(MQ_LOG_INFO, "relay.kafka_up", "Kafka reachable");
      if (!up && atomic_exchange(&r->kafka_up, false))
        mq_log(MQ_LOG_WARN, "relay.kafka_down", "Kafka unreachable; events wait in MongoDB");
      if (up && !r->topics_ready) {
        mq_error_t err;
        if (mq_kafka_create_topics(r->rk, r->cfg, mq_kafka_domain_topics, 5000, &err) == MQ_OK) {
          r->topics_ready = true;
          mq_log(MQ_LOG_INFO, "relay.topics", "domain topics ready");
        } else {
          mq_log(MQ_LOG_WARN, "relay.topics", "%s", err.message);
        }
      }
      r->next_probe_ms = mono_ms() + r->cfg->health_interval_ms;
    }
    if (r->topics_ready && atomic_load(&r->kafka_up)) scan(r);
    rd_kafka_poll(r->rk, 0);
    settle(r);
    /* wait for a kick or the poll interval, serving delivery reports
     * meanwhile; kicks within MIN_SCAN_GAP_MS of the last scan wait for the
     * gap, so a stream of writes is read in batches, not once per write
     * (every scan re-reads the journal, a full scan on FerretDB) */
    int64_t scanned = mono_ms(), until = scanned + r->cfg->outbox_poll_ms;
    for (;;) {
      rd_kafka_poll(r->rk, 10);
      settle(r);
      pthread_mutex_lock(&r->mu);
      bool stopping = r->stop, kicked = r->kicked;
      pthread_mutex_unlock(&r->mu);
      int64_t t = mono_ms();
      if (stopping || t >= until || (kicked && t - scanned >= MIN_SCAN_GAP_MS)) break;
    }
  }
  return NULL;
}

mq_code_t mq_relay_start(mq_relay_t *r, mq_error_t *err) {
  if (pthread_create(&r->thread, NULL, relay_main, r) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the relay thread");
  pthread_setname_np(r->thread, "mq-relay");
  r->running = true;
  if (pthread_create(&r->sweeper, NULL, sweeper_main, r) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the outbox sweeper thread");
  pthread_setname_np(r->sweeper, "mq-sweep");
  r->sweeper_running = true;
  return MQ_OK;
}

void mq_relay_kick(mq_relay_t *r) {
  pthread_mutex_lock(&r->mu);
  r->kicked = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

bool mq_relay_kafka_up(const mq_relay_t *r) {
  return atomic_load(&((mq_relay_t *)r)->kafka_up);
}

double mq_relay_lag_seconds(const mq_relay_t *r) {
  int64_t oldest = atomic_load(&((mq_relay_t *)r)->oldest_ms);
  if (!oldest) return 0;
  double lag = (double)(mq_now_unix_ms() - oldest) / 1000.0;
  return lag > 0 ? lag : 0;
}

uint64_t mq_relay_recovered(const mq_relay_t *r) {
  return atomic_load(&((mq_relay_t *)r)->recovered);
}

uint64_t mq_relay_published(const mq_relay_t *r) {
  return atomic_load(&((mq_relay_t *)r)->published);
}

void mq_relay_destroy(mq_relay_t *r) {
  if (!r) return;
  mq_metrics_gauge_remove(r);
  if (r->running) {
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
  }
  if (r->sweeper_running) pthread_join(r->sweeper, NULL);
  if (r->n_inflight) rd_kafka_flush(r->rk, 5000);
  settle(r);
  rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(r->rk, 0); /* purged messages' reports free their entries */
  rd_kafka_destroy(r->rk);
  for (int i = 0; i < BUCKETS; i++) {
    pending_t *p = r->set[i];
    while (p) {
      pending_t *n = p->next;
      free(p);
      p = n;
    }
  }
  for (int i = 0; i < r->n_colls; i++) free(r->colls[i]);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}
