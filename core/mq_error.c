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

mq_code_t mq_code_from_grpc(grpc_status_code status) {
  /* The first row mapping to a status is its generic code. */
#define MQ_XX_FROM(name, grpc, msg) \
  if (status == (grpc)) return MQ_##name;
  MQ_CODES(MQ_XX_FROM)
#undef MQ_XX_FROM
  return MQ_UNKNOWN;
}

mq_code_t mq_error_setv(mq_error_t *err, mq_code_t code, const char *field, const char *fmt, va_list ap) {
  if (!err) return code;
  err->code = code;
  err->retry_after_ms = 0;
  snprintf(err->field, sizeof err->field, "%s", field ? field : "");
  if (fmt)
    vsnprintf(err->message, sizeof err->message, fmt, ap);
  else
    snprintf(err->message, sizeof err->message, "%s", mq_code_message(code));
  return code;
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
}

void mq_error_format(const mq_error_t *err, char *buf, size_t len) {
  if (!len) return;
  if (!err || (!err->message[0] && !err->field[0])) {
    snprintf(buf, len, "%s", mq_code_message(err ? err->code : MQ_INTERNAL));
  } else if (err->field[0]) {
    snprintf(buf, len, "%s: %s", err->field, err->message[0] ? err->message : mq_code_message(err->code));
  } else {
    snprintf(buf, len, "%s", err->message);
  }
}
