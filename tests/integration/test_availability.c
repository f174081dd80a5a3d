/*
 * test_availability.c — live availability (bookings issue, item 7) with two
 * servers on one database: 200 watchers on server A see a hold made through
 * server B (heard through Kafka) and one made through A itself; GetAvailability
 * agrees; drafts are NOT_FOUND to the public; cancelling the streams brings
 * A's watcher gauge back to 0 (nothing kept for gone watchers).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/bookings/v1/availability.mq-client.h"
#include "marquee/bookings/v1/bookings.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000d0001"
#define ALICE "00000000-0000-4000-8000-0000000d00a1"
#define WATCHERS 200

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;
static char *organizer, *alice;
static char org[40];

static int setup(void **state) {
  (void)state;
  if (mq_test_server_start(&a_srv, NULL, NULL) != 0) return -1;
  if (mq_test_server_start(&b_srv, a_srv.db, NULL) != 0) return -1;
  a = mq_test_client(&a_srv);
  b = mq_test_client(&b_srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  alice = mq_test_token(ALICE, MQ_ROLE_ATTENDEE);
  mq_fx_org(a, organizer, "avail", org);
  /* B's hold events must reach A's invalidator: wait until A hears Kafka */
  return mq_test_wait_metric(&a_srv, "marquee_invalidator_live", 1, 60000) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(a);
  mq_client_destroy(b);
  free(organizer);
  free(alice);
  int ra = mq_test_proc_stop(&a_srv, SIGTERM, 20000);
  int rb = mq_test_proc_stop(&b_srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, a_srv.db);
  return ra == 0 && rb == 0 ? 0 : -1;
}

static void hold(mq_client_t *via, const mq_fx_event_t *ev, uint32_t qty) {
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = (char *)ev->tt[0];
  item.quantity = qty;
  Marquee__Bookings__V1__CreateHoldRequest q = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  q.event_id = (char *)ev->event_id;
  q.items = items;
  q.n_items = 1;
  mq_call_opts_t oo = {.bearer_token = alice};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(via, &q, &h, &oo, &err), MQ_OK);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
}

/* Reads from `st` until the first ticket type shows `want` left; false on
 * end of stream or deadline. */
static bool until_remaining(mq_client_stream_t *st, int64_t want) {
  for (;;) {
    Marquee__Bookings__V1__Availability *m = NULL;
    mq_error_t err;
    mq_code_t rc = marquee__bookings__v1__availability_service__watch_availability__recv(st, &m, &err);
    if (rc != MQ_OK || !m) return false;
    int64_t left = m->n_ticket_types ? m->ticket_types[0]->remaining : -1;
    marquee__bookings__v1__availability__free_unpacked(m, NULL);
    if (left == want) return true;
  }
}

static void test_watchers_follow_both_servers(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  mq_fx_event_opts_t o = {.n_tt = 2, .tt = {{.capacity = 10}, {.capacity = 5, .access_code = "SECRET-1"}}};
  mq_fx_event(a, organizer, org, &o, &ev);
  mq_error_t err;

  Marquee__Bookings__V1__GetAvailabilityRequest q = MARQUEE__BOOKINGS__V1__GET_AVAILABILITY_REQUEST__INIT;
  q.event_id = ev.event_id;
  Marquee__Bookings__V1__Availability *av = NULL;
  assert_int_equal(marquee__bookings__v1__availability_service__get_availability__call(a, &q, &av, NULL, &err), MQ_OK);
  assert_int_equal(av->n_ticket_types, 1); /* the hidden type is not listed */
  assert_int_equal(av->ticket_types[0]->remaining, 10);
  assert_true(av->ticket_types[0]->on_sale);
  marquee__bookings__v1__availability__free_unpacked(av, NULL);

  mq_client_stream_t *st[WATCHERS];
  mq_call_opts_t oo = {.deadline_ms = 60000};
  for (int i = 0; i < WATCHERS; i++) {
    assert_int_equal(marquee__bookings__v1__availability_service__watch_availability__open(a, &oo, &st[i], &err),
                     MQ_OK);
    assert_int_equal(marquee__bookings__v1__availability_service__watch_availability__send(st[i], &q, &err), MQ_OK);
    assert_int_equal(mq_client_stream_close_send(st[i], &err), MQ_OK);
    assert_true(until_remaining(st[i], 10));
  }
  assert_true(mq_test_wait_metric(&a_srv, "marquee_availability_watchers", WATCHERS, 5000));
  int64_t t0 = mq_test_now_ms();
  hold(b, &ev, 3); /* through the other server: reaches A through Kafka */
  for (int i = 0; i < WATCHERS; i++) assert_true(until_remaining(st[i], 7));
  print_message("200 watchers on A saw B's hold within %lld ms\n", (long long)(mq_test_now_ms() - t0));
  hold(a, &ev, 2);
  for (int i = 0; i < WATCHERS; i++) assert_true(until_remaining(st[i], 5));
  for (int i = 0; i < WATCHERS; i++) {
    mq_client_stream_cancel(st[i]);
    mq_client_stream_free(st[i]);
  }
  int64_t deadline = mq_test_now_ms() + 10000;
  while (mq_test_metric(&a_srv, "marquee_availability_watchers") != 0 && mq_test_now_ms() < deadline)
    mq_test_sleep_ms(100);
  assert_true(mq_test_metric(&a_srv, "marquee_availability_watchers") == 0);
}

static void test_drafts_hidden_from_public(void **state) {
  (void)state;
  mq_fx_event_t ev = {0};
  mq_fx_event_opts_t o = {.n_tt = 1, .tt = {{.capacity = 10}}, .draft = true};
  mq_fx_event(a, organizer, org, &o, &ev);
  Marquee__Bookings__V1__GetAvailabilityRequest q = MARQUEE__BOOKINGS__V1__GET_AVAILABILITY_REQUEST__INIT;
  q.event_id = ev.event_id;
  Marquee__Bookings__V1__Availability *av = NULL;
  mq_error_t err;
  assert_int_equal(marquee__bookings__v1__availability_service__get_availability__call(a, &q, &av, NULL, &err),
                   MQ_NOT_FOUND);
  mq_call_opts_t as_org = {.bearer_token = organizer};
  assert_int_equal(marquee__bookings__v1__availability_service__get_availability__call(a, &q, &av, &as_org, &err),
                   MQ_OK);
  assert_false(av->ticket_types[0]->on_sale);
  marquee__bookings__v1__availability__free_unpacked(av, NULL);
  q.event_id = (char *)"nope";
  assert_int_equal(marquee__bookings__v1__availability_service__get_availability__call(a, &q, &av, NULL, &err),
                   MQ_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_watchers_follow_both_servers),
      cmocka_unit_test(test_drafts_hidden_from_public),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
