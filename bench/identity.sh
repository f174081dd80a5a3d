#!/usr/bin/env bash
# identity.sh — the identity benchmark. In ONE run, against the real local
# stack (FerretDB + Kafka, started here if they are not running; left running
# afterwards like scripts/test.sh does, since it is shared) and a fresh
# database, it measures:
#   1. AccountService.GetMe with a valid bearer token through marquee-server's
#      full chain against the bare transport's Ping (mq-bare-echo), 64 calls in
#      flight, RUNS alternating runs each; medians and the ratio GetMe/bare
#      (identity issue target: >= 0.6).
#   2. AccountService.SignIn with the correct password, cycling over USERS
#      accounts created through the server first (SignUp), at 2, 8 and 64 in
#      flight, SIGNIN_RUNS runs; median QPS, p50, p99. Interleaved with those
#      runs, mq-argon2-rate measures the raw Argon2id hash rate with the
#      server's parameters (1 and 2 threads), so sign-in throughput can be
#      stated as a fraction of the hash-bound ceiling of this machine.
# Load comes from mq-loadgen (closed loop, C core, same machine; it counts
# the calls completing inside each measured window). Every call should
# succeed: failures are counted per gRPC status and shown in the tables.
# The servers it starts are stopped on exit (SIGTERM, then SIGKILL after
# 10 s), whatever the exit path.
# The machine may be shared: around every measurement the script samples
# /proc/stat and subtracts the CPU time of the bench's own processes (its
# servers, the load generator and mq-argon2-rate, FerretDB, Kafka); what is
# left is other load ("other cores" in the tables; the section warns when it
# is not ~0, and a stack part restarted by someone else mid-run shows up
# there too).
# The sign-in abuse limits are raised for the run (successful sign-ins are
# not counted against them, but 64 sign-ups from one address are, and one
# stray failure must not lock an account mid-run); the section says so.
# Appends a dated section to docs/PERFORMANCE.md, raw numbers to
# bench/results/identity-<stamp>.json, and prints the section.
# Env: RUNS (5), BENCH_SECONDS (5, per run), SIGNIN_RUNS (3), USERS (64),
#      ARGON2_SECONDS (2, per thread count and run), BUILD (build-bench),
#      BENCH_KEEP_DB (unset: the run's database is dropped at exit if python3
#      has pymongo; set: kept for inspection), BENCH_STOP_STACK (set: also
#      stop the stack parts this run had to start).
#      MARQUEE_ARGON2_MEMORY_KIB / MARQUEE_ARGON2_ITERATIONS, if set, are used
#      for both the server and the raw hash rate (default: the server's).
# Default total: about 2.5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECS=${BENCH_SECONDS:-5}
SIGNIN_RUNS=${SIGNIN_RUNS:-3}
USERS=${USERS:-64}
ARGON2_SECS=${ARGON2_SECONDS:-2}
build=${BUILD:-build-bench}
getme=/marquee.identity.v1.AccountService/GetMe
signin=/marquee.identity.v1.AccountService/SignIn
proto=marquee/identity/v1/identity.proto

if ! out=$(cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMQ_BUILD_TESTS=OFF 2>&1 &&
  ninja -C "$build" marquee-server mq-bare-echo mq-loadgen mq-argon2-rate marquee 2>&1); then
  printf '%s\n' "$out" | tail -n 30 >&2
  echo "build failed in $build" >&2
  exit 1
fi
mkdir -p bench/results

tmp=$(mktemp -d)
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
db="bench_identity_$(date -u +%Y%m%d%H%M%S)_$$"
stack_started=()
# start() runs in a command substitution (a subshell), so pids go to files.
cleanup() {
  set +e
  for f in "$tmp"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
  for f in "$tmp"/*.pid; do # wait up to 10 s each, then SIGKILL
    [ -f "$f" ] || continue
    p=$(cat "$f")
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  if [ -z "${BENCH_KEEP_DB:-}" ] && [ -n "${MARQUEE_MONGO_URI:-}" ] &&
    python3 -c 'import pymongo' 2>/dev/null; then
    python3 -c 'import pymongo, sys; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=3000).drop_database(sys.argv[2])' \
      "$MARQUEE_MONGO_URI" "$db" 2>/dev/null || echo "note: could not drop database $db" >&2
  else
    echo "database $db kept" >&2
  fi
  if [ -n "${BENCH_STOP_STACK:-}" ]; then
    for part in "${stack_started[@]}"; do bash scripts/stack.sh stop "$part" >/dev/null; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the stack: reuse running parts, start the others (left running at exit
# unless BENCH_STOP_STACK is set: other people's tests may be using it by then)
stack_status=$(bash scripts/stack.sh status) # not piped into grep -q: SIGPIPE + pipefail
for part in ferretdb kafka; do
  grep -q "^$part *running" <<<"$stack_status" || stack_started+=("$part")
done
if [ ${#stack_started[@]} -gt 0 ]; then
  echo "starting the stack: ${stack_started[*]}"
  for part in "${stack_started[@]}"; do bash scripts/stack.sh start "$part" >/dev/null; done
fi
eval "$(bash scripts/stack.sh env)"

# ---- configuration: the server's defaults unless the caller set the keys
config_default() { # KEY -> the server's default value (from --config-help)
  "$build/marquee-server" --config-help | sed -n "s/^| \`$1\` | \`\([^\`]*\)\` |.*/\1/p"
}
argon2_m=${MARQUEE_ARGON2_MEMORY_KIB:-$(config_default MARQUEE_ARGON2_MEMORY_KIB)}
argon2_t=${MARQUEE_ARGON2_ITERATIONS:-$(config_default MARQUEE_ARGON2_ITERATIONS)}
workers=${MARQUEE_WORKERS:-$(config_default MARQUEE_WORKERS)}
[ -n "$argon2_m" ] && [ -n "$argon2_t" ] && [ -n "$workers" ] ||
  { echo "cannot read the Argon2 defaults from marquee-server --config-help" >&2; exit 1; }
# Raised for this run only (see the header); they end up in the report.
limits="MARQUEE_SIGNIN_FAILURE_LIMIT=1000 MARQUEE_SIGNIN_ADDRESS_LIMIT=1000000 MARQUEE_SIGNUP_ADDRESS_LIMIT=1000000"

start() { # name binary -> prints address
  local name=$1 bin=$2
  # shellcheck disable=SC2086 # $limits is a list of assignments
  env MARQUEE_LISTEN=127.0.0.1:0 MARQUEE_HTTP_LISTEN= MARQUEE_LOG_LEVEL=warn \
    MARQUEE_JWT_KEYS="bench:benchmark-secret-0123456789abcdefghij" MARQUEE_MONGO_DB="$db" \
    MARQUEE_ACCESS_TOKEN_TTL_S=86400 MARQUEE_ARGON2_MEMORY_KIB="$argon2_m" MARQUEE_ARGON2_ITERATIONS="$argon2_t" \
    MARQUEE_WORKERS="$workers" $limits "$bin" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  echo $! >"$tmp/$name.pid"
  for _ in $(seq 1 200); do
    grep -q '^READY' "$tmp/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  sed -n 's/^READY grpc=\([^ ]*\).*/\1/p' "$tmp/$name.out"
}

bare=$(start bare "$build/mq-bare-echo")
full=$(start marquee "$build/marquee-server")
[ -n "$bare" ] && [ -n "$full" ] || { echo "servers did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
export MARQUEE_CLI_TARGET=$full
ok=
for _ in $(seq 1 150); do # SERVING = MongoDB and Kafka reachable
  if "$build/marquee" health >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || { echo "marquee-server did not become SERVING" >&2; tail -n 20 "$tmp/marquee.err" >&2; exit 1; }

# ---- accounts (through the real server), tokens and request bytes
echo "signing up $USERS users in database $db"
signin_files=()
token=
for i in $(seq 0 $((USERS - 1))); do
  email="bench-user-$i@example.com" pw="correct horse battery staple $i"
  if ! out=$(MARQUEE_CLI_PASSWORD="$pw" "$build/marquee" signup "$email" "Bench User $i" 2>&1); then
    echo "signup of $email failed: $out" >&2
    exit 1
  fi
  [ -n "$token" ] || token=$(sed -n 's/^MARQUEE_CLI_TOKEN=//p' <<<"$out")
  printf 'email: "%s"\npassword: "%s"\n' "$email" "$pw" |
    protoc --encode=marquee.identity.v1.SignInRequest -I proto "proto/$proto" >"$tmp/signin-$i.bin"
  signin_files+=(--request-file "$tmp/signin-$i.bin")
done
[ -n "$token" ] || { echo "signup printed no access token" >&2; exit 1; }
protoc --encode=marquee.identity.v1.GetMeRequest -I proto "proto/$proto" </dev/null >"$tmp/getme.bin"

declare -A results
record() { # key line
  results[$1]+="$2"$'\n'
}

# CPU accounting (clock ticks): "uptime busy ours" — busy is every CPU's
# non-idle time, ours the bench's processes (see the header).
hz=$(getconf CLK_TCK)
stack_run=${MARQUEE_STACK_DIR:-.stack}/run
bench_pids="$(cat "$tmp"/*.pid "$stack_run/ferretdb.pid" "$stack_run/kafka.pid" 2>/dev/null | tr '\n' ' ')"
proc_ticks() { # pid fields... -> sum of those /proc/<pid>/stat fields (numbered after "pid (comm) ")
  local p=$1
  shift
  awk -v f="$*" '{sub(/^.*\) /, ""); n = split(f, a, " "); s = 0; for (i = 1; i <= n; i++) s += $(a[i] - 2); print s}' \
    "/proc/$p/stat" 2>/dev/null || echo 0
}
snap() {
  local up busy ours p
  up=$(awk -v hz="$hz" '{printf "%d", $1 * hz}' /proc/uptime)
  busy=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
  ours=$(proc_ticks $$ 14 15 16 17) # the shell and every child it waited for
  for p in $bench_pids; do ours=$((ours + $(proc_ticks "$p" 14 15))); done
  echo "$up $busy $ours"
}
# measured KEY CMD... : run CMD, record its one JSON line with "other_cores"
# (average cores used by other processes meanwhile) added, and leave it in
# $line. Not in a command substitution: record must run in this shell.
line=
measured() {
  local key=$1 s0 s1 other
  shift
  s0=$(snap)
  line=$("$@")
  s1=$(snap)
  other=$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " ");
    w = y[1] - x[1]; o = (y[2] - x[2]) - (y[3] - x[3]); printf "%.2f", (w > 0 ? o / w : 0) }') # parenthesised: mawk reads a bare > as a redirection
  line="${line%\}},\"other_cores\":$other}"
  record "$key" "$line"
}

# ---- 1. GetMe vs bare Ping at 64 in flight, alternating
for r in $(seq 1 "$RUNS"); do
  measured bare "$build/mq-loadgen" --target "$bare" --concurrency 64 --seconds "$SECS" --warmup 1
  echo "bare Ping c=64 run $r: $line"
  measured getme "$build/mq-loadgen" --target "$full" --concurrency 64 --seconds "$SECS" --warmup 1 \
    --method "$getme" --request-file "$tmp/getme.bin" --token "$token"
  echo "GetMe c=64 run $r: $line"
done

# ---- 2. SignIn at 2, 8, 64 in flight, with the raw hash rate in between
for r in $(seq 1 "$SIGNIN_RUNS"); do
  for n in 1 2; do
    measured "argon2,$n" "$build/mq-argon2-rate" --threads "$n" --seconds "$ARGON2_SECS" \
      --m-kib "$argon2_m" --t "$argon2_t" --p 1
    echo "argon2id run $r: $line"
  done
  for c in 2 8 64; do
    measured "signin,$c" "$build/mq-loadgen" --target "$full" --concurrency "$c" --seconds "$SECS" --warmup 1 \
      --method "$signin" "${signin_files[@]}"
    echo "SignIn c=$c run $r: $line"
  done
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit + uncommitted changes"
json="bench/results/identity-$(date -u +%Y%m%dT%H%M%SZ).json"
{
  echo "{\"stamp\":\"$stamp\",\"commit\":\"$commit\",\"runs\":$RUNS,\"signin_runs\":$SIGNIN_RUNS,"
  echo "\"seconds\":$SECS,\"argon2_seconds\":$ARGON2_SECS,\"users\":$USERS,\"argon2_m_kib\":$argon2_m,"
  echo "\"argon2_t\":$argon2_t,\"workers\":$workers,"
  echo "\"limits\":\"$limits\",\"results\":{"
  first=1
  for k in "${!results[@]}"; do
    [ $first = 1 ] || echo ","
    first=0
    printf '"%s":[%s]' "$k" "$(printf '%s' "${results[$k]}" | paste -sd, -)"
  done
  echo "}}"
} >"$json"

# medians and the markdown section
section=$(/usr/bin/env python3 - "$json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
res, secs = d["results"], d["seconds"]
med = lambda key, f: statistics.median(f(x) for x in res[key])
okqps = lambda x: x["ok"] / secs
other = lambda key: max(0.0, med(key, lambda x: x["other_cores"]))
worst = max(max(x["other_cores"] for x in v) for v in res.values())
def errs(key):
    codes = {}
    for x in res[key]:
        for c, n in x.get("codes", {}).items():
            codes[c] = codes.get(c, 0) + n
    total = sum(x["errors"] for x in res[key])
    return str(total) + (" (" + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) + ")" if codes else "")
bq, gq = med("bare", okqps), med("getme", okqps)
ratio = gq / bq
a1, a2 = med("argon2,1", lambda x: x["hashes_per_s"]), med("argon2,2", lambda x: x["hashes_per_s"])
ms1 = med("argon2,1", lambda x: x["ms_per_hash"])
out = [f"### Identity: GetMe vs bare transport, and password sign-in ({d['stamp']}, commit {d['commit']})", "",
       "`bench/identity.sh`: marquee-server on the local stack (FerretDB 1.24/SQLite + Kafka, same machine) with a "
       f"fresh database; {d['users']} accounts created through SignUp first. mq-loadgen closed loop, 1 s warm-up, "
       f"{secs} s measured per run, everything on the same 2-core machine. QPS counts successful calls completing "
       "in the measured window. "
       f"Configuration for the run: Argon2id m={d['argon2_m_kib']} KiB, t={d['argon2_t']}, p=1 "
       f"(MARQUEE_ARGON2_MEMORY_KIB / MARQUEE_ARGON2_ITERATIONS), MARQUEE_WORKERS={d['workers']}, and the abuse "
       f"limits raised so that no bench call is refused: {', '.join(d['limits'].split())}; otherwise the defaults "
       "(MARQUEE_LOG_LEVEL=warn, as in bench/run.sh). \"Other cores\": average CPU used meanwhile by processes "
       "outside the benchmark (/proc/stat minus the servers, load generator, mq-argon2-rate, FerretDB and Kafka), "
       "median over the runs; ~0 means the machine was otherwise quiet.", ""]
if worst > 0.15:
    out += [f"**Warning: other processes used up to {worst:.2f} cores during some measurements of this run; "
            "the figures below are disturbed by that load. Rerun on a quiet machine.**", ""]
out += [f"GetMe with a valid bearer token (full chain + handler) against the bare transport's Ping, 64 in flight, "
        f"median of {d['runs']} alternating runs:", "",
        "| in flight | bare Ping QPS | bare p50 µs | bare p99 µs | GetMe QPS | GetMe p50 µs | GetMe p99 µs | GetMe/bare | GetMe errors | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| 64 | {bq:.0f} | {med('bare', lambda x: x['p50_us']):.0f} | {med('bare', lambda x: x['p99_us']):.0f} "
        f"| {gq:.0f} | {med('getme', lambda x: x['p50_us']):.0f} | {med('getme', lambda x: x['p99_us']):.0f} "
        f"| **{ratio:.2f}** | {errs('getme')} | {max(other('bare'), other('getme')):.2f} |", "",
        f"Target (identity issue): GetMe/bare ≥ 0.6 at 64 in flight. Measured: {ratio:.2f} — "
        f"{'met' if ratio >= 0.6 else 'NOT met'}.", "",
        f"SignIn with the correct password, cycling over the {d['users']} accounts, {d['signin_runs']} runs. Before "
        f"each run mq-argon2-rate measured raw Argon2id (libargon2 `argon2id_hash_raw`, same parameters) on this "
        f"machine for {d['argon2_seconds']} s per thread count; medians: **{a1:.1f} hashes/s** on 1 thread "
        f"({ms1:.1f} ms per hash, other cores {other('argon2,1'):.2f}), **{a2:.1f} hashes/s** on 2 threads "
        f"(other cores {other('argon2,2'):.2f}). Each SignIn verifies one hash, so the 2-thread rate is the "
        "hash-bound ceiling for sign-in; the fraction below is each run's SignIn QPS over the 2-thread rate "
        "measured just before it, median over the runs.", "",
        "| in flight | SignIn QPS | p50 ms | p99 ms | of hash ceiling | errors | other cores |",
        "|---|---|---|---|---|---|---|"]
for c in ("2", "8", "64"):
    k = f"signin,{c}"
    frac = statistics.median(okqps(x) / y["hashes_per_s"] for x, y in zip(res[k], res["argon2,2"]))
    out.append(f"| {c} | {med(k, okqps):.1f} | {med(k, lambda x: x['p50_us']) / 1000:.1f} "
               f"| {med(k, lambda x: x['p99_us']) / 1000:.1f} | **{frac:.2f}** | {errs(k)} | {other(k):.2f} |")
print("\n".join(out))
PY
)
echo
echo "$section"
if [ ! -f docs/PERFORMANCE.md ]; then
  printf '# Performance\n\nFigures are ratios against a baseline measured in the same run (see bench/). Newest first within each section.\n\n' >docs/PERFORMANCE.md
fi
printf '\n%s\n' "$section" >>docs/PERFORMANCE.md
echo "appended to docs/PERFORMANCE.md; raw results in $json"
