#!/bin/bash
# Packet test for the cage ruleset: namespace "cage" (ruleset installed by
# nft-test-helper) and namespace "world" joined by a veth pair, documentation
# addresses only, no route anywhere else. Shows that a TCP connect to an
# address in allow4/allow6 (or a static CIDR) succeeds and to any other is
# refused at once (TCP reset), not left to time out; and that other uids' DNS
# is redirected to the local stub's port.
#   packet_test.sh PATH/TO/nft-test-helper
set -euo pipefail

helper=${1:?usage: packet_test.sh nft-test-helper}
if [ "$(id -u)" != 0 ]; then echo "skipped: needs root (CAP_NET_ADMIN)"; exit 77; fi
# Debian's interpreter, not a per-user shim: the probes also run as another
# uid, and the servers must be the processes we kill.
py=/usr/bin/python3
for tool in ip setpriv "$py"; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done

cage=cagent-nft-cage-$$
world=cagent-nft-world-$$
# Under /tmp whatever TMPDIR says: uids 4242 and 4343 run the probes staged
# here, and a TMPDIR under a 0700 home would be out of their reach.
tmp=$(mktemp -d /tmp/cagent-nft-packets.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$cage" 2>/dev/null || true
  ip netns del "$world" 2>/dev/null || true
  ip netns del "cagent-nft-sbx-$$" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$cage" || { echo "skipped: cannot create network namespaces"; exit 77; }
ip netns add "$world"
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }

ip link add "nftc$$" type veth peer name "nftw$$"
ip link set "nftc$$" netns "$cage"
ip link set "nftw$$" netns "$world"
C ip link set lo up
W ip link set lo up
C ip addr add 198.51.100.1/24 dev "nftc$$"
C ip -6 addr add 2001:db8:100::1/64 dev "nftc$$" nodad
for a in 10 11 12; do
  W ip addr add "198.51.100.$a/24" dev "nftw$$"
  W ip -6 addr add "2001:db8:100::$a/64" dev "nftw$$" nodad
done
C ip link set "nftc$$" up
W ip link set "nftw$$" up

# World: one TCP listener per address, all on the same kernel-chosen port,
# and a UDP "resolver" on 198.51.100.12:53 that echoes.
cat >"$tmp/world.py" <<'PY'
import os, select, socket, sys, time
addrs = ["198.51.100.10", "198.51.100.11", "2001:db8:100::10", "2001:db8:100::11"]
socks, port = [], 0
for a in addrs:
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((a, port)); s.listen(16)
    port = s.getsockname()[1]
    socks.append(s)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("198.51.100.12", 53))
socks.append(u)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select(socks, [], [], 1)
    for s in r:
        if s is u:
            data, peer = u.recvfrom(512); u.sendto(b"world:" + data, peer)
        else:
            c, _ = s.accept(); c.close()
PY
W "$py" "$tmp/world.py" "$tmp/port" >"$tmp/world.log" 2>&1 &
pids+=($!)

# Cage: the local "stub resolver" on 127.0.0.1:5353 (UDP echo), and a
# stand-in for Docker's embedded resolver: 127.0.0.11 on a random port.
cat >"$tmp/stub.py" <<'PY'
import os, select, socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5353))
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.bind(("127.0.0.11", 0))
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(d.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.time() + 60
while time.time() < deadline:
    for s in select.select([u, d], [], [], 1)[0]:
        data, peer = s.recvfrom(512)
        s.sendto((b"stub:" if s is u else b"docker:") + data, peer)
PY
C "$py" "$tmp/stub.py" "$tmp/stub-ready" >"$tmp/stub.log" 2>&1 &
pids+=($!)

wait_for_file() {  # poll, bounded: 200 × 50 ms
  for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
  echo "FAIL: $1 did not appear"; exit 1
}
wait_for_file "$tmp/port"
wait_for_file "$tmp/stub-ready"
port=$(cat "$tmp/port")
docker_dns_port=$(cat "$tmp/stub-ready")

# probe tcp ADDR → "ok|refused|timeout|error:<e> <seconds>"
cat >"$tmp/probe.py" <<'PY'
import socket, sys, time
kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
t0 = time.monotonic()
try:
    if kind == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3); s.connect((addr, port)); r = "ok"
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b"q", (addr, port))
        data, _ = s.recvfrom(512); r = "reply:" + data.decode()
except ConnectionRefusedError: r = "refused"
except socket.timeout: r = "timeout"
except OSError as e: r = "error:" + e.__class__.__name__
print(r, "%.3f" % (time.monotonic() - t0))
PY

failures=0
check() {  # check WANT USER KIND ADDR PORT — USER: root, dnsguard (4242) or agent (4343)
  local want=$1 who=$2 kind=$3 addr=$4 p=$5 got secs
  if [ "$who" = dnsguard ] || [ "$who" = agent ]; then
    local uid=4242; [ "$who" = agent ] && uid=4343
    read -r got secs < <(C setpriv --reuid "$uid" --regid "$uid" --clear-groups "$py" "$tmp/probe.py" "$kind" "$addr" "$p" 2>&1 | tail -1) || true
  else
    read -r got secs < <(C "$py" "$tmp/probe.py" "$kind" "$addr" "$p" 2>&1 | tail -1) || true
  fi
  if [ "$got" = "$want" ]; then
    echo "ok:   $who $kind $addr:$p → $got in ${secs}s"
  else
    echo "FAIL: $who $kind $addr:$p → wanted $want, got $got in ${secs}s"; failures=$((failures + 1))
  fi
  if [ "$want" = refused ] && [ "$got" = refused ] &&
     ! "$py" -c "import sys; sys.exit(0 if float('$secs') < 1.0 else 1)"; then
    echo "FAIL: refusal took ${secs}s (want < 1 s: a reset, not a timeout)"; failures=$((failures + 1))
  fi
}
chmod 0755 "$tmp" && chmod 0644 "$tmp"/*.py  # readable by uid 4242

# Before the ruleset: everything reachable (the test network works).
check ok root tcp 198.51.100.11 "$port"

C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.12:53 --onlink6 2001:db8:100::/64
check refused root tcp 198.51.100.10 "$port"        # not allowed yet
C "$helper" add 198.51.100.10 60 2001:db8:100::10 60
check ok root tcp 198.51.100.10 "$port"
check refused root tcp 198.51.100.11 "$port"
check ok root tcp 2001:db8:100::10 "$port"
check refused root tcp 2001:db8:100::11 "$port"
# DNS: other uids land on the local stub whatever address they ask; only
# dnsguard's uid reaches the upstream, and only the upstream.
check reply:stub:q root udp 198.51.100.12 53
check reply:stub:q root udp 198.51.100.11 53
check reply:world:q dnsguard udp 198.51.100.12 53
# Not an upstream: dropped even though .10 is allowed (a datagram dropped in
# the output hook fails sendto with EPERM).
check error:PermissionError dnsguard udp 198.51.100.10 53

# Docker's embedded resolver: Docker DNATs 127.0.0.11:53 to it from a nat
# chain at priority -100 in the container's namespace. The cage's redirect
# must win for the agent (else its queries would bypass dnsguard), the
# resolver's own port must be closed to the agent (else it could resolve any
# name directly), and dnsguard may still use it as its upstream (the
# resolver's socket is root's, as dockerd's are in a container).
C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.12:53 --upstream 127.0.0.11:53 \
  --local-resolver 127.0.0.11,0 --onlink6 2001:db8:100::/64
C nft -f - <<NFT
table ip dockersim {
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:$docker_dns_port
  }
}
NFT
check reply:stub:q agent udp 127.0.0.11 53
check error:PermissionError agent udp 127.0.0.11 "$docker_dns_port"
check reply:docker:q dnsguard udp 127.0.0.11 53
check reply:docker:q dnsguard udp 127.0.0.11 "$docker_dns_port"
# A flow the agent opened from a port dnsguard's next query happens to use
# must not carry that query: the agent's packet from port P to
# 127.0.0.11:53 was redirected to the stub, and conntrack would give
# dnsguard's packet on the same tuple the same redirect (back into the
# resolver that sent it). dnsguard's query on that port is refused; from a
# fresh port (control) it reaches the upstream.
cat >"$tmp/port_probe.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.settimeout(2)
try:
    s.sendto(b"q", ("127.0.0.11", 53)); print("reply:" + s.recv(512).decode())
except socket.timeout: print("timeout")
except OSError as e: print("error:" + e.__class__.__name__)
PY
chmod 0644 "$tmp/port_probe.py"
seed_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
got=$(C setpriv --reuid 4343 --regid 4343 --clear-groups "$py" "$tmp/port_probe.py" "$seed_port" 2>&1 | tail -1)
if [ "$got" = reply:stub:q ]; then echo "ok:   the agent's query from port $seed_port was redirected to the stub"
else echo "FAIL: the agent's seeding query got $got (wanted reply:stub:q)"; failures=$((failures + 1)); fi
got=$(C setpriv --reuid 4242 --regid 4242 --clear-groups "$py" "$tmp/port_probe.py" "$seed_port" 2>&1 | tail -1)
if [ "$got" = error:PermissionError ]; then echo "ok:   dnsguard's query on the agent's flow (port $seed_port) is refused, not looped into the stub"
else echo "FAIL: dnsguard's query on the agent's flow got $got (wanted error:PermissionError)"; failures=$((failures + 1)); fi
check reply:docker:q dnsguard udp 127.0.0.11 53
C nft delete table ip dockersim
C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.12:53 --onlink6 2001:db8:100::/64
C "$helper" add 198.51.100.10 60 2001:db8:100::10 60

# Inbound: a listener in the cage is not reachable from the world (default
# drop in input), while the cage's own connections still get their replies.
cat >"$tmp/listen.py" <<'PY'
import os, select, socket, sys, time
socks = []
for a in ("198.51.100.1", "2001:db8:100::1"):
    s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((a, int(sys.argv[2]))); s.listen(4); socks.append(s)
open(sys.argv[1], "w").close()
deadline = time.time() + 30
while time.time() < deadline:
    for s in select.select(socks, [], [], 1)[0]:
        c, _ = s.accept(); c.close()
PY
C "$py" "$tmp/listen.py" "$tmp/listen-ready" "$port" >"$tmp/listen.log" 2>&1 &
pids+=($!)
wait_for_file "$tmp/listen-ready"
for a in 198.51.100.1 2001:db8:100::1; do
  read -r got secs < <(W "$py" "$tmp/probe.py" tcp "$a" "$port" 2>&1 | tail -1) || true
  if [ "$got" = timeout ]; then echo "ok:   world tcp $a:$port (a listener in the cage) → dropped"
  else echo "FAIL: world tcp $a:$port → wanted timeout (dropped), got $got"; failures=$((failures + 1)); fi
done
check ok root tcp 198.51.100.10 "$port"   # replies to the cage's own connections still come in
# A published port (trusted config: docker run -p) is the one way in.
C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.12:53 --onlink6 2001:db8:100::/64 \
  --inbound "$port/tcp"
for a in 198.51.100.1 2001:db8:100::1; do
  read -r got secs < <(W "$py" "$tmp/probe.py" tcp "$a" "$port" 2>&1 | tail -1) || true
  if [ "$got" = ok ]; then echo "ok:   world tcp $a:$port (published) → $got"
  else echo "FAIL: world tcp $a:$port (published) → wanted ok, got $got"; failures=$((failures + 1)); fi
done

# The forged-upstream attack. dnsguard (uid 4242) has a connected UDP socket
# to its upstream; the agent (uid 4343) binds the upstream's endpoint itself
# and sends one datagram to dnsguard's socket first, so that conntrack holds
# an entry whose reply direction is dnsguard's next query. Ports below 1024
# are opened to every uid here (as Docker does in a container) so that only
# the ruleset stands in the way: the agent must never see the query, and
# dnsguard must get the real resolver's answer (or none), never the agent's.
cat >"$tmp/victim.py" <<'PY'
import os, socket, sys, time
host, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
open(d + "/victim-port.tmp", "w").write(str(s.getsockname()[1])); os.rename(d + "/victim-port.tmp", d + "/victim-port")
for _ in range(100):
    if os.path.exists(d + "/seeded"): break
    time.sleep(0.05)
s.settimeout(2)
try:
    s.send(b"q"); print("reply:" + s.recv(512).decode())
except socket.timeout: print("timeout")
except OSError as e: print("error:" + e.__class__.__name__)
PY
cat >"$tmp/attacker.py" <<'PY'
import os, socket, sys, time
host, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.bind((host, port))
for _ in range(100):
    if os.path.exists(d + "/victim-port"): break
    time.sleep(0.05)
victim = int(open(d + "/victim-port").read())
try: a.sendto(b"seed", ("127.0.0.1", victim))
except OSError as e: print("seed:" + e.__class__.__name__)
open(d + "/seeded", "w").close()
a.settimeout(3)
try:
    data, peer = a.recvfrom(512); a.sendto(b"agent:" + data, peer); print("attacker got the query")
except socket.timeout: print("attacker saw nothing")
except OSError as e: print("attacker:" + e.__class__.__name__)
PY
chmod 0644 "$tmp"/*.py
forged() {  # forged WANT ATTACKER_WANT UPSTREAM_HOST UPSTREAM_PORT WHAT
  # WANT: what dnsguard's socket reads first; ATTACKER_WANT: the attacker's
  # last line ("attacker got the query" or "attacker saw nothing").
  local want=$1 awant=$2 host=$3 p=$4 what=$5 d got alog
  d=$(mktemp -d "$tmp/forged.XXXX"); chmod 0777 "$d"
  C setpriv --reuid 4343 --regid 4343 --clear-groups "$py" "$tmp/attacker.py" "$host" "$p" "$d" >"$d/attacker.log" 2>&1 &
  local apid=$!
  got=$(C setpriv --reuid 4242 --regid 4242 --clear-groups "$py" "$tmp/victim.py" "$host" "$p" "$d" 2>&1 | tail -1) || true
  wait "$apid" || true
  alog=$(tr '\n' ' ' <"$d/attacker.log")
  if [ "$got" = "$want" ] && [ "$(tail -1 "$d/attacker.log")" = "$awant" ]; then
    echo "ok:   $what: forged upstream $host:$p → dnsguard got $got ($alog)"
  else
    echo "FAIL: $what: forged upstream $host:$p → wanted $want / $awant, dnsguard got $got ($alog)"
    failures=$((failures + 1))
  fi
}
C sysctl -qw net.ipv4.ip_unprivileged_port_start=0
# Docker's embedded resolver as the upstream (root's socket in the cage,
# as dockerd opens it): the real answer must win.
C nft -f - <<NFT
table ip dockersim {
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:$docker_dns_port
  }
  chain POSTROUTING {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 127.0.0.11 udp sport $docker_dns_port snat to 127.0.0.11:53
  }
}
NFT
# Control: without the cage's table the attack works in this setup — the
# seed lands in dnsguard's socket and the query goes to the attacker —, so
# the pass below is the ruleset's doing.
C nft delete table inet cagent
forged reply:seed "attacker got the query" 127.0.0.11 53 "control: no cage ruleset"
C "$helper" install --uid 4242 --listen-port 5353 --upstream 127.0.0.11:53 --local-resolver 127.0.0.11,0 \
  --onlink6 2001:db8:100::/64
forged reply:docker:q "attacker saw nothing" 127.0.0.11 53 "cage ruleset: the real answer wins"
C nft delete table ip dockersim

# The same upstream, attacked through Docker's NAT port instead: dnsguard's
# query to 127.0.0.11:53 is DNATed to the resolver's real port R, so its
# flow's reply direction is 127.0.0.11:R → dnsguard's port. The agent reads
# R and dnsguard's port in /proc/net/udp, binds 127.0.0.1:R and sends
# answers whose source it sets to 127.0.0.11 (IP_PKTINFO, no capability);
# conntrack would take them as replies of dnsguard's flow. The resolver
# here answers after a second, so the forgery always comes first. A second
# shape DNATs to another local address (127.0.0.12:R): no rule about the
# upstream's address applies there, only the flow's owner tells it apart.
cat >"$tmp/slow_resolver.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.time() + 90
s.settimeout(1)
while time.time() < deadline:
    try: data, peer = s.recvfrom(512)
    except socket.timeout: continue
    time.sleep(1); s.sendto(b"docker:" + data, peer)
PY
cat >"$tmp/nat_victim.py" <<'PY'
import os, socket, sys, time
d = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.11", 53))
s.send(b"q")
open(d + "/sent", "w").close()
s.settimeout(4)
try: print("reply:" + s.recv(512).decode())
except socket.timeout: print("timeout")
except OSError as e: print("error:" + e.__class__.__name__)
PY
cat >"$tmp/nat_forger.py" <<'PY'
# nat_forger.py DIR RESOLVER_ADDRESS — everything else from /proc/net/udp,
# as the agent in a cage would find it: the resolver's port(s) (root's
# sockets on its address) and dnsguard's sockets (connected to 127.0.0.11:53).
import os, socket, struct, sys, time
d, resolver = sys.argv[1], sys.argv[2]
IP_PKTINFO = 8  # <linux/in.h>; Python 3.11 has no name for it
want = "%08X:" % struct.unpack("<I", socket.inet_aton(resolver))[0]
for _ in range(100):
    if os.path.exists(d + "/sent"): break
    time.sleep(0.02)
ports, victims = [], []
for line in open("/proc/net/udp").readlines()[1:]:
    f = line.split()
    local, remote, uid = f[1], f[2], f[7]
    if local.startswith(want) and uid == "0": ports.append(int(local[9:], 16))
    if remote == "0B00007F:0035": victims.append(int(local.split(":")[1], 16))
print("found resolver ports %s, dnsguard sockets %s" % (ports, victims))
if not ports or not victims: sys.exit(0)
source = struct.pack("i4s4s", 0, socket.inet_aton(resolver), b"\0" * 4)
sent, errors = 0, set()
for port in ports:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", port))
    for _ in range(10):
        for p in victims:
            try:
                a.sendmsg([b"agent:forged"], [(socket.IPPROTO_IP, IP_PKTINFO, source)], 0, ("127.0.0.1", p))
                sent += 1
            except OSError as e:
                errors.add(e.__class__.__name__)
print("sent %d forged answers from %s%s" % (sent, resolver, (", refused: " + ",".join(sorted(errors))) if errors else ""))
PY
chmod 0644 "$tmp"/*.py
nat_forged() {  # nat_forged WANT RESOLVER_ADDRESS WHAT
  local d got
  d=$(mktemp -d "$tmp/natforged.XXXX"); chmod 0777 "$d"
  C setpriv --reuid 4343 --regid 4343 --clear-groups "$py" "$tmp/nat_forger.py" "$d" "$2" >"$d/forger.log" 2>&1 &
  local fpid=$!
  got=$(C setpriv --reuid 4242 --regid 4242 --clear-groups "$py" "$tmp/nat_victim.py" "$d" 2>&1 | tail -1)
  wait "$fpid" || true
  # The attack ran: the forger found both ends and tried.
  if [ "$got" = "$1" ] && grep -q '^found resolver ports \[[0-9]' "$d/forger.log" &&
     grep -q '^sent ' "$d/forger.log"; then
    echo "ok:   $3 → dnsguard got $got ($(tr '\n' ' ' <"$d/forger.log"))"
  else
    echo "FAIL: $3 → wanted $1, dnsguard got $got ($(tr '\n' ' ' <"$d/forger.log"))"
    failures=$((failures + 1))
  fi
}
for resolver in 127.0.0.11 127.0.0.12; do
  ready=$tmp/slow-ready-$resolver
  C "$py" "$tmp/slow_resolver.py" "$ready" "$resolver" >"$tmp/slow.log" 2>&1 &
  pids+=($!)
  wait_for_file "$ready"
  slow_port=$(cat "$ready")
  C nft -f - <<NFT
table ip dockersim_slow {
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 udp dport 53 dnat to $resolver:$slow_port
  }
  chain POSTROUTING {
    type nat hook postrouting priority 100; policy accept;
    ip saddr $resolver udp sport $slow_port snat to 127.0.0.11:53
  }
}
NFT
  # Control: without the cage's table the attack works in this setup (the
  # forgery is what dnsguard reads), so a pass below is the ruleset's doing.
  C nft delete table inet cagent
  nat_forged reply:agent:forged "$resolver" "control: forged via $resolver's NAT port, no cage ruleset"
  # The resolver's sockets are root's, as dockerd's are in a container.
  C "$helper" install --uid 4242 --listen-port 5353 --upstream 127.0.0.11:53 --local-resolver 127.0.0.11,0 \
    --onlink6 2001:db8:100::/64
  nat_forged reply:docker:q "$resolver" "forged via $resolver's NAT port, cage ruleset: the real answer wins"
  C nft delete table ip dockersim_slow
done
# An upstream on 127.0.0.1, the address dnsguard answers its own clients
# from: dnsguard's answers (reply direction, to 127.0.0.1) must still reach
# its clients, while its upstream's port stays closed to replies of other
# flows. A stub of dnsguard's uid on 127.0.0.1:5354 answers here.
cat >"$tmp/dg_stub.py" <<'PY'
import os, socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5354))
open(sys.argv[1] + ".tmp", "w").close(); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
u.settimeout(1)
deadline = time.time() + 30
while time.time() < deadline:
    try: data, peer = u.recvfrom(512)
    except socket.timeout: continue
    u.sendto(b"dnsguard:" + data, peer)
PY
chmod 0644 "$tmp/dg_stub.py"
dg_dir=$(mktemp -d "$tmp/dgstub.XXXX"); chmod 0777 "$dg_dir"
C setpriv --reuid 4242 --regid 4242 --clear-groups "$py" "$tmp/dg_stub.py" "$dg_dir/ready" >"$tmp/dg_stub.log" 2>&1 &
pids+=($!)
wait_for_file "$dg_dir/ready"
C "$helper" install --uid 4242 --listen-port 5353 --upstream 127.0.0.1:9 --onlink6 2001:db8:100::/64
check reply:dnsguard:q agent udp 127.0.0.1 5354
check reply:dnsguard:q root udp 127.0.0.1 5354
# A resolver served on 127.0.0.1 itself (root's stub on :5353): dnsguard's
# queries are delivered to it and its answers reach dnsguard.
C "$helper" install --uid 4242 --listen-port 5300 --upstream 127.0.0.1:5353 --local-resolver 127.0.0.1,0 \
  --onlink6 2001:db8:100::/64
check reply:stub:q dnsguard udp 127.0.0.1 5353
check reply:dnsguard:q agent udp 127.0.0.1 5354

# An upstream endpoint in the cage that nobody serves: the agent binds it
# and would simply receive the queries.
# Control: without the cage's table the attacker gets the query.
C nft delete table inet cagent
forged reply:seed "attacker got the query" 127.0.0.12 5354 "control: no cage ruleset"
C "$helper" install --uid 4242 --listen-port 5353 --upstream 127.0.0.12:5354 --onlink6 2001:db8:100::/64
forged timeout "attacker saw nothing" 127.0.0.12 5354 "cage ruleset"
C sysctl -qw net.ipv4.ip_unprivileged_port_start=1024

# Nested Docker's link (sysbox): root in the engine's sandbox has raw
# sockets in its own namespace and the cage routes for it. It must not be
# able to forge a packet from another source into the cage — above all a
# reply from dnsguard's upstream into dnsguard's connected socket (the
# agent can read that socket's port in the cage's /proc/net/udp): conntrack
# would take it as established, whatever interface it came in on, and a
# forged answer would put any address into the allow sets. The cage's
# reverse-path filter is off (the kernel's default in a container), so only
# the ruleset stands in the way.
sandbox=cagent-nft-sbx-$$
ip netns add "$sandbox"
S() { ip netns exec "$sandbox" "$@"; }
C sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip link add "ndc$$" type veth peer name "nds$$"
ip link set "ndc$$" netns "$cage"
ip link set "nds$$" netns "$sandbox"
C ip addr add 100.127.255.253/30 dev "ndc$$"
C ip link set "ndc$$" up
S ip link set lo up
S ip addr add 100.127.255.254/30 dev "nds$$"
S ip -6 addr add 2001:db8:100::99/128 dev "nds$$" nodad
S ip link set "nds$$" up
S ip route add default via 100.127.255.253
S ip -6 route add 2001:db8:100::/64 dev "nds$$"
S ip -6 neigh replace 2001:db8:100::1 lladdr "$(C cat "/sys/class/net/ndc$$/address")" dev "nds$$"
W ip addr add 198.51.100.13/24 dev "nftw$$"
W ip -6 addr add 2001:db8:100::13/64 dev "nftw$$" nodad
# The upstream answers, but late (1.5 s): the forgery always comes first,
# so dnsguard reading the real answer means the forgery never arrived.
cat >"$tmp/late.py" <<'PY'
import os, select, socket, sys, time
socks = []
for a in ("198.51.100.13", "2001:db8:100::13"):
    s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 53)); socks.append(s)
open(sys.argv[1] + ".tmp", "w").close(); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
due = []  # (when, socket, data, peer)
deadline = time.time() + 90
while time.time() < deadline:
    wait = max(0.0, min([w for w, *_ in due], default=time.time() + 1) - time.time())
    for s in select.select(socks, [], [], wait)[0]:
        data, peer = s.recvfrom(512)
        due.append((time.time() + 1.5, s, data, peer))
    now = time.time()
    for item in [i for i in due if i[0] <= now]:
        due.remove(item)
        item[1].sendto(b"world:" + item[2], item[3])
PY
W "$py" "$tmp/late.py" "$tmp/late-ready" >"$tmp/late.log" 2>&1 &
pids+=($!)
wait_for_file "$tmp/late-ready"
nested_install() {
  C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.13:53 --upstream 2001:db8:100::13:53 \
    --onlink6 2001:db8:100::/64 --nested "ndc$$,100.127.255.253,100.127.255.252/30"
}
cat >"$tmp/nvictim.py" <<'PY'
import os, socket, sys
host, d = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, 53)); s.send(b"q")
open(d + "/port.tmp", "w").write(str(s.getsockname()[1])); os.rename(d + "/port.tmp", d + "/port")
s.settimeout(4)
try: print("reply:" + s.recv(512).decode())
except socket.timeout: print("timeout")
except OSError as e: print("error:" + e.__class__.__name__)
PY
cat >"$tmp/nforger.py" <<'PY'
import os, socket, sys, time
upstream, cage, d = sys.argv[1], sys.argv[2], sys.argv[3]
for _ in range(100):
    if os.path.exists(d + "/port"): break
    time.sleep(0.05)
port = int(open(d + "/port").read())
fam = socket.AF_INET6 if ":" in upstream else socket.AF_INET
f = socket.socket(fam, socket.SOCK_DGRAM)
f.setsockopt(socket.IPPROTO_IPV6 if fam == socket.AF_INET6 else socket.IPPROTO_IP, 75 if fam == socket.AF_INET6 else 19, 1)  # IP(V6)_TRANSPARENT
f.bind((upstream, 53))
sent = 0
for _ in range(5):
    sent += f.sendto(b"forged", (cage, port)) > 0; time.sleep(0.05)
print("sent %d" % sent)
PY
chmod 0644 "$tmp"/*.py
nested_forged() {  # nested_forged WANT UPSTREAM CAGE_ADDRESS WHAT
  local d got
  d=$(mktemp -d "$tmp/nforged.XXXX"); chmod 0777 "$d"
  S "$py" "$tmp/nforger.py" "$2" "$3" "$d" >"$d/forger.log" 2>&1 &
  local fpid=$!
  got=$(C setpriv --reuid 4242 --regid 4242 --clear-groups "$py" "$tmp/nvictim.py" "$2" "$d" 2>&1 | tail -1) || true
  wait "$fpid" || true
  # The attack ran: the forger sent all five datagrams.
  if [ "$got" = "$1" ] && [ "$(cat "$d/forger.log")" = "sent 5" ]; then
    echo "ok:   $4: forged from the nested link as upstream $2 → dnsguard got $got ($(cat "$d/forger.log"))"
  else
    echo "FAIL: $4: forged from the nested link as upstream $2 → wanted $1, dnsguard got $got ($(tr '\n' ' ' <"$d/forger.log"))"
    failures=$((failures + 1))
  fi
}
for pair in 198.51.100.13,198.51.100.1 2001:db8:100::13,2001:db8:100::1; do
  # Controls: without the cage's table the forgery is what dnsguard reads;
  # and with the cage's ruleset minus its nested-link part too (the
  # established flow admits it), so the pass below is that part's doing.
  C nft delete table inet cagent 2>/dev/null || true
  nested_forged reply:forged "${pair%,*}" "${pair#*,}" "control: no cage ruleset"
  C "$helper" install --uid 4242 --listen-port 5353 --upstream 198.51.100.13:53 --upstream 2001:db8:100::13:53 \
    --onlink6 2001:db8:100::/64
  nested_forged reply:forged "${pair%,*}" "${pair#*,}" "control: cage ruleset without --nested"
  nested_install
  nested_forged reply:world:q "${pair%,*}" "${pair#*,}" "cage ruleset: the late real answer wins"
done
ip netns del "$sandbox"

# Re-install with a static CIDR: sets start empty, the CIDR is allowed.
C "$helper" install --uid 4242 --listen-port 5353 --cidr 198.51.100.11/32 --cidr 2001:db8:100::/120 --onlink6 2001:db8:100::/64
check ok root tcp 198.51.100.11 "$port"
check refused root tcp 198.51.100.10 "$port"
check ok root tcp 2001:db8:100::11 "$port"

if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all packet checks passed"
