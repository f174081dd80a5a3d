/*
 * admin_users.c — marquee.identity.v1.AdminService: an administrator reads
 * an account, replaces its platform roles, suspends or reinstates it. Every
 * row is MQ_POLICY_ADMIN (the interceptor refuses everyone else before the
 * handler runs). Each change carries its event (RoleChanged, UserSuspended,
 * UserReinstated) in the same write, with the administrator as the actor, so
 * the audit log records who did what.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_time.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/identity/v1/identity.mq-server.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

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
    rc = mq_identity_update_user(call, u.id, &set, &ev, err);
  }
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  return reply(call, u.id, resp, err);
}

static mq_code_t admin_suspend_user(mq_call_t *call, const Marquee__Identity__V1__SuspendUserRequest *req,
                                    Marquee__Identity__V1__User *resp, mq_error_t *err) {
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
  rc = mq_identity_update_user(call, u.id, &set, &ev, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  return reply(call, u.id, resp, err);
}

static mq_code_t admin_reinstate_user(mq_call_t *call, const Marquee__Identity__V1__ReinstateUserRequest *req,
                                      Marquee__Identity__V1__User *resp, mq_error_t *err) {
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
  rc = mq_identity_update_user(call, u.id, &set, &ev, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  return reply(call, u.id, resp, err);
}

static mq_code_t admin_list_users(mq_call_t *call, const Marquee__Identity__V1__ListUsersRequest *req,
                                  Marquee__Identity__V1__ListUsersResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_users_query_t q = {0};
  mq_code_t rc = mq_check_page_size(err, "page_size", req->page_size, 50, 200, &q.limit);
  if (rc == MQ_OK && req->email_prefix && req->email_prefix[0])
    rc = mq_check_text(err, "email_prefix", req->email_prefix, 1, 254, MQ_TEXT_SINGLE_LINE);
  if (rc == MQ_OK && req->role)
    rc = mq_check_enum(err, "role", (int)req->role, &marquee__identity__v1__role__descriptor, true);
  if (rc == MQ_OK && req->status)
    rc = mq_check_enum(err, "status", (int)req->status, &marquee__identity__v1__user_status__descriptor, true);
  bool has_cursor; /* page tokens (lib/mq_page.h): "<created ms>.<user id>" of the page's last user */
  if (rc == MQ_OK)
    rc = mq_page_token_read_key(a, &req->base, "page_token", req->page_token, &has_cursor, &q.after_created_ms,
                                &q.after_id, err);
  if (rc != MQ_OK) return rc;
  if (req->email_prefix && req->email_prefix[0]) {
    char *key = mq_arena_alloc(a, strlen(req->email_prefix) + 1);
    mq_users_email_key(req->email_prefix, key, strlen(req->email_prefix) + 1);
    q.email_prefix = key;
  }
  static const uint32_t role_bits[] = {0, MQ_ROLE_ATTENDEE, MQ_ROLE_ORGANIZER, MQ_ROLE_ADMIN};
  q.role = role_bits[req->role];
  q.status = (int)req->status;
  q.created_after_ms = req->created_after ? mq_pb_timestamp_ms(req->created_after) : 0;
  q.created_before_ms = req->created_before ? mq_pb_timestamp_ms(req->created_before) : 0;
  mq_user_t *users = mq_arena_alloc(a, q.limit * sizeof *users);
  size_t n = 0;
  if ((rc = mq_users_list(app->store, &q, a, users, &n, err)) != MQ_OK) return rc;
  resp->users = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->users);
  for (size_t i = 0; i < n; i++) resp->users[resp->n_users++] = mq_identity_user_to_pb(call, &users[i]);
  resp->next_page_token =
      n == q.limit ? mq_page_token_make_key(a, &req->base, users[n - 1].created_ms, users[n - 1].id) : (char *)"";
  return MQ_OK;
}

typedef struct {
  int64_t first_day_ms;
  uint32_t days;
  uint64_t *counts;
} per_day_t;

static void count_day(int64_t created_ms, void *arg) {
  per_day_t *p = arg;
  int64_t d = (created_ms - p->first_day_ms) / 86400000;
  if (d >= 0 && d < p->days) p->counts[d]++;
}

static mq_code_t admin_get_user_stats(mq_call_t *call, const Marquee__Identity__V1__GetUserStatsRequest *req,
                                      Marquee__Identity__V1__UserStats *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  uint32_t days = req->days ? req->days : 30;
  if (days > 366) return mq_error_set(err, MQ_INVALID_ARGUMENT, "days", "must be at most 366");
  struct {
    const char *key;
    const char *svalue;
    int ivalue;
    uint64_t *out;
  } counts[] = {
      {NULL, NULL, 0, &resp->total},
      {"roles", "attendee", 0, &resp->attendees},
      {"roles", "organizer", 0, &resp->organizers},
      {"roles", "admin", 0, &resp->admins},
      {"status", NULL, MQ_USER_ACTIVE, &resp->active},
      {"status", NULL, MQ_USER_SUSPENDED, &resp->suspended},
  };
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
    bson_t f = BSON_INITIALIZER;
    if (counts[i].key && counts[i].svalue) BSON_APPEND_UTF8(&f, counts[i].key, counts[i].svalue);
    if (counts[i].key && !counts[i].svalue) BSON_APPEND_INT32(&f, counts[i].key, counts[i].ivalue);
    int64_t n = 0;
    mq_code_t rc = mq_users_count(app->store, &f, &n, err);
    bson_destroy(&f);
    if (rc != MQ_OK) return rc;
    *counts[i].out = (uint64_t)n;
  }
  int64_t today = mq_now_unix_ms() / 86400000 * 86400000;
  per_day_t pd = {today - (int64_t)(days - 1) * 86400000, days, mq_arena_alloc(a, days * sizeof(uint64_t))};
  mq_code_t rc = mq_users_created_since(app->store, pd.first_day_ms, count_day, &pd, err);
  if (rc != MQ_OK) return rc;
  resp->sign_ups_per_day = mq_arena_alloc(a, days * sizeof *resp->sign_ups_per_day);
  for (uint32_t d = 0; d < days; d++) {
    Marquee__Identity__V1__UserStats__Day *day = mq_arena_alloc(a, sizeof *day);
    marquee__identity__v1__user_stats__day__init(day);
    time_t t = (time_t)((pd.first_day_ms + (int64_t)d * 86400000) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    day->date = mq_arena_sprintf(a, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    day->sign_ups = pd.counts[d];
    resp->sign_ups_per_day[resp->n_sign_ups_per_day++] = day;
  }
  return MQ_OK;
}

static const marquee__identity__v1__admin_service_handlers_t handlers = {
    .get_user = {admin_get_user, MQ_POLICY_ADMIN, 0},
    .set_user_roles = {admin_set_user_roles, MQ_POLICY_ADMIN, 0},
    .suspend_user = {admin_suspend_user, MQ_POLICY_ADMIN, 0},
    .reinstate_user = {admin_reinstate_user, MQ_POLICY_ADMIN, 0},
    .list_users = {admin_list_users, MQ_POLICY_ADMIN, 0},
    .get_user_stats = {admin_get_user_stats, MQ_POLICY_ADMIN, 0},
};

int admin_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__identity__v1__admin_service__mq_register(srv, &handlers);
}
