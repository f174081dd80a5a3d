/*
 * tickets.c — marquee.bookings.v1.TicketService and CheckInService
 * (bookings issue, items 4 and 5).
 *
 * Who may call what: a ticket is visible to its booking's owner and to
 * members of the event's organization (others: NOT_FOUND, as for an unknown
 * ticket); attendee names are edited by the owner or an owner/manager.
 * Check-in and its lists are for any member (check-in staff included); an
 * undo needs an owner or manager. GetTicketKeys is public: scanners verify
 * codes offline with it.
 *
 * Check-in: the code's signature and event are checked first (no store
 * read for a forged code), then the ticket's booking; the check-in itself
 * is the insert of checkins/{ticket id} (bookings_store.h B3), so of two
 * scanners racing for one ticket exactly one succeeds and the other gets
 * ALREADY_EXISTS naming the time and gate of the first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/bookings/bookings.h"
#include "handlers/identity/identity.h"
#include "lib/mq_jwt.h"
#include "lib/mq_page.h"
#include "lib/mq_recur.h"
#include "lib/mq_ticket_render.h"
#include "lib/mq_validate.h"
#include "marquee/bookings/v1/tickets.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

typedef Marquee__Bookings__V1__Ticket ticket_pb;

/* The booking holding `ticket_id`, if the caller may see it (owner, or a
 * member with `role` or stronger). */
static mq_code_t load_ticket(mq_call_t *call, const char *ticket_id, int role, mq_booking_t *bk, size_t *idx,
                             mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "ticket_id", ticket_id);
  if (rc == MQ_OK) rc = mq_bookings_by_ticket(app->store, ticket_id, mq_call_arena(call), bk, idx, err);
  if (rc == MQ_OK) {
    const mq_principal_t *who = mq_call_principal(call);
    if (!strcmp(bk->user_id, who->subject)) {
      mq_call_authorized(call);
      return MQ_OK;
    }
    rc = mq_org_require(call, bk->organization_id, role, NULL, err);
  }
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "ticket_id", "no such ticket");
  return rc;
}

static mq_code_t ticket_get(mq_call_t *call, const Marquee__Bookings__V1__GetTicketRequest *req, ticket_pb *resp,
                            mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_booking_t bk;
  size_t i;
  mq_code_t rc = load_ticket(call, req->ticket_id, MQ_ORG_CHECKIN, &bk, &i, err);
  if (rc != MQ_OK) return rc;
  mq_checkin_t ci;
  rc = mq_checkins_get(app->store, bk.tickets[i].id, mq_call_arena(call), &ci, err);
  if (rc != MQ_OK && rc != MQ_NOT_FOUND) return rc;
  *resp = *mq_ticket_view(call, app->bookings, &bk, i, rc == MQ_OK ? &ci : NULL, rc == MQ_OK, true);
  return MQ_OK;
}

static mq_code_t ticket_set_name(mq_call_t *call, const Marquee__Bookings__V1__SetAttendeeNameRequest *req,
                                 ticket_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_text(err, "attendee_name", req->attendee_name, 1, 100, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  if (rc != MQ_OK) return rc;
  for (int attempt = 0; attempt < 2; attempt++) {
    mq_booking_t bk;
    size_t i;
    if ((rc = load_ticket(call, req->ticket_id, MQ_ORG_MANAGER, &bk, &i, err)) != MQ_OK) return rc;
    if (!strcmp(bk.state, MQ_BOOKING_CANCELLED))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_id", "the booking is cancelled");
    mq_checkin_t ci;
    rc = mq_checkins_get(app->store, bk.tickets[i].id, a, &ci, err);
    if (rc == MQ_OK)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_id",
                          "the ticket is checked in: its name can no longer change");
    if (rc != MQ_NOT_FOUND) return rc;
    bk.tickets[i].attendee_name = req->attendee_name;
    Marquee__Events__V1__AttendeeNameChanged *p = mq_arena_alloc(a, sizeof *p);
    marquee__events__v1__attendee_name_changed__init(p);
    p->ticket_id = bk.tickets[i].id;
    p->booking_id = bk.id;
    p->event_id = bk.event_id;
    mq_event_t ev;
    mq_bookings_event(&ev, "bookings.AttendeeNameChanged", bk.id, mq_call_principal(call)->subject,
                      mq_call_trace_id(call), mq_call_request_id(call));
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ATTENDEE_NAME_CHANGED;
    ev.env.attendee_name_changed = p;
    rc = mq_bookings_save(app->store, &bk, &ev, 1, err);
    if (rc == MQ_ABORTED) continue; /* another edit of the booking came first: read again */
    if (rc != MQ_OK) return rc;
    *resp = *mq_ticket_view(call, app->bookings, &bk, i, NULL, 0, true);
    return MQ_OK;
  }
  return rc;
}

static mq_code_t ticket_keys(mq_call_t *call, const Marquee__Bookings__V1__GetTicketKeysRequest *req,
                             Marquee__Bookings__V1__GetTicketKeysResponse *resp, mq_error_t *err) {
  (void)req;
  (void)err;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const mq_ticket_keys_t *k = app->bookings->keys;
  size_t n = mq_ticket_keys_count(k);
  resp->keys = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->keys);
  for (size_t i = 0; i < n; i++) {
    Marquee__Bookings__V1__TicketKey *tk = mq_arena_alloc(a, sizeof *tk);
    marquee__bookings__v1__ticket_key__init(tk);
    const char *kid;
    uint8_t *pub = mq_arena_alloc(a, 32);
    if (!mq_ticket_keys_public(k, i, &kid, pub)) continue;
    tk->kid = (char *)kid;
    tk->ed25519_public_key.data = pub;
    tk->ed25519_public_key.len = 32;
    resp->keys[resp->n_keys++] = tk;
  }
  resp->format = (char *)"MQT1";
  return MQ_OK;
}

/* ---- images: the QR (PNG) and the printable PDF ---- */

enum { IMG_PNG = 1, IMG_PDF = 2 };

/* The image of ticket i of `bk` (malloc'ed into *out). */
static mq_code_t render(mq_app_t *app, mq_arena_t *a, const mq_booking_t *bk, size_t i, int format, unsigned scale,
                        uint8_t **out, size_t *len, mq_error_t *err) {
  if (!strcmp(bk->state, MQ_BOOKING_CANCELLED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "ticket_id", "the booking is cancelled: the ticket is void");
  const mq_ticket_t *t = &bk->tickets[i];
  mq_ticket_claims_t c;
  char *code = mq_arena_alloc(a, MQ_TICKET_CODE_MAX);
  if (!mq_uuid_parse(t->id, c.ticket_id) || !mq_uuid_parse(bk->id, c.booking_id) ||
      !mq_uuid_parse(bk->event_id, c.event_id))
    return mq_error_set(err, MQ_INTERNAL, NULL, "stored ids are not UUIDs");
  mq_code_t rc = mq_ticket_code_sign(app->bookings->keys, &c, code, MQ_TICKET_CODE_MAX, err);
  if (rc != MQ_OK) return rc;
  if (format == IMG_PNG) return mq_render_qr_png(code, scale, out, len, err);
  Marquee__Catalog__V1__Event *e;
  if ((rc = mq_events_get(app->store, bk->event_id, a, &e, err)) != MQ_OK) return rc;
  char local[32] = "", when[96] = "";
  const char *tz = e->time_zone && e->time_zone[0] ? e->time_zone : "UTC";
  if (e->starts_at && mq_utc_to_local(e->starts_at->seconds, tz, local, sizeof local) == 19)
    snprintf(when, sizeof when, "%.10s %.5s (%s)", local, local + 11, tz);
  const char *where = "Online";
  mq_venue_t v;
  mq_error_t ignored = {0};
  if (e->venue_id && e->venue_id[0] && mq_venues_get(app->store, e->venue_id, a, &v, &ignored) == MQ_OK)
    where = mq_arena_sprintf(a, "%s, %s, %s", v.name, v.address_line1, v.city);
  mq_ticket_pdf_t pdf = {.event_title = e->title,
                         .starts_at_text = when,
                         .venue_text = where,
                         .attendee_name = t->attendee_name,
                         .ticket_type_name = t->ticket_type_name,
                         .ticket_id = t->id,
                         .booking_id = bk->id,
                         .code = code,
                         .organizer_name = ""};
  return mq_render_ticket_pdf(&pdf, NULL, out, len, err);
}

static mq_code_t ticket_image(mq_call_t *call, const Marquee__Bookings__V1__GetTicketImageRequest *req,
                              Marquee__Bookings__V1__TicketImage *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc =
      mq_check_enum(err, "format", (int)req->format, &marquee__bookings__v1__ticket_image_format__descriptor, true);
  if (rc == MQ_OK && req->scale > MQ_QR_SCALE_MAX)
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "scale", "at most %d pixels per module", MQ_QR_SCALE_MAX);
  mq_booking_t bk;
  size_t i;
  if (rc == MQ_OK) rc = load_ticket(call, req->ticket_id, MQ_ORG_CHECKIN, &bk, &i, err);
  if (rc != MQ_OK) return rc;
  int format = req->format == MARQUEE__BOOKINGS__V1__TICKET_IMAGE_FORMAT__TICKET_IMAGE_FORMAT_PDF ? IMG_PDF : IMG_PNG;
  uint8_t *data = NULL;
  size_t len = 0;
  if ((rc = render(app, a, &bk, i, format, req->scale, &data, &len, err)) != MQ_OK) return rc;
  resp->data.data = mq_arena_alloc(a, len ? len : 1);
  memcpy(resp->data.data, data, len);
  resp->data.len = len;
  free(data);
  resp->content_type = (char *)(format == IMG_PDF ? "application/pdf" : "image/png");
  resp->filename = mq_arena_sprintf(a, "ticket-%s.%s", bk.tickets[i].id, format == IMG_PDF ? "pdf" : "png");
  return MQ_OK;
}

static void http_text(mq_http_response_t *r, int status, const char *body) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  r->body = mq_xstrdup(body);
  r->body_len = strlen(body);
}

/* GET /tickets/{id}.png|.pdf — the same rules as GetTicketImage; the bearer
 * token is verified as the gRPC interceptor verifies it. */
static void tickets_http_get(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  mq_app_t *app = arg;
  r->cache_control = "private, no-store";
  if (strcmp(method, "GET")) return http_text(r, 405, "GET only\n");
  const char *name = path + strlen("/tickets/");
  size_t n = strlen(name);
  int format = 0;
  if (n == 40 && !strcmp(name + 36, ".png")) format = IMG_PNG;
  if (n == 40 && !strcmp(name + 36, ".pdf")) format = IMG_PDF;
  char id[37];
  snprintf(id, sizeof id, "%.36s", name);
  if (!format || mq_check_uuid(NULL, NULL, id) != MQ_OK)
    return http_text(r, 404, "use /tickets/{ticket id}.png or .pdf\n");
  mq_principal_t who;
  mq_error_t err = {0};
  if (!mq_route_bearer(app, r, &who)) return http_text(r, 401, "send Authorization: Bearer <access token>\n");
  mq_arena_t a;
  mq_arena_init(&a);
  mq_booking_t bk;
  size_t i = 0;
  int role = 0;
  mq_code_t rc = mq_bookings_by_ticket(app->store, id, &a, &bk, &i, &err);
  if (rc == MQ_OK && strcmp(bk.user_id, who.subject) && !(who.roles & MQ_ROLE_ADMIN))
    rc = mq_orgs_role(app->store, bk.organization_id, who.subject, &role, &err);
  uint8_t *data = NULL;
  size_t len = 0;
  if (rc == MQ_OK) rc = render(app, &a, &bk, i, format, 0, &data, &len, &err);
  if (rc == MQ_OK) {
    r->status = 200;
    r->content_type = format == IMG_PDF ? "application/pdf" : "image/png";
    r->body = (char *)data;
    r->body_len = len;
  } else if (rc == MQ_NOT_FOUND) {
    http_text(r, 404, "no such ticket\n");
  } else if (rc == MQ_FAILED_PRECONDITION) {
    http_text(r, 410, "the booking is cancelled\n");
  } else {
    http_text(r, 503, "try again later\n");
  }
  mq_arena_release(&a);
}

void tickets_http_register(mq_app_t *app, mq_http_t *http) {
  mq_http_route(http, "/tickets/", tickets_http_get, app);
}

/* ---- check-in ---- */

static Marquee__Bookings__V1__CheckInRecord *checkin_view(mq_arena_t *a, const mq_checkin_t *c) {
  Marquee__Bookings__V1__CheckInRecord *p = mq_arena_alloc(a, sizeof *p);
  marquee__bookings__v1__check_in_record__init(p);
  p->ticket_id = c->ticket_id;
  p->booking_id = c->booking_id;
  p->event_id = c->event_id;
  p->ticket_type_id = c->ticket_type_id;
  p->ticket_type_name = c->ticket_type_name;
  p->attendee_name = c->attendee_name;
  p->gate = c->gate;
  p->checked_in_by = c->by;
  p->checked_in_at = mq_pb_timestamp(a, c->at_ms);
  return p;
}

static mq_code_t checkin(mq_call_t *call, const Marquee__Bookings__V1__CheckInRequest *req,
                         Marquee__Bookings__V1__CheckInRecord *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_bookings_event_for_member(call, req->event_id, MQ_ORG_CHECKIN, &e, err);
  if (rc == MQ_OK) rc = mq_check_text(err, "gate", req->gate, 1, 50, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  if (rc != MQ_OK) return rc;
  const char *code = req->code ? req->code : "";
  mq_ticket_claims_t c;
  switch (mq_ticket_code_verify(app->bookings->keys, code, strlen(code), &c)) {
    case MQ_TICKET_CODE_OK:
      break;
    case MQ_TICKET_CODE_UNKNOWN_KEY:
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "signed with a key this platform does not know: refuse");
    case MQ_TICKET_CODE_BAD_SIGNATURE:
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "the signature does not match: forged or altered, refuse");
    default:
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "not a Marquee ticket code");
  }
  char ticket_id[37], booking_id[37], event_id[37];
  mq_uuid_format(c.ticket_id, ticket_id);
  mq_uuid_format(c.booking_id, booking_id);
  mq_uuid_format(c.event_id, event_id);
  if (strcasecmp(event_id, e->event_id))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "code", "this ticket is for another event");
  mq_booking_t bk;
  rc = mq_bookings_get(app->store, booking_id, a, &bk, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "code", "no booking holds this ticket");
  if (rc != MQ_OK) return rc;
  const mq_ticket_t *t = NULL;
  for (size_t i = 0; i < bk.n_tickets && !t; i++)
    if (!strcmp(bk.tickets[i].id, ticket_id)) t = &bk.tickets[i];
  if (!t) return mq_error_set(err, MQ_NOT_FOUND, "code", "the booking no longer holds this ticket");
  if (!strcmp(bk.state, MQ_BOOKING_CANCELLED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "code", "the booking was cancelled: refuse entry");
  mq_checkin_t ci = {.ticket_id = t->id,
                     .booking_id = bk.id,
                     .event_id = bk.event_id,
                     .ticket_type_id = t->ticket_type_id,
                     .ticket_type_name = t->ticket_type_name,
                     .attendee_name = t->attendee_name,
                     .gate = req->gate,
                     .by = (char *)mq_call_principal(call)->subject,
                     .at_ms = mq_now_unix_ms()};
  Marquee__Events__V1__TicketCheckedIn *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__ticket_checked_in__init(p);
  p->ticket_id = ci.ticket_id;
  p->booking_id = ci.booking_id;
  p->event_id = ci.event_id;
  p->ticket_type_id = ci.ticket_type_id;
  p->gate = ci.gate;
  p->checked_in_by = ci.by;
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.TicketCheckedIn", bk.id, ci.by, mq_call_trace_id(call), mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_CHECKED_IN;
  ev.env.ticket_checked_in = p;
  rc = mq_checkins_insert(app->store, &ci, &ev, err);
  if (rc == MQ_ALREADY_EXISTS) {
    mq_checkin_t first;
    if (mq_checkins_get(app->store, t->id, a, &first, err) != MQ_OK)
      return mq_error_set(err, MQ_ALREADY_EXISTS, "code", "already checked in");
    char when[32];
    mq_bookings_iso_time(first.at_ms, when);
    return mq_error_set(err, MQ_ALREADY_EXISTS, "code", "already checked in at %s at gate \"%s\"", when, first.gate);
  }
  if (rc != MQ_OK) return rc;
  *resp = *checkin_view(a, &ci);
  return MQ_OK;
}

static mq_code_t checkin_undo(mq_call_t *call, const Marquee__Bookings__V1__UndoCheckInRequest *req,
                              Marquee__Bookings__V1__UndoCheckInResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_bookings_event_for_member(call, req->event_id, MQ_ORG_MANAGER, &e, err);
  if (rc == MQ_OK) rc = mq_check_uuid(err, "ticket_id", req->ticket_id);
  if (rc == MQ_OK && req->reason) rc = mq_check_text(err, "reason", req->reason, 0, 500, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  mq_checkin_t ci;
  rc = mq_checkins_get(app->store, req->ticket_id, a, &ci, err);
  if (rc == MQ_OK && strcasecmp(ci.event_id, e->event_id)) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "ticket_id", "the ticket is not checked in");
  if (rc != MQ_OK) return rc;
  Marquee__Events__V1__TicketCheckInUndone *p = mq_arena_alloc(a, sizeof *p);
  marquee__events__v1__ticket_check_in_undone__init(p);
  p->ticket_id = ci.ticket_id;
  p->event_id = ci.event_id;
  p->undone_by = (char *)mq_call_principal(call)->subject;
  p->reason = req->reason ? req->reason : (char *)"";
  p->checked_in_at = mq_pb_timestamp(a, ci.at_ms);
  p->ticket_type_id = ci.ticket_type_id ? ci.ticket_type_id : (char *)"";
  mq_event_t ev;
  mq_bookings_event(&ev, "bookings.TicketCheckInUndone", ci.booking_id, p->undone_by, mq_call_trace_id(call),
                    mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_CHECK_IN_UNDONE;
  ev.env.ticket_check_in_undone = p;
  if ((rc = mq_checkins_undo(app->store, &ci, p->undone_by, p->reason, &ev, err)) != MQ_OK) return rc;
  return MQ_OK;
}

static mq_code_t checkin_list(mq_call_t *call, const Marquee__Bookings__V1__ListCheckInsRequest *req,
                              Marquee__Bookings__V1__ListCheckInsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_bookings_event_for_member(call, req->event_id, MQ_ORG_CHECKIN, &e, err);
  uint32_t limit = 0;
  bool has = false;
  int64_t after_ms = 0;
  const char *after_id = NULL;
  if (rc == MQ_OK) rc = mq_check_page_size(err, "page_size", req->page_size, 50, 500, &limit);
  if (rc == MQ_OK) /* page tokens (lib/mq_page.h): "<checked-in ms>.<ticket id>" */
    rc = mq_page_token_read_key(a, &req->base, "page_token", req->page_token, &has, &after_ms, &after_id, err);
  mq_checkin_t *v = NULL;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_checkins_list(app->store, e->event_id, has, after_ms, after_id, limit, a, &v, &n, err);
  if (rc != MQ_OK) return rc;
  resp->check_ins = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->check_ins);
  for (size_t i = 0; i < n; i++) resp->check_ins[resp->n_check_ins++] = checkin_view(a, &v[i]);
  resp->next_page_token = (char *)"";
  if (n == limit && n)
    resp->next_page_token = mq_page_token_make_key(a, &req->base, v[n - 1].at_ms, v[n - 1].ticket_id);
  return MQ_OK;
}

typedef struct {
  Marquee__Catalog__V1__Event *e;
  int64_t *sold, *checked;
  int64_t extra_sold, extra_checked; /* ticket types no longer on the event */
} stats_t;

static size_t tt_index(const stats_t *st, const char *tt) {
  for (size_t i = 0; i < st->e->n_ticket_types; i++)
    if (!strcmp(st->e->ticket_types[i]->ticket_type_id, tt)) return i;
  return SIZE_MAX;
}

static bool count_booking(const mq_booking_t *b, void *arg) {
  stats_t *st = arg;
  for (size_t i = 0; i < b->n_tickets; i++) {
    size_t k = tt_index(st, b->tickets[i].ticket_type_id);
    if (k == SIZE_MAX)
      st->extra_sold++;
    else
      st->sold[k]++;
  }
  return true;
}

static bool count_checkin(const mq_checkin_t *c, void *arg) {
  stats_t *st = arg;
  size_t k = tt_index(st, c->ticket_type_id);
  if (k == SIZE_MAX)
    st->extra_checked++;
  else
    st->checked[k]++;
  return true;
}

static mq_code_t checkin_stats(mq_call_t *call, const Marquee__Bookings__V1__GetCheckInStatsRequest *req,
                               Marquee__Bookings__V1__CheckInStats *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Catalog__V1__Event *e;
  mq_code_t rc = mq_bookings_event_for_member(call, req->event_id, MQ_ORG_CHECKIN, &e, err);
  if (rc != MQ_OK) return rc;
  size_t n = e->n_ticket_types;
  stats_t st = {.e = e,
                .sold = mq_arena_alloc(a, (n ? n : 1) * sizeof(int64_t)),
                .checked = mq_arena_alloc(a, (n ? n : 1) * sizeof(int64_t))};
  if ((rc = mq_bookings_each(app->store, e->event_id, MQ_BOOKING_CONFIRMED, count_booking, &st, err)) != MQ_OK)
    return rc;
  if ((rc = mq_checkins_each(app->store, e->event_id, count_checkin, &st, err)) != MQ_OK) return rc;
  resp->event_id = e->event_id;
  resp->ticket_types = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->ticket_types);
  resp->sold = st.extra_sold;
  resp->checked_in = st.extra_checked;
  for (size_t i = 0; i < n; i++) {
    Marquee__Bookings__V1__TicketTypeStats *t = mq_arena_alloc(a, sizeof *t);
    marquee__bookings__v1__ticket_type_stats__init(t);
    t->ticket_type_id = e->ticket_types[i]->ticket_type_id;
    t->ticket_type_name = e->ticket_types[i]->name;
    t->sold = st.sold[i];
    t->checked_in = st.checked[i];
    resp->sold += t->sold;
    resp->checked_in += t->checked_in;
    resp->ticket_types[resp->n_ticket_types++] = t;
  }
  return MQ_OK;
}

static const marquee__bookings__v1__ticket_service_handlers_t ticket_handlers = {
    .get_ticket = {ticket_get, MQ_POLICY_RESOURCE, 0},
    .set_attendee_name = {ticket_set_name, MQ_POLICY_RESOURCE, 0},
    .get_ticket_keys = {ticket_keys, MQ_POLICY_PUBLIC, 0},
    .get_ticket_image = {ticket_image, MQ_POLICY_RESOURCE, 0},
};

static const marquee__bookings__v1__check_in_service_handlers_t checkin_handlers = {
    .check_in = {checkin, MQ_POLICY_RESOURCE, 0},
    .undo_check_in = {checkin_undo, MQ_POLICY_RESOURCE, 0},
    .list_check_ins = {checkin_list, MQ_POLICY_RESOURCE, 0},
    .get_check_in_stats = {checkin_stats, MQ_POLICY_RESOURCE, 0},
};

int ticket_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__bookings__v1__ticket_service__mq_register(srv, &ticket_handlers);
}

int checkin_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__bookings__v1__check_in_service__mq_register(srv, &checkin_handlers);
}
