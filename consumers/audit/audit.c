/*
 * audit.c — marquee-audit, the audit-log consumer: records every domain
 * event of every domain topic in the `audit_log` collection, one document per
 * event keyed by event id. The insert is its own dedupe (a redelivered event
 * hits the unique _id and counts as done), so the loop's generic dedupe is
 * off. MongoDB outages are transient: the loop retries until it is back.
 *
 * Document: {_id: event id, type, aggregate_id, actor, trace_id, request_id,
 *            occurred_at, recorded_at, topic, partition, offset,
 *            envelope: binary (the serialized event, for replay)}.
 */
#include <stdio.h>
#include <string.h>

#include "consumers/mq_consumer.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "lib/mq_kafka.h"
#include "store/mq_bson.h"

extern char **environ;

#define AUDIT_COLLECTION "audit_log"

static const mq_index_spec_t audit_indexes[] = {
    {AUDIT_COLLECTION, "aggregate_time", "{\"aggregate_id\": 1, \"occurred_at\": 1}", false},
    {AUDIT_COLLECTION, "type_time", "{\"type\": 1, \"occurred_at\": 1}", false},
    {AUDIT_COLLECTION, "actor_time", "{\"actor\": 1, \"occurred_at\": 1}", false},
};

static mq_code_t audit_record(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                              mq_error_t *err) {
  mq_store_t *store = ctx;
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", ev->event_id);
  BSON_APPEND_UTF8(&doc, "type", ev->type ? ev->type : "");
  BSON_APPEND_UTF8(&doc, "aggregate_id", ev->aggregate_id ? ev->aggregate_id : "");
  BSON_APPEND_UTF8(&doc, "actor", ev->actor ? ev->actor : "");
  BSON_APPEND_UTF8(&doc, "trace_id", ev->trace_id ? ev->trace_id : "");
  BSON_APPEND_UTF8(&doc, "request_id", ev->request_id ? ev->request_id : "");
  BSON_APPEND_DATE_TIME(&doc, "occurred_at", mq_pb_timestamp_ms(ev->occurred_at));
  BSON_APPEND_DATE_TIME(&doc, "recorded_at", mq_now_unix_ms());
  BSON_APPEND_UTF8(&doc, "topic", msg->topic);
  BSON_APPEND_INT32(&doc, "partition", msg->partition);
  BSON_APPEND_INT64(&doc, "offset", msg->offset);
  BSON_APPEND_BINARY(&doc, "envelope", BSON_SUBTYPE_BINARY, msg->value, (uint32_t)msg->value_len);
  mq_code_t rc = mq_store_insert_decision(store, AUDIT_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc == MQ_ALREADY_EXISTS ? MQ_OK : rc; /* redelivery: already recorded */
}

static const mq_event_route_t routes[] = {
    {"*", audit_record},
};

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--version")) {
    printf("marquee-audit %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
    return 0;
  }
  mq_config_t cfg;
  mq_error_t err;
  if (!mq_config_start("marquee-audit", &cfg, environ)) return 2;
  mq_store_t *store = NULL;
  int rc = 1;
  if (mq_store_open(cfg.mongo_uri, cfg.mongo_db, (uint32_t)cfg.mongo_pool_max, &store, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "audit.start", "%s: %s", err.field, err.message);
    goto cleanup;
  }
  /* Indexes: retried by the first successful insert path too, but try now. */
  if (mq_store_ensure_indexes(store, audit_indexes, sizeof audit_indexes / sizeof *audit_indexes, &err) != MQ_OK)
    mq_log(MQ_LOG_WARN, "audit.indexes", "could not create indexes yet (%s); continuing", err.message);
  mq_consumer_opts_t o = {.cfg = &cfg,
                          .name = "audit",
                          .topics = mq_kafka_domain_topics,
                          .routes = routes,
                          .n_routes = sizeof routes / sizeof *routes,
                          .ctx = store,
                          .store = store,
                          .dedupe = false};
  rc = mq_consumer_run(&o); /* prints READY once subscribed */
cleanup:
  mq_store_close(store);
  mq_config_free(&cfg);
  mq_log_stop();
  return rc;
}
