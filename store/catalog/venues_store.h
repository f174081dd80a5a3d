/*
 * venues_store.h — the venues of organizations (catalog issue, item 4).
 *
 *   venues          {_id: venue id, organization_id, name, address_line1,
 *                    address_line2, city, region, postal_code, country,
 *                    latitude, longitude, time_zone, capacity, version,
 *                    created_at, updated_at, _outbox}
 *   venue_deletions {_id: venue id, organization_id, by, at, _outbox} — the
 *                    record (and VenueChanged "deleted" event) of a deletion,
 *                    written before the venue is deleted; its _id makes the
 *                    deletion happen once.
 *
 * Every write carries its event in the same document write (mq_outbox.h):
 * the insert of a venue, its update ($push in the same update), the insert
 * of its deletion record. Updates go through mq_store_update_where, matching
 * {_id, version: expected} under the store's per-document lock and bumping
 * `version` with $inc in the same update: optimistic concurrency that holds
 * on MongoDB (atomic updates) and, within one process, on FerretDB (whose
 * updates are read-modify-replace; across processes there it can still lose
 * an update — the documented limit of the local store, DESIGN.md §4).
 *
 * Values are validated by the handler (handlers/catalog/venues.c); this file
 * writes them field by field under constant names.
 * Read next: handlers/catalog/venues.c.
 */
#ifndef VENUES_STORE_H
#define VENUES_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

typedef struct mq_venue {
  const char *id, *organization_id, *name, *address_line1, *address_line2, *city, *region, *postal_code, *country,
      *time_zone;
  double latitude, longitude;
  int64_t capacity; /* 0 = unknown */
  int64_t version;  /* 1 on create, +1 per update */
  int64_t created_ms, updated_ms;
} mq_venue_t;

/* The fields an update may change (mq_venues_update's `fields` bits). */
enum {
  MQ_VENUE_NAME = 1u << 0,
  MQ_VENUE_ADDRESS_LINE1 = 1u << 1,
  MQ_VENUE_ADDRESS_LINE2 = 1u << 2,
  MQ_VENUE_CITY = 1u << 3,
  MQ_VENUE_REGION = 1u << 4,
  MQ_VENUE_POSTAL_CODE = 1u << 5,
  MQ_VENUE_COUNTRY = 1u << 6,
  MQ_VENUE_LATITUDE = 1u << 7,
  MQ_VENUE_LONGITUDE = 1u << 8,
  MQ_VENUE_TIME_ZONE = 1u << 9,
  MQ_VENUE_CAPACITY = 1u << 10,
};

extern const mq_index_spec_t mq_venues_indexes[];
extern const size_t mq_venues_n_indexes;

/* Inserts `v` (every field set; version, created_ms and updated_ms as given)
 * with `ev` in its outbox. */
mq_code_t mq_venues_create(mq_store_t *s, const mq_venue_t *v, const mq_event_t *ev, mq_error_t *err);

/* The venue with this id (strings copied into `a`). NOT_FOUND (field
 * "venue_id") if absent. For other domains too: the events service reads a
 * venue's organization, city, country and time zone through it. */
mq_code_t mq_venues_get(mq_store_t *s, const char *venue_id, mq_arena_t *a, mq_venue_t *out, mq_error_t *err);

/* Sets the fields of `v` named by `fields` (MQ_VENUE_* bits) on venue v->id,
 * with updated_at = v->updated_ms, version + 1 and `ev` in its outbox — only
 * if its version is still `expected_version`. ABORTED (field "version") if
 * the venue has another version, NOT_FOUND (field "venue_id") if it is gone. */
mq_code_t mq_venues_update(mq_store_t *s, const mq_venue_t *v, unsigned fields, int64_t expected_version,
                           const mq_event_t *ev, mq_error_t *err);

/* Deletes venue v->id of organization v->organization_id: writes the
 * deletion record carrying `ev`, then deletes the venue. Whether the venue
 * may go (no event refers to it) is the caller's rule, checked before
 * (handlers/catalog/venues.c). NOT_FOUND if it was
 * already deleted. If the second step fails (store down), the record (and
 * event) exists while the venue still does: a retry completes the deletion
 * without a second event. */
mq_code_t mq_venues_delete(mq_store_t *s, const mq_venue_t *v, const char *by, const mq_event_t *ev, mq_error_t *err);

typedef struct mq_venues_query {
  const char *organization_id;
  const char *after_name, *after_id; /* cursor: strictly after (name, _id); NULL: from the start */
  uint32_t limit;                    /* out[] has room for this many */
} mq_venues_query_t;

/* The organization's venues ordered by (name, _id), after the cursor. */
mq_code_t mq_venues_list(mq_store_t *s, const mq_venues_query_t *q, mq_arena_t *a, mq_venue_t *out, size_t *n,
                         mq_error_t *err);

#endif
