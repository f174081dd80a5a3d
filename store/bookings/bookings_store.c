/*
 * bookings_store.c — see bookings_store.h. Queries: bookings by _id, by
 * ticket_ids (then tickets.ticket_id, for bookings written before it), by
 * (user_id, created_at, _id) and (event_id,
 * created_at, _id); check-ins by _id, (event_id, at, _id), booking_id.
 */
#include "store/bookings/bookings_store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_bookings_indexes[] = {
    {MQ_BOOKINGS_COLLECTION, "user_created", "{\"user_id\": 1, \"created_at\": -1, \"_id\": -1}", false},
    {MQ_BOOKINGS_COLLECTION, "event_created", "{\"event_id\": 1, \"created_at\": -1, \"_id\": -1}", false},
    {MQ_BOOKINGS_COLLECTION, "ticket_ids", "{\"ticket_ids\": 1}", false},
    {MQ_BOOKINGS_COLLECTION, "ticket", "{\"tickets.ticket_id\": 1}", false}, /* bookings written before ticket_ids */
    {MQ_BOOKINGS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_CHECKINS_COLLECTION, "event_at", "{\"event_id\": 1, \"at\": -1, \"_id\": -1}", false},
    {MQ_CHECKINS_COLLECTION, "booking", "{\"booking_id\": 1}", false},
    {MQ_CHECKINS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_CHECKIN_UNDOS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
};
const size_t mq_bookings_n_indexes = sizeof mq_bookings_indexes / sizeof *mq_bookings_indexes;

static void lower_append(char *dst, size_t cap, size_t *len, const char *s) {
  for (; s && *s && *len + 1 < cap; s++) dst[(*len)++] = (char)tolower((unsigned char)*s);
  if (*len + 1 < cap) dst[(*len)++] = '\n';
  dst[*len] = 0;
}

static void append_fields(bson_t *doc, const mq_booking_t *b) {
  BSON_APPEND_UTF8(doc, "state", b->state);
  BSON_APPEND_UTF8(doc, "payment_reference", b->payment_reference ? b->payment_reference : "");
  BSON_APPEND_UTF8(doc, "buyer_name", b->buyer_name ? b->buyer_name : "");
  BSON_APPEND_UTF8(doc, "buyer_email", b->buyer_email ? b->buyer_email : "");
  char search[4096];
  size_t len = 0;
  search[0] = 0;
  lower_append(search, sizeof search, &len, b->buyer_name);
  lower_append(search, sizeof search, &len, b->buyer_email);
  bson_t arr, d;
  BSON_APPEND_ARRAY_BEGIN(doc, "tickets", &arr);
  for (size_t i = 0; i < b->n_tickets; i++) {
    const mq_ticket_t *t = &b->tickets[i];
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
    BSON_APPEND_UTF8(&d, "ticket_id", t->id);
    BSON_APPEND_UTF8(&d, "ticket_type_id", t->ticket_type_id);
    BSON_APPEND_UTF8(&d, "ticket_type_name", t->ticket_type_name ? t->ticket_type_name : "");
    BSON_APPEND_UTF8(&d, "attendee_name", t->attendee_name ? t->attendee_name : "");
    BSON_APPEND_UTF8(&d, "slot", t->slot ? t->slot : "");
    bson_append_document_end(&arr, &d);
    lower_append(search, sizeof search, &len, t->attendee_name);
  }
  bson_append_array_end(doc, &arr);
  /* the tickets' ids again, top level: the lookup by ticket is an equality on
   * this array, which the local store indexes (it pushes down no dotted key) */
  BSON_APPEND_ARRAY_BEGIN(doc, "ticket_ids", &arr);
  for (size_t i = 0; i < b->n_tickets; i++) {
    char k[24];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_UTF8(&arr, k, b->tickets[i].id);
  }
  bson_append_array_end(doc, &arr);
  BSON_APPEND_UTF8(doc, "search", search);
  if (b->cancelled_ms) BSON_APPEND_DATE_TIME(doc, "cancelled_at", b->cancelled_ms);
  BSON_APPEND_UTF8(doc, "cancel_reason", b->cancel_reason ? b->cancel_reason : "");
  BSON_APPEND_UTF8(doc, "cancelled_by", b->cancelled_by ? b->cancelled_by : "");
}

static void from_bson(const bson_t *doc, mq_arena_t *a, mq_booking_t *b) {
  memset(b, 0, sizeof *b);
  b->id = mq_bson_get_str(doc, "_id", a);
  b->hold_id = mq_bson_get_str(doc, "hold_id", a);
  b->event_id = mq_bson_get_str(doc, "event_id", a);
  b->organization_id = mq_bson_get_str(doc, "organization_id", a);
  b->user_id = mq_bson_get_str(doc, "user_id", a);
  b->state = mq_bson_get_str(doc, "state", a);
  b->currency = mq_bson_get_str(doc, "currency", a);
  b->payment_reference = mq_bson_get_str(doc, "payment_reference", a);
  b->buyer_name = mq_bson_get_str(doc, "buyer_name", a);
  b->buyer_email = mq_bson_get_str(doc, "buyer_email", a);
  b->cancel_reason = mq_bson_get_str(doc, "cancel_reason", a);
  b->cancelled_by = mq_bson_get_str(doc, "cancelled_by", a);
  b->total_minor = mq_bson_get_i64(doc, "total_minor", 0);
  mq_price_read(doc, b->total_minor, a, &b->price);
  b->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  b->cancelled_ms = mq_bson_get_date_ms(doc, "cancelled_at", 0);
  b->version = mq_bson_get_i64(doc, "version", 1);
  b->lines = mq_hold_lines_read(doc, a, &b->n_lines);
  size_t n;
  bson_t *tickets = mq_bson_get_doc_array(doc, "tickets", a, &n);
  b->tickets = mq_arena_alloc(a, (n ? n : 1) * sizeof *b->tickets);
  for (size_t i = 0; i < n; i++) {
    const bson_t *d = &tickets[i];
    mq_ticket_t *t = &b->tickets[b->n_tickets++];
    t->id = mq_bson_get_str(d, "ticket_id", a);
    t->ticket_type_id = mq_bson_get_str(d, "ticket_type_id", a);
    t->ticket_type_name = mq_bson_get_str(d, "ticket_type_name", a);
    t->attendee_name = mq_bson_get_str(d, "attendee_name", a);
    t->slot = mq_bson_get_str(d, "slot", a);
  }
}

void mq_bookings_doc(bson_t *doc, const mq_booking_t *b) {
  BSON_APPEND_UTF8(doc, "_id", b->id);
  BSON_APPEND_UTF8(doc, "hold_id", b->hold_id);
  BSON_APPEND_UTF8(doc, "event_id", b->event_id);
  BSON_APPEND_UTF8(doc, "organization_id", b->organization_id);
  BSON_APPEND_UTF8(doc, "user_id", b->user_id);
  BSON_APPEND_UTF8(doc, "currency", b->currency);
  mq_hold_lines_append(doc, b->lines, b->n_lines);
  BSON_APPEND_INT64(doc, "total_minor", b->total_minor);
  mq_price_append(doc, &b->price);
  BSON_APPEND_DATE_TIME(doc, "created_at", b->created_ms);
  BSON_APPEND_INT64(doc, "version", 1);
  append_fields(doc, b);
}

mq_code_t mq_bookings_insert(mq_store_t *s, const mq_booking_t *b, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  mq_bookings_doc(&doc, b);
  if (ev) mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_BOOKINGS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

static mq_code_t find_one(mq_store_t *s, const bson_t *filter, mq_arena_t *a, mq_booking_t *out, mq_error_t *err) {
  bson_t doc, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  BSON_APPEND_INT32(&proj, "search", 0);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, MQ_BOOKINGS_COLLECTION, filter, &opts, &doc, err);
  bson_destroy(&opts);
  if (rc != MQ_OK) return rc;
  from_bson(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_bookings_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_booking_t *out, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", id);
  mq_code_t rc = find_one(s, &filter, a, out, err);
  bson_destroy(&filter);
  return rc;
}

mq_code_t mq_bookings_by_ticket(mq_store_t *s, const char *ticket_id, mq_arena_t *a, mq_booking_t *out, size_t *index,
                                mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "ticket_ids", ticket_id);
  mq_code_t rc = find_one(s, &filter, a, out, err);
  bson_destroy(&filter);
  if (rc == MQ_NOT_FOUND) { /* a booking written before ticket_ids (a scan on the local store) */
    bson_init(&filter);
    BSON_APPEND_UTF8(&filter, "tickets.ticket_id", ticket_id);
    rc = find_one(s, &filter, a, out, err);
    bson_destroy(&filter);
  }
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < out->n_tickets; i++)
    if (!strcmp(out->tickets[i].id, ticket_id)) {
      *index = i;
      return MQ_OK;
    }
  return MQ_NOT_FOUND;
}

mq_code_t mq_bookings_save(mq_store_t *s, mq_booking_t *b, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t update = BSON_INITIALIZER, set, also = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  append_fields(&set, b);
  BSON_APPEND_INT64(&set, "version", b->version + 1);
  bson_append_document_end(&update, &set);
  if (n) mq_outbox_append_update(&update, evs, n);
  BSON_APPEND_INT64(&also, "version", b->version);
  bson_value_t id = mq_bson_str_value(b->id);
  mq_code_t rc = mq_store_update_where(s, MQ_BOOKINGS_COLLECTION, &id, &also, &update, err);
  bson_destroy(&update);
  bson_destroy(&also);
  if (rc == MQ_NOT_FOUND)
    return mq_error_set(err, MQ_ABORTED, "booking_id", "the booking changed meanwhile; read it again and retry");
  if (rc == MQ_OK) b->version++;
  return rc;
}

static void booking_row(const bson_t *doc, mq_arena_t *a, void *row) {
  from_bson(doc, a, row);
}

/* The search text as a regular expression matching it literally. */
static char *literal_regex(mq_arena_t *a, const char *s) {
  size_t n = strlen(s);
  char *out = mq_arena_alloc(a, 2 * n + 1), *o = out;
  for (; *s; s++) {
    if (strchr("\\^$.|?*+()[]{}-/#&~<>=!:,", *s)) *o++ = '\\';
    *o++ = *s;
  }
  *o = 0;
  return out;
}

mq_code_t mq_bookings_list(mq_store_t *s, const mq_bookings_query_t *q, mq_arena_t *a, mq_booking_t **out, size_t *n,
                           mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
  if (q->user_id) BSON_APPEND_UTF8(&filter, "user_id", q->user_id);
  if (q->event_id) BSON_APPEND_UTF8(&filter, "event_id", q->event_id);
  if (q->state) BSON_APPEND_UTF8(&filter, "state", q->state);
  if (q->search && q->search[0]) {
    bson_t re;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "search", &re);
    BSON_APPEND_UTF8(&re, "$regex", literal_regex(a, q->search));
    BSON_APPEND_UTF8(&re, "$options", "i"); /* Unicode case folding (Å/å) on MongoDB and FerretDB */
    bson_append_document_end(&filter, &re);
  }
  if (q->has_cursor) /* (created_at, _id) < cursor, newest first */
    mq_store_append_keyset_date(&filter, "created_at", q->after_ms, q->after_id, true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "created_at", -1);
  BSON_APPEND_INT32(&sort, "_id", -1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)q->limit);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  BSON_APPEND_INT32(&proj, "search", 0);
  bson_append_document_end(&opts, &proj);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_booking_t), booking_row, q->limit);
  mq_code_t rc = mq_store_find_rows(s, MQ_BOOKINGS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

typedef struct {
  bool (*fn)(const mq_booking_t *b, void *arg);
  void *arg;
} each_booking_t;

static bool each_booking(const bson_t *doc, void *arg) {
  each_booking_t *x = arg;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_booking_t b;
  from_bson(doc, &a, &b);
  bool go = x->fn(&b, x->arg);
  mq_arena_release(&a);
  return go;
}

mq_code_t mq_bookings_each(mq_store_t *s, const char *event_id, const char *state,
                           bool (*fn)(const mq_booking_t *b, void *arg), void *arg, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_UTF8(&filter, "event_id", event_id);
  if (state) BSON_APPEND_UTF8(&filter, "state", state);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  BSON_APPEND_INT32(&proj, "search", 0);
  bson_append_document_end(&opts, &proj);
  each_booking_t x = {fn, arg};
  mq_code_t rc = mq_store_find_each(s, MQ_BOOKINGS_COLLECTION, &filter, &opts, each_booking, &x, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

/* ---- check-ins ---- */

static void checkin_from(const bson_t *doc, mq_arena_t *a, mq_checkin_t *c) {
  c->ticket_id = mq_bson_get_str(doc, "_id", a);
  c->booking_id = mq_bson_get_str(doc, "booking_id", a);
  c->event_id = mq_bson_get_str(doc, "event_id", a);
  c->ticket_type_id = mq_bson_get_str(doc, "ticket_type_id", a);
  c->ticket_type_name = mq_bson_get_str(doc, "ticket_type_name", a);
  c->attendee_name = mq_bson_get_str(doc, "attendee_name", a);
  c->gate = mq_bson_get_str(doc, "gate", a);
  c->by = mq_bson_get_str(doc, "by", a);
  c->at_ms = mq_bson_get_date_ms(doc, "at", 0);
}

mq_code_t mq_checkins_insert(mq_store_t *s, const mq_checkin_t *c, const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", c->ticket_id);
  BSON_APPEND_UTF8(&doc, "booking_id", c->booking_id);
  BSON_APPEND_UTF8(&doc, "event_id", c->event_id);
  BSON_APPEND_UTF8(&doc, "ticket_type_id", c->ticket_type_id);
  BSON_APPEND_UTF8(&doc, "ticket_type_name", c->ticket_type_name ? c->ticket_type_name : "");
  BSON_APPEND_UTF8(&doc, "attendee_name", c->attendee_name ? c->attendee_name : "");
  BSON_APPEND_UTF8(&doc, "gate", c->gate);
  BSON_APPEND_UTF8(&doc, "by", c->by);
  BSON_APPEND_DATE_TIME(&doc, "at", c->at_ms);
  if (ev) mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_CHECKINS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  return rc;
}

mq_code_t mq_checkins_get(mq_store_t *s, const char *ticket_id, mq_arena_t *a, mq_checkin_t *out, mq_error_t *err) {
  bson_t doc;
  mq_code_t rc = mq_store_get_by_id(s, MQ_CHECKINS_COLLECTION, ticket_id, &doc, err);
  if (rc != MQ_OK) return rc;
  checkin_from(&doc, a, out);
  bson_destroy(&doc);
  return MQ_OK;
}

mq_code_t mq_checkins_undo(mq_store_t *s, const mq_checkin_t *c, const char *by, const char *reason,
                           const mq_event_t *ev, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "_id", ev->id); /* one undo record per undo */
  BSON_APPEND_UTF8(&doc, "ticket_id", c->ticket_id);
  BSON_APPEND_UTF8(&doc, "event_id", c->event_id);
  BSON_APPEND_UTF8(&doc, "by", by);
  BSON_APPEND_UTF8(&doc, "reason", reason ? reason : "");
  BSON_APPEND_DATE_TIME(&doc, "checked_in_at", c->at_ms);
  BSON_APPEND_DATE_TIME(&doc, "at", mq_now_unix_ms());
  mq_outbox_append_insert(&doc, ev, 1);
  mq_code_t rc = mq_store_insert_decision(s, MQ_CHECKIN_UNDOS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  if (rc != MQ_OK) return rc;
  bson_t filter = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "_id", c->ticket_id);
  BSON_APPEND_DATE_TIME(&filter, "at", c->at_ms); /* only the check-in undone, not a newer one */
  rc = mq_store_delete(s, MQ_CHECKINS_COLLECTION, &filter, false, NULL, err);
  bson_destroy(&filter);
  return rc;
}

static void checkin_row(const bson_t *doc, mq_arena_t *a, void *row) {
  checkin_from(doc, a, row);
}

mq_code_t mq_checkins_of_booking(mq_store_t *s, const char *booking_id, mq_arena_t *a, mq_checkin_t **out, size_t *n,
                                 mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "booking_id", booking_id);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_checkin_t), checkin_row, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_CHECKINS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

mq_code_t mq_checkins_list(mq_store_t *s, const char *event_id, bool has_cursor, int64_t after_ms, const char *after_id,
                           uint32_t limit, mq_arena_t *a, mq_checkin_t **out, size_t *n, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  BSON_APPEND_UTF8(&filter, "event_id", event_id);
  if (has_cursor) mq_store_append_keyset_date(&filter, "at", after_ms, after_id, true); /* newest first */
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "at", -1);
  BSON_APPEND_INT32(&sort, "_id", -1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
  mq_outbox_exclude(&opts);
  mq_store_rows_t rows;
  mq_store_rows_init(&rows, a, sizeof(mq_checkin_t), checkin_row, 0);
  mq_code_t rc = mq_store_find_rows(s, MQ_CHECKINS_COLLECTION, &filter, &opts, &rows, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  *out = rows.v;
  *n = rows.n;
  return rc;
}

typedef struct {
  bool (*fn)(const mq_checkin_t *c, void *arg);
  void *arg;
} each_checkin_t;

static bool each_checkin(const bson_t *doc, void *arg) {
  each_checkin_t *x = arg;
  mq_arena_t a;
  mq_arena_init(&a);
  mq_checkin_t c;
  checkin_from(doc, &a, &c);
  bool go = x->fn(&c, x->arg);
  mq_arena_release(&a);
  return go;
}

mq_code_t mq_checkins_each(mq_store_t *s, const char *event_id, bool (*fn)(const mq_checkin_t *c, void *arg), void *arg,
                           mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&filter, "event_id", event_id);
  mq_outbox_exclude(&opts);
  each_checkin_t x = {fn, arg};
  mq_code_t rc = mq_store_find_each(s, MQ_CHECKINS_COLLECTION, &filter, &opts, each_checkin, &x, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

bool mq_bookings_owns_slot(mq_store_t *s, const char *booking_id, const char *slot_id) {
  mq_arena_t a;
  mq_arena_init(&a);
  mq_booking_t bk;
  mq_error_t err = {0};
  mq_code_t rc = mq_bookings_get(s, booking_id, &a, &bk, &err);
  bool owned = rc != MQ_OK; /* absent (confirmation finishing) or unreadable: keep */
  if (rc == MQ_OK && !strcmp(bk.state, MQ_BOOKING_CONFIRMED))
    for (size_t i = 0; i < bk.n_tickets && !owned; i++) owned = !strcmp(bk.tickets[i].slot, slot_id);
  mq_arena_release(&a);
  return owned;
}
