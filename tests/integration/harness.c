/*
 * harness.c — see harness.h. Children inherit stderr (their JSON logs land
 * in the ctest log) and the sanitizer options; stdout is a pipe we read the
 * READY line from.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handlers/mq_call.h"
#include "lib/mq_jwt.h"
#include "lib/mq_seal.h"
#include "marquee/events/v1/envelope.pb-c.h"

extern char **environ;

int64_t mq_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mq_test_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static const char *env_or(const char *k, const char *def) {
  const char *v = getenv(k);
  return v && *v ? v : def;
}

const char *mq_test_mongo_uri(void) {
  return env_or("MARQUEE_TEST_MONGO_URI", "mongodb://127.0.0.1:27017/");
}
const char *mq_test_kafka(void) {
  return env_or("MARQUEE_TEST_KAFKA_BROKERS", "127.0.0.1:9092");
}
const char *mq_test_stack_dir(void) {
  return env_or("MARQUEE_STACK_DIR", MQ_TEST_SOURCE_DIR "/.stack");
}

void mq_test_new_db(char out[64]) {
  static int n;
  snprintf(out, 64, "mqtest_%d_%d", (int)getpid(), ++n);
}

/* realloc that aborts on failure (tests have no way to go on without memory). */
static void *grow(void *p, size_t n) {
  void *np = realloc(p, n);
  if (!np) abort();
  return np;
}

/* Builds the child environment: ours minus MARQUEE_* (except stack/test
 * keys), then `defaults`, then `extra`. Returns a malloc'ed array of strdup'ed strings. */
static char **child_env(const char *const *defaults, const char *const *extra) {
  size_t n = 0, cap = 64;
  char **env = malloc(cap * sizeof *env);
  for (char **e = environ; *e; e++) {
    if (!strncmp(*e, "MARQUEE_", 8)) continue;
    if (n + 1 >= cap) env = grow(env, (cap *= 2) * sizeof *env);
    env[n++] = strdup(*e);
  }
  for (int pass = 0; pass < 2; pass++) {
    const char *const *src = pass ? extra : defaults;
    for (; src && *src; src++) {
      if (n + 1 >= cap) env = grow(env, (cap *= 2) * sizeof *env);
      env[n++] = strdup(*src);
    }
  }
  env[n] = NULL;
  return env;
}

static void free_env(char **env) {
  for (char **e = env; *e; e++) free(*e);
  free(env);
}

/* Every child still running when the test program exits (a failed assertion
 * longjmps past the test's own cleanup) is killed, so no process outlives it. */
#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void kill_children(void) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = 0;
    }
}

static void track_child(pid_t pid, bool add) {
  static bool registered;
  if (!registered) {
    atexit(kill_children);
    registered = true;
  }
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (add ? children[i] == 0 : children[i] == pid) {
      children[i] = add ? pid : 0;
      return;
    }
}

static int spawn(mq_test_proc_t *p, const char *path, char *const argv[], char **env) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* MARQUEE_TEST_STDERR=<file> in the child's environment captures its logs */
    for (char **e = env; *e; e++)
      if (!strncmp(*e, "MARQUEE_TEST_STDERR=", 20)) {
        int fd = open(*e + 20, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, STDERR_FILENO);
      }
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execve(path, argv, env);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  track_child(pid, true);
  p->pid = pid;
  p->out_fd = fds[0];
  return 0;
}

/* Reads stdout until a line starting with "READY" (parsed) or timeout. */
static int wait_ready(mq_test_proc_t *p, int timeout_ms) {
  char buf[1024];
  size_t len = 0;
  int64_t until = mq_test_now_ms() + timeout_ms;
  while (mq_test_now_ms() < until) {
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    ssize_t r = read(p->out_fd, buf + len, sizeof buf - 1 - len);
    if (r <= 0) return -1; /* child exited */
    len += (size_t)r;
    buf[len] = '\0';
    char *line = strstr(buf, "READY");
    if (line && strchr(line, '\n')) {
      char *g = strstr(line, "grpc="), *h = strstr(line, "http=");
      if (g) sscanf(g + 5, "%63s", p->grpc);
      if (h) sscanf(h + 5, "%63s", p->http);
      return 0;
    }
    if (len == sizeof buf - 1) len = 0;
  }
  return -1;
}

/* Starts BIN_DIR/<binary> with `defaults` then `env`, waits for READY. */
static int start_child_arg(mq_test_proc_t *p, const char *binary, const char *arg, const char *const *defaults,
                           const char *const *env) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", MQ_TEST_BIN_DIR, binary);
  char **e = child_env(defaults, env);
  char *argv[] = {path, (char *)arg, NULL};
  int rc = spawn(p, path, argv, e);
  free_env(e);
  if (rc != 0) return -1;
  if (wait_ready(p, 30000) != 0) {
    mq_test_proc_stop(p, SIGKILL, 5000);
    return -1;
  }
  return 0;
}

static int start_child(mq_test_proc_t *p, const char *binary, const char *const *defaults, const char *const *env) {
  return start_child_arg(p, binary, NULL, defaults, env);
}

/* "MARQUEE_NOTIFY_KEYS=<the public half of MQ_TEST_NOTIFY_SECRET_KEYS>". */
static const char *notify_keys(void) {
  static char kv[200];
  if (!kv[0]) {
    mq_seal_keys_t *k = NULL;
    mq_error_t err;
    if (mq_seal_keys_parse(MQ_TEST_NOTIFY_SECRET_KEYS, true, "test key", &k, &err) != MQ_OK) abort();
    char pub[160];
    mq_seal_public_spec(k, pub, sizeof pub);
    snprintf(kv, sizeof kv, "MARQUEE_NOTIFY_KEYS=%s", pub);
    mq_seal_keys_free(k);
  }
  return kv;
}

bool mq_test_unseal(const char *key_id, const void *box, size_t len, char *token, size_t n) {
  mq_seal_keys_t *k = NULL;
  mq_error_t err;
  if (mq_seal_keys_parse(MQ_TEST_NOTIFY_SECRET_KEYS, true, "test key", &k, &err) != MQ_OK) return false;
  bool ok = mq_seal_open(k, key_id, box, len, token, n);
  mq_seal_keys_free(k);
  return ok;
}

int mq_test_server_start(mq_test_proc_t *p, const char *db, const char *const *env) {
  memset(p, 0, sizeof *p);
  if (db)
    snprintf(p->db, sizeof p->db, "%s", db);
  else
    mq_test_new_db(p->db);
  char uri[512], kafka[256], dbkv[96];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", p->db);
  const char *defaults[] = {"MARQUEE_LISTEN=127.0.0.1:0",
                            "MARQUEE_HTTP_LISTEN=127.0.0.1:0",
                            "MARQUEE_DIAGNOSTICS=1",
                            "MARQUEE_JWT_KEYS=" MQ_TEST_JWT_KEYS,
                            "MARQUEE_TICKET_KEYS=" MQ_TEST_TICKET_KEYS,
                            notify_keys(),
                            "MARQUEE_LOG_LEVEL=warn",
                            "MARQUEE_ACCESS_LOG=errors",
                            "MARQUEE_HEALTH_INTERVAL_MS=300",
                            "MARQUEE_OUTBOX_POLL_MS=100",
                            "MARQUEE_SHUTDOWN_GRACE_MS=5000",
                            "MARQUEE_WORKERS=8",
                            uri,
                            kafka,
                            dbkv,
                            NULL};
  return start_child(p, "marquee-server", defaults, env);
}

int mq_test_audit_start(mq_test_proc_t *p, const char *db, const char *const *env) {
  memset(p, 0, sizeof *p);
  snprintf(p->db, sizeof p->db, "%s", db);
  char uri[512], kafka[256], dbkv[96], group[128];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", db);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-audit-%s", db); /* own offsets per test */
  /* The topics are shared by every test of the run: pass over what other
   * tests produced before this one started (a minute of margin) instead of
   * recording thousands of foreign events first. */
  char skip[80];
  snprintf(skip, sizeof skip, "MARQUEE_CONSUMER_SKIP_BEFORE_MS=%lld", (long long)time(NULL) * 1000 - 60000);
  const char *defaults[] = {"MARQUEE_LOG_LEVEL=warn", uri, kafka, dbkv, group, skip, NULL};
  return start_child(p, "marquee-audit", defaults, env);
}

const char *mq_test_mailpit(void) {
  const char *v = getenv("MARQUEE_STACK_MAILPIT");
  return v && v[0] ? v : "127.0.0.1:8025";
}

const char *mq_test_smtp_url(void) {
  const char *v = getenv("MARQUEE_SMTP_URL");
  return v && v[0] ? v : "smtp://127.0.0.1:1025";
}

int mq_test_notifier_start(mq_test_proc_t *p, const char *db, const char *const *env) {
  memset(p, 0, sizeof *p);
  snprintf(p->db, sizeof p->db, "%s", db);
  char uri[512], kafka[256], dbkv[96], group[128], smtp[256], skip[80];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", db);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-notifier-%s", db);
  snprintf(smtp, sizeof smtp, "MARQUEE_SMTP_URL=%s", mq_test_smtp_url());
  /* as for marquee-audit: what other tests produced before this one is not ours to mail */
  snprintf(skip, sizeof skip, "MARQUEE_CONSUMER_SKIP_BEFORE_MS=%lld", (long long)time(NULL) * 1000 - 60000);
  const char *defaults[] = {"MARQUEE_LOG_LEVEL=warn",
                            "MARQUEE_NOTIFY_SECRET_KEYS=" MQ_TEST_NOTIFY_SECRET_KEYS,
                            "MARQUEE_LINK_BASE_URL=https://tickets.test",
                            uri,
                            kafka,
                            dbkv,
                            group,
                            smtp,
                            skip,
                            NULL};
  return start_child(p, "marquee-notifier", defaults, env);
}

int mq_test_webhooks_start(mq_test_proc_t *p, const char *db, const char *const *env) {
  memset(p, 0, sizeof *p);
  snprintf(p->db, sizeof p->db, "%s", db);
  char uri[512], kafka[256], dbkv[96], group[128], skip[80];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", db);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-webhooks-%s", db);
  snprintf(skip, sizeof skip, "MARQUEE_CONSUMER_SKIP_BEFORE_MS=%lld", (long long)time(NULL) * 1000 - 60000);
  const char *defaults[] = {"MARQUEE_LOG_LEVEL=warn",
                            "MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8",
                            "MARQUEE_WEBHOOK_BACKOFF_MS=100",
                            "MARQUEE_WEBHOOK_TIMEOUT_MS=2000",
                            uri,
                            kafka,
                            dbkv,
                            group,
                            skip,
                            NULL};
  return start_child(p, "marquee-webhooks", defaults, env);
}

/* Where consumers that may be restarted or rebuilt within one test program
 * start counting: a minute before the program first started one. The
 * shared topics hold every other test's (and benchmark's) events; a restart
 * or a rebuild must see the same ones as the first start. */
long long mq_test_since_ms(void) {
  static long long since_ms;
  if (!since_ms) since_ms = (long long)time(NULL) * 1000 - 60000;
  return since_ms;
}

int mq_test_indexer_start(mq_test_proc_t *p, const char *db, const char *index, bool rebuild, const char *const *env) {
  memset(p, 0, sizeof *p);
  snprintf(p->db, sizeof p->db, "%s", db);
  char uri[512], kafka[256], dbkv[96], group[128], skip[80], ix[600];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", db);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-indexer-%s", db);
  snprintf(ix, sizeof ix, "MARQUEE_SEARCH_INDEX=%s", index);
  snprintf(skip, sizeof skip, "MARQUEE_CONSUMER_SKIP_BEFORE_MS=%lld", mq_test_since_ms());
  const char *defaults[] = {"MARQUEE_LOG_LEVEL=warn", uri, kafka, dbkv, group, ix, skip, NULL};
  return start_child_arg(p, "marquee-indexer", rebuild ? "--rebuild" : NULL, defaults, env);
}

int mq_test_analytics_start(mq_test_proc_t *p, const char *db, bool rebuild, const char *const *env) {
  memset(p, 0, sizeof *p);
  snprintf(p->db, sizeof p->db, "%s", db);
  char uri[512], kafka[256], dbkv[96], group[128], skip[80];
  snprintf(uri, sizeof uri, "MARQUEE_MONGO_URI=%s", mq_test_mongo_uri());
  snprintf(kafka, sizeof kafka, "MARQUEE_KAFKA_BROKERS=%s", mq_test_kafka());
  snprintf(dbkv, sizeof dbkv, "MARQUEE_MONGO_DB=%s", db);
  snprintf(group, sizeof group, "MARQUEE_CONSUMER_GROUP=marquee-analytics-%s", db);
  snprintf(skip, sizeof skip, "MARQUEE_CONSUMER_SKIP_BEFORE_MS=%lld", mq_test_since_ms());
  const char *defaults[] = {"MARQUEE_LOG_LEVEL=warn", uri, kafka, dbkv, group, skip, NULL};
  return start_child_arg(p, "marquee-analytics", rebuild ? "--rebuild" : NULL, defaults, env);
}

/* "to:\"<addr>\"" percent-encoded for mailpit's search. */
static void mail_query(const char *to, char *out, size_t n) {
  size_t o = (size_t)snprintf(out, n, "/api/v1/search?query=to%%3A%%22");
  for (const char *p = to; *p && o + 4 < n; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, n - o, "%%%02X", c);
  }
  snprintf(out + o, n - o, "%%22");
}

static char *json_str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? strdup(bson_iter_utf8(&it, NULL)) : NULL;
}

static int cmp_cstr(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

int mq_test_mail_ids(const char *to, int *distinct) {
  char path[600];
  mail_query(to, path, sizeof path);
  strncat(path, "&limit=100000", sizeof path - strlen(path) - 1);
  int status = 0, total = -1;
  *distinct = 0;
  char *body = mq_test_http_get(mq_test_mailpit(), path, &status);
  bson_t doc;
  bson_error_t be;
  if (body && status == 200 && bson_init_from_json(&doc, body, -1, &be)) {
    bson_iter_t it, arr, m;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    if (bson_iter_init_find(&it, &doc, "messages") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
      while (bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &m) || !bson_iter_find(&m, "MessageID") ||
            !BSON_ITER_HOLDS_UTF8(&m))
          continue;
        if (n == cap) {
          cap = cap ? cap * 2 : 256;
          char **nv = realloc(ids, cap * sizeof *ids);
          if (!nv) break;
          ids = nv;
        }
        ids[n++] = strdup(bson_iter_utf8(&m, NULL));
      }
    total = (int)n;
    if (n > 1) qsort(ids, n, sizeof *ids, cmp_cstr);
    for (size_t i = 0; i < n; i++) *distinct += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    bson_destroy(&doc);
  }
  free(body);
  return total;
}

bool mq_test_group_at_end(const char *group, const char *const *topics) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", mq_test_kafka(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return false;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) return false;
  rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(16);
  bool ok = true;
  for (size_t t = 0; ok && topics[t]; t++) {
    rd_kafka_topic_t *kt = rd_kafka_topic_new(rk, topics[t], NULL);
    const struct rd_kafka_metadata *md = NULL;
    ok = kt && rd_kafka_metadata(rk, 0, kt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1;
    for (int p = 0; ok && p < md->topics[0].partition_cnt; p++) {
      int64_t lo = 0, hi = 0;
      int32_t id = md->topics[0].partitions[p].id;
      ok = rd_kafka_query_watermark_offsets(rk, topics[t], id, &lo, &hi, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
      if (ok) rd_kafka_topic_partition_list_add(at, topics[t], id)->offset = hi;
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (kt) rd_kafka_topic_destroy(kt);
  }
  if (ok) ok = rd_kafka_commit(rk, at, 0) == RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_topic_partition_list_destroy(at);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok;
}

bool mq_test_produce(const char *topic, const char *key, const Marquee__Events__V1__Envelope *env) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", mq_test_kafka(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return false;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) return false;
  size_t n = marquee__events__v1__envelope__get_packed_size(env);
  uint8_t *buf = malloc(n);
  marquee__events__v1__envelope__pack(env, buf);
  bool ok = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, n),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  free(buf);
  rd_kafka_destroy(rk);
  return ok;
}

int mq_test_mail_wait(const char *to, int at_least, int timeout_ms, char **subject, char **text, char **html) {
  return mq_test_mail_wait_at(mq_test_mailpit(), to, at_least, timeout_ms, subject, text, html);
}

int mq_test_mail_wait_at(const char *api, const char *to, int at_least, int timeout_ms, char **subject, char **text,
                         char **html) {
  char path[512];
  mail_query(to, path, sizeof path);
  int64_t until = mq_test_now_ms() + timeout_ms;
  int count = -1;
  char id[64] = "";
  for (;;) {
    int status = 0;
    char *body = mq_test_http_get(api, path, &status);
    bson_t doc;
    bson_error_t be;
    if (body && status == 200 && bson_init_from_json(&doc, body, -1, &be)) {
      bson_iter_t it, arr, m;
      count = 0;
      if (bson_iter_init_find(&it, &doc, "messages") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr)) {
          if (!count && BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &m) && bson_iter_find(&m, "ID") &&
              BSON_ITER_HOLDS_UTF8(&m))
            snprintf(id, sizeof id, "%s", bson_iter_utf8(&m, NULL)); /* newest first */
          count++;
        }
      bson_destroy(&doc);
    }
    free(body);
    if (count >= at_least || mq_test_now_ms() >= until) break;
    mq_test_sleep_ms(200);
  }
  if (count > 0 && id[0] && (subject || text || html)) {
    snprintf(path, sizeof path, "/api/v1/message/%s", id);
    int status = 0;
    char *body = mq_test_http_get(api, path, &status);
    bson_t doc;
    bson_error_t be;
    if (body && status == 200 && bson_init_from_json(&doc, body, -1, &be)) {
      if (subject) *subject = json_str(&doc, "Subject");
      if (text) *text = json_str(&doc, "Text");
      if (html) *html = json_str(&doc, "HTML");
      bson_destroy(&doc);
    }
    free(body);
  }
  return count;
}

int mq_test_proc_stop(mq_test_proc_t *p, int sig, int timeout_ms) {
  if (p->pid <= 0) return -1;
  kill(p->pid, sig);
  int status = 0, rc = -1;
  int64_t until = mq_test_now_ms() + timeout_ms;
  for (;;) {
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) {
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (mq_test_now_ms() > until) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      rc = -1;
      break;
    }
    mq_test_sleep_ms(20);
  }
  if (p->out_fd > 0) close(p->out_fd);
  track_child(p->pid, false);
  p->pid = 0;
  p->out_fd = 0;
  return rc;
}

static bool tcp_open(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  bool ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(s);
  return ok;
}

int mq_test_ferret_start(mq_test_proc_t *p, int port, const char *dir) {
  memset(p, 0, sizeof *p);
  mkdir(dir, 0755);
  char bin[512], listen[64];
  snprintf(bin, sizeof bin, "%s/bin/marquee-ferretdb", mq_test_stack_dir());
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  char *argv[] = {bin, (char *)"-listen", listen, (char *)"-data", (char *)dir, NULL};
  char **e = child_env(NULL, NULL);
  int rc = spawn(p, bin, argv, e);
  free_env(e);
  if (rc != 0) return -1;
  int64_t until = mq_test_now_ms() + 30000;
  while (mq_test_now_ms() < until) {
    if (tcp_open(port)) return 0;
    mq_test_sleep_ms(50);
  }
  mq_test_proc_stop(p, SIGKILL, 2000);
  return -1;
}

int mq_test_stack(const char *action, const char *part) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash '%s/scripts/stack.sh' %s %s >&2", MQ_TEST_SOURCE_DIR, action, part);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int mq_test_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof sa;
  int port = -1;
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(s, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(s);
  return port;
}

mq_client_t *mq_test_client(const mq_test_proc_t *server) {
  mq_client_opts_t o = {.target = server->grpc, .default_deadline_ms = 10000};
  mq_client_t *cl = NULL;
  mq_error_t err;
  if (mq_client_create(&o, &cl, &err) != MQ_OK) return NULL;
  return cl;
}

char *mq_test_token(const char *sub, uint32_t roles) {
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(MQ_TEST_JWT_KEYS, "marquee", "marquee-api", &k, &err) != MQ_OK) return NULL;
  char *t = mq_jwt_sign(k, sub, roles, 600);
  mq_jwt_keys_free(k);
  return t;
}

int64_t mq_test_count(const char *uri, const char *db, const char *coll, const char *filter_json) {
  mongoc_client_t *c = mongoc_client_new(uri ? uri : mq_test_mongo_uri());
  if (!c) return -1;
  mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
  bson_error_t err;
  bson_t filter;
  int64_t n = -1;
  if (bson_init_from_json(&filter, filter_json, -1, &err)) {
    n = mongoc_collection_count_documents(col, &filter, NULL, NULL, NULL, &err);
    if (n < 0) fprintf(stderr, "count %s.%s: %s\n", db, coll, err.message);
    bson_destroy(&filter);
  }
  mongoc_collection_destroy(col);
  mongoc_client_destroy(c);
  return n;
}

void mq_test_drop_db(const char *uri, const char *db) {
  mongoc_client_t *c = mongoc_client_new(uri ? uri : mq_test_mongo_uri());
  if (!c) return;
  mongoc_database_t *d = mongoc_client_get_database(c, db);
  bson_error_t err;
  mongoc_database_drop(d, &err);
  mongoc_database_destroy(d);
  mongoc_client_destroy(c);
}

void mq_test_each_binary(const char *db, const char *coll, const char *filter_json, const char *field,
                         bool (*fn)(const void *data, size_t len, void *arg), void *arg) {
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  if (!c) return;
  mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
  bson_error_t err;
  bson_t filter;
  if (bson_init_from_json(&filter, filter_json, -1, &err)) {
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, &filter, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    while (mongoc_cursor_next(cur, &doc)) {
      if (!bson_iter_init_find(&it, doc, field) || !BSON_ITER_HOLDS_BINARY(&it)) continue;
      bson_subtype_t st;
      uint32_t n;
      const uint8_t *data;
      bson_iter_binary(&it, &st, &n, &data);
      if (!fn(data, n, arg)) break;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
  }
  mongoc_collection_destroy(col);
  mongoc_client_destroy(c);
}

typedef struct {
  void **out;
  size_t *len;
  bool found;
} last_binary_t;

static bool keep_last(const void *data, size_t n, void *arg) {
  last_binary_t *x = arg;
  if (x->found) free(*x->out);
  *x->out = malloc(n ? n : 1);
  memcpy(*x->out, data, n);
  *x->len = n;
  x->found = true;
  return true;
}

bool mq_test_find_binary(const char *db, const char *coll, const char *filter_json, const char *field, void **out,
                         size_t *len) {
  last_binary_t x = {out, len, false};
  mq_test_each_binary(db, coll, filter_json, field, keep_last, &x);
  return x.found;
}

bool mq_test_insert(const char *db, const char *coll, const char *doc_json) {
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  if (!c) return false;
  mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
  bson_error_t err;
  bson_t doc;
  bool ok = bson_init_from_json(&doc, doc_json, -1, &err);
  if (ok) {
    ok = mongoc_collection_insert_one(col, &doc, NULL, NULL, &err);
    bson_destroy(&doc);
  }
  mongoc_collection_destroy(col);
  mongoc_client_destroy(c);
  return ok;
}

int64_t mq_test_update(const char *db, const char *coll, const char *filter_json, const char *update_json) {
  mongoc_client_t *c = mongoc_client_new(mq_test_mongo_uri());
  if (!c) return -1;
  mongoc_collection_t *col = mongoc_client_get_collection(c, db, coll);
  bson_error_t err;
  bson_t filter, update, reply;
  int64_t n = -1;
  if (bson_init_from_json(&filter, filter_json, -1, &err)) {
    if (bson_init_from_json(&update, update_json, -1, &err)) {
      if (mongoc_collection_update_many(col, &filter, &update, NULL, &reply, &err)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &reply, "matchedCount")) n = bson_iter_as_int64(&it);
      }
      bson_destroy(&reply);
      bson_destroy(&update);
    }
    bson_destroy(&filter);
  }
  mongoc_collection_destroy(col);
  mongoc_client_destroy(c);
  return n;
}

char *mq_test_http_get(const char *hostport, const char *path, int *status) {
  return mq_test_http_get_with(hostport, path, NULL, status);
}

/* One HTTP/1.0 request (body NULL: none) over a fresh connection; the
 * response body (caller frees) and *status. */
static char *http_do(const char *method, const char *hostport, const char *path, const char *header, const char *body,
                     int *status) {
  *status = 0;
  const char *colon = strrchr(hostport, ':');
  if (!colon) return NULL;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(s);
    return NULL;
  }
  size_t blen = body ? strlen(body) : 0, cap = blen + 4096;
  char *req = malloc(cap);
  int n =
      body ? snprintf(req, cap,
                      "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s%s\r\n",
                      method, path, hostport, blen, header ? header : "", header ? "\r\n" : "")
           : snprintf(req, cap, "%s %s HTTP/1.0\r\nHost: %s\r\n%s%s\r\n", method, path, hostport, header ? header : "",
                      header ? "\r\n" : "");
  if (blen) memcpy(req + n, body, blen);
  size_t total = (size_t)n + blen;
  bool ok = write(s, req, total) == (ssize_t)total;
  free(req);
  if (!ok) {
    close(s);
    return NULL;
  }
  size_t bcap = 65536, len = 0;
  char *buf = malloc(bcap);
  ssize_t r;
  while ((r = read(s, buf + len, bcap - len - 1)) > 0) {
    len += (size_t)r;
    if (len + 1 == bcap) buf = grow(buf, bcap *= 2);
  }
  close(s);
  buf[len] = '\0';
  sscanf(buf, "HTTP/%*s %d", status);
  char *b = strstr(buf, "\r\n\r\n");
  char *out = strdup(b ? b + 4 : "");
  free(buf);
  return out;
}

char *mq_test_http_get_with(const char *hostport, const char *path, const char *header, int *status) {
  return http_do("GET", hostport, path, header, NULL, status);
}

char *mq_test_http_post(const char *hostport, const char *path, const char *header, const char *body, int *status) {
  return http_do("POST", hostport, path, header, body ? body : "", status);
}

const char *mq_test_stripe(void) {
  const char *v = getenv("MARQUEE_STACK_STRIPE");
  return v && v[0] ? v : "http://127.0.0.1:12111";
}

double mq_test_metric(const mq_test_proc_t *p, const char *name) {
  int status = 0;
  char *body = mq_test_http_get(p->http, "/metrics", &status);
  double v = -1;
  size_t n = strlen(name);
  for (char *line = body; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!strncmp(line, name, n) && line[n] == ' ') {
      v = strtod(line + n + 1, NULL);
      break;
    }
    line = nl ? nl + 1 : NULL;
  }
  free(body);
  return v;
}

bool mq_test_wait_metric(const mq_test_proc_t *p, const char *name, double at_least, int timeout_ms) {
  int64_t until = mq_test_now_ms() + timeout_ms;
  for (;;) {
    if (mq_test_metric(p, name) >= at_least) return true;
    if (mq_test_now_ms() >= until) return false;
    mq_test_sleep_ms(50);
  }
}

int mq_test_oidc_start(mq_test_proc_t *p, const char *out_json, const char *const *extra_args) {
  memset(p, 0, sizeof *p);
  unlink(out_json);
  char module[600], script[600], modenv[700];
  snprintf(module, sizeof module, "%s/oidc-mock/node_modules/oauth2-mock-server/dist/index.mjs", mq_test_stack_dir());
  snprintf(script, sizeof script, "%s/scripts/oidc-mock/server.mjs", MQ_TEST_SOURCE_DIR);
  snprintf(modenv, sizeof modenv, "OIDC_MOCK_MODULE=%s", module);
  char *argv[16] = {(char *)"node", script, (char *)"--out", (char *)out_json};
  size_t n = 4;
  for (; extra_args && *extra_args && n < 15; extra_args++) argv[n++] = (char *)*extra_args;
  argv[n] = NULL;
  const char *extra[] = {modenv, NULL};
  char **e = child_env(NULL, extra);
  char node[600] = "/usr/bin/node"; /* the first node on PATH */
  const char *path = getenv("PATH");
  for (const char *d = path; d && *d;) {
    size_t len = strcspn(d, ":");
    char cand[600];
    snprintf(cand, sizeof cand, "%.*s/node", (int)len, d);
    if (len && access(cand, X_OK) == 0) {
      snprintf(node, sizeof node, "%s", cand);
      break;
    }
    d += len + (d[len] == ':');
  }
  int rc = spawn(p, node, argv, e);
  free_env(e);
  if (rc != 0) return -1;
  int64_t until = mq_test_now_ms() + 30000;
  while (mq_test_now_ms() < until) {
    if (access(out_json, R_OK) == 0) return 0;
    mq_test_sleep_ms(50);
  }
  mq_test_proc_stop(p, SIGKILL, 2000);
  return -1;
}

typedef struct {
  const char *invitation_id;
  char *token;
  size_t n;
} invitation_find_t;

static bool open_invitation(const void *data, size_t len, void *arg) {
  invitation_find_t *x = arg;
  Marquee__Events__V1__Envelope *ev = marquee__events__v1__envelope__unpack(NULL, len, data);
  if (ev && ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED &&
      !strcmp(ev->organization_member_invited->invitation_id, x->invitation_id) &&
      ev->organization_member_invited->sealed_token) {
    const Marquee__Events__V1__SealedSecret *st = ev->organization_member_invited->sealed_token;
    mq_test_unseal(st->key_id, st->box.data, st->box.len, x->token, x->n);
  }
  if (ev) marquee__events__v1__envelope__free_unpacked(ev, NULL);
  return !x->token[0];
}

bool mq_test_invitation_token(const char *db, const char *org_id, const char *invitation_id, char *token, size_t n) {
  char filter[256];
  snprintf(filter, sizeof filter, "{\"aggregate_id\": \"%s\", \"type\": \"organizations.OrganizationMemberInvited\"}",
           org_id);
  token[0] = '\0';
  invitation_find_t x = {invitation_id, token, n};
  int64_t until = mq_test_now_ms() + 60000;
  while (!token[0] && mq_test_now_ms() < until) {
    /* every invitation of the organization: a store returns them in no particular order */
    mq_test_each_binary(db, "audit_log", filter, "envelope", open_invitation, &x);
    if (!token[0]) mq_test_sleep_ms(100);
  }
  return token[0] != '\0';
}

char *mq_test_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

int mq_test_pair_start(mq_test_proc_t *a_srv, mq_test_proc_t *b_srv, mq_client_t **a, mq_client_t **b,
                       const char *const *env) {
  if (mq_test_server_start(a_srv, NULL, env) != 0) return -1;
  if (mq_test_server_start(b_srv, a_srv->db, env) != 0) return -1;
  *a = mq_test_client(a_srv);
  *b = mq_test_client(b_srv);
  /* caches stay off until an instance hears the others' writes (on a fresh
   * Kafka the topics appear only when the first relay creates them) */
  if (!mq_test_wait_metric(a_srv, "marquee_invalidator_live", 1, 20000) ||
      !mq_test_wait_metric(b_srv, "marquee_invalidator_live", 1, 20000))
    return -1;
  return *a && *b ? 0 : -1;
}

int mq_test_pair_stop(mq_test_proc_t *a_srv, mq_test_proc_t *b_srv, mq_client_t *a, mq_client_t *b) {
  mq_client_destroy(a);
  mq_client_destroy(b);
  int ra = mq_test_proc_stop(a_srv, SIGTERM, 20000);
  int rb = mq_test_proc_stop(b_srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, a_srv->db);
  return ra == 0 && rb == 0 ? 0 : -1;
}
