/*
 * test_password.c — cmocka tests for lib/mq_password.c: Argon2id hash and
 * verify (round trips at cheap and at default parameters, wrong passwords,
 * salting, needs_rehash, malformed stored strings, bounds and misuse), the
 * dummy verification (run and timed against a real one: the times are
 * printed, never asserted, since a shared machine's timing is noise), and
 * every policy rule, each accepted and refused with the caller's field name.
 *
 * Invariant: every test that changes the parameters restores the defaults in
 * its teardown (restore_defaults), so tests may run in any order. Most tests
 * use CHEAP parameters (t=1, m=64 KiB) to stay fast; the ones that are about
 * the defaults use them.
 *
 * Read next: lib/mq_password.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <pthread.h>

#include "lib/mq_password.h"

#define CHEAP_T 1u
#define CHEAP_M 64u
#define CHEAP_P 1u

/* ---- helpers ---------------------------------------------------------------------- */

static mq_error_t fresh_error(void) {
  mq_error_t e;
  memset(&e, 0, sizeof e);
  e.code = MQ_OK;
  return e;
}

static int use_cheap(void **state) {
  (void)state;
  assert_int_equal(mq_password_set_params(CHEAP_T, CHEAP_M, CHEAP_P), MQ_OK);
  return 0;
}

static int restore_defaults(void **state) {
  (void)state;
  assert_int_equal(mq_password_set_params(MQ_PASSWORD_T_COST, MQ_PASSWORD_M_COST_KIB, MQ_PASSWORD_PARALLELISM), MQ_OK);
  return 0;
}

static void hash_ok(const char *pw, char out[MQ_PASSWORD_HASH_MAX]) {
  mq_error_t e = fresh_error();
  assert_int_equal(mq_password_hash(pw, out, MQ_PASSWORD_HASH_MAX, &e), MQ_OK);
  assert_int_equal(e.code, MQ_OK);
  assert_true(strncmp(out, "$argon2id$v=19$", 15) == 0);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof v[0], cmp_double);
  return v[n / 2];
}

/* ---- hashing and verification ----------------------------------------------------- */

static void test_round_trip_cheap(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  hash_ok("correct horse battery staple", h);
  assert_true(strncmp(h, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
  mq_error_t e = fresh_error();
  bool rehash = true;
  assert_int_equal(mq_password_verify("correct horse battery staple", h, &rehash, &e), MQ_OK);
  assert_false(rehash);
  /* needs_rehash may be NULL; err may be NULL. */
  assert_int_equal(mq_password_verify("correct horse battery staple", h, NULL, NULL), MQ_OK);
  /* Non-ASCII and the empty password hash and verify byte for byte. */
  hash_ok("pässwörd ünïcödé ✓", h);
  assert_int_equal(mq_password_verify("pässwörd ünïcödé ✓", h, NULL, NULL), MQ_OK);
  assert_int_equal(mq_password_verify("pa\xcc\x88sswo\xcc\x88rd u\xcc\x88ni\xcc\x88"
                                      "co\xcc\x88"
                                      "de\xcc\x81 ✓",
                                      h, NULL, NULL),
                   MQ_UNAUTHENTICATED); /* NFD differs from NFC: no normalization */
  hash_ok("", h);
  assert_int_equal(mq_password_verify("", h, NULL, NULL), MQ_OK);
}

static void test_round_trip_defaults(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  hash_ok("correct horse battery staple", h);
  assert_true(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
  assert_int_equal(strlen(h), 31 + 22 + 1 + 43); /* 16-byte salt, 32-byte hash, unpadded base64 */
  bool rehash = true;
  mq_error_t e = fresh_error();
  assert_int_equal(mq_password_verify("correct horse battery staple", h, &rehash, &e), MQ_OK);
  assert_false(rehash);
  assert_int_equal(mq_password_verify("correct horse battery stapler", h, &rehash, &e), MQ_UNAUTHENTICATED);
  assert_false(rehash);

  double t[10];
  for (size_t i = 0; i < 10; i++) {
    double a = now_ms();
    hash_ok("correct horse battery staple", h);
    t[i] = now_ms() - a;
  }
  printf("    mq_password_hash at defaults (m=%u KiB, t=%u, p=%u): median %.1f ms of 10\n", MQ_PASSWORD_M_COST_KIB,
         MQ_PASSWORD_T_COST, MQ_PASSWORD_PARALLELISM, median(t, 10));
}

/* Many threads at once (more than CPUs: Argon2 runs pass a gate of one per
 * CPU): every hash and verification still completes with the right answer,
 * and nothing waits forever. */
#define CONCURRENT_THREADS 12
static void *concurrent_worker(void *arg) {
  int *ok = arg;
  char pw[32], h[MQ_PASSWORD_HASH_MAX];
  snprintf(pw, sizeof pw, "concurrent password %d", *ok);
  *ok = 0;
  for (int i = 0; i < 4; i++) {
    if (mq_password_hash(pw, h, sizeof h, NULL) != MQ_OK) return NULL;
    if (mq_password_verify(pw, h, NULL, NULL) != MQ_OK) return NULL;
    if (mq_password_verify("another password entirely", h, NULL, NULL) != MQ_UNAUTHENTICATED) return NULL;
    mq_password_dummy_verify(pw);
  }
  *ok = 1;
  return NULL;
}

static void test_concurrent_hashing(void **state) {
  (void)state;
  pthread_t t[CONCURRENT_THREADS];
  int ok[CONCURRENT_THREADS];
  for (int i = 0; i < CONCURRENT_THREADS; i++) {
    ok[i] = i;
    assert_int_equal(pthread_create(&t[i], NULL, concurrent_worker, &ok[i]), 0);
  }
  for (int i = 0; i < CONCURRENT_THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(ok[i], 1);
  }
}

static void test_wrong_password(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  hash_ok("Tr0ub4dor&3-extended", h);
  const char *wrong[] = {"Tr0ub4dor&3-extende", "tr0ub4dor&3-extended", "Tr0ub4dor&3-extended ", "", "x"};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    mq_error_t e = fresh_error();
    bool rehash = true;
    assert_int_equal(mq_password_verify(wrong[i], h, &rehash, &e), MQ_UNAUTHENTICATED);
    assert_int_equal(e.code, MQ_UNAUTHENTICATED);
    assert_string_equal(e.message, "wrong password");
    assert_string_equal(e.field, "");
    assert_false(rehash);
  }
}

static void test_salts_differ(void **state) {
  (void)state;
  char a[MQ_PASSWORD_HASH_MAX], b[MQ_PASSWORD_HASH_MAX];
  hash_ok("same password twice", a);
  hash_ok("same password twice", b);
  assert_string_not_equal(a, b);
  /* Same parameter prefix, different salt (and so different hash). */
  const char *sa = strrchr(a, '$'), *sb = strrchr(b, '$');
  assert_int_equal(sa - a, sb - b);
  assert_memory_not_equal(a, b, (size_t)(sa - a));
  assert_int_equal(mq_password_verify("same password twice", a, NULL, NULL), MQ_OK);
  assert_int_equal(mq_password_verify("same password twice", b, NULL, NULL), MQ_OK);
}

static void test_needs_rehash(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  bool rehash = false;
  hash_ok("upgrade me later please", h); /* t=1, m=64, p=1 */

  assert_int_equal(mq_password_set_params(2, CHEAP_M, CHEAP_P), MQ_OK); /* t changed */
  assert_int_equal(mq_password_verify("upgrade me later please", h, &rehash, NULL), MQ_OK);
  assert_true(rehash);
  assert_int_equal(mq_password_set_params(CHEAP_T, 128, CHEAP_P), MQ_OK); /* m changed */
  assert_int_equal(mq_password_verify("upgrade me later please", h, &rehash, NULL), MQ_OK);
  assert_true(rehash);
  assert_int_equal(mq_password_set_params(CHEAP_T, CHEAP_M, 2), MQ_OK); /* p changed */
  assert_int_equal(mq_password_verify("upgrade me later please", h, &rehash, NULL), MQ_OK);
  assert_true(rehash);
  /* A wrong password never asks for a re-hash. */
  assert_int_equal(mq_password_verify("not the password at all", h, &rehash, NULL), MQ_UNAUTHENTICATED);
  assert_false(rehash);

  /* The upgrade: re-hash at the current parameters, and it is current. */
  char h2[MQ_PASSWORD_HASH_MAX];
  hash_ok("upgrade me later please", h2);
  assert_true(strncmp(h2, "$argon2id$v=19$m=64,t=1,p=2$", 28) == 0);
  assert_int_equal(mq_password_verify("upgrade me later please", h2, &rehash, NULL), MQ_OK);
  assert_false(rehash);

  /* Back to the old parameters: the old hash is current again. */
  assert_int_equal(mq_password_set_params(CHEAP_T, CHEAP_M, CHEAP_P), MQ_OK);
  assert_int_equal(mq_password_verify("upgrade me later please", h, &rehash, NULL), MQ_OK);
  assert_false(rehash);
}

/* Hashes made elsewhere (libargon2 directly) with another salt or hash
 * length than ours are valid, verify, and ask for a re-hash. */
static void test_needs_rehash_lengths(void **state) {
  (void)state;
  const char *pw = "made by another writer";
  const unsigned char salt[24] = "0123456789abcdefghijklm";
  const struct {
    size_t salt_len, hash_len;
    bool rehash;
  } cases[] = {{16, 32, false}, {24, 32, true}, {8, 32, true}, {16, 24, true}, {16, 16, true}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char h[MQ_PASSWORD_HASH_MAX];
    assert_int_equal(argon2id_hash_encoded(CHEAP_T, CHEAP_M, CHEAP_P, pw, strlen(pw), salt, cases[i].salt_len,
                                           cases[i].hash_len, h, sizeof h),
                     ARGON2_OK);
    bool rehash = !cases[i].rehash;
    assert_int_equal(mq_password_verify(pw, h, &rehash, NULL), MQ_OK);
    assert_int_equal(rehash, cases[i].rehash);
  }
}

/* The "$<salt>$<hash>" tail of one of our strings (after the 4th '$'). */
static const char *salt_and_hash(const char *h) {
  const char *s = h;
  for (int i = 0; i < 3; i++) s = strchr(s + 1, '$');
  assert_non_null(s);
  return s;
}

static void test_malformed_stored_hash(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  hash_ok("a perfectly fine password", h);
  const char *hash_part = strrchr(h, '$');  /* "$<43 chars>" */
  const char *salt_hash = salt_and_hash(h); /* "$<salt>$<hash>" */
  char buf[48][MQ_PASSWORD_HASH_MAX * 2];
  size_t n = 0;
  const char *fixed[] = {
      "",
      "garbage",
      "$argon2id$",
      "$argon2id$v=19$m=64,t=1,p=1$",
      "$argon2id$v=19$m=64,t=1,p=1$$",
      "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", /* bcrypt */
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) snprintf(buf[n++], sizeof buf[0], "%s", fixed[i]);
  const char *prefixes[] = {
      "$argon2i$v=19$m=64,t=1,p=1",           /* another variant */
      "$argon2d$v=19$m=64,t=1,p=1",           /* another variant */
      "$argon2id$v=16$m=64,t=1,p=1",          /* old version */
      "$argon2id$m=64,t=1,p=1",               /* version missing */
      "$argon2id$v=19$m=64,t=1",              /* p missing */
      "$argon2id$v=19$t=1,m=64,p=1",          /* order */
      "$argon2id$v=19$m=064,t=1,p=1",         /* leading zero */
      "$argon2id$v=19$m=+64,t=1,p=1",         /* sign */
      "$argon2id$v=19$m=64,t=0,p=1",          /* t below 1 */
      "$argon2id$v=19$m=64,t=1,p=0",          /* p below 1 */
      "$argon2id$v=19$m=7,t=1,p=1",           /* m below 8 KiB per lane */
      "$argon2id$v=19$m=64,t=1,p=9",          /* m below 8 KiB x 9 lanes */
      "$argon2id$v=19$m=4194304,t=1,p=1",     /* 4 GiB: above the bound */
      "$argon2id$v=19$m=64,t=33,p=1",         /* t above the bound */
      "$argon2id$v=19$m=64,t=1,p=17",         /* p above the bound */
      "$argon2id$v=19$m=99999999999,t=1,p=1", /* overflows uint32 */
      "$ARGON2ID$v=19$m=64,t=1,p=1",          /* case */
      " $argon2id$v=19$m=64,t=1,p=1"          /* leading space */
  };
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    snprintf(buf[n++], sizeof buf[0], "%s%s", prefixes[i], salt_hash);
  snprintf(buf[n++], sizeof buf[0], "%s ", h);                                        /* trailing space */
  snprintf(buf[n++], sizeof buf[0], "%s=", h);                                        /* padding */
  snprintf(buf[n++], sizeof buf[0], "%.*s$", (int)(hash_part - h), h);                /* empty hash */
  snprintf(buf[n++], sizeof buf[0], "%.*s$A", (int)(hash_part - h), h);               /* 1 char: not base64 */
  snprintf(buf[n++], sizeof buf[0], "%.*s$AAAA", (int)(hash_part - h), h);            /* 3-byte hash < 4 */
  snprintf(buf[n++], sizeof buf[0], "$argon2id$v=19$m=64,t=1,p=1$AAAA%s", hash_part); /* 3-byte salt < 8 */
  snprintf(buf[n++], sizeof buf[0], "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA-AAAAAAAAAA%s", hash_part); /* '-' */
  snprintf(buf[n++], sizeof buf[0], "%s%s", h, hash_part); /* an extra field */
  /* Longer than MQ_PASSWORD_HASH_MAX - 1 with a valid shape (a 90-byte hash). */
  snprintf(
      buf[n++], sizeof buf[0], "%.*s$%s", (int)(hash_part - h), h,
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  assert_true(n <= sizeof buf / sizeof buf[0]);

  for (size_t i = 0; i < n; i++) {
    mq_error_t e = fresh_error();
    bool rehash = true;
    mq_code_t rc = mq_password_verify("a perfectly fine password", buf[i], &rehash, &e);
    if (rc != MQ_INTERNAL) fail_msg("case %zu \"%s\": got %s, want INTERNAL", i, buf[i], mq_code_name(rc));
    assert_int_equal(e.code, MQ_INTERNAL);
    assert_non_null(strstr(e.message, "malformed"));
    assert_false(rehash);
  }
  /* NULL stored hash. */
  mq_error_t e = fresh_error();
  assert_int_equal(mq_password_verify("a perfectly fine password", NULL, NULL, &e), MQ_INTERNAL);

  /* A tampered but well-formed hash is a plain mismatch, not INTERNAL. */
  char tampered[MQ_PASSWORD_HASH_MAX];
  snprintf(tampered, sizeof tampered, "%s", h);
  char *c = tampered + (hash_part - h) + 10;
  *c = (*c == 'A') ? 'B' : 'A';
  assert_int_equal(mq_password_verify("a perfectly fine password", tampered, NULL, NULL), MQ_UNAUTHENTICATED);
}

static void test_long_passwords(void **state) {
  (void)state;
  char pw[MQ_PASSWORD_MAX_BYTES + 2];
  char h[MQ_PASSWORD_HASH_MAX];
  memset(pw, 'k', sizeof pw - 1);
  pw[sizeof pw - 1] = '\0'; /* 513 bytes */
  mq_error_t e = fresh_error();
  assert_int_equal(mq_password_hash(pw, h, sizeof h, &e), MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, "password");
  assert_string_equal(h, "");
  pw[MQ_PASSWORD_MAX_BYTES] = '\0'; /* exactly 512: fine */
  hash_ok(pw, h);
  assert_int_equal(mq_password_verify(pw, h, NULL, NULL), MQ_OK);
  pw[MQ_PASSWORD_MAX_BYTES] = 'k'; /* 513 again: refused without hashing */
  e = fresh_error();
  assert_int_equal(mq_password_verify(pw, h, NULL, &e), MQ_UNAUTHENTICATED);
  assert_string_equal(e.message, "wrong password");
  mq_password_dummy_verify(pw); /* returns at once, like verify */
}

static void test_misuse(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  mq_error_t e = fresh_error();
  assert_int_equal(mq_password_hash(NULL, h, sizeof h, &e), MQ_INTERNAL);
  assert_string_equal(h, "");
  assert_int_equal(mq_password_hash("some password", NULL, 0, &e), MQ_INTERNAL);
  strcpy(h, "junk");
  assert_int_equal(mq_password_hash("some password", h, MQ_PASSWORD_HASH_MAX - 1, &e), MQ_INTERNAL);
  assert_string_equal(h, "");
  hash_ok("some password", h);
  bool rehash = true;
  assert_int_equal(mq_password_verify(NULL, h, &rehash, &e), MQ_INTERNAL);
  assert_false(rehash);
}

static void test_set_params_bounds(void **state) {
  (void)state;
  uint32_t t = 0, m = 0, p = 0;
  mq_password_get_params(&t, &m, &p);
  assert_int_equal(t, MQ_PASSWORD_T_COST);
  assert_int_equal(m, MQ_PASSWORD_M_COST_KIB);
  assert_int_equal(p, MQ_PASSWORD_PARALLELISM);
  const uint32_t bad[][3] = {
      {0, 64, 1},
      {MQ_PASSWORD_T_COST_MAX + 1, 64, 1},
      {1, 7, 1},
      {1, 15, 2},
      {1, MQ_PASSWORD_M_COST_KIB_MAX + 1, 1},
      {1, 64, 0},
      {1, 1024, MQ_PASSWORD_PARALLELISM_MAX + 1},
      {UINT32_MAX, UINT32_MAX, UINT32_MAX},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(mq_password_set_params(bad[i][0], bad[i][1], bad[i][2]), MQ_INVALID_ARGUMENT);
  mq_password_get_params(&t, &m, &p); /* unchanged */
  assert_int_equal(t, MQ_PASSWORD_T_COST);
  assert_int_equal(m, MQ_PASSWORD_M_COST_KIB);
  assert_int_equal(p, MQ_PASSWORD_PARALLELISM);
  assert_int_equal(mq_password_set_params(1, 8, 1), MQ_OK); /* the minimum */
  assert_int_equal(mq_password_set_params(MQ_PASSWORD_T_COST_MAX, 16 * 8, MQ_PASSWORD_PARALLELISM_MAX), MQ_OK);
  mq_password_get_params(NULL, &m, NULL);
  assert_int_equal(m, 128);
}

/* Times one kind of call n times at the current parameters. */
static double time_verify(const char *h, bool dummy) {
  double t[9];
  for (size_t i = 0; i < 9; i++) {
    double a = now_ms();
    if (dummy)
      mq_password_dummy_verify("no such user's guess");
    else
      assert_int_equal(mq_password_verify("no such user's guess", h, NULL, NULL), MQ_UNAUTHENTICATED);
    t[i] = now_ms() - a;
  }
  return median(t, 9);
}

static void test_dummy_verify(void **state) {
  (void)state;
  char h[MQ_PASSWORD_HASH_MAX];
  mq_password_dummy_verify(NULL); /* builds the dummy hash once; NULL is "" */
  mq_password_dummy_verify("");
  hash_ok("the real user's password", h);
  double real = time_verify(h, false), dummy = time_verify(h, true);
  printf("    defaults: wrong-password verify median %.1f ms, dummy verify median %.1f ms (9 each)\n", real, dummy);

  /* New parameters: the dummy follows them (rebuilt once). */
  assert_int_equal(mq_password_set_params(1, 4096, 1), MQ_OK);
  hash_ok("the real user's password", h);
  mq_password_dummy_verify("warm-up");
  real = time_verify(h, false);
  dummy = time_verify(h, true);
  printf("    m=4096,t=1:  wrong-password verify median %.2f ms, dummy verify median %.2f ms (9 each)\n", real, dummy);
}

/* ---- policy ----------------------------------------------------------------------- */

#define FIELD "new_password"

static void accept(const char *pw, const char *email, const char *name) {
  mq_error_t e = fresh_error();
  mq_code_t rc = mq_password_check_policy(&e, FIELD, pw, email, name);
  if (rc != MQ_OK) fail_msg("refused \"%s\": %s: %s", pw ? pw : "(null)", e.field, e.message);
  assert_int_equal(e.code, MQ_OK);
}

static void refuse(const char *pw, const char *email, const char *name, const char *needle) {
  mq_error_t e = fresh_error();
  mq_code_t rc = mq_password_check_policy(&e, FIELD, pw, email, name);
  if (rc != MQ_INVALID_ARGUMENT) fail_msg("accepted \"%s\" (want \"%s\")", pw ? pw : "(null)", needle);
  assert_int_equal(e.code, MQ_INVALID_ARGUMENT);
  assert_string_equal(e.field, FIELD);
  if (!strstr(e.message, needle)) fail_msg("\"%s\": message \"%s\" lacks \"%s\"", pw, e.message, needle);
  if (pw && pw[0] && strstr(e.message, pw)) fail_msg("message \"%s\" echoes the password", e.message);
  /* err may be NULL; the code is the same. */
  assert_int_equal(mq_password_check_policy(NULL, FIELD, pw, email, name), MQ_INVALID_ARGUMENT);
}

static void test_policy_accepts(void **state) {
  (void)state;
  accept("correct horse battery staple", "jane.doe@example.com", "Jane Doe");
  accept("k7#pQ2!vZm", NULL, NULL);                       /* exactly 10 */
  accept("äöüßéèêëîï", "", "");                           /* 10 two-byte code points */
  accept("パスワードは長くて安全です", NULL, NULL);       /* 13 three-byte code points */
  accept("abcdefghik", NULL, NULL);                       /* a run broken once */
  accept("12345678901x", NULL, NULL);                     /* a run broken at the end */
  accept("1357913579", NULL, NULL);                       /* steps of two */
  accept("Password123!", NULL, NULL);                     /* not exactly a listed password */
  accept("bob-bob-bob-bob", "bob@example.com", "Bo");     /* context under 4 characters */
  accept("zoë-zoë-zoë-1", NULL, "Zoë");                   /* 3 code points (4 bytes): not checked */
  accept("example.com rocks!", "jane@example.com", NULL); /* the domain is not checked */
  accept("  leading and trailing spaces  ", NULL, NULL);  /* spaces count, nothing trimmed */

  char pw[MQ_PASSWORD_MAX_BYTES + 1];
  memset(pw, 'x', MQ_PASSWORD_MAX_CHARS);
  pw[0] = 'y';
  pw[MQ_PASSWORD_MAX_CHARS] = '\0';
  accept(pw, NULL, NULL); /* 128 ASCII */
  /* 128 four-byte code points = 512 bytes: U+1F600, U+1F601 alternating. */
  for (size_t i = 0; i < MQ_PASSWORD_MAX_CHARS; i++)
    memcpy(pw + 4 * i, i % 2 ? "\xF0\x9F\x98\x81" : "\xF0\x9F\x98\x80", 4);
  pw[MQ_PASSWORD_MAX_BYTES] = '\0';
  accept(pw, NULL, NULL);
}

static void test_policy_length_and_encoding(void **state) {
  (void)state;
  refuse(NULL, NULL, NULL, "is required");
  refuse("", NULL, NULL, "is required");
  refuse("k7#pQ2!vZ", NULL, NULL, "at least 10 characters");
  refuse("äöüßéèêëî", NULL, NULL, "at least 10 characters"); /* 18 bytes, 9 code points */
  char pw[MQ_PASSWORD_MAX_BYTES + 8];
  memset(pw, 'x', MQ_PASSWORD_MAX_CHARS + 1);
  pw[0] = 'y';
  pw[MQ_PASSWORD_MAX_CHARS + 1] = '\0';
  refuse(pw, NULL, NULL, "at most 128 characters"); /* 129 ASCII */
  memset(pw, 'x', MQ_PASSWORD_MAX_BYTES + 1);
  pw[MQ_PASSWORD_MAX_BYTES + 1] = '\0';
  refuse(pw, NULL, NULL, "at most 128 characters"); /* 513 bytes */
  for (size_t i = 0; i < MQ_PASSWORD_MAX_CHARS + 1; i++) memcpy(pw + 4 * i, "\xF0\x9F\x98\x80", 4);
  pw[4 * (MQ_PASSWORD_MAX_CHARS + 1)] = '\0';
  refuse(pw, NULL, NULL, "at most 128 characters"); /* 129 emoji, 516 bytes */
  refuse("abcdefghik\xff", NULL, NULL, "valid UTF-8");
  refuse("abcdefghik\xc0\xaf", NULL, NULL, "valid UTF-8");     /* overlong '/' */
  refuse("abcdefghik\xed\xa0\x80", NULL, NULL, "valid UTF-8"); /* surrogate */
  refuse("abcdefghik\xe2\x82", NULL, NULL, "valid UTF-8");     /* truncated */
}

static void test_policy_repeats(void **state) {
  (void)state;
  refuse("aaaaaaaaaaaa", NULL, NULL, "one character repeated");
  refuse("AaAaAaAaAaAa", NULL, NULL, "one character repeated");
  refuse("éééééééééé", NULL, NULL, "one character repeated");
  refuse("          ", NULL, NULL, "one character repeated");
  refuse("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", NULL, NULL, "one character repeated");
}

static void test_policy_runs(void **state) {
  (void)state;
  const char *runs[] = {"0123456789",       "3456789012",  "9876543210", "2109876543",   "abcdefghij",
                        "ABCDEFGHIJKLMNOP", "ZYXWVUTSRQ",  "xyzabcdefg", "cbazyxwvut",   "AbCdEfGhIj",
                        "αβγδεζηθικ",       "!\"#$%&'()*", "qrstuvwxyz", "klmnopqrstuv", "5432109876543"};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) refuse(runs[i], NULL, NULL, "consecutive characters");
  /* The two examples in the brief are caught (as runs, before the list). */
  refuse("1234567890", NULL, NULL, "consecutive characters");
  refuse("abcdefghij", NULL, NULL, "consecutive characters");
}

static void test_policy_common(void **state) {
  (void)state;
  const char *common[] = {"password123",  "PASSWORD123", "Password123", "qwertyuiop",  "QwErTyUiOp",
                          "1q2w3e4r5t",   "1Q2W3E4R5T",  "iloveyou12",  "iloveyou123", "qwerty123456",
                          "1qaz2wsx3edc", "basketball",  "Basketball",  "HarryPotter", "welcome123",
                          "password1234", "q1w2e3r4t5",  "azertyuiop",  "1234567890-", "sonyericsson"};
  for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) refuse(common[i], NULL, NULL, "most common passwords");
  accept("password123x", NULL, NULL); /* exact matches only */
}

static void test_policy_email(void **state) {
  (void)state;
  refuse("xxJOHNDOExx-2024", "johndoe@example.com", NULL, "e-mail address");
  refuse("johndoe-2024-!", "JohnDoe@example.com", NULL, "e-mail address");
  refuse("my j.doe+news pw", "j.doe+news@example.com", NULL, "e-mail address");
  refuse("abcd-is-my-name", "abcd", NULL, "e-mail address");              /* no '@': the whole string */
  refuse("my x@y@zz pw!!", "x@y@zz@example.com", NULL, "e-mail address"); /* up to the last '@' */
  accept("xxJOHNDOExx-2024", NULL, NULL);
  accept("xxJOHNDOExx-2024", "", NULL);
  accept("my joh birthday!", "joh@example.com", NULL); /* 3 characters */
  accept("my john birthday!", "johndoe@example.com", NULL);
}

static void test_policy_display_name(void **state) {
  (void)state;
  refuse("my ada lovelace pw!", NULL, "Ada Lovelace", "display name");
  refuse("my ada lovelace pw!", NULL, "  Ada Lovelace\t", "display name"); /* trimmed */
  refuse("ADA LOVELACE rules", "someone@example.com", "ada lovelace", "display name");
  refuse("xxËLLAxxyy", NULL, "Ëlla", "display name"); /* ASCII folded, Ë exact */
  accept("xxëLLAxxyy", NULL, "Ëlla");                 /* non-ASCII letters are not folded */
  accept("my ada pw is long", NULL, "Ada Lovelace");
  accept("my ada lovelace pw!", NULL, "   ");
  accept("my ada lovelace pw!", NULL, NULL);
  /* E-mail is checked before the name. */
  refuse("adalovelace-ada lovelace", "adalovelace@example.com", "Ada Lovelace", "e-mail address");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_cheap, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_concurrent_hashing, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_round_trip_defaults, restore_defaults, restore_defaults),
      cmocka_unit_test_setup_teardown(test_wrong_password, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_salts_differ, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_needs_rehash, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_needs_rehash_lengths, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_malformed_stored_hash, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_long_passwords, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_misuse, use_cheap, restore_defaults),
      cmocka_unit_test_setup_teardown(test_set_params_bounds, restore_defaults, restore_defaults),
      cmocka_unit_test_setup_teardown(test_dummy_verify, restore_defaults, restore_defaults),
      cmocka_unit_test(test_policy_accepts),
      cmocka_unit_test(test_policy_length_and_encoding),
      cmocka_unit_test(test_policy_repeats),
      cmocka_unit_test(test_policy_runs),
      cmocka_unit_test(test_policy_common),
      cmocka_unit_test(test_policy_email),
      cmocka_unit_test(test_policy_display_name),
  };
  return cmocka_run_group_tests_name("password", tests, NULL, NULL);
}
