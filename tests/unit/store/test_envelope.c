/*
 * test_envelope.c — cmocka tests for store/mq_outbox.c: domain events
 * attached to the very write that records the change (DESIGN.md §5).
 *
 * Covers: mq_event_init (UUIDv4 event id, metadata, defaults "system" for a
 * missing actor and "" for missing trace/request ids, schema_version 1);
 * mq_outbox_append_insert on a document: `_outbox` is an array with exactly
 * one entry per event, whose id/topic/key/type match the event, `at` is a
 * BSON date close to now, and `data` is binary that
 * marquee__events__v1__envelope__unpack decodes to an envelope with the same
 * event_id, type, aggregate_id, actor, trace_id, request_id, occurred_at ==
 * at, payload case NOTE_RECORDED and the payload's fields; the document's
 * own fields are untouched; event ids are valid lower-case UUIDv4 text and
 * distinct (two events, and 2000 in a row); mq_outbox_append_update produces
 * exactly {$push: {_outbox: {$each: [entry, entry]}}} with entries in order.
 *
 * Invariant: no MongoDB: only the BSON built in memory is inspected.
 * Read next: store/mq_outbox.h, proto/marquee/events/v1/envelope.proto.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "store/mq_bson.h"
#include "store/mq_outbox.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"

/* ---- helpers ------------------------------------------------------------------------- */

static bool is_uuid_v4(const char *s) {
  if (strlen(s) != 36) return false;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
      return false;
    }
  }
  return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void note_event(mq_event_t *ev, Marquee__Events__V1__NoteRecorded *nr, const char *note_id) {
  marquee__events__v1__note_recorded__init(nr);
  nr->note_id = (char *)note_id;
  nr->author = "user-1";
  nr->text_length = 42;
  mq_event_init(ev, "marquee.system", "system.NoteRecorded", note_id, "user-1", TRACE, "req-7");
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  ev->env.note_recorded = nr;
}

static const char *entry_str(const bson_t *entry, const char *key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, entry, key)) fail_msg("entry has no '%s'", key);
  if (!BSON_ITER_HOLDS_UTF8(&it)) fail_msg("entry '%s' is not a string", key);
  return bson_iter_utf8(&it, NULL);
}

/* Checks one outbox entry against `ev`; returns its `at` (ms). */
static int64_t check_entry(const bson_t *entry, const mq_event_t *ev, int64_t t0, int64_t t1) {
  assert_string_equal(entry_str(entry, "id"), ev->id);
  assert_string_equal(entry_str(entry, "topic"), ev->topic);
  assert_string_equal(entry_str(entry, "key"), ev->env.aggregate_id);
  assert_string_equal(entry_str(entry, "type"), ev->env.type);
  assert_int_equal(bson_count_keys(entry), 6); /* id topic key type at data */

  bson_iter_t it;
  assert_true(bson_iter_init_find(&it, entry, "at"));
  assert_true(BSON_ITER_HOLDS_DATE_TIME(&it));
  int64_t at = bson_iter_date_time(&it);
  assert_true(at >= t0 && at <= t1);

  assert_true(bson_iter_init_find(&it, entry, "data"));
  assert_true(BSON_ITER_HOLDS_BINARY(&it));
  bson_subtype_t sub;
  uint32_t len = 0;
  const uint8_t *data = NULL;
  bson_iter_binary(&it, &sub, &len, &data);
  assert_int_equal(sub, BSON_SUBTYPE_BINARY);
  assert_true(len > 0);

  Marquee__Events__V1__Envelope *env = marquee__events__v1__envelope__unpack(NULL, len, data);
  assert_non_null(env);
  assert_string_equal(env->event_id, ev->id);
  assert_string_equal(env->type, ev->env.type);
  assert_string_equal(env->aggregate_id, ev->env.aggregate_id);
  assert_string_equal(env->actor, ev->env.actor);
  assert_string_equal(env->trace_id, ev->env.trace_id);
  assert_string_equal(env->request_id, ev->env.request_id);
  assert_int_equal(env->schema_version, 1);
  assert_non_null(env->occurred_at);
  assert_int_equal(mq_pb_timestamp_ms(env->occurred_at), at); /* same instant as `at` */
  assert_int_equal(env->payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED);
  assert_non_null(env->note_recorded);
  assert_string_equal(env->note_recorded->note_id, ev->env.note_recorded->note_id);
  assert_string_equal(env->note_recorded->author, ev->env.note_recorded->author);
  assert_int_equal(env->note_recorded->text_length, ev->env.note_recorded->text_length);
  marquee__events__v1__envelope__free_unpacked(env, NULL);
  return at;
}

/* ---- mq_event_init ------------------------------------------------------------------ */

static void test_event_init(void **state) {
  (void)state;
  mq_event_t a, b;
  mq_event_init(&a, "marquee.system", "system.NoteRecorded", "agg-1", "user-1", TRACE, "req-1");
  mq_event_init(&b, "marquee.system", "system.NoteRecorded", "agg-1", "user-1", TRACE, "req-1");
  assert_true(is_uuid_v4(a.id));
  assert_true(is_uuid_v4(b.id));
  assert_string_not_equal(a.id, b.id);
  assert_ptr_equal(a.env.event_id, a.id);
  assert_string_equal(a.topic, "marquee.system");
  assert_string_equal(a.env.type, "system.NoteRecorded");
  assert_string_equal(a.env.aggregate_id, "agg-1");
  assert_string_equal(a.env.actor, "user-1");
  assert_string_equal(a.env.trace_id, TRACE);
  assert_string_equal(a.env.request_id, "req-1");
  assert_int_equal(a.env.schema_version, 1);
  assert_int_equal(a.env.payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD__NOT_SET);

  mq_event_t c;
  mq_event_init(&c, "marquee.system", "system.X", "agg-2", NULL, NULL, NULL);
  assert_string_equal(c.env.actor, "system");
  assert_string_equal(c.env.trace_id, "");
  assert_string_equal(c.env.request_id, "");
  mq_event_init(&c, "marquee.system", "system.X", "agg-2", "", NULL, NULL);
  assert_string_equal(c.env.actor, "system");
}

static int cmp_str(const void *x, const void *y) {
  return strcmp((const char *)x, (const char *)y);
}

static void test_uuid_v4_many_distinct(void **state) {
  (void)state;
  enum { N = 2000 };
  char(*ids)[37] = calloc(N, sizeof *ids);
  assert_non_null(ids);
  for (int i = 0; i < N; i++) {
    mq_uuid_v4(ids[i]);
    if (!is_uuid_v4(ids[i])) fail_msg("not a UUIDv4: %s", ids[i]);
  }
  qsort(ids, N, sizeof *ids, cmp_str);
  for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

/* ---- insert ----------------------------------------------------------------------- */

static void test_append_insert(void **state) {
  (void)state;
  Marquee__Events__V1__NoteRecorded nr;
  mq_event_t ev;
  note_event(&ev, &nr, "note-123");

  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", "note-123");
  BSON_APPEND_UTF8(&doc, "text", "hello");
  int64_t t0 = mq_now_unix_ms();
  mq_outbox_append_insert(&doc, &ev, 1);
  int64_t t1 = mq_now_unix_ms();

  /* the document keeps its fields, plus _outbox and the hour of this write (from the same clock reading) */
  assert_int_equal(bson_count_keys(&doc), 4);
  bson_iter_t it, arr;
  assert_true(bson_iter_init_find(&it, &doc, MQ_OUTBOX_HOUR_FIELD));
  assert_true(bson_iter_as_int64(&it) >= t0 / MQ_OUTBOX_HOUR_MS && bson_iter_as_int64(&it) <= t1 / MQ_OUTBOX_HOUR_MS);
  assert_true(bson_iter_init_find(&it, &doc, "_id"));
  assert_string_equal(bson_iter_utf8(&it, NULL), "note-123");
  assert_true(bson_iter_init_find(&it, &doc, MQ_OUTBOX_FIELD));
  assert_string_equal(MQ_OUTBOX_FIELD, "_outbox");
  assert_true(BSON_ITER_HOLDS_ARRAY(&it));

  uint32_t alen = 0;
  const uint8_t *adata = NULL;
  bson_iter_array(&it, &alen, &adata);
  bson_t array;
  assert_true(bson_init_static(&array, adata, alen));
  assert_int_equal(bson_count_keys(&array), 1);

  assert_true(bson_iter_recurse(&it, &arr));
  assert_true(bson_iter_next(&arr));
  assert_string_equal(bson_iter_key(&arr), "0");
  assert_true(BSON_ITER_HOLDS_DOCUMENT(&arr));
  uint32_t elen = 0;
  const uint8_t *edata = NULL;
  bson_iter_document(&arr, &elen, &edata);
  bson_t entry;
  assert_true(bson_init_static(&entry, edata, elen));
  check_entry(&entry, &ev, t0, t1);
  assert_false(bson_iter_next(&arr));
  bson_destroy(&doc);
}

static void test_append_insert_defaults_survive_encoding(void **state) {
  (void)state;
  Marquee__Events__V1__NoteRecorded nr;
  mq_event_t ev;
  note_event(&ev, &nr, "note-9");
  mq_event_init(&ev, "marquee.system", "system.NoteRecorded", "note-9", NULL, NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  ev.env.note_recorded = &nr;

  bson_t doc = BSON_INITIALIZER;
  int64_t t0 = mq_now_unix_ms();
  mq_outbox_append_insert(&doc, &ev, 1);
  int64_t t1 = mq_now_unix_ms();
  bson_iter_t it, e;
  assert_true(bson_iter_init(&it, &doc));
  assert_true(bson_iter_find_descendant(&it, "_outbox.0", &e));
  uint32_t elen = 0;
  const uint8_t *edata = NULL;
  bson_iter_document(&e, &elen, &edata);
  bson_t entry;
  assert_true(bson_init_static(&entry, edata, elen));
  check_entry(&entry, &ev, t0, t1); /* actor "system", trace "" */
  bson_destroy(&doc);
}

/* ---- update --------------------------------------------------------------------------- */

static void test_append_update(void **state) {
  (void)state;
  Marquee__Events__V1__NoteRecorded nr[2];
  mq_event_t evs[2];
  note_event(&evs[0], &nr[0], "note-a");
  note_event(&evs[1], &nr[1], "note-b");
  nr[1].text_length = 7;
  assert_string_not_equal(evs[0].id, evs[1].id);

  bson_t upd = BSON_INITIALIZER;
  bson_t set;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  BSON_APPEND_UTF8(&set, "text", "changed");
  bson_append_document_end(&upd, &set);
  int64_t t0 = mq_now_unix_ms();
  mq_outbox_append_update(&upd, evs, 2);
  int64_t t1 = mq_now_unix_ms();

  /* {$set: {...}, $push: {_outbox: {$each: [e0, e1], $slice: -MQ_OUTBOX_KEEP}}, $max: {_outbox_h: hour}} */
  assert_int_equal(bson_count_keys(&upd), 3);
  bson_iter_t it, push, field, each;
  assert_true(bson_iter_init(&it, &upd) && bson_iter_find_descendant(&it, "$max." MQ_OUTBOX_HOUR_FIELD, &field));
  assert_true(bson_iter_as_int64(&field) >= t0 / MQ_OUTBOX_HOUR_MS &&
              bson_iter_as_int64(&field) <= t1 / MQ_OUTBOX_HOUR_MS);
  assert_true(bson_iter_init_find(&it, &upd, "$push"));
  assert_true(BSON_ITER_HOLDS_DOCUMENT(&it));
  assert_true(bson_iter_recurse(&it, &push));
  assert_true(bson_iter_next(&push));
  assert_string_equal(bson_iter_key(&push), "_outbox");
  assert_true(BSON_ITER_HOLDS_DOCUMENT(&push));
  assert_true(bson_iter_recurse(&push, &field));
  assert_true(bson_iter_next(&field));
  assert_string_equal(bson_iter_key(&field), "$each");
  assert_true(BSON_ITER_HOLDS_ARRAY(&field));
  assert_true(bson_iter_recurse(&field, &each));
  assert_true(bson_iter_next(&field)); /* then $slice: only the newest entries stay embedded */
  assert_string_equal(bson_iter_key(&field), "$slice");
  assert_int_equal(bson_iter_as_int64(&field), -MQ_OUTBOX_KEEP);
  assert_false(bson_iter_next(&field));
  assert_false(bson_iter_next(&push)); /* _outbox is the only pushed field */

  int64_t at[2];
  for (int i = 0; i < 2; i++) {
    assert_true(bson_iter_next(&each));
    assert_string_equal(bson_iter_key(&each), i == 0 ? "0" : "1");
    uint32_t elen = 0;
    const uint8_t *edata = NULL;
    bson_iter_document(&each, &elen, &edata);
    bson_t entry;
    assert_true(bson_init_static(&entry, edata, elen));
    at[i] = check_entry(&entry, &evs[i], t0, t1);
  }
  assert_false(bson_iter_next(&each));
  assert_int_equal(at[0], at[1]); /* one write, one timestamp */
  bson_destroy(&upd);
}

static void test_append_update_json_shape(void **state) {
  (void)state;
  Marquee__Events__V1__NoteRecorded nr;
  mq_event_t ev;
  note_event(&ev, &nr, "note-j");
  bson_t upd = BSON_INITIALIZER;
  mq_outbox_append_update(&upd, &ev, 1);
  char *json = bson_as_relaxed_extended_json(&upd, NULL);
  assert_non_null(json);
  /* the canonical shape MongoDB expects, with the event id inside */
  static const char prefix[] = "{ \"$push\" : { \"_outbox\" : { \"$each\" : [ { \"id\" : \"";
  if (strncmp(json, prefix, strlen(prefix)) != 0) fail_msg("unexpected shape: %.120s", json);
  assert_non_null(strstr(json, ev.id));
  assert_non_null(strstr(json, "\"topic\" : \"marquee.system\""));
  assert_non_null(strstr(json, "\"key\" : \"note-j\""));
  bson_free(json);
  bson_destroy(&upd);
}

/* The test vector of docs/EVENTS.md: this envelope serializes to exactly
 * these bytes (computed independently with Python's protobuf), and the
 * bytes decode to it. A change of a field number or type breaks this. */
static const char envelope_vector_hex[] =
    "0a2437643361316332652d356234662d346536612d396338642d306631653264336334623561121373797374656d2e4e"
    "6f74655265636f726465641a2462356530633164322d336134622d346335642d386536662d3730383139326133623463"
    "3522060880f2d6ca062a07757365722d3432322030616637363531393136636434336464383434386562323131633830"
    "333139633a057265712d314001a206310a2462356530633164322d336134622d346335642d386536662d373038313932"
    "6133623463351207757365722d34321805";

static void test_envelope_vector(void **state) {
  (void)state;
  Marquee__Events__V1__NoteRecorded note = MARQUEE__EVENTS__V1__NOTE_RECORDED__INIT;
  note.note_id = (char *)"b5e0c1d2-3a4b-4c5d-8e6f-708192a3b4c5";
  note.author = (char *)"user-42";
  note.text_length = 5;
  Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  at.seconds = 1767225600; /* 2026-01-01T00:00:00Z */
  Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  env.event_id = (char *)"7d3a1c2e-5b4f-4e6a-9c8d-0f1e2d3c4b5a";
  env.type = (char *)"system.NoteRecorded";
  env.aggregate_id = (char *)"b5e0c1d2-3a4b-4c5d-8e6f-708192a3b4c5";
  env.occurred_at = &at;
  env.actor = (char *)"user-42";
  env.trace_id = (char *)"0af7651916cd43dd8448eb211c80319c";
  env.request_id = (char *)"req-1";
  env.schema_version = 1;
  env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  env.note_recorded = &note;
  size_t n = marquee__events__v1__envelope__get_packed_size(&env);
  assert_int_equal(n, 209);
  uint8_t buf[256];
  marquee__events__v1__envelope__pack(&env, buf);
  char hex[2 * 256 + 1];
  for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", buf[i]);
  assert_string_equal(hex, envelope_vector_hex);
  Marquee__Events__V1__Envelope *back = marquee__events__v1__envelope__unpack(NULL, n, buf);
  assert_non_null(back);
  assert_string_equal(back->event_id, env.event_id);
  assert_int_equal(back->payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED);
  assert_int_equal(back->note_recorded->text_length, 5);
  assert_int_equal(back->occurred_at->seconds, 1767225600);
  marquee__events__v1__envelope__free_unpacked(back, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_init),      cmocka_unit_test(test_uuid_v4_many_distinct),
      cmocka_unit_test(test_append_insert),   cmocka_unit_test(test_append_insert_defaults_survive_encoding),
      cmocka_unit_test(test_append_update),   cmocka_unit_test(test_append_update_json_shape),
      cmocka_unit_test(test_envelope_vector),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
