/*
 * mq_fault.c — the registry of armed fault points (see mq_fault.h): a small
 * table under a mutex, consulted only while something is armed.
 */
#include "core/mq_fault.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

atomic_int mq_fault_armed;

typedef struct {
  char name[64];
  int skip, times, fired;
} point_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static point_t points[MQ_FAULT_MAX];
static int n_points;

static point_t *find(const char *name) {
  for (int i = 0; i < n_points; i++)
    if (!strcmp(points[i].name, name)) return &points[i];
  return NULL;
}

bool mq_fault_hit(const char *name) {
  pthread_mutex_lock(&mu);
  point_t *p = find(name);
  bool fail = false;
  if (p) {
    if (p->skip > 0) {
      p->skip--;
    } else if (p->times > 0) {
      p->times--;
      p->fired++;
      fail = true;
    }
  }
  pthread_mutex_unlock(&mu);
  return fail;
}

void mq_fault_arm(const char *name, int skip, int times) {
  pthread_mutex_lock(&mu);
  point_t *p = find(name);
  if (!p && n_points < MQ_FAULT_MAX) {
    p = &points[n_points++];
    snprintf(p->name, sizeof p->name, "%s", name);
  }
  if (p) {
    p->skip = skip;
    p->times = times;
    p->fired = 0;
  }
  atomic_store(&mq_fault_armed, n_points);
  pthread_mutex_unlock(&mu);
}

int mq_fault_fired(const char *name) {
  pthread_mutex_lock(&mu);
  point_t *p = find(name);
  int n = p ? p->fired : 0;
  pthread_mutex_unlock(&mu);
  return n;
}

void mq_fault_clear(void) {
  pthread_mutex_lock(&mu);
  n_points = 0;
  atomic_store(&mq_fault_armed, 0);
  pthread_mutex_unlock(&mu);
}
