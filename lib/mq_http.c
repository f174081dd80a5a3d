/*
 * mq_http.c — see mq_http.h. libmicrohttpd runs its own polling thread; the
 * route table is fixed before start, so lookups take no lock. GET and HEAD
 * reach the GET routes, POST the POST routes (whose body is collected
 * first, up to the route's limit, in a per-request buffer that
 * libmicrohttpd's completion callback frees); anything else gets 405.
 */
#include "lib/mq_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"

#define MAX_ROUTES 32

typedef struct {
  char path[128];
  bool prefix;
  bool post;       /* a POST route: its body is read first */
  size_t max_body; /* POST routes */
  mq_http_fn fn;
  void *arg;
} route_t;

/* One POST request's body as it arrives. */
typedef struct {
  char *buf;
  size_t len, cap, max;
  bool too_big;
} body_t;

struct mq_http {
  struct MHD_Daemon *d;
  mq_health_t *health;
  route_t routes[MAX_ROUTES];
  int n_routes;
  int port;
  unsigned threads;
};

static void text(mq_http_response_t *r, int status, const char *body) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  r->body = strdup(body);
  r->body_len = strlen(body);
}

static void route_metrics(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  (void)arg, (void)method, (void)path;
  r->status = 200;
  r->content_type = "text/plain; version=0.0.4; charset=utf-8";
  r->body = mq_metrics_render(&r->body_len);
}

static void route_healthz(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  (void)arg, (void)method, (void)path;
  text(r, 200, "ok\n");
}

static void route_readyz(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  (void)method, (void)path;
  mq_health_t *h = arg;
  bool store = mq_health_store_up(h), bus = mq_health_bus_up(h), stopping = mq_health_shutting_down(h);
  bool ready = store && !stopping;
  int search = mq_health_search(h);
  char body[256];
  snprintf(body, sizeof body, "{\"ready\":%s,\"mongodb\":%s,\"kafka\":%s,%s\"shutting_down\":%s}\n",
           ready ? "true" : "false", store ? "true" : "false", bus ? "true" : "false",
           search < 0 ? ""
           : search   ? "\"search\":true,"
                      : "\"search\":false,",
           stopping ? "true" : "false");
  r->status = ready ? 200 : 503;
  r->content_type = "application/json";
  r->body = strdup(body);
  r->body_len = strlen(body);
}

mq_http_t *mq_http_create(mq_health_t *health) {
  mq_http_t *h = mq_xcalloc(1, sizeof *h);
  h->health = health;
  h->threads = 4;
  mq_http_route(h, "/metrics", route_metrics, NULL);
  mq_http_route(h, "/healthz", route_healthz, NULL);
  if (health) mq_http_route(h, "/readyz", route_readyz, health);
  return h;
}

void mq_http_set_threads(mq_http_t *h, unsigned n) {
  h->threads = n ? n : 1;
}

void mq_http_route(mq_http_t *h, const char *path, mq_http_fn fn, void *arg) {
  if (h->n_routes == MAX_ROUTES) return;
  route_t *r = &h->routes[h->n_routes++];
  snprintf(r->path, sizeof r->path, "%s", path);
  size_t n = strlen(r->path);
  r->prefix = n > 1 && r->path[n - 1] == '/';
  r->fn = fn;
  r->arg = arg;
}

void mq_http_route_post(mq_http_t *h, const char *path, mq_http_fn fn, void *arg, size_t max_body) {
  if (h->n_routes == MAX_ROUTES) return;
  route_t *r = &h->routes[h->n_routes++];
  snprintf(r->path, sizeof r->path, "%s", path);
  r->prefix = false;
  r->post = true;
  r->max_body = max_body;
  r->fn = fn;
  r->arg = arg;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)conn, (void)toe;
  body_t *b = *ctx;
  if (b) {
    free(b->buf);
    free(b);
    *ctx = NULL;
  }
}

const char *mq_http_request_header(const mq_http_response_t *resp, const char *name) {
  if (!resp || !resp->request) return NULL;
  return MHD_lookup_connection_value((struct MHD_Connection *)resp->request, MHD_HEADER_KIND, name);
}

typedef struct {
  long (*read)(void *arg, uint64_t pos, char *buf, size_t max);
  void (*free)(void *arg);
  void *arg;
} stream_t;

static ssize_t reader_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_t *st = cls;
  long n = st->read(st->arg, pos, buf, max);
  return n > 0 ? (ssize_t)n : (ssize_t)MHD_CONTENT_READER_END_WITH_ERROR;
}

static void reader_free_cb(void *cls) {
  stream_t *st = cls;
  if (st->free) st->free(st->arg);
  free(st);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **ctx) {
  (void)version;
  mq_http_t *h = cls;
  const route_t *match = NULL;
  bool is_post = !strcmp(method, "POST");
  for (int i = 0; i < h->n_routes && !match; i++) {
    const route_t *rt = &h->routes[i];
    if (rt->post != is_post) continue;
    if (rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 : strcmp(url, rt->path) == 0) match = rt;
  }
  if (is_post && match) { /* collect the body first: the first call only sets up */
    body_t *b = *ctx;
    if (!b) {
      b = mq_xcalloc(1, sizeof *b);
      b->max = match->max_body;
      *ctx = b;
      return MHD_YES;
    }
    if (*upload_size) {
      if (!b->too_big && b->len + *upload_size <= b->max) {
        if (b->len + *upload_size + 1 > b->cap) {
          b->cap = (b->len + *upload_size + 1) * 2;
          if (b->cap > b->max + 1) b->cap = b->max + 1;
          b->buf = mq_xrealloc(b->buf, b->cap);
        }
        memcpy(b->buf + b->len, upload_data, *upload_size);
        b->len += *upload_size;
        b->buf[b->len] = '\0';
      } else {
        b->too_big = true;
      }
      *upload_size = 0;
      return MHD_YES;
    }
  } else if (*upload_size) { /* a body nobody asked for: skip it */
    *upload_size = 0;
    return MHD_YES;
  }
  mq_http_response_t r = {.status = 404, .content_type = "text/plain; charset=utf-8", .request = conn};
  if (!match) {
    bool other = false; /* the path exists for another method */
    for (int i = 0; i < h->n_routes && !other; i++) {
      const route_t *rt = &h->routes[i];
      other = rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 : strcmp(url, rt->path) == 0;
    }
    text(&r, other ? 405 : 404, other ? "method not allowed\n" : "not found\n");
  } else if (!is_post && strcmp(method, "GET") && strcmp(method, "HEAD")) {
    text(&r, 405, "method not allowed\n");
  } else if (is_post && ((body_t *)*ctx)->too_big) {
    text(&r, 413, "request body too large\n");
  } else {
    if (is_post) {
      body_t *b = *ctx;
      r.request_body = b->buf ? b->buf : "";
      r.request_body_len = b->len;
    }
    match->fn(match->arg, method, url, &r);
  }
  struct MHD_Response *resp = NULL;
  if (r.stream_read) {
    free(r.body);
    stream_t *st = mq_xmalloc(sizeof *st);
    *st = (stream_t){r.stream_read, r.stream_free, r.stream_arg};
    resp = MHD_create_response_from_callback(r.stream_size, 64 * 1024, reader_cb, st, reader_free_cb);
  } else {
    if (!r.body) text(&r, r.status ? r.status : 500, "");
    resp = MHD_create_response_from_buffer(r.body_len, r.body, MHD_RESPMEM_MUST_FREE);
  }
  MHD_add_response_header(resp, "Content-Type", r.content_type ? r.content_type : "text/plain");
  MHD_add_response_header(resp, "Cache-Control", r.cache_control ? r.cache_control : "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (r.etag[0]) MHD_add_response_header(resp, "ETag", r.etag);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

mq_code_t mq_http_start(mq_http_t *h, const char *listen, mq_error_t *err) {
  char host[64];
  int port;
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host || sscanf(colon + 1, "%d", &port) != 1 ||
      port < 0 || port > 65535)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_HTTP_LISTEN", "must be host:port");
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_HTTP_LISTEN", "host must be an IPv4 address");
  h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_request,
                          h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
                          MHD_OPTION_THREAD_POOL_SIZE, h->threads, MHD_OPTION_END);
  if (!h->d) return mq_error_set(err, MQ_UNAVAILABLE, "MARQUEE_HTTP_LISTEN", "cannot listen on %s", listen);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : port;
  return MQ_OK;
}

int mq_http_port(const mq_http_t *h) {
  return h->port;
}

void mq_http_destroy(mq_http_t *h) {
  if (!h) return;
  if (h->d) MHD_stop_daemon(h->d);
  free(h);
}
