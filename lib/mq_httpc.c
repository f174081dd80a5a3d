/*
 * mq_httpc.c — see mq_httpc.h. One easy handle per request: requests are
 * rare (sign-ins through a provider, cache refills), so connection reuse is
 * not worth shared mutable state between worker threads.
 */
#include "lib/mq_httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void do_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void mq_httpc_global_init(void) {
  pthread_once(&init_once, do_init);
}

int mq_url_transport_ok(const char *url) {
  if (!url) return 0;
  if (!strncasecmp(url, "https://", 8)) return url[8] != '\0';
  if (strncasecmp(url, "http://", 7)) return 0;
  const char *h = url + 7;
  static const char *const loopback[] = {"127.0.0.1", "[::1]", "localhost"};
  for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++) {
    size_t n = strlen(loopback[i]);
    if (!strncasecmp(h, loopback[i], n) && (h[n] == ':' || h[n] == '/' || h[n] == '\0')) return 1;
  }
  return 0;
}

char *mq_url_escape(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(3 * n + 1), *o = out;
  if (!out) return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
        *p == '_' || *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

typedef struct {
  char *buf;
  size_t len, cap, max;
  int too_big;
} sink_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg) {
  sink_t *s = arg;
  size_t n = size * nmemb;
  if (s->len + n > s->max) {
    s->too_big = 1;
    return 0; /* aborts the transfer */
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1) cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb) return 0;
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, ptr, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

mq_code_t mq_httpc_do(const mq_httpc_request_t *req, const char *what, mq_httpc_response_t *out, mq_error_t *err) {
  memset(out, 0, sizeof *out);
  if (!mq_url_transport_ok(req->url))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "%s: only https URLs are allowed (http only to loopback)",
                        what);
  mq_httpc_global_init();
  CURL *h = curl_easy_init();
  if (!h) return mq_error_set(err, MQ_INTERNAL, NULL, "cannot create an HTTP client");
  sink_t sink = {.max = req->max_bytes ? req->max_bytes : (size_t)1 << 20};
  struct curl_slist *hdrs = NULL;
  for (size_t i = 0; i < req->n_headers; i++) hdrs = curl_slist_append(hdrs, req->headers[i]);
  hdrs = curl_slist_append(hdrs, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : 5000));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : 5000));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "marquee/1");
  struct curl_slist *pin = req->resolve ? curl_slist_append(NULL, req->resolve) : NULL;
  if (pin) curl_easy_setopt(h, CURLOPT_RESOLVE, pin);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  if (req->method && !strcmp(req->method, "POST")) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(req->body ? req->body_len : 0));
  }
  if (req->basic_user && req->basic_password) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, req->basic_user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, req->basic_password);
  }
  CURLcode cc = curl_easy_perform(h);
  mq_code_t rc = MQ_OK;
  if (sink.too_big) {
    rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s: the response is larger than %zu bytes", what, sink.max);
  } else if (cc != CURLE_OK) {
    rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s is unreachable (%s)", what, curl_easy_strerror(cc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    const char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(out->content_type, sizeof out->content_type, "%s", ct);
    out->body = sink.buf ? sink.buf : calloc(1, 1);
    out->len = sink.len;
    sink.buf = NULL;
  }
  free(sink.buf);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  curl_slist_free_all(pin);
  return rc;
}

void mq_httpc_response_clear(mq_httpc_response_t *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}
