/*
 * auth_attempts_store.c — see auth_attempts_store.h.
 */
#include "store/identity/auth_attempts_store.h"

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_attempts_indexes[] = {
    {MQ_AUTH_ATTEMPTS_COLLECTION, "key_at", "{\"key\": 1, \"at\": 1}", false},
    {MQ_AUTH_ATTEMPTS_COLLECTION, "at", "{\"at\": 1}", false},
};
const size_t mq_attempts_n_indexes = sizeof mq_attempts_indexes / sizeof mq_attempts_indexes[0];

mq_code_t mq_attempts_record(mq_store_t *s, const char *key, mq_error_t *err) {
  char id[37];
  mq_uuid_v4(id);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "key", key);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  mq_code_t rc = mq_store_insert_decision(s, MQ_AUTH_ATTEMPTS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

typedef struct {
  int64_t *count, *last_ms;
} recent_ctx_t;

static bool count_one(const bson_t *doc, void *arg) {
  recent_ctx_t *c = arg;
  if (*c->count == 0) *c->last_ms = mq_bson_get_date_ms(doc, "at", 0); /* newest first */
  (*c->count)++;
  return true;
}

mq_code_t mq_attempts_recent(mq_store_t *s, const char *key, int64_t since_ms, int64_t *count, int64_t *last_ms,
                             mq_error_t *err) {
  *count = 0;
  *last_ms = 0;
  bson_t filter = BSON_INITIALIZER, range, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "key", key);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &range);
  BSON_APPEND_DATE_TIME(&range, "$gte", since_ms);
  bson_append_document_end(&filter, &range);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "at", -1);
  bson_append_document_end(&opts, &sort);
  recent_ctx_t ctx = {count, last_ms};
  mq_code_t rc = mq_store_find_each(s, MQ_AUTH_ATTEMPTS_COLLECTION, &filter, &opts, count_one, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_attempts_sweep(mq_store_t *s, int64_t before_ms, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, range;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &range);
  BSON_APPEND_DATE_TIME(&range, "$lt", before_ms);
  bson_append_document_end(&filter, &range);
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, MQ_AUTH_ATTEMPTS_COLLECTION);
  bson_error_t berr;
  mq_code_t rc = MQ_OK;
  if (!mongoc_collection_delete_many(coll, &filter, NULL, NULL, &berr))
    rc = mq_store_error(&berr, MQ_AUTH_ATTEMPTS_COLLECTION, err);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  bson_destroy(&filter);
  return rc;
}
