/*
 * mq_outbox.c — builds outbox entries (see mq_outbox.h). The envelope is
 * packed once here; the relay publishes the stored bytes unchanged.
 */
#include "store/mq_outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_event_catalog.h"
#include "store/mq_bson.h"
#include "store/mq_store.h"

void mq_event_init(mq_event_t *ev, const char *topic, const char *type, const char *aggregate_id, const char *actor,
                   const char *trace_id, const char *request_id) {
  memset(ev, 0, sizeof *ev);
  marquee__events__v1__envelope__init(&ev->env);
  mq_uuid_v4(ev->id);
  ev->topic = topic;
  ev->env.event_id = ev->id;
  ev->env.type = (char *)type;
  ev->env.aggregate_id = (char *)aggregate_id;
  ev->env.actor = (char *)(actor && actor[0] ? actor : "system");
  ev->env.trace_id = (char *)(trace_id ? trace_id : "");
  ev->env.request_id = (char *)(request_id ? request_id : "");
  ev->env.schema_version = 1;
}

static void append_entries(bson_t *arr, const mq_event_t *evs, size_t n, int64_t now) {
  for (size_t i = 0; i < n; i++) {
    const mq_event_t *ev = &evs[i];
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = now / 1000;
    ts.nanos = (int32_t)((now % 1000) * 1000000);
    Marquee__Events__V1__Envelope env = ev->env;
    env.occurred_at = &ts;
    /* what is published is what docs/EVENTS.md says: type and topic from the catalog */
    const char *topic = ev->topic;
    const mq_event_kind_t *kind = mq_event_kind((int)env.payload_case);
    if (!kind) {
      mq_log(MQ_LOG_ERROR, "outbox.uncatalogued", "payload %d (%s) has no row in lib/mq_event_catalog.c",
             (int)env.payload_case, env.type ? env.type : "");
    } else if (strcmp(kind->type, env.type ? env.type : "") || strcmp(kind->topic, topic ? topic : "")) {
      mq_log(MQ_LOG_ERROR, "outbox.miscatalogued", "event %s given as %s on %s; published as %s on %s", ev->id,
             env.type ? env.type : "", topic ? topic : "", kind->type, kind->topic);
      env.type = (char *)kind->type;
      topic = kind->topic;
    }
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    uint8_t *buf = mq_xmalloc(len ? len : 1);
    marquee__events__v1__envelope__pack(&env, buf);
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_t e;
    bson_append_document_begin(arr, k, -1, &e);
    BSON_APPEND_UTF8(&e, "id", ev->id);
    BSON_APPEND_UTF8(&e, "topic", topic);
    BSON_APPEND_UTF8(&e, "key", ev->env.aggregate_id);
    BSON_APPEND_UTF8(&e, "type", env.type);
    BSON_APPEND_DATE_TIME(&e, "at", now);
    BSON_APPEND_BINARY(&e, "data", BSON_SUBTYPE_BINARY, buf, (uint32_t)len);
    bson_append_document_end(arr, &e);
    free(buf);
  }
}

/* the entries' `at` and the document's hour come from one clock reading, so
 * an entry is never in a later hour than its document says */
void mq_outbox_append_insert(bson_t *doc, const mq_event_t *evs, size_t n) {
  int64_t now = mq_now_unix_ms();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, MQ_OUTBOX_FIELD, &arr);
  append_entries(&arr, evs, n, now);
  bson_append_array_end(doc, &arr);
  BSON_APPEND_INT64(doc, MQ_OUTBOX_HOUR_FIELD, now / MQ_OUTBOX_HOUR_MS);
}

void mq_outbox_append_update(bson_t *update, const mq_event_t *evs, size_t n) {
  int64_t now = mq_now_unix_ms();
  bson_t push, field, each, max;
  BSON_APPEND_DOCUMENT_BEGIN(update, "$push", &push);
  BSON_APPEND_DOCUMENT_BEGIN(&push, MQ_OUTBOX_FIELD, &field);
  BSON_APPEND_ARRAY_BEGIN(&field, "$each", &each);
  append_entries(&each, evs, n, now);
  bson_append_array_end(&field, &each);
  BSON_APPEND_INT32(&field, "$slice", -MQ_OUTBOX_KEEP);
  bson_append_document_end(&push, &field);
  bson_append_document_end(update, &push);
  BSON_APPEND_DOCUMENT_BEGIN(update, "$max", &max); /* the hour only moves forward */
  BSON_APPEND_INT64(&max, MQ_OUTBOX_HOUR_FIELD, now / MQ_OUTBOX_HOUR_MS);
  bson_append_document_end(update, &max);
}

bool mq_outbox_entries(const bson_t *doc_or_update, bool is_update, bson_iter_t *arr) {
  bson_iter_t it;
  bool found = is_update ? bson_iter_init(&it, doc_or_update) &&
                               bson_iter_find_descendant(&it, "$push." MQ_OUTBOX_FIELD ".$each", arr)
                         : bson_iter_init_find(arr, doc_or_update, MQ_OUTBOX_FIELD);
  return found && BSON_ITER_HOLDS_ARRAY(arr);
}

static atomic_uint_fast64_t g_seq;
static pthread_once_t g_tag_once = PTHREAD_ONCE_INIT;
static char g_tag[17];

static void make_tag(void) {
  mq_random_hex(g_tag, 16);
}

const char *mq_outbox_process_tag(void) {
  pthread_once(&g_tag_once, make_tag);
  return g_tag;
}

bool mq_outbox_journal_doc(const char *collection, const bson_value_t *doc_id, const bson_t *entry, bson_t *doc) {
  bson_iter_t f;
  const char *id = bson_iter_init_find(&f, entry, "id") && BSON_ITER_HOLDS_UTF8(&f) ? bson_iter_utf8(&f, NULL) : NULL;
  if (!id) return false;
  /* journaled in write order: the time and a process-wide sequence taken
   * now, under the document's lock */
  char jid[96];
  snprintf(jid, sizeof jid, "%013lld-%012llu-%s", (long long)mq_now_unix_ms(),
           (unsigned long long)atomic_fetch_add(&g_seq, 1), id);
  bson_init(doc);
  BSON_APPEND_UTF8(doc, "_id", jid);
  BSON_APPEND_UTF8(doc, "coll", collection);
  BSON_APPEND_UTF8(doc, "by", mq_outbox_process_tag());
  BSON_APPEND_VALUE(doc, "doc", doc_id);
  bson_concat(doc, entry);
  return true;
}

mq_code_t mq_outbox_journal_entry(mongoc_collection_t *journal, const char *collection, const bson_value_t *doc_id,
                                  const bson_t *entry, mq_error_t *err) {
  bson_t doc;
  if (!mq_outbox_journal_doc(collection, doc_id, entry, &doc)) return MQ_OK;
  bson_error_t berr;
  mq_code_t rc = MQ_OK;
  if (!mongoc_collection_insert_one(journal, &doc, NULL, NULL, &berr)) {
    mq_error_t tmp;
    rc = mq_store_error(&berr, MQ_OUTBOX_JOURNAL, &tmp);
    if (rc == MQ_ALREADY_EXISTS)
      rc = MQ_OK; /* journaled before (the unique index on id) */
    else if (err)
      *err = tmp;
  }
  bson_destroy(&doc);
  return rc;
}

const mq_index_spec_t mq_outbox_indexes[] = {
    {MQ_OUTBOX_JOURNAL, "journal_event", "{\"id\": 1}", true},
    {MQ_OUTBOX_LEDGER, "sent_at", "{\"at\": 1}", false},
};
const size_t mq_outbox_n_indexes = sizeof mq_outbox_indexes / sizeof *mq_outbox_indexes;

void mq_outbox_exclude(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}
