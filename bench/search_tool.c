/*
 * search_tool.c — the helper of bench/search.sh (mq-bench-search).
 *
 *   mq-bench-search index PATH N
 *       writes N synthetic events into a fresh index file at PATH through
 *       store/search (mq_search_put), one transaction per event with an
 *       offset, as marquee-indexer commits them (without its store reads),
 *       and prints {"events":…,"seconds":…,"per_s":…,"bytes":…}: the index
 *       layer's own rate and the file's size (WAL checkpointed).
 *       The corpus (fixed seed): titles from genre, adjective and noun lists
 *       (1% Japanese), 30 cities with coordinates, 12 categories, tags, a
 *       description of 20–80 words (a quarter from 35 common words, the
 *       rest from a skewed made-up vocabulary of about 14,000 words), a
 *       price or free (a quarter), dates over a year.
 *   mq-bench-search requests DIR
 *       writes the mixed query set as serialized SearchEventsRequest files
 *       (DIR/q<NN>.bin) for mq-loadgen, and prints their count.
 *   mq-bench-search typo PATH N
 *       in process, on a read-only pool of the index at PATH: the time of a
 *       query that matches ("festival"), of one with a typo that matches
 *       nothing as typed and goes through the correction ("festivl"), and
 *       of a trigram query ("ジャズ"), N times each; prints µs per query.
 *   mq-bench-search lag TARGET JWT_KEYS N
 *       on a server with marquee-indexer running: creates an organization
 *       and a venue, then N times creates a draft event with a word of its
 *       own and a ticket type, waits 300 ms (the indexer has handled the
 *       draft's events by then), publishes it and polls SearchEvents every
 *       5 ms until it is found; prints {"n":…,"p50_ms":…,"p99_ms":…,"max_ms":…} of the time
 *       from PublishEvent's answer to the first search that finds it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clients/mq_client.h"
#include "core/mq_principal.h"
#include "lib/mq_jwt.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/catalog/v1/venues.mq-client.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "marquee/search/v1/search.mq-client.h"
#include "store/search/search_index.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static const char *genres[] = {"Jazz",  "Rock",  "Techno",  "Folk",    "Classical", "Hip-Hop",
                               "Blues", "Opera", "Comedy",  "Theatre", "Poetry",    "Film",
                               "Food",  "Wine",  "Startup", "Data",    "Design",    "Yoga"};
static const char *adjs[] = {"Midnight", "Summer",        "Winter",   "Live",     "Grand", "Little",
                             "Open-Air", "Underground",   "Acoustic", "Electric", "Late",  "Sunday",
                             "Weekend",  "International", "Local",    "Secret"};
static const char *nouns[] = {"Night",    "Festival",   "Session",   "Marathon", "Showcase", "Gala",
                              "Workshop", "Summit",     "Party",     "Market",   "Tour",     "Jam",
                              "Revival",  "Experience", "Weekender", "Forum"};
static const char *words[] = {"music",   "stage",     "artists",  "tickets", "doors",  "open",   "bar",
                              "food",    "friends",   "city",     "night",   "sound",  "light",  "dance",
                              "drinks",  "talks",     "speakers", "panel",   "guests", "family", "outdoor",
                              "indoor",  "seated",    "standing", "vinyl",   "band",   "dj",     "trio",
                              "quartet", "orchestra", "choir",    "tasting", "local",  "craft",  "community"};
static const struct {
  const char *city, *country;
  double lat, lng;
} cities[] = {{"Montréal", "CA", 45.50, -73.57},   {"Toronto", "CA", 43.65, -79.38},
              {"Vancouver", "CA", 49.28, -123.12}, {"New York", "US", 40.71, -74.01},
              {"Chicago", "US", 41.88, -87.63},    {"San Francisco", "US", 37.77, -122.42},
              {"Austin", "US", 30.27, -97.74},     {"Berlin", "DE", 52.52, 13.40},
              {"München", "DE", 48.14, 11.58},     {"Paris", "FR", 48.86, 2.35},
              {"Lyon", "FR", 45.76, 4.84},         {"London", "GB", 51.51, -0.13},
              {"Manchester", "GB", 53.48, -2.24},  {"Zürich", "CH", 47.37, 8.54},
              {"Genève", "CH", 46.20, 6.15},       {"Madrid", "ES", 40.42, -3.70},
              {"Barcelona", "ES", 41.39, 2.17},    {"Lisboa", "PT", 38.72, -9.14},
              {"Roma", "IT", 41.90, 12.50},        {"Milano", "IT", 45.46, 9.19},
              {"Amsterdam", "NL", 52.37, 4.90},    {"Stockholm", "SE", 59.33, 18.07},
              {"Tokyo", "JP", 35.68, 139.76},      {"Osaka", "JP", 34.69, 135.50},
              {"Seoul", "KR", 37.57, 126.98},      {"Sydney", "AU", -33.87, 151.21},
              {"São Paulo", "BR", -23.55, -46.63}, {"Ciudad de México", "MX", 19.43, -99.13},
              {"Delhi", "IN", 28.61, 77.21},       {"Lagos", "NG", 6.52, 3.38}};
static const char *cats[] = {"concerts", "festivals", "theatre", "comedy", "conferences", "workshops",
                             "food",     "sports",    "arts",    "film",   "family",      "nightlife"};
static const char *ja[] = {"東京ジャズフェスティバル", "大阪ロックナイト", "京都クラシック音楽祭",
                           "渋谷テクノパーティー"};

#define N_OF(a) (sizeof(a) / sizeof *(a))

/* Word number k of a made-up vocabulary (two or three syllables): the long
 * tail real descriptions have. Drawn as rnd(rnd(20000) + 1), small k are
 * far more frequent (about Zipf-shaped). */
static void pseudo_word(uint32_t k, char *out, size_t n) {
  static const char *syl[] = {"ka",  "lo", "mi",  "ren", "tus", "va",  "do", "pel", "sa", "ni",  "ro", "ge",
                              "bri", "ta", "mon", "el",  "ha",  "qui", "zo", "fer", "lu", "den", "ar", "ost"};
  const uint32_t ns = (uint32_t)N_OF(syl);
  snprintf(out, n, "%s%s%s", syl[k % ns], syl[(k / ns) % ns], k >= ns * ns ? syl[(k / ns / ns) % ns] : "");
}

static int cmd_index(const char *path, long n) {
  char side[600];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
  FILE *f = fopen(path, "w"); /* a plain file: mq_search_open_writer uses it as it is */
  if (f) fclose(f);
  mq_search_index_t *ix;
  mq_error_t err;
  if (mq_search_open_writer(path, &ix, &err) != MQ_OK) {
    fprintf(stderr, "open: %s\n", err.message);
    return 1;
  }
  for (size_t i = 0; i < N_OF(cats); i++) {
    char id[48];
    snprintf(id, sizeof id, "00000000-0000-4000-8000-0000000c%04zu", i);
    mq_search_begin(ix, &err);
    mq_search_put_category(ix, id, cats[i], &err);
    mq_search_commit(ix, NULL, 0, 0, &err);
  }
  int64_t now_ms = (int64_t)time(NULL) * 1000;
  int64_t t0 = now_ns();
  for (long i = 0; i < n; i++) {
    char id[48], title[160], desc[1200], venue[96], catid[48], anc[64];
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012ld", i);
    if (rnd(100) == 0)
      snprintf(title, sizeof title, "%s %ld", ja[rnd(N_OF(ja))], i % 97);
    else
      snprintf(title, sizeof title, "%s %s %s", adjs[rnd(N_OF(adjs))], genres[rnd(N_OF(genres))],
               nouns[rnd(N_OF(nouns))]);
    size_t len = 0, nw = 20 + rnd(60);
    for (size_t w = 0; w < nw && len + 24 < sizeof desc; w++) {
      char pw[24];
      if (rnd(4) == 0) /* a quarter from the common words, the rest from a long tail */
        snprintf(pw, sizeof pw, "%s", words[rnd(N_OF(words))]);
      else
        pseudo_word(rnd(rnd(20000) + 1), pw, sizeof pw);
      len += (size_t)snprintf(desc + len, sizeof desc - len, "%s%s", w ? " " : "", pw);
    }
    unsigned c = rnd(N_OF(cities)), k = rnd(N_OF(cats));
    bool online = rnd(100) < 15;
    snprintf(venue, sizeof venue, "%s Hall %u", cities[c].city, rnd(40));
    snprintf(catid, sizeof catid, "00000000-0000-4000-8000-0000000c%04u", k);
    snprintf(anc, sizeof anc, "/%s/", catid);
    const char *tags[] = {genres[rnd(N_OF(genres))], "live"};
    char tag0[32];
    snprintf(tag0, sizeof tag0, "%s", tags[0]);
    for (char *p = tag0; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    tags[0] = tag0;
    int64_t starts = now_ms + (int64_t)(1 + rnd(365 * 24)) * 3600000LL;
    int64_t price = rnd(4) == 0 ? 0 : (int64_t)(500 + rnd(20000));
    mq_search_doc_t d = {.event_id = id,
                         .organization_id = "00000000-0000-4000-8000-00000000b001",
                         .organization_name = "Bench Presents",
                         .title = title,
                         .description = desc,
                         .category_id = catid,
                         .category_root = catid,
                         .category_ancestors = anc,
                         .category_path = cats[k],
                         .category_names = cats[k],
                         .venue_id = online ? "" : venue,
                         .venue_name = online ? "" : venue,
                         .city = online ? "" : cities[c].city,
                         .country = online ? "" : cities[c].country,
                         .language = "en",
                         .currency = "EUR",
                         .time_zone = "UTC",
                         .tags = tags,
                         .n_tags = 2,
                         .online = online,
                         .has_geo = !online,
                         .latitude = cities[c].lat + (double)rnd(2000) / 10000.0 - 0.1,
                         .longitude = cities[c].lng + (double)rnd(2000) / 10000.0 - 0.1,
                         .starts_ms = starts,
                         .ends_ms = starts + 3 * 3600000LL,
                         .published_ms = now_ms,
                         .version = 1,
                         .min_price_minor = price,
                         .max_price_minor = price ? price * 2 : 0,
                         .free = price == 0};
    if (mq_search_begin(ix, &err) != MQ_OK || mq_search_put(ix, &d, &err) != MQ_OK ||
        mq_search_commit(ix, "marquee.events", 0, i + 1, &err) != MQ_OK) {
      fprintf(stderr, "put %ld: %s\n", i, err.message);
      return 1;
    }
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  int64_t v0 = now_ns();
  if (mq_search_refresh_vocab(ix, 0, 0, &err) != MQ_OK) {
    fprintf(stderr, "vocabulary: %s\n", err.message);
    return 1;
  }
  double vocab_s = (double)(now_ns() - v0) / 1e9;
  mq_search_close(ix); /* the last connection checkpoints the WAL into the file */
  struct stat sb;
  stat(path, &sb);
  printf("{\"events\":%ld,\"seconds\":%.2f,\"per_s\":%.0f,\"bytes\":%lld,\"vocab_s\":%.3f}\n", n, secs,
         (double)n / secs, (long long)sb.st_size, vocab_s);
  return 0;
}

/* ---- the mixed query set ---- */

static int write_req(const char *dir, int i, const Marquee__Search__V1__SearchEventsRequest *q) {
  char path[600];
  snprintf(path, sizeof path, "%s/q%02d.bin", dir, i);
  size_t n = marquee__search__v1__search_events_request__get_packed_size(q);
  uint8_t *buf = malloc(n ? n : 1);
  marquee__search__v1__search_events_request__pack(q, buf);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(buf, 1, n, f) != n)) return -1;
  fclose(f);
  free(buf);
  return 0;
}

static int cmd_requests(const char *dir) {
  typedef struct {
    const char *query;
    int near; /* index into cities + 1 */
    int range, sort;
    bool facets, free_only;
    const char *city;
  } spec_t;
  static const spec_t specs[] = {
      {"jazz ", 0, 0, 0, false, false, NULL},
      {"rock festival ", 0, 0, 0, false, false, NULL},
      {"\"jazz night\" ", 0, 0, 0, false, false, NULL},
      {"techn", 0, 0, 0, false, false, NULL}, /* being typed: a prefix */
      {"montreal jazz ", 0, 0, 0, false, false, NULL},
      {"concert ", 1, 0, 0, false, false, NULL},
      {"", 8, 3, 2, false, false, NULL}, /* near Berlin, this weekend, by date */
      {"festival ", 0, 0, 0, true, false, NULL},
      {"", 0, 0, 4, false, true, NULL}, /* free, most popular */
      {"workshop data ", 0, 6, 0, false, false, NULL},
      {"ジャズ", 0, 0, 0, false, false, NULL},
      {"", 0, 0, 0, true, false, "Paris"},
      {"festivl ", 0, 0, 0, false, false, NULL}, /* a typo: the correction path */
      {"summer -rock ", 0, 0, 0, false, false, NULL},
      {"live music ", 10, 0, 3, false, false, NULL}, /* near Paris by distance */
      {"comedy ", 0, 5, 0, false, false, NULL},
  };
  for (size_t i = 0; i < N_OF(specs); i++) {
    Marquee__Search__V1__SearchEventsRequest q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
    Marquee__Search__V1__GeoPoint p = MARQUEE__SEARCH__V1__GEO_POINT__INIT;
    q.query = (char *)specs[i].query;
    if (specs[i].near) {
      p.latitude = cities[specs[i].near - 1].lat;
      p.longitude = cities[specs[i].near - 1].lng;
      q.near = &p;
      q.within_km = 25;
    }
    q.date_range = specs[i].range;
    q.sort = specs[i].sort;
    q.include_facets = specs[i].facets;
    q.free_only = specs[i].free_only;
    q.city = (char *)(specs[i].city ? specs[i].city : "");
    q.time_zone = (char *)"Europe/Berlin";
    q.page_size = 20;
    if (write_req(dir, (int)i, &q) != 0) {
      fprintf(stderr, "cannot write into %s\n", dir);
      return 1;
    }
  }
  printf("%zu\n", N_OF(specs));
  return 0;
}

/* ---- lag: published → searchable ---- */

static void die(const char *what, const mq_error_t *err) {
  fprintf(stderr, "%s: %s %s: %s\n", what, mq_code_name(err->code), err->field, err->message);
  exit(1);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmd_lag(const char *target, const char *keys, long n) {
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(keys, "marquee", "marquee-api", &k, &err) != MQ_OK) die("keys", &err);
  char *tok = mq_jwt_sign(k, "00000000-0000-4000-8000-00000000be11", MQ_ROLE_ORGANIZER, 86400);
  mq_client_opts_t co = {.target = target};
  mq_client_t *c = NULL;
  if (mq_client_create(&co, &c, &err) != MQ_OK) die("client", &err);
  mq_call_opts_t oo = {.bearer_token = tok, .deadline_ms = 60000};
  Marquee__Identity__V1__CreateOrganizationRequest oq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "bench-search-%d-%ld", (int)getpid(), (long)time(NULL));
  oq.name = (char *)"Bench Search";
  oq.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  if (marquee__identity__v1__organization_service__create_organization__call(c, &oq, &o, &oo, &err) != MQ_OK)
    die("organization", &err);
  Marquee__Catalog__V1__Venue v = MARQUEE__CATALOG__V1__VENUE__INIT;
  v.organization_id = o->organization_id;
  v.name = (char *)"Lag Hall";
  v.address_line1 = (char *)"1 Rue";
  v.city = (char *)"Montréal";
  v.country = (char *)"CA";
  v.latitude = 45.5, v.longitude = -73.57;
  v.time_zone = (char *)"America/Toronto";
  Marquee__Catalog__V1__CreateVenueRequest vq = MARQUEE__CATALOG__V1__CREATE_VENUE_REQUEST__INIT;
  vq.venue = &v;
  Marquee__Catalog__V1__Venue *vr = NULL;
  if (marquee__catalog__v1__venue_service__create_venue__call(c, &vq, &vr, &oo, &err) != MQ_OK) die("venue", &err);
  int64_t *lag = calloc((size_t)n, sizeof *lag);
  for (long i = 0; i < n; i++) {
    char title[64], word[32];
    snprintf(word, sizeof word, "lagword%ldx%d", i, (int)getpid());
    snprintf(title, sizeof title, "Lag probe %s", word);
    Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
    Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    s.seconds = time(NULL) + 7 * 86400;
    e.seconds = s.seconds + 3600;
    ev.organization_id = o->organization_id;
    ev.title = title;
    ev.venue_id = vr->venue_id;
    ev.starts_at = &s;
    ev.ends_at = &e;
    ev.currency = (char *)"CAD";
    Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
    cq.event = &ev;
    Marquee__Catalog__V1__Event *made = NULL;
    if (marquee__catalog__v1__event_service__create_event__call(c, &cq, &made, &oo, &err) != MQ_OK)
      die("create event", &err);
    Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
    Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
    m.currency = (char *)"CAD";
    m.amount_minor = 1500;
    tt.name = (char *)"General";
    tt.price = &m;
    tt.capacity = 100;
    Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
    tq.event_id = made->event_id;
    tq.ticket_type = &tt;
    Marquee__Catalog__V1__TicketType *tr = NULL;
    if (marquee__catalog__v1__event_service__create_ticket_type__call(c, &tq, &tr, &oo, &err) != MQ_OK)
      die("ticket type", &err);
    marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
    /* let the indexer finish with the draft's own events first: what is timed is
     * EventPublished's way through, not an earlier event that happened to read
     * the published state */
    usleep(300000);
    Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
    pq.event_id = made->event_id;
    Marquee__Catalog__V1__Event *pub = NULL;
    if (marquee__catalog__v1__event_service__publish_event__call(c, &pq, &pub, &oo, &err) != MQ_OK)
      die("publish", &err);
    int64_t t0 = now_ns();
    Marquee__Search__V1__SearchEventsRequest q = MARQUEE__SEARCH__V1__SEARCH_EVENTS_REQUEST__INIT;
    char qs[48];
    snprintf(qs, sizeof qs, "%s ", word);
    q.query = qs;
    for (;;) {
      Marquee__Search__V1__SearchEventsResponse *r = NULL;
      mq_code_t rc = marquee__search__v1__search_service__search_events__call(c, &q, &r, NULL, &err);
      bool found = rc == MQ_OK && r->total_size > 0;
      if (r) marquee__search__v1__search_events_response__free_unpacked(r, NULL);
      if (found) break;
      if (now_ns() - t0 > 60000000000LL) {
        fprintf(stderr, "event %ld not searchable after 60 s\n", i);
        return 1;
      }
      usleep(5000);
    }
    lag[i] = (now_ns() - t0) / 1000000;
    marquee__catalog__v1__event__free_unpacked(pub, NULL);
    marquee__catalog__v1__event__free_unpacked(made, NULL);
  }
  qsort(lag, (size_t)n, sizeof *lag, cmp_i64);
  printf("{\"n\":%ld,\"p50_ms\":%lld,\"p99_ms\":%lld,\"max_ms\":%lld}\n", n, (long long)lag[n / 2],
         (long long)lag[(n * 99 + 99) / 100 - 1], (long long)lag[n - 1]);
  free(lag);
  marquee__catalog__v1__venue__free_unpacked(vr, NULL);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
  mq_client_destroy(c);
  free(tok);
  mq_jwt_keys_free(k);
  return 0;
}

static int cmd_typo(const char *path, long n) {
  mq_search_index_t *ix;
  mq_error_t err;
  if (mq_search_open_reader(path, 1, &ix, &err) != MQ_OK) return 1;
  const char *qs[] = {"festival ", "festivl ", "ジャズ"};
  double us[3];
  for (int k = 0; k < 3; k++) {
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
      mq_arena_t a;
      mq_arena_init(&a);
      mq_search_query_t q = {.text = qs[k], .sort = MQ_SEARCH_SORT_RELEVANCE, .limit = 20};
      mq_search_result_t r;
      if (mq_search_run(ix, &q, &a, &r, &err) != MQ_OK || (k == 1 && !r.corrected)) {
        fprintf(stderr, "%s: %s\n", qs[k], err.message);
        return 1;
      }
      mq_arena_release(&a);
    }
    us[k] = (double)(now_ns() - t0) / 1e3 / (double)n;
  }
  mq_search_close(ix);
  printf("{\"plain_us\":%.0f,\"typo_us\":%.0f,\"trigram_us\":%.0f}\n", us[0], us[1], us[2]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "index")) return cmd_index(argv[2], atol(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "requests")) return cmd_requests(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "typo")) return cmd_typo(argv[2], atol(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "lag")) return cmd_lag(argv[2], argv[3], atol(argv[4]));
  fprintf(stderr, "usage: mq-bench-search index PATH N | requests DIR | typo PATH N | lag TARGET JWT_KEYS N\n");
  return 2;
}
