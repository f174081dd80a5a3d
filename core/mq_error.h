/*
 * mq_error.h — Marquee's one error vocabulary (DESIGN.md §2, libuv/curl style).
 *
 * Every function that can fail returns an mq_code_t and fills an mq_error_t
 * (code, the offending field if any, and a message a client developer can act
 * on). MQ_CODES below is the single table: each row names an application code,
 * the gRPC status it maps to, and a default message. mq_code_to_grpc() in
 * mq_error.c is the only place codes become gRPC statuses; apply the litmus
 * test of grpc/status.h when adding a row: UNAVAILABLE = retry this call,
 * ABORTED = retry at a higher level, FAILED_PRECONDITION = do not retry until
 * the system's state changes.
 *
 * Ownership: mq_error_t is a plain value (no heap); callers own it, usually
 * on the stack. Read next: mq_service.h, mq_call.h.
 */
#ifndef MQ_ERROR_H
#define MQ_ERROR_H

#include <grpc/status.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* XX(name, grpc status, default message) */
#define MQ_CODES(XX)                                                                                   \
  XX(OK, GRPC_STATUS_OK, "ok")                                                                         \
  XX(CANCELLED, GRPC_STATUS_CANCELLED, "the call was cancelled")                                       \
  XX(UNKNOWN, GRPC_STATUS_UNKNOWN, "unknown error")                                                    \
  XX(INVALID_ARGUMENT, GRPC_STATUS_INVALID_ARGUMENT, "invalid argument")                               \
  XX(MALFORMED_MESSAGE, GRPC_STATUS_INVALID_ARGUMENT, "the request is not a valid protobuf message")   \
  XX(DEADLINE_EXCEEDED, GRPC_STATUS_DEADLINE_EXCEEDED, "the deadline expired")                         \
  XX(NOT_FOUND, GRPC_STATUS_NOT_FOUND, "not found")                                                    \
  XX(ALREADY_EXISTS, GRPC_STATUS_ALREADY_EXISTS, "already exists")                                     \
  XX(PERMISSION_DENIED, GRPC_STATUS_PERMISSION_DENIED, "permission denied")                            \
  XX(RESOURCE_EXHAUSTED, GRPC_STATUS_RESOURCE_EXHAUSTED, "resource exhausted")                         \
  XX(RATE_LIMITED, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many requests; retry later")                   \
  XX(FAILED_PRECONDITION, GRPC_STATUS_FAILED_PRECONDITION, "failed precondition")                      \
  XX(ABORTED, GRPC_STATUS_ABORTED, "aborted; retry the whole operation")                               \
  XX(OUT_OF_RANGE, GRPC_STATUS_OUT_OF_RANGE, "out of range")                                           \
  XX(UNIMPLEMENTED, GRPC_STATUS_UNIMPLEMENTED, "method not implemented")                               \
  XX(INTERNAL, GRPC_STATUS_INTERNAL, "internal error")                                                 \
  XX(UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, "temporarily unavailable; retry with backoff")              \
  XX(STORE_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE, "the database is unavailable; retry with backoff")    \
  XX(OVERLOADED, GRPC_STATUS_UNAVAILABLE, "the server is overloaded; retry with backoff")              \
  XX(SHUTTING_DOWN, GRPC_STATUS_UNAVAILABLE, "the server is shutting down; retry on another instance") \
  XX(DATA_LOSS, GRPC_STATUS_DATA_LOSS, "data loss")                                                    \
  XX(UNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED, "authentication required")

typedef enum mq_code {
#define MQ_XX_ENUM(name, grpc, msg) MQ_##name,
  MQ_CODES(MQ_XX_ENUM)
#undef MQ_XX_ENUM
      MQ_CODE_COUNT_,
  /* Not a status: a streaming handler returns it to keep the call open after
   * it returns (it took a reference with mq_call_ref and will mq_call_finish). */
  MQ_PENDING = 1000
} mq_code_t;

#define MQ_ERROR_FIELD_MAX 64
#define MQ_ERROR_MESSAGE_MAX 256
#define MQ_ERROR_VIOLATIONS_MAX 8
#define MQ_ERROR_VIOLATION_MAX 128

/* One bad field of a request (sent as a google.rpc.BadRequest entry). */
typedef struct mq_violation {
  char field[MQ_ERROR_FIELD_MAX];
  char description[MQ_ERROR_VIOLATION_MAX];
} mq_violation_t;

typedef struct mq_error {
  mq_code_t code;
  char field[MQ_ERROR_FIELD_MAX];     /* offending request field ("" if none) */
  char message[MQ_ERROR_MESSAGE_MAX]; /* for the client; never secrets or PII */
  int64_t retry_after_ms;             /* > 0: RetryInfo, and the `retry-after-ms` trailer */
  /* Every bad field of the request (INVALID_ARGUMENT with a field): one
   * unless the handler collected them (mq_error_collect). `more` counts
   * those past MQ_ERROR_VIOLATIONS_MAX. */
  unsigned n_violations, more_violations;
  mq_violation_t violations[MQ_ERROR_VIOLATIONS_MAX];
  uint32_t collecting; /* MQ_ERROR_COLLECTING between collect and collected */
} mq_error_t;

#define MQ_ERROR_COLLECTING 0x436f6c6cu

/* "INVALID_ARGUMENT" */
const char *mq_code_name(mq_code_t code);
/* The row's default message. */
const char *mq_code_message(mq_code_t code);
/* The one mapping to gRPC status. Unknown codes map to INTERNAL. */
grpc_status_code mq_code_to_grpc(mq_code_t code);
/* The canonical name of a gRPC status ("RESOURCE_EXHAUSTED"), as logs and
 * dashboards spell it; "UNKNOWN" for a value outside the 17. */
const char *mq_grpc_status_name(grpc_status_code status);
/* Inverse for clients: the generic code for a gRPC status. */
mq_code_t mq_code_from_grpc(grpc_status_code status);

/* Fill `err` (may be NULL) and return `code`. `field` may be NULL; `fmt` may
 * be NULL for the row's default message. Truncates silently. */
mq_code_t mq_error_set(mq_error_t *err, mq_code_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
mq_code_t mq_error_setv(mq_error_t *err, mq_code_t code, const char *field, const char *fmt, va_list ap);
void mq_error_clear(mq_error_t *err);

/* Reporting every bad field of a request, not just the first (AIP-193):
 *
 *   mq_error_collect(err);
 *   if (mq_check_text(err, "title", ...) == MQ_OK) e->title = in->title;
 *   if (mq_check_url(err, "online_url", ...) == MQ_OK) ...;
 *   if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
 *
 * Between the two, an INVALID_ARGUMENT naming a field adds a violation
 * (err->field and err->message stay the first one's) and the validator
 * goes on to the next field. Which error the call reports goes by kind,
 * then by order: a failure of the system (the store is down, a deadline)
 * wins over bad fields, which win over refusals (NOT_FOUND,
 * FAILED_PRECONDITION, …) — so a lookup's NOT_FOUND that the validator
 * turns into "venue_id: not a venue of this organization" reports the
 * latter. mq_error_collected ends collecting and returns the reported
 * code (MQ_OK when nothing was wrong).
 * Outside collecting, each mq_error_set replaces the error (one violation). */
void mq_error_collect(mq_error_t *err);
mq_code_t mq_error_collected(mq_error_t *err);
/* Renames the error's field (a nested request's path, e.g. "venue.name" for
 * what a shared check called "name"), in the violation list too. */
void mq_error_rename_field(mq_error_t *err, const char *to);
/* Adds one bad field to err's list (one entry per field; overflow is
 * counted): how a client copies a BadRequest it received. */
void mq_error_add_violation(mq_error_t *err, const char *field, const char *description);
/* True for a code that names a bad request field (a BadRequest violation). */
bool mq_code_is_violation(mq_code_t code);
/* "email: must be ..." (field, colon, message) or just the message: the text
 * sent as grpc-message. */
void mq_error_format(const mq_error_t *err, char *buf, size_t len);

#endif
