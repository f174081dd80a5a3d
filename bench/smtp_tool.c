/*
 * smtp_tool.c — mq-bench-smtp, the baseline of bench/notifier.sh: the rate
 * at which one thread builds mails (lib/mq_mail.h, the same builder and
 * SMTP client marquee-notifier uses) and hands them to an SMTP server, one
 * connection per mail as the notifier does, with nothing else around
 * (no Kafka, no store, no templates).
 *
 * Usage: mq-bench-smtp SMTP_URL COUNT DOMAIN
 *   sends COUNT mails to raw-<i>@DOMAIN; prints one JSON line
 *   {"mails":…,"seconds":…,"mails_per_s":…,"failed":…}.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/mq_mail.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: mq-bench-smtp SMTP_URL COUNT DOMAIN\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  long count = atol(argv[2]);
  mq_smtp_opts_t o = {.url = argv[1], .timeout_ms = 30000};
  const char *text =
      "Hello,\n\nyour Marquee account is ready. Find events, book tickets and keep them all in one "
      "place: https://tickets.example\n";
  const char *html = "<!doctype html><html><body><p>Hello,</p><p>your Marquee account is ready.</p></body></html>";
  long failed = 0;
  double t0 = now_s();
  for (long i = 0; i < count; i++) {
    mq_arena_t a;
    mq_arena_init(&a);
    char to[200], id[64];
    snprintf(to, sizeof to, "raw-%ld@%s", i, argv[3]);
    snprintf(id, sizeof id, "raw-%ld@bench", i);
    mq_mail_t m = {.from_name = "Marquee",
                   .from_addr = "no-reply@marquee.localhost",
                   .to_addr = to,
                   .subject = "Welcome to Marquee",
                   .text = text,
                   .html = html,
                   .message_id = id,
                   .date_ms = (int64_t)time(NULL) * 1000};
    char *bytes;
    size_t len;
    mq_error_t err;
    if (mq_mail_build(&m, &a, &bytes, &len, &err) != MQ_OK ||
        mq_smtp_send(&o, m.from_addr, to, bytes, len, &err) != MQ_OK)
      failed++;
    mq_arena_release(&a);
  }
  double secs = now_s() - t0;
  printf("{\"mails\":%ld,\"seconds\":%.3f,\"mails_per_s\":%.1f,\"failed\":%ld}\n", count, secs,
         secs > 0 ? (double)count / secs : 0.0, failed);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
