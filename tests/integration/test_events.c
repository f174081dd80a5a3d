/*
 * test_events.c — marquee.catalog.v1.EventService end to end: drafts,
 * validation naming fields, ticket types priced in the event's currency,
 * publishing's completeness checks, the state machine, optimistic
 * concurrency (ABORTED on a stale version), what the public sees (no drafts,
 * no online URL, no hidden ticket types), who may change what, discovery
 * with filters and a cursor that stays stable while events are added, and
 * the events reaching the audit log through Kafka.
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
#include "marquee/catalog/v1/venues.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define DAY_MS 86400000LL

static int64_t unix_ms(void) { /* mq_test_now_ms is monotonic */
  return (int64_t)time(NULL) * 1000;
}

static mq_test_proc_t srv, audit;
static mq_client_t *cl;
static char org_id[64], owner_id[64], other_org[64];
static char *owner, *stranger, *stranger_owner;

static void make_org(const char *tok, const char *tag, char *out, size_t n) {
  Marquee__Identity__V1__CreateOrganizationRequest q = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "%s-%d", tag, (int)getpid());
  q.name = (char *)"Test Org";
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
  make_org(owner, "evorg", org_id, sizeof org_id);
  make_org(stranger_owner, "other", other_org, sizeof other_org);
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

static Google__Protobuf__Timestamp ts_at(int64_t ms) {
  Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  t.seconds = ms / 1000;
  return t;
}

typedef struct {
  Marquee__Catalog__V1__Event ev;
  Google__Protobuf__Timestamp s, e;
} draft_t;

static void draft_init(draft_t *d, const char *org, const char *title, int64_t start_ms) {
  marquee__catalog__v1__event__init(&d->ev);
  d->s = ts_at(start_ms);
  d->e = ts_at(start_ms + 3 * 3600000LL);
  d->ev.organization_id = (char *)org;
  d->ev.title = (char *)title;
  d->ev.description_md = (char *)"# Welcome\nBring a friend.";
  d->ev.online_url = (char *)"https://stream.example.com/live/123";
  d->ev.starts_at = &d->s;
  d->ev.ends_at = &d->e;
  d->ev.time_zone = (char *)"Europe/Berlin";
  d->ev.currency = (char *)"EUR";
}

static mq_code_t create(const char *tok, const Marquee__Catalog__V1__Event *e, Marquee__Catalog__V1__Event **out,
                        mq_error_t *err) {
  Marquee__Catalog__V1__CreateEventRequest q = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  q.event = (Marquee__Catalog__V1__Event *)e;
  mq_call_opts_t o = {.bearer_token = tok};
  return marquee__catalog__v1__event_service__create_event__call(cl, &q, out, &o, err);
}

static mq_code_t get(const char *tok, const char *id, Marquee__Catalog__V1__Event **out, mq_error_t *err) {
  Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  return marquee__catalog__v1__event_service__get_event__call(cl, &q, out, &o, err);
}

static mq_code_t add_tt(const char *tok, const char *event_id, const char *name, int64_t price, const char *cur,
                        int64_t cap, bool hidden, const char *code, mq_error_t *err) {
  Marquee__Catalog__V1__CreateTicketTypeRequest q = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
  Marquee__Catalog__V1__TicketType t = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.amount_minor = price;
  m.currency = (char *)cur;
  t.name = (char *)name;
  t.price = &m;
  t.capacity = cap;
  t.hidden = hidden;
  t.access_code = (char *)(code ? code : "");
  q.event_id = (char *)event_id;
  q.ticket_type = &t;
  Marquee__Catalog__V1__TicketType *r = NULL;
  mq_call_opts_t o = {.bearer_token = tok};
  mq_code_t rc = marquee__catalog__v1__event_service__create_ticket_type__call(cl, &q, &r, &o, err);
  if (r) {
    assert_string_equal(r->access_code, ""); /* never returned */
    marquee__catalog__v1__ticket_type__free_unpacked(r, NULL);
  }
  return rc;
}

static mq_code_t publish(const char *tok, const char *id, mq_error_t *err) {
  Marquee__Catalog__V1__PublishEventRequest q = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  q.event_id = (char *)id;
  Marquee__Catalog__V1__Event *r = NULL;
  mq_call_opts_t o = {.bearer_token = tok};
  mq_code_t rc = marquee__catalog__v1__event_service__publish_event__call(cl, &q, &r, &o, err);
  if (r) marquee__catalog__v1__event__free_unpacked(r, NULL);
  return rc;
}

/* A published online event in `org` starting at start_ms with one ticket type. */
static void published(const char *org, const char *title, int64_t start_ms, int64_t price, char *id, size_t n) {
  draft_t d;
  draft_init(&d, org, title, start_ms);
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  snprintf(id, n, "%s", e->event_id);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(add_tt(owner, id, "General", price, "EUR", 100, false, NULL, &err), MQ_OK);
  assert_int_equal(publish(owner, id, &err), MQ_OK);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_draft_validation(void **state) {
  (void)state;
  int64_t start = unix_ms() + 30 * DAY_MS;
  draft_t d;
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  static const struct {
    const char *field;
    int what;
  } cases[] = {{"ends_at", 0},    {"currency", 1}, {"time_zone", 2}, {"title", 3},   {"tags", 4},
               {"online_url", 5}, {"capacity", 6}, {"title", 7},     {"venue_id", 8}};
  char *bad_tags[] = {(char *)"Has Spaces"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    draft_init(&d, org_id, "Valid", start);
    switch (cases[i].what) {
      case 0:
        d.e = ts_at(start - 1000);
        break;
      case 1:
        d.ev.currency = (char *)"EURO";
        break;
      case 2:
        d.ev.time_zone = (char *)"Mars/Olympus";
        break;
      case 3:
        d.ev.title = (char *)"";
        break;
      case 4:
        d.ev.tags = bad_tags;
        d.ev.n_tags = 1;
        break;
      case 5:
        d.ev.online_url = (char *)"http://insecure.example.com/";
        break;
      case 6:
        d.ev.capacity = -1;
        break;
      case 7:
        d.ev.title = (char *)"bad \xff utf8";
        break;
      case 8:
        d.ev.venue_id = (char *)"00000000-0000-4000-8000-000000000123";
        break;
    }
    assert_int_equal(create(owner, &d.ev, &e, &err), MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, cases[i].field);
  }
  /* every bad field is reported at once (google.rpc.BadRequest), the
   * first one in the message */
  draft_init(&d, org_id, "Valid", start);
  d.ev.title = (char *)"";
  d.ev.online_url = (char *)"http://insecure.example.com/";
  d.ev.capacity = -1;
  d.ev.currency = (char *)"EURO";
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "title");
  assert_int_equal(err.n_violations, 4);
  const char *want[] = {"title", "online_url", "capacity", "currency"};
  for (int i = 0; i < 4; i++) {
    assert_string_equal(err.violations[i].field, want[i]);
    assert_true(err.violations[i].description[0]);
  }
  assert_non_null(strstr(err.message, "3 more invalid fields"));
  /* who may create */
  draft_init(&d, org_id, "Valid", start);
  assert_int_equal(create(NULL, &d.ev, &e, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(create(stranger, &d.ev, &e, &err), MQ_NOT_FOUND);       /* not a member */
  assert_int_equal(create(stranger_owner, &d.ev, &e, &err), MQ_NOT_FOUND); /* owner elsewhere */
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  assert_int_equal(e->state, MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_DRAFT);
  assert_int_equal(e->version, 1);
  assert_int_equal(e->attendance_mode, MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
}

static void test_life_cycle_and_visibility(void **state) {
  (void)state;
  draft_t d;
  draft_init(&d, org_id, "Launch Party", unix_ms() + 10 * DAY_MS);
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  char id[64];
  snprintf(id, sizeof id, "%s", e->event_id);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  /* drafts are invisible to the public and to other organizations */
  assert_int_equal(get(NULL, id, &e, &err), MQ_NOT_FOUND);
  assert_int_equal(get(stranger_owner, id, &e, &err), MQ_NOT_FOUND);
  assert_int_equal(get(NULL, "not-a-uuid", &e, &err), MQ_INVALID_ARGUMENT);
  /* publishing needs a ticket type */
  assert_int_equal(publish(owner, id, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "ticket_types");
  /* ticket types: the event's currency, sane numbers, hidden ones need a code */
  assert_int_equal(add_tt(owner, id, "Std", 2500, "USD", 100, false, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "ticket_type.price.currency");
  assert_int_equal(add_tt(owner, id, "Std", -1, "EUR", 100, false, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(add_tt(owner, id, "Std", 2500, "EUR", 0, false, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "ticket_type.capacity");
  assert_int_equal(add_tt(owner, id, "VIP", 9900, "EUR", 10, true, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "ticket_type.access_code");
  /* every bad field of a ticket type at once, in order */
  assert_int_equal(add_tt(owner, id, "", 2500, "USD", 0, false, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 3);
  assert_string_equal(err.violations[0].field, "ticket_type.name");
  assert_string_equal(err.violations[1].field, "ticket_type.price.currency");
  assert_string_equal(err.violations[2].field, "ticket_type.capacity");
  assert_int_equal(add_tt(stranger_owner, id, "Std", 2500, "EUR", 100, false, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(add_tt(owner, id, "Std", 2500, "EUR", 100, false, NULL, &err), MQ_OK);
  assert_int_equal(add_tt(owner, id, "VIP", 9900, "EUR", 10, true, "friends-only", &err), MQ_OK);
  assert_int_equal(publish(stranger, id, &err), MQ_NOT_FOUND);
  assert_int_equal(publish(owner, id, &err), MQ_OK);
  assert_int_equal(publish(owner, id, &err), MQ_FAILED_PRECONDITION); /* already published */

  /* the public view: no online URL, no hidden ticket type, no codes */
  assert_int_equal(get(NULL, id, &e, &err), MQ_OK);
  assert_int_equal(e->state, MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED);
  assert_string_equal(e->online_url, "");
  assert_int_equal(e->n_ticket_types, 1);
  assert_int_equal(e->min_price_minor, 2500);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(get(owner, id, &e, &err), MQ_OK);
  assert_string_equal(e->online_url, "https://stream.example.com/live/123");
  assert_int_equal(e->n_ticket_types, 2);
  for (size_t i = 0; i < e->n_ticket_types; i++) assert_string_equal(e->ticket_types[i]->access_code, "");
  int64_t version = e->version;
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  /* optimistic concurrency */
  Marquee__Catalog__V1__UpdateEventRequest u = MARQUEE__CATALOG__V1__UPDATE_EVENT_REQUEST__INIT;
  Marquee__Catalog__V1__Event in = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  char *paths[] = {(char *)"title"};
  mask.paths = paths;
  mask.n_paths = 1;
  in.title = (char *)"Launch Party (sold out soon)";
  u.event_id = id;
  u.event = &in;
  u.update_mask = &mask;
  u.version = version - 1;
  mq_call_opts_t oo = {.bearer_token = owner};
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err), MQ_ABORTED);
  u.version = version;
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err), MQ_OK);
  assert_int_equal(e->version, version + 1);
  assert_string_equal(e->title, "Launch Party (sold out soon)");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err), MQ_ABORTED);
  char *bad_paths[] = {(char *)"state"};
  mask.paths = bad_paths;
  u.version = version + 1;
  assert_int_equal(marquee__catalog__v1__event_service__update_event__call(cl, &u, &e, &oo, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");

  /* published events are cancelled, not deleted */
  Marquee__Catalog__V1__DeleteEventRequest dq = MARQUEE__CATALOG__V1__DELETE_EVENT_REQUEST__INIT;
  dq.event_id = id;
  Marquee__Catalog__V1__DeleteEventResponse *dr = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__delete_event__call(cl, &dq, &dr, &oo, &err),
                   MQ_FAILED_PRECONDITION);
  Marquee__Catalog__V1__CancelEventRequest cq = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
  cq.event_id = id;
  cq.reason = (char *)"The venue flooded";
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(cl, &cq, &e, &oo, &err), MQ_OK);
  assert_int_equal(e->state, MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_CANCELLED);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(marquee__catalog__v1__event_service__cancel_event__call(cl, &cq, &e, &oo, &err),
                   MQ_FAILED_PRECONDITION);
  assert_int_equal(add_tt(owner, id, "Late", 100, "EUR", 10, false, NULL, &err), MQ_FAILED_PRECONDITION);
  /* EventCancelled went out for bookings and payments */
  char filter[200];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.EventCancelled\"}", id);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) != 1 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", filter), 1);

  /* drafts can be deleted */
  draft_init(&d, org_id, "Scrapped", unix_ms() + 10 * DAY_MS);
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  snprintf(id, sizeof id, "%s", e->event_id);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  dq.event_id = id;
  assert_int_equal(marquee__catalog__v1__event_service__delete_event__call(cl, &dq, &dr, &oo, &err), MQ_OK);
  marquee__catalog__v1__delete_event_response__free_unpacked(dr, NULL);
  assert_int_equal(get(owner, id, &e, &err), MQ_NOT_FOUND);
}

static void test_discovery_pages_and_filters(void **state) {
  (void)state;
  char disc_org[64], id[64];
  make_org(owner, "disc", disc_org, sizeof disc_org);
  int64_t base = unix_ms() + 40 * DAY_MS;
  for (int i = 0; i < 25; i++) {
    char title[32];
    snprintf(title, sizeof title, "Show %02d", i);
    published(disc_org, title, base + (int64_t)(24 - i) * 3600000LL, i % 5 == 0 ? 0 : 1000 + i, id, sizeof id);
  }
  draft_t d; /* a draft in the same organization is never listed */
  draft_init(&d, disc_org, "Secret draft", base);
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t err;
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(e, NULL);

  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.organization_id = disc_org;
  q.page_size = 10;
  char seen[40][64];
  int n_seen = 0;
  int64_t last_start = 0;
  char token[128] = "", first_token[128] = "";
  for (int page = 0; page < 5; page++) {
    q.page_token = token;
    Marquee__Catalog__V1__ListEventsResponse *r = NULL;
    assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_OK);
    for (size_t i = 0; i < r->n_events; i++) {
      int64_t s = r->events[i]->starts_at->seconds * 1000;
      assert_true(s >= last_start); /* soonest first */
      last_start = s;
      for (int k = 0; k < n_seen; k++) assert_string_not_equal(seen[k], r->events[i]->event_id);
      snprintf(seen[n_seen++], 64, "%s", r->events[i]->event_id);
      assert_string_equal(r->events[i]->online_url, "");
    }
    snprintf(token, sizeof token, "%s", r->next_page_token);
    if (page == 0) snprintf(first_token, sizeof first_token, "%s", token);
    marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
    if (page == 0) /* an event added meanwhile, earlier than the cursor, does not shift the pages */
      published(disc_org, "Early bird", base - 3600000LL, 500, id, sizeof id);
    if (!token[0]) break;
  }
  assert_int_equal(n_seen, 25);

  /* a token belongs to its query (AIP-158): another page size is fine,
   * other filters are refused instead of paging through something else */
  q.page_token = first_token;
  q.page_size = 7;
  Marquee__Catalog__V1__ListEventsResponse *tr = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &tr, NULL, &err), MQ_OK);
  assert_int_equal(tr->n_events, 7);
  marquee__catalog__v1__list_events_response__free_unpacked(tr, NULL);
  q.city = (char *)"Montreal";
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &tr, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  assert_non_null(strstr(err.message, "other filters"));
  q.city = NULL;

  /* filters */
  q.page_size = 100;
  q.page_token = (char *)"";
  q.free_only = true;
  Marquee__Catalog__V1__ListEventsResponse *r = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_events, 5);
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  q.free_only = false;
  q.currency = (char *)"EUR";
  q.min_price_minor = 1010;
  q.max_price_minor = 1020;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_events, 8); /* 1011..1019 without 1015 (i = 15 is free) */
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  q.currency = (char *)"";
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "currency");
  q.min_price_minor = q.max_price_minor = 0;
  q.attendance_mode = MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_IN_PERSON;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_events, 0);
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  q.attendance_mode = 0;
  q.page_token = (char *)"garbage";
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");

  /* the organization sees every state */
  Marquee__Catalog__V1__ListOrganizationEventsRequest oq = MARQUEE__CATALOG__V1__LIST_ORGANIZATION_EVENTS_REQUEST__INIT;
  oq.organization_id = disc_org;
  oq.page_size = 100;
  mq_call_opts_t oo = {.bearer_token = owner}, os = {.bearer_token = stranger_owner};
  assert_int_equal(marquee__catalog__v1__event_service__list_organization_events__call(cl, &oq, &r, &oo, &err), MQ_OK);
  assert_int_equal(r->n_events, 27);
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  assert_int_equal(marquee__catalog__v1__event_service__list_organization_events__call(cl, &oq, &r, &os, &err),
                   MQ_NOT_FOUND);
}

static void test_in_person_event_takes_the_venue(void **state) {
  (void)state;
  Marquee__Catalog__V1__CreateVenueRequest vq = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  Marquee__Catalog__V1__Venue v = MARQUEE__CATALOG__V1__VENUE__INIT;
  v.organization_id = org_id;
  v.name = (char *)"Kulturhalle";
  v.address_line1 = (char *)"Hauptstr. 1";
  v.city = (char *)"Leipzig";
  v.country = (char *)"DE";
  v.latitude = 51.34;
  v.longitude = 12.37;
  v.time_zone = (char *)"Europe/Berlin";
  v.capacity = 800;
  vq.venue = &v;
  Marquee__Catalog__V1__Venue *vr = NULL;
  mq_call_opts_t oo = {.bearer_token = owner};
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__venue_service__create_venue__call(cl, &vq, &vr, &oo, &err), MQ_OK);
  char venue[64];
  snprintf(venue, sizeof venue, "%s", vr->venue_id);
  marquee__catalog__v1__venue__free_unpacked(vr, NULL);
  draft_t d;
  draft_init(&d, org_id, "Concert", unix_ms() + 20 * DAY_MS);
  d.ev.online_url = (char *)"";
  d.ev.time_zone = (char *)"";
  d.ev.venue_id = venue;
  Marquee__Catalog__V1__Event *e = NULL;
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  assert_string_equal(e->city, "Leipzig");
  assert_string_equal(e->country, "DE");
  assert_string_equal(e->time_zone, "Europe/Berlin");
  assert_int_equal(e->attendance_mode, MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_IN_PERSON);
  char id[64];
  snprintf(id, sizeof id, "%s", e->event_id);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(add_tt(owner, id, "Floor", 4500, "EUR", 500, false, NULL, &err), MQ_OK);
  assert_int_equal(publish(owner, id, &err), MQ_OK);
  /* discovery by city (any case) and country */
  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.city = (char *)"LEIPZIG";
  q.country = (char *)"DE";
  q.organization_id = org_id;
  Marquee__Catalog__V1__ListEventsResponse *r = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__list_events__call(cl, &q, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_events, 1);
  assert_string_equal(r->events[0]->event_id, id);
  marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
  /* a venue in use cannot be deleted */
  Marquee__Catalog__V1__DeleteVenueRequest dv = MARQUEE__CATALOG__V1__DELETE_VENUE_REQUEST__INIT;
  dv.venue_id = venue;
  Marquee__Catalog__V1__DeleteVenueResponse *dr = NULL;
  assert_int_equal(marquee__catalog__v1__venue_service__delete_venue__call(cl, &dv, &dr, &oo, &err),
                   MQ_FAILED_PRECONDITION);
  /* another organization's venue cannot be used */
  draft_init(&d, other_org, "Borrowed hall", unix_ms() + 20 * DAY_MS);
  d.ev.venue_id = venue;
  assert_int_equal(create(stranger_owner, &d.ev, &e, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue_id");
}

/* Check-in staff belong to the organization (they see drafts) but cannot
 * change events. */
static void test_checkin_staff_cannot_edit(void **state) {
  (void)state;
  char staff_id[64];
  snprintf(staff_id, sizeof staff_id, "00000000-0000-4000-8000-%012d", (int)getpid() + 1);
  char *staff = mq_test_token(staff_id, MQ_ROLE_ATTENDEE);
  Marquee__Identity__V1__InviteMemberRequest iq = MARQUEE__IDENTITY__V1__INVITE_MEMBER_REQUEST__INIT;
  iq.organization_id = org_id;
  iq.email = (char *)"gate.staff@example.com";
  iq.role = MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF;
  Marquee__Identity__V1__Invitation *inv = NULL;
  mq_call_opts_t oo = {.bearer_token = owner}, os = {.bearer_token = staff};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__invite_member__call(cl, &iq, &inv, &oo, &err), MQ_OK);
  char token[96];
  assert_true(mq_test_invitation_token(srv.db, org_id, inv->invitation_id, token, sizeof token));
  marquee__identity__v1__invitation__free_unpacked(inv, NULL);
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = token;
  Marquee__Identity__V1__Member *m = NULL;
  assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &m, &os, &err), MQ_OK);
  marquee__identity__v1__member__free_unpacked(m, NULL);

  draft_t d;
  draft_init(&d, org_id, "Staff party", unix_ms() + 12 * DAY_MS);
  Marquee__Catalog__V1__Event *e = NULL;
  assert_int_equal(create(staff, &d.ev, &e, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(create(owner, &d.ev, &e, &err), MQ_OK);
  char id[64];
  snprintf(id, sizeof id, "%s", e->event_id);
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(get(staff, id, &e, &err), MQ_OK); /* members see drafts */
  assert_string_equal(e->online_url, "https://stream.example.com/live/123");
  marquee__catalog__v1__event__free_unpacked(e, NULL);
  assert_int_equal(add_tt(staff, id, "Std", 100, "EUR", 10, false, NULL, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(publish(staff, id, &err), MQ_PERMISSION_DENIED);
  free(staff);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_draft_validation),
      cmocka_unit_test(test_life_cycle_and_visibility),
      cmocka_unit_test(test_discovery_pages_and_filters),
      cmocka_unit_test(test_in_person_event_takes_the_venue),
      cmocka_unit_test(test_checkin_staff_cannot_edit),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
