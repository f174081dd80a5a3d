/*
 * indexer.c — marquee-indexer, the consumer that keeps this host's search
 * index (store/search/search_index.h) from the domain events.
 *
 * Per event (topics marquee.events and marquee.bookings; one consumer group
 * per host, marquee-indexer-<host>, so every host's index sees every event):
 *   catalog.Event* and TicketTypeChanged  the event is read from the store as
 *       it is now and put into the index if it is published, public and not
 *       over, else removed — so the order and repetition of events never
 *       matter, only the last state;
 *   catalog.VenueChanged / CategoryChanged  every indexed event of that
 *       venue or category is read again (and the category labels reloaded);
 *   bookings.BookingConfirmed / BookingCancelled  the event's tickets sold
 *       (popularity), per booking id, so a redelivery counts once.
 * Everything one message changes commits with its next offset in one SQLite
 * transaction, and on (re)assignment each partition resumes at the offset
 * the file records: a crash or SIGKILL at any point loses nothing and
 * applies nothing twice. When a poll finds the partitions read to their
 * high watermarks, the index is marked fresh as of then (minus the broker's
 * fetch wait), which is what servers report as its staleness.
 *
 * `marquee-indexer --rebuild` builds a new generation of the index from the
 * beginning of the log beside the current one, makes it current once it has
 * caught up (the index's link is replaced atomically; servers move to it
 * within a second), and goes on as the indexer. Only one indexer runs per
 * index (an flock on <index>.lock).
 *
 * Invariants: the index is written only here; a store outage is transient
 * (the event is retried, nothing is half-written: the transaction rolls
 * back); no personal data enters the index (events, venues, organizations
 * and ticket counts only).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "consumers/mq_consumer.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "store/catalog/categories_store.h"
#include "store/catalog/events_store.h"
#include "store/catalog/venues_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"
#include "store/search/search_index.h"

extern char **environ;

#define FETCH_WAIT_MS 500 /* librdkafka's fetch.wait.max.ms: how old a watermark can be */

typedef struct {
  mq_config_t *cfg;
  mq_store_t *store;
  mq_search_index_t *ix;
  /* the category tree, reloaded on CategoryChanged */
  mq_arena_t *cat_arena; /* owns cats */
  mq_category_t *cats;
  size_t n_cats;
  bool cats_loaded;
  int64_t fresh_written_ms;
  bool rebuilding; /* --rebuild: publish the new generation when first caught up */
} indexer_t;

static const mq_category_t *cat_find(indexer_t *x, const char *id) {
  for (size_t i = 0; id && *id && i < x->n_cats; i++)
    if (!strcmp(x->cats[i].id, id)) return &x->cats[i];
  return NULL;
}

static const char *cat_name(const mq_category_t *c, const char *locale) {
  for (size_t i = 0; i < c->n_names; i++)
    if (!strcmp(c->names[i].locale, locale)) return c->names[i].name;
  return c->n_names ? c->names[0].name : c->slug;
}

static mq_code_t cats_load(indexer_t *x, mq_error_t *err) {
  /* a new arena on the heap (an arena must not be moved once used), then the old one goes */
  mq_arena_t *a = mq_xmalloc(sizeof *a);
  mq_arena_init(a);
  mq_category_t *cats;
  size_t n;
  mq_code_t rc = mq_categories_list(x->store, true, a, &cats, &n, err);
  if (rc != MQ_OK) {
    mq_arena_release(a);
    free(a);
    return rc;
  }
  if (x->cat_arena) mq_arena_release(x->cat_arena);
  free(x->cat_arena);
  x->cat_arena = a;
  x->cats = cats;
  x->n_cats = n;
  x->cats_loaded = true;
  return MQ_OK;
}

/* The document for an event, or *skip when it must not be searchable. */
static mq_code_t build_doc(indexer_t *x, const Marquee__Catalog__V1__Event *e, mq_arena_t *a, mq_search_doc_t *d,
                           bool *skip, mq_error_t *err) {
  int64_t now = mq_now_unix_ms();
  int64_t ends = e->ends_at ? mq_pb_timestamp_ms(e->ends_at) : e->starts_at ? mq_pb_timestamp_ms(e->starts_at) : 0;
  *skip = e->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED ||
          e->visibility == MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_UNLISTED || ends <= now;
  if (*skip) return MQ_OK;
  memset(d, 0, sizeof *d);
  d->event_id = e->event_id;
  d->organization_id = e->organization_id;
  d->title = e->title;
  d->description = e->description_md;
  d->tags = (const char *const *)e->tags;
  d->n_tags = e->n_tags;
  d->language = e->language;
  d->currency = e->currency;
  d->time_zone = e->time_zone;
  d->series_id = e->series_id;
  d->cover_image_id = e->cover_image_id;
  d->starts_ms = e->starts_at ? mq_pb_timestamp_ms(e->starts_at) : 0;
  d->ends_ms = ends;
  d->published_ms = e->published_at ? mq_pb_timestamp_ms(e->published_at) : 0;
  d->version = e->version;
  d->city = e->city;
  d->country = e->country;
  d->online = !(e->venue_id && *e->venue_id);
  mq_code_t rc;
  mq_org_t org;
  if (e->organization_id && *e->organization_id) {
    rc = mq_orgs_get(x->store, e->organization_id, a, &org, err);
    if (rc == MQ_OK)
      d->organization_name = org.name;
    else if (rc != MQ_NOT_FOUND)
      return rc;
  }
  if (!d->online) {
    mq_venue_t v;
    rc = mq_venues_get(x->store, e->venue_id, a, &v, err);
    if (rc == MQ_OK) {
      d->venue_id = v.id;
      d->venue_name = v.name;
      d->city = v.city;
      d->country = v.country;
      d->has_geo = !(v.latitude == 0 && v.longitude == 0);
      d->latitude = v.latitude;
      d->longitude = v.longitude;
    } else if (rc != MQ_NOT_FOUND) {
      return rc;
    }
  }
  /* the category chain: ids from the root, slugs, every name in every locale */
  if (!x->cats_loaded && (rc = cats_load(x, err)) != MQ_OK) return rc;
  const mq_category_t *chain[8] = {0};
  size_t depth = 0;
  for (const mq_category_t *c = cat_find(x, e->category_id); c && depth < 8; c = cat_find(x, c->parent_id))
    chain[depth++] = c;
  char anc[8 * 40 + 2] = "/", path[8 * 64] = "", names[4096] = "";
  for (size_t i = depth; i-- > 0;) {
    const mq_category_t *c = chain[i];
    size_t l = strlen(anc);
    snprintf(anc + l, sizeof anc - l, "%s/", c->id);
    l = strlen(path);
    snprintf(path + l, sizeof path - l, "%s%s", l ? "/" : "", c->slug);
    for (size_t k = 0; k < c->n_names; k++) {
      l = strlen(names);
      snprintf(names + l, sizeof names - l, "%s%s", l ? " " : "", c->names[k].name);
    }
  }
  d->category_id = e->category_id;
  d->category_root = depth ? chain[depth - 1]->id : e->category_id;
  d->category_ancestors = depth ? mq_arena_strdup(a, anc) : "";
  d->category_path = mq_arena_strdup(a, path);
  d->category_names = mq_arena_strdup(a, names);
  /* prices over the visible ticket types */
  bool any = false, all_free = true;
  for (size_t i = 0; i < e->n_ticket_types; i++) {
    const Marquee__Catalog__V1__TicketType *t = e->ticket_types[i];
    if (t->hidden) continue;
    int64_t p = t->price ? t->price->amount_minor : 0;
    if (!any || p < d->min_price_minor) d->min_price_minor = p;
    if (!any || p > d->max_price_minor) d->max_price_minor = p;
    if (p) all_free = false;
    any = true;
  }
  d->free = any && all_free;
  return MQ_OK;
}

/* Reads `ids` from the store and applies them to the index (inside the
 * caller's transaction). */
static mq_code_t reindex(indexer_t *x, const char *const *ids, size_t n, mq_arena_t *a, mq_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    Marquee__Catalog__V1__Event *e = NULL;
    mq_code_t rc = mq_events_get(x->store, ids[i], a, &e, err);
    bool skip = true;
    mq_search_doc_t d;
    if (rc == MQ_OK)
      rc = build_doc(x, e, a, &d, &skip, err);
    else if (rc == MQ_NOT_FOUND)
      rc = MQ_OK;
    if (rc != MQ_OK) return rc;
    if (skip)
      rc = mq_search_remove(x->ix, ids[i], NULL, err);
    else
      rc = mq_search_put(x->ix, &d, err);
    if (rc != MQ_OK) return rc;
  }
  return MQ_OK;
}

static mq_code_t labels(indexer_t *x, mq_error_t *err) {
  for (size_t i = 0; i < x->n_cats; i++) {
    if (x->cats[i].parent_id && *x->cats[i].parent_id) continue;
    mq_code_t rc = mq_search_put_category(x->ix, x->cats[i].id, cat_name(&x->cats[i], "en"), err);
    if (rc != MQ_OK) return rc;
  }
  return MQ_OK;
}

static int64_t units_of(Marquee__Events__V1__BookedUnits **u, size_t n) {
  int64_t q = 0;
  for (size_t i = 0; i < n; i++) q += u[i]->quantity;
  return q;
}

static mq_code_t apply(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                       mq_error_t *err) {
  indexer_t *x = ctx;
  mq_arena_t a;
  mq_arena_init(&a);
  const char *type = ev->type ? ev->type : "";
  const char **ids = NULL;
  size_t n = 0;
  mq_code_t rc = MQ_OK;
  bool cats_changed = false;
  /* reads first (the store), then one short write transaction */
  if (!strcmp(type, "catalog.VenueChanged") && ev->venue_changed) {
    rc = mq_search_events_of(x->ix, "venue_id", ev->venue_changed->venue_id, &a, &ids, &n, err);
  } else if (!strcmp(type, "catalog.CategoryChanged") && ev->category_changed) {
    if ((rc = cats_load(x, err)) == MQ_OK)
      rc = mq_search_events_of(x->ix, "category_ancestors", ev->category_changed->category_id, &a, &ids, &n, err);
    cats_changed = true;
  } else if (!strncmp(type, "catalog.Event", 13) || !strcmp(type, "catalog.TicketTypeChanged")) {
    ids = mq_arena_alloc(&a, sizeof *ids);
    ids[0] = ev->aggregate_id;
    n = ev->aggregate_id && *ev->aggregate_id ? 1 : 0;
  }
  if (rc == MQ_OK) rc = mq_search_begin(x->ix, err);
  if (rc != MQ_OK) {
    mq_arena_release(&a);
    return rc;
  }
  if (n) rc = reindex(x, ids, n, &a, err);
  if (rc == MQ_OK && cats_changed) rc = labels(x, err);
  if (rc == MQ_OK && !strcmp(type, "bookings.BookingConfirmed") && ev->booking_confirmed)
    rc = mq_search_sold(x->ix, ev->booking_confirmed->booking_id, ev->booking_confirmed->event_id,
                        units_of(ev->booking_confirmed->units, ev->booking_confirmed->n_units), err);
  if (rc == MQ_OK && !strcmp(type, "bookings.BookingCancelled") && ev->booking_cancelled)
    rc = mq_search_sold(x->ix, ev->booking_cancelled->booking_id, ev->booking_cancelled->event_id, 0, err);
  if (rc == MQ_OK)
    rc = mq_search_commit(x->ix, msg->topic, msg->partition, msg->offset + 1, err);
  else
    mq_search_rollback(x->ix);
  if (rc == MQ_OK)
    mq_log(MQ_LOG_DEBUG, "indexer.applied", "event %s (%s): %zu catalog events read", ev->event_id, type, n);
  mq_arena_release(&a);
  return rc;
}

static int64_t start_offset(void *ctx, const char *topic, int32_t partition) {
  indexer_t *x = ctx;
  mq_error_t err;
  int64_t next = -1;
  if (mq_search_offset(x->ix, topic, partition, &next, &err) != MQ_OK) {
    /* never resume from the group's offsets: that could skip what the file lacks */
    mq_log(MQ_LOG_ERROR, "indexer.offset", "%s[%d]: %s; reading it from the beginning", topic, (int)partition,
           err.message);
    return -1;
  }
  return next;
}

static void idle(void *ctx, bool caught_up) {
  indexer_t *x = ctx;
  int64_t now = mq_now_unix_ms();
  if (!caught_up || now - x->fresh_written_ms < 1000) return;
  mq_error_t err;
  if (mq_search_mark_fresh(x->ix, now - FETCH_WAIT_MS, &err) != MQ_OK) {
    mq_log(MQ_LOG_WARN, "indexer.fresh", "%s", err.message);
    return;
  }
  x->fresh_written_ms = now;
  /* the words corrections choose from, at most every 10 s while events change */
  if (mq_search_refresh_vocab(x->ix, now, 10000, &err) != MQ_OK)
    mq_log(MQ_LOG_WARN, "indexer.vocab", "%s", err.message);
  if (x->rebuilding) { /* --rebuild: the new generation has caught up; make it current */
    if (mq_search_publish(x->ix, &err) != MQ_OK) {
      mq_log(MQ_LOG_ERROR, "indexer.rebuild", "%s; retrying", err.message);
      return;
    }
    int64_t count = 0;
    mq_search_count(x->ix, &count, &err);
    mq_log(MQ_LOG_INFO, "indexer.rebuilt", "the rebuilt index (%lld events) is now current", (long long)count);
    printf("REBUILT events=%lld\n", (long long)count);
    fflush(stdout);
    x->rebuilding = false;
  }
}

static const mq_event_route_t routes[] = {
    {"catalog.EventCreated", apply},      {"catalog.EventUpdated", apply},      {"catalog.EventPublished", apply},
    {"catalog.EventCancelled", apply},    {"catalog.EventCompleted", apply},    {"catalog.EventDeleted", apply},
    {"catalog.TicketTypeChanged", apply}, {"catalog.VenueChanged", apply},      {"catalog.CategoryChanged", apply},
    {"bookings.BookingConfirmed", apply}, {"bookings.BookingCancelled", apply},
};

static const char *const topics[] = {"marquee.events", "marquee.bookings", NULL};

int main(int argc, char **argv) {
  bool rebuild = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--version")) {
      printf("marquee-indexer %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
      return 0;
    }
    if (!strcmp(argv[i], "--rebuild")) {
      rebuild = true;
    } else {
      fprintf(stderr, "usage: marquee-indexer [--rebuild]\n");
      return 2;
    }
  }
  mq_config_t cfg;
  mq_error_t err;
  if (!mq_config_start("marquee-indexer", &cfg, environ)) return 2;
  int rc = 1, lock_fd = -1;
  indexer_t x = {.cfg = &cfg};
  char lock_path[1100];
  if (!cfg.search_index[0]) {
    mq_log(MQ_LOG_ERROR, "indexer.start", "MARQUEE_SEARCH_INDEX is empty: nothing to index into");
    goto cleanup;
  }
  snprintf(lock_path, sizeof lock_path, "%s.lock", cfg.search_index);
  lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    mq_log(MQ_LOG_ERROR, "indexer.start", "another marquee-indexer holds %s: one indexer per index file", lock_path);
    goto cleanup;
  }
  if (!cfg.consumer_group[0]) { /* one group per host: each host's index reads every partition */
    char host[128] = "local";
    gethostname(host, sizeof host - 1);
    free(cfg.consumer_group);
    size_t len = strlen(host) + 32;
    cfg.consumer_group = mq_xmalloc(len);
    snprintf(cfg.consumer_group, len, "marquee-indexer-%s", host);
  }
  x.rebuilding = rebuild;
  if ((rebuild ? mq_search_open_rebuild : mq_search_open_writer)(cfg.search_index, &x.ix, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "indexer.start", "%s", err.message);
    goto cleanup;
  }
  if (mq_store_open(cfg.mongo_uri, cfg.mongo_db, (uint32_t)cfg.mongo_pool_max, &x.store, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "indexer.start", "%s: %s", err.field, err.message);
    goto cleanup;
  }
  mq_log(MQ_LOG_INFO, "indexer.start", "%s %s",
         rebuild ? "rebuilding from the beginning of the log, beside" : "indexing into", cfg.search_index);
  mq_consumer_opts_t o = {.cfg = &cfg,
                          .name = "indexer",
                          .topics = topics,
                          .routes = routes,
                          .n_routes = sizeof routes / sizeof *routes,
                          .ctx = &x,
                          .store = x.store,
                          .dedupe = false, /* the index's own offsets and per-booking rows are the dedupe */
                          .start_offset = start_offset,
                          .idle = idle};
  rc = mq_consumer_run(&o);
cleanup:
  mq_search_close(x.ix);
  mq_store_close(x.store);
  if (x.cat_arena) mq_arena_release(x.cat_arena);
  free(x.cat_arena);
  if (lock_fd >= 0) close(lock_fd);
  mq_config_free(&cfg);
  mq_log_stop();
  return rc;
}
