#!/usr/bin/env bash
# demo.sh — the demo data that ./scripts/run.sh seeds (scripts/demo-data.sh,
# through the gRPC API with Python grpcio) still loads against the current
# API, is idempotent, and gives discovery something to show: 20 published
# events in several currencies, visible to an anonymous ListEvents.
# Usage: demo.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$1
mq_start_server "$build"
trap 'mq_stop_server || true' EXIT
fail=0
export MARQUEE_LISTEN=$MQ_ADDR MARQUEE_JWT_KEYS="itest:integration-test-secret-0123456789abcdef"
out=$(bash "$MQ_SRC/scripts/demo-data.sh" 2>&1) || { echo "seeding failed: $out"; fail=1; }
grep -q "20 events" <<<"$out" || { echo "unexpected seeding output: $out"; fail=1; }
again=$(bash "$MQ_SRC/scripts/demo-data.sh" 2>&1) || fail=1
grep -q "already there" <<<"$again" || { echo "second run was not a no-op: $again"; fail=1; }
n=$("$MQ_STACK/bin/grpcurl" -plaintext -d '{"page_size":100}' "$MQ_ADDR" \
  marquee.catalog.v1.EventService/ListEvents | grep -c '"eventId"' || true)
[ "$n" = 20 ] || { echo "anonymous ListEvents shows $n events, expected 20"; fail=1; }
cli_events=$("$build/marquee" --target "$MQ_ADDR" events list | wc -l) || fail=1
[ "$cli_events" = 20 ] || { echo "marquee events list shows $cli_events lines, expected 20"; fail=1; }
listed=$("$build/marquee" --target "$MQ_ADDR" categories 2>&1) || fail=1
grep -q "concerts" <<<"$listed" || { echo "categories missing: $listed"; fail=1; }
trap - EXIT
mq_stop_server || fail=1
[ "$fail" = 0 ] && echo "demo: ok" || echo "demo: FAILED"
[ "$fail" = 0 ]
