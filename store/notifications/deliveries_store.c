/*
 * deliveries_store.c — see deliveries_store.h.
 */
#include "store/notifications/deliveries_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_deliveries_indexes[] = {
    {MQ_DELIVERIES_COLLECTION, "event", "{\"event_id\": 1}", false},
    {MQ_DELIVERIES_COLLECTION, "state_time", "{\"state\": 1, \"updated_at\": 1}", false},
};
const size_t mq_deliveries_n_indexes = sizeof mq_deliveries_indexes / sizeof mq_deliveries_indexes[0];

void mq_delivery_id(const char *event_id, const char *channel, const char *recipient, char *out, size_t n) {
  char hex[65];
  mq_token_hash(recipient, hex); /* the address itself stays out of the key */
  snprintf(out, n, "%s:%s:%.16s", event_id, channel, hex);
}

mq_code_t mq_delivery_begin(mq_store_t *s, const mq_delivery_t *d, int64_t lease_ms, mq_arena_t *a, bool *fresh,
                            const char **state, mq_error_t *err) {
  int64_t now = mq_now_unix_ms();
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", d->id);
  BSON_APPEND_UTF8(&doc, "event_id", d->event_id);
  BSON_APPEND_UTF8(&doc, "channel", d->channel);
  BSON_APPEND_UTF8(&doc, "template", d->template_name);
  BSON_APPEND_UTF8(&doc, "locale", d->locale);
  BSON_APPEND_UTF8(&doc, "to", d->to);
  BSON_APPEND_UTF8(&doc, "state", "sending");
  BSON_APPEND_INT32(&doc, "attempts", 1);
  BSON_APPEND_UTF8(&doc, "error", "");
  BSON_APPEND_DATE_TIME(&doc, "created_at", now);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", now);
  mq_code_t rc = mq_store_insert_decision(s, MQ_DELIVERIES_COLLECTION, &doc, err);
  bson_destroy(&doc);
  *fresh = rc == MQ_OK;
  *state = "sending";
  if (rc != MQ_ALREADY_EXISTS) return rc;
  bson_t found;
  if ((rc = mq_store_get_by_id(s, MQ_DELIVERIES_COLLECTION, d->id, &found, err)) != MQ_OK) return rc;
  *state = mq_bson_get_str(&found, "state", a);
  int32_t attempts = (int32_t)mq_bson_get_i64(&found, "attempts", 1);
  int64_t touched = mq_bson_get_date_ms(&found, "updated_at", 0);
  bson_destroy(&found);
  bool waiting = !strcmp(*state, "waiting");
  if (strcmp(*state, "sending") && !waiting) return MQ_OK; /* sent, or failed for good */
  if (!waiting && now - touched < lease_ms)                /* another attempt may be sending it right now */
    return mq_error_set(err, MQ_UNAVAILABLE, NULL,
                        "a send of this delivery started %lld ms ago and may still be running",
                        (long long)(now - touched));
  /* claim it: only if nobody else did since we read it */
  bson_value_t id = mq_bson_str_value(d->id);
  bson_t also = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
  BSON_APPEND_UTF8(&also, "state", *state);
  BSON_APPEND_DATE_TIME(&also, "updated_at", touched);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", "sending");
  BSON_APPEND_INT32(&set, "attempts", attempts + 1);
  BSON_APPEND_DATE_TIME(&set, "updated_at", now);
  bson_append_document_end(&update, &set);
  rc = mq_store_update_where(s, MQ_DELIVERIES_COLLECTION, &id, &also, &update, err);
  bson_destroy(&also);
  bson_destroy(&update);
  *state = "sending";
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "another attempt took this delivery");
  return rc;
}

mq_code_t mq_delivery_finish(mq_store_t *s, const char *id, const char *state, const char *error, mq_error_t *err) {
  bson_value_t v = mq_bson_str_value(id);
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", state);
  BSON_APPEND_UTF8(&set, "error", error ? error : "");
  BSON_APPEND_DATE_TIME(&set, "updated_at", mq_now_unix_ms());
  bson_append_document_end(&update, &set);
  mq_code_t rc = mq_store_update_by_id(s, MQ_DELIVERIES_COLLECTION, &v, &update, err);
  bson_destroy(&update);
  return rc;
}
