/*
 * mq_log.c — JSON line logger with an async flusher (see mq_log.h).
 *
 * Invariant: `pending` holds only whole lines; a writer that finds it full
 * writes the pending bytes itself (under the lock) before appending, so no line
 * is dropped or interleaved. Global state lives here because logging is
 * process-wide (DESIGN.md §2 allows it in server/).
 */
#include "core/mq_log.h"

#include <arpa/inet.h>
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

void mq_log_set_level(mq_log_level_t level) {
  atomic_store(&g_level, level);
}

void mq_log_set_process(const char *name, const char *instance) {
  snprintf(g_process, sizeof g_process, "%s", name ? name : "marquee");
  snprintf(g_instance, sizeof g_instance, "%s", instance ? instance : "");
}

bool mq_log_enabled(mq_log_level_t level) {
  return (int)level >= atomic_load(&g_level);
}

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

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if invalid (overlong,
 * surrogate, above U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, cp = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, cp = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* Room left for field text, keeping 2 bytes for the closing "}\n". */
static size_t room(const mq_logline_t *l) {
  return sizeof l->buf - 2 - l->len;
}

/* Writes "s" JSON-escaped with its quotes into dst (at most cap bytes),
 * whole characters and escapes only, so the result is always valid JSON;
 * a value that does not fit is cut and ends with "...". Returns the bytes
 * written, 0 if not even the quotes fit. */
static size_t escape_into(char *dst, size_t cap, const char *s, size_t n) {
  if (cap < 2) return 0;
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0, i = 0;
  dst[o++] = '"';
  while (i < n) {
    char tmp[8];
    size_t tl, used;
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      tmp[0] = '\\', tmp[1] = (char)c, tl = 2, used = 1;
    } else if (c < 0x20 || c == 0x7F) {
      tl = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", c), used = 1;
    } else {
      size_t sl = utf8_seq(p + i, n - i);
      if (sl)
        memcpy(tmp, p + i, sl), tl = sl, used = sl;
      else
        memcpy(tmp, "\xEF\xBF\xBD", 3), tl = 3, used = 1; /* U+FFFD */
    }
    if (o + tl + 4 > cap) { /* keep room for "..." and the closing quote */
      if (o + 4 <= cap) memcpy(dst + o, "...", 3), o += 3;
      break;
    }
    memcpy(dst + o, tmp, tl);
    o += tl;
    i += used;
  }
  dst[o++] = '"';
  return o;
}

/* Appends ,"key": — false (and the line stops growing) when it does not fit. */
static bool put_key(mq_logline_t *l, const char *key) {
  if (l->full) return false;
  size_t kl = strlen(key), r = room(l);
  if (kl + 8 > r) {
    l->full = true;
    return false;
  }
  l->buf[l->len++] = ',';
  l->len += escape_into(l->buf + l->len, r - 1, key, kl);
  l->buf[l->len++] = ':';
  return true;
}

static void put_raw(mq_logline_t *l, const char *s, size_t n) {
  if (n > room(l)) n = room(l); /* only called with short ASCII tokens after put_key reserved room */
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

void mq_log_begin(mq_logline_t *l, mq_log_level_t level, const char *event) {
  l->len = 0;
  l->full = false;
  l->level = level;
  l->skip = !mq_log_enabled(level);
  if (l->skip) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char head[128];
  int n = snprintf(head, sizeof head, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   level_name[level]);
  put_raw(l, head, (size_t)n);
  mq_log_str(l, "proc", g_process);
  if (g_instance[0]) mq_log_str(l, "instance", g_instance);
  mq_log_str(l, "event", event);
}

void mq_log_strn(mq_logline_t *l, const char *key, const char *val, size_t n) {
  if (l->skip || !put_key(l, key)) return;
  if (!val) {
    put_raw(l, "null", 4);
    return;
  }
  size_t w = escape_into(l->buf + l->len, room(l), val, n);
  if (!w) put_raw(l, "null", 4);
  l->len += w;
}

void mq_log_str(mq_logline_t *l, const char *key, const char *val) {
  mq_log_strn(l, key, val, val ? strlen(val) : 0);
}

void mq_log_int(mq_logline_t *l, const char *key, int64_t val) {
  if (l->skip || !put_key(l, key)) return;
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", (long long)val);
  put_raw(l, tmp, (size_t)n);
}

void mq_log_bool(mq_logline_t *l, const char *key, bool val) {
  if (l->skip || !put_key(l, key)) return;
  put_raw(l, val ? "true" : "false", val ? 4 : 5);
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
  out[0] = '\0';
  if (!peer) return;
  if (strncmp(peer, "unix:", 5) == 0) {
    snprintf(out, len, "%s", "unix");
    return;
  }
  /* "ipv4:1.2.3.4:5678", "ipv6:[::1]:80" or, from gRPC 1.51, "ipv6:%5B::1%5D:80" */
  char addr[INET6_ADDRSTRLEN + 8];
  const char *p;
  size_t n = 0;
  bool v6 = strncmp(peer, "ipv6:", 5) == 0;
  if (!v6 && strncmp(peer, "ipv4:", 5) != 0) {
    snprintf(out, len, "%s", "[redacted]");
    return;
  }
  p = peer + 5;
  if (v6) {
    if (*p == '[')
      p++;
    else if (strncmp(p, "%5B", 3) == 0 || strncmp(p, "%5b", 3) == 0)
      p += 3;
    while (p[n] && p[n] != ']' && p[n] != '%' && n < sizeof addr - 1) n++;
  } else {
    while (p[n] && p[n] != ':' && n < sizeof addr - 1) n++;
  }
  memcpy(addr, p, n);
  addr[n] = '\0';
  unsigned char bin[16];
  char txt[INET6_ADDRSTRLEN];
  if (!v6 && inet_pton(AF_INET, addr, bin) == 1) {
    bin[3] = 0; /* keep the /24 */
    inet_ntop(AF_INET, bin, txt, sizeof txt);
  } else if (v6 && inet_pton(AF_INET6, addr, bin) == 1) {
    memset(bin + 6, 0, 10); /* keep the /48 */
    inet_ntop(AF_INET6, bin, txt, sizeof txt);
  } else {
    snprintf(out, len, "%s", "[redacted]");
    return;
  }
  snprintf(out, len, "%s", txt);
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
