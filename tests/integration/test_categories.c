/*
 * test_categories.c — marquee.catalog.v1.CategoryService end to end on the
 * real stack: building a tree (display order, paths, depths), localized
 * display names with fallback, validation naming each field, duplicate
 * slugs, who may call what (attendee, organizer, anonymous), moves that
 * would make a cycle or nest too deep, retiring (refused with active
 * children; hidden from the public; shown to admins who ask), racing moves
 * that must not leave a cycle, mq_categories_usable (the events service's
 * check) through the store directly, and CategoryChanged reaching the audit
 * log through the outbox and Kafka.
 * The tests share one server and database; each uses its own slugs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "handlers/mq_call.h"
#include "harness.h"
#include "marquee/catalog/v1/categories.mq-client.h"
#include "store/catalog/categories_store.h"
#include "store/mq_store.h"

#define ADMIN_ID "00000000-0000-4000-8000-00000000ad01"
#define UNKNOWN_ID "00000000-0000-4000-8000-0000000000ff"

typedef Marquee__Catalog__V1__Category category_t;
typedef Marquee__Catalog__V1__ListCategoriesResponse list_t;

static mq_test_proc_t srv, audit;
static mq_client_t *cl;
static char *admin, *attendee, *organizer;

static int setup(void **state) {
  (void)state;
  if (mq_test_server_start(&srv, NULL, NULL) != 0) return -1;
  if (mq_test_audit_start(&audit, srv.db, NULL) != 0) return -1;
  cl = mq_test_client(&srv);
  admin = mq_test_token(ADMIN_ID, MQ_ROLE_ADMIN);
  attendee = mq_test_token("00000000-0000-4000-8000-00000000a770", MQ_ROLE_ATTENDEE);
  organizer = mq_test_token("00000000-0000-4000-8000-0000000000a9", MQ_ROLE_ORGANIZER | MQ_ROLE_ATTENDEE);
  return cl && admin && attendee && organizer ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mq_client_destroy(cl);
  free(admin);
  free(attendee);
  free(organizer);
  int a = mq_test_proc_stop(&audit, SIGTERM, 20000);
  int s = mq_test_proc_stop(&srv, SIGTERM, 20000);
  mq_test_drop_db(NULL, srv.db);
  return a == 0 && s == 0 ? 0 : -1;
}

/* ---- call helpers ------------------------------------------------------------------ */

#define MAX_NAMES 32

/* `names` is "locale", "name", ..., NULL. */
typedef struct {
  Marquee__Catalog__V1__CategoryName v[MAX_NAMES], *p[MAX_NAMES];
  size_t n;
} names_t;

static void names_set(names_t *ns, const char *const *names) {
  ns->n = 0;
  for (size_t i = 0; names && names[i] && names[i + 1] && ns->n < MAX_NAMES; i += 2) {
    marquee__catalog__v1__category_name__init(&ns->v[ns->n]);
    ns->v[ns->n].locale = (char *)names[i];
    ns->v[ns->n].name = (char *)names[i + 1];
    ns->p[ns->n] = &ns->v[ns->n];
    ns->n++;
  }
}

static const char *const EN_ONLY[] = {"en", "Something", NULL};

/* Creates a category; its id goes to id_out[37] (if given). */
static mq_code_t create_as(const char *token, const char *slug, const char *parent, int32_t order,
                           const char *const *names, char *id_out, mq_error_t *err) {
  names_t ns;
  names_set(&ns, names ? names : EN_ONLY);
  Marquee__Catalog__V1__CreateCategoryRequest req = MARQUEE__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
  req.slug = (char *)slug;
  req.parent_id = (char *)(parent ? parent : "");
  req.sort_order = order;
  req.names = ns.p;
  req.n_names = ns.n;
  mq_call_opts_t o = {.bearer_token = token};
  category_t *c = NULL;
  mq_code_t rc = marquee__catalog__v1__category_service__create_category__call(cl, &req, &c, &o, err);
  if (rc == MQ_OK) {
    if (id_out) snprintf(id_out, 37, "%s", c->category_id);
    marquee__catalog__v1__category__free_unpacked(c, NULL);
  }
  return rc;
}

static void create_ok(const char *slug, const char *parent, int32_t order, const char *const *names, char *id_out) {
  mq_error_t err;
  mq_code_t rc = create_as(admin, slug, parent, order, names, id_out, &err);
  if (rc != MQ_OK) fprintf(stderr, "create %s: %s %s: %s\n", slug, mq_code_name(rc), err.field, err.message);
  assert_int_equal(rc, MQ_OK);
}

static mq_code_t rename_as(const char *token, const char *id, const char *const *names, mq_error_t *err) {
  names_t ns;
  names_set(&ns, names);
  Marquee__Catalog__V1__RenameCategoryRequest req = MARQUEE__CATALOG__V1__RENAME_CATEGORY_REQUEST__INIT;
  req.category_id = (char *)id;
  req.names = ns.p;
  req.n_names = ns.n;
  mq_call_opts_t o = {.bearer_token = token};
  category_t *c = NULL;
  mq_code_t rc = marquee__catalog__v1__category_service__rename_category__call(cl, &req, &c, &o, err);
  if (c) marquee__catalog__v1__category__free_unpacked(c, NULL);
  return rc;
}

/* On MQ_OK and `out`, the caller frees *out. */
static mq_code_t move_as(const char *token, const char *id, const char *parent, int32_t order, category_t **out,
                         mq_error_t *err) {
  Marquee__Catalog__V1__MoveCategoryRequest req = MARQUEE__CATALOG__V1__MOVE_CATEGORY_REQUEST__INIT;
  req.category_id = (char *)id;
  req.parent_id = (char *)(parent ? parent : "");
  req.sort_order = order;
  mq_call_opts_t o = {.bearer_token = token};
  category_t *c = NULL;
  mq_code_t rc = marquee__catalog__v1__category_service__move_category__call(cl, &req, &c, &o, err);
  if (out)
    *out = c;
  else if (c)
    marquee__catalog__v1__category__free_unpacked(c, NULL);
  return rc;
}

static mq_code_t retire_as(const char *token, const char *id, mq_error_t *err) {
  Marquee__Catalog__V1__RetireCategoryRequest req = MARQUEE__CATALOG__V1__RETIRE_CATEGORY_REQUEST__INIT;
  req.category_id = (char *)id;
  mq_call_opts_t o = {.bearer_token = token};
  category_t *c = NULL;
  mq_code_t rc = marquee__catalog__v1__category_service__retire_category__call(cl, &req, &c, &o, err);
  if (c) {
    assert_true(c->retired);
    marquee__catalog__v1__category__free_unpacked(c, NULL);
  }
  return rc;
}

static mq_code_t get_as(const char *token, const char *id, const char *locale, bool include_retired, category_t **out,
                        mq_error_t *err) {
  Marquee__Catalog__V1__GetCategoryRequest req = MARQUEE__CATALOG__V1__GET_CATEGORY_REQUEST__INIT;
  req.category_id = (char *)id;
  req.locale = (char *)(locale ? locale : "");
  req.include_retired = include_retired;
  mq_call_opts_t o = {.bearer_token = token};
  *out = NULL;
  return marquee__catalog__v1__category_service__get_category__call(cl, &req, out, &o, err);
}

static list_t *list_as(const char *token, const char *locale, bool include_retired) {
  Marquee__Catalog__V1__ListCategoriesRequest req = MARQUEE__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
  req.locale = (char *)(locale ? locale : "");
  req.include_retired = include_retired;
  mq_call_opts_t o = {.bearer_token = token};
  list_t *r = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__category_service__list_categories__call(cl, &req, &r, &o, &err), MQ_OK);
  return r;
}

/* The listed category with this id, or NULL. */
static const category_t *find_in(const list_t *l, const char *id) {
  for (size_t i = 0; i < l->n_categories; i++)
    if (!strcmp(l->categories[i]->category_id, id)) return l->categories[i];
  return NULL;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_tree_order_path_depth(void **state) {
  (void)state;
  char sports[37], arts[37], music[37], blues[37], jazz[37], rock[37], punk[37], hc[37];
  create_ok("music-t1", NULL, 2, (const char *const[]){"en", "Music", NULL}, music);
  create_ok("sports-t1", NULL, 1, (const char *const[]){"en", "Sports", NULL}, sports);
  create_ok("arts-t1", NULL, 2, (const char *const[]){"en", "Arts", NULL}, arts);
  create_ok("rock-t1", music, 1, (const char *const[]){"en", "Rock", NULL}, rock);
  create_ok("jazz-t1", music, 1, (const char *const[]){"en", "Jazz", NULL}, jazz);
  create_ok("blues-t1", music, 0, (const char *const[]){"en", "Zydeco Blues", NULL}, blues);
  /* the reply carries the computed path and depth */
  names_t ns;
  names_set(&ns, (const char *const[]){"en", "Punk", NULL});
  Marquee__Catalog__V1__CreateCategoryRequest req = MARQUEE__CATALOG__V1__CREATE_CATEGORY_REQUEST__INIT;
  req.slug = (char *)"punk-t1";
  req.parent_id = rock;
  req.names = ns.p;
  req.n_names = ns.n;
  mq_call_opts_t ao = {.bearer_token = admin};
  category_t *c = NULL;
  mq_error_t err;
  assert_int_equal(marquee__catalog__v1__category_service__create_category__call(cl, &req, &c, &ao, &err), MQ_OK);
  assert_string_equal(c->path, "music-t1/rock-t1/punk-t1");
  assert_int_equal(c->depth, 3);
  assert_string_equal(c->parent_id, rock);
  assert_string_equal(c->slug, "punk-t1");
  assert_string_equal(c->display_name, "Punk");
  assert_false(c->retired);
  assert_non_null(c->created_at);
  assert_int_equal(c->n_names, 1);
  snprintf(punk, sizeof punk, "%s", c->category_id);
  marquee__catalog__v1__category__free_unpacked(c, NULL);
  /* a fourth level is allowed, a fifth is not */
  create_ok("hardcore-t1", punk, 0, NULL, hc);
  assert_int_equal(create_as(admin, "too-deep-t1", hc, 0, NULL, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "parent_id");

  /* public listing: depth first, siblings by sort_order, then name, then slug */
  list_t *l = list_as(NULL, NULL, false);
  const char *want[] = {sports, arts, music, blues, jazz, rock, punk, hc};
  const unsigned depth[] = {1, 1, 1, 2, 2, 2, 3, 4};
  size_t k = 0;
  for (size_t i = 0; i < l->n_categories; i++) {
    const category_t *x = l->categories[i];
    if (!strstr(x->slug, "-t1")) continue;
    assert_true(k < 8);
    assert_string_equal(x->category_id, want[k]);
    assert_int_equal(x->depth, depth[k]);
    k++;
  }
  assert_int_equal(k, 8);
  const category_t *p = find_in(l, hc);
  assert_string_equal(p->path, "music-t1/rock-t1/punk-t1/hardcore-t1");
  assert_string_equal(p->parent_id, punk);
  p = find_in(l, music);
  assert_string_equal(p->path, "music-t1");
  assert_string_equal(p->parent_id, "");
  assert_string_equal(find_in(l, blues)->display_name, "Zydeco Blues");
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);

  /* get: public, with path and depth */
  assert_int_equal(get_as(NULL, punk, NULL, false, &c, &err), MQ_OK);
  assert_string_equal(c->path, "music-t1/rock-t1/punk-t1");
  assert_int_equal(c->depth, 3);
  marquee__catalog__v1__category__free_unpacked(c, NULL);
  assert_int_equal(get_as(NULL, UNKNOWN_ID, NULL, false, &c, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "category_id");
}

static void test_locale_fallback_and_rename(void **state) {
  (void)state;
  char id[37];
  create_ok("theatre-t2", NULL, 0,
            (const char *const[]){"en", "Theatre", "fr", "Théâtre", "pt-BR", "Teatro (BR)", "es", "Teatro", NULL}, id);
  static const struct {
    const char *locale, *want;
  } cases[] = {
      {"", "Theatre"},      {"en", "Theatre"},         {"fr", "Théâtre"}, {"pt-BR", "Teatro (BR)"},
      {"es-419", "Teatro"}, {"pt-PT", "Theatre"},      {"ja", "Theatre"}, {"fr-CA", "Théâtre"},
      {"en-GB", "Theatre"}, {"zh-Hant-TW", "Theatre"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    list_t *l = list_as(NULL, cases[i].locale, false);
    const category_t *c = find_in(l, id);
    assert_non_null(c);
    assert_string_equal(c->display_name, cases[i].want);
    assert_int_equal(c->n_names, 4);
    marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
    category_t *g = NULL;
    mq_error_t err;
    assert_int_equal(get_as(NULL, id, cases[i].locale, false, &g, &err), MQ_OK);
    assert_string_equal(g->display_name, cases[i].want);
    marquee__catalog__v1__category__free_unpacked(g, NULL);
  }
  mq_error_t err;
  category_t *g = NULL;
  assert_int_equal(get_as(NULL, id, "EN", false, &g, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "locale");
  Marquee__Catalog__V1__ListCategoriesRequest lq = MARQUEE__CATALOG__V1__LIST_CATEGORIES_REQUEST__INIT;
  lq.locale = (char *)"not a locale";
  list_t *l = NULL;
  assert_int_equal(marquee__catalog__v1__category_service__list_categories__call(cl, &lq, &l, NULL, &err),
                   MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "locale");

  /* rename replaces every name */
  assert_int_equal(rename_as(admin, id, (const char *const[]){"en", "Stage", "de", "Bühne", NULL}, &err), MQ_OK);
  l = list_as(NULL, "fr", false);
  const category_t *c = find_in(l, id);
  assert_string_equal(c->display_name, "Stage"); /* no French name any more */
  assert_int_equal(c->n_names, 2);
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  assert_int_equal(get_as(NULL, id, "de-AT", false, &g, &err), MQ_OK);
  assert_string_equal(g->display_name, "Bühne");
  marquee__catalog__v1__category__free_unpacked(g, NULL);
  assert_int_equal(rename_as(admin, id, (const char *const[]){"fr", "Scène", NULL}, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "names");
  assert_int_equal(rename_as(admin, id, (const char *const[]){"en", "Two\nlines", NULL}, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "names[0].name");
  /* every bad entry at once */
  assert_int_equal(
      rename_as(admin, id, (const char *const[]){"en", "Two\nlines", "EN!", "x", "en", "Again", NULL}, &err),
      MQ_INVALID_ARGUMENT);
  assert_int_equal(err.n_violations, 3);
  assert_string_equal(err.violations[0].field, "names[0].name");
  assert_string_equal(err.violations[1].field, "names[1].locale");
  assert_string_equal(err.violations[2].field, "names[2].locale"); /* "en" twice */
  assert_int_equal(rename_as(admin, UNKNOWN_ID, EN_ONLY, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "category_id");
}

static void test_duplicate_slug(void **state) {
  (void)state;
  char id[37];
  mq_error_t err;
  create_ok("dup-t3", NULL, 0, NULL, id);
  assert_int_equal(create_as(admin, "dup-t3", NULL, 0, NULL, NULL, &err), MQ_ALREADY_EXISTS);
  assert_string_equal(err.field, "slug");
  assert_int_equal(create_as(admin, "dup-t3", id, 0, NULL, NULL, &err), MQ_ALREADY_EXISTS); /* also under a parent */
  assert_string_equal(err.field, "slug");
  assert_int_equal(retire_as(admin, id, &err), MQ_OK);
  assert_int_equal(create_as(admin, "dup-t3", NULL, 0, NULL, NULL, &err), MQ_ALREADY_EXISTS); /* retired keeps it */
  assert_string_equal(err.field, "slug");
}

static void test_validation_names_the_field(void **state) {
  (void)state;
  char root[37];
  create_ok("valid-t4", NULL, 0, NULL, root);
  char long_name[82], long_slug[62];
  memset(long_name, 'x', 81);
  long_name[81] = 0;
  memset(long_slug, 'a', 61);
  long_slug[61] = 0;
  const char *too_many[2 * 21 + 1];
  static const char *const locales[] = {"en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "fi", "no",
                                        "pl", "cs", "sk", "hu", "ro", "bg", "el", "tr", "ja", "ko"};
  for (int i = 0; i < 21; i++) {
    too_many[2 * i] = locales[i];
    too_many[2 * i + 1] = "Name";
  }
  too_many[42] = NULL;
  static const char *const no_names[] = {NULL};
  const struct {
    const char *slug, *parent;
    const char *const *names;
    mq_code_t rc;
    const char *field;
  } bad[] = {
      {"a", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"Bad_Slug", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"-lead", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"trail-", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"{\"$gt\": \"\"}", NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {long_slug, NULL, NULL, MQ_INVALID_ARGUMENT, "slug"},
      {"ok-t4a", NULL, no_names, MQ_INVALID_ARGUMENT, "names"},
      {"ok-t4a", NULL, (const char *const[]){"fr", "Nom", NULL}, MQ_INVALID_ARGUMENT, "names"},
      {"ok-t4a", NULL, (const char *const[]){"english", "Name", NULL}, MQ_INVALID_ARGUMENT, "names[0].locale"},
      {"ok-t4a", NULL, (const char *const[]){"en", "Name", "pt_BR", "Nome", NULL}, MQ_INVALID_ARGUMENT,
       "names[1].locale"},
      {"ok-t4a", NULL, (const char *const[]){"en", "Name", "en", "Again", NULL}, MQ_INVALID_ARGUMENT,
       "names[1].locale"},
      {"ok-t4a", NULL, (const char *const[]){"en", "", NULL}, MQ_INVALID_ARGUMENT, "names[0].name"},
      {"ok-t4a", NULL, (const char *const[]){"en", long_name, NULL}, MQ_INVALID_ARGUMENT, "names[0].name"},
      {"ok-t4a", NULL, (const char *const[]){"en", "Two\nlines", NULL}, MQ_INVALID_ARGUMENT, "names[0].name"},
      {"ok-t4a", NULL, (const char *const[]){"en", " padded", NULL}, MQ_INVALID_ARGUMENT, "names[0].name"},
      {"ok-t4a", NULL, (const char *const[]){"en", "Ok", "fr", "bad \xC0\xAF utf8", NULL}, MQ_INVALID_ARGUMENT,
       "names[1].name"},
      {"ok-t4a", NULL, too_many, MQ_INVALID_ARGUMENT, "names"},
      {"ok-t4a", "not-a-uuid", NULL, MQ_INVALID_ARGUMENT, "parent_id"},
      {"ok-t4a", UNKNOWN_ID, NULL, MQ_NOT_FOUND, "parent_id"},
  };
  mq_error_t err;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mq_code_t rc = create_as(admin, bad[i].slug, bad[i].parent, 0, bad[i].names, NULL, &err);
    if (rc != bad[i].rc || strcmp(err.field, bad[i].field))
      fprintf(stderr, "case %zu: got %s field '%s' (%s)\n", i, mq_code_name(rc), err.field, err.message);
    assert_int_equal(rc, bad[i].rc);
    assert_string_equal(err.field, bad[i].field);
  }
  /* the limits themselves are fine: 60-byte slug, 80-byte name, 20 locales, 2-byte slug */
  long_slug[60] = 0;
  long_name[80] = 0;
  too_many[40] = NULL;
  create_ok(long_slug, NULL, 0, (const char *const[]){"en", long_name, NULL}, NULL);
  create_ok("t4", root, -5, too_many, NULL);
  /* ids of the other methods */
  category_t *c = NULL;
  assert_int_equal(get_as(NULL, "{\"$ne\": null}", NULL, false, &c, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(rename_as(admin, "nope", EN_ONLY, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(move_as(admin, "nope", NULL, 0, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(move_as(admin, root, "nope", 0, NULL, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "parent_id");
  assert_int_equal(retire_as(admin, "", &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(move_as(admin, UNKNOWN_ID, NULL, 0, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(move_as(admin, root, UNKNOWN_ID, 0, NULL, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "parent_id");
  assert_int_equal(retire_as(admin, UNKNOWN_ID, &err), MQ_NOT_FOUND);
  assert_string_equal(err.field, "category_id");
}

static void test_who_may_call_what(void **state) {
  (void)state;
  char id[37];
  create_ok("perm-t5", NULL, 0, NULL, id);
  const char *tokens[] = {attendee, organizer, NULL};
  const mq_code_t want[] = {MQ_PERMISSION_DENIED, MQ_PERMISSION_DENIED, MQ_UNAUTHENTICATED};
  for (int i = 0; i < 3; i++) {
    mq_error_t err;
    assert_int_equal(create_as(tokens[i], "perm-t5b", NULL, 0, NULL, NULL, &err), want[i]);
    assert_int_equal(rename_as(tokens[i], id, EN_ONLY, &err), want[i]);
    assert_int_equal(move_as(tokens[i], id, NULL, 3, NULL, &err), want[i]);
    assert_int_equal(retire_as(tokens[i], id, &err), want[i]);
    /* reads are public */
    category_t *c = NULL;
    assert_int_equal(get_as(tokens[i], id, NULL, false, &c, &err), MQ_OK);
    marquee__catalog__v1__category__free_unpacked(c, NULL);
    list_t *l = list_as(tokens[i], NULL, false);
    assert_non_null(find_in(l, id));
    marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  }
  mq_error_t err;
  category_t *c = NULL;
  assert_int_equal(get_as("not-a-jwt", id, NULL, false, &c, &err), MQ_UNAUTHENTICATED); /* a bad token is refused */
  assert_int_equal(get_as(admin, id, NULL, false, &c, &err), MQ_OK);
  assert_false(c->retired);
  marquee__catalog__v1__category__free_unpacked(c, NULL);
}

static void test_move(void **state) {
  (void)state;
  char a[37], b[37], cc[37], x[37], y[37], z[37], w[37], p[37], q[37], r[37];
  create_ok("a-t6", NULL, 0, NULL, a);
  create_ok("b-t6", a, 0, NULL, b);
  create_ok("c-t6", b, 0, NULL, cc);
  mq_error_t err;
  category_t *m = NULL;
  /* cycles */
  assert_int_equal(move_as(admin, a, cc, 0, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "parent_id");
  assert_int_equal(move_as(admin, a, b, 0, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_int_equal(move_as(admin, a, a, 0, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "parent_id");
  /* to the root and back */
  assert_int_equal(move_as(admin, cc, NULL, 7, &m, &err), MQ_OK);
  assert_string_equal(m->path, "c-t6");
  assert_int_equal(m->depth, 1);
  assert_string_equal(m->parent_id, "");
  assert_int_equal(m->sort_order, 7);
  marquee__catalog__v1__category__free_unpacked(m, NULL);
  assert_int_equal(move_as(admin, a, cc, 0, &m, &err), MQ_OK); /* no longer a cycle: c left a's subtree */
  assert_string_equal(m->path, "c-t6/a-t6");
  assert_int_equal(m->depth, 2);
  marquee__catalog__v1__category__free_unpacked(m, NULL);
  list_t *l = list_as(NULL, NULL, false);
  assert_string_equal(find_in(l, b)->path, "c-t6/a-t6/b-t6"); /* the subtree moved along */
  assert_int_equal(find_in(l, b)->depth, 3);
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  /* reordering among the same siblings */
  assert_int_equal(move_as(admin, a, cc, -1, &m, &err), MQ_OK);
  assert_int_equal(m->sort_order, -1);
  assert_string_equal(m->parent_id, cc);
  marquee__catalog__v1__category__free_unpacked(m, NULL);

  /* depth: x > y > z > w, and p > q > r */
  create_ok("x-t6", NULL, 0, NULL, x);
  create_ok("y-t6", x, 0, NULL, y);
  create_ok("z-t6", y, 0, NULL, z);
  create_ok("w-t6", z, 0, NULL, w);
  create_ok("p-t6", NULL, 0, NULL, p);
  create_ok("q-t6", p, 0, NULL, q);
  assert_int_equal(move_as(admin, p, y, 0, NULL, &err), MQ_OK); /* p at 3, q at 4 */
  l = list_as(NULL, NULL, false);
  assert_string_equal(find_in(l, q)->path, "x-t6/y-t6/p-t6/q-t6");
  assert_int_equal(find_in(l, q)->depth, 4);
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  assert_int_equal(move_as(admin, p, z, 0, NULL, &err), MQ_INVALID_ARGUMENT); /* q would be at 5 */
  assert_string_equal(err.field, "parent_id");
  assert_int_equal(move_as(admin, p, NULL, 0, NULL, &err), MQ_OK);
  create_ok("r-t6", q, 0, NULL, r);
  assert_int_equal(move_as(admin, p, y, 0, NULL, &err), MQ_INVALID_ARGUMENT); /* r would be at 5 */
  assert_int_equal(move_as(admin, p, x, 0, NULL, &err), MQ_OK);               /* r at 4 */
  assert_int_equal(move_as(admin, w, r, 0, NULL, &err), MQ_INVALID_ARGUMENT);
  /* a retired parent takes no children */
  assert_int_equal(retire_as(admin, w, &err), MQ_OK);
  assert_int_equal(move_as(admin, r, w, 0, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "parent_id");
}

static void test_retire(void **state) {
  (void)state;
  char parent[37], child[37], other[37];
  create_ok("parent-t7", NULL, 0, NULL, parent);
  create_ok("child-t7", parent, 0, NULL, child);
  create_ok("other-t7", NULL, 0, NULL, other);
  mq_error_t err;
  assert_int_equal(retire_as(admin, parent, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "category_id");
  assert_int_equal(retire_as(admin, child, &err), MQ_OK);
  assert_int_equal(retire_as(admin, parent, &err), MQ_OK);
  assert_int_equal(retire_as(admin, parent, &err), MQ_OK); /* again: nothing changes */
  /* no new children, no move under it */
  assert_int_equal(create_as(admin, "late-t7", parent, 0, NULL, NULL, &err), MQ_FAILED_PRECONDITION);
  assert_string_equal(err.field, "parent_id");
  assert_int_equal(move_as(admin, other, parent, 0, NULL, &err), MQ_FAILED_PRECONDITION);
  /* hidden from the public, attendees, and admins who do not ask */
  const char *who[] = {NULL, attendee, organizer, admin};
  for (int i = 0; i < 4; i++) {
    list_t *l = list_as(who[i], NULL, i < 3); /* non-admins asking for retired ones get none */
    if (i < 3) {
      assert_null(find_in(l, parent));
      assert_null(find_in(l, child));
      assert_non_null(find_in(l, other));
    }
    marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
    category_t *c = NULL;
    assert_int_equal(get_as(who[i], parent, NULL, i < 3, &c, &err), MQ_NOT_FOUND);
    assert_string_equal(err.field, "category_id");
  }
  list_t *l = list_as(admin, NULL, false);
  assert_null(find_in(l, parent));
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  /* an admin who asks sees them, in place */
  l = list_as(admin, NULL, true);
  const category_t *p = find_in(l, parent), *c = find_in(l, child);
  assert_non_null(p);
  assert_non_null(c);
  assert_true(p->retired && c->retired);
  assert_string_equal(c->path, "parent-t7/child-t7");
  assert_int_equal(c->depth, 2);
  assert_false(find_in(l, other)->retired);
  marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  category_t *g = NULL;
  assert_int_equal(get_as(admin, child, NULL, true, &g, &err), MQ_OK);
  assert_true(g->retired);
  assert_string_equal(g->path, "parent-t7/child-t7");
  marquee__catalog__v1__category__free_unpacked(g, NULL);
  /* retired categories can still be renamed and moved to the root */
  assert_int_equal(rename_as(admin, child, (const char *const[]){"en", "Old child", NULL}, &err), MQ_OK);
  assert_int_equal(move_as(admin, child, NULL, 0, NULL, &err), MQ_OK);
}

static void test_usable_through_the_store(void **state) {
  (void)state;
  char live[37], gone[37];
  create_ok("live-t8", NULL, 0, NULL, live);
  create_ok("gone-t8", NULL, 0, NULL, gone);
  mq_error_t err;
  assert_int_equal(retire_as(admin, gone, &err), MQ_OK);
  mq_store_t *s = NULL;
  assert_int_equal(mq_store_open(mq_test_mongo_uri(), srv.db, 4, &s, &err), MQ_OK);
  assert_int_equal(mq_categories_usable(s, live, &err), MQ_OK);
  assert_int_equal(mq_categories_usable(s, gone, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_string_equal(err.message, "this category is retired");
  assert_int_equal(mq_categories_usable(s, UNKNOWN_ID, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "category_id");
  assert_string_equal(err.message, "unknown category");
  assert_int_equal(mq_categories_usable(s, "", &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.message, "unknown category");
  assert_int_equal(mq_categories_usable(s, NULL, &err), MQ_INVALID_ARGUMENT);
  mq_store_close(s);
}

static void wait_count(const char *coll, const char *filter, int64_t want) {
  int64_t until = mq_test_now_ms() + 60000;
  while (mq_test_count(NULL, srv.db, coll, filter) != want && mq_test_now_ms() < until) mq_test_sleep_ms(200);
  assert_int_equal(mq_test_count(NULL, srv.db, coll, filter), want);
}

static void test_events_reach_the_audit_log(void **state) {
  (void)state;
  char id[37], parent[37];
  create_ok("audited-t9", NULL, 0, NULL, id);
  create_ok("audit-parent-t9", NULL, 0, NULL, parent);
  mq_error_t err;
  assert_int_equal(rename_as(admin, id, (const char *const[]){"en", "Audited", NULL}, &err), MQ_OK);
  assert_int_equal(move_as(admin, id, parent, 0, NULL, &err), MQ_OK);
  assert_int_equal(retire_as(admin, id, &err), MQ_OK);
  assert_int_equal(retire_as(admin, id, &err), MQ_OK); /* no change, no event */
  char filter[256];
  snprintf(filter, sizeof filter,
           "{\"aggregate_id\": \"%s\", \"type\": \"catalog.CategoryChanged\", \"topic\": \"marquee.events\", "
           "\"actor\": \"%s\"}",
           id, ADMIN_ID);
  wait_count("audit_log", filter, 4); /* created, renamed, moved, retired */
  /* and the relay delivered every category event: none left in the journal */
  wait_count("outbox", "{\"coll\": \"categories\"}", 0);
}

typedef struct {
  const char *id, *parent;
  mq_code_t rc;
} mover_t;

static void *race_move(void *arg) {
  mover_t *m = arg;
  mq_error_t err;
  m->rc = move_as(admin, m->id, m->parent, 0, NULL, &err);
  return NULL;
}

/* A under B and B under A at the same time: each check alone passes, so
 * only serialising them (the tree lease) keeps the tree a tree. */
static void test_racing_moves_leave_no_cycle(void **state) {
  (void)state;
  char a[37], b[37];
  create_ok("race-a-t10", NULL, 0, NULL, a);
  create_ok("race-b-t10", NULL, 0, NULL, b);
  for (int round = 0; round < 8; round++) {
    mq_error_t err;
    assert_int_equal(move_as(admin, a, NULL, 0, NULL, &err), MQ_OK);
    assert_int_equal(move_as(admin, b, NULL, 0, NULL, &err), MQ_OK);
    mover_t m[2] = {{a, b, MQ_UNKNOWN}, {b, a, MQ_UNKNOWN}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, race_move, &m[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    int ok = (m[0].rc == MQ_OK) + (m[1].rc == MQ_OK);
    assert_int_equal(ok, 1);
    assert_true(m[0].rc == MQ_FAILED_PRECONDITION || m[1].rc == MQ_FAILED_PRECONDITION);
    list_t *l = list_as(NULL, NULL, false);
    assert_non_null(find_in(l, a)); /* both still reachable from a root */
    assert_non_null(find_in(l, b));
    marquee__catalog__v1__list_categories_response__free_unpacked(l, NULL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tree_order_path_depth),
      cmocka_unit_test(test_locale_fallback_and_rename),
      cmocka_unit_test(test_duplicate_slug),
      cmocka_unit_test(test_validation_names_the_field),
      cmocka_unit_test(test_who_may_call_what),
      cmocka_unit_test(test_move),
      cmocka_unit_test(test_retire),
      cmocka_unit_test(test_usable_through_the_store),
      cmocka_unit_test(test_events_reach_the_audit_log),
      cmocka_unit_test(test_racing_moves_leave_no_cycle),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
