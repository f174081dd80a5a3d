/*
 * identity.h — what the identity handlers share (the mapping of a stored
 * account to the API message), and what every later domain uses to
 * authorize by organization role (mq_org_require).
 */
#ifndef MQ_IDENTITY_H
#define MQ_IDENTITY_H

#include "marquee/identity/v1/identity.pb-c.h"
#include "mq_call.h"
#include "users_store.h"

/* A User message allocated in the call's arena; strings are borrowed from `u`. */
Marquee__Identity__V1__User *mq_identity_user_to_pb(mq_call_t *call, const mq_user_t *u);

/* For MQ_POLICY_RESOURCE rows of any service: the caller must be a member of
 * `org_id` whose role is `weakest_allowed` or stronger (MQ_ORG_OWNER <
 * MQ_ORG_MANAGER < MQ_ORG_CHECKIN; smaller is stronger). Platform admins pass
 * as owners. NOT_FOUND for non-members (an organization's existence is not
 * revealed to outsiders), PERMISSION_DENIED for a weaker role. On MQ_OK the
 * call is marked authorized and *role (optional) holds the caller's role. */
mq_code_t mq_org_require(mq_call_t *call, const char *org_id, int weakest_allowed, int *role, mq_error_t *err);

#endif
