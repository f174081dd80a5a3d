#!/usr/bin/env bash
# test_check_layers.sh — scripts/check_layers.sh passes on the tree as it is,
# and refuses each kind of include that points up (or names no layer), in a
# scratch copy of the tree with one bad line planted at a time.
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
check="$src/scripts/check_layers.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

bash "$check" "$src" >/dev/null || { echo "FAIL: the tree itself does not pass"; exit 1; }
echo "ok: the tree passes"

# plant FILE LINE EXPECT: copy the layer folders, append LINE to FILE, and
# expect the check to fail with a message containing EXPECT.
plant() {
  local file=$1 line=$2 expect=$3
  rm -rf "$tmp/t" && mkdir -p "$tmp/t"
  (cd "$src" && cp -r core lib store handlers consumers clients server "$tmp/t/")
  mkdir -p "$(dirname "$tmp/t/$file")"
  printf '%s\n' "$line" >>"$tmp/t/$file"
  local out rc=0
  out=$(bash "$check" "$tmp/t" 2>&1) || rc=$?
  if [[ $rc -ne 0 && $out == *"$expect"* ]]; then
    echo "ok: refused $file: $line"
  else
    echo "FAIL: $file: $line (exit $rc): $out"
    fails=$((fails + 1))
  fi
}

plant store/mq_store.c '#include "handlers/mq_app.h"' 'includes point down only'
plant core/mq_error.h '#include "lib/mq_validate.h"' 'includes point down only'
plant lib/mq_jwt.c '#include "store/mq_bson.h"' 'includes point down only'
plant handlers/catalog/events.c '#include "server/mq_server.h"' 'includes point down only'
plant store/catalog/events_store.c '#include "marquee/catalog/v1/events.mq-server.h"' "handlers' generated binding"
plant handlers/bookings/holds.c '#include "consumers/mq_consumer.h"' 'stand beside each other'
plant consumers/mq_consumer.c '#include "clients/mq_client.h"' 'stand beside each other'
plant store/mq_store.c '#include <grpc/grpc.h>' 'the gRPC runtime'
plant handlers/catalog/media.c '#include <microhttpd.h>' 'the HTTP server'
plant lib/mq_cache.c '#include "mq_error.h"' 'names no layer'
plant store/newdomain/thing_store.c '#include "handlers/mq_call.h"' 'includes point down only'

[[ $fails -eq 0 ]] || { echo "$fails planted include(s) were not refused"; exit 1; }
echo "all planted upward includes refused"
