/*
 * mq_ids.c — see mq_ids.h. The xorshift128+ state is thread-local, so
 * request-id generation takes no lock.
 */
#include "core/mq_ids.h"
#include "core/mq_xmalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

static __thread uint64_t rng_s[2];

static uint64_t rng_next(void) {
  if (!rng_s[0] && !rng_s[1]) {
    if (getrandom(rng_s, sizeof rng_s, 0) != (ssize_t)sizeof rng_s || (!rng_s[0] && !rng_s[1])) {
      rng_s[0] = (uint64_t)(uintptr_t)&rng_s ^ 0x9E3779B97F4A7C15ull;
      rng_s[1] = 0x2545F4914F6CDD1Dull;
    }
  }
  uint64_t s1 = rng_s[0];
  const uint64_t s0 = rng_s[1];
  rng_s[0] = s0;
  s1 ^= s1 << 23;
  rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return rng_s[1] + s0;
}

void mq_random_hex(char *out, size_t hex_chars) {
  static const char hx[] = "0123456789abcdef";
  uint64_t r = 0;
  for (size_t i = 0; i < hex_chars; i++) {
    if (i % 16 == 0) r = rng_next();
    out[i] = hx[r & 15];
    r >>= 4;
  }
  out[hex_chars] = '\0';
}

void mq_uuid_v4(char out[37]) {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n <= 0) mq_die("getrandom failed: no entropy (refusing is safer than colliding ids)");
    got += (size_t)n;
  }
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static size_t b64_encode(const char *tb, bool pad, const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[o++] = tb[(acc >> bits) & 63];
    }
  }
  if (bits) out[o++] = tb[(acc << (6 - bits)) & 63];
  while (pad && o % 4) out[o++] = '=';
  out[o] = '\0';
  return o;
}

size_t mq_base64url_encode(const unsigned char *in, size_t n, char *out) {
  return b64_encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false, in, n, out);
}

size_t mq_base64_encode(const unsigned char *in, size_t n, char *out) {
  return b64_encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true, in, n, out);
}

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

long mq_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
  if (n % 4 == 1) return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_value((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-canonical trailing bits */
  return (long)o;
}
