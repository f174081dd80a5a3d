/*
 * identity.h — what the identity handlers (accounts.c, admin_users.c) share:
 * the one mapping of a stored account to the API message.
 */
#ifndef MQ_IDENTITY_H
#define MQ_IDENTITY_H

#include "marquee/identity/v1/identity.pb-c.h"
#include "mq_call.h"
#include "users_store.h"

/* A User message allocated in the call's arena; strings are borrowed from `u`. */
Marquee__Identity__V1__User *mq_identity_user_to_pb(mq_call_t *call, const mq_user_t *u);

#endif
