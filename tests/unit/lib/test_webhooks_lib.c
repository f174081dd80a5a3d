/*
 * test_webhooks_lib.c — the pure parts of webhooks: the signature (the test
 * vector docs/WEBHOOKS.md publishes), proto3 JSON of any message
 * (lib/mq_pbjson.h), and the SSRF policy on URLs and addresses
 * (lib/mq_outbound.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "lib/mq_outbound.h"
#include "lib/mq_pbjson.h"
#include "lib/mq_webhook_sig.h"
#include "marquee/events/v1/envelope.pb-c.h"

/* The vector of docs/WEBHOOKS.md, computed independently (Python's hmac). */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIK4vRJ1Gm"
#define VEC_T 1765000000
#define VEC_BODY                                                                                                   \
  "{\"id\":\"5f0c6d1e-6b1a-4b7e-9a51-3f0e6a1c2d34\",\"type\":\"bookings.BookingConfirmed\",\"created\":\"2025-12-" \
  "06T05:46:40Z\",\"organizationId\":\"7d3e4f5a-1b2c-4d5e-8f90-a1b2c3d4e5f6\",\"data\":{\"bookingId\":\"5f0c6d1e-" \
  "6b1a-4b7e-9a51-3f0e6a1c2d35\",\"totalMinor\":\"4500\",\"currency\":\"EUR\"}}"
#define VEC_HEX "b90529bda036284d2a3bc883a076480b2d459284cbee190f780919a43832a519"

static void test_signature_vector(void **state) {
  (void)state;
  char hex[65];
  mq_webhook_sig_v1(VEC_SECRET, VEC_T, VEC_BODY, strlen(VEC_BODY), hex);
  assert_string_equal(hex, VEC_HEX);
  char h[300];
  mq_webhook_sig_header(VEC_SECRET, NULL, VEC_T, VEC_BODY, strlen(VEC_BODY), h, sizeof h);
  assert_string_equal(h, "t=1765000000,v1=" VEC_HEX);
  mq_webhook_sig_header("whsec_new", VEC_SECRET, VEC_T, VEC_BODY, strlen(VEC_BODY), h, sizeof h);
  assert_non_null(strstr(h, ",v1=" VEC_HEX)); /* the previous secret's, second */
  assert_null(strstr(h, "t=1765000000,v1=" VEC_HEX));
  /* one byte of the body changed: another signature */
  char body[] = VEC_BODY;
  body[10] ^= 1;
  mq_webhook_sig_v1(VEC_SECRET, VEC_T, body, strlen(body), hex);
  assert_string_not_equal(hex, VEC_HEX);
}

static void test_pbjson_mapping(void **state) {
  (void)state;
  Marquee__Events__V1__BookingConfirmed b = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
  b.booking_id = (char *)"bk-1";
  b.event_id = (char *)"ev \"quoted\"\n<script>";
  b.total_minor = 4500;
  b.currency = (char *)"EUR";
  char *ids[] = {(char *)"t1", (char *)"t2"};
  b.ticket_ids = ids;
  b.n_ticket_ids = 2;
  Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT;
  u.ticket_type_id = (char *)"tt";
  u.quantity = 2;
  Marquee__Events__V1__BookedUnits *units[] = {&u};
  b.units = units;
  b.n_units = 1;
  char *j = mq_pbjson(&b.base, NULL);
  assert_string_equal(j,
                      "{\"bookingId\":\"bk-1\",\"eventId\":\"ev \\\"quoted\\\"\\n<script>\",\"units\":[{"
                      "\"ticketTypeId\":\"tt\",\"quantity\":2}],\"totalMinor\":\"4500\",\"currency\":\"EUR\","
                      "\"ticketIds\":[\"t1\",\"t2\"]}");
  free(j);
  /* defaults left out; a timestamp in RFC 3339; invalid UTF-8 replaced */
  Marquee__Events__V1__TicketCheckInUndone c = MARQUEE__EVENTS__V1__TICKET_CHECK_IN_UNDONE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = 1765000000;
  ts.nanos = 500000000;
  c.checked_in_at = &ts;
  c.reason = (char *)"bad \xff byte";
  j = mq_pbjson(&c.base, NULL);
  assert_string_equal(j, "{\"reason\":\"bad \xEF\xBF\xBD byte\",\"checkedInAt\":\"2025-12-06T05:46:40.500Z\"}");
  free(j);
  /* a sealed link token is never written */
  Marquee__Events__V1__PasswordResetRequested r = MARQUEE__EVENTS__V1__PASSWORD_RESET_REQUESTED__INIT;
  Marquee__Events__V1__SealedSecret s = MARQUEE__EVENTS__V1__SEALED_SECRET__INIT;
  uint8_t box[4] = {1, 2, 3, 4};
  s.box.data = box;
  s.box.len = 4;
  r.sealed_token = &s;
  j = mq_pbjson(&r.base, NULL);
  assert_null(strstr(j, "sealed"));
  assert_null(strstr(j, "AQIDBA"));
  free(j);
}

static bool special(const char *text) {
  uint8_t a[16];
  if (inet_pton(AF_INET, text, a) == 1) return mq_addr_special(a, 4);
  assert_int_equal(inet_pton(AF_INET6, text, a), 1);
  return mq_addr_special(a, 16);
}

static void test_special_addresses(void **state) {
  (void)state;
  const char *yes[] = {"127.0.0.1",
                       "10.9.8.7",
                       "172.16.0.1",
                       "172.31.255.255",
                       "192.168.0.1",
                       "169.254.169.254",
                       "100.64.0.1",
                       "0.0.0.0",
                       "224.0.0.1",
                       "255.255.255.255",
                       "::1",
                       "::",
                       "fc00::1",
                       "fd12::1",
                       "fe80::1",
                       "::ffff:10.0.0.1",
                       "::ffff:169.254.169.254",
                       "64:ff9b::a00:1",
                       "ff02::1",
                       "198.18.0.1"};
  const char *no[] = {"8.8.8.8",        "172.32.0.1", "93.184.216.34", "2606:4700:4700::1111",
                      "::ffff:8.8.8.8", "100.128.0.1"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (!special(yes[i])) fail_msg("%s should be special", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (special(no[i])) fail_msg("%s should be public", no[i]);
}

static void test_url_policy(void **state) {
  (void)state;
  mq_netlist_t *none = NULL, *loop = NULL, *bad = NULL;
  mq_error_t err;
  assert_int_equal(mq_netlist_parse("", "nets", &none, &err), MQ_OK);
  assert_int_equal(mq_netlist_parse("127.0.0.0/8, ::1/128", "nets", &loop, &err), MQ_OK);
  assert_int_equal(mq_netlist_parse("10.0.0.0/33", "nets", &bad, &err), MQ_INVALID_ARGUMENT);
  assert_int_equal(mq_netlist_parse("example.com", "nets", &bad, &err), MQ_INVALID_ARGUMENT);
  assert_null(bad);
  assert_int_equal(mq_outbound_check_url(&err, "url", "https://hooks.example.com/a?b=c", none), MQ_OK);
  assert_int_equal(mq_outbound_check_url(&err, "url", "https://8.8.8.8/x", none), MQ_OK);
  const char *refused[] = {"http://hooks.example.com/", "https://127.0.0.1/",   "https://localhost/",
                           "https://a.localhost/",      "https://[::1]/",       "https://169.254.169.254/",
                           "https://u@example.com/",    "file:///etc/passwd",   "https://",
                           "gopher://example.com/",     "https://exa mple.com/"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    if (mq_outbound_check_url(&err, "url", refused[i], none) != MQ_INVALID_ARGUMENT)
      fail_msg("%s should be refused", refused[i]);
  /* with loopback allowed: http to loopback too, not to other private ranges */
  assert_int_equal(mq_outbound_check_url(&err, "url", "http://127.0.0.1:8080/x", loop), MQ_OK);
  assert_int_equal(mq_outbound_check_url(&err, "url", "https://[::1]:8443/", loop), MQ_OK);
  assert_int_equal(mq_outbound_check_url(&err, "url", "https://10.0.0.1/", loop), MQ_INVALID_ARGUMENT);
  /* pinning: a name resolving to loopback is refused without the allowance, pinned with it */
  char pin[200];
  assert_int_equal(mq_outbound_pin("http://localhost:9/x", none, pin, sizeof pin, &err), MQ_PERMISSION_DENIED);
  assert_int_equal(mq_outbound_pin("http://127.0.0.1:9/x", loop, pin, sizeof pin, &err), MQ_OK);
  assert_string_equal(pin, "127.0.0.1:9:127.0.0.1");
  mq_netlist_free(none);
  mq_netlist_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signature_vector),
      cmocka_unit_test(test_pbjson_mapping),
      cmocka_unit_test(test_special_addresses),
      cmocka_unit_test(test_url_policy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
