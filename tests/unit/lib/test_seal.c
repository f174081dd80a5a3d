/*
 * test_seal.c — cmocka tests for lib/mq_seal.c: secrets sealed to the
 * notifier's key open only with its secret key.
 *
 * Covers: a round trip through a fresh key pair; the box is not the secret
 * and differs each time (an ephemeral key per box); the box names its key
 * and only that key opens it (rotation: a list of two secret keys opens
 * boxes of both); a flipped byte, a short buffer and a public-only list
 * fail to open, and a failed open leaves the buffer zeroed; malformed key
 * lists are refused naming the configuration key.
 *
 * Invariant: pure functions, no network. Read next: lib/mq_seal.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/mq_seal.h"

#define SECRET "mqr_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd"

static void test_round_trip(void **state) {
  (void)state;
  char pub[128], sec[128];
  mq_seal_keygen("n1", pub, sizeof pub, sec, sizeof sec);
  assert_true(!strncmp(pub, "n1:", 3) && !strncmp(sec, "n1:", 3));
  mq_seal_keys_t *pk = NULL, *sk = NULL;
  mq_error_t err;
  assert_int_equal(mq_seal_keys_parse(pub, false, "MARQUEE_NOTIFY_KEYS", &pk, &err), MQ_OK);
  assert_int_equal(mq_seal_keys_parse(sec, true, "SECRET", &sk, &err), MQ_OK);
  mq_arena_t a;
  mq_arena_init(&a);
  char *kid, *kid2;
  uint8_t *box, *box2;
  size_t len, len2;
  assert_int_equal(mq_seal(pk, SECRET, &a, &kid, &box, &len, &err), MQ_OK);
  assert_int_equal(mq_seal(pk, SECRET, &a, &kid2, &box2, &len2, &err), MQ_OK);
  assert_string_equal(kid, "n1");
  assert_int_equal(len, strlen(SECRET) + 48);
  assert_null(memmem(box, len, "mqr_", 4)); /* not the secret in clear */
  assert_true(len == len2 && memcmp(box, box2, len) != 0);
  char out[128];
  assert_true(mq_seal_open(sk, kid, box, len, out, sizeof out));
  assert_string_equal(out, SECRET);
  /* another key id, a public list, a short buffer, a flipped byte: no */
  assert_false(mq_seal_open(sk, "n2", box, len, out, sizeof out));
  assert_false(mq_seal_open(pk, kid, box, len, out, sizeof out));
  assert_false(mq_seal_open(sk, kid, box, len, out, strlen(SECRET)));
  box[len / 2] ^= 1;
  assert_false(mq_seal_open(sk, kid, box, len, out, sizeof out));
  for (size_t i = 0; i < sizeof out; i++) assert_int_equal(out[i], 0);
  mq_arena_release(&a);
  mq_seal_keys_free(pk);
  mq_seal_keys_free(sk);
}

static void test_rotation(void **state) {
  (void)state;
  char pub1[128], sec1[128], pub2[128], sec2[128], list[300];
  mq_seal_keygen("old", pub1, sizeof pub1, sec1, sizeof sec1);
  mq_seal_keygen("new", pub2, sizeof pub2, sec2, sizeof sec2);
  mq_seal_keys_t *p1, *p2, *both;
  mq_error_t err;
  assert_int_equal(mq_seal_keys_parse(pub1, false, "K", &p1, &err), MQ_OK);
  snprintf(list, sizeof list, "%s,%s", pub2, pub1);
  assert_int_equal(mq_seal_keys_parse(list, false, "K", &p2, &err), MQ_OK); /* the first seals */
  snprintf(list, sizeof list, "%s,%s", sec2, sec1);
  assert_int_equal(mq_seal_keys_parse(list, true, "K", &both, &err), MQ_OK);
  mq_arena_t a;
  mq_arena_init(&a);
  char *k1, *k2, out[64];
  uint8_t *b1, *b2;
  size_t l1, l2;
  assert_int_equal(mq_seal(p1, "one", &a, &k1, &b1, &l1, &err), MQ_OK);
  assert_int_equal(mq_seal(p2, "two", &a, &k2, &b2, &l2, &err), MQ_OK);
  assert_string_equal(k1, "old");
  assert_string_equal(k2, "new");
  assert_true(mq_seal_open(both, k1, b1, l1, out, sizeof out));
  assert_string_equal(out, "one");
  assert_true(mq_seal_open(both, k2, b2, l2, out, sizeof out));
  assert_string_equal(out, "two");
  mq_arena_release(&a);
  mq_seal_keys_free(p1);
  mq_seal_keys_free(p2);
  mq_seal_keys_free(both);
}

static void test_malformed_lists(void **state) {
  (void)state;
  const char *bad[] = {"",
                       "nokey",
                       "kid:",
                       "kid:AAAA",
                       "bad kid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                       "kid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
                       NULL};
  for (int i = 0; bad[i]; i++) {
    mq_seal_keys_t *k = (mq_seal_keys_t *)1;
    mq_error_t err;
    assert_int_equal(mq_seal_keys_parse(bad[i], false, "MARQUEE_NOTIFY_KEYS", &k, &err), MQ_INVALID_ARGUMENT);
    assert_null(k);
    assert_string_equal(err.field, "MARQUEE_NOTIFY_KEYS");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rotation),
      cmocka_unit_test(test_malformed_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
