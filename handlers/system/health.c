/*
 * health.c — grpc.health.v1.Health (Check, Watch) over mq_health.h.
 *
 * Check answers from the current state; an unknown service is NOT_FOUND as
 * the protocol requires. Watch sends the current status at once and then
 * every change: the probe thread calls health_service_tick() after each probe
 * and each watcher whose last sent status differs gets the new one (a full
 * send queue just means it is retried at the next tick, so the latest status
 * always arrives). Watchers end when the client cancels or at shutdown (with
 * NOT_SERVING then UNAVAILABLE).
 *
 * Watcher life cycle: created in Watch with a call reference; removed from
 * the list exactly once (under `mu`, flag `done`) by cancel or shutdown,
 * which then finishes the call and drops the reference; freed by the call's
 * state release when the call ends — so no path frees it twice or early.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_xmalloc.h"
#include "grpc/health/v1/health.mq-server.h"
#include "handlers/mq_app.h"
#include "handlers/system/system.h"

typedef struct watcher {
  struct watcher *next;
  mq_call_t *call;
  char service[201];
  int last;
  bool done;
} watcher_t;

struct mq_health_service {
  pthread_mutex_t mu;
  watcher_t *head;
  bool closing;
  mq_app_t *app;
};

static Grpc__Health__V1__HealthCheckResponse__ServingStatus to_pb(mq_health_status_t s) {
  return (Grpc__Health__V1__HealthCheckResponse__ServingStatus)s;
}

static mq_code_t check_service_name(const char *s, mq_error_t *err) {
  if (s && strlen(s) > 200) return mq_error_set(err, MQ_INVALID_ARGUMENT, "service", "must be at most 200 bytes");
  return MQ_OK;
}

static mq_code_t health_check(mq_call_t *call, const Grpc__Health__V1__HealthCheckRequest *req,
                              Grpc__Health__V1__HealthCheckResponse *resp, mq_error_t *err) {
  mq_code_t rc = check_service_name(req->service, err);
  if (rc != MQ_OK) return rc;
  mq_app_t *app = mq_call_app(call);
  mq_health_status_t st = mq_health_status(app->health, req->service);
  if (st == MQ_HEALTH_SERVICE_UNKNOWN) return mq_error_set(err, MQ_NOT_FOUND, "service", "unknown service");
  resp->status = to_pb(st);
  return MQ_OK;
}

static mq_code_t send_status(mq_call_t *call, mq_health_status_t st) {
  Grpc__Health__V1__HealthCheckResponse m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  m.status = to_pb(st);
  mq_error_t err;
  return mq_call_try_send(call, &m.base, &err);
}

/* Removes `w` from the list if still there; true if this caller did. */
static bool take(mq_health_service_t *hs, watcher_t *w) {
  bool took = false;
  pthread_mutex_lock(&hs->mu);
  if (!w->done) {
    for (watcher_t **pp = &hs->head; *pp; pp = &(*pp)->next)
      if (*pp == w) {
        *pp = w->next;
        break;
      }
    w->done = took = true;
  }
  pthread_mutex_unlock(&hs->mu);
  return took;
}

static void watcher_release(void *state, mq_code_t final_code) {
  (void)final_code;
  free(state);
}

static void on_cancel(mq_call_t *call, void *arg) {
  mq_health_service_t *hs = ((mq_app_t *)mq_call_app(call))->health_service;
  watcher_t *w = arg;
  if (take(hs, w)) {
    mq_call_finish(call, MQ_CANCELLED, NULL);
    mq_call_unref(call);
  }
}

static mq_code_t health_watch(mq_call_t *call, const Grpc__Health__V1__HealthCheckRequest *req, mq_error_t *err) {
  mq_code_t rc = check_service_name(req->service, err);
  if (rc != MQ_OK) return rc;
  mq_app_t *app = mq_call_app(call);
  mq_health_service_t *hs = app->health_service;
  watcher_t *w = mq_xcalloc(1, sizeof *w);
  w->call = call;
  snprintf(w->service, sizeof w->service, "%s", req->service ? req->service : "");
  mq_health_status_t st = mq_health_status(app->health, w->service);
  w->last = (int)st;
  mq_call_set_state(call, w, watcher_release);
  if ((rc = send_status(call, st)) != MQ_OK) return mq_error_set(err, rc, NULL, NULL);
  mq_call_ref(call);
  pthread_mutex_lock(&hs->mu);
  bool closing = hs->closing;
  if (!closing) {
    w->next = hs->head;
    hs->head = w;
  } else {
    w->done = true;
  }
  pthread_mutex_unlock(&hs->mu);
  if (closing) {
    mq_call_unref(call);
    return mq_error_set(err, MQ_SHUTTING_DOWN, NULL, NULL);
  }
  mq_call_on_cancel(call, on_cancel, w);
  return MQ_PENDING;
}

void health_service_tick(mq_app_t *app) {
  mq_health_service_t *hs = app->health_service;
  if (!hs) return;
  pthread_mutex_lock(&hs->mu);
  for (watcher_t *w = hs->head; w; w = w->next) {
    mq_health_status_t st = mq_health_status(app->health, w->service);
    if ((int)st != w->last && send_status(w->call, st) == MQ_OK) w->last = (int)st;
  }
  pthread_mutex_unlock(&hs->mu);
}

static void on_server_shutdown(void *arg) {
  mq_app_t *app = arg;
  mq_health_service_t *hs = app->health_service;
  mq_health_set_shutting_down(app->health);
  pthread_mutex_lock(&hs->mu);
  hs->closing = true;
  watcher_t *list = hs->head;
  hs->head = NULL;
  for (watcher_t *w = list; w; w = w->next) w->done = true;
  pthread_mutex_unlock(&hs->mu);
  while (list) {
    watcher_t *next = list->next; /* read before the call may end and free it */
    mq_call_t *call = list->call;
    send_status(call, MQ_HEALTH_NOT_SERVING);
    mq_error_t err;
    mq_error_set(&err, MQ_SHUTTING_DOWN, NULL, NULL);
    mq_call_finish(call, MQ_SHUTTING_DOWN, &err);
    mq_call_unref(call);
    list = next;
  }
}

static const grpc__health__v1__health_handlers_t handlers = {
    .check = {health_check, MQ_POLICY_PUBLIC, MQ_RUN_INLINE},
    .watch = {health_watch, MQ_POLICY_PUBLIC, MQ_RUN_INLINE},
};

int health_service_register(mq_app_t *app, mq_server_t *srv) {
  mq_health_service_t *hs = mq_xcalloc(1, sizeof *hs);
  pthread_mutex_init(&hs->mu, NULL);
  hs->app = app;
  app->health_service = hs;
  mq_server_on_shutdown(srv, on_server_shutdown, app);
  return grpc__health__v1__health__mq_register(srv, &handlers);
}

void health_service_free(mq_app_t *app) {
  mq_health_service_t *hs = app->health_service;
  if (!hs) return;
  pthread_mutex_destroy(&hs->mu);
  free(hs);
  app->health_service = NULL;
}
