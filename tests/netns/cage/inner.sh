#!/usr/bin/env bash
# Runs as root inside the cage network namespace and a private mount
# namespace (run.sh starts it with `ip netns exec … unshare -m`). /etc is
# replaced by a private copy, so the temporary users, the uid remap, the CA
# bundle and resolv.conf never touch the host's files.
# Prints TAP-ish "ok"/"not ok" lines; exit status = number of failures.
set -u
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

mount --make-rprivate /
cp -a /etc "$CAGE_TMP/etc"
mount --bind "$CAGE_TMP/etc" /etc
agent=cga$CAGE_ID dg=cgd$CAGE_ID
useradd -l -M -d "$CAGE_TMP/home" -s /bin/bash "$agent"
useradd -l -r -M -d /nonexistent -s /usr/sbin/nologin "$dg"
install -d -o "$agent" -g "$agent" -m 0755 "$CAGE_TMP/home"
id -u "$dg" > "$CAGE_TMP/dnsguard.uid"
id -g "$dg" > "$CAGE_TMP/dnsguard.gid"
install -d -o "$WANT_UID" -g "$WANT_UID" -m 0755 "$CAGE_TMP/ws"
export CAGE_WS=$CAGE_TMP/ws
common=(--user "$agent" --dnsguard-user "$dg" --dnsguard "$DNSGUARD" --workspace "$CAGE_WS"
        --runtime-dir "$CAGE_TMP/run")
reset_resolv() { printf 'nameserver 192.0.2.53\n' > /etc/resolv.conf; }

# 1. Invalid policies: non-zero exit, a one-line reason naming the step, and
#    the command never runs.
for case in bad-key:check-policy syntax:read-policy; do
  policy=${case%%:*} step=${case#*:}
  reset_resolv
  "$CAGE_INIT" --policy "$CAGE_TMP/policy-$policy.toml" "${common[@]}" -- touch "$CAGE_WS/ran-$policy" \
    2> "$CAGE_TMP/err-$policy"; rc=$?
  [[ $rc -ne 0 ]] && ok "invalid policy ($policy): cage-init exits $rc" || bad "invalid policy ($policy) exits non-zero"
  [[ ! -e $CAGE_WS/ran-$policy ]] && ok "invalid policy ($policy): command not run" || bad "invalid policy ($policy): command ran"
  grep -q "step $step" "$CAGE_TMP/err-$policy" && ok "invalid policy ($policy): reason names step $step" \
    || bad "invalid policy ($policy): reason names step $step: $(cat "$CAGE_TMP/err-$policy")"
done

# 2. The main run: agent.sh asserts from the inside; run.sh kills dnsguard
#    when agent.sh asks. Docker opens low ports to every uid in a container;
#    do the same here, so the test shows cage-init closing them again.
reset_resolv
sysctl -qw net.ipv4.ip_unprivileged_port_start=0
touch "$CAGE_TMP/main-started"
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- bash "$CAGE_STAGE/agent.sh" 2> "$CAGE_TMP/err-main"; rc=$?
cat "$CAGE_TMP/err-main" >&2
[[ $rc == 0 ]] && ok "agent checks all passed" || { bad "agent checks: cage-init exited $rc"; nft list table inet cagent | sed 's/^/   | /'; }
grep -q "dnsguard .*DNS is unavailable" "$CAGE_TMP/err-main" && ok "dnsguard's death was logged" || bad "dnsguard's death was logged"
nft list table inet cagent > /dev/null 2>&1 && ok "ruleset stays after dnsguard died" || bad "ruleset stays after dnsguard died"
[[ $(stat -c %u "$CAGE_TMP/log") == "$WANT_UID" ]] && ok "log directory handed back to the workspace owner at exit" \
  || bad "log directory handed back to the workspace owner (owner $(stat -c %u "$CAGE_TMP/log"))"

# 2b. What the command leaves running in the background (setsid, so it is
#     not even in its process group) is ended before cage-init returns and
#     hands the log directory back: nothing of the agent's outlives it.
reset_resolv
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- \
  sh -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$CAGE_WS/leftover.pid"' 2>/dev/null; rc=$?
left=$(cat "$CAGE_WS/leftover.pid" 2>/dev/null)
[[ $rc == 0 && -n $left ]] && ok "the command started a background process ($left)" || bad "background start: rc $rc"
if [[ -n $left ]] && kill -0 "$left" 2>/dev/null; then
  bad "a process the command left behind outlived cage-init"; kill -KILL "$left" 2>/dev/null
else
  ok "a process the command left behind was ended with cage-init"
fi
[[ $(stat -c %u "$CAGE_TMP/log") == "$WANT_UID" ]] && ok "…and the log directory was still handed back" \
  || bad "log directory not handed back after ending leftovers"

# 2c. What a leftover does until its very end is in the final record:
#     in the background, a loop connects to a never-resolved address (the
#     firewall refuses each at once and counts it) and notes every refusal
#     it sees. cage-init ends it before dnsguard writes its last record, so
#     the record holds each one (and at most the one it was killed during).
reset_resolv
rm -f "$CAGE_TMP/log/decisions.json" "$CAGE_TMP/log/"*journal* "$CAGE_WS/refusals"  # a fresh session's record
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- sh -c '
  setsid /usr/bin/python3 -c "
import socket, sys
out = open(sys.argv[1], \"a\", buffering=1)
while True:
    try:
        socket.create_connection((\"192.0.2.81\", 9), timeout=2).close()
    except ConnectionRefusedError:
        out.write(\"refused\n\")
" "$CAGE_WS/refusals" </dev/null >/dev/null 2>&1 &
  sleep 1' 2>/dev/null; rc=$?
seen=$(wc -l < "$CAGE_WS/refusals" 2>/dev/null || echo 0)
counted=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sum(e["count"] for e in d.get("firewall_refused", []) if e["dst"] == "192.0.2.81:9" and e["proto"] == "tcp"))' \
  "$CAGE_TMP/log/decisions.json" 2>/dev/null || echo none)
(( rc == 0 && seen >= 10 )) && ok "control: the leftover's connections were refused ($seen times)" \
  || bad "the leftover saw $seen refusals (rc $rc)"
[[ $counted =~ ^[0-9]+$ ]] && (( counted >= seen && counted <= seen + 1 )) \
  && ok "the final record counts every refusal the leftover saw ($counted for $seen)" \
  || bad "the final record counts $counted refusals of 192.0.2.81:9, the leftover saw $seen"

# 3. Exit status and signals pass through.
reset_resolv
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- sh -c 'exit 7' 2>/dev/null; rc=$?
[[ $rc == 7 ]] && ok "command's exit status is cage-init's" || bad "exit status passthrough: got $rc"
reset_resolv
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- sh -c 'kill -TERM $$' 2>/dev/null; rc=$?
[[ $rc == 143 ]] && ok "death by signal maps to 128+N" || bad "signal status: got $rc"
reset_resolv
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" -- sh -c 'trap "exit 42" TERM; touch "$CAGE_WS/sleeping"; while :; do sleep 0.1; done' 2>/dev/null &
ci=$!
for _ in $(seq 1 100); do [[ -e $CAGE_WS/sleeping ]] && break; sleep 0.1; done
kill -TERM $ci; wait $ci; rc=$?
[[ $rc == 42 ]] && ok "SIGTERM to cage-init is forwarded to the command" || bad "signal forwarding: got $rc"

# 4. No upstreams in the policy: the container's original resolvers are used.
reset_resolv
out=$("$CAGE_INIT" --policy "$CAGE_TMP/policy-no-upstreams.toml" "${common[@]}" -- getent ahostsv4 allowed.test 2>&1); rc=$?
[[ $rc == 0 && $out == *192.0.2.80* ]] && ok "without upstreams, resolv.conf's nameserver is used" \
  || bad "without upstreams: rc $rc: $out"
grep -q '192.0.2.53:53' "$CAGE_TMP/run/policy.toml" && ok "dnsguard got a policy copy naming the original resolver" \
  || bad "policy copy names the original resolver"

# 5. --ca-bundle: merged into the system bundle, variables set, not writable.
reset_resolv
bundle=/etc/ssl/certs/ca-certificates.crt
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" --ca-bundle "$CAGE_TMP/extra-ca.pem" -- bash -c '
  fails=0
  for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT CARGO_HTTP_CAINFO; do
    [[ ${!v:-} == '"$bundle"' ]] || { echo "not ok - $v=${!v:-}"; fails=1; }
  done
  grep -q CAGENT-TEST-CA '"$bundle"' || { echo "not ok - extra CA not in the bundle"; fails=1; }
  (( $(grep -c "BEGIN CERTIFICATE" '"$bundle"') >= 2 )) || { echo "not ok - bundle lost the system CAs"; fails=1; }
  { echo junk >> '"$bundle"'; } 2>/dev/null && { echo "not ok - agent can write the bundle"; fails=1; }
  exit $fails' 2>/dev/null; rc=$?
[[ $rc == 0 ]] && ok "--ca-bundle: merged, readable, not writable, all seven variables set" || bad "--ca-bundle checks"

# 6. Nested Docker with a fake engine (no sysbox here): cage-init
#    starts it in the sandbox, the fake records from inside what root there
#    can and cannot do (fake-dockerd.sh), the agent reads that record and
#    checks the cage's side; here: the set entry, the query log, the end.
export CAGE_NS_NET=$(readlink /proc/self/ns/net) CAGE_NS_PID=$(readlink /proc/self/ns/pid)
export CAGE_NS_MNT=$(readlink /proc/self/ns/mnt) CAGE_NS_USER=$(readlink /proc/self/ns/user)
export CAGE_AGENT_UID=$WANT_UID   # the agent's uid after the remap: the sandbox's root outside
nested=(--nested-docker "$CAGE_STAGE/fake-dockerd" --nested-socket-dir "$CAGE_TMP/nested-sock"
        --nested-data-root "$CAGE_TMP/nested-data")
reset_resolv
sysctl -qw net.ipv4.ip_forward=0   # cage-init turns it on for the link
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" "${nested[@]}" -- bash -c '
  fails=0
  ok() { echo "ok - agent: $*"; }
  bad() { echo "not ok - agent: $*"; fails=$((fails + 1)); }
  sock=$CAGE_TMP/nested-sock
  [[ $DOCKER_HOST == "unix://$sock/docker.sock" ]] && ok "DOCKER_HOST names the engine socket" || bad "DOCKER_HOST=$DOCKER_HOST"
  for _ in $(seq 1 300); do [[ -e $sock/done ]] && break; sleep 0.1; done
  [[ -e $sock/done ]] && ok "the engine ran its checks" || bad "no done marker from the engine"
  cat "$sock/results" 2>/dev/null
  n=$(grep -c "^ok - sandbox" "$sock/results" 2>/dev/null); n=${n:-0}
  (( n >= 30 )) && ok "$n sandbox checks passed" || bad "only $n sandbox checks passed"
  grep -q "^not ok" "$sock/results" && bad "sandbox checks failed"
  [[ -e $sock/docker.sock ]] && ok "the agent reaches the socket directory" || bad "socket directory not readable"
  [[ -n $(ls -A "$CAGE_TMP/log") ]] && ok "the cage itself sees its log directory" || bad "cage log dir empty"
  [[ -e $CAGE_WS/from-sandbox ]] && ok "the sandbox wrote the workspace" || bad "no file from the sandbox"
  [[ $(stat -c %u:%g "$CAGE_WS/from-sandbox") == "$(id -u):$(id -g)" ]] \
    && ok "what the sandbox root writes is the agent'"'"'s (never root'"'"'s)" || bad "sandbox file owner $(stat -c %u:%g "$CAGE_WS/from-sandbox")"
  [[ $(stat -c %u "$CAGE_WS/as-1001") == 61001 ]] && ok "the sandbox'"'"'s user 1001 is 61001 outside (no one'"'"'s)" \
    || bad "sandbox uid 1001 is $(stat -c %u "$CAGE_WS/as-1001") outside"
  [[ $(stat -c %g "$CAGE_WS/as-disk") == 60006 ]] && ok "the sandbox'"'"'s group 6 (disk) is 60006 outside" \
    || bad "sandbox gid 6 is $(stat -c %g "$CAGE_WS/as-disk") outside"
  # The sandbox flushed *its* ruleset; the cage still refuses what it should
  # (curl exit 7 at once: the cage'"'"'s reset, not a timeout or a DNS error),
  # while an allowed name still works from the same agent.
  body=$(curl -s --max-time 5 "http://allowed.test:$HTTP_PORT/" 2>&1)
  [[ $body == "hello from the world" ]] && ok "control: HTTP to an allowed name works after the sandbox flush" \
    || bad "control: http://allowed.test: \"$body\""
  start=$(date +%s%N)
  curl -s --connect-timeout 5 -o /dev/null "http://192.0.2.81:$HTTP_PORT/" 2>/dev/null; rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  (( rc == 7 && ms < 2000 )) && ok "the cage still refuses an unresolved address (curl exit 7 after $ms ms)" \
    || bad "cage firewall after the sandbox flush: curl exit $rc after $ms ms (want 7, < 2000 ms)"
  exit $fails' 2> "$CAGE_TMP/err-nested" &
ci=$!
for _ in $(seq 1 300); do [[ -e $CAGE_TMP/nested-sock/done ]] && break; sleep 0.05; done
set4=$(nft list set inet cagent allow4 2>&1)
[[ $set4 == *192.0.2.83* ]] && ok "the sandbox's lookup put its address into the cage's allow4" || bad "allow4: $set4"
wait $ci; rc=$?
[[ $rc == 0 ]] && ok "nested engine checks passed" || { bad "nested engine checks: cage-init exited $rc"; cat "$CAGE_TMP/err-nested" >&2; }
# Control for 6c's "no link: dnsguard's copy leaves the link's address out".
grep -q "100.127.255.253" "$CAGE_TMP/run/policy.toml" && ok "with the link: dnsguard's copy names the link's address" \
  || bad "with the link: dnsguard's copy lacks 100.127.255.253: $(grep "^listen" "$CAGE_TMP/run/policy.toml")"
grep -q "warning" "$CAGE_TMP/err-nested" && bad "nested run warned: $(grep warning "$CAGE_TMP/err-nested")" || ok "nested run: no warning"
grep -q "secret.denied.test" "$CAGE_TMP/world-queries.log" && bad "a denied name from the sandbox reached the world" \
  || ok "denied names from the sandbox never reached the world's DNS"
grep -q "nested.allowed.test" "$CAGE_TMP/world-queries.log" && ok "the allowed name was forwarded by dnsguard" \
  || bad "the allowed name never reached the world's DNS"
pgrep -f "$CAGE_STAGE/fake-dockerd" >/dev/null && { bad "the engine outlived cage-init"; kill -KILL $(pgrep -f "$CAGE_STAGE/fake-dockerd"); } \
  || ok "the engine ended with cage-init"
# The sandbox's network namespace died with it, and the veth pair with it.
ip link show cagent-nd0 >/dev/null 2>&1 && bad "cagent-nd0 outlived the sandbox" || ok "the link went with the sandbox"

# 6a. The same where the cage's /proc and the log directory cannot be
#     detached (sysbox keeps a container's initial mounts immutable): the
#     fresh /proc and the cover are stacked over them, and the sandbox's
#     user namespace locks them — the fake's checks must pass unchanged.
reset_resolv
rm -rf "$CAGE_TMP/nested-sock"
CAGENT_TEST_NESTED_FAIL=detach "$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" "${nested[@]}" -- bash -c '
  for _ in $(seq 1 300); do [[ -e $CAGE_TMP/nested-sock/done ]] && break; sleep 0.1; done
  cat "$CAGE_TMP/nested-sock/results"' > "$CAGE_TMP/out-stacked" 2> "$CAGE_TMP/err-stacked"; rc=$?
n=$(grep -c "^ok - sandbox" "$CAGE_TMP/out-stacked"); n=${n:-0}
[[ $rc == 0 ]] && (( n >= 30 )) && ! grep -q "^not ok" "$CAGE_TMP/out-stacked" \
  && ok "stacked instead of detached: $n sandbox checks passed" \
  || { bad "stacked instead of detached: rc $rc, $n passed"; grep "^not ok" "$CAGE_TMP/out-stacked"; cat "$CAGE_TMP/err-stacked" >&2; }
for p in $(pgrep -f "$CAGE_STAGE/fake-dockerd"); do kill -KILL "$p"; done

# 6b. A failing sandbox: one warning naming the step, the command still
#     runs, and no engine ran anywhere — in particular not in the cage's
#     namespaces. Each stage of the sandbox, and an engine that is missing.
for fail in unshare mounts userns network engine missing; do
  reset_resolv
  rm -rf "$CAGE_TMP/nested-sock" "$CAGE_WS/ran-$fail"
  engine=$CAGE_STAGE/fake-dockerd
  [[ $fail == missing ]] && engine=$CAGE_TMP/no-such-dockerd
  CAGENT_TEST_NESTED_FAIL=$fail "$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" \
    --nested-docker "$engine" --nested-socket-dir "$CAGE_TMP/nested-sock" --nested-data-root "$CAGE_TMP/nested-data" \
    -- sh -c "touch '$CAGE_WS/ran-$fail'; getent ahostsv4 allowed.test >/dev/null && touch '$CAGE_WS/dns-$fail'" \
    2> "$CAGE_TMP/err-fail-$fail"; rc=$?
  [[ $rc == 0 && -e $CAGE_WS/ran-$fail ]] && ok "sandbox failing at $fail: the command ran" || bad "failing at $fail: rc $rc"
  [[ -e $CAGE_WS/dns-$fail ]] && ok "sandbox failing at $fail: DNS works" || bad "failing at $fail: DNS broken: $(cat "$CAGE_TMP/err-fail-$fail")"
  [[ $(grep -c "warning: nested Docker is off: step start-nested-docker" "$CAGE_TMP/err-fail-$fail") == 1 ]] \
    && ok "sandbox failing at $fail: one warning naming the step" || bad "failing at $fail: $(cat "$CAGE_TMP/err-fail-$fail")"
  [[ ! -e $CAGE_TMP/nested-sock/results ]] && ok "sandbox failing at $fail: no engine ran" || bad "failing at $fail: the engine ran"
  pgrep -f "$CAGE_STAGE/fake-dockerd" >/dev/null && { bad "failing at $fail: an engine process is left"; kill -KILL $(pgrep -f "$CAGE_STAGE/fake-dockerd"); } \
    || ok "sandbox failing at $fail: nothing left running"
  ip link del cagent-nd0 2>/dev/null
done

# 6c. The link cannot be made (its name is taken): the same, one warning
#     naming create-nested-link, and dnsguard (told not to listen on the
#     missing address) still answers.
reset_resolv
rm -rf "$CAGE_TMP/nested-sock"
ip link add cagent-nd0 type veth peer name "cgx$CAGE_ID" || bad "no link: could not take the name"
"$CAGE_INIT" --policy "$CAGE_TMP/policy.toml" "${common[@]}" "${nested[@]}" -- getent ahostsv4 allowed.test \
  > "$CAGE_TMP/out-nolink" 2> "$CAGE_TMP/err-nolink"; rc=$?
[[ $rc == 0 && $(cat "$CAGE_TMP/out-nolink") == *192.0.2.80* ]] && ok "no link: the command ran and resolved" \
  || bad "no link: rc $rc: $(cat "$CAGE_TMP/err-nolink")"
grep -q "warning: nested Docker is off: step create-nested-link" "$CAGE_TMP/err-nolink" \
  && ok "no link: one warning naming create-nested-link" || bad "no link: $(cat "$CAGE_TMP/err-nolink")"
grep -q "100.127.255.253" "$CAGE_TMP/run/policy.toml" && bad "no link: dnsguard was told to listen on it" \
  || ok "no link: dnsguard's copy leaves the link's address out"
[[ ! -e $CAGE_TMP/nested-sock/results ]] && ok "no link: no engine ran" || bad "no link: the engine ran"
ip link del cagent-nd0 2>/dev/null

# 7. A user-defined Docker network without dns_resolvers: the container's
#    resolver is Docker's embedded one, 127.0.0.11, behind a DNAT of :53 to
#    a random port, served by sockets dockerd (root) opened in this
#    namespace, and forwarding the names it does not own from here, as root.
#    The same here: embedded_resolver.py as root, Docker's NAT rules, and
#    resolv.conf naming 127.0.0.11; the policy names no upstream.
/usr/bin/python3 "$CAGE_STAGE/embedded_resolver.py" --ready "$CAGE_TMP/embedded.ports" --forward 192.0.2.53 \
  --alias peer.allowed.test=192.0.2.83 --slow slow.allowed.test=0.6 2> "$CAGE_TMP/embedded.log" &
embedded_pid=$!
for _ in $(seq 1 100); do [[ -s $CAGE_TMP/embedded.ports ]] && break; sleep 0.05; done
read -r udp_kv tcp_kv < "$CAGE_TMP/embedded.ports"
eu=${udp_kv#udp=} et=${tcp_kv#tcp=}
nft -f - <<NFT
table ip nat {
  chain DOCKER_OUTPUT {
    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:$et
    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:$eu
  }
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 jump DOCKER_OUTPUT
  }
  chain DOCKER_POSTROUTING {
    ip saddr 127.0.0.11 tcp sport $et snat to :53
    ip saddr 127.0.0.11 udp sport $eu snat to :53
  }
  chain POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr 127.0.0.11 jump DOCKER_POSTROUTING
  }
}
NFT
printf 'nameserver 127.0.0.11\noptions ndots:0\n' > /etc/resolv.conf
nft delete table inet cagent 2>/dev/null  # the last cage's ruleset (it stays after cage-init)
getent ahostsv4 allowed.test | grep -q 192.0.2.80 && ok "control: before the cage, the embedded resolver forwards allowed.test" \
  || bad "the embedded resolver stand-in does not work"
queries_before=$(wc -l < "$CAGE_TMP/world-queries.log")
"$CAGE_INIT" --policy "$CAGE_TMP/policy-no-upstreams.toml" "${common[@]}" -- bash -c '
  fails=0
  ok() { echo "ok - agent (embedded resolver): $*"; }
  bad() { echo "not ok - agent (embedded resolver): $*"; fails=$((fails + 1)); }
  # The legitimate paths: a name the resolver forwards, and one it owns.
  a=$(getent ahostsv4 allowed.test | head -n1)
  [[ $a == 192.0.2.80* ]] && ok "an allowed name forwarded by the embedded resolver resolves ($a)" || bad "allowed.test: \"$a\""
  body=$(curl -s --max-time 5 "http://allowed.test:$HTTP_PORT/")
  [[ $body == "hello from the world" ]] && ok "…and its server answers" || bad "http://allowed.test: \"$body\""
  a=$(getent ahostsv4 peer.allowed.test | head -n1)
  [[ $a == 192.0.2.83* ]] && ok "an allowed name the embedded resolver owns (an alias) resolves ($a)" || bad "peer.allowed.test: \"$a\""
  getent hosts secret.denied.test >/dev/null && bad "a denied name resolved" || ok "a denied name does not resolve"
  # The attack: forged answers through the resolver'"'"'s NAT port.
  /usr/bin/python3 "$CAGE_STAGE/forge_via_nat.py" slow.allowed.test 192.0.2.81 "$CAGE_WS/slow.result" > "$CAGE_WS/forge.log" 2>&1
  sed "s/^/   forger: /" "$CAGE_WS/forge.log"
  grep -q "^found resolver ports \[[0-9]" "$CAGE_WS/forge.log" && grep -q "dnsguard sockets \[[0-9]" "$CAGE_WS/forge.log" \
    && ok "the forger found the resolver'"'"'s port and dnsguard'"'"'s socket in /proc/net/udp" \
    || bad "the forger found nothing to attack: the check below would prove nothing"
  grep -q "^forged answers sent [0-9]*, refused at send [0-9]*" "$CAGE_WS/forge.log" \
    && ! grep -q "sent 0, refused at send 0" "$CAGE_WS/forge.log" \
    && ok "the forger sent (or tried to send) its answers" || bad "the forger did not run its flood"
  r=$(cat "$CAGE_WS/slow.result")
  [[ $r == 192.0.2.84* ]] && ok "the real answer won: slow.allowed.test is $r" || bad "slow.allowed.test resolved to \"$r\""
  curl -s --max-time 3 -o /dev/null "http://192.0.2.81:$HTTP_PORT/" && bad "the forged address is reachable" \
    || ok "the forged address stays unreachable"
  exit $fails' 2> "$CAGE_TMP/err-embedded"; rc=$?
[[ $rc == 0 ]] && ok "embedded-resolver checks passed" || { bad "embedded-resolver checks: cage-init exited $rc"; cat "$CAGE_TMP/err-embedded" >&2; }
grep -q '"127.0.0.11:53"' "$CAGE_TMP/run/policy.toml" \
  && ok "dnsguard's upstream was the embedded resolver" || bad "policy copy: $(grep upstreams "$CAGE_TMP/run/policy.toml")"
tail -n +$((queries_before + 1)) "$CAGE_TMP/world-queries.log" | grep -q "^allowed.test. A" \
  && ok "the embedded resolver's forwarded query reached the world's DNS" || bad "no forwarded query reached the world"
tail -n +$((queries_before + 1)) "$CAGE_TMP/world-queries.log" | grep -q "secret.denied.test" \
  && bad "a denied name reached the world through the embedded resolver" || ok "denied names never reached the world"
kill "$embedded_pid" 2>/dev/null
nft delete table ip nat

echo "inner checks: $fails failed"
exit $(( fails > 100 ? 100 : fails ))
