/*
 * test_no_secret_on_bus.c — no usable link token travels on Kafka or rests
 * in the audit log (link tokens are sealed to the notifier: lib/mq_seal.h).
 *
 *  - A full identity journey (sign-up, e-mail verification, password reset,
 *    an organization invitation) on a real server, with marquee-audit
 *    recording every event. Then every message of every domain topic since
 *    the test began, and every audit record of its database, are searched
 *    for anything shaped like a Marquee bearer token (mq?_ + 40 or more
 *    base64url characters); each one found is tried against VerifyEmail,
 *    ResetPassword and AcceptInvitation, and none may be found at all.
 *    The control: the sealed tokens, opened with the notifier's (test) key,
 *    have exactly that shape and do work — so the search would have found
 *    them in clear.
 *  - The scrub: an audit record written before sealing (its token in clear
 *    in a field the schema now reserves) is rewritten without it when
 *    marquee-audit starts, marked scrubbed, and left alone by the next start.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <mongoc/mongoc.h>

#include "core/mq_ids.h"
#include "core/mq_principal.h"
#include "fixtures.h"
#include "harness.h"
#include "lib/mq_kafka.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define PASSWORD "correct horse battery staple"

typedef struct {
  char *b;
  size_t n, cap;
} buf_t;

static void buf_add(buf_t *b, const void *p, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->b = realloc(b->b, b->cap);
    assert_non_null(b->b);
  }
  memcpy(b->b + b->n, p, n);
  b->n += n;
  b->b[b->n] = '\0';
}

static bool b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Every token-shaped string in b[0..n): "mq" + a letter + "_" + at least 40
 * base64url characters, copied into out[] (at most max). */
static int find_tokens(const char *b, size_t n, char out[][96], int max) {
  int found = 0;
  for (size_t i = 0; i + 4 < n && found < max; i++) {
    if (b[i] != 'm' || b[i + 1] != 'q' || !(b[i + 2] >= 'a' && b[i + 2] <= 'z') || b[i + 3] != '_') continue;
    size_t j = i + 4;
    while (j < n && b64url(b[j]) && j - i < 90) j++;
    if (j - i - 4 < 40) continue;
    snprintf(out[found++], 96, "%.*s", (int)(j - i), b + i);
    i = j;
  }
  return found;
}

/* Reads every message (key, headers, value) of `topic` produced since
 * since_ms into b, through kcat. */
static void read_topic(buf_t *b, const char *topic, long long since_ms) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "kcat -C -b %s -t %s -o s@%lld -e -q -f '%%k %%h %%s\\n' 2>/dev/null", mq_test_kafka(),
           topic, since_ms);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  char chunk[65536];
  size_t r;
  while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(b, chunk, r);
  pclose(f);
}

/* Every envelope in db's audit log, appended to b; how many records. */
static int read_audit(buf_t *b, const char *db) {
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "audit_log");
  bson_t filter = BSON_INITIALIZER;
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
  const bson_t *doc;
  int n = 0;
  while (mongoc_cursor_next(cur, &doc)) {
    size_t len;
    char *json = bson_as_relaxed_extended_json(doc, &len); /* every field, text and binary (base64) */
    buf_add(b, json, len);
    bson_free(json);
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "envelope") && BSON_ITER_HOLDS_BINARY(&it)) {
      uint32_t bl;
      const uint8_t *data;
      bson_iter_binary(&it, NULL, &bl, &data);
      buf_add(b, data, bl);
    }
    n++;
  }
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return n;
}

/* The sealed token of the newest event of `type` about `aggregate`,
 * opened with the notifier's test key. */
static bool sealed_token(const char *db, const char *aggregate, const char *type, char *token, size_t n) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"%s\"}", aggregate, type);
  void *data = NULL;
  size_t len = 0;
  int64_t until = mq_test_now_ms() + 60000;
  while (!mq_test_find_binary(db, "audit_log", filter, "envelope", &data, &len) && mq_test_now_ms() < until)
    mq_test_sleep_ms(200);
  if (!data) return false;
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  free(data);
  if (!ev) return false;
  const Marquee__Events__V1__SealedSecret *s = NULL;
  if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED)
    s = ev->email_verification_requested->sealed_token;
  else if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED)
    s = ev->password_reset_requested->sealed_token;
  else if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED)
    s = ev->organization_member_invited->sealed_token;
  bool ok = s && mq_test_unseal(s->key_id, s->box.data, s->box.len, token, n);
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
  return ok;
}

/* True if `token` works as any of the three link tokens. */
static bool token_works(mq_client_t *cl, const char *token, const char *bearer) {
  mq_error_t err;
  Marquee__Identity__V1__VerifyEmailRequest vq = MARQUEE__IDENTITY__V1__VERIFY_EMAIL_REQUEST__INIT;
  vq.token = (char *)token;
  Marquee__Identity__V1__VerifyEmailResponse *vr = NULL;
  if (marquee__identity__v1__account_service__verify_email__call(cl, &vq, &vr, NULL, &err) == MQ_OK) {
    marquee__identity__v1__verify_email_response__free_unpacked(vr, NULL);
    return true;
  }
  Marquee__Identity__V1__ResetPasswordRequest rq = MARQUEE__IDENTITY__V1__RESET_PASSWORD_REQUEST__INIT;
  rq.token = (char *)token;
  rq.new_password = (char *)"a new passphrase nobody else knows";
  Marquee__Identity__V1__ResetPasswordResponse *rr = NULL;
  if (marquee__identity__v1__account_service__reset_password__call(cl, &rq, &rr, NULL, &err) == MQ_OK) {
    marquee__identity__v1__reset_password_response__free_unpacked(rr, NULL);
    return true;
  }
  Marquee__Identity__V1__AcceptInvitationRequest aq = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  aq.token = (char *)token;
  Marquee__Identity__V1__Member *m = NULL;
  mq_call_opts_t o = {.bearer_token = bearer};
  if (marquee__identity__v1__organization_service__accept_invitation__call(cl, &aq, &m, &o, &err) == MQ_OK) {
    marquee__identity__v1__member__free_unpacked(m, NULL);
    return true;
  }
  return false;
}

static void test_identity_journey_leaves_no_token_on_the_bus(void **state) {
  (void)state;
  long long since = (long long)time(NULL) * 1000 - 1000; /* wall clock: Kafka timestamps */
  mq_test_proc_t srv, audit;
  assert_int_equal(mq_test_server_start(&srv, NULL, NULL), 0);
  assert_int_equal(mq_test_audit_start(&audit, srv.db, NULL), 0);
  mq_client_t *cl = mq_test_client(&srv);
  mq_error_t err;

  /* sign-up, verification, reset */
  char uid[64], email[96], bob_id[64], bob_mail[96];
  char *tok = mq_fx_user(cl, "bus", PASSWORD, uid, sizeof uid, email, sizeof email);
  char *bob = mq_fx_user(cl, "bus-bob", PASSWORD, bob_id, sizeof bob_id, bob_mail, sizeof bob_mail);
  assert_non_null(tok);
  assert_non_null(bob);
  mq_call_opts_t o = {.bearer_token = tok};
  Marquee__Identity__V1__RequestEmailVerificationRequest vq =
      MARQUEE__IDENTITY__V1__REQUEST_EMAIL_VERIFICATION_REQUEST__INIT;
  Marquee__Identity__V1__RequestEmailVerificationResponse *vr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__request_email_verification__call(cl, &vq, &vr, &o, &err),
                   MQ_OK);
  marquee__identity__v1__request_email_verification_response__free_unpacked(vr, NULL);
  Marquee__Identity__V1__RequestPasswordResetRequest pq = MARQUEE__IDENTITY__V1__REQUEST_PASSWORD_RESET_REQUEST__INIT;
  pq.email = email;
  Marquee__Identity__V1__RequestPasswordResetResponse *pr = NULL;
  assert_int_equal(marquee__identity__v1__account_service__request_password_reset__call(cl, &pq, &pr, NULL, &err),
                   MQ_OK);
  marquee__identity__v1__request_password_reset_response__free_unpacked(pr, NULL);

  /* an organization and an invitation */
  char *organizer = mq_test_token(uid, MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  char org[40];
  mq_fx_org(cl, organizer, "bus", org);
  char invitation[40];
  mq_fx_invite(cl, organizer, org, bob_mail, MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER, invitation);

  /* the events are recorded: their sealed tokens open with the notifier's key */
  char verify[96], reset[96], invite[96];
  assert_true(sealed_token(srv.db, uid, "users.EmailVerificationRequested", verify, sizeof verify));
  assert_true(sealed_token(srv.db, uid, "users.PasswordResetRequested", reset, sizeof reset));
  assert_true(sealed_token(srv.db, org, "organizations.OrganizationMemberInvited", invite, sizeof invite));

  /* everything on the bus and in the audit log: nothing token-shaped */
  buf_t all = {0};
  for (int i = 0; mq_kafka_domain_topics[i]; i++) read_topic(&all, mq_kafka_domain_topics[i], since);
  size_t from_kafka = all.n;
  int records = read_audit(&all, srv.db);
  fprintf(stderr, "searched %zu bytes of Kafka messages and %d audit records (%zu bytes)\n", from_kafka, records,
          all.n - from_kafka);
  assert_true(from_kafka > 0 && records >= 6);
  char found[32][96];
  int n = find_tokens(all.b, all.n, found, 32);
  for (int i = 0; i < n; i++) {
    fprintf(stderr, "token-shaped string on the bus: %.8s… (works: %s)\n", found[i],
            token_works(cl, found[i], bob) ? "YES" : "no");
  }
  assert_int_equal(n, 0);

  /* the control: the opened tokens have the shape searched for, and work */
  char probe[200];
  char shapes[3][96];
  snprintf(probe, sizeof probe, "x %s y %s z %s.", verify, reset, invite);
  assert_int_equal(find_tokens(probe, strlen(probe), shapes, 3), 3);
  assert_true(!strncmp(verify, "mqv_", 4) && !strncmp(reset, "mqp_", 4) && !strncmp(invite, "mqi_", 4));
  assert_true(token_works(cl, verify, bob));
  assert_true(token_works(cl, reset, bob));
  assert_true(token_works(cl, invite, bob));

  free(all.b);
  free(tok);
  free(bob);
  free(organizer);
  mq_client_destroy(cl);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  assert_int_equal(mq_test_proc_stop(&srv, SIGTERM, 20000), 0);
  mq_test_drop_db(NULL, srv.db);
}

/* An envelope as the server wrote it before sealing: the reset token in
 * clear in field 3 of PasswordResetRequested (an unknown field to today's
 * schema, so it is packed as it was). */
static uint8_t *old_envelope(const char *event_id, const char *user_id, const char *clear, size_t *len) {
  Marquee__Events__V1__PasswordResetRequested pr = MARQUEE__EVENTS__V1__PASSWORD_RESET_REQUESTED__INIT;
  pr.user_id = (char *)user_id;
  pr.email = (char *)"old@example.com";
  uint8_t field[128]; /* an unknown field's data is its encoded value: here the length, then the bytes */
  size_t cl = strlen(clear);
  assert_true(cl < 127);
  field[0] = (uint8_t)cl;
  memcpy(field + 1, clear, cl);
  ProtobufCMessageUnknownField uf = {
      .tag = 3, .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, .len = cl + 1, .data = field};
  pr.base.n_unknown_fields = 1;
  pr.base.unknown_fields = &uf;
  Marquee__Events__V1__Envelope ev = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
  ev.event_id = (char *)event_id;
  ev.type = (char *)"users.PasswordResetRequested";
  ev.aggregate_id = (char *)user_id;
  ev.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED;
  ev.password_reset_requested = &pr;
  *len = marquee__events__v1__envelope__get_packed_size(&ev);
  uint8_t *out = malloc(*len);
  marquee__events__v1__envelope__pack(&ev, out);
  return out;
}

static void insert_record(const char *db, const char *id, const char *type, const uint8_t *env, size_t len) {
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "audit_log");
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "type", type);
  BSON_APPEND_BINARY(&doc, "envelope", BSON_SUBTYPE_BINARY, env, (uint32_t)len);
  bson_error_t be;
  assert_true(mongoc_collection_insert_one(coll, &doc, NULL, NULL, &be));
  bson_destroy(&doc);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
}

static void test_old_audit_records_are_scrubbed_once(void **state) {
  (void)state;
  char db[64], id[37], other[37], user[37];
  mq_test_new_db(db);
  mq_uuid_v4(id);
  mq_uuid_v4(other);
  mq_uuid_v4(user);
  const char *clear = "mqp_OLDxCLEARxTOKENxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  size_t len, len2;
  uint8_t *env = old_envelope(id, user, clear, &len);
  assert_non_null(memmem(env, len, clear, strlen(clear))); /* the old shape really holds it, */
  Marquee__Events__V1__Envelope *old = marquee__events__v1__envelope__unpack(NULL, len, env);
  assert_non_null(old); /* and decodes with today's schema (the token as an unknown field) */
  assert_int_equal(old->password_reset_requested->base.n_unknown_fields, 1);
  marquee__events__v1__envelope__free_unpacked(old, NULL);
  insert_record(db, id, "users.PasswordResetRequested", env, len);
  uint8_t *env2 = old_envelope(other, user, clear, &len2); /* a type that carries no link token */
  insert_record(db, other, "system.NoteRecorded", env2, len2);

  mq_test_proc_t audit;
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0); /* READY comes after the scrub */
  char filter[160];
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\", \"scrubbed\": true}", id);
  assert_int_equal(mq_test_count(NULL, db, "audit_log", filter), 1);
  void *data = NULL;
  size_t n = 0;
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\"}", id);
  assert_true(mq_test_find_binary(db, "audit_log", filter, "envelope", &data, &n));
  assert_null(memmem(data, n, "mqp_", 4));
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, n, data);
  assert_non_null(ev);
  assert_string_equal(ev->password_reset_requested->user_id, user); /* the rest is kept */
  assert_string_equal(ev->password_reset_requested->email, "old@example.com");
  marquee__events__v1__envelope__free_unpacked(ev, NULL);
  /* the other type is not touched */
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\", \"scrubbed\": {\"$exists\": false}}", other);
  assert_int_equal(mq_test_count(NULL, db, "audit_log", filter), 1);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);

  /* a second start leaves the scrubbed record as it is */
  assert_int_equal(mq_test_audit_start(&audit, db, NULL), 0);
  void *again = NULL;
  size_t n2 = 0;
  snprintf(filter, sizeof filter, "{\"_id\": \"%s\"}", id);
  assert_true(mq_test_find_binary(db, "audit_log", filter, "envelope", &again, &n2));
  assert_true(n2 == n && memcmp(again, data, n) == 0);
  assert_int_equal(mq_test_proc_stop(&audit, SIGTERM, 20000), 0);
  free(again);
  free(data);
  free(env);
  free(env2);
  mq_test_drop_db(NULL, db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_journey_leaves_no_token_on_the_bus),
      cmocka_unit_test(test_old_audit_records_are_scrubbed_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
