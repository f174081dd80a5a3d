/*
 * venues_store.c — see venues_store.h. Queries: venues by _id; by
 * organization_id ordered by (name, _id) with a keyset cursor (index
 * org_name); deletion records by _id.
 */
#include "store/catalog/venues_store.h"

#include <stddef.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

#define VENUES "venues"
#define DELETIONS "venue_deletions"

const mq_index_spec_t mq_venues_indexes[] = {
    {VENUES, "org_name", "{\"organization_id\": 1, \"name\": 1, \"_id\": 1}", false},
    {VENUES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {DELETIONS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_venues_n_indexes = sizeof mq_venues_indexes / sizeof mq_venues_indexes[0];

static bson_value_t id_value(const char *id) {
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)id;
  v.value.v_utf8.len = (uint32_t)strlen(id);
  return v;
}

static double get_double(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return 0;
  if (BSON_ITER_HOLDS_DOUBLE(&it)) return bson_iter_double(&it);
  if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) return (double)bson_iter_as_int64(&it);
  return 0;
}

static void read_venue(const bson_t *doc, mq_arena_t *a, mq_venue_t *out) {
  out->id = mq_bson_get_str(doc, "_id", a);
  out->organization_id = mq_bson_get_str(doc, "organization_id", a);
  out->name = mq_bson_get_str(doc, "name", a);
  out->address_line1 = mq_bson_get_str(doc, "address_line1", a);
  out->address_line2 = mq_bson_get_str(doc, "address_line2", a);
  out->city = mq_bson_get_str(doc, "city", a);
  out->region = mq_bson_get_str(doc, "region", a);
  out->postal_code = mq_bson_get_str(doc, "postal_code", a);
  out->country = mq_bson_get_str(doc, "country", a);
  out->time_zone = mq_bson_get_str(doc, "time_zone", a);
  out->latitude = get_double(doc, "latitude");
  out->longitude = get_double(doc, "longitude");
  out->capacity = mq_bson_get_i64(doc, "capacity", 0);
  out->version = mq_bson_get_i64(doc, "version", 1);
  out->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  out->updated_ms = mq_bson_get_date_ms(doc, "updated_at", out->created_ms);
}

/* The content fields named by `fields`, under their constant names. */
static void append_fields(bson_t *doc, const mq_venue_t *v, unsigned fields) {
  static const struct {
    unsigned bit;
    const char *name;
    size_t off;
  } text[] = {
      {MQ_VENUE_NAME, "name", offsetof(mq_venue_t, name)},
      {MQ_VENUE_ADDRESS_LINE1, "address_line1", offsetof(mq_venue_t, address_line1)},
      {MQ_VENUE_ADDRESS_LINE2, "address_line2", offsetof(mq_venue_t, address_line2)},
      {MQ_VENUE_CITY, "city", offsetof(mq_venue_t, city)},
      {MQ_VENUE_REGION, "region", offsetof(mq_venue_t, region)},
      {MQ_VENUE_POSTAL_CODE, "postal_code", offsetof(mq_venue_t, postal_code)},
      {MQ_VENUE_COUNTRY, "country", offsetof(mq_venue_t, country)},
      {MQ_VENUE_TIME_ZONE, "time_zone", offsetof(mq_venue_t, time_zone)},
  };
  for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
    if (!(fields & text[i].bit)) continue;
    const char *s = *(const char *const *)(const void *)((const char *)v + text[i].off);
    BSON_APPEND_UTF8(doc, text[i].name, s ? s : "");
  }
  if (fields & MQ_VENUE_LATITUDE) BSON_APPEND_DOUBLE(doc, "latitude", v->latitude);
  if (fields & MQ_VENUE_LONGITUDE) BSON_APPEND_DOUBLE(doc, "longitude", v->longitude);
  if (fields & MQ_VENUE_CAPACITY) BSON_APPEND_INT64(doc, "capacity", v->capacity);
}

#define ALL_FIELDS 0x7FFu

mq_code_t mq_venues_create(mq_store_t *s, const mq_venue_t *v, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", v->id);
  BSON_APPEND_UTF8(&doc, "organization_id", v->organization_id);
  append_fields(&doc, v, ALL_FIELDS);
  BSON_APPEND_INT64(&doc, "version", v->version);
  BSON_APPEND_DATE_TIME(&doc, "created_at", v->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", v->updated_ms);
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, VENUES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void no_outbox(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}

mq_code_t mq_venues_get(mq_store_t *s, const char *venue_id, mq_arena_t *a, mq_venue_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", venue_id);
  no_outbox(&opts);
  mq_code_t rc = mq_store_find_one(s, VENUES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "venue_id", "no such venue");
  if (rc != MQ_OK) return rc;
  read_venue(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_venues_update(mq_store_t *s, const mq_venue_t *v, unsigned fields, int64_t expected_version,
                           const mq_event_t *ev, mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set, inc, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  append_fields(&set, v, fields & ALL_FIELDS);
  BSON_APPEND_DATE_TIME(&set, "updated_at", v->updated_ms);
  bson_append_document_end(&upd, &set);
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$inc", &inc);
  BSON_APPEND_INT64(&inc, "version", 1);
  bson_append_document_end(&upd, &inc);
  if (ev) mq_outbox_append_update(&upd, ev, 1);
  BSON_APPEND_INT64(&also, "version", expected_version);
  bson_value_t idv = id_value(v->id);
  mq_code_t rc = mq_store_update_where(s, VENUES, &idv, &also, &upd, err);
  bson_destroy(&upd);
  bson_destroy(&also);
  if (rc != MQ_NOT_FOUND) return rc;
  /* nothing matched: gone, or another version (tell them apart by a read) */
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", v->id);
  no_outbox(&opts);
  rc = mq_store_find_one(s, VENUES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "venue_id", "no such venue");
  if (rc != MQ_OK) return rc;
  int64_t now_version = mq_bson_get_i64(&doc, "version", 1);
  bson_destroy(&doc);
  return mq_error_set(err, MQ_ABORTED, "version", "the venue changed since you read it (version %lld now)",
                      (long long)now_version);
}

mq_code_t mq_venues_delete(mq_store_t *s, const mq_venue_t *v, const char *by, const mq_event_t *ev, mq_error_t *err) {
  bson_t rec = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&rec, "_id", v->id);
  BSON_APPEND_UTF8(&rec, "organization_id", v->organization_id);
  BSON_APPEND_UTF8(&rec, "by", by);
  BSON_APPEND_DATE_TIME(&rec, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&rec, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, DELETIONS, &rec, err);
  bson_destroy(&rec);
  bool recorded_before = rc == MQ_ALREADY_EXISTS; /* a retry, or a racing deletion */
  if (rc != MQ_OK && !recorded_before) return rc;
  bson_t sel = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "_id", v->id);
  int64_t n = 0;
  rc = mq_store_delete(s, VENUES, &sel, false, &n, err);
  bson_destroy(&sel);
  if (rc != MQ_OK) return rc;
  if (n == 0 && recorded_before) return mq_error_set(err, MQ_NOT_FOUND, "venue_id", "no such venue");
  return MQ_OK;
}

typedef struct {
  mq_arena_t *a;
  mq_venue_t *out;
  size_t *n;
  size_t cap;
} list_ctx_t;

static bool collect_venue(const bson_t *doc, void *arg) {
  list_ctx_t *c = arg;
  read_venue(doc, c->a, &c->out[(*c->n)++]);
  return *c->n < c->cap;
}

mq_code_t mq_venues_list(mq_store_t *s, const mq_venues_query_t *q, mq_arena_t *a, mq_venue_t *out, size_t *n,
                         mq_error_t *err) {
  *n = 0;
  if (q->limit == 0) return MQ_OK;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "organization_id", q->organization_id);
  if (q->after_name && q->after_id) { /* (name, _id) > cursor; values only, never operators */
    bson_value_t name = mq_bson_str_value(q->after_name);
    mq_store_append_keyset(&filter, "name", &name, q->after_id, false);
  }
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "organization_id", 1);
  BSON_APPEND_INT32(&sort, "name", 1);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  no_outbox(&opts);
  BSON_APPEND_INT64(&opts, "limit", q->limit);
  list_ctx_t ctx = {a, out, n, q->limit};
  mq_code_t rc = mq_store_find_each(s, VENUES, &filter, &opts, collect_venue, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}
