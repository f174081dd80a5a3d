/*
 * mq_outbox.h — domain events written in the same MongoDB write as the
 * change they describe (DESIGN.md §5: a transactional outbox without
 * transactions).
 *
 * A repository that changes a document attaches its events to that very
 * write: on insert as the document's `_outbox` array, on update with
 * `$push: {_outbox: {$each: [...]}}` in the same update. Either the change
 * and its events are stored together, or neither is. The relay
 * (server/mq_relay.c) later finds pending entries through the `_outbox.at`
 * index of every watched collection, publishes each to Kafka with the
 * idempotent producer, and removes it ($pull of the exact stored element) only after the
 * broker acknowledged it. A crash between ack and removal republishes the
 * event: consumers dedupe by event id (at least once, effectively once).
 *
 * Outbox entry: {id: event id, topic, key: aggregate id, type, at: date,
 *                data: binary(serialized marquee.events.v1.Envelope)}.
 */
#ifndef MQ_OUTBOX_H
#define MQ_OUTBOX_H

#include <bson/bson.h>

#include "marquee/events/v1/envelope.pb-c.h"
#include "mq_arena.h"

#define MQ_OUTBOX_FIELD "_outbox"
/* The index every watched collection needs (see mq_outbox_index_spec). */
#define MQ_OUTBOX_INDEX_KEYS "{\"_outbox.at\": 1}"

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

/* Appends `_outbox: [entries]` to a document about to be inserted. */
void mq_outbox_append_insert(bson_t *doc, const mq_event_t *evs, size_t n);
/* Appends `$push: {_outbox: {$each: [entries]}}` to an update document. */
void mq_outbox_append_update(bson_t *update, const mq_event_t *evs, size_t n);

#endif
