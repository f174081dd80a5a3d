/*
 * mq_pool.h — the worker pool where blocking work runs (libmongoc, librdkafka
 * flushes, Argon2, sleeps), so completion-queue threads never block
 * (DESIGN.md §3). A fixed set of threads drains one bounded FIFO queue; a full
 * queue refuses new work instead of growing (the caller answers OVERLOADED).
 */
#ifndef MQ_POOL_H
#define MQ_POOL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mq_pool mq_pool_t;
typedef void (*mq_task_fn)(void *arg);

/* Starts `threads` workers with room for `queue_cap` waiting tasks. NULL on
 * failure (errno from pthread_create). */
mq_pool_t *mq_pool_create(unsigned threads, size_t queue_cap, const char *name);
/* Queues fn(arg). Returns false (and does nothing) when the queue is full or
 * the pool is stopping. Thread-safe. */
bool mq_pool_submit(mq_pool_t *p, mq_task_fn fn, void *arg);
size_t mq_pool_depth(mq_pool_t *p);  /* waiting tasks (for /metrics) */
unsigned mq_pool_busy(mq_pool_t *p); /* tasks running now */
/* True on one of this pool's threads (blocking there is allowed). */
bool mq_pool_on_worker(void);
/* Runs every queued task to completion, then joins the threads and frees. */
void mq_pool_destroy(mq_pool_t *p);

#endif
