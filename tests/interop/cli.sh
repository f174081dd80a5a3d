#!/usr/bin/env bash
# cli.sh — the `marquee` CLI against a real marquee-server: health, version,
# ping, an error status (bad token) and usage errors, with exit codes.
# Usage: cli.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$1
mq_start_server "$build"
trap 'mq_stop_server || true' EXIT
M=("$build/marquee" --target "$MQ_ADDR")
pass=0 fail=0
expect() { # name, want-exit, want-substring, command...
  local name=$1 want_rc=$2 want=$3; shift 3
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then pass=$((pass+1)); echo "ok   $name";
  else fail=$((fail+1)); echo "FAIL $name: exit $rc (want $want_rc), output:"; echo "$out"; fi
}
for _ in $(seq 1 50); do "${M[@]}" health >/dev/null 2>&1 && break; sleep 0.2; done
expect "health" 0 "SERVING" "${M[@]}" health
expect "health of a service" 0 "SERVING" "${M[@]}" health marquee.system.v1.SystemService
expect "health of an unknown service" 1 "NOT_FOUND" "${M[@]}" health no.such.Service
expect "version" 0 "marquee CLI" "${M[@]}" version
expect "version shows the server" 0 "marquee.system.v1.SystemService" "${M[@]}" version
expect "ping" 0 "" "${M[@]}" ping hello
expect "bad token is refused" 1 "UNAUTHENTICATED" "${M[@]}" --token not-a-jwt ping
expect "unknown command" 2 "" "${M[@]}" no-such-command
expect "keygen notify" 0 "MARQUEE_NOTIFY_SECRET_KEYS=k-1:" "$build/marquee" keygen notify k-1
expect "keygen with a bad key id" 2 "KID is 1-32" "$build/marquee" keygen notify "bad id"
expect "events-doc" 0 '| `users.UserRegistered` |' "$build/marquee" events-doc
expect "unreachable server" 1 "UNAVAILABLE" "$build/marquee" --target 127.0.0.1:1 --deadline-ms 1000 health
email="cli.$$.$RANDOM@example.com"
expect "signup" 0 "MARQUEE_CLI_TOKEN=" env MARQUEE_CLI_PASSWORD="a long cli passphrase" "${M[@]}" signup "$email" "Cli User"
expect "signin with a wrong password" 1 "UNAUTHENTICATED" env MARQUEE_CLI_PASSWORD="not the passphrase" "${M[@]}" signin "$email"
session=$(printf 'a long cli passphrase\n' | "${M[@]}" signin "$email")
token=$(sed -n 's/^MARQUEE_CLI_TOKEN=//p' <<<"$session")
refresh=$(sed -n 's/^MARQUEE_CLI_REFRESH_TOKEN=//p' <<<"$session")
expect "me" 0 "$email" "${M[@]}" --token "$token" me
expect "me without a token" 1 "UNAUTHENTICATED" "${M[@]}" me
expect "signout" 0 "signed out" "${M[@]}" signout "$refresh"
expect "providers (none configured)" 0 "" "${M[@]}" providers
expect "events list (public, empty)" 0 "" "${M[@]}" events list
expect "events get unknown" 1 "NOT_FOUND" "${M[@]}" events get 00000000-0000-4000-8000-000000000001
expect "events create needs a token" 1 "UNAUTHENTICATED" "${M[@]}" events create 00000000-0000-4000-8000-000000000001 Title 2030-01-01T19:00 3 EUR https://x.example/live
expect "events create with a bad start" 2 "" "${M[@]}" --token "$token" events create 00000000-0000-4000-8000-000000000001 Title tomorrow 3 EUR https://x.example/live
expect "events cancel in a foreign organization" 1 "NOT_FOUND" "${M[@]}" --token "$token" events cancel 00000000-0000-4000-8000-000000000001 "no reason"
expect "oauth with an unknown provider" 1 "NOT_FOUND" "${M[@]}" oauth start nope https://app.example/cb
expect "invite needs a role" 2 "" "${M[@]}" --token "$token" invite 00000000-0000-4000-8000-000000000001 a@b.example boss
expect "invite into a foreign organization" 1 "NOT_FOUND" "${M[@]}" --token "$token" invite 00000000-0000-4000-8000-000000000001 a@b.example manager
expect "accept a made-up invitation" 1 "FAILED_PRECONDITION" "${M[@]}" --token "$token" accept mqi_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
expect "categories" 0 "" "${M[@]}" categories
expect "categories with a bad locale" 1 "INVALID_ARGUMENT" "${M[@]}" categories EN
img="$(mktemp)"; printf '\x89PNG\r\n\x1a\n' >"$img"
expect "media upload needs a file" 2 "cannot open" "${M[@]}" --token "$token" media upload 00000000-0000-4000-8000-000000000001 /nonexistent/x.png
expect "media upload into a foreign organization" 1 "NOT_FOUND" "${M[@]}" --token "$token" media upload 00000000-0000-4000-8000-000000000001 "$img"
expect "media upload without a token" 1 "UNAUTHENTICATED" "${M[@]}" media upload 00000000-0000-4000-8000-000000000001 "$img"
rm -f "$img"
nobody=00000000-0000-4000-8000-000000000001
expect "book needs a token" 1 "UNAUTHENTICATED" "${M[@]}" book $nobody $nobody:2
expect "book needs items" 2 "" "${M[@]}" --token "$token" book $nobody
expect "book an unknown event" 1 "NOT_FOUND" "${M[@]}" --token "$token" book $nobody $nobody:2
expect "book zero tickets" 1 "INVALID_ARGUMENT" "${M[@]}" --token "$token" book $nobody $nobody:0
expect "bookings list (none yet)" 0 "" "${M[@]}" --token "$token" bookings list
expect "bookings get unknown" 1 "NOT_FOUND" "${M[@]}" --token "$token" bookings get $nobody
expect "bookings cancel unknown" 1 "NOT_FOUND" "${M[@]}" --token "$token" bookings cancel $nobody "changed my mind"
expect "bookings export of a foreign event" 1 "NOT_FOUND" "${M[@]}" --token "$token" bookings export $nobody
expect "bookings with a bad subcommand" 2 "" "${M[@]}" --token "$token" bookings frobnicate
expect "checkin at a foreign event" 1 "NOT_FOUND" "${M[@]}" --token "$token" checkin $nobody MQT1.x.AAAA North
expect "ticket needs a format" 2 "" "${M[@]}" --token "$token" ticket $nobody gif /tmp/x
expect "ticket unknown" 1 "NOT_FOUND" "${M[@]}" --token "$token" ticket $nobody png /tmp/x.png
trap - EXIT
mq_stop_server || fail=$((fail+1))
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
