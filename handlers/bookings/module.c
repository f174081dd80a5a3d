/*
 * module.c — the bookings module: holds and bookings, tickets and
 * check-in, live availability (one file per concern beside this one), the
 * repositories they own, and what bookings does on its own: the hold
 * sweeper, the ticket image routes of the side HTTP port, and following
 * every change of units anywhere — catalog changes of capacities and
 * sales windows (marquee.events), other servers' holds taking slots and
 * units coming back (marquee.bookings) — into the capacity hints and the
 * live availability streams. See handlers/mq_module.h.
 */
#include <string.h>

#include "handlers/bookings/bookings.h"
#include "handlers/mq_module.h"
#include "store/bookings/bookings_store.h"
#include "store/bookings/capacity.h"
#include "store/bookings/holds_store.h"
#include "store/bookings/waitlist_store.h"

static void bookings_on_event(mq_app_t *app, const char *topic, const Marquee__Events__V1__Envelope *ev) {
  if (!strcmp(topic, "marquee.payments")) { /* an organization's pricing changed */
    if (ev->payload_case == MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_PAYMENT_SETTINGS_CHANGED)
      mq_bookings_pay_settings_changed(app, ev->payment_settings_changed->organization_id);
    return;
  }
  if (!strcmp(topic, "marquee.events")) {
    const char *t = ev->type ? ev->type : "";
    if (!strncmp(t, "catalog.Event", 13) || !strncmp(t, "catalog.TicketType", 18))
      mq_availability_changed(app, ev->aggregate_id); /* capacities, sales windows */
    return;
  }
  if (strcmp(topic, MQ_BOOKINGS_TOPIC)) return;
  const char *event_id = NULL; /* the event whose units moved */
  switch (ev->payload_case) {
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_CREATED:
      event_id = ev->hold_created->event_id;
      mq_bookings_slots_taken(app, ev->hold_created->slots, ev->hold_created->n_slots);
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_EXPIRED:
      event_id = ev->hold_expired->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_HOLD_RELEASED:
      event_id = ev->hold_released->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_BOOKING_CANCELLED:
      event_id = ev->booking_cancelled->event_id;
      break;
    case MARQUEE__EVENTS__V1__ENVELOPE__PAYLOAD_TICKET_TYPE_MOVED:
      event_id = ev->ticket_type_moved->event_id;
      break;
    default:
      break;
  }
  mq_availability_changed(app, event_id);
}

static const mq_service_row_t services[] = {
    {"marquee.bookings.v1.BookingService", booking_service_register, NULL},
    {"marquee.bookings.v1.TicketService", ticket_service_register, NULL},
    {"marquee.bookings.v1.CheckInService", checkin_service_register, NULL},
    {"marquee.bookings.v1.AvailabilityService", availability_service_register, NULL},
};

static const mq_index_set_t indexes[] = {
    {mq_capacity_indexes, &mq_capacity_n_indexes},
    {mq_holds_indexes, &mq_holds_n_indexes},
    {mq_bookings_indexes, &mq_bookings_n_indexes},
    {mq_waitlist_indexes, &mq_waitlist_n_indexes},
};

const mq_module_t mq_bookings_module = {
    .name = "bookings",
    MQ_MODULE_TABLES(services, indexes),
    .open = mq_bookings_open,
    .routes = tickets_http_register,
    .start = mq_bookings_start,
    .on_event = bookings_on_event,
    .close = mq_bookings_close,
};
