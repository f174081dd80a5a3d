/*
 * series.c — marquee.catalog.v1.SeriesService: series of recurring events
 * (catalog issue, item 3). A series is a template (an Event's content fields
 * and ticket types) plus a schedule; each occurrence is an ordinary event of
 * EventService (a DRAFT at first) with series_id set and its own copy of the
 * ticket types (own ids, own capacity).
 *
 * Who may call what: writes need owner or manager of the series'
 * organization, GetSeries any member (mq_org_require: outsiders get
 * NOT_FOUND "series_id"); ListSeriesOccurrences is public for published
 * occurrences, members see them all.
 *
 * Times: the schedule is local wall time in the series' time zone; every
 * occurrence starts at the same local time of day across DST changes and
 * lasts duration_minutes of elapsed time (lib/mq_recur.h resolves gaps
 * and overlaps).
 *
 * Crash consistency of the N inserts: store/catalog/series_store.h (plan
 * first, deterministic event ids, SeriesCreated last).
 *
 * Many occurrences at once (UpdateSeries, PublishSeries, CancelSeries): each
 * occurrence is read, changed and saved through mq_events_save with the
 * version it read, exactly as EventService does, and emits the same event
 * (EventUpdated / EventPublished / EventCancelled, same payloads). When the
 * save is ABORTED — someone changed that occurrence between our read and our
 * write, e.g. an UpdateEvent on it — the occurrence is read again and the
 * change re-applied once on top of the other edit; a second ABORTED is
 * reported for that occurrence (FAILED, code ABORTED) and the call goes on
 * with the others. The call answers OK with one outcome per occurrence in
 * scope: without transactions a run is never all-or-nothing, so it says
 * exactly what happened instead of failing after changing half of them.
 * UpdateSeries sets only the fields named in its mask: an occurrence edited
 * individually keeps its own values of the other fields, and takes the
 * series' value of the named ones (the later edit wins).
 *
 * Shared with events.c through handlers/catalog/catalog.h: the derived
 * fields, the public view, membership and tag rules, and the validation of
 * the template's content fields and ticket types (mq_catalog_apply_content,
 * mq_catalog_apply_ticket_type): a template is an event without a schedule,
 * so the schedule and the currency are checked here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "handlers/bookings/bookings.h"
#include "handlers/catalog/catalog.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_page.h"
#include "lib/mq_recur.h"
#include "lib/mq_validate.h"
#include "marquee/catalog/v1/series.mq-server.h"
#include "store/catalog/categories_store.h"
#include "store/catalog/events_store.h"
#include "store/catalog/series_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define MAX_OCC MQ_SERIES_MAX_OCCURRENCES
#define MAX_TICKET_TYPES 50
#define MAX_TAGS 10
#define DURATION_MAX_MIN 527040      /* 366 days: an event lasts at most a year */
#define MIN_START_MS 946684800000LL  /* 2000-01-01 */
#define MAX_START_MS 4102444800000LL /* 2100-01-01 */
#define ST(x) MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_##x
#define RES(x) MARQUEE__CATALOG__V1__OCCURRENCE_RESULT__OCCURRENCE_RESULT_##x
#define SCOPE(x) MARQUEE__CATALOG__V1__SERIES_UPDATE_SCOPE__SERIES_UPDATE_SCOPE_##x

typedef Marquee__Catalog__V1__Event event_pb;
typedef Marquee__Catalog__V1__TicketType tt_pb;
typedef Marquee__Catalog__V1__Series series_pb;
typedef Marquee__Catalog__V1__SeriesChangeResponse change_pb;
typedef Marquee__Catalog__V1__OccurrenceOutcome outcome_pb;

/* ---- ids and events ------------------------------------------------------------------ */

static int hexval(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* A name-based UUID (RFC 9562 version 8): the first 128 bits of SHA-256 of
 * the formatted name, with the version and variant bits set. Same name, same
 * id — in any process, on any retry. */
static void __attribute__((format(printf, 2, 3))) derived_uuid(char out[37], const char *fmt, ...) {
  char name[256], h[65];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  mq_token_hash(name, h);
  h[12] = '8';
  h[16] = "89ab"[hexval(h[16]) & 3];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static const char *occurrence_id(mq_arena_t *a, const char *series_id, size_t index) {
  char *id = mq_arena_alloc(a, 37);
  derived_uuid(id, "occurrence|%s|%zu", series_id, index);
  return id;
}

/* ---- the template's fields (events.c validates them: catalog.h) ---- */

/* The content fields a series template has (and UpdateSeries may change):
 * mq_catalog_apply_content's, without the schedule (starts_at, ends_at,
 * time_zone: the series computes them) and, on update, without currency. */
static const char *const series_paths[] = {"title",
                                           "description_md",
                                           "category_id",
                                           "tags",
                                           "image_ids",
                                           "cover_image_id",
                                           "venue_id",
                                           "online_url",
                                           "language",
                                           "visibility",
                                           "age_policy",
                                           "refund_policy",
                                           "capacity",
                                           "attendee_cancel_cutoff_hours",
                                           "attendee_cancel_disabled"};

/* A new template ticket type: events.c's validation with the request's
 * field names ("ticket_types.*"). Sales windows are absolute times, which
 * mean nothing for a template: they are set per occurrence
 * (UpdateTicketType). */
static mq_code_t apply_tt(mq_call_t *call, const event_pb *tmpl, tt_pb *t, const tt_pb *in, mq_error_t *err) {
  if (in->sales_start || in->sales_end)
    return mq_error_set(err, MQ_INVALID_ARGUMENT,
                        in->sales_start ? "ticket_types.sales_start" : "ticket_types.sales_end",
                        "sales windows are per occurrence: set them with UpdateTicketType");
  return mq_catalog_apply_ticket_type(call, tmpl, t, in, NULL, "ticket_types", err);
}

/* ---- the series ---------------------------------------------------------------------- */

static series_pb *series_view(mq_call_t *call, const mq_series_t *s) {
  mq_arena_t *a = mq_call_arena(call);
  series_pb *p = mq_arena_alloc(a, sizeof *p);
  marquee__catalog__v1__series__init(p);
  p->series_id = (char *)s->id;
  p->organization_id = (char *)s->organization_id;
  p->title = (char *)s->title;
  p->rrule = (char *)s->rrule;
  p->time_zone = (char *)s->time_zone;
  p->occurrence_count = (uint32_t)s->n_occ;
  p->event_ids = mq_arena_alloc(a, (s->n_occ ? s->n_occ : 1) * sizeof *p->event_ids);
  for (size_t i = 0; i < s->n_occ; i++) p->event_ids[p->n_event_ids++] = (char *)s->occ[i].event_id;
  p->created_at = mq_pb_timestamp(a, s->created_ms);
  p->updated_at = mq_pb_timestamp(a, s->updated_ms);
  p->version = s->version;
  p->state = (Marquee__Catalog__V1__SeriesState)s->state;
  p->first_start_local = (char *)s->first_start_local;
  p->duration_minutes = s->duration_minutes;
  p->explicit_starts_local = (char **)s->explicit_starts;
  p->n_explicit_starts_local = s->n_explicit;
  p->cancel_reason = (char *)s->cancel_reason;
  return p;
}

static void pack_template(mq_call_t *call, const event_pb *t, mq_series_t *s) {
  size_t len = marquee__catalog__v1__event__get_packed_size(t);
  uint8_t *buf = mq_arena_alloc(mq_call_arena(call), len ? len : 1);
  marquee__catalog__v1__event__pack(t, buf);
  s->template_pb = buf;
  s->template_len = len;
}

static mq_code_t unpack_template(mq_call_t *call, const mq_series_t *s, event_pb **out, mq_error_t *err) {
  ProtobufCAllocator al = mq_arena_allocator(mq_call_arena(call));
  *out = marquee__catalog__v1__event__unpack(&al, s->template_len, s->template_pb);
  if (!*out) return mq_error_set(err, MQ_INTERNAL, NULL, "the template of series %s cannot be read", s->id);
  return MQ_OK;
}

/* Loads the series and checks the caller's role in its organization; a
 * non-member learns nothing (NOT_FOUND on the series). */
static mq_code_t load_as(mq_call_t *call, const char *series_id, int weakest, mq_series_t *s, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "series_id", series_id);
  if (rc == MQ_OK) rc = mq_series_get(app->store, series_id, mq_call_arena(call), s, err);
  if (rc != MQ_OK) return rc;
  rc = mq_org_require(call, s->organization_id, weakest, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "series_id", "no such series");
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "series_id", "changing a series needs the manager role or stronger");
  return rc;
}

/* Inserts one planned occurrence: a DRAFT copy of the template at its
 * times, with fresh ticket type ids, carrying its EventCreated. */
static mq_code_t insert_occurrence(mq_call_t *call, const mq_series_t *s, const event_pb *tmpl,
                                   const mq_series_occ_t *o, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  event_pb *e = mq_arena_alloc(a, sizeof *e);
  *e = *tmpl;
  e->event_id = (char *)o->event_id;
  e->organization_id = (char *)s->organization_id;
  e->series_id = (char *)s->id;
  e->starts_at = mq_pb_timestamp(a, o->starts_ms);
  e->ends_at = mq_pb_timestamp(a, o->ends_ms);
  e->time_zone = (char *)s->time_zone;
  e->state = ST(DRAFT);
  e->version = 1;
  e->cancel_reason = (char *)"";
  e->published_at = NULL;
  e->created_at = mq_pb_timestamp(a, mq_now_unix_ms());
  e->ticket_types = mq_arena_alloc(a, (tmpl->n_ticket_types ? tmpl->n_ticket_types : 1) * sizeof *e->ticket_types);
  for (size_t i = 0; i < tmpl->n_ticket_types; i++) {
    tt_pb *t = mq_arena_alloc(a, sizeof *t);
    *t = *tmpl->ticket_types[i];
    char *id = mq_arena_alloc(a, 37);
    mq_uuid_v4(id);
    t->ticket_type_id = id;
    e->ticket_types[i] = t;
  }
  mq_catalog_touch(call, e);
  Marquee__Events__V1__EventCreated pl = MARQUEE__EVENTS__V1__EVENT_CREATED__INIT;
  pl.event_id = e->event_id;
  pl.organization_id = e->organization_id;
  pl.title = e->title;
  pl.series_id = e->series_id;
  mq_event_t ev;
  mq_catalog_event(&ev, call, "catalog.EventCreated", e->event_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_CREATED;
  ev.env.event_created = &pl;
  return mq_events_insert(app->store, e, &ev, err);
}

/* Completes a CREATING series (series_store.h): inserts every pending
 * occurrence that does not exist yet, then saves the series ACTIVE with
 * SeriesCreated / SeriesUpdated("occurrences_added"). `fresh`: this call
 * wrote the plan, so no pending event can exist unless another process is
 * completing the same series (then our insert fails and the re-read says it
 * is there). On return *s is the stored series. */
static mq_code_t finish_creation(mq_call_t *call, mq_series_t *s, bool fresh, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  event_pb *tmpl;
  mq_code_t rc = unpack_template(call, s, &tmpl, err);
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < s->n_pending; i++) {
    const mq_series_occ_t *o = NULL;
    for (size_t k = 0; k < s->n_occ && !o; k++)
      if (!strcmp(s->occ[k].event_id, s->pending_ids[i])) o = &s->occ[k];
    if (!o) return mq_error_set(err, MQ_INTERNAL, NULL, "series %s: a pending occurrence is not planned", s->id);
    event_pb *e;
    mq_error_t gerr;
    if (!fresh) {
      rc = mq_events_get(app->store, o->event_id, a, &e, &gerr);
      if (rc == MQ_OK && !strcmp(e->series_id, s->id)) continue; /* done by an earlier attempt */
      if (rc == MQ_OK)
        return mq_error_set(err, MQ_INTERNAL, NULL, "event id %s belongs to another series", e->event_id);
      if (rc != MQ_NOT_FOUND) {
        *err = gerr;
        return rc;
      }
    }
    rc = insert_occurrence(call, s, tmpl, o, err);
    if (rc != MQ_OK) { /* a concurrent completion may have inserted it first */
      if (mq_events_get(app->store, o->event_id, a, &e, &gerr) == MQ_OK && !strcmp(e->series_id, s->id)) continue;
      return rc;
    }
  }

  bool created = !strcmp(s->pending, "created");
  int64_t before = s->version;
  mq_series_t done = *s;
  done.state = MQ_SERIES_ACTIVE;
  done.pending = "";
  done.pending_ids = NULL;
  done.n_pending = 0;
  done.updated_ms = mq_now_unix_ms();
  mq_event_t ev;
  Marquee__Events__V1__SeriesCreated sc = MARQUEE__EVENTS__V1__SERIES_CREATED__INIT;
  Marquee__Events__V1__SeriesUpdated su = MARQUEE__EVENTS__V1__SERIES_UPDATED__INIT;
  char **ids = mq_arena_alloc(a, (s->n_occ ? s->n_occ : 1) * sizeof *ids);
  for (size_t i = 0; i < s->n_occ; i++) ids[i] = (char *)s->occ[i].event_id;
  if (created) {
    mq_catalog_event(&ev, call, "catalog.SeriesCreated", s->id);
    sc.series_id = (char *)s->id;
    sc.organization_id = (char *)s->organization_id;
    sc.title = (char *)s->title;
    sc.time_zone = (char *)s->time_zone;
    sc.rrule = (char *)s->rrule;
    sc.event_ids = ids;
    sc.n_event_ids = s->n_occ;
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_SERIES_CREATED;
    ev.env.series_created = &sc;
  } else {
    mq_catalog_event(&ev, call, "catalog.SeriesUpdated", s->id);
    su.series_id = (char *)s->id;
    su.organization_id = (char *)s->organization_id;
    su.version = before + 1;
    su.change = (char *)"occurrences_added";
    su.event_ids = (char **)s->pending_ids;
    su.n_event_ids = s->n_pending;
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_SERIES_UPDATED;
    ev.env.series_updated = &su;
  }
  /* the same id from whichever process completes the series: consumers dedupe */
  derived_uuid(ev.id, "series-event|%s|%lld", s->id, (long long)(before + 1));
  rc = mq_series_save(app->store, &done, before, &ev, 1, err);
  if (rc == MQ_ABORTED) { /* someone else completed it (or wrote it) meanwhile */
    mq_series_t now;
    if ((rc = mq_series_get(app->store, s->id, a, &now, err)) != MQ_OK) return rc;
    if (now.state == MQ_SERIES_CREATING)
      return mq_error_set(err, MQ_ABORTED, "series_id", "the series is being changed by another call; retry");
    *s = now;
    return MQ_OK;
  }
  if (rc != MQ_OK) return rc;
  done.version = before + 1;
  *s = done;
  return MQ_OK;
}

/* Writes on a series first complete an interrupted creation. */
static mq_code_t ensure_complete(mq_call_t *call, mq_series_t *s, mq_error_t *err) {
  return s->state == MQ_SERIES_CREATING ? finish_creation(call, s, false, err) : MQ_OK;
}

/* ---- the schedule ------------------------------------------------------------------------ */

static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

/* mq_recur names a bad local time "local_time" / "start": give the request's field. */
static mq_code_t rename_field(mq_code_t rc, mq_error_t *err, const char *field) {
  if (rc == MQ_INVALID_ARGUMENT && strcmp(err->field, "time_zone") && strcmp(err->field, "recurrence"))
    mq_error_rename_field(err, field);
  return rc;
}

static mq_code_t check_range(int64_t start_s, uint32_t duration_min, const char *field, mq_error_t *err) {
  int64_t ms = start_s * 1000;
  if (ms < MIN_START_MS || ms + (int64_t)duration_min * 60000 > MAX_START_MS)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "occurrences must take place between 2000 and 2100");
  return MQ_OK;
}

/* The UTC starts (unix seconds, increasing) of the request's schedule. */
static mq_code_t plan_starts(const Marquee__Catalog__V1__CreateSeriesRequest *req, const char *tz, int64_t *starts,
                             size_t *n, mq_error_t *err) {
  *n = 0;
  const char *first = req->first_start_local;
  if (!first || !first[0]) return mq_error_set(err, MQ_INVALID_ARGUMENT, "first_start_local", "is required");
  int64_t t0;
  mq_code_t rc = rename_field(mq_local_to_utc(first, tz, &t0, err), err, "first_start_local");
  if (rc == MQ_OK) rc = check_range(t0, req->duration_minutes, "first_start_local", err);
  if (rc != MQ_OK) return rc;
  bool has_rule = req->rrule && req->rrule[0];
  if (has_rule && req->n_explicit_starts_local)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "rrule", "give either rrule or explicit_starts_local, not both");
  if (!has_rule && !req->n_explicit_starts_local)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "rrule", "give rrule or explicit_starts_local");
  if (has_rule) {
    mq_rrule_t r;
    bool truncated;
    if ((rc = mq_rrule_parse(req->rrule, &r, err)) != MQ_OK) return rc;
    rc = rename_field(mq_recur_expand(&r, first, tz, MAX_OCC, starts, n, &truncated, err), err, "first_start_local");
    if (rc != MQ_OK) return rc;
    if (truncated)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "recurrence", "a series has at most %d occurrences", MAX_OCC);
  } else {
    if (req->n_explicit_starts_local + 1 > MAX_OCC)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "explicit_starts_local", "a series has at most %d occurrences",
                          MAX_OCC);
    starts[(*n)++] = t0;
    for (size_t i = 0; i < req->n_explicit_starts_local; i++) {
      int64_t t;
      rc = rename_field(mq_local_to_utc(req->explicit_starts_local[i], tz, &t, err), err, "explicit_starts_local");
      if (rc != MQ_OK) return rc;
      if (t <= t0)
        return mq_error_set(err, MQ_INVALID_ARGUMENT, "explicit_starts_local",
                            "each start must be after first_start_local");
      starts[(*n)++] = t;
    }
    qsort(starts, *n, sizeof *starts, cmp_i64);
    for (size_t i = 1; i < *n; i++)
      if (starts[i] == starts[i - 1])
        return mq_error_set(err, MQ_INVALID_ARGUMENT, "explicit_starts_local", "lists the same start twice");
  }
  for (size_t i = 0; i < *n; i++)
    if ((rc = check_range(starts[i], req->duration_minutes, has_rule ? "recurrence" : "explicit_starts_local", err)))
      return rc;
  return MQ_OK;
}

/* SHA-256 hex of the packed request: what an idempotent retry must repeat. */
static const char *fingerprint(mq_call_t *call, const Marquee__Catalog__V1__CreateSeriesRequest *req) {
  mq_arena_t *a = mq_call_arena(call);
  size_t len = marquee__catalog__v1__create_series_request__get_packed_size(req);
  uint8_t *buf = mq_arena_alloc(a, len ? len : 1);
  marquee__catalog__v1__create_series_request__pack(req, buf);
  char *hex = mq_arena_alloc(a, 2 * len + 1);
  for (size_t i = 0; i < len; i++) snprintf(hex + 2 * i, 3, "%02x", buf[i]);
  hex[2 * len] = '\0';
  char *h = mq_arena_alloc(a, 65);
  mq_token_hash(hex, h);
  return h;
}

/* ---- CreateSeries / GetSeries ---------------------------------------------------------- */

static mq_code_t se_create(mq_call_t *call, const Marquee__Catalog__V1__CreateSeriesRequest *req, series_pb *resp,
                           mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const event_pb *in = req->template_event;
  if (!in) return mq_error_set(err, MQ_INVALID_ARGUMENT, "template_event", "is required");
  mq_code_t rc = mq_org_require(call, in->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) return rc;
  const char *key = req->idempotency_key && req->idempotency_key[0] ? req->idempotency_key : NULL;
  if (key && (rc = mq_check_id(err, "idempotency_key", key)) != MQ_OK) return rc;
  if (in->n_ticket_types)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "template_event.ticket_types", "send them in ticket_types");
  if (in->starts_at || in->ends_at)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, in->starts_at ? "template_event.starts_at" : "template_event.ends_at",
                        "the schedule sets them: first_start_local, duration_minutes, rrule or explicit_starts_local");
  if (in->time_zone && in->time_zone[0])
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "template_event.time_zone", "send it as the series' time_zone");

  /* the template, validated once */
  event_pb *t = mq_arena_alloc(a, sizeof *t);
  marquee__catalog__v1__event__init(t);
  t->organization_id = in->organization_id;
  const char *venue_tz = NULL;
  mq_error_collect(err);
  mq_catalog_apply_content(call, t, in, NULL, &venue_tz, err);
  if (mq_check_currency(err, "currency", in->currency) == MQ_OK) t->currency = in->currency; /* at creation only */
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  if ((rc = mq_check_count(err, "ticket_types", req->n_ticket_types, MAX_TICKET_TYPES)) != MQ_OK) return rc;
  t->ticket_types = mq_arena_alloc(a, (req->n_ticket_types ? req->n_ticket_types : 1) * sizeof *t->ticket_types);
  for (size_t i = 0; i < req->n_ticket_types; i++) {
    tt_pb *x = mq_arena_alloc(a, sizeof *x);
    marquee__catalog__v1__ticket_type__init(x);
    if ((rc = apply_tt(call, t, x, req->ticket_types[i], err)) != MQ_OK) return rc;
    t->ticket_types[t->n_ticket_types++] = x;
  }

  /* the schedule */
  const char *tz = req->time_zone && req->time_zone[0] ? req->time_zone : venue_tz;
  if (!tz || !tz[0]) return mq_error_set(err, MQ_INVALID_ARGUMENT, "time_zone", "is required (or set a venue)");
  if ((rc = mq_check_timezone(err, "time_zone", tz)) != MQ_OK) return rc;
  if (req->duration_minutes < 1 || req->duration_minutes > DURATION_MAX_MIN)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "duration_minutes", "must be 1..%d", DURATION_MAX_MIN);
  int64_t starts[MAX_OCC];
  size_t n;
  if ((rc = plan_starts(req, tz, starts, &n, err)) != MQ_OK) return rc;
  t->time_zone = (char *)tz;

  /* the plan */
  mq_series_t s = {0};
  char *sid = mq_arena_alloc(a, 37);
  if (key)
    derived_uuid(sid, "series|%s|%s", in->organization_id, key);
  else
    mq_uuid_v4(sid);
  s.id = sid;
  s.organization_id = in->organization_id;
  s.title = t->title;
  s.rrule = req->rrule ? req->rrule : "";
  s.time_zone = tz;
  s.first_start_local = req->first_start_local;
  s.duration_minutes = req->duration_minutes;
  s.explicit_starts = (const char **)req->explicit_starts_local;
  s.n_explicit = req->n_explicit_starts_local;
  s.state = MQ_SERIES_CREATING;
  s.version = 0;
  s.occ = mq_arena_alloc(a, n * sizeof *s.occ);
  s.pending_ids = mq_arena_alloc(a, n * sizeof *s.pending_ids);
  for (size_t i = 0; i < n; i++) {
    s.occ[i].event_id = occurrence_id(a, sid, i);
    s.occ[i].starts_ms = starts[i] * 1000;
    s.occ[i].ends_ms = starts[i] * 1000 + (int64_t)req->duration_minutes * 60000;
    s.pending_ids[i] = s.occ[i].event_id;
  }
  s.n_occ = s.n_pending = n;
  s.pending = "created";
  pack_template(call, t, &s);
  s.fingerprint = key ? fingerprint(call, req) : "";
  s.cancel_reason = "";
  s.created_by = mq_call_principal(call)->subject;
  s.created_ms = s.updated_ms = mq_now_unix_ms();

  bool fresh = true;
  rc = mq_series_insert(app->store, &s, err);
  if (rc == MQ_ALREADY_EXISTS && key) { /* a retry: the first attempt's series, finished if need be */
    mq_series_t old;
    if ((rc = mq_series_get(app->store, sid, a, &old, err)) != MQ_OK) return rc;
    if (strcmp(old.organization_id, s.organization_id) || strcmp(old.fingerprint, s.fingerprint))
      return mq_error_set(err, MQ_ALREADY_EXISTS, "idempotency_key", "was used for a different request");
    s = old;
    fresh = false;
  } else if (rc != MQ_OK) {
    return rc;
  }
  if (s.state == MQ_SERIES_CREATING && (rc = finish_creation(call, &s, fresh, err)) != MQ_OK) return rc;
  *resp = *series_view(call, &s);
  return MQ_OK;
}

static mq_code_t se_get(mq_call_t *call, const Marquee__Catalog__V1__GetSeriesRequest *req, series_pb *resp,
                        mq_error_t *err) {
  mq_series_t s;
  mq_code_t rc = load_as(call, req->series_id, MQ_ORG_CHECKIN, &s, err);
  if (rc != MQ_OK) return rc;
  *resp = *series_view(call, &s);
  return MQ_OK;
}

/* ---- ListSeriesOccurrences ---------------------------------------------------------------- */

static mq_code_t se_list(mq_call_t *call, const Marquee__Catalog__V1__ListSeriesOccurrencesRequest *req,
                         Marquee__Catalog__V1__ListEventsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_series_t s;
  mq_code_t rc = mq_check_uuid(err, "series_id", req->series_id);
  if (rc == MQ_OK) rc = mq_series_get(app->store, req->series_id, a, &s, err);
  if (rc != MQ_OK) return rc;
  bool member = mq_catalog_is_member(call, s.organization_id);
  uint32_t page;
  if ((rc = mq_check_page_size(err, "page_size", req->page_size, 20, 100, &page)) != MQ_OK) return rc;
  mq_series_occ_query_t q = {.series_id = s.id, .published_only = !member, .limit = page + 1};
  if ((rc = mq_page_token_read_key(a, &req->base, "page_token", req->page_token, &q.has_cursor, &q.after_ms,
                                   &q.after_id, err)) != MQ_OK)
    return rc;
  mq_series_occ_t *found = mq_arena_alloc(a, q.limit * sizeof *found);
  size_t n;
  if ((rc = mq_series_occurrences(app->store, &q, a, found, &n, err)) != MQ_OK) return rc;
  bool more = n > page;
  if (more) n = page;
  resp->events = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->events);
  for (size_t i = 0; i < n; i++) {
    event_pb *e;
    mq_error_t gerr;
    rc = mq_events_get(app->store, found[i].event_id, a, &e, &gerr);
    if (rc == MQ_NOT_FOUND) continue; /* deleted between the two reads */
    if (rc != MQ_OK) {
      *err = gerr;
      return rc;
    }
    if (!member && e->state != ST(PUBLISHED)) continue; /* changed between the two reads */
    resp->events[resp->n_events++] = mq_catalog_view(call, e, member);
  }
  resp->next_page_token = (char *)"";
  if (more && n)
    resp->next_page_token = mq_page_token_make_key(a, &req->base, found[n - 1].starts_ms, found[n - 1].event_id);
  return MQ_OK;
}

/* ---- one change on many occurrences ---------------------------------------------------- */

typedef enum { OP_UPDATE, OP_PUBLISH, OP_CANCEL } op_kind_t;

typedef struct {
  op_kind_t kind;
  const event_pb *tmpl;                    /* OP_UPDATE: the validated new values */
  const Google__Protobuf__FieldMask *mask; /* OP_UPDATE */
  const char *reason;                      /* OP_CANCEL */
  bool future_only;                        /* occurrences that start at or before now are out of scope */
  int64_t now_ms;
} op_t;

static void outcome(mq_call_t *call, change_pb *r, const event_pb *e, const char *event_id, int64_t starts_ms,
                    int result, const mq_error_t *failure, const char *why) {
  mq_arena_t *a = mq_call_arena(call);
  outcome_pb *o = mq_arena_alloc(a, sizeof *o);
  marquee__catalog__v1__occurrence_outcome__init(o);
  o->event_id = (char *)event_id;
  o->starts_at = e ? e->starts_at : mq_pb_timestamp(a, starts_ms);
  o->result = (Marquee__Catalog__V1__OccurrenceResult)result;
  o->version = e ? e->version : 0;
  if (failure) {
    o->code = (char *)mq_code_name(failure->code);
    o->field = mq_arena_strdup(a, failure->field);
    o->message = mq_arena_strdup(a, failure->message);
  } else if (why) {
    o->message = (char *)why;
  }
  r->outcomes[r->n_outcomes++] = o;
  if (result == RES(CHANGED)) r->changed_count++;
  if (result == RES(SKIPPED)) r->skipped_count++;
  if (result == RES(FAILED)) r->failed_count++;
}

/* The fields of the mask, from the validated template onto an occurrence. */
static void copy_paths(event_pb *e, const event_pb *t, const Google__Protobuf__FieldMask *m) {
  if (mq_catalog_has_path(m, "title")) e->title = t->title;
  if (mq_catalog_has_path(m, "description_md")) e->description_md = t->description_md;
  if (mq_catalog_has_path(m, "category_id")) e->category_id = t->category_id;
  if (mq_catalog_has_path(m, "tags")) {
    e->tags = t->tags;
    e->n_tags = t->n_tags;
  }
  if (mq_catalog_has_path(m, "image_ids")) {
    e->image_ids = t->image_ids;
    e->n_image_ids = t->n_image_ids;
  }
  if (mq_catalog_has_path(m, "cover_image_id")) e->cover_image_id = t->cover_image_id;
  if (mq_catalog_has_path(m, "venue_id")) { /* the occurrence keeps its time zone: its instants are the series' */
    e->venue_id = t->venue_id;
    e->city = t->city;
    e->country = t->country;
    e->region = t->region;
  }
  if (mq_catalog_has_path(m, "online_url")) e->online_url = t->online_url;
  if (mq_catalog_has_path(m, "language")) e->language = t->language;
  if (mq_catalog_has_path(m, "visibility")) e->visibility = t->visibility;
  if (mq_catalog_has_path(m, "age_policy")) e->age_policy = t->age_policy;
  if (mq_catalog_has_path(m, "refund_policy")) e->refund_policy = t->refund_policy;
  if (mq_catalog_has_path(m, "capacity")) e->capacity = t->capacity;
  if (mq_catalog_has_path(m, "attendee_cancel_cutoff_hours"))
    e->attendee_cancel_cutoff_hours = t->attendee_cancel_cutoff_hours;
  if (mq_catalog_has_path(m, "attendee_cancel_disabled")) e->attendee_cancel_disabled = t->attendee_cancel_disabled;
}

/* Applies `op` to one occurrence and records the outcome: read, check,
 * change, save with the version read; an ABORTED save is retried once on a
 * fresh read (the other edit is kept, ours applied on top), a second one is
 * reported. Occurrences outside the scope are not reported. */
static void run_op(mq_call_t *call, const op_t *op, const mq_series_occ_t *o, change_pb *r) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  for (int attempt = 0;; attempt++) {
    event_pb *e;
    mq_error_t err = {0};
    mq_code_t rc = mq_events_get(app->store, o->event_id, a, &e, &err);
    if (rc == MQ_NOT_FOUND) {
      if (!op->future_only || o->starts_ms > op->now_ms)
        outcome(call, r, NULL, o->event_id, o->starts_ms, RES(SKIPPED), NULL, "deleted");
      return;
    }
    if (rc != MQ_OK) {
      outcome(call, r, NULL, o->event_id, o->starts_ms, RES(FAILED), &err, NULL);
      return;
    }
    if (op->future_only && mq_pb_timestamp_ms(e->starts_at) <= op->now_ms) return; /* started: out of scope */
    int64_t before = e->version;
    mq_event_t ev;
    Marquee__Events__V1__EventUpdated up = MARQUEE__EVENTS__V1__EVENT_UPDATED__INIT;
    Marquee__Events__V1__EventPublished pub = MARQUEE__EVENTS__V1__EVENT_PUBLISHED__INIT;
    Marquee__Events__V1__EventCancelled can = MARQUEE__EVENTS__V1__EVENT_CANCELLED__INIT;
    switch (op->kind) {
      case OP_UPDATE:
        if (mq_catalog_finished(e)) {
          outcome(call, r, e, o->event_id, 0, RES(SKIPPED), NULL, "cancelled or completed");
          return;
        }
        copy_paths(e, op->tmpl, op->mask);
        if (e->state == ST(PUBLISHED) && !(e->venue_id && e->venue_id[0]) && !(e->online_url && e->online_url[0])) {
          mq_error_set(&err, MQ_FAILED_PRECONDITION, "venue_id", "a published event needs a venue or an online URL");
          outcome(call, r, NULL, o->event_id, mq_pb_timestamp_ms(e->starts_at), RES(FAILED), &err, NULL);
          return;
        }
        mq_catalog_touch(call, e);
        mq_catalog_event(&ev, call, "catalog.EventUpdated", e->event_id);
        up.event_id = e->event_id;
        up.organization_id = e->organization_id;
        up.version = before + 1;
        up.fields = op->mask->paths;
        up.n_fields = op->mask->n_paths;
        ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_UPDATED;
        ev.env.event_updated = &up;
        break;
      case OP_PUBLISH: /* PublishEvent's checks, in its order */
        if (e->state != ST(DRAFT)) {
          outcome(call, r, e, o->event_id, 0, RES(SKIPPED), NULL,
                  e->state == ST(PUBLISHED) ? "already published" : "cancelled or completed");
          return;
        }
        if (!e->n_ticket_types)
          mq_error_set(&err, MQ_FAILED_PRECONDITION, "ticket_types", "add at least one ticket type first");
        else if (mq_pb_timestamp_ms(e->starts_at) <= mq_now_unix_ms())
          mq_error_set(&err, MQ_FAILED_PRECONDITION, "starts_at", "the event must start in the future");
        else if (!(e->venue_id && e->venue_id[0]) && !(e->online_url && e->online_url[0]))
          mq_error_set(&err, MQ_FAILED_PRECONDITION, "venue_id", "set a venue or an online URL first");
        if (err.code != MQ_OK) {
          outcome(call, r, e, o->event_id, 0, RES(FAILED), &err, NULL);
          return;
        }
        e->state = ST(PUBLISHED);
        e->published_at = mq_pb_timestamp(a, mq_now_unix_ms());
        mq_catalog_touch(call, e);
        mq_catalog_event(&ev, call, "catalog.EventPublished", e->event_id);
        pub.event_id = e->event_id;
        pub.organization_id = e->organization_id;
        pub.title = e->title;
        pub.starts_at = e->starts_at;
        ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_PUBLISHED;
        ev.env.event_published = &pub;
        break;
      case OP_CANCEL:
        if (mq_catalog_finished(e)) {
          outcome(call, r, e, o->event_id, 0, RES(SKIPPED), NULL, "already cancelled or completed");
          return;
        }
        /* the trigger that makes the occurrence's bookings follow, first
         * (bookings/bookings.h) */
        if ((rc = mq_bookings_event_cancelling(((mq_app_t *)mq_call_app(call))->store, e->event_id,
                                               mq_call_principal(call)->subject, op->reason, &err)) != MQ_OK) {
          outcome(call, r, NULL, o->event_id, mq_pb_timestamp_ms(e->starts_at), RES(FAILED), &err, NULL);
          return;
        }
        e->state = ST(CANCELLED);
        e->cancel_reason = (char *)op->reason;
        mq_catalog_touch(call, e);
        mq_catalog_event(&ev, call, "catalog.EventCancelled", e->event_id);
        can.event_id = e->event_id;
        can.organization_id = e->organization_id;
        can.reason = (char *)op->reason;
        ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_CANCELLED;
        ev.env.event_cancelled = &can;
        break;
      default:
        return;
    }
    rc = mq_events_save(app->store, e, before, &ev, 1, &err);
    mq_app_event_changed(app, e->event_id); /* even on failure: the write may have landed */
    if (rc == MQ_OK) {
      outcome(call, r, e, o->event_id, 0, RES(CHANGED), NULL, NULL);
      return;
    }
    if (rc == MQ_ABORTED && attempt == 0) continue; /* edited meanwhile: read it again, re-apply once */
    if (rc == MQ_ABORTED)
      mq_error_set(&err, MQ_ABORTED, "event_id",
                   "this occurrence was changed by another call while the series call ran, twice; run it again");
    outcome(call, r, NULL, o->event_id, mq_pb_timestamp_ms(e->starts_at), RES(FAILED), &err, NULL);
    return;
  }
}

static change_pb *change_response(mq_call_t *call, change_pb *r, const mq_series_t *s) {
  r->outcomes = mq_arena_alloc(mq_call_arena(call), (s->n_occ ? s->n_occ : 1) * sizeof *r->outcomes);
  r->n_outcomes = 0;
  return r;
}

/* ---- UpdateSeries / PublishSeries / CancelSeries --------------------------------------- */

static mq_code_t check_mask(const Google__Protobuf__FieldMask *m, mq_error_t *err) {
  if (!m || !m->n_paths) return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field");
  for (size_t i = 0; i < m->n_paths; i++) {
    bool ok = false;
    for (size_t k = 0; k < sizeof series_paths / sizeof *series_paths; k++) ok |= !strcmp(m->paths[i], series_paths[k]);
    if (ok) continue;
    const char *p = m->paths[i];
    if (!strcmp(p, "starts_at") || !strcmp(p, "ends_at") || !strcmp(p, "time_zone"))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask",
                          "the schedule of a series cannot change; move single occurrences with UpdateEvent");
    if (!strcmp(p, "currency"))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask",
                          "the currency of a series cannot change (its ticket types are priced in it)");
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "unknown or read-only field");
  }
  return MQ_OK;
}

static mq_code_t se_update(mq_call_t *call, const Marquee__Catalog__V1__UpdateSeriesRequest *req, change_pb *resp,
                           mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_series_t s;
  mq_code_t rc = load_as(call, req->series_id, MQ_ORG_MANAGER, &s, err);
  if (rc != MQ_OK) return rc;
  if (!req->template_event)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "template_event", "is required with the new values");
  if ((rc = check_mask(req->update_mask, err)) != MQ_OK) return rc;
  if (req->version <= 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "version", "send the version you read");
  if ((rc = mq_check_enum(err, "scope", (int)req->scope, &marquee__catalog__v1__series_update_scope__descriptor,
                          false)) != MQ_OK)
    return rc;
  bool this_and_future = req->scope == SCOPE(THIS_AND_FUTURE);
  size_t from = 0;
  if (this_and_future) {
    if ((rc = mq_check_uuid(err, "from_event_id", req->from_event_id)) != MQ_OK) return rc;
    for (from = 0; from < s.n_occ && strcmp(s.occ[from].event_id, req->from_event_id); from++) {
    }
    if (from == s.n_occ)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "from_event_id", "is not an occurrence of this series");
  } else if (req->from_event_id && req->from_event_id[0]) {
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "from_event_id", "is only for THIS_AND_FUTURE");
  }
  if (s.state == MQ_SERIES_CANCELLED)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "series_id", "the series is cancelled");
  if ((rc = ensure_complete(call, &s, err)) != MQ_OK) return rc;
  if (req->version != s.version)
    return mq_error_set(err, MQ_ABORTED, "version", "the series changed since you read it; read it again");

  /* validate the new values once, on the template (nothing changes if they are wrong) */
  event_pb *tmpl;
  if ((rc = unpack_template(call, &s, &tmpl, err)) != MQ_OK) return rc;
  tmpl->organization_id = (char *)s.organization_id;
  mq_error_collect(err);
  mq_catalog_apply_content(call, tmpl, req->template_event, req->update_mask, NULL, err);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;

  /* the series first (its version serialises series updates), then the occurrences */
  int64_t before = s.version;
  mq_series_t next = s;
  pack_template(call, tmpl, &next);
  next.title = tmpl->title;
  next.updated_ms = mq_now_unix_ms();
  Marquee__Events__V1__SeriesUpdated su = MARQUEE__EVENTS__V1__SERIES_UPDATED__INIT;
  su.series_id = (char *)s.id;
  su.organization_id = (char *)s.organization_id;
  su.version = before + 1;
  su.change = (char *)"updated";
  su.fields = req->update_mask->paths;
  su.n_fields = req->update_mask->n_paths;
  su.scope = (char *)(this_and_future ? "THIS_AND_FUTURE" : "ALL_FUTURE");
  su.from_event_id = this_and_future ? req->from_event_id : (char *)"";
  mq_event_t ev;
  mq_catalog_event(&ev, call, "catalog.SeriesUpdated", s.id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_SERIES_UPDATED;
  ev.env.series_updated = &su;
  if ((rc = mq_series_save(app->store, &next, before, &ev, 1, err)) != MQ_OK) return rc;
  next.version = before + 1;

  change_response(call, resp, &next);
  op_t op = {.kind = OP_UPDATE,
             .tmpl = tmpl,
             .mask = req->update_mask,
             .future_only = !this_and_future,
             .now_ms = mq_now_unix_ms()};
  for (size_t i = from; i < next.n_occ; i++) run_op(call, &op, &next.occ[i], resp);
  resp->series = series_view(call, &next);
  return MQ_OK;
}

static mq_code_t se_publish(mq_call_t *call, const Marquee__Catalog__V1__PublishSeriesRequest *req, change_pb *resp,
                            mq_error_t *err) {
  mq_series_t s;
  mq_code_t rc = load_as(call, req->series_id, MQ_ORG_MANAGER, &s, err);
  if (rc != MQ_OK) return rc;
  if (s.state == MQ_SERIES_CANCELLED)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "series_id", "the series is cancelled");
  if ((rc = ensure_complete(call, &s, err)) != MQ_OK) return rc;
  change_response(call, resp, &s);
  op_t op = {.kind = OP_PUBLISH, .now_ms = mq_now_unix_ms()};
  for (size_t i = 0; i < s.n_occ; i++) run_op(call, &op, &s.occ[i], resp);
  resp->series = series_view(call, &s);
  return MQ_OK;
}

static mq_code_t se_cancel(mq_call_t *call, const Marquee__Catalog__V1__CancelSeriesRequest *req, change_pb *resp,
                           mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_series_t s;
  mq_code_t rc = load_as(call, req->series_id, MQ_ORG_MANAGER, &s, err);
  if (rc == MQ_OK) rc = mq_check_text(err, "reason", req->reason, 1, 500, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  if ((rc = ensure_complete(call, &s, err)) != MQ_OK) return rc;
  if (req->version && req->version != s.version)
    return mq_error_set(err, MQ_ABORTED, "version", "the series changed since you read it; read it again");
  if (s.state != MQ_SERIES_CANCELLED) { /* the series first; a second call completes an interrupted run */
    int64_t before = s.version;
    mq_series_t next = s;
    next.state = MQ_SERIES_CANCELLED;
    next.cancel_reason = req->reason;
    next.updated_ms = mq_now_unix_ms();
    Marquee__Events__V1__SeriesUpdated su = MARQUEE__EVENTS__V1__SERIES_UPDATED__INIT;
    su.series_id = (char *)s.id;
    su.organization_id = (char *)s.organization_id;
    su.version = before + 1;
    su.change = (char *)"cancelled";
    su.reason = req->reason;
    mq_event_t ev;
    mq_catalog_event(&ev, call, "catalog.SeriesUpdated", s.id);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_SERIES_UPDATED;
    ev.env.series_updated = &su;
    if ((rc = mq_series_save(app->store, &next, before, &ev, 1, err)) != MQ_OK) return rc;
    next.version = before + 1;
    s = next;
  }
  change_response(call, resp, &s);
  op_t op = {.kind = OP_CANCEL, .reason = s.cancel_reason, .future_only = true, .now_ms = mq_now_unix_ms()};
  for (size_t i = 0; i < s.n_occ; i++) run_op(call, &op, &s.occ[i], resp);
  resp->series = series_view(call, &s);
  return MQ_OK;
}

/* ---- AddOccurrences ---------------------------------------------------------------------- */

static int cmp_occ(const void *x, const void *y) {
  const mq_series_occ_t *a = x, *b = y;
  return a->starts_ms < b->starts_ms ? -1 : a->starts_ms > b->starts_ms;
}

static mq_code_t se_add(mq_call_t *call, const Marquee__Catalog__V1__AddOccurrencesRequest *req, series_pb *resp,
                        mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_series_t s;
  mq_code_t rc = load_as(call, req->series_id, MQ_ORG_MANAGER, &s, err);
  if (rc != MQ_OK) return rc;
  if (req->version <= 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "version", "send the version you read");
  if (!req->n_starts_local) return mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_local", "is required");
  if (s.state == MQ_SERIES_CANCELLED)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "series_id", "the series is cancelled");
  if ((rc = ensure_complete(call, &s, err)) != MQ_OK) return rc;
  if (req->version != s.version)
    return mq_error_set(err, MQ_ABORTED, "version", "the series changed since you read it; read it again");
  if (s.n_occ + req->n_starts_local > MAX_OCC)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_local", "a series has at most %d occurrences", MAX_OCC);

  size_t n = s.n_occ + req->n_starts_local;
  mq_series_t next = s;
  next.occ = mq_arena_alloc(a, n * sizeof *next.occ);
  memcpy(next.occ, s.occ, s.n_occ * sizeof *s.occ);
  next.pending_ids = mq_arena_alloc(a, req->n_starts_local * sizeof *next.pending_ids);
  next.explicit_starts = mq_arena_alloc(a, (s.n_explicit + req->n_starts_local) * sizeof *next.explicit_starts);
  memcpy(next.explicit_starts, s.explicit_starts, s.n_explicit * sizeof *s.explicit_starts);
  next.n_pending = 0;
  for (size_t i = 0; i < req->n_starts_local; i++) {
    int64_t t;
    rc = rename_field(mq_local_to_utc(req->starts_local[i], s.time_zone, &t, err), err, "starts_local");
    if (rc == MQ_OK) rc = check_range(t, s.duration_minutes, "starts_local", err);
    if (rc != MQ_OK) return rc;
    for (size_t k = 0; k < next.n_occ; k++)
      if (next.occ[k].starts_ms == t * 1000)
        return mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_local", "the series already has an occurrence then");
    mq_series_occ_t *o = &next.occ[next.n_occ];
    o->event_id =
        occurrence_id(a, s.id, next.n_occ); /* indexes only grow: occurrences are never removed from the plan */
    o->starts_ms = t * 1000;
    o->ends_ms = o->starts_ms + (int64_t)s.duration_minutes * 60000;
    next.pending_ids[next.n_pending++] = o->event_id;
    next.explicit_starts[next.n_explicit++] = req->starts_local[i];
    next.n_occ++;
  }
  qsort(next.occ, next.n_occ, sizeof *next.occ, cmp_occ);
  next.state = MQ_SERIES_CREATING;
  next.pending = "occurrences_added";
  next.updated_ms = mq_now_unix_ms();
  int64_t before = s.version;
  if ((rc = mq_series_save(app->store, &next, before, NULL, 0, err)) != MQ_OK) return rc;
  next.version = before + 1;
  if ((rc = finish_creation(call, &next, true, err)) != MQ_OK) return rc;
  *resp = *series_view(call, &next);
  return MQ_OK;
}

/* ---- registration -------------------------------------------------------------------------- */

static const marquee__catalog__v1__series_service_handlers_t handlers = {
    .create_series = {se_create, MQ_POLICY_RESOURCE, 0},
    .get_series = {se_get, MQ_POLICY_RESOURCE, 0},
    .list_series_occurrences = {se_list, MQ_POLICY_PUBLIC, 0}, /* members see more: decided in the handler */
    .update_series = {se_update, MQ_POLICY_RESOURCE, 0},
    .publish_series = {se_publish, MQ_POLICY_RESOURCE, 0},
    .cancel_series = {se_cancel, MQ_POLICY_RESOURCE, 0},
    .add_occurrences = {se_add, MQ_POLICY_RESOURCE, 0},
};

int series_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__catalog__v1__series_service__mq_register(srv, &handlers);
}
