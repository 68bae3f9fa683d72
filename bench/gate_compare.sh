#!/usr/bin/env bash
# bench/gate_compare.sh — what does the connection gate cost a TCP connection?
# The same client, server, addresses, ruleset and dnsguard, once without the
# gate (address-level, the "direct" path) and once with it, side by side in
# one run; writes the "Connection gate" section of bench/RESULTS.md.
#
#   bench/gate_compare.sh [--build DIR] [--quick] [--out DIR]
#
#   cage netns  cgb-c<pid>                        world netns  cgb-w<pid>
#   cagent-bench http ── a.bench.test:80 ──────▶ cagent-bench http-serve (198.51.100.10:80)
#     (resolved through dnsguard, which         fake DNS (tests/tools/fake_dns.py) on 192.0.2.53
#      runs as uid 65534, gate on/off)
#
# Measured: connect → first response byte (sequential connections, light
# load), bulk download throughput, and 1000 connections held open at once
# through the gate (dnsguard's resident memory before and while they are open).
# CPU pinning as in compare.sh: client and server on CPU 0, dnsguard on CPU 1.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command_line="bench/gate_compare.sh${*:+ $*}"
build=$top/build
out=$top/bench
quick=0
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gate_compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
latency_n=2000 bulk=$((1024 * 1024 * 1024)) rounds=5 hold=1000 hold_s=3
((quick)) && { latency_n=100; bulk=$((64 * 1024 * 1024)); rounds=2; hold=200; hold_s=1; }

say() { printf 'gate_compare: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables)"
bench_bin=$build/bin/cagent-bench
dnsguard_bin=$build/bin/dnsguard
fake_dns=$top/tests/tools/fake_dns.py
[[ -x $bench_bin && -x $dnsguard_bin ]] || die "build cagent-bench and dnsguard first (cmake --build $build)"
for tool in ip taskset setpriv python3; do command -v "$tool" >/dev/null || die "$tool not installed"; done
cpu_client=0 cpu_dnsguard=0
(($(nproc) >= 2)) && cpu_dnsguard=${GATE_BENCH_DNSGUARD_CPU:-1}

id=$$ world=cgb-w$$ cage=cgb-c$$ uid=65534
scratch=$(mktemp -d /tmp/cagent-gate-bench.XXXXXX)
chmod 755 "$scratch"
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$cage" "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
wait_until() {  # SECONDS CMD…
  local tries=$(($1 * 20)); shift
  for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

ip netns add "$world"
ip netns add "$cage"
ip link add "bc$id" netns "$cage" type veth peer name "bw$id" netns "$world"
C ip link set lo up; W ip link set lo up
C ip addr add 192.0.2.2/24 dev "bc$id"
W ip addr add 192.0.2.53/24 dev "bw$id"
W ip addr add 198.51.100.10/24 dev "bw$id"
C ip link set "bc$id" up; W ip link set "bw$id" up
C ip route add 198.51.100.0/24 dev "bc$id"
mkdir -p "/etc/netns/$cage"
echo "nameserver 127.0.0.1" >"/etc/netns/$cage/resolv.conf"

echo '{"names": {"a.bench.test": {"ttl": 3600, "A": ["198.51.100.10"]}}}' >"$scratch/zone.json"
W python3 "$fake_dns" --listen 192.0.2.53:53 --zone "$scratch/zone.json" --ready "$scratch/dns.ready" \
  >"$scratch/dns.log" 2>&1 &
pids+=($!)
W taskset -c "$cpu_client" "$bench_bin" http-serve --listen 198.51.100.10:80 >"$scratch/http.out" 2>&1 &
pids+=($!)
wait_until 10 test -s "$scratch/dns.ready" || die "fake DNS did not start"
wait_until 10 grep -q ready "$scratch/http.out" || die "http-serve did not start"
install -m 0755 "$dnsguard_bin" "$scratch/dnsguard"

dnsguard_pid=
start_dnsguard() {  # GATE(true|false) [CPU]
  local cpu=${2:-$cpu_dnsguard}
  cat >"$scratch/policy.toml" <<TOML
listen = ["127.0.0.1:53"]
upstreams = ["192.0.2.53:53"]
allow = ["*.bench.test"]
[gate]
enabled = $1
[log]
file = "$scratch/dnsguard.log"
level = "warning"
TOML
  chmod 0644 "$scratch/policy.toml"
  : >"$scratch/dnsguard.log"; chown "$uid" "$scratch/dnsguard.log"
  local args=(--upstream 192.0.2.53:53 --resolver-uid "$uid")
  [[ $1 == true ]] && args+=(--gate-port 999 --gated 80 --gated 443)
  C "$bench_bin" ruleset "${args[@]}"
  C taskset -c "$cpu" setpriv --reuid "$uid" --regid "$uid" --clear-groups \
    --inh-caps +net_admin,+net_bind_service --ambient-caps +net_admin,+net_bind_service \
    "$scratch/dnsguard" --config "$scratch/policy.toml" 2>>"$scratch/dnsguard.err" &
  pids+=($!)
  wait_until 10 grep -q "dnsguard ready" "$scratch/dnsguard.log" || die "dnsguard did not start: $(cat "$scratch/dnsguard.err")"
  dnsguard_pid=
  for p in $(ip netns pids "$cage"); do
    [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$scratch/dnsguard" ]] && dnsguard_pid=$p
  done
  [[ -n $dnsguard_pid ]] || die "dnsguard's pid not found"
  # The client resolves through dnsguard (the gate's binding is made here).
  C getent hosts a.bench.test >/dev/null || die "a.bench.test does not resolve"
}
stop_dnsguard() { kill "$dnsguard_pid"; wait_until 5 bash -c "! kill -0 $dnsguard_pid" || true; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

client() {  # LABEL ARGS…
  local label=$1; shift
  C taskset -c "$cpu_client" setpriv --reuid 4343 --regid 4343 --clear-groups \
    "$bench_bin" http --target 198.51.100.10:80 --host a.bench.test --label "$label" "$@"
}

results=()
for mode in direct gate; do
  say "$mode: latency ($latency_n connections), bulk ($rounds × $((bulk / 1048576)) MiB)"
  start_dnsguard "$([[ $mode == gate ]] && echo true || echo false)"
  results+=("$(client "$mode" --latency "$latency_n" --bulk "$bulk" --rounds "$rounds" | tail -1)")
  if [[ $mode == gate ]]; then
    say "gate: $hold connections held at once"
    rss_before=$(rss_kib "$dnsguard_pid")
    client hold --hold "$hold" --hold-seconds "$hold_s" >"$scratch/hold.out" &
    hold_pid=$!
    wait_until 60 grep -q holding "$scratch/hold.out" || die "hold client did not get its connections up"
    rss_during=$(rss_kib "$dnsguard_pid")
    wait "$hold_pid"
    held=$(tail -1 "$scratch/hold.out")
  fi
  stop_dnsguard
done

# Light load on one CPU (client, server and dnsguard together, every path
# alike): the gate's own work per connection without cross-CPU wake-ups.
for mode in direct gate; do
  say "$mode on one CPU: latency ($latency_n connections)"
  start_dnsguard "$([[ $mode == gate ]] && echo true || echo false)" "$cpu_client"
  results+=("$(client "$mode-1cpu" --latency "$latency_n" | tail -1)")
  stop_dnsguard
done

# The report: a section of RESULTS.md between markers, replaced on every run.
direct=${results[0]} gate=${results[1]} direct1=${results[2]} gate1=${results[3]}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
held_n=$(field "$held" held)
section=$(python3 - "$direct" "$gate" "$rss_before" "$rss_during" "$held_n" "$hold" "$command_line" "$(date -u +%F)" "$direct1" "$gate1" <<'PY'
import json, sys
d, g = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rss0, rss1, held, want, cmd, day = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
d1, g1 = json.loads(sys.argv[9]), json.loads(sys.argv[10])
per_conn = (rss1 - rss0) / held if held else 0
print(f"""## Connection gate ({day})

Reproduce: `{cmd}` (as root, after building). Same client, server, ruleset
and dnsguard; only the gate differs. Client and server on CPU 0, dnsguard on
CPU 1 (the relay runs in dnsguard's one thread).

| path | connect → first byte p50 | p90 | p99 | bulk median | bulk best |
|---|---:|---:|---:|---:|---:|
| direct (address-level) | {d['latency_p50_us']:.0f} µs | {d['latency_p90_us']:.0f} µs | {d['latency_p99_us']:.0f} µs | {d['bulk_median_mbps']:.0f} MB/s | {d['bulk_best_mbps']:.0f} MB/s |
| through the gate | {g['latency_p50_us']:.0f} µs | {g['latency_p90_us']:.0f} µs | {g['latency_p99_us']:.0f} µs | {g['bulk_median_mbps']:.0f} MB/s | {g['bulk_best_mbps']:.0f} MB/s |
| gate − direct / gate ÷ direct | +{g['latency_p50_us'] - d['latency_p50_us']:.0f} µs | +{g['latency_p90_us'] - d['latency_p90_us']:.0f} µs | +{g['latency_p99_us'] - d['latency_p99_us']:.0f} µs | {g['bulk_median_mbps'] / max(d['bulk_median_mbps'], 1e-9):.2f}× | {g['bulk_best_mbps'] / max(d['bulk_best_mbps'], 1e-9):.2f}× |
| direct, all on one CPU | {d1['latency_p50_us']:.0f} µs | {d1['latency_p90_us']:.0f} µs | {d1['latency_p99_us']:.0f} µs | | |
| through the gate, all on one CPU | {g1['latency_p50_us']:.0f} µs | {g1['latency_p90_us']:.0f} µs | {g1['latency_p99_us']:.0f} µs | | |
| gate − direct, one CPU | +{g1['latency_p50_us'] - d1['latency_p50_us']:.0f} µs | +{g1['latency_p90_us'] - d1['latency_p90_us']:.0f} µs | +{g1['latency_p99_us'] - d1['latency_p99_us']:.0f} µs | | |

- {held} of {want} connections held open through the gate at once; dnsguard's
  resident memory {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB with them open
  ({per_conn:.1f} KiB per connection: the first-flight buffers are freed after the
  decision; each relayed connection keeps two sockets and two pipes in the kernel).
- Failures: direct {d['failures']}, gate {g['failures']}, one CPU {d1['failures']} / {g1['failures']}.
- Cross-CPU, the gate's two extra hops (client → gate, gate → server) each
  wake an idle vCPU; on one CPU the same work costs what the last row says.
  The relay moves data on dnsguard's one core with splice() (no user-space
  copy); the second TCP connection (client ↔ gate over loopback) is what
  costs the throughput.
""")
PY
)
printf '%s\n' "$section"
results_md=$out/RESULTS.md
python3 "$top/bench/results_section.py" "$results_md" gate_compare.sh "$section"
say "written to $results_md"
