/*
 * mq_client.c — the C client library (mq_client.h) on the gRPC C core.
 *
 * A client is one grpc_channel plus its defaults; every call gets its own
 * pluck completion queue, so calls on one client never share state and the
 * client can be used from many threads. A unary call is one six-op batch
 * (send metadata, message and close; receive metadata, message and status)
 * plucked synchronously. A stream is a call driven by one small batch per
 * operation, each plucked before the function returns, plus one
 * RECV_STATUS_ON_CLIENT batch started at open and plucked when the status is
 * needed (end of stream, a failed send, free):
 *
 *   open ──> [send]* ──> close_send ──> [recv → msg]* ──> recv → NULL + status
 *     │   (send/recv may interleave: bidi)                       │
 *     └── cancel (any thread) ──> ops fail ──> status CANCELLED ─┘
 *
 * Invariants:
 *  - at most one batch of each op type is outstanding per call (C-core rule):
 *    every batch except the status batch is plucked before returning, and the
 *    status batch is started exactly once and plucked exactly once;
 *  - a completion queue is destroyed only after shutdown and a drain that
 *    returned GRPC_QUEUE_SHUTDOWN, and after grpc_call_unref;
 *  - every byte buffer, slice and metadata array we receive is freed here;
 *    responses handed to the caller are protobuf-c default-allocator messages;
 *  - once a stream's status is known it is final: recv returns it after the
 *    messages that arrived before it. C core delivers a status only after
 *    those messages were read, and completes SEND_MESSAGE successfully on a
 *    call the server ended until it has read the server's frames; so send
 *    polls the status batch first and, when the call is over, returns
 *    MQ_FAILED_PRECONDITION (or a known error status) and recv tells the rest.
 * Status mapping goes through mq_code_from_grpc() only (mq_error.c).
 * Read next: mq_client.h for the contract, clients/cli.c for a user.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/mq_client.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define DEFAULT_DEADLINE_MS 10000
#define DEFAULT_MAX_RECV_BYTES (16 * 1024 * 1024)
#define MAX_CA_FILE_BYTES (1024 * 1024)

struct mq_client {
  grpc_channel *channel;
  int64_t default_deadline_ms; /* > 0, or < 0 for none */
};

struct mq_client_stream {
  const mq_method_desc_t *method;
  grpc_completion_queue *cq;
  grpc_call *call;
  /* caller's optional output buffers (must outlive the first recv/finish) */
  char *out_request_id;
  size_t out_request_id_len;
  char *out_trace_id;
  size_t out_trace_id_len;
  /* the status batch, started at open */
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
  bool status_started;  /* the status batch is outstanding or done */
  bool status_received; /* final_code/final_err hold the outcome */
  bool initial_md_received;
  bool recv_done; /* RECV_MESSAGE returned the end (or the call was abandoned) */
  bool send_closed;
  mq_code_t final_code;
  mq_error_t final_err;
};

/* Distinct pluck tags: addresses of these objects. */
static char tag_batch, tag_status;

/* ---- small helpers --------------------------------------------------------- */

static gpr_timespec deadline_from_ms(int64_t ms) {
  if (ms < 0) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int64_t effective_deadline_ms(const mq_client_t *cl, const mq_call_opts_t *opts) {
  if (opts && opts->deadline_ms != 0) return opts->deadline_ms;
  return cl->default_deadline_ms;
}

/* Copies a slice into a NUL-terminated buffer, truncating. */
static void slice_to_buf(grpc_slice s, char *buf, size_t len) {
  if (!buf || len == 0) return;
  size_t n = GRPC_SLICE_LENGTH(s);
  if (n >= len) n = len - 1;
  memcpy(buf, GRPC_SLICE_START_PTR(s), n);
  buf[n] = '\0';
}

/* The value of `key` in `md`, or NULL. */
static const grpc_slice *md_find(const grpc_metadata_array *md, const char *key) {
  for (size_t i = 0; i < md->count; i++)
    if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) return &md->metadata[i].value;
  return NULL;
}

/* Fills an optional output buffer from the first array holding `key`; leaves
 * a non-empty buffer alone (initial metadata wins over trailers). */
static void md_copy_out(const grpc_metadata_array *md, const char *key, char *buf, size_t len) {
  if (!buf || len == 0 || buf[0] != '\0' || !md) return;
  const grpc_slice *v = md_find(md, key);
  if (v) slice_to_buf(*v, buf, len);
}

static void clear_out(char *buf, size_t len) {
  if (buf && len > 0) buf[0] = '\0';
}

/* The google.rpc.Status of grpc-status-details-bin into err: every
 * BadRequest violation and RetryInfo's delay. The returned code stays the
 * generic one of the status (callers compare against those); ErrorInfo's
 * exact reason is not folded in. A trailer that does not parse is
 * ignored. */
static void rich_details(const grpc_slice *bin, mq_error_t *err) {
  Google__Rpc__Status *st = google__rpc__status__unpack(NULL, GRPC_SLICE_LENGTH(*bin), GRPC_SLICE_START_PTR(*bin));
  if (!st) return;
  for (size_t i = 0; i < st->n_details; i++) {
    const Google__Protobuf__Any *any = st->details[i];
    const char *slash = any->type_url ? strrchr(any->type_url, '/') : NULL;
    const char *type = slash ? slash + 1 : "";
    if (!strcmp(type, "google.rpc.BadRequest")) {
      Google__Rpc__BadRequest *br = google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
      if (br) err->n_violations = err->more_violations = 0; /* the list replaces the one from x-error-field */
      for (size_t k = 0; br && k < br->n_field_violations; k++)
        mq_error_add_violation(err, br->field_violations[k]->field, br->field_violations[k]->description);
      if (br) google__rpc__bad_request__free_unpacked(br, NULL);
    } else if (!strcmp(type, "google.rpc.RetryInfo")) {
      Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
      if (ri && ri->retry_delay)
        err->retry_after_ms = ri->retry_delay->seconds * 1000 + ri->retry_delay->nanos / 1000000;
      if (ri) google__rpc__retry_info__free_unpacked(ri, NULL);
    }
  }
  google__rpc__status__free_unpacked(st, NULL);
}

/* Turns a received status into a code and error (message = details, field =
 * the x-error-field trailer, retry_after_ms = the retry-after-ms trailer),
 * then the rich details when the server sent them (rich_details). */
static mq_code_t status_to_error(grpc_status_code status, grpc_slice details, const grpc_metadata_array *trailers,
                                 mq_error_t *err) {
  if (status == GRPC_STATUS_OK) {
    mq_error_clear(err);
    return MQ_OK;
  }
  mq_code_t code = mq_code_from_grpc(status);
  char msg[MQ_ERROR_MESSAGE_MAX];
  char field[MQ_ERROR_FIELD_MAX] = "";
  slice_to_buf(details, msg, sizeof msg);
  const grpc_slice *f = trailers ? md_find(trailers, "x-error-field") : NULL;
  if (f) slice_to_buf(*f, field, sizeof field);
  char retry[24] = "";
  const grpc_slice *ra = trailers ? md_find(trailers, "retry-after-ms") : NULL;
  if (ra) slice_to_buf(*ra, retry, sizeof retry);
  if (msg[0] == '\0')
    mq_error_set(err, code, field, NULL);
  else
    mq_error_set(err, code, field, "%s", msg);
  if (err && retry[0]) err->retry_after_ms = strtoll(retry, NULL, 10);
  const grpc_slice *bin = trailers ? md_find(trailers, "grpc-status-details-bin") : NULL;
  if (bin && err) rich_details(bin, err);
  return code;
}

static mq_code_t call_error(grpc_call_error e, const char *what, mq_error_t *err) {
  if (e == GRPC_CALL_ERROR_INVALID_METADATA)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata", "invalid metadata key or value");
  return mq_error_set(err, MQ_INTERNAL, NULL, "grpc_call_start_batch(%s) failed: %d", what, (int)e);
}

/* Serializes a message into a new byte buffer (caller destroys). */
static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(n);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

/* Reads a whole (possibly compressed) byte buffer into one slice. */
static bool read_all(grpc_byte_buffer *bb, grpc_slice *out) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return false;
  *out = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  return true;
}

/* Unpacks a received buffer as `desc`; NULL (MALFORMED_MESSAGE) on failure. */
static ProtobufCMessage *unpack_message(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb, mq_error_t *err) {
  grpc_slice s;
  if (!read_all(bb, &s)) {
    mq_error_set(err, MQ_MALFORMED_MESSAGE, NULL, "could not read the %s response", desc->name);
    return NULL;
  }
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!m) mq_error_set(err, MQ_MALFORMED_MESSAGE, NULL, "the response is not a valid %s message", desc->name);
  return m;
}

/* Outgoing initial metadata built from call options; owns its slices. */
typedef struct md_out {
  grpc_metadata *md;
  size_t n;
} md_out_t;

static void md_out_free(md_out_t *o) {
  for (size_t i = 0; i < o->n; i++) {
    grpc_slice_unref(o->md[i].key);
    grpc_slice_unref(o->md[i].value);
  }
  free(o->md);
  o->md = NULL;
  o->n = 0;
}

static void md_out_add(md_out_t *o, const char *key, grpc_slice value) {
  grpc_metadata *m = &o->md[o->n++];
  memset(m, 0, sizeof *m);
  m->key = grpc_slice_from_copied_string(key);
  m->value = value;
}

static mq_code_t md_out_build(const mq_call_opts_t *opts, md_out_t *o, mq_error_t *err) {
  o->md = NULL;
  o->n = 0;
  if (!opts) return MQ_OK;
  size_t cap = opts->n_metadata + 2;
  if (opts->n_metadata && !opts->metadata)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata", "n_metadata > 0 with no metadata");
  o->md = calloc(cap, sizeof *o->md);
  if (!o->md) return mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "out of memory");
  if (opts->bearer_token) {
    static const char prefix[] = "Bearer ";
    size_t tl = strlen(opts->bearer_token);
    grpc_slice v = grpc_slice_malloc(sizeof prefix - 1 + tl);
    memcpy(GRPC_SLICE_START_PTR(v), prefix, sizeof prefix - 1);
    memcpy(GRPC_SLICE_START_PTR(v) + sizeof prefix - 1, opts->bearer_token, tl);
    md_out_add(o, "authorization", v);
  }
  if (opts->request_id) md_out_add(o, "x-request-id", grpc_slice_from_copied_string(opts->request_id));
  for (size_t i = 0; i < opts->n_metadata; i++) {
    const mq_md_kv_t *kv = &opts->metadata[i];
    if (!kv->key || !kv->value) {
      md_out_free(o);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata", "metadata entry %zu has no key or value", i);
    }
    size_t vl = kv->value_len ? kv->value_len : strlen(kv->value);
    md_out_add(o, kv->key, grpc_slice_from_copied_buffer(kv->value, vl));
  }
  /* Checked here so the caller learns which entry (core would only log). */
  for (size_t i = 0; i < o->n; i++) {
    const grpc_metadata *m = &o->md[i];
    if (grpc_header_key_is_legal(m->key) &&
        (grpc_is_binary_header(m->key) || grpc_header_nonbin_value_is_legal(m->value)))
      continue;
    char key[48];
    slice_to_buf(m->key, key, sizeof key);
    md_out_free(o);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "metadata",
                        "metadata '%s' is not a legal header: keys are lower case [0-9a-z_.-], values "
                        "printable ASCII unless the key ends in -bin",
                        key);
  }
  return MQ_OK;
}

/* Starts `ops` and waits for them; *ok = the batch's success flag. */
static mq_code_t run_batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t n, const char *what,
                           bool *ok, mq_error_t *err) {
  grpc_call_error e = grpc_call_start_batch(call, ops, n, &tag_batch, NULL);
  if (e != GRPC_CALL_OK) return call_error(e, what, err);
  grpc_event ev = grpc_completion_queue_pluck(cq, &tag_batch, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (ev.type != GRPC_OP_COMPLETE) return mq_error_set(err, MQ_INTERNAL, NULL, "%s: completion queue failed", what);
  *ok = ev.success != 0;
  return MQ_OK;
}

/* Shuts down, drains and destroys a pluck queue whose tags were all plucked. */
static void cq_destroy(grpc_completion_queue *cq) {
  if (!cq) return;
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
}

static char *read_file(const char *path, mq_error_t *err) {
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "tls_ca_file", "cannot open %s", path);
    goto cleanup;
  }
  buf = malloc(MAX_CA_FILE_BYTES + 1);
  if (!buf) {
    mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "out of memory");
    goto cleanup;
  }
  size_t n = fread(buf, 1, MAX_CA_FILE_BYTES + 1, f);
  if (ferror(f) || n == 0 || n > MAX_CA_FILE_BYTES) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "tls_ca_file", "cannot read %s (empty, unreadable or over 1 MiB)", path);
    free(buf);
    buf = NULL;
    goto cleanup;
  }
  buf[n] = '\0';
cleanup:
  if (f) fclose(f);
  return buf;
}

/* ---- client ---------------------------------------------------------------- */

/* Creates the channel (no connection yet). Ownership: *out is the caller's,
 * released with mq_client_destroy. On failure *out is NULL and nothing leaks.
 * Calls grpc_init(); mq_client_destroy balances it. */
mq_code_t mq_client_create(const mq_client_opts_t *opts, mq_client_t **out, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  mq_client_t *cl = NULL;
  grpc_channel_credentials *creds = NULL;
  char *pem = NULL;
  bool inited = false;

  if (out) *out = NULL;
  if (!opts || !out) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "opts and out are required");
  if (!opts->target || !opts->target[0]) return mq_error_set(err, MQ_INVALID_ARGUMENT, "target", "target is required");
  if (opts->tls_server_name && opts->tls_server_name[0] && !opts->tls_ca_file)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "tls_server_name", "a TLS server name needs tls_ca_file (TLS)");

  grpc_init();
  inited = true;
  cl = calloc(1, sizeof *cl);
  if (!cl) {
    rc = mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "out of memory");
    goto cleanup;
  }
  cl->default_deadline_ms = opts->default_deadline_ms ? opts->default_deadline_ms : DEFAULT_DEADLINE_MS;
  int64_t max_recv = opts->max_recv_bytes > 0 ? opts->max_recv_bytes : DEFAULT_MAX_RECV_BYTES;
  if (max_recv > INT_MAX) max_recv = INT_MAX;

  grpc_arg args[2];
  size_t n_args = 0;
  memset(args, 0, sizeof args);
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[n_args].value.integer = (int)max_recv;
  n_args++;

  if (opts->tls_ca_file) {
    pem = read_file(opts->tls_ca_file, err);
    if (!pem) {
      rc = err ? err->code : MQ_INVALID_ARGUMENT;
      goto cleanup;
    }
    creds = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
    if (opts->tls_server_name && opts->tls_server_name[0]) {
      args[n_args].type = GRPC_ARG_STRING;
      args[n_args].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
      args[n_args].value.string = (char *)opts->tls_server_name;
      n_args++;
    }
  } else {
    creds = grpc_insecure_credentials_create();
  }
  if (!creds) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "could not create channel credentials");
    goto cleanup;
  }
  grpc_channel_args ch_args = {.num_args = n_args, .args = args};
  cl->channel = grpc_channel_create(opts->target, creds, &ch_args);
  if (!cl->channel) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "target", "cannot create a channel to %s", opts->target);
    goto cleanup;
  }
  *out = cl;
  cl = NULL;
  inited = false; /* now owned by the client */
  mq_error_clear(err);

cleanup:
  if (creds) grpc_channel_credentials_release(creds);
  free(pem);
  free(cl);
  if (inited) grpc_shutdown();
  return rc;
}

/* Destroys the channel. Every call and stream of the client must be finished
 * (streams freed) first. NULL is a no-op. */
void mq_client_destroy(mq_client_t *cl) {
  if (!cl) return;
  grpc_channel_destroy(cl->channel);
  free(cl);
  grpc_shutdown();
}

/* ---- unary ----------------------------------------------------------------- */

/* One unary call: sends `req_bb` (borrowed; the caller destroys it) and, on
 * MQ_OK, hands the response buffer to the caller in *resp_bb. */
static mq_code_t unary_call(mq_client_t *cl, const char *path, grpc_byte_buffer *req_bb, grpc_byte_buffer **resp_bb,
                            const mq_call_opts_t *opts, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  grpc_completion_queue *cq = NULL;
  grpc_call *call = NULL;
  md_out_t md = {0};
  grpc_metadata_array initial_md, trailing_md;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_byte_buffer *recv_bb = NULL;

  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  *resp_bb = NULL;
  if (opts) {
    clear_out(opts->out_request_id, opts->out_request_id_len);
    clear_out(opts->out_trace_id, opts->out_trace_id_len);
  }
  rc = md_out_build(opts, &md, err);
  if (rc != MQ_OK) goto cleanup;

  cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method = grpc_slice_from_copied_string(path);
  call = grpc_channel_create_call(cl->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                  deadline_from_ms(effective_deadline_ms(cl, opts)), NULL);
  grpc_slice_unref(method);
  if (!call) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "could not create a call for %s", path);
    goto cleanup;
  }

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = md.n;
  ops[0].data.send_initial_metadata.metadata = md.md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  bool ok = false;
  /* RECV_STATUS_ON_CLIENT makes the batch "succeed"; the status tells. */
  rc = run_batch(call, cq, ops, 6, "unary", &ok, err);
  if (rc != MQ_OK) goto cleanup;

  if (opts) {
    md_copy_out(&initial_md, "x-request-id", opts->out_request_id, opts->out_request_id_len);
    md_copy_out(&trailing_md, "x-request-id", opts->out_request_id, opts->out_request_id_len);
    md_copy_out(&initial_md, "x-trace-id", opts->out_trace_id, opts->out_trace_id_len);
    md_copy_out(&trailing_md, "x-trace-id", opts->out_trace_id, opts->out_trace_id_len);
  }
  rc = status_to_error(status, details, &trailing_md, err);
  if (rc != MQ_OK) goto cleanup;
  if (!recv_bb) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "the server returned OK without a response message");
    goto cleanup;
  }
  *resp_bb = recv_bb;
  recv_bb = NULL;

cleanup:
  if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  md_out_free(&md);
  if (call) grpc_call_unref(call);
  cq_destroy(cq);
  return rc;
}

/* Ownership: req is borrowed; on MQ_OK *resp is a new message the caller
 * frees with protobuf_c_message_free_unpacked(*resp, NULL); on failure *resp
 * is NULL. opts may be NULL. */
mq_code_t mq_client_unary(mq_client_t *cl, const mq_method_desc_t *m, const ProtobufCMessage *req,
                          ProtobufCMessage **resp, const mq_call_opts_t *opts, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  grpc_byte_buffer *req_bb = NULL, *resp_bb = NULL;

  if (resp) *resp = NULL;
  if (!cl || !m || !req || !resp) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  if (req->descriptor != m->input)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "%s takes %s, not %s", m->path, m->input->name,
                        req->descriptor->name);
  req_bb = pack_message(req);
  rc = unary_call(cl, m->path, req_bb, &resp_bb, opts, err);
  if (rc != MQ_OK) goto cleanup;
  *resp = unpack_message(m->output, resp_bb, err);
  if (!*resp) rc = MQ_MALFORMED_MESSAGE;

cleanup:
  if (req_bb) grpc_byte_buffer_destroy(req_bb);
  if (resp_bb) grpc_byte_buffer_destroy(resp_bb);
  return rc;
}

/* Ownership: req is borrowed (may be NULL when req_len is 0); on MQ_OK *resp
 * is malloc'ed (caller frees; non-NULL even when *resp_len is 0); on failure
 * *resp is NULL and *resp_len 0. */
mq_code_t mq_client_unary_raw(mq_client_t *cl, const char *path, const void *req, size_t req_len, void **resp,
                              size_t *resp_len, const mq_call_opts_t *opts, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  grpc_byte_buffer *req_bb = NULL, *resp_bb = NULL;
  grpc_slice s;
  bool have_slice = false;

  if (resp) *resp = NULL;
  if (resp_len) *resp_len = 0;
  if (!cl || !path || !resp || !resp_len || (!req && req_len))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  s = grpc_slice_from_copied_buffer(req ? req : "", req_len);
  req_bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  rc = unary_call(cl, path, req_bb, &resp_bb, opts, err);
  if (rc != MQ_OK) goto cleanup;
  if (!read_all(resp_bb, &s)) {
    rc = mq_error_set(err, MQ_MALFORMED_MESSAGE, NULL, "could not read the response");
    goto cleanup;
  }
  have_slice = true;
  size_t n = GRPC_SLICE_LENGTH(s);
  *resp = malloc(n ? n : 1);
  if (!*resp) {
    rc = mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "out of memory");
    goto cleanup;
  }
  memcpy(*resp, GRPC_SLICE_START_PTR(s), n);
  *resp_len = n;

cleanup:
  if (have_slice) grpc_slice_unref(s);
  if (req_bb) grpc_byte_buffer_destroy(req_bb);
  if (resp_bb) grpc_byte_buffer_destroy(resp_bb);
  return rc;
}

/* ---- streams --------------------------------------------------------------- */

static void stream_copy_outputs(mq_client_stream_t *st, const grpc_metadata_array *md) {
  md_copy_out(md, "x-request-id", st->out_request_id, st->out_request_id_len);
  md_copy_out(md, "x-trace-id", st->out_trace_id, st->out_trace_id_len);
}

/* Records the outcome of a completed status batch. */
static void stream_take_status(mq_client_stream_t *st) {
  st->status_received = true;
  stream_copy_outputs(st, &st->trailing_md);
  st->final_code = status_to_error(st->status, st->details, &st->trailing_md, &st->final_err);
}

/* Waits up to `wait_ms` (< 0 = forever) for the status batch. True if the
 * status is known afterwards. */
static bool stream_wait_status(mq_client_stream_t *st, int64_t wait_ms) {
  if (st->status_received) return true;
  if (!st->status_started) return false;
  gpr_timespec until = wait_ms < 0
                           ? gpr_inf_future(GPR_CLOCK_REALTIME)
                           : gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(wait_ms, GPR_TIMESPAN));
  grpc_event ev = grpc_completion_queue_pluck(st->cq, &tag_status, until, NULL);
  if (ev.type != GRPC_OP_COMPLETE) return false;
  stream_take_status(st);
  return true;
}

/* The stream's final outcome, copied into err. */
static mq_code_t stream_final(mq_client_stream_t *st, mq_error_t *err) {
  if (err) *err = st->final_err;
  return st->final_code;
}

/* A send found the call over. Reports the status if it is already known and
 * an error (a cancel or deadline); otherwise MQ_FAILED_PRECONDITION: C core
 * delivers the status only after the replies before it were read, so the
 * caller gets both from recv/finish. Never blocks. */
static mq_code_t stream_send_ended(mq_client_stream_t *st, mq_error_t *err) {
  if (stream_wait_status(st, 0) && st->final_code != MQ_OK) return stream_final(st, err);
  return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL,
                      "the server has ended the stream; mq_client_stream_recv returns its replies and status");
}

/* Opens a call and sends its initial metadata. Ownership: *out is the
 * caller's, released with mq_client_stream_free (also after errors from the
 * other stream functions). opts may be NULL; the metadata is copied, but its
 * out_request_id / out_trace_id buffers are filled during the first recv or
 * finish and must stay valid until then. On failure *out is NULL. */
mq_code_t mq_client_stream_open(mq_client_t *cl, const mq_method_desc_t *m, const mq_call_opts_t *opts,
                                mq_client_stream_t **out, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  mq_client_stream_t *st = NULL;
  md_out_t md = {0};

  if (out) *out = NULL;
  if (!cl || !m || !out) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  rc = md_out_build(opts, &md, err);
  if (rc != MQ_OK) goto cleanup;
  st = calloc(1, sizeof *st);
  if (!st) {
    rc = mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "out of memory");
    goto cleanup;
  }
  st->method = m;
  st->details = grpc_empty_slice();
  grpc_metadata_array_init(&st->initial_md);
  grpc_metadata_array_init(&st->trailing_md);
  st->status = GRPC_STATUS_UNKNOWN;
  if (opts) {
    st->out_request_id = opts->out_request_id;
    st->out_request_id_len = opts->out_request_id_len;
    st->out_trace_id = opts->out_trace_id;
    st->out_trace_id_len = opts->out_trace_id_len;
    clear_out(st->out_request_id, st->out_request_id_len);
    clear_out(st->out_trace_id, st->out_trace_id_len);
  }
  st->cq = grpc_completion_queue_create_for_pluck(NULL);
  st->call = grpc_channel_create_call(cl->channel, NULL, GRPC_PROPAGATE_DEFAULTS, st->cq,
                                      grpc_slice_from_static_string(m->path), NULL,
                                      deadline_from_ms(effective_deadline_ms(cl, opts)), NULL);
  if (!st->call) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "could not create a call for %s", m->path);
    goto cleanup;
  }

  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.data.send_initial_metadata.count = md.n;
  op.data.send_initial_metadata.metadata = md.md;
  grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &tag_batch, NULL);
  if (e != GRPC_CALL_OK) {
    rc = call_error(e, "send initial metadata", err);
    goto cleanup;
  }
  /* The status batch: outstanding for the life of the call. */
  grpc_op sop;
  memset(&sop, 0, sizeof sop);
  sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  sop.data.recv_status_on_client.trailing_metadata = &st->trailing_md;
  sop.data.recv_status_on_client.status = &st->status;
  sop.data.recv_status_on_client.status_details = &st->details;
  e = grpc_call_start_batch(st->call, &sop, 1, &tag_status, NULL);
  if (e == GRPC_CALL_OK) st->status_started = true;
  grpc_event ev = grpc_completion_queue_pluck(st->cq, &tag_batch, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (e != GRPC_CALL_OK) {
    rc = call_error(e, "receive status", err);
    goto cleanup;
  }
  if (ev.type != GRPC_OP_COMPLETE) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "open: completion queue failed");
    goto cleanup;
  }
  if (!ev.success) {
    /* e.g. no connection: the call already has its status */
    st->recv_done = true;
    stream_wait_status(st, -1);
    rc = st->final_code != MQ_OK ? stream_final(st, err)
                                 : mq_error_set(err, MQ_UNAVAILABLE, NULL, "could not start the call");
    goto cleanup;
  }
  *out = st;
  st = NULL;
  mq_error_clear(err);

cleanup:
  md_out_free(&md);
  mq_client_stream_free(st);
  return rc;
}

/* Sends one message (borrowed). Blocks until the message passed flow
 * control. Once the call is over: the status if already known and an error
 * (cancelled, deadline), else MQ_FAILED_PRECONDITION, after which recv/finish
 * return the server's replies and final status (grpc-go's io.EOF rule).
 * MQ_FAILED_PRECONDITION also after close_send. */
mq_code_t mq_client_stream_send(mq_client_stream_t *st, const ProtobufCMessage *msg, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  grpc_byte_buffer *bb = NULL;

  if (!st || !msg) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  if (msg->descriptor != st->method->input)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "%s takes %s, not %s", st->method->path,
                        st->method->input->name, msg->descriptor->name);
  if (st->send_closed) return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "send after close_send");
  /* Non-blocking poll first: C core would otherwise accept messages into a
   * call the server already ended, until it reads the server's frames. */
  if (stream_wait_status(st, 0)) return stream_send_ended(st, err);

  bb = pack_message(msg);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = bb;
  bool ok = false;
  rc = run_batch(st->call, st->cq, &op, 1, "send", &ok, err);
  if (rc != MQ_OK) goto cleanup;
  if (!ok) {
    rc = stream_send_ended(st, err);
    goto cleanup;
  }
  mq_error_clear(err);

cleanup:
  if (bb) grpc_byte_buffer_destroy(bb);
  return rc;
}

/* Half-closes the sending side. Idempotent; a no-op once the status is known. */
mq_code_t mq_client_stream_close_send(mq_client_stream_t *st, mq_error_t *err) {
  if (!st) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  if (st->send_closed || st->status_received) {
    mq_error_clear(err);
    return MQ_OK;
  }
  st->send_closed = true;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  bool ok = false;
  mq_code_t rc = run_batch(st->call, st->cq, &op, 1, "close_send", &ok, err);
  if (rc != MQ_OK) return rc;
  /* A failed close means the call is already over: recv reports how. */
  mq_error_clear(err);
  return MQ_OK;
}

/* Next message. Ownership: on MQ_OK *msg is a new message the caller frees
 * with protobuf_c_message_free_unpacked(*msg, NULL). At the end *msg is NULL
 * and the final status is returned (MQ_OK for a clean end), again on every
 * later call. A reply that does not parse cancels the call and ends the
 * stream with MQ_MALFORMED_MESSAGE. */
mq_code_t mq_client_stream_recv(mq_client_stream_t *st, ProtobufCMessage **msg, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  grpc_byte_buffer *bb = NULL;

  if (msg) *msg = NULL;
  if (!st || !msg) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  if (st->recv_done) return stream_final(st, err);

  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!st->initial_md_received) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &st->initial_md;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &bb;
  n++;
  bool ok = false;
  rc = run_batch(st->call, st->cq, ops, n, "recv", &ok, err);
  if (rc != MQ_OK) goto cleanup;
  if (!st->initial_md_received) {
    st->initial_md_received = true;
    stream_copy_outputs(st, &st->initial_md);
  }
  if (!bb) {
    /* end of stream (or the call failed): the status says which */
    st->recv_done = true;
    stream_wait_status(st, -1);
    if (!st->status_received) {
      rc = mq_error_set(err, MQ_INTERNAL, NULL, "the stream ended without a status");
      goto cleanup;
    }
    rc = stream_final(st, err);
    goto cleanup;
  }
  *msg = unpack_message(st->method->output, bb, err);
  if (!*msg) {
    mq_error_t bad = {0};
    mq_error_set(&bad, MQ_MALFORMED_MESSAGE, NULL, "the reply is not a valid %s message", st->method->output->name);
    grpc_call_cancel_with_status(st->call, GRPC_STATUS_INTERNAL, "client could not parse a reply", NULL);
    stream_wait_status(st, -1);
    st->recv_done = true;
    st->status_received = true;
    st->final_code = MQ_MALFORMED_MESSAGE;
    st->final_err = bad;
    rc = stream_final(st, err);
    goto cleanup;
  }
  mq_error_clear(err);

cleanup:
  if (bb) grpc_byte_buffer_destroy(bb);
  return rc;
}

/* Half-closes if needed, discards unread messages and returns the final
 * status (MQ_OK for a clean end). */
mq_code_t mq_client_stream_finish(mq_client_stream_t *st, mq_error_t *err) {
  if (!st) return mq_error_set(err, MQ_INVALID_ARGUMENT, NULL, "missing argument");
  mq_code_t rc = mq_client_stream_close_send(st, err);
  if (rc != MQ_OK) return rc;
  for (;;) {
    ProtobufCMessage *m = NULL;
    rc = mq_client_stream_recv(st, &m, err);
    if (!m) return rc;
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

/* Cancels the call: pending and later operations fail and the status becomes
 * CANCELLED (unless the call had already ended). Safe to call from another
 * thread while the owner blocks in send/recv, as long as the stream is not
 * freed concurrently. */
void mq_client_stream_cancel(mq_client_stream_t *st) {
  if (st && st->call) grpc_call_cancel(st->call, NULL);
}

/* Frees the stream, cancelling the call if it has not ended. NULL is a no-op. */
void mq_client_stream_free(mq_client_stream_t *st) {
  if (!st) return;
  if (st->call) {
    if (st->status_started && !st->status_received) {
      grpc_call_cancel(st->call, NULL);
      stream_wait_status(st, -1);
    }
    grpc_call_unref(st->call);
  }
  cq_destroy(st->cq);
  grpc_metadata_array_destroy(&st->initial_md);
  grpc_metadata_array_destroy(&st->trailing_md);
  grpc_slice_unref(st->details);
  free(st);
}
