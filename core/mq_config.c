/*
 * mq_config.c — parses the MQ_CONFIG_KEYS table (see mq_config.h).
 * Each key is applied through set_key(), the one place that validates types
 * and ranges, so file and environment values get identical checks.
 */
#include "core/mq_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"

typedef enum { T_STR, T_SECRET, T_INT, T_BOOL } ktype_t;

typedef struct {
  ktype_t type;
  const char *env, *def, *doc;
  int64_t lo, hi;
  size_t off;
} key_t_;

static const key_t_ keys[] = {
#define MQ_XX_KEY(type, f, env, def, lo, hi, doc) {T_##type, env, def, doc, lo, hi, offsetof(mq_config_t, f)},
    MQ_CONFIG_KEYS(MQ_XX_KEY)
#undef MQ_XX_KEY
};
#define NKEYS (sizeof keys / sizeof keys[0])

static mq_code_t set_key(mq_config_t *cfg, const key_t_ *k, const char *val, mq_error_t *err) {
  char *base = (char *)cfg + k->off;
  switch (k->type) {
    case T_STR:
    case T_SECRET: {
      char **dst = (char **)(void *)base;
      char *dup = strdup(val);
      if (!dup) return mq_error_set(err, MQ_INTERNAL, k->env, "out of memory");
      free(*dst);
      *dst = dup;
      return MQ_OK;
    }
    case T_INT: {
      char *end = NULL;
      errno = 0;
      long long v = strtoll(val, &end, 10);
      if (errno || !end || end == val || *end != '\0')
        return mq_error_set(err, MQ_INVALID_ARGUMENT, k->env, "must be an integer, got '%.40s'", val);
      if (v < k->lo || v > k->hi)
        return mq_error_set(err, MQ_INVALID_ARGUMENT, k->env, "must be between %lld and %lld, got %lld",
                            (long long)k->lo, (long long)k->hi, v);
      *(int64_t *)(void *)base = v;
      return MQ_OK;
    }
    case T_BOOL: {
      bool v;
      if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
        v = true;
      else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "off") || !val[0])
        v = false;
      else
        return mq_error_set(err, MQ_INVALID_ARGUMENT, k->env, "must be 0/1/true/false, got '%.40s'", val);
      *(bool *)(void *)base = v;
      return MQ_OK;
    }
  }
  return MQ_INTERNAL;
}

static const key_t_ *find_key(const char *name, size_t n) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strlen(keys[i].env) == n && strncmp(keys[i].env, name, n) == 0) return &keys[i];
  return NULL;
}

/* Applies one "KEY=VALUE"; ignores non-MARQUEE_ keys. `origin` for messages. */
static mq_code_t apply(mq_config_t *cfg, const char *kv, const char *origin, mq_error_t *err) {
  if (strncmp(kv, "MARQUEE_", 8) != 0) return MQ_OK;
  const char *eq = strchr(kv, '=');
  if (!eq) return MQ_OK;
  size_t n = (size_t)(eq - kv);
  if (n == 14 && strncmp(kv, "MARQUEE_CONFIG", 14) == 0) return MQ_OK;
  const key_t_ *k = find_key(kv, n);
  if (!k) {
    /* process-specific keys outside the table (test harness, stack scripts) */
    if (strncmp(kv, "MARQUEE_STACK_", 14) == 0 || strncmp(kv, "MARQUEE_TEST_", 13) == 0 ||
        strncmp(kv, "MARQUEE_BENCH_", 14) == 0 || strncmp(kv, "MARQUEE_CLI_", 12) == 0 ||
        strncmp(kv, "MARQUEE_OAUTH_SECRET_", 21) == 0) /* client secrets named by the providers file */
      return MQ_OK;
    char name[96];
    snprintf(name, sizeof name, "%.*s", (int)(n < 80 ? n : 80), kv);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, name, "unknown configuration key (from %s); see README", origin);
  }
  return set_key(cfg, k, eq + 1, err);
}

static mq_code_t load_file(mq_config_t *cfg, const char *path, mq_error_t *err) {
  FILE *f = fopen(path, "r");
  if (!f) return mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_CONFIG", "cannot open '%.200s'", path);
  char line[4096];
  int lineno = 0;
  mq_code_t rc = MQ_OK;
  while (rc == MQ_OK && fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') continue;
    if (!strchr(p, '=') || strncmp(p, "MARQUEE_", 8) != 0) {
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_CONFIG", "%.200s:%d: expected MARQUEE_KEY=VALUE", path,
                        lineno);
      break;
    }
    rc = apply(cfg, p, path, err);
  }
  fclose(f);
  return rc;
}

mq_code_t mq_config_load(mq_config_t *cfg, char *const *envp, mq_error_t *err) {
  memset(cfg, 0, sizeof *cfg);
  mq_code_t rc = MQ_OK;
  for (size_t i = 0; i < NKEYS && rc == MQ_OK; i++) rc = set_key(cfg, &keys[i], keys[i].def, err);
  const char *file = NULL;
  for (char *const *e = envp; e && *e && rc == MQ_OK; e++)
    if (strncmp(*e, "MARQUEE_CONFIG=", 15) == 0) file = *e + 15;
  if (rc == MQ_OK && file && *file) rc = load_file(cfg, file, err);
  for (char *const *e = envp; e && *e && rc == MQ_OK; e++) rc = apply(cfg, *e, "environment", err);
  if (rc == MQ_OK) {
    mq_log_level_t lvl;
    if (!mq_log_parse_level(cfg->log_level, &lvl))
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_LOG_LEVEL", "must be debug, info, warn or error");
    else if (strcmp(cfg->access_log, "all") && strcmp(cfg->access_log, "errors") && strcmp(cfg->access_log, "off"))
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "MARQUEE_ACCESS_LOG", "must be all, errors or off");
    else if (!!cfg->tls_cert[0] != !!cfg->tls_key[0])
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, cfg->tls_cert[0] ? "MARQUEE_TLS_KEY" : "MARQUEE_TLS_CERT",
                        "TLS needs both MARQUEE_TLS_CERT and MARQUEE_TLS_KEY");
  }
  if (rc != MQ_OK) mq_config_free(cfg);
  return rc;
}

void mq_config_free(mq_config_t *cfg) {
  for (size_t i = 0; i < NKEYS; i++) {
    if (keys[i].type == T_STR || keys[i].type == T_SECRET) {
      char **p = (char **)(void *)((char *)cfg + keys[i].off);
      free(*p);
      *p = NULL;
    }
  }
}

void mq_config_print_doc(FILE *out) {
  fprintf(out, "| key | default | meaning |\n|---|---|---|\n");
  for (size_t i = 0; i < NKEYS; i++)
    fprintf(out, "| `%s` | `%s` | %s |\n", keys[i].env, keys[i].def[0] ? keys[i].def : "(empty)", keys[i].doc);
}

/* Credentials in a URI (user:password@) are replaced by *** before logging. */
static void redact_uri(const char *uri, char *out, size_t n) {
  const char *scheme = strstr(uri, "://"), *at = strchr(uri, '@');
  if (scheme && at && at > scheme)
    snprintf(out, n, "%.*s://***%s", (int)(scheme - uri), uri, at);
  else
    snprintf(out, n, "%s", uri);
}

void mq_config_log(const mq_config_t *cfg) {
  mq_logline_t l;
  mq_log_begin(&l, MQ_LOG_INFO, "config");
  for (size_t i = 0; i < NKEYS; i++) {
    const char *base = (const char *)cfg + keys[i].off;
    switch (keys[i].type) {
      case T_STR: {
        const char *v = *(char *const *)(const void *)base;
        if (strstr(keys[i].env, "_URI")) {
          char red[512];
          redact_uri(v, red, sizeof red);
          mq_log_str(&l, keys[i].env, red);
        } else {
          mq_log_str(&l, keys[i].env, v);
        }
        break;
      }
      case T_SECRET:
        mq_log_str(&l, keys[i].env, (*(char *const *)(const void *)base)[0] ? "<set>" : "");
        break;
      case T_INT:
        mq_log_int(&l, keys[i].env, *(const int64_t *)(const void *)base);
        break;
      case T_BOOL:
        mq_log_bool(&l, keys[i].env, *(const bool *)(const void *)base);
        break;
    }
  }
  mq_log_end(&l);
}

bool mq_config_start(const char *name, mq_config_t *cfg, char *const *envp) {
  mq_error_t err;
  mq_error_clear(&err);
  if (mq_config_load(cfg, envp, &err) != MQ_OK) {
    fprintf(stderr, "%s: configuration: %s: %s\n", name, err.field, err.message);
    return false;
  }
  mq_log_level_t lvl = MQ_LOG_INFO;
  mq_log_parse_level(cfg->log_level, &lvl);
  mq_log_set_level(lvl);
  mq_log_set_process(name, cfg->instance_id[0] ? cfg->instance_id : NULL);
  mq_log_start();
  return true;
}
