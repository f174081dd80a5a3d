/*
 * webhook_service.c — marquee.notifications.v1.WebhookService: its one method
 * table (who may call each method, and which function answers it). The
 * methods live in webhooks.c.
 */
#include "handlers/notifications/notifications.h"
#include "marquee/notifications/v1/webhooks.mq-server.h"

static const marquee__notifications__v1__webhook_service_handlers_t handlers = {
    .create_webhook_endpoint = {mq_webhook_create_handler, MQ_POLICY_RESOURCE, 0},
    .list_webhook_endpoints = {mq_webhook_list_handler, MQ_POLICY_RESOURCE, 0},
    .update_webhook_endpoint = {mq_webhook_update_handler, MQ_POLICY_RESOURCE, 0},
    .delete_webhook_endpoint = {mq_webhook_delete_handler, MQ_POLICY_RESOURCE, 0},
    .rotate_webhook_secret = {mq_webhook_rotate_handler, MQ_POLICY_RESOURCE, 0},
    .list_webhook_deliveries = {mq_webhook_deliveries_handler, MQ_POLICY_RESOURCE, 0},
    .get_webhook_delivery = {mq_webhook_delivery_handler, MQ_POLICY_RESOURCE, 0},
    .redeliver_webhook = {mq_webhook_redeliver_handler, MQ_POLICY_RESOURCE, 0},
    .list_webhook_event_types = {mq_webhook_types_handler, MQ_POLICY_AUTHENTICATED, 0},
};

int webhook_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__notifications__v1__webhook_service__mq_register(srv, &handlers);
}
