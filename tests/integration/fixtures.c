/*
 * fixtures.c — see fixtures.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixtures.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/venues.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"

char *mq_fx_user(mq_client_t *c, const char *tag, const char *password, char *uid, size_t n, char *email, size_t en) {
  static int k;
  snprintf(email, en, "%s.%d.%d@example.com", tag, (int)getpid(), ++k);
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = email;
  req.password = (char *)password;
  req.display_name = (char *)tag;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  if (marquee__identity__v1__account_service__sign_up__call(c, &req, &r, NULL, &err) != MQ_OK) return NULL;
  snprintf(uid, n, "%s", r->user->user_id);
  char *tok = strdup(r->tokens->access_token);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return tok;
}

void mq_fx_org(mq_client_t *c, const char *token, const char *slug_prefix, char out[40]) {
  static int n;
  Marquee__Identity__V1__CreateOrganizationRequest q = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "%s-%d-%d", slug_prefix, (int)getpid(), n++);
  q.name = (char *)"Fixture Org";
  q.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  mq_call_opts_t oo = {.bearer_token = token};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__create_organization__call(c, &q, &o, &oo, &err), MQ_OK);
  snprintf(out, 40, "%s", o->organization_id);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
}

static Google__Protobuf__Timestamp *at(Google__Protobuf__Timestamp *ts, int64_t in_s) {
  google__protobuf__timestamp__init(ts);
  ts->seconds = time(NULL) + in_s;
  return ts;
}

static void venue(mq_client_t *c, const char *token, const char *org, const char *name, const char *city,
                  const char *region, const char *country, const char *tz, double lat, double lng, char out[40]) {
  mq_call_opts_t oo = {.bearer_token = token};
  mq_error_t err;
  Marquee__Catalog__V1__Venue v = MARQUEE__CATALOG__V1__VENUE__INIT;
  v.organization_id = (char *)org;
  v.name = (char *)name;
  v.address_line1 = (char *)"1 Main Street";
  v.city = (char *)city;
  v.region = (char *)region;
  v.country = (char *)country;
  v.latitude = lat;
  v.longitude = lng;
  v.time_zone = (char *)tz;
  Marquee__Catalog__V1__CreateVenueRequest q = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  q.venue = &v;
  Marquee__Catalog__V1__Venue *made = NULL;
  assert_int_equal(marquee__catalog__v1__venue_service__create_venue__call(c, &q, &made, &oo, &err), MQ_OK);
  snprintf(out, 40, "%s", made->venue_id);
  marquee__catalog__v1__venue__free_unpacked(made, NULL);
}

void mq_fx_venue(mq_client_t *c, const char *token, const char *org, const char *city, const char *region,
                 const char *country, const char *tz, char out[40]) {
  venue(c, token, org, "Fixture Hall", city, region, country, tz, 45.5, -73.6, out);
}

void mq_fx_venue_at(mq_client_t *c, const char *token, const char *org, const char *name, const char *city,
                    const char *country, const char *tz, double lat, double lng, char out[40]) {
  venue(c, token, org, name, city, "", country, tz, lat, lng, out);
}

void mq_fx_event(mq_client_t *c, const char *token, const char *org, const mq_fx_event_opts_t *o, mq_fx_event_t *out) {
  mq_call_opts_t oo = {.bearer_token = token};
  mq_error_t err;
  const char *cur = o->currency ? o->currency : "EUR";
  Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s, e;
  int64_t starts = o->starts_in_s ? o->starts_in_s : 30 * 86400;
  ev.organization_id = (char *)org;
  ev.title = (char *)(o->title ? o->title : "Fixture Event");
  ev.description_md = (char *)(o->description ? o->description : "");
  ev.category_id = (char *)(o->category_id ? o->category_id : "");
  if (o->venue_id)
    ev.venue_id = (char *)o->venue_id;
  else
    ev.online_url = (char *)"https://stream.example.com/fixture";
  ev.starts_at = at(&s, starts);
  ev.ends_at = at(&e, starts + 7200);
  ev.currency = (char *)cur;
  ev.capacity = o->capacity;
  ev.attendee_cancel_disabled = o->cancel_disabled;
  ev.attendee_cancel_cutoff_hours = o->cancel_cutoff_hours;
  Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  cq.event = &ev;
  Marquee__Catalog__V1__Event *made = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__create_event__call(c, &cq, &made, &oo, &err), MQ_OK);
  snprintf(out->event_id, sizeof out->event_id, "%s", made->event_id);
  marquee__catalog__v1__event__free_unpacked(made, NULL);
  for (int i = 0; i < o->n_tt; i++) {
    const mq_fx_tt_t *t = &o->tt[i];
    Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
    Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
    Google__Protobuf__Timestamp se, ss;
    char name[32];
    snprintf(name, sizeof name, "Type %d", i);
    m.currency = (char *)cur;
    m.amount_minor = t->price_minor;
    tt.name = name;
    tt.price = &m;
    tt.capacity = t->capacity ? t->capacity : 100;
    tt.max_per_order = t->max_per_order;
    tt.max_per_user = t->max_per_user;
    if (t->access_code) {
      tt.hidden = true;
      tt.access_code = (char *)t->access_code;
    }
    if (t->sales_end_in_s) tt.sales_end = at(&se, t->sales_end_in_s);
    if (t->sales_start_in_s) tt.sales_start = at(&ss, t->sales_start_in_s);
    Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
    tq.event_id = out->event_id;
    tq.ticket_type = &tt;
    Marquee__Catalog__V1__TicketType *tr = NULL;
    assert_int_equal(marquee__catalog__v1__event_service__create_ticket_type__call(c, &tq, &tr, &oo, &err), MQ_OK);
    snprintf(out->tt[i], sizeof out->tt[i], "%s", tr->ticket_type_id);
    marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  }
  if (o->draft) return;
  Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  pq.event_id = out->event_id;
  Marquee__Catalog__V1__Event *pub = NULL;
  assert_int_equal(marquee__catalog__v1__event_service__publish_event__call(c, &pq, &pub, &oo, &err), MQ_OK);
  marquee__catalog__v1__event__free_unpacked(pub, NULL);
}

void mq_fx_invite(mq_client_t *c, const char *inviter, const char *org, const char *email,
                  Marquee__Identity__V1__MemberRole role, char invitation_id[40]) {
  Marquee__Identity__V1__InviteMemberRequest q = MARQUEE__IDENTITY__V1__INVITE_MEMBER_REQUEST__INIT;
  q.organization_id = (char *)org;
  q.email = (char *)email;
  q.role = role;
  Marquee__Identity__V1__Invitation *inv = NULL;
  mq_call_opts_t o = {.bearer_token = inviter};
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__organization_service__invite_member__call(c, &q, &inv, &o, &err), MQ_OK);
  snprintf(invitation_id, 40, "%s", inv->invitation_id);
  marquee__identity__v1__invitation__free_unpacked(inv, NULL);
}

void mq_fx_add_member(mq_client_t *c, const char *db, const char *inviter, const char *org, const char *email,
                      Marquee__Identity__V1__MemberRole role, const char *invitee) {
  char invitation[40], token[96];
  mq_error_t err;
  mq_fx_invite(c, inviter, org, email, role, invitation);
  bool found = mq_test_invitation_token(db, org, invitation, token, sizeof token);
  assert_true(found);
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = token;
  Marquee__Identity__V1__Member *m = NULL;
  mq_call_opts_t io = {.bearer_token = invitee};
  assert_int_equal(marquee__identity__v1__organization_service__accept_invitation__call(c, &aq, &m, &io, &err), MQ_OK);
  marquee__identity__v1__member__free_unpacked(m, NULL);
}
