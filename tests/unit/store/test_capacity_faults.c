/*
 * test_capacity_faults.c — the capacity ledger's recovery paths
 * (store/bookings/capacity.h, I3), with failures injected at named fault
 * points (core/mq_fault.h) instead of killed processes, against the real
 * store (MARQUEE_TEST_MONGO_URI, FerretDB locally; a fresh database).
 *
 * Covers: a take that fails at its Nth slot insert leaves nothing held, in
 * one pool and across pools; when the clean-up fails too, the orphans it
 * leaves are returned by reclaim once their hold would have expired, and
 * not before; a crash between the slot inserts and the hold insert (slots
 * with no hold document) is the same orphan case; after a failed take the
 * whole pool can still be sold (the process's hints forgot the failure).
 *
 * Needs the local stack's store (scripts/test.sh starts it).
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

#include "core/mq_fault.h"
#include "core/mq_time.h"
#include "store/bookings/capacity.h"
#include "store/bookings/holds_store.h"

static mq_store_t *store;
static char db[64];
static const char *uri;

static int setup(void **state) {
  (void)state;
  uri = getenv("MARQUEE_TEST_MONGO_URI");
  if (!uri || !uri[0]) uri = "mongodb://127.0.0.1:27017/";
  snprintf(db, sizeof db, "mqunit_capacity_%d", (int)getpid());
  mq_error_t err;
  if (mq_store_open(uri, db, 8, &store, &err) != MQ_OK) return -1;
  if (mq_store_ensure_indexes(store, mq_capacity_indexes, mq_capacity_n_indexes, &err) != MQ_OK ||
      mq_store_ensure_indexes(store, mq_holds_indexes, mq_holds_n_indexes, &err) != MQ_OK) {
    fprintf(stderr, "store at %s: %s (is the stack running?)\n", uri, err.message);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mq_store_close(store);
  mongoc_client_t *cl = mongoc_client_new(uri);
  if (cl) {
    mongoc_database_t *d = mongoc_client_get_database(cl, db);
    mongoc_database_drop(d, NULL);
    mongoc_database_destroy(d);
    mongoc_client_destroy(cl);
  }
  mq_fault_clear();
  return 0;
}

static int64_t taken(const char *pool, int64_t cap) {
  int64_t n = -1;
  mq_error_t err;
  assert_int_equal(mq_capacity_count(store, pool, cap, &n, &err), MQ_OK);
  return n;
}

static mq_code_t take(mq_capacity_t *c, const char *holder, int64_t until_ms, const mq_pool_want_t *w, size_t n,
                      size_t *n_slots) {
  mq_arena_t a;
  mq_arena_init(&a);
  char **slots = NULL;
  size_t short_at = 0;
  int64_t left = 0;
  mq_error_t err;
  *n_slots = 0;
  mq_code_t rc = mq_capacity_take(c, store, holder, until_ms, w, n, &a, &slots, n_slots, &short_at, &left, &err);
  mq_arena_release(&a);
  return rc;
}

static void test_insert_failure_takes_nothing(void **state) {
  (void)state;
  mq_capacity_t *c = mq_capacity_new();
  int64_t until = mq_now_unix_ms() + 600000;
  mq_pool_want_t one = {.pool = "tt-one", .capacity = 10, .units = 3};
  size_t n;
  mq_fault_arm("capacity.slot_insert", 2, 1); /* the third insert fails */
  assert_int_equal(take(c, "hold-a", until, &one, 1, &n), MQ_STORE_UNAVAILABLE);
  assert_int_equal(mq_fault_fired("capacity.slot_insert"), 1);
  assert_int_equal(taken("tt-one", 10), 0); /* the two it had are gone */

  mq_pool_want_t two[2] = {{.pool = "tt-two-a", .capacity = 10, .units = 2},
                           {.pool = "tt-two-b", .capacity = 10, .units = 2}};
  mq_fault_arm("capacity.slot_insert", 3, 1); /* the second pool's second insert */
  assert_int_equal(take(c, "hold-b", until, two, 2, &n), MQ_STORE_UNAVAILABLE);
  assert_int_equal(taken("tt-two-a", 10), 0);
  assert_int_equal(taken("tt-two-b", 10), 0);
  mq_fault_clear();

  /* the hints forgot the failure: every unit can still be sold */
  mq_pool_want_t all = {.pool = "tt-one", .capacity = 10, .units = 10};
  assert_int_equal(take(c, "hold-c", until, &all, 1, &n), MQ_OK);
  assert_int_equal(n, 10);
  assert_int_equal(taken("tt-one", 10), 10);
  mq_capacity_free(c);
}

static void test_failed_cleanup_leaves_orphans_reclaim_returns(void **state) {
  (void)state;
  mq_capacity_t *c = mq_capacity_new();
  mq_pool_want_t w = {.pool = "tt-orphan", .capacity = 5, .units = 3};
  size_t n;
  /* the hold would still be live: reclaim must not touch its units */
  mq_fault_arm("capacity.slot_insert", 2, 1);
  mq_fault_arm("capacity.cleanup", 0, 1);
  assert_int_equal(take(c, "hold-live", mq_now_unix_ms() + 600000, &w, 1, &n), MQ_STORE_UNAVAILABLE);
  assert_int_equal(mq_fault_fired("capacity.cleanup"), 1);
  assert_int_equal(taken("tt-orphan", 5), 2); /* left behind */
  int64_t reclaimed = -1;
  mq_error_t err;
  assert_int_equal(mq_capacity_reclaim(c, store, "tt-orphan", &reclaimed, &err), MQ_OK);
  assert_int_equal(reclaimed, 0);
  assert_int_equal(taken("tt-orphan", 5), 2);
  /* once their hold would have expired, they come back */
  mq_fault_arm("capacity.slot_insert", 1, 1);
  mq_fault_arm("capacity.cleanup", 0, 1);
  int64_t expired = mq_now_unix_ms() - MQ_SLOT_ORPHAN_GRACE_MS - 1000;
  mq_pool_want_t w2 = {.pool = "tt-orphan-2", .capacity = 5, .units = 2};
  assert_int_equal(take(c, "hold-gone", expired, &w2, 1, &n), MQ_STORE_UNAVAILABLE);
  assert_int_equal(taken("tt-orphan-2", 5), 1);
  mq_fault_clear();
  assert_int_equal(mq_capacity_reclaim(c, store, "tt-orphan-2", &reclaimed, &err), MQ_OK);
  assert_int_equal(reclaimed, 1);
  assert_int_equal(taken("tt-orphan-2", 5), 0);
  mq_capacity_free(c);
}

/* A server that dies after taking the slots and before inserting the hold
 * (holds.c's order) leaves slots whose holder has no hold document. */
static void test_crash_between_slots_and_hold(void **state) {
  (void)state;
  mq_capacity_t *c = mq_capacity_new();
  mq_pool_want_t w = {.pool = "tt-crash", .capacity = 4, .units = 4};
  size_t n;
  int64_t expired = mq_now_unix_ms() - MQ_SLOT_ORPHAN_GRACE_MS - 1000;
  assert_int_equal(take(c, "hold-never-written", expired, &w, 1, &n), MQ_OK);
  assert_int_equal(taken("tt-crash", 4), 4); /* sold out, for now */
  mq_capacity_t *other = mq_capacity_new();  /* another server's sweeper */
  int64_t reclaimed = -1;
  mq_error_t err;
  assert_int_equal(mq_capacity_reclaim(other, store, "tt-crash", &reclaimed, &err), MQ_OK);
  assert_int_equal(reclaimed, 4);
  assert_int_equal(taken("tt-crash", 4), 0);
  mq_pool_want_t again = {.pool = "tt-crash", .capacity = 4, .units = 4};
  assert_int_equal(take(other, "hold-next", mq_now_unix_ms() + 600000, &again, 1, &n), MQ_OK);
  mq_capacity_free(other);
  mq_capacity_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_insert_failure_takes_nothing),
      cmocka_unit_test(test_failed_cleanup_leaves_orphans_reclaim_returns),
      cmocka_unit_test(test_crash_between_slots_and_hold),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
