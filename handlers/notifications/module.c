/*
 * module.c — the notifications module: WebhookService (webhooks.c), the
 * webhooks repository's indexes, and the allowed nets of the SSRF guard
 * (MARQUEE_WEBHOOK_ALLOWED_NETS, parsed once at open). See
 * handlers/mq_module.h.
 */
#include "core/mq_log.h"
#include "handlers/notifications/notifications.h"
#include "lib/mq_outbound.h"
#include "store/notifications/webhooks_store.h"

static mq_code_t notifications_open(mq_app_t *app, mq_error_t *err) {
  return mq_netlist_parse(app->cfg->webhook_allowed_nets, "MARQUEE_WEBHOOK_ALLOWED_NETS", &app->webhook_nets, err);
}

static void notifications_close(mq_app_t *app) {
  mq_netlist_free(app->webhook_nets);
  app->webhook_nets = NULL;
}

static const mq_service_row_t services[] = {
    {"marquee.notifications.v1.WebhookService", webhook_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_webhooks_indexes, &mq_webhooks_n_indexes},
};

const mq_module_t mq_notifications_module = {
    .name = "notifications",
    MQ_MODULE_TABLES(services, indexes),
    .open = notifications_open,
    .close = notifications_close,
};
