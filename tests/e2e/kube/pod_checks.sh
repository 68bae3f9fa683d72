#!/bin/bash
# Run by the agent inside the played Pod (kube_play.sh): what the agent of a
# Pod can and cannot do. One "ok - …" / "not ok - …" line per check, then
# "checks done"; exit status: the number of failures.
#   pod_checks.sh ALLOWED_ADDRESS UNRESOLVED_ADDRESS UPSTREAM
set -u
allowed_addr=$1 unresolved=$2 upstream=$3
bad=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; bad=$((bad + 1)); }
if : >/workspace/agent-ran; then ok "the agent writes the workspace claim"; else not_ok "the agent cannot write /workspace"; fi

# The e2e world's probe decodes the sets: every one 0, no_new_privs 1.
caps=$(python3 /workspace/cage_probe.py caps 2>&1)
held=$(printf '%s\n' "$caps" | awk '$1 ~ /^Cap/ && $2 !~ /^0+$/ {printf " %s=%s", $1, $2}')
if [ -z "$held" ] && printf '%s\n' "$caps" | grep -qx 'NoNewPrivs 1' && [ "$(id -u)" = 1000 ] && [ "$(id -g)" = 1000 ]; then
  ok "the agent is uid 1000, holds no capability in any set, no_new_privs set"
else
  not_ok "the agent: uid $(id -u) gid $(id -g), capabilities:${held:- none}; $(printf '%s' "$caps" | tr '\n' ' ')"
fi
out=$(python3 /workspace/cage_probe.py nft-list 2>&1)
if printf '%s\n' "$out" | grep -q 'nft-list denied'; then
  ok "the agent cannot read or change the firewall ($(printf '%s\n' "$out" | head -n 1))"
else
  not_ok "the agent reached nf_tables: $out"
fi

addr=$(getent hosts allowed.test | awk 'NR == 1 {print $1}')
if [ "$addr" = "$allowed_addr" ]; then ok "allowed.test resolves ($addr)"; else not_ok "allowed.test: '${addr}'"; fi
if body=$(curl -sS -m 5 http://allowed.test/ 2>&1) && [ "$body" = "cagent-e2e web10" ]; then
  ok "allowed.test connects ($body)"
else
  not_ok "allowed.test did not connect: $body"
fi

if out=$(getent hosts denied.test 2>&1); then not_ok "denied.test resolved: $out"; else ok "denied.test does not resolve"; fi

t0=$(date +%s%N)
out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/80"' probe "$unresolved" 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$ms" -lt 2000 ] && printf '%s' "$out" | grep -qE 'Connection refused|No route to host'; then
  ok "$unresolved (nobody resolved it) is refused at once ($(printf '%s' "$out" | grep -oE 'Connection refused|No route to host' | head -n 1), $ms ms)"
else
  not_ok "$unresolved: rc $rc after $ms ms: $out"
fi

out=$(dig +time=3 +tries=1 "@$upstream" denied.test A 2>&1)
if printf '%s\n' "$out" | grep -q 'blocked by cagent'; then
  ok "DNS sent to $upstream directly is answered by dnsguard (its Extended DNS Error)"
else
  not_ok "DNS to $upstream: $(printf '%s\n' "$out" | grep -m1 -E 'status:|timed out|refused' || echo 'not dnsguard')"
fi
out=$(dig +short +time=3 +tries=1 "@$upstream" allowed.test A 2>&1)
if [ "$out" = "$allowed_addr" ]; then
  ok "control: allowed.test asked of $upstream directly is answered ($out)"
else
  not_ok "allowed.test asked of $upstream directly: $out"
fi
echo "checks done"
exit "$bad"
