#!/usr/bin/env bash
# The connection gate in a real cage: TLS and HTTP to an allowed address pass only for a
# name that resolved to it through dnsguard. 198.51.100.12 serves a.wild.test
# and extra.test; only a.wild.test is allowed, so extra.test — same address,
# already in the set — must be refused, as must a Host or SNI that did not
# resolve there, QUIC, and the gate's own port used directly. The exit
# summary names the refusals. Then connection_gate: false from a trusted
# config turns it off (address-level only, as before).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(new_workspace a.wild.test secure.test)
cp "$TLS_CA" "$ws/ca.pem"
chown_workspace "$ws"
out=$(cage "$ws" '
  echo "allowed=$(curl -sS -m 10 http://a.wild.test/)"
  curl -sS -m 10 -o /dev/null --resolve extra.test:80:198.51.100.12 http://extra.test/; echo "neighbour-http=$?"
  curl -sS -m 10 -o /dev/null -H "Host: extra.test" http://a.wild.test/; echo "host-mismatch=$?"
  echo "https=$(curl -sS -m 10 --cacert /workspace/ca.pem https://secure.test/)"
  curl -sS -m 10 -o /dev/null --cacert /workspace/ca.pem --resolve a.wild.test:443:198.51.100.20 https://a.wild.test/; echo "sni-elsewhere=$?"
  python3 -c "
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b\"q\" * 1200, (\"198.51.100.20\", 443)); print(\"quic=sent\")
except OSError as e:
    print(\"quic=\" + e.__class__.__name__)
try:
    u.sendto(b\"q\" * 1200, (\"198.51.100.20\", 4443)); print(\"udp-other=sent\")
except OSError as e:
    print(\"udp-other=\" + e.__class__.__name__)
s = socket.socket()
s.settimeout(5)
try:
    s.connect((\"127.0.0.1\", 999)); s.sendall(b\"GET / HTTP/1.1\\r\\nHost: a.wild.test\\r\\n\\r\\n\"); print(\"gate-direct=\" + (\"data\" if s.recv(100) else \"closed\"))
except OSError as e:
    print(\"gate-direct=\" + e.__class__.__name__)
"')
expect_eq "cagent exits 0" "$CAGE_RC" 0
expect_match "an allowed name works over HTTP through the gate" "$out" 'allowed=cagent-e2e web12'
expect_match "another site on the same allowed address is refused" "$out" 'neighbour-http=(52|56|7)'
expect_match "a Host that did not resolve there is refused" "$out" 'host-mismatch=(52|56|7)'
expect_match "an allowed name works over HTTPS through the gate" "$out" 'https=cagent-e2e web20'
expect_match "an allowed SNI on an address it did not resolve to is refused" "$out" 'sni-elsewhere=(35|56|7)'
expect_match "control: the same datagram to the same allowed address on port 4443 is sent" "$out" 'udp-other=sent'
expect_match "QUIC (UDP 443) is refused at once" "$out" 'quic=PermissionError'
expect_match "the gate's port used directly reaches nothing" "$out" 'gate-direct=(ConnectionResetError|closed)'
expect_match "the exit summary names the refused site" "$(cage_err)" 'connection gate refused [0-9]+ connections?: .*extra\.test'

# Off, from the (trusted) global config: once a.wild.test put its address in
# the set, the neighbour is reachable again at address level — the residual
# risk the security model names for `connection_gate: false`.
printf 'connection_gate: false\n' >>"$E2E_HOME/.cagent/config.yaml"
E2E_EXIT_HOOKS+=("sed -i '/^connection_gate: false\$/d' '$E2E_HOME/.cagent/config.yaml'")
out=$(cage "$ws" 'getent hosts a.wild.test >/dev/null; curl -sS -m 10 --resolve extra.test:80:198.51.100.12 http://extra.test/ 2>&1')
expect_match "with connection_gate: false the gate is off" "$out" 'cagent-e2e web12'
sed -i '/^connection_gate: false$/d' "$E2E_HOME/.cagent/config.yaml"
((CAGE_RC == 0)) || cage_err
finish
