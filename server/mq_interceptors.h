/*
 * mq_interceptors.h — the fixed interceptor chain every call passes, in order:
 *
 *   1. metrics   in-flight gauge up (its `after` records status and latency)
 *   2. deadline  a call whose deadline already passed is refused
 *   3. ids       x-request-id (validated) or a new one; trace id from a W3C
 *                `traceparent` or a new one; both echoed in initial metadata
 *   4. auth      `authorization: Bearer <token>` verified by the pluggable
 *                verifier (no I/O); a present but bad token is refused even on
 *                public methods
 *   5. policy    the method row's declared policy (mq_service.h)
 *   after:       access log line (MARQUEE_ACCESS_LOG), metrics
 *
 * The pure parsing and policy functions are exported for unit tests.
 */
#ifndef MQ_INTERCEPTORS_H
#define MQ_INTERCEPTORS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/mq_service.h"
#include "handlers/mq_call.h"

/* 1..64 chars of [A-Za-z0-9._:-] */
bool mq_md_valid_request_id(const char *v, size_t n);
/* W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>", trace id not all zero.
 * On success copies the 32 lower-case hex trace id into out[33]. */
bool mq_md_parse_traceparent(const char *v, size_t n, char out[33]);
/* "Bearer <token>" (scheme case-insensitive, one space). Returns false for
 * any other shape; on success points *tok into v. */
bool mq_md_parse_bearer(const char *v, size_t n, const char **tok, size_t *tok_len);
/* Decision for `policy` given the caller (NULL = anonymous): MQ_OK,
 * MQ_UNAUTHENTICATED or MQ_PERMISSION_DENIED, with an actionable message. */
mq_code_t mq_policy_check(mq_policy_t policy, const mq_principal_t *who, mq_error_t *err);

/* The access-log level of a call that ended with `status` (what the client
 * got) for application code `code`: info for success and for the refusals
 * a working system gives every day (not found, already exists, sold out,
 * a state or version conflict, a client that went away); warn for what a
 * client or operator should look at (bad requests, authentication and
 * permission refusals, rate limits, deadlines, unavailability); error for
 * INTERNAL, UNKNOWN and DATA_LOSS. Values are mq_log_level_t. */
int mq_access_log_level(mq_code_t code, grpc_status_code status);

#endif
