/*
 * mq_pool.c — fixed worker threads over one mutex-protected ring buffer.
 * Invariant: 0 <= len <= cap; tasks run in submission order of dequeue. On
 * destroy, `stopping` is set, workers drain what is queued and exit.
 */
#include "core/mq_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  mq_task_fn fn;
  void *arg;
} task_t;

struct mq_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  task_t *ring;
  size_t cap, head, len;
  unsigned busy;
  bool stopping;
  unsigned n;
  pthread_t *threads;
};

static __thread bool on_worker;

bool mq_pool_on_worker(void) {
  return on_worker;
}

static void *worker_main(void *arg) {
  mq_pool_t *p = arg;
  on_worker = true;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->len == 0 && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
    if (p->len == 0 && p->stopping) break;
    task_t t = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->len--;
    p->busy++;
    pthread_mutex_unlock(&p->mu);
    t.fn(t.arg);
    pthread_mutex_lock(&p->mu);
    p->busy--;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

mq_pool_t *mq_pool_create(unsigned threads, size_t queue_cap, const char *name) {
  if (threads == 0) return NULL; /* tasks would never run */
  mq_pool_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->cap = queue_cap ? queue_cap : 1;
  p->ring = calloc(p->cap, sizeof *p->ring);
  p->threads = calloc(threads ? threads : 1, sizeof *p->threads);
  if (!p->ring || !p->threads) {
    free(p->ring);
    free(p->threads);
    free(p);
    return NULL;
  }
  for (unsigned i = 0; i < threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
      mq_pool_destroy(p);
      return NULL;
    }
    p->n++;
    char tn[32];
    snprintf(tn, sizeof tn, "%.10s-%u", name ? name : "worker", i);
    tn[15] = '\0'; /* the kernel's limit */
    pthread_setname_np(p->threads[i], tn);
  }
  return p;
}

bool mq_pool_submit(mq_pool_t *p, mq_task_fn fn, void *arg) {
  pthread_mutex_lock(&p->mu);
  if (p->stopping || p->len == p->cap) {
    pthread_mutex_unlock(&p->mu);
    return false;
  }
  p->ring[(p->head + p->len) % p->cap] = (task_t){fn, arg};
  p->len++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return true;
}

size_t mq_pool_depth(mq_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  size_t n = p->len;
  pthread_mutex_unlock(&p->mu);
  return n;
}

unsigned mq_pool_busy(mq_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  unsigned n = p->busy;
  pthread_mutex_unlock(&p->mu);
  return n;
}

void mq_pool_destroy(mq_pool_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (unsigned i = 0; i < p->n; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->ring);
  free(p->threads);
  free(p);
}
