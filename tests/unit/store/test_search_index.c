/*
 * test_search_index.c — the search index (store/search/search_index.h) on a
 * real SQLite file: a fixed corpus, then relevance order, folding, prefixes,
 * Japanese and Hindi titles, geo radius boundaries, facets that sum to the
 * total, keyset pages that neither repeat nor skip while other events are
 * indexed, removal, idempotent ticket counts, spelling correction,
 * suggestions, and queries made of FTS5 syntax that must stay plain words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mq_time.h"
#include "store/search/search_index.h"

#define DAY_MS 86400000LL

static char path[128];
static mq_search_index_t *ix;
static int64_t now_ms;

typedef struct {
  const char *id, *title, *desc, *city, *country, *venue, *lang;
  double lat, lng;
  int64_t day, price;
  const char *cat;
} ev_t;

/* Montréal at (45.5017, -73.5673); "near" points are offsets north of it. */
#define MTL_LAT 45.5017
#define MTL_LNG (-73.5673)
#define KM_LAT (1.0 / 111.19508)

static const ev_t corpus[] = {
    {"e-jazz", "Jazz", "An evening of music.", "Montréal", "CA", "Blue Note", "en", MTL_LAT, MTL_LNG, 3, 2500,
     "c-music"},
    {"e-desc", "Evening concert", "Some jazz standards played late.", "Montréal", "CA", "Le Club", "fr", MTL_LAT,
     MTL_LNG, 4, 1500, "c-music"},
    {"e-phrase", "Blue night sessions", "Jazz night with a trio.", "Toronto", "CA", "Rex", "en", 43.65, -79.38, 5, 0,
     "c-music"},
    {"e-scatter", "Night market", "Food, jazz bands and more at night.", "Toronto", "CA", "Square", "en", 43.65, -79.38,
     6, 1000, "c-food"},
    {"e-zurich", "Zürich Tonhalle recital", "Piano.", "Zürich", "CH", "Tonhalle", "de", 47.37, 8.54, 7, 9000,
     "c-music"},
    {"e-tokyo", "東京ジャズフェスティバル", "ジャズの祭典", "東京", "JP", "東京国際フォーラム", "ja", 35.68, 139.76, 8,
     5000, "c-music"},
    {"e-delhi", "संगीत संध्या", "शास्त्रीय संगीत", "दिल्ली", "IN", "कमानी सभागार", "hi", 28.61, 77.21, 9, 300, "c-music"},
    {"e-in", "Inside the radius", "Festival inside.", "Laval", "CA", "North Hall", "fr", MTL_LAT + 19.9 * KM_LAT,
     MTL_LNG, 10, 0, "c-food"},
    {"e-out", "Outside the radius", "Festival outside.", "Laval", "CA", "Far Hall", "fr", MTL_LAT + 20.1 * KM_LAT,
     MTL_LNG, 11, 0, "c-food"},
    {"e-online", "Online festival talk", "A festival talk on the web.", "", "", "", "en", 0, 0, 12, 0, "c-food"},
};
#define N_CORPUS (sizeof corpus / sizeof *corpus)

static void put(const ev_t *e) {
  mq_search_doc_t d = {
      .event_id = e->id,
      .organization_id = "org-1",
      .organization_name = "Marquee Presents",
      .title = e->title,
      .description = e->desc,
      .category_id = e->cat,
      .category_root = e->cat,
      .category_ancestors = !strcmp(e->cat, "c-music") ? "/c-music/" : "/c-food/",
      .category_path = !strcmp(e->cat, "c-music") ? "music" : "food",
      .category_names = !strcmp(e->cat, "c-music") ? "Music Musique" : "Food Cuisine",
      .venue_id = e->venue,
      .venue_name = e->venue,
      .city = e->city,
      .country = e->country,
      .language = e->lang,
      .currency = "CAD",
      .time_zone = "America/Toronto",
      .online = !*e->city,
      .has_geo = *e->city != 0,
      .latitude = e->lat,
      .longitude = e->lng,
      .starts_ms = now_ms + e->day * DAY_MS,
      .ends_ms = now_ms + e->day * DAY_MS + 3 * 3600000LL,
      .published_ms = now_ms,
      .version = 1,
      .min_price_minor = e->price,
      .max_price_minor = e->price,
      .free = e->price == 0,
  };
  mq_error_t err;
  assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
  assert_int_equal(mq_search_put(ix, &d, &err), MQ_OK);
  assert_int_equal(mq_search_commit(ix, "marquee.events", 0, 1, &err), MQ_OK);
}

static int setup(void **state) {
  (void)state;
  now_ms = mq_now_unix_ms();
  snprintf(path, sizeof path, "/tmp/mq-test-search-%d.sqlite", (int)getpid());
  unlink(path);
  mq_error_t err;
  assert_int_equal(mq_search_open_writer(path, &ix, &err), MQ_OK);
  for (size_t i = 0; i < N_CORPUS; i++) put(&corpus[i]);
  assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
  assert_int_equal(mq_search_put_category(ix, "c-music", "Music", &err), MQ_OK);
  assert_int_equal(mq_search_put_category(ix, "c-food", "Food & Drink", &err), MQ_OK);
  assert_int_equal(mq_search_commit(ix, NULL, 0, 0, &err), MQ_OK);
  assert_int_equal(mq_search_refresh_vocab(ix, now_ms, 0, &err), MQ_OK); /* as the indexer does when idle */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mq_search_close(ix);
  char p[160];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
  return 0;
}

static mq_search_result_t search(mq_arena_t *a, const char *text, int sort) {
  mq_search_query_t q = {.text = text, .sort = sort ? sort : MQ_SEARCH_SORT_RELEVANCE, .limit = 20};
  mq_search_result_t r;
  mq_error_t err;
  mq_code_t rc = mq_search_run(ix, &q, a, &r, &err);
  if (rc != MQ_OK) fail_msg("search %s: %s", text, err.message);
  return r;
}

static int rank_of(const mq_search_result_t *r, const char *id) {
  for (size_t i = 0; i < r->n; i++)
    if (!strcmp(r->hits[i].event_id, id)) return (int)i;
  return -1;
}

static void test_compile(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_term_t t[MQ_SEARCH_WORDS_MAX];
  size_t n = mq_search_compile("jazz \"blue night\" -festival montr", &a, t, MQ_SEARCH_WORDS_MAX);
  assert_int_equal(n, 4);
  assert_string_equal(t[0].text, "jazz");
  assert_false(t[0].prefix);
  assert_true(t[1].phrase);
  assert_string_equal(t[1].text, "blue night");
  assert_true(t[2].negated);
  assert_string_equal(t[2].text, "festival");
  assert_true(t[3].prefix);
  /* syntax characters are words or nothing, never operators */
  n = mq_search_compile("* : - NEAR( \"", &a, t, MQ_SEARCH_WORDS_MAX);
  assert_int_equal(n, 1);
  assert_string_equal(t[0].text, "NEAR(");
  assert_string_equal(mq_search_quote(&a, "a\"b"), "\"a\"\"b\"");
  /* an unbalanced quote runs to the end */
  n = mq_search_compile("\"jazz night", &a, t, MQ_SEARCH_WORDS_MAX);
  assert_int_equal(n, 1);
  assert_true(t[0].phrase);
  /* a space after the last word: it is complete, not a prefix */
  n = mq_search_compile("jazz ", &a, t, MQ_SEARCH_WORDS_MAX);
  assert_false(t[0].prefix);
  n = mq_search_compile("東京", &a, t, MQ_SEARCH_WORDS_MAX);
  assert_true(t[0].spaceless);
  mq_arena_release(&a);
}

static void test_helpers(void **state) {
  (void)state;
  assert_int_equal(mq_search_edits("montral", "montreal", 2), 1);
  assert_int_equal(mq_search_edits("jzaz", "jazz", 2), 1); /* a transposition is one edit */
  assert_int_equal(mq_search_edits("abc", "xyz", 1), 2);   /* past max: max + 1 */
  assert_int_equal(mq_search_edits("zürich", "zurich", 2), 1);
  double d = mq_search_distance_km(MTL_LAT, MTL_LNG, MTL_LAT + 20 * KM_LAT, MTL_LNG);
  assert_true(d > 19.999 && d < 20.001);
  mq_arena_t a;
  mq_arena_init(&a);
  assert_string_equal(mq_search_html(&a, "<b>\x01jazz\x02 & \"x\""), "&lt;b&gt;<mark>jazz</mark> &amp; &quot;x&quot;");
  mq_arena_release(&a);
}

static void test_relevance(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_result_t r = search(&a, "jazz ", 0);
  /* the exact title first; a title word above a description word */
  assert_true(r.n >= 4);
  assert_string_equal(r.hits[0].event_id, "e-jazz");
  assert_true(rank_of(&r, "e-desc") > 0);
  assert_true(r.hits[0].score > r.hits[rank_of(&r, "e-desc")].score);
  assert_non_null(strstr(r.hits[0].title_html, "<mark>Jazz</mark>"));
  /* "jazz night": a phrase above the same words scattered */
  r = search(&a, "jazz night ", 0);
  int phrase = rank_of(&r, "e-phrase"), scatter = rank_of(&r, "e-scatter");
  assert_true(phrase >= 0 && scatter >= 0);
  assert_true(phrase < scatter);
  /* AND by default: both words must be there */
  assert_int_equal(rank_of(&r, "e-jazz"), -1);
  mq_arena_release(&a);
}

static void test_folding_prefix_scripts(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_result_t r = search(&a, "montreal ", 0);
  assert_true(rank_of(&r, "e-jazz") >= 0 && rank_of(&r, "e-desc") >= 0);
  r = search(&a, "zurich ", 0);
  assert_int_equal(r.total, 1);
  assert_string_equal(r.hits[0].event_id, "e-zurich");
  r = search(&a, "ZÜRICH ", 0);
  assert_int_equal(r.total, 1);
  r = search(&a, "jaz", 0); /* being typed: a prefix */
  assert_true(rank_of(&r, "e-jazz") >= 0);
  /* Japanese: a word inside a run of kana and kanji (trigram index) */
  r = search(&a, "ジャズ", 0);
  assert_int_equal(r.total, 1);
  assert_string_equal(r.hits[0].event_id, "e-tokyo");
  r = search(&a, "東京", 0); /* two characters: below a trigram, still found */
  assert_int_equal(r.total, 1);
  /* Hindi: vowel signs stay part of the word (unicode61 with marks as letters) */
  r = search(&a, "संगीत ", 0);
  assert_int_equal(r.total, 1);
  assert_string_equal(r.hits[0].event_id, "e-delhi");
  r = search(&a, "दिल्ली ", 0);
  assert_int_equal(r.total, 1);
  mq_arena_release(&a);
}

static void test_syntax_is_plain(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  const char *qs[] = {"\"",          "jazz*",      "NEAR(jazz night)",         "title:jazz", "jazz -",       "\"jazz",
                      "jazz) OR (x", "AND OR NOT", "'; DROP TABLE events; --", "^jazz",      "{title}: jazz"};
  for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
    mq_search_query_t q = {.text = qs[i], .sort = MQ_SEARCH_SORT_RELEVANCE, .limit = 5};
    mq_search_result_t r;
    mq_error_t err;
    mq_code_t rc = mq_search_run(ix, &q, &a, &r, &err);
    if (rc != MQ_OK && rc != MQ_INVALID_ARGUMENT) fail_msg("%s: %s", qs[i], err.message);
    if (rc == MQ_INVALID_ARGUMENT) assert_string_equal(err.field, "query");
  }
  /* a 10,000-byte query is refused by the service before it gets here; the
   * index itself keeps the first words and never fails */
  char *big = malloc(10001);
  for (int i = 0; i < 10000; i++) big[i] = i % 6 == 5 ? ' ' : 'a' + i % 5;
  big[10000] = 0;
  mq_search_result_t r = search(&a, big, 0);
  assert_int_equal(r.total, 0);
  free(big);
  int64_t n;
  mq_error_t err;
  assert_int_equal(mq_search_count(ix, &n, &err), MQ_OK);
  assert_int_equal(n, (int64_t)N_CORPUS);
  mq_arena_release(&a);
}

static void test_geo(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_query_t q = {.has_near = true,
                         .latitude = MTL_LAT,
                         .longitude = MTL_LNG,
                         .within_km = 20,
                         .sort = MQ_SEARCH_SORT_DISTANCE,
                         .limit = 20};
  mq_search_result_t r;
  mq_error_t err;
  assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
  assert_true(rank_of(&r, "e-in") >= 0);
  assert_int_equal(rank_of(&r, "e-out"), -1);
  assert_int_equal(r.total, 3); /* two in Montréal, one 19.9 km north */
  assert_string_equal(r.hits[2].event_id, "e-in");
  assert_true(r.hits[2].distance_km > 19.89 && r.hits[2].distance_km < 19.91);
  q.within_km = 20.2;
  assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
  assert_true(rank_of(&r, "e-out") >= 0);
  /* across the antimeridian: a point at 179.9 finds nothing here but must not fail */
  q.latitude = 0, q.longitude = 179.99, q.within_km = 100;
  assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 0);
  mq_arena_release(&a);
}

static void test_facets_filters(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_query_t q = {.sort = MQ_SEARCH_SORT_DATE, .limit = 3, .facets = true};
  for (int i = 0; i < 14; i++) q.month_bounds[i] = now_ms + i * 30 * DAY_MS;
  for (int i = 0; i < 13; i++) q.month_labels[i] = "m";
  mq_search_result_t r;
  mq_error_t err;
  assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, (int64_t)N_CORPUS);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.n_facets, 4);
  for (size_t f = 0; f < r.n_facets; f++) {
    int64_t sum = 0;
    for (size_t b = 0; b < r.facets[f].n; b++) sum += r.facets[f].buckets[b].count;
    if (sum != r.total)
      fail_msg("facet %s sums to %lld, not %lld", r.facets[f].name, (long long)sum, (long long)r.total);
  }
  assert_string_equal(r.facets[0].name, "category");
  assert_string_equal(r.facets[0].buckets[0].label, "Music");
  /* filters */
  mq_search_query_t f = {.city = "montreal", .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 2);
  f = (mq_search_query_t){.free_only = true, .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 4);
  f = (mq_search_query_t){.attendance = 2, .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 1);
  f = (mq_search_query_t){.language = "fr-CA", .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 3);
  f = (mq_search_query_t){.category_id = "c-food", .text = "festival ", .sort = MQ_SEARCH_SORT_RELEVANCE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 3);
  f = (mq_search_query_t){.text = "festival -online ", .sort = MQ_SEARCH_SORT_RELEVANCE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(rank_of(&r, "e-online"), -1);
  assert_int_equal(r.total, 2);
  f = (mq_search_query_t){.starts_before_ms = now_ms + 5 * DAY_MS + 1, .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
  assert_int_equal(mq_search_run(ix, &f, &a, &r, &err), MQ_OK);
  assert_int_equal(r.total, 3);
  mq_arena_release(&a);
}

/* Pages of 2 with other events indexed between pages: every corpus event
 * appears exactly once, in order. */
static void test_pages_stable(void **state) {
  (void)state;
  const int sorts[] = {MQ_SEARCH_SORT_RELEVANCE, MQ_SEARCH_SORT_DATE, MQ_SEARCH_SORT_POPULARITY};
  for (size_t s = 0; s < 3; s++) {
    mq_arena_t a;
    mq_arena_init(&a);
    const char *seen[64];
    size_t nseen = 0;
    const char *cursor = NULL;
    int round = 0;
    do {
      mq_search_query_t q = {.text = s == 0 ? "festival " : NULL, .sort = sorts[s], .limit = 2, .cursor = cursor};
      mq_search_result_t r;
      mq_error_t err;
      assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
      for (size_t i = 0; i < r.n; i++) {
        for (size_t j = 0; j < nseen; j++)
          if (!strcmp(seen[j], r.hits[i].event_id)) fail_msg("sort %d: %s twice", sorts[s], seen[j]);
        if (strncmp(r.hits[i].event_id, "x-", 2)) seen[nseen++] = r.hits[i].event_id;
      }
      cursor = r.next_cursor;
      /* meanwhile, a new event that sorts first and another that sorts last */
      ev_t early = {mq_arena_sprintf(&a, "x-%zu-%d-a", s, round),
                    "Festival early",
                    "festival festival festival",
                    "Quebec",
                    "CA",
                    "V",
                    "en",
                    46.8,
                    -71.2,
                    1,
                    0,
                    "c-food"};
      ev_t late = {mq_arena_sprintf(&a, "x-%zu-%d-b", s, round),
                   "Late",
                   "a festival",
                   "Quebec",
                   "CA",
                   "V",
                   "en",
                   46.8,
                   -71.2,
                   300,
                   0,
                   "c-food"};
      put(&early);
      put(&late);
      round++;
    } while (cursor && round < 50);
    size_t expect = 0;
    for (size_t i = 0; i < N_CORPUS; i++)
      if (s != 0 || strstr(corpus[i].title, "estival") || strstr(corpus[i].desc, "estival")) expect++;
    size_t base = 0;
    for (size_t j = 0; j < nseen; j++) base++;
    if (base != expect) fail_msg("sort %d: %zu corpus events seen, %zu expected", sorts[s], base, expect);
    /* the added events go again */
    mq_error_t err;
    for (int k = 0; k < round; k++)
      for (int side = 0; side < 2; side++) {
        bool removed;
        assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
        assert_int_equal(
            mq_search_remove(ix, mq_arena_sprintf(&a, "x-%zu-%d-%c", s, k, side ? 'b' : 'a'), &removed, &err), MQ_OK);
        assert_true(removed);
        assert_int_equal(mq_search_commit(ix, NULL, 0, 0, &err), MQ_OK);
      }
    mq_arena_release(&a);
  }
}

static void test_sold_remove_offsets(void **state) {
  (void)state;
  mq_error_t err;
  for (int i = 0; i < 2; i++) { /* a redelivered confirmation counts once */
    assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
    assert_int_equal(mq_search_sold(ix, "b-1", "e-scatter", 7, &err), MQ_OK);
    assert_int_equal(mq_search_commit(ix, "marquee.bookings", 2, 41 + i, &err), MQ_OK);
  }
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_result_t r = search(&a, NULL, MQ_SEARCH_SORT_POPULARITY);
  assert_string_equal(r.hits[0].event_id, "e-scatter");
  assert_int_equal(r.hits[0].sold, 7);
  int64_t next;
  assert_int_equal(mq_search_offset(ix, "marquee.bookings", 2, &next, &err), MQ_OK);
  assert_int_equal(next, 42);
  assert_int_equal(mq_search_offset(ix, "marquee.bookings", 1, &next, &err), MQ_OK);
  assert_int_equal(next, -1);
  /* cancelled: back to 0, twice */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
    assert_int_equal(mq_search_sold(ix, "b-1", "e-scatter", 0, &err), MQ_OK);
    assert_int_equal(mq_search_commit(ix, NULL, 0, 0, &err), MQ_OK);
  }
  r = search(&a, "market ", 0);
  assert_int_equal(r.hits[0].sold, 0);
  /* a rolled-back change leaves nothing behind */
  bool removed;
  assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
  assert_int_equal(mq_search_remove(ix, "e-scatter", &removed, &err), MQ_OK);
  assert_true(removed);
  mq_search_rollback(ix);
  r = search(&a, "market ", 0);
  assert_int_equal(r.total, 1);
  mq_arena_release(&a);
}

static void test_correction_suggest_reader(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_search_result_t r = search(&a, "festivl", 0);
  assert_true(r.total > 0);
  assert_string_equal(r.corrected, "festival");
  r = search(&a, "zzzzqqq", 0);
  assert_int_equal(r.total, 0);
  assert_null(r.corrected);
  /* a separate read-only pool on the same file */
  mq_search_index_t *rd;
  mq_error_t err;
  assert_int_equal(mq_search_open_reader(path, 2, &rd, &err), MQ_OK);
  mq_suggestion_t *s;
  size_t n;
  assert_int_equal(mq_search_suggest(rd, "mont", 8, now_ms, &a, &s, &n, &err), MQ_OK);
  assert_true(n >= 1);
  assert_int_equal(s[0].kind, MQ_SUGGEST_CITY);
  assert_string_equal(s[0].text, "Montréal");
  assert_int_equal(s[0].events, 2);
  assert_int_equal(mq_search_suggest(rd, "blue n", 8, now_ms, &a, &s, &n, &err), MQ_OK);
  bool venue = false;
  for (size_t i = 0; i < n; i++) venue |= s[i].kind == MQ_SUGGEST_VENUE && !strcmp(s[i].text, "Blue Note");
  assert_true(venue);
  mq_search_close(rd);
  /* a reader on a file that does not exist yet: UNAVAILABLE, not a crash */
  assert_int_equal(mq_search_open_reader("/tmp/mq-no-such-index.sqlite", 1, &rd, &err), MQ_OK);
  mq_search_query_t q = {.text = "jazz", .sort = MQ_SEARCH_SORT_RELEVANCE, .limit = 5};
  assert_int_equal(mq_search_run(rd, &q, &a, &r, &err), MQ_UNAVAILABLE);
  mq_search_close(rd);
  mq_arena_release(&a);
}

/* The category filter takes the category's whole subtree. */
static void test_category_subtree(void **state) {
  (void)state;
  mq_search_doc_t d = {.event_id = "e-sub",
                       .title = "Bebop late set",
                       .category_id = "c-bebop",
                       .category_root = "c-music",
                       .category_ancestors = "/c-music/c-jazz/c-bebop/",
                       .starts_ms = now_ms + DAY_MS,
                       .ends_ms = now_ms + DAY_MS + 3600000,
                       .online = true};
  mq_error_t err;
  assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
  assert_int_equal(mq_search_put(ix, &d, &err), MQ_OK);
  assert_int_equal(mq_search_commit(ix, NULL, 0, 0, &err), MQ_OK);
  mq_arena_t a;
  mq_arena_init(&a);
  const char *cats[] = {"c-bebop", "c-jazz", "c-music"};
  const int64_t want[] = {1, 1, 7}; /* six music events in the corpus, and this one */
  for (int i = 0; i < 3; i++) {
    mq_search_query_t q = {.category_id = cats[i], .sort = MQ_SEARCH_SORT_DATE, .limit = 20};
    mq_search_result_t r;
    assert_int_equal(mq_search_run(ix, &q, &a, &r, &err), MQ_OK);
    if (r.total != want[i]) fail_msg("%s: %lld events, want %lld", cats[i], (long long)r.total, (long long)want[i]);
  }
  const char **ids;
  size_t n;
  assert_int_equal(mq_search_events_of(ix, "category_ancestors", "c-jazz", &a, &ids, &n, &err), MQ_OK);
  assert_int_equal(n, 1);
  assert_string_equal(ids[0], "e-sub");
  bool removed;
  assert_int_equal(mq_search_begin(ix, &err), MQ_OK);
  assert_int_equal(mq_search_remove(ix, "e-sub", &removed, &err), MQ_OK);
  assert_int_equal(mq_search_commit(ix, NULL, 0, 0, &err), MQ_OK);
  assert_int_equal(mq_search_events_of(ix, "category_ancestors", "c-jazz", &a, &ids, &n, &err), MQ_OK);
  assert_int_equal(n, 0);
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compile),
      cmocka_unit_test(test_helpers),
      cmocka_unit_test(test_relevance),
      cmocka_unit_test(test_folding_prefix_scripts),
      cmocka_unit_test(test_syntax_is_plain),
      cmocka_unit_test(test_geo),
      cmocka_unit_test(test_facets_filters),
      cmocka_unit_test(test_pages_stable),
      cmocka_unit_test(test_sold_remove_offsets),
      cmocka_unit_test(test_correction_suggest_reader),
      cmocka_unit_test(test_category_subtree),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
