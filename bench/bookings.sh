#!/usr/bin/env bash
# bookings.sh — the bookings benchmark (bookings issue's figures). In ONE run,
# against the real local stack (FerretDB + Kafka, started here if not
# running, left running at exit unless BENCH_STOP_STACK is set), with a
# Release build (BUILD, default build-bench) and a fresh database:
#   1. The store's raw unique-insert rate: CONCURRENCY (64) connections
#      inserting documents shaped like capacity slot records, one
#      acknowledged insert per call (mq-bench-bookings inserts) — the
#      baseline: a hold is at least one such insert.
#   2. Holds per second on ONE hot ticket type (CAPACITY 10,000, free) with
#      TWO marquee-server processes on the same database: two mq-loadgen
#      processes, CONCURRENCY/2 in flight each, CreateHold for one unit
#      (no idempotency key: every call is a new hold), summed; p50/p99 of
#      each server's calls. Runs alternate with (1), RUNS times (4),
#      SECONDS_PER_RUN (4, plus 1 s of warm-up) each; medians and the ratio
#      holds/raw (target >= 0.5). Each run sells a fresh hot ticket type of
#      CAPACITY, which fills as the run goes (to ~70% at ~1,400 holds/s), as
#      a real on-sale does; a run that sells out reports errors.
#   3. Memory of WATCHERS (1,000) live-availability streams on one server:
#      its VmRSS before and after they are open (mq-bench-bookings
#      watchers).
# Output: a Markdown section on stdout and bench/results/bookings-<stamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-4}
SECS=${SECONDS_PER_RUN:-4}
CONC=${CONCURRENCY:-64}
CAPACITY=${CAPACITY:-10000}
WATCHERS=${WATCHERS:-1000}
build=${BUILD:-build-bench}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server marquee mq-loadgen mq-bench-bookings
keys=$BENCH_KEYS
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db="bench_bookings_${stamp}_$$"
BENCH_DBS=("$db")
bench_stack_up

BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_HOLD_TTL_S=86400 MARQUEE_TICKET_KEYS=)
a=$(bench_start a "$build/marquee-server")
b=$(bench_start b "$build/marquee-server")
[ -n "$a" ] && [ -n "$b" ] || { echo "servers did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
bench_wait_serving "$a" "$b"
sleep 2

half=$((CONC / 2))
: >"$tmp/runs.jsonl"
slots=""
for r in $(seq 1 "$RUNS"); do
  # each run sells its own hot ticket type of CAPACITY (a fresh event), so
  # no run starts on a pool the previous ones filled
  setup=$("$build/mq-bench-bookings" setup "$a" "$keys" "$CAPACITY")
  eval "$setup" # EVENT_ID, TICKET_TYPE_ID, TOKEN
  bench_hold_request "$tmp/hold.bin"
  ins=$("$build/mq-bench-bookings" inserts "$MARQUEE_MONGO_URI" "$db" "$CONC" "$SECS")
  holds=$(bench_holds "$a" "$b" "$TOKEN" "$tmp/hold.bin" "$SECS" "$half")
  line=$(python3 - "$ins" "$holds" <<'PY'
import json, sys
ins, h = (json.loads(x) for x in sys.argv[1:3])
print(json.dumps({"raw_inserts_per_s": ins["inserts_per_s"], "raw_p50_us": ins["p50_us"], "raw_p99_us": ins["p99_us"],
                  "holds_per_s": h["holds_per_s"], "a": h["a"], "b": h["b"], "ratio": h["holds_per_s"] / ins["inserts_per_s"]}))
PY
)
  taken=$(python3 -c 'import pymongo,sys; print(pymongo.MongoClient(sys.argv[1]).get_database(sys.argv[2]).capacity_slots.count_documents({"pool": "t:"+sys.argv[3]}))' \
    "$MARQUEE_MONGO_URI" "$db" "$TICKET_TYPE_ID" 2>/dev/null || echo "?")
  slots="$slots${slots:+, }$taken"
  echo "run $r: $line" >&2
  echo "$line" >>"$tmp/runs.jsonl"
done
watch=$("$build/mq-bench-bookings" watchers "$a" "$EVENT_ID" "$WATCHERS" "$(cat "$tmp/a.pid")")

python3 - "$stamp" "$(bench_commit)" "$CONC" "$SECS" "$CAPACITY" "$slots" "$watch" \
  "bench/results/bookings-$stamp.json" "$tmp/runs.jsonl" <<'PY'
import json, statistics, sys
stamp, commit, conc, secs, cap, slots, watch, out, runs_file = sys.argv[1:10]
runs = [json.loads(l) for l in open(runs_file) if l.strip()]
w = json.loads(watch)
med = lambda k: statistics.median(r[k] for r in runs)
json.dump({"stamp": stamp, "commit": commit, "runs": runs, "watchers": w, "slots_taken": slots}, open(out, "w"), indent=1)
print(f"### Bookings run {stamp} at {commit}\n")
print(f"Two servers, one hot ticket type of {cap}, {conc} in flight in total, {secs} s per run, {len(runs)} runs.\n")
print("| run | raw inserts/s (p50/p99 µs) | holds/s | A p50/p99 µs | B p50/p99 µs | errors | holds/raw |")
print("|---|---|---|---|---|---|---|")
for i, r in enumerate(runs, 1):
    a, b = r["a"], r["b"]
    print(f"| {i} | {r['raw_inserts_per_s']:.0f} ({r['raw_p50_us']}/{r['raw_p99_us']}) | {r['holds_per_s']:.0f} | "
          f"{a['p50_us']}/{a['p99_us']} | {b['p50_us']}/{b['p99_us']} | {a['errors'] + b['errors']} | {r['ratio']:.2f} |")
print(f"\nMedians: raw {med('raw_inserts_per_s'):.0f} inserts/s, holds {med('holds_per_s'):.0f}/s "
      f"({med('holds_per_s') * 60:.0f} per minute), ratio **{med('ratio'):.2f}** (target >= 0.5). "
      f"Units taken per run (of {cap}): {slots}.\n")
print(f"Watchers: {w['watchers']} streams took {w['open_s']} s to open; server RSS {w['rss_before_kib']} -> "
      f"{w['rss_after_kib']} KiB, **{w['kib_per_watcher']:.1f} KiB per watcher**.")
PY
