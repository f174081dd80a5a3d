/*
 * orgs_store.c — see orgs_store.h. Queries: organizations by _id (and slug
 * via its unique index on insert); memberships by _id, by org_id, by user_id.
 */
#include "store/identity/orgs_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "store/mq_bson.h"

#define ORGS "organizations"
#define MEMBERS "memberships"
#define REMOVALS "membership_removals"
#define INVITES "org_invitations"

const mq_index_spec_t mq_orgs_indexes[] = {
    {ORGS, "slug_unique", "{\"slug\": 1}", true},
    {ORGS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MEMBERS, "org", "{\"org_id\": 1}", false},
    {MEMBERS, "user", "{\"user_id\": 1}", false},
    {MEMBERS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {REMOVALS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {INVITES, "token_unique", "{\"token_hash\": 1}", true},
    {INVITES, "pending_unique", "{\"pending_key\": 1}", true},
    {INVITES, "org", "{\"org_id\": 1}", false},
    {INVITES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_orgs_n_indexes = sizeof mq_orgs_indexes / sizeof mq_orgs_indexes[0];

static void member_id(char *out, size_t n, const char *org_id, const char *user_id) {
  snprintf(out, n, "%s:%s", org_id, user_id);
}

static mq_code_t insert_member(mq_store_t *s, const mq_membership_t *m, const mq_event_t *ev, mq_error_t *err) {
  char id[100];
  member_id(id, sizeof id, m->org_id, m->user_id);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "org_id", m->org_id);
  BSON_APPEND_UTF8(&doc, "user_id", m->user_id);
  BSON_APPEND_INT32(&doc, "role", m->role);
  BSON_APPEND_UTF8(&doc, "added_by", m->added_by);
  BSON_APPEND_DATE_TIME(&doc, "added_at", m->added_ms);
  if (ev) mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MEMBERS, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_orgs_create(mq_store_t *s, const mq_org_t *org, const mq_event_t *org_ev, const mq_event_t *owner_ev,
                         mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", org->id);
  BSON_APPEND_UTF8(&doc, "name", org->name);
  BSON_APPEND_UTF8(&doc, "slug", org->slug);
  BSON_APPEND_UTF8(&doc, "created_by", org->created_by);
  BSON_APPEND_DATE_TIME(&doc, "created_at", org->created_ms);
  mq_outbox_append_insert(&doc, org_ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, ORGS, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_ALREADY_EXISTS, "slug", "this slug is taken");
  if (rc != MQ_OK) return rc;
  mq_membership_t owner = {org->id, org->created_by, org->created_by, MQ_ORG_OWNER, org->created_ms};
  rc = insert_member(s, &owner, owner_ev, err);
  if (rc != MQ_OK) { /* undo: never leave an organization without its owner */
    mongoc_client_t *c = mq_store_acquire(s);
    mongoc_collection_t *coll = mq_store_collection(s, c, ORGS);
    bson_t sel = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sel, "_id", org->id);
    mongoc_collection_delete_one(coll, &sel, NULL, NULL, NULL);
    bson_destroy(&sel);
    mongoc_collection_destroy(coll);
    mq_store_release(s, c);
  }
  return rc;
}

mq_code_t mq_orgs_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_org_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  mq_code_t rc = mq_store_find_one(s, ORGS, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc != MQ_OK) return rc;
  out->id = mq_bson_get_str(&doc, "_id", a);
  out->name = mq_bson_get_str(&doc, "name", a);
  out->slug = mq_bson_get_str(&doc, "slug", a);
  out->created_by = mq_bson_get_str(&doc, "created_by", a);
  out->created_ms = mq_bson_get_date_ms(&doc, "created_at", 0);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_orgs_role(mq_store_t *s, const char *org_id, const char *user_id, int *role, mq_error_t *err) {
  char id[100];
  member_id(id, sizeof id, org_id, user_id);
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", id);
  mq_code_t rc = mq_store_find_one(s, MEMBERS, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc != MQ_OK) return rc;
  *role = (int)mq_bson_get_i64(&doc, "role", MQ_ORG_CHECKIN);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_orgs_add_member(mq_store_t *s, const mq_membership_t *m, const mq_event_t *ev, mq_error_t *err) {
  mq_code_t rc = insert_member(s, m, ev, err);
  if (rc == MQ_ALREADY_EXISTS) mq_error_set(err, MQ_ALREADY_EXISTS, "email", "already a member");
  return rc;
}

mq_code_t mq_orgs_remove_member(mq_store_t *s, const char *org_id, const char *user_id, const char *by,
                                const mq_event_t *ev, mq_error_t *err) {
  char rid[37], id[100];
  mq_uuid_v4(rid);
  member_id(id, sizeof id, org_id, user_id);
  bson_t rec = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&rec, "_id", rid);
  BSON_APPEND_UTF8(&rec, "org_id", org_id);
  BSON_APPEND_UTF8(&rec, "user_id", user_id);
  BSON_APPEND_UTF8(&rec, "by", by);
  BSON_APPEND_DATE_TIME(&rec, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&rec, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, REMOVALS, &rec, err);
  bson_destroy(&rec);
  if (rc != MQ_OK) return rc;
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, MEMBERS);
  bson_t sel = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "_id", id);
  bson_error_t berr;
  if (!mongoc_collection_delete_one(coll, &sel, NULL, NULL, &berr)) rc = mq_store_error(&berr, MEMBERS, err);
  bson_destroy(&sel);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

static void member_row(const bson_t *doc, mq_arena_t *a, void *elem) {
  mq_membership_t *m = elem;
  m->org_id = mq_bson_get_str(doc, "org_id", a);
  m->user_id = mq_bson_get_str(doc, "user_id", a);
  m->added_by = mq_bson_get_str(doc, "added_by", a);
  m->role = (int)mq_bson_get_i64(doc, "role", MQ_ORG_CHECKIN);
  m->added_ms = mq_bson_get_date_ms(doc, "added_at", 0);
}

/* One page of find(filter) in `order`, into *out (the filter is consumed). */
static mq_code_t list_page(mq_store_t *s, const char *collection, bson_t *filter, mq_store_page_t *order,
                           const mq_orgs_page_t *pg, size_t elem_size, mq_store_conv_fn conv, mq_arena_t *a, void **out,
                           size_t *n, mq_error_t *err) {
  bson_t opts = BSON_INITIALIZER;
  order->limit = pg->limit;
  order->has_cursor = pg->after_id != NULL;
  order->after_ms = pg->after_ms;
  mq_store_page_apply(filter, &opts, order);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, elem_size, conv, pg->limit);
  mq_code_t rc = pg->limit ? mq_store_find_rows(s, collection, filter, &opts, &rows, err) : MQ_OK;
  bson_destroy(filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

mq_code_t mq_orgs_list_memberships(mq_store_t *s, const char *org_id, const char *user_id, const mq_orgs_page_t *pg,
                                   mq_arena_t *a, mq_membership_t **out, size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  char after[100] = "";
  if (org_id) {
    BSON_APPEND_UTF8(&filter, "org_id", org_id);
    if (pg->after_id) member_id(after, sizeof after, org_id, pg->after_id);
  } else {
    BSON_APPEND_UTF8(&filter, "user_id", user_id);
    if (pg->after_id) member_id(after, sizeof after, pg->after_id, user_id);
  }
  mq_store_page_t order = {.key = "added_at", .after_id = after};
  return list_page(s, MEMBERS, &filter, &order, pg, sizeof **out, member_row, a, (void **)out, n, err);
}

mq_code_t mq_orgs_count_role(mq_store_t *s, const char *org_id, int role, int64_t *count, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "org_id", org_id);
  BSON_APPEND_INT32(&filter, "role", role);
  mq_code_t rc = mq_store_count(s, MEMBERS, &filter, count, err);
  bson_destroy(&filter);
  return rc;
}

/* ---- invitations ----------------------------------------------------------------- */

static void invitation_doc(bson_t *doc, const mq_invitation_t *inv) {
  char pending[400];
  snprintf(pending, sizeof pending, "%s:%s", inv->org_id, inv->email_key);
  BSON_APPEND_UTF8(doc, "_id", inv->id);
  BSON_APPEND_UTF8(doc, "org_id", inv->org_id);
  BSON_APPEND_UTF8(doc, "email", inv->email);
  BSON_APPEND_UTF8(doc, "email_key", inv->email_key);
  BSON_APPEND_INT32(doc, "role", inv->role);
  BSON_APPEND_UTF8(doc, "token_hash", inv->token_hash);
  BSON_APPEND_UTF8(doc, "invited_by", inv->invited_by);
  BSON_APPEND_DATE_TIME(doc, "created_at", inv->created_ms);
  BSON_APPEND_DATE_TIME(doc, "expires_at", inv->expires_ms);
  BSON_APPEND_UTF8(doc, "pending_key", pending);
}

static void read_invitation(const bson_t *doc, mq_arena_t *a, mq_invitation_t *out) {
  out->id = mq_bson_get_str(doc, "_id", a);
  out->org_id = mq_bson_get_str(doc, "org_id", a);
  out->email = mq_bson_get_str(doc, "email", a);
  out->email_key = mq_bson_get_str(doc, "email_key", a);
  out->token_hash = mq_bson_get_str(doc, "token_hash", a);
  out->invited_by = mq_bson_get_str(doc, "invited_by", a);
  out->role = (int)mq_bson_get_i64(doc, "role", MQ_ORG_CHECKIN);
  out->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  out->expires_ms = mq_bson_get_date_ms(doc, "expires_at", 0);
}

mq_code_t mq_orgs_invite(mq_store_t *s, const mq_invitation_t *inv, const mq_event_t *ev, mq_error_t *err) {
  for (int attempt = 0; attempt < 2; attempt++) {
    bson_t doc = BSON_INITIALIZER;
    invitation_doc(&doc, inv);
    mq_outbox_append_insert(&doc, ev, 1);
    mq_code_t rc = mq_store_insert_decision(s, INVITES, &doc, err);
    bson_destroy(&doc);
    if (rc != MQ_ALREADY_EXISTS) return rc;
    /* pending for this address: replace it only if it has expired */
    char pending[400];
    snprintf(pending, sizeof pending, "%s:%s", inv->org_id, inv->email_key);
    bson_t filter = BSON_INITIALIZER, lt;
    BSON_APPEND_UTF8(&filter, "pending_key", pending);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "expires_at", &lt);
    BSON_APPEND_DATE_TIME(&lt, "$lte", mq_now_unix_ms());
    bson_append_document_end(&filter, &lt);
    int64_t n = 0;
    rc = mq_store_delete(s, INVITES, &filter, false, &n, err);
    bson_destroy(&filter);
    if (rc != MQ_OK) return rc;
    if (n == 0) break;
  }
  return mq_error_set(err, MQ_ALREADY_EXISTS, "email", "an invitation to this address is pending; revoke it first");
}

mq_code_t mq_orgs_take_invitation(mq_store_t *s, const char *token_hash, mq_arena_t *a, mq_invitation_t *out,
                                  mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "token_hash", token_hash);
  mq_code_t rc = mq_store_take_one(s, INVITES, &filter, &doc, err);
  bson_destroy(&filter);
  if (rc == MQ_NOT_FOUND)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", "this invitation was used, revoked or never existed");
  if (rc != MQ_OK) return rc;
  read_invitation(&doc, a, out);
  bson_destroy(&doc);
  if (out->expires_ms <= mq_now_unix_ms())
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", "this invitation has expired; ask for a new one");
  return MQ_OK;
}

mq_code_t mq_orgs_restore_invitation(mq_store_t *s, const mq_invitation_t *inv, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  invitation_doc(&doc, inv);
  mq_code_t rc = mq_store_insert_decision(s, INVITES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void invitation_row(const bson_t *doc, mq_arena_t *a, void *elem) {
  read_invitation(doc, a, elem);
}

mq_code_t mq_orgs_list_invitations(mq_store_t *s, const char *org_id, const mq_orgs_page_t *pg, mq_arena_t *a,
                                   mq_invitation_t **out, size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, gt;
  BSON_APPEND_UTF8(&filter, "org_id", org_id);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "expires_at", &gt);
  BSON_APPEND_DATE_TIME(&gt, "$gt", mq_now_unix_ms());
  bson_append_document_end(&filter, &gt);
  mq_store_page_t order = {.key = "created_at", .after_id = pg->after_id};
  return list_page(s, INVITES, &filter, &order, pg, sizeof **out, invitation_row, a, (void **)out, n, err);
}

mq_code_t mq_orgs_revoke_invitation(mq_store_t *s, const char *org_id, const char *id, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", id);
  BSON_APPEND_UTF8(&filter, "org_id", org_id);
  int64_t n = 0;
  mq_code_t rc = mq_store_delete(s, INVITES, &filter, false, &n, err);
  bson_destroy(&filter);
  if (rc == MQ_OK && n == 0) return mq_error_set(err, MQ_NOT_FOUND, "invitation_id", "no such pending invitation");
  return rc;
}
