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
 * Ticket holders (consumer group as above, plus marquee.events):
 *   - a catalog.EventUpdated that moved the event in time or place (its start
 *     or its venue / online URL differ from what the holders were last told,
 *     kept in `reminders`, store/notifications/reminders_store.h) mails
 *     event_changed to every holder of a confirmed booking, once each;
 *   - a reminder thread (every MARQUEE_REMINDER_SWEEP_MS) mails
 *     event_reminder to every holder once the event starts within
 *     MARQUEE_REMINDER_HOURS, reading the event's start when it sends (a
 *     moved event is reminded at its new time; a cancelled one not at all;
 *     one whose start passed while the notifier was away is marked missed);
 *   - the `reminders` document of an event is made by its first booking
 *     confirmation; a cancellation of the event marks it cancelled (its
 *     holders hear of it through their bookings' cancellations).
 *   A holder with several bookings gets one mail; a fan-out that fails half
 *   way is retried whole, and the delivery records send nothing twice.
 *
 * Invariants:
 *   1. Exactly once per (event, channel, recipient), except the window
 *      deliveries_store.h names (accepted but not yet recorded), where a
 *      redelivery sends the same message again with the same Message-ID.
 *   2. No address, name or link token in the logs: event ids and message
 *      names only.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mq_consumer.h"
#include "consumers/notifier/compose.h"
#include "core/mq_log.h"
#include "core/mq_time.h"
#include "lib/mq_kafka.h"
#include "store/bookings/bookings_store.h"
#include "store/catalog/events_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"
#include "store/notifications/deliveries_store.h"
#include "store/notifications/reminders_store.h"

extern char **environ;

typedef struct {
  const mq_config_t *cfg;
  mq_store_t *store;
  mq_notifier_cfg_t compose;
  mq_smtp_opts_t smtp;
  pthread_mutex_t mu; /* the reminder thread's stop */
  pthread_cond_t cv;
  bool stop;
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

/* Sends `notice` (composed, its account and event resolved) as the e-mail
 * delivery keyed by `key` (the domain event's id, or a reminder's key):
 * once per (key, channel, recipient). UNAVAILABLE and store failures are
 * temporary (the caller retries); a recipient refused for good is recorded
 * and MQ_OK. */
static mq_code_t deliver(notifier_t *n, const char *key, const mq_notice_t *notice, mq_arena_t *a, mq_error_t *err) {
  char id[200], message_id[240];
  mq_delivery_id(key, "email", notice->to_addr, id, sizeof id);
  snprintf(message_id, sizeof message_id, "%s@marquee", id);
  for (char *p = message_id; *p; p++)
    if (*p == ':') *p = '.';
  mq_mail_t mail;
  const char *locale = "en";
  char *bytes = NULL;
  size_t len = 0;
  mq_code_t rc = mq_notice_mail(&n->compose, notice, message_id, mq_now_unix_ms(), a, &mail, &locale, err);
  if (rc == MQ_OK) rc = mq_mail_build(&mail, a, &bytes, &len, err);
  if (rc != MQ_OK) {
    mq_log(MQ_LOG_ERROR, "notifier.compose", "%s (%s): %s", key, notice->template_name, err->message);
    return rc;
  }
  mq_delivery_t d = {.id = id,
                     .event_id = key,
                     .channel = "email",
                     .template_name = notice->template_name,
                     .locale = locale,
                     .to = notice->to_addr};
  bool fresh = false;
  const char *state = NULL;
  rc = mq_delivery_begin(n->store, &d, 2 * (int64_t)n->smtp.timeout_ms, a, &fresh, &state, err);
  if (rc != MQ_OK) return rc;
  if (strcmp(state, "sending")) { /* delivered before (or refused for good): nothing twice */
    mq_log(MQ_LOG_DEBUG, "notifier.duplicate", "%s: %s already %s", key, notice->template_name, state);
    return MQ_OK;
  }
  rc = mq_smtp_send(&n->smtp, n->compose.from_addr, notice->to_addr, bytes, len, err);
  if (rc == MQ_OK) {
    mq_log(MQ_LOG_INFO, "notifier.sent", "%s: %s (%s)%s", key, notice->template_name, locale,
           fresh ? "" : ", again after an unrecorded attempt");
    return mq_delivery_finish(n->store, id, "sent", NULL, err);
  }
  if (rc == MQ_FAILED_PRECONDITION) { /* refused for good: recorded, visible, and we go on */
    mq_log(MQ_LOG_WARN, "notifier.refused", "%s: %s: %s", key, notice->template_name, err->message);
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return mq_delivery_finish(n->store, id, "failed", why, err);
  }
  mq_error_t ferr; /* a temporary failure: free the claim for the next attempt, and let the caller retry */
  mq_delivery_finish(n->store, id, "waiting", err->message, &ferr);
  return rc; /* UNAVAILABLE (SMTP or store away): retried with backoff */
}

static mq_code_t notify(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                        mq_error_t *err);

/* ---- ticket holders: event changes and reminders ---- */

typedef struct {
  char **v;
  size_t n, cap;
} ids_t;

static bool collect_holder(const mq_booking_t *b, void *arg) {
  ids_t *ids = arg;
  if (!b->user_id || !*b->user_id) return true;
  if (ids->n == ids->cap) {
    ids->cap = ids->cap ? ids->cap * 2 : 64;
    ids->v = realloc(ids->v, ids->cap * sizeof *ids->v);
    if (!ids->v) abort();
  }
  ids->v[ids->n++] = strdup(b->user_id);
  return true;
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static int64_t starts_of(const Marquee__Catalog__V1__Event *e) {
  return mq_pb_timestamp_ms(e->starts_at);
}

/* Where the event takes place, as compared between updates. */
static char *place_of(mq_arena_t *a, const Marquee__Catalog__V1__Event *e) {
  return mq_arena_sprintf(a, "%s|%s", e->venue_id ? e->venue_id : "", e->online_url ? e->online_url : "");
}

/* Mails `template` about event e to every holder of a confirmed booking of
 * it, once each (deliveries keyed by `key`). */
static mq_code_t fan_out(notifier_t *n, const char *key, const char *template_name,
                         const Marquee__Catalog__V1__Event *e, mq_error_t *err) {
  ids_t ids = {0};
  mq_code_t rc = mq_bookings_each(n->store, e->event_id, "confirmed", collect_holder, &ids, err);
  if (rc == MQ_OK && ids.n > 1) qsort(ids.v, ids.n, sizeof *ids.v, cmp_str);
  size_t sent = 0;
  for (size_t i = 0; rc == MQ_OK && i < ids.n; i++) {
    if (i && !strcmp(ids.v[i], ids.v[i - 1])) continue; /* one mail per holder, whatever their bookings */
    mq_arena_t a;
    mq_arena_init(&a);
    mq_user_t u;
    mq_code_t urc = mq_users_get(n->store, ids.v[i], &a, &u, err);
    if (urc == MQ_OK && u.status == MQ_USER_ACTIVE) {
      mq_notice_t notice = {
          .template_name = template_name, .locale = "en", .user_id = ids.v[i], .event_id = e->event_id};
      mq_notice_resolve_user(&notice, u.email, u.display_name, u.locale);
      mq_notice_resolve_event(&notice, &a, e);
      mq_notice_add(&notice, "link", mq_arena_sprintf(&a, "%s/bookings", n->compose.link_base));
      rc = deliver(n, key, &notice, &a, err);
      sent++;
    } else if (urc != MQ_OK && urc != MQ_NOT_FOUND) {
      rc = urc; /* the store is away: the whole fan-out again later (deliveries skip those done) */
    }
    mq_arena_release(&a);
  }
  for (size_t i = 0; i < ids.n; i++) free(ids.v[i]);
  free(ids.v);
  if (rc == MQ_OK)
    mq_log(MQ_LOG_INFO, "notifier.fan_out", "%s: %s to %zu holders of event %s", key, template_name, sent, e->event_id);
  return rc;
}

/* catalog.EventUpdated: the holders are told when the event moved in time or place. */
static mq_code_t on_event_updated(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                                  mq_error_t *err) {
  (void)msg;
  notifier_t *n = ctx;
  const char *event_id = ev->event_updated ? ev->event_updated->event_id : NULL;
  if (!event_id || !*event_id) return MQ_OK;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_reminder_t r;
  Marquee__Catalog__V1__Event *e = NULL;
  mq_code_t rc = mq_reminder_get(n->store, event_id, &a, &r, err);
  if (rc == MQ_NOT_FOUND) { /* no holder was ever told anything */
    mq_arena_release(&a);
    return MQ_OK;
  }
  if (rc == MQ_OK) rc = mq_events_get(n->store, event_id, &a, &e, err);
  if (rc == MQ_NOT_FOUND) rc = MQ_OK, e = NULL;
  if (rc == MQ_OK && e && !strcmp(r.state, "cancelled")) e = NULL;
  if (rc == MQ_OK && e && e->state == MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED) {
    int64_t starts = starts_of(e);
    const char *place = place_of(&a, e);
    if (starts != r.starts_ms || strcmp(place, r.place)) {
      rc = fan_out(n, ev->event_id, "event_changed", e, err);
      /* a reminder already sent for the old time is due again for the new one */
      bool rearm = !strcmp(r.state, "sent") && starts > r.starts_ms;
      if (rc == MQ_OK) {
        rc = mq_reminder_set(n->store, event_id, r.state, rearm ? "waiting" : r.state, starts, place, err);
        if (rc == MQ_NOT_FOUND) rc = MQ_OK; /* the sweeper changed its state meanwhile: it read the new time */
      }
    }
  }
  mq_arena_release(&a);
  return rc;
}

static mq_code_t on_event_cancelled(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                                    mq_error_t *err) {
  (void)msg;
  notifier_t *n = ctx;
  const char *event_id = ev->event_cancelled ? ev->event_cancelled->event_id : NULL;
  if (!event_id || !*event_id) return MQ_OK;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_reminder_t r;
  mq_code_t rc = mq_reminder_get(n->store, event_id, &a, &r, err);
  if (rc == MQ_OK) rc = mq_reminder_set(n->store, event_id, NULL, "cancelled", r.starts_ms, r.place, err);
  mq_arena_release(&a);
  return rc == MQ_NOT_FOUND ? MQ_OK : rc;
}

/* A confirmed booking mails its buyer, and makes sure the event's holders will be reminded. */
static mq_code_t on_booking_confirmed(void *ctx, const Marquee__Events__V1__Envelope *ev, const mq_consumer_msg_t *msg,
                                      mq_error_t *err) {
  notifier_t *n = ctx;
  mq_code_t rc = notify(ctx, ev, msg, err);
  const char *event_id = ev->booking_confirmed ? ev->booking_confirmed->event_id : NULL;
  if (rc != MQ_OK || !event_id || !*event_id) return rc;
  mq_arena_t a;
  mq_arena_init(&a);
  Marquee__Catalog__V1__Event *e = NULL;
  rc = mq_events_get(n->store, event_id, &a, &e, err);
  if (rc == MQ_OK) rc = mq_reminder_ensure(n->store, event_id, starts_of(e), place_of(&a, e), err);
  mq_arena_release(&a);
  return rc == MQ_NOT_FOUND ? MQ_OK : rc;
}

/* One pass of the reminder thread. */
static void remind(notifier_t *n) {
  mq_arena_t a;
  mq_arena_init(&a);
  mq_error_t err;
  mq_reminder_t *v;
  size_t k = 0;
  int64_t now = mq_now_unix_ms(), ahead = (int64_t)n->cfg->reminder_hours * 3600000LL;
  if (mq_reminders_in(n->store, "waiting", &a, &v, &k, &err) != MQ_OK) k = 0;
  for (size_t i = 0; i < k && !mq_consumer_stopping(); i++) {
    if (v[i].starts_ms - ahead > now) continue; /* not yet (its time as last heard; read again below) */
    Marquee__Catalog__V1__Event *e = NULL;
    mq_code_t rc = mq_events_get(n->store, v[i].event_id, &a, &e, &err);
    if (rc == MQ_NOT_FOUND || (rc == MQ_OK && e->state != MARQUEE__CATALOG__V1__EVENT_STATE__EVENT_STATE_PUBLISHED)) {
      mq_reminder_set(n->store, v[i].event_id, "waiting", "cancelled", v[i].starts_ms, v[i].place, &err);
      continue;
    }
    if (rc != MQ_OK) continue;
    int64_t starts = starts_of(e);
    const char *place = place_of(&a, e);
    if (starts <= now) { /* it began while nobody could remind: nothing now */
      mq_reminder_set(n->store, v[i].event_id, "waiting", "missed", starts, place, &err);
      continue;
    }
    if (starts - ahead > now) continue; /* moved later: its EventUpdated will tell the holders */
    char key[120];
    snprintf(key, sizeof key, "reminder.%s.%lld", v[i].event_id, (long long)starts);
    if (fan_out(n, key, "event_reminder", e, &err) == MQ_OK)
      mq_reminder_set(n->store, v[i].event_id, "waiting", "sent", starts, place, &err);
  }
  mq_arena_release(&a);
}

static void *reminder_main(void *arg) {
  notifier_t *n = arg;
  for (;;) {
    pthread_mutex_lock(&n->mu);
    if (!n->stop) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      int64_t ns = ts.tv_nsec + (int64_t)(n->cfg->reminder_sweep_ms % 1000) * 1000000;
      ts.tv_sec += n->cfg->reminder_sweep_ms / 1000 + ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      pthread_cond_timedwait(&n->cv, &n->mu, &ts);
    }
    bool stop = n->stop;
    pthread_mutex_unlock(&n->mu);
    if (stop) return NULL;
    remind(n);
  }
}

/* ---- one notice per event ---- */

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
  if (rc != MQ_OK)
    mq_log(MQ_LOG_ERROR, "notifier.compose", "event %s (%s): %s", ev->event_id, ev->type ? ev->type : "", err->message);
  else if (!none)
    rc = deliver(n, ev->event_id, &notice, &a, err);
  mq_arena_release(&a);
  return rc;
}

static const mq_event_route_t routes[] = {
    {"users.UserRegistered", notify},
    {"users.EmailVerificationRequested", notify},
    {"users.PasswordResetRequested", notify},
    {"users.PasswordChanged", notify},
    {"organizations.OrganizationMemberInvited", notify},
    {"bookings.BookingConfirmed", on_booking_confirmed},
    {"catalog.EventUpdated", on_event_updated},
    {"catalog.EventCancelled", on_event_cancelled},
    {"bookings.BookingCancelled", notify},
    {"payments.PaymentRequiresAction", notify},
    {"payments.PaymentCancelled", notify},
    {"payments.RefundIssued", notify},
};

static const char *const topics[] = {"marquee.users", "marquee.bookings", "marquee.payments", "marquee.events", NULL};

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
  if (mq_store_ensure_indexes(store, mq_deliveries_indexes, mq_deliveries_n_indexes, &err) != MQ_OK ||
      mq_store_ensure_indexes(store, mq_reminders_indexes, mq_reminders_n_indexes, &err) != MQ_OK)
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
  pthread_mutex_init(&n.mu, NULL);
  pthread_cond_init(&n.cv, NULL);
  pthread_t reminder;
  bool reminding = pthread_create(&reminder, NULL, reminder_main, &n) == 0;
  rc = mq_consumer_run(&o);
  pthread_mutex_lock(&n.mu);
  n.stop = true;
  pthread_cond_broadcast(&n.cv);
  pthread_mutex_unlock(&n.mu);
  if (reminding) pthread_join(reminder, NULL);
  pthread_cond_destroy(&n.cv);
  pthread_mutex_destroy(&n.mu);
cleanup:
  mq_store_close(store);
  mq_seal_keys_free(keys);
  mq_config_free(&cfg);
  mq_log_stop();
  curl_global_cleanup();
  return rc;
}
