#!/usr/bin/env bash
# prepare-layers.sh — build the cage image's slow layers ahead of cagent.
#
#   image/prepare-layers.sh [--builder]
#
# Two builds, side by side (each a `docker build` of its own: the classic
# builder runs one stage at a time within a build):
#   - image/Dockerfile up to `tools` (os, tools): the workbench's 400+
#     Debian packages, which wait on the network and the disk; no sources,
#     no build args, so an empty context;
#   - with --builder (setup.sh passes it for a new build tree: the first
#     run), image/builder.Dockerfile: its toolchain and -dev packages, then
#     the compile of dnsguard, cage-init and cagent-relay from this checkout
#     (the context is the checkout, filtered by its .dockerignore as
#     cagent's own copy of it is), which keeps the CPUs busy meanwhile.
# setup.sh runs this while the host compiles cagent. cagent's own build then
# finds these layers in Docker's cache (the same base image, instructions
# and files) and is left with the npm stage and the final one.
# Nothing is tagged: cagent tags what it builds, finding these results in the
# cache. Both builds are waited for; the first failure is the exit status
# (setup.sh then says that cagent builds them itself).
set -euo pipefail
trap 'exit 143' TERM
trap 'exit 130' INT
builder=0
case ${1:-} in
  --builder) builder=1 ;;
  "") ;;
  *) echo "prepare-layers.sh: unknown option $1" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=${CAGENT_BASE_IMAGE:-debian:bookworm-slim}
empty=$(mktemp -d)
trap 'rmdir "$empty"' EXIT
start=${EPOCHSECONDS}
# One line when each is done (setup.sh shows this log), with its seconds.
# docker's own stderr (the legacy builder's deprecation banner) only when
# the build fails.
build() {
  local what=$1 errors
  shift
  errors=$(mktemp)
  if docker build -q --force-rm --build-arg "BASE=$base" "$@" >/dev/null 2>"$errors"; then
    rm -f "$errors"
    echo "prepare-layers: $what ready after $((EPOCHSECONDS - start)) s" >&2
  else
    cat "$errors" >&2
    rm -f "$errors"
    echo "prepare-layers: $what failed after $((EPOCHSECONDS - start)) s" >&2
    return 1
  fi
}
build "the workbench's packages" -f "$top/image/Dockerfile" --target tools "$empty" &
tools=$!
status=0
if ((builder)); then
  build "the builder" -f "$top/image/builder.Dockerfile" "$top" &
  wait $! || status=$?
fi
wait "$tools" || { s=$?; ((status)) || status=$s; }
exit "$status"
