#!/usr/bin/env bash
# grpcurl.sh — interop with grpcurl, a client nobody here wrote, using only
# server reflection (no .proto files): list, describe (with the proto
# comments), unary calls, an error status, health. Usage: grpcurl.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$1
command -v grpcurl >/dev/null || { echo "grpcurl missing: run scripts/stack.sh install" >&2; exit 1; }
mq_start_server "$build"
trap 'mq_stop_server || true' EXIT
pass=0 fail=0
check() { # name, command..., expected substring in last arg position via CHECK_WANT
  local name=$1; shift
  local out
  out=$("$@" 2>&1) || true
  if grep -qF -- "$CHECK_WANT" <<<"$out"; then pass=$((pass+1)); echo "ok   $name";
  else fail=$((fail+1)); echo "FAIL $name: wanted '$CHECK_WANT' in:"; echo "$out"; fi
}
G=(grpcurl -plaintext -max-time 10)
CHECK_WANT="marquee.system.v1.SystemService" check "list shows SystemService" "${G[@]}" "$MQ_ADDR" list
CHECK_WANT="grpc.health.v1.Health" check "list shows Health" "${G[@]}" "$MQ_ADDR" list
CHECK_WANT="grpc.reflection.v1alpha.ServerReflection" check "list shows reflection" "${G[@]}" "$MQ_ADDR" list
CHECK_WANT="rpc Ping ( .marquee.system.v1.PingRequest ) returns ( .marquee.system.v1.PingResponse )" \
  check "describe service" "${G[@]}" "$MQ_ADDR" describe marquee.system.v1.SystemService
CHECK_WANT="rpc EchoStream ( .marquee.system.v1.EchoRequest ) returns ( stream .marquee.system.v1.EchoResponse )" \
  check "describe shows streaming" "${G[@]}" "$MQ_ADDR" describe marquee.system.v1.DiagnosticsService
CHECK_WANT="Public. Returns the payload unchanged; the cheapest full-chain call." \
  check "describe shows the proto comments (source info)" "${G[@]}" "$MQ_ADDR" describe marquee.system.v1.SystemService.Ping
CHECK_WANT="uint32 delay_ms = 2" check "describe message" "${G[@]}" "$MQ_ADDR" describe marquee.system.v1.EchoRequest
CHECK_WANT='"payload": "aGVsbG8="' check "unary call via reflection" \
  "${G[@]}" -d '{"payload":"aGVsbG8="}' "$MQ_ADDR" marquee.system.v1.SystemService/Ping
CHECK_WANT='"sequence": 3' check "server streaming via reflection" \
  "${G[@]}" -d '{"message":"hi","repeat":3}' "$MQ_ADDR" marquee.system.v1.DiagnosticsService/EchoStream
CHECK_WANT="Code: InvalidArgument" check "error status" \
  "${G[@]}" -d '{"message":"x","delayMs":999999}' "$MQ_ADDR" marquee.system.v1.DiagnosticsService/Echo
CHECK_WANT="Code: Unauthenticated" check "protected method without token" \
  "${G[@]}" -d '{}' "$MQ_ADDR" marquee.system.v1.DiagnosticsService/WhoAmI
CHECK_WANT='"status": "SERVING"' check "health check" "${G[@]}" -d '{}' "$MQ_ADDR" grpc.health.v1.Health/Check
trap - EXIT
mq_stop_server || fail=$((fail+1))
echo "grpcurl: $pass passed, $fail failed"
[ "$fail" = 0 ]
