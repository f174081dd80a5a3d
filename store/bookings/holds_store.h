/*
 * holds_store.h — holds and the decisions that end them (bookings issue,
 * items 1–3).
 *
 *   holds {_id, user_id, event_id, organization_id, currency, lines[{
 *          ticket_type_id, name, quantity, unit_minor}], total_minor,
 *          slots[] (capacity.h slot ids, pool by pool), request_hash (only
 *          holds made with an idempotency key, and waitlist offers), state,
 *          created_at, expires_at, payment_reference, payment_deadline,
 *          _outbox}
 *   hold_decisions {_id: "<hold id>:<kind>", hold, kind, outcome, at, actor,
 *          payment_reference, done, _outbox}
 *
 * Invariants:
 *  H1 A hold document is inserted only after all its units were taken
 *     (capacity.h I3), with HoldCreated in the same insert. With an
 *     idempotency key its _id is derived from (user, key), so a retry's
 *     insert collides: the retry gives its own units back and answers with
 *     the stored hold. The stored request_hash tells a retry from a reuse
 *     of the key for another request.
 *  H2 A hold's fate is decided once: the insert of "<hold>:fate" with
 *     outcome "confirmed", "released", "expired" or "payment" (the payments
 *     service took it). Of a confirmation racing an expiry exactly one
 *     insert succeeds. A "payment" fate is followed by exactly one
 *     "<hold>:payment" decision, "succeeded" or "failed"/"timeout".
 *     A booking's cancellation is "<booking>:cancel". The decision carries
 *     the domain event of the outcome (HoldExpired, HoldReleased,
 *     BookingCancelled; BookingConfirmed rides in the booking's insert).
 *  H3 Everything after a decision is idempotent "finishing": give the
 *     units back or mark them sold, write the booking, set `state`. `state`
 *     is derived from the decisions and may lag them; whoever finds a
 *     decided hold (a retry, the sweeper) finishes it again. Cancellations
 *     carry done=false until finished; the sweeper finishes stale ones.
 *  H4 mq_hold_state_holds_units: active, payment_pending and confirmed
 *     holds own their slot records; expired and released ones do not
 *     (capacity.h reclaim trusts this).
 * Read next: bookings_store.h, handlers/bookings/holds.c.
 */
#ifndef MQ_HOLDS_STORE_H
#define MQ_HOLDS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_HOLDS_COLLECTION "holds"
#define MQ_DECISIONS_COLLECTION "hold_decisions"

#define MQ_HOLD_ACTIVE "active"
#define MQ_HOLD_PAYMENT_PENDING "payment_pending"
#define MQ_HOLD_CONFIRMED "confirmed"
#define MQ_HOLD_RELEASED "released"
#define MQ_HOLD_EXPIRED "expired"

extern const mq_index_spec_t mq_holds_indexes[];
extern const size_t mq_holds_n_indexes;

typedef struct mq_hold_line {
  char *ticket_type_id, *name;
  uint32_t quantity;
  int64_t unit_minor;
} mq_hold_line_t;

/* One tax line of a hold's or booking's price (lib/mq_tax.h). */
typedef struct mq_hold_tax {
  char *name, *jurisdiction;
  int64_t ppm, amount_minor;
} mq_hold_tax_t;

/* The price of a hold or booking beyond its lines: what is charged is
 * total_minor (subtotal + taxes, or subtotal when tax_included). */
typedef struct mq_price {
  int64_t subtotal_minor;
  int64_t fee_minor; /* the service fee added to the total (passed on); 0: none */
  mq_hold_tax_t *taxes;
  size_t n_taxes;
  bool tax_included;
} mq_price_t;

typedef struct mq_hold {
  char *id, *user_id, *event_id, *organization_id, *currency, *state, *request_hash, *payment_reference;
  mq_hold_line_t *lines;
  size_t n_lines;
  int64_t total_minor;
  mq_price_t price;
  char **slots;
  size_t n_slots;
  int64_t created_ms, expires_ms, payment_deadline_ms;
} mq_hold_t;

bool mq_hold_state_holds_units(const char *state);
/* The `lines` array of a hold or booking document. */
void mq_hold_lines_append(bson_t *doc, const mq_hold_line_t *lines, size_t n);
mq_hold_line_t *mq_hold_lines_read(const bson_t *doc, mq_arena_t *a, size_t *n);
/* subtotal_minor, taxes[] and tax_included of a hold or booking document;
 * a document written before taxes reads as subtotal = total, no taxes. */
void mq_price_append(bson_t *doc, const mq_price_t *p);
void mq_price_read(const bson_t *doc, int64_t total_minor, mq_arena_t *a, mq_price_t *out);

/* H1: MQ_ALREADY_EXISTS when the id is taken (a retry). */
mq_code_t mq_holds_insert(mq_store_t *s, const mq_hold_t *h, const mq_event_t *ev, mq_error_t *err);
mq_code_t mq_holds_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_hold_t *out, mq_error_t *err);
/* Sets state (and, when non-NULL/non-zero, payment_reference and
 * payment_deadline). Finishing only (H3): never a decision. */
mq_code_t mq_holds_set_state(mq_store_t *s, const char *id, const char *state, const char *payment_reference,
                             int64_t payment_deadline_ms, mq_error_t *err);
/* Holds the sweeper must end: active ones past expires_at and
 * payment_pending ones past payment_deadline, at most `limit`. */
mq_code_t mq_holds_due(mq_store_t *s, int64_t now_ms, uint32_t limit, mq_arena_t *a, mq_hold_t **out, size_t *n,
                       mq_error_t *err);

typedef struct mq_decision {
  char *key, *hold, *kind, *outcome, *actor, *payment_reference, *reason;
  int64_t at_ms;
  int64_t deadline_ms; /* a "payment" fate: when the payment must end (0: at + MARQUEE_PAYMENT_WINDOW_S) */
  bool done;
} mq_decision_t;

/* H2: inserts the decision "<id>:<kind>" (MQ_OK: this caller decided;
 * MQ_ALREADY_EXISTS: decided before — read it with mq_decision_get). */
mq_code_t mq_decide(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                    const char *payment_reference, const char *reason, bool needs_finishing, const mq_event_t *evs,
                    size_t n, mq_error_t *err);
/* As mq_decide, recording a deadline with the decision (a hold in payment:
 * when the payment must have ended). */
mq_code_t mq_decide_until(mq_store_t *s, const char *id, const char *kind, const char *outcome, const char *actor,
                          const char *payment_reference, const char *reason, int64_t deadline_ms, bool needs_finishing,
                          const mq_event_t *evs, size_t n, mq_error_t *err);
mq_code_t mq_decision_get(mq_store_t *s, const char *id, const char *kind, mq_arena_t *a, mq_decision_t *out,
                          mq_error_t *err);
mq_code_t mq_decision_done(mq_store_t *s, const char *id, const char *kind, mq_error_t *err);
/* done=false again, `at` now (a trigger fired once more, e.g. an event
 * cancelled after an earlier attempt failed). */
mq_code_t mq_decision_reopen(mq_store_t *s, const char *id, const char *kind, mq_error_t *err);
/* Active holds of an event (at most `limit`). */
mq_code_t mq_holds_active_of_event(mq_store_t *s, const char *event_id, uint32_t limit, mq_arena_t *a, mq_hold_t **out,
                                   size_t *n, mq_error_t *err);
/* Decisions with done=false older than `older_than_ms` (at most `limit`). */
mq_code_t mq_decisions_unfinished(mq_store_t *s, int64_t older_than_ms, uint32_t limit, mq_arena_t *a,
                                  mq_decision_t **out, size_t *n, mq_error_t *err);

#endif
