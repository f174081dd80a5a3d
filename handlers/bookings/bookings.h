/*
 * bookings.h — what the bookings services share (handlers/bookings/):
 * the per-process state (capacity hints, ticket keys, the hold sweeper),
 * the finishing steps that complete a decided hold or cancellation
 * (store/bookings/holds_store.h H3), and the protobuf views.
 *
 * Files: holds.c (BookingService: holds, payment steps, the sweeper),
 * bookings.c (BookingService: bookings, cancellation), tickets.c
 * (TicketService, CheckInService).
 */
#ifndef MQ_BOOKINGS_H
#define MQ_BOOKINGS_H

#include <pthread.h>
#include <stdbool.h>

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "handlers/mq_route.h"
#include "lib/mq_tax.h"
#include "lib/mq_ticket_code.h"
#include "marquee/bookings/v1/availability.pb-c.h"
#include "marquee/bookings/v1/bookings.pb-c.h"
#include "marquee/catalog/v1/events.pb-c.h"
#include "store/bookings/bookings_store.h"
#include "store/bookings/capacity.h"
#include "store/bookings/holds_store.h"
#include "store/payments/payments_store.h"

typedef struct mq_availability mq_availability_t; /* availability.c */

typedef struct mq_bookings {
  mq_app_t *app;
  mq_availability_t *availability;
  mq_capacity_t *capacity;
  mq_ticket_keys_t *keys;
  mq_tax_table_t *taxes;    /* MARQUEE_TAX_RATES_FILE or the built-in table */
  struct mq_cache *pricing; /* organizations' pricing settings by id (NULL: caching off) */
  pthread_t sweeper;
  bool running, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic long long expired_total, finished_total, reclaimed_total;
  _Atomic long long holds_total, confirmed_total; /* made by this process (Grafana: per second) */
  int64_t last_reclaim_ms;                        /* sweeper thread only */
  int64_t last_full_ms; /* sweeper thread only: the last full scans (due holds, open decisions) */
  /* when this server's holds fall due (a min-heap): the sweeper reads only
   * those, and scans the store for everyone's only every 12 sweeps */
  pthread_mutex_t due_mu;
  struct mq_due *due;
  size_t n_due, cap_due;
  /* events being read for app->sale_events (holds.c, sale_event): one
   * store read per event at a time, the other callers wait for it */
  pthread_mutex_t fill_mu;
  pthread_cond_t fill_cv;
  struct mq_sale_fill *fills;
  /* ticket types with people waiting (waitlist.c), refreshed every sweep */
  pthread_mutex_t lines_mu;
  char (*lines)[40];
  size_t n_lines;
} mq_bookings_t;

#define MQ_BOOKINGS_TOPIC "marquee.bookings"

/* Opens app->bookings (keys from MARQUEE_TICKET_KEYS; INVALID_ARGUMENT
 * naming it when malformed). */
mq_code_t mq_bookings_open(mq_app_t *app, mq_error_t *err);
/* The sweeper thread: every MARQUEE_HOLD_SWEEP_MS ends due holds and
 * finishes stale decisions. */
mq_code_t mq_bookings_start(mq_app_t *app, mq_error_t *err);
void mq_bookings_close(mq_app_t *app);

/* This server made or moved a hold that falls due at `at_ms`. */
void mq_bookings_due_at(mq_bookings_t *b, const char *hold_id, int64_t at_ms);

/* One sweep (also called by tests through the sweeper's cadence). */
void mq_bookings_sweep(mq_bookings_t *b);

/* H3 finishing steps; all idempotent. `actor` is the caller or "system". */
mq_code_t mq_bookings_finish_confirm(mq_bookings_t *b, const mq_hold_t *h, const char *payment_reference,
                                     const char *actor, const char *trace_id, mq_arena_t *a, mq_booking_t *out,
                                     mq_error_t *err);
mq_code_t mq_bookings_finish_cancel(mq_bookings_t *b, const char *booking_id, mq_arena_t *a, mq_booking_t *out,
                                    mq_error_t *err);

/* An event is being cancelled: the trigger (hold_decisions
 * "<event>:event_cancel", done=false) is written BEFORE the event is saved
 * as cancelled, so a crash in between cannot forget its bookings; the
 * sweeper then releases the event's active holds and cancels its confirmed
 * bookings (BookingCancelled, cancelled_by "organizer": refunds), and marks
 * the trigger done. A trigger whose event is not cancelled a minute later
 * (the save failed) is dropped. Called by the catalog's CancelEvent. */
mq_code_t mq_bookings_event_cancelling(mq_store_t *s, const char *event_id, const char *actor, const char *reason,
                                       mq_error_t *err);
mq_code_t mq_bookings_finish_event_cancel(mq_bookings_t *b, const mq_decision_t *trigger, mq_error_t *err);

/* Views. Codes are signed for every ticket of a confirmed booking when
 * `with_codes`; `checkins` (may be NULL) fills checked_in_at/gate. */
Marquee__Bookings__V1__Booking *mq_booking_view(mq_call_t *call, mq_bookings_t *b, const mq_booking_t *bk,
                                                const mq_checkin_t *checkins, size_t n_checkins, bool with_codes);
Marquee__Bookings__V1__Ticket *mq_ticket_view(mq_call_t *call, mq_bookings_t *b, const mq_booking_t *bk, size_t i,
                                              const mq_checkin_t *checkins, size_t n_checkins, bool with_codes);
Marquee__Bookings__V1__PriceLine **mq_price_lines(mq_arena_t *a, const mq_hold_line_t *lines, size_t n,
                                                  const char *currency);
Marquee__Common__V1__Money *mq_money(mq_arena_t *a, int64_t minor, const char *currency);

/* The booking, if the caller may see it: its owner, or a member of its
 * organization whose role is `weakest_member_role` or stronger (-1: owner
 * only). Anyone else gets NOT_FOUND "booking_id". *is_member tells which. */
mq_code_t mq_booking_load_for(mq_call_t *call, const char *booking_id, int weakest_member_role, mq_booking_t *out,
                              bool *is_member, mq_error_t *err);

/* Fills an envelope on topic marquee.bookings (actor: the caller or
 * "system"). */
void mq_bookings_event(mq_event_t *ev, const char *type, const char *aggregate_id, const char *actor,
                       const char *trace_id, const char *request_id);
/* The units of a hold's lines, for the events (in `a`). */
Marquee__Events__V1__BookedUnits **mq_booked_units(mq_arena_t *a, const mq_hold_line_t *lines, size_t n);

/* BookingService's hold methods (holds.c). The service's one method table
 * is booking_service.c. */
mq_code_t mq_hold_create_handler(mq_call_t *call, const Marquee__Bookings__V1__CreateHoldRequest *req,
                                 Marquee__Bookings__V1__Hold *resp, mq_error_t *err);
mq_code_t mq_hold_get_handler(mq_call_t *call, const Marquee__Bookings__V1__GetHoldRequest *req,
                              Marquee__Bookings__V1__Hold *resp, mq_error_t *err);
mq_code_t mq_hold_release_handler(mq_call_t *call, const Marquee__Bookings__V1__ReleaseHoldRequest *req,
                                  Marquee__Bookings__V1__Hold *resp, mq_error_t *err);
mq_code_t mq_hold_confirm_handler(mq_call_t *call, const Marquee__Bookings__V1__ConfirmHoldRequest *req,
                                  Marquee__Bookings__V1__Booking *resp, mq_error_t *err);
mq_code_t mq_hold_start_payment_handler(mq_call_t *call, const Marquee__Bookings__V1__StartHoldPaymentRequest *req,
                                        Marquee__Bookings__V1__Hold *resp, mq_error_t *err);
mq_code_t mq_hold_complete_payment_handler(mq_call_t *call,
                                           const Marquee__Bookings__V1__CompleteHoldPaymentRequest *req,
                                           Marquee__Bookings__V1__CompleteHoldPaymentResponse *resp, mq_error_t *err);
/* Whoever finds a hold whose fate is decided finishes it (holds_store.h H3):
 * holds.c's retries and sweeper.c. *out gets the booking when it was
 * confirmed (out may be NULL). */
mq_code_t mq_bookings_finish_decided(mq_bookings_t *b, mq_hold_t *h, const mq_decision_t *fate, const char *trace_id,
                                     mq_arena_t *a, mq_booking_t *out, mq_error_t *err);

/* The payment steps, in process, for the payments module (the RPCs
 * StartHoldPayment / CompleteHoldPayment are the same for an admin
 * client). start: the hold enters PAYMENT_PENDING under `reference` until
 * `deadline_ms` (0: now + MARQUEE_PAYMENT_WINDOW_S); FAILED_PRECONDITION if
 * it expired, ended, or is in payment under another reference; *h is
 * re-read. complete: records the payment's outcome; with succeeded the
 * hold is confirmed into *bk; FAILED_PRECONDITION if the window closed
 * first (the caller refunds) or another outcome was recorded. */
/* The hold's price beyond its lines (lib/mq_tax.h): its subtotal, the
 * organization's service fee when passed on (fee_ppm of the subtotal plus
 * the per-ticket fee when it is in the event's currency), the taxes of the
 * event's jurisdiction at `at_ms` on subtotal + fee (the venue's; for an
 * online event the organization's home country, else none; shown included
 * or added per the organization's choice, else the custom there: added in
 * Canada and the United States, included elsewhere; plus the
 * organization's own rate), and the total charged. */
mq_code_t mq_bookings_price(mq_bookings_t *b, const Marquee__Catalog__V1__Event *e, mq_hold_t *h, int64_t at_ms,
                            mq_arena_t *a, mq_error_t *err);
/* An organization's pricing settings (store/payments), through a cache
 * kept while other servers' changes can be heard; the payments module
 * calls ..._changed after saving them. */
mq_code_t mq_bookings_pay_settings(mq_bookings_t *b, const char *org_id, mq_arena_t *a, mq_pay_settings_t *out,
                                   mq_error_t *err);
void mq_bookings_pay_settings_changed(mq_app_t *app, const char *org_id);
/* The API's tax lines of a price. */
Marquee__Bookings__V1__TaxLine **mq_tax_lines(mq_arena_t *a, const mq_price_t *p, const char *currency);
/* ConfirmHold in process: a free hold is confirmed into *bk (a paid one is
 * FAILED_PRECONDITION "payment required"); idempotent. */
mq_code_t mq_bookings_confirm_free(mq_bookings_t *b, mq_hold_t *h, const char *actor, const char *trace_id,
                                   mq_arena_t *a, mq_booking_t *bk, mq_error_t *err);
mq_code_t mq_bookings_start_payment(mq_bookings_t *b, mq_hold_t *h, const char *reference, int64_t deadline_ms,
                                    const char *actor, const char *trace_id, const char *request_id, mq_arena_t *a,
                                    mq_error_t *err);
mq_code_t mq_bookings_complete_payment(mq_bookings_t *b, mq_hold_t *h, const char *reference, bool succeeded,
                                       const char *actor, const char *trace_id, const char *request_id, mq_arena_t *a,
                                       mq_booking_t *bk, mq_error_t *err);

/* BookingService's booking methods (bookings.c). */
mq_code_t mq_booking_get_handler(mq_call_t *call, const Marquee__Bookings__V1__GetBookingRequest *req,
                                 Marquee__Bookings__V1__Booking *resp, mq_error_t *err);
mq_code_t mq_booking_list_mine_handler(mq_call_t *call, const Marquee__Bookings__V1__ListMyBookingsRequest *req,
                                       Marquee__Bookings__V1__ListBookingsResponse *resp, mq_error_t *err);
mq_code_t mq_booking_list_event_handler(mq_call_t *call, const Marquee__Bookings__V1__ListEventBookingsRequest *req,
                                        Marquee__Bookings__V1__ListBookingsResponse *resp, mq_error_t *err);
mq_code_t mq_booking_cancel_handler(mq_call_t *call, const Marquee__Bookings__V1__CancelBookingRequest *req,
                                    Marquee__Bookings__V1__Booking *resp, mq_error_t *err);
mq_code_t mq_booking_export_handler(mq_call_t *call, const Marquee__Bookings__V1__ExportEventBookingsRequest *req,
                                    mq_error_t *err);
mq_code_t mq_booking_change_tt_handler(mq_call_t *call, const Marquee__Bookings__V1__ChangeTicketTypeRequest *req,
                                       Marquee__Bookings__V1__Booking *resp, mq_error_t *err);
/* The event, for a member of its organization with `role` or stronger;
 * NOT_FOUND "event_id" for anyone else (as for an unknown event). */
mq_code_t mq_bookings_event_for_member(mq_call_t *call, const char *event_id, int role, Marquee__Catalog__V1__Event **e,
                                       mq_error_t *err);

/* "YYYY-MM-DDTHH:MM:SSZ" for a UTC ms time ("" for 0). */
void mq_bookings_iso_time(int64_t ms, char out[32]);
/* A UUID-shaped digest of (a, b). */
void mq_bookings_derived_id(const char *a, const char *b, char out[37]);
/* A hold made by the waitlist for `user` with the given id (W2):
 * RESOURCE_EXHAUSTED when the units are not there, ALREADY_EXISTS when
 * another sweeper made it. */
mq_code_t mq_bookings_offer_hold(mq_bookings_t *b, const Marquee__Catalog__V1__Event *e,
                                 const Marquee__Catalog__V1__TicketType *t, const char *user, uint32_t qty,
                                 const char *id, mq_arena_t *a, int64_t *expires_ms, mq_error_t *err);
/* The units of `old`'s lines again, for its user, as a new ACTIVE hold
 * `new_id` at old's price (a payment that succeeded after its hold ended:
 * payments.c). RESOURCE_EXHAUSTED when they are gone meanwhile,
 * FAILED_PRECONDITION when the event is no longer on sale, ALREADY_EXISTS
 * when new_id was placed before. */
mq_code_t mq_bookings_retake(mq_bookings_t *b, const mq_hold_t *old, const char *new_id, mq_arena_t *a, mq_hold_t *out,
                             mq_error_t *err);
/* Decides "released" for an active hold (or finishes what was decided). */
mq_code_t mq_bookings_release_hold(mq_bookings_t *b, mq_hold_t *h, const char *actor, mq_arena_t *a, mq_error_t *err);

/* The waitlist (waitlist.c). */
bool mq_waitlist_has_line(mq_bookings_t *b, const char *ticket_type_id);
void mq_waitlist_sweep(mq_bookings_t *b);
mq_code_t mq_waitlist_join_handler(mq_call_t *call, const Marquee__Bookings__V1__JoinWaitlistRequest *req,
                                   Marquee__Bookings__V1__WaitlistEntry *resp, mq_error_t *err);
mq_code_t mq_waitlist_leave_handler(mq_call_t *call, const Marquee__Bookings__V1__WaitlistEntryRequest *req,
                                    Marquee__Bookings__V1__WaitlistEntry *resp, mq_error_t *err);
mq_code_t mq_waitlist_get_handler(mq_call_t *call, const Marquee__Bookings__V1__WaitlistEntryRequest *req,
                                  Marquee__Bookings__V1__WaitlistEntry *resp, mq_error_t *err);

/* Another server's hold took these slots: mark them in this process's
 * probing hints (capacity.h), so its takers skip them. */
void mq_bookings_slots_taken(mq_app_t *app, char *const *slots, size_t n);

/* Live availability (availability.c). */
mq_availability_t *mq_availability_new(mq_app_t *app);
mq_code_t mq_availability_start(mq_availability_t *av, mq_error_t *err);
void mq_availability_free(mq_availability_t *av);
/* The units of `event_id` changed (here or, through Kafka, elsewhere). */
void mq_availability_changed(mq_app_t *app, const char *event_id);
/* The remaining units of `e` now (visible ticket types), built in `a`; for
 * other modules' live views (analytics' live sales). */
mq_code_t mq_availability_snapshot(mq_app_t *app, const Marquee__Catalog__V1__Event *e, mq_arena_t *a,
                                   Marquee__Bookings__V1__Availability **out, mq_error_t *err);
int availability_service_register(mq_app_t *app, mq_server_t *srv);

int booking_service_register(mq_app_t *app, mq_server_t *srv);
int ticket_service_register(mq_app_t *app, mq_server_t *srv);
int checkin_service_register(mq_app_t *app, mq_server_t *srv);

/* ---- the bookings module (module.c) ------------------------------------ */
int booking_service_register(mq_app_t *app, mq_server_t *srv);
int ticket_service_register(mq_app_t *app, mq_server_t *srv);
int checkin_service_register(mq_app_t *app, mq_server_t *srv);
int availability_service_register(mq_app_t *app, mq_server_t *srv);
/* GET /tickets/{id}.png|.pdf on the side HTTP port (before it starts). */
void tickets_http_register(mq_app_t *app, mq_http_t *http);

#endif
