/*
 * test_cache.c — lib/mq_cache: hits and misses, copies in and out, expiry,
 * invalidation, the fill-race ticket, eviction of the oldest entry, and many
 * threads at once (under ASan/UBSan, and TSan-clean by construction).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/mq_cache.h"

static void test_get_put_invalidate(void **state) {
  (void)state;
  mq_cache_t *c = mq_cache_new(1000, 60000);
  mq_arena_t a;
  mq_arena_init(&a);
  void *v;
  size_t n;
  assert_false(mq_cache_get(c, "u1", &a, &v, &n));
  char buf[] = "profile-1";
  mq_cache_put(c, "u1", buf, sizeof buf, mq_cache_ticket(c, "u1"));
  buf[0] = 'X'; /* the cache holds its own copy */
  assert_true(mq_cache_get(c, "u1", &a, &v, &n));
  assert_int_equal(n, sizeof buf);
  assert_string_equal(v, "profile-1");
  mq_cache_put(c, "u1", "v2", 3, mq_cache_ticket(c, "u1")); /* replaces */
  assert_true(mq_cache_get(c, "u1", &a, &v, &n));
  assert_string_equal(v, "v2");
  mq_cache_invalidate(c, "u1");
  assert_false(mq_cache_get(c, "u1", &a, &v, &n));
  mq_cache_stats_t st;
  mq_cache_get_stats(c, &st);
  assert_int_equal(st.hits, 2);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.entries, 0);
  mq_arena_release(&a);
  mq_cache_free(c);
}

static void test_fill_race_ticket(void **state) {
  (void)state;
  mq_cache_t *c = mq_cache_new(1000, 60000);
  mq_arena_t a;
  mq_arena_init(&a);
  void *v;
  size_t n;
  uint64_t t = mq_cache_ticket(c, "k"); /* a reader missed and reads the source… */
  mq_cache_invalidate(c, "k");          /* …a writer changes it meanwhile */
  mq_cache_put(c, "k", "stale", 6, t);  /* the stale read must not be stored */
  assert_false(mq_cache_get(c, "k", &a, &v, &n));
  mq_cache_put(c, "k", "fresh", 6, mq_cache_ticket(c, "k"));
  assert_true(mq_cache_get(c, "k", &a, &v, &n));
  mq_cache_stats_t st;
  mq_cache_get_stats(c, &st);
  assert_int_equal(st.dropped_puts, 1);
  mq_arena_release(&a);
  mq_cache_free(c);
}

static void test_expiry(void **state) {
  (void)state;
  mq_cache_t *c = mq_cache_new(100, 300);
  mq_arena_t a;
  mq_arena_init(&a);
  void *v;
  size_t n;
  mq_cache_put(c, "k", "x", 2, mq_cache_ticket(c, "k"));
  assert_true(mq_cache_get(c, "k", &a, &v, &n));
  usleep(450000);
  assert_false(mq_cache_get(c, "k", &a, &v, &n));
  mq_arena_release(&a);
  mq_cache_free(c);
}

static void test_eviction_bounds_size(void **state) {
  (void)state;
  mq_cache_t *c = mq_cache_new(64 * 4, 60000); /* 4 per shard */
  char key[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    mq_cache_put(c, key, key, strlen(key) + 1, mq_cache_ticket(c, key));
  }
  mq_cache_stats_t st;
  mq_cache_get_stats(c, &st);
  assert_true(st.entries <= 64 * 4);
  assert_int_equal(st.entries + st.evictions, 5000);
  /* the newest survive */
  mq_arena_t a;
  mq_arena_init(&a);
  void *v;
  size_t n;
  assert_true(mq_cache_get(c, "key-4999", &a, &v, &n));
  assert_string_equal(v, "key-4999");
  mq_arena_release(&a);
  mq_cache_free(c);
}

static mq_cache_t *shared;

static void *hammer(void *arg) {
  int id = (int)(intptr_t)arg;
  mq_arena_t a;
  mq_arena_init(&a);
  char key[32], val[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(key, sizeof key, "k%d", i % 97);
    void *v;
    size_t n;
    if (mq_cache_get(shared, key, &a, &v, &n)) {
      assert_int_equal(strncmp(v, key, strlen(key)), 0); /* a value always belongs to its key */
    } else {
      uint64_t t = mq_cache_ticket(shared, key);
      snprintf(val, sizeof val, "%s/%d", key, id);
      mq_cache_put(shared, key, val, strlen(val) + 1, t);
    }
    if (i % 101 == id) mq_cache_invalidate(shared, key);
    if (i % 1000 == 0) {
      mq_arena_release(&a);
      mq_arena_init(&a);
    }
  }
  mq_arena_release(&a);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  shared = mq_cache_new(64 * 16, 60000);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  mq_cache_stats_t st;
  mq_cache_get_stats(shared, &st);
  assert_int_equal(st.hits + st.misses, 80000);
  assert_true(st.hits > 0);
  mq_cache_free(shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_put_invalidate),
      cmocka_unit_test(test_fill_race_ticket),
      cmocka_unit_test(test_expiry),
      cmocka_unit_test(test_eviction_bounds_size),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
