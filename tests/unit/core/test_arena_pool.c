/*
 * test_arena_pool.c — cmocka tests for core/mq_arena.c (the per-call bump
 * allocator) and core/mq_pool.c (the bounded worker pool).
 *
 * Arena: every allocation is 16-byte aligned and zeroed (including memory
 * reused after mq_arena_release and fresh heap blocks); the first 1 KiB is
 * served from the inline buffer without a heap block; growth past it, past
 * 8 KiB blocks and single allocations larger than a block all give usable,
 * non-overlapping memory (ASan checks the bounds); `used` counts rounded
 * sizes; strdup/strndup/sprintf (also longer than a block) and the
 * protobuf-c allocator.
 *
 * Pool: N tasks all run (atomic counter) on several threads; one worker runs
 * tasks in FIFO order; with every worker held on a condition, exactly
 * queue_cap submits are accepted and the next is refused, and depth/busy
 * report it; mq_pool_on_worker is true inside a task and false on the main
 * thread and on a foreign thread; mq_pool_destroy runs every task still
 * queued when it is called, and submits made while it is stopping are
 * refused.
 *
 * Invariant: waits are bounded (5 s) so a broken pool fails instead of
 * hanging; no sleeps are used as synchronisation for assertions.
 * Read next: core/mq_arena.h, core/mq_pool.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_arena.h"
#include "core/mq_pool.h"

/* ---- arena ----------------------------------------------------------------------------- */

static bool aligned16(const void *p) {
  return ((uintptr_t)p & 15u) == 0;
}

static bool all_zero(const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i]) return false;
  return true;
}

static bool inline_block(const mq_arena_t *a, const void *p) {
  return (const char *)p >= a->first && (const char *)p < a->first + sizeof a->first;
}

static void test_arena_alignment_and_zeroing(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  /* every size 1..200 (crosses into the heap), each aligned, zeroed, writable */
  for (size_t n = 1; n <= 200; n++) {
    unsigned char *p = mq_arena_alloc(&a, n);
    assert_non_null(p);
    assert_true(aligned16(p));
    assert_true(all_zero(p, n));
    memset(p, 0xAB, n);
  }
  assert_non_null(a.head); /* 200 allocations do not fit in 1 KiB */
  mq_arena_release(&a);
  assert_null(a.head);
  assert_int_equal(a.used, 0);

  /* the inline buffer is reused after release: dirty bytes must come back zeroed */
  mq_arena_init(&a);
  unsigned char *p = mq_arena_alloc(&a, 512);
  assert_ptr_equal(p, a.first);
  memset(p, 0xCD, 512);
  mq_arena_release(&a);
  p = mq_arena_alloc(&a, 512);
  assert_ptr_equal(p, a.first);
  assert_true(all_zero(p, 512));

  /* zero-size requests still get distinct aligned memory */
  void *z1 = mq_arena_alloc(&a, 0), *z2 = mq_arena_alloc(&a, 0);
  assert_non_null(z1);
  assert_non_null(z2);
  assert_ptr_not_equal(z1, z2);
  assert_true(aligned16(z1) && aligned16(z2));
  mq_arena_release(&a);
}

static void test_arena_inline_then_heap(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  /* exactly 1 KiB fits inline: 64 x 16 */
  for (int i = 0; i < 64; i++) {
    void *p = mq_arena_alloc(&a, 16);
    assert_true(inline_block(&a, p));
  }
  assert_null(a.head);
  assert_int_equal(a.used, 1024);
  /* the next byte goes to a heap block */
  void *h = mq_arena_alloc(&a, 1);
  assert_false(inline_block(&a, h));
  assert_non_null(a.head);
  assert_true(aligned16(h));
  assert_int_equal(a.used, 1040); /* rounded to 16 */
  mq_arena_release(&a);
}

static void test_arena_growth_past_blocks(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  enum { N = 60, SZ = 1000 }; /* 60 KB: the inline buffer plus several 8 KiB blocks */
  unsigned char *ptrs[N];
  for (int i = 0; i < N; i++) {
    ptrs[i] = mq_arena_alloc(&a, SZ);
    assert_true(aligned16(ptrs[i]));
    assert_true(all_zero(ptrs[i], SZ));
    memset(ptrs[i], i + 1, SZ); /* ASan: the whole range is ours */
  }
  /* no allocation overlapped another: each still holds its own pattern */
  for (int i = 0; i < N; i++)
    for (int k = 0; k < SZ; k += 97) assert_int_equal(ptrs[i][k], i + 1);
  assert_int_equal(a.used, (size_t)N * 1008);

  /* larger than a block: its own block, fully usable */
  unsigned char *big = mq_arena_alloc(&a, 20000);
  assert_true(aligned16(big));
  assert_true(all_zero(big, 20000));
  memset(big, 0x5A, 20000);
  /* and small allocations keep working afterwards */
  unsigned char *after = mq_arena_alloc(&a, 64);
  assert_true(all_zero(after, 64));
  assert_true(after + 64 <= big || after >= big + 20000);
  assert_int_equal(big[19999], 0x5A);
  mq_arena_release(&a);
}

static void test_arena_strings(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  char *s = mq_arena_strdup(&a, "hello");
  assert_string_equal(s, "hello");
  assert_true(aligned16(s));
  char *t = mq_arena_strndup(&a, "abcdef", 3);
  assert_string_equal(t, "abc");
  char *e = mq_arena_strdup(&a, "");
  assert_string_equal(e, "");
  char *f = mq_arena_sprintf(&a, "%s-%d-%05.1f", "id", 42, 3.14159);
  assert_string_equal(f, "id-42-003.1");
  /* a formatted string larger than a heap block */
  char *big = mq_arena_sprintf(&a, "%10000d|%s", 7, "end");
  assert_int_equal(strlen(big), 10004);
  assert_string_equal(big + 9999, "7|end");
  assert_string_equal(s, "hello"); /* earlier strings untouched */
  assert_string_equal(t, "abc");
  mq_arena_release(&a);
}

static void test_arena_protobuf_allocator(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  ProtobufCAllocator al = mq_arena_allocator(&a);
  assert_ptr_equal(al.allocator_data, &a);
  void *p = al.alloc(al.allocator_data, 40);
  assert_true(aligned16(p));
  assert_true(all_zero(p, 40));
  assert_int_equal(a.used, 48);
  al.free(al.allocator_data, p); /* no-op: memory stays valid until release */
  memset(p, 1, 40);
  mq_arena_release(&a);
}

/* ---- pool ------------------------------------------------------------------------------- */

static bool wait_until(bool (*cond)(void *), void *arg) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (cond(arg)) return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= 5) return false;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

typedef struct {
  atomic_int count;
  int target;
} counter_t;

static void count_task(void *arg) {
  atomic_fetch_add(&((counter_t *)arg)->count, 1);
}
static bool counter_reached(void *arg) {
  counter_t *c = arg;
  return atomic_load(&c->count) >= c->target;
}

static void test_pool_runs_n_tasks(void **state) {
  (void)state;
  mq_pool_t *p = mq_pool_create(4, 2048, "t-run");
  assert_non_null(p);
  counter_t c = {.target = 1000};
  atomic_init(&c.count, 0);
  for (int i = 0; i < 1000; i++) assert_true(mq_pool_submit(p, count_task, &c));
  assert_true(wait_until(counter_reached, &c));
  assert_int_equal(atomic_load(&c.count), 1000);
  mq_pool_destroy(p);
  assert_int_equal(atomic_load(&c.count), 1000); /* nothing ran twice */
}

typedef struct {
  pthread_mutex_t mu;
  int order[64];
  int n;
} order_t;

typedef struct {
  order_t *o;
  int id;
} order_arg_t;

static void order_task(void *arg) {
  order_arg_t *a = arg;
  pthread_mutex_lock(&a->o->mu);
  a->o->order[a->o->n++] = a->id;
  pthread_mutex_unlock(&a->o->mu);
}

static void test_pool_fifo_single_worker(void **state) {
  (void)state;
  mq_pool_t *p = mq_pool_create(1, 64, "t-fifo");
  assert_non_null(p);
  order_t o = {.n = 0};
  pthread_mutex_init(&o.mu, NULL);
  order_arg_t args[64];
  for (int i = 0; i < 64; i++) {
    args[i] = (order_arg_t){&o, i};
    assert_true(mq_pool_submit(p, order_task, &args[i]));
  }
  mq_pool_destroy(p); /* drains */
  assert_int_equal(o.n, 64);
  for (int i = 0; i < 64; i++) assert_int_equal(o.order[i], i);
  pthread_mutex_destroy(&o.mu);
}

/* A gate that holds workers until opened. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  atomic_int entered;
  atomic_int ran;
  mq_pool_t *pool;
  atomic_int resubmit; /* -1 not tried, 0 refused, 1 accepted */
} gate_t;

static void gate_init(gate_t *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = false;
  atomic_init(&g->entered, 0);
  atomic_init(&g->ran, 0);
  atomic_init(&g->resubmit, -1);
  g->pool = NULL;
}

static void gate_open(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate_t *g) {
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
}

static void blocker_task(void *arg) {
  gate_t *g = arg;
  atomic_fetch_add(&g->entered, 1);
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  atomic_fetch_add(&g->ran, 1);
}

static void gated_count_task(void *arg) {
  atomic_fetch_add(&((gate_t *)arg)->ran, 1);
}

typedef struct {
  gate_t *g;
  int want;
} entered_arg_t;
static bool entered_reached(void *arg) {
  entered_arg_t *e = arg;
  return atomic_load(&e->g->entered) >= e->want;
}

static void test_pool_refuses_when_full(void **state) {
  (void)state;
  mq_pool_t *p = mq_pool_create(2, 3, "t-full");
  assert_non_null(p);
  gate_t g;
  gate_init(&g);
  assert_true(mq_pool_submit(p, blocker_task, &g));
  assert_true(mq_pool_submit(p, blocker_task, &g));
  entered_arg_t e = {&g, 2};
  assert_true(wait_until(entered_reached, &e)); /* both workers are held */
  assert_int_equal(mq_pool_busy(p), 2);
  assert_int_equal(mq_pool_depth(p), 0);

  for (int i = 0; i < 3; i++) assert_true(mq_pool_submit(p, gated_count_task, &g));
  assert_int_equal(mq_pool_depth(p), 3);
  assert_false(mq_pool_submit(p, gated_count_task, &g)); /* queue_cap reached */
  assert_false(mq_pool_submit(p, gated_count_task, &g));
  assert_int_equal(mq_pool_depth(p), 3);
  assert_int_equal(atomic_load(&g.ran), 0);

  gate_open(&g);
  mq_pool_destroy(p);
  assert_int_equal(atomic_load(&g.ran), 2 + 3); /* refused tasks never ran */
  gate_destroy(&g);
}

typedef struct {
  atomic_int value; /* -1 unset, 0 false, 1 true */
} flag_t;

static void on_worker_task(void *arg) {
  atomic_store(&((flag_t *)arg)->value, mq_pool_on_worker() ? 1 : 0);
}
static bool flag_set(void *arg) {
  return atomic_load(&((flag_t *)arg)->value) != -1;
}

static void *foreign_thread(void *arg) {
  on_worker_task(arg);
  return NULL;
}

static void test_pool_on_worker(void **state) {
  (void)state;
  assert_false(mq_pool_on_worker());
  mq_pool_t *p = mq_pool_create(2, 8, "t-onw");
  assert_non_null(p);
  flag_t f;
  atomic_init(&f.value, -1);
  assert_true(mq_pool_submit(p, on_worker_task, &f));
  assert_true(wait_until(flag_set, &f));
  assert_int_equal(atomic_load(&f.value), 1);
  assert_false(mq_pool_on_worker()); /* still false here */

  flag_t g;
  atomic_init(&g.value, -1);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, foreign_thread, &g), 0);
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&g.value), 0); /* a thread that is not the pool's */
  mq_pool_destroy(p);
}

/* Blocker that, once released, tries to submit (the pool is stopping by then). */
static void resubmit_task(void *arg) {
  gate_t *g = arg;
  blocker_task(g);
  atomic_store(&g->resubmit, mq_pool_submit(g->pool, gated_count_task, g) ? 1 : 0);
}

typedef struct {
  gate_t *g;
  atomic_int probes_accepted;
} opener_t;

static void probe_task(void *arg) {
  (void)arg;
}

/* Waits until the pool refuses a submit (destroy has set `stopping`; the queue
 * is far from full), then opens the gate. */
static void *opener_thread(void *arg) {
  opener_t *o = arg;
  for (int i = 0; i < 5000; i++) {
    if (!mq_pool_submit(o->g->pool, probe_task, NULL)) break;
    atomic_fetch_add(&o->probes_accepted, 1);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  gate_open(o->g);
  return NULL;
}

static void test_pool_destroy_drains(void **state) {
  (void)state;
  mq_pool_t *p = mq_pool_create(1, 10000, "t-drain");
  assert_non_null(p);
  gate_t g;
  gate_init(&g);
  g.pool = p;
  assert_true(mq_pool_submit(p, resubmit_task, &g));
  entered_arg_t e = {&g, 1};
  assert_true(wait_until(entered_reached, &e)); /* the only worker is held */
  for (int i = 0; i < 50; i++) assert_true(mq_pool_submit(p, gated_count_task, &g));
  assert_int_equal(mq_pool_depth(p), 50);

  opener_t o = {.g = &g};
  atomic_init(&o.probes_accepted, 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, opener_thread, &o), 0);
  mq_pool_destroy(p); /* returns only after the 50 queued tasks ran */
  pthread_join(th, NULL);

  assert_int_equal(atomic_load(&g.ran), 1 + 50);
  assert_int_equal(atomic_load(&g.resubmit), 0);       /* submits while stopping are refused */
  assert_true(atomic_load(&o.probes_accepted) < 5000); /* the opener saw a refusal */
  gate_destroy(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_alignment_and_zeroing),
      cmocka_unit_test(test_arena_inline_then_heap),
      cmocka_unit_test(test_arena_growth_past_blocks),
      cmocka_unit_test(test_arena_strings),
      cmocka_unit_test(test_arena_protobuf_allocator),
      cmocka_unit_test(test_pool_runs_n_tasks),
      cmocka_unit_test(test_pool_fifo_single_worker),
      cmocka_unit_test(test_pool_refuses_when_full),
      cmocka_unit_test(test_pool_on_worker),
      cmocka_unit_test(test_pool_destroy_drains),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
