/*
 * test_resilience.c — the platform under dependency failures, on real
 * servers:
 *  - a private FerretDB is stopped: calls that need the store fail
 *    UNAVAILABLE within their deadline, health turns NOT_SERVING, and both
 *    recover when FerretDB returns on the same data;
 *  - the shared Kafka is stopped: writes still succeed, their events wait in
 *    the outbox, and after Kafka returns every event reaches the audit log
 *    exactly once (the audit consumer is a real marquee-audit process);
 *  - a crash between a write and its journal entry: the sweeper finds the
 *    event in its document and publishes it, and leaves alone one the
 *    ledger says was sent — in a process's first sweep and in the later
 *    ones (all by outbox hour).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "grpc/health/v1/health.mq-client.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/system/v1/system.mq-client.h"
#include "store/mq_bson.h"
#include "store/mq_outbox.h"
#include "store/system/notes_store.h"

static mq_code_t record_note(mq_client_t *cl, const char *token, const char *text, int64_t deadline_ms, char *id_out) {
  Marquee__System__V1__RecordNoteRequest req = MARQUEE__SYSTEM__V1__RECORD_NOTE_REQUEST__INIT;
  req.text = (char *)text;
  Marquee__System__V1__Note *note = NULL;
  mq_call_opts_t o = {.bearer_token = token, .deadline_ms = deadline_ms};
  mq_error_t err;
  mq_code_t rc = marquee__system__v1__diagnostics_service__record_note__call(cl, &req, &note, &o, &err);
  if (rc == MQ_OK) {
    if (id_out) strcpy(id_out, note->note_id);
    marquee__system__v1__note__free_unpacked(note, NULL);
  }
  return rc;
}

static int health_status(mq_client_t *cl) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Grpc__Health__V1__HealthCheckResponse *resp = NULL;
  mq_error_t err;
  mq_call_opts_t o = {.deadline_ms = 2000};
  if (grpc__health__v1__health__check__call(cl, &req, &resp, &o, &err) != MQ_OK) return -1;
  int st = resp->status;
  grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
  return st;
}

static bool wait_health(mq_client_t *cl, int want, int timeout_ms) {
  int64_t until = mq_test_now_ms() + timeout_ms;
  while (mq_test_now_ms() < until) {
    if (health_status(cl) == want) return true;
    mq_test_sleep_ms(100);
  }
  return false;
}

static void test_store_outage_unavailable_then_recovery(void **state) {
  (void)state;
  int port = mq_test_free_port();
  char dir[128], uri[128], uri_kv[160];
  snprintf(dir, sizeof dir, "/tmp/mq-ferret-%d", (int)getpid());
  snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", port);
  snprintf(uri_kv, sizeof uri_kv, "MARQUEE_MONGO_URI=%s", uri);
  mq_test_proc_t ferret, srv;
  assert_int_equal(mq_test_ferret_start(&ferret, port, dir), 0);
  const char *env[] = {uri_kv, NULL};
  assert_int_equal(mq_test_server_start(&srv, NULL, env), 0);
  mq_client_t *cl = mq_test_client(&srv);
  char *tok = mq_test_token("user-outage", MQ_ROLE_ATTENDEE);
  char first[40] = "";
  assert_true(wait_health(cl, 1, 10000));
  assert_int_equal(record_note(cl, tok, "before the outage", 5000, first), MQ_OK);

  /* a health watcher sees every change */
  Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  mq_client_stream_t *watch = NULL;
  mq_error_t werr;
  assert_int_equal(grpc__health__v1__health__watch__open(cl, &(mq_call_opts_t){.deadline_ms = 60000}, &watch, &werr),
                   MQ_OK);
  assert_int_equal(grpc__health__v1__health__watch__send(watch, &hreq, &werr), MQ_OK);
  assert_int_equal(mq_client_stream_close_send(watch, &werr), MQ_OK);
  Grpc__Health__V1__HealthCheckResponse *hs = NULL;
  assert_int_equal(grpc__health__v1__health__watch__recv(watch, &hs, &werr), MQ_OK);
  assert_int_equal(hs->status, 1); /* SERVING */
  grpc__health__v1__health_check_response__free_unpacked(hs, NULL);

  /* FerretDB goes away */
  assert_int_equal(mq_test_proc_stop(&ferret, SIGKILL, 5000), 128 + SIGKILL);
  int64_t t0 = mq_test_now_ms();
  mq_code_t rc = record_note(cl, tok, "during the outage", 5000, NULL);
  int64_t took = mq_test_now_ms() - t0;
  assert_int_equal(rc, MQ_UNAVAILABLE);                                              /* retryable, not INTERNAL */
  assert_true(took < 5000);                                                          /* within the deadline */
  assert_true(wait_health(cl, 2, 10000));                                            /* NOT_SERVING */
  assert_int_equal(grpc__health__v1__health__watch__recv(watch, &hs, &werr), MQ_OK); /* pushed, not polled */
  assert_int_equal(hs->status, 2);
  grpc__health__v1__health_check_response__free_unpacked(hs, NULL);
  int status = 0;
  char *body = mq_test_http_get(srv.http, "/readyz", &status);
  assert_int_equal(status, 503);
  free(body);

  /* FerretDB returns on the same data */
  assert_int_equal(mq_test_ferret_start(&ferret, port, dir), 0);
  int64_t until = mq_test_now_ms() + 30000;
  while ((rc = record_note(cl, tok, "after the outage", 3000, NULL)) != MQ_OK && mq_test_now_ms() < until)
    mq_test_sleep_ms(250);
  assert_int_equal(rc, MQ_OK);
  assert_true(wait_health(cl, 1, 10000));
  assert_int_equal(grpc__health__v1__health__watch__recv(watch, &hs, &werr), MQ_OK);
  assert_int_equal(hs->status, 1); /* SERVING again */
  grpc__health__v1__health_check_response__free_unpacked(hs, NULL);
  mq_client_stream_cancel(watch);
  mq_client_stream_free(watch);
  Marquee__System__V1__GetNoteRequest gr = MARQUEE__SYSTEM__V1__GET_NOTE_REQUEST__INIT;
  gr.note_id = first;
  Marquee__System__V1__Note *note = NULL;
  mq_call_opts_t o = {.bearer_token = tok};
  mq_error_t err;
  assert_int_equal(marquee__system__v1__diagnostics_service__get_note__call(cl, &gr, &note, &o, &err), MQ_OK);
  assert_string_equal(note->text, "before the outage");
  marquee__system__v1__note__free_unpacked(note, NULL);

  mq_client_destroy(cl);
  free(tok);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  mq_test_proc_stop(&ferret, SIGTERM, 5000);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* Builds {"_id": {"$in": [ids...]}} */
static void in_filter(char *out, size_t n, char ids[][40], int count) {
  size_t len = (size_t)snprintf(out, n, "{\"_id\": {\"$in\": [");
  for (int i = 0; i < count; i++) len += (size_t)snprintf(out + len, n - len, "%s\"%s\"", i ? "," : "", ids[i]);
  snprintf(out + len, n - len, "]}}");
}

static bool wait_count(const char *db, const char *coll, const char *filter, int64_t want, int timeout_ms) {
  int64_t until = mq_test_now_ms() + timeout_ms, n = -1;
  while (mq_test_now_ms() < until) {
    n = mq_test_count(NULL, db, coll, filter);
    if (n == want) return true;
    mq_test_sleep_ms(250);
  }
  fprintf(stderr, "%s.%s: %lld documents match, want %lld\n", db, coll, (long long)n, (long long)want);
  return false;
}

static void test_kafka_outage_nothing_lost_nothing_twice(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_test_proc_t srv, audit;
  assert_int_equal(mq_test_server_start(&srv, db, NULL), 0);
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  mq_client_t *cl = mq_test_client(&srv);
  char *tok = mq_test_token("user-kafka", MQ_ROLE_ATTENDEE);
  assert_true(wait_health(cl, 1, 10000));

  /* the pipeline works: write → outbox → relay → Kafka → marquee-audit →
   * audit_log, and with Kafka up the events go from memory (direct mode):
   * none of them is written to the journal */
  char before[3][40], during[10][40], filter[2048];
  assert_true(mq_test_wait_metric(&srv, "marquee_outbox_direct", 1, 30000));
  double journaled0 = mq_test_metric(&srv, "marquee_outbox_journaled_total");
  assert_true(journaled0 >= 0);
  for (int i = 0; i < 3; i++) assert_int_equal(record_note(cl, tok, "with kafka", 5000, before[i]), MQ_OK);
  in_filter(filter, sizeof filter, before, 3);
  /* audit _id is the event id; match on aggregate_id (the note id) instead */
  char agg[2048];
  snprintf(agg, sizeof agg, "{\"aggregate_id\": %s", strchr(filter, '{') + 7);
  assert_true(wait_count(db, "audit_log", agg, 3, 60000));
  assert_true(mq_test_metric(&srv, "marquee_outbox_journaled_total") == journaled0);

  /* Kafka goes away: writes keep succeeding, events wait in MongoDB. The
   * first five are written at once (the relay may still take them from
   * memory: their delivery fails and the relay journals them, or Kafka is
   * back in time); the last five after the relay saw Kafka down, so their
   * writers journal them. */
  assert_int_equal(mq_test_stack("stop", "kafka"), 0);
  for (int i = 0; i < 5; i++) assert_int_equal(record_note(cl, tok, "without kafka", 5000, during[i]), MQ_OK);
  int64_t down_until = mq_test_now_ms() + 30000;
  while (mq_test_metric(&srv, "marquee_dependency_up{dependency=\"kafka\"}") != 0 && mq_test_now_ms() < down_until)
    mq_test_sleep_ms(100);
  assert_true(mq_test_metric(&srv, "marquee_outbox_direct") == 0);
  double journaled1 = mq_test_metric(&srv, "marquee_outbox_journaled_total");
  for (int i = 5; i < 10; i++) assert_int_equal(record_note(cl, tok, "without kafka", 5000, during[i]), MQ_OK);
  assert_true(mq_test_metric(&srv, "marquee_outbox_journaled_total") >= journaled1 + 5);
  in_filter(filter, sizeof filter, during, 10);
  assert_int_equal(mq_test_count(NULL, db, "diag_notes", filter), 10);
  snprintf(agg, sizeof agg, "{\"aggregate_id\": %s", strchr(filter, '{') + 7);
  assert_int_equal(mq_test_count(NULL, db, "audit_log", agg), 0);

  /* Kafka returns: every waiting event arrives, once */
  assert_int_equal(mq_test_stack("start", "kafka"), 0);
  assert_true(wait_count(db, "audit_log", agg, 10, 120000));
  /* nothing twice: every one of the 13 notes has exactly one audit record
   * (the topic is shared with other tests, so count by our aggregates) */
  char all[13][40], all_filter[2048], all_agg[2048];
  memcpy(all, before, sizeof before);
  memcpy(all + 3, during, sizeof during);
  in_filter(all_filter, sizeof all_filter, all, 13);
  snprintf(all_agg, sizeof all_agg, "{\"aggregate_id\": %s", strchr(all_filter, '{') + 7);
  mq_test_sleep_ms(2000); /* let any duplicate delivery land before counting */
  assert_int_equal(mq_test_count(NULL, db, "audit_log", all_agg), 13);
  /* the journal drained: no event still waits, and events go from memory again */
  assert_true(wait_count(db, "outbox", "{}", 0, 30000));
  assert_true(mq_test_wait_metric(&srv, "marquee_outbox_direct", 1, 30000));

  mq_client_destroy(cl);
  free(tok);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, db);
}

/* Two servers on one database: each publishes the events its own writes
 * made, from memory, and nobody else's (before direct mode, every relay
 * read the whole journal and both published everything once each). */
static void test_each_server_publishes_its_own_events(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_test_proc_t a, b, audit;
  assert_int_equal(mq_test_server_start(&a, db, NULL), 0);
  assert_int_equal(mq_test_server_start(&b, db, NULL), 0);
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  mq_client_t *ca = mq_test_client(&a), *cb = mq_test_client(&b);
  char *tok = mq_test_token("user-two-relays", MQ_ROLE_ATTENDEE);
  assert_true(wait_health(ca, 1, 10000));
  assert_true(wait_health(cb, 1, 10000));
  assert_true(mq_test_wait_metric(&a, "marquee_outbox_direct", 1, 30000));
  assert_true(mq_test_wait_metric(&b, "marquee_outbox_direct", 1, 30000));
  double pa = mq_test_metric(&a, "marquee_outbox_published_total");
  double pb = mq_test_metric(&b, "marquee_outbox_published_total");
  char ids[40][40], filter[4096], agg[4096];
  for (int i = 0; i < 40; i++) assert_int_equal(record_note(i % 2 ? cb : ca, tok, "two relays", 5000, ids[i]), MQ_OK);
  in_filter(filter, sizeof filter, ids, 40);
  snprintf(agg, sizeof agg, "{\"aggregate_id\": %s", strchr(filter, '{') + 7);
  assert_true(wait_count(db, "audit_log", agg, 40, 60000));
  mq_test_sleep_ms(1500); /* a duplicate publish would land meanwhile */
  assert_true(mq_test_metric(&a, "marquee_outbox_published_total") - pa == 20);
  assert_true(mq_test_metric(&b, "marquee_outbox_published_total") - pb == 20);
  assert_true(wait_count(db, "outbox", "{}", 0, 10000));
  mq_client_destroy(ca);
  mq_client_destroy(cb);
  free(tok);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&a, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&b, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, db);
}

/* A consumer that cannot write shows it on its own /metrics: the lag of the
 * topic grows and retries count up while its store is down; a second
 * consumer of the same group then handles everything and the lag falls to
 * 0. */
static void test_consumer_metrics_show_lag(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_test_proc_t srv, stuck, audit;
  assert_int_equal(mq_test_server_start(&srv, db, NULL), 0);
  const char *dead_store[] = {"MARQUEE_MONGO_URI=mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300", NULL};
  assert_int_equal(mq_test_audit_start(&stuck, db, dead_store), 0);
  assert_true(stuck.http[0] != 0); /* READY names its HTTP port */
  mq_client_t *cl = mq_test_client(&srv);
  char *tok = mq_test_token("user-consumer-lag", MQ_ROLE_ATTENDEE);
  assert_true(wait_health(cl, 1, 10000));
  char ids[3][40], filter[512], agg[512];
  for (int i = 0; i < 3; i++) assert_int_equal(record_note(cl, tok, "lag", 5000, ids[i]), MQ_OK);
  const char *lag = "marquee_consumer_lag{consumer=\"audit\",topic=\"marquee.system\"}";
  const char *retries = "marquee_consumer_retries_total{consumer=\"audit\"}";
  /* the first note is retried (the store is down), the three wait */
  assert_true(mq_test_wait_metric(&stuck, retries, 1, 30000));
  assert_true(mq_test_wait_metric(&stuck, lag, 3, 30000));
  assert_true(mq_test_metric(&stuck, "marquee_consumer_events_total{consumer=\"audit\",outcome=\"handled\"}") == 0);
  assert_int_equal(mq_test_proc_stop(&stuck, SIGTERM, 20000), 0);

  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  in_filter(filter, sizeof filter, ids, 3);
  snprintf(agg, sizeof agg, "{\"aggregate_id\": %s", strchr(filter, '{') + 7);
  assert_true(wait_count(db, "audit_log", agg, 3, 60000));
  assert_true(mq_test_metric(&audit, "marquee_consumer_events_total{consumer=\"audit\",outcome=\"handled\"}") >= 3);
  int64_t until = mq_test_now_ms() + 30000; /* caught up: nothing left behind on the topic */
  while (mq_test_metric(&audit, lag) != 0 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_true(mq_test_metric(&audit, lag) == 0);
  mq_client_destroy(cl);
  free(tok);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, db);
}

/* Runs `cmd` and returns true if its output contains `needle`. */
static bool output_contains(const char *cmd, const char *needle) {
  FILE *f = popen(cmd, "r");
  if (!f) return false;
  char line[1024];
  bool found = false;
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle)) found = true;
  pclose(f);
  return found;
}

static void test_poison_message_dead_lettered(void **state) {
  (void)state;
  char db[64], key[64], cmd[512];
  mq_test_new_db(db);
  snprintf(key, sizeof key, "poison-%s", db);
  mq_test_proc_t audit, srv;
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  /* a message that is not an event envelope, from a producer we did not write */
  snprintf(cmd, sizeof cmd, "printf 'this is not a protobuf envelope' | kcat -b %s -t marquee.system -P -k %s",
           mq_test_kafka(), key);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "kcat -b %s -C -t marquee.dlq.audit -o beginning -e -q -f '%%k %%h\\n' 2>/dev/null",
           mq_test_kafka());
  bool found = false;
  int64_t until = mq_test_now_ms() + 60000;
  while (!found && mq_test_now_ms() < until) {
    found = output_contains(cmd, key);
    if (!found) mq_test_sleep_ms(500);
  }
  assert_true(found);
  char want[128];
  snprintf(want, sizeof want, "%s source-topic=marquee.system", key);
  assert_true(output_contains(cmd, want));
  /* the consumer goes on: a real event after the poison is recorded */
  assert_int_equal(mq_test_server_start(&srv, db, NULL), 0);
  mq_client_t *cl = mq_test_client(&srv);
  char *tok = mq_test_token("user-dlq", MQ_ROLE_ATTENDEE);
  assert_true(wait_health(cl, 1, 10000));
  char id[40], filter[256];
  assert_int_equal(record_note(cl, tok, "after the poison", 5000, id), MQ_OK);
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\"}", id);
  assert_true(wait_count(db, "audit_log", filter, 1, 60000));
  mq_client_destroy(cl);
  free(tok);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, db);
}

/* What a crash between a note's insert and its journal entry leaves: the
 * note with its event embedded (and its outbox hour, as mq_outbox writes
 * it), nothing in the journal; written `age_ms` ago (60,000: past the
 * sweeper's 30 s grace; 0: now). */
static void insert_unjournaled_note(mongoc_collection_t *notes, const char *note_id, char event_id[37],
                                    int64_t age_ms) {
  Marquee__Events__V1__NoteRecorded payload = MARQUEE__EVENTS__V1__NOTE_RECORDED__INIT;
  payload.note_id = (char *)note_id;
  payload.author = (char *)"crash-test";
  mq_event_t ev;
  mq_event_init(&ev, "marquee.system", "system.NoteRecorded", note_id, "crash-test", NULL, NULL);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_NOTE_RECORDED;
  ev.env.note_recorded = &payload;
  strcpy(event_id, ev.id);
  bson_t built = BSON_INITIALIZER, doc = BSON_INITIALIZER, arr, entry;
  mq_outbox_append_insert(&built, &ev, 1);
  bson_iter_t it, ai, f;
  assert_true(bson_iter_init_find(&it, &built, MQ_OUTBOX_FIELD) && bson_iter_recurse(&it, &ai) && bson_iter_next(&ai));
  const uint8_t *d;
  uint32_t len;
  bson_t e;
  bson_iter_document(&ai, &len, &d);
  assert_true(bson_init_static(&e, d, len));
  BSON_APPEND_UTF8(&doc, "_id", note_id);
  BSON_APPEND_UTF8(&doc, "author", "crash-test");
  BSON_APPEND_UTF8(&doc, "text", "written just before a crash");
  int64_t at = mq_now_unix_ms() - age_ms;
  BSON_APPEND_DATE_TIME(&doc, "created_at", at);
  BSON_APPEND_ARRAY_BEGIN(&doc, MQ_OUTBOX_FIELD, &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &entry);
  assert_true(bson_iter_init(&f, &e));
  while (bson_iter_next(&f))
    if (strcmp(bson_iter_key(&f), "at"))
      bson_append_iter(&entry, NULL, 0, &f);
    else
      BSON_APPEND_DATE_TIME(&entry, "at", at);
  bson_append_document_end(&arr, &entry);
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_INT64(&doc, MQ_OUTBOX_HOUR_FIELD, at / MQ_OUTBOX_HOUR_MS);
  bson_error_t berr;
  assert_true(mongoc_collection_insert_one(notes, &doc, NULL, NULL, &berr));
  bson_destroy(&doc);
  bson_destroy(&built);
}

static void test_sweeper_recovers_unjournaled_events(void **state) {
  (void)state;
  char db[64], lost_note[37], sent_note[37], lost_ev[37], sent_ev[37];
  mq_test_new_db(db);
  mq_uuid_v4(lost_note);
  mq_uuid_v4(sent_note);
  mongoc_client_t *mc = mongoc_client_new(mq_test_mongo_uri());
  mongoc_collection_t *notes = mongoc_client_get_collection(mc, db, MQ_NOTES_COLLECTION);
  insert_unjournaled_note(notes, lost_note, lost_ev, 60000);
  insert_unjournaled_note(notes, sent_note, sent_ev, 60000);
  /* the second one was published before the crash: the ledger knows it */
  mongoc_collection_t *ledger = mongoc_client_get_collection(mc, db, MQ_OUTBOX_LEDGER);
  bson_t sent = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sent, "_id", sent_ev);
  BSON_APPEND_DATE_TIME(&sent, "at", mq_now_unix_ms() - 59000);
  bson_error_t berr;
  assert_true(mongoc_collection_insert_one(ledger, &sent, NULL, NULL, &berr));
  bson_destroy(&sent);
  mongoc_collection_destroy(ledger);
  mongoc_collection_destroy(notes);
  mongoc_client_destroy(mc);

  mq_test_proc_t srv, audit;
  const char *env[] = {"MARQUEE_OUTBOX_SWEEP_S=1", NULL};
  assert_int_equal(mq_test_server_start(&srv, db, env), 0);
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  char f[160];
  snprintf(f, sizeof f, "{\"aggregate_id\": \"%s\"}", lost_note);
  assert_true(wait_count(db, "audit_log", f, 1, 60000));
  assert_true(mq_test_metric(&srv, "marquee_outbox_recovered_total") >= 1);
  /* a few more sweeps: the sent one stays unpublished, nothing is recovered twice */
  mq_test_sleep_ms(3000);
  snprintf(f, sizeof f, "{\"aggregate_id\": \"%s\"}", sent_note);
  assert_int_equal(mq_test_count(NULL, db, "audit_log", f), 0);
  assert_int_equal((int)mq_test_metric(&srv, "marquee_outbox_recovered_total"), 1);
  assert_true(wait_count(db, "outbox", "{}", 0, 30000));
  /* a crash now: a later sweep finds it once its grace (30 s) is over */
  char late_note[37], late_ev[37];
  mq_uuid_v4(late_note);
  mc = mongoc_client_new(mq_test_mongo_uri());
  notes = mongoc_client_get_collection(mc, db, MQ_NOTES_COLLECTION);
  insert_unjournaled_note(notes, late_note, late_ev, 0);
  mongoc_collection_destroy(notes);
  mongoc_client_destroy(mc);
  snprintf(f, sizeof f, "{\"aggregate_id\": \"%s\"}", late_note);
  assert_true(wait_count(db, "audit_log", f, 1, 90000));
  assert_int_equal((int)mq_test_metric(&srv, "marquee_outbox_recovered_total"), 2);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_outage_unavailable_then_recovery),
      cmocka_unit_test(test_kafka_outage_nothing_lost_nothing_twice),
      cmocka_unit_test(test_each_server_publishes_its_own_events),
      cmocka_unit_test(test_poison_message_dead_lettered),
      cmocka_unit_test(test_consumer_metrics_show_lag),
      cmocka_unit_test(test_sweeper_recovers_unjournaled_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
