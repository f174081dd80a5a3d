/*
 * mq_httpc.h — a small, blocking HTTP client (libcurl) for calls Marquee makes
 * to other services: OAuth 2.0 / OIDC providers today (discovery, JWKS,
 * token and user-info endpoints), payment gateways later.
 *
 * Every request has a total timeout and a response size cap; only http and
 * https are allowed, redirects are not followed, and plain http is refused
 * unless the host is loopback (local test providers), so a mistyped
 * configuration cannot send a client secret in clear text. Call only from
 * worker threads: a request blocks for up to its timeout.
 * mq_httpc_global_init() must run once before any thread starts
 * (mq_app_open does it).
 */
#ifndef MQ_HTTPC_H
#define MQ_HTTPC_H

#include <stddef.h>

#include "core/mq_error.h"

typedef struct mq_httpc_request {
  const char *method; /* "GET" (default) or "POST" */
  const char *url;
  const char *const *headers; /* "Name: value" lines */
  size_t n_headers;
  const char *body; /* POST body (e.g. application/x-www-form-urlencoded) */
  size_t body_len;
  const char *basic_user, *basic_password; /* HTTP Basic auth when both set */
  int timeout_ms;                          /* total; <= 0: 5000 */
  size_t max_bytes;                        /* response cap; 0: 1 MiB */
  const char *resolve; /* optional "host:port:address": connect there (an address the caller checked) */
} mq_httpc_request_t;

typedef struct mq_httpc_response {
  long status;
  char *body; /* NUL-terminated, malloc'd; free with mq_httpc_response_clear */
  size_t len;
  char content_type[128];
} mq_httpc_response_t;

void mq_httpc_global_init(void);

/* MQ_OK once a response arrived (any HTTP status: the caller judges it);
 * UNAVAILABLE naming `what` when the peer cannot be reached, times out or
 * answers more than max_bytes; INVALID_ARGUMENT for a refused URL. */
mq_code_t mq_httpc_do(const mq_httpc_request_t *req, const char *what, mq_httpc_response_t *out, mq_error_t *err);
void mq_httpc_response_clear(mq_httpc_response_t *r);

/* Percent-encodes s for a query string or form body (RFC 3986 unreserved
 * characters kept). Caller frees. */
char *mq_url_escape(const char *s);

/* True when `url` is https://…, or http:// to 127.0.0.1, [::1] or localhost. */
int mq_url_transport_ok(const char *url);

#endif
