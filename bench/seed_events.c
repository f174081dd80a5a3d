/*
 * seed_events.c — fills a benchmark database's `events` collection with
 * published, public events for bench/catalog.sh, fast: documents are built
 * here and written with insert_many in batches (default 1000), instead of
 * 100,000 CreateEvent + CreateTicketType + PublishEvent calls.
 *
 * The documents are built by the store itself (mq_events_doc, what
 * mq_events_insert writes minus `_outbox`: no event is pending), so they
 * cannot drift from what the server stores and reads.
 *
 * Content is deterministic in the event's index (ids included), so index
 * ranges can be added in several passes (--first) and two runs with the same
 * --base-ms seed the same collection: state PUBLISHED, visibility PUBLIC,
 * 100 organizations; 85% in person (a venue of the organization, one of 20
 * cities with its country and time zone), 15% online (no city/country);
 * starts_at uniformly over the year after base + 1 h; 1..3 ticket types
 * priced 5.00..200.00 in the city's currency (EUR, GBP or USD; 5% of the
 * events free), one in ten with an extra hidden, cheaper ticket type;
 * min_price_minor the cheapest visible price, as the handler derives it;
 * published_at up to 60 days before base; a ~400-byte description.
 * The indexes the server declares (mq_events_indexes) are ensured first
 * (idempotent: the server has normally created them already).
 *
 * Usage: mq-seed-events --count N [--first 0] [--base-ms NOW] [--batch 1000]
 *        mq-seed-events --drop      (drops the whole database, for cleanup)
 *   MARQUEE_MONGO_URI (default mongodb://127.0.0.1:27017/) and
 *   MARQUEE_MONGO_DB (required) name the database, as for the server.
 * Output: one JSON line {"inserted":…,"first":…,"base_ms":…,"seconds":…,
 *   "docs_per_s":…}.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mq_time.h"
#include "store/catalog/events_store.h"
#include "store/mq_bson.h"
#include "store/mq_store.h"

#define MAX_TT 4
#define DAY_MS 86400000LL

typedef struct {
  const char *city, *country, *tz, *currency;
} city_t;

static const city_t cities[] = {
    {"Berlin", "DE", "Europe/Berlin", "EUR"},
    {"Hamburg", "DE", "Europe/Berlin", "EUR"},
    {"Munich", "DE", "Europe/Berlin", "EUR"},
    {"Paris", "FR", "Europe/Paris", "EUR"},
    {"Lyon", "FR", "Europe/Paris", "EUR"},
    {"Madrid", "ES", "Europe/Madrid", "EUR"},
    {"Barcelona", "ES", "Europe/Madrid", "EUR"},
    {"Amsterdam", "NL", "Europe/Amsterdam", "EUR"},
    {"Rome", "IT", "Europe/Rome", "EUR"},
    {"Milan", "IT", "Europe/Rome", "EUR"},
    {"Vienna", "AT", "Europe/Vienna", "EUR"},
    {"Dublin", "IE", "Europe/Dublin", "EUR"},
    {"London", "GB", "Europe/London", "GBP"},
    {"Manchester", "GB", "Europe/London", "GBP"},
    {"New York", "US", "America/New_York", "USD"},
    {"Chicago", "US", "America/Chicago", "USD"},
    {"Austin", "US", "America/Chicago", "USD"},
    {"San Francisco", "US", "America/Los_Angeles", "USD"},
    {"Seattle", "US", "America/Los_Angeles", "USD"},
    {"Boston", "US", "America/New_York", "USD"},
};
#define N_CITIES (sizeof cities / sizeof cities[0])

static const char *const tag_pool[] = {"live-music", "jazz",     "techno", "comedy",   "theatre", "family",
                                       "outdoor",    "workshop", "talk",   "festival", "food",    "sports"};
static const char *const languages[] = {"en", "de", "fr", "es"};
static const char *const tt_names[] = {"General admission", "Reduced", "VIP"};

/* Everything one event points to, so no allocation per document. */
typedef struct {
  Marquee__Catalog__V1__Event e;
  Marquee__Catalog__V1__TicketType tt[MAX_TT], *ttp[MAX_TT];
  Marquee__Common__V1__Money price[MAX_TT];
  Google__Protobuf__Timestamp starts, ends, created, updated, published;
  char id[37], org[37], venue[37], category[37], tt_id[MAX_TT][37], url[80], title[80], desc[512];
  char *tags[3];
} slot_t;

static uint64_t mix(uint64_t x) { /* splitmix64's finaliser */
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A UUIDv4-shaped id, deterministic in (kind, n). */
static void det_uuid(char out[37], uint64_t kind, uint64_t n) {
  uint64_t a = mix(kind * 0x1000003ULL ^ n), b = mix(a ^ n);
  snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64, a >> 32, (a >> 16) & 0xffff,
           a & 0xfff, 0x8000 | ((b >> 48) & 0x3fff), b & (uint64_t)0xffffffffffffULL);
}

static void set_ts(Google__Protobuf__Timestamp *ts, int64_t ms) {
  google__protobuf__timestamp__init(ts);
  ts->seconds = ms / 1000;
  ts->nanos = (int32_t)(ms % 1000) * 1000000;
}

static void build_event(slot_t *s, uint64_t i, int64_t base_ms) {
  memset(s, 0, sizeof *s);
  Marquee__Catalog__V1__Event *e = &s->e;
  marquee__catalog__v1__event__init(e);
  uint64_t h = mix(i), h2 = mix(h), h3 = mix(h2);
  uint64_t org = h % 100;
  det_uuid(s->id, 1, i);
  det_uuid(s->org, 2, org);
  e->event_id = s->id;
  e->organization_id = s->org;
  bool online = (h >> 8) % 100 < 15;
  const city_t *c = &cities[(h >> 16) % N_CITIES];
  snprintf(s->title, sizeof s->title, "Bench event %" PRIu64 " — %s", i, online ? "online" : c->city);
  e->title = s->title;
  snprintf(s->desc, sizeof s->desc,
           "## Bench event %" PRIu64
           "\n\nAn evening of music and talks, seeded for the catalog benchmark. Doors open one hour before the "
           "start; the programme runs for about three hours with a break. Tickets are personal and checked at the "
           "entrance. Accessibility: step-free access, seating on request. Bring a valid ID for age-restricted "
           "tickets. See the organiser's page for travel information and the full line-up.\n",
           i);
  e->description_md = s->desc;
  if ((h >> 24) % 10) {
    det_uuid(s->category, 3, (h >> 28) % 12);
    e->category_id = s->category;
  } else {
    e->category_id = "";
  }
  e->n_tags = (size_t)((h >> 32) % 4);
  for (size_t k = 0; k < e->n_tags && k < 3; k++)
    s->tags[k] = (char *)tag_pool[(h2 >> (8 * k)) % (sizeof tag_pool / sizeof *tag_pool)];
  e->tags = s->tags;
  e->cover_image_id = "";
  if (online) {
    e->venue_id = "";
    snprintf(s->url, sizeof s->url, "https://stream.example.com/bench/%" PRIu64, i);
    e->online_url = s->url;
    e->city = e->country = "";
    e->time_zone = "UTC";
    e->currency = "USD";
    e->attendance_mode = MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE;
  } else {
    det_uuid(s->venue, 4, org * 8 + (h >> 40) % 8);
    e->venue_id = s->venue;
    e->online_url = "";
    e->city = (char *)c->city;
    e->country = (char *)c->country;
    e->time_zone = (char *)c->tz;
    e->currency = (char *)c->currency;
    e->attendance_mode = MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_IN_PERSON;
  }
  int64_t starts = base_ms + 3600000 + (int64_t)(h2 % (uint64_t)(365 * 86400)) * 1000;
  set_ts(&s->starts, starts);
  set_ts(&s->ends, starts + (int64_t)(2 + h3 % 5) * 3600000);
  int64_t published = base_ms - (int64_t)((h3 >> 8) % (uint64_t)(60 * 86400)) * 1000;
  set_ts(&s->published, published);
  set_ts(&s->updated, published);
  set_ts(&s->created, published - 2 * DAY_MS);
  e->starts_at = &s->starts;
  e->ends_at = &s->ends;
  e->language = (char *)languages[(h3 >> 40) % 4];
  e->visibility = MARQUEE__CATALOG__V1__VISIBILITY__VISIBILITY_PUBLIC;
  e->age_policy = "";
  e->refund_policy = "Refunds up to 7 days before the event.";
  e->capacity = 0;
  e->state = MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED;
  /* ticket types: 1..3 visible, cheapest first; 5% free; 1 in 10 has a hidden one */
  size_t n_tt = 1 + (size_t)((h3 >> 48) % 3);
  bool free_event = (h3 >> 52) % 20 == 0, hidden = (h >> 56) % 10 == 0;
  int64_t base_price = free_event ? 0 : 500 + (int64_t)((h2 >> 32) % 196) * 100; /* 5.00 .. 200.00 */
  for (size_t k = 0; k < n_tt + (hidden ? 1 : 0); k++) {
    Marquee__Catalog__V1__TicketType *t = &s->tt[k];
    marquee__catalog__v1__ticket_type__init(t);
    det_uuid(s->tt_id[k], 5, i * MAX_TT + k);
    t->ticket_type_id = s->tt_id[k];
    bool is_hidden = k == n_tt;
    t->name = is_hidden ? "Friends and family" : (char *)tt_names[k];
    t->description = "";
    marquee__common__v1__money__init(&s->price[k]);
    s->price[k].currency = e->currency;
    s->price[k].amount_minor = is_hidden ? base_price / 2 : base_price * (int64_t)(k + 1);
    t->price = &s->price[k];
    t->capacity = 50 + (int64_t)((h >> (4 * k)) % 5000);
    t->min_per_order = 1;
    t->max_per_order = 10;
    t->hidden = is_hidden;
    /* the stored form: SHA-256 hex of the access code (any 64 hex digits here) */
    t->access_code = is_hidden ? "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" : "";
    t->sort_order = (int32_t)k;
    s->ttp[k] = t;
  }
  e->ticket_types = s->ttp;
  e->n_ticket_types = n_tt + (hidden ? 1 : 0);
  e->min_price_minor = base_price; /* the cheapest visible one (the hidden one is not counted) */
  e->cancel_reason = "";
  e->series_id = "";
  e->created_at = &s->created;
  e->updated_at = &s->updated;
  e->published_at = &s->published;
  e->version = 2 + (int64_t)e->n_ticket_types; /* created, each ticket type added, published */
}

static int fail_store(const char *what, const mq_error_t *err) {
  fprintf(stderr, "mq-seed-events: %s: %s %s\n", what, mq_code_name(err->code), err->message);
  return 1;
}

static int fail_mongo(const char *what, const bson_error_t *e) {
  fprintf(stderr, "mq-seed-events: %s: %s\n", what, e->message);
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drops the whole database (the bench's own, at the end of a run). */
static int drop_database(const char *uri, const char *db) {
  mq_store_t *s;
  mq_error_t err;
  if (mq_store_open(uri, db, 1, &s, &err) != MQ_OK) return fail_store("open", &err);
  mongoc_client_t *cl = mq_store_acquire(s);
  mongoc_database_t *d = mongoc_client_get_database(cl, db);
  bson_error_t be;
  int rc = mongoc_database_drop(d, &be) ? 0 : fail_mongo("drop", &be);
  mongoc_database_destroy(d);
  mq_store_release(s, cl);
  mq_store_close(s);
  return rc;
}

int main(int argc, char **argv) {
  long long count = -1, first = 0, batch = 1000;
  int64_t base_ms = mq_now_unix_ms() / 60000 * 60000;
  bool drop = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--drop")) {
      drop = true;
      continue;
    }
    if (i + 1 == argc) {
      fprintf(stderr, "flag %s needs a value\n", argv[i]);
      return 2;
    }
    const char *v = argv[++i];
    if (!strcmp(argv[i - 1], "--count"))
      count = atoll(v);
    else if (!strcmp(argv[i - 1], "--first"))
      first = atoll(v);
    else if (!strcmp(argv[i - 1], "--base-ms"))
      base_ms = atoll(v);
    else if (!strcmp(argv[i - 1], "--batch"))
      batch = atoll(v);
    else {
      fprintf(stderr, "unknown flag %s\n", argv[i - 1]);
      return 2;
    }
  }
  const char *env_uri = getenv("MARQUEE_MONGO_URI"), *db = getenv("MARQUEE_MONGO_DB");
  if (!env_uri || !env_uri[0]) env_uri = "mongodb://127.0.0.1:27017/";
  /* a loaded FerretDB can take longer than mq_store's 10 s socket timeout to
   * take a batch or drop a database: 120 s, unless the URI sets its own */
  char uri[1024];
  snprintf(uri, sizeof uri, "%s", env_uri);
  const char *hosts = strstr(env_uri, "://");
  hosts = hosts ? hosts + 3 : env_uri;
  if (!strcasestr(env_uri, "sockettimeoutms="))
    snprintf(uri, sizeof uri, "%s%ssocketTimeoutMS=120000", env_uri,
             strchr(env_uri, '?') ? "&" : (strchr(hosts, '/') ? "?" : "/?"));
  if (drop && db && db[0]) return drop_database(uri, db);
  if (count < 0 || first < 0 || batch < 1 || batch > 100000 || base_ms <= 0 || !db || !db[0]) {
    fprintf(stderr,
            "usage: MARQUEE_MONGO_DB=name mq-seed-events --count N [--first 0] [--base-ms MS] [--batch 1000]\n"
            "       MARQUEE_MONGO_DB=name mq-seed-events --drop\n");
    return 2;
  }

  mq_store_t *s;
  mq_error_t err;
  if (mq_store_open(uri, db, 2, &s, &err) != MQ_OK) return fail_store("open", &err);
  if (mq_store_ensure_indexes(s, mq_events_indexes, mq_events_n_indexes, &err) != MQ_OK) {
    mq_store_close(s);
    return fail_store("indexes", &err);
  }
  mongoc_client_t *cl = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, cl, "events");
  bson_t *docs = calloc((size_t)batch, sizeof *docs);
  const bson_t **ptrs = calloc((size_t)batch, sizeof *ptrs);
  slot_t *slot = malloc(sizeof *slot);
  if (!docs || !ptrs || !slot) abort();
  int rc = 0;
  double t0 = now_s();
  long long done = 0;
  while (done < count && rc == 0) {
    size_t n = (size_t)(count - done < batch ? count - done : batch);
    for (size_t k = 0; k < n; k++) {
      build_event(slot, (uint64_t)(first + done) + k, base_ms);
      bson_init(&docs[k]);
      mq_events_doc(&docs[k], &slot->e);
      ptrs[k] = &docs[k];
    }
    bson_error_t be;
    if (!mongoc_collection_insert_many(coll, ptrs, n, NULL, NULL, &be)) rc = fail_mongo("insert_many", &be);
    for (size_t k = 0; k < n; k++) bson_destroy(&docs[k]);
    done += (long long)n;
  }
  double secs = now_s() - t0;
  if (rc == 0)
    printf("{\"inserted\":%lld,\"first\":%lld,\"base_ms\":%" PRId64 ",\"seconds\":%.2f,\"docs_per_s\":%.0f}\n", done,
           first, base_ms, secs, secs > 0 ? (double)done / secs : 0.0);
  free(slot);
  free(ptrs);
  free(docs);
  mongoc_collection_destroy(coll);
  mq_store_release(s, cl);
  mq_store_close(s);
  return rc;
}
