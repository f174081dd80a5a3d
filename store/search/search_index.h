/*
 * search_index.h — the search index: one SQLite file per host holding the
 * published, public, not yet ended events in a shape full-text search
 * needs (docs/SEARCH.md). marquee-indexer (consumers/indexer) is its one
 * writer; marquee-server's SearchService (handlers/search) reads it.
 *
 * Tables (the file is the schema's only owner):
 *   events      one row per indexed event: the fields filters, sorts, facets
 *               and hits need; `sold` is the sum of `sold` below
 *   events_fts  FTS5, unicode61 with diacritics removed and combining marks
 *               kept as letters (Devanagari vowel signs, …): title, tags,
 *               category names in every locale, venue, city, organization,
 *               description (Markdown as written)
 *   events_tri  FTS5 trigram over title, venue and city: substrings in
 *               scripts written without spaces (Japanese, Chinese, Thai)
 *   events_geo  R*Tree of in-person events' coordinates
 *   event_categories  (category, event) for the event's category and each
 *               ancestor: the subtree filter is an index lookup
 *   vocab       the words of the index with their document counts, copied
 *               by the indexer when idle (mq_search_refresh_vocab): what a
 *               typo is corrected to
 *   sold        one row per confirmed booking (booking id → event, tickets):
 *               a redelivered confirmation or cancellation changes nothing
 *   offsets     the next Kafka offset per (topic, partition), written in the
 *               same transaction as what those messages changed
 *   meta        schema version, fresh_ms (see mq_search_mark_fresh)
 *
 * Invariants:
 *   1. Every change the indexer makes for a message, and that message's
 *      next offset, commit in one transaction: after a crash the indexer
 *      resumes exactly after the last message whose effect is in the file
 *      (nothing lost, nothing applied twice).
 *   2. events, events_fts, events_tri and events_geo agree row for row
 *      (same rowid): a put replaces all four, a remove deletes all four.
 *   3. Nothing a user typed reaches SQL as syntax: every value is bound, and
 *      every query word is quoted as an FTS5 string (mq_search_compile).
 *   4. Relevance scores depend only on the query and the document (no
 *      corpus statistics): the same event scores the same on every host and
 *      while other events are indexed, so keyset pages neither repeat nor
 *      skip an unchanged event.
 *
 * Readers open the file read-only (WAL: they never block the writer nor
 * each other) from a small pool; a generation replaced by a rebuild is
 * noticed within a second and reopened. Ownership: results live in the arena given.
 */
#ifndef SEARCH_INDEX_H
#define SEARCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"

#define MQ_SEARCH_QUERY_MAX 500 /* bytes of a text query */
#define MQ_SEARCH_WORDS_MAX 16  /* words of a query used (later ones ignored) */
#define MQ_SEARCH_RADIUS_MAX_KM 500.0

typedef struct mq_search_index mq_search_index_t;

/* One event as indexed. Strings may be NULL (stored as ""). */
typedef struct mq_search_doc {
  const char *event_id, *organization_id, *organization_name, *title, *description;
  const char *category_id;        /* the leaf */
  const char *category_root;      /* the top-level ancestor (itself for a root) */
  const char *category_ancestors; /* "/<root id>/…/<leaf id>/" */
  const char *category_path;      /* slugs: "music/jazz" */
  const char *category_names;     /* every name of every category on the path, any locale */
  const char *venue_id, *venue_name, *city, *country, *language, *currency, *time_zone, *series_id, *cover_image_id;
  const char *const *tags;
  size_t n_tags;
  bool online, has_geo;
  double latitude, longitude;
  int64_t starts_ms, ends_ms, published_ms, version;
  int64_t min_price_minor, max_price_minor; /* visible ticket types */
  bool free;                                /* every visible ticket type costs 0 */
} mq_search_doc_t;

/* ---- writer (the indexer) ----------------------------------------------------- */

/* Files: `path` is a symbolic link to the current generation, a file
 * "<path>.g<unix ms>" beside it (each generation has its own -wal and -shm,
 * so a swap never pairs a file with another's WAL). A plain file at `path`
 * is used as it is (tests, tools).
 *
 * Opens the index at `path` for writing, creating its first generation and
 * the link if there is none. One writer at a time: a second one waits for
 * the first's transaction (busy timeout 5 s). */
mq_code_t mq_search_open_writer(const char *path, mq_search_index_t **out, mq_error_t *err);
/* Opens a new, empty generation beside `path` without linking it: a rebuild
 * fills it, then mq_search_publish makes it current. */
mq_code_t mq_search_open_rebuild(const char *path, mq_search_index_t **out, mq_error_t *err);
/* A rebuild's generation becomes current (the link is replaced atomically;
 * readers move to it within a second) and the previous one is deleted
 * (readers still reading it keep their open files). No-op otherwise. */
mq_code_t mq_search_publish(mq_search_index_t *ix, mq_error_t *err);
/* One transaction per message: begin, put/remove/sold…, commit with the
 * message's next offset (topic may be NULL: no offset recorded). */
mq_code_t mq_search_begin(mq_search_index_t *ix, mq_error_t *err);
mq_code_t mq_search_commit(mq_search_index_t *ix, const char *topic, int32_t partition, int64_t next_offset,
                           mq_error_t *err);
void mq_search_rollback(mq_search_index_t *ix);
/* Inserts or replaces the event (by event_id). */
mq_code_t mq_search_put(mq_search_index_t *ix, const mq_search_doc_t *d, mq_error_t *err);
/* Removes the event if indexed; *removed says whether it was. */
mq_code_t mq_search_remove(mq_search_index_t *ix, const char *event_id, bool *removed, mq_error_t *err);
/* A booking confirmed (tickets > 0) or cancelled (tickets = 0): the event's
 * tickets sold is the sum over its confirmed bookings, so a redelivery
 * changes nothing. */
mq_code_t mq_search_sold(mq_search_index_t *ix, const char *booking_id, const char *event_id, int64_t tickets,
                         mq_error_t *err);
/* A category's display name (English) for facet labels. */
mq_code_t mq_search_put_category(mq_search_index_t *ix, const char *id, const char *name, mq_error_t *err);
/* The indexed events whose `column` ("venue_id", "organization_id",
 * "category_ancestors" — matched as a "/<id>/" segment) names `id`: what a
 * venue, organization or category change must re-read. */
mq_code_t mq_search_events_of(mq_search_index_t *ix, const char *column, const char *id, mq_arena_t *a,
                              const char ***ids, size_t *n, mq_error_t *err);
/* The next offset recorded for (topic, partition), or -1 when none is. */
mq_code_t mq_search_offset(mq_search_index_t *ix, const char *topic, int32_t partition, int64_t *next, mq_error_t *err);
/* The indexer had handled every message on its partitions at `ms`: readers
 * report it as the index's freshness (outside any transaction). */
mq_code_t mq_search_mark_fresh(mq_search_index_t *ix, int64_t ms, mq_error_t *err);
/* Copies the index's vocabulary (words of four letters or more, with their
 * document counts) into the table corrections read, if events changed since
 * the last copy and at least every_ms passed (0: now). A scan of the whole
 * full-text index: the indexer runs it when idle, so a new word becomes a
 * correction target within that period. Outside any transaction. */
mq_code_t mq_search_refresh_vocab(mq_search_index_t *ix, int64_t now_ms, int64_t every_ms, mq_error_t *err);
/* Events indexed now. */
mq_code_t mq_search_count(mq_search_index_t *ix, int64_t *n, mq_error_t *err);

/* ---- readers (SearchService) ------------------------------------------------- */

/* A pool of up to `conns` read-only connections to `path`. The file need not
 * exist yet: queries answer UNAVAILABLE until it does. */
mq_code_t mq_search_open_reader(const char *path, unsigned conns, mq_search_index_t **out, mq_error_t *err);
void mq_search_close(mq_search_index_t *ix);

enum { MQ_SEARCH_SORT_RELEVANCE = 1, MQ_SEARCH_SORT_DATE, MQ_SEARCH_SORT_DISTANCE, MQ_SEARCH_SORT_POPULARITY };

typedef struct mq_search_query {
  const char *text; /* may be NULL or "" */
  const char *category_id, *city, *country, *language, *currency, *organization_id;
  int64_t now_ms;           /* events that end after it are shown (0: the clock now) */
  int64_t starts_after_ms;  /* events that start at or after it (0: no bound) */
  int64_t starts_before_ms; /* events that start before it (0: no bound) */
  int64_t min_price_minor, max_price_minor;
  bool free_only;
  int attendance; /* 0 any, 1 in person, 2 online */
  bool has_near;
  double latitude, longitude, within_km;
  int sort;           /* MQ_SEARCH_SORT_* (never 0: the caller resolves the default) */
  uint32_t limit;     /* page size */
  const char *cursor; /* from the previous page's next_cursor, or NULL */
  bool facets;
  int64_t month_bounds[14]; /* facet "month": starts of 13 local months + end, ascending */
  const char *month_labels[13];
} mq_search_query_t;

typedef struct mq_search_hit {
  const char *event_id, *title, *title_html, *snippet_html, *organization_id, *organization_name, *category_id,
      *category_path, *venue_name, *city, *country, *time_zone, *language, *currency, *series_id, *cover_image_id,
      *tags;
  bool online, free;
  int64_t starts_ms, ends_ms, min_price_minor, max_price_minor, sold;
  double score, distance_km;
} mq_search_hit_t;

typedef struct mq_search_bucket {
  const char *value, *label;
  int64_t count;
} mq_search_bucket_t;

typedef struct mq_search_facet {
  const char *name;
  mq_search_bucket_t *buckets;
  size_t n;
} mq_search_facet_t;

typedef struct mq_search_result {
  mq_search_hit_t *hits;
  size_t n;
  const char *next_cursor; /* NULL on the last page */
  int64_t total;
  mq_search_facet_t facets[4];
  size_t n_facets;
  const char *corrected; /* the corrected query, when the typed one matched nothing */
  int64_t fresh_ms;      /* 0: the indexer has not caught up once yet */
} mq_search_result_t;

/* Runs a query. UNAVAILABLE when the index does not exist yet;
 * INVALID_ARGUMENT (field "page_token") for a cursor this code did not make;
 * INVALID_ARGUMENT (field "query") when the text has nothing searchable and
 * no filter narrows the request. */
mq_code_t mq_search_run(mq_search_index_t *ix, const mq_search_query_t *q, mq_arena_t *a, mq_search_result_t *out,
                        mq_error_t *err);

enum { MQ_SUGGEST_EVENT = 1, MQ_SUGGEST_VENUE, MQ_SUGGEST_CITY };
typedef struct mq_suggestion {
  const char *text, *event_id;
  int kind;
  int64_t events;
} mq_suggestion_t;

mq_code_t mq_search_suggest(mq_search_index_t *ix, const char *prefix, uint32_t limit, int64_t now_ms, mq_arena_t *a,
                            mq_suggestion_t **out, size_t *n, mq_error_t *err);

/* The index's freshness as readers see it (0: never caught up, or no file). */
int64_t mq_search_fresh_ms(mq_search_index_t *ix);

/* ---- pure helpers (unit-tested) ------------------------------------------------ */

/* One word or phrase of a text query. */
typedef struct mq_search_term {
  const char *text;                        /* as typed, without quotes or the leading '-' */
  bool phrase, negated, prefix, spaceless; /* spaceless: a script without spaces (trigram) */
} mq_search_term_t;

/* Splits a query into terms: whitespace separates words, "…" makes a
 * phrase (an unbalanced quote runs to the end), a leading '-' negates a
 * word, the last plain word is a prefix. Words with no letter or digit are
 * dropped; at most MQ_SEARCH_WORDS_MAX terms are kept. */
size_t mq_search_compile(const char *text, mq_arena_t *a, mq_search_term_t *terms, size_t max);
/* An FTS5 string literal for `s`: "…" with inner quotes doubled. */
char *mq_search_quote(mq_arena_t *a, const char *s);
/* Great-circle distance in km (haversine, mean Earth radius 6371.0088 km). */
double mq_search_distance_km(double lat1, double lng1, double lat2, double lng2);
/* Restricted Damerau-Levenshtein distance of two UTF-8 strings counted in
 * code points, stopping early past `max` (then returns max + 1). */
int mq_search_edits(const char *a, const char *b, int max);
/* HTML-escapes `s` and turns the markers \x01 and \x02 into <mark>, </mark>. */
char *mq_search_html(mq_arena_t *a, const char *s);

#endif
