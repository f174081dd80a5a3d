/*
 * booking_service.c — marquee.bookings.v1.BookingService: its one method
 * table (who may call each method, and which function answers it). The
 * methods live with their concern: holds in holds.c, bookings in
 * bookings.c, waitlists in waitlist.c. To find where an RPC is handled,
 * grep its name here: one row, one function.
 */
#include "handlers/bookings/bookings.h"
#include "marquee/bookings/v1/bookings.mq-server.h"

static const marquee__bookings__v1__booking_service_handlers_t handlers = {
    .create_hold = {mq_hold_create_handler, MQ_POLICY_AUTHENTICATED, 0},
    .get_hold = {mq_hold_get_handler, MQ_POLICY_AUTHENTICATED, 0},
    .release_hold = {mq_hold_release_handler, MQ_POLICY_AUTHENTICATED, 0},
    .confirm_hold = {mq_hold_confirm_handler, MQ_POLICY_AUTHENTICATED, 0},
    .start_hold_payment = {mq_hold_start_payment_handler, MQ_POLICY_ADMIN, 0},
    .complete_hold_payment = {mq_hold_complete_payment_handler, MQ_POLICY_ADMIN, 0},
    .get_booking = {mq_booking_get_handler, MQ_POLICY_RESOURCE, 0},
    .list_my_bookings = {mq_booking_list_mine_handler, MQ_POLICY_AUTHENTICATED, 0},
    .list_event_bookings = {mq_booking_list_event_handler, MQ_POLICY_RESOURCE, 0},
    .cancel_booking = {mq_booking_cancel_handler, MQ_POLICY_RESOURCE, 0},
    .export_event_bookings = {mq_booking_export_handler, MQ_POLICY_RESOURCE, 0},
    .change_ticket_type = {mq_booking_change_tt_handler, MQ_POLICY_RESOURCE, 0},
    .join_waitlist = {mq_waitlist_join_handler, MQ_POLICY_AUTHENTICATED, 0},
    .leave_waitlist = {mq_waitlist_leave_handler, MQ_POLICY_AUTHENTICATED, 0},
    .get_waitlist_entry = {mq_waitlist_get_handler, MQ_POLICY_AUTHENTICATED, 0},
};

int booking_service_register(mq_app_t *app, mq_server_t *srv) {
  (void)app;
  return marquee__bookings__v1__booking_service__mq_register(srv, &handlers);
}
