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
#      BENCH_KEEP_DB (unset: the run's database is dropped at exit; set: kept
#      for inspection), BENCH_STOP_STACK (set: also
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

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server mq-bare-echo mq-loadgen mq-argon2-rate marquee
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
db="bench_identity_$(date -u +%Y%m%d%H%M%S)_$$"
BENCH_DBS=("$db")
bench_stack_up

# ---- configuration: the server's defaults unless the caller set the keys
argon2_m=${MARQUEE_ARGON2_MEMORY_KIB:-$(bench_config_default MARQUEE_ARGON2_MEMORY_KIB)}
argon2_t=${MARQUEE_ARGON2_ITERATIONS:-$(bench_config_default MARQUEE_ARGON2_ITERATIONS)}
workers=${MARQUEE_WORKERS:-$(bench_config_default MARQUEE_WORKERS)}
[ -n "$argon2_m" ] && [ -n "$argon2_t" ] && [ -n "$workers" ] ||
  { echo "cannot read the Argon2 defaults from marquee-server --config-help" >&2; exit 1; }
# Raised for this run only (see the header); they end up in the report.
limits="MARQUEE_SIGNIN_FAILURE_LIMIT=1000 MARQUEE_SIGNIN_ADDRESS_LIMIT=1000000 MARQUEE_SIGNUP_ADDRESS_LIMIT=1000000"

# shellcheck disable=SC2206 # $limits is a list of assignments
BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_ACCESS_TOKEN_TTL_S=86400 MARQUEE_ARGON2_MEMORY_KIB="$argon2_m"
  MARQUEE_ARGON2_ITERATIONS="$argon2_t" MARQUEE_WORKERS="$workers" $limits)

bare=$(bench_start bare "$build/mq-bare-echo")
full=$(bench_start marquee "$build/marquee-server")
[ -n "$bare" ] && [ -n "$full" ] || { echo "servers did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
export MARQUEE_CLI_TARGET=$full
bench_wait_serving "$full"

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

bench_cpu_init

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

commit=$(bench_commit)
json="bench/results/identity-$(date -u +%Y%m%dT%H%M%SZ).json"
{
  echo "{\"stamp\":\"$stamp\",\"commit\":\"$commit\",\"runs\":$RUNS,\"signin_runs\":$SIGNIN_RUNS,"
  echo "\"seconds\":$SECS,\"argon2_seconds\":$ARGON2_SECS,\"users\":$USERS,\"argon2_m_kib\":$argon2_m,"
  echo "\"argon2_t\":$argon2_t,\"workers\":$workers,"
  echo "\"limits\":\"$limits\",\"results\":$(bench_json_map results)}"
} >"$json"

# medians and the markdown section
section=$(/usr/bin/env python3 - "$json" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
import report
d = json.load(open(sys.argv[1]))
res, secs = d["results"], d["seconds"]
med = lambda key, f: statistics.median(f(x) for x in res[key])
okqps = lambda x: x["ok"] / secs
other = lambda key: max(0.0, med(key, lambda x: x["other_cores"]))
errs = lambda key: report.errs(res, key)
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
out += report.quiet_warning(res)
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
bench_append_section "$section" "$json"
