/*
 * mq_error.c — names, messages and the single gRPC mapping generated from the
 * MQ_CODES table in mq_error.h. Nothing else in Marquee converts codes.
 */
#include "core/mq_error.h"

#include <stdio.h>
#include <string.h>

const char *mq_code_name(mq_code_t code) {
  switch (code) {
#define MQ_XX_NAME(name, grpc, msg) \
  case MQ_##name:                   \
    return #name;
    MQ_CODES(MQ_XX_NAME)
#undef MQ_XX_NAME
    case MQ_PENDING:
      return "PENDING";
    default:
      return "INTERNAL";
  }
}

const char *mq_code_message(mq_code_t code) {
  switch (code) {
#define MQ_XX_MSG(name, grpc, msg) \
  case MQ_##name:                  \
    return msg;
    MQ_CODES(MQ_XX_MSG)
#undef MQ_XX_MSG
    default:
      return "internal error";
  }
}

grpc_status_code mq_code_to_grpc(mq_code_t code) {
  switch (code) {
#define MQ_XX_GRPC(name, grpc, msg) \
  case MQ_##name:                   \
    return grpc;
    MQ_CODES(MQ_XX_GRPC)
#undef MQ_XX_GRPC
    default:
      return GRPC_STATUS_INTERNAL;
  }
}

const char *mq_grpc_status_name(grpc_status_code status) {
  static const char *const names[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  return (unsigned)status < sizeof names / sizeof *names ? names[status] : "UNKNOWN";
}

mq_code_t mq_code_from_grpc(grpc_status_code status) {
  /* The first row mapping to a status is its generic code. */
#define MQ_XX_FROM(name, grpc, msg) \
  if (status == (grpc)) return MQ_##name;
  MQ_CODES(MQ_XX_FROM)
#undef MQ_XX_FROM
  return MQ_UNKNOWN;
}

bool mq_code_is_violation(mq_code_t code) {
  return code == MQ_INVALID_ARGUMENT || code == MQ_OUT_OF_RANGE;
}

/* Collecting: 0 nothing, 1 a refusal (NOT_FOUND, FAILED_PRECONDITION, …),
 * 2 a bad field, 3 a failure of the system (the request may be fine). */
static int rank(mq_code_t code, bool violation) {
  if (code == MQ_OK) return 0;
  if (violation) return 2;
  switch (mq_code_to_grpc(code)) {
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_INTERNAL:
    case GRPC_STATUS_UNKNOWN:
    case GRPC_STATUS_DATA_LOSS:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED:
      return 3;
    default:
      return 1;
  }
}

static void add_violation(mq_error_t *err, const char *field, const char *description) {
  if (err->n_violations > MQ_ERROR_VIOLATIONS_MAX) err->n_violations = 0; /* never set: start the list */
  for (unsigned i = 0; i < err->n_violations; i++)
    if (!strcmp(err->violations[i].field, field)) return; /* one entry per field: the first reason */
  if (err->n_violations == MQ_ERROR_VIOLATIONS_MAX) {
    err->more_violations++;
    return;
  }
  mq_violation_t *v = &err->violations[err->n_violations++];
  snprintf(v->field, sizeof v->field, "%s", field);
  snprintf(v->description, sizeof v->description, "%s", description);
}

void mq_error_rename_field(mq_error_t *err, const char *to) {
  if (!err || !to) return;
  if (err->n_violations <= MQ_ERROR_VIOLATIONS_MAX)
    for (unsigned i = 0; i < err->n_violations; i++)
      if (!strcmp(err->violations[i].field, err->field))
        snprintf(err->violations[i].field, sizeof err->violations[i].field, "%s", to);
  snprintf(err->field, sizeof err->field, "%s", to);
}

void mq_error_add_violation(mq_error_t *err, const char *field, const char *description) {
  if (err && field && field[0]) add_violation(err, field, description ? description : "");
}

mq_code_t mq_error_setv(mq_error_t *err, mq_code_t code, const char *field, const char *fmt, va_list ap) {
  if (!err) return code;
  char message[MQ_ERROR_MESSAGE_MAX];
  if (fmt)
    vsnprintf(message, sizeof message, fmt, ap);
  else
    snprintf(message, sizeof message, "%s", mq_code_message(code));
  bool violation = mq_code_is_violation(code) && field && field[0];
  if (err->collecting == MQ_ERROR_COLLECTING) {
    if (violation) add_violation(err, field, message);
    /* the stronger kind wins, and within a kind the first: a failure of
     * the system over a bad field over a refusal (a lookup's NOT_FOUND
     * that its caller turns into a bad field is replaced by it) */
    if (rank(code, violation) <= rank(err->code, mq_code_is_violation(err->code) && err->field[0])) return code;
  } else {
    err->n_violations = err->more_violations = 0;
    if (violation) add_violation(err, field, message);
  }
  err->code = code;
  err->retry_after_ms = 0;
  snprintf(err->field, sizeof err->field, "%s", field ? field : "");
  memcpy(err->message, message, sizeof err->message);
  return code;
}

void mq_error_collect(mq_error_t *err) {
  if (!err) return;
  mq_error_clear(err);
  err->collecting = MQ_ERROR_COLLECTING;
}

mq_code_t mq_error_collected(mq_error_t *err) {
  if (!err) return MQ_OK;
  err->collecting = 0;
  return err->code;
}

mq_code_t mq_error_set(mq_error_t *err, mq_code_t code, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mq_error_setv(err, code, field, fmt, ap);
  va_end(ap);
  return code;
}

void mq_error_clear(mq_error_t *err) {
  if (!err) return;
  err->code = MQ_OK;
  err->retry_after_ms = 0;
  err->field[0] = '\0';
  err->message[0] = '\0';
  err->n_violations = err->more_violations = 0;
  err->collecting = 0;
}

void mq_error_format(const mq_error_t *err, char *buf, size_t len) {
  if (!len) return;
  if (!err || (!err->message[0] && !err->field[0])) {
    snprintf(buf, len, "%s", mq_code_message(err ? err->code : MQ_INTERNAL));
  } else if (err->field[0] && mq_code_is_violation(err->code) && err->n_violations > 1 &&
             err->n_violations <= MQ_ERROR_VIOLATIONS_MAX) {
    unsigned more = err->n_violations - 1 + err->more_violations;
    snprintf(buf, len, "%s: %s (and %u more invalid field%s: see the google.rpc.BadRequest details)", err->field,
             err->message[0] ? err->message : mq_code_message(err->code), more, more == 1 ? "" : "s");
  } else if (err->field[0]) {
    snprintf(buf, len, "%s: %s", err->field, err->message[0] ? err->message : mq_code_message(err->code));
  } else {
    snprintf(buf, len, "%s", err->message);
  }
}
