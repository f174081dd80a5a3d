/*
 * test_config.c — cmocka tests for core/mq_config.c (the MQ_CONFIG_KEYS
 * table) driven by fake envp arrays, never the real environment.
 *
 * Covers: every key's built-in default (the table is expanded here a second
 * time and each loaded value compared with its row; listen 127.0.0.1:50051,
 * workers 16 also checked literally); environment overrides; the
 * MARQUEE_CONFIG file (a temporary file) with comments, blank lines and
 * indentation, environment winning over the file; refusals with
 * MQ_INVALID_ARGUMENT and err.field naming the key — bad integer, trailing
 * junk, out of range on both bounds, bad bool, unknown MARQUEE_ key (from the
 * environment and from the file), unreadable file, a file line that is not
 * MARQUEE_KEY=VALUE, TLS cert without key and key without cert, bad log level,
 * bad access-log mode; non-MARQUEE keys and the MARQUEE_TEST_/MARQUEE_CLI_/
 * MARQUEE_STACK_/MARQUEE_BENCH_ prefixes ignored; the boolean spellings;
 * mq_config_log never printing a secret or URI credentials; and that
 * README.md (path from the compile definition MQ_README_PATH) names every key
 * printed by mq_config_print_doc. That last test fails while README.md is
 * absent or incomplete, which is intended.
 *
 * Invariant: temporary files live under $TMPDIR (or /tmp) and are removed.
 * Read next: core/mq_config.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mq_config.h"

#ifndef MQ_README_PATH
#error "compile with -DMQ_README_PATH=\"/path/to/README.md\""
#endif

/* ---- helpers ---------------------------------------------------------------------- */

/* Writes `text` to a fresh temporary file; returns its malloc'd path. */
static char *write_temp(const char *text) {
  const char *dir = getenv("TMPDIR");
  char *path = NULL;
  assert_true(asprintf(&path, "%s/mq_test_config_XXXXXX", dir && *dir ? dir : "/tmp") > 0);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
  return path;
}

static void remove_temp(char *path) {
  unlink(path);
  free(path);
}

/* Loads `envp`, expecting INVALID_ARGUMENT naming `field`. */
static void expect_refused(char *const *envp, const char *field) {
  mq_config_t cfg;
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_config_load(&cfg, envp, &err);
  assert_int_equal(rc, MQ_INVALID_ARGUMENT);
  assert_int_equal(err.code, MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, field);
  assert_true(strlen(err.message) > 0);
  /* cfg was freed by the loader: its strings are NULL. */
  assert_null(cfg.listen);
  assert_null(cfg.jwt_keys);
}

static void load_ok(mq_config_t *cfg, char *const *envp) {
  mq_error_t err;
  memset(&err, 0, sizeof err);
  mq_code_t rc = mq_config_load(cfg, envp, &err);
  if (rc != MQ_OK) fail_msg("mq_config_load: %s: %s", err.field, err.message);
}

/* ---- defaults --------------------------------------------------------------------- */

static void test_defaults_literal(void **state) {
  (void)state;
  char *envp[] = {NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);
  assert_string_equal(cfg.listen, "127.0.0.1:50051");
  assert_string_equal(cfg.http_listen, "127.0.0.1:9464");
  assert_string_equal(cfg.mongo_db, "marquee");
  assert_int_equal(cfg.workers, 64);
  assert_int_equal(cfg.worker_queue, 4096);
  assert_int_equal(cfg.cq_threads, 0); /* 0 = auto */
  assert_int_equal(cfg.max_recv_bytes, 4194304);
  assert_int_equal(cfg.default_deadline_ms, 30000);
  assert_string_equal(cfg.log_level, "info");
  assert_string_equal(cfg.access_log, "all");
  assert_string_equal(cfg.jwt_keys, "");
  assert_string_equal(cfg.tls_cert, "");
  assert_false(cfg.diagnostics);
  mq_config_free(&cfg);
  assert_null(cfg.listen); /* free resets the pointers */
}

static void test_defaults_match_table(void **state) {
  (void)state;
  mq_config_t cfg;
  load_ok(&cfg, NULL); /* NULL envp is allowed: defaults only */
#define CHECK_STR(f, def) assert_string_equal(cfg.f, def);
#define CHECK_SECRET(f, def) assert_string_equal(cfg.f, def);
#define CHECK_INT(f, def) assert_int_equal(cfg.f, strtoll(def, NULL, 10));
#define CHECK_BOOL(f, def) assert_int_equal(cfg.f, strcmp(def, "1") == 0);
#define CHECK(type, f, env, def, lo, hi, doc) CHECK_##type(f, def)
  MQ_CONFIG_KEYS(CHECK)
#undef CHECK
  mq_config_free(&cfg);
}

/* ---- environment ---------------------------------------------------------------- */

static void test_env_overrides(void **state) {
  (void)state;
  char *envp[] = {"PATH=/usr/bin",
                  "MARQUEE_LISTEN=0.0.0.0:6000",
                  "MARQUEE_WORKERS=3",
                  "MARQUEE_DIAGNOSTICS=1",
                  "MARQUEE_LOG_LEVEL=debug",
                  "MARQUEE_MONGO_DB=other",
                  "MARQUEE_JWT_KEYS=k1:0123456789abcdef0123456789abcdef",
                  NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);
  assert_string_equal(cfg.listen, "0.0.0.0:6000");
  assert_int_equal(cfg.workers, 3);
  assert_true(cfg.diagnostics);
  assert_string_equal(cfg.log_level, "debug");
  assert_string_equal(cfg.mongo_db, "other");
  assert_string_equal(cfg.jwt_keys, "k1:0123456789abcdef0123456789abcdef");
  assert_int_equal(cfg.cq_threads, 0); /* 0 = auto */ /* untouched keys keep defaults */
  mq_config_free(&cfg);
}

static void test_env_later_entry_wins(void **state) {
  (void)state;
  char *envp[] = {"MARQUEE_WORKERS=3", "MARQUEE_WORKERS=5", NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);
  assert_int_equal(cfg.workers, 5);
  mq_config_free(&cfg);
}

static void test_bounds_inclusive(void **state) {
  (void)state;
  char *lo[] = {"MARQUEE_WORKERS=1", "MARQUEE_SHUTDOWN_GRACE_MS=0", NULL};
  char *hi[] = {"MARQUEE_WORKERS=1024", "MARQUEE_MAX_RECV_BYTES=268435456", NULL};
  mq_config_t cfg;
  load_ok(&cfg, lo);
  assert_int_equal(cfg.workers, 1);
  assert_int_equal(cfg.shutdown_grace_ms, 0);
  mq_config_free(&cfg);
  load_ok(&cfg, hi);
  assert_int_equal(cfg.workers, 1024);
  assert_int_equal(cfg.max_recv_bytes, 268435456);
  mq_config_free(&cfg);
}

static void test_bool_spellings(void **state) {
  (void)state;
  static const char *yes[] = {"1", "true", "yes", "on"};
  static const char *no[] = {"0", "false", "no", "off", ""};
  char kv[64];
  char *envp[] = {kv, NULL};
  mq_config_t cfg;
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    snprintf(kv, sizeof kv, "MARQUEE_DIAGNOSTICS=%s", yes[i]);
    load_ok(&cfg, envp);
    assert_true(cfg.diagnostics);
    mq_config_free(&cfg);
  }
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    snprintf(kv, sizeof kv, "MARQUEE_DIAGNOSTICS=%s", no[i]);
    load_ok(&cfg, envp);
    assert_false(cfg.diagnostics);
    mq_config_free(&cfg);
  }
}

static void test_foreign_and_reserved_prefixes_ignored(void **state) {
  (void)state;
  char *envp[] = {"HOME=/root",
                  "MARQUEEX=1",
                  "marquee_workers=999999",
                  "NOEQUALS",
                  "MARQUEE_TEST_ANYTHING=zzz",
                  "MARQUEE_CLI_TARGET=127.0.0.1:1",
                  "MARQUEE_STACK_DIR=/tmp/x",
                  "MARQUEE_BENCH_SECONDS=abc",
                  "MARQUEE_CONFIG=",
                  NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);
  assert_int_equal(cfg.workers, 64);
  assert_string_equal(cfg.listen, "127.0.0.1:50051");
  mq_config_free(&cfg);
}

/* ---- refusals ----------------------------------------------------------------------- */

static void test_bad_integer(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_WORKERS=lots", NULL};
  expect_refused(a, "MARQUEE_WORKERS");
  char *b[] = {"MARQUEE_WORKERS=12abc", NULL};
  expect_refused(b, "MARQUEE_WORKERS");
  char *c[] = {"MARQUEE_WORKERS=", NULL};
  expect_refused(c, "MARQUEE_WORKERS");
  char *d[] = {"MARQUEE_MAX_RECV_BYTES=99999999999999999999999", NULL};
  expect_refused(d, "MARQUEE_MAX_RECV_BYTES");
  char *e[] = {"MARQUEE_CQ_THREADS=1.5", NULL};
  expect_refused(e, "MARQUEE_CQ_THREADS");
}

static void test_out_of_range(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_WORKERS=0", NULL};
  expect_refused(a, "MARQUEE_WORKERS");
  char *b[] = {"MARQUEE_WORKERS=1025", NULL};
  expect_refused(b, "MARQUEE_WORKERS");
  char *c[] = {"MARQUEE_WORKERS=-4", NULL};
  expect_refused(c, "MARQUEE_WORKERS");
  char *d[] = {"MARQUEE_DEFAULT_DEADLINE_MS=99", NULL};
  expect_refused(d, "MARQUEE_DEFAULT_DEADLINE_MS");
  char *e[] = {"MARQUEE_MAX_RECV_BYTES=1023", NULL};
  expect_refused(e, "MARQUEE_MAX_RECV_BYTES");
  /* the bookings keys */
  char *f[] = {"MARQUEE_HOLD_TTL_S=4", NULL};
  expect_refused(f, "MARQUEE_HOLD_TTL_S");
  char *g[] = {"MARQUEE_HOLD_TTL_S=86401", NULL};
  expect_refused(g, "MARQUEE_HOLD_TTL_S");
  char *h[] = {"MARQUEE_HOLD_SWEEP_MS=49", NULL};
  expect_refused(h, "MARQUEE_HOLD_SWEEP_MS");
  char *i[] = {"MARQUEE_PAYMENT_WINDOW_S=9", NULL};
  expect_refused(i, "MARQUEE_PAYMENT_WINDOW_S");
}

static void test_bad_bool(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_DIAGNOSTICS=maybe", NULL};
  expect_refused(a, "MARQUEE_DIAGNOSTICS");
  char *b[] = {"MARQUEE_DIAGNOSTICS=2", NULL};
  expect_refused(b, "MARQUEE_DIAGNOSTICS");
}

static void test_unknown_key(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_WORKRES=4", NULL}; /* a typo must not fall back to the default */
  expect_refused(a, "MARQUEE_WORKRES");
  char *b[] = {"MARQUEE_LISTEN=127.0.0.1:1", "MARQUEE_=x", NULL};
  expect_refused(b, "MARQUEE_");
}

static void test_tls_pairing(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_TLS_CERT=/etc/cert.pem", NULL};
  expect_refused(a, "MARQUEE_TLS_KEY");
  char *b[] = {"MARQUEE_TLS_KEY=/etc/key.pem", NULL};
  expect_refused(b, "MARQUEE_TLS_CERT");
  char *c[] = {"MARQUEE_TLS_CERT=/etc/cert.pem", "MARQUEE_TLS_KEY=/etc/key.pem", NULL};
  mq_config_t cfg;
  load_ok(&cfg, c);
  assert_string_equal(cfg.tls_cert, "/etc/cert.pem");
  assert_string_equal(cfg.tls_key, "/etc/key.pem");
  mq_config_free(&cfg);
}

static void test_bad_log_level_and_access_log(void **state) {
  (void)state;
  char *a[] = {"MARQUEE_LOG_LEVEL=verbose", NULL};
  expect_refused(a, "MARQUEE_LOG_LEVEL");
  char *b[] = {"MARQUEE_LOG_LEVEL=INFO", NULL}; /* case-sensitive */
  expect_refused(b, "MARQUEE_LOG_LEVEL");
  char *c[] = {"MARQUEE_ACCESS_LOG=some", NULL};
  expect_refused(c, "MARQUEE_ACCESS_LOG");
  static const char *levels[] = {"debug", "info", "warn", "error"};
  char kv[64];
  char *d[] = {kv, NULL};
  for (size_t i = 0; i < 4; i++) {
    snprintf(kv, sizeof kv, "MARQUEE_LOG_LEVEL=%s", levels[i]);
    mq_config_t cfg;
    load_ok(&cfg, d);
    assert_string_equal(cfg.log_level, levels[i]);
    mq_config_free(&cfg);
  }
}

/* ---- MARQUEE_CONFIG file -------------------------------------------------------- */

static void test_file_values_and_env_wins(void **state) {
  (void)state;
  char *path = write_temp(
      "# Marquee test configuration\n"
      "\n"
      "   # indented comment\n"
      "MARQUEE_WORKERS=7\n"
      "  MARQUEE_MONGO_DB=fromfile   \n"
      "MARQUEE_LISTEN=127.0.0.1:7000\r\n"
      "\t\n"
      "MARQUEE_DIAGNOSTICS=true\n");
  char cfgkv[512];
  snprintf(cfgkv, sizeof cfgkv, "MARQUEE_CONFIG=%s", path);
  /* MARQUEE_CONFIG listed after a key it would set: the env still wins. */
  char *envp[] = {"MARQUEE_LISTEN=127.0.0.1:8000", cfgkv, NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);
  assert_int_equal(cfg.workers, 7);                  /* from file */
  assert_string_equal(cfg.mongo_db, "fromfile");     /* indentation and trailing blanks stripped */
  assert_string_equal(cfg.listen, "127.0.0.1:8000"); /* environment beats file */
  assert_true(cfg.diagnostics);
  assert_int_equal(cfg.cq_threads, 0); /* 0 = auto */ /* default */
  mq_config_free(&cfg);
  remove_temp(path);
}

static void test_file_unknown_key(void **state) {
  (void)state;
  char *path = write_temp("MARQUEE_WORKERS=7\nMARQUEE_NOPE=1\n");
  char cfgkv[512];
  snprintf(cfgkv, sizeof cfgkv, "MARQUEE_CONFIG=%s", path);
  char *envp[] = {cfgkv, NULL};
  expect_refused(envp, "MARQUEE_NOPE");
  remove_temp(path);
}

static void test_file_bad_value_named(void **state) {
  (void)state;
  char *path = write_temp("MARQUEE_KAFKA_PARTITIONS=0\n");
  char cfgkv[512];
  snprintf(cfgkv, sizeof cfgkv, "MARQUEE_CONFIG=%s", path);
  char *envp[] = {cfgkv, NULL};
  expect_refused(envp, "MARQUEE_KAFKA_PARTITIONS");
  remove_temp(path);
}

static void test_file_malformed_line(void **state) {
  (void)state;
  char *path = write_temp("MARQUEE_WORKERS=7\nthis is not a setting\n");
  char cfgkv[512];
  snprintf(cfgkv, sizeof cfgkv, "MARQUEE_CONFIG=%s", path);
  char *envp[] = {cfgkv, NULL};
  mq_config_t cfg;
  mq_error_t err;
  assert_int_equal(mq_config_load(&cfg, envp, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "MARQUEE_CONFIG");
  assert_non_null(strstr(err.message, ":2:")); /* names the line */
  remove_temp(path);

  path = write_temp("OTHER_KEY=1\n"); /* a foreign key in our file is a mistake */
  snprintf(cfgkv, sizeof cfgkv, "MARQUEE_CONFIG=%s", path);
  expect_refused(envp, "MARQUEE_CONFIG");
  remove_temp(path);
}

static void test_file_missing(void **state) {
  (void)state;
  char *envp[] = {"MARQUEE_CONFIG=/nonexistent/dir/marquee.env", NULL};
  expect_refused(envp, "MARQUEE_CONFIG");
}

/* ---- logging of the effective values ----------------------------------------------- */

static void test_log_hides_secrets(void **state) {
  (void)state;
  char *envp[] = {"MARQUEE_JWT_KEYS=k1:TOPSECRETtopsecretTOPSECRETtopsecret",
                  "MARQUEE_MONGO_URI=mongodb://alice:hunter2pw@db.example:27017/?replicaSet=rs0", NULL};
  mq_config_t cfg;
  load_ok(&cfg, envp);

  fflush(stderr);
  char *path = write_temp("");
  FILE *cap = fopen(path, "w+");
  assert_non_null(cap);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
  mq_config_log(&cfg); /* the async flusher is not running: written at once */
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);

  char buf[16384];
  rewind(cap);
  size_t n = fread(buf, 1, sizeof buf - 1, cap);
  buf[n] = '\0';
  fclose(cap);
  remove_temp(path);
  mq_config_free(&cfg);

  assert_non_null(strstr(buf, "\"MARQUEE_JWT_KEYS\":\"<set>\""));
  assert_null(strstr(buf, "TOPSECRET"));
  assert_null(strstr(buf, "hunter2pw")); /* URI credentials are redacted */
  assert_null(strstr(buf, "alice"));
  assert_non_null(strstr(buf, "\"MARQUEE_MONGO_URI\":\"mongodb://***@db.example:27017/?replicaSet=rs0\""));
  assert_non_null(strstr(buf, "\"MARQUEE_WORKERS\":64"));
  assert_non_null(strstr(buf, "\"MARQUEE_LISTEN\":\"127.0.0.1:50051\""));
}

/* ---- README documents every key -------------------------------------------------- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0, k;
  char *p = malloc(cap);
  assert_non_null(p);
  while ((k = fread(p + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (len + 1 == cap) {
      char *np = realloc(p, cap *= 2);
      assert_non_null(np);
      p = np;
    }
  }
  fclose(f);
  p[len] = '\0';
  return p;
}

static bool is_key_char(char c) {
  return isupper((unsigned char)c) || isdigit((unsigned char)c) || c == '_';
}

/* True if `key` occurs in `text` as a whole token (not as part of a longer key). */
static bool contains_key(const char *text, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
    bool left = p == text || !is_key_char(p[-1]);
    bool right = !is_key_char(p[kl]);
    if (left && right) return true;
  }
  return false;
}

static void test_readme_documents_every_key(void **state) {
  (void)state;
  char *doc = NULL;
  size_t doclen = 0;
  FILE *ms = open_memstream(&doc, &doclen);
  assert_non_null(ms);
  mq_config_print_doc(ms);
  assert_int_equal(fclose(ms), 0);
  assert_non_null(doc);

  char *readme = slurp(MQ_README_PATH);
  if (!readme) {
    free(doc);
    fail_msg("README not found at %s: it must document every configuration key", MQ_README_PATH);
  }

  size_t expected = 0;
#define COUNT(type, f, env, def, lo, hi, doc) expected++;
  MQ_CONFIG_KEYS(COUNT)
#undef COUNT

  size_t seen = 0, missing = 0;
  char missing_list[2048] = "";
  for (const char *line = doc; *line;) {
    const char *nl = strchr(line, '\n');
    size_t ll = nl ? (size_t)(nl - line) : strlen(line);
    /* rows look like "| `MARQUEE_X` | `default` | meaning |" */
    if (ll > 4 && strncmp(line, "| `", 3) == 0) {
      const char *s = line + 3;
      const char *e = memchr(s, '`', ll - 3);
      assert_non_null(e);
      char key[96];
      snprintf(key, sizeof key, "%.*s", (int)(e - s), s);
      assert_int_equal(strncmp(key, "MARQUEE_", 8), 0);
      seen++;
      if (!contains_key(readme, key)) {
        missing++;
        size_t ml = strlen(missing_list);
        snprintf(missing_list + ml, sizeof missing_list - ml, " %s", key);
      }
    }
    line += ll + (nl ? 1 : 0);
  }
  free(readme);
  free(doc);
  assert_int_equal(seen, expected); /* the doc printer lists every row */
  if (missing) fail_msg("README.md does not document %zu key(s):%s", missing, missing_list);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_literal),
      cmocka_unit_test(test_defaults_match_table),
      cmocka_unit_test(test_env_overrides),
      cmocka_unit_test(test_env_later_entry_wins),
      cmocka_unit_test(test_bounds_inclusive),
      cmocka_unit_test(test_bool_spellings),
      cmocka_unit_test(test_foreign_and_reserved_prefixes_ignored),
      cmocka_unit_test(test_bad_integer),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_bad_bool),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_tls_pairing),
      cmocka_unit_test(test_bad_log_level_and_access_log),
      cmocka_unit_test(test_file_values_and_env_wins),
      cmocka_unit_test(test_file_unknown_key),
      cmocka_unit_test(test_file_bad_value_named),
      cmocka_unit_test(test_file_malformed_line),
      cmocka_unit_test(test_file_missing),
      cmocka_unit_test(test_log_hides_secrets),
      cmocka_unit_test(test_readme_documents_every_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
