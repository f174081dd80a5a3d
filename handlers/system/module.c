/*
 * module.c — the system module: SystemService, DiagnosticsService (only
 * with MARQUEE_DIAGNOSTICS) and grpc.health.v1.Health, and the notes
 * repository diagnostics writes; and grpc.health.v1.Health as a module of
 * its own, last in the server's table, so that the services are listed in
 * the order they always were. Server reflection is the transport's
 * (server/mq_app.c registers it after every module).
 */
#include "handlers/mq_module.h"
#include "handlers/system/system.h"
#include "store/system/notes_store.h"

static bool diagnostics_on(const mq_config_t *cfg) {
  return cfg->diagnostics;
}

static const mq_service_row_t services[] = {
    {"marquee.system.v1.SystemService", system_service_register, NULL},
    {"marquee.system.v1.DiagnosticsService", diagnostics_service_register, diagnostics_on},
};

static const mq_service_row_t health_services[] = {
    {"grpc.health.v1.Health", health_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_notes_indexes, &mq_notes_n_indexes},
};

const mq_module_t mq_system_module = {
    .name = "system",
    MQ_MODULE_TABLES(services, indexes),
};

const mq_module_t mq_health_module = {
    .name = "health",
    .services = health_services,
    .n_services = MQ_COUNT(health_services),
    .tick = health_service_tick,
    .close = health_service_free,
};
