#!/usr/bin/env bash
# Runs *as the agent*, as cage-init's command, inside the cage. Asserts the
# issue-4 bullets from the agent's side; exit status = number of failures.
# Environment (passed through cage-init): CAGE_TMP CAGE_WS HTTP_PORT ECHO_PORT
# WANT_UID.
set -u
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); return 1; }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
check_not() { local name=$1; shift; if "$@" >/dev/null 2>&1; then bad "$name"; else ok "$name"; fi; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Polls a file's existence (written by the outer test) with a deadline.
wait_file() {
  local deadline=$(( $(now_ms) + $2 ))
  while [[ ! -e $1 ]]; do (( $(now_ms) < deadline )) || return 1; sleep 0.1; done
}
# curl exits 7 when the connection is refused; "quickly" = well under the
# 5 s connect timeout, i.e. a reset/ICMP reject, not a silent drop.
refused_fast() {
  local start rc elapsed
  start=$(now_ms)
  curl -sS -g --connect-timeout 5 -o /dev/null "$1" 2>/dev/null; rc=$?
  elapsed=$(( $(now_ms) - start ))
  echo "   ($1: curl exit $rc after ${elapsed} ms)"
  [[ $rc == 7 && $elapsed -lt 2000 ]]
}
status_field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/self/status; }
querylog=$CAGE_TMP/world-queries.log
http=$HTTP_PORT

# --- identity and privileges -------------------------------------------------
check "agent runs as the workspace owner's uid" test "$(id -u)" = "$WANT_UID"
check "agent runs as the workspace owner's gid" test "$(id -g)" = "$WANT_UID"
check "HOME was handed to the remapped uid" test "$(stat -c %u "$HOME")" = "$WANT_UID"
touch "$CAGE_WS/written-by-agent" && check "files the agent writes belong to the host user" \
  test "$(stat -c %u "$CAGE_WS/written-by-agent")" = "$WANT_UID"
for set in CapInh CapPrm CapEff CapBnd CapAmb; do
  check "$set is empty" test "$(status_field $set)" = 0000000000000000
done
check "NoNewPrivs is 1" test "$(status_field NoNewPrivs)" = 1
check_not "nft list ruleset fails" nft list ruleset
check_not "nft cannot add a table" nft add table inet agent-was-here
check_not "raw socket cannot be opened" python3 -c \
  'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'
check "low ports need a capability again (cage-init raised ip_unprivileged_port_start)" \
  test "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" = 1024
check_not "the agent cannot bind 127.0.0.11:53 (and pose as Docker's resolver)" python3 -c \
  'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.11", 53))'
check "resolv.conf points at the stub" test "$(cat /etc/resolv.conf)" = "nameserver 127.0.0.1"
check "resolv.conf is root-owned 0644" test "$(stat -c %u:%a /etc/resolv.conf)" = 0:644
check_not "resolv.conf is not writable" sh -c 'echo nameserver 192.0.2.53 >> /etc/resolv.conf'
wait_file "$CAGE_WS/dnsguard.pid" 10000 || bad "outer test published dnsguard's pid"
dg_pid=$(cat "$CAGE_WS/dnsguard.pid" 2>/dev/null || echo 0)
kill_msg=$(kill -0 "$dg_pid" 2>&1)
check "agent cannot signal dnsguard (EPERM, pid $dg_pid)" grep -q "not permitted" <<<"$kill_msg"

# --- DNS and HTTP --------------------------------------------------------------
check "allowed name resolves" test "$(getent ahostsv4 allowed.test | awk 'NR==1{print $1}')" = 192.0.2.80
# The control of every "never reached the world DNS" below: the log does
# record what dnsguard forwards, in this very run.
check "... and the world DNS server's query log recorded it" grep -q "^allowed.test. A" "$querylog"
check "HTTP to the allowed name works" grep -q "hello from the world" <(curl -sS --max-time 5 "http://allowed.test:$http/")
check_not "denied name does not resolve" getent hosts denied.test
check "HTTP by address to a never-resolved host is refused quickly" refused_fast "http://192.0.2.81:$http/"
out=$(kdig +timeout=3 +retry=0 @192.0.2.53 secret.denied.test A 2>&1)
check "dig @world-DNS of a denied name is answered NXDOMAIN by the stub" grep -q "status: NXDOMAIN" <<<"$out" \
  || sed 's/^/   | /' <<<"$out"
check_not "... and the world DNS server never saw it" grep -q secret.denied.test "$querylog"
# Control for the two above: the same query for an allowed name (no cache
# in this policy) is answered and does reach the world DNS server.
before=$(wc -l < "$querylog")
out=$(kdig +timeout=3 +retry=0 @192.0.2.53 allowed.test A 2>&1)
check "control: dig @world-DNS of an allowed name is answered" grep -q "status: NOERROR.*" <<<"$out" \
  || sed 's/^/   | /' <<<"$out"
check "control: ... with the world's address" grep -q "192\.0\.2\.80" <<<"$out"
check "control: ... and the world DNS server saw it" grep -q "^allowed.test. A" <(tail -n +$((before + 1)) "$querylog")
check "dnsguard's log is readable by the agent" test -r "$CAGE_TMP/log/dnsguard.log"
check "dnsguard's log records the denied name" grep -q secret.denied.test "$CAGE_TMP/log/dnsguard.log" \
  || sed 's/^/   | /' "$CAGE_TMP/log/dnsguard.log"
check_not "the log directory is not writable by the agent" touch "$CAGE_TMP/log/forged"

# --- IPv6 --------------------------------------------------------------------------
check "AAAA name resolves" test "$(getent ahostsv6 v6.allowed.test | awk 'NR==1{print $1}')" = 2001:db8:2::80
check "HTTP over IPv6 to the AAAA name works" grep -q "hello from the world" <(curl -sS -6 --max-time 5 "http://v6.allowed.test:$http/")
check "other IPv6 destinations are refused quickly" refused_fast "http://[2001:db8:2::81]:$http/"

# --- expiry: new connections refused, established ones keep working -------------
check "expiry.allowed.test resolves" test "$(getent ahostsv4 expiry.allowed.test | awk 'NR==1{print $1}')" = 192.0.2.82
check "after the set timeout a new connection is refused, the established one still echoes" \
  python3 - "$ECHO_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = socket.create_connection(("192.0.2.82", port), timeout=3)
held.sendall(b"before"); assert held.recv(16) == b"before"
deadline = time.monotonic() + 20
while True:
    assert time.monotonic() < deadline, "entry never expired"
    try:
        socket.create_connection(("192.0.2.82", port), timeout=3).close()
    except ConnectionRefusedError:
        break
    time.sleep(0.2)   # polling the firewall's state, bounded by the deadline
held.sendall(b"after"); assert held.recv(16) == b"after"
PY

# --- dnsguard dies: the network must not open -----------------------------------
touch "$CAGE_WS/ready-kill"
if wait_file "$CAGE_WS/killed" 30000; then
  before=$(wc -l < "$querylog")
  check_not "after dnsguard died, allowed name no longer resolves" timeout 20 getent hosts allowed.test
  out=$(kdig +timeout=2 +retry=0 @192.0.2.53 allowed.test A 2>&1)
  check_not "after dnsguard died, dig @world-DNS gets no answer" grep -q "status: NOERROR" <<<"$out"
  check "... and the query never reached the world DNS server" test "$(wc -l < "$querylog")" = "$before"
  check "after dnsguard died, unresolved hosts are still refused" refused_fast "http://192.0.2.81:$http/"
  check "after dnsguard died, the expired allowed address is refused too" refused_fast "http://192.0.2.82:$ECHO_PORT/"
else
  bad "outer test killed dnsguard"
fi
echo "agent checks: $fails failed"
exit $(( fails > 100 ? 100 : fails ))
