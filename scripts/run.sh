#!/usr/bin/env bash
# run.sh — THE run command (README): installs everything on a fresh machine,
# builds Marquee (build/, optimised), starts the local stack (FerretDB,
# Kafka, mailpit and stripe-mock on loopback), then marquee-server and the marquee-audit,
# marquee-notifier, marquee-webhooks, marquee-indexer (search) and marquee-analytics consumers in the background, waits until the server reports SERVING, and prints the
# endpoints and example calls. Demo data is loaded by scripts/demo-data.sh
# once domain services exist (none before the catalog issue).
#   scripts/run.sh          start (idempotent)
#   scripts/run.sh stop     stop Marquee's processes (the stack keeps running)
#   scripts/run.sh status   show what runs
# Env: MARQUEE_* keys as documented in README (defaults: gRPC 127.0.0.1:50051,
# HTTP 127.0.0.1:9464).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
stack=${MARQUEE_STACK_DIR:-$repo/.stack}
run=$stack/run
logs=$stack/logs
mkdir -p "$run" "$logs"

alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

stop_proc() {
  local name=$1
  if alive "$name"; then
    kill -TERM "$(cat "$run/$name.pid")"
    for _ in $(seq 1 150); do alive "$name" || break; sleep 0.1; done
    alive "$name" && kill -KILL "$(cat "$run/$name.pid")"
    echo "stopped $name"
  fi
  rm -f "$run/$name.pid"
}

case "${1:-start}" in
  stop)
    stop_proc marquee-analytics
    stop_proc marquee-indexer
    stop_proc marquee-webhooks
    stop_proc marquee-notifier
    stop_proc marquee-audit
    stop_proc marquee-server
    exit 0 ;;
  status)
    for p in marquee-server marquee-audit marquee-notifier marquee-webhooks marquee-indexer marquee-analytics; do
      if alive "$p"; then echo "$p: running (pid $(cat "$run/$p.pid"))"; else echo "$p: stopped"; fi
    done
    bash scripts/stack.sh status
    exit 0 ;;
  start) ;;
  *) echo "usage: scripts/run.sh [start|stop|status]" >&2; exit 2 ;;
esac

bash scripts/stack.sh install
eval "$(bash scripts/stack.sh env)"
echo "== build (build/, release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build marquee-server marquee-audit marquee-notifier marquee-webhooks marquee-indexer marquee-analytics marquee
bash scripts/stack.sh start

export MARQUEE_LISTEN=${MARQUEE_LISTEN:-127.0.0.1:50051}
export MARQUEE_HTTP_LISTEN=${MARQUEE_HTTP_LISTEN:-127.0.0.1:9464}
export MARQUEE_DIAGNOSTICS=${MARQUEE_DIAGNOSTICS:-1}
# A development signing key, generated once and kept under .stack (never in git).
if [ -z "${MARQUEE_JWT_KEYS:-}" ]; then
  [ -f "$stack/dev-jwt-keys" ] || { echo "dev:$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" >"$stack/dev-jwt-keys"; chmod 600 "$stack/dev-jwt-keys"; }
  MARQUEE_JWT_KEYS=$(cat "$stack/dev-jwt-keys")
  export MARQUEE_JWT_KEYS
fi
# A development ticket-signing key (Ed25519 seed), so ticket codes survive restarts.
if [ -z "${MARQUEE_TICKET_KEYS:-}" ]; then
  [ -f "$stack/dev-ticket-keys" ] || { echo "dev:$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" >"$stack/dev-ticket-keys"; chmod 600 "$stack/dev-ticket-keys"; }
  MARQUEE_TICKET_KEYS=$(cat "$stack/dev-ticket-keys")
  export MARQUEE_TICKET_KEYS
fi
# The notifier's development key pair: the server seals link tokens in events to
# its public half; the secret half (for the notifier) stays in this file.
if [ -z "${MARQUEE_NOTIFY_KEYS:-}" ]; then
  if [ ! -f "$stack/dev-notify-keys" ]; then
    (umask 077 && build/marquee keygen notify dev >"$stack/dev-notify-keys")
  fi
  MARQUEE_NOTIFY_KEYS=$(sed -n 's/^MARQUEE_NOTIFY_KEYS=//p' "$stack/dev-notify-keys")
  export MARQUEE_NOTIFY_KEYS
fi
# Payments against stripe-mock (Stripe's API mock on loopback): a test-mode key
# and a development webhook signing secret, kept under .stack like the others.
if [ -z "${MARQUEE_STRIPE_SECRET_KEY:-}" ]; then
  export MARQUEE_STRIPE_SECRET_KEY=sk_test_MarqueeLocalDev
  export MARQUEE_STRIPE_API_BASE=${MARQUEE_STRIPE_API_BASE:-$MARQUEE_STACK_STRIPE}
fi
if [ -z "${MARQUEE_STRIPE_WEBHOOK_SECRET:-}" ]; then
  [ -f "$stack/dev-stripe-webhook-secret" ] || { echo "whsec_$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')" >"$stack/dev-stripe-webhook-secret"; chmod 600 "$stack/dev-stripe-webhook-secret"; }
  MARQUEE_STRIPE_WEBHOOK_SECRET=$(cat "$stack/dev-stripe-webhook-secret")
  export MARQUEE_STRIPE_WEBHOOK_SECRET
fi
# Display prices in other currencies: sample rates (scripts/demo/fx-rates.txt).
export MARQUEE_FX_RATES_FILE=${MARQUEE_FX_RATES_FILE:-$repo/scripts/demo/fx-rates.txt}
# This host's search index (marquee-indexer writes it, the server reads it).
mkdir -p "$stack/search"
export MARQUEE_SEARCH_INDEX=${MARQUEE_SEARCH_INDEX:-$stack/search/index.sqlite}
# This host's copy of the discovery index: a restart catches up from it.
mkdir -p "$stack/discovery"
# Locally, webhook endpoints may point at this machine (a receiver you run); production allows public addresses only.
export MARQUEE_WEBHOOK_ALLOWED_NETS=${MARQUEE_WEBHOOK_ALLOWED_NETS:-127.0.0.0/8}
export MARQUEE_DISCOVERY_SNAPSHOT=${MARQUEE_DISCOVERY_SNAPSHOT:-$stack/discovery/${MARQUEE_MONGO_DB:-marquee}.snap}

if ! alive marquee-server; then
  nohup setsid build/marquee-server >"$logs/marquee-server.out" 2>"$logs/marquee-server.log" </dev/null &
  echo $! >"$run/marquee-server.pid"
fi
if ! alive marquee-audit; then
  MARQUEE_CONSUMER_HTTP_LISTEN=${MARQUEE_CONSUMER_HTTP_LISTEN:-127.0.0.1:9465} \
    nohup setsid build/marquee-audit >/dev/null 2>"$logs/marquee-audit.log" </dev/null &
  echo $! >"$run/marquee-audit.pid"
fi
if ! alive marquee-notifier; then
  # the secret half of the dev notifier key opens the link tokens sealed in events
  secret=${MARQUEE_NOTIFY_SECRET_KEYS:-$(sed -n 's/^MARQUEE_NOTIFY_SECRET_KEYS=//p' "$stack/dev-notify-keys" 2>/dev/null)}
  MARQUEE_NOTIFY_SECRET_KEYS=$secret MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:9466 \
    nohup setsid build/marquee-notifier >/dev/null 2>"$logs/marquee-notifier.log" </dev/null &
  echo $! >"$run/marquee-notifier.pid"
fi
# Webhooks: organizations' endpoints, signed and retried (docs/WEBHOOKS.md).
if ! alive marquee-webhooks; then
  MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:9469 \
    nohup setsid build/marquee-webhooks >/dev/null 2>"$logs/marquee-webhooks.log" </dev/null &
  echo $! >"$run/marquee-webhooks.pid"
fi

if ! alive marquee-indexer; then
  MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:9467 \
    nohup setsid build/marquee-indexer >/dev/null 2>"$logs/marquee-indexer.log" </dev/null &
  echo $! >"$run/marquee-indexer.pid"
fi
# Sales aggregates for AnalyticsService (one consumer group for the platform).
if ! alive marquee-analytics; then
  MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:9468 \
    nohup setsid build/marquee-analytics >/dev/null 2>"$logs/marquee-analytics.log" </dev/null &
  echo $! >"$run/marquee-analytics.pid"
fi

echo "== waiting for marquee-server to report SERVING"
export MARQUEE_CLI_TARGET=$MARQUEE_LISTEN
ok=
for _ in $(seq 1 300); do
  if build/marquee health >/dev/null 2>&1; then ok=1; break; fi
  alive marquee-server || break
  sleep 0.2
done
if [ -z "$ok" ]; then
  echo "marquee-server did not become ready; last log lines:" >&2
  tail -n 40 "$logs/marquee-server.log" >&2
  exit 1
fi
[ -x scripts/demo-data.sh ] && bash scripts/demo-data.sh

cat <<TXT

Marquee is running.
  gRPC        $MARQUEE_LISTEN   (plaintext; reflection on)
  HTTP        http://$MARQUEE_HTTP_LISTEN/metrics  /healthz  /readyz
  MongoDB     $MARQUEE_MONGO_URI  (FerretDB)
  Kafka       $MARQUEE_KAFKA_BROKERS
  Mail        http://$MARQUEE_STACK_MAILPIT   (mailpit: every message Marquee sends, via $MARQUEE_SMTP_URL)
  Payments    Stripe API at $MARQUEE_STRIPE_API_BASE (stripe-mock); webhooks POST http://$MARQUEE_HTTP_LISTEN/webhooks/stripe
              (signing secret in $stack/dev-stripe-webhook-secret)
  Webhooks    build/marquee webhooks add ORG_ID URL TYPES   (your systems, signed; loopback allowed locally; docs/WEBHOOKS.md)
  Logs        $logs/

Try:
  $stack/bin/grpcurl -plaintext $MARQUEE_LISTEN list
  $stack/bin/grpcurl -plaintext -d '{"payload":"aGk="}' $MARQUEE_LISTEN marquee.system.v1.SystemService/Ping
  build/marquee version
  build/marquee health

Stop: scripts/run.sh stop   (and scripts/stack.sh stop for FerretDB, Kafka, mailpit and stripe-mock)
TXT
