/*
 * webhooks_store.c — see webhooks_store.h.
 */
#include "store/notifications/webhooks_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_webhooks_indexes[] = {
    {MQ_WEBHOOK_ENDPOINTS, "organization", "{\"organization_id\": 1}", false},
    {MQ_WEBHOOK_ENDPOINTS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_WEBHOOK_DELIVERIES, "state", "{\"state\": 1}", false},
    {MQ_WEBHOOK_DELIVERIES, "organization_time", "{\"organization_id\": 1, \"created_at\": -1}", false},
    {MQ_WEBHOOK_ATTEMPTS, "delivery", "{\"delivery_id\": 1}", false},
};
const size_t mq_webhooks_n_indexes = sizeof mq_webhooks_indexes / sizeof mq_webhooks_indexes[0];

/* ---- endpoints ------------------------------------------------------------------------ */

static void endpoint_fields(bson_t *d, const mq_wh_endpoint_t *e) {
  BSON_APPEND_UTF8(d, "url", e->url);
  mq_bson_append_str_array(d, "event_types", (const char *const *)e->event_types, e->n_event_types);
  BSON_APPEND_UTF8(d, "description", e->description ? e->description : "");
  BSON_APPEND_BOOL(d, "enabled", e->enabled);
  BSON_APPEND_BOOL(d, "deleted", e->deleted);
  BSON_APPEND_UTF8(d, "secret", e->secret ? e->secret : "");
  BSON_APPEND_UTF8(d, "previous_secret", e->previous_secret ? e->previous_secret : "");
  BSON_APPEND_DATE_TIME(d, "previous_until", e->previous_until_ms);
  BSON_APPEND_UTF8(d, "secret_hint", e->secret_hint ? e->secret_hint : "");
  BSON_APPEND_DATE_TIME(d, "updated_at", e->updated_ms);
}

mq_code_t mq_wh_endpoint_insert(mq_store_t *s, const mq_wh_endpoint_t *e, const mq_event_t *ev, mq_error_t *err) {
  bson_t d = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&d, "_id", e->id);
  BSON_APPEND_UTF8(&d, "organization_id", e->organization_id);
  endpoint_fields(&d, e);
  BSON_APPEND_INT64(&d, "version", 1);
  BSON_APPEND_DATE_TIME(&d, "created_at", e->created_ms);
  mq_outbox_append_insert(&d, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_WEBHOOK_ENDPOINTS, &d, err);
  bson_destroy(&d);
  return rc;
}

static void endpoint_conv(const bson_t *d, mq_arena_t *a, void *elem) {
  mq_wh_endpoint_t *e = elem;
  e->id = mq_bson_get_str(d, "_id", a);
  e->organization_id = mq_bson_get_str(d, "organization_id", a);
  e->url = mq_bson_get_str(d, "url", a);
  e->description = mq_bson_get_str(d, "description", a);
  e->event_types = mq_bson_get_str_array(d, "event_types", a, &e->n_event_types);
  e->enabled = mq_bson_get_bool(d, "enabled", false);
  e->deleted = mq_bson_get_bool(d, "deleted", false);
  e->secret = mq_bson_get_str(d, "secret", a);
  e->previous_secret = mq_bson_get_str(d, "previous_secret", a);
  e->previous_until_ms = mq_bson_get_date_ms(d, "previous_until", 0);
  e->secret_hint = mq_bson_get_str(d, "secret_hint", a);
  e->version = mq_bson_get_i64(d, "version", 1);
  e->created_ms = mq_bson_get_date_ms(d, "created_at", 0);
  e->updated_ms = mq_bson_get_date_ms(d, "updated_at", 0);
}

mq_code_t mq_wh_endpoint_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wh_endpoint_t *out, mq_error_t *err) {
  bson_t d;
  mq_code_t rc = mq_store_get_by_id(s, MQ_WEBHOOK_ENDPOINTS, id, &d, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "endpoint_id", "no such webhook endpoint");
  if (rc != MQ_OK) return rc;
  endpoint_conv(&d, a, out);
  bson_destroy(&d);
  if (out->deleted) return mq_error_set(err, MQ_NOT_FOUND, "endpoint_id", "no such webhook endpoint");
  return MQ_OK;
}

mq_code_t mq_wh_endpoint_list(mq_store_t *s, const char *org_id, bool enabled_only, mq_arena_t *a,
                              mq_wh_endpoint_t **out, size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "organization_id", org_id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "created_at", 1);
  bson_append_document_end(&opts, &sort);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_wh_endpoint_t), endpoint_conv, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_WEBHOOK_ENDPOINTS, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = NULL;
  *n = 0;
  if (rc != MQ_OK) return rc;
  mq_wh_endpoint_t *v = rows.v; /* deleted (and, when asked, disabled) ones filtered here: few per organization */
  for (size_t i = 0; i < rows.n; i++)
    if (!v[i].deleted && (!enabled_only || v[i].enabled)) v[(*n)++] = v[i];
  *out = v;
  return MQ_OK;
}

mq_code_t mq_wh_endpoint_save(mq_store_t *s, const mq_wh_endpoint_t *e, int64_t expected_version, const mq_event_t *ev,
                              mq_error_t *err) {
  bson_value_t id = mq_bson_str_value(e->id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_INT64(&also, "version", expected_version);
  BSON_APPEND_BOOL(&also, "deleted", false);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  endpoint_fields(&set, e);
  BSON_APPEND_INT64(&set, "version", expected_version + 1);
  bson_append_document_end(&update, &set);
  mq_outbox_append_update(&update, ev, 1);
  mq_code_t rc = mq_store_update_where(s, MQ_WEBHOOK_ENDPOINTS, &id, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  if (rc == MQ_NOT_FOUND)
    return mq_error_set(err, MQ_ABORTED, "endpoint.version", "the endpoint changed meanwhile; read it again");
  return rc;
}

/* ---- deliveries ----------------------------------------------------------------------- */

mq_code_t mq_wh_delivery_create(mq_store_t *s, const mq_wh_delivery_t *d, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", d->id);
  BSON_APPEND_UTF8(&doc, "organization_id", d->organization_id);
  BSON_APPEND_UTF8(&doc, "endpoint_id", d->endpoint_id);
  BSON_APPEND_UTF8(&doc, "event_id", d->event_id);
  BSON_APPEND_UTF8(&doc, "event_type", d->event_type);
  BSON_APPEND_UTF8(&doc, "body", d->body);
  BSON_APPEND_UTF8(&doc, "state", "pending");
  BSON_APPEND_INT32(&doc, "attempts", 0);
  BSON_APPEND_DATE_TIME(&doc, "next_at", d->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "window_from", d->created_ms);
  BSON_APPEND_INT32(&doc, "last_status", 0);
  BSON_APPEND_UTF8(&doc, "last_error", "");
  BSON_APPEND_DATE_TIME(&doc, "created_at", d->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", d->created_ms);
  mq_code_t rc = mq_store_insert_decision(s, MQ_WEBHOOK_DELIVERIES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void delivery_conv(const bson_t *d, mq_arena_t *a, void *elem) {
  mq_wh_delivery_t *x = elem;
  x->id = mq_bson_get_str(d, "_id", a);
  x->organization_id = mq_bson_get_str(d, "organization_id", a);
  x->endpoint_id = mq_bson_get_str(d, "endpoint_id", a);
  x->event_id = mq_bson_get_str(d, "event_id", a);
  x->event_type = mq_bson_get_str(d, "event_type", a);
  x->body = mq_bson_get_str(d, "body", a);
  x->state = mq_bson_get_str(d, "state", a);
  x->attempts = (int32_t)mq_bson_get_i64(d, "attempts", 0);
  x->next_ms = mq_bson_get_date_ms(d, "next_at", 0);
  x->window_from_ms = mq_bson_get_date_ms(d, "window_from", 0);
  x->created_ms = mq_bson_get_date_ms(d, "created_at", 0);
  x->updated_ms = mq_bson_get_date_ms(d, "updated_at", 0);
  x->last_status = (int32_t)mq_bson_get_i64(d, "last_status", 0);
  x->last_error = mq_bson_get_str(d, "last_error", a);
}

mq_code_t mq_wh_delivery_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wh_delivery_t *out, mq_error_t *err) {
  bson_t d;
  mq_code_t rc = mq_store_get_by_id(s, MQ_WEBHOOK_DELIVERIES, id, &d, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "delivery_id", "no such webhook delivery");
  if (rc != MQ_OK) return rc;
  delivery_conv(&d, a, out);
  bson_destroy(&d);
  return MQ_OK;
}

static int by_next(const void *x, const void *y) {
  const mq_wh_delivery_t *a = x, *b = y;
  return (a->next_ms > b->next_ms) - (a->next_ms < b->next_ms);
}

mq_code_t mq_wh_delivery_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_wh_delivery_t **out,
                             size_t *n, mq_error_t *err) {
  /* Equality on state only (indexed on every store; the local one pushes down
   * no range): pending deliveries are few — those of endpoints that fail. The
   * body is left out: the attempt reads the delivery it claims. */
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "state", "pending");
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "body", 0);
  BSON_APPEND_INT32(&proj, "_outbox", 0);
  bson_append_document_end(&opts, &proj);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_wh_delivery_t), delivery_conv, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_WEBHOOK_DELIVERIES, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = NULL;
  *n = 0;
  if (rc != MQ_OK) return rc;
  mq_wh_delivery_t *v = rows.v;
  size_t k = 0;
  for (size_t i = 0; i < rows.n; i++)
    if (v[i].next_ms <= now_ms) v[k++] = v[i];
  if (k > 1) qsort(v, k, sizeof *v, by_next);
  *out = v;
  *n = k < limit ? k : limit;
  return MQ_OK;
}

mq_code_t mq_wh_delivery_page(mq_store_t *s, const char *org_id, const char *endpoint_id, const char *state,
                              const mq_store_page_t *pg, mq_arena_t *a, mq_wh_delivery_t **out, size_t *n,
                              mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "organization_id", org_id);
  if (endpoint_id && *endpoint_id) BSON_APPEND_UTF8(&filter, "endpoint_id", endpoint_id);
  if (state && *state) BSON_APPEND_UTF8(&filter, "state", state);
  mq_store_page_apply(&filter, &opts, pg);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "body", 0);
  bson_append_document_end(&opts, &proj);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_wh_delivery_t), delivery_conv, pg->limit);
  mq_code_t rc = mq_store_find_rows(s, MQ_WEBHOOK_DELIVERIES, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rc == MQ_OK ? rows.n : 0;
  return rc;
}

mq_code_t mq_wh_delivery_record(mq_store_t *s, const char *id, int32_t n, const char *state, int64_t next_ms,
                                int32_t status, const char *error, mq_error_t *err) {
  bson_value_t v = mq_bson_str_value(id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_UTF8(&also, "state", "pending");
  BSON_APPEND_INT32(&also, "attempts", n - 1);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", state);
  BSON_APPEND_INT32(&set, "attempts", n);
  BSON_APPEND_DATE_TIME(&set, "next_at", next_ms);
  BSON_APPEND_INT32(&set, "last_status", status);
  BSON_APPEND_UTF8(&set, "last_error", error ? error : "");
  BSON_APPEND_DATE_TIME(&set, "updated_at", mq_now_unix_ms());
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_where(s, MQ_WEBHOOK_DELIVERIES, &v, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_wh_delivery_postpone(mq_store_t *s, const char *id, int32_t attempts, int64_t next_ms, mq_error_t *err) {
  bson_value_t v = mq_bson_str_value(id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_UTF8(&also, "state", "pending");
  BSON_APPEND_INT32(&also, "attempts", attempts);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_DATE_TIME(&set, "next_at", next_ms);
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_where(s, MQ_WEBHOOK_DELIVERIES, &v, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  return rc == MQ_NOT_FOUND ? MQ_OK : rc; /* someone attempted it meanwhile: nothing to postpone */
}

mq_code_t mq_wh_delivery_redeliver(mq_store_t *s, const char *id, int64_t now_ms, mq_error_t *err) {
  bson_value_t v = mq_bson_str_value(id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set, in, states;
  BSON_APPEND_DOCUMENT_BEGIN(&also, "state", &in);
  BSON_APPEND_ARRAY_BEGIN(&in, "$in", &states);
  BSON_APPEND_UTF8(&states, "0", "delivered");
  BSON_APPEND_UTF8(&states, "1", "failed");
  bson_append_array_end(&in, &states);
  bson_append_document_end(&also, &in);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", "pending");
  BSON_APPEND_DATE_TIME(&set, "next_at", now_ms);
  BSON_APPEND_DATE_TIME(&set, "window_from", now_ms);
  BSON_APPEND_DATE_TIME(&set, "updated_at", now_ms);
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_where(s, MQ_WEBHOOK_DELIVERIES, &v, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  if (rc == MQ_NOT_FOUND)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "delivery_id",
                        "the delivery is still pending: its next attempt is scheduled");
  return rc;
}

/* ---- attempts ------------------------------------------------------------------------- */

static void attempt_id(const char *delivery_id, int32_t n, char *out, size_t len) {
  snprintf(out, len, "%s:%d", delivery_id, n);
}

mq_code_t mq_wh_attempt_begin(mq_store_t *s, const char *delivery_id, const char *org_id, int32_t n, int64_t now_ms,
                              int64_t *at_ms, bool *done, mq_error_t *err) {
  char id[256];
  attempt_id(delivery_id, n, id, sizeof id);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "delivery_id", delivery_id);
  BSON_APPEND_UTF8(&doc, "organization_id", org_id);
  BSON_APPEND_INT32(&doc, "n", n);
  BSON_APPEND_DATE_TIME(&doc, "at", now_ms);
  BSON_APPEND_UTF8(&doc, "state", "sending");
  BSON_APPEND_INT32(&doc, "status", 0);
  BSON_APPEND_UTF8(&doc, "error", "");
  BSON_APPEND_INT32(&doc, "duration_ms", 0);
  mq_code_t rc = mq_store_insert_decision(s, MQ_WEBHOOK_ATTEMPTS, &doc, err);
  bson_destroy(&doc);
  if (rc != MQ_ALREADY_EXISTS) return rc;
  bson_t found;
  mq_error_t e2;
  if (mq_store_get_by_id(s, MQ_WEBHOOK_ATTEMPTS, id, &found, &e2) != MQ_OK) return rc;
  *at_ms = mq_bson_get_date_ms(&found, "at", now_ms);
  mq_arena_t a;
  mq_arena_init(&a);
  *done = !strcmp(mq_bson_get_str(&found, "state", &a), "done");
  mq_arena_release(&a);
  bson_destroy(&found);
  return MQ_ALREADY_EXISTS;
}

mq_code_t mq_wh_attempt_finish(mq_store_t *s, const char *delivery_id, int32_t n, int32_t status, const char *error,
                               int32_t duration_ms, mq_error_t *err) {
  char id[256];
  attempt_id(delivery_id, n, id, sizeof id);
  bson_value_t v = mq_bson_str_value(id);
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", "done");
  BSON_APPEND_INT32(&set, "status", status);
  BSON_APPEND_UTF8(&set, "error", error ? error : "");
  BSON_APPEND_INT32(&set, "duration_ms", duration_ms);
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_by_id(s, MQ_WEBHOOK_ATTEMPTS, &v, &update, err);
  bson_destroy(&update);
  return rc;
}

static void attempt_conv(const bson_t *d, mq_arena_t *a, void *elem) {
  mq_wh_attempt_t *x = elem;
  x->id = mq_bson_get_str(d, "_id", a);
  x->delivery_id = mq_bson_get_str(d, "delivery_id", a);
  x->state = mq_bson_get_str(d, "state", a);
  x->error = mq_bson_get_str(d, "error", a);
  x->n = (int32_t)mq_bson_get_i64(d, "n", 0);
  x->status = (int32_t)mq_bson_get_i64(d, "status", 0);
  x->duration_ms = (int32_t)mq_bson_get_i64(d, "duration_ms", 0);
  x->at_ms = mq_bson_get_date_ms(d, "at", 0);
}

static int by_n(const void *x, const void *y) {
  const mq_wh_attempt_t *a = x, *b = y;
  return (a->n > b->n) - (a->n < b->n);
}

mq_code_t mq_wh_attempt_list(mq_store_t *s, const char *delivery_id, mq_arena_t *a, mq_wh_attempt_t **out, size_t *n,
                             mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "delivery_id", delivery_id);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_wh_attempt_t), attempt_conv, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_WEBHOOK_ATTEMPTS, &filter, NULL, &rows, err);
  bson_destroy(&filter);
  *out = rows.v;
  *n = rc == MQ_OK ? rows.n : 0;
  if (*n > 1) qsort(*out, *n, sizeof **out, by_n);
  return rc;
}
