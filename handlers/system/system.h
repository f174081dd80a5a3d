/*
 * system.h — the system module: SystemService (ping, server info),
 * DiagnosticsService (only with MARQUEE_DIAGNOSTICS), grpc.health.v1.Health
 * and server reflection (reflection.h). module.c declares them to the
 * server; the rest of each service lives in its own file.
 */
#ifndef MQ_SYSTEM_H
#define MQ_SYSTEM_H

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"

int system_service_register(mq_app_t *app, mq_server_t *srv);
int diagnostics_service_register(mq_app_t *app, mq_server_t *srv);
int health_service_register(mq_app_t *app, mq_server_t *srv);
/* After each probe (pushes changes to watchers). */
void health_service_tick(mq_app_t *app);
void health_service_free(mq_app_t *app);

#endif
