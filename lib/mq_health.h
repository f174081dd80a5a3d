/*
 * mq_health.h — readiness of this process, as the gRPC health service and
 * /readyz report it.
 *
 * Components: the store (MongoDB) and the bus (Kafka). The process is
 * SERVING when the store answers and it is not shutting down; Kafka being
 * down does not stop serving (writes succeed, events wait in the outbox),
 * so it is reported separately as the service "marquee.kafka" (and
 * "marquee.mongodb" for the store). The search index likewise, as
 * "marquee.search": NOT_SERVING while this host's index is missing or has
 * not caught up within MARQUEE_SEARCH_MAX_STALENESS_S (search answers from
 * an older index, or UNAVAILABLE; everything else is unaffected). Every registered gRPC service name
 * reports the overall status. A version counter lets watchers notice changes.
 */
#ifndef MQ_HEALTH_H
#define MQ_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  MQ_HEALTH_UNKNOWN = 0,
  MQ_HEALTH_SERVING = 1,
  MQ_HEALTH_NOT_SERVING = 2,
  MQ_HEALTH_SERVICE_UNKNOWN = 3
} mq_health_status_t;

typedef struct mq_health mq_health_t;

mq_health_t *mq_health_create(void);
void mq_health_destroy(mq_health_t *h);
/* Declares a service name that reports the overall status (copied). */
void mq_health_add_service(mq_health_t *h, const char *name);
void mq_health_set_store(mq_health_t *h, bool up);
void mq_health_set_bus(mq_health_t *h, bool up);
void mq_health_set_shutting_down(mq_health_t *h);
/* state: -1 no search index configured, 0 missing or stale, 1 fresh. */
void mq_health_set_search(mq_health_t *h, int state);
int mq_health_search(const mq_health_t *h);
bool mq_health_store_up(const mq_health_t *h);
bool mq_health_bus_up(const mq_health_t *h);
bool mq_health_shutting_down(const mq_health_t *h);
/* Status of `service` ("" = the whole server). SERVICE_UNKNOWN for names
 * never declared. */
mq_health_status_t mq_health_status(const mq_health_t *h, const char *service);
/* Incremented on every change (for watchers). */
uint64_t mq_health_version(const mq_health_t *h);

#endif
