/*
 * test_oauth.c — marquee.identity.v1.OAuthService end to end against real
 * local identity providers (scripts/oidc-mock/server.mjs on the npm package
 * oauth2-mock-server): discovery, authorization code + PKCE, ID tokens
 * verified against the providers' JWKS (RS256 "google", ES256 "microsoft"),
 * a GitHub-shaped OAuth 2.0 provider with a client secret and the /user and
 * /user/emails endpoints, native-SDK ID tokens bound to the nonce, merging on
 * a verified e-mail only, linking and unlinking, and the refusals.
 * The test follows the provider's authorization redirect itself (libcurl,
 * no redirects followed) as an app's browser would.
 */
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/identity/v1/identity.mq-client.h"

#define REDIRECT "http://127.0.0.1:1/app/callback"
#define PASSWORD "correct horse battery staple"
#define GH_SECRET "github-client-secret-for-tests"

static mq_test_proc_t srv, srv_down, idp, audit;
static mq_client_t *cl, *cl_down;
static char providers_file[256], ports_file[256];
static char google[128], microsoft[128], github[128];

static void json_url(const char *json, const char *key, char *out, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  out[0] = '\0';
  if (!p) return;
  p += strlen(pat);
  size_t len = strcspn(p, "\"");
  snprintf(out, n, "%.*s", (int)len, p);
}

static int setup(void **state) {
  (void)state;
  snprintf(ports_file, sizeof ports_file, "/tmp/mq-oidc-%d.json", (int)getpid());
  const char *args[] = {"--secret-github", GH_SECRET, NULL};
  if (mq_test_oidc_start(&idp, ports_file, args) != 0) return -1;
  FILE *f = fopen(ports_file, "r");
  if (!f) return -1;
  char json[512] = "";
  size_t n = fread(json, 1, sizeof json - 1, f);
  json[n] = '\0';
  fclose(f);
  json_url(json, "google", google, sizeof google);
  json_url(json, "microsoft", microsoft, sizeof microsoft);
  json_url(json, "github", github, sizeof github);
  snprintf(providers_file, sizeof providers_file, "/tmp/mq-oauth-providers-%d.json", (int)getpid());
  f = fopen(providers_file, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"redirect_uris\": [\"%s\"], \"providers\": ["
          "{\"name\": \"google\", \"display_name\": \"Google\", \"kind\": \"oidc\", \"issuer\": \"%s\","
          " \"client_id\": \"marquee-web\", \"extra_audiences\": [\"marquee-ios\"]},"
          "{\"name\": \"microsoft\", \"display_name\": \"Microsoft\", \"kind\": \"oidc\", \"issuer\": \"%s\","
          " \"client_id\": \"marquee-ms\"},"
          "{\"name\": \"github\", \"display_name\": \"GitHub\", \"kind\": \"oauth2\","
          " \"authorization_endpoint\": \"%s/authorize\", \"token_endpoint\": \"%s/token\","
          " \"userinfo_endpoint\": \"%s/user\", \"emails_endpoint\": \"%s/user/emails\","
          " \"client_id\": \"marquee-gh\", \"client_secret_env\": \"MARQUEE_OAUTH_SECRET_GITHUB\","
          " \"token_auth\": \"client_secret_basic\", \"scopes\": \"read:user user:email\"},"
          "{\"name\": \"github-misconfigured\", \"kind\": \"oauth2\","
          " \"authorization_endpoint\": \"%s/authorize\", \"token_endpoint\": \"%s/token\","
          " \"userinfo_endpoint\": \"%s/user\", \"client_id\": \"marquee-gh\","
          " \"client_secret_env\": \"MARQUEE_OAUTH_SECRET_WRONG\"}"
          "]}",
          REDIRECT, google, microsoft, github, github, github, github, github, github, github);
  fclose(f);
  char cfg[300];
  snprintf(cfg, sizeof cfg, "MARQUEE_OAUTH_PROVIDERS=%s", providers_file);
  const char *env[] = {cfg,
                       "MARQUEE_OAUTH_SECRET_GITHUB=" GH_SECRET,
                       "MARQUEE_OAUTH_SECRET_WRONG=not-the-secret",
                       "MARQUEE_ARGON2_MEMORY_KIB=1024",
                       "MARQUEE_ARGON2_ITERATIONS=1",
                       "MARQUEE_SIGNUP_ADDRESS_LIMIT=1000",
                       "MARQUEE_SIGNIN_ADDRESS_LIMIT=1000",
                       NULL};
  if (mq_test_server_start(&srv, NULL, env) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  /* a second server whose provider does not answer */
  char down_file[256];
  snprintf(down_file, sizeof down_file, "/tmp/mq-oauth-down-%d.json", (int)getpid());
  f = fopen(down_file, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"redirect_uris\": [\"%s\"], \"providers\": [{\"name\": \"google\", \"kind\": \"oidc\","
          " \"issuer\": \"http://127.0.0.1:%d\", \"client_id\": \"x\"}]}",
          REDIRECT, mq_test_free_port());
  fclose(f);
  char cfg2[300];
  snprintf(cfg2, sizeof cfg2, "MARQUEE_OAUTH_PROVIDERS=%s", down_file);
  const char *env2[] = {cfg2, "MARQUEE_OAUTH_HTTP_TIMEOUT_MS=1000", NULL};
  if (mq_test_server_start(&srv_down, srv.db, env2) != 0) return -1;
  cl_down = mq_test_client(&srv_down);
  return cl && cl_down ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  mq_client_destroy(cl_down);
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  int d = mq_test_proc_stop(&srv_down, SIGTERM, 20000);
  mq_test_proc_stop(&idp, SIGTERM, 5000);
  mq_test_drop_db(NULL, srv.db);
  unlink(providers_file);
  unlink(ports_file);
  return a == 0 && s == 0 && d == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------------- */

static int seq;

static mq_code_t start(mq_client_t *c, const char *provider, const char *hint, const char *bearer, bool link,
                       Marquee__Identity__V1__StartOAuthResponse **out, mq_error_t *err) {
  Marquee__Identity__V1__StartOAuthRequest req = MARQUEE__IDENTITY__V1__START_OAUTH_REQUEST__INIT;
  req.provider = (char *)provider;
  req.redirect_uri = (char *)REDIRECT;
  req.login_hint = (char *)(hint ? hint : "");
  req.intent = link ? MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_LINK
                    : MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_SIGN_IN;
  mq_call_opts_t o = {.bearer_token = bearer};
  return marquee__identity__v1__oauth_service__start_oauth__call(c, &req, out, &o, err);
}

/* GETs url without following the redirect; copies query parameter `param`
 * of the Location into out. */
static bool redirect_param(const char *url, const char *param, char *out, size_t n) {
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
  bool ok = false;
  char *loc = NULL;
  if (curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc) {
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", param);
    const char *p = strstr(loc, pat);
    if (p) {
      p += strlen(pat);
      snprintf(out, n, "%.*s", (int)strcspn(p, "&"), p);
      ok = true;
    }
  }
  fclose(devnull);
  curl_easy_cleanup(h);
  return ok;
}

static mq_code_t complete(mq_client_t *c, const char *state, const char *code, const char *id_token, const char *bearer,
                          Marquee__Identity__V1__CompleteOAuthResponse **out, mq_error_t *err) {
  Marquee__Identity__V1__CompleteOAuthRequest req = MARQUEE__IDENTITY__V1__COMPLETE_OAUTH_REQUEST__INIT;
  req.state = (char *)state;
  req.code = (char *)(code ? code : "");
  req.id_token = (char *)(id_token ? id_token : "");
  mq_call_opts_t o = {.bearer_token = bearer};
  return marquee__identity__v1__oauth_service__complete_oauth__call(c, &req, out, &o, err);
}

/* The whole browser round trip: StartOAuth, the provider's redirect, CompleteOAuth. */
static mq_code_t oauth_flow(const char *provider, const char *hint, const char *bearer, bool link,
                            Marquee__Identity__V1__CompleteOAuthResponse **out, mq_error_t *err) {
  Marquee__Identity__V1__StartOAuthResponse *s = NULL;
  mq_code_t rc = start(cl, provider, hint, bearer, link, &s, err);
  if (rc != MQ_OK) {
    fprintf(stderr, "StartOAuth(%s): %s: %s\n", provider, mq_code_name(rc), err->message);
    return rc;
  }
  char code[128] = "", state[128] = "";
  assert_true(redirect_param(s->authorization_url, "code", code, sizeof code));
  assert_true(redirect_param(s->authorization_url, "state", state, sizeof state));
  assert_string_equal(state, s->state); /* the provider echoes it; the app checks it */
  rc = complete(cl, s->state, code, NULL, bearer, out, err);
  if (rc != MQ_OK) fprintf(stderr, "CompleteOAuth(%s): %s: %s\n", provider, mq_code_name(rc), err->message);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  return rc;
}

static void hint(char *out, size_t n, const char *sub, const char *email, bool verified) {
  snprintf(out, n, "sub=%s;email=%s;verified=%s;name=Test User", sub, email, verified ? "true" : "false");
}

static void unique(char *sub, size_t ns, char *email, size_t ne, const char *tag) {
  seq++;
  snprintf(sub, ns, "%s-%d-%d", tag, (int)getpid(), seq);
  snprintf(email, ne, "%s.%d.%d@example.com", tag, (int)getpid(), seq);
}

static mq_code_t get_me(const char *access, Marquee__Identity__V1__User **out, mq_error_t *err) {
  Marquee__Identity__V1__GetMeRequest req = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  mq_call_opts_t o = {.bearer_token = access};
  return marquee__identity__v1__account_service__get_me__call(cl, &req, out, &o, err);
}

static Marquee__Identity__V1__AuthResponse *sign_up(const char *email) {
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = (char *)email;
  req.password = (char *)PASSWORD;
  req.display_name = (char *)"Password User";
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__account_service__sign_up__call(cl, &req, &r, NULL, &err), MQ_OK);
  return r;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_list_providers(void **state) {
  (void)state;
  Marquee__Identity__V1__ListProvidersRequest req = MARQUEE__IDENTITY__V1__LIST_PROVIDERS_REQUEST__INIT;
  Marquee__Identity__V1__ListProvidersResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__identity__v1__oauth_service__list_providers__call(cl, &req, &r, NULL, &err), MQ_OK);
  assert_int_equal(r->n_providers, 4);
  assert_string_equal(r->providers[0]->name, "google");
  assert_string_equal(r->providers[0]->display_name, "Google");
  assert_string_equal(r->providers[0]->kind, "oidc");
  assert_string_equal(r->providers[2]->kind, "oauth2");
  marquee__identity__v1__list_providers_response__free_unpacked(r, NULL);
}

static void test_oidc_sign_up_then_sign_in(void **state) {
  (void)state;
  char sub[64], email[96], h[200];
  unique(sub, sizeof sub, email, sizeof email, "goo");
  hint(h, sizeof h, sub, email, true);
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_OK);
  assert_true(r->account_created);
  assert_false(r->account_merged);
  assert_string_equal(r->auth->user->email, email);
  assert_true(r->auth->user->email_verified);
  assert_string_equal(r->auth->user->display_name, "Test User");
  assert_string_equal(r->linked->provider, "google");
  assert_string_equal(r->linked->subject, sub);
  char uid[64];
  snprintf(uid, sizeof uid, "%s", r->auth->user->user_id);
  Marquee__Identity__V1__User *me = NULL;
  assert_int_equal(get_me(r->auth->tokens->access_token, &me, &err), MQ_OK);
  assert_string_equal(me->user_id, uid);
  marquee__identity__v1__user__free_unpacked(me, NULL);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);

  /* the same person again: the same account */
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_OK);
  assert_false(r->account_created);
  assert_string_equal(r->auth->user->user_id, uid);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);

  /* no password was set: password sign-in answers like a wrong password */
  Marquee__Identity__V1__SignInRequest si = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  si.email = email;
  si.password = (char *)PASSWORD;
  Marquee__Identity__V1__AuthResponse *ar = NULL;
  assert_int_equal(marquee__identity__v1__account_service__sign_in__call(cl, &si, &ar, NULL, &err), MQ_UNAUTHENTICATED);

  /* the events reach Kafka and the audit log */
  char filter[200];
  snprintf(filter, sizeof filter,
           "{\"aggregate_id\": \"%s\", \"type\": {\"$in\": [\"users.UserRegistered\", "
           "\"users.OAuthIdentityLinked\"]}}",
           uid);
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, "audit_log", filter) != 2 && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, "audit_log", filter), 2);
}

static void test_es256_provider(void **state) {
  (void)state;
  char sub[64], email[96], h[200];
  unique(sub, sizeof sub, email, sizeof email, "ms");
  hint(h, sizeof h, sub, email, true);
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(oauth_flow("microsoft", h, NULL, false, &r, &err), MQ_OK);
  assert_true(r->account_created);
  assert_string_equal(r->linked->provider, "microsoft");
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
}

static void test_github_oauth2(void **state) {
  (void)state;
  char sub[64], email[96], h[200];
  unique(sub, sizeof sub, email, sizeof email, "gh");
  snprintf(sub, sizeof sub, "%d%d", (int)getpid(), 7000 + seq); /* GitHub ids are numbers */
  hint(h, sizeof h, sub, email, true);
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(oauth_flow("github", h, NULL, false, &r, &err), MQ_OK);
  assert_true(r->account_created);
  assert_string_equal(r->linked->subject, sub);
  assert_string_equal(r->auth->user->email, email); /* from /user/emails: /user had none */
  assert_true(r->auth->user->email_verified);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);

  /* a wrong client secret: the provider refuses the exchange */
  unique(sub, sizeof sub, email, sizeof email, "gh2");
  hint(h, sizeof h, sub, email, true);
  assert_int_equal(oauth_flow("github-misconfigured", h, NULL, false, &r, &err), MQ_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "invalid_client"));
}

static void test_state_is_single_use_and_bound(void **state) {
  (void)state;
  char sub[64], email[96], h[200], code[128];
  unique(sub, sizeof sub, email, sizeof email, "once");
  hint(h, sizeof h, sub, email, true);
  Marquee__Identity__V1__StartOAuthResponse *s = NULL;
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  assert_int_equal(start(cl, "google", h, NULL, false, &s, &err), MQ_OK);
  assert_non_null(strstr(s->authorization_url, "code_challenge_method=S256"));
  assert_non_null(strstr(s->authorization_url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fapp%2Fcallback"));
  assert_true(redirect_param(s->authorization_url, "code", code, sizeof code));
  assert_int_equal(complete(cl, s->state, code, NULL, NULL, &r, &err), MQ_OK);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  /* the same state again */
  assert_int_equal(complete(cl, s->state, code, NULL, NULL, &r, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "state");
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* a state nobody issued, and one of the wrong shape */
  assert_int_equal(complete(cl, "mqs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x", NULL, NULL, &r, &err),
                   MQ_FAILED_PRECONDITION);
  assert_int_equal(complete(cl, "{\"$ne\": 1}", "x", NULL, NULL, &r, &err), MQ_INVALID_ARGUMENT);
  /* both or neither of code and id_token */
  assert_int_equal(start(cl, "google", h, NULL, false, &s, &err), MQ_OK);
  assert_int_equal(complete(cl, s->state, NULL, NULL, NULL, &r, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(complete(cl, s->state, "a", "b", NULL, &r, &err), MQ_INVALID_ARGUMENT);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* a code the provider refuses */
  unique(sub, sizeof sub, email, sizeof email, "refused");
  snprintf(h, sizeof h, "sub=%s;email=%s;refuse=1", sub, email);
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_UNAUTHENTICATED);
  assert_string_equal(err.field, "code");
}

static void test_start_refusals(void **state) {
  (void)state;
  Marquee__Identity__V1__StartOAuthResponse *s = NULL;
  mq_error_t err;
  assert_int_equal(start(cl, "myspace", NULL, NULL, false, &s, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "provider");
  Marquee__Identity__V1__StartOAuthRequest req = MARQUEE__IDENTITY__V1__START_OAUTH_REQUEST__INIT;
  req.provider = (char *)"google";
  req.redirect_uri = (char *)"https://evil.example/steal";
  assert_int_equal(marquee__identity__v1__oauth_service__start_oauth__call(cl, &req, &s, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "redirect_uri");
  /* linking needs a signed-in caller */
  assert_int_equal(start(cl, "google", NULL, NULL, true, &s, &err), MQ_UNAUTHENTICATED);
  /* a provider that does not answer */
  assert_int_equal(start(cl_down, "google", NULL, NULL, false, &s, &err), MQ_UNAVAILABLE);
}

static void test_merge_only_on_verified_email(void **state) {
  (void)state;
  char sub[64], email[96], h[200];
  unique(sub, sizeof sub, email, sizeof email, "merge");
  Marquee__Identity__V1__AuthResponse *pw = sign_up(email); /* unverified e-mail, with a password */
  mq_error_t err;
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  /* the provider does not vouch for the address: no merge */
  hint(h, sizeof h, sub, email, false);
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "email");
  /* it does: merged into the same account, the unverified password dropped */
  hint(h, sizeof h, sub, email, true);
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_OK);
  assert_true(r->account_merged);
  assert_false(r->account_created);
  assert_string_equal(r->auth->user->user_id, pw->user->user_id);
  assert_true(r->auth->user->email_verified);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  /* whoever registered the address first keeps nothing: refresh token and password are dead */
  Marquee__Identity__V1__RefreshTokenRequest rr = MARQUEE__IDENTITY__V1__REFRESH_TOKEN_REQUEST__INIT;
  rr.refresh_token = pw->tokens->refresh_token;
  Marquee__Identity__V1__TokenPair *tp = NULL;
  assert_int_equal(marquee__identity__v1__account_service__refresh_token__call(cl, &rr, &tp, NULL, &err),
                   MQ_UNAUTHENTICATED);
  Marquee__Identity__V1__SignInRequest si = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  si.email = email;
  si.password = (char *)PASSWORD;
  Marquee__Identity__V1__AuthResponse *ar = NULL;
  assert_int_equal(marquee__identity__v1__account_service__sign_in__call(cl, &si, &ar, NULL, &err), MQ_UNAUTHENTICATED);
  marquee__identity__v1__auth_response__free_unpacked(pw, NULL);
}

/* A native SDK's ID token, obtained from the provider with StartOAuth's nonce. */
static char *native_id_token(const char *issuer, const char *nonce, const char *h, const char *client_id) {
  char url[1024], code[128];
  char *eh = curl_easy_escape(NULL, h, 0);
  snprintf(url, sizeof url, "%s/authorize?response_type=code&redirect_uri=%s&state=x&nonce=%s&login_hint=%s", issuer,
           "http%3A%2F%2F127.0.0.1%3A1%2Fnative", nonce, eh);
  curl_free(eh);
  if (!redirect_param(url, "code", code, sizeof code)) return NULL;
  CURL *c = curl_easy_init();
  char tok_url[256], body[512];
  snprintf(tok_url, sizeof tok_url, "%s/token", issuer);
  snprintf(body, sizeof body, "grant_type=authorization_code&code=%s&client_id=%s&redirect_uri=x", code, client_id);
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  curl_easy_setopt(c, CURLOPT_URL, tok_url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  CURLcode cc = curl_easy_perform(c);
  fclose(mem);
  curl_easy_cleanup(c);
  char *tok = NULL;
  const char *p = cc == CURLE_OK && buf ? strstr(buf, "\"id_token\":\"") : NULL;
  if (p) {
    p += 12;
    tok = strndup(p, strcspn(p, "\""));
  }
  free(buf);
  return tok;
}

static void test_native_id_token(void **state) {
  (void)state;
  char sub[64], email[96], h[200];
  unique(sub, sizeof sub, email, sizeof email, "ios");
  hint(h, sizeof h, sub, email, true);
  Marquee__Identity__V1__StartOAuthResponse *s = NULL;
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  /* bound to another flow's nonce: refused */
  assert_int_equal(start(cl, "google", NULL, NULL, false, &s, &err), MQ_OK);
  char *tok = native_id_token(google, "some-other-nonce", h, "marquee-ios");
  assert_non_null(tok);
  assert_int_equal(complete(cl, s->state, NULL, tok, NULL, &r, &err), MQ_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "nonce"));
  free(tok);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* issued for another app: refused */
  assert_int_equal(start(cl, "google", NULL, NULL, false, &s, &err), MQ_OK);
  tok = native_id_token(google, s->nonce, h, "someone-elses-app");
  assert_int_equal(complete(cl, s->state, NULL, tok, NULL, &r, &err), MQ_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "audience"));
  free(tok);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* from another issuer (the ES256 provider) for a google flow: refused */
  assert_int_equal(start(cl, "google", NULL, NULL, false, &s, &err), MQ_OK);
  tok = native_id_token(microsoft, s->nonce, h, "marquee-ios");
  assert_int_equal(complete(cl, s->state, NULL, tok, NULL, &r, &err), MQ_UNAUTHENTICATED);
  free(tok);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* tampered: refused */
  assert_int_equal(start(cl, "google", NULL, NULL, false, &s, &err), MQ_OK);
  tok = native_id_token(google, s->nonce, h, "marquee-ios");
  char *dot = strchr(tok, '.');
  dot[3] = dot[3] == 'A' ? 'B' : 'A';
  assert_int_equal(complete(cl, s->state, NULL, tok, NULL, &r, &err), MQ_UNAUTHENTICATED);
  free(tok);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* the right nonce and an extra audience (the iOS app): signed in */
  assert_int_equal(start(cl, "google", NULL, NULL, false, &s, &err), MQ_OK);
  tok = native_id_token(google, s->nonce, h, "marquee-ios");
  assert_int_equal(complete(cl, s->state, NULL, tok, NULL, &r, &err), MQ_OK);
  assert_true(r->account_created);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  free(tok);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* ID tokens only from OIDC providers */
  assert_int_equal(start(cl, "github", NULL, NULL, false, &s, &err), MQ_OK);
  assert_int_equal(complete(cl, s->state, NULL, "a.b.c", NULL, &r, &err), MQ_INVALID_ARGUMENT);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
}

static mq_code_t list_linked(const char *bearer, Marquee__Identity__V1__ListLinkedIdentitiesResponse **out,
                             mq_error_t *err) {
  Marquee__Identity__V1__ListLinkedIdentitiesRequest req = MARQUEE__IDENTITY__V1__LIST_LINKED_IDENTITIES_REQUEST__INIT;
  mq_call_opts_t o = {.bearer_token = bearer};
  return marquee__identity__v1__oauth_service__list_linked_identities__call(cl, &req, out, &o, err);
}

static mq_code_t unlink_provider(const char *bearer, const char *provider, mq_error_t *err) {
  Marquee__Identity__V1__UnlinkIdentityRequest req = MARQUEE__IDENTITY__V1__UNLINK_IDENTITY_REQUEST__INIT;
  req.provider = (char *)provider;
  Marquee__Identity__V1__UnlinkIdentityResponse *r = NULL;
  mq_call_opts_t o = {.bearer_token = bearer};
  mq_code_t rc = marquee__identity__v1__oauth_service__unlink_identity__call(cl, &req, &r, &o, err);
  if (r) marquee__identity__v1__unlink_identity_response__free_unpacked(r, NULL);
  return rc;
}

static void test_link_and_unlink(void **state) {
  (void)state;
  char sub[64], email[96], h[200], pw_email[96], other[64];
  unique(sub, sizeof sub, pw_email, sizeof pw_email, "linker");
  Marquee__Identity__V1__AuthResponse *me = sign_up(pw_email);
  const char *tok = me->tokens->access_token;
  /* the provider account has another address: linking does not care */
  unique(other, sizeof other, email, sizeof email, "linked");
  hint(h, sizeof h, sub, email, false);
  Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
  mq_error_t err;
  /* finishing someone else's link flow is refused */
  Marquee__Identity__V1__StartOAuthResponse *s = NULL;
  assert_int_equal(start(cl, "google", h, tok, true, &s, &err), MQ_OK);
  char code[128];
  assert_true(redirect_param(s->authorization_url, "code", code, sizeof code));
  char *intruder = mq_test_token("00000000-0000-4000-8000-00000000beef", MQ_ROLE_ATTENDEE);
  assert_int_equal(complete(cl, s->state, code, NULL, intruder, &r, &err), MQ_PERMISSION_DENIED);
  marquee__identity__v1__start_oauth_response__free_unpacked(s, NULL);
  /* the owner links */
  assert_int_equal(oauth_flow("google", h, tok, true, &r, &err), MQ_OK);
  assert_null(r->auth);
  assert_string_equal(r->linked->subject, sub);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  Marquee__Identity__V1__ListLinkedIdentitiesResponse *l = NULL;
  assert_int_equal(list_linked(tok, &l, &err), MQ_OK);
  assert_int_equal(l->n_identities, 1);
  assert_string_equal(l->identities[0]->provider, "google");
  assert_true(l->has_password);
  marquee__identity__v1__list_linked_identities_response__free_unpacked(l, NULL);
  /* signing in with the provider now reaches the password account */
  assert_int_equal(oauth_flow("google", h, NULL, false, &r, &err), MQ_OK);
  assert_string_equal(r->auth->user->user_id, me->user->user_id);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  /* the same provider identity cannot be linked to a second account */
  char e2[96], s2[64];
  unique(s2, sizeof s2, e2, sizeof e2, "second");
  Marquee__Identity__V1__AuthResponse *two = sign_up(e2);
  assert_int_equal(oauth_flow("google", h, two->tokens->access_token, true, &r, &err), MQ_ALREADY_EXISTS);
  marquee__identity__v1__auth_response__free_unpacked(two, NULL);
  /* unlink; then it is gone */
  assert_int_equal(unlink_provider(tok, "google", &err), MQ_OK);
  assert_int_equal(unlink_provider(tok, "google", &err), MQ_NOT_FOUND);
  assert_int_equal(unlink_provider(NULL, "google", &err), MQ_UNAUTHENTICATED);
  marquee__identity__v1__auth_response__free_unpacked(me, NULL);

  /* a provider-only account cannot drop its only way in */
  unique(sub, sizeof sub, email, sizeof email, "only");
  hint(h, sizeof h, sub, email, true);
  assert_int_equal(oauth_flow("microsoft", h, NULL, false, &r, &err), MQ_OK);
  char access[2048];
  snprintf(access, sizeof access, "%s", r->auth->tokens->access_token);
  marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
  assert_int_equal(list_linked(access, &l, &err), MQ_OK);
  assert_false(l->has_password);
  marquee__identity__v1__list_linked_identities_response__free_unpacked(l, NULL);
  assert_int_equal(unlink_provider(access, "microsoft", &err), MQ_FAILED_PRECONDITION);
  free(intruder);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_providers),
      cmocka_unit_test(test_oidc_sign_up_then_sign_in),
      cmocka_unit_test(test_es256_provider),
      cmocka_unit_test(test_github_oauth2),
      cmocka_unit_test(test_state_is_single_use_and_bound),
      cmocka_unit_test(test_start_refusals),
      cmocka_unit_test(test_merge_only_on_verified_email),
      cmocka_unit_test(test_native_id_token),
      cmocka_unit_test(test_link_and_unlink),
  };
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
