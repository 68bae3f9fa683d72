#!/usr/bin/env bash
# A user-defined Docker network, as compose and most setups use it, with
# cagent run the way users run it: as an ordinary account in the docker
# group, from an installed copy.
#
# 1. Without dns_resolvers (the built-in default), dnsguard's upstream is
#    Docker's embedded resolver, 127.0.0.11: a DNAT of :53 to a random port,
#    served by sockets dockerd opens in the cage's namespace, forwarding the
#    names it does not own — from inside that namespace, as root — to its
#    forwarders (here the world's DNS, set with `docker run --dns`). Shown:
#    an allowed name it forwards resolves and its server answers; a name it
#    answers itself (a network alias) resolves; a denied name never leaves;
#    and the agent's forged answers through the resolver's NAT port (R and
#    dnsguard's ports read from /proc/net/udp, source 127.0.0.11 set with
#    IP_PKTINFO, every query ID) do not win against the real answer.
# 2. With dns_resolvers naming the world's DNS: the same lookups work.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
case_init

ws=$(mktemp -d "$E2E_TMP/ws.XXXXXX") || die "mktemp failed"
cp "$E2E_SRC/../../tools/forge_via_nat.py" "$ws/forge.py"
chown_workspace "$ws"
names=(-d allowed.test -d peer.allowed.test -d slow.allowed.test)
log_before=$(dns_log_lines)

out=$(user_cage "$ws" --arg="--dns=$DNS4" "${names[@]}" -- '
  echo "uid: $(id -u)"
  echo "lookup: $(getent ahostsv4 allowed.test | head -n1)"
  echo "body: $(curl -s -m 5 http://allowed.test/)"
  echo "alias: $(getent ahostsv4 peer.allowed.test | head -n1)"
  echo "alias body: $(curl -s -m 5 http://peer.allowed.test/)"
  getent hosts denied.test >/dev/null && echo "denied: resolved" || echo "denied: refused"
  python3 /workspace/forge.py slow.allowed.test 198.51.100.19 /workspace/slow.result
  echo "slow: $(cat /workspace/slow.result)"
  curl -s -m 3 -o /dev/null http://198.51.100.19/ && echo "forged: reachable" || echo "forged: unreachable"')
expect_eq "cagent as the docker-group user exits 0 (no dns_resolvers)" "$CAGE_RC" 0
expect_match "the agent runs as the user's uid" "$out" "uid: $E2E_UID"
expect_match "an allowed name the embedded resolver forwards resolves" "$out" 'lookup: 198\.51\.100\.10 '
expect_match "…and its server answers" "$out" 'body: cagent-e2e web10'
expect_match "a name the embedded resolver answers itself (a network alias) resolves" "$out" \
  'alias: 198\.51\.100\.13 '
expect_match "…and its server answers" "$out" 'alias body: cagent-e2e web13'
expect_match "a denied name does not resolve" "$out" 'denied: refused'
expect_match "the attack ran: the forger found the resolver's port and dnsguard's socket" "$out" \
  'found resolver ports \[[0-9]+\], dnsguard sockets \[[0-9]'
expect_match "the attack ran: its forged answers were sent or refused at send" "$out" \
  'forged answers sent [0-9]+, refused at send [0-9]+'
expect_match "the real answer wins over the forged ones" "$out" 'slow: 198\.51\.100\.15 '
expect_match "the forged address stays unreachable" "$out" 'forged: unreachable'
new_queries=$(tail -n +$((log_before + 1)) "$DNS_LOG")
expect_match "the embedded resolver forwarded allowed.test to the world's DNS" "$new_queries" ' allowed\.test '
expect_no_match "denied.test never reached the world's DNS" "$new_queries" ' denied\.test '
((CAGE_RC == 0)) || cage_err

# 2. The same user and network with dns_resolvers (the user's own global config).
cfg=$E2E_USER_HOME/.cagent/config.yaml
[[ -f $cfg ]] || die "the first run did not write $cfg"
sed "s/^dns_resolvers: \[\]\$/dns_resolvers: [\"$DNS4\"]/" "$cfg" >"$E2E_TMP/with-resolvers.yaml"
chmod 0644 "$E2E_TMP/with-resolvers.yaml"
grep -q "^dns_resolvers: \[\"$DNS4\"\]" "$E2E_TMP/with-resolvers.yaml" || die "could not set dns_resolvers in a copy of $cfg"
out=$(user_cage "$ws" -c "$E2E_TMP/with-resolvers.yaml" "${names[@]}" -- '
  echo "lookup: $(getent ahostsv4 allowed.test | head -n1)"
  echo "body: $(curl -s -m 5 http://allowed.test/)"
  getent hosts denied.test >/dev/null && echo "denied: resolved" || echo "denied: refused"')
expect_eq "cagent as the docker-group user exits 0 (dns_resolvers)" "$CAGE_RC" 0
expect_match "with dns_resolvers an allowed name resolves" "$out" 'lookup: 198\.51\.100\.10 '
expect_match "…and its server answers" "$out" 'body: cagent-e2e web10'
expect_match "…and a denied name does not" "$out" 'denied: refused'
((CAGE_RC == 0)) || cage_err
finish
