#!/usr/bin/env bash
# bench/compare.sh — what does the cage cost per lookup? dnsguard vs dnsmasq
# --nftset vs the bare upstream, in private network namespaces, side by side.
#
#   bench/compare.sh                       full run, writes bench/RESULTS.md + bench/latency.png
#   bench/compare.sh --quick --out DIR     smoke run (small counts), as CI does
#
# Options: --build DIR (default <repo>/build), --out DIR (default <repo>/bench),
#          --count N (queries per run, default 200000), --outstanding N
#          (default 32), --max-seconds S (cap per run, default 20), --quick,
#          --keep (keep the scratch directory with raw JSON and logs).
#
# Topology (nothing leaves these namespaces; documentation addresses only):
#
#   cage netns  cbc<pid>                       world netns  cbw<pid>
#   ───────────────────                        ───────────────────
#   cagent-bench query ── 127.0.0.1:53 ──▶ resolver (dnsguard | dnsmasq)
#                                              │ 192.0.2.10 ── veth ── 192.0.2.53
#                                              └──────────────────────▶ cagent-bench serve (fake upstream,
#   --connect-after-answer ── 198.51.100.x:80 ─────────────────────────▶ zone bench.test, TCP sink on :80;
#   (admitted only via @allow4)                                          198.51.100.0/24 is local there)
#
# The cage namespace carries the real cage ruleset (`cagent-bench ruleset`,
# i.e. nft/install_ruleset): default-deny egress, DNS to the upstream only for
# the resolver's uid, new connections only to @allow4/@allow6. Both resolvers
# run as that uid and feed the same sets (dnsmasq: --nftset).
#
# CPU pinning (taskset), on a machine with >= 2 cores: the query client and
# the fake upstream share CPU 0 and the resolver under test has CPU 1 to
# itself; for the direct run the upstream moves to CPU 1, where the resolver
# would be, so "direct" is the best this machine does with the same client.
# Softirq work for loopback/veth runs on the sending CPU, so the kernel's
# share of each hop lands with whoever sent the packet. The "-1c" light-load
# runs put client, upstream and resolver all on CPU 0 (every scenario alike)
# to show the work per lookup without cross-CPU wake-ups.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The exact command, for the report header.
command_line="bench/compare.sh${*:+ $*}"
build=$top/build
out=$top/bench
count=200000
outstanding=32
max_seconds=20
quick=0
keep=0
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --count) count=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --max-seconds) max_seconds=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# Light-load runs (one query in flight) give the per-lookup latency without
# queueing behind other outstanding queries.
light_count=5000
if ((quick)); then
  count=3000
  light_count=300
  max_seconds=5
fi

say() { printf 'compare: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

bench_bin=$build/bin/cagent-bench
dnsguard_bin=$build/bin/dnsguard
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables)"
[[ -x $bench_bin ]] || die "$bench_bin not built (cmake --build $build --target cagent-bench)"
for tool in ip taskset setpriv python3; do command -v "$tool" >/dev/null || die "$tool not installed (setup.sh --test-tools)"; done
have_dnsmasq=0; command -v dnsmasq >/dev/null && have_dnsmasq=1
have_dnsguard=0; [[ -x $dnsguard_bin ]] && have_dnsguard=1
have_gnuplot=0; command -v gnuplot >/dev/null && have_gnuplot=1

ncpu=$(nproc)
if ((ncpu >= 2)); then
  cpu_client=0 cpu_resolver=1
else
  cpu_client=0 cpu_resolver=0
fi

world=cbw$$
cage=cbc$$
resolver_uid=65534   # nobody: both resolvers run as this uid, the only one whose DNS may leave
upstream=192.0.2.53
zone=bench.test
scratch=$(mktemp -d /tmp/cagent-bench.XXXXXX)
chmod 755 "$scratch"
pids=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Anything else still running inside our own namespaces was started by us
  # too; a deleted namespace would not stop it.
  local ns
  for ns in "$cage" "$world"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  ip netns del "$cage" 2>/dev/null || true
  ip netns del "$world" 2>/dev/null || true
  if ((keep)); then say "scratch kept in $scratch"; else rm -rf "$scratch"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_cage() { ip netns exec "$cage" "$@"; }
in_world() { ip netns exec "$world" "$@"; }

# Polls `$@` every 50 ms until it succeeds or `deadline_s` passes.
wait_until() {
  local deadline_s=$1; shift
  local tries=$((deadline_s * 20))
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# --- namespaces -------------------------------------------------------------
ip netns add "$world"
ip netns add "$cage"
in_cage ip link set lo up
in_world ip link set lo up
ip -n "$cage" link add veth0 type veth peer name veth1 netns "$world"
ip -n "$cage" addr add 192.0.2.10/24 dev veth0
ip -n "$world" addr add $upstream/24 dev veth1
ip -n "$cage" link set veth0 up
ip -n "$world" link set veth1 up
# The answers' addresses live in the world namespace, so connects to them
# reach the TCP sink; the cage routes them over the veth.
ip -n "$world" route add local 198.51.100.0/24 dev lo
ip -n "$cage" route add 198.51.100.0/24 via $upstream

# --- the fake upstream --------------------------------------------------------
# Background jobs are started with `ip netns exec` directly (not through the
# in_* functions) so that $! is the server's own pid: ip, taskset and setpriv
# each exec the next program.
ip netns exec "$world" taskset -c "$cpu_resolver" "$bench_bin" serve --listen $upstream:53 --zone $zone --ttl 3600 \
  --tcp-sink 0.0.0.0:80 >"$scratch/serve.out" 2>&1 &
upstream_pid=$!
pids+=("$upstream_pid")
wait_until 10 grep -q ready "$scratch/serve.out" || die "fake upstream did not start: $(cat "$scratch/serve.out")"
pin_upstream() { taskset -a -p -c "$1" "$upstream_pid" >/dev/null; }

# run_query LABEL SERVER GENERATE SALT COUNT [extra query options…]
run_query() {
  local label=$1 server=$2 generate=$3 salt=$4 n=$5
  shift 5
  in_cage taskset -c "$cpu_client" "$bench_bin" query --server "$server" --generate "$generate" --zone $zone \
    --salt "$salt" --outstanding "$outstanding" --count "$n" --duration "$max_seconds" --json \
    --label "$label" --curve "$scratch/$label.curve" "$@" >"$scratch/$label.json" \
    || die "query run $label failed"
  say "$label: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f qps, p50 %.1f us, lost %d" % (r["qps"], r["latency_us"]["p50"], r["lost"]))' "$scratch/$label.json")"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# --- 1. direct ------------------------------------------------------------------
# Before the ruleset: with it, root's DNS to the upstream would be redirected
# to the local resolver.
pin_upstream "$cpu_resolver"
run_query direct $upstream:53 "$count" "d$$" "$count"
run_query direct-1 $upstream:53 "$light_count" "e$$" "$light_count" --outstanding 1
pin_upstream "$cpu_client"
# Light load on one CPU (client, upstream and resolver all on CPU 0): the
# processing latency without the cross-CPU wake-ups that dominate the runs
# above (each hop wakes an idle vCPU). Done alike for every scenario.
run_query direct-1c $upstream:53 "$light_count" "g$$" "$light_count" --outstanding 1

# --- the cage ruleset -------------------------------------------------------------
in_cage "$bench_bin" ruleset --upstream $upstream:53 --resolver-uid $resolver_uid --listen-port 53 \
  || die "cannot install the cage ruleset"
# Sanity: without a resolver in between, a connect to an answer address must fail.
if in_cage timeout 5 bash -c 'exec 3<>/dev/tcp/198.51.100.77/80' 2>/dev/null; then
  die "cage ruleset lets unresolved addresses through"
fi

start_resolver() {  # start_resolver NAME CMD… ; sets resolver_pid
  local name=$1; shift
  ip netns exec "$cage" taskset -c "$cpu_resolver" "$@" >"$scratch/$name.out" 2>&1 &
  resolver_pid=$!
  pids+=("$resolver_pid")
  local probe=(ip netns exec "$cage" "$bench_bin" query --server 127.0.0.1:53 --generate 1 --zone $zone --salt probe
               --count 1 --timeout-ms 200 --json)
  wait_until 10 bash -c '"$@" | grep -q "\"noerror\":1"' _ "${probe[@]}" \
    || die "$name did not start answering: $(tail -n 5 "$scratch/$name.out")"
}

stop_resolver() {
  kill "$resolver_pid" 2>/dev/null || true
  wait "$resolver_pid" 2>/dev/null || true
}

flush_sets() { in_cage nft flush set inet cagent allow4; in_cage nft flush set inet cagent allow6; }

# The runs per resolver: hit and miss at full load and at one in flight,
# then connect-after-answer at full load.
measure_resolver() {
  local name=$1
  # Hit path: warm 10 hot names, then repeat them.
  run_query "$name-hit-warm" 127.0.0.1:53 10 "h$$$name" 10
  run_query "$name-hit" 127.0.0.1:53 10 "h$$$name" "$count"
  run_query "$name-miss" 127.0.0.1:53 "$count" "m$$$name" "$count"
  run_query "$name-hit-1" 127.0.0.1:53 10 "h$$$name" "$light_count" --outstanding 1
  run_query "$name-miss-1" 127.0.0.1:53 "$light_count" "l$$$name" "$light_count" --outstanding 1
  taskset -a -p -c "$cpu_client" "$resolver_pid" >/dev/null
  run_query "$name-hit-1c" 127.0.0.1:53 10 "h$$$name" "$light_count" --outstanding 1
  run_query "$name-miss-1c" 127.0.0.1:53 "$light_count" "k$$$name" "$light_count" --outstanding 1
  taskset -a -p -c "$cpu_resolver" "$resolver_pid" >/dev/null
}
# At most 100 000 names: below dnsguard's bound on name bindings (131 072).
measure_connect() {
  local n=$((count < 100000 ? count : 100000))
  run_query "$1-connect" 127.0.0.1:53 "$n" "c$$$1" "$n" --connect-after-answer --connect-port 80
}

# --- 2. dnsguard ------------------------------------------------------------------
if ((have_dnsguard)); then
  cat >"$scratch/dnsguard.toml" <<EOF
listen    = ["127.0.0.1:53"]
upstreams = ["$upstream:53"]
allow     = ["*.$zone"]
deny_rcode = "nxdomain"
[ttl]
min = 30
max = 3600
[refresh]
interval = 0
[cache]
size = 10000
[nft]
table = "cagent"
set4 = "allow4"
set6 = "allow6"
[log]
file = "$scratch/dnsguard.log"
level = "warn"
# As in a cage: the connection gate on, so every insert also records its
# name binding (the gate's listener is idle here; the ruleset does not
# redirect, so --connect-after-answer still measures the set alone).
[gate]
enabled = true
EOF
  # It logs as the resolver uid, not root.
  install -m 600 -o $resolver_uid /dev/null "$scratch/dnsguard.log"
  # The resolver uid executes a copy in the scratch directory: the build tree
  # may sit under a 0700 home (/root/src/cagent) that no other uid can enter.
  install -m 0755 "$dnsguard_bin" "$scratch/dnsguard"
  # Only the capabilities it needs: nftables (netlink) and port 53.
  start_dnsguard() {
    start_resolver dnsguard setpriv --reuid=$resolver_uid --regid=$resolver_uid --clear-groups \
      --inh-caps=-all,+net_admin,+net_bind_service --ambient-caps=-all,+net_admin,+net_bind_service \
      "$scratch/dnsguard" --config "$scratch/dnsguard.toml"
  }
  start_dnsguard
  # RSS with 10 000 cached names (the cache holds exactly that many).
  echo "$(rss_kib "$resolver_pid")" >"$scratch/dnsguard.rss-start"
  run_query dnsguard-fill 127.0.0.1:53 10000 "f$$" 10000
  echo "$(rss_kib "$resolver_pid")" >"$scratch/dnsguard.rss-10k"
  measure_resolver dnsguard
  # The connect run on a fresh dnsguard: the runs above bound about 230 000
  # names for up to an hour, past dnsguard's bound on name bindings (131 072;
  # beyond it a new address is answered SERVFAIL, fail closed), so without a
  # restart this run would measure that bound, not the set-before-answer path.
  stop_resolver
  flush_sets
  start_dnsguard
  measure_connect dnsguard
  stop_resolver
  flush_sets
else
  say "dnsguard not built ($dnsguard_bin): its rows will be missing"
fi

# --- 3. dnsmasq --nftset --------------------------------------------------------------
if ((have_dnsmasq)); then
  # Started as the resolver uid with the two capabilities, like dnsguard: if
  # it started as root and dropped to nobody itself, its upstream sockets
  # would still belong to root and the ruleset would drop them.
  start_resolver dnsmasq setpriv --reuid=$resolver_uid --regid=$resolver_uid --clear-groups \
    --inh-caps=-all,+net_admin,+net_bind_service --ambient-caps=-all,+net_admin,+net_bind_service \
    dnsmasq --keep-in-foreground --no-daemon --log-facility=- --conf-file=/dev/null \
    --no-resolv --no-hosts --no-poll --server=$upstream --listen-address=127.0.0.1 --bind-interfaces \
    --port=53 --cache-size=10000 --dns-forward-max=1000 --pid-file= \
    --nftset=/$zone/4#inet#cagent#allow4,6#inet#cagent#allow6
  echo "$(rss_kib "$resolver_pid")" >"$scratch/dnsmasq.rss-start"
  run_query dnsmasq-fill 127.0.0.1:53 10000 "f$$" 10000
  echo "$(rss_kib "$resolver_pid")" >"$scratch/dnsmasq.rss-10k"
  measure_resolver dnsmasq
  measure_connect dnsmasq
  stop_resolver
else
  say "dnsmasq not installed: its rows will be missing"
fi

# --- report ---------------------------------------------------------------------------
python3 "$top/bench/report.py" --scratch "$scratch" --out "$out" --command "$command_line" \
  --cpus "client+upstream: CPU $cpu_client, resolver: CPU $cpu_resolver (direct: upstream on CPU $cpu_resolver)" \
  --count "$count" --outstanding "$outstanding" --quick "$quick"
if ((have_gnuplot)); then
  gnuplot "$scratch/latency.gp" || die "gnuplot failed"
fi
say "wrote $out/RESULTS.md$( ((have_gnuplot)) && echo " and $out/latency.png")"
# The hard correctness property: no answer handed out before the set held it.
python3 "$top/bench/report.py" --scratch "$scratch" --check-connects
