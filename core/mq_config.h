/*
 * mq_config.h — every configuration key of every Marquee process, in one table.
 *
 * Sources, later wins: built-in default, the file named by MARQUEE_CONFIG
 * (lines "KEY=VALUE", '#' comments, blank lines), the environment. Unknown
 * MARQUEE_* keys are refused (a typo must not silently fall back to a
 * default). SECRET values are never printed (mq_config_dump shows "<set>").
 * `marquee-server --config-help` prints the table as the Markdown in README.
 * XX(type, field, env name, default, min, max, doc); min/max bound INTs.
 */
#ifndef MQ_CONFIG_H
#define MQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/mq_error.h"

#define MQ_CONFIG_KEYS(XX)                                                                                             \
  XX(STR, listen, "MARQUEE_LISTEN", "127.0.0.1:50051", 0, 0,                                                           \
     "gRPC listen address host:port (port 0 picks a free one)")                                                        \
  XX(STR, http_listen, "MARQUEE_HTTP_LISTEN", "127.0.0.1:9464", 0, 0,                                                  \
     "side HTTP address for /metrics, /healthz, /readyz and /media/{id} (empty disables)")                             \
  XX(INT, http_threads, "MARQUEE_HTTP_THREADS", "16", 1, 256,                                                          \
     "side HTTP threads (payment webhooks, tickets and receipts wait on the store in them)")                           \
  XX(STR, mongo_uri, "MARQUEE_MONGO_URI", "mongodb://127.0.0.1:27017/", 0, 0,                                          \
     "MongoDB connection string; serverSelectionTimeoutMS/heartbeatFrequencyMS default to 2000/1000 if absent")        \
  XX(STR, mongo_db, "MARQUEE_MONGO_DB", "marquee", 0, 0, "database name")                                              \
  XX(INT, mongo_pool_max, "MARQUEE_MONGO_POOL_MAX", "32", 1, 1024, "maximum pooled MongoDB connections")               \
  XX(STR, kafka_brokers, "MARQUEE_KAFKA_BROKERS", "127.0.0.1:9092", 0, 0, "Kafka bootstrap servers")                   \
  XX(INT, kafka_partitions, "MARQUEE_KAFKA_PARTITIONS", "3", 1, 1024, "partitions of topics Marquee creates")          \
  XX(INT, kafka_replication, "MARQUEE_KAFKA_REPLICATION", "1", 1, 16, "replication factor of created topics")          \
  XX(INT, cq_threads, "MARQUEE_CQ_THREADS", "0", 0, 64,                                                                \
     "completion-queue threads, one queue each; 0 = one per two CPU cores (at least 1)")                               \
  XX(INT, workers, "MARQUEE_WORKERS", "64", 1, 1024, "worker-pool threads for blocking handler work")                  \
  XX(INT, worker_queue, "MARQUEE_WORKER_QUEUE", "4096", 1, 1000000,                                                    \
     "tasks that may wait for a worker; beyond it calls fail UNAVAILABLE (overloaded)")                                \
  XX(INT, max_recv_bytes, "MARQUEE_MAX_RECV_BYTES", "4194304", 1024, 268435456,                                        \
     "largest request message; larger ones fail RESOURCE_EXHAUSTED")                                                   \
  XX(INT, max_send_bytes, "MARQUEE_MAX_SEND_BYTES", "16777216", 1024, 268435456, "largest response message")           \
  XX(INT, stream_queue, "MARQUEE_STREAM_QUEUE", "64", 1, 100000,                                                       \
     "messages buffered per stream before a sender waits (backpressure)")                                              \
  XX(INT, default_deadline_ms, "MARQUEE_DEFAULT_DEADLINE_MS", "30000", 100, 86400000,                                  \
     "time budget handlers get when the client sent no deadline")                                                      \
  XX(INT, max_concurrent_streams, "MARQUEE_MAX_CONCURRENT_STREAMS", "1000", 1, 1000000,                                \
     "HTTP/2 streams per connection")                                                                                  \
  XX(INT, keepalive_time_ms, "MARQUEE_KEEPALIVE_TIME_MS", "60000", 1000, 86400000, "server keepalive ping interval")   \
  XX(INT, keepalive_timeout_ms, "MARQUEE_KEEPALIVE_TIMEOUT_MS", "20000", 100, 600000,                                  \
     "close a connection whose keepalive ping is not answered in this time")                                           \
  XX(INT, shutdown_grace_ms, "MARQUEE_SHUTDOWN_GRACE_MS", "10000", 0, 600000,                                          \
     "on SIGTERM/SIGINT, time in-flight calls get to finish before they are cancelled")                                \
  XX(STR, tls_cert, "MARQUEE_TLS_CERT", "", 0, 0, "PEM certificate chain file; with MARQUEE_TLS_KEY enables TLS")      \
  XX(STR, tls_key, "MARQUEE_TLS_KEY", "", 0, 0, "PEM private key file")                                                \
  XX(STR, log_level, "MARQUEE_LOG_LEVEL", "info", 0, 0, "debug, info, warn or error")                                  \
  XX(STR, access_log, "MARQUEE_ACCESS_LOG", "all", 0, 0, "per-call log lines: all, errors or off")                     \
  XX(SECRET, jwt_keys, "MARQUEE_JWT_KEYS", "", 0, 0,                                                                   \
     "HS256 access-token keys as kid:secret[,kid:secret...] (secret >= 32 bytes); empty: every token is refused")      \
  XX(STR, jwt_issuer, "MARQUEE_JWT_ISSUER", "marquee", 0, 0, "required iss claim of access tokens")                    \
  XX(STR, jwt_audience, "MARQUEE_JWT_AUDIENCE", "marquee-api", 0, 0, "required aud claim of access tokens")            \
  XX(INT, access_token_ttl_s, "MARQUEE_ACCESS_TOKEN_TTL_S", "900", 60, 86400, "lifetime of access tokens (s)")         \
  XX(INT, refresh_token_ttl_s, "MARQUEE_REFRESH_TOKEN_TTL_S", "2592000", 3600, 31536000,                               \
     "lifetime of a refresh token (s); each use issues a new one")                                                     \
  XX(INT, email_token_ttl_s, "MARQUEE_EMAIL_TOKEN_TTL_S", "86400", 300, 2592000,                                       \
     "lifetime of an e-mail verification link (s)")                                                                    \
  XX(INT, reset_token_ttl_s, "MARQUEE_RESET_TOKEN_TTL_S", "3600", 300, 86400, "lifetime of a password-reset link (s)") \
  XX(INT, signin_failure_limit, "MARQUEE_SIGNIN_FAILURE_LIMIT", "5", 1, 1000,                                          \
     "failed sign-ins per account in 15 min before lockout (30 s, doubling per further failure, max 1 h)")             \
  XX(INT, signin_address_limit, "MARQUEE_SIGNIN_ADDRESS_LIMIT", "100", 1, 1000000,                                     \
     "failed sign-ins per client address in 15 min")                                                                   \
  XX(INT, signup_address_limit, "MARQUEE_SIGNUP_ADDRESS_LIMIT", "20", 1, 1000000,                                      \
     "sign-up attempts per client address per hour")                                                                   \
  XX(INT, reset_account_limit, "MARQUEE_RESET_ACCOUNT_LIMIT", "3", 1, 1000,                                            \
     "password-reset requests per e-mail per hour (also limits 10x per client address)")                               \
  XX(BOOL, trust_forwarded_for, "MARQUEE_TRUST_FORWARDED_FOR", "0", 0, 1,                                              \
     "take the client address from x-forwarded-for (only behind a proxy that sets it)")                                \
  XX(INT, argon2_memory_kib, "MARQUEE_ARGON2_MEMORY_KIB", "19456", 1024, 4194304,                                      \
     "Argon2id memory per password hash (KiB); OWASP minimum 19456")                                                   \
  XX(INT, argon2_iterations, "MARQUEE_ARGON2_ITERATIONS", "2", 1, 100, "Argon2id passes per password hash")            \
  XX(STR, oauth_providers, "MARQUEE_OAUTH_PROVIDERS", "", 0, 0,                                                        \
     "JSON file naming the OAuth/OIDC sign-in providers and allowed redirect URIs (docs/OAUTH.md); empty: none")       \
  XX(INT, oauth_flow_ttl_s, "MARQUEE_OAUTH_FLOW_TTL_S", "600", 60, 3600,                                               \
     "time between StartOAuth and CompleteOAuth (s)")                                                                  \
  XX(INT, oauth_http_timeout_ms, "MARQUEE_OAUTH_HTTP_TIMEOUT_MS", "5000", 100, 60000,                                  \
     "timeout of each call to an identity provider (ms)")                                                              \
  XX(INT, invitation_ttl_s, "MARQUEE_INVITATION_TTL_S", "604800", 3600, 7776000,                                       \
     "lifetime of an organization invitation (s)")                                                                     \
  XX(INT, media_max_bytes, "MARQUEE_MEDIA_MAX_BYTES", "10485760", 1024, 1073741824,                                    \
     "largest image UploadImage accepts (bytes)")                                                                      \
  XX(INT, media_max_pixels, "MARQUEE_MEDIA_MAX_PIXELS", "40000000", 1, 100000000,                                      \
     "most pixels (width x height) of an uploaded image; each side is also at most 10000")                             \
  XX(INT, cache_ttl_ms, "MARQUEE_CACHE_TTL_MS", "10000", 0, 3600000,                                                   \
     "longest a cached read (profiles) may lag a write made by another instance when events cannot arrive; 0 "         \
     "disables")                                                                                                       \
  XX(INT, cache_entries, "MARQUEE_CACHE_ENTRIES", "100000", 64, 100000000, "entries per in-process read cache")        \
  XX(BOOL, discovery_index, "MARQUEE_DISCOVERY_INDEX", "1", 0, 1,                                                      \
     "answer public ListEvents from the in-process index of published events (0: query the store)")                    \
  XX(STR, discovery_snapshot, "MARQUEE_DISCOVERY_SNAPSHOT", "", 0, 0,                                                  \
     "file where this host keeps a copy of the discovery index, so that a restart catches up instead of reading "      \
     "every published event (empty: none)")                                                                            \
  XX(STR, search_index, "MARQUEE_SEARCH_INDEX", "marquee-search.sqlite", 0, 0,                                         \
     "this host's search index file: marquee-indexer writes it, the server's SearchService reads it (empty: no "       \
     "search)")                                                                                                        \
  XX(INT, search_readers, "MARQUEE_SEARCH_READERS", "8", 1, 256, "read connections to the search index")               \
  XX(INT, search_cache_ms, "MARQUEE_SEARCH_CACHE_MS", "500", 0, 60000,                                                 \
     "how long a SearchEvents or Suggest answer is reused for the same request (0: never)")                            \
  XX(INT, search_max_staleness_s, "MARQUEE_SEARCH_MAX_STALENESS_S", "60", 1, 86400,                                    \
     "health reports search degraded when the index has not been caught up for this long")                             \
  XX(BOOL, diagnostics, "MARQUEE_DIAGNOSTICS", "0", 0, 1,                                                              \
     "serve marquee.system.v1.DiagnosticsService (tests and the local stack; keep off in production)")                 \
  XX(INT, outbox_poll_ms, "MARQUEE_OUTBOX_POLL_MS", "250", 10, 60000,                                                  \
     "how often the relay re-reads the outbox journal for events that could not go out at once")                       \
  XX(INT, outbox_sweep_s, "MARQUEE_OUTBOX_SWEEP_S", "300", 1, 86400,                                                   \
     "how often the relay re-checks recent events for any a crash left unpublished (also at start)")                   \
  XX(INT, hold_ttl_s, "MARQUEE_HOLD_TTL_S", "900", 5, 86400, "how long a hold reserves its tickets before it expires") \
  XX(INT, hold_sweep_ms, "MARQUEE_HOLD_SWEEP_MS", "5000", 50, 600000,                                                  \
     "how often expired holds are ended and unfinished booking decisions completed")                                   \
  XX(INT, payment_window_s, "MARQUEE_PAYMENT_WINDOW_S", "1800", 10, 86400,                                             \
     "how long a hold in payment may wait for the payment's outcome before it is released")                            \
  XX(STR, tax_rates_file, "MARQUEE_TAX_RATES_FILE", "", 0, 0,                                                          \
     "bookings: the sales-tax table (format in docs/PAYMENTS.md); empty: the built-in one. A bad row stops start-up")  \
  XX(STR, fx_rates_file, "MARQUEE_FX_RATES_FILE", "", 0, 0,                                                            \
     "exchange rates for display prices only (format in docs/PAYMENTS.md); a bad row stops start-up")                  \
  XX(STR, fx_rates_url, "MARQUEE_FX_RATES_URL", "", 0, 0,                                                              \
     "exchange rates fetched over HTTPS (same format), every MARQUEE_FX_REFRESH_S; a bad answer keeps the last table") \
  XX(INT, fx_refresh_s, "MARQUEE_FX_REFRESH_S", "3600", 60, 86400, "how often MARQUEE_FX_RATES_URL is fetched")        \
  XX(STR, payment_routes, "MARQUEE_PAYMENT_ROUTES", "*=stripe,manual", 0, 0,                                           \
     "payments: gateways per currency, in order of preference: CUR=gw,gw;*=gw (a paid hold goes to the first that "    \
     "is configured, takes the currency and is not open-circuited; free holds always use the free gateway)")           \
  XX(INT, payment_gateway_timeout_ms, "MARQUEE_PAYMENT_GATEWAY_TIMEOUT_MS", "10000", 100, 120000,                      \
     "payments: total time one call to a gateway may take")                                                            \
  XX(INT, payment_gateway_concurrency, "MARQUEE_PAYMENT_GATEWAY_CONCURRENCY", "32", 1, 1024,                           \
     "payments: calls in flight to one gateway (the bulkhead); beyond it the next gateway is tried")                   \
  XX(INT, payment_breaker_failures, "MARQUEE_PAYMENT_BREAKER_FAILURES", "5", 1, 1000,                                  \
     "payments: consecutive failures (unreachable, timeout, 5xx, 429) that open a gateway's circuit breaker")          \
  XX(INT, payment_breaker_open_ms, "MARQUEE_PAYMENT_BREAKER_OPEN_MS", "30000", 100, 3600000,                           \
     "payments: how long an open breaker refuses calls before one probe call is let through (half-open)")              \
  XX(INT, manual_payment_window_s, "MARQUEE_MANUAL_PAYMENT_WINDOW_S", "259200", 60, 2592000,                           \
     "payments: how long a manual payment (bank transfer, at the door) may wait to be marked received")                \
  XX(STR, manual_payment_instructions, "MARQUEE_MANUAL_PAYMENT_INSTRUCTIONS",                                          \
     "Pay {amount} by bank transfer quoting {reference}, or at the door.", 0, 0,                                       \
     "payments: what a manual payment's buyer is told ({amount} and {reference} are filled in)")                       \
  XX(SECRET, stripe_secret_key, "MARQUEE_STRIPE_SECRET_KEY", "", 0, 0,                                                 \
     "payments: Stripe's secret API key (sk_…); empty: the stripe gateway is off")                                     \
  XX(STR, stripe_api_base, "MARQUEE_STRIPE_API_BASE", "https://api.stripe.com", 0, 0,                                  \
     "payments: Stripe's API (http allowed to loopback only: stripe-mock)")                                            \
  XX(SECRET, stripe_webhook_secret, "MARQUEE_STRIPE_WEBHOOK_SECRET", "", 0, 0,                                         \
     "payments: the signing secret (whsec_…) of the /webhooks/stripe endpoint; empty: webhooks are refused")           \
  XX(INT, stripe_webhook_tolerance_s, "MARQUEE_STRIPE_WEBHOOK_TOLERANCE_S", "300", 1, 86400,                           \
     "payments: how far a webhook's signed timestamp may be from now")                                                 \
  XX(STR, notify_keys, "MARQUEE_NOTIFY_KEYS", "", 0, 0,                                                                \
     "the notifier's public keys kid:key,... (X25519, base64url; the first seals link tokens in events; marquee "      \
     "keygen notify); empty: events carry no link token")                                                              \
  XX(SECRET, notify_secret_keys, "MARQUEE_NOTIFY_SECRET_KEYS", "", 0, 0,                                               \
     "notifier: its secret keys kid:key,... (X25519, base64url), which open the link tokens sealed in events")         \
  XX(STR, smtp_url, "MARQUEE_SMTP_URL", "smtp://127.0.0.1:1025", 0, 0,                                                 \
     "notifier: the SMTP server, smtp://host:port (STARTTLS when offered) or smtps://host:port")                       \
  XX(STR, smtp_user, "MARQUEE_SMTP_USER", "", 0, 0, "notifier: SMTP AUTH user (with MARQUEE_SMTP_PASSWORD)")           \
  XX(SECRET, smtp_password, "MARQUEE_SMTP_PASSWORD", "", 0, 0, "notifier: SMTP AUTH password")                         \
  XX(BOOL, smtp_require_tls, "MARQUEE_SMTP_REQUIRE_TLS", "0", 0, 1,                                                    \
     "notifier: refuse to send mail over a connection without TLS")                                                    \
  XX(STR, mail_from_address, "MARQUEE_MAIL_FROM_ADDRESS", "no-reply@marquee.localhost", 0, 0,                          \
     "notifier: the address mail comes from")                                                                          \
  XX(STR, mail_from_name, "MARQUEE_MAIL_FROM_NAME", "Marquee", 0, 0, "notifier: the name mail comes from")             \
  XX(STR, link_base_url, "MARQUEE_LINK_BASE_URL", "http://127.0.0.1:5173", 0, 0,                                       \
     "notifier: where links in messages point (the web app): <base>/verify-email?token=…")                             \
  XX(INT, reminder_hours, "MARQUEE_REMINDER_HOURS", "24", 1, 336,                                                      \
     "notifier: how long before an event its ticket holders are reminded")                                             \
  XX(INT, reminder_sweep_ms, "MARQUEE_REMINDER_SWEEP_MS", "60000", 100, 3600000,                                       \
     "notifier: how often due reminders are looked for")                                                               \
  XX(STR, webhook_allowed_nets, "MARQUEE_WEBHOOK_ALLOWED_NETS", "", 0, 0,                                              \
     "webhooks: private or loopback nets endpoints may point at (10.2.0.0/16,127.0.0.0/8; http only to loopback); "    \
     "empty: public addresses only")                                                                                   \
  XX(INT, webhook_workers, "MARQUEE_WEBHOOK_WORKERS", "4", 1, 64, "webhooks: deliveries sent at once by one process")  \
  XX(INT, webhook_timeout_ms, "MARQUEE_WEBHOOK_TIMEOUT_MS", "10000", 100, 60000,                                       \
     "webhooks: how long an endpoint has to answer an attempt")                                                        \
  XX(INT, webhook_backoff_ms, "MARQUEE_WEBHOOK_BACKOFF_MS", "30000", 1, 3600000,                                       \
     "webhooks: the delay before the first retry; doubles per attempt (with jitter) up to an hour")                    \
  XX(INT, webhook_retry_hours, "MARQUEE_WEBHOOK_RETRY_HOURS", "24", 1, 168,                                            \
     "webhooks: how long a failing delivery is retried before it is marked failed")                                    \
  XX(INT, webhook_breaker_failures, "MARQUEE_WEBHOOK_BREAKER_FAILURES", "5", 1, 1000,                                  \
     "webhooks: failed attempts in a row after which an endpoint is skipped for a while")                              \
  XX(INT, webhook_breaker_open_ms, "MARQUEE_WEBHOOK_BREAKER_OPEN_MS", "60000", 10, 3600000,                            \
     "webhooks: how long an endpoint whose breaker opened is skipped before one probe attempt")                        \
  XX(SECRET, ticket_keys, "MARQUEE_TICKET_KEYS", "", 0, 0,                                                             \
     "ticket-code signing keys kid:seed,... (Ed25519 seed, base64url; first signs); empty: a per-process key")         \
  XX(INT, health_interval_ms, "MARQUEE_HEALTH_INTERVAL_MS", "1000", 100, 60000,                                        \
     "how often MongoDB and Kafka readiness are probed")                                                               \
  XX(STR, instance_id, "MARQUEE_INSTANCE_ID", "", 0, 0, "name of this process in logs and events (default host-pid)")  \
  XX(INT, consumer_max_attempts, "MARQUEE_CONSUMER_MAX_ATTEMPTS", "5", 1, 1000,                                        \
     "consumer: attempts for a failing (non-transient) event before it goes to the dead-letter topic")                 \
  XX(STR, consumer_group, "MARQUEE_CONSUMER_GROUP", "", 0, 0, "consumer: Kafka group id (default marquee-<consumer>)") \
  XX(INT, consumer_skip_before_ms, "MARQUEE_CONSUMER_SKIP_BEFORE_MS", "0", 0, 4102444800000LL,                         \
     "consumer: pass over messages produced before this unix time (ms) without handling them; 0: handle all")          \
  XX(STR, consumer_http_listen, "MARQUEE_CONSUMER_HTTP_LISTEN", "127.0.0.1:0", 0, 0,                                   \
     "consumer: its HTTP port (/metrics with the lag, /healthz); port 0 picks one (on the READY line); empty: none")   \
  XX(BOOL, page_views, "MARQUEE_PAGE_VIEWS", "1", 0, 1,                                                                \
     "count page views: GetEvent by anyone outside the organization produces analytics.EventViewed to Kafka")          \
  XX(INT, analytics_dedupe_s, "MARQUEE_ANALYTICS_DEDUPE_S", "3600", 60, 604800,                                        \
     "marquee-analytics: seconds of event time within which a relay duplicate (same event id) is recognised")

typedef struct mq_config {
#define MQ_XX_FIELD_STR(f) char *f;
#define MQ_XX_FIELD_SECRET(f) char *f;
#define MQ_XX_FIELD_INT(f) int64_t f;
#define MQ_XX_FIELD_BOOL(f) bool f;
#define MQ_XX_FIELD(type, f, env, def, lo, hi, doc) MQ_XX_FIELD_##type(f)
  MQ_CONFIG_KEYS(MQ_XX_FIELD)
#undef MQ_XX_FIELD
} mq_config_t;

/* Loads defaults, then the MARQUEE_CONFIG file if named in `envp`, then
 * `envp` (a NULL-terminated "KEY=VALUE" array, normally `environ`).
 * On failure returns INVALID_ARGUMENT naming the key; `cfg` is then freed.
 * On success the caller owns cfg's strings: release with mq_config_free. */
mq_code_t mq_config_load(mq_config_t *cfg, char *const *envp, mq_error_t *err);
void mq_config_free(mq_config_t *cfg);
/* Process start-up shared by every executable: loads the configuration from
 * `envp`, applies MARQUEE_LOG_LEVEL, names the process in logs (`name`,
 * instance from MARQUEE_INSTANCE_ID) and starts the async logger. On a bad
 * configuration prints "<name>: configuration: KEY: reason" to stderr and
 * returns false (exit with 2). On success the caller owns cfg
 * (mq_config_free) and calls mq_log_stop() before exiting. */
bool mq_config_start(const char *name, mq_config_t *cfg, char *const *envp);

/* Markdown table of all keys (README). */
void mq_config_print_doc(FILE *out);
/* Effective values as one JSON log line; secrets shown as "<set>"/"". */
void mq_config_log(const mq_config_t *cfg);

#endif
