/*
 * users_store.c — see users_store.h. Queries: by _id, and by email_key
 * (unique index). Roles are stored as strings ("attendee", "organizer",
 * "admin") so the documents read well in any MongoDB tool.
 */
#include "store/identity/users_store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_principal.h"
#include "core/mq_time.h"
#include "store/mq_bson.h"

const mq_index_spec_t mq_users_indexes[] = {
    {MQ_USERS_COLLECTION, "email_key_unique", "{\"email_key\": 1}", true},
    {MQ_USERS_COLLECTION, "outbox_at", MQ_OUTBOX_INDEX_KEYS, false},
    {MQ_USERS_COLLECTION, "created", "{\"created_at\": -1, \"_id\": -1}", false},
};
const size_t mq_users_n_indexes = sizeof mq_users_indexes / sizeof mq_users_indexes[0];

static const struct {
  uint32_t bit;
  const char *name;
} role_names[] = {{MQ_ROLE_ATTENDEE, "attendee"}, {MQ_ROLE_ORGANIZER, "organizer"}, {MQ_ROLE_ADMIN, "admin"}};

void mq_users_email_key(const char *email, char *out, size_t cap) {
  size_t i = 0;
  for (; email && email[i] && i + 1 < cap; i++) out[i] = (char)tolower((unsigned char)email[i]);
  out[i] = '\0';
}

mq_code_t mq_users_insert(mq_store_t *s, const mq_user_t *u, const mq_event_t *evs, size_t n, mq_error_t *err) {
  bson_t doc = BSON_INITIALIZER, roles, notif;
  BSON_APPEND_UTF8(&doc, "_id", u->id);
  BSON_APPEND_UTF8(&doc, "email", u->email);
  BSON_APPEND_UTF8(&doc, "email_key", u->email_key);
  BSON_APPEND_BOOL(&doc, "email_verified", u->email_verified);
  if (u->password_hash)
    BSON_APPEND_UTF8(&doc, "password_hash", u->password_hash);
  else
    BSON_APPEND_NULL(&doc, "password_hash"); /* signed up through a provider */
  BSON_APPEND_UTF8(&doc, "display_name", u->display_name);
  BSON_APPEND_UTF8(&doc, "locale", u->locale);
  BSON_APPEND_UTF8(&doc, "time_zone", u->time_zone);
  BSON_APPEND_UTF8(&doc, "currency", u->currency);
  BSON_APPEND_UTF8(&doc, "phone", u->phone ? u->phone : "");
  BSON_APPEND_UTF8(&doc, "avatar_ref", u->avatar_ref ? u->avatar_ref : "");
  BSON_APPEND_ARRAY_BEGIN(&doc, "roles", &roles);
  int k = 0;
  for (size_t i = 0; i < sizeof role_names / sizeof *role_names; i++)
    if (u->roles & role_names[i].bit) {
      char key[8];
      const char *kp;
      bson_uint32_to_string((uint32_t)k++, &kp, key, sizeof key);
      bson_append_utf8(&roles, kp, -1, role_names[i].name, -1);
    }
  bson_append_array_end(&doc, &roles);
  BSON_APPEND_INT32(&doc, "status", u->status);
  BSON_APPEND_DOCUMENT_BEGIN(&doc, "notifications", &notif);
  BSON_APPEND_BOOL(&notif, "email_reminders", u->notify_email_reminders);
  BSON_APPEND_BOOL(&notif, "email_marketing", u->notify_email_marketing);
  BSON_APPEND_BOOL(&notif, "push", u->notify_push);
  BSON_APPEND_BOOL(&notif, "sms", u->notify_sms);
  bson_append_document_end(&doc, &notif);
  BSON_APPEND_DATE_TIME(&doc, "created_at", u->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "updated_at", u->created_ms);
  BSON_APPEND_DATE_TIME(&doc, "sessions_revoked_at", 0);
  mq_outbox_append_insert(&doc, evs, n);
  mq_code_t rc = mq_store_insert_decision(s, MQ_USERS_COLLECTION, &doc, err);
  bson_destroy(&doc);
  if (rc == MQ_ALREADY_EXISTS) mq_error_set(err, MQ_ALREADY_EXISTS, "email", "an account with this e-mail exists");
  return rc;
}

static void from_doc(const bson_t *doc, mq_arena_t *a, mq_user_t *u) {
  memset(u, 0, sizeof *u);
  u->id = mq_bson_get_str(doc, "_id", a);
  u->email = mq_bson_get_str(doc, "email", a);
  u->email_key = mq_bson_get_str(doc, "email_key", a);
  u->email_verified = mq_bson_get_bool(doc, "email_verified", false);
  u->password_hash = mq_bson_get_str(doc, "password_hash", a);
  if (!u->password_hash[0]) u->password_hash = NULL; /* none (provider sign-in only) */
  u->display_name = mq_bson_get_str(doc, "display_name", a);
  u->locale = mq_bson_get_str(doc, "locale", a);
  u->time_zone = mq_bson_get_str(doc, "time_zone", a);
  u->currency = mq_bson_get_str(doc, "currency", a);
  u->phone = mq_bson_get_str(doc, "phone", a);
  u->avatar_ref = mq_bson_get_str(doc, "avatar_ref", a);
  u->status = (int)mq_bson_get_i64(doc, "status", MQ_USER_ACTIVE);
  u->created_ms = mq_bson_get_date_ms(doc, "created_at", 0);
  u->updated_ms = mq_bson_get_date_ms(doc, "updated_at", 0);
  u->sessions_revoked_ms = mq_bson_get_date_ms(doc, "sessions_revoked_at", 0);
  bson_iter_t it, sub;
  if (bson_iter_init_find(&it, doc, "roles") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub))
    while (bson_iter_next(&sub))
      if (BSON_ITER_HOLDS_UTF8(&sub))
        for (size_t i = 0; i < sizeof role_names / sizeof *role_names; i++)
          if (!strcmp(bson_iter_utf8(&sub, NULL), role_names[i].name)) u->roles |= role_names[i].bit;
  if (bson_iter_init_find(&it, doc, "notifications") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *d;
    uint32_t len;
    bson_t n;
    bson_iter_document(&it, &len, &d);
    if (bson_init_static(&n, d, len)) {
      u->notify_email_reminders = mq_bson_get_bool(&n, "email_reminders", false);
      u->notify_email_marketing = mq_bson_get_bool(&n, "email_marketing", false);
      u->notify_push = mq_bson_get_bool(&n, "push", false);
      u->notify_sms = mq_bson_get_bool(&n, "sms", false);
    }
  }
}

static mq_code_t get_by(mq_store_t *s, const char *key, const char *value, mq_arena_t *a, mq_user_t *out,
                        mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, doc;
  BSON_APPEND_UTF8(&filter, key, value);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  bson_append_document_end(&opts, &proj);
  mq_code_t rc = mq_store_find_one(s, MQ_USERS_COLLECTION, &filter, &opts, &doc, err);
  if (rc == MQ_OK) {
    from_doc(&doc, a, out);
    bson_destroy(&doc);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_users_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_user_t *out, mq_error_t *err) {
  return get_by(s, "_id", id, a, out, err);
}

mq_code_t mq_users_get_by_email(mq_store_t *s, const char *email_key, mq_arena_t *a, mq_user_t *out, mq_error_t *err) {
  return get_by(s, "email_key", email_key, a, out, err);
}

mq_code_t mq_users_update(mq_store_t *s, const char *id, const bson_t *set, const mq_event_t *evs, size_t n,
                          mq_error_t *err) {
  bson_t upd = BSON_INITIALIZER, setdoc;
  BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &setdoc);
  bson_concat(&setdoc, set);
  BSON_APPEND_DATE_TIME(&setdoc, "updated_at", mq_now_unix_ms());
  bson_append_document_end(&upd, &setdoc);
  if (n) mq_outbox_append_update(&upd, evs, n);
  bson_value_t idv = {.value_type = BSON_TYPE_UTF8};
  idv.value.v_utf8.str = (char *)id;
  idv.value.v_utf8.len = (uint32_t)strlen(id);
  mq_code_t rc = mq_store_update_by_id(s, MQ_USERS_COLLECTION, &idv, &upd, err);
  bson_destroy(&upd);
  if (rc == MQ_NOT_FOUND) mq_error_set(err, MQ_NOT_FOUND, NULL, "no such account");
  return rc;
}

static const char *role_name(uint32_t bit) {
  for (size_t i = 0; i < sizeof role_names / sizeof *role_names; i++)
    if (role_names[i].bit == bit) return role_names[i].name;
  return "";
}

typedef struct {
  mq_arena_t *a;
  mq_user_t *out;
  size_t *n, limit;
} list_ctx_t;

static bool collect_user(const bson_t *doc, void *arg) {
  list_ctx_t *c = arg;
  from_doc(doc, c->a, &c->out[(*c->n)++]);
  return *c->n < c->limit;
}

typedef struct {
  void (*each)(int64_t, void *);
  void *arg;
} created_ctx_t;

static bool each_created(const bson_t *doc, void *arg) {
  created_ctx_t *c = arg;
  c->each(mq_bson_get_date_ms(doc, "created_at", 0), c->arg);
  return true;
}

mq_code_t mq_users_list(mq_store_t *s, const mq_users_query_t *q, mq_arena_t *a, mq_user_t *out, size_t *n,
                        mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sub, sort, proj;
  if (q->email_prefix && q->email_prefix[0]) { /* a range, never a regex: input stays a value */
    char upper[300];
    snprintf(upper, sizeof upper, "%s\xF4\x8F\xBF\xBF", q->email_prefix);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "email_key", &sub);
    BSON_APPEND_UTF8(&sub, "$gte", q->email_prefix);
    BSON_APPEND_UTF8(&sub, "$lt", upper);
    bson_append_document_end(&filter, &sub);
  }
  if (q->role) BSON_APPEND_UTF8(&filter, "roles", role_name(q->role));
  if (q->status) BSON_APPEND_INT32(&filter, "status", q->status);
  if (q->created_after_ms || q->created_before_ms) {
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "created_at", &sub);
    if (q->created_after_ms) BSON_APPEND_DATE_TIME(&sub, "$gte", q->created_after_ms);
    if (q->created_before_ms) BSON_APPEND_DATE_TIME(&sub, "$lt", q->created_before_ms);
    bson_append_document_end(&filter, &sub);
  }
  if (q->after_id) /* (created_at, _id) < cursor */
    mq_store_append_keyset_date(&filter, "created_at", q->after_created_ms, q->after_id, true);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "created_at", -1);
  BSON_APPEND_INT32(&sort, "_id", -1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, MQ_OUTBOX_FIELD, 0);
  BSON_APPEND_INT32(&proj, "password_hash", 0);
  bson_append_document_end(&opts, &proj);
  BSON_APPEND_INT64(&opts, "limit", q->limit);
  list_ctx_t ctx = {a, out, n, q->limit};
  *n = 0;
  mq_code_t rc = mq_store_find_each(s, MQ_USERS_COLLECTION, &filter, &opts, collect_user, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}

mq_code_t mq_users_count(mq_store_t *s, const bson_t *filter, int64_t *n, mq_error_t *err) {
  return mq_store_count(s, MQ_USERS_COLLECTION, filter, n, err);
}

mq_code_t mq_users_created_since(mq_store_t *s, int64_t since_ms, void (*each)(int64_t created_ms, void *arg),
                                 void *arg, mq_error_t *err) {
  bson_t filter = BSON_INITIALIZER, sub, opts = BSON_INITIALIZER, proj;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "created_at", &sub);
  BSON_APPEND_DATE_TIME(&sub, "$gte", since_ms);
  bson_append_document_end(&filter, &sub);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "created_at", 1);
  bson_append_document_end(&opts, &proj);
  created_ctx_t ctx = {each, arg};
  mq_code_t rc = mq_store_find_each(s, MQ_USERS_COLLECTION, &filter, &opts, each_created, &ctx, err);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}
