/*
 * mq_relay.c — see mq_relay.h and mq_outbox.h.
 *
 * Two modes, chosen per process:
 *  - direct: writers hand each new outbox entry to the relay (offer, from
 *    mq_store under the document's lock, so in write order) and nothing is
 *    written to the journal; the relay produces it from memory, and after
 *    the broker's acknowledgement records it in the ledger. An entry that
 *    cannot go out (producer queue full, delivery failed) is journaled by
 *    the relay (fail_direct), and the process switches to journal mode.
 *  - journal: offers are refused, so writers journal their entries
 *    themselves (and tell the relay: journaled), and the relay publishes
 *    them, then deletes them from the journal after the ledger write. It
 *    is the mode at start, while Kafka is down, and while this process has
 *    entries in the journal: journal order is write order, so new entries
 *    cannot overtake old ones.
 * The catch-up scan (every MARQUEE_OUTBOX_POLL_MS, and at once when asked)
 * reads the journal and produces this process's entries that are not in
 * flight and other processes' entries older than CATCHUP_GRACE_MS (their
 * own relay had time: it died, or Kafka was down). After a scan that saw
 * none of this process's entries, with no writer between refusal and
 * journal, the process goes back to direct mode.
 *
 * Invariants:
 *  R1. An event id is in `inflight` from its produce until its delivery
 *      report; meanwhile neither path produces it again from this process.
 *  R2. Every outbox entry of a successful write is, at every moment, in the
 *      journal, or held by this relay (offered, in flight, acknowledged,
 *      failed) until it is in the ledger or journaled, or only in its
 *      document if this process dies (the sweeper's case, mq_relay.h).
 *  R3. In direct mode this process has no entry in the journal and no
 *      writer between a refused offer and its journal insert (n_writing).
 *  R4. Acknowledged entries are settled (ledger, then out of the journal)
 *      before each scan, so a scan never re-reads what this process
 *      published.
 * produce/scan/settle/fail_direct and delivery reports (rd_kafka_poll is
 * only called there) run on the relay thread: the in-flight set and the
 * acked/failed lists need no lock. The sweeper thread only reads domain
 * collections and inserts into the journal.
 */
#include "server/mq_relay.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_fault.h"
#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_event_catalog.h"
#include "lib/mq_kafka.h"
#include "store/mq_bson.h"
#include "store/mq_outbox.h"

#define MAX_COLLECTIONS 32
#define BUCKETS 1024
#define SCAN_LIMIT 1000
#define CATCHUP_GRACE_MS 10000 /* another process's entry: its own relay had this long */
#define SETTLE_GAP_MS 50       /* acknowledgements settle in batches */
#define SETTLE_BATCH 512
#define MAX_OFFERED 50000 /* beyond: refused (the writer journals) */
#define MAX_INFLIGHT 20000
#define SWEEP_WINDOW_MS (24LL * 3600 * 1000) /* a restart within a day recovers every event */
#define SWEEP_GRACE_MS (30LL * 1000)         /* a live writer journals well within this */
#define LEDGER_KEEP_MS (2 * SWEEP_WINDOW_MS) /* longer than the window: nothing sent is re-sent */
#define SWEEP_BATCH 256

typedef struct offered {
  struct offered *next;
  bson_t *entry;  /* the journal document */
  bool journaled; /* false: only this relay has it (direct) */
} offered_t;

typedef struct pending {
  struct pending *next; /* hash chain, then the acked or failed list */
  char id[37];
  char jid[96]; /* the journal entry's _id */
  int64_t at;
  bool journaled; /* in the journal: deleted from it once in the ledger */
  bson_t *entry;  /* direct: the journal document, journaled if delivery fails */
} pending_t;

struct mq_relay {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_store_outbox_hooks_t hooks;
  char *colls[MAX_COLLECTIONS];
  int n_colls;
  rd_kafka_t *rk;
  pthread_t thread;
  bool running;
  pthread_mutex_t mu; /* guards the fields down to n_writing */
  pthread_cond_t cv;
  bool stop, kicked;
  bool catch_up;                     /* scan soon */
  bool direct;                       /* R3 */
  int n_writing;                     /* writers between a refused offer and `journaled` */
  offered_t *offered, *offered_tail; /* handed over, not yet produced */
  size_t n_offered;
  pending_t *set[BUCKETS]; /* relay thread only from here */
  size_t n_inflight;
  pending_t *acked; /* acknowledged, not yet in the ledger (settle) */
  size_t n_acked;
  pending_t *failed; /* direct entries that could not go out, to journal */
  bool topics_ready;
  atomic_bool kafka_up;
  atomic_int_fast64_t oldest_ms;
  atomic_uint_fast64_t published;
  atomic_uint_fast64_t recovered;
  atomic_uint_fast64_t journaled; /* entries this process wrote to the journal */
  atomic_bool direct_gauge;       /* a copy of `direct` for the metrics thread */
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

static void pending_free(pending_t *p) {
  if (p->entry) bson_destroy(p->entry);
  free(p);
}

static void leave_direct(mq_relay_t *r) {
  pthread_mutex_lock(&r->mu);
  r->direct = false;
  atomic_store(&r->direct_gauge, false);
  pthread_mutex_unlock(&r->mu);
}

static void request_catch_up(mq_relay_t *r) {
  pthread_mutex_lock(&r->mu);
  r->catch_up = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Delivery report: an acknowledged event waits in r->acked for settle(),
 * which records a whole batch in the ledger (and drops the journaled ones
 * from the journal) in one or two writes. A failed direct entry goes to
 * r->failed (R2); a failed journaled one stays in the journal for the next
 * scan. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  mq_relay_t *r = opaque;
  pending_t *p = m->_private;
  if (!p) return;
  set_remove(r, p);
  if (m->err) {
    mq_log(MQ_LOG_WARN, "relay.delivery_failed", "event %s: %s (will retry)", p->id, rd_kafka_err2str(m->err));
    if (p->journaled) {
      pending_free(p);
      return;
    }
    p->next = r->failed;
    r->failed = p;
    return;
  }
  atomic_fetch_add(&r->published, 1);
  if (p->entry) { /* no longer needed */
    bson_destroy(p->entry);
    p->entry = NULL;
  }
  p->next = r->acked;
  r->acked = p;
  r->n_acked++;
}

/* The acknowledged events into the ledger (the sweeper consults it), then
 * the journaled ones out of the journal. A failure leaves those journaled:
 * they are published again and consumers dedupe. Relay thread only. */
static void settle(mq_relay_t *r) {
  if (!r->acked) return;
  pending_t *list = r->acked;
  size_t n = r->n_acked, n_journaled = 0;
  r->acked = NULL;
  r->n_acked = 0;
  bson_t **docs = mq_xcalloc(n, sizeof *docs);
  int64_t now = mq_now_unix_ms();
  size_t i = 0;
  for (pending_t *p = list; p; p = p->next, i++) {
    docs[i] = bson_new();
    BSON_APPEND_UTF8(docs[i], "_id", p->id);
    BSON_APPEND_DATE_TIME(docs[i], "at", now);
    if (p->journaled) n_journaled++;
  }
  mongoc_client_t *c = mq_store_acquire(r->store);
  mongoc_collection_t *ledger = mq_store_collection(r->store, c, MQ_OUTBOX_LEDGER);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  bson_error_t berr;
  /* duplicates (11000: sent before, by us or another relay) are fine */
  bool lane = mq_store_lane_enter(r->store, c);
  bool ok;
  if (MQ_FAULT("relay.ledger_write")) { /* the store refuses the ledger write after Kafka acknowledged */
    ok = false;
    bson_set_error(&berr, 0, 0, "fault injected: relay.ledger_write");
  } else {
    ok = mongoc_collection_insert_many(ledger, (const bson_t **)docs, n, &opts, NULL, &berr) || berr.code == 11000;
  }
  mq_store_lane_leave(r->store, lane);
  if (ok && n_journaled) {
    /* one bulk write of deletes by _id (not one _id $in delete: the local
     * store would scan the journal for it, and the journal is long exactly
     * when this runs: a backlog) */
    mongoc_collection_t *journal = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(journal, &opts);
    for (pending_t *p = list; p; p = p->next) {
      if (!p->journaled) continue;
      bson_t sel = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&sel, "_id", p->jid);
      mongoc_bulk_operation_remove_one_with_opts(bulk, &sel, NULL, NULL);
      bson_destroy(&sel);
    }
    ok = mongoc_bulk_operation_execute(bulk, NULL, &berr) != 0;
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(journal);
  }
  if (!ok)
    mq_log(MQ_LOG_WARN, "relay.ack_failed",
           "%zu events published but not recorded: %s (journaled ones will be republished; consumers dedupe)", n,
           berr.message);
  mongoc_collection_destroy(ledger);
  mq_store_release(r->store, c);
  bson_destroy(&opts);
  for (i = 0; i < n; i++) bson_destroy(docs[i]);
  free(docs);
  while (list) {
    pending_t *next = list->next;
    pending_free(list);
    list = next;
  }
}

/* Direct entries that could not go out into the journal (R2), in their
 * write order (journal _ids); journal mode until the catch-up has published
 * them. If the store refuses too, they are left to the sweeper (their
 * documents have them). Relay thread only. */
static void fail_direct(mq_relay_t *r) {
  if (!r->failed) return;
  leave_direct(r);
  size_t n = 0;
  for (pending_t *p = r->failed; p; p = p->next) n++;
  const bson_t **docs = mq_xcalloc(n, sizeof *docs);
  size_t i = 0;
  for (pending_t *p = r->failed; p; p = p->next) docs[i++] = p->entry;
  mongoc_client_t *c = mq_store_acquire(r->store);
  mongoc_collection_t *journal = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  bson_error_t berr;
  if (!mongoc_collection_insert_many(journal, docs, n, &opts, NULL, &berr) && berr.code != 11000)
    mq_log(MQ_LOG_ERROR, "relay.journal_failed",
           "%zu events could not be published nor journaled: %s (the sweeper recovers them from their documents)", n,
           berr.message);
  bson_destroy(&opts);
  mongoc_collection_destroy(journal);
  mq_store_release(r->store, c);
  free(docs);
  while (r->failed) {
    pending_t *next = r->failed->next;
    pending_free(r->failed);
    r->failed = next;
  }
  request_catch_up(r);
}

static void enqueue_locked(mq_relay_t *r, const bson_t *entry, bool journaled) {
  offered_t *o = mq_xmalloc(sizeof *o);
  o->next = NULL;
  o->entry = bson_copy(entry);
  o->journaled = journaled;
  if (r->offered_tail)
    r->offered_tail->next = o;
  else
    r->offered = o;
  r->offered_tail = o;
  r->n_offered++;
  r->kicked = true;
  pthread_cond_signal(&r->cv);
}

/* mq_store's hooks (writer threads, under the document's lock). */
static bool on_offer(void *arg, const bson_t *entry) {
  mq_relay_t *r = arg;
  pthread_mutex_lock(&r->mu);
  bool take = r->direct && atomic_load(&r->kafka_up) && r->n_offered < MAX_OFFERED;
  if (take) {
    enqueue_locked(r, entry, false);
  } else {
    r->direct = false;
    atomic_store(&r->direct_gauge, false);
    r->n_writing++;
  }
  pthread_mutex_unlock(&r->mu);
  return take;
}

static void on_journaled(void *arg, const bson_t *entry, bool stored) {
  mq_relay_t *r = arg;
  pthread_mutex_lock(&r->mu);
  r->n_writing--;
  if (stored) atomic_fetch_add(&r->journaled, 1);
  if (stored && r->n_offered < MAX_OFFERED)
    enqueue_locked(r, entry, true);
  else
    r->catch_up = true; /* stored: the scan finds it; not stored: the sweeper will */
  pthread_mutex_unlock(&r->mu);
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
static double gauge_direct(void *arg) {
  return atomic_load(&((mq_relay_t *)arg)->direct_gauge) ? 1 : 0;
}
static double gauge_journaled(void *arg) {
  return (double)atomic_load(&((mq_relay_t *)arg)->journaled);
}

mq_code_t mq_relay_create(const mq_config_t *cfg, mq_store_t *store, const char *client_id, mq_relay_t **out,
                          mq_error_t *err) {
  mq_relay_t *r = mq_xcalloc(1, sizeof *r);
  r->cfg = cfg;
  r->store = store;
  r->hooks = (mq_store_outbox_hooks_t){.offer = on_offer, .journaled = on_journaled, .arg = r};
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
  mq_metrics_gauge("marquee_outbox_direct",
                   "1 while events go from memory to Kafka, 0 while they go through the journal (start, Kafka "
                   "down, a backlog)",
                   gauge_direct, r);
  mq_metrics_gauge("marquee_outbox_journaled_total", "Events this process wrote to the outbox journal", gauge_journaled,
                   r);
  *out = r;
  return MQ_OK;
}

void mq_relay_watch(mq_relay_t *r, const char *collection) {
  for (int i = 0; i < r->n_colls; i++)
    if (!strcmp(r->colls[i], collection)) return;
  if (r->n_colls < MAX_COLLECTIONS) r->colls[r->n_colls++] = strdup(collection);
}

/* Produces one journal document. `own`: a direct entry whose document
 * passes to the pending record (freed here if not produced). From the scan
 * (`scanned`), only this process's entries and others' older than the grace
 * are taken; *own_seen counts this process's. False when the producer
 * cannot take it (a direct entry then goes to r->failed). */
static bool produce_entry(mq_relay_t *r, const bson_t *e, bson_t *own, bool scanned, int64_t *oldest,
                          size_t *own_seen) {
  bson_iter_t it;
  const char *jid = NULL, *id = NULL, *topic = NULL, *key = NULL, *type = NULL, *by = NULL;
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
      else if (!strcmp(k, "by") && BSON_ITER_HOLDS_UTF8(&it))
        by = bson_iter_utf8(&it, NULL);
      else if (!strcmp(k, "at") && BSON_ITER_HOLDS_DATE_TIME(&it))
        at = bson_iter_date_time(&it);
      else if (!strcmp(k, "data") && BSON_ITER_HOLDS_BINARY(&it))
        bson_iter_binary(&it, &st, &data_len, &data);
    }
  }
  if (!jid || !id || !topic || !key || !data || strlen(id) > 36 || strlen(jid) >= sizeof((pending_t *)0)->jid) {
    mq_log(MQ_LOG_ERROR, "relay.bad_entry", "malformed journal entry skipped");
    if (own) bson_destroy(own);
    return true;
  }
  if (oldest && at && (*oldest == 0 || at < *oldest)) *oldest = at;
  if (scanned) {
    bool mine = by && !strcmp(by, mq_outbox_process_tag());
    if (mine) (*own_seen)++;
    if (!mine && at > mq_now_unix_ms() - CATCHUP_GRACE_MS) return true; /* its own relay publishes it */
  }
  if (set_find(r, id)) {
    if (own) bson_destroy(own);
    return true;
  }
  pending_t *p = mq_xcalloc(1, sizeof *p);
  snprintf(p->id, sizeof p->id, "%s", id);
  snprintf(p->jid, sizeof p->jid, "%s", jid);
  p->at = at;
  p->journaled = !own;
  p->entry = own;
  rd_kafka_resp_err_t perr =
      r->n_inflight >= MAX_INFLIGHT
          ? RD_KAFKA_RESP_ERR__QUEUE_FULL
          : rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE((void *)data, data_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADER("event-id", id, -1),
                              RD_KAFKA_V_HEADER("event-type", type ? type : "", -1),
                              RD_KAFKA_V_HEADER("content-type", MQ_EVENT_CONTENT_TYPE, -1),
                              RD_KAFKA_V_HEADER("schema-version", "1", -1), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
  if (perr) {
    if (perr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      mq_log(MQ_LOG_WARN, "relay.produce_failed", "event %s: %s", id, rd_kafka_err2str(perr));
    if (own) {
      p->next = r->failed;
      r->failed = p;
    } else {
      free(p);
    }
    return false;
  }
  unsigned h = hash_id(p->id);
  p->next = r->set[h];
  r->set[h] = p;
  r->n_inflight++;
  return true;
}

/* Produces what writers handed over, in order. With Kafka unusable, or once
 * the producer refuses one, the rest of the direct entries go to r->failed
 * (journaled by fail_direct) and the journaled ones wait for the scan.
 * Relay thread only. */
static void drain_offered(mq_relay_t *r, bool usable) {
  pthread_mutex_lock(&r->mu);
  offered_t *list = r->offered;
  r->offered = r->offered_tail = NULL;
  r->n_offered = 0;
  pthread_mutex_unlock(&r->mu);
  bool ok = usable;
  while (list) {
    offered_t *next = list->next;
    if (ok) {
      ok = produce_entry(r, list->entry, list->journaled ? NULL : list->entry, false, NULL, NULL);
      if (list->journaled) bson_destroy(list->entry);
    } else if (!list->journaled) {
      pending_t *p = mq_xcalloc(1, sizeof *p);
      p->entry = list->entry;
      p->next = r->failed;
      r->failed = p;
    } else {
      bson_destroy(list->entry);
    }
    free(list);
    list = next;
  }
  if (!ok) request_catch_up(r);
}

/* The catch-up: one pass over the journal, oldest first. True when the
 * whole journal was read; *own_seen counts this process's entries in it. */
static bool scan(mq_relay_t *r, size_t *own_seen) {
  int64_t oldest = 0;
  size_t n = 0;
  mongoc_client_t *c = mq_store_acquire(r->store);
  mongoc_collection_t *coll = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", SCAN_LIMIT);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc;
  while (mongoc_cursor_next(cur, &doc)) { /* on after a full queue: `oldest` and *own_seen cover it all */
    n++;
    produce_entry(r, doc, NULL, true, &oldest, own_seen);
  }
  bson_error_t berr;
  bool ok = !mongoc_cursor_error(cur, &berr);
  if (!ok) mq_log(MQ_LOG_DEBUG, "relay.scan_failed", "%s", berr.message);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mq_store_release(r->store, c);
  /* in flight from memory counts too: the oldest event not yet acknowledged */
  for (int i = 0; i < BUCKETS; i++)
    for (pending_t *p = r->set[i]; p; p = p->next)
      if (p->at && (oldest == 0 || p->at < oldest)) oldest = p->at;
  atomic_store(&r->oldest_ms, oldest);
  return ok && n < SCAN_LIMIT;
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

/* Journals the candidates the ledger does not know: one read by _id each
 * (not one _id $in read per batch: the local store would scan the whole
 * ledger, two days of events, for every batch). */
static void recover(mq_relay_t *r, mongoc_client_t *c, candidate_t *cand, size_t n) {
  if (!n) return;
  mongoc_collection_t *ledger = mq_store_collection(r->store, c, MQ_OUTBOX_LEDGER);
  mongoc_collection_t *journal = mq_store_collection(r->store, c, MQ_OUTBOX_JOURNAL);
  bson_t opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 1);
  bson_append_document_end(&opts, &proj);
  BSON_APPEND_INT64(&opts, "limit", 1);
  bool *sent = mq_xcalloc(n, sizeof *sent);
  bson_error_t berr;
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", cand[i].id);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(ledger, &filter, &opts, NULL);
    const bson_t *doc;
    sent[i] = mongoc_cursor_next(cur, &doc);
    ok = !mongoc_cursor_error(cur, &berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
  }

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
  bson_destroy(&opts);
  mongoc_collection_destroy(ledger);
  mongoc_collection_destroy(journal);
  request_catch_up(r); /* what was journaled here is this process's to publish */
}

/* One query of a watched collection: its documents whose latest outbox
 * write was in hour `hour` (an index lookup on every store) and that have
 * entries at or after `from`. */
static bool sweep_query(mq_relay_t *r, mongoc_client_t *c, int ci, int64_t from, int64_t to, int64_t hour) {
  mongoc_collection_t *coll = mq_store_collection(r->store, c, r->colls[ci]);
  bson_t filter = BSON_INITIALIZER, cond, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_INT64(&filter, MQ_OUTBOX_HOUR_FIELD, hour);
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

/* A document with an entry at `at` has its hour at or after at's hour (the
 * hour only moves forward): so the hours from from's to to's cover every
 * document with an entry in [from, to). Every sweep reads by hour, the first
 * of a process too: a full read of a large collection on the local store
 * outlasts the store's socket timeout, and a sweep that fails is retried
 * every 2 s while the abandoned scans keep the store busy (measured: 17
 * scans of 100,000 events piled up in 3 minutes). What this gives up:
 * documents written by a version without the hour field and never
 * journaled (a crash) are not recovered after an upgrade; that version's
 * own sweeps, every 5 minutes, recovered all but the last few minutes'. */
static bool sweep_collection(mq_relay_t *r, mongoc_client_t *c, int ci, int64_t from, int64_t to) {
  bool ok = true;
  for (int64_t h = from / MQ_OUTBOX_HOUR_MS; h <= (to - 1) / MQ_OUTBOX_HOUR_MS; h++)
    ok = sweep_query(r, c, ci, from, to, h) && ok;
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
    int64_t now = mq_now_ms();
    if (now >= next) {
      pthread_mutex_unlock(&r->mu);
      sweep(r);
      pthread_mutex_lock(&r->mu);
      /* until the first full sweep succeeded, retry soon */
      next = mq_now_ms() + (r->verified_until_ms ? r->cfg->outbox_sweep_s * 1000LL : 2000);
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
  int64_t next_scan = 0, settled = 0;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    bool stop = r->stop, catch_up = r->catch_up;
    r->kicked = false;
    r->catch_up = false;
    pthread_mutex_unlock(&r->mu);
    if (stop) break;
    int64_t now = mq_now_ms();
    if (now >= r->next_probe_ms) {
      bool up = mq_kafka_ping(r->rk, 1000);
      if (up && !atomic_exchange(&r->kafka_up, true)) {
        mq_log(MQ_LOG_INFO, "relay.kafka_up", "Kafka reachable");
        catch_up = true;
      }
      if (!up && atomic_exchange(&r->kafka_up, false))
        mq_log(MQ_LOG_WARN, "relay.kafka_down", "Kafka unreachable; events wait in MongoDB");
      if (up && !r->topics_ready) {
        mq_error_t err;
        if (mq_kafka_create_topics(r->rk, r->cfg, mq_kafka_domain_topics, 5000, &err) == MQ_OK) {
          r->topics_ready = true;
          catch_up = true;
          mq_log(MQ_LOG_INFO, "relay.topics", "domain topics ready");
        } else {
          mq_log(MQ_LOG_WARN, "relay.topics", "%s", err.message);
        }
      }
      r->next_probe_ms = mq_now_ms() + r->cfg->health_interval_ms;
    }
    bool usable = r->topics_ready && atomic_load(&r->kafka_up);
    if (!usable) leave_direct(r);
    drain_offered(r, usable);
    rd_kafka_poll(r->rk, 0);
    fail_direct(r);
    if (usable && (catch_up || mq_now_ms() >= next_scan)) {
      settle(r); /* R4 */
      settled = mq_now_ms();
      size_t own = 0;
      if (scan(r, &own) && own == 0) { /* R3 holds once no writer is mid-journal */
        pthread_mutex_lock(&r->mu);
        if (!r->direct && r->n_writing == 0 && !r->offered && atomic_load(&r->kafka_up)) {
          r->direct = true;
          atomic_store(&r->direct_gauge, true);
        }
        pthread_mutex_unlock(&r->mu);
      }
      next_scan = mq_now_ms() + r->cfg->outbox_poll_ms;
    }
    /* wait for a hand-over or the next scan, serving delivery reports and
     * settling them in batches meanwhile */
    for (;;) {
      rd_kafka_poll(r->rk, 10);
      fail_direct(r);
      int64_t t = mq_now_ms();
      if (r->n_acked >= SETTLE_BATCH || (r->acked && t - settled >= SETTLE_GAP_MS)) {
        settle(r);
        settled = mq_now_ms();
      }
      pthread_mutex_lock(&r->mu);
      bool wake = r->stop || r->kicked || r->catch_up;
      pthread_mutex_unlock(&r->mu);
      if (wake || t >= next_scan) break;
    }
  }
  return NULL;
}

mq_code_t mq_relay_start(mq_relay_t *r, mq_error_t *err) {
  if (pthread_create(&r->thread, NULL, relay_main, r) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the relay thread");
  pthread_setname_np(r->thread, "mq-relay");
  r->running = true;
  mq_store_set_outbox_hooks(r->store, &r->hooks);
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
  mq_store_set_outbox_hooks(r->store, NULL); /* writers have stopped: this only makes it explicit */
  mq_metrics_gauge_remove(r);
  if (r->running) {
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
  }
  if (r->sweeper_running) pthread_join(r->sweeper, NULL);
  /* what was handed over goes out now, or into the journal (R2) */
  drain_offered(r, r->running && r->topics_ready && atomic_load(&r->kafka_up));
  if (r->n_inflight) rd_kafka_flush(r->rk, 5000);
  rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(r->rk, 0); /* purged messages' reports: failed */
  settle(r);
  fail_direct(r);
  rd_kafka_destroy(r->rk);
  for (int i = 0; i < BUCKETS; i++) {
    pending_t *p = r->set[i];
    while (p) {
      pending_t *n = p->next;
      pending_free(p);
      p = n;
    }
  }
  for (int i = 0; i < r->n_colls; i++) free(r->colls[i]);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}
