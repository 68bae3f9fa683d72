#!/usr/bin/env bash
# image/measure-startup.sh — time from `docker run` to the command starting, for
# the cage (cage-init under cagent's run flags) vs. a bare container.
#   image/measure-startup.sh [IMAGE] [RUNS]      (root: chowns a temp workspace)
set -u
img=${1:-cagent:latest} n=${2:-7}
ws=$(mktemp -d); chown 4242:4242 "$ws"; logs=$(mktemp -d)
caps=(--cap-drop ALL); for c in NET_ADMIN NET_BIND_SERVICE SETUID SETGID SETPCAP CHOWN DAC_OVERRIDE FOWNER KILL; do caps+=(--cap-add $c); done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
docker run --rm --init --entrypoint true "$img" >/dev/null 2>&1  # warm
a=$(for i in $(seq $n); do t docker run --rm --init "${caps[@]}" -v "$ws:/workspace" -v "$logs:/var/log/cagent" "$img" -- true; done | median)
b=$(for i in $(seq $n); do t docker run --rm --init --entrypoint true "$img"; done | median)
echo "cage (cage-init -- true): median ${a} ms over $n runs"
echo "bare (--entrypoint true): median ${b} ms over $n runs"
echo "cage-init overhead: $((a - b)) ms"
rm -rf "$ws" "$logs"
