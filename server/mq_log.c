/*
 * mq_log.c — JSON line logger with an async flusher (see mq_log.h).
 *
 * Invariant: `pending` holds only whole lines; a writer that finds it full
 * writes the pending bytes itself (under the lock) before appending, so no line
 * is dropped or interleaved. Global state lives here because logging is
 * process-wide (DESIGN.md §2 allows it in server/).
 */
#include "mq_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PENDING_CAP (256 * 1024)

static atomic_int g_level = MQ_LOG_INFO;
static char g_process[48] = "marquee";
static char g_instance[64] = "";
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static char g_pending[PENDING_CAP];
static size_t g_pending_len;
static bool g_running, g_stop;
static pthread_t g_thread;

static const char *level_name[] = {"debug", "info", "warn", "error"};

bool mq_log_parse_level(const char *s, mq_log_level_t *out) {
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, level_name[i]) == 0) {
      *out = (mq_log_level_t)i;
      return true;
    }
  return false;
}

void mq_log_set_level(mq_log_level_t level) { atomic_store(&g_level, level); }

void mq_log_set_process(const char *name, const char *instance) {
  snprintf(g_process, sizeof g_process, "%s", name ? name : "marquee");
  snprintf(g_instance, sizeof g_instance, "%s", instance ? instance : "");
}

bool mq_log_enabled(mq_log_level_t level) { return (int)level >= atomic_load(&g_level); }

static void write_all(const char *p, size_t n) {
  while (n) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w <= 0) return; /* nowhere to report a failing stderr */
    p += w;
    n -= (size_t)w;
  }
}

static void flush_locked(void) {
  write_all(g_pending, g_pending_len);
  g_pending_len = 0;
}

void mq_log_flush(void) {
  pthread_mutex_lock(&g_mu);
  flush_locked();
  pthread_mutex_unlock(&g_mu);
}

static void *flusher(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_cv, &g_mu, &ts);
    flush_locked();
  }
  flush_locked();
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

void mq_log_start(void) {
  pthread_mutex_lock(&g_mu);
  if (!g_running) {
    g_stop = false;
    if (pthread_create(&g_thread, NULL, flusher, NULL) == 0) g_running = true;
  }
  pthread_mutex_unlock(&g_mu);
}

void mq_log_stop(void) {
  pthread_mutex_lock(&g_mu);
  bool was = g_running;
  g_stop = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  if (was) pthread_join(g_thread, NULL);
  pthread_mutex_lock(&g_mu);
  g_running = false;
  flush_locked();
  pthread_mutex_unlock(&g_mu);
}

/* ---- line building ---------------------------------------------------- */

static void put(mq_logline_t *l, const char *s, size_t n) {
  size_t room = sizeof l->buf - 2 - l->len; /* keep room for "}\n" */
  if (n > room) n = room;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void put_escaped(mq_logline_t *l, const char *s, size_t n) {
  put(l, "\"", 1);
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    char tmp[8];
    if (c == '"' || c == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)c;
      put(l, tmp, 2);
      i++;
    } else if (c < 0x20) {
      int k = snprintf(tmp, sizeof tmp, "\\u%04x", c);
      put(l, tmp, (size_t)k);
      i++;
    } else if (c < 0x80) {
      put(l, (const char *)&p[i], 1);
      i++;
    } else {
      /* validate one UTF-8 sequence */
      size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
      bool ok = len && i + len <= n && !(len == 2 && c < 0xC2);
      for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xC0) == 0x80;
      if (ok) {
        put(l, (const char *)&p[i], len);
        i += len;
      } else {
        put(l, "\xEF\xBF\xBD", 3);
        i++;
      }
    }
  }
  put(l, "\"", 1);
}

static void put_key(mq_logline_t *l, const char *key) {
  put(l, ",", 1);
  put_escaped(l, key, strlen(key));
  put(l, ":", 1);
}

void mq_log_begin(mq_logline_t *l, mq_log_level_t level, const char *event) {
  l->len = 0;
  l->level = level;
  l->skip = !mq_log_enabled(level);
  if (l->skip) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char head[128];
  int n = snprintf(head, sizeof head, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, level_name[level]);
  put(l, head, (size_t)n);
  mq_log_str(l, "proc", g_process);
  if (g_instance[0]) mq_log_str(l, "instance", g_instance);
  mq_log_str(l, "event", event);
}

void mq_log_strn(mq_logline_t *l, const char *key, const char *val, size_t n) {
  if (l->skip) return;
  put_key(l, key);
  if (!val)
    put(l, "null", 4);
  else
    put_escaped(l, val, n);
}

void mq_log_str(mq_logline_t *l, const char *key, const char *val) {
  mq_log_strn(l, key, val, val ? strlen(val) : 0);
}

void mq_log_int(mq_logline_t *l, const char *key, int64_t val) {
  if (l->skip) return;
  put_key(l, key);
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", (long long)val);
  put(l, tmp, (size_t)n);
}

void mq_log_bool(mq_logline_t *l, const char *key, bool val) {
  if (l->skip) return;
  put_key(l, key);
  put(l, val ? "true" : "false", val ? 4 : 5);
}

void mq_redact_email(const char *email, char *out, size_t len) {
  if (!len) return;
  const char *at = email ? strrchr(email, '@') : NULL;
  if (!email || !at || at == email) {
    snprintf(out, len, "%s", "[redacted]");
    return;
  }
  snprintf(out, len, "%c***%s", email[0], at);
}

void mq_redact_peer(const char *peer, char *out, size_t len) {
  if (!len) return;
  if (!peer) {
    snprintf(out, len, "%s", "");
    return;
  }
  if (strncmp(peer, "ipv4:", 5) == 0) {
    unsigned a, b, c;
    if (sscanf(peer + 5, "%u.%u.%u.", &a, &b, &c) == 3) {
      snprintf(out, len, "%u.%u.%u.0", a, b, c);
      return;
    }
  } else if (strncmp(peer, "ipv6:", 5) == 0) {
    /* keep the first three groups (a /48) */
    const char *p = peer + 5;
    if (*p == '[') p++;
    size_t i = 0, groups = 0;
    char tmp[64];
    while (p[i] && i < sizeof tmp - 4 && groups < 3) {
      if (p[i] == ':') groups++;
      if (groups < 3) tmp[i] = p[i];
      i++;
    }
    tmp[groups < 3 ? i : i - 1] = '\0';
    snprintf(out, len, "%s::", tmp);
    return;
  } else if (strncmp(peer, "unix:", 5) == 0) {
    snprintf(out, len, "%s", "unix");
    return;
  }
  snprintf(out, len, "%s", "[redacted]");
}

void mq_log_email(mq_logline_t *l, const char *key, const char *email) {
  if (l->skip) return;
  char tmp[256];
  mq_redact_email(email, tmp, sizeof tmp);
  mq_log_str(l, key, tmp);
}

void mq_log_peer(mq_logline_t *l, const char *key, const char *peer) {
  if (l->skip) return;
  char tmp[80];
  mq_redact_peer(peer, tmp, sizeof tmp);
  mq_log_str(l, key, tmp);
}

void mq_log_end(mq_logline_t *l) {
  if (l->skip) return;
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
  pthread_mutex_lock(&g_mu);
  if (!g_running || l->level >= MQ_LOG_ERROR) {
    flush_locked();
    write_all(l->buf, l->len);
  } else {
    if (g_pending_len + l->len > PENDING_CAP) flush_locked();
    memcpy(g_pending + g_pending_len, l->buf, l->len);
    g_pending_len += l->len;
  }
  pthread_mutex_unlock(&g_mu);
}

void mq_log(mq_log_level_t level, const char *event, const char *fmt, ...) {
  mq_logline_t l;
  mq_log_begin(&l, level, event);
  if (l.skip) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mq_log_str(&l, "msg", msg);
  mq_log_end(&l);
}
