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
 *
 * Link tokens travel sealed to the notifier (lib/mq_seal.h). Records made
 * before that hold them in clear, in a payload field now reserved: at every
 * start the consumer rewrites each such record's envelope without the
 * fields its schema does not know and marks it {scrubbed: true}, before it
 * consumes anything (idempotent: marked records are not read again; a
 * record whose envelope does not decode loses its envelope).
 */
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the scrub of clear link tokens (see the head of the file) ---------------- */

static const char *const token_types[] = {"users.EmailVerificationRequested", "users.PasswordResetRequested",
                                          "organizations.OrganizationMemberInvited"};

typedef struct {
  mq_store_t *store;
  size_t scrubbed, failed;
} scrub_t;

static bool g_scrubbed; /* the consumer thread's: set once every old record is scrubbed */

static void drop_unknown_fields(ProtobufCMessage *m) {
  if (!m) return;
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    explicit_bzero(m->unknown_fields[i].data, m->unknown_fields[i].len);
    free(m->unknown_fields[i].data);
  }
  free(m->unknown_fields);
  m->unknown_fields = NULL;
  m->n_unknown_fields = 0;
}

static bool scrub_one(const bson_t *doc, void *arg) {
  scrub_t *x = arg;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) return true;
  const bson_value_t *id = bson_iter_value(&it);
  const uint8_t *data = NULL;
  uint32_t len = 0;
  if (bson_iter_init_find(&it, doc, "envelope") && BSON_ITER_HOLDS_BINARY(&it))
    bson_iter_binary(&it, NULL, &len, &data);
  Marquee__Events__V1__Envelope *ev = data ? marquee__events__v1__envelope__unpack(NULL, len, data) : NULL;
  bson_t update = BSON_INITIALIZER, set;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  BSON_APPEND_BOOL(&set, "scrubbed", true);
  uint8_t *packed = NULL;
  if (ev) {
    drop_unknown_fields(&ev->base);
    switch (ev->payload_case) {
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED:
        drop_unknown_fields(&ev->email_verification_requested->base);
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED:
        drop_unknown_fields(&ev->password_reset_requested->base);
        break;
      case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED:
        drop_unknown_fields(&ev->organization_member_invited->base);
        break;
      default:
        break;
    }
    size_t n = marquee__events__v1__envelope__get_packed_size(ev);
    packed = malloc(n ? n : 1);
    if (packed) marquee__events__v1__envelope__pack(ev, packed);
    if (packed) BSON_APPEND_BINARY(&set, "envelope", BSON_SUBTYPE_BINARY, packed, (uint32_t)n);
  }
  bson_append_document_end(&update, &set);
  if (!ev || !packed) {
    bson_t unset;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
    BSON_APPEND_UTF8(&unset, "envelope", "");
    bson_append_document_end(&update, &unset);
  }
  mq_error_t err;
  if (mq_store_update_by_id(x->store, AUDIT_COLLECTION, id, &update, &err) == MQ_OK)
    x->scrubbed++;
  else
    x->failed++;
  bson_destroy(&update);
  free(packed);
  if (ev) marquee__events__v1__envelope__free_unpacked(ev, NULL);
  return true;
}

/* Returns MQ_OK once every unscrubbed record of token_types is scrubbed. */
static mq_code_t scrub_clear_tokens(mq_store_t *store, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, in, types, ex;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "type", &in);
  BSON_APPEND_ARRAY_BEGIN(&in, "$in", &types);
  for (size_t i = 0; i < sizeof token_types / sizeof *token_types; i++) {
    char k[8];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_UTF8(&types, k, token_types[i]);
  }
  bson_append_array_end(&in, &types);
  bson_append_document_end(&filter, &in);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "scrubbed", &ex);
  BSON_APPEND_BOOL(&ex, "$exists", false);
  bson_append_document_end(&filter, &ex);
  scrub_t x = {store, 0, 0};
  mq_code_t rc = mq_store_find_each(store, AUDIT_COLLECTION, &filter, NULL, scrub_one, &x, err);
  bson_destroy(&filter);
  if (rc == MQ_OK && x.failed) rc = mq_error_set(err, MQ_STORE_UNAVAILABLE, NULL, "%zu records not scrubbed", x.failed);
  if (x.scrubbed) mq_log(MQ_LOG_INFO, "audit.scrubbed", "%zu records had a link token in clear; scrubbed", x.scrubbed);
  return rc;
}

static mq_code_t audit_record(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                              mq_error_t *err) {
  mq_store_t *store = ctx;
  if (!g_scrubbed) { /* the start-up scrub could not run: first this (transient: retried) */
    mq_code_t src = scrub_clear_tokens(store, err); /* a store outage: transient, the loop retries */
    if (src != MQ_OK) return src;
    g_scrubbed = true;
  }
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
  /* no record with a clear link token outlives a start: scrubbed now, or
   * (store down) before the first event is recorded */
  if (scrub_clear_tokens(store, &err) == MQ_OK)
    g_scrubbed = true;
  else
    mq_log(MQ_LOG_WARN, "audit.scrub", "%s; retried before the first event", err.message);
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
