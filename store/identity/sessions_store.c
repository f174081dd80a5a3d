/*
 * sessions_store.c — see sessions_store.h. Queries: by _id only (token
 * hash, family id), plus user_id for listing a user's sessions later.
 */
#include "store/identity/sessions_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "store/mq_bson.h"

#define TOKENS "refresh_tokens"
#define USES "refresh_token_uses"

const mq_index_spec_t mq_sessions_indexes[] = {
    {TOKENS, "user", "{\"user_id\": 1}", false},
    {MQ_REVOCATIONS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_sessions_n_indexes = sizeof mq_sessions_indexes / sizeof mq_sessions_indexes[0];

mq_code_t mq_sessions_issue(mq_store_t *s, const char *user_id, const char *family_id, int64_t family_created_ms,
                            int64_t ttl_ms, char *token_out, mq_session_t *out, mq_error_t *err) {
  mq_session_t sess;
  memset(&sess, 0, sizeof sess);
  snprintf(sess.user_id, sizeof sess.user_id, "%s", user_id);
  sess.created_ms = mq_now_unix_ms();
  if (family_id) {
    snprintf(sess.family_id, sizeof sess.family_id, "%s", family_id);
    sess.family_created_ms = family_created_ms;
  } else {
    mq_uuid_v4(sess.family_id);
    sess.family_created_ms = sess.created_ms;
  }
  sess.expires_ms = sess.created_ms + ttl_ms;
  mq_token_new("mqr_", token_out);
  char hash[65];
  mq_token_hash(token_out, hash);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", hash);
  BSON_APPEND_UTF8(&doc, "user_id", sess.user_id);
  BSON_APPEND_UTF8(&doc, "family_id", sess.family_id);
  BSON_APPEND_DATE_TIME(&doc, "family_created_at", sess.family_created_ms);
  BSON_APPEND_DATE_TIME(&doc, "created_at", sess.created_ms);
  BSON_APPEND_DATE_TIME(&doc, "expires_at", sess.expires_ms);
  mq_code_t rc = mq_store_insert_decision(s, TOKENS, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_OK && out) *out = sess;
  return rc;
}

mq_code_t mq_sessions_lookup(mq_store_t *s, const char *token, mq_session_t *out, mq_error_t *err) {
  char hash[65];
  mq_token_hash(token, hash);
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", hash);
  mq_code_t rc = mq_store_find_one(s, TOKENS, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc != MQ_OK) return rc;
  bson_iter_t it;
  memset(out, 0, sizeof *out);
  if (bson_iter_init_find(&it, &doc, "user_id") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(out->user_id, sizeof out->user_id, "%s", bson_iter_utf8(&it, NULL));
  if (bson_iter_init_find(&it, &doc, "family_id") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(out->family_id, sizeof out->family_id, "%s", bson_iter_utf8(&it, NULL));
  out->family_created_ms = mq_bson_get_date_ms(&doc, "family_created_at", 0);
  out->created_ms = mq_bson_get_date_ms(&doc, "created_at", 0);
  out->expires_ms = mq_bson_get_date_ms(&doc, "expires_at", 0);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_sessions_consume(mq_store_t *s, const char *token, mq_error_t *err) {
  char hash[65];
  mq_token_hash(token, hash);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", hash);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  mq_code_t rc = mq_store_insert_decision(s, USES, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_sessions_revoke_family(mq_store_t *s, const char *family_id, const char *reason, const mq_event_t *evs,
                                    size_t n, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", family_id);
  BSON_APPEND_UTF8(&doc, "reason", reason);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  if (n) mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_REVOCATIONS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc == MQ_ALREADY_EXISTS ? MQ_OK : rc;
}

mq_code_t mq_sessions_family_revoked(mq_store_t *s, const char *family_id, bool *revoked, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", family_id);
  mq_code_t rc = mq_store_find_one(s, MQ_REVOCATIONS_COLLECTION, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  if (rc == MQ_OK) bson_destroy(&doc);
  *revoked = rc == MQ_OK;
  return rc == MQ_NOT_FOUND ? MQ_OK : rc;
}
