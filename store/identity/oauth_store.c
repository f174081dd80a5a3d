/*
 * oauth_store.c — see oauth_store.h. Queries: flows by _id (take) and by
 * expires_at (sweep); identities by _id and by user_id.
 */
#include "store/identity/oauth_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "store/mq_bson.h"

#define FLOWS "oauth_flows"
#define IDENTITIES "oauth_identities"
#define UNLINKS "oauth_unlinks"
#define MAX_IDENTITIES 32

const mq_index_spec_t mq_oauth_indexes[] = {
    {FLOWS, "expires", "{\"expires_at\": 1}", false},
    {IDENTITIES, "user", "{\"user_id\": 1}", false},
    {IDENTITIES, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {UNLINKS, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_oauth_n_indexes = sizeof mq_oauth_indexes / sizeof mq_oauth_indexes[0];

static void identity_id(char *out, size_t n, const char *provider, const char *subject) {
  snprintf(out, n, "%s:%s", provider, subject);
}

mq_code_t mq_oauth_flow_insert(mq_store_t *s, const mq_oauth_flow_t *f, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", f->state_hash);
  BSON_APPEND_UTF8(&doc, "provider", f->provider);
  BSON_APPEND_INT32(&doc, "intent", f->intent);
  if (f->user_id) BSON_APPEND_UTF8(&doc, "user_id", f->user_id);
  BSON_APPEND_UTF8(&doc, "nonce", f->nonce);
  BSON_APPEND_UTF8(&doc, "code_verifier", f->code_verifier);
  BSON_APPEND_UTF8(&doc, "redirect_uri", f->redirect_uri);
  BSON_APPEND_DATE_TIME(&doc, "created_at", f->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "expires_at", f->expires_ms);
  mq_code_t rc = mq_store_insert_decision(s, FLOWS, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) /* 256 random bits collided: treat as a store fault */
    return mq_error_set(err, MQ_INTERNAL, NULL, "duplicate OAuth state");
  return rc;
}

mq_code_t mq_oauth_flow_take(mq_store_t *s, const char *state_hash, mq_arena_t *a, mq_oauth_flow_t *out,
                             mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", state_hash);
  mq_code_t rc = mq_store_take_one(s, FLOWS, &filter, &doc, err);
  bson_destroy(&filter);
  if (rc == MQ_NOT_FOUND)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "state", "unknown or already used sign-in; start again");
  if (rc != MQ_OK) return rc;
  memset(out, 0, sizeof *out);
  out->state_hash = mq_bson_get_str(&doc, "_id", a);
  out->provider = mq_bson_get_str(&doc, "provider", a);
  out->intent = (int)mq_bson_get_i64(&doc, "intent", MQ_OAUTH_SIGN_IN);
  out->user_id = mq_bson_get_str(&doc, "user_id", a);
  out->nonce = mq_bson_get_str(&doc, "nonce", a);
  out->code_verifier = mq_bson_get_str(&doc, "code_verifier", a);
  out->redirect_uri = mq_bson_get_str(&doc, "redirect_uri", a);
  out->created_ms = mq_bson_get_date_ms(&doc, "created_at", 0);
  out->expires_ms = mq_bson_get_date_ms(&doc, "expires_at", 0);
  bson_destroy(&doc);
  if (!out->provider || !out->nonce || !out->code_verifier || !out->redirect_uri)
    return mq_error_set(err, MQ_INTERNAL, NULL, "malformed OAuth flow record");
  if (out->expires_ms <= mq_now_unix_ms())
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "state", "this sign-in has expired; start again");
  return MQ_OK;
}

int64_t mq_oauth_flows_sweep(mq_store_t *s, int64_t now_ms) {
  bson_t filter = BSON_INITIALIZER, lt;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "expires_at", &lt);
  BSON_APPEND_DATE_TIME(&lt, "$lt", now_ms);
  bson_append_document_end(&filter, &lt);
  int64_t n = 0;
  mq_error_t err;
  mq_code_t rc = mq_store_delete(s, FLOWS, &filter, true, &n, &err);
  bson_destroy(&filter);
  return rc == MQ_OK ? n : -1;
}

mq_code_t mq_oauth_identity_insert(mq_store_t *s, const mq_oauth_identity_t *id, const mq_event_t *ev,
                                   mq_error_t *err) {
  char key[320];
  identity_id(key, sizeof key, id->provider, id->subject);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", key);
  BSON_APPEND_UTF8(&doc, "provider", id->provider);
  BSON_APPEND_UTF8(&doc, "subject", id->subject);
  BSON_APPEND_UTF8(&doc, "user_id", id->user_id);
  BSON_APPEND_UTF8(&doc, "email", id->email ? id->email : "");
  BSON_APPEND_DATE_TIME(&doc, "linked_at", id->linked_ms);
  if (ev) mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, IDENTITIES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static void read_identity(const bson_t *doc, mq_arena_t *a, mq_oauth_identity_t *out) {
  out->provider = mq_bson_get_str(doc, "provider", a);
  out->subject = mq_bson_get_str(doc, "subject", a);
  out->user_id = mq_bson_get_str(doc, "user_id", a);
  out->email = mq_bson_get_str(doc, "email", a);
  out->linked_ms = mq_bson_get_date_ms(doc, "linked_at", 0);
}

mq_code_t mq_oauth_identity_get(mq_store_t *s, const char *provider, const char *subject, mq_arena_t *a,
                                mq_oauth_identity_t *out, mq_error_t *err) {
  char key[320];
  identity_id(key, sizeof key, provider, subject);
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", key);
  mq_code_t rc = mq_store_find_one(s, IDENTITIES, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc != MQ_OK) return rc;
  read_identity(&doc, a, out);
  bson_destroy(&doc);
  return out->user_id ? MQ_OK : mq_error_set(err, MQ_INTERNAL, NULL, "malformed identity record");
}

typedef struct {
  mq_arena_t *a;
  mq_oauth_identity_t *out;
  size_t *n;
} list_ctx_t;

static bool collect(const bson_t *doc, void *arg) {
  list_ctx_t *c = arg;
  read_identity(doc, c->a, &c->out[(*c->n)++]);
  return *c->n < MAX_IDENTITIES;
}

mq_code_t mq_oauth_identities_of(mq_store_t *s, const char *user_id, mq_arena_t *a, mq_oauth_identity_t **out,
                                 size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, sort;
  BSON_APPEND_UTF8(&filter, "user_id", user_id);
  BSON_APPEND_INT64(&opts, "limit", MAX_IDENTITIES);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(&opts, &proj);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(&opts, &sort);
  *out = mq_arena_alloc(a, MAX_IDENTITIES * sizeof **out);
  *n = 0;
  list_ctx_t ctx = {a, *out, n};
  mq_code_t rc = mq_store_find_each(s, IDENTITIES, &filter, &opts, collect, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_oauth_identity_unlink(mq_store_t *s, const mq_oauth_identity_t *id, const mq_event_t *ev,
                                   mq_error_t *err) {
  char rid[37], key[320];
  mq_uuid_v4(rid);
  identity_id(key, sizeof key, id->provider, id->subject);
  bson_t rec = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&rec, "_id", rid);
  BSON_APPEND_UTF8(&rec, "provider", id->provider);
  BSON_APPEND_UTF8(&rec, "subject", id->subject);
  BSON_APPEND_UTF8(&rec, "user_id", id->user_id);
  BSON_APPEND_DATE_TIME(&rec, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&rec, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, UNLINKS, &rec, err);
  bson_destroy(&rec);
  if (rc != MQ_OK) return rc;
  bson_t sel = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "_id", key);
  BSON_APPEND_UTF8(&sel, "user_id", id->user_id);
  rc = mq_store_delete(s, IDENTITIES, &sel, false, NULL, err);
  bson_destroy(&sel);
  return rc;
}
