/*
 * categories_store.c — see categories_store.h. Queries: categories by _id,
 * all of them, or the active ones ({retired: false}, its own index); the
 * slug's uniqueness is decided by its unique index on insert; the lease by
 * _id.
 */
#include "store/catalog/categories_store.h"

#include <string.h>
#include <time.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

#define CATEGORIES "categories"
#define LOCKS "category_tree_lock"
#define LEASE_ID "tree"

const mq_index_spec_t mq_categories_indexes[] = {
    {CATEGORIES, "slug_unique", "{\"slug\": 1}", true},
    {CATEGORIES, "retired", "{\"retired\": 1}", false},
    {CATEGORIES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_categories_n_indexes = sizeof mq_categories_indexes / sizeof mq_categories_indexes[0];

static void append_names(bson_t *doc, const mq_category_name_t *names, size_t n) {
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, "names", &arr);
  for (size_t i = 0; i < n; i++) {
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_t e;
    bson_append_document_begin(&arr, k, -1, &e);
    BSON_APPEND_UTF8(&e, "locale", names[i].locale);
    BSON_APPEND_UTF8(&e, "name", names[i].name);
    bson_append_document_end(&arr, &e);
  }
  bson_append_array_end(doc, &arr);
}

static void read_names(const bson_t *doc, mq_arena_t *a, mq_category_t *out) {
  bson_iter_t it, arr;
  out->names = NULL;
  out->n_names = 0;
  if (!bson_iter_init_find(&it, doc, "names") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) return;
  size_t cap = 0;
  bson_iter_t count = arr;
  while (bson_iter_next(&count)) cap++;
  mq_category_name_t *names = mq_arena_alloc(a, (cap ? cap : 1) * sizeof *names);
  size_t n = 0;
  while (bson_iter_next(&arr) && n < cap) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&arr, &len, &data);
    bson_t sub;
    if (!bson_init_static(&sub, data, len)) continue;
    names[n].locale = mq_bson_get_str(&sub, "locale", a);
    names[n].name = mq_bson_get_str(&sub, "name", a);
    n++;
  }
  out->names = names;
  out->n_names = n;
}

static void read_category(const bson_t *doc, mq_arena_t *a, mq_category_t *out) {
  out->id = mq_bson_get_str(doc, "_id", a);
  out->slug = mq_bson_get_str(doc, "slug", a);
  out->parent_id = mq_bson_get_str(doc, "parent_id", a);
  read_names(doc, a, out);
  out->sort_order = (int32_t)mq_bson_get_i64(doc, "sort_order", 0);
  out->retired = mq_bson_get_bool(doc, "retired", false);
  out->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  out->updated_ms = mq_bson_get_date_ms(doc, "updated_at", 0);
}

static void no_outbox(bson_t *opts) {
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(opts, &proj);
}

mq_code_t mq_categories_create(mq_store_t *s, const mq_category_t *c, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", c->id);
  BSON_APPEND_UTF8(&doc, "slug", c->slug);
  BSON_APPEND_UTF8(&doc, "parent_id", c->parent_id ? c->parent_id : "");
  append_names(&doc, c->names, c->n_names);
  BSON_APPEND_INT32(&doc, "sort_order", c->sort_order);
  BSON_APPEND_BOOL(&doc, "retired", c->retired);
  BSON_APPEND_DATE_TIME(&doc, "created_at", c->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", c->updated_ms);
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, CATEGORIES, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_ALREADY_EXISTS, "slug", "this slug is taken");
  return rc;
}

mq_code_t mq_categories_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_category_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  no_outbox(&opts);
  mq_code_t rc = mq_store_find_one(s, CATEGORIES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc != MQ_OK) return rc;
  read_category(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

static void category_row(const bson_t *doc, mq_arena_t *a, void *row) {
  read_category(doc, a, row);
}

mq_code_t mq_categories_list(mq_store_t *s, bool include_retired, mq_arena_t *a, mq_category_t **out, size_t *n,
                             mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  if (!include_retired) BSON_APPEND_BOOL(&filter, "retired", false);
  BSON_APPEND_INT64(&opts, "limit", MQ_CATEGORIES_MAX);
  no_outbox(&opts);
  mq_store_rows_t rows; /* grows in the arena: the find's limit bounds it */
  mq_store_rows_init(&rows, a, sizeof(mq_category_t), category_row, 0);
  mq_code_t rc = mq_store_find_rows(s, CATEGORIES, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v ? rows.v : mq_arena_alloc(a, sizeof **out);
  *n = rc == MQ_OK ? rows.n : 0;
  return rc;
}

/* Sends `upd` (whose $set the caller filled) with updated_at and the event. */
static mq_code_t update(mq_store_t *s, const char *id, bson_t *upd, const mq_event_t *ev, mq_error_t *err) {
  mq_outbox_append_update(upd, ev, 1);
  bson_value_t idv = {.value_type = BSON_TYPE_UTF8};
  idv.value.v_utf8.str = (char *)id;
  idv.value.v_utf8.len = (uint32_t)strlen(id);
  mq_code_t rc = mq_store_update_by_id(s, CATEGORIES, &idv, upd, err);
  bson_destroy(upd);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "category_id", "no such category");
  return rc;
}

mq_code_t mq_categories_set_names(mq_store_t *s, const char *id, const mq_category_name_t *names, size_t n,
                                  int64_t updated_ms, const mq_event_t *ev, mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  append_names(&set, names, n);
  BSON_APPEND_DATE_TIME(&set, "updated_at", updated_ms);
  bson_append_document_end(&upd, &set);
  return update(s, id, &upd, ev, err);
}

mq_code_t mq_categories_set_parent(mq_store_t *s, const char *id, const char *parent_id, int32_t sort_order,
                                   int64_t updated_ms, const mq_event_t *ev, mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  BSON_APPEND_UTF8(&set, "parent_id", parent_id ? parent_id : "");
  BSON_APPEND_INT32(&set, "sort_order", sort_order);
  BSON_APPEND_DATE_TIME(&set, "updated_at", updated_ms);
  bson_append_document_end(&upd, &set);
  return update(s, id, &upd, ev, err);
}

mq_code_t mq_categories_retire(mq_store_t *s, const char *id, int64_t updated_ms, const mq_event_t *ev,
                               mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  BSON_APPEND_BOOL(&set, "retired", true);
  BSON_APPEND_DATE_TIME(&set, "updated_at", updated_ms);
  bson_append_document_end(&upd, &set);
  return update(s, id, &upd, ev, err);
}

mq_code_t mq_categories_usable(mq_store_t *s, const char *category_id, mq_error_t *err) {
  if (!category_id || !category_id[0]) return mq_error_set(err, MQ_INVALID_ARGUMENT, "category_id", "unknown category");
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_UTF8(&filter, "_id", category_id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "retired", 1);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, CATEGORIES, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_INVALID_ARGUMENT, "category_id", "unknown category");
  if (rc != MQ_OK) return rc;
  bool retired = mq_bson_get_bool(&doc, "retired", false);
  bson_destroy(&doc);
  if (retired) return mq_error_set(err, MQ_INVALID_ARGUMENT, "category_id", "this category is retired");
  return MQ_OK;
}

/* ---- the tree lease ------------------------------------------------------------ */

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Deletes the lease if it has expired; *cleared tells whether it did. The
 * filter names the holder and expiry that were read, so a lease taken anew
 * meanwhile is left alone. */
static mq_code_t clear_expired(mq_store_t *s, int64_t now, bool *cleared, mq_error_t *err) {
  *cleared = false;
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", LEASE_ID);
  mq_code_t rc = mq_store_find_one(s, LOCKS, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc == MQ_NOT_FOUND) {
    *cleared = true; /* released meanwhile: try again at once */
    return MQ_OK;
  }
  if (rc != MQ_OK) return rc;
  int64_t expires = mq_bson_get_date_ms(&doc, "expires_at", 0);
  bson_iter_t it;
  bson_t del = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&del, "_id", LEASE_ID);
  if (bson_iter_init_find(&it, &doc, "holder") && BSON_ITER_HOLDS_UTF8(&it))
    BSON_APPEND_VALUE(&del, "holder", bson_iter_value(&it));
  BSON_APPEND_DATE_TIME(&del, "expires_at", expires);
  bson_destroy(&doc);
  int64_t n = 0;
  if (expires <= now) rc = mq_store_delete(s, LOCKS, &del, false, &n, err);
  bson_destroy(&del);
  *cleared = n > 0;
  return rc;
}

mq_code_t mq_categories_lock_tree(mq_store_t *s, const char *holder, int64_t wait_ms, mq_error_t *err) {
  int64_t until = mq_now_unix_ms() + wait_ms, pause = 5;
  for (;;) {
    int64_t now = mq_now_unix_ms();
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", LEASE_ID);
    BSON_APPEND_UTF8(&doc, "holder", holder);
    BSON_APPEND_DATE_TIME(&doc, "expires_at", now + MQ_CATEGORY_LEASE_MS);
    mq_code_t rc = mq_store_insert_decision(s, LOCKS, &doc, err);
    bson_destroy(&doc);
    if (rc != MQ_ALREADY_EXISTS) return rc;
    bool cleared;
    if ((rc = clear_expired(s, now, &cleared, err)) != MQ_OK) return rc;
    if (cleared) continue;
    if (mq_now_unix_ms() >= until)
      return mq_error_set(err, MQ_UNAVAILABLE, NULL, "another change of the category tree is in progress; retry");
    sleep_ms(pause);
    pause = pause < 80 ? pause * 2 : 80;
  }
}

void mq_categories_unlock_tree(mq_store_t *s, const char *holder) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", LEASE_ID);
  BSON_APPEND_UTF8(&filter, "holder", holder);
  mq_error_t err;
  mq_store_delete(s, LOCKS, &filter, false, NULL, &err);
  bson_destroy(&filter);
}
