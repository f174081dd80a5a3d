/*
 * cli.c — the `marquee` command-line client, on the C client library.
 *
 *   marquee [--target HOST:PORT] [--token TOKEN] [--tls-ca FILE]
 *           [--tls-name NAME] [--deadline-ms N] COMMAND [ARGS]
 *
 * Global options come before the command; the target and token default to
 * $MARQUEE_CLI_TARGET (else 127.0.0.1:50051) and $MARQUEE_CLI_TOKEN. The
 * commands are the rows of `commands[]` below (name, usage, help, function):
 * adding a subcommand is adding a row and its function. A command function
 * gets the connected client and its own arguments and returns the exit code.
 *
 * Exit codes: 0 success; 1 a call failed (printed as
 * "marquee: <CODE>: <message> (field: <f>)" on stderr) or a health check was
 * not SERVING; 2 usage errors; 128+signal when interrupted (SIGINT/SIGTERM
 * cancel a running stream, so the server sees CANCELLED).
 * Invariant: SIGINT and SIGTERM are blocked in every thread (gRPC's threads
 * inherit the mask) and handled by one sigwait thread.
 * Read next: mq_client.h.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clients/mq_client.h"
#include "grpc/health/v1/health.mq-client.h"
#include "lib/mq_event_catalog.h"
#include "lib/mq_money.h"
#include "lib/mq_seal.h"
#include "marquee/analytics/v1/analytics.mq-client.h"
#include "marquee/bookings/v1/availability.mq-client.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/bookings/v1/tickets.mq-client.h"
#include "marquee/catalog/v1/categories.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/media.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "marquee/notifications/v1/webhooks.mq-client.h"
#include "marquee/payments/v1/payments.mq-client.h"
#include "marquee/search/v1/search.mq-client.h"
#include "marquee/system/v1/system.mq-client.h"

#define EXIT_CALL_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_TARGET "127.0.0.1:50051"

typedef struct cli {
  const char *target;
  mq_client_t *cl;
  mq_call_opts_t opts; /* token and deadline for every call */
  bool deadline_given;
} cli_t;

typedef int (*cli_cmd_fn)(cli_t *c, int argc, char **argv);

typedef struct cli_cmd {
  const char *name;
  const char *usage; /* arguments after the name */
  const char *help;
  bool needs_client;
  cli_cmd_fn fn;
} cli_cmd_t;

/* ---- signals: a stream in progress is cancelled, otherwise we exit ---------- */

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static mq_client_stream_t *sig_stream; /* the stream to cancel, under sig_mu */
static int sig_caught;                 /* under sig_mu */

static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  int sig = 0;
  if (sigwait(set, &sig) != 0) return NULL;
  pthread_mutex_lock(&sig_mu);
  sig_caught = sig;
  if (sig_stream) {
    mq_client_stream_cancel(sig_stream);
    pthread_mutex_unlock(&sig_mu);
    return NULL;
  }
  pthread_mutex_unlock(&sig_mu);
  _exit(128 + sig);
}

static int cli_signals_start(void) {
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
  pthread_t th;
  if (pthread_create(&th, NULL, signal_thread, &set) != 0) return -1;
  pthread_detach(th);
  return 0;
}

/* Makes `st` the stream a signal cancels (NULL: none). */
static void cli_watch_stream(mq_client_stream_t *st) {
  pthread_mutex_lock(&sig_mu);
  sig_stream = st;
  pthread_mutex_unlock(&sig_mu);
}

static int cli_signal_caught(void) {
  pthread_mutex_lock(&sig_mu);
  int s = sig_caught;
  pthread_mutex_unlock(&sig_mu);
  return s;
}

/* ---- output helpers ------------------------------------------------------------ */

static int cli_fail(const mq_error_t *err) {
  if (err->field[0])
    fprintf(stderr, "marquee: %s: %s (field: %s)\n", mq_code_name(err->code), err->message, err->field);
  else
    fprintf(stderr, "marquee: %s: %s\n", mq_code_name(err->code), err->message);
  if (err->n_violations > 1 && err->n_violations <= MQ_ERROR_VIOLATIONS_MAX) /* the server's BadRequest */
    for (unsigned i = 0; i < err->n_violations; i++)
      fprintf(stderr, "  %s: %s\n", err->violations[i].field, err->violations[i].description);
  return EXIT_CALL_FAILED;
}

static int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("marquee: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nTry 'marquee help'.\n", stderr);
  return EXIT_USAGE;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *serving_status_name(int status) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &grpc__health__v1__health_check_response__serving_status__descriptor, status);
  return v ? v->name : "UNKNOWN";
}

static void format_uptime(uint64_t s, char *buf, size_t len) {
  uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d)
    snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", d, h, m, sec);
  else if (h)
    snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h, m, sec);
  else if (m)
    snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", m, sec);
  else
    snprintf(buf, len, "%" PRIu64 "s", sec);
}

/* ---- commands --------------------------------------------------------------------- */

static int cmd_help(cli_t *c, int argc, char **argv);

static int health_watch(cli_t *c, const char *service) {
  mq_error_t err = {0};
  mq_client_stream_t *st = NULL;
  int rc = EXIT_CALL_FAILED;
  mq_call_opts_t o = c->opts;
  if (!c->deadline_given) o.deadline_ms = -1; /* watch until interrupted */

  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  if (grpc__health__v1__health__watch__open(c->cl, &o, &st, &err) != MQ_OK) goto cleanup;
  cli_watch_stream(st);
  if (grpc__health__v1__health__watch__send(st, &req, &err) != MQ_OK ||
      mq_client_stream_close_send(st, &err) != MQ_OK) {
    /* the server may have ended the call already: its status says why */
    mq_error_t fin = {0};
    if (mq_client_stream_finish(st, &fin) != MQ_OK) err = fin;
    goto cleanup;
  }
  for (;;) {
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    mq_code_t code = grpc__health__v1__health__watch__recv(st, &resp, &err);
    if (!resp) {
      if (code == MQ_OK) rc = 0;
      goto cleanup;
    }
    printf("%s\n", serving_status_name(resp->status));
    fflush(stdout);
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
  }

cleanup:
  cli_watch_stream(NULL);
  mq_client_stream_free(st);
  if (cli_signal_caught()) return 128 + cli_signal_caught();
  if (rc != 0) cli_fail(&err);
  return rc;
}

static int cmd_health(cli_t *c, int argc, char **argv) {
  bool watch = false;
  const char *service = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--watch") || !strcmp(argv[i], "-w"))
      watch = true;
    else if (argv[i][0] == '-' && argv[i][1])
      return cli_usage_error("health: unknown option '%s'", argv[i]);
    else if (!service)
      service = argv[i];
    else
      return cli_usage_error("health: unexpected argument '%s'", argv[i]);
  }
  if (!service) service = "";
  if (watch) return health_watch(c, service);

  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  Grpc__Health__V1__HealthCheckResponse *resp = NULL;
  mq_error_t err = {0};
  if (grpc__health__v1__health__check__call(c->cl, &req, &resp, &c->opts, &err) != MQ_OK) return cli_fail(&err);
  int status = resp->status;
  printf("%s\n", serving_status_name(status));
  grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
  return status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : EXIT_CALL_FAILED;
}

static int cmd_version(cli_t *c, int argc, char **argv) {
  if (argc > 0) return cli_usage_error("version: unexpected argument '%s'", argv[0]);
  printf("marquee CLI %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
  fflush(stdout);

  Marquee__System__V1__GetServerInfoRequest req = MARQUEE__SYSTEM__V1__GET_SERVER_INFO_REQUEST__INIT;
  Marquee__System__V1__ServerInfo *info = NULL;
  mq_error_t err = {0};
  if (marquee__system__v1__system_service__get_server_info__call(c->cl, &req, &info, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  char up[64];
  format_uptime(info->uptime_seconds, up, sizeof up);
  printf("server      %s (%s) at %s\n", info->version, info->git_commit, c->target);
  printf("instance    %s\n", info->instance_id);
  if (info->started_at) {
    char when[32] = "";
    time_t t = (time_t)info->started_at->seconds;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("uptime      %s (since %s)\n", up, when);
  } else {
    printf("uptime      %s\n", up);
  }
  printf("services    %zu\n", info->n_services);
  for (size_t i = 0; i < info->n_services; i++) printf("  %s\n", info->services[i]);
  marquee__system__v1__server_info__free_unpacked(info, NULL);
  return 0;
}

static int cmd_ping(cli_t *c, int argc, char **argv) {
  const char *text = NULL;
  long count = 1;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-c")) {
      char *end = NULL;
      if (i + 1 >= argc) return cli_usage_error("ping: %s needs a count", argv[i]);
      count = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || count < 1 || count > 1000000)
        return cli_usage_error("ping: bad count '%s'", argv[i]);
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return cli_usage_error("ping: unknown option '%s'", argv[i]);
    } else if (!text) {
      text = argv[i];
    } else {
      return cli_usage_error("ping: unexpected argument '%s'", argv[i]);
    }
  }
  if (!text) text = "ping";
  Marquee__System__V1__PingRequest req = MARQUEE__SYSTEM__V1__PING_REQUEST__INIT;
  req.payload.data = (uint8_t *)text;
  req.payload.len = strlen(text);
  for (long i = 1; i <= count; i++) {
    Marquee__System__V1__PingResponse *resp = NULL;
    mq_error_t err = {0};
    int64_t t0 = now_us();
    if (marquee__system__v1__system_service__ping__call(c->cl, &req, &resp, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    int64_t us = now_us() - t0;
    bool same = resp->payload.len == req.payload.len && !memcmp(resp->payload.data, text, req.payload.len);
    size_t n = resp->payload.len;
    marquee__system__v1__ping_response__free_unpacked(resp, NULL);
    if (!same) {
      mq_error_t bad;
      mq_error_set(&bad, MQ_DATA_LOSS, "payload", "the server answered with a different payload");
      return cli_fail(&bad);
    }
    /* the first call also pays for connecting */
    printf("pong from %s: %zu bytes, seq %ld, round trip %" PRId64 " µs%s\n", c->target, n, i, us,
           i == 1 ? " (includes connecting)" : "");
    fflush(stdout);
  }
  return 0;
}

/* ---- identity -------------------------------------------------------------------- */

/* The password: MARQUEE_CLI_PASSWORD, else one line from stdin (echo off on a
 * terminal). Never taken from argv, where other users could see it. */
static bool read_password(char *out, size_t n) {
  const char *env = getenv("MARQUEE_CLI_PASSWORD");
  if (env) {
    snprintf(out, n, "%s", env);
    return true;
  }
  bool tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty) {
    fprintf(stderr, "password: ");
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  bool ok = fgets(out, (int)n, stdin) != NULL;
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fprintf(stderr, "\n");
  }
  if (ok) out[strcspn(out, "\r\n")] = '\0';
  return ok && out[0];
}

/* Prints the session as shell assignments: eval "$(marquee signin …)". */
static void print_session(const Marquee__Identity__V1__AuthResponse *r) {
  printf("# user %s (%s)\n", r->user->user_id, r->user->email);
  printf("MARQUEE_CLI_TOKEN=%s\n", r->tokens->access_token);
  printf("MARQUEE_CLI_REFRESH_TOKEN=%s\n", r->tokens->refresh_token);
  printf("export MARQUEE_CLI_TOKEN MARQUEE_CLI_REFRESH_TOKEN\n");
}

static int cmd_signup(cli_t *c, int argc, char **argv) {
  if (argc != 2) return cli_usage_error("signup: needs EMAIL and NAME");
  char pw[600];
  if (!read_password(pw, sizeof pw)) return cli_usage_error("signup: no password given");
  Marquee__Identity__V1__SignUpRequest req = MARQUEE__IDENTITY__V1__SIGN_UP_REQUEST__INIT;
  req.email = argv[0];
  req.display_name = argv[1];
  req.password = pw;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err = {0};
  mq_code_t rc = marquee__identity__v1__account_service__sign_up__call(c->cl, &req, &r, &c->opts, &err);
  explicit_bzero(pw, sizeof pw);
  if (rc != MQ_OK) return cli_fail(&err);
  print_session(r);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return 0;
}

static int cmd_signin(cli_t *c, int argc, char **argv) {
  if (argc != 1) return cli_usage_error("signin: needs EMAIL");
  char pw[600];
  if (!read_password(pw, sizeof pw)) return cli_usage_error("signin: no password given");
  Marquee__Identity__V1__SignInRequest req = MARQUEE__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
  req.email = argv[0];
  req.password = pw;
  Marquee__Identity__V1__AuthResponse *r = NULL;
  mq_error_t err = {0};
  mq_code_t rc = marquee__identity__v1__account_service__sign_in__call(c->cl, &req, &r, &c->opts, &err);
  explicit_bzero(pw, sizeof pw);
  if (rc != MQ_OK) return cli_fail(&err);
  print_session(r);
  marquee__identity__v1__auth_response__free_unpacked(r, NULL);
  return 0;
}

static int cmd_me(cli_t *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return cli_usage_error("me: takes no arguments");
  Marquee__Identity__V1__GetMeRequest req = MARQUEE__IDENTITY__V1__GET_ME_REQUEST__INIT;
  Marquee__Identity__V1__User *u = NULL;
  mq_error_t err = {0};
  if (marquee__identity__v1__account_service__get_me__call(c->cl, &req, &u, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  printf("user        %s\nemail       %s%s\nname        %s\nlocale      %s\ntime zone   %s\ncurrency    %s\n",
         u->user_id, u->email, u->email_verified ? " (verified)" : " (not verified)", u->display_name, u->locale,
         u->time_zone, u->currency);
  printf("roles      ");
  for (size_t i = 0; i < u->n_roles; i++) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&marquee__identity__v1__role__descriptor, (int)u->roles[i]);
    printf(" %s", v ? v->name : "?");
  }
  printf("\n");
  marquee__identity__v1__user__free_unpacked(u, NULL);
  return 0;
}

static int cmd_signout(cli_t *c, int argc, char **argv) {
  const char *tok = argc == 1 ? argv[0] : getenv("MARQUEE_CLI_REFRESH_TOKEN");
  if (argc > 1 || !tok || !tok[0])
    return cli_usage_error("signout: needs REFRESH_TOKEN (or MARQUEE_CLI_REFRESH_TOKEN)");
  Marquee__Identity__V1__SignOutRequest req = MARQUEE__IDENTITY__V1__SIGN_OUT_REQUEST__INIT;
  req.refresh_token = (char *)tok;
  Marquee__Identity__V1__SignOutResponse *r = NULL;
  mq_error_t err = {0};
  if (marquee__identity__v1__account_service__sign_out__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  marquee__identity__v1__sign_out_response__free_unpacked(r, NULL);
  printf("signed out\n");
  return 0;
}

static int cmd_providers(cli_t *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return cli_usage_error("providers: takes no arguments");
  Marquee__Identity__V1__ListProvidersRequest req = MARQUEE__IDENTITY__V1__LIST_PROVIDERS_REQUEST__INIT;
  Marquee__Identity__V1__ListProvidersResponse *r = NULL;
  mq_error_t err = {0};
  if (marquee__identity__v1__oauth_service__list_providers__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  for (size_t i = 0; i < r->n_providers; i++)
    printf("%-12s %-7s %s\n", r->providers[i]->name, r->providers[i]->kind, r->providers[i]->display_name);
  marquee__identity__v1__list_providers_response__free_unpacked(r, NULL);
  return 0;
}

/* oauth start PROVIDER REDIRECT_URI [LOGIN_HINT] | oauth complete STATE CODE */
static int cmd_oauth(cli_t *c, int argc, char **argv) {
  mq_error_t err = {0};
  if (argc >= 3 && argc <= 4 && !strcmp(argv[0], "start")) {
    Marquee__Identity__V1__StartOAuthRequest req = MARQUEE__IDENTITY__V1__START_OAUTH_REQUEST__INIT;
    req.provider = argv[1];
    req.redirect_uri = argv[2];
    req.login_hint = argc == 4 ? argv[3] : (char *)"";
    if (c->opts.bearer_token) req.intent = MARQUEE__IDENTITY__V1__OAUTH_INTENT__OAUTH_INTENT_LINK;
    Marquee__Identity__V1__StartOAuthResponse *r = NULL;
    if (marquee__identity__v1__oauth_service__start_oauth__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    printf("open:  %s\nstate: %s\n", r->authorization_url, r->state);
    marquee__identity__v1__start_oauth_response__free_unpacked(r, NULL);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[0], "complete")) {
    Marquee__Identity__V1__CompleteOAuthRequest req = MARQUEE__IDENTITY__V1__COMPLETE_OAUTH_REQUEST__INIT;
    req.state = argv[1];
    req.code = argv[2];
    Marquee__Identity__V1__CompleteOAuthResponse *r = NULL;
    if (marquee__identity__v1__oauth_service__complete_oauth__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    if (r->auth) {
      if (r->account_created) printf("# a new account\n");
      if (r->account_merged) printf("# linked to the existing account of this e-mail\n");
      print_session(r->auth);
    } else {
      printf("linked %s identity %s\n", r->linked->provider, r->linked->subject);
    }
    marquee__identity__v1__complete_oauth_response__free_unpacked(r, NULL);
    return 0;
  }
  return cli_usage_error("oauth: start PROVIDER REDIRECT_URI [LOGIN_HINT] | complete STATE CODE");
}

/* invite ORG_ID EMAIL owner|manager|checkin | accept TOKEN */
static int cmd_invite(cli_t *c, int argc, char **argv) {
  if (argc != 3) return cli_usage_error("invite: ORG_ID EMAIL owner|manager|checkin");
  Marquee__Identity__V1__InviteMemberRequest req = MARQUEE__IDENTITY__V1__INVITE_MEMBER_REQUEST__INIT;
  req.organization_id = argv[0];
  req.email = argv[1];
  req.role = !strcmp(argv[2], "owner")     ? MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_OWNER
             : !strcmp(argv[2], "manager") ? MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_MANAGER
             : !strcmp(argv[2], "checkin") ? MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_CHECKIN_STAFF
                                           : MARQUEE__IDENTITY__V1__MEMBER_ROLE__MEMBER_ROLE_UNSPECIFIED;
  if (!req.role) return cli_usage_error("invite: the role is owner, manager or checkin");
  Marquee__Identity__V1__Invitation *r = NULL;
  mq_error_t err = {0};
  if (marquee__identity__v1__organization_service__invite_member__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  printf("invitation %s sent to %s\n", r->invitation_id, r->email);
  marquee__identity__v1__invitation__free_unpacked(r, NULL);
  return 0;
}

static int cmd_accept(cli_t *c, int argc, char **argv) {
  if (argc != 1) return cli_usage_error("accept: TOKEN (from the invitation e-mail)");
  Marquee__Identity__V1__AcceptInvitationRequest req = MARQUEE__IDENTITY__V1__ACCEPT_INVITATION_REQUEST__INIT;
  req.token = argv[0];
  Marquee__Identity__V1__Member *m = NULL;
  mq_error_t err = {0};
  if (marquee__identity__v1__organization_service__accept_invitation__call(c->cl, &req, &m, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  printf("joined organization %s\n", m->organization_id);
  marquee__identity__v1__member__free_unpacked(m, NULL);
  return 0;
}

/* categories [--all] [LOCALE]: the tree in display order, two spaces per level */
static int cmd_categories(cli_t *c, int argc, char **argv) {
  Marquee__Catalog__V1__ListCategoriesRequest req = MARQUEE__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--all"))
      req.include_retired = true;
    else if (!req.locale[0])
      req.locale = argv[i];
    else
      return cli_usage_error("categories: [--all] [LOCALE]");
  }
  Marquee__Catalog__V1__ListCategoriesResponse *r = NULL;
  mq_error_t err = {0};
  if (marquee__catalog__v1__category_service__list_categories__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  for (size_t i = 0; i < r->n_categories; i++) {
    const Marquee__Catalog__V1__Category *k = r->categories[i];
    printf("%*s%s  %s%s\n", (int)(2 * (k->depth ? k->depth - 1 : 0)), "", k->slug, k->display_name,
           k->retired ? "  (retired)" : "");
  }
  marquee__catalog__v1__list_categories_response__free_unpacked(r, NULL);
  return 0;
}

/* ---- events ---------------------------------------------------------------------- */

static void print_money(int64_t minor, const char *cur) {
  char b[64];
  mq_money_format(b, sizeof b, minor, cur);
  fputs(b, stdout);
}

static void print_event_line(const Marquee__Catalog__V1__Event *e) {
  char when[32] = "?";
  if (e->starts_at) {
    time_t t = (time_t)e->starts_at->seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%MZ", &tm);
  }
  static const char *const states[] = {"?", "draft", "published", "cancelled", "completed"};
  printf("%s  %s  %-9s  %-14s  ", e->event_id, when, states[e->state <= 4 ? e->state : 0],
         e->city && e->city[0] ? e->city : "online");
  print_money(e->min_price_minor, e->currency);
  printf("  %s\n", e->title);
}

/* events list [ORG_ID] | get ID | create ORG_ID TITLE START_RFC3339 HOURS CURRENCY (VENUE_ID|ONLINE_URL)
 *        | publish ID | cancel ID REASON */
static int cmd_events(cli_t *c, int argc, char **argv) {
  mq_error_t err = {0};
  if (argc >= 1 && argc <= 2 && !strcmp(argv[0], "list")) {
    Marquee__Catalog__V1__ListEventsResponse *r = NULL;
    mq_code_t rc;
    if (argc == 2 && c->opts.bearer_token) { /* a member's view: every state */
      Marquee__Catalog__V1__ListOrganizationEventsRequest q =
          MARQUEE__CATALOG__V1__LIST_ORGANIZATION_EVENTS_REQUEST__INIT;
      q.organization_id = argv[1];
      q.page_size = 100;
      rc = marquee__catalog__v1__event_service__list_organization_events__call(c->cl, &q, &r, &c->opts, &err);
    } else {
      Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
      q.organization_id = argc == 2 ? argv[1] : (char *)"";
      q.page_size = 100;
      rc = marquee__catalog__v1__event_service__list_events__call(c->cl, &q, &r, &c->opts, &err);
    }
    if (rc != MQ_OK) return cli_fail(&err);
    for (size_t i = 0; i < r->n_events; i++) print_event_line(r->events[i]);
    marquee__catalog__v1__list_events_response__free_unpacked(r, NULL);
    return 0;
  }
  if (argc == 2 && !strcmp(argv[0], "get")) {
    Marquee__Catalog__V1__GetEventRequest q = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
    q.event_id = argv[1];
    Marquee__Catalog__V1__Event *e = NULL;
    if (marquee__catalog__v1__event_service__get_event__call(c->cl, &q, &e, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    print_event_line(e);
    printf("version %lld, time zone %s, organization %s\n", (long long)e->version, e->time_zone, e->organization_id);
    for (size_t i = 0; i < e->n_ticket_types; i++) {
      printf("  ticket %s  %-20s  ", e->ticket_types[i]->ticket_type_id, e->ticket_types[i]->name);
      if (e->ticket_types[i]->price)
        print_money(e->ticket_types[i]->price->amount_minor, e->ticket_types[i]->price->currency);
      printf("  capacity %lld\n", (long long)e->ticket_types[i]->capacity);
    }
    marquee__catalog__v1__event__free_unpacked(e, NULL);
    return 0;
  }
  if (argc == 7 && !strcmp(argv[0], "create")) {
    struct tm tm = {0};
    const char *end = strptime(argv[3], "%Y-%m-%dT%H:%M", &tm);
    char *hend = NULL;
    long hours = strtol(argv[4], &hend, 10);
    if (!end || (*end && *end != 'Z') || !hend || *hend || hours < 1 || hours > 240)
      return cli_usage_error("events create: START is YYYY-MM-DDTHH:MM (UTC), HOURS 1..240");
    Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e_ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    s.seconds = timegm(&tm);
    e_ts.seconds = s.seconds + hours * 3600;
    Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
    ev.organization_id = argv[1];
    ev.title = argv[2];
    ev.starts_at = &s;
    ev.ends_at = &e_ts;
    ev.currency = argv[5];
    if (!strncmp(argv[6], "https://", 8))
      ev.online_url = argv[6];
    else
      ev.venue_id = argv[6];
    Marquee__Catalog__V1__CreateEventRequest q = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
    q.event = &ev;
    Marquee__Catalog__V1__Event *r = NULL;
    if (marquee__catalog__v1__event_service__create_event__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    printf("created draft %s (add ticket types, then: marquee events publish %s)\n", r->event_id, r->event_id);
    marquee__catalog__v1__event__free_unpacked(r, NULL);
    return 0;
  }
  if (argc == 2 && !strcmp(argv[0], "publish")) {
    Marquee__Catalog__V1__PublishEventRequest q = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
    q.event_id = argv[1];
    Marquee__Catalog__V1__Event *r = NULL;
    if (marquee__catalog__v1__event_service__publish_event__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    printf("published %s\n", r->event_id);
    marquee__catalog__v1__event__free_unpacked(r, NULL);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[0], "cancel")) {
    Marquee__Catalog__V1__CancelEventRequest q = MARQUEE__CATALOG__V1__CANCEL_EVENT_REQUEST__INIT;
    q.event_id = argv[1];
    q.reason = argv[2];
    Marquee__Catalog__V1__Event *r = NULL;
    if (marquee__catalog__v1__event_service__cancel_event__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    printf("cancelled %s\n", r->event_id);
    marquee__catalog__v1__event__free_unpacked(r, NULL);
    return 0;
  }
  return cli_usage_error(
      "events: list [ORG_ID] | get ID | create ORG_ID TITLE START HOURS CURRENCY VENUE_ID|URL | "
      "publish ID | cancel ID REASON");
}

/* search TEXT... [--near LAT,LNG] [--within 20km] [--this-weekend|--today|--tomorrow|--this-week|--next-week|
 *   --this-month] [--free] [--online] [--city C] [--country CC] [--sort relevance|date|distance|popularity]
 *   [--tz ZONE] [--facets] [--page TOKEN] */
static int cmd_search(cli_t *c, int argc, char **argv) {
  Marquee__Search__V1__SearchEventsRequest q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
  Marquee__Search__V1__GeoPoint near = MARQUEE__SEARCH__V1__GEO_POINT__INIT;
  char text[600] = "";
  static const struct {
    const char *flag;
    int range;
  } ranges[] = {{"--today", 1},     {"--tomorrow", 2},  {"--this-weekend", 3},
                {"--this-week", 4}, {"--next-week", 5}, {"--this-month", 6}};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool known = false;
    for (size_t k = 0; k < sizeof ranges / sizeof *ranges; k++)
      if (!strcmp(a, ranges[k].flag)) q.date_range = ranges[k].range, known = true;
    if (known) continue;
    if (!strcmp(a, "--near") && v) {
      char *end = NULL;
      near.latitude = strtod(v, &end);
      if (!end || *end != ',') return cli_usage_error("search: --near is LAT,LNG (45.5,-73.6)");
      near.longitude = strtod(end + 1, &end);
      if (*end) return cli_usage_error("search: --near is LAT,LNG (45.5,-73.6)");
      q.near = &near;
      i++;
    } else if (!strcmp(a, "--within") && v) {
      char *end = NULL;
      q.within_km = strtod(v, &end);
      if (end && *end && strcmp(end, "km")) return cli_usage_error("search: --within is a distance in km (20km)");
      i++;
    } else if (!strcmp(a, "--free")) {
      q.free_only = true;
    } else if (!strcmp(a, "--online")) {
      q.attendance_mode = MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE;
    } else if (!strcmp(a, "--city") && v) {
      q.city = argv[++i];
    } else if (!strcmp(a, "--country") && v) {
      q.country = argv[++i];
    } else if (!strcmp(a, "--tz") && v) {
      q.time_zone = argv[++i];
    } else if (!strcmp(a, "--page") && v) {
      q.page_token = argv[++i];
    } else if (!strcmp(a, "--facets")) {
      q.include_facets = true;
    } else if (!strcmp(a, "--sort") && v) {
      static const char *const sorts[] = {"", "relevance", "date", "distance", "popularity"};
      for (int k = 1; k < 5; k++)
        if (!strcmp(v, sorts[k])) q.sort = k;
      if (!q.sort) return cli_usage_error("search: --sort is relevance, date, distance or popularity");
      i++;
    } else if (!strncmp(a, "--", 2)) {
      return cli_usage_error("search: unknown option '%s'", a);
    } else {
      size_t l = strlen(text);
      snprintf(text + l, sizeof text - l, "%s%s", l ? " " : "", a);
    }
  }
  /* a finished query: the last word is not a prefix being typed */
  size_t l = strlen(text);
  if (l) snprintf(text + l, sizeof text - l, " ");
  q.query = text;
  mq_error_t err = {0};
  Marquee__Search__V1__SearchEventsResponse *r = NULL;
  if (marquee__search__v1__search_service__search_events__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  if (r->corrected_query[0]) printf("(no match as typed; showing \"%s\")\n", r->corrected_query);
  for (size_t i = 0; i < r->n_hits; i++) {
    const Marquee__Search__V1__EventHit *h = r->hits[i];
    char when[32] = "";
    time_t t = h->starts_at ? (time_t)h->starts_at->seconds : 0;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%MZ", &tm);
    printf("%s  %s  %-40s  %s%s%s", h->event_id, when, h->title, h->venue_name, h->venue_name[0] ? ", " : "",
           h->city[0] ? h->city : "online");
    if (h->free)
      printf("  free");
    else if (h->min_price) {
      printf("  from ");
      print_money(h->min_price->amount_minor, h->min_price->currency);
    }
    if (q.near) printf("  %.1f km", h->distance_km);
    printf("\n");
  }
  printf("%lld found", (long long)r->total_size);
  if (r->next_page_token[0]) printf("; next page: --page %s", r->next_page_token);
  printf("\n");
  for (size_t f = 0; f < r->n_facets; f++) {
    printf("%s:", r->facets[f]->name);
    for (size_t b = 0; b < r->facets[f]->n_buckets; b++)
      printf(" %s (%lld)", r->facets[f]->buckets[b]->label, (long long)r->facets[f]->buckets[b]->count);
    printf("\n");
  }
  marquee__search__v1__search_events_response__free_unpacked(r, NULL);
  return 0;
}

static int cmd_suggest(cli_t *c, int argc, char **argv) {
  if (argc != 1) return cli_usage_error("suggest: PREFIX");
  Marquee__Search__V1__SuggestRequest q = MARQUEE__SEARCH__V1__SUGGEST_REQUEST__INIT;
  q.prefix = argv[0];
  mq_error_t err = {0};
  Marquee__Search__V1__SuggestResponse *r = NULL;
  if (marquee__search__v1__search_service__suggest__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK) return cli_fail(&err);
  static const char *const kinds[] = {"?", "event", "venue", "city"};
  for (size_t i = 0; i < r->n_suggestions; i++)
    printf("%-5s  %s  (%lld)\n", kinds[r->suggestions[i]->kind < 4 ? r->suggestions[i]->kind : 0],
           r->suggestions[i]->text, (long long)r->suggestions[i]->events);
  marquee__search__v1__suggest_response__free_unpacked(r, NULL);
  return 0;
}

/* media upload ORG_ID FILE [EVENT_ID]: FILE streamed in 64 KiB chunks
 * (UploadImage); the server decides from the bytes whether it is an image. */
static int cmd_media(cli_t *c, int argc, char **argv) {
  if (argc < 3 || argc > 4 || strcmp(argv[0], "upload")) return cli_usage_error("media: upload ORG_ID FILE [EVENT_ID]");
  FILE *f = fopen(argv[2], "rb");
  if (!f) return cli_usage_error("media: cannot open '%s': %s", argv[2], strerror(errno));
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return cli_usage_error("media: cannot read '%s'", argv[2]);
  }
  const char *slash = strrchr(argv[2], '/');
  Marquee__Catalog__V1__UploadImageMetadata md = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_METADATA__INIT;
  md.organization_id = argv[1];
  md.event_id = argc == 4 ? argv[3] : (char *)"";
  md.filename = (char *)(slash ? slash + 1 : argv[2]);
  md.total_size = size;
  mq_call_opts_t o = c->opts;
  if (!c->deadline_given) o.deadline_ms = 600000; /* the server allows an upload 10 minutes */
  mq_error_t err = {0};
  mq_client_stream_t *st = NULL;
  Marquee__Catalog__V1__Image *img = NULL;
  static uint8_t buf[64 * 1024];
  mq_code_t rc = marquee__catalog__v1__media_service__upload_image__open(c->cl, &o, &st, &err);
  if (rc == MQ_OK) cli_watch_stream(st);
  bool first = true;
  while (rc == MQ_OK) {
    size_t n = fread(buf, 1, sizeof buf, f);
    if (n == 0 && !first) break;
    Marquee__Catalog__V1__UploadImageChunk ch = MARQUEE__CATALOG__V1__UPLOAD_IMAGE_CHUNK__INIT;
    if (first) ch.metadata = &md;
    ch.data.data = buf;
    ch.data.len = n;
    rc = marquee__catalog__v1__media_service__upload_image__send(st, &ch, &err);
    first = false;
  }
  fclose(f);
  /* a refusal ends the call while we still send: recv gives the server's status */
  if (st && (rc == MQ_OK || rc == MQ_FAILED_PRECONDITION)) {
    rc = mq_client_stream_close_send(st, &err);
    if (rc == MQ_OK) rc = marquee__catalog__v1__media_service__upload_image__recv(st, &img, &err);
  }
  cli_watch_stream(NULL);
  if (img) {
    printf("image %s %s %ux%u %lld bytes sha256 %s url %s\n", img->image_id, img->mime_type, img->width, img->height,
           (long long)img->size_bytes, img->sha256, img->url);
    marquee__catalog__v1__image__free_unpacked(img, NULL);
    mq_client_stream_finish(st, &err);
  }
  mq_client_stream_free(st);
  if (cli_signal_caught()) return 128 + cli_signal_caught();
  if (rc != MQ_OK) return cli_fail(&err);
  return 0;
}

/* ---- bookings -------------------------------------------------------------------- */

static void print_booking(const Marquee__Bookings__V1__Booking *b) {
  printf("booking %s  %s  event %s  total ", b->booking_id,
         b->state == MARQUEE__BOOKINGS__V1__BOOKING_STATE__BOOKING_STATE_CANCELLED ? "cancelled" : "confirmed",
         b->event_id);
  print_money(b->total ? b->total->amount_minor : 0, b->total ? b->total->currency : "");
  printf("\n");
  for (size_t i = 0; i < b->n_tickets; i++) {
    const Marquee__Bookings__V1__Ticket *t = b->tickets[i];
    printf("  ticket %s  %s  %s%s\n", t->ticket_id, t->ticket_type_name, t->attendee_name,
           t->checked_in_at ? "  (checked in)" : "");
    if (t->code && t->code[0]) printf("    code %s\n", t->code);
  }
}

/* book EVENT_ID TYPE[:QTY]... [--code C] [--key K]: hold, and confirm when free */
static int cmd_book(cli_t *c, int argc, char **argv) {
  if (argc < 2) return cli_usage_error("book: EVENT_ID TICKET_TYPE_ID[:QTY]... [--code ACCESS_CODE] [--key KEY]");
  Marquee__Bookings__V1__CreateHoldRequest req = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
  req.event_id = argv[0];
  Marquee__Bookings__V1__HoldItem items[20], *ptrs[20];
  char key[40];
  snprintf(key, sizeof key, "cli-%lld-%d", (long long)time(NULL), (int)getpid()); /* retries reuse it */
  req.idempotency_key = key;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--code") && i + 1 < argc) {
      req.access_code = argv[++i];
    } else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
      req.idempotency_key = argv[++i];
    } else {
      if (req.n_items == 20) return cli_usage_error("book: at most 20 ticket types");
      marquee__bookings__v1__hold_item__init(&items[req.n_items]);
      char *colon = strchr(argv[i], ':');
      items[req.n_items].quantity = colon ? (uint32_t)strtoul(colon + 1, NULL, 10) : 1;
      if (colon) *colon = 0;
      items[req.n_items].ticket_type_id = argv[i];
      ptrs[req.n_items] = &items[req.n_items];
      req.n_items++;
    }
  }
  req.items = ptrs;
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err = {0};
  if (marquee__bookings__v1__booking_service__create_hold__call(c->cl, &req, &h, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  printf("hold %s  total ", h->hold_id);
  print_money(h->total->amount_minor, h->total->currency);
  printf("  expires %lld\n", (long long)(h->expires_at ? h->expires_at->seconds : 0));
  if (h->requires_payment) {
    printf("payment required: pay before the hold expires: marquee pay %s\n", h->hold_id);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
    return 0;
  }
  Marquee__Bookings__V1__ConfirmHoldRequest cq = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
  cq.hold_id = h->hold_id;
  Marquee__Bookings__V1__Booking *b = NULL;
  mq_code_t rc = marquee__bookings__v1__booking_service__confirm_hold__call(c->cl, &cq, &b, &c->opts, &err);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  if (rc != MQ_OK) return cli_fail(&err);
  print_booking(b);
  marquee__bookings__v1__booking__free_unpacked(b, NULL);
  return 0;
}

static int bookings_export(cli_t *c, const char *event_id) {
  Marquee__Bookings__V1__ExportEventBookingsRequest req = MARQUEE__BOOKINGS__V1__EXPORT_EVENT_BOOKINGS_REQUEST__INIT;
  req.event_id = (char *)event_id;
  mq_client_stream_t *st = NULL;
  mq_error_t err = {0};
  mq_code_t rc = marquee__bookings__v1__booking_service__export_event_bookings__open(c->cl, &c->opts, &st, &err);
  if (rc == MQ_OK) rc = marquee__bookings__v1__booking_service__export_event_bookings__send(st, &req, &err);
  if (rc == MQ_OK) rc = mq_client_stream_close_send(st, &err);
  while (rc == MQ_OK) {
    Marquee__Bookings__V1__CsvChunk *ch = NULL;
    rc = marquee__bookings__v1__booking_service__export_event_bookings__recv(st, &ch, &err);
    if (!ch) break;
    fputs(ch->text, stdout);
    marquee__bookings__v1__csv_chunk__free_unpacked(ch, NULL);
  }
  if (st) mq_client_stream_free(st);
  return rc == MQ_OK ? 0 : cli_fail(&err);
}

/* bookings list [EVENT_ID] | get ID | cancel ID [REASON] | export EVENT_ID */
static int cmd_bookings(cli_t *c, int argc, char **argv) {
  const char *usage = "bookings: list [EVENT_ID] | get ID | cancel ID [REASON] | export EVENT_ID";
  if (argc < 1) return cli_usage_error("%s", usage);
  mq_error_t err = {0};
  if (!strcmp(argv[0], "list") && argc <= 2) {
    Marquee__Bookings__V1__ListBookingsResponse *r = NULL;
    mq_code_t rc;
    if (argc == 2) {
      Marquee__Bookings__V1__ListEventBookingsRequest req = MARQUEE__BOOKINGS__V1__LIST_EVENT_BOOKINGS_REQUEST__INIT;
      req.event_id = argv[1];
      rc = marquee__bookings__v1__booking_service__list_event_bookings__call(c->cl, &req, &r, &c->opts, &err);
    } else {
      Marquee__Bookings__V1__ListMyBookingsRequest req = MARQUEE__BOOKINGS__V1__LIST_MY_BOOKINGS_REQUEST__INIT;
      rc = marquee__bookings__v1__booking_service__list_my_bookings__call(c->cl, &req, &r, &c->opts, &err);
    }
    if (rc != MQ_OK) return cli_fail(&err);
    for (size_t i = 0; i < r->n_bookings; i++) print_booking(r->bookings[i]);
    if (r->next_page_token[0]) printf("(more)\n");
    marquee__bookings__v1__list_bookings_response__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(argv[0], "get") && argc == 2) {
    Marquee__Bookings__V1__GetBookingRequest req = MARQUEE__BOOKINGS__V1__GET_BOOKING_REQUEST__INIT;
    req.booking_id = argv[1];
    Marquee__Bookings__V1__Booking *b = NULL;
    if (marquee__bookings__v1__booking_service__get_booking__call(c->cl, &req, &b, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    print_booking(b);
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
    return 0;
  }
  if (!strcmp(argv[0], "cancel") && (argc == 2 || argc == 3)) {
    Marquee__Bookings__V1__CancelBookingRequest req = MARQUEE__BOOKINGS__V1__CANCEL_BOOKING_REQUEST__INIT;
    req.booking_id = argv[1];
    req.reason = argc == 3 ? argv[2] : (char *)"";
    Marquee__Bookings__V1__Booking *b = NULL;
    if (marquee__bookings__v1__booking_service__cancel_booking__call(c->cl, &req, &b, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    print_booking(b);
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
    return 0;
  }
  if (!strcmp(argv[0], "export") && argc == 2) return bookings_export(c, argv[1]);
  return cli_usage_error("%s", usage);
}

static const char *payment_state_name(int s) {
  static const char *const names[] = {"?",      "pending",   "requires_action", "processing",        "succeeded",
                                      "failed", "cancelled", "refunded",        "partially_refunded"};
  return s >= 0 && s < (int)(sizeof names / sizeof *names) ? names[s] : "?";
}

static void print_payment(const Marquee__Payments__V1__Payment *p) {
  printf("payment %s  %s  %s", p->payment_id, payment_state_name((int)p->state), p->gateway[0] ? p->gateway : "-");
  if (p->gateway_reference[0]) printf(" %s", p->gateway_reference);
  printf("  amount ");
  print_money(p->amount ? p->amount->amount_minor : 0, p->amount ? p->amount->currency : "");
  if (p->refunded && p->refunded->amount_minor) {
    printf("  refunded ");
    print_money(p->refunded->amount_minor, p->refunded->currency);
  }
  printf("\n  hold %s", p->hold_id);
  if (p->booking_id[0]) printf("  booking %s", p->booking_id);
  if (p->deadline && p->state != MARQUEE__PAYMENTS__V1__PAYMENT_STATE__PAYMENT_STATE_SUCCEEDED)
    printf("  deadline %lld", (long long)p->deadline->seconds);
  printf("\n");
  if (p->instructions[0]) printf("  %s\n", p->instructions);
  if (p->failure_reason[0]) printf("  declined: %s\n", p->failure_reason);
  if (p->client_secret[0])
    printf("  client_secret %s\n  (confirm it with Stripe.js or a mobile SDK, then: marquee payments confirm %s)\n",
           p->client_secret, p->payment_id);
  for (size_t i = 0; i < p->n_refunds; i++) {
    const Marquee__Payments__V1__Refund *r = p->refunds[i];
    printf("  refund #%u ", r->sequence);
    print_money(r->amount->amount_minor, r->amount->currency);
    printf("  %s%s%s\n",
           r->state == MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_SUCCEEDED ? "succeeded"
           : r->state == MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_FAILED  ? "failed"
                                                                                   : "pending",
           r->reason[0] ? "  " : "", r->reason);
  }
}

/* pay HOLD_ID [--gateway G] [--key K]: the hold's total, through CreatePayment */
static int cmd_pay(cli_t *c, int argc, char **argv) {
  const char *usage = "pay: HOLD_ID [--gateway stripe|manual] [--key KEY]";
  if (argc < 1) return cli_usage_error("%s", usage);
  Marquee__Payments__V1__CreatePaymentRequest req = MARQUEE__PAYMENTS__V1__CREATE_PAYMENT_REQUEST__INIT;
  req.hold_id = argv[0];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--gateway") && i + 1 < argc)
      req.gateway = argv[++i];
    else if (!strcmp(argv[i], "--key") && i + 1 < argc)
      req.idempotency_key = argv[++i];
    else
      return cli_usage_error("%s", usage);
  }
  Marquee__Bookings__V1__GetHoldRequest hq = MARQUEE__BOOKINGS__V1__GET_HOLD_REQUEST__INIT;
  hq.hold_id = argv[0];
  Marquee__Bookings__V1__Hold *h = NULL;
  mq_error_t err = {0};
  if (marquee__bookings__v1__booking_service__get_hold__call(c->cl, &hq, &h, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  req.amount = h->total; /* what the hold says now: the server checks it again */
  Marquee__Payments__V1__Payment *p = NULL;
  mq_code_t rc = marquee__payments__v1__payment_service__create_payment__call(c->cl, &req, &p, &c->opts, &err);
  marquee__bookings__v1__hold__free_unpacked(h, NULL);
  if (rc != MQ_OK) return cli_fail(&err);
  print_payment(p);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  return 0;
}

/* payments list [EVENT_ID] | get ID | confirm ID | cancel ID | received ID [NOTE] | refund ID [MINOR] [REASON] */
static int cmd_payments(cli_t *c, int argc, char **argv) {
  const char *usage =
      "payments: list [EVENT_ID] | get ID | confirm ID | cancel ID | received ID [NOTE] | refund ID [AMOUNT_MINOR] "
      "[REASON]";
  if (argc < 1) return cli_usage_error("%s", usage);
  mq_error_t err = {0};
  Marquee__Payments__V1__Payment *p = NULL;
  mq_code_t rc;
  if (!strcmp(argv[0], "list") && argc <= 2) {
    Marquee__Payments__V1__ListPaymentsResponse *r = NULL;
    if (argc == 2) {
      Marquee__Payments__V1__ListEventPaymentsRequest req = MARQUEE__PAYMENTS__V1__LIST_EVENT_PAYMENTS_REQUEST__INIT;
      req.event_id = argv[1];
      rc = marquee__payments__v1__payment_service__list_event_payments__call(c->cl, &req, &r, &c->opts, &err);
    } else {
      Marquee__Payments__V1__ListMyPaymentsRequest req = MARQUEE__PAYMENTS__V1__LIST_MY_PAYMENTS_REQUEST__INIT;
      rc = marquee__payments__v1__payment_service__list_my_payments__call(c->cl, &req, &r, &c->opts, &err);
    }
    if (rc != MQ_OK) return cli_fail(&err);
    for (size_t i = 0; i < r->n_payments; i++) print_payment(r->payments[i]);
    if (r->next_page_token[0]) printf("(more)\n");
    marquee__payments__v1__list_payments_response__free_unpacked(r, NULL);
    return 0;
  }
  if (argc < 2) return cli_usage_error("%s", usage);
  if (!strcmp(argv[0], "get") && argc == 2) {
    Marquee__Payments__V1__GetPaymentRequest req = MARQUEE__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
    req.payment_id = argv[1];
    rc = marquee__payments__v1__payment_service__get_payment__call(c->cl, &req, &p, &c->opts, &err);
  } else if (!strcmp(argv[0], "confirm") && argc == 2) {
    Marquee__Payments__V1__ConfirmPaymentRequest req = MARQUEE__PAYMENTS__V1__CONFIRM_PAYMENT_REQUEST__INIT;
    req.payment_id = argv[1];
    rc = marquee__payments__v1__payment_service__confirm_payment__call(c->cl, &req, &p, &c->opts, &err);
  } else if (!strcmp(argv[0], "cancel") && argc == 2) {
    Marquee__Payments__V1__CancelPaymentRequest req = MARQUEE__PAYMENTS__V1__CANCEL_PAYMENT_REQUEST__INIT;
    req.payment_id = argv[1];
    rc = marquee__payments__v1__payment_service__cancel_payment__call(c->cl, &req, &p, &c->opts, &err);
  } else if (!strcmp(argv[0], "received") && argc <= 3) {
    Marquee__Payments__V1__MarkPaymentReceivedRequest req = MARQUEE__PAYMENTS__V1__MARK_PAYMENT_RECEIVED_REQUEST__INIT;
    req.payment_id = argv[1];
    req.note = argc == 3 ? argv[2] : (char *)"";
    rc = marquee__payments__v1__payment_service__mark_payment_received__call(c->cl, &req, &p, &c->opts, &err);
  } else if (!strcmp(argv[0], "refund") && argc <= 4) {
    Marquee__Payments__V1__GetPaymentRequest gq = MARQUEE__PAYMENTS__V1__GET_PAYMENT_REQUEST__INIT;
    gq.payment_id = argv[1];
    if (marquee__payments__v1__payment_service__get_payment__call(c->cl, &gq, &p, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
    m.currency = p->amount->currency;
    Marquee__Payments__V1__RefundPaymentRequest req = MARQUEE__PAYMENTS__V1__REFUND_PAYMENT_REQUEST__INIT;
    req.payment_id = argv[1];
    if (argc >= 3) {
      char *end;
      m.amount_minor = strtoll(argv[2], &end, 10);
      if (*end || m.amount_minor <= 0) {
        marquee__payments__v1__payment__free_unpacked(p, NULL);
        return cli_usage_error("refund: AMOUNT_MINOR is a positive whole number of minor units (cents)");
      }
      req.amount = &m;
    }
    req.reason = argc == 4 ? argv[3] : (char *)"";
    Marquee__Payments__V1__Refund *r = NULL;
    rc = marquee__payments__v1__payment_service__refund_payment__call(c->cl, &req, &r, &c->opts, &err);
    marquee__payments__v1__payment__free_unpacked(p, NULL);
    if (rc != MQ_OK) return cli_fail(&err);
    printf("refund %s  ", r->refund_id);
    print_money(r->amount->amount_minor, r->amount->currency);
    printf("  %s\n", r->state == MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_SUCCEEDED ? "succeeded"
                     : r->state == MARQUEE__PAYMENTS__V1__REFUND_STATE__REFUND_STATE_FAILED  ? "failed"
                                                                                             : "pending");
    marquee__payments__v1__refund__free_unpacked(r, NULL);
    return 0;
  } else {
    return cli_usage_error("%s", usage);
  }
  if (rc != MQ_OK) return cli_fail(&err);
  print_payment(p);
  marquee__payments__v1__payment__free_unpacked(p, NULL);
  return 0;
}

static void print_receipt(const Marquee__Payments__V1__Receipt *r) {
  printf("%s %s  issued %lld  %s\n", strcmp(r->kind, "credit_note") ? "receipt" : "credit note", r->number,
         (long long)(r->issued_at ? r->issued_at->seconds : 0), r->seller_name);
  if (r->refers_to[0]) printf("  corrects %s\n", r->refers_to);
  for (size_t i = 0; i < r->n_lines; i++) {
    printf("  %u x %s  ", r->lines[i]->quantity, r->lines[i]->description);
    print_money(r->lines[i]->amount->amount_minor, r->lines[i]->amount->currency);
    printf("\n");
  }
  for (size_t i = 0; i < r->n_taxes; i++) {
    printf("  %s (%s)%s  ", r->taxes[i]->name, r->taxes[i]->jurisdiction, r->tax_included ? " included" : "");
    print_money(r->taxes[i]->amount->amount_minor, r->taxes[i]->amount->currency);
    printf("\n");
  }
  printf("  total ");
  print_money(r->total->amount_minor, r->total->currency);
  printf("\n");
}

/* receipts get PAYMENT_ID [FILE.pdf [REFUND_ID]] */
static int cmd_receipts(cli_t *c, int argc, char **argv) {
  if (argc < 2 || argc > 4 || strcmp(argv[0], "get"))
    return cli_usage_error("receipts: get PAYMENT_ID [FILE.pdf [REFUND_ID]]");
  mq_error_t err = {0};
  if (argc == 2) {
    Marquee__Payments__V1__GetReceiptRequest q = MARQUEE__PAYMENTS__V1__GET_RECEIPT_REQUEST__INIT;
    q.payment_id = argv[1];
    Marquee__Payments__V1__GetReceiptResponse *r = NULL;
    if (marquee__payments__v1__payment_service__get_receipt__call(c->cl, &q, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    print_receipt(r->receipt);
    for (size_t i = 0; i < r->n_credit_notes; i++) print_receipt(r->credit_notes[i]);
    marquee__payments__v1__get_receipt_response__free_unpacked(r, NULL);
    return 0;
  }
  Marquee__Payments__V1__GetReceiptPdfRequest q = MARQUEE__PAYMENTS__V1__GET_RECEIPT_PDF_REQUEST__INIT;
  q.payment_id = argv[1];
  q.refund_id = argc == 4 ? argv[3] : (char *)"";
  Marquee__Payments__V1__ReceiptFile *f = NULL;
  if (marquee__payments__v1__payment_service__get_receipt_pdf__call(c->cl, &q, &f, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  FILE *out = fopen(argv[2], "wb");
  bool ok = out && fwrite(f->data.data, 1, f->data.len, out) == f->data.len;
  if (out && fclose(out) != 0) ok = false;
  if (ok) printf("%s: %s (%zu bytes)\n", argv[2], f->file_name, f->data.len);
  marquee__payments__v1__receipt_file__free_unpacked(f, NULL);
  if (!ok) {
    fprintf(stderr, "marquee: cannot write %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  return 0;
}

/* webhooks types | list ORG | add ORG URL TYPE[,TYPE...] | delete ORG ID | rotate ORG ID |
 * deliveries ORG [ENDPOINT] | show ORG DELIVERY | redeliver ORG DELIVERY */
static const char *wh_state(int s) {
  static const char *const names[] = {"?", "pending", "delivered", "failed"};
  return s >= 0 && s <= 3 ? names[s] : "?";
}

static void print_delivery(const Marquee__Notifications__V1__WebhookDelivery *d) {
  printf("%s  %-9s %-36s attempts %u  last %u %s\n", d->id, wh_state((int)d->state), d->event_type, d->attempts,
         d->last_http_status, d->last_error);
}

#define WEBHOOKS_USAGE                                                                                        \
  "webhooks: types | list ORG | add ORG URL TYPE[,TYPE...] | delete ORG ID | rotate ORG ID | deliveries ORG " \
  "[ENDPOINT] | show ORG DELIVERY | redeliver ORG DELIVERY"

static int cmd_webhooks(cli_t *c, int argc, char **argv) {
  if (argc < 1) return cli_usage_error(WEBHOOKS_USAGE);
  mq_error_t err = {0};
  const char *verb = argv[0];
  if (!strcmp(verb, "types") && argc == 1) {
    Marquee__Notifications__V1__ListWebhookEventTypesRequest q =
        MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_EVENT_TYPES_REQUEST__INIT;
    Marquee__Notifications__V1__ListWebhookEventTypesResponse *r = NULL;
    if (marquee__notifications__v1__webhook_service__list_webhook_event_types__call(c->cl, &q, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    for (size_t i = 0; i < r->n_event_types; i++) printf("%s\n", r->event_types[i]);
    marquee__notifications__v1__list_webhook_event_types_response__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(verb, "list") && argc == 2) {
    Marquee__Notifications__V1__ListWebhookEndpointsRequest q =
        MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_ENDPOINTS_REQUEST__INIT;
    q.organization_id = argv[1];
    Marquee__Notifications__V1__ListWebhookEndpointsResponse *r = NULL;
    if (marquee__notifications__v1__webhook_service__list_webhook_endpoints__call(c->cl, &q, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    for (size_t i = 0; i < r->n_endpoints; i++) {
      const Marquee__Notifications__V1__WebhookEndpoint *e = r->endpoints[i];
      printf("%s  %s  %s  secret …%s ", e->id, e->enabled ? "enabled " : "disabled", e->url, e->secret_hint);
      for (size_t k = 0; k < e->n_event_types; k++) printf("%s%s", k ? "," : "", e->event_types[k]);
      printf("\n");
    }
    marquee__notifications__v1__list_webhook_endpoints_response__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(verb, "add") && argc == 4) {
    char *types[40];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(argv[3], ",", &save); t && n < 40; t = strtok_r(NULL, ",", &save))
      types[n++] = t;
    Marquee__Notifications__V1__CreateWebhookEndpointRequest q =
        MARQUEE__NOTIFICATIONS__V1__CREATE_WEBHOOK_ENDPOINT_REQUEST__INIT;
    q.organization_id = argv[1];
    q.url = argv[2];
    q.event_types = types;
    q.n_event_types = n;
    Marquee__Notifications__V1__WebhookEndpointWithSecret *r = NULL;
    if (marquee__notifications__v1__webhook_service__create_webhook_endpoint__call(c->cl, &q, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    printf("endpoint %s\nsecret %s  (shown once: verify the Marquee-Signature header with it)\n", r->endpoint->id,
           r->secret);
    marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(r, NULL);
    return 0;
  }
  if ((!strcmp(verb, "delete") || !strcmp(verb, "rotate")) && argc == 3) {
    if (!strcmp(verb, "delete")) {
      Marquee__Notifications__V1__DeleteWebhookEndpointRequest q =
          MARQUEE__NOTIFICATIONS__V1__DELETE_WEBHOOK_ENDPOINT_REQUEST__INIT;
      q.organization_id = argv[1];
      q.endpoint_id = argv[2];
      Marquee__Notifications__V1__DeleteWebhookEndpointResponse *r = NULL;
      if (marquee__notifications__v1__webhook_service__delete_webhook_endpoint__call(c->cl, &q, &r, &c->opts, &err) !=
          MQ_OK)
        return cli_fail(&err);
      marquee__notifications__v1__delete_webhook_endpoint_response__free_unpacked(r, NULL);
      printf("deleted %s\n", argv[2]);
      return 0;
    }
    Marquee__Notifications__V1__RotateWebhookSecretRequest q =
        MARQUEE__NOTIFICATIONS__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
    q.organization_id = argv[1];
    q.endpoint_id = argv[2];
    Marquee__Notifications__V1__WebhookEndpointWithSecret *r = NULL;
    if (marquee__notifications__v1__webhook_service__rotate_webhook_secret__call(c->cl, &q, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    printf("secret %s  (the previous one keeps signing too for 24 hours)\n", r->secret);
    marquee__notifications__v1__webhook_endpoint_with_secret__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(verb, "deliveries") && (argc == 2 || argc == 3)) {
    Marquee__Notifications__V1__ListWebhookDeliveriesRequest q =
        MARQUEE__NOTIFICATIONS__V1__LIST_WEBHOOK_DELIVERIES_REQUEST__INIT;
    q.organization_id = argv[1];
    if (argc == 3) q.endpoint_id = argv[2];
    Marquee__Notifications__V1__ListWebhookDeliveriesResponse *r = NULL;
    if (marquee__notifications__v1__webhook_service__list_webhook_deliveries__call(c->cl, &q, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    for (size_t i = 0; i < r->n_deliveries; i++) print_delivery(r->deliveries[i]);
    marquee__notifications__v1__list_webhook_deliveries_response__free_unpacked(r, NULL);
    return 0;
  }
  if ((!strcmp(verb, "show") || !strcmp(verb, "redeliver")) && argc == 3) {
    Marquee__Notifications__V1__WebhookDelivery *d = NULL;
    mq_code_t rc;
    if (!strcmp(verb, "show")) {
      Marquee__Notifications__V1__GetWebhookDeliveryRequest q =
          MARQUEE__NOTIFICATIONS__V1__GET_WEBHOOK_DELIVERY_REQUEST__INIT;
      q.organization_id = argv[1];
      q.delivery_id = argv[2];
      rc = marquee__notifications__v1__webhook_service__get_webhook_delivery__call(c->cl, &q, &d, &c->opts, &err);
    } else {
      Marquee__Notifications__V1__RedeliverWebhookRequest q =
          MARQUEE__NOTIFICATIONS__V1__REDELIVER_WEBHOOK_REQUEST__INIT;
      q.organization_id = argv[1];
      q.delivery_id = argv[2];
      rc = marquee__notifications__v1__webhook_service__redeliver_webhook__call(c->cl, &q, &d, &c->opts, &err);
    }
    if (rc != MQ_OK) return cli_fail(&err);
    print_delivery(d);
    for (size_t i = 0; i < d->n_attempt_log; i++)
      printf("  attempt %u: HTTP %u in %u ms %s\n", d->attempt_log[i]->number, d->attempt_log[i]->http_status,
             d->attempt_log[i]->duration_ms, d->attempt_log[i]->error);
    if (d->body && *d->body) printf("%s\n", d->body);
    marquee__notifications__v1__webhook_delivery__free_unpacked(d, NULL);
    return 0;
  }
  return cli_usage_error(WEBHOOKS_USAGE);
}

/* checkin EVENT_ID CODE [GATE] */
static int cmd_checkin(cli_t *c, int argc, char **argv) {
  if (argc < 2 || argc > 3) return cli_usage_error("checkin: EVENT_ID CODE [GATE]");
  Marquee__Bookings__V1__CheckInRequest req = MARQUEE__BOOKINGS__V1__CHECK_IN_REQUEST__INIT;
  req.event_id = argv[0];
  req.code = argv[1];
  req.gate = argc == 3 ? argv[2] : (char *)"main";
  Marquee__Bookings__V1__CheckInRecord *r = NULL;
  mq_error_t err = {0};
  if (marquee__bookings__v1__check_in_service__check_in__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  printf("admitted: %s (%s), ticket %s, gate %s\n", r->attendee_name[0] ? r->attendee_name : "(no name)",
         r->ticket_type_name, r->ticket_id, r->gate);
  marquee__bookings__v1__check_in_record__free_unpacked(r, NULL);
  return 0;
}

/* ticket ID png|pdf FILE: the QR image or the printable ticket */
static int cmd_ticket(cli_t *c, int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "png") && strcmp(argv[1], "pdf")))
    return cli_usage_error("ticket: TICKET_ID png|pdf FILE");
  Marquee__Bookings__V1__GetTicketImageRequest req = MARQUEE__BOOKINGS__V1__GET_TICKET_IMAGE_REQUEST__INIT;
  req.ticket_id = argv[0];
  req.format = !strcmp(argv[1], "pdf") ? MARQUEE__BOOKINGS__V1__TICKET_IMAGE_FORMAT__TICKET_IMAGE_FORMAT_PDF
                                       : MARQUEE__BOOKINGS__V1__TICKET_IMAGE_FORMAT__TICKET_IMAGE_FORMAT_QR_PNG;
  Marquee__Bookings__V1__TicketImage *img = NULL;
  mq_error_t err = {0};
  if (marquee__bookings__v1__ticket_service__get_ticket_image__call(c->cl, &req, &img, &c->opts, &err) != MQ_OK)
    return cli_fail(&err);
  FILE *f = fopen(argv[2], "wb");
  bool ok = f && fwrite(img->data.data, 1, img->data.len, f) == img->data.len;
  if (f && fclose(f) != 0) ok = false;
  if (ok) printf("wrote %s (%zu bytes, %s)\n", argv[2], img->data.len, img->content_type);
  marquee__bookings__v1__ticket_image__free_unpacked(img, NULL);
  if (!ok) {
    fprintf(stderr, "marquee: cannot write %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  return 0;
}

/* ---- stats ---- */

static void print_counters(const char *label, const Marquee__Analytics__V1__Counters *k) {
  printf("%-14s holds %" PRId64 " (expired %" PRId64 ", released %" PRId64 ")  bookings %" PRId64 "  tickets %" PRId64
         "  cancelled %" PRId64 " (%" PRId64 " tickets)  refunds %" PRId64 "  check-ins %" PRId64 "  views %" PRId64,
         label, k->holds, k->holds_expired, k->holds_released, k->bookings, k->tickets_sold, k->cancellations,
         k->tickets_cancelled, k->refunds, k->check_ins, k->page_views);
  if (k->events_published) printf("  published %" PRId64, k->events_published);
  if (k->sign_ups) printf("  sign-ups %" PRId64, k->sign_ups);
  if (k->organizations_created) printf("  organizations %" PRId64, k->organizations_created);
  for (size_t i = 0; i < k->n_revenue; i++) {
    const Marquee__Analytics__V1__Revenue *r = k->revenue[i];
    printf("\n%-14s   %s gross ", "", r->currency);
    print_money(r->gross_minor, r->currency);
    printf("  fees ");
    print_money(r->fees_minor, r->currency);
    printf("  tax ");
    print_money(r->tax_minor, r->currency);
    printf("  refunded ");
    print_money(r->refunded_minor, r->currency);
    printf("  net ");
    print_money(r->net_minor, r->currency);
  }
  printf("\n");
}

static void print_series(Marquee__Analytics__V1__Point **pts, size_t n, bool all) {
  for (size_t i = 0; i < n; i++) {
    const Marquee__Analytics__V1__Counters *k = pts[i]->counters;
    bool empty = !k->holds && !k->bookings && !k->cancellations && !k->refunds && !k->check_ins && !k->page_views &&
                 !k->events_published && !k->sign_ups && !k->organizations_created && !k->holds_expired &&
                 !k->holds_released;
    if (!all && empty) continue;
    print_counters(pts[i]->label, k);
  }
}

static bool parse_time_arg(const char *s, Google__Protobuf__Timestamp *ts) {
  struct tm tm = {0};
  const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end) {
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d", &tm);
  }
  if (!end || *end) return false;
  ts->seconds = (int64_t)timegm(&tm);
  return true;
}

/* stats watch EVENT: the live counters, a line per message, until interrupted */
static int stats_watch(cli_t *c, const char *event_id) {
  mq_error_t err = {0};
  mq_client_stream_t *st = NULL;
  int rc = EXIT_CALL_FAILED;
  mq_call_opts_t o = c->opts;
  if (!c->deadline_given) o.deadline_ms = -1; /* watch until interrupted */
  Marquee__Analytics__V1__WatchEventSalesRequest req = MARQUEE__ANALYTICS__V1__WATCH_EVENT_SALES_REQUEST__INIT;
  req.event_id = (char *)event_id;
  if (marquee__analytics__v1__analytics_service__watch_event_sales__open(c->cl, &o, &st, &err) != MQ_OK) goto cleanup;
  cli_watch_stream(st);
  if (marquee__analytics__v1__analytics_service__watch_event_sales__send(st, &req, &err) != MQ_OK ||
      mq_client_stream_close_send(st, &err) != MQ_OK) {
    mq_error_t fin = {0};
    if (mq_client_stream_finish(st, &fin) != MQ_OK) err = fin;
    goto cleanup;
  }
  for (;;) {
    Marquee__Analytics__V1__LiveSales *m = NULL;
    mq_code_t code = marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err);
    if (!m) {
      if (code == MQ_OK) rc = 0;
      goto cleanup;
    }
    char when[16] = "";
    time_t t = m->as_of ? (time_t)m->as_of->seconds : time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    printf("%s  last minute: %" PRId64 " tickets in %" PRId64 " bookings, %" PRId64 " holds, %" PRId64 " cancelled  |",
           when, m->tickets_last_minute, m->bookings_last_minute, m->holds_last_minute, m->cancelled_last_minute);
    for (size_t i = 0; i < m->n_ticket_types; i++) {
      const Marquee__Analytics__V1__LiveTicketType *tt = m->ticket_types[i];
      printf("  %s %" PRId64 "/%" PRId64 "%s", tt->name, tt->remaining, tt->capacity, tt->sold_out ? " SOLD OUT" : "");
    }
    printf("\n");
    fflush(stdout);
    marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
  }
cleanup:
  cli_watch_stream(NULL);
  mq_client_stream_free(st);
  if (cli_signal_caught()) return 128 + cli_signal_caught();
  if (rc != 0) cli_fail(&err);
  return rc;
}

/* stats event ID | org ID | platform [--from T] [--to T] [--tz ZONE] [--hourly] [--all] [--csv] | watch EVENT */
static int cmd_stats(cli_t *c, int argc, char **argv) {
  const char *usage =
      "stats: event ID | org ID | platform [--from DATE] [--to DATE] [--tz ZONE] [--hourly] [--all]"
      " [--csv]";
  if (argc < 1) return cli_usage_error("%s", usage);
  if (!strcmp(argv[0], "watch")) return argc == 2 ? stats_watch(c, argv[1]) : cli_usage_error("stats: watch EVENT_ID");
  const char *what = argv[0], *id = NULL;
  int i = 1;
  if (strcmp(what, "platform")) {
    if (argc < 2) return cli_usage_error("%s", usage);
    id = argv[1];
    i = 2;
  }
  Marquee__Analytics__V1__TimeRange range = MARQUEE__ANALYTICS__V1__TIME_RANGE__INIT;
  Google__Protobuf__Timestamp from = GOOGLE__PROTOBUF__TIMESTAMP__INIT, to = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  bool all = false, csv = false;
  for (; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--from") && v && parse_time_arg(v, &from)) {
      range.start_time = &from;
      i++;
    } else if (!strcmp(a, "--to") && v && parse_time_arg(v, &to)) {
      range.end_time = &to;
      i++;
    } else if (!strcmp(a, "--tz") && v) {
      range.time_zone = argv[++i];
    } else if (!strcmp(a, "--hourly")) {
      range.granularity = MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_HOUR;
    } else if (!strcmp(a, "--all")) {
      all = true;
    } else if (!strcmp(a, "--csv")) {
      csv = true;
    } else {
      return cli_usage_error("%s (dates: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", usage);
    }
  }
  mq_error_t err = {0};
  if (!strcmp(what, "event") && csv) {
    Marquee__Analytics__V1__GetEventStatsRequest req = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
    req.event_id = (char *)id;
    req.range = &range;
    mq_client_stream_t *st = NULL;
    mq_code_t rc = marquee__analytics__v1__analytics_service__export_event_stats__open(c->cl, &c->opts, &st, &err);
    if (rc == MQ_OK) rc = marquee__analytics__v1__analytics_service__export_event_stats__send(st, &req, &err);
    if (rc == MQ_OK) rc = mq_client_stream_close_send(st, &err);
    while (rc == MQ_OK) {
      Marquee__Analytics__V1__CsvChunk *ch = NULL;
      rc = marquee__analytics__v1__analytics_service__export_event_stats__recv(st, &ch, &err);
      if (!ch) break;
      fputs(ch->text, stdout);
      marquee__analytics__v1__csv_chunk__free_unpacked(ch, NULL);
    }
    if (st) mq_client_stream_free(st);
    return rc == MQ_OK ? 0 : cli_fail(&err);
  }
  if (csv) return cli_usage_error("stats: --csv is for an event");
  if (!strcmp(what, "event")) {
    Marquee__Analytics__V1__GetEventStatsRequest req = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
    req.event_id = (char *)id;
    req.range = &range;
    Marquee__Analytics__V1__EventStats *r = NULL;
    if (marquee__analytics__v1__analytics_service__get_event_stats__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    printf("%s  %s  (%s)\n", r->event_id, r->title, r->time_zone);
    print_series(r->series, r->n_series, all);
    print_counters("total", r->totals);
    for (size_t k = 0; k < r->n_ticket_types; k++) {
      const Marquee__Analytics__V1__TicketTypeStats *t = r->ticket_types[k];
      printf("  %-30s sold %" PRId64 "  cancelled %" PRId64 "  checked in %" PRId64 "\n",
             t->name[0] ? t->name : t->ticket_type_id, t->tickets_sold, t->tickets_cancelled, t->check_ins);
    }
    const Marquee__Analytics__V1__Conversion *cv = r->conversion;
    if (cv)
      printf("conversion     views %" PRId64 " -> holds %" PRId64 " -> bookings %" PRId64 " (hold to booking %.0f%%)\n",
             cv->page_views, cv->holds, cv->bookings, cv->hold_to_booking * 100);
    if (r->check_in)
      printf("check-in       %" PRId64 " of %" PRId64 " tickets (%.0f%%)\n", r->check_in->checked_in,
             r->check_in->tickets, r->check_in->ratio * 100);
    marquee__analytics__v1__event_stats__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(what, "org")) {
    Marquee__Analytics__V1__GetOrganizationStatsRequest req =
        MARQUEE__ANALYTICS__V1__GET_ORGANIZATION_STATS_REQUEST__INIT;
    req.organization_id = (char *)id;
    req.range = &range;
    Marquee__Analytics__V1__OrganizationStats *r = NULL;
    if (marquee__analytics__v1__analytics_service__get_organization_stats__call(c->cl, &req, &r, &c->opts, &err) !=
        MQ_OK)
      return cli_fail(&err);
    print_series(r->series, r->n_series, all);
    print_counters("total", r->totals);
    for (size_t k = 0; k < r->n_events; k++)
      printf("  %s  %-40s tickets %" PRId64 "  bookings %" PRId64 "\n", r->events[k]->event_id, r->events[k]->title,
             r->events[k]->totals->tickets_sold, r->events[k]->totals->bookings);
    marquee__analytics__v1__organization_stats__free_unpacked(r, NULL);
    return 0;
  }
  if (!strcmp(what, "platform")) {
    Marquee__Analytics__V1__GetPlatformStatsRequest req = MARQUEE__ANALYTICS__V1__GET_PLATFORM_STATS_REQUEST__INIT;
    req.range = &range;
    Marquee__Analytics__V1__PlatformStats *r = NULL;
    if (marquee__analytics__v1__analytics_service__get_platform_stats__call(c->cl, &req, &r, &c->opts, &err) != MQ_OK)
      return cli_fail(&err);
    print_series(r->series, r->n_series, all);
    print_counters("total", r->totals);
    printf("active organizers %" PRId64 "\n", r->active_organizers);
    marquee__analytics__v1__platform_stats__free_unpacked(r, NULL);
    return 0;
  }
  return cli_usage_error("%s", usage);
}

static int cmd_keygen(cli_t *c, int argc, char **argv) {
  (void)c;
  if (argc < 1 || argc > 2 || strcmp(argv[0], "notify"))
    return cli_usage_error("keygen: notify [KID] (the key id, default n1)");
  const char *kid = argc == 2 ? argv[1] : "n1";
  if (!mq_seal_kid_ok(kid)) return cli_usage_error("keygen: KID is 1-32 of A-Z a-z 0-9 - _");
  char pub[128], sec[128];
  mq_seal_keygen(kid, pub, sizeof pub, sec, sizeof sec);
  printf("MARQUEE_NOTIFY_KEYS=%s\nMARQUEE_NOTIFY_SECRET_KEYS=%s\n", pub, sec);
  explicit_bzero(sec, sizeof sec);
  return 0;
}

static int cmd_events_doc(cli_t *c, int argc, char **argv) {
  (void)c, (void)argv;
  if (argc) return cli_usage_error("events-doc takes no arguments");
  char *md = mq_event_catalog_markdown();
  fputs(md, stdout);
  free(md);
  return 0;
}

static const cli_cmd_t commands[] = {
    {"health", "[--watch] [SERVICE]",
     "grpc.health.v1 Check (exit 0 only if SERVING); --watch streams every change until interrupted", true, cmd_health},
    {"version", "", "the CLI's version, then the server's version, instance, uptime and services", true, cmd_version},
    {"ping", "[-c N] [TEXT]", "SystemService/Ping with TEXT as payload, N times; prints each round trip in µs", true,
     cmd_ping},
    {"signup", "EMAIL NAME", "create an account (password from MARQUEE_CLI_PASSWORD or stdin); prints the session",
     true, cmd_signup},
    {"signin", "EMAIL", "sign in (password from MARQUEE_CLI_PASSWORD or stdin); prints MARQUEE_CLI_TOKEN=… lines", true,
     cmd_signin},
    {"me", "", "the signed-in account (needs --token or MARQUEE_CLI_TOKEN)", true, cmd_me},
    {"signout", "[REFRESH_TOKEN]", "end a session (default MARQUEE_CLI_REFRESH_TOKEN)", true, cmd_signout},
    {"providers", "", "the OAuth/OIDC sign-in providers", true, cmd_providers},
    {"oauth", "start PROVIDER REDIRECT_URI [HINT] | complete STATE CODE",
     "sign in with a provider (with --token: link it to the signed-in account)", true, cmd_oauth},
    {"invite", "ORG_ID EMAIL owner|manager|checkin", "invite someone into an organization", true, cmd_invite},
    {"accept", "TOKEN", "accept an organization invitation", true, cmd_accept},
    {"categories", "[--all] [LOCALE]", "the category tree with slugs (--all: retired too, for admins)", true,
     cmd_categories},
    {"events", "list [ORG] | get ID | create ORG TITLE START HOURS CUR VENUE|URL | publish ID | cancel ID WHY",
     "the catalog's events (list: public; with --token and ORG: every state)", true, cmd_events},
    {"search", "TEXT... [--near LAT,LNG --within 20km] [--this-weekend|--today|…] [--free] [--online] [--facets]",
     "find upcoming events: words (\"a phrase\", -exclude), place, dates, price (SearchService)", true, cmd_search},
    {"suggest", "PREFIX", "completions for what is being typed: cities, venues, event titles", true, cmd_suggest},
    {"media", "upload ORG_ID FILE [EVENT_ID]",
     "upload a JPEG, PNG or WebP image (with EVENT_ID: also add it to the event's images)", true, cmd_media},
    {"book", "EVENT_ID TYPE_ID[:QTY]... [--code C] [--key K]",
     "hold tickets (idempotent with --key) and, when free, confirm: prints the tickets and their codes", true,
     cmd_book},
    {"bookings", "list [EVENT_ID] | get ID | cancel ID [REASON] | export EVENT_ID",
     "your bookings (with EVENT_ID: the event's, for its organizers); export prints CSV", true, cmd_bookings},
    {"pay", "HOLD_ID [--gateway G] [--key K]",
     "pay for a hold (its current total) through a gateway: Stripe gives a client secret, manual gives instructions",
     true, cmd_pay},
    {"payments", "list [EVENT] | VERB ID [ARGS]",
     "your payments (EVENT: the event's, for managers); VERB: get, confirm, cancel, received [NOTE], refund [MINOR] "
     "[WHY]",
     true, cmd_payments},
    {"receipts", "get PAYMENT_ID [FILE.pdf [REFUND_ID]]",
     "a payment's receipt and credit notes; with FILE, the receipt (or that refund's credit note) as PDF", true,
     cmd_receipts},
    {"stats", "event ID | org ID | platform [--from D] [--to D] [--tz Z] [--hourly] [--csv] | watch EVENT",
     "sales, revenue and check-ins by day or hour (organizers: their events; admins: the platform); watch: the "
     "live on-sale counters",
     true, cmd_stats},
    {"webhooks",
     "types | list ORG | add ORG URL TYPES | delete ORG ID | rotate ORG ID | deliveries ORG [EP] | show|redeliver ORG "
     "ID",
     "an organization's webhook endpoints (TYPES: comma-separated, or *) and their delivery log", true, cmd_webhooks},
    {"checkin", "EVENT_ID CODE [GATE]", "check a ticket in at a gate (organization members)", true, cmd_checkin},
    {"ticket", "TICKET_ID png|pdf FILE", "save a ticket's QR code or printable PDF", true, cmd_ticket},
    {"keygen", "notify [KID]",
     "a new notifier key pair: MARQUEE_NOTIFY_KEYS for the server, MARQUEE_NOTIFY_SECRET_KEYS for the notifier", false,
     cmd_keygen},
    {"events-doc", "", "the event tables of docs/EVENTS.md, generated from the event catalog and envelope.proto", false,
     cmd_events_doc},
    {"help", "", "this help", false, cmd_help},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: marquee [OPTIONS] COMMAND [ARGS]\n"
          "\n"
          "options:\n"
          "  --target HOST:PORT   server address (env MARQUEE_CLI_TARGET, default " DEFAULT_TARGET
          ")\n"
          "  --token TOKEN        bearer token (env MARQUEE_CLI_TOKEN)\n"
          "  --tls-ca FILE        use TLS, trusting the PEM roots in FILE\n"
          "  --tls-name NAME      TLS server name to verify (default: from the target)\n"
          "  --deadline-ms N      per-call deadline in milliseconds (default 10000)\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++) {
    char head[64];
    snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].usage);
    fprintf(f, "  %-28s %s\n", head, commands[i].help);
  }
}

static int cmd_help(cli_t *c, int argc, char **argv) {
  (void)c, (void)argc, (void)argv;
  print_usage(stdout);
  return 0;
}

/* ---- main --------------------------------------------------------------------------- */

static bool parse_deadline(const char *s, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v <= 0) return false;
  *out = v;
  return true;
}

int main(int argc, char **argv) {
  cli_t c = {0};
  const char *tls_ca = NULL, *tls_name = NULL;
  const char *env_target = getenv("MARQUEE_CLI_TARGET");
  const char *env_token = getenv("MARQUEE_CLI_TOKEN");
  c.target = env_target && env_target[0] ? env_target : DEFAULT_TARGET;
  c.opts.bearer_token = env_token && env_token[0] ? env_token : NULL;

  enum { OPT_TARGET = 256, OPT_TOKEN, OPT_TLS_CA, OPT_TLS_NAME, OPT_DEADLINE };
  static const struct option longopts[] = {
      {"target", required_argument, NULL, OPT_TARGET},
      {"token", required_argument, NULL, OPT_TOKEN},
      {"tls-ca", required_argument, NULL, OPT_TLS_CA},
      {"tls-name", required_argument, NULL, OPT_TLS_NAME},
      {"deadline-ms", required_argument, NULL, OPT_DEADLINE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  opterr = 0;
  int opt;
  /* "+": stop at the command (its options are its own); ":": report missing values */
  while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
    switch (opt) {
      case OPT_TARGET:
        c.target = optarg;
        break;
      case OPT_TOKEN:
        c.opts.bearer_token = optarg[0] ? optarg : NULL;
        break;
      case OPT_TLS_CA:
        tls_ca = optarg;
        break;
      case OPT_TLS_NAME:
        tls_name = optarg;
        break;
      case OPT_DEADLINE:
        if (!parse_deadline(optarg, &c.opts.deadline_ms))
          return cli_usage_error("--deadline-ms needs a positive number of milliseconds, not '%s'", optarg);
        c.deadline_given = true;
        break;
      case 'h':
        print_usage(stdout);
        return 0;
      case ':':
        return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
      default:
        return cli_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) {
    print_usage(stderr);
    return EXIT_USAGE;
  }
  if (tls_name && !tls_ca) return cli_usage_error("%s needs --tls-ca", "--tls-name");

  const char *name = argv[optind];
  const cli_cmd_t *cmd = NULL;
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (!strcmp(commands[i].name, name)) cmd = &commands[i];
  if (!cmd) return cli_usage_error("unknown command '%s'", name);
  int cmd_argc = argc - optind - 1;
  char **cmd_argv = argv + optind + 1;
  if (!cmd->needs_client) return cmd->fn(&c, cmd_argc, cmd_argv);

  if (cli_signals_start() != 0) {
    fprintf(stderr, "marquee: cannot set up signal handling\n");
    return EXIT_CALL_FAILED;
  }
  mq_client_opts_t co = {.target = c.target, .tls_ca_file = tls_ca, .tls_server_name = tls_name};
  mq_error_t err = {0};
  if (mq_client_create(&co, &c.cl, &err) != MQ_OK) return cli_fail(&err);
  int rc = cmd->fn(&c, cmd_argc, cmd_argv);
  mq_client_destroy(c.cl);
  return rc;
}
