/*
 * payments_store.h — the payments repository: payments, their decision
 * records, the refund ledger, and the record of each gateway webhook event.
 *
 * Collections and their invariants:
 *   payments           one document per payment; _id is derived from the
 *                      hold's id, so one hold has at most one payment.
 *                      Mutable fields change only through
 *                      mq_payments_update, which checks `version` (optimistic
 *                      concurrency: a lost race is MQ_ABORTED, re-read and
 *                      retry) and may carry events in the same write.
 *   payment_decisions  insert-only records "<payment>:<kind>" (DESIGN.md §4):
 *                      the outcome of a payment (kind "outcome": succeeded or
 *                      cancelled) and an idempotency key's binding (kind
 *                      "key:<user>:<key>"). A terminal event rides in its
 *                      decision, so it is published exactly once.
 *   refunds            the ledger: _id "<payment>:<n>" for the n-th refund;
 *                      `total_after` is the refunded sum including it. A
 *                      refund is written only as n = previous n + 1 with
 *                      total_after ≤ the amount paid; two racing refunds
 *                      contend for one n and one loses, so the sum can never
 *                      pass what was paid, on any number of servers.
 *   payment_webhooks   _id "<gateway>:<gateway event id>": each delivery of a
 *                      gateway event is recorded once; redeliveries find it.
 *   receipts           receipts and credit notes, immutable: _id
 *                      "<org>:<year>:<kind>:<seq>" (one number once) and a
 *                      unique `subject` (the payment for a receipt, the
 *                      refund for a credit note: one document each). A
 *                      number is taken by inserting seq = the highest + 1;
 *                      a racing insert loses and takes the next, so numbers
 *                      have no gaps (a document exists for every one).
 *   receipt_tips       _id "<org>:<year>:<kind>", seq: a hint, the highest
 *                      number known taken (raised with $max after each
 *                      insert, so never above the truth). A number is
 *                      sought from tip + 1 upward: everything at or below
 *                      the tip is taken, and a probe moves past n only after
 *                      seeing n taken, so hints keep numbers gapless while
 *                      sparing a read of the highest receipt (a sort).
 *   payment_settings   one document per organization (_id = its id), absent
 *                      until first saved (then defaults apply); `version`
 *                      checked on every save (mq_pay_settings_save).
 */
#ifndef MQ_PAYMENTS_STORE_H
#define MQ_PAYMENTS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"
#include "store/bookings/holds_store.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_PAYMENTS_COLLECTION "payments"
#define MQ_PAYMENT_DECISIONS_COLLECTION "payment_decisions"
#define MQ_REFUNDS_COLLECTION "refunds"
#define MQ_PAYMENT_WEBHOOKS_COLLECTION "payment_webhooks"
#define MQ_PAYMENT_SETTINGS_COLLECTION "payment_settings"
#define MQ_RECEIPTS_COLLECTION "receipts"

#define MQ_PAY_PENDING "pending"
#define MQ_PAY_REQUIRES_ACTION "requires_action"
#define MQ_PAY_PROCESSING "processing"
#define MQ_PAY_SUCCEEDED "succeeded"
#define MQ_PAY_FAILED "failed"
#define MQ_PAY_CANCELLED "cancelled"
#define MQ_PAY_REFUNDED "refunded"
#define MQ_PAY_PARTIALLY_REFUNDED "partially_refunded"

/* A payment's state is final for the buyer (no charge can follow). */
bool mq_payment_state_final(const char *state);

typedef struct mq_payment_step {
  char *state, *reason, *source;
  int64_t at_ms;
} mq_payment_step_t;

#define MQ_PAYMENT_HISTORY_MAX 64 /* older steps are dropped past it */

typedef struct mq_payment {
  char *id, *hold_id, *event_id, *organization_id, *user_id;
  char *currency;
  int64_t amount_minor;
  char *gateway;       /* "" until a gateway took it */
  char *gateway_ref;   /* "" until then */
  char *client_secret; /* never leaves the store but to the buyer */
  char *instructions;  /* manual payments */
  char *state, *failure_reason, *booking_id;
  char *request_hash; /* CreatePayment's parameters (idempotency) */
  int64_t refunded_minor, deadline_ms, created_ms, updated_ms, version;
  mq_payment_step_t *history;
  size_t n_history;
} mq_payment_t;

typedef struct mq_refund {
  char *id; /* "<payment>:<sequence>" */
  char *payment_id, *currency, *state, *reason, *gateway_ref, *requested_by, *idempotency_key;
  uint32_t sequence;
  int64_t amount_minor, total_after, created_ms;
} mq_refund_t;

/* An organization's payment settings (proto PaymentSettings). */
enum { MQ_TAX_DISPLAY_DEFAULT = 0, MQ_TAX_DISPLAY_INCLUDED = 1, MQ_TAX_DISPLAY_ADDED = 2 };
typedef struct mq_pay_settings {
  char *organization_id, *legal_name, *tax_id, *address, *own_tax_name, *home_country, *home_region;
  char *fee_currency; /* of fee_per_ticket_minor ("" when none) */
  int tax_display;
  int64_t fee_ppm, fee_per_ticket_minor, own_tax_ppm, version, updated_ms;
  bool fee_passed_on;
  char **gateways; /* preferred gateways, in order (n_gateways 0: the route's) */
  size_t n_gateways;
} mq_pay_settings_t;

/* The organization's settings; its defaults (version 0, no fee, the
 * jurisdiction's tax display) when it never saved any. */
mq_code_t mq_pay_settings_get(mq_store_t *s, const char *org_id, mq_arena_t *a, mq_pay_settings_t *out,
                              mq_error_t *err);
/* Saves `p` if the stored version is still p->version (0: none stored yet),
 * as version + 1 (p->version is updated), with `ev`; MQ_ABORTED when
 * someone saved first. */
mq_code_t mq_pay_settings_save(mq_store_t *s, mq_pay_settings_t *p, const mq_event_t *ev, mq_error_t *err);

typedef struct mq_receipt_line {
  char *description;
  uint32_t quantity;
  int64_t unit_minor, amount_minor;
} mq_receipt_line_t;

typedef struct mq_receipt {
  char *number, *kind, *organization_id, *payment_id, *refund_id, *refers_to, *subject;
  int year;
  int64_t seq, issued_ms;
  char *seller_name, *seller_tax_id, *seller_address, *buyer_name, *buyer_email, *event_title;
  int64_t event_starts_ms;
  char *currency, *payment_method;
  mq_receipt_line_t *lines;
  size_t n_lines;
  mq_price_t price;
  int64_t total_minor;
} mq_receipt_t;

/* The receipt or credit note of `subject` (payment or refund id). */
mq_code_t mq_receipt_by_subject(mq_store_t *s, const char *subject, mq_arena_t *a, mq_receipt_t *out, mq_error_t *err);
/* The highest number taken for (org, year, kind); 0 when none. */
mq_code_t mq_receipts_last_seq(mq_store_t *s, const char *org, int year, const char *kind, int64_t *seq,
                               mq_error_t *err);
/* The tip of (org, year, kind): *found false when none was written yet. */
mq_code_t mq_receipts_tip(mq_store_t *s, const char *org, int year, const char *kind, int64_t *seq, bool *found,
                          mq_error_t *err);
/* Raises the tip of (org, year, kind) to at least seq (creating it). */
mq_code_t mq_receipts_tip_raise(mq_store_t *s, const char *org, int year, const char *kind, int64_t seq,
                                mq_error_t *err);
/* Inserts r (its _id from org, year, kind, seq); MQ_ALREADY_EXISTS when the
 * number or the subject is taken. */
mq_code_t mq_receipt_insert(mq_store_t *s, const mq_receipt_t *r, mq_error_t *err);
/* A payment's credit notes, oldest first. */
mq_code_t mq_credit_notes_of(mq_store_t *s, const char *payment_id, mq_arena_t *a, mq_receipt_t **out, size_t *n,
                             mq_error_t *err);

extern const mq_index_spec_t mq_payments_indexes[];
extern const size_t mq_payments_n_indexes;

/* MQ_ALREADY_EXISTS when the id is taken. */
mq_code_t mq_payments_insert(mq_store_t *s, const mq_payment_t *p, const mq_event_t *evs, size_t n, mq_error_t *err);
mq_code_t mq_payments_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_payment_t *out, mq_error_t *err);
/* The payment a gateway knows by `ref`; MQ_NOT_FOUND if none. */
mq_code_t mq_payments_by_ref(mq_store_t *s, const char *gateway, const char *ref, mq_arena_t *a, mq_payment_t *out,
                             mq_error_t *err);
/* Writes p's mutable fields if the stored version is still `p->version`,
 * and makes it version + 1 (p->version is updated); MQ_ABORTED when
 * someone wrote first. */
mq_code_t mq_payments_update(mq_store_t *s, mq_payment_t *p, const mq_event_t *evs, size_t n, mq_error_t *err);
/* Appends a step to p->history in the arena (keeps the last
 * MQ_PAYMENT_HISTORY_MAX) and sets p->state. */
void mq_payment_step(mq_payment_t *p, mq_arena_t *a, const char *state, const char *reason, const char *source,
                     int64_t at_ms);

/* One page, newest first: by user (event_id NULL) or by event (user_id
 * NULL; state and gateway optional filters). */
mq_code_t mq_payments_list(mq_store_t *s, const char *user_id, const char *event_id, const char *state,
                           const char *gateway, const mq_store_page_t *pg, mq_arena_t *a, mq_payment_t **out, size_t *n,
                           mq_error_t *err);
/* Payments not final whose deadline passed before now_ms (at most limit). */
mq_code_t mq_payments_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_payment_t **out, size_t *n,
                          mq_error_t *err);

/* Decision "<id>:<kind>" → outcome (+ reason); MQ_OK: this caller decided;
 * MQ_ALREADY_EXISTS: decided before (read it with mq_payment_decision_get). */
mq_code_t mq_payment_decide(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                            const char *reason, const mq_event_t *evs, size_t n, mq_error_t *err);
mq_code_t mq_payment_decision_get(mq_store_t *s, const char *id, const char *kind, mq_arena_t *a, char **outcome,
                                  char **reason, mq_error_t *err);

/* The refund ledger. */
mq_code_t mq_refunds_of(mq_store_t *s, const char *payment_id, mq_arena_t *a, mq_refund_t **out, size_t *n,
                        mq_error_t *err);
/* MQ_ALREADY_EXISTS when its sequence number is taken (a racing refund). */
mq_code_t mq_refund_insert(mq_store_t *s, const mq_refund_t *r, const mq_event_t *evs, size_t n, mq_error_t *err);
mq_code_t mq_refund_set_state(mq_store_t *s, const char *id, const char *state, const char *gateway_ref,
                              const char *reason, const mq_event_t *evs, size_t n, mq_error_t *err);

/* Records a gateway event "<gateway>:<event id>" (MQ_ALREADY_EXISTS: seen
 * before); mq_payment_webhook_applied marks it applied. */
mq_code_t mq_payment_webhook_record(mq_store_t *s, const char *gateway, const char *event_id, const char *type,
                                    const char *payment_id, mq_error_t *err);
mq_code_t mq_payment_webhook_applied(mq_store_t *s, const char *gateway, const char *event_id, bool *applied, bool set,
                                     mq_error_t *err);

#endif
