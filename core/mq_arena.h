/*
 * mq_arena.h — a per-call bump allocator.
 *
 * Each call owns one arena: the request is unpacked into it (through
 * mq_arena_allocator), the handler builds its response in it, and the whole
 * thing is released in one step when the call ends. Nothing allocated from an
 * arena is freed individually. Allocation failure aborts (out of memory is not
 * a recoverable condition for a server here). Not thread-safe: one call's
 * arena is used by one thread at a time (the transport hands calls over with
 * a mutex/queue, which orders the accesses).
 */
#ifndef MQ_ARENA_H
#define MQ_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct mq_arena_block mq_arena_block_t;

typedef struct mq_arena {
  mq_arena_block_t *head;
  size_t used; /* bytes handed out, for metrics */
  char first[1024] __attribute__((aligned(16)));
  size_t first_off;
} mq_arena_t;

void mq_arena_init(mq_arena_t *a);
/* Frees every block; the arena may be reused after mq_arena_init. */
void mq_arena_release(mq_arena_t *a);
/* 16-byte aligned, zeroed memory valid until release. */
void *mq_arena_alloc(mq_arena_t *a, size_t n);
char *mq_arena_strdup(mq_arena_t *a, const char *s);
char *mq_arena_strndup(mq_arena_t *a, const char *s, size_t n);
char *mq_arena_sprintf(mq_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A protobuf-c allocator drawing from `a` (free is a no-op). */
ProtobufCAllocator mq_arena_allocator(mq_arena_t *a);

#endif
