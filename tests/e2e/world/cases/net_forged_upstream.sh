#!/usr/bin/env bash
# The agent must not be able to answer dnsguard's upstream queries itself by
# taking the upstream's own endpoint. On a user-defined network without
# dns_resolvers, dnsguard's upstream is Docker's embedded resolver,
# 127.0.0.11:53 — an address inside the cage. The attack: bind
# 127.0.0.11:53, send a datagram to each of dnsguard's sockets connected to
# it (conntrack would then map dnsguard's next query to the agent's socket),
# and answer `allowed.test A <the never-resolved web server>`. Run as the
# ordinary docker-group user, with the embedded resolver forwarding to the
# world's DNS (`docker run --dns`), so the positive control — the real
# answer, and the server behind it — is checked in the very same cage.
# (The attack through the resolver's NAT port: net_user_network.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
# The user's built-in default has no dns_resolvers: the cage keeps the
# resolver Docker gave it (127.0.0.11).
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

out=$(user_cage "$ws" --arg="--dns=$DNS4" -d allowed.test -- "
  python3 -u /workspace/attack.py > /workspace/attack.log 2>&1 &
  i=0; while ! grep -q '^bind=' /workspace/attack.log && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i+1)); done
  echo lookup: \$(getent ahostsv4 allowed.test | head -n1)
  echo body: \$(curl -s -m 3 http://allowed.test/)
  curl -s -m 3 -o /dev/null http://198.51.100.19/ && echo forged: reachable || echo forged: unreachable
  wait
  cat /workspace/attack.log")
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "the agent cannot bind Docker's resolver endpoint (low ports need a capability)" "$out" 'bind=PermissionError'
expect_match "control: the lookup in the same cage gets the real answer" "$out" 'lookup: 198\.51\.100\.10 '
expect_match "control: …and the real server answers" "$out" 'body: cagent-e2e web10'
expect_match "the never-resolved server stays unreachable" "$out" 'forged: unreachable'
((CAGE_RC == 0)) || cage_err
finish
