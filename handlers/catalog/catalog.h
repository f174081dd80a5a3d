/*
 * catalog.h — what the catalog's services share (defined in
 * handlers/catalog/events.c): the event envelope for topic marquee.events,
 * field-mask and state tests, tag validation, the derived read-only fields,
 * the public/member view of an event, and membership of its organization.
 */
#ifndef MQ_CATALOG_H
#define MQ_CATALOG_H

#include <stdbool.h>

#include "marquee/catalog/v1/events.pb-c.h"
#include "mq_call.h"
#include "mq_outbox.h"

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

#endif
