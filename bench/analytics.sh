#!/usr/bin/env bash
# analytics.sh — the analytics benchmark (the analytics issue's figures). In ONE
# run, with a Release build (BUILD, default build-bench), on the real local
# stack (FerretDB and Kafka; started here if not running):
#   1. Aggregation: RUNS (3) times, EVENTS_N (200,000) synthetic bookings-topic
#      events for 200 events (mq-bench-analytics produce) are put on
#      marquee.bookings; then (the baseline) a bare consumer reads and decodes
#      them (mq-bench-analytics read), then a fresh marquee-analytics (its own
#      database and group, passing over what was produced before) aggregates
#      them: timed from its first handled event (its /metrics, polled every
#      20 ms) to the moment the store's platform totals equal what was
#      produced (polled every 200 ms), so every batch write is inside the
#      time. Events/s (target >= 20,000/s) and its ratio to the bare read.
#   2. Dashboards: a server on a fresh database; an event made through the
#      API with a year of hourly history written into its aggregates
#      (mq-bench-analytics seed-year); GetEventStats for the year by day and
#      for 92 days by hour, CONCURRENCY (8) in flight, SECONDS_PER_RUN (5)
#      each, alternating with the bare echo at the same concurrency: p50/p99
#      and QPS ratios.
#   3. Page views' cost: anonymous GetEvent of that event (the cached path)
#      on a server counting page views and on one with MARQUEE_PAGE_VIEWS=0,
#      alternating, as ratios of the bare echo.
#   4. Live counters: LAG_N (100) free bookings one after another on an event
#      watched through WatchEventSales, each timed from ConfirmHold's answer to
#      the stream message that counts it (target p99 < 1 s).
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed, raw
# numbers in bench/results/analytics-<stamp>.json.
# Beware: part 1 puts RUNS x EVENTS_N synthetic events on the stack's
# marquee.bookings, which every consumer of that topic then reads (those of
# scripts/run.sh included). Run it on a stack kept for benchmarks, or
# recreate the stack's Kafka data afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
CONC=${CONCURRENCY:-8}
N=${EVENTS_N:-200000}
LAG_N=${LAG_N:-100}
build=${BUILD:-build-bench}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server marquee-analytics marquee mq-bare-echo mq-loadgen mq-bench-analytics
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db="bench_analytics_${stamp}_$$"
BENCH_DBS=("$db")
bench_stack_up

# ---- 1. aggregation
agg_runs=()
for r in $(seq 1 "$RUNS"); do
  t0=$(date +%s%3N)
  prod=$("$build/mq-bench-analytics" produce "$N" 200)
  read_json=$("$build/mq-bench-analytics" read "$t0" "$N")
  rdb="${db}_agg$r"
  BENCH_DBS+=("$rdb")
  want=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bookings"])' "$prod")
  env MARQUEE_LOG_LEVEL=warn MARQUEE_MONGO_DB="$rdb" MARQUEE_CONSUMER_GROUP="bench-analytics-$stamp-$r-$$" \
    MARQUEE_CONSUMER_HTTP_LISTEN=127.0.0.1:0 MARQUEE_CONSUMER_SKIP_BEFORE_MS="$t0" \
    "$build/marquee-analytics" >"$tmp/an$r.out" 2>"$tmp/an$r.err" &
  echo $! >"$tmp/an$r.pid"
  for _ in $(seq 1 300); do grep -q '^READY' "$tmp/an$r.out" && break; sleep 0.05; done
  http=$(sed -n 's/^READY consumer=analytics http=\([^ ]*\).*/\1/p' "$tmp/an$r.out")
  # the clock starts at its first handled event: the older messages of the shared topic it passes over first
  # (other runs', other tests') are not this run's work
  for _ in $(seq 1 3000); do
    h=$(curl -sf "http://$http/metrics" | sed -n 's/^marquee_consumer_events_total{consumer="analytics",outcome="handled"} \([0-9]*\).*/\1/p')
    [ "${h:-0}" -gt 0 ] && break
    sleep 0.02
  done
  start=$(date +%s%3N)
  got=0
  for _ in $(seq 1 1500); do
    v=$(MARQUEE_MONGO_DB="$rdb" "$build/mq-bench-analytics" verify 2>/dev/null || echo '{}')
    got=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("bookings", 0))' "$v")
    [ "$got" = "$want" ] && break
    sleep 0.2
  done
  end=$(date +%s%3N)
  [ "$got" = "$want" ] || { echo "run $r: the aggregates hold $got bookings, $want were produced" >&2; exit 1; }
  kill -TERM "$(cat "$tmp/an$r.pid")"
  agg_runs+=("{\"produce\":$prod,\"bare\":$read_json,\"consumer_ms\":$((end - start)),\"verify\":$v}")
  echo "aggregation run $r: $N events in $((end - start)) ms; bare read $read_json" >&2
done
printf '[%s]\n' "$(IFS=,; echo "${agg_runs[*]}")" >"$tmp/agg.json"

# ---- 2, 3. dashboards and page views
BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_WORKERS=16)
a=$(bench_start a "$build/marquee-server")
noviews=$(bench_start noviews "$build/marquee-server" MARQUEE_PAGE_VIEWS=0)
echo_addr=$(bench_start echo "$build/mq-bare-echo")
[ -n "$a" ] && [ -n "$noviews" ] && [ -n "$echo_addr" ] || { echo "a server did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
bench_wait_serving "$a" "$noviews"
mkdir -p "$tmp/req"
seeded=$(MARQUEE_MONGO_DB="$db" "$build/mq-bench-analytics" seed-year "$a" "$BENCH_KEYS" "$tmp/req")
echo "seeded: $seeded" >&2
token=$(cat "$tmp/req/token")
bench_cpu_init
win=$SECS
lg() { "$build/mq-loadgen" --target "$1" --concurrency "$CONC" --seconds "$SECS" --warmup 1 "${@:2}"; }
stats=/marquee.analytics.v1.AnalyticsService/GetEventStats
for f in year-by-day quarter-by-hour; do
  out=$("$build/mq-loadgen" --target "$a" --concurrency 1 --seconds 1 --warmup 0 --method "$stats" \
    --token "$token" --request-file "$tmp/req/$f.bin")
  grep -q '"errors":0' <<<"$out" || { echo "$f fails: $out" >&2; exit 1; }
done
for r in $(seq 1 "$RUNS"); do
  measured echo lg "$echo_addr"
  measured year lg "$a" --method "$stats" --token "$token" --request-file "$tmp/req/year-by-day.bin"
  measured quarter lg "$a" --method "$stats" --token "$token" --request-file "$tmp/req/quarter-by-hour.bin"
  measured views lg "$a" --method /marquee.catalog.v1.EventService/GetEvent --request-file "$tmp/req/get-event.bin"
  measured noviews lg "$noviews" --method /marquee.catalog.v1.EventService/GetEvent \
    --request-file "$tmp/req/get-event.bin"
  echo "run $r: $line" >&2
done
win=

# ---- 4. live counters
lag=$("$build/mq-bench-analytics" lag "$a" "$BENCH_KEYS" "$LAG_N")
echo "lag: $lag" >&2

bench_json_map results >"$tmp/runs.json"
printf '%s\n' "$lag" >"$tmp/lag.json"
printf '%s\n' "$seeded" >"$tmp/seeded.json"
section=$(python3 - "$stamp" "$(bench_commit)" "$CONC" "$SECS" "$N" "bench/results/analytics-$stamp.json" \
  "$tmp/runs.json" "$tmp/agg.json" "$tmp/lag.json" "$tmp/seeded.json" <<'PY'
import json, statistics, sys
stamp, commit, conc, secs, n, out, runs_f, agg_f, lag_f, seeded_f = sys.argv[1:11]
runs, agg, lag, seeded = (json.load(open(f)) for f in (runs_f, agg_f, lag_f, seeded_f))
json.dump({"stamp": stamp, "commit": commit, "runs": runs, "aggregation": agg, "lag": lag, "seeded": seeded},
          open(out, "w"), indent=1)
n = int(n)
print(f"### Analytics run {stamp} at {commit}\n")
print(f"`bench/analytics.sh`, Release build, the local stack (FerretDB 1.24/SQLite + Kafka, 3 partitions per topic), "
      f"everything on the same 2-core machine.\n")
print(f"**Aggregation.** {n:,} synthetic events per run on marquee.bookings (35% holds, 35% bookings of 1-4 tickets in "
      f"CAD/EUR/USD, releases, cancellations, check-ins) for 200 events of 10 organizations, happening over the last hour. "
      f"marquee-analytics on a fresh database, timed from its first handled event until the store's totals equal what was "
      f"produced; the baseline is a bare consumer reading and decoding the same messages.\n")
print("| run | marquee-analytics: events/s (s) | bare read + decode: events/s | ratio |")
print("|---|---|---|---|")
rates = []
for i, r in enumerate(agg, 1):
    rate = n / (r["consumer_ms"] / 1000)
    rates.append((rate, r["bare"]["per_s"]))
    print(f"| {i} | {rate:,.0f} ({r['consumer_ms'] / 1000:.1f}) | {r['bare']['per_s']:,.0f} | {rate / r['bare']['per_s']:.3f} |")
med = statistics.median(x for x, _ in rates)
print(f"\nMedian **{med:,.0f} events/s** aggregated (target >= 20,000/s: {'met' if med >= 20000 else 'missed'}), "
      f"{statistics.median(x / b for x, b in rates):.3f} of the bare read.\n")
print(f"**Dashboards.** One event with a year of hourly history ({seeded['hours']:,} hours, {seeded['cells']:,} "
      f"counters written through the consumer's own write path), GetEventStats by the organizer, {conc} in flight, "
      f"{secs} s per run after 1 s warm-up, alternating with the bare echo.\n")
print("| run | bare echo QPS | a year by day: QPS (p50 / p99 µs) | 92 days by hour: QPS (p50 / p99 µs) | GetEvent with page views: QPS (p99 µs) | GetEvent without: QPS (p99 µs) | other cores |")
print("|---|---|---|---|---|---|---|")
for i, (e, y, q, v, nv) in enumerate(zip(runs["echo"], runs["year"], runs["quarter"], runs["views"], runs["noviews"]), 1):
    print(f"| {i} | {e['qps']:.0f} | {y['qps']:.0f} ({y['p50_us']} / {y['p99_us']}) | {q['qps']:.0f} ({q['p50_us']} / "
          f"{q['p99_us']}) | {v['qps']:.0f} ({v['p99_us']}) | {nv['qps']:.0f} ({nv['p99_us']}) | {y['other_cores']} |")
md = lambda k, f: statistics.median(f(r) for r in runs[k])
ratio = lambda k: statistics.median(x["qps"] / e["qps"] for e, x in zip(runs["echo"], runs[k]))
print(f"\nMedians: a year by day p99 **{md('year', lambda r: r['p99_us']) / 1000:.1f} ms** "
      f"({ratio('year'):.4f} of the echo's QPS), 92 days by hour p99 **{md('quarter', lambda r: r['p99_us']) / 1000:.1f} ms** "
      f"({ratio('quarter'):.4f}). GetEvent (cached path) with page views {ratio('views'):.3f} of the echo, without "
      f"{ratio('noviews'):.3f}: producing the view costs "
      f"{(1 - ratio('views') / ratio('noviews')) * 100:.1f}% of GetEvent's throughput.\n")
print(f"**Live counters.** {lag['n']} free bookings one after another on a watched event: from ConfirmHold's answer "
      f"to the WatchEventSales message that counts the booking (outbox relay, Kafka, the server's reader, the live "
      f"thread): p50 **{lag['p50_ms']} ms**, p99 **{lag['p99_ms']} ms**, max {lag['max_ms']} ms (target p99 < 1 s: "
      f"{'met' if lag['p99_ms'] < 1000 else 'missed'}).")
PY
)
bench_append_section "$section" "bench/results/analytics-$stamp.json"
