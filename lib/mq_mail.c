/*
 * mq_mail.c — see mq_mail.h. The builder appends to a growing arena buffer;
 * the sender hands the bytes to libcurl's SMTP client (MAIL FROM, RCPT TO,
 * DATA) and sorts its outcome into temporary and permanent.
 */
#include "lib/mq_mail.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mq_ids.h"
#include "lib/mq_validate.h"

typedef struct {
  mq_arena_t *a;
  char *b;
  size_t n, cap;
} sb_t;

static void sb_grow(sb_t *s, size_t more) {
  if (s->n + more + 1 <= s->cap) return;
  size_t cap = s->cap ? s->cap * 2 : 4096;
  while (cap < s->n + more + 1) cap *= 2;
  char *b = mq_arena_alloc(s->a, cap);
  if (s->n) memcpy(b, s->b, s->n);
  s->b = b;
  s->cap = cap;
}

static void sb_put(sb_t *s, const char *p, size_t n) {
  sb_grow(s, n);
  memcpy(s->b + s->n, p, n);
  s->n += n;
  s->b[s->n] = '\0';
}

static void sb_str(sb_t *s, const char *p) {
  sb_put(s, p, strlen(p));
}

static bool ascii_printable(const char *p) {
  for (; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return false;
  return true;
}

static bool has_line_break(const char *p) {
  return p && (strchr(p, '\r') || strchr(p, '\n'));
}

/* Header text: as is when printable ASCII without specials, else RFC 2047
 * encoded words of at most 39 input bytes each (whole UTF-8 characters:
 * 64-character words, so a line stays within 78),
 * folded onto continuation lines. `phrase`: a display name, quoted when
 * ASCII with specials. */
static void put_header_text(sb_t *s, const char *v, bool phrase) {
  if (ascii_printable(v)) {
    if (!phrase || !strpbrk(v, "()<>[]:;@\\,.\"")) {
      sb_str(s, v);
      return;
    }
    sb_str(s, "\"");
    for (const char *p = v; *p; p++) {
      if (*p == '"' || *p == '\\') sb_str(s, "\\");
      sb_put(s, p, 1);
    }
    sb_str(s, "\"");
    return;
  }
  size_t n = strlen(v), i = 0;
  bool first = true;
  while (i < n) {
    size_t take = n - i > 39 ? 39 : n - i;
    while (i + take < n && take > 0 && ((unsigned char)v[i + take] & 0xC0) == 0x80) take--; /* a whole character */
    if (take == 0) take = 1;
    char enc[64];
    mq_base64_encode((const unsigned char *)v + i, take, enc);
    if (!first) sb_str(s, "\r\n ");
    sb_str(s, "=?UTF-8?B?");
    sb_str(s, enc);
    sb_str(s, "?=");
    first = false;
    i += take;
  }
}

static void put_address(sb_t *s, const char *name, const char *addr) {
  if (name && name[0]) {
    put_header_text(s, name, true);
    sb_str(s, " ");
  }
  sb_str(s, "<");
  sb_str(s, addr);
  sb_str(s, ">");
}

/* base64 of a body in 76-column lines. */
static void put_body(sb_t *s, const char *body) {
  const unsigned char *p = (const unsigned char *)body;
  size_t n = strlen(body);
  for (size_t i = 0; i < n; i += 57) { /* 57 bytes -> 76 characters */
    char line[80];
    mq_base64_encode(p + i, n - i < 57 ? n - i : 57, line);
    sb_str(s, line);
    sb_str(s, "\r\n");
  }
}

static void put_part(sb_t *s, const char *boundary, const char *type, const char *body) {
  sb_str(s, "--");
  sb_str(s, boundary);
  sb_str(s, "\r\nContent-Type: ");
  sb_str(s, type);
  sb_str(s, "; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
  put_body(s, body);
}

mq_code_t mq_mail_build(const mq_mail_t *m, mq_arena_t *a, char **out, size_t *len, mq_error_t *err) {
  mq_error_collect(err);
  mq_check_email(err, "from_addr", m->from_addr);
  mq_check_email(err, "to_addr", m->to_addr);
  if (has_line_break(m->from_name)) mq_error_set(err, MQ_INVALID_ARGUMENT, "from_name", "must be one line");
  if (has_line_break(m->to_name)) mq_error_set(err, MQ_INVALID_ARGUMENT, "to_name", "must be one line");
  if (!m->subject || has_line_break(m->subject))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "subject", "is required, on one line");
  if (!m->text) mq_error_set(err, MQ_INVALID_ARGUMENT, "text", "is required");
  if (!m->message_id || !m->message_id[0] || !ascii_printable(m->message_id) || strpbrk(m->message_id, "<> "))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "message_id", "must be printable ASCII without <, > or spaces");
  if (m->list_unsubscribe && (!ascii_printable(m->list_unsubscribe) || strpbrk(m->list_unsubscribe, "<> ")))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "list_unsubscribe", "must be a URL");
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;

  sb_t s = {.a = a};
  char date[64];
  time_t t = (time_t)(m->date_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  sb_str(&s, "Date: ");
  sb_str(&s, date);
  sb_str(&s, "\r\nFrom: ");
  put_address(&s, m->from_name, m->from_addr);
  sb_str(&s, "\r\nTo: ");
  put_address(&s, m->to_name, m->to_addr);
  sb_str(&s, "\r\nSubject: ");
  put_header_text(&s, m->subject, false);
  sb_str(&s, "\r\nMessage-ID: <");
  sb_str(&s, m->message_id);
  sb_str(&s, ">\r\n");
  if (m->list_unsubscribe) {
    sb_str(&s, "List-Unsubscribe: <");
    sb_str(&s, m->list_unsubscribe);
    sb_str(&s, ">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
  }
  char boundary[48] = "=_mq_";
  mq_random_hex(boundary + 5, 32);
  sb_str(&s, "MIME-Version: 1.0\r\n");
  if (m->html) {
    sb_str(&s, "Content-Type: multipart/alternative;\r\n boundary=\"");
    sb_str(&s, boundary);
    sb_str(&s, "\"\r\n\r\n");
    put_part(&s, boundary, "text/plain", m->text);
    put_part(&s, boundary, "text/html", m->html);
    sb_str(&s, "--");
    sb_str(&s, boundary);
    sb_str(&s, "--\r\n");
  } else {
    sb_str(&s, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    put_body(&s, m->text);
  }
  *out = s.b;
  *len = s.n;
  return MQ_OK;
}

/* ---- SMTP ------------------------------------------------------------------------- */

typedef struct {
  const char *p;
  size_t left;
} upload_t;

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *arg) {
  upload_t *u = arg;
  size_t n = size * nmemb < u->left ? size * nmemb : u->left;
  memcpy(buf, u->p, n);
  u->p += n;
  u->left -= n;
  return n;
}

mq_code_t mq_smtp_send(const mq_smtp_opts_t *o, const char *from, const char *to, const char *msg, size_t len,
                       mq_error_t *err) {
  if (!o->url || (strncmp(o->url, "smtp://", 7) && strncmp(o->url, "smtps://", 8)))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "MARQUEE_SMTP_URL", "must be smtp://host:port or smtps://…");
  CURL *c = curl_easy_init();
  if (!c) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "no SMTP client");
  char env_from[400], env_to[400];
  snprintf(env_from, sizeof env_from, "<%s>", from);
  snprintf(env_to, sizeof env_to, "<%s>", to);
  struct curl_slist *rcpt = curl_slist_append(NULL, env_to);
  upload_t u = {msg, len};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, o->url);
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, env_from);
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(c, CURLOPT_READDATA, &u);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(o->require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms > 0 ? o->timeout_ms : 30000));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (o->user && o->user[0] && o->password) {
    curl_easy_setopt(c, CURLOPT_USERNAME, o->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, o->password);
  }
  CURLcode cc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(c);
  if (cc == CURLE_OK) return MQ_OK;
  const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
  if (code >= 500 && code < 600)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "the SMTP server refused the message (%ld): %.200s", code,
                        why);
  return mq_error_set(err, MQ_UNAVAILABLE, NULL, "SMTP: %.200s%s", why, code ? " (a temporary reply)" : "");
}
