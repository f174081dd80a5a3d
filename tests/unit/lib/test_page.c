/*
 * test_page.c — cmocka tests for lib/mq_page.c: page tokens bound to their
 * query (AIP-158), on real generated request messages.
 *
 * Covers: a token round-trips its cursor; the fingerprint ignores
 * page_size and page_token, and changes with any filter
 * and with the request type; a token sent with other filters, one of
 * another method, a truncated or non-base64url string, and an empty
 * cursor are refused with INVALID_ARGUMENT naming the field; the common
 * "<ms>.<uuid>" cursor helpers.
 *
 * Invariant: pure functions, no network. Read next: lib/mq_page.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

#include "lib/mq_page.h"
#include "marquee/bookings/v1/bookings.pb-c.h"
#include "marquee/catalog/v1/events.pb-c.h"

#define UUID "6f1c1b7e-8a55-4d6a-9a55-0a1e5a1e5a1e"

static void test_round_trip_and_binding(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  q.city = (char *)"Paris";
  q.page_size = 10;
  char *tok = mq_page_token_make(&a, &q.base, "123." UUID);
  assert_null(strchr(tok, '.')); /* opaque: the cursor does not show */
  const char *cursor;
  /* the next page: same filters, the token, another page size */
  q.page_token = tok;
  q.page_size = 50;
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", tok, &cursor, &err), MQ_OK);
  assert_string_equal(cursor, "123." UUID);
  /* other filters */
  q.city = (char *)"Lyon";
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", tok, &cursor, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  assert_non_null(strstr(err.message, "other filters"));
  q.city = (char *)"Paris";
  q.free_only = true;
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", tok, &cursor, &err), MQ_INVALID_ARGUMENT);
  /* another method's request with no filters at all */
  Marquee__Catalog__V1__ListOrganizationEventsRequest o = MARQUEE__CATALOG__V1__LIST_ORGANIZATION_EVENTS_REQUEST__INIT;
  Marquee__Catalog__V1__ListEventsRequest empty = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  assert_int_not_equal(mq_page_fingerprint(&o.base), mq_page_fingerprint(&empty.base));
  /* no token: the first page */
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", "", &cursor, &err), MQ_OK);
  assert_null(cursor);
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", NULL, &cursor, &err), MQ_OK);
  assert_null(cursor);
  mq_arena_release(&a);
}

static void test_refuses_what_is_not_a_token(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  Marquee__Catalog__V1__ListEventsRequest q = MARQUEE__CATALOG__V1__LIST_EVENTS_REQUEST__INIT;
  const char *cursor;
  static const char *const bad[] = {"garbage!", "QUJD", "12." UUID, "", NULL};
  for (int i = 0; bad[i]; i++) {
    if (!bad[i][0]) continue;
    assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", bad[i], &cursor, &err), MQ_INVALID_ARGUMENT);
    assert_string_equal(err.field, "page_token");
  }
  char *tok = mq_page_token_make(&a, &q.base, "1." UUID);
  char *cut = mq_arena_strndup(&a, tok, strlen(tok) - 5);
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", cut, &cursor, &err), MQ_INVALID_ARGUMENT);
  char big[600];
  memset(big, 'A', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(mq_page_token_read(&a, &q.base, "page_token", big, &cursor, &err), MQ_INVALID_ARGUMENT);
  mq_arena_release(&a);
}

static void test_nested_page_and_key_cursor(void **state) {
  (void)state;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  Marquee__Bookings__V1__ListEventBookingsRequest q = MARQUEE__BOOKINGS__V1__LIST_EVENT_BOOKINGS_REQUEST__INIT;
  q.event_id = (char *)UUID;
  uint64_t bare = mq_page_fingerprint(&q.base);
  q.page_size = 30;
  q.page_token = (char *)"x";
  assert_int_equal(mq_page_fingerprint(&q.base), bare); /* paging fields do not count */
  char *tok = mq_page_token_make_key(&a, &q.base, 1700000000000LL, UUID);
  bool has;
  int64_t ms;
  const char *id;
  assert_int_equal(mq_page_token_read_key(&a, &q.base, "page_token", tok, &has, &ms, &id, &err), MQ_OK);
  assert_true(has);
  assert_int_equal(ms, 1700000000000LL);
  assert_string_equal(id, UUID);
  assert_int_equal(mq_page_token_read_key(&a, &q.base, "page_token", NULL, &has, &ms, &id, &err), MQ_OK);
  assert_false(has);
  /* a cursor that is not "<ms>.<uuid>" inside a well-bound token */
  char *odd = mq_page_token_make(&a, &q.base, "not-a-cursor");
  assert_int_equal(mq_page_token_read_key(&a, &q.base, "page_token", odd, &has, &ms, &id, &err), MQ_INVALID_ARGUMENT);
  assert_string_equal(err.field, "page_token");
  q.event_id = (char *)"7f1c1b7e-8a55-4d6a-9a55-0a1e5a1e5a1e"; /* another event's bookings */
  assert_int_equal(mq_page_token_read_key(&a, &q.base, "page_token", tok, &has, &ms, &id, &err), MQ_INVALID_ARGUMENT);
  mq_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_and_binding),
      cmocka_unit_test(test_refuses_what_is_not_a_token),
      cmocka_unit_test(test_nested_page_and_key_cursor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
