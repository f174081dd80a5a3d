/*
 * mq_outbound.h — the guard on URLs that organizations give Marquee to call
 * (webhook endpoints): server-side request forgery is refused both when a
 * URL is saved and when it is called.
 *
 * Policy:
 *   - https only; plain http only to a loopback address that the operator
 *     allowed (local tests and development);
 *   - no user name or password in the URL, at most 2,048 characters, a
 *     host name or an IP literal;
 *   - no address in a private or special range — loopback, RFC 1918,
 *     carrier-grade NAT, link-local (169.254.0.0/16: cloud metadata),
 *     multicast, reserved, unique-local and link-local IPv6, IPv4 mapped
 *     into IPv6 or NAT64 when the IPv4 address is such — unless it lies in
 *     an operator-configured allowed net (MARQUEE_WEBHOOK_ALLOWED_NETS).
 *
 * Invariants:
 *   1. mq_outbound_check_url decides from the URL alone (no DNS): a host
 *      name passes it; an IP literal or "localhost" is judged at once.
 *   2. mq_outbound_pin resolves the host when it is called, refuses unless
 *      every address it resolves to is allowed, and returns a libcurl
 *      CURLOPT_RESOLVE entry naming the checked address, so the connection
 *      goes to the address that was checked (no DNS rebinding between the
 *      check and the call).
 */
#ifndef MQ_OUTBOUND_H
#define MQ_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_error.h"

typedef struct mq_netlist mq_netlist_t;

/* "10.1.0.0/16, 127.0.0.0/8, ::1/128" (empty: none). INVALID_ARGUMENT
 * naming `field` for a malformed entry. */
mq_code_t mq_netlist_parse(const char *spec, const char *field, mq_netlist_t **out, mq_error_t *err);
void mq_netlist_free(mq_netlist_t *l);

/* Is this address (4 or 16 bytes) in a private or special range? */
bool mq_addr_special(const uint8_t *addr, size_t len);

/* The host[:port] of `url` (what follows "scheme://" up to the path, query
 * or fragment) into out[n]: what logs and events may name of a URL whose
 * path or query can hold the receiver's own token. */
void mq_url_host(const char *url, char *out, size_t n);

/* The checks of invariant 1; INVALID_ARGUMENT naming `field`. */
mq_code_t mq_outbound_check_url(mq_error_t *err, const char *field, const char *url, const mq_netlist_t *allowed);

/* The checks of invariant 2. On MQ_OK `resolve` holds "host:port:address".
 * UNAVAILABLE when the host does not resolve; PERMISSION_DENIED when it
 * resolves to an address the policy refuses. */
mq_code_t mq_outbound_pin(const char *url, const mq_netlist_t *allowed, char *resolve, size_t n, mq_error_t *err);

#endif
