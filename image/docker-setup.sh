#!/usr/bin/env bash
# docker-setup.sh — make sure a Docker engine answers and the base image exists.
#
# On a user's machine both are normally true already and this returns at once.
# On a machine without a running engine (CI, fresh servers) it starts dockerd;
# when no registry answers it builds the base image from Debian's archive with
# debootstrap, so `FROM debian:bookworm-slim` works offline from registries.
set -euo pipefail
# A stopped setup (setup.sh ends this whole session on a failure) still runs
# the EXIT trap below, which removes a half-made root file system.
trap 'exit 143' TERM
trap 'exit 130' INT
base=${CAGENT_BASE_IMAGE:-debian:bookworm-slim}
say() { printf 'docker-setup: %s\n' "$*" >&2; }

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if ! engine_up; then
  command -v dockerd >/dev/null || { say "no Docker engine and no dockerd; install docker.io"; exit 1; }
  if [[ $(id -u) -ne 0 ]]; then say "Docker engine not running and not root to start it"; exit 1; fi
  say "starting dockerd (log: /var/log/dockerd.log)"
  # setsid: the engine must outlive this script and the terminal that ran it.
  # Only stdio is passed on: a descriptor this script inherited (a test
  # lock taken with flock(1), a pipe of the caller) would otherwise stay
  # open in the engine for as long as it runs — a lock never released.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null
  ) &
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || { say "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi

if docker image inspect "$base" >/dev/null 2>&1; then exit 0; fi
say "base image $base missing; trying docker pull"
# (check the result, not the exit status: some CLI versions exit 0 on a failed -q pull)
timeout 60 docker pull -q "$base" >/dev/null 2>&1 || true
if docker image inspect "$base" >/dev/null 2>&1; then exit 0; fi

# Fallback: build the base image from the Debian mirror apt already uses.
[[ $base == debian:bookworm-slim ]] || { say "cannot pull $base"; exit 1; }
mirror=$(grep -hoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' \
           /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
         | grep -oE "https?://[^ ]+" | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || { say "debootstrap missing; install it"; exit 1; }
rootfs=$(mktemp -d /var/tmp/cagent-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
say "debootstrap bookworm from $mirror (a few minutes, once)"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/var/log/cagent-debootstrap.log 2>&1 || {
  say "debootstrap failed; see /var/log/cagent-debootstrap.log"; exit 1; }
# Like the official slim image: no apt caches, no docs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
say "imported $base"
