/*
 * mq_client.h — Marquee's C client library on the gRPC C core.
 *
 * Works from the same generated method descriptors as the server
 * (mq_service.h), so typed stubs (<file>.mq-client.h, generated) are thin
 * wrappers over mq_client_unary / mq_client_stream_*. Supports deadlines,
 * bearer tokens, request ids and arbitrary metadata, TLS, and all four call
 * kinds. A client (one channel) is thread-safe and meant to be shared; a
 * stream is used by one thread at a time.
 *
 * Errors: a non-OK gRPC status comes back as mq_code_from_grpc(status), with
 * err->message = the status details and err->field = the server's
 * `x-error-field` trailer (the request field at fault), if any.
 * Ownership: responses are allocated with protobuf-c's default allocator;
 * free them with protobuf_c_message_free_unpacked(msg, NULL) (or the typed
 * <type>__free_unpacked).
 */
#ifndef MQ_CLIENT_H
#define MQ_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"
#include "core/mq_service.h"

typedef struct mq_client mq_client_t;
typedef struct mq_client_stream mq_client_stream_t;

typedef struct mq_client_opts {
  const char *target;          /* "127.0.0.1:50051" */
  const char *tls_ca_file;     /* PEM roots; NULL = plaintext */
  const char *tls_server_name; /* SNI / verification name override; NULL = from target */
  int64_t default_deadline_ms; /* used when a call gives none; 0 = 10000 */
  int64_t max_recv_bytes;      /* 0 = 16 MiB */
} mq_client_opts_t;

typedef struct mq_md_kv {
  const char *key; /* lower case; "-bin" suffix for binary values */
  const char *value;
  size_t value_len; /* 0 = strlen(value) */
} mq_md_kv_t;

typedef struct mq_call_opts {
  int64_t deadline_ms;      /* relative; 0 = client default; < 0 = none */
  const char *bearer_token; /* sent as "authorization: Bearer <token>" */
  const char *request_id;   /* sent as x-request-id */
  const mq_md_kv_t *metadata;
  size_t n_metadata;
  /* Optional outputs: the server's echoed x-request-id and x-trace-id. */
  char *out_request_id;
  size_t out_request_id_len;
  char *out_trace_id;
  size_t out_trace_id_len;
} mq_call_opts_t;

/* Creates a channel; does not connect until the first call. */
mq_code_t mq_client_create(const mq_client_opts_t *opts, mq_client_t **out, mq_error_t *err);
void mq_client_destroy(mq_client_t *cl);

/* One unary call. On MQ_OK *resp is a new message the caller frees. */
mq_code_t mq_client_unary(mq_client_t *cl, const mq_method_desc_t *m, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, const mq_call_opts_t *opts, mq_error_t *err);
/* Unary call with raw bytes in and out (for tests of malformed input); on
 * MQ_OK *resp is malloc'ed (caller frees), possibly with *resp_len == 0. */
mq_code_t mq_client_unary_raw(mq_client_t *cl, const char *path, const void *req, size_t req_len, void **resp,
                              size_t *resp_len, const mq_call_opts_t *opts, mq_error_t *err);

/* Streams (any streaming kind). Server-streaming: open, send the one request,
 * close_send, then recv until the end. */
mq_code_t mq_client_stream_open(mq_client_t *cl, const mq_method_desc_t *m, const mq_call_opts_t *opts,
                                mq_client_stream_t **out, mq_error_t *err);
mq_code_t mq_client_stream_send(mq_client_stream_t *st, const ProtobufCMessage *msg, mq_error_t *err);
mq_code_t mq_client_stream_close_send(mq_client_stream_t *st, mq_error_t *err);
/* Next message: MQ_OK with *msg set, or the end of the stream: *msg = NULL
 * and the call's final status is returned (MQ_OK for a clean end). */
mq_code_t mq_client_stream_recv(mq_client_stream_t *st, ProtobufCMessage **msg, mq_error_t *err);
/* Waits for and returns the final status (drains unread messages). */
mq_code_t mq_client_stream_finish(mq_client_stream_t *st, mq_error_t *err);
/* Cancels the call (the server sees CANCELLED). */
void mq_client_stream_cancel(mq_client_stream_t *st);
void mq_client_stream_free(mq_client_stream_t *st);

#endif
