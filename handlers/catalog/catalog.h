/*
 * catalog.h — what the catalog's services share (defined in
 * handlers/catalog/events.c): the event envelope for topic marquee.events,
 * field-mask and state tests, tag validation, the derived read-only fields,
 * the public/member view of an event, and membership of its organization.
 */
#ifndef MQ_CATALOG_H
#define MQ_CATALOG_H

#include <stdbool.h>

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "handlers/mq_route.h"
#include "marquee/catalog/v1/events.pb-c.h"
#include "store/mq_outbox.h"

/* In place (never copy an initialised mq_event_t): topic marquee.events,
 * actor = the caller (or "system"). */
void mq_catalog_event(mq_event_t *ev, mq_call_t *call, const char *type, const char *aggregate_id);
/* Whether `m` names `p`; a NULL mask names every field (creation). */
bool mq_catalog_has_path(const Google__Protobuf__FieldMask *m, const char *p);
/* The event's cancellation policy fields named by `mask` (all when NULL),
 * validated, from `in` onto `e`: events and series templates alike. */
mq_code_t mq_catalog_apply_cancel_policy(Marquee__Catalog__V1__Event *e, const Marquee__Catalog__V1__Event *in,
                                         const Google__Protobuf__FieldMask *mask, mq_error_t *err);
/* Cancelled or completed: no more changes. */
bool mq_catalog_finished(const Marquee__Catalog__V1__Event *e);
/* At most 10 tags of 1..30 [a-z0-9-]; INVALID_ARGUMENT naming "tags". */
mq_code_t mq_catalog_check_tags(char **tags, size_t n, mq_error_t *err);
/* attendance_mode and min_price_minor from the venue and ticket types. */
void mq_catalog_derive(Marquee__Catalog__V1__Event *e);
/* updated_at = now, then mq_catalog_derive. */
void mq_catalog_touch(mq_call_t *call, Marquee__Catalog__V1__Event *e);
/* A copy in the call's arena: the public sees no online URL and no hidden
 * ticket types; nobody sees access codes. */
Marquee__Catalog__V1__Event *mq_catalog_view(mq_call_t *call, const Marquee__Catalog__V1__Event *e, bool member);
/* The caller belongs to the organization (platform admins do). */
bool mq_catalog_is_member(mq_call_t *call, const char *org_id);

/* ---- the event fields, shared by events.c and series.c (defined in events.c) ---- */
#define MQ_CATALOG_MAX_IMAGES 20
/* Validates the content fields of `in` named by `mask` (all when NULL) —
 * title, description_md, category_id, tags, image_ids, cover_image_id,
 * online_url, venue_id, language, visibility, age_policy, refund_policy,
 * capacity and the cancellation policy — and copies them onto `e`. Not the
 * schedule and not the currency: an event and a series template treat those
 * differently. venue_id sets city and country from the venue (which must
 * belong to e->organization_id) and *venue_tz (optional) to its zone.
 * Call it between mq_error_collect and mq_error_collected
 * (core/mq_error.h): every bad field is recorded as a violation and the
 * good ones are copied, so `e` may be partly changed (callers work on a
 * copy); a store failure is kept as the error. */
void mq_catalog_apply_content(mq_call_t *call, Marquee__Catalog__V1__Event *e, const Marquee__Catalog__V1__Event *in,
                              const Google__Protobuf__FieldMask *mask, const char **venue_tz, mq_error_t *err);
/* Validates one ticket type's fields of `in` named by `mask` (all when
 * NULL; unknown paths refused) and copies them onto `t`; prices must be in
 * e->currency, sales must end by e->ends_at when the event has one.
 * Violations name "<prefix>.<field>". The access code is stored as its
 * SHA-256 only. */
mq_code_t mq_catalog_apply_ticket_type(mq_call_t *call, const Marquee__Catalog__V1__Event *e,
                                       Marquee__Catalog__V1__TicketType *t, const Marquee__Catalog__V1__TicketType *in,
                                       const Google__Protobuf__FieldMask *mask, const char *prefix, mq_error_t *err);

/* ---- the catalog module (module.c) ------------------------------------- */
int venue_service_register(mq_app_t *app, mq_server_t *srv);
int event_service_register(mq_app_t *app, mq_server_t *srv);
int category_service_register(mq_app_t *app, mq_server_t *srv);
int series_service_register(mq_app_t *app, mq_server_t *srv);
int media_service_register(mq_app_t *app, mq_server_t *srv);
/* GET /media/{id} on the side HTTP port (before it starts). */
void media_http_register(mq_app_t *app, mq_http_t *http);
/* Called by the module's tick: discards abandoned uploads. */
void media_sweep(mq_app_t *app);
/* After a change of an event (here, or heard from another instance): the
 * discovery index re-reads it, then its cached views and every cached page
 * are dropped. */
void mq_app_event_changed(mq_app_t *app, const char *event_id);
/* After a change of another catalog aggregate (venue, image, series,
 * category): its cached view and every cached page are dropped. */
void mq_catalog_caches_changed(mq_app_t *app, const char *id);

#endif
