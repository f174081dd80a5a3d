/*
 * mq_consumer.h — the loop every Marquee consumer process shares
 * (DESIGN.md §5): a Kafka consumer group, a table routing event types to
 * handlers, offsets stored only after a handler succeeded, dedupe by event
 * id, a dead-letter topic, graceful shutdown on SIGTERM/SIGINT.
 *
 * Per message:
 *   1. the value must decode as marquee.events.v1.Envelope, else it is
 *      poison: straight to the dead-letter topic;
 *   2. no route for its type → skipped (offset stored);
 *   3. with `dedupe`, an event already processed by this group is skipped
 *      (a record <group>/<event id> in `consumer_processed`, written after
 *      success);
 *   4. the handler runs. Transient failures (UNAVAILABLE, STORE_UNAVAILABLE,
 *      DEADLINE_EXCEEDED, ABORTED) retry with backoff for as long as it takes —
 *      a database outage must not dead-letter good events. INVALID_ARGUMENT
 *      and FAILED_PRECONDITION say the event itself cannot be handled (it
 *      would fail the same way every time): dead-lettered at once. Other
 *      failures retry up to MARQUEE_CONSUMER_MAX_ATTEMPTS, then the message
 *      goes to marquee.dlq.<name> with headers naming the source and the
 *      error;
 *   5. the offset is stored (committed by librdkafka's auto-commit); on
 *      shutdown stored offsets are committed before exit.
 * A crash between handler success and commit redelivers the event: handlers
 * must be idempotent or rely on dedupe (at least once, effectively once).
 *
 * Each consumer process serves /metrics and /healthz on its own HTTP port
 * (MARQUEE_CONSUMER_HTTP_LISTEN; lib/mq_http.h) and prints
 * "READY consumer=<name> http=<host:port>" once subscribed:
 *   marquee_consumer_lag{consumer,topic}  messages on the topic's assigned
 *       partitions not yet handled (high watermark minus the next offset to
 *       handle; the committed offset for a partition not yet read);
 *   marquee_consumer_events_total{consumer,outcome}  outcome = handled,
 *       skipped (no route, or older than SKIP_BEFORE), duplicate (dedupe),
 *       dead_lettered;
 *   marquee_consumer_retries_total{consumer}  handler attempts that failed
 *       and were retried.
 */
#ifndef MQ_CONSUMER_H
#define MQ_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_config.h"
#include "core/mq_error.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "store/mq_store.h"

typedef struct mq_consumer_msg {
  const char *topic;
  int32_t partition;
  int64_t offset;
  const void *value; /* the serialized envelope */
  size_t value_len;
} mq_consumer_msg_t;

typedef mq_code_t (*mq_event_fn)(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                                 mq_error_t *err);

typedef struct mq_event_route {
  const char *type; /* envelope type, or "*" for every event */
  mq_event_fn fn;
} mq_event_route_t;

typedef struct mq_consumer_opts {
  const mq_config_t *cfg;
  const char *name;          /* "audit": group marquee-audit, DLQ marquee.dlq.audit */
  const char *const *topics; /* NULL-terminated */
  const mq_event_route_t *routes;
  size_t n_routes;
  void *ctx;         /* passed to handlers */
  mq_store_t *store; /* for dedupe records; may be NULL when !dedupe */
  bool dedupe;
  /* Optional: a consumer that keeps its own offsets beside its data (the
   * search indexer) names where each assigned partition resumes: the next
   * offset, or -1 for the partition's beginning. The group's committed
   * offsets are then ignored on assignment. Runs on the loop's thread. */
  int64_t (*start_offset)(void *ctx, const char *topic, int32_t partition);
  /* Optional: called when a poll found no message (about every 200 ms while
   * idle), with caught_up true when every assigned partition has been read
   * to its high watermark as last reported by the broker. */
  void (*idle)(void *ctx, bool caught_up);
} mq_consumer_opts_t;

/* Runs until SIGTERM/SIGINT (or mq_consumer_stop). Returns 0 after a clean
 * shutdown, 1 when the consumer could not be created. */
int mq_consumer_run(const mq_consumer_opts_t *opts);
/* Asks a running loop to stop (signal-safe). */
void mq_consumer_stop(void);
/* True once a stop was asked (a handler waiting on the store gives up). */
bool mq_consumer_stopping(void);
/* Transient = retry without counting an attempt. Exposed for tests. */
bool mq_consumer_is_transient(mq_code_t code);
/* Permanent = the event cannot be handled: dead-letter it without retrying. */
bool mq_consumer_is_permanent(mq_code_t code);
/* The route for `type` ("*" rows match anything; exact rows win). */
const mq_event_route_t *mq_consumer_route(const mq_event_route_t *routes, size_t n, const char *type);

#endif
