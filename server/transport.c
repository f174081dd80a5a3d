/*
 * transport.c — Marquee's gRPC transport on the C core, written once
 * (DESIGN.md §3): registered methods, all four call kinds, per-call arenas,
 * bounded send queues with backpressure, a worker pool so completion-queue
 * threads never block, UNIMPLEMENTED for unknown methods, graceful shutdown.
 *
 * Path of a call: a pre-posted request completes on a queue thread (OP_NEW) →
 * a fresh request is posted in its place → interceptors run (mq_interceptors.c)
 * → the request is unpacked into the call's arena → the handler runs (inline
 * for MQ_RUN_INLINE rows, else on the worker pool) → the reply is packed and
 * sent with the status → after-interceptors (log, metrics) → the call is freed.
 *
 * Invariants:
 *  - at most one batch of each kind is outstanding per call (C-core rule);
 *    sends go through the call's queue with one SEND_MESSAGE in flight;
 *  - a call is freed only when its reference count reaches zero (see
 *    mq_call_internal.h) — never while a batch or a handler holds it;
 *  - unary calls take no locks: their only batch is the reply;
 *  - only mq_error.c maps codes to gRPC statuses.
 * Read next: mq_interceptors.c, mq_call_internal.h.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mq_log.h"
#include "core/mq_pool.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "server/mq_call_internal.h"
#include "server/mq_status.h"

#define PREPOST_UNARY 32
#define PREPOST_STREAM 4
#define PREPOST_GENERIC 4
#define MAX_HOOKS 8

struct mq_reg_method {
  mq_method_binding_t b;
  void *handle;
  mq_method_stats_t *stats;
};

struct mq_cq {
  mq_server_t *srv;
  grpc_completion_queue *cq;
  pthread_t thread;
  bool running;
};

struct mq_server {
  mq_server_opts_t opts;
  const mq_config_t *cfg;
  grpc_server *gsrv;
  mq_cq_t *cqs;
  unsigned n_cq;
  mq_reg_method_t *methods;
  unsigned n_methods, cap_methods;
  const mq_service_desc_t **services;
  unsigned n_services;
  mq_pool_t *pool;
  int port;
  atomic_bool shutting_down;
  bool started, shut_down;
  pthread_mutex_t live_mu;
  pthread_cond_t live_cv;
  int64_t live;
  struct {
    void (*fn)(void *);
    void *arg;
  } hooks[MAX_HOOKS];
  unsigned n_hooks;
  mq_method_stats_t *unknown_stats;
};

/* ---- call allocation ---------------------------------------------------- */

static mq_call_t *call_new(mq_server_t *srv, mq_cq_t *cq, mq_reg_method_t *rm) {
  mq_call_t *c = mq_xcalloc(1, sizeof *c);
  c->srv = srv;
  c->cq = cq;
  c->rm = rm;
  c->op_new = (mq_op_t){c, rm ? OP_NEW : OP_GENERIC};
  c->op_unary = (mq_op_t){c, rm ? OP_UNARY : OP_GEN_DONE};
  c->op_close = (mq_op_t){c, OP_CLOSE};
  c->op_recv = (mq_op_t){c, OP_RECV};
  c->op_send = (mq_op_t){c, OP_SEND};
  c->op_status = (mq_op_t){c, OP_STATUS};
  grpc_metadata_array_init(&c->md);
  if (!rm) grpc_call_details_init(&c->details);
  mq_arena_init(&c->arena);
  mq_arena_init(&c->msg_arena);
  c->deadline_ms = INT64_MAX;
  return c;
}

/* Frees a call that never became live (request cancelled at shutdown) or,
 * via call_end, one that did. */
static void call_free(mq_call_t *c) {
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  if (c->recv_buf) grpc_byte_buffer_destroy(c->recv_buf);
  if (c->in_flight_buf) grpc_byte_buffer_destroy(c->in_flight_buf);
  for (size_t i = 0; i < c->q_len; i++) grpc_byte_buffer_destroy(c->q[(c->q_head + i) % c->q_cap]);
  free(c->q);
  grpc_metadata_array_destroy(&c->md);
  if (!c->rm) grpc_call_details_destroy(&c->details);
  if (c->gcall) grpc_call_unref(c->gcall);
  if (c->q_cap) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
  }
  mq_arena_release(&c->arena);
  mq_arena_release(&c->msg_arena);
  free(c->details_buf);
  free(c);
}

static void live_add(mq_server_t *srv) {
  pthread_mutex_lock(&srv->live_mu);
  srv->live++;
  pthread_mutex_unlock(&srv->live_mu);
}

static void live_remove(mq_server_t *srv) {
  pthread_mutex_lock(&srv->live_mu);
  if (--srv->live == 0) pthread_cond_broadcast(&srv->live_cv);
  pthread_mutex_unlock(&srv->live_mu);
}

/* The end of every live call: after-interceptors, state release, free. */
static void call_end(mq_call_t *c) {
  mq_server_t *srv = c->srv;
  mq_code_t code = c->final_code;
  if (!srv->opts.bare) {
    grpc_status_code st = mq_code_to_grpc(code);
    /* a call cancelled under us ended with what the client saw: its
     * deadline, or its own cancellation — not the handler's late answer */
    if (c->close_cancelled)
      st = c->deadline_ms != INT64_MAX && mq_now_ms() >= c->deadline_ms ? GRPC_STATUS_DEADLINE_EXCEEDED
                                                                        : GRPC_STATUS_CANCELLED;
    mq_interceptors_after(c, st, (mq_now_ns() - c->start_ns) / 1000);
  }
  if (c->state_release) c->state_release(c->state, c->close_cancelled && code == MQ_OK ? MQ_CANCELLED : code);
  call_free(c);
  live_remove(srv);
}

/* ---- posting requests ---------------------------------------------------- */

static void post_request(mq_server_t *srv, mq_cq_t *cq, mq_reg_method_t *rm) {
  if (atomic_load(&srv->shutting_down)) return;
  mq_call_t *c = call_new(srv, cq, rm);
  grpc_call_error e;
  if (rm) {
    bool with_payload = rm->b.method->kind == MQ_KIND_UNARY || rm->b.method->kind == MQ_KIND_SERVER_STREAMING;
    e = grpc_server_request_registered_call(srv->gsrv, rm->handle, &c->gcall, &c->deadline, &c->md,
                                            with_payload ? &c->payload : NULL, cq->cq, cq->cq, &c->op_new);
  } else {
    e = grpc_server_request_call(srv->gsrv, &c->gcall, &c->details, &c->md, cq->cq, cq->cq, &c->op_new);
  }
  if (e != GRPC_CALL_OK) {
    mq_log(MQ_LOG_ERROR, "transport.request_failed", "cannot post request for %s: grpc_call_error %d",
           rm ? rm->b.method->path : "(generic)", (int)e);
    call_free(c);
  }
}

/* ---- status and reply ------------------------------------------------------ */

/* Initial metadata every reply carries (request and trace ids echoed back).
 * Returns the number of entries in c->init_md. */
static size_t prepare_init_md(mq_call_t *c) {
  size_t n = 0;
  if (c->request_id[0]) {
    c->init_md[n].key = grpc_slice_from_static_string("x-request-id");
    c->init_md[n].value = grpc_slice_from_static_string(c->request_id);
    n++;
  }
  if (c->trace_id[0]) {
    c->init_md[n].key = grpc_slice_from_static_string("x-trace-id");
    c->init_md[n].value = grpc_slice_from_static_string(c->trace_id);
    n++;
  }
  return n;
}

/* Records the final code and fills the status text, its slice and the
 * trailing metadata: grpc-status-details-bin (the google.rpc.Status,
 * mq_status.h) on every refusal, and for older clients x-error-field (the
 * offending request field) and retry-after-ms. */
static void prepare_status(mq_call_t *c, mq_code_t code, size_t *n_trail) {
  c->final_code = code;
  c->err.code = code;
  if (code == MQ_OK)
    c->status_text[0] = '\0';
  else
    mq_error_format(&c->err, c->status_text, sizeof c->status_text);
  c->status_slice = grpc_slice_from_static_string(c->status_text);
  *n_trail = 0;
  if (code != MQ_OK && !c->details_buf) {
    /* a scratch arena: the call's own may still be in use by a stream's
     * other threads; the packed bytes live in the call until it is freed */
    mq_arena_t scratch;
    mq_arena_init(&scratch);
    uint8_t *packed;
    c->details_len =
        mq_status_details_pack(&scratch, &c->err, mq_code_to_grpc(code), c->status_text, mq_call_method(c), &packed);
    c->details_buf = mq_xmalloc(c->details_len);
    memcpy(c->details_buf, packed, c->details_len);
    mq_arena_release(&scratch);
  }
  if (code != MQ_OK) {
    c->trail_md[*n_trail].key = grpc_slice_from_static_string("grpc-status-details-bin");
    c->trail_md[*n_trail].value = grpc_slice_from_static_buffer(c->details_buf, c->details_len);
    (*n_trail)++;
  }
  if (code != MQ_OK && c->err.field[0]) {
    c->trail_md[*n_trail].key = grpc_slice_from_static_string("x-error-field");
    c->trail_md[*n_trail].value = grpc_slice_from_static_string(c->err.field);
    (*n_trail)++;
  }
  if (code != MQ_OK && c->err.retry_after_ms > 0) { /* when a retry can succeed */
    snprintf(c->retry_after, sizeof c->retry_after, "%lld", (long long)c->err.retry_after_ms);
    c->trail_md[*n_trail].key = grpc_slice_from_static_string("retry-after-ms");
    c->trail_md[*n_trail].value = grpc_slice_from_static_string(c->retry_after);
    (*n_trail)++;
  }
}

static void fill_status_op(mq_call_t *c, grpc_op *op, size_t n_trail) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  op->data.send_status_from_server.status = mq_code_to_grpc(c->final_code);
  op->data.send_status_from_server.status_details = c->final_code == MQ_OK ? NULL : &c->status_slice;
  op->data.send_status_from_server.trailing_metadata_count = n_trail;
  op->data.send_status_from_server.trailing_metadata = n_trail ? c->trail_md : NULL;
}

/* Packs `msg` into a new byte buffer; NULL (err set) if over the limit. */
static grpc_byte_buffer *pack_message(const mq_call_t *c, const ProtobufCMessage *msg, mq_error_t *err) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  if ((int64_t)size > c->srv->cfg->max_send_bytes) {
    mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "response of %zu bytes exceeds the server's limit of %lld", size,
                 (long long)c->srv->cfg->max_send_bytes);
    return NULL;
  }
  grpc_slice s = grpc_slice_malloc(size);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

/* Enforce the MQ_POLICY_RESOURCE contract on a handler's result. */
static mq_code_t check_authorized(mq_call_t *c, mq_code_t code) {
  if (code == MQ_OK && c->rm && c->rm->b.policy == MQ_POLICY_RESOURCE && !c->authorized) {
    mq_log(MQ_LOG_ERROR, "policy.unchecked", "%s returned OK without mq_call_authorized(); refusing the reply",
           c->rm->b.method->path);
    return mq_error_set(&c->err, MQ_INTERNAL, NULL, "internal error (request %s)", c->request_id);
  }
  return code;
}

/* The single batch that ends a unary (or unknown-method) call. */
static void unary_reply(mq_call_t *c, mq_code_t code, const ProtobufCMessage *resp) {
  grpc_op ops[4];
  size_t n = 0, n_trail;
  grpc_byte_buffer *bb = NULL;
  if (code == MQ_OK && c->packed_reply) { /* serialized by the handler (a cached reply) */
    if ((int64_t)c->packed_len > c->srv->cfg->max_send_bytes) {
      code = mq_error_set(&c->err, MQ_RESOURCE_EXHAUSTED, NULL, "response of %zu bytes exceeds the server's limit",
                          c->packed_len);
    } else {
      grpc_slice s = grpc_slice_from_copied_buffer(c->packed_reply, c->packed_len);
      bb = grpc_raw_byte_buffer_create(&s, 1);
      grpc_slice_unref(s);
    }
  } else if (code == MQ_OK && resp) {
    bb = pack_message(c, resp, &c->err);
    if (!bb) code = c->err.code;
  }
  prepare_status(c, code, &n_trail);
  size_t n_init = prepare_init_md(c);
  memset(ops, 0, sizeof ops);
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].data.send_initial_metadata.count = n_init;
  ops[n].data.send_initial_metadata.metadata = n_init ? c->init_md : NULL;
  n++;
  if (bb) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    c->in_flight_buf = bb;
    n++;
  }
  fill_status_op(c, &ops[n++], n_trail);
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n].data.recv_close_on_server.cancelled = &c->close_cancelled;
  n++;
  grpc_call_error e = grpc_call_start_batch(c->gcall, ops, n, &c->op_unary, NULL);
  if (e != GRPC_CALL_OK) {
    mq_log(MQ_LOG_ERROR, "transport.batch_failed", "unary reply batch: grpc_call_error %d", (int)e);
    call_end(c);
  }
}

/* ---- decoding -------------------------------------------------------------- */

static mq_code_t decode(mq_call_t *c, grpc_byte_buffer *bb, mq_arena_t *arena, ProtobufCMessage **out) {
  const ProtobufCMessageDescriptor *d = c->rm->b.method->input;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return mq_error_set(&c->err, MQ_MALFORMED_MESSAGE, NULL, "the request message could not be read");
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCAllocator al = mq_arena_allocator(arena);
  *out = protobuf_c_message_unpack(d, &al, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!*out) return mq_error_set(&c->err, MQ_MALFORMED_MESSAGE, NULL, "the request is not a valid %s message", d->name);
  return MQ_OK;
}

/* ---- streams ----------------------------------------------------------------- */

static void call_unref_internal(mq_call_t *c) {
  pthread_mutex_lock(&c->mu);
  int r = --c->refs;
  pthread_mutex_unlock(&c->mu);
  if (r == 0) call_end(c);
}

static void send_status_locked(mq_call_t *c) {
  grpc_op ops[2];
  size_t n = 0, n_trail;
  memset(ops, 0, sizeof ops);
  c->status_started = true;
  prepare_status(c, c->final_code, &n_trail);
  size_t n_init = prepare_init_md(c);
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = n_init;
    ops[n].data.send_initial_metadata.metadata = n_init ? c->init_md : NULL;
    c->md_sent = true;
    n++;
  }
  fill_status_op(c, &ops[n++], n_trail);
  c->refs++;
  grpc_call_error e = grpc_call_start_batch(c->gcall, ops, n, &c->op_status, NULL);
  if (e != GRPC_CALL_OK) {
    mq_log(MQ_LOG_ERROR, "transport.batch_failed", "status batch: grpc_call_error %d", (int)e);
    c->refs--;
  }
}

static void start_send_locked(mq_call_t *c) {
  grpc_byte_buffer *bb = c->q[c->q_head];
  c->q_head = (c->q_head + 1) % c->q_cap;
  c->q_len--;
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->md_sent) {
    size_t n_init = prepare_init_md(c);
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = n_init;
    ops[n].data.send_initial_metadata.metadata = n_init ? c->init_md : NULL;
    c->md_sent = true;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  c->in_flight_buf = bb;
  c->send_in_flight = true;
  c->refs++;
  grpc_call_error e = grpc_call_start_batch(c->gcall, ops, n, &c->op_send, NULL);
  if (e != GRPC_CALL_OK) {
    mq_log(MQ_LOG_ERROR, "transport.batch_failed", "send batch: grpc_call_error %d", (int)e);
    grpc_byte_buffer_destroy(bb);
    c->in_flight_buf = NULL;
    c->send_in_flight = false;
    c->cancelled = true;
    c->refs--;
  }
}

static void drop_queue_locked(mq_call_t *c) {
  while (c->q_len) {
    grpc_byte_buffer_destroy(c->q[c->q_head]);
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
  }
}

static void stream_finish(mq_call_t *c, mq_code_t code, const mq_error_t *err) {
  pthread_mutex_lock(&c->mu);
  if (c->finish_requested) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  c->finish_requested = true;
  if (err && err != &c->err && code != MQ_OK) c->err = *err;
  c->final_code = code;
  if (c->cancelled) drop_queue_locked(c);
  if (!c->send_in_flight && c->q_len == 0 && !c->status_started) send_status_locked(c);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void stream_begin(mq_call_t *c) {
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->q_cap = (size_t)c->srv->cfg->stream_queue;
  c->q = mq_xcalloc(c->q_cap, sizeof *c->q);
  c->refs = 1; /* released at the end of on_new */
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  c->refs++;
  if (grpc_call_start_batch(c->gcall, &op, 1, &c->op_close, NULL) != GRPC_CALL_OK) {
    c->refs--;
    c->closed = c->cancelled = true;
  }
}

static void post_recv(mq_call_t *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_buf;
  pthread_mutex_lock(&c->mu);
  c->refs++;
  pthread_mutex_unlock(&c->mu);
  if (grpc_call_start_batch(c->gcall, &op, 1, &c->op_recv, NULL) != GRPC_CALL_OK) {
    stream_finish(c, MQ_INTERNAL, NULL);
    call_unref_internal(c);
  }
}

/* ---- handler tasks --------------------------------------------------------- */

static void run_unary(void *arg) {
  mq_call_t *c = arg;
  const mq_method_binding_t *b = &c->rm->b;
  mq_code_t code;
  ProtobufCMessage *resp = NULL;
  if (mq_call_remaining_ms(c) <= 0) {
    code = mq_error_set(&c->err, MQ_DEADLINE_EXCEEDED, NULL, "the deadline expired before the handler ran");
  } else {
    resp = mq_arena_alloc(&c->arena, b->method->output->sizeof_message);
    protobuf_c_message_init(b->method->output, resp);
    code = b->unary(b->impl, c, c->req, resp, &c->err);
    code = check_authorized(c, code);
  }
  unary_reply(c, code, resp);
}

static void run_server_stream(void *arg) {
  mq_call_t *c = arg;
  const mq_method_binding_t *b = &c->rm->b;
  mq_code_t code = b->server_stream(b->impl, c, c->req, &c->err);
  if (code != MQ_PENDING) stream_finish(c, check_authorized(c, code), &c->err);
  call_unref_internal(c);
}

static void run_on_msg(void *arg) {
  mq_call_t *c = arg;
  const mq_method_binding_t *b = &c->rm->b;
  mq_code_t code = b->on_msg(b->impl, c, c->req, &c->err);
  c->req = NULL;
  mq_arena_release(&c->msg_arena);
  pthread_mutex_lock(&c->mu);
  bool stop = c->finish_requested || c->cancelled;
  pthread_mutex_unlock(&c->mu);
  if (code != MQ_OK)
    stream_finish(c, code, &c->err);
  else if (stop)
    stream_finish(c, MQ_CANCELLED, NULL);
  else
    post_recv(c);
  call_unref_internal(c);
}

static void run_on_end(void *arg) {
  mq_call_t *c = arg;
  const mq_method_binding_t *b = &c->rm->b;
  mq_code_t code;
  if (b->method->kind == MQ_KIND_CLIENT_STREAMING) {
    ProtobufCMessage *resp = mq_arena_alloc(&c->arena, b->method->output->sizeof_message);
    protobuf_c_message_init(b->method->output, resp);
    code = check_authorized(c, b->on_end(b->impl, c, resp, &c->err));
    if (code == MQ_OK) code = mq_call_send(c, resp, &c->err);
  } else {
    code = b->on_end(b->impl, c, NULL, &c->err);
    if (code != MQ_PENDING) code = check_authorized(c, code);
  }
  if (code != MQ_PENDING) stream_finish(c, code, &c->err);
  call_unref_internal(c);
}

/* MQ_RUN_TRY_INLINE: the unary handler on this thread; false if it asked
 * for the pool (MQ_PENDING), nothing having been sent. */
static bool try_unary_inline(mq_call_t *c) {
  const mq_method_binding_t *b = &c->rm->b;
  if (mq_call_remaining_ms(c) <= 0) return false; /* the pool path reports it */
  ProtobufCMessage *resp = mq_arena_alloc(&c->arena, b->method->output->sizeof_message);
  protobuf_c_message_init(b->method->output, resp);
  c->inline_try = true;
  mq_code_t code = b->unary(b->impl, c, c->req, resp, &c->err);
  c->inline_try = false;
  if (code == MQ_PENDING) {
    memset(&c->err, 0, sizeof c->err);
    return false;
  }
  unary_reply(c, check_authorized(c, code), resp);
  return true;
}

void mq_call_reply_packed(mq_call_t *c, const void *bytes, size_t len) {
  c->packed_reply = bytes;
  c->packed_len = len;
}

bool mq_call_inline(const mq_call_t *c) {
  return c->inline_try || (c->rm && (c->rm->b.flags & MQ_RUN_INLINE));
}

/* Runs `fn` inline or on the pool; on a full pool fails the call. The caller
 * already holds the handler reference for streams. */
static void dispatch(mq_call_t *c, void (*fn)(void *)) {
  if (c->rm->b.flags & MQ_RUN_INLINE) {
    fn(c);
    return;
  }
  if ((c->rm->b.flags & MQ_RUN_TRY_INLINE) && fn == run_unary && try_unary_inline(c)) return;
  if (mq_pool_submit(c->srv->pool, fn, c)) return;
  mq_error_set(&c->err, MQ_OVERLOADED, NULL, NULL);
  if (c->rm->b.method->kind == MQ_KIND_UNARY) {
    unary_reply(c, MQ_OVERLOADED, NULL);
  } else {
    stream_finish(c, MQ_OVERLOADED, &c->err);
    call_unref_internal(c);
  }
}

/* ---- completion handlers --------------------------------------------------- */

static void begin_live_call(mq_call_t *c) {
  c->start_ns = mq_now_ns();
  live_add(c->srv);
  gpr_timespec d = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
  if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) < 0) {
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    c->deadline_ms = mq_now_ms() + gpr_time_to_millis(left);
  }
}

static void on_new(mq_call_t *c, bool success) {
  mq_server_t *srv = c->srv;
  if (!success) { /* server shutting down */
    call_free(c);
    return;
  }
  post_request(srv, c->cq, c->rm);
  begin_live_call(c);
  mq_method_kind_t kind = c->rm->b.method->kind;
  bool streaming = kind != MQ_KIND_UNARY;
  if (streaming) {
    stream_begin(c);
    /* the core forgets the peer once a stream is cancelled; the access log
     * runs after that, so take it now (unary calls log while it is known) */
    if (!srv->opts.bare) mq_call_peer(c);
  }

  mq_code_t code = srv->opts.bare ? MQ_OK : mq_interceptors_before(c, &c->err);
  if (code == MQ_OK && (kind == MQ_KIND_UNARY || kind == MQ_KIND_SERVER_STREAMING)) {
    if (!c->payload)
      code = mq_error_set(&c->err, MQ_INVALID_ARGUMENT, NULL, "the call carried no request message");
    else
      code = decode(c, c->payload, &c->arena, &c->req);
    if (c->payload) {
      grpc_byte_buffer_destroy(c->payload);
      c->payload = NULL;
    }
  }
  if (!streaming) {
    if (code != MQ_OK)
      unary_reply(c, code, NULL);
    else
      dispatch(c, run_unary);
    return;
  }
  if (code != MQ_OK) {
    stream_finish(c, code, &c->err);
  } else if (kind == MQ_KIND_SERVER_STREAMING) {
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
    dispatch(c, run_server_stream);
  } else {
    post_recv(c);
  }
  call_unref_internal(c); /* the begin reference */
}

static void on_recv(mq_call_t *c, bool success) {
  grpc_byte_buffer *bb = c->recv_buf;
  c->recv_buf = NULL;
  if (!success || !bb) {
    pthread_mutex_lock(&c->mu);
    bool gone = !success || c->cancelled;
    pthread_mutex_unlock(&c->mu);
    if (gone) {
      stream_finish(c, MQ_CANCELLED, NULL);
    } else {
      pthread_mutex_lock(&c->mu);
      c->refs++;
      pthread_mutex_unlock(&c->mu);
      dispatch(c, run_on_end);
    }
  } else {
    mq_code_t code = decode(c, bb, &c->msg_arena, &c->req);
    grpc_byte_buffer_destroy(bb);
    if (code != MQ_OK) {
      stream_finish(c, code, &c->err);
    } else {
      pthread_mutex_lock(&c->mu);
      c->refs++;
      pthread_mutex_unlock(&c->mu);
      dispatch(c, run_on_msg);
    }
  }
  call_unref_internal(c);
}

static void on_send(mq_call_t *c, bool success) {
  pthread_mutex_lock(&c->mu);
  grpc_byte_buffer_destroy(c->in_flight_buf);
  c->in_flight_buf = NULL;
  c->send_in_flight = false;
  if (!success) {
    c->cancelled = true;
    drop_queue_locked(c);
  }
  if (c->q_len)
    start_send_locked(c);
  else if (c->finish_requested && !c->status_started)
    send_status_locked(c);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  call_unref_internal(c);
}

static void on_close(mq_call_t *c, bool success) {
  pthread_mutex_lock(&c->mu);
  c->closed = true;
  if (c->close_cancelled || !success) {
    c->cancelled = true;
    drop_queue_locked(c);
  }
  bool fire = c->cancelled && !c->cancel_fired && c->on_cancel;
  if (fire) c->cancel_fired = true;
  void (*fn)(mq_call_t *, void *) = c->on_cancel;
  void *arg = c->on_cancel_arg;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (fire) fn(c, arg);
  call_unref_internal(c);
}

static void on_generic(mq_call_t *c, bool success) {
  if (!success) {
    call_free(c);
    return;
  }
  post_request(c->srv, c->cq, NULL);
  begin_live_call(c);
  if (!c->srv->opts.bare) mq_metrics_call_start(c->srv->unknown_stats);
  size_t len = GRPC_SLICE_LENGTH(c->details.method);
  char *path = mq_arena_strndup(&c->arena, (const char *)GRPC_SLICE_START_PTR(c->details.method), len);
  mq_error_set(&c->err, MQ_UNIMPLEMENTED, NULL, "method %.160s is not served by this server", path);
  unary_reply(c, MQ_UNIMPLEMENTED, NULL);
}

static void dispatch_op(mq_op_t *op, bool success) {
  mq_call_t *c = op->call;
  switch (op->kind) {
    case OP_NEW:
      on_new(c, success);
      break;
    case OP_GENERIC:
      on_generic(c, success);
      break;
    case OP_UNARY:
    case OP_GEN_DONE:
      if (c->in_flight_buf) {
        grpc_byte_buffer_destroy(c->in_flight_buf);
        c->in_flight_buf = NULL;
      }
      call_end(c);
      break;
    case OP_RECV:
      on_recv(c, success);
      break;
    case OP_SEND:
      on_send(c, success);
      break;
    case OP_STATUS:
      call_unref_internal(c);
      break;
    case OP_CLOSE:
      on_close(c, success);
      break;
  }
}

static void *cq_main(void *arg) {
  mq_cq_t *q = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(q->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) dispatch_op(ev.tag, ev.success != 0);
  }
  return NULL;
}

/* ---- handler-facing API (mq_call.h) ----------------------------------------- */

const mq_principal_t *mq_call_principal(const mq_call_t *c) {
  return c->has_principal ? &c->principal : NULL;
}
const char *mq_call_request_id(const mq_call_t *c) {
  return c->request_id;
}
const char *mq_call_trace_id(const mq_call_t *c) {
  return c->trace_id;
}
const char *mq_call_method(const mq_call_t *c) {
  return c->rm ? c->rm->b.method->path : "unknown";
}
mq_arena_t *mq_call_arena(mq_call_t *c) {
  return &c->arena;
}
void *mq_call_app(const mq_call_t *c) {
  return c->srv->opts.app;
}
void mq_call_authorized(mq_call_t *c) {
  c->authorized = true;
}
void *mq_call_state(const mq_call_t *c) {
  return c->state;
}
const mq_method_binding_t *mq_call_binding(const mq_call_t *c) {
  return c->rm ? &c->rm->b : NULL;
}
mq_method_stats_t *mq_call_stats(const mq_call_t *c) {
  return c->rm ? c->rm->stats : c->srv->unknown_stats;
}
const mq_auth_verifier_t *mq_server_verifier(const mq_server_t *srv) {
  return &srv->opts.verifier;
}
const mq_config_t *mq_server_config(const mq_server_t *srv) {
  return srv->cfg;
}

const char *mq_call_peer(mq_call_t *c) {
  if (!c->peer) {
    char *p = grpc_call_get_peer(c->gcall);
    c->peer = mq_arena_strdup(&c->arena, p ? p : "");
    gpr_free(p);
  }
  return c->peer;
}

const char *mq_call_metadata(mq_call_t *c, const char *key, size_t *len) {
  size_t kl = strlen(key);
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_slice *k = &c->md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == kl && memcmp(GRPC_SLICE_START_PTR(*k), key, kl) == 0) {
      const grpc_slice *v = &c->md.metadata[i].value;
      if (len) *len = GRPC_SLICE_LENGTH(*v);
      return mq_arena_strndup(&c->arena, (const char *)GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v));
    }
  }
  return NULL;
}

int64_t mq_call_remaining_ms(const mq_call_t *c) {
  int64_t now = mq_now_ms();
  if (c->deadline_ms == INT64_MAX) return c->start_ns / 1000000 + c->srv->cfg->default_deadline_ms - now;
  return c->deadline_ms - now;
}

bool mq_call_is_cancelled(const mq_call_t *c) {
  if (mq_call_remaining_ms(c) <= 0) return true;
  if (!c->q_cap) return false; /* unary: no close op in flight */
  pthread_mutex_t *mu = (pthread_mutex_t *)&c->mu;
  pthread_mutex_lock(mu);
  bool v = c->cancelled;
  pthread_mutex_unlock(mu);
  return v;
}

static void deadline_ts(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

bool mq_call_sleep(mq_call_t *c, uint32_t ms) {
  int64_t until = mq_now_ms() + ms;
  if (!c->q_cap) { /* unary: wake on deadline only */
    for (;;) {
      int64_t left = until - mq_now_ms();
      int64_t rem = mq_call_remaining_ms(c);
      if (rem <= 0) return false;
      if (left <= 0) return true;
      if (left > rem) left = rem;
      struct timespec ts = {left / 1000, (left % 1000) * 1000000};
      nanosleep(&ts, NULL);
    }
  }
  pthread_mutex_lock(&c->mu);
  bool ok = true;
  for (;;) {
    if (c->cancelled || mq_call_remaining_ms(c) <= 0) {
      ok = false;
      break;
    }
    int64_t left = until - mq_now_ms();
    if (left <= 0) break;
    struct timespec ts;
    deadline_ts(&ts, left < 100 ? left : 100);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
  }
  pthread_mutex_unlock(&c->mu);
  return ok;
}

void mq_call_set_state(mq_call_t *c, void *state, void (*release)(void *, mq_code_t)) {
  c->state = state;
  c->state_release = release;
}

static mq_code_t call_send(mq_call_t *c, const ProtobufCMessage *msg, mq_error_t *err, bool may_block) {
  if (!c->q_cap) return mq_error_set(err, MQ_INTERNAL, NULL, "send on a unary call");
  grpc_byte_buffer *bb = pack_message(c, msg, err);
  if (!bb) return err ? err->code : MQ_RESOURCE_EXHAUSTED;
  pthread_mutex_lock(&c->mu);
  mq_code_t rc = MQ_OK;
  for (;;) {
    if (c->cancelled || c->status_started) {
      rc = mq_error_set(err, MQ_CANCELLED, NULL, "the stream has ended");
      break;
    }
    if (c->q_len < c->q_cap) break;
    if (!may_block) {
      rc = mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "the stream's send queue is full");
      break;
    }
    int64_t rem = mq_call_remaining_ms(c);
    if (rem <= 0) {
      rc = mq_error_set(err, MQ_DEADLINE_EXCEEDED, NULL, "the deadline expired while the client was slow to read");
      break;
    }
    struct timespec ts;
    deadline_ts(&ts, rem < 1000 ? rem : 1000);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
  }
  if (rc != MQ_OK) {
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(bb);
    return rc;
  }
  c->q[(c->q_head + c->q_len) % c->q_cap] = bb;
  c->q_len++;
  if (!c->send_in_flight) start_send_locked(c);
  pthread_mutex_unlock(&c->mu);
  return MQ_OK;
}

mq_code_t mq_call_send(mq_call_t *c, const ProtobufCMessage *msg, mq_error_t *err) {
  return call_send(c, msg, err, mq_pool_on_worker());
}

mq_code_t mq_call_try_send(mq_call_t *c, const ProtobufCMessage *msg, mq_error_t *err) {
  return call_send(c, msg, err, false);
}

void mq_call_ref(mq_call_t *c) {
  pthread_mutex_lock(&c->mu);
  c->refs++;
  pthread_mutex_unlock(&c->mu);
}

void mq_call_unref(mq_call_t *c) {
  call_unref_internal(c);
}

void mq_call_finish(mq_call_t *c, mq_code_t code, const mq_error_t *err) {
  if (err && code != MQ_OK) {
    pthread_mutex_lock(&c->mu);
    if (!c->finish_requested) c->err = *err;
    pthread_mutex_unlock(&c->mu);
  }
  stream_finish(c, check_authorized(c, code), NULL);
}

void mq_call_on_cancel(mq_call_t *c, void (*fn)(mq_call_t *, void *), void *arg) {
  pthread_mutex_lock(&c->mu);
  c->on_cancel = fn;
  c->on_cancel_arg = arg;
  bool fire = c->cancelled && !c->cancel_fired;
  if (fire) c->cancel_fired = true;
  pthread_mutex_unlock(&c->mu);
  if (fire) fn(c, arg);
}

/* ---- server ---------------------------------------------------------------- */

const char *mq_policy_name(mq_policy_t p) {
  switch (p) {
#define MQ_XX_PN(name, doc) \
  case MQ_POLICY_##name:    \
    return #name;
    MQ_POLICIES(MQ_XX_PN)
#undef MQ_XX_PN
    default:
      return "INVALID";
  }
}

static double gauge_queue(void *arg) {
  return (double)mq_pool_depth(((mq_server_t *)arg)->pool);
}
static double gauge_busy(void *arg) {
  return (double)mq_pool_busy(((mq_server_t *)arg)->pool);
}
static double gauge_live(void *arg) {
  return (double)mq_server_live_calls(arg);
}

mq_server_t *mq_server_create(const mq_server_opts_t *opts, mq_error_t *err) {
  const mq_config_t *cfg = opts->cfg;
  mq_server_t *srv = mq_xcalloc(1, sizeof *srv);
  srv->opts = *opts;
  srv->cfg = cfg;
  pthread_mutex_init(&srv->live_mu, NULL);
  pthread_cond_init(&srv->live_cv, NULL);
  grpc_init();

  grpc_arg args[9];
  int n = 0;
#define INT_ARG(k, v) args[n].type = GRPC_ARG_INTEGER, args[n].key = (char *)(k), args[n].value.integer = (int)(v), n++
  INT_ARG(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, cfg->max_recv_bytes);
  INT_ARG(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, cfg->max_send_bytes);
  INT_ARG(GRPC_ARG_ALLOW_REUSEPORT, 0);
  INT_ARG(GRPC_ARG_KEEPALIVE_TIME_MS, cfg->keepalive_time_ms);
  INT_ARG(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, cfg->keepalive_timeout_ms);
  INT_ARG(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  INT_ARG(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  INT_ARG(GRPC_ARG_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams);
  INT_ARG(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 5);
#undef INT_ARG
  grpc_channel_args ca = {(size_t)n, args};
  srv->gsrv = grpc_server_create(&ca, NULL);
  srv->n_cq = (unsigned)cfg->cq_threads;
  if (srv->n_cq == 0) { /* auto: queue threads share the cores with workers and, often, clients */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    srv->n_cq = cpus >= 4 ? (unsigned)(cpus / 2) : 1;
  }
  srv->cqs = calloc(srv->n_cq, sizeof *srv->cqs);
  for (unsigned i = 0; i < srv->n_cq; i++) {
    srv->cqs[i].srv = srv;
    srv->cqs[i].cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->gsrv, srv->cqs[i].cq, NULL);
  }
  srv->pool = mq_pool_create((unsigned)cfg->workers, (size_t)cfg->worker_queue, "mq-worker");
  if (!srv->pool) {
    mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the worker pool");
    mq_server_destroy(srv);
    return NULL;
  }
  srv->unknown_stats = mq_metrics_method("unknown", MQ_KIND_UNARY);
  if (!opts->bare) {
    mq_metrics_gauge("marquee_worker_queue_depth", "Handler tasks waiting for a worker", gauge_queue, srv);
    mq_metrics_gauge("marquee_worker_busy", "Workers running a handler now", gauge_busy, srv);
    mq_metrics_gauge("marquee_live_calls", "Calls accepted and not yet finished", gauge_live, srv);
  }
  return srv;
}

int mq_server_add_service(mq_server_t *srv, const mq_service_desc_t *svc, const mq_method_binding_t *rows, unsigned n) {
  if (srv->started) {
    mq_log(MQ_LOG_ERROR, "server.config", "%s registered after start", svc->full_name);
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    const mq_method_binding_t *r = &rows[i];
    if (!r->present || r->policy == MQ_POLICY_UNSET || r->policy >= MQ_POLICY_COUNT_) {
      mq_log(MQ_LOG_ERROR, "server.config", "%s: %s", r->method->path,
             !r->present ? "no handler in the service's table" : "no access policy declared");
      return -1;
    }
    for (unsigned j = 0; j < i; j++)
      if (strcmp(rows[j].method->path, r->method->path) == 0) {
        mq_log(MQ_LOG_ERROR, "server.config", "%s listed twice in one table", r->method->path);
        return -1;
      }
    for (unsigned j = 0; j < srv->n_methods; j++)
      if (strcmp(srv->methods[j].b.method->path, r->method->path) == 0) {
        mq_log(MQ_LOG_ERROR, "server.config", "%s registered twice", r->method->path);
        return -1;
      }
  }
  for (unsigned i = 0; i < n; i++) {
    if (srv->n_methods == srv->cap_methods) {
      srv->cap_methods = srv->cap_methods ? srv->cap_methods * 2 : 32;
      srv->methods = mq_xrealloc(srv->methods, srv->cap_methods * sizeof *srv->methods);
    }
    mq_reg_method_t *m = &srv->methods[srv->n_methods++];
    m->b = rows[i];
    m->stats = mq_metrics_method(rows[i].method->path, rows[i].method->kind);
    bool payload = rows[i].method->kind == MQ_KIND_UNARY || rows[i].method->kind == MQ_KIND_SERVER_STREAMING;
    m->handle =
        grpc_server_register_method(srv->gsrv, rows[i].method->path, NULL,
                                    payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    if (!m->handle) {
      mq_log(MQ_LOG_ERROR, "server.config", "grpc refused to register %s", rows[i].method->path);
      return -1;
    }
  }
  srv->services = realloc(srv->services, (srv->n_services + 1) * sizeof *srv->services);
  srv->services[srv->n_services++] = svc;
  return 0;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *p = malloc(cap);
  size_t k;
  while (p && (k = fread(p + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (len + 1 == cap) {
      char *np = realloc(p, cap *= 2);
      if (!np) {
        free(p);
        p = NULL;
        break;
      }
      p = np;
    }
  }
  fclose(f);
  if (p) p[len] = '\0';
  return p;
}

mq_code_t mq_server_start(mq_server_t *srv, mq_error_t *err) {
  const mq_config_t *cfg = srv->cfg;
  grpc_server_credentials *creds;
  if (cfg->tls_cert[0]) {
    char *cert = read_file(cfg->tls_cert), *key = read_file(cfg->tls_key);
    if (!cert || !key) {
      free(cert);
      free(key);
      return mq_error_set(err, MQ_INVALID_ARGUMENT, cert ? "MARQUEE_TLS_KEY" : "MARQUEE_TLS_CERT",
                          "cannot read the file");
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
    free(cert);
    free(key);
    if (!creds) return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_TLS_CERT", "invalid certificate or key");
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  srv->port = grpc_server_add_http2_port(srv->gsrv, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (srv->port == 0)
    return mq_error_set(err, MQ_UNAVAILABLE, "MARQUEE_LISTEN", "cannot listen on %s (address in use, or invalid)",
                        cfg->listen);
  grpc_server_start(srv->gsrv);
  srv->started = true;
  for (unsigned i = 0; i < srv->n_cq; i++) {
    mq_cq_t *q = &srv->cqs[i];
    for (unsigned m = 0; m < srv->n_methods; m++) {
      int k = srv->methods[m].b.method->kind == MQ_KIND_UNARY ? PREPOST_UNARY : PREPOST_STREAM;
      for (int j = 0; j < k; j++) post_request(srv, q, &srv->methods[m]);
    }
    for (int j = 0; j < PREPOST_GENERIC; j++) post_request(srv, q, NULL);
    if (pthread_create(&q->thread, NULL, cq_main, q) != 0) return mq_error_set(err, MQ_INTERNAL, NULL, "pthread");
    q->running = true;
    char tn[32];
    snprintf(tn, sizeof tn, "mq-cq-%u", i);
    tn[15] = '\0';
    pthread_setname_np(q->thread, tn);
  }
  return MQ_OK;
}

int mq_server_port(const mq_server_t *srv) {
  return srv->port;
}

unsigned mq_server_services(const mq_server_t *srv, const mq_service_desc_t *const **out) {
  *out = srv->services;
  return srv->n_services;
}

void mq_server_on_shutdown(mq_server_t *srv, void (*fn)(void *), void *arg) {
  if (srv->n_hooks < MAX_HOOKS) {
    srv->hooks[srv->n_hooks].fn = fn;
    srv->hooks[srv->n_hooks].arg = arg;
    srv->n_hooks++;
  }
}

bool mq_server_shutting_down(const mq_server_t *srv) {
  return atomic_load(&srv->shutting_down);
}
size_t mq_server_pool_depth(mq_server_t *srv) {
  return mq_pool_depth(srv->pool);
}

int64_t mq_server_live_calls(mq_server_t *srv) {
  pthread_mutex_lock(&srv->live_mu);
  int64_t v = srv->live;
  pthread_mutex_unlock(&srv->live_mu);
  return v;
}

void mq_server_shutdown(mq_server_t *srv) {
  if (srv->shut_down || !srv->started) return;
  srv->shut_down = true;
  atomic_store(&srv->shutting_down, true);
  int64_t t0 = mq_now_ms();
  mq_log(MQ_LOG_INFO, "server.shutdown", "draining %lld in-flight calls (grace %lld ms)",
         (long long)mq_server_live_calls(srv), (long long)srv->cfg->shutdown_grace_ms);
  for (unsigned i = 0; i < srv->n_hooks; i++) srv->hooks[i].fn(srv->hooks[i].arg);

  grpc_completion_queue *scq = grpc_completion_queue_create_for_pluck(NULL);
  int tag;
  grpc_server_shutdown_and_notify(srv->gsrv, scq, &tag);
  gpr_timespec grace =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(srv->cfg->shutdown_grace_ms, GPR_TIMESPAN));
  grpc_event ev = grpc_completion_queue_pluck(scq, &tag, grace, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    mq_log(MQ_LOG_WARN, "server.shutdown", "grace period over: cancelling %lld calls",
           (long long)mq_server_live_calls(srv));
    grpc_server_cancel_all_calls(srv->gsrv);
    grpc_completion_queue_pluck(scq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  }
  grpc_completion_queue_shutdown(scq);
  grpc_completion_queue_destroy(scq);
  /* Handlers may still hold streams after the notification (DESIGN.md §3). */
  pthread_mutex_lock(&srv->live_mu);
  while (srv->live > 0) {
    struct timespec ts;
    deadline_ts(&ts, 200);
    pthread_cond_timedwait(&srv->live_cv, &srv->live_mu, &ts);
    if (srv->live > 0 && mq_now_ms() - t0 > srv->cfg->shutdown_grace_ms) {
      pthread_mutex_unlock(&srv->live_mu);
      grpc_server_cancel_all_calls(srv->gsrv);
      pthread_mutex_lock(&srv->live_mu);
    }
  }
  pthread_mutex_unlock(&srv->live_mu);
  mq_log(MQ_LOG_INFO, "server.shutdown", "drained in %lld ms", (long long)(mq_now_ms() - t0));
}

void mq_server_destroy(mq_server_t *srv) {
  if (!srv) return;
  mq_metrics_gauge_remove(srv);
  if (srv->started) mq_server_shutdown(srv);
  if (srv->pool) mq_pool_destroy(srv->pool);
  for (unsigned i = 0; i < srv->n_cq; i++) grpc_completion_queue_shutdown(srv->cqs[i].cq);
  for (unsigned i = 0; i < srv->n_cq; i++) {
    if (srv->cqs[i].running) {
      pthread_join(srv->cqs[i].thread, NULL);
    } else {
      /* never started: drain here */
      for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cqs[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_OP_COMPLETE) dispatch_op(ev.tag, ev.success != 0);
      }
    }
  }
  if (srv->gsrv) grpc_server_destroy(srv->gsrv);
  for (unsigned i = 0; i < srv->n_cq; i++) grpc_completion_queue_destroy(srv->cqs[i].cq);
  free(srv->cqs);
  free(srv->methods);
  free(srv->services);
  pthread_mutex_destroy(&srv->live_mu);
  pthread_cond_destroy(&srv->live_cv);
  free(srv);
  grpc_shutdown_blocking();
}
