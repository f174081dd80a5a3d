/*
 * module.c — the catalog module: venues, events, categories, series and
 * media (one file per service beside this one), the repositories they own,
 * and what the catalog does on its own: the public ListEvents index
 * (discovery.c) loaded once other instances' writes can be heard, the
 * media routes of the side HTTP port, the sweep of abandoned uploads, and
 * keeping the index and the caches true when the catalog changes anywhere
 * (marquee.events). See handlers/mq_module.h.
 */
#include <stdio.h>
#include <string.h>

#include "handlers/catalog/catalog.h"
#include "handlers/catalog/discovery.h"
#include "handlers/mq_module.h"
#include "store/catalog/categories_store.h"
#include "store/catalog/events_store.h"
#include "store/catalog/media_store.h"
#include "store/catalog/series_store.h"
#include "store/catalog/venues_store.h"

void mq_catalog_caches_changed(mq_app_t *app, const char *id) {
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
  mq_catalog_caches_changed(app, event_id);
}

/* The index loads once other instances' writes can be heard. */
static bool discovery_gate(void *arg) {
  mq_app_t *app = arg;
  return atomic_load(&app->events_live);
}

static mq_code_t catalog_start(mq_app_t *app, mq_error_t *err) {
  (void)err;
  if (!app->cfg->discovery_index) return MQ_OK;
  app->discovery = mq_discovery_new();
  mq_discovery_start(app->discovery, app->store, app->cfg->mongo_uri, app->cfg->mongo_db, app->cfg->discovery_snapshot,
                     discovery_gate, app);
  return MQ_OK;
}

/* Only an event's own changes can change its discovery entry: other
 * aggregates (venues, images, series, categories) do not re-read it. */
static void catalog_on_event(mq_app_t *app, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  if (strcmp(topic, "marquee.events")) return;
  const char *t = ev->type ? ev->type : "";
  if (!strncmp(t, "catalog.Event", 13) || !strncmp(t, "catalog.TicketType", 18))
    mq_app_event_changed(app, ev->aggregate_id);
  else
    mq_catalog_caches_changed(app, ev->aggregate_id);
}

/* Abandoned uploads: every tick. */
static void catalog_tick(mq_app_t *app) {
  if (mq_app_store_ready(app)) media_sweep(app);
}

static void catalog_close(mq_app_t *app) {
  mq_discovery_free(app->discovery);
  app->discovery = NULL;
}

static const mq_service_row_t services[] = {
    {"marquee.catalog.v1.VenueService", venue_service_register, NULL},
    {"marquee.catalog.v1.EventService", event_service_register, NULL},
    {"marquee.catalog.v1.CategoryService", category_service_register, NULL},
    {"marquee.catalog.v1.SeriesService", series_service_register, NULL},
    {"marquee.catalog.v1.MediaService", media_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_categories_indexes, &mq_categories_n_indexes}, {mq_venues_indexes, &mq_venues_n_indexes},
    {mq_events_indexes, &mq_events_n_indexes},         {mq_media_indexes, &mq_media_n_indexes},
    {mq_series_indexes, &mq_series_n_indexes},
};

const mq_module_t mq_catalog_module = {
    .name = "catalog",
    MQ_MODULE_TABLES(services, indexes),
    .routes = media_http_register,
    .start = catalog_start,
    .tick = catalog_tick,
    .on_event = catalog_on_event,
    .close = catalog_close,
};
