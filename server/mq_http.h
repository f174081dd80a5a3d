/*
 * mq_http.h — the side HTTP port (libmicrohttpd, its own thread):
 * GET /metrics (Prometheus text), /healthz (liveness: the process answers),
 * /readyz (readiness: 200 when MongoDB answers and not shutting down, else
 * 503; JSON body with each dependency). Later issues add routes (payment
 * webhooks, media) with mq_http_route before mq_http_start. Every response
 * carries X-Content-Type-Options: nosniff (browsers take the Content-Type
 * given: an uploaded image is never run as something else).
 */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stddef.h>

#include "core/mq_error.h"
#include "handlers/mq_route.h"
#include "lib/mq_health.h"

mq_http_t *mq_http_create(mq_health_t *health);
/* Exact-path route, or a prefix route when `path` ends with '/'. */
/* Binds `listen` ("host:port"; port 0 picks one). */
mq_code_t mq_http_start(mq_http_t *h, const char *listen, mq_error_t *err);
int mq_http_port(const mq_http_t *h);
void mq_http_destroy(mq_http_t *h);

#endif
