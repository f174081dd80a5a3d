/*
 * test_booking_race.c — the last ticket is sold exactly once, whatever the
 * load and whatever crashes (bookings issue, "Reliability"). Two
 * marquee-server processes share one FerretDB database and Kafka.
 *
 *  1. 400 clients, each its own user, half on each server, start together
 *     and ask for one unit of a ticket type with 100: exactly 100 succeed,
 *     the other 300 get RESOURCE_EXHAUSTED "sold out" (the documented
 *     sold-out status), no slot exists twice or at/above the capacity, and
 *     the derived numbers (slot records, active holds) agree.
 *  2. Ten concurrent retries of one CreateHold (same user, same idempotency
 *     key) split over both servers: one hold, one unit taken.
 *  3. The same burst with server B killed by SIGKILL in the middle: once
 *     the holds' expiry (5 s) and the orphan grace (5 s) have passed, every
 *     unit is back (holds expired by A's sweeper, units a crash left without
 *     a hold reclaimed), and a fresh burst on A sells exactly 100 again.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000c0001"
#define CLIENTS 400
#define CAPACITY 100

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;
static char *organizer;
static char org[40];
static const char *env[] = {"MARQUEE_HOLD_TTL_S=5", "MARQUEE_HOLD_SWEEP_MS=100", "MARQUEE_WORKERS=32",
                            "MARQUEE_MONGO_POOL_MAX=48", NULL};

static int setup(void **state) {
  (void)state;
  if (mq_test_server_start(&a_srv, NULL, env) != 0) return -1;
  if (mq_test_server_start(&b_srv, a_srv.db, env) != 0) return -1;
  a = mq_test_client(&a_srv);
  b = mq_test_client(&b_srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  mq_fx_org(a, organizer, "race", org);
  return a && b ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(a);
  mq_client_destroy(b);
  free(organizer);
  int ra = mq_test_proc_stop(&a_srv, SIGTERM, 30000);
  int rb = b_srv.pid > 0 ? mq_test_proc_stop(&b_srv, SIGTERM, 30000) : 0;
  mq_test_drop_db(NULL, a_srv.db);
  return ra == 0 && rb == 0 ? 0 : -1;
}

typedef struct {
  pthread_barrier_t *go;
  mq_client_t *via;
  const char *event, *tt, *key;
  char user[40];
  mq_code_t rc;
  char message[256];
  char hold_id[40];
} client_t;

static void *one_client(void *arg) {
  client_t *x = arg;
  char *token = mq_test_token(x->user, MQ_ROLE_ATTENDEE);
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)x->tt;
  item.quantity = 1;
  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = (char *)x->event;
  q.items = items;
  q.n_items = 1;
  q.idempotency_key = (char *)(x->key ? x->key : "");
  mq_call_opts_t oo = {.bearer_token = token, .deadline_ms = 60000};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err = {0};
  pthread_barrier_wait(x->go);
  x->rc = marquee__bookings__v1__booking_service__create_hold__call(x->via, &q, &h, &oo, &err);
  snprintf(x->message, sizeof x->message, "%s", err.message);
  if (h) {
    snprintf(x->hold_id, sizeof x->hold_id, "%s", h->hold_id);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  }
  free(token);
  return NULL;
}

typedef struct {
  int ok, sold_out, other;
} tally_t;

/* `n` clients, users u<base+i>, alternating servers (only `a` when
 * only_a); optional callback after the start. */
static tally_t burst(const mq_fx_event_t *ev, int n, int base, bool only_a, const char *key, void (*mid)(void)) {
  client_t *xs = calloc((size_t)n, sizeof *xs);
  pthread_t *ts = calloc((size_t)n, sizeof *ts);
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    xs[i].go = &go;
    xs[i].via = (only_a || i % 2 == 0) ? a : b;
    xs[i].event = ev->event_id;
    xs[i].tt = ev->tt[0];
    xs[i].key = key;
    snprintf(xs[i].user, sizeof xs[i].user, "00000000-0000-4000-8000-%012d", key ? base : base + i);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    assert_int_equal(pthread_create(&ts[i], &at, one_client, &xs[i]), 0);
    pthread_attr_destroy(&at);
  }
  pthread_barrier_wait(&go);
  if (mid) mid();
  tally_t t = {0};
  for (int i = 0; i < n; i++) {
    pthread_join(ts[i], NULL);
    if (xs[i].rc == MQ_OK)
      t.ok++;
    else if (xs[i].rc == MQ_RESOURCE_EXHAUSTED && strstr(xs[i].message, "sold out"))
      t.sold_out++;
    else {
      t.other++;
      if (t.other <= 5) print_message("client %d: %s %s\n", i, mq_code_name(xs[i].rc), xs[i].message);
    }
  }
  pthread_barrier_destroy(&go);
  free(xs);
  free(ts);
  return t;
}

static int64_t count(const char *coll, const char *fmt, const char *arg) {
  char f[256];
  snprintf(f, sizeof f, fmt, arg);
  return mq_test_count(NULL, a_srv.db, coll, f);
}

static void one_event(mq_fx_event_t *ev) {
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.capacity = CAPACITY}}};
  mq_fx_event(a, organizer, org, &o, ev);
}

static void test_400_clients_two_servers(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev);
  tally_t t = burst(&ev, CLIENTS, 1000, false, NULL, NULL);
  print_message("400 clients: %d held, %d sold out, %d other\n", t.ok, t.sold_out, t.other);
  assert_int_equal(t.ok, CAPACITY);
  assert_int_equal(t.sold_out, CLIENTS - CAPACITY);
  assert_int_equal(t.other, 0);
  assert_int_equal(count("capacity_slots", "{\"pool\": \"t:%s\"}", ev.tt[0]), CAPACITY);
  assert_int_equal(count("capacity_slots", "{\"pool\": \"t:%s\", \"n\": {\"$gte\": 100}}", ev.tt[0]), 0);
  assert_int_equal(count("holds", "{\"event_id\": \"%s\", \"state\": \"active\"}", ev.event_id), CAPACITY);
}

static void test_concurrent_retries_one_hold(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev);
  tally_t t = burst(&ev, 10, 777, false, "checkout-1", NULL);
  assert_int_equal(t.other + t.sold_out + t.ok, 10);
  assert_int_equal(t.ok, 10);
  /* twins that both missed the stored hold took a unit each; the loser of the insert gave it back */
  assert_int_equal(count("holds", "{\"event_id\": \"%s\"}", ev.event_id), 1);
  assert_int_equal(count("capacity_slots", "{\"pool\": \"t:%s\"}", ev.tt[0]), 1);
}

static void kill_b(void) {
  mq_test_sleep_ms(60); /* into the burst */
  kill(b_srv.pid, SIGKILL);
}

static void test_sigkill_mid_burst(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  one_event(&ev);
  tally_t t = burst(&ev, CLIENTS, 5000, false, NULL, kill_b);
  int status;
  waitpid(b_srv.pid, &status, 0);
  b_srv.pid = -1;
  print_message("burst with SIGKILL: %d held, %d sold out, %d failed with B\n", t.ok, t.sold_out, t.other);
  assert_true(t.ok <= CAPACITY);
  assert_true(count("capacity_slots", "{\"pool\": \"t:%s\"}", ev.tt[0]) <= CAPACITY);
  /* hold expiry (5 s) + orphan grace (5 s) + A's reclaim pass (every 12 sweeps: 1.2 s here) */
  int64_t left = -1;
  for (int i = 0; i < 100; i++) {
    mq_test_sleep_ms(500);
    left = count("capacity_slots", "{\"pool\": \"t:%s\"}", ev.tt[0]);
    if (left == 0) break;
  }
  assert_int_equal(left, 0);
  assert_int_equal(count("holds", "{\"event_id\": \"%s\", \"state\": \"active\"}", ev.event_id), 0);
  tally_t again = burst(&ev, 150, 9000, true, NULL, NULL);
  assert_int_equal(again.ok, CAPACITY);
  assert_int_equal(again.sold_out, 50);
  assert_int_equal(count("capacity_slots", "{\"pool\": \"t:%s\"}", ev.tt[0]), CAPACITY);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_400_clients_two_servers),
      cmocka_unit_test(test_concurrent_retries_one_hold),
      cmocka_unit_test(test_sigkill_mid_burst),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
