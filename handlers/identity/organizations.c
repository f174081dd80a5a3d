/*
 * organizations.c — marquee.identity.v1.OrganizationService, and
 * mq_org_require, the organization-role check every later domain uses for
 * its MQ_POLICY_RESOURCE methods ("manager of the event's organization").
 *
 * Who may call what is in each row's policy plus mq_org_require: creating
 * needs the organizer (or admin) platform role; reading needs membership;
 * inviting and removing members needs owner or manager, only an owner may
 * invite or remove an owner, and the last owner stays. Invitations go to an
 * e-mail address whether or not it has an account (no enumeration); whoever
 * holds the link's single-use token and is signed in joins.
 * The three lists page (AIP-158) in the order rows were added.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_jwt.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/identity/v1/identity.mq-server.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

enum { ORG_PAGE_DEFAULT = 50, ORG_PAGE_MAX = 200 };

static const char *const role_names[] = {"", "owner", "manager", "checkin_staff"};

bool mq_route_bearer(mq_app_t *app, const mq_http_response_t *r, mq_principal_t *who) {
  const char *auth = mq_http_request_header(r, "Authorization");
  mq_error_t err = {0};
  memset(who, 0, sizeof *who);
  return auth && !strncasecmp(auth, "Bearer ", 7) && app->jwt &&
         mq_jwt_verify(app->jwt, auth + 7, strlen(auth + 7), who, &err) == MQ_OK;
}

mq_code_t mq_org_require(mq_call_t *call, const char *org_id, int weakest_allowed, int *role, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  const mq_principal_t *who = mq_call_principal(call);
  mq_code_t rc = mq_check_uuid(err, "organization_id", org_id);
  if (rc != MQ_OK) return rc;
  int r = 0;
  if (who->roles & MQ_ROLE_ADMIN) {
    mq_org_t org;
    rc = mq_orgs_get(app->store, org_id, mq_call_arena(call), &org, err);
    r = MQ_ORG_OWNER;
  } else {
    rc = mq_orgs_role(app->store, org_id, who->subject, &r, err);
  }
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "organization_id", "no such organization");
  if (rc != MQ_OK) return rc;
  if (r > weakest_allowed)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "organization_id", "this needs the %s role or stronger",
                        role_names[weakest_allowed]);
  if (role) *role = r;
  mq_call_authorized(call);
  return MQ_OK;
}

static Marquee__Identity__V1__Organization *org_to_pb(mq_call_t *call, const mq_org_t *o, int my_role) {
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Identity__V1__Organization *p = mq_arena_alloc(a, sizeof *p);
  marquee__identity__v1__organization__init(p);
  p->organization_id = (char *)o->id;
  p->name = (char *)o->name;
  p->slug = (char *)o->slug;
  p->created_at = mq_pb_timestamp(a, o->created_ms);
  p->my_role = (Marquee__Identity__V1__MemberRole)my_role;
  return p;
}

static void org_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *org_id) {
  mq_event_init(ev, "marquee.users", type, org_id, mq_call_principal(call)->subject, mq_call_trace_id(call),
                mq_call_request_id(call));
}

static mq_code_t check_slug(const char *slug, mq_error_t *err) {
  size_t n = slug ? strlen(slug) : 0;
  bool ok = n >= 3 && n <= 60 && slug[0] != '-' && slug[n - 1] != '-';
  for (size_t i = 0; ok && i < n; i++)
    ok = (slug[i] >= 'a' && slug[i] <= 'z') || (slug[i] >= '0' && slug[i] <= '9') || slug[i] == '-';
  return ok ? MQ_OK
            : mq_error_set(err, MQ_INVALID_ARGUMENT, "slug", "must be 3-60 of a-z, 0-9 and '-', not at the ends");
}

static mq_code_t org_create(mq_call_t *call, const Marquee__Identity__V1__CreateOrganizationRequest *req,
                            Marquee__Identity__V1__Organization *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_text(err, "name", req->name, 1, 120, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  check_slug(req->slug, err);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  const char *me = mq_call_principal(call)->subject;
  mq_org_t org = {id, req->name, req->slug, me, mq_now_unix_ms()};
  Marquee__Events__V1__OrganizationCreated created = MARQUEE__EVENTS__V1__ORGANIZATION_CREATED__INIT;
  created.organization_id = id;
  created.name = req->name;
  created.slug = req->slug;
  created.owner_user_id = (char *)me;
  mq_event_t ev1, ev2;
  org_event(&ev1, call, "organizations.OrganizationCreated", id);
  ev1.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_CREATED;
  ev1.env.organization_created = &created;
  Marquee__Events__V1__OrganizationMemberAdded added = MARQUEE__EVENTS__V1__ORGANIZATION_MEMBER_ADDED__INIT;
  added.organization_id = id;
  added.user_id = (char *)me;
  added.role = (char *)role_names[MQ_ORG_OWNER];
  org_event(&ev2, call, "organizations.OrganizationMemberAdded", id);
  ev2.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_ADDED;
  ev2.env.organization_member_added = &added;
  if ((rc = mq_orgs_create(app->store, &org, &ev1, &ev2, err)) != MQ_OK) return rc;
  *resp = *org_to_pb(call, &org, MQ_ORG_OWNER);
  return MQ_OK;
}

static mq_code_t org_get(mq_call_t *call, const Marquee__Identity__V1__GetOrganizationRequest *req,
                         Marquee__Identity__V1__Organization *resp, mq_error_t *err) {
  int role;
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_CHECKIN, &role, err);
  if (rc != MQ_OK) return rc;
  mq_org_t org;
  rc = mq_orgs_get(((mq_app_t *)mq_call_app(call))->store, req->organization_id, mq_call_arena(call), &org, err);
  if (rc == MQ_OK) *resp = *org_to_pb(call, &org, role);
  return rc;
}

/* Page size and token of an organization list (lib/mq_page.h); the cursor is
 * "<added or created ms>.<id>" of the page's last row. */
static mq_code_t org_page(mq_call_t *call, const ProtobufCMessage *req, uint32_t page_size, const char *page_token,
                          mq_orgs_page_t *pg, mq_error_t *err) {
  mq_code_t rc = mq_check_page_size(err, "page_size", page_size, ORG_PAGE_DEFAULT, ORG_PAGE_MAX, &pg->limit);
  bool has = false;
  if (rc == MQ_OK)
    rc = mq_page_token_read_key(mq_call_arena(call), req, "page_token", page_token, &has, &pg->after_ms, &pg->after_id,
                                err);
  if (!has) pg->after_id = NULL;
  return rc;
}

static char *org_next_token(mq_call_t *call, const ProtobufCMessage *req, const mq_orgs_page_t *pg, size_t n,
                            int64_t last_ms, const char *last_id) {
  if (n < pg->limit || !n) return (char *)"";
  return mq_page_token_make_key(mq_call_arena(call), req, last_ms, last_id);
}

static mq_code_t org_list_mine(mq_call_t *call, const Marquee__Identity__V1__ListMyOrganizationsRequest *req,
                               Marquee__Identity__V1__ListMyOrganizationsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_orgs_page_t pg = {0};
  mq_membership_t *ms = NULL;
  size_t n = 0;
  mq_code_t rc = org_page(call, &req->base, req->page_size, req->page_token, &pg, err);
  if (rc == MQ_OK)
    rc = mq_orgs_list_memberships(app->store, NULL, mq_call_principal(call)->subject, &pg, a, &ms, &n, err);
  if (rc != MQ_OK) return rc;
  resp->organizations = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->organizations);
  for (size_t i = 0; i < n; i++) {
    mq_org_t org;
    if (mq_orgs_get(app->store, ms[i].org_id, a, &org, err) != MQ_OK) continue; /* removed meanwhile */
    resp->organizations[resp->n_organizations++] = org_to_pb(call, &org, ms[i].role);
  }
  resp->next_page_token = n ? org_next_token(call, &req->base, &pg, n, ms[n - 1].added_ms, ms[n - 1].org_id) : "";
  return MQ_OK;
}

static Marquee__Identity__V1__Invitation *invitation_to_pb(mq_call_t *call, const mq_invitation_t *inv) {
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Identity__V1__Invitation *p = mq_arena_alloc(a, sizeof *p);
  marquee__identity__v1__invitation__init(p);
  p->invitation_id = (char *)inv->id;
  p->organization_id = (char *)inv->org_id;
  p->email = (char *)inv->email;
  p->role = (Marquee__Identity__V1__MemberRole)inv->role;
  p->invited_by = (char *)inv->invited_by;
  p->created_at = mq_pb_timestamp(a, inv->created_ms);
  p->expires_at = mq_pb_timestamp(a, inv->expires_ms);
  return p;
}

/* The same steps and answer whether or not the address has an account. */
static mq_code_t org_invite(mq_call_t *call, const Marquee__Identity__V1__InviteMemberRequest *req,
                            Marquee__Identity__V1__Invitation *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  int my_role;
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, &my_role, err);
  if (rc != MQ_OK) return rc;
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_enum(err, "role", (int)req->role, &marquee__identity__v1__member_role__descriptor, false);
  mq_check_email(err, "email", req->email);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  if (req->role == MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_OWNER && my_role != MQ_ORG_OWNER)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "role", "only an owner may invite an owner");
  mq_org_t org;
  if ((rc = mq_orgs_get(app->store, req->organization_id, a, &org, err)) != MQ_OK) return rc;
  char *key = mq_arena_alloc(a, strlen(req->email) + 1), *id = mq_arena_alloc(a, 37),
       *token = mq_arena_alloc(a, MQ_TOKEN_LEN + 1), *hash = mq_arena_alloc(a, 65);
  mq_users_email_key(req->email, key, strlen(req->email) + 1);
  mq_uuid_v4(id);
  mq_token_new("mqi_", token);
  mq_token_hash(token, hash);
  int64_t now = mq_now_unix_ms();
  mq_invitation_t inv = {id,
                         req->organization_id,
                         req->email,
                         key,
                         hash,
                         mq_call_principal(call)->subject,
                         (int)req->role,
                         now,
                         now + app->cfg->invitation_ttl_s * 1000};
  Marquee__Events__V1__OrganizationMemberInvited pl = MARQUEE__EVENTS__V1__ORGANIZATION_MEMBER_INVITED__INIT;
  pl.organization_id = (char *)org.id;
  pl.organization_name = (char *)org.name;
  pl.invitation_id = id;
  pl.email = req->email;
  pl.role = (char *)role_names[inv.role];
  pl.sealed_token = mq_identity_seal(call, token);
  pl.expires_at = mq_pb_timestamp(a, inv.expires_ms);
  pl.invited_by = (char *)inv.invited_by;
  mq_event_t ev;
  org_event(&ev, call, "organizations.OrganizationMemberInvited", req->organization_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED;
  ev.env.organization_member_invited = &pl;
  if ((rc = mq_orgs_invite(app->store, &inv, &ev, err)) != MQ_OK) return rc;
  *resp = *invitation_to_pb(call, &inv);
  return MQ_OK;
}

static mq_code_t org_accept(mq_call_t *call, const Marquee__Identity__V1__AcceptInvitationRequest *req,
                            Marquee__Identity__V1__Member *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  if (!mq_token_shape_ok(req->token, "mqi_"))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "token", "not an invitation token");
  const char *me = mq_call_principal(call)->subject;
  char hash[65];
  mq_token_hash(req->token, hash);
  mq_invitation_t inv;
  mq_code_t rc = mq_orgs_take_invitation(app->store, hash, a, &inv, err);
  if (rc != MQ_OK) return rc;
  mq_user_t u;
  mq_error_t uerr;
  mq_membership_t m = {inv.org_id, me, inv.invited_by, inv.role, mq_now_unix_ms()};
  Marquee__Events__V1__OrganizationMemberAdded added = MARQUEE__EVENTS__V1__ORGANIZATION_MEMBER_ADDED__INIT;
  added.organization_id = (char *)inv.org_id;
  added.user_id = (char *)me;
  added.role = (char *)role_names[inv.role];
  mq_event_t ev;
  org_event(&ev, call, "organizations.OrganizationMemberAdded", inv.org_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_ADDED;
  ev.env.organization_member_added = &added;
  rc = mq_orgs_add_member(app->store, &m, &ev, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) { /* transient: the invitation stays usable */
    mq_error_t rerr;
    mq_orgs_restore_invitation(app->store, &inv, &rerr);
    return rc;
  }
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_ALREADY_EXISTS, "token", "already a member");
  resp->organization_id = (char *)inv.org_id;
  resp->user_id = (char *)me;
  resp->display_name = mq_users_get(app->store, me, a, &u, &uerr) == MQ_OK ? (char *)u.display_name : (char *)"";
  resp->role = (Marquee__Identity__V1__MemberRole)inv.role;
  resp->added_at = mq_pb_timestamp(a, m.added_ms);
  return MQ_OK;
}

static mq_code_t org_list_invitations(mq_call_t *call, const Marquee__Identity__V1__ListInvitationsRequest *req,
                                      Marquee__Identity__V1__ListInvitationsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) return rc;
  mq_orgs_page_t pg = {0};
  mq_invitation_t *invs = NULL;
  size_t n = 0;
  if ((rc = org_page(call, &req->base, req->page_size, req->page_token, &pg, err)) != MQ_OK) return rc;
  if ((rc = mq_orgs_list_invitations(app->store, req->organization_id, &pg, a, &invs, &n, err)) != MQ_OK) return rc;
  resp->invitations = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->invitations);
  for (size_t i = 0; i < n; i++) resp->invitations[resp->n_invitations++] = invitation_to_pb(call, &invs[i]);
  resp->next_page_token = n ? org_next_token(call, &req->base, &pg, n, invs[n - 1].created_ms, invs[n - 1].id) : "";
  return MQ_OK;
}

static mq_code_t org_revoke_invitation(mq_call_t *call, const Marquee__Identity__V1__RevokeInvitationRequest *req,
                                       Marquee__Identity__V1__RevokeInvitationResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc != MQ_OK) return rc;
  if ((rc = mq_check_uuid(err, "invitation_id", req->invitation_id)) != MQ_OK) return rc;
  return mq_orgs_revoke_invitation(app->store, req->organization_id, req->invitation_id, err);
}

static mq_code_t org_remove_member(mq_call_t *call, const Marquee__Identity__V1__RemoveMemberRequest *req,
                                   Marquee__Identity__V1__RemoveMemberResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  int my_role, their_role;
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, &my_role, err);
  if (rc != MQ_OK) return rc;
  if ((rc = mq_check_uuid(err, "user_id", req->user_id)) != MQ_OK) return rc;
  rc = mq_orgs_role(app->store, req->organization_id, req->user_id, &their_role, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "user_id", "not a member");
  if (rc != MQ_OK) return rc;
  if (their_role == MQ_ORG_OWNER) {
    if (my_role != MQ_ORG_OWNER)
      return mq_error_set(err, MQ_PERMISSION_DENIED, "user_id", "only an owner may remove an owner");
    int64_t owners = 0;
    if ((rc = mq_orgs_count_role(app->store, req->organization_id, MQ_ORG_OWNER, &owners, err)) != MQ_OK) return rc;
    if (owners <= 1)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "user_id",
                          "the last owner cannot be removed; add another first");
  }
  Marquee__Events__V1__OrganizationMemberRemoved removed = MARQUEE__EVENTS__V1__ORGANIZATION_MEMBER_REMOVED__INIT;
  removed.organization_id = req->organization_id;
  removed.user_id = req->user_id;
  mq_event_t ev;
  org_event(&ev, call, "organizations.OrganizationMemberRemoved", req->organization_id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_REMOVED;
  ev.env.organization_member_removed = &removed;
  rc =
      mq_orgs_remove_member(app->store, req->organization_id, req->user_id, mq_call_principal(call)->subject, &ev, err);
  return rc;
}

static mq_code_t org_list_members(mq_call_t *call, const Marquee__Identity__V1__ListMembersRequest *req,
                                  Marquee__Identity__V1__ListMembersResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_CHECKIN, NULL, err);
  if (rc != MQ_OK) return rc;
  mq_orgs_page_t pg = {0};
  mq_membership_t *ms = NULL;
  size_t n = 0;
  if ((rc = org_page(call, &req->base, req->page_size, req->page_token, &pg, err)) != MQ_OK) return rc;
  if ((rc = mq_orgs_list_memberships(app->store, req->organization_id, NULL, &pg, a, &ms, &n, err)) != MQ_OK) return rc;
  resp->members = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->members);
  for (size_t i = 0; i < n; i++) {
    Marquee__Identity__V1__Member *m = mq_arena_alloc(a, sizeof *m);
    marquee__identity__v1__member__init(m);
    m->organization_id = (char *)ms[i].org_id;
    m->user_id = (char *)ms[i].user_id;
    mq_user_t u;
    mq_error_t uerr;
    m->display_name =
        mq_users_get(app->store, ms[i].user_id, a, &u, &uerr) == MQ_OK ? (char *)u.display_name : (char *)"";
    m->role = (Marquee__Identity__V1__MemberRole)ms[i].role;
    m->added_at = mq_pb_timestamp(a, ms[i].added_ms);
    resp->members[resp->n_members++] = m;
  }
  resp->next_page_token = n ? org_next_token(call, &req->base, &pg, n, ms[n - 1].added_ms, ms[n - 1].user_id) : "";
  return MQ_OK;
}

static const marquee__identity__v1__organization_service_handlers_t handlers = {
    .create_organization = {org_create, MQ_POLICY_ORGANIZER, 0},
    .get_organization = {org_get, MQ_POLICY_RESOURCE, 0},
    .list_my_organizations = {org_list_mine, MQ_POLICY_AUTHENTICATED, 0},
    .invite_member = {org_invite, MQ_POLICY_RESOURCE, 0},
    .accept_invitation = {org_accept, MQ_POLICY_AUTHENTICATED, 0},
    .list_invitations = {org_list_invitations, MQ_POLICY_RESOURCE, 0},
    .revoke_invitation = {org_revoke_invitation, MQ_POLICY_RESOURCE, 0},
    .remove_member = {org_remove_member, MQ_POLICY_RESOURCE, 0},
    .list_members = {org_list_members, MQ_POLICY_RESOURCE, 0},
};

int organization_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__identity__v1__organization_service__mq_register(srv, &handlers);
}
