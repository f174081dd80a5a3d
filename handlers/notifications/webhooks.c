/*
 * webhooks.c — WebhookService: an organization's webhook endpoints (create,
 * list, change, delete, rotate the signing secret) and the log of what
 * marquee-webhooks delivered to them (list, one with its attempts,
 * redeliver). The proto (marquee/notifications/v1/webhooks.proto) has the
 * contract, docs/WEBHOOKS.md the receiver's side.
 *
 * Invariants:
 *   1. Who: owners change endpoints; owners and managers read them and the
 *      deliveries and redeliver (mq_org_require: NOT_FOUND to outsiders).
 *      A delivery or endpoint of another organization is NOT_FOUND too.
 *   2. Every bad field is reported in one answer, before anything is read
 *      or written; URLs pass lib/mq_outbound.h's SSRF policy when saved.
 *   3. The secret is returned only by the create or rotate that made it; it
 *      is never put in an event, a log line or another answer (secret_hint
 *      shows its last four characters).
 *   4. Every change writes a WebhookEndpointChanged with it (the outbox).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/mq_ids.h"
#include "core/mq_time.h"
#include "handlers/identity/identity.h"
#include "handlers/notifications/notifications.h"
#include "lib/mq_event_catalog.h"
#include "lib/mq_outbound.h"
#include "lib/mq_page.h"
#include "lib/mq_validate.h"
#include "store/identity/orgs_store.h"
#include "store/mq_bson.h"
#include "store/notifications/webhooks_store.h"

typedef Marquee__Notifications__V1__WebhookEndpoint endpoint_pb;
typedef Marquee__Notifications__V1__WebhookDelivery delivery_pb;

#define EVENT_TYPES_MAX 40
#define PAGE_DEFAULT 20
#define PAGE_MAX 100
#define ROTATION_GRACE_MS (24LL * 3600 * 1000)

static endpoint_pb *endpoint_view(mq_arena_t *a, const mq_wh_endpoint_t *e) {
  endpoint_pb *v = mq_arena_alloc(a, sizeof *v);
  marquee__notifications__v1__webhook_endpoint__init(v);
  v->id = e->id;
  v->organization_id = e->organization_id;
  v->url = e->url;
  v->event_types = e->event_types;
  v->n_event_types = e->n_event_types;
  v->description = e->description;
  v->enabled = e->enabled;
  v->secret_hint = e->secret_hint;
  v->version = e->version;
  if (e->created_ms) v->created_at = mq_pb_timestamp(a, e->created_ms);
  if (e->updated_ms) v->updated_at = mq_pb_timestamp(a, e->updated_ms);
  return v;
}

static int state_enum(const char *s) {
  if (!strcmp(s, "pending")) return MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_PENDING;
  if (!strcmp(s, "delivered"))
    return MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED;
  if (!strcmp(s, "failed")) return MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_FAILED;
  return 0;
}

static const char *state_name(int v) {
  switch (v) {
    case MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_PENDING:
      return "pending";
    case MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_DELIVERED:
      return "delivered";
    case MARQUEE__NOTIFICATIONS__V1__WEBHOOK_DELIVERY_STATE__WEBHOOK_DELIVERY_STATE_FAILED:
      return "failed";
    default:
      return "";
  }
}

static delivery_pb *delivery_view(mq_arena_t *a, const mq_wh_delivery_t *d) {
  delivery_pb *v = mq_arena_alloc(a, sizeof *v);
  marquee__notifications__v1__webhook_delivery__init(v);
  v->id = d->id;
  v->endpoint_id = d->endpoint_id;
  v->event_id = d->event_id;
  v->event_type = d->event_type;
  v->state = state_enum(d->state);
  v->attempts = (uint32_t)d->attempts;
  if (d->created_ms) v->created_at = mq_pb_timestamp(a, d->created_ms);
  if (!strcmp(d->state, "pending") && d->next_ms) v->next_attempt_at = mq_pb_timestamp(a, d->next_ms);
  v->last_http_status = (uint32_t)d->last_status;
  v->last_error = d->last_error;
  return v;
}

/* "whsec_" + 32 random bytes in base64url (43 characters). */
static char *new_secret(mq_arena_t *a) {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char *s = mq_arena_alloc(a, 6 + 44 + 1);
  memcpy(s, "whsec_", 6);
  size_t n = mq_base64url_encode(raw, sizeof raw, s + 6);
  s[6 + n] = '\0';
  sodium_memzero(raw, sizeof raw);
  return s;
}

static char *hint_of(mq_arena_t *a, const char *secret) {
  size_t n = strlen(secret);
  char *h = mq_arena_alloc(a, 5);
  snprintf(h, 5, "%s", secret + (n > 4 ? n - 4 : 0));
  return h;
}

static void check_event_types(mq_error_t *err, const char *field, char *const *types, size_t n) {
  if (n == 0) {
    mq_error_set(err, MQ_INVALID_ARGUMENT, field, "name at least one event type, or \"*\" for all of them");
    return;
  }
  if (mq_check_count(err, field, n, EVENT_TYPES_MAX) != MQ_OK) return;
  for (size_t i = 0; i < n; i++) {
    char f[64];
    snprintf(f, sizeof f, "%s[%zu]", field, i);
    if (!strcmp(types[i], "*")) {
      if (n > 1) mq_error_set(err, MQ_INVALID_ARGUMENT, f, "\"*\" (every type) must be the only entry");
    } else if (!mq_webhook_event_type_ok(types[i])) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, f,
                   "'%.60s' is not an event type webhooks offer (ListWebhookEventTypes lists them)", types[i]);
    }
    for (size_t k = 0; k < i; k++)
      if (!strcmp(types[k], types[i])) {
        mq_error_set(err, MQ_INVALID_ARGUMENT, f, "repeats %s[%zu]", field, k);
        break;
      }
  }
}

static void check_description(mq_error_t *err, const char *field, const char *s) {
  if (s && *s) mq_check_text(err, field, s, 0, 200, MQ_TEXT_SINGLE_LINE | MQ_TEXT_TRIMMED);
}

static mq_code_t write_changed(mq_call_t *call, const mq_wh_endpoint_t *e, const char *change, int64_t version,
                               bool insert, int64_t expected_version, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  Marquee__Events__V1__WebhookEndpointChanged *c = mq_arena_alloc(a, sizeof *c);
  marquee__events__v1__webhook_endpoint_changed__init(c);
  c->endpoint_id = e->id;
  c->organization_id = e->organization_id;
  c->change = (char *)change;
  c->url_host = mq_arena_alloc(a, 256);
  mq_url_host(e->url, c->url_host, 256);
  c->event_types = e->event_types;
  c->n_event_types = e->n_event_types;
  c->enabled = e->enabled;
  c->version = version;
  mq_event_t ev;
  mq_event_init(&ev, MQ_NOTIFICATIONS_TOPIC, "notifications.WebhookEndpointChanged", e->id,
                mq_call_principal(call)->subject, mq_call_trace_id(call), mq_call_request_id(call));
  ev.env.payload_case = MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_WEBHOOK_ENDPOINT_CHANGED;
  ev.env.webhook_endpoint_changed = c;
  return insert ? mq_wh_endpoint_insert(app->store, e, &ev, err)
                : mq_wh_endpoint_save(app->store, e, expected_version, &ev, err);
}

mq_code_t mq_webhook_create_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__CreateWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpointWithSecret *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_error_collect(err);
  mq_check_uuid(err, "organization_id", req->organization_id);
  mq_outbound_check_url(err, "url", req->url, app->webhook_nets);
  check_event_types(err, "event_types", req->event_types, req->n_event_types);
  check_description(err, "description", req->description);
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_OWNER, NULL, err);
  mq_wh_endpoint_t *have;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_wh_endpoint_list(app->store, req->organization_id, false, a, &have, &n, err);
  if (rc != MQ_OK) return rc;
  if (n >= MQ_WEBHOOK_ENDPOINTS_MAX)
    return mq_error_set(err, MQ_FAILED_PRECONDITION, "organization_id",
                        "the organization has %d webhook endpoints, the most allowed; delete one first",
                        MQ_WEBHOOK_ENDPOINTS_MAX);
  int64_t now = mq_now_unix_ms();
  char *id = mq_arena_alloc(a, 37);
  mq_uuid_v4(id);
  char *secret = new_secret(a);
  mq_wh_endpoint_t e = {.id = id,
                        .organization_id = req->organization_id,
                        .url = req->url,
                        .description = req->description ? req->description : (char *)"",
                        .event_types = req->event_types,
                        .n_event_types = req->n_event_types,
                        .enabled = true,
                        .secret = secret,
                        .previous_secret = (char *)"",
                        .secret_hint = hint_of(a, secret),
                        .version = 1,
                        .created_ms = now,
                        .updated_ms = now};
  if ((rc = write_changed(call, &e, "created", 1, true, 0, err)) != MQ_OK) return rc;
  resp->endpoint = endpoint_view(a, &e);
  resp->secret = secret;
  return MQ_OK;
}

mq_code_t mq_webhook_list_handler(mq_call_t *call, const Marquee__Notifications__V1__ListWebhookEndpointsRequest *req,
                                  Marquee__Notifications__V1__ListWebhookEndpointsResponse *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_code_t rc = mq_check_uuid(err, "organization_id", req->organization_id);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  mq_wh_endpoint_t *v;
  size_t n = 0;
  if (rc == MQ_OK) rc = mq_wh_endpoint_list(app->store, req->organization_id, false, a, &v, &n, err);
  if (rc != MQ_OK) return rc;
  resp->endpoints = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->endpoints);
  for (size_t i = 0; i < n; i++) resp->endpoints[resp->n_endpoints++] = endpoint_view(a, &v[i]);
  return MQ_OK;
}

/* The endpoint `id` of organization `org` (NOT_FOUND for another's). */
static mq_code_t load(mq_app_t *app, mq_arena_t *a, const char *org, const char *id, mq_wh_endpoint_t *e,
                      mq_error_t *err) {
  mq_code_t rc = mq_wh_endpoint_get(app->store, id, a, e, err);
  if (rc == MQ_OK && strcmp(e->organization_id, org))
    return mq_error_set(err, MQ_NOT_FOUND, "endpoint_id", "no such webhook endpoint");
  return rc;
}

static bool named(const Google__Protobuf__FieldMask *m, const char *path) {
  for (size_t i = 0; m && i < m->n_paths; i++)
    if (!strcmp(m->paths[i], path)) return true;
  return false;
}

mq_code_t mq_webhook_update_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__UpdateWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpoint *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  static const char *const PATHS[] = {"url", "event_types", "description", "enabled"};
  const endpoint_pb *in = req->endpoint;
  const Google__Protobuf__FieldMask *m = req->update_mask;
  mq_error_collect(err);
  mq_check_uuid(err, "organization_id", req->organization_id);
  if (!in)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "endpoint", "is required");
  else
    mq_check_uuid(err, "endpoint.id", in->id);
  if (!m || m->n_paths == 0) mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask", "name at least one field to change");
  for (size_t i = 0; m && i < m->n_paths; i++) {
    bool known = false;
    for (size_t k = 0; k < sizeof PATHS / sizeof *PATHS; k++) known |= !strcmp(m->paths[i], PATHS[k]);
    if (!known)
      mq_error_set(err, MQ_INVALID_ARGUMENT, "update_mask",
                   "'%.60s' cannot change (url, event_types, description, enabled can)", m->paths[i]);
  }
  if (in && named(m, "url")) mq_outbound_check_url(err, "endpoint.url", in->url, app->webhook_nets);
  if (in && named(m, "event_types")) check_event_types(err, "endpoint.event_types", in->event_types, in->n_event_types);
  if (in && named(m, "description")) check_description(err, "endpoint.description", in->description);
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_OWNER, NULL, err);
  mq_wh_endpoint_t e;
  if (rc == MQ_OK) rc = load(app, a, req->organization_id, in->id, &e, err);
  if (rc != MQ_OK) return rc;
  if (in->version && in->version != e.version)
    return mq_error_set(err, MQ_ABORTED, "endpoint.version", "the endpoint is at version %lld now; read it again",
                        (long long)e.version);
  if (named(m, "url")) e.url = in->url;
  if (named(m, "event_types")) {
    e.event_types = in->event_types;
    e.n_event_types = in->n_event_types;
  }
  if (named(m, "description")) e.description = in->description ? in->description : (char *)"";
  if (named(m, "enabled")) e.enabled = in->enabled;
  int64_t was = e.version;
  e.updated_ms = mq_now_unix_ms();
  e.version = was + 1;
  if ((rc = write_changed(call, &e, "updated", was + 1, false, was, err)) != MQ_OK) return rc;
  *resp = *endpoint_view(a, &e);
  return MQ_OK;
}

/* The endpoint `id` of `org` for one of its owners: both ids checked (every
 * bad one reported), the caller's role, then the endpoint. */
static mq_code_t owned_endpoint(mq_call_t *call, const char *org, const char *id, mq_wh_endpoint_t *e,
                                mq_error_t *err) {
  mq_error_collect(err);
  mq_check_uuid(err, "organization_id", org);
  mq_check_uuid(err, "endpoint_id", id);
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) rc = mq_org_require(call, org, MQ_ORG_OWNER, NULL, err);
  if (rc == MQ_OK) rc = load(mq_call_app(call), mq_call_arena(call), org, id, e, err);
  return rc;
}

mq_code_t mq_webhook_delete_handler(mq_call_t *call,
                                    const Marquee__Notifications__V1__DeleteWebhookEndpointRequest *req,
                                    Marquee__Notifications__V1__DeleteWebhookEndpointResponse *resp, mq_error_t *err) {
  (void)resp;
  mq_wh_endpoint_t e;
  mq_code_t rc = owned_endpoint(call, req->organization_id, req->endpoint_id, &e, err);
  if (rc != MQ_OK) return rc;
  int64_t was = e.version;
  e.deleted = true;
  e.enabled = false;
  e.secret = e.previous_secret = (char *)"";
  e.updated_ms = mq_now_unix_ms();
  return write_changed(call, &e, "deleted", was + 1, false, was, err);
}

mq_code_t mq_webhook_rotate_handler(mq_call_t *call, const Marquee__Notifications__V1__RotateWebhookSecretRequest *req,
                                    Marquee__Notifications__V1__WebhookEndpointWithSecret *resp, mq_error_t *err) {
  mq_arena_t *a = mq_call_arena(call);
  mq_wh_endpoint_t e;
  mq_code_t rc = owned_endpoint(call, req->organization_id, req->endpoint_id, &e, err);
  if (rc != MQ_OK) return rc;
  int64_t was = e.version, now = mq_now_unix_ms();
  e.previous_secret = e.secret; /* keeps signing beside the new one for a day */
  e.previous_until_ms = now + ROTATION_GRACE_MS;
  e.secret = new_secret(a);
  e.secret_hint = hint_of(a, e.secret);
  e.updated_ms = now;
  e.version = was + 1;
  if ((rc = write_changed(call, &e, "secret_rotated", was + 1, false, was, err)) != MQ_OK) return rc;
  resp->endpoint = endpoint_view(a, &e);
  resp->secret = e.secret;
  return MQ_OK;
}

mq_code_t mq_webhook_deliveries_handler(mq_call_t *call,
                                        const Marquee__Notifications__V1__ListWebhookDeliveriesRequest *req,
                                        Marquee__Notifications__V1__ListWebhookDeliveriesResponse *resp,
                                        mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_store_page_t pg = {.key = "created_at", .desc = true};
  mq_error_collect(err);
  mq_check_uuid(err, "organization_id", req->organization_id);
  if (req->endpoint_id && *req->endpoint_id) mq_check_uuid(err, "endpoint_id", req->endpoint_id);
  mq_check_enum(err, "state", (int)req->state, &marquee__notifications__v1__webhook_delivery_state__descriptor, true);
  mq_check_page_size(err, "page_size", req->page_size, PAGE_DEFAULT, PAGE_MAX, &pg.limit);
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK)
    rc = mq_page_token_read_key(a, &req->base, "page_token", req->page_token, &pg.has_cursor, &pg.after_ms,
                                &pg.after_id, err);
  if (rc == MQ_OK) rc = mq_org_require(call, req->organization_id, MQ_ORG_MANAGER, NULL, err);
  mq_wh_delivery_t *v;
  size_t n = 0;
  if (rc == MQ_OK)
    rc = mq_wh_delivery_page(app->store, req->organization_id, req->endpoint_id, state_name((int)req->state), &pg, a,
                             &v, &n, err);
  if (rc != MQ_OK) return rc;
  resp->deliveries = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->deliveries);
  for (size_t i = 0; i < n; i++) resp->deliveries[resp->n_deliveries++] = delivery_view(a, &v[i]);
  resp->next_page_token = (char *)"";
  if (n == pg.limit && n)
    resp->next_page_token = mq_page_token_make_key(a, &req->base, v[n - 1].created_ms, v[n - 1].id);
  return MQ_OK;
}

static mq_code_t delivery_of(mq_call_t *call, const char *org, const char *id, mq_wh_delivery_t *d, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_error_collect(err);
  mq_check_uuid(err, "organization_id", org);
  if (!id || !*id)
    mq_error_set(err, MQ_INVALID_ARGUMENT, "delivery_id", "is required");
  else
    mq_check_text(err, "delivery_id", id, 1, 80, MQ_TEXT_SINGLE_LINE);
  mq_code_t rc = mq_error_collected(err);
  if (rc == MQ_OK) rc = mq_org_require(call, org, MQ_ORG_MANAGER, NULL, err);
  if (rc == MQ_OK) rc = mq_wh_delivery_get(app->store, id, mq_call_arena(call), d, err);
  if (rc == MQ_OK && strcmp(d->organization_id, org))
    rc = mq_error_set(err, MQ_NOT_FOUND, "delivery_id", "no such webhook delivery");
  return rc;
}

static mq_code_t full_view(mq_call_t *call, const mq_wh_delivery_t *d, delivery_pb *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_arena_t *a = mq_call_arena(call);
  mq_wh_attempt_t *at;
  size_t n = 0;
  mq_code_t rc = mq_wh_attempt_list(app->store, d->id, a, &at, &n, err);
  if (rc != MQ_OK) return rc;
  *resp = *delivery_view(a, d);
  resp->body = d->body;
  resp->attempt_log = mq_arena_alloc(a, (n ? n : 1) * sizeof *resp->attempt_log);
  for (size_t i = 0; i < n; i++) {
    Marquee__Notifications__V1__WebhookAttempt *w = mq_arena_alloc(a, sizeof *w);
    marquee__notifications__v1__webhook_attempt__init(w);
    w->number = (uint32_t)at[i].n;
    w->at = mq_pb_timestamp(a, at[i].at_ms);
    w->http_status = (uint32_t)at[i].status;
    w->error = strcmp(at[i].state, "done") ? (char *)"the attempt's outcome was not recorded (its process stopped)"
                                           : at[i].error;
    w->duration_ms = (uint32_t)at[i].duration_ms;
    resp->attempt_log[resp->n_attempt_log++] = w;
  }
  return MQ_OK;
}

mq_code_t mq_webhook_delivery_handler(mq_call_t *call, const Marquee__Notifications__V1__GetWebhookDeliveryRequest *req,
                                      Marquee__Notifications__V1__WebhookDelivery *resp, mq_error_t *err) {
  mq_wh_delivery_t d;
  mq_code_t rc = delivery_of(call, req->organization_id, req->delivery_id, &d, err);
  return rc == MQ_OK ? full_view(call, &d, resp, err) : rc;
}

mq_code_t mq_webhook_redeliver_handler(mq_call_t *call, const Marquee__Notifications__V1__RedeliverWebhookRequest *req,
                                       Marquee__Notifications__V1__WebhookDelivery *resp, mq_error_t *err) {
  mq_app_t *app = mq_call_app(call);
  mq_wh_delivery_t d;
  mq_code_t rc = delivery_of(call, req->organization_id, req->delivery_id, &d, err);
  if (rc == MQ_OK) rc = mq_wh_delivery_redeliver(app->store, d.id, mq_now_unix_ms(), err);
  if (rc == MQ_OK) rc = mq_wh_delivery_get(app->store, d.id, mq_call_arena(call), &d, err);
  return rc == MQ_OK ? full_view(call, &d, resp, err) : rc;
}

mq_code_t mq_webhook_types_handler(mq_call_t *call, const Marquee__Notifications__V1__ListWebhookEventTypesRequest *req,
                                   Marquee__Notifications__V1__ListWebhookEventTypesResponse *resp, mq_error_t *err) {
  (void)req;
  (void)err;
  (void)call;
  size_t n = 0;
  while (mq_webhook_event_types[n]) n++;
  resp->event_types = (char **)mq_webhook_event_types;
  resp->n_event_types = n;
  return MQ_OK;
}
