# shellcheck shell=bash
# lib.sh — what the benchmarks share, sourced by bench/*.sh after `cd` to the
# repository root: the Release build, the servers they start and stop, the
# local stack they reuse, the CPU accounting that says whether the machine was
# quiet, the raw-results JSON and the section appended to docs/PERFORMANCE.md.
#
# Invariants:
#   1. Everything a bench starts (bench_start) is stopped on exit, whatever the
#      exit path: SIGTERM, then SIGKILL after 10 s. Its pid is kept in a file,
#      because bench_start runs inside a command substitution (a subshell).
#   2. The databases named in BENCH_DBS are dropped on exit (mq-seed-events
#      --drop, a libmongoc client: no Python module needed) unless
#      BENCH_KEEP_DB is set; stack parts this run had to start are stopped only
#      when BENCH_STOP_STACK is set (other people's tests may use them by then).
#   3. "Other cores" in a measurement = CPU used meanwhile by every process that
#      is not the bench's (its shell and children, the servers it started,
#      FerretDB, Kafka), from /proc/stat and /proc/<pid>/stat; ~0 means quiet.
#
# The caller sets `build` (the build folder) before bench_build, and may set
# BENCH_DBS (array) and BENCH_ENV (array of VAR=value for every server).
# shellcheck disable=SC2034 # variables here are read by the scripts that source it

BENCH_KEYS="bench:benchmark-secret-0123456789abcdefghij"
BENCH_DBS=()
BENCH_ENV=()
stack_started=()
tmp=$(mktemp -d)

bench_build() { # targets... -> Release build of them in $build (mq-seed-events always: it drops databases)
  local out
  if ! out=$(cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMQ_BUILD_TESTS=OFF 2>&1 &&
    ninja -C "$build" mq-seed-events "$@" 2>&1); then
    printf '%s\n' "$out" | tail -n 30 >&2
    echo "build failed in $build" >&2
    exit 1
  fi
  mkdir -p bench/results
}

bench_cleanup() {
  set +e
  local f p d part
  for f in "$tmp"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
  for f in "$tmp"/*.pid; do # wait up to 10 s each, then SIGKILL
    [ -f "$f" ] || continue
    p=$(cat "$f")
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for d in "${BENCH_DBS[@]}"; do
    if [ -n "${BENCH_KEEP_DB:-}" ]; then
      echo "database $d kept" >&2
    elif [ -n "${MARQUEE_MONGO_URI:-}" ] && [ -x "$build/mq-seed-events" ]; then
      MARQUEE_MONGO_DB=$d "$build/mq-seed-events" --drop || echo "note: could not drop database $d" >&2
    fi
  done
  if [ -n "${BENCH_STOP_STACK:-}" ]; then
    for part in "${stack_started[@]}"; do bash scripts/stack.sh stop "$part" >/dev/null; done
  fi
  rm -rf "$tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_stack_up() { # reuse the running stack parts, start the others; then its environment
  local stack_status part
  stack_status=$(bash scripts/stack.sh status) # not piped into grep -q: SIGPIPE + pipefail
  for part in postgres ferretdb kafka; do
    grep -q "^$part *running" <<<"$stack_status" || stack_started+=("$part")
  done
  if [ ${#stack_started[@]} -gt 0 ]; then
    echo "starting the stack: ${stack_started[*]}" >&2
    for part in "${stack_started[@]}"; do bash scripts/stack.sh start "$part" >/dev/null; done
  fi
  eval "$(bash scripts/stack.sh env)"
}

bench_config_default() { # KEY -> the server's default value (from --config-help)
  "$build/marquee-server" --config-help | sed -n "s/^| \`$1\` | \`\([^\`]*\)\` |.*/\1/p"
}

bench_start() { # name binary [VAR=value...] -> prints the gRPC address ("" if it did not start)
  local name=$1 bin=$2
  shift 2
  env MARQUEE_LISTEN=127.0.0.1:0 MARQUEE_HTTP_LISTEN= MARQUEE_LOG_LEVEL=warn MARQUEE_JWT_KEYS="$BENCH_KEYS" \
    "${BENCH_ENV[@]}" "$@" "$bin" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  echo $! >"$tmp/$name.pid"
  for _ in $(seq 1 200); do
    grep -q '^READY' "$tmp/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  sed -n 's/^READY grpc=\([^ ]*\).*/\1/p' "$tmp/$name.out"
}

bench_wait_serving() { # addresses... : each answers SERVING (MongoDB and Kafka reachable) within 30 s
  local addr ok
  for addr in "$@"; do
    ok=
    for _ in $(seq 1 150); do
      if "$build/marquee" --target "$addr" health >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.2
    done
    [ -n "$ok" ] || { echo "marquee-server at $addr did not become SERVING" >&2; tail -n 20 "$tmp"/*.err >&2; exit 1; }
  done
}

bench_holds() { # addrA addrB token request-file seconds in-flight-each -> {"holds_per_s":…,"a":…,"b":…}
  # CreateHold from two mq-loadgen processes at once, one per server, 1 s of warm-up
  local pa
  "$build/mq-loadgen" --target "$1" --concurrency "$6" --seconds "$5" --warmup 1 \
    --method /marquee.bookings.v1.BookingService/CreateHold --token "$3" --request-file "$4" \
    >"$tmp/la.json" 2>"$tmp/la.err" &
  pa=$!
  "$build/mq-loadgen" --target "$2" --concurrency "$6" --seconds "$5" --warmup 1 \
    --method /marquee.bookings.v1.BookingService/CreateHold --token "$3" --request-file "$4" \
    >"$tmp/lb.json" 2>"$tmp/lb.err"
  wait "$pa"
  python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:3])
print(json.dumps({"holds_per_s": a["qps"] + b["qps"], "a": a, "b": b}))' "$tmp/la.json" "$tmp/lb.json"
}

bench_hold_request() { # file -> after mq-bench-bookings setup (EVENT_ID, TICKET_TYPE_ID): a CreateHold for one unit
  printf 'event_id: "%s"\nitems { ticket_type_id: "%s" quantity: 1 }\n' "$EVENT_ID" "$TICKET_TYPE_ID" |
    protoc --encode=marquee.bookings.v1.CreateHoldRequest -I proto marquee/bookings/v1/bookings.proto >"$1"
}

# ---- CPU accounting (clock ticks) --------------------------------------------
declare -A results
record() { # key line
  results[$1]+="$2"$'\n'
}
bench_pids=
bench_cpu_init() { # after the servers started: whose CPU counts as the bench's
  local stack_run=${MARQUEE_STACK_DIR:-.stack}/run
  hz=$(getconf CLK_TCK)
  bench_pids="$(cat "$tmp"/*.pid "$stack_run/postgres.pid" "$stack_run/ferretdb.pid" "$stack_run/kafka.pid" 2>/dev/null | tr '\n' ' ')"
  mongo_port=$(sed -n 's#^mongodb://[^/]*:\([0-9][0-9]*\)/.*#\1#p' <<<"${MARQUEE_MONGO_URI:-}")
  kafka_port=${MARQUEE_KAFKA_BROKERS##*:}
}
proc_ticks() { # pid fields... -> sum of those /proc/<pid>/stat fields (numbered after "pid (comm) ")
  local p=$1
  shift
  awk -v f="$*" '{sub(/^.*\) /, ""); n = split(f, a, " "); s = 0; for (i = 1; i <= n; i++) s += $(a[i] - 2); print s}' \
    "/proc/$p/stat" 2>/dev/null || echo 0
}
snap() { # "uptime busy ours": busy is every CPU's non-idle time, ours the bench's processes
  local up busy ours p
  up=$(awk -v hz="$hz" '{printf "%d", $1 * hz}' /proc/uptime)
  busy=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
  ours=$(proc_ticks $$ 14 15 16 17) # the shell and every child it waited for
  for p in $bench_pids; do ours=$((ours + $(proc_ticks "$p" 14 15))); done
  echo "$up $busy $ours"
}
# Other processes connected to FerretDB or Kafka right now (their work in
# FerretDB counts as ours above): "pid:name" words.
stack_clients() {
  command -v ss >/dev/null || return 0
  ss -Htnp state established "( dport = :${mongo_port:-27017} or dport = :${kafka_port:-9092} )" 2>/dev/null |
    sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\2:\1/p' | sort -u |
    while IFS=: read -r p name; do
      case " $bench_pids " in *" $p "*) ;; *) echo "$p:$name" ;; esac
    done | tr '\n' ' '
}
# measured KEY CMD... : run CMD, record its one JSON line with "other_cores"
# (average cores used by other processes meanwhile), "other_clients" (other
# processes on the stack, sampled before and after) and, when $win is set,
# "seconds" added, and leave it in $line. Not in a command substitution:
# record must run in this shell.
line=
win=
measured() {
  local key=$1 s0 s1 other c0 c1 n
  shift
  c0=$(stack_clients)
  s0=$(snap)
  line=$("$@")
  s1=$(snap)
  c1=$(stack_clients)
  other=$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " ");
    w = y[1] - x[1]; o = (y[2] - x[2]) - (y[3] - x[3]); printf "%.2f", (w > 0 ? o / w : 0) }') # parenthesised: mawk reads a bare > as a redirection
  n=$(printf '%s\n' $c0 $c1 | sed '/^$/d' | sort -u | wc -l)
  line="${line%\}}${win:+,\"seconds\":$win},\"other_cores\":$other,\"other_clients\":$n,\"other_client_names\":\"$(printf '%s\n' $c0 $c1 |
    sed -n 's/^[0-9]*://p' | sort -u | paste -sd' ' -)\"}"
  record "$key" "$line"
}

# ---- reporting -----------------------------------------------------------------
bench_commit() { # the commit measured, marked when the tree has uncommitted changes
  local c
  c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || c="$c + uncommitted changes"
  echo "$c"
}
bench_json_map() { # name [one] : associative array of JSON lines -> {"key":[line,...],...}
  local -n m=$1          # with "one": each value is one JSON value -> {"key":value,...}
  local k first=1
  printf '{'
  for k in "${!m[@]}"; do
    [ $first = 1 ] || printf ','
    first=0
    if [ "${2:-}" = one ]; then
      printf '"%s":%s' "$k" "${m[$k]}"
    else
      printf '"%s":[%s]' "$k" "$(printf '%s' "${m[$k]}" | paste -sd, -)"
    fi
  done
  printf '}'
}
bench_append_section() { # section json-file : print it and append it to docs/PERFORMANCE.md
  echo
  echo "$1"
  if [ ! -f docs/PERFORMANCE.md ]; then
    printf '# Performance\n\nFigures are ratios against a baseline measured in the same run (see bench/). Newest first within each section.\n\n' >docs/PERFORMANCE.md
  fi
  printf '\n%s\n' "$1" >>docs/PERFORMANCE.md
  echo "appended to docs/PERFORMANCE.md; raw results in $2"
}
