/*
 * compose.h — what the notifier sends for a domain event: the recipient,
 * the message template and its variables (a notice), then the e-mail
 * rendered from the templates embedded at build time
 * (consumers/notifier/templates/<message>.<locale>.tmpl).
 *
 * Messages and their variables (the test renders every template with
 * these; a template using any other fails it):
 *   welcome            users.UserRegistered               name, app_url
 *   verify_email       users.EmailVerificationRequested   link, expires
 *   reset_password     users.PasswordResetRequested       link, expires
 *   password_changed   users.PasswordChanged              name, when
 *   invitation         organizations.OrganizationMemberInvited
 *                                                         organization, role, link, expires
 *   booking_confirmed  bookings.BookingConfirmed          name, event, starts, where, tickets, total, link
 *   booking_cancelled  bookings.BookingCancelled          name, event, starts, total, reason, link
 *   payment_instructions payments.PaymentRequiresAction   name, event, starts, total, instructions,
 *                                                         deadline, link
 *   payment_expired    payments.PaymentCancelled (deadline only)  name, event, starts, link
 *   refund_issued      payments.RefundIssued              name, event, starts, amount, refunded, reason, link
 *   event_changed      catalog.EventUpdated that moved the event in time or place, to every ticket holder
 *                                                         name, event, starts, where, link
 *   event_reminder     the reminder sweeper, MARQUEE_REMINDER_HOURS before the event, to every ticket holder
 *                                                         name, event, starts, where, link
 * (An event's cancellation reaches its ticket holders as booking_cancelled:
 * every confirmed booking of a cancelled event is cancelled and refunded.)
 *
 * Events that name their reader by id only (a password change, a booking)
 * leave the notice's user_id (and event_id) to the caller, which reads the
 * account and the event from the store and hands them to
 * mq_notice_resolve_user / _event: the address is the one current at
 * sending time (an erased account gets nothing), and events carry no more
 * personal data than they need.
 *
 * Invariants:
 *   1. Pure: no store, no network. A link token is opened here, from the
 *      event's sealed box (lib/mq_seal.h), and exists only in the arena.
 *   2. Locale: the recipient's exact locale, else its language ("fr" for
 *      "fr-CA"), else "en" — every message has an "en" template. Dates
 *      (in the event's time zone, else UTC) and amounts are written as the
 *      template's language writes them, with the recipient's region when
 *      it is of that language ("fr-CA": 12,50 $ CA), by ICU.
 */
#ifndef MQ_NOTIFIER_COMPOSE_H
#define MQ_NOTIFIER_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "core/mq_error.h"
#include "lib/mq_mail.h"
#include "lib/mq_seal.h"
#include "lib/mq_template.h"
#include "marquee/catalog/v1/events.pb-c.h"
#include "marquee/events/v1/envelope.pb-c.h"

typedef struct mq_embedded_template {
  const char *name, *locale, *text;
} mq_embedded_template_t;

extern const mq_embedded_template_t mq_notifier_templates[];
extern const size_t mq_notifier_n_templates;

typedef struct mq_notifier_cfg {
  const mq_seal_keys_t *secret_keys; /* opens link tokens; NULL: link messages cannot be composed */
  const char *link_base;             /* the web app, e.g. "https://tickets.example" */
  const char *from_name, *from_addr;
} mq_notifier_cfg_t;

#define MQ_NOTICE_MAX_VARS 10
#define MQ_NOTICE_MAX_TYPED 4

/* A variable that is an instant or an amount: written in the reader's
 * language when the mail is rendered (lib/mq_l10n.h). */
typedef struct mq_notice_typed {
  size_t var; /* its index in vars */
  bool money;
  int64_t value; /* unix ms, or minor units */
  const char *currency, *tz;
} mq_notice_typed_t;

typedef struct mq_notice {
  const char *template_name, *locale;
  const char *to_addr, *to_name;
  const char *user_id;  /* set: the recipient is this account (resolve it) */
  const char *event_id; /* set: the message names this catalog event (resolve it) */
  mq_tvar_t vars[MQ_NOTICE_MAX_VARS];
  size_t n_vars;
  mq_notice_typed_t typed[MQ_NOTICE_MAX_TYPED];
  size_t n_typed;
} mq_notice_t;

/* The notice for `ev` at now_ms. *none true: the event sends nothing — an
 * event of another kind, or one whose message is stale (a link past its
 * expiry; a welcome more than a day old: a notifier deployed onto a long
 * log, or catching up after a long outage, does not mail the past).
 * FAILED_PRECONDITION when it cannot be composed (no key opens its token,
 * no recipient). */
mq_code_t mq_notice_for(const mq_notifier_cfg_t *c, const Marquee__Events__V1__Envelope *ev, int64_t now_ms,
                        mq_arena_t *a, mq_notice_t *n, bool *none, mq_error_t *err);

/* One more variable (a notice the caller composes itself: the fan-outs). */
void mq_notice_add(mq_notice_t *n, const char *name, const char *value);
/* The account the notice goes to: address, display name (var "name"), locale. */
void mq_notice_resolve_user(mq_notice_t *n, const char *email, const char *display_name, const char *locale);
/* The event it names: vars "event" (title), "starts" and "where". */
void mq_notice_resolve_event(mq_notice_t *n, mq_arena_t *a, const Marquee__Catalog__V1__Event *e);

/* The template text of message `name` for `locale` (with the fallbacks
 * above), and the locale it is in; NULL if the message has none. */
const char *mq_notice_template(const char *name, const char *locale, const char **used);

/* The variables message `name` is rendered with (NULL-terminated), or NULL. */
const char *const *mq_notice_vars(const char *name);

/* The e-mail for notice `n`: its template rendered (HTML-escaped in the HTML
 * part), from c->from_*, with Message-ID `message_id`. INVALID_ARGUMENT
 * (field "template") when the template does not render. */
mq_code_t mq_notice_mail(const mq_notifier_cfg_t *c, const mq_notice_t *n, const char *message_id, int64_t now_ms,
                         mq_arena_t *a, mq_mail_t *mail, const char **locale_used, mq_error_t *err);

#endif
