/*
 * mq_store.h — MongoDB access shared by every repository (DESIGN.md §4).
 *
 * One libmongoc client pool per process, opened from MARQUEE_MONGO_URI. The
 * pool connects lazily: opening never fails because the database is down;
 * operations then fail with MQ_STORE_UNAVAILABLE within the URI's server
 * selection timeout (default 2 s, added to the URI when absent, as is a
 * 1 s heartbeat so a returning server is noticed quickly).
 *
 * Rules every repository follows (they hold on MongoDB 6+ and FerretDB 1.24):
 *  - no multi-document transactions, no change streams, $text, $lookup,
 *    $facet, TTL or partial indexes;
 *  - conditional updates are not atomic on FerretDB: anything that must be
 *    decided once is an insert on a unique key (mq_store_insert_decision);
 *  - BSON is built field by field from validated values: user input never
 *    becomes an operator or a field name;
 *  - every query is served by an index declared in the repository's
 *    mq_index_spec_t table, created idempotently at start-up.
 * Errors: mq_store_error() is the one mapping from libmongoc/server errors to
 * mq codes (duplicate key → ALREADY_EXISTS, network/selection/not-primary →
 * STORE_UNAVAILABLE, MaxTimeMSExpired → DEADLINE_EXCEEDED, a document over
 * the 16 MiB limit → RESOURCE_EXHAUSTED naming it, the local store's write
 * conflict → ABORTED, else INTERNAL with the detail logged, not sent).
 *
 * The local store (FerretDB on PostgreSQL, docs/ARCHITECTURE.md) refuses an
 * update computed from a stale read with a write conflict instead of undoing
 * another process's update (scripts/ferretdb/local.sql); every update here
 * retries it (mq_store_conflict_retry), so updates do not get lost across
 * processes on it, as on MongoDB. Read next: mq_outbox.h, notes_store.h.
 */
#ifndef MQ_STORE_H
#define MQ_STORE_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

typedef struct mq_store mq_store_t;

typedef struct mq_index_spec {
  const char *collection;
  const char *name;      /* index name, stable across releases */
  const char *keys_json; /* e.g. "{\"email\": 1}" */
  bool unique;
} mq_index_spec_t;

/* Opens the pool (no I/O). INVALID_ARGUMENT naming MARQUEE_MONGO_URI for a bad URI. */
mq_code_t mq_store_open(const char *uri, const char *db, uint32_t pool_max, mq_store_t **out, mq_error_t *err);
void mq_store_close(mq_store_t *s);
const char *mq_store_db_name(const mq_store_t *s);

/* The relay's hand-over (mq_outbox.h). After a write with outbox entries,
 * mq_store calls `offer` with each entry's journal document (borrowed for
 * the call), in write order per document and under the document's lock.
 * True: the relay took the entry (it publishes it, and journals it itself
 * if it cannot). False: mq_store journals it and then calls `journaled`
 * (`stored`: the journal has it). Neither may block on the store. Set the
 * hooks before writes start, clear them (NULL) before they go away. */
typedef struct mq_store_outbox_hooks {
  bool (*offer)(void *arg, const bson_t *entry);
  void (*journaled)(void *arg, const bson_t *entry, bool stored);
  void *arg;
} mq_store_outbox_hooks_t;
void mq_store_set_outbox_hooks(mq_store_t *s, const mq_store_outbox_hooks_t *hooks);

/* A write the local store refused as a conflict (nothing was written) is
 * worth repeating: true after a short backoff when `e` is one and `attempt`
 * (0, 1, …) is below MQ_STORE_CONFLICT_ATTEMPTS. For writes made outside
 * mq_store_update_* (an updateMany). Never true on MongoDB. */
#define MQ_STORE_CONFLICT_ATTEMPTS 50
bool mq_store_conflict_retry(const bson_error_t *e, int attempt);

/* The write lane. SQLite, under FerretDB, has one writer per database: a
 * second write transaction sleeps in its busy handler (1, 2, 5, 10… ms)
 * until the first commits, so concurrent batch writes from one process
 * cost wall time and add nothing. On FerretDB on SQLite, enter takes the
 * process's lane (one batch write at a time; returns true); on MongoDB and
 * on FerretDB on PostgreSQL (detected once per process, not configured) it
 * does nothing (false). Pass its result to leave. `c` is a borrowed client. */
bool mq_store_lane_enter(mq_store_t *s, mongoc_client_t *c);
void mq_store_lane_leave(mq_store_t *s, bool entered);

/* Borrow a client (blocks while all are in use); always give it back. */
mongoc_client_t *mq_store_acquire(mq_store_t *s);
void mq_store_release(mq_store_t *s, mongoc_client_t *c);
/* A collection handle on a borrowed client; caller destroys it. */
mongoc_collection_t *mq_store_collection(mq_store_t *s, mongoc_client_t *c, const char *name);

/* The one error mapping (see above). `what` names the operation for the log. */
mq_code_t mq_store_error(const bson_error_t *e, const char *what, mq_error_t *err);

/* {ping: 1}; MQ_OK when the server answers. */
mq_code_t mq_store_ping(mq_store_t *s, mq_error_t *err);

/* createIndexes for every spec; idempotent (same name + keys → no-op). A
 * spec on MQ_OUTBOX_INDEX_KEYS (a watched collection) brings the outbox
 * hour index "outbox_hour" with it (mq_outbox.h). */
mq_code_t mq_store_ensure_indexes(mq_store_t *s, const mq_index_spec_t *specs, size_t n, mq_error_t *err);

/* The decision-record primitive (DESIGN.md §4): insert `doc` (its outbox
 * entries are journaled after the insert) into
 * `collection`. Concurrent calls for one collection are group-committed:
 * those arriving while a batch is being written share the next unordered
 * insertMany, and each learns its own outcome (mq_store.c, "group
 * commit"); an idle call is written at once. MQ_OK means this caller made the decision; MQ_ALREADY_EXISTS
 * means a record with the same unique key exists (someone else decided, or
 * this is a retry); any other code is a store failure and nothing is known
 * to be decided. The unique key must be backed by a unique index (or _id). */
mq_code_t mq_store_insert_decision(mq_store_t *s, const char *collection, const bson_t *doc, mq_error_t *err);

/* updateOne({_id: id}, update) under this process's lock for that document.
 * Every update of a document that carries outbox entries goes through here,
 * so within one process they never interleave, and the events of a
 * document are journaled (mq_outbox.h) in the order of its writes. Why the
 * lock: FerretDB 1.24 applies an update as read-modify-replace (FerretDB
 * #3040), so two racing updates could silently undo each other. MongoDB's
 * updates are atomic and the lock costs almost nothing; across several
 * processes on FerretDB the race remains (a documented limitation of the
 * local store — no Marquee process other than the writing handlers updates
 * a domain document). MQ_NOT_FOUND if no document matched. */
mq_code_t mq_store_update_by_id(mq_store_t *s, const char *collection, const bson_value_t *id, const bson_t *update,
                                mq_error_t *err);

/* As mq_store_update_by_id, matching {_id: id} plus the conditions in `also`
 * (e.g. {version: 7}: an optimistic-concurrency check). Under the same
 * per-document lock, so on FerretDB too the condition and the write cannot
 * interleave with another update from this process. MQ_NOT_FOUND if nothing
 * matched (absent, or the condition failed: the caller tells them apart). */
mq_code_t mq_store_update_where(mq_store_t *s, const char *collection, const bson_value_t *id, const bson_t *also,
                                const bson_t *update, mq_error_t *err);

/* Runs `each(doc, arg)` for every document of find(filter, opts) until it
 * returns false; maps a cursor error once. `doc` is valid only during the
 * callback. */
mq_code_t mq_store_find_each(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                             bool (*each)(const bson_t *doc, void *arg), void *arg, mq_error_t *err);

/* Keyset pagination, written once: appends to `filter`
 *   {$or: [{key: {op: v}}, {key: v, _id: {op: id}}]}
 * with op "$lt" when `before` (a descending sort: what comes after the
 * cursor is smaller), else "$gt" — the items strictly past (v, id) in the
 * order (key, _id). `v` is a value (a date or a string), never an operator
 * from input. Also counts what lies ahead of an entry (a waitlist rank). */
void mq_store_append_keyset(bson_t *filter, const char *key, const bson_value_t *v, const char *id, bool before);
/* The same for a date key (unix ms), the common case. */
void mq_store_append_keyset_date(bson_t *filter, const char *key, int64_t at_ms, const char *id, bool before);

/* One page of a list ordered by a date key then _id (the shape of most List
 * methods): strictly past the cursor when has_cursor, at most `limit` rows
 * (0: none are read), without the embedded outbox. */
typedef struct mq_store_page {
  const char *key; /* the date field sorted on */
  bool desc;       /* newest first */
  uint32_t limit;
  bool has_cursor;
  int64_t after_ms;
  const char *after_id;
} mq_store_page_t;
/* Appends the cursor to `filter` and sort/limit/projection to `opts`. */
void mq_store_page_apply(bson_t *filter, bson_t *opts, const mq_store_page_t *pg);

/* An arena array of rows read by mq_store_find_rows: `conv` fills one
 * elem_size-byte element from a document (strings in the arena). With a
 * limit, at most that many rows in all (several finds may append); with 0,
 * as many as the finds return. */
typedef void (*mq_store_conv_fn)(const bson_t *doc, mq_arena_t *a, void *elem);
typedef struct mq_store_rows {
  mq_arena_t *a;
  size_t elem_size;
  mq_store_conv_fn conv;
  uint32_t limit;
  void *v; /* the rows */
  size_t n, cap;
} mq_store_rows_t;
void mq_store_rows_init(mq_store_rows_t *r, mq_arena_t *a, size_t elem_size, mq_store_conv_fn conv, uint32_t limit);
/* Appends what find(filter, opts) returns to `rows` (mq_store_find_each). */
mq_code_t mq_store_find_rows(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                             mq_store_rows_t *rows, mq_error_t *err);

/* countDocuments(filter) into *n. */
mq_code_t mq_store_count(mq_store_t *s, const char *collection, const bson_t *filter, int64_t *n, mq_error_t *err);

/* Finds one document; MQ_NOT_FOUND if none. On MQ_OK *out is initialised and
 * owned by the caller (bson_destroy). `opts` may carry a projection. */
mq_code_t mq_store_find_one(mq_store_t *s, const char *collection, const bson_t *filter, const bson_t *opts,
                            bson_t *out, mq_error_t *err);

/* The document whose _id is the string `id`, without its embedded outbox
 * (readers of domain state do not need the events). MQ_NOT_FOUND if none;
 * on MQ_OK *out is owned by the caller. */
mq_code_t mq_store_get_by_id(mq_store_t *s, const char *collection, const char *id, bson_t *out, mq_error_t *err);

/* Reads and deletes the first document matching `filter`: two callers
 * racing for it cannot both get it, on any number of processes (the one
 * whose delete removed it has it; mq_store.c says why not findAndModify).
 * MQ_NOT_FOUND if none; on MQ_OK *out is owned by the caller. */
mq_code_t mq_store_take_one(mq_store_t *s, const char *collection, const bson_t *filter, bson_t *out, mq_error_t *err);

/* deleteOne / deleteMany(filter); *deleted (optional) gets the count. */
mq_code_t mq_store_delete(mq_store_t *s, const char *collection, const bson_t *filter, bool many, int64_t *deleted,
                          mq_error_t *err);

#endif
