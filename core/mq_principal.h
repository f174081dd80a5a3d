/*
 * mq_principal.h — who is calling: the identity a verified access token
 * names, and the platform roles.
 *
 * The auth interceptor (server/) fills one per call from a verified JWT
 * (lib/mq_jwt.h); handlers read it through mq_call_principal(); stores
 * receive it as plain data (e.g. to record an actor). It lives on the
 * ground floor because all three layers speak of it and none of them owns
 * it.
 *
 * Invariants: `subject` is a user id, never an e-mail or a name (so it may
 * be logged); the role bits are stable on the wire and in tokens — add new
 * roles at new bits, never renumber.
 */
#ifndef MQ_PRINCIPAL_H
#define MQ_PRINCIPAL_H

#include <stdint.h>

/* Platform roles (bits are stable). */
enum {
  MQ_ROLE_ATTENDEE = 1u << 0,
  MQ_ROLE_ORGANIZER = 1u << 1,
  MQ_ROLE_ADMIN = 1u << 2,
};

typedef struct mq_principal {
  char subject[64];   /* user id; never an e-mail */
  uint32_t roles;     /* MQ_ROLE_* bits */
  int64_t expires_at; /* unix seconds */
  char token_id[48];  /* jti, for revocation and logs */
} mq_principal_t;

#endif
