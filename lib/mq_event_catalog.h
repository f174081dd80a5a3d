/*
 * mq_event_catalog.h — the published event contract in one table: for every
 * payload of marquee.events.v1.Envelope, its type string, its Kafka topic and
 * what its key (aggregate_id) is. docs/EVENTS.md's event tables are generated
 * from this table and from envelope.proto's own comments and fields
 * (`marquee events-doc`), and a unit test fails when the two differ, so the
 * document cannot drift from the code.
 *
 * Invariants (unit-tested against the embedded descriptor set):
 *   1. Exactly one row per payload field of the Envelope's oneof.
 *   2. A row's type is "<domain>.<payload message name>"; its topic is one of
 *      the domain topics (lib/mq_kafka.h).
 *   3. The outbox takes an event's type and topic from its row
 *      (store/mq_outbox.c; a disagreement with what the handler gave is
 *      logged as an error), so what is published is what is documented.
 */
#ifndef MQ_EVENT_CATALOG_H
#define MQ_EVENT_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

/* The content-type header of every published event (with event-id,
 * event-type and schema-version). */
#define MQ_EVENT_CONTENT_TYPE "application/x-protobuf; messageType=marquee.events.v1.Envelope"

typedef struct mq_event_kind {
  int payload_case; /* the Envelope oneof field number */
  const char *type; /* "users.UserRegistered" */
  const char *topic;
  const char *key; /* what aggregate_id (the Kafka key) holds */
} mq_event_kind_t;

extern const mq_event_kind_t mq_event_kinds[];
extern const size_t mq_n_event_kinds;

/* The row of a payload case, or NULL. */
const mq_event_kind_t *mq_event_kind(int payload_case);

/* The generated part of docs/EVENTS.md (Markdown, malloc'ed; caller frees):
 * per topic, a table of event type, key, payload fields and description. */
char *mq_event_catalog_markdown(void);

/* The event types a webhook endpoint may subscribe to (NULL-terminated), and
 * whether `type` is one of them. */
extern const char *const mq_webhook_event_types[];
bool mq_webhook_event_type_ok(const char *type);

#endif
