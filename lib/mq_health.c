/*
 * mq_health.c — see mq_health.h. State is a handful of atomics plus an
 * append-only list of service names written before the server starts.
 */
#include "lib/mq_health.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_metrics.h"
#include "core/mq_xmalloc.h"

#define MAX_SERVICES 64

struct mq_health {
  atomic_bool store_up, bus_up, stopping;
  atomic_int search; /* -1 no search index configured, 0 missing or stale, 1 fresh */
  atomic_uint_fast64_t version;
  char *services[MAX_SERVICES];
  int n;
};

static double g_store(void *arg) {
  return mq_health_store_up(arg) ? 1 : 0;
}

mq_health_t *mq_health_create(void) {
  mq_health_t *h = mq_xcalloc(1, sizeof *h);
  atomic_init(&h->search, -1);
  mq_metrics_gauge("marquee_dependency_up{dependency=\"mongodb\"}", "1 if the dependency answered the last probe",
                   g_store, h);
  return h;
}

void mq_health_destroy(mq_health_t *h) {
  if (!h) return;
  mq_metrics_gauge_remove(h);
  for (int i = 0; i < h->n; i++) free(h->services[i]);
  free(h);
}

void mq_health_add_service(mq_health_t *h, const char *name) {
  if (h->n < MAX_SERVICES) h->services[h->n++] = strdup(name);
}

static void set(mq_health_t *h, atomic_bool *f, bool v) {
  if (atomic_exchange(f, v) != v) atomic_fetch_add(&h->version, 1);
}

void mq_health_set_store(mq_health_t *h, bool up) {
  set(h, &h->store_up, up);
}
void mq_health_set_bus(mq_health_t *h, bool up) {
  set(h, &h->bus_up, up);
}
void mq_health_set_shutting_down(mq_health_t *h) {
  set(h, &h->stopping, true);
}
void mq_health_set_search(mq_health_t *h, int state) {
  if (atomic_exchange(&h->search, state) != state) atomic_fetch_add(&h->version, 1);
}
int mq_health_search(const mq_health_t *h) {
  return atomic_load(&((mq_health_t *)h)->search);
}
bool mq_health_store_up(const mq_health_t *h) {
  return atomic_load(&((mq_health_t *)h)->store_up);
}
bool mq_health_bus_up(const mq_health_t *h) {
  return atomic_load(&((mq_health_t *)h)->bus_up);
}
bool mq_health_shutting_down(const mq_health_t *h) {
  return atomic_load(&((mq_health_t *)h)->stopping);
}
uint64_t mq_health_version(const mq_health_t *h) {
  return atomic_load(&((mq_health_t *)h)->version);
}

mq_health_status_t mq_health_status(const mq_health_t *h, const char *service) {
  bool serving = mq_health_store_up(h) && !mq_health_shutting_down(h);
  mq_health_status_t overall = serving ? MQ_HEALTH_SERVING : MQ_HEALTH_NOT_SERVING;
  if (!service || !service[0]) return overall;
  if (!strcmp(service, "marquee.mongodb")) return mq_health_store_up(h) ? MQ_HEALTH_SERVING : MQ_HEALTH_NOT_SERVING;
  if (!strcmp(service, "marquee.kafka")) return mq_health_bus_up(h) ? MQ_HEALTH_SERVING : MQ_HEALTH_NOT_SERVING;
  if (!strcmp(service, "marquee.search") && mq_health_search(h) >= 0)
    return mq_health_search(h) == 1 ? MQ_HEALTH_SERVING : MQ_HEALTH_NOT_SERVING;
  for (int i = 0; i < h->n; i++)
    if (!strcmp(h->services[i], service)) return overall;
  return MQ_HEALTH_SERVICE_UNKNOWN;
}
