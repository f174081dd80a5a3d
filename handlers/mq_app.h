/*
 * mq_app.h — the application context every handler reaches through
 * mq_call_app(call): configuration, the store, health, the token keys, the
 * shared caches, and each domain module's own state.
 *
 * Who fills it: server/mq_app.c opens the platform parts (store, keys,
 * caches, health), then walks the module table (handlers/mq_module.h), whose
 * hooks open and close their own fields (oauth, discovery, bookings, …).
 * Handlers read it; they never start or stop anything in it.
 *
 * Invariants:
 * 1. Every pointer field is set before the server accepts its first call
 *    and stays valid until the last call has ended (modules close after the
 *    server has drained), except `discovery`, which a module may leave NULL
 *    when disabled.
 * 2. `indexes_ready` and `events_live` only go from false to true, except
 *    `events_live`, which follows the invalidator (Kafka) when it loses and
 *    regains its partitions; readers treat both as hints.
 * 3. Nothing here includes server/: what the transport offers a handler is
 *    declared in handlers/mq_call.h and handlers/mq_route.h.
 */
#ifndef MQ_APP_H
#define MQ_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mq_config.h"
#include "handlers/mq_call.h"
#include "lib/mq_cache.h"
#include "lib/mq_health.h"
#include "lib/mq_jwt.h"
#include "lib/mq_seal.h"
#include "store/mq_store.h"

typedef struct mq_health_service mq_health_service_t;
typedef struct mq_oauth mq_oauth_t; /* handlers/identity/oauth.c: the configured sign-in providers */

typedef struct mq_app {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_health_t *health;
  mq_jwt_keys_t *jwt;             /* NULL when MARQUEE_JWT_KEYS is empty */
  mq_oauth_t *oauth;              /* identity module; never NULL once open (may hold no providers) */
  mq_seal_keys_t *notify_keys;    /* identity module: seals link tokens in events; NULL if none configured */
  mq_cache_t *profiles;           /* packed User messages by "u:<id>"; NULL if MARQUEE_CACHE_TTL_MS=0 */
  mq_cache_t *events;             /* public views of events by "e:<id>"; NULL if caching is off */
  mq_cache_t *event_pages;        /* public ListEvents pages by request; emptied by any catalog change */
  mq_cache_t *sale_events;        /* full stored events by "e:<id>" for CreateHold (TTL <= 2 s); NULL if off */
  struct mq_discovery *discovery; /* catalog module: public ListEvents index (catalog/discovery.h); NULL if disabled */
  struct mq_bookings *bookings;   /* bookings module: capacity hints, ticket keys, hold sweeper (bookings/bookings.h) */
  struct mq_payments *payments;   /* payments module: gateways, breakers, routes (payments/payments.h) */
  struct mq_fx *fx;               /* payments module: exchange rates for display prices (lib/mq_fx.h); may hold none */
  struct mq_search_index *search; /* search module: this host's index, read-only (store/search); NULL: no search */
  struct mq_live *live;           /* analytics module: live on-sale counters (analytics/live.h); NULL without Kafka */
  struct mq_netlist *webhook_nets;     /* notifications module: nets webhook URLs may point at (lib/mq_outbound.h) */
  mq_health_service_t *health_service; /* system module: grpc.health.v1 watchers */
  /* payments module: refunds what was paid for a cancelled booking, all that
   * remains (idempotent; MQ_OK when nothing was paid or all is refunded; a
   * transient failure leaves the cancellation open for the sweeper). NULL
   * without the payments module. Bookings calls it when it finishes a
   * cancellation, so no module includes the other both ways. */
  mq_code_t (*refund_booking)(struct mq_app *app, const char *booking_id, const char *reason, mq_error_t *err);
  /* analytics module: a page view of a public event, produced straight to
   * Kafka (never blocks, may drop). NULL until the module started, and
   * without Kafka. Called from any worker or the queue thread. */
  void (*event_viewed)(struct mq_app *app, const char *event_id);
  mq_server_t *srv; /* set before the modules register their services */
  char instance_id[96];
  int64_t started_unix_ms;
  _Atomic bool indexes_ready; /* every module's indexes exist (the probe created them) */
  _Atomic bool events_live;   /* other instances' writes can be heard (or there is no Kafka) */
  int64_t identity_swept_ms;  /* identity module's tick: its last sweep (probe thread only) */
} mq_app_t;

/* MongoDB answered the last probe and every index exists. */
static inline bool mq_app_store_ready(mq_app_t *app) {
  return atomic_load(&app->indexes_ready) && mq_health_store_up(app->health);
}

#endif
