/*
 * sink.h — a small HTTP/1.1 server on loopback that records every request
 * it receives and answers with a status the test chooses: the receiving
 * system of webhooks (and later SMS and push providers) in integration
 * tests. It is the peer, not a stand-in for Marquee code: what it recorded
 * is what went over the socket.
 *
 * Invariants: one thread accepts and serves connections one at a time
 * (Connection: close); requests are kept in arrival order until the sink is
 * freed; every access to them holds the sink's lock.
 */
#ifndef MQ_TEST_SINK_H
#define MQ_TEST_SINK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mq_sink mq_sink_t;

typedef struct mq_sink_request {
  char method[16];
  char path[512];
  char *headers; /* raw header lines, "\r\n"-separated */
  char *body;
  size_t body_len;
  int status;  /* what the sink answered */
  double at_s; /* when it arrived (CLOCK_MONOTONIC seconds) */
} mq_sink_request_t;

/* Starts a sink on 127.0.0.1 and an ephemeral port; NULL on failure. */
mq_sink_t *mq_sink_start(void);
void mq_sink_free(mq_sink_t *s);
/* "http://127.0.0.1:<port>" */
const char *mq_sink_url(const mq_sink_t *s);
/* The next `n` requests are answered `status`; after them, 200. */
void mq_sink_fail_next(mq_sink_t *s, int n, int status);
/* Requests received so far. */
size_t mq_sink_count(mq_sink_t *s);
/* Waits until at least n requests arrived (false on timeout). */
bool mq_sink_wait(mq_sink_t *s, size_t n, int timeout_ms);
/* A copy of request i (caller frees with mq_sink_request_clear); false if none. */
bool mq_sink_get(mq_sink_t *s, size_t i, mq_sink_request_t *out);
void mq_sink_request_clear(mq_sink_request_t *r);
/* The value of header `name` (case-insensitive) in r, copied into out. */
bool mq_sink_header(const mq_sink_request_t *r, const char *name, char *out, size_t n);

#endif
