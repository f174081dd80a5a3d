#!/usr/bin/env bash
# scripts/stack.sh - install and run Marquee's local dev/CI stack.
#
# The stack is a MongoDB-compatible server (FerretDB v1.24.2 embedded in
# marquee-ferretdb, built from scripts/ferretdb, on Debian's PostgreSQL —
# docs/ARCHITECTURE.md says why), a single-node Apache Kafka 3.9.1 broker
# (KRaft, combined broker+controller, jars fetched by scripts/kafka/pom.xml),
# mailpit and stripe-mock. Everything listens on 127.0.0.1 only and lives
# under one directory:
#
#   $MARQUEE_STACK_DIR (default: <repo>/.stack)
#     bin/            marquee-ferretdb, marquee-promlint, grpcurl, ghz, mailpit,
#                     stripe-mock
#     toolchain/      Go toolchain, only if the system Go is older than 1.24
#     kafka/lib/      Kafka jars;  kafka/server.properties, kafka/log4j.properties
#     data/postgres/  data/kafka/  data/mailpit/   (data/ferretdb/: the
#                     SQLite files of stacks before PostgreSQL; no longer read)
#     logs/<part>.log (previous run in <part>.log.1; install-*.log per step)
#     run/<part>.pid  run/<part>.port
#
# Subcommands (part = postgres | ferretdb | kafka | mailpit | stripe | all;
# default all; ferretdb includes postgres, which it runs on):
#   install            apt packages (only if missing), marquee-ferretdb, marquee-promlint,
#                      Kafka jars, grpcurl v1.9.1, ghz v0.120.0, mailpit v1.33.1
#                      (the SMTP server mail goes to, with an HTTP API to read it),
#                      stripe-mock v0.203.0 (Stripe's API mock: the payment tests' peer),
#                      oauth2-mock-server (npm), grpcio-status (PyPI, into
#                      py/). Idempotent.
#   start   [part]     start in the background unless running; wait until ready
#                      (PostgreSQL: pg_isready, 60 s; FerretDB: TCP connect, 60 s
#                      — it creates its database and applies scripts/ferretdb/
#                      local.sql first; Kafka: kcat metadata, 120 s;
#                      mailpit: its API answers, 30 s; stripe-mock: an authenticated
#                      GET answers, 30 s)
#   stop    [part]     SIGTERM, up to 20 s, then SIGKILL (not running = fine)
#   restart [part]     stop, then start
#   status             one line per part: running (pid) / stopped, and the port
#   logs    [part]     last 100 lines of the part's log
#   reset              stop everything and delete data/ (clean slate)
#   env                print export lines; use:  eval "$(scripts/stack.sh env)"
#   help               this text
#
# Environment:
#   MARQUEE_STACK_DIR                    stack directory (default <repo>/.stack)
#   MARQUEE_STACK_MONGO_PORT             FerretDB port          (default 27017)
#   MARQUEE_STACK_PG_PORT                PostgreSQL port        (default 54320)
#   MARQUEE_STACK_KAFKA_PORT             Kafka PLAINTEXT port   (default 9092)
#   MARQUEE_STACK_KAFKA_CONTROLLER_PORT  KRaft controller port  (default 9093)
#   MARQUEE_STACK_SMTP_PORT              mailpit's SMTP port    (default 1025)
#   MARQUEE_STACK_MAILPIT_PORT           mailpit's HTTP API/UI  (default 8025)
#   MARQUEE_STACK_STRIPE_PORT            stripe-mock's HTTP port (default 12111;
#                                        its HTTPS listener takes the next one)
#   MARQUEE_STACK_GO_TOOLCHAIN           Go fetched from the Go module proxy when
#                                        the system Go is < 1.24 (default go1.24.13)
#
# Any failure exits non-zero and prints the last 40 lines of the relevant log.
# Mutating subcommands take a lock (run/stack.lock), so concurrent calls queue.

set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname "$SCRIPT_DIR")
STACK=${MARQUEE_STACK_DIR:-$REPO/.stack}
MONGO_PORT=${MARQUEE_STACK_MONGO_PORT:-27017}
PG_PORT=${MARQUEE_STACK_PG_PORT:-54320}
KAFKA_PORT=${MARQUEE_STACK_KAFKA_PORT:-9092}
CTRL_PORT=${MARQUEE_STACK_KAFKA_CONTROLLER_PORT:-9093}
SMTP_PORT=${MARQUEE_STACK_SMTP_PORT:-1025}
MAILPIT_PORT=${MARQUEE_STACK_MAILPIT_PORT:-8025}
STRIPE_PORT=${MARQUEE_STACK_STRIPE_PORT:-12111}
GO_TOOLCHAIN_VERSION=${MARQUEE_STACK_GO_TOOLCHAIN:-go1.24.13}

KAFKA_VERSION=3.9.1
KAFKA_MARKER_JAR=kafka_2.13-$KAFKA_VERSION.jar
GRPCURL_MOD=github.com/fullstorydev/grpcurl
GRPCURL_VERSION=v1.9.1
GHZ_MOD=github.com/bojand/ghz
GHZ_VERSION=v0.120.0
MAILPIT_MOD=github.com/axllent/mailpit
MAILPIT_VERSION=v1.33.1
STRIPE_MOCK_MOD=github.com/stripe/stripe-mock
STRIPE_MOCK_VERSION=v0.203.0
GO_MIN_MINOR=24   # scripts/ferretdb/go.mod says "go 1.24"

FERRETDB_TIMEOUT=60
POSTGRES_TIMEOUT=60
KAFKA_TIMEOUT=120
MAILPIT_TIMEOUT=30
STRIPE_TIMEOUT=30
STOP_TIMEOUT=20
ALL_PARTS=(postgres ferretdb kafka mailpit stripe)

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libgrpc-dev protobuf-compiler libprotobuf-dev libprotoc-dev
  protobuf-c-compiler libprotobuf-c-dev libmongoc-dev libbson-dev
  librdkafka-dev libcmocka-dev libmicrohttpd-dev libjwt-dev libargon2-dev
  libsodium-dev libicu-dev libqrencode-dev libpng-dev libhpdf-dev fonts-dejavu-core libcurl4-openssl-dev libssl-dev uuid-dev cppcheck clang-format kcat
  python3 python3-grpcio python3-grpc-tools python3-protobuf openssl tzdata libsqlite3-dev sqlite3
  postgresql util-linux
)

# ---------------------------------------------------------------- helpers --

say() { printf '[stack] %s\n' "$*"; }
err() { printf '[stack] ERROR: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }

# fail_with_log LOGFILE MESSAGE: report, show the log's tail, exit 1.
fail_with_log() {
  local logf=$1; shift
  err "$*"
  if [[ -s $logf ]]; then
    printf -- '----- last 40 lines of %s -----\n' "$logf" >&2
    tail -n 40 "$logf" >&2
    printf -- '----- end of %s -----\n' "$logf" >&2
  else
    err "(log $logf is empty or missing)"
  fi
  exit 1
}

# shellcheck disable=SC2317  # called from the ERR trap
on_err() { err "unexpected failure (exit $1) at line $2: $3"; }
trap 'on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

check_port() { # name value
  if ! [[ $2 =~ ^[0-9]+$ ]] || (( 10#$2 < 1 || 10#$2 > 65535 )); then
    die "$1 must be a port number (1-65535), got '$2'"
  fi
}

validate_config() {
  check_port MARQUEE_STACK_MONGO_PORT "$MONGO_PORT"
  check_port MARQUEE_STACK_PG_PORT "$PG_PORT"
  check_port MARQUEE_STACK_KAFKA_PORT "$KAFKA_PORT"
  check_port MARQUEE_STACK_KAFKA_CONTROLLER_PORT "$CTRL_PORT"
  check_port MARQUEE_STACK_SMTP_PORT "$SMTP_PORT"
  check_port MARQUEE_STACK_MAILPIT_PORT "$MAILPIT_PORT"
  if [[ $MONGO_PORT == "$KAFKA_PORT" || $MONGO_PORT == "$CTRL_PORT" || $KAFKA_PORT == "$CTRL_PORT" ]]; then
    die "ports must differ: mongo=$MONGO_PORT kafka=$KAFKA_PORT controller=$CTRL_PORT"
  fi
  [[ -n $STACK && $STACK != / ]] || die "MARQUEE_STACK_DIR must not be empty or /"
  STACK=$(realpath -m -- "$STACK")   # absolute: it ends up in config files
}

make_dirs() {
  mkdir -p "$STACK"/{bin,kafka/lib,data/kafka,data/mailpit,logs,run}
}

# Serialise mutating subcommands. fd 9 must not leak into daemons (see launch).
take_lock() {
  mkdir -p "$STACK/run"
  exec 9>"$STACK/run/stack.lock"
  if ! flock -n 9; then
    say "another stack.sh is running; waiting for it (up to 15 min)…"
    flock -w 900 9 || die "timed out waiting for the lock $STACK/run/stack.lock"
  fi
}

parts_from_arg() { # sets PARTS
  case ${1:-all} in
    all) PARTS=("${ALL_PARTS[@]}") ;;
    postgres|postgresql) PARTS=(postgres) ;;
    ferretdb|mongo|mongodb) PARTS=(postgres ferretdb) ;;
    kafka) PARTS=(kafka) ;;
    mailpit|smtp) PARTS=(mailpit) ;;
    stripe|stripe-mock) PARTS=(stripe) ;;
    *) die "unknown part '$1' (expected: postgres, ferretdb, kafka, mailpit, stripe or all)" ;;
  esac
}

pid_file()  { printf '%s/run/%s.pid' "$STACK" "$1"; }
port_file() { printf '%s/run/%s.port' "$STACK" "$1"; }
log_file()  { printf '%s/logs/%s.log' "$STACK" "$1"; }
cmd_marker() { case $1 in postgres) echo "$STACK/data/postgres" ;; ferretdb) echo marquee-ferretdb ;; kafka) echo kafka.Kafka ;; mailpit) echo "$STACK/bin/mailpit" ;; stripe) echo "$STACK/bin/stripe-mock" ;; esac; }
part_port() { case $1 in postgres) echo "$PG_PORT" ;; ferretdb) echo "$MONGO_PORT" ;; kafka) echo "$KAFKA_PORT" ;; mailpit) echo "$SMTP_PORT" ;; stripe) echo "$STRIPE_PORT" ;; esac; }

# running_pid PART: print the pid and succeed if the part's process is alive.
# The command line must match too, so a recycled pid or a zombie never counts.
running_pid() {
  local pf pid cmdline
  pf=$(pid_file "$1")
  [[ -f $pf ]] || return 1
  pid=$(<"$pf")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$(cmd_marker "$1")"* ]] || return 1
  printf '%s\n' "$pid"
}

tcp_open() { # port
  # shellcheck disable=SC2016  # $1 expands in the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# shellcheck disable=SC2317  # called indirectly by wait_ready
kafka_ready() { # port
  local out
  out=$(timeout 15 kcat -b "127.0.0.1:$1" -L -m 5 2>/dev/null) || return 1
  grep -Eq '^[[:space:]]*broker 1 at ' <<<"$out"
}

# ---------------------------------------------------------------- install --

# run_step NAME CMD...: run CMD with output to logs/install-NAME.log.
run_step() {
  local name=$1; shift
  local logf="$STACK/logs/install-$name.log"
  printf '=== %s: %s\n' "$(date -Is)" "$*" >"$logf"
  if ! "$@" >>"$logf" 2>&1 9>&-; then
    fail_with_log "$logf" "$name: command failed: $*"
  fi
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

install_apt() {
  local pkgs=("${APT_PACKAGES[@]}") missing=() p t0=$SECONDS
  command -v go   >/dev/null 2>&1 || pkgs+=(golang-go)
  command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn  >/dev/null 2>&1 || pkgs+=(maven)
  for p in "${pkgs[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  if (( ${#missing[@]} == 0 )); then
    say "apt packages: ok, already installed"
    return
  fi
  say "apt packages: installing… (missing: ${missing[*]})"
  local sudo=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
    sudo=(sudo)
  fi
  run_step apt-update "${sudo[@]}" apt-get update
  run_step apt-install "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${pkgs[@]}"
  hash -r
  say "apt packages: done in $((SECONDS - t0))s"
}

go_minor() { # path-to-go -> minor version number (e.g. 24), empty if unknown
  { (cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || true; } |
    sed -nE 's/^go1\.([0-9]+).*/\1/p'
}

# Sets GO to a Go >= 1.24. Debian 12's golang-go is 1.19, which cannot build
# FerretDB v1.24 and predates automatic toolchain switching, so in that case a
# toolchain is fetched as a module (golang.org/toolchain) from the Go proxy.
ensure_go() {
  local sys minor tcdir="$STACK/toolchain/$GO_TOOLCHAIN_VERSION"
  sys=$(command -v go 2>/dev/null || true)
  if [[ -n $sys ]]; then
    minor=$(go_minor "$sys")
    if [[ -n $minor ]] && (( minor >= GO_MIN_MINOR )); then
      GO=$sys
      say "go toolchain: ok, already installed ($sys, go1.$minor)"
      return
    fi
  fi
  if [[ -x $tcdir/bin/go ]]; then
    GO=$tcdir/bin/go
    say "go toolchain: ok, already installed ($GO)"
    return
  fi
  [[ -n $sys ]] || die "no 'go' on PATH (apt install of golang-go should have provided it)"
  local goarch mod tmp t0=$SECONDS
  goarch=$(cd / && GOTOOLCHAIN=local "$sys" env GOARCH)
  mod="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN_VERSION.linux-$goarch"
  say "go toolchain: installing… (system Go is too old; fetching $mod)"
  tmp="$STACK/toolchain/.download"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  run_step go-toolchain env -C / GOTOOLCHAIN=local GO111MODULE=on GOFLAGS=-modcacherw \
    GOMODCACHE="$tmp" "$sys" mod download -json "$mod"
  local dir="$tmp/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN_VERSION.linux-$goarch"
  [[ -f $dir/bin/go ]] || fail_with_log "$STACK/logs/install-go-toolchain.log" "toolchain download did not produce $dir/bin/go"
  # Module zips drop the executable bits; restore them as cmd/go itself does.
  find "$dir/bin" "$dir/pkg/tool" -type f -exec chmod a+x {} +
  rm -rf "$tcdir"
  mv "$dir" "$tcdir"
  rm -rf "$tmp"
  GO=$tcdir/bin/go
  "$GO" version >/dev/null || die "installed toolchain $GO does not run"
  say "go toolchain: done in $((SECONDS - t0))s ($GO)"
}

go_env() { # run the chosen Go with a predictable environment
  env GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$@"
}

install_ferretdb() {
  local bin="$STACK/bin/marquee-ferretdb" src="$REPO/scripts/ferretdb" newer t0=$SECONDS
  [[ -f $src/go.mod ]] || die "missing $src/go.mod"
  if [[ -x $bin ]]; then
    newer=$(find "$src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.sql' -o -name go.mod -o -name go.sum \) \
      -newer "$bin" -print -quit)
    if [[ -z $newer ]]; then
      say "marquee-ferretdb: ok, already installed"
      return
    fi
    say "marquee-ferretdb: installing… (rebuilding: $(basename "$newer") is newer than the binary)"
  else
    say "marquee-ferretdb: installing… (go build, ~2 min the first time)"
  fi
  rm -f "$bin.tmp"
  run_step ferretdb-build env -C "$src" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    "$GO" build -o "$bin.tmp" .
  mv -f "$bin.tmp" "$bin"
  say "marquee-ferretdb: done in $((SECONDS - t0))s"
  if running_pid ferretdb >/dev/null; then
    say "marquee-ferretdb: note: the running instance still uses the old binary; run: $0 restart ferretdb"
  fi
}

# marquee-promlint (scripts/promlint): `promtool check metrics` in a small Go
# program of ours on the Prometheus client library (strict text parser +
# promlint), without building all of Prometheus.
install_promlint() {
  local bin="$STACK/bin/marquee-promlint" src="$REPO/scripts/promlint" t0=$SECONDS
  if [[ -x $bin && -z $(find "$src" -maxdepth 1 -type f -newer "$bin" -print -quit) ]]; then
    say "marquee-promlint: ok, already installed"
    return
  fi
  say "marquee-promlint: installing… (go build)"
  rm -f "$bin.tmp"
  run_step promlint-build env -C "$src" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$GO" build -o "$bin.tmp" .
  mv -f "$bin.tmp" "$bin"
  say "marquee-promlint: done in $((SECONDS - t0))s"
}

install_kafka() {
  local lib="$STACK/kafka/lib" tmp="$STACK/kafka/lib.download" t0=$SECONDS
  if [[ -f $lib/$KAFKA_MARKER_JAR ]]; then
    say "kafka $KAFKA_VERSION jars: ok, already installed"
    return
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt install of maven should have provided it)"
  say "kafka $KAFKA_VERSION jars: installing… (maven)"
  rm -rf "$tmp"
  run_step kafka-jars mvn -q -B -f "$REPO/scripts/kafka/pom.xml" \
    dependency:copy-dependencies -DoutputDirectory="$tmp"
  [[ -f $tmp/$KAFKA_MARKER_JAR ]] ||
    fail_with_log "$STACK/logs/install-kafka-jars.log" "maven finished but $KAFKA_MARKER_JAR is missing"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  say "kafka $KAFKA_VERSION jars: done in $((SECONDS - t0))s ($(find "$lib" -name '*.jar' | wc -l) jars)"
}

# install_go_tool NAME MODULE VERSION [PACKAGE]: go install MODULE/cmd/NAME@VERSION
# (or MODULE/PACKAGE@VERSION; "." for the module's root package).
# Reinstalls when the binary's recorded module version differs.
install_go_tool() {
  local name=$1 mod=$2 ver=$3 pkg=${4-cmd/$1} bin="$STACK/bin/$1" have t0=$SECONDS
  if [[ -x $bin ]]; then
    have=$(go_env "$GO" version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }' || true)
    if [[ -z $have || $have == "$ver" ]]; then
      say "$name $ver: ok, already installed"
      return
    fi
    say "$name $ver: installing… (found $have)"
  else
    say "$name $ver: installing… (go install)"
  fi
  run_step "$name" env -C "$STACK" GOBIN="$STACK/bin" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    "$GO" install "$mod${pkg:+/$pkg}@$ver"
  [[ -x $bin ]] || fail_with_log "$STACK/logs/install-$name.log" "go install did not produce $bin"
  say "$name $ver: done in $((SECONDS - t0))s"
}

# The local OAuth/OIDC providers (scripts/oidc-mock/server.mjs) need the npm
# package oauth2-mock-server, pinned by scripts/oidc-mock/package-lock.json
# and installed under $STACK/oidc-mock (Node.js >= 20 comes with the machine).
install_oidc_mock() {
  local dir="$STACK/oidc-mock" src="$REPO/scripts/oidc-mock" t0=$SECONDS
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed (Node.js >= 20)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  (( major >= 20 )) || die "Node.js >= 20 is needed for oauth2-mock-server (found $(node --version))"
  if [[ -f $dir/node_modules/oauth2-mock-server/dist/index.mjs ]] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
    say "oauth2-mock-server: ok, already installed"
    return 0
  fi
  say "oauth2-mock-server: installing… (npm ci)"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  run_step oidc-mock npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  [[ -f $dir/node_modules/oauth2-mock-server/dist/index.mjs ]] ||
    fail_with_log "$STACK/logs/install-oidc-mock.log" "npm ci did not install oauth2-mock-server"
  say "oauth2-mock-server: done in $((SECONDS - t0))s"
}

# Python's reader of the rich error model (grpc_status.rpc_status, with the
# google.rpc messages of googleapis-common-protos), for the interop test: two
# pure-Python packages from PyPI, pinned to match Debian's python3-grpcio
# 1.51 and python3-protobuf, installed into $STACK/py (no virtualenv: Debian's
# interpreter runs them with PYTHONPATH=$STACK/py).
PY_STATUS_PKGS=(grpcio-status==1.51.1 googleapis-common-protos==1.59.1)
install_py_status() {
  local dir="$STACK/py" t0=$SECONDS stamp="$STACK/py/.installed"
  if [[ -f $stamp && $(cat "$stamp") == "${PY_STATUS_PKGS[*]}" ]]; then
    say "grpcio-status: ok, already installed"
    return 0
  fi
  say "grpcio-status: installing… (pip, PyPI)"
  local pip=(python3 -m pip) extra=()
  if ! python3 -m pip --version >/dev/null 2>&1; then # no pip beside the machine's Python: Debian's
    if ! pkg_installed python3-pip; then
      local saved=("${APT_PACKAGES[@]}")
      APT_PACKAGES=(python3-pip)
      install_apt
      APT_PACKAGES=("${saved[@]}")
    fi
    pip=(/usr/bin/python3 -m pip)
    extra=(--break-system-packages) # only into $dir (--target), never the system
  fi
  rm -rf "$dir"
  run_step py-status "${pip[@]}" install --quiet --disable-pip-version-check --no-deps "${extra[@]}" \
    --target "$dir" "${PY_STATUS_PKGS[@]}"
  PYTHONPATH="$dir" /usr/bin/python3 -c 'from grpc_status import rpc_status; from google.rpc import error_details_pb2' ||
    fail_with_log "$STACK/logs/install-py-status.log" "grpc_status does not import with Debian's python3"
  echo "${PY_STATUS_PKGS[*]}" >"$stamp"
  say "grpcio-status: done in $((SECONDS - t0))s"
}

cmd_install() {
  local t0=$SECONDS
  make_dirs
  install_apt
  ensure_go
  install_ferretdb
  install_promlint
  install_kafka
  install_go_tool grpcurl "$GRPCURL_MOD" "$GRPCURL_VERSION"
  install_go_tool ghz "$GHZ_MOD" "$GHZ_VERSION"
  install_go_tool mailpit "$MAILPIT_MOD" "$MAILPIT_VERSION" ""
  install_go_tool stripe-mock "$STRIPE_MOCK_MOD" "$STRIPE_MOCK_VERSION" ""
  install_oidc_mock
  install_py_status
  say "install complete in $((SECONDS - t0))s; next: $0 start"
}

# ------------------------------------------------------------------ start --

# Start a fresh log for PART (keeping the previous one as .log.1).
new_log() {
  local logf
  logf=$(log_file "$1")
  [[ -f $logf ]] && mv -f "$logf" "$logf.1"
  printf '=== %s: stack.sh starting %s\n' "$(date -Is)" "$1" >"$logf"
}

# launch PART CMD...: detach CMD (own session, immune to SIGHUP), record pid.
launch() {
  local part=$1; shift
  local logf pid
  logf=$(log_file "$part")
  printf '=== %s: exec %s\n' "$(date -Is)" "$*" >>"$logf"
  setsid nohup "$@" >>"$logf" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$(pid_file "$part")"
  printf '%s\n' "$(part_port "$part")" >"$(port_file "$part")"
  say "$part: started (pid $pid), log: $logf"
}

# Refuse to start when another process already owns one of our ports.
ensure_port_free() { # part port...
  local part=$1 port; shift
  for port in "$@"; do
    if tcp_open "$port"; then
      die "$part: 127.0.0.1:$port is already in use by another process (not started by this stack); free it or set a different MARQUEE_STACK_* port"
    fi
  done
}

# Returns 0 if it launched something, 1 if the part was already running.
launch_ferretdb() {
  local bin="$STACK/bin/marquee-ferretdb" pid
  if pid=$(running_pid ferretdb); then
    say "ferretdb: already running (pid $pid)"
    return 1
  fi
  rm -f "$(pid_file ferretdb)"
  [[ -x $bin ]] || die "ferretdb: $bin missing; run: $0 install"
  ensure_port_free ferretdb "$MONGO_PORT"
  new_log ferretdb
  launch ferretdb "$bin" -listen "127.0.0.1:$MONGO_PORT" -postgresql "postgres://postgres@127.0.0.1:$PG_PORT/marquee"
}

pg_bin() { # the newest installed PostgreSQL's bin directory
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -n $d && -x $d/postgres ]] || die "postgres: no PostgreSQL under /usr/lib/postgresql; run: $0 install"
  printf '%s\n' "$d"
}

# PostgreSQL refuses to run as root: as root it runs as the Debian package's
# "postgres" user. setpriv execs, so the recorded pid is the server's own.
pg_user_prefix() { # -> words to put before a command
  if (( EUID == 0 )); then
    printf '%s\n' setpriv --reuid=postgres --regid=postgres --init-groups --
  fi
}

launch_postgres() {
  local bin dir="$STACK/data/postgres" pid logf as_pg
  if pid=$(running_pid postgres); then
    say "postgres: already running (pid $pid)"
    return 1
  fi
  rm -f "$(pid_file postgres)"
  bin=$(pg_bin)
  ensure_port_free postgres "$PG_PORT"
  new_log postgres
  logf=$(log_file postgres)
  mapfile -t as_pg < <(pg_user_prefix)
  if [[ ! -f $dir/PG_VERSION ]]; then
    say "postgres: creating the cluster in $dir (first start)"
    rm -rf "$dir"
    mkdir -p "$dir"
    (( EUID != 0 )) || chown postgres: "$dir"
    chmod 700 "$dir"
    "${as_pg[@]}" test -w "$dir" ||
      die "postgres: the postgres user cannot reach $dir (a parent directory is closed to others); set MARQUEE_STACK_DIR to a directory under one others may traverse"
    # trust on loopback only: nothing else can connect (listen_addresses below, no socket)
    "${as_pg[@]}" "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale >>"$logf" 2>&1 9>&- ||
      fail_with_log "$logf" "postgres: initdb failed"
  fi
  launch postgres "${as_pg[@]}" "$bin/postgres" -D "$dir" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= -c max_connections=300 -c shared_buffers=256MB -c plan_cache_mode=force_custom_plan
}

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres 2>/dev/null; }

write_kafka_config() {
  local dir="$STACK/kafka"
  cat >"$dir/server.properties.tmp" <<EOF
# Generated by scripts/stack.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$STACK/data/kafka
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
EOF
  mv -f "$dir/server.properties.tmp" "$dir/server.properties"
  cat >"$dir/log4j.properties.tmp" <<'EOF'
# Generated by scripts/stack.sh on every start; edits are overwritten.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
# Quiet the chatty parts: config dumps, per-partition log loading, request and
# state-change traces, KRaft metadata replay.
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.kafka.server.metadata=WARN
log4j.logger.org.apache.kafka.image=WARN
log4j.logger.org.apache.kafka.metadata=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.snapshot=WARN
log4j.logger.kafka.raft=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.kafka.cluster=WARN
log4j.logger.kafka.network=WARN
log4j.logger.org.apache.kafka.server.metrics=WARN
log4j.logger.kafka.server.ClientQuotaManager=WARN
log4j.logger.kafka.server.DelayedOperationPurgatory=WARN
log4j.logger.kafka.server.NodeToControllerRequestThread=WARN
log4j.logger.kafka.utils.Log4jControllerRegistration$=WARN
log4j.logger.org.apache.zookeeper=WARN
EOF
  mv -f "$dir/log4j.properties.tmp" "$dir/log4j.properties"
}

kafka_java() { # java with the Kafka classpath and our log4j config
  java -Dlog4j.configuration="file:$STACK/kafka/log4j.properties" -cp "$STACK/kafka/lib/*" "$@"
}

format_kafka_storage() {
  local logf id
  logf=$(log_file kafka)
  [[ -f $STACK/data/kafka/meta.properties ]] && return 0
  say "kafka: formatting storage in $STACK/data/kafka (first start)"
  id=$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$logf" 9>&- | tail -n 1) ||
    fail_with_log "$logf" "kafka: StorageTool random-uuid failed"
  [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || fail_with_log "$logf" "kafka: unexpected cluster id '$id'"
  printf '=== %s: StorageTool format -t %s\n' "$(date -Is)" "$id" >>"$logf"
  kafka_java kafka.tools.StorageTool format -t "$id" -c "$STACK/kafka/server.properties" \
    --ignore-formatted >>"$logf" 2>&1 9>&- || fail_with_log "$logf" "kafka: StorageTool format failed"
  [[ -f $STACK/data/kafka/meta.properties ]] ||
    fail_with_log "$logf" "kafka: format did not create meta.properties"
}

launch_kafka() {
  local pid
  if pid=$(running_pid kafka); then
    say "kafka: already running (pid $pid)"
    return 1
  fi
  rm -f "$(pid_file kafka)"
  [[ -f $STACK/kafka/lib/$KAFKA_MARKER_JAR ]] || die "kafka: jars missing in $STACK/kafka/lib; run: $0 install"
  command -v java >/dev/null 2>&1 || die "kafka: java not found; run: $0 install"
  command -v kcat >/dev/null 2>&1 || die "kafka: kcat not found (needed for the readiness check); run: $0 install"
  ensure_port_free kafka "$KAFKA_PORT" "$CTRL_PORT"
  mkdir -p "$STACK/data/kafka"
  write_kafka_config
  new_log kafka
  format_kafka_storage
  launch kafka java -Xms256m -Xmx512m -Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError \
    -Dlog4j.configuration="file:$STACK/kafka/log4j.properties" \
    -cp "$STACK/kafka/lib/*" kafka.Kafka "$STACK/kafka/server.properties"
}

launch_mailpit() {
  local bin="$STACK/bin/mailpit" pid
  if pid=$(running_pid mailpit); then
    say "mailpit: already running (pid $pid)"
    return 1
  fi
  rm -f "$(pid_file mailpit)"
  [[ -x $bin ]] || die "mailpit: $bin missing; run: $0 install"
  ensure_port_free mailpit "$SMTP_PORT" "$MAILPIT_PORT"
  mkdir -p "$STACK/data/mailpit"
  new_log mailpit
  # no release check, no outbound connections; messages kept in its SQLite file
  launch mailpit "$bin" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_PORT" \
    --database "$STACK/data/mailpit/mailpit.db" --max 10000 --disable-version-check --smtp-disable-rdns
}

launch_stripe() {
  local bin="$STACK/bin/stripe-mock" pid
  if pid=$(running_pid stripe); then
    say "stripe-mock: already running (pid $pid)"
    return 1
  fi
  rm -f "$(pid_file stripe)"
  [[ -x $bin ]] || die "stripe-mock: $bin missing; run: $0 install"
  ensure_port_free stripe "$STRIPE_PORT" "$((STRIPE_PORT + 1))"
  new_log stripe
  # stateless: answers every call from the OpenAPI spec and fixtures it embeds
  # (no network). It always opens an HTTPS listener too (on every interface
  # unless told): keep it on loopback, on the next port.
  launch stripe "$bin" -http-addr "127.0.0.1:$STRIPE_PORT" -https-addr "127.0.0.1:$((STRIPE_PORT + 1))"
}

stripe_ready() { curl -fsS -o /dev/null -u sk_test_marquee: "http://127.0.0.1:$STRIPE_PORT/v1/balance" 2>/dev/null; }

mailpit_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$MAILPIT_PORT/api/v1/info" 2>/dev/null; }

# wait_ready PART TIMEOUT CHECK...: poll CHECK until it succeeds. Fails early
# if the process exits, or after TIMEOUT seconds.
wait_ready() {
  local part=$1 limit=$2; shift 2
  local t0=$SECONDS logf
  logf=$(log_file "$part")
  while :; do
    if "$@"; then
      say "$part: ready ($(( SECONDS - t0 ))s)"
      return 0
    fi
    running_pid "$part" >/dev/null ||
      fail_with_log "$logf" "$part: process exited while starting (if its data is broken: $0 reset)"
    (( SECONDS - t0 < limit )) ||
      fail_with_log "$logf" "$part: not ready after ${limit}s (process still running; '$0 stop $part' to stop it)"
    sleep 0.5
  done
}

# Warn if a part that was already running listens on other ports than now configured.
check_running_port() {
  local part=$1 pf want have
  pf=$(port_file "$part")
  want=$(part_port "$part")
  have=$(cat "$pf" 2>/dev/null || true)
  if [[ -n $have && $have != "$want" ]]; then
    die "$part: already running on port $have but port $want is configured; run: $0 restart $part"
  fi
}

start_parts() {
  local part t0=$SECONDS
  make_dirs
  for part in "${PARTS[@]}"; do
    case $part in
      # FerretDB connects to PostgreSQL as it starts: PostgreSQL must be ready first
      postgres) { launch_postgres || check_running_port postgres; } && wait_ready postgres "$POSTGRES_TIMEOUT" pg_ready ;;
      ferretdb) launch_ferretdb || check_running_port ferretdb ;;
      kafka) launch_kafka || check_running_port kafka ;;
      mailpit) launch_mailpit || check_running_port mailpit ;;
      stripe) launch_stripe || check_running_port stripe ;;
    esac
  done
  say "waiting for readiness…"
  for part in "${PARTS[@]}"; do
    case $part in
      postgres) ;; # waited for above
      ferretdb) wait_ready ferretdb "$FERRETDB_TIMEOUT" tcp_open "$MONGO_PORT" ;;
      kafka) wait_ready kafka "$KAFKA_TIMEOUT" kafka_ready "$KAFKA_PORT" ;;
      mailpit) wait_ready mailpit "$MAILPIT_TIMEOUT" mailpit_ready ;;
      stripe) wait_ready stripe "$STRIPE_TIMEOUT" stripe_ready ;;
    esac
  done
  say "started ${PARTS[*]} in $((SECONDS - t0))s"
}

# ------------------------------------------------------------------- stop --

stop_part() {
  local part=$1 pid t0 t1
  if ! pid=$(running_pid "$part"); then
    say "$part: not running"
    rm -f "$(pid_file "$part")" "$(port_file "$part")"
    return 0
  fi
  say "$part: stopping (pid $pid)…"
  t0=$SECONDS
  # PostgreSQL: SIGINT is its fast shutdown (SIGTERM waits for every client to leave)
  kill "-$([[ $part == postgres ]] && echo INT || echo TERM)" "$pid" 2>/dev/null || true
  while running_pid "$part" >/dev/null && (( SECONDS - t0 < STOP_TIMEOUT )); do
    sleep 0.2
  done
  if running_pid "$part" >/dev/null; then
    say "$part: still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    t1=$SECONDS
    while running_pid "$part" >/dev/null && (( SECONDS - t1 < 10 )); do
      sleep 0.2
    done
    if running_pid "$part" >/dev/null; then die "$part: pid $pid survived SIGKILL"; fi
  fi
  rm -f "$(pid_file "$part")" "$(port_file "$part")"
  say "$part: stopped ($((SECONDS - t0))s)"
}

stop_parts() {
  local i
  # Reverse order: Kafka first, then FerretDB, then PostgreSQL.
  for (( i = ${#PARTS[@]} - 1; i >= 0; i-- )); do
    stop_part "${PARTS[i]}"
  done
}

# ------------------------------------------------------------ other verbs --

cmd_status() {
  local part pid port extra have
  for part in "${ALL_PARTS[@]}"; do
    port=$(part_port "$part")
    extra=""
    [[ $part == kafka ]] && extra=" (controller 127.0.0.1:$CTRL_PORT)"
    [[ $part == postgres ]] && extra=" (FerretDB's backend)"
    [[ $part == mailpit ]] && extra=" (SMTP; API and UI http://127.0.0.1:$MAILPIT_PORT)"
    [[ $part == stripe ]] && extra=" (stripe-mock, HTTP)"
    if pid=$(running_pid "$part"); then
      have=$(cat "$(port_file "$part")" 2>/dev/null || true)
      [[ -n $have && $have != "$port" ]] && extra+=" [configured port is $port; restart to apply]"
      printf '%-9s running  pid %-8s 127.0.0.1:%s%s\n' "$part" "$pid" "${have:-$port}" "$extra"
    else
      printf '%-9s stopped  %-12s 127.0.0.1:%s%s\n' "$part" "" "$port" "$extra"
    fi
  done
}

cmd_logs() {
  local part logf
  for part in "${PARTS[@]}"; do
    logf=$(log_file "$part")
    if (( ${#PARTS[@]} > 1 )); then printf '===== %s =====\n' "$logf"; fi
    if [[ -f $logf ]]; then tail -n 100 "$logf"; else say "$part: no log yet ($logf)"; fi
  done
}

cmd_reset() {
  PARTS=("${ALL_PARTS[@]}")
  stop_parts
  rm -rf "$STACK/data"
  make_dirs
  say "reset: deleted $STACK/data (installed tools kept)"
}

cmd_env() {
  printf 'export MARQUEE_MONGO_URI=%q\n' "mongodb://127.0.0.1:$MONGO_PORT/"
  printf 'export MARQUEE_KAFKA_BROKERS=%q\n' "127.0.0.1:$KAFKA_PORT"
  printf 'export MARQUEE_SMTP_URL=%q\n' "smtp://127.0.0.1:$SMTP_PORT"
  printf 'export MARQUEE_STACK_MAILPIT=%q\n' "127.0.0.1:$MAILPIT_PORT"
  printf 'export MARQUEE_STACK_STRIPE=%q\n' "http://127.0.0.1:$STRIPE_PORT"
  printf 'export MARQUEE_STACK_OIDC_MOCK_MODULE=%q\n' "$STACK/oidc-mock/node_modules/oauth2-mock-server/dist/index.mjs"
  printf 'export MARQUEE_STACK_PYTHONPATH=%q\n' "$STACK/py"
  # shellcheck disable=SC2016  # $PATH is meant to expand where this is eval'd
  printf 'export PATH=%q:"$PATH"\n' "$STACK/bin"
}

# ------------------------------------------------------------------- main --

main() {
  local cmd=${1:-help}
  (( $# )) && shift
  case $cmd in
    help|-h|--help) usage; return 0 ;;
  esac
  validate_config
  case $cmd in
    install) (( $# == 0 )) || die "install takes no arguments"
             take_lock; cmd_install ;;
    start)   parts_from_arg "${1:-all}"; take_lock; start_parts ;;
    stop)    parts_from_arg "${1:-all}"; take_lock; stop_parts ;;
    restart) parts_from_arg "${1:-all}"; take_lock; stop_parts; start_parts ;;
    status)  cmd_status ;;
    logs)    parts_from_arg "${1:-all}"; cmd_logs ;;
    reset)   take_lock; cmd_reset ;;
    env)     cmd_env ;;
    *)       err "unknown subcommand '$cmd'"; usage >&2; exit 2 ;;
  esac
}

# "; exit" on the same line: bash must not read on if this file is edited while running.
main "$@"; exit $?
