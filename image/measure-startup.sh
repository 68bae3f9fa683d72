#!/usr/bin/env bash
# image/measure-startup.sh — time from `docker run` to the command starting, for
# the cage (cage-init under cagent's run flags) vs. a bare container.
#   image/measure-startup.sh [IMAGE] [RUNS]      (root: chowns a temp workspace)
set -u
img=${1:-cagent:latest} n=${2:-7}
ws=$(mktemp -d); chown 4242:4242 "$ws"; logs=$(mktemp -d)
# As cagent runs it: low ports for CAP_NET_BIND_SERVICE only (cage-init
# refuses to start otherwise) and the IPv6 loopback back.
caps=(--sysctl net.ipv4.ip_unprivileged_port_start=1024 --sysctl net.ipv6.conf.lo.disable_ipv6=0 --cap-drop ALL); for c in NET_ADMIN NET_BIND_SERVICE SETUID SETGID SETPCAP CHOWN DAC_OVERRIDE FOWNER KILL; do caps+=(--cap-add $c); done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
docker run --rm --init --entrypoint true "$img" >/dev/null 2>&1  # warm
docker run --rm --init "${caps[@]}" -v "$ws:/workspace" -v "$logs:/var/log/cagent" "$img" -- true \
  || { echo "measure-startup: the cage did not start (see above)" >&2; exit 1; }
a=$(for i in $(seq $n); do t docker run --rm --init "${caps[@]}" -v "$ws:/workspace" -v "$logs:/var/log/cagent" "$img" -- true; done | median)
b=$(for i in $(seq $n); do t docker run --rm --init --entrypoint true "$img"; done | median)
echo "cage (cage-init -- true): median ${a} ms over $n runs"
echo "bare (--entrypoint true): median ${b} ms over $n runs"
echo "cage-init overhead: $((a - b)) ms"
rm -rf "$ws" "$logs"
