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
 *
 * This file holds the handlers; the provider file is oauth_providers.c and
 * the calls to a provider are oauth_idp.c (both through oauth_idp.h).
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
#include "marquee/identity/v1/identity.mq-server.h"
#include "store/identity/oauth_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

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
    p->kind = (char *)(o->p[i].kind == MQ_OAUTH_KIND_OIDC ? "oidc" : "oauth2");
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
  mq_oauth_provider_t *p = mq_oauth_find_provider(o, req->provider);
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
  if (p->kind == MQ_OAUTH_KIND_OIDC && (rc = mq_oauth_discover(o, p, err)) != MQ_OK) return rc;

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

static mq_code_t link_identity(mq_call_t *call, mq_oauth_provider_t *p, const mq_oauth_external_t *x,
                               const char *user_id, bool created, bool merged, mq_error_t *err) {
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
static const char *display_name_for(mq_call_t *call, const mq_oauth_external_t *x) {
  mq_error_t ignored;
  if (x->name && mq_check_text(&ignored, "name", x->name, 1, 100, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    return x->name;
  size_t n = strcspn(x->email, "@");
  return mq_arena_strndup(mq_call_arena(call), x->email, n > 100 ? 100 : n);
}

static mq_code_t sign_in_external(mq_call_t *call, mq_oauth_provider_t *p, const mq_oauth_external_t *x,
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

static mq_code_t link_external(mq_call_t *call, mq_oauth_provider_t *p, const mq_oauth_external_t *x,
                               const char *user_id, mq_error_t *err) {
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
  mq_oauth_provider_t *p = mq_oauth_find_provider(o, f.provider);
  if (!p) return mq_error_set(err, MQ_FAILED_PRECONDITION, "state", "the provider is no longer configured");
  if (has_id && p->kind != MQ_OAUTH_KIND_OIDC)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "id_token", "%s issues no ID tokens; send the code", p->display_name);
  if (p->kind == MQ_OAUTH_KIND_OIDC && (rc = mq_oauth_discover(o, p, err)) != MQ_OK) return rc;

  mq_oauth_external_t x;
  memset(&x, 0, sizeof x);
  if (has_id) {
    rc = mq_oauth_verify_id_token(o, p, req->id_token, f.nonce, &x, err);
  } else {
    bson_t tokens;
    rc = mq_oauth_exchange_code(o, p, &f, req->code, &tokens, err);
    if (rc == MQ_OK) {
      if (p->kind == MQ_OAUTH_KIND_OIDC) {
        char *idt = mq_oauth_json_dup(&tokens, "id_token");
        rc = idt ? mq_oauth_verify_id_token(o, p, idt, f.nonce, &x, err)
                 : mq_error_set(err, MQ_UNAVAILABLE, NULL, "the token endpoint of %s returned no ID token", p->name);
        free(idt);
      } else {
        rc = mq_oauth2_identity(o, p, &tokens, &x, err);
      }
      bson_destroy(&tokens);
    }
  }
  /* from here on the identity lives in the call's arena (the reply borrows it) */
  mq_oauth_external_t ax = {.email_verified = x.email_verified};
  ax.subject = x.subject ? mq_arena_strdup(a, x.subject) : NULL;
  ax.email = x.email ? mq_arena_strdup(a, x.email) : NULL;
  ax.name = x.name ? mq_arena_strdup(a, x.name) : NULL;
  ax.locale = x.locale ? mq_arena_strdup(a, x.locale) : NULL;
  mq_oauth_external_clear(&x);
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
