/*
 * bare_echo.c — the benchmark baseline: Marquee's own transport
 * (server/transport.c, same completion-queue threads, same dispatch, same
 * SystemService.Ping handler) with the interceptor chain switched off
 * (mq_server_opts_t.bare): no deadline/id/auth/policy checks, no access log,
 * no metrics. bench/run.sh measures marquee-server against it in one run.
 * Usage: mq-bare-echo  (MARQUEE_LISTEN, MARQUEE_CQ_THREADS as for the server)
 * Prints "READY grpc=<addr>" and serves until SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_log.h"
#include "handlers/system/system.h"
#include "server/mq_server.h"

extern char **environ;

int main(void) {
  mq_config_t cfg;
  mq_error_t err;
  if (mq_config_load(&cfg, environ, &err) != MQ_OK) {
    fprintf(stderr, "mq-bare-echo: %s: %s\n", err.field, err.message);
    return 2;
  }
  mq_log_set_level(MQ_LOG_WARN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  mq_server_opts_t opts = {.cfg = &cfg, .bare = true};
  mq_server_t *srv = mq_server_create(&opts, &err);
  /* Only Ping is called; GetServerInfo would need the application context. */
  if (!srv || system_service_register(NULL, srv) != 0 || mq_server_start(srv, &err) != MQ_OK) {
    fprintf(stderr, "mq-bare-echo: %s\n", err.message);
    mq_server_destroy(srv);
    mq_config_free(&cfg);
    return 1;
  }
  const char *colon = strrchr(cfg.listen, ':');
  printf("READY grpc=%.*s:%d\n", colon ? (int)(colon - cfg.listen) : 9, cfg.listen, mq_server_port(srv));
  fflush(stdout);
  int sig;
  sigwait(&sigs, &sig);
  mq_server_destroy(srv);
  mq_config_free(&cfg);
  return 0;
}
