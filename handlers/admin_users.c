/*
 * admin_users.c — marquee.identity.v1.AdminService: an administrator reads
 * an account, replaces its platform roles, suspends or reinstates it. Every
 * row is MQ_POLICY_ADMIN (the interceptor refuses everyone else before the
 * handler runs). Each change carries its event (RoleChanged, UserSuspended,
 * UserReinstated) in the same write, with the administrator as the actor, so
 * the audit log records who did what.
 */
#include <string.h>

#include "identity.h"
#include "marquee/identity/v1/identity.mq-server.h"
#include "mq_app.h"
#include "mq_bson.h"
#include "mq_validate.h"
#include "users_store.h"

static mq_code_t load(mq_call_t *call, const char *user_id, mq_user_t *u, mq_error_t *err) {
  mq_code_t rc = mq_check_uuid(err, "user_id", user_id);
  if (rc != MQ_OK) return rc;
  rc = mq_users_get(((mq_app_t *)mq_call_app(call))->store, user_id, mq_call_arena(call), u, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "user_id", "no account with this id");
  return rc;
}

static mq_code_t reply(mq_call_t *call, const char *user_id, Marquee__Identity__V1__User *resp, mq_error_t *err) {
  mq_user_t u;
  mq_code_t rc = load(call, user_id, &u, err);
  if (rc == MQ_OK) *resp = *mq_identity_user_to_pb(call, &u);
  return rc;
}

static void admin_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *user_id) {
  mq_event_init(ev, "marquee.users", type, user_id, mq_call_principal(call)->subject, mq_call_trace_id(call),
                mq_call_request_id(call));
}

static mq_code_t admin_get_user(mq_call_t *call, const Marquee__Identity__V1__GetUserRequest *req,
                                Marquee__Identity__V1__User *resp, mq_error_t *err) {
  return reply(call, req->user_id, resp, err);
}

static mq_code_t admin_set_user_roles(mq_call_t *call, const Marquee__Identity__V1__SetUserRolesRequest *req,
                                      Marquee__Identity__V1__User *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_user_t u;
  mq_code_t rc = load(call, req->user_id, &u, err);
  if (rc != MQ_OK) return rc;
  if (req->n_roles == 0 || req->n_roles > 3)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "roles", "give 1 to 3 roles");
  static const char *const names[] = {"", "attendee", "organizer", "admin"};
  bson_t set = BSON_INITIALIZER, arr;
  char *list[3];
  size_t n = 0;
  BSON_APPEND_ARRAY_BEGIN(&set, "roles", &arr);
  for (size_t i = 0; i < req->n_roles && rc == MQ_OK; i++) {
    rc = mq_check_enum(err, "roles", (int)req->roles[i], &marquee__identity__v1__role__descriptor, false);
    if (rc != MQ_OK) break;
    bool dup = false;
    for (size_t k = 0; k < n; k++) dup |= !strcmp(list[k], names[req->roles[i]]);
    if (dup) continue;
    list[n] = (char *)names[req->roles[i]];
    char key[4];
    const char *kp;
    bson_uint32_to_string((uint32_t)n, &kp, key, sizeof key);
    bson_append_utf8(&arr, kp, -1, list[n], -1);
    n++;
  }
  bson_append_array_end(&set, &arr);
  if (rc == MQ_OK) {
    Marquee__Events__V1__RoleChanged payload = MARQUEE__EVENTS__V1__ROLE_CHANGED__INIT;
    payload.user_id = (char *)u.id;
    payload.roles = list;
    payload.n_roles = n;
    mq_event_t ev;
    admin_event(&ev, call, "users.RoleChanged", u.id);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ROLE_CHANGED;
    ev.env.role_changed = &payload;
    rc = mq_users_update(app->store, u.id, &set, &ev, 1, err);
  }
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  mq_app_events_written(app);
  return reply(call, u.id, resp, err);
}

static mq_code_t admin_suspend_user(mq_call_t *call, const Marquee__Identity__V1__SuspendUserRequest *req,
                                    Marquee__Identity__V1__User *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_text(err, "reason", req->reason, 1, 500, MQ_TEXT_MULTILINE);
  if (rc != MQ_OK) return rc;
  mq_user_t u;
  if ((rc = load(call, req->user_id, &u, err)) != MQ_OK) return rc;
  if (!strcmp(u.id, mq_call_principal(call)->subject))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "user_id", "administrators cannot suspend their own account");
  if (u.status == MQ_USER_SUSPENDED) return mq_error_set(err, MQ_FAILED_PRECONDITION, "user_id", "already suspended");
  Marquee__Events__V1__UserSuspended payload = MARQUEE__EVENTS__V1__USER_SUSPENDED__INIT;
  payload.user_id = (char *)u.id;
  payload.reason = req->reason;
  mq_event_t ev;
  admin_event(&ev, call, "users.UserSuspended", u.id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_SUSPENDED;
  ev.env.user_suspended = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_INT32(&set, "status", MQ_USER_SUSPENDED);
  BSON_APPEND_DATE_TIME(&set, "sessions_revoked_at", mq_now_unix_ms());
  rc = mq_users_update(app->store, u.id, &set, &ev, 1, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  mq_app_events_written(app);
  return reply(call, u.id, resp, err);
}

static mq_code_t admin_reinstate_user(mq_call_t *call, const Marquee__Identity__V1__ReinstateUserRequest *req,
                                      Marquee__Identity__V1__User *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_user_t u;
  mq_code_t rc = load(call, req->user_id, &u, err);
  if (rc != MQ_OK) return rc;
  if (u.status != MQ_USER_SUSPENDED) return mq_error_set(err, MQ_FAILED_PRECONDITION, "user_id", "not suspended");
  Marquee__Events__V1__UserReinstated payload = MARQUEE__EVENTS__V1__USER_REINSTATED__INIT;
  payload.user_id = (char *)u.id;
  mq_event_t ev;
  admin_event(&ev, call, "users.UserReinstated", u.id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REINSTATED;
  ev.env.user_reinstated = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_INT32(&set, "status", MQ_USER_ACTIVE);
  rc = mq_users_update(app->store, u.id, &set, &ev, 1, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  mq_app_events_written(app);
  return reply(call, u.id, resp, err);
}

static const marquee__identity__v1__admin_service_handlers_t handlers = {
    .get_user = {admin_get_user, MQ_POLICY_ADMIN, 0},
    .set_user_roles = {admin_set_user_roles, MQ_POLICY_ADMIN, 0},
    .suspend_user = {admin_suspend_user, MQ_POLICY_ADMIN, 0},
    .reinstate_user = {admin_reinstate_user, MQ_POLICY_ADMIN, 0},
};

int admin_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__identity__v1__admin_service__mq_register(srv, &handlers);
}
