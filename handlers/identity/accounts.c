/*
 * accounts.c — marquee.identity.v1.AccountService: sign-up, sign-in with a
 * password, refresh-token rotation with reuse detection, sign-out, profile.
 *
 * Flows (stores: store/identity/users_store.h, store/identity/sessions_store.h):
 *   SignUp   validate → policy → Argon2id (worker thread) → insert the user
 *            with UserRegistered (unique e-mail decides races) → new session
 *   SignIn   find by e-mail (absent: a dummy verification of equal cost, so
 *            timing does not reveal which e-mails exist) → verify → suspended?
 *            → upgrade the hash if its parameters are old → new session
 *   Refresh  look up → expired / family revoked / user suspended or signed
 *            out everywhere? → record the exchange (insert: a second exchange
 *            of the same token is reuse → revoke the family, emit
 *            RefreshTokenReuseDetected) → new token in the same family
 *   E-mail   verification and reset links are single-use tokens
 *            (store/identity/account_tokens_store.h); issuing one emits the event the
 *            notifier turns into an e-mail; RequestPasswordReset answers the
 *            same whether or not the address has an account
 *   Abuse    failed sign-ins, sign-ups and reset requests are recorded per
 *            account and per client address (store/identity/auth_attempts_store.h);
 *            over a limit the answer is RESOURCE_EXHAUSTED with a
 *            `retry-after-ms` trailer; an account locks progressively (30 s,
 *            doubling per further failure, at most 1 h), unknown e-mails alike
 * Every failure of SignIn and Refresh says as little as it can: one message
 * for unknown e-mail and wrong password. Secrets (passwords, tokens) are
 * never logged or echoed. Password hashing and every store call run on the
 * worker pool; only GetMe tries the completion-queue thread first
 * (MQ_RUN_TRY_INLINE) and answers from the profile cache there.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_app.h"
#include "lib/mq_password.h"
#include "lib/mq_validate.h"
#include "marquee/identity/v1/identity.mq-server.h"
#include "store/identity/account_tokens_store.h"
#include "store/identity/auth_attempts_store.h"
#include "store/identity/sessions_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

#define BAD_CREDENTIALS "wrong e-mail or password"

/* ---- mapping -------------------------------------------------------------- */

Marquee__Identity__V1__User *mq_identity_user_to_pb(mq_call_t *call, const mq_user_t *u) {
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Identity__V1__User *p = mq_arena_alloc(a, sizeof *p);
  marquee__identity__v1__user__init(p);
  p->user_id = (char *)u->id;
  p->email = (char *)u->email;
  p->email_verified = u->email_verified;
  p->display_name = (char *)u->display_name;
  p->locale = (char *)u->locale;
  p->time_zone = (char *)u->time_zone;
  p->currency = (char *)u->currency;
  p->phone = (char *)(u->phone ? u->phone : "");
  p->avatar_ref = (char *)(u->avatar_ref ? u->avatar_ref : "");
  p->roles = mq_arena_alloc(a, 3 * sizeof *p->roles);
  if (u->roles & MQ_ROLE_ATTENDEE) p->roles[p->n_roles++] = MARQUEE__IDENTITY__V1__ROLE__ROLE_ATTENDEE;
  if (u->roles & MQ_ROLE_ORGANIZER) p->roles[p->n_roles++] = MARQUEE__IDENTITY__V1__ROLE__ROLE_ORGANIZER;
  if (u->roles & MQ_ROLE_ADMIN) p->roles[p->n_roles++] = MARQUEE__IDENTITY__V1__ROLE__ROLE_ADMIN;
  p->status = u->status == MQ_USER_SUSPENDED ? MARQUEE__IDENTITY__V1__USER_STATUS__USER_STATUS_SUSPENDED
                                             : MARQUEE__IDENTITY__V1__USER_STATUS__USER_STATUS_ACTIVE;
  p->notifications = mq_arena_alloc(a, sizeof *p->notifications);
  marquee__identity__v1__notification_preferences__init(p->notifications);
  p->notifications->email_reminders = u->notify_email_reminders;
  p->notifications->email_marketing = u->notify_email_marketing;
  p->notifications->push = u->notify_push;
  p->notifications->sms = u->notify_sms;
  p->created_at = mq_pb_timestamp(a, u->created_ms);
  p->updated_at = mq_pb_timestamp(a, u->updated_ms);
  return p;
}

/* A new access token plus a refresh token in `family` (NULL: a new sign-in). */
mq_code_t mq_identity_issue_pair(mq_call_t *call, const mq_user_t *u, const mq_session_t *family,
                                 Marquee__Identity__V1__TokenPair **out, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  if (!app->jwt)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "token signing is not configured (MARQUEE_JWT_KEYS)");
  int64_t now = mq_now_unix_ms();
  char *access = mq_jwt_sign(app->jwt, u->id, u->roles, app->cfg->access_token_ttl_s);
  if (!access) return mq_error_set(err, MQ_INTERNAL, NULL, "cannot sign the access token");
  char *refresh = mq_arena_alloc(a, MQ_REFRESH_TOKEN_LEN + 1);
  mq_session_t sess;
  mq_code_t rc =
      mq_sessions_issue(app->store, u->id, family ? family->family_id : NULL, family ? family->family_created_ms : 0,
                        app->cfg->refresh_token_ttl_s * 1000, refresh, &sess, err);
  if (rc != MQ_OK) {
    free(access);
    return rc;
  }
  Marquee__Identity__V1__TokenPair *p = mq_arena_alloc(a, sizeof *p);
  marquee__identity__v1__token_pair__init(p);
  p->access_token = mq_arena_strdup(a, access);
  free(access);
  p->access_expires_at = mq_pb_timestamp(a, now + app->cfg->access_token_ttl_s * 1000);
  p->refresh_token = refresh;
  p->refresh_expires_at = mq_pb_timestamp(a, sess.expires_ms);
  p->token_type = (char *)"Bearer";
  *out = p;
  return MQ_OK;
}

mq_code_t mq_identity_update_user(mq_call_t *call, const char *user_id, const bson_t *set, const mq_event_t *ev,
                                  mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_users_update(app->store, user_id, set, ev, ev ? 1 : 0, err);
  mq_app_user_changed(app, user_id); /* even on failure: the write may have landed */
  return rc;
}

/* In place: the envelope points into the event's own id buffer, so an
 * mq_event_t must never be copied after mq_event_init. */
static void user_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *user_id) {
  const mq_principal_t *who = mq_call_principal(call);
  mq_event_init(ev, "marquee.users", type, user_id, who ? who->subject : user_id, mq_call_trace_id(call),
                mq_call_request_id(call));
}

/* ---- abuse protection --------------------------------------------------------------- */

#define MIN_MS 60000LL

/* The client's address as a limit key: the peer without its port, or the
 * first x-forwarded-for hop when MARQUEE_TRUST_FORWARDED_FOR says a proxy
 * sets it (trusting it otherwise would let clients pick their own key). */
const char *mq_identity_client_address(mq_call_t *call) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  if (app->cfg->trust_forwarded_for) {
    const char *xff = mq_call_metadata(call, "x-forwarded-for", NULL);
    if (xff && xff[0]) {
      size_t n = strcspn(xff, ", ");
      return mq_arena_strndup(a, xff, n > 64 ? 64 : n);
    }
  }
  const char *peer = mq_call_peer(call);
  const char *colon = strrchr(peer, ':');
  return colon && colon > peer ? mq_arena_strndup(a, peer, (size_t)(colon - peer)) : peer;
}

const char *mq_identity_limit_key(mq_call_t *call, const char *kind, const char *subject) {
  return mq_arena_sprintf(mq_call_arena(call), "%s:%.200s", kind, subject);
}

/* RATE_LIMITED (RESOURCE_EXHAUSTED) when `key` had `limit` or more attempts in
 * the window. Progressive keys stay locked for 30 s << (attempts - limit),
 * at most an hour, after the last attempt; others until a minute passes. */
mq_code_t mq_identity_over_limit(mq_call_t *call, const char *key, int64_t window_ms, int64_t limit, bool progressive,
                                 mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  int64_t n = 0, last = 0, now = mq_now_unix_ms();
  mq_code_t rc = mq_attempts_recent(app->store, key, now - window_ms, &n, &last, err);
  if (rc != MQ_OK || n < limit) return rc;
  int64_t retry = MIN_MS;
  if (progressive) {
    int64_t shift = n - limit > 7 ? 7 : n - limit;
    int64_t lock = (30000LL << shift) > 60 * MIN_MS ? 60 * MIN_MS : (30000LL << shift);
    retry = last + lock - now;
    if (retry <= 0) return MQ_OK; /* the lock has passed: one more try */
  }
  mq_error_set(err, MQ_RATE_LIMITED, NULL, "too many attempts; retry in %lld s", (long long)((retry + 999) / 1000));
  err->retry_after_ms = retry;
  return MQ_RATE_LIMITED;
}

void mq_identity_count_attempt(mq_call_t *call, const char *key) {
  mq_error_t ignored; /* a lost record only makes a limit more lenient */
  mq_attempts_record(((mq_app_t *)mq_call_app(call))->store, key, &ignored);
}

/* ---- SignUp / SignIn ---------------------------------------------------------- */

/* Checks profile attribute `name` (display_name, locale, ...) with value v;
 * a refusal names `field`, the request's path to it. */
static mq_code_t check_profile_attr(mq_error_t *err, const char *name, const char *field, const char *v) {
  if (!strcmp(name, "display_name")) return mq_check_text(err, field, v, 1, 100, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  if (!strcmp(name, "locale")) return mq_check_language(err, field, v);
  if (!strcmp(name, "time_zone")) return mq_check_timezone(err, field, v);
  if (!strcmp(name, "currency")) return mq_check_currency(err, field, v);
  if (!strcmp(name, "phone")) {
    if (!v || !v[0]) return MQ_OK; /* empty clears it */
    size_t n = strlen(v);
    bool ok = v[0] == '+' && n >= 9 && n <= 16 && v[1] != '0';
    for (size_t i = 1; ok && i < n; i++) ok = v[i] >= '0' && v[i] <= '9';
    return ok ? MQ_OK : mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be an E.164 number such as +33612345678");
  }
  if (!strcmp(name, "avatar_ref")) return v && v[0] ? mq_check_id(err, field, v) : MQ_OK;
  return mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "unknown field");
}

static mq_code_t check_profile_field(mq_error_t *err, const char *field, const char *v) {
  return check_profile_attr(err, field, field, v);
}

static const char *or_default(const char *v, const char *def) {
  return v && v[0] ? v : def;
}

static mq_code_t acct_sign_up(mq_call_t *call, const Marquee__Identity__V1__SignUpRequest *req,
                              Marquee__Identity__V1__AuthResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const char *ip_key = mq_identity_limit_key(call, "signup-ip", mq_identity_client_address(call));
  mq_code_t lrc = mq_identity_over_limit(call, ip_key, 60 * MIN_MS, app->cfg->signup_address_limit, false, err);
  if (lrc != MQ_OK) return lrc;
  mq_identity_count_attempt(call, ip_key);
  mq_user_t u;
  memset(&u, 0, sizeof u);
  u.email = req->email;
  u.display_name = req->display_name;
  u.locale = or_default(req->locale, "en");
  u.time_zone = or_default(req->time_zone, "UTC");
  u.currency = or_default(req->currency, "EUR");
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_email(err, "email", u.email);
  check_profile_field(err, "display_name", u.display_name);
  check_profile_field(err, "locale", u.locale);
  check_profile_field(err, "time_zone", u.time_zone);
  check_profile_field(err, "currency", u.currency);
  mq_password_check_policy(err, "password", req->password, u.email, u.display_name);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;

  char *hash = mq_arena_alloc(a, MQ_PASSWORD_HASH_MAX);
  if ((rc = mq_password_hash(req->password, hash, MQ_PASSWORD_HASH_MAX, err)) != MQ_OK) return rc;
  char *id = mq_arena_alloc(a, 37), *key = mq_arena_alloc(a, strlen(u.email) + 1);
  mq_uuid_v4(id);
  mq_users_email_key(u.email, key, strlen(u.email) + 1);
  u.id = id;
  u.email_key = key;
  u.password_hash = hash;
  u.roles = MQ_ROLE_ATTENDEE;
  u.status = MQ_USER_ACTIVE;
  u.notify_email_reminders = true;
  u.created_ms = u.updated_ms = mq_now_unix_ms();

  Marquee__Events__V1__UserRegistered payload = MARQUEE__EVENTS__V1__USER_REGISTERED__INIT;
  payload.user_id = id;
  payload.email = (char *)u.email;
  payload.display_name = (char *)u.display_name;
  payload.locale = (char *)u.locale;
  mq_event_t ev;
  user_event(&ev, call, "users.UserRegistered", id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REGISTERED;
  ev.env.user_registered = &payload;
  if ((rc = mq_users_insert(app->store, &u, &ev, 1, err)) != MQ_OK) return rc;
  resp->user = mq_identity_user_to_pb(call, &u);
  return mq_identity_issue_pair(call, &u, NULL, &resp->tokens, err);
}

static mq_code_t acct_sign_in(mq_call_t *call, const Marquee__Identity__V1__SignInRequest *req,
                              Marquee__Identity__V1__AuthResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_email(err, "email", req->email);
  if (rc != MQ_OK) return rc;
  if (!req->password || !req->password[0] || strlen(req->password) > 512)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "password", "is required (at most 512 bytes)");
  char *key = mq_arena_alloc(a, strlen(req->email) + 1);
  mq_users_email_key(req->email, key, strlen(req->email) + 1);
  const char *acct_key = mq_identity_limit_key(call, "signin", key),
             *ip_key = mq_identity_limit_key(call, "signin-ip", mq_identity_client_address(call));
  if ((rc = mq_identity_over_limit(call, acct_key, 15 * MIN_MS, app->cfg->signin_failure_limit, true, err)) != MQ_OK)
    return rc;
  if ((rc = mq_identity_over_limit(call, ip_key, 15 * MIN_MS, app->cfg->signin_address_limit, false, err)) != MQ_OK)
    return rc;
  mq_user_t u;
  rc = mq_users_get_by_email(app->store, key, a, &u, err);
  if (rc == MQ_NOT_FOUND || (rc == MQ_OK && !u.password_hash)) { /* no account, or provider-only */
    mq_password_dummy_verify(req->password);                     /* same cost as a real check */
    mq_identity_count_attempt(call, acct_key);                   /* unknown e-mails lock like known ones */
    mq_identity_count_attempt(call, ip_key);
    return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, BAD_CREDENTIALS);
  }
  if (rc != MQ_OK) return rc;
  bool rehash = false;
  mq_error_t verr;
  if (mq_password_verify(req->password, u.password_hash, &rehash, &verr) != MQ_OK) {
    mq_identity_count_attempt(call, acct_key);
    mq_identity_count_attempt(call, ip_key);
    return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, BAD_CREDENTIALS);
  }
  if (u.status == MQ_USER_SUSPENDED) return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this account is suspended");
  if (rehash) { /* best effort: the sign-in succeeds either way */
    char hash[MQ_PASSWORD_HASH_MAX];
    mq_error_t herr;
    if (mq_password_hash(req->password, hash, sizeof hash, &herr) == MQ_OK) {
      bson_t set = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&set, "password_hash", hash);
      mq_identity_update_user(call, u.id, &set, NULL, &herr);
      bson_destroy(&set);
    }
  }
  resp->user = mq_identity_user_to_pb(call, &u);
  return mq_identity_issue_pair(call, &u, NULL, &resp->tokens, err);
}

/* ---- refresh and sign-out -------------------------------------------------------- */

static bool token_shape_ok(const char *t) {
  return mq_token_shape_ok(t, "mqr_");
}

static mq_code_t acct_refresh(mq_call_t *call, const Marquee__Identity__V1__RefreshTokenRequest *req,
                              Marquee__Identity__V1__TokenPair *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  if (!token_shape_ok(req->refresh_token))
    return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "not a valid refresh token");
  mq_session_t sess;
  mq_code_t rc = mq_sessions_lookup(app->store, req->refresh_token, &sess, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "not a valid refresh token");
  if (rc != MQ_OK) return rc;
  if (sess.expires_ms <= mq_now_unix_ms())
    return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "the refresh token expired; sign in again");
  bool revoked = false;
  if ((rc = mq_sessions_family_revoked(app->store, sess.family_id, &revoked, err)) != MQ_OK) return rc;
  if (revoked) return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "this session was ended; sign in again");
  mq_user_t u;
  rc = mq_users_get(app->store, sess.user_id, mq_call_arena(call), &u, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "the account no longer exists");
  if (rc != MQ_OK) return rc;
  if (u.status == MQ_USER_SUSPENDED) return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this account is suspended");
  if (sess.family_created_ms < u.sessions_revoked_ms)
    return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token", "this session was ended; sign in again");

  rc = mq_sessions_consume(app->store, req->refresh_token, err);
  if (rc == MQ_ALREADY_EXISTS) {
    /* a token exchanged twice: one of the holders is not the user */
    Marquee__Events__V1__RefreshTokenReuseDetected payload = MARQUEE__EVENTS__V1__REFRESH_TOKEN_REUSE_DETECTED__INIT;
    payload.user_id = u.id ? (char *)u.id : (char *)"";
    payload.family_id = sess.family_id;
    mq_event_t ev;
    user_event(&ev, call, "users.RefreshTokenReuseDetected", u.id);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFRESH_TOKEN_REUSE_DETECTED;
    ev.env.refresh_token_reuse_detected = &payload;
    if ((rc = mq_sessions_revoke_family(app->store, sess.family_id, "reuse_detected", &ev, 1, err)) != MQ_OK) return rc;
    return mq_error_set(err, MQ_UNAUTHENTICATED, "refresh_token",
                        "this refresh token was already used; the session was ended for safety; sign in again");
  }
  if (rc != MQ_OK) return rc;
  Marquee__Identity__V1__TokenPair *pair = NULL;
  if ((rc = mq_identity_issue_pair(call, &u, &sess, &pair, err)) != MQ_OK) return rc;
  *resp = *pair;
  return MQ_OK;
}

static mq_code_t acct_sign_out(mq_call_t *call, const Marquee__Identity__V1__SignOutRequest *req,
                               Marquee__Identity__V1__SignOutResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  if (!token_shape_ok(req->refresh_token))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "refresh_token", "not a refresh token");
  mq_session_t sess;
  mq_code_t rc = mq_sessions_lookup(app->store, req->refresh_token, &sess, err);
  if (rc == MQ_NOT_FOUND) return MQ_OK; /* nothing to end; say nothing about the token */
  if (rc != MQ_OK) return rc;
  return mq_sessions_revoke_family(app->store, sess.family_id, "sign_out", NULL, 0, err);
}

static mq_code_t acct_sign_out_everywhere(mq_call_t *call, const Marquee__Identity__V1__SignOutEverywhereRequest *req,
                                          Marquee__Identity__V1__SignOutResponse *resp, mq_error_t *err) {
  (void)req, (void)resp;
  const char *uid = mq_call_principal(call)->subject;
  Marquee__Events__V1__UserSignedOutEverywhere payload = MARQUEE__EVENTS__V1__USER_SIGNED_OUT_EVERYWHERE__INIT;
  payload.user_id = (char *)uid;
  mq_event_t ev;
  user_event(&ev, call, "users.UserSignedOutEverywhere", uid);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_SIGNED_OUT_EVERYWHERE;
  ev.env.user_signed_out_everywhere = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_DATE_TIME(&set, "sessions_revoked_at", mq_now_unix_ms());
  mq_code_t rc = mq_identity_update_user(call, uid, &set, &ev, err);
  bson_destroy(&set);
  return rc;
}

/* ---- profile ---------------------------------------------------------------------- */

static mq_code_t load_me(mq_call_t *call, mq_user_t *u, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_users_get(app->store, mq_call_principal(call)->subject, mq_call_arena(call), u, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, NULL, "the signed-in account no longer exists");
  return rc;
}

/* The warm path: the packed profile from the in-process cache (mq_cache.h;
 * invalidated by every user write here and by the users events of other
 * instances, bounded by MARQUEE_CACHE_TTL_MS), else MongoDB. */
static mq_code_t acct_get_me(mq_call_t *call, const Marquee__Identity__V1__GetMeRequest *req,
                             Marquee__Identity__V1__User *resp, mq_error_t *err) {
  (void)req;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  char key[80];
  snprintf(key, sizeof key, "u:%s", mq_call_principal(call)->subject);
  void *buf;
  size_t len;
  if (app->profiles && mq_cache_get(app->profiles, key, a, &buf, &len)) {
    mq_call_reply_packed(call, buf, len); /* the cached bytes are the reply */
    return MQ_OK;
  }
  if (mq_call_inline(call)) return MQ_PENDING; /* a miss reads MongoDB: on the worker pool */
  uint64_t ticket = app->profiles ? mq_cache_ticket(app->profiles, key) : 0;
  mq_user_t u;
  mq_code_t rc = load_me(call, &u, err);
  if (rc != MQ_OK) return rc;
  Marquee__Identity__V1__User *p = mq_identity_user_to_pb(call, &u);
  if (app->profiles) {
    size_t n = marquee__identity__v1__user__get_packed_size(p);
    uint8_t *packed = mq_arena_alloc(a, n ? n : 1);
    marquee__identity__v1__user__pack(p, packed);
    mq_cache_put(app->profiles, key, packed, n, ticket);
  }
  *resp = *p;
  return MQ_OK;
}

static mq_code_t acct_update_me(mq_call_t *call, const Marquee__Identity__V1__UpdateMeRequest *req,
                                Marquee__Identity__V1__User *resp, mq_error_t *err) {
  const Marquee__Identity__V1__User *in = req->user;
  size_t n_paths = req->update_mask ? req->update_mask->n_paths : 0;
  mq_error_collect(err); /* every bad field, not just the first */
  if (n_paths == 0)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field to update");
  else if (n_paths > 7)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "too many paths");
  if (!in) mq_error_set(err, MQ_INVALID_ARGUMENT, "user", "is required with the new values");
  bson_t set = BSON_INITIALIZER;
  for (size_t i = 0; in && n_paths <= 7 && i < n_paths; i++) {
    const char *path = req->update_mask->paths[i];
    if (!strcmp(path, "notifications")) {
      const Marquee__Identity__V1__NotificationPreferences *np = in->notifications;
      BSON_APPEND_BOOL(&set, "notifications.email_reminders", np && np->email_reminders);
      BSON_APPEND_BOOL(&set, "notifications.email_marketing", np && np->email_marketing);
      BSON_APPEND_BOOL(&set, "notifications.push", np && np->push);
      BSON_APPEND_BOOL(&set, "notifications.sms", np && np->sms);
      continue;
    }
    static const struct {
      const char *path;
      size_t off;
    } fields[] = {
        {"display_name", offsetof(Marquee__Identity__V1__User, display_name)},
        {"locale", offsetof(Marquee__Identity__V1__User, locale)},
        {"time_zone", offsetof(Marquee__Identity__V1__User, time_zone)},
        {"currency", offsetof(Marquee__Identity__V1__User, currency)},
        {"phone", offsetof(Marquee__Identity__V1__User, phone)},
        {"avatar_ref", offsetof(Marquee__Identity__V1__User, avatar_ref)},
    };
    size_t f = 0;
    while (f < sizeof fields / sizeof *fields && strcmp(fields[f].path, path)) f++;
    if (f == sizeof fields / sizeof *fields) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "cannot update '%.40s'", path);
      continue;
    }
    const char *v = *(char *const *)(const void *)((const char *)in + fields[f].off);
    char field[32];
    snprintf(field, sizeof field, "user.%s", path); /* named as the request names it */
    if (check_profile_attr(err, path, field, v) == MQ_OK)
      BSON_APPEND_UTF8(&set, path, v ? v : ""); /* path is one of our constant names */
  }
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) {
    const char *uid = mq_call_principal(call)->subject;
    Marquee__Events__V1__UserProfileUpdated payload = MARQUEE__EVENTS__V1__USER_PROFILE_UPDATED__INIT;
    payload.user_id = (char *)uid;
    payload.fields = req->update_mask->paths;
    payload.n_fields = req->update_mask->n_paths;
    mq_event_t ev;
    user_event(&ev, call, "users.UserProfileUpdated", uid);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_PROFILE_UPDATED;
    ev.env.user_profile_updated = &payload;
    rc = mq_identity_update_user(call, uid, &set, &ev, err);
  }
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  return acct_get_me(call, NULL, resp, err);
}

static mq_code_t acct_change_password(mq_call_t *call, const Marquee__Identity__V1__ChangePasswordRequest *req,
                                      Marquee__Identity__V1__ChangePasswordResponse *resp, mq_error_t *err) {
  mq_user_t u;
  mq_code_t rc = load_me(call, &u, err);
  if (rc != MQ_OK) return rc;
  bool rehash;
  mq_error_t verr;
  if (!u.password_hash) /* signed up through a provider: set one via the reset link */
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "current_password",
                        "this account has no password yet; set one with RequestPasswordReset");
  if (!req->current_password || mq_password_verify(req->current_password, u.password_hash, &rehash, &verr) != MQ_OK)
    return mq_error_set(err, MQ_UNAUTHENTICATED, "current_password", "the current password is wrong");
  if ((rc = mq_password_check_policy(err, "new_password", req->new_password, u.email, u.display_name)) != MQ_OK)
    return rc;
  char hash[MQ_PASSWORD_HASH_MAX];
  if ((rc = mq_password_hash(req->new_password, hash, sizeof hash, err)) != MQ_OK) return rc;
  Marquee__Events__V1__PasswordChanged payload = MARQUEE__EVENTS__V1__PASSWORD_CHANGED__INIT;
  payload.user_id = (char *)u.id;
  mq_event_t ev;
  user_event(&ev, call, "users.PasswordChanged", u.id);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_CHANGED;
  ev.env.password_changed = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&set, "password_hash", hash);
  BSON_APPEND_DATE_TIME(&set, "sessions_revoked_at", mq_now_unix_ms()); /* every other session ends */
  rc = mq_identity_update_user(call, u.id, &set, &ev, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  return mq_identity_issue_pair(call, &u, NULL, &resp->tokens, err);
}

/* ---- e-mail verification and password reset --------------------------------------- */

typedef struct {
  const mq_user_t *u;
  mq_call_t *call;
  Marquee__Events__V1__EmailVerificationRequested verify;
  Marquee__Events__V1__PasswordResetRequested reset;
} token_event_t;

static void fill_verify(mq_event_t *ev, const char *token, int64_t expires_ms, void *arg) {
  token_event_t *t = arg;
  marquee__events__v1__email_verification_requested__init(&t->verify);
  t->verify.user_id = (char *)t->u->id;
  t->verify.email = (char *)t->u->email;
  t->verify.sealed_token = mq_identity_seal(t->call, token);
  t->verify.expires_at = mq_pb_timestamp(mq_call_arena(t->call), expires_ms);
  t->verify.locale = (char *)t->u->locale;
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED;
  ev->env.email_verification_requested = &t->verify;
}

static void fill_reset(mq_event_t *ev, const char *token, int64_t expires_ms, void *arg) {
  token_event_t *t = arg;
  marquee__events__v1__password_reset_requested__init(&t->reset);
  t->reset.user_id = (char *)t->u->id;
  t->reset.email = (char *)t->u->email;
  t->reset.sealed_token = mq_identity_seal(t->call, token);
  t->reset.expires_at = mq_pb_timestamp(mq_call_arena(t->call), expires_ms);
  t->reset.locale = (char *)t->u->locale;
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED;
  ev->env.password_reset_requested = &t->reset;
}

static mq_code_t acct_request_email_verification(mq_call_t *call,
                                                 const Marquee__Identity__V1__RequestEmailVerificationRequest *req,
                                                 Marquee__Identity__V1__RequestEmailVerificationResponse *resp,
                                                 mq_error_t *err) {
  (void)req;
  mq_app_t *app = mq_call_app(call);
  mq_user_t u;
  mq_code_t rc = load_me(call, &u, err);
  if (rc != MQ_OK) return rc;
  if (u.email_verified) return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "the e-mail is already verified");
  char token[MQ_TOKEN_LEN + 1];
  mq_event_t ev;
  user_event(&ev, call, "users.EmailVerificationRequested", u.id);
  token_event_t t = {.u = &u, .call = call};
  int64_t ttl = app->cfg->email_token_ttl_s * 1000;
  rc = mq_account_tokens_issue(app->store, u.id, MQ_TOKEN_VERIFY_EMAIL, ttl, token, &ev, fill_verify, &t, err);
  explicit_bzero(token, sizeof token);
  if (rc != MQ_OK) return rc;
  resp->expires_at = mq_pb_timestamp(mq_call_arena(call), mq_now_unix_ms() + ttl);
  return MQ_OK;
}

static mq_code_t acct_verify_email(mq_call_t *call, const Marquee__Identity__V1__VerifyEmailRequest *req,
                                   Marquee__Identity__V1__VerifyEmailResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  char uid[40];
  mq_code_t rc = mq_account_tokens_consume(app->store, req->token, MQ_TOKEN_VERIFY_EMAIL, uid, err);
  if (rc != MQ_OK) return rc;
  Marquee__Events__V1__EmailVerified payload = MARQUEE__EVENTS__V1__EMAIL_VERIFIED__INIT;
  payload.user_id = uid;
  mq_event_t ev;
  user_event(&ev, call, "users.EmailVerified", uid);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFIED;
  ev.env.email_verified = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&set, "email_verified", true);
  rc = mq_identity_update_user(call, uid, &set, &ev, err);
  bson_destroy(&set);
  if (rc != MQ_OK) return rc;
  mq_user_t u;
  if ((rc = mq_users_get(app->store, uid, mq_call_arena(call), &u, err)) != MQ_OK) return rc;
  resp->user = mq_identity_user_to_pb(call, &u);
  return MQ_OK;
}

static mq_code_t acct_request_password_reset(mq_call_t *call,
                                             const Marquee__Identity__V1__RequestPasswordResetRequest *req,
                                             Marquee__Identity__V1__RequestPasswordResetResponse *resp,
                                             mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_email(err, "email", req->email);
  if (rc != MQ_OK) return rc;
  char *key = mq_arena_alloc(a, strlen(req->email) + 1);
  mq_users_email_key(req->email, key, strlen(req->email) + 1);
  const char *acct_key = mq_identity_limit_key(call, "reset", key),
             *ip_key = mq_identity_limit_key(call, "reset-ip", mq_identity_client_address(call));
  int64_t lim = app->cfg->reset_account_limit;
  if ((rc = mq_identity_over_limit(call, acct_key, 60 * MIN_MS, lim, false, err)) != MQ_OK) return rc;
  if ((rc = mq_identity_over_limit(call, ip_key, 60 * MIN_MS, 10 * lim, false, err)) != MQ_OK) return rc;
  mq_identity_count_attempt(call, acct_key);
  mq_identity_count_attempt(call, ip_key);
  mq_user_t u;
  rc = mq_users_get_by_email(app->store, key, a, &u, err);
  if (rc == MQ_NOT_FOUND) return MQ_OK; /* same answer: no account enumeration */
  if (rc != MQ_OK) return rc;
  if (u.status == MQ_USER_SUSPENDED) return MQ_OK; /* no reset for suspended accounts, and no tell */
  char token[MQ_TOKEN_LEN + 1];
  mq_event_t ev;
  user_event(&ev, call, "users.PasswordResetRequested", u.id);
  token_event_t t = {.u = &u, .call = call};
  rc = mq_account_tokens_issue(app->store, u.id, MQ_TOKEN_RESET_PASSWORD, app->cfg->reset_token_ttl_s * 1000, token,
                               &ev, fill_reset, &t, err);
  explicit_bzero(token, sizeof token);
  return rc;
}

static mq_code_t acct_reset_password(mq_call_t *call, const Marquee__Identity__V1__ResetPasswordRequest *req,
                                     Marquee__Identity__V1__ResetPasswordResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  /* the policy first, so a refused password does not burn the link */
  mq_code_t rc = mq_password_check_policy(err, "new_password", req->new_password, NULL, NULL);
  if (rc != MQ_OK) return rc;
  char uid[40];
  if ((rc = mq_account_tokens_consume(app->store, req->token, MQ_TOKEN_RESET_PASSWORD, uid, err)) != MQ_OK) return rc;
  char hash[MQ_PASSWORD_HASH_MAX];
  if ((rc = mq_password_hash(req->new_password, hash, sizeof hash, err)) != MQ_OK) return rc;
  Marquee__Events__V1__PasswordChanged payload = MARQUEE__EVENTS__V1__PASSWORD_CHANGED__INIT;
  payload.user_id = uid;
  mq_event_t ev;
  user_event(&ev, call, "users.PasswordChanged", uid);
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_CHANGED;
  ev.env.password_changed = &payload;
  bson_t set = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&set, "password_hash", hash);
  BSON_APPEND_DATE_TIME(&set, "sessions_revoked_at", mq_now_unix_ms());
  rc = mq_identity_update_user(call, uid, &set, &ev, err);
  bson_destroy(&set);
  explicit_bzero(hash, sizeof hash);
  return rc;
}

static const marquee__identity__v1__account_service_handlers_t handlers = {
    .sign_up = {acct_sign_up, MQ_POLICY_PUBLIC, 0},
    .sign_in = {acct_sign_in, MQ_POLICY_PUBLIC, 0},
    .refresh_token = {acct_refresh, MQ_POLICY_PUBLIC, 0},
    .sign_out = {acct_sign_out, MQ_POLICY_PUBLIC, 0},
    .sign_out_everywhere = {acct_sign_out_everywhere, MQ_POLICY_AUTHENTICATED, 0},
    .get_me = {acct_get_me, MQ_POLICY_AUTHENTICATED, MQ_RUN_TRY_INLINE},
    .update_me = {acct_update_me, MQ_POLICY_AUTHENTICATED, 0},
    .change_password = {acct_change_password, MQ_POLICY_AUTHENTICATED, 0},
    .request_email_verification = {acct_request_email_verification, MQ_POLICY_AUTHENTICATED, 0},
    .verify_email = {acct_verify_email, MQ_POLICY_PUBLIC, 0},
    .request_password_reset = {acct_request_password_reset, MQ_POLICY_PUBLIC, 0},
    .reset_password = {acct_reset_password, MQ_POLICY_PUBLIC, 0},
};

int account_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__identity__v1__account_service__mq_register(srv, &handlers);
}
