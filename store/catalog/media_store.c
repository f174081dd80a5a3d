/*
 * media_store.c — see media_store.h. Queries: files by _id; an
 * organization's files by (organization_id[, event_id], uploadDate, _id)
 * newest first with a keyset cursor (indexes org_newest, org_event_newest);
 * chunks by (files_id, n) (the GridFS index); pending uploads by `at`.
 */
#include "store/catalog/media_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "store/mq_bson.h"

#define FILES "media.files"
#define CHUNKS "media.chunks"
#define PENDING "media_pending"
#define DELETIONS "media_deletions"

const mq_index_spec_t mq_media_indexes[] = {
    /* the two indexes the GridFS spec names, as drivers create them */
    {CHUNKS, "files_id_1_n_1", "{\"files_id\": 1, \"n\": 1}", true},
    {FILES, "filename_1_uploadDate_1", "{\"filename\": 1, \"uploadDate\": 1}", false},
    {FILES, "org_newest", "{\"organization_id\": 1, \"uploadDate\": -1, \"_id\": -1}", false},
    {FILES, "org_event_newest", "{\"organization_id\": 1, \"event_id\": 1, \"uploadDate\": -1, \"_id\": -1}", false},
    {FILES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {PENDING, "at", "{\"at\": 1}", false},
    {DELETIONS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_media_n_indexes = sizeof mq_media_indexes / sizeof mq_media_indexes[0];

static bson_t by_id(const char *id) {
  bson_t f = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&f, "_id", id);
  return f;
}

mq_code_t mq_media_pending_begin(mq_store_t *s, const char *image_id, const char *organization_id, int64_t at_ms,
                                 mq_error_t *err) {
  bson_t doc = by_id(image_id);
  BSON_APPEND_UTF8(&doc, "organization_id", organization_id);
  BSON_APPEND_DATE_TIME(&doc, "at", at_ms);
  mq_code_t rc = mq_store_insert_decision(s, PENDING, &doc, err);
  bson_destroy(&doc);
  return rc == MQ_ALREADY_EXISTS ? MQ_OK : rc; /* already marked: the same thing */
}

mq_code_t mq_media_pending_end(mq_store_t *s, const char *image_id, mq_error_t *err) {
  bson_t sel = by_id(image_id);
  mq_code_t rc = mq_store_delete(s, PENDING, &sel, false, NULL, err);
  bson_destroy(&sel);
  return rc;
}

mq_code_t mq_media_put_chunk(mq_store_t *s, const char *image_id, uint32_t n, const void *data, size_t len,
                             mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  bson_oid_t oid;
  bson_oid_init(&oid, NULL);
  BSON_APPEND_OID(&doc, "_id", &oid);
  BSON_APPEND_UTF8(&doc, "files_id", image_id);
  BSON_APPEND_INT32(&doc, "n", (int32_t)n);
  BSON_APPEND_BINARY(&doc, "data", BSON_SUBTYPE_BINARY, data, (uint32_t)len);
  mq_code_t rc = mq_store_insert_decision(s, CHUNKS, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_media_commit(mq_store_t *s, const mq_image_t *img, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = by_id(img->id);
  /* GridFS */
  BSON_APPEND_INT64(&doc, "length", img->size_bytes);
  BSON_APPEND_INT32(&doc, "chunkSize", img->chunk_size);
  BSON_APPEND_DATE_TIME(&doc, "uploadDate", img->created_ms);
  BSON_APPEND_UTF8(&doc, "filename", img->filename ? img->filename : "");
  /* Marquee */
  BSON_APPEND_UTF8(&doc, "organization_id", img->organization_id);
  BSON_APPEND_UTF8(&doc, "event_id", img->event_id ? img->event_id : "");
  BSON_APPEND_UTF8(&doc, "mime_type", img->mime_type);
  BSON_APPEND_INT64(&doc, "width", img->width);
  BSON_APPEND_INT64(&doc, "height", img->height);
  BSON_APPEND_UTF8(&doc, "sha256", img->sha256);
  BSON_APPEND_UTF8(&doc, "alt_text", img->alt_text ? img->alt_text : "");
  BSON_APPEND_UTF8(&doc, "created_by", img->created_by ? img->created_by : "");
  mq_bson_append_str_array(&doc, "event_ids", img->event_ids, img->n_event_ids);
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, FILES, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_INTERNAL, NULL, "duplicate image id");
  return rc;
}

static mq_code_t files_exists(mq_store_t *s, const char *image_id, bool *exists, mq_error_t *err) {
  bson_t filter = by_id(image_id), opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, FILES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *exists = rc == MQ_OK;
  if (rc == MQ_OK) bson_destroy(&doc);
  return rc == MQ_NOT_FOUND ? MQ_OK : rc;
}

static mq_code_t delete_chunks(mq_store_t *s, const char *image_id, mq_error_t *err) {
  bson_t sel = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "files_id", image_id);
  mq_code_t rc = mq_store_delete(s, CHUNKS, &sel, true, NULL, err);
  bson_destroy(&sel);
  return rc;
}

mq_code_t mq_media_discard(mq_store_t *s, const char *image_id, mq_error_t *err) {
  bool committed = false;
  mq_code_t rc = files_exists(s, image_id, &committed, err);
  if (rc == MQ_OK && !committed) rc = delete_chunks(s, image_id, err);
  if (rc == MQ_OK) rc = mq_media_pending_end(s, image_id, err);
  return rc;
}

static void read_image(const bson_t *doc, mq_arena_t *a, mq_image_t *out) {
  out->id = mq_bson_get_str(doc, "_id", a);
  out->organization_id = mq_bson_get_str(doc, "organization_id", a);
  out->event_id = mq_bson_get_str(doc, "event_id", a);
  out->filename = mq_bson_get_str(doc, "filename", a);
  out->mime_type = mq_bson_get_str(doc, "mime_type", a);
  out->sha256 = mq_bson_get_str(doc, "sha256", a);
  out->alt_text = mq_bson_get_str(doc, "alt_text", a);
  out->created_by = mq_bson_get_str(doc, "created_by", a);
  out->width = (uint32_t)mq_bson_get_i64(doc, "width", 0);
  out->height = (uint32_t)mq_bson_get_i64(doc, "height", 0);
  out->size_bytes = mq_bson_get_i64(doc, "length", 0);
  out->chunk_size = (int32_t)mq_bson_get_i64(doc, "chunkSize", MQ_MEDIA_CHUNK_SIZE);
  out->created_ms = mq_bson_get_date_ms(doc, "uploadDate", 0);
  out->event_ids = (const char **)mq_bson_get_str_array(doc, "event_ids", a, &out->n_event_ids);
}

static void no_outbox(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}

mq_code_t mq_media_get(mq_store_t *s, const char *image_id, mq_arena_t *a, mq_image_t *out, mq_error_t *err) {
  bson_t filter = by_id(image_id), opts = BSON_INITIALIZER, doc;
  no_outbox(&opts);
  mq_code_t rc = mq_store_find_one(s, FILES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "image_id", "no such image");
  if (rc != MQ_OK) return rc;
  read_image(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_media_track_event(mq_store_t *s, const char *image_id, const char *event_id, mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, add;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$addToSet", &add);
  BSON_APPEND_UTF8(&add, "event_ids", event_id);
  bson_append_document_end(&upd, &add);
  bson_value_t id = {.value_type = BSON_TYPE_UTF8};
  id.value.v_utf8.str = (char *)image_id;
  id.value.v_utf8.len = (uint32_t)strlen(image_id);
  mq_code_t rc = mq_store_update_by_id(s, FILES, &id, &upd, err);
  bson_destroy(&upd);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "image_id", "no such image");
  return rc;
}

mq_code_t mq_media_delete(mq_store_t *s, const mq_image_t *img, const char *by, const mq_event_t *ev, mq_error_t *err) {
  /* the files document's events are journaled already (mq_outbox.h): deleting it loses none */
  bson_t filter = by_id(img->id), rec = by_id(img->id);
  BSON_APPEND_UTF8(&rec, "organization_id", img->organization_id);
  BSON_APPEND_UTF8(&rec, "by", by);
  BSON_APPEND_DATE_TIME(&rec, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&rec, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, DELETIONS, &rec, err);
  bson_destroy(&rec);
  bool recorded_before = rc == MQ_ALREADY_EXISTS; /* a retry, or a racing deletion */
  if (rc == MQ_OK || recorded_before) rc = mq_media_pending_begin(s, img->id, img->organization_id, 0, err);
  int64_t n = 0;
  if (rc == MQ_OK) rc = mq_store_delete(s, FILES, &filter, false, &n, err);
  bson_destroy(&filter);
  if (rc == MQ_OK) rc = delete_chunks(s, img->id, err);
  if (rc == MQ_OK) rc = mq_media_pending_end(s, img->id, err);
  if (rc == MQ_OK && n == 0 && recorded_before) return mq_error_set(err, MQ_NOT_FOUND, "image_id", "no such image");
  return rc;
}

typedef struct {
  mq_arena_t *a;
  mq_image_t *out;
  size_t *n, cap;
} list_ctx_t;

static bool collect_image(const bson_t *doc, void *arg) {
  list_ctx_t *c = arg;
  read_image(doc, c->a, &c->out[(*c->n)++]);
  return *c->n < c->cap;
}

mq_code_t mq_media_list(mq_store_t *s, const mq_media_query_t *q, mq_arena_t *a, mq_image_t *out, size_t *n,
                        mq_error_t *err) {
  *n = 0;
  if (q->limit == 0) return MQ_OK;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "organization_id", q->organization_id);
  if (q->event_id) BSON_APPEND_UTF8(&filter, "event_id", q->event_id);
  if (q->has_cursor) /* (uploadDate, _id) < cursor; values only, never operators */
    mq_store_append_keyset_date(&filter, "uploadDate", q->after_ms, q->after_id, true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "organization_id", 1);
  if (q->event_id) BSON_APPEND_INT32(&sort, "event_id", 1);
  BSON_APPEND_INT32(&sort, "uploadDate", -1);
  BSON_APPEND_INT32(&sort, "_id", -1);
  bson_append_document_end(&opts, &sort);
  no_outbox(&opts);
  BSON_APPEND_INT64(&opts, "limit", q->limit);
  list_ctx_t ctx = {a, out, n, q->limit};
  mq_code_t rc = mq_store_find_each(s, FILES, &filter, &opts, collect_image, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_media_read_chunk(mq_store_t *s, const char *image_id, uint32_t n, void **data, size_t *len,
                              mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_UTF8(&filter, "files_id", image_id);
  BSON_APPEND_INT32(&filter, "n", (int32_t)n);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "data", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, CHUNKS, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc != MQ_OK) return rc;
  bson_iter_t it;
  const uint8_t *bin = NULL;
  uint32_t blen = 0;
  bson_subtype_t sub;
  if (bson_iter_init_find(&it, &doc, "data") && BSON_ITER_HOLDS_BINARY(&it)) bson_iter_binary(&it, &sub, &blen, &bin);
  *data = mq_xmalloc(blen ? blen : 1);
  if (blen) memcpy(*data, bin, blen);
  *len = blen;
  bson_destroy(&doc);
  return MQ_OK;
}

typedef struct {
  char (*ids)[37];
  size_t n, cap;
} stale_t;

static bool collect_stale(const bson_t *doc, void *arg) {
  stale_t *st = arg;
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(st->ids[st->n++], 37, "%s", bson_iter_utf8(&it, NULL));
  return st->n < st->cap;
}

size_t mq_media_sweep(mq_store_t *s, int64_t older_than_ms) {
  enum { BATCH = 100 };
  char ids[BATCH][37];
  stale_t st = {ids, 0, BATCH};
  bson_t filter = BSON_INITIALIZER, range, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &range);
  BSON_APPEND_DATE_TIME(&range, "$lt", older_than_ms);
  bson_append_document_end(&filter, &range);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "at", 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", BATCH);
  mq_error_t err;
  mq_code_t rc = mq_store_find_each(s, PENDING, &filter, &opts, collect_stale, &st, &err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  size_t done = 0;
  for (size_t i = 0; rc == MQ_OK && i < st.n; i++) {
    rc = mq_media_discard(s, ids[i], &err);
    if (rc == MQ_OK) done++;
  }
  if (done) mq_log(MQ_LOG_INFO, "media.swept", "discarded %zu abandoned uploads or deletions", done);
  if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "media.sweep_failed", "%s", err.message);
  return done;
}
