/*
 * events_store.h — the catalog's events with their ticket types (catalog
 * issue). One document per event in `events`:
 *   {_id, organization_id, title, description_md, category_id, tags[],
 *    image_ids[], cover_image_id, venue_id, online_url, starts_at, ends_at,
 *    time_zone, language, currency, visibility, age_policy, refund_policy,
 *    capacity, state, version, ticket_types[{ticket_type_id, name,
 *    description, price{amount_minor, currency}, capacity, sales_start,
 *    sales_end, min_per_order, max_per_order, hidden, access_code_hash,
 *    sort_order}], city, city_key (lower case), country, attendance_mode,
 *    min_price_minor, cancel_reason, series_id, created_at, updated_at,
 *    published_at, _outbox}
 * Ticket types live inside their event: they change with it, under its
 * version, and a page of events reads no second collection.
 *
 * Invariants:
 *  - `version` grows by one with every change; a save names the version it
 *    read and fails (ABORTED) if another change came first — checked and
 *    written under the store's per-document lock (mq_store_update_where).
 *  - Events ride in the same write as the change (outbox).
 *  - A deleted draft leaves an `event_deletions` record carrying
 *    EventDeleted, written before the delete.
 *  - Discovery reads only PUBLISHED + PUBLIC documents through the
 *    (state, visibility, starts_at, _id) and (state, visibility,
 *    published_at, _id) indexes; the cursor is the last (sort key, _id), so
 *    pages are stable while events are added.
 * Read next: handlers/catalog/events.c.
 */
#ifndef EVENTS_STORE_H
#define EVENTS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "marquee/catalog/v1/events.pb-c.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

extern const mq_index_spec_t mq_events_indexes[];
extern const size_t mq_events_n_indexes;

/* In the stored form a ticket type's access_code holds the SHA-256 hex of
 * the code (the handler hashes before saving and blanks it before replying). */
/* The stored document of `e` (appended to `doc`), without the outbox: what
 * mq_events_insert writes, and what bench/seed_events.c bulk-loads. */
void mq_events_doc(bson_t *doc, const Marquee__Catalog__V1__Event *e);
mq_code_t mq_events_insert(mq_store_t *s, const Marquee__Catalog__V1__Event *e, const mq_event_t *ev, mq_error_t *err);
/* The event built in `a`. NOT_FOUND if absent. */
mq_code_t mq_events_get(mq_store_t *s, const char *id, mq_arena_t *a, Marquee__Catalog__V1__Event **out,
                        mq_error_t *err);
/* Writes every mutable field of `e` with version = expected + 1, if the
 * stored version is still `expected`: ABORTED otherwise, NOT_FOUND if gone.
 * e->version is set to the new version on success. */
mq_code_t mq_events_save(mq_store_t *s, Marquee__Catalog__V1__Event *e, int64_t expected, const mq_event_t *evs,
                         size_t n, mq_error_t *err);
mq_code_t mq_events_delete(mq_store_t *s, const char *id, const char *by, const mq_event_t *ev, mq_error_t *err);

typedef struct mq_events_query {
  bool public_only;            /* PUBLISHED + PUBLIC (discovery) */
  const char *organization_id; /* NULL: any */
  int state;                   /* 0: any (organization listings) */
  const char *category_id, *city_key, *country;
  int64_t starts_after_ms, starts_before_ms; /* 0: unbounded */
  bool free_only;
  int64_t min_price_minor, max_price_minor; /* max 0: unbounded */
  const char *currency;
  int attendance_mode; /* 0: any */
  bool newest;         /* sort by published_at desc, else starts_at asc */
  /* cursor: strictly after (after_ms, after_id) in the sort order */
  bool has_cursor;
  int64_t after_ms;
  const char *after_id;
  uint32_t limit;
} mq_events_query_t;

/* The key city filters compare (stored as city_key): ASCII lower case,
 * at most 127 bytes. One definition for the store, the handler's filter
 * and the discovery index. */
void mq_events_city_key(const char *city, char out[128]);

mq_code_t mq_events_list(mq_store_t *s, const mq_events_query_t *q, mq_arena_t *a, Marquee__Catalog__V1__Event ***out,
                         size_t *n, mq_error_t *err);

/* Calls fn(event, arg) for every published public event (one cursor; the
 * event is valid during the call only) until fn returns false. Batches of
 * 4,000 documents (~8 MiB): FerretDB 1.24 re-runs the whole scan for every
 * getMore (measured: ~4 s a batch at 100,000 events, and a lookup by _id
 * is a scan too), so the fewer batches the better; on MongoDB the cursor
 * streams. */
mq_code_t mq_events_each_public(mq_store_t *s, bool (*fn)(const Marquee__Catalog__V1__Event *e, void *arg), void *arg,
                                mq_error_t *err);

/* Recovery of a persisted copy (the discovery index's snapshot): every event
 * document whose latest outbox write fell in `hour` (unix ms /
 * MQ_OUTBOX_HOUR_MS, the writer's clock), whatever its state. Every write
 * to an event carries an outbox entry, so the hours since a copy was taken
 * name every event changed since (deletions aside: only drafts are
 * deleted). An equality read on an indexed field. */
mq_code_t mq_events_each_written_in_hour(mq_store_t *s, int64_t hour,
                                         bool (*fn)(const Marquee__Catalog__V1__Event *e, void *arg), void *arg,
                                         mq_error_t *err);

/* *found = true when some event (any state) names `venue_id` (index
 * "venue"). MQ_OK either way; a store failure is its code. */
mq_code_t mq_events_any_at_venue(mq_store_t *s, const char *venue_id, bool *found, mq_error_t *err);

#endif
