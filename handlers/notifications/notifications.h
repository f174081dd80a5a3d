/*
 * notifications.h — the notifications module's handlers: WebhookService
 * (webhooks.c; its method table in webhook_service.c). The deliveries
 * themselves are made by marquee-webhooks (consumers/webhooks).
 */
#ifndef MQ_NOTIFICATIONS_H
#define MQ_NOTIFICATIONS_H

#include "handlers/mq_call.h"
#include "handlers/mq_module.h"
#include "marquee/notifications/v1/webhooks.pb-c.h"

#define MQ_NOTIFICATIONS_TOPIC "marquee.notifications"
#define MQ_WEBHOOK_ENDPOINTS_MAX 20

int webhook_service_register(mq_app_t *app, mq_server_t *srv);

mq_code_t mq_webhook_create_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__CreateWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpointWithSecret *resp, mq_error_t *err);
mq_code_t mq_webhook_list_handler(mq_call_t *call, const Marquee__Notifications__V1__ListWebhookEndpointsRequest *req,
                                  Marquee__Notifications__V1__ListWebhookEndpointsResponse *resp, mq_error_t *err);
mq_code_t mq_webhook_update_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__UpdateWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpoint *resp, mq_error_t *err);
mq_code_t mq_webhook_delete_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__DeleteWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__DeleteWebhookEndpointResponse *resp, mq_error_t *err);
mq_code_t mq_webhook_rotate_handler(mq_call_t *call, const Marquee__Notifications__V1__RotateWebhookSecretRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpointWithSecret *resp, mq_error_t *err);
mq_code_t mq_webhook_deliveries_handler(mq_call_t *call,
                                        const Marquee__Notifications__V1__ListWebhookDeliveriesRequest *req,
                                        Marquee__Notifications__V1__ListWebhookDeliveriesResponse *resp,
                                        mq_error_t *err);
mq_code_t mq_webhook_delivery_handler(mq_call_t *call, const Marquee__Notifications__V1__GetWebhookDeliveryRequest *req,
                                      Marquee__Notifications__V1__WebhookDelivery *resp, mq_error_t *err);
mq_code_t mq_webhook_redeliver_handler(mq_call_t *call, const Marquee__Notifications__V1__RedeliverWebhookRequest *req,
                                       Marquee__Notifications__V1__WebhookDelivery *resp, mq_error_t *err);
mq_code_t mq_webhook_types_handler(mq_call_t *call, const Marquee__Notifications__V1__ListWebhookEventTypesRequest *req,
                                   Marquee__Notifications__V1__ListWebhookEventTypesResponse *resp, mq_error_t *err);

#endif
