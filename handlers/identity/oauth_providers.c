/*
 * oauth_providers.c — the sign-in providers of MARQUEE_OAUTH_PROVIDERS
 * (docs/OAUTH.md): parsing and validating the JSON file at start-up (a bad
 * file stops the server with INVALID_ARGUMENT naming the key), looking a
 * provider up, and freeing them. No network I/O here: endpoints an OIDC
 * provider publishes are fetched on first use (oauth_idp.c).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_tokens.h"
#include "core/mq_xmalloc.h"
#include "handlers/identity/identity.h"
#include "handlers/identity/oauth_idp.h"
#include "handlers/mq_app.h"
#include "lib/mq_httpc.h"
#include "lib/mq_jwks.h"
#include "lib/mq_validate.h"
#include "store/identity/oauth_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

/* ---- configuration ------------------------------------------------------------------ */

/* A string (or integer, as text) member of `doc`, malloc'd; NULL if absent. */
char *mq_oauth_json_dup(const bson_t *doc, const char *key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key)) return NULL;
  if (BSON_ITER_HOLDS_UTF8(&it)) return strdup(bson_iter_utf8(&it, NULL));
  if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)bson_iter_as_int64(&it));
    return strdup(buf);
  }
  if (BSON_ITER_HOLDS_DOUBLE(&it)) { /* large ids some providers send as numbers */
    char buf[40];
    snprintf(buf, sizeof buf, "%.0f", bson_iter_double(&it));
    return strdup(buf);
  }
  return NULL;
}

bool mq_oauth_json_truthy(const bson_t *doc, const char *key, bool def) {
  bson_iter_t it;
  if (!key || !bson_iter_init_find(&it, doc, key)) return def;
  if (BSON_ITER_HOLDS_BOOL(&it)) return bson_iter_bool(&it);
  if (BSON_ITER_HOLDS_UTF8(&it)) return !strcmp(bson_iter_utf8(&it, NULL), "true");
  return def;
}

static void provider_free(mq_oauth_provider_t *p) {
  char **fields[] = {&p->name,           &p->display_name,      &p->issuer,     &p->authorization_endpoint,
                     &p->token_endpoint, &p->userinfo_endpoint, &p->jwks_uri,   &p->emails_endpoint,
                     &p->client_id,      &p->client_secret,     &p->scopes,     &p->authorization_params,
                     &p->subject_field,  &p->email_field,       &p->name_field, &p->email_verified_field};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) free(*fields[i]);
  for (size_t i = 0; i < p->n_audiences; i++) free(p->audiences[i]);
  if (p->jwks) {
    mq_jwks_free(p->jwks->keys);
    free(p->jwks);
  }
  pthread_mutex_destroy(&p->mu);
}

void mq_oauth_free(mq_oauth_t *o) {
  if (!o) return;
  for (size_t i = 0; i < o->n; i++) provider_free(&o->p[i]);
  for (size_t i = 0; i < o->n_redirects; i++) free(o->redirect_uris[i]);
  free(o);
}

static bool name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 32) return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_')) return false;
  return true;
}

#define CFG_KEY "MARQUEE_OAUTH_PROVIDERS"

static mq_code_t load_provider(const bson_t *d, mq_oauth_provider_t *p, mq_error_t *err) {
  pthread_mutex_init(&p->mu, NULL);
  p->name = mq_oauth_json_dup(d, "name");
  if (!name_ok(p->name))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "a provider needs a name of 1..32 [a-z0-9_-]");
  p->display_name = mq_oauth_json_dup(d, "display_name");
  if (!p->display_name) p->display_name = strdup(p->name);
  char *kind = mq_oauth_json_dup(d, "kind");
  p->kind = kind && !strcmp(kind, "oidc")     ? MQ_OAUTH_KIND_OIDC
            : kind && !strcmp(kind, "oauth2") ? MQ_OAUTH_KIND_OAUTH2
                                              : 0;
  free(kind);
  if (!p->kind)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: kind must be oidc or oauth2", p->name);
  p->issuer = mq_oauth_json_dup(d, "issuer");
  p->authorization_endpoint = mq_oauth_json_dup(d, "authorization_endpoint");
  p->token_endpoint = mq_oauth_json_dup(d, "token_endpoint");
  p->userinfo_endpoint = mq_oauth_json_dup(d, "userinfo_endpoint");
  p->jwks_uri = mq_oauth_json_dup(d, "jwks_uri");
  p->emails_endpoint = mq_oauth_json_dup(d, "emails_endpoint");
  p->client_id = mq_oauth_json_dup(d, "client_id");
  p->scopes = mq_oauth_json_dup(d, "scopes");
  p->authorization_params = mq_oauth_json_dup(d, "authorization_params");
  p->subject_field = mq_oauth_json_dup(d, "subject_field");
  p->email_field = mq_oauth_json_dup(d, "email_field");
  p->name_field = mq_oauth_json_dup(d, "name_field");
  p->email_verified_field = mq_oauth_json_dup(d, "email_verified_field");
  p->email_verified_default = mq_oauth_json_truthy(d, "email_verified_default", false);
  char *auth = mq_oauth_json_dup(d, "token_auth");
  p->secret_basic = auth && !strcmp(auth, "client_secret_basic");
  free(auth);
  char *secret_env = mq_oauth_json_dup(d, "client_secret_env");
  if (secret_env) {
    const char *v = getenv(secret_env);
    if (!v || !v[0]) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: environment variable %s (client secret) is empty",
                   p->name, secret_env);
      free(secret_env);
      return MQ_INVALID_ARGUMENT;
    }
    p->client_secret = strdup(v);
    free(secret_env);
  }
  if (!p->client_id || !p->client_id[0])
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: client_id is required", p->name);
  p->audiences[p->n_audiences++] = strdup(p->client_id);
  bson_iter_t it, ai;
  if (bson_iter_init_find(&it, d, "extra_audiences") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai)) {
    while (bson_iter_next(&ai) && p->n_audiences < sizeof p->audiences / sizeof *p->audiences)
      if (BSON_ITER_HOLDS_UTF8(&ai)) p->audiences[p->n_audiences++] = strdup(bson_iter_utf8(&ai, NULL));
  }
  if (!p->scopes) p->scopes = strdup(p->kind == MQ_OAUTH_KIND_OIDC ? "openid email profile" : "");
  if (p->kind == MQ_OAUTH_KIND_OIDC) {
    if (!p->issuer || !mq_url_transport_ok(p->issuer))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: issuer must be an https URL", p->name);
  } else {
    if (!p->authorization_endpoint || !p->token_endpoint || !p->userinfo_endpoint)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY,
                          "provider %s: oauth2 needs authorization_endpoint, token_endpoint and userinfo_endpoint",
                          p->name);
    if (!p->subject_field) p->subject_field = strdup("id");
  }
  if (!p->subject_field) p->subject_field = strdup("sub");
  if (!p->email_field) p->email_field = strdup("email");
  if (!p->name_field) p->name_field = strdup("name");
  if (!p->email_verified_field && p->kind == MQ_OAUTH_KIND_OIDC) p->email_verified_field = strdup("email_verified");
  const char *urls[] = {p->authorization_endpoint, p->token_endpoint, p->userinfo_endpoint, p->jwks_uri,
                        p->emails_endpoint};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    if (urls[i] && !mq_url_transport_ok(urls[i]))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: endpoints must be https URLs", p->name);
  p->discovered = p->kind == MQ_OAUTH_KIND_OAUTH2 || (p->authorization_endpoint && p->token_endpoint && p->jwks_uri);
  return MQ_OK;
}

mq_code_t mq_oauth_open(const mq_config_t *cfg, mq_oauth_t **out, mq_error_t *err) {
  *out = NULL;
  mq_oauth_t *o = mq_xcalloc(1, sizeof *o);
  o->timeout_ms = (int)cfg->oauth_http_timeout_ms;
  if (!cfg->oauth_providers[0]) {
    *out = o;
    return MQ_OK;
  }
  bson_error_t berr;
  bson_json_reader_t *r = bson_json_reader_new_from_file(cfg->oauth_providers, &berr);
  if (!r) {
    mq_oauth_free(o);
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "cannot read %s", cfg->oauth_providers);
  }
  bson_t doc = BSON_INITIALIZER;
  int got = bson_json_reader_read(r, &doc, &berr);
  bson_json_reader_destroy(r);
  mq_code_t rc = MQ_OK;
  if (got != 1) rc = mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "not a JSON document: %s", berr.message);
  bson_iter_t it, ai;
  if (rc == MQ_OK && bson_iter_init_find(&it, &doc, "redirect_uris") && BSON_ITER_HOLDS_ARRAY(&it) &&
      bson_iter_recurse(&it, &ai)) {
    while (bson_iter_next(&ai) && o->n_redirects < MAX_REDIRECTS)
      if (BSON_ITER_HOLDS_UTF8(&ai)) o->redirect_uris[o->n_redirects++] = strdup(bson_iter_utf8(&ai, NULL));
  }
  if (rc == MQ_OK && bson_iter_init_find(&it, &doc, "providers") && BSON_ITER_HOLDS_ARRAY(&it) &&
      bson_iter_recurse(&it, &ai)) {
    while (rc == MQ_OK && bson_iter_next(&ai)) {
      if (o->n == MAX_PROVIDERS) {
        rc = mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "at most %d providers", MAX_PROVIDERS);
        break;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&ai)) continue;
      uint32_t len;
      const uint8_t *data;
      bson_iter_document(&ai, &len, &data);
      bson_t pd;
      bson_init_static(&pd, data, len);
      rc = load_provider(&pd, &o->p[o->n++], err);
      for (size_t i = 0; rc == MQ_OK && i + 1 < o->n; i++)
        if (!strcmp(o->p[i].name, o->p[o->n - 1].name))
          rc = mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s is named twice", o->p[i].name);
    }
  }
  bson_destroy(&doc);
  if (rc == MQ_OK && o->n && !o->n_redirects)
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "redirect_uris must list the apps' callback URIs");
  if (rc != MQ_OK) {
    mq_oauth_free(o);
    return rc;
  }
  *out = o;
  return MQ_OK;
}

mq_oauth_provider_t *mq_oauth_find_provider(mq_oauth_t *o, const char *name) {
  for (size_t i = 0; o && name && i < o->n; i++)
    if (!strcmp(o->p[i].name, name)) return &o->p[i];
  return NULL;
}
