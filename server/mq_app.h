/*
 * mq_app.h — the application's life cycle, as main.c (and the tests and
 * benchmarks that run a whole server in process) drive it:
 *
 *   mq_app_open     platform parts (store, token keys, caches, health, the
 *                   outbox relay), then every module's open; no network I/O
 *                   (MongoDB and Kafka may be down)
 *   mq_app_register every module's services onto the server, in table
 *                   order, then server reflection
 *   mq_app_routes   every module's side-port routes (before mq_http_start)
 *   mq_app_start    the probe thread (pings MongoDB and reads Kafka state
 *                   every MARQUEE_HEALTH_INTERVAL_MS, creates every module's
 *                   indexes once MongoDB answers, then runs the modules'
 *                   ticks), every module's start, the invalidator (Kafka →
 *                   modules' on_event), the relay
 *   mq_app_close    the probe, the invalidator's callbacks, every module's
 *                   stop then close (reverse order), the relay, the rest
 *
 * The table of modules is in mq_app.c; what a module declares is
 * handlers/mq_module.h.
 */
#ifndef MQ_SERVER_APP_H
#define MQ_SERVER_APP_H

#include "core/mq_config.h"
#include "core/mq_error.h"
#include "handlers/mq_app.h"
#include "lib/mq_http.h"
#include "server/mq_server.h"

mq_code_t mq_app_open(const mq_config_t *cfg, mq_app_t **out, mq_error_t *err);
mq_code_t mq_app_register(mq_app_t *app, mq_server_t *srv, mq_error_t *err);
void mq_app_routes(mq_app_t *app, mq_http_t *http);
mq_code_t mq_app_start(mq_app_t *app, mq_error_t *err);
/* Accepts NULL and whatever a failed mq_app_open left. */
void mq_app_close(mq_app_t *app);

#endif
