/*
 * mq_mail.h — an e-mail as the bytes an SMTP server takes (RFC 5322 with
 * MIME, RFC 2045-2047), and its delivery over SMTP (libcurl).
 *
 * The message is multipart/alternative (a text part, and an HTML part when
 * there is one), UTF-8 throughout: non-ASCII header text is an RFC 2047
 * encoded word, bodies are base64 in 76-column lines, every line ends in
 * CRLF. Headers: Date, From, To, Subject, Message-ID, MIME-Version, and
 * List-Unsubscribe / List-Unsubscribe-Post (RFC 8058, one-click) when the
 * mail is not transactional. A Message-ID fixed per delivery lets a
 * receiver recognise a resend.
 *
 * Invariants:
 *   1. No header value can carry a line break: a display name or subject
 *      with CR or LF is refused (INVALID_ARGUMENT naming it), so input
 *      never becomes a header of its own (header injection).
 *   2. Addresses are checked (lib/mq_validate.h) before they are written.
 *   3. mq_smtp_send blocks for at most its timeout; call it from a worker
 *      or consumer thread, never a completion-queue thread.
 */
#ifndef MQ_MAIL_H
#define MQ_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

typedef struct mq_mail {
  const char *from_name, *from_addr; /* "Marquee", "no-reply@marquee.example" */
  const char *to_name, *to_addr;     /* to_name may be NULL or "" */
  const char *subject;               /* UTF-8, one line */
  const char *text;                  /* UTF-8 body */
  const char *html;                  /* UTF-8 body; NULL: text only */
  const char *message_id;            /* without brackets: "id@host" */
  const char *list_unsubscribe;      /* https URL for one-click unsubscribe; NULL for transactional mail */
  int64_t date_ms;                   /* the Date header (unix ms) */
} mq_mail_t;

/* The message in `a` (*out, *len; NUL-terminated too). */
mq_code_t mq_mail_build(const mq_mail_t *m, mq_arena_t *a, char **out, size_t *len, mq_error_t *err);

typedef struct mq_smtp_opts {
  const char *url;             /* smtp://host:port (STARTTLS when offered) or smtps://host:port */
  const char *user, *password; /* AUTH when both are set */
  bool require_tls;            /* refuse to send without TLS (STARTTLS or smtps) */
  int timeout_ms;              /* whole transaction; <= 0: 30000 */
} mq_smtp_opts_t;

/* Sends `msg` (from mq_mail_build) from `from` to `to` (bare addresses).
 * MQ_OK: the server took it (250). MQ_UNAVAILABLE: a temporary failure (no
 * connection, timeout, a 4xx reply): send again later. MQ_FAILED_PRECONDITION:
 * a permanent refusal (5xx, e.g. no such mailbox), with the server's code in
 * err->message. */
mq_code_t mq_smtp_send(const mq_smtp_opts_t *o, const char *from, const char *to, const char *msg, size_t len,
                       mq_error_t *err);

#endif
