/*
 * mq_store.c — the libmongoc pool and the shared primitives of mq_store.h.
 * libmongoc's own log output is routed into our JSON logs (warnings and
 * above). mongoc_init() is idempotent and called on every open; this file
 * never calls mongoc_cleanup(): the driver's globals belong to the process
 * (other clients in it may still use them), and libmongoc releases them at
 * exit itself.
 */
#include "store/mq_store.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_xmalloc.h"
#include "store/mq_bson.h"
#include "store/mq_outbox.h"

#define DOC_LOCKS 256

/* Group commit (see mq_store_insert_decision): the inserts waiting for one
 * collection, and whether a batch of them is being written. */
typedef struct gc_req {
  struct gc_req *next;
  const bson_t *doc;
  mq_code_t rc;
  mq_error_t err;
  bool done;
} gc_req_t;

typedef struct gc_queue {
  struct gc_queue *next;
  char name[96];
  gc_req_t *head, *tail;
  bool busy;
} gc_queue_t;

#define GC_MAX_BATCH 256

struct mq_store {
  mongoc_client_pool_t *pool;
  char db[128];
  pthread_mutex_t doc_locks[DOC_LOCKS]; /* striped by (collection, _id) */
  atomic_int backend;                   /* enum backend; BACKEND_UNKNOWN until first asked */
  pthread_mutex_t gc_mu;                /* the queues and their requests */
  pthread_cond_t gc_cv;
  gc_queue_t *gc_queues;
  _Atomic(const mq_store_outbox_hooks_t *) hooks; /* the relay's hand-over */
  pthread_mutex_t lane;                           /* FerretDB: one batch write at a time (mq_store_lane_enter) */
};

/* What serves the wire protocol, learnt once per process (detect_backend). */
enum backend { BACKEND_UNKNOWN, BACKEND_MONGODB, BACKEND_FERRET_SQLITE, BACKEND_FERRET_POSTGRES };
static int detect_backend(mq_store_t *s, mongoc_client_t *c);
static bool is_ferretdb(mq_store_t *s, mongoc_client_t *c) {
  return detect_backend(s, c) >= BACKEND_FERRET_SQLITE;
}

/* The local store's refusal of an update computed from a stale read
 * (scripts/ferretdb/local.sql: SQLSTATE 40001). Nothing was written. */
static bool write_conflict(const bson_error_t *e) {
  return strstr(e->message, "SQLSTATE 40001") != NULL;
}

bool mq_store_conflict_retry(const bson_error_t *e, int attempt) {
  if (!write_conflict(e) || attempt >= MQ_STORE_CONFLICT_ATTEMPTS) return false;
  /* 0.1 ms, 0.2, 0.4 … capped at 6.4 ms, with jitter: the other writer's
   * transaction is one statement, so it is gone within a few of these */
  long ns = 100000L << (attempt < 6 ? attempt : 6);
  struct timespec ts = {0, ns / 2 + (long)(((unsigned)rand() % 1000u) * (unsigned long)ns / 2000u)};
  if (attempt == 0)
    sched_yield();
  else
    nanosleep(&ts, NULL);
  return true;
}

static pthread_once_t g_init = PTHREAD_ONCE_INIT;

static void init_driver(void);

static void mongoc_log_to_ours(mongoc_log_level_t level, const char *domain, const char *message, void *data) {
  (void)data;
  if (level > MONGOC_LOG_LEVEL_WARNING) return;
  /* FerretDB has no endSessions command; the driver's attempt at client
   * destruction is harmless noise there. */
  if (strstr(message, "endSessions")) return;
  mq_log(level <= MONGOC_LOG_LEVEL_CRITICAL ? MQ_LOG_ERROR : MQ_LOG_WARN, "mongoc", "%s: %s", domain, message);
}

static void init_driver(void) {
  mongoc_init();
  mongoc_log_set_handler(mongoc_log_to_ours, NULL);
}

mq_code_t mq_store_open(const char *uri_str, const char *db, uint32_t pool_max, mq_store_t **out, mq_error_t *err) {
  *out = NULL;
  pthread_once(&g_init, init_driver);
  bson_error_t berr;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &berr);
  if (!uri) {
    /* never echo the URI: it may carry a password */
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_MONGO_URI", "not a valid MongoDB connection string");
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_HEARTBEATFREQUENCYMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 1000);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
  if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME)) mongoc_uri_set_appname(uri, "marquee");
  mq_store_t *s = mq_xcalloc(1, sizeof *s);
  for (int i = 0; i < DOC_LOCKS; i++) pthread_mutex_init(&s->doc_locks[i], NULL);
  pthread_mutex_init(&s->gc_mu, NULL);
  pthread_mutex_init(&s->lane, NULL);
  pthread_cond_init(&s->gc_cv, NULL);
  s->pool = mongoc_client_pool_new(uri);
  mongoc_uri_destroy(uri);
  if (!s->pool) {
    free(s);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_MONGO_URI",
                        "the connection string was refused by the driver");
  }
  mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_max_size(s->pool, pool_max);
  snprintf(s->db, sizeof s->db, "%s", db);
  *out = s;
  return MQ_OK;
}

void mq_store_close(mq_store_t *s) {
  if (!s) return;
  while (s->gc_queues) {
    gc_queue_t *q = s->gc_queues;
    s->gc_queues = q->next;
    free(q);
  }
  pthread_mutex_destroy(&s->gc_mu);
  pthread_mutex_destroy(&s->lane);
  pthread_cond_destroy(&s->gc_cv);
  mongoc_client_pool_destroy(s->pool);
  for (int i = 0; i < DOC_LOCKS; i++) pthread_mutex_destroy(&s->doc_locks[i]);
  free(s);
}

void mq_store_set_outbox_hooks(mq_store_t *s, const mq_store_outbox_hooks_t *hooks) {
  atomic_store_explicit(&s->hooks, hooks, memory_order_release);
}

const char *mq_store_db_name(const mq_store_t *s) {
  return s->db;
}
mongoc_client_t *mq_store_acquire(mq_store_t *s) {
  return mongoc_client_pool_pop(s->pool);
}
void mq_store_release(mq_store_t *s, mongoc_client_t *c) {
  if (c) mongoc_client_pool_push(s->pool, c);
}
mongoc_collection_t *mq_store_collection(mq_store_t *s, mongoc_client_t *c, const char *name) {
  return mongoc_client_get_collection(c, s->db, name);
}

static bool is_retryable_server_code(uint32_t code) {
  switch (code) {
    case 6:     /* HostUnreachable */
    case 7:     /* HostNotFound */
    case 89:    /* NetworkTimeout */
    case 91:    /* ShutdownInProgress */
    case 189:   /* PrimarySteppedDown */
    case 262:   /* ExceededTimeLimit */
    case 9001:  /* SocketException */
    case 10107: /* NotWritablePrimary */
    case 11600: /* InterruptedAtShutdown */
    case 11602: /* InterruptedDueToReplStateChange */
    case 13435: /* NotPrimaryNoSecondaryOk */
    case 13436: /* NotPrimaryOrSecondary */
      return true;
    default:
      return false;
  }
}

mq_code_t mq_store_error(const bson_error_t *e, const char *what, mq_error_t *err) {
  if (e->code == 11000 || e->code == 11001 || e->code == 12582) return mq_error_set(err, MQ_ALREADY_EXISTS, NULL, NULL);
  if (e->code == 10334 || e->code == 17419 || e->code == 17420 || strstr(e->message, "too large")) {
    /* BSONObjectTooLarge / DocumentTooLarge from the server, or the driver's
     * own check against the server's maxBsonObjectSize: nothing was written */
    mq_log(MQ_LOG_WARN, "store.too_large", "%s: %s", what, e->message);
    return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL,
                        "the record would exceed the store's document size limit (16 MiB); nothing was written");
  }
  if (write_conflict(e)) {
    mq_log(MQ_LOG_WARN, "store.write_conflict", "%s: the document kept changing while this write was retried", what);
    return mq_error_set(err, MQ_ABORTED, NULL, "the record changed while it was being written; retry");
  }
  if (e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
      (e->domain == MONGOC_ERROR_SERVER && is_retryable_server_code(e->code)) ||
      (e->domain == MONGOC_ERROR_WRITE_CONCERN && is_retryable_server_code(e->code))) {
    mq_log(MQ_LOG_WARN, "store.unavailable", "%s: %s", what, e->message);
    return mq_error_set(err, MQ_STORE_UNAVAILABLE, NULL, NULL);
  }
  if (e->code == 50) /* MaxTimeMSExpired */
    return mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "the database did not answer in time");
  mq_log(MQ_LOG_ERROR, "store.error", "%s: domain %u code %u: %s", what, e->domain, e->code, e->message);
  return mq_error_set(err, MQ_INTERNAL, NULL, "internal storage error");
}

mq_code_t mq_store_ping(mq_store_t *s, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  bson_t cmd = BSON_INITIALIZER, reply;
  BSON_APPEND_INT32(&cmd, "ping", 1);
  bson_error_t berr;
  bool ok = mongoc_client_command_simple(c, s->db, &cmd, NULL, &reply, &berr);
  bson_destroy(&cmd);
  bson_destroy(&reply);
  mq_store_release(s, c);
  if (ok) return MQ_OK;
  if (berr.domain == MONGOC_ERROR_SERVER_SELECTION || berr.domain == MONGOC_ERROR_STREAM)
    return mq_error_set(err, MQ_STORE_UNAVAILABLE, NULL, NULL);
  return mq_store_error(&berr, "ping", err);
}

static mq_code_t create_index(mq_store_t *s, mongoc_client_t *c, const mq_index_spec_t *spec, mq_error_t *err) {
  bson_error_t berr;
  bson_t keys;
  if (!bson_init_from_json(&keys, spec->keys_json, -1, &berr))
    return mq_error_set(err, MQ_INTERNAL, NULL, "index %s: bad key spec", spec->name);
  bson_t cmd = BSON_INITIALIZER, arr, idx, reply;
  BSON_APPEND_UTF8(&cmd, "createIndexes", spec->collection);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
  BSON_APPEND_DOCUMENT(&idx, "key", &keys);
  BSON_APPEND_UTF8(&idx, "name", spec->name);
  if (spec->unique) BSON_APPEND_BOOL(&idx, "unique", true);
  bson_append_document_end(&arr, &idx);
  bson_append_array_end(&cmd, &arr);
  mq_code_t rc = MQ_OK;
  if (!mongoc_client_write_command_with_opts(c, s->db, &cmd, NULL, &reply, &berr))
    rc = mq_store_error(&berr, spec->name, err);
  bson_destroy(&reply);
  bson_destroy(&cmd);
  bson_destroy(&keys);
  return rc;
}

mq_code_t mq_store_ensure_indexes(mq_store_t *s, const mq_index_spec_t *specs, size_t n, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  mongoc_client_t *c = mq_store_acquire(s);
  for (size_t i = 0; i < n && rc == MQ_OK; i++) {
    rc = create_index(s, c, &specs[i], err);
    if (rc == MQ_OK && !strcmp(specs[i].keys_json, MQ_OUTBOX_INDEX_KEYS)) {
      /* a watched collection: the sweeper's hour index too (mq_outbox.h) */
      const mq_index_spec_t hour = {specs[i].collection, "outbox_hour", MQ_OUTBOX_HOUR_KEYS, false};
      rc = create_index(s, c, &hour, err);
    }
  }
  mq_store_release(s, c);
  return rc;
}

/* After a write that carried outbox entries: copy them to the journal (see
 * mq_outbox.h). The write has happened whatever this returns; a failure is
 * logged and left to the relay's sweeper. */
/* ---- group commit ----
 * Inserts into one collection that arrive while a batch of them is being
 * written wait and go together in the next batch: one unordered insertMany
 * whose writeErrors say, by index, which documents were refused (11000: a
 * duplicate key, i.e. ALREADY_EXISTS for that caller only). A caller that
 * finds nothing in progress writes at once (a batch of one, insert_one), so
 * an idle server adds no latency; under load one store transaction carries
 * many inserts (FerretDB on SQLite commits each write separately, which is
 * most of an insert's cost). Semantics per caller are those of insert_one:
 * MQ_OK means its document is stored. On FerretDB a batch also waits for
 * the process's write lane (mq_store_lane_enter), so batches of different
 * collections do not contend for SQLite's one writer and grow meanwhile. */

static gc_queue_t *gc_queue(mq_store_t *s, const char *collection) { /* under gc_mu */
  for (gc_queue_t *q = s->gc_queues; q; q = q->next)
    if (!strcmp(q->name, collection)) return q;
  gc_queue_t *q = mq_xcalloc(1, sizeof *q);
  snprintf(q->name, sizeof q->name, "%s", collection);
  q->next = s->gc_queues;
  s->gc_queues = q;
  return q;
}

bool mq_store_lane_enter(mq_store_t *s, mongoc_client_t *c) {
  if (detect_backend(s, c) != BACKEND_FERRET_SQLITE) return false;
  pthread_mutex_lock(&s->lane);
  return true;
}

void mq_store_lane_leave(mq_store_t *s, bool entered) {
  if (entered) pthread_mutex_unlock(&s->lane);
}

static void gc_write(mq_store_t *s, const char *collection, gc_req_t *batch, size_t n) {
  mongoc_client_t *c = mq_store_acquire(s);
  bool lane = mq_store_lane_enter(s, c);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  bson_error_t berr;
  if (n == 1) {
    batch->rc = mongoc_collection_insert_one(coll, batch->doc, NULL, NULL, &berr)
                    ? MQ_OK
                    : mq_store_error(&berr, collection, &batch->err);
  } else {
    const bson_t **docs = mq_xcalloc(n, sizeof *docs);
    size_t i = 0;
    for (gc_req_t *r = batch; r && i < n; r = r->next) docs[i++] = r->doc;
    bson_t opts = BSON_INITIALIZER, reply;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    bool ok = mongoc_collection_insert_many(coll, docs, n, &opts, &reply, &berr);
    for (gc_req_t *r = batch; r; r = r->next) r->rc = MQ_OK;
    bson_iter_t it, we;
    bool per_doc = !ok && bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
                   bson_iter_recurse(&it, &we);
    if (per_doc) {
      while (bson_iter_next(&we)) {
        bson_iter_t f;
        int64_t index = -1, code = 0;
        if (!BSON_ITER_HOLDS_DOCUMENT(&we) || !bson_iter_recurse(&we, &f)) continue;
        while (bson_iter_next(&f)) {
          if (!strcmp(bson_iter_key(&f), "index")) index = bson_iter_as_int64(&f);
          if (!strcmp(bson_iter_key(&f), "code")) code = bson_iter_as_int64(&f);
        }
        gc_req_t *r = batch;
        for (int64_t k = 0; r && k < index; k++) r = r->next;
        if (!r || index < 0) continue;
        bson_error_t one = {.domain = MONGOC_ERROR_SERVER, .code = (uint32_t)code};
        snprintf(one.message, sizeof one.message, "write error %lld in a batch", (long long)code);
        r->rc = mq_store_error(&one, collection, &r->err);
      }
    } else if (!ok) { /* not per document (network, selection…): every caller gets it */
      for (gc_req_t *r = batch; r; r = r->next) r->rc = mq_store_error(&berr, collection, &r->err);
    }
    bson_destroy(&reply);
    bson_destroy(&opts);
    free(docs);
  }
  mq_store_lane_leave(s, lane);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
}

static mq_code_t gc_insert(mq_store_t *s, const char *collection, const bson_t *doc, mq_error_t *err) {
  gc_req_t req = {.doc = doc};
  pthread_mutex_lock(&s->gc_mu);
  gc_queue_t *q = gc_queue(s, collection);
  if (q->tail)
    q->tail->next = &req;
  else
    q->head = &req;
  q->tail = &req;
  while (!req.done) {
    if (q->busy) {
      pthread_cond_wait(&s->gc_cv, &s->gc_mu);
      continue;
    }
    /* lead: take up to GC_MAX_BATCH waiting requests */
    q->busy = true;
    gc_req_t *batch = q->head, *last = batch;
    size_t n = 1;
    while (last->next && n < GC_MAX_BATCH) {
      last = last->next;
      n++;
    }
    q->head = last->next;
    if (!q->head) q->tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&s->gc_mu);
    gc_write(s, collection, batch, n);
    pthread_mutex_lock(&s->gc_mu);
    for (gc_req_t *r = batch, *next; r; r = next) {
      next = r->next; /* read before `done`: a waiter may return and drop its request */
      r->done = true;
    }
    q->busy = false;
    pthread_cond_broadcast(&s->gc_cv);
  }
  pthread_mutex_unlock(&s->gc_mu);
  if (req.rc != MQ_OK && err) *err = req.err;
  return req.rc;
}

/* The outbox entries of a stored document to the relay, or into the journal
 * when the relay does not take them (no relay, Kafka down, a backlog of this
 * process's entries to publish first): through the group commit, so
 * concurrent writers' entries share a batch. */
static void journal(mq_store_t *s, mongoc_client_t *c, const char *collection, const bson_value_t *id,
                    bson_iter_t *entries) {
  (void)c;
  bson_iter_t it;
  if (!bson_iter_recurse(entries, &it)) return;
  while (bson_iter_next(&it)) {
    const uint8_t *d;
    uint32_t len;
    bson_t entry, doc;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
    bson_iter_document(&it, &len, &d);
    if (!bson_init_static(&entry, d, len) || !mq_outbox_journal_doc(collection, id, &entry, &doc)) continue;
    const mq_store_outbox_hooks_t *h = atomic_load_explicit(&s->hooks, memory_order_acquire);
    if (h && h->offer(h->arg, &doc)) { /* the relay publishes it (and journals it if it cannot) */
      bson_destroy(&doc);
      continue;
    }
    mq_error_t err;
    mq_code_t rc = gc_insert(s, MQ_OUTBOX_JOURNAL, &doc, &err);
    if (h) h->journaled(h->arg, &doc, rc == MQ_OK || rc == MQ_ALREADY_EXISTS);
    bson_destroy(&doc);
    if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) { /* ALREADY_EXISTS: journaled before */
      mq_log(MQ_LOG_WARN, "outbox.journal_failed", "%s: events stored but not journaled (the sweeper will): %s",
             collection, err.message);
      return;
    }
  }
}

mq_code_t mq_store_insert_decision(mq_store_t *s, const char *collection, const bson_t *doc, mq_error_t *err) {
  mq_code_t rc = gc_insert(s, collection, doc, err);
  bson_iter_t entries, id;
  if (rc == MQ_OK && mq_outbox_entries(doc, false, &entries) && bson_iter_init_find(&id, doc, "_id"))
    journal(s, NULL, collection, bson_iter_value(&id), &entries);
  return rc;
}

/* buildInfo names FerretDB; which backend it runs on shows only in a query
 * plan: PostgreSQL's EXPLAIN is a document ("Node Type"), SQLite's a list of
 * lines. The plan needs a collection that exists: a one-document probe. */
static int detect_backend(mq_store_t *s, mongoc_client_t *c) {
  int b = atomic_load(&s->backend);
  if (b != BACKEND_UNKNOWN) return b;
  bson_t cmd = BSON_INITIALIZER, reply;
  BSON_APPEND_INT32(&cmd, "buildInfo", 1);
  bson_error_t berr;
  bson_iter_t it;
  if (mongoc_client_command_simple(c, s->db, &cmd, NULL, &reply, &berr)) {
    b = BACKEND_MONGODB;
    if (bson_iter_init_find(&it, &reply, "ferretdbVersion")) {
      b = BACKEND_FERRET_SQLITE;
      mongoc_collection_t *probe = mongoc_client_get_collection(c, s->db, "mq_backend_probe");
      bson_t doc = BSON_INITIALIZER, ex = BSON_INITIALIZER, find, empty = BSON_INITIALIZER, r2;
      BSON_APPEND_UTF8(&doc, "_id", "probe");
      mongoc_collection_insert_one(probe, &doc, NULL, NULL, NULL); /* a duplicate is fine */
      BSON_APPEND_DOCUMENT_BEGIN(&ex, "explain", &find);
      BSON_APPEND_UTF8(&find, "find", "mq_backend_probe");
      BSON_APPEND_DOCUMENT(&find, "filter", &empty);
      bson_append_document_end(&ex, &find);
      bson_iter_t plan;
      if (mongoc_client_command_simple(c, s->db, &ex, NULL, &r2, &berr) &&
          bson_iter_init_find(&it, &r2, "queryPlanner") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
          bson_iter_recurse(&it, &plan) && bson_iter_find(&plan, "Plan") && BSON_ITER_HOLDS_DOCUMENT(&plan))
        b = BACKEND_FERRET_POSTGRES;
      bson_destroy(&r2);
      bson_destroy(&doc);
      bson_destroy(&ex);
      bson_destroy(&empty);
      mongoc_collection_destroy(probe);
    }
    atomic_store(&s->backend, b);
    mq_log(MQ_LOG_INFO, "store.backend", "%s",
           b == BACKEND_MONGODB         ? "MongoDB"
           : b == BACKEND_FERRET_SQLITE ? "FerretDB on SQLite (writes through one lane per process)"
                                        : "FerretDB on PostgreSQL");
  }
  bson_destroy(&reply);
  bson_destroy(&cmd);
  return b;
}

/* FerretDB 1.24 ignores $push's $slice: keep the embedded outbox bounded by
 * hand (under the document's lock; amortised, one rewrite per KEEP writes). */
static void trim_outbox(mq_store_t *s, mongoc_client_t *c, mongoc_collection_t *coll, const bson_value_t *id) {
  if (!is_ferretdb(s, c)) return;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_VALUE(&filter, "_id", id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 1);
  bson_append_document_end(&opts, &proj);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
  const bson_t *doc;
  bson_iter_t it, arr;
  if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, MQ_OUTBOX_FIELD) && BSON_ITER_HOLDS_ARRAY(&it)) {
    uint32_t n = 0;
    if (bson_iter_recurse(&it, &arr))
      while (bson_iter_next(&arr)) n++;
    if (n > 2 * MQ_OUTBOX_KEEP && bson_iter_recurse(&it, &arr)) {
      bson_t upd = BSON_INITIALIZER, set, kept;
      BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
      BSON_APPEND_ARRAY_BEGIN(&set, MQ_OUTBOX_FIELD, &kept);
      uint32_t i = 0, k = 0;
      while (bson_iter_next(&arr))
        if (i++ >= n - MQ_OUTBOX_KEEP) {
          char key[16];
          const char *ks;
          bson_uint32_to_string(k++, &ks, key, sizeof key);
          bson_append_iter(&kept, ks, -1, &arr);
        }
      bson_append_array_end(&set, &kept);
      bson_append_document_end(&upd, &set);
      bson_error_t berr;
      /* a write conflict leaves the list as it was: the next write trims it */
      if (!mongoc_collection_update_one(coll, &filter, &upd, NULL, NULL, &berr) && !write_conflict(&berr))
        mq_log(MQ_LOG_WARN, "outbox.trim_failed", "%s", berr.message);
      bson_destroy(&upd);
    }
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&opts);
  bson_destroy(&filter);
}

mq_code_t mq_store_find_one(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                            bson_t *out, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  bson_t o = BSON_INITIALIZER;
  if (opts) bson_concat(&o, opts);
  BSON_APPEND_INT64(&o, "limit", 1);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, &o, NULL);
  const bson_t *doc;
  mq_code_t rc;
  bson_error_t berr;
  if (mongoc_cursor_next(cur, &doc)) {
    bson_copy_to(doc, out);
    rc = MQ_OK;
  } else if (mongoc_cursor_error(cur, &berr)) {
    rc = mq_store_error(&berr, collection, err);
  } else {
    rc = mq_error_set(err, MQ_NOT_FOUND, NULL, NULL);
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&o);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

static unsigned doc_stripe(const char *collection, const bson_value_t *id) {
  unsigned h = 2166136261u;
  for (const char *p = collection; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  if (id->value_type == BSON_TYPE_UTF8) {
    for (uint32_t i = 0; i < id->value.v_utf8.len; i++) h = (h ^ (unsigned char)id->value.v_utf8.str[i]) * 16777619u;
  } else if (id->value_type == BSON_TYPE_OID) {
    for (int i = 0; i < 12; i++) h = (h ^ id->value.v_oid.bytes[i]) * 16777619u;
  } else if (id->value_type == BSON_TYPE_INT64 || id->value_type == BSON_TYPE_INT32) {
    h ^= (unsigned)(id->value_type == BSON_TYPE_INT64 ? id->value.v_int64 : id->value.v_int32);
  }
  return h % DOC_LOCKS;
}

mq_code_t mq_store_update_where(mq_store_t *s, const char *collection, const bson_value_t *id, const bson_t *also,
                                const bson_t *update, mq_error_t *err) {
  bson_t sel = BSON_INITIALIZER, reply;
  BSON_APPEND_VALUE(&sel, "_id", id);
  if (also) bson_concat(&sel, also);
  unsigned stripe = doc_stripe(collection, id);
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  bson_error_t berr;
  mq_code_t rc = MQ_OK;
  pthread_mutex_lock(&s->doc_locks[stripe]);
  bool ok;
  for (int attempt = 0;; attempt++) {
    ok = mongoc_collection_update_one(coll, &sel, update, NULL, &reply, &berr);
    if (ok || !mq_store_conflict_retry(&berr, attempt)) break;
    bson_destroy(&reply); /* another process wrote the document first: apply the update to what it wrote */
  }
  bson_iter_t it, entries;
  if (!ok) {
    rc = mq_store_error(&berr, collection, err);
  } else if (bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) == 0) {
    rc = mq_error_set(err, MQ_NOT_FOUND, NULL, NULL);
  } else if (mq_outbox_entries(update, true, &entries)) {
    journal(s, c, collection, id, &entries);
    trim_outbox(s, c, coll, id);
  }
  pthread_mutex_unlock(&s->doc_locks[stripe]);
  bson_destroy(&reply);
  bson_destroy(&sel);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

mq_code_t mq_store_update_by_id(mq_store_t *s, const char *collection, const bson_value_t *id, const bson_t *update,
                                mq_error_t *err) {
  return mq_store_update_where(s, collection, id, NULL, update, err);
}

mq_code_t mq_store_find_each(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                             bool (*each)(const bson_t *doc, void *arg), void *arg, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
  const bson_t *doc;
  while (mongoc_cursor_next(cur, &doc) && each(doc, arg)) {
  }
  bson_error_t berr;
  mq_code_t rc = mongoc_cursor_error(cur, &berr) ? mq_store_error(&berr, collection, err) : MQ_OK;
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

void mq_store_rows_init(mq_store_rows_t *r, mq_arena_t *a, size_t elem_size, mq_store_conv_fn conv, uint32_t limit) {
  *r = (mq_store_rows_t){.a = a, .elem_size = elem_size, .conv = conv, .limit = limit, .cap = limit};
  if (limit) r->v = mq_arena_alloc(a, (size_t)limit * elem_size);
}

static bool add_row(const bson_t *doc, void *arg) {
  mq_store_rows_t *r = arg;
  if (r->n == r->cap) {
    if (r->limit) return false;
    size_t nc = r->cap ? r->cap * 2 : 16;
    void *v = mq_arena_alloc(r->a, nc * r->elem_size);
    if (r->n) memcpy(v, r->v, r->n * r->elem_size);
    r->v = v;
    r->cap = nc;
  }
  r->conv(doc, r->a, (char *)r->v + r->n++ * r->elem_size);
  return true;
}

mq_code_t mq_store_find_rows(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                             mq_store_rows_t *rows, mq_error_t *err) {
  return mq_store_find_each(s, collection, filter, opts, add_row, rows, err);
}

mq_code_t mq_store_take_one(mq_store_t *s, const char *collection, const bson_t *filter, bson_t *out, mq_error_t *err) {
  /* find, then delete that document by _id: whoever deletes it (deletedCount
   * 1) took it. Not findAndModify: FerretDB answers it from a read and
   * deletes afterwards, so two racing callers could both be handed one
   * document. Another caller taking the match first sends us to the next. */
  for (int tries = 0; tries < 64; tries++) {
    bson_t doc;
    mq_code_t rc = mq_store_find_one(s, collection, filter, NULL, &doc, err);
    if (rc != MQ_OK) return rc;
    bson_iter_t id;
    if (!bson_iter_init_find(&id, &doc, "_id")) {
      bson_destroy(&doc);
      return mq_error_set(err, MQ_INTERNAL, NULL, "internal storage error");
    }
    bson_t sel = BSON_INITIALIZER;
    bson_append_iter(&sel, "_id", 3, &id);
    int64_t n = 0;
    rc = mq_store_delete(s, collection, &sel, false, &n, err);
    bson_destroy(&sel);
    if (rc == MQ_OK && n == 1) {
      bson_copy_to(&doc, out);
      bson_destroy(&doc);
      return MQ_OK;
    }
    bson_destroy(&doc);
    if (rc != MQ_OK) return rc;
  }
  return mq_error_set(err, MQ_ABORTED, NULL, "the record kept being taken by others; retry");
}

mq_code_t mq_store_delete(mq_store_t *s, const char *collection, const bson_t *filter, bool many, int64_t *deleted,
                          mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  bson_t reply;
  bson_error_t berr;
  bool ok = many ? mongoc_collection_delete_many(coll, filter, NULL, &reply, &berr)
                 : mongoc_collection_delete_one(coll, filter, NULL, &reply, &berr);
  mq_code_t rc = ok ? MQ_OK : mq_store_error(&berr, collection, err);
  if (ok && deleted) *deleted = mq_bson_get_i64(&reply, "deletedCount", 0);
  bson_destroy(&reply);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

mq_code_t mq_store_get_by_id(mq_store_t *s, const char *collection, const char *id, bson_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", id);
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_one(s, collection, &filter, &opts, out, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

void mq_store_append_keyset(bson_t *filter, const char *key, const bson_value_t *v, const char *id, bool before) {
  const char *op = before ? "$lt" : "$gt";
  bson_t ors, o1, o2, c1, c2;
  BSON_APPEND_ARRAY_BEGIN(filter, "$or", &ors);
  BSON_APPEND_DOCUMENT_BEGIN(&ors, "0", &o1);
  BSON_APPEND_DOCUMENT_BEGIN(&o1, key, &c1);
  BSON_APPEND_VALUE(&c1, op, v);
  bson_append_document_end(&o1, &c1);
  bson_append_document_end(&ors, &o1);
  BSON_APPEND_DOCUMENT_BEGIN(&ors, "1", &o2);
  BSON_APPEND_VALUE(&o2, key, v);
  BSON_APPEND_DOCUMENT_BEGIN(&o2, "_id", &c2);
  BSON_APPEND_UTF8(&c2, op, id);
  bson_append_document_end(&o2, &c2);
  bson_append_document_end(&ors, &o2);
  bson_append_array_end(filter, &ors);
}

void mq_store_append_keyset_date(bson_t *filter, const char *key, int64_t at_ms, const char *id, bool before) {
  bson_value_t v = {.value_type = BSON_TYPE_DATE_TIME};
  v.value.v_datetime = at_ms;
  mq_store_append_keyset(filter, key, &v, id, before);
}

void mq_store_page_apply(bson_t *filter, bson_t *opts, const mq_store_page_t *pg) {
  if (pg->has_cursor) mq_store_append_keyset_date(filter, pg->key, pg->after_ms, pg->after_id, pg->desc);
  bson_t sort;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, pg->key, pg->desc ? -1 : 1);
  BSON_APPEND_INT32(&sort, "_id", pg->desc ? -1 : 1);
  bson_append_document_end(opts, &sort);
  BSON_APPEND_INT64(opts, "limit", (int64_t)pg->limit);
  mq_outbox_exclude(opts);
}

mq_code_t mq_store_count(mq_store_t *s, const char *collection, const bson_t *filter, int64_t *n, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, collection);
  bson_error_t berr;
  int64_t got = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &berr);
  mq_code_t rc = got < 0 ? mq_store_error(&berr, collection, err) : MQ_OK;
  if (rc == MQ_OK) *n = got;
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}
