/*
 * search_index.c — the search index on SQLite FTS5 (search_index.h says
 * what it holds and its invariants; docs/SEARCH.md why it is shaped so).
 *
 * A query is one pass over its match set on one read transaction (WAL: one
 * snapshot): SQLite yields every event passing the filters (and the words,
 * when there are some) with its sort keys; C counts them, tallies the facets
 * and keeps the page after the cursor in a small heap — so the page, the
 * total and every facet count agree even while the indexer writes, and no
 * row is read twice. The page's fields and highlights are then read by
 * rowid.
 * Scores come from mq_rank, an FTS5 auxiliary function of ours: weighted,
 * saturated term frequency per column with a length norm against fixed
 * column sizes, a bonus when the words appear as a phrase and when they are
 * the whole title. No corpus statistics enter it (invariant 4).
 *
 * FTS5's extension API (the auxiliary function, the tokenizer used for
 * folding) is declared in sqlite3.h.
 */
#include "store/search/search_index.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "lib/mq_validate.h"

static uint32_t utf8_next(const unsigned char **p);

/* ---- schema ------------------------------------------------------------------------ */

#define SCHEMA_VERSION "1"
#define MQ_PI 3.14159265358979323846
#define TOKENIZER_ARGS "remove_diacritics", "2", "categories", "L* N* Co M*"
enum { COL_TITLE, COL_TAGS, COL_CATEGORY, COL_VENUE, COL_CITY, COL_ORG, COL_DESC, N_COLS };

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);"
    "CREATE TABLE IF NOT EXISTS events(rid INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, version INTEGER,"
    " organization_id TEXT, organization_name TEXT, title TEXT, category_id TEXT, category_root TEXT,"
    " category_ancestors TEXT, category_path TEXT, venue_id TEXT, venue_name TEXT, city TEXT, city_key TEXT,"
    " country TEXT, lat REAL, lng REAL, online INTEGER, lang TEXT, language TEXT, currency TEXT, min_price INTEGER,"
    " max_price INTEGER, price_major REAL, free INTEGER, starts_ms INTEGER, ends_ms INTEGER, time_zone TEXT,"
    " published_ms INTEGER, sold INTEGER NOT NULL DEFAULT 0, series_id TEXT, cover_image_id TEXT, tags TEXT);"
    "CREATE INDEX IF NOT EXISTS events_starts ON events(starts_ms, event_id);"
    "CREATE INDEX IF NOT EXISTS events_venue ON events(venue_id);"
    "CREATE INDEX IF NOT EXISTS events_org ON events(organization_id);"
    "CREATE INDEX IF NOT EXISTS events_city ON events(city_key);"
    "CREATE INDEX IF NOT EXISTS events_country ON events(country);"
    "CREATE TABLE IF NOT EXISTS event_categories(category_id TEXT NOT NULL, rid INTEGER NOT NULL,"
    " PRIMARY KEY(category_id, rid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS event_categories_rid ON event_categories(rid);"
    "CREATE TABLE IF NOT EXISTS vocab(term TEXT PRIMARY KEY, docs INTEGER, c1 TEXT, c2 TEXT, len INTEGER);"
    "CREATE INDEX IF NOT EXISTS vocab_c1 ON vocab(c1, len);"
    "CREATE INDEX IF NOT EXISTS vocab_c2 ON vocab(c2, len);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(title, tags, category, venue, city, organization,"
    " description, tokenize = \"unicode61 remove_diacritics 2 categories 'L* N* Co M*'\", prefix = '2 3');"
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_tri USING fts5(text, tokenize = 'trigram');"
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_geo USING rtree(id, min_lat, max_lat, min_lng, max_lng);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_vocab USING fts5vocab(events_fts, 'row');"
    "CREATE TABLE IF NOT EXISTS sold(booking_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, qty INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS sold_event ON sold(event_id);"
    "CREATE TABLE IF NOT EXISTS categories(id TEXT PRIMARY KEY, name TEXT);"
    "CREATE TABLE IF NOT EXISTS offsets(topic TEXT, part INTEGER, next INTEGER, PRIMARY KEY(topic, part));"
    "INSERT OR IGNORE INTO meta VALUES('schema', '" SCHEMA_VERSION "');";

/* ---- connections ------------------------------------------------------------------- */

typedef struct conn {
  sqlite3 *db;
  fts5_api *fts;
  Fts5Tokenizer *tok;
  fts5_tokenizer tok_api;
  unsigned gen; /* the file generation it was opened on */
  struct conn *next;
} conn_t;

struct mq_search_index {
  char *path;    /* as configured: a symbolic link to the current generation */
  char *current; /* the generation file open now (readers: resolved each second) */
  char *link;    /* a rebuild's: the link mq_search_publish points at it */
  bool writer;
  conn_t *w;        /* the writer's connection */
  bool vocab_dirty; /* events changed since the vocabulary was last copied */
  int64_t vocab_ms; /* when it was */
  /* readers: a free list, up to max connections */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  conn_t *free_list;
  unsigned open, max, gen;
  int64_t checked_ms;
};

static mq_code_t sql_err(mq_error_t *err, sqlite3 *db, const char *what) {
  int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
  mq_code_t c = (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_CANTOPEN || code == SQLITE_IOERR)
                    ? MQ_UNAVAILABLE
                    : MQ_INTERNAL;
  return mq_error_set(err, c, NULL, "search index: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static void dist_fn(sqlite3_context *ctx, int nv, sqlite3_value **v) {
  (void)nv;
  if (sqlite3_value_type(v[0]) == SQLITE_NULL || sqlite3_value_type(v[1]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  sqlite3_result_double(ctx, mq_search_distance_km(sqlite3_value_double(v[0]), sqlite3_value_double(v[1]),
                                                   sqlite3_value_double(v[2]), sqlite3_value_double(v[3])));
}

static void edits_fn(sqlite3_context *ctx, int nv, sqlite3_value **v) {
  (void)nv;
  const char *a = (const char *)sqlite3_value_text(v[0]), *b = (const char *)sqlite3_value_text(v[1]);
  sqlite3_result_int(ctx, mq_search_edits(a ? a : "", b ? b : "", sqlite3_value_int(v[2])));
}

/* mq_rank(events_fts, n_words): see the file head. Phrases 0..n_words-1 are
 * the query's words and phrases; phrase n_words, when present, is all of
 * them as one phrase. */
static void rank_fn(const Fts5ExtensionApi *api, Fts5Context *fc, sqlite3_context *ctx, int nv, sqlite3_value **v) {
  static const double weight[N_COLS] = {10, 6, 4, 4, 4, 3, 1};
  static const double typical[N_COLS] = {6, 3, 4, 3, 2, 3, 120};
  enum { MAXP = MQ_SEARCH_WORDS_MAX + 1 };
  int nph = api->xPhraseCount(fc);
  int nwords = nv > 0 ? sqlite3_value_int(v[0]) : nph;
  if (nwords > nph) nwords = nph;
  if (nwords > MAXP - 1) nwords = MAXP - 1;
  double tf[MAXP][N_COLS];
  memset(tf, 0, sizeof tf);
  int ninst = 0;
  if (api->xInstCount(fc, &ninst) != SQLITE_OK) {
    sqlite3_result_error(ctx, "mq_rank: xInstCount", -1);
    return;
  }
  for (int i = 0; i < ninst; i++) {
    int p, c, off;
    if (api->xInst(fc, i, &p, &c, &off) != SQLITE_OK) continue;
    if (p >= 0 && p < MAXP && c >= 0 && c < N_COLS) tf[p][c] += 1;
  }
  int len[N_COLS];
  for (int c = 0; c < N_COLS; c++) { /* sizes only of the columns a word hit (each is a lookup) */
    bool hit = false;
    for (int p = 0; p < nwords && !hit; p++) hit = tf[p][c] > 0;
    if (!hit || api->xColumnSize(fc, c, &len[c]) != SQLITE_OK) len[c] = c == COL_TITLE ? -1 : 0;
  }
  double score = 0;
  int qtokens = 0;
  bool all_in_title = nwords > 0;
  for (int p = 0; p < nwords; p++) {
    qtokens += api->xPhraseSize(fc, p);
    if (tf[p][COL_TITLE] == 0) all_in_title = false;
    for (int c = 0; c < N_COLS; c++) {
      if (tf[p][c] == 0) continue;
      double norm = 0.5 + 0.5 * (double)len[c] / typical[c];
      score += weight[c] * tf[p][c] * 2.2 / (tf[p][c] + 1.2 * norm);
    }
  }
  if (nph > nwords)
    for (int c = 0; c < N_COLS; c++)
      if (tf[nwords][c] > 0) score += 2 * weight[c];
  if (all_in_title && len[COL_TITLE] == qtokens) score += 10; /* (len -1 when no word hit the title) */
  sqlite3_result_double(ctx, round(score * 1e6) / 1e6);
}

static fts5_api *fts5_of(sqlite3 *db) {
  fts5_api *api = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
  sqlite3_step(st);
  sqlite3_finalize(st);
  return api;
}

static void conn_free(conn_t *c) {
  if (!c) return;
  if (c->tok) c->tok_api.xDelete(c->tok);
  sqlite3_close(c->db);
  free(c);
}

static mq_code_t conn_open(const char *path, bool writer, conn_t **out, mq_error_t *err) {
  conn_t *c = mq_xcalloc(1, sizeof *c);
  int flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  flags |= SQLITE_OPEN_NOMUTEX; /* one thread at a time per connection (the pool) */
  mq_code_t rc = MQ_OK;
  if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
    rc = sql_err(err, c->db, "open");
    goto fail;
  }
  sqlite3_busy_timeout(c->db, 5000);
  const char *pragmas = writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                               : "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=1073741824; PRAGMA cache_size=-16384;";
  if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
    rc = sql_err(err, c->db, "pragmas");
    goto fail;
  }
  if (writer && sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
    rc = sql_err(err, c->db, "schema");
    goto fail;
  }
  sqlite3_create_function(c->db, "mq_dist_km", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, dist_fn, NULL, NULL);
  sqlite3_create_function(c->db, "mq_edits", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, edits_fn, NULL, NULL);
  c->fts = fts5_of(c->db);
  void *ud = NULL;
  const char *args[] = {TOKENIZER_ARGS};
  if (!c->fts || c->fts->xCreateFunction(c->fts, "mq_rank", NULL, rank_fn, NULL) != SQLITE_OK ||
      c->fts->xFindTokenizer(c->fts, "unicode61", &ud, &c->tok_api) != SQLITE_OK ||
      c->tok_api.xCreate(ud, args, (int)(sizeof args / sizeof *args), &c->tok) != SQLITE_OK) {
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "search index: this SQLite has no FTS5");
    goto fail;
  }
  *out = c;
  return MQ_OK;
fail:
  conn_free(c);
  return rc;
}

/* ---- folding: the index's own tokenizer, so a filter value folds exactly
 * as indexed text does ("Montréal" → "montreal") --------------------------------- */

typedef struct {
  char *buf;
  size_t len, cap;
} sbuf_t;

static void sb_putn(sbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2 + 64;
    b->buf = mq_xrealloc(b->buf, b->cap);
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = 0;
}
static void sb_puts(sbuf_t *b, const char *s) {
  sb_putn(b, s, strlen(s));
}
static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int fold_token(void *ctx, int tflags, const char *tok, int n, int s, int e) {
  (void)tflags, (void)s, (void)e;
  sbuf_t *b = ctx;
  if (b->len) sb_putn(b, " ", 1);
  sb_putn(b, tok, (size_t)n);
  return SQLITE_OK;
}

/* The tokens of `s` as the index sees them, space-separated (arena). */
static char *fold(conn_t *c, mq_arena_t *a, const char *s) {
  sbuf_t b = {0};
  if (s && *s) c->tok_api.xTokenize(c->tok, &b, FTS5_TOKENIZE_DOCUMENT, s, (int)strlen(s), fold_token);
  char *r = mq_arena_strdup(a, b.buf ? b.buf : "");
  free(b.buf);
  return r;
}

static void lang_primary(const char *lang, char out[16]) {
  size_t i = 0;
  for (; lang && lang[i] && lang[i] != '-' && lang[i] != '_' && i < 15; i++)
    out[i] = (char)((lang[i] >= 'A' && lang[i] <= 'Z') ? lang[i] + 32 : lang[i]);
  out[i] = 0;
}

/* ---- writer ------------------------------------------------------------------------ */

/* "<path>.g<ms>": a new generation's file beside the link. */
static char *new_generation(const char *path) {
  size_t n = strlen(path) + 32;
  char *g = mq_xmalloc(n);
  snprintf(g, n, "%s.g%lld", path, (long long)mq_now_unix_ms());
  return g;
}

/* Points the link `path` at `target` atomically (a new link renamed over). */
static mq_code_t relink(const char *path, const char *target, mq_error_t *err) {
  const char *base = strrchr(target, '/');
  base = base ? base + 1 : target;
  size_t n = strlen(path) + 8;
  char *tmp = mq_xmalloc(n);
  snprintf(tmp, n, "%s.link", path);
  unlink(tmp);
  mq_code_t rc = MQ_OK;
  if (symlink(base, tmp) != 0 || rename(tmp, path) != 0)
    rc = mq_error_set(err, MQ_INTERNAL, NULL, "search index: cannot link %s: %s", path, strerror(errno));
  free(tmp);
  return rc;
}

static void unlink_generation(const char *file) {
  char side[PATH_MAX + 8];
  unlink(file);
  snprintf(side, sizeof side, "%s-wal", file);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", file);
  unlink(side);
}

static mq_code_t open_writer_at(const char *path, const char *file, const char *link, mq_search_index_t **out,
                                mq_error_t *err) {
  mq_search_index_t *ix = mq_xcalloc(1, sizeof *ix);
  ix->path = mq_xstrdup(path);
  ix->current = mq_xstrdup(file);
  ix->link = link ? mq_xstrdup(link) : NULL;
  ix->writer = true;
  pthread_mutex_init(&ix->mu, NULL);
  pthread_cond_init(&ix->cv, NULL);
  mq_code_t rc = conn_open(file, true, &ix->w, err);
  if (rc != MQ_OK) {
    mq_search_close(ix);
    return rc;
  }
  *out = ix;
  return MQ_OK;
}

mq_code_t mq_search_open_writer(const char *path, mq_search_index_t **out, mq_error_t *err) {
  struct stat sb;
  if (lstat(path, &sb) == 0 && !S_ISLNK(sb.st_mode)) /* a plain file: used as it is (tests, tools) */
    return open_writer_at(path, path, NULL, out, err);
  char real[PATH_MAX];
  if (realpath(path, real)) return open_writer_at(path, real, NULL, out, err);
  /* no index yet: its first generation, then the link */
  char *g = new_generation(path);
  mq_code_t rc = open_writer_at(path, g, NULL, out, err);
  if (rc == MQ_OK && (rc = relink(path, g, err)) != MQ_OK) {
    mq_search_close(*out);
    *out = NULL;
  }
  free(g);
  return rc;
}

mq_code_t mq_search_open_rebuild(const char *path, mq_search_index_t **out, mq_error_t *err) {
  char *g = new_generation(path);
  unlink_generation(g);
  mq_code_t rc = open_writer_at(path, g, path, out, err);
  free(g);
  return rc;
}

mq_code_t mq_search_publish(mq_search_index_t *ix, mq_error_t *err) {
  if (!ix->link) return MQ_OK;
  char old[PATH_MAX];
  bool had = realpath(ix->link, old) != NULL;
  /* fold the WAL into the file first: readers open it fresh */
  sqlite3_exec(ix->w->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  mq_code_t rc = relink(ix->link, ix->current, err);
  if (rc != MQ_OK) return rc;
  if (had && strcmp(old, ix->current)) unlink_generation(old); /* readers still on it keep their open files */
  free(ix->link);
  ix->link = NULL;
  return MQ_OK;
}

static mq_code_t exec(mq_search_index_t *ix, const char *sql, mq_error_t *err) {
  if (sqlite3_exec(ix->w->db, sql, NULL, NULL, NULL) != SQLITE_OK) return sql_err(err, ix->w->db, sql);
  return MQ_OK;
}

mq_code_t mq_search_begin(mq_search_index_t *ix, mq_error_t *err) {
  return exec(ix, "BEGIN IMMEDIATE", err);
}

void mq_search_rollback(mq_search_index_t *ix) {
  if (sqlite3_get_autocommit(ix->w->db) == 0) sqlite3_exec(ix->w->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Prepares `sql`, binds the variadic values by the letters of `types`
 * ('s' text, 'i' int64, 'd' double, 'n' null), and returns the statement. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, const char *types, ...) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
  va_list ap;
  va_start(ap, types);
  for (int i = 0; types[i]; i++) {
    switch (types[i]) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        sqlite3_bind_text(st, i + 1, s ? s : "", -1, SQLITE_TRANSIENT);
        break;
      }
      case 'i':
        sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        break;
      case 'd':
        sqlite3_bind_double(st, i + 1, va_arg(ap, double));
        break;
      default:
        sqlite3_bind_null(st, i + 1);
    }
  }
  va_end(ap);
  return st;
}

/* Runs a statement that returns no row. */
static mq_code_t run(sqlite3 *db, sqlite3_stmt *st, const char *what, mq_error_t *err) {
  if (!st) return sql_err(err, db, what);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  if (r != SQLITE_DONE && r != SQLITE_ROW) return sql_err(err, db, what);
  return MQ_OK;
}

static mq_code_t rid_of(sqlite3 *db, const char *event_id, int64_t *rid, mq_error_t *err) {
  sqlite3_stmt *st = prep(db, "SELECT rid FROM events WHERE event_id = ?", "s", event_id);
  if (!st) return sql_err(err, db, "rid");
  int r = sqlite3_step(st);
  *rid = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (r != SQLITE_ROW && r != SQLITE_DONE) return sql_err(err, db, "rid");
  return MQ_OK;
}

static mq_code_t drop_side(sqlite3 *db, int64_t rid, mq_error_t *err) {
  mq_code_t rc;
  if ((rc = run(db, prep(db, "DELETE FROM events_fts WHERE rowid = ?", "i", rid), "fts delete", err)) ||
      (rc = run(db, prep(db, "DELETE FROM events_tri WHERE rowid = ?", "i", rid), "tri delete", err)) ||
      (rc = run(db, prep(db, "DELETE FROM events_geo WHERE id = ?", "i", rid), "geo delete", err)) ||
      (rc = run(db, prep(db, "DELETE FROM event_categories WHERE rid = ?", "i", rid), "categories delete", err)))
    return rc;
  return MQ_OK;
}

mq_code_t mq_search_put(mq_search_index_t *ix, const mq_search_doc_t *d, mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  mq_arena_t a;
  mq_arena_init(&a);
  int64_t rid = 0;
  mq_code_t rc = rid_of(db, d->event_id, &rid, err);
  if (rc == MQ_OK && rid) rc = drop_side(db, rid, err);
  sbuf_t tags = {0};
  for (size_t i = 0; i < d->n_tags; i++) {
    if (i) sb_puts(&tags, " ");
    sb_puts(&tags, d->tags[i]);
  }
  char lang[16];
  lang_primary(d->language, lang);
  int minor = d->currency ? mq_currency_minor_units(d->currency) : 2;
  double major = (double)d->min_price_minor / pow(10, minor < 0 ? 2 : minor);
  const char *city = d->online ? "" : d->city;
  if (rc == MQ_OK) {
    const char *sql =
        rid ? "UPDATE events SET version=?2, organization_id=?3, organization_name=?4, title=?5, category_id=?6,"
              " category_root=?7, category_ancestors=?8, category_path=?9, venue_id=?10, venue_name=?11, city=?12,"
              " city_key=?13, country=?14, lat=?15, lng=?16, online=?17, lang=?18, language=?19, currency=?20,"
              " min_price=?21, max_price=?22, price_major=?23, free=?24, starts_ms=?25, ends_ms=?26, time_zone=?27,"
              " published_ms=?28, series_id=?29, cover_image_id=?30, tags=?31,"
              " sold=coalesce((SELECT sum(qty) FROM sold WHERE event_id=?1), 0) WHERE event_id=?1"
            : "INSERT INTO events(event_id, version, organization_id, organization_name, title, category_id,"
              " category_root, category_ancestors, category_path, venue_id, venue_name, city, city_key, country, lat,"
              " lng, online, lang, language, currency, min_price, max_price, price_major, free, starts_ms, ends_ms,"
              " time_zone, published_ms, series_id, cover_image_id, tags, sold) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,"
              "?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,"
              " coalesce((SELECT sum(qty) FROM sold WHERE event_id=?1), 0))";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
      const char *text[] = {[1] = d->event_id,
                            [3] = d->organization_id,
                            [4] = d->organization_name,
                            [5] = d->title,
                            [6] = d->category_id,
                            [7] = d->category_root,
                            [8] = d->category_ancestors,
                            [9] = d->category_path,
                            [10] = d->venue_id,
                            [11] = d->venue_name,
                            [12] = city,
                            [13] = fold(ix->w, &a, city),
                            [14] = d->country,
                            [18] = lang,
                            [19] = d->language,
                            [20] = d->currency,
                            [27] = d->time_zone,
                            [29] = d->series_id,
                            [30] = d->cover_image_id,
                            [31] = tags.buf};
      static const int text_slots[] = {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 27, 29, 30, 31};
      for (size_t k = 0; k < sizeof text_slots / sizeof *text_slots; k++) /* NULL strings are stored as "" */
        sqlite3_bind_text(st, text_slots[k], text[text_slots[k]] ? text[text_slots[k]] : "", -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, d->version);
      if (d->has_geo && !d->online) {
        sqlite3_bind_double(st, 15, d->latitude);
        sqlite3_bind_double(st, 16, d->longitude);
      }
      sqlite3_bind_int(st, 17, d->online ? 1 : 0);
      sqlite3_bind_int64(st, 21, d->min_price_minor);
      sqlite3_bind_int64(st, 22, d->max_price_minor);
      sqlite3_bind_double(st, 23, major);
      sqlite3_bind_int(st, 24, d->free ? 1 : 0);
      sqlite3_bind_int64(st, 25, d->starts_ms);
      sqlite3_bind_int64(st, 26, d->ends_ms);
      sqlite3_bind_int64(st, 28, d->published_ms);
    }
    rc = run(db, st, "put", err);
  }
  if (rc == MQ_OK && !rid) rid = sqlite3_last_insert_rowid(db);
  if (rc == MQ_OK)
    rc = run(db,
             prep(db,
                  "INSERT INTO events_fts(rowid, title, tags, category, venue, city, organization, description)"
                  " VALUES(?,?,?,?,?,?,?,?)",
                  "isssssss", rid, d->title, tags.buf ? tags.buf : "", d->category_names, d->venue_name, city,
                  d->organization_name, d->description),
             "fts insert", err);
  if (rc == MQ_OK) {
    char *tri = mq_arena_sprintf(&a, "%s\n%s\n%s", d->title ? d->title : "", d->venue_name ? d->venue_name : "",
                                 city ? city : "");
    rc = run(db, prep(db, "INSERT INTO events_tri(rowid, text) VALUES(?,?)", "is", rid, tri), "tri insert", err);
  }
  /* the category and its ancestors ("/a/b/c/"), for the subtree filter */
  for (const char *p = d->category_ancestors; rc == MQ_OK && p && *p;) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len)
      rc = run(db,
               prep(db, "INSERT OR IGNORE INTO event_categories VALUES(?, ?)", "si", mq_arena_strndup(&a, p, len), rid),
               "categories insert", err);
    p += len;
  }
  if (rc == MQ_OK) ix->vocab_dirty = true;
  if (rc == MQ_OK && d->has_geo && !d->online)
    rc = run(db,
             prep(db, "INSERT INTO events_geo VALUES(?,?,?,?,?)", "idddd", rid, d->latitude, d->latitude, d->longitude,
                  d->longitude),
             "geo insert", err);
  free(tags.buf);
  mq_arena_release(&a);
  return rc;
}

mq_code_t mq_search_remove(mq_search_index_t *ix, const char *event_id, bool *removed, mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  int64_t rid = 0;
  mq_code_t rc = rid_of(db, event_id, &rid, err);
  if (removed) *removed = rc == MQ_OK && rid;
  if (rc != MQ_OK || !rid) return rc;
  if ((rc = drop_side(db, rid, err)) != MQ_OK) return rc;
  ix->vocab_dirty = true;
  return run(db, prep(db, "DELETE FROM events WHERE rid = ?", "i", rid), "remove", err);
}

mq_code_t mq_search_sold(mq_search_index_t *ix, const char *booking_id, const char *event_id, int64_t tickets,
                         mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  mq_code_t rc =
      tickets > 0 ? run(db, prep(db, "INSERT OR IGNORE INTO sold VALUES(?,?,?)", "ssi", booking_id, event_id, tickets),
                        "sold", err)
                  : run(db, prep(db, "DELETE FROM sold WHERE booking_id = ?", "s", booking_id), "unsold", err);
  if (rc != MQ_OK) return rc;
  return run(db,
             prep(db,
                  "UPDATE events SET sold = coalesce((SELECT sum(qty) FROM sold WHERE event_id = ?1), 0)"
                  " WHERE event_id = ?1",
                  "s", event_id),
             "sold total", err);
}

mq_code_t mq_search_put_category(mq_search_index_t *ix, const char *id, const char *name, mq_error_t *err) {
  return run(ix->w->db, prep(ix->w->db, "INSERT OR REPLACE INTO categories VALUES(?,?)", "ss", id, name), "category",
             err);
}

mq_code_t mq_search_events_of(mq_search_index_t *ix, const char *column, const char *id, mq_arena_t *a,
                              const char ***ids, size_t *n, mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  const char *sql = !strcmp(column, "venue_id")          ? "SELECT event_id FROM events WHERE venue_id = ?"
                    : !strcmp(column, "organization_id") ? "SELECT event_id FROM events WHERE organization_id = ?"
                    : !strcmp(column, "category_ancestors")
                        ? "SELECT e.event_id FROM event_categories c JOIN events e ON e.rid = c.rid"
                          " WHERE c.category_id = ?"
                        : NULL;
  if (!sql) return mq_error_set(err, MQ_INTERNAL, NULL, "search index: no lookup by %s", column);
  sqlite3_stmt *st = prep(db, sql, "s", id);
  if (!st) return sql_err(err, db, "events of");
  size_t cap = 16;
  *ids = mq_arena_alloc(a, cap * sizeof **ids);
  *n = 0;
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      const char **grown = mq_arena_alloc(a, cap * 2 * sizeof **ids);
      memcpy(grown, *ids, cap * sizeof **ids);
      *ids = grown;
      cap *= 2;
    }
    (*ids)[(*n)++] = mq_arena_strdup(a, (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return r == SQLITE_DONE ? MQ_OK : sql_err(err, db, "events of");
}

mq_code_t mq_search_commit(mq_search_index_t *ix, const char *topic, int32_t partition, int64_t next_offset,
                           mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  mq_code_t rc = MQ_OK;
  if (topic)
    rc =
        run(db, prep(db, "INSERT OR REPLACE INTO offsets VALUES(?,?,?)", "sii", topic, (int64_t)partition, next_offset),
            "offset", err);
  if (rc == MQ_OK) rc = exec(ix, "COMMIT", err);
  if (rc != MQ_OK) mq_search_rollback(ix);
  return rc;
}

mq_code_t mq_search_offset(mq_search_index_t *ix, const char *topic, int32_t partition, int64_t *next,
                           mq_error_t *err) {
  sqlite3 *db = ix->w->db;
  sqlite3_stmt *st = prep(db, "SELECT next FROM offsets WHERE topic = ? AND part = ?", "si", topic, (int64_t)partition);
  if (!st) return sql_err(err, db, "offset");
  int r = sqlite3_step(st);
  *next = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  return r == SQLITE_ROW || r == SQLITE_DONE ? MQ_OK : sql_err(err, db, "offset");
}

mq_code_t mq_search_mark_fresh(mq_search_index_t *ix, int64_t ms, mq_error_t *err) {
  return run(ix->w->db, prep(ix->w->db, "INSERT OR REPLACE INTO meta VALUES('fresh_ms', ?)", "i", ms), "fresh", err);
}

mq_code_t mq_search_refresh_vocab(mq_search_index_t *ix, int64_t now_ms, int64_t every_ms, mq_error_t *err) {
  if (!ix->vocab_dirty || (every_ms > 0 && now_ms - ix->vocab_ms < every_ms)) return MQ_OK;
  mq_code_t rc = mq_search_begin(ix, err);
  if (rc != MQ_OK) return rc;
  /* words of four letters or more: the ones a correction may replace */
  if ((rc = exec(ix, "DELETE FROM vocab", err)) == MQ_OK)
    rc = exec(ix,
              "INSERT INTO vocab SELECT term, doc, substr(term, 1, 1), substr(term, 2, 1), length(term)"
              " FROM events_vocab WHERE length(term) >= 4",
              err);
  if (rc == MQ_OK) rc = mq_search_commit(ix, NULL, 0, 0, err);
  if (rc != MQ_OK) {
    mq_search_rollback(ix);
    return rc;
  }
  ix->vocab_dirty = false;
  ix->vocab_ms = now_ms;
  return MQ_OK;
}

static mq_code_t count_on(sqlite3 *db, int64_t *n, mq_error_t *err) {
  sqlite3_stmt *st = prep(db, "SELECT count(*) FROM events", "");
  if (!st) return sql_err(err, db, "count");
  int r = sqlite3_step(st);
  *n = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return r == SQLITE_ROW ? MQ_OK : sql_err(err, db, "count");
}

/* ---- readers ----------------------------------------------------------------------- */

mq_code_t mq_search_open_reader(const char *path, unsigned conns, mq_search_index_t **out, mq_error_t *err) {
  (void)err;
  mq_search_index_t *ix = mq_xcalloc(1, sizeof *ix);
  ix->path = mq_xstrdup(path);
  ix->max = conns ? conns : 4;
  pthread_mutex_init(&ix->mu, NULL);
  pthread_cond_init(&ix->cv, NULL);
  *out = ix;
  return MQ_OK;
}

void mq_search_close(mq_search_index_t *ix) {
  if (!ix) return;
  conn_free(ix->w);
  free(ix->current);
  free(ix->link);
  while (ix->free_list) {
    conn_t *c = ix->free_list;
    ix->free_list = c->next;
    conn_free(c);
  }
  pthread_mutex_destroy(&ix->mu);
  pthread_cond_destroy(&ix->cv);
  free(ix->path);
  free(ix);
}

/* A read connection on the current file (a writer's index lends its own).
 * A file replaced since (a rebuild's rename) is noticed within a second:
 * connections of older generations are closed as they come back. */
static mq_code_t take(mq_search_index_t *ix, conn_t **out, mq_error_t *err) {
  if (ix->writer) {
    *out = ix->w;
    return MQ_OK;
  }
  pthread_mutex_lock(&ix->mu);
  int64_t now = mq_now_ms();
  if (now - ix->checked_ms >= 1000 || !ix->current) {
    char real[PATH_MAX];
    ix->checked_ms = now;
    if (!realpath(ix->path, real)) {
      pthread_mutex_unlock(&ix->mu);
      return mq_error_set(err, MQ_UNAVAILABLE, NULL,
                          "this host's search index is not built yet (the indexer has not created it); retry later");
    }
    if (!ix->current || strcmp(real, ix->current)) { /* a rebuild swapped the link */
      free(ix->current);
      ix->current = mq_xstrdup(real);
      ix->gen++;
      while (ix->free_list) { /* idle connections of the old file */
        conn_t *c = ix->free_list;
        ix->free_list = c->next;
        ix->open--;
        conn_free(c);
      }
    }
  }
  while (!ix->free_list && ix->open >= ix->max) pthread_cond_wait(&ix->cv, &ix->mu);
  conn_t *c = ix->free_list;
  if (c) {
    ix->free_list = c->next;
    pthread_mutex_unlock(&ix->mu);
    *out = c;
    return MQ_OK;
  }
  ix->open++;
  unsigned gen = ix->gen;
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s", ix->current);
  pthread_mutex_unlock(&ix->mu);
  mq_code_t rc = conn_open(file, false, &c, err);
  if (rc != MQ_OK) {
    pthread_mutex_lock(&ix->mu);
    ix->open--;
    pthread_cond_signal(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
    if (rc == MQ_INTERNAL) rc = mq_error_set(err, MQ_UNAVAILABLE, NULL, "%s", err->message);
    return rc;
  }
  c->gen = gen;
  *out = c;
  return MQ_OK;
}

static void give(mq_search_index_t *ix, conn_t *c) {
  if (ix->writer) return;
  pthread_mutex_lock(&ix->mu);
  if (c->gen != ix->gen) {
    ix->open--;
    conn_free(c);
  } else {
    c->next = ix->free_list;
    ix->free_list = c;
  }
  pthread_cond_signal(&ix->cv);
  pthread_mutex_unlock(&ix->mu);
}

mq_code_t mq_search_count(mq_search_index_t *ix, int64_t *n, mq_error_t *err) {
  conn_t *c;
  mq_code_t rc = take(ix, &c, err);
  if (rc != MQ_OK) return rc;
  rc = count_on(c->db, n, err);
  give(ix, c);
  return rc;
}

static int64_t fresh_on(sqlite3 *db) {
  sqlite3_stmt *st = prep(db, "SELECT v FROM meta WHERE k = 'fresh_ms'", "");
  int64_t v = 0;
  if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int64_t mq_search_fresh_ms(mq_search_index_t *ix) {
  conn_t *c;
  mq_error_t err;
  if (take(ix, &c, &err) != MQ_OK) return 0;
  int64_t v = fresh_on(c->db);
  give(ix, c);
  return v;
}

/* ---- queries ------------------------------------------------------------------------ */

/* Bound values of a statement being built, in order of their '?'. */
typedef struct {
  char type[64];
  const char *s[64];
  int64_t i[64];
  double d[64];
  int n;
} binds_t;

static void bind_s(binds_t *b, const char *s) {
  if (b->n < 64) b->type[b->n] = 's', b->s[b->n++] = s;
}
static void bind_i(binds_t *b, int64_t v) {
  if (b->n < 64) b->type[b->n] = 'i', b->i[b->n++] = v;
}
static void bind_d(binds_t *b, double v) {
  if (b->n < 64) b->type[b->n] = 'd', b->d[b->n++] = v;
}
static sqlite3_stmt *prep_b(sqlite3 *db, const char *sql, const binds_t *b) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
  for (int k = 0; k < b->n; k++) {
    if (b->type[k] == 's') sqlite3_bind_text(st, k + 1, b->s[k], -1, SQLITE_STATIC);
    if (b->type[k] == 'i') sqlite3_bind_int64(st, k + 1, b->i[k]);
    if (b->type[k] == 'd') sqlite3_bind_double(st, k + 1, b->d[k]);
  }
  return st;
}

static bool has_filter(const mq_search_query_t *q) {
  return (q->category_id && *q->category_id) || (q->city && *q->city) || (q->country && *q->country) ||
         (q->language && *q->language) || (q->currency && *q->currency) ||
         (q->organization_id && *q->organization_id) || q->starts_before_ms || q->free_only || q->attendance ||
         q->has_near || q->min_price_minor || q->max_price_minor;
}

/* The match expression of the positive words (main index): each word or
 * phrase quoted, ANDed; with two or more plain words, OR'ed with all of them
 * as one phrase so that mq_rank sees the phrase (it matches nothing more). */
static char *match_expr(mq_arena_t *a, const mq_search_term_t *t, size_t n, int *nwords) {
  sbuf_t b = {0}, ph = {0};
  int words = 0, plain = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i].negated || t[i].spaceless) continue;
    if (words++) sb_puts(&b, " AND ");
    sb_puts(&b, mq_search_quote(a, t[i].text));
    if (t[i].prefix) sb_puts(&b, "*");
    if (!t[i].phrase) {
      if (plain++) sb_puts(&ph, " + ");
      sb_puts(&ph, mq_search_quote(a, t[i].text));
      if (t[i].prefix) sb_puts(&ph, "*");
    }
  }
  char *r = NULL;
  if (words && plain >= 2 && plain == words)
    r = mq_arena_sprintf(a, "(%s) OR (%s)", b.buf, ph.buf);
  else if (words)
    r = mq_arena_strdup(a, b.buf);
  *nwords = words;
  free(b.buf);
  free(ph.buf);
  return r;
}

static char *like_escape(mq_arena_t *a, const char *s) {
  size_t n = strlen(s);
  char *o = mq_arena_alloc(a, 2 * n + 3), *p = o;
  *p++ = '%';
  for (; *s; s++) {
    if (*s == '%' || *s == '_' || *s == '\\') *p++ = '\\';
    *p++ = *s;
  }
  *p++ = '%';
  *p = 0;
  return o;
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

/* The match set's "FROM … WHERE …" (every filter, the words), its binds in
 * `b`. `expr` is the main table's match expression (NULL: no positive word). */
static void build_match(conn_t *c, const mq_search_query_t *q, const mq_search_term_t *t, size_t nt, const char *expr,
                        mq_arena_t *a, sbuf_t *sql, binds_t *b) {
  if (expr) {
    sb_puts(sql, "FROM events_fts JOIN events e ON e.rid = events_fts.rowid WHERE events_fts MATCH ? ");
    bind_s(b, expr);
  } else {
    sb_puts(sql, "FROM events e WHERE 1 ");
  }
  if (q->starts_after_ms) sb_puts(sql, "AND e.starts_ms >= ? "), bind_i(b, q->starts_after_ms);
  if (q->starts_before_ms) sb_puts(sql, "AND e.starts_ms < ? "), bind_i(b, q->starts_before_ms);
  sb_puts(sql, "AND e.ends_ms > ? ");
  bind_i(b, q->now_ms ? q->now_ms : mq_now_unix_ms());
  if (q->category_id && *q->category_id)
    sb_puts(sql, "AND e.rid IN (SELECT rid FROM event_categories WHERE category_id = ?) "), bind_s(b, q->category_id);
  if (q->city && *q->city) sb_puts(sql, "AND e.city_key = ? "), bind_s(b, fold(c, a, q->city));
  if (q->country && *q->country) sb_puts(sql, "AND e.country = ? "), bind_s(b, q->country);
  if (q->language && *q->language) {
    char *l = mq_arena_alloc(a, 16);
    lang_primary(q->language, l);
    sb_puts(sql, "AND e.lang = ? "), bind_s(b, l);
  }
  if (q->currency && *q->currency) sb_puts(sql, "AND e.currency = ? "), bind_s(b, q->currency);
  if (q->organization_id && *q->organization_id)
    sb_puts(sql, "AND e.organization_id = ? "), bind_s(b, q->organization_id);
  if (q->min_price_minor) sb_puts(sql, "AND e.min_price >= ? "), bind_i(b, q->min_price_minor);
  if (q->max_price_minor) sb_puts(sql, "AND e.min_price <= ? "), bind_i(b, q->max_price_minor);
  if (q->free_only) sb_puts(sql, "AND e.free = 1 ");
  if (q->attendance) sb_printf(sql, "AND e.online = %d ", q->attendance == 2 ? 1 : 0);
  if (q->has_near) {
    double r = q->within_km, dlat = r / 111.195 * 1.01;
    double lo_lat = q->latitude - dlat, hi_lat = q->latitude + dlat;
    sb_puts(sql, "AND e.rid IN (SELECT id FROM events_geo WHERE min_lat <= ? AND max_lat >= ? AND (");
    bind_d(b, hi_lat);
    bind_d(b, lo_lat);
    double worst = fmax(fabs(lo_lat), fabs(hi_lat));
    if (lo_lat <= -90 || hi_lat >= 90 || worst >= 89.9) {
      sb_puts(sql, "1");
    } else {
      double dlng = dlat / cos(worst * MQ_PI / 180.0);
      double lo = q->longitude - dlng, hi = q->longitude + dlng;
      if (dlng >= 180) {
        sb_puts(sql, "1");
      } else if (lo < -180) {
        sb_puts(sql, "(max_lng >= ? OR min_lng <= ?)");
        bind_d(b, lo + 360), bind_d(b, hi);
      } else if (hi > 180) {
        sb_puts(sql, "(max_lng >= ? OR min_lng <= ?)");
        bind_d(b, lo), bind_d(b, hi - 360);
      } else {
        sb_puts(sql, "(max_lng >= ? AND min_lng <= ?)");
        bind_d(b, lo), bind_d(b, hi);
      }
    }
    sb_puts(sql, ")) AND mq_dist_km(e.lat, e.lng, ?, ?) <= ? ");
    bind_d(b, q->latitude), bind_d(b, q->longitude), bind_d(b, q->within_km);
  }
  for (size_t i = 0; i < nt; i++) {
    if (t[i].spaceless && !t[i].negated) {
      if (utf8_chars(t[i].text) >= 3)
        sb_puts(sql, "AND e.rid IN (SELECT rowid FROM events_tri WHERE events_tri MATCH ?) "),
            bind_s(b, mq_search_quote(a, t[i].text));
      else
        sb_puts(sql, "AND e.rid IN (SELECT rowid FROM events_tri WHERE text LIKE ? ESCAPE '\\') "),
            bind_s(b, like_escape(a, t[i].text));
    } else if (t[i].negated) {
      sb_puts(sql, "AND e.rid NOT IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?) ");
      bind_s(b, mq_search_quote(a, t[i].text));
    }
  }
}

static const char *col_s(mq_arena_t *a, sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  return mq_arena_strdup(a, s ? (const char *)s : "");
}

/* ---- one pass over the match set: the total, the page, the facets ---------------------- */

typedef struct {
  double k1, score, dist;
  int64_t k2, rid;
  const char *id;
} row_t;

/* The order of a page: k1, then k2, then the event id. */
static int row_cmp(const row_t *x, const row_t *y) {
  if (x->k1 != y->k1) return x->k1 < y->k1 ? -1 : 1;
  if (x->k2 != y->k2) return x->k2 < y->k2 ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* A max-heap of the `cap` smallest rows seen. */
typedef struct {
  row_t *r;
  size_t n, cap;
} heap_t;

static void heap_push(heap_t *h, mq_arena_t *a, const row_t *x) {
  if (h->n == h->cap && row_cmp(x, &h->r[0]) >= 0) return; /* not among the smallest */
  row_t v = *x;
  v.id = mq_arena_strdup(a, x->id);
  size_t i;
  if (h->n < h->cap) { /* sift up */
    i = h->n++;
    while (i && row_cmp(&h->r[(i - 1) / 2], &v) < 0) h->r[i] = h->r[(i - 1) / 2], i = (i - 1) / 2;
    h->r[i] = v;
    return;
  }
  i = 0; /* replace the largest, sift down */
  for (;;) {
    size_t l = 2 * i + 1, g = i;
    const row_t *big = &v;
    if (l < h->n && row_cmp(&h->r[l], big) > 0) g = l, big = &h->r[l];
    if (l + 1 < h->n && row_cmp(&h->r[l + 1], big) > 0) g = l + 1;
    if (g == i) break;
    h->r[i] = h->r[g], i = g;
  }
  h->r[i] = v;
}

static int row_qcmp(const void *x, const void *y) {
  return row_cmp(x, y);
}

/* Counts by key: a small open-addressing table (keys copied into the arena). */
typedef struct {
  const char **key, **label;
  int64_t *count;
  size_t n, cap;
} tally_t;

static void tally_add(tally_t *t, mq_arena_t *a, const char *key, const char *label) {
  if (2 * (t->n + 1) > t->cap) {
    tally_t g = {.cap = t->cap ? 2 * t->cap : 64};
    g.key = mq_arena_alloc(a, g.cap * sizeof *g.key);
    g.label = mq_arena_alloc(a, g.cap * sizeof *g.label);
    g.count = mq_arena_alloc(a, g.cap * sizeof *g.count);
    memset(g.key, 0, g.cap * sizeof *g.key);
    for (size_t i = 0; i < t->cap; i++)
      if (t->key[i]) {
        uint64_t hsh = 1469598103934665603ull;
        for (const char *p = t->key[i]; *p; p++) hsh = (hsh ^ (unsigned char)*p) * 1099511628211ull;
        size_t j = hsh & (g.cap - 1);
        while (g.key[j]) j = (j + 1) & (g.cap - 1);
        g.key[j] = t->key[i], g.label[j] = t->label[i], g.count[j] = t->count[i];
      }
    g.n = t->n;
    *t = g;
  }
  uint64_t hsh = 1469598103934665603ull;
  for (const char *p = key; *p; p++) hsh = (hsh ^ (unsigned char)*p) * 1099511628211ull;
  size_t j = hsh & (t->cap - 1);
  while (t->key[j] && strcmp(t->key[j], key)) j = (j + 1) & (t->cap - 1);
  if (!t->key[j]) {
    t->key[j] = mq_arena_strdup(a, key);
    t->label[j] = mq_arena_strdup(a, label ? label : key);
    t->count[j] = 0;
    t->n++;
  }
  t->count[j]++;
}

static int bucket_cmp(const void *x, const void *y) { /* most first, then by value */
  const mq_search_bucket_t *p = x, *q = y;
  if (p->count != q->count) return p->count > q->count ? -1 : 1;
  return strcmp(p->value, q->value);
}

/* The `keep` largest buckets of a tally, and "other" for the rest. */
static void tally_facet(const tally_t *t, size_t keep, mq_arena_t *a, mq_search_facet_t *f) {
  mq_search_bucket_t *all = mq_arena_alloc(a, (t->n ? t->n : 1) * sizeof *all);
  size_t n = 0;
  for (size_t i = 0; i < t->cap; i++)
    if (t->key[i]) all[n++] = (mq_search_bucket_t){t->key[i], t->label[i], t->count[i]};
  qsort(all, n, sizeof *all, bucket_cmp);
  f->buckets = mq_arena_alloc(a, (keep + 2) * sizeof *f->buckets);
  int64_t other = 0;
  for (size_t i = 0; i < n; i++) {
    if (f->n < keep)
      f->buckets[f->n++] = all[i];
    else
      other += all[i].count;
  }
  if (other) f->buckets[f->n++] = (mq_search_bucket_t){"other", "Other", other};
}

typedef struct {
  tally_t cats, cities;
  int64_t online, months[14], price[5];
} facet_acc_t;

static void facet_row(facet_acc_t *f, const mq_search_query_t *q, sqlite3_stmt *st, int col, mq_arena_t *a) {
  const char *cat = (const char *)sqlite3_column_text(st, col);
  tally_add(&f->cats, a, cat ? cat : "", NULL);
  if (sqlite3_column_int(st, col + 3)) {
    f->online++;
  } else {
    const char *ck = (const char *)sqlite3_column_text(st, col + 1),
               *city = (const char *)sqlite3_column_text(st, col + 2);
    tally_add(&f->cities, a, ck ? ck : "", city);
  }
  int64_t starts = sqlite3_column_int64(st, col + 4);
  int m = 0;
  while (m < 13 && starts >= q->month_bounds[m + 1]) m++;
  f->months[m]++;
  double pm = sqlite3_column_double(st, col + 6);
  f->price[sqlite3_column_int(st, col + 5) ? 0 : pm < 20 ? 1 : pm < 50 ? 2 : pm < 100 ? 3 : 4]++;
}

static void facets_out(sqlite3 *db, const mq_search_query_t *q, facet_acc_t *f, mq_arena_t *a,
                       mq_search_result_t *out) {
  mq_search_facet_t *fc = &out->facets[out->n_facets++];
  fc->name = "category";
  tally_facet(&f->cats, 14, a, fc);
  for (size_t i = 0; i < fc->n; i++) { /* labels: the top-level category's English name */
    sqlite3_stmt *st = prep(db, "SELECT name FROM categories WHERE id = ?", "s", fc->buckets[i].value);
    if (st && sqlite3_step(st) == SQLITE_ROW) fc->buckets[i].label = col_s(a, st, 0);
    sqlite3_finalize(st);
  }
  fc = &out->facets[out->n_facets++];
  fc->name = "city";
  tally_facet(&f->cities, 10, a, fc);
  if (f->online) { /* online events have no city: their own bucket, before "other" */
    size_t at = fc->n && !strcmp(fc->buckets[fc->n - 1].value, "other") ? fc->n - 1 : fc->n;
    memmove(&fc->buckets[at + 1], &fc->buckets[at], (fc->n - at) * sizeof *fc->buckets);
    fc->buckets[at] = (mq_search_bucket_t){"online", "Online", f->online};
    fc->n++;
  }
  fc = &out->facets[out->n_facets++];
  fc->name = "month";
  fc->buckets = mq_arena_alloc(a, 14 * sizeof *fc->buckets);
  for (int m = 0; m < 14; m++)
    if (f->months[m]) {
      const char *v = m < 13 ? q->month_labels[m] : "later";
      fc->buckets[fc->n++] = (mq_search_bucket_t){v, v, f->months[m]};
    }
  static const char *const bands[5] = {"free", "0-20", "20-50", "50-100", "100+"};
  fc = &out->facets[out->n_facets++];
  fc->name = "price";
  fc->buckets = mq_arena_alloc(a, 5 * sizeof *fc->buckets);
  for (int i = 0; i < 5; i++)
    if (f->price[i]) fc->buckets[fc->n++] = (mq_search_bucket_t){bands[i], bands[i], f->price[i]};
}

/* Fields and highlights of the page's rows. */
static mq_code_t fill_hits(conn_t *c, const char *expr, mq_arena_t *a, mq_search_result_t *out, mq_error_t *err) {
  sqlite3 *db = c->db;
  for (size_t i = 0; i < out->n; i++) {
    mq_search_hit_t *h = &out->hits[i];
    int64_t rid = (int64_t)(intptr_t)h->title; /* parked there by mq_search_run */
    sqlite3_stmt *st =
        prep(db,
             "SELECT event_id, title, organization_id, organization_name, category_id, category_path, venue_name,"
             " city, country, time_zone, language, currency, series_id, cover_image_id, tags, online, free,"
             " starts_ms, ends_ms, min_price, max_price, sold FROM events WHERE rid = ?",
             "i", rid);
    if (!st) return sql_err(err, db, "hit");
    if (sqlite3_step(st) == SQLITE_ROW) {
      h->event_id = col_s(a, st, 0), h->title = col_s(a, st, 1), h->organization_id = col_s(a, st, 2);
      h->organization_name = col_s(a, st, 3), h->category_id = col_s(a, st, 4), h->category_path = col_s(a, st, 5);
      h->venue_name = col_s(a, st, 6), h->city = col_s(a, st, 7), h->country = col_s(a, st, 8);
      h->time_zone = col_s(a, st, 9), h->language = col_s(a, st, 10), h->currency = col_s(a, st, 11);
      h->series_id = col_s(a, st, 12), h->cover_image_id = col_s(a, st, 13), h->tags = col_s(a, st, 14);
      h->online = sqlite3_column_int(st, 15), h->free = sqlite3_column_int(st, 16);
      h->starts_ms = sqlite3_column_int64(st, 17), h->ends_ms = sqlite3_column_int64(st, 18);
      h->min_price_minor = sqlite3_column_int64(st, 19), h->max_price_minor = sqlite3_column_int64(st, 20);
      h->sold = sqlite3_column_int64(st, 21);
    } else {
      h->title = "";
    }
    sqlite3_finalize(st);
    const char *title = NULL, *snip = NULL;
    if (expr) {
      st = prep(db,
                "SELECT highlight(events_fts, 0, x'01', x'02'), snippet(events_fts, 6, x'01', x'02', '…', 24)"
                " FROM events_fts WHERE events_fts MATCH ? AND rowid = ?",
                "si", expr, rid);
      if (st && sqlite3_step(st) == SQLITE_ROW) title = col_s(a, st, 0), snip = col_s(a, st, 1);
      sqlite3_finalize(st);
    }
    if (!snip) {
      st = prep(db, "SELECT substr(description, 1, 200) FROM events_fts WHERE rowid = ?", "i", rid);
      if (st && sqlite3_step(st) == SQLITE_ROW) snip = col_s(a, st, 0);
      sqlite3_finalize(st);
      /* never end inside a UTF-8 sequence (substr counts characters, so it cannot; kept simple) */
    }
    h->title_html = mq_search_html(a, title ? title : h->title);
    h->snippet_html = mq_search_html(a, snip ? snip : "");
  }
  return MQ_OK;
}

/* The closest indexed word to each unknown word of the query; NULL when
 * nothing changed. */
static char *correct(conn_t *c, const mq_search_term_t *t, size_t nt, mq_arena_t *a, mq_search_term_t *fixed) {
  bool changed = false;
  sbuf_t b = {0};
  for (size_t i = 0; i < nt; i++) {
    fixed[i] = t[i];
    if (!t[i].negated && !t[i].phrase && !t[i].spaceless) {
      char *w = fold(c, a, t[i].text);
      if (*w && !strchr(w, ' ')) {
        sqlite3_stmt *st =
            t[i].prefix
                ? prep(c->db, "SELECT 1 FROM events_vocab WHERE term >= ?1 AND term < ?1 || x'ff' LIMIT 1", "s", w)
                : prep(c->db, "SELECT 1 FROM events_vocab WHERE term = ?", "s", w);
        bool known = st && sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!known) {
          size_t len = utf8_chars(w);
          int max = len <= 3 ? 0 : len <= 5 ? 1 : 2;
          if (max) {
            /* candidates share the first or the second letter (a typo rarely hits both) */
            const unsigned char *p0 = (const unsigned char *)w, *p1 = p0;
            utf8_next(&p1);
            const unsigned char *p2 = p1;
            utf8_next(&p2);
            st = prep(c->db,
                      "SELECT term, mq_edits(term, ?1, ?2) AS d FROM vocab WHERE (c1 = ?5 OR c2 = ?6)"
                      " AND len BETWEEN ?3 AND ?4 AND d <= ?2 ORDER BY d, docs DESC, term LIMIT 1",
                      "siiiss", w, (int64_t)max, (int64_t)len - max, (int64_t)len + max,
                      mq_arena_strndup(a, (const char *)p0, (size_t)(p1 - p0)),
                      mq_arena_strndup(a, (const char *)p1, (size_t)(p2 - p1)));
            if (st && sqlite3_step(st) == SQLITE_ROW) {
              fixed[i].text = col_s(a, st, 0);
              fixed[i].prefix = false;
              changed = true;
            }
            sqlite3_finalize(st);
          }
        }
      }
    }
    if (b.len) sb_puts(&b, " ");
    if (fixed[i].negated) sb_puts(&b, "-");
    if (fixed[i].phrase) sb_puts(&b, "\"");
    sb_puts(&b, fixed[i].text);
    if (fixed[i].phrase) sb_puts(&b, "\"");
  }
  char *r = changed ? mq_arena_strdup(a, b.buf) : NULL;
  free(b.buf);
  return r;
}

static void binds_append(binds_t *to, const binds_t *from) {
  for (int k = 0; k < from->n && to->n < 64; k++) {
    to->type[to->n] = from->type[k], to->s[to->n] = from->s[k], to->i[to->n] = from->i[k], to->d[to->n] = from->d[k];
    to->n++;
  }
}

/* One query on one read transaction (WAL: one snapshot for all of it): the
 * total, the page (keyset after the cursor), the page's fields, the facets.
 * The relevance score is computed only when the sort needs it. */
/* One query in one pass over the match set, on one read transaction (WAL:
 * one snapshot): every matching row is counted, tallied into the facets and
 * offered to a top-(page + 1) heap after the cursor; then the page's fields
 * and highlights are read by rowid. The relevance score is computed only
 * when the sort needs it. */
static mq_code_t run_once(conn_t *c, const mq_search_query_t *q, const mq_search_term_t *t, size_t nt, mq_arena_t *a,
                          mq_search_result_t *out, char **expr_out, mq_error_t *err) {
  sqlite3 *db = c->db;
  int nwords = 0;
  char *expr = match_expr(a, t, nt, &nwords);
  *expr_out = expr;
  row_t cursor = {0};
  bool has_cursor = false;
  if (q->cursor) {
    long long k2;
    int off = 0;
    if (sscanf(q->cursor, "%lf,%lld,%n", &cursor.k1, &k2, &off) != 2 || off <= 0 || !q->cursor[off])
      return mq_error_set(err, MQ_INVALID_ARGUMENT, "page_token", "is not a page token of this search");
    cursor.k2 = k2;
    cursor.id = q->cursor + off;
    has_cursor = true;
  }
  sbuf_t from = {0}, sql = {0};
  binds_t fb = {0}, b = {0};
  build_match(c, q, t, nt, expr, a, &from, &fb);
  bool relevance = q->sort == MQ_SEARCH_SORT_RELEVANCE && expr;
  const char *keys = q->sort == MQ_SEARCH_SORT_DATE         ? "starts_ms, 0"
                     : q->sort == MQ_SEARCH_SORT_DISTANCE   ? "dist, 0"
                     : q->sort == MQ_SEARCH_SORT_POPULARITY ? "-sold, starts_ms"
                     : relevance                            ? "-score, starts_ms"
                                                            : "starts_ms, 0";
  sb_printf(&sql,
            "SELECT rid, event_id, score, dist, %s%s FROM (SELECT e.rid AS rid, e.event_id AS event_id, "
            "e.starts_ms AS starts_ms, e.sold AS sold, ",
            keys, q->facets ? ", f_cat, f_ck, f_city, f_on, starts_ms, f_free, f_pm" : "");
  if (relevance)
    sb_printf(&sql, "mq_rank(events_fts, %d) AS score, ", nwords);
  else
    sb_puts(&sql, "0.0 AS score, ");
  if (q->has_near) {
    sb_puts(&sql, "mq_dist_km(e.lat, e.lng, ?, ?) AS dist");
    bind_d(&b, q->latitude), bind_d(&b, q->longitude);
  } else {
    sb_puts(&sql, "0.0 AS dist");
  }
  if (q->facets)
    sb_puts(&sql,
            ", e.category_root AS f_cat, e.city_key AS f_ck, e.city AS f_city, e.online AS f_on,"
            " e.free AS f_free, e.price_major AS f_pm");
  sb_printf(&sql, " %s)", from.buf);
  binds_append(&b, &fb);
  free(from.buf);
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    free(sql.buf);
    return sql_err(err, db, "begin");
  }
  mq_code_t rc = MQ_OK;
  sqlite3_stmt *st = prep_b(db, sql.buf, &b);
  free(sql.buf);
  heap_t h = {.cap = q->limit + 1};
  h.r = mq_arena_alloc(a, h.cap * sizeof *h.r);
  facet_acc_t f;
  memset(&f, 0, sizeof f);
  if (!st) {
    rc = sql_err(err, db, "match");
    goto done;
  }
  int r;
  out->total = 0;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    out->total++;
    row_t x = {.rid = sqlite3_column_int64(st, 0),
               .id = (const char *)sqlite3_column_text(st, 1),
               .score = sqlite3_column_double(st, 2),
               .dist = sqlite3_column_double(st, 3),
               .k1 = sqlite3_column_double(st, 4),
               .k2 = sqlite3_column_int64(st, 5)};
    if (!x.id) x.id = "";
    if (!has_cursor || row_cmp(&x, &cursor) > 0) heap_push(&h, a, &x);
    if (q->facets) facet_row(&f, q, st, 6, a);
  }
  sqlite3_finalize(st);
  st = NULL;
  if (r != SQLITE_DONE) {
    rc = sql_err(err, db, "match");
    goto done;
  }
  qsort(h.r, h.n, sizeof *h.r, row_qcmp);
  out->n = h.n > q->limit ? q->limit : h.n;
  out->hits = mq_arena_alloc(a, (out->n ? out->n : 1) * sizeof *out->hits);
  for (size_t i = 0; i < out->n; i++) {
    mq_search_hit_t *hit = &out->hits[i];
    memset(hit, 0, sizeof *hit);
    hit->title = (const char *)(intptr_t)h.r[i].rid; /* the rowid, until fill_hits */
    hit->score = h.r[i].score;
    hit->distance_km = q->has_near ? h.r[i].dist : 0;
  }
  if (h.n > q->limit) {
    const row_t *last = &h.r[q->limit - 1];
    out->next_cursor = mq_arena_sprintf(a, "%.17g,%lld,%s", last->k1, (long long)last->k2, last->id);
  }
  if ((rc = fill_hits(c, expr, a, out, err)) != MQ_OK) goto done;
  if (q->facets) facets_out(db, q, &f, a, out);
done:
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  return rc;
}

mq_code_t mq_search_run(mq_search_index_t *ix, const mq_search_query_t *q, mq_arena_t *a, mq_search_result_t *out,
                        mq_error_t *err) {
  memset(out, 0, sizeof *out);
  mq_search_term_t terms[MQ_SEARCH_WORDS_MAX];
  size_t nt = mq_search_compile(q->text, a, terms, MQ_SEARCH_WORDS_MAX);
  bool positive = false;
  for (size_t i = 0; i < nt; i++) positive |= !terms[i].negated;
  if (!positive && !has_filter(q) && q->text && *q->text)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, "query",
                        "has no word to search for (only punctuation or excluded words); add a word or a filter");
  conn_t *c;
  mq_code_t rc = take(ix, &c, err);
  if (rc != MQ_OK) return rc;
  char *expr = NULL;
  rc = run_once(c, q, terms, nt, a, out, &expr, err);
  if (rc == MQ_OK && out->total == 0 && positive && !q->cursor) {
    mq_search_term_t fixed[MQ_SEARCH_WORDS_MAX];
    char *corrected = correct(c, terms, nt, a, fixed);
    if (corrected) {
      mq_search_result_t again;
      memset(&again, 0, sizeof again);
      rc = run_once(c, q, fixed, nt, a, &again, &expr, err);
      if (rc == MQ_OK && again.total > 0) {
        *out = again;
        out->corrected = corrected;
      }
    }
  }
  if (rc == MQ_OK) out->fresh_ms = fresh_on(c->db);
  give(ix, c);
  return rc;
}

mq_code_t mq_search_suggest(mq_search_index_t *ix, const char *prefix, uint32_t limit, int64_t now_ms, mq_arena_t *a,
                            mq_suggestion_t **out, size_t *n, mq_error_t *err) {
  mq_search_term_t t[MQ_SEARCH_WORDS_MAX];
  size_t nt = mq_search_compile(prefix, a, t, MQ_SEARCH_WORDS_MAX);
  *out = mq_arena_alloc(a, (limit ? limit : 1) * 3 * sizeof **out);
  *n = 0;
  if (!nt) return MQ_OK;
  conn_t *c;
  mq_code_t rc = take(ix, &c, err);
  if (rc != MQ_OK) return rc;
  static const struct {
    int kind;
    const char *col, *sql;
  } kinds[] = {
      {MQ_SUGGEST_CITY, "city",
       "SELECT max(e.city), '', count(*) FROM events_fts JOIN events e ON e.rid = events_fts.rowid"
       " WHERE events_fts MATCH ? AND e.ends_ms > ? GROUP BY e.city_key ORDER BY 3 DESC, 1 LIMIT ?"},
      {MQ_SUGGEST_VENUE, "venue",
       "SELECT max(e.venue_name), '', count(*) FROM events_fts JOIN events e ON e.rid = events_fts.rowid"
       " WHERE events_fts MATCH ? AND e.ends_ms > ? GROUP BY e.venue_id ORDER BY 3 DESC, 1 LIMIT ?"},
      {MQ_SUGGEST_EVENT, "title",
       "SELECT e.title, e.event_id, 1 FROM events_fts JOIN events e ON e.rid = events_fts.rowid"
       " WHERE events_fts MATCH ? AND e.ends_ms > ? ORDER BY e.sold DESC, e.starts_ms LIMIT ?"},
  };
  for (size_t k = 0; k < 3 && rc == MQ_OK; k++) {
    sbuf_t e = {0};
    sb_printf(&e, "{%s} : (", kinds[k].col);
    int words = 0;
    for (size_t i = 0; i < nt; i++) {
      if (t[i].negated) continue;
      if (words++) sb_puts(&e, " AND ");
      sb_puts(&e, mq_search_quote(a, t[i].text));
      if (i + 1 == nt) sb_puts(&e, "*");
    }
    sb_puts(&e, ")");
    /* cities and venues take at most a quarter of the list each; titles the rest */
    int64_t room = (int64_t)limit - (int64_t)*n, cap = k < 2 ? (int64_t)limit / 4 + 1 : room;
    if (cap > room) cap = room;
    sqlite3_stmt *st = words && cap > 0 ? prep(c->db, kinds[k].sql, "sii", e.buf, now_ms, cap) : NULL;
    free(e.buf);
    if (!words || cap <= 0) continue;
    if (!st) {
      rc = sql_err(err, c->db, "suggest");
      break;
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
      mq_suggestion_t *s = &(*out)[(*n)++];
      s->text = col_s(a, st, 0);
      s->kind = kinds[k].kind;
      s->event_id = kinds[k].kind == MQ_SUGGEST_EVENT ? col_s(a, st, 1) : NULL;
      s->events = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) rc = sql_err(err, c->db, "suggest");
  }
  give(ix, c);
  return rc;
}

/* ---- pure helpers -------------------------------------------------------------------- */

static bool word_byte(unsigned char ch) {
  return ch >= 0x80 || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z');
}

/* Scripts written without spaces between words: CJK ideographs, kana,
 * hangul, Thai, Lao, Khmer, Myanmar. */
static bool spaceless_cp(uint32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
         (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x0E00 && cp <= 0x0EFF) || (cp >= 0x1780 && cp <= 0x17FF) ||
         (cp >= 0x1000 && cp <= 0x109F) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF);
}

static uint32_t utf8_next(const unsigned char **p) {
  const unsigned char *s = *p;
  uint32_t cp;
  int n;
  if (s[0] < 0x80)
    cp = s[0], n = 1;
  else if ((s[0] & 0xE0) == 0xC0 && s[1])
    cp = s[0] & 0x1F, n = 2;
  else if ((s[0] & 0xF0) == 0xE0 && s[1] && s[2])
    cp = s[0] & 0x0F, n = 3;
  else if ((s[0] & 0xF8) == 0xF0 && s[1] && s[2] && s[3])
    cp = s[0] & 0x07, n = 4;
  else {
    *p = s + 1;
    return 0xFFFD;
  }
  for (int i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3F);
  *p = s + n;
  return cp;
}

static bool is_spaceless(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p)
    if (spaceless_cp(utf8_next(&p))) return true;
  return false;
}

size_t mq_search_compile(const char *text, mq_arena_t *a, mq_search_term_t *terms, size_t max) {
  size_t n = 0;
  const char *p = text ? text : "";
  long last_plain = -1;
  while (*p && n < max) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') p++;
    if (!*p) break;
    mq_search_term_t t = {0};
    const char *start, *end;
    if (*p == '-' && p[1] && p[1] != ' ' && p[1] != '-') {
      t.negated = true;
      p++;
    }
    if (*p == '"') {
      t.phrase = true;
      start = ++p;
      while (*p && *p != '"') p++;
      end = p;
      if (*p) p++;
    } else {
      start = p;
      while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '"') p++;
      end = p;
    }
    bool any = false;
    for (const char *q = start; q < end; q++) any |= word_byte((unsigned char)*q);
    if (!any) continue;
    t.text = mq_arena_strndup(a, start, (size_t)(end - start));
    t.spaceless = !t.phrase && is_spaceless(t.text);
    if (!t.negated && !t.phrase && !t.spaceless) last_plain = (long)n;
    terms[n++] = t;
  }
  /* the word being typed: the last plain word, if nothing but space follows it */
  if (last_plain >= 0 && last_plain == (long)n - 1) {
    size_t len = strlen(text);
    if (len && text[len - 1] != ' ') terms[last_plain].prefix = true;
  }
  return n;
}

char *mq_search_quote(mq_arena_t *a, const char *s) {
  size_t n = strlen(s), q = 0;
  for (size_t i = 0; i < n; i++) q += s[i] == '"';
  char *o = mq_arena_alloc(a, n + q + 3), *p = o;
  *p++ = '"';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') *p++ = '"';
    *p++ = s[i];
  }
  *p++ = '"';
  *p = 0;
  return o;
}

double mq_search_distance_km(double lat1, double lng1, double lat2, double lng2) {
  const double r = 6371.0088, k = MQ_PI / 180.0;
  double dlat = (lat2 - lat1) * k, dlng = (lng2 - lng1) * k;
  double h = sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * k) * cos(lat2 * k) * sin(dlng / 2) * sin(dlng / 2);
  if (h > 1) h = 1;
  return 2 * r * asin(sqrt(h));
}

int mq_search_edits(const char *a, const char *b, int max) {
  enum { N = 64 };
  uint32_t x[N], y[N];
  size_t n = 0, m = 0;
  const unsigned char *p = (const unsigned char *)a;
  while (*p && n < N) x[n++] = utf8_next(&p);
  if (*p) return max + 1;
  p = (const unsigned char *)b;
  while (*p && m < N) y[m++] = utf8_next(&p);
  if (*p) return max + 1;
  if ((n > m ? n - m : m - n) > (size_t)max) return max + 1;
  int d[N + 1][N + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int row_min = max + 1;
    for (size_t j = 1; j <= m; j++) {
      int cost = x[i - 1] != y[j - 1];
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
      if (v < row_min) row_min = v;
    }
    if (row_min > max) return max + 1;
  }
  return d[n][m] > max ? max + 1 : d[n][m];
}

char *mq_search_html(mq_arena_t *a, const char *s) {
  sbuf_t b = {0};
  for (; *s; s++) {
    switch (*s) {
      case '\x01':
        sb_puts(&b, "<mark>");
        break;
      case '\x02':
        sb_puts(&b, "</mark>");
        break;
      case '<':
        sb_puts(&b, "&lt;");
        break;
      case '>':
        sb_puts(&b, "&gt;");
        break;
      case '&':
        sb_puts(&b, "&amp;");
        break;
      case '"':
        sb_puts(&b, "&quot;");
        break;
      case '\'':
        sb_puts(&b, "&#39;");
        break;
      default:
        sb_putn(&b, s, 1);
    }
  }
  char *r = mq_arena_strdup(a, b.buf ? b.buf : "");
  free(b.buf);
  return r;
}
