/*
 * mq_breaker.c — see mq_breaker.h.
 */
#include "lib/mq_breaker.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"

struct mq_breaker {
  pthread_mutex_t mu;
  mq_breaker_state_t state;
  int failures, threshold, in_flight, max_in_flight;
  int64_t open_ms, opened_at_ms;
  bool probing;
  bool metric;
};

static double gauge_state(void *arg) {
  return (double)mq_breaker_state(arg, mq_now_unix_ms());
}

mq_breaker_t *mq_breaker_new(const char *gauge, int failures, int64_t open_ms, int max_in_flight) {
  mq_breaker_t *b = mq_xcalloc(1, sizeof *b);
  pthread_mutex_init(&b->mu, NULL);
  b->threshold = failures > 0 ? failures : 1;
  b->open_ms = open_ms > 0 ? open_ms : 1;
  b->max_in_flight = max_in_flight > 0 ? max_in_flight : 1;
  if (gauge) {
    mq_metrics_gauge(gauge, "Circuit breaker state: 0 closed, 1 open, 2 half-open", gauge_state, b);
    b->metric = true;
  }
  return b;
}

void mq_breaker_free(mq_breaker_t *b) {
  if (!b) return;
  if (b->metric) mq_metrics_gauge_remove(b);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

/* Under mu: OPEN turns HALF_OPEN once its time is up. */
static void settle(mq_breaker_t *b, int64_t now) {
  if (b->state == MQ_BREAKER_OPEN && now - b->opened_at_ms >= b->open_ms) {
    b->state = MQ_BREAKER_HALF_OPEN;
    b->probing = false;
  }
}

bool mq_breaker_allow(mq_breaker_t *b, int64_t now_ms) {
  pthread_mutex_lock(&b->mu);
  settle(b, now_ms);
  bool ok = b->state == MQ_BREAKER_CLOSED;
  if (b->state == MQ_BREAKER_HALF_OPEN && !b->probing) ok = b->probing = true;
  pthread_mutex_unlock(&b->mu);
  return ok;
}

void mq_breaker_record(mq_breaker_t *b, bool ok, int64_t now_ms) {
  pthread_mutex_lock(&b->mu);
  if (ok) {
    b->failures = 0;
    b->state = MQ_BREAKER_CLOSED;
  } else if (b->state == MQ_BREAKER_HALF_OPEN || ++b->failures >= b->threshold) {
    b->state = MQ_BREAKER_OPEN;
    b->opened_at_ms = now_ms;
  }
  b->probing = false;
  pthread_mutex_unlock(&b->mu);
}

mq_breaker_state_t mq_breaker_state(mq_breaker_t *b, int64_t now_ms) {
  pthread_mutex_lock(&b->mu);
  settle(b, now_ms);
  mq_breaker_state_t s = b->state;
  pthread_mutex_unlock(&b->mu);
  return s;
}

const char *mq_breaker_state_name(mq_breaker_state_t s) {
  return s == MQ_BREAKER_OPEN ? "open" : s == MQ_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

bool mq_breaker_enter(mq_breaker_t *b) {
  pthread_mutex_lock(&b->mu);
  bool ok = b->in_flight < b->max_in_flight;
  if (ok) b->in_flight++;
  pthread_mutex_unlock(&b->mu);
  return ok;
}

void mq_breaker_leave(mq_breaker_t *b) {
  pthread_mutex_lock(&b->mu);
  if (b->in_flight > 0) b->in_flight--;
  pthread_mutex_unlock(&b->mu);
}

int64_t mq_backoff_ms(int n, int64_t base_ms, int64_t cap_ms) {
  if (n < 1) n = 1;
  int64_t ceil = base_ms;
  for (int i = 1; i < n && ceil < cap_ms; i++) ceil *= 2;
  if (ceil > cap_ms) ceil = cap_ms;
  uint32_t r = randombytes_uniform(1000000);
  return ceil / 2 + (int64_t)((double)(ceil - ceil / 2) * (r / 1e6));
}
