/*
 * identity.h — what the identity handlers share (the mapping of a stored
 * account to the API message), and what every later domain uses to
 * authorize by organization role (mq_org_require).
 */
#ifndef MQ_IDENTITY_H
#define MQ_IDENTITY_H

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "handlers/mq_route.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.pb-c.h"
#include "store/identity/sessions_store.h"
#include "store/identity/users_store.h"

/* A User message allocated in the call's arena; strings are borrowed from `u`. */
Marquee__Identity__V1__User *mq_identity_user_to_pb(mq_call_t *call, const mq_user_t *u);

/* For MQ_POLICY_RESOURCE rows of any service: the caller must be a member of
 * `org_id` whose role is `weakest_allowed` or stronger (MQ_ORG_OWNER <
 * MQ_ORG_MANAGER < MQ_ORG_CHECKIN; smaller is stronger). Platform admins pass
 * as owners. NOT_FOUND for non-members (an organization's existence is not
 * revealed to outsiders), PERMISSION_DENIED for a weaker role. On MQ_OK the
 * call is marked authorized and *role (optional) holds the caller's role. */
/* The caller of a side-port route (tickets, receipts): its
 * "Authorization: Bearer <access token>" verified as the gRPC interceptor
 * verifies the token; false when absent or not valid (answer 401). */
bool mq_route_bearer(mq_app_t *app, const mq_http_response_t *r, mq_principal_t *who);
mq_code_t mq_org_require(mq_call_t *call, const char *org_id, int weakest_allowed, int *role, mq_error_t *err);

/* Shared by the sign-in paths (accounts.c, oauth.c). */
/* A new access token plus a refresh token in `family` (NULL: a new sign-in). */
mq_code_t mq_identity_issue_pair(mq_call_t *call, const mq_user_t *u, const mq_session_t *family,
                                 Marquee__Identity__V1__TokenPair **out, mq_error_t *err);
/* The client's address (peer, or x-forwarded-for when trusted). */
const char *mq_identity_client_address(mq_call_t *call);
/* "<kind>:<subject>" in the call's arena: the key of an abuse counter. */
const char *mq_identity_limit_key(mq_call_t *call, const char *kind, const char *subject);
/* RATE_LIMITED with a retry hint when `key` had `limit` attempts in the window. */
mq_code_t mq_identity_over_limit(mq_call_t *call, const char *key, int64_t window_ms, int64_t limit, bool progressive,
                                 mq_error_t *err);
void mq_identity_count_attempt(mq_call_t *call, const char *key);
/* Every change of a user document: the update with its event (NULL: none),
 * the profile cache's invalidation, and the relay's wake-up. */
mq_code_t mq_identity_update_user(mq_call_t *call, const char *user_id, const bson_t *set, const mq_event_t *ev,
                                  mq_error_t *err);

/* ---- the identity module (module.c) ------------------------------------ */
int account_service_register(mq_app_t *app, mq_server_t *srv);
int admin_service_register(mq_app_t *app, mq_server_t *srv);
int organization_service_register(mq_app_t *app, mq_server_t *srv);
int oauth_service_register(mq_app_t *app, mq_server_t *srv);
/* Reads MARQUEE_OAUTH_PROVIDERS (INVALID_ARGUMENT naming it on a bad file). */
mq_code_t mq_oauth_open(const mq_config_t *cfg, mq_oauth_t **out, mq_error_t *err);
void mq_oauth_free(mq_oauth_t *o);
/* After a change of a user document (here, or heard from another instance):
 * drops the cached profile. */
void mq_app_user_changed(mq_app_t *app, const char *user_id);
/* `token` sealed to the notifier (lib/mq_seal.h) for an event, in the call's
 * arena; NULL when no MARQUEE_NOTIFY_KEYS is configured (or, logged, if
 * sealing failed). A link token goes on the bus this way or not at all. */
Marquee__Events__V1__SealedSecret *mq_identity_seal(mq_call_t *call, const char *token);

#endif
