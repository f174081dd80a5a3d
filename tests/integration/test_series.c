/*
 * test_series.c — marquee.catalog.v1.SeriesService end to end on the real
 * stack: a weekly rule across the Europe/Berlin DST changes keeps 19:30 local
 * (checked in UTC), explicit dates, the 500-occurrence cap, refusals naming
 * the field, every occurrence its own event with its own ticket type ids and
 * capacity, UpdateSeries THIS_AND_FUTURE / ALL_FUTURE (and what happens to an
 * occurrence edited on its own), PublishSeries reporting each occurrence,
 * CancelSeries cancelling only what has not started (EventCancelled and the
 * series events reaching the audit log), who may call what, public vs member
 * listings, an idempotent retry, the completion of an interrupted creation,
 * and AddOccurrences.
 */
#include <pthread.h>
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
#include "lib/mq_recur.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/series.mq-client.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "store/mq_store.h"

#define BERLIN "Europe/Berlin"
#define BULK_DEADLINE_MS 120000 /* calls on many occurrences: one store round trip or two each */
#define RES(x) MARQUEE__CATALOG__V1__OCCURRENCE_RESULT__OCCURRENCE_RESULT_##x
#define EST(x) MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_##x
#define SST(x) MARQUEE__CATALOG__V1__SERIES_STATE__SERIES_STATE_##x
#define THIS_AND_FUTURE MARQUEE__CATALOG__V1__SERIES_UPDATE_SCOPE__SERIES_UPDATE_SCOPE_THIS_AND_FUTURE
#define ALL_FUTURE MARQUEE__CATALOG__V1__SERIES_UPDATE_SCOPE__SERIES_UPDATE_SCOPE_ALL_FUTURE

typedef Marquee__Catalog__V1__Series series_t;
typedef Marquee__Catalog__V1__Event event_t;
typedef Marquee__Catalog__V1__SeriesChangeResponse change_t;

static mq_test_proc_t srv, audit;
static mq_client_t *cl;
static char org_id[64], owner_id[64], other_org[64];
static char *owner, *stranger, *stranger_owner;

static void make_org(const char *tok, const char *tag, char *out, size_t n) {
  Marquee__Identity__V1__CreateOrganizationRequest q = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "%s-%d", tag, (int)getpid());
  q.name = (char *)"Series Org";
  q.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  mq_call_opts_t co = {.bearer_token = tok};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(cl, &q, &o, &co, &err),
                   MQ_OK);
  snprintf(out, n, "%s", o->organization_id);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
}

static int setup(void **state) {
  (void)state;
  if (mq_test_server_start(&srv, NULL, NULL) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  snprintf(owner_id, sizeof owner_id, "00000000-0000-4000-8000-%012d", (int)getpid());
  owner = mq_test_token(owner_id, MQ_ROLE_ORGANIZER);
  stranger = mq_test_token("00000000-0000-4000-8000-0000000000aa", MQ_ROLE_ATTENDEE);
  stranger_owner = mq_test_token("00000000-0000-4000-8000-0000000000bb", MQ_ROLE_ORGANIZER);
  make_org(owner, "serorg", org_id, sizeof org_id);
  make_org(stranger_owner, "serother", other_org, sizeof other_org);
  return cl ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(owner);
  free(stranger);
  free(stranger_owner);
  mq_client_destroy(cl);
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return a == 0 && s == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* A CreateSeries request: an online weekly series at 19:30 Berlin time with
 * a public and a hidden ticket type. Points into itself: never copy it. */
typedef struct {
  Marquee__Catalog__V1__CreateSeriesRequest req;
  event_t tmpl;
  Marquee__Catalog__V1__TicketType tt[2], *tts[2];
  Marquee__Common__V1__Money price[2];
} sreq_t;

static void sreq_init(sreq_t *r, const char *org, const char *title) {
  marquee__catalog__v1__create_series_request__init(&r->req);
  marquee__catalog__v1__event__init(&r->tmpl);
  r->tmpl.organization_id = (char *)org;
  r->tmpl.title = (char *)title;
  r->tmpl.description_md = (char *)"Every week.";
  r->tmpl.online_url = (char *)"https://stream.example.com/weekly";
  r->tmpl.currency = (char *)"EUR";
  r->tmpl.capacity = 150;
  r->tmpl.attendee_cancel_cutoff_hours = 48; /* the cancellation policy reaches every occurrence */
  for (int i = 0; i < 2; i++) {
    marquee__catalog__v1__ticket_type__init(&r->tt[i]);
    marquee__common__v1__money__init(&r->price[i]);
    r->price[i].currency = (char *)"EUR";
    r->tt[i].price = &r->price[i];
    r->tts[i] = &r->tt[i];
  }
  r->tt[0].name = (char *)"General";
  r->price[0].amount_minor = 2500;
  r->tt[0].capacity = 100;
  r->tt[1].name = (char *)"Friends";
  r->price[1].amount_minor = 1000;
  r->tt[1].capacity = 10;
  r->tt[1].hidden = true;
  r->tt[1].access_code = (char *)"friends-only";
  r->req.template_event = &r->tmpl;
  r->req.ticket_types = r->tts;
  r->req.n_ticket_types = 2;
  r->req.first_start_local = (char *)"2035-03-14T19:30";
  r->req.time_zone = (char *)BERLIN;
  r->req.duration_minutes = 120;
  r->req.rrule = (char *)"FREQ=WEEKLY;COUNT=6";
}

static mq_code_t create_series(const char *tok, const sreq_t *r, series_t **out, mq_error_t *err) {
  mq_call_opts_t o = {.bearer_token = tok, .deadline_ms = BULK_DEADLINE_MS};
  *out = NULL;
  return marquee__catalog__v1__series_service__create_series__call(cl, &r->req, out, &o, err);
}

/* Creates the series and copies its ids (at most 16) into ids[][37]. */
static series_t *create_ok(const sreq_t *r, char ids[][37]) {
  series_t *s = NULL;
  mq_error_t err;
  mq_code_t rc = create_series(owner, r, &s, &err);
  if (rc != MQ_OK) fprintf(stderr, "CreateSeries: %s %s: %s\n", mq_code_name(rc), err.field, err.message);
  assert_int_equal(rc, MQ_OK);
  for (size_t i = 0; ids && i < s->n_event_ids && i < 16; i++) snprintf(ids[i], 37, "%s", s->event_ids[i]);
  return s;
}

static mq_code_t get_series(const char *tok, const char *id, series_t **out, mq_error_t *err) {
  Marquee__Catalog__V1__GetSeriesRequest q = MARQUEE__CATALOG__V1__GET_SERIES_REQUEST__INIT;
  q.series_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  *out = NULL;
  return marquee__catalog__v1__series_service__get_series__call(cl, &q, out, &o, err);
}

static event_t *get_event(const char *id) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = owner};
  event_t *e = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__get_event__call(cl, &q, &e, &o, &err), MQ_OK);
  return e;
}

static mq_code_t update_series(const char *tok, const char *series_id, event_t *values, const char *path, int scope,
                               const char *from, int64_t version, change_t **out, mq_error_t *err) {
  Marquee__Catalog__V1__UpdateSeriesRequest q = MARQUEE__CATALOG__V1__UPDATE_SERIES_REQUEST__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)path};
  mask.paths = paths;
  mask.n_paths = 1;
  q.series_id = (char *)series_id;
  q.template_event = values;
  q.update_mask = &mask;
  q.scope = (Marquee__Catalog__V1__SeriesUpdateScope)scope;
  q.from_event_id = (char *)(from ? from : "");
  q.version = version;
  mq_call_opts_t o = {.bearer_token = tok, .deadline_ms = BULK_DEADLINE_MS};
  *out = NULL;
  return marquee__catalog__v1__series_service__update_series__call(cl, &q, out, &o, err);
}

static mq_code_t publish_series(const char *tok, const char *id, change_t **out, mq_error_t *err) {
  Marquee__Catalog__V1__PublishSeriesRequest q = MARQUEE__CATALOG__V1__PUBLISH_SERIES_REQUEST__INIT;
  q.series_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok, .deadline_ms = BULK_DEADLINE_MS};
  *out = NULL;
  return marquee__catalog__v1__series_service__publish_series__call(cl, &q, out, &o, err);
}

static mq_code_t cancel_series(const char *tok, const char *id, const char *reason, change_t **out, mq_error_t *err) {
  Marquee__Catalog__V1__CancelSeriesRequest q = MARQUEE__CATALOG__V1__CANCEL_SERIES_REQUEST__INIT;
  q.series_id = (char *)id;
  q.reason = (char *)reason;
  mq_call_opts_t o = {.bearer_token = tok, .deadline_ms = BULK_DEADLINE_MS};
  *out = NULL;
  return marquee__catalog__v1__series_service__cancel_series__call(cl, &q, out, &o, err);
}

static mq_code_t list_occ(const char *tok, const char *id, uint32_t page, const char *token,
                          Marquee__Catalog__V1__ListEventsResponse **out, mq_error_t *err) {
  Marquee__Catalog__V1__ListSeriesOccurrencesRequest q = MARQUEE__CATALOG__V1__LIST_SERIES_OCCURRENCES_REQUEST__INIT;
  q.series_id = (char *)id;
  q.page_size = page;
  q.page_token = (char *)(token ? token : "");
  mq_call_opts_t o = {.bearer_token = tok};
  *out = NULL;
  return marquee__catalog__v1__series_service__list_series_occurrences__call(cl, &q, out, &o, err);
}

/* The outcome of `event_id` in r (NULL if not reported). */
static const Marquee__Catalog__V1__OccurrenceOutcome *outcome_of(const change_t *r, const char *event_id) {
  for (size_t i = 0; i < r->n_outcomes; i++)
    if (!strcmp(r->outcomes[i]->event_id, event_id)) return r->outcomes[i];
  return NULL;
}

/* "YYYY-MM-DDTHH:MM" in Berlin `days` from now, at 19:30 (or the present
 * minute - 1 h when days == 0, which is always in the past). */
static void local_day(int days, char out[17]) {
  char buf[32];
  time_t t = time(NULL) + (time_t)days * 86400;
  if (days == 0) t -= 3600;
  assert_int_equal(mq_utc_to_local((int64_t)t, BERLIN, buf, sizeof buf), 19);
  if (days == 0)
    snprintf(out, 17, "%.16s", buf);
  else
    snprintf(out, 17, "%.10sT19:30", buf);
}

static int64_t utc_of(const char *local) {
  int64_t t;
  mq_error_t err;
  assert_int_equal(mq_local_to_utc(local, "UTC", &t, &err), MQ_OK);
  return t;
}

static bool audit_count_is(const char *aggregate, const char *type, int64_t n) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"%s\"}", aggregate, type);
  /* the test's audit consumer starts at the shared topics' earliest offsets: allow for a backlog */
  int64_t until = mq_test_now_ms() + 180000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) < n && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  mq_test_sleep_ms(300); /* and no more than n */
  return mq_test_count(NULL, srv.db, "audit_log", filter) == n;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_weekly_rule_keeps_local_time_across_dst(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Weekly Jazz");
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  assert_int_equal(s->occurrence_count, 6);
  assert_int_equal(s->n_event_ids, 6);
  assert_int_equal(s->state, SST(ACTIVE));
  assert_int_equal(s->version, 1);
  assert_string_equal(s->time_zone, BERLIN);
  assert_string_equal(s->rrule, "FREQ=WEEKLY;COUNT=6");
  assert_string_equal(s->title, "Weekly Jazz");
  char series_id[37];
  snprintf(series_id, sizeof series_id, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);

  /* CET until Sunday 2035-03-25, CEST after: 19:30 local is 18:30Z, then 17:30Z */
  static const char *const utc[] = {"2035-03-14T18:30", "2035-03-21T18:30", "2035-03-28T17:30",
                                    "2035-04-04T17:30", "2035-04-11T17:30", "2035-04-18T17:30"};
  char seen_tt[12][64];
  size_t n_tt = 0;
  for (int i = 0; i < 6; i++) {
    event_t *e = get_event(ids[i]);
    assert_int_equal(e->starts_at->seconds, utc_of(utc[i]));
    assert_int_equal(e->ends_at->seconds - e->starts_at->seconds, 120 * 60);
    char local[32];
    assert_int_equal(mq_utc_to_local(e->starts_at->seconds, BERLIN, local, sizeof local), 19);
    assert_string_equal(local + 10, "T19:30:00");
    assert_string_equal(e->series_id, series_id);
    assert_string_equal(e->time_zone, BERLIN);
    assert_int_equal(e->state, EST(DRAFT));
    assert_int_equal(e->version, 1);
    assert_int_equal(e->capacity, 150);
    assert_int_equal(e->attendee_cancel_cutoff_hours, 48);
    assert_false(e->attendee_cancel_disabled);
    assert_string_equal(e->title, "Weekly Jazz");
    assert_int_equal(e->min_price_minor, 2500); /* the cheapest visible one */
    assert_int_equal(e->n_ticket_types, 2);
    for (size_t k = 0; k < e->n_ticket_types; k++) { /* every occurrence has its own ticket type ids */
      for (size_t j = 0; j < n_tt; j++) assert_string_not_equal(seen_tt[j], e->ticket_types[k]->ticket_type_id);
      snprintf(seen_tt[n_tt++], 64, "%s", e->ticket_types[k]->ticket_type_id);
      assert_string_equal(e->ticket_types[k]->access_code, "");
    }
    assert_int_equal(e->ticket_types[0]->capacity, 100);
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }

  /* its own capacity: changing one occurrence's ticket type leaves the others */
  Marquee__Catalog__V1__UpdateTicketTypeRequest uq = MARQUEE__CATALOG__V1__UPDATE_TICKET_TYPE_REQUEST__INIT;
  Marquee__Catalog__V1__TicketType t = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)"capacity"};
  mask.paths = paths;
  mask.n_paths = 1;
  t.ticket_type_id = seen_tt[2]; /* occurrence 2's "General" */
  t.capacity = 7;
  uq.event_id = ids[1];
  uq.ticket_type = &t;
  uq.update_mask = &mask;
  Marquee__Catalog__V1__TicketType *tr = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__event_service__update_ticket_type__call(cl, &uq, &tr, &oo, &err), MQ_OK);
  marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  event_t *e1 = get_event(ids[0]), *e2 = get_event(ids[1]);
  assert_int_equal(e1->ticket_types[0]->capacity, 100);
  assert_int_equal(e2->ticket_types[0]->capacity, 7);
  marquee__catalog__v1__event__free_unpacked(e1, NULL);
  marquee__catalog__v1__event__free_unpacked(e2, NULL);

  /* fall back (Sunday 2035-10-28): daily 19:30 is 17:30Z, then 18:30Z */
  sreq_init(&r, org_id, "Autumn nights");
  r.req.first_start_local = (char *)"2035-10-27T19:30";
  r.req.rrule = (char *)"FREQ=DAILY;COUNT=3";
  s = create_ok(&r, ids);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  static const char *const autumn[] = {"2035-10-27T17:30", "2035-10-28T18:30", "2035-10-29T18:30"};
  for (int i = 0; i < 3; i++) {
    event_t *e = get_event(ids[i]);
    assert_int_equal(e->starts_at->seconds, utc_of(autumn[i]));
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* the series is announced once, after its occurrences */
  assert_true(audit_count_is(series_id, "catalog.SeriesCreated", 1));
}

static void test_explicit_dates(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Three evenings");
  char *more[] = {(char *)"2035-05-15T20:00", (char *)"2035-05-08T20:00"}; /* any order */
  r.req.rrule = (char *)"";
  r.req.first_start_local = (char *)"2035-05-01T20:00";
  r.req.explicit_starts_local = more;
  r.req.n_explicit_starts_local = 2;
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  assert_int_equal(s->occurrence_count, 3);
  assert_string_equal(s->rrule, "");
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  static const char *const utc[] = {"2035-05-01T18:00", "2035-05-08T18:00", "2035-05-15T18:00"};
  for (int i = 0; i < 3; i++) {
    event_t *e = get_event(ids[i]);
    assert_int_equal(e->starts_at->seconds, utc_of(utc[i])); /* by start */
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* the same start twice, a start before the first */
  mq_error_t err;
  char *dup[] = {(char *)"2035-05-08T20:00", (char *)"2035-05-08T20:00"};
  r.req.explicit_starts_local = dup;
  assert_int_equal(create_series(owner, &r, &s, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "explicit_starts_local");
  char *early[] = {(char *)"2035-04-08T20:00"};
  r.req.explicit_starts_local = early;
  r.req.n_explicit_starts_local = 1;
  assert_int_equal(create_series(owner, &r, &s, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "explicit_starts_local");
  char *bad[] = {(char *)"2035-05-08 20:00"};
  r.req.explicit_starts_local = bad;
  assert_int_equal(create_series(owner, &r, &s, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "explicit_starts_local");
}

static void test_refusals_name_the_field(void **state) {
  (void)state;
  int64_t series_before = mq_test_count(NULL, srv.db, "series", "{}");
  int64_t events_before = mq_test_count(NULL, srv.db, "events", "{}");
  static const struct {
    int what;
    const char *field;
  } cases[] = {{0, "recurrence"},
               {1, "recurrence"},
               {2, "time_zone"},
               {3, "duration_minutes"},
               {4, "first_start_local"},
               {5, "rrule"},
               {6, "rrule"},
               {7, "title"},
               {8, "ticket_types.price.currency"},
               {9, "ticket_types.sales_end"},
               {10, "idempotency_key"},
               {11, "template_event.starts_at"},
               {12, "duration_minutes"},
               {13, "recurrence"},
               {14, "first_start_local"}};
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = 2000000000;
  char *one[] = {(char *)"2035-05-08T20:00"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sreq_t r;
    sreq_init(&r, org_id, "Refused");
    switch (cases[i].what) {
      case 0:
        r.req.rrule = (char *)"FREQ=DAILY;COUNT=501"; /* more than 500 occurrences */
        break;
      case 1:
        r.req.rrule = (char *)"FREQ=YEARLY;COUNT=3";
        break;
      case 2:
        r.req.time_zone = (char *)"Mars/Olympus";
        break;
      case 3:
        r.req.duration_minutes = 0;
        break;
      case 4:
        r.req.first_start_local = (char *)"2035-13-01T19:30";
        break;
      case 5:
        r.req.explicit_starts_local = one; /* both */
        r.req.n_explicit_starts_local = 1;
        break;
      case 6:
        r.req.rrule = (char *)""; /* neither */
        break;
      case 7:
        r.tmpl.title = (char *)"";
        break;
      case 8:
        r.price[0].currency = (char *)"USD";
        break;
      case 9:
        r.tt[0].sales_end = &ts;
        break;
      case 10:
        r.req.idempotency_key = (char *)"no spaces allowed";
        break;
      case 11:
        r.tmpl.starts_at = &ts;
        break;
      case 12:
        r.req.duration_minutes = 527041;
        break;
      case 13:
        r.req.rrule = (char *)"FREQ=WEEKLY;UNTIL=20350101"; /* before the first occurrence */
        break;
      case 14:
        r.req.first_start_local = (char *)"1999-03-14T19:30";
        break;
    }
    series_t *s = NULL;
    mq_error_t err;
    mq_code_t rc = create_series(owner, &r, &s, &err);
    if (rc != MQ_INVALID_ARGUMENT || strcmp(err.field, cases[i].field))
      fprintf(stderr, "case %d: %s %s: %s\n", cases[i].what, mq_code_name(rc), err.field, err.message);
    assert_int_equal(rc, MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, cases[i].field);
  }
  /* an UNTIL rule that goes past 500 too */
  sreq_t r;
  sreq_init(&r, org_id, "Forever");
  r.req.rrule = (char *)"FREQ=DAILY;UNTIL=20991231";
  series_t *s = NULL;
  mq_error_t err;
  assert_int_equal(create_series(owner, &r, &s, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "recurrence");
  /* nothing was written by the refusals */
  assert_int_equal(mq_test_count(NULL, srv.db, "series", "{}"), series_before);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", "{}"), events_before);

  /* who may create */
  assert_int_equal(create_series(NULL, &r, &s, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(create_series(stranger, &r, &s, &err), MQ_NOT_FOUND);       /* an attendee, not a member */
  assert_int_equal(create_series(stranger_owner, &r, &s, &err), MQ_NOT_FOUND); /* owner of another org */
}

static void test_update_this_and_future(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Salsa");
  r.req.rrule = (char *)"FREQ=WEEKLY;COUNT=6";
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  char sid[37];
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;

  /* occurrence 4 is edited on its own (title and description) */
  Marquee__Catalog__V1__UpdateEventRequest u = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
  event_t in = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)"title", (char *)"description_md"};
  mask.paths = paths;
  mask.n_paths = 2;
  in.title = (char *)"Salsa special";
  in.description_md = (char *)"With a live band.";
  u.event_id = ids[3];
  u.event = &in;
  u.update_mask = &mask;
  u.version = 1;
  event_t *e = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  /* occurrence 6 is cancelled on its own */
  Marquee__Catalog__V1__CancelEventRequest cq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  cq.event_id = ids[5];
  cq.reason = (char *)"Holiday";
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(cl, &cq, &e, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  event_t values = MARQUEE__CATALOG__V1__EVENT__INIT;
  values.title = (char *)"Salsa night";
  change_t *cr = NULL;
  /* refusals first: nothing changes */
  assert_int_equal(update_series(owner, sid, &values, "title", THIS_AND_FUTURE, ids[2], 7, &cr, &err), MQ_ABORTED);
  assert_string_equal(err.field, "version");
  assert_int_equal(update_series(owner, sid, &values, "starts_at", THIS_AND_FUTURE, ids[2], 1, &cr, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  assert_int_equal(update_series(owner, sid, &values, "currency", THIS_AND_FUTURE, ids[2], 1, &cr, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  assert_int_equal(update_series(owner, sid, &values, "title", 0, NULL, 1, &cr, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "scope");
  assert_int_equal(update_series(owner, sid, &values, "title", THIS_AND_FUTURE, owner_id, 1, &cr, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "from_event_id");
  values.title = (char *)"";
  assert_int_equal(update_series(owner, sid, &values, "title", THIS_AND_FUTURE, ids[2], 1, &cr, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "title");
  values.title = (char *)"Salsa night";
  assert_int_equal(update_series(stranger_owner, sid, &values, "title", THIS_AND_FUTURE, ids[2], 1, &cr, &err),
                   MQ_NOT_FOUND);
  assert_int_equal(update_series(NULL, sid, &values, "title", THIS_AND_FUTURE, ids[2], 1, &cr, &err),
                   MQ_UNAUTHENTICATED);

  /* from the 3rd occurrence on */
  assert_int_equal(update_series(owner, sid, &values, "title", THIS_AND_FUTURE, ids[2], 1, &cr, &err), MQ_OK);
  assert_int_equal(cr->series->version, 2);
  assert_string_equal(cr->series->title, "Salsa night");
  assert_int_equal(cr->n_outcomes, 4); /* occurrences 3..6 */
  assert_int_equal(cr->changed_count, 3);
  assert_int_equal(cr->skipped_count, 1);
  assert_int_equal(cr->failed_count, 0);
  assert_int_equal(outcome_of(cr, ids[2])->result, RES(CHANGED));
  assert_int_equal(outcome_of(cr, ids[2])->version, 2);
  assert_int_equal(outcome_of(cr, ids[3])->version, 3); /* it had its own edit */
  assert_int_equal(outcome_of(cr, ids[5])->result, RES(SKIPPED));
  assert_null(outcome_of(cr, ids[0]));
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  static const char *const want[] = {"Salsa", "Salsa", "Salsa night", "Salsa night", "Salsa night", "Salsa"};
  for (int i = 0; i < 6; i++) {
    e = get_event(ids[i]);
    assert_string_equal(e->title, want[i]);
    /* the occurrence edited on its own keeps the fields the series update did not name */
    assert_string_equal(e->description_md, i == 3 ? "With a live band." : "Every week.");
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* the stale series version now */
  assert_int_equal(update_series(owner, sid, &values, "title", THIS_AND_FUTURE, ids[2], 1, &cr, &err), MQ_ABORTED);
  /* and the series said so */
  assert_true(audit_count_is(sid, "catalog.SeriesUpdated", 1));
  assert_true(audit_count_is(ids[2], "catalog.EventUpdated", 1));

  /* the cancellation policy is a series field too: validated, then copied */
  values.attendee_cancel_cutoff_hours = 9000;
  assert_int_equal(
      update_series(owner, sid, &values, "attendee_cancel_cutoff_hours", THIS_AND_FUTURE, ids[2], 2, &cr, &err),
      MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "attendee_cancel_cutoff_hours");
  values.attendee_cancel_cutoff_hours = 24;
  assert_int_equal(
      update_series(owner, sid, &values, "attendee_cancel_cutoff_hours", THIS_AND_FUTURE, ids[2], 2, &cr, &err), MQ_OK);
  assert_int_equal(cr->changed_count, 3);
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  for (int i = 0; i < 5; i++) {
    e = get_event(ids[i]);
    assert_int_equal(e->attendee_cancel_cutoff_hours, i < 2 ? 48 : 24);
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
}

/* Edits one occurrence's description on its own, over and over, while the
 * main thread runs a series update of the title. */
typedef struct {
  const char *event_id;
  volatile int stop;
  volatile int edits, conflicts;
  char last[64]; /* the description of the last successful edit */
} editor_t;

static void *edit_loop(void *arg) {
  editor_t *ed = arg;
  mq_call_opts_t oo = {.bearer_token = owner};
  for (int i = 0; !ed->stop && i < 2000; i++) {
    Marquee__Catalog__V1__GetEventRequest gq = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
    gq.event_id = (char *)ed->event_id;
    event_t *e = NULL;
    mq_error_t err;
    if (marquee__catalog__v1__event_service__get_event__call(cl, &gq, &e, &oo, &err) != MQ_OK) break;
    Marquee__Catalog__V1__UpdateEventRequest u = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
    event_t in = MARQUEE__CATALOG__V1__EVENT__INIT;
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    char *paths[] = {(char *)"description_md"}, text[64];
    snprintf(text, sizeof text, "Edit number %d", i);
    mask.paths = paths;
    mask.n_paths = 1;
    in.description_md = text;
    u.event_id = (char *)ed->event_id;
    u.event = &in;
    u.update_mask = &mask;
    u.version = e->version;
    marquee__catalog__v1__event__free_unpacked(e, NULL);
    e = NULL;
    mq_code_t rc = marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err);
    if (rc == MQ_OK) {
      ed->edits++;
      snprintf(ed->last, sizeof ed->last, "%s", text);
      marquee__catalog__v1__event__free_unpacked(e, NULL);
    } else if (rc == MQ_ABORTED) {
      ed->conflicts++; /* the series update came in between: read again */
    } else {
      break;
    }
    mq_test_sleep_ms(15); /* a person, not a flood: FerretDB's SQLite serialises writers */
  }
  return NULL;
}

/* The concurrency rule: a series update and single-occurrence edits never
 * overwrite each other, whatever the interleaving (each save names the
 * version it read; the series update re-reads and re-applies once). */
static void test_series_update_races_single_edits(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Race");
  r.req.rrule = (char *)"FREQ=DAILY;COUNT=24";
  r.req.first_start_local = (char *)"2035-07-01T19:30";
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  char sid[37];
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  editor_t ed = {.event_id = ids[12]};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, edit_loop, &ed), 0);
  for (int i = 0; i < 400 && ed.edits < 3; i++) mq_test_sleep_ms(5);
  event_t values = MARQUEE__CATALOG__V1__EVENT__INIT;
  values.title = (char *)"Race (new title)";
  change_t *cr = NULL;
  mq_error_t err;
  mq_code_t rc = update_series(owner, sid, &values, "title", THIS_AND_FUTURE, ids[0], 1, &cr, &err);
  mq_test_sleep_ms(100);
  ed.stop = 1;
  pthread_join(th, NULL); /* no assertion may fail while the editor runs */
  if (rc != MQ_OK) fprintf(stderr, "UpdateSeries: %s %s: %s\n", mq_code_name(rc), err.field, err.message);
  assert_int_equal(rc, MQ_OK);
  assert_int_equal(cr->n_outcomes, 24);
  const Marquee__Catalog__V1__OccurrenceOutcome *o = outcome_of(cr, ids[12]);
  assert_true(o->result == RES(CHANGED) || (o->result == RES(FAILED) && !strcmp(o->code, "ABORTED")));
  assert_int_equal(cr->changed_count + cr->failed_count, 24);
  event_t *e = get_event(ids[12]);
  assert_string_equal(e->description_md, ed.last); /* the single edits all stayed */
  /* the series' title where its save went through, the old one where it was reported ABORTED */
  assert_string_equal(e->title, o->result == RES(CHANGED) ? "Race (new title)" : "Race");
  print_message("series update vs %d single edits (%d ABORTED for the editor): occurrence %s\n", ed.edits, ed.conflicts,
                o->result == RES(CHANGED) ? "updated" : "reported ABORTED");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  e = get_event(ids[13]);
  assert_string_equal(e->title, "Race (new title)");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
}

static void test_all_future_publish_cancel_and_listing(void **state) {
  (void)state;
  /* one occurrence already started (an hour ago), three to come */
  char past[17], d1[17], d2[17], d3[17];
  local_day(0, past);
  local_day(10, d1);
  local_day(17, d2);
  local_day(24, d3);
  char *more[] = {d1, d2, d3};
  sreq_t r;
  sreq_init(&r, org_id, "Readings");
  r.req.rrule = (char *)"";
  r.req.first_start_local = past;
  r.req.explicit_starts_local = more;
  r.req.n_explicit_starts_local = 3;
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  char sid[37];
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  change_t *cr = NULL;

  /* ALL_FUTURE: the started one keeps its description */
  event_t values = MARQUEE__CATALOG__V1__EVENT__INIT;
  values.description_md = (char *)"Now with discussion.";
  assert_int_equal(update_series(owner, sid, &values, "description_md", ALL_FUTURE, NULL, 1, &cr, &err), MQ_OK);
  assert_int_equal(cr->n_outcomes, 3);
  assert_int_equal(cr->changed_count, 3);
  assert_null(outcome_of(cr, ids[0]));
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  event_t *e = get_event(ids[0]);
  assert_string_equal(e->description_md, "Every week.");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  e = get_event(ids[1]);
  assert_string_equal(e->description_md, "Now with discussion.");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  /* occurrence 3 loses its ticket types: it cannot be published */
  e = get_event(ids[2]);
  for (size_t k = 0; k < e->n_ticket_types; k++) {
    Marquee__Catalog__V1__DeleteTicketTypeRequest dq = MARQUEE__CATALOG__V1__DELETE_TICKET_TYPE_REQUEST__INIT;
    dq.event_id = ids[2];
    dq.ticket_type_id = e->ticket_types[k]->ticket_type_id;
    Marquee__Catalog__V1__DeleteTicketTypeResponse *dr = NULL;
    assert_int_equal(marquee__catalog__v1__event_service__delete_ticket_type__call(cl, &dq, &dr, &oo, &err), MQ_OK);
    marquee__catalog__v1__delete_ticket_type_response__free_unpacked(dr, NULL);
  }
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  /* before publishing, the public sees nothing, members everything */
  Marquee__Catalog__V1__ListEventsResponse *lr = NULL;
  assert_int_equal(list_occ(NULL, sid, 0, NULL, &lr, &err), MQ_OK);
  assert_int_equal(lr->n_events, 0);
  marquee__catalog__v1__list_events_response__free_unpacked(lr, NULL);

  /* who may publish */
  assert_int_equal(publish_series(stranger, sid, &cr, &err), MQ_NOT_FOUND);
  assert_int_equal(publish_series(stranger_owner, sid, &cr, &err), MQ_NOT_FOUND);
  assert_int_equal(publish_series(NULL, sid, &cr, &err), MQ_UNAUTHENTICATED);
  /* publish: each occurrence reported */
  assert_int_equal(publish_series(owner, sid, &cr, &err), MQ_OK);
  assert_int_equal(cr->n_outcomes, 4);
  assert_int_equal(cr->changed_count, 2);
  assert_int_equal(cr->failed_count, 2);
  assert_int_equal(outcome_of(cr, ids[0])->result, RES(FAILED));
  assert_string_equal(outcome_of(cr, ids[0])->field, "starts_at");
  assert_string_equal(outcome_of(cr, ids[0])->code, "FAILED_PRECONDITION");
  assert_int_equal(outcome_of(cr, ids[2])->result, RES(FAILED));
  assert_string_equal(outcome_of(cr, ids[2])->field, "ticket_types");
  assert_int_equal(outcome_of(cr, ids[1])->result, RES(CHANGED));
  assert_int_equal(outcome_of(cr, ids[3])->result, RES(CHANGED));
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  assert_int_equal(publish_series(owner, sid, &cr, &err), MQ_OK); /* again: nothing new */
  assert_int_equal(cr->changed_count, 0);
  assert_int_equal(cr->skipped_count, 2);
  assert_int_equal(cr->failed_count, 2);
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  assert_true(audit_count_is(ids[1], "catalog.EventPublished", 1));

  /* public: the published occurrences, without the online URL or hidden ticket types */
  assert_int_equal(list_occ(NULL, sid, 0, NULL, &lr, &err), MQ_OK);
  assert_int_equal(lr->n_events, 2);
  assert_string_equal(lr->events[0]->event_id, ids[1]);
  assert_string_equal(lr->events[1]->event_id, ids[3]);
  assert_string_equal(lr->events[0]->online_url, "");
  assert_int_equal(lr->events[0]->n_ticket_types, 1);
  marquee__catalog__v1__list_events_response__free_unpacked(lr, NULL);
  assert_int_equal(list_occ(stranger_owner, sid, 0, NULL, &lr, &err), MQ_OK); /* another org: public view */
  assert_int_equal(lr->n_events, 2);
  marquee__catalog__v1__list_events_response__free_unpacked(lr, NULL);
  /* members: all four, one page at a time, by start */
  char token[128] = "";
  for (int i = 0; i < 4; i++) {
    assert_int_equal(list_occ(owner, sid, 1, token, &lr, &err), MQ_OK);
    assert_int_equal(lr->n_events, 1);
    assert_string_equal(lr->events[0]->event_id, ids[i]);
    assert_string_equal(lr->events[0]->online_url, "https://stream.example.com/weekly");
    snprintf(token, sizeof token, "%s", lr->next_page_token);
    marquee__catalog__v1__list_events_response__free_unpacked(lr, NULL);
    if (i < 3) assert_true(token[0]);
  }
  assert_string_equal(token, "");
  assert_int_equal(list_occ(owner, sid, 1, "garbage", &lr, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  assert_int_equal(list_occ(NULL, "not-a-uuid", 1, NULL, &lr, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(list_occ(NULL, owner_id, 1, NULL, &lr, &err), MQ_NOT_FOUND);

  /* GetSeries: members only */
  series_t *g = NULL;
  assert_int_equal(get_series(stranger, sid, &g, &err), MQ_NOT_FOUND);
  assert_int_equal(get_series(stranger_owner, sid, &g, &err), MQ_NOT_FOUND);
  assert_int_equal(get_series(NULL, sid, &g, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(get_series(owner, sid, &g, &err), MQ_OK);
  assert_int_equal(g->occurrence_count, 4);
  marquee__catalog__v1__series__free_unpacked(g, NULL);

  /* cancel: the three to come (published or draft), not the started one */
  assert_int_equal(cancel_series(owner, sid, "", &cr, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "reason");
  assert_int_equal(cancel_series(stranger_owner, sid, "Nope", &cr, &err), MQ_NOT_FOUND);
  assert_int_equal(cancel_series(owner, sid, "The author is ill", &cr, &err), MQ_OK);
  assert_int_equal(cr->series->state, SST(CANCELLED));
  assert_string_equal(cr->series->cancel_reason, "The author is ill");
  assert_int_equal(cr->n_outcomes, 3);
  assert_int_equal(cr->changed_count, 3);
  assert_null(outcome_of(cr, ids[0]));
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  static const int want[] = {EST(DRAFT), EST(CANCELLED), EST(CANCELLED), EST(CANCELLED)};
  for (int i = 0; i < 4; i++) {
    e = get_event(ids[i]);
    assert_int_equal(e->state, want[i]);
    if (i) assert_string_equal(e->cancel_reason, "The author is ill");
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* again: nothing left to do; a cancelled series takes no updates */
  assert_int_equal(cancel_series(owner, sid, "The author is ill", &cr, &err), MQ_OK);
  assert_int_equal(cr->changed_count, 0);
  assert_int_equal(cr->skipped_count, 3);
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  assert_int_equal(update_series(owner, sid, &values, "description_md", ALL_FUTURE, NULL, 2, &cr, &err),
                   MQ_FAILED_PRECONDITION);
  assert_int_equal(publish_series(owner, sid, &cr, &err), MQ_FAILED_PRECONDITION);
  /* EventCancelled (bookings and payments react) and the series' own event went out */
  for (int i = 1; i < 4; i++) assert_true(audit_count_is(ids[i], "catalog.EventCancelled", 1));
  assert_true(audit_count_is(ids[0], "catalog.EventCancelled", 0));
  assert_true(audit_count_is(sid, "catalog.SeriesUpdated", 2)); /* the ALL_FUTURE update and the cancellation */
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.EventCancelled\"}", ids[1]);
  void *data = NULL;
  size_t len = 0;
  assert_true(mq_test_find_binary(srv.db, "audit_log", filter, "envelope", &data, &len));
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  free(data);
  assert_non_null(ev);
  assert_int_equal(ev->payload_case, MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_CANCELLED);
  assert_string_equal(ev->event_cancelled->event_id, ids[1]);
  assert_string_equal(ev->event_cancelled->organization_id, org_id);
  assert_string_equal(ev->event_cancelled->reason, "The author is ill");
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
}

/* Waits until the relay delivered every event of the document (none left
 * in the journal): a test that rewrites it wants them published first. */
static void wait_delivered(const char *coll, const char *id) {
  char filter[200];
  snprintf(filter, sizeof filter, "{\"coll\": \"%s\", \"doc\": \"%s\"}", coll, id);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "outbox", filter) != 0 && mq_test_now_ms() < until) mq_test_sleep_ms(100);
  assert_int_equal(mq_test_count(NULL, srv.db, "outbox", filter), 0);
}

/* Sets a series back to the state a crash after its first `keep` event
 * inserts leaves (series_store.h): CREATING at version 0, every occurrence
 * pending, the later events missing. */
static void simulate_crash(const char *sid, char ids[][37], size_t n, size_t keep) {
  wait_delivered("series", sid);
  for (size_t i = 0; i < n; i++) wait_delivered("events", ids[i]);
  mq_store_t *st = NULL;
  mq_error_t err;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), srv.db, 2, &st, &err), MQ_OK);
  for (size_t i = keep; i < n; i++) {
    bson_t sel = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sel, "_id", ids[i]);
    int64_t deleted = 0;
    assert_int_equal(mq_store_delete(st, "events", &sel, false, &deleted, &err), MQ_OK);
    assert_int_equal(deleted, 1);
    bson_destroy(&sel);
  }
  mq_store_close(st);
  char filter[128], update[1024];
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\"}", sid);
  int off = snprintf(update, sizeof update,
                     "{\"$set\": {\"state\": 1, \"version\": {\"$numberLong\": \"0\"}, \"pending\": \"created\", "
                     "\"pending_event_ids\": [");
  for (size_t i = 0; i < n; i++)
    off += snprintf(update + off, sizeof update - (size_t)off, "%s\"%s\"", i ? "," : "", ids[i]);
  snprintf(update + off, sizeof update - (size_t)off, "]}}");
  assert_int_equal(mq_test_update(srv.db, "series", filter, update), 1);
}

static void test_idempotent_retry_completes_an_interrupted_creation(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Retried");
  r.req.rrule = (char *)"FREQ=MONTHLY;BYDAY=1FR;COUNT=5";
  r.req.first_start_local = (char *)"2035-01-05T19:30";
  r.req.idempotency_key = (char *)"create-retried-1";
  char ids[16][37], again[16][37];
  series_t *s = create_ok(&r, ids);
  char sid[37];
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  char filter[128];
  snprintf(filter, sizeof filter, "{\"series_id\": \"%s\"}", sid);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", filter), 5);

  /* the same request again: the same series, no new events */
  s = create_ok(&r, again);
  assert_string_equal(s->series_id, sid);
  for (int i = 0; i < 5; i++) assert_string_equal(again[i], ids[i]);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", filter), 5);
  /* the key with another request */
  mq_error_t err;
  r.tmpl.title = (char *)"Something else";
  assert_int_equal(create_series(owner, &r, &s, &err), MQ_ALREADY_EXISTS);
  assert_string_equal(err.field, "idempotency_key");
  r.tmpl.title = (char *)"Retried";

  /* a crash after 2 of 5 inserts: readers see CREATING; the retry finishes it */
  simulate_crash(sid, ids, 5, 2);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", filter), 2);
  assert_int_equal(get_series(owner, sid, &s, &err), MQ_OK);
  assert_int_equal(s->state, SST(CREATING));
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  s = create_ok(&r, again);
  assert_int_equal(s->state, SST(ACTIVE));
  assert_int_equal(s->version, 1);
  for (int i = 0; i < 5; i++) assert_string_equal(again[i], ids[i]); /* the same ids */
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", filter), 5);
  /* SeriesCreated of the completion has the first one's id: the audit log holds it once */
  assert_true(audit_count_is(sid, "catalog.SeriesCreated", 1));
  assert_true(audit_count_is(ids[4], "catalog.EventCreated", 2)); /* created twice (after the simulated loss) */

  /* without a key, the next write on the series completes it */
  sreq_init(&r, org_id, "Completed by a write");
  r.req.rrule = (char *)"FREQ=WEEKLY;COUNT=4";
  r.req.first_start_local = (char *)"2035-06-06T19:30";
  s = create_ok(&r, ids);
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  snprintf(filter, sizeof filter, "{\"series_id\": \"%s\"}", sid);
  simulate_crash(sid, ids, 4, 1);
  change_t *cr = NULL;
  assert_int_equal(publish_series(owner, sid, &cr, &err), MQ_OK);
  assert_int_equal(cr->series->state, SST(ACTIVE));
  assert_int_equal(cr->changed_count, 4);
  marquee__catalog__v1__series_change_response__free_unpacked(cr, NULL);
  assert_int_equal(mq_test_count(NULL, srv.db, "events", filter), 4);
}

static void test_add_occurrences(void **state) {
  (void)state;
  sreq_t r;
  sreq_init(&r, org_id, "Growing");
  r.req.rrule = (char *)"FREQ=WEEKLY;COUNT=2";
  r.req.first_start_local = (char *)"2035-09-05T19:30";
  char ids[16][37];
  series_t *s = create_ok(&r, ids);
  char sid[37];
  snprintf(sid, sizeof sid, "%s", s->series_id);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  Marquee__Catalog__V1__AddOccurrencesRequest q = MARQUEE__CATALOG__V1__ADD_OCCURRENCES_REQUEST__INIT;
  char *starts[] = {(char *)"2035-09-01T18:00", (char *)"2035-12-24T17:00"};
  q.series_id = sid;
  q.starts_local = starts;
  q.n_starts_local = 2;
  q.version = 1;
  mq_call_opts_t oo = {.bearer_token = owner}, os = {.bearer_token = stranger_owner};
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__series_service__add_occurrences__call(cl, &q, &s, &os, &err), MQ_NOT_FOUND);
  assert_int_equal(marquee__catalog__v1__series_service__add_occurrences__call(cl, &q, &s, &oo, &err), MQ_OK);
  assert_int_equal(s->occurrence_count, 4);
  assert_int_equal(s->state, SST(ACTIVE));
  assert_int_equal(s->version, 3); /* planned, then complete */
  for (int i = 0; i < 4; i++) snprintf(ids[i], 37, "%s", s->event_ids[i]);
  marquee__catalog__v1__series__free_unpacked(s, NULL);
  static const char *const utc[] = {"2035-09-01T16:00", "2035-09-05T17:30", "2035-09-12T17:30", "2035-12-24T16:00"};
  for (int i = 0; i < 4; i++) { /* by start, each with the series' template */
    event_t *e = get_event(ids[i]);
    assert_int_equal(e->starts_at->seconds, utc_of(utc[i]));
    assert_string_equal(e->series_id, sid);
    assert_string_equal(e->title, "Growing");
    assert_int_equal(e->n_ticket_types, 2);
    marquee__catalog__v1__event__free_unpacked(e, NULL);
  }
  /* stale version; a start the series already has */
  assert_int_equal(marquee__catalog__v1__series_service__add_occurrences__call(cl, &q, &s, &oo, &err), MQ_ABORTED);
  q.version = 3;
  char *dup[] = {(char *)"2035-09-12T19:30"};
  q.starts_local = dup;
  q.n_starts_local = 1;
  assert_int_equal(marquee__catalog__v1__series_service__add_occurrences__call(cl, &q, &s, &oo, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "starts_local");
  assert_true(audit_count_is(sid, "catalog.SeriesUpdated", 1)); /* "occurrences_added" */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weekly_rule_keeps_local_time_across_dst),
      cmocka_unit_test(test_explicit_dates),
      cmocka_unit_test(test_refusals_name_the_field),
      cmocka_unit_test(test_update_this_and_future),
      cmocka_unit_test(test_series_update_races_single_edits),
      cmocka_unit_test(test_all_future_publish_cancel_and_listing),
      cmocka_unit_test(test_idempotent_retry_completes_an_interrupted_creation),
      cmocka_unit_test(test_add_occurrences),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
