/*
 * mq_xmalloc.h — the one out-of-memory policy, and the one way to stop the
 * process on a broken invariant.
 *
 * Policy: a failed allocation ends the process (Redis's zmalloc does the
 * same). A server that cannot allocate a few hundred bytes cannot answer,
 * log or roll back reliably either, and every piece of state that matters
 * is in MongoDB or Kafka: a restart loses nothing (the outbox relay and the
 * sweepers pick up what was in flight). So the mq_x* functions never return
 * NULL, and callers never test their result.
 *
 * mq_die() is for the few conditions that are not input and cannot be
 * answered with a status: no entropy from the kernel, a thread that cannot
 * be started at start-up, a size that can only come from a bug. Anything a
 * request can cause — a bad message, a library call that fails on odd
 * input, a digest that cannot be computed — returns an error status
 * instead (mq_error.h); never call mq_die on a request's behalf.
 *
 * Both write one line to stderr with write(2) (no allocation, no lock)
 * naming the place, then abort() for a core dump.
 */
#ifndef MQ_XMALLOC_H
#define MQ_XMALLOC_H

#include <stddef.h>
#include <stdio.h>

_Noreturn void mq_die_at(const char *file, int line, const char *what);
#define mq_die(what) mq_die_at(__FILE__, __LINE__, (what))

/* As malloc/calloc/realloc/strdup/strndup, but never NULL: out of memory
 * ends the process (mq_die). mq_xmalloc(0) and mq_xrealloc(p, 0) return a
 * unique pointer to free, never NULL. */
void *mq_xmalloc(size_t n);
void *mq_xcalloc(size_t count, size_t size);
void *mq_xrealloc(void *p, size_t n);
/* open_memstream(buf, len) that never returns NULL (out of memory ends the
 * process, as above). fclose the stream, then free *buf. */
FILE *mq_xmemstream(char **buf, size_t *len);
char *mq_xstrdup(const char *s);
char *mq_xstrndup(const char *s, size_t n);

#endif
