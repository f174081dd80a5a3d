/*
 * payments_store.c — see payments_store.h. Queries: payments by _id, by
 * (gateway_ref, gateway), by (user_id, created_at), by (event_id,
 * created_at) and by (state, deadline); decisions and webhooks by _id;
 * refunds by payment_id.
 */
#include "store/payments/payments_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_payments_indexes[] = {
    /* gateway_ref first: its values are unique in practice, while a gateway has many payments (the
     * local store indexes the first key only; ARCHITECTURE.md "The local store") */
    {MQ_PAYMENTS_COLLECTION, "ref_gateway", "{\"gateway_ref\": 1, \"gateway\": 1}", false},
    {MQ_PAYMENTS_COLLECTION, "user_created", "{\"user_id\": 1, \"created_at\": -1}", false},
    {MQ_PAYMENTS_COLLECTION, "event_created", "{\"event_id\": 1, \"created_at\": -1}", false},
    {MQ_PAYMENTS_COLLECTION, "state_deadline", "{\"state\": 1, \"deadline\": 1}", false},
    {MQ_PAYMENTS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_PAYMENT_DECISIONS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_REFUNDS_COLLECTION, "payment_seq", "{\"payment_id\": 1, \"sequence\": 1}", false},
    {MQ_REFUNDS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_PAYMENT_SETTINGS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_RECEIPTS_COLLECTION, "subject", "{\"subject\": 1}", true},
    {MQ_RECEIPTS_COLLECTION, "org_year_kind_seq", "{\"organization_id\": 1, \"year\": 1, \"kind\": 1, \"seq\": -1}",
     false},
    {MQ_RECEIPTS_COLLECTION, "payment_kind", "{\"payment_id\": 1, \"kind\": 1, \"seq\": 1}", false},
};
const size_t mq_payments_n_indexes = sizeof mq_payments_indexes / sizeof *mq_payments_indexes;

static const char *const not_final[] = {MQ_PAY_PENDING, MQ_PAY_REQUIRES_ACTION, MQ_PAY_PROCESSING, MQ_PAY_FAILED};

bool mq_payment_state_final(const char *state) {
  for (size_t i = 0; i < sizeof not_final / sizeof *not_final; i++)
    if (!strcmp(state, not_final[i])) return false;
  return true;
}

static const char *nz(const char *s) {
  return s ? s : "";
}

static void history_append(bson_t *doc, const mq_payment_t *p) {
  bson_t arr, d;
  BSON_APPEND_ARRAY_BEGIN(doc, "history", &arr);
  for (size_t i = 0; i < p->n_history; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "state", nz(p->history[i].state));
    BSON_APPEND_UTF8(&d, "reason", nz(p->history[i].reason));
    BSON_APPEND_UTF8(&d, "source", nz(p->history[i].source));
    BSON_APPEND_DATE_TIME(&d, "at", p->history[i].at_ms);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(doc, &arr);
}

/* The fields mq_payments_update may change. */
static void mutable_fields(bson_t *doc, const mq_payment_t *p) {
  BSON_APPEND_UTF8(doc, "gateway", nz(p->gateway));
  BSON_APPEND_UTF8(doc, "gateway_ref", nz(p->gateway_ref));
  BSON_APPEND_UTF8(doc, "client_secret", nz(p->client_secret));
  BSON_APPEND_UTF8(doc, "instructions", nz(p->instructions));
  BSON_APPEND_UTF8(doc, "state", nz(p->state));
  BSON_APPEND_UTF8(doc, "failure_reason", nz(p->failure_reason));
  BSON_APPEND_UTF8(doc, "booking_id", nz(p->booking_id));
  BSON_APPEND_INT64(doc, "refunded_minor", p->refunded_minor);
  BSON_APPEND_DATE_TIME(doc, "deadline", p->deadline_ms);
  BSON_APPEND_DATE_TIME(doc, "updated_at", p->updated_ms);
  history_append(doc, p);
}

static void to_bson(bson_t *doc, const mq_payment_t *p) {
  BSON_APPEND_UTF8(doc, "_id", p->id);
  BSON_APPEND_UTF8(doc, "hold_id", p->hold_id);
  BSON_APPEND_UTF8(doc, "event_id", p->event_id);
  BSON_APPEND_UTF8(doc, "organization_id", p->organization_id);
  BSON_APPEND_UTF8(doc, "user_id", p->user_id);
  BSON_APPEND_UTF8(doc, "currency", p->currency);
  BSON_APPEND_INT64(doc, "amount_minor", p->amount_minor);
  BSON_APPEND_UTF8(doc, "request_hash", nz(p->request_hash));
  BSON_APPEND_DATE_TIME(doc, "created_at", p->created_ms);
  BSON_APPEND_INT64(doc, "version", p->version);
  mutable_fields(doc, p);
}

static void from_bson(const bson_t *doc, mq_arena_t *a, mq_payment_t *p) {
  memset(p, 0, sizeof *p);
  p->id = mq_bson_get_str(doc, "_id", a);
  p->hold_id = mq_bson_get_str(doc, "hold_id", a);
  p->event_id = mq_bson_get_str(doc, "event_id", a);
  p->organization_id = mq_bson_get_str(doc, "organization_id", a);
  p->user_id = mq_bson_get_str(doc, "user_id", a);
  p->currency = mq_bson_get_str(doc, "currency", a);
  p->amount_minor = mq_bson_get_i64(doc, "amount_minor", 0);
  p->request_hash = mq_bson_get_str(doc, "request_hash", a);
  p->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  p->version = mq_bson_get_i64(doc, "version", 0);
  p->gateway = mq_bson_get_str(doc, "gateway", a);
  p->gateway_ref = mq_bson_get_str(doc, "gateway_ref", a);
  p->client_secret = mq_bson_get_str(doc, "client_secret", a);
  p->instructions = mq_bson_get_str(doc, "instructions", a);
  p->state = mq_bson_get_str(doc, "state", a);
  p->failure_reason = mq_bson_get_str(doc, "failure_reason", a);
  p->booking_id = mq_bson_get_str(doc, "booking_id", a);
  p->refunded_minor = mq_bson_get_i64(doc, "refunded_minor", 0);
  p->deadline_ms = mq_bson_get_date_ms(doc, "deadline", 0);
  p->updated_ms = mq_bson_get_date_ms(doc, "updated_at", 0);
  size_t n;
  bson_t *steps = mq_bson_get_doc_array(doc, "history", a, &n);
  p->history = mq_arena_alloc(a, (n ? n : 1) * sizeof *p->history);
  for (size_t i = 0; steps && i < n; i++) {
    p->history[i].state = mq_bson_get_str(&steps[i], "state", a);
    p->history[i].reason = mq_bson_get_str(&steps[i], "reason", a);
    p->history[i].source = mq_bson_get_str(&steps[i], "source", a);
    p->history[i].at_ms = mq_bson_get_date_ms(&steps[i], "at", 0);
  }
  p->n_history = steps ? n : 0;
}

void mq_payment_step(mq_payment_t *p, mq_arena_t *a, const char *state, const char *reason, const char *source,
                     int64_t at_ms) {
  size_t keep = p->n_history < MQ_PAYMENT_HISTORY_MAX ? p->n_history : MQ_PAYMENT_HISTORY_MAX - 1;
  mq_payment_step_t *h = mq_arena_alloc(a, (keep + 1) * sizeof *h);
  if (keep) memcpy(h, p->history + (p->n_history - keep), keep * sizeof *h);
  h[keep] = (mq_payment_step_t){(char *)state, (char *)nz(reason), (char *)nz(source), at_ms};
  p->history = h;
  p->n_history = keep + 1;
  p->state = (char *)state;
  p->updated_ms = at_ms;
}

mq_code_t mq_payments_insert(mq_store_t *s, const mq_payment_t *p, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  to_bson(&doc, p);
  if (n) mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_PAYMENTS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_payments_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_payment_t *out, mq_error_t *err) {
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_PAYMENTS_COLLECTION, id, &doc, err);
  if (rc != MQ_OK) return rc;
  from_bson(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_payments_by_ref(mq_store_t *s, const char *gateway, const char *ref, mq_arena_t *a, mq_payment_t *out,
                             mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "gateway", gateway);
  BSON_APPEND_UTF8(&filter, "gateway_ref", ref);
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_one(s, MQ_PAYMENTS_COLLECTION, &filter, &opts, &doc, err);
  if (rc == MQ_OK) {
    from_bson(&doc, a, out);
    bson_destroy(&doc);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_payments_update(mq_store_t *s, mq_payment_t *p, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  mutable_fields(&set, p);
  BSON_APPEND_INT64(&set, "version", p->version + 1);
  bson_append_document_end(&update, &set);
  if (n) mq_outbox_append_update(&update, evs, n);
  BSON_APPEND_INT64(&also, "version", p->version);
  bson_value_t id = mq_bson_str_value(p->id);
  mq_code_t rc = mq_store_update_where(s, MQ_PAYMENTS_COLLECTION, &id, &also, &update, err);
  bson_destroy(&update);
  bson_destroy(&also);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_ABORTED, "payment_id", "the payment changed meanwhile");
  if (rc == MQ_OK) p->version++;
  return rc;
}

static void payment_row(const bson_t *doc, mq_arena_t *a, void *row) {
  from_bson(doc, a, row);
}

mq_code_t mq_payments_list(mq_store_t *s, const char *user_id, const char *event_id, const char *state,
                           const char *gateway, const mq_store_page_t *pg, mq_arena_t *a, mq_payment_t **out, size_t *n,
                           mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  if (user_id) BSON_APPEND_UTF8(&filter, "user_id", user_id);
  if (event_id) BSON_APPEND_UTF8(&filter, "event_id", event_id);
  if (state && *state) BSON_APPEND_UTF8(&filter, "state", state);
  if (gateway && *gateway) BSON_APPEND_UTF8(&filter, "gateway", gateway);
  mq_store_page_apply(&filter, &opts, pg);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_payment_t), payment_row, pg->limit);
  mq_code_t rc = mq_store_find_rows(s, MQ_PAYMENTS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

mq_code_t mq_payments_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_payment_t **out, size_t *n,
                          mq_error_t *err) {
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_payment_t), payment_row, limit);
  mq_code_t rc = MQ_OK;
  for (size_t i = 0; i < sizeof not_final / sizeof *not_final && rc == MQ_OK && rows.n < limit; i++) {
    bson_t filter = BSON_INITIALIZER, lt, opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "state", not_final[i]);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "deadline", &lt);
    BSON_APPEND_DATE_TIME(&lt, "$lt", now_ms);
    bson_append_document_end(&filter, &lt);
    BSON_APPEND_INT64(&opts, "limit", (int64_t)(limit - rows.n));
    mq_outbox_exclude(&opts);
    rc = mq_store_find_rows(s, MQ_PAYMENTS_COLLECTION, &filter, &opts, &rows, err);
    bson_destroy(&filter);
    bson_destroy(&opts);
  }
  *out = rows.v;
  *n = rows.n;
  return rc;
}

mq_code_t mq_payment_decide(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                            const char *reason, const mq_event_t *evs, size_t n, mq_error_t *err) {
  char key[400];
  snprintf(key, sizeof key, "%s:%s", id, kind);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", key);
  BSON_APPEND_UTF8(&doc, "payment_id", id);
  BSON_APPEND_UTF8(&doc, "kind", kind);
  BSON_APPEND_UTF8(&doc, "outcome", outcome);
  BSON_APPEND_UTF8(&doc, "actor", nz(actor));
  BSON_APPEND_UTF8(&doc, "reason", nz(reason));
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  if (n) mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_PAYMENT_DECISIONS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_payment_decision_get(mq_store_t *s, const char *id, const char *kind, mq_arena_t *a, char **outcome,
                                  char **reason, mq_error_t *err) {
  char key[400];
  snprintf(key, sizeof key, "%s:%s", id, kind);
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_PAYMENT_DECISIONS_COLLECTION, key, &doc, err);
  if (rc != MQ_OK) return rc;
  if (outcome) *outcome = mq_bson_get_str(&doc, "outcome", a);
  if (reason) *reason = mq_bson_get_str(&doc, "reason", a);
  bson_destroy(&doc);
  return MQ_OK;
}

static void refund_row(const bson_t *doc, mq_arena_t *a, void *row) {
  mq_refund_t *r = row;
  memset(r, 0, sizeof *r);
  r->id = mq_bson_get_str(doc, "_id", a);
  r->payment_id = mq_bson_get_str(doc, "payment_id", a);
  r->currency = mq_bson_get_str(doc, "currency", a);
  r->state = mq_bson_get_str(doc, "state", a);
  r->reason = mq_bson_get_str(doc, "reason", a);
  r->gateway_ref = mq_bson_get_str(doc, "gateway_ref", a);
  r->requested_by = mq_bson_get_str(doc, "requested_by", a);
  r->idempotency_key = mq_bson_get_str(doc, "idempotency_key", a);
  r->sequence = (uint32_t)mq_bson_get_i64(doc, "sequence", 0);
  r->amount_minor = mq_bson_get_i64(doc, "amount_minor", 0);
  r->total_after = mq_bson_get_i64(doc, "total_after", 0);
  r->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
}

mq_code_t mq_refunds_of(mq_store_t *s, const char *payment_id, mq_arena_t *a, mq_refund_t **out, size_t *n,
                        mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "payment_id", payment_id);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "sequence", 1);
  bson_append_document_end(&opts, &sort);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_refund_t), refund_row, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_REFUNDS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

mq_code_t mq_refund_insert(mq_store_t *s, const mq_refund_t *r, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", r->id);
  BSON_APPEND_UTF8(&doc, "payment_id", r->payment_id);
  BSON_APPEND_INT32(&doc, "sequence", (int32_t)r->sequence);
  BSON_APPEND_INT64(&doc, "amount_minor", r->amount_minor);
  BSON_APPEND_INT64(&doc, "total_after", r->total_after);
  BSON_APPEND_UTF8(&doc, "currency", r->currency);
  BSON_APPEND_UTF8(&doc, "state", r->state);
  BSON_APPEND_UTF8(&doc, "reason", nz(r->reason));
  BSON_APPEND_UTF8(&doc, "gateway_ref", nz(r->gateway_ref));
  BSON_APPEND_UTF8(&doc, "requested_by", nz(r->requested_by));
  BSON_APPEND_UTF8(&doc, "idempotency_key", nz(r->idempotency_key));
  BSON_APPEND_DATE_TIME(&doc, "created_at", r->created_ms);
  if (n) mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_REFUNDS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_refund_set_state(mq_store_t *s, const char *id, const char *state, const char *gateway_ref,
                              const char *reason, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_UTF8(&set, "state", state);
  if (gateway_ref) BSON_APPEND_UTF8(&set, "gateway_ref", gateway_ref);
  if (reason) BSON_APPEND_UTF8(&set, "reason", reason);
  bson_append_document_end(&update, &set);
  if (n) mq_outbox_append_update(&update, evs, n);
  bson_value_t v = mq_bson_str_value(id);
  mq_code_t rc = mq_store_update_by_id(s, MQ_REFUNDS_COLLECTION, &v, &update, err);
  bson_destroy(&update);
  return rc;
}

mq_code_t mq_payment_webhook_record(mq_store_t *s, const char *gateway, const char *event_id, const char *type,
                                    const char *payment_id, mq_error_t *err) {
  char key[400];
  snprintf(key, sizeof key, "%s:%s", gateway, event_id);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", key);
  BSON_APPEND_UTF8(&doc, "type", nz(type));
  BSON_APPEND_UTF8(&doc, "payment_id", nz(payment_id));
  BSON_APPEND_BOOL(&doc, "applied", false);
  BSON_APPEND_DATE_TIME(&doc, "received_at", mq_now_unix_ms());
  mq_code_t rc = mq_store_insert_decision(s, MQ_PAYMENT_WEBHOOKS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_payment_webhook_applied(mq_store_t *s, const char *gateway, const char *event_id, bool *applied, bool set,
                                     mq_error_t *err) {
  char key[400];
  snprintf(key, sizeof key, "%s:%s", gateway, event_id);
  if (set) {
    bson_t update = BSON_INITIALIZER, st;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &st);
    BSON_APPEND_BOOL(&st, "applied", true);
    bson_append_document_end(&update, &st);
    bson_value_t v = mq_bson_str_value(key);
    mq_code_t rc = mq_store_update_by_id(s, MQ_PAYMENT_WEBHOOKS_COLLECTION, &v, &update, err);
    bson_destroy(&update);
    if (applied) *applied = rc == MQ_OK;
    return rc;
  }
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_PAYMENT_WEBHOOKS_COLLECTION, key, &doc, err);
  if (rc != MQ_OK) return rc;
  if (applied) *applied = mq_bson_get_bool(&doc, "applied", false);
  bson_destroy(&doc);
  return MQ_OK;
}

/* ---- settings ---- */

static void settings_fields(bson_t *doc, const mq_pay_settings_t *p) {
  BSON_APPEND_UTF8(doc, "legal_name", nz(p->legal_name));
  BSON_APPEND_UTF8(doc, "tax_id", nz(p->tax_id));
  BSON_APPEND_UTF8(doc, "address", nz(p->address));
  BSON_APPEND_INT32(doc, "tax_display", p->tax_display);
  BSON_APPEND_INT64(doc, "fee_ppm", p->fee_ppm);
  BSON_APPEND_INT64(doc, "fee_per_ticket_minor", p->fee_per_ticket_minor);
  BSON_APPEND_UTF8(doc, "fee_currency", nz(p->fee_currency));
  BSON_APPEND_BOOL(doc, "fee_passed_on", p->fee_passed_on);
  BSON_APPEND_INT64(doc, "own_tax_ppm", p->own_tax_ppm);
  BSON_APPEND_UTF8(doc, "own_tax_name", nz(p->own_tax_name));
  BSON_APPEND_UTF8(doc, "home_country", nz(p->home_country));
  BSON_APPEND_UTF8(doc, "home_region", nz(p->home_region));
  mq_bson_append_str_array(doc, "gateways", (const char *const *)p->gateways, p->n_gateways);
  BSON_APPEND_DATE_TIME(doc, "updated_at", p->updated_ms);
}

mq_code_t mq_pay_settings_get(mq_store_t *s, const char *org_id, mq_arena_t *a, mq_pay_settings_t *out,
                              mq_error_t *err) {
  memset(out, 0, sizeof *out);
  out->organization_id = mq_arena_strdup(a, org_id);
  out->legal_name = out->tax_id = out->address = out->own_tax_name = out->home_country = out->home_region =
      out->fee_currency = (char *)"";
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_PAYMENT_SETTINGS_COLLECTION, org_id, &doc, err);
  if (rc == MQ_NOT_FOUND) return MQ_OK;
  if (rc != MQ_OK) return rc;
  out->legal_name = mq_bson_get_str(&doc, "legal_name", a);
  out->tax_id = mq_bson_get_str(&doc, "tax_id", a);
  out->address = mq_bson_get_str(&doc, "address", a);
  out->tax_display = (int)mq_bson_get_i64(&doc, "tax_display", 0);
  out->fee_ppm = mq_bson_get_i64(&doc, "fee_ppm", 0);
  out->fee_per_ticket_minor = mq_bson_get_i64(&doc, "fee_per_ticket_minor", 0);
  out->fee_currency = mq_bson_get_str(&doc, "fee_currency", a);
  out->fee_passed_on = mq_bson_get_bool(&doc, "fee_passed_on", false);
  out->own_tax_ppm = mq_bson_get_i64(&doc, "own_tax_ppm", 0);
  out->own_tax_name = mq_bson_get_str(&doc, "own_tax_name", a);
  out->home_country = mq_bson_get_str(&doc, "home_country", a);
  out->home_region = mq_bson_get_str(&doc, "home_region", a);
  out->gateways = mq_bson_get_str_array(&doc, "gateways", a, &out->n_gateways);
  out->version = mq_bson_get_i64(&doc, "version", 0);
  out->updated_ms = mq_bson_get_date_ms(&doc, "updated_at", 0);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_pay_settings_save(mq_store_t *s, mq_pay_settings_t *p, const mq_event_t *ev, mq_error_t *err) {
  mq_code_t rc;
  if (p->version == 0) {
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", p->organization_id);
    BSON_APPEND_INT64(&doc, "version", 1);
    settings_fields(&doc, p);
    if (ev) mq_outbox_append_insert(&doc, ev, 1);
    rc = mq_store_insert_decision(s, MQ_PAYMENT_SETTINGS_COLLECTION, &doc, err);
    bson_destroy(&doc);
    if (rc == MQ_ALREADY_EXISTS) return mq_error_set(err, MQ_ABORTED, "version", "the settings were saved meanwhile");
  } else {
    bson_t update = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    settings_fields(&set, p);
    BSON_APPEND_INT64(&set, "version", p->version + 1);
    bson_append_document_end(&update, &set);
    if (ev) mq_outbox_append_update(&update, ev, 1);
    BSON_APPEND_INT64(&also, "version", p->version);
    bson_value_t id = mq_bson_str_value(p->organization_id);
    rc = mq_store_update_where(s, MQ_PAYMENT_SETTINGS_COLLECTION, &id, &also, &update, err);
    bson_destroy(&update);
    bson_destroy(&also);
    if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_ABORTED, "version", "the settings were saved meanwhile");
  }
  if (rc == MQ_OK) p->version++;
  return rc;
}

/* ---- receipts ---- */

static void receipt_from(const bson_t *doc, mq_arena_t *a, mq_receipt_t *r) {
  memset(r, 0, sizeof *r);
  r->number = mq_bson_get_str(doc, "number", a);
  r->kind = mq_bson_get_str(doc, "kind", a);
  r->organization_id = mq_bson_get_str(doc, "organization_id", a);
  r->payment_id = mq_bson_get_str(doc, "payment_id", a);
  r->refund_id = mq_bson_get_str(doc, "refund_id", a);
  r->refers_to = mq_bson_get_str(doc, "refers_to", a);
  r->subject = mq_bson_get_str(doc, "subject", a);
  r->year = (int)mq_bson_get_i64(doc, "year", 0);
  r->seq = mq_bson_get_i64(doc, "seq", 0);
  r->issued_ms = mq_bson_get_date_ms(doc, "issued_at", 0);
  r->seller_name = mq_bson_get_str(doc, "seller_name", a);
  r->seller_tax_id = mq_bson_get_str(doc, "seller_tax_id", a);
  r->seller_address = mq_bson_get_str(doc, "seller_address", a);
  r->buyer_name = mq_bson_get_str(doc, "buyer_name", a);
  r->buyer_email = mq_bson_get_str(doc, "buyer_email", a);
  r->event_title = mq_bson_get_str(doc, "event_title", a);
  r->event_starts_ms = mq_bson_get_date_ms(doc, "event_starts_at", 0);
  r->currency = mq_bson_get_str(doc, "currency", a);
  r->payment_method = mq_bson_get_str(doc, "payment_method", a);
  r->total_minor = mq_bson_get_i64(doc, "total_minor", 0);
  mq_price_read(doc, r->total_minor, a, &r->price);
  size_t n;
  bson_t *lines = mq_bson_get_doc_array(doc, "lines", a, &n);
  r->lines = mq_arena_alloc(a, (n ? n : 1) * sizeof *r->lines);
  for (size_t i = 0; lines && i < n; i++) {
    r->lines[i].description = mq_bson_get_str(&lines[i], "description", a);
    r->lines[i].quantity = (uint32_t)mq_bson_get_i64(&lines[i], "quantity", 0);
    r->lines[i].unit_minor = mq_bson_get_i64(&lines[i], "unit_minor", 0);
    r->lines[i].amount_minor = mq_bson_get_i64(&lines[i], "amount_minor", 0);
  }
  r->n_lines = lines ? n : 0;
}

static void receipt_row(const bson_t *doc, mq_arena_t *a, void *row) {
  receipt_from(doc, a, row);
}

mq_code_t mq_receipt_by_subject(mq_store_t *s, const char *subject, mq_arena_t *a, mq_receipt_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "subject", subject);
  mq_outbox_exclude(&opts);
  mq_code_t rc = mq_store_find_one(s, MQ_RECEIPTS_COLLECTION, &filter, &opts, &doc, err);
  if (rc == MQ_OK) {
    receipt_from(&doc, a, out);
    bson_destroy(&doc);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_receipts_last_seq(mq_store_t *s, const char *org, int year, const char *kind, int64_t *seq,
                               mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj, doc;
  BSON_APPEND_UTF8(&filter, "organization_id", org);
  BSON_APPEND_INT32(&filter, "year", year);
  BSON_APPEND_UTF8(&filter, "kind", kind);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "seq", -1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "seq", 1);
  bson_append_document_end(&opts, &proj);
  *seq = 0;
  mq_code_t rc = mq_store_find_one(s, MQ_RECEIPTS_COLLECTION, &filter, &opts, &doc, err);
  if (rc == MQ_OK) {
    *seq = mq_bson_get_i64(&doc, "seq", 0);
    bson_destroy(&doc);
  } else if (rc == MQ_NOT_FOUND) {
    rc = MQ_OK;
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_receipt_insert(mq_store_t *s, const mq_receipt_t *r, mq_error_t *err) {
  char id[200];
  snprintf(id, sizeof id, "%s:%d:%s:%lld", r->organization_id, r->year, r->kind, (long long)r->seq);
  bson_t doc = BSON_INITIALIZER, arr, d;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "number", r->number);
  BSON_APPEND_UTF8(&doc, "kind", r->kind);
  BSON_APPEND_UTF8(&doc, "organization_id", r->organization_id);
  BSON_APPEND_UTF8(&doc, "payment_id", r->payment_id);
  BSON_APPEND_UTF8(&doc, "refund_id", nz(r->refund_id));
  BSON_APPEND_UTF8(&doc, "refers_to", nz(r->refers_to));
  BSON_APPEND_UTF8(&doc, "subject", r->subject);
  BSON_APPEND_INT32(&doc, "year", r->year);
  BSON_APPEND_INT64(&doc, "seq", r->seq);
  BSON_APPEND_DATE_TIME(&doc, "issued_at", r->issued_ms);
  BSON_APPEND_UTF8(&doc, "seller_name", nz(r->seller_name));
  BSON_APPEND_UTF8(&doc, "seller_tax_id", nz(r->seller_tax_id));
  BSON_APPEND_UTF8(&doc, "seller_address", nz(r->seller_address));
  BSON_APPEND_UTF8(&doc, "buyer_name", nz(r->buyer_name));
  BSON_APPEND_UTF8(&doc, "buyer_email", nz(r->buyer_email));
  BSON_APPEND_UTF8(&doc, "event_title", nz(r->event_title));
  BSON_APPEND_DATE_TIME(&doc, "event_starts_at", r->event_starts_ms);
  BSON_APPEND_UTF8(&doc, "currency", r->currency);
  BSON_APPEND_UTF8(&doc, "payment_method", nz(r->payment_method));
  BSON_APPEND_INT64(&doc, "total_minor", r->total_minor);
  mq_price_append(&doc, &r->price);
  BSON_APPEND_ARRAY_BEGIN(&doc, "lines", &arr);
  for (size_t i = 0; i < r->n_lines; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "description", nz(r->lines[i].description));
    BSON_APPEND_INT32(&d, "quantity", (int32_t)r->lines[i].quantity);
    BSON_APPEND_INT64(&d, "unit_minor", r->lines[i].unit_minor);
    BSON_APPEND_INT64(&d, "amount_minor", r->lines[i].amount_minor);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(&doc, &arr);
  mq_code_t rc = mq_store_insert_decision(s, MQ_RECEIPTS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_credit_notes_of(mq_store_t *s, const char *payment_id, mq_arena_t *a, mq_receipt_t **out, size_t *n,
                             mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "payment_id", payment_id);
  BSON_APPEND_UTF8(&filter, "kind", "credit_note");
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "seq", 1);
  bson_append_document_end(&opts, &sort);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_receipt_t), receipt_row, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_RECEIPTS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}
