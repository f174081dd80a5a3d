/*
 * mq_http.h — the side HTTP port (libmicrohttpd, its own thread):
 * GET /metrics (Prometheus text), /healthz (liveness: the process answers),
 * /readyz (readiness: 200 when MongoDB answers and not shutting down, else
 * 503; JSON body with each dependency). Later issues add routes (payment
 * webhooks, media) with mq_http_route before mq_http_start.
 */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stddef.h>

#include "mq_error.h"
#include "mq_health.h"

typedef struct mq_http mq_http_t;

typedef struct mq_http_response {
  int status;
  const char *content_type;
  char *body; /* malloc'ed; freed by the server */
  size_t body_len;
} mq_http_response_t;

/* A route handler; runs on the HTTP thread. `path` is the request path. */
typedef void (*mq_http_fn)(void *arg, const char *method, const char *path, mq_http_response_t *resp);

mq_http_t *mq_http_create(mq_health_t *health);
/* Exact-path route, or a prefix route when `path` ends with '/'. */
void mq_http_route(mq_http_t *h, const char *path, mq_http_fn fn, void *arg);
/* Binds `listen` ("host:port"; port 0 picks one). */
mq_code_t mq_http_start(mq_http_t *h, const char *listen, mq_error_t *err);
int mq_http_port(const mq_http_t *h);
void mq_http_destroy(mq_http_t *h);

#endif
