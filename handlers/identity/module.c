/*
 * module.c — the identity module: accounts, the admin's user management,
 * organizations and OAuth sign-in (one file per service beside this one),
 * the repositories they own, and what identity does on its own: reading
 * the sign-in providers at open, sweeping expired attempt counters and
 * abandoned OAuth flows every minute, and dropping a cached profile when a
 * user changes anywhere (marquee.users). See handlers/mq_module.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_module.h"
#include "store/identity/account_tokens_store.h"
#include "store/identity/auth_attempts_store.h"
#include "store/identity/oauth_store.h"
#include "store/identity/orgs_store.h"
#include "store/identity/sessions_store.h"
#include "store/identity/users_store.h"

#define SWEEP_EVERY_MS 60000
#define ATTEMPTS_KEPT_MS 86400000

void mq_app_user_changed(mq_app_t *app, const char *user_id) {
  if (!app->profiles || !user_id) return;
  char key[80];
  snprintf(key, sizeof key, "u:%s", user_id);
  mq_cache_invalidate(app->profiles, key);
}

static mq_code_t identity_open(mq_app_t *app, mq_error_t *err) {
  if (app->cfg->notify_keys[0]) {
    mq_code_t rc = mq_seal_keys_parse(app->cfg->notify_keys, false, "MARQUEE_NOTIFY_KEYS", &app->notify_keys, err);
    if (rc != MQ_OK) return rc;
  } else {
    mq_log(MQ_LOG_WARN, "identity.no_notify_key",
           "MARQUEE_NOTIFY_KEYS is empty: verification, password-reset and invitation events carry no link token, "
           "so no link can be delivered");
  }
  return mq_oauth_open(app->cfg, &app->oauth, err);
}

/* No TTL indexes (DESIGN.md §4): expire by sweeping. */
static void identity_tick(mq_app_t *app) {
  if (!mq_app_store_ready(app)) return;
  int64_t now = mq_now_unix_ms();
  if (now - app->identity_swept_ms <= SWEEP_EVERY_MS) return;
  app->identity_swept_ms = now;
  mq_error_t err;
  mq_attempts_sweep(app->store, now - ATTEMPTS_KEPT_MS, &err);
  mq_oauth_flows_sweep(app->store, now);
}

static void identity_on_event(mq_app_t *app, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  if (!strcmp(topic, "marquee.users")) mq_app_user_changed(app, ev->aggregate_id);
}

static void identity_close(mq_app_t *app) {
  mq_oauth_free(app->oauth);
  app->oauth = NULL;
  mq_seal_keys_free(app->notify_keys);
  app->notify_keys = NULL;
}

Marquee__Events__V1__SealedSecret *mq_identity_seal(mq_call_t *call, const char *token) {
  mq_app_t *app = mq_call_app(call);
  if (!app->notify_keys) return NULL;
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Events__V1__SealedSecret *s = mq_arena_alloc(a, sizeof *s);
  marquee__events__v1__sealed_secret__init(s);
  mq_error_t err;
  if (mq_seal(app->notify_keys, token, a, &s->key_id, &s->box.data, &s->box.len, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "identity.seal_failed", "%s: the event goes out without its link token", err.message);
    return NULL;
  }
  return s;
}

static const mq_service_row_t services[] = {
    {"marquee.identity.v1.AccountService", account_service_register, NULL},
    {"marquee.identity.v1.AdminService", admin_service_register, NULL},
    {"marquee.identity.v1.OrganizationService", organization_service_register, NULL},
    {"marquee.identity.v1.OAuthService", oauth_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_users_indexes, &mq_users_n_indexes},
    {mq_sessions_indexes, &mq_sessions_n_indexes},
    {mq_account_tokens_indexes, &mq_account_tokens_n_indexes},
    {mq_attempts_indexes, &mq_attempts_n_indexes},
    {mq_orgs_indexes, &mq_orgs_n_indexes},
    {mq_oauth_indexes, &mq_oauth_n_indexes},
};

const mq_module_t mq_identity_module = {
    .name = "identity",
    MQ_MODULE_TABLES(services, indexes),
    .open = identity_open,
    .tick = identity_tick,
    .on_event = identity_on_event,
    .close = identity_close,
};
