#!/usr/bin/env bash
# The secret relay against the real ruleset, the real dnsguard (its gate
# hands secret hosts' TLS to the relay) and the real cagent-relay, with a
# world of HTTPS/HTTP echo servers that log what arrives.
#
#   run.sh DNSGUARD NFT_TEST_HELPER CAGENT_RELAY FAKE_DNS
#
#   198.51.100.20  s.relay.test  the secret's host (HTTPS + HTTP)
#   198.51.100.21  o.relay.test  another allowed site, no secret (HTTPS + HTTP)
#   198.51.100.22  w.relay.test  a secret's host whose certificate names another site
# dnsguard uid 4242, the agent 4343, the relay 4545 (no capabilities).
set -uo pipefail
dnsguard=${1:?usage: run.sh DNSGUARD NFT_TEST_HELPER CAGENT_RELAY FAKE_DNS}
helper=${2:?usage}
relay=${3:?usage}
fake_dns=${4:?usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip() { echo "skipped: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, nftables, setpriv)"
for tool in ip python3 curl openssl setpriv nft sha256sum; do
  command -v "$tool" >/dev/null || skip "missing tool: $tool"
done
py=/usr/bin/python3
secret_value="sk-REAL-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
placeholder="cagent-secret-api-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

id=$$
cage=crel-c-$id world=crel-w-$id
tmp=$(mktemp -d /tmp/cagent-relay.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in "$cage" "$world"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "/etc/netns/$cage" "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
wait_file() {  # FILE [PATTERN] — poll, bounded (10 s)
  for _ in $(seq 200); do [[ -s $1 ]] && grep -q -- "${2:-.}" "$1" && return 0; sleep 0.05; done
  echo "not ok - $1 did not appear"; exit 1
}

ip netns add "$world" && ip netns add "$cage" || skip "cannot create network namespaces"
C() { ip netns exec "$cage" "$@"; }
W() { ip netns exec "$world" "$@"; }
ip link add "rc$id" netns "$cage" type veth peer name "rw$id" netns "$world"
C ip link set lo up && W ip link set lo up
C ip addr add 192.0.2.2/24 dev "rc$id"
W ip addr add 192.0.2.53/24 dev "rw$id"
for a in 20 21 22; do W ip addr add "198.51.100.$a/24" dev "rw$id"; done
C ip link set "rc$id" up && W ip link set "rw$id" up
C ip route add 198.51.100.0/24 dev "rc$id"

# The world's CA, and certificates: s and o for themselves, w's for another name.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=cagent relay test world CA" \
  -keyout "$tmp/ca.key" -out "$tmp/world-ca.pem" >/dev/null 2>&1 || { echo "not ok - openssl CA"; exit 1; }
for site in s o w; do
  name=$site.relay.test
  [[ $site == w ]] && name=x.elsewhere.test
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$tmp/$site.key" -out "$tmp/$site.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:%s\n' "$name" >"$tmp/$site.cnf"
  openssl x509 -req -in "$tmp/$site.csr" -CA "$tmp/world-ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
    -extfile "$tmp/$site.cnf" -out "$tmp/$site.pem" >/dev/null 2>&1 || { echo "not ok - openssl $site"; exit 1; }
done
chmod 0644 "$tmp"/*

cat >"$tmp/zone.json" <<'JSON'
{"names": {
  "s.relay.test": {"ttl": 300, "A": ["198.51.100.20"]},
  "o.relay.test": {"ttl": 300, "A": ["198.51.100.21"]},
  "w.relay.test": {"ttl": 300, "A": ["198.51.100.22"]}}}
JSON
W "$py" "$fake_dns" --listen 192.0.2.53:53 --zone "$tmp/zone.json" --ready "$tmp/dns.ready" >"$tmp/dns.log" 2>&1 &
pids+=($!)
W "$py" "$here/../../tools/echo_server.py" --site "198.51.100.20,$tmp/s.pem,$tmp/s.key" --site "198.51.100.21,$tmp/o.pem,$tmp/o.key" \
  --site "198.51.100.22,$tmp/w.pem,$tmp/w.key" --http 198.51.100.20 --http 198.51.100.21 \
  --log "$tmp/world.log" --ready "$tmp/web.ready" >"$tmp/web.err" 2>&1 &
pids+=($!)
wait_file "$tmp/dns.ready"
wait_file "$tmp/web.ready"

install -m 0755 "$dnsguard" "$tmp/dnsguard"
install -m 0755 "$relay" "$tmp/cagent-relay"
C "$helper" install --uid 4242 --listen-port 53 --upstream 192.0.2.53:53 \
  --gate-port 999 --gated 443 --gated 80 --relay 998,4545 || { echo "not ok - ruleset install"; exit 1; }
cat >"$tmp/policy.toml" <<TOML
listen = ["127.0.0.1:53"]
upstreams = ["192.0.2.53:53"]
allow = ["*.relay.test"]
[gate]
enabled = true
port = 999
tls_ports = [443]
http_ports = [80]
[relay]
hosts = ["s.relay.test", "w.relay.test"]
port = 998
uid = 4545
[log]
file = "$tmp/log/dnsguard.log"
level = "info"
TOML
chmod 0644 "$tmp/policy.toml"
mkdir -m 0755 "$tmp/log" && chown 4242 "$tmp/log"
C setpriv --reuid 4242 --regid 4242 --clear-groups --inh-caps +net_admin,+net_bind_service \
  --ambient-caps +net_admin,+net_bind_service "$tmp/dnsguard" --config "$tmp/policy.toml" 2>>"$tmp/dnsguard.err" &
pids+=($!)
wait_file "$tmp/log/dnsguard.log" "dnsguard ready"
mkdir -p "/etc/netns/$cage"
echo "nameserver 127.0.0.1" >"/etc/netns/$cage/resolv.conf"

# The relay, as cage-init starts it: the secrets on its stdin, read once.
printf '{"version":1,"secrets":[{"name":"api","placeholder":"%s","value":"%s","hosts":["s.relay.test","w.relay.test"]}]}\n' \
  "$placeholder" "$secret_value" >"$tmp/secrets.json"
chmod 0600 "$tmp/secrets.json"
relay_pid=$(C "$py" "$here/start_relay.py" 998 4545 "$tmp/cagent-relay" "$tmp/secrets.json" "$tmp/log/relay.jsonl" \
  "$tmp/session-ca.pem" "$tmp/world-ca.pem") || { echo "not ok - relay start"; exit 1; }
pids+=("$relay_pid")
wait_file "$tmp/session-ca.pem" "END CERTIFICATE"
rm -f "$tmp/secrets.json"
# What the agent trusts: the world's CA and the session CA (as cage-init merges them).
cat "$tmp/world-ca.pem" "$tmp/session-ca.pem" >"$tmp/bundle.pem"
chmod 0644 "$tmp/bundle.pem" "$tmp/session-ca.pem"

mkdir -m 0700 "$tmp/agent" && chown 4343:4343 "$tmp/agent"  # what the agent writes
A() { C setpriv --reuid 4343 --regid 4343 --clear-groups "$@"; }
[[ -n ${RELAY_TEST_PAUSE:-} ]] && { echo "paused: cage $cage tmp $tmp"; sleep "$RELAY_TEST_PAUSE"; }
get() { A curl -sS --max-time 10 --cacert "$tmp/bundle.pem" "$@" 2>&1; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
arrived() { grep -c -- "$1" "$tmp/world.log"; }

# 1. The placeholder becomes the value at the secret's host.
out=$(get -H "Authorization: Bearer $placeholder" https://s.relay.test/echo)
[[ $out == *"\"authorization_sha256\": \"$(sha "Bearer $secret_value")\""* ]] \
  && ok "the secret's host receives the real value for the placeholder" || bad "s.relay.test got: $out"
[[ $out != *"$secret_value"* ]] && ok "…and the agent's answer does not carry it" || bad "the value came back to the agent"
# Basic credentials (git over HTTPS), decoded, replaced, encoded again.
out=$(get -u "x-access-token:$placeholder" https://s.relay.test/echo)
[[ $out == *"\"authorization_sha256\": \"$(sha "Basic $(printf 'x-access-token:%s' "$secret_value" | base64 -w0)")\""* ]] \
  && ok "Basic credentials carry the real value to the secret's host" || bad "Basic: $out"
# Keep-alive: three requests on one connection, every one rewritten.
out=$(get -H "x-api-key: $placeholder" https://s.relay.test/echo https://s.relay.test/echo https://s.relay.test/echo)
[[ $(grep -o "\"x_api_key_sha256\": \"$(sha "$secret_value")\"" <<<"$out" | wc -l) == 3 ]] \
  && ok "three requests on one kept-alive connection, each rewritten" || bad "keep-alive: $out"

# 2. Nowhere else: another allowed site gets the placeholder as it is.
before=$(arrived "$secret_value")
# (--http1.1: the world's servers offer h2 by ALPN, which they do not speak;
# through the relay they never see it offered.)
out=$(get --http1.1 -H "Authorization: Bearer $placeholder" https://o.relay.test/echo)
[[ $out == *"\"authorization_sha256\": \"$(sha "Bearer $placeholder")\""* ]] \
  && ok "another allowed site receives the placeholder, worthless (and is reached: control)" || bad "o.relay.test got: $out"
# On the secret host's connection, a request naming another Host: refused, recorded.
code=$(A curl -s --max-time 10 --cacert "$tmp/bundle.pem" -o "$tmp/agent/refused.out" -w '%{http_code}' \
  -H "Host: o.relay.test" -H "Authorization: Bearer $placeholder" https://s.relay.test/echo)
[[ $code == 403 ]] && grep -q "secret api sent to o.relay.test" "$tmp/agent/refused.out" \
  && ok "a request for another Host on the secret host's connection is refused: 403 ($(tr -d '\n' <"$tmp/agent/refused.out"))" \
  || bad "Host o.relay.test on s.relay.test's connection: $code $(cat "$tmp/agent/refused.out")"
grep -q '"secret":"api","sent_to":"o.relay.test"' "$tmp/log/relay.jsonl" \
  && ok "…and recorded in relay.jsonl" || bad "relay.jsonl: $(cat "$tmp/log/relay.jsonl")"
[[ $(arrived "$secret_value") == "$before" ]] && ok "the real value never reached any site but its own" \
  || bad "the real value reached a site it does not belong to"

# 3. Plain HTTP to the secret's host is refused at the gate; other sites' HTTP works.
A curl -sS --max-time 10 -o /dev/null -H "Authorization: Bearer $placeholder" http://s.relay.test/echo 2>/dev/null \
  && bad "HTTP to the secret's host went through" || ok "plain HTTP to the secret's host is refused"
out=$(A curl -sS --max-time 10 http://o.relay.test/echo 2>&1)
[[ $out == *'"site": "198.51.100.21"'* ]] && ok "…while plain HTTP to another site works (control)" || bad "HTTP o.relay.test: $out"

# 4. The real server is verified: a certificate for another name is refused.
code=$(A curl -s --max-time 10 --cacert "$tmp/bundle.pem" -o "$tmp/agent/wrong.out" -w '%{http_code}' \
  -H "Authorization: Bearer $placeholder" https://w.relay.test/echo)
[[ $code == 502 ]] && grep -q "certificate is not trusted" "$tmp/agent/wrong.out" \
  && ok "a server certificate for the wrong name is refused: 502 ($(tr -d '\n' <"$tmp/agent/wrong.out"))" \
  || bad "w.relay.test: $code $(cat "$tmp/agent/wrong.out")"
[[ $(grep -c '"site": "198.51.100.22"' "$tmp/world.log") == 0 ]] && ok "…and no request reached it" || bad "a request reached w"

# 5. h2 asked, HTTP/1.1 given; the session CA vouches for nothing else.
v=$(A curl -s --max-time 10 --cacert "$tmp/bundle.pem" --http2 -o /dev/null -w '%{http_version}' \
  -H "x-api-key: $placeholder" https://s.relay.test/echo)
[[ $v == 1.1 ]] && ok "a client asking for h2 gets HTTP/1.1" || bad "http_version $v"
A curl -s --max-time 10 --http1.1 --cacert "$tmp/session-ca.pem" -o /dev/null https://o.relay.test/echo \
  && bad "the session CA was accepted for o.relay.test" || ok "o.relay.test is not terminated: the session CA alone does not verify it"

# 6. Streaming: the first event arrives while the server still holds the second.
cat >"$tmp/stream.py" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("s.relay.test", 443), timeout=10), server_hostname="s.relay.test")
t = time.monotonic()
s.sendall(b"GET /stream HTTP/1.1\r\nHost: s.relay.test\r\nAccept: text/event-stream\r\n\r\n")
got = b""
while b"data: 1" not in got:
    piece = s.recv(4096)
    if not piece: break
    got += piece
first = time.monotonic() - t
while b"data: 2" not in got:
    piece = s.recv(4096)
    if not piece: break
    got += piece
print(f"first={first:.2f} second={time.monotonic() - t:.2f}")
PY
out=$(A "$py" "$tmp/stream.py" "$tmp/bundle.pem" 2>&1)
first=${out#first=}; first=${first%% *}; second=${out##*second=}
if [[ $out == first=* ]] && awk -v f="$first" -v s="$second" 'BEGIN { exit !(f < 2.0 && s >= 2.9) }'; then
  ok "server-sent events arrive as sent ($out; the server waits 3 s between them)"
else
  bad "streaming: $out"
fi

# 7. A 20 MB upload arrives intact (Content-Length, then chunked).
head -c 20000000 /dev/urandom >"$tmp/upload.bin"; chmod 0644 "$tmp/upload.bin"
want=$(sha256sum <"$tmp/upload.bin" | cut -d' ' -f1)
out=$(get -X PUT --data-binary @"$tmp/upload.bin" -H "x-api-key: $placeholder" https://s.relay.test/upload)
[[ $out == *"\"body_len\": 20000000, \"body_sha256\": \"$want\""* ]] \
  && ok "a 20 MB upload (Content-Length) arrives intact" || bad "upload: $out"
out=$(get -X PUT -H "Transfer-Encoding: chunked" -H "Expect: 100-continue" --data-binary @"$tmp/upload.bin" \
  -H "x-api-key: $placeholder" https://s.relay.test/upload)
[[ $out == *"\"body_len\": 20000000, \"body_sha256\": \"$want\""* ]] \
  && ok "a 20 MB chunked upload with Expect: 100-continue arrives intact" || bad "chunked upload: $out"

# 8. Nobody but the gate may hand the relay a connection.
out=$(A "$py" - <<'PY'
import socket
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", 998)); print("connected")
except OSError as e:
    print("refused", e.__class__.__name__)
PY
)
[[ $out == refused* ]] && ok "the agent cannot connect to the relay's port ($out; the gate's hand-off works: check 1)" \
  || bad "the agent reached the relay's port: $out"
# The relay holds no capability and is not dumpable.
caps=$(grep CapEff "/proc/$relay_pid/status" | awk '{print $2}')
[[ $caps == 0000000000000000 ]] && ok "the relay holds no capability" || bad "relay CapEff $caps"
[[ $(stat -c %u "/proc/$relay_pid/environ") == 0 ]] && ok "the relay is not dumpable (its /proc/PID/environ belongs to root)" \
  || bad "relay /proc/PID/environ owner $(stat -c %u "/proc/$relay_pid/environ")"
# The value is nowhere in the cage's files the test wrote but the world's log.
if grep -rqs -- "$secret_value" "$tmp/log" "$tmp/bundle.pem" "$tmp/session-ca.pem"; then
  bad "the value is in the cage's log directory"
else
  ok "the value is in none of the cage's logs (decisions, dnsguard's log, relay.jsonl)"
fi

echo "# relay record: $(wc -l <"$tmp/log/relay.jsonl") line(s)"
(( fails == 0 )) || { echo "# dnsguard stderr:"; tail -n 20 "$tmp/dnsguard.err"; tail -n 20 "$tmp/log/dnsguard.log"; }
exit $(( fails > 0 ))
