/*
 * harness.h — what integration tests use to drive real processes: start
 * marquee-server / marquee-audit as children with a per-test MongoDB
 * database, read their READY line, stop them with a signal and collect the
 * exit status (under ASan a leak makes that status non-zero, so "exited 0"
 * also means "no leaks"); start a private FerretDB for outage tests; control
 * the shared stack's Kafka; mint access tokens; inspect MongoDB directly; GET
 * from the side HTTP port. Nothing here mocks MongoDB or Kafka.
 *
 * Environment (set by scripts/test.sh; defaults match scripts/stack.sh):
 *   MARQUEE_TEST_MONGO_URI     (mongodb://127.0.0.1:27017/)
 *   MARQUEE_TEST_KAFKA_BROKERS (127.0.0.1:9092)
 *   MARQUEE_STACK_DIR          (<source>/.stack)
 */
#ifndef MQ_TEST_HARNESS_H
#define MQ_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients/mq_client.h"
#include "marquee/events/v1/envelope.pb-c.h"

#define MQ_TEST_JWT_KEYS "itest:integration-test-secret-0123456789abcdef"
/* Ed25519 seed "0123456789abcdef0123456789abcdef", base64url: every test
 * server signs ticket codes with it, so two servers accept each other's. */
#define MQ_TEST_TICKET_KEYS "itest:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
/* The notifier's test key (lib/mq_seal.h): servers started here get its
 * public half as MARQUEE_NOTIFY_KEYS; tests open link tokens with it, as the
 * notifier will ("test-notifier-secret-key-0123456"). */
#define MQ_TEST_NOTIFY_SECRET_KEYS "itest:dGVzdC1ub3RpZmllci1zZWNyZXQta2V5LTAxMjM0NTY"

typedef struct mq_test_proc {
  pid_t pid;
  int out_fd;    /* child's stdout */
  char grpc[64]; /* "127.0.0.1:port" */
  char http[64];
  char db[64]; /* database the child uses */
} mq_test_proc_t;

const char *mq_test_mongo_uri(void);
const char *mq_test_kafka(void);
const char *mq_test_stack_dir(void);
/* A fresh database name for this process ("mqtest_<pid>_<n>"). */
void mq_test_new_db(char out[64]);

/* Starts marquee-server with test defaults (ports 0, diagnostics on, test
 * JWT keys, fast health probes, database `db` or a fresh one) plus `env`
 * overrides ("KEY=VALUE", NULL-terminated; later wins). An override
 * MARQUEE_TEST_STDERR=<file> sends the child's logs to that file. Waits up to 30 s for
 * READY. Returns 0 or -1 (child killed). */
int mq_test_server_start(mq_test_proc_t *p, const char *db, const char *const *env);
/* Starts marquee-notifier on database `db` (its own consumer group),
 * sending mail to the stack's mailpit and opening link tokens with the test
 * notifier key. */
int mq_test_notifier_start(mq_test_proc_t *p, const char *db, const char *const *env);
/* Starts marquee-webhooks on database `db` (its own consumer group), with
 * loopback endpoints allowed (MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8),
 * retries after 100 ms doubling, and a 2 s answer timeout. */
int mq_test_webhooks_start(mq_test_proc_t *p, const char *db, const char *const *env);
/* Starts marquee-indexer on database `db` (its own consumer group) keeping
 * the search index `index`; with `rebuild`, as `marquee-indexer --rebuild`. */
int mq_test_indexer_start(mq_test_proc_t *p, const char *db, const char *index, bool rebuild, const char *const *env);
/* The instant (unix ms) from which the indexer and analytics consumers this
 * test program starts handle messages: a minute before it first started one.
 * A test that puts messages on the shared topics itself may stamp them just
 * after it, so that later test programs' consumers pass over them. */
long long mq_test_since_ms(void);
/* Starts marquee-analytics on database `db` (its own consumer group); with
 * `rebuild`, as `marquee-analytics --rebuild`. */
int mq_test_analytics_start(mq_test_proc_t *p, const char *db, bool rebuild, const char *const *env);
/* The stack's mailpit: its HTTP API host:port (MARQUEE_STACK_MAILPIT, default
 * 127.0.0.1:8025) and its SMTP URL (MARQUEE_SMTP_URL, default smtp://127.0.0.1:1025). */
const char *mq_test_mailpit(void);
const char *mq_test_smtp_url(void);
/* Waits up to timeout_ms until mailpit holds at least `at_least` messages to
 * `to`; returns how many it holds (-1: mailpit did not answer) and, when
 * asked, the newest one's subject, text and HTML (malloc'ed; caller frees). */
/* Every message mailpit holds for `to`: their number (-1 when mailpit
 * cannot be read), and in *distinct the number of distinct Message-IDs. */
int mq_test_mail_ids(const char *to, int *distinct);
/* Commits, for consumer group `group`, the end of every partition of
 * `topics` (NULL-terminated): a consumer started in that group then reads
 * only what is produced from now on, not what other tests left. */
bool mq_test_group_at_end(const char *group, const char *const *topics);
/* Puts an envelope on the bus as the relay would (same id again: a duplicate). */
bool mq_test_produce(const char *topic, const char *key, const Marquee__Events__V1__Envelope *env);
int mq_test_mail_wait(const char *to, int at_least, int timeout_ms, char **subject, char **text, char **html);
/* The same against the mailpit API at `api` (host:port). */
int mq_test_mail_wait_at(const char *api, const char *to, int at_least, int timeout_ms, char **subject, char **text,
                         char **html);
/* Starts marquee-audit on database `db`. */
int mq_test_audit_start(mq_test_proc_t *p, const char *db, const char *const *env);
/* Sends `sig`, waits up to timeout_ms, then SIGKILL. Returns the exit code,
 * or 128+signal if it died by a signal, or -1 on timeout. */
int mq_test_proc_stop(mq_test_proc_t *p, int sig, int timeout_ms);

/* A private FerretDB on `port` with data under `dir` (created). */
int mq_test_ferret_start(mq_test_proc_t *p, int port, const char *dir);
/* Runs scripts/stack.sh ACTION PART; returns its exit status. */
int mq_test_stack(const char *action, const char *part);
/* Starts the local identity providers (scripts/oidc-mock/server.mjs, the
 * npm oauth2-mock-server installed by scripts/stack.sh) with `extra_args`;
 * once listening they write {"google": "http://127.0.0.1:PORT", …} to
 * `out_json`. Returns 0 or -1. */
int mq_test_oidc_start(mq_test_proc_t *p, const char *out_json, const char *const *extra_args);

int mq_test_free_port(void);
mq_client_t *mq_test_client(const mq_test_proc_t *server);
/* Access token for `sub` with MQ_ROLE_* bits, 10 minutes. Caller frees. */
char *mq_test_token(const char *sub, uint32_t roles);

/* Counts documents matching `filter_json` in db.coll (uri NULL = test default). -1 on error. */
int64_t mq_test_count(const char *uri, const char *db, const char *coll, const char *filter_json);
void mq_test_drop_db(const char *uri, const char *db);
/* Binary field `field` of the last document the store returns for
 * `filter_json` (malloc'ed copy in *out, length in *len); false if none.
 * The order is the store's: use it where one document matches. */
bool mq_test_find_binary(const char *db, const char *coll, const char *filter_json, const char *field, void **out,
                         size_t *len);
/* fn(data, len, arg) for binary field `field` of every document matching
 * `filter_json`, until it returns false. */
void mq_test_each_binary(const char *db, const char *coll, const char *filter_json, const char *field,
                         bool (*fn)(const void *data, size_t len, void *arg), void *arg);
/* updateMany(filter, update) with extended-JSON documents; matched count or -1. */
/* insertOne(doc) (extended JSON); false if it failed. To build the state a
 * crash leaves behind, in the real store. */
bool mq_test_insert(const char *db, const char *coll, const char *doc_json);
int64_t mq_test_update(const char *db, const char *coll, const char *filter_json, const char *update_json);
/* GET http://hostport/path; returns the body (caller frees) and *status. */
char *mq_test_http_get(const char *hostport, const char *path, int *status);
/* The same with one extra request header line ("Name: value"), or NULL. */
char *mq_test_http_get_with(const char *hostport, const char *path, const char *header, int *status);
/* The value of the metric line `name` (labels included, e.g.
 * marquee_cache_hits_total{cache="events"}) on the server's /metrics; -1 if absent. */
/* POST `body` (JSON) to http://hostport/path with one extra header line (or
 * NULL); the response body (caller frees) and *status. */
char *mq_test_http_post(const char *hostport, const char *path, const char *header, const char *body, int *status);
/* stripe-mock's base URL (MARQUEE_STACK_STRIPE, else http://127.0.0.1:12111). */
const char *mq_test_stripe(void);
double mq_test_metric(const mq_test_proc_t *p, const char *name);
/* Waits until that metric is >= at_least; false after timeout_ms. */
bool mq_test_wait_metric(const mq_test_proc_t *p, const char *name, double at_least, int timeout_ms);

int64_t mq_test_now_ms(void);
/* The link token sealed in an event (key id + box), opened with the test
 * notifier key into token[n]; false if there is none or it does not open. */
bool mq_test_unseal(const char *key_id, const void *box, size_t len, char *token, size_t n);
/* The token of invitation `invitation_id` into `org_id`, read as the
 * notifier will: from its OrganizationMemberInvited event in db's audit log
 * (needs a marquee-audit on db; waits up to 60 s). */
bool mq_test_invitation_token(const char *db, const char *org_id, const char *invitation_id, char *token, size_t n);
void mq_test_sleep_ms(int ms);
/* Two servers on one fresh database with `env`, a client to each, once both
 * hear the other's writes (their caches are live). 0, or -1 when they do
 * not start or do not go live within 20 s. */
int mq_test_pair_start(mq_test_proc_t *a_srv, mq_test_proc_t *b_srv, mq_client_t **a, mq_client_t **b,
                       const char *const *env);
/* Closes both clients, stops both servers (SIGTERM, 20 s) and drops the
 * database; 0 when both exited cleanly. */
int mq_test_pair_stop(mq_test_proc_t *a_srv, mq_test_proc_t *b_srv, mq_client_t *a, mq_client_t *b);
/* The whole file, NUL-terminated (caller frees), or NULL if unreadable. */
char *mq_test_slurp(const char *path);

#endif
