/*
 * receipt_tips.c — the receipt number hints of payments_store.h
 * (`receipt_tips`): where the search for the next gapless number starts.
 */
#include <stdio.h>

#include "store/mq_bson.h"
#include "store/payments/payments_store.h"

#define RECEIPT_TIPS "receipt_tips"

mq_code_t mq_receipts_tip(mq_store_t *s, const char *org, int year, const char *kind, int64_t *seq, bool *found,
                          mq_error_t *err) {
  char id[200];
  snprintf(id, sizeof id, "%s:%d:%s", org, year, kind);
  bson_t doc;
  *seq = 0;
  *found = false;
  mq_code_t rc = mq_store_get_by_id(s, RECEIPT_TIPS, id, &doc, err);
  if (rc == MQ_NOT_FOUND) return MQ_OK;
  if (rc != MQ_OK) return rc;
  *seq = mq_bson_get_i64(&doc, "seq", 0);
  *found = true;
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_receipts_tip_raise(mq_store_t *s, const char *org, int year, const char *kind, int64_t seq,
                                mq_error_t *err) {
  char id[200];
  snprintf(id, sizeof id, "%s:%d:%s", org, year, kind);
  bson_value_t v = mq_bson_str_value(id);
  bson_t update = BSON_INITIALIZER, max;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &max);
  BSON_APPEND_INT64(&max, "seq", seq);
  bson_append_document_end(&update, &max);
  mq_code_t rc = mq_store_update_by_id(s, RECEIPT_TIPS, &v, &update, err);
  if (rc == MQ_NOT_FOUND) { /* the first: create it (a racing creator's is as good), then raise */
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", id);
    BSON_APPEND_INT64(&doc, "seq", seq);
    rc = mq_store_insert_decision(s, RECEIPT_TIPS, &doc, err);
    bson_destroy(&doc);
    if (rc == MQ_ALREADY_EXISTS) rc = mq_store_update_by_id(s, RECEIPT_TIPS, &v, &update, err);
  }
  bson_destroy(&update);
  return rc;
}
