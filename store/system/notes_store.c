/*
 * notes_store.c — see notes_store.h. Queries: by _id only (the default
 * unique index); the relay's scan uses the outbox index declared here.
 */
#include "store/system/notes_store.h"

#include "store/mq_bson.h"

const mq_index_spec_t mq_notes_indexes[] = {
    {MQ_NOTES_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_notes_n_indexes = sizeof mq_notes_indexes / sizeof mq_notes_indexes[0];

mq_code_t mq_notes_insert(mq_store_t *s, const mq_note_t *note, const mq_event_t *evs, size_t n_evs, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", note->id);
  BSON_APPEND_UTF8(&doc, "author", note->author);
  BSON_APPEND_UTF8(&doc, "text", note->text);
  BSON_APPEND_DATE_TIME(&doc, "created_at", note->created_ms);
  mq_outbox_append_insert(&doc, evs, n_evs);
  mq_code_t rc = mq_store_insert_decision(s, MQ_NOTES_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_notes_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_note_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, MQ_NOTES_COLLECTION, &filter, &opts, &doc, err);
  if (rc == MQ_OK) {
    out->id = mq_bson_get_str(&doc, "_id", a);
    out->author = mq_bson_get_str(&doc, "author", a);
    out->text = mq_bson_get_str(&doc, "text", a);
    out->created_ms = mq_bson_get_date_ms(&doc, "created_at", 0);
    bson_destroy(&doc);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}
