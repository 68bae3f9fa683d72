#!/usr/bin/env bash
# bench/soak.sh — a compressed long session: does dnsguard stay flat (memory,
# file descriptors) and never refuse an allowed name while answers rotate,
# expire and are refreshed for half an hour? A bench script, not a CI test.
#
#   bench/soak.sh [--minutes 30] [--rate 10] [--interval 5] [--build DIR]
#                 [--out DIR] [--results FILE] [--overstay S] [--first-request-after S] [--keep]
#
# --minutes: length of the run (default 30; --minutes 2 to try it).
# --rate: the client's new connections per second (default 10).
# --interval: seconds between samples (default 5).
# --out: soak.csv, soak.png and failures.jsonl (default bench/soak).
# --results: the file whose "soak.sh" section is replaced (default bench/RESULTS.md).
# --overstay S: the negative control — the client keeps each cached answer S
#   seconds past its TTL, as a broken client would; the soak must then fail.
# --first-request-after S: the long-lived connections send their first
#   request S seconds after connecting (a pre-connecting client; default 0).
# --keep: keep the scratch directory (dnsguard's log, the decision record).
#
#   cage netns  cs-c<pid>                                world netns  cs-w<pid>
#   soak.py client (uid 4343) ── 127.0.0.1:53 ──▶ dnsguard (uid 65534, gate on, real ruleset)
#     │                                              └─ 192.0.2.10 ── veth ──▶ 192.0.2.53 fake_dns.py
#     └─ 198.51.100.x:443/80 ─ruleset─▶ gate :999 ──────────────────────▶ world_gate.py on 0.0.0.0:443/:80
#                                                                       (198.51.100.0/24 local there)
#
# Exit status: 0 when the acceptance holds (bench/README.md#the-soak), 1 when
# it does not or the run broke, 2 on a usage error. Everything it creates
# (namespaces, processes, scratch files) is removed on any exit.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command_line="bench/soak.sh${*:+ $*}"
build=$top/build
out=$top/bench/soak
results=$top/bench/RESULTS.md
minutes=30 rate=10 interval=5 overstay=0 first_request_after=0 keep=0
persistent=4 persistent_every=10
usage() { sed -n '2,30p' "$0"; }
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    --results) results=$2; shift 2 ;;
    --overstay) overstay=$2; shift 2 ;;
    --first-request-after) first_request_after=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
number() { [[ $2 =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "soak.sh: $1: '$2' is not a number" >&2; exit 2; }; }
number --minutes "$minutes"; number --rate "$rate"; number --interval "$interval"; number --overstay "$overstay"
number --first-request-after "$first_request_after"
seconds=$(python3 -c "print(float('$minutes') * 60)")
python3 -c "import sys; sys.exit(0 if float('$seconds') >= 30 and float('$rate') > 0 and float('$interval') >= 1 else 1)" \
  || { echo "soak.sh: need --minutes ≥ 0.5, --rate > 0, --interval ≥ 1" >&2; exit 2; }

say() { printf 'soak: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables, setpriv)"
bench_bin=$build/bin/cagent-bench
dnsguard_bin=$build/bin/dnsguard
[[ -x $bench_bin && -x $dnsguard_bin ]] || die "build cagent-bench and dnsguard first (cmake --build $build --target dnsguard cagent-bench)"
for tool in ip nft setpriv python3 openssl gnuplot; do
  command -v "$tool" >/dev/null || die "$tool not installed (setup.sh --test-tools)"
done
# The client runs as another uid, which cannot use a python3 found through
# root's PATH (e.g. a shim under /root): the system's, by its path.
agent_py=/usr/bin/python3
[[ -x $agent_py ]] || die "$agent_py not found (the client's interpreter)"
mkdir -p "$out"

world=cs-w$$ cage=cs-c$$
dnsguard_uid=65534 client_uid=4343
scratch=$(mktemp -d /tmp/cagent-soak.XXXXXX)
chmod 0755 "$scratch"
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # Anything still running in our own namespaces was started by us too.
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if ((keep)); then say "scratch kept in $scratch"; else rm -rf "$scratch"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
wait_until() {  # SECONDS CMD… — polls every 50 ms
  local tries=$(($1 * 20)); shift
  for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# --- namespaces -----------------------------------------------------------------
ip netns add "$world"
ip netns add "$cage"
C ip link set lo up; W ip link set lo up
ip -n "$cage" link add veth0 type veth peer name veth1 netns "$world"
ip -n "$cage" addr add 192.0.2.10/24 dev veth0
ip -n "$world" addr add 192.0.2.53/24 dev veth1
ip -n "$cage" link set veth0 up; ip -n "$world" link set veth1 up
# The whole answer pool is local in the world, so one server on 0.0.0.0
# answers at every address a name rotates to.
ip -n "$world" route add local 198.51.100.0/24 dev lo
ip -n "$cage" route add 198.51.100.0/24 via 192.0.2.53

# --- the world: rotating upstream, HTTPS + HTTP servers -----------------------------
install -m 0755 "$top/bench/soak.py" "$scratch/soak.py"
install -m 0644 "$top/bench/results_section.py" "$scratch/results_section.py"
allow_line=$(python3 "$scratch/soak.py" plan --dir "$scratch")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=cagent soak CA" \
  -keyout "$scratch/ca.key" -out "$scratch/ca.pem" >/dev/null 2>&1 || die "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=soak" \
  -keyout "$scratch/site.key" -out "$scratch/site.csr" >/dev/null 2>&1 || die "openssl: site key"
printf 'subjectAltName=DNS:*.exact.test,DNS:*.wild.test\n' >"$scratch/ext.cnf"
openssl x509 -req -in "$scratch/site.csr" -CA "$scratch/ca.pem" -CAkey "$scratch/ca.key" -CAcreateserial -days 2 \
  -extfile "$scratch/ext.cnf" -out "$scratch/site.pem" >/dev/null 2>&1 || die "openssl: site certificate"
chmod 0644 "$scratch"/*
W python3 "$top/tests/tools/fake_dns.py" --listen 192.0.2.53:53 --zone "$scratch/zone.json" \
  --ready "$scratch/dns.ready" >"$scratch/dns.out" 2>&1 &
pids+=($!)
W python3 "$top/tests/netns/gate/world_gate.py" --addr 0.0.0.0 --cert "$scratch/site.pem" --key "$scratch/site.key" \
  --sni-log /dev/null --ready "$scratch/web.ready" >"$scratch/web.out" 2>&1 &
pids+=($!)
wait_until 10 test -s "$scratch/dns.ready" || die "fake DNS did not start: $(cat "$scratch/dns.out")"
wait_until 10 test -s "$scratch/web.ready" || die "web server did not start: $(cat "$scratch/web.out")"

# --- the cage: real ruleset, real dnsguard ---------------------------------------------
C "$bench_bin" ruleset --upstream 192.0.2.53:53 --resolver-uid $dnsguard_uid --gate-port 999 --gated 443 --gated 80 \
  || die "cannot install the cage ruleset"
mkdir -m 0755 "$scratch/log" && chown $dnsguard_uid "$scratch/log"
cat >"$scratch/policy.toml" <<TOML
listen = ["127.0.0.1:53"]
upstreams = ["192.0.2.53:53"]
$allow_line
# Compressed time: the cage's floor is 30 s; at 5 s the upstream's short TTLs
# reach the sets, so elements and gate bindings expire during the run.
[ttl]
min = 5
max = 3600
[refresh]
interval = 60
[gate]
enabled = true
port = 999
tls_ports = [443]
http_ports = [80]
[log]
file = "$scratch/log/dnsguard.log"
level = "warning"
TOML
chmod 0644 "$scratch/policy.toml"
# The resolver uid runs a copy: the build tree may sit under a 0700 home.
install -m 0755 "$dnsguard_bin" "$scratch/dnsguard"
"$scratch/dnsguard" --config "$scratch/policy.toml" --check >/dev/null || die "policy rejected"
ip netns exec "$cage" setpriv --reuid=$dnsguard_uid --regid=$dnsguard_uid --clear-groups \
  --inh-caps=-all,+net_admin,+net_bind_service --ambient-caps=-all,+net_admin,+net_bind_service \
  "$scratch/dnsguard" --config "$scratch/policy.toml" 2>>"$scratch/dnsguard.err" &
dnsguard_pid=$!   # ip netns exec and setpriv exec: this is dnsguard's own pid
pids+=("$dnsguard_pid")
wait_until 10 grep -q "dnsguard ready" "$scratch/log/dnsguard.log" \
  || die "dnsguard did not start: $(cat "$scratch/dnsguard.err" "$scratch/log/dnsguard.log" 2>/dev/null)"

# The agent's files: its own directory.
install -d -m 0755 -o $client_uid "$scratch/client"
cp "$scratch/names.txt" "$scratch/client/"
agent() { C setpriv --reuid=$client_uid --regid=$client_uid --clear-groups "$@"; }

# --- the controls: the measurement sees refusals, the allowed path works -----------
probe=$(agent "$agent_py" "$scratch/soak.py" probe --dir "$scratch/client" --ca "$scratch/ca.pem") \
  || die "controls failed: $probe"
say "controls: $probe"
record=$scratch/log/decisions.json
seen() {  # the record's gate and firewall refusals both counted the probes
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
sys.exit(0 if r.get("gate_refused_total",0) >= 1 and r.get("firewall_refused_total",0) >= 1 else 1)' "$record"
}
wait_until 5 seen || die "the decision record did not count the controls' refusals: $(cat "$record")"

# --- the soak ---------------------------------------------------------------------------
say "running for $minutes min at $rate connections/s (samples every $interval s into $out/soak.csv)"
ip netns exec "$cage" setpriv --reuid=$client_uid --regid=$client_uid --clear-groups \
  "$agent_py" "$scratch/soak.py" client --dir "$scratch/client" --ca "$scratch/ca.pem" --seconds "$seconds" \
  --rate "$rate" --persistent $persistent --persistent-every $persistent_every --overstay "$overstay" \
  --first-request-after "$first_request_after" >"$scratch/client.out" 2>&1 &
client_pid=$!
pids+=("$client_pid")
python3 "$scratch/soak.py" sample --pid "$dnsguard_pid" --dir "$scratch/client" --log "$scratch/log/dnsguard.log" \
  --decisions "$record" --journal "$scratch/log/gate-bindings.journal" --cage "$cage" --csv "$out/soak.csv" \
  --interval "$interval" --max-seconds "$(python3 -c "print(float('$seconds') + 120)")" \
  || die "sampling stopped: $(tail -n 5 "$scratch/log/dnsguard.log")"
wait "$client_pid" || die "the client failed: $(tail -n 20 "$scratch/client.out")"
# Kept only when there were failures (one line each: what, name, address, kind, the answer's age and TTL).
if [[ -s $scratch/client/failures.jsonl ]]; then cp "$scratch/client/failures.jsonl" "$out/"; else rm -f "$out/failures.jsonl"; fi
kill -0 "$dnsguard_pid" 2>/dev/null || die "dnsguard died during the soak: $(tail -n 5 "$scratch/log/dnsguard.log")"

python3 "$scratch/soak.py" report --csv "$out/soak.csv" --out "$out" --results "$results" --command "$command_line" \
  --rate "$rate" --interval "$interval" --persistent $persistent --persistent-every $persistent_every \
  --overstay "$overstay" --first-request-after "$first_request_after"
