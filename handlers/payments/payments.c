/*
 * payments.c — marquee.payments.v1.PaymentService and the payment flow its
 * RPCs, the webhook route (webhooks.c) and the sweeper share. The method
 * table is payment_service.c; invariants P1-P5 are in payments.h.
 *
 * Who may call what: a payment belongs to its hold's buyer (another user's
 * payment is NOT_FOUND); GetPayment and the lists are open to members of
 * the event's organization too (without the client secret);
 * MarkPaymentReceived and RefundPayment need an owner or manager of it.
 *
 * CreatePayment, step by step:
 *   validate → the buyer's hold, its total equal to `amount` → the payment
 *   document (inserted once, id from the hold) → the route's gateways in
 *   order, each behind its breaker and bulkhead, until one creates an
 *   intent (Idempotency-Key "<payment>:<gateway>") → the hold enters
 *   payment under "<gateway>:<intent id>" (P2) → the document gets the
 *   gateway, its id and the client secret, with PaymentCreated.
 * A crash between the last two steps leaves a hold in payment and a
 * document without its gateway: the next CreatePayment, ConfirmPayment or
 * the sweeper reads the intent back from the gateway (repair).
 */
#include "handlers/payments/payments.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "handlers/bookings/bookings.h"
#include "handlers/identity/identity.h"
#include "lib/mq_money.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "marquee/payments/v1/payments.mq-server.h"
#include "store/bookings/holds_store.h"
#include "store/catalog/events_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define PAGE_DEFAULT 20
#define PAGE_MAX 100
#define UPDATE_TRIES 8

typedef Marquee__Payments__V1__Payment payment_pb;

/* ---- small helpers ---- */

static const char *actor_of(mq_call_t *call) {
  const mq_principal_t *p = mq_call_principal(call);
  return p ? p->subject : "system";
}

static void payment_event(mq_event_t *ev, const char *type, const char *payment_id, const char *actor,
                          const char *trace_id) {
  mq_event_init(ev, MQ_PAYMENTS_TOPIC, type, payment_id, actor ? actor : "system", trace_id ? trace_id : "", "");
}

/* PaymentSucceeded for p, its booking `booking_id` (in place; the payload
 * lives in a). The booking's hold is the booking's id. */
static void succeeded_event(mq_event_t *ev, mq_arena_t *a, const mq_payment_t *p, const char *booking_id,
                            const char *actor, const char *trace_id) {
  Marquee__Events__V1__PaymentSucceeded *e = mq_arena_alloc(a, sizeof *e);
  marquee__events__v1__payment_succeeded__init(e);
  e->payment_id = p->id;
  e->hold_id = e->booking_id = (char *)booking_id;
  e->event_id = p->event_id;
  e->organization_id = p->organization_id;
  e->user_id = p->user_id;
  e->gateway = p->gateway;
  e->amount_minor = p->amount_minor;
  e->currency = p->currency;
  payment_event(ev, "payments.PaymentSucceeded", p->id, actor, trace_id);
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_SUCCEEDED;
  ev->env.payment_succeeded = e;
}

/* PaymentCancelled for p into ev (in place; the payload lives in a). */
static void cancelled_event(mq_event_t *ev, mq_arena_t *a, const mq_payment_t *p, const char *reason, const char *actor,
                            const char *trace_id) {
  Marquee__Events__V1__PaymentCancelled *e = mq_arena_alloc(a, sizeof *e);
  marquee__events__v1__payment_cancelled__init(e);
  e->payment_id = p->id;
  e->hold_id = p->hold_id;
  e->event_id = p->event_id;
  e->user_id = p->user_id;
  e->gateway = p->gateway;
  e->reason = (char *)reason;
  payment_event(ev, "payments.PaymentCancelled", p->id, actor, trace_id);
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_CANCELLED;
  ev->env.payment_cancelled = e;
}

static int state_enum(const char *s) {
  static const struct {
    const char *name;
    int v;
  } map[] = {
      {MQ_PAY_PENDING, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING},
      {MQ_PAY_REQUIRES_ACTION, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REQUIRES_ACTION},
      {MQ_PAY_PROCESSING, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PROCESSING},
      {MQ_PAY_SUCCEEDED, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED},
      {MQ_PAY_FAILED, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_FAILED},
      {MQ_PAY_CANCELLED, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_CANCELLED},
      {MQ_PAY_REFUNDED, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REFUNDED},
      {MQ_PAY_PARTIALLY_REFUNDED, MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PARTIALLY_REFUNDED},
  };
  for (size_t i = 0; s && i < sizeof map / sizeof *map; i++)
    if (!strcmp(s, map[i].name)) return map[i].v;
  return 0;
}

static const char *state_name(int v) {
  switch (v) {
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PENDING:
      return MQ_PAY_PENDING;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REQUIRES_ACTION:
      return MQ_PAY_REQUIRES_ACTION;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PROCESSING:
      return MQ_PAY_PROCESSING;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED:
      return MQ_PAY_SUCCEEDED;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_FAILED:
      return MQ_PAY_FAILED;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_CANCELLED:
      return MQ_PAY_CANCELLED;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_REFUNDED:
      return MQ_PAY_REFUNDED;
    case MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_PARTIALLY_REFUNDED:
      return MQ_PAY_PARTIALLY_REFUNDED;
    default:
      return NULL;
  }
}

static bool paid(const mq_payment_t *p) {
  return !strcmp(p->state, MQ_PAY_SUCCEEDED) || !strcmp(p->state, MQ_PAY_PARTIALLY_REFUNDED) ||
         !strcmp(p->state, MQ_PAY_REFUNDED);
}

static Marquee__Payments__V1__Refund *refund_view(mq_arena_t *a, const mq_refund_t *r) {
  Marquee__Payments__V1__Refund *v = mq_arena_alloc(a, sizeof *v);
  marquee__payments__v1__refund__init(v);
  v->refund_id = r->id;
  v->payment_id = r->payment_id;
  v->amount = mq_money(a, r->amount_minor, r->currency);
  v->state = !strcmp(r->state, "succeeded") ? MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_SUCCEEDED
             : !strcmp(r->state, "failed")  ? MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_FAILED
                                            : MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_PENDING;
  v->reason = r->reason;
  v->gateway_reference = r->gateway_ref;
  v->requested_by = r->requested_by;
  v->created_at = mq_pb_timestamp(a, r->created_ms);
  v->sequence = r->sequence;
  return v;
}

/* The API view; the client secret only for its buyer while it waits. */
static payment_pb *payment_view(mq_arena_t *a, const mq_payment_t *p, bool buyer, const mq_refund_t *refunds,
                                size_t n_refunds) {
  payment_pb *v = mq_arena_alloc(a, sizeof *v);
  marquee__payments__v1__payment__init(v);
  v->payment_id = p->id;
  v->hold_id = p->hold_id;
  v->booking_id = p->booking_id;
  v->event_id = p->event_id;
  v->organization_id = p->organization_id;
  v->user_id = p->user_id;
  v->gateway = p->gateway;
  v->gateway_reference = p->gateway_ref;
  v->amount = mq_money(a, p->amount_minor, p->currency);
  v->state = state_enum(p->state);
  if (buyer && !mq_payment_state_final(p->state)) v->client_secret = p->client_secret;
  v->instructions = p->instructions;
  if (p->deadline_ms) v->deadline = mq_pb_timestamp(a, p->deadline_ms);
  v->refunded = mq_money(a, p->refunded_minor, p->currency);
  v->history = mq_arena_alloc(a, (p->n_history ? p->n_history : 1) * sizeof *v->history);
  for (size_t i = 0; i < p->n_history; i++) {
    Marquee__Payments__V1__PaymentStatusChange *c = mq_arena_alloc(a, sizeof *c);
    marquee__payments__v1__payment_status_change__init(c);
    c->state = state_enum(p->history[i].state);
    c->at = mq_pb_timestamp(a, p->history[i].at_ms);
    c->reason = p->history[i].reason;
    c->source = p->history[i].source;
    v->history[v->n_history++] = c;
  }
  v->created_at = mq_pb_timestamp(a, p->created_ms);
  v->updated_at = mq_pb_timestamp(a, p->updated_ms ? p->updated_ms : p->created_ms);
  if (!strcmp(p->state, MQ_PAY_FAILED)) v->failure_reason = p->failure_reason;
  v->refunds = mq_arena_alloc(a, (n_refunds ? n_refunds : 1) * sizeof *v->refunds);
  for (size_t i = 0; i < n_refunds; i++) v->refunds[v->n_refunds++] = refund_view(a, &refunds[i]);
  return v;
}

/* "<gateway>:<id>" → the gateway's name and id. */
static bool split_reference(const char *ref, char *gw, size_t gn, const char **id) {
  const char *c = ref ? strchr(ref, ':') : NULL;
  if (!c || (size_t)(c - ref) >= gn) return false;
  memcpy(gw, ref, (size_t)(c - ref));
  gw[c - ref] = '\0';
  *id = c + 1;
  return true;
}

/* ---- gateway calls: bulkhead + breaker (P5) ---- */

static bool transient(mq_code_t rc) {
  return rc == MQ_UNAVAILABLE || rc == MQ_DEADLINE_EXCEEDED;
}

/* Runs one call through g's bulkhead and breaker; the call is `fn`. */
typedef mq_code_t (*gw_call_fn)(mq_pay_gateway_t *g, void *arg, mq_error_t *err);
#define GW_ATTEMPTS 2     /* a transient failure is retried once */
#define GW_BACKOFF_MS 100 /* then 100-200 ms (full jitter over the doubling ceiling) */
#define GW_BACKOFF_CAP_MS 1000

static mq_code_t guarded(mq_payments_t *ps, mq_pay_gateway_t *g, gw_call_fn fn, void *arg, mq_error_t *err) {
  for (int attempt = 1;; attempt++) {
    if (!mq_breaker_allow(g->breaker, mq_now_unix_ms())) {
      mq_error_set(err, MQ_UNAVAILABLE, NULL, "the %s gateway is failing; its circuit breaker is open",
                   g->gw->ops->name);
      err->retry_after_ms = 1000;
      return MQ_UNAVAILABLE;
    }
    if (!mq_breaker_enter(g->breaker)) {
      mq_breaker_record(g->breaker, true, mq_now_unix_ms()); /* not the gateway's fault: give the ticket back */
      mq_error_set(err, MQ_UNAVAILABLE, NULL, "too many calls to the %s gateway in flight", g->gw->ops->name);
      err->retry_after_ms = 200;
      return MQ_UNAVAILABLE;
    }
    mq_code_t rc = fn(g, arg, err);
    mq_breaker_leave(g->breaker);
    mq_breaker_record(g->breaker, !transient(rc), mq_now_unix_ms());
    if (!transient(rc) || attempt >= GW_ATTEMPTS) return rc;
    atomic_fetch_add(&ps->retries_total, 1);
    struct timespec ts = {0, mq_backoff_ms(attempt, GW_BACKOFF_MS, GW_BACKOFF_CAP_MS) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

typedef struct {
  const char *ref, *idem;
  const mq_gw_intent_req_t *req;
  mq_gw_intent_t *out;
  int64_t amount;
  const char *currency;
  mq_gw_refund_t *refund;
} gw_args_t;

static mq_code_t do_create(mq_pay_gateway_t *g, void *arg, mq_error_t *err) {
  gw_args_t *x = arg;
  return g->gw->ops->create_intent(g->gw, x->req, x->out, err);
}
static mq_code_t do_retrieve(mq_pay_gateway_t *g, void *arg, mq_error_t *err) {
  gw_args_t *x = arg;
  return g->gw->ops->retrieve(g->gw, x->ref, x->out, err);
}
static mq_code_t do_cancel(mq_pay_gateway_t *g, void *arg, mq_error_t *err) {
  gw_args_t *x = arg;
  return g->gw->ops->cancel(g->gw, x->ref, x->idem, x->out, err);
}
static mq_code_t do_refund(mq_pay_gateway_t *g, void *arg, mq_error_t *err) {
  gw_args_t *x = arg;
  return g->gw->ops->refund(g->gw, x->ref, x->amount, x->currency, x->idem, x->refund, err);
}

static mq_code_t gw_of(mq_payments_t *ps, const mq_payment_t *p, mq_pay_gateway_t **g, mq_error_t *err) {
  *g = p->gateway && *p->gateway ? mq_payments_gateway(ps, p->gateway) : NULL;
  if (!*g)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                        "the payment's gateway (%s) is not configured on this server",
                        p->gateway && *p->gateway ? p->gateway : "none yet");
  return MQ_OK;
}

/* ---- writing a payment's document ---- */

/* Re-reads *p and applies `change` until the versioned write lands.
 * `change` returns false when nothing needs writing any more. */
typedef bool (*change_fn)(mq_payment_t *p, void *arg, mq_arena_t *a, mq_event_t *evs, size_t *n_evs);
static mq_code_t write_payment(mq_payments_t *ps, mq_payment_t *p, change_fn change, void *arg, mq_arena_t *a,
                               mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  for (int i = 0; i < UPDATE_TRIES; i++) {
    mq_event_t evs[3];
    size_t n = 0;
    if (!change(p, arg, a, evs, &n)) return MQ_OK;
    mq_code_t rc = mq_payments_update(s, p, evs, n, err);
    if (rc != MQ_ABORTED) return rc;
    if ((rc = mq_payments_get(s, p->id, a, p, err)) != MQ_OK) return rc;
  }
  return mq_error_set(err, MQ_ABORTED, "payment_id", "the payment keeps changing; retry");
}

/* The gateway took the payment: its id, secret, instructions, deadline. */
typedef struct {
  const char *gateway;
  const mq_gw_intent_t *gi;
  int64_t deadline_ms;
  const char *trace_id;
} took_t;

static bool took_change(mq_payment_t *p, void *arg, mq_arena_t *a, mq_event_t *evs, size_t *n) {
  took_t *t = arg;
  if (p->gateway_ref && *p->gateway_ref) return false; /* written already */
  p->gateway = (char *)t->gateway;
  p->gateway_ref = mq_arena_strdup(a, t->gi->ref);
  p->client_secret = mq_arena_strdup(a, t->gi->client_secret);
  p->instructions = mq_arena_strdup(a, t->gi->instructions);
  p->deadline_ms = t->deadline_ms;
  bool action = t->gi->status == MQ_GW_REQUIRES_ACTION;
  mq_payment_step(p, a, action ? MQ_PAY_REQUIRES_ACTION : MQ_PAY_PENDING, NULL, "api", mq_now_unix_ms());
  Marquee__Events__V1__PaymentCreated *c = mq_arena_alloc(a, sizeof *c);
  marquee__events__v1__payment_created__init(c);
  c->payment_id = p->id;
  c->hold_id = p->hold_id;
  c->event_id = p->event_id;
  c->organization_id = p->organization_id;
  c->user_id = p->user_id;
  c->gateway = p->gateway;
  c->amount_minor = p->amount_minor;
  c->currency = p->currency;
  c->deadline = mq_pb_timestamp(a, p->deadline_ms);
  payment_event(&evs[*n], "payments.PaymentCreated", p->id, p->user_id, t->trace_id);
  evs[*n].env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_CREATED;
  evs[(*n)++].env.payment_created = c;
  if (action) {
    Marquee__Events__V1__PaymentRequiresAction *r = mq_arena_alloc(a, sizeof *r);
    marquee__events__v1__payment_requires_action__init(r);
    r->payment_id = p->id;
    r->hold_id = p->hold_id;
    r->user_id = p->user_id;
    r->gateway = p->gateway;
    r->instructions = p->instructions;
    r->deadline = c->deadline;
    r->event_id = p->event_id;
    r->amount_minor = p->amount_minor;
    r->currency = p->currency;
    payment_event(&evs[*n], "payments.PaymentRequiresAction", p->id, p->user_id, t->trace_id);
    evs[*n].env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_REQUIRES_ACTION;
    evs[(*n)++].env.payment_requires_action = r;
  }
  return true;
}

/* A non-final state change (processing, a decline, requires_action). */
typedef struct {
  const char *state, *reason, *source, *trace_id;
} step_t;

static bool step_change(mq_payment_t *p, void *arg, mq_arena_t *a, mq_event_t *evs, size_t *n) {
  step_t *s = arg;
  if (mq_payment_state_final(p->state)) return false;
  const char *reason = s->reason ? s->reason : "";
  if (!strcmp(p->state, s->state) && !strcmp(p->failure_reason ? p->failure_reason : "", reason)) return false;
  mq_payment_step(p, a, s->state, reason, s->source, mq_now_unix_ms());
  p->failure_reason = (char *)reason;
  if (!strcmp(s->state, MQ_PAY_FAILED)) {
    Marquee__Events__V1__PaymentFailed *f = mq_arena_alloc(a, sizeof *f);
    marquee__events__v1__payment_failed__init(f);
    f->payment_id = p->id;
    f->hold_id = p->hold_id;
    f->event_id = p->event_id;
    f->user_id = p->user_id;
    f->gateway = p->gateway;
    f->reason = (char *)reason;
    f->final = false;
    payment_event(&evs[*n], "payments.PaymentFailed", p->id, "system", s->trace_id);
    evs[*n].env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_FAILED;
    evs[(*n)++].env.payment_failed = f;
  }
  return true;
}

/* The final state from the outcome record (P3). */
typedef struct {
  const char *outcome, *reason, *source;
  const char *booking_id; /* succeeded: the booking (NULL: the hold's own) */
} final_t;

static bool final_change(mq_payment_t *p, void *arg, mq_arena_t *a, mq_event_t *evs, size_t *n) {
  (void)evs, (void)n;
  final_t *f = arg;
  bool ok = !strcmp(f->outcome, "succeeded");
  /* a paid state is never left (a late success may follow a cancellation, not the other way) */
  if (paid(p) || (!ok && !strcmp(p->state, MQ_PAY_CANCELLED))) return false;
  mq_payment_step(p, a, ok ? MQ_PAY_SUCCEEDED : MQ_PAY_CANCELLED, f->reason, f->source, mq_now_unix_ms());
  if (ok) p->booking_id = (char *)(f->booking_id ? f->booking_id : p->hold_id);
  p->client_secret = (char *)"";
  return true;
}

/* ---- settling: the hold's decision → the payment's outcome (P3) ---- */

static mq_code_t refund_all(mq_payments_t *ps, mq_payment_t *p, const char *reason, mq_arena_t *a, mq_refund_t *out,
                            mq_error_t *err);

/* Catches the payment's outcome record and document up with the hold's
 * payment decision, if there is one. */
static mq_code_t settle(mq_payments_t *ps, mq_payment_t *p, const char *source, const char *trace_id, mq_arena_t *a,
                        mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  mq_decision_t pay;
  mq_code_t rc = mq_decision_get(s, p->hold_id, "payment", a, &pay, err);
  if (rc == MQ_NOT_FOUND) return MQ_OK; /* not decided yet */
  if (rc != MQ_OK) return rc;
  const char *ref = pay.payment_reference;
  mq_decision_t fate;
  if ((!ref || !*ref) && mq_decision_get(s, p->hold_id, "fate", a, &fate, err) == MQ_OK)
    ref = fate.payment_reference; /* a timeout recorded before timeouts named their reference */
  char gwname[32];
  const char *gref;
  bool ours = split_reference(ref, gwname, sizeof gwname, &gref) && !strcmp(gwname, p->gateway) &&
              !strcmp(gref, p->gateway_ref);
  if (!ours) return MQ_OK; /* the hold was paid through another reference: not this payment's outcome */
  bool ok = !strcmp(pay.outcome, "succeeded");
  const char *reason = ok ? "" : !strcmp(pay.outcome, "timeout") ? "deadline" : "cancelled";
  mq_event_t ev;
  if (ok) {
    succeeded_event(&ev, a, p, p->hold_id, pay.actor, trace_id);
  } else {
    cancelled_event(&ev, a, p, reason, pay.actor, trace_id);
  }
  rc = mq_payment_decide(s, p->id, "outcome", ok ? "succeeded" : "cancelled", pay.actor, reason, &ev, 1, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  final_t f = {ok ? "succeeded" : "cancelled", reason, source, NULL};
  bool was_paid = paid(p);
  if ((rc = write_payment(ps, p, final_change, &f, a, err)) != MQ_OK) return rc;
  if (ok && !was_paid) { /* the receipt, once, now (best effort: GetReceipt issues it otherwise) */
    mq_receipt_t r;
    mq_error_t e2 = {0};
    if (mq_receipt_for_payment(ps, p, a, &r, &e2) != MQ_OK)
      mq_log(MQ_LOG_WARN, "payments.receipt_failed", "payment %s: %s (issued on request)", p->id, e2.message);
  }
  return MQ_OK;
}

/* A payment that succeeded after its hold ended: the hold's units again, as
 * a new hold (id derived from the old one, so a retry finds it), put in
 * payment under the same reference and confirmed at once. RESOURCE_EXHAUSTED
 * or FAILED_PRECONDITION: not possible any more (the caller refunds). */
static mq_code_t rebook(mq_payments_t *ps, mq_payment_t *p, const mq_hold_t *old, const char *source, const char *actor,
                        const char *trace_id, mq_arena_t *a, mq_error_t *err) {
  mq_app_t *app = ps->app;
  char *nid = mq_arena_alloc(a, 37);
  mq_bookings_derived_id(old->id, "retake", nid);
  mq_hold_t nh;
  mq_code_t rc = mq_bookings_retake(app->bookings, old, nid, a, &nh, err);
  if (rc == MQ_ALREADY_EXISTS) rc = mq_holds_get(app->store, nid, a, &nh, err); /* placed by an earlier attempt */
  if (rc != MQ_OK) return rc;
  char ref[300];
  snprintf(ref, sizeof ref, "%s:%s", p->gateway, p->gateway_ref);
  if ((rc = mq_bookings_start_payment(app->bookings, &nh, ref, 0, actor, trace_id, NULL, a, err)) != MQ_OK) return rc;
  mq_booking_t bk;
  if ((rc = mq_bookings_complete_payment(app->bookings, &nh, ref, true, actor, trace_id, NULL, a, &bk, err)) != MQ_OK)
    return rc;
  mq_event_t ev;
  succeeded_event(&ev, a, p, nid, actor, trace_id);
  rc = mq_payment_decide(app->store, p->id, "late", "rebooked", actor, nid, &ev, 1, err);
  if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
  mq_log(MQ_LOG_WARN, "payments.late_success", "payment %s succeeded after its hold ended: booked again as %s", p->id,
         nid);
  final_t f = {"succeeded", "succeeded after the hold ended: the same tickets booked again", source, nid};
  return write_payment(ps, p, final_change, &f, a, err);
}

/* The gateway says the money is taken: confirm the booking (or, if the hold
 * was released first, book its tickets again or refund: P4). */
static mq_code_t succeed(mq_payments_t *ps, mq_payment_t *p, const char *source, const char *actor,
                         const char *trace_id, mq_arena_t *a, mq_error_t *err) {
  mq_app_t *app = ps->app;
  mq_hold_t h;
  mq_code_t rc = mq_holds_get(app->store, p->hold_id, a, &h, err);
  if (rc != MQ_OK) return rc;
  char ref[300];
  snprintf(ref, sizeof ref, "%s:%s", p->gateway, p->gateway_ref);
  mq_booking_t bk;
  mq_error_t e2 = {0};
  rc = mq_bookings_complete_payment(app->bookings, &h, ref, true, actor, trace_id, NULL, a, &bk, &e2);
  if (rc != MQ_OK && rc != MQ_FAILED_PRECONDITION) {
    *err = e2;
    return rc;
  }
  if ((rc = settle(ps, p, source, trace_id, a, err)) != MQ_OK) return rc;
  if (!strcmp(p->state, MQ_PAY_CANCELLED)) {
    /* the money arrived after the hold was released (P4): the same tickets
     * again if they are still there, else the money back */
    mq_error_t e3 = {0};
    rc = rebook(ps, p, &h, source, actor, trace_id, a, &e3);
    if (rc == MQ_OK) {
      atomic_fetch_add(&ps->late_rebooked_total, 1);
      return MQ_OK;
    }
    if (rc != MQ_RESOURCE_EXHAUSTED && rc != MQ_FAILED_PRECONDITION) { /* transient: the webhook or sweeper retries */
      *err = e3;
      return rc;
    }
    mq_log(MQ_LOG_WARN, "payments.late_success", "payment %s succeeded at %s after its hold ended, %s: refunding",
           p->id, p->gateway, e3.message);
    final_t f = {"succeeded", "succeeded after the hold was released", source, NULL};
    if ((rc = write_payment(ps, p, final_change, &f, a, err)) != MQ_OK) return rc;
    mq_refund_t r;
    atomic_fetch_add(&ps->auto_refunds_total, 1);
    return refund_all(ps, p, "the hold was released before the payment arrived", a, &r, err);
  }
  return MQ_OK;
}

/* The payment ends unpaid: the gateway's intent is cancelled, the hold
 * released, the payment CANCELLED. If the gateway says it succeeded after
 * all, the payment succeeds instead. */
static mq_code_t cancel_payment(mq_payments_t *ps, mq_payment_t *p, const char *reason, const char *source,
                                const char *actor, const char *trace_id, mq_arena_t *a, mq_error_t *err) {
  mq_app_t *app = ps->app;
  mq_code_t rc;
  mq_decision_t pay;
  mq_error_t e0 = {0};
  if (mq_decision_get(app->store, p->hold_id, "payment", a, &pay, &e0) == MQ_OK && !strcmp(pay.outcome, "succeeded"))
    return settle(ps, p, source, trace_id, a, err); /* the money came first (a crash left the rest undone) */
  if (p->gateway_ref && *p->gateway_ref) {
    mq_pay_gateway_t *g;
    if ((rc = gw_of(ps, p, &g, err)) != MQ_OK) return rc;
    mq_gw_intent_t gi = {0};
    char idem[120];
    snprintf(idem, sizeof idem, "%s:cancel", p->id);
    gw_args_t x = {.ref = p->gateway_ref, .idem = idem, .out = &gi};
    mq_error_t e2 = {0};
    rc = guarded(ps, g, do_cancel, &x, &e2);
    if (rc != MQ_OK && rc != MQ_NOT_FOUND) {
      if (transient(rc)) {
        *err = e2;
        return rc;
      }
      /* refused: perhaps it succeeded meanwhile — ask */
      if ((rc = guarded(ps, g, do_retrieve, &x, err)) != MQ_OK) return rc;
      if (gi.status == MQ_GW_SUCCEEDED) return succeed(ps, p, source, actor, trace_id, a, err);
      if (gi.status != MQ_GW_CANCELLED) {
        *err = e2;
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id", "the gateway refused to cancel it: %s",
                            e2.message);
      }
    } else if (rc == MQ_OK && gi.status == MQ_GW_SUCCEEDED) {
      return succeed(ps, p, source, actor, trace_id, a, err);
    }
  }
  mq_hold_t h;
  if ((rc = mq_holds_get(app->store, p->hold_id, a, &h, err)) != MQ_OK) return rc;
  mq_decision_t fate;
  rc = mq_decision_get(app->store, h.id, "fate", a, &fate, err);
  if (rc == MQ_OK && !strcmp(fate.outcome, "payment")) {
    mq_error_t e2 = {0};
    mq_booking_t bk;
    rc = mq_bookings_complete_payment(app->bookings, &h, fate.payment_reference, false, actor, trace_id, NULL, a, &bk,
                                      &e2);
    if (rc != MQ_OK && rc != MQ_FAILED_PRECONDITION) {
      *err = e2;
      return rc;
    }
  } else if (rc == MQ_NOT_FOUND) {
    /* never entered payment (no gateway took it): the hold goes back too */
    if ((rc = mq_bookings_release_hold(app->bookings, &h, actor, a, err)) != MQ_OK && rc != MQ_FAILED_PRECONDITION)
      return rc;
    mq_event_t ev;
    cancelled_event(&ev, a, p, reason, actor, trace_id);
    rc = mq_payment_decide(app->store, p->id, "outcome", "cancelled", actor, reason, &ev, 1, err);
    if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
    final_t f = {"cancelled", reason, source, NULL};
    return write_payment(ps, p, final_change, &f, a, err);
  } else if (rc != MQ_OK) {
    return rc;
  }
  return settle(ps, p, source, trace_id, a, err);
}

/* Declared in payments.h. */
mq_code_t mq_payments_apply(mq_payments_t *ps, mq_payment_t *p, const mq_gw_intent_t *gi, const char *source,
                            const char *actor, const char *trace_id, mq_arena_t *a, mq_error_t *err) {
  if (gi->ref[0] && strcmp(gi->ref, p->gateway_ref))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id", "the gateway's payment is not this payment's");
  switch (gi->status) {
    case MQ_GW_SUCCEEDED: {
      int64_t got = gi->amount_received ? gi->amount_received : gi->amount_minor;
      if ((gi->currency[0] && strcasecmp(gi->currency, p->currency)) || (got && got != p->amount_minor)) {
        mq_log(MQ_LOG_ERROR, "payments.amount_mismatch",
               "payment %s: the gateway reports %" PRId64 " %s, the payment is %" PRId64 " %s", p->id, got,
               gi->currency, p->amount_minor, p->currency);
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                            "the gateway reports another amount or currency than the payment's");
      }
      return succeed(ps, p, source, actor, trace_id, a, err);
    }
    case MQ_GW_CANCELLED:
      return cancel_payment(ps, p, "cancelled at the gateway", source, actor, trace_id, a, err);
    case MQ_GW_FAILED: {
      step_t st = {MQ_PAY_FAILED, gi->failure[0] ? gi->failure : "declined", source, trace_id};
      return write_payment(ps, p, step_change, &st, a, err);
    }
    case MQ_GW_PROCESSING: {
      step_t st = {MQ_PAY_PROCESSING, "", source, trace_id};
      return write_payment(ps, p, step_change, &st, a, err);
    }
    case MQ_GW_REQUIRES_ACTION: {
      step_t st = {MQ_PAY_REQUIRES_ACTION, "", source, trace_id};
      return write_payment(ps, p, step_change, &st, a, err);
    }
    case MQ_GW_PENDING:
    default: {
      if (!strcmp(p->state, MQ_PAY_PENDING) || mq_payment_state_final(p->state)) return MQ_OK;
      step_t st = {MQ_PAY_PENDING, "", source, trace_id};
      return write_payment(ps, p, step_change, &st, a, err);
    }
  }
}

/* A document whose hold is in payment but which lacks its gateway (a crash
 * between the two writes): read the intent back and fill it in. */
static mq_code_t repair(mq_payments_t *ps, mq_payment_t *p, const mq_decision_t *fate, const char *trace_id,
                        mq_arena_t *a, mq_error_t *err) {
  char gwname[32];
  const char *gref;
  if (!split_reference(fate->payment_reference, gwname, sizeof gwname, &gref))
    return mq_error_set(err, MQ_INTERNAL, "hold_id", "the hold is in payment under a reference of another kind");
  mq_pay_gateway_t *g = mq_payments_gateway(ps, gwname);
  if (!g) return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is in payment at %s", gwname);
  mq_gw_intent_t gi = {0};
  gw_args_t x = {.ref = gref, .out = &gi};
  mq_code_t rc = guarded(ps, g, do_retrieve, &x, err);
  if (rc != MQ_OK) return rc;
  snprintf(gi.ref, sizeof gi.ref, "%s", gref);
  took_t t = {g->gw->ops->name, &gi, fate->deadline_ms, trace_id};
  return write_payment(ps, p, took_change, &t, a, err);
}

/* ---- loading ---- */

/* The payment `id` for its buyer; with org_role, also for a member of the
 * event's organization with that role or stronger (and then, for
 * MQ_ORG_MANAGER, only for them: the buyer is PERMISSION_DENIED). Anyone
 * else: NOT_FOUND, as for an unknown id. */
static mq_code_t load(mq_call_t *call, const char *id, mq_payment_t *p, bool *buyer, int org_role, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "payment_id", id);
  if (rc == MQ_OK) rc = mq_payments_get(app->store, id, mq_call_arena(call), p, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "payment_id", "no such payment");
  if (rc != MQ_OK) return rc;
  *buyer = !strcmp(p->user_id, actor_of(call));
  if (!org_role) return *buyer ? MQ_OK : mq_error_set(err, MQ_NOT_FOUND, "payment_id", "no such payment");
  if (*buyer && org_role != MQ_ORG_MANAGER) {
    mq_call_authorized(call);
    return MQ_OK;
  }
  mq_error_t e2 = {0};
  rc = mq_org_require(call, p->organization_id, org_role, NULL, &e2);
  if (rc == MQ_OK) return MQ_OK;
  if (rc == MQ_NOT_FOUND && !*buyer) return mq_error_set(err, MQ_NOT_FOUND, "payment_id", "no such payment");
  if (rc == MQ_NOT_FOUND || rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "payment_id",
                        "only an owner or manager of the event's organization may do this");
  *err = e2;
  return rc;
}

/* ---- CreatePayment ---- */

static void request_hash(const Marquee__Payments__V1__CreatePaymentRequest *req, char out[65]) {
  char buf[600];
  snprintf(buf, sizeof buf, "%s|%" PRId64 "|%s|%s|%s", req->hold_id, req->amount ? req->amount->amount_minor : 0,
           req->amount && req->amount->currency ? req->amount->currency : "", req->gateway ? req->gateway : "",
           req->buyer_country ? req->buyer_country : "");
  mq_token_hash(buf, out);
}

static mq_code_t check_create(mq_call_t *call, const Marquee__Payments__V1__CreatePaymentRequest *req,
                              mq_error_t *err) {
  mq_payments_t *ps = ((mq_app_t *)mq_call_app(call))->payments;
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_uuid(err, "hold_id", req->hold_id);
  if (!req->amount) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "amount", "is required: the total the buyer was shown");
  } else {
    mq_check_currency(err, "amount.currency", req->amount->currency);
    if (req->amount->amount_minor < 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "amount.amount_minor", "must be >= 0");
  }
  if (req->gateway && *req->gateway && !mq_payments_gateway(ps, req->gateway))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "gateway", "is not a gateway this server offers");
  if (req->buyer_country && *req->buyer_country) mq_check_country(err, "buyer_country", req->buyer_country);
  if (req->idempotency_key && *req->idempotency_key)
    mq_check_text(err, "idempotency_key", req->idempotency_key, 1, 128, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  return mq_error_collected(err);
}

static mq_code_t create_with_gateway(mq_call_t *call, mq_payments_t *ps, mq_hold_t *h, mq_payment_t *p,
                                     const Marquee__Payments__V1__CreatePaymentRequest *req, mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  mq_app_t *app = ps->app;
  mq_pay_gateway_t *cands[MQ_MAX_GATEWAYS];
  size_t n = 0;
  mq_pay_settings_t st;
  mq_code_t src = mq_pay_settings_get(app->store, h->organization_id, a, &st, err);
  if (src != MQ_OK) return src;
  mq_payments_route(ps, h->currency, req->buyer_country ? req->buyer_country : "", req->gateway, st.gateways,
                    st.n_gateways, cands, &n);
  if (n == 0) {
    if (req->gateway && *req->gateway)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "gateway", "%s does not take payments in %s here", req->gateway,
                          h->currency);
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "no payment gateway takes %s on this platform",
                        h->currency);
  }
  mq_gw_intent_t gi = {0};
  mq_pay_gateway_t *took = NULL;
  mq_error_t last = {0};
  for (size_t i = 0; i < n && !took; i++) {
    char idem[120];
    snprintf(idem, sizeof idem, "%s:%s", p->id, cands[i]->gw->ops->name);
    mq_gw_intent_req_t r = {.payment_id = p->id,
                            .hold_id = h->id,
                            .amount_minor = h->total_minor,
                            .currency = h->currency,
                            .description = "Marquee tickets",
                            .buyer_country = req->buyer_country ? req->buyer_country : "",
                            .idempotency_key = idem};
    gw_args_t x = {.req = &r, .out = &gi};
    mq_error_t e = {0};
    mq_code_t rc = guarded(ps, cands[i], do_create, &x, &e);
    if (rc == MQ_OK) {
      took = cands[i];
    } else if (transient(rc)) {
      mq_log(MQ_LOG_WARN, "payments.gateway_unavailable", "payment %s: %s: %s", p->id, cands[i]->gw->ops->name,
             e.message);
      if (i + 1 < n) atomic_fetch_add(&ps->fallbacks_total, 1);
      last = e;
    } else {
      *err = e; /* the gateway's answer about the request */
      return rc;
    }
  }
  if (!took) {
    char why[sizeof last.message];
    snprintf(why, sizeof why, "%s", last.message);
    mq_error_set(err, MQ_UNAVAILABLE, NULL,
                 "no payment gateway can take this payment now (%s); nothing was charged: retry", why);
    err->retry_after_ms = 2000;
    return MQ_UNAVAILABLE;
  }
  bool manual = !strcmp(took->gw->ops->name, "manual");
  int64_t deadline =
      mq_now_unix_ms() + (manual ? app->cfg->manual_payment_window_s : app->cfg->payment_window_s) * (int64_t)1000;
  char ref[300];
  snprintf(ref, sizeof ref, "%s:%s", took->gw->ops->name, gi.ref);
  mq_error_t e2 = {0};
  mq_code_t rc = mq_bookings_start_payment(app->bookings, h, ref, deadline, actor_of(call), mq_call_trace_id(call),
                                           mq_call_request_id(call), a, &e2);
  if (rc != MQ_OK) {
    /* the hold ended, or another request put it in payment first: this
     * intent is never handed out; cancel it (best effort) */
    if (took->gw->ops->cancel) {
      mq_gw_intent_t gc = {0};
      char idem[120];
      snprintf(idem, sizeof idem, "%s:cancel-loser", p->id);
      gw_args_t x = {.ref = gi.ref, .idem = idem, .out = &gc};
      mq_error_t e3 = {0};
      guarded(ps, took, do_cancel, &x, &e3);
    }
    *err = e2;
    return rc;
  }
  took_t t = {took->gw->ops->name, &gi, h->payment_deadline_ms ? h->payment_deadline_ms : deadline,
              mq_call_trace_id(call)};
  return write_payment(ps, p, took_change, &t, a, err);
}

mq_code_t mq_payment_create_handler(mq_call_t *call, const Marquee__Payments__V1__CreatePaymentRequest *req,
                                    payment_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_payments_t *ps = app->payments;
  mq_arena_t *a = mq_call_arena(call);
  const char *user = actor_of(call);
  mq_code_t rc = check_create(call, req, err);
  if (rc != MQ_OK) return rc;
  mq_hold_t h;
  rc = mq_holds_get(app->store, req->hold_id, a, &h, err);
  if (rc == MQ_OK && strcmp(h.user_id, user)) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "hold_id", "no such hold");
  if (rc != MQ_OK) return rc;
  if (strcmp(req->amount->currency, h.currency))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount.currency", "the hold is in %s, not %s", h.currency,
                        req->amount->currency);
  if (req->amount->amount_minor != h.total_minor) {
    char want[64], got[64];
    mq_money_format(want, sizeof want, h.total_minor, h.currency);
    mq_money_format(got, sizeof got, req->amount->amount_minor, h.currency);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount.amount_minor",
                        "the hold's total is %s, not %s: show the buyer the current total and pay that", want, got);
  }
  char *pid = mq_arena_alloc(a, 37), hash[65]; /* pid outlives this frame: the reply points at it */
  mq_bookings_derived_id(h.id, "payment", pid);
  request_hash(req, hash);
  if (req->idempotency_key && *req->idempotency_key) {
    char kind[200];
    snprintf(kind, sizeof kind, "key:%s", req->idempotency_key);
    rc = mq_payment_decide(app->store, user, kind, pid, user, hash, NULL, 0, err);
    if (rc == MQ_ALREADY_EXISTS) {
      char *bound, *bound_hash;
      if ((rc = mq_payment_decision_get(app->store, user, kind, a, &bound, &bound_hash, err)) != MQ_OK) return rc;
      if (strcmp(bound, pid) || strcmp(bound_hash, hash))
        return mq_error_set(err, MQ_INVALID_ARGUMENT, "idempotency_key",
                            "was used for another request with other parameters; use a new key");
    } else if (rc != MQ_OK) {
      return rc;
    }
  }
  mq_payment_t p;
  rc = mq_payments_get(app->store, pid, a, &p, err);
  if (rc == MQ_NOT_FOUND) {
    memset(&p, 0, sizeof p);
    p.id = pid;
    p.hold_id = h.id;
    p.event_id = h.event_id;
    p.organization_id = h.organization_id;
    p.user_id = h.user_id;
    p.currency = h.currency;
    p.amount_minor = h.total_minor;
    p.gateway = p.gateway_ref = p.client_secret = p.instructions = p.failure_reason = p.booking_id = (char *)"";
    p.request_hash = hash;
    p.created_ms = mq_now_unix_ms();
    p.deadline_ms = h.expires_ms; /* until a gateway takes it, the hold's own expiry */
    p.version = 1;
    mq_payment_step(&p, a, MQ_PAY_PENDING, NULL, "api", p.created_ms);
    rc = mq_payments_insert(app->store, &p, NULL, 0, err);
    if (rc == MQ_ALREADY_EXISTS) rc = mq_payments_get(app->store, pid, a, &p, err);
  }
  if (rc != MQ_OK) return rc;
  if (req->gateway && *req->gateway && p.gateway[0] && strcmp(req->gateway, p.gateway))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "gateway", "this hold is already being paid through %s",
                        p.gateway);
  if (!mq_payment_state_final(p.state)) {
    mq_decision_t fate;
    rc = mq_decision_get(app->store, h.id, "fate", a, &fate, err);
    if (rc == MQ_OK && !strcmp(fate.outcome, "payment")) {
      if (!p.gateway_ref[0] && (rc = repair(ps, &p, &fate, mq_call_trace_id(call), a, err)) != MQ_OK) return rc;
    } else if (rc == MQ_OK && !strcmp(fate.outcome, "confirmed")) {
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is already confirmed");
    } else if (rc == MQ_OK) {
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold is %s; make a new one", fate.outcome);
    } else if (rc != MQ_NOT_FOUND) {
      return rc;
    } else if (mq_now_unix_ms() >= h.expires_ms) {
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "hold_id", "the hold has expired; make a new one");
    } else if (h.total_minor == 0) {
      /* the free gateway: confirmed at once */
      mq_booking_t bk;
      if ((rc = mq_bookings_confirm_free(app->bookings, &h, user, mq_call_trace_id(call), a, &bk, err)) != MQ_OK)
        return rc;
      mq_gw_intent_t gi = {.status = MQ_GW_SUCCEEDED};
      snprintf(gi.ref, sizeof gi.ref, "free-%s", p.id);
      took_t t = {"free", &gi, 0, mq_call_trace_id(call)};
      if ((rc = write_payment(ps, &p, took_change, &t, a, err)) != MQ_OK) return rc;
      mq_event_t ev;
      succeeded_event(&ev, a, &p, p.hold_id, user, mq_call_trace_id(call));
      rc = mq_payment_decide(app->store, p.id, "outcome", "succeeded", user, "", &ev, 1, err);
      if (rc != MQ_OK && rc != MQ_ALREADY_EXISTS) return rc;
      final_t f = {"succeeded", "", "api"};
      if ((rc = write_payment(ps, &p, final_change, &f, a, err)) != MQ_OK) return rc;
    } else if ((rc = create_with_gateway(call, ps, &h, &p, req, err)) != MQ_OK) {
      if (rc != MQ_FAILED_PRECONDITION) return rc;
      /* lost the hold to a concurrent CreatePayment? then answer with its payment */
      mq_error_t e2 = {0};
      mq_decision_t f2;
      if (mq_decision_get(app->store, h.id, "fate", a, &f2, &e2) != MQ_OK || strcmp(f2.outcome, "payment")) return rc;
      if ((rc = mq_payments_get(app->store, pid, a, &p, err)) != MQ_OK) return rc;
      if (!p.gateway_ref[0] && (rc = repair(ps, &p, &f2, mq_call_trace_id(call), a, err)) != MQ_OK) return rc;
    }
  }
  *resp = *payment_view(a, &p, true, NULL, 0);
  return MQ_OK;
}

/* ---- GetPayment, ConfirmPayment, CancelPayment, MarkPaymentReceived ---- */

mq_code_t mq_payment_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetPaymentRequest *req, payment_pb *resp,
                                 mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_payment_t p;
  bool buyer;
  mq_code_t rc = load(call, req->payment_id, &p, &buyer, MQ_ORG_CHECKIN, err);
  if (rc != MQ_OK) return rc;
  mq_refund_t *r;
  size_t n;
  if ((rc = mq_refunds_of(app->store, p.id, a, &r, &n, err)) != MQ_OK) return rc;
  *resp = *payment_view(a, &p, buyer, r, n);
  return MQ_OK;
}

mq_code_t mq_payment_confirm_handler(mq_call_t *call, const Marquee__Payments__V1__ConfirmPaymentRequest *req,
                                     payment_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_payments_t *ps = app->payments;
  mq_arena_t *a = mq_call_arena(call);
  mq_payment_t p;
  bool buyer;
  mq_code_t rc = load(call, req->payment_id, &p, &buyer, 0, err);
  if (rc != MQ_OK) return rc;
  if (!mq_payment_state_final(p.state)) {
    if (!p.gateway_ref[0]) {
      mq_decision_t fate;
      rc = mq_decision_get(app->store, p.hold_id, "fate", a, &fate, err);
      if (rc == MQ_OK && !strcmp(fate.outcome, "payment"))
        rc = repair(ps, &p, &fate, mq_call_trace_id(call), a, err);
      else if (rc == MQ_OK || rc == MQ_NOT_FOUND)
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                            "no gateway has taken this payment yet: call CreatePayment again");
      if (rc != MQ_OK) return rc;
    }
    mq_pay_gateway_t *g;
    if ((rc = gw_of(ps, &p, &g, err)) != MQ_OK) return rc;
    mq_gw_intent_t gi = {0};
    gw_args_t x = {.ref = p.gateway_ref, .out = &gi};
    if ((rc = guarded(ps, g, do_retrieve, &x, err)) != MQ_OK) return rc;
    rc = mq_payments_apply(ps, &p, &gi, "api", actor_of(call), mq_call_trace_id(call), a, err);
    if (rc != MQ_OK) return rc;
  } else if ((rc = settle(ps, &p, "api", mq_call_trace_id(call), a, err)) != MQ_OK) {
    return rc;
  }
  if ((rc = mq_payments_get(app->store, p.id, a, &p, err)) != MQ_OK) return rc;
  *resp = *payment_view(a, &p, true, NULL, 0);
  return MQ_OK;
}

mq_code_t mq_payment_cancel_handler(mq_call_t *call, const Marquee__Payments__V1__CancelPaymentRequest *req,
                                    payment_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_payment_t p;
  bool buyer;
  mq_code_t rc = load(call, req->payment_id, &p, &buyer, 0, err);
  if (rc != MQ_OK) return rc;
  if (paid(&p))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                        "the payment succeeded: cancel the booking, or ask the organizer for a refund");
  if (strcmp(p.state, MQ_PAY_CANCELLED)) {
    rc = cancel_payment(app->payments, &p, "cancelled by the buyer", "api", actor_of(call), mq_call_trace_id(call), a,
                        err);
    if (rc != MQ_OK) return rc;
    if ((rc = mq_payments_get(app->store, p.id, a, &p, err)) != MQ_OK) return rc;
    if (paid(&p))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                          "the payment succeeded before it could be cancelled: the booking is confirmed");
  }
  *resp = *payment_view(a, &p, true, NULL, 0);
  return MQ_OK;
}

mq_code_t mq_payment_mark_received_handler(mq_call_t *call,
                                           const Marquee__Payments__V1__MarkPaymentReceivedRequest *req,
                                           payment_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err);
  mq_check_uuid(err, "payment_id", req->payment_id);
  if (req->note && *req->note) mq_check_text(err, "note", req->note, 0, 500, MQ_TEXT_MULTILINE);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  mq_payment_t p;
  bool buyer;
  if ((rc = load(call, req->payment_id, &p, &buyer, MQ_ORG_MANAGER, err)) != MQ_OK) return rc;
  if (strcmp(p.gateway, "manual"))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                        "only a manual payment is marked received; this one is paid through %s",
                        p.gateway[0] ? p.gateway : "no gateway yet");
  if (!strcmp(p.state, MQ_PAY_CANCELLED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                        "the payment was cancelled (its deadline passed or the buyer cancelled): the tickets went "
                        "back on sale; refund the money the way it came");
  if (!paid(&p)) {
    rc = succeed(app->payments, &p, "organizer", actor_of(call), mq_call_trace_id(call), a, err);
    if (rc != MQ_OK) return rc;
    if ((rc = mq_payments_get(app->store, p.id, a, &p, err)) != MQ_OK) return rc;
  }
  *resp = *payment_view(a, &p, buyer, NULL, 0);
  return MQ_OK;
}

/* ---- refunds ---- */

/* Sum of the ledger's refunds that did not fail, and of those that
 * succeeded. */
static void ledger_sums(const mq_refund_t *r, size_t n, int64_t *taken, int64_t *done) {
  *taken = *done = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(r[i].state, "failed")) *taken += r[i].amount_minor;
    if (!strcmp(r[i].state, "succeeded")) *done += r[i].amount_minor;
  }
}

typedef struct {
  int64_t refunded;
} refunded_t;

static bool refunded_change(mq_payment_t *p, void *arg, mq_arena_t *a, mq_event_t *evs, size_t *n) {
  (void)evs, (void)n;
  refunded_t *r = arg;
  /* succeeded refunds never un-succeed: the sum only grows, and a writer that
   * read the ledger earlier must not lower what a later one wrote */
  if (p->refunded_minor >= r->refunded) return false;
  p->refunded_minor = r->refunded;
  const char *st = r->refunded >= p->amount_minor ? MQ_PAY_REFUNDED
                   : r->refunded > 0              ? MQ_PAY_PARTIALLY_REFUNDED
                                                  : MQ_PAY_SUCCEEDED;
  if (strcmp(st, p->state)) mq_payment_step(p, a, st, NULL, "refund", mq_now_unix_ms());
  p->updated_ms = mq_now_unix_ms();
  return true;
}

static mq_code_t sync_refunded(mq_payments_t *ps, mq_payment_t *p, mq_arena_t *a, mq_error_t *err) {
  mq_refund_t *r;
  size_t n;
  mq_code_t rc = mq_refunds_of(ps->app->store, p->id, a, &r, &n, err);
  if (rc != MQ_OK) return rc;
  int64_t taken, done;
  ledger_sums(r, n, &taken, &done);
  refunded_t x = {done};
  return write_payment(ps, p, refunded_change, &x, a, err);
}

/* The gateway's answer about refund *r: state, event, the payment's sum. */
static mq_code_t refund_outcome(mq_payments_t *ps, mq_payment_t *p, mq_refund_t *r, const mq_gw_refund_t *gr,
                                mq_arena_t *a, mq_error_t *err) {
  const char *state = gr->status == MQ_GW_SUCCEEDED ? "succeeded" : gr->status == MQ_GW_FAILED ? "failed" : "pending";
  if (!strcmp(state, r->state) && !strcmp(state, "pending")) return MQ_OK;
  if (!strcmp(r->state, "succeeded") || !strcmp(r->state, "failed")) return sync_refunded(ps, p, a, err);
  mq_event_t ev;
  size_t n = 0;
  if (!strcmp(state, "succeeded")) {
    Marquee__Events__V1__RefundIssued *e = mq_arena_alloc(a, sizeof *e);
    marquee__events__v1__refund_issued__init(e);
    e->refund_id = r->id;
    e->payment_id = p->id;
    e->booking_id = p->booking_id;
    e->event_id = p->event_id;
    e->organization_id = p->organization_id;
    e->user_id = p->user_id;
    e->amount_minor = r->amount_minor;
    e->currency = r->currency;
    e->refunded_total_minor = r->total_after;
    e->reason = r->reason;
    e->sequence = r->sequence;
    payment_event(&ev, "payments.RefundIssued", p->id, r->requested_by, NULL);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFUND_ISSUED;
    ev.env.refund_issued = e;
    n = 1;
  } else if (!strcmp(state, "failed")) {
    Marquee__Events__V1__RefundFailed *e = mq_arena_alloc(a, sizeof *e);
    marquee__events__v1__refund_failed__init(e);
    e->refund_id = r->id;
    e->payment_id = p->id;
    e->user_id = p->user_id;
    e->amount_minor = r->amount_minor;
    e->currency = r->currency;
    e->reason = (char *)(gr->failure[0] ? gr->failure : "refused by the gateway");
    payment_event(&ev, "payments.RefundFailed", p->id, r->requested_by, NULL);
    ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFUND_FAILED;
    ev.env.refund_failed = e;
    n = 1;
  }
  mq_code_t rc = mq_refund_set_state(ps->app->store, r->id, state, gr->ref[0] ? gr->ref : NULL, NULL, &ev, n, err);
  if (rc != MQ_OK) return rc;
  r->state = (char *)state;
  if (gr->ref[0]) r->gateway_ref = mq_arena_strdup(a, gr->ref);
  if ((rc = sync_refunded(ps, p, a, err)) != MQ_OK) return rc;
  if (!strcmp(state, "succeeded")) { /* its credit note (best effort: GetReceipt issues it otherwise) */
    mq_receipt_t cn;
    mq_error_t e2 = {0};
    if (mq_credit_note_for_refund(ps, p, r, a, &cn, &e2) != MQ_OK)
      mq_log(MQ_LOG_WARN, "payments.credit_note_failed", "refund %s: %s (issued on request)", r->id, e2.message);
  }
  return MQ_OK;
}

/* Declared in payments.h. */
mq_code_t mq_payments_refund_update(mq_payments_t *ps, mq_payment_t *p, const mq_gw_refund_t *gr, mq_arena_t *a,
                                    mq_error_t *err) {
  mq_refund_t *r;
  size_t n;
  mq_code_t rc = mq_refunds_of(ps->app->store, p->id, a, &r, &n, err);
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < n; i++)
    if (r[i].gateway_ref && !strcmp(r[i].gateway_ref, gr->ref)) return refund_outcome(ps, p, &r[i], gr, a, err);
  return MQ_OK; /* not one of ours (made in the gateway's dashboard): nothing to record */
}

/* Takes the next place in the ledger for `amount` (0: all that remains) and
 * asks the gateway. *out is the refund as it stands. */
static mq_code_t refund(mq_payments_t *ps, mq_payment_t *p, int64_t amount, const char *reason, const char *by,
                        const char *key, mq_arena_t *a, mq_refund_t *out, mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  mq_refund_t *r = NULL;
  mq_code_t rc = MQ_ABORTED;
  for (int attempt = 0; attempt < UPDATE_TRIES; attempt++) {
    mq_refund_t *ledger;
    size_t n;
    if ((rc = mq_refunds_of(s, p->id, a, &ledger, &n, err)) != MQ_OK) return rc;
    for (size_t i = 0; key && *key && i < n; i++)
      if (!strcmp(ledger[i].idempotency_key, key)) {
        if (amount && ledger[i].amount_minor != amount)
          return mq_error_set(err, MQ_INVALID_ARGUMENT, "idempotency_key",
                              "was used for a refund of another amount; use a new key");
        r = &ledger[i];
        break;
      }
    if (r) break;
    int64_t taken, done;
    ledger_sums(ledger, n, &taken, &done);
    int64_t left = p->amount_minor - taken;
    int64_t want = amount ? amount : left;
    if (want <= 0 || want > left) {
      char l[64];
      mq_money_format(l, sizeof l, left, p->currency);
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "amount.amount_minor", "at most %s remains to refund", l);
    }
    mq_refund_t nr = {0};
    uint32_t seq = n ? ledger[n - 1].sequence + 1 : 1;
    nr.id = mq_arena_sprintf(a, "%s:%u", p->id, seq);
    nr.payment_id = p->id;
    nr.sequence = seq;
    nr.amount_minor = want;
    nr.total_after = taken + want;
    nr.currency = p->currency;
    nr.state = (char *)"pending";
    nr.reason = (char *)(reason ? reason : "");
    nr.gateway_ref = (char *)"";
    nr.requested_by = (char *)by;
    nr.idempotency_key = (char *)(key ? key : "");
    nr.created_ms = mq_now_unix_ms();
    rc = mq_refund_insert(s, &nr, NULL, 0, err);
    if (rc == MQ_ALREADY_EXISTS) continue; /* a racing refund took this place: read the ledger again */
    if (rc != MQ_OK) return rc;
    r = mq_arena_alloc(a, sizeof *r);
    *r = nr;
    break;
  }
  if (!r) return mq_error_set(err, MQ_ABORTED, "payment_id", "refunds are racing for this payment; retry");
  *out = *r;
  if (strcmp(r->state, "pending")) return MQ_OK;
  mq_pay_gateway_t *g;
  if ((rc = gw_of(ps, p, &g, err)) != MQ_OK) return rc;
  mq_gw_refund_t gr = {0};
  gw_args_t x = {
      .ref = p->gateway_ref, .idem = r->id, .amount = r->amount_minor, .currency = p->currency, .refund = &gr};
  mq_error_t e2 = {0};
  rc = guarded(ps, g, do_refund, &x, &e2);
  if (transient(rc)) { /* stays pending; a retry with the same key asks again */
    *err = e2;
    return rc;
  }
  if (rc != MQ_OK) {
    memset(&gr, 0, sizeof gr);
    gr.status = MQ_GW_FAILED;
    snprintf(gr.failure, sizeof gr.failure, "%s", e2.message);
  }
  if ((rc = refund_outcome(ps, p, out, &gr, a, err)) != MQ_OK) return rc;
  return MQ_OK;
}

static mq_code_t refund_all(mq_payments_t *ps, mq_payment_t *p, const char *reason, mq_arena_t *a, mq_refund_t *out,
                            mq_error_t *err) {
  return refund(ps, p, 0, reason, "system", "auto-refund", a, out, err);
}

mq_code_t mq_payment_refund_handler(mq_call_t *call, const Marquee__Payments__V1__RefundPaymentRequest *req,
                                    Marquee__Payments__V1__Refund *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err);
  mq_check_uuid(err, "payment_id", req->payment_id);
  if (req->amount) {
    if (req->amount->amount_minor <= 0)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "amount.amount_minor", "must be > 0 (leave amount unset to refund all)");
    mq_check_currency(err, "amount.currency", req->amount->currency);
  }
  if (req->reason && *req->reason) mq_check_text(err, "reason", req->reason, 0, 500, MQ_TEXT_MULTILINE);
  if (req->idempotency_key && *req->idempotency_key)
    mq_check_text(err, "idempotency_key", req->idempotency_key, 1, 128, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  mq_payment_t p;
  bool buyer;
  if ((rc = load(call, req->payment_id, &p, &buyer, MQ_ORG_MANAGER, err)) != MQ_OK) return rc;
  if (req->amount && strcmp(req->amount->currency, p.currency))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "amount.currency", "the payment is in %s", p.currency);
  if (!paid(&p))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id", "the payment is %s: nothing was paid to refund",
                        p.state);
  mq_refund_t r;
  rc = refund(app->payments, &p, req->amount ? req->amount->amount_minor : 0, req->reason, actor_of(call),
              req->idempotency_key, a, &r, err);
  if (rc != MQ_OK) return rc;
  *resp = *refund_view(a, &r);
  return MQ_OK;
}

/* Declared in payments.h. */
mq_code_t mq_payments_refund_booking(mq_app_t *app, const char *booking_id, const char *reason, mq_error_t *err) {
  mq_payments_t *ps = app->payments;
  mq_arena_t a;
  mq_arena_init(&a);
  char pid[37];
  mq_bookings_derived_id(booking_id, "payment", pid);
  mq_payment_t p;
  mq_code_t rc = mq_payments_get(app->store, pid, &a, &p, err);
  if (rc == MQ_NOT_FOUND || (rc == MQ_OK && (!paid(&p) || p.refunded_minor >= p.amount_minor))) {
    mq_arena_release(&a); /* paid some other way, never paid, or already refunded */
    return MQ_OK;
  }
  if (rc == MQ_OK) {
    mq_refund_t r;
    mq_error_t e2 = {0};
    const char *why = reason && *reason ? mq_arena_sprintf(&a, "booking cancelled: %s", reason) : "booking cancelled";
    rc = refund(ps, &p, 0, why, "system", "booking-cancelled", &a, &r, &e2);
    if (rc == MQ_FAILED_PRECONDITION) { /* nothing left to refund, or the gateway refused (RefundFailed is out) */
      mq_log(MQ_LOG_WARN, "payments.cancel_refund_refused", "payment %s: %s", p.id, e2.message);
      rc = MQ_OK;
    } else if (rc != MQ_OK) {
      *err = e2;
    }
  }
  mq_arena_release(&a);
  return rc;
}

/* ---- lists ---- */

static mq_code_t list(mq_call_t *call, const ProtobufCMessage *req, const char *user, const char *event_id,
                      const char *state, const char *gateway, uint32_t page_size, const char *token,
                      Marquee__Payments__V1__ListPaymentsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_store_page_t pg = {.key = "created_at", .desc = true};
  mq_code_t rc = mq_check_page_size(err, "page_size", page_size, PAGE_DEFAULT, PAGE_MAX, &pg.limit);
  if (rc == MQ_OK)
    rc = mq_page_token_read_key(a, req, "page_token", token, &pg.has_cursor, &pg.after_ms, &pg.after_id, err);
  if (rc != MQ_OK) return rc;
  mq_payment_t *v;
  size_t n;
  if ((rc = mq_payments_list(app->store, user, event_id, state, gateway, &pg, a, &v, &n, err)) != MQ_OK) return rc;
  resp->payments = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->payments);
  for (size_t i = 0; i < n; i++) resp->payments[resp->n_payments++] = payment_view(a, &v[i], false, NULL, 0);
  resp->next_page_token = (char *)"";
  if (n == pg.limit && n) resp->next_page_token = mq_page_token_make_key(a, req, v[n - 1].created_ms, v[n - 1].id);
  return MQ_OK;
}

mq_code_t mq_payment_list_mine_handler(mq_call_t *call, const Marquee__Payments__V1__ListMyPaymentsRequest *req,
                                       Marquee__Payments__V1__ListPaymentsResponse *resp, mq_error_t *err) {
  return list(call, &req->base, actor_of(call), NULL, NULL, NULL, req->page_size, req->page_token, resp, err);
}

mq_code_t mq_payment_list_event_handler(mq_call_t *call, const Marquee__Payments__V1__ListEventPaymentsRequest *req,
                                        Marquee__Payments__V1__ListPaymentsResponse *resp, mq_error_t *err) {
  mq_payments_t *ps = ((mq_app_t *)mq_call_app(call))->payments;
  mq_error_collect(err);
  mq_check_uuid(err, "event_id", req->event_id);
  if (req->state) mq_check_enum(err, "state", (int)req->state, &marquee__payments__v1__payment_state__descriptor, true);
  if (req->gateway && *req->gateway && !mq_payments_gateway(ps, req->gateway))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "gateway", "is not a gateway this server offers");
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  Marquee__Catalog__V1__Event *e;
  if ((rc = mq_bookings_event_for_member(call, req->event_id, MQ_ORG_MANAGER, &e, err)) != MQ_OK) return rc;
  return list(call, &req->base, NULL, e->event_id, req->state ? state_name((int)req->state) : NULL, req->gateway,
              req->page_size, req->page_token, resp, err);
}

/* ---- the sweeper ---- */

/* Declared in payments.h. */
void mq_payments_sweep(mq_payments_t *ps) {
  mq_app_t *app = ps->app;
  if (!mq_app_store_ready(app)) return;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_payment_t *due;
  size_t n = 0;
  mq_error_t err = {0};
  if (mq_payments_due(app->store, mq_now_unix_ms(), 50, &a, &due, &n, &err) != MQ_OK) {
    mq_log(MQ_LOG_WARN, "payments.sweep_failed", "%s", err.message);
    n = 0;
  }
  for (size_t i = 0; i < n; i++) {
    mq_payment_t *p = &due[i];
    mq_error_t e = {0};
    mq_code_t rc = MQ_OK;
    mq_decision_t fate;
    if (!p->gateway_ref[0] && mq_decision_get(app->store, p->hold_id, "fate", &a, &fate, &e) == MQ_OK &&
        !strcmp(fate.outcome, "payment"))
      rc = repair(ps, p, &fate, NULL, &a, &e);
    if (rc == MQ_OK) rc = cancel_payment(ps, p, "deadline", "sweeper", "system", NULL, &a, &e);
    if (rc != MQ_OK) mq_log(MQ_LOG_WARN, "payments.sweep_payment_failed", "payment %s: %s", p->id, e.message);
  }
  mq_arena_release(&a);
}
