/*
 * oauth.c — marquee.identity.v1.OAuthService: sign-in, sign-up and linking
 * with external identity providers (OAuth 2.0 authorization code + PKCE;
 * OpenID Connect ID tokens).
 *
 * Providers come from the JSON file named by MARQUEE_OAUTH_PROVIDERS
 * (docs/OAUTH.md): two kinds, no per-provider code.
 *   oidc    Google, Microsoft, Apple. Endpoints from the issuer's discovery
 *           document (fetched on first use, then fixed for the process);
 *           the ID token from the token endpoint (or from a native SDK) is
 *           verified against the provider's JWKS (lib/mq_jwks.h): issuer,
 *           audience (client_id or extra_audiences), expiry, nonce. The JWKS
 *           is cached for an hour and fetched again when a token names an
 *           unknown kid (key rotation), at most every 30 s.
 *   oauth2  Facebook, GitHub. Code exchange, then the user-info endpoint;
 *           field names are configuration (GitHub's numeric id, Facebook's
 *           "id"); an optional e-mails endpoint (GitHub) gives the primary
 *           verified address.
 *
 * Flow state (store/identity/oauth_store.h): StartOAuth stores {SHA-256 of state,
 * nonce, PKCE verifier, redirect URI, intent, caller for LINK} for
 * MARQUEE_OAUTH_FLOW_TTL_S; CompleteOAuth takes it (read + delete in one
 * step), so a state works once and a code intercepted with its state is
 * useless without the verifier the server kept.
 *
 * Account resolution, in order:
 *   1. the identity is linked → that account (suspended: PERMISSION_DENIED)
 *   2. an account has the provider's e-mail → merge only if the provider
 *      says the address is verified; if the local account had not verified
 *      it, its password is dropped and its sessions end (whoever registered
 *      the address before its owner keeps nothing); otherwise
 *      FAILED_PRECONDITION (sign in with the password, then link)
 *   3. otherwise a new account (no password; e-mail verified as the
 *      provider says) with UserRegistered, then the link.
 * The link record's _id is provider:subject, so an identity belongs to one
 * account however requests race. Provider calls run on worker threads and
 * are bounded by MARQUEE_OAUTH_HTTP_TIMEOUT_MS.
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
#include "handlers/mq_app.h"
#include "lib/mq_httpc.h"
#include "lib/mq_jwks.h"
#include "lib/mq_validate.h"
#include "marquee/identity/v1/identity.mq-server.h"
#include "store/identity/oauth_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

enum { KIND_OIDC = 1, KIND_OAUTH2 = 2 };

#define MAX_PROVIDERS 16
#define MAX_REDIRECTS 32
#define JWKS_MAX_AGE_MS (3600 * 1000LL)
#define JWKS_MIN_REFETCH_MS (30 * 1000LL)

typedef struct jwks_ref {
  mq_jwks_t *keys;
  int refs; /* holders + 1 while current */
} jwks_ref_t;

typedef struct provider {
  char *name, *display_name;
  int kind;
  char *issuer, *authorization_endpoint, *token_endpoint, *userinfo_endpoint, *jwks_uri, *emails_endpoint;
  char *client_id, *client_secret, *scopes, *authorization_params;
  char *audiences[8];
  size_t n_audiences;
  char *subject_field, *email_field, *name_field, *email_verified_field;
  bool email_verified_default, secret_basic;
  /* runtime, under mu */
  pthread_mutex_t mu;
  bool discovered;
  jwks_ref_t *jwks;
  int64_t jwks_fetched_ms;
} provider_t;

struct mq_oauth {
  provider_t p[MAX_PROVIDERS];
  size_t n;
  char *redirect_uris[MAX_REDIRECTS];
  size_t n_redirects;
  int timeout_ms;
};

/* ---- configuration ------------------------------------------------------------------ */

/* A string (or integer, as text) member of `doc`, malloc'd; NULL if absent. */
static char *json_dup(const bson_t *doc, const char *key) {
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

static bool json_truthy(const bson_t *doc, const char *key, bool def) {
  bson_iter_t it;
  if (!key || !bson_iter_init_find(&it, doc, key)) return def;
  if (BSON_ITER_HOLDS_BOOL(&it)) return bson_iter_bool(&it);
  if (BSON_ITER_HOLDS_UTF8(&it)) return !strcmp(bson_iter_utf8(&it, NULL), "true");
  return def;
}

static void provider_free(provider_t *p) {
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

static mq_code_t load_provider(const bson_t *d, provider_t *p, mq_error_t *err) {
  pthread_mutex_init(&p->mu, NULL);
  p->name = json_dup(d, "name");
  if (!name_ok(p->name))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "a provider needs a name of 1..32 [a-z0-9_-]");
  p->display_name = json_dup(d, "display_name");
  if (!p->display_name) p->display_name = strdup(p->name);
  char *kind = json_dup(d, "kind");
  p->kind = kind && !strcmp(kind, "oidc") ? KIND_OIDC : kind && !strcmp(kind, "oauth2") ? KIND_OAUTH2 : 0;
  free(kind);
  if (!p->kind)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: kind must be oidc or oauth2", p->name);
  p->issuer = json_dup(d, "issuer");
  p->authorization_endpoint = json_dup(d, "authorization_endpoint");
  p->token_endpoint = json_dup(d, "token_endpoint");
  p->userinfo_endpoint = json_dup(d, "userinfo_endpoint");
  p->jwks_uri = json_dup(d, "jwks_uri");
  p->emails_endpoint = json_dup(d, "emails_endpoint");
  p->client_id = json_dup(d, "client_id");
  p->scopes = json_dup(d, "scopes");
  p->authorization_params = json_dup(d, "authorization_params");
  p->subject_field = json_dup(d, "subject_field");
  p->email_field = json_dup(d, "email_field");
  p->name_field = json_dup(d, "name_field");
  p->email_verified_field = json_dup(d, "email_verified_field");
  p->email_verified_default = json_truthy(d, "email_verified_default", false);
  char *auth = json_dup(d, "token_auth");
  p->secret_basic = auth && !strcmp(auth, "client_secret_basic");
  free(auth);
  char *secret_env = json_dup(d, "client_secret_env");
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
  if (!p->scopes) p->scopes = strdup(p->kind == KIND_OIDC ? "openid email profile" : "");
  if (p->kind == KIND_OIDC) {
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
  if (!p->email_verified_field && p->kind == KIND_OIDC) p->email_verified_field = strdup("email_verified");
  const char *urls[] = {p->authorization_endpoint, p->token_endpoint, p->userinfo_endpoint, p->jwks_uri,
                        p->emails_endpoint};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    if (urls[i] && !mq_url_transport_ok(urls[i]))
      return mq_error_set(err, MQ_INVALID_ARGUMENT, CFG_KEY, "provider %s: endpoints must be https URLs", p->name);
  p->discovered = p->kind == KIND_OAUTH2 || (p->authorization_endpoint && p->token_endpoint && p->jwks_uri);
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

static provider_t *find_provider(mq_oauth_t *o, const char *name) {
  for (size_t i = 0; o && name && i < o->n; i++)
    if (!strcmp(o->p[i].name, name)) return &o->p[i];
  return NULL;
}

/* ---- provider calls ------------------------------------------------------------------ */

/* Parses a JSON object body into *out (caller destroys). */
static bool parse_json(const char *body, size_t len, bson_t *out) {
  bson_error_t berr;
  return bson_init_from_json(out, body, (ssize_t)len, &berr);
}

static mq_code_t http_json(mq_oauth_t *o, const mq_httpc_request_t *req0, const char *what, long *status, bson_t *out,
                           mq_error_t *err) {
  mq_httpc_request_t req = *req0;
  req.timeout_ms = o->timeout_ms;
  mq_httpc_response_t resp;
  mq_code_t rc = mq_httpc_do(&req, what, &resp, err);
  if (rc != MQ_OK) return rc;
  *status = resp.status;
  bool ok = parse_json(resp.body, resp.len, out);
  mq_httpc_response_clear(&resp);
  if (!ok) {
    if (*status >= 500) return mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s answered HTTP %ld", what, *status);
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s answered something that is not JSON (HTTP %ld)", what, *status);
  }
  return MQ_OK;
}

/* Fills the endpoints of an OIDC provider from its discovery document. */
static mq_code_t discover(mq_oauth_t *o, provider_t *p, mq_error_t *err) {
  pthread_mutex_lock(&p->mu);
  mq_code_t rc = MQ_OK;
  if (!p->discovered) {
    size_t n = strlen(p->issuer);
    char *url = malloc(n + 40);
    snprintf(url, n + 40, "%.*s/.well-known/openid-configuration", (int)(p->issuer[n - 1] == '/' ? n - 1 : n),
             p->issuer);
    mq_httpc_request_t req = {.url = url};
    long status = 0;
    bson_t doc;
    rc = http_json(o, &req, "the identity provider's discovery endpoint", &status, &doc, err);
    free(url);
    if (rc == MQ_OK) {
      char *iss = json_dup(&doc, "issuer");
      if (status != 200 || !iss || strcmp(iss, p->issuer)) {
        rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "the discovery document of %s is unusable (HTTP %ld%s)", p->name,
                          status, iss && strcmp(iss, p->issuer) ? ", issuer mismatch" : "");
      } else {
        char **slots[] = {&p->authorization_endpoint, &p->token_endpoint, &p->jwks_uri, &p->userinfo_endpoint};
        const char *keys[] = {"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"};
        for (size_t i = 0; i < 4; i++) {
          char *v = json_dup(&doc, keys[i]);
          if (!*slots[i] && v && mq_url_transport_ok(v)) {
            *slots[i] = v;
            v = NULL;
          }
          free(v);
        }
        if (p->authorization_endpoint && p->token_endpoint && p->jwks_uri)
          p->discovered = true;
        else
          rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "the discovery document of %s lacks endpoints", p->name);
      }
      free(iss);
      bson_destroy(&doc);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static void jwks_release(provider_t *p, jwks_ref_t *r) {
  if (!r) return;
  pthread_mutex_lock(&p->mu);
  bool last = --r->refs == 0;
  pthread_mutex_unlock(&p->mu);
  if (last) {
    mq_jwks_free(r->keys);
    free(r);
  }
}

/* The provider's key set, holding a reference; fetched when absent, older
 * than an hour, or lacking `kid` (rotation) and not fetched in the last 30 s.
 * A failed refetch keeps using the keys it has. */
static mq_code_t jwks_acquire(mq_oauth_t *o, provider_t *p, const char *kid, jwks_ref_t **out, mq_error_t *err) {
  pthread_mutex_lock(&p->mu);
  int64_t now = mq_now_unix_ms();
  bool stale = !p->jwks || now - p->jwks_fetched_ms > JWKS_MAX_AGE_MS ||
               (kid && !mq_jwks_has_kid(p->jwks->keys, kid) && now - p->jwks_fetched_ms > JWKS_MIN_REFETCH_MS);
  mq_code_t rc = MQ_OK;
  if (stale) {
    mq_httpc_request_t req = {.url = p->jwks_uri};
    mq_httpc_response_t resp;
    mq_httpc_request_t r2 = req;
    r2.timeout_ms = o->timeout_ms;
    rc = mq_httpc_do(&r2, "the identity provider's JWKS endpoint", &resp, err);
    mq_jwks_t *keys = NULL;
    if (rc == MQ_OK) {
      if (resp.status == 200) {
        rc = mq_jwks_parse(resp.body, resp.len, &keys, err);
        if (rc != MQ_OK) rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "the JWKS of %s is unusable", p->name);
      } else {
        rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "the JWKS endpoint of %s answered HTTP %ld", p->name, resp.status);
      }
      mq_httpc_response_clear(&resp);
    }
    p->jwks_fetched_ms = now;
    if (rc == MQ_OK) {
      jwks_ref_t *nr = mq_xcalloc(1, sizeof *nr);
      nr->keys = keys;
      nr->refs = 1;
      jwks_ref_t *old = p->jwks;
      p->jwks = nr;
      if (old && --old->refs == 0) {
        mq_jwks_free(old->keys);
        free(old);
      }
    } else if (p->jwks) {
      mq_log(MQ_LOG_WARN, "oauth.jwks_refresh_failed", "provider=%s keeping the cached keys", p->name);
      rc = MQ_OK;
    }
  }
  if (rc == MQ_OK) {
    p->jwks->refs++;
    *out = p->jwks;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* The kid of a JWS header (for the rotation check); NULL if none. */
static char *token_kid(const char *token) {
  const char *dot = strchr(token, '.');
  if (!dot || dot - token > 2048) return NULL;
  unsigned char hdr[1600];
  long n = mq_base64url_decode(token, (size_t)(dot - token), hdr, sizeof hdr - 1);
  if (n <= 0) return NULL;
  bson_t doc;
  if (!parse_json((const char *)hdr, (size_t)n, &doc)) return NULL;
  char *kid = json_dup(&doc, "kid");
  bson_destroy(&doc);
  return kid;
}

typedef struct external {
  char *subject, *email, *name, *locale;
  bool email_verified;
} external_t;

static void external_clear(external_t *x) {
  free(x->subject);
  free(x->email);
  free(x->name);
  free(x->locale);
  memset(x, 0, sizeof *x);
}

static mq_code_t verify_id_token(mq_oauth_t *o, provider_t *p, const char *token, const char *nonce, external_t *x,
                                 mq_error_t *err) {
  if (!token || !token[0] || strlen(token) > 16384)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "id_token", "must be a JWT of at most 16 KiB");
  char *kid = token_kid(token);
  jwks_ref_t *ref = NULL;
  mq_code_t rc = jwks_acquire(o, p, kid, &ref, err);
  free(kid);
  if (rc != MQ_OK) return rc;
  mq_oidc_expect_t ex = {.issuer = p->issuer,
                         .audiences = (const char *const *)p->audiences,
                         .n_audiences = p->n_audiences,
                         .nonce = nonce,
                         .now = mq_now_unix_ms() / 1000,
                         .leeway_s = 60};
  mq_oidc_claims_t c;
  memset(&c, 0, sizeof c);
  rc = mq_oidc_verify_id_token(ref->keys, token, strlen(token), &ex, &c, err);
  jwks_release(p, ref);
  if (rc != MQ_OK) return rc;
  x->subject = c.sub ? strdup(c.sub) : NULL;
  x->email = c.email ? strdup(c.email) : NULL;
  x->name = c.name ? strdup(c.name) : NULL;
  x->locale = c.locale ? strdup(c.locale) : NULL;
  x->email_verified = c.email_verified;
  mq_oidc_claims_clear(&c);
  return MQ_OK;
}

/* The provider's error code from a refused token request, safe to echo. */
static void provider_error(const bson_t *doc, char *out, size_t n) {
  char *e = json_dup(doc, "error");
  size_t o = 0;
  for (const char *s = e ? e : "refused"; *s && o + 1 < n && o < 40; s++)
    if ((*s >= 'a' && *s <= 'z') || *s == '_') out[o++] = *s;
  out[o] = '\0';
  free(e);
}

/* Exchanges the code (with the PKCE verifier) at the token endpoint. */
static mq_code_t exchange_code(mq_oauth_t *o, provider_t *p, const mq_oauth_flow_t *f, const char *code, bson_t *out,
                               mq_error_t *err) {
  if (!code || !code[0] || strlen(code) > 2048)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "must be the authorization code (at most 2048 bytes)");
  char *ec = mq_url_escape(code), *er = mq_url_escape(f->redirect_uri), *ei = mq_url_escape(p->client_id),
       *ev = mq_url_escape(f->code_verifier),
       *es = p->client_secret && !p->secret_basic ? mq_url_escape(p->client_secret) : NULL;
  size_t cap = strlen(ec) + strlen(er) + strlen(ei) + strlen(ev) + (es ? strlen(es) : 0) + 160;
  char *body = malloc(cap);
  int len =
      snprintf(body, cap, "grant_type=authorization_code&code=%s&redirect_uri=%s&client_id=%s&code_verifier=%s%s%s", ec,
               er, ei, ev, es ? "&client_secret=" : "", es ? es : "");
  const char *hdrs[] = {"Accept: application/json", "Content-Type: application/x-www-form-urlencoded"};
  mq_httpc_request_t req = {.method = "POST",
                            .url = p->token_endpoint,
                            .headers = hdrs,
                            .n_headers = 2,
                            .body = body,
                            .body_len = (size_t)len,
                            .basic_user = p->secret_basic ? p->client_id : NULL,
                            .basic_password = p->secret_basic ? p->client_secret : NULL};
  long status = 0;
  mq_code_t rc = http_json(o, &req, "the identity provider's token endpoint", &status, out, err);
  free(ec);
  free(er);
  free(ei);
  free(ev);
  free(es);
  free(body);
  if (rc != MQ_OK) return rc;
  if (status == 200) return MQ_OK;
  char why[48];
  provider_error(out, why, sizeof why);
  bson_destroy(out);
  if (status >= 400 && status < 500)
    return mq_error_set(err, MQ_UNAUTHENTICATED, "code", "the provider refused the authorization code (%s)", why);
  return mq_error_set(err, MQ_UNAVAILABLE, NULL, "the token endpoint of %s answered HTTP %ld", p->name, status);
}

static mq_code_t get_json(mq_oauth_t *o, const char *url, const char *access_token, const char *what, bson_t *out,
                          mq_error_t *err) {
  size_t n = strlen(access_token) + 32;
  char *auth = malloc(n);
  snprintf(auth, n, "Authorization: Bearer %s", access_token);
  const char *hdrs[] = {auth, "Accept: application/json"};
  mq_httpc_request_t req = {.url = url, .headers = hdrs, .n_headers = 2};
  long status = 0;
  mq_code_t rc = http_json(o, &req, what, &status, out, err);
  free(auth);
  if (rc != MQ_OK) return rc;
  if (status == 200) return MQ_OK;
  bson_destroy(out);
  if (status == 401 || status == 403)
    return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "the provider refused its own access token (HTTP %ld)", status);
  return mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s answered HTTP %ld", what, status);
}

/* GitHub-style e-mail list: [{email, primary, verified}, …] → the primary
 * verified address (or any verified one). */
static void pick_email(const char *body, size_t len, external_t *x) {
  size_t cap = len + 16;
  char *wrapped = malloc(cap);
  int n = snprintf(wrapped, cap, "{\"a\":%.*s}", (int)len, body);
  bson_t doc;
  bool ok = parse_json(wrapped, (size_t)n, &doc);
  free(wrapped);
  if (!ok) return;
  bson_iter_t it, ai;
  char *best = NULL;
  bool best_primary = false;
  if (bson_iter_init_find(&it, &doc, "a") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai)) {
    while (bson_iter_next(&ai)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&ai)) continue;
      uint32_t l;
      const uint8_t *d;
      bson_iter_document(&ai, &l, &d);
      bson_t e;
      bson_init_static(&e, d, l);
      bool primary = json_truthy(&e, "primary", false);
      if (!json_truthy(&e, "verified", false) || (best && (best_primary || !primary))) continue;
      free(best);
      best = json_dup(&e, "email");
      best_primary = primary;
    }
  }
  bson_destroy(&doc);
  if (best) {
    free(x->email);
    x->email = best;
    x->email_verified = true;
  }
}

static mq_code_t oauth2_identity(mq_oauth_t *o, provider_t *p, const bson_t *tokens, external_t *x, mq_error_t *err) {
  char *at = json_dup(tokens, "access_token");
  if (!at || !at[0]) {
    free(at);
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "the token endpoint of %s returned no access token", p->name);
  }
  bson_t info;
  mq_code_t rc = get_json(o, p->userinfo_endpoint, at, "the identity provider's user-info endpoint", &info, err);
  if (rc == MQ_OK) {
    x->subject = json_dup(&info, p->subject_field);
    x->email = json_dup(&info, p->email_field);
    x->name = json_dup(&info, p->name_field);
    x->email_verified = json_truthy(&info, p->email_verified_field, p->email_verified_default);
    bson_destroy(&info);
  }
  if (rc == MQ_OK && p->emails_endpoint) {
    size_t n = strlen(at) + 32;
    char *auth = malloc(n);
    snprintf(auth, n, "Authorization: Bearer %s", at);
    const char *hdrs[] = {auth, "Accept: application/json"};
    mq_httpc_request_t req = {.url = p->emails_endpoint, .headers = hdrs, .n_headers = 2, .timeout_ms = o->timeout_ms};
    mq_httpc_response_t resp;
    mq_error_t eerr; /* the list is a refinement: without it the profile's e-mail stands */
    if (mq_httpc_do(&req, "the identity provider's e-mails endpoint", &resp, &eerr) == MQ_OK) {
      if (resp.status == 200) pick_email(resp.body, resp.len, x);
      mq_httpc_response_clear(&resp);
    }
    free(auth);
  }
  free(at);
  return rc;
}

/* ---- handlers ------------------------------------------------------------------------ */

static mq_code_t list_providers(mq_call_t *call, const Marquee__Identity__V1__ListProvidersRequest *req,
                                Marquee__Identity__V1__ListProvidersResponse *resp, mq_error_t *err) {
  (void)req;
  (void)err;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_oauth_t *o = app->oauth;
  resp->providers = mq_arena_alloc(a, (o->n ? o->n : 1) * sizeof *resp->providers);
  for (size_t i = 0; i < o->n; i++) {
    Marquee__Identity__V1__OAuthProvider *p = mq_arena_alloc(a, sizeof *p);
    marquee__identity__v1__oauth_provider__init(p);
    p->name = o->p[i].name;
    p->display_name = o->p[i].display_name;
    p->kind = (char *)(o->p[i].kind == KIND_OIDC ? "oidc" : "oauth2");
    resp->providers[resp->n_providers++] = p;
  }
  return MQ_OK;
}

static void b64url_sha256(const char *in, char out[44]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(in, strlen(in), md, &n, EVP_sha256(), NULL);
  mq_base64url_encode(md, sizeof md, out);
}

static mq_code_t start_oauth(mq_call_t *call, const Marquee__Identity__V1__StartOAuthRequest *req,
                             Marquee__Identity__V1__StartOAuthResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_oauth_t *o = app->oauth;
  provider_t *p = find_provider(o, req->provider);
  if (!p) return mq_error_set(err, MQ_NOT_FOUND, "provider", "no such sign-in provider; see ListProviders");
  bool ok_uri = false;
  for (size_t i = 0; req->redirect_uri && i < o->n_redirects; i++)
    ok_uri |= !strcmp(o->redirect_uris[i], req->redirect_uri);
  if (!ok_uri)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "redirect_uri", "is not one of the server's allowed redirect URIs");
  int intent = req->intent == MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_LINK ? MQ_OAUTH_LINK : MQ_OAUTH_SIGN_IN;
  if (req->intent != MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_UNSPECIFIED &&
      req->intent != MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_SIGN_IN && intent != MQ_OAUTH_LINK)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "intent", "unknown intent");
  const mq_principal_t *who = mq_call_principal(call);
  if (intent == MQ_OAUTH_LINK && !who)
    return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "linking a provider needs a signed-in user");
  if (req->login_hint && req->login_hint[0]) {
    mq_code_t rc = mq_check_text(err, "login_hint", req->login_hint, 1, 254, MQ_TEXT_SINGLE_LINE);
    if (rc != MQ_OK) return rc;
  }
  const char *ip_key = mq_identity_limit_key(call, "oauth-ip", mq_identity_client_address(call));
  mq_code_t rc = mq_identity_over_limit(call, ip_key, 15 * 60000LL, app->cfg->signin_address_limit, false, err);
  if (rc != MQ_OK) return rc;
  mq_identity_count_attempt(call, ip_key);
  if (p->kind == KIND_OIDC && (rc = discover(o, p, err)) != MQ_OK) return rc;

  char *state = mq_arena_alloc(a, MQ_TOKEN_LEN + 1), *nonce = mq_arena_alloc(a, MQ_TOKEN_LEN + 1),
       *verifier = mq_arena_alloc(a, MQ_TOKEN_LEN + 1), *hash = mq_arena_alloc(a, 65), challenge[44];
  mq_token_new("mqs_", state);
  mq_token_new("mqn_", nonce);
  mq_token_new("mqk_", verifier);
  mq_token_hash(state, hash);
  b64url_sha256(verifier, challenge);
  int64_t now = mq_now_unix_ms();
  mq_oauth_flow_t f = {.state_hash = hash,
                       .provider = p->name,
                       .user_id = intent == MQ_OAUTH_LINK ? who->subject : NULL,
                       .nonce = nonce,
                       .code_verifier = verifier,
                       .redirect_uri = req->redirect_uri,
                       .intent = intent,
                       .created_ms = now,
                       .expires_ms = now + app->cfg->oauth_flow_ttl_s * 1000};
  if ((rc = mq_oauth_flow_insert(app->store, &f, err)) != MQ_OK) return rc;

  char *ei = mq_url_escape(p->client_id), *er = mq_url_escape(req->redirect_uri), *es = mq_url_escape(p->scopes),
       *eh = req->login_hint && req->login_hint[0] ? mq_url_escape(req->login_hint) : NULL;
  resp->authorization_url = mq_arena_sprintf(
      a,
      "%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s&nonce=%s&code_challenge=%s"
      "&code_challenge_method=S256%s%s%s%s",
      p->authorization_endpoint, strchr(p->authorization_endpoint, '?') ? '&' : '?', ei, er, es, state, nonce,
      challenge, eh ? "&login_hint=" : "", eh ? eh : "", p->authorization_params ? "&" : "",
      p->authorization_params ? p->authorization_params : "");
  free(ei);
  free(er);
  free(es);
  free(eh);
  resp->state = state;
  resp->nonce = nonce;
  resp->expires_at = mq_pb_timestamp(a, f.expires_ms);
  return MQ_OK;
}

static void oauth_event(mq_event_t *ev, Marquee__Events__V1__OAuthIdentityLinked *pl, mq_call_t *call,
                        const char *user_id, const char *provider, bool created, bool merged) {
  marquee__events__v1__oauth_identity_linked__init(pl);
  pl->user_id = (char *)user_id;
  pl->provider = (char *)provider;
  pl->account_created = created;
  pl->account_merged = merged;
  mq_event_init(ev, "marquee.users", "users.OAuthIdentityLinked", user_id, user_id, mq_call_trace_id(call),
                mq_call_request_id(call));
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_OAUTH_IDENTITY_LINKED;
  ev->env.oauth_identity_linked = pl;
}

static mq_code_t link_identity(mq_call_t *call, provider_t *p, const external_t *x, const char *user_id, bool created,
                               bool merged, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_oauth_identity_t id = {p->name, x->subject, user_id, x->email, mq_now_unix_ms()};
  Marquee__Events__V1__OAuthIdentityLinked pl;
  mq_event_t ev;
  oauth_event(&ev, &pl, call, user_id, p->name, created, merged);
  mq_code_t rc = mq_oauth_identity_insert(app->store, &id, &ev, err);
  if (rc == MQ_OK) {
    return MQ_OK;
  }
  if (rc != MQ_ALREADY_EXISTS) return rc;
  mq_oauth_identity_t cur; /* someone linked it first: fine if it was this account */
  rc = mq_oauth_identity_get(app->store, p->name, x->subject, mq_call_arena(call), &cur, err);
  if (rc == MQ_OK && strcmp(cur.user_id, user_id))
    return mq_error_set(err, MQ_ALREADY_EXISTS, "provider", "this %s account is linked to another Marquee account",
                        p->display_name);
  return rc == MQ_NOT_FOUND ? mq_error_set(err, MQ_ABORTED, NULL, "a concurrent change; retry") : rc;
}

/* Display name for a new account: the provider's name if it is valid text,
 * else the e-mail's local part. */
static const char *display_name_for(mq_call_t *call, const external_t *x) {
  mq_error_t ignored;
  if (x->name && mq_check_text(&ignored, "name", x->name, 1, 100, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    return x->name;
  size_t n = strcspn(x->email, "@");
  return mq_arena_strndup(mq_call_arena(call), x->email, n > 100 ? 100 : n);
}

static mq_code_t sign_in_external(mq_call_t *call, provider_t *p, const external_t *x,
                                  Marquee__Identity__V1__CompleteOAuthResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_user_t u;
  mq_oauth_identity_t linked;
  mq_code_t rc = mq_oauth_identity_get(app->store, p->name, x->subject, a, &linked, err);
  if (rc == MQ_OK) {
    rc = mq_users_get(app->store, linked.user_id, a, &u, err);
    if (rc == MQ_NOT_FOUND)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL, "the linked account no longer exists");
  } else if (rc == MQ_NOT_FOUND) {
    if (!x->email)
      return mq_error_set(err, MQ_FAILED_PRECONDITION, NULL,
                          "%s did not share an e-mail address; allow access to it and try again", p->display_name);
    char *key = mq_arena_alloc(a, strlen(x->email) + 1);
    mq_users_email_key(x->email, key, strlen(x->email) + 1);
    rc = mq_users_get_by_email(app->store, key, a, &u, err);
    if (rc == MQ_OK) { /* merge, on a verified e-mail only */
      if (!x->email_verified)
        return mq_error_set(err, MQ_FAILED_PRECONDITION, "email",
                            "an account with this e-mail exists; sign in to it and link %s from your profile",
                            p->display_name);
      if (u.status == MQ_USER_SUSPENDED)
        return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this account is suspended");
      if ((rc = link_identity(call, p, x, u.id, false, true, err)) != MQ_OK) return rc;
      if (!u.email_verified) { /* the provider proved the address: whoever registered it first keeps nothing */
        Marquee__Events__V1__EmailVerified pl = MARQUEE__EVENTS__V1__EMAIL_VERIFIED__INIT;
        pl.user_id = (char *)u.id;
        mq_event_t ev;
        mq_event_init(&ev, "marquee.users", "users.EmailVerified", u.id, u.id, mq_call_trace_id(call),
                      mq_call_request_id(call));
        ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFIED;
        ev.env.email_verified = &pl;
        bson_t set = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&set, "email_verified", true);
        BSON_APPEND_NULL(&set, "password_hash");
        int64_t now = mq_now_unix_ms();
        BSON_APPEND_DATE_TIME(&set, "sessions_revoked_at", now);
        rc = mq_identity_update_user(call, u.id, &set, &ev, err);
        bson_destroy(&set);
        if (rc != MQ_OK) return rc;
        u.email_verified = true;
        u.password_hash = NULL;
        u.sessions_revoked_ms = now;
      }
      resp->account_merged = true;
    } else if (rc == MQ_NOT_FOUND) { /* a new account */
      memset(&u, 0, sizeof u);
      char *id = mq_arena_alloc(a, 37);
      mq_uuid_v4(id);
      mq_error_t ignored;
      u.id = id;
      u.email = x->email;
      u.email_key = key;
      u.email_verified = x->email_verified;
      u.display_name = display_name_for(call, x);
      u.locale = x->locale && mq_check_language(&ignored, "locale", x->locale) == MQ_OK ? x->locale : "en";
      u.time_zone = "UTC";
      u.currency = "EUR";
      u.roles = MQ_ROLE_ATTENDEE;
      u.status = MQ_USER_ACTIVE;
      u.notify_email_reminders = true;
      u.created_ms = u.updated_ms = mq_now_unix_ms();
      Marquee__Events__V1__UserRegistered pl = MARQUEE__EVENTS__V1__USER_REGISTERED__INIT;
      pl.user_id = id;
      pl.email = (char *)u.email;
      pl.display_name = (char *)u.display_name;
      pl.locale = (char *)u.locale;
      mq_event_t ev;
      mq_event_init(&ev, "marquee.users", "users.UserRegistered", id, id, mq_call_trace_id(call),
                    mq_call_request_id(call));
      ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REGISTERED;
      ev.env.user_registered = &pl;
      rc = mq_users_insert(app->store, &u, &ev, 1, err);
      if (rc == MQ_ALREADY_EXISTS)
        return mq_error_set(err, MQ_ABORTED, NULL, "another sign-in with this e-mail is in progress; retry");
      if (rc != MQ_OK) return rc;
      if ((rc = link_identity(call, p, x, u.id, true, false, err)) != MQ_OK) return rc;
      resp->account_created = true;
    }
  }
  if (rc != MQ_OK) return rc;
  if (u.status == MQ_USER_SUSPENDED) return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this account is suspended");
  resp->auth = mq_arena_alloc(a, sizeof *resp->auth);
  marquee__identity__v1__auth_response__init(resp->auth);
  resp->auth->user = mq_identity_user_to_pb(call, &u);
  return mq_identity_issue_pair(call, &u, NULL, &resp->auth->tokens, err);
}

static mq_code_t link_external(mq_call_t *call, provider_t *p, const external_t *x, const char *user_id,
                               mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_oauth_identity_t *mine;
  size_t n;
  mq_code_t rc = mq_oauth_identities_of(app->store, user_id, mq_call_arena(call), &mine, &n, err);
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(mine[i].provider, p->name) && strcmp(mine[i].subject, x->subject))
      return mq_error_set(err, MQ_ALREADY_EXISTS, "provider",
                          "another %s account is linked to this account; unlink it first", p->display_name);
  return link_identity(call, p, x, user_id, false, false, err);
}

static bool subject_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 255) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

static mq_code_t complete_oauth(mq_call_t *call, const Marquee__Identity__V1__CompleteOAuthRequest *req,
                                Marquee__Identity__V1__CompleteOAuthResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_oauth_t *o = app->oauth;
  if (!mq_token_shape_ok(req->state, "mqs_"))
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "state", "must be the state StartOAuth returned");
  bool has_code = req->code && req->code[0], has_id = req->id_token && req->id_token[0];
  if (has_code == has_id)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "code", "send exactly one of code and id_token");
  char hash[65];
  mq_token_hash(req->state, hash);
  mq_oauth_flow_t f;
  mq_code_t rc = mq_oauth_flow_take(app->store, hash, a, &f, err);
  if (rc != MQ_OK) return rc;
  const mq_principal_t *who = mq_call_principal(call);
  if (f.intent == MQ_OAUTH_LINK && (!who || !f.user_id || strcmp(who->subject, f.user_id)))
    return mq_error_set(err, MQ_PERMISSION_DENIED, NULL, "this link was started by another user");
  provider_t *p = find_provider(o, f.provider);
  if (!p) return mq_error_set(err, MQ_FAILED_PRECONDITION, "state", "the provider is no longer configured");
  if (has_id && p->kind != KIND_OIDC)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "id_token", "%s issues no ID tokens; send the code", p->display_name);
  if (p->kind == KIND_OIDC && (rc = discover(o, p, err)) != MQ_OK) return rc;

  external_t x;
  memset(&x, 0, sizeof x);
  if (has_id) {
    rc = verify_id_token(o, p, req->id_token, f.nonce, &x, err);
  } else {
    bson_t tokens;
    rc = exchange_code(o, p, &f, req->code, &tokens, err);
    if (rc == MQ_OK) {
      if (p->kind == KIND_OIDC) {
        char *idt = json_dup(&tokens, "id_token");
        rc = idt ? verify_id_token(o, p, idt, f.nonce, &x, err)
                 : mq_error_set(err, MQ_UNAVAILABLE, NULL, "the token endpoint of %s returned no ID token", p->name);
        free(idt);
      } else {
        rc = oauth2_identity(o, p, &tokens, &x, err);
      }
      bson_destroy(&tokens);
    }
  }
  /* from here on the identity lives in the call's arena (the reply borrows it) */
  external_t ax = {.email_verified = x.email_verified};
  ax.subject = x.subject ? mq_arena_strdup(a, x.subject) : NULL;
  ax.email = x.email ? mq_arena_strdup(a, x.email) : NULL;
  ax.name = x.name ? mq_arena_strdup(a, x.name) : NULL;
  ax.locale = x.locale ? mq_arena_strdup(a, x.locale) : NULL;
  external_clear(&x);
  x = ax;
  if (rc == MQ_OK && !subject_ok(x.subject))
    rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s returned no usable user id", p->display_name);
  mq_error_t ignored;
  if (rc == MQ_OK && x.email && (strlen(x.email) > 254 || mq_check_email(&ignored, "email", x.email) != MQ_OK)) {
    x.email = NULL; /* an address we cannot use is no address */
    x.email_verified = false;
  }
  if (rc == MQ_OK) {
    if (f.intent == MQ_OAUTH_LINK)
      rc = link_external(call, p, &x, f.user_id, err);
    else
      rc = sign_in_external(call, p, &x, resp, err);
  }
  if (rc == MQ_OK) {
    resp->linked = mq_arena_alloc(a, sizeof *resp->linked);
    marquee__identity__v1__linked_identity__init(resp->linked);
    resp->linked->provider = p->name;
    resp->linked->subject = x.subject;
    resp->linked->email = x.email ? x.email : (char *)"";
    resp->linked->linked_at = mq_pb_timestamp(a, mq_now_unix_ms());
  }
  mq_log(rc == MQ_OK ? MQ_LOG_INFO : MQ_LOG_DEBUG, "oauth.complete",
         "provider=%s intent=%s created=%d merged=%d code=%s", p->name, f.intent == MQ_OAUTH_LINK ? "link" : "sign_in",
         resp->account_created, resp->account_merged, mq_code_name(rc));
  return rc;
}

static mq_code_t list_linked(mq_call_t *call, const Marquee__Identity__V1__ListLinkedIdentitiesRequest *req,
                             Marquee__Identity__V1__ListLinkedIdentitiesResponse *resp, mq_error_t *err) {
  (void)req;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const char *me = mq_call_principal(call)->subject;
  mq_user_t u;
  mq_code_t rc = mq_users_get(app->store, me, a, &u, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "this account no longer exists");
  if (rc != MQ_OK) return rc;
  mq_oauth_identity_t *ids;
  size_t n;
  if ((rc = mq_oauth_identities_of(app->store, me, a, &ids, &n, err)) != MQ_OK) return rc;
  resp->has_password = u.password_hash != NULL;
  resp->identities = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->identities);
  for (size_t i = 0; i < n; i++) {
    Marquee__Identity__V1__LinkedIdentity *l = mq_arena_alloc(a, sizeof *l);
    marquee__identity__v1__linked_identity__init(l);
    l->provider = (char *)ids[i].provider;
    l->subject = (char *)ids[i].subject;
    l->email = (char *)(ids[i].email ? ids[i].email : "");
    l->linked_at = mq_pb_timestamp(a, ids[i].linked_ms);
    resp->identities[resp->n_identities++] = l;
  }
  return MQ_OK;
}

static mq_code_t unlink_identity(mq_call_t *call, const Marquee__Identity__V1__UnlinkIdentityRequest *req,
                                 Marquee__Identity__V1__UnlinkIdentityResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const char *me = mq_call_principal(call)->subject;
  if (!req->provider || !req->provider[0]) return mq_error_set(err, MQ_INVALID_ARGUMENT, "provider", "is required");
  mq_user_t u;
  mq_code_t rc = mq_users_get(app->store, me, a, &u, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "this account no longer exists");
  if (rc != MQ_OK) return rc;
  mq_oauth_identity_t *ids, *target = NULL;
  size_t n;
  if ((rc = mq_oauth_identities_of(app->store, me, a, &ids, &n, err)) != MQ_OK) return rc;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(ids[i].provider, req->provider)) target = &ids[i];
  if (!target) return mq_error_set(err, MQ_NOT_FOUND, "provider", "no identity of this provider is linked");
  if (!u.password_hash && n == 1)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "provider",
                        "this is the account's only way to sign in; set a password (RequestPasswordReset) first");
  Marquee__Events__V1__OAuthIdentityUnlinked pl = MARQUEE__EVENTS__V1__OAUTH_IDENTITY_UNLINKED__INIT;
  pl.user_id = (char *)me;
  pl.provider = (char *)target->provider;
  mq_event_t ev;
  mq_event_init(&ev, "marquee.users", "users.OAuthIdentityUnlinked", me, me, mq_call_trace_id(call),
                mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_OAUTH_IDENTITY_UNLINKED;
  ev.env.oauth_identity_unlinked = &pl;
  if ((rc = mq_oauth_identity_unlink(app->store, target, &ev, err)) != MQ_OK) return rc;
  return MQ_OK;
}

/* Every provider call and store call blocks: nothing here runs inline. */
static const marquee__identity__v1__oauth_service_handlers_t handlers = {
    .list_providers = {list_providers, MQ_POLICY_PUBLIC, 0},
    .start_oauth = {start_oauth, MQ_POLICY_PUBLIC, 0},
    .complete_oauth = {complete_oauth, MQ_POLICY_PUBLIC, 0},
    .list_linked_identities = {list_linked, MQ_POLICY_AUTHENTICATED, 0},
    .unlink_identity = {unlink_identity, MQ_POLICY_AUTHENTICATED, 0},
};

int oauth_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__identity__v1__oauth_service__mq_register(srv, &handlers);
}
