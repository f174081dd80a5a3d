#!/usr/bin/env bash
# store.sh — the store benchmark (the store-scaling issue's figures). In ONE
# run, with a Release build (BUILD, default build-bench), two stores side by
# side on this machine:
#   pg     — the local stack's store: FerretDB on PostgreSQL, with the GIN
#            indexes and revision check of scripts/ferretdb/local.sql
#            (started here if not running);
#   sqlite — the previous local store: the same marquee-ferretdb on SQLite
#            (-data in a temporary directory), started here on a free port.
#   1. Store operations (mq-bench-store): one collection per store grown to
#      each of SIZES (1000 10000 100000 1000000) in turn; at each size
#      SAMPLES (200; each kind stops after 20 s) random by-id hits and misses,
#      equality on an indexed field (ten matches), a keyset page (a range
#      and a sort: served by neither store's indexes — FerretDB sorts in Go),
#      an update by _id and an insert; p50/p99. Ratios p50(largest)/p50(1k)
#      (targets <= 1.5 for by-id and equality).
#   2. Raw unique inserts (mq-bench-bookings inserts: CONCURRENCY (64)
#      connections, one acknowledged insert each call) on each store, RUNS
#      (3) alternating runs of SECONDS_PER_RUN (4): pg/sqlite (target >= 2).
#   3. Holds per second: two marquee-server processes per store, one hot
#      ticket type of CAPACITY (10,000) per run, CONCURRENCY in flight in
#      all (bench_holds), the stores alternating run by run; pg/sqlite
#      (target >= 2) and each store's holds/raw (target >= 0.5 on pg).
#   4. Memory at the largest size: proportional set size of each store's processes
#      (pg: PostgreSQL's processes + marquee-ferretdb; sqlite: its
#      marquee-ferretdb), and the data on disk.
#   5. ListMyBookings on pg for a user with 10 bookings among LIST_BOOKINGS
#      (1,000,000) bookings written in the bookings store's own shape
#      (mq-bench-store bookings), one call at a time for SECONDS_PER_RUN
#      through a marquee-server, against the same calls with 1,000 bookings
#      (target: p50 <= 5 ms at 1,000,000); the CLI checks the page holds the
#      user's ten bookings first. Not on sqlite: each call would scan the
#      collection (the store table above says how long).
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed, raw
# numbers in bench/results/store-<stamp>.json. Databases are dropped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 10000 100000 1000000}
SAMPLES=${SAMPLES:-200}
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-4}
CONC=${CONCURRENCY:-64}
CAPACITY=${CAPACITY:-10000}
build=${BUILD:-build-bench}

# shellcheck source=bench/lib.sh
. bench/lib.sh
LIST_BOOKINGS=${LIST_BOOKINGS:-1000000}
bench_build marquee-server marquee mq-loadgen mq-bench-bookings mq-bench-store
stamp=$(date -u +%Y%m%dT%H%M%SZ)
db="bench_store_${stamp}_$$"
BENCH_DBS=("$db")
bench_stack_up
stack=${MARQUEE_STACK_DIR:-.stack}
pg_uri=$MARQUEE_MONGO_URI

# ---- the SQLite store, on a free port, its files in $tmp
sq_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$stack/bin/marquee-ferretdb" -listen "127.0.0.1:$sq_port" -data "$tmp/sqlite" >"$tmp/sqlite.out" 2>&1 &
echo $! >"$tmp/sqlite.pid"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$sq_port") 2>/dev/null && break; sleep 0.1; done
sq_uri="mongodb://127.0.0.1:$sq_port/"

rss_kib() { # pids... -> summed proportional set size (shared pages split among the processes sharing them)
  local p t=0
  for p in "$@"; do t=$((t + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done
  echo "$t"
}
pg_pids() { # the postmaster and its children, and marquee-ferretdb
  local pm
  pm=$(cat "$stack/run/postgres.pid")
  echo "$pm $(pgrep -P "$pm" | tr '\n' ' ') $(cat "$stack/run/ferretdb.pid")"
}

# ---- 1. store operations
: >"$tmp/ops.jsonl"
for n in $SIZES; do
  for store in pg sqlite; do
    uri=$pg_uri
    [ "$store" = sqlite ] && uri=$sq_uri
    fill=$("$build/mq-bench-store" fill "$uri" "$db" "$n" 2>>"$tmp/tool.err")
    ops=$("$build/mq-bench-store" measure "$uri" "$db" "$n" "$SAMPLES" 2>>"$tmp/tool.err")
    echo "{\"store\":\"$store\",\"fill\":$fill,\"ops\":$ops}" >>"$tmp/ops.jsonl"
    echo "$store at $n: $ops" >&2
  done
done
largest=${SIZES##* }
mem=$(printf '{"pg_rss_kib":%s,"sqlite_rss_kib":%s,"pg_disk_kib":%s,"sqlite_disk_kib":%s,"docs":%s}' \
  "$(rss_kib $(pg_pids))" "$(rss_kib "$(cat "$tmp/sqlite.pid")")" \
  "$(du -sk "$stack/data/postgres" | cut -f1)" "$(du -sk "$tmp/sqlite" | cut -f1)" "$largest")

# ---- 2./3. raw inserts and holds, the stores alternating
start_servers() { # store uri -> "addrA addrB"
  local x y
  BENCH_ENV=(MARQUEE_MONGO_URI="$2" MARQUEE_MONGO_DB="${db}_h$1" MARQUEE_HOLD_TTL_S=86400 MARQUEE_TICKET_KEYS=)
  x=$(bench_start "$1a" "$build/marquee-server")
  y=$(bench_start "$1b" "$build/marquee-server")
  [ -n "$x" ] && [ -n "$y" ] || { echo "servers on $1 did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
  bench_wait_serving "$x" "$y"
  echo "$x $y"
}
BENCH_DBS+=("${db}_hpg" "${db}_hsqlite")
read -r pa pb <<<"$(start_servers pg "$pg_uri")"
read -r sa sb <<<"$(start_servers sqlite "$sq_uri")"
sleep 2
half=$((CONC / 2))
: >"$tmp/runs.jsonl"
for r in $(seq 1 "$RUNS"); do
  for store in pg sqlite; do
    if [ "$store" = pg ]; then uri=$pg_uri x=$pa y=$pb; else uri=$sq_uri x=$sa y=$sb; fi
    eval "$("$build/mq-bench-bookings" setup "$x" "$BENCH_KEYS" "$CAPACITY")" # EVENT_ID, TICKET_TYPE_ID, TOKEN
    bench_hold_request "$tmp/hold.bin"
    ins=$("$build/mq-bench-bookings" inserts "$uri" "${db}_ins" "$CONC" "$SECS" 2>>"$tmp/tool.err")
    holds=$(bench_holds "$x" "$y" "$TOKEN" "$tmp/hold.bin" "$SECS" "$half")
    echo "{\"store\":\"$store\",\"run\":$r,\"inserts\":$ins,\"holds\":$holds}" >>"$tmp/runs.jsonl"
    echo "run $r $store: inserts $ins holds $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["holds_per_s"])' "$holds")/s" >&2
  done
done
BENCH_DBS+=("${db}_ins")
# what parts 2-3 started goes before part 5 measures one call at a time (their sweepers keep working)
for f in pga pgb sqlitea sqliteb sqlite; do kill -TERM "$(cat "$tmp/$f.pid")" 2>/dev/null || true; done
sleep 2

# ---- 5. ListMyBookings among many bookings
printf 'page_size: 20\n' | protoc --encode=marquee.bookings.v1.ListMyBookingsRequest -I proto \
  marquee/bookings/v1/bookings.proto >"$tmp/mine.bin"
: >"$tmp/list.jsonl"
for n in 1000 "$LIST_BOOKINGS"; do
  ldb="${db}_list$n"
  BENCH_DBS+=("$ldb")
  seeded=$("$build/mq-bench-store" bookings "$pg_uri" "$ldb" "$n" 2>>"$tmp/tool.err")
  user=$(printf '00000000-0000-4000-8000-%012d' $((n / 20))) # a user in the middle of the collection
  token=$("$build/mq-bench-store" token "$BENCH_KEYS" "$user")
  BENCH_ENV=(MARQUEE_MONGO_URI="$pg_uri" MARQUEE_MONGO_DB="$ldb")
  addr=$(bench_start "list$n" "$build/marquee-server")
  bench_wait_serving "$addr"
  got=$("$build/marquee" --target "$addr" --token "$token" bookings list | grep -c 'b0000000-0000-4000-8000-' || true)
  [ "$got" = 10 ] || { echo "ListMyBookings at $n bookings listed $got of the user's 10" >&2; exit 1; }
  lg=$("$build/mq-loadgen" --target "$addr" --concurrency 1 --seconds "$SECS" --warmup 1 \
    --method /marquee.bookings.v1.BookingService/ListMyBookings --token "$token" --request-file "$tmp/mine.bin")
  echo "{\"bookings\":$n,\"seed\":$seeded,\"calls\":$lg}" >>"$tmp/list.jsonl"
  echo "ListMyBookings at $n bookings: $lg" >&2
  kill -TERM "$(cat "$tmp/list$n.pid")" 2>/dev/null || true
done

section=$(python3 - "$stamp" "$(bench_commit)" "$SAMPLES" "$CONC" "$SECS" "$CAPACITY" "$mem" \
  "bench/results/store-$stamp.json" "$tmp/ops.jsonl" "$tmp/runs.jsonl" "$tmp/list.jsonl" <<'PY'
import json, statistics, sys
stamp, commit, samples, conc, secs, cap, mem, out, ops_f, runs_f, list_f = sys.argv[1:12]
ops = [json.loads(l) for l in open(ops_f) if l.strip()]
runs = [json.loads(l) for l in open(runs_f) if l.strip()]
lists = [json.loads(l) for l in open(list_f) if l.strip()]
mem = json.loads(mem)
json.dump({"stamp": stamp, "commit": commit, "ops": ops, "runs": runs, "memory": mem, "list_my_bookings": lists},
          open(out, "w"), indent=1)
kinds = ["by_id_hit", "by_id_miss", "equality", "keyset", "update", "insert"]
sizes = sorted({o["ops"]["docs"] for o in ops})
def ms(us): return f"{us / 1000:.2f}" if us < 100000 else f"{us / 1000:.0f}"
L = [f"### Store run {stamp} at {commit}\n",
     "FerretDB 1.24 on PostgreSQL (the local stack's store: GIN siblings and the revision check of "
     "scripts/ferretdb/local.sql) and on SQLite (the previous local store), side by side on this machine. "
     f"Store operations: up to {samples} sequential calls per kind and size (fewer when a kind passed 20 s), "
     "random keys, each answer checked. p50 / p99 in ms.\n",
     "| docs | store | " + " | ".join(kinds) + " | fill s |", "|---|---|" + "---|" * (len(kinds) + 1)]
by = {(o["store"], o["ops"]["docs"]): o for o in ops}
for n in sizes:
    for st in ("pg", "sqlite"):
        o = by.get((st, n))
        if not o: continue
        cells = [f"{ms(o['ops'][k]['p50_us'])} / {ms(o['ops'][k]['p99_us'])}" + (f" (n={o['ops'][k]['n']})" if o['ops'][k]['n'] < int(samples) else "") for k in kinds]
        L.append(f"| {n:,} | {st} | " + " | ".join(cells) + f" | {o['fill']['seconds']} |")
lo, hi = sizes[0], sizes[-1]
L.append("")
for st in ("pg", "sqlite"):
    a, b = by.get((st, lo)), by.get((st, hi))
    if a and b:
        r = {k: b["ops"][k]["p50_us"] / max(1, a["ops"][k]["p50_us"]) for k in kinds}
        L.append(f"- {st}: p50 at {hi:,} / p50 at {lo:,}: " + ", ".join(f"{k} **{r[k]:.2f}**" for k in kinds) +
                 (" (targets: by-id and equality <= 1.5)" if st == "pg" else ""))
med = lambda st, f: statistics.median(f(r) for r in runs if r["store"] == st)
ins = {st: med(st, lambda r: r["inserts"]["inserts_per_s"]) for st in ("pg", "sqlite")}
hol = {st: med(st, lambda r: r["holds"]["holds_per_s"]) for st in ("pg", "sqlite")}
L += ["", f"Raw unique inserts and holds ({conc} in flight, {secs} s per run, {len(runs) // 2} runs per store, alternating; "
      f"holds on two servers per store, one hot ticket type of {cap} per run):", "",
      "| run | store | raw inserts/s (p50/p99 ms) | holds/s (server A p50/p99 ms) | errors | holds/raw |", "|---|---|---|---|---|---|"]
for r in runs:
    i, h = r["inserts"], r["holds"]
    L.append(f"| {r['run']} | {r['store']} | {i['inserts_per_s']:.0f} ({ms(i['p50_us'])}/{ms(i['p99_us'])}) | "
             f"{h['holds_per_s']:.0f} ({ms(h['a']['p50_us'])}/{ms(h['a']['p99_us'])}) | {h['a']['errors'] + h['b']['errors']} | "
             f"{h['holds_per_s'] / i['inserts_per_s']:.2f} |")
L += ["", f"Medians: raw inserts pg {ins['pg']:.0f}/s, sqlite {ins['sqlite']:.0f}/s: pg/sqlite **{ins['pg'] / ins['sqlite']:.2f}** (target >= 2); "
      f"holds pg {hol['pg']:.0f}/s, sqlite {hol['sqlite']:.0f}/s: pg/sqlite **{hol['pg'] / hol['sqlite']:.2f}** (target >= 2); "
      f"holds/raw on pg **{hol['pg'] / ins['pg']:.2f}** (target >= 0.5).", "",
      f"Memory with {mem['docs']:,} documents (and the hold runs' data) stored: pg {mem['pg_rss_kib'] / 1024:.0f} MiB "
      f"(proportional set size of PostgreSQL's processes and marquee-ferretdb), "
      f"{mem['pg_disk_kib'] / 1024:.0f} MiB on disk (the whole cluster); sqlite {mem['sqlite_rss_kib'] / 1024:.0f} MiB (proportional set size), "
      f"{mem['sqlite_disk_kib'] / 1024:.0f} MiB on disk."]
if len(lists) == 2:
    lo, hi = lists
    L += ["", f"ListMyBookings (pg, one call at a time, {secs} s, a user with 10 bookings): among {lo['bookings']:,} bookings "
          f"p50 {ms(lo['calls']['p50_us'])} ms, p99 {ms(lo['calls']['p99_us'])} ms; among {hi['bookings']:,} "
          f"p50 **{ms(hi['calls']['p50_us'])} ms** (target <= 5), p99 {ms(hi['calls']['p99_us'])} ms; "
          f"ratio p50 {hi['calls']['p50_us'] / max(1, lo['calls']['p50_us']):.2f}. Seeding {hi['bookings']:,} bookings took "
          f"{hi['seed']['seconds']} s."]
print("\n".join(L))
PY
)
bench_append_section "$section" "bench/results/store-$stamp.json"
