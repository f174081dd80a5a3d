/*
 * test_relay_faults.c — the outbox relay's recovery when the ledger write
 * fails after Kafka acknowledged an event (server/mq_relay.c R2, R4), with
 * the failure injected at the fault point relay.ledger_write
 * (core/mq_fault.h), in process, against the real local store and Kafka.
 *
 * Covers: an event whose ledger write failed is neither lost nor left
 * pending: it is published again (at least once: the acknowledged count
 * grows past the one event) and then recorded in the ledger exactly once,
 * with nothing left in the journal. The write happens while the relay is
 * still in journal mode (its mode at start), so this exercises that path:
 * the entry stays journaled and the next catch-up scan republishes it. The
 * direct-mode path (the sweeper finds the entry in its document, older
 * than 30 s and not in the ledger) is covered by test_resilience's crash
 * cases, not here.
 *
 * Needs the local stack (scripts/test.sh starts it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mq_config.h"
#include "core/mq_fault.h"
#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "server/mq_relay.h"
#include "store/mq_outbox.h"
#include "store/system/notes_store.h"

static mq_config_t cfg;
static mq_store_t *store;
static mq_relay_t *relay;
static char db[64];
static const char *uri;

static int setup(void **state) {
  (void)state;
  uri = getenv("MARQUEE_TEST_MONGO_URI");
  if (!uri || !uri[0]) uri = "mongodb://127.0.0.1:27017/";
  const char *kafka = getenv("MARQUEE_TEST_KAFKA_BROKERS");
  char kv[256];
  snprintf(kv, sizeof kv, "MARQUEE_KAFKA_BROKERS=%s", kafka && kafka[0] ? kafka : "127.0.0.1:9092");
  char *env[] = {kv, "MARQUEE_OUTBOX_POLL_MS=100", "MARQUEE_OUTBOX_SWEEP_S=1", "MARQUEE_HEALTH_INTERVAL_MS=200", NULL};
  mq_error_t err;
  if (mq_config_load(&cfg, env, &err) != MQ_OK) return -1;
  snprintf(db, sizeof db, "mqunit_relay_%d", (int)getpid());
  if (mq_store_open(uri, db, 8, &store, &err) != MQ_OK) return -1;
  if (mq_store_ensure_indexes(store, mq_notes_indexes, mq_notes_n_indexes, &err) != MQ_OK ||
      mq_store_ensure_indexes(store, mq_outbox_indexes, mq_outbox_n_indexes, &err) != MQ_OK) {
    fprintf(stderr, "store at %s: %s (is the stack running?)\n", uri, err.message);
    return -1;
  }
  if (mq_relay_create(&cfg, store, "relay-fault-test", &relay, &err) != MQ_OK) return -1;
  for (size_t i = 0; i < mq_notes_n_indexes; i++)
    if (!strcmp(mq_notes_indexes[i].keys_json, MQ_OUTBOX_INDEX_KEYS))
      mq_relay_watch(relay, mq_notes_indexes[i].collection);
  return mq_relay_start(relay, &err) == MQ_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_relay_destroy(relay);
  mq_store_close(store);
  mongoc_client_t *cl = mongoc_client_new(uri);
  if (cl) {
    mongoc_database_t *d = mongoc_client_get_database(cl, db);
    mongoc_database_drop(d, NULL);
    mongoc_database_destroy(d);
    mongoc_client_destroy(cl);
  }
  mq_config_free(&cfg);
  mq_fault_clear();
  return 0;
}

static int64_t count(const char *coll, const char *field, const char *value) {
  mongoc_client_t *cl = mongoc_client_new(uri);
  mongoc_collection_t *c = mongoc_client_get_collection(cl, db, coll);
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, field, value);
  int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, NULL);
  bson_destroy(&filter);
  mongoc_collection_destroy(c);
  mongoc_client_destroy(cl);
  return n;
}

static void test_failed_ledger_write_republishes_then_records(void **state) {
  (void)state;
  mq_fault_arm("relay.ledger_write", 0, 1);
  char id[37];
  mq_uuid_v4(id);
  mq_note_t note = {id, "relay-test", "published, then not recorded", mq_now_unix_ms()};
  Marquee__Events__V1__NoteRecorded payload = MARQUEE__EVENTS__V1__NOTE_RECORDED__INIT;
  payload.note_id = id;
  payload.author = (char *)note.author;
  payload.text_length = (uint32_t)strlen(note.text);
  mq_event_t ev;
  mq_event_init(&ev, "marquee.system", "system.NoteRecorded", id, "relay-test", NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  ev.env.note_recorded = &payload;
  char event_id[37];
  snprintf(event_id, sizeof event_id, "%s", ev.id);
  mq_error_t err;
  assert_int_equal(mq_notes_insert(store, &note, &ev, 1, &err), MQ_OK);

  /* Kafka acknowledges it and the ledger write fails */
  int64_t until = mq_now_ms() + 30000;
  while (mq_fault_fired("relay.ledger_write") < 1 && mq_now_ms() < until) usleep(50000);
  assert_int_equal(mq_fault_fired("relay.ledger_write"), 1);
  uint64_t first = mq_relay_published(relay);
  assert_true(first >= 1);
  assert_int_equal(count(MQ_OUTBOX_LEDGER, "_id", event_id), 0);

  /* it is published again and recorded */
  until = mq_now_ms() + 90000;
  while (count(MQ_OUTBOX_LEDGER, "_id", event_id) < 1 && mq_now_ms() < until) usleep(200000);
  assert_int_equal(count(MQ_OUTBOX_LEDGER, "_id", event_id), 1);
  assert_true(mq_relay_published(relay) > first); /* at least once: the event went out twice */
  assert_int_equal(count(MQ_OUTBOX_JOURNAL, "id", event_id), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failed_ledger_write_republishes_then_records),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
