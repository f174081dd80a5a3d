#!/usr/bin/env bash
# python.sh — interop with Python grpcio (Debian's python3-grpcio): stubs
# generated from proto/ at test time, then python_client.py drives every call
# kind, metadata, deadlines and error statuses, and reads the rich error
# details with grpc_status.rpc_status.from_call (grpcio-status from PyPI,
# installed by scripts/stack.sh into .stack/py). Usage: python.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$1
# Debian's interpreter: python3-grpcio and python3-grpc-tools are installed for it
PY=/usr/bin/python3
gen=$(mktemp -d)
"$PY" -m grpc_tools.protoc -I "$MQ_SRC/proto" --python_out="$gen" --grpc_python_out="$gen" \
  marquee/system/v1/system.proto marquee/identity/v1/identity.proto marquee/common/v1/common.proto
# Generated under mqhealth/ so it cannot shadow the real `grpc` package; the
# proto package (and so the wire name grpc.health.v1.Health) is unchanged.
mkdir -p "$gen/src/mqhealth"
cp "$MQ_SRC/proto/grpc/health/v1/health.proto" "$gen/src/mqhealth/health.proto"
"$PY" -m grpc_tools.protoc -I "$gen/src" --python_out="$gen" --grpc_python_out="$gen" mqhealth/health.proto
mq_start_server "$build"
trap 'mq_stop_server || true; rm -rf "$gen"' EXIT
rc=0
pystatus=${MARQUEE_STACK_PYTHONPATH:-${MARQUEE_STACK_DIR:-$MQ_SRC/.stack}/py}
[[ -d $pystatus/grpc_status ]] || { echo "grpcio-status missing in $pystatus: run scripts/stack.sh install" >&2; exit 1; }
PYTHONPATH="$gen:$pystatus" "$PY" "$(dirname "$0")/python_client.py" "$MQ_ADDR" || rc=$?
trap - EXIT
mq_stop_server || rc=1
rm -rf "$gen"
exit "$rc"
