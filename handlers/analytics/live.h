/*
 * live.h — the live on-sale counters behind AnalyticsService.WatchEventSales
 * (live.c): fed from the bus, pushed to organizers' streams.
 */
#ifndef MQ_ANALYTICS_LIVE_H
#define MQ_ANALYTICS_LIVE_H

#include "handlers/mq_app.h"
#include "handlers/mq_call.h"
#include "marquee/analytics/v1/analytics.pb-c.h"
#include "marquee/events/v1/envelope.pb-c.h"

typedef struct mq_live mq_live_t;

mq_live_t *mq_live_new(mq_app_t *app);
mq_code_t mq_live_start(mq_live_t *lv, mq_error_t *err);
/* Ends the thread, then every open stream (UNAVAILABLE). */
void mq_live_stop(mq_live_t *lv);
void mq_live_free(mq_live_t *lv);
/* A marquee.bookings event heard on the bus (any thread; never blocks long). */
void mq_live_on_event(mq_live_t *lv, const Marquee__Events__V1__Envelope *ev);
/* The WatchEventSales handler (owners and managers of the event's organization). */
mq_code_t mq_live_watch(mq_call_t *call, const Marquee__Analytics__V1__WatchEventSalesRequest *req, mq_error_t *err);

#endif
