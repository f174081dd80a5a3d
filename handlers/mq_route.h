/*
 * mq_route.h — what a module sees of the side HTTP port: a route is a path
 * (or a prefix ending in '/') and a function that fills a response.
 *
 * The port itself is a library (lib/mq_http.h: consumer processes serve
 * their /metrics on it too); the server creates it and passes it to each
 * module's start hook, so that a module can serve GET /media/{id} or a
 * payment webhook without including anything of server/. Routes run on the
 * HTTP threads (a pool of MARQUEE_HTTP_THREADS, so one slow route does not stop /metrics)
 * and must not block for long (read a document, stream a file, one
 * gateway call).
 */
#ifndef MQ_ROUTE_H
#define MQ_ROUTE_H

#include "lib/mq_http.h"

#endif
