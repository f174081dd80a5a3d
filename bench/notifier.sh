#!/usr/bin/env bash
# notifier.sh — the notifier benchmark (deliveries issue). In ONE run, against
# the real local stack (FerretDB, Kafka, mailpit; started here if not running,
# left running at exit unless BENCH_STOP_STACK is set), with a Release build
# (BUILD, default build-bench) and a fresh database:
#   1. The baseline: mq-bench-smtp builds and sends MAILS mails to mailpit
#      from one thread, one SMTP connection per mail, with the same mail
#      builder and SMTP client as the notifier and nothing else around.
#   2. The notifier draining a backlog: USERS accounts are signed up through
#      the server (so USERS UserRegistered events wait in Kafka) before
#      marquee-notifier starts; its welcome mails are then read back from
#      mailpit, and the rate is (USERS - 1) / (last arrival - first arrival),
#      so start-up and the group join are not counted. Each mail costs the
#      notifier a delivery record written before sending and updated after,
#      the template rendering and the SMTP transaction.
#   The ratio notifier/baseline says what the exactly-once bookkeeping and
#   the consumer loop cost per mail. RUNS (3) alternating runs, medians.
# The server runs with cheap Argon2 parameters (sign-ups are the setup here,
# not the measure). Not measured yet: the commit-to-inbox latency under a
# steady booking load (the issue's p99 < 2 s at 100 bookings/s).
# Output: a Markdown section appended to docs/PERFORMANCE.md and printed,
# raw numbers in bench/results/notifier-<stamp>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
USERS=${USERS:-300}
MAILS=${MAILS:-300}
build=${BUILD:-build-bench}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_build marquee-server marquee-notifier marquee mq-bench-smtp
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
db="bench_notifier_$(date -u +%Y%m%d%H%M%S)_$$"
BENCH_DBS=("$db")
bench_stack_up
bash scripts/stack.sh start mailpit >/dev/null
eval "$(bash scripts/stack.sh env)"
keys=$("$build/marquee" keygen notify bench)
BENCH_ENV=(MARQUEE_MONGO_DB="$db" MARQUEE_ARGON2_MEMORY_KIB=1024 MARQUEE_ARGON2_ITERATIONS=1
  "$(sed -n '/^MARQUEE_NOTIFY_KEYS=/p' <<<"$keys")" MARQUEE_SIGNUP_ADDRESS_LIMIT=1000000)
srv=$(bench_start server "$build/marquee-server")
[ -n "$srv" ] || { echo "marquee-server did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
bench_wait_serving "$srv"
secret=$(sed -n 's/^MARQUEE_NOTIFY_SECRET_KEYS=//p' <<<"$keys")

count_to() { # domain -> messages mailpit holds for it
  curl -fsS "http://$MARQUEE_STACK_MAILPIT/api/v1/search?query=to%3A$1&limit=1" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("messages_count", 0))'
}
: >"$tmp/runs.jsonl"
for r in $(seq 1 "$RUNS"); do
  raw_domain="raw$r-$$.bench.example"
  raw=$("$build/mq-bench-smtp" "$MARQUEE_SMTP_URL" "$MAILS" "$raw_domain")
  echo "run $r baseline: $raw"
  domain="n$r-$$.bench.example"
  since=$(($(date +%s) * 1000 - 1000)) # this run's events only (the earlier runs' are in the log too)
  for i in $(seq 1 "$USERS"); do
    MARQUEE_CLI_PASSWORD="bench passphrase number $i" "$build/marquee" --target "$srv" signup "u$i@$domain" "User $i" \
      >/dev/null 2>&1 || { echo "signup $i failed" >&2; exit 1; }
  done
  notifier=$(env MARQUEE_MONGO_DB="$db" MARQUEE_NOTIFY_SECRET_KEYS="$secret" MARQUEE_LOG_LEVEL=warn \
    MARQUEE_CONSUMER_GROUP="bench-notifier-$$-$r" MARQUEE_CONSUMER_SKIP_BEFORE_MS="$since" \
    MARQUEE_CONSUMER_HTTP_LISTEN= "$build/marquee-notifier" >"$tmp/notifier$r.out" 2>"$tmp/notifier$r.err" &
    echo $!)
  echo "$notifier" >"$tmp/notifier$r.pid"
  for _ in $(seq 1 600); do
    [ "$(count_to "$domain")" -ge "$USERS" ] && break
    sleep 0.5
  done
  kill -TERM "$notifier" 2>/dev/null || true
  line=$(curl -fsS "http://$MARQUEE_STACK_MAILPIT/api/v1/search?query=to%3A$domain&limit=$USERS" | python3 -c '
import datetime, json, sys
d = json.load(sys.stdin)
ts = sorted(datetime.datetime.fromisoformat(m["Created"].replace("Z", "+00:00")).timestamp() for m in d["messages"])
n = len(ts)
span = ts[-1] - ts[0] if n > 1 else 0
print(json.dumps({"mails": n, "seconds": round(span, 3), "mails_per_s": round((n - 1) / span, 1) if span > 0 else 0}))')
  echo "run $r notifier: $line"
  python3 -c 'import json, sys; b = json.loads(sys.argv[1]); n = json.loads(sys.argv[2]); print(json.dumps({"raw": b, "notifier": n}))' \
    "$raw" "$line" >>"$tmp/runs.jsonl"
done

json="bench/results/notifier-$(date -u +%Y%m%dT%H%M%SZ).json"
section=$(python3 - "$tmp/runs.jsonl" "$json" "$stamp" "$(bench_commit)" "$USERS" "$MAILS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump({"stamp": sys.argv[3], "commit": sys.argv[4], "runs": runs}, open(sys.argv[2], "w"), indent=1)
raw = statistics.median(r["raw"]["mails_per_s"] for r in runs)
got = statistics.median(r["notifier"]["mails_per_s"] for r in runs)
lines = [f"### Notifier: welcome mails to mailpit against a bare SMTP sender ({sys.argv[3]}, commit {sys.argv[4]})", "",
         f"`bench/notifier.sh`: {sys.argv[5]} accounts signed up, then marquee-notifier started on the backlog; "
         "the rate counts from the first mail's arrival in mailpit to the last. Baseline: mq-bench-smtp sends "
         f"{sys.argv[6]} mails with the same builder and SMTP client from one thread. Local stack, same 2-core "
         "machine, mailpit on loopback.", "",
         "| run | baseline mails/s | notifier mails/s | notifier/baseline |", "|---|---|---|---|"]
for i, r in enumerate(runs, 1):
    b, n = r["raw"]["mails_per_s"], r["notifier"]["mails_per_s"]
    lines.append(f"| {i} | {b:.0f} | {n:.0f} | {n / b:.2f} |")
lines += ["", f"Medians: baseline {raw:.0f} mails/s, notifier **{got:.0f} mails/s**, ratio **{got / raw:.2f}**. "
          "The difference is the notifier's per-mail bookkeeping (a delivery record inserted before the send and "
          "updated after, on FerretDB) and its template rendering. Not measured yet: the commit-to-inbox delay "
          "under steady load (the issue's p99 < 2 s at 100 bookings/s)."]
print("\n".join(lines))
PY
)
bench_append_section "$section" "$json"
