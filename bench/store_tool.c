/*
 * store_tool.c — the helper of bench/store.sh (mq-bench-store): what the
 * document store itself costs, below Marquee's code, for the reads and
 * writes Marquee's stores make.
 *
 *   mq-bench-store fill MONGO_URI DB N
 *       grows the collection bench_docs to N documents (from however many it
 *       holds, so one collection is measured at 1k, then 10k, …): _id
 *       "d%09d", user_id "u%08d" (ten documents per user), state, starts_at (a date; a
 *       keyset page sorts on it), and ~300 bytes of other fields, as a
 *       booking document weighs. Indexes {user_id: 1} and {starts_at: 1,
 *       _id: 1} are created first, as Marquee's stores create theirs.
 *       insertMany of 1,000 unordered. Prints {"docs":…,"seconds":…}.
 *   mq-bench-store measure MONGO_URI DB N SAMPLES
 *       on a collection of N documents, SAMPLES (at most; each kind stops
 *       after 20 s) sequential calls of each kind, with random keys:
 *         by_id_hit   find {_id: existing}                 (limit 1)
 *         by_id_miss  find {_id: absent}                   (limit 1)
 *         equality    find {user_id: u}  — 10 documents    (indexed field)
 *         keyset      find {starts_at: {$gt: t}} sort {starts_at: 1, _id: 1}
 *                     limit 20                              (a page)
 *         update      update_one {_id: existing} {$set: {state: …}}
 *         insert      insert_one of a fresh _id (removed afterwards)
 *       and checks each answer (a hit finds its document, a miss none, an
 *       equality query its ten, a page twenty in order). Prints one JSON
 *       object: per kind p50/p99 in µs and the sample count.
 *
 *   mq-bench-store bookings MONGO_URI DB N
 *       grows the bookings collection to N bookings in the shape the
 *       bookings store writes (mq_bookings_doc: two tickets each, a price),
 *       ten per user, users 00000000-0000-4000-8000-<12 digits> in order,
 *       after creating the store's own indexes; insertMany of 1,000.
 *       Prints {"docs":…,"seconds":…}.
 *   mq-bench-store token JWT_KEYS SUBJECT
 *       prints an attendee access token for SUBJECT (HS256 with the first
 *       key, as the server verifies them).
 *
 * Invariant: a wrong answer is an error (exit 1), never a fast figure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>

#include "lib/mq_jwt.h"
#include "store/bookings/bookings_store.h"

#define COLL "bench_docs"
#define PER_USER 10
#define DAY_MS 86400000LL
#define T0_MS 1798761600000LL /* 2027-01-01 */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { /* xorshift64*: a fixed sequence, so runs compare */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}

/* document i belongs to user i / 10: ten per user at every size the collection grows to */
static void user_of(long i, char out[16]) {
  snprintf(out, 16, "u%08ld", (i / PER_USER) % 100000000L);
}
static int64_t starts_of(long i) {
  return T0_MS + (int64_t)((i * 7919L) % 400000L) * 60000LL;
}

static void doc_of(long i, bson_t *d) {
  char id[16], user[16];
  snprintf(id, sizeof id, "d%09ld", i);
  user_of(i, user);
  BSON_APPEND_UTF8(d, "_id", id);
  BSON_APPEND_UTF8(d, "user_id", user);
  BSON_APPEND_UTF8(d, "event_id", "e6c1d2b0-0000-4000-8000-000000000001");
  BSON_APPEND_UTF8(d, "state", "confirmed");
  BSON_APPEND_DATE_TIME(d, "starts_at", starts_of(i));
  BSON_APPEND_INT64(d, "amount_minor", 2500 + i % 1000);
  BSON_APPEND_UTF8(d, "currency", "EUR");
  BSON_APPEND_UTF8(d, "hold_id", "9a0c6f7e-1111-4222-8333-444455556666");
  BSON_APPEND_UTF8(d, "note",
                   "a booking-sized document: ids, amounts, dates and a few short strings, "
                   "about three hundred bytes in all, as the bookings collection holds.");
  BSON_APPEND_INT32(d, "version", 1);
}

static mongoc_client_t *connect_to(const char *uri_s) {
  bson_error_t e;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &e);
  if (!uri) {
    fprintf(stderr, "uri: %s\n", e.message);
    exit(2);
  }
  mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 600000);
  mongoc_client_t *c = mongoc_client_new_from_uri(uri);
  mongoc_uri_destroy(uri);
  return c;
}

/* documents have..n-1 (make(i, doc)) in insertMany batches of 1,000, unordered */
static int grow(mongoc_collection_t *coll, long have, long n, void (*make)(long i, bson_t *d)) {
  enum { BATCH = 1000 };
  bson_t docs[BATCH];
  const bson_t *ptrs[BATCH];
  bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
  bson_error_t e;
  int rc = 0;
  for (long i = have; i < n && rc == 0;) {
    int k = 0;
    for (; k < BATCH && i < n; k++, i++) {
      bson_init(&docs[k]);
      make(i, &docs[k]);
      ptrs[k] = &docs[k];
    }
    if (!mongoc_collection_insert_many(coll, ptrs, (size_t)k, opts, NULL, &e)) {
      fprintf(stderr, "insert_many at %ld: %s\n", i, e.message);
      rc = 1;
    }
    for (int j = 0; j < k; j++) bson_destroy(&docs[j]);
  }
  bson_destroy(opts);
  return rc;
}

static int fill(const char *uri, const char *db, long n) {
  mongoc_client_t *c = connect_to(uri);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, COLL);
  bson_error_t e;
  int64_t have = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &e);
  if (have < 0) have = 0;
  /* once, on an empty collection: FerretDB 1.24 panics on a createIndexes
   * that repeats an existing compound index */
  bool ok = true;
  if (have == 0) {
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(COLL), "indexes", "[", "{", "key", "{", "user_id", BCON_INT32(1),
                           "}", "name", BCON_UTF8("user_id_1"), "}", "{", "key", "{", "starts_at", BCON_INT32(1), "_id",
                           BCON_INT32(1), "}", "name", BCON_UTF8("starts_at_1__id_1"), "}", "]");
    mongoc_database_t *d = mongoc_client_get_database(c, db);
    ok = mongoc_database_command_simple(d, cmd, NULL, NULL, &e);
    mongoc_database_destroy(d);
    bson_destroy(cmd);
  }
  if (!ok) {
    fprintf(stderr, "createIndexes: %s\n", e.message);
    return 1;
  }
  int64_t t0 = now_ns();
  if (grow(coll, have, n, doc_of) != 0) return 1;
  printf("{\"docs\":%ld,\"added\":%" PRId64 ",\"seconds\":%.2f}\n", n, n > have ? n - have : 0,
         (double)(now_ns() - t0) / 1e9);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* one find; returns the number of documents, checks order of starts_at when asked */
static long run_find(mongoc_collection_t *coll, bson_t *filter, bson_t *opts, bool ordered) {
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
  const bson_t *d;
  long got = 0;
  int64_t last = INT64_MIN;
  while (mongoc_cursor_next(cur, &d)) {
    bson_iter_t it;
    if (ordered && bson_iter_init_find(&it, d, "starts_at")) {
      int64_t t = bson_iter_date_time(&it);
      if (t < last) got = -1000000;
      last = t;
    }
    got++;
  }
  bson_error_t e;
  if (mongoc_cursor_error(cur, &e)) {
    fprintf(stderr, "find: %s\n", e.message);
    got = -1;
  }
  mongoc_cursor_destroy(cur);
  return got;
}

enum { K_HIT, K_MISS, K_EQ, K_PAGE, K_UPDATE, K_INSERT, K_N };
static const char *const kind_name[K_N] = {"by_id_hit", "by_id_miss", "equality", "keyset", "update", "insert"};

static int measure(const char *uri, const char *db, long n, int samples) {
  mongoc_client_t *c = connect_to(uri);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, COLL);
  int64_t *lat = calloc((size_t)samples, sizeof *lat);
  printf("{\"docs\":%ld", n);
  for (int k = 0; k < K_N; k++) {
    int done = 0;
    int64_t began = now_ns();
    for (; done < samples && now_ns() - began < 20000000000LL; done++) {
      long i = (long)(rnd() % (uint64_t)n);
      char id[24], user[16];
      bson_t *filter = NULL, *opts = NULL;
      long want = 0, got = 0;
      bool ordered = false;
      int64_t t0 = now_ns();
      switch (k) {
        case K_HIT:
        case K_MISS:
          snprintf(id, sizeof id, k == K_HIT ? "d%09ld" : "x%09ld", i);
          filter = BCON_NEW("_id", BCON_UTF8(id));
          opts = BCON_NEW("limit", BCON_INT64(1));
          want = k == K_HIT;
          break;
        case K_EQ:
          user_of(i, user);
          filter = BCON_NEW("user_id", BCON_UTF8(user));
          want = (i / PER_USER + 1) * PER_USER <= n ? PER_USER : n % PER_USER;
          break;
        case K_PAGE: {
          int64_t from = T0_MS + (int64_t)(rnd() % 300000) * 60000LL;
          filter = BCON_NEW("starts_at", "{", "$gt", BCON_DATE_TIME(from), "}");
          opts = BCON_NEW("sort", "{", "starts_at", BCON_INT32(1), "_id", BCON_INT32(1), "}", "limit", BCON_INT64(20));
          want = n >= 1000 ? 20 : -2; /* a 1k collection may hold fewer after a random start */
          ordered = true;
          break;
        }
        case K_UPDATE: {
          snprintf(id, sizeof id, "d%09ld", i);
          filter = BCON_NEW("_id", BCON_UTF8(id));
          bson_t *upd = BCON_NEW("$set", "{", "state", BCON_UTF8(done % 2 ? "confirmed" : "checked_in"), "}");
          bson_t reply;
          bson_error_t e;
          bool ok = mongoc_collection_update_one(coll, filter, upd, NULL, &reply, &e);
          bson_iter_t it;
          got = ok && bson_iter_init_find(&it, &reply, "matchedCount") ? bson_iter_as_int64(&it) : -1;
          if (!ok) fprintf(stderr, "update: %s\n", e.message);
          want = 1;
          bson_destroy(&reply);
          bson_destroy(upd);
          break;
        }
        case K_INSERT: {
          bson_t d = BSON_INITIALIZER;
          doc_of(i, &d);
          bson_t *d2 = bson_new();
          bson_iter_t it;
          bson_iter_init(&it, &d);
          snprintf(id, sizeof id, "i%09d", done);
          BSON_APPEND_UTF8(d2, "_id", id);
          while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), "_id")) bson_append_iter(d2, NULL, -1, &it);
          bson_error_t e;
          got = mongoc_collection_insert_one(coll, d2, NULL, NULL, &e) ? 1 : -1;
          if (got < 0) fprintf(stderr, "insert: %s\n", e.message);
          want = 1;
          bson_destroy(&d);
          bson_destroy(d2);
          break;
        }
      }
      if (k != K_UPDATE && k != K_INSERT) got = run_find(coll, filter, opts, ordered);
      lat[done] = (now_ns() - t0) / 1000;
      if (want == -2 ? (got < 0 || got > 20) : got != want) {
        fprintf(stderr, "%s: got %ld documents, want %ld (sample %d)\n", kind_name[k], got, want, done);
        return 1;
      }
      if (filter) bson_destroy(filter);
      if (opts) bson_destroy(opts);
    }
    qsort(lat, (size_t)done, sizeof *lat, cmp_i64);
    printf(",\"%s\":{\"n\":%d,\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64 "}", kind_name[k], done,
           done ? lat[done / 2] : 0, done ? lat[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1] : 0);
  }
  printf("}\n");
  /* the inserted documents go, so the next size starts from the filled ones */
  bson_t *del = BCON_NEW("_id", "{", "$regex", BCON_UTF8("^i"), "}");
  bson_error_t e;
  mongoc_collection_delete_many(coll, del, NULL, NULL, &e);
  bson_destroy(del);
  free(lat);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return 0;
}

static long g_bookings_n; /* the size being grown to: created_at counts back from it */

static void booking_of(long i, bson_t *d) {
  char id[48], user[48], hold[48], t1[48], t2[48];
  snprintf(id, sizeof id, "b0000000-0000-4000-8000-%012ld", i);
  snprintf(hold, sizeof hold, "h0000000-0000-4000-8000-%012ld", i);
  snprintf(user, sizeof user, "00000000-0000-4000-8000-%012ld", i / PER_USER);
  snprintf(t1, sizeof t1, "t1000000-0000-4000-8000-%012ld", i);
  snprintf(t2, sizeof t2, "t2000000-0000-4000-8000-%012ld", i);
  mq_hold_line_t line = {.ticket_type_id = (char *)"tt000000-0000-4000-8000-000000000001",
                         .name = (char *)"General admission",
                         .quantity = 2,
                         .unit_minor = 2500};
  mq_ticket_t tickets[2] = {
      {t1, line.ticket_type_id, line.name, (char *)"", (char *)"slot-a"},
      {t2, line.ticket_type_id, line.name, (char *)"", (char *)"slot-b"},
  };
  mq_booking_t b = {.id = id,
                    .hold_id = hold,
                    .event_id = (char *)"e6c1d2b0-0000-4000-8000-000000000001",
                    .organization_id = (char *)"0c000000-0000-4000-8000-000000000001",
                    .user_id = user,
                    .state = (char *)MQ_BOOKING_CONFIRMED,
                    .currency = (char *)"EUR",
                    .payment_reference = (char *)"",
                    .buyer_name = (char *)"Bench Buyer",
                    .buyer_email = (char *)"buyer@example.com",
                    .lines = &line,
                    .n_lines = 1,
                    .total_minor = 5000,
                    .price = {.subtotal_minor = 5000},
                    .tickets = tickets,
                    .n_tickets = 2,
                    .created_ms = T0_MS - (int64_t)(g_bookings_n - i) * 1000};
  mq_bookings_doc(d, &b);
}

static int bookings(const char *uri, const char *db, long n) {
  mq_store_t *s = NULL;
  mq_error_t err;
  if (mq_store_open(uri, db, 2, &s, &err) != MQ_OK ||
      mq_store_ensure_indexes(s, mq_bookings_indexes, mq_bookings_n_indexes, &err) != MQ_OK) {
    fprintf(stderr, "store: %s\n", err.message);
    return 1;
  }
  mq_store_close(s);
  mongoc_client_t *c = connect_to(uri);
  mongoc_collection_t *coll = mongoc_client_get_collection(c, db, MQ_BOOKINGS_COLLECTION);
  bson_error_t e;
  int64_t have = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &e);
  if (have < 0) have = 0;
  int64_t t0 = now_ns();
  g_bookings_n = n;
  if (grow(coll, have, n, booking_of) != 0) return 1;
  printf("{\"docs\":%ld,\"seconds\":%.2f}\n", n, (double)(now_ns() - t0) / 1e9);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && !strcmp(argv[1], "bookings")) {
    mongoc_init();
    int rc = bookings(argv[2], argv[3], atol(argv[4]));
    mongoc_cleanup();
    return rc;
  }
  if (argc >= 4 && !strcmp(argv[1], "token")) {
    mq_jwt_keys_t *k = NULL;
    mq_error_t err;
    if (mq_jwt_keys_parse(argv[2], "marquee", "marquee-api", &k, &err) != MQ_OK) {
      fprintf(stderr, "keys: %s\n", err.message);
      return 1;
    }
    char *t = mq_jwt_sign(k, argv[3], MQ_ROLE_ATTENDEE, 86400);
    printf("%s\n", t);
    free(t);
    mq_jwt_keys_free(k);
    return 0;
  }
  if (argc >= 5 && !strcmp(argv[1], "fill")) {
    mongoc_init();
    int rc = fill(argv[2], argv[3], atol(argv[4]));
    mongoc_cleanup();
    return rc;
  }
  if (argc >= 6 && !strcmp(argv[1], "measure")) {
    mongoc_init();
    int rc = measure(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
    mongoc_cleanup();
    return rc;
  }
  fprintf(stderr,
          "usage: mq-bench-store fill URI DB N | measure URI DB N SAMPLES | bookings URI DB N | token KEYS SUBJECT\n");
  return 2;
}
