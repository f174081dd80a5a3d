/*
 * oauth_idp.h — the identity module's OAuth/OIDC internals, shared by its
 * three files: oauth_providers.c (the provider file: parse, validate, free),
 * oauth_idp.c (the calls to a provider: discovery, JWKS, code exchange,
 * ID-token verification, user info) and oauth.c (OAuthService's handlers).
 * Nothing outside handlers/identity/ includes it.
 *
 * Threads: a provider's runtime fields (discovered endpoints, its JWKS) are
 * guarded by its `mu`; everything else is fixed after mq_oauth_open.
 * Ownership: strings of a provider are malloc'ed and freed by mq_oauth_free;
 * an mq_oauth_external_t owns its strings until mq_oauth_external_clear.
 */
#ifndef MQ_OAUTH_IDP_H
#define MQ_OAUTH_IDP_H

#include <bson/bson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mq_error.h"
#include "handlers/identity/identity.h"
#include "lib/mq_jwks.h"
#include "store/identity/oauth_store.h"

enum { MQ_OAUTH_KIND_OIDC = 1, MQ_OAUTH_KIND_OAUTH2 = 2 };

#define MAX_PROVIDERS 16
#define MAX_REDIRECTS 32
#define JWKS_MAX_AGE_MS (3600 * 1000LL)
#define JWKS_MIN_REFETCH_MS (30 * 1000LL)

typedef struct jwks_ref {
  mq_jwks_t *keys;
  int refs; /* holders + 1 while current */
} jwks_ref_t;

typedef struct mq_oauth_provider {
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
} mq_oauth_provider_t;

struct mq_oauth {
  mq_oauth_provider_t p[MAX_PROVIDERS];
  size_t n;
  char *redirect_uris[MAX_REDIRECTS];
  size_t n_redirects;
  int timeout_ms;
};

/* What a provider says of the person signing in. */
typedef struct mq_oauth_external {
  char *subject, *email, *name, *locale;
  bool email_verified;
} mq_oauth_external_t;

/* ---- oauth_providers.c ---- */
/* The provider named `name`, or NULL. */
mq_oauth_provider_t *mq_oauth_find_provider(mq_oauth_t *o, const char *name);
/* A malloc'ed copy of a string field of a JSON document, or NULL. */
char *mq_oauth_json_dup(const bson_t *doc, const char *key);
/* A boolean field (true, or the string "true"), or `def` when absent. */
bool mq_oauth_json_truthy(const bson_t *doc, const char *key, bool def);

/* ---- oauth_idp.c: calls to the provider, bounded by o->timeout_ms ---- */
/* OIDC: fetches the discovery document once per process. UNAVAILABLE when
 * the provider cannot be reached or answers nonsense. */
mq_code_t mq_oauth_discover(mq_oauth_t *o, mq_oauth_provider_t *p, mq_error_t *err);
/* Verifies an ID token (signature by the provider's JWKS, issuer, audience,
 * expiry, nonce) and fills *x (clear it). UNAUTHENTICATED when it fails. */
mq_code_t mq_oauth_verify_id_token(mq_oauth_t *o, mq_oauth_provider_t *p, const char *token, const char *nonce,
                                   mq_oauth_external_t *x, mq_error_t *err);
/* Exchanges an authorization code (with the flow's PKCE verifier) for the
 * provider's token response in *out (caller destroys on MQ_OK). */
mq_code_t mq_oauth_exchange_code(mq_oauth_t *o, mq_oauth_provider_t *p, const mq_oauth_flow_t *f, const char *code,
                                 bson_t *out, mq_error_t *err);
/* OAuth 2 (no ID token): the user-info (and e-mails) endpoints into *x. */
mq_code_t mq_oauth2_identity(mq_oauth_t *o, mq_oauth_provider_t *p, const bson_t *tokens, mq_oauth_external_t *x,
                             mq_error_t *err);
void mq_oauth_external_clear(mq_oauth_external_t *x);

#endif
