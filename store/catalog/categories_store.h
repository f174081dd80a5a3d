/*
 * categories_store.h — the catalog's category tree (catalog issue, item 5).
 *
 *   categories          {_id: category id, slug (unique index), parent_id
 *                        ("" for a root), names: [{locale, name}],
 *                        sort_order, retired, created_at, updated_at,
 *                        _outbox}
 *   category_tree_lock  {_id: "tree", holder, expires_at} — a lease that
 *                        serialises changes of the tree's shape
 *
 * Invariants (checked by handlers/catalog/categories.c while it holds the
 * tree lease; the store only writes what it is given):
 *  - the parent links form a forest: no cycles, at most 4 levels;
 *  - a retired category has no active children, and never gets new ones;
 *  - every write carries its CategoryChanged event in the same document
 *    write (outbox); updates go through mq_store_update_by_id.
 * Why a lease: "is the new parent a descendant?" and "has it active
 * children?" read several documents and then write one. Without
 * transactions (DESIGN.md §4) two such changes racing — A under B while B
 * goes under A — would each pass its check and leave a cycle. The lease is
 * an insert on a fixed _id (the decision primitive), so it holds across any
 * number of servers, on MongoDB and FerretDB alike; it expires after
 * MQ_CATEGORY_LEASE_MS so a crashed holder cannot block the tree for long.
 * Renames change no shape and take no lease.
 * Read next: handlers/catalog/categories.c.
 */
#ifndef CATEGORIES_STORE_H
#define CATEGORIES_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_CATEGORIES_MAX 2000     /* categories in the whole tree, retired included */
#define MQ_CATEGORY_MAX_DEPTH 4    /* a root has depth 1 */
#define MQ_CATEGORY_MAX_NAMES 20   /* locales per category */
#define MQ_CATEGORY_LEASE_MS 10000 /* tree lease lifetime */

typedef struct mq_category_name {
  const char *locale, *name;
} mq_category_name_t;

typedef struct mq_category {
  const char *id, *slug, *parent_id; /* parent_id "" for a root */
  const mq_category_name_t *names;
  size_t n_names;
  int32_t sort_order;
  bool retired;
  int64_t created_ms, updated_ms;
} mq_category_t;

extern const mq_index_spec_t mq_categories_indexes[];
extern const size_t mq_categories_n_indexes;

/* Inserts `c` with `ev` in its outbox. ALREADY_EXISTS (field "slug") if the
 * slug is taken. Nothing is borrowed past the call. */
mq_code_t mq_categories_create(mq_store_t *s, const mq_category_t *c, const mq_event_t *ev, mq_error_t *err);

/* One category, strings and names copied into `a`. NOT_FOUND (no field) if
 * absent. */
mq_code_t mq_categories_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_category_t *out, mq_error_t *err);

/* Every category (retired ones only if include_retired), in no particular
 * order, at most MQ_CATEGORIES_MAX; *out is an array in `a`. */
mq_code_t mq_categories_list(mq_store_t *s, bool include_retired, mq_arena_t *a, mq_category_t **out, size_t *n,
                             mq_error_t *err);

/* Replaces the names. NOT_FOUND if absent. */
mq_code_t mq_categories_set_names(mq_store_t *s, const char *id, const mq_category_name_t *names, size_t n,
                                  int64_t updated_ms, const mq_event_t *ev, mq_error_t *err);
/* Sets parent_id ("" = root) and sort_order. NOT_FOUND if absent. */
mq_code_t mq_categories_set_parent(mq_store_t *s, const char *id, const char *parent_id, int32_t sort_order,
                                   int64_t updated_ms, const mq_event_t *ev, mq_error_t *err);
/* Sets retired = true. NOT_FOUND if absent. */
mq_code_t mq_categories_retire(mq_store_t *s, const char *id, int64_t updated_ms, const mq_event_t *ev,
                               mq_error_t *err);

/* For the events service: may an event be filed under category_id?
 * MQ_OK if it exists and is not retired; INVALID_ARGUMENT naming
 * "category_id" ("unknown category" / "this category is retired");
 * a store failure as mq_store_error maps it (e.g. STORE_UNAVAILABLE). */
mq_code_t mq_categories_usable(mq_store_t *s, const char *category_id, mq_error_t *err);

/* Takes the tree lease for `holder` (a fresh id of the caller's, e.g. a
 * UUID), waiting up to wait_ms while someone else holds it and clearing an
 * expired lease. UNAVAILABLE ("another change of the category tree is in
 * progress") if it stays taken. Always pair an MQ_OK with
 * mq_categories_unlock_tree. */
mq_code_t mq_categories_lock_tree(mq_store_t *s, const char *holder, int64_t wait_ms, mq_error_t *err);
/* Gives the lease back (only if `holder` still holds it). Best effort: if
 * the delete fails the lease expires on its own. */
void mq_categories_unlock_tree(mq_store_t *s, const char *holder);

#endif
