/*
 * mq_app.c — THE table of modules this server runs, and the application's
 * life cycle around it (see mq_app.h). To add a domain: write
 * handlers/<domain>/module.c exporting an mq_module_t (its services,
 * indexes, routes and hooks) and add it to `modules` below. Nothing else
 * here names a domain.
 *
 * What stays here is the transport's own: the outbox relay, the probe
 * thread, the invalidator (Kafka → the modules' on_event and the caches'
 * on/off switch) and server reflection.
 *
 * Invariants:
 * 1. The relay watches every collection whose index table declares the
 *    outbox index: one declaration, so no collection's events can be
 *    forgotten.
 * 2. The shared caches serve only while other instances' writes can be
 *    heard (app->events_live); with no Kafka configured there are no other
 *    instances to hear.
 * 3. Close walks the modules in reverse after the invalidator can no longer
 *    call them, and frees the platform parts last.
 */
#include "server/mq_app.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/mq_module.h"
#include "handlers/system/reflection.h"
#include "lib/mq_httpc.h"
#include "lib/mq_invalidator.h"
#include "lib/mq_password.h"
#include "server/mq_relay.h"
#include "store/mq_outbox.h"

/* Every module of marquee-server, in the order their services are listed.
 * Health is last so it can list the others. */
static const mq_module_t *const modules[] = {
    &mq_system_module, &mq_identity_module,  &mq_catalog_module,       &mq_bookings_module, &mq_payments_module,
    &mq_search_module, &mq_analytics_module, &mq_notifications_module, &mq_health_module,
};
#define N_MODULES MQ_COUNT(modules)

/* The transport's part of the application, around the context handlers see. */
typedef struct host {
  mq_app_t app; /* first: mq_app_t * and host_t * convert */
  mq_relay_t *relay;
  mq_invalidator_t *invalidator;
  size_t n_open; /* modules whose open ran (close walks back from here) */
  pthread_t probe;
  bool probe_running, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} host_t;

static mq_reflection_t *g_reflection; /* one per process */

static host_t *host_of(mq_app_t *app) {
  return (host_t *)app;
}

static void caches_new(mq_app_t *app, const mq_config_t *cfg) {
  if (cfg->cache_ttl_ms <= 0) return;
  app->profiles = mq_cache_new((size_t)cfg->cache_entries, cfg->cache_ttl_ms);
  app->events = mq_cache_new((size_t)cfg->cache_entries, cfg->cache_ttl_ms);
  app->event_pages = mq_cache_new((size_t)cfg->cache_entries, cfg->cache_ttl_ms);
  mq_cache_export_metrics(app->profiles, "profiles");
  mq_cache_export_metrics(app->events, "events");
  mq_cache_export_metrics(app->event_pages, "event_pages");
  /* what CreateHold reads of an event (capacities, windows, codes): a
   * short TTL bounds how long a change made elsewhere can go unseen when
   * its event cannot arrive */
  app->sale_events = mq_cache_new((size_t)cfg->cache_entries, cfg->cache_ttl_ms < 2000 ? cfg->cache_ttl_ms : 2000);
  mq_cache_export_metrics(app->sale_events, "sale_events");
}

static void caches_enabled(mq_app_t *app, bool on) {
  if (!app->profiles) return; /* all four exist or none (MARQUEE_CACHE_TTL_MS=0) */
  mq_cache_set_enabled(app->profiles, on);
  mq_cache_set_enabled(app->events, on);
  mq_cache_set_enabled(app->event_pages, on);
  mq_cache_set_enabled(app->sale_events, on);
}

mq_code_t mq_app_open(const mq_config_t *cfg, mq_app_t **out, mq_error_t *err) {
  host_t *h = mq_xcalloc(1, sizeof *h);
  mq_app_t *app = &h->app;
  app->cfg = cfg;
  app->started_unix_ms = mq_now_unix_ms();
  atomic_store(&app->events_live, !cfg->kafka_brokers[0]);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  if (cfg->instance_id[0]) {
    snprintf(app->instance_id, sizeof app->instance_id, "%s", cfg->instance_id);
  } else {
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(app->instance_id, sizeof app->instance_id, "%.63s-%d", host, (int)getpid());
  }
  mq_password_set_params((uint32_t)cfg->argon2_iterations, (uint32_t)cfg->argon2_memory_kib, 1);
  mq_code_t rc = mq_store_open(cfg->mongo_uri, cfg->mongo_db, (uint32_t)cfg->mongo_pool_max, &app->store, err);
  if (rc == MQ_OK && cfg->jwt_keys[0])
    rc = mq_jwt_keys_parse(cfg->jwt_keys, cfg->jwt_issuer, cfg->jwt_audience, &app->jwt, err);
  mq_httpc_global_init(); /* before any worker thread exists */
  caches_new(app, cfg);
  app->health = mq_health_create();
  for (size_t i = 0; i < N_MODULES && rc == MQ_OK; i++) {
    h->n_open = i + 1; /* a failed open is closed too: close accepts a partial open */
    if (modules[i]->open) rc = modules[i]->open(app, err);
  }
  if (rc == MQ_OK) {
    char client_id[128];
    snprintf(client_id, sizeof client_id, "marquee-server-%s", app->instance_id);
    rc = mq_relay_create(cfg, app->store, client_id, &h->relay, err);
  }
  if (rc == MQ_OK) {
    for (size_t m = 0; m < N_MODULES; m++)
      for (size_t i = 0; i < modules[m]->n_indexes; i++) {
        const mq_index_set_t *set = &modules[m]->indexes[i];
        for (size_t k = 0; k < *set->n; k++)
          if (!strcmp(set->specs[k].keys_json, MQ_OUTBOX_INDEX_KEYS))
            mq_relay_watch(h->relay, set->specs[k].collection);
      }
  }
  if (rc != MQ_OK) {
    mq_app_close(app);
    return rc;
  }
  *out = app;
  return MQ_OK;
}

mq_code_t mq_app_register(mq_app_t *app, mq_server_t *srv, mq_error_t *err) {
  app->srv = srv;
  for (size_t m = 0; m < N_MODULES; m++)
    for (size_t i = 0; i < modules[m]->n_services; i++) {
      const mq_service_row_t *row = &modules[m]->services[i];
      if (row->enabled && !row->enabled(app->cfg)) continue;
      if (row->reg(app, srv) != 0) return mq_error_set(err, MQ_INTERNAL, NULL, "cannot register %s", row->name);
      mq_health_add_service(app->health, row->name);
    }
  if (!g_reflection && mq_reflection_init(&g_reflection, err) != MQ_OK) return err->code;
  if (mq_reflection_register(srv, g_reflection) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot register server reflection");
  return MQ_OK;
}

void mq_app_routes(mq_app_t *app, mq_http_t *http) {
  for (size_t m = 0; m < N_MODULES; m++)
    if (modules[m]->routes) modules[m]->routes(app, http);
}

/* Every module's indexes, idempotently; false while any is missing. */
static bool ensure_indexes(mq_app_t *app) {
  mq_error_t err;
  for (size_t m = 0; m < N_MODULES; m++)
    for (size_t i = 0; i < modules[m]->n_indexes; i++) {
      const mq_index_set_t *set = &modules[m]->indexes[i];
      if (mq_store_ensure_indexes(app->store, set->specs, *set->n, &err) != MQ_OK) return false;
    }
  if (mq_store_ensure_indexes(app->store, mq_outbox_indexes, mq_outbox_n_indexes, &err) != MQ_OK) return false;
  return true;
}

static void probe_once(host_t *h) {
  mq_app_t *app = &h->app;
  mq_error_t err;
  bool up = mq_store_ping(app->store, &err) == MQ_OK;
  if (up != mq_health_store_up(app->health))
    mq_log(up ? MQ_LOG_INFO : MQ_LOG_WARN, up ? "store.up" : "store.down",
           up ? "MongoDB answers" : "MongoDB does not answer; calls that need it fail UNAVAILABLE");
  if (up && !atomic_load(&app->indexes_ready)) {
    if (ensure_indexes(app)) {
      atomic_store(&app->indexes_ready, true);
      mq_log(MQ_LOG_INFO, "store.indexes", "indexes ready");
    } else {
      up = false; /* not ready until the indexes exist */
    }
  }
  mq_health_set_store(app->health, up);
  mq_health_set_bus(app->health, mq_relay_kafka_up(h->relay));
  for (size_t m = 0; m < N_MODULES; m++)
    if (modules[m]->tick) modules[m]->tick(app);
}

static void *probe_main(void *arg) {
  host_t *h = arg;
  pthread_mutex_lock(&h->mu);
  while (!h->stop) {
    pthread_mutex_unlock(&h->mu);
    probe_once(h);
    pthread_mutex_lock(&h->mu);
    struct timespec ts = mq_time_abs_after(h->app.cfg->health_interval_ms);
    if (!h->stop) pthread_cond_timedwait(&h->cv, &h->mu, &ts);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void on_live(void *arg, bool live) {
  mq_app_t *app = arg;
  atomic_store(&app->events_live, live);
  caches_enabled(app, live);
}

/* Other instances' writes (and our own, again), to every module. */
static void on_event(void *arg, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  mq_app_t *app = arg;
  for (size_t m = 0; m < N_MODULES; m++)
    if (modules[m]->on_event) modules[m]->on_event(app, topic, ev);
}

mq_code_t mq_app_start(mq_app_t *app, mq_error_t *err) {
  host_t *h = host_of(app);
  probe_once(h); /* know the store's state before the first call */
  if (pthread_create(&h->probe, NULL, probe_main, h) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the probe thread");
  pthread_setname_np(h->probe, "mq-probe");
  h->probe_running = true;
  /* no caching until other instances' writes can be heard */
  if (app->cfg->kafka_brokers[0]) caches_enabled(app, false);
  for (size_t m = 0; m < N_MODULES; m++) {
    mq_code_t rc = modules[m]->start ? modules[m]->start(app, err) : MQ_OK;
    if (rc != MQ_OK) return rc;
  }
  if (app->cfg->kafka_brokers[0]) { /* caches, discovery, live availability */
    static const char *const topics[] = {"marquee.users", "marquee.events", "marquee.bookings", "marquee.payments",
                                         NULL};
    h->invalidator = mq_invalidator_start(app->cfg, app->instance_id, topics, on_event, on_live, app);
  }
  return mq_relay_start(h->relay, err);
}

void mq_app_close(mq_app_t *app) {
  if (!app) return;
  host_t *h = host_of(app);
  if (h->probe_running) {
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->probe, NULL);
  }
  mq_invalidator_halt(h->invalidator); /* no more on_event into the modules */
  atomic_store(&app->events_live, false);
  for (size_t m = h->n_open; m-- > 0;)
    if (modules[m]->stop) modules[m]->stop(app);
  for (size_t m = h->n_open; m-- > 0;)
    if (modules[m]->close) modules[m]->close(app);
  mq_invalidator_stop(h->invalidator);
  mq_relay_destroy(h->relay);
  mq_health_destroy(app->health);
  mq_jwt_keys_free(app->jwt);
  mq_cache_free(app->profiles);
  mq_cache_free(app->events);
  mq_cache_free(app->event_pages);
  mq_cache_free(app->sale_events);
  mq_store_close(app->store);
  if (g_reflection) {
    mq_reflection_free(g_reflection);
    g_reflection = NULL;
  }
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  free(h);
}
