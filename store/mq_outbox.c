/*
 * mq_outbox.c — builds outbox entries (see mq_outbox.h). The envelope is
 * packed once here; the relay publishes the stored bytes unchanged.
 */
#include "mq_outbox.h"

#include <stdlib.h>
#include <string.h>

#include "mq_bson.h"
#include "mq_ids.h"

void mq_event_init(mq_event_t *ev, const char *topic, const char *type, const char *aggregate_id, const char *actor,
                   const char *trace_id, const char *request_id) {
  memset(ev, 0, sizeof *ev);
  marquee__events__v1__envelope__init(&ev->env);
  mq_uuid_v4(ev->id);
  ev->topic = topic;
  ev->env.event_id = ev->id;
  ev->env.type = (char *)type;
  ev->env.aggregate_id = (char *)aggregate_id;
  ev->env.actor = (char *)(actor && actor[0] ? actor : "system");
  ev->env.trace_id = (char *)(trace_id ? trace_id : "");
  ev->env.request_id = (char *)(request_id ? request_id : "");
  ev->env.schema_version = 1;
}

static void append_entries(bson_t *arr, const mq_event_t *evs, size_t n) {
  int64_t now = mq_now_unix_ms();
  for (size_t i = 0; i < n; i++) {
    const mq_event_t *ev = &evs[i];
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = now / 1000;
    ts.nanos = (int32_t)((now % 1000) * 1000000);
    Marquee__Events__V1__Envelope env = ev->env;
    env.occurred_at = &ts;
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) abort();
    marquee__events__v1__envelope__pack(&env, buf);
    char key[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
    bson_t e;
    bson_append_document_begin(arr, k, -1, &e);
    BSON_APPEND_UTF8(&e, "id", ev->id);
    BSON_APPEND_UTF8(&e, "topic", ev->topic);
    BSON_APPEND_UTF8(&e, "key", ev->env.aggregate_id);
    BSON_APPEND_UTF8(&e, "type", ev->env.type);
    BSON_APPEND_DATE_TIME(&e, "at", now);
    BSON_APPEND_BINARY(&e, "data", BSON_SUBTYPE_BINARY, buf, (uint32_t)len);
    bson_append_document_end(arr, &e);
    free(buf);
  }
}

void mq_outbox_append_insert(bson_t *doc, const mq_event_t *evs, size_t n) {
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, MQ_OUTBOX_FIELD, &arr);
  append_entries(&arr, evs, n);
  bson_append_array_end(doc, &arr);
}

void mq_outbox_append_update(bson_t *update, const mq_event_t *evs, size_t n) {
  bson_t push, field, each;
  BSON_APPEND_DOCUMENT_BEGIN(update, "$push", &push);
  BSON_APPEND_DOCUMENT_BEGIN(&push, MQ_OUTBOX_FIELD, &field);
  BSON_APPEND_ARRAY_BEGIN(&field, "$each", &each);
  append_entries(&each, evs, n);
  bson_append_array_end(&field, &each);
  bson_append_document_end(&push, &field);
  bson_append_document_end(update, &push);
}
