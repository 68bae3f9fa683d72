#!/usr/bin/env bash
# bench/callgrind.sh — dnsguard's own cost per query, independent of how busy
# the machine is: user-space instructions (valgrind callgrind, repeatable)
# and syscalls (strace -c) per query, for the miss path (unique names) and
# the hit path (10 hot names).
#
#   sudo bench/callgrind.sh [--build DIR] [--dnsguard BIN] [--count N] [--outstanding N] [--keep]
#
# Runs everything in one private network namespace (unshare -n): loopback
# only, the fake upstream on 127.0.0.53, table inet cagent with the two
# sets; nothing leaves it. Startup cost is removed by running each scenario
# at N and 5N queries and reporting the difference / 4N.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$top/build
dnsguard=
count=2000
outstanding=32
keep=0
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --dnsguard) dnsguard=$(realpath "$2"); shift 2 ;;
    --count) count=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --inner) shift ;;
    *) echo "callgrind.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "callgrind.sh: needs root" >&2; exit 1; }
for tool in valgrind strace unshare nft; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool not installed" >&2; exit 1; }
done
if [[ ${CALLGRIND_INNER:-0} != 1 ]]; then
  CALLGRIND_INNER=1 exec unshare -n -- "$0" --build "$build" ${dnsguard:+--dnsguard "$dnsguard"} --count "$count" --outstanding "$outstanding" \
    $( ((keep)) && echo --keep)
fi

bench=$build/bin/cagent-bench
dnsguard=${dnsguard:-$build/bin/dnsguard}
scratch=$(mktemp -d /tmp/cagent-callgrind.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((keep)); then echo "scratch kept in $scratch" >&2; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

ip link set lo up
nft -f - <<'EOF'
table inet cagent {
  set allow4 { type ipv4_addr; flags timeout; }
  set allow6 { type ipv6_addr; flags timeout; }
}
EOF
"$bench" serve --listen 127.0.0.53:53 --zone bench.test --ttl 3600 >"$scratch/serve.out" 2>&1 &
pids+=($!)
for ((i = 0; i < 200; i++)); do grep -qs ready "$scratch/serve.out" && break; sleep 0.05; done

cat >"$scratch/dnsguard.toml" <<EOF
listen = ["127.0.0.1:53"]
upstreams = ["127.0.0.53:53"]
allow = ["*.bench.test"]
[refresh]
interval = 0
[cache]
size = 100000
[log]
file = "$scratch/dnsguard.log"
level = "warn"
EOF

# run TOOL SCENARIO N: dnsguard under TOOL answers N queries; prints the metric.
run() {
  local tool=$1 scenario=$2 n=$3 salt=$RANDOM$RANDOM out=$scratch/$1-$2-$3
  case $tool in
    callgrind) valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$dnsguard" --config "$scratch/dnsguard.toml" 2>"$out.err" & ;;
    strace) strace -f -c -o "$out.st" "$dnsguard" --config "$scratch/dnsguard.toml" 2>"$out.err" & ;;
  esac
  local pid=$!
  pids+=("$pid")
  local ok=0
  for ((i = 0; i < 400; i++)); do
    if "$bench" query --server 127.0.0.1:53 --generate 1 --zone bench.test --salt "p$salt" --count 1 \
         --timeout-ms 200 --json 2>/dev/null | grep -q '"noerror":1'; then ok=1; break; fi
  done
  ((ok)) || { echo "dnsguard did not start: $(cat "$out.err")" >&2; exit 1; }
  if [[ $scenario == hit ]]; then
    "$bench" query --server 127.0.0.1:53 --generate 10 --zone bench.test --salt "$salt" --count 10 --outstanding 1 >/dev/null
    "$bench" query --server 127.0.0.1:53 --generate 10 --zone bench.test --salt "$salt" --count "$n" \
      --outstanding "$outstanding" --timeout-ms 5000 --json >"$out.json"
  else
    "$bench" query --server 127.0.0.1:53 --generate "$n" --zone bench.test --salt "$salt" --count "$n" \
      --outstanding "$outstanding" --timeout-ms 5000 --json >"$out.json"
  fi
  # strace passes nothing on: stop the traced dnsguard itself (its only child).
  local target=$pid
  [[ $tool == strace ]] && target=$(pgrep -P "$pid" | head -n 1)
  kill -TERM "$target"; wait "$pid" || true
  grep -q '"lost":0' "$out.json" || echo "warning: $tool $scenario $n lost queries: $(cat "$out.json")" >&2
  case $tool in
    callgrind) awk '/^summary:/ {print $2}' "$out.cg" ;;
    strace) awk '$NF == "total" {print $4}' "$out.st" ;;
  esac
}

for scenario in miss hit; do
  for tool in callgrind strace; do
    a=$(run "$tool" "$scenario" "$count")
    b=$(run "$tool" "$scenario" $((5 * count)))
    printf '%-4s %-9s per query: %s\n' "$scenario" "$([[ $tool == callgrind ]] && echo instr || echo syscalls)" \
      "$(python3 -c 'import sys; a, b, n = map(int, sys.argv[1:]); print("%.1f" % ((b - a) / (4 * n)))' "$a" "$b" "$count")"
  done
done
