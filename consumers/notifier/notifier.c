/*
 * notifier.c — marquee-notifier, the consumer that e-mails people what
 * happened: welcome, e-mail verification, password reset and change,
 * organization invitations, booking confirmations and cancellations,
 * payment instructions (bank transfer), expired payments and refunds
 * (compose.h says which event sends which message).
 *
 * Per event (consumer group marquee-notifier, topics marquee.users,
 * marquee.bookings and marquee.payments):
 *   1. compose the notice (pure), read the account and catalog event it
 *      names by id (users_store, events_store: the address current now),
 *      render the mail (a template that does not render is a permanent
 *      failure: dead-lettered, visible);
 *   2. begin the delivery record (store/notifications/deliveries_store.h):
 *      an event already delivered, or refused for good, sends nothing;
 *   3. send over SMTP. Accepted: the record says "sent". Refused for good
 *      (5xx): "failed", with the reply, and the consumer goes on. A
 *      temporary failure (server down, 4xx): the event is retried with
 *      backoff until the server takes it, so mail waits while the SMTP
 *      server is away and leaves in order per partition when it returns.
 *
 * Invariants:
 *   1. Exactly once per (event, channel, recipient), except the window
 *      deliveries_store.h names (accepted but not yet recorded), where a
 *      redelivery sends the same message again with the same Message-ID.
 *   2. No address, name or link token in the logs: event ids and message
 *      names only.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "consumers/mq_consumer.h"
#include "consumers/notifier/compose.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "lib/mq_kafka.h"
#include "store/catalog/events_store.h"
#include "store/identity/users_store.h"
#include "store/notifications/deliveries_store.h"

extern char **environ;

typedef struct {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_notifier_cfg_t compose;
  mq_smtp_opts_t smtp;
} notifier_t;

/* The account and the catalog event a notice names by id, read now: an
 * account that is gone (or suspended) or an event that is gone sends
 * nothing. A store outage is transient: the event is retried. */
static mq_code_t resolve(notifier_t *n, mq_notice_t *notice, mq_arena_t *a, bool *none, mq_error_t *err) {
  mq_code_t rc = MQ_OK;
  if (notice->user_id) {
    mq_user_t u;
    rc = mq_users_get(n->store, notice->user_id, a, &u, err);
    if (rc == MQ_NOT_FOUND || (rc == MQ_OK && u.status != MQ_USER_ACTIVE)) {
      *none = true;
      return MQ_OK;
    }
    if (rc != MQ_OK) return rc;
    mq_notice_resolve_user(notice, u.email, u.display_name, u.locale);
  }
  if (notice->event_id) {
    Marquee__Catalog__V1__Event *e = NULL;
    rc = mq_events_get(n->store, notice->event_id, a, &e, err);
    if (rc == MQ_NOT_FOUND) {
      *none = true;
      return MQ_OK;
    }
    if (rc != MQ_OK) return rc;
    mq_notice_resolve_event(notice, a, e);
  }
  return MQ_OK;
}

static mq_code_t notify(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                        mq_error_t *err) {
  (void)msg;
  notifier_t *n = ctx;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_notice_t notice;
  bool none = false;
  mq_code_t rc = mq_notice_for(&n->compose, ev, mq_now_unix_ms(), &a, &notice, &none, err);
  if (rc == MQ_OK && !none) rc = resolve(n, &notice, &a, &none, err);
  char id[200], message_id[240];
  mq_mail_t mail;
  const char *locale = "en";
  if (rc == MQ_OK && !none) {
    mq_delivery_id(ev->event_id, "email", notice.to_addr, id, sizeof id);
    snprintf(message_id, sizeof message_id, "%s@marquee", id);
    for (char *p = message_id; *p; p++)
      if (*p == ':') *p = '.';
    rc = mq_notice_mail(&n->compose, &notice, message_id, mq_now_unix_ms(), &a, &mail, &locale, err);
  }
  char *bytes = NULL;
  size_t len = 0;
  if (rc == MQ_OK && !none) rc = mq_mail_build(&mail, &a, &bytes, &len, err);
  if (rc != MQ_OK || none) {
    if (rc != MQ_OK)
      mq_log(MQ_LOG_ERROR, "notifier.compose", "event %s (%s): %s", ev->event_id, ev->type ? ev->type : "",
             err->message);
    mq_arena_release(&a);
    return rc;
  }
  mq_delivery_t d = {.id = id,
                     .event_id = ev->event_id,
                     .channel = "email",
                     .template_name = notice.template_name,
                     .locale = locale,
                     .to = notice.to_addr};
  bool fresh = false;
  const char *state = NULL;
  rc = mq_delivery_begin(n->store, &d, 2 * (int64_t)n->smtp.timeout_ms, &a, &fresh, &state, err);
  if (rc == MQ_OK && strcmp(state, "sending")) { /* delivered before (or refused for good): nothing twice */
    mq_log(MQ_LOG_DEBUG, "notifier.duplicate", "event %s: %s already %s", ev->event_id, notice.template_name, state);
    mq_arena_release(&a);
    return MQ_OK;
  }
  if (rc == MQ_OK) {
    rc = mq_smtp_send(&n->smtp, n->compose.from_addr, notice.to_addr, bytes, len, err);
    if (rc == MQ_OK) {
      mq_log(MQ_LOG_INFO, "notifier.sent", "event %s: %s (%s)%s", ev->event_id, notice.template_name, locale,
             fresh ? "" : ", again after an unrecorded attempt");
      rc = mq_delivery_finish(n->store, id, "sent", NULL, err);
    } else if (rc == MQ_FAILED_PRECONDITION) { /* refused for good: recorded, visible, and we go on */
      mq_log(MQ_LOG_WARN, "notifier.refused", "event %s: %s: %s", ev->event_id, notice.template_name, err->message);
      char why[sizeof err->message];
      snprintf(why, sizeof why, "%s", err->message);
      rc = mq_delivery_finish(n->store, id, "failed", why, err);
    } else { /* a temporary failure: free the claim for the next attempt, and let the loop retry */
      mq_error_t ferr;
      mq_delivery_finish(n->store, id, "waiting", err->message, &ferr);
    }
  }
  mq_arena_release(&a);
  return rc; /* UNAVAILABLE (SMTP or store away): the loop retries with backoff */
}

static const mq_event_route_t routes[] = {
    {"users.UserRegistered", notify},
    {"users.EmailVerificationRequested", notify},
    {"users.PasswordResetRequested", notify},
    {"users.PasswordChanged", notify},
    {"organizations.OrganizationMemberInvited", notify},
    {"bookings.BookingConfirmed", notify},
    {"bookings.BookingCancelled", notify},
    {"payments.PaymentRequiresAction", notify},
    {"payments.PaymentCancelled", notify},
    {"payments.RefundIssued", notify},
};

static const char *const topics[] = {"marquee.users", "marquee.bookings", "marquee.payments", NULL};

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--version")) {
    printf("marquee-notifier %s (%s)\n", MQ_VERSION, MQ_GIT_COMMIT);
    return 0;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread */
  mq_config_t cfg;
  mq_error_t err;
  if (!mq_config_start("marquee-notifier", &cfg, environ)) return 2;
  mq_store_t *store = NULL;
  mq_seal_keys_t *keys = NULL;
  int rc = 1;
  if (cfg.notify_secret_keys[0]) {
    if (mq_seal_keys_parse(cfg.notify_secret_keys, true, "MARQUEE_NOTIFY_SECRET_KEYS", &keys, &err) != MQ_OK) {
      mq_log(MQ_LOG_ERROR, "notifier.start", "%s: %s", err.field, err.message);
      goto cleanup;
    }
  } else {
    mq_log(MQ_LOG_WARN, "notifier.no_key",
           "MARQUEE_NOTIFY_SECRET_KEYS is empty: verification, reset and invitation links cannot be opened; those "
           "events will be dead-lettered");
  }
  if (mq_store_open(cfg.mongo_uri, cfg.mongo_db, (uint32_t)cfg.mongo_pool_max, &store, &err) != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "notifier.start", "%s: %s", err.field, err.message);
    goto cleanup;
  }
  if (mq_store_ensure_indexes(store, mq_deliveries_indexes, mq_deliveries_n_indexes, &err) != MQ_OK)
    mq_log(MQ_LOG_WARN, "notifier.indexes", "could not create indexes yet (%s); continuing", err.message);
  notifier_t n = {.cfg = &cfg,
                  .store = store,
                  .compose = {.secret_keys = keys,
                              .link_base = cfg.link_base_url,
                              .from_name = cfg.mail_from_name,
                              .from_addr = cfg.mail_from_address},
                  .smtp = {.url = cfg.smtp_url,
                           .user = cfg.smtp_user,
                           .password = cfg.smtp_password,
                           .require_tls = cfg.smtp_require_tls,
                           .timeout_ms = 30000}};
  mq_consumer_opts_t o = {.cfg = &cfg,
                          .name = "notifier",
                          .topics = topics,
                          .routes = routes,
                          .n_routes = sizeof routes / sizeof *routes,
                          .ctx = &n,
                          .store = store,
                          .dedupe = false}; /* the delivery records are the dedupe, per recipient */
  rc = mq_consumer_run(&o);
cleanup:
  mq_store_close(store);
  mq_seal_keys_free(keys);
  mq_config_free(&cfg);
  mq_log_stop();
  curl_global_cleanup();
  return rc;
}
