/*
 * test_search.c — search end to end on the real stack: marquee-server and
 * marquee-indexer on one database, FerretDB and Kafka between them.
 *
 * Published events become searchable through the log (text, folding, geo,
 * suggestions, health and /metrics freshness); a cancelled event leaves the
 * index within the freshness bound; tickets sold counts a booking once even
 * when the indexer is SIGKILLed and its events are delivered again; an
 * indexer SIGKILLed mid-burst loses nothing; `marquee-indexer --rebuild`
 * yields the identical result set; and bad requests get INVALID_ARGUMENT
 * listing every bad field, never an FTS5 error.
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

#include "core/mq_principal.h"
#include "fixtures.h"
#include "harness.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/catalog/v1/categories.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/series.mq-client.h"
#include "marquee/search/v1/search.mq-client.h"

#define ORGANIZER "00000000-0000-4000-8000-0000000000d1"
#define BUYER "00000000-0000-4000-8000-0000000000d2"
#define ADMIN "00000000-0000-4000-8000-0000000000d3"

static mq_test_proc_t srv, idx;
static mq_client_t *c;
static char *organizer, *buyer;
static char org[40], venue_mtl[40], venue_laval[40], index_path[128], cat_music[40], cat_jazz[40];

/* A category (an administrator's call), named in English and French. */
static void category(const char *token, const char *slug, const char *parent, const char *en, const char *fr,
                     char out[40]) {
  Marquee__Catalog__V1__CategoryName n1 = MARQUEE__CATALOG__V1__CATEGORY_NAME__INIT,
                                     n2 = MARQUEE__CATALOG__V1__CATEGORY_NAME__INIT, *names[2] = {&n1, &n2};
  n1.locale = (char *)"en", n1.name = (char *)en;
  n2.locale = (char *)"fr", n2.name = (char *)fr;
  Marquee__Catalog__V1__CreateCategoryRequest q = MARQUEE__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
  q.slug = (char *)slug;
  q.parent_id = (char *)parent;
  q.names = names;
  q.n_names = 2;
  mq_call_opts_t oo = {.bearer_token = token};
  Marquee__Catalog__V1__Category *made = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__category_service__create_category__call(c, &q, &made, &oo, &err), MQ_OK);
  snprintf(out, 40, "%s", made->category_id);
  marquee__catalog__v1__category__free_unpacked(made, NULL);
}

typedef Marquee__Search__V1__SearchEventsRequest req_t;
typedef Marquee__Search__V1__SearchEventsResponse resp_t;

static int setup(void **state) {
  (void)state;
  snprintf(index_path, sizeof index_path, "/tmp/mq-it-search-%d.sqlite", (int)getpid());
  char ix[200];
  snprintf(ix, sizeof ix, "MARQUEE_SEARCH_INDEX=%s", index_path);
  const char *env[] = {ix, "MARQUEE_SEARCH_MAX_STALENESS_S=5", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_indexer_start(&idx, srv.db, index_path, false, NULL) != 0) return -1;
  c = mq_test_client(&srv);
  organizer = mq_test_token(ORGANIZER, MQ_ROLE_ORGANIZER);
  buyer = mq_test_token(BUYER, MQ_ROLE_ATTENDEE);
  mq_fx_org(c, organizer, "search", org);
  char *admin = mq_test_token(ADMIN, MQ_ROLE_ADMIN);
  category(admin, "music", "", "Music", "Musique", cat_music);
  category(admin, "jazz", cat_music, "Jazz", "Jazz", cat_jazz);
  free(admin);
  mq_fx_venue_at(c, organizer, org, "Blue Note Lounge", "Montréal", "CA", "America/Toronto", 45.5017, -73.5673,
                 venue_mtl);
  /* 19.9 km north of the Montréal venue */
  mq_fx_venue_at(c, organizer, org, "Salle Nord", "Laval", "CA", "America/Toronto", 45.5017 + 19.9 / 111.19508,
                 -73.5673, venue_laval);
  return c ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(c);
  free(organizer);
  free(buyer);
  int rc = mq_test_proc_stop(&idx, SIGTERM, 20000);
  rc |= mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -f %s %s.*", index_path, index_path);
  if (system(cmd) != 0) rc = -1;
  return rc;
}

static resp_t *search(const char *query, mq_code_t *code, mq_error_t *err) {
  req_t q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  q.query = (char *)query;
  q.page_size = 50;
  resp_t *r = NULL;
  *code = marquee__search__v1__search_service__search_events__call(c, &q, &r, NULL, err);
  return r;
}

static bool has(const resp_t *r, const char *id) {
  for (size_t i = 0; r && i < r->n_hits; i++)
    if (!strcmp(r->hits[i]->event_id, id)) return true;
  return false;
}

/* Waits until `query` finds (or no longer finds) `id`; the time it took, or -1. */
static int64_t wait_for(const char *query, const char *id, bool present, int timeout_ms) {
  int64_t t0 = mq_test_now_ms();
  while (mq_test_now_ms() - t0 < timeout_ms) {
    mq_error_t err;
    mq_code_t rc;
    resp_t *r = search(query, &rc, &err);
    bool found = rc == MQ_OK && has(r, id);
    if (r) marquee__search__v1__search_events_response__free_unpacked(r, NULL);
    if (found == present) return mq_test_now_ms() - t0;
    mq_test_sleep_ms(50);
  }
  return -1;
}

static void event(const char *title, const char *desc, const char *venue, int64_t price, mq_fx_event_t *out) {
  mq_fx_event_opts_t o = {.title = title,
                          .description = desc,
                          .venue_id = venue,
                          .currency = "CAD",
                          .n_tt = 1,
                          .category_id = strstr(title, "Jazz") ? cat_jazz : cat_music};
  o.tt[0].price_minor = price;
  o.tt[0].capacity = 50;
  mq_fx_event(c, organizer, org, &o, out);
}

static void test_published_searchable(void **state) {
  (void)state;
  mq_fx_event_t jazz = {0}, laval = {0};
  event("Blue Note Jazz Night", "A trio plays standards.", venue_mtl, 2500, &jazz);
  event("Soirée folk à Laval", "Chansons.", venue_laval, 0, &laval);
  int64_t lag = wait_for("montreal jazz ", jazz.event_id, true, 20000);
  assert_true(lag >= 0);
  printf("  published → searchable in %lld ms\n", (long long)lag);
  /* folding, prefix, the hit's fields */
  mq_error_t err;
  mq_code_t rc;
  resp_t *r = search("MONTRÉAL jaz", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_true(has(r, jazz.event_id));
  assert_string_equal(r->hits[0]->city, "Montréal");
  assert_string_equal(r->hits[0]->venue_name, "Blue Note Lounge");
  assert_int_equal(r->hits[0]->min_price->amount_minor, 2500);
  assert_non_null(strstr(r->hits[0]->title_html, "<mark>Jazz</mark>"));
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* the indexer marks the index fresh once it finds nothing more to read */
  int64_t t0 = mq_test_now_ms();
  bool fresh = false;
  while (!fresh && mq_test_now_ms() - t0 < 10000) {
    r = search("jazz ", &rc, &err);
    fresh = rc == MQ_OK && r->index_fresh_as_of && r->index_fresh_as_of->seconds * 1000 > t0 - 60000;
    if (r) marquee__search__v1__search_events_response__free_unpacked(r, NULL);
    if (!fresh) mq_test_sleep_ms(100);
  }
  assert_true(fresh);
  /* geo: the Laval venue is 19.9 km away: in at 20 km, out at 19.8 */
  assert_true(wait_for("folk ", laval.event_id, true, 20000) >= 0);
  req_t q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  Marquee__Search__V1__GeoPoint p = MARQUEE__SEARCH__V1__GEO_POINT__INIT;
  p.latitude = 45.5017, p.longitude = -73.5673;
  q.near = &p;
  q.within_km = 20;
  q.sort = MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_DISTANCE;
  q.include_facets = true;
  q.time_zone = (char *)"America/Toronto";
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->total_size, 2);
  assert_string_equal(r->hits[0]->event_id, jazz.event_id);
  assert_string_equal(r->hits[1]->event_id, laval.event_id);
  assert_true(r->hits[1]->distance_km > 19.8 && r->hits[1]->distance_km < 20.0);
  for (size_t f = 0; f < r->n_facets; f++) {
    int64_t sum = 0;
    for (size_t b = 0; b < r->facets[f]->n_buckets; b++) sum += r->facets[f]->buckets[b]->count;
    assert_int_equal(sum, r->total_size);
  }
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  q.within_km = 19.8;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->total_size, 1);
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* the category's subtree and its names in every language: the jazz event is under Music, and "musique" finds it */
  req_t cq0 = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  cq0.category_id = cat_music;
  cq0.include_facets = true;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &cq0, &r, NULL, &err), MQ_OK);
  assert_true(has(r, jazz.event_id));
  assert_string_equal(r->facets[0]->name, "category");
  assert_string_equal(r->facets[0]->buckets[0]->value, cat_music);
  assert_string_equal(r->facets[0]->buckets[0]->label, "Music");
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  r = search("musique jazz ", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_true(has(r, jazz.event_id));
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* suggestions */
  Marquee__Search__V1__SuggestRequest sq = MARQUEE__SEARCH__V1__SUGGEST_REQUEST__INIT;
  sq.prefix = (char *)"blue no";
  Marquee__Search__V1__SuggestResponse *s = NULL;
  assert_int_equal(marquee__search__v1__search_service__suggest__call(c, &sq, &s, NULL, &err), MQ_OK);
  bool venue = false, title = false;
  for (size_t i = 0; i < s->n_suggestions; i++) {
    venue |= !strcmp(s->suggestions[i]->text, "Blue Note Lounge");
    title |= !strcmp(s->suggestions[i]->event_id, jazz.event_id);
  }
  assert_true(venue && title);
  marquee__search__v1__suggest_response__free_unpacked(s, NULL);
  /* freshness in /metrics and health */
  assert_true(mq_test_wait_metric(&srv, "marquee_search_index_events", 2, 5000));
  double stale = -1;
  for (int i = 0; i < 50 && !(stale >= 0 && stale < 5); i++) {
    if (i) mq_test_sleep_ms(100);
    stale = mq_test_metric(&srv, "marquee_search_index_staleness_seconds");
  }
  if (!(stale >= 0 && stale < 5)) fail_msg("staleness %.3f s", stale);
  int st;
  char *ready = mq_test_http_get(srv.http, "/readyz", &st);
  assert_non_null(strstr(ready, "\"search\":true"));
  free(ready);
  /* cancelled: gone within the freshness bound */
  Marquee__Catalog__V1__CancelEventRequest cq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  cq.event_id = laval.event_id;
  cq.reason = (char *)"Weather";
  mq_call_opts_t oo = {.bearer_token = organizer};
  Marquee__Catalog__V1__Event *ce = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(c, &cq, &ce, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(ce, NULL);
  lag = wait_for("folk ", laval.event_id, false, 20000);
  assert_true(lag >= 0);
  assert_true(lag <= 5000); /* within the freshness bound this server is configured with */
  printf("  cancelled → gone in %lld ms\n", (long long)lag);
}

/* A weekly series: each occurrence is an event of its own, searchable once the series is published. */
static void test_series_occurrences(void **state) {
  (void)state;
  Marquee__Catalog__V1__Event tmpl = MARQUEE__CATALOG__V1__EVENT__INIT;
  tmpl.organization_id = org;
  tmpl.title = (char *)"Weekly Swing Dance";
  tmpl.venue_id = venue_mtl;
  tmpl.currency = (char *)"CAD";
  tmpl.category_id = cat_music;
  Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT, *tts[1] = {&tt};
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.currency = (char *)"CAD";
  m.amount_minor = 1200;
  tt.name = (char *)"Entry";
  tt.price = &m;
  tt.capacity = 40;
  char first[32];
  time_t t = time(NULL) + 10 * 86400;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(first, sizeof first, "%Y-%m-%dT20:00", &tm);
  Marquee__Catalog__V1__CreateSeriesRequest q = MARQUEE__CATALOG__V1__CREATE_SERIES_REQUEST__INIT;
  q.template_event = &tmpl;
  q.ticket_types = tts;
  q.n_ticket_types = 1;
  q.first_start_local = first;
  q.duration_minutes = 120;
  q.rrule = (char *)"FREQ=WEEKLY;COUNT=3";
  mq_call_opts_t oo = {.bearer_token = organizer};
  Marquee__Catalog__V1__Series *sr = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__series_service__create_series__call(c, &q, &sr, &oo, &err), MQ_OK);
  assert_int_equal(sr->n_event_ids, 3);
  Marquee__Catalog__V1__PublishSeriesRequest pq = MARQUEE__CATALOG__V1__PUBLISH_SERIES_REQUEST__INIT;
  pq.series_id = sr->series_id;
  Marquee__Catalog__V1__SeriesChangeResponse *pr = NULL;
  assert_int_equal(marquee__catalog__v1__series_service__publish_series__call(c, &pq, &pr, &oo, &err), MQ_OK);
  marquee__catalog__v1__series_change_response__free_unpacked(pr, NULL);
  for (size_t i = 0; i < sr->n_event_ids; i++)
    assert_true(wait_for("swing dance ", sr->event_ids[i], true, 20000) >= 0);
  mq_code_t rc;
  resp_t *r = search("swing dance ", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_int_equal(r->total_size, 3);
  for (size_t i = 0; i < r->n_hits; i++) assert_string_equal(r->hits[i]->series_id, sr->series_id);
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  marquee__catalog__v1__series__free_unpacked(sr, NULL);
}

static int64_t sold_of(const char *query, const char *id) {
  mq_error_t err;
  mq_code_t rc;
  resp_t *r = search(query, &rc, &err);
  int64_t sold = -1;
  for (size_t i = 0; rc == MQ_OK && i < r->n_hits; i++)
    if (!strcmp(r->hits[i]->event_id, id)) sold = r->hits[i]->tickets_sold;
  if (r) marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  return sold;
}

/* A burst of events with the indexer SIGKILLed in the middle of it, and a
 * booking whose confirmation is delivered again after the restart. */
static void test_sigkill_loses_nothing(void **state) {
  (void)state;
  mq_fx_event_t free_ev = {0};
  event("Gratuit kermesse", "Free fair.", venue_mtl, 0, &free_ev);
  assert_true(wait_for("kermesse ", free_ev.event_id, true, 20000) >= 0);
  /* a free booking of 3 tickets */
  Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
  item.ticket_type_id = free_ev.tt[0];
  item.quantity = 3;
  Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  hq.event_id = free_ev.event_id;
  hq.items = items;
  hq.n_items = 1;
  mq_call_opts_t bo = {.bearer_token = buyer};
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err;
  assert_int_equal(marquee__bookings__v1__booking_service__create_hold__call(c, &hq, &h, &bo, &err), MQ_OK);
  Marquee__Bookings__V1__ConfirmHoldRequest cq = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
  cq.hold_id = h->hold_id;
  Marquee__Bookings__V1__Booking *b = NULL;
  assert_int_equal(marquee__bookings__v1__booking_service__confirm_hold__call(c, &cq, &b, &bo, &err), MQ_OK);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  int64_t t0 = mq_test_now_ms();
  while (sold_of("kermesse ", free_ev.event_id) != 3 && mq_test_now_ms() - t0 < 20000) mq_test_sleep_ms(50);
  assert_int_equal(sold_of("kermesse ", free_ev.event_id), 3);

  /* the burst, with the indexer killed after the first few */
  enum { N = 12 };
  mq_fx_event_t burst[N] = {0};
  char title[64];
  for (int i = 0; i < N; i++) {
    snprintf(title, sizeof title, "Burst concert %d", i);
    event(title, "burstword", venue_mtl, 1000 + i, &burst[i]);
    if (i == 3) assert_int_equal(mq_test_proc_stop(&idx, SIGKILL, 5000), 128 + SIGKILL);
  }
  assert_int_equal(mq_test_indexer_start(&idx, srv.db, index_path, false, NULL), 0);
  for (int i = 0; i < N; i++) assert_true(wait_for("burstword ", burst[i].event_id, true, 30000) >= 0);
  mq_code_t rc;
  resp_t *r = search("burstword ", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_int_equal(r->total_size, N);
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* the confirmation may have been read again: still 3 */
  assert_int_equal(sold_of("kermesse ", free_ev.event_id), 3);
}

/* Stop the indexer, rebuild from the log, and compare. */
static void test_rebuild_identical(void **state) {
  (void)state;
  mq_error_t err;
  mq_code_t rc;
  resp_t *before = search("concert ", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_true(before->total_size > 0);
  assert_int_equal(mq_test_proc_stop(&idx, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_indexer_start(&idx, srv.db, index_path, true, NULL), 0);
  /* the link moves to the new generation when it has caught up; wait for that */
  char link_before[512] = "", link_now[512] = "";
  ssize_t n = readlink(index_path, link_before, sizeof link_before - 1);
  assert_true(n > 0);
  int64_t t0 = mq_test_now_ms();
  do {
    mq_test_sleep_ms(100);
    n = readlink(index_path, link_now, sizeof link_now - 1);
    link_now[n > 0 ? n : 0] = 0;
  } while (!strcmp(link_now, link_before) && mq_test_now_ms() - t0 < 60000);
  assert_string_not_equal(link_now, link_before);
  mq_test_sleep_ms(1200); /* readers look at the link once a second */
  resp_t *after = search("concert ", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_int_equal(after->total_size, before->total_size);
  assert_int_equal(after->n_hits, before->n_hits);
  for (size_t i = 0; i < after->n_hits; i++) {
    assert_string_equal(after->hits[i]->event_id, before->hits[i]->event_id);
    assert_true(after->hits[i]->score == before->hits[i]->score);
    assert_int_equal(after->hits[i]->tickets_sold, before->hits[i]->tickets_sold);
  }
  marquee__search__v1__search_events_response__free_unpacked(before, NULL);
  marquee__search__v1__search_events_response__free_unpacked(after, NULL);
}

static void test_bad_input(void **state) {
  (void)state;
  mq_error_t err;
  /* every bad field at once */
  req_t q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  Marquee__Search__V1__GeoPoint p = MARQUEE__SEARCH__V1__GEO_POINT__INIT;
  p.latitude = 91, p.longitude = 10;
  q.near = &p;
  q.within_km = 501;
  q.min_price_minor = 100;
  q.time_zone = (char *)"Mars/Olympus";
  resp_t *r = NULL;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &q, &r, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_true(err.n_violations >= 4);
  const char *want[] = {"near.latitude", "within_km", "currency", "time_zone"};
  for (size_t w = 0; w < 4; w++) {
    bool seen = false;
    for (unsigned i = 0; i < err.n_violations; i++) seen |= !strcmp(err.violations[i].field, want[w]);
    if (!seen) fail_msg("no violation for %s", want[w]);
  }
  /* a distance sort without a point; a radius without a point */
  req_t d = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  d.sort = MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_DISTANCE;
  d.within_km = 5;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &d, &r, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 2);
  /* a 10,000-character query */
  char *big = malloc(10001);
  memset(big, 'a', 10000);
  big[10000] = 0;
  mq_code_t rc;
  r = search(big, &rc, &err);
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "query");
  free(big);
  /* FTS5 syntax is plain text: answered, never an FTS5 error */
  const char *syntax[] = {"\"", "jazz*", "NEAR(jazz night)", "title:jazz", "jazz -", "\"unbalanced", "a) OR (b", "^x"};
  for (size_t i = 0; i < sizeof syntax / sizeof *syntax; i++) {
    r = search(syntax[i], &rc, &err);
    if (rc != MQ_OK && !(rc == MQ_INVALID_ARGUMENT && !strcmp(err.field, "query")))
      fail_msg("%s: %s %s", syntax[i], mq_code_name(rc), err.message);
    if (r) marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  }
  /* only punctuation, no filter: nothing to search for */
  r = search("* : -", &rc, &err);
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "query");
  /* an empty query with no filter browses what is upcoming */
  r = search("", &rc, &err);
  assert_int_equal(rc, MQ_OK);
  assert_true(r->total_size > 0);
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* a page token of another query */
  req_t a = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  a.query = (char *)"burstword ";
  a.page_size = 2;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &a, &r, NULL, &err), MQ_OK);
  assert_true(r->next_page_token[0]);
  req_t b = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  b.query = (char *)"concert ";
  b.page_token = r->next_page_token;
  resp_t *r2 = NULL;
  assert_int_equal(marquee__search__v1__search_service__search_events__call(c, &b, &r2, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  /* Suggest: an empty prefix */
  Marquee__Search__V1__SuggestRequest sq = MARQUEE__SEARCH__V1__SUGGEST_REQUEST__INIT;
  sq.prefix = (char *)"";
  Marquee__Search__V1__SuggestResponse *s = NULL;
  assert_int_equal(marquee__search__v1__search_service__suggest__call(c, &sq, &s, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "prefix");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_published_searchable),
      cmocka_unit_test(test_series_occurrences),
      cmocka_unit_test(test_sigkill_loses_nothing),
      cmocka_unit_test(test_rebuild_identical),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
