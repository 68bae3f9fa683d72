#!/usr/bin/env bash
# bench/relay.sh — what does the secret relay cost a request? The same
# client, server, ruleset and dnsguard; one host reached through the plain
# connection gate (spliced, never decrypted) and one a secret's host (the gate
# hands it to cagent-relay, which terminates TLS, parses and rewrites every
# request and connects again). Side by side in one run, on one CPU (every
# process pinned to CPU 0) and across CPUs; writes the "Secret relay"
# section of bench/RESULTS.md.
#
#   bench/relay.sh [--build DIR] [--quick] [--out DIR]
#
# Per request: sequential GETs on one kept-alive TLS connection (p50, p99,
# after 20 warm-up requests; bench/relay_client.py). Throughput: one download
# of BULK bytes with curl. The server is Python (tests/tools/echo_server.py)
# on both paths, so the difference between the rows is the relay's.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command_line="bench/relay.sh${*:+ $*}"
build=$top/build
out=$top/bench
requests=2000 bulk=$((512 * 1024 * 1024))
while (($#)); do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --quick) requests=200; bulk=$((32 * 1024 * 1024)); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "relay.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { printf 'relay.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables)"
for b in dnsguard cagent-relay nft-test-helper; do [[ -x $build/bin/$b ]] || die "build $b first"; done
for tool in ip taskset setpriv python3 openssl; do command -v "$tool" >/dev/null || die "$tool not installed"; done
py=/usr/bin/python3

id=$$ world=crb-w$$ cage=crb-c$$
tmp=$(mktemp -d /tmp/cagent-relay-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$cage" "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
wait_file() { for _ in $(seq 200); do [[ -s $1 ]] && grep -q -- "${2:-.}" "$1" && return 0; sleep 0.05; done; die "$1 did not appear"; }

ip netns add "$world"; ip netns add "$cage"
ip link add "bc$id" netns "$cage" type veth peer name "bw$id" netns "$world"
C ip link set lo up; W ip link set lo up
C ip addr add 192.0.2.2/24 dev "bc$id"
W ip addr add 192.0.2.53/24 dev "bw$id"
W ip addr add 198.51.100.20/24 dev "bw$id"; W ip addr add 198.51.100.21/24 dev "bw$id"
C ip link set "bc$id" up; W ip link set "bw$id" up
C ip route add 198.51.100.0/24 dev "bc$id"
mkdir -p "/etc/netns/$cage"; echo "nameserver 127.0.0.1" >"/etc/netns/$cage/resolv.conf"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=relay bench CA" \
  -keyout "$tmp/ca.key" -out "$tmp/world-ca.pem" >/dev/null 2>&1
for site in s o; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$site.bench.test" \
    -keyout "$tmp/$site.key" -out "$tmp/$site.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:%s.bench.test\n' "$site" >"$tmp/$site.cnf"
  openssl x509 -req -in "$tmp/$site.csr" -CA "$tmp/world-ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
    -extfile "$tmp/$site.cnf" -out "$tmp/$site.pem" >/dev/null 2>&1
done
chmod 0644 "$tmp"/*
cat >"$tmp/zone.json" <<'JSON'
{"names": {"s.bench.test": {"ttl": 3600, "A": ["198.51.100.20"]},
           "o.bench.test": {"ttl": 3600, "A": ["198.51.100.21"]}}}
JSON
W "$py" "$top/tests/tools/fake_dns.py" --listen 192.0.2.53:53 --zone "$tmp/zone.json" --ready "$tmp/dns.ready" \
  >/dev/null 2>&1 & pids+=($!)
W "$py" "$top/tests/tools/echo_server.py" --site "198.51.100.20,$tmp/s.pem,$tmp/s.key" \
  --site "198.51.100.21,$tmp/o.pem,$tmp/o.key" --log - --ready "$tmp/web.ready" >/dev/null 2>&1 & pids+=($!)
server_pid=$!
wait_file "$tmp/dns.ready"; wait_file "$tmp/web.ready"

install -m 0755 "$build/bin/dnsguard" "$build/bin/cagent-relay" "$tmp/"
C "$build/bin/nft-test-helper" install --uid 4242 --listen-port 53 --upstream 192.0.2.53:53 \
  --gate-port 999 --gated 443 --gated 80 --relay 998,4545 >/dev/null
cat >"$tmp/policy.toml" <<TOML
listen = ["127.0.0.1:53"]
upstreams = ["192.0.2.53:53"]
allow = ["*.bench.test"]
[gate]
enabled = true
[relay]
hosts = ["s.bench.test"]
uid = 4545
[log]
file = "$tmp/log/dnsguard.log"
level = "warning"
TOML
mkdir -m 0755 "$tmp/log" && chown 4242 "$tmp/log"
C setpriv --reuid 4242 --regid 4242 --clear-groups --inh-caps +net_admin,+net_bind_service \
  --ambient-caps +net_admin,+net_bind_service "$tmp/dnsguard" --config "$tmp/policy.toml" 2>/dev/null & pids+=($!)
dnsguard_pid=$!
wait_file "$tmp/log/dnsguard.log" "dnsguard ready"
printf '{"version":1,"secrets":[{"name":"bench","placeholder":"cagent-secret-bench-0000","value":"sk-bench-value","hosts":["s.bench.test"]}]}\n' \
  >"$tmp/secrets.json"
relay_pid=$(C "$py" "$top/tests/netns/relay/start_relay.py" 998 4545 "$tmp/cagent-relay" "$tmp/secrets.json" \
  "$tmp/log/relay.jsonl" "$tmp/session-ca.pem" "$tmp/world-ca.pem")
pids+=("$relay_pid")
wait_file "$tmp/session-ca.pem" "END CERTIFICATE"
cat "$tmp/world-ca.pem" "$tmp/session-ca.pem" >"$tmp/bundle.pem"; chmod 0644 "$tmp/bundle.pem"

pin() {  # CPUS: every long-running process of the setup onto CPUS
  for p in "$server_pid" "$dnsguard_pid" "$relay_pid"; do taskset -a -cp "$1" "$p" >/dev/null; done
}
measure() {  # CPUS HOST → JSON with the download's MB/s added
  local json mbps
  json=$(C setpriv --reuid 4343 --regid 4343 --clear-groups taskset -c "$1" "$py" "$top/bench/relay_client.py" "$2" \
    "$tmp/bundle.pem" "$requests")
  mbps=$(C setpriv --reuid 4343 --regid 4343 --clear-groups taskset -c "$1" curl -sS --http1.1 --cacert "$tmp/bundle.pem" \
    -o /dev/null -w '%{speed_download}' "https://$2/bulk?$bulk")
  echo "${json%\}}, \"mbps\": $(awk -v b="$mbps" 'BEGIN { printf "%.1f", b / 1e6 }')}"
}
all=$(($(nproc) > 1 ? 1 : 0))
results=()
for mode in one all; do
  cpus=0; [[ $mode == all ]] && cpus=0-$(($(nproc) - 1))
  pin "$cpus"
  for path in gate relay; do
    host=o.bench.test; [[ $path == relay ]] && host=s.bench.test
    say "$mode CPU(s), $path: $requests requests, $((bulk / 1048576)) MiB"
    results+=("$mode $path $(measure "$cpus" "$host")")
  done
done
[[ -s $tmp/log/relay.jsonl ]] && die "the relay refused a benchmark request: $(cat "$tmp/log/relay.jsonl")"

section=$("$py" - "$command_line" "$requests" "$bulk" "$(nproc)" "${results[@]}" <<'PY'
import json, sys, time
cmd, n, bulk, ncpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = {}
for r in sys.argv[5:]:
    mode, path, doc = r.split(" ", 2)
    rows[(mode, path)] = json.loads(doc)
out = [f"## Secret relay ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
       f"`{cmd}` — {n} sequential GETs on one kept-alive TLS connection per row (after 20 warm-up),",
       f"then one {bulk // 1048576} MiB download with curl; the plain gate splices the client's own TLS to the",
       "server, the relay terminates it, parses and rewrites every request and opens its own TLS.",
       "The same Python server and clients on both paths: the difference is the relay's.", "",
       "| CPUs | path | p50 ms | p99 ms | mean ms | download MB/s |", "|---|---|---|---|---|---|"]
for mode in ("one", "all"):
    for path in ("gate", "relay"):
        d = rows[(mode, path)]
        label = "1 (all pinned to CPU 0)" if mode == "one" else f"{ncpu} (unpinned)"
        out.append(f"| {label} | {path} | {d['p50_ms']:.3f} | {d['p99_ms']:.3f} | {d['mean_ms']:.3f} | {d['mbps']:.0f} |")
for mode in ("one", "all"):
    g, r = rows[(mode, "gate")], rows[(mode, "relay")]
    out.append("")
    out.append(f"{'One CPU' if mode == 'one' else 'Across CPUs'}: the relay adds {r['p50_ms'] - g['p50_ms']:.3f} ms "
               f"at p50 and {r['p99_ms'] - g['p99_ms']:.3f} ms at p99 per request; download "
               f"{r['mbps'] / g['mbps']:.2f}x the plain gate's.")
print("\n".join(out))
PY
)
echo "$section"
"$py" "$top/bench/results_section.py" "$out/RESULTS.md" relay "$section"
