/*
 * analytics_store.c — bucket documents of the analytics aggregates: the
 * writer's working set (marquee-analytics) and the readers' scan
 * (AnalyticsService). Document shape and invariants A1-A5: analytics_store.h.
 *
 * The working set keeps each document it has read or written in memory
 * (a chained hash by _id) with its counters (an open-addressing table by
 * quarter and name). A contribution to a document not read yet waits in
 * that document's pending list until the next flush reads it, so a flush
 * costs one query per few hundred unknown documents, one bulk write of the
 * changed ones and one of the positions — whatever the number of events
 * folded in. After a flush the set keeps at most KEEP_DOCS documents.
 */
#include "store/analytics/analytics_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_log.h"
#include "core/mq_xmalloc.h"
#include "store/mq_bson.h"

#define SRC_MAX 96
#define ID_MAX (2 + MQ_AN_KEY_MAX + 12 + SRC_MAX + 4)
#define HASH_BUCKETS 4096u
#define LOAD_CHUNK 256
#define KEEP_DOCS 20000
#define QUARTERS 96

typedef struct cell {
  int64_t v;
  uint16_t q; /* quarter + 1; 0: empty */
  char name[MQ_AN_NAME_MAX];
} cell_t;

typedef struct contrib {
  int64_t offset, delta;
  uint16_t q;
  char name[MQ_AN_NAME_MAX];
} contrib_t;

typedef struct doc {
  struct doc *next;
  char id[ID_MAX];          /* the logical id (lid) */
  char stored[ID_MAX + 24]; /* _id of the version this set holds ("" when none is stored) */
  char **stale;             /* other stored versions of it, to delete */
  size_t n_stale;
  char scope;
  char key[MQ_AN_KEY_MAX + 1], org[MQ_AN_KEY_MAX + 1], src[SRC_MAX];
  int64_t day;
  int64_t hw;     /* as stored: -1 when the document does not exist */
  int64_t new_hw; /* after what is applied in memory */
  bool loaded, dirty;
  cell_t *cells; /* open addressing, cap a power of two */
  size_t n_cells, cap_cells;
  contrib_t *pend;
  size_t n_pend, cap_pend;
} doc_t;

typedef struct pos {
  struct pos *next;
  char src[SRC_MAX];
  char stored[SRC_MAX + 24]; /* _id of its stored version ("" when none) */
  int64_t next_offset;       /* -1: nothing read */
  int64_t at_ms;             /* complete as of (event time, or the time caught up) */
  bool dirty;
} pos_t;

struct mq_an_set {
  int64_t gen;
  char coll[48], pos_coll[48];
  doc_t *buckets[HASH_BUCKETS];
  size_t n_docs, n_pending;
  pos_t *positions;
  char **doomed; /* superseded versions whose delete has not succeeded yet */
  size_t n_doomed, cap_doomed;
};

void mq_an_collection(int64_t gen, char *buf, size_t n) {
  snprintf(buf, n, "analytics_g%" PRId64, gen);
}
static void pos_collection(int64_t gen, char *buf, size_t n) {
  snprintf(buf, n, "analytics_pos_g%" PRId64, gen);
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* Ids, currency codes and counter names only: nothing that could be a path
 * ('.'), an operator ('$') or an injection into _id's separators ('|'). */
static bool safe_token(const char *s, size_t max) {
  if (!s || !*s) return false;
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == ':'))
      return false;
  }
  return n <= max;
}

mq_an_set_t *mq_an_set_new(int64_t gen) {
  mq_an_set_t *w = mq_xcalloc(1, sizeof *w);
  w->gen = gen;
  mq_an_collection(gen, w->coll, sizeof w->coll);
  pos_collection(gen, w->pos_coll, sizeof w->pos_coll);
  return w;
}

static void doc_free(doc_t *d) {
  for (size_t i = 0; i < d->n_stale; i++) free(d->stale[i]);
  free(d->stale);
  free(d->cells);
  free(d->pend);
  free(d);
}

static void doom(mq_an_set_t *w, const char *id) {
  if (!id || !*id) return;
  if (w->n_doomed == w->cap_doomed) {
    w->cap_doomed = w->cap_doomed ? w->cap_doomed * 2 : 256;
    w->doomed = mq_xrealloc(w->doomed, w->cap_doomed * sizeof *w->doomed);
  }
  w->doomed[w->n_doomed++] = mq_xstrdup(id);
}

void mq_an_set_free(mq_an_set_t *w) {
  if (!w) return;
  for (size_t b = 0; b < HASH_BUCKETS; b++)
    for (doc_t *d = w->buckets[b], *n; d; d = n) {
      n = d->next;
      doc_free(d);
    }
  for (pos_t *p = w->positions, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  for (size_t i = 0; i < w->n_doomed; i++) free(w->doomed[i]);
  free(w->doomed);
  free(w);
}

/* ---- counters of one document ---- */

static uint64_t cell_hash(uint16_t q, const char *name) {
  return hash_str(name) * 31 + q;
}

static void cells_put(doc_t *d, uint16_t q, const char *name, int64_t delta);

static void cells_grow(doc_t *d) {
  cell_t *old = d->cells;
  size_t old_cap = d->cap_cells;
  d->cap_cells = old_cap ? old_cap * 2 : 32;
  d->cells = mq_xcalloc(d->cap_cells, sizeof *d->cells);
  d->n_cells = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].q) cells_put(d, old[i].q, old[i].name, old[i].v);
  free(old);
}

static void cells_put(doc_t *d, uint16_t q, const char *name, int64_t delta) {
  if ((d->n_cells + 1) * 10 > d->cap_cells * 7) cells_grow(d);
  size_t mask = d->cap_cells - 1, i = (size_t)cell_hash(q, name) & mask;
  while (d->cells[i].q && (d->cells[i].q != q || strcmp(d->cells[i].name, name))) i = (i + 1) & mask;
  if (!d->cells[i].q) {
    d->cells[i].q = q;
    snprintf(d->cells[i].name, sizeof d->cells[i].name, "%s", name);
    d->n_cells++;
  }
  d->cells[i].v += delta;
}

/* ---- documents ---- */

static doc_t *doc_find(mq_an_set_t *w, const char *id, uint64_t h) {
  for (doc_t *d = w->buckets[h % HASH_BUCKETS]; d; d = d->next)
    if (!strcmp(d->id, id)) return d;
  return NULL;
}

static pos_t *pos_get(mq_an_set_t *w, const char *src) {
  for (pos_t *p = w->positions; p; p = p->next)
    if (!strcmp(p->src, src)) return p;
  pos_t *p = mq_xcalloc(1, sizeof *p);
  snprintf(p->src, sizeof p->src, "%s", src);
  p->next_offset = -1;
  p->next = w->positions;
  w->positions = p;
  return p;
}

bool mq_an_add(mq_an_set_t *w, char scope, const char *key, const char *org, int64_t at_ms, const char *src,
               int64_t offset, const char *name, int64_t delta) {
  if ((scope != 'e' && scope != 'o' && scope != 'p') || !safe_token(key, MQ_AN_KEY_MAX) ||
      !safe_token(name, MQ_AN_NAME_MAX - 1) || (org && *org && !safe_token(org, MQ_AN_KEY_MAX)) || !src ||
      strlen(src) >= SRC_MAX || strchr(src, '|') || at_ms < 0 || offset < 0)
    return false;
  if (!delta) return true;
  int64_t day = at_ms / MQ_AN_DAY_MS;
  uint16_t q = (uint16_t)((at_ms % MQ_AN_DAY_MS) / MQ_AN_QUARTER_MS + 1);
  char id[ID_MAX];
  snprintf(id, sizeof id, "%c|%s|%06" PRId64 "|%s", scope, key, day, src);
  uint64_t h = hash_str(id);
  doc_t *d = doc_find(w, id, h);
  if (!d) {
    d = mq_xcalloc(1, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", id);
    d->scope = scope;
    snprintf(d->key, sizeof d->key, "%s", key);
    snprintf(d->src, sizeof d->src, "%s", src);
    d->day = day;
    d->hw = d->new_hw = -1;
    d->next = w->buckets[h % HASH_BUCKETS];
    w->buckets[h % HASH_BUCKETS] = d;
    w->n_docs++;
  }
  if (org && *org && !d->org[0]) snprintf(d->org, sizeof d->org, "%s", org);
  if (d->loaded) { /* A2: only what the stored document does not hold yet */
    if (offset <= d->hw) return true;
    cells_put(d, q, name, delta);
    if (offset > d->new_hw) d->new_hw = offset;
    d->dirty = true;
    w->n_pending++;
    return true;
  }
  if (d->n_pend == d->cap_pend) {
    d->cap_pend = d->cap_pend ? d->cap_pend * 2 : 8;
    d->pend = mq_xrealloc(d->pend, d->cap_pend * sizeof *d->pend);
  }
  contrib_t *c = &d->pend[d->n_pend++];
  c->offset = offset;
  c->delta = delta;
  c->q = q;
  snprintf(c->name, sizeof c->name, "%s", name);
  w->n_pending++;
  return true;
}

void mq_an_read_upto(mq_an_set_t *w, const char *src, int64_t offset, int64_t at_ms) {
  pos_t *p = pos_get(w, src);
  if (offset + 1 > p->next_offset) {
    p->next_offset = offset + 1;
    p->dirty = true;
  }
  if (at_ms > p->at_ms) {
    p->at_ms = at_ms;
    p->dirty = true;
  }
}

void mq_an_caught_up(mq_an_set_t *w, int64_t now_ms) {
  for (pos_t *p = w->positions; p; p = p->next)
    if (p->next_offset >= 0 && p->at_ms < now_ms) {
      p->at_ms = now_ms;
      p->dirty = true;
    }
}

size_t mq_an_pending(const mq_an_set_t *w) {
  return w->n_pending;
}

void mq_an_forget(mq_an_set_t *w, const char *src) {
  for (size_t b = 0; b < HASH_BUCKETS; b++) {
    doc_t **pp = &w->buckets[b];
    while (*pp) {
      doc_t *d = *pp;
      if (!strcmp(d->src, src)) {
        w->n_pending -= d->n_pend;
        *pp = d->next;
        doc_free(d);
        w->n_docs--;
      } else {
        pp = &d->next;
      }
    }
  }
  for (pos_t **pp = &w->positions; *pp; pp = &(*pp)->next)
    if (!strcmp((*pp)->src, src)) {
      pos_t *p = *pp;
      *pp = p->next;
      free(p);
      break;
    }
}

/* ---- the counters' encoding ----
 * Field "c" of a document, binary (subtype 0), so that a reader decodes one
 * value instead of hundreds of keys (the local store converts every key of
 * a stored document on each read):
 *   1 byte version (1); varint n; n names as (1 byte length, bytes);
 *   then, to the end, entries: 1 byte quarter (0..95), varint name index,
 *   zigzag varint value — sorted by quarter then name. */

static void put_varint(uint8_t **p, uint64_t v) {
  while (v >= 0x80) {
    *(*p)++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *(*p)++ = (uint8_t)v;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

typedef void (*cell_visit_fn)(uint16_t q, const char *name, int64_t v, void *arg);

/* Calls fn for each entry of an encoded "c"; false if it is malformed (what
 * was decoded before the fault has been visited). */
static bool cells_decode(const uint8_t *p, size_t len, cell_visit_fn fn, void *arg) {
  const uint8_t *end = p + len;
  uint64_t n;
  if (len < 1 || *p++ != 1 || !get_varint(&p, end, &n) || n > 4096) return false;
  char(*names)[MQ_AN_NAME_MAX] = mq_xmalloc((n ? n : 1) * sizeof *names);
  bool ok = true;
  for (uint64_t i = 0; ok && i < n; i++) {
    size_t l = p < end ? *p++ : MQ_AN_NAME_MAX;
    if (l >= MQ_AN_NAME_MAX || (size_t)(end - p) < l)
      ok = false;
    else
      memcpy(names[i], p, l), names[i][l] = 0, p += l;
  }
  while (ok && p < end) {
    uint16_t q = *p++;
    uint64_t idx, zz;
    if (q >= QUARTERS || !get_varint(&p, end, &idx) || idx >= n || !get_varint(&p, end, &zz)) {
      ok = false;
      break;
    }
    fn(q, names[idx], (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1), arg);
  }
  free(names);
  return ok;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Encodes sorted cells (q = quarter + 1) into a new buffer (*len bytes). */
static uint8_t *cells_encode(const cell_t *c, size_t n, size_t *len) {
  const char **names = mq_xmalloc((n ? n : 1) * sizeof *names);
  size_t nn = 0;
  for (size_t i = 0; i < n; i++) names[nn++] = c[i].name;
  qsort(names, nn, sizeof *names, name_cmp);
  size_t u = 0;
  for (size_t i = 0; i < nn; i++)
    if (!u || strcmp(names[u - 1], names[i])) names[u++] = names[i];
  uint8_t *buf = mq_xmalloc(16 + u * MQ_AN_NAME_MAX + n * 24), *p = buf;
  *p++ = 1;
  put_varint(&p, u);
  for (size_t i = 0; i < u; i++) {
    size_t l = strlen(names[i]);
    *p++ = (uint8_t)l;
    memcpy(p, names[i], l);
    p += l;
  }
  for (size_t i = 0; i < n; i++) {
    const char *key = c[i].name, **hit = bsearch(&key, names, u, sizeof *names, name_cmp);
    *p++ = (uint8_t)(c[i].q - 1);
    put_varint(&p, (uint64_t)(hit - names));
    put_varint(&p, ((uint64_t)c[i].v << 1) ^ (c[i].v < 0 ? UINT64_MAX : 0)); /* zigzag */
  }
  *len = (size_t)(p - buf);
  free(names);
  return buf;
}

static void load_cell(uint16_t q, const char *name, int64_t v, void *arg) {
  cells_put(arg, (uint16_t)(q + 1), name, v);
}

/* A stored version into `d`, replacing what it held from an older one. */
static void doc_load(doc_t *d, const bson_t *b, const char *stored_id) {
  if (d->cap_cells) memset(d->cells, 0, d->cap_cells * sizeof *d->cells);
  d->n_cells = 0;
  snprintf(d->stored, sizeof d->stored, "%s", stored_id);
  d->hw = d->new_hw = mq_bson_get_i64(b, "hw", -1);
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, "org") && BSON_ITER_HOLDS_UTF8(&it) && !d->org[0])
    snprintf(d->org, sizeof d->org, "%s", bson_iter_utf8(&it, NULL));
  if (bson_iter_init_find(&it, b, "c") && BSON_ITER_HOLDS_BINARY(&it)) {
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(&it, NULL, &len, &data);
    cells_decode(data, len, load_cell, d);
  }
}

static void doc_stale(doc_t *d, const char *id) {
  d->stale = mq_xrealloc(d->stale, (d->n_stale + 1) * sizeof *d->stale);
  d->stale[d->n_stale++] = mq_xstrdup(id);
}

static void doc_apply_pending(mq_an_set_t *w, doc_t *d) {
  for (size_t i = 0; i < d->n_pend; i++) {
    contrib_t *c = &d->pend[i];
    if (c->offset <= d->hw) continue; /* A2 */
    cells_put(d, c->q, c->name, c->delta);
    if (c->offset > d->new_hw) d->new_hw = c->offset;
    d->dirty = true;
  }
  w->n_pending -= d->n_pend;
  d->n_pend = 0;
  d->loaded = true;
}

typedef struct {
  mq_an_set_t *w;
} load_ctx_t;

/* One stored version: the newest of a document wins, the others are stale. */
static bool load_one(const bson_t *b, void *arg) {
  load_ctx_t *x = arg;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, b, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) return true;
  const char *id = bson_iter_utf8(&it, NULL);
  if (!bson_iter_init_find(&it, b, "lid") || !BSON_ITER_HOLDS_UTF8(&it)) return true;
  const char *lid = bson_iter_utf8(&it, NULL);
  doc_t *d = doc_find(x->w, lid, hash_str(lid));
  if (!d || d->loaded) return true;
  if (!d->stored[0] || mq_bson_get_i64(b, "hw", -1) > d->hw) {
    if (d->stored[0]) doc_stale(d, d->stored);
    doc_load(d, b, id);
  } else {
    doc_stale(d, id);
  }
  return true;
}

static mq_code_t load_unknown(mq_an_set_t *w, mq_store_t *s, mq_error_t *err) {
  size_t n = 0, cap = 0;
  doc_t **todo = NULL;
  for (size_t b = 0; b < HASH_BUCKETS; b++)
    for (doc_t *d = w->buckets[b]; d; d = d->next)
      if (!d->loaded) {
        if (n == cap) {
          cap = cap ? cap * 2 : 64;
          todo = mq_xrealloc(todo, cap * sizeof *todo);
        }
        todo[n++] = d;
      }
  mq_code_t rc = MQ_OK;
  /* one equality read per document (not lid $in: the local store would scan
   * the whole collection for every chunk; an equality is an index lookup) */
  for (size_t i = 0; rc == MQ_OK && i < n; i++) {
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "lid", todo[i]->id);
    load_ctx_t x = {w};
    rc = mq_store_find_each(s, w->coll, &filter, NULL, load_one, &x, err);
    bson_destroy(&filter);
    if (rc == MQ_OK) doc_apply_pending(w, todo[i]);
  }
  free(todo);
  return rc;
}

static int cell_cmp(const void *a, const void *b) {
  const cell_t *x = a, *y = b;
  if (x->q != y->q) return x->q < y->q ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* The whole document as stored, appended to the empty `out` (quarters and
 * counters in order, zero counters left out, so equal contents make equal
 * documents). */
static void version_id(const char *lid, int64_t hw, char *out, size_t n) {
  snprintf(out, n, "%s@%" PRId64, lid, hw);
}

static void doc_bson(const doc_t *d, bson_t *out) {
  char vid[ID_MAX + 24];
  version_id(d->id, d->new_hw, vid, sizeof vid);
  BSON_APPEND_UTF8(out, "_id", vid);
  BSON_APPEND_UTF8(out, "lid", d->id);
  char scope[2] = {d->scope, 0};
  BSON_APPEND_UTF8(out, "s", scope);
  BSON_APPEND_UTF8(out, "k", d->key);
  BSON_APPEND_INT64(out, "d", d->day);
  BSON_APPEND_UTF8(out, "src", d->src);
  if (d->org[0]) BSON_APPEND_UTF8(out, "org", d->org);
  BSON_APPEND_INT64(out, "hw", d->new_hw);
  cell_t *sorted = mq_xmalloc((d->n_cells ? d->n_cells : 1) * sizeof *sorted);
  size_t n = 0;
  for (size_t i = 0; i < d->cap_cells; i++)
    if (d->cells[i].q && d->cells[i].v) sorted[n++] = d->cells[i];
  qsort(sorted, n, sizeof *sorted, cell_cmp);
  size_t len;
  uint8_t *c = cells_encode(sorted, n, &len);
  BSON_APPEND_BINARY(out, "c", BSON_SUBTYPE_BINARY, c, (uint32_t)len);
  free(c);
  free(sorted);
}

/* Inserts new versions (unordered, one command): a version already stored
 * (the same _id: a flush retried after its answer was lost) is fine, its
 * content being the same function of the same offsets. */
static mq_code_t insert_versions(mq_store_t *s, const char *coll_name, bson_t **docs, size_t n, mq_error_t *err) {
  if (!n) return MQ_OK;
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, coll_name);
  bson_t opts = BSON_INITIALIZER, reply;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  bson_error_t berr = {0};
  bool lane = mq_store_lane_enter(s, c);
  bool ok = mongoc_collection_insert_many(coll, (const bson_t **)docs, n, &opts, &reply, &berr);
  mq_store_lane_leave(s, lane);
  if (!ok) { /* only duplicates? then every version is stored */
    bson_iter_t it, we;
    bool only_dups = bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
                     bson_iter_recurse(&it, &we) && !bson_has_field(&reply, "writeConcernErrors");
    while (only_dups && bson_iter_next(&we)) {
      bson_iter_t f;
      if (!BSON_ITER_HOLDS_DOCUMENT(&we) || !bson_iter_recurse(&we, &f) || !bson_iter_find(&f, "code") ||
          bson_iter_as_int64(&f) != 11000)
        only_dups = false;
    }
    ok = only_dups;
  }
  mq_code_t rc = ok ? MQ_OK : mq_store_error(&berr, coll_name, err);
  bson_destroy(&reply);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

/* Deletes superseded versions by _id, a few hundred per command; what could
 * not be deleted stays doomed for the next flush (readers and loads take the
 * newest version of each document, so a leftover changes no figure). */
static void delete_doomed(mq_an_set_t *w, mq_store_t *s, const char *coll_name) {
  if (!w->n_doomed) return;
  size_t done = 0;
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, coll_name);
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  while (done < w->n_doomed) {
    /* one bulk write of deletes by _id per chunk (not an _id $in delete:
     * the local store would scan the collection for it) */
    size_t m = w->n_doomed - done < LOAD_CHUNK ? w->n_doomed - done : LOAD_CHUNK;
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    for (size_t i = 0; i < m; i++) {
      bson_t sel = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&sel, "_id", w->doomed[done + i]);
      mongoc_bulk_operation_remove_one_with_opts(bulk, &sel, NULL, NULL);
      bson_destroy(&sel);
    }
    bson_error_t berr;
    bool ok = mongoc_bulk_operation_execute(bulk, NULL, &berr) != 0;
    mongoc_bulk_operation_destroy(bulk);
    if (!ok) {
      mq_log(MQ_LOG_WARN, "analytics.delete_failed", "%s: %s (retried at the next flush)", coll_name, berr.message);
      break;
    }
    for (size_t i = 0; i < m; i++) free(w->doomed[done + i]);
    done += m;
  }
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  memmove(w->doomed, w->doomed + done, (w->n_doomed - done) * sizeof *w->doomed);
  w->n_doomed -= done;
}

static void evict(mq_an_set_t *w) {
  if (w->n_docs <= KEEP_DOCS) return;
  for (size_t b = 0; b < HASH_BUCKETS; b++) {
    doc_t **pp = &w->buckets[b];
    while (*pp) {
      doc_t *d = *pp;
      if (!d->dirty && !d->n_pend) {
        *pp = d->next;
        doc_free(d);
        w->n_docs--;
      } else {
        pp = &d->next;
      }
    }
  }
}

mq_code_t mq_an_flush(mq_an_set_t *w, mq_store_t *s, mq_error_t *err) {
  mq_code_t rc = load_unknown(w, s, err);
  if (rc != MQ_OK) return rc;
  size_t n = 0, cap = 64;
  bson_t **docs = mq_xmalloc(cap * sizeof *docs);
  doc_t **written = mq_xmalloc(cap * sizeof *written);
  for (size_t b = 0; b < HASH_BUCKETS; b++)
    for (doc_t *d = w->buckets[b]; d; d = d->next) {
      if (!d->dirty) continue;
      if (n == cap) {
        cap *= 2;
        docs = mq_xrealloc(docs, cap * sizeof *docs);
        written = mq_xrealloc(written, cap * sizeof *written);
      }
      docs[n] = bson_new();
      doc_bson(d, docs[n]);
      written[n++] = d;
    }
  rc = insert_versions(s, w->coll, docs, n, err);
  for (size_t i = 0; i < n; i++) {
    bson_destroy(docs[i]);
    if (rc != MQ_OK) continue;
    doc_t *d = written[i];
    doom(w, d->stored); /* the version it replaces, and any older leftover */
    for (size_t k = 0; k < d->n_stale; k++) {
      doom(w, d->stale[k]);
      free(d->stale[k]);
    }
    d->n_stale = 0;
    version_id(d->id, d->new_hw, d->stored, sizeof d->stored);
    d->hw = d->new_hw;
    d->dirty = false;
  }
  free(docs);
  free(written);
  if (rc != MQ_OK) return rc;
  w->n_pending = 0;
  delete_doomed(w, s, w->coll);
  /* A3: the positions, after the documents; versioned the same way */
  size_t np = 0;
  for (pos_t *p = w->positions; p; p = p->next) np += p->dirty;
  bson_t **pd = mq_xmalloc((np ? np : 1) * sizeof *pd);
  np = 0;
  for (pos_t *p = w->positions; p; p = p->next) {
    if (!p->dirty) continue;
    char vid[SRC_MAX + 48];
    snprintf(vid, sizeof vid, "%s@%" PRId64 "@%" PRId64, p->src, p->next_offset, p->at_ms);
    pd[np] = bson_new();
    BSON_APPEND_UTF8(pd[np], "_id", vid);
    BSON_APPEND_UTF8(pd[np], "lid", p->src);
    BSON_APPEND_INT64(pd[np], "hw", p->next_offset);
    BSON_APPEND_INT64(pd[np], "next", p->next_offset);
    BSON_APPEND_DATE_TIME(pd[np], "at", p->at_ms);
    np++;
  }
  rc = insert_versions(s, w->pos_coll, pd, np, err);
  for (size_t i = 0; i < np; i++) bson_destroy(pd[i]);
  free(pd);
  if (rc == MQ_OK) {
    size_t before = w->n_doomed;
    for (pos_t *p = w->positions; p; p = p->next) {
      if (!p->dirty) continue;
      doom(w, p->stored);
      snprintf(p->stored, sizeof p->stored, "%s@%" PRId64 "@%" PRId64, p->src, p->next_offset, p->at_ms);
      p->dirty = false;
    }
    /* positions' leftovers go with the position collection's own delete */
    if (w->n_doomed > before) {
      size_t keep = before;
      char **mine = w->doomed + before;
      size_t n_mine = w->n_doomed - before;
      mq_an_set_t tmp = {.doomed = mine, .n_doomed = n_mine, .cap_doomed = n_mine};
      delete_doomed(&tmp, s, w->pos_coll);
      for (size_t i = 0; i < tmp.n_doomed; i++) free(tmp.doomed[i]); /* a leftover position changes nothing */
      w->n_doomed = keep;
    }
  }
  evict(w);
  return rc;
}

void mq_an_assign(mq_an_set_t *w, const char *src, int64_t next, int64_t at_ms) {
  mq_an_forget(w, src);
  if (next < 0) return;
  pos_t *p = pos_get(w, src);
  p->next_offset = next;
  p->at_ms = at_ms;
}

typedef struct {
  int64_t hw, at;
  bool any;
} newest_t;

static bool newest_one(const bson_t *b, void *arg) {
  newest_t *x = arg;
  int64_t hw = mq_bson_get_i64(b, "hw", -1);
  if (!x->any || hw > x->hw) {
    x->hw = hw;
    x->at = mq_bson_get_date_ms(b, "at", 0);
  }
  x->any = true;
  return true;
}

mq_code_t mq_an_position(mq_store_t *s, int64_t gen, const char *src, int64_t *next, int64_t *at_ms, mq_error_t *err) {
  char coll[48];
  pos_collection(gen, coll, sizeof coll);
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "lid", src);
  newest_t x = {0};
  mq_code_t rc = mq_store_find_each(s, coll, &filter, NULL, newest_one, &x, err);
  bson_destroy(&filter);
  *next = x.any ? x.hw : -1;
  *at_ms = x.any ? x.at : 0;
  return rc;
}

mq_code_t mq_an_ensure_indexes(mq_store_t *s, int64_t gen, mq_error_t *err) {
  char coll[48];
  mq_an_collection(gen, coll, sizeof coll);
  char pos[48];
  pos_collection(gen, pos, sizeof pos);
  const mq_index_spec_t specs[] = {
      {coll, "lid_hw", "{\"lid\": 1, \"hw\": -1}", false},
      {coll, "scope_org_day", "{\"s\": 1, \"org\": 1, \"d\": 1}", false},
      /* first keys the dashboards' equalities name (the local store indexes
       * only an index's first key, and no range: ARCHITECTURE.md) */
      {coll, "key_scope_day", "{\"k\": 1, \"s\": 1, \"d\": 1}", false},
      {coll, "org_scope_day", "{\"org\": 1, \"s\": 1, \"d\": 1}", false},
      {pos, "lid_hw", "{\"lid\": 1, \"hw\": -1}", false},
  };
  return mq_store_ensure_indexes(s, specs, sizeof specs / sizeof *specs, err);
}

/* ---- generations ---- */

mq_code_t mq_an_current(mq_store_t *s, int64_t *gen, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, doc;
  BSON_APPEND_UTF8(&filter, "_id", "current");
  mq_code_t rc = mq_store_find_one(s, MQ_AN_META, &filter, NULL, &doc, err);
  bson_destroy(&filter);
  *gen = 0;
  if (rc == MQ_NOT_FOUND) return MQ_OK;
  if (rc != MQ_OK) return rc;
  *gen = mq_bson_get_i64(&doc, "gen", 0);
  bson_destroy(&doc);
  return MQ_OK;
}

static mq_code_t drop_collection(mq_store_t *s, const char *name, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, name);
  bson_error_t berr;
  bool ok = mongoc_collection_drop(coll, &berr);
  /* 26: NamespaceNotFound (MongoDB), absent collections are already dropped */
  mq_code_t rc = ok || berr.code == 26 || strstr(berr.message, "not found") ? MQ_OK : mq_store_error(&berr, name, err);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

mq_code_t mq_an_drop(mq_store_t *s, int64_t gen, mq_error_t *err) {
  char a[48], b[48];
  mq_an_collection(gen, a, sizeof a);
  pos_collection(gen, b, sizeof b);
  mq_code_t rc = drop_collection(s, a, err);
  if (rc == MQ_OK) rc = drop_collection(s, b, err);
  return rc;
}

/* The one document of analytics_meta, replaced whole (one writer: the consumer that swaps). */
static mq_code_t replace_meta(mq_store_t *s, const bson_t *doc, mq_error_t *err) {
  mongoc_client_t *c = mq_store_acquire(s);
  mongoc_collection_t *coll = mq_store_collection(s, c, MQ_AN_META);
  bson_t sel = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sel, "_id", "current");
  BSON_APPEND_BOOL(&opts, "upsert", true);
  bson_error_t berr;
  bool ok = mongoc_collection_replace_one(coll, &sel, doc, &opts, NULL, &berr);
  mq_code_t rc = ok ? MQ_OK : mq_store_error(&berr, MQ_AN_META, err);
  bson_destroy(&sel);
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mq_store_release(s, c);
  return rc;
}

mq_code_t mq_an_set_current(mq_store_t *s, int64_t gen, mq_error_t *err) {
  int64_t old = 0;
  mq_code_t rc = mq_an_current(s, &old, err);
  if (rc != MQ_OK) return rc;
  bson_t *doc = bson_new();
  BSON_APPEND_UTF8(doc, "_id", "current");
  BSON_APPEND_INT64(doc, "gen", gen);
  rc = replace_meta(s, doc, err);
  bson_destroy(doc);
  for (int64_t g = old; rc == MQ_OK && g >= 1 && g < gen; g--) rc = mq_an_drop(s, g, err);
  return rc;
}

/* ---- reading ---- */

typedef struct {
  int64_t from_ms, to_ms;
  mq_an_cell_fn fn;
  void *arg;
  char last_lid[ID_MAX]; /* versions come newest first per document: the others are skipped */
  mq_an_cell_t cell;     /* the document being visited */
  int64_t day_ms;
} scan_ctx_t;

static void scan_cell(uint16_t q, const char *name, int64_t v, void *arg) {
  scan_ctx_t *x = arg;
  int64_t at = x->day_ms + q * MQ_AN_QUARTER_MS;
  if (at < x->from_ms || at >= x->to_ms) return;
  x->cell.at_ms = at;
  x->cell.name = name;
  x->cell.value = v;
  x->fn(&x->cell, x->arg);
}

static bool scan_one(const bson_t *b, void *arg) {
  scan_ctx_t *x = arg;
  bson_iter_t it;
  char scope = 0;
  const char *key = "", *org = "", *lid = "";
  if (bson_iter_init_find(&it, b, "lid") && BSON_ITER_HOLDS_UTF8(&it)) lid = bson_iter_utf8(&it, NULL);
  if (!strcmp(lid, x->last_lid)) return true;
  snprintf(x->last_lid, sizeof x->last_lid, "%s", lid);
  if (bson_iter_init_find(&it, b, "s") && BSON_ITER_HOLDS_UTF8(&it)) scope = bson_iter_utf8(&it, NULL)[0];
  if (bson_iter_init_find(&it, b, "k") && BSON_ITER_HOLDS_UTF8(&it)) key = bson_iter_utf8(&it, NULL);
  if (bson_iter_init_find(&it, b, "org") && BSON_ITER_HOLDS_UTF8(&it)) org = bson_iter_utf8(&it, NULL);
  int64_t day = mq_bson_get_i64(b, "d", -1);
  if (day < 0 || !bson_iter_init_find(&it, b, "c") || !BSON_ITER_HOLDS_BINARY(&it)) return true;
  uint32_t len;
  const uint8_t *data;
  bson_iter_binary(&it, NULL, &len, &data);
  x->cell = (mq_an_cell_t){scope, key, org, 0, NULL, 0};
  x->day_ms = day * MQ_AN_DAY_MS;
  cells_decode(data, len, scan_cell, x);
  return true;
}

mq_code_t mq_an_scan(mq_store_t *s, int64_t gen, char scope, const char *key, const char *org, int64_t from_ms,
                     int64_t to_ms, mq_an_cell_fn fn, void *arg, mq_error_t *err) {
  if (from_ms < 0) from_ms = 0;
  if (to_ms <= from_ms) return MQ_OK;
  if (key && !safe_token(key, MQ_AN_KEY_MAX)) return MQ_OK; /* no document has such a key */
  char coll[48], sc[2] = {scope, 0};
  mq_an_collection(gen, coll, sizeof coll);
  int64_t d0 = from_ms / MQ_AN_DAY_MS, d1 = (to_ms - 1) / MQ_AN_DAY_MS;
  bson_t filter = BSON_INITIALIZER, range, opts = BSON_INITIALIZER, sort;
  if (key || !org) { /* a range of logical ids: "<s>|<key>|<day>|…" sorts by day (the index lid_hw) */
    char lo[ID_MAX], hi[ID_MAX];
    if (key) {
      snprintf(lo, sizeof lo, "%c|%s|%06" PRId64 "|", scope, key, d0);
      snprintf(hi, sizeof hi, "%c|%s|%06" PRId64 "|", scope, key, d1 + 1);
    } else {
      snprintf(lo, sizeof lo, "%c|", scope);
      snprintf(hi, sizeof hi, "%c}", scope); /* '}' follows '|' */
    }
    if (key) { /* implied by the range; named so that the local store reads one key's documents */
      BSON_APPEND_UTF8(&filter, "k", key);
      BSON_APPEND_UTF8(&filter, "s", sc);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "lid", &range);
    BSON_APPEND_UTF8(&range, "$gte", lo);
    BSON_APPEND_UTF8(&range, "$lt", hi);
    bson_append_document_end(&filter, &range);
    if (!key) {
      BSON_APPEND_UTF8(&filter, "s", sc);
      BSON_APPEND_DOCUMENT_BEGIN(&filter, "d", &range);
      BSON_APPEND_INT64(&range, "$gte", d0);
      BSON_APPEND_INT64(&range, "$lte", d1);
      bson_append_document_end(&filter, &range);
    }
  } else {
    BSON_APPEND_UTF8(&filter, "s", sc);
    BSON_APPEND_UTF8(&filter, "org", org);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "d", &range);
    BSON_APPEND_INT64(&range, "$gte", d0);
    BSON_APPEND_INT64(&range, "$lte", d1);
    bson_append_document_end(&filter, &range);
  }
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "lid", 1);
  BSON_APPEND_INT32(&sort, "hw", -1);
  bson_append_document_end(&opts, &sort);
  scan_ctx_t x = {.from_ms = from_ms, .to_ms = to_ms, .fn = fn, .arg = arg};
  mq_code_t rc = mq_store_find_each(s, coll, &filter, &opts, scan_one, &x, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

typedef struct {
  struct {
    char lid[SRC_MAX];
    int64_t hw, at;
  } p[64];
  size_t n;
} complete_ctx_t;

static bool complete_one(const bson_t *b, void *arg) {
  complete_ctx_t *x = arg;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, b, "lid") || !BSON_ITER_HOLDS_UTF8(&it)) return true;
  const char *lid = bson_iter_utf8(&it, NULL);
  int64_t hw = mq_bson_get_i64(b, "hw", -1), at = mq_bson_get_date_ms(b, "at", 0);
  size_t i = 0;
  while (i < x->n && strcmp(x->p[i].lid, lid)) i++;
  if (i == x->n) {
    if (x->n == sizeof x->p / sizeof *x->p) return true;
    snprintf(x->p[i].lid, sizeof x->p[i].lid, "%s", lid);
    x->p[i].hw = -2;
    x->n++;
  }
  if (hw > x->p[i].hw) x->p[i].hw = hw, x->p[i].at = at;
  return true;
}

mq_code_t mq_an_complete_until(mq_store_t *s, int64_t gen, int64_t *complete_ms, mq_error_t *err) {
  char coll[48];
  pos_collection(gen, coll, sizeof coll);
  bson_t filter = BSON_INITIALIZER;
  complete_ctx_t x;
  x.n = 0;
  mq_code_t rc = mq_store_find_each(s, coll, &filter, NULL, complete_one, &x, err);
  bson_destroy(&filter);
  *complete_ms = 0;
  for (size_t i = 0; i < x.n; i++)
    if (!i || x.p[i].at < *complete_ms) *complete_ms = x.p[i].at;
  return rc;
}
