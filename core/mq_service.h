/*
 * mq_service.h — what a gRPC method is, independent of server or client.
 *
 * protoc-gen-marquee emits one const mq_service_desc_t per service with a row
 * per method: its path, its call kind (the streaming flags protoc-c drops) and
 * the protobuf-c descriptors of its request and response. Server dispatch and
 * the client library both work from these rows. The server-side binding
 * (handler thunks, policy, flags) is mq_method_binding_t, filled by the
 * generated <service>__mq_register() and declared in handlers/mq_call.h.
 * Read next: handlers/mq_call.h, server/mq_server.h.
 */
#ifndef MQ_SERVICE_H
#define MQ_SERVICE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "core/mq_error.h"

typedef enum mq_method_kind {
  MQ_KIND_UNARY,
  MQ_KIND_SERVER_STREAMING,
  MQ_KIND_CLIENT_STREAMING,
  MQ_KIND_BIDI_STREAMING
} mq_method_kind_t;

struct mq_service_desc;

typedef struct mq_method_desc {
  const char *path; /* "/marquee.system.v1.SystemService/Ping" */
  const char *name; /* "Ping" */
  mq_method_kind_t kind;
  const ProtobufCMessageDescriptor *input;
  const ProtobufCMessageDescriptor *output;
  unsigned index; /* position in the service */
  const struct mq_service_desc *service;
} mq_method_desc_t;

typedef struct mq_service_desc {
  const char *full_name; /* "marquee.system.v1.SystemService" */
  unsigned n_methods;
  const mq_method_desc_t *methods;
} mq_service_desc_t;

/* Who may call a method (DESIGN.md §7). Every row must declare one: the
 * server refuses to start with MQ_POLICY_UNSET. The policy interceptor enforces
 * all of these before the handler runs, except the resource check of
 * MQ_POLICY_RESOURCE, which the handler performs (e.g. "manager of the event's
 * organization") and confirms with mq_call_authorized(); the transport turns a
 * successful reply from a handler that never confirmed into INTERNAL. */
#define MQ_POLICIES(XX)                                            \
  XX(UNSET, "unset")                                               \
  XX(PUBLIC, "public: anyone, token optional")                     \
  XX(AUTHENTICATED, "any signed-in user")                          \
  XX(ORGANIZER, "users with the organizer or admin platform role") \
  XX(ADMIN, "users with the admin platform role")                  \
  XX(RESOURCE, "signed-in user; the handler checks the resource")

typedef enum mq_policy {
#define MQ_XX_POL(name, doc) MQ_POLICY_##name,
  MQ_POLICIES(MQ_XX_POL)
#undef MQ_XX_POL
      MQ_POLICY_COUNT_
} mq_policy_t;

const char *mq_policy_name(mq_policy_t p);

/* Row flags. */
enum {
  /* The handler never blocks (no I/O, no locks held long): run it on the
   * completion-queue thread and skip the worker-pool hop. */
  MQ_RUN_INLINE = 1u << 0,
  /* Unary only: try the handler on the completion-queue thread first; when
   * it needs to block (a cache miss) it returns MQ_PENDING without having
   * changed anything (mq_call_inline() tells it where it runs), and the
   * transport runs it again on the worker pool. The warm path skips the
   * pool hop; the cold path costs one wasted, side-effect-free attempt. */
  MQ_RUN_TRY_INLINE = 1u << 1,
};

#endif
