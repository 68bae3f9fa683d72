#!/usr/bin/env bash
# The whole test suite: unit, netns integration, Docker end-to-end, fuzz.
#
#   tests/run-all.sh            everything (installs what it needs first)
#   tests/run-all.sh -L unit    extra arguments go to ctest
#
# Installs packages, builds (warnings are errors), starts the Docker engine
# and creates the base image when needed, then runs ctest over the normal
# build, and the fuzz target in an ASan+UBSan build.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

export CAGENT_CMAKE_ARGS="-DCAGENT_WERROR=ON ${CAGENT_CMAKE_ARGS:-}"
"$top/setup.sh" --test-tools --docker

status=0
ctest --test-dir "$top/build" --output-on-failure --timeout 1800 -LE fuzz "$@" || status=$?

# Sanitizer build: only what the fuzz tier needs, so it stays affordable on 2 cores.
asan=$top/build-asan
if [[ $# -eq 0 ]]; then
  # Configured every time (cheap when nothing changed), like setup.sh does.
  mkdir -p "$asan"
  cmake -S "$top" -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DCAGENT_SANITIZE=ON -DCAGENT_WERROR=ON \
    >"$asan/configure.log" 2>&1 || { tail -n 40 "$asan/configure.log" >&2; echo "run-all: ASan configure failed" >&2; exit 1; }
  cmake --build "$asan" -j "$(nproc)" --target fuzz_targets >"$asan/build.log" 2>&1 || {
    tail -n 40 "$asan/build.log" >&2; echo "run-all: ASan build failed" >&2; exit 1; }
  ctest --test-dir "$asan" --output-on-failure -L fuzz || status=$?
fi
exit $status
