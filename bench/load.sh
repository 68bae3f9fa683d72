#!/usr/bin/env bash
# bench/load.sh — dnsguard under load from the agent: floods of random
# (denied) names, of allowed names, and 10 000 connections through the gate
# at once. Measures dnsguard's peak resident memory and descriptors, the
# latency of an allowed lookup from another process during each flood, and
# whether the decision record's totals equal what was sent; writes the
# "Under load" section of bench/RESULTS.md.
#
#   bench/load.sh [--build DIR] [--out DIR] [--nofile N] [--seconds S] [--connections N] [--quick]
#
#   cage netns  cld-c<pid>                          world netns  cld-w<pid>
#   floods (cagent-bench query/http, uid 4343) ──▶ dnsguard (uid 65534, gate on,
#   probers (cagent-bench query, uid 4343)          RLIMIT_NOFILE --nofile, default
#                                                   20 000 as a cage inherits it)
#                                                    └──▶ cagent-bench serve (192.0.2.53, zone
#                                                         load.test) and http-serve (:80 of
#                                                         198.51.100.0/24, local there)
#
# Each phase runs the probers for its whole length: one allowed name over
# and over (the cache-hit path) and a new allowed name each time (the miss
# path), 100 and 50 lookups a second, open loop. CPU pinning as in
# compare.sh: dnsguard alone on CPU 1, everything else on CPU 0.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command_line="bench/load.sh${*:+ $*}"
build=$top/build
out=$top/bench
nofile=20000
seconds=10
connections=10000
outstanding=256
quick=0
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --nofile) nofile=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "load.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
((quick)) && { seconds=2; connections=1000; }

say() { printf 'load: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables)"
bench_bin=$build/bin/cagent-bench
dnsguard_bin=$build/bin/dnsguard
[[ -x $bench_bin && -x $dnsguard_bin ]] || die "build cagent-bench and dnsguard first (cmake --build $build)"
for tool in ip taskset setpriv prlimit python3; do command -v "$tool" >/dev/null || die "$tool not installed"; done
cpu_client=0 cpu_dnsguard=0
(($(nproc) >= 2)) && cpu_dnsguard=1
# The clients hold up to --connections sockets each.
(( $(ulimit -Hn) >= connections + 1000 )) || die "the hard descriptor limit ($(ulimit -Hn)) is below --connections + 1000"
ulimit -n "$(ulimit -Hn)"

id=$$ world=cld-w$$ cage=cld-c$$ uid=65534 agent=4343
scratch=$(mktemp -d /tmp/cagent-load-bench.XXXXXX)
chmod 755 "$scratch"
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$scratch" "/etc/netns/$cage"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
A() { C taskset -c "$cpu_client" setpriv --reuid "$agent" --regid "$agent" --clear-groups "$@"; }
wait_until() {  # SECONDS CMD…
  local tries=$(($1 * 20)); shift
  for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

ip netns add "$world"
ip netns add "$cage"
ip link add "lc$id" netns "$cage" type veth peer name "lw$id" netns "$world"
C ip link set lo up; W ip link set lo up
C ip addr add 192.0.2.2/24 dev "lc$id"
W ip addr add 192.0.2.53/24 dev "lw$id"
C ip link set "lc$id" up; W ip link set "lw$id" up
C ip route add 198.51.100.0/24 dev "lc$id"
W ip route add local 198.51.100.0/24 dev lo
mkdir -p "/etc/netns/$cage"
echo "nameserver 127.0.0.1" >"/etc/netns/$cage/resolv.conf"

install -m 0755 "$bench_bin" "$scratch/cagent-bench"
install -m 0755 "$dnsguard_bin" "$scratch/dnsguard"
bench=$scratch/cagent-bench
W taskset -c "$cpu_client" "$bench" serve --listen 192.0.2.53:53 --zone load.test --ttl 300 >"$scratch/serve.out" 2>&1 &
pids+=($!)
W taskset -c "$cpu_client" "$bench" http-serve --listen 0.0.0.0:80 >"$scratch/http.out" 2>&1 &
pids+=($!)
wait_until 10 grep -q ready "$scratch/serve.out" || die "upstream did not start"
wait_until 10 grep -q ready "$scratch/http.out" || die "http-serve did not start"

C "$bench" ruleset --upstream 192.0.2.53:53 --resolver-uid "$uid" --gate-port 999 --gated 80 --gated 443
mkdir -m 0755 "$scratch/log" && chown "$uid" "$scratch/log"
cat >"$scratch/policy.toml" <<TOML
listen = ["127.0.0.1:53", "[::1]:53"]
upstreams = ["192.0.2.53:53"]
allow = ["*.load.test"]
[gate]
enabled = true
[log]
file = "$scratch/log/dnsguard.log"
level = "warning"
TOML
chmod 0644 "$scratch/policy.toml"
ip netns exec "$cage" taskset -c "$cpu_dnsguard" prlimit --nofile="$nofile:$nofile" -- \
  setpriv --reuid "$uid" --regid "$uid" --clear-groups \
  --inh-caps +net_admin,+net_bind_service --ambient-caps +net_admin,+net_bind_service \
  "$scratch/dnsguard" --config "$scratch/policy.toml" 2>>"$scratch/dnsguard.err" &
dg=$!
pids+=($dg)
wait_until 10 grep -q "dnsguard ready" "$scratch/log/dnsguard.log" || die "dnsguard did not start: $(cat "$scratch/dnsguard.err")"
[[ $(readlink "/proc/$dg/exe") == "$scratch/dnsguard" ]] || die "pid $dg is not dnsguard"
budget=$(grep -o 'descriptors: .*' "$scratch/log/dnsguard.log" | head -1)
say "$budget"

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$dg/status"; }
fds() { ls "/proc/$dg/fd" | wc -l; }
# The address the allowed names resolve to (the world answers for every one).
echo "a.load.test" >"$scratch/hot.txt"; chmod 0644 "$scratch/hot.txt"
A "$bench" query --server 127.0.0.1:53 --names "$scratch/hot.txt" --count 1 --json >/dev/null
addr=$(C python3 -c 'import socket; print(socket.gethostbyname("a.load.test"))')
rss_idle=$(rss_kib) fds_idle=$(fds)

# phase NAME FLOOD-COMMAND…: probers and a sampler for the phase's length,
# the flood in the foreground; leaves NAME.flood, NAME.hit, NAME.miss (JSON)
# and NAME.peak ("rss_kib fds").
phase() {
  local name=$1; shift
  local len=$((seconds + 3))
  say "$name: $*"
  (
    peak_rss=0 peak_fds=0
    while [[ ! -e $scratch/$name.stop ]]; do
      r=$(rss_kib) f=$(fds)
      ((r > peak_rss)) && peak_rss=$r
      ((f > peak_fds)) && peak_fds=$f
      sleep 0.1
    done
    echo "$peak_rss $peak_fds" >"$scratch/$name.peak"
  ) &
  local sampler=$!
  A "$bench" query --server 127.0.0.1:53 --names "$scratch/hot.txt" --rate 100 --duration "$len" \
    --timeout-ms 2000 --json --label "$name-hit" >"$scratch/$name.hit" &
  local hit=$!
  A "$bench" query --server 127.0.0.1:53 --generate 100000000 --zone load.test --salt "p$name$$" --rate 50 \
    --duration "$len" --timeout-ms 2000 --json --label "$name-miss" >"$scratch/$name.miss" &
  local miss=$!
  sleep 1
  if (($#)); then A "$bench" "$@" >"$scratch/$name.flood" & else (sleep "$seconds"; echo '{}' >"$scratch/$name.flood") & fi
  local flood=$!
  # Halfway: what `cagent allow/deny/ps` would wait for (the control socket).
  sleep $((seconds / 2))
  local t0=$(date +%s%N)
  C "$scratch/dnsguard" --control "$scratch/log/control/dnsguard.sock" list >/dev/null 2>&1 \
    && echo $((($(date +%s%N) - t0) / 1000)) >"$scratch/$name.control" || echo failed >"$scratch/$name.control"
  wait "$flood"
  wait "$hit" "$miss"
  touch "$scratch/$name.stop"
  wait "$sampler"
  sleep 1.5  # one rewrite of the record (at most a second) after the flood
  cp "$scratch/log/decisions.json" "$scratch/$name.record"
}

phase quiet
phase denied query --server 127.0.0.1:53 --generate 100000000 --zone flood.test --salt "d$$" \
  --outstanding "$outstanding" --duration "$seconds" --timeout-ms 3000 --json --label denied
phase allowed query --server 127.0.0.1:53 --generate 100000000 --zone load.test --salt "a$$" \
  --outstanding "$outstanding" --duration "$seconds" --count 120000 --timeout-ms 3000 --json --label allowed
phase gate http --target "$addr:80" --host a.load.test --hold "$connections" --hold-seconds "$seconds" --label gate
kill -USR1 "$dg"; sleep 0.5
counters=$(grep -o 'counters .*' "$scratch/log/dnsguard.log" | tail -1)

section=$(python3 - "$scratch" "$rss_idle" "$fds_idle" "$nofile" "$budget" "$command_line" "$(date -u '+%F %H:%M UTC')" \
  "$connections" "$outstanding" "$seconds" "$counters" <<'PY'
import json, sys
d, rss_idle, fds_idle, nofile, budget, cmd, when, conns, outstanding, seconds, counters = sys.argv[1:]
def j(name, part):
    text = open(f"{d}/{name}.{part}").read().strip().splitlines()
    return json.loads(text[-1]) if text else {}
def peak(name):
    r, f = open(f"{d}/{name}.peak").read().split()
    return int(r), int(f)
def rec(name):
    return json.load(open(f"{d}/{name}.record"))
rows, notes = [], []
prev = {"denied_total": 0, "gate_refused_total": 0}
for name, what in (("quiet", "no flood"),
                   ("denied", f"random denied names; {outstanding} in flight; {seconds} s"),
                   ("allowed", f"new allowed names; {outstanding} in flight; {seconds} s"),
                   ("gate", f"{int(conns):,} connections through the gate; held {seconds} s")):
    hit, miss, flood, r = j(name, "hit"), j(name, "miss"), j(name, "flood"), rec(name)
    rss, fds = peak(name)
    dd = r["denied_total"] - prev["denied_total"]
    dg = r["gate_refused_total"] - prev["gate_refused_total"]
    prev = r
    if name in ("denied", "allowed"):
        sent, answered, lost = flood["sent"], flood["answered"], flood["lost"]
        load = f"{sent:,} sent; {flood['qps']:,.0f} qps; {lost} lost"
        if name == "denied":
            exact = "exact" if dd == sent and lost == 0 else ("within the lost" if answered <= dd <= sent else "**differs**")
            total = f"denied {dd:,} of {sent:,} sent: {exact}"
        else:
            total = f"denied +{dd}: exact" if dd == 0 else f"denied +{dd}: **differs**"
    elif name == "gate":
        held, failed = flood["held"], flood["failures"]
        load = f"{held:,} held; {failed:,} refused at the cap"
        total = f"gate refused {dg:,} of {failed:,}: {'exact' if dg == failed else '**differs**'}"
    else:
        load, total = "—", f"denied +{dd}; gate refused +{dg}"
    def lat(p):
        if not p.get("answered"):
            return "no answers"
        l = p["latency_us"]
        return f"{l['p50'] / 1000:.2f} / {l['p99'] / 1000:.2f} ms" + (f"; {p['lost']} lost" if p["lost"] else "")
    ok = all(p.get("answered") and p["latency_us"]["p99"] <= 50000 and p["lost"] == 0 for p in (hit, miss))
    ctl = open(f"{d}/{name}.control").read().strip()
    ctl = f"{int(ctl) / 1000:.1f} ms" if ctl.isdigit() else "**no answer**"
    rows.append(f"| {what} | {load} | {lat(hit)} | {lat(miss)} | {ctl} | {rss / 1024:.1f} MiB | {fds:,} | {total} | "
                f"{'met' if ok else '**missed**'} |".replace(",", "\u202f"))
print(f"""## Under load ({when})

Reproduce: `{cmd}` (as root, after building). dnsguard with the gate on,
RLIMIT_NOFILE {nofile} (what a cage inherits on this machine's Docker engine),
alone on CPU 1; floods, probers and the world's servers on CPU 0 (load
average at report time: {open("/proc/loadavg").read().split()[0]}; other work
on these cores shows up in every latency here, the quiet row included). Its
descriptor budget at start: `{budget}`. At rest: {int(rss_idle) / 1024:.1f} MiB
resident, {fds_idle} descriptors.

An allowed lookup from another process during each flood: the same name
(cache hit) 100 times a second and a new name (miss) 50 times a second,
p50 / p99; the requirement is p99 ≤ 50 ms. Control request: one `dnsguard
--control … list` halfway through (what `cagent allow/deny/ps` wait for).
Peaks sampled every 100 ms.
The record's totals: what decisions.json counted during the phase against
what the flood sent (denied names) or saw refused (gate connections).

| flood | load | allowed hit p50 / p99 | allowed miss p50 / p99 | control request | peak RSS | peak descriptors | record | p99 ≤ 50 ms |
|---|---|---:|---:|---:|---:|---:|---|---|
""" + "\n".join(rows) + f"""

Counters at the end: `{counters}`
""")
PY
)
printf '%s\n' "$section"
python3 "$top/bench/results_section.py" "$out/RESULTS.md" load.sh "$section"
say "written to $out/RESULTS.md"
