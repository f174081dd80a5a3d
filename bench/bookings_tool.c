/*
 * bookings_tool.c — the helper of bench/bookings.sh (mq-bench-bookings).
 *
 *   mq-bench-bookings setup TARGET JWT_KEYS CAPACITY [PRICE_MINOR]
 *       mints an organizer and an attendee token (HS256 with the first key
 *       of JWT_KEYS, as the server verifies them), creates an organization,
 *       a published (online) event and one ticket type of CAPACITY, free
 *       or at PRICE_MINOR EUR cents, through the real RPCs, and prints
 *       EVENT_ID=, TICKET_TYPE_ID=, TOKEN= lines.
 *   mq-bench-bookings inserts MONGO_URI DB CONCURRENCY SECONDS
 *       the store's raw unique-insert rate: CONCURRENCY threads insert
 *       documents shaped like capacity slot records (store/bookings/
 *       capacity.c: _id "<pool>#<n>", pool, n, hold, until, at), each with
 *       a fresh _id, into the collection bench_slots, for SECONDS (after a
 *       1 s warm-up); prints {"inserts_per_s":…,"p50_us":…,"p99_us":…}.
 *       One insert per call, acknowledged (w:1), as a hold's slot insert.
 *   mq-bench-bookings watchers TARGET EVENT_ID N SERVER_PID
 *       opens N WatchAvailability streams on TARGET, waits for each first
 *       message, and prints the server's resident memory (VmRSS) before and
 *       after, and the difference per watcher; then cancels them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "clients/mq_client.h"
#include "handlers/mq_call.h"
#include "lib/mq_jwt.h"
#include "marquee/bookings/v1/availability.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static mq_client_t *client(const char *target) {
  mq_client_opts_t o = {.target = target};
  mq_client_t *c = NULL;
  mq_error_t err;
  if (mq_client_create(&o, &c, &err) != MQ_OK) {
    fprintf(stderr, "client: %s\n", err.message);
    exit(1);
  }
  return c;
}

static void die(const char *what, const mq_error_t *err) {
  fprintf(stderr, "%s: %s %s: %s\n", what, mq_code_name(err->code), err->field, err->message);
  exit(1);
}

static int setup(const char *target, const char *keys, long capacity, long price) {
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(keys, "marquee", "marquee-api", &k, &err) != MQ_OK) die("keys", &err);
  char *org_token = mq_jwt_sign(k, "00000000-0000-4000-8000-00000000be01", MQ_ROLE_ORGANIZER, 86400);
  char *user_token = mq_jwt_sign(k, "00000000-0000-4000-8000-00000000be02", MQ_ROLE_ATTENDEE, 86400);
  mq_client_t *c = client(target);
  mq_call_opts_t oo = {.bearer_token = org_token, .deadline_ms = 30000};
  Marquee__Identity__V1__CreateOrganizationRequest oq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "bench-%d-%ld", (int)getpid(), (long)time(NULL));
  oq.name = (char *)"Bench Org";
  oq.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  if (marquee__identity__v1__organization_service__create_organization__call(c, &oq, &o, &oo, &err) != MQ_OK)
    die("create organization", &err);
  Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  s.seconds = time(NULL) + 30 * 86400;
  e.seconds = s.seconds + 7200;
  ev.organization_id = o->organization_id;
  ev.title = (char *)"Hot Show";
  ev.online_url = (char *)"https://stream.example.com/hot";
  ev.starts_at = &s;
  ev.ends_at = &e;
  ev.currency = (char *)"EUR";
  Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  cq.event = &ev;
  Marquee__Catalog__V1__Event *made = NULL;
  if (marquee__catalog__v1__event_service__create_event__call(c, &cq, &made, &oo, &err) != MQ_OK)
    die("create event", &err);
  Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.currency = (char *)"EUR";
  m.amount_minor = price;
  tt.name = (char *)"General admission";
  tt.price = &m;
  tt.capacity = capacity;
  Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
  tq.event_id = made->event_id;
  tq.ticket_type = &tt;
  Marquee__Catalog__V1__TicketType *tr = NULL;
  if (marquee__catalog__v1__event_service__create_ticket_type__call(c, &tq, &tr, &oo, &err) != MQ_OK)
    die("create ticket type", &err);
  Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  pq.event_id = made->event_id;
  Marquee__Catalog__V1__Event *pub = NULL;
  if (marquee__catalog__v1__event_service__publish_event__call(c, &pq, &pub, &oo, &err) != MQ_OK) die("publish", &err);
  printf("EVENT_ID=%s\nTICKET_TYPE_ID=%s\nTOKEN=%s\n", made->event_id, tr->ticket_type_id, user_token);
  marquee__catalog__v1__event__free_unpacked(pub, NULL);
  marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  marquee__catalog__v1__event__free_unpacked(made, NULL);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
  mq_client_destroy(c);
  free(org_token);
  free(user_token);
  mq_jwt_keys_free(k);
  return 0;
}

/* ---- raw inserts ---- */

#define LAT_BUCKETS 200000 /* 10 µs buckets up to 2 s */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *db;
  atomic_bool *measuring, *stop;
  atomic_long *count;
  atomic_long *next_n;
  uint32_t *hist; /* shared, atomic adds */
  int failed;
} ins_t;

static void *insert_loop(void *arg) {
  ins_t *x = arg;
  mongoc_client_t *c = mongoc_client_pool_pop(x->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, x->db, "bench_slots");
  while (!atomic_load(x->stop)) {
    long n = atomic_fetch_add(x->next_n, 1);
    char id[64];
    snprintf(id, sizeof id, "t:bench#%ld", n);
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", id);
    BSON_APPEND_UTF8(&doc, "pool", "t:bench");
    BSON_APPEND_INT64(&doc, "n", n);
    BSON_APPEND_UTF8(&doc, "hold", "00000000-0000-4000-8000-000000000000");
    BSON_APPEND_DATE_TIME(&doc, "until", 253402300799000LL);
    BSON_APPEND_DATE_TIME(&doc, "at", (int64_t)time(NULL) * 1000);
    bson_error_t berr;
    int64_t t0 = now_ns();
    bool ok = mongoc_collection_insert_one(coll, &doc, NULL, NULL, &berr);
    int64_t us = (now_ns() - t0) / 1000;
    bson_destroy(&doc);
    if (!ok) {
      if (!x->failed++) fprintf(stderr, "insert: %s\n", berr.message);
      continue;
    }
    if (atomic_load(x->measuring)) {
      atomic_fetch_add(x->count, 1);
      long b = us / 10 < LAT_BUCKETS ? us / 10 : LAT_BUCKETS - 1;
      __atomic_fetch_add(&x->hist[b], 1, __ATOMIC_RELAXED);
    }
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(x->pool, c);
  return NULL;
}

static long pct(const uint32_t *h, long total, double p) {
  long want = (long)(total * p), seen = 0;
  for (long i = 0; i < LAT_BUCKETS; i++)
    if ((seen += h[i]) > want) return i * 10;
  return LAT_BUCKETS * 10;
}

static int inserts(const char *uri_s, const char *db, int conc, int secs) {
  mongoc_init();
  bson_error_t berr;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &berr);
  if (!uri) {
    fprintf(stderr, "uri: %s\n", berr.message);
    return 1;
  }
  mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
  mongoc_client_pool_max_size(pool, (uint32_t)conc + 2);
  atomic_bool measuring = false, stop = false;
  atomic_long count = 0, next_n = 0;
  uint32_t *hist = calloc(LAT_BUCKETS, sizeof *hist);
  ins_t *xs = calloc((size_t)conc, sizeof *xs);
  pthread_t *ts = calloc((size_t)conc, sizeof *ts);
  for (int i = 0; i < conc; i++) {
    xs[i] = (ins_t){pool, db, &measuring, &stop, &count, &next_n, hist, 0};
    pthread_create(&ts[i], NULL, insert_loop, &xs[i]);
  }
  sleep(1);
  int64_t t0 = now_ns();
  atomic_store(&measuring, true);
  sleep((unsigned)secs);
  atomic_store(&measuring, false);
  double el = (double)(now_ns() - t0) / 1e9;
  atomic_store(&stop, true);
  for (int i = 0; i < conc; i++) pthread_join(ts[i], NULL);
  long total = atomic_load(&count);
  printf("{\"inserts_per_s\":%.1f,\"p50_us\":%ld,\"p99_us\":%ld,\"concurrency\":%d}\n", total / el,
         pct(hist, total, 0.5), pct(hist, total, 0.99), conc);
  mongoc_client_t *c = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "bench_slots");
  mongoc_collection_drop(coll, NULL);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, c);
  mongoc_client_pool_destroy(pool);
  mongoc_uri_destroy(uri);
  free(hist);
  free(xs);
  free(ts);
  mongoc_cleanup();
  return 0;
}

/* ---- watchers ---- */

static long rss_kib(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kib;
}

static int watchers(const char *target, const char *event_id, int n, int pid) {
  mq_client_t *c = client(target);
  long before = rss_kib(pid);
  mq_client_stream_t **st = calloc((size_t)n, sizeof *st);
  Marquee__Bookings__V1__GetAvailabilityRequest q = MARQUEE__BOOKINGS__V1__GET_AVAILABILITY_REQUEST__INIT;
  q.event_id = (char *)event_id;
  mq_call_opts_t oo = {.deadline_ms = 600000};
  mq_error_t err;
  int64_t t0 = now_ns();
  for (int i = 0; i < n; i++) {
    if (marquee__bookings__v1__availability_service__watch_availability__open(c, &oo, &st[i], &err) != MQ_OK ||
        marquee__bookings__v1__availability_service__watch_availability__send(st[i], &q, &err) != MQ_OK ||
        mq_client_stream_close_send(st[i], &err) != MQ_OK)
      die("watch", &err);
    Marquee__Bookings__V1__Availability *m = NULL;
    if (marquee__bookings__v1__availability_service__watch_availability__recv(st[i], &m, &err) != MQ_OK || !m)
      die("first snapshot", &err);
    marquee__bookings__v1__availability__free_unpacked(m, NULL);
  }
  double open_s = (double)(now_ns() - t0) / 1e9;
  sleep(2);
  long after = rss_kib(pid);
  printf("{\"watchers\":%d,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"kib_per_watcher\":%.2f,\"open_s\":%.2f}\n", n,
         before, after, (double)(after - before) / n, open_s);
  for (int i = 0; i < n; i++) {
    mq_client_stream_cancel(st[i]);
    mq_client_stream_free(st[i]);
  }
  free(st);
  mq_client_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "setup"))
    return setup(argv[2], argv[3], atol(argv[4]), argc == 6 ? atol(argv[5]) : 0);
  if (argc == 6 && !strcmp(argv[1], "inserts")) return inserts(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
  if (argc == 6 && !strcmp(argv[1], "watchers")) return watchers(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
  fprintf(stderr,
          "usage: mq-bench-bookings setup TARGET JWT_KEYS CAPACITY | inserts MONGO_URI DB CONCURRENCY SECONDS |\n"
          "       watchers TARGET EVENT_ID N SERVER_PID\n");
  return 2;
}
