#!/usr/bin/env bash
# prepare-layers.sh — build the cage image's package layers ahead of cagent.
#
#   image/prepare-layers.sh
#
# The stages up to `builddeps` (image/Dockerfile: os, tools, builddeps)
# install Debian packages only: the bulk of a first image build, and
# independent of cagent's sources and build args. setup.sh runs this while
# the host compiles cagent, so that the download and unpacking wait on the
# network and the disk while the compiler has the CPUs; cagent's own build
# then finds these layers in Docker's cache (the same base image and the
# same instructions) and starts at the npm and builder stages.
# Nothing is tagged: the result becomes the parent of cagent's image. The
# context is empty, since these stages copy nothing.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=${CAGENT_BASE_IMAGE:-debian:bookworm-slim}
empty=$(mktemp -d)
trap 'rmdir "$empty"' EXIT
docker build -q -f "$top/image/Dockerfile" --target builddeps --force-rm --build-arg "BASE=$base" "$empty" >/dev/null
