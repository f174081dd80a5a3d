/*
 * series_store.c — see series_store.h. Queries: series by _id; a series'
 * occurrences in `events` by (series_id, starts_at, _id) with a keyset
 * cursor (index series_start).
 */
#include "store/catalog/series_store.h"

#include <stdio.h>
#include <string.h>

#include "marquee/catalog/v1/events.pb-c.h"
#include "store/mq_bson.h"

#define SERIES "series"
#define EVENTS "events"

const mq_index_spec_t mq_series_indexes[] = {
    {SERIES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    /* on the events collection: the occurrences of a series, by start */
    {EVENTS, "series_start", "{\"series_id\": 1, \"starts_at\": 1, \"_id\": 1}", false},
};
const size_t mq_series_n_indexes = sizeof mq_series_indexes / sizeof mq_series_indexes[0];

static bson_value_t id_value(const char *id) {
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)id;
  v.value.v_utf8.len = (uint32_t)strlen(id);
  return v;
}

/* Every field a save rewrites. */
static void append_mutable(bson_t *doc, const mq_series_t *v) {
  BSON_APPEND_INT32(doc, "state", v->state);
  BSON_APPEND_UTF8(doc, "title", v->title ? v->title : "");
  BSON_APPEND_UTF8(doc, "rrule", v->rrule ? v->rrule : "");
  BSON_APPEND_UTF8(doc, "time_zone", v->time_zone ? v->time_zone : "");
  BSON_APPEND_UTF8(doc, "first_start_local", v->first_start_local ? v->first_start_local : "");
  BSON_APPEND_INT32(doc, "duration_minutes", (int32_t)v->duration_minutes);
  mq_bson_append_str_array(doc, "explicit_starts_local", v->explicit_starts, v->n_explicit);
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, "occurrences", &arr);
  for (size_t i = 0; i < v->n_occ; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "event_id", v->occ[i].event_id);
    BSON_APPEND_DATE_TIME(&d, "starts_at", v->occ[i].starts_ms);
    BSON_APPEND_DATE_TIME(&d, "ends_at", v->occ[i].ends_ms);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(doc, &arr);
  BSON_APPEND_BINARY(doc, "template", BSON_SUBTYPE_BINARY, v->template_pb, (uint32_t)v->template_len);
  BSON_APPEND_UTF8(doc, "pending", v->pending ? v->pending : "");
  mq_bson_append_str_array(doc, "pending_event_ids", v->pending_ids, v->n_pending);
  BSON_APPEND_UTF8(doc, "cancel_reason", v->cancel_reason ? v->cancel_reason : "");
  BSON_APPEND_DATE_TIME(doc, "updated_at", v->updated_ms);
}

mq_code_t mq_series_insert(mq_store_t *s, const mq_series_t *v, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", v->id);
  BSON_APPEND_UTF8(&doc, "organization_id", v->organization_id);
  BSON_APPEND_INT64(&doc, "version", v->version);
  BSON_APPEND_UTF8(&doc, "fingerprint", v->fingerprint ? v->fingerprint : "");
  BSON_APPEND_UTF8(&doc, "created_by", v->created_by ? v->created_by : "");
  BSON_APPEND_DATE_TIME(&doc, "created_at", v->created_ms);
  append_mutable(&doc, v);
  mq_code_t rc = mq_store_insert_decision(s, SERIES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void read_series(const bson_t *doc, mq_arena_t *a, mq_series_t *v) {
  memset(v, 0, sizeof *v);
  v->id = mq_bson_get_str(doc, "_id", a);
  v->organization_id = mq_bson_get_str(doc, "organization_id", a);
  v->state = (int)mq_bson_get_i64(doc, "state", MQ_SERIES_CREATING);
  v->version = mq_bson_get_i64(doc, "version", 0);
  v->title = mq_bson_get_str(doc, "title", a);
  v->rrule = mq_bson_get_str(doc, "rrule", a);
  v->time_zone = mq_bson_get_str(doc, "time_zone", a);
  v->first_start_local = mq_bson_get_str(doc, "first_start_local", a);
  v->duration_minutes = (uint32_t)mq_bson_get_i64(doc, "duration_minutes", 0);
  v->explicit_starts = (const char **)mq_bson_get_str_array(doc, "explicit_starts_local", a, &v->n_explicit);
  size_t n_occ;
  bson_t *occ = mq_bson_get_doc_array(doc, "occurrences", a, &n_occ);
  v->occ = mq_arena_alloc(a, (n_occ ? n_occ : 1) * sizeof *v->occ);
  for (size_t i = 0; i < n_occ; i++) {
    mq_series_occ_t *o = &v->occ[v->n_occ++];
    o->event_id = mq_bson_get_str(&occ[i], "event_id", a);
    o->starts_ms = mq_bson_get_date_ms(&occ[i], "starts_at", 0);
    o->ends_ms = mq_bson_get_date_ms(&occ[i], "ends_at", 0);
  }
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, "template") && BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t st;
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(&it, &st, &len, &data);
    uint8_t *copy = mq_arena_alloc(a, len ? len : 1);
    memcpy(copy, data, len);
    v->template_pb = copy;
    v->template_len = len;
  }
  v->pending = mq_bson_get_str(doc, "pending", a);
  v->pending_ids = (const char **)mq_bson_get_str_array(doc, "pending_event_ids", a, &v->n_pending);
  v->fingerprint = mq_bson_get_str(doc, "fingerprint", a);
  v->cancel_reason = mq_bson_get_str(doc, "cancel_reason", a);
  v->created_by = mq_bson_get_str(doc, "created_by", a);
  v->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  v->updated_ms = mq_bson_get_date_ms(doc, "updated_at", v->created_ms);
}

static void no_outbox(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}

mq_code_t mq_series_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_series_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  no_outbox(&opts);
  mq_code_t rc = mq_store_find_one(s, SERIES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "series_id", "no such series");
  if (rc != MQ_OK) return rc;
  read_series(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_series_save(mq_store_t *s, const mq_series_t *v, int64_t expected, const mq_event_t *evs, size_t n,
                         mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  append_mutable(&set, v);
  BSON_APPEND_INT64(&set, "version", expected + 1);
  bson_append_document_end(&upd, &set);
  if (n) mq_outbox_append_update(&upd, evs, n);
  BSON_APPEND_INT64(&also, "version", expected);
  bson_value_t id = id_value(v->id);
  mq_code_t rc = mq_store_update_where(s, SERIES, &id, &also, &upd, err);
  bson_destroy(&upd);
  bson_destroy(&also);
  if (rc == MQ_NOT_FOUND) { /* gone, or another write came first */
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
    BSON_APPEND_UTF8(&filter, "_id", v->id);
    no_outbox(&opts);
    mq_error_t ferr;
    mq_code_t frc = mq_store_find_one(s, SERIES, &filter, &opts, &doc, &ferr);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (frc == MQ_OK) {
      bson_destroy(&doc);
      return mq_error_set(err, MQ_ABORTED, "version", "the series changed since you read it; read it again");
    }
    return mq_error_set(err, MQ_NOT_FOUND, "series_id", "no such series");
  }
  return rc;
}

typedef struct {
  mq_arena_t *a;
  mq_series_occ_t *out;
  size_t *n, max;
} occ_ctx_t;

static bool collect(const bson_t *doc, void *arg) {
  occ_ctx_t *c = arg;
  mq_series_occ_t *o = &c->out[(*c->n)++];
  o->event_id = mq_bson_get_str(doc, "_id", c->a);
  o->starts_ms = mq_bson_get_date_ms(doc, "starts_at", 0);
  o->ends_ms = mq_bson_get_date_ms(doc, "ends_at", 0);
  return *c->n < c->max;
}

mq_code_t mq_series_occurrences(mq_store_t *s, const mq_series_occ_query_t *q, mq_arena_t *a, mq_series_occ_t *out,
                                size_t *n, mq_error_t *err) {
  *n = 0;
  if (q->limit == 0) return MQ_OK;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
  BSON_APPEND_UTF8(&filter, "series_id", q->series_id);
  if (q->published_only) BSON_APPEND_INT32(&filter, "state", MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED);
  if (q->has_cursor) /* (starts_at > after) or (starts_at == after and _id > after_id) */
    mq_store_append_keyset_date(&filter, "starts_at", q->after_ms, q->after_id, false);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "starts_at", 1);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "_id", 1);
  BSON_APPEND_INT32(&proj, "starts_at", 1);
  BSON_APPEND_INT32(&proj, "ends_at", 1);
  bson_append_document_end(&opts, &proj);
  BSON_APPEND_INT64(&opts, "limit", q->limit);
  occ_ctx_t ctx = {a, out, n, q->limit};
  mq_code_t rc = mq_store_find_each(s, EVENTS, &filter, &opts, collect, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}
