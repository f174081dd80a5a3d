/*
 * payments.h — what the payments module's files share: the module state
 * (gateways, their circuit breakers, the routes, the sweeper), the
 * payment flow's steps that the RPCs, the webhook route and the sweeper all
 * use, and the handlers of marquee.payments.v1.PaymentService.
 *
 * Invariants of the flow (payments.c):
 *   P1 A payment's id is derived from its hold's: one hold, one payment.
 *   P2 The hold enters payment under exactly one "<gateway>:<gateway id>"
 *      reference (the bookings decision "<hold>:fate"); a concurrent
 *      CreatePayment that made another intent loses that decision, cancels
 *      its intent and returns the winner. Only the winner's client secret
 *      is handed out: one hold is never charged on two gateways.
 *   P3 The hold's decision "<hold>:payment" (succeeded, failed or timeout)
 *      is the payment's truth; the payment's own outcome record
 *      ("<payment>:outcome": succeeded or cancelled, with its event) and
 *      its document follow it, and whoever finds them behind catches them
 *      up (settle): a retry, a redelivered webhook, the sweeper.
 *   P4 Money taken for a hold that was released first (the payment window
 *      closed) books the same tickets again when they are still there (a
 *      new hold, the booking under its id), else is refunded in full.
 *   P5 Gateway calls go through the gateway's bulkhead and circuit
 *      breaker, and a transient failure is retried once after a jittered
 *      backoff (every mutating call carries its idempotency key, so a retry
 *      cannot charge or refund twice); only CreatePayment then falls back
 *      to the next gateway (nothing was charged yet); every other call goes
 *      to the payment's gateway.
 */
#ifndef MQ_PAYMENTS_H
#define MQ_PAYMENTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "handlers/mq_route.h"
#include "handlers/payments/gateway.h"
#include "lib/mq_breaker.h"
#include "marquee/payments/v1/payments.pb-c.h"
#include "store/payments/payments_store.h"

#define MQ_PAYMENTS_TOPIC "marquee.payments"
#define MQ_MAX_GATEWAYS 8
#define MQ_MAX_ROUTES 32

typedef struct mq_pay_gateway {
  mq_gateway_t *gw;
  mq_breaker_t *breaker;
} mq_pay_gateway_t;

typedef struct mq_pay_route {
  char currency[4];        /* "*" for any */
  int gw[MQ_MAX_GATEWAYS]; /* indexes into gateways[], in order */
  size_t n;
} mq_pay_route_t;

typedef struct mq_payments {
  mq_app_t *app;
  mq_pay_gateway_t gateways[MQ_MAX_GATEWAYS];
  size_t n_gateways;
  mq_pay_route_t routes[MQ_MAX_ROUTES];
  size_t n_routes;
  _Atomic long long webhooks_total, webhook_duplicates_total, webhooks_rejected_total, fallbacks_total,
      auto_refunds_total, retries_total, late_rebooked_total;
  pthread_t sweeper;
  bool running, stop;
  int64_t fx_due_ms; /* sweeper thread only: the next fetch of MARQUEE_FX_RATES_URL */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} mq_payments_t;

mq_code_t mq_payments_open(mq_app_t *app, mq_error_t *err);
mq_code_t mq_payments_start(mq_app_t *app, mq_error_t *err);
void mq_payments_stop(mq_app_t *app);
void mq_payments_close(mq_app_t *app);

/* The gateway named `name`, or NULL. */
mq_pay_gateway_t *mq_payments_gateway(mq_payments_t *ps, const char *name);
/* The gateways that may take a payment in `currency`, best first: the
 * route's, in the organization's order when it gave one (org_order, only
 * those), `prefer` alone when set. *n = 0: none. */
void mq_payments_route(mq_payments_t *ps, const char *currency, const char *country, const char *prefer,
                       char *const *org_order, size_t n_org, mq_pay_gateway_t **out, size_t *n);

/* Applies what the payment's gateway says about it (ConfirmPayment, a
 * webhook, the sweeper): a success confirms the booking, a cancellation
 * releases the hold, a decline is recorded. `source` goes in the history.
 * *p is re-read. */
mq_code_t mq_payments_apply(mq_payments_t *ps, mq_payment_t *p, const mq_gw_intent_t *gi, const char *source,
                            const char *actor, const char *trace_id, mq_arena_t *a, mq_error_t *err);
/* A refund's new state from its gateway (a webhook). */
mq_code_t mq_payments_refund_update(mq_payments_t *ps, mq_payment_t *p, const mq_gw_refund_t *gr, mq_arena_t *a,
                                    mq_error_t *err);
/* app->refund_booking: refunds all that remains of a cancelled booking's
 * payment (key "booking-cancelled": once, whoever calls). */
mq_code_t mq_payments_refund_booking(mq_app_t *app, const char *booking_id, const char *reason, mq_error_t *err);
/* Ends payments past their deadline (the sweeper thread; tests). */
void mq_payments_sweep(mq_payments_t *ps);

/* The side-port route /webhooks/<gateway> (webhooks.c). */
void mq_payments_routes(mq_app_t *app, mq_http_t *http);

/* PaymentService (payments.c). */
mq_code_t mq_payment_create_handler(mq_call_t *call, const Marquee__Payments__V1__CreatePaymentRequest *req,
                                    Marquee__Payments__V1__Payment *resp, mq_error_t *err);
mq_code_t mq_payment_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetPaymentRequest *req,
                                 Marquee__Payments__V1__Payment *resp, mq_error_t *err);
mq_code_t mq_payment_confirm_handler(mq_call_t *call, const Marquee__Payments__V1__ConfirmPaymentRequest *req,
                                     Marquee__Payments__V1__Payment *resp, mq_error_t *err);
mq_code_t mq_payment_cancel_handler(mq_call_t *call, const Marquee__Payments__V1__CancelPaymentRequest *req,
                                    Marquee__Payments__V1__Payment *resp, mq_error_t *err);
mq_code_t mq_payment_mark_received_handler(mq_call_t *call,
                                           const Marquee__Payments__V1__MarkPaymentReceivedRequest *req,
                                           Marquee__Payments__V1__Payment *resp, mq_error_t *err);
mq_code_t mq_payment_refund_handler(mq_call_t *call, const Marquee__Payments__V1__RefundPaymentRequest *req,
                                    Marquee__Payments__V1__Refund *resp, mq_error_t *err);
mq_code_t mq_payment_list_mine_handler(mq_call_t *call, const Marquee__Payments__V1__ListMyPaymentsRequest *req,
                                       Marquee__Payments__V1__ListPaymentsResponse *resp, mq_error_t *err);
mq_code_t mq_payment_list_event_handler(mq_call_t *call, const Marquee__Payments__V1__ListEventPaymentsRequest *req,
                                        Marquee__Payments__V1__ListPaymentsResponse *resp, mq_error_t *err);
mq_code_t mq_payment_settings_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetPaymentSettingsRequest *req,
                                          Marquee__Payments__V1__PaymentSettings *resp, mq_error_t *err);
mq_code_t mq_payment_settings_update_handler(mq_call_t *call,
                                             const Marquee__Payments__V1__UpdatePaymentSettingsRequest *req,
                                             Marquee__Payments__V1__PaymentSettings *resp, mq_error_t *err);
/* This server's cached pricing of the organization is dropped at once
 * (other servers drop theirs on PaymentSettingsChanged). */
void mq_payments_settings_changed(mq_app_t *app, const char *org_id);
/* Receipts (receipts.c): the payment's receipt, or the refund's credit
 * note, issued once (idempotent; numbers without gaps). */
mq_code_t mq_receipt_for_payment(mq_payments_t *ps, const mq_payment_t *p, mq_arena_t *a, mq_receipt_t *out,
                                 mq_error_t *err);
mq_code_t mq_credit_note_for_refund(mq_payments_t *ps, const mq_payment_t *p, const mq_refund_t *refund, mq_arena_t *a,
                                    mq_receipt_t *out, mq_error_t *err);
mq_code_t mq_receipt_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetReceiptRequest *req,
                                 Marquee__Payments__V1__GetReceiptResponse *resp, mq_error_t *err);
mq_code_t mq_receipt_pdf_handler(mq_call_t *call, const Marquee__Payments__V1__GetReceiptPdfRequest *req,
                                 Marquee__Payments__V1__ReceiptFile *resp, mq_error_t *err);
void mq_receipts_routes(mq_app_t *app, mq_http_t *http);
int payment_service_register(mq_app_t *app, mq_server_t *srv);

#endif
