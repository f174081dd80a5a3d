/*
 * analytics_tool.c — mq-bench-analytics, the analytics benchmark's helper
 * (bench/analytics.sh). Subcommands, each printing one JSON line:
 *
 *   produce N EVENTS       N synthetic bookings-topic events (holds, bookings
 *                          of 1-4 tickets in CAD/EUR/USD, releases, expiries,
 *                          cancellations, check-ins) for EVENTS events of 10
 *                          organizations, produced to marquee.bookings as fast
 *                          as librdkafka takes them, keyed like the server
 *                          keys them; prints what the aggregates must add up
 *                          to (bookings, tickets, holds).
 *   read T0_MS N           the baseline: a bare consumer reading the N
 *                          messages produced since T0_MS from marquee.bookings
 *                          and decoding each envelope, nothing else.
 *   verify                 the current generation's platform totals
 *                          (MARQUEE_MONGO_URI / MARQUEE_MONGO_DB): bookings,
 *                          tickets, holds are summed from the organization
 *                          documents, so it also sees a half-written batch.
 *   seed-year TARGET KEYS  an organization and an event made through the API,
 *                          then a year of hourly history for that event
 *                          written into the aggregates (store/analytics, the
 *                          consumer's own write path); prints the event id and
 *                          writes GetEventStats requests (a year by day, 92
 *                          days by hour) to files for mq-loadgen, and the
 *                          organizer's token to a file.
 *   lag TARGET KEYS N      an on-sale watched through WatchEventSales; N free
 *                          bookings one after another, each timed from
 *                          ConfirmHold's answer to the live message that
 *                          counts it: p50/p99/max ms.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/mq_client.h"
#include "core/mq_ids.h"
#include "core/mq_principal.h"
#include "lib/mq_jwt.h"
#include "marquee/analytics/v1/analytics.mq-client.h"
#include "marquee/bookings/v1/bookings.mq-client.h"
#include "marquee/catalog/v1/events.mq-client.h"
#include "marquee/events/v1/envelope.pb-c.h"
#include "marquee/identity/v1/identity.mq-client.h"
#include "store/analytics/analytics_store.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static void fake_uuid(uint32_t a, uint32_t b, char out[37]) {
  snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012x", a, b & 0xffff, (b >> 16) & 0xfff, a & 0xfff, b);
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "mq-bench-analytics: %s: %s\n", what, why);
  exit(1);
}

static const char *brokers(void) {
  const char *b = getenv("MARQUEE_KAFKA_BROKERS");
  return b && *b ? b : "127.0.0.1:9092";
}

/* ---- produce ---- */

static int cmd_produce(long n, long n_events) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "queue.buffering.max.messages", "500000", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    die("config", errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) die("producer", errstr);
  static const char *const curs[] = {"CAD", "EUR", "USD"};
  int64_t bookings = 0, tickets = 0, holds = 0, t0 = now_ms(), base = now_ms();
  uint32_t salt = (uint32_t)getpid() ^ (uint32_t)time(NULL);
  for (long i = 0; i < n; i++) {
    uint32_t e = rnd((uint32_t)n_events), kind = rnd(100);
    char event_id[37], org_id[37], booking_id[37], tt[37], id[37];
    fake_uuid(salt, e, event_id);
    fake_uuid(salt ^ 0x55555555u, e % 10, org_id);
    fake_uuid(salt ^ 0x33333333u, (uint32_t)i, booking_id);
    fake_uuid(salt ^ 0x77777777u, e * 4 + rnd(3), tt);
    mq_uuid_v4(id);
    int64_t at = base - rnd(3600) * 1000;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = at / 1000;
    Marquee__Events__V1__Envelope env = MARQUEE__EVENTS__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.aggregate_id = booking_id;
    env.occurred_at = &ts;
    env.actor = (char *)"bench";
    Marquee__Events__V1__BookedUnits u = MARQUEE__EVENTS__V1__BOOKED_UNITS__INIT, *units[1] = {&u};
    u.ticket_type_id = tt;
    u.quantity = 1 + rnd(4);
    u.amount_minor = 2500 * (int64_t)u.quantity;
    Marquee__Events__V1__HoldCreated hc = MARQUEE__EVENTS__V1__HOLD_CREATED__INIT;
    Marquee__Events__V1__BookingConfirmed bc = MARQUEE__EVENTS__V1__BOOKING_CONFIRMED__INIT;
    Marquee__Events__V1__BookingCancelled bx = MARQUEE__EVENTS__V1__BOOKING_CANCELLED__INIT;
    Marquee__Events__V1__HoldReleased hr = MARQUEE__EVENTS__V1__HOLD_RELEASED__INIT;
    Marquee__Events__V1__TicketCheckedIn ci = MARQUEE__EVENTS__V1__TICKET_CHECKED_IN__INIT;
    if (kind < 35) {
      hc.hold_id = booking_id, hc.event_id = event_id, hc.organization_id = org_id, hc.units = units, hc.n_units = 1;
      hc.currency = (char *)curs[e % 3], hc.total_minor = u.amount_minor;
      env.type = (char *)"bookings.HoldCreated";
      env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED;
      env.hold_created = &hc;
      holds++;
    } else if (kind < 70) {
      bc.booking_id = booking_id, bc.event_id = event_id, bc.organization_id = org_id, bc.units = units, bc.n_units = 1;
      bc.currency = (char *)curs[e % 3], bc.total_minor = u.amount_minor * 113 / 100;
      bc.tax_minor = bc.total_minor - u.amount_minor, bc.fee_minor = 0;
      env.type = (char *)"bookings.BookingConfirmed";
      env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CONFIRMED;
      env.booking_confirmed = &bc;
      bookings++;
      tickets += u.quantity;
    } else if (kind < 80) {
      hr.hold_id = booking_id, hr.event_id = event_id, hr.units = units, hr.n_units = 1, hr.reason = (char *)"released";
      env.type = (char *)"bookings.HoldReleased";
      env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED;
      env.hold_released = &hr;
    } else if (kind < 85) {
      bx.booking_id = booking_id, bx.event_id = event_id, bx.organization_id = org_id, bx.units = units, bx.n_units = 1;
      bx.currency = (char *)curs[e % 3];
      env.type = (char *)"bookings.BookingCancelled";
      env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED;
      env.booking_cancelled = &bx;
    } else {
      ci.ticket_id = id, ci.booking_id = booking_id, ci.event_id = event_id, ci.ticket_type_id = tt;
      env.type = (char *)"bookings.TicketCheckedIn";
      env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_CHECKED_IN;
      env.ticket_checked_in = &ci;
    }
    uint8_t buf[1024];
    size_t len = marquee__events__v1__envelope__get_packed_size(&env);
    marquee__events__v1__envelope__pack(&env, buf);
    for (;;) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("marquee.bookings"), RD_KAFKA_V_KEY(booking_id, strlen(booking_id)),
                            RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(err));
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush", "messages left unsent");
  double secs = (double)(now_ms() - t0) / 1000.0;
  rd_kafka_destroy(rk);
  printf("{\"n\":%ld,\"events\":%ld,\"seconds\":%.3f,\"per_s\":%.0f,\"bookings\":%" PRId64 ",\"tickets\":%" PRId64
         ",\"holds\":%" PRId64 "}\n",
         n, n_events, secs, (double)n / secs, bookings, tickets, holds);
  return 0;
}

/* ---- read: the bare consumer ---- */

static int cmd_read(int64_t t0, long n) {
  char errstr[256], group[96];
  snprintf(group, sizeof group, "bench-bare-read-%d-%ld", (int)getpid(), (long)time(NULL));
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    die("config", errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) die("consumer", errstr);
  const rd_kafka_metadata_t *md = NULL;
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, "marquee.bookings", NULL);
  if (rd_kafka_metadata(rk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1)
    die("metadata", "marquee.bookings");
  int parts = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, "marquee.bookings", p)->offset = t0;
  if (rd_kafka_offsets_for_times(rk, l, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("offsets", "for times");
  if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign", "partitions");
  rd_kafka_topic_partition_list_destroy(l);
  long got = 0;
  int64_t start = 0, end = 0;
  while (got < n) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
    if (!m) {
      if (start && now_ms() - end > 30000) die("read", "fewer messages than produced");
      continue;
    }
    if (!m->err) {
      if (!start) start = now_ms();
      Marquee__Events__V1__Envelope *env = marquee__events__v1__envelope__unpack(NULL, m->len, m->payload);
      if (env) {
        got++;
        marquee__events__v1__envelope__free_unpacked(env, NULL);
      }
      end = now_ms();
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  double secs = (double)(end - start) / 1000.0;
  printf("{\"n\":%ld,\"seconds\":%.3f,\"per_s\":%.0f}\n", got, secs, (double)got / (secs > 0 ? secs : 1e-3));
  return 0;
}

/* ---- verify ---- */

typedef struct {
  int64_t b, t, h;
} sums_t;

static void sum_cell(const mq_an_cell_t *c, void *arg) {
  sums_t *s = arg;
  if (!strcmp(c->name, MQ_AN_BOOKINGS)) s->b += c->value;
  if (!strcmp(c->name, MQ_AN_TICKETS)) s->t += c->value;
}

static void sum_holds(const mq_an_cell_t *c, void *arg) {
  sums_t *s = arg;
  if (!strcmp(c->name, MQ_AN_HOLDS)) s->h += c->value;
}

static mq_store_t *open_store(void) {
  const char *uri = getenv("MARQUEE_MONGO_URI"), *db = getenv("MARQUEE_MONGO_DB");
  mq_store_t *s = NULL;
  mq_error_t err;
  if (!uri || !db || mq_store_open(uri, db, 4, &s, &err) != MQ_OK) die("store", "MARQUEE_MONGO_URI/DB");
  return s;
}

static int cmd_verify(void) {
  mq_store_t *s = open_store();
  int64_t gen = 0;
  mq_error_t err;
  sums_t sums = {0};
  if (mq_an_current(s, &gen, &err) != MQ_OK) die("current", err.message);
  if (gen) {
    int64_t far = now_ms() + 86400000;
    if (mq_an_scan(s, gen, 'p', "all", NULL, 0, far, sum_cell, &sums, &err) != MQ_OK) die("scan", err.message);
    if (mq_an_scan(s, gen, 'e', NULL, NULL, 0, far, sum_holds, &sums, &err) != MQ_OK) die("scan", err.message);
  }
  printf("{\"generation\":%" PRId64 ",\"bookings\":%" PRId64 ",\"tickets\":%" PRId64 ",\"holds\":%" PRId64 "}\n", gen,
         sums.b, sums.t, sums.h);
  mq_store_close(s);
  return 0;
}

/* ---- the API side: an organizer, an event ---- */

typedef struct {
  mq_client_t *c;
  char *token;
  mq_call_opts_t oo;
  char org[40], event[40], tt[40];
} api_t;

static void api_fail(const char *what, const mq_error_t *err) {
  die(what, err->message);
}

static void api_event(api_t *x, const char *target, const char *keys, int64_t price) {
  mq_jwt_keys_t *k = NULL;
  mq_error_t err;
  if (mq_jwt_keys_parse(keys, "marquee", "marquee-api", &k, &err) != MQ_OK) api_fail("keys", &err);
  x->token = mq_jwt_sign(k, "00000000-0000-4000-8000-00000000be17", MQ_ROLE_ORGANIZER, 86400);
  mq_client_opts_t co = {.target = target};
  if (mq_client_create(&co, &x->c, &err) != MQ_OK) api_fail("client", &err);
  x->oo = (mq_call_opts_t){.bearer_token = x->token, .deadline_ms = 60000};
  Marquee__Identity__V1__CreateOrganizationRequest oq = MARQUEE__IDENTITY__V1__CREATE_ORGANIZATION_REQUEST__INIT;
  char slug[64];
  snprintf(slug, sizeof slug, "bench-analytics-%d-%ld", (int)getpid(), (long)time(NULL));
  oq.name = (char *)"Bench Analytics";
  oq.slug = slug;
  Marquee__Identity__V1__Organization *o = NULL;
  if (marquee__identity__v1__organization_service__create_organization__call(x->c, &oq, &o, &x->oo, &err) != MQ_OK)
    api_fail("organization", &err);
  snprintf(x->org, sizeof x->org, "%s", o->organization_id);
  Marquee__Catalog__V1__Event ev = MARQUEE__CATALOG__V1__EVENT__INIT;
  Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT, e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  s.seconds = time(NULL) + 30 * 86400;
  e.seconds = s.seconds + 3600;
  ev.organization_id = x->org;
  ev.title = (char *)"Bench On-sale";
  ev.online_url = (char *)"https://example.com/stream";
  ev.starts_at = &s;
  ev.ends_at = &e;
  ev.currency = (char *)"EUR";
  ev.time_zone = (char *)"Europe/Paris";
  Marquee__Catalog__V1__CreateEventRequest cq = MARQUEE__CATALOG__V1__CREATE_EVENT_REQUEST__INIT;
  cq.event = &ev;
  Marquee__Catalog__V1__Event *made = NULL;
  if (marquee__catalog__v1__event_service__create_event__call(x->c, &cq, &made, &x->oo, &err) != MQ_OK)
    api_fail("create event", &err);
  snprintf(x->event, sizeof x->event, "%s", made->event_id);
  Marquee__Catalog__V1__TicketType tt = MARQUEE__CATALOG__V1__TICKET_TYPE__INIT;
  Marquee__Common__V1__Money m = MARQUEE__COMMON__V1__MONEY__INIT;
  m.currency = (char *)"EUR";
  m.amount_minor = price;
  tt.name = (char *)"General";
  tt.price = &m;
  tt.capacity = 100000;
  Marquee__Catalog__V1__CreateTicketTypeRequest tq = MARQUEE__CATALOG__V1__CREATE_TICKET_TYPE_REQUEST__INIT;
  tq.event_id = x->event;
  tq.ticket_type = &tt;
  Marquee__Catalog__V1__TicketType *tr = NULL;
  if (marquee__catalog__v1__event_service__create_ticket_type__call(x->c, &tq, &tr, &x->oo, &err) != MQ_OK)
    api_fail("ticket type", &err);
  snprintf(x->tt, sizeof x->tt, "%s", tr->ticket_type_id);
  Marquee__Catalog__V1__PublishEventRequest pq = MARQUEE__CATALOG__V1__PUBLISH_EVENT_REQUEST__INIT;
  pq.event_id = x->event;
  Marquee__Catalog__V1__Event *pub = NULL;
  if (marquee__catalog__v1__event_service__publish_event__call(x->c, &pq, &pub, &x->oo, &err) != MQ_OK)
    api_fail("publish", &err);
  marquee__catalog__v1__event__free_unpacked(pub, NULL);
  marquee__catalog__v1__ticket_type__free_unpacked(tr, NULL);
  marquee__catalog__v1__event__free_unpacked(made, NULL);
  marquee__identity__v1__organization__free_unpacked(o, NULL);
  mq_jwt_keys_free(k);
}

static void write_request(const char *path, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n ? n : 1);
  protobuf_c_message_pack(m, b);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n) die("write", path);
  fclose(f);
  free(b);
}

/* ---- seed-year ---- */

static int cmd_seed_year(const char *target, const char *keys, const char *dir) {
  api_t x = {0};
  api_event(&x, target, keys, 2500);
  mq_store_t *s = open_store();
  mq_error_t err;
  int64_t gen = 0;
  if (mq_an_current(s, &gen, &err) != MQ_OK) die("current", err.message);
  if (!gen) {
    gen = 1;
    if (mq_an_ensure_indexes(s, gen, &err) != MQ_OK || mq_an_set_current(s, gen, &err) != MQ_OK)
      die("generation", err.message);
  }
  /* a year of hourly sales: every hour some holds and bookings, in two ticket types and two currencies */
  mq_an_set_t *w = mq_an_set_new(gen);
  int64_t end = now_ms() / 3600000 * 3600000, start = end - 365LL * 86400000, offset = 0, cells = 0;
  char tt2[40];
  snprintf(tt2, sizeof tt2, "%s", x.tt);
  tt2[0] = tt2[0] == 'a' ? 'b' : 'a';
  for (int64_t at = start; at < end; at += 3600000) {
    const char *src = "bench/0";
    offset++;
    struct {
      const char *name;
      int64_t v;
    } add[] = {{MQ_AN_HOLDS, 3 + rnd(5)},
               {MQ_AN_BOOKINGS, 2 + rnd(3)},
               {MQ_AN_TICKETS, 4 + rnd(6)},
               {"t:", 2},
               {"t2", 2},
               {"g:EUR", 10000 + rnd(5000)},
               {"x:EUR", 1900},
               {MQ_AN_VIEWS, 40 + rnd(40)},
               {MQ_AN_CANCELLATIONS, rnd(2)},
               {"rf:EUR", rnd(2) * 2500},
               {MQ_AN_CHECKINS, rnd(3)},
               {"s:", 5000}};
    for (size_t i = 0; i < sizeof add / sizeof *add; i++) {
      char name[MQ_AN_NAME_MAX];
      if (!strcmp(add[i].name, "t:"))
        snprintf(name, sizeof name, "t:%s", x.tt);
      else if (!strcmp(add[i].name, "t2"))
        snprintf(name, sizeof name, "t:%s", tt2);
      else if (!strcmp(add[i].name, "s:"))
        snprintf(name, sizeof name, "s:%s:EUR", x.tt);
      else
        snprintf(name, sizeof name, "%s", add[i].name);
      if (!mq_an_add(w, 'e', x.event, x.org, at + rnd(3600) * 1000, src, offset, name, add[i].v)) die("add", name);
      cells++;
    }
    if (mq_an_pending(w) > 50000 && mq_an_flush(w, s, &err) != MQ_OK) die("flush", err.message);
  }
  if (mq_an_flush(w, s, &err) != MQ_OK) die("flush", err.message);
  mq_an_set_free(w);
  mq_store_close(s);
  /* the requests mq-loadgen sends */
  char path[512];
  Google__Protobuf__Timestamp f = GOOGLE__PROTOBUF__TIMESTAMP__INIT, t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Marquee__Analytics__V1__TimeRange r = MARQUEE__ANALYTICS__V1__TIME_RANGE__INIT;
  Marquee__Analytics__V1__GetEventStatsRequest q = MARQUEE__ANALYTICS__V1__GET_EVENT_STATS_REQUEST__INIT;
  q.event_id = x.event;
  q.range = &r;
  r.start_time = &f, r.end_time = &t;
  r.time_zone = (char *)"Europe/Paris";
  f.seconds = (start + 3600000) / 1000, t.seconds = end / 1000;
  r.granularity = MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_DAY;
  snprintf(path, sizeof path, "%s/year-by-day.bin", dir);
  write_request(path, &q.base);
  f.seconds = end / 1000 - 92 * 86400;
  r.granularity = MARQUEE__ANALYTICS__V1__GRANULARITY__GRANULARITY_HOUR;
  snprintf(path, sizeof path, "%s/quarter-by-hour.bin", dir);
  write_request(path, &q.base);
  Marquee__Catalog__V1__GetEventRequest gq = MARQUEE__CATALOG__V1__GET_EVENT_REQUEST__INIT;
  gq.event_id = x.event;
  snprintf(path, sizeof path, "%s/get-event.bin", dir);
  write_request(path, &gq.base);
  snprintf(path, sizeof path, "%s/token", dir);
  FILE *tf = fopen(path, "w");
  if (!tf) die("write", path);
  fputs(x.token, tf);
  fclose(tf);
  printf("{\"event\":\"%s\",\"hours\":%" PRId64 ",\"cells\":%" PRId64 "}\n", x.event, offset, cells);
  mq_client_destroy(x.c);
  free(x.token);
  return 0;
}

/* ---- lag ---- */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmd_lag(const char *target, const char *keys, long n) {
  api_t x = {0};
  api_event(&x, target, keys, 0);
  mq_error_t err;
  mq_call_opts_t so = x.oo;
  so.deadline_ms = 600000;
  Marquee__Analytics__V1__WatchEventSalesRequest wq = MARQUEE__ANALYTICS__V1__WATCH_EVENT_SALES_REQUEST__INIT;
  wq.event_id = x.event;
  mq_client_stream_t *st = NULL;
  if (marquee__analytics__v1__analytics_service__watch_event_sales__open(x.c, &so, &st, &err) != MQ_OK ||
      marquee__analytics__v1__analytics_service__watch_event_sales__send(st, &wq, &err) != MQ_OK ||
      mq_client_stream_close_send(st, &err) != MQ_OK)
    api_fail("watch", &err);
  Marquee__Analytics__V1__LiveSales *m = NULL;
  if (marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err) != MQ_OK || !m)
    api_fail("first live message", &err);
  int64_t seen = m->bookings_last_minute;
  marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
  int64_t *lag = calloc((size_t)n, sizeof *lag);
  for (long i = 0; i < n; i++) {
    if (seen >= 50) { /* keep the count well inside one minute's window: wait until it slides to 0 */
      while (seen > 0) {
        m = NULL;
        if (marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err) != MQ_OK || !m)
          api_fail("live message", &err);
        seen = m->bookings_last_minute;
        marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
      }
    }
    Marquee__Bookings__V1__HoldItem item = MARQUEE__BOOKINGS__V1__HOLD_ITEM__INIT, *items[1] = {&item};
    item.ticket_type_id = x.tt;
    item.quantity = 1;
    Marquee__Bookings__V1__CreateHoldRequest hq = MARQUEE__BOOKINGS__V1__CREATE_HOLD_REQUEST__INIT;
    hq.event_id = x.event;
    hq.items = items;
    hq.n_items = 1;
    Marquee__Bookings__V1__Hold *h = NULL;
    if (marquee__bookings__v1__booking_service__create_hold__call(x.c, &hq, &h, &x.oo, &err) != MQ_OK)
      api_fail("hold", &err);
    Marquee__Bookings__V1__ConfirmHoldRequest cq = MARQUEE__BOOKINGS__V1__CONFIRM_HOLD_REQUEST__INIT;
    cq.hold_id = h->hold_id;
    Marquee__Bookings__V1__Booking *b = NULL;
    if (marquee__bookings__v1__booking_service__confirm_hold__call(x.c, &cq, &b, &x.oo, &err) != MQ_OK)
      api_fail("confirm", &err);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t want = seen + 1;
    for (;;) {
      m = NULL;
      if (marquee__analytics__v1__analytics_service__watch_event_sales__recv(st, &m, &err) != MQ_OK || !m)
        api_fail("live message", &err);
      seen = m->bookings_last_minute;
      marquee__analytics__v1__live_sales__free_unpacked(m, NULL);
      if (seen >= want) break;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    lag[i] = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    marquee__bookings__v1__booking__free_unpacked(b, NULL);
    marquee__bookings__v1__hold__free_unpacked(h, NULL);
  }
  qsort(lag, (size_t)n, sizeof *lag, cmp_i64);
  printf("{\"n\":%ld,\"p50_ms\":%" PRId64 ",\"p99_ms\":%" PRId64 ",\"max_ms\":%" PRId64 "}\n", n, lag[n / 2],
         lag[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], lag[n - 1]);
  free(lag);
  mq_client_stream_free(st);
  mq_client_destroy(x.c);
  free(x.token);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "produce")) return cmd_produce(atol(argv[2]), atol(argv[3]));
  if (argc == 4 && !strcmp(argv[1], "read")) return cmd_read(atoll(argv[2]), atol(argv[3]));
  if (argc == 2 && !strcmp(argv[1], "verify")) return cmd_verify();
  if (argc == 5 && !strcmp(argv[1], "seed-year")) return cmd_seed_year(argv[2], argv[3], argv[4]);
  if (argc == 5 && !strcmp(argv[1], "lag")) return cmd_lag(argv[2], argv[3], atol(argv[4]));
  fprintf(stderr,
          "usage: mq-bench-analytics produce N EVENTS | read T0_MS N | verify | seed-year TARGET KEYS DIR | "
          "lag TARGET KEYS N\n");
  return 2;
}
