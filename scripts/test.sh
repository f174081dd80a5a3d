#!/usr/bin/env bash
# test.sh — THE test command (README, .ci/run). On a fresh Debian 12 machine
# it installs everything (scripts/stack.sh install), builds Marquee with
# -Werror under AddressSanitizer + UndefinedBehaviorSanitizer, runs the
# static-analysis pass (scripts/lint.sh), starts the local stack (FerretDB,
# Kafka) on loopback, and runs every ctest test: unit, integration (real
# processes on the real stack), interop (grpcurl, Python grpcio).
# The stack is left running afterwards (scripts/stack.sh stop ends it).
# Env: MARQUEE_TEST_BUILD_DIR (default build-test), CTEST_ARGS (extra ctest args).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MARQUEE_TEST_BUILD_DIR:-build-test}

bash scripts/stack.sh install
eval "$(bash scripts/stack.sh env)"

echo "== build ($build: Debug, ASan+UBSan, -Werror)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMQ_SANITIZE=ON -DMQ_WERROR=ON >/dev/null
ninja -C "$build"

echo "== static analysis"
bash scripts/lint.sh "$build"

echo "== stack"
bash scripts/stack.sh start
export MARQUEE_TEST_MONGO_URI="$MARQUEE_MONGO_URI"
export MARQUEE_TEST_KAFKA_BROKERS="$MARQUEE_KAFKA_BROKERS"

echo "== tests"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j2 ${CTEST_ARGS:-}
