/*
 * events_store.c — see events_store.h. Queries: by _id; discovery by
 * (state, visibility, starts_at|published_at, _id); an organization's events
 * by (organization_id, starts_at, _id).
 */
#include "store/catalog/events_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "store/mq_bson.h"

#define EVENTS "events"
#define DELETIONS "event_deletions"

const mq_index_spec_t mq_events_indexes[] = {
    {EVENTS, "discover_start", "{\"state\": 1, \"visibility\": 1, \"starts_at\": 1, \"_id\": 1}", false},
    {EVENTS, "discover_newest", "{\"state\": 1, \"visibility\": 1, \"published_at\": -1, \"_id\": -1}", false},
    {EVENTS, "org_start", "{\"organization_id\": 1, \"starts_at\": 1, \"_id\": 1}", false},
    {EVENTS, "venue", "{\"venue_id\": 1}", false},
    {EVENTS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {DELETIONS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_events_n_indexes = sizeof mq_events_indexes / sizeof mq_events_indexes[0];

static void append_ts(bson_t *doc, const char *key, const Google__Protobuf__Timestamp *ts) {
  if (ts)
    BSON_APPEND_DATE_TIME(doc, key, mq_pb_timestamp_ms(ts));
  else
    BSON_APPEND_NULL(doc, key);
}

static void append_ticket_types(bson_t *doc, const Marquee__Catalog__V1__Event *e) {
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, "ticket_types", &arr);
  for (size_t i = 0; i < e->n_ticket_types; i++) {
    const Marquee__Catalog__V1__TicketType *t = e->ticket_types[i];
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "ticket_type_id", t->ticket_type_id);
    BSON_APPEND_UTF8(&d, "name", t->name);
    BSON_APPEND_UTF8(&d, "description", t->description ? t->description : "");
    mq_bson_append_money(&d, "price", t->price);
    BSON_APPEND_INT64(&d, "capacity", t->capacity);
    append_ts(&d, "sales_start", t->sales_start);
    append_ts(&d, "sales_end", t->sales_end);
    BSON_APPEND_INT32(&d, "min_per_order", (int32_t)t->min_per_order);
    BSON_APPEND_INT32(&d, "max_per_order", (int32_t)t->max_per_order);
    BSON_APPEND_BOOL(&d, "hidden", t->hidden);
    BSON_APPEND_UTF8(&d, "access_code_hash", t->access_code ? t->access_code : "");
    BSON_APPEND_INT32(&d, "sort_order", t->sort_order);
    BSON_APPEND_INT32(&d, "max_per_user", (int32_t)t->max_per_user);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(doc, &arr);
}

/* Every field a save rewrites (all but _id, organization_id, created_at). */
static void append_mutable(bson_t *doc, const Marquee__Catalog__V1__Event *e) {
  BSON_APPEND_UTF8(doc, "title", e->title);
  BSON_APPEND_UTF8(doc, "description_md", e->description_md ? e->description_md : "");
  BSON_APPEND_UTF8(doc, "category_id", e->category_id ? e->category_id : "");
  mq_bson_append_str_array(doc, "tags", (const char *const *)e->tags, e->n_tags);
  mq_bson_append_str_array(doc, "image_ids", (const char *const *)e->image_ids, e->n_image_ids);
  BSON_APPEND_UTF8(doc, "cover_image_id", e->cover_image_id ? e->cover_image_id : "");
  BSON_APPEND_UTF8(doc, "venue_id", e->venue_id ? e->venue_id : "");
  BSON_APPEND_UTF8(doc, "online_url", e->online_url ? e->online_url : "");
  append_ts(doc, "starts_at", e->starts_at);
  append_ts(doc, "ends_at", e->ends_at);
  BSON_APPEND_UTF8(doc, "time_zone", e->time_zone ? e->time_zone : "UTC");
  BSON_APPEND_UTF8(doc, "language", e->language ? e->language : "en");
  BSON_APPEND_UTF8(doc, "currency", e->currency ? e->currency : "");
  BSON_APPEND_INT32(doc, "visibility", (int32_t)e->visibility);
  BSON_APPEND_UTF8(doc, "age_policy", e->age_policy ? e->age_policy : "");
  BSON_APPEND_UTF8(doc, "refund_policy", e->refund_policy ? e->refund_policy : "");
  BSON_APPEND_INT64(doc, "capacity", e->capacity);
  BSON_APPEND_INT32(doc, "attendee_cancel_cutoff_hours", (int32_t)e->attendee_cancel_cutoff_hours);
  BSON_APPEND_BOOL(doc, "attendee_cancel_disabled", e->attendee_cancel_disabled);
  BSON_APPEND_INT32(doc, "state", (int32_t)e->state);
  append_ticket_types(doc, e);
  BSON_APPEND_UTF8(doc, "city", e->city ? e->city : "");
  char key[128];
  mq_events_city_key(e->city, key);
  BSON_APPEND_UTF8(doc, "city_key", key);
  BSON_APPEND_UTF8(doc, "country", e->country ? e->country : "");
  BSON_APPEND_UTF8(doc, "region", e->region ? e->region : "");
  BSON_APPEND_INT32(doc, "attendance_mode", (int32_t)e->attendance_mode);
  BSON_APPEND_INT64(doc, "min_price_minor", e->min_price_minor);
  BSON_APPEND_UTF8(doc, "cancel_reason", e->cancel_reason ? e->cancel_reason : "");
  BSON_APPEND_UTF8(doc, "series_id", e->series_id ? e->series_id : "");
  append_ts(doc, "updated_at", e->updated_at);
  append_ts(doc, "published_at", e->published_at);
}

void mq_events_doc(bson_t *doc, const Marquee__Catalog__V1__Event *e) {
  BSON_APPEND_UTF8(doc, "_id", e->event_id);
  BSON_APPEND_UTF8(doc, "organization_id", e->organization_id);
  BSON_APPEND_INT64(doc, "version", e->version);
  append_ts(doc, "created_at", e->created_at);
  append_mutable(doc, e);
}

mq_code_t mq_events_insert(mq_store_t *s, const Marquee__Catalog__V1__Event *e, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  mq_events_doc(&doc, e);
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, EVENTS, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_INTERNAL, NULL, "duplicate event id");
  return rc;
}

static Google__Protobuf__Timestamp *get_ts(const bson_t *doc, const char *key, mq_arena_t *a) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DATE_TIME(&it)) return NULL;
  return mq_pb_timestamp(a, bson_iter_date_time(&it));
}

static Marquee__Catalog__V1__TicketType *read_ticket_type(const bson_t *d, mq_arena_t *a) {
  Marquee__Catalog__V1__TicketType *t = mq_arena_alloc(a, sizeof *t);
  marquee__catalog__v1__ticket_type__init(t);
  t->ticket_type_id = mq_bson_get_str(d, "ticket_type_id", a);
  t->name = mq_bson_get_str(d, "name", a);
  t->description = mq_bson_get_str(d, "description", a);
  t->price = mq_bson_get_money(d, "price", a);
  t->capacity = mq_bson_get_i64(d, "capacity", 0);
  t->sales_start = get_ts(d, "sales_start", a);
  t->sales_end = get_ts(d, "sales_end", a);
  t->min_per_order = (uint32_t)mq_bson_get_i64(d, "min_per_order", 1);
  t->max_per_order = (uint32_t)mq_bson_get_i64(d, "max_per_order", 10);
  t->hidden = mq_bson_get_bool(d, "hidden", false);
  t->access_code = mq_bson_get_str(d, "access_code_hash", a);
  t->sort_order = (int32_t)mq_bson_get_i64(d, "sort_order", 0);
  t->max_per_user = (uint32_t)mq_bson_get_i64(d, "max_per_user", 0);
  return t;
}

static Marquee__Catalog__V1__Event *read_event(const bson_t *doc, mq_arena_t *a) {
  Marquee__Catalog__V1__Event *e = mq_arena_alloc(a, sizeof *e);
  marquee__catalog__v1__event__init(e);
  e->event_id = mq_bson_get_str(doc, "_id", a);
  e->organization_id = mq_bson_get_str(doc, "organization_id", a);
  e->title = mq_bson_get_str(doc, "title", a);
  e->description_md = mq_bson_get_str(doc, "description_md", a);
  e->category_id = mq_bson_get_str(doc, "category_id", a);
  e->tags = mq_bson_get_str_array(doc, "tags", a, &e->n_tags);
  e->image_ids = mq_bson_get_str_array(doc, "image_ids", a, &e->n_image_ids);
  e->cover_image_id = mq_bson_get_str(doc, "cover_image_id", a);
  e->venue_id = mq_bson_get_str(doc, "venue_id", a);
  e->online_url = mq_bson_get_str(doc, "online_url", a);
  e->starts_at = get_ts(doc, "starts_at", a);
  e->ends_at = get_ts(doc, "ends_at", a);
  e->time_zone = mq_bson_get_str(doc, "time_zone", a);
  e->language = mq_bson_get_str(doc, "language", a);
  e->currency = mq_bson_get_str(doc, "currency", a);
  e->visibility = (Marquee__Catalog__V1__Visibility)mq_bson_get_i64(doc, "visibility", 1);
  e->age_policy = mq_bson_get_str(doc, "age_policy", a);
  e->refund_policy = mq_bson_get_str(doc, "refund_policy", a);
  e->capacity = mq_bson_get_i64(doc, "capacity", 0);
  e->attendee_cancel_cutoff_hours = (uint32_t)mq_bson_get_i64(doc, "attendee_cancel_cutoff_hours", 0);
  e->attendee_cancel_disabled = mq_bson_get_bool(doc, "attendee_cancel_disabled", false);
  e->state = (Marquee__Catalog__V1__EventState)mq_bson_get_i64(doc, "state", 1);
  e->version = mq_bson_get_i64(doc, "version", 1);
  size_t n_tt;
  bson_t *tt = mq_bson_get_doc_array(doc, "ticket_types", a, &n_tt);
  e->ticket_types = mq_arena_alloc(a, (n_tt ? n_tt : 1) * sizeof *e->ticket_types);
  for (size_t i = 0; i < n_tt; i++) e->ticket_types[e->n_ticket_types++] = read_ticket_type(&tt[i], a);
  e->city = mq_bson_get_str(doc, "city", a);
  e->country = mq_bson_get_str(doc, "country", a);
  e->region = mq_bson_get_str(doc, "region", a);
  e->attendance_mode = (Marquee__Catalog__V1__AttendanceMode)mq_bson_get_i64(doc, "attendance_mode", 0);
  e->min_price_minor = mq_bson_get_i64(doc, "min_price_minor", 0);
  e->cancel_reason = mq_bson_get_str(doc, "cancel_reason", a);
  e->series_id = mq_bson_get_str(doc, "series_id", a);
  e->created_at = get_ts(doc, "created_at", a);
  e->updated_at = get_ts(doc, "updated_at", a);
  e->published_at = get_ts(doc, "published_at", a);
  return e;
}

static void no_outbox(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}

mq_code_t mq_events_any_at_venue(mq_store_t *s, const char *venue_id, bool *found, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "venue_id", venue_id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &doc);
  BSON_APPEND_INT32(&doc, "_id", 1);
  bson_append_document_end(&opts, &doc);
  mq_code_t rc = mq_store_find_one(s, EVENTS, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *found = rc == MQ_OK;
  if (rc == MQ_OK) bson_destroy(&doc);
  return rc == MQ_NOT_FOUND ? MQ_OK : rc;
}

mq_code_t mq_events_get(mq_store_t *s, const char *id, mq_arena_t *a, Marquee__Catalog__V1__Event **out,
                        mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  no_outbox(&opts);
  mq_code_t rc = mq_store_find_one(s, EVENTS, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc != MQ_OK) return rc;
  *out = read_event(&doc, a);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_events_save(mq_store_t *s, Marquee__Catalog__V1__Event *e, int64_t expected, const mq_event_t *evs,
                         size_t n, mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  append_mutable(&set, e);
  BSON_APPEND_INT64(&set, "version", expected + 1);
  bson_append_document_end(&upd, &set);
  if (n) mq_outbox_append_update(&upd, evs, n);
  BSON_APPEND_INT64(&also, "version", expected);
  bson_value_t id = {.value_type = BSON_TYPE_UTF8};
  id.value.v_utf8.str = e->event_id;
  id.value.v_utf8.len = (uint32_t)strlen(e->event_id);
  mq_code_t rc = mq_store_update_where(s, EVENTS, &id, &also, &upd, err);
  bson_destroy(&upd);
  bson_destroy(&also);
  if (rc == MQ_NOT_FOUND) { /* gone, or someone else's change came first */
    bson_t filter = BSON_INITIALIZER, doc;
    BSON_APPEND_UTF8(&filter, "_id", e->event_id);
    mq_error_t ferr;
    mq_code_t frc = mq_store_find_one(s, EVENTS, &filter, NULL, &doc, &ferr);
    bson_destroy(&filter);
    if (frc == MQ_OK) {
      bson_destroy(&doc);
      return mq_error_set(err, MQ_ABORTED, "version", "the event changed since you read it; read it again");
    }
    return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  }
  if (rc == MQ_OK) e->version = expected + 1;
  return rc;
}

mq_code_t mq_events_delete(mq_store_t *s, const char *id, const char *by, const mq_event_t *ev, mq_error_t *err) {
  char rid[37];
  mq_uuid_v4(rid);
  bson_t rec = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&rec, "_id", rid);
  BSON_APPEND_UTF8(&rec, "event_id", id);
  BSON_APPEND_UTF8(&rec, "by", by);
  BSON_APPEND_DATE_TIME(&rec, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&rec, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, DELETIONS, &rec, err);
  bson_destroy(&rec);
  if (rc != MQ_OK) return rc;
  bson_t sel = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "_id", id);
  BSON_APPEND_INT32(&sel, "state", MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_DRAFT);
  rc = mq_store_delete(s, EVENTS, &sel, false, NULL, err);
  bson_destroy(&sel);
  return rc;
}

typedef struct {
  mq_arena_t *a;
  Marquee__Catalog__V1__Event **out;
  size_t *n, max;
} list_ctx_t;

static bool collect(const bson_t *doc, void *arg) {
  list_ctx_t *c = arg;
  c->out[(*c->n)++] = read_event(doc, c->a);
  return *c->n < c->max;
}

static void range(bson_t *filter, const char *key, const char *op1, int64_t v1, const char *op2, int64_t v2) {
  bson_t r;
  BSON_APPEND_DOCUMENT_BEGIN(filter, key, &r);
  if (op1) BSON_APPEND_DATE_TIME(&r, op1, v1);
  if (op2) BSON_APPEND_DATE_TIME(&r, op2, v2);
  bson_append_document_end(filter, &r);
}

mq_code_t mq_events_list(mq_store_t *s, const mq_events_query_t *q, mq_arena_t *a, Marquee__Catalog__V1__Event ***out,
                         size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  const char *key = q->newest ? "published_at" : "starts_at";
  if (q->public_only) {
    BSON_APPEND_INT32(&filter, "state", MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED);
    BSON_APPEND_INT32(&filter, "visibility", MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC);
  } else if (q->state) {
    BSON_APPEND_INT32(&filter, "state", q->state);
  }
  if (q->organization_id) BSON_APPEND_UTF8(&filter, "organization_id", q->organization_id);
  if (q->category_id) BSON_APPEND_UTF8(&filter, "category_id", q->category_id);
  if (q->city_key) BSON_APPEND_UTF8(&filter, "city_key", q->city_key);
  if (q->country) BSON_APPEND_UTF8(&filter, "country", q->country);
  if (q->attendance_mode) BSON_APPEND_INT32(&filter, "attendance_mode", q->attendance_mode);
  if (q->currency) BSON_APPEND_UTF8(&filter, "currency", q->currency);
  if (q->free_only) {
    BSON_APPEND_INT64(&filter, "min_price_minor", 0);
  } else if (q->min_price_minor > 0 || q->max_price_minor > 0) {
    bson_t r;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "min_price_minor", &r);
    if (q->min_price_minor > 0) BSON_APPEND_INT64(&r, "$gte", q->min_price_minor);
    if (q->max_price_minor > 0) BSON_APPEND_INT64(&r, "$lte", q->max_price_minor);
    bson_append_document_end(&filter, &r);
  }
  if (q->starts_after_ms || q->starts_before_ms) {
    if (q->newest) /* the sort key has its own range below; this one filters */
      range(&filter, "starts_at", q->starts_after_ms ? "$gte" : NULL, q->starts_after_ms,
            q->starts_before_ms ? "$lt" : NULL, q->starts_before_ms);
  }
  /* the sort key: its range, and the cursor as (key > after) or (key == after and _id > after_id) */
  if (q->has_cursor) mq_store_append_keyset_date(&filter, key, q->after_ms, q->after_id, q->newest);
  if (!q->newest && (q->starts_after_ms || q->starts_before_ms))
    range(&filter, "starts_at", q->starts_after_ms ? "$gte" : NULL, q->starts_after_ms,
          q->starts_before_ms ? "$lt" : NULL, q->starts_before_ms);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, key, q->newest ? -1 : 1);
  BSON_APPEND_INT32(&sort, "_id", q->newest ? -1 : 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", q->limit);
  no_outbox(&opts);
  *out = mq_arena_alloc(a, (q->limit ? q->limit : 1) * sizeof **out);
  *n = 0;
  list_ctx_t ctx = {a, *out, n, q->limit};
  mq_code_t rc = mq_store_find_each(s, EVENTS, &filter, &opts, collect, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

typedef struct {
  bool (*fn)(const Marquee__Catalog__V1__Event *e, void *arg);
  void *arg;
} each_ctx_t;

static bool each_public(const bson_t *doc, void *arg) {
  each_ctx_t *c = arg;
  mq_arena_t a;
  mq_arena_init(&a);
  bool more = c->fn(read_event(doc, &a), c->arg);
  mq_arena_release(&a);
  return more;
}

mq_code_t mq_events_each_public(mq_store_t *s, bool (*fn)(const Marquee__Catalog__V1__Event *e, void *arg), void *arg,
                                mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_INT32(&filter, "state", MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED);
  BSON_APPEND_INT32(&filter, "visibility", MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC);
  no_outbox(&opts);
  BSON_APPEND_INT32(&opts, "batchSize", 4000);
  each_ctx_t ctx = {fn, arg};
  mq_code_t rc = mq_store_find_each(s, EVENTS, &filter, &opts, each_public, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_events_each_written_in_hour(mq_store_t *s, int64_t hour,
                                         bool (*fn)(const Marquee__Catalog__V1__Event *e, void *arg), void *arg,
                                         mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_INT64(&filter, MQ_OUTBOX_HOUR_FIELD, hour);
  no_outbox(&opts);
  BSON_APPEND_INT32(&opts, "batchSize", 4000);
  each_ctx_t ctx = {fn, arg};
  mq_code_t rc = mq_store_find_each(s, EVENTS, &filter, &opts, each_public, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

void mq_events_city_key(const char *city, char out[128]) {
  size_t i = 0;
  for (const char *p = city ? city : ""; *p && i + 1 < 128; p++)
    out[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  out[i] = '\0';
}
