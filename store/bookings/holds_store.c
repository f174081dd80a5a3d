/*
 * holds_store.c — see holds_store.h. Queries: holds by _id; due holds by
 * (state, expires_at) and (state, payment_deadline); decisions by _id and
 * unfinished ones by (done, at).
 */
#include "store/bookings/holds_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_holds_indexes[] = {
    {MQ_HOLDS_COLLECTION, "state_expires", "{\"state\": 1, \"expires_at\": 1}", false},
    {MQ_HOLDS_COLLECTION, "state_payment_deadline", "{\"state\": 1, \"payment_deadline\": 1}", false},
    {MQ_HOLDS_COLLECTION, "user_created", "{\"user_id\": 1, \"created_at\": -1}", false},
    {MQ_HOLDS_COLLECTION, "event_state", "{\"event_id\": 1, \"state\": 1}", false},
    {MQ_HOLDS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_DECISIONS_COLLECTION, "done_at", "{\"done\": 1, \"at\": 1}", false},
    {MQ_DECISIONS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_holds_n_indexes = sizeof mq_holds_indexes / sizeof *mq_holds_indexes;

bool mq_hold_state_holds_units(const char *state) {
  return !strcmp(state, MQ_HOLD_ACTIVE) || !strcmp(state, MQ_HOLD_PAYMENT_PENDING) || !strcmp(state, MQ_HOLD_CONFIRMED);
}

void mq_hold_lines_append(bson_t *doc, const mq_hold_line_t *lines, size_t n) {
  bson_t arr, d;
  BSON_APPEND_ARRAY_BEGIN(doc, "lines", &arr);
  for (size_t i = 0; i < n; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "ticket_type_id", lines[i].ticket_type_id);
    BSON_APPEND_UTF8(&d, "name", lines[i].name);
    BSON_APPEND_INT32(&d, "quantity", (int32_t)lines[i].quantity);
    BSON_APPEND_INT64(&d, "unit_minor", lines[i].unit_minor);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(doc, &arr);
}

mq_hold_line_t *mq_hold_lines_read(const bson_t *doc, mq_arena_t *a, size_t *n) {
  size_t count;
  bson_t *docs = mq_bson_get_doc_array(doc, "lines", a, &count);
  *n = count;
  if (!docs) return NULL;
  mq_hold_line_t *lines = mq_arena_alloc(a, (count ? count : 1) * sizeof *lines);
  for (size_t i = 0; i < count; i++) {
    mq_hold_line_t *l = &lines[i];
    l->ticket_type_id = mq_bson_get_str(&docs[i], "ticket_type_id", a);
    l->name = mq_bson_get_str(&docs[i], "name", a);
    l->quantity = (uint32_t)mq_bson_get_i64(&docs[i], "quantity", 0);
    l->unit_minor = mq_bson_get_i64(&docs[i], "unit_minor", 0);
  }
  return lines;
}

void mq_price_append(bson_t *doc, const mq_price_t *p) {
  BSON_APPEND_INT64(doc, "subtotal_minor", p->subtotal_minor);
  BSON_APPEND_INT64(doc, "fee_minor", p->fee_minor);
  BSON_APPEND_BOOL(doc, "tax_included", p->tax_included);
  bson_t arr, d;
  BSON_APPEND_ARRAY_BEGIN(doc, "taxes", &arr);
  for (size_t i = 0; i < p->n_taxes; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "name", p->taxes[i].name);
    BSON_APPEND_UTF8(&d, "jurisdiction", p->taxes[i].jurisdiction);
    BSON_APPEND_INT64(&d, "ppm", p->taxes[i].ppm);
    BSON_APPEND_INT64(&d, "amount_minor", p->taxes[i].amount_minor);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(doc, &arr);
}

void mq_price_read(const bson_t *doc, int64_t total_minor, mq_arena_t *a, mq_price_t *out) {
  memset(out, 0, sizeof *out);
  out->subtotal_minor = mq_bson_get_i64(doc, "subtotal_minor", total_minor);
  out->fee_minor = mq_bson_get_i64(doc, "fee_minor", 0);
  out->tax_included = mq_bson_get_bool(doc, "tax_included", false);
  size_t n;
  bson_t *docs = mq_bson_get_doc_array(doc, "taxes", a, &n);
  if (!docs) return;
  out->taxes = mq_arena_alloc(a, (n ? n : 1) * sizeof *out->taxes);
  for (size_t i = 0; i < n; i++) {
    out->taxes[i].name = mq_bson_get_str(&docs[i], "name", a);
    out->taxes[i].jurisdiction = mq_bson_get_str(&docs[i], "jurisdiction", a);
    out->taxes[i].ppm = mq_bson_get_i64(&docs[i], "ppm", 0);
    out->taxes[i].amount_minor = mq_bson_get_i64(&docs[i], "amount_minor", 0);
  }
  out->n_taxes = n;
}

static void to_bson(bson_t *doc, const mq_hold_t *h) {
  BSON_APPEND_UTF8(doc, "_id", h->id);
  BSON_APPEND_UTF8(doc, "user_id", h->user_id);
  BSON_APPEND_UTF8(doc, "event_id", h->event_id);
  BSON_APPEND_UTF8(doc, "organization_id", h->organization_id);
  BSON_APPEND_UTF8(doc, "currency", h->currency);
  mq_hold_lines_append(doc, h->lines, h->n_lines);
  BSON_APPEND_INT64(doc, "total_minor", h->total_minor);
  mq_price_append(doc, &h->price);
  mq_bson_append_str_array(doc, "slots", (const char *const *)h->slots, h->n_slots);
  if (h->request_hash && h->request_hash[0]) BSON_APPEND_UTF8(doc, "request_hash", h->request_hash);
  BSON_APPEND_UTF8(doc, "state", h->state);
  BSON_APPEND_DATE_TIME(doc, "created_at", h->created_ms);
  BSON_APPEND_DATE_TIME(doc, "expires_at", h->expires_ms);
}

static void from_bson(const bson_t *doc, mq_arena_t *a, mq_hold_t *h) {
  memset(h, 0, sizeof *h);
  h->id = mq_bson_get_str(doc, "_id", a);
  h->user_id = mq_bson_get_str(doc, "user_id", a);
  h->event_id = mq_bson_get_str(doc, "event_id", a);
  h->organization_id = mq_bson_get_str(doc, "organization_id", a);
  h->currency = mq_bson_get_str(doc, "currency", a);
  h->state = mq_bson_get_str(doc, "state", a);
  h->request_hash = mq_bson_get_str(doc, "request_hash", a);
  h->payment_reference = mq_bson_get_str(doc, "payment_reference", a);
  h->total_minor = mq_bson_get_i64(doc, "total_minor", 0);
  h->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  h->expires_ms = mq_bson_get_date_ms(doc, "expires_at", 0);
  h->payment_deadline_ms = mq_bson_get_date_ms(doc, "payment_deadline", 0);
  h->slots = mq_bson_get_str_array(doc, "slots", a, &h->n_slots);
  h->lines = mq_hold_lines_read(doc, a, &h->n_lines);
  mq_price_read(doc, h->total_minor, a, &h->price);
}

mq_code_t mq_holds_insert(mq_store_t *s, const mq_hold_t *h, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  to_bson(&doc, h);
  if (ev) mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_HOLDS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_holds_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_hold_t *out, mq_error_t *err) {
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_HOLDS_COLLECTION, id, &doc, err);
  if (rc != MQ_OK) return rc;
  from_bson(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_holds_set_state(mq_store_t *s, const char *id, const char *state, const char *payment_reference,
                             int64_t payment_deadline_ms, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", state);
  if (payment_reference) BSON_APPEND_UTF8(&set, "payment_reference", payment_reference);
  if (payment_deadline_ms) BSON_APPEND_DATE_TIME(&set, "payment_deadline", payment_deadline_ms);
  bson_append_document_end(&update, &set);
  bson_value_t v = mq_bson_str_value(id);
  mq_code_t rc = mq_store_update_by_id(s, MQ_HOLDS_COLLECTION, &v, &update, err);
  bson_destroy(&update);
  return rc;
}

static void hold_row(const bson_t *doc, mq_arena_t *a, void *row) {
  from_bson(doc, a, row);
}

static mq_code_t due_by(mq_store_t *s, const char *state, const char *field, int64_t now_ms, mq_store_rows_t *rows,
                        mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, lt, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "state", state);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, field, &lt);
  BSON_APPEND_DATE_TIME(&lt, "$lt", now_ms);
  bson_append_document_end(&filter, &lt);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)(rows->cap - rows->n));
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_rows(s, MQ_HOLDS_COLLECTION, &filter, &opts, rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_holds_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_hold_t **out, size_t *n,
                       mq_error_t *err) {
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_hold_t), hold_row, limit);
  mq_code_t rc = due_by(s, MQ_HOLD_ACTIVE, "expires_at", now_ms, &rows, err);
  if (rc == MQ_OK && rows.n < rows.cap) rc = due_by(s, MQ_HOLD_PAYMENT_PENDING, "payment_deadline", now_ms, &rows, err);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

static void decision_key(char out[128], const char *id, const char *kind) {
  snprintf(out, 128, "%s:%s", id, kind);
}

mq_code_t mq_decide(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                    const char *payment_reference, const char *reason, bool needs_finishing, const mq_event_t *evs,
                    size_t n, mq_error_t *err) {
  return mq_decide_until(s, id, kind, outcome, actor, payment_reference, reason, 0, needs_finishing, evs, n, err);
}

mq_code_t mq_decide_until(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                          const char *payment_reference, const char *reason, int64_t deadline_ms, bool needs_finishing,
                          const mq_event_t *evs, size_t n, mq_error_t *err) {
  char key[128];
  decision_key(key, id, kind);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", key);
  BSON_APPEND_UTF8(&doc, "hold", id);
  BSON_APPEND_UTF8(&doc, "kind", kind);
  BSON_APPEND_UTF8(&doc, "outcome", outcome);
  BSON_APPEND_UTF8(&doc, "actor", actor ? actor : "system");
  if (payment_reference) BSON_APPEND_UTF8(&doc, "payment_reference", payment_reference);
  if (reason) BSON_APPEND_UTF8(&doc, "reason", reason);
  if (deadline_ms) BSON_APPEND_DATE_TIME(&doc, "deadline", deadline_ms);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  BSON_APPEND_BOOL(&doc, "done", !needs_finishing);
  if (n) mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_DECISIONS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void decision_from(const bson_t *doc, mq_arena_t *a, mq_decision_t *d) {
  d->key = mq_bson_get_str(doc, "_id", a);
  d->hold = mq_bson_get_str(doc, "hold", a);
  d->kind = mq_bson_get_str(doc, "kind", a);
  d->outcome = mq_bson_get_str(doc, "outcome", a);
  d->actor = mq_bson_get_str(doc, "actor", a);
  d->payment_reference = mq_bson_get_str(doc, "payment_reference", a);
  d->reason = mq_bson_get_str(doc, "reason", a);
  d->at_ms = mq_bson_get_date_ms(doc, "at", 0);
  d->deadline_ms = mq_bson_get_date_ms(doc, "deadline", 0);
  d->done = mq_bson_get_bool(doc, "done", true);
}

mq_code_t mq_decision_get(mq_store_t *s, const char *id, const char *kind, mq_arena_t *a, mq_decision_t *out,
                          mq_error_t *err) {
  char key[128];
  decision_key(key, id, kind);
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_DECISIONS_COLLECTION, key, &doc, err);
  if (rc != MQ_OK) return rc;
  decision_from(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_decision_done(mq_store_t *s, const char *id, const char *kind, mq_error_t *err) {
  char key[128];
  decision_key(key, id, kind);
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_BOOL(&set, "done", true);
  bson_append_document_end(&update, &set);
  bson_value_t v = mq_bson_str_value(key);
  mq_code_t rc = mq_store_update_by_id(s, MQ_DECISIONS_COLLECTION, &v, &update, err);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_decision_reopen(mq_store_t *s, const char *id, const char *kind, mq_error_t *err) {
  char key[128];
  decision_key(key, id, kind);
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_BOOL(&set, "done", false);
  BSON_APPEND_DATE_TIME(&set, "at", mq_now_unix_ms());
  bson_append_document_end(&update, &set);
  bson_value_t v = mq_bson_str_value(key);
  mq_code_t rc = mq_store_update_by_id(s, MQ_DECISIONS_COLLECTION, &v, &update, err);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_holds_active_of_event(mq_store_t *s, const char *event_id, uint32_t limit, mq_arena_t *a, mq_hold_t **out,
                                   size_t *n, mq_error_t *err) {
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_hold_t), hold_row, limit);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "event_id", event_id);
  BSON_APPEND_UTF8(&filter, "state", MQ_HOLD_ACTIVE);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_rows(s, MQ_HOLDS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

static void decision_row(const bson_t *doc, mq_arena_t *a, void *row) {
  decision_from(doc, a, row);
}

mq_code_t mq_decisions_unfinished(mq_store_t *s, int64_t older_than_ms, uint32_t limit, mq_arena_t *a,
                                  mq_decision_t **out, size_t *n, mq_error_t *err) {
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_decision_t), decision_row, limit);
  bson_t filter = BSON_INITIALIZER, lt, opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&filter, "done", false);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &lt);
  BSON_APPEND_DATE_TIME(&lt, "$lt", older_than_ms);
  bson_append_document_end(&filter, &lt);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_rows(s, MQ_DECISIONS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}
