/*
 * fixtures.h — catalog set-up shared by integration tests: an organization,
 * a venue, and an event with ticket types, made through the real RPCs (a
 * failure fails the calling test through cmocka). Include after cmocka.h.
 */
#ifndef MQ_TEST_FIXTURES_H
#define MQ_TEST_FIXTURES_H

#include <stdbool.h>
#include <stdint.h>

#include "clients/mq_client.h"
#include "marquee/identity/v1/identity.pb-c.h"

#define MQ_FX_MAX_TT 4

typedef struct mq_fx_tt {
  int64_t price_minor; /* 0: free */
  int64_t capacity;
  uint32_t max_per_order;   /* 0: the default (10) */
  uint32_t max_per_user;    /* 0: none */
  const char *access_code;  /* hidden type with this code; NULL: public */
  int64_t sales_end_in_s;   /* > 0: sales end this many seconds from now */
  int64_t sales_start_in_s; /* > 0: sales start this many seconds from now */
} mq_fx_tt_t;

typedef struct mq_fx_event_opts {
  const char *currency; /* "EUR" when NULL */
  int64_t starts_in_s;  /* 30 days when 0 */
  int64_t capacity;     /* event-wide; 0: none */
  bool draft;           /* leave it unpublished */
  bool cancel_disabled;
  uint32_t cancel_cutoff_hours;
  mq_fx_tt_t tt[MQ_FX_MAX_TT];
  int n_tt;
  const char *venue_id; /* in person at this venue; NULL: online */
  const char *title;    /* "Fixture Event" when NULL */
  const char *category_id;
  const char *description;
} mq_fx_event_opts_t;

typedef struct mq_fx_event {
  char event_id[40];
  char tt[MQ_FX_MAX_TT][40];
} mq_fx_event_t;

/* Signs up a user named `tag` with a unique address (into email[en]) and
 * `password`; its id into uid[n]. Returns its access token (caller frees),
 * or NULL when SignUp fails. */
char *mq_fx_user(mq_client_t *c, const char *tag, const char *password, char *uid, size_t n, char *email, size_t en);
/* An organization owned by the token's subject; slug "<prefix>-<pid>-<n>". */
void mq_fx_org(mq_client_t *c, const char *token, const char *slug_prefix, char out[40]);
/* A venue of `org` in `city`, `region` ("" for none), `country`, time zone `tz`. */
void mq_fx_venue(mq_client_t *c, const char *token, const char *org, const char *city, const char *region,
                 const char *country, const char *tz, char out[40]);
/* The same with a name and coordinates. */
void mq_fx_venue_at(mq_client_t *c, const char *token, const char *org, const char *name, const char *city,
                    const char *country, const char *tz, double lat, double lng, char out[40]);
/* An event of `org` (online unless o->venue_id), its ticket types, published unless draft. */
void mq_fx_event(mq_client_t *c, const char *token, const char *org, const mq_fx_event_opts_t *o, mq_fx_event_t *out);

/* `inviter` invites `email` into `org` as `role`; the invitation's id into
 * invitation_id. Fails the test otherwise. */
void mq_fx_invite(mq_client_t *c, const char *inviter, const char *org, const char *email,
                  Marquee__Identity__V1__MemberRole role, char invitation_id[40]);
/* Invites `email` into `org` with `role` as `inviter`, then accepts as
 * `invitee` with the token the notifier would e-mail (read from the
 * invitation's event in db's audit log); fails the test otherwise. */
void mq_fx_add_member(mq_client_t *c, const char *db, const char *inviter, const char *org, const char *email,
                      Marquee__Identity__V1__MemberRole role, const char *invitee);

#endif
