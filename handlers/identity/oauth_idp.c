/*
 * oauth_idp.c — Marquee as the client of an identity provider: the OIDC
 * discovery document (fetched once per process), the provider's JWKS
 * (cached an hour, fetched again for an unknown kid at most every 30 s),
 * the authorization-code exchange with PKCE, ID-token verification
 * (lib/mq_jwks.h: signature, issuer, audience, expiry, nonce), and for
 * plain OAuth 2 providers the user-info and e-mails endpoints. Every call
 * goes through lib/mq_httpc.h and is bounded by
 * MARQUEE_OAUTH_HTTP_TIMEOUT_MS; a provider that cannot be reached or
 * answers nonsense is UNAVAILABLE, never INTERNAL.
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
mq_code_t mq_oauth_discover(mq_oauth_t *o, mq_oauth_provider_t *p, mq_error_t *err) {
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
      char *iss = mq_oauth_json_dup(&doc, "issuer");
      if (status != 200 || !iss || strcmp(iss, p->issuer)) {
        rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "the discovery document of %s is unusable (HTTP %ld%s)", p->name,
                          status, iss && strcmp(iss, p->issuer) ? ", issuer mismatch" : "");
      } else {
        char **slots[] = {&p->authorization_endpoint, &p->token_endpoint, &p->jwks_uri, &p->userinfo_endpoint};
        const char *keys[] = {"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"};
        for (size_t i = 0; i < 4; i++) {
          char *v = mq_oauth_json_dup(&doc, keys[i]);
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

static void jwks_release(mq_oauth_provider_t *p, jwks_ref_t *r) {
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
static mq_code_t jwks_acquire(mq_oauth_t *o, mq_oauth_provider_t *p, const char *kid, jwks_ref_t **out,
                              mq_error_t *err) {
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
  char *kid = mq_oauth_json_dup(&doc, "kid");
  bson_destroy(&doc);
  return kid;
}

void mq_oauth_external_clear(mq_oauth_external_t *x) {
  free(x->subject);
  free(x->email);
  free(x->name);
  free(x->locale);
  memset(x, 0, sizeof *x);
}

mq_code_t mq_oauth_verify_id_token(mq_oauth_t *o, mq_oauth_provider_t *p, const char *token, const char *nonce,
                                   mq_oauth_external_t *x, mq_error_t *err) {
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
  char *e = mq_oauth_json_dup(doc, "error");
  size_t o = 0;
  for (const char *s = e ? e : "refused"; *s && o + 1 < n && o < 40; s++)
    if ((*s >= 'a' && *s <= 'z') || *s == '_') out[o++] = *s;
  out[o] = '\0';
  free(e);
}

/* Exchanges the code (with the PKCE verifier) at the token endpoint. */
mq_code_t mq_oauth_exchange_code(mq_oauth_t *o, mq_oauth_provider_t *p, const mq_oauth_flow_t *f, const char *code,
                                 bson_t *out, mq_error_t *err) {
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
static void pick_email(const char *body, size_t len, mq_oauth_external_t *x) {
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
      bool primary = mq_oauth_json_truthy(&e, "primary", false);
      if (!mq_oauth_json_truthy(&e, "verified", false) || (best && (best_primary || !primary))) continue;
      free(best);
      best = mq_oauth_json_dup(&e, "email");
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

mq_code_t mq_oauth2_identity(mq_oauth_t *o, mq_oauth_provider_t *p, const bson_t *tokens, mq_oauth_external_t *x,
                             mq_error_t *err) {
  char *at = mq_oauth_json_dup(tokens, "access_token");
  if (!at || !at[0]) {
    free(at);
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "the token endpoint of %s returned no access token", p->name);
  }
  bson_t info;
  mq_code_t rc = get_json(o, p->userinfo_endpoint, at, "the identity provider's user-info endpoint", &info, err);
  if (rc == MQ_OK) {
    x->subject = mq_oauth_json_dup(&info, p->subject_field);
    x->email = mq_oauth_json_dup(&info, p->email_field);
    x->name = mq_oauth_json_dup(&info, p->name_field);
    x->email_verified = mq_oauth_json_truthy(&info, p->email_verified_field, p->email_verified_default);
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
