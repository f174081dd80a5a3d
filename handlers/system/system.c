/*
 * system.c — marquee.system.v1.SystemService: server information and Ping,
 * the cheapest call through the full interceptor chain (used by the
 * benchmark). Both are public and never block, so they run inline on the
 * completion-queue thread.
 */
#include <string.h>

#include "core/mq_time.h"
#include "handlers/mq_app.h"
#include "handlers/system/system.h"
#include "marquee/system/v1/system.mq-server.h"
#include "store/mq_bson.h"

static mq_code_t system_get_server_info(mq_call_t *call, const Marquee__System__V1__GetServerInfoRequest *req,
                                        Marquee__System__V1__ServerInfo *resp, mq_error_t *err) {
  (void)req, (void)err;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  resp->version = (char *)MQ_VERSION;
  resp->git_commit = (char *)MQ_GIT_COMMIT;
  resp->instance_id = app->instance_id;
  resp->started_at = mq_pb_timestamp(a, app->started_unix_ms);
  int64_t up = (mq_now_unix_ms() - app->started_unix_ms) / 1000;
  resp->uptime_seconds = up > 0 ? (uint64_t)up : 0;
  const mq_service_desc_t *const *svcs;
  unsigned n = mq_server_services(app->srv, &svcs);
  resp->services = mq_arena_alloc(a, (n ? n : 1) * sizeof(char *));
  for (unsigned i = 0; i < n; i++) resp->services[i] = (char *)svcs[i]->full_name;
  resp->n_services = n;
  return MQ_OK;
}

static mq_code_t system_ping(mq_call_t *call, const Marquee__System__V1__PingRequest *req,
                             Marquee__System__V1__PingResponse *resp, mq_error_t *err) {
  (void)call;
  if (req->payload.len > 4096) return mq_error_set(err, MQ_INVALID_ARGUMENT, "payload", "must be at most 4096 bytes");
  resp->payload = req->payload;
  return MQ_OK;
}

static const marquee__system__v1__system_service_handlers_t handlers = {
    .get_server_info = {system_get_server_info, MQ_POLICY_PUBLIC, MQ_RUN_INLINE},
    .ping = {system_ping, MQ_POLICY_PUBLIC, MQ_RUN_INLINE},
};

int system_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__system__v1__system_service__mq_register(srv, &handlers);
}
