/*
 * mq_outbound.c — see mq_outbound.h.
 */
#include "lib/mq_outbound.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mq_xmalloc.h"

#define MAX_URL 2048

typedef struct {
  uint8_t addr[16];
  size_t len; /* 4 or 16 */
  unsigned bits;
} net_t;

struct mq_netlist {
  net_t *v;
  size_t n;
};

mq_code_t mq_netlist_parse(const char *spec, const char *field, mq_netlist_t **out, mq_error_t *err) {
  *out = mq_xcalloc(1, sizeof **out);
  char *copy = mq_xmalloc(strlen(spec ? spec : "") + 1), *save = NULL;
  strcpy(copy, spec ? spec : "");
  for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    net_t net = {0};
    char *slash = strchr(tok, '/');
    if (slash) *slash = '\0';
    if (inet_pton(AF_INET, tok, net.addr) == 1)
      net.len = 4;
    else if (inet_pton(AF_INET6, tok, net.addr) == 1)
      net.len = 16;
    char *end = NULL;
    long bits = slash ? strtol(slash + 1, &end, 10) : (long)net.len * 8;
    if (!net.len || (slash && (!*(slash + 1) || *end)) || bits < 0 || bits > (long)net.len * 8) {
      mq_error_set(err, MQ_INVALID_ARGUMENT, field, "'%.60s' is not an address or a net (10.0.0.0/8, ::1/128)", tok);
      free(copy);
      mq_netlist_free(*out);
      *out = NULL;
      return MQ_INVALID_ARGUMENT;
    }
    net.bits = (unsigned)bits;
    (*out)->v = mq_xrealloc((*out)->v, ((*out)->n + 1) * sizeof net);
    (*out)->v[(*out)->n++] = net;
  }
  free(copy);
  return MQ_OK;
}

void mq_netlist_free(mq_netlist_t *l) {
  if (!l) return;
  free(l->v);
  free(l);
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits) {
  unsigned full = bits / 8, rest = bits % 8;
  if (memcmp(a, b, full)) return false;
  if (!rest) return true;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

static bool in_list(const mq_netlist_t *l, const uint8_t *addr, size_t len) {
  for (size_t i = 0; l && i < l->n; i++)
    if (l->v[i].len == len && prefix_eq(l->v[i].addr, addr, l->v[i].bits)) return true;
  return false;
}

static bool special4(const uint8_t *a) {
  static const struct {
    uint8_t p[4];
    unsigned bits;
  } R[] = {
      {{0, 0, 0, 0}, 8},      {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10}, {{127, 0, 0, 0}, 8},
      {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},  {{192, 0, 0, 0}, 24},  {{192, 0, 2, 0}, 24},
      {{192, 88, 99, 0}, 24}, {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15}, {{198, 51, 100, 0}, 24},
      {{203, 0, 113, 0}, 24}, {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},
  };
  for (size_t i = 0; i < sizeof R / sizeof *R; i++)
    if (prefix_eq(a, R[i].p, R[i].bits)) return true;
  return false;
}

bool mq_addr_special(const uint8_t *a, size_t len) {
  if (len == 4) return special4(a);
  if (len != 16) return true;
  static const uint8_t zero[16] = {0}, mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},
                       nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (!memcmp(a, zero, 15) && (a[15] == 0 || a[15] == 1)) return true; /* :: and ::1 */
  if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) return special4(a + 12);
  if (!memcmp(a, zero, 12)) return true;                                         /* IPv4-compatible (deprecated) */
  if ((a[0] & 0xFE) == 0xFC) return true;                                        /* fc00::/7 unique local */
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return true;                        /* fe80::/10 link-local */
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return true;                        /* fec0::/10 site-local */
  if (a[0] == 0xFF) return true;                                                 /* multicast */
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8) return true; /* documentation */
  return false;
}

static bool loopback(const uint8_t *a, size_t len) {
  static const uint8_t one[16] = {[15] = 1};
  return len == 4 ? a[0] == 127 : !memcmp(a, one, 16);
}

typedef struct {
  char scheme[8];
  char host[256];
  long port;
} parts_t;

static mq_code_t split(mq_error_t *err, const char *field, const char *url, parts_t *p) {
  if (!url || !*url) return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is required");
  if (strlen(url) > MAX_URL) return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "at most %d characters", MAX_URL);
  for (const char *c = url; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7F)
      return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must not contain spaces or control characters");
  CURLU *u = curl_url();
  if (!u) mq_die("curl_url");
  mq_code_t rc = MQ_OK;
  char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL, *port = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, field, "is not an absolute URL (https://host/path)");
    goto done;
  }
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  if (!scheme || (strcasecmp(scheme, "https") && strcasecmp(scheme, "http"))) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be an https URL");
  } else if (user || password) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must not carry a user name or password");
  } else if (!host || !*host || strlen(host) >= sizeof p->host) {
    rc = mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must name a host");
  } else {
    snprintf(p->scheme, sizeof p->scheme, "%s", scheme);
    for (char *c = p->scheme; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    size_t hl = strlen(host);
    if (host[0] == '[' && host[hl - 1] == ']') /* an IPv6 literal: without its brackets */
      snprintf(p->host, sizeof p->host, "%.*s", (int)(hl - 2), host + 1);
    else
      snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port ? strtol(port, NULL, 10) : 443;
  }
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_free(password);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* The policy for one address: refused with a message, or MQ_OK. */
static mq_code_t judge(mq_error_t *err, mq_code_t code, const char *field, const parts_t *p, const uint8_t *a,
                       size_t len, const mq_netlist_t *allowed) {
  bool ok_net = in_list(allowed, a, len);
  if (mq_addr_special(a, len) && !ok_net)
    return mq_error_set(err, code, field,
                        "points at a private, loopback, link-local or reserved address; webhooks go to public "
                        "addresses only");
  if (strcmp(p->scheme, "https") && !(loopback(a, len) && ok_net))
    return mq_error_set(err, code, field, "must be an https URL");
  return MQ_OK;
}

static bool literal(const char *host, uint8_t *a, size_t *len) {
  if (inet_pton(AF_INET, host, a) == 1) return *len = 4, true;
  if (inet_pton(AF_INET6, host, a) == 1) return *len = 16, true;
  if (!strcasecmp(host, "localhost") || (strlen(host) > 10 && !strcasecmp(host + strlen(host) - 10, ".localhost"))) {
    a[0] = 127, a[1] = 0, a[2] = 0, a[3] = 1;
    return *len = 4, true;
  }
  return false;
}

mq_code_t mq_outbound_check_url(mq_error_t *err, const char *field, const char *url, const mq_netlist_t *allowed) {
  parts_t p;
  mq_code_t rc = split(err, field, url, &p);
  if (rc != MQ_OK) return rc;
  uint8_t a[16];
  size_t len = 0;
  if (literal(p.host, a, &len)) return judge(err, MQ_INVALID_ARGUMENT, field, &p, a, len, allowed);
  if (strcmp(p.scheme, "https")) return mq_error_set(err, MQ_INVALID_ARGUMENT, field, "must be an https URL");
  return MQ_OK;
}

mq_code_t mq_outbound_pin(const char *url, const mq_netlist_t *allowed, char *resolve, size_t n, mq_error_t *err) {
  parts_t p;
  mq_code_t rc = split(err, "url", url, &p);
  if (rc != MQ_OK) return rc;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  char port[16];
  snprintf(port, sizeof port, "%ld", p.port);
  int g = getaddrinfo(p.host, port, &hints, &res);
  if (g != 0 || !res) {
    if (res) freeaddrinfo(res);
    return mq_error_set(err, MQ_UNAVAILABLE, "url", "the host does not resolve (%s)", gai_strerror(g));
  }
  char first[INET6_ADDRSTRLEN + 2] = "";
  for (struct addrinfo *ai = res; ai && rc == MQ_OK; ai = ai->ai_next) {
    const uint8_t *a;
    size_t len;
    if (ai->ai_family == AF_INET) {
      a = (const uint8_t *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
      len = 4;
    } else if (ai->ai_family == AF_INET6) {
      a = (const uint8_t *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
      len = 16;
    } else {
      continue;
    }
    rc = judge(err, MQ_PERMISSION_DENIED, "url", &p, a, len, allowed);
    if (rc == MQ_OK && !first[0]) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(len == 4 ? AF_INET : AF_INET6, a, text, sizeof text);
      snprintf(first, sizeof first, len == 4 ? "%s" : "[%s]", text);
    }
  }
  freeaddrinfo(res);
  if (rc != MQ_OK) return rc;
  if (!first[0]) return mq_error_set(err, MQ_UNAVAILABLE, "url", "the host has no IPv4 or IPv6 address");
  snprintf(resolve, n, "%s:%ld:%s", p.host, p.port, first);
  return MQ_OK;
}

void mq_url_host(const char *url, char *out, size_t n) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  snprintf(out, n, "%.*s", (int)strcspn(p, "/?#"), p);
}
