/*
 * categories.c — marquee.catalog.v1.CategoryService: the category tree that
 * administrators curate and everyone reads (proto/marquee/catalog/v1/
 * categories.proto says who may call what and which status each refusal
 * gives).
 *
 * Writes are MQ_POLICY_ADMIN rows; reads are MQ_POLICY_PUBLIC, and a token,
 * when sent, only matters for include_retired (admins only). The tree's
 * invariants — a forest, at most MQ_CATEGORY_MAX_DEPTH levels, no active
 * child under a retired category — span several documents, so every change
 * of the tree's shape (create, move, retire) runs under the store's tree
 * lease:
 *
 *   validate → take lease → load whole tree → check invariants → write doc + event → give lease back
 *              (still held by another after LEASE_WAIT_MS: UNAVAILABLE; every refusal gives it back too)
 *
 * Renames touch one document and take no lease. Reads never lock: the list
 * is built from one scan, so it shows the tree as of that scan; categories
 * whose ancestry is broken (which the lease makes impossible short of
 * manual edits) are left out and logged. Every write carries
 * CategoryChanged (topic marquee.events) in the same document write.
 * Read next: store/catalog/categories_store.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "handlers/catalog/catalog.h"
#include "handlers/mq_app.h"
#include "lib/mq_validate.h"
#include "marquee/catalog/v1/categories.mq-server.h"
#include "store/catalog/categories_store.h"
#include "store/mq_bson.h"

#define TOPIC "marquee.events"
#define EVENT_TYPE "catalog.CategoryChanged"
#define LEASE_WAIT_MS 3000
#define NAME_MAX_BYTES 80
#define MAX_WALK 16 /* ancestry walks stop here: only corrupt data gets this far */

typedef Marquee__Catalog__V1__Category category_pb_t;
typedef Marquee__Catalog__V1__CategoryName name_pb_t;

static bool caller_is_admin(const mq_call_t *call) {
  const mq_principal_t *who = mq_call_principal(call);
  return who && (who->roles & MQ_ROLE_ADMIN);
}

/* ---- validation ------------------------------------------------------------------ */

static mq_code_t check_slug(const char *slug, mq_error_t *err) {
  size_t n = slug ? strlen(slug) : 0;
  bool ok = n >= 2 && n <= 60 && slug[0] != '-' && slug[n - 1] != '-';
  for (size_t i = 0; ok && i < n; i++)
    ok = (slug[i] >= 'a' && slug[i] <= 'z') || (slug[i] >= '0' && slug[i] <= '9') || slug[i] == '-';
  return ok ? MQ_OK
            : mq_error_set(err, MQ_INVALID_ARGUMENT, "slug", "must be 2-60 of a-z, 0-9 and '-', not at the ends");
}

/* Validates the requested names and copies them into an arena array; every
 * bad entry is reported (callers collect, core/mq_error.h). */
static mq_code_t check_names(mq_arena_t *a, name_pb_t *const *names, size_t n, mq_category_name_t **out,
                             mq_error_t *err) {
  if (n == 0) return mq_error_set(err, MQ_INVALID_ARGUMENT, "names", "at least an \"en\" name is required");
  mq_code_t rc = mq_check_count(err, "names", n, MQ_CATEGORY_MAX_NAMES);
  if (rc != MQ_OK) return rc;
  mq_category_name_t *v = mq_arena_alloc(a, n * sizeof *v);
  bool has_en = false;
  char field[48];
  for (size_t i = 0; i < n; i++) {
    const char *locale = names[i] ? names[i]->locale : "", *name = names[i] ? names[i]->name : "";
    v[i].locale = locale;
    v[i].name = name;
    snprintf(field, sizeof field, "names[%zu].locale", i);
    mq_code_t one = mq_check_language(err, field, locale);
    for (size_t k = 0; one == MQ_OK && k < i; k++)
      if (!strcmp(v[k].locale, locale))
        one = mq_error_set(err, MQ_INVALID_ARGUMENT, field, "this locale already has a name");
    snprintf(field, sizeof field, "names[%zu].name", i);
    if (mq_check_text(err, field, name, 1, NAME_MAX_BYTES, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) != MQ_OK)
      one = MQ_INVALID_ARGUMENT;
    if (one != MQ_OK && rc == MQ_OK) rc = one;
    has_en |= !strcmp(locale, "en");
  }
  if (!has_en && rc == MQ_OK) rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "names", "an \"en\" name is required");
  if (rc == MQ_OK) *out = v;
  return rc;
}

static mq_code_t check_optional_uuid(mq_error_t *err, const char *field, const char *v) {
  return v && v[0] ? mq_check_uuid(err, field, v) : MQ_OK;
}

static mq_code_t check_optional_locale(mq_error_t *err, const char *v) {
  return v && v[0] ? mq_check_language(err, "locale", v) : MQ_OK;
}

/* ---- presentation ---------------------------------------------------------------- */

/* The name in `locale`, else its language alone ("pt" for "pt-BR"), else
 * "en", else the first. */
static const char *display_name(const mq_category_t *c, const char *locale) {
  if (c->n_names == 0) return c->slug;
  const char *want = locale && locale[0] ? locale : "en";
  size_t lang = strcspn(want, "-");
  for (size_t i = 0; i < c->n_names; i++)
    if (!strcmp(c->names[i].locale, want)) return c->names[i].name;
  for (size_t i = 0; i < c->n_names; i++)
    if (strlen(c->names[i].locale) == lang && !strncmp(c->names[i].locale, want, lang)) return c->names[i].name;
  for (size_t i = 0; i < c->n_names; i++)
    if (!strcmp(c->names[i].locale, "en")) return c->names[i].name;
  return c->names[0].name;
}

static category_pb_t *category_to_pb(mq_arena_t *a, const mq_category_t *c, const char *path, unsigned depth,
                                     const char *locale) {
  category_pb_t *p = mq_arena_alloc(a, sizeof *p);
  marquee__catalog__v1__category__init(p);
  p->category_id = (char *)c->id;
  p->slug = (char *)c->slug;
  p->parent_id = (char *)(c->parent_id ? c->parent_id : "");
  p->names = mq_arena_alloc(a, (c->n_names ? c->n_names : 1) * sizeof *p->names);
  for (size_t i = 0; i < c->n_names; i++) {
    name_pb_t *n = mq_arena_alloc(a, sizeof *n);
    marquee__catalog__v1__category_name__init(n);
    n->locale = (char *)c->names[i].locale;
    n->name = (char *)c->names[i].name;
    p->names[p->n_names++] = n;
  }
  p->sort_order = c->sort_order;
  p->retired = c->retired;
  p->created_at = mq_pb_timestamp(a, c->created_ms);
  p->updated_at = mq_pb_timestamp(a, c->updated_ms);
  p->path = (char *)path;
  p->depth = depth;
  p->display_name = (char *)display_name(c, locale);
  return p;
}

/* Path and depth of one category by walking up its ancestors (at most
 * MQ_CATEGORY_MAX_DEPTH - 1 reads on a sound tree). */
static mq_code_t ancestry(mq_call_t *call, const mq_category_t *c, const char **path, unsigned *depth,
                          mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  const char *p = c->slug, *parent = c->parent_id;
  unsigned d = 1;
  while (parent[0] && d < MAX_WALK) {
    mq_category_t up;
    mq_code_t rc = mq_categories_get(app->store, parent, a, &up, err);
    if (rc == MQ_NOT_FOUND) {
      mq_log(MQ_LOG_WARN, "catalog.category_orphan", "category %s names a missing parent %s", c->id, parent);
      break;
    }
    if (rc != MQ_OK) return rc;
    p = mq_arena_sprintf(a, "%s/%s", up.slug, p);
    parent = up.parent_id;
    d++;
  }
  *path = p;
  *depth = d;
  return MQ_OK;
}

/* ---- the whole tree in memory ------------------------------------------------------ */

typedef struct {
  const char *id;
  size_t i;
} id_entry_t;

typedef struct tree {
  mq_category_t *c;
  size_t n;
  int *parent;     /* index of the parent; -1 for a root or a missing parent */
  unsigned *depth; /* 1 for a root; 0 if the ancestry is broken (missing parent, cycle) */
  id_entry_t *ids; /* (id, index) sorted by id, for lookups */
} tree_t;

static int cmp_id(const void *x, const void *y) {
  return strcmp(((const id_entry_t *)x)->id, ((const id_entry_t *)y)->id);
}

/* Index of the category with this id, or -1. */
static int tree_index(const tree_t *t, const char *id) {
  id_entry_t key = {id, 0};
  const id_entry_t *hit = t->n ? bsearch(&key, t->ids, t->n, sizeof *t->ids, cmp_id) : NULL;
  return hit ? (int)hit->i : -1;
}

static mq_code_t tree_load(mq_call_t *call, bool include_retired, tree_t *t, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  memset(t, 0, sizeof *t);
  mq_code_t rc = mq_categories_list(app->store, include_retired, a, &t->c, &t->n, err);
  if (rc != MQ_OK) return rc;
  size_t n = t->n ? t->n : 1;
  t->ids = mq_arena_alloc(a, n * sizeof *t->ids);
  t->parent = mq_arena_alloc(a, n * sizeof *t->parent);
  t->depth = mq_arena_alloc(a, n * sizeof *t->depth);
  for (size_t i = 0; i < t->n; i++) t->ids[i] = (id_entry_t){t->c[i].id, i};
  if (t->n) qsort(t->ids, t->n, sizeof *t->ids, cmp_id);
  for (size_t i = 0; i < t->n; i++) t->parent[i] = t->c[i].parent_id[0] ? tree_index(t, t->c[i].parent_id) : -1;
  for (size_t i = 0; i < t->n; i++) {
    unsigned d = 1;
    size_t j = i;
    while (t->c[j].parent_id[0] && d <= MAX_WALK) {
      if (t->parent[j] < 0) break;
      j = (size_t)t->parent[j];
      d++;
    }
    bool sound = !t->c[j].parent_id[0] && d <= MAX_WALK;
    t->depth[i] = sound ? d : 0;
  }
  return MQ_OK;
}

/* Is `anc` an ancestor of `i` (or `i` itself)? */
static bool tree_descends(const tree_t *t, size_t i, size_t anc) {
  int j = (int)i;
  for (unsigned steps = 0; j >= 0 && steps <= MAX_WALK; steps++) {
    if ((size_t)j == anc) return true;
    j = t->parent[j];
  }
  return false;
}

static const char *tree_path(mq_arena_t *a, const tree_t *t, size_t i) {
  const char *p = t->c[i].slug;
  int j = t->parent[i];
  for (unsigned steps = 0; j >= 0 && steps < MAX_WALK; steps++) {
    p = mq_arena_sprintf(a, "%s/%s", t->c[j].slug, p);
    j = t->parent[j];
  }
  return p;
}

/* Levels of the subtree rooted at `root` (1 for a leaf). */
static unsigned tree_height(const tree_t *t, size_t root) {
  unsigned h = 1;
  for (size_t i = 0; i < t->n; i++) {
    int j = (int)i;
    for (unsigned d = 1; j >= 0 && d <= MAX_WALK; d++, j = t->parent[j])
      if ((size_t)j == root) {
        if (d > h) h = d;
        break;
      }
  }
  return h;
}

/* ---- events and the lease ---------------------------------------------------------- */

static void category_event(mq_event_t *ev, Marquee__Events__V1__CategoryChanged *pl, mq_call_t *call, const char *id,
                           const char *change, const char *parent_id) {
  marquee__events__v1__category_changed__init(pl);
  pl->category_id = (char *)id;
  pl->change = (char *)change;
  pl->parent_id = (char *)(parent_id ? parent_id : "");
  mq_event_init(ev, TOPIC, EVENT_TYPE, id, mq_call_principal(call)->subject, mq_call_trace_id(call),
                mq_call_request_id(call));
  ev->env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_CATEGORY_CHANGED;
  ev->env.category_changed = pl;
}

static mq_code_t lease_take(mq_call_t *call, char holder[37], mq_error_t *err) {
  mq_uuid_v4(holder);
  int64_t wait = mq_call_remaining_ms(call);
  if (wait > LEASE_WAIT_MS) wait = LEASE_WAIT_MS;
  return mq_categories_lock_tree(((mq_app_t *)mq_call_app(call))->store, holder, wait > 0 ? wait : 0, err);
}

static void lease_give(mq_call_t *call, const char *holder) {
  mq_categories_unlock_tree(((mq_app_t *)mq_call_app(call))->store, holder);
}

/* ---- writes (admin) ---------------------------------------------------------------- */

static mq_code_t cat_create(mq_call_t *call, const Marquee__Catalog__V1__CreateCategoryRequest *req,
                            category_pb_t *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_category_name_t *names = NULL;
  mq_error_collect(err); /* every bad field, not just the first */
  check_slug(req->slug, err);
  check_optional_uuid(err, "parent_id", req->parent_id);
  check_names(a, req->names, req->n_names, &names, err);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  char holder[37];
  if ((rc = lease_take(call, holder, err)) != MQ_OK) return rc;
  tree_t t;
  const char *path = req->slug;
  unsigned depth = 1;
  if ((rc = tree_load(call, true, &t, err)) != MQ_OK) goto cleanup;
  if (t.n >= MQ_CATEGORIES_MAX) {
    rc = mq_error_set(err, MQ_RESOURCE_EXHAUSTED, NULL, "the catalog holds at most %d categories", MQ_CATEGORIES_MAX);
    goto cleanup;
  }
  if (req->parent_id[0]) {
    int p = tree_index(&t, req->parent_id);
    if (p < 0) {
      rc = mq_error_set(err, MQ_NOT_FOUND, "parent_id", "no such category");
    } else if (t.c[p].retired) {
      rc = mq_error_set(err, MQ_FAILED_PRECONDITION, "parent_id", "this category is retired");
    } else if (t.depth[p] == 0) {
      mq_log(MQ_LOG_ERROR, "catalog.category_orphan", "category %s has a broken ancestry", t.c[p].id);
      rc = mq_error_set(err, MQ_INTERNAL, NULL, NULL);
    } else if (t.depth[p] >= MQ_CATEGORY_MAX_DEPTH) {
      rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "parent_id", "categories nest at most %d levels deep",
                        MQ_CATEGORY_MAX_DEPTH);
    } else {
      path = mq_arena_sprintf(a, "%s/%s", tree_path(a, &t, (size_t)p), req->slug);
      depth = t.depth[p] + 1;
    }
    if (rc != MQ_OK) goto cleanup;
  }
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  int64_t now = mq_now_unix_ms();
  mq_category_t c = {id, req->slug, req->parent_id, names, req->n_names, req->sort_order, false, now, now};
  Marquee__Events__V1__CategoryChanged pl;
  mq_event_t ev;
  category_event(&ev, &pl, call, id, "created", req->parent_id);
  if ((rc = mq_categories_create(app->store, &c, &ev, err)) != MQ_OK) goto cleanup;
  *resp = *category_to_pb(a, &c, path, depth, NULL);
cleanup:
  lease_give(call, holder);
  return rc;
}

static mq_code_t cat_rename(mq_call_t *call, const Marquee__Catalog__V1__RenameCategoryRequest *req,
                            category_pb_t *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_category_name_t *names = NULL;
  mq_error_collect(err);
  mq_check_uuid(err, "category_id", req->category_id);
  check_names(a, req->names, req->n_names, &names, err);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  mq_category_t c;
  rc = mq_categories_get(app->store, req->category_id, a, &c, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "category_id", "no such category");
  if (rc != MQ_OK) return rc;
  c.names = names;
  c.n_names = req->n_names;
  c.updated_ms = mq_now_unix_ms();
  Marquee__Events__V1__CategoryChanged pl;
  mq_event_t ev;
  category_event(&ev, &pl, call, c.id, "renamed", c.parent_id);
  if ((rc = mq_categories_set_names(app->store, c.id, names, req->n_names, c.updated_ms, &ev, err)) != MQ_OK) return rc;
  const char *path;
  unsigned depth;
  if ((rc = ancestry(call, &c, &path, &depth, err)) != MQ_OK) return rc;
  *resp = *category_to_pb(a, &c, path, depth, NULL);
  return MQ_OK;
}

static mq_code_t cat_move(mq_call_t *call, const Marquee__Catalog__V1__MoveCategoryRequest *req, category_pb_t *resp,
                          mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err);
  mq_check_uuid(err, "category_id", req->category_id);
  check_optional_uuid(err, "parent_id", req->parent_id);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  char holder[37];
  if ((rc = lease_take(call, holder, err)) != MQ_OK) return rc;
  tree_t t;
  if ((rc = tree_load(call, true, &t, err)) != MQ_OK) goto cleanup;
  int self = tree_index(&t, req->category_id), p = -1;
  if (self < 0) {
    rc = mq_error_set(err, MQ_NOT_FOUND, "category_id", "no such category");
    goto cleanup;
  }
  unsigned new_depth = 1;
  if (req->parent_id[0]) {
    p = tree_index(&t, req->parent_id);
    if (p < 0) {
      rc = mq_error_set(err, MQ_NOT_FOUND, "parent_id", "no such category");
    } else if (tree_descends(&t, (size_t)p, (size_t)self)) {
      rc = mq_error_set(err, MQ_FAILED_PRECONDITION, "parent_id",
                        "a category cannot move under itself or one of its descendants");
    } else if (t.c[p].retired) {
      rc = mq_error_set(err, MQ_FAILED_PRECONDITION, "parent_id", "this category is retired");
    } else if (t.depth[p] == 0 || t.depth[self] == 0) {
      mq_log(MQ_LOG_ERROR, "catalog.category_orphan", "the ancestry of %s or %s is broken", t.c[p].id, t.c[self].id);
      rc = mq_error_set(err, MQ_INTERNAL, NULL, NULL);
    } else {
      new_depth = t.depth[p] + 1;
    }
    if (rc != MQ_OK) goto cleanup;
  }
  if (new_depth + tree_height(&t, (size_t)self) - 1 > MQ_CATEGORY_MAX_DEPTH) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, "parent_id",
                      "the category and its subcategories would nest more than %d levels deep", MQ_CATEGORY_MAX_DEPTH);
    goto cleanup;
  }
  mq_category_t c = t.c[self];
  if (strcmp(c.parent_id, req->parent_id) != 0 || c.sort_order != req->sort_order) {
    c.parent_id = req->parent_id;
    c.sort_order = req->sort_order;
    c.updated_ms = mq_now_unix_ms();
    Marquee__Events__V1__CategoryChanged pl;
    mq_event_t ev;
    category_event(&ev, &pl, call, c.id, "moved", c.parent_id);
    if ((rc = mq_categories_set_parent(app->store, c.id, c.parent_id, c.sort_order, c.updated_ms, &ev, err)) != MQ_OK)
      goto cleanup;
  }
  const char *path = p >= 0 ? mq_arena_sprintf(a, "%s/%s", tree_path(a, &t, (size_t)p), c.slug) : c.slug;
  *resp = *category_to_pb(a, &c, path, new_depth, NULL);
cleanup:
  lease_give(call, holder);
  return rc;
}

static mq_code_t cat_retire(mq_call_t *call, const Marquee__Catalog__V1__RetireCategoryRequest *req,
                            category_pb_t *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "category_id", req->category_id);
  if (rc != MQ_OK) return rc;
  char holder[37];
  if ((rc = lease_take(call, holder, err)) != MQ_OK) return rc;
  tree_t t;
  if ((rc = tree_load(call, true, &t, err)) != MQ_OK) goto cleanup;
  int self = tree_index(&t, req->category_id);
  if (self < 0) {
    rc = mq_error_set(err, MQ_NOT_FOUND, "category_id", "no such category");
    goto cleanup;
  }
  mq_category_t c = t.c[self];
  if (!c.retired) {
    for (size_t i = 0; i < t.n; i++)
      if (t.parent[i] == self && !t.c[i].retired) {
        rc = mq_error_set(err, MQ_FAILED_PRECONDITION, "category_id",
                          "it has active subcategories (e.g. \"%s\"); retire or move them first", t.c[i].slug);
        goto cleanup;
      }
    c.retired = true;
    c.updated_ms = mq_now_unix_ms();
    Marquee__Events__V1__CategoryChanged pl;
    mq_event_t ev;
    category_event(&ev, &pl, call, c.id, "retired", c.parent_id);
    if ((rc = mq_categories_retire(app->store, c.id, c.updated_ms, &ev, err)) != MQ_OK) goto cleanup;
  }
  *resp = *category_to_pb(a, &c, tree_path(a, &t, (size_t)self), t.depth[self], NULL);
cleanup:
  lease_give(call, holder);
  return rc;
}

/* ---- reads (public) ----------------------------------------------------------------- */

static mq_code_t cat_get(mq_call_t *call, const Marquee__Catalog__V1__GetCategoryRequest *req, category_pb_t *resp,
                         mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "category_id", req->category_id);
  if (rc == MQ_OK) rc = check_optional_locale(err, req->locale);
  if (rc != MQ_OK) return rc;
  mq_category_t c;
  rc = mq_categories_get(app->store, req->category_id, a, &c, err);
  if (rc == MQ_OK && c.retired && !(req->include_retired && caller_is_admin(call))) rc = MQ_NOT_FOUND;
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "category_id", "no such category");
  if (rc != MQ_OK) return rc;
  const char *path;
  unsigned depth;
  if ((rc = ancestry(call, &c, &path, &depth, err)) != MQ_OK) return rc;
  *resp = *category_to_pb(a, &c, path, depth, req->locale);
  return MQ_OK;
}

typedef struct {
  int32_t sort_order;
  const char *name, *slug;
  size_t i;
} sibling_key_t;

static int cmp_sibling(const void *x, const void *y) {
  const sibling_key_t *p = x, *q = y;
  if (p->sort_order != q->sort_order) return p->sort_order < q->sort_order ? -1 : 1;
  int c = strcmp(p->name, q->name);
  return c ? c : strcmp(p->slug, q->slug);
}

typedef struct {
  const tree_t *t;
  int *first_child, *next_sibling; /* index n stands for "the roots" */
  const char *locale;
  mq_arena_t *a;
  Marquee__Catalog__V1__ListCategoriesResponse *resp;
} emit_ctx_t;

/* Depth first from `node`'s children; the depth bound keeps recursion short. */
static void emit_children(emit_ctx_t *e, size_t node, const char *path) {
  for (int i = e->first_child[node]; i >= 0; i = e->next_sibling[i]) {
    const mq_category_t *c = &e->t->c[i];
    const char *p = path ? mq_arena_sprintf(e->a, "%s/%s", path, c->slug) : c->slug;
    e->resp->categories[e->resp->n_categories++] = category_to_pb(e->a, c, p, e->t->depth[i], e->locale);
    emit_children(e, (size_t)i, p);
  }
}

static mq_code_t cat_list(mq_call_t *call, const Marquee__Catalog__V1__ListCategoriesRequest *req,
                          Marquee__Catalog__V1__ListCategoriesResponse *resp, mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = check_optional_locale(err, req->locale);
  if (rc != MQ_OK) return rc;
  tree_t t;
  if ((rc = tree_load(call, req->include_retired && caller_is_admin(call), &t, err)) != MQ_OK) return rc;
  size_t n = t.n;
  sibling_key_t *keys = mq_arena_alloc(a, (n ? n : 1) * sizeof *keys);
  int *first = mq_arena_alloc(a, (n + 1) * sizeof *first), *last = mq_arena_alloc(a, (n + 1) * sizeof *last),
      *next = mq_arena_alloc(a, (n ? n : 1) * sizeof *next);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!t.depth[i]) {
      mq_log(MQ_LOG_WARN, "catalog.category_orphan", "category %s has a broken ancestry; not listed", t.c[i].id);
      continue;
    }
    keys[k++] = (sibling_key_t){t.c[i].sort_order, display_name(&t.c[i], req->locale), t.c[i].slug, i};
  }
  if (k) qsort(keys, k, sizeof *keys, cmp_sibling);
  for (size_t i = 0; i <= n; i++) first[i] = last[i] = -1;
  for (size_t j = 0; j < k; j++) { /* append in sorted order to the parent's child list */
    size_t i = keys[j].i, parent = t.parent[i] >= 0 ? (size_t)t.parent[i] : n;
    next[i] = -1;
    if (last[parent] < 0)
      first[parent] = (int)i;
    else
      next[last[parent]] = (int)i;
    last[parent] = (int)i;
  }
  resp->categories = mq_arena_alloc(a, (k ? k : 1) * sizeof *resp->categories);
  emit_ctx_t e = {&t, first, next, req->locale, a, resp};
  emit_children(&e, n, NULL);
  return MQ_OK;
}

static const marquee__catalog__v1__category_service_handlers_t handlers = {
    .create_category = {cat_create, MQ_POLICY_ADMIN, 0},
    .rename_category = {cat_rename, MQ_POLICY_ADMIN, 0},
    .move_category = {cat_move, MQ_POLICY_ADMIN, 0},
    .retire_category = {cat_retire, MQ_POLICY_ADMIN, 0},
    .get_category = {cat_get, MQ_POLICY_PUBLIC, 0},
    .list_categories = {cat_list, MQ_POLICY_PUBLIC, 0},
};

int category_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__catalog__v1__category_service__mq_register(srv, &handlers);
}
