/*
 * mq_xmalloc.c — allocation that never returns NULL, and mq_die (see
 * mq_xmalloc.h).
 */
#include "core/mq_xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void mq_die_at(const char *file, int line, const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "marquee: fatal: %s (%s:%d)\n", what, file, line);
  if (n > 0) {
    ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    (void)w;
  }
  abort();
}

void *mq_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) mq_die("out of memory");
  return p;
}

void *mq_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) mq_die("out of memory");
  return p;
}

void *mq_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) mq_die("out of memory");
  return q;
}

char *mq_xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) mq_die("out of memory");
  return p;
}

char *mq_xstrndup(const char *s, size_t n) {
  char *p = strndup(s, n);
  if (!p) mq_die("out of memory");
  return p;
}

FILE *mq_xmemstream(char **buf, size_t *len) {
  FILE *f = open_memstream(buf, len);
  if (!f) mq_die("out of memory (open_memstream)");
  return f;
}
