/*
 * series_store.h — series of recurring events (catalog issue, item 3). One
 * document per series in `series`:
 *   {_id, organization_id, state, version, title, rrule, time_zone,
 *    first_start_local, duration_minutes, explicit_starts_local[],
 *    occurrences[{event_id, starts_at, ends_at}] (by start),
 *    template: binary (a packed marquee.catalog.v1.Event: the validated
 *    content fields and ticket types, access codes as SHA-256 hex),
 *    pending, pending_event_ids[], fingerprint, cancel_reason, created_by,
 *    created_at, updated_at, _outbox}
 * Each occurrence is an ordinary document of `events` (events_store.h) with
 * `series_id` set, written and read only through mq_events_insert /
 * mq_events_get / mq_events_save. The template is one opaque value: it is
 * only ever read and written whole by handlers/catalog/series.c.
 *
 * Creating N occurrences is N inserts (no transactions, DESIGN.md §4), so:
 *  - The series document is inserted FIRST, in state CREATING, with the
 *    complete plan: every occurrence's event id and times, and the ids still
 *    to create in `pending_event_ids`. Event ids are derived from the series
 *    id and the occurrence's index (a name-based UUID, version 8:
 *    SHA-256("occurrence|<series id>|<index>")), so a retry inserts exactly
 *    the same ids and an event that exists is one that is done.
 *  - With an idempotency key the series id itself is derived from the
 *    organization and the key (SHA-256("series|<org>|<key>")): the insert of
 *    the series document is the decision record, and a retry finds it
 *    (ALREADY_EXISTS) with the fingerprint of the first request.
 *  - Then the events are inserted, each carrying its own EventCreated.
 *  - Then the series is saved ACTIVE (pending cleared) carrying
 *    SeriesCreated (or SeriesUpdated "occurrences_added") whose event id is
 *    derived from the series id and the new version: two processes
 *    finishing the same series emit the same event id, which consumers
 *    dedupe.
 *  - A crash anywhere leaves a CREATING series whose plan says what is
 *    missing; it is completed by a CreateSeries retry with the same key, or
 *    by the next write on the series (UpdateSeries, PublishSeries,
 *    CancelSeries, AddOccurrences). Readers see state CREATING meanwhile.
 *    SeriesCreated is never emitted before every occurrence exists.
 *    (A draft occurrence deleted with DeleteEvent while its series is still
 *    CREATING is created again by the completion: event_deletions is not
 *    consulted. Once ACTIVE, the plan keeps the id and nothing recreates it.)
 *  - AddOccurrences is the same protocol: the new entries are appended to
 *    the plan and to pending_event_ids (state CREATING) before any insert.
 *  - `version` grows by one with every write of the series document; a save
 *    names the version it read and fails (ABORTED) if another came first,
 *    checked and written under the store's per-document lock
 *    (mq_store_update_where) — atomic on MongoDB, within one process on
 *    FerretDB.
 *  - Changes of the series as a whole (UpdateSeries, CancelSeries) are
 *    written to the series document, with their SeriesUpdated, BEFORE the
 *    occurrences are changed: the series version serialises them, and an
 *    interrupted run is completed by running the call again (UpdateSeries
 *    with the version read anew; CancelSeries on a cancelled series redoes
 *    the occurrences only). It converges: each occurrence gets the same
 *    values again.
 *
 * The occurrences of a series are listed from `events` through the
 * (series_id, starts_at, _id) index declared here (the query needs no field
 * of events_store's own tables).
 * Read next: handlers/catalog/series.c.
 */
#ifndef SERIES_STORE_H
#define SERIES_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_SERIES_MAX_OCCURRENCES 500

/* the values of marquee.catalog.v1.SeriesState */
enum { MQ_SERIES_CREATING = 1, MQ_SERIES_ACTIVE = 2, MQ_SERIES_CANCELLED = 3 };

typedef struct mq_series_occ {
  const char *event_id;
  int64_t starts_ms, ends_ms;
} mq_series_occ_t;

typedef struct mq_series {
  const char *id, *organization_id, *title, *rrule, *time_zone, *first_start_local;
  uint32_t duration_minutes;
  int state; /* MQ_SERIES_* */
  const char **explicit_starts;
  size_t n_explicit;
  mq_series_occ_t *occ; /* by start */
  size_t n_occ;
  const uint8_t *template_pb; /* packed Event */
  size_t template_len;
  const char *pending; /* "created", "occurrences_added" or "" */
  const char **pending_ids;
  size_t n_pending;
  const char *fingerprint; /* SHA-256 hex of the CreateSeries request with an idempotency key, else "" */
  const char *cancel_reason, *created_by;
  int64_t version, created_ms, updated_ms;
} mq_series_t;

extern const mq_index_spec_t mq_series_indexes[];
extern const size_t mq_series_n_indexes;

/* Inserts the series (no event: it is announced when it is complete).
 * ALREADY_EXISTS if a series with this id exists. */
mq_code_t mq_series_insert(mq_store_t *s, const mq_series_t *v, mq_error_t *err);
/* The series built in `a`. NOT_FOUND (field "series_id") if absent. */
mq_code_t mq_series_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_series_t *out, mq_error_t *err);
/* Writes every field but _id, organization_id, fingerprint, created_by and
 * created_at, with version = expected + 1 and `evs` in the outbox, if the
 * stored version is still `expected`: ABORTED (field "version") otherwise,
 * NOT_FOUND if gone. */
mq_code_t mq_series_save(mq_store_t *s, const mq_series_t *v, int64_t expected, const mq_event_t *evs, size_t n,
                         mq_error_t *err);

/* The series' occurrences that exist in `events`, by (starts_at, _id),
 * strictly after the cursor when has_cursor; only PUBLISHED ones when
 * published_only. out[] has room for `limit`. */
typedef struct mq_series_occ_query {
  const char *series_id;
  bool published_only;
  bool has_cursor;
  int64_t after_ms;
  const char *after_id;
  uint32_t limit;
} mq_series_occ_query_t;
mq_code_t mq_series_occurrences(mq_store_t *s, const mq_series_occ_query_t *q, mq_arena_t *a, mq_series_occ_t *out,
                                size_t *n, mq_error_t *err);

#endif
