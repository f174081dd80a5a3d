/*
 * mq_log.h — structured JSON logs, one object per line, on stderr.
 *
 *   mq_logline_t l;
 *   mq_log_begin(&l, MQ_LOG_INFO, "rpc");
 *   mq_log_str(&l, "method", path);
 *   mq_log_int(&l, "duration_us", us);
 *   mq_log_end(&l);
 *
 * Lines are built on the caller's stack and appended to a shared buffer that
 * a flusher thread writes every 50 ms (or at once for errors and when the
 * buffer fills), so a log line costs a copy, not a syscall, on the hot path.
 * Before mq_log_start() and after mq_log_stop() lines are written directly.
 *
 * PII and secrets (DESIGN.md §7): never pass tokens, passwords or secrets.
 * E-mail addresses go through mq_log_email (keeps the first letter and the
 * domain); client addresses through mq_log_peer (drops the port and keeps the
 * /24 of IPv4, the /48 of IPv6). Values are JSON-escaped; invalid UTF-8
 * is replaced with U+FFFD, and a value too long for the 2 KiB line is cut at a
 * character boundary and marked "...", so a log line is always valid JSON.
 */
#ifndef MQ_LOG_H
#define MQ_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mq_log_level { MQ_LOG_DEBUG, MQ_LOG_INFO, MQ_LOG_WARN, MQ_LOG_ERROR } mq_log_level_t;

typedef struct mq_logline {
  char buf[2048];
  size_t len;
  bool skip; /* level below threshold: every call is a no-op */
  bool full; /* no room for more fields: later ones are dropped, the line stays valid JSON */
  mq_log_level_t level;
} mq_logline_t;

/* Parses "debug|info|warn|error"; returns false for anything else. */
bool mq_log_parse_level(const char *s, mq_log_level_t *out);
void mq_log_set_level(mq_log_level_t level);
void mq_log_set_process(const char *name, const char *instance);
bool mq_log_enabled(mq_log_level_t level);
/* Start/stop the async flusher. mq_log_stop flushes everything. */
void mq_log_start(void);
void mq_log_stop(void);
void mq_log_flush(void);

void mq_log_begin(mq_logline_t *l, mq_log_level_t level, const char *event);
void mq_log_str(mq_logline_t *l, const char *key, const char *val);
void mq_log_strn(mq_logline_t *l, const char *key, const char *val, size_t n);
void mq_log_int(mq_logline_t *l, const char *key, int64_t val);
void mq_log_bool(mq_logline_t *l, const char *key, bool val);
void mq_log_email(mq_logline_t *l, const char *key, const char *email);
void mq_log_peer(mq_logline_t *l, const char *key, const char *peer);
void mq_log_end(mq_logline_t *l);

/* One-liner: {"event": event, "msg": formatted}. */
void mq_log(mq_log_level_t level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Redaction helpers, exposed for tests: write into out (always terminated). */
void mq_redact_email(const char *email, char *out, size_t len);
void mq_redact_peer(const char *peer, char *out, size_t len);

#endif
