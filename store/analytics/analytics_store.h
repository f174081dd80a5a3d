/*
 * analytics_store.h — the aggregates behind AnalyticsService, written only by
 * marquee-analytics (consumers/analytics) and read by the server
 * (docs/ANALYTICS.md).
 *
 * A bucket document holds counters for one scope and one UTC day, as seen
 * from one Kafka partition; it is stored as versions:
 *   {_id: "<lid>@<hw>", lid: "<scope>|<key>|<day, 6 digits>|<src>",
 *    s: scope, k: key, d: day, src, org: organization id (event scope),
 *    hw: offset, c: binary — the counters: (quarter, name, int64) triples
 *    with a table of the names, encoded as analytics_store.c says}
 * scope "e" (key: event id), "o" (organization id) or "p" (key "all");
 * day: days since 1970-01-01 UTC; quarter: 0..95, the quarter hour of the
 * UTC day in which the domain event happened (its occurred_at). Every real
 * time zone's offset is a multiple of 15 minutes, so quarters add up to
 * exact local hours and days anywhere. src: "<topic>/<partition>".
 *
 * Invariants:
 *  A1 One writer per document: only the consumer that owns partition `src`
 *     writes it (Kafka gives a partition to one group member at a time).
 *     Nothing is ever updated in place: a flush inserts a new version of
 *     each changed document (one insertMany), then deletes the versions it
 *     replaces (one deleteMany by _id). The local store's updates are
 *     read-modify-replace and cost a transaction each (DESIGN.md); inserts
 *     are neither.
 *  A2 hw is the offset of the last message of `src` folded into a version;
 *     a contribution is applied only when its offset is above the hw of the
 *     version it starts from. Messages of one partition are read in order
 *     and every contribution of a batch is applied before anything is
 *     written, so a version holds exactly its partition's contributions up
 *     to its hw: a redelivered message (a crash before the position was
 *     saved, a rewind) changes nothing, whatever the crash point.
 *  A3 The consumer's position per partition (versions {lid: src, hw: next,
 *     next, at}) is written after the documents of the batch, so it never
 *     runs ahead of them.
 *  A4 Counters are sums, each attributed to its event's own time: the order
 *     in which partitions are read does not change any result.
 *  A5 Readers and loads take, per lid, the version with the highest hw (a
 *     crash between the insert and the delete leaves an older one behind;
 *     the next flush of that document deletes it), then add the
 *     partitions' documents up.
 * Collections are per generation (analytics_g<N>, analytics_pos_g<N>); the
 * document {_id: "current", gen: N} in analytics_meta names the one readers
 * use. A rebuild fills generation N+1 from the start of the log and then
 * moves "current" (mq_an_set_current).
 */
#ifndef MQ_ANALYTICS_STORE_H
#define MQ_ANALYTICS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"
#include "store/mq_store.h"

#define MQ_AN_META "analytics_meta"
#define MQ_AN_QUARTER_MS (15LL * 60 * 1000)
#define MQ_AN_DAY_MS (24LL * 3600 * 1000)
#define MQ_AN_KEY_MAX 64  /* event, organization ids; "all" */
#define MQ_AN_NAME_MAX 56 /* counter names: "t:<ticket type id>", "g:<currency>" */

/* Counter names (a suffix ":<ticket type>" or ":<currency>" where noted).
 * Event scope: all but su, oc, ep; organization: b t c ct r g f x rf ep;
 * platform: b t c ct r g f x rf ep su oc. */
#define MQ_AN_HOLDS "h"              /* holds created */
#define MQ_AN_HOLDS_EXPIRED "hx"     /* holds the sweeper ended */
#define MQ_AN_HOLDS_RELEASED "hr"    /* released, or payment failed */
#define MQ_AN_BOOKINGS "b"           /* bookings confirmed */
#define MQ_AN_TICKETS "t"            /* tickets sold; "t:<tt>" per type */
#define MQ_AN_CANCELLATIONS "c"      /* bookings cancelled */
#define MQ_AN_TICKETS_CANCELLED "ct" /* tickets cancelled; "ct:<tt>" */
#define MQ_AN_REFUNDS "r"            /* refunds issued */
#define MQ_AN_CHECKINS "ci"          /* check-ins, less undone ones; "ci:<tt>" */
#define MQ_AN_VIEWS "v"              /* page views */
#define MQ_AN_GROSS "g"              /* "g:<cur>": totals of confirmed bookings */
#define MQ_AN_FEES "f"               /* "f:<cur>": service fees within gross */
#define MQ_AN_TAX "x"                /* "x:<cur>": taxes within gross */
#define MQ_AN_REFUNDED "rf"          /* "rf:<cur>": refunds */
#define MQ_AN_TYPE_GROSS "s"         /* "s:<tt>:<cur>": ticket price x quantity */
#define MQ_AN_PUBLISHED "ep"         /* events published */
#define MQ_AN_SIGNUPS "su"           /* users registered */
#define MQ_AN_ORGS "oc"              /* organizations created */

/* ---- the writer's working set (marquee-analytics) ---- */

typedef struct mq_an_set mq_an_set_t;

/* The working set of generation `gen` (not shared between threads). */
mq_an_set_t *mq_an_set_new(int64_t gen);
void mq_an_set_free(mq_an_set_t *w);

/* Adds `delta` to counter `name` of (scope, key) in the quarter of at_ms,
 * as the contribution of message (src, offset). `org` (may be NULL) is
 * recorded on event documents. Keys and names must be ids, currency codes
 * and the names above: [A-Za-z0-9_:-] only (anything else is refused:
 * false, nothing added), so no input can become a field path or operator. */
bool mq_an_add(mq_an_set_t *w, char scope, const char *key, const char *org, int64_t at_ms, const char *src,
               int64_t offset, const char *name, int64_t delta);
/* Records that message `offset` of `src` was read (its event happened at
 * at_ms): the position written at the next flush is offset + 1, and the
 * partition is complete as of at_ms. */
void mq_an_read_upto(mq_an_set_t *w, const char *src, int64_t offset, int64_t at_ms);
/* Every partition read so far is complete as of now_ms (the consumer found
 * them all read to their ends); written at the next flush. */
void mq_an_caught_up(mq_an_set_t *w, int64_t now_ms);
/* Contributions waiting to be written. */
size_t mq_an_pending(const mq_an_set_t *w);
/* Loads the documents not yet known (one query per few hundred), applies
 * what is waiting under A2, writes the changed documents (one bulk of
 * whole-document upserts), then the positions (A3). On failure nothing in
 * memory is lost: a later flush writes it. */
mq_code_t mq_an_flush(mq_an_set_t *w, mq_store_t *s, mq_error_t *err);
/* Forgets the cached documents of `src` (its partition was assigned again:
 * another member may have written them meanwhile). Unflushed work of src is
 * dropped too: it will be read again from the saved position. */
void mq_an_forget(mq_an_set_t *w, const char *src);
/* The saved position of `src` in generation gen: the next offset to read,
 * or -1 when none is saved, and how far it was complete (*at_ms). */
mq_code_t mq_an_position(mq_store_t *s, int64_t gen, const char *src, int64_t *next, int64_t *at_ms, mq_error_t *err);
/* The partition `src` was assigned (again): forgets its cached documents and
 * unflushed work (mq_an_forget) and starts from its saved position. */
void mq_an_assign(mq_an_set_t *w, const char *src, int64_t next, int64_t at_ms);
/* Creates the generation's indexes (idempotent). */
mq_code_t mq_an_ensure_indexes(mq_store_t *s, int64_t gen, mq_error_t *err);

/* ---- generations ---- */

/* The generation readers use; 0 when none was ever written. */
mq_code_t mq_an_current(mq_store_t *s, int64_t *gen, mq_error_t *err);
/* Makes `gen` current and drops the collections of every older one. */
mq_code_t mq_an_set_current(mq_store_t *s, int64_t gen, mq_error_t *err);
/* Drops the collections of generation gen (a rebuild starting over). */
mq_code_t mq_an_drop(mq_store_t *s, int64_t gen, mq_error_t *err);
/* The collection names of a generation (buf >= 40 bytes). */
void mq_an_collection(int64_t gen, char *buf, size_t n);

/* ---- reading (AnalyticsService) ---- */

/* What a read visits: one counter of one quarter of one document. */
typedef struct mq_an_cell {
  char scope;
  const char *key, *org; /* org: "" when the document has none */
  int64_t at_ms;         /* the quarter's start */
  const char *name;
  int64_t value;
} mq_an_cell_t;
typedef void (*mq_an_cell_fn)(const mq_an_cell_t *c, void *arg);

/* Every cell of the documents of (scope, key) — or, with org set and key
 * NULL, of every event document of that organization — whose day overlaps
 * [from_ms, to_ms), quarters outside it skipped. */
mq_code_t mq_an_scan(mq_store_t *s, int64_t gen, char scope, const char *key, const char *org, int64_t from_ms,
                     int64_t to_ms, mq_an_cell_fn fn, void *arg, mq_error_t *err);
/* Every position document of a generation: the smallest `at` (the time of
 * the last message read on a partition) is how far the aggregates are
 * complete. *complete_ms = 0 when none. */
mq_code_t mq_an_complete_until(mq_store_t *s, int64_t gen, int64_t *complete_ms, mq_error_t *err);

#endif
