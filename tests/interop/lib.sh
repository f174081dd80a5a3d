# lib.sh — shared by the interop tests: start a marquee-server from the
# build directory on free ports against the local stack, read its READY
# line, and stop it (expecting exit 0: under ASan that also means no leaks).
# Usage: source lib.sh; mq_start_server BUILD_DIR; ...; mq_stop_server
set -euo pipefail

MQ_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MQ_STACK=${MARQUEE_STACK_DIR:-$MQ_SRC/.stack}
export PATH="$MQ_STACK/bin:$PATH"

mq_start_server() {
  local build=$1
  MQ_TMP=$(mktemp -d)
  MQ_DB="mqinterop_$$"
  (env -u MARQUEE_CONFIG \
    MARQUEE_LISTEN=127.0.0.1:0 MARQUEE_HTTP_LISTEN=127.0.0.1:0 MARQUEE_DIAGNOSTICS=1 \
    MARQUEE_JWT_KEYS="itest:integration-test-secret-0123456789abcdef" MARQUEE_MONGO_DB="$MQ_DB" \
    MARQUEE_MONGO_URI="${MARQUEE_TEST_MONGO_URI:-mongodb://127.0.0.1:27017/}" \
    MARQUEE_KAFKA_BROKERS="${MARQUEE_TEST_KAFKA_BROKERS:-127.0.0.1:9092}" \
    MARQUEE_LOG_LEVEL=warn MARQUEE_ACCESS_LOG=errors \
    "$build/marquee-server" >"$MQ_TMP/out" 2>"$MQ_TMP/err") &
  MQ_PID=$!
  for _ in $(seq 1 300); do
    if grep -q '^READY' "$MQ_TMP/out" 2>/dev/null; then
      MQ_ADDR=$(sed -n 's/^READY grpc=\([^ ]*\).*/\1/p' "$MQ_TMP/out")
      MQ_HTTP=$(sed -n 's/^READY .*http=\([^ ]*\).*/\1/p' "$MQ_TMP/out")
      export MQ_ADDR MQ_HTTP
      return 0
    fi
    kill -0 "$MQ_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "marquee-server did not start:" >&2
  cat "$MQ_TMP/err" >&2
  return 1
}

mq_stop_server() {
  local pid=${MQ_PID:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local rc=0
  wait "$pid" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "marquee-server exited with $rc:" >&2
    tail -n 50 "$MQ_TMP/err" >&2
  fi
  rm -rf "$MQ_TMP"
  MQ_PID=
  # drop the test's database (best effort: needs python3 with pymongo)
  python3 - "$MQ_DB" "${MARQUEE_TEST_MONGO_URI:-mongodb://127.0.0.1:27017/}" >/dev/null 2>&1 <<'PY' || true
import sys, pymongo
pymongo.MongoClient(sys.argv[2], serverSelectionTimeoutMS=2000).drop_database(sys.argv[1])
PY
  return "$rc"
}
