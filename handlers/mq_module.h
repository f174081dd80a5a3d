/*
 * mq_module.h — what a domain module declares to the server: its gRPC
 * services, its repositories' indexes, its side-port routes, and its life
 * cycle hooks. server/mq_app.c holds the one table of modules and walks it
 * (nginx's module skeleton): nothing in a module calls back into the server,
 * and the server wires nothing of a module by hand.
 *
 * The life cycle, in the order the server walks it:
 *
 *     open ──> services ──> routes ──> (server starts) ──> start
 *       │                                                    │
 *       │          probe thread: tick, after every probe,     │
 *       │          MARQUEE_HEALTH_INTERVAL_MS                 │
 *       │          invalidator:  on_event (Kafka)             │
 *       v                                                    v
 *     close <──────────────────────────────────────────── stop
 *
 * open, services, routes and start run in table order; stop and close in
 * reverse. Hooks may be NULL. Invariants:
 * 1. open does no network I/O (MongoDB and Kafka may be down) and fails only
 *    for bad configuration; close must accept whatever a failed or partial
 *    open left (fields it finds NULL are skipped).
 * 2. stop ends the module's threads and callbacks into other modules; after
 *    every module's stop, no hook of any module runs again. close frees.
 * 3. tick runs on the probe thread only, after every probe, once health
 *    holds the probe's result; a tick that needs the store first asks
 *    mq_app_store_ready(). It must return within a probe interval.
 * 4. on_event runs on the invalidator's thread for every event of the
 *    topics the server listens to, this process's own included; it must
 *    not block on the store for long (a refresh of one document at most).
 */
#ifndef MQ_MODULE_H
#define MQ_MODULE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/mq_config.h"
#include "core/mq_error.h"
#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "handlers/mq_route.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "store/mq_store.h"

/* One gRPC service a module serves. */
typedef struct mq_service_row {
  const char *name; /* full name, as health checks and reflection know it */
  int (*reg)(mq_app_t *app, mq_server_t *srv);
  bool (*enabled)(const mq_config_t *cfg); /* NULL: always */
} mq_service_row_t;

/* One repository's index table (store/<domain>/<repo>.h). */
typedef struct mq_index_set {
  const mq_index_spec_t *specs;
  const size_t *n;
} mq_index_set_t;

typedef struct mq_module {
  const char *name;
  const mq_service_row_t *services;
  size_t n_services;
  const mq_index_set_t *indexes;
  size_t n_indexes;
  mq_code_t (*open)(mq_app_t *app, mq_error_t *err);
  void (*routes)(mq_app_t *app, mq_http_t *http);
  mq_code_t (*start)(mq_app_t *app, mq_error_t *err);
  void (*tick)(mq_app_t *app);
  void (*on_event)(mq_app_t *app, const char *topic, const Marquee__Events__V1__Envelope *ev);
  void (*stop)(mq_app_t *app);
  void (*close)(mq_app_t *app);
} mq_module_t;

#define MQ_COUNT(a) (sizeof(a) / sizeof *(a))
/* The designated initializers of a module's two tables, from two arrays. */
#define MQ_MODULE_TABLES(services_, indexes_) \
  .services = (services_), .n_services = MQ_COUNT(services_), .indexes = (indexes_), .n_indexes = MQ_COUNT(indexes_)

/* The modules, one per domain folder (handlers/<domain>/module.c). */
extern const mq_module_t mq_identity_module;
extern const mq_module_t mq_catalog_module;
extern const mq_module_t mq_bookings_module;
extern const mq_module_t mq_payments_module;
extern const mq_module_t mq_search_module;
extern const mq_module_t mq_analytics_module;
extern const mq_module_t mq_notifications_module;
extern const mq_module_t mq_system_module;
extern const mq_module_t mq_health_module;

#endif
