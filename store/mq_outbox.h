/*
 * mq_outbox.h — domain events written in the same MongoDB write as the
 * change they describe (DESIGN.md §5: a transactional outbox without
 * transactions), then handed to the relay or journaled for it.
 *
 * 1. A repository attaches its events to the write that makes the change: on
 *    insert as the document's `_outbox` array, on update with
 *    `$push: {_outbox: {$each: [...], $slice: -MQ_OUTBOX_KEEP}}` in the same
 *    update. Either the change and its events are stored together, or
 *    neither is. This embedded copy is the durable record; nobody but its
 *    own writers ever modifies the document again because of it.
 * 2. Right after the write succeeds, mq_store (insert_decision,
 *    update_by_id, update_where), under the document's lock so that a
 *    document's events keep the order of its writes, gives each new entry
 *    a journal _id and offers it to the process's relay
 *    (mq_store_set_outbox_hooks). In the relay's direct mode it takes the
 *    entry and nothing more is written; otherwise (journal mode: at start,
 *    while Kafka is down, while this process still has entries in the
 *    journal) mq_store inserts it into the journal collection `outbox`
 *    (insert only, ordered by `_id`).
 * 3. The relay (server/mq_relay.c, invariants R1-R4) publishes with the
 *    idempotent producer; after the broker's acknowledgement it records the
 *    event id in the ledger `outbox_sent` and deletes the journal entry if
 *    there is one. An entry taken directly that cannot be delivered is
 *    journaled by the relay. Each relay also re-reads the journal every
 *    MARQUEE_OUTBOX_POLL_MS (the catch-up) and publishes its own process's
 *    entries that are not in flight and anyone's older than 10 s (a
 *    process that died before publishing). The journal stays small, so
 *    reading it is cheap on any store (FerretDB scans every collection it
 *    queries).
 * 4. A crash after step 1 and before the event is in the ledger or the
 *    journal (a direct entry not yet acknowledged, or a crash between
 *    steps 1 and 2) leaves the event only in its document: the relay's
 *    sweeper re-reads recent embedded entries (at start, then every
 *    MARQUEE_OUTBOX_SWEEP_S) and journals those older than 30 s that are
 *    neither journaled nor in the ledger. Such an event is late (up to
 *    MARQUEE_OUTBOX_SWEEP_S, or the next server start), never lost.
 *
 * The relay never writes domain documents (on FerretDB, whose updates are
 * read-modify-replace, a relay update could undo a handler's concurrent
 * write). A crash between acknowledgement and ledger/journal clean-up
 * republishes the event: consumers dedupe by event id (at least once,
 * effectively once).
 *
 * Outbox entry: {id: event id, topic, key: aggregate id, type, at: date,
 *                data: binary(serialized marquee.events.v1.Envelope)}.
 * Journal entry: the same fields plus _id "<at ms>-<seq>-<id>" (sortable),
 *                coll and doc (where the embedded copy lives), and by (the
 *                writing process's tag, mq_outbox_process_tag).
 */
#ifndef MQ_OUTBOX_H
#define MQ_OUTBOX_H

#include <bson/bson.h>

#include "core/mq_arena.h"
#include "marquee/events/v1/envelope.pb-c.h"

#include <mongoc/mongoc.h>

#include "core/mq_error.h"
#include "store/mq_store.h"

#define MQ_OUTBOX_FIELD "_outbox"
#define MQ_OUTBOX_JOURNAL "outbox"
#define MQ_OUTBOX_LEDGER "outbox_sent"
/* Embedded entries kept per document (MongoDB trims with $slice; FerretDB
 * 1.24 ignores $slice, so mq_store trims there). */
#define MQ_OUTBOX_KEEP 32
/* The index every watched collection needs (see mq_outbox_index_spec). */
#define MQ_OUTBOX_INDEX_KEYS "{\"_outbox.at\": 1}"
/* The hour (unix ms / MQ_OUTBOX_HOUR_MS) of a document's latest outbox
 * write, top level, so that the relay's sweeper finds recently written
 * documents by equality, which every store serves from an index (the local
 * store pushes down no dotted key and no range: docs/ARCHITECTURE.md).
 * mq_store_ensure_indexes adds its index wherever MQ_OUTBOX_INDEX_KEYS is. */
#define MQ_OUTBOX_HOUR_FIELD "_outbox_h"
#define MQ_OUTBOX_HOUR_MS 3600000LL
#define MQ_OUTBOX_HOUR_KEYS "{\"_outbox_h\": 1}"

typedef struct mq_event {
  const char *topic; /* "marquee.system", "marquee.users", ... */
  Marquee__Events__V1__Envelope env;
  char id[37];
} mq_event_t;

/* Initialises `ev` in place (ev->env.event_id points at ev->id: never copy
 * an mq_event_t afterwards) with a fresh UUIDv4 event id, the time now, and the
 * given metadata (strings are borrowed: they must outlive the write). The
 * caller then sets the payload case and pointer on ev->env. */
void mq_event_init(mq_event_t *ev, const char *topic, const char *type, const char *aggregate_id, const char *actor,
                   const char *trace_id, const char *request_id);

/* Appends `projection: {_outbox: 0}` to find options: readers that do not
 * need a document's events do not fetch them. */
void mq_outbox_exclude(bson_t *opts);

/* Appends `_outbox: [entries]` and `_outbox_h` to a document about to be inserted. */
void mq_outbox_append_insert(bson_t *doc, const mq_event_t *evs, size_t n);
/* Appends `$push: {_outbox: {$each: [entries], $slice: -MQ_OUTBOX_KEEP}}`
 * and `$max: {_outbox_h: hour}` to an update document (which must have no
 * `$max` of its own). */
void mq_outbox_append_update(bson_t *update, const mq_event_t *evs, size_t n);

/* The outbox entries carried by an insert document (`_outbox`) or an update
 * (`$push._outbox.$each`): true and *arr positioned on the array if any. */
bool mq_outbox_entries(const bson_t *doc_or_update, bool is_update, bson_iter_t *arr);

/* This process's random tag (16 hex digits), the `by` of its journal entries. */
const char *mq_outbox_process_tag(void);

/* The journal document of one outbox entry (fresh sortable _id); false if
 * the entry has no id. *doc is initialised on true (caller destroys). */
bool mq_outbox_journal_doc(const char *collection, const bson_value_t *doc_id, const bson_t *entry, bson_t *doc);
/* Journals one entry (insert; a duplicate means journaled before: MQ_OK). */
mq_code_t mq_outbox_journal_entry(mongoc_collection_t *journal, const char *collection, const bson_value_t *doc_id,
                                  const bson_t *entry, mq_error_t *err);

/* The journal's unique event-id index and the ledger's time index. */
extern const mq_index_spec_t mq_outbox_indexes[];
extern const size_t mq_outbox_n_indexes;

#endif
