/*
 * search.c — marquee.search.v1.SearchService: SearchEvents and Suggest over
 * this host's search index (store/search/search_index.h), and the module
 * that opens it, watches its freshness and serves the method table.
 *
 * Requests are checked whole before the index is touched: every bad field
 * is listed (mq_error_collect), and nothing a user typed reaches the index
 * as syntax. Calendar windows ("this weekend") are computed in the
 * caller's time zone with the tz database (lib/mq_recur.h), so a weekend
 * that crosses a DST change is still Friday 17:00 to Monday 00:00 local.
 *
 * Answers are reused for MARQUEE_SEARCH_CACHE_MS (500 ms) per request and
 * minute (lib/mq_cache.h): a hit is answered on the completion-queue
 * thread without touching the index; the index lags the catalog by more
 * than that anyway, and each response says how fresh it is.
 *
 * Freshness: the probe thread reads the index's fresh-as-of instant each
 * tick; /metrics shows marquee_search_index_staleness_seconds and health
 * reports "marquee.search" NOT_SERVING past MARQUEE_SEARCH_MAX_STALENESS_S
 * (or while the index does not exist). Searches still answer from a stale
 * index: an old answer beats none, and the response says how old it is.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mq_metrics.h"
#include "core/mq_time.h"
#include "handlers/mq_module.h"
#include "lib/mq_page.h"
#include "lib/mq_recur.h"
#include "lib/mq_validate.h"
#include "marquee/search/v1/search.mq-server.h"
#include "store/mq_bson.h"
#include "store/search/search_index.h"

typedef Marquee__Search__V1__SearchEventsRequest search_req_t;
typedef Marquee__Search__V1__SearchEventsResponse search_resp_t;

static _Atomic int64_t g_fresh_ms;
static _Atomic int g_have_index;

/* ---- calendar windows (lib/mq_recur.h) --------------------------------------------------- */

static mq_window_t window_of(int range) {
  switch (range) {
    case MARQUEE__SEARCH__V1__DATE_RANGE__DATE_RANGE_TODAY:
      return MQ_WINDOW_TODAY;
    case MARQUEE__SEARCH__V1__DATE_RANGE__DATE_RANGE_TOMORROW:
      return MQ_WINDOW_TOMORROW;
    case MARQUEE__SEARCH__V1__DATE_RANGE__DATE_RANGE_THIS_WEEKEND:
      return MQ_WINDOW_WEEKEND;
    case MARQUEE__SEARCH__V1__DATE_RANGE__DATE_RANGE_THIS_WEEK:
      return MQ_WINDOW_THIS_WEEK;
    case MARQUEE__SEARCH__V1__DATE_RANGE__DATE_RANGE_NEXT_WEEK:
      return MQ_WINDOW_NEXT_WEEK;
    default:
      return MQ_WINDOW_THIS_MONTH;
  }
}

/* The month facet's bounds: 13 local months from the one containing `from`, then their end. */
static mq_code_t month_bounds(mq_search_query_t *q, int64_t from, const char *tz, mq_arena_t *a, mq_error_t *err) {
  char(*labels)[8] = mq_arena_alloc(a, 14 * sizeof *labels);
  mq_code_t rc = mq_local_months(from, tz, 14, q->month_bounds, labels, err);
  for (int i = 0; rc == MQ_OK && i < 13; i++) q->month_labels[i] = labels[i];
  return rc;
}

/* ---- the page cache ----------------------------------------------------------------- */

/* Answers by request: the packed request (and the minute "now" was resolved
 * to) is the key, the packed response the value. Staleness is bounded by
 * MARQUEE_SEARCH_CACHE_MS, on top of the index's own lag. */
static mq_cache_t *g_pages;

static char *cache_key(mq_arena_t *a, char kind, int64_t minute, size_t len, const ProtobufCMessage *req) {
  if (!g_pages || len > 1200) return NULL;
  uint8_t *buf = mq_arena_alloc(a, len ? len : 1);
  protobuf_c_message_pack(req, buf);
  char *key = mq_arena_alloc(a, 2 * len + 32);
  int o = snprintf(key, 32, "%c:%lld:", kind, (long long)(minute / 60000));
  for (size_t i = 0; i < len; i++) snprintf(key + o + 2 * i, 3, "%02x", buf[i]);
  return key;
}

static bool reply_cached(mq_call_t *call, const char *key) {
  void *buf;
  size_t len;
  if (!key || !mq_cache_get(g_pages, key, mq_call_arena(call), &buf, &len)) return false;
  mq_call_reply_packed(call, buf, len);
  return true;
}

static void cache_put(mq_arena_t *a, const char *key, const ProtobufCMessage *resp, uint64_t ticket) {
  size_t n = protobuf_c_message_get_packed_size(resp);
  uint8_t *packed = mq_arena_alloc(a, n ? n : 1);
  protobuf_c_message_pack(resp, packed);
  mq_cache_put(g_pages, key, packed, n, ticket);
}

/* ---- SearchEvents ------------------------------------------------------------------- */

static mq_code_t check(const search_req_t *req, mq_arena_t *a, mq_search_query_t *q, uint32_t *page, const char **tz,
                       int64_t *now, mq_error_t *err) {
  mq_error_collect(err);
  const char *text = req->query ? req->query : "";
  mq_check_text(err, "query", text, 0, MQ_SEARCH_QUERY_MAX, MQ_TEXT_SINGLE_LINE);
  mq_check_page_size(err, "page_size", req->page_size, 20, 100, page);
  mq_check_enum(err, "sort", (int)req->sort, &marquee__search__v1__search_sort__descriptor, true);
  mq_check_enum(err, "date_range", (int)req->date_range, &marquee__search__v1__date_range__descriptor, true);
  mq_check_enum(err, "attendance_mode", (int)req->attendance_mode, &marquee__catalog__v1__attendance_mode__descriptor,
                true);
  if (req->category_id && *req->category_id) mq_check_uuid(err, "category_id", req->category_id);
  if (req->organization_id && *req->organization_id) mq_check_uuid(err, "organization_id", req->organization_id);
  if (req->country && *req->country) mq_check_country(err, "country", req->country);
  if (req->currency && *req->currency) mq_check_currency(err, "currency", req->currency);
  if (req->language && *req->language) mq_check_language(err, "language", req->language);
  if (req->city && *req->city) mq_check_text(err, "city", req->city, 1, 100, MQ_TEXT_SINGLE_LINE);
  *tz = req->time_zone && *req->time_zone ? req->time_zone : "UTC";
  if (req->time_zone && *req->time_zone) mq_check_timezone(err, "time_zone", req->time_zone);
  if (req->min_price_minor < 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "min_price_minor", "must not be negative");
  if (req->max_price_minor < 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "max_price_minor", "must not be negative");
  if ((req->min_price_minor > 0 || req->max_price_minor > 0) && !(req->currency && *req->currency))
    mq_error_set(err, MQ_INVALID_ARGUMENT, "currency", "is required with a price range (prices are per currency)");
  if (req->max_price_minor > 0 && req->max_price_minor < req->min_price_minor)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "max_price_minor", "must be at least min_price_minor");
  double within = req->within_km;
  if (req->near) {
    mq_check_lat_lng(err, "near.latitude", "near.longitude", req->near->latitude, req->near->longitude);
    if (within == 0) within = 50;
    if (!isfinite(within) || within <= 0 || within > MQ_SEARCH_RADIUS_MAX_KM)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "within_km", "must be more than 0 and at most %.0f km",
                   MQ_SEARCH_RADIUS_MAX_KM);
  } else if (within != 0) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, "within_km", "requires near (the point the radius is around)");
  }
  if (req->sort == MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_DISTANCE && !req->near)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "sort", "DISTANCE requires near (the point to measure from)");
  *now = mq_now_unix_ms() / 60000 * 60000; /* "now" per minute: a page is the same for a minute, so it can be reused */
  int64_t after = req->starts_after ? mq_pb_timestamp_ms(req->starts_after) : 0;
  int64_t before = req->starts_before ? mq_pb_timestamp_ms(req->starts_before) : 0;
  if (before && after && before <= after)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "starts_before", "must be after starts_after");
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;

  memset(q, 0, sizeof *q);
  q->now_ms = *now;
  q->text = text;
  q->category_id = req->category_id;
  q->city = req->city;
  q->country = req->country;
  q->language = req->language;
  q->currency = req->currency;
  q->organization_id = req->organization_id;
  q->starts_after_ms = after;
  q->starts_before_ms = before;
  if (req->date_range) {
    int64_t from, to;
    if ((rc = mq_local_window(window_of((int)req->date_range), *now, *tz, &from, &to, err)) != MQ_OK) return rc;
    if (from > q->starts_after_ms) q->starts_after_ms = from;
    if (!q->starts_before_ms || to < q->starts_before_ms) q->starts_before_ms = to;
  }
  q->min_price_minor = req->min_price_minor;
  q->max_price_minor = req->max_price_minor;
  q->free_only = req->free_only;
  q->attendance = (int)req->attendance_mode;
  if (req->near) {
    q->has_near = true;
    q->latitude = req->near->latitude;
    q->longitude = req->near->longitude;
    q->within_km = within;
  }
  bool has_text = false;
  for (const char *p = text; *p; p++) has_text |= *p != ' ';
  switch (req->sort) {
    case MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_RELEVANCE:
      q->sort = MQ_SEARCH_SORT_RELEVANCE;
      break;
    case MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_DATE:
      q->sort = MQ_SEARCH_SORT_DATE;
      break;
    case MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_DISTANCE:
      q->sort = MQ_SEARCH_SORT_DISTANCE;
      break;
    case MARQUEE__SEARCH__V1__SEARCH_SORT__SEARCH_SORT_POPULARITY:
      q->sort = MQ_SEARCH_SORT_POPULARITY;
      break;
    default:
      q->sort = has_text ? MQ_SEARCH_SORT_RELEVANCE : MQ_SEARCH_SORT_DATE;
  }
  q->limit = *page;
  q->facets = req->include_facets;
  if (q->facets) return month_bounds(q, q->starts_after_ms > *now ? q->starts_after_ms : *now, *tz, a, err);
  return MQ_OK;
}

static Marquee__Common__V1__Money *money(mq_arena_t *a, int64_t minor, const char *currency) {
  Marquee__Common__V1__Money *m = mq_arena_alloc(a, sizeof *m);
  marquee__common__v1__money__init(m);
  m->amount_minor = minor;
  m->currency = (char *)currency;
  return m;
}

static Marquee__Search__V1__EventHit *hit_view(mq_arena_t *a, const mq_search_hit_t *h) {
  Marquee__Search__V1__EventHit *v = mq_arena_alloc(a, sizeof *v);
  marquee__search__v1__event_hit__init(v);
  v->event_id = (char *)h->event_id;
  v->title = (char *)h->title;
  v->title_html = (char *)h->title_html;
  v->snippet_html = (char *)h->snippet_html;
  v->organization_id = (char *)h->organization_id;
  v->organization_name = (char *)h->organization_name;
  v->category_id = (char *)h->category_id;
  v->category_path = (char *)h->category_path;
  v->venue_name = (char *)h->venue_name;
  v->city = (char *)h->city;
  v->country = (char *)h->country;
  v->starts_at = mq_pb_timestamp(a, h->starts_ms);
  v->ends_at = mq_pb_timestamp(a, h->ends_ms);
  v->time_zone = (char *)h->time_zone;
  v->attendance_mode = h->online ? MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_ONLINE
                                 : MARQUEE__CATALOG__V1__ATTENDANCE_MODE__ATTENDANCE_MODE_IN_PERSON;
  v->language = (char *)h->language;
  v->min_price = money(a, h->min_price_minor, h->currency);
  v->max_price = money(a, h->max_price_minor, h->currency);
  v->free = h->free;
  v->distance_km = round(h->distance_km * 1000) / 1000;
  v->tickets_sold = h->sold;
  v->score = h->score;
  v->series_id = (char *)h->series_id;
  v->cover_image_id = (char *)h->cover_image_id;
  /* tags are stored space-separated ([a-z0-9-] only, so no escaping) */
  size_t n = 0;
  for (const char *p = h->tags; p && *p; p++) n += *p == ' ';
  v->tags = mq_arena_alloc(a, (n + 1) * sizeof *v->tags);
  char *copy = mq_arena_strdup(a, h->tags ? h->tags : ""), *save = NULL;
  for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) v->tags[v->n_tags++] = t;
  return v;
}

static mq_code_t search_events(mq_call_t *call, const search_req_t *req, search_resp_t *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_search_query_t q;
  uint32_t page;
  const char *tz;
  int64_t now;
  mq_code_t rc = check(req, a, &q, &page, &tz, &now, err);
  if (rc != MQ_OK) return rc;
  const char *cursor = NULL;
  if ((rc = mq_page_token_read(a, &req->base, "page_token", req->page_token, &cursor, err)) != MQ_OK) return rc;
  q.cursor = cursor;
  if (!app->search)
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "search is not configured on this host (MARQUEE_SEARCH_INDEX)");
  /* the same request in the same minute: the answer of the last MARQUEE_SEARCH_CACHE_MS */
  char *key = cache_key(a, 's', now, marquee__search__v1__search_events_request__get_packed_size(req), &req->base);
  if (reply_cached(call, key)) return MQ_OK;
  if (mq_call_inline(call)) return MQ_PENDING; /* the index is read on a worker */
  uint64_t ticket = key ? mq_cache_ticket(g_pages, key) : 0;
  mq_search_result_t r;
  if ((rc = mq_search_run(app->search, &q, a, &r, err)) != MQ_OK) return rc;
  resp->hits = mq_arena_alloc(a, (r.n ? r.n : 1) * sizeof *resp->hits);
  for (size_t i = 0; i < r.n; i++) resp->hits[resp->n_hits++] = hit_view(a, &r.hits[i]);
  resp->next_page_token = r.next_cursor ? mq_page_token_make(a, &req->base, r.next_cursor) : (char *)"";
  resp->total_size = r.total;
  resp->corrected_query = (char *)(r.corrected ? r.corrected : "");
  if (r.fresh_ms) resp->index_fresh_as_of = mq_pb_timestamp(a, r.fresh_ms);
  resp->facets = mq_arena_alloc(a, (r.n_facets ? r.n_facets : 1) * sizeof *resp->facets);
  for (size_t f = 0; f < r.n_facets; f++) {
    Marquee__Search__V1__Facet *fv = mq_arena_alloc(a, sizeof *fv);
    marquee__search__v1__facet__init(fv);
    fv->name = (char *)r.facets[f].name;
    fv->buckets = mq_arena_alloc(a, (r.facets[f].n ? r.facets[f].n : 1) * sizeof *fv->buckets);
    for (size_t b = 0; b < r.facets[f].n; b++) {
      Marquee__Search__V1__FacetBucket *bv = mq_arena_alloc(a, sizeof *bv);
      marquee__search__v1__facet_bucket__init(bv);
      bv->value = (char *)r.facets[f].buckets[b].value;
      bv->label = (char *)r.facets[f].buckets[b].label;
      bv->count = r.facets[f].buckets[b].count;
      fv->buckets[fv->n_buckets++] = bv;
    }
    resp->facets[resp->n_facets++] = fv;
  }
  if (key) cache_put(a, key, &resp->base, ticket);
  return MQ_OK;
}

/* ---- Suggest ------------------------------------------------------------------------- */

static mq_code_t suggest(mq_call_t *call, const Marquee__Search__V1__SuggestRequest *req,
                         Marquee__Search__V1__SuggestResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  uint32_t limit;
  mq_error_collect(err);
  mq_check_text(err, "prefix", req->prefix, 1, 100, MQ_TEXT_SINGLE_LINE);
  mq_check_page_size(err, "limit", req->limit, 8, 20, &limit);
  mq_code_t rc = mq_error_collected(err);
  if (rc != MQ_OK) return rc;
  if (!app->search)
    return mq_error_set(err, MQ_UNAVAILABLE, NULL, "search is not configured on this host (MARQUEE_SEARCH_INDEX)");
  int64_t now = mq_now_unix_ms() / 60000 * 60000;
  char *key = cache_key(a, 'g', now, marquee__search__v1__suggest_request__get_packed_size(req), &req->base);
  if (reply_cached(call, key)) return MQ_OK;
  if (mq_call_inline(call)) return MQ_PENDING;
  uint64_t ticket = key ? mq_cache_ticket(g_pages, key) : 0;
  mq_suggestion_t *s;
  size_t n;
  if ((rc = mq_search_suggest(app->search, req->prefix, limit, now, a, &s, &n, err)) != MQ_OK) return rc;
  resp->suggestions = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->suggestions);
  for (size_t i = 0; i < n; i++) {
    Marquee__Search__V1__Suggestion *v = mq_arena_alloc(a, sizeof *v);
    marquee__search__v1__suggestion__init(v);
    v->text = (char *)s[i].text;
    v->kind = s[i].kind == MQ_SUGGEST_CITY    ? MARQUEE__SEARCH__V1__SUGGESTION_KIND__SUGGESTION_KIND_CITY
              : s[i].kind == MQ_SUGGEST_VENUE ? MARQUEE__SEARCH__V1__SUGGESTION_KIND__SUGGESTION_KIND_VENUE
                                              : MARQUEE__SEARCH__V1__SUGGESTION_KIND__SUGGESTION_KIND_EVENT;
    v->events = s[i].events;
    v->event_id = (char *)(s[i].event_id ? s[i].event_id : "");
    resp->suggestions[resp->n_suggestions++] = v;
  }
  if (key) cache_put(a, key, &resp->base, ticket);
  return MQ_OK;
}

/* ---- the module ----------------------------------------------------------------------- */

static const marquee__search__v1__search_service_handlers_t handlers = {
    .search_events = {search_events, MQ_POLICY_PUBLIC, MQ_RUN_TRY_INLINE},
    .suggest = {suggest, MQ_POLICY_PUBLIC, MQ_RUN_TRY_INLINE},
};

static int search_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__search__v1__search_service__mq_register(srv, &handlers);
}

static double gauge_staleness(void *arg) {
  (void)arg;
  int64_t f = atomic_load(&g_fresh_ms);
  return f ? (double)(mq_now_unix_ms() - f) / 1000.0 : -1;
}
static double gauge_events(void *arg) {
  (void)arg;
  return (double)atomic_load(&g_have_index);
}

static mq_code_t search_open(mq_app_t *app, mq_error_t *err) {
  if (!app->cfg->search_index[0]) return MQ_OK;
  mq_code_t rc = mq_search_open_reader(app->cfg->search_index, (unsigned)app->cfg->search_readers, &app->search, err);
  if (rc != MQ_OK) return rc;
  mq_health_set_search(app->health, 0);
  if (app->cfg->search_cache_ms > 0) {
    g_pages = mq_cache_new(20000, app->cfg->search_cache_ms);
    mq_cache_export_metrics(g_pages, "search_pages");
  }
  mq_metrics_gauge("marquee_search_index_staleness_seconds",
                   "Seconds since this host's search index was last known complete (-1: never)", gauge_staleness, app);
  mq_metrics_gauge("marquee_search_index_events", "Events in this host's search index (-1: no index yet)", gauge_events,
                   app);
  return MQ_OK;
}

/* Every probe: how fresh the index is, for /metrics and health. */
static void search_tick(mq_app_t *app) {
  if (!app->search) return;
  int64_t count = -1;
  mq_error_t err;
  if (mq_search_count(app->search, &count, &err) != MQ_OK) count = -1;
  atomic_store(&g_have_index, (int)(count < 0 ? -1 : count > 2000000000 ? 2000000000 : count));
  int64_t fresh = count >= 0 ? mq_search_fresh_ms(app->search) : 0;
  atomic_store(&g_fresh_ms, fresh);
  bool ok = fresh && mq_now_unix_ms() - fresh <= app->cfg->search_max_staleness_s * 1000;
  mq_health_set_search(app->health, ok ? 1 : 0);
}

static void search_close(mq_app_t *app) {
  if (!app->search) return;
  mq_metrics_gauge_remove(app);
  mq_cache_free(g_pages);
  g_pages = NULL;
  mq_search_close(app->search);
  app->search = NULL;
}

static const mq_service_row_t services[] = {
    {"marquee.search.v1.SearchService", search_service_register, NULL},
};

const mq_module_t mq_search_module = {
    .name = "search",
    .services = services,
    .n_services = MQ_COUNT(services),
    .open = search_open,
    .tick = search_tick,
    .close = search_close,
};
