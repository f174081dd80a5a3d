#!/usr/bin/env bash
# webhooks.sh — the webhooks benchmark (deliveries issue: "webhooks delivered
# per second to the local sink with signing"). In ONE run, against the real
# local stack (FerretDB, Kafka; started here if not running, left running at
# exit unless BENCH_STOP_STACK is set), with a Release build (BUILD, default
# build-bench), one marquee-server and one marquee-webhooks (default 4
# workers) on a fresh database, per run (mq-bench-webhooks run):
#   1. the baseline: EVENTS signed POSTs of a body of the same shape from 4
#      threads with the same HTTP client, straight to a local receiver — what
#      sending costs without anything around it;
#   2. EVENTS BookingConfirmed events of an organization with one subscribed
#      endpoint (that receiver) produced to Kafka; the rate counts from the
#      first webhook's arrival to the last. Each webhook costs
#      marquee-webhooks: the organization's endpoints read, the delivery
#      record inserted, claimed and read, the attempt record inserted and
#      finished, the delivery's outcome written, the JSON and the signature.
#   Every delivered signature is verified. RUNS (3) runs, medians.
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed, raw
# numbers in bench/results/webhooks-<stamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
EVENTS=${EVENTS:-2000}
build=${BUILD:-build-bench}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server marquee-webhooks marquee mq-bench-webhooks
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db="bench_webhooks_${stamp}_$$"
BENCH_DBS=("$db")
bench_stack_up
eval "$(bash scripts/stack.sh env)"
BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8)
srv=$(bench_start server "$build/marquee-server")
[ -n "$srv" ] || { echo "marquee-server did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
bench_wait_serving "$srv"
# the consumer passes over what the log held before it started (other runs', other databases')
env MARQUEE_MONGO_DB="$db" MARQUEE_WEBHOOK_ALLOWED_NETS=127.0.0.0/8 MARQUEE_LOG_LEVEL=warn \
  MARQUEE_CONSUMER_GROUP="bench-webhooks-$stamp-$$" MARQUEE_CONSUMER_SKIP_BEFORE_MS=$(($(date +%s) * 1000)) \
  MARQUEE_CONSUMER_HTTP_LISTEN= "$build/marquee-webhooks" >"$tmp/hooks.out" 2>"$tmp/hooks.err" &
echo $! >"$tmp/hooks.pid"
for _ in $(seq 1 300); do grep -q '^READY' "$tmp/hooks.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY' "$tmp/hooks.out" || { echo "marquee-webhooks did not start" >&2; cat "$tmp/hooks.err" >&2; exit 1; }

: >"$tmp/runs.jsonl"
for r in $(seq 1 "$RUNS"); do
  line=$("$build/mq-bench-webhooks" run "$srv" "$BENCH_KEYS" "$MARQUEE_KAFKA_BROKERS" "$EVENTS")
  echo "run $r: $line" >&2
  echo "$line" >>"$tmp/runs.jsonl"
done

json="bench/results/webhooks-$stamp.json"
section=$(python3 - "$tmp/runs.jsonl" "$json" "$stamp" "$(bench_commit)" "$EVENTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump({"stamp": sys.argv[3], "commit": sys.argv[4], "runs": runs}, open(sys.argv[2], "w"), indent=1)
base = statistics.median(r["baseline_per_s"] for r in runs)
got = statistics.median(r["webhooks_per_s"] for r in runs)
lines = [f"### Webhooks run {sys.argv[3]} at {sys.argv[4]}", "",
         f"`bench/webhooks.sh`: per run, {sys.argv[5]} BookingConfirmed events of one organization produced to Kafka, "
         "delivered by marquee-webhooks (4 workers) to one subscribed endpoint, a receiver on loopback; the rate "
         "counts from the first arrival to the last. Baseline: the same number of signed POSTs of the same shape "
         "from 4 threads with the same HTTP client, straight to the receiver. Every delivered signature verified.", "",
         "| run | baseline POSTs/s | webhooks/s | webhooks/baseline | signatures verified |", "|---|---|---|---|---|"]
for i, r in enumerate(runs, 1):
    lines.append(f"| {i} | {r['baseline_per_s']:.0f} | {r['webhooks_per_s']:.0f} | {r['ratio']:.3f} | "
                 f"{r['signed_ok']}/{r['delivered']} |")
lines += ["", f"Medians: baseline {base:.0f}/s, webhooks **{got:.0f}/s**, ratio **{got / base:.3f}**."]
print("\n".join(lines))
PY
)
bench_append_section "$section" "$json"
