/*
 * test_lost_updates.c — no update is lost when two server processes write
 * one document at once (store-scaling issue, item 4). Two marquee-server
 * processes share one database on the store under test (the local stack:
 * FerretDB on PostgreSQL, whose updates are read-modify-replace; the
 * revision check of scripts/ferretdb/local.sql and the store's retry make
 * them behave as MongoDB's atomic updates).
 *
 *  1. Two organizers' edits of one event, versioned (AIP-134): in each of
 *     ROUNDS rounds, eight UpdateEvent calls carrying the same version start
 *     together, four through each server. Exactly one succeeds, seven get
 *     ABORTED, and the event then has the winner's title and version + 1 —
 *     never two winners, one of whose edits the other silently undid.
 *  2. Blind edits of different fields of one user (UpdateMe with a mask),
 *     one through each server at once: both succeed and the stored user has
 *     both new values, every round.
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

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000d0001"
#define ROUNDS 25
#define WRITERS 8

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;
static char *organizer;
static char org[40];

static int setup(void **state) {
  (void)state;
  if (mq_test_pair_start(&a_srv, &b_srv, &a, &b, NULL) != 0) return -1;
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  mq_fx_org(a, organizer, "lost", org);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(organizer);
  return mq_test_pair_stop(&a_srv, &b_srv, a, b);
}

typedef struct {
  pthread_barrier_t *go;
  mq_client_t *via;
  const char *event_id;
  int64_t version;
  char title[64];
  mq_code_t rc;
} edit_t;

static void *edit_event(void *arg) {
  edit_t *x = arg;
  Marquee__Catalog__V1__Event in = MARQUEE__CATALOG__V1__EVENT__INIT;
  in.title = x->title;
  char *paths[] = {(char *)"title"};
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = paths;
  mask.n_paths = 1;
  Marquee__Catalog__V1__UpdateEventRequest u = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
  u.event_id = (char *)x->event_id;
  u.event = &in;
  u.update_mask = &mask;
  u.version = x->version;
  mq_call_opts_t o = {.bearer_token = organizer, .deadline_ms = 30000};
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  pthread_barrier_wait(x->go);
  x->rc = marquee__catalog__v1__event_service__update_event__call(x->via, &u, &e, &o, &err);
  if (e) marquee__catalog__v1__event__free_unpacked(e, NULL);
  return NULL;
}

static Marquee__Catalog__V1__Event *get_event(mq_client_t *via, const char *id) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = organizer};
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(via, &q, &e, &o, &err), MQ_OK);
  return e;
}

static void test_versioned_event_edits(void **state) {
  (void)state;
  mq_fx_event_opts_t eo = {.draft = true, .n_tt = 1, .tt = {{.capacity = 10}}};
  mq_fx_event_t ev = {0};
  mq_fx_event(a, organizer, org, &eo, &ev);
  for (int r = 0; r < ROUNDS; r++) {
    Marquee__Catalog__V1__Event *e = get_event(a, ev.event_id);
    int64_t v = e->version;
    marquee__catalog__v1__event__free_unpacked(e, NULL);
    edit_t xs[WRITERS];
    pthread_t ts[WRITERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, WRITERS);
    for (int i = 0; i < WRITERS; i++) {
      xs[i] = (edit_t){.go = &go, .via = i % 2 ? b : a, .event_id = ev.event_id, .version = v};
      snprintf(xs[i].title, sizeof xs[i].title, "Round %d, organizer %d", r, i);
      pthread_create(&ts[i], NULL, edit_event, &xs[i]);
    }
    int ok = 0, aborted = 0, winner = -1;
    for (int i = 0; i < WRITERS; i++) {
      pthread_join(ts[i], NULL);
      if (xs[i].rc == MQ_OK) {
        ok++;
        winner = i;
      } else if (xs[i].rc == MQ_ABORTED) {
        aborted++;
      } else {
        fail_msg("round %d writer %d: %s", r, i, mq_code_name(xs[i].rc));
      }
    }
    pthread_barrier_destroy(&go);
    if (ok != 1) fail_msg("round %d: %d edits with version %lld succeeded (one expected)", r, ok, (long long)v);
    assert_int_equal(aborted, WRITERS - 1);
    /* read through the other server too: it reads the store */
    e = get_event(b, ev.event_id);
    assert_string_equal(e->title, xs[winner].title);
    assert_int_equal(e->version, v + 1);
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
}

typedef struct {
  pthread_barrier_t *go;
  mq_client_t *via;
  const char *token;
  const char *path, *value;
  mq_code_t rc;
} me_t;

static void *update_me(void *arg) {
  me_t *x = arg;
  Marquee__Identity__V1__User u = MARQUEE__IDENTITY__V1__USER__INIT;
  if (!strcmp(x->path, "display_name"))
    u.display_name = (char *)x->value;
  else
    u.time_zone = (char *)x->value;
  char *paths[] = {(char *)x->path};
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = paths;
  mask.n_paths = 1;
  Marquee__Identity__V1__UpdateMeRequest q = MARQUEE__IDENTITY__V1__UPDATE_ME_REQUEST__INIT;
  q.user = &u;
  q.update_mask = &mask;
  mq_call_opts_t o = {.bearer_token = x->token, .deadline_ms = 30000};
  Marquee__Identity__V1__User *me = NULL;
  mq_error_t err;
  pthread_barrier_wait(x->go);
  x->rc = marquee__identity__v1__account_service__update_me__call(x->via, &q, &me, &o, &err);
  if (me) marquee__identity__v1__user__free_unpacked(me, NULL);
  return NULL;
}

static void test_blind_user_edits(void **state) {
  (void)state;
  char uid[40], email[96];
  char *token = mq_fx_user(a, "lostupdate", "correct horse battery staple", uid, sizeof uid, email, sizeof email);
  assert_non_null(token);
  static const char *const zones[] = {"Europe/Paris", "America/Toronto", "Asia/Tokyo"};
  for (int r = 0; r < ROUNDS; r++) {
    char name[40];
    snprintf(name, sizeof name, "Name %d", r);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    me_t xs[2] = {{.go = &go, .via = a, .token = token, .path = "display_name", .value = name},
                  {.go = &go, .via = b, .token = token, .path = "time_zone", .value = zones[r % 3]}};
    pthread_t ts[2];
    for (int i = 0; i < 2; i++) pthread_create(&ts[i], NULL, update_me, &xs[i]);
    for (int i = 0; i < 2; i++) pthread_join(ts[i], NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(xs[0].rc, MQ_OK);
    assert_int_equal(xs[1].rc, MQ_OK);
    char filter[256];
    snprintf(filter, sizeof filter, "{\"_id\": \"%s\", \"display_name\": \"%s\", \"time_zone\": \"%s\"}", uid, name,
             zones[r % 3]);
    if (mq_test_count(NULL, a_srv.db, "users", filter) != 1)
      fail_msg("round %d: the stored user lost one of the two edits (%s)", r, filter);
  }
  free(token);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_versioned_event_edits),
      cmocka_unit_test(test_blind_user_edits),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
