/*
 * test_store.c — the store layer against the real FerretDB of the local
 * stack: the decision-record primitive decides exactly once under racing
 * threads (the foundation the bookings issue builds capacity on), unique
 * indexes created idempotently are enforced, lookups of missing documents
 * are NOT_FOUND, and an unreachable server is STORE_UNAVAILABLE (retryable)
 * within the selection timeout — never INTERNAL. A document over the
 * store's size limit is RESOURCE_EXHAUSTED naming the limit, and nothing of
 * it is stored; a document taken (mq_store_take_one) by racing threads on
 * two store handles (as two processes) is handed to exactly one of them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "store/mq_store.h"

#define KEYS 100
#define THREADS 6

typedef struct {
  mq_store_t *store;
  int wins[KEYS];
  int lost, failed;
} race_t;

static void *racer(void *arg) {
  race_t *r = arg;
  int wins[KEYS] = {0}, lost = 0, failed = 0;
  for (int k = 0; k < KEYS; k++) {
    char id[32];
    snprintf(id, sizeof id, "slot-%d", k);
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", id);
    BSON_APPEND_INT32(&doc, "slot", k);
    mq_error_t err;
    mq_code_t rc = mq_store_insert_decision(r->store, "decisions", &doc, &err);
    bson_destroy(&doc);
    if (rc == MQ_OK)
      wins[k]++;
    else if (rc == MQ_ALREADY_EXISTS)
      lost++;
    else
      failed++;
  }
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mu);
  for (int k = 0; k < KEYS; k++) r->wins[k] += wins[k];
  r->lost += lost;
  r->failed += failed;
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void test_decision_record_decides_once(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  race_t r = {0};
  mq_error_t err;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), db, 16, &r.store, &err), MQ_OK);
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, racer, &r);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  assert_int_equal(r.failed, 0);
  for (int k = 0; k < KEYS; k++) assert_int_equal(r.wins[k], 1); /* exactly one winner per key */
  assert_int_equal(r.lost, KEYS * (THREADS - 1));
  assert_int_equal(mq_test_count(NULL, db, "decisions", "{}"), KEYS);
  mq_store_close(r.store);
  mq_test_drop_db(NULL, db);
}

static void test_unique_index_idempotent_and_enforced(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_store_t *s = NULL;
  mq_error_t err;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), db, 4, &s, &err), MQ_OK);
  const mq_index_spec_t specs[] = {{"people", "email_unique", "{\"email\": 1}", true}};
  assert_int_equal(mq_store_ensure_indexes(s, specs, 1, &err), MQ_OK);
  assert_int_equal(mq_store_ensure_indexes(s, specs, 1, &err), MQ_OK); /* again: no-op */
  bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&a, "_id", "p1");
  BSON_APPEND_UTF8(&a, "email", "same@example.com");
  BSON_APPEND_UTF8(&b, "_id", "p2");
  BSON_APPEND_UTF8(&b, "email", "same@example.com");
  assert_int_equal(mq_store_insert_decision(s, "people", &a, &err), MQ_OK);
  assert_int_equal(mq_store_insert_decision(s, "people", &b, &err), MQ_ALREADY_EXISTS);
  bson_destroy(&a);
  bson_destroy(&b);

  bson_t filter = BSON_INITIALIZER, out;
  BSON_APPEND_UTF8(&filter, "_id", "p2");
  assert_int_equal(mq_store_find_one(s, "people", &filter, NULL, &out, &err), MQ_NOT_FOUND);
  bson_reinit(&filter);
  BSON_APPEND_UTF8(&filter, "_id", "p1");
  assert_int_equal(mq_store_find_one(s, "people", &filter, NULL, &out, &err), MQ_OK);
  bson_iter_t it;
  assert_true(bson_iter_init_find(&it, &out, "email"));
  assert_string_equal(bson_iter_utf8(&it, NULL), "same@example.com");
  bson_destroy(&out);
  bson_destroy(&filter);
  mq_store_close(s);
  mq_test_drop_db(NULL, db);
}

static void test_oversized_document_is_refused(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_store_t *s = NULL;
  mq_error_t err;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), db, 4, &s, &err), MQ_OK);
  size_t big = 17u << 20; /* over the 16 MiB limit of MongoDB and FerretDB */
  char *filler = malloc(big + 1);
  memset(filler, 'x', big);
  filler[big] = 0;
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", "huge");
  BSON_APPEND_UTF8(&doc, "filler", filler);
  assert_int_equal(mq_store_insert_decision(s, "sized", &doc, &err), MQ_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(err.message, "16 MiB"));
  bson_destroy(&doc);
  /* an update that would make a stored document too large: refused the same way, the document unchanged */
  bson_t small = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&small, "_id", "small");
  BSON_APPEND_INT32(&small, "n", 1);
  assert_int_equal(mq_store_insert_decision(s, "sized", &small, &err), MQ_OK);
  bson_destroy(&small);
  bson_t upd = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
  BSON_APPEND_UTF8(&set, "filler", filler);
  bson_append_document_end(&upd, &set);
  bson_value_t id = {.value_type = BSON_TYPE_UTF8};
  id.value.v_utf8.str = (char *)"small";
  id.value.v_utf8.len = 5;
  assert_int_equal(mq_store_update_by_id(s, "sized", &id, &upd, &err), MQ_RESOURCE_EXHAUSTED);
  bson_destroy(&upd);
  free(filler);
  assert_int_equal(mq_test_count(NULL, db, "sized", "{}"), 1);
  assert_int_equal(mq_test_count(NULL, db, "sized", "{\"_id\": \"small\", \"filler\": {\"$exists\": false}}"), 1);
  mq_store_close(s);
  mq_test_drop_db(NULL, db);
}

#define TAKERS 8
#define TAKEN 40
typedef struct {
  mq_store_t *store;
  int got[TAKEN];
} taker_t;

static void *taker(void *arg) {
  taker_t *t = arg;
  for (int k = 0; k < TAKEN; k++) {
    bson_t filter = BSON_INITIALIZER, out;
    BSON_APPEND_UTF8(&filter, "token", "shared");
    BSON_APPEND_INT32(&filter, "k", k);
    mq_error_t err;
    if (mq_store_take_one(t->store, "tokens", &filter, &out, &err) == MQ_OK) {
      t->got[k]++;
      bson_destroy(&out);
    }
    bson_destroy(&filter);
  }
  return NULL;
}

static void test_take_one_hands_out_once(void **state) {
  (void)state;
  char db[64];
  mq_test_new_db(db);
  mq_store_t *s1 = NULL, *s2 = NULL;
  mq_error_t err;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), db, 8, &s1, &err), MQ_OK);
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), db, 8, &s2, &err), MQ_OK);
  for (int k = 0; k < TAKEN; k++) {
    char id[16];
    snprintf(id, sizeof id, "t%d", k);
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", id);
    BSON_APPEND_UTF8(&doc, "token", "shared");
    BSON_APPEND_INT32(&doc, "k", k);
    assert_int_equal(mq_store_insert_decision(s1, "tokens", &doc, &err), MQ_OK);
    bson_destroy(&doc);
  }
  taker_t ts[TAKERS];
  pthread_t th[TAKERS];
  memset(ts, 0, sizeof ts);
  for (int i = 0; i < TAKERS; i++) {
    ts[i].store = i % 2 ? s2 : s1;
    pthread_create(&th[i], NULL, taker, &ts[i]);
  }
  for (int i = 0; i < TAKERS; i++) pthread_join(th[i], NULL);
  for (int k = 0; k < TAKEN; k++) {
    int total = 0;
    for (int i = 0; i < TAKERS; i++) total += ts[i].got[k];
    if (total != 1) fail_msg("document %d was taken %d times", k, total);
  }
  assert_int_equal(mq_test_count(NULL, db, "tokens", "{}"), 0);
  mq_store_close(s1);
  mq_store_close(s2);
  mq_test_drop_db(NULL, db);
}

static void test_unreachable_store_is_unavailable(void **state) {
  (void)state;
  char uri[128];
  snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=500", mq_test_free_port());
  mq_store_t *s = NULL;
  mq_error_t err;
  assert_int_equal(mq_store_open(uri, "nowhere", 2, &s, &err), MQ_OK); /* lazy: opening needs no server */
  int64_t t0 = mq_test_now_ms();
  assert_int_equal(mq_store_ping(s, &err), MQ_STORE_UNAVAILABLE);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", "x");
  assert_int_equal(mq_store_insert_decision(s, "c", &doc, &err), MQ_STORE_UNAVAILABLE);
  bson_destroy(&doc);
  assert_true(mq_test_now_ms() - t0 < 5000);
  mq_store_close(s);
  assert_int_equal(mq_store_open("not a uri", "db", 2, &s, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "MARQUEE_MONGO_URI");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decision_record_decides_once),
      cmocka_unit_test(test_unique_index_idempotent_and_enforced),
      cmocka_unit_test(test_oversized_document_is_refused),
      cmocka_unit_test(test_take_one_hands_out_once),
      cmocka_unit_test(test_unreachable_store_is_unavailable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
