/*
 * mq_app.h — the application context every handler reaches through
 * mq_call_app(call): configuration, the store, the outbox relay, health, and
 * the token keys. mq_app.c also holds THE table of services this server
 * serves (Redis/nginx style: one table says what exists).
 *
 * Start-up: mq_app_open (no network I/O; MongoDB and Kafka may be down) →
 * mq_app_register (every service of the table onto the server) →
 * mq_app_start (probe thread: pings MongoDB and reads Kafka state every
 * MARQUEE_HEALTH_INTERVAL_MS, creates indexes once MongoDB answers; the relay
 * thread) → … → mq_app_close.
 */
#ifndef MQ_APP_H
#define MQ_APP_H

#include <pthread.h>
#include <stdbool.h>

#include "mq_cache.h"
#include "mq_config.h"
#include "mq_health.h"
#include "mq_http.h"
#include "mq_invalidator.h"
#include "mq_jwt.h"
#include "mq_relay.h"
#include "mq_server.h"
#include "mq_store.h"

typedef struct mq_health_service mq_health_service_t;
typedef struct mq_oauth mq_oauth_t; /* handlers/oauth.c: the configured sign-in providers */

typedef struct mq_app {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_relay_t *relay;
  mq_health_t *health;
  mq_jwt_keys_t *jwt;             /* NULL when MARQUEE_JWT_KEYS is empty */
  mq_oauth_t *oauth;              /* never NULL after mq_app_open (may hold no providers) */
  mq_cache_t *profiles;           /* packed User messages by "u:<id>"; NULL if MARQUEE_CACHE_TTL_MS=0 */
  mq_cache_t *events;             /* public views of events by "e:<id>"; NULL if caching is off */
  mq_cache_t *event_pages;        /* public ListEvents pages by request; emptied by any catalog change */
  mq_cache_t *sale_events;        /* full stored events by "e:<id>" for CreateHold (TTL <= 2 s); NULL if off */
  mq_invalidator_t *invalidator;  /* other instances' writes → cache invalidations */
  struct mq_discovery *discovery; /* public ListEvents index (catalog/discovery.h); NULL if disabled */
  struct mq_bookings *bookings;   /* capacity hints, ticket keys, hold sweeper (bookings/bookings.h) */
  mq_server_t *srv;
  mq_health_service_t *health_service;
  char instance_id[96];
  int64_t started_unix_ms;
  /* probe thread */
  pthread_t probe;
  bool probe_running, stop, indexes_ready;
  int64_t last_sweep_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} mq_app_t;

mq_code_t mq_app_open(const mq_config_t *cfg, mq_app_t **out, mq_error_t *err);
/* Registers every enabled service of the table, health and reflection included. */
mq_code_t mq_app_register(mq_app_t *app, mq_server_t *srv, mq_error_t *err);
mq_code_t mq_app_start(mq_app_t *app, mq_error_t *err);
void mq_app_close(mq_app_t *app);

/* After a write that carried events: publish them now rather than at the
 * relay's next poll. */
void mq_app_events_written(mq_app_t *app);
/* After a change of a user document (here, or heard from another instance). */
void mq_app_user_changed(mq_app_t *app, const char *user_id);
/* After a change of an event (here, or heard from another instance). */
void mq_app_event_changed(mq_app_t *app, const char *event_id);

/* Registration functions, one per handler file. */
int system_service_register(mq_app_t *app, mq_server_t *srv);
int diagnostics_service_register(mq_app_t *app, mq_server_t *srv);
int account_service_register(mq_app_t *app, mq_server_t *srv);
int admin_service_register(mq_app_t *app, mq_server_t *srv);
int organization_service_register(mq_app_t *app, mq_server_t *srv);
int venue_service_register(mq_app_t *app, mq_server_t *srv);
int event_service_register(mq_app_t *app, mq_server_t *srv);
int category_service_register(mq_app_t *app, mq_server_t *srv);
int media_service_register(mq_app_t *app, mq_server_t *srv);
/* GET /media/{id} on the side HTTP port (before mq_http_start). */
void media_http_register(mq_app_t *app, mq_http_t *http);
/* Called by the probe thread after each probe: discards abandoned uploads. */
void media_sweep(mq_app_t *app);
int series_service_register(mq_app_t *app, mq_server_t *srv);
int oauth_service_register(mq_app_t *app, mq_server_t *srv);
/* Reads MARQUEE_OAUTH_PROVIDERS (INVALID_ARGUMENT naming it on a bad file). */
mq_code_t mq_oauth_open(const mq_config_t *cfg, mq_oauth_t **out, mq_error_t *err);
void mq_oauth_free(mq_oauth_t *o);
int booking_service_register(mq_app_t *app, mq_server_t *srv);
int ticket_service_register(mq_app_t *app, mq_server_t *srv);
int checkin_service_register(mq_app_t *app, mq_server_t *srv);
int availability_service_register(mq_app_t *app, mq_server_t *srv);
/* GET /tickets/{id}.png|.pdf on the side HTTP port (before mq_http_start). */
void tickets_http_register(mq_app_t *app, mq_http_t *http);
int health_service_register(mq_app_t *app, mq_server_t *srv);
/* Called by the probe thread after each probe (pushes changes to watchers). */
void health_service_tick(mq_app_t *app);
void health_service_free(mq_app_t *app);

#endif
