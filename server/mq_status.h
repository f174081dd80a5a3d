/*
 * mq_status.h — the rich error model: a refusal's google.rpc.Status, sent
 * as the `grpc-status-details-bin` trailer beside grpc-status and
 * grpc-message (docs/ERRORS.md).
 *
 * What goes in, by the error (core/mq_error.h):
 *   every refusal          ErrorInfo {reason: the code's name, e.g.
 *                          "RATE_LIMITED"; domain "marquee"; metadata:
 *                          field, retry_after_ms, method when known}
 *   a bad request field    BadRequest with every violation collected
 *   retry_after_ms > 0     RetryInfo {retry_delay}
 *   FAILED_PRECONDITION,   PreconditionFailure {type "VERSION" when the
 *   ABORTED                field is "version", else "STATE"; subject the
 *                          field or the method}
 * The Status's code and message equal the call's grpc-status and
 * grpc-message (clients such as Python's grpc_status check that they do).
 *
 * Ownership: everything is built in the arena given; the bytes live as long
 * as it does. No failure: an arena allocation that fails ends the process
 * (core/mq_xmalloc.h).
 */
#ifndef MQ_STATUS_H
#define MQ_STATUS_H

#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

#define MQ_STATUS_DOMAIN "marquee"

/* The serialized google.rpc.Status of `err` sent with `status` and
 * `message` (the grpc-message text); *out points into `a`. `method` may be
 * NULL. Returns the length (more than 0 for any refusal). */
size_t mq_status_details_pack(mq_arena_t *a, const mq_error_t *err, grpc_status_code status, const char *message,
                              const char *method, uint8_t **out);

#endif
