/*
 * argon2_rate.c — the hash-bound ceiling of password sign-in on this machine
 * (bench/identity.sh). Runs libargon2's argon2id_hash_raw, as
 * mq_password_verify does for every SignIn (same algorithm, version 0x13,
 * 16-byte salt, 32-byte hash), in N threads at once for a fixed time and
 * reports completed hashes per second, so a measured sign-in rate can be
 * stated as a fraction of what the CPU can hash at all.
 *
 * Usage: mq-argon2-rate [--threads 1,2] [--seconds 3] [--m-kib 19456]
 *                       [--t 2] [--p 1]
 *   --threads  comma-separated thread counts, measured one after the other
 *   --m-kib / --t / --p  Argon2id memory (KiB), passes, lanes; pass the
 *              server's MARQUEE_ARGON2_MEMORY_KIB / MARQUEE_ARGON2_ITERATIONS
 *              (the server always uses p = 1)
 * Output: one JSON line per thread count:
 *   {"threads":2,"hashes":…,"hashes_per_s":…,"ms_per_hash":…,"m_kib":…,"t":…,"p":…}
 * hashes_per_s sums each thread's own rate (completed hashes / its elapsed
 * time, each thread finishing the hash in progress at the deadline), so no
 * partial hash is counted or dropped. ms_per_hash is the mean wall time of one
 * hash in one thread. Each thread hashes once before the clock starts (first
 * touch of its memory).
 */
#include <argon2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64

typedef struct {
  int id;
  uint32_t t, m, p;
  double seconds;
  pthread_barrier_t *barrier;
  uint64_t hashes;
  double elapsed_s;
  int failed;
} worker_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hash_once(const worker_t *w, uint64_t i) {
  char pwd[64];
  uint8_t salt[16], out[32];
  int n = snprintf(pwd, sizeof pwd, "correct horse battery %d-%llu", w->id, (unsigned long long)i);
  for (size_t k = 0; k < sizeof salt; k++) salt[k] = (uint8_t)(i * 31 + k * 7 + (uint64_t)w->id);
  return argon2id_hash_raw(w->t, w->m, w->p, pwd, (size_t)n, salt, sizeof salt, out, sizeof out);
}

static void *run(void *arg) {
  worker_t *w = arg;
  if (hash_once(w, 0) != ARGON2_OK) w->failed = 1; /* warm-up, not counted */
  pthread_barrier_wait(w->barrier);
  double t0 = now_s(), end = t0 + w->seconds, t = t0;
  while (!w->failed && t < end) {
    int rc = hash_once(w, w->hashes + 1);
    if (rc != ARGON2_OK) {
      fprintf(stderr, "mq-argon2-rate: %s\n", argon2_error_message(rc));
      w->failed = 1;
      break;
    }
    w->hashes++;
    t = now_s();
  }
  w->elapsed_s = t - t0;
  return NULL;
}

static int measure(int threads, double seconds, uint32_t t, uint32_t m, uint32_t p) {
  worker_t w[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) {
    w[i] = (worker_t){.id = i, .t = t, .m = m, .p = p, .seconds = seconds, .barrier = &barrier};
    if (pthread_create(&th[i], NULL, run, &w[i]) != 0) {
      fprintf(stderr, "mq-argon2-rate: cannot start thread\n");
      exit(1);
    }
  }
  double rate = 0, per_hash = 0;
  uint64_t total = 0;
  int failed = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    failed |= w[i].failed;
    total += w[i].hashes;
    if (w[i].hashes) {
      rate += (double)w[i].hashes / w[i].elapsed_s;
      per_hash += w[i].elapsed_s / (double)w[i].hashes / threads;
    }
  }
  pthread_barrier_destroy(&barrier);
  if (failed) return 1;
  printf("{\"threads\":%d,\"hashes\":%llu,\"hashes_per_s\":%.1f,\"ms_per_hash\":%.2f,\"m_kib\":%u,\"t\":%u,\"p\":%u}\n",
         threads, (unsigned long long)total, rate, per_hash * 1000, m, t, p);
  fflush(stdout);
  return 0;
}

static int parse_u32(const char *s, uint32_t *out) {
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (!end || end == s || *end || v == 0 || v > UINT32_MAX) return 0;
  *out = (uint32_t)v;
  return 1;
}

int main(int argc, char **argv) {
  const char *threads = "1,2";
  double seconds = 3;
  uint32_t t = 2, m = 19456, p = 1;
  for (int i = 1; i < argc; i += 2) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = v != NULL;
    if (ok && !strcmp(argv[i], "--threads"))
      threads = v;
    else if (ok && !strcmp(argv[i], "--seconds"))
      ok = (seconds = atof(v)) > 0;
    else if (ok && !strcmp(argv[i], "--m-kib"))
      ok = parse_u32(v, &m);
    else if (ok && !strcmp(argv[i], "--t"))
      ok = parse_u32(v, &t);
    else if (ok && !strcmp(argv[i], "--p"))
      ok = parse_u32(v, &p);
    else
      ok = 0;
    if (!ok) {
      fprintf(stderr, "usage: mq-argon2-rate [--threads 1,2] [--seconds 3] [--m-kib 19456] [--t 2] [--p 1]\n");
      return 2;
    }
  }
  for (const char *s = threads; *s;) {
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (end == s || n < 1 || n > MAX_THREADS || (*end && *end != ',')) {
      fprintf(stderr, "mq-argon2-rate: --threads wants a list such as 1,2 (1..%d)\n", MAX_THREADS);
      return 2;
    }
    if (measure((int)n, seconds, t, m, p) != 0) return 1;
    s = *end ? end + 1 : end;
  }
  return 0;
}
