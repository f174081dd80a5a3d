/*
 * mq_app.c — the service table and the application's life cycle (see
 * mq_app.h). To add a service: write handlers/<name>.c exporting
 * <name>_register(app, srv), add its row to `services` below, and add its
 * repositories' index tables to `indexes`.
 */
#include "mq_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account_tokens_store.h"
#include "auth_attempts_store.h"
#include "bookings.h"
#include "bookings_store.h"
#include "capacity.h"
#include "categories_store.h"
#include "discovery.h"
#include "events_store.h"
#include "holds_store.h"
#include "media_store.h"
#include "mq_bson.h"
#include "mq_httpc.h"
#include "mq_log.h"
#include "mq_password.h"
#include "notes_store.h"
#include "oauth_store.h"
#include "orgs_store.h"
#include "reflection.h"
#include "series_store.h"
#include "sessions_store.h"
#include "users_store.h"
#include "venues_store.h"
#include "waitlist_store.h"

typedef struct {
  const char *name;
  int (*reg)(mq_app_t *app, mq_server_t *srv);
  bool (*enabled)(const mq_config_t *cfg);
} service_row_t;

static bool always(const mq_config_t *cfg) {
  (void)cfg;
  return true;
}
static bool diagnostics_on(const mq_config_t *cfg) {
  return cfg->diagnostics;
}

/* Every gRPC service of marquee-server. Health and reflection are last so
 * they can list the others. */
static const service_row_t services[] = {
    {"marquee.system.v1.SystemService", system_service_register, always},
    {"marquee.system.v1.DiagnosticsService", diagnostics_service_register, diagnostics_on},
    {"marquee.identity.v1.AccountService", account_service_register, always},
    {"marquee.identity.v1.AdminService", admin_service_register, always},
    {"marquee.identity.v1.OrganizationService", organization_service_register, always},
    {"marquee.identity.v1.OAuthService", oauth_service_register, always},
    {"marquee.catalog.v1.VenueService", venue_service_register, always},
    {"marquee.catalog.v1.EventService", event_service_register, always},
    {"marquee.catalog.v1.CategoryService", category_service_register, always},
    {"marquee.catalog.v1.SeriesService", series_service_register, always},
    {"marquee.catalog.v1.MediaService", media_service_register, always},
    {"marquee.bookings.v1.BookingService", booking_service_register, always},
    {"marquee.bookings.v1.TicketService", ticket_service_register, always},
    {"marquee.bookings.v1.CheckInService", checkin_service_register, always},
    {"marquee.bookings.v1.AvailabilityService", availability_service_register, always},
    {"grpc.health.v1.Health", health_service_register, always},
};

/* Every repository's indexes, created at start-up once MongoDB answers. */
static const struct {
  const mq_index_spec_t *specs;
  const size_t *n;
} indexes[] = {
    {mq_notes_indexes, &mq_notes_n_indexes},       {mq_users_indexes, &mq_users_n_indexes},
    {mq_sessions_indexes, &mq_sessions_n_indexes}, {mq_account_tokens_indexes, &mq_account_tokens_n_indexes},
    {mq_attempts_indexes, &mq_attempts_n_indexes}, {mq_orgs_indexes, &mq_orgs_n_indexes},
    {mq_oauth_indexes, &mq_oauth_n_indexes},       {mq_categories_indexes, &mq_categories_n_indexes},
    {mq_venues_indexes, &mq_venues_n_indexes},     {mq_events_indexes, &mq_events_n_indexes},
    {mq_media_indexes, &mq_media_n_indexes},       {mq_series_indexes, &mq_series_n_indexes},
    {mq_capacity_indexes, &mq_capacity_n_indexes}, {mq_holds_indexes, &mq_holds_n_indexes},
    {mq_bookings_indexes, &mq_bookings_n_indexes}, {mq_waitlist_indexes, &mq_waitlist_n_indexes},
    {mq_outbox_indexes, &mq_outbox_n_indexes},
};

static mq_reflection_t *g_reflection; /* one per process */

static void on_event(void *arg, const char *topic, const Marquee__Events__V1__Envelope *ev);

mq_code_t mq_app_open(const mq_config_t *cfg, mq_app_t **out, mq_error_t *err) {
  mq_app_t *app = calloc(1, sizeof *app);
  if (!app) abort();
  app->cfg = cfg;
  app->started_unix_ms = mq_now_unix_ms();
  pthread_mutex_init(&app->mu, NULL);
  pthread_cond_init(&app->cv, NULL);
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
  if (cfg->cache_ttl_ms > 0) {
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
  if (rc == MQ_OK) rc = mq_oauth_open(cfg, &app->oauth, err);
  if (rc == MQ_OK) rc = mq_bookings_open(app, err);
  if (rc == MQ_OK) {
    char client_id[128];
    snprintf(client_id, sizeof client_id, "marquee-server-%s", app->instance_id);
    rc = mq_relay_create(cfg, app->store, client_id, &app->relay, err);
  }
  if (rc == MQ_OK) {
    /* The relay watches every collection whose repository declares the
     * outbox index: one declaration, so no collection's events can be
     * forgotten. */
    for (size_t i = 0; i < sizeof indexes / sizeof *indexes; i++)
      for (size_t k = 0; k < *indexes[i].n; k++)
        if (!strcmp(indexes[i].specs[k].keys_json, MQ_OUTBOX_INDEX_KEYS))
          mq_relay_watch(app->relay, indexes[i].specs[k].collection);
    app->health = mq_health_create();
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
  for (size_t i = 0; i < sizeof services / sizeof *services; i++) {
    if (!services[i].enabled(app->cfg)) continue;
    if (services[i].reg(app, srv) != 0)
      return mq_error_set(err, MQ_INTERNAL, NULL, "cannot register %s", services[i].name);
    mq_health_add_service(app->health, services[i].name);
  }
  if (!g_reflection && mq_reflection_init(&g_reflection, err) != MQ_OK) return err->code;
  if (mq_reflection_register(srv, g_reflection) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot register server reflection");
  return MQ_OK;
}

static void probe_once(mq_app_t *app) {
  mq_error_t err;
  bool up = mq_store_ping(app->store, &err) == MQ_OK;
  if (up != mq_health_store_up(app->health))
    mq_log(up ? MQ_LOG_INFO : MQ_LOG_WARN, up ? "store.up" : "store.down",
           up ? "MongoDB answers" : "MongoDB does not answer; calls that need it fail UNAVAILABLE");
  if (up && !app->indexes_ready) {
    mq_code_t rc = MQ_OK;
    for (size_t i = 0; i < sizeof indexes / sizeof *indexes && rc == MQ_OK; i++)
      rc = mq_store_ensure_indexes(app->store, indexes[i].specs, *indexes[i].n, &err);
    if (rc == MQ_OK) {
      app->indexes_ready = true;
      mq_log(MQ_LOG_INFO, "store.indexes", "indexes ready");
    } else {
      up = false; /* not ready until the indexes exist */
    }
  }
  if (up && app->indexes_ready && mq_now_unix_ms() - app->last_sweep_ms > 60000) {
    app->last_sweep_ms = mq_now_unix_ms(); /* no TTL indexes (DESIGN.md §4): expire by sweeping */
    mq_attempts_sweep(app->store, app->last_sweep_ms - 86400000, &err);
    mq_oauth_flows_sweep(app->store, app->last_sweep_ms);
  }
  if (up && app->indexes_ready) media_sweep(app); /* abandoned uploads: every tick */
  mq_health_set_store(app->health, up);
  mq_health_set_bus(app->health, mq_relay_kafka_up(app->relay));
  health_service_tick(app);
}

static void *probe_main(void *arg) {
  mq_app_t *app = arg;
  pthread_mutex_lock(&app->mu);
  while (!app->stop) {
    pthread_mutex_unlock(&app->mu);
    probe_once(app);
    pthread_mutex_lock(&app->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = app->cfg->health_interval_ms;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    if (!app->stop) pthread_cond_timedwait(&app->cv, &app->mu, &ts);
  }
  pthread_mutex_unlock(&app->mu);
  return NULL;
}

static void caches_enabled(mq_app_t *app, bool on) {
  if (!app->profiles) return; /* all three exist or none (MARQUEE_CACHE_TTL_MS=0) */
  mq_cache_set_enabled(app->profiles, on);
  mq_cache_set_enabled(app->events, on);
  mq_cache_set_enabled(app->event_pages, on);
  mq_cache_set_enabled(app->sale_events, on);
}

static void on_live(void *arg, bool live) {
  caches_enabled(arg, live);
}

/* The discovery index loads once other instances' writes can be heard. */
static bool discovery_gate(void *arg) {
  mq_app_t *app = arg;
  return !app->cfg->kafka_brokers[0] || mq_invalidator_live(app->invalidator);
}

mq_code_t mq_app_start(mq_app_t *app, mq_error_t *err) {
  probe_once(app); /* know the store's state before the first call */
  if (pthread_create(&app->probe, NULL, probe_main, app) != 0)
    return mq_error_set(err, MQ_INTERNAL, NULL, "cannot start the probe thread");
  pthread_setname_np(app->probe, "mq-probe");
  app->probe_running = true;
  if (app->cfg->discovery_index) app->discovery = mq_discovery_new(); /* before events can reach it */
  if (app->cfg->kafka_brokers[0]) {                                   /* caches, discovery, live availability */
    /* no caching until other instances' writes can be heard */
    caches_enabled(app, false);
    static const char *const topics[] = {"marquee.users", "marquee.events", "marquee.bookings", NULL};
    app->invalidator = mq_invalidator_start(app->cfg, app->instance_id, topics, on_event, on_live, app);
  }
  if (app->discovery)
    mq_discovery_start(app->discovery, app->store, app->cfg->mongo_uri, app->cfg->mongo_db, discovery_gate, app);
  mq_code_t rc = mq_bookings_start(app, err);
  if (rc != MQ_OK) return rc;
  return mq_relay_start(app->relay, err);
}

void mq_app_events_written(mq_app_t *app) {
  mq_relay_kick(app->relay);
}

void mq_app_user_changed(mq_app_t *app, const char *user_id) {
  if (!app->profiles || !user_id) return;
  char key[80];
  snprintf(key, sizeof key, "u:%s", user_id);
  mq_cache_invalidate(app->profiles, key);
}

/* The caches a catalog change can touch: the aggregate's public view and
 * every cached page. */
static void catalog_caches_changed(mq_app_t *app, const char *id) {
  if (!app->events || !id) return;
  char key[80];
  snprintf(key, sizeof key, "e:%s", id);
  mq_cache_invalidate(app->events, key);
  mq_cache_invalidate(app->sale_events, key);
  mq_cache_clear(app->event_pages); /* any page may hold it, or now should */
}

void mq_app_event_changed(mq_app_t *app, const char *event_id) {
  if (!event_id) return;
  /* the index first: a page cached after this clear is built from it */
  mq_discovery_refresh(app->discovery, app->store, event_id);
  catalog_caches_changed(app, event_id);
}

/* Other instances' writes (and our own, again): every event of a user's
 * aggregate invalidates that user's cached profile; every catalog event its
 * event's public view and all cached pages. */
static void on_event(void *arg, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  mq_app_t *app = arg;
  if (!strcmp(topic, "marquee.users")) mq_app_user_changed(app, ev->aggregate_id);
  if (!strcmp(topic, "marquee.events")) {
    /* only an event's own changes can change its discovery entry: other
     * aggregates (venues, images, series, categories) do not re-read it */
    const char *t = ev->type ? ev->type : "";
    if (!strncmp(t, "catalog.Event", 13) || !strncmp(t, "catalog.TicketType", 18)) {
      mq_app_event_changed(app, ev->aggregate_id);
      mq_availability_changed(app, ev->aggregate_id); /* capacities, sales windows */
    } else {
      catalog_caches_changed(app, ev->aggregate_id);
    }
  }
  if (!strcmp(topic, "marquee.bookings")) {
    const char *event_id = NULL; /* the event whose units moved */
    switch (ev->payload_case) {
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED:
        event_id = ev->hold_created->event_id;
        mq_bookings_slots_taken(app, ev->hold_created->slots, ev->hold_created->n_slots);
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_EXPIRED:
        event_id = ev->hold_expired->event_id;
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED:
        event_id = ev->hold_released->event_id;
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED:
        event_id = ev->booking_cancelled->event_id;
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_TYPE_MOVED:
        event_id = ev->ticket_type_moved->event_id;
        break;
      default:
        break;
    }
    mq_availability_changed(app, event_id);
  }
}

void mq_app_close(mq_app_t *app) {
  if (!app) return;
  if (app->probe_running) {
    pthread_mutex_lock(&app->mu);
    app->stop = true;
    pthread_cond_broadcast(&app->cv);
    pthread_mutex_unlock(&app->mu);
    pthread_join(app->probe, NULL);
  }
  /* no more callbacks into bookings or discovery, but the discovery
   * thread's gate may still ask whether the invalidator is live */
  mq_invalidator_halt(app->invalidator);
  mq_bookings_close(app);
  mq_discovery_free(app->discovery);
  mq_invalidator_stop(app->invalidator);
  mq_relay_destroy(app->relay);
  health_service_free(app);
  mq_health_destroy(app->health);
  mq_jwt_keys_free(app->jwt);
  mq_oauth_free(app->oauth);
  mq_cache_free(app->profiles);
  mq_cache_free(app->events);
  mq_cache_free(app->event_pages);
  mq_cache_free(app->sale_events);
  mq_store_close(app->store);
  if (g_reflection) {
    mq_reflection_free(g_reflection);
    g_reflection = NULL;
  }
  pthread_mutex_destroy(&app->mu);
  pthread_cond_destroy(&app->cv);
  free(app);
}
