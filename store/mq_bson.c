/*
 * mq_bson.c — see mq_bson.h.
 */
#include "store/mq_bson.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

char *mq_bson_get_str(const bson_t *doc, const char *key, mq_arena_t *a) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
    uint32_t len;
    const char *s = bson_iter_utf8(&it, &len);
    return mq_arena_strndup(a, s, len);
  }
  return mq_arena_strdup(a, "");
}

int64_t mq_bson_get_i64(const bson_t *doc, const char *key, int64_t def) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)))
    return bson_iter_as_int64(&it);
  return def;
}

bool mq_bson_get_bool(const bson_t *doc, const char *key, bool def) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it)) return bson_iter_bool(&it);
  return def;
}

int64_t mq_bson_get_date_ms(const bson_t *doc, const char *key, int64_t def) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it)) return bson_iter_date_time(&it);
  return def;
}

Google__Protobuf__Timestamp *mq_pb_timestamp(mq_arena_t *a, int64_t unix_ms) {
  Google__Protobuf__Timestamp *ts = mq_arena_alloc(a, sizeof *ts);
  google__protobuf__timestamp__init(ts);
  int64_t s = unix_ms / 1000, ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    s -= 1;
  }
  ts->seconds = s;
  ts->nanos = (int32_t)(ms * 1000000);
  return ts;
}

int64_t mq_pb_timestamp_ms(const Google__Protobuf__Timestamp *ts) {
  return ts ? ts->seconds * 1000 + ts->nanos / 1000000 : 0;
}

void mq_bson_append_money(bson_t *doc, const char *key, const Marquee__Common__V1__Money *m) {
  bson_t sub;
  BSON_APPEND_DOCUMENT_BEGIN(doc, key, &sub);
  BSON_APPEND_INT64(&sub, "amount_minor", m->amount_minor);
  BSON_APPEND_UTF8(&sub, "currency", m->currency ? m->currency : "");
  bson_append_document_end(doc, &sub);
}

Marquee__Common__V1__Money *mq_bson_get_money(const bson_t *doc, const char *key, mq_arena_t *a) {
  Marquee__Common__V1__Money *m = mq_arena_alloc(a, sizeof *m);
  marquee__common__v1__money__init(m);
  bson_iter_t it;
  const uint8_t *data;
  uint32_t len;
  bson_t sub;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_document(&it, &len, &data);
    if (bson_init_static(&sub, data, len)) {
      m->amount_minor = mq_bson_get_i64(&sub, "amount_minor", 0);
      m->currency = mq_bson_get_str(&sub, "currency", a);
      return m;
    }
  }
  m->currency = mq_arena_strdup(a, "");
  return m;
}

void mq_bson_append_str_array(bson_t *doc, const char *key, const char *const *v, size_t n) {
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
  for (size_t i = 0; i < n; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_UTF8(&arr, k, v[i] ? v[i] : "");
  }
  bson_append_array_end(doc, &arr);
}

bson_t *mq_bson_get_doc_array(const bson_t *doc, const char *key, mq_arena_t *a, size_t *n) {
  bson_iter_t it, ai;
  *n = 0;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ai)) return NULL;
  size_t cap = 0;
  bson_iter_t count = ai;
  while (bson_iter_next(&count)) cap++;
  bson_t *out = mq_arena_alloc(a, (cap ? cap : 1) * sizeof *out);
  while (bson_iter_next(&ai)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&ai)) continue;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&ai, &len, &data);
    if (bson_init_static(&out[*n], data, len)) (*n)++;
  }
  return out;
}

char **mq_bson_get_str_array(const bson_t *doc, const char *key, mq_arena_t *a, size_t *n) {
  bson_iter_t it, ai;
  *n = 0;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ai)) return NULL;
  size_t cap = 0;
  bson_iter_t count = ai;
  while (bson_iter_next(&count)) cap++;
  char **out = mq_arena_alloc(a, (cap ? cap : 1) * sizeof *out);
  while (bson_iter_next(&ai))
    if (BSON_ITER_HOLDS_UTF8(&ai)) out[(*n)++] = mq_arena_strdup(a, bson_iter_utf8(&ai, NULL));
  return out;
}
