/*
 * orgs_store.h — organizations and their memberships (identity issue).
 *
 *   organizations  {_id: org id, name, slug (unique index), created_by,
 *                   created_at, _outbox}
 *   memberships    {_id: "<org id>:<user id>", org_id, user_id, role,
 *                   added_by, added_at, _outbox}  — the _id makes a user a
 *                   member of an organization at most once (insert decides)
 *   membership_removals {_id, org_id, user_id, by, at, _outbox} — the record
 *                   (and event) of a removal, written before the delete
 *   org_invitations {_id: invitation id, org_id, email, email_key, role,
 *                   token_hash (unique), invited_by, created_at, expires_at,
 *                   pending_key: "<org id>:<email key>" (unique), _outbox} —
 *                   a pending invitation; the insert carries
 *                   OrganizationMemberInvited (with the token, for the
 *                   notifier). Accepting takes it (read + delete in one
 *                   findAndModify): a token works once however requests race.
 * Creating an organization is two inserts (organization, then its owner's
 * membership); if the second fails the first is deleted again, so no
 * ownerless organization is left behind. Roles: 1 owner, 2 manager,
 * 3 check-in staff (smaller is stronger). Read next: handlers/identity/organizations.c.
 */
#ifndef ORGS_STORE_H
#define ORGS_STORE_H

#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

enum { MQ_ORG_OWNER = 1, MQ_ORG_MANAGER = 2, MQ_ORG_CHECKIN = 3 };

typedef struct mq_org {
  const char *id, *name, *slug, *created_by;
  int64_t created_ms;
} mq_org_t;

typedef struct mq_membership {
  const char *org_id, *user_id, *added_by;
  int role;
  int64_t added_ms;
} mq_membership_t;

extern const mq_index_spec_t mq_orgs_indexes[];
extern const size_t mq_orgs_n_indexes;

/* ALREADY_EXISTS (field "slug") if the slug is taken. */
mq_code_t mq_orgs_create(mq_store_t *s, const mq_org_t *org, const mq_event_t *org_ev, const mq_event_t *owner_ev,
                         mq_error_t *err);
mq_code_t mq_orgs_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_org_t *out, mq_error_t *err);
/* The member's role in *role; NOT_FOUND if not a member. */
mq_code_t mq_orgs_role(mq_store_t *s, const char *org_id, const char *user_id, int *role, mq_error_t *err);
/* ALREADY_EXISTS if already a member. */
mq_code_t mq_orgs_add_member(mq_store_t *s, const mq_membership_t *m, const mq_event_t *ev, mq_error_t *err);
mq_code_t mq_orgs_remove_member(mq_store_t *s, const char *org_id, const char *user_id, const char *by,
                                const mq_event_t *ev, mq_error_t *err);
/* A page of a list: at most `limit` rows (0: none), oldest first, strictly
 * after (after_ms, after_id) when after_id is set. after_id is the other
 * side of the membership (the user for an organization's members, the
 * organization for a user's), or the invitation id. */
typedef struct mq_orgs_page {
  uint32_t limit;
  int64_t after_ms;
  const char *after_id;
} mq_orgs_page_t;

/* Memberships of an organization, or of a user (org_id NULL), into a[],
 * in the order they were added. */
mq_code_t mq_orgs_list_memberships(mq_store_t *s, const char *org_id, const char *user_id, const mq_orgs_page_t *pg,
                                   mq_arena_t *a, mq_membership_t **out, size_t *n, mq_error_t *err);
/* How many members of the organization hold exactly `role`. */
mq_code_t mq_orgs_count_role(mq_store_t *s, const char *org_id, int role, int64_t *count, mq_error_t *err);

typedef struct mq_invitation {
  const char *id, *org_id, *email, *email_key, *token_hash, *invited_by;
  int role;
  int64_t created_ms, expires_ms;
} mq_invitation_t;

/* ALREADY_EXISTS (field "email") if one to this address is pending and not
 * expired; an expired one is replaced. */
mq_code_t mq_orgs_invite(mq_store_t *s, const mq_invitation_t *inv, const mq_event_t *ev, mq_error_t *err);
/* Takes (reads and deletes) the invitation with this token hash.
 * FAILED_PRECONDITION if none or expired. */
mq_code_t mq_orgs_take_invitation(mq_store_t *s, const char *token_hash, mq_arena_t *a, mq_invitation_t *out,
                                  mq_error_t *err);
/* Puts a taken invitation back (the acceptance failed for a transient reason). */
mq_code_t mq_orgs_restore_invitation(mq_store_t *s, const mq_invitation_t *inv, mq_error_t *err);
/* Pending (unexpired) invitations, oldest first. */
mq_code_t mq_orgs_list_invitations(mq_store_t *s, const char *org_id, const mq_orgs_page_t *pg, mq_arena_t *a,
                                   mq_invitation_t **out, size_t *n, mq_error_t *err);
/* NOT_FOUND if no such invitation in this organization. */
mq_code_t mq_orgs_revoke_invitation(mq_store_t *s, const char *org_id, const char *id, mq_error_t *err);

#endif
