#!/usr/bin/env bash
# demo-data.sh — seeds a fresh Marquee with demo data through its gRPC API
# (scripts/demo/seed.py; idempotent). Called by scripts/run.sh once the
# server is SERVING; needs MARQUEE_LISTEN and MARQUEE_JWT_KEYS (run.sh sets
# both). Python stubs are generated from proto/ with Debian's grpc_tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
protos=$(cd proto && ls marquee/common/v1/*.proto marquee/identity/v1/*.proto marquee/catalog/v1/*.proto)
(cd proto && "$PY" -m grpc_tools.protoc -I . --python_out="$gen" --grpc_python_out="$gen" $protos)
PYTHONPATH="$gen" "$PY" scripts/demo/seed.py "${MARQUEE_LISTEN:-127.0.0.1:50051}" "$MARQUEE_JWT_KEYS"
