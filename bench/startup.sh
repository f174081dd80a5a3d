#!/usr/bin/env bash
# startup.sh — how long a marquee-server takes to answer public ListEvents
# from its discovery index (handlers/catalog/discovery.h) on a database of
# EVENTS (100,000) published events, seeded once by mq-seed-events, on the
# local stack's store. In ONE run, RUNS (2) times each, alternating:
#   store    — no snapshot file: the index reads every published event (the
#              baseline; the server then saves its snapshot);
#   snapshot — the file the previous start saved: loaded, caught up by
#              outbox hour, answering; then the background full read that
#              verifies it (timed too: it is work the store still does, off
#              the path to ready).
# Each start is timed twice: "indexed in" from the server's discovery.ready
# line (from the load's start, after Kafka is reachable), and from process
# start to that line (the script's clock). The stop after each start is timed
# with the snapshot save it includes. Target (store-scaling issue): < 10 s
# for 100,000 events.
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed, raw
# numbers in bench/results/startup-<stamp>.json. The database is dropped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-100000}
RUNS=${RUNS:-2}
build=${BUILD:-build-bench}
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_build marquee-server
bench_stack_up
db=bench_startup_$$
BENCH_DBS+=("$db")
echo "seeding $EVENTS events into $db" >&2
seeded=$(MARQUEE_MONGO_DB=$db "$build/mq-seed-events" --count "$EVENTS" --base-ms "$(($(date +%s) * 1000))" --batch 1000)
snapfile=$tmp/discovery.snap

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_log() { # file event timeout-s -> the matching line, or exit
  local _
  for _ in $(seq 1 $(($3 * 10))); do
    if grep -q "\"event\":\"$2\"" "$1" 2>/dev/null; then grep "\"event\":\"$2\"" "$1" | tail -n 1; return; fi
    sleep 0.1
  done
  echo "no $2 in $1 within $3 s" >&2
  tail -n 20 "$1" >&2
  exit 1
}
msg_ms() { sed -n "s/.*\"msg\":\"[^\"]* in \([0-9]*\) ms.*/\1/p" <<<"$1"; }

start_once() { # mode run -> one JSON line
  local mode=$1 name=srv_$1_$2 t0 t1 t2 t3 ready verified='null' saved pid line
  [ "$mode" = store ] && rm -f "$snapfile"
  [ "$mode" = snapshot ] && [ ! -f "$snapfile" ] && { echo "no snapshot to start from" >&2; exit 1; }
  t0=$(now_ms)
  bench_start "$name" "$build/marquee-server" MARQUEE_MONGO_DB="$db" MARQUEE_DISCOVERY_SNAPSHOT="$snapfile" \
    MARQUEE_LOG_LEVEL=info >/dev/null
  line=$(wait_log "$tmp/$name.err" discovery.ready 900)
  t1=$(now_ms)
  ready=$(msg_ms "$line")
  if [ "$mode" = snapshot ]; then
    grep -q 'from the snapshot' <<<"$line" || { echo "$name did not start from the snapshot: $line" >&2; exit 1; }
    line=$(wait_log "$tmp/$name.err" discovery.verified 900)
    verified=$(msg_ms "$line")
  else
    wait_log "$tmp/$name.err" discovery.snapshot_saved 120 >/dev/null
  fi
  pid=$(cat "$tmp/$name.pid")
  t2=$(now_ms)
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  t3=$(now_ms)
  rm -f "$tmp/$name.pid"
  saved=$(grep '"event":"discovery.snapshot_saved"' "$tmp/$name.err" | tail -n 1 |
    sed -n 's/.*"msg":"\([0-9]*\) events, \([0-9]*\) bytes in \([0-9]*\) ms.*/{"events":\1,"bytes":\2,"ms":\3}/p')
  echo "{\"mode\":\"$mode\",\"run\":$2,\"indexed_ms\":$ready,\"process_to_ready_ms\":$((t1 - t0)),\"verify_ms\":$verified,\"stop_ms\":$((t3 - t2)),\"last_save\":${saved:-null},\"events\":$(grep -o '"msg":"[0-9]* published' <<<"$(grep '"event":"discovery.ready"' "$tmp/$name.err")" | grep -o '[0-9]*')}"
}

declare -a rows
for i in $(seq 1 "$RUNS"); do
  for mode in store snapshot; do
    echo "run $i: $mode" >&2
    rows+=("$(start_once "$mode" "$i")")
  done
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
json="bench/results/startup-$stamp.json"
{
  echo "{\"stamp\":\"$stamp\",\"commit\":\"$(bench_commit)\",\"events\":$EVENTS,\"seeding\":$seeded,\"runs\":["
  printf '%s\n' "${rows[@]}" | paste -sd, -
  echo "]}"
} >"$json"

section=$(python3 - "$json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
runs = d["runs"]
s = lambda ms: f"{ms / 1000:.1f} s"
L = [f"### Start-up run {d['stamp']} at {d['commit']}", "",
     f"One Release marquee-server, a database of {d['events']:,} published events seeded by mq-seed-events "
     f"({d['seeding']['seconds']:.0f} s), the local stack's store; each start timed from the server's `discovery.ready` "
     "line (the load alone) and from process start (the script's clock); each stop includes saving the snapshot.", "",
     "| run | index from | events | indexed in | process start to ready | verifying full read | stop (save) | snapshot |",
     "|---|---|---|---|---|---|---|---|"]
for r in runs:
    sv = r["last_save"]
    L.append(f"| {r['run']} | {r['mode']} | {r['events']:,} | {s(r['indexed_ms'])} | {s(r['process_to_ready_ms'])} | "
             + (s(r['verify_ms']) if r['verify_ms'] is not None else "—") + f" | {s(r['stop_ms'])} | "
             + (f"{sv['bytes'] / 1048576:.0f} MiB in {sv['ms']} ms" if sv else "—") + " |")
med = lambda m, k: statistics.median(r[k] for r in runs if r["mode"] == m)
st, sn = med("store", "process_to_ready_ms"), med("snapshot", "process_to_ready_ms")
L += ["", f"Medians, process start to ready: from the store {s(st)}, from the snapshot **{s(sn)}** "
      f"(target < 10 s); snapshot/store **{sn / st:.2f}**. The snapshot start's full read "
      f"({s(med('snapshot', 'verify_ms'))}) runs after it answers."]
print("\n".join(L))
PY
)
bench_append_section "$section" "$json"
