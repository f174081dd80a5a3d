/*
 * sink.c — see sink.h.
 */
#include "sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct mq_sink {
  int fd;
  char url[64];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mq_sink_request_t *v;
  size_t n, cap;
  int fail_left, fail_status;
  volatile int stop;
};

static char *dup_n(const char *p, size_t n) {
  char *s = malloc(n + 1);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Reads one request from c; answers it; records it. */
static void serve(mq_sink_t *s, int c) {
  char *buf = NULL;
  size_t len = 0, cap = 0, head_end = 0, want = 0;
  for (;;) {
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (poll(&p, 1, 5000) <= 0) break;
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 16384;
      char *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    ssize_t r = read(c, buf + len, cap - len - 1);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = '\0';
    if (!head_end) {
      char *e = strstr(buf, "\r\n\r\n");
      if (!e) continue;
      head_end = (size_t)(e - buf) + 4;
      for (char *h = buf; h && h < e; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL)
        if (!strncasecmp(h, "Content-Length:", 15)) want = (size_t)strtoul(h + 15, NULL, 10);
    }
    if (head_end && len >= head_end + want) break;
  }
  if (!head_end) {
    free(buf);
    return;
  }
  mq_sink_request_t q = {0};
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  q.at_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
  sscanf(buf, "%15s %511s", q.method, q.path);
  char *line_end = strstr(buf, "\r\n");
  q.headers = dup_n(line_end + 2, head_end - (size_t)(line_end + 2 - buf));
  q.body_len = len - head_end < want ? len - head_end : want;
  q.body = dup_n(buf + head_end, q.body_len);
  pthread_mutex_lock(&s->mu);
  q.status = 200;
  if (s->fail_left > 0) {
    s->fail_left--;
    q.status = s->fail_status;
  }
  pthread_mutex_unlock(&s->mu);
  char resp[160];
  int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", q.status,
                   q.status < 300 ? "OK" : "Error");
  if (write(c, resp, (size_t)n) < 0) { /* the client went away: still recorded */
  }
  pthread_mutex_lock(&s->mu);
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 16;
    mq_sink_request_t *nv = realloc(s->v, ncap * sizeof *s->v);
    if (!nv) {
      pthread_mutex_unlock(&s->mu);
      mq_sink_request_clear(&q);
      free(buf);
      return;
    }
    s->v = nv;
    s->cap = ncap;
  }
  s->v[s->n++] = q;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  free(buf);
}

static void *accept_main(void *arg) {
  mq_sink_t *s = arg;
  while (!s->stop) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0) continue;
    serve(s, c);
    close(c);
  }
  return NULL;
}

mq_sink_t *mq_sink_start(void) {
  mq_sink_t *s = calloc(1, sizeof *s);
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 64) ||
      getsockname(s->fd, (struct sockaddr *)&a, &al)) {
    if (s->fd >= 0) close(s->fd);
    free(s);
    return NULL;
  }
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", ntohs(a.sin_port));
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_create(&s->thread, NULL, accept_main, s);
  return s;
}

void mq_sink_free(mq_sink_t *s) {
  if (!s) return;
  s->stop = 1;
  pthread_join(s->thread, NULL);
  close(s->fd);
  for (size_t i = 0; i < s->n; i++) mq_sink_request_clear(&s->v[i]);
  free(s->v);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *mq_sink_url(const mq_sink_t *s) {
  return s->url;
}

void mq_sink_fail_next(mq_sink_t *s, int n, int status) {
  pthread_mutex_lock(&s->mu);
  s->fail_left = n;
  s->fail_status = status;
  pthread_mutex_unlock(&s->mu);
}

size_t mq_sink_count(mq_sink_t *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool mq_sink_wait(mq_sink_t *s, size_t n, int timeout_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (s->n < n)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts)) break;
  bool ok = s->n >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

bool mq_sink_get(mq_sink_t *s, size_t i, mq_sink_request_t *out) {
  pthread_mutex_lock(&s->mu);
  bool ok = i < s->n;
  if (ok) {
    *out = s->v[i];
    out->headers = dup_n(s->v[i].headers, strlen(s->v[i].headers));
    out->body = dup_n(s->v[i].body, s->v[i].body_len);
  }
  pthread_mutex_unlock(&s->mu);
  return ok;
}

void mq_sink_request_clear(mq_sink_request_t *r) {
  free(r->headers);
  free(r->body);
  memset(r, 0, sizeof *r);
}

bool mq_sink_header(const mq_sink_request_t *r, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  for (const char *h = r->headers; h && *h; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL) {
    if (!strncasecmp(h, name, nl) && h[nl] == ':') {
      const char *v = h + nl + 1;
      while (*v == ' ') v++;
      size_t vl = strcspn(v, "\r\n");
      snprintf(out, n, "%.*s", (int)vl, v);
      return true;
    }
  }
  return false;
}
