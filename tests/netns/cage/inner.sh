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

echo "inner checks: $fails failed"
exit $(( fails > 100 ? 100 : fails ))
