/*
 * mq_http.h — the side HTTP port (libmicrohttpd, a pool of threads: 4 unless set), used by
 * marquee-server and by every consumer process:
 * GET /metrics (Prometheus text), /healthz (liveness: the process answers),
 * /readyz (readiness, when created with a health record: 200 when MongoDB
 * answers and not shutting down, else 503; JSON body with each
 * dependency). Modules add routes (media, ticket files, payment webhooks)
 * with mq_http_route before mq_http_start; handlers/mq_route.h is what they
 * see of it. Every response carries X-Content-Type-Options: nosniff
 * (browsers take the Content-Type given: an uploaded image is never run as
 * something else).
 */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

#include <stddef.h>

#include <stdint.h>

#include "core/mq_error.h"
#include "lib/mq_health.h"

typedef struct mq_http mq_http_t;

typedef struct mq_http_response {
  int status;
  const char *content_type;
  char *body; /* malloc'ed; freed by the server */
  size_t body_len;
  /* Optional (zero unless a route sets them). */
  const char *cache_control; /* static string; default "no-store" */
  char etag[80];             /* the ETag header's value, quotes included; sent when not empty */
  /* A body produced piece by piece instead of `body` (large files): as the
   * client takes the bytes the server calls stream_read(stream_arg, pos,
   * buf, max), which writes 1..max bytes at offset `pos` and returns how
   * many, or -1 to abort the response (the connection is closed);
   * stream_free(stream_arg) runs once when the response is done, whatever
   * happened. Both run on the HTTP thread. */
  uint64_t stream_size;
  long (*stream_read)(void *arg, uint64_t pos, char *buf, size_t max);
  void (*stream_free)(void *arg);
  void *stream_arg;
  const void *request; /* set by the server: see mq_http_request_header */
  /* The request's body, for routes added with mq_http_route_post (NULL
   * otherwise); valid while the route runs. */
  const char *request_body;
  size_t request_body_len;
} mq_http_response_t;

/* The value of request header `name` (case-insensitive) of the request that
 * `resp` answers, or NULL; valid while the route runs. */
const char *mq_http_request_header(const mq_http_response_t *resp, const char *name);

/* A route handler; runs on the HTTP thread. `path` is the request path. */
typedef void (*mq_http_fn)(void *arg, const char *method, const char *path, mq_http_response_t *resp);

/* Serves `path` (a prefix when it ends in '/') with fn(arg, ...) on the HTTP
 * thread; before mq_http_start. */
void mq_http_route(mq_http_t *h, const char *path, mq_http_fn fn, void *arg);

/* Serves POST to `path` (exactly) with fn on the HTTP thread, the body read
 * whole first: at most max_body bytes (a larger one is answered 413 without
 * calling fn). GET and HEAD of that path are 405. Before mq_http_start. */
void mq_http_route_post(mq_http_t *h, const char *path, mq_http_fn fn, void *arg, size_t max_body);
/* health may be NULL (no /readyz: a process without a readiness notion). */
mq_http_t *mq_http_create(mq_health_t *health);
/* The size of the thread pool (before mq_http_start): a handler that waits
 * (a payment webhook confirming a booking) holds one thread, and with it the
 * other connections that thread serves. */
void mq_http_set_threads(mq_http_t *h, unsigned n);
/* Binds `listen` ("host:port"; port 0 picks one). */
mq_code_t mq_http_start(mq_http_t *h, const char *listen, mq_error_t *err);
int mq_http_port(const mq_http_t *h);
void mq_http_destroy(mq_http_t *h);

#endif
