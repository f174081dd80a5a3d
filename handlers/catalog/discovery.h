/*
 * discovery.h — the in-process discovery index: every published public
 * event, held by each server instance in two sorted orders (start time;
 * publication time), so that a public ListEvents page costs a binary search
 * and a short walk whatever the size of the catalog and whatever the store
 * can push down (FerretDB 1.24 scans the whole collection for any query
 * that is not an _id lookup; on MongoDB the compound indexes would serve
 * the same query, but the index answers without a round trip either way).
 *
 * Contents: loaded from the store once the instance hears other instances'
 * writes (mq_invalidator live), then kept current by re-reading an event
 * from the store whenever this instance writes it or any catalog event for
 * it arrives (mq_app_event_changed). Each entry keeps the event's version,
 * so a slow load never overwrites a newer refresh. A failed refresh makes
 * the index unready and triggers a reload; until ready, ListEvents reads
 * the store (same filters, same order, same page tokens).
 *
 * Snapshot (optional): with a file path, the index is saved there (at most
 * every 5 minutes while it changes, and when the server stops) and a
 * restart loads it, re-reads from the store only the events written since
 * (by outbox hour, indexed on every store) and answers at once; a full
 * read of the store then runs in the background and corrects whatever the
 * snapshot got wrong (a store restored from a backup, a dropped database,
 * a write that carried no outbox entry). A snapshot of another database,
 * older than 30 days or damaged is ignored (the reason is logged).
 *
 * Memory: one packed Event per published public event (about 1–2 KiB) plus
 * ~150 bytes of keys. Thread-safe (a read-write lock).
 */
#ifndef MQ_DISCOVERY_H
#define MQ_DISCOVERY_H

#include <stdbool.h>

#include "core/mq_arena.h"
#include "store/catalog/events_store.h"
#include "store/mq_store.h"

typedef struct mq_discovery mq_discovery_t;

mq_discovery_t *mq_discovery_new(void);
/* Starts the loader thread: it loads once gate(arg) is true, then reloads
 * whenever a refresh failed. Loads read through their own connection to
 * uri/db (a long socket timeout); refreshes through `store`. `snapshot`:
 * the snapshot file's path, or NULL/"" for none. */
void mq_discovery_start(mq_discovery_t *d, mq_store_t *store, const char *uri, const char *db, const char *snapshot,
                        bool (*gate)(void *arg), void *arg);
void mq_discovery_free(mq_discovery_t *d);

bool mq_discovery_ready(mq_discovery_t *d);
size_t mq_discovery_size(mq_discovery_t *d);

/* Re-reads event_id from the store and updates (or drops) its entry. */
void mq_discovery_refresh(mq_discovery_t *d, mq_store_t *store, const char *event_id);

/* The stored event if it is listed (published, public) and the index is
 * ready, unpacked into `a`; NULL otherwise (ask the store). */
Marquee__Catalog__V1__Event *mq_discovery_get(mq_discovery_t *d, const char *event_id, mq_arena_t *a);

/* Answers a public_only query exactly as mq_events_list would (filters,
 * order, cursor, limit), events unpacked into `a`. False if not ready. */
bool mq_discovery_list(mq_discovery_t *d, const mq_events_query_t *q, mq_arena_t *a, Marquee__Catalog__V1__Event ***out,
                       size_t *n);

#endif
