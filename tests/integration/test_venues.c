/*
 * test_venues.c — marquee.catalog.v1.VenueService end to end on the real
 * stack: create / get / update (field mask, optimistic version: a stale one
 * is ABORTED) / delete; listing with a stable (name, id) cursor over 25
 * venues in pages of 10; validation naming each bad field; who may do what
 * (owner and manager write, check-in staff read, outsiders get NOT_FOUND,
 * GetVenue is public); and VenueChanged reaching the audit log through
 * Kafka. Organizations and members are made through OrganizationService as
 * real users would (invitation tokens read from the audit log, as the
 * notifier will).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"
#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/venues.mq-client.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define PASSWORD "correct horse battery staple"

static mq_test_proc_t srv, audit;
static mq_client_t *cl;

static int setup(void **state) {
  (void)state;
  const char *env[] = {"MARQUEE_ARGON2_MEMORY_KIB=1024", "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_SIGNUP_ADDRESS_LIMIT=1000", NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  return cl ? 0 : -1;
}

/* ---- people and organizations ------------------------------------------------ */

/* Tokens of the shared cast: org A has owner (alice), manager (bob) and
 * check-in staff (carol); org B belongs to dave, a member of nothing else. */
static struct {
  bool ready;
  char org_a[64], org_b[64];
  char *alice, *bob, *carol, *dave;
} w;

static int teardown(void **state) {
  (void)state;
  free(w.alice);
  free(w.bob);
  free(w.carol);
  free(w.dave);
  mq_client_destroy(cl);
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return a == 0 && s == 0 ? 0 : -1;
}

/* Signs a user up; returns its access token (caller frees). */
/* Signs a user up; returns its access token (caller frees) (fixtures.h). */
static char *new_user(const char *tag, char *uid, size_t n, char *email, size_t en) {
  return mq_fx_user(cl, tag, PASSWORD, uid, n, email, en);
}

/* Creates an organization as `organizer` (a token with the organizer role). */
static void new_org(const char *organizer, const char *tag, char *oid, size_t n) {
  char out[40];
  mq_fx_org(cl, organizer, tag, out);
  snprintf(oid, n, "%s", out);
}

/* Invites `email` as `tok`, then accepts as `invitee` (fixtures.h). */
static void add_member(const char *tok, const char *org, const char *email, Marquee__Identity__V1__MemberRole role,
                       const char *invitee) {
  mq_fx_add_member(cl, srv.db, tok, org, email, role, invitee);
}

static void world(void) {
  if (w.ready) return;
  char uid[64], mail[96], bob_mail[96], carol_mail[96];
  char *t = new_user("alice", uid, sizeof uid, mail, sizeof mail);
  assert_non_null(t);
  free(t);
  w.alice = mq_test_token(uid, MQ_ROLE_ORGANIZER); /* as if an admin had granted the role */
  w.bob = new_user("bob", uid, sizeof uid, bob_mail, sizeof bob_mail);
  w.carol = new_user("carol", uid, sizeof uid, carol_mail, sizeof carol_mail);
  t = new_user("dave", uid, sizeof uid, mail, sizeof mail);
  assert_non_null(t);
  free(t);
  w.dave = mq_test_token(uid, MQ_ROLE_ORGANIZER);
  assert_non_null(w.bob);
  assert_non_null(w.carol);
  new_org(w.alice, "venues-a", w.org_a, sizeof w.org_a);
  new_org(w.dave, "venues-b", w.org_b, sizeof w.org_b);
  add_member(w.alice, w.org_a, bob_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, w.bob);
  add_member(w.alice, w.org_a, carol_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF, w.carol);
  w.ready = true;
}

/* ---- calls -------------------------------------------------------------------- */

static Marquee__Catalog__V1__Venue sample(const char *org, const char *name) {
  Marquee__Catalog__V1__Venue v = MARQUEE__CATALOG__V1__VENUE__INIT;
  v.organization_id = (char *)org;
  v.name = (char *)name;
  v.address_line1 = (char *)"5 Avenue Anatole France";
  v.city = (char *)"Paris";
  v.postal_code = (char *)"75007";
  v.country = (char *)"FR";
  v.latitude = 48.8584;
  v.longitude = 2.2945;
  v.time_zone = (char *)"Europe/Paris";
  v.capacity = 1500;
  return v;
}

static mq_code_t create(const char *tok, const Marquee__Catalog__V1__Venue *v, Marquee__Catalog__V1__Venue **out,
                        mq_error_t *err) {
  Marquee__Catalog__V1__CreateVenueRequest q = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  q.venue = (Marquee__Catalog__V1__Venue *)v;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Venue *r = NULL;
  mq_code_t rc = marquee__catalog__v1__venue_service__create_venue__call(cl, &q, &r, &o, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__venue__free_unpacked(r, NULL);
  return rc;
}

/* Creates the sample venue named `name` in `org` as `tok`; its id into id[37]. */
static void create_ok(const char *tok, const char *org, const char *name, char id[37]) {
  Marquee__Catalog__V1__Venue v = sample(org, name), *r = NULL;
  mq_error_t err;
  assert_int_equal(create(tok, &v, &r, &err), MQ_OK);
  snprintf(id, 37, "%s", r->venue_id);
  marquee__catalog__v1__venue__free_unpacked(r, NULL);
}

static mq_code_t get(const char *tok, const char *id, Marquee__Catalog__V1__Venue **out, mq_error_t *err) {
  Marquee__Catalog__V1__GetVenueRequest q = MARQUEE__CATALOG__V1__GET_VENUE_REQUEST__INIT;
  q.venue_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Venue *r = NULL;
  mq_code_t rc = marquee__catalog__v1__venue_service__get_venue__call(cl, &q, &r, tok ? &o : NULL, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__venue__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t update(const char *tok, const char *id, const Marquee__Catalog__V1__Venue *v, const char *paths,
                        int64_t version, Marquee__Catalog__V1__Venue **out, mq_error_t *err) {
  char buf[256], *p[16];
  snprintf(buf, sizeof buf, "%s", paths);
  size_t n = 0;
  for (char *save = NULL, *s = strtok_r(buf, ",", &save); s && n < 16; s = strtok_r(NULL, ",", &save)) p[n++] = s;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = p;
  mask.n_paths = n;
  Marquee__Catalog__V1__UpdateVenueRequest q = MARQUEE__CATALOG__V1__UPDATE_VENUE_REQUEST__INIT;
  q.venue_id = (char *)id;
  q.venue = (Marquee__Catalog__V1__Venue *)v;
  q.update_mask = &mask;
  q.version = version;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__Venue *r = NULL;
  mq_code_t rc = marquee__catalog__v1__venue_service__update_venue__call(cl, &q, &r, &o, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__venue__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t del(const char *tok, const char *id, mq_error_t *err) {
  Marquee__Catalog__V1__DeleteVenueRequest q = MARQUEE__CATALOG__V1__DELETE_VENUE_REQUEST__INIT;
  q.venue_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__DeleteVenueResponse *r = NULL;
  mq_code_t rc = marquee__catalog__v1__venue_service__delete_venue__call(cl, &q, &r, &o, err);
  if (r) marquee__catalog__v1__delete_venue_response__free_unpacked(r, NULL);
  return rc;
}

static mq_code_t list(const char *tok, const char *org, uint32_t page_size, const char *page_token,
                      Marquee__Catalog__V1__ListVenuesResponse **out, mq_error_t *err) {
  Marquee__Catalog__V1__ListVenuesRequest q = MARQUEE__CATALOG__V1__LIST_VENUES_REQUEST__INIT;
  q.organization_id = (char *)org;
  q.page_size = page_size;
  q.page_token = (char *)page_token;
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Catalog__V1__ListVenuesResponse *r = NULL;
  mq_code_t rc = marquee__catalog__v1__venue_service__list_venues__call(cl, &q, &r, tok ? &o : NULL, err);
  if (out)
    *out = r;
  else if (r)
    marquee__catalog__v1__list_venues_response__free_unpacked(r, NULL);
  return rc;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_create_get_update_delete(void **state) {
  (void)state;
  world();
  mq_error_t err;
  Marquee__Catalog__V1__Venue in = sample(w.org_a, "Grand Hall"), *v = NULL;
  in.address_line2 = (char *)"Gate B";
  in.region = (char *)"Île-de-France";
  assert_int_equal(create(w.alice, &in, &v, &err), MQ_OK);
  char id[37];
  snprintf(id, sizeof id, "%s", v->venue_id);
  assert_int_equal(strlen(v->venue_id), 36);
  assert_string_equal(v->organization_id, w.org_a);
  assert_string_equal(v->name, "Grand Hall");
  assert_string_equal(v->address_line2, "Gate B");
  assert_string_equal(v->region, "Île-de-France");
  assert_int_equal(v->version, 1);
  assert_non_null(v->created_at);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);

  /* every field comes back as written, to a member */
  assert_int_equal(get(w.bob, id, &v, &err), MQ_OK);
  assert_string_equal(v->address_line1, "5 Avenue Anatole France");
  assert_string_equal(v->city, "Paris");
  assert_string_equal(v->postal_code, "75007");
  assert_string_equal(v->country, "FR");
  assert_true(fabs(v->latitude - 48.8584) < 1e-9 && fabs(v->longitude - 2.2945) < 1e-9);
  assert_string_equal(v->time_zone, "Europe/Paris");
  assert_int_equal(v->capacity, 1500);
  assert_int_equal(v->version, 1);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);

  /* update two fields with the version read: the rest stays */
  Marquee__Catalog__V1__Venue ch = MARQUEE__CATALOG__V1__VENUE__INIT;
  ch.name = (char *)"Great Hall";
  ch.capacity = 0;          /* 0 = unknown */
  ch.city = (char *)"Lyon"; /* not in the mask: ignored */
  assert_int_equal(update(w.bob, id, &ch, "name,capacity", 1, &v, &err), MQ_OK);
  assert_string_equal(v->name, "Great Hall");
  assert_int_equal(v->capacity, 0);
  assert_string_equal(v->city, "Paris");
  assert_int_equal(v->version, 2);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);
  assert_int_equal(get(NULL, id, &v, &err), MQ_OK);
  assert_string_equal(v->name, "Great Hall");
  assert_string_equal(v->region, "Île-de-France");
  assert_int_equal(v->version, 2);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);

  /* a stale version: ABORTED, nothing written */
  ch.name = (char *)"Lost Update";
  assert_int_equal(update(w.alice, id, &ch, "name", 1, NULL, &err), MQ_ABORTED);
  assert_string_equal(err.field, "version");
  assert_non_null(strstr(err.message, "the venue changed since you read it"));
  assert_int_equal(update(w.alice, id, &ch, "name", 0, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "version");
  /* masks: other fields, empty */
  assert_int_equal(update(w.alice, id, &ch, "organization_id", 2, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  assert_int_equal(update(w.alice, id, &ch, "version", 2, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  assert_int_equal(update(w.alice, id, &ch, "", 2, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "update_mask");
  /* position, time zone and country together */
  ch.latitude = 45.764;
  ch.longitude = 4.8357;
  ch.country = (char *)"FR";
  ch.time_zone = (char *)"Europe/Paris";
  assert_int_equal(update(w.alice, id, &ch, "latitude,longitude,city,country,time_zone", 2, &v, &err), MQ_OK);
  assert_string_equal(v->city, "Lyon");
  assert_true(fabs(v->latitude - 45.764) < 1e-9);
  assert_int_equal(v->version, 3);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);

  /* delete (a manager may), then it is gone for every method */
  assert_int_equal(del(w.bob, id, &err), MQ_OK);
  assert_int_equal(get(NULL, id, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "venue_id");
  assert_int_equal(del(w.bob, id, &err), MQ_NOT_FOUND);
  assert_int_equal(update(w.alice, id, &ch, "name", 3, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(mq_test_count(NULL, srv.db, "venue_deletions", "{}") >= 1, 1);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void test_list_pagination(void **state) {
  (void)state;
  world();
  mq_error_t err;
  char uid[64], mail[96], org[64];
  char *t = new_user("lister", uid, sizeof uid, mail, sizeof mail);
  free(t);
  char *owner = mq_test_token(uid, MQ_ROLE_ORGANIZER);
  new_org(owner, "venues-list", org, sizeof org);
  /* 25 venues in scrambled order; names repeat (Hall 00..Hall 19, five twice),
   * so the id breaks ties */
  char keys[25][64];
  for (int i = 0; i < 25; i++) {
    int k = (i * 7) % 25;
    char name[32], id[37];
    snprintf(name, sizeof name, "Hall %02d", k % 20);
    create_ok(owner, org, name, id);
    snprintf(keys[i], sizeof keys[i], "%s|%s", name, id);
  }
  qsort(keys, 25, sizeof keys[0], cmp_str);

  Marquee__Catalog__V1__ListVenuesResponse *r = NULL;
  char token[512] = "";
  int seen = 0, pages = 0;
  do {
    assert_int_equal(list(owner, org, 10, token, &r, &err), MQ_OK);
    assert_int_equal(r->n_venues, pages < 2 ? 10 : 5);
    for (size_t i = 0; i < r->n_venues; i++) {
      char key[64];
      snprintf(key, sizeof key, "%s|%s", r->venues[i]->name, r->venues[i]->venue_id);
      assert_string_equal(key, keys[seen]); /* in (name, id) order, none repeated, none skipped */
      seen++;
    }
    snprintf(token, sizeof token, "%s", r->next_page_token);
    marquee__catalog__v1__list_venues_response__free_unpacked(r, NULL);
    if (++pages == 1) {
      /* the cursor is stable: venues added before it are not seen, after it are */
      char early[37];
      create_ok(owner, org, "Annex", early);
    }
  } while (token[0] && pages < 10);
  assert_int_equal(pages, 3);
  assert_int_equal(seen, 25);

  /* default page size 20; above 100 is clamped, not refused */
  assert_int_equal(list(owner, org, 0, NULL, &r, &err), MQ_OK);
  assert_int_equal(r->n_venues, 20);
  assert_string_equal(r->venues[0]->name, "Annex");
  assert_true(r->next_page_token[0]);
  marquee__catalog__v1__list_venues_response__free_unpacked(r, NULL);
  assert_int_equal(list(owner, org, 5000, NULL, &r, &err), MQ_OK);
  assert_int_equal(r->n_venues, 26);
  assert_string_equal(r->next_page_token, "");
  marquee__catalog__v1__list_venues_response__free_unpacked(r, NULL);

  /* tokens this method did not issue */
  assert_int_equal(list(owner, org, 10, "garbage!", NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  assert_int_equal(list(owner, org, 10, "QUJD", NULL, &err), MQ_INVALID_ARGUMENT); /* "ABC" */
  assert_string_equal(err.field, "page_token");

  /* another organization's list is its own (org A has none of these) */
  assert_int_equal(list(w.dave, w.org_b, 100, NULL, &r, &err), MQ_OK);
  assert_int_equal(r->n_venues, 0);
  assert_string_equal(r->next_page_token, "");
  marquee__catalog__v1__list_venues_response__free_unpacked(r, NULL);
  free(owner);
}

static void test_validation_names_the_field(void **state) {
  (void)state;
  world();
  char long_name[200];
  memset(long_name, 'x', 121);
  long_name[121] = '\0';
  static const struct {
    const char *field;
  } cases[] = {{"venue.country"},     {"venue.country"},   {"venue.time_zone"},
               {"venue.latitude"},    {"venue.longitude"}, {"venue.longitude"},
               {"venue.name"},        {"venue.name"},      {"venue.city"},
               {"venue.capacity"},    {"venue.capacity"},  {"venue.address_line1"},
               {"venue.postal_code"}, {"venue.latitude"},  {"venue.organization_id"},
               {"venue.name"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Marquee__Catalog__V1__Venue v = sample(w.org_a, "Valid Name");
    switch (i) {
      case 0:
        v.country = (char *)"XX";
        break;
      case 1:
        v.country = (char *)"fr";
        break;
      case 2:
        v.time_zone = (char *)"Mars/Olympus_Mons";
        break;
      case 3:
        v.latitude = 91;
        break;
      case 4:
        v.longitude = NAN;
        break;
      case 5:
        v.longitude = -INFINITY;
        break;
      case 6:
        v.name = long_name;
        break;
      case 7:
        v.name = (char *)" padded";
        break;
      case 8:
        v.city = (char *)"";
        break;
      case 9:
        v.capacity = -1;
        break;
      case 10:
        v.capacity = 10000001;
        break;
      case 11:
        v.address_line1 = (char *)"";
        break;
      case 12:
        v.postal_code = (char *)"123456789012345678901";
        break;
      case 13:
        v.latitude = 0;
        v.longitude = 0;
        break; /* "not set" */
      case 14:
        v.organization_id = (char *)"{\"$ne\": null}";
        break;
      case 15:
        v.name = (char *)"line\nbreak";
        break;
      default:
        break;
    }
    mq_error_t err;
    assert_int_equal(create(w.alice, &v, NULL, &err), MQ_INVALID_ARGUMENT);
    if (strcmp(err.field, cases[i].field))
      fail_msg("case %zu: field '%s', expected '%s'", i, err.field, cases[i].field);
  }
  mq_error_t err;
  Marquee__Catalog__V1__CreateVenueRequest q = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  mq_call_opts_t o = {.bearer_token = w.alice};
  Marquee__Catalog__V1__Venue *r = NULL;
  assert_int_equal(marquee__catalog__v1__venue_service__create_venue__call(cl, &q, &r, &o, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue");
  /* capacity bounds are inclusive; the edges of the globe are fine */
  Marquee__Catalog__V1__Venue edge = sample(w.org_a, "Pole Station");
  edge.latitude = -90;
  edge.longitude = 180;
  edge.capacity = 10000000;
  edge.country = (char *)"AQ";
  edge.time_zone = (char *)"Antarctica/McMurdo";
  assert_int_equal(create(w.alice, &edge, NULL, &err), MQ_OK);

  /* updates check what they change, and name it */
  char id[37];
  create_ok(w.alice, w.org_a, "To Be Checked", id);
  Marquee__Catalog__V1__Venue ch = MARQUEE__CATALOG__V1__VENUE__INIT;
  ch.latitude = 91;
  assert_int_equal(update(w.alice, id, &ch, "latitude", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.latitude");
  ch.longitude = NAN;
  assert_int_equal(update(w.alice, id, &ch, "longitude", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.longitude");
  ch.country = (char *)"ZZ";
  assert_int_equal(update(w.alice, id, &ch, "country", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.country");
  ch.time_zone = (char *)"Europe/Atlantis";
  assert_int_equal(update(w.alice, id, &ch, "time_zone", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.time_zone");
  ch.city = (char *)"";
  assert_int_equal(update(w.alice, id, &ch, "city", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.city");
  ch.capacity = -5;
  assert_int_equal(update(w.alice, id, &ch, "capacity", 1, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue.capacity");
  ch.address_line2 = (char *)""; /* optional fields may be cleared */
  ch.region = (char *)"";
  Marquee__Catalog__V1__Venue *v = NULL;
  assert_int_equal(update(w.alice, id, &ch, "address_line2,region", 1, &v, &err), MQ_OK);
  assert_int_equal(v->version, 2);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);
  /* ids that are not UUIDs */
  assert_int_equal(get(NULL, "not-a-uuid", NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue_id");
  assert_int_equal(del(w.alice, "{\"$gt\": \"\"}", &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "venue_id");
}

static void test_who_may_do_what(void **state) {
  (void)state;
  world();
  mq_error_t err;
  char id[37];
  create_ok(w.bob, w.org_a, "Members Only Hall", id); /* managers create */
  Marquee__Catalog__V1__Venue v = sample(w.org_a, "Staff Hall"), ch = MARQUEE__CATALOG__V1__VENUE__INIT;
  ch.name = (char *)"Renamed";

  /* check-in staff read but do not write */
  assert_int_equal(create(w.carol, &v, NULL, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(update(w.carol, id, &ch, "name", 1, NULL, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(del(w.carol, id, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(list(w.carol, w.org_a, 100, NULL, NULL, &err), MQ_OK);
  assert_int_equal(get(w.carol, id, NULL, &err), MQ_OK);

  /* a member of another organization learns nothing: NOT_FOUND, as for an
   * unknown venue (same field) */
  assert_int_equal(update(w.dave, id, &ch, "name", 1, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "venue_id");
  assert_int_equal(del(w.dave, id, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "venue_id");
  assert_int_equal(del(w.dave, "00000000-0000-4000-8000-00000000abcd", &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "venue_id");
  assert_int_equal(list(w.dave, w.org_a, 10, NULL, NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(create(w.dave, &v, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "venue.organization_id");
  Marquee__Catalog__V1__Venue *got = NULL;
  assert_int_equal(get(w.alice, id, &got, &err), MQ_OK); /* untouched by all that */
  assert_string_equal(got->name, "Members Only Hall");
  assert_int_equal(got->version, 1);
  marquee__catalog__v1__venue__free_unpacked(got, NULL);

  /* without a token: GetVenue is public, the rest is not */
  assert_int_equal(get(NULL, id, &got, &err), MQ_OK);
  assert_string_equal(got->venue_id, id);
  assert_string_equal(got->city, "Paris");
  marquee__catalog__v1__venue__free_unpacked(got, NULL);
  assert_int_equal(get(NULL, "00000000-0000-4000-8000-00000000abcd", NULL, &err), MQ_NOT_FOUND);
  assert_int_equal(list(NULL, w.org_a, 10, NULL, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(create(NULL, &v, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(update(NULL, id, &ch, "name", 1, NULL, &err), MQ_UNAUTHENTICATED);
  assert_int_equal(del(NULL, id, &err), MQ_UNAUTHENTICATED);

  /* a platform admin passes as an owner */
  char *admin = mq_test_token("00000000-0000-4000-8000-000000000009", MQ_ROLE_ADMIN);
  assert_int_equal(update(admin, id, &ch, "name", 1, NULL, &err), MQ_OK);
  free(admin);
}

typedef struct {
  const char *id;
  char name[32];
  mq_code_t rc;
} racer_t;

static void *race_update(void *arg) {
  racer_t *r = arg;
  Marquee__Catalog__V1__Venue ch = MARQUEE__CATALOG__V1__VENUE__INIT;
  ch.name = r->name;
  mq_error_t err;
  r->rc = update(w.alice, r->id, &ch, "name", 1, NULL, &err);
  return NULL;
}

/* Updates racing with the same version: exactly one wins, the others are
 * ABORTED (the version check and the write happen under one lock). */
static void test_racing_updates(void **state) {
  (void)state;
  world();
  char id[37];
  create_ok(w.alice, w.org_a, "Contested Hall", id);
  enum { N = 8 };
  racer_t r[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    r[i] = (racer_t){.id = id, .rc = MQ_UNKNOWN};
    snprintf(r[i].name, sizeof r[i].name, "Winner %d", i);
    pthread_create(&th[i], NULL, race_update, &r[i]);
  }
  int ok = 0, aborted = 0, winner = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    if (r[i].rc == MQ_OK) winner = i;
    ok += r[i].rc == MQ_OK;
    aborted += r[i].rc == MQ_ABORTED;
  }
  assert_int_equal(ok, 1);
  assert_int_equal(aborted, N - 1);
  Marquee__Catalog__V1__Venue *v = NULL;
  mq_error_t err;
  assert_int_equal(get(NULL, id, &v, &err), MQ_OK);
  assert_int_equal(v->version, 2);
  assert_string_equal(v->name, r[winner].name);
  marquee__catalog__v1__venue__free_unpacked(v, NULL);
}

/* Waits until the audit log holds `n` VenueChanged events of `venue_id`. */
static bool audit_has(const char *venue_id, int64_t n) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.VenueChanged\"}", venue_id);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) < n && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  return mq_test_count(NULL, srv.db, "audit_log", filter) == n;
}

typedef struct {
  const char *id, *org;
  int n, created, updated, deleted;
} venue_changes_t;

/* One VenueChanged from the audit log: it names the venue and its organization. */
static bool venue_change(const void *data, size_t len, void *arg) {
  venue_changes_t *v = arg;
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  if (ev && ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_VENUE_CHANGED &&
      !strcmp(ev->venue_changed->venue_id, v->id) && !strcmp(ev->venue_changed->organization_id, v->org) &&
      !strcmp(ev->aggregate_id, v->id)) {
    v->n++;
    v->created += !strcmp(ev->venue_changed->change, "created");
    v->updated += !strcmp(ev->venue_changed->change, "updated");
    v->deleted += !strcmp(ev->venue_changed->change, "deleted");
  }
  if (ev) marquee__events__v1__envelope__free_unpacked(ev, NULL);
  return true;
}

static void test_venue_changed_reaches_the_audit_log(void **state) {
  (void)state;
  world();
  mq_error_t err;
  char id[37];
  create_ok(w.alice, w.org_a, "Audited Hall", id);
  Marquee__Catalog__V1__Venue ch = MARQUEE__CATALOG__V1__VENUE__INIT;
  ch.capacity = 42;
  assert_int_equal(update(w.alice, id, &ch, "capacity", 1, NULL, &err), MQ_OK);
  assert_true(audit_has(id, 2));
  assert_int_equal(del(w.alice, id, &err), MQ_OK);
  assert_true(audit_has(id, 3));
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"catalog.VenueChanged\"}", id);
  /* the three changes, each whole (the store returns them in no particular order) */
  venue_changes_t seen = {.id = id, .org = w.org_a};
  mq_test_each_binary(srv.db, "audit_log", filter, "envelope", venue_change, &seen);
  assert_int_equal(seen.n, 3);
  assert_int_equal(seen.created + seen.updated + seen.deleted, 3);
  assert_true(seen.created == 1 && seen.updated == 1 && seen.deleted == 1);
  char changes[256];
  snprintf(changes, sizeof changes, "{\"topic\": \"marquee.events\", \"aggregate_id\": \"%s\"}", id);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", changes), 3);
  /* every event was delivered: the journal drained */
  int64_t until = mq_test_now_ms() + 30000;
  while (mq_test_count(NULL, srv.db, "outbox", "{}") > 0 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "outbox", "{}"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_get_update_delete),
      cmocka_unit_test(test_list_pagination),
      cmocka_unit_test(test_validation_names_the_field),
      cmocka_unit_test(test_who_may_do_what),
      cmocka_unit_test(test_racing_updates),
      cmocka_unit_test(test_venue_changed_reaches_the_audit_log),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
