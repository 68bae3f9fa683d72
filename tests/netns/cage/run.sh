#!/usr/bin/env bash
# A whole cage without Docker: cage-init runs in a fresh network +
# mount namespace joined by a veth pair to a "world" namespace holding a fake
# DNS server, an HTTP server and an echo server on documentation addresses.
#
#   run.sh CAGE_INIT DNSGUARD
#
# Addresses (all on the veth's link, no routes anywhere):
#   cage 192.0.2.2 / 2001:db8:2::2      world 192.0.2.1 / 2001:db8:2::1
#   world DNS 192.0.2.53, 2001:db8:2::53
#   192.0.2.80, 2001:db8:2::80  allowed.test / v6.allowed.test
#   192.0.2.81, 2001:db8:2::81  never resolved (must be refused)
#   192.0.2.82                  expiry.allowed.test (set timeout test)
#   192.0.2.83                  nested.allowed.test (resolved only by the nested sandbox)
#   192.0.2.84                  slow.allowed.test (the embedded-resolver case: a slow answer)
# inner.sh (root, in the cage) and agent.sh (the agent, via cage-init) do the
# asserting; this script builds the world, kills dnsguard when agent.sh asks,
# and tears everything down on any exit.
set -uo pipefail
cage_init=${1:?usage: run.sh CAGE_INIT DNSGUARD}
dnsguard=${2:?usage: run.sh CAGE_INIT DNSGUARD}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, nftables, setuid)"
[[ -x $cage_init ]] || skip "cage-init not built at $cage_init"
[[ -x $dnsguard ]] || skip "dnsguard not built at $dnsguard"
for tool in ip unshare python3 curl kdig useradd nft getent awk; do
  command -v "$tool" >/dev/null || skip "missing tool: $tool"
done

id=$$
world=cgw-$id cage=cgc-$id
tmp=$(mktemp -d /tmp/cage-netns.XXXXXX)
chmod 0755 "$tmp"
# Staging: dnsguard runs as its own uid and agent.sh as the agent, and
# neither can reach into a checkout under a 0700 home (/root/src/cagent).
# Everything another uid executes or reads is copied here (root-owned,
# world-readable, under /tmp); the test never depends on where the tree is.
stage=$tmp/stage
install -d -m 0755 "$stage"
install -m 0755 "$cage_init" "$stage/cage-init"
install -m 0755 "$dnsguard" "$stage/dnsguard"
install -m 0644 "$here/agent.sh" "$stage/agent.sh"
install -m 0755 "$here/fake-dockerd.sh" "$stage/fake-dockerd"
install -m 0644 "$here/embedded_resolver.py" "$here/../../tools/forge_via_nat.py" "$stage/"
cage_init=$stage/cage-init dnsguard=$stage/dnsguard
world_pid='' inner_pid=''
cleanup() {
  [[ -n $inner_pid ]] && kill "$inner_pid" 2>/dev/null
  # Everything still running in our two namespaces is ours.
  for ns in "$cage" "$world"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  [[ -n $world_pid ]] && kill "$world_pid" 2>/dev/null
  ip netns del "$cage" 2>/dev/null
  ip netns del "$world" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
die() { echo "not ok - $*"; exit 1; }

# --- the two namespaces --------------------------------------------------------
ip netns add "$world" && ip netns add "$cage" || die "ip netns add"
ip link add "vc$id" netns "$cage" type veth peer name "vw$id" netns "$world" || die "veth"
ip -n "$cage" link set lo up
ip -n "$world" link set lo up
ip -n "$cage" addr add 192.0.2.2/24 dev "vc$id"
ip -n "$cage" addr add 2001:db8:2::2/64 dev "vc$id" nodad
for a in 1 53 80 81 82 83 84; do ip -n "$world" addr add "192.0.2.$a/24" dev "vw$id"; done
for a in 1 53 80 81; do ip -n "$world" addr add "2001:db8:2::$a/64" dev "vw$id" nodad; done
ip -n "$cage" link set "vc$id" up
ip -n "$world" link set "vw$id" up

# --- the world ---------------------------------------------------------------------
mkdir -p "$tmp/www" && echo "hello from the world" > "$tmp/www/index.html"
cat > "$tmp/zone.json" <<'JSON'
{"allowed.test.": {"A": ["192.0.2.80"]},
 "v6.allowed.test.": {"AAAA": ["2001:db8:2::80"]},
 "expiry.allowed.test.": {"A": ["192.0.2.82"]},
 "nested.allowed.test.": {"A": ["192.0.2.83"]},
 "slow.allowed.test.": {"A": ["192.0.2.84"]},
 "denied.test.": {"A": ["192.0.2.81"]},
 "secret.denied.test.": {"A": ["192.0.2.81"]}}
JSON
ip netns exec "$world" python3 "$here/world.py" --dns 192.0.2.53 --dns 2001:db8:2::53 --zone "$tmp/zone.json" \
  --query-log "$tmp/world-queries.log" --http-root "$tmp/www" --ports-file "$tmp/ports" 2> "$tmp/world.log" &
world_pid=$!
disown "$world_pid"   # killed in cleanup; no job-status noise
deadline=$(( $(now_ms) + 10000 ))
until [[ -s $tmp/ports ]]; do
  (( $(now_ms) < deadline )) && kill -0 "$world_pid" 2>/dev/null || die "world servers did not start"
  sleep 0.05
done
read -r http_kv echo_kv < "$tmp/ports"
http_port=${http_kv#http=} echo_port=${echo_kv#echo=}

# --- policies ------------------------------------------------------------------------
# ttl min = max = 2 s and refresh/cache off, so the expiry test is driven by
# the set timeout alone.
policy_body() {
  cat <<TOML
listen = ["127.0.0.1:53", "[::1]:53"]
allow = ["allowed.test", "*.allowed.test"]
deny_rcode = "nxdomain"
[ttl]
min = 2
max = 2
[refresh]
interval = 0
[cache]
size = 0
[nft]
table = "cagent"
set4 = "allow4"
set6 = "allow6"
[log]
file = "$tmp/log/dnsguard.log"
level = "info"
TOML
}
{ echo 'upstreams = ["192.0.2.53:53"]'; policy_body; } > "$tmp/policy.toml"
policy_body > "$tmp/policy-no-upstreams.toml"
{ echo 'upstreams = ["192.0.2.53:53"]'; echo 'no_such_key = 1'; policy_body; } > "$tmp/policy-bad-key.toml"
{ echo 'upstreams = ["192.0.2.53:53"'; policy_body; } > "$tmp/policy-syntax.toml"
printf -- '-----BEGIN CERTIFICATE-----\nCAGENT-TEST-CA\n-----END CERTIFICATE-----\n' > "$tmp/extra-ca.pem"
mkdir -p "$tmp/log"
chmod 0644 "$tmp"/*.toml "$tmp/extra-ca.pem"

# --- the cage ----------------------------------------------------------------------
export CAGE_TMP=$tmp CAGE_ID=$id CAGE_INIT=$cage_init DNSGUARD=$dnsguard CAGE_STAGE=$stage
export HTTP_PORT=$http_port ECHO_PORT=$echo_port WANT_UID=4242
ip netns exec "$cage" unshare -m --propagation private bash "$here/inner.sh" &
inner_pid=$!

# Coordinator for the main run: publish dnsguard's pid (the agent checks it
# cannot signal it), and when the agent asks, kill dnsguard into a crash
# loop: cage-init restarts it four times (each restart is seen as a new
# pid: the restart works), and the fifth exit within 60 s leaves it down.
# What the agent then checks is the closed cage without a resolver.
dnsguard_pid() {
  local uid pid
  uid=$(cat "$tmp/dnsguard.uid" 2>/dev/null) || return 1
  for pid in $(ip netns pids "$cage" 2>/dev/null); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dnsguard ]] || continue
    [[ $(awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status" 2>/dev/null) == "$uid" ]] || continue
    echo "$pid"; return 0
  done
  return 1
}
coordinate() {
  local deadline=$(( $(now_ms) + 120000 )) pid=''
  while (( $(now_ms) < deadline )) && kill -0 "$inner_pid" 2>/dev/null; do
    if [[ -z $pid && -e $tmp/main-started ]] && pid=$(dnsguard_pid); then
      echo "$pid" > "$tmp/ws/dnsguard.tmp" && mv "$tmp/ws/dnsguard.tmp" "$tmp/ws/dnsguard.pid"
    fi
    if [[ -n $pid && -e $tmp/ws/ready-kill ]]; then
      local round next
      for round in 1 2 3 4 5; do
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null && (( $(now_ms) < deadline )); do sleep 0.05; done
        ((round == 5)) && break
        next=''
        while (( $(now_ms) < deadline )); do
          next=$(dnsguard_pid) && [[ $next != "$pid" ]] && break
          next=''; sleep 0.05
        done
        [[ -n $next ]] || { echo "not ok - coordinator: dnsguard was not restarted after exit $round"; coord_fails=1; break; }
        echo "ok - coordinator: dnsguard restarted after exit $round (pid $pid -> $next)"
        pid=$next
      done
      sleep 2  # longer than any backoff: a fifth restart would be visible now
      if next=$(dnsguard_pid); then echo "not ok - coordinator: dnsguard restarted after five exits (pid $next)"; coord_fails=1
      else echo "ok - coordinator: after five exits within 60 s dnsguard stays down"; fi
      touch "$tmp/ws/killed"
      return 0
    fi
    sleep 0.05
  done
  echo "not ok - coordinator: never saw dnsguard and the agent's kill request"
  coord_fails=1
}
coord_fails=0
coordinate
wait "$inner_pid"; status=$?
inner_pid=''
echo "cage netns test: inner exit $status"
exit $(( status == 0 && coord_fails == 0 ? 0 : 1 ))
