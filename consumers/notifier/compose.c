/*
 * compose.c — see compose.h.
 */
#include "consumers/notifier/compose.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_time.h"
#include "lib/mq_l10n.h"
#include "lib/mq_money.h"
#include "lib/mq_validate.h"

static const char *const vars_welcome[] = {"name", "app_url", NULL};
static const char *const vars_link[] = {"link", "expires", NULL};
static const char *const vars_invitation[] = {"organization", "role", "link", "expires", NULL};
static const char *const vars_password_changed[] = {"name", "when", NULL};
static const char *const vars_booking_confirmed[] = {"name",    "event", "starts", "where",
                                                     "tickets", "total", "link",   NULL};
static const char *const vars_booking_cancelled[] = {"name", "event", "starts", "total", "reason", "link", NULL};
static const char *const vars_payment_instructions[] = {"name",         "event",    "starts", "total",
                                                        "instructions", "deadline", "link",   NULL};
static const char *const vars_payment_expired[] = {"name", "event", "starts", "link", NULL};
static const char *const vars_refund_issued[] = {"name",     "event",  "starts", "amount",
                                                 "refunded", "reason", "link",   NULL};

static const char *const vars_event_notice[] = {"name", "event", "starts", "where", "link", NULL};

static const struct {
  const char *name;
  const char *const *vars;
} messages[] = {
    {"event_changed", vars_event_notice},
    {"event_reminder", vars_event_notice},
    {"welcome", vars_welcome},
    {"verify_email", vars_link},
    {"reset_password", vars_link},
    {"invitation", vars_invitation},
    {"password_changed", vars_password_changed},
    {"booking_confirmed", vars_booking_confirmed},
    {"booking_cancelled", vars_booking_cancelled},
    {"payment_instructions", vars_payment_instructions},
    {"payment_expired", vars_payment_expired},
    {"refund_issued", vars_refund_issued},
};

const char *const *mq_notice_vars(const char *name) {
  for (size_t i = 0; i < sizeof messages / sizeof *messages; i++)
    if (!strcmp(messages[i].name, name)) return messages[i].vars;
  return NULL;
}

static const char *find(const char *name, const char *locale) {
  for (size_t i = 0; i < mq_notifier_n_templates; i++)
    if (!strcmp(mq_notifier_templates[i].name, name) && !strcasecmp(mq_notifier_templates[i].locale, locale))
      return mq_notifier_templates[i].text;
  return NULL;
}

const char *mq_notice_template(const char *name, const char *locale, const char **used) {
  const char *t = NULL;
  if (locale && locale[0] && (t = find(name, locale))) {
    *used = locale;
    return t;
  }
  char lang[16];
  size_t n = locale ? strcspn(locale, "-_") : 0;
  if (n > 0 && n < sizeof lang) {
    memcpy(lang, locale, n);
    lang[n] = '\0';
    for (size_t i = 0; i < mq_notifier_n_templates; i++) /* the language's own file, with its spelling */
      if (!strcmp(mq_notifier_templates[i].name, name) && !strcasecmp(mq_notifier_templates[i].locale, lang)) {
        *used = mq_notifier_templates[i].locale;
        return mq_notifier_templates[i].text;
      }
  }
  *used = "en";
  return find(name, "en");
}

static char *when(mq_arena_t *a, const Google__Protobuf__Timestamp *ts);
static char *money(mq_arena_t *a, int64_t minor, const char *currency);

static void add(mq_notice_t *n, const char *name, const char *value) {
  if (n->n_vars < MQ_NOTICE_MAX_VARS) n->vars[n->n_vars++] = (mq_tvar_t){name, value ? value : ""};
}

void mq_notice_add(mq_notice_t *n, const char *name, const char *value) {
  add(n, name, value);
}

static int64_t ts_ms_of(const Google__Protobuf__Timestamp *ts) {
  return ts ? ts->seconds * 1000 + ts->nanos / 1000000 : 0;
}

/* An instant: written plainly now, in the reader's language at rendering. */
static void add_when(mq_notice_t *n, mq_arena_t *a, const char *name, const Google__Protobuf__Timestamp *ts,
                     const char *tz) {
  add(n, name, when(a, ts));
  if (ts && n->n_typed < MQ_NOTICE_MAX_TYPED && n->n_vars)
    n->typed[n->n_typed++] = (mq_notice_typed_t){n->n_vars - 1, false, ts_ms_of(ts), NULL, tz};
}

/* An amount: the same. */
static void add_money(mq_notice_t *n, mq_arena_t *a, const char *name, int64_t minor, const char *currency) {
  add(n, name, money(a, minor, currency));
  if (n->n_typed < MQ_NOTICE_MAX_TYPED && n->n_vars)
    n->typed[n->n_typed++] = (mq_notice_typed_t){n->n_vars - 1, true, minor, currency, NULL};
}

/* "2026-12-04 16:00 UTC" (the reader's time zone and language: later, with ICU). */
static char *when(mq_arena_t *a, const Google__Protobuf__Timestamp *ts) {
  if (!ts) return mq_arena_strdup(a, "");
  time_t t = (time_t)ts->seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  char *out = mq_arena_alloc(a, 32);
  strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm);
  return out;
}

/* The sealed token opened, as a link "<base><path>?token=<token>". */
static mq_code_t link_for(const mq_notifier_cfg_t *c, const Marquee__Events__V1__SealedSecret *s, const char *path,
                          mq_arena_t *a, const char **out, mq_error_t *err) {
  char token[128];
  if (!s) return mq_error_set(err, MQ_FAILED_PRECONDITION, "sealed_token", "the event carries no link token");
  if (!c->secret_keys || !mq_seal_open(c->secret_keys, s->key_id, s->box.data, s->box.len, token, sizeof token))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "sealed_token",
                        "no key of MARQUEE_NOTIFY_SECRET_KEYS opens the link token (key id \"%.32s\")",
                        s->key_id ? s->key_id : "");
  size_t bl = strlen(c->link_base);
  while (bl && c->link_base[bl - 1] == '/') bl--;
  *out = mq_arena_sprintf(a, "%.*s%s?token=%s", (int)bl, c->link_base, path, token); /* token: base64url, URL-safe */
  explicit_bzero(token, sizeof token);
  return MQ_OK;
}

/* "12.50 EUR", "1500 JPY" (lib/mq_money.h; the reader's locale: later, with ICU). */
static char *money(mq_arena_t *a, int64_t minor, const char *currency) {
  char b[64];
  mq_money_format(b, sizeof b, minor, currency);
  return mq_arena_strdup(a, b);
}

void mq_notice_resolve_user(mq_notice_t *n, const char *email, const char *display_name, const char *locale) {
  n->to_addr = email;
  n->to_name = display_name;
  if (locale && locale[0]) n->locale = locale;
  add(n, "name", display_name);
}

void mq_notice_resolve_event(mq_notice_t *n, mq_arena_t *a, const Marquee__Catalog__V1__Event *e) {
  add(n, "event", e->title);
  add_when(n, a, "starts", e->starts_at, e->time_zone);
  add(n, "where", e->city && e->city[0] ? e->city : "online");
}

static const char *role_label(const char *role) {
  if (!strcmp(role, "owner")) return "owner";
  if (!strcmp(role, "manager")) return "manager";
  if (!strcmp(role, "checkin_staff")) return "check-in staff";
  return role;
}

#define WELCOME_FRESH_MS (24 * 3600 * 1000LL)

static bool expired(const Google__Protobuf__Timestamp *ts, int64_t now_ms) {
  return ts && ts_ms_of(ts) <= now_ms;
}

mq_code_t mq_notice_for(const mq_notifier_cfg_t *c, const Marquee__Events__V1__Envelope *ev, int64_t now_ms,
                        mq_arena_t *a, mq_notice_t *n, bool *none, mq_error_t *err) {
  memset(n, 0, sizeof *n);
  *none = false;
  const Google__Protobuf__Timestamp *until = NULL; /* the message is stale from then on */
  switch (ev->payload_case) {
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED:
      until = ev->email_verification_requested->expires_at;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED:
      until = ev->password_reset_requested->expires_at;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED:
      until = ev->organization_member_invited->expires_at;
      break;
    default:
      break;
  }
  if (expired(until, now_ms) || (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REGISTERED &&
                                 ev->occurred_at && ts_ms_of(ev->occurred_at) + WELCOME_FRESH_MS <= now_ms)) {
    *none = true;
    return MQ_OK;
  }
  const char *link = NULL;
  mq_code_t rc = MQ_OK;
  switch (ev->payload_case) {
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_USER_REGISTERED: {
      const Marquee__Events__V1__UserRegistered *p = ev->user_registered;
      *n = (mq_notice_t){
          .template_name = "welcome", .locale = p->locale, .to_addr = p->email, .to_name = p->display_name};
      add(n, "name", p->display_name);
      add(n, "app_url", c->link_base);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EMAIL_VERIFICATION_REQUESTED: {
      const Marquee__Events__V1__EmailVerificationRequested *p = ev->email_verification_requested;
      *n = (mq_notice_t){.template_name = "verify_email", .locale = p->locale, .to_addr = p->email};
      if ((rc = link_for(c, p->sealed_token, "/verify-email", a, &link, err)) != MQ_OK) return rc;
      add(n, "link", link);
      add_when(n, a, "expires", p->expires_at, NULL);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_RESET_REQUESTED: {
      const Marquee__Events__V1__PasswordResetRequested *p = ev->password_reset_requested;
      *n = (mq_notice_t){.template_name = "reset_password", .locale = p->locale, .to_addr = p->email};
      if ((rc = link_for(c, p->sealed_token, "/reset-password", a, &link, err)) != MQ_OK) return rc;
      add(n, "link", link);
      add_when(n, a, "expires", p->expires_at, NULL);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_ORGANIZATION_MEMBER_INVITED: {
      const Marquee__Events__V1__OrganizationMemberInvited *p = ev->organization_member_invited;
      *n = (mq_notice_t){.template_name = "invitation", .locale = "en", .to_addr = p->email};
      if ((rc = link_for(c, p->sealed_token, "/invitations/accept", a, &link, err)) != MQ_OK) return rc;
      add(n, "organization", p->organization_name);
      add(n, "role", role_label(p->role ? p->role : ""));
      add(n, "link", link);
      add_when(n, a, "expires", p->expires_at, NULL);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PASSWORD_CHANGED: {
      *n = (mq_notice_t){.template_name = "password_changed", .locale = "en", .user_id = ev->password_changed->user_id};
      add_when(n, a, "when", ev->occurred_at, NULL);
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED: {
      const Marquee__Events__V1__BookingConfirmed *p = ev->booking_confirmed;
      *n = (mq_notice_t){
          .template_name = "booking_confirmed", .locale = "en", .user_id = p->user_id, .event_id = p->event_id};
      uint64_t tickets = 0;
      for (size_t i = 0; i < p->n_units; i++) tickets += p->units[i]->quantity;
      add(n, "tickets", mq_arena_sprintf(a, "%llu", (unsigned long long)tickets));
      if (p->total_minor)
        add_money(n, a, "total", p->total_minor, p->currency);
      else
        add(n, "total", "free");
      add(n, "link", mq_arena_sprintf(a, "%s/bookings/%s", c->link_base, p->booking_id));
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED: {
      const Marquee__Events__V1__BookingCancelled *p = ev->booking_cancelled;
      *n = (mq_notice_t){
          .template_name = "booking_cancelled", .locale = "en", .user_id = p->user_id, .event_id = p->event_id};
      if (p->total_minor)
        add_money(n, a, "total", p->total_minor, p->currency);
      else
        add(n, "total", "free");
      add(n, "reason", p->reason && p->reason[0] ? p->reason : "-");
      add(n, "link", mq_arena_sprintf(a, "%s/bookings/%s", c->link_base, p->booking_id));
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_REQUIRES_ACTION: {
      const Marquee__Events__V1__PaymentRequiresAction *p = ev->payment_requires_action;
      *n = (mq_notice_t){
          .template_name = "payment_instructions", .locale = "en", .user_id = p->user_id, .event_id = p->event_id};
      add_money(n, a, "total", p->amount_minor, p->currency);
      add(n, "instructions", p->instructions && p->instructions[0] ? p->instructions : "-");
      add_when(n, a, "deadline", p->deadline, NULL);
      add(n, "link", mq_arena_sprintf(a, "%s/payments/%s", c->link_base, p->payment_id));
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_CANCELLED: {
      const Marquee__Events__V1__PaymentCancelled *p = ev->payment_cancelled;
      if (!p->reason || strcmp(p->reason, "deadline")) { /* the buyer cancelled it: they know */
        *none = true;
        return MQ_OK;
      }
      *n = (mq_notice_t){
          .template_name = "payment_expired", .locale = "en", .user_id = p->user_id, .event_id = p->event_id};
      add(n, "link", mq_arena_sprintf(a, "%s/events/%s", c->link_base, p->event_id));
      break;
    }
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_REFUND_ISSUED: {
      const Marquee__Events__V1__RefundIssued *p = ev->refund_issued;
      *n = (mq_notice_t){
          .template_name = "refund_issued", .locale = "en", .user_id = p->user_id, .event_id = p->event_id};
      add_money(n, a, "amount", p->amount_minor, p->currency);
      add_money(n, a, "refunded", p->refunded_total_minor, p->currency);
      add(n, "reason", p->reason && p->reason[0] ? p->reason : "-");
      add(n, "link", mq_arena_sprintf(a, "%s/payments/%s", c->link_base, p->payment_id));
      break;
    }
    default:
      *none = true;
      return MQ_OK;
  }
  if (n->user_id) {
    if (!n->user_id[0]) return mq_error_set(err, MQ_FAILED_PRECONDITION, "user_id", "the event names no recipient");
    return MQ_OK; /* the caller resolves the account */
  }
  if (!n->to_addr || !n->to_addr[0])
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "email", "the event names no recipient");
  return MQ_OK;
}

mq_code_t mq_notice_mail(const mq_notifier_cfg_t *c, const mq_notice_t *n, const char *message_id, int64_t now_ms,
                         mq_arena_t *a, mq_mail_t *mail, const char **locale_used, mq_error_t *err) {
  const char *file = mq_notice_template(n->template_name, n->locale, locale_used);
  if (!file) return mq_error_set(err, MQ_INVALID_ARGUMENT, "template", "no template \"%s\"", n->template_name);
  mq_template_t t;
  mq_code_t rc = mq_template_parse(file, a, &t, err);
  /* dates and amounts in the template's language, with the reader's region when it is of that language */
  const char *fmt = *locale_used;
  size_t ll = strlen(*locale_used);
  if (n->locale && !strncasecmp(n->locale, *locale_used, ll) && (n->locale[ll] == '-' || n->locale[ll] == '_'))
    fmt = n->locale;
  mq_tvar_t vars[MQ_NOTICE_MAX_VARS];
  memcpy(vars, n->vars, n->n_vars * sizeof *vars);
  for (size_t i = 0; i < n->n_typed; i++) {
    const mq_notice_typed_t *x = &n->typed[i];
    if (x->var >= n->n_vars) continue;
    vars[x->var].value =
        x->money ? mq_l10n_money(a, x->value, x->currency, fmt) : mq_l10n_datetime(a, x->value, x->tz, fmt);
  }
  char *subject = NULL, *text = NULL, *html = NULL;
  if (rc == MQ_OK) rc = mq_template_render(t.subject, vars, n->n_vars, false, a, &subject, err);
  if (rc == MQ_OK) rc = mq_template_render(t.text, vars, n->n_vars, false, a, &text, err);
  if (rc == MQ_OK) rc = mq_template_render(t.html, vars, n->n_vars, true, a, &html, err);
  if (rc != MQ_OK) return rc;
  *mail = (mq_mail_t){.from_name = c->from_name,
                      .from_addr = c->from_addr,
                      .to_name = n->to_name,
                      .to_addr = n->to_addr,
                      .subject = subject,
                      .text = text,
                      .html = html,
                      .message_id = message_id,
                      .date_ms = now_ms};
  return MQ_OK;
}
