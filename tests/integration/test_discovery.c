/*
 * test_discovery.c — the in-process discovery index (handlers/catalog/
 * discovery.h) answers public ListEvents exactly as the store query does:
 * two servers on one database, A with the index and B without
 * (MARQUEE_DISCOVERY_INDEX=0), both with read caches off, page through the
 * same queries (every filter, both sorts, small pages) and must return the
 * same events in the same order with the same page tokens. Then the index
 * follows writes: a change through A is listed by A at once, a change
 * through B reaches A through its catalog event.
 *
 * Then A's snapshot (MARQUEE_DISCOVERY_SNAPSHOT): A stops (saving it), B
 * publishes one event and cancels another, and one listed event is
 * cancelled behind the platform's back (a raw store update carrying no
 * outbox entry, its outbox hour set two days back); A restarts from the snapshot, catches up by outbox hour
 * (the full read that follows corrects exactly one entry: the raw update)
 * and answers like the store. A damaged snapshot is ignored.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/venues.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "store/mq_outbox.h"

#define OWNER "00000000-0000-4000-8000-0000000d15c0"

static mq_test_proc_t a_srv, b_srv;
static mq_client_t *a, *b;
static char *owner;
static char org1[40], org2[40], paris[40], austin[40];
static char ids[40][40];
static int n_ids;
static char snap_path[128], snap_env[160];
static const char *env_a[] = {"MARQUEE_CACHE_TTL_MS=0", snap_env, NULL};

static int setup(void **state) {
  (void)state;
  snprintf(snap_path, sizeof snap_path, "/tmp/mq-it-discovery-%d.snap", (int)getpid());
  snprintf(snap_env, sizeof snap_env, "MARQUEE_DISCOVERY_SNAPSHOT=%s", snap_path);
  unlink(snap_path);
  const char *env_b[] = {"MARQUEE_CACHE_TTL_MS=0", "MARQUEE_DISCOVERY_INDEX=0", NULL};
  if (mq_test_server_start(&a_srv, NULL, env_a) != 0) return -1;
  if (mq_test_server_start(&b_srv, a_srv.db, env_b) != 0) return -1;
  a = mq_test_client(&a_srv);
  b = mq_test_client(&b_srv);
  owner = mq_test_token(OWNER, MQ_ROLE_ORGANIZER);
  return a && b ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(a);
  mq_client_destroy(b);
  free(owner);
  int ra = mq_test_proc_stop(&a_srv, SIGTERM, 20000);
  int rb = mq_test_proc_stop(&b_srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, a_srv.db);
  unlink(snap_path);
  return ra == 0 && rb == 0 ? 0 : -1;
}

static void make_org(const char *slug_prefix, char out[40]) {
  Marquee__Identity__V1__CreateOrganizationRequest q = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "%s-%d", slug_prefix, (int)getpid());
  q.name = (char *)"Discovery Org";
  q.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(a, &q, &o, &oo, &err), MQ_OK);
  snprintf(out, 40, "%s", o->organization_id);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
}

static void make_venue(const char *org, const char *city, const char *country, double lat, double lon, const char *tz,
                       char out[40]) {
  Marquee__Catalog__V1__Venue v = MARQUEE__CATALOG__V1__VENUE__INIT;
  v.organization_id = (char *)org;
  v.name = (char *)"Hall";
  v.address_line1 = (char *)"1 Main Street";
  v.city = (char *)city;
  v.country = (char *)country;
  v.latitude = lat;
  v.longitude = lon;
  v.time_zone = (char *)tz;
  Marquee__Catalog__V1__CreateVenueRequest q = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  q.venue = &v;
  Marquee__Catalog__V1__Venue *r = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__venue_service__create_venue__call(a, &q, &r, &oo, &err), MQ_OK);
  snprintf(out, 40, "%s", r->venue_id);
  marquee__catalog__v1__venue__free_unpacked(r, NULL);
}

typedef enum { DRAFT, PUBLISH, UNLISTED, CANCEL } fate_t;

/* An event of `org` starting `days` from now (hours apart to vary the
 * order), at `venue` (NULL: online), one ticket type at `price`. */
static void make_event(mq_client_t *via, const char *org, const char *venue, const char *currency, int64_t price,
                       int days, int hour, fate_t fate) {
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  s.seconds = (time(NULL) / 86400 + days) * 86400 + hour * 3600;
  e.seconds = s.seconds + 7200;
  char title[64];
  snprintf(title, sizeof title, "Event %d", n_ids);
  ev.organization_id = (char *)org;
  ev.title = title;
  if (venue)
    ev.venue_id = (char *)venue;
  else
    ev.online_url = (char *)"https://stream.example.com/x";
  ev.starts_at = &s;
  ev.ends_at = &e;
  ev.currency = (char *)currency;
  if (fate == UNLISTED) ev.visibility = MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_UNLISTED;
  Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  cq.event = &ev;
  Marquee__Catalog__V1__Event *made = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__create_event__call(via, &cq, &made, &oo, &err), MQ_OK);
  char *id = ids[n_ids++];
  snprintf(id, 40, "%s", made->event_id);
  marquee__catalog__v1__event__free_unpacked(made, NULL);
  Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
  Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.currency = (char *)currency;
  m.amount_minor = price;
  tt.name = (char *)"Standard";
  tt.price = &m;
  tt.capacity = 100;
  tq.event_id = id;
  tq.ticket_type = &tt;
  Marquee__Catalog__V1__TicketType *tr = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__create_ticket_type__call(via, &tq, &tr, &oo, &err), MQ_OK);
  marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  if (fate == DRAFT) return;
  Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  pq.event_id = id;
  Marquee__Catalog__V1__Event *pub = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__publish_event__call(via, &pq, &pub, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(pub, NULL);
  if (fate != CANCEL) return;
  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = id;
  kq.reason = (char *)"Weather";
  Marquee__Catalog__V1__Event *c = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(via, &kq, &c, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(c, NULL);
}

/* Every page of `q` from `c`, as "id,id,…|token|id,…" */
static char *all_pages(mq_client_t *c, Marquee__Catalog__V1__ListEventsRequest q) {
  size_t cap = 8192, len = 0;
  char *out = calloc(1, cap);
  char token[200] = "";
  for (int page = 0; page < 50; page++) {
    q.page_token = token;
    Marquee__Catalog__V1__ListEventsResponse *r = NULL;
    mq_error_t err;
    assert_int_equal(marquee__catalog__v1__event_service__list_events__call(c, &q, &r, NULL, &err), MQ_OK);
    for (size_t i = 0; i < r->n_events; i++)
      len += (size_t)snprintf(out + len, cap - len, "%s,", r->events[i]->event_id);
    len += (size_t)snprintf(out + len, cap - len, "|%s|", r->next_page_token);
    assert_true(len < cap - 200);
    snprintf(token, sizeof token, "%s", r->next_page_token);
    marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
    if (!token[0]) break;
  }
  return out;
}

static size_t count_ids(const char *pages) {
  size_t n = 0;
  for (const char *p = pages; *p; p++) n += *p == ',';
  return n;
}

static void same_on_both(Marquee__Catalog__V1__ListEventsRequest q, const char *what, size_t want) {
  char *pa = all_pages(a, q), *pb = all_pages(b, q);
  if (strcmp(pa, pb)) fprintf(stderr, "%s differs:\n index: %s\n store: %s\n", what, pa, pb);
  assert_string_equal(pa, pb);
  if (count_ids(pa) != want) fprintf(stderr, "%s: %zu events, want %zu: %s\n", what, count_ids(pa), want, pa);
  assert_int_equal(count_ids(pa), want);
  free(pa);
  free(pb);
}

/* Anonymous GetEvent of every event made so far: the same status and bytes
 * from A (listed ones from its index) and B (the store). */
static void get_same_on_both(void) {
  for (int i = 0; i < n_ids; i++) {
    Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
    q.event_id = ids[i];
    Marquee__Catalog__V1__Event *ea = NULL, *eb = NULL;
    mq_error_t err;
    mq_code_t ra = marquee__catalog__v1__event_service__get_event__call(a, &q, &ea, NULL, &err);
    mq_code_t rb = marquee__catalog__v1__event_service__get_event__call(b, &q, &eb, NULL, &err);
    assert_int_equal(ra, rb);
    if (ra == MQ_OK) {
      uint8_t ba[8192], bb[8192];
      size_t la = marquee__catalog__v1__event__get_packed_size(ea),
             lb = marquee__catalog__v1__event__get_packed_size(eb);
      assert_true(la <= sizeof ba && lb <= sizeof bb);
      marquee__catalog__v1__event__pack(ea, ba);
      marquee__catalog__v1__event__pack(eb, bb);
      assert_int_equal(la, lb);
      assert_memory_equal(ba, bb, la);
      assert_null(ea->online_url && ea->online_url[0] ? ea->online_url : NULL); /* the public view */
      marquee__catalog__v1__event__free_unpacked(ea, NULL);
      marquee__catalog__v1__event__free_unpacked(eb, NULL);
    }
  }
}

static bool index_ready(const mq_test_proc_t *p, double events) {
  return mq_test_wait_metric(p, "marquee_discovery_ready", 1, 20000) &&
         mq_test_metric(p, "marquee_discovery_events") == events;
}

static void test_index_answers_like_the_store(void **state) {
  (void)state;
  make_org("disc-one", org1);
  make_org("disc-two", org2);
  make_venue(org1, "Paris", "FR", 48.8566, 2.3522, "Europe/Paris", paris);
  make_venue(org2, "Austin", "US", 30.2672, -97.7431, "America/Chicago", austin);
  /* 16 listed: 6 Paris EUR, 5 Austin USD, 5 online; plus 2 drafts, 1 unlisted, 1 cancelled */
  for (int i = 0; i < 6; i++) make_event(a, org1, paris, "EUR", i % 3 == 0 ? 0 : 1500 * i, 2 + i, i % 4, PUBLISH);
  for (int i = 0; i < 5; i++) make_event(b, org2, austin, "USD", 2500 + 1000 * i, 3 + i / 2, 5, PUBLISH);
  for (int i = 0; i < 5; i++) make_event(i % 2 ? a : b, i % 2 ? org1 : org2, NULL, "EUR", i * 700, 4, i, PUBLISH);
  make_event(a, org1, paris, "EUR", 100, 5, 1, DRAFT);
  make_event(b, org2, NULL, "USD", 100, 5, 1, DRAFT);
  make_event(a, org1, paris, "EUR", 100, 5, 2, UNLISTED);
  make_event(b, org2, austin, "USD", 100, 5, 3, CANCEL);
  /* A's index learns B's writes through Kafka */
  int64_t until = mq_test_now_ms() + 20000;
  while (!index_ready(&a_srv, 16)) {
    if (mq_test_now_ms() >= until)
      fprintf(stderr, "index: ready %g, %g events\n", mq_test_metric(&a_srv, "marquee_discovery_ready"),
              mq_test_metric(&a_srv, "marquee_discovery_events"));
    assert_true(mq_test_now_ms() < until);
    mq_test_sleep_ms(100);
  }
  assert_true(mq_test_metric(&b_srv, "marquee_discovery_ready") < 0); /* B has no index */

  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.page_size = 3;
  same_on_both(q, "upcoming", 16);
  get_same_on_both(); /* listed, unlisted, drafts (NOT_FOUND), cancelled */
  q.sort = MARQUEE__CATALOG__V1__EVENT_SORT__EVENT_SORT_NEWEST;
  same_on_both(q, "newest", 16);
  q.sort = 0;
  q.city = (char *)"paris";
  same_on_both(q, "city", 6);
  q.city = NULL;
  q.country = (char *)"US";
  same_on_both(q, "country", 5);
  q.country = NULL;
  q.currency = (char *)"EUR";
  q.free_only = true;
  same_on_both(q, "free", 3);
  q.free_only = false;
  q.min_price_minor = 1000;
  q.max_price_minor = 6000;
  same_on_both(q, "price range", 6);
  q.min_price_minor = q.max_price_minor = 0;
  q.currency = NULL;
  q.attendance_mode = MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE;
  same_on_both(q, "online", 5);
  q.attendance_mode = 0;
  q.organization_id = org2;
  q.sort = MARQUEE__CATALOG__V1__EVENT_SORT__EVENT_SORT_NEWEST;
  same_on_both(q, "organization, newest", 8);
  q.organization_id = NULL;
  q.sort = 0;
  Google__Protobuf__Timestamp after = GOOGLE__PROTOBUF__TIMESTAMP__INIT, before = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  after.seconds = (time(NULL) / 86400 + 4) * 86400;
  before.seconds = after.seconds + 2 * 86400;
  q.starts_after = &after;
  q.starts_before = &before;
  same_on_both(q, "date range", 10);
  q.sort = MARQUEE__CATALOG__V1__EVENT_SORT__EVENT_SORT_NEWEST;
  same_on_both(q, "date range, newest", 10);
  q.starts_after = q.starts_before = NULL;
  q.sort = 0;

  /* a write through A: A lists it at once */
  make_event(a, org1, NULL, "EUR", 0, 1, 0, PUBLISH);
  q.page_size = 1;
  Marquee__Catalog__V1__ListEventsResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(a, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_events, 1);
  assert_string_equal(r->events[0]->event_id, ids[n_ids - 1]);
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  /* cancelled through B: A drops it after the event arrives */
  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = ids[n_ids - 1];
  kq.reason = (char *)"Moved";
  Marquee__Catalog__V1__Event *c = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(b, &kq, &c, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(c, NULL);
  until = mq_test_now_ms() + 20000;
  while (mq_test_metric(&a_srv, "marquee_discovery_events") != 16) {
    assert_true(mq_test_now_ms() < until);
    mq_test_sleep_ms(50);
  }
  q.page_size = 3;
  same_on_both(q, "after the changes", 16);
}

static void cancel_via_b(const char *id) {
  Marquee__Catalog__V1__CancelEventRequest kq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  kq.event_id = (char *)id;
  kq.reason = (char *)"Storm";
  Marquee__Catalog__V1__Event *c = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(b, &kq, &c, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(c, NULL);
}

static void test_restart_from_snapshot(void **state) {
  (void)state;
  /* one more through A, then A stops: its index (17 listed) goes to the
   * snapshot as it stops (the one saved at its first load had fewer) */
  make_event(a, org1, paris, "EUR", 300, 7, 2, PUBLISH);
  assert_true(index_ready(&a_srv, 17));
  mq_client_destroy(a);
  a = NULL;
  char db[64];
  snprintf(db, sizeof db, "%s", a_srv.db);
  assert_int_equal(mq_test_proc_stop(&a_srv, SIGTERM, 20000), 0);
  struct stat st;
  assert_int_equal(stat(snap_path, &st), 0);
  /* while A is down: through B one event published, one cancelled; one
   * listed event cancelled by a raw update that no outbox entry announces */
  make_event(b, org2, austin, "USD", 4200, 9, 1, PUBLISH);
  cancel_via_b(ids[0]);
  char filter[96], update[160];
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\"}", ids[1]);
  snprintf(update, sizeof update, "{\"$set\": {\"state\": %d, \"%s\": %lld}}",
           (int)MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_CANCELLED, MQ_OUTBOX_HOUR_FIELD,
           (long long)(mq_test_now_ms() / MQ_OUTBOX_HOUR_MS - 48)); /* as if last written two days ago */
  assert_int_equal(mq_test_update(db, "events", filter, update), 1);

  assert_int_equal(mq_test_server_start(&a_srv, db, env_a), 0);
  a = mq_test_client(&a_srv);
  assert_non_null(a);
  assert_true(mq_test_wait_metric(&a_srv, "marquee_discovery_ready", 1, 20000));
  assert_int_equal((int)mq_test_metric(&a_srv, "marquee_discovery_snapshot_events"), 17);
  /* the full read after the catch-up finds only what bypassed the outbox */
  assert_true(mq_test_wait_metric(&a_srv, "marquee_discovery_corrected_total", 1, 20000));
  mq_test_sleep_ms(200);
  assert_int_equal((int)mq_test_metric(&a_srv, "marquee_discovery_corrected_total"), 1);
  assert_int_equal((int)mq_test_metric(&a_srv, "marquee_discovery_events"), 16);
  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.page_size = 4;
  same_on_both(q, "after a restart from the snapshot", 16);
  q.sort = MARQUEE__CATALOG__V1__EVENT_SORT__EVENT_SORT_NEWEST;
  same_on_both(q, "newest, after a restart from the snapshot", 16);
  q.sort = 0;

  /* a damaged snapshot is ignored: a full load from the store instead */
  FILE *f = fopen(snap_path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, 200, SEEK_SET), 0);
  int ch = fgetc(f);
  assert_int_equal(fseek(f, 200, SEEK_SET), 0);
  fputc(ch ^ 0x5a, f);
  fclose(f);
  /* stop without saving over it: SIGKILL */
  mq_client_destroy(a);
  a = NULL;
  mq_test_proc_stop(&a_srv, SIGKILL, 20000);
  assert_int_equal(mq_test_server_start(&a_srv, db, env_a), 0);
  a = mq_test_client(&a_srv);
  assert_non_null(a);
  assert_true(mq_test_wait_metric(&a_srv, "marquee_discovery_ready", 1, 20000));
  assert_int_equal((int)mq_test_metric(&a_srv, "marquee_discovery_snapshot_events"), 0);
  same_on_both(q, "after a damaged snapshot", 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_index_answers_like_the_store),
                                     cmocka_unit_test(test_restart_from_snapshot)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
