/*
 * payment_service.c — marquee.payments.v1.PaymentService: its one method
 * table (who may call each method, and which function answers it). The
 * methods live in payments.c; grep a method's name here to find it.
 */
#include "handlers/payments/payments.h"
#include "marquee/payments/v1/payments.mq-server.h"

static const marquee__payments__v1__payment_service_handlers_t handlers = {
    .create_payment = {mq_payment_create_handler, MQ_POLICY_AUTHENTICATED, 0},
    .get_payment = {mq_payment_get_handler, MQ_POLICY_RESOURCE, 0},
    .confirm_payment = {mq_payment_confirm_handler, MQ_POLICY_AUTHENTICATED, 0},
    .cancel_payment = {mq_payment_cancel_handler, MQ_POLICY_AUTHENTICATED, 0},
    .mark_payment_received = {mq_payment_mark_received_handler, MQ_POLICY_RESOURCE, 0},
    .refund_payment = {mq_payment_refund_handler, MQ_POLICY_RESOURCE, 0},
    .list_my_payments = {mq_payment_list_mine_handler, MQ_POLICY_AUTHENTICATED, 0},
    .list_event_payments = {mq_payment_list_event_handler, MQ_POLICY_RESOURCE, 0},
    .get_receipt = {mq_receipt_get_handler, MQ_POLICY_RESOURCE, 0},
    .get_receipt_pdf = {mq_receipt_pdf_handler, MQ_POLICY_RESOURCE, 0},
    .get_payment_settings = {mq_payment_settings_get_handler, MQ_POLICY_RESOURCE, 0},
    .update_payment_settings = {mq_payment_settings_update_handler, MQ_POLICY_RESOURCE, 0},
};

int payment_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__payments__v1__payment_service__mq_register(srv, &handlers);
}
