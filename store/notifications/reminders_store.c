/*
 * reminders_store.c — see reminders_store.h.
 */
#include "store/notifications/reminders_store.h"

#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_reminders_indexes[] = {
    {MQ_REMINDERS_COLLECTION, "state", "{\"state\": 1}", false},
};
const size_t mq_reminders_n_indexes = sizeof mq_reminders_indexes / sizeof mq_reminders_indexes[0];

mq_code_t mq_reminder_ensure(mq_store_t *s, const char *event_id, int64_t starts_ms, const char *place,
                             mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", event_id);
  BSON_APPEND_UTF8(&doc, "state", "waiting");
  BSON_APPEND_INT64(&doc, "starts_ms", starts_ms);
  BSON_APPEND_UTF8(&doc, "place", place);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", mq_now_unix_ms());
  mq_code_t rc = mq_store_insert_decision(s, MQ_REMINDERS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc == MQ_ALREADY_EXISTS ? MQ_OK : rc;
}

static void conv(const bson_t *d, mq_arena_t *a, void *elem) {
  mq_reminder_t *r = elem;
  r->event_id = mq_bson_get_str(d, "_id", a);
  r->state = mq_bson_get_str(d, "state", a);
  r->place = mq_bson_get_str(d, "place", a);
  r->starts_ms = mq_bson_get_i64(d, "starts_ms", 0);
  r->updated_ms = mq_bson_get_date_ms(d, "updated_at", 0);
}

mq_code_t mq_reminder_get(mq_store_t *s, const char *event_id, mq_arena_t *a, mq_reminder_t *out, mq_error_t *err) {
  bson_t d;
  mq_code_t rc = mq_store_get_by_id(s, MQ_REMINDERS_COLLECTION, event_id, &d, err);
  if (rc != MQ_OK) return rc;
  conv(&d, a, out);
  bson_destroy(&d);
  return MQ_OK;
}

mq_code_t mq_reminder_set(mq_store_t *s, const char *event_id, const char *from, const char *state, int64_t starts_ms,
                          const char *place, mq_error_t *err) {
  bson_value_t id = mq_bson_str_value(event_id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  if (from) BSON_APPEND_UTF8(&also, "state", from);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", state);
  BSON_APPEND_INT64(&set, "starts_ms", starts_ms);
  BSON_APPEND_UTF8(&set, "place", place);
  BSON_APPEND_DATE_TIME(&set, "updated_at", mq_now_unix_ms());
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_where(s, MQ_REMINDERS_COLLECTION, &id, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_reminders_in(mq_store_t *s, const char *state, mq_arena_t *a, mq_reminder_t **out, size_t *n,
                          mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "state", state);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_reminder_t), conv, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_REMINDERS_COLLECTION, &filter, NULL, &rows, err);
  bson_destroy(&filter);
  *out = rows.v;
  *n = rc == MQ_OK ? rows.n : 0;
  return rc;
}
