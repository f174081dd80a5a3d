/*
 * mq_call.h — what a handler sees of a gRPC call.
 *
 * Handlers never touch gRPC types (DESIGN.md §2). They receive an mq_call_t:
 * the caller's identity (set by the auth interceptor), the request and trace
 * ids, the deadline, an arena for anything that lives as long as the call, the
 * application context, and — for streams — a bounded send queue.
 *
 * Threads: a handler runs on a worker-pool thread unless its row says
 * MQ_RUN_INLINE. For one call, the transport never runs two handler callbacks
 * at once (client-stream messages are delivered one after another).
 *
 * Long-lived streams: a server-streaming or bidi handler may return
 * MQ_PENDING after taking a reference (mq_call_ref); it then owns finishing
 * the call with mq_call_finish and dropping the reference (mq_call_unref).
 * mq_call_on_cancel registers a callback fired once when the client goes away
 * or the server shuts down.
 *
 * This header is the contract between the handlers and the transport: the
 * handlers' layer declares what it needs of a call, and server/transport.c
 * (a layer above) implements it, so no handler includes anything of
 * server/. Read next: server/mq_server.h, server/transport.c.
 */
#ifndef MQ_CALL_H
#define MQ_CALL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"
#include "core/mq_principal.h"
#include "core/mq_service.h"

struct mq_call;
typedef struct mq_call mq_call_t;
struct mq_server;
typedef struct mq_server mq_server_t;

/* One method's server binding; `impl` is the service's typed handler table. */
typedef struct mq_method_binding {
  const mq_method_desc_t *method;
  const void *impl;
  mq_code_t (*unary)(const void *impl, mq_call_t *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                     mq_error_t *err);
  mq_code_t (*server_stream)(const void *impl, mq_call_t *call, const ProtobufCMessage *req, mq_error_t *err);
  mq_code_t (*on_msg)(const void *impl, mq_call_t *call, const ProtobufCMessage *req, mq_error_t *err);
  /* resp is NULL for bidi */
  mq_code_t (*on_end)(const void *impl, mq_call_t *call, ProtobufCMessage *resp, mq_error_t *err);
  bool present;
  mq_policy_t policy;
  unsigned flags;
} mq_method_binding_t;

/* --- what the server offers a module registering its services ---------- */
/* Adds a service's methods; must precede mq_server_start. Returns 0, or -1
 * (logged) when a row lacks a handler or policy or the method is known. */
int mq_server_add_service(mq_server_t *srv, const mq_service_desc_t *svc, const mq_method_binding_t *rows, unsigned n);
/* Services registered, in order (for reflection and ServerInfo; *out is
 * borrowed from the server). */
unsigned mq_server_services(const mq_server_t *srv, const mq_service_desc_t *const **out);
/* Called at the start of shutdown, before draining (health goes NOT_SERVING,
 * long-lived streams finish). Register before mq_server_start. */
void mq_server_on_shutdown(mq_server_t *srv, void (*fn)(void *arg), void *arg);

/* --- identity and context ---------------------------------------------- */
const mq_principal_t *mq_call_principal(const mq_call_t *call); /* NULL if anonymous */
const char *mq_call_request_id(const mq_call_t *call);
const char *mq_call_trace_id(const mq_call_t *call);
const char *mq_call_method(const mq_call_t *call); /* "/pkg.Svc/Method" */
/* Client address as "ipv4:1.2.3.4:5678" etc. (arena copy). */
const char *mq_call_peer(mq_call_t *call);
/* First value of request metadata `key` (lower case), NUL-terminated arena
 * copy, or NULL. Binary (-bin) values are returned raw. */
const char *mq_call_metadata(mq_call_t *call, const char *key, size_t *len);
mq_arena_t *mq_call_arena(mq_call_t *call);
/* The application context given to mq_server_create (store, publisher…). */
void *mq_call_app(const mq_call_t *call);
/* Milliseconds left before the call's deadline (clamped to the server's
 * default budget when the client sent none); <= 0 means expired. */
int64_t mq_call_remaining_ms(const mq_call_t *call);
bool mq_call_is_cancelled(const mq_call_t *call);
/* For MQ_POLICY_RESOURCE rows: the handler checked the caller's rights. */
void mq_call_authorized(mq_call_t *call);
/* Sleep up to `ms`, returning early (false) if the call is cancelled. */
bool mq_call_sleep(mq_call_t *call, uint32_t ms);

/* --- per-call state for streaming handlers ------------------------------ */
/* `release(state, final_code)` runs once when the call ends, with the status
 * sent (so an upload can delete partial data unless final_code == MQ_OK). */
void mq_call_set_state(mq_call_t *call, void *state, void (*release)(void *state, mq_code_t final_code));
void *mq_call_state(const mq_call_t *call);

/* --- streaming ----------------------------------------------------------- */
/* Packs `msg` and queues it. From a worker thread, blocks while the call's
 * send queue is full (backpressure) until space, cancellation or deadline.
 * From a non-worker context (MQ_RUN_INLINE handler, a watcher callback) use
 * mq_call_try_send. Returns MQ_OK, MQ_CANCELLED (client gone / call ended),
 * MQ_DEADLINE_EXCEEDED or MQ_RESOURCE_EXHAUSTED (message over the size limit). */
mq_code_t mq_call_send(mq_call_t *call, const ProtobufCMessage *msg, mq_error_t *err);
/* Never blocks: MQ_RESOURCE_EXHAUSTED when the queue is full. */
mq_code_t mq_call_try_send(mq_call_t *call, const ProtobufCMessage *msg, mq_error_t *err);
void mq_call_ref(mq_call_t *call);
void mq_call_unref(mq_call_t *call);
/* Ends a stream that its handler kept with MQ_PENDING: queued messages are
 * sent first, then the status. Idempotent: later calls are ignored. */
void mq_call_finish(mq_call_t *call, mq_code_t code, const mq_error_t *err);
/* Fired at most once, on a transport thread, when the client cancels, the
 * deadline passes or the server shuts down. Must not block. */
void mq_call_on_cancel(mq_call_t *call, void (*fn)(mq_call_t *call, void *arg), void *arg);

/* True while the handler runs on a completion-queue thread (MQ_RUN_INLINE,
 * or the first attempt of an MQ_RUN_TRY_INLINE row): it must not block. A
 * MQ_RUN_TRY_INLINE handler that would block returns MQ_PENDING then, before
 * changing anything, and runs again on the worker pool. */
bool mq_call_inline(const mq_call_t *c);

/* Unary handlers: answer with bytes that already are the serialized
 * response (a cached reply), skipping unpack and repack. `bytes` must live
 * until the call ends (the call's arena); return MQ_OK, resp untouched. */
void mq_call_reply_packed(mq_call_t *c, const void *bytes, size_t len);

#endif
