/*
 * mq_arena.c — bump allocator backing each call (see mq_arena.h). The first
 * kilobyte lives inside the arena struct, so most small calls never malloc.
 */
#include "core/mq_arena.h"
#include "core/mq_xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mq_arena_block {
  mq_arena_block_t *next;
  size_t size, off;
  char data[] __attribute__((aligned(16)));
};

void mq_arena_init(mq_arena_t *a) {
  a->head = NULL;
  a->used = 0;
  a->first_off = 0;
}

void mq_arena_release(mq_arena_t *a) {
  mq_arena_block_t *b = a->head;
  while (b) {
    mq_arena_block_t *n = b->next;
    free(b);
    b = n;
  }
  mq_arena_init(a);
}

void *mq_arena_alloc(mq_arena_t *a, size_t n) {
  if (n > SIZE_MAX / 2) mq_die("arena allocation size overflow (a bug, never a request)");
  n = (n + 15u) & ~(size_t)15u;
  if (n == 0) n = 16;
  a->used += n;
  if (a->first_off + n <= sizeof a->first) {
    void *p = a->first + a->first_off;
    a->first_off += n;
    memset(p, 0, n);
    return p;
  }
  mq_arena_block_t *b = a->head;
  if (!b || b->off + n > b->size) {
    size_t size = n > 8192 ? n : 8192;
    b = mq_xmalloc(sizeof *b + size);
    b->size = size;
    b->off = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->off;
  b->off += n;
  memset(p, 0, n);
  return p;
}

char *mq_arena_strndup(mq_arena_t *a, const char *s, size_t n) {
  char *p = mq_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *mq_arena_strdup(mq_arena_t *a, const char *s) {
  return mq_arena_strndup(a, s, strlen(s));
}

char *mq_arena_sprintf(mq_arena_t *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  char *p = mq_arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

static void *arena_pb_alloc(void *data, size_t size) {
  return mq_arena_alloc(data, size);
}
static void arena_pb_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

ProtobufCAllocator mq_arena_allocator(mq_arena_t *a) {
  ProtobufCAllocator al = {arena_pb_alloc, arena_pb_free, a};
  return al;
}
