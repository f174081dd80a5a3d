/*
 * mq_route.h — what a module sees of the side HTTP port: a route is a path
 * (or a prefix ending in '/') and a function that fills a response.
 *
 * Like handlers/mq_call.h this is a contract declared by the handlers'
 * layer and implemented by the transport above it (server/mq_http.c), so
 * that a module can serve GET /media/{id} or a payment webhook without
 * including anything of server/. Routes run on the HTTP thread and must
 * not block for long (read a document, stream a file).
 */
#ifndef MQ_ROUTE_H
#define MQ_ROUTE_H

#include <stddef.h>
#include <stdint.h>

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
} mq_http_response_t;

/* The value of request header `name` (case-insensitive) of the request that
 * `resp` answers, or NULL; valid while the route runs. */
const char *mq_http_request_header(const mq_http_response_t *resp, const char *name);

/* A route handler; runs on the HTTP thread. `path` is the request path. */
typedef void (*mq_http_fn)(void *arg, const char *method, const char *path, mq_http_response_t *resp);

/* Serves `path` (a prefix when it ends in '/') with fn(arg, ...) on the HTTP
 * thread; before mq_http_start. */
void mq_http_route(mq_http_t *h, const char *path, mq_http_fn fn, void *arg);

#endif
