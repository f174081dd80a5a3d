/*
 * mq_bson.h — BSON ↔ protobuf mapping helpers used by every repository.
 *
 * Reading: the mq_bson_get_* functions copy values out of a document into a
 * call's arena (so the BSON can be destroyed at once) and return a default
 * when the field is missing or of another type — repositories validate what
 * they write, so a wrong type in the store is a bug, logged by the caller.
 * Writing: times are BSON dates (UTC ms), money is {amount_minor: int64,
 * currency: "EUR"} (DESIGN.md §4).
 */
#ifndef MQ_BSON_H
#define MQ_BSON_H

#include <bson/bson.h>
#include <stdint.h>
#include <string.h>

#include "core/mq_arena.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "marquee/common/v1/common.pb-c.h"

/* Arena copy of a UTF-8 field, or "" when absent (never NULL: protobuf-c
 * string fields must not be NULL). */
char *mq_bson_get_str(const bson_t *doc, const char *key, mq_arena_t *a);
int64_t mq_bson_get_i64(const bson_t *doc, const char *key, int64_t def);
bool mq_bson_get_bool(const bson_t *doc, const char *key, bool def);
/* BSON date in ms since the epoch, or `def`. */
int64_t mq_bson_get_date_ms(const bson_t *doc, const char *key, int64_t def);

/* A Timestamp allocated in the arena for a UTC ms value. */
Google__Protobuf__Timestamp *mq_pb_timestamp(mq_arena_t *a, int64_t unix_ms);
int64_t mq_pb_timestamp_ms(const Google__Protobuf__Timestamp *ts);

/* A UTF-8 bson_value_t borrowing `s` (for mq_store_update_by_id's id). */
static inline bson_value_t mq_bson_str_value(const char *s) {
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)s;
  v.value.v_utf8.len = (uint32_t)strlen(s);
  return v;
}

/* An array of strings (NULL entries stored as ""). */
void mq_bson_append_str_array(bson_t *doc, const char *key, const char *const *v, size_t n);
/* The strings of an array field, copied into `a` (non-strings skipped);
 * NULL and *n = 0 when absent. */
char **mq_bson_get_str_array(const bson_t *doc, const char *key, mq_arena_t *a, size_t *n);
/* The sub-documents of array `key` (other elements skipped), as read-only
 * views into `doc` (valid while it lives) in an arena array of *n. */
bson_t *mq_bson_get_doc_array(const bson_t *doc, const char *key, mq_arena_t *a, size_t *n);

void mq_bson_append_money(bson_t *doc, const char *key, const Marquee__Common__V1__Money *m);
Marquee__Common__V1__Money *mq_bson_get_money(const bson_t *doc, const char *key, mq_arena_t *a);

#endif
