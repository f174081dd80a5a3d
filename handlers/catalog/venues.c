/*
 * venues.c — marquee.catalog.v1.VenueService: the venues of an organization,
 * reused by its events (catalog issue, item 4).
 *
 * Who may call what (proto/marquee/catalog/v1/venues.proto): writes need
 * owner or manager of the venue's organization, ListVenues any member, and
 * GetVenue is public (event pages show venues). For a venue id the venue is
 * loaded first to learn its organization, then mq_org_require decides; a
 * caller outside that organization gets exactly the answer an unknown venue
 * gets (NOT_FOUND "venue_id"), so venue ids reveal nothing to outsiders
 * through the member-only methods.
 *
 * Every write emits marquee.events.v1.VenueChanged ("created", "updated",
 * "deleted"; topic marquee.events, key = venue id) in the same document
 * write (store/catalog/venues_store.h). Updates are optimistic: the client
 * names the version it read; another version is ABORTED.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "handlers/catalog/catalog.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/catalog/v1/venues.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define NAME_MAX_BYTES 120
#define CAPACITY_MAX 10000000
#define PAGE_DEFAULT 20
#define PAGE_MAX 100

static Marquee__Catalog__V1__Venue *venue_to_pb(mq_call_t *call, const mq_venue_t *v) {
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Venue *p = mq_arena_alloc(a, sizeof *p);
  marquee__catalog__v1__venue__init(p);
  p->venue_id = (char *)v->id;
  p->organization_id = (char *)v->organization_id;
  p->name = (char *)v->name;
  p->address_line1 = (char *)v->address_line1;
  p->address_line2 = (char *)v->address_line2;
  p->city = (char *)v->city;
  p->region = (char *)v->region;
  p->postal_code = (char *)v->postal_code;
  p->country = (char *)v->country;
  p->latitude = v->latitude;
  p->longitude = v->longitude;
  p->time_zone = (char *)v->time_zone;
  p->capacity = v->capacity;
  p->version = v->version;
  p->created_at = mq_pb_timestamp(a, v->created_ms);
  p->updated_at = mq_pb_timestamp(a, v->updated_ms);
  return p;
}

/* `payload` must outlive the write (the event borrows it). */
static void venue_event(mq_event_t *ev, Marquee__Events__V1__VenueChanged *payload, mq_call_t *call,
                        const mq_venue_t *v, const char *change) {
  marquee__events__v1__venue_changed__init(payload);
  payload->venue_id = (char *)v->id;
  payload->organization_id = (char *)v->organization_id;
  payload->change = (char *)change;
  mq_event_init(ev, "marquee.events", "catalog.VenueChanged", v->id, mq_call_principal(call)->subject,
                mq_call_trace_id(call), mq_call_request_id(call));
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_VENUE_CHANGED;
  ev->env.venue_changed = payload;
}

/* The update_mask paths and their store bits. */
static const struct {
  const char *path;
  unsigned bit;
} g_fields[] = {
    {"name", MQ_VENUE_NAME},
    {"address_line1", MQ_VENUE_ADDRESS_LINE1},
    {"address_line2", MQ_VENUE_ADDRESS_LINE2},
    {"city", MQ_VENUE_CITY},
    {"region", MQ_VENUE_REGION},
    {"postal_code", MQ_VENUE_POSTAL_CODE},
    {"country", MQ_VENUE_COUNTRY},
    {"latitude", MQ_VENUE_LATITUDE},
    {"longitude", MQ_VENUE_LONGITUDE},
    {"time_zone", MQ_VENUE_TIME_ZONE},
    {"capacity", MQ_VENUE_CAPACITY},
};
#define N_FIELDS (sizeof g_fields / sizeof *g_fields)
#define ALL_BITS 0x7FFu

static const char *pb_text(const Marquee__Catalog__V1__Venue *in, size_t off) {
  const char *s = *(char *const *)(const void *)((const char *)in + off);
  return s ? s : "";
}

/* Checks the fields of `in` named by `bits`; each refusal names
 * "venue.<path>", and every bad field is reported (mq_error_collect). */
static mq_code_t check_fields(mq_error_t *err, const Marquee__Catalog__V1__Venue *in, unsigned bits) {
  const unsigned line = MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED;
  mq_error_collect(err);
  if (bits & MQ_VENUE_NAME) mq_check_text(err, "venue.name", in->name, 1, NAME_MAX_BYTES, line);
  if (bits & MQ_VENUE_ADDRESS_LINE1) mq_check_text(err, "venue.address_line1", in->address_line1, 1, 200, line);
  if (bits & MQ_VENUE_ADDRESS_LINE2) mq_check_text(err, "venue.address_line2", in->address_line2, 0, 200, line);
  if (bits & MQ_VENUE_CITY) mq_check_text(err, "venue.city", in->city, 1, 100, line);
  if (bits & MQ_VENUE_REGION) mq_check_text(err, "venue.region", in->region, 0, 100, line);
  if (bits & MQ_VENUE_POSTAL_CODE) mq_check_text(err, "venue.postal_code", in->postal_code, 0, 20, line);
  if (bits & MQ_VENUE_COUNTRY) mq_check_country(err, "venue.country", in->country);
  if (bits & (MQ_VENUE_LATITUDE | MQ_VENUE_LONGITUDE))
    mq_check_lat_lng(err, "venue.latitude", "venue.longitude", (bits & MQ_VENUE_LATITUDE) ? in->latitude : 0.0,
                     (bits & MQ_VENUE_LONGITUDE) ? in->longitude : 0.0);
  if (bits & MQ_VENUE_TIME_ZONE) mq_check_timezone(err, "venue.time_zone", in->time_zone);
  if (bits & MQ_VENUE_CAPACITY) mq_check_range_i64(err, "venue.capacity", in->capacity, 0, CAPACITY_MAX);
  return mq_error_collected(err);
}

/* proto3 cannot tell an unset double from 0: exactly (0, 0) means unset. */
static mq_code_t check_position_set(mq_error_t *err, const mq_venue_t *v) {
  if (v->latitude == 0.0 && v->longitude == 0.0)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "venue.latitude",
                        "latitude and longitude are required ((0, 0) is taken as not set)");
  return MQ_OK;
}

/* Copies the fields named by `bits` from the message into `v` (borrowed). */
static void apply_fields(mq_venue_t *v, const Marquee__Catalog__V1__Venue *in, unsigned bits) {
  if (bits & MQ_VENUE_NAME) v->name = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, name));
  if (bits & MQ_VENUE_ADDRESS_LINE1)
    v->address_line1 = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, address_line1));
  if (bits & MQ_VENUE_ADDRESS_LINE2)
    v->address_line2 = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, address_line2));
  if (bits & MQ_VENUE_CITY) v->city = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, city));
  if (bits & MQ_VENUE_REGION) v->region = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, region));
  if (bits & MQ_VENUE_POSTAL_CODE) v->postal_code = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, postal_code));
  if (bits & MQ_VENUE_COUNTRY) v->country = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, country));
  if (bits & MQ_VENUE_TIME_ZONE) v->time_zone = pb_text(in, offsetof(Marquee__Catalog__V1__Venue, time_zone));
  if (bits & MQ_VENUE_LATITUDE) v->latitude = in->latitude;
  if (bits & MQ_VENUE_LONGITUDE) v->longitude = in->longitude;
  if (bits & MQ_VENUE_CAPACITY) v->capacity = in->capacity;
}

/* Loads the venue and checks the caller's role in its organization. A
 * non-member gets what an unknown venue gets. */
static mq_code_t load_authorized(mq_call_t *call, const char *venue_id, int weakest_allowed, mq_venue_t *out,
                                 mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "venue_id", venue_id);
  if (rc == MQ_OK) rc = mq_venues_get(app->store, venue_id, mq_call_arena(call), out, err);
  if (rc == MQ_OK) rc = mq_org_require(call, out->organization_id, weakest_allowed, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "venue_id", "no such venue");
  return rc;
}

static mq_code_t venue_create(mq_call_t *call, const Marquee__Catalog__V1__CreateVenueRequest *req,
                              Marquee__Catalog__V1__Venue *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const Marquee__Catalog__V1__Venue *in = req->venue;
  if (!in) return mq_error_set(err, MQ_INVALID_ARGUMENT, "venue", "is required");
  mq_code_t rc = mq_org_require(call, in->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) {
    if (!strcmp(err->field, "organization_id")) mq_error_rename_field(err, "venue.organization_id");
    return rc;
  }
  if ((rc = check_fields(err, in, ALL_BITS)) != MQ_OK) return rc;
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  int64_t now = mq_now_unix_ms();
  mq_venue_t v = {.id = id, .organization_id = in->organization_id, .version = 1, .created_ms = now, .updated_ms = now};
  apply_fields(&v, in, ALL_BITS);
  if ((rc = check_position_set(err, &v)) != MQ_OK) return rc;
  Marquee__Events__V1__VenueChanged payload;
  mq_event_t ev;
  venue_event(&ev, &payload, call, &v, "created");
  if ((rc = mq_venues_create(app->store, &v, &ev, err)) != MQ_OK) return rc;
  *resp = *venue_to_pb(call, &v);
  return MQ_OK;
}

static mq_code_t venue_update(mq_call_t *call, const Marquee__Catalog__V1__UpdateVenueRequest *req,
                              Marquee__Catalog__V1__Venue *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_venue_t cur;
  mq_code_t rc = load_authorized(call, req->venue_id, MQ_ORG_MANAGER, &cur, err);
  if (rc != MQ_OK) return rc;
  const Google__Protobuf__FieldMask *mask = req->update_mask;
  if (!mask || mask->n_paths == 0)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field to update");
  if (mask->n_paths > 2 * N_FIELDS) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "too many paths");
  if (!req->venue) return mq_error_set(err, MQ_INVALID_ARGUMENT, "venue", "is required with the new values");
  if (req->version < 1)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "version", "is required: the version of the venue you read");
  unsigned bits = 0;
  for (size_t i = 0; i < mask->n_paths; i++) {
    size_t f = 0;
    while (f < N_FIELDS && strcmp(g_fields[f].path, mask->paths[i] ? mask->paths[i] : "")) f++;
    if (f == N_FIELDS)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "cannot update '%.40s'",
                          mask->paths[i] ? mask->paths[i] : "");
    bits |= g_fields[f].bit;
  }
  if ((rc = check_fields(err, req->venue, bits)) != MQ_OK) return rc;
  if (cur.version != req->version)
    return mq_error_set(err, MQ_ABORTED, "version", "the venue changed since you read it (version %lld now)",
                        (long long)cur.version);
  mq_venue_t next = cur;
  apply_fields(&next, req->venue, bits);
  if ((rc = check_position_set(err, &next)) != MQ_OK) return rc;
  next.updated_ms = mq_now_unix_ms();
  Marquee__Events__V1__VenueChanged payload;
  mq_event_t ev;
  venue_event(&ev, &payload, call, &cur, "updated");
  if ((rc = mq_venues_update(app->store, &next, bits, req->version, &ev, err)) != MQ_OK) return rc;
  /* the stored venue is `cur` (that version) with these fields set */
  next.version = req->version + 1;
  *resp = *venue_to_pb(call, &next);
  return MQ_OK;
}

static mq_code_t venue_delete(mq_call_t *call, const Marquee__Catalog__V1__DeleteVenueRequest *req,
                              Marquee__Catalog__V1__DeleteVenueResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_venue_t cur;
  mq_code_t rc = load_authorized(call, req->venue_id, MQ_ORG_MANAGER, &cur, err);
  if (rc != MQ_OK) return rc;
  bool used = false;
  if ((rc = mq_events_any_at_venue(app->store, cur.id, &used, err)) != MQ_OK) return rc;
  if (used)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "venue_id",
                        "events refer to this venue; move or delete them first");
  Marquee__Events__V1__VenueChanged payload;
  mq_event_t ev;
  venue_event(&ev, &payload, call, &cur, "deleted");
  rc = mq_venues_delete(app->store, &cur, mq_call_principal(call)->subject, &ev, err);
  return rc;
}

static mq_code_t venue_get(mq_call_t *call, const Marquee__Catalog__V1__GetVenueRequest *req,
                           Marquee__Catalog__V1__Venue *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_venue_t v;
  mq_code_t rc = mq_check_uuid(err, "venue_id", req->venue_id);
  if (rc == MQ_OK) rc = mq_venues_get(app->store, req->venue_id, mq_call_arena(call), &v, err);
  if (rc == MQ_OK) *resp = *venue_to_pb(call, &v);
  return rc;
}

/* The page cursor: unpadded base64url of "<venue id><name>" of the last
 * venue of the page (the id is always 36 bytes), inside a page token bound
 * to the request (lib/mq_page.h). */
#define TOKEN_RAW_MAX (36 + NAME_MAX_BYTES)

static char *make_page_token(mq_arena_t *a, const mq_venue_t *last) {
  unsigned char raw[TOKEN_RAW_MAX];
  size_t nl = strlen(last->name);
  if (nl > NAME_MAX_BYTES) nl = NAME_MAX_BYTES; /* names are validated: never happens */
  memcpy(raw, last->id, 36);
  memcpy(raw + 36, last->name, nl);
  char *out = mq_arena_alloc(a, 4 * ((36 + nl + 2) / 3) + 1);
  mq_base64url_encode(raw, 36 + nl, out);
  return out;
}

static mq_code_t parse_page_token(mq_arena_t *a, const char *t, const char **name, const char **id, mq_error_t *err) {
  unsigned char raw[TOKEN_RAW_MAX + 1];
  size_t tl = strlen(t);
  long n = tl <= 4 * ((TOKEN_RAW_MAX + 2) / 3) ? mq_base64url_decode(t, tl, raw, TOKEN_RAW_MAX) : -1;
  bool ok = n > 36 && !memchr(raw, 0, (size_t)n);
  if (ok) {
    raw[n] = '\0';
    *id = mq_arena_strndup(a, (const char *)raw, 36);
    *name = mq_arena_strdup(a, (const char *)raw + 36);
    ok = mq_check_uuid(NULL, NULL, *id) == MQ_OK && mq_check_text(NULL, NULL, *name, 1, NAME_MAX_BYTES, 0) == MQ_OK;
  }
  return ok ? MQ_OK : mq_error_set(err, MQ_INVALID_ARGUMENT, "page_token", "not a page token from this method");
}

static mq_code_t venue_list(mq_call_t *call, const Marquee__Catalog__V1__ListVenuesRequest *req,
                            Marquee__Catalog__V1__ListVenuesResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_CHECKIN, NULL, err);
  if (rc != MQ_OK) return rc;
  uint32_t limit;
  if ((rc = mq_check_page_size(err, "page_size", req->page_size, PAGE_DEFAULT, PAGE_MAX, &limit)) != MQ_OK) return rc;
  mq_venues_query_t q = {.organization_id = req->organization_id,
                         .limit = limit + 1}; /* one more: is there a next page? */
  const char *cursor;                         /* page tokens (lib/mq_page.h) around the cursor below */
  if ((rc = mq_page_token_read(a, &req->base, "page_token", req->page_token, &cursor, err)) != MQ_OK) return rc;
  if (cursor && (rc = parse_page_token(a, cursor, &q.after_name, &q.after_id, err)) != MQ_OK) return rc;
  mq_venue_t *vs = mq_arena_alloc(a, q.limit * sizeof *vs);
  size_t n = 0;
  if ((rc = mq_venues_list(app->store, &q, a, vs, &n, err)) != MQ_OK) return rc;
  bool more = n > limit;
  if (more) n = limit;
  resp->venues = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->venues);
  for (size_t k = 0; k < n; k++) resp->venues[resp->n_venues++] = venue_to_pb(call, &vs[k]);
  resp->next_page_token = more ? mq_page_token_make(a, &req->base, make_page_token(a, &vs[n - 1])) : (char *)"";
  return MQ_OK;
}

static const marquee__catalog__v1__venue_service_handlers_t handlers = {
    .create_venue = {venue_create, MQ_POLICY_RESOURCE, 0},
    .update_venue = {venue_update, MQ_POLICY_RESOURCE, 0},
    .delete_venue = {venue_delete, MQ_POLICY_RESOURCE, 0},
    .get_venue = {venue_get, MQ_POLICY_PUBLIC, 0},
    .list_venues = {venue_list, MQ_POLICY_RESOURCE, 0},
};

int venue_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__catalog__v1__venue_service__mq_register(srv, &handlers);
}
