/*
 * receipts.c — receipts and credit notes: issued once per payment and per
 * refund, numbered without gaps per organization, kind and year
 * (store/payments/payments_store.h, `receipts`), as a record (GetReceipt)
 * and a one-page PDF (GetReceiptPdf, GET /receipts/{payment}.pdf).
 *
 * A receipt is a snapshot taken when it is issued: the seller (the
 * organization's legal name, tax id and address from its payment
 * settings), the buyer, the event, the booking's lines, fee, taxes and
 * total. Nothing that changes later (a renamed event, new settings)
 * changes it. A credit note states the amount refunded and the taxes in it
 * (each tax line in proportion, half up) and names the receipt it corrects.
 *
 * When: right after a payment succeeds and after a refund succeeds (best
 * effort: a failure is logged), and otherwise the first time someone asks
 * (GetReceipt issues what is missing), so every paid payment has one.
 * Who may read: the buyer, and members of the event's organization.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mq_log.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/bookings/bookings.h"
#include "handlers/identity/identity.h"
#include "handlers/payments/payments.h"
#include "lib/mq_jwt.h"
#include "lib/mq_money.h"
#include "lib/mq_ticket_render.h"
#include "lib/mq_validate.h"
#include "marquee/payments/v1/payments.mq-server.h"
#include "store/catalog/events_store.h"
#include "store/identity/orgs_store.h"
#include "store/identity/users_store.h"
#include "store/mq_bson.h"

#define ISSUE_TRIES 32

/* Numbers are a sequence per (organization, year, kind): issuers in one
 * process take them one at a time, so that they do not race each other for
 * the same number (under load the retries cost far more than the wait), and
 * the process remembers the last number it took of each sequence, so the
 * next one is tried without reading the tip. Issuers in other processes may
 * still take a number first: the insert decides, and the loser reads the
 * tip. Only the insert is under the lock. */
#define LAST_SLOTS 256
typedef struct {
  char key[80];
  int64_t seq;
} last_t;
static pthread_mutex_t g_issue_mu = PTHREAD_MUTEX_INITIALIZER;
static last_t g_last[LAST_SLOTS];

static last_t *last_slot(const char *key) {
  uint32_t h = 2166136261u;
  for (const char *c = key; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  return &g_last[h % LAST_SLOTS];
}

static int year_of(int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  return tm.tm_year + 1900;
}

/* The snapshot common to receipts and credit notes. */
static mq_code_t snapshot(mq_payments_t *ps, const mq_payment_t *p, mq_arena_t *a, mq_receipt_t *r, mq_booking_t *bk,
                          mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  mq_code_t rc = mq_bookings_get(s, p->hold_id, a, bk, err);
  if (rc != MQ_OK) return rc;
  Marquee__Catalog__V1__Event *e = NULL;
  mq_error_t ignored = {0};
  if (mq_events_get(s, p->event_id, a, &e, &ignored) == MQ_OK) {
    r->event_title = e->title;
    r->event_starts_ms = e->starts_at ? mq_pb_timestamp_ms(e->starts_at) : 0;
  }
  mq_pay_settings_t st;
  if ((rc = mq_pay_settings_get(s, p->organization_id, a, &st, err)) != MQ_OK) return rc;
  mq_org_t org;
  r->seller_name = st.legal_name;
  if (!*st.legal_name && mq_orgs_get(s, p->organization_id, a, &org, &ignored) == MQ_OK)
    r->seller_name = (char *)org.name;
  r->seller_tax_id = st.tax_id;
  r->seller_address = st.address;
  r->buyer_name = bk->buyer_name;
  r->buyer_email = bk->buyer_email;
  r->organization_id = p->organization_id;
  r->payment_id = p->id;
  r->currency = p->currency;
  r->payment_method = mq_arena_sprintf(a, "%s %s", p->gateway, p->gateway_ref);
  return MQ_OK;
}

/* Takes the next number of (org, year, kind) for r; MQ_OK with *r being the
 * stored one (this caller's or a racing one's for the same subject). The
 * search starts above the tip (payments_store.h: receipt_tips); a racing
 * insert that took the number sends this one to the next, or past the tip
 * it has since raised. */
static mq_code_t take_number(mq_store_t *s, mq_receipt_t *r, mq_arena_t *a, mq_error_t *err) {
  r->issued_ms = mq_now_unix_ms();
  r->year = year_of(r->issued_ms);
  bool note = !strcmp(r->kind, "credit_note");
  char key[80];
  snprintf(key, sizeof key, "%s:%d:%s", r->organization_id, r->year, r->kind);
  pthread_mutex_lock(&g_issue_mu);
  last_t *slot = last_slot(key);
  int64_t tip = !strcmp(slot->key, key) ? slot->seq : 0;
  bool found = tip > 0;
  mq_code_t rc = MQ_OK;
  if (!found) rc = mq_receipts_tip(s, r->organization_id, r->year, r->kind, &tip, &found, err);
  if (rc == MQ_OK && !found) /* receipts from before tips existed: the highest, once */
    rc = mq_receipts_last_seq(s, r->organization_id, r->year, r->kind, &tip, err);
  int64_t next = tip + 1;
  bool taken = false;
  for (int i = 0; rc == MQ_OK && i < ISSUE_TRIES; i++) {
    r->seq = next;
    r->number = mq_arena_sprintf(a, "%s-%d-%06" PRId64, note ? "CN" : "R", r->year, r->seq);
    rc = mq_receipt_insert(s, r, err);
    if (rc == MQ_OK) {
      taken = true;
      snprintf(slot->key, sizeof slot->key, "%s", key);
      slot->seq = r->seq;
      break;
    }
    if (rc != MQ_ALREADY_EXISTS) break;
    /* the number went to another process, or this subject already has one */
    mq_error_t e2 = {0};
    if (mq_receipt_by_subject(s, r->subject, a, r, &e2) == MQ_OK) {
      rc = MQ_OK;
      break;
    }
    rc = MQ_OK;
    next++;
    if (mq_receipts_tip(s, r->organization_id, r->year, r->kind, &tip, &found, &e2) == MQ_OK &&
        tip >= next) /* others moved on meanwhile: everything up to their tip is taken */
      next = tip + 1;
    if (i == ISSUE_TRIES - 1) rc = mq_error_set(err, MQ_ABORTED, "payment_id", "receipt numbers are contended; retry");
  }
  pthread_mutex_unlock(&g_issue_mu);
  if (taken) { /* a hint for other processes and for restarts: a failure only makes them probe further */
    mq_error_t e2 = {0};
    if (mq_receipts_tip_raise(s, r->organization_id, r->year, r->kind, r->seq, &e2) != MQ_OK)
      mq_log(MQ_LOG_WARN, "payments.receipt_tip", "%s: %s", r->number, e2.message);
  }
  return rc;
}

/* Declared in payments.h. */
mq_code_t mq_receipt_for_payment(mq_payments_t *ps, const mq_payment_t *p, mq_arena_t *a, mq_receipt_t *out,
                                 mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  mq_code_t rc = mq_receipt_by_subject(s, p->id, a, out, err);
  if (rc != MQ_NOT_FOUND) return rc;
  memset(out, 0, sizeof *out);
  mq_booking_t bk;
  if ((rc = snapshot(ps, p, a, out, &bk, err)) != MQ_OK) return rc;
  out->kind = (char *)"receipt";
  out->subject = p->id;
  out->lines = mq_arena_alloc(a, (bk.n_lines ? bk.n_lines : 1) * sizeof *out->lines);
  for (size_t i = 0; i < bk.n_lines; i++) {
    out->lines[i].description = bk.lines[i].name;
    out->lines[i].quantity = bk.lines[i].quantity;
    out->lines[i].unit_minor = bk.lines[i].unit_minor;
    out->lines[i].amount_minor = bk.lines[i].unit_minor * (int64_t)bk.lines[i].quantity;
  }
  out->n_lines = bk.n_lines;
  out->price = bk.price;
  out->total_minor = p->amount_minor;
  return take_number(s, out, a, err);
}

/* Declared in payments.h. */
mq_code_t mq_credit_note_for_refund(mq_payments_t *ps, const mq_payment_t *p, const mq_refund_t *refund, mq_arena_t *a,
                                    mq_receipt_t *out, mq_error_t *err) {
  mq_store_t *s = ps->app->store;
  mq_code_t rc = mq_receipt_by_subject(s, refund->id, a, out, err);
  if (rc != MQ_NOT_FOUND) return rc;
  mq_receipt_t receipt;
  if ((rc = mq_receipt_for_payment(ps, p, a, &receipt, err)) != MQ_OK) return rc;
  memset(out, 0, sizeof *out);
  mq_booking_t bk;
  if ((rc = snapshot(ps, p, a, out, &bk, err)) != MQ_OK) return rc;
  out->kind = (char *)"credit_note";
  out->subject = refund->id;
  out->refund_id = refund->id;
  out->refers_to = receipt.number;
  out->total_minor = refund->amount_minor;
  /* the taxes in the amount refunded, in proportion to the receipt's */
  out->price.tax_included = receipt.price.tax_included;
  out->price.n_taxes = receipt.price.n_taxes;
  out->price.taxes = mq_arena_alloc(a, (receipt.price.n_taxes ? receipt.price.n_taxes : 1) * sizeof *out->price.taxes);
  int64_t tax = 0;
  for (size_t i = 0; i < receipt.price.n_taxes; i++) {
    out->price.taxes[i] = receipt.price.taxes[i];
    int64_t part = 0;
    if (receipt.total_minor > 0)
      mq_money_mul_div(receipt.price.taxes[i].amount_minor, refund->amount_minor, receipt.total_minor, MQ_ROUND_HALF_UP,
                       &part);
    out->price.taxes[i].amount_minor = part;
    tax += part;
  }
  out->price.subtotal_minor = refund->amount_minor - tax;
  out->lines = mq_arena_alloc(a, sizeof *out->lines);
  out->lines[0].description = mq_arena_sprintf(a, "Refund%s%s", refund->reason && *refund->reason ? ": " : "",
                                               refund->reason ? refund->reason : "");
  out->lines[0].quantity = 1;
  out->lines[0].unit_minor = out->lines[0].amount_minor = out->price.subtotal_minor;
  out->n_lines = 1;
  return take_number(s, out, a, err);
}

/* ---- views ---- */

static Marquee__Payments__V1__Receipt *receipt_view(mq_arena_t *a, const mq_receipt_t *r) {
  Marquee__Payments__V1__Receipt *v = mq_arena_alloc(a, sizeof *v);
  marquee__payments__v1__receipt__init(v);
  v->number = r->number;
  v->kind = r->kind;
  v->payment_id = r->payment_id;
  v->refund_id = r->refund_id;
  v->refers_to = r->refers_to;
  v->issued_at = mq_pb_timestamp(a, r->issued_ms);
  v->seller_name = r->seller_name;
  v->seller_tax_id = r->seller_tax_id;
  v->seller_address = r->seller_address;
  v->buyer_name = r->buyer_name;
  v->buyer_email = r->buyer_email;
  v->event_title = r->event_title;
  if (r->event_starts_ms) v->event_starts_at = mq_pb_timestamp(a, r->event_starts_ms);
  v->lines = mq_arena_alloc(a, (r->n_lines ? r->n_lines : 1) * sizeof *v->lines);
  for (size_t i = 0; i < r->n_lines; i++) {
    Marquee__Payments__V1__ReceiptLine *l = mq_arena_alloc(a, sizeof *l);
    marquee__payments__v1__receipt_line__init(l);
    l->description = r->lines[i].description;
    l->quantity = r->lines[i].quantity;
    l->unit_price = mq_money(a, r->lines[i].unit_minor, r->currency);
    l->amount = mq_money(a, r->lines[i].amount_minor, r->currency);
    v->lines[v->n_lines++] = l;
  }
  v->subtotal = mq_money(a, r->price.subtotal_minor, r->currency);
  if (r->price.fee_minor) v->service_fee = mq_money(a, r->price.fee_minor, r->currency);
  v->taxes = mq_arena_alloc(a, (r->price.n_taxes ? r->price.n_taxes : 1) * sizeof *v->taxes);
  for (size_t i = 0; i < r->price.n_taxes; i++) {
    Marquee__Payments__V1__ReceiptTax *t = mq_arena_alloc(a, sizeof *t);
    marquee__payments__v1__receipt_tax__init(t);
    t->name = r->price.taxes[i].name;
    t->jurisdiction = r->price.taxes[i].jurisdiction;
    t->rate_ppm = (uint32_t)r->price.taxes[i].ppm;
    t->amount = mq_money(a, r->price.taxes[i].amount_minor, r->currency);
    v->taxes[v->n_taxes++] = t;
  }
  v->tax_included = r->price.tax_included;
  v->total = mq_money(a, r->total_minor, r->currency);
  v->payment_method = r->payment_method;
  return v;
}

static char *money_text(mq_arena_t *a, int64_t minor, const char *cur) {
  char b[64];
  mq_money_format(b, sizeof b, minor, cur);
  return mq_arena_strdup(a, b);
}

static char *when_text(mq_arena_t *a, int64_t ms) {
  if (!ms) return (char *)"";
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[40];
  strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", &tm);
  return mq_arena_strdup(a, b);
}

static mq_code_t render(mq_arena_t *a, const mq_receipt_t *r, uint8_t **pdf, size_t *len, mq_error_t *err) {
  bool note = !strcmp(r->kind, "credit_note");
  mq_receipt_pdf_t d = {0};
  d.title = note ? "Credit note" : "Receipt";
  d.number = note ? mq_arena_sprintf(a, "%s (for receipt %s)", r->number, r->refers_to) : r->number;
  d.date_text = mq_arena_sprintf(a, "Issued %s", when_text(a, r->issued_ms));
  d.from_text = mq_arena_sprintf(a, "%s%s%s%s%s", r->seller_name, *r->seller_address ? "\n" : "", r->seller_address,
                                 *r->seller_tax_id ? "\nTax id: " : "", r->seller_tax_id);
  d.to_text = mq_arena_sprintf(a, "%s\n%s", r->buyer_name, r->buyer_email);
  d.about_text =
      mq_arena_sprintf(a, "%s%s%s", r->event_title, r->event_starts_ms ? "\n" : "", when_text(a, r->event_starts_ms));
  mq_doc_row_t *lines = mq_arena_alloc(a, (r->n_lines ? r->n_lines : 1) * sizeof *lines);
  for (size_t i = 0; i < r->n_lines; i++) {
    lines[i].label = r->lines[i].quantity > 1
                         ? mq_arena_sprintf(a, "%s × %u at %s", r->lines[i].description, r->lines[i].quantity,
                                            money_text(a, r->lines[i].unit_minor, r->currency))
                         : r->lines[i].description;
    lines[i].value = money_text(a, r->lines[i].amount_minor, r->currency);
  }
  d.lines = lines;
  d.n_lines = r->n_lines;
  mq_doc_row_t *totals = mq_arena_alloc(a, (r->price.n_taxes + 3) * sizeof *totals);
  size_t n = 0;
  totals[n++] = (mq_doc_row_t){"Subtotal", money_text(a, r->price.subtotal_minor, r->currency)};
  if (r->price.fee_minor) totals[n++] = (mq_doc_row_t){"Service fee", money_text(a, r->price.fee_minor, r->currency)};
  for (size_t i = 0; i < r->price.n_taxes; i++) {
    char rate[32];
    int64_t ppm = r->price.taxes[i].ppm;
    snprintf(rate, sizeof rate, "%" PRId64 ".%04" PRId64, ppm / 10000, ppm % 10000);
    for (size_t k = strlen(rate); k > 0 && (rate[k - 1] == '0' || rate[k - 1] == '.'); k--) {
      bool dot = rate[k - 1] == '.';
      rate[k - 1] = '\0';
      if (dot) break;
    }
    totals[n++] =
        (mq_doc_row_t){mq_arena_sprintf(a, "%s %s%% (%s)%s", r->price.taxes[i].name, rate,
                                        r->price.taxes[i].jurisdiction, r->price.tax_included ? ", included" : ""),
                       money_text(a, r->price.taxes[i].amount_minor, r->currency)};
  }
  totals[n++] = (mq_doc_row_t){note ? "Refunded" : "Total paid", money_text(a, r->total_minor, r->currency)};
  d.totals = totals;
  d.n_totals = n;
  d.footer = mq_arena_sprintf(a, "%s %s. Paid by %s.", note ? "Credit note issued by" : "Receipt issued by",
                              r->seller_name, r->payment_method);
  return mq_render_receipt_pdf(&d, NULL, pdf, len, err);
}

/* ---- RPCs ---- */

static mq_code_t load_paid(mq_call_t *call, const char *payment_id, mq_payment_t *p, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_code_t rc = mq_check_uuid(err, "payment_id", payment_id);
  if (rc == MQ_OK) rc = mq_payments_get(app->store, payment_id, mq_call_arena(call), p, err);
  if (rc == MQ_OK && strcmp(p->user_id, mq_call_principal(call)->subject)) {
    mq_error_t e2 = {0};
    rc = mq_org_require(call, p->organization_id, MQ_ORG_CHECKIN, NULL, &e2);
    if (rc == MQ_PERMISSION_DENIED) rc = MQ_NOT_FOUND;
    if (rc != MQ_OK && rc != MQ_NOT_FOUND) *err = e2;
  } else if (rc == MQ_OK) {
    mq_call_authorized(call);
  }
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "payment_id", "no such payment");
  if (rc == MQ_OK && strcmp(p->state, MQ_PAY_SUCCEEDED) && strcmp(p->state, MQ_PAY_PARTIALLY_REFUNDED) &&
      strcmp(p->state, MQ_PAY_REFUNDED))
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "payment_id",
                        "the payment is %s: there is no receipt before it is paid", p->state);
  return rc;
}

/* The credit notes of every succeeded refund (issuing the missing ones). */
static mq_code_t credit_notes(mq_payments_t *ps, const mq_payment_t *p, mq_arena_t *a, mq_receipt_t **out, size_t *n,
                              mq_error_t *err) {
  mq_refund_t *r;
  size_t nr;
  mq_code_t rc = mq_refunds_of(ps->app->store, p->id, a, &r, &nr, err);
  if (rc != MQ_OK) return rc;
  *out = mq_arena_alloc(a, (nr ? nr : 1) * sizeof **out);
  *n = 0;
  for (size_t i = 0; i < nr && rc == MQ_OK; i++) {
    if (strcmp(r[i].state, "succeeded")) continue;
    rc = mq_credit_note_for_refund(ps, p, &r[i], a, &(*out)[*n], err);
    if (rc == MQ_OK) (*n)++;
  }
  return rc;
}

mq_code_t mq_receipt_get_handler(mq_call_t *call, const Marquee__Payments__V1__GetReceiptRequest *req,
                                 Marquee__Payments__V1__GetReceiptResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_payment_t p;
  mq_code_t rc = load_paid(call, req->payment_id, &p, err);
  mq_receipt_t r, *notes = NULL;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_receipt_for_payment(app->payments, &p, a, &r, err);
  if (rc == MQ_OK) rc = credit_notes(app->payments, &p, a, &notes, &n, err);
  if (rc != MQ_OK) return rc;
  resp->receipt = receipt_view(a, &r);
  resp->credit_notes = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->credit_notes);
  for (size_t i = 0; i < n; i++) resp->credit_notes[resp->n_credit_notes++] = receipt_view(a, &notes[i]);
  return MQ_OK;
}

mq_code_t mq_receipt_pdf_handler(mq_call_t *call, const Marquee__Payments__V1__GetReceiptPdfRequest *req,
                                 Marquee__Payments__V1__ReceiptFile *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_payment_t p;
  mq_code_t rc = load_paid(call, req->payment_id, &p, err);
  if (rc != MQ_OK) return rc;
  mq_receipt_t r;
  if (req->refund_id && *req->refund_id) {
    size_t pl = strlen(p.id);
    if (strncmp(req->refund_id, p.id, pl) || req->refund_id[pl] != ':')
      return mq_error_set(err, MQ_NOT_FOUND, "refund_id", "not a refund of this payment");
    mq_refund_t *refunds;
    size_t nr;
    if ((rc = mq_refunds_of(app->store, p.id, a, &refunds, &nr, err)) != MQ_OK) return rc;
    const mq_refund_t *found = NULL;
    for (size_t i = 0; i < nr; i++)
      if (!strcmp(refunds[i].id, req->refund_id)) found = &refunds[i];
    if (!found) return mq_error_set(err, MQ_NOT_FOUND, "refund_id", "not a refund of this payment");
    if (strcmp(found->state, "succeeded"))
      return mq_error_set(err, MQ_FAILED_PRECONDITION, "refund_id", "the refund is %s: no credit note yet",
                          found->state);
    rc = mq_credit_note_for_refund(app->payments, &p, found, a, &r, err);
  } else {
    rc = mq_receipt_for_payment(app->payments, &p, a, &r, err);
  }
  uint8_t *pdf = NULL;
  size_t len = 0;
  if (rc == MQ_OK) rc = render(a, &r, &pdf, &len, err);
  if (rc != MQ_OK) return rc;
  uint8_t *copy = mq_arena_alloc(a, len);
  memcpy(copy, pdf, len);
  free(pdf);
  resp->content_type = (char *)"application/pdf";
  resp->file_name = mq_arena_sprintf(a, "%s.pdf", r.number);
  resp->data.data = copy;
  resp->data.len = len;
  return MQ_OK;
}

/* ---- GET /receipts/{payment id}.pdf ---- */

static void text(mq_http_response_t *r, int status, const char *body) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  r->body = mq_xstrdup(body);
  r->body_len = strlen(body);
}

static void receipts_http_get(void *arg, const char *method, const char *path, mq_http_response_t *r) {
  mq_app_t *app = arg;
  r->cache_control = "private, no-store";
  if (strcmp(method, "GET")) return text(r, 405, "GET only\n");
  const char *name = path + strlen("/receipts/");
  char id[37];
  snprintf(id, sizeof id, "%.36s", name);
  if (strlen(name) != 40 || strcmp(name + 36, ".pdf") || mq_check_uuid(NULL, NULL, id) != MQ_OK)
    return text(r, 404, "use /receipts/{payment id}.pdf\n");
  mq_principal_t who;
  mq_error_t err = {0};
  if (!mq_route_bearer(app, r, &who)) return text(r, 401, "send Authorization: Bearer <access token>\n");
  mq_arena_t a;
  mq_arena_init(&a);
  mq_payment_t p;
  int role = 0;
  mq_code_t rc = mq_payments_get(app->store, id, &a, &p, &err);
  if (rc == MQ_OK && strcmp(p.user_id, who.subject) && !(who.roles & MQ_ROLE_ADMIN))
    rc = mq_orgs_role(app->store, p.organization_id, who.subject, &role, &err);
  if (rc == MQ_OK && strcmp(p.state, MQ_PAY_SUCCEEDED) && strcmp(p.state, MQ_PAY_PARTIALLY_REFUNDED) &&
      strcmp(p.state, MQ_PAY_REFUNDED))
    rc = MQ_FAILED_PRECONDITION;
  mq_receipt_t rec;
  uint8_t *pdf = NULL;
  size_t len = 0;
  if (rc == MQ_OK) rc = mq_receipt_for_payment(app->payments, &p, &a, &rec, &err);
  if (rc == MQ_OK) rc = render(&a, &rec, &pdf, &len, &err);
  if (rc == MQ_OK) {
    r->status = 200;
    r->content_type = "application/pdf";
    r->body = (char *)pdf;
    r->body_len = len;
  } else if (rc == MQ_NOT_FOUND || rc == MQ_PERMISSION_DENIED) {
    text(r, 404, "no such payment\n");
  } else if (rc == MQ_FAILED_PRECONDITION) {
    text(r, 409, "not paid: no receipt\n");
  } else {
    text(r, 503, "try again later\n");
  }
  mq_arena_release(&a);
}

/* Declared in payments.h. */
void mq_receipts_routes(mq_app_t *app, mq_http_t *http) {
  mq_http_route(http, "/receipts/", receipts_http_get, app);
}
