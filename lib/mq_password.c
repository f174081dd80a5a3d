/*
 * mq_password.c — Argon2id hashing and the password policy declared in
 * mq_password.h.
 *
 * Invariants: the password is only ever read in place (strnlen, the policy's
 * scans) and passed to libargon2; it is never copied, logged or formatted
 * into a message, so no buffer here ever holds it. The only secret this file
 * creates is the dummy hash's random input, wiped with explicit_bzero. The
 * current parameters (params, under params_lock) and the dummy-hash cache
 * (dummy_*, under dummy_lock) are the only mutable state; each lock is held
 * for a copy, never across an Argon2 run, except the once-per-parameter-set
 * dummy build. Argon2 runs pass through a gate (gate_*): at most one per
 * online CPU at a time, admitted in arrival order, so a burst of sign-ins
 * on a large worker pool queues fairly instead of holding m_cost of memory
 * per worker and slicing the CPUs between them.
 *
 * A stored string is parsed twice: by parse_encoded() here (strict: exactly
 * "$argon2id$v=19$m=<u32>,t=<u32>,p=<u32>$<b64>$<b64>", unpadded base64, no
 * leading zeros, parameters within the header's bounds) to decide
 * needs_rehash and refuse absurd costs before any work, then by
 * argon2id_verify(), which recomputes and compares in constant time.
 *
 * Read next: tests/unit/lib/test_password.c.
 */
#include "lib/mq_password.h"

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/mq_validate.h"

#define ARGON2_MIN_KIB_PER_LANE 8u

typedef struct {
  uint32_t t_cost;
  uint32_t m_cost_kib;
  uint32_t parallelism;
} params_t;

static pthread_mutex_t params_lock = PTHREAD_MUTEX_INITIALIZER;
static params_t params = {MQ_PASSWORD_T_COST, MQ_PASSWORD_M_COST_KIB, MQ_PASSWORD_PARALLELISM};

static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char dummy_encoded[MQ_PASSWORD_HASH_MAX]; /* "" until built */
static params_t dummy_params;                    /* what dummy_encoded was built with */

static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static unsigned long long gate_width, gate_next, gate_done; /* tickets: first come, first hashed */

static void gate_init(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  gate_width = n > 0 ? (unsigned long long)n : 1;
}

static void gate_enter(void) {
  pthread_once(&gate_once, gate_init);
  pthread_mutex_lock(&gate_lock);
  unsigned long long ticket = gate_next++;
  while (ticket >= gate_done + gate_width) pthread_cond_wait(&gate_cv, &gate_lock);
  pthread_mutex_unlock(&gate_lock);
}

static void gate_leave(void) {
  pthread_mutex_lock(&gate_lock);
  gate_done++;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_lock);
}

/* ---- parameters ------------------------------------------------------------------ */

static bool params_valid(params_t p) {
  return p.t_cost >= 1 && p.t_cost <= MQ_PASSWORD_T_COST_MAX && p.parallelism >= 1 &&
         p.parallelism <= MQ_PASSWORD_PARALLELISM_MAX && p.m_cost_kib <= MQ_PASSWORD_M_COST_KIB_MAX &&
         (uint64_t)p.m_cost_kib >= (uint64_t)ARGON2_MIN_KIB_PER_LANE * p.parallelism;
}

static bool params_equal(params_t a, params_t b) {
  return a.t_cost == b.t_cost && a.m_cost_kib == b.m_cost_kib && a.parallelism == b.parallelism;
}

static params_t params_get(void) {
  pthread_mutex_lock(&params_lock);
  params_t p = params;
  pthread_mutex_unlock(&params_lock);
  return p;
}

mq_code_t mq_password_set_params(uint32_t t_cost, uint32_t m_cost_kib, uint32_t parallelism) {
  params_t p = {t_cost, m_cost_kib, parallelism};
  if (!params_valid(p)) return MQ_INVALID_ARGUMENT;
  pthread_mutex_lock(&params_lock);
  params = p;
  pthread_mutex_unlock(&params_lock);
  return MQ_OK;
}

void mq_password_get_params(uint32_t *t_cost, uint32_t *m_cost_kib, uint32_t *parallelism) {
  params_t p = params_get();
  if (t_cost) *t_cost = p.t_cost;
  if (m_cost_kib) *m_cost_kib = p.m_cost_kib;
  if (parallelism) *parallelism = p.parallelism;
}

/* ---- hashing ------------------------------------------------------------------------ */

static bool fill_random(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    got += (size_t)r;
  }
  return true;
}

/* Shared by the policy (rule 2) and mq_password_hash(). */
static mq_code_t too_long(mq_error_t *err, const char *field) {
  return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at most %u characters", MQ_PASSWORD_MAX_CHARS);
}

/* libargon2's result as ours. Allocation and thread failures are transient
 * (UNAVAILABLE: retry); anything else is a bug or a bad stored string. */
static mq_code_t from_argon2(mq_error_t *err, int rc, const char *what) {
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR || rc == ARGON2_THREAD_FAIL)
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "password %s: out of memory; retry later", what);
  return mq_error_set(err, MQ_INTERNAL, NULL, "password %s failed (argon2: %s)", what, argon2_error_message(rc));
}

/* Hash pwd[0..len) with p and a fresh salt into out[out_len]. */
static mq_code_t hash_with(params_t p, const void *pwd, size_t len, char *out, size_t out_len, mq_error_t *err) {
  unsigned char salt[MQ_PASSWORD_SALT_LEN];
  if (!fill_random(salt, sizeof salt))
    return mq_error_set(err, MQ_INTERNAL, NULL, "password hashing: getrandom failed (errno %d)", errno);
  gate_enter();
  int rc = argon2id_hash_encoded(p.t_cost, p.m_cost_kib, p.parallelism, pwd, len, salt, sizeof salt,
                                 MQ_PASSWORD_HASH_LEN, out, out_len);
  gate_leave();
  if (rc != ARGON2_OK) return from_argon2(err, rc, "hashing");
  return MQ_OK;
}

mq_code_t mq_password_hash(const char *password, char *out, size_t out_len, mq_error_t *err) {
  if (out && out_len > 0) out[0] = '\0';
  if (!password || !out || out_len < MQ_PASSWORD_HASH_MAX)
    return mq_error_set(err, MQ_INTERNAL, NULL, "internal error: invalid mq_password_hash call");
  size_t len = strnlen(password, MQ_PASSWORD_MAX_BYTES + 1);
  if (len > MQ_PASSWORD_MAX_BYTES) return too_long(err, "password");
  mq_code_t rc = hash_with(params_get(), password, len, out, out_len, err);
  if (rc != MQ_OK) out[0] = '\0';
  return rc;
}

/* ---- the stored string --------------------------------------------------------------- */

typedef struct {
  params_t p;
  size_t salt_len; /* decoded bytes */
  size_t hash_len;
} encoded_t;

static bool eat(const char **s, const char *lit) {
  size_t n = strlen(lit);
  if (strncmp(*s, lit, n) != 0) return false;
  *s += n;
  return true;
}

/* A decimal uint32 without sign or leading zeros. */
static bool eat_u32(const char **s, uint32_t *out) {
  const char *c = *s;
  uint64_t v = 0;
  if (*c < '0' || *c > '9') return false;
  if (c[0] == '0' && c[1] >= '0' && c[1] <= '9') return false;
  for (; *c >= '0' && *c <= '9'; c++) {
    v = v * 10 + (uint64_t)(*c - '0');
    if (v > UINT32_MAX) return false;
  }
  *out = (uint32_t)v;
  *s = c;
  return true;
}

static bool is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Unpadded standard base64 (what libargon2 writes); *bytes = decoded size. */
static bool eat_b64(const char **s, size_t *bytes) {
  size_t n = 0;
  while (is_b64((*s)[n])) n++;
  if (n == 0 || n % 4 == 1) return false;
  *bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  *s += n;
  return true;
}

static bool parse_encoded(const char *s, encoded_t *e) {
  uint32_t version = 0;
  if (strnlen(s, MQ_PASSWORD_HASH_MAX) >= MQ_PASSWORD_HASH_MAX) return false;
  if (!eat(&s, "$argon2id$v=") || !eat_u32(&s, &version) || version != ARGON2_VERSION_13) return false;
  if (!eat(&s, "$m=") || !eat_u32(&s, &e->p.m_cost_kib)) return false;
  if (!eat(&s, ",t=") || !eat_u32(&s, &e->p.t_cost)) return false;
  if (!eat(&s, ",p=") || !eat_u32(&s, &e->p.parallelism)) return false;
  if (!eat(&s, "$") || !eat_b64(&s, &e->salt_len)) return false;
  if (!eat(&s, "$") || !eat_b64(&s, &e->hash_len)) return false;
  return *s == '\0' && params_valid(e->p) && e->salt_len >= ARGON2_MIN_SALT_LENGTH && e->hash_len >= ARGON2_MIN_OUTLEN;
}

/* ---- verification ---------------------------------------------------------------------- */

mq_code_t mq_password_verify(const char *password, const char *encoded, bool *needs_rehash, mq_error_t *err) {
  encoded_t e;
  if (needs_rehash) *needs_rehash = false;
  if (!password) return mq_error_set(err, MQ_INTERNAL, NULL, "internal error: invalid mq_password_verify call");
  if (!encoded || !parse_encoded(encoded, &e))
    return mq_error_set(err, MQ_INTERNAL, NULL, "the stored password hash is malformed");
  size_t len = strnlen(password, MQ_PASSWORD_MAX_BYTES + 1);
  if (len > MQ_PASSWORD_MAX_BYTES) return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "wrong password");
  gate_enter();
  int rc = argon2id_verify(encoded, password, len);
  gate_leave();
  if (rc == ARGON2_VERIFY_MISMATCH) return mq_error_set(err, MQ_UNAUTHENTICATED, NULL, "wrong password");
  if (rc != ARGON2_OK) return from_argon2(err, rc, "verification");
  if (needs_rehash)
    *needs_rehash =
        !params_equal(e.p, params_get()) || e.salt_len != MQ_PASSWORD_SALT_LEN || e.hash_len != MQ_PASSWORD_HASH_LEN;
  return MQ_OK;
}

/* Copy the dummy hash for the current parameters into out, building it first
 * if the parameters changed since (or it was never built). false if it could
 * not be built (getrandom or allocation failure): the caller skips the work. */
static bool dummy_get(char out[MQ_PASSWORD_HASH_MAX]) {
  params_t p = params_get();
  pthread_mutex_lock(&dummy_lock);
  if (!dummy_encoded[0] || !params_equal(dummy_params, p)) {
    unsigned char secret[32];
    dummy_encoded[0] = '\0';
    if (fill_random(secret, sizeof secret) &&
        hash_with(p, secret, sizeof secret, dummy_encoded, sizeof dummy_encoded, NULL) == MQ_OK)
      dummy_params = p;
    else
      dummy_encoded[0] = '\0';
    explicit_bzero(secret, sizeof secret);
  }
  memcpy(out, dummy_encoded, MQ_PASSWORD_HASH_MAX);
  pthread_mutex_unlock(&dummy_lock);
  return out[0] != '\0';
}

void mq_password_dummy_verify(const char *password) {
  char encoded[MQ_PASSWORD_HASH_MAX];
  if (!password) password = "";
  size_t len = strnlen(password, MQ_PASSWORD_MAX_BYTES + 1);
  if (len > MQ_PASSWORD_MAX_BYTES) return; /* as mq_password_verify: no hashing */
  if (!dummy_get(encoded)) return;
  gate_enter();
  (void)argon2id_verify(encoded, password, len);
  gate_leave();
}

/* ---- policy --------------------------------------------------------------------------- */

/* The most common breached passwords of 10+ characters (shorter ones are
 * already refused by length), lower case. Mostly from SecLists
 * Passwords/Common-Credentials/10-million-password-list-top-10000.txt (in its
 * frequency order), plus a few equally notorious variants. Profanity and
 * spam-bot strings from that list are left out. Entries that rules 3-4 also
 * catch ("1234567890", "1111111111") are kept so this list stands alone. */
static const char *const COMMON[] = {
    "qwertyuiop",   "1234567890",   "q1w2e3r4t5",   "1q2w3e4r5t",   "4815162342",   "0987654321",   "1111111111",
    "1029384756",   "password123",  "123qweasdzxc", "1qaz2wsx3edc", "1357924680",   "12345678910",  "1122334455",
    "123456789a",   "1234554321",   "12345qwert",   "1234512345",   "1123581321",   "q1w2e3r4t5y6", "1q2w3e4r5t6y",
    "qwerty12345",  "qwerty123456", "qazwsxedcrfv", "1234567890q",  "0000000000",   "9876543210",   "5555555555",
    "123456qwerty", "123456789q",   "123456789z",   "7777777777",   "9999999999",   "1234567891",   "1234567890a",
    "a123456789",   "zxcvbnm123",   "qazwsxedc123", "12345qwerty",  "7894561230",   "0192837465",   "zxcasdqwe123",
    "qwert12345",   "1qazxsw23edc", "azertyuiop",   "1212121212",   "2222222222",   "1234509876",   "123456789qwe",
    "1234567899",   "123456789d",   "123456789m",   "123456789s",   "qwerasdfzxcv", "qwertyqwerty", "123456654321",
    "poiuytrewq",   "qwerty1234",   "aaaaaaaaaa",   "gfhjkmgfhjkm", "password12",   "password99",   "password1234",
    "iloveyou12",   "iloveyou123",  "welcome123",   "basketball",   "manchester",   "california",   "strawberry",
    "tinkerbell",   "terminator",   "washington",   "skateboard",   "christopher",  "abrakadabra",  "leavemealone",
    "harrypotter",  "playstation",  "university",   "konstantin",   "hellokitty",   "dragonball",   "realmadrid",
    "microphone",   "highlander",   "underground",  "ghostrider",   "enterprise",   "evangelion",   "dragonballz",
    "ironmaiden",   "undertaker",   "revolution",   "mississippi",  "aleksandra",   "anastasiya",   "sonyericsson",
    "tokiohotel",   "motherlode",   "experienced",  "1234567890-",
};

static mq_code_t refuse(mq_error_t *err, const char *field, const char *msg) {
  return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "%s", msg);
}

static uint32_t fold(uint32_t c) {
  return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The next code point of already-validated UTF-8 at *p, ASCII-folded. */
static uint32_t next_cp(const unsigned char **p) {
  const unsigned char *s = *p;
  uint32_t c = s[0];
  if (c < 0x80) {
    *p = s + 1;
    return fold(c);
  }
  if (c < 0xE0) {
    *p = s + 2;
    return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
  }
  if (c < 0xF0) {
    *p = s + 3;
    return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
  }
  *p = s + 4;
  return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

/* +1 if b follows a, -1 if b precedes a, 0 otherwise; digits and (folded)
 * letters wrap around. */
static int step(uint32_t a, uint32_t b) {
  int mod = 0, base = 0;
  if (a >= '0' && a <= '9' && b >= '0' && b <= '9') {
    mod = 10;
    base = '0';
  } else if (a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z') {
    mod = 26;
    base = 'a';
  }
  if (mod) {
    int d = (((int)b - base) - ((int)a - base) + mod) % mod;
    return d == 1 ? 1 : d == mod - 1 ? -1 : 0;
  }
  if (b == a + 1) return 1;
  if (a == b + 1) return -1;
  return 0;
}

/* Rules 3 and 4 over valid UTF-8 s[0..n), n > 0. */
static bool is_repeat(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  uint32_t first = next_cp(&p);
  while (p < end)
    if (next_cp(&p) != first) return false;
  return true;
}

static bool is_run(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  uint32_t prev = next_cp(&p);
  int dir = 0;
  while (p < end) {
    uint32_t c = next_cp(&p);
    int st = step(prev, c);
    if (st == 0 || (dir != 0 && st != dir)) return false;
    dir = st;
    prev = c;
  }
  return dir != 0;
}

static bool is_common(const char *s) {
  for (size_t i = 0; i < sizeof COMMON / sizeof COMMON[0]; i++)
    if (strcasecmp(s, COMMON[i]) == 0) return true;
  return false;
}

/* Whether hay[0..hn) contains needle[0..nn), ASCII case-insensitively. */
static bool contains_ci(const char *hay, size_t hn, const char *needle, size_t nn) {
  if (nn == 0 || nn > hn) return false;
  for (size_t i = 0; i + nn <= hn; i++) {
    size_t j = 0;
    while (j < nn && fold((unsigned char)hay[i + j]) == fold((unsigned char)needle[j])) j++;
    if (j == nn) return true;
  }
  return false;
}

/* Code points of s[0..n), or bytes if it is not valid UTF-8. */
static size_t chars(const char *s, size_t n) {
  size_t c = mq_utf8_length(s, n);
  return c == (size_t)-1 ? n : c;
}

/* Whether the password contains ctx[0..n) and ctx is long enough to count. */
static bool contains_context(const char *pw, size_t pw_len, const char *ctx, size_t n) {
  return chars(ctx, n) >= MQ_PASSWORD_CONTEXT_MIN_CHARS && contains_ci(pw, pw_len, ctx, n);
}

mq_code_t mq_password_check_policy(mq_error_t *err, const char *field, const char *password, const char *email,
                                   const char *display_name) {
  if (!password || !password[0]) return refuse(err, field, "is required");
  size_t len = strnlen(password, MQ_PASSWORD_MAX_BYTES + 1);
  if (len > MQ_PASSWORD_MAX_BYTES) return too_long(err, field);
  if (!mq_utf8_valid(password, len)) return refuse(err, field, "must be valid UTF-8");
  size_t n_chars = mq_utf8_length(password, len);
  if (n_chars < MQ_PASSWORD_MIN_CHARS)
    return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be at least %u characters", MQ_PASSWORD_MIN_CHARS);
  if (n_chars > MQ_PASSWORD_MAX_CHARS) return too_long(err, field);
  if (is_repeat(password, len)) return refuse(err, field, "must not be one character repeated");
  if (is_run(password, len))
    return refuse(err, field, "must not be a sequence of consecutive characters (like 1-2-3-4... or a-b-c-d...)");
  if (is_common(password))
    return refuse(err, field, "is one of the most common passwords (found in data breaches); choose another");
  if (email && email[0]) {
    const char *at = strrchr(email, '@');
    size_t n = at ? (size_t)(at - email) : strlen(email);
    if (contains_context(password, len, email, n))
      return refuse(err, field, "must not contain the name part of your e-mail address");
  }
  if (display_name) {
    const char *s = display_name;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[0])) {
      s++;
      n--;
    }
    while (n > 0 && is_space(s[n - 1])) n--;
    if (contains_context(password, len, s, n)) return refuse(err, field, "must not contain your display name");
  }
  return MQ_OK;
}
