/*
 * test_catalog_cache.c — the public catalog read path (GetEvent and
 * ListEvents for anonymous readers) is served from each instance's cache and
 * stays coherent: a change made through instance A is seen by anonymous
 * readers of instance B through the catalog event (Kafka → invalidator) well
 * before the 60 s TTL this test sets, so only the event can explain it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_CACHE_TTL_MS=60000", NULL};
  return mq_test_pair_start(&a_srv, &b_srv, &a, &b, env);
}

static int teardown(void **state) {
  (void)state;
  return mq_test_pair_stop(&a_srv, &b_srv, a, b);
}

/* on a timeout, what both instances' caches and invalidators saw */
static void dump_metrics(void) {
  int st;
  char *m = mq_test_http_get(b_srv.http, "/metrics", &st);
  fprintf(stderr, "B metrics:\n%s\n", m);
  free(m);
  m = mq_test_http_get(a_srv.http, "/metrics", &st);
  fprintf(stderr, "A metrics:\n%s\n", m);
  free(m);
}

static char *public_title(mq_client_t *c, const char *id) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  if (marquee__catalog__v1__event_service__get_event__call(c, &q, &e, NULL, &err) != MQ_OK) return NULL;
  char *t = strdup(e->title);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  return t;
}

static size_t public_count(mq_client_t *c, const char *org) {
  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.organization_id = (char *)org;
  Marquee__Catalog__V1__ListEventsResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(c, &q, &r, NULL, &err), MQ_OK);
  size_t n = r->n_events;
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  return n;
}

static void test_coherent_across_instances(void **state) {
  (void)state;
  char *owner = mq_test_token("00000000-0000-4000-8000-00000000c0de", MQ_ROLE_ORGANIZER);
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  Marquee__Identity__V1__CreateOrganizationRequest oq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "cache-%d", (int)getpid());
  oq.name = (char *)"Cache Org";
  oq.slug = slug;
  Marquee__Identity__V1__Organization *org = NULL;
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(a, &oq, &org, &oo, &err),
                   MQ_OK);
  Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  s.seconds = time(NULL) + 30 * 86400;
  e.seconds = s.seconds + 7200;
  ev.organization_id = org->organization_id;
  ev.title = (char *)"First Title";
  ev.online_url = (char *)"https://stream.example.com/x";
  ev.starts_at = &s;
  ev.ends_at = &e;
  ev.currency = (char *)"EUR";
  Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  cq.event = &ev;
  Marquee__Catalog__V1__Event *made = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__create_event__call(a, &cq, &made, &oo, &err), MQ_OK);
  char id[64];
  snprintf(id, sizeof id, "%s", made->event_id);
  int64_t version = made->version;
  marquee__catalog__v1__event__free_unpacked(made, NULL);
  Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
  Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.currency = (char *)"EUR";
  tt.name = (char *)"Free";
  tt.price = &m;
  tt.capacity = 10;
  tq.event_id = id;
  tq.ticket_type = &tt;
  Marquee__Catalog__V1__TicketType *tr = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__create_ticket_type__call(a, &tq, &tr, &oo, &err), MQ_OK);
  marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  version++;
  /* B caches "nothing published" for the organization's page */
  double page_hits = mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"event_pages\"}");
  int64_t until = mq_test_now_ms() + 10000; /* the writes' own events may empty the cache a few times first */
  while (mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"event_pages\"}") < page_hits + 2) {
    assert_true(mq_test_now_ms() < until);
    assert_int_equal(public_count(b, org->organization_id), 0);
  }
  Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  pq.event_id = id;
  Marquee__Catalog__V1__Event *pub = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__publish_event__call(a, &pq, &pub, &oo, &err), MQ_OK);
  version = pub->version;
  marquee__catalog__v1__event__free_unpacked(pub, NULL);
  /* A answers at once; B after the event arrives */
  assert_int_equal(public_count(a, org->organization_id), 1);
  int64_t t0 = mq_test_now_ms();
  while (public_count(b, org->organization_id) != 1) {
    if (mq_test_now_ms() - t0 >= 20000) {
      dump_metrics();
    }
    assert_true(mq_test_now_ms() - t0 < 20000);
    mq_test_sleep_ms(50);
  }
  printf("B listed the published event after %lld ms\n", (long long)(mq_test_now_ms() - t0));
  /* B caches the public view; a rename on A reaches it */
  double hits = mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"events\"}");
  until = mq_test_now_ms() + 10000;
  while (mq_test_metric(&b_srv, "marquee_cache_hits_total{cache=\"events\"}") < hits + 2) {
    assert_true(mq_test_now_ms() < until);
    char *t = public_title(b, id);
    assert_string_equal(t, "First Title");
    free(t);
  }
  Marquee__Catalog__V1__UpdateEventRequest uq = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
  Marquee__Catalog__V1__Event in = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)"title"};
  mask.paths = paths;
  mask.n_paths = 1;
  in.title = (char *)"Second Title";
  uq.event_id = id;
  uq.event = &in;
  uq.update_mask = &mask;
  uq.version = version;
  Marquee__Catalog__V1__Event *up = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(a, &uq, &up, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(up, NULL);
  char *t = public_title(a, id);
  assert_string_equal(t, "Second Title");
  free(t);
  t0 = mq_test_now_ms();
  for (;;) {
    t = public_title(b, id);
    assert_non_null(t);
    bool fresh = !strcmp(t, "Second Title");
    free(t);
    if (fresh) break;
    if (mq_test_now_ms() - t0 >= 20000) {
      dump_metrics();
    }
    assert_true(mq_test_now_ms() - t0 < 20000);
    mq_test_sleep_ms(50);
  }
  printf("B served the new title after %lld ms\n", (long long)(mq_test_now_ms() - t0));
  marquee__identity__v1__organization__free_unpacked(org, NULL);
  free(owner);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_coherent_across_instances)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
