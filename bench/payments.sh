#!/usr/bin/env bash
# payments.sh — the payments benchmark (payments issue's figures). In ONE run,
# against the real local stack (FerretDB, Kafka and stripe-mock; started here
# if not running, left running at exit unless BENCH_STOP_STACK is set), with a
# Release build (BUILD, default build-bench), one marquee-server with Stripe
# pointed at stripe-mock, and a fresh database:
#   1. The baseline: holds per second, CONCURRENCY (64) in flight, CreateHold
#      of one unit of a paid ticket type (mq-bench-payments run holds).
#   2. Paid bookings per second end to end, the same CONCURRENCY: CreateHold,
#      CreatePayment (the server creates the PaymentIntent at stripe-mock over
#      HTTP), then the signed payment_intent.succeeded webhook to the server's
#      /webhooks/stripe, answered once the booking is confirmed
#      (mq-bench-payments run paid). p50/p99 of one whole paid booking.
#   3. The same paid bookings one at a time (one in flight): the latency of
#      one paid booking on an idle server.
#   Alternating (paid first, so the holds of the baseline do not grow the
#   collections the paid run reads), RUNS (3) times, SECONDS_PER_RUN (5)
#   each; medians and the ratio paid/holds (target >= 0.3). Each run sells a
#   fresh ticket type of CAPACITY (100,000). Calls wait up to 120 s (a run
#   ends when its last call does).
#   4. Tax computation: ns per price breakdown (lib/mq_tax), beside the cost
#      of one rate's arithmetic alone.
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed,
# raw numbers in bench/results/payments-<stamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
CONC=${CONCURRENCY:-64}
CAPACITY=${CAPACITY:-100000}
build=${BUILD:-build-bench}
WHSEC=whsec_bench_0123456789abcdef

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server marquee mq-bench-bookings mq-bench-payments
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db="bench_payments_${stamp}_$$"
BENCH_DBS=("$db")
bench_stack_up
stack_status=$(bash scripts/stack.sh status)
grep -q "^stripe *running" <<<"$stack_status" || { stack_started+=(stripe); bash scripts/stack.sh start stripe >/dev/null; }
eval "$(bash scripts/stack.sh env)"

BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_HOLD_TTL_S=86400 MARQUEE_TICKET_KEYS= MARQUEE_STRIPE_SECRET_KEY=sk_test_bench
  MARQUEE_STRIPE_API_BASE="$MARQUEE_STACK_STRIPE" MARQUEE_STRIPE_WEBHOOK_SECRET="$WHSEC" MARQUEE_PAYMENT_ROUTES='*=stripe')
a=$(bench_start a "$build/marquee-server" MARQUEE_HTTP_LISTEN=127.0.0.1:0)
[ -n "$a" ] || { echo "server did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
http=$(sed -n 's/^READY .*http=\([^ ]*\).*/\1/p' "$tmp/a.out")
bench_wait_serving "$a"
sleep 1

: >"$tmp/runs.jsonl"
for r in $(seq 1 "$RUNS"); do
  eval "$("$build/mq-bench-bookings" setup "$a" "$BENCH_KEYS" "$CAPACITY" 2500)" # EVENT_ID, TICKET_TYPE_ID, TOKEN
  paid=$("$build/mq-bench-payments" run paid "$a" "$http" "$WHSEC" "$TOKEN" "$EVENT_ID" "$TICKET_TYPE_ID" "$CONC" "$SECS")
  one=$("$build/mq-bench-payments" run paid "$a" "$http" "$WHSEC" "$TOKEN" "$EVENT_ID" "$TICKET_TYPE_ID" 1 "$SECS")
  holds=$("$build/mq-bench-payments" run holds "$a" "$http" "$WHSEC" "$TOKEN" "$EVENT_ID" "$TICKET_TYPE_ID" "$CONC" "$SECS")
  line=$(python3 -c 'import json,sys; h,p,o=(json.loads(x) for x in sys.argv[1:4]); print(json.dumps({"holds":h,"paid":p,"one":o,"ratio":p["per_s"]/h["per_s"] if h["per_s"] else 0}))' "$holds" "$paid" "$one")
  echo "run $r: $line" >&2
  echo "$line" >>"$tmp/runs.jsonl"
done
tax=$("$build/mq-bench-payments" tax 2000000)

section=$(python3 - "$stamp" "$(bench_commit)" "$CONC" "$SECS" "bench/results/payments-$stamp.json" "$tmp/runs.jsonl" "$tax" <<'PY'
import json, statistics, sys
stamp, commit, conc, secs, out, runs_file, tax = sys.argv[1:8]
runs = [json.loads(l) for l in open(runs_file) if l.strip()]
t = json.loads(tax)
json.dump({"stamp": stamp, "commit": commit, "runs": runs, "tax": t}, open(out, "w"), indent=1)
med = lambda f: statistics.median(f(r) for r in runs)
print(f"### Payments run {stamp} at {commit}\n")
print(f"One server, Stripe at stripe-mock on loopback, {conc} in flight, {secs} s per run, {len(runs)} runs alternating.\n")
print("| run | holds/s (p50/p99 µs) | paid bookings/s (p50/p99 µs) | one at a time: /s (p50 µs) | errors (holds/paid) | paid/holds |")
print("|---|---|---|---|---|---|")
for i, r in enumerate(runs, 1):
    h, p, o = r["holds"], r["paid"], r["one"]
    print(f"| {i} | {h['per_s']:.0f} ({h['p50_us']}/{h['p99_us']}) | {p['per_s']:.1f} ({p['p50_us']}/{p['p99_us']}) | "
          f"{o['per_s']:.1f} ({o['p50_us']}) | {h['errors']}/{p['errors']} | {r['ratio']:.3f} |")
print(f"\nMedians: holds {med(lambda r: r['holds']['per_s']):.0f}/s, paid bookings {med(lambda r: r['paid']['per_s']):.0f}/s, "
      f"ratio **{med(lambda r: r['ratio']):.3f}** (target >= 0.3). A paid booking is CreateHold + CreatePayment "
      f"(one HTTP call to the gateway) + the webhook that confirms it.\n")
print(f"Tax computation: **{t['ns_per_breakdown']:.0f} ns** per price breakdown (one rate's arithmetic alone: "
      f"{t['ns_per_baseline']:.1f} ns).")
PY
)
bench_append_section "$section" "bench/results/payments-$stamp.json"
