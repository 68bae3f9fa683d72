#!/usr/bin/env bash
# The connection gate against the real ruleset and the real dnsguard.
# A "cage" namespace (ruleset from nft-test-helper, dnsguard as
# uid 4242 with the gate on, clients as uid 4343) and a "world" namespace
# (fake DNS, and HTTPS + HTTP servers where several names share an address),
# joined by a veth pair; documentation addresses only, no route anywhere else.
#
#   run.sh DNSGUARD NFT_TEST_HELPER FAKE_DNS
#
#   198.51.100.10 / 2001:db8:100::10   a.gate.test (allowed) and b.other.test (not allowed)
#   198.51.100.11                      c.gate.test (allowed, another address)
#   198.51.100.12                      d.other.test (allowed at run time, then taken back)
#   198.51.100.13                      h.gate.test (allowed) and i.other.test (not allowed), on a
#                                      server that takes only P-256: an X25519 key share gets a
#                                      HelloRetryRequest
#   198.51.100.14                      j.gate.test (allowed), on a broken server that answers
#                                      every ClientHello with a HelloRetryRequest
#   198.51.100.15                      k.gate.test (allowed, TTL 2) and l.gate.test (allowed,
#                                      TTL 300): k's binding runs out while l keeps the address
#                                      in the set (restart section; ttl.min is 1 here)
set -uo pipefail
dnsguard=${1:?usage: run.sh DNSGUARD NFT_TEST_HELPER FAKE_DNS}
helper=${2:?usage}
fake_dns=${3:?usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, nftables, setpriv)"
for tool in ip python3 curl openssl setpriv nft sha256sum; do
  command -v "$tool" >/dev/null || skip "missing tool: $tool"
done
py=/usr/bin/python3

id=$$
cage=cgate-c-$id world=cgate-w-$id
# Everything the other uids run or read lives here (0755), never under the
# checkout, which may sit in a 0700 home.
tmp=$(mktemp -d /tmp/cagent-gate.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "/etc/netns/$cage"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
wait_file() {  # FILE — poll, bounded (10 s)
  for _ in $(seq 200); do [[ -s $1 ]] && return 0; sleep 0.05; done
  echo "not ok - $1 did not appear"; exit 1
}

ip netns add "$world" && ip netns add "$cage" || skip "cannot create network namespaces"
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
ip link add "gc$id" netns "$cage" type veth peer name "gw$id" netns "$world"
C ip link set lo up && W ip link set lo up
C ip addr add 192.0.2.2/24 dev "gc$id"
C ip addr add 2001:db8:100::2/64 dev "gc$id" nodad
W ip addr add 192.0.2.53/24 dev "gw$id"
for a in 10 11 12 13 14 15; do W ip addr add "198.51.100.$a/24" dev "gw$id"; done
W ip addr add 2001:db8:100::10/64 dev "gw$id" nodad
C ip link set "gc$id" up && W ip link set "gw$id" up
C ip route add 198.51.100.0/24 dev "gc$id"

# Certificates: one CA, one server certificate naming every site.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=cagent gate test CA" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1 || { echo "not ok - openssl CA"; exit 1; }
openssl req -newkey rsa:2048 -nodes -subj "/CN=a.gate.test" -keyout "$tmp/site.key" -out "$tmp/site.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:a.gate.test,DNS:b.other.test,DNS:c.gate.test,DNS:h.gate.test,DNS:i.other.test\n' >"$tmp/ext.cnf"
openssl x509 -req -in "$tmp/site.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
  -extfile "$tmp/ext.cnf" -out "$tmp/site.pem" >/dev/null 2>&1 || { echo "not ok - openssl site cert"; exit 1; }
chmod 0644 "$tmp"/*

cat >"$tmp/zone.json" <<'JSON'
{"names": {
  "a.gate.test":  {"ttl": 300, "A": ["198.51.100.10"], "AAAA": ["2001:db8:100::10"]},
  "b.other.test": {"ttl": 300, "A": ["198.51.100.10"]},
  "c.gate.test":  {"ttl": 300, "A": ["198.51.100.11"]},
  "d.other.test": {"ttl": 300, "A": ["198.51.100.12"]},
  "h.gate.test":  {"ttl": 300, "A": ["198.51.100.13"]},
  "i.other.test": {"ttl": 300, "A": ["198.51.100.13"]},
  "j.gate.test":  {"ttl": 300, "A": ["198.51.100.14"]},
  "k.gate.test":  {"ttl": 2, "A": ["198.51.100.15"]},
  "l.gate.test":  {"ttl": 300, "A": ["198.51.100.15"]}}}
JSON
W "$py" "$fake_dns" --listen 192.0.2.53:53 --zone "$tmp/zone.json" --ready "$tmp/dns.ready" >"$tmp/dns.log" 2>&1 &
pids+=($!)
W "$py" "$here/world_gate.py" --addr 198.51.100.10 --addr 198.51.100.11 --addr 198.51.100.12 --addr 198.51.100.15 --addr 2001:db8:100::10 \
  --retry-addr 198.51.100.13 --broken-retry-addr 198.51.100.14 --cert "$tmp/site.pem" --key "$tmp/site.key" --sni-log "$tmp/sni.log" \
  --ready "$tmp/web.ready" >"$tmp/web.log" 2>&1 &
pids+=($!)
wait_file "$tmp/dns.ready"
wait_file "$tmp/web.ready"

# The cage: ruleset with the gate on 999 for 443 and 80, dnsguard as 4242.
install -m 0755 "$dnsguard" "$tmp/dnsguard"
C "$helper" install --uid 4242 --listen-port 53 --upstream 192.0.2.53:53 --onlink6 2001:db8:100::/64 \
  --gate-port 999 --gated 443 --gated 80 || { echo "not ok - ruleset install"; exit 1; }
cat >"$tmp/policy.toml" <<TOML
listen = ["127.0.0.1:53", "[::1]:53"]
upstreams = ["192.0.2.53:53"]
allow = ["*.gate.test"]
[ttl]
min = 1
[gate]
enabled = true
port = 999
tls_ports = [443]
http_ports = [80]
[log]
file = "$tmp/log/dnsguard.log"
level = "info"
TOML
chmod 0644 "$tmp/policy.toml"
# As in the cage: the log directory is dnsguard's (it writes decisions.json there).
mkdir -m 0755 "$tmp/log" && chown 4242 "$tmp/log"
start_dnsguard() {  # as cage-init starts (and restarts) it
  local ready_before
  ready_before=$(grep -c "dnsguard ready" "$tmp/log/dnsguard.log" 2>/dev/null)
  C setpriv --reuid 4242 --regid 4242 --clear-groups --inh-caps +net_admin,+net_bind_service \
    --ambient-caps +net_admin,+net_bind_service "$tmp/dnsguard" --config "$tmp/policy.toml" 2>>"$tmp/dnsguard.err" &
  pids+=($!)
  for _ in $(seq 200); do
    (( $(grep -c "dnsguard ready" "$tmp/log/dnsguard.log" 2>/dev/null) > ${ready_before:-0} )) && return 0
    sleep 0.05
  done
  echo "not ok - dnsguard did not start"; cat "$tmp/dnsguard.err" "$tmp/log/dnsguard.log"; exit 1
}
start_dnsguard
mkdir -p "/etc/netns/$cage"
echo "nameserver 127.0.0.1" >"/etc/netns/$cage/resolv.conf"

# The agent: uid 4343.
A() { C setpriv --reuid 4343 --regid 4343 --clear-groups "$@"; }
body() { A curl -sS -g --max-time 10 --cacert "$tmp/ca.pem" "$@" 2>&1; }
# curl: 35 = TLS handshake failed (reset during it), 56 = receive failure
# (reset), 52 = empty reply, 7 = could not connect.
refused() { A curl -sS -g --max-time 10 --cacert "$tmp/ca.pem" -o /dev/null "$@" 2>/dev/null; echo "rc=$?"; }

out=$(body https://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "HTTPS to an allowed name through the gate" || bad "HTTPS a.gate.test: $out"
out=$(body -6 https://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "HTTPS over IPv6 through the gate" || bad "HTTPS a.gate.test over IPv6: $out"
out=$(body http://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "HTTP with the right Host through the gate" || bad "HTTP a.gate.test: $out"

# Same address, a name that is not allowed (the CDN neighbour).
r=$(refused --resolve b.other.test:443:198.51.100.10 https://b.other.test/)
[[ $r != rc=0 ]] && ok "another tenant's SNI on an allowed address is refused ($r)" || bad "b.other.test reached through a.gate.test's address"
# Another *allowed* name, but it resolved elsewhere: not bound to this address.
body https://c.gate.test/ >/dev/null
r=$(refused --resolve c.gate.test:443:198.51.100.10 https://c.gate.test/)
[[ $r != rc=0 ]] && ok "an allowed name's SNI on an address it did not resolve to is refused ($r)" || bad "c.gate.test admitted on .10"
out=$(body https://c.gate.test/)
[[ $out == "site c.gate.test" ]] && ok "…while c.gate.test on its own address works" || bad "c.gate.test: $out"
# HTTP with a Host that is not allowed.
r=$(refused -H "Host: b.other.test" http://a.gate.test/)
[[ $r != rc=0 ]] && ok "HTTP Host of another site is refused ($r)" || bad "Host b.other.test admitted"
r=$(refused -x http://198.51.100.10:80 http://b.other.test/)
[[ $r != rc=0 ]] && ok "absolute-form (proxy) request is refused ($r)" || bad "absolute-form admitted"

# Raw cases from Python: no SNI, not TLS on 443, UDP 443, the gate directly.
cat >"$tmp/raw.py" <<'PY'
import socket, ssl, sys, time
def attempt(what, fn):
    t = time.monotonic()
    try:
        r = fn()
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError) as e:
        r = "reset"
    except ConnectionRefusedError:
        r = "refused"
    except PermissionError:
        r = "eperm"
    except socket.timeout:
        r = "timeout"
    except OSError as e:
        r = "error:" + e.__class__.__name__
    print(f"{what}={r} {time.monotonic() - t:.2f}s")
def no_sni():
    ctx = ssl.create_default_context(cafile=sys.argv[1]); ctx.check_hostname = False
    s = socket.create_connection(("198.51.100.10", 443), timeout=5)
    t = ctx.wrap_socket(s)  # no server_hostname: no SNI
    return "handshake"
def not_tls():
    s = socket.create_connection(("198.51.100.10", 443), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a.gate.test\r\n\r\n")
    d = s.recv(100)
    return "data" if d else "closed"
def quic():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"\xc0" + b"\0" * 1199, ("198.51.100.10", 443))
    return "sent"
def udp_other():  # the control of quic(): the same datagram, another port
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"\xc0" + b"\0" * 1199, ("198.51.100.10", 4443))
    return "sent"
def gate_direct():
    s = socket.create_connection(("127.0.0.1", 999), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a.gate.test\r\n\r\n")
    d = s.recv(100)
    return "data" if d else "closed"
def tls(name):
    def handshake():
        ctx = ssl.create_default_context(cafile=sys.argv[1]); ctx.check_hostname = False
        s = socket.create_connection(("198.51.100.10", 443), timeout=5)
        ctx.wrap_socket(s, server_hostname=name)  # sent as given: Python keeps case and a trailing dot
        return "handshake"
    return handshake
def http(host):
    def request():
        s = socket.create_connection(("198.51.100.10", 80), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        d = s.recv(100)
        return "answered" if d.startswith(b"HTTP/1.1 200") else ("data" if d else "closed")
    return request
attempt("nosni", no_sni)
attempt("nottls", not_tls)
attempt("quic", quic)
attempt("udp_other", udp_other)
attempt("gate", gate_direct)
# Names whose bytes are not the canonical form the gate judges, each with
# its canonical control in the same run.
attempt("sni_canonical", tls("a.gate.test"))
attempt("sni_dot", tls("a.gate.test."))
attempt("sni_upper", tls("A.Gate.Test"))
attempt("host_canonical", http(b"a.gate.test"))
attempt("host_leading_ows", http(b" \ta.gate.test"))
attempt("host_dot", http(b"a.gate.test."))
attempt("host_tab", http(b"a.gate.test\t"))
attempt("host_space", http(b"a.gate.test "))
attempt("host_upper", http(b"A.Gate.Test"))
PY
chmod 0644 "$tmp/raw.py"
raw=$(A "$py" "$tmp/raw.py" "$tmp/ca.pem" 2>&1)
echo "$raw" | sed 's/^/   | /'
grep -q "^nosni=reset" <<<"$raw" && ok "a ClientHello without SNI is refused" || bad "no-SNI hello not refused"
grep -q "^nottls=reset" <<<"$raw" && ok "non-TLS bytes on 443 are refused" || bad "plain text on 443 not refused"
grep -q "^udp_other=sent " <<<"$raw" && ok "control: the same datagram to the same allowed address on port 4443 is sent" \
  || bad "control: UDP to the allowed address on another port: $(grep '^udp_other=' <<<"$raw")"
grep -Eq "^quic=(eperm|refused|error)" <<<"$raw" && ok "UDP 443 (QUIC) is refused at once" || bad "QUIC datagram sent"
grep -Eq "^gate=(reset|closed)" <<<"$raw" && ok "the gate's own listener reaches nothing when used directly" || bad "gate used directly"
expect() {  # CASE OUTCOME WHAT: one raw.py case
  grep -q "^$1=$2 " <<<"$raw" && ok "$3" || bad "$3: $(grep "^$1=" <<<"$raw")"
}
expect sni_canonical handshake "SNI a.gate.test (canonical) is admitted"
expect sni_dot reset "SNI with a trailing dot is refused"
expect sni_upper reset "SNI in upper case is refused"
expect host_canonical answered "Host a.gate.test (canonical) is admitted"
expect host_leading_ows answered "…also after leading white space (OWS)"
expect host_dot reset "Host with a trailing dot is refused"
expect host_tab reset "Host with a trailing TAB is refused"
expect host_space reset "Host with a trailing space is refused"
expect host_upper reset "Host in upper case is refused"
grep -q 'gate refused name=a.gate.test dst=198.51.100.10:443 reason="server name in upper case (a server may route' \
  "$tmp/log/dnsguard.log" && ok "the refusal names the site and says why" \
  || bad "upper-case refusal: $(grep 'gate refused' "$tmp/log/dnsguard.log" | tail -3)"

# A HelloRetryRequest (RFC 8446 4.1.4) makes the client send a second
# ClientHello, and the server takes the name from that one. On .13 (h.gate.test
# allowed, i.other.test not) the server takes only P-256, so a first key share
# of X25519 is answered with a retry request.
# Real clients through the retry: curl and openssl s_client, X25519 first.
out=$(body --curves X25519:P-256 https://h.gate.test/)
[[ $out == "site h.gate.test" ]] && ok "curl through a HelloRetryRequest (X25519, then P-256)" || bad "curl via HRR: $out"
s_out=$(A openssl s_client -connect h.gate.test:443 -servername h.gate.test -groups X25519:P-256 \
  -CAfile "$tmp/ca.pem" -verify_return_error </dev/null 2>&1)
grep -q "Verify return code: 0 (ok)" <<<"$s_out" && grep -q "prime256v1" <<<"$s_out" \
  && ok "openssl s_client through a HelloRetryRequest (handshake verified, P-256 taken)" \
  || bad "s_client via HRR: $(grep -E 'Verify|Temp Key|errno|error' <<<"$s_out" | head -5)"
# The same hand-made exchange, first with the same name twice (the control),
# then naming the other tenant in the second hello, waiting for the retry
# request or not (pipelined).
install -m 0644 "$here/hello_retry.py" "$tmp/hello_retry.py"
hrr() { A "$py" "$tmp/hello_retry.py" "$@" 2>&1; }
for mode in "" --pipelined; do
  out=$(hrr 198.51.100.13 h.gate.test h.gate.test $mode)
  [[ $out == $'first=hrr\nsecond=serverhello' ]] && ok "same name in both hellos ${mode:+($mode) }gets the ServerHello" \
    || bad "same name ${mode}: $out"
  out=$(hrr 198.51.100.13 h.gate.test i.other.test $mode)
  grep -Eq "^second=(reset|closed)" <<<"$out" && ok "another tenant's name in the second hello ${mode:+($mode) }is reset" \
    || bad "name switched after HRR ${mode}: $out"
done
# Encrypted Client Hello: a front end would serve the site named inside the
# encrypted hello, which the gate cannot read. The same first hello with an
# ECH extension is reset; without it (above) the server answered.
out=$(hrr 198.51.100.13 h.gate.test h.gate.test --ech)
grep -Eq "^first=(reset|closed)" <<<"$out" && ok "a ClientHello offering ECH is reset (the same without ECH is answered)" \
  || bad "ECH hello: $out"
grep -q 'gate refused name=h.gate.test dst=198.51.100.13:443 reason="Encrypted Client Hello offered' \
  "$tmp/log/dnsguard.log" && ok "…and logged with its reason" \
  || bad "no log line for the ECH refusal: $(grep 'gate refused' "$tmp/log/dnsguard.log" | tail -3)"
grep -q " i.other.test$" "$tmp/sni.log" && bad "the server was asked for i.other.test: $(sort "$tmp/sni.log" | uniq -c)" \
  || ok "the server never saw the other tenant's name"
grep -q 'gate refused name=i.other.test dst=198.51.100.13:443 reason="server name changed after HelloRetryRequest"' \
  "$tmp/log/dnsguard.log" && ok "the switch is logged as a refusal with its reason" \
  || bad "no log line for the switch: $(grep 'gate refused' "$tmp/log/dnsguard.log" | tail -3)"
# A second retry request (a broken server; RFC 8446 forbids it) would have
# the client send a third hello: refused before it can. The same client on
# the same name gets its first retry request through (the control).
A getent hosts j.gate.test >/dev/null  # resolve: binds j.gate.test to .14
out=$(hrr 198.51.100.14 j.gate.test j.gate.test)
[[ $out == $'first=hrr\nsecond=reset' ]] && ok "a second HelloRetryRequest is refused (the first went through)" \
  || bad "second retry request: $out"
grep -q 'gate refused name=j.gate.test dst=198.51.100.14:443 reason="second HelloRetryRequest' "$tmp/log/dnsguard.log" \
  && ok "…and logged with its reason" || bad "no log line: $(grep 'gate refused' "$tmp/log/dnsguard.log" | tail -2)"

# A large transfer both ways arrives intact (the splice relay).
n=$((64 * 1024 * 1024))
got=$(A curl -sS --max-time 60 --cacert "$tmp/ca.pem" "https://a.gate.test/big?n=$n" | sha256sum | cut -d' ' -f1)
want=$("$py" -c "import hashlib,sys; p=bytes(range(256))*256; h=hashlib.sha256(); n=$n
while n>0:
    c=p[:min(n,len(p))]; h.update(c); n-=len(c)
print(h.hexdigest())")
[[ $got == "$want" ]] && ok "64 MiB through the gate arrive intact" || bad "large transfer: sha256 $got != $want"
head -c 3000000 /dev/urandom >"$tmp/upload.bin"; chmod 0644 "$tmp/upload.bin"
got=$(A curl -sS --max-time 60 --cacert "$tmp/ca.pem" --data-binary "@$tmp/upload.bin" https://a.gate.test/echo | sha256sum | cut -d' ' -f1)
[[ $got == "$(sha256sum <"$tmp/upload.bin" | cut -d' ' -f1)" ]] && ok "3 MB uploaded and echoed intact" || bad "upload echo differs"
# Clients that reset their relay while the server is still sending: the
# gate's writes to them fail (EPIPE), which must not end dnsguard.
cat >"$tmp/reset.py" <<'PY'
import socket, struct
for _ in range(5):
    s = socket.create_connection(("198.51.100.10", 80), timeout=5)
    s.sendall(b"GET /big?n=67108864 HTTP/1.1\r\nHost: a.gate.test\r\n\r\n")
    s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("reset")
PY
chmod 0644 "$tmp/reset.py"
A "$py" "$tmp/reset.py" >/dev/null 2>&1
out=$(body https://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "dnsguard outlives clients that reset their relays mid-transfer" \
  || bad "after clients reset their relays: $out"

# Refusals are logged with name, destination and reason.
grep -q 'gate refused name=b.other.test dst=198.51.100.10:443' "$tmp/log/dnsguard.log" \
  && ok "refusals are logged with name and destination" || bad "no log line for b.other.test: $(grep gate "$tmp/log/dnsguard.log" | head -5)"
# ... and counted exactly in the decision record (rewritten within a second).
for _ in $(seq 60); do
  grep -q '"name":"b.other.test"' "$tmp/log/decisions.json" 2>/dev/null \
    && grep -q '"name":"i.other.test"' "$tmp/log/decisions.json" && break
  sleep 0.05
done
"$py" - "$tmp/log/decisions.json" <<'PY' && ok "the decision record counts the gate's refusals" || bad "decision record: $(cat "$tmp/log/decisions.json" 2>&1 | head -c 600)"
import json, sys
d = json.load(open(sys.argv[1]))
hits = [e for e in d["gate_refused"] if e["name"] == "b.other.test"]
assert hits and hits[0]["count"] >= 1 and hits[0]["reason"], hits
assert d["gate_refused_total"] >= sum(e["count"] for e in d["gate_refused"]) >= 1
switched = [e for e in d["gate_refused"]
            if e["name"] == "i.other.test" and e["reason"] == "server name changed after HelloRetryRequest"]
assert switched and switched[0]["count"] == 2, d["gate_refused"]
PY

# The allowed connections really went through the gate (and were counted).
# (What start_dnsguard leaves in pids is the subshell of C; the daemon is its child.)
for p in $(ip netns pids "$cage"); do
  [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$tmp/dnsguard" ]] && kill -USR1 "$p"
done
for _ in $(seq 100); do grep -q "gate_admitted=" "$tmp/log/dnsguard.log" && break; sleep 0.05; done
admitted=$(grep -o 'gate_admitted=[0-9]*' "$tmp/log/dnsguard.log" | tail -1 | cut -d= -f2)
(( ${admitted:-0} >= 6 )) && ok "the gate relayed the allowed connections (gate_admitted=$admitted)" \
  || bad "gate_admitted=${admitted:-none}: $(grep counters "$tmp/log/dnsguard.log" | tail -1)"
# curl, s_client and the five hand-made exchanges each had a retry request.
retried=$(grep -o 'gate_retried=[0-9]*' "$tmp/log/dnsguard.log" | tail -1 | cut -d= -f2)
(( ${retried:-0} == 7 )) && ok "the gate followed each HelloRetryRequest (gate_retried=$retried)" \
  || bad "gate_retried=${retried:-none}"

# A name allowed at run time and then taken back (cagent deny) keeps no
# connection open: the agent holds an HTTP keep-alive connection to it
# through the gate; after the deny its next request on that connection is
# reset (both halves of the relay lose their conntrack entries, so their
# next packets are judged as new and refused), and a new one is refused too.
sock=$tmp/log/control/dnsguard.sock
# dnsguard --control NAME…: its reply (the control protocol's JSON line,
# dnsguard/contracts.hpp) as the host says it: "allowed NAME",
# "denied NAME; N addresses left the sets", or "refused: WHY".
control() {
  "$py" -c '
import json, sys
d = json.loads(sys.argv[1])
names = " ".join(d["names"])
if not d["ok"]: print("refused: " + d["error"])
elif d["op"] == "allow": print("allowed " + names)
elif d["op"] == "deny": print("denied %s; %s addresses left the sets" % (names, d["evicted"]))
else: print(names)' "$(C "$tmp/dnsguard" --control "$sock" "$@")" 2>&1
}
# As the agent: resolve NAME, hold a keep-alive connection to it on port 80
# (one request answered), write READY, wait for GO, then ask again on it and
# try a new connection.
cat >"$tmp/held.py" <<'PY'
import os, socket, sys, time
ready, go, name = sys.argv[1], sys.argv[2], sys.argv[3]
def request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n")
    data = b""
    while b"site " + name.encode() not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    return "answered"
addr = socket.getaddrinfo(name, 80, socket.AF_INET)[0][4]
s = socket.create_connection(addr, timeout=5)
print("first=" + request(s), flush=True)
open(ready, "w").close()
for _ in range(200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
try:
    print("after=" + request(s))
except (ConnectionResetError, BrokenPipeError):
    print("after=reset")
except socket.timeout:
    print("after=timeout")
try:
    socket.create_connection(addr, timeout=5)
    print("new=connected")
except ConnectionRefusedError:
    print("new=refused")
except OSError as e:
    print("new=" + e.__class__.__name__)
PY
chmod 0644 "$tmp/held.py"
mkdir -m 0777 "$tmp/held"  # the agent's uid writes its ready file here
wait_file_exists() { for _ in $(seq 200); do [[ -e $1 ]] && return 0; sleep 0.05; done; return 1; }
# NAME: allowed at run time, a connection held to it across its deny. Sets
# deny_reply (dnsguard's answer to the deny) and held (held.py's lines).
hold_across_deny() {
  local name=$1 reply pid
  reply=$(control allow "$name")
  [[ $reply == "allowed $name" ]] && ok "$name allowed at run time" || bad "allow $name: $reply"
  rm -f "$tmp/held/ready" "$tmp/held/go"
  A "$py" "$tmp/held.py" "$tmp/held/ready" "$tmp/held/go" "$name" >"$tmp/held.out" 2>&1 &
  pid=$!
  wait_file_exists "$tmp/held/ready" || bad "the connection to $name did not start: $(cat "$tmp/held.out")"
  deny_reply=$(control deny "$name")
  touch "$tmp/held/go"
  wait "$pid"
  held=$(cat "$tmp/held.out")
}

hold_across_deny d.other.test
[[ $deny_reply == "denied d.other.test; 1 addresses left the sets" ]] && ok "deny evicts d.other.test's address" \
  || bad "deny: $deny_reply"
grep -q "^first=answered" <<<"$held" && ok "the connection worked while the name was allowed" || bad "held: $held"
grep -Eq "^after=(reset|closed)" <<<"$held" && ok "the open connection is cut by the deny" || bad "after deny: $held"
grep -q "^new=refused" <<<"$held" && ok "a new connection to the address is refused" || bad "new after deny: $held"
grep -q "control: ended [1-9][0-9]* open connections" "$tmp/log/dnsguard.log" && ok "dnsguard says it ended them" \
  || bad "no 'ended' line: $(grep control: "$tmp/log/dnsguard.log" | tail -3)"

# The same name sharing its address with one that stays allowed: b.other.test
# (allowed at run time) is on a.gate.test's 198.51.100.10, which stays in the
# set — so no conntrack cut; the gate itself ends the relays it admitted for
# the name taken back, and a.gate.test keeps working.
hold_across_deny b.other.test
[[ $deny_reply == "denied b.other.test; 0 addresses left the sets" ]] && ok "deny keeps the shared address in the set" \
  || bad "deny b: $deny_reply"
grep -q "^first=answered" <<<"$held" && ok "b.other.test answered while allowed (through the gate)" || bad "held b: $held"
grep -Eq "^after=(reset|closed)" <<<"$held" && ok "its open relay is ended by the deny, the address staying allowed" \
  || bad "after deny of b: $held"
grep -q "gate: ended [1-9][0-9]* relays of names taken back" "$tmp/log/dnsguard.log" && ok "the gate says it ended them" \
  || bad "no gate 'ended' line: $(grep -E 'gate|control' "$tmp/log/dnsguard.log" | tail -3)"
out=$(body https://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "a.gate.test on the shared address still works" || bad "a.gate.test after deny of b: $out"

# A name taken back while the gate still follows its handshake (between the
# retry request and the second hello) is ended too. i.other.test, allowed at
# run time, shares .13 with h.gate.test; the same held exchange without the
# deny is the control.
held_retry() {  # DENY(yes|no): sets held (hello_retry.py's lines)
  local pid
  rm -f "$tmp/held/ready" "$tmp/held/go"
  A "$py" "$tmp/hello_retry.py" 198.51.100.13 i.other.test i.other.test --hold "$tmp/held/ready" "$tmp/held/go" \
    >"$tmp/held.out" 2>&1 &
  pid=$!
  wait_file_exists "$tmp/held/ready" || bad "the held exchange did not start: $(cat "$tmp/held.out")"
  [[ $1 == yes ]] && deny_reply=$(control deny i.other.test)
  touch "$tmp/held/go"
  wait "$pid"
  held=$(cat "$tmp/held.out")
}
reply=$(control allow i.other.test)
A getent hosts i.other.test >/dev/null  # binds i.other.test to .13
held_retry no
[[ $reply == "allowed i.other.test" && $held == $'first=hrr\nsecond=serverhello' ]] \
  && ok "a second hello sent after a pause gets its ServerHello (i.other.test allowed at run time)" \
  || bad "held exchange: $reply / $held"
held_retry yes
[[ $deny_reply == "denied i.other.test; 0 addresses left the sets" ]] && ok "i.other.test taken back mid-handshake" \
  || bad "deny i.other.test: $deny_reply"
grep -Eq "^second=(reset|closed)" <<<"$held" && ok "…and the connection whose handshake the gate was following is ended" \
  || bad "mid-handshake deny: $held"

# Before the crash: k.gate.test (TTL 2) resolved to .15, then l.gate.test
# (TTL 300) to the same address, which keeps it in the set. Once k's answer
# has run out the gate refuses k on .15 and still admits l there.
out=$(body http://k.gate.test/)
[[ $out == "site k.gate.test" ]] && ok "k.gate.test (TTL 2) answers while its answer holds" || bad "k.gate.test: $out"
A getent hosts l.gate.test >/dev/null
sleep 6
r=$(refused --resolve k.gate.test:80:198.51.100.15 http://k.gate.test/)
[[ $r != rc=0 ]] && ok "k.gate.test on .15 is refused once its answer ran out ($r)" || bad "k.gate.test after its TTL: $r"
out=$(body --resolve l.gate.test:80:198.51.100.15 http://l.gate.test/)
[[ $out == "site l.gate.test" ]] && ok "l.gate.test on the same address is still admitted" || bad "l.gate.test: $out"

# If the gate cannot run, the gated ports are refused (fail closed), at once:
# the address is still in the set, the redirect lands on a closed port.
dnsguard_running() {
  for p in $(ip netns pids "$cage"); do
    [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$tmp/dnsguard" ]] && return 0
  done
  return 1
}
for p in $(ip netns pids "$cage"); do
  [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$tmp/dnsguard" ]] && kill -KILL "$p"
done
for _ in $(seq 100); do dnsguard_running || break; sleep 0.05; done
start=$(date +%s%N)
r=$(refused --resolve a.gate.test:443:198.51.100.10 https://a.gate.test/)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[[ $r == rc=7 ]] && (( ms < 2000 )) && ok "with dnsguard gone, the gated port is refused at once ($r, ${ms} ms)" \
  || bad "with dnsguard gone: $r after ${ms} ms"

# Restarted (as cage-init restarts it), dnsguard binds again what the
# journal says still holds: l.gate.test on .15 and a.gate.test on .10 are
# admitted with no new lookup; k.gate.test, whose binding had run out before
# the crash, stays refused although l keeps .15 in the set for minutes.
start_dnsguard
grep -q "restarted in this session" "$tmp/log/dnsguard.log" && ok "the new dnsguard knows it is a restart" \
  || bad "no restart line: $(tail -3 "$tmp/log/dnsguard.log")"
out=$(body --resolve l.gate.test:80:198.51.100.15 http://l.gate.test/)
[[ $out == "site l.gate.test" ]] && ok "after the restart l.gate.test on .15 is admitted without a lookup" \
  || bad "l.gate.test after restart: $out"
out=$(body --resolve a.gate.test:443:198.51.100.10 https://a.gate.test/)
[[ $out == "site a.gate.test" ]] && ok "after the restart a.gate.test on .10 is admitted without a lookup" \
  || bad "a.gate.test after restart: $out"
r=$(refused --resolve k.gate.test:80:198.51.100.15 http://k.gate.test/)
[[ $r != rc=0 ]] && ok "after the restart k.gate.test stays refused: its binding had run out ($r)" \
  || bad "k.gate.test came back with the restart: $r"
out=$(body http://k.gate.test/)
[[ $out == "site k.gate.test" ]] && ok "a new lookup of k.gate.test binds it again" || bad "k.gate.test looked up again: $out"

echo "gate netns test: $fails failed"
exit $(( fails == 0 ? 0 : 1 ))
