/*
 * events.c — marquee.catalog.v1.EventService: events and ticket types of an
 * organization, their life cycle, and public discovery.
 *
 * Who may call what: writes need owner or manager of the event's
 * organization (mq_org_require: outsiders get NOT_FOUND, check-in staff
 * PERMISSION_DENIED); reads of published events are public (the online URL
 * and hidden ticket types are left out), members see everything.
 * Every write is read → check → mq_events_save with the version it read, so
 * two managers editing at once cannot overwrite each other (ABORTED), on
 * FerretDB as on MongoDB. Events go out through the outbox on topic
 * marquee.events, aggregate = event id.
 *
 * State machine (FAILED_PRECONDITION for anything else):
 *   DRAFT --publish--> PUBLISHED --complete (after start)--> COMPLETED
 *   DRAFT|PUBLISHED --cancel--> CANCELLED;  DRAFT --delete--> (gone)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "handlers/catalog/discovery.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_fx.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/catalog/v1/events.mq-server.h"
#include "store/catalog/categories_store.h"
#include "store/catalog/events_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define MAX_TICKET_TYPES 50
#define MAX_TAGS 10
#define ST(x) MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_##x

typedef Marquee__Catalog__V1__Event event_pb;
typedef Marquee__Catalog__V1__TicketType tt_pb;

/* ---- events and views ------------------------------------------------------------- */

void mq_catalog_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *event_id) {
  const mq_principal_t *who = mq_call_principal(call);
  mq_event_init(ev, "marquee.events", type, event_id, who ? who->subject : "system", mq_call_trace_id(call),
                mq_call_request_id(call));
}

/* What the public sees: no online URL, no hidden ticket types, never an
 * access code. Members see all but the codes. */
event_pb *mq_catalog_view(mq_call_t *call, const event_pb *e, bool member) {
  mq_arena_t *a = mq_call_arena(call);
  event_pb *v = mq_arena_alloc(a, sizeof *v);
  *v = *e;
  if (!member) v->online_url = (char *)"";
  v->ticket_types = mq_arena_alloc(a, (e->n_ticket_types ? e->n_ticket_types : 1) * sizeof *v->ticket_types);
  v->n_ticket_types = 0;
  for (size_t i = 0; i < e->n_ticket_types; i++) {
    if (e->ticket_types[i]->hidden && !member) continue;
    tt_pb *t = mq_arena_alloc(a, sizeof *t);
    *t = *e->ticket_types[i];
    t->access_code = (char *)"";
    v->ticket_types[v->n_ticket_types++] = t;
  }
  return v;
}

/* Loads the event and checks the caller's role in its organization; a
 * non-member learns nothing (NOT_FOUND on the event). */
static mq_code_t load_as(mq_call_t *call, const char *event_id, int weakest, event_pb **out, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "event_id", event_id);
  if (rc != MQ_OK) return rc;
  rc = mq_events_get(app->store, event_id, mq_call_arena(call), out, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc != MQ_OK) return rc;
  rc = mq_org_require(call, (*out)->organization_id, weakest, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "event_id", "changing events needs the manager role or stronger");
  return rc;
}

bool mq_catalog_is_member(mq_call_t *call, const char *org_id) {
  mq_app_t *app = mq_call_app(call);
  const mq_principal_t *who = mq_call_principal(call);
  if (!who) return false;
  if (who->roles & MQ_ROLE_ADMIN) return true;
  int role;
  mq_error_t ignored;
  return mq_orgs_role(app->store, org_id, who->subject, &role, &ignored) == MQ_OK;
}

bool mq_catalog_finished(const event_pb *e) {
  return e->state == ST(CANCELLED) || e->state == ST(COMPLETED);
}

/* ---- validation ------------------------------------------------------------------ */

mq_code_t mq_catalog_apply_cancel_policy(Marquee__Catalog__V1__Event *e, const Marquee__Catalog__V1__Event *in,
                                         const Google__Protobuf__FieldMask *mask, mq_error_t *err) {
  mq_code_t rc;
  if (mq_catalog_has_path(mask, "attendee_cancel_cutoff_hours")) {
    if ((rc = mq_check_range_i64(err, "attendee_cancel_cutoff_hours", in->attendee_cancel_cutoff_hours, 0, 8760)))
      return rc;
    e->attendee_cancel_cutoff_hours = in->attendee_cancel_cutoff_hours;
  }
  if (mq_catalog_has_path(mask, "attendee_cancel_disabled")) e->attendee_cancel_disabled = in->attendee_cancel_disabled;
  return MQ_OK;
}

bool mq_catalog_has_path(const Google__Protobuf__FieldMask *m, const char *p) {
  if (!m) return true; /* creation: every field */
  for (size_t i = 0; i < m->n_paths; i++)
    if (!strcmp(m->paths[i], p)) return true;
  return false;
}

mq_code_t mq_catalog_check_tags(char **tags, size_t n, mq_error_t *err) {
  mq_code_t rc = mq_check_count(err, "tags", n, MAX_TAGS);
  for (size_t i = 0; rc == MQ_OK && i < n; i++) {
    size_t len = tags[i] ? strlen(tags[i]) : 0;
    bool ok = len >= 1 && len <= 30;
    for (size_t k = 0; ok && k < len; k++)
      ok = (tags[i][k] >= 'a' && tags[i][k] <= 'z') || (tags[i][k] >= '0' && tags[i][k] <= '9') || tags[i][k] == '-';
    if (!ok) rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "tags", "each tag is 1..30 of a-z, 0-9 and '-'");
  }
  return rc;
}

/* Declared in catalog.h. The content fields an event and a series template
 * share, in one place: events.c and series.c both call this. */
void mq_catalog_apply_content(mq_call_t *call, event_pb *e, const event_pb *in, const Google__Protobuf__FieldMask *mask,
                              const char **venue_tz, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  if (mq_catalog_has_path(mask, "title") &&
      mq_check_text(err, "title", in->title, 1, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    e->title = in->title;
  if (mq_catalog_has_path(mask, "description_md") &&
      mq_check_text(err, "description_md", in->description_md ? in->description_md : "", 0, 20000, MQ_TEXT_MULTILINE) ==
          MQ_OK)
    e->description_md = in->description_md;
  if (mq_catalog_has_path(mask, "category_id") &&
      (!in->category_id || !in->category_id[0] || mq_categories_usable(app->store, in->category_id, err) == MQ_OK))
    e->category_id = in->category_id;
  if (mq_catalog_has_path(mask, "tags") && mq_catalog_check_tags(in->tags, in->n_tags, err) == MQ_OK) {
    e->tags = in->tags;
    e->n_tags = in->n_tags;
  }
  if (mq_catalog_has_path(mask, "image_ids")) {
    mq_code_t rc = mq_check_count(err, "image_ids", in->n_image_ids, MQ_CATALOG_MAX_IMAGES);
    for (size_t i = 0; rc == MQ_OK && i < in->n_image_ids; i++) rc = mq_check_id(err, "image_ids", in->image_ids[i]);
    if (rc == MQ_OK) {
      e->image_ids = in->image_ids;
      e->n_image_ids = in->n_image_ids;
    }
  }
  if (mq_catalog_has_path(mask, "cover_image_id") && (!in->cover_image_id || !in->cover_image_id[0] ||
                                                      mq_check_id(err, "cover_image_id", in->cover_image_id) == MQ_OK))
    e->cover_image_id = in->cover_image_id;
  if (mq_catalog_has_path(mask, "online_url") &&
      (!in->online_url || !in->online_url[0] ||
       mq_check_url(err, "online_url", in->online_url, MQ_URL_HTTPS_ONLY) == MQ_OK))
    e->online_url = in->online_url;
  if (mq_catalog_has_path(mask, "venue_id")) {
    if (!in->venue_id || !in->venue_id[0]) {
      e->venue_id = in->venue_id;
      e->city = e->country = e->region = (char *)"";
    } else if (mq_check_uuid(err, "venue_id", in->venue_id) == MQ_OK) {
      mq_venue_t v;
      mq_code_t rc = mq_venues_get(app->store, in->venue_id, a, &v, err);
      if (rc == MQ_NOT_FOUND || (rc == MQ_OK && strcmp(v.organization_id, e->organization_id))) {
        mq_error_set(err, MQ_INVALID_ARGUMENT, "venue_id", "not a venue of this organization");
      } else if (rc == MQ_OK) {
        e->venue_id = in->venue_id;
        e->city = (char *)v.city;
        e->country = (char *)v.country;
        e->region = (char *)(v.region ? v.region : "");
        if (venue_tz) *venue_tz = v.time_zone;
      }
    }
  }
  if (mq_catalog_has_path(mask, "language")) {
    const char *l = in->language && in->language[0] ? in->language : "en";
    if (mq_check_language(err, "language", l) == MQ_OK) e->language = (char *)l;
  }
  if (mq_catalog_has_path(mask, "visibility") &&
      mq_check_enum(err, "visibility", (int)in->visibility, &marquee__catalog__v1__visibility__descriptor, true) ==
          MQ_OK)
    e->visibility = in->visibility ? in->visibility : MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC;
  if (mq_catalog_has_path(mask, "age_policy") &&
      mq_check_text(err, "age_policy", in->age_policy ? in->age_policy : "", 0, 500, MQ_TEXT_MULTILINE) == MQ_OK)
    e->age_policy = in->age_policy;
  if (mq_catalog_has_path(mask, "refund_policy") &&
      mq_check_text(err, "refund_policy", in->refund_policy ? in->refund_policy : "", 0, 2000, MQ_TEXT_MULTILINE) ==
          MQ_OK)
    e->refund_policy = in->refund_policy;
  if (mq_catalog_has_path(mask, "capacity") && mq_check_range_i64(err, "capacity", in->capacity, 0, 10000000) == MQ_OK)
    e->capacity = in->capacity;
  mq_catalog_apply_cancel_policy(e, in, mask, err);
}

/* The fields of `in` named by `mask` (all when NULL) are validated and
 * copied onto `e`, every bad field reported (mq_error_collect). */
static mq_code_t apply_fields(mq_call_t *call, event_pb *e, const event_pb *in, const Google__Protobuf__FieldMask *mask,
                              mq_error_t *err) {
  static const char *const known[] = {"title",
                                      "description_md",
                                      "category_id",
                                      "tags",
                                      "image_ids",
                                      "cover_image_id",
                                      "venue_id",
                                      "online_url",
                                      "starts_at",
                                      "ends_at",
                                      "time_zone",
                                      "language",
                                      "currency",
                                      "visibility",
                                      "age_policy",
                                      "refund_policy",
                                      "capacity",
                                      "attendee_cancel_cutoff_hours",
                                      "attendee_cancel_disabled"};
  if (mask) {
    if (mask->n_paths == 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field");
    for (size_t i = 0; i < mask->n_paths; i++) {
      bool ok = false;
      for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= !strcmp(mask->paths[i], known[k]);
      if (!ok) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "unknown or read-only field");
    }
  }
  mq_error_collect(err);
  const char *venue_tz = NULL;
  mq_catalog_apply_content(call, e, in, mask, &venue_tz, err);
  /* the schedule: an explicit zone wins; else the venue's; else UTC */
  if (mq_catalog_has_path(mask, "time_zone") && in->time_zone && in->time_zone[0]) {
    if (mq_check_timezone(err, "time_zone", in->time_zone) == MQ_OK) e->time_zone = in->time_zone;
  } else if (venue_tz) {
    e->time_zone = (char *)venue_tz;
  } else if (!e->time_zone || !e->time_zone[0]) {
    e->time_zone = (char *)"UTC";
  }
  if (mq_catalog_has_path(mask, "starts_at")) e->starts_at = in->starts_at;
  if (mq_catalog_has_path(mask, "ends_at")) e->ends_at = in->ends_at;
  if (mq_catalog_has_path(mask, "currency") && mq_check_currency(err, "currency", in->currency) == MQ_OK) {
    if (e->n_ticket_types && e->currency && strcmp(e->currency, in->currency))
      mq_error_set(err, MQ_FAILED_PRECONDITION, "currency",
                   "the event has ticket types priced in %s; change or delete them first", e->currency);
    else
      e->currency = in->currency;
  }
  /* across fields */
  if (!e->starts_at) mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_at", "is required");
  if (!e->ends_at) mq_error_set(err, MQ_INVALID_ARGUMENT, "ends_at", "is required");
  if (e->starts_at && e->ends_at) {
    int64_t s = mq_pb_timestamp_ms(e->starts_at), en = mq_pb_timestamp_ms(e->ends_at);
    if (e->starts_at->nanos < 0 || e->starts_at->nanos > 999999999 || s < 946684800000LL || s > 4102444800000LL)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_at", "must be a time between 2000 and 2100");
    else if (en <= s)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "ends_at", "must be after starts_at");
    else if (en - s > 366LL * 86400000)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "ends_at", "an event lasts at most a year");
  }
  return mq_error_collected(err);
}

/* Derived, read-only fields: how people attend, and the cheapest visible price. */
void mq_catalog_derive(event_pb *e) {
  e->attendance_mode = e->venue_id && e->venue_id[0] ? MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_IN_PERSON
                                                     : MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE;
  int64_t best = -1;
  for (int pass = 0; pass < 2 && best < 0; pass++) /* visible ones first; hidden only if all are */
    for (size_t i = 0; i < e->n_ticket_types; i++) {
      const tt_pb *t = e->ticket_types[i];
      if (pass == 0 && t->hidden) continue;
      int64_t p = t->price ? t->price->amount_minor : 0;
      if (best < 0 || p < best) best = p;
    }
  e->min_price_minor = best < 0 ? 0 : best;
}

void mq_catalog_touch(mq_call_t *call, event_pb *e) {
  e->updated_at = mq_pb_timestamp(mq_call_arena(call), mq_now_unix_ms());
  mq_catalog_derive(e);
}

/* ---- events ---------------------------------------------------------------------- */

static mq_code_t ev_create(mq_call_t *call, const Marquee__Catalog__V1__CreateEventRequest *req, event_pb *resp,
                           mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const event_pb *in = req->event;
  if (!in) return mq_error_set(err, MQ_INVALID_ARGUMENT, "event", "is required");
  mq_code_t rc = mq_org_require(call, in->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) return rc;
  event_pb *e = mq_arena_alloc(a, sizeof *e);
  marquee__catalog__v1__event__init(e);
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  e->event_id = id;
  e->organization_id = in->organization_id;
  e->state = ST(DRAFT);
  e->version = 1;
  if ((rc = apply_fields(call, e, in, NULL, err)) != MQ_OK) return rc;
  e->created_at = mq_pb_timestamp(a, mq_now_unix_ms());
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventCreated pl = MARQUEE__EVENTS__V1__EVENT_CREATED__INIT;
  pl.event_id = id;
  pl.organization_id = e->organization_id;
  pl.title = e->title;
  mq_event_t ev;
  mq_catalog_event(&ev, call, "catalog.EventCreated", id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_CREATED;
  ev.env.event_created = &pl;
  if ((rc = mq_events_insert(app->store, e, &ev, err)) != MQ_OK) return rc;
  mq_app_event_changed(app, id);
  *resp = *mq_catalog_view(call, e, true);
  return MQ_OK;
}

static mq_code_t save_with(mq_call_t *call, event_pb *e, int64_t expected, const char *type,
                           Marquee__Events__V1__Envelope__PayloadCase pc, void *payload, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_event_t ev;
  mq_catalog_event(&ev, call, type, e->event_id);
  ev.env.payload_case = pc;
  /* every payload case of the catalog is a pointer in the same union slot */
  ev.env.event_updated = payload;
  mq_code_t rc = mq_events_save(app->store, e, expected, &ev, 1, err);
  mq_app_event_changed(app, e->event_id); /* even on failure: the write may have landed */
  return rc;
}

static mq_code_t ev_update(mq_call_t *call, const Marquee__Catalog__V1__UpdateEventRequest *req, event_pb *resp,
                           mq_error_t *err) {
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  if (!req->event) return mq_error_set(err, MQ_INVALID_ARGUMENT, "event", "is required with the new values");
  if (!req->update_mask) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name the fields to change");
  if (req->version <= 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "version", "send the version you read");
  if (req->version != e->version)
    return mq_error_set(err, MQ_ABORTED, "version", "the event changed since you read it; read it again");
  if (mq_catalog_finished(e))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "a cancelled or completed event cannot change");
  if ((rc = apply_fields(call, e, req->event, req->update_mask, err)) != MQ_OK) return rc;
  if (e->state == ST(PUBLISHED) && mq_catalog_has_path(req->update_mask, "venue_id") &&
      !(e->venue_id && e->venue_id[0]) && !(e->online_url && e->online_url[0]))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "venue_id", "a published event needs a venue or an online URL");
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventUpdated pl = MARQUEE__EVENTS__V1__EVENT_UPDATED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  pl.version = req->version + 1;
  pl.fields = req->update_mask->paths;
  pl.n_fields = req->update_mask->n_paths;
  if ((rc = save_with(call, e, req->version, "catalog.EventUpdated",
                      MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_UPDATED, &pl, err)) != MQ_OK)
    return rc;
  *resp = *mq_catalog_view(call, e, true);
  return MQ_OK;
}

/* Copies of the public views in `e` with their display prices in `cur`
 * (lib/mq_fx.h; absent without a rate): the views themselves may be shared
 * (discovery index, caches), so they are never written. */
static event_pb *with_display(mq_app_t *app, mq_arena_t *a, const event_pb *e, const char *cur) {
  event_pb *c = mq_arena_alloc(a, sizeof *c);
  *c = *e;
  if (!app->fx || !e->currency || !*e->currency) return c;
  int64_t now = mq_now_unix_ms(), v, asof = 0;
  if (mq_fx_convert(app->fx, e->min_price_minor, e->currency, cur, now, &v, &asof)) {
    c->display_min_price = mq_money(a, v, cur);
    c->display_rates_as_of = mq_pb_timestamp(a, asof);
  }
  c->ticket_types = mq_arena_alloc(a, (e->n_ticket_types ? e->n_ticket_types : 1) * sizeof *c->ticket_types);
  for (size_t i = 0; i < e->n_ticket_types; i++) {
    Marquee__Catalog__V1__TicketType *t = mq_arena_alloc(a, sizeof *t);
    *t = *e->ticket_types[i];
    if (t->price && mq_fx_convert(app->fx, t->price->amount_minor, e->currency, cur, now, &v, NULL))
      t->display_price = mq_money(a, v, cur);
    c->ticket_types[i] = t;
  }
  return c;
}

/* The public read path. Anonymous readers are answered from the in-process
 * cache of public views (mq_app.h: invalidated by this instance's writes and
 * by every instance's catalog events, bounded by MARQUEE_CACHE_TTL_MS), on
 * the queue thread when it hits. Signed-in readers may be members, which
 * needs a membership read, so they take the worker pool. */
static mq_code_t ev_get(mq_call_t *call, const Marquee__Catalog__V1__GetEventRequest *req, event_pb *resp,
                        mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "event_id", req->event_id);
  const char *display = req->display_currency && *req->display_currency ? req->display_currency : NULL;
  if (rc == MQ_OK && display) rc = mq_check_currency(err, "display_currency", display);
  if (rc != MQ_OK) return rc;
  bool anonymous = !mq_call_principal(call);
  char key[80];
  snprintf(key, sizeof key, "e:%s", req->event_id);
  void *buf;
  size_t len;
  if (anonymous && !display && app->events && mq_cache_get(app->events, key, a, &buf, &len)) {
    mq_call_reply_packed(call, buf, len); /* the cached bytes are the reply */
    if (app->event_viewed) app->event_viewed(app, req->event_id);
    return MQ_OK;
  }
  uint64_t ticket = app->events ? mq_cache_ticket(app->events, key) : 0;
  /* a listed event from the discovery index (on the queue thread), else the store */
  event_pb *e = anonymous ? mq_discovery_get(app->discovery, req->event_id, a) : NULL;
  if (!e && mq_call_inline(call)) return MQ_PENDING;
  if (!e) rc = mq_events_get(app->store, req->event_id, a, &e, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc != MQ_OK) return rc;
  bool member = !anonymous && mq_catalog_is_member(call, e->organization_id);
  if (!member && e->state == ST(DRAFT)) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  event_pb *v = mq_catalog_view(call, e, member);
  if (!member && app->events) {
    size_t n = marquee__catalog__v1__event__get_packed_size(v);
    uint8_t *packed = mq_arena_alloc(a, n ? n : 1);
    marquee__catalog__v1__event__pack(v, packed);
    mq_cache_put(app->events, key, packed, n, ticket);
  }
  *resp = display ? *with_display(app, a, v, display) : *v;
  if (!member && app->event_viewed) app->event_viewed(app, e->event_id); /* a page view: lossy, never blocks */
  return MQ_OK;
}

/* page tokens (lib/mq_page.h): the cursor is "<sort key ms>.<event id>" */
static mq_code_t parse_token(const ProtobufCMessage *req, const char *token, mq_events_query_t *q, mq_arena_t *a,
                             mq_error_t *err) {
  return mq_page_token_read_key(a, req, "page_token", token, &q->has_cursor, &q->after_ms, &q->after_id, err);
}

static void reply_page(mq_call_t *call, const ProtobufCMessage *req, event_pb **evs, size_t n, bool more, bool newest,
                       bool members, Marquee__Catalog__V1__ListEventsResponse *resp) {
  mq_arena_t *a = mq_call_arena(call);
  resp->events = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->events);
  for (size_t i = 0; i < n; i++) resp->events[resp->n_events++] = mq_catalog_view(call, evs[i], members);
  resp->next_page_token = (char *)"";
  if (more && n) {
    const event_pb *last = evs[n - 1];
    const Google__Protobuf__Timestamp *k = newest ? last->published_at : last->starts_at;
    resp->next_page_token = mq_page_token_make_key(a, req, k ? mq_pb_timestamp_ms(k) : 0, last->event_id);
  }
}

static mq_code_t ev_list(mq_call_t *call, const Marquee__Catalog__V1__ListEventsRequest *req,
                         Marquee__Catalog__V1__ListEventsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_events_query_t q = {.public_only = true};
  uint32_t page;
  mq_code_t rc = mq_check_page_size(err, "page_size", req->page_size, 20, 100, &page);
  if (rc != MQ_OK) return rc;
  if ((rc = mq_check_enum(err, "sort", (int)req->sort, &marquee__catalog__v1__event_sort__descriptor, true)) ||
      (rc = mq_check_enum(err, "attendance_mode", (int)req->attendance_mode,
                          &marquee__catalog__v1__attendance_mode__descriptor, true)))
    return rc;
  q.newest = req->sort == MARQUEE__CATALOG__V1__EVENT_SORT__EVENT_SORT_NEWEST;
  if (req->category_id && req->category_id[0]) {
    if ((rc = mq_check_uuid(err, "category_id", req->category_id)) != MQ_OK) return rc;
    q.category_id = req->category_id;
  }
  if (req->organization_id && req->organization_id[0]) {
    if ((rc = mq_check_uuid(err, "organization_id", req->organization_id)) != MQ_OK) return rc;
    q.organization_id = req->organization_id;
  }
  if (req->city && req->city[0]) {
    if ((rc = mq_check_text(err, "city", req->city, 1, 100, MQ_TEXT_SINGLE_LINE)) != MQ_OK) return rc;
    char *k = mq_arena_alloc(a, 128);
    mq_events_city_key(req->city, k);
    q.city_key = k;
  }
  if (req->country && req->country[0]) {
    if ((rc = mq_check_country(err, "country", req->country)) != MQ_OK) return rc;
    q.country = req->country;
  }
  if (req->currency && req->currency[0]) {
    if ((rc = mq_check_currency(err, "currency", req->currency)) != MQ_OK) return rc;
    q.currency = req->currency;
  }
  const char *display = req->display_currency && *req->display_currency ? req->display_currency : NULL;
  if (display && (rc = mq_check_currency(err, "display_currency", display)) != MQ_OK) return rc;
  if (req->min_price_minor < 0 || req->max_price_minor < 0)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, req->min_price_minor < 0 ? "min_price_minor" : "max_price_minor",
                        "must not be negative");
  if ((req->min_price_minor || req->max_price_minor) && !q.currency)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "currency", "is required with a price range");
  if (req->max_price_minor && req->max_price_minor < req->min_price_minor)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "max_price_minor", "must be at least min_price_minor");
  q.min_price_minor = req->min_price_minor;
  q.max_price_minor = req->max_price_minor;
  q.free_only = req->free_only;
  q.attendance_mode = (int)req->attendance_mode;
  /* "upcoming" means from the current minute: a page is the same for a
   * minute, so it can be cached (an event that began < 60 s ago still shows) */
  q.starts_after_ms = req->starts_after ? mq_pb_timestamp_ms(req->starts_after) : mq_now_unix_ms() / 60000 * 60000;
  q.starts_before_ms = req->starts_before ? mq_pb_timestamp_ms(req->starts_before) : 0;
  if (q.starts_before_ms && q.starts_before_ms <= q.starts_after_ms)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_before", "must be after starts_after");
  if ((rc = parse_token(&req->base, req->page_token, &q, a, err)) != MQ_OK) return rc;
  /* the page cache: keyed by the request as validated, with "upcoming" resolved */
  char *key = NULL;
  Marquee__Catalog__V1__ListEventsRequest kreq = *req;
  Google__Protobuf__Timestamp after = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  after.seconds = q.starts_after_ms / 1000;
  kreq.starts_after = &after;
  kreq.page_size = page;
  size_t klen = marquee__catalog__v1__list_events_request__get_packed_size(&kreq);
  if (app->event_pages && klen <= 600) {
    uint8_t kb[600];
    marquee__catalog__v1__list_events_request__pack(&kreq, kb);
    key = mq_arena_alloc(a, 2 * klen + 3);
    key[0] = 'l';
    key[1] = ':';
    for (size_t i = 0; i < klen; i++) snprintf(key + 2 + 2 * i, 3, "%02x", kb[i]);
    void *buf;
    size_t len;
    if (!display && mq_cache_get(app->event_pages, key, a, &buf, &len)) {
      mq_call_reply_packed(call, buf, len); /* the cached bytes are the reply */
      return MQ_OK;
    }
  }
  uint64_t ticket = key ? mq_cache_ticket(app->event_pages, key) : 0;
  q.limit = page + 1; /* one more says whether there is a next page */
  event_pb **evs;
  size_t n;
  /* the discovery index answers on the queue thread; the store on a worker */
  if (!mq_discovery_list(app->discovery, &q, a, &evs, &n)) {
    if (mq_call_inline(call)) return MQ_PENDING;
    if ((rc = mq_events_list(app->store, &q, a, &evs, &n, err)) != MQ_OK) return rc;
  }
  reply_page(call, &req->base, evs, n > page ? page : n, n > page, q.newest, false, resp);
  if (key) {
    size_t pn = marquee__catalog__v1__list_events_response__get_packed_size(resp);
    uint8_t *packed = mq_arena_alloc(a, pn ? pn : 1);
    marquee__catalog__v1__list_events_response__pack(resp, packed);
    mq_cache_put(app->event_pages, key, packed, pn, ticket);
  }
  for (size_t i = 0; display && i < resp->n_events; i++)
    resp->events[i] = with_display(app, a, resp->events[i], display);
  return MQ_OK;
}

static mq_code_t ev_list_org(mq_call_t *call, const Marquee__Catalog__V1__ListOrganizationEventsRequest *req,
                             Marquee__Catalog__V1__ListEventsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_CHECKIN, NULL, err);
  if (rc != MQ_OK) return rc;
  uint32_t page;
  if ((rc = mq_check_page_size(err, "page_size", req->page_size, 20, 100, &page)) != MQ_OK) return rc;
  if ((rc = mq_check_enum(err, "state", (int)req->state, &marquee__catalog__v1__event_state__descriptor, true)))
    return rc;
  mq_events_query_t q = {.organization_id = req->organization_id, .state = (int)req->state};
  if ((rc = parse_token(&req->base, req->page_token, &q, a, err)) != MQ_OK) return rc;
  q.limit = page + 1;
  event_pb **evs;
  size_t n;
  if ((rc = mq_events_list(app->store, &q, a, &evs, &n, err)) != MQ_OK) return rc;
  reply_page(call, &req->base, evs, n > page ? page : n, n > page, false, true, resp);
  return MQ_OK;
}

static mq_code_t check_version(const event_pb *e, int64_t v, mq_error_t *err) {
  if (v && v != e->version)
    return mq_error_set(err, MQ_ABORTED, "version", "the event changed since you read it; read it again");
  return MQ_OK;
}

static mq_code_t ev_publish(mq_call_t *call, const Marquee__Catalog__V1__PublishEventRequest *req, event_pb *resp,
                            mq_error_t *err) {
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc == MQ_OK) rc = check_version(e, req->version, err);
  if (rc != MQ_OK) return rc;
  if (e->state != ST(DRAFT))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "only a draft can be published");
  if (!e->n_ticket_types)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_types", "add at least one ticket type first");
  if (mq_pb_timestamp_ms(e->starts_at) <= mq_now_unix_ms())
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "starts_at", "the event must start in the future");
  if (!(e->venue_id && e->venue_id[0]) && !(e->online_url && e->online_url[0]))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "venue_id", "set a venue or an online URL first");
  int64_t before = e->version;
  e->state = ST(PUBLISHED);
  e->published_at = mq_pb_timestamp(mq_call_arena(call), mq_now_unix_ms());
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventPublished pl = MARQUEE__EVENTS__V1__EVENT_PUBLISHED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  pl.title = e->title;
  pl.starts_at = e->starts_at;
  if ((rc = save_with(call, e, before, "catalog.EventPublished", MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_PUBLISHED,
                      &pl, err)) != MQ_OK)
    return rc;
  *resp = *mq_catalog_view(call, e, true);
  return MQ_OK;
}

static mq_code_t ev_cancel(mq_call_t *call, const Marquee__Catalog__V1__CancelEventRequest *req, event_pb *resp,
                           mq_error_t *err) {
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc == MQ_OK) rc = check_version(e, req->version, err);
  if (rc == MQ_OK) rc = mq_check_text(err, "reason", req->reason, 1, 500, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  if (mq_catalog_finished(e))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event is already cancelled or completed");
  int64_t before = e->version;
  e->state = ST(CANCELLED);
  e->cancel_reason = req->reason;
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventCancelled pl = MARQUEE__EVENTS__V1__EVENT_CANCELLED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  pl.reason = req->reason;
  /* first the trigger that makes bookings follow (bookings/bookings.h) */
  if ((rc = mq_bookings_event_cancelling(((mq_app_t *)mq_call_app(call))->store, e->event_id,
                                         mq_call_principal(call)->subject, req->reason, err)) != MQ_OK)
    return rc;
  if ((rc = save_with(call, e, before, "catalog.EventCancelled", MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_CANCELLED,
                      &pl, err)) != MQ_OK)
    return rc;
  *resp = *mq_catalog_view(call, e, true);
  return MQ_OK;
}

static mq_code_t ev_complete(mq_call_t *call, const Marquee__Catalog__V1__CompleteEventRequest *req, event_pb *resp,
                             mq_error_t *err) {
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  if (e->state != ST(PUBLISHED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "only a published event can be completed");
  if (mq_pb_timestamp_ms(e->starts_at) > mq_now_unix_ms())
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "the event has not started yet");
  int64_t before = e->version;
  e->state = ST(COMPLETED);
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventCompleted pl = MARQUEE__EVENTS__V1__EVENT_COMPLETED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  if ((rc = save_with(call, e, before, "catalog.EventCompleted", MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_COMPLETED,
                      &pl, err)) != MQ_OK)
    return rc;
  *resp = *mq_catalog_view(call, e, true);
  return MQ_OK;
}

static mq_code_t ev_delete(mq_call_t *call, const Marquee__Catalog__V1__DeleteEventRequest *req,
                           Marquee__Catalog__V1__DeleteEventResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  if (e->state != ST(DRAFT))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "only drafts can be deleted; cancel it instead");
  Marquee__Events__V1__EventDeleted pl = MARQUEE__EVENTS__V1__EVENT_DELETED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  mq_event_t ev;
  mq_catalog_event(&ev, call, "catalog.EventDeleted", e->event_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_DELETED;
  ev.env.event_deleted = &pl;
  rc = mq_events_delete(app->store, e->event_id, mq_call_principal(call)->subject, &ev, err);
  mq_app_event_changed(app, e->event_id);
  return rc;
}

/* ---- ticket types ------------------------------------------------------------------ */

/* "<prefix>.<name>", the field a violation names. */
static const char *fld(mq_arena_t *a, const char *prefix, const char *name) {
  return mq_arena_sprintf(a, "%s.%s", prefix, name);
}

/* Declared in catalog.h. One ticket type's fields, for events (field names
 * "ticket_type.*") and series templates ("ticket_types.*"). */
mq_code_t mq_catalog_apply_ticket_type(mq_call_t *call, const event_pb *e, tt_pb *t, const tt_pb *in,
                                       const Google__Protobuf__FieldMask *mask, const char *prefix, mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  static const char *const known[] = {"name",        "description", "price",         "capacity",
                                      "sales_start", "sales_end",   "min_per_order", "max_per_order",
                                      "hidden",      "access_code", "sort_order",    "max_per_user"};
  if (mask) {
    if (!mask->n_paths) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field");
    for (size_t i = 0; i < mask->n_paths; i++) {
      bool ok = false;
      for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= !strcmp(mask->paths[i], known[k]);
      if (!ok) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "unknown or read-only field");
    }
  }
  mq_error_collect(err); /* every bad field, not just the first */
  if (mq_catalog_has_path(mask, "name") &&
      mq_check_text(err, fld(a, prefix, "name"), in->name, 1, 100, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    t->name = in->name;
  if (mq_catalog_has_path(mask, "description") &&
      mq_check_text(err, fld(a, prefix, "description"), in->description ? in->description : "", 0, 1000,
                    MQ_TEXT_MULTILINE) == MQ_OK)
    t->description = in->description;
  if (mq_catalog_has_path(mask, "price")) {
    const Marquee__Common__V1__Money *p = in->price;
    bool ok = p != NULL;
    if (!p) mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "price"), "is required (amount 0 for free)");
    if (p && (p->amount_minor < 0 || p->amount_minor > 100000000000LL)) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "price.amount_minor"), "must be 0..100,000,000,000");
      ok = false;
    }
    if (p && (!e->currency || !e->currency[0])) {
      mq_error_set(err, MQ_FAILED_PRECONDITION, "currency", "set the event's currency first");
      ok = false;
    } else if (p && (!p->currency || strcmp(p->currency, e->currency))) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "price.currency"), "must be the event's currency (%s)",
                   e->currency);
      ok = false;
    }
    if (ok) {
      Marquee__Common__V1__Money *m = mq_arena_alloc(a, sizeof *m);
      marquee__common__v1__money__init(m);
      m->amount_minor = p->amount_minor;
      m->currency = p->currency;
      t->price = m;
    }
  }
  if (mq_catalog_has_path(mask, "capacity") &&
      mq_check_range_i64(err, fld(a, prefix, "capacity"), in->capacity, 1, 1000000) == MQ_OK)
    t->capacity = in->capacity;
  if (mq_catalog_has_path(mask, "sales_start")) t->sales_start = in->sales_start;
  if (mq_catalog_has_path(mask, "sales_end")) t->sales_end = in->sales_end;
  if (mq_catalog_has_path(mask, "min_per_order")) t->min_per_order = in->min_per_order ? in->min_per_order : 1;
  if (mq_catalog_has_path(mask, "max_per_order")) t->max_per_order = in->max_per_order ? in->max_per_order : 10;
  if (mq_catalog_has_path(mask, "hidden")) t->hidden = in->hidden;
  if (mq_catalog_has_path(mask, "sort_order")) t->sort_order = in->sort_order;
  if (mq_catalog_has_path(mask, "max_per_user") &&
      mq_check_range_i64(err, fld(a, prefix, "max_per_user"), in->max_per_user, 0, 1000) == MQ_OK)
    t->max_per_user = in->max_per_user;
  if (mq_catalog_has_path(mask, "access_code")) {
    if (!in->access_code || !in->access_code[0]) {
      t->access_code = (char *)"";
    } else if (mq_check_text(err, fld(a, prefix, "access_code"), in->access_code, 4, 64, MQ_TEXT_SINGLE_LINE) ==
               MQ_OK) {
      char *h = mq_arena_alloc(a, 65);
      mq_token_hash(in->access_code, h); /* stored as SHA-256 only */
      t->access_code = h;
    }
  }
  if (err->code != MQ_OK) return mq_error_collected(err); /* the fields first, then how they fit together */
  if (t->max_per_order > 100 || t->min_per_order > t->max_per_order)
    mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "max_per_order"),
                 "must be at least min_per_order and at most 100");
  if ((int64_t)t->min_per_order > t->capacity)
    mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "min_per_order"), "must not exceed the capacity");
  if (t->sales_start && t->sales_end && mq_pb_timestamp_ms(t->sales_end) <= mq_pb_timestamp_ms(t->sales_start))
    mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "sales_end"), "must be after sales_start");
  else if (t->sales_end && e->ends_at && mq_pb_timestamp_ms(t->sales_end) > mq_pb_timestamp_ms(e->ends_at))
    mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "sales_end"), "must not be after the event ends");
  if (t->hidden && !(t->access_code && t->access_code[0]))
    mq_error_set(err, MQ_INVALID_ARGUMENT, fld(a, prefix, "access_code"), "a hidden ticket type needs an access code");
  return mq_error_collected(err);
}

static mq_code_t save_tt(mq_call_t *call, event_pb *e, const tt_pb *t, const char *change, mq_error_t *err) {
  int64_t before = e->version;
  mq_catalog_touch(call, e);
  Marquee__Events__V1__TicketTypeChanged pl = MARQUEE__EVENTS__V1__TICKET_TYPE_CHANGED__INIT;
  pl.event_id = e->event_id;
  pl.ticket_type_id = t->ticket_type_id;
  pl.change = (char *)change;
  pl.capacity = t->capacity;
  return save_with(call, e, before, "catalog.TicketTypeChanged",
                   MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_TYPE_CHANGED, &pl, err);
}

static mq_code_t tt_create(mq_call_t *call, const Marquee__Catalog__V1__CreateTicketTypeRequest *req, tt_pb *resp,
                           mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  if (!req->ticket_type) return mq_error_set(err, MQ_INVALID_ARGUMENT, "ticket_type", "is required");
  if (mq_catalog_finished(e))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "a cancelled or completed event cannot change");
  if (e->n_ticket_types >= MAX_TICKET_TYPES)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_type", "an event has at most %d ticket types",
                        MAX_TICKET_TYPES);
  tt_pb *t = mq_arena_alloc(a, sizeof *t);
  marquee__catalog__v1__ticket_type__init(t);
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  t->ticket_type_id = id;
  t->min_per_order = 1;
  t->max_per_order = 10;
  if ((rc = mq_catalog_apply_ticket_type(call, e, t, req->ticket_type, NULL, "ticket_type", err)) != MQ_OK) return rc;
  tt_pb **all = mq_arena_alloc(a, (e->n_ticket_types + 1) * sizeof *all);
  memcpy(all, e->ticket_types, e->n_ticket_types * sizeof *all);
  all[e->n_ticket_types] = t;
  e->ticket_types = all;
  e->n_ticket_types++;
  if ((rc = save_tt(call, e, t, "created", err)) != MQ_OK) return rc;
  *resp = *t;
  resp->access_code = (char *)"";
  return MQ_OK;
}

static mq_code_t find_tt(event_pb *e, const char *id, size_t *idx, mq_error_t *err) {
  for (size_t i = 0; id && i < e->n_ticket_types; i++)
    if (!strcmp(e->ticket_types[i]->ticket_type_id, id)) {
      *idx = i;
      return MQ_OK;
    }
  return mq_error_set(err, MQ_NOT_FOUND, "ticket_type_id", "no such ticket type in this event");
}

static mq_code_t tt_update(mq_call_t *call, const Marquee__Catalog__V1__UpdateTicketTypeRequest *req, tt_pb *resp,
                           mq_error_t *err) {
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  if (!req->ticket_type || !req->update_mask)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "ticket_type", "send the ticket type and an update_mask");
  if (mq_catalog_finished(e))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "event_id", "a cancelled or completed event cannot change");
  size_t i;
  if ((rc = find_tt(e, req->ticket_type->ticket_type_id, &i, err)) != MQ_OK) return rc;
  tt_pb *t = mq_arena_alloc(mq_call_arena(call), sizeof *t);
  *t = *e->ticket_types[i];
  if ((rc = mq_catalog_apply_ticket_type(call, e, t, req->ticket_type, req->update_mask, "ticket_type", err)) != MQ_OK)
    return rc;
  e->ticket_types[i] = t;
  if ((rc = save_tt(call, e, t, "updated", err)) != MQ_OK) return rc;
  *resp = *t;
  resp->access_code = (char *)"";
  return MQ_OK;
}

static mq_code_t tt_delete(mq_call_t *call, const Marquee__Catalog__V1__DeleteTicketTypeRequest *req,
                           Marquee__Catalog__V1__DeleteTicketTypeResponse *resp, mq_error_t *err) {
  (void)resp;
  event_pb *e;
  mq_code_t rc = load_as(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc != MQ_OK) return rc;
  size_t i;
  if ((rc = find_tt(e, req->ticket_type_id, &i, err)) != MQ_OK) return rc;
  if (e->state != ST(DRAFT))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_type_id",
                        "ticket types of a published event cannot be deleted (hide them, or end their sales)");
  tt_pb *t = e->ticket_types[i];
  memmove(&e->ticket_types[i], &e->ticket_types[i + 1], (e->n_ticket_types - i - 1) * sizeof *e->ticket_types);
  e->n_ticket_types--;
  return save_tt(call, e, t, "deleted", err);
}

/* ---- registration -------------------------------------------------------------------- */

static const marquee__catalog__v1__event_service_handlers_t handlers = {
    .create_event = {ev_create, MQ_POLICY_RESOURCE, 0},
    .update_event = {ev_update, MQ_POLICY_RESOURCE, 0},
    .get_event = {ev_get, MQ_POLICY_PUBLIC, MQ_RUN_TRY_INLINE}, /* members see more: decided in the handler */
    .list_events = {ev_list, MQ_POLICY_PUBLIC, MQ_RUN_TRY_INLINE},
    .list_organization_events = {ev_list_org, MQ_POLICY_RESOURCE, 0},
    .publish_event = {ev_publish, MQ_POLICY_RESOURCE, 0},
    .cancel_event = {ev_cancel, MQ_POLICY_RESOURCE, 0},
    .complete_event = {ev_complete, MQ_POLICY_RESOURCE, 0},
    .delete_event = {ev_delete, MQ_POLICY_RESOURCE, 0},
    .create_ticket_type = {tt_create, MQ_POLICY_RESOURCE, 0},
    .update_ticket_type = {tt_update, MQ_POLICY_RESOURCE, 0},
    .delete_ticket_type = {tt_delete, MQ_POLICY_RESOURCE, 0},
};

int event_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__catalog__v1__event_service__mq_register(srv, &handlers);
}
