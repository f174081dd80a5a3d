#!/usr/bin/env bash
# metrics.sh — the /metrics exposition is valid Prometheus text, checked the
# way `promtool check metrics` checks it (marquee-promlint: strict parse +
# the Prometheus client library's linter), after real calls; it carries the
# standard gRPC server and process families and marquee_build_info; and the
# checker itself refuses a broken exposition (duplicate TYPE, a counter
# without _total). Usage: metrics.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$1
command -v marquee-promlint >/dev/null || { echo "marquee-promlint missing: run scripts/stack.sh install" >&2; exit 1; }
command -v grpcurl >/dev/null || { echo "grpcurl missing: run scripts/stack.sh install" >&2; exit 1; }
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# the checker is not a rubber stamp
printf '# TYPE x_total counter\nx_total 1\n# TYPE x_total counter\nx_total 2\n' | marquee-promlint >/dev/null &&
  bad "checker accepted a duplicate TYPE" || ok "checker refuses a duplicate TYPE"
printf '# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n' | marquee-promlint >/dev/null &&
  bad "checker accepted a counter without _total" || ok "checker refuses a counter without _total"

mq_start_server "$build"
trap 'mq_stop_server || true' EXIT
G=(grpcurl -plaintext -max-time 10)
"${G[@]}" -d '{"payload":"aGk="}' "$MQ_ADDR" marquee.system.v1.SystemService/Ping >/dev/null
"${G[@]}" -d '{"message":"x","delay_ms":999999}' "$MQ_ADDR" marquee.system.v1.DiagnosticsService/Echo >/dev/null 2>&1 || true
out=$(curl -sf "http://$MQ_HTTP/metrics")

if lint=$(marquee-promlint <<<"$out"); then ok "promlint: $lint"; else bad "promlint found problems:"; echo "$lint"; fi
want() { # name, fixed string expected in the exposition
  if grep -qF -- "$2" <<<"$out"; then ok "$1"; else bad "$1: wanted '$2'"; fi
}
want "build info" 'marquee_build_info{version="'
want "process CPU" '# TYPE process_cpu_seconds_total counter'
want "process RSS" 'process_resident_memory_bytes '
want "process fds" 'process_open_fds '
want "process start time" 'process_start_time_seconds '
want "grpc_server_started_total" 'grpc_server_started_total{grpc_service="marquee.system.v1.SystemService",grpc_method="Ping",grpc_type="unary"} 1'
want "grpc_server_handled_total OK" 'grpc_server_handled_total{grpc_service="marquee.system.v1.SystemService",grpc_method="Ping",grpc_type="unary",grpc_code="OK"} 1'
want "grpc_server_handled_total refusal" 'grpc_server_handled_total{grpc_service="marquee.system.v1.DiagnosticsService",grpc_method="Echo",grpc_type="unary",grpc_code="INVALID_ARGUMENT"} 1'
want "grpc_server_handling_seconds" 'grpc_server_handling_seconds_count{grpc_service="marquee.system.v1.SystemService",grpc_method="Ping",grpc_type="unary"} 1'
want "streaming type label" 'grpc_type="bidi_stream"'
want "callback counters are counters" '# TYPE marquee_outbox_published_total counter'
n=$(grep -c '^# TYPE marquee_cache_hits_total ' <<<"$out" || true)
[[ $n == 1 ]] && ok "one TYPE line for a family with four series" || bad "marquee_cache_hits_total has $n TYPE lines"

# a consumer process serves its own exposition, with its lag per topic
(env -u MARQUEE_CONFIG MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:0 MARQUEE_MONGO_DB="$MQ_DB" \
  MARQUEE_MONGO_URI="${MARQUEE_TEST_MONGO_URI:-mongodb://127.0.0.1:27017/}" \
  MARQUEE_KAFKA_BROKERS="${MARQUEE_TEST_KAFKA_BROKERS:-127.0.0.1:9092}" MARQUEE_LOG_LEVEL=warn \
  MARQUEE_CONSUMER_GROUP="marquee-audit-$MQ_DB" MARQUEE_CONSUMER_SKIP_BEFORE_MS="$(($(date +%s) * 1000))" \
  "$build/marquee-audit" >"$MQ_TMP/audit.out" 2>"$MQ_TMP/audit.err") &
audit_pid=$!
trap 'kill -TERM $audit_pid 2>/dev/null; mq_stop_server || true' EXIT
audit_http=
for _ in $(seq 1 300); do
  # (|| true: the file may not exist yet, and a failing sed must not end the script under set -e)
  audit_http=$(sed -n 's/^READY consumer=audit http=\([^ ]*\).*/\1/p' "$MQ_TMP/audit.out" 2>/dev/null || true)
  [ -n "$audit_http" ] && break
  sleep 0.1
done
if [ -z "$audit_http" ]; then
  bad "marquee-audit printed no READY line with its HTTP port"
  cat "$MQ_TMP/audit.err"
else
  out=
  for _ in $(seq 1 50); do # READY comes as it starts serving; allow it a moment under load
    out=$(curl -sf "http://$audit_http/metrics") && break
    sleep 0.1
  done
  [ -n "$out" ] || { bad "marquee-audit's /metrics at $audit_http did not answer"; cat "$MQ_TMP/audit.err"; }
  if lint=$(marquee-promlint <<<"$out"); then ok "consumer promlint: $lint"; else bad "consumer promlint found problems:"; echo "$lint"; fi
  want "consumer lag per topic" 'marquee_consumer_lag{consumer="audit",topic="marquee.bookings"} '
  want "consumer outcomes are counters" '# TYPE marquee_consumer_events_total counter'
  want "consumer build info" 'marquee_build_info{version="'
fi
kill -TERM $audit_pid 2>/dev/null
wait $audit_pid 2>/dev/null || true

# the Grafana dashboard (docs/grafana) is the generator's output, and queries only metrics Marquee serves
src=$(cd "$(dirname "$0")/../.." && pwd)
if diff -q <(python3 "$src/docs/grafana/dashboard.py") "$src/docs/grafana/marquee.json" >/dev/null; then
  ok "docs/grafana/marquee.json is what dashboard.py writes"
else
  bad "docs/grafana/marquee.json is stale: python3 docs/grafana/dashboard.py > docs/grafana/marquee.json"
fi
for m in $(grep -o 'marquee_[a-z_]*' "$src/docs/grafana/marquee.json" | sed 's/_bucket$//' | sort -u); do
  if grep -rqE "[^a-z_]$m([^a-z_]|\$)" "$src"/core "$src"/lib "$src"/server "$src"/handlers "$src"/consumers; then :; else
    bad "the dashboard queries $m, which nothing registers"
  fi
done
ok "every metric the dashboard queries is registered"

trap - EXIT
mq_stop_server || fail=$((fail + 1))
echo "metrics: $fail failed"
exit $((fail > 0))
