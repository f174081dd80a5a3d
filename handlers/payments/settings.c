/*
 * settings.c — GetPaymentSettings and UpdatePaymentSettings: how an
 * organization's buyers are charged (service fee, tax display, a tax it
 * collects itself, where its online events are taxed) and what its
 * receipts say about it. Pricing reads the settings when a hold is made
 * (handlers/bookings: mq_bookings_price); a change emits
 * PaymentSettingsChanged, which every server hears and drops its cached
 * copy for (bookings module).
 *
 * Who: managers and owners read; owners change. Anyone else: NOT_FOUND on
 * organization_id, as for an unknown organization.
 */
#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "handlers/bookings/bookings.h"
#include "handlers/identity/identity.h"
#include "handlers/payments/payments.h"
#include "lib/mq_validate.h"
#include "marquee/payments/v1/payments.mq-server.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

typedef Marquee__Payments__V1__PaymentSettings settings_pb;

#define FEE_PPM_MAX 200000      /* 20% */
#define OWN_TAX_PPM_MAX 300000  /* 30% */
#define FEE_TICKET_MAX 10000000 /* in minor units */

static const char *const PATHS[] = {"legal_name",
                                    "tax_id",
                                    "address",
                                    "tax_display",
                                    "service_fee_ppm",
                                    "service_fee_per_ticket",
                                    "service_fee_passed_on",
                                    "own_tax_rate_ppm",
                                    "own_tax_name",
                                    "home_country",
                                    "home_region",
                                    "gateways"};

static settings_pb *view(mq_arena_t *a, const mq_pay_settings_t *p) {
  settings_pb *v = mq_arena_alloc(a, sizeof *v);
  marquee__payments__v1__payment_settings__init(v);
  v->organization_id = p->organization_id;
  v->legal_name = p->legal_name;
  v->tax_id = p->tax_id;
  v->address = p->address;
  v->tax_display = p->tax_display;
  v->service_fee_ppm = (uint32_t)p->fee_ppm;
  if (p->fee_currency && *p->fee_currency)
    v->service_fee_per_ticket = mq_money(a, p->fee_per_ticket_minor, p->fee_currency);
  v->service_fee_passed_on = p->fee_passed_on;
  v->own_tax_rate_ppm = (uint32_t)p->own_tax_ppm;
  v->own_tax_name = p->own_tax_name;
  v->home_country = p->home_country;
  v->home_region = p->home_region;
  v->gateways = p->gateways;
  v->n_gateways = p->n_gateways;
  v->version = p->version;
  if (p->updated_ms) v->updated_at = mq_pb_timestamp(a, p->updated_ms);
  return v;
}

mq_code_t mq_payment_settings_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetPaymentSettingsRequest *req,
                                          settings_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "organization_id", req->organization_id);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  mq_pay_settings_t p;
  if (rc == MQ_OK) rc = mq_pay_settings_get(app->store, req->organization_id, a, &p, err);
  if (rc != MQ_OK) return rc;
  *resp = *view(a, &p);
  return MQ_OK;
}

static bool named(const Google__Protobuf__FieldMask *m, const char *path) {
  for (size_t i = 0; m && i < m->n_paths; i++)
    if (!strcmp(m->paths[i], path)) return true;
  return false;
}

/* Declared in payments.h. */
void mq_payments_settings_changed(mq_app_t *app, const char *org_id) {
  mq_bookings_pay_settings_changed(app, org_id);
}

/* The fields named by the mask, validated (every bad one reported), onto p. */
static void apply(mq_payments_t *ps, const settings_pb *in, const Google__Protobuf__FieldMask *m, mq_pay_settings_t *p,
                  mq_error_t *err) {
  if (named(m, "legal_name") &&
      mq_check_text(err, "settings.legal_name", in->legal_name, 0, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    p->legal_name = in->legal_name;
  if (named(m, "tax_id") &&
      mq_check_text(err, "settings.tax_id", in->tax_id, 0, 40, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    p->tax_id = in->tax_id;
  if (named(m, "address") && mq_check_text(err, "settings.address", in->address, 0, 500, MQ_TEXT_MULTILINE) == MQ_OK)
    p->address = in->address;
  if (named(m, "tax_display") && mq_check_enum(err, "settings.tax_display", (int)in->tax_display,
                                               &marquee__payments__v1__tax_display__descriptor, false) == MQ_OK)
    p->tax_display = (int)in->tax_display;
  if (named(m, "service_fee_ppm")) {
    if (in->service_fee_ppm > FEE_PPM_MAX)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "settings.service_fee_ppm", "at most %d (20%%)", FEE_PPM_MAX);
    else
      p->fee_ppm = in->service_fee_ppm;
  }
  if (named(m, "service_fee_per_ticket")) {
    const Marquee__Common__V1__Money *f = in->service_fee_per_ticket;
    if (!f || (f->amount_minor == 0 && (!f->currency || !*f->currency))) {
      p->fee_per_ticket_minor = 0;
      p->fee_currency = (char *)"";
    } else if (mq_check_currency(err, "settings.service_fee_per_ticket.currency", f->currency) == MQ_OK) {
      if (f->amount_minor < 0 || f->amount_minor > FEE_TICKET_MAX)
        mq_error_set(err, MQ_INVALID_ARGUMENT, "settings.service_fee_per_ticket.amount_minor",
                     "must be 0..%d minor units", FEE_TICKET_MAX);
      else {
        p->fee_per_ticket_minor = f->amount_minor;
        p->fee_currency = f->currency;
      }
    }
  }
  if (named(m, "service_fee_passed_on")) p->fee_passed_on = in->service_fee_passed_on;
  if (named(m, "own_tax_rate_ppm")) {
    if (in->own_tax_rate_ppm > OWN_TAX_PPM_MAX)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "settings.own_tax_rate_ppm", "at most %d (30%%)", OWN_TAX_PPM_MAX);
    else
      p->own_tax_ppm = in->own_tax_rate_ppm;
  }
  if (named(m, "own_tax_name") && mq_check_text(err, "settings.own_tax_name", in->own_tax_name, 0, 15,
                                                MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    p->own_tax_name = in->own_tax_name;
  if (named(m, "home_country")) {
    if (!in->home_country || !*in->home_country)
      p->home_country = (char *)"";
    else if (mq_check_country(err, "settings.home_country", in->home_country) == MQ_OK)
      p->home_country = in->home_country;
  }
  if (named(m, "gateways")) {
    bool ok = in->n_gateways <= MQ_MAX_GATEWAYS;
    if (!ok) mq_error_set(err, MQ_INVALID_ARGUMENT, "settings.gateways", "at most %d", MQ_MAX_GATEWAYS);
    for (size_t i = 0; ok && i < in->n_gateways; i++) {
      char f[40];
      snprintf(f, sizeof f, "settings.gateways[%zu]", i);
      if (!mq_payments_gateway(ps, in->gateways[i]) || !strcmp(in->gateways[i], "free")) {
        mq_error_set(err, MQ_INVALID_ARGUMENT, f, "is not a gateway this platform offers (stripe, manual)");
        ok = false;
      }
      for (size_t k = 0; ok && k < i; k++)
        if (!strcmp(in->gateways[k], in->gateways[i])) {
          mq_error_set(err, MQ_INVALID_ARGUMENT, f, "names the same gateway as settings.gateways[%zu]", k);
          ok = false;
        }
    }
    if (ok) {
      p->gateways = in->gateways;
      p->n_gateways = in->n_gateways;
    }
  }
  if (named(m, "home_region") && mq_check_text(err, "settings.home_region", in->home_region, 0, 100,
                                               MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED) == MQ_OK)
    p->home_region = in->home_region;
}

mq_code_t mq_payment_settings_update_handler(mq_call_t *call,
                                             const Marquee__Payments__V1__UpdatePaymentSettingsRequest *req,
                                             settings_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err); /* every bad field, not just the first */
  mq_check_uuid(err, "organization_id", req->organization_id);
  if (!req->settings) mq_error_set(err, MQ_INVALID_ARGUMENT, "settings", "is required");
  if (!req->update_mask || req->update_mask->n_paths == 0)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field to update");
  for (size_t i = 0; req->update_mask && i < req->update_mask->n_paths; i++) {
    bool known = false;
    for (size_t k = 0; k < sizeof PATHS / sizeof *PATHS; k++) known |= !strcmp(req->update_mask->paths[i], PATHS[k]);
    if (!known)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "'%.60s' is not a field of PaymentSettings that can change",
                   req->update_mask->paths[i]);
  }
  if (req->settings) { /* the values too, onto a scratch copy: every violation in one answer */
    mq_pay_settings_t scratch = {0};
    apply(app->payments, req->settings, req->update_mask, &scratch, err);
  }
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_OWNER, NULL, err);
  mq_pay_settings_t p;
  if (rc == MQ_OK) rc = mq_pay_settings_get(app->store, req->organization_id, a, &p, err);
  if (rc != MQ_OK) return rc;
  if (req->settings->version && req->settings->version != p.version)
    return mq_error_set(err, MQ_ABORTED, "settings.version", "the settings are at version %lld now; read them again",
                        (long long)p.version);
  mq_error_collect(err);
  apply(app->payments, req->settings, req->update_mask, &p, err); /* checked above: no error now */
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  p.updated_ms = mq_now_unix_ms();
  Marquee__Events__V1__PaymentSettingsChanged *c = mq_arena_alloc(a, sizeof *c);
  marquee__events__v1__payment_settings_changed__init(c);
  c->organization_id = p.organization_id;
  c->fields = req->update_mask->paths;
  c->n_fields = req->update_mask->n_paths;
  c->version = p.version + 1;
  const mq_principal_t *who = mq_call_principal(call);
  mq_event_t ev;
  mq_event_init(&ev, MQ_PAYMENTS_TOPIC, "payments.PaymentSettingsChanged", p.organization_id, who->subject,
                mq_call_trace_id(call), mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_SETTINGS_CHANGED;
  ev.env.payment_settings_changed = c;
  if ((rc = mq_pay_settings_save(app->store, &p, &ev, err)) != MQ_OK) return rc;
  mq_payments_settings_changed(app, p.organization_id);
  *resp = *view(a, &p);
  return MQ_OK;
}
