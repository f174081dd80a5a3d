/*
 * mq_call_internal.h — the call object, shared by transport.c and the
 * interceptors. Nothing outside server/ includes this.
 *
 * Call state machine (streams; unary calls take the first and last step only):
 *
 *   REQUESTED --(request completes)--> ACTIVE --handler returns / finish-->
 *   FINISHING (queued sends drain, then status) --status sent and close
 *   received and no refs--> destroyed
 *
 * Reference counting: the transport holds one reference per outstanding
 * batch and one for the handler while it runs (or keeps the call with
 * MQ_PENDING). When the count reaches zero the after-interceptors run (log,
 * metrics), the state release callback runs with the final code, and the call
 * is freed. `mu` guards the send queue and the flags below it.
 */
#ifndef MQ_CALL_INTERNAL_H
#define MQ_CALL_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>

#include "core/mq_metrics.h"
#include "handlers/mq_call.h"
#include "server/mq_server.h"

typedef struct mq_cq mq_cq_t;
typedef struct mq_reg_method mq_reg_method_t;

typedef enum {
  OP_NEW,      /* request arrived */
  OP_UNARY,    /* unary reply batch */
  OP_CLOSE,    /* recv close on server (cancellation) */
  OP_RECV,     /* recv message */
  OP_SEND,     /* send message */
  OP_STATUS,   /* send status */
  OP_GENERIC,  /* unknown method arrived */
  OP_GEN_DONE, /* UNIMPLEMENTED reply sent */
} mq_op_kind_t;

typedef struct mq_op {
  struct mq_call *call;
  mq_op_kind_t kind;
} mq_op_t;

struct mq_call {
  mq_server_t *srv;
  bool inline_try;          /* MQ_RUN_TRY_INLINE: the handler runs on the CQ thread now */
  const void *packed_reply; /* mq_call_reply_packed: the unary reply's bytes, already serialized */
  size_t packed_len;
  mq_cq_t *cq;
  mq_reg_method_t *rm; /* NULL for an unknown (generic) method */
  grpc_call *gcall;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details; /* generic calls only */
  grpc_byte_buffer *payload; /* unary / server-streaming request */
  mq_arena_t arena;
  mq_arena_t msg_arena; /* per received stream message, reset after each */

  mq_op_t op_new, op_unary, op_close, op_recv, op_send, op_status;
  grpc_byte_buffer *recv_buf;
  int close_cancelled;

  /* identity, filled by interceptors */
  char request_id[48];
  char trace_id[36];
  mq_principal_t principal;
  bool has_principal;
  bool authorized;
  int64_t start_ns;
  int64_t deadline_ms; /* monotonic ms; INT64_MAX if none */
  const char *peer;

  /* reply */
  mq_code_t code;
  mq_error_t err;
  char status_text[MQ_ERROR_MESSAGE_MAX + MQ_ERROR_FIELD_MAX + 8];
  grpc_slice status_slice;
  grpc_metadata init_md[2];
  grpc_metadata trail_md[3];
  uint8_t *details_buf; /* the packed google.rpc.Status (malloc'ed; freed with the call) */
  size_t details_len;
  char retry_after[24];
  ProtobufCMessage *req;

  /* streaming */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  grpc_byte_buffer **q;
  size_t q_head, q_len, q_cap;
  grpc_byte_buffer *in_flight_buf;
  bool send_in_flight, md_sent, finish_requested, status_started, closed, cancelled, cancel_fired;
  int refs;
  void (*on_cancel)(mq_call_t *, void *);
  void *on_cancel_arg;
  void *state;
  void (*state_release)(void *, mq_code_t);
  mq_code_t final_code;
  struct mq_call *live_prev, *live_next;
};

/* Interceptor hooks (mq_interceptors.c). */
mq_code_t mq_interceptors_before(mq_call_t *call, mq_error_t *err);
void mq_interceptors_after(mq_call_t *call, grpc_status_code status, int64_t duration_us);

/* Accessors the interceptors need from transport.c. */
const mq_method_binding_t *mq_call_binding(const mq_call_t *call);
mq_method_stats_t *mq_call_stats(const mq_call_t *call);
const mq_auth_verifier_t *mq_server_verifier(const mq_server_t *srv);
const mq_config_t *mq_server_config(const mq_server_t *srv);

#endif
