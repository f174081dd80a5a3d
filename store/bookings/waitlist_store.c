/*
 * waitlist_store.c — see waitlist_store.h. Queries: entries by _id; by
 * (state, joined_at, _id) for the line and the sweeper; by (ticket_type_id,
 * state, joined_at, _id) for positions.
 */
#include "store/bookings/waitlist_store.h"

#include <string.h>

#include "store/mq_bson.h"

const mq_index_spec_t mq_waitlist_indexes[] = {
    {MQ_WAITLIST_COLLECTION, "state_joined", "{\"state\": 1, \"joined_at\": 1, \"_id\": 1}", false},
    {MQ_WAITLIST_COLLECTION, "type_state_joined", "{\"ticket_type_id\": 1, \"state\": 1, \"joined_at\": 1, \"_id\": 1}",
     false},
    {MQ_WAITLIST_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_waitlist_n_indexes = sizeof mq_waitlist_indexes / sizeof *mq_waitlist_indexes;

static void mutable_fields(bson_t *d, const mq_wait_entry_t *w) {
  BSON_APPEND_UTF8(d, "state", w->state);
  BSON_APPEND_INT32(d, "quantity", (int32_t)w->quantity);
  BSON_APPEND_DATE_TIME(d, "joined_at", w->joined_ms);
  BSON_APPEND_UTF8(d, "offer_hold_id", w->offer_hold_id ? w->offer_hold_id : "");
  BSON_APPEND_DATE_TIME(d, "offer_expires_at", w->offer_expires_ms);
  BSON_APPEND_INT64(d, "offer_round", w->offer_round);
}

static void from_bson(const bson_t *d, mq_arena_t *a, mq_wait_entry_t *w) {
  w->id = mq_bson_get_str(d, "_id", a);
  w->event_id = mq_bson_get_str(d, "event_id", a);
  w->ticket_type_id = mq_bson_get_str(d, "ticket_type_id", a);
  w->user_id = mq_bson_get_str(d, "user_id", a);
  w->state = mq_bson_get_str(d, "state", a);
  w->offer_hold_id = mq_bson_get_str(d, "offer_hold_id", a);
  w->quantity = (uint32_t)mq_bson_get_i64(d, "quantity", 1);
  w->joined_ms = mq_bson_get_date_ms(d, "joined_at", 0);
  w->offer_expires_ms = mq_bson_get_date_ms(d, "offer_expires_at", 0);
  w->offer_round = mq_bson_get_i64(d, "offer_round", 0);
  w->version = mq_bson_get_i64(d, "version", 1);
}

mq_code_t mq_waitlist_insert(mq_store_t *s, const mq_wait_entry_t *w, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", w->id);
  BSON_APPEND_UTF8(&doc, "event_id", w->event_id);
  BSON_APPEND_UTF8(&doc, "ticket_type_id", w->ticket_type_id);
  BSON_APPEND_UTF8(&doc, "user_id", w->user_id);
  mutable_fields(&doc, w);
  BSON_APPEND_INT64(&doc, "version", 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_WAITLIST_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_waitlist_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wait_entry_t *out, mq_error_t *err) {
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_WAITLIST_COLLECTION, id, &doc, err);
  if (rc != MQ_OK) return rc;
  from_bson(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_waitlist_save(mq_store_t *s, mq_wait_entry_t *w, const mq_event_t *ev, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  mutable_fields(&set, w);
  BSON_APPEND_INT64(&set, "version", w->version + 1);
  bson_append_document_end(&update, &set);
  if (ev) mq_outbox_append_update(&update, ev, 1);
  BSON_APPEND_INT64(&also, "version", w->version);
  bson_value_t id = mq_bson_str_value(w->id);
  mq_code_t rc = mq_store_update_where(s, MQ_WAITLIST_COLLECTION, &id, &also, &update, err);
  bson_destroy(&update);
  bson_destroy(&also);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_ABORTED, "entry_id", "the entry changed meanwhile; retry");
  if (rc == MQ_OK) w->version++;
  return rc;
}

mq_code_t mq_waitlist_position(mq_store_t *s, const mq_wait_entry_t *w, int64_t *pos, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "ticket_type_id", w->ticket_type_id);
  BSON_APPEND_UTF8(&filter, "state", "waiting");
  mq_store_append_keyset_date(&filter, "joined_at", w->joined_ms, w->id, true); /* who joined before */
  int64_t n = 0;
  mq_code_t rc = mq_store_count(s, MQ_WAITLIST_COLLECTION, &filter, &n, err);
  if (rc == MQ_OK) *pos = n + 1;
  bson_destroy(&filter);
  return rc;
}

static void entry_row(const bson_t *doc, mq_arena_t *a, void *row) {
  from_bson(doc, a, row);
}

mq_code_t mq_waitlist_in_state(mq_store_t *s, const char *state, uint32_t limit, mq_arena_t *a, mq_wait_entry_t **out,
                               size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "state", state);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "joined_at", 1);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_wait_entry_t), entry_row, limit);
  mq_code_t rc = mq_store_find_rows(s, MQ_WAITLIST_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}
