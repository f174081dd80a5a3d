/*
 * account_tokens_store.c — see account_tokens_store.h. Queries: by _id.
 */
#include "store/identity/account_tokens_store.h"

#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

#define USES "account_token_uses"
#define INVALID "this link is invalid, was already used or has expired; request a new one"

const mq_index_spec_t mq_account_tokens_indexes[] = {
    {MQ_ACCOUNT_TOKENS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_ACCOUNT_TOKENS_COLLECTION, "user", "{\"user_id\": 1}", false},
};
const size_t mq_account_tokens_n_indexes = sizeof mq_account_tokens_indexes / sizeof mq_account_tokens_indexes[0];

const char *mq_account_token_prefix(mq_account_token_purpose_t purpose) {
  return purpose == MQ_TOKEN_VERIFY_EMAIL ? "mqv_" : "mqp_";
}

mq_code_t mq_account_tokens_issue(mq_store_t *s, const char *user_id, mq_account_token_purpose_t purpose,
                                  int64_t ttl_ms, char *token, mq_event_t *ev,
                                  void (*fill)(mq_event_t *ev, const char *token, int64_t expires_ms, void *arg),
                                  void *arg, mq_error_t *err) {
  mq_token_new(mq_account_token_prefix(purpose), token);
  char hash[65];
  mq_token_hash(token, hash);
  int64_t now = mq_now_unix_ms();
  fill(ev, token, now + ttl_ms, arg);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", hash);
  BSON_APPEND_UTF8(&doc, "user_id", user_id);
  BSON_APPEND_INT32(&doc, "purpose", (int32_t)purpose);
  BSON_APPEND_DATE_TIME(&doc, "created_at", now);
  BSON_APPEND_DATE_TIME(&doc, "expires_at", now + ttl_ms);
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_ACCOUNT_TOKENS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_account_tokens_consume(mq_store_t *s, const char *token, mq_account_token_purpose_t purpose,
                                    char user_id_out[40], mq_error_t *err) {
  if (!mq_token_shape_ok(token, mq_account_token_prefix(purpose)))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", INVALID);
  char hash[65];
  mq_token_hash(token, hash);
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_UTF8(&filter, "_id", hash);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, MQ_ACCOUNT_TOKENS_COLLECTION, &filter, &opts, &doc, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", INVALID);
  if (rc != MQ_OK) return rc;
  bool valid =
      mq_bson_get_i64(&doc, "purpose", 0) == purpose && mq_bson_get_date_ms(&doc, "expires_at", 0) > mq_now_unix_ms();
  bson_iter_t it;
  user_id_out[0] = '\0';
  if (bson_iter_init_find(&it, &doc, "user_id") && BSON_ITER_HOLDS_UTF8(&it))
    snprintf(user_id_out, 40, "%s", bson_iter_utf8(&it, NULL));
  bson_destroy(&doc);
  if (!valid || !user_id_out[0]) return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", INVALID);
  bson_t use = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&use, "_id", hash);
  BSON_APPEND_DATE_TIME(&use, "at", mq_now_unix_ms());
  rc = mq_store_insert_decision(s, USES, &use, err);
  bson_destroy(&use);
  if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_FAILED_PRECONDITION, "token", INVALID);
  return rc;
}
