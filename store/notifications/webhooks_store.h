/*
 * webhooks_store.h — repository of an organization's webhook endpoints and
 * of what marquee-webhooks delivers to them: `webhook_endpoints`,
 * `webhook_deliveries` and `webhook_attempts`.
 *
 * Endpoint: {_id, organization_id, url, event_types[], description, enabled,
 *   deleted, secret, previous_secret, previous_until, secret_hint, version,
 *   created_at, updated_at}. Deleting is a write (deleted: true, secrets
 *   cleared) so that it can carry its event. The secrets are read by the
 *   webhooks consumer to sign and are never returned by a read of the API
 *   other than the create or rotate that made them.
 * Delivery: {_id "<event id>:<endpoint id>", organization_id, endpoint_id,
 *   event_id, event_type, body, state ("pending", "delivered", "failed"),
 *   attempts, next_at, window_from, last_status, last_error, created_at,
 *   updated_at}.
 * Attempt: {_id "<delivery id>:<n>", delivery_id, organization_id, n, at,
 *   state ("sending", "done"), status, error, duration_ms}.
 *
 * Invariants:
 *   1. A delivery is created once per (event, endpoint): an insert on its
 *      _id (DESIGN §4). A replayed event finds it and makes no other.
 *   2. Attempt n of a delivery is made by whoever inserted its attempt
 *      record: of any number of webhook processes, one. Only that process
 *      then records the outcome on the delivery, conditionally on the
 *      delivery still being pending with n − 1 attempts, so a delivery's
 *      record never goes backwards.
 *   3. An attempt record left "sending" (its process died) counts as made
 *      once it is older than the caller's lease: the next attempt is n + 1.
 *   4. Redelivery (by hand) turns only a delivered or failed delivery back
 *      to pending: never one an attempt may be working on.
 */
#ifndef WEBHOOKS_STORE_H
#define WEBHOOKS_STORE_H

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_WEBHOOK_ENDPOINTS "webhook_endpoints"
#define MQ_WEBHOOK_DELIVERIES "webhook_deliveries"
#define MQ_WEBHOOK_ATTEMPTS "webhook_attempts"

typedef struct mq_wh_endpoint {
  char *id, *organization_id, *url, *description;
  char **event_types;
  size_t n_event_types;
  bool enabled, deleted;
  char *secret, *previous_secret, *secret_hint;
  int64_t previous_until_ms;
  int64_t version, created_ms, updated_ms;
} mq_wh_endpoint_t;

typedef struct mq_wh_delivery {
  char *id, *organization_id, *endpoint_id, *event_id, *event_type, *body, *state;
  int32_t attempts;
  int64_t next_ms, window_from_ms, created_ms, updated_ms;
  int32_t last_status;
  char *last_error;
} mq_wh_delivery_t;

typedef struct mq_wh_attempt {
  char *id, *delivery_id, *state, *error;
  int32_t n, status, duration_ms;
  int64_t at_ms;
} mq_wh_attempt_t;

extern const mq_index_spec_t mq_webhooks_indexes[];
extern const size_t mq_webhooks_n_indexes;

/* ---- endpoints ---- */
mq_code_t mq_wh_endpoint_insert(mq_store_t *s, const mq_wh_endpoint_t *e, const mq_event_t *ev, mq_error_t *err);
/* NOT_FOUND for an unknown or deleted endpoint. */
mq_code_t mq_wh_endpoint_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wh_endpoint_t *out, mq_error_t *err);
/* The organization's endpoints that are not deleted (enabled_only: and enabled). */
mq_code_t mq_wh_endpoint_list(mq_store_t *s, const char *org_id, bool enabled_only, mq_arena_t *a,
                              mq_wh_endpoint_t **out, size_t *n, mq_error_t *err);
/* Replaces the mutable fields of endpoint e->id if its version is still
 * `expected_version` (then version + 1). ABORTED when it moved. */
mq_code_t mq_wh_endpoint_save(mq_store_t *s, const mq_wh_endpoint_t *e, int64_t expected_version, const mq_event_t *ev,
                              mq_error_t *err);

/* ---- deliveries ---- */
/* Invariant 1: MQ_OK (created) or MQ_ALREADY_EXISTS. */
mq_code_t mq_wh_delivery_create(mq_store_t *s, const mq_wh_delivery_t *d, mq_error_t *err);
mq_code_t mq_wh_delivery_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_wh_delivery_t *out, mq_error_t *err);
/* Pending deliveries due at `now_ms`, the earliest first, at most `limit`. */
mq_code_t mq_wh_delivery_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_wh_delivery_t **out,
                             size_t *n, mq_error_t *err);
/* A page of the organization's deliveries, newest first (filters optional). */
mq_code_t mq_wh_delivery_page(mq_store_t *s, const char *org_id, const char *endpoint_id, const char *state,
                              const mq_store_page_t *pg, mq_arena_t *a, mq_wh_delivery_t **out, size_t *n,
                              mq_error_t *err);
/* Invariant 2: the outcome of attempt `n` (state, next attempt, last
 * answer). NOT_FOUND when the delivery is no longer pending at n − 1. */
mq_code_t mq_wh_delivery_record(mq_store_t *s, const char *id, int32_t n, const char *state, int64_t next_ms,
                                int32_t status, const char *error, mq_error_t *err);
/* Postpones a pending delivery without an attempt (its endpoint's breaker is open). */
mq_code_t mq_wh_delivery_postpone(mq_store_t *s, const char *id, int32_t attempts, int64_t next_ms, mq_error_t *err);
/* Invariant 4. FAILED_PRECONDITION while pending. */
mq_code_t mq_wh_delivery_redeliver(mq_store_t *s, const char *id, int64_t now_ms, mq_error_t *err);

/* ---- attempts ---- */
/* Claims attempt n (invariant 2): MQ_OK, or MQ_ALREADY_EXISTS with *at_ms
 * and *done describing the record someone else made. */
mq_code_t mq_wh_attempt_begin(mq_store_t *s, const char *delivery_id, const char *org_id, int32_t n, int64_t now_ms,
                              int64_t *at_ms, bool *done, mq_error_t *err);
mq_code_t mq_wh_attempt_finish(mq_store_t *s, const char *delivery_id, int32_t n, int32_t status, const char *error,
                               int32_t duration_ms, mq_error_t *err);
/* Every attempt of a delivery, in order. */
mq_code_t mq_wh_attempt_list(mq_store_t *s, const char *delivery_id, mq_arena_t *a, mq_wh_attempt_t **out, size_t *n,
                             mq_error_t *err);

#endif
