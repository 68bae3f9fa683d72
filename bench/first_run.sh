#!/usr/bin/env bash
# bench/first_run.sh — time a real first run: from a fresh clone to the end
# of `cagent -- true` in an empty project, with the moments each part ended.
#
#   sudo bench/first_run.sh [--rev REV] [--reset-machine] [--out FILE] [--logs DIR]
#
# Clones REV (default HEAD) of this checkout into a scratch directory and
# runs its `./cagent -- true` (the README's first command; `true` instead of
# a shell, stdin /dev/null) with HOME in the scratch directory, so no
# ~/.cagent of an earlier run is found. Every line cagent, setup.sh and the
# engine part of setup (build/docker-setup.log, followed as it grows) print
# is time-stamped; at the end the times the host compile, the base image and
# cagent's image builds finished are read off their files. Prints one TSV
# line per event: seconds since the start, event; the last lines say how
# much CPU time the machine spent meanwhile (all processes, from
# /proc/stat), against what its CPUs could give in that time: a first run
# that keeps every CPU busy cannot get shorter without less work.
# --logs DIR: keep setup's, the engine part's and cagent's build logs there.
#
# --reset-machine (destructive, for a machine kept for this): first makes
# the machine look as it did before its first run — stops the Docker engine
# and removes /var/lib/docker and /var/lib/containerd (every image and
# container), purges the packages setup.sh installed on a fresh machine of
# this kind (PURGE below, with what they alone pulled in), empties apt's
# package cache and lists, and drops the page cache. Without it the run
# measures whatever this machine already has (a warm run: packages present,
# base image and cached layers kept).
# Needs root. Take /tmp/cagent-e2e.lock around it when tests share the engine.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=HEAD out=/dev/stdout reset=0 logs=
while (($#)); do
  case $1 in
    --rev) rev=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --reset-machine) reset=1; shift ;;
    --logs) logs=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "first_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { printf 'first_run: %s\n' "$*" >&2; }
[[ $(id -u) -eq 0 ]] || { say "needs root (setup.sh installs packages)"; exit 2; }

# What setup.sh installed on a fresh machine of this kind (Debian 12 with
# g++, cmake and git already there): its "installing" lines of a first run.
PURGE=(libldns-dev libnftnl-dev libmnl-dev libboost1.81-dev libtomlplusplus-dev libyaml-cpp-dev doctest-dev
       libcap-dev libpsl-dev docker.io debootstrap containerd runc)

if ((reset)); then
  say "resetting the machine: engine stopped, its data, setup's packages and apt's caches removed"
  # Where systemd runs the engine it would start it again at once.
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl stop docker.socket docker.service containerd.service 2>/dev/null || true
  fi
  pkill -x dockerd 2>/dev/null || true
  pkill -x containerd 2>/dev/null || true
  for _ in $(seq 1 50); do pgrep -x dockerd >/dev/null || pgrep -x containerd >/dev/null || break; sleep 0.2; done
  # dockerd leaves mounts behind when killed: its data root bound onto
  # itself, network namespaces under /run/docker/netns. Deepest first.
  for dir in /var/lib/docker /var/lib/containerd /run/docker /run/containerd; do
    findmnt -rn -o TARGET | grep -E "^$dir(/|$)" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  done
  rm -rf /var/lib/docker /var/lib/containerd /run/docker /run/containerd /var/run/docker.sock
  rm -f /var/log/cagent-debootstrap.log
  installed=()
  for p in "${PURGE[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && installed+=("$p"); done
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${installed[@]}" >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null 2>&1 || true
  apt-get clean
  rm -rf /var/lib/apt/lists/*
  sync
  echo 3 >/proc/sys/vm/drop_caches
fi

work=$(mktemp -d /var/tmp/cagent-first-run.XXXXXX)
trap 'kill "${follow:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
git clone -q "$top" "$work/cagent"
git -C "$work/cagent" checkout -q "$rev"
mkdir -p "$work/home" "$work/project"
events=$work/events.tsv
: >"$events"
# CPU time (user, nice, system, irq, softirq) and all time (also idle,
# iowait and what the hypervisor took: steal), in clock
# ticks summed over the CPUs.
cpu_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
read -r busy0 all0 < <(cpu_ticks)
start=$EPOCHREALTIME
stamp() { while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done >>"$events"; }

# The engine part's log appears once setup starts it; follow it from then.
(
  log=$work/cagent/build/docker-setup.log
  while [[ ! -f $log ]]; do sleep 0.2; done
  exec tail -n +1 -F "$log" 2>/dev/null
) > >(stamp) &
follow=$!

status=0
(cd "$work/project" && HOME=$work/home "$work/cagent/cagent" -- true </dev/null 2>&1) > >(stamp) || status=$?
end=$EPOCHREALTIME
read -r busy1 all1 < <(cpu_ticks)
kill "$follow" 2>/dev/null || true
sleep 0.5  # the stamping pipes drain
printf '%s\t%s\n' "$end" "end: cagent -- true exited with status $status" >>"$events"

# Parts read off their files: when each was last written.
mtime() { [[ -e $1 ]] && printf '%s\t%s\n' "$(stat -c %.9Y "$1")" "$2" >>"$events" || true; }
mtime "$work/cagent/build/bin/cagent" "file: host compile done (build/bin/cagent)"
mtime /var/log/cagent-debootstrap.log "file: debootstrap done (/var/log/cagent-debootstrap.log)"
for log in "$work"/home/.cagent/logs/build-*.log; do
  [[ -e $log ]] && mtime "$log" "file: ${log##*/} last written"
done

hz=$(getconf CLK_TCK) cpus=$(nproc)
printf '%s\t%s\n' "$end" "cpu: $(( (busy1 - busy0) / hz )) s busy of $(( (all1 - all0) / hz )) s on $cpus CPUs ($(( 100 * (busy1 - busy0) / (all1 - all0) ))%)" >>"$events"
if [[ -n $logs ]]; then
  mkdir -p "$logs"
  cp "$work"/cagent/build/*.log "$work"/home/.cagent/logs/build-*.log "$logs"/ 2>/dev/null || true
fi

sort -n "$events" | awk -F '\t' -v start="$start" '{ printf "%.1f\t%s\n", $1 - start, $2 }' >"$out"
exit "$status"
