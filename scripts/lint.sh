#!/usr/bin/env bash
# lint.sh — Marquee's own C code must be clang-format clean (.clang-format)
# and have zero cppcheck findings (generated code and third-party headers are
# excluded).
# Usage: lint.sh [BUILD_DIR]  (BUILD_DIR/gen supplies generated headers)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
command -v cppcheck >/dev/null || { echo "cppcheck missing: run scripts/stack.sh install" >&2; exit 1; }
command -v clang-format >/dev/null || { echo "clang-format missing: run scripts/stack.sh install" >&2; exit 1; }
# shellcheck disable=SC2046
if ! clang-format --dry-run --Werror $(git ls-files '*.c' '*.h') 2>/tmp/mq-format.$$; then
  head -n 40 /tmp/mq-format.$$ >&2
  rm -f /tmp/mq-format.$$
  echo "clang-format: the files above differ from .clang-format; run: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
  exit 1
fi
rm -f /tmp/mq-format.$$
echo "clang-format: clean"
srcs=$(git ls-files 'core/*.c' 'lib/*.c' 'server/*.c' 'store/*.c' 'handlers/*.c' 'consumers/*.c' 'clients/*.c' 'proto/plugin/*.c' \
  'bench/*.c' 'tests/*.c' 2>/dev/null || true)
[ -n "$srcs" ] || srcs=$(find core lib server store handlers consumers clients proto/plugin bench tests -name '*.c')
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
  --inline-suppr --suppress=missingIncludeSystem --suppress=missingInclude \
  -D_GNU_SOURCE -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 -DMQ_VERSION='"0"' -DMQ_GIT_COMMIT='"0"' -DMQ_README_PATH='"README.md"' \
  -DMQ_TEST_BIN_DIR='"."' -DMQ_TEST_SOURCE_DIR='"."' \
  -I . -I tests/integration \
  -I "$build/gen" \
  $srcs
echo "cppcheck: no findings"
