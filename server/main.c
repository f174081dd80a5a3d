/*
 * main.c — marquee-server: loads configuration, opens the application
 * (store, relay, health), registers every service, starts the side HTTP port
 * and the gRPC server, then waits for SIGTERM/SIGINT and shuts down
 * gracefully: stop accepting, drain in-flight calls for
 * MARQUEE_SHUTDOWN_GRACE_MS, cancel the rest, flush the relay, exit 0.
 *
 * Once serving it prints one line on stdout, for scripts and tests:
 *   READY grpc=<host:port> http=<host:port>
 * Exit codes: 0 clean shutdown, 1 start-up failure, 2 bad configuration.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_config.h"
#include "core/mq_log.h"
#include "lib/mq_http.h"
#include "server/mq_app.h"
#include "server/mq_server.h"

extern char **environ;

static void usage(FILE *f) {
  fprintf(f,
          "usage: marquee-server [--help | --version | --config-help]\n"
          "Configuration comes from MARQUEE_* environment variables and the optional\n"
          "file named by MARQUEE_CONFIG; --config-help lists every key.\n");
}

static void print_endpoint(char *out, size_t n, const char *listen, int port) {
  const char *colon = strrchr(listen, ':');
  int hl = colon ? (int)(colon - listen) : (int)strlen(listen);
  snprintf(out, n, "%.*s:%d", hl, listen, port);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--version")) {
      printf("marquee-server %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
      return 0;
    } else if (!strcmp(argv[i], "--config-help")) {
      mq_config_print_doc(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  mq_config_t cfg;
  mq_error_t err;
  mq_error_clear(&err);
  if (!mq_config_start("marquee-server", &cfg, environ)) return 2;
  mq_config_log(&cfg);

  /* Signals go to sigwait below, never to a worker thread. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  int rc = 1;
  mq_app_t *app = NULL;
  mq_server_t *srv = NULL;
  mq_http_t *http = NULL;
  if (mq_app_open(&cfg, &app, &err) != MQ_OK) goto cleanup;
  mq_server_opts_t opts = {.cfg = &cfg, .app = app};
  if (app->jwt)
    opts.verifier = (mq_auth_verifier_t){mq_jwt_verify, app->jwt};
  else
    mq_log(MQ_LOG_WARN, "auth", "MARQUEE_JWT_KEYS is empty: every bearer token will be refused");
  srv = mq_server_create(&opts, &err);
  if (!srv) goto cleanup;
  if (mq_app_register(app, srv, &err) != MQ_OK) goto cleanup;
  if (cfg.http_listen[0]) {
    http = mq_http_create(app->health);
    mq_app_routes(app, http);
    mq_http_set_threads(http, (unsigned)cfg.http_threads);
    if (mq_http_start(http, cfg.http_listen, &err) != MQ_OK) goto cleanup;
  }
  if (mq_server_start(srv, &err) != MQ_OK) goto cleanup;
  if (mq_app_start(app, &err) != MQ_OK) goto cleanup;

  char grpc_ep[128], http_ep[128] = "off";
  print_endpoint(grpc_ep, sizeof grpc_ep, cfg.listen, mq_server_port(srv));
  if (http) print_endpoint(http_ep, sizeof http_ep, cfg.http_listen, mq_http_port(http));
  mq_log(MQ_LOG_INFO, "server.ready", "serving gRPC on %s%s, HTTP on %s", grpc_ep, cfg.tls_cert[0] ? " (TLS)" : "",
         http_ep);
  printf("READY grpc=%s http=%s\n", grpc_ep, http_ep);
  fflush(stdout);

  int sig = 0;
  sigwait(&sigs, &sig);
  mq_log(MQ_LOG_INFO, "server.signal", "received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  rc = 0;

cleanup:
  if (rc != 0) {
    char msg[sizeof err.field + sizeof err.message + 8];
    mq_error_format(&err, msg, sizeof msg);
    mq_log(MQ_LOG_ERROR, "server.start_failed", "%s", msg);
    fprintf(stderr, "marquee-server: %s\n", msg);
  }
  if (srv) mq_server_shutdown(srv);
  mq_app_close(app);
  mq_http_destroy(http);
  mq_server_destroy(srv);
  mq_config_free(&cfg);
  mq_log(MQ_LOG_INFO, "server.exit", "bye");
  mq_log_stop();
  return rc;
}
