/*
 * mq_server.h — the gRPC server runtime on the C core (DESIGN.md §3).
 *
 * Life cycle:
 *   mq_server_create  → mq_server_add_service (generated <svc>__mq_register)
 *   → mq_server_start (binds; fails loudly if the port is taken)
 *   → mq_server_shutdown (stop accepting, drain for the grace period, cancel
 *     the rest, wait for every call to end) → mq_server_destroy.
 *
 * Every call runs the interceptor chain (see mq_interceptors.h) before its
 * handler: deadline, request/trace id, authentication, access policy, and on
 * completion logging and metrics. A server created with `bare = true` runs no
 * interceptors (the benchmark's baseline on the same transport).
 * Read next: transport.c (the call state machine), mq_interceptors.h.
 */
#ifndef MQ_SERVER_H
#define MQ_SERVER_H

#include <stdbool.h>

#include "core/mq_config.h"
#include "core/mq_service.h"
#include "handlers/mq_call.h"

/* Verifies a bearer token. Must not block (no I/O): it runs on queue threads.
 * Returns MQ_OK and fills `out`, or MQ_UNAUTHENTICATED with a reason. */
typedef struct mq_auth_verifier {
  mq_code_t (*verify)(void *self, const char *token, size_t len, mq_principal_t *out, mq_error_t *err);
  void *self;
} mq_auth_verifier_t;

typedef struct mq_server_opts {
  const mq_config_t *cfg; /* borrowed; must outlive the server */
  void *app;              /* returned by mq_call_app() */
  mq_auth_verifier_t verifier;
  bool bare; /* no interceptors (benchmark baseline) */
} mq_server_opts_t;

mq_server_t *mq_server_create(const mq_server_opts_t *opts, mq_error_t *err);
/* Binds and starts serving. On failure (port in use, bad TLS files) returns
 * UNAVAILABLE/INVALID_ARGUMENT with the reason; the server must be destroyed. */
mq_code_t mq_server_start(mq_server_t *srv, mq_error_t *err);
int mq_server_port(const mq_server_t *srv);
bool mq_server_shutting_down(const mq_server_t *srv);
/* Blocking; safe to call once. */
void mq_server_shutdown(mq_server_t *srv);
void mq_server_destroy(mq_server_t *srv);
/* For /metrics. */
size_t mq_server_pool_depth(mq_server_t *srv);
int64_t mq_server_live_calls(mq_server_t *srv);

#endif
