/*
 * analytics.c — marquee.analytics.v1.AnalyticsService: event, organization
 * and platform dashboards and the event's CSV export, read from the
 * aggregates marquee-analytics keeps (store/analytics/analytics_store.h).
 *
 * A request's range is checked whole first (every bad field listed), then
 * cut into local hours or days of its time zone (lib/mq_buckets.h: exact
 * for half-hour zones and DST days), and the stored quarters are added
 * into their buckets in one pass.
 *
 * Page views: GetEvent calls app->event_viewed, which adds one to the
 * event's count in memory; the module's tick (about once a second) produces
 * one analytics.EventViewed per viewed event with its count straight to
 * marquee.views from this module's own producer — never through the outbox
 * or the store, never waiting (a full queue drops views); marquee-analytics
 * adds them up.
 *
 * Who may call: owners and managers of the event's or the organization's
 * organization (non-members: NOT_FOUND; check-in staff: PERMISSION_DENIED),
 * admins for anything, and for the platform's statistics only admins.
 * Nothing here writes.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

#include "core/mq_ids.h"
#include "core/mq_log.h"
#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "core/mq_xmalloc.h"
#include "handlers/analytics/live.h"
#include "handlers/identity/identity.h"
#include "handlers/mq_module.h"
#include "lib/mq_buckets.h"
#include "lib/mq_kafka.h"
#include "lib/mq_validate.h"
#include "marquee/analytics/v1/analytics.mq-server.h"
#include "store/analytics/analytics_store.h"
#include "store/catalog/events_store.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"

#define MAX_RANGE_DAYS 1100
#define MAX_HOUR_RANGE_DAYS 92
#define DEFAULT_RANGE_DAYS 30
#define MAX_CURRENCIES 16
#define MAX_TYPES 128
#define MAX_EVENTS_LISTED 200
#define CSV_CHUNK 16384

typedef Marquee__Analytics__V1__TimeRange range_pb;
typedef Marquee__Analytics__V1__Counters counters_pb;

/* ---- counters ---- */

typedef struct money {
  char cur[4];
  int64_t gross, fees, tax, refunded;
} money_t;

typedef struct counters {
  int64_t h, hx, hr, b, t, c, ct, r, ci, v, ep, su, oc;
  money_t m[MAX_CURRENCIES];
  size_t nm;
} counters_t;

static money_t *money_of(counters_t *c, const char *cur) {
  for (size_t i = 0; i < c->nm; i++)
    if (!strcmp(c->m[i].cur, cur)) return &c->m[i];
  if (c->nm == MAX_CURRENCIES || strlen(cur) != 3) return NULL;
  money_t *m = &c->m[c->nm++];
  memset(m, 0, sizeof *m);
  memcpy(m->cur, cur, 4);
  return m;
}

/* One stored counter into `c`; per-type names ("t:<tt>"…) are not totals. */
static void counters_add(counters_t *c, const char *name, int64_t v) {
  const char *colon = strchr(name, ':');
  if (!colon) {
    static const struct {
      const char *name;
      size_t off;
    } plain[] = {
        {MQ_AN_HOLDS, offsetof(counters_t, h)},
        {MQ_AN_HOLDS_EXPIRED, offsetof(counters_t, hx)},
        {MQ_AN_HOLDS_RELEASED, offsetof(counters_t, hr)},
        {MQ_AN_BOOKINGS, offsetof(counters_t, b)},
        {MQ_AN_TICKETS, offsetof(counters_t, t)},
        {MQ_AN_CANCELLATIONS, offsetof(counters_t, c)},
        {MQ_AN_TICKETS_CANCELLED, offsetof(counters_t, ct)},
        {MQ_AN_REFUNDS, offsetof(counters_t, r)},
        {MQ_AN_CHECKINS, offsetof(counters_t, ci)},
        {MQ_AN_VIEWS, offsetof(counters_t, v)},
        {MQ_AN_PUBLISHED, offsetof(counters_t, ep)},
        {MQ_AN_SIGNUPS, offsetof(counters_t, su)},
        {MQ_AN_ORGS, offsetof(counters_t, oc)},
    };
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
      if (!strcmp(name, plain[i].name)) *(int64_t *)((char *)c + plain[i].off) += v;
    return;
  }
  size_t plen = (size_t)(colon - name);
  const char *cur = colon + 1;
  if (strchr(cur, ':')) return;
  money_t *m = NULL;
#define IS(p) (plen == strlen(p) && !strncmp(name, p, plen))
  if (IS(MQ_AN_GROSS) || IS(MQ_AN_FEES) || IS(MQ_AN_TAX) || IS(MQ_AN_REFUNDED)) m = money_of(c, cur);
  if (!m) return;
  if (IS(MQ_AN_GROSS))
    m->gross += v;
  else if (IS(MQ_AN_FEES))
    m->fees += v;
  else if (IS(MQ_AN_TAX))
    m->tax += v;
  else if (IS(MQ_AN_REFUNDED))
    m->refunded += v;
#undef IS
}

static void counters_merge(counters_t *into, const counters_t *c) {
  into->h += c->h, into->hx += c->hx, into->hr += c->hr, into->b += c->b, into->t += c->t, into->c += c->c;
  into->ct += c->ct, into->r += c->r, into->ci += c->ci, into->v += c->v, into->ep += c->ep, into->su += c->su;
  into->oc += c->oc;
  for (size_t i = 0; i < c->nm; i++) {
    money_t *m = money_of(into, c->m[i].cur);
    if (!m) continue;
    m->gross += c->m[i].gross, m->fees += c->m[i].fees, m->tax += c->m[i].tax, m->refunded += c->m[i].refunded;
  }
}

static int money_cmp(const void *a, const void *b) {
  return strcmp(((const money_t *)a)->cur, ((const money_t *)b)->cur);
}

static Marquee__Analytics__V1__Revenue *revenue_pb(mq_arena_t *a, const money_t *m) {
  Marquee__Analytics__V1__Revenue *r = mq_arena_alloc(a, sizeof *r);
  marquee__analytics__v1__revenue__init(r);
  r->currency = mq_arena_strdup(a, m->cur);
  r->gross_minor = m->gross;
  r->fees_minor = m->fees;
  r->tax_minor = m->tax;
  r->refunded_minor = m->refunded;
  r->net_minor = m->gross - m->fees - m->tax - m->refunded;
  return r;
}

static counters_pb *counters_pb_of(mq_arena_t *a, counters_t *c) {
  counters_pb *p = mq_arena_alloc(a, sizeof *p);
  marquee__analytics__v1__counters__init(p);
  p->holds = c->h, p->holds_expired = c->hx, p->holds_released = c->hr, p->bookings = c->b;
  p->tickets_sold = c->t, p->cancellations = c->c, p->tickets_cancelled = c->ct, p->refunds = c->r;
  p->check_ins = c->ci, p->page_views = c->v, p->events_published = c->ep, p->sign_ups = c->su;
  p->organizations_created = c->oc;
  qsort(c->m, c->nm, sizeof *c->m, money_cmp);
  p->revenue = mq_arena_alloc(a, (c->nm ? c->nm : 1) * sizeof *p->revenue);
  for (size_t i = 0; i < c->nm; i++)
    if (c->m[i].gross || c->m[i].fees || c->m[i].tax || c->m[i].refunded)
      p->revenue[p->n_revenue++] = revenue_pb(a, &c->m[i]);
  return p;
}

/* ---- the range and its buckets ---- */

typedef struct range {
  int64_t from_ms, to_ms; /* as asked (unix ms) */
  const char *tz;
  bool hourly;
  mq_buckets_t cut;
  size_t n_buckets;
  int64_t *bucket_start; /* unix ms, cut at from_ms */
  char (*label)[14];
  counters_t *bucket;
} range_t;

/* Checks `r` (collecting violations) and fills `out`. def_from_ms: the
 * default start; def_tz: the default zone. */
static void range_check(const range_pb *r, int64_t def_from_ms, const char *def_tz, range_t *out, mq_error_t *err) {
  int64_t now = mq_now_unix_ms();
  memset(out, 0, sizeof *out);
  out->to_ms = r && r->end_time ? mq_pb_timestamp_ms(r->end_time) : now;
  out->from_ms = r && r->start_time ? mq_pb_timestamp_ms(r->start_time)
                 : def_from_ms      ? def_from_ms
                                    : out->to_ms - DEFAULT_RANGE_DAYS * MQ_AN_DAY_MS;
  if (!(r && r->start_time) && out->to_ms - out->from_ms > MAX_RANGE_DAYS * MQ_AN_DAY_MS)
    out->from_ms = out->to_ms - MAX_RANGE_DAYS * MQ_AN_DAY_MS; /* a default never fails */
  if (!(r && r->start_time) && out->from_ms >= out->to_ms) out->from_ms = out->to_ms - MQ_AN_DAY_MS;
  out->tz = r && r->time_zone && *r->time_zone ? r->time_zone : def_tz && *def_tz ? def_tz : "UTC";
  if (r && r->time_zone && *r->time_zone) mq_check_timezone(err, "range.time_zone", r->time_zone);
  if (r)
    mq_check_enum(err, "range.granularity", (int)r->granularity, &marquee__analytics__v1__granularity__descriptor,
                  true);
  out->hourly = r && r->granularity == MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_HOUR;
  if (out->from_ms < 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "range.start_time", "must not be before 1970");
  if (out->to_ms <= out->from_ms) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "range.end_time", "must be after start_time");
  } else if (out->to_ms - out->from_ms > MAX_RANGE_DAYS * MQ_AN_DAY_MS) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "range.end_time", "the range is at most %d days", MAX_RANGE_DAYS);
  } else if (out->hourly && out->to_ms - out->from_ms > MAX_HOUR_RANGE_DAYS * MQ_AN_DAY_MS) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "range.granularity",
                 "HOUR is allowed for ranges of at most %d days; ask for DAY", MAX_HOUR_RANGE_DAYS);
  }
}

/* Cuts the checked range into buckets (lib/mq_buckets.h; arrays in `a`). */
static mq_code_t range_buckets(range_t *r, mq_arena_t *a, mq_error_t *err) {
  mq_buckets_t b;
  mq_code_t rc = mq_buckets_make(r->from_ms, r->to_ms, r->tz, r->hourly, "range.time_zone", a, &b, err);
  if (rc != MQ_OK) return rc;
  r->cut = b;
  r->n_buckets = b.n;
  r->bucket_start = b.start;
  r->label = b.label;
  r->bucket = mq_arena_alloc(a, (r->n_buckets ? r->n_buckets : 1) * sizeof *r->bucket);
  memset(r->bucket, 0, (r->n_buckets ? r->n_buckets : 1) * sizeof *r->bucket);
  return MQ_OK;
}

/* The bucket of instant at_ms, or NULL outside the range. */
static counters_t *bucket_at(range_t *r, int64_t at_ms) {
  long i = mq_buckets_index(&r->cut, at_ms);
  return i < 0 ? NULL : &r->bucket[i];
}

static Marquee__Analytics__V1__Point **series_pb(mq_arena_t *a, range_t *r, const int64_t *active) {
  Marquee__Analytics__V1__Point **pts = mq_arena_alloc(a, (r->n_buckets ? r->n_buckets : 1) * sizeof *pts);
  for (size_t i = 0; i < r->n_buckets; i++) {
    Marquee__Analytics__V1__Point *p = mq_arena_alloc(a, sizeof *p);
    marquee__analytics__v1__point__init(p);
    p->start_time = mq_pb_timestamp(a, r->bucket_start[i]);
    p->label = mq_arena_strdup(a, r->label[i]);
    p->counters = counters_pb_of(a, &r->bucket[i]);
    if (active) p->active_organizers = active[i];
    pts[i] = p;
  }
  return pts;
}

static Marquee__Analytics__V1__Granularity granularity_of(const range_t *r) {
  return r->hourly ? MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_HOUR
                   : MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_DAY;
}

/* The current generation and how complete it is (0, 0 when none). */
static mq_code_t generation(mq_app_t *app, int64_t *gen, int64_t *complete_ms, mq_error_t *err) {
  mq_code_t rc = mq_an_current(app->store, gen, err);
  *complete_ms = 0;
  if (rc == MQ_OK && *gen) rc = mq_an_complete_until(app->store, *gen, complete_ms, err);
  return rc;
}

/* ---- the event dashboard ---- */

typedef struct tt_stats {
  char id[MQ_AN_KEY_MAX + 1];
  int64_t sold, cancelled, checkins;
  counters_t money; /* gross per currency */
} tt_stats_t;

typedef struct event_scan {
  range_t *r;
  counters_t totals, all; /* in range; whole history */
  tt_stats_t *types;
  size_t n_types;
} event_scan_t;

static tt_stats_t *type_of(event_scan_t *x, const char *id, size_t len) {
  if (!len || len > MQ_AN_KEY_MAX) return NULL;
  for (size_t i = 0; i < x->n_types; i++)
    if (strlen(x->types[i].id) == len && !strncmp(x->types[i].id, id, len)) return &x->types[i];
  if (x->n_types == MAX_TYPES) return NULL;
  tt_stats_t *t = &x->types[x->n_types++];
  memset(t, 0, sizeof *t);
  memcpy(t->id, id, len);
  return t;
}

static void event_cell(const mq_an_cell_t *c, void *arg) {
  event_scan_t *x = arg;
  counters_add(&x->all, c->name, c->value);
  counters_t *b = bucket_at(x->r, c->at_ms);
  if (!b) return;
  counters_add(b, c->name, c->value);
  const char *colon = strchr(c->name, ':');
  if (!colon) return;
  const char *id = colon + 1, *end = strchr(id, ':');
  size_t plen = (size_t)(colon - c->name);
  bool per_type = (plen == 1 && (c->name[0] == 't' || c->name[0] == 's')) ||
                  (plen == 2 && (!strncmp(c->name, "ct", 2) || !strncmp(c->name, "ci", 2)));
  if (!per_type) return; /* g:, f:, x:, rf: are per currency */
  tt_stats_t *t = type_of(x, id, end ? (size_t)(end - id) : strlen(id));
  if (!t) return;
  if (plen == 1 && c->name[0] == 't')
    t->sold += c->value;
  else if (plen == 2 && !strncmp(c->name, "ct", 2))
    t->cancelled += c->value;
  else if (plen == 2 && !strncmp(c->name, "ci", 2))
    t->checkins += c->value;
  else if (plen == 1 && c->name[0] == 's' && end) {
    money_t *m = money_of(&t->money, end + 1);
    if (m) m->gross += c->value;
  }
}

static int by_type_id(const void *a, const void *b) {
  return strcmp(((const tt_stats_t *)a)->id, ((const tt_stats_t *)b)->id);
}

static double ratio(int64_t a, int64_t b) {
  return b > 0 ? (double)a / (double)b : 0;
}

typedef struct event_stats {
  Marquee__Catalog__V1__Event *e;
  range_t r;
  event_scan_t scan;
  int64_t complete_ms;
} event_stats_t;

static mq_code_t event_stats(mq_call_t *call, const Marquee__Analytics__V1__GetEventStatsRequest *req,
                             event_stats_t *out, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  memset(out, 0, sizeof *out);
  mq_code_t rc = mq_check_uuid(err, "event_id", req->event_id);
  if (rc == MQ_OK) rc = mq_events_get(app->store, req->event_id, a, &out->e, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc == MQ_OK) rc = mq_org_require(call, out->e->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc == MQ_NOT_FOUND) return mq_error_set(err, MQ_NOT_FOUND, "event_id", "no such event");
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "event_id", "sales statistics need the manager role or stronger");
  if (rc != MQ_OK) return rc;
  mq_error_collect(err);
  int64_t created = out->e->created_at ? mq_pb_timestamp_ms(out->e->created_at) : 0;
  range_check(req->range, created, out->e->time_zone, &out->r, err);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  if ((rc = range_buckets(&out->r, a, err)) != MQ_OK) return rc;
  int64_t gen;
  if ((rc = generation(app, &gen, &out->complete_ms, err)) != MQ_OK) return rc;
  out->scan.r = &out->r;
  out->scan.types = mq_arena_alloc(a, MAX_TYPES * sizeof *out->scan.types);
  if (gen) rc = mq_an_scan(app->store, gen, 'e', out->e->event_id, NULL, 0, INT64_MAX / 4, event_cell, &out->scan, err);
  for (size_t i = 0; rc == MQ_OK && i < out->r.n_buckets; i++) counters_merge(&out->scan.totals, &out->r.bucket[i]);
  return rc;
}

static mq_code_t get_event_stats(mq_call_t *call, const Marquee__Analytics__V1__GetEventStatsRequest *req,
                                 Marquee__Analytics__V1__EventStats *resp, mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  event_stats_t s;
  mq_code_t rc = event_stats(call, req, &s, err);
  if (rc != MQ_OK) return rc;
  resp->event_id = s.e->event_id;
  resp->title = s.e->title;
  resp->time_zone = (char *)s.r.tz;
  resp->granularity = granularity_of(&s.r);
  resp->start_time = mq_pb_timestamp(a, s.r.from_ms);
  resp->end_time = mq_pb_timestamp(a, s.r.to_ms);
  resp->totals = counters_pb_of(a, &s.scan.totals);
  resp->series = series_pb(a, &s.r, NULL);
  resp->n_series = s.r.n_buckets;
  if (s.scan.n_types) qsort(s.scan.types, s.scan.n_types, sizeof *s.scan.types, by_type_id); /* stable output */
  resp->ticket_types = mq_arena_alloc(a, (s.scan.n_types ? s.scan.n_types : 1) * sizeof *resp->ticket_types);
  for (size_t i = 0; i < s.scan.n_types; i++) {
    tt_stats_t *t = &s.scan.types[i];
    Marquee__Analytics__V1__TicketTypeStats *p = mq_arena_alloc(a, sizeof *p);
    marquee__analytics__v1__ticket_type_stats__init(p);
    p->ticket_type_id = mq_arena_strdup(a, t->id);
    p->name = (char *)"";
    for (size_t k = 0; k < s.e->n_ticket_types; k++)
      if (!strcmp(s.e->ticket_types[k]->ticket_type_id, t->id)) p->name = s.e->ticket_types[k]->name;
    p->tickets_sold = t->sold;
    p->tickets_cancelled = t->cancelled;
    p->check_ins = t->checkins;
    Marquee__Analytics__V1__Counters *m = counters_pb_of(a, &t->money);
    p->revenue = m->revenue;
    p->n_revenue = m->n_revenue;
    resp->ticket_types[resp->n_ticket_types++] = p;
  }
  Marquee__Analytics__V1__Conversion *cv = mq_arena_alloc(a, sizeof *cv);
  marquee__analytics__v1__conversion__init(cv);
  cv->page_views = s.scan.totals.v;
  cv->holds = s.scan.totals.h;
  cv->bookings = s.scan.totals.b;
  cv->view_to_hold = ratio(cv->holds, cv->page_views);
  cv->hold_to_booking = ratio(cv->bookings, cv->holds);
  cv->view_to_booking = ratio(cv->bookings, cv->page_views);
  resp->conversion = cv;
  Marquee__Analytics__V1__CheckInProgress *ci = mq_arena_alloc(a, sizeof *ci);
  marquee__analytics__v1__check_in_progress__init(ci);
  ci->tickets = s.scan.all.t - s.scan.all.ct;
  ci->checked_in = s.scan.all.ci;
  ci->ratio = ratio(ci->checked_in, ci->tickets);
  resp->check_in = ci;
  if (s.complete_ms) resp->complete_until = mq_pb_timestamp(a, s.complete_ms);
  return MQ_OK;
}

/* ---- CSV export ---- */

typedef struct csv {
  mq_call_t *call;
  char *buf;
  size_t len, cap;
} csv_t;

static mq_code_t csv_flush(csv_t *x, bool force, mq_error_t *err) {
  if (!x->len || (!force && x->len < CSV_CHUNK)) return MQ_OK;
  Marquee__Analytics__V1__CsvChunk ch = MARQUEE__ANALYTICS__V1__CSV_CHUNK__INIT;
  x->buf[x->len] = 0;
  ch.text = x->buf;
  mq_code_t rc = marquee__analytics__v1__analytics_service__export_event_stats__send(x->call, &ch, err);
  x->len = 0;
  return rc;
}

static void csv_printf(csv_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void csv_printf(csv_t *x, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(x->buf + x->len, x->cap - x->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < x->cap - x->len) {
      x->len += (size_t)n;
      return;
    }
    x->cap = x->cap * 2 + (size_t)(n > 0 ? n : 0);
    x->buf = mq_xrealloc(x->buf, x->cap);
  }
}

/* One row per bucket: the counts, then five money columns per currency the
 * range holds (gross, fees, tax, refunded, net), named "<column>_<CUR>", so
 * a column adds up with nothing counted twice. */
static mq_code_t export_event_stats(mq_call_t *call, const Marquee__Analytics__V1__GetEventStatsRequest *req,
                                    mq_error_t *err) {
  event_stats_t s;
  mq_code_t rc = event_stats(call, req, &s, err);
  if (rc != MQ_OK) return rc;
  counters_t curs = {0}; /* the currencies of the range, in order */
  for (size_t i = 0; i < s.r.n_buckets; i++) counters_merge(&curs, &s.r.bucket[i]);
  qsort(curs.m, curs.nm, sizeof *curs.m, money_cmp);
  csv_t x = {.call = call, .cap = CSV_CHUNK * 2};
  x.buf = mq_xmalloc(x.cap);
  csv_printf(&x,
             "bucket,start_time,holds,holds_expired,holds_released,bookings,tickets_sold,cancellations,"
             "tickets_cancelled,refunds,check_ins,page_views");
  for (size_t k = 0; k < curs.nm; k++)
    csv_printf(&x, ",gross_minor_%s,fees_minor_%s,tax_minor_%s,refunded_minor_%s,net_minor_%s", curs.m[k].cur,
               curs.m[k].cur, curs.m[k].cur, curs.m[k].cur, curs.m[k].cur);
  csv_printf(&x, "\r\n");
  for (size_t i = 0; rc == MQ_OK && i < s.r.n_buckets; i++) {
    counters_t *c = &s.r.bucket[i];
    char start[32];
    time_t secs = (time_t)(s.r.bucket_start[i] / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
    csv_printf(&x,
               "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
               ",%" PRId64 ",%" PRId64,
               s.r.label[i], start, c->h, c->hx, c->hr, c->b, c->t, c->c, c->ct, c->r, c->ci, c->v);
    for (size_t k = 0; k < curs.nm; k++) {
      money_t zero = {0}, *m = &zero;
      for (size_t j = 0; j < c->nm; j++)
        if (!strcmp(c->m[j].cur, curs.m[k].cur)) m = &c->m[j];
      csv_printf(&x, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64, m->gross, m->fees, m->tax,
                 m->refunded, m->gross - m->fees - m->tax - m->refunded);
    }
    csv_printf(&x, "\r\n");
    rc = csv_flush(&x, false, err);
  }
  if (rc == MQ_OK) rc = csv_flush(&x, true, err);
  free(x.buf);
  return rc;
}

/* ---- the organization dashboard ---- */

typedef struct ev_sum {
  char id[MQ_AN_KEY_MAX + 1];
  counters_t c;
} ev_sum_t;

typedef struct org_scan {
  range_t *r;
  ev_sum_t *events;
  size_t n, cap;
} org_scan_t;

static void org_cell(const mq_an_cell_t *c, void *arg) {
  org_scan_t *x = arg;
  counters_t *b = bucket_at(x->r, c->at_ms);
  if (b) counters_add(b, c->name, c->value);
}

static void org_event_cell(const mq_an_cell_t *c, void *arg) {
  org_scan_t *x = arg;
  if (!bucket_at(x->r, c->at_ms)) return;
  ev_sum_t *e = NULL;
  for (size_t i = 0; i < x->n && !e; i++)
    if (!strcmp(x->events[i].id, c->key)) e = &x->events[i];
  if (!e) {
    if (x->n == x->cap) {
      x->cap = x->cap ? x->cap * 2 : 64;
      x->events = mq_xrealloc(x->events, x->cap * sizeof *x->events);
    }
    e = &x->events[x->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", c->key);
  }
  counters_add(&e->c, c->name, c->value);
}

static int by_tickets(const void *a, const void *b) {
  const ev_sum_t *x = a, *y = b;
  if (x->c.t != y->c.t) return x->c.t > y->c.t ? -1 : 1;
  return strcmp(x->id, y->id);
}

static mq_code_t get_org_stats(mq_call_t *call, const Marquee__Analytics__V1__GetOrganizationStatsRequest *req,
                               Marquee__Analytics__V1__OrganizationStats *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  if (rc == MQ_PERMISSION_DENIED)
    return mq_error_set(err, MQ_PERMISSION_DENIED, "organization_id",
                        "sales statistics need the manager role or stronger");
  if (rc != MQ_OK) return rc;
  range_t r;
  mq_error_collect(err);
  range_check(req->range, 0, "UTC", &r, err);
  if ((rc = mq_error_collected(err)) != MQ_OK) return rc;
  if ((rc = range_buckets(&r, a, err)) != MQ_OK) return rc;
  int64_t gen, complete;
  if ((rc = generation(app, &gen, &complete, err)) != MQ_OK) return rc;
  org_scan_t x = {.r = &r};
  if (gen) rc = mq_an_scan(app->store, gen, 'o', req->organization_id, NULL, r.from_ms, r.to_ms, org_cell, &x, err);
  if (gen && rc == MQ_OK)
    rc = mq_an_scan(app->store, gen, 'e', NULL, req->organization_id, r.from_ms, r.to_ms, org_event_cell, &x, err);
  if (rc != MQ_OK) {
    free(x.events);
    return rc;
  }
  counters_t totals = {0};
  for (size_t i = 0; i < r.n_buckets; i++) counters_merge(&totals, &r.bucket[i]);
  resp->organization_id = req->organization_id;
  resp->time_zone = (char *)r.tz;
  resp->granularity = granularity_of(&r);
  resp->start_time = mq_pb_timestamp(a, r.from_ms);
  resp->end_time = mq_pb_timestamp(a, r.to_ms);
  resp->totals = counters_pb_of(a, &totals);
  resp->series = series_pb(a, &r, NULL);
  resp->n_series = r.n_buckets;
  if (x.n) qsort(x.events, x.n, sizeof *x.events, by_tickets);
  size_t n = x.n < MAX_EVENTS_LISTED ? x.n : MAX_EVENTS_LISTED;
  resp->events = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->events);
  for (size_t i = 0; i < n; i++) {
    Marquee__Analytics__V1__EventSummary *es = mq_arena_alloc(a, sizeof *es);
    marquee__analytics__v1__event_summary__init(es);
    es->event_id = mq_arena_strdup(a, x.events[i].id);
    Marquee__Catalog__V1__Event *e;
    mq_error_t ignored = {0};
    if (mq_events_get(app->store, es->event_id, a, &e, &ignored) == MQ_OK) {
      es->title = e->title;
      es->starts_at = e->starts_at;
    } else {
      es->title = (char *)"";
    }
    es->totals = counters_pb_of(a, &x.events[i].c);
    resp->events[resp->n_events++] = es;
  }
  free(x.events);
  if (complete) resp->complete_until = mq_pb_timestamp(a, complete);
  return MQ_OK;
}

/* ---- the platform ---- */

typedef struct platform_scan {
  range_t *r;
  /* active organizers: (bucket, organization) pairs and organizations seen */
  char (*orgs)[MQ_AN_KEY_MAX + 1];
  size_t n_orgs, cap_orgs;
  uint8_t *active; /* n_buckets x cap_orgs bits, grown with the organizations */
} platform_scan_t;

static void platform_cell(const mq_an_cell_t *c, void *arg) {
  platform_scan_t *x = arg;
  counters_t *b = bucket_at(x->r, c->at_ms);
  if (b) counters_add(b, c->name, c->value);
}

static void active_cell(const mq_an_cell_t *c, void *arg) {
  platform_scan_t *x = arg;
  counters_t *b = bucket_at(x->r, c->at_ms);
  if (!b || c->value <= 0 || (strcmp(c->name, MQ_AN_BOOKINGS) && strcmp(c->name, MQ_AN_PUBLISHED))) return;
  size_t bi = (size_t)(b - x->r->bucket), oi = x->n_orgs;
  for (size_t i = 0; i < x->n_orgs; i++)
    if (!strcmp(x->orgs[i], c->key)) oi = i;
  if (oi == x->n_orgs) {
    if (x->n_orgs == x->cap_orgs) {
      size_t ncap = x->cap_orgs ? x->cap_orgs * 2 : 64;
      x->orgs = mq_xrealloc(x->orgs, ncap * sizeof *x->orgs);
      uint8_t *na = mq_xcalloc(x->r->n_buckets * ncap, 1);
      for (size_t k = 0; k < x->r->n_buckets && x->cap_orgs; k++)
        memcpy(na + k * ncap, x->active + k * x->cap_orgs, x->cap_orgs);
      free(x->active);
      x->active = na;
      x->cap_orgs = ncap;
    }
    snprintf(x->orgs[x->n_orgs++], sizeof *x->orgs, "%s", c->key);
  }
  x->active[bi * x->cap_orgs + oi] = 1;
}

static mq_code_t get_platform_stats(mq_call_t *call, const Marquee__Analytics__V1__GetPlatformStatsRequest *req,
                                    Marquee__Analytics__V1__PlatformStats *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  range_t r;
  mq_error_collect(err);
  range_check(req->range, 0, "UTC", &r, err);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  if ((rc = range_buckets(&r, a, err)) != MQ_OK) return rc;
  int64_t gen, complete;
  if ((rc = generation(app, &gen, &complete, err)) != MQ_OK) return rc;
  platform_scan_t x = {.r = &r};
  if (gen) rc = mq_an_scan(app->store, gen, 'p', "all", NULL, r.from_ms, r.to_ms, platform_cell, &x, err);
  if (gen && rc == MQ_OK) rc = mq_an_scan(app->store, gen, 'o', NULL, NULL, r.from_ms, r.to_ms, active_cell, &x, err);
  if (rc == MQ_OK) {
    counters_t totals = {0};
    for (size_t i = 0; i < r.n_buckets; i++) counters_merge(&totals, &r.bucket[i]);
    int64_t *active = mq_arena_alloc(a, (r.n_buckets ? r.n_buckets : 1) * sizeof *active);
    for (size_t i = 0; i < r.n_buckets; i++) {
      active[i] = 0;
      for (size_t k = 0; k < x.n_orgs; k++) active[i] += x.active[i * x.cap_orgs + k];
    }
    resp->time_zone = (char *)r.tz;
    resp->granularity = granularity_of(&r);
    resp->start_time = mq_pb_timestamp(a, r.from_ms);
    resp->end_time = mq_pb_timestamp(a, r.to_ms);
    resp->totals = counters_pb_of(a, &totals);
    resp->active_organizers = (int64_t)x.n_orgs;
    resp->series = series_pb(a, &r, active);
    resp->n_series = r.n_buckets;
    if (complete) resp->complete_until = mq_pb_timestamp(a, complete);
  }
  free(x.orgs);
  free(x.active);
  return rc;
}

/* ---- page views: straight to Kafka, lossy by design ---- */

#define VIEWS_TOPIC "marquee.views"

static rd_kafka_t *g_views;
static atomic_uint_fast64_t g_views_sent, g_views_dropped, g_views_failed;

static void views_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk, (void)opaque;
  if (m->err)
    atomic_fetch_add(&g_views_failed, 1);
  else
    atomic_fetch_add(&g_views_sent, 1);
}

/* Views counted since the last tick, per event: an open-addressing table
 * (ids of 36 characters), emptied by the tick. A full table drops views. */
#define VIEW_SLOTS 8192
typedef struct view_slot {
  char id[37];
  uint32_t n;
} view_slot_t;
static view_slot_t g_view_slots[VIEW_SLOTS];
static size_t g_view_used;
static pthread_mutex_t g_view_mu = PTHREAD_MUTEX_INITIALIZER;

/* app->event_viewed: a count in memory, under a short lock; nothing else on
 * the read path. */
static void event_viewed(mq_app_t *app, const char *event_id) {
  (void)app;
  if (!event_id || strlen(event_id) != 36) return;
  uint64_t h = 1469598103934665603ULL;
  for (const char *c = event_id; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
  pthread_mutex_lock(&g_view_mu);
  size_t i = (size_t)h & (VIEW_SLOTS - 1), probes = 0;
  while (g_view_slots[i].n && strcmp(g_view_slots[i].id, event_id) && probes++ < 64) i = (i + 1) & (VIEW_SLOTS - 1);
  if (g_view_slots[i].n && strcmp(g_view_slots[i].id, event_id)) {
    atomic_fetch_add(&g_views_dropped, 1); /* crowded: this second has too many viewed events */
  } else {
    if (!g_view_slots[i].n) {
      memcpy(g_view_slots[i].id, event_id, 37);
      g_view_used++;
    }
    g_view_slots[i].n++;
  }
  pthread_mutex_unlock(&g_view_mu);
}

/* The tick (about once a second): one EventViewed per viewed event, copied
 * into the producer's queue; never waits (a full queue drops them). */
static void analytics_tick(mq_app_t *app) {
  (void)app;
  rd_kafka_t *rk = g_views;
  if (!rk) return;
  rd_kafka_poll(rk, 0); /* delivery reports */
  pthread_mutex_lock(&g_view_mu);
  size_t n = g_view_used;
  view_slot_t *out = n ? mq_xmalloc(n * sizeof *out) : NULL;
  size_t k = 0;
  for (size_t i = 0; n && i < VIEW_SLOTS; i++)
    if (g_view_slots[i].n) {
      out[k++] = g_view_slots[i];
      g_view_slots[i].n = 0;
    }
  g_view_used = 0;
  pthread_mutex_unlock(&g_view_mu);
  int64_t now = mq_now_unix_ms();
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = now / 1000;
  ts.nanos = (int32_t)(now % 1000) * 1000000;
  for (size_t i = 0; i < k; i++) {
    char id[37];
    mq_uuid_v4(id);
    Marquee__Events__V1__EventViewed p = MARQUEE__EVENTS__V1__EVENT_VIEWED__INIT;
    p.event_id = out[i].id;
    p.count = out[i].n;
    Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.type = (char *)"analytics.EventViewed";
    env.aggregate_id = out[i].id;
    env.occurred_at = &ts;
    env.actor = (char *)"";
    env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_EVENT_VIEWED;
    env.event_viewed = &p;
    uint8_t buf[256];
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    if (len > sizeof buf) continue;
    marquee__events__v1__envelope__pack(&env, buf);
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(VIEWS_TOPIC), RD_KAFKA_V_KEY(out[i].id, 36), RD_KAFKA_V_VALUE(buf, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) atomic_fetch_add(&g_views_dropped, out[i].n);
  }
  free(out);
}

static double gauge_views_sent(void *arg) {
  (void)arg;
  return (double)atomic_load(&g_views_sent);
}
static double gauge_views_dropped(void *arg) {
  (void)arg;
  return (double)(atomic_load(&g_views_dropped) + atomic_load(&g_views_failed));
}

static mq_code_t analytics_open(mq_app_t *app, mq_error_t *err) {
  (void)err;
  if (app->cfg->kafka_brokers && app->cfg->kafka_brokers[0]) app->live = mq_live_new(app);
  return MQ_OK;
}

static void analytics_on_event(mq_app_t *app, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  if (app->live && !strcmp(topic, "marquee.bookings")) mq_live_on_event(app->live, ev);
}

static mq_code_t analytics_start(mq_app_t *app, mq_error_t *err) {
  if (!app->cfg->kafka_brokers || !app->cfg->kafka_brokers[0]) return MQ_OK;
  if (app->live) {
    mq_code_t rc = mq_live_start(app->live, err);
    if (rc != MQ_OK) return rc;
  }
  if (!app->cfg->page_views) return MQ_OK;
  char client_id[160], errstr[256];
  snprintf(client_id, sizeof client_id, "marquee-views-%s", app->instance_id);
  rd_kafka_conf_t *conf = mq_kafka_conf(app->cfg, client_id);
  /* throughput over durability: one broker's acknowledgement, batches of up to 50 ms */
  mq_kafka_set(conf, "acks", "1");
  mq_kafka_set(conf, "enable.idempotence", "false");
  mq_kafka_set(conf, "linger.ms", "50");
  mq_kafka_set(conf, "queue.buffering.max.messages", "200000");
  mq_kafka_set(conf, "message.timeout.ms", "10000");
  rd_kafka_conf_set_dr_msg_cb(conf, views_dr);
  g_views = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!g_views) {
    mq_log(MQ_LOG_WARN, "analytics.views", "no page views: %s", errstr);
    return MQ_OK;
  }
  mq_metrics_gauge("marquee_page_views_sent_total", "Page views Kafka acknowledged", gauge_views_sent, &g_views);
  mq_metrics_gauge("marquee_page_views_dropped_total",
                   "Page views dropped (producer queue full, or Kafka did not take them in time)", gauge_views_dropped,
                   &g_views);
  app->event_viewed = event_viewed;
  return MQ_OK;
}

static void analytics_stop(mq_app_t *app) {
  app->event_viewed = NULL;
}

static void analytics_close(mq_app_t *app) {
  (void)app;
  if (!g_views) return;
  mq_metrics_gauge_remove(&g_views);
  rd_kafka_flush(g_views, 2000); /* what is queued, briefly; the rest is lost, as views may be */
  rd_kafka_destroy(g_views);
  g_views = NULL;
}

/* ---- the module ---- */

static const marquee__analytics__v1__analytics_service_handlers_t handlers = {
    .get_event_stats = {get_event_stats, MQ_POLICY_RESOURCE, 0},
    .get_organization_stats = {get_org_stats, MQ_POLICY_RESOURCE, 0},
    .get_platform_stats = {get_platform_stats, MQ_POLICY_ADMIN, 0},
    .export_event_stats = {export_event_stats, MQ_POLICY_RESOURCE, 0},
    .watch_event_sales = {mq_live_watch, MQ_POLICY_RESOURCE, 0},
};

static int analytics_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__analytics__v1__analytics_service__mq_register(srv, &handlers);
}

static const mq_service_row_t services[] = {
    {"marquee.analytics.v1.AnalyticsService", analytics_service_register, NULL},
};

const mq_module_t mq_analytics_module = {
    .name = "analytics",
    .services = services,
    .n_services = MQ_COUNT(services),
    .open = analytics_open,
    .start = analytics_start,
    .tick = analytics_tick,
    .on_event = analytics_on_event,
    .stop = analytics_stop,
    .close = analytics_close,
};
